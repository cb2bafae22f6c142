//! Temporary paths that must not outlive an interrupted run. Drop handlers remove temporaries
//! on errors; a signal skips them, so the CLI's signal handler calls [`remove_all`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Keeps a tempfile or tempdir registered for removal on a signal while it lives.
pub struct Tracked<T: AsRef<Path>> {
    inner: Option<T>,
}

impl<T: AsRef<Path>> Tracked<T> {
    pub fn new(inner: T) -> Self {
        if let Ok(mut p) = PENDING.lock() {
            p.push(inner.as_ref().to_path_buf());
        }
        Tracked { inner: Some(inner) }
    }

    pub fn get(&self) -> &T {
        self.inner.as_ref().expect("present until into_inner")
    }

    pub fn path(&self) -> &Path {
        self.get().as_ref()
    }

    /// Stops tracking and hands back the inner value (e.g. to persist it).
    pub fn into_inner(mut self) -> T {
        let inner = self.inner.take().expect("present until into_inner");
        untrack(inner.as_ref());
        inner
    }
}

impl<T: AsRef<Path>> Drop for Tracked<T> {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner {
            untrack(inner.as_ref());
        }
    }
}

fn untrack(path: &Path) {
    if let Ok(mut p) = PENDING.lock() {
        p.retain(|x| x != path);
    }
}

/// Removes every tracked path (called on SIGINT/SIGTERM, just before exiting).
pub fn remove_all() {
    let paths = match PENDING.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return,
    };
    for p in paths {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}
