//! binpack's on-disk cache (node runtimes, esbuild, base image blobs, pushed-blob records):
//! entries appear whole or not at all, and several binpack processes may fill it at once.

pub mod stamp;

use std::path::{Path, PathBuf};

/// How much older than a moment a file's stamp must be to be trusted from then on: the
/// kernel dates writes with a clock that lags by up to a tick (10 ms at HZ=100), so a write
/// in the same tick could leave a stamp as it was (git's racy-index rule).
pub const RACY: std::time::Duration = std::time::Duration::from_millis(50);

/// `at` less [`RACY`], in ns since the epoch: a stamp older than this is settled.
pub fn racy_limit_ns(at: std::time::SystemTime) -> i128 {
    at.checked_sub(RACY)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The cache directory ([`crate::support::cache_dir::location`]), made 0700 and checked: one owned by
/// another user or writable by others is never used. The command line refuses such a one
/// before it starts ([`crate::support::cache_dir::checked`]); a library caller that did not ask gets a
/// private empty directory for this process instead (every lookup a miss, nothing planted).
pub fn dir() -> PathBuf {
    static FALLBACK: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    static SWEPT: std::sync::Once = std::sync::Once::new();
    if let Ok(dir) = crate::support::cache_dir::checked() {
        // What a run killed with SIGKILL left, removed once per run before the cache is used.
        SWEPT.call_once(|| crate::support::cleanup::sweep_cache(&dir, 3));
        return dir;
    }
    crate::support::cache_dir::checked().unwrap_or_else(|_| {
        FALLBACK
            .get_or_init(|| {
                tempfile::Builder::new()
                    .prefix("binpack-cache-")
                    .tempdir()
                    .map(|d| d.keep())
                    .unwrap_or_else(|_| std::env::temp_dir().join("binpack-cache-unusable"))
            })
            .clone()
    })
}

/// Returns the cache entry `dest`, filling it first when missing: `fill` writes into a fresh
/// temporary directory beside it, which is renamed into place only if `fill` succeeds. When
/// another process got there first, its entry is kept and ours is dropped.
pub fn entry<E>(dest: &Path, fill: impl FnOnce(&Path) -> Result<(), E>) -> Result<PathBuf, E>
where
    E: From<std::io::Error>,
{
    if dest.exists() {
        return Ok(dest.to_path_buf());
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    // Named with this run's pid, so a later run can tell it from a live writer's.
    let tmp = crate::support::cleanup::Tracked::new(
        tempfile::Builder::new()
            .prefix(&crate::support::cleanup::beside_prefix())
            .suffix(".tmp")
            .tempdir_in(parent)?,
    );
    fill(tmp.path())?;
    let tmp = tmp.into_inner().keep();
    if let Err(e) = std::fs::rename(&tmp, dest) {
        let _ = std::fs::remove_dir_all(&tmp);
        if !dest.exists() {
            return Err(e.into());
        }
    }
    Ok(dest.to_path_buf())
}

/// Writes the cache file `dest` whole: into a temporary file beside it, renamed into place,
/// so a reader sees the old file or the new one, never half of one.
pub fn write_file(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::support::cleanup::beside_prefix())
        .suffix(".tmp")
        .tempfile_in(parent)?;
    tmp.write_all(bytes)?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_whole_or_absent() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("a/entry");
        let r: Result<PathBuf, std::io::Error> = entry(&dest, |tmp| {
            std::fs::write(tmp.join("half"), b"x")?;
            Err(std::io::Error::other("interrupted"))
        });
        assert!(r.is_err());
        assert!(!dest.exists());
        assert_eq!(std::fs::read_dir(d.path().join("a")).unwrap().count(), 0);
        let got = entry(&dest, |tmp| std::fs::write(tmp.join("whole"), b"x")).unwrap();
        assert!(got.join("whole").is_file());
        // A second fill is not attempted.
        let again: Result<PathBuf, std::io::Error> = entry(&dest, |_| panic!("refilled"));
        assert_eq!(again.unwrap(), dest);
    }
}
