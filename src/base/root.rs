//! Paths inside a root resolved as the kernel would with the root as `/`: every symlink
//! followed inside it (counted, as the kernel counts them), files opened only when regular.

use crate::elf::inspect::{open_regular, NotRegular};
use crate::support::printable::printable;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A path of a root that could not be resolved or read.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("reading {}: {source}", shown(path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} in {}: too many levels of symbolic links (the kernel follows at most {MAX_LINKS})",
        printable(path),
        shown(root)
    )]
    SymlinkLoop { path: String, root: PathBuf },
}

fn shown(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

/// Symlinks followed in one resolution before giving up, as Linux does (ELOOP).
pub const MAX_LINKS: usize = 40;

pub fn host_path(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Resolves `path` inside `root` the way the kernel would with `root` as `/`, reporting each
/// symlink met (its path and target) and returning the symlink-free path.
pub fn walk(
    root: &Path,
    path: &str,
    on_link: &mut dyn FnMut(&str, &str),
) -> Result<String, RootError> {
    let mut links = 0;
    walk_from(root, path, on_link, &mut links).map_err(|e| match e {
        // Named by the path asked for, not the link where the count ran out.
        RootError::SymlinkLoop { root, .. } => RootError::SymlinkLoop {
            path: path.to_string(),
            root,
        },
        e => e,
    })
}

/// `links` counts every symlink followed in the whole resolution, as the kernel does: a limit
/// on nesting alone lets links that each name several others expand exponentially.
pub fn walk_from(
    root: &Path,
    path: &str,
    on_link: &mut dyn FnMut(&str, &str),
    links: &mut usize,
) -> Result<String, RootError> {
    let mut real = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            if let Some(i) = real.rfind('/') {
                real.truncate(i);
            }
            continue;
        }
        let candidate = format!("{real}/{comp}");
        let host = host_path(root, &candidate);
        let io = |source| RootError::Io {
            path: host.clone(),
            source,
        };
        let meta = fs::symlink_metadata(&host).map_err(io)?;
        if !meta.file_type().is_symlink() {
            real = candidate;
            continue;
        }
        *links += 1;
        if *links > MAX_LINKS {
            return Err(RootError::SymlinkLoop {
                path: candidate,
                root: root.to_path_buf(),
            });
        }
        let target = fs::read_link(&host).map_err(io)?;
        let target = target.to_string_lossy().into_owned();
        on_link(&candidate, &target);
        let joined = if target.starts_with('/') {
            target
        } else {
            format!("{real}/{target}")
        };
        real = walk_from(root, &joined, on_link, links)?;
    }
    Ok(real)
}

/// ENOENT, or ENOTDIR for a path through a file.
pub fn is_missing(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory
}

/// The regular file at `path` in the root, symlinks followed inside the root, open; and its
/// host path.
pub fn open_in_root(root: &Path, path: &str) -> Result<(fs::File, PathBuf), RootError> {
    let real = walk(root, path, &mut |_, _| {})?;
    let host = host_path(root, &real);
    let (file, _) = open_regular(&host).map_err(|e| RootError::Io {
        path: host.clone(),
        source: match e {
            NotRegular::Io(e) => e,
            NotRegular::Kind(kind) => std::io::Error::other(format!("{kind}, not a regular file")),
        },
    })?;
    Ok((file, host))
}

/// Reads the regular file at `path` in the root, at most `limit` bytes.
pub fn read_regular(root: &Path, path: &str, limit: u64) -> Result<Vec<u8>, RootError> {
    let (file, host) = open_in_root(root, path)?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| RootError::Io { path: host, source })?;
    Ok(bytes)
}

/// The regular file at `path` in the root, symlinks followed inside the root (a root's
/// `etc/os-release` linking to the host's `/etc/shadow` reads nothing), at most `limit` bytes.
pub fn read_file_in_root(root: &Path, path: &str, limit: u64) -> Option<Vec<u8>> {
    read_regular(root, path, limit).ok()
}

/// The host path of the directory `path` in the root, symlinks followed inside the root.
pub fn dir_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let host = host_path(root, &walk(root, path, &mut |_, _| {}).ok()?);
    fs::symlink_metadata(&host)
        .ok()
        .filter(|m| m.is_dir())
        .map(|_| host)
}

/// Reads a text file at `path` inside the root, following symlinks within the root. A
/// configuration file larger than 1 MiB is not one a loader would read either.
pub fn read_in_root(root: &Path, path: &str) -> Result<String, RootError> {
    let bytes = read_regular(root, path, 1 << 20)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The in-root path of the host file `binary`, when it lies inside `root`.
pub fn root_path_of(root: &Path, binary: &Path) -> Option<String> {
    let root = fs::canonicalize(root).ok()?;
    let binary = fs::canonicalize(binary).ok()?;
    let rel = binary.strip_prefix(&root).ok()?;
    Some(format!("/{}", rel.to_string_lossy()))
}
