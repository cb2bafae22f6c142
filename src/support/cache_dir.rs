//! Where binpack's cache lives, and whether it may be trusted. The cache holds programs
//! binpack runs (node, esbuild) and records that decide what goes into an image, so a cache
//! directory someone else can write is refused, as git refuses a repository owned by another
//! user (safe.directory): owned by this user and writable by no one else. A new one is made
//! 0700. With no `HOME` the default is the user's home from the passwd file, else a name in
//! the temporary directory that carries the uid (and is checked like any other).

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The cache directory cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheDirError {
    #[error(
        "{}: not using it as binpack's cache: it belongs to another user (uid {owner}); \
         set BINPACK_CACHE to a directory of your own", .path.display()
    )]
    Foreign { path: PathBuf, owner: u32 },
    #[error(
        "{}: not using it as binpack's cache: others can write to it (mode {mode:o}); \
         `chmod go-w {}` if it is yours, or set BINPACK_CACHE", .path.display(), .path.display()
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error("{}: not using it as binpack's cache: it is not a directory", .path.display())]
    NotDir { path: PathBuf },
    #[error("{}: cannot make binpack's cache: {cause}; set BINPACK_CACHE", .path.display())]
    Io { path: PathBuf, cause: String },
}

/// `$BINPACK_CACHE`, else `$XDG_CACHE_HOME/binpack`, else `~/.cache/binpack` (the home from
/// the passwd file when `HOME` is unset), else `$TMPDIR/binpack-cache-UID`. Not checked.
pub fn location() -> PathBuf {
    let var = |k: &str| std::env::var_os(k).filter(|d| !d.is_empty());
    if let Some(d) = var("BINPACK_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = var("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("binpack");
    }
    let uid = crate::support::cleanup::effective_uid();
    let home = var("HOME")
        .map(PathBuf::from)
        .or_else(|| uid.and_then(passwd_home));
    match home {
        Some(h) => h.join(".cache/binpack"),
        None => std::env::temp_dir().join(format!("binpack-cache-{}", uid.unwrap_or(u32::MAX))),
    }
}

/// The home directory of `uid` in /etc/passwd, when it names an existing directory.
fn passwd_home(uid: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[2].parse() == Ok(uid))
        .map(|f| PathBuf::from(f[5]))
        .filter(|h| h.is_absolute() && h.is_dir())
}

/// The cache directory, made (0700) when missing and checked, once per process.
pub fn checked() -> Result<PathBuf, CacheDirError> {
    static DIR: OnceLock<Result<PathBuf, CacheDirError>> = OnceLock::new();
    DIR.get_or_init(|| prepare(&location())).clone()
}

/// Makes `path` 0700 when missing (its parents as usual), then checks it.
pub fn prepare(path: &Path) -> Result<PathBuf, CacheDirError> {
    let io = |e: std::io::Error| CacheDirError::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io(e)),
        _ => {}
    }
    check(path)?;
    Ok(path.to_path_buf())
}

/// Refuses a directory owned by another user or writable by group or others. A symbolic link
/// is judged by what it points to (a cache moved to a bigger disk).
pub fn check(path: &Path) -> Result<(), CacheDirError> {
    let meta = std::fs::metadata(path).map_err(|e| CacheDirError::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    })?;
    let path = path.to_path_buf();
    if !meta.is_dir() {
        return Err(CacheDirError::NotDir { path });
    }
    if crate::support::cleanup::effective_uid().is_some_and(|me| me != meta.uid()) {
        return Err(CacheDirError::Foreign {
            path,
            owner: meta.uid(),
        });
    }
    if meta.mode() & 0o022 != 0 {
        let mode = meta.mode() & 0o7777;
        return Err(CacheDirError::Writable { path, mode });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_private_and_others_refused() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("a/cache");
        prepare(&new).unwrap();
        let mode = std::fs::metadata(&new).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = prepare(&new).unwrap_err().to_string();
        assert!(e.contains("others can write to it (mode 777)"), "{e}");
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(check(&file), Err(CacheDirError::NotDir { .. })));
    }
}
