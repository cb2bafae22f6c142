//! Multi-arch images end to end: `--platform linux/amd64,linux/arm64` of a Go program, the
//! express example and a Rust crate, pushed to a distribution registry on 127.0.0.1 as one
//! OCI index, read back with skopeo and run by docker on both platforms (arm64 under
//! qemu-user-static, registered with binfmt_misc by scripts/install-deps.sh).

mod common;

use common::fixture::json;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// binpack with a private push record and Docker config, and the shared download cache.
fn binpack_in(cache: &Path) -> Command {
    let mut c = binpack();
    c.env("BINPACK_CACHE", cache);
    c.env("DOCKER_CONFIG", cache.join("docker-config"));
    c
}

/// The index's platforms as `os/arch[/variant]`, checking there is nothing but images in it.
fn index_platforms(index: &Value) -> Vec<String> {
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            let p = &m["platform"];
            let mut s = format!("{}/{}", p["os"].as_str().unwrap(), p["architecture"]);
            if let Some(v) = p["variant"].as_str() {
                s = format!("{s}/{v}");
            }
            s.replace('"', "")
        })
        .collect()
}

/// `docker run --platform P` of `reference` (pulled for that platform, removed after).
fn docker_run(reference: &str, platform: &str, args: &[&str]) -> String {
    let _clean = DockerCleanup(vec![reference.to_string()]);
    ok(Command::new("docker").args(["pull", "-q", "--platform", platform, reference]));
    let out = ok(Command::new("docker")
        .args(["run", "--rm", "--platform", platform, reference])
        .args(args));
    stdout(&out).trim().to_string()
}

/// A Go main package that prints runtime.GOARCH.
fn goarch_program(dir: &Path) -> PathBuf {
    let src = dir.join("goarch");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/goarch\n\ngo 1.21\n").unwrap();
    std::fs::write(
        src.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\t\"runtime\"\n)\n\nfunc main() { fmt.Println(runtime.GOARCH) }\n",
    )
    .unwrap();
    src
}

#[test]
#[ignore = "needs go, docker-registry, skopeo, qemu-user-static (binfmt_misc) and a Docker engine"]
fn go_index_runs_on_amd64_and_arm64_and_is_reproducible() {
    need(&["go", "docker-registry", "skopeo"]);
    need_docker();
    let tmp = tempfile::tempdir().unwrap();
    let src = goarch_program(tmp.path());
    let reg = Registry::start(None);
    let tag = reg.reference("goarch:1");
    let build = |out: &str| {
        pack_json(
            binpack_in(&tmp.path().join("cache"))
                .arg("go")
                .arg(&src)
                .args(["--platform", "linux/amd64,linux/arm64", "--push", &tag])
                .arg("-o")
                .arg(tmp.path().join(out))
                .arg("--oci-layout")
                .arg(tmp.path().join(format!("{out}.layout"))),
        )
    };
    let first = build("one.tar");
    let digest = first["digest"].as_str().unwrap().to_string();
    let manifests = first["manifests"].as_array().unwrap();
    let summary: Vec<&str> = manifests
        .iter()
        .map(|m| m["platform"].as_str().unwrap())
        .collect();
    assert_eq!(summary, ["linux/amd64", "linux/arm64/v8"], "{first}");
    assert!(manifests
        .iter()
        .all(|m| m["size"]["compressed"].as_u64() > Some(0)));
    println!("go index {digest}: {summary:?}");

    // The registry serves the index, both platforms and nothing else.
    let index = raw_manifest(&tag);
    assert_eq!(index_platforms(&index), ["linux/amd64", "linux/arm64/v8"]);
    for (m, s) in index["manifests"].as_array().unwrap().iter().zip(manifests) {
        assert_eq!(m["digest"], s["digest"]);
    }
    // The archive and the layout hold the index, as skopeo reads them.
    let one = tmp.path().join("one.tar");
    for source in [
        format!("oci-archive:{}", one.display()),
        format!("oci:{}:1", tmp.path().join("one.tar.layout").display()),
    ] {
        let out = ok(Command::new("skopeo").args(["inspect", "--raw", &source]));
        let raw: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(raw, index, "{source}");
    }
    // The OCI layout names the same index.
    let layout = json(&tmp.path().join("one.tar.layout/index.json"));
    assert_eq!(layout["manifests"][0]["digest"], digest.as_str());
    assert_eq!(
        layout["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );

    assert_eq!(docker_run(&tag, "linux/arm64", &[]), "arm64");
    assert_eq!(docker_run(&tag, "linux/amd64", &[]), "amd64");

    // Again: the same index, and every blob already in the registry.
    let second = build("two.tar");
    assert_eq!(second["digest"], digest.as_str(), "{second}");
    assert_eq!(second["push"]["uploaded"], 0, "{second}");
    assert_eq!(
        std::fs::read(tmp.path().join("one.tar")).unwrap(),
        std::fs::read(tmp.path().join("two.tar")).unwrap(),
        "the archives differ"
    );
    // docker 20.10 loads the archive: the host's platform.
    // (The archive names the image as pushed.)
    let loaded = DockerCleanup(vec![tag.clone()]);
    ok(Command::new("docker")
        .args(["load", "-i"])
        .arg(tmp.path().join("one.tar")));
    let out = ok(Command::new("docker").args(["run", "--rm", &tag]));
    assert_eq!(stdout(&out).trim(), "amd64");
    drop(loaded);

    // An index as the base: each platform gets its own; a platform it lacks is refused
    // with the ones it has.
    let on_base = pack_json(
        binpack_in(&tmp.path().join("cache"))
            .arg("go")
            .arg(&src)
            .args(["--platform", "linux/arm64,linux/amd64", "--base", &tag])
            .arg("-o")
            .arg(tmp.path().join("on-base.tar")),
    );
    let bases: Vec<&Value> = on_base["manifests"].as_array().unwrap().iter().collect();
    assert_eq!(bases[0]["platform"], "linux/arm64/v8");
    let base_layer = |platform: &str| {
        let m = raw_manifest(&format!(
            "{}@{}",
            reg.reference("goarch"),
            index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["platform"]["architecture"] == platform)
                .unwrap()["digest"]
                .as_str()
                .unwrap()
        ));
        m["layers"][0]["digest"].clone()
    };
    let archive = ArchiveFiles::open(&tmp.path().join("on-base.tar"));
    for (m, arch) in bases.iter().zip(["arm64", "amd64"]) {
        let manifest: Value = serde_json::from_slice(archive.blob(&m["digest"])).unwrap();
        assert_eq!(manifest["layers"][0]["digest"], base_layer(arch), "{arch}");
    }
    let out = binpack_in(&tmp.path().join("cache"))
        .arg("go")
        .arg(&src)
        .args(["--platform", "linux/amd64,linux/386", "--base", &tag])
        .arg("-o")
        .arg(tmp.path().join("refused.tar"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("linux/386") && err.contains("linux/amd64, linux/arm64"),
        "{err}"
    );
    assert!(!tmp.path().join("refused.tar").exists());
}

#[test]
#[ignore = "needs node, npm, docker-registry, skopeo, qemu-user-static, libc6:arm64 and a Docker engine"]
fn node_express_index_answers_http_on_arm64() {
    need(&["node", "npm", "docker-registry", "skopeo"]);
    need_docker();
    let app = repo().join("examples/node-express");
    if !app.join("node_modules").is_dir() {
        ok(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&app));
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start(None);
    let tag = reg.reference("express:1");
    let mut c = binpack_in(&tmp.path().join("cache"));
    // The official node runtimes are shared with the other node tests.
    c.env("BINPACK_CACHE", repo().join("target/test-cache/binpack"));
    let s = pack_json(
        c.arg("node")
            .arg(&app)
            .args(["--platform", "linux/amd64,linux/arm64"])
            .args(["--root", "linux/arm64=/", "--push", &tag])
            .arg("-o")
            .arg(tmp.path().join("express.tar")),
    );
    println!("node index {}", s["digest"]);
    assert_eq!(
        index_platforms(&raw_manifest(&tag)),
        ["linux/amd64", "linux/arm64/v8"]
    );

    let name = "binpack-multiarch-express";
    let _clean = DockerCleanup(vec![name.into(), tag.clone()]);
    ok(Command::new("docker").args(["pull", "-q", "--platform", "linux/arm64", &tag]));
    let port = free_port();
    ok(Command::new("docker").args([
        "run",
        "-d",
        "--platform",
        "linux/arm64",
        "--name",
        name,
        "--network",
        "host",
        "-e",
        &format!("PORT={port}"),
        &tag,
    ]));
    let arch =
        ok(Command::new("docker").args(["image", "inspect", "-f", "{{.Architecture}}", &tag]));
    assert_eq!(stdout(&arch).trim(), "arm64");
    let resp = http_get(port, "/").unwrap_or_else(|| {
        let logs = Command::new("docker")
            .args(["logs", name])
            .output()
            .unwrap();
        panic!("no answer under arm64 emulation: {}", stderr(&logs));
    });
    assert!(resp.contains("hello from binpack node"), "{resp}");

    // A root without that platform's libraries is named, and nothing is written.
    let empty = tmp.path().join("empty-root");
    std::fs::create_dir(&empty).unwrap();
    let out = binpack()
        .env("BINPACK_CACHE", repo().join("target/test-cache/binpack"))
        .arg("node")
        .arg(&app)
        .args(["--platform", "linux/arm64"])
        .arg(format!("--root=linux/arm64={}", empty.display()))
        .arg("-o")
        .arg(tmp.path().join("no-libs.tar"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ld-linux-aarch64.so.1") && err.contains(&*empty.to_string_lossy()),
        "{err}"
    );
    assert!(!tmp.path().join("no-libs.tar").exists());
}

/// A crate whose binary prints the architecture it was compiled for, and " avx2" when its CPU
/// level has AVX2 (x86-64-v3).
fn arch_crate(dir: &Path) -> PathBuf {
    let root = dir.join("archcrate");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"archcrate\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    let avx2 = if cfg!(target_feature = \"avx2\") { \" avx2\" } else { \"\" };\n    println!(\"{}{avx2}\", std::env::consts::ARCH);\n}\n",
    )
    .unwrap();
    root
}

#[test]
#[ignore = "needs the aarch64-unknown-linux-gnu Rust target, gcc-aarch64-linux-gnu, docker-registry, skopeo and a Docker engine"]
fn cargo_builds_each_target_and_names_a_missing_one() {
    need(&[
        "cargo",
        "rustup",
        "aarch64-linux-gnu-gcc",
        "docker-registry",
        "skopeo",
    ]);
    need_docker();
    let tmp = tempfile::tempdir().unwrap();
    let krate = arch_crate(tmp.path());
    let reg = Registry::start(None);
    let tag = reg.reference("archcrate:1");
    let s = pack_json(
        binpack_in(&tmp.path().join("cache"))
            .arg("cargo")
            .arg("--manifest-dir")
            .arg(&krate)
            .args(["--platform", "linux/amd64,linux/arm64", "--push", &tag])
            .arg("-o")
            .arg(tmp.path().join("archcrate.tar")),
    );
    println!("cargo index {}", s["digest"]);
    assert_eq!(
        index_platforms(&raw_manifest(&tag)),
        ["linux/amd64", "linux/arm64/v8"]
    );
    assert_eq!(docker_run(&tag, "linux/arm64", &[]), "aarch64");
    assert_eq!(docker_run(&tag, "linux/amd64", &[]), "x86_64");

    // A target that is not installed is named with the command that installs it.
    let out = binpack_in(&tmp.path().join("cache"))
        .arg("cargo")
        .arg("--manifest-dir")
        .arg(&krate)
        .args(["--platform", "linux/s390x"])
        .arg("-o")
        .arg(tmp.path().join("s390x.tar"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("rustup target add s390x-unknown-linux-gnu")
            && err.contains("s390x-linux-gnu-gcc"),
        "{err}"
    );
    assert!(!tmp.path().join("s390x.tar").exists());

    // A variant is a CPU level, as GOAMD64 is for Go: amd64/v3 code has AVX2.
    let v3 = reg.reference("archcrate:v3");
    pack_json(
        binpack_in(&tmp.path().join("cache"))
            .arg("cargo")
            .arg("--manifest-dir")
            .arg(&krate)
            .args(["--platform", "linux/amd64/v3", "--push", &v3])
            .arg("-o")
            .arg(tmp.path().join("v3.tar")),
    );
    assert_eq!(docker_run(&v3, "linux/amd64/v3", &[]), "x86_64 avx2");
}

/// The host's native addon (bufferutil's linux-x64 prebuild, from the corpus) in an arm64
/// image would fail when node loads it: refused at build time, naming the addon, nothing written.
#[test]
#[ignore = "needs node and npm (the corpus installed by scripts/install-deps.sh all)"]
fn a_host_addon_in_an_arm64_image_is_refused() {
    need(&["node", "npm"]);
    let project = repo().join("tests/corpus/node/bufferutil");
    assert!(
        project.join("node_modules/bufferutil").is_dir(),
        "{} has no node_modules: run scripts/install-deps.sh all",
        project.display()
    );
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("bu.tar");
    let r = binpack_in(cache.path())
        .args(["node", "--platform", "linux/arm64", "-o"])
        .arg(&out)
        .arg(&project)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bufferutil/prebuilds/linux-x64/bufferutil.node")
            && err.contains("built for linux/amd64, not linux/arm64/v8"),
        "{err}"
    );
    assert!(!out.exists(), "a refused build wrote {}", out.display());
}
