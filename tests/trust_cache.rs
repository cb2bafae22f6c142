//! The layer cache cannot change an image (issue 23, items 2 and 13): a record copied from
//! another key, a record rewritten to name the key with another layer's digests, and a blob
//! damaged in place with its size and mtime kept are all misses; the build gives the same
//! layer as without the cache.

use binpack::emit::Staging;
use binpack::layer::{Content, Tree};
use binpack::layers::{key, write_layers, LayerCache};
use binpack::support::digest::Digest;
use binpack::support::progress::Silent;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn tree(program: &str) -> Tree {
    let mut t = Tree::new();
    let bytes = std::fs::read(program).unwrap();
    t.file("app/prog", Content::Bytes(bytes), 0o755).unwrap();
    t
}

/// The layer `tree` gets with the cache in `dir`, and the bytes of its staged blob.
fn build(tree: &Tree, dir: &Path) -> (Digest, Vec<u8>) {
    let staging = Staging::new().unwrap();
    let cache = LayerCache::at(dir);
    let stats = write_layers(std::slice::from_ref(tree), 0, &staging, &cache, &Silent).unwrap();
    let digest = stats[0].digest.clone();
    let bytes = std::fs::read(staging.blob_path(&digest)).unwrap();
    (digest, bytes)
}

fn record(dir: &Path, tree: &Tree) -> std::path::PathBuf {
    dir.join("layers")
        .join(format!("{}.json", key(tree, 0).unwrap().hex()))
}

#[test]
fn a_record_of_another_key_or_another_layer_is_a_miss() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (tree("/usr/bin/id"), tree("/usr/bin/env"));
    let (want, _) = build(&a, d.path());
    let (other, _) = build(&b, d.path());
    assert_ne!(want, other);
    // B's record copied over A's.
    std::fs::copy(record(d.path(), &b), record(d.path(), &a)).unwrap();
    assert_eq!(
        build(&a, d.path()).0,
        want,
        "a record copied from another key"
    );
    // B's digests under A's key, the record naming A's key.
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record(d.path(), &b)).unwrap()).unwrap();
    r["key"] = key(&a, 0).unwrap().to_string().into();
    std::fs::write(record(d.path(), &a), serde_json::to_vec(&r).unwrap()).unwrap();
    assert_eq!(
        build(&a, d.path()).0,
        want,
        "another layer's blob for this key"
    );
}

#[test]
fn a_blob_damaged_in_place_with_its_size_and_mtime_is_not_shipped() {
    let d = tempfile::tempdir().unwrap();
    let a = tree("/usr/bin/id");
    let (want, good) = build(&a, d.path());
    let blob = want.blob_in(d.path());
    let old = SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&blob)
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Used once more, long after its last change (what a stamp would trust from then on).
    assert_eq!(build(&a, d.path()).0, want);
    let mtime = std::fs::metadata(&blob).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&blob, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&blob).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    let (got, shipped) = build(&a, d.path());
    assert_eq!(got, want);
    assert_eq!(Digest::of(&shipped), want, "the staged blob is the layer's");
    assert_eq!(shipped, good);
}
