//! `binpack python --toolchain docker` (issue 21): a machine with no python3 on PATH builds the
//! flask corpus case in the toolchain image (the local python:3.11-slim-bookworm that
//! scripts/toolchain-images.sh makes from the machine's Debian python3.11), and the image
//! answers from docker. That toolchain image holds the same Debian interpreter as the host,
//! so the image's three layers must be the host build's, byte for byte: the interpreter,
//! stdlib and libraries come from the toolchain image's filesystem exactly as they would from
//! the host's. A console script's project is built without writing into it. An sdist the slim
//! image has no compiler for, and `--python` with a toolchain container, are refused by name.

mod common;

use common::corpus::{self, binpack_python, python_case as corpus_dir};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The local toolchain image (scripts/toolchain-images.sh).
const IMAGE: &str = "python:3.11-slim-bookworm";

/// A PATH with docker and nothing else: no python3, no uv, no pip.
fn docker_only_path(tmp: &Path) -> PathBuf {
    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let docker = which("docker").expect("docker on PATH");
    std::os::unix::fs::symlink(docker, bin.join("docker")).unwrap();
    bin
}

fn need_image() {
    need_docker();
    let inspect = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "docker has no {IMAGE}: scripts/toolchain-images.sh docker makes it from this machine's python3.11"
    );
}

/// The layer digests of an archive's one manifest.
fn layers(archive: &Path) -> Vec<String> {
    let files = ArchiveFiles::open(archive);
    let m = files.manifest();
    m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
#[ignore = "needs docker, its local python toolchain image and Debian's python3.11"]
fn flask_builds_in_the_toolchain_image_with_no_python_on_path() {
    need(&["python3.11"]);
    need_image();
    let tmp = tempfile::tempdir().unwrap();
    let path = docker_only_path(tmp.path());
    let app = corpus_dir("flask").join("app.py");
    let in_container = tmp.path().join("container.tar");
    let summary = json_of(
        binpack_python()
            .env("PATH", &path)
            .arg(&app)
            .args(["--toolchain-image", IMAGE, "--network", "host"])
            .args(["--json", "--quiet", "-t", "binpack-pytc:1", "-o"])
            .arg(&in_container),
    );
    let toolchain = summary["toolchain"].as_str().unwrap_or_default();
    assert!(toolchain.contains(IMAGE), "{summary}");

    let on_host = tmp.path().join("host.tar");
    ok(binpack_python()
        .arg(&app)
        .args(["--python", "/usr/bin/python3.11", "--quiet", "-o"])
        .arg(&on_host));
    assert_eq!(
        layers(&in_container),
        layers(&on_host),
        "the toolchain image's python3.11 is the host's: every layer must be the same"
    );

    corpus::load(&in_container, "binpack-pytc:1").unwrap();
    let answer = corpus::serves_on_free_port("binpack-pytc:1", "binpack-pytc", &[], &["/"]);
    let _ = Command::new("docker")
        .args(["rm", "-f", "binpack-pytc"])
        .output();
    let _ = Command::new("docker")
        .args(["rmi", "binpack-pytc:1"])
        .output();
    let answer = answer.unwrap();
    assert!(
        answer.contains("\"speedups\":true") && answer.contains("Hello &lt;corpus&gt;!"),
        "{answer}"
    );
}

#[test]
#[ignore = "needs docker and its local python toolchain image"]
fn a_console_script_builds_in_the_toolchain_image_without_writing_to_the_project() {
    need_image();
    let tmp = tempfile::tempdir().unwrap();
    // A copy of the project: the build must leave it as it was (no build/, no *.egg-info).
    let project = tmp.path().join("click-cli");
    std::fs::create_dir_all(&project).unwrap();
    for f in ["pyproject.toml", "corpus_cli.py"] {
        std::fs::copy(corpus_dir("click-cli").join(f), project.join(f)).unwrap();
    }
    let before = names(&project);
    let out = tmp.path().join("cli.tar");
    ok(binpack_python()
        .env("PATH", docker_only_path(tmp.path()))
        .arg(&project)
        .args(["--toolchain-image", IMAGE, "--network", "host", "--quiet"])
        .args(["-t", "binpack-pytc-cli:1", "-o"])
        .arg(&out));
    assert_eq!(names(&project), before, "the build wrote into the project");
    corpus::load(&out, "binpack-pytc-cli:1").unwrap();
    let args = ["greet", "--name", "corpus", "--count", "2"];
    let printed = corpus::run("binpack-pytc-cli:1", "binpack-pytc-cli", &[], &args, None);
    let _ = Command::new("docker")
        .args(["rmi", "binpack-pytc-cli:1"])
        .output();
    let expected = std::fs::read_to_string(corpus_dir("click-cli").join("expected.txt")).unwrap();
    assert_eq!(printed.unwrap().trim(), expected.trim());
}

#[test]
#[ignore = "needs docker and its local python toolchain image"]
fn an_sdist_the_slim_image_cannot_compile_is_refused_naming_the_compiler_and_the_image() {
    need_image();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mmh3.tar");
    let run = binpack_python()
        .env("PATH", docker_only_path(tmp.path()))
        .arg(corpus_dir("mmh3-sdist").join("app.py"))
        .args(["--toolchain-image", IMAGE, "--network", "host", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    let hint = err.lines().last().unwrap_or_default();
    assert!(
        hint.contains("needs the compiler") && hint.contains(IMAGE),
        "{hint}"
    );
    assert!(!out.exists() && leftovers(tmp.path()).is_empty());
}

#[test]
fn python_with_a_toolchain_container_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.tar");
    let run = binpack()
        .args(["python", "app.py", "--python", "/usr/bin/python3"])
        .args(["--toolchain", "docker", "-o"])
        .arg(&out)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--python /usr/bin/python3") && err.contains("--toolchain-image"),
        "{err}"
    );
    assert!(!out.exists() && leftovers(tmp.path()).is_empty());
}

/// The names under `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = walk(dir)
        .iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    n.sort();
    n
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
