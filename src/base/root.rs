//! Paths inside a root resolved as the kernel would with the root as `/`: every symlink
//! followed inside it (counted, as the kernel counts them), files opened only when regular.

use crate::image::layer::Content;
use crate::support::printable::printable;
use rustix::fs::{fstat, openat, openat2, readlinkat, FileType, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;
use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
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
/// host path (for messages). The file is opened by the kernel from a descriptor of the root
/// ([`open_resolved`]), so a root changed while it is read (a directory swapped for a symlink
/// to the host's) cannot make it a file outside the root.
pub fn open_in_root(root: &Path, path: &str) -> Result<(fs::File, PathBuf), RootError> {
    // The user-space walk names what is missing or looping as before; the open decides.
    let real = walk(root, path, &mut |_, _| {})?;
    let host = host_path(root, &real);
    let io = |source| RootError::Io {
        path: host.clone(),
        source,
    };
    let dir = open_root(root).map_err(|source| RootError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let file = fs::File::from(
        open_resolved(&dir, path).map_err(|e| match e.raw_os_error() {
            Some(ELOOP) => RootError::SymlinkLoop {
                path: path.to_string(),
                root: root.to_path_buf(),
            },
            _ => io(e),
        })?,
    );
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        let kind = crate::elf::inspect::kind_of(&meta);
        return Err(io(std::io::Error::other(format!(
            "{kind}, not a regular file"
        ))));
    }
    Ok((file, host))
}

const ELOOP: i32 = 40;

/// The root directory, open as a path only: every lookup in the root starts from it.
fn open_root(root: &Path) -> std::io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    Ok(openat(CWD, root, flags, Mode::empty())?)
}

/// `path` opened for reading with the root `dir` as `/`: by `openat2(RESOLVE_IN_ROOT)`, where
/// the kernel has it, else component by component ([`open_walked`]). Never blocks on a FIFO.
pub fn open_resolved(dir: &OwnedFd, path: &str) -> std::io::Result<OwnedFd> {
    let rel = relative(path);
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    // EAGAIN: a rename in the root raced the lookup; the kernel asks for another try.
    for _ in 0..16 {
        match openat2(dir, rel, flags, Mode::empty(), how) {
            Err(e) if e == Errno::NOSYS || e == Errno::PERM => {
                return open_walked(dir, path, flags)
            }
            Err(e) if e == Errno::AGAIN => continue,
            r => return Ok(r?),
        }
    }
    Err(Errno::AGAIN.into())
}

fn relative(path: &str) -> &str {
    match path.trim_start_matches('/') {
        "" => ".",
        rel => rel,
    }
}

/// The fallback of [`open_resolved`] for kernels without `openat2`: each component opened
/// with `O_PATH | O_NOFOLLOW` from the directory before it, a symlink's target read from its
/// own descriptor and resolved from the root, `..` never above the root; the final file
/// opened from its directory without following and checked to be the one looked at.
pub fn open_walked(dir: &OwnedFd, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
    let mut dirs: Vec<OwnedFd> = Vec::new();
    let mut pending: Vec<String> = components(path);
    let mut links = 0;
    while let Some(comp) = pending.pop() {
        if comp == ".." {
            dirs.pop();
            continue;
        }
        let here = dirs.last().unwrap_or(dir);
        let look = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(here, comp.as_str(), look, Mode::empty())?;
        let st = fstat(&fd)?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = readlinkat(&fd, "", Vec::new())?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    dirs.clear();
                }
                pending.extend(components(&target));
            }
            FileType::Directory => dirs.push(fd),
            _ if pending.is_empty() => {
                let file = openat(here, comp.as_str(), flags | OFlags::NOFOLLOW, Mode::empty())?;
                let now = fstat(&file)?;
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
                    return Err(Errno::AGAIN.into());
                }
                return Ok(file);
            }
            _ => return Err(Errno::NOTDIR.into()),
        }
    }
    Ok(openat(
        dirs.last().unwrap_or(dir),
        ".",
        flags,
        Mode::empty(),
    )?)
}

/// The components of `path` still to resolve, last first (a stack).
fn components(path: &str) -> Vec<String> {
    let parts = path.split('/').filter(|c| !c.is_empty() && *c != ".");
    let mut v: Vec<String> = parts.map(str::to_string).collect();
    v.reverse();
    v
}

/// The regular file at `path` in the root as a layer's content, with its image mode. From a
/// root other than the host's own it is read now, through the descriptor that was checked:
/// reading it again by path when the layer is written could meet a root changed since.
pub fn file_content(root: &Path, path: &str) -> Result<(Content, u32), RootError> {
    let (mut file, host) = open_in_root(root, path)?;
    let io = |source| RootError::Io {
        path: host.clone(),
        source,
    };
    let meta = file.metadata().map_err(io)?;
    let mode = crate::image::layer::normal_mode(meta.permissions().mode());
    if fs::canonicalize(root).is_ok_and(|r| r == Path::new("/")) {
        return Ok((Content::Host(host.clone()), mode));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok((Content::Bytes(bytes), mode))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    /// The walk kernels without openat2 get: symlinks, absolute or relative, and `..` stay in
    /// the root.
    #[test]
    fn the_fallback_walk_stays_in_the_root() {
        let d = tempfile::tempdir().unwrap();
        let (root, host) = (d.path().join("root"), d.path().join("host"));
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("shadow"), "host").unwrap();
        fs::write(root.join("etc/shadow"), "root").unwrap();
        symlink(host.join("shadow"), root.join("abs")).unwrap();
        symlink("../../../etc/shadow", root.join("etc/rel")).unwrap();
        let dir = open_root(&root).unwrap();
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let read = |p: &str| {
            let mut s = String::new();
            fs::File::from(open_walked(&dir, p, flags).ok()?)
                .read_to_string(&mut s)
                .ok()?;
            Some(s)
        };
        assert_eq!(read("/etc/rel").as_deref(), Some("root"));
        assert_eq!(read("/../../etc/shadow").as_deref(), Some("root"));
        assert_eq!(read("/abs"), None, "the host path is looked up in the root");
        symlink("loop", root.join("loop")).unwrap();
        let e = open_walked(&dir, "/loop", flags).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(ELOOP));
    }
}
