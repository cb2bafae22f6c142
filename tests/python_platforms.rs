//! `binpack python --platform` (issue 21, Platforms): the flask corpus case built for
//! linux/arm64 from an arm64 Debian root (made from Debian's packages by
//! `scripts/install-deps.sh python-arm64`), its image run in docker under qemu and checked on
//! what it serves; the same app for linux/amd64,linux/arm64 in one index whose arm64 image is
//! the one that ran; and each refusal (no arm64 python in the root, a dependency without an
//! arm64 wheel) named, exit 1, nothing written.

mod common;

use common::corpus::{self, binpack_python, python_case as corpus_dir};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const ARM64: &str = "linux/arm64";

/// The arm64 root scripts/install-deps.sh python-arm64 makes.
fn arm64_root() -> PathBuf {
    let root = repo().join("target/test-cache/python-arm64-root");
    assert!(
        root.join("usr/bin/python3.11").is_file(),
        "{} has no usr/bin/python3.11: run scripts/install-deps.sh python-arm64 (or all)",
        root.display()
    );
    root
}

fn root_arg(root: &Path) -> String {
    format!("{ARM64}={}", root.display())
}

#[test]
#[ignore = "needs docker, qemu-aarch64 (binfmt) and python"]
fn flask_for_arm64_runs_under_qemu_and_joins_an_index() {
    need(&["python3"]);
    need_docker();
    let root = arm64_root();
    let tmp = tempfile::tempdir().unwrap();
    let tag = "binpack-py-platforms/flask:arm64";
    let name = format!("binpack-py-platforms-{}", std::process::id());
    let _cleanup = DockerCleanup(vec![name.clone(), tag.to_string()]);
    let archive = tmp.path().join("flask-arm64.tar");
    let summary = corpus::build(
        binpack_python()
            .arg(corpus_dir("flask").join("app.py"))
            .args(["--platform", ARM64, "--root", &root_arg(&root)])
            .args(["--json", "--quiet", "-t", tag, "-o"])
            .arg(&archive),
    )
    .unwrap();
    assert_eq!(summary["platform"], "linux/arm64/v8", "{summary}");
    let config = ArchiveFiles::open(&archive).config();
    assert_eq!(config["architecture"], "arm64", "{config}");
    // Scanners see the root's arm64 interpreter package.
    let status = layer_file(&archive, "var/lib/dpkg/status.d/python3.11-minimal");
    assert!(status.contains("Architecture: arm64"), "{status}");
    corpus::load(&archive, tag).unwrap();
    // Under qemu flask takes seconds to listen: http_get waits up to a minute.
    let platform = ["--platform", ARM64];
    let answer = corpus::serves_on_free_port(tag, &name, &platform, &["/"]).unwrap();
    let expected = std::fs::read_to_string(corpus_dir("flask").join("expected.txt")).unwrap();
    let wanted: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
    corpus::expect(&answer, &wanted).unwrap();

    // Both platforms in one index; its arm64 image is the one that ran.
    let multi = tmp.path().join("flask-multi.tar");
    let both = corpus::build(
        binpack_python()
            .arg(corpus_dir("flask").join("app.py"))
            .args(["--platform", "linux/amd64,linux/arm64"])
            .args(["--root", &root_arg(&root)])
            .args([
                "--json",
                "--quiet",
                "-t",
                "binpack-py-platforms/flask:multi",
                "-o",
            ])
            .arg(&multi),
    )
    .unwrap();
    assert_eq!(
        both["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"]),
        "{both}"
    );
    let index = image_index(&multi);
    let arm = index
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap_or_else(|| panic!("no arm64 image in the index: {index:?}"));
    assert_eq!(arm["platform"]["variant"], "v8");
    assert_eq!(arm["digest"], summary["digest"], "{index:?}");
    assert!(index
        .iter()
        .any(|m| m["platform"]["architecture"] == "amd64"));
    assert_eq!(index.len(), 2, "{index:?}");
}

/// The text of `path` in any layer of the image in a binpack archive ("" when absent).
fn layer_file(archive: &Path, path: &str) -> String {
    use std::io::Read;
    let files = ArchiveFiles::open(archive);
    for layer in files.manifest()["layers"].as_array().unwrap() {
        let blob = files.blob(&layer["digest"]);
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == path {
                let mut text = String::new();
                e.read_to_string(&mut text).unwrap();
                return text;
            }
        }
    }
    String::new()
}

/// The manifests of the image index in a multi-platform binpack archive (its index.json
/// names the index, whose blob lists one manifest per platform).
fn image_index(archive: &Path) -> Vec<serde_json::Value> {
    let out = ok(Command::new("tar")
        .arg("xOf")
        .arg(archive)
        .arg("index.json"));
    let outer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = ArchiveFiles::open(archive);
    let index: serde_json::Value =
        serde_json::from_slice(files.blob(&outer["manifests"][0]["digest"])).unwrap();
    index["manifests"].as_array().cloned().unwrap_or_default()
}

/// Each way `binpack python --platform linux/arm64` must refuse: exit 1, the cause named,
/// nothing in the output directory.
#[test]
#[ignore = "needs python"]
fn python_platform_refusals_are_named() {
    need(&["python3"]);
    let root = arm64_root();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-root");
    std::fs::create_dir_all(empty.join("usr/bin")).unwrap();
    let flask = corpus_dir("flask").join("app.py");
    let cases: Vec<(&str, Vec<String>, PathBuf, &[&str])> = vec![
        (
            "no --root: the host's python3.11 is not arm64",
            vec![],
            flask.clone(),
            &["python3.11", "linux/arm64", "--root linux/arm64"],
        ),
        (
            "a root without python3.11",
            vec!["--root".into(), root_arg(&empty)],
            flask,
            &["python3.11", "empty-root", "is missing"],
        ),
        (
            "a dependency with no arm64 wheel (mmh3 3.0.0)",
            vec!["--root".into(), root_arg(&root)],
            corpus_dir("mmh3-sdist").join("app.py"),
            &["mmh3", "only wheels for linux/arm64", "aarch64-manylinux"],
        ),
    ];
    let results: Vec<(&str, Result<(), String>)> = cases
        .iter()
        .enumerate()
        .map(|(i, (what, args, entry, wanted))| {
            let out_dir = tmp.path().join(format!("out-{i}"));
            (*what, refused(args, entry, &out_dir, wanted))
        })
        .collect();
    corpus::report_refusals(&results, "refused");
}

fn refused(args: &[String], entry: &Path, out_dir: &Path, wanted: &[&str]) -> Result<(), String> {
    std::fs::create_dir_all(out_dir).map_err(|e| e.to_string())?;
    let out = binpack_python()
        .arg(entry)
        .args(["--platform", ARM64])
        .args(args)
        .args(["-t", "binpack-py-platforms/refused:it", "-o"])
        .arg(out_dir.join("image.tar"))
        .output()
        .map_err(|e| format!("running binpack: {e}"))?;
    let err = corpus::refusal_stderr(&out)?;
    if let Some(w) = wanted.iter().find(|w| !err.contains(*w)) {
        return Err(format!(
            "its message lacks {w:?}: {}",
            corpus::last_line(&err)
        ));
    }
    corpus::nothing_in(out_dir)
}
