//! What scanners see: syft (the cataloguer behind grype) run on binpack's archives finds the
//! closure's Debian packages with the host's versions, the Go modules, the crates and the npm
//! packages; the SBOM validates (spdx-tools), is the same bytes build after build, and is
//! attached once to a pushed image.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// (type, name, version) of what `syft scan oci-archive:FILE` finds; with `sbom`, syft also
/// reads the SBOM files in the image.
fn syft(archive: &Path, sbom: bool) -> BTreeSet<(String, String, String)> {
    let mut cmd = Command::new("syft");
    cmd.arg("scan")
        .arg(format!("oci-archive:{}", archive.display()))
        .args(["-o", "json", "-q"]);
    if sbom {
        cmd.args(["--select-catalogers", "+sbom-cataloger"]);
    }
    let doc: Value = json_of(&mut cmd);
    doc["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("name"), s("version"))
        })
        .collect()
}

fn has(found: &BTreeSet<(String, String, String)>, ty: &str, name: &str, version: &str) -> bool {
    found.contains(&(ty.to_string(), name.to_string(), version.to_string()))
}

/// Validates an SPDX file with spdx-tools.
fn validate(sbom: &Path) {
    ok(Command::new("pyspdxtools").arg("-i").arg(sbom));
}

/// The Debian package owning a file on this machine, and its version (`dpkg -S`, trying the
/// path, its real path and its usrmerge twin).
fn dpkg_owner(path: &str) -> (String, String) {
    let real = std::fs::canonicalize(path).unwrap();
    let real = real.to_string_lossy().into_owned();
    let twin = |p: &str| match p.strip_prefix("/usr") {
        Some(rest) => rest.to_string(),
        None => format!("/usr{p}"),
    };
    let candidates = [path.to_string(), twin(path), real.clone(), twin(&real)];
    let name = candidates
        .iter()
        .find_map(|p| {
            let out = Command::new("dpkg").args(["-S", p]).output().unwrap();
            let text = stdout(&out);
            let pkg = text.lines().next()?.split(": ").next()?.to_string();
            out.status.success().then_some(pkg)
        })
        .unwrap_or_else(|| panic!("dpkg -S finds no package owning {path}"));
    let version = stdout(&ok(Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}"])
        .arg(&name)));
    (name.split(':').next().unwrap().to_string(), version)
}

#[test]
#[ignore = "needs syft, pyspdxtools and dpkg"]
fn curl_closure_packages_are_seen_with_the_host_versions() {
    need(&["syft", "pyspdxtools", "dpkg", "dpkg-query"]);
    let dir = tempfile::tempdir().unwrap();
    let pack = |n: &str| {
        let archive = dir.path().join(format!("{n}.tar"));
        let sbom = dir.path().join(format!("{n}.spdx.json"));
        let s = pack_json(
            binpack()
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .args(["bin", "/usr/bin/curl", "-o"])
                .arg(&archive)
                .arg("--sbom")
                .arg(&sbom),
        );
        (archive, sbom, s)
    };
    let (archive, sbom, s) = pack("a");
    let (_, sbom2, s2) = pack("b");
    assert_eq!(s["digest"], s2["digest"], "two builds, two digests");
    let bytes = std::fs::read(&sbom).unwrap();
    assert_eq!(
        bytes,
        std::fs::read(&sbom2).unwrap(),
        "two builds, two SBOMs"
    );
    validate(&sbom);

    let found = syft(&archive, false);
    let libs = s["libraries"].as_array().unwrap();
    let mut expected = BTreeSet::new();
    for lib in libs {
        expected.insert(dpkg_owner(lib["path"].as_str().unwrap()));
    }
    // The executable's own package too (curl, not only "a curl binary").
    expected.insert(dpkg_owner("/usr/bin/curl"));
    for must in ["libc6", "libssl3", "libcurl4", "curl"] {
        assert!(expected.iter().any(|(n, _)| n == must), "{expected:?}");
    }
    for (name, version) in &expected {
        assert!(
            has(&found, "deb", name, version),
            "syft does not see {name} {version}: {found:?}"
        );
    }
    // The SBOM names the same packages, with Debian package URLs.
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let text = doc.to_string();
    for (name, version) in &expected {
        assert!(
            text.contains(&format!("pkg:deb/debian/{name}@")),
            "{name} {version} missing from the SBOM"
        );
    }
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");

    // --no-sbom: the packages stay visible (status.d), the SBOM is gone.
    let bare = dir.path().join("bare.tar");
    let s3 = pack_json(
        binpack()
            .args(["bin", "/usr/bin/curl", "--no-sbom", "-o"])
            .arg(&bare),
    );
    assert_ne!(s3["digest"], s["digest"]);
    let found_bare = syft(&bare, true);
    assert!(!found_bare
        .iter()
        .any(|(ty, n, _)| ty == "deb" && n == "ca-certificates"));
    assert!(found_bare
        .iter()
        .any(|(ty, n, _)| ty == "deb" && n == "libcurl4"));
}

#[test]
#[ignore = "needs go, syft and pyspdxtools"]
fn hello_http_module_and_go_version_are_seen() {
    need(&["go", "syft", "pyspdxtools"]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("hello.tar");
    let sbom = dir.path().join("hello.spdx.json");
    pack_json(
        binpack()
            .args(["go"])
            .arg(repo().join("examples/hello-http"))
            .arg("-o")
            .arg(&archive)
            .arg("--sbom")
            .arg(&sbom),
    );
    validate(&sbom);
    let go = stdout(&ok(Command::new("go").args(["env", "GOVERSION"])));
    let found = syft(&archive, true);
    assert!(
        found
            .iter()
            .any(|(ty, n, _)| ty == "go-module" && n == "example.com/hello-http"),
        "{found:?}"
    );
    assert!(has(&found, "go-module", "stdlib", go.trim()), "{found:?}");
    let text = std::fs::read_to_string(&sbom).unwrap();
    assert!(
        text.contains("pkg:golang/example.com/hello-http@"),
        "{text}"
    );
}

/// Versions of `names` in Cargo.lock.
fn locked(names: &[&str]) -> Vec<(String, String)> {
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    names
        .iter()
        .map(|n| {
            let at = lock
                .find(&format!("name = \"{n}\"\nversion = \""))
                .unwrap_or_else(|| panic!("{n} is not in Cargo.lock"));
            let v = lock[at..].lines().nth(1).unwrap();
            let v = v.trim_start_matches("version = \"").trim_end_matches('"');
            (n.to_string(), v.to_string())
        })
        .collect()
}

#[test]
#[ignore = "needs cargo, syft and pyspdxtools"]
fn binpack_crates_are_seen() {
    need(&["cargo", "syft", "pyspdxtools"]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("binpack.tar");
    let sbom = dir.path().join("binpack.spdx.json");
    pack_json(
        binpack()
            .current_dir(repo())
            .args(["cargo", "--bin", "binpack", "-o"])
            .arg(&archive)
            .arg("--sbom")
            .arg(&sbom),
    );
    validate(&sbom);
    let found = syft(&archive, true);
    for (name, version) in locked(&["binpack", "clap", "goblin", "serde_json", "sha2", "ureq"]) {
        assert!(
            has(&found, "rust-crate", &name, &version),
            "syft does not see {name} {version}: {found:?}"
        );
    }
    // Only the crates of this platform's build: no Windows-only ones.
    assert!(!found.iter().any(|(_, n, _)| n == "windows-sys"));
}

#[test]
#[ignore = "needs node, npm, syft and pyspdxtools"]
fn express_packages_and_node_are_seen() {
    need(&["node", "npm", "syft", "pyspdxtools"]);
    let app = repo().join("examples/node-express");
    if !app.join("node_modules").is_dir() {
        ok(Command::new("npm")
            .current_dir(&app)
            .args(["ci", "--no-audit", "--no-fund"]));
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("express.tar");
    let sbom = dir.path().join("express.spdx.json");
    pack_json(
        binpack()
            .args(["node"])
            .arg(app.join("server.js"))
            .arg("-o")
            .arg(&archive)
            .arg("--sbom")
            .arg(&sbom),
    );
    validate(&sbom);
    let found = syft(&archive, true);
    let version = |pkg: &str| -> String {
        let p = app.join("node_modules").join(pkg).join("package.json");
        let v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v["version"].as_str().unwrap().to_string()
    };
    for pkg in ["express", "body-parser", "cookie", "send"] {
        let v = version(pkg);
        assert!(
            found.iter().any(|(_, n, fv)| n == pkg && *fv == v),
            "syft does not see {pkg} {v}: {found:?}"
        );
    }
    let node = stdout(&ok(Command::new("node").arg("--version")));
    let node = node.trim();
    assert!(
        found
            .iter()
            .any(|(_, n, v)| n == "node"
                && v.trim_start_matches('v') == node.trim_start_matches('v')),
        "syft does not see node {node}: {found:?}"
    );
}

#[test]
#[ignore = "needs docker-registry and skopeo"]
fn pushed_image_gets_its_sbom_attached_once() {
    need(&["docker-registry", "skopeo"]);
    let reg = Registry::start(None);
    let cache = tempfile::tempdir().unwrap();
    let target = format!("127.0.0.1:{}/sbom/id:1", reg.port);
    let push = || {
        pack_json(binpack().env("BINPACK_CACHE", cache.path()).args([
            "bin",
            "/usr/bin/id",
            "--push",
            &target,
        ]))
    };
    let first = push();
    let digest = first["digest"].as_str().unwrap().to_string();
    let second = push();
    assert_eq!(second["digest"], first["digest"]);
    assert_eq!(second["push"]["uploaded"], 0, "{second}");

    // This registry (distribution 2.8) has no referrers API: the tag fallback holds it.
    let repo = format!("127.0.0.1:{}/sbom/id", reg.port);
    let index = raw_manifest(&format!("{repo}:{}", digest.replace(':', "-")));
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "pushed twice, attached twice: {index}");
    assert_eq!(listed[0]["artifactType"], "application/spdx+json");
    let artifact = raw_manifest(&format!("{repo}@{}", listed[0]["digest"].as_str().unwrap()));
    assert_eq!(artifact["subject"]["digest"], digest.as_str(), "{artifact}");
    assert_eq!(artifact["layers"][0]["mediaType"], "application/spdx+json");
}
