//! Reading a small file a user named (a config, a CA bundle): a regular file only, and no more
//! than a limit. A FIFO would block the open or the read forever and `/dev/zero` would read
//! until memory runs out, so the file is opened without blocking, judged by `fstat` on the
//! descriptor that is then read (no window between the check and the read), and read bounded.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const O_NONBLOCK: i32 = 0x80;
#[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
const O_NONBLOCK: i32 = 0o4000;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}", plain(.0))]
    Io(#[from] std::io::Error),
    #[error("not a regular file (a {0}); name a file")]
    NotRegular(&'static str),
    #[error("larger than {} MiB; this is not the file you meant", .0 >> 20)]
    TooLarge(u64),
}

/// An I/O error's text without the "(os error N)" the user has no use for.
fn plain(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.split_once(" (os error ") {
        Some((cause, _)) => cause.to_string(),
        None => text,
    }
}

/// Opens `path` (following links, as any path option does) without blocking on a FIFO, and
/// returns the descriptor with its metadata once it is known to be a regular file.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        return Err(ReadError::NotRegular(match () {
            _ if kind.is_dir() => "directory",
            _ if kind.is_fifo() => "FIFO",
            _ if kind.is_char_device() => "character device",
            _ if kind.is_block_device() => "block device",
            _ if kind.is_socket() => "socket",
            _ => "special file",
        }));
    }
    Ok((file, meta))
}

/// Reads at most `limit` bytes of an open file; more is an error.
pub fn read_to_limit(file: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

/// The bytes of the regular file `path`, at most `limit` of them.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (file, _) = open_regular(path)?;
    read_to_limit(file, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_and_large_ones_are_refused() {
        let e = read(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read(Path::new("/"), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("big");
        std::fs::write(&big, vec![b'x'; (1 << 20) + 1]).unwrap();
        let e = read(&big, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        std::fs::write(&big, b"ok").unwrap();
        assert_eq!(read(&big, 1 << 20).unwrap(), b"ok");
        let e = read(&d.path().join("none"), 1).unwrap_err().to_string();
        assert_eq!(e, "No such file or directory");
    }
}
