//! The filesystem tree of a layer and its deterministic tar+gzip encoding, hashed while it
//! streams: sha256 of the tar is the diff_id, sha256 of the gzip is the blob digest.

use crate::image::compress::{self, Gzip};
use crate::support::digest::Digest;
pub use crate::support::digest::HashWriter;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The media type of a gzip layer (zstd's is its own).
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// 0755 when any execute bit is set, else 0644: modes from the host depend on its umask and
/// may carry setuid bits; neither belongs in a reproducible image.
pub fn normal_mode(host_mode: u32) -> u32 {
    if host_mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Where a file's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// Read from the host when the layer is written, so large binaries are streamed.
    Host(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// `owner` is both uid and gid; everything else in a layer belongs to root.
    Dir {
        mode: u32,
        owner: u32,
    },
    File {
        content: Content,
        mode: u32,
    },
    Symlink {
        target: String,
    },
}

/// The files of one layer, keyed by path relative to `/`. Ordered, so the tar is too.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("invalid path in image: {0:?}")]
    BadPath(String),
    #[error("{path} is added to the image twice, as different things")]
    Conflict { path: String },
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} changed size while being packed", path.display())]
    Changed { path: PathBuf },
    #[error("writing the layer: {0}")]
    Write(#[from] io::Error),
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> Result<(), LayerError> {
        self.insert(path, Node::Dir { mode, owner: 0 })
    }

    /// A directory owned by `owner` (uid and gid), such as an unprivileged user's home.
    pub fn dir_owned(&mut self, path: &str, mode: u32, owner: u32) -> Result<(), LayerError> {
        self.insert(path, Node::Dir { mode, owner })
    }

    pub fn file(&mut self, path: &str, content: Content, mode: u32) -> Result<(), LayerError> {
        self.insert(path, Node::File { content, mode })
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), LayerError> {
        self.insert(
            path,
            Node::Symlink {
                target: target.to_string(),
            },
        )
    }

    /// Adds a host file, symlink or whole directory at `path`, keeping modes (sorted, so the
    /// layer does not depend on directory listing order).
    pub fn copy_from_host(&mut self, path: &str, host: &std::path::Path) -> Result<(), LayerError> {
        use std::os::unix::fs::PermissionsExt;
        let read_err = |source| LayerError::Read {
            path: host.to_path_buf(),
            source,
        };
        let meta = std::fs::symlink_metadata(host).map_err(read_err)?;
        let mode = normal_mode(meta.permissions().mode());
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(host).map_err(read_err)?;
            return self.symlink(path, utf8(host, target.as_os_str())?);
        }
        if meta.is_file() {
            return self.file(path, Content::Host(host.to_path_buf()), mode);
        }
        if !meta.is_dir() {
            // A FIFO would block the read forever; a device or socket has no content to ship.
            return Err(read_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file, directory or symlink (a FIFO, socket or device)",
            )));
        }
        self.dir(path, 0o755)?;
        let mut children: Vec<_> = std::fs::read_dir(host)
            .map_err(read_err)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        children.sort();
        for name in children {
            let child = format!(
                "{}/{}",
                path.trim_end_matches('/'),
                utf8(&host.join(&name), &name)?
            );
            self.copy_from_host(&child, &host.join(&name))?;
        }
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path.trim_matches('/'))
    }

    /// Puts `content` in place of the file at `path` (a stripped copy of the same library).
    pub fn replace_file(&mut self, path: &str, content: Content, mode: u32) {
        self.nodes.insert(
            path.trim_matches('/').to_string(),
            Node::File { content, mode },
        );
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds `node`, creating missing parent directories (0755). Adding the same directory or
    /// the same symlink twice is fine (the last directory mode wins); anything else is a conflict.
    fn insert(&mut self, path: &str, node: Node) -> Result<(), LayerError> {
        let rel = path.trim_matches('/');
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(LayerError::BadPath(path.to_string()));
        }
        let mut parent = String::new();
        for comp in rel.split('/').take(rel.split('/').count() - 1) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            match self.nodes.get(&parent) {
                None => {
                    self.nodes.insert(
                        parent.clone(),
                        Node::Dir {
                            mode: 0o755,
                            owner: 0,
                        },
                    );
                }
                Some(Node::Dir { .. }) => {}
                Some(_) => return Err(LayerError::Conflict { path: parent }),
            }
        }
        match (self.nodes.get(rel), &node) {
            (None, _) | (Some(Node::Dir { .. }), Node::Dir { .. }) => {}
            (Some(old), new) if old == new => {}
            _ => {
                return Err(LayerError::Conflict {
                    path: rel.to_string(),
                })
            }
        }
        self.nodes.insert(rel.to_string(), node);
        Ok(())
    }
}

/// What writing a layer produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerStats {
    /// Of the compressed blob.
    pub digest: Digest,
    /// Of the uncompressed tar.
    pub diff_id: Digest,
    pub size: u64,
    pub uncompressed_size: u64,
    /// The layer media type (gzip or zstd).
    pub media_type: String,
}

/// Calls `progress` with the running count of uncompressed bytes.
struct Counting<'a, W> {
    inner: W,
    done: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.done += n as u64;
        (self.progress)(self.done);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sum of the sizes of the regular files in the tree (for progress totals).
pub fn content_size(tree: &Tree) -> u64 {
    tree.iter()
        .map(|(_, n)| match n {
            Node::File {
                content: Content::Bytes(b),
                ..
            } => b.len() as u64,
            Node::File {
                content: Content::Host(p),
                ..
            } => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// The one deflate level (of the one pinned implementation, stock zlib, in the block scheme of
/// [`crate::image::compress`]): the bytes depend on all three. Level 5: within 1% of GNU `gzip -6`'s
/// size at 0.6x its CPU time (level 6 is as slow as gzip); see README "Reproducibility".
pub const LEVEL: u32 = 5;

/// Writes `tree` as a gzip-compressed tar to `out`, hashing both streams, on every core.
pub fn write_layer<W: Write + Send>(
    tree: &Tree,
    mtime: u64,
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<LayerStats, LayerError> {
    write_layer_with(tree, mtime, out, Gzip::new(LEVEL), progress)
}

/// How a layer is compressed (`--compression`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// Read by every engine (binpack-layer/3: parallel, deterministic).
    #[default]
    Gzip,
    /// Faster, smaller; docker 23+, podman and containerd read it, older docker does not.
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => LAYER_MEDIA_TYPE,
            Compression::Zstd => ZSTD_MEDIA_TYPE,
        }
    }
}

pub const ZSTD_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// [`write_layer`] with a given compressor (the thread count never changes the bytes).
pub fn write_layer_with<W: Write + Send>(
    tree: &Tree,
    mtime: u64,
    out: W,
    gzip: Gzip,
    progress: &mut dyn FnMut(u64),
) -> Result<LayerStats, LayerError> {
    write_layer_as(tree, mtime, out, Compression::Gzip, gzip, progress)
}

/// Writes `tree` compressed as `how` says (`gzip` gives the gzip level and threads).
pub fn write_layer_as<W: Write + Send>(
    tree: &Tree,
    mtime: u64,
    out: W,
    how: Compression,
    gzip: Gzip,
    progress: &mut dyn FnMut(u64),
) -> Result<LayerStats, LayerError> {
    let produce = |sink: &mut dyn Write| {
        let counting = Counting {
            inner: sink,
            done: 0,
            progress,
        };
        write_tar(tree, mtime, counting).map(|_| ())
    };
    let ((), mut out, sums) = match how {
        Compression::Gzip => compress::gzip(out, gzip, produce)?,
        Compression::Zstd => compress::zstd(out, produce)?,
    };
    out.flush()?;
    Ok(LayerStats {
        digest: sums.digest,
        diff_id: sums.diff_id,
        size: sums.size,
        uncompressed_size: sums.uncompressed_size,
        media_type: how.media_type().to_string(),
    })
}

/// Writes `tree` as an uncompressed tar and returns the writer. Every header is fixed (mtime,
/// uid/gid 0 unless a directory has an owner, no user names, GNU format) and entries are
/// sorted, so the same tree gives the same bytes.
pub fn write_tar<W: Write>(tree: &Tree, mtime: u64, out: W) -> Result<W, LayerError> {
    let mut builder = tar::Builder::new(out);
    for (path, node) in tree.iter() {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        match node {
            Node::Dir { mode, owner } => {
                h.set_uid(u64::from(*owner));
                h.set_gid(u64::from(*owner));
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                builder.append_data(&mut h, format!("{path}/"), io::empty())?;
            }
            Node::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                builder.append_link(&mut h, path, target)?;
            }
            Node::File { content, mode } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                match content {
                    Content::Bytes(b) => {
                        h.set_size(b.len() as u64);
                        builder.append_data(&mut h, path, b.as_slice())?;
                    }
                    Content::Host(p) => {
                        let read_err = |source| LayerError::Read {
                            path: p.clone(),
                            source,
                        };
                        let f = File::open(p).map_err(read_err)?;
                        let len = f.metadata().map_err(read_err)?.len();
                        h.set_size(len);
                        let mut reader = f.take(len);
                        builder.append_data(&mut h, path, &mut reader)?;
                        if reader.limit() != 0 {
                            return Err(LayerError::Changed { path: p.clone() });
                        }
                    }
                }
            }
        }
    }
    Ok(builder.into_inner()?)
}

/// A name or link target under `host` as text: one that is not UTF-8 is refused, never
/// changed (a replaced byte would ship a file under another name than the program opens).
fn utf8<'a>(host: &Path, name: &'a std::ffi::OsStr) -> Result<&'a str, LayerError> {
    name.to_str().ok_or_else(|| LayerError::Read {
        path: host.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the name {:?} is not UTF-8, which binpack cannot ship unchanged; rename it",
                name
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.file(
            "etc/passwd",
            Content::Bytes(b"root:x:0:0::/:\n".to_vec()),
            0o644,
        )
        .unwrap();
        t.dir("tmp", 0o1777).unwrap();
        t.symlink("lib64", "usr/lib64").unwrap();
        t.file("app/hello", Content::Bytes(vec![0x7f; 3000]), 0o755)
            .unwrap();
        t
    }

    fn encode(t: &Tree, mtime: u64) -> (Vec<u8>, LayerStats) {
        let mut out = Vec::new();
        let stats = write_layer(t, mtime, &mut out, &mut |_| {}).unwrap();
        (out, stats)
    }

    #[test]
    fn same_tree_same_bytes_whatever_the_insertion_order() {
        let a = sample();
        let mut b = Tree::new();
        b.file("app/hello", Content::Bytes(vec![0x7f; 3000]), 0o755)
            .unwrap();
        b.symlink("lib64", "usr/lib64").unwrap();
        b.dir("tmp", 0o1777).unwrap();
        b.file(
            "etc/passwd",
            Content::Bytes(b"root:x:0:0::/:\n".to_vec()),
            0o644,
        )
        .unwrap();
        let (ba, sa) = encode(&a, 0);
        let (bb, sb) = encode(&b, 0);
        assert_eq!(ba, bb);
        assert_eq!(sa, sb);
        let (_, later) = encode(&a, 1_700_000_000);
        assert_ne!(sa.diff_id, later.diff_id, "mtime must reach the tar");
    }

    #[test]
    fn digests_sizes_modes_and_order() {
        let (bytes, stats) = encode(&sample(), 42);
        assert_eq!(stats.size, bytes.len() as u64);
        assert_eq!(stats.digest, Digest::of(&bytes));
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(stats.uncompressed_size, tar_bytes.len() as u64);
        assert_eq!(stats.diff_id, Digest::of(&tar_bytes));
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let entries: Vec<(String, u32, u64, u64, tar::EntryType)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                    h.entry_type(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            ["app/", "app/hello", "etc/", "etc/passwd", "lib64", "tmp/"]
        );
        let tmp = entries.iter().find(|e| e.0 == "tmp/").unwrap();
        assert_eq!(tmp.1, 0o1777);
        assert!(tmp.4.is_dir());
        let hello = entries.iter().find(|e| e.0 == "app/hello").unwrap();
        assert_eq!((hello.1, hello.2, hello.3), (0o755, 42, 0));
        assert!(entries.iter().any(|e| e.0 == "lib64" && e.4.is_symlink()));
    }

    #[test]
    fn conflicts_and_bad_paths_are_refused() {
        let mut t = sample();
        assert!(matches!(
            t.file("lib64/x", Content::Bytes(vec![]), 0o644),
            Err(LayerError::Conflict { .. })
        ));
        assert!(matches!(
            t.dir("etc/passwd", 0o755),
            Err(LayerError::Conflict { .. })
        ));
        assert!(t.symlink("lib64", "usr/lib64").is_ok(), "same link twice");
        for bad in ["", "/", "a/../b", "a//b"] {
            assert!(matches!(t.dir(bad, 0o755), Err(LayerError::BadPath(_))));
        }
    }

    #[test]
    fn host_trees_are_copied_with_modes_and_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("assets/img")).unwrap();
        std::fs::write(d.join("assets/img/a.png"), b"png").unwrap();
        std::fs::write(d.join("assets/run.sh"), b"#!").unwrap();
        std::fs::set_permissions(
            d.join("assets/run.sh"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        std::os::unix::fs::symlink("img/a.png", d.join("assets/logo")).unwrap();
        let mut t = Tree::new();
        t.copy_from_host("/app/assets", &d.join("assets")).unwrap();
        // Modes are normalised: 0750 -> 0755, whatever the umask made -> 0644.
        assert!(matches!(
            t.get("app/assets/img/a.png"),
            Some(Node::File { mode: 0o644, .. })
        ));
        assert!(matches!(
            t.get("app/assets/run.sh"),
            Some(Node::File { mode: 0o755, .. })
        ));
        assert!(
            matches!(t.get("app/assets/logo"), Some(Node::Symlink { target }) if target == "img/a.png")
        );
    }

    #[test]
    fn host_files_are_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![7u8; 200_000]).unwrap();
        let mut t = Tree::new();
        t.file("app/big", Content::Host(p), 0o755).unwrap();
        let mut seen = 0;
        let mut out = Vec::new();
        let stats = write_layer(&t, 0, &mut out, &mut |n| seen = n).unwrap();
        assert_eq!(seen, stats.uncompressed_size);
        assert!(stats.uncompressed_size > 200_000);
        assert!(stats.size < 10_000, "zeros-like data compresses");
    }

    #[test]
    fn a_name_that_is_not_utf8_is_refused_not_changed() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        std::fs::write(d.path().join(name), b"x").unwrap();
        let e = Tree::new()
            .copy_from_host("/data", d.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not UTF-8") && e.contains("caf"), "{e}");
    }
}
