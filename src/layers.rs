//! The layers stage: the trees binpack writes, as compressed blobs in the staging directory.
//! A layer's input has a key (every path, mode, owner, link target and content hash, the
//! timestamp, and the encoding scheme): the same key gives the same blob, so a layer whose key
//! the cache knows is linked from there instead of compressed again.

use crate::cache;
use crate::compress::Gzip;
use crate::digest::Digest;
use crate::emit::{atomic_file, EmitError, Staging};
use crate::layer::{self, Compression, Content, LayerError, LayerStats, Node, Tree};
use crate::progress::Progress;
use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Names the tar format and the compressor with its level: the bytes depend on all three,
/// so a change to any of them must change this (and so every key).
pub const SCHEME: &str =
    "binpack-layer/3: tar=gnu-sorted gzip=zlib-1.3.2 level=5 blocks=128KiB dict=32KiB sync-flush one-member";

/// `--compression zstd`'s scheme (a layer's key says which one wrote it).
pub const ZSTD_SCHEME: &str = "binpack-layer/2: tar=gnu-sorted zstd=1.5 level=3 one-frame checksum";

/// What the key says of the encoder: the scheme, binpack's version, and the digest of a fixed
/// sample encoded now, so an upgraded compressor or tar writer that changed its bytes cannot
/// be answered with a blob the old one wrote.
fn encoder_id(how: Compression) -> &'static str {
    static IDS: [std::sync::OnceLock<String>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    let (slot, scheme) = match how {
        Compression::Gzip => (&IDS[0], SCHEME),
        Compression::Zstd => (&IDS[1], ZSTD_SCHEME),
    };
    slot.get_or_init(|| {
        let mut sample = Tree::new();
        let text: Vec<u8> = (0..64 * 1024u32)
            .map(|i| b"binpack layer sample "[(i % 21) as usize] ^ (i % 251) as u8)
            .collect();
        let _ = sample.file("sample", Content::Bytes(text), 0o644);
        let mut out = Vec::new();
        let gzip = Gzip::new(layer::LEVEL);
        let stats = layer::write_layer_as(&sample, 0, &mut out, how, gzip, &mut |_| {});
        let sample = stats.map(|s| s.digest.to_string()).unwrap_or_default();
        format!(
            "{scheme} binpack={} sample={sample}",
            env!("CARGO_PKG_VERSION")
        )
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// Where known layers are kept; None (the default) compresses every layer.
#[derive(Clone, Debug, Default)]
pub struct LayerCache {
    dir: Option<PathBuf>,
}

impl LayerCache {
    /// binpack's cache directory.
    pub fn default_dir() -> LayerCache {
        LayerCache {
            dir: Some(cache::dir()),
        }
    }

    pub fn off() -> LayerCache {
        LayerCache { dir: None }
    }

    pub fn at(dir: &Path) -> LayerCache {
        LayerCache {
            dir: Some(dir.to_path_buf()),
        }
    }
}

/// Writes `trees` (bottom first) into `staging`, each from the cache when it is known there.
pub fn write_layers(
    trees: &[Tree],
    mtime: u64,
    staging: &Staging,
    cache: &LayerCache,
    progress: &dyn Progress,
) -> Result<Vec<LayerStats>, LayersError> {
    write_layers_as(trees, mtime, Compression::Gzip, staging, cache, progress)
}

/// [`write_layers`], compressed as `how` says.
pub fn write_layers_as(
    trees: &[Tree],
    mtime: u64,
    how: Compression,
    staging: &Staging,
    cache: &LayerCache,
    progress: &dyn Progress,
) -> Result<Vec<LayerStats>, LayersError> {
    let mut out = Vec::new();
    for tree in trees {
        let wanted = match &cache.dir {
            Some(_) => Some(key_as(tree, mtime, how)?),
            None => None,
        };
        let known = cache.dir.as_deref().zip(wanted.as_ref());
        if let Some(stats) = known.and_then(|(dir, k)| lookup(dir, k, staging)) {
            progress.stage(&format!(
                "the layer is known ({}): taken from the cache",
                stats.digest.short()
            ));
            out.push(stats);
            continue;
        }
        let stats = compress(tree, mtime, how, staging, progress)?;
        // Only when the files still hash to the key: one rewritten while it was compressed
        // (a build finishing beside binpack) must not file its new bytes under the old key.
        // A cache that cannot be written only costs the next build its time.
        if let Some((dir, k)) = known {
            if key_as(tree, mtime, how).is_ok_and(|again| again == *k) {
                let _ = remember(dir, k, &stats, staging);
            }
        }
        out.push(stats);
    }
    progress.finish_stage();
    Ok(out)
}

fn compress(
    tree: &Tree,
    mtime: u64,
    how: Compression,
    staging: &Staging,
    progress: &dyn Progress,
) -> Result<LayerStats, LayersError> {
    let total = layer::content_size(tree);
    let name = match how {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    progress.stage(&format!("writing the layer (tar + {name})"));
    let gzip = Gzip::new(layer::LEVEL);
    staging.blob_with(
        |w| {
            let mut bytes = |done| progress.bytes(done, total);
            layer::write_layer_as(tree, mtime, w, how, gzip, &mut bytes).map_err(|e| match e {
                // Name where it was being written (a full disk says so there).
                LayerError::Write(source) => LayersError::Emit(EmitError::Write {
                    path: staging.path().to_path_buf(),
                    source,
                }),
                other => other.into(),
            })
        },
        |s| &s.digest,
    )
}

/// The layer's key: what goes into it, and how it is encoded (gzip).
pub fn key(tree: &Tree, mtime: u64) -> Result<Digest, LayerError> {
    key_as(tree, mtime, Compression::Gzip)
}

/// The layer's key when compressed as `how` says.
pub fn key_as(tree: &Tree, mtime: u64, how: Compression) -> Result<Digest, LayerError> {
    let mut h = Sha256::new();
    writeln!(h, "{}\nmtime {mtime}", encoder_id(how)).expect("hashing does not fail");
    for (path, node) in tree.iter() {
        match node {
            Node::Dir { mode, owner } => writeln!(h, "d {path:?} {mode:o} {owner}"),
            Node::Symlink { target } => writeln!(h, "l {path:?} {target:?}"),
            Node::File { content, mode } => {
                let (sum, len) = content_hash(content)?;
                writeln!(h, "f {path:?} {mode:o} {len} {sum}")
            }
        }
        .expect("hashing does not fail");
    }
    Ok(Digest::from_hasher(h))
}

fn content_hash(content: &Content) -> Result<(Digest, u64), LayerError> {
    match content {
        Content::Bytes(b) => Ok((Digest::of(b), b.len() as u64)),
        Content::Host(p) => {
            let read_err = |source| LayerError::Read {
                path: p.clone(),
                source,
            };
            let mut f = std::fs::File::open(p).map_err(read_err)?;
            Digest::of_reader(&mut f).map_err(read_err)
        }
    }
}

fn record_path(dir: &Path, key: &Digest) -> PathBuf {
    dir.join("layers").join(format!("{}.json", key.hex()))
}

/// The layer recorded under `key`, its blob verified and linked into `staging`.
fn lookup(dir: &Path, key: &Digest, staging: &Staging) -> Option<LayerStats> {
    let text = std::fs::read(record_path(dir, key)).ok()?;
    let r: Record = serde_json::from_slice(&text).ok()?;
    let stats = LayerStats {
        digest: Digest::parse(&r.digest).ok()?,
        diff_id: Digest::parse(&r.diff_id).ok()?,
        size: r.size,
        uncompressed_size: r.uncompressed_size,
        media_type: r.media_type,
    };
    let blob = stats.digest.blob_in(dir);
    let (digest, len) = Digest::of_reader(&mut std::fs::File::open(&blob).ok()?).ok()?;
    if len != stats.size || digest != stats.digest {
        // Damaged: not used, and removed so that the layer compressed now takes its place.
        let _ = std::fs::remove_file(&blob);
        return None;
    }
    staging.link_blob(&stats.digest, &blob).ok()?;
    Some(stats)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    digest: String,
    diff_id: String,
    size: u64,
    uncompressed_size: u64,
    #[serde(default = "gzip_media_type")]
    media_type: String,
}

fn gzip_media_type() -> String {
    crate::image::LAYER_MEDIA_TYPE.into()
}

/// Keeps the staged blob and its record in the cache, each written whole through a
/// temporary file (0644: blobs are linked into layouts others read).
fn remember(
    dir: &Path,
    key: &Digest,
    stats: &LayerStats,
    staging: &Staging,
) -> Result<(), EmitError> {
    let blob = stats.digest.blob_in(dir);
    if !blob.is_file() {
        let from = staging.blob_path(&stats.digest);
        atomic_file(&blob, |mut f| {
            let copied = std::fs::File::open(&from).and_then(|mut r| std::io::copy(&mut r, &mut f));
            copied.map(|_| ()).map_err(|source| EmitError::Write {
                path: blob.clone(),
                source,
            })
        })?;
    }
    let record = Record {
        digest: stats.digest.to_string(),
        diff_id: stats.diff_id.to_string(),
        size: stats.size,
        uncompressed_size: stats.uncompressed_size,
        media_type: stats.media_type.clone(),
    };
    let bytes = serde_json::to_vec(&record).expect("a record serializes");
    let path = record_path(dir, key);
    atomic_file(&path, |mut f| {
        f.write_all(&bytes).map_err(|source| EmitError::Write {
            path: path.clone(),
            source,
        })
    })
}
