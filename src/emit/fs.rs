//! Writing outputs so that a failure leaves nothing half-written: every output is written
//! under a temporary name beside its destination and renamed into place; directories created
//! for it are removed again on failure. A destination that is a stream (a FIFO, a character
//! device such as /dev/null, /dev/stdout, /proc/self/fd/N) is written in place instead:
//! renaming over it would replace the device node or the link, not feed the reader.

use super::EmitError;
use crate::support::cleanup::Tracked;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// tempfile's errors name the temporary path; the user only knows the destination.
/// (tempfile wraps the OS error in a private type whose text ends with ` at path "..."`.)
pub(super) fn plain(e: io::Error) -> io::Error {
    if e.raw_os_error().is_some() {
        return e;
    }
    let text = e.to_string();
    match text.split_once(" at path \"") {
        Some((cause, _)) => io::Error::new(e.kind(), cause.to_string()),
        None => e,
    }
}

pub(super) fn write_err(path: &Path) -> impl FnOnce(io::Error) -> EmitError + '_ {
    move |source| EmitError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses `path` as a destination when it exists and is neither empty nor `what` (told by
/// `looks_right` from its first 512 bytes): a mistyped `-o` must not replace a source file.
pub fn replaceable(
    path: &Path,
    what: &'static str,
    looks_right: fn(&[u8]) -> bool,
) -> Result<(), EmitError> {
    let Ok(meta) = fs::metadata(path) else {
        return Ok(());
    };
    if is_stream(path) {
        return Ok(());
    }
    use std::io::Read;
    let mut head = Vec::with_capacity(512);
    let read = meta.is_file()
        && File::open(path)
            .and_then(|f| f.take(512).read_to_end(&mut head))
            .is_ok();
    if read && (head.is_empty() || looks_right(&head)) {
        return Ok(());
    }
    Err(EmitError::NotReplaceable {
        path: path.to_path_buf(),
        what,
    })
}

/// Whether `p` is written as a stream: it exists and is neither a regular file nor a
/// directory, or it names a descriptor (/dev/stdout, /dev/fd/N, /proc/self/fd/N, which may
/// lead to a regular file the shell opened).
pub fn is_stream(p: &Path) -> bool {
    let descriptor = ["/dev/", "/proc/"].iter().any(|d| p.starts_with(d));
    descriptor || fs::metadata(p).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

pub(super) fn is_empty_dir(p: &Path) -> bool {
    fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` and missing ancestors; returns those it created, deepest last.
fn ensure_dir(dir: &Path) -> Result<Vec<PathBuf>, EmitError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        cur = d.parent();
    }
    missing.reverse();
    for (i, d) in missing.iter().enumerate() {
        if let Err(e) = fs::create_dir(d) {
            remove_created(&missing[..i]);
            return Err(write_err(d)(e));
        }
    }
    Ok(missing)
}

fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = fs::remove_dir(d);
    }
}

/// Writes `dest` through a temporary file beside it, renamed into place only when `write`
/// succeeded; directories created for it are removed again on failure.
pub fn atomic_file(
    dest: &Path,
    write: impl FnOnce(&File) -> Result<(), EmitError>,
) -> Result<(), EmitError> {
    if dest.is_dir() {
        return Err(write_err(dest)(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    if is_stream(dest) {
        let f = fs::OpenOptions::new().write(true).truncate(true).open(dest);
        return write(&f.map_err(write_err(dest))?);
    }
    with_parent(dest, |parent| {
        let tmp = Tracked::new(
            tempfile::Builder::new()
                .prefix(&crate::support::cleanup::beside_prefix())
                .suffix(".tmp")
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .tempfile_in(parent)
                .map_err(|e| write_err(dest)(plain(e)))?,
        );
        write(tmp.get().as_file())?;
        tmp.into_inner()
            .persist(dest)
            .map_err(|e| EmitError::Write {
                path: dest.to_path_buf(),
                source: plain(e.error),
            })?;
        Ok(())
    })
}

/// Runs `write` with `dest`'s parent directory, creating it (and missing ancestors) first
/// and removing what it created if `write` fails.
pub(super) fn with_parent<T>(
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<T, EmitError>,
) -> Result<T, EmitError> {
    let parent = parent_of(dest);
    let created = ensure_dir(&parent)?;
    let result = write(&parent);
    if result.is_err() {
        remove_created(&created);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn atomic_file_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("new/deeper/out.tar");
        let err = atomic_file(&dest, |_| {
            Err(write_err(Path::new("x"))(io::Error::other("boom")))
        })
        .unwrap_err();
        assert!(err.to_string().contains("boom"));
        assert!(!dir.path().join("new").exists(), "created dirs removed");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        atomic_file(&dest, |mut f| f.write_all(b"ok").map_err(write_err(&dest))).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"ok");
        let leftovers: Vec<_> = fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["out.tar"]);
    }

    #[test]
    fn a_device_is_written_in_place_not_replaced() {
        let null = Path::new("/dev/null");
        atomic_file(null, |mut f| f.write_all(b"ok").map_err(write_err(null))).unwrap();
        let meta = fs::metadata(null).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &meta.file_type()
        ));
        assert!(replaceable(null, "a tar archive", |_| false).is_ok());
    }
}
