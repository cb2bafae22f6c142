//! The layers stage: the trees binpack writes, as compressed blobs in the staging directory.
//! A layer's input has a key (every path, mode, owner, link target and content hash, the
//! timestamp, and the encoding scheme): the same key gives the same blob, so a layer whose key
//! the cache knows is linked from there instead of compressed again.

use crate::emit::{atomic_file, EmitError, Staging};
use crate::image::compress::Gzip;
use crate::image::layer::{self, Compression, Content, LayerError, LayerStats, Node, Tree};
use crate::support::cache::{
    self,
    stamp::{self, Seal, Times},
};
use crate::support::digest::{Digest, HashWriter};
use crate::support::progress::Progress;
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

    /// The cache directory; None when the cache is off.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
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
            Some(dir) => Some(key_in(tree, mtime, how, Some(dir))?),
            None => None,
        };
        let known = cache.dir.as_deref().zip(wanted.as_ref());
        let hit = known.and_then(|(dir, k)| lookup(dir, k, (tree, mtime), staging));
        if let Some(stats) = hit {
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
            if key_in(tree, mtime, how, Some(dir)).is_ok_and(|again| again == *k) {
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
    key_in(tree, mtime, how, None)
}

/// [`key_as`], the digests of big host files taken from the cache `dir` (when given) while
/// their stat identity is unchanged.
fn key_in(
    tree: &Tree,
    mtime: u64,
    how: Compression,
    dir: Option<&Path>,
) -> Result<Digest, LayerError> {
    let mut h = Sha256::new();
    writeln!(h, "{}\nmtime {mtime}", encoder_id(how)).expect("hashing does not fail");
    for (path, node) in tree.iter() {
        match node {
            Node::Dir { mode, owner } => writeln!(h, "d {path:?} {mode:o} {owner}"),
            Node::Symlink { target } => writeln!(h, "l {path:?} {target:?}"),
            Node::File { content, mode } => {
                let (sum, len) = content_hash(content, dir)?;
                writeln!(h, "f {path:?} {mode:o} {len} {sum}")
            }
        }
        .expect("hashing does not fail");
    }
    Ok(Digest::from_hasher(h))
}

fn content_hash(content: &Content, dir: Option<&Path>) -> Result<(Digest, u64), LayerError> {
    match content {
        Content::Bytes(b) => Ok((Digest::of(b), b.len() as u64)),
        Content::Host(p) => {
            let read_err = |source| LayerError::Read {
                path: p.clone(),
                source,
            };
            let meta = std::fs::metadata(p).map_err(read_err)?;
            // Git's index, for the files that take time to read (the node runtime): a
            // digest is reused while the file's stat identity, ctime included, is the same.
            let memo = dir
                .filter(|_| meta.len() >= HASHED_BIG)
                .map(|d| seal_path(d, p));
            let seal = memo.as_deref().and_then(Seal::read);
            let (digest, len, new) =
                stamp::digest(p, seal.as_ref(), Times::Both).map_err(read_err)?;
            if let (Some(path), Some(new)) = (memo, new) {
                new.keep(&path);
            }
            Ok((digest, len))
        }
    }
}

/// Files at least this big have their digest kept by stat identity.
const HASHED_BIG: u64 = 1 << 20;

/// Where the seal of the host file `file` is kept (see [`stamp::digest`]).
fn seal_path(dir: &Path, file: &Path) -> PathBuf {
    let name = Digest::of(file.as_os_str().as_encoded_bytes());
    dir.join("seals").join(name.hex())
}

fn record_path(dir: &Path, key: &Digest) -> PathBuf {
    dir.join("layers").join(format!("{}.json", key.hex()))
}

/// The layer recorded under `key`, its blob verified and linked into `staging`. A hit cannot
/// change the image: the record must name the key it answers (one copied from another key is
/// a miss), the blob is read whole on every use (a blob damaged in place may keep its size
/// and mtime) and must hash to the record's digest, and the record's diff_id must be the
/// tree's own (the tar this build would write, hashed, not compressed). That the blob unpacks
/// to that diff_id was true when binpack compressed it, and the digest says it is the same
/// blob: unpacking it again on every hit would add nothing but time (a third of a warm build).
fn lookup(
    dir: &Path,
    key: &Digest,
    (tree, mtime): (&Tree, u64),
    staging: &Staging,
) -> Option<LayerStats> {
    let text = std::fs::read(record_path(dir, key)).ok()?;
    let r: Record = serde_json::from_slice(&text).ok()?;
    if r.key.as_deref() != Some(key.to_string().as_str()) {
        return None;
    }
    let stats = LayerStats {
        digest: Digest::parse(&r.digest).ok()?,
        diff_id: Digest::parse(&r.diff_id).ok()?,
        size: r.size,
        uncompressed_size: r.uncompressed_size,
        media_type: r.media_type.clone(),
    };
    let blob = stats.digest.blob_in(dir);
    // The blob's digest, and the tree's tar beside it on another core.
    let (read, tar) = std::thread::scope(|s| {
        let tar = s.spawn(|| {
            let tar = layer::write_tar(tree, mtime, HashWriter::new(std::io::sink())).ok()?;
            Some(tar.finish().1)
        });
        let read = std::fs::File::open(&blob).and_then(|mut f| Digest::of_reader(&mut f));
        (read, tar.join().ok().flatten())
    });
    let intact = read.is_ok_and(|(digest, len)| len == stats.size && digest == stats.digest);
    if !intact {
        // Damaged: not used, and removed so that the layer compressed now takes its place.
        let _ = std::fs::remove_file(&blob);
        return None;
    }
    if tar != Some(stats.diff_id.clone()) {
        return None;
    }
    staging.link_blob(&stats.digest, &blob).ok()?;
    Some(stats)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    /// The key this record answers (a record without one, from before, is a miss).
    #[serde(default)]
    key: Option<String>,
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
        key: Some(key.to_string()),
        digest: stats.digest.to_string(),
        diff_id: stats.diff_id.to_string(),
        size: stats.size,
        uncompressed_size: stats.uncompressed_size,
        media_type: stats.media_type.clone(),
    };
    write_record(dir, key, &record)
}

fn write_record(dir: &Path, key: &Digest, record: &Record) -> Result<(), EmitError> {
    let bytes = serde_json::to_vec(record).expect("a record serializes");
    let path = record_path(dir, key);
    atomic_file(&path, |mut f| {
        f.write_all(&bytes).map_err(|source| EmitError::Write {
            path: path.clone(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::cache::RACY;
    use crate::support::progress::Silent;
    use std::time::{Duration, SystemTime};

    fn backdate(p: &Path) {
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }

    /// A big host file: its digest is kept by stat identity, and a rewrite of the same size
    /// with its mtime put back still changes the key (ctime moves).
    #[test]
    fn known_digests_follow_the_files_stat_identity() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("node");
        let bytes = vec![7u8; HASHED_BIG as usize + 5];
        std::fs::write(&file, &bytes).unwrap();
        let mut tree = Tree::new();
        tree.file("node", Content::Host(file.clone()), 0o755)
            .unwrap();
        let cache = d.path().join("cache");
        let first = key_in(&tree, 0, Compression::Gzip, Some(&cache)).unwrap();
        assert_eq!(first, key(&tree, 0).unwrap());
        // Just written: too new to be trusted by its stamp.
        let seal = || Seal::read(&seal_path(&cache, &file)).unwrap();
        assert!(!seal().settled);
        backdate(&file);
        std::thread::sleep(RACY * 2);
        assert_eq!(
            key_in(&tree, 0, Compression::Gzip, Some(&cache)).unwrap(),
            first
        );
        assert!(seal().settled);
        assert_eq!(std::fs::read_dir(cache.join("seals")).unwrap().count(), 1);
        assert_eq!(
            key_in(&tree, 0, Compression::Gzip, Some(&cache)).unwrap(),
            first
        );
        let mut changed = bytes.clone();
        changed[9] = 8;
        std::fs::write(&file, &changed).unwrap();
        backdate(&file);
        let again = key_in(&tree, 0, Compression::Gzip, Some(&cache)).unwrap();
        assert_ne!(again, first);
        assert_eq!(again, key(&tree, 0).unwrap());
    }

    /// A blob verified once is trusted by its stat identity; a write to it is still caught.
    #[test]
    fn a_verified_blob_is_checked_again_once_written() {
        let d = tempfile::tempdir().unwrap();
        let mut tree = Tree::new();
        tree.file("a", Content::Bytes(vec![1; 5000]), 0o644)
            .unwrap();
        let trees = [tree];
        let cache = LayerCache::at(d.path());
        let build = || {
            let staging = Staging::new().unwrap();
            write_layers(&trees, 0, &staging, &cache, &Silent).unwrap()[0].clone()
        };
        let first = build();
        let blob = first.digest.blob_in(d.path());
        backdate(&blob);
        std::thread::sleep(RACY * 2);
        assert_eq!(build().digest, first.digest);
        let k = key(&trees[0], 0).unwrap();
        let record: Record =
            serde_json::from_slice(&std::fs::read(record_path(d.path(), &k)).unwrap()).unwrap();
        assert_eq!(record.key, Some(k.to_string()), "the record names its key");
        assert_eq!(build().digest, first.digest);
        let mut bytes = std::fs::read(&blob).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        std::fs::write(&blob, bytes).unwrap();
        assert_eq!(build().digest, first.digest);
        assert_eq!(Digest::of(&std::fs::read(&blob).unwrap()), first.digest);
    }
}
