//! An image base served from binpack's cache with no network. Its own process: it points
//! BINPACK_CACHE, which every pull reads, at a cache the test fills.

mod common;

use binpack::build::Artifact;
use binpack::layers::LayerCache;
use binpack::pack;
use binpack::progress::Silent;
use common::fixture::*;
use sha2::{Digest as _, Sha256};
use std::path::Path;

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
    let (tar, gz) = base_layer();
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
            "SSL_CERT_FILE=/app/.ca-certificates.crt"
        ])
    );
    assert_eq!(config["history"][0]["created_by"], "the base");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2, "the base's layer, then binpack's");
    let entries = layer_entries(&blob(&out, &layers[1]["digest"]));
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert!(names.contains(&"app/.ca-certificates.crt"), "{names:?}");
    assert!(names.contains(&"app/hello"), "{names:?}");
    // Nothing over the base's /etc (its users, and a directory entry would replace a symlink).
    assert!(!names.iter().any(|n| n.starts_with("etc")), "{names:?}");
}
