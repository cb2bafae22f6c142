//! Fixtures for the library tests: minimal ELF executables, packed with no toolchain, and
//! readers of what was written (OCI layouts, gzip layers).

use binpack::build::Artifact;
use binpack::emit::{OciLayout, Output};
use binpack::layers::LayerCache;
use binpack::pack::{self, PackOptions};
use binpack::progress::Silent;
use binpack::runconfig::RunOptions;
use binpack::summary::Summary;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// A minimal static ELF64 executable for `machine`: a header, one PT_LOAD, a few code bytes.
pub fn fixture_elf(machine: u16) -> Vec<u8> {
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

pub fn write_fixture(dir: &Path, name: &str, machine: u16) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, fixture_elf(machine)).unwrap();
    p
}

pub fn options(cache: LayerCache) -> PackOptions {
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

pub fn layout(dir: &Path) -> Vec<Box<dyn Output>> {
    vec![Box::new(OciLayout {
        dir: dir.to_path_buf(),
        ..Default::default()
    })]
}

/// Packs `artifact` into an OCI layout at `out`, with no layer cache.
pub fn pack_layout(artifact: &Artifact, out: &Path) -> Summary {
    let opts = options(LayerCache::off());
    pack::pack(artifact, &opts, &layout(out), &Silent).unwrap()
}

pub fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

pub fn blob(layout: &Path, digest: &Value) -> PathBuf {
    let d = digest.as_str().unwrap();
    layout
        .join("blobs/sha256")
        .join(d.strip_prefix("sha256:").unwrap())
}

/// Every blob's file is named by the sha256 of its bytes.
pub fn assert_blobs_verify(layout: &Path) {
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let sum = format!("{:x}", Sha256::digest(std::fs::read(e.path()).unwrap()));
        assert_eq!(sum, e.file_name().to_string_lossy(), "blob {:?}", e.path());
    }
}

/// (path, mode, uid, kind) of each entry of a gzip layer.
pub fn layer_entries(path: &Path) -> Vec<(String, u32, u64, char)> {
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

/// A base image's one layer: (the tar, its gzip), holding `/etc/os-release`.
pub fn base_layer() -> (Vec<u8>, Vec<u8>) {
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
    (tar, gz)
}
