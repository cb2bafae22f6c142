//! binpack.toml: a value from it is used, and a flag on the command line overrides it.

mod common;

use common::*;
use std::path::Path;

/// The image config in an OCI layout directory.
fn layout_config(layout: &Path) -> serde_json::Value {
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = read(&layout.join("index.json"));
    let manifest = read(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    read(&blob(manifest["config"]["digest"].as_str().unwrap()))
}

#[test]
fn config_values_are_used_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("sub")).unwrap();
    std::fs::write(
        project.join("binpack.toml"),
        r#"
tag = "from-config:1"
env = ["MODE=config", "KEEP=yes"]
args = ["--from-config"]

[bin]
label = ["team=config"]
oci-layout = "layout"
"#,
    )
    .unwrap();
    // Found from a subdirectory too, as cargo finds Cargo.toml.
    let s = pack_json(
        binpack()
            .current_dir(project.join("sub"))
            .args(["bin", "/usr/bin/id"]),
    );
    assert_eq!(s["reference"], "from-config:1");
    let cfg = layout_config(&project.join("sub/layout"));
    let env: Vec<&str> = cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"MODE=config") && env.contains(&"KEEP=yes"),
        "{env:?}"
    );
    assert_eq!(cfg["config"]["Labels"]["team"], "config");
    assert_eq!(cfg["config"]["Cmd"], serde_json::json!(["--from-config"]));

    // Flags win: the tag, one env key, the Cmd.
    let s = pack_json(binpack().current_dir(&project).args([
        "bin",
        "/usr/bin/id",
        "-t",
        "from-flag:2",
        "--env",
        "MODE=flag",
        "--oci-layout",
        "layout2",
    ]));
    assert_eq!(s["reference"], "from-flag:2");
    let cfg = layout_config(&project.join("layout2"));
    let env: Vec<&str> = cfg["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"MODE=flag") && !env.contains(&"MODE=config"),
        "{env:?}"
    );
    assert!(env.contains(&"KEEP=yes"), "{env:?}");

    // A key that is not a flag is named, as a usage error.
    std::fs::write(project.join("binpack.toml"), "[bin]\nldflags = \"-s\"\n").unwrap();
    let out = binpack()
        .current_dir(&project)
        .args(["bin", "/usr/bin/id"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown key bin.ldflags"),
        "{}",
        stderr(&out)
    );
}
