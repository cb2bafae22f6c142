//! Time zone files for programs that read them from the system (a C program calling
//! localtime, a Rust one reading /usr/share/zoneinfo through chrono or jiff, musl's libc):
//! scratch and closure images have none, and such a program silently prints UTC for any
//! `TZ`. Go programs embed Go's database (`-tags timetzdata`) and node carries ICU's, so
//! their builds say they need none.

use crate::base::packages::{Db, Package};
use crate::image::layer::{LayerError, Tree};
use std::io::Read;
use std::path::Path;

/// Where the files are, in the root and in the image.
pub const DIR: &str = "/usr/share/zoneinfo";

/// What in an executable shows it reads time zone files: the directory's name (in the
/// program, or in a static libc), or the libc calls that read them (in the dynamic symbol
/// names).
const SIGNS: &[&[u8]] = &[b"zoneinfo", b"localtime", b"tzset", b"mktime"];

/// Copies of the database that no program reads by default: leap-second zones, and the
/// `posix/` duplicate of the whole tree.
const SKIPPED: &[&str] = &["right", "posix"];

/// Whether `executable` reads the system's time zone files (a scan of its bytes; an
/// unreadable file reads none: its own error comes from the stage that copies it).
pub fn wanted(executable: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(executable) else {
        return false;
    };
    let finders: Vec<_> = SIGNS.iter().map(memchr::memmem::Finder::new).collect();
    let keep = SIGNS.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    loop {
        let n = match f.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let end = filled + n;
        if finders.iter().any(|f| f.find(&buf[..end]).is_some()) {
            return true;
        }
        // The tail stays, so a sign across two reads is still found.
        let tail = end.saturating_sub(keep);
        buf.copy_within(tail..end, 0);
        filled = end - tail;
    }
}

/// Adds the root's time zone files at [`DIR`] (all but [`SKIPPED`]) to `tree`; the package
/// that owns them, for scanners. Nothing when the root has none.
pub fn add(root: &Path, tree: &mut Tree) -> Result<Option<Package>, LayerError> {
    let Some(host) = crate::base::closure::dir_in_root(root, DIR) else {
        return Ok(None);
    };
    let read_err = |source| LayerError::Read {
        path: host.clone(),
        source,
    };
    let mut names: Vec<_> = std::fs::read_dir(&host)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    names.sort();
    tree.dir(DIR, 0o755)?;
    for name in names {
        if SKIPPED.iter().any(|s| name == *s) {
            continue;
        }
        let path = format!("{DIR}/{}", name.to_string_lossy());
        tree.copy_from_host(&path, &host.join(&name))?;
    }
    let utc = format!("{DIR}/UTC");
    Ok(Db::open(root, std::slice::from_ref(&utc))
        .owner(&utc)
        .cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_across_two_reads_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("exe");
        // "zoneinfo" starts 4 bytes before the end of the first read.
        let mut bytes = vec![b'x'; 256 * 1024 - 4];
        bytes.extend_from_slice(b"zoneinfo/");
        bytes.extend(vec![b'y'; 1000]);
        std::fs::write(&f, &bytes).unwrap();
        assert!(wanted(&f));
        std::fs::write(&f, vec![b'x'; 600 * 1024]).unwrap();
        assert!(!wanted(&f));
        assert!(!wanted(&dir.path().join("missing")));
    }
}
