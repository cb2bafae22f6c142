//! `binpack cargo` packs binpack itself, and the image runs `binpack --version`.

mod common;

use common::*;
use std::process::Command;

#[test]
#[ignore = "needs cargo and a Docker engine"]
fn binpack_packs_itself() {
    need(&["cargo"]);
    need_docker();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("binpack.tar");
    let tag = "binpack-test/self:it";
    let s = pack_json(
        binpack()
            .current_dir(repo())
            .args(["cargo", "--bin", "binpack", "-t", tag, "-o"])
            .arg(&archive),
    );
    // binpack links glibc: its closure, chosen from the binary, not from the language.
    assert_eq!(s["base"], "closure", "{s}");
    assert!(s["linkage"]["needed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "libc.so.6"));

    // Several targets would need --bin: a target that does not exist is named.
    let out = binpack()
        .current_dir(repo())
        .args(["cargo", "--bin", "nope", "-o"])
        .arg(dir.path().join("nope.tar"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no binary target named nope"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("nope.tar").exists());

    let _cleanup = DockerCleanup(vec![tag.into()]);
    ok(Command::new("docker").arg("load").arg("-i").arg(&archive));
    let run =
        ok(Command::new("docker").args(["run", "--rm", "--network", "none", tag, "--version"]));
    assert_eq!(
        stdout(&run).trim(),
        format!("binpack {}", env!("CARGO_PKG_VERSION"))
    );
}
