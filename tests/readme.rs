//! The README's Usage and Toolchain containers sections, run as written: every line of their
//! `sh` blocks, in order, in a temporary copy of the repository's examples, with the binpack
//! under test first on PATH and a registry on 127.0.0.1 where the README names
//! `localhost:5000`. The README cannot drift from the tool.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The command lines of the ```sh blocks between `## <heading>` and the next `## ` heading.
fn section_commands(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README has a {heading} section"));
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in section[..end].lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && !l.is_empty() && !l.starts_with('#') => commands.push(l.to_string()),
            _ => {}
        }
    }
    commands
}

/// A container removed (if there) when dropped.
struct Container(&'static str);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", self.0]).output();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            // Installed packages are not part of the examples.
            if e.file_name() != "node_modules" {
                copy_dir(&e.path(), &dest);
            }
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// PATH with the binpack under test first.
fn path_with_binpack() -> std::ffi::OsString {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_binpack"));
    let mut dirs = vec![bin.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

#[test]
fn the_usage_section_has_commands() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let commands = section_commands(&readme, "Usage");
    assert!(commands.len() >= 10, "{commands:#?}");
    assert!(commands.iter().all(|c| !c.starts_with("```")));
    assert_eq!(section_commands(&readme, "Toolchain containers").len(), 2);
}

#[test]
#[ignore = "needs go, curl, skopeo, openssl, docker-registry and a Docker engine with the golang toolchain image"]
fn every_usage_command_runs_as_written() {
    need(&["go", "curl", "skopeo", "openssl", "docker-registry"]);
    need_docker();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let registry = Registry::start(None);
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples"), &dir.path().join("examples"));
    // The README names its container "hello": one a killed run left behind goes first, and
    // the container and the image hello:1 when the test ends (DockerCleanup would also remove
    // an image called hello:latest that is not the test's).
    drop(Container("hello"));
    let _container = Container("hello");
    let _cleanup = DockerCleanup(vec!["hello:1".into()]);
    let mut outputs = Vec::new();
    // The toolchain lines run in a project whose binpack.toml names the local toolchain image
    // (docs/machine-setup.md): the pinned digest cannot be pulled here.
    let project = dir.path().join("project");
    copy_dir(&repo().join("examples"), &project.join("examples"));
    std::fs::write(
        project.join("binpack.toml"),
        "[go]\ntoolchain-image = \"golang:1.23-bookworm\"\n",
    )
    .unwrap();
    let usage = section_commands(&readme, "Usage")
        .into_iter()
        .map(|l| (l, dir.path()));
    let toolchain = section_commands(&readme, "Toolchain containers")
        .into_iter()
        .map(|l| (l, project.as_path()));
    for (line, cwd) in usage.chain(toolchain) {
        let run = line.replace("localhost:5000", &format!("127.0.0.1:{}", registry.port));
        let out = Command::new("sh")
            .args(["-c", &run])
            .current_dir(cwd)
            .env("PATH", path_with_binpack())
            .env("BINPACK_CACHE", dir.path().join("cache"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README line failed: {line}\nstdout: {}\nstderr: {}",
            stdout(&out),
            stderr(&out)
        );
        outputs.push((line, stdout(&out)));
    }
    let output_of = |prefix: &str| {
        outputs
            .iter()
            .find(|(l, _)| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no README line starts with {prefix}"))
            .1
            .clone()
    };
    // What a reader sees: the server answers as the nonroot user; the layout and the pushed
    // image are there; --json is JSON.
    let answer = output_of("curl ");
    assert!(
        answer.starts_with("hello from binpack (uid 65532, path /ping)"),
        "{answer}"
    );
    let layout: serde_json::Value = serde_json::from_str(&output_of("skopeo inspect")).unwrap();
    assert_eq!(
        layout["Architecture"],
        std::env::consts::ARCH.replace("x86_64", "amd64")
    );
    let json: serde_json::Value =
        serde_json::from_str(&output_of("binpack go examples/hello-http --json")).unwrap();
    assert_eq!(json["base"], "scratch");
    // stdout without --json: the pushed reference with its digest, alone, for `IMG=$(...)`.
    let img = output_of("IMG=$(binpack");
    let (name, digest) = img.trim().split_once("@sha256:").expect("REF@sha256:...");
    assert!(name.ends_with("/hello:2") && digest.len() == 64, "{img}");
    assert_eq!(img.lines().count(), 1, "{img}");
    let pushed = ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://127.0.0.1:{}/hello:1", registry.port),
    ]));
    assert!(
        stdout(&pushed).contains("\"Digest\""),
        "{}",
        stdout(&pushed)
    );
    assert!(project.join("dist/hello-http.tar").is_file());
    for archive in ["hello-http.tar", "id.tar", "openssl.tar"] {
        assert!(dir.path().join("dist").join(archive).is_file(), "{archive}");
    }
}
