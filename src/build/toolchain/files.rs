//! File errors that name their path, private temporary directories and cache entries: what
//! every builder needs around the files it makes.

use super::*;

/// An I/O failure on one path: what was being done, to which path, and why it failed (an
/// io::Error alone prints `No such file or directory` and nothing else).
#[derive(Debug, thiserror::Error)]
#[error("{doing} {}: {source}", path.display())]
pub struct FileError {
    /// `reading`, `creating a temporary directory in`, ...
    pub doing: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

/// For `map_err`: an io::Error from `doing` on `path`.
pub fn file_error(doing: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FileError {
    let path = path.to_path_buf();
    move |source| FileError {
        doing,
        path,
        source,
    }
}

/// A fresh private directory in the system's temporary directory, named so that a later run
/// removes it if this one is killed.
pub fn temp_dir() -> Result<tempfile::TempDir, FileError> {
    tempfile::Builder::new()
        .prefix(&crate::support::cleanup::private_prefix())
        .tempdir()
        .map_err(file_error(
            "creating a temporary directory in",
            &std::env::temp_dir(),
        ))
}

/// [`cache::entry`], its own I/O failures (making the entry's temporary directory, renaming
/// it into place) named by the entry's path; `fill`'s errors pass through as they are.
pub fn cache_entry<E: From<FileError>>(
    dest: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<PathBuf, E> {
    enum Failed<E> {
        Cache(io::Error),
        Fill(E),
    }
    impl<E> From<io::Error> for Failed<E> {
        fn from(e: io::Error) -> Self {
            Failed::Cache(e)
        }
    }
    cache::entry(dest, |tmp| fill(tmp).map_err(Failed::Fill)).map_err(|e| match e {
        Failed::Cache(source) => file_error("creating the cache entry", dest)(source).into(),
        Failed::Fill(e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_name_their_path() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("file"), "").unwrap();
        let dest = d.path().join("file/entry");
        let err = cache_entry(&dest, |_| Ok::<(), FileError>(())).unwrap_err();
        let want = format!("creating the cache entry {}: File exists", dest.display());
        assert!(err.to_string().starts_with(&want), "{err}");
        // The filler's own error passes through untouched.
        let dest = d.path().join("entry");
        let err = cache_entry(&dest, |tmp| {
            std::fs::read(tmp.join("x")).map_err(file_error("reading", &tmp.join("x")))?;
            Ok::<(), FileError>(())
        })
        .unwrap_err();
        assert_eq!(err.doing, "reading");
        assert!(err.path.ends_with("x") && !dest.exists(), "{err}");
    }
}
