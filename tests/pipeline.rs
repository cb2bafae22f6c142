//! The back half of the pipeline as a library, with no toolchain and no engine: fixture ELFs
//! through `pack` to each output, checked file by file.

mod common;

use binpack::build::Artifact;
use binpack::emit::{Archive, Output};
use binpack::layers::LayerCache;
use binpack::pack;
use binpack::progress::{Progress, Silent};
use binpack::summary::Summary;
use common::fixture::*;
use std::cell::RefCell;
use std::path::Path;

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
        assert_eq!(config["variant"], m["platform"]["variant"]);
        for l in manifest["layers"].as_array().unwrap() {
            assert!(blob(&out, &l["digest"]).is_file(), "{l}");
        }
    }
    // The archive of an index: the index for skopeo and podman, the host's image for docker.
    let tar = dir.path().join("multi.tar");
    let archive: Vec<Box<dyn Output>> = vec![Box::new(Archive {
        path: tar.clone(),
        ..Default::default()
    })];
    let a = pack::pack_all(
        &[&amd, &arm],
        &options(LayerCache::off()),
        &archive,
        &Silent,
    )
    .unwrap();
    assert_eq!(a.digest, s.digest);
    let unpacked = dir.path().join("unpacked");
    tar::Archive::new(std::fs::File::open(&tar).unwrap())
        .unpack(&unpacked)
        .unwrap();
    assert_eq!(json(&unpacked.join("index.json")), top);
    let docker = json(&unpacked.join("manifest.json"));
    let host = &index["manifests"][0];
    assert_eq!(host["platform"]["architecture"], "amd64");
    let host_config = &json(&blob(&out, &host["digest"]))["config"]["digest"];
    assert_eq!(
        docker[0]["Config"].as_str().unwrap(),
        format!(
            "blobs/sha256/{}",
            host_config.as_str().unwrap().trim_start_matches("sha256:")
        )
    );
    assert_eq!(s.platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(s.platform, "linux/amd64", "the image described: the host's");
    assert_eq!(s.manifests.len(), 2);
}

#[test]
fn the_archive_holds_the_layout_and_a_docker_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let exe = write_fixture(dir.path(), "hello", EM_X86_64);
    let artifact = Artifact::prebuilt(&exe, Path::new("/"));
    let path = dir.path().join("out/hello.tar");
    let outputs: Vec<Box<dyn Output>> = vec![Box::new(Archive {
        path: path.clone(),
        ..Default::default()
    })];
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

/// The permission bits of a layout's blobs.
fn blob_modes(layout: &Path) -> Vec<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mut modes: Vec<u32> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().permissions().mode() & 0o777)
        .collect();
    modes.sort();
    modes
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

    // The damaged entry was replaced: the next build takes it from the cache again.
    let (healed, stages) = pack_cached(&artifact, &cache, &dir.path().join("h"));
    assert_eq!(healed.digest, first.digest);
    assert!(
        stages.iter().any(|s| s.contains("taken from the cache")),
        "{stages:?}"
    );
    // A blob from the cache is as readable in the layout as one written now.
    assert_eq!(
        blob_modes(&dir.path().join("h")),
        blob_modes(&dir.path().join("a"))
    );

    // Another timestamp is another key.
    let stages = Stages::default();
    let mut opts = options(LayerCache::at(&cache));
    opts.run.source_date_epoch = Some(1);
    let later = pack::pack(&artifact, &opts, &layout(&dir.path().join("t")), &stages).unwrap();
    assert_ne!(later.digest, first.digest);
    assert!(
        stages
            .0
            .borrow()
            .iter()
            .any(|s| s.starts_with("writing the layer")),
        "{stages:?}",
        stages = stages.0.borrow()
    );

    // Another input is another key.
    std::fs::write(&exe, [fixture_elf(EM_X86_64), vec![0]].concat()).unwrap();
    let (fourth, stages) = pack_cached(&artifact, &cache, &dir.path().join("d"));
    assert_ne!(fourth.digest, first.digest);
    assert!(
        stages.iter().any(|s| s.starts_with("writing the layer")),
        "{stages:?}"
    );
}
