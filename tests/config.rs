//! binpack.toml: a value from it is used, and a flag on the command line overrides it.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

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

/// examples/Makefile's image target: one short line, the rest from examples/binpack.toml.
#[test]
#[ignore = "needs make, go and a Docker engine"]
fn examples_makefile_image_target() {
    need(&["make", "go"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    ok(Command::new("make")
        .arg("-C")
        .arg(repo().join("examples"))
        .arg("image")
        .arg(format!("BINPACK={}", env!("CARGO_BIN_EXE_binpack")))
        .arg(format!("DIST={}", dir.path().display()))
        .args(["VERSION=t1", "TOOLCHAIN=host"]));
    let archive = dir.path().join("hello-http.tar");
    let config = ArchiveFiles::open(&archive).config();
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.vendor"],
        "binpack examples"
    );
    assert!(config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "PORT=8080"));
    let (tag, name) = ("hello-http:t1", "binpack-test-make-image");
    let _cleanup = DockerCleanup(vec![name.into(), tag.into()]);
    let port = docker_serve(&archive, tag, name);
    // The ldflags from the [go] table reached the build.
    let resp = http_get(port, "/").expect("the server answers");
    assert!(
        resp.contains("hello-from-make (uid 65532, path /)"),
        "{resp}"
    );
}

/// Runs binpack in `dir`, expecting a usage error (exit 2); returns its stderr.
fn usage_error(dir: &Path, args: &[&str]) -> String {
    let out = binpack().current_dir(dir).args(args).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

#[test]
fn config_flag_in_both_spellings() {
    let dir = tempfile::tempdir().unwrap();
    // The nearest binpack.toml is what --config replaces.
    std::fs::write(dir.path().join("binpack.toml"), "tag = \"nearest:1\"\n").unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "tag = \"explicit:1\"\n").unwrap();
    let other = other.to_str().unwrap();
    let joined = format!("--config={other}");
    for config in [vec!["--config", other], vec![joined.as_str()]] {
        let s = pack_json(
            binpack()
                .current_dir(dir.path())
                .args(&config)
                .args(["bin", "/usr/bin/id"]),
        );
        assert_eq!(s["reference"], "explicit:1", "{config:?}");
    }
}

/// A --config file that is not there is an error naming it and why, in both spellings.
#[test]
fn missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();
    let joined = format!("--config={missing}");
    for config in [vec!["--config", missing], vec![joined.as_str()]] {
        let args = [config, vec!["bin", "/usr/bin/id"]].concat();
        let err = usage_error(dir.path(), &args);
        assert!(
            err.contains(&format!("--config {missing}: No such file or directory")),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
}

/// No subcommand, or --config after it: clap's usage errors, not a crash.
#[test]
fn misplaced_config_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "tag = \"explicit:1\"\n").unwrap();
    let other = other.to_str().unwrap();
    let err = usage_error(dir.path(), &["--config", other]);
    assert!(err.contains("subcommand"), "{err}");
    usage_error(dir.path(), &["--config"]);
    let err = usage_error(dir.path(), &["bin", "/usr/bin/id", "--config", other]);
    assert!(err.contains("--config"), "{err}");
}

/// A top-level key no command has is a typo: named with the file and the nearest key.
#[test]
fn top_level_typo_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("binpack.toml");
    std::fs::write(&file, "tagg = \"x:1\"\n").unwrap();
    let err = usage_error(dir.path(), &["bin", "/usr/bin/id"]);
    assert!(err.contains("unknown key tagg"), "{err}");
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    assert!(err.contains("did you mean tag?"), "{err}");

    // A key only go has is for go: bin skips it.
    std::fs::write(&file, "ldflags = \"-s\"\ntag = \"top:1\"\n").unwrap();
    let s = pack_json(
        binpack()
            .current_dir(dir.path())
            .args(["bin", "/usr/bin/id"]),
    );
    assert_eq!(s["reference"], "top:1");
}
