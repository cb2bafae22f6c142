//! Paths inside a root resolved as the kernel would with the root as `/`: every symlink
//! followed inside it (counted, as the kernel counts them), files opened only when regular.

use super::*;

/// Symlinks followed in one resolution before giving up, as Linux does (ELOOP).
pub(super) const MAX_LINKS: usize = 40;

pub(super) fn host_path(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

/// Resolves `path` inside `root` the way the kernel would with `root` as `/`, reporting each
/// symlink met (its path and target) and returning the symlink-free path.
pub(super) fn walk(
    root: &Path,
    path: &str,
    on_link: &mut dyn FnMut(&str, &str),
) -> Result<String, ClosureError> {
    let mut links = 0;
    walk_from(root, path, on_link, &mut links).map_err(|e| match e {
        // Named by the path asked for, not the link where the count ran out.
        ClosureError::SymlinkLoop { root, .. } => ClosureError::SymlinkLoop {
            path: path.to_string(),
            root,
        },
        e => e,
    })
}

/// `links` counts every symlink followed in the whole resolution, as the kernel does: a limit
/// on nesting alone lets links that each name several others expand exponentially.
pub(super) fn walk_from(
    root: &Path,
    path: &str,
    on_link: &mut dyn FnMut(&str, &str),
    links: &mut usize,
) -> Result<String, ClosureError> {
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
        let io = |source| ClosureError::Io {
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
            return Err(ClosureError::SymlinkLoop {
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
pub(super) fn is_missing(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::NotADirectory
}

/// The regular file at `path` in the root, symlinks followed inside the root, open; and its
/// host path.
pub fn open_in_root(root: &Path, path: &str) -> Result<(fs::File, PathBuf), ClosureError> {
    let real = walk(root, path, &mut |_, _| {})?;
    let host = host_path(root, &real);
    let (file, _) = open_regular(&host).map_err(|e| ClosureError::Io {
        path: host.clone(),
        source: match e {
            NotRegular::Io(e) => e,
            NotRegular::Kind(kind) => std::io::Error::other(format!("{kind}, not a regular file")),
        },
    })?;
    Ok((file, host))
}

/// Reads the regular file at `path` in the root, at most `limit` bytes.
pub(super) fn read_regular(root: &Path, path: &str, limit: u64) -> Result<Vec<u8>, ClosureError> {
    let (file, host) = open_in_root(root, path)?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| ClosureError::Io { path: host, source })?;
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
pub(super) fn read_in_root(root: &Path, path: &str) -> Result<String, ClosureError> {
    let bytes = read_regular(root, path, 1 << 20)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
