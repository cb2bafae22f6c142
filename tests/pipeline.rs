//! The back half of the pipeline as a library, with no toolchain and no engine: fixture ELFs
//! through `pack` to each output, checked file by file.

use binpack::build::Artifact;
use binpack::emit::{Archive, OciLayout, Output};
use binpack::layers::LayerCache;
use binpack::pack::{self, PackOptions};
use binpack::progress::{Progress, Silent};
use binpack::runconfig::RunOptions;
use binpack::summary::Summary;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// A minimal static ELF64 executable for `machine`: a header, one PT_LOAD, a few code bytes.
fn fixture_elf(machine: u16) -> Vec<u8> {
    let code = [0xf4u8; 16];
    let size = (64 + 56 + code.len()) as u64;
    let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    b.extend(2u16.to_le_bytes()); // ET_EXEC
    b.extend(machine.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    b.extend((0x400000u64 + 120).to_le_bytes()); // entry
    b.extend(64u64.to_le_bytes()); // phoff
    b.extend(0u64.to_le_bytes()); // shoff
    b.extend(0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        b.extend(v.to_le_bytes());
    }
    b.extend(1u32.to_le_bytes()); // PT_LOAD
    b.extend(5u32.to_le_bytes()); // R+X
    for v in [0u64, 0x400000, 0x400000, size, size, 0x1000] {
        b.extend(v.to_le_bytes());
    }
    b.extend(code);
    b
}

fn write_fixture(dir: &Path, name: &str, machine: u16) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, fixture_elf(machine)).unwrap();
    p
}

fn options(cache: LayerCache) -> PackOptions {
    PackOptions {
        run: RunOptions {
            source_date_epoch: Some(1_700_000_000),
            cmd: vec!["--port".into(), "8080".into()],
            ..RunOptions::default()
        },
        layer_cache: cache,
        ..PackOptions::default()
    }
}

fn layout(dir: &Path) -> Vec<Box<dyn Output>> {
    vec![Box::new(OciLayout {
        dir: dir.to_path_buf(),
    })]
}

/// Packs `artifact` into an OCI layout at `out`, with no layer cache.
fn pack_layout(artifact: &Artifact, out: &Path) -> Summary {
    let opts = options(LayerCache::off());
    pack::pack(artifact, &opts, &layout(out), &Silent).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &Value) -> PathBuf {
    let d = digest.as_str().unwrap();
    layout
        .join("blobs/sha256")
        .join(d.strip_prefix("sha256:").unwrap())
}

/// Every blob's file is named by the sha256 of its bytes.
fn assert_blobs_verify(layout: &Path) {
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let sum = format!("{:x}", Sha256::digest(std::fs::read(e.path()).unwrap()));
        assert_eq!(sum, e.file_name().to_string_lossy(), "blob {:?}", e.path());
    }
}

/// (path, mode, uid, kind) of each entry of a gzip layer.
fn layer_entries(path: &Path) -> Vec<(String, u32, u64, char)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut tar)
        .unwrap();
    let mut a = tar::Archive::new(tar.as_slice());
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                _ => 'f',
            };
            let path = e.path().unwrap().to_string_lossy().into_owned();
            (path, h.mode().unwrap(), h.uid().unwrap(), kind)
        })
        .collect()
}

#[test]
fn a_static_fixture_packs_to_an_oci_layout() {
    let dir = tempfile::tempdir().unwrap();
    let exe = write_fixture(dir.path(), "hello", EM_X86_64);
    let artifact = Artifact::prebuilt(&exe, Path::new("/"));
    let out = dir.path().join("layout");
    let s = pack_layout(&artifact, &out);
    assert_eq!(s.image.base.to_string(), "scratch");
    assert_eq!(s.reference, "hello:latest");
    assert_eq!(s.outputs.oci_layout.as_deref(), Some(out.as_path()));
    assert_blobs_verify(&out);

    let index = json(&out.join("index.json"));
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], s.digest.as_str());
    assert_eq!(entry["platform"]["architecture"], "amd64");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let manifest = json(&blob(&out, &entry["digest"]));
    let config = json(&blob(&out, &manifest["config"]["digest"]));
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/app/hello"])
    );
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["--port", "8080"])
    );
    assert_eq!(config["config"]["User"], "65532");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.title"],
        "hello"
    );
    let env = config["config"]["Env"].to_string();
    assert!(
        env.contains("SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env}"
    );

    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "scratch: one layer, binpack's");
    let entries = layer_entries(&blob(&out, &layers[0]["digest"]));
    let find = |p: &str| {
        entries
            .iter()
            .find(|e| e.0 == p)
            .unwrap_or_else(|| panic!("{p} missing: {entries:?}"))
    };
    assert_eq!(find("app/hello").1, 0o755);
    assert_eq!(find("etc/passwd").1, 0o644);
    assert_eq!(find("etc/ssl/certs/ca-certificates.crt").3, 'f');
    assert_eq!(find("tmp/").1, 0o1777);
    assert_eq!(find("home/nonroot/").2, 65532);
    assert!(
        entries.iter().all(|e| !e.0.starts_with("lib")),
        "no libraries for a static binary"
    );

    // The same input gives the same digest.
    let again = dir.path().join("again");
    let s2 = pack_layout(&artifact, &again);
    assert_eq!(s2.digest, s.digest);
}

#[test]
fn two_platforms_make_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let amd = Artifact::prebuilt(
        &write_fixture(dir.path(), "app-amd64", EM_X86_64),
        Path::new("/"),
    );
    let mut arm = Artifact::prebuilt(
        &write_fixture(dir.path(), "app-arm64", EM_AARCH64),
        Path::new("/"),
    );
    // The name is the program's; the build says which arm64 it targeted.
    arm.name = amd.name.clone();
    arm.provenance.platform = Some(binpack::platform::Platform {
        os: "linux".into(),
        arch: "arm64".into(),
        variant: Some("v8".into()),
    });
    let out = dir.path().join("layout");
    let s = pack::pack_all(
        &[&amd, &arm],
        &options(LayerCache::off()),
        &layout(&out),
        &Silent,
    )
    .unwrap();
    assert_blobs_verify(&out);
    let top = json(&out.join("index.json"));
    assert_eq!(top["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        top["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(top["manifests"][0]["digest"], s.digest.as_str());
    let index = json(&blob(&out, &top["manifests"][0]["digest"]));
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let v = p["variant"]
                .as_str()
                .map(|v| format!("/{v}"))
                .unwrap_or_default();
            format!(
                "{}/{}{v}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    for m in index["manifests"].as_array().unwrap() {
        let manifest = json(&blob(&out, &m["digest"]));
        let config = json(&blob(&out, &manifest["config"]["digest"]));
        assert_eq!(config["architecture"], m["platform"]["architecture"]);
    }
    assert_eq!(s.platform, "linux/amd64, linux/arm64/v8");
    assert_eq!(s.manifests.len(), 2);
}

#[test]
fn the_archive_holds_the_layout_and_a_docker_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let exe = write_fixture(dir.path(), "hello", EM_X86_64);
    let artifact = Artifact::prebuilt(&exe, Path::new("/"));
    let path = dir.path().join("out/hello.tar");
    let outputs: Vec<Box<dyn Output>> = vec![Box::new(Archive { path: path.clone() })];
    let s = pack::pack(&artifact, &options(LayerCache::off()), &outputs, &Silent).unwrap();
    assert_eq!(s.outputs.output.as_deref(), Some(path.as_path()));
    let unpacked = dir.path().join("unpacked");
    tar::Archive::new(std::fs::File::open(&path).unwrap())
        .unpack(&unpacked)
        .unwrap();
    assert_blobs_verify(&unpacked);
    assert!(unpacked.join("oci-layout").is_file());
    assert_eq!(
        json(&unpacked.join("index.json"))["manifests"][0]["digest"],
        s.digest.as_str()
    );
    let docker = json(&unpacked.join("manifest.json"));
    assert_eq!(docker[0]["RepoTags"][0], "hello:latest");
    let config = docker[0]["Config"].as_str().unwrap();
    assert!(unpacked.join(config).is_file(), "{config}");
    for l in docker[0]["Layers"].as_array().unwrap() {
        assert!(unpacked.join(l.as_str().unwrap()).is_file());
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        1,
        "nothing but the archive beside it"
    );
}

#[test]
fn a_layout_output_never_replaces_a_directory_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let exe = write_fixture(dir.path(), "hello", EM_X86_64);
    let artifact = Artifact::prebuilt(&exe, Path::new("/"));
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("keep"), b"x").unwrap();
    let err = pack::pack(
        &artifact,
        &options(LayerCache::off()),
        &layout(&precious),
        &Silent,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("is not an OCI image layout"),
        "{err}"
    );
    assert!(precious.join("keep").exists());
}

#[test]
fn nothing_to_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let exe = write_fixture(dir.path(), "hello", EM_X86_64);
    let err = pack::pack(
        &Artifact::prebuilt(&exe, Path::new("/")),
        &options(LayerCache::off()),
        &[],
        &Silent,
    )
    .unwrap_err();
    assert!(err.to_string().contains("nothing to write"), "{err}");
}

/// Remembers the stages reported.
#[derive(Default)]
struct Stages(RefCell<Vec<String>>);
impl Progress for Stages {
    fn stage(&self, m: &str) {
        self.0.borrow_mut().push(m.to_string());
    }
}

fn pack_cached(artifact: &Artifact, cache: &Path, out: &Path) -> (Summary, Vec<String>) {
    let stages = Stages::default();
    let s = pack::pack(
        artifact,
        &options(LayerCache::at(cache)),
        &layout(out),
        &stages,
    )
    .unwrap();
    (s, stages.0.into_inner())
}

#[test]
fn a_known_layer_comes_from_the_cache_and_a_damaged_one_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let exe = write_fixture(dir.path(), "hello", EM_X86_64);
    let artifact = Artifact::prebuilt(&exe, Path::new("/"));
    let (first, stages) = pack_cached(&artifact, &cache, &dir.path().join("a"));
    assert!(
        stages.iter().any(|s| s.starts_with("writing the layer")),
        "{stages:?}"
    );
    let (second, stages) = pack_cached(&artifact, &cache, &dir.path().join("b"));
    assert_eq!(second.digest, first.digest);
    assert!(
        stages.iter().any(|s| s.contains("taken from the cache")),
        "{stages:?}"
    );
    assert_blobs_verify(&dir.path().join("b"));

    // A cached blob whose bytes changed is not used.
    for e in std::fs::read_dir(cache.join("blobs/sha256")).unwrap() {
        std::fs::write(e.unwrap().path(), b"damaged").unwrap();
    }
    let (third, stages) = pack_cached(&artifact, &cache, &dir.path().join("c"));
    assert_eq!(third.digest, first.digest);
    assert!(
        stages.iter().any(|s| s.starts_with("writing the layer")),
        "{stages:?}"
    );
    assert_blobs_verify(&dir.path().join("c"));

    // Another input is another key.
    std::fs::write(&exe, [fixture_elf(EM_X86_64), vec![0]].concat()).unwrap();
    let (fourth, stages) = pack_cached(&artifact, &cache, &dir.path().join("d"));
    assert_ne!(fourth.digest, first.digest);
    assert!(
        stages.iter().any(|s| s.starts_with("writing the layer")),
        "{stages:?}"
    );
}

/// A base image put straight into binpack's cache, as a pull would leave it; returns its
/// manifest digest.
fn cached_base(cache: &Path) -> String {
    let put = |bytes: &[u8]| -> String {
        let hex = format!("{:x}", Sha256::digest(bytes));
        let dir = cache.join("blobs/sha256");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(12);
    h.set_mode(0o644);
    tar.append_data(&mut h, "etc/os-release", &b"ID=testbase\n"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let layer = put(&gz);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/bin", "LANG=C.UTF-8"], "User": "base-user",
                   "WorkingDir": "/srv", "Labels": {"vendor": "test"}},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{:x}", Sha256::digest(&tar))]},
        "history": [{"created_by": "the base"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": gz.len()}],
    });
    put(&serde_json::to_vec(&manifest).unwrap())
}

#[test]
fn an_image_base_from_the_cache_keeps_its_settings_and_takes_the_users_ca_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let manifest = cached_base(&cache);
    // Pinned and cached: served without the network (the address refuses connections).
    std::env::set_var("BINPACK_CACHE", &cache);
    let base = format!("127.0.0.1:1/base@{manifest}");
    let exe = write_fixture(dir.path(), "hello", EM_X86_64);
    let ca = dir.path().join("my-ca.pem");
    std::fs::write(&ca, b"-----BEGIN CERTIFICATE-----\nmine\n").unwrap();
    let mut opts = options(LayerCache::off());
    opts.base = base.parse().unwrap();
    opts.ca_bundle = Some(ca);
    let out = dir.path().join("layout");
    let artifact = Artifact::prebuilt(&exe, Path::new("/"));
    let s = pack::pack(&artifact, &opts, &layout(&out), &Silent).unwrap();
    assert_eq!(
        s.image.base_manifest.as_ref().map(|d| d.to_string()),
        Some(manifest)
    );
    assert_blobs_verify(&out);

    let index = json(&out.join("index.json"));
    let m = json(&blob(&out, &index["manifests"][0]["digest"]));
    let config = json(&blob(&out, &m["config"]["digest"]));
    let c = &config["config"];
    assert_eq!(c["User"], "base-user");
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["Labels"]["vendor"], "test");
    assert_eq!(c["Labels"]["org.opencontainers.image.title"], "hello");
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/bin",
            "LANG=C.UTF-8",
            "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
        ])
    );
    assert_eq!(config["history"][0]["created_by"], "the base");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "the base's layer, then binpack's");
    let entries = layer_entries(&blob(&out, &layers[1]["digest"]));
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert!(
        names.contains(&"etc/ssl/certs/ca-certificates.crt"),
        "{names:?}"
    );
    assert!(names.contains(&"app/hello"), "{names:?}");
    assert!(
        !names.contains(&"etc/passwd"),
        "the base brings its own users: {names:?}"
    );
}
