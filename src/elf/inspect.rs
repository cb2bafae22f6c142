//! Reads an ELF executable and says what it needs at run time (goblin does the parsing).

use crate::elf::goinfo::{self, GoInfo};
pub(crate) use crate::elf::read::DynamicDeps;
use crate::elf::read::{check_in, read_in, FileSource, Headers, ReadError, Source};
use crate::support::platform::Platform;
use crate::support::printable::printable;
use goblin::elf::{header, program_header, section_header, Header};
use serde::Serialize;
use std::fs::{File, Metadata};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What the loader will need to run a binary: the input of the base policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Linkage {
    pub platform: Platform,
    /// True when there is no interpreter and no needed library: runs on an empty filesystem.
    #[serde(rename = "static")]
    pub is_static: bool,
    /// PT_INTERP, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// DT_NEEDED, in order.
    pub needed: Vec<String>,
    /// DT_RUNPATH entries (colon lists split).
    pub runpath: Vec<String>,
    /// DT_RPATH entries (only used by the loader when there is no RUNPATH).
    pub rpath: Vec<String>,
    pub go: Option<GoInfo>,
}

impl Linkage {
    /// Which C library the interpreter belongs to, for reports.
    pub fn libc(&self) -> Option<&'static str> {
        let interp = self.interpreter.as_deref()?;
        Some(if interp.contains("ld-musl") {
            "musl"
        } else if interp.contains("ld-linux") || interp.contains("ld64.so") {
            "glibc"
        } else {
            "unknown libc"
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {}: {source}", shown(path))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is {kind}, not a regular file; binpack reads executables from regular files",
        shown(path)
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{} is not an ELF file (it does not start with \\x7fELF); binpack packs Linux executables",
        shown(path)
    )]
    NotElf { path: PathBuf },
    #[error(
        "{} is a truncated or malformed ELF: {}",
        shown(path),
        printable(reason)
    )]
    Malformed { path: PathBuf, reason: String },
    #[error("{} is an ELF for {os}, not Linux", shown(path))]
    NotLinux { path: PathBuf, os: String },
    #[error("{} is an ELF for an unsupported machine ({machine}); binpack packs amd64, arm64, 386, arm, riscv64, ppc64le and s390x", shown(path))]
    UnsupportedMachine { path: PathBuf, machine: String },
    #[error("{} is {kind}, not an executable", shown(path))]
    NotExecutable { path: PathBuf, kind: &'static str },
}

/// A path in a message, its control characters escaped.
fn shown(path: &Path) -> String {
    printable(&path.to_string_lossy()).into_owned()
}

/// What a file that is not a regular one is, for messages.
pub(crate) fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

// O_NONBLOCK, so that opening a FIFO cannot wait for a writer (std has no name for it, and
// the libc crate is not a dependency).
#[cfg(target_os = "linux")]
const O_NONBLOCK: i32 = if cfg!(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "mips32r6",
    target_arch = "mips64r6"
)) {
    0x80
} else if cfg!(any(target_arch = "sparc", target_arch = "sparc64")) {
    0x4000
} else {
    0o4000
};
#[cfg(not(target_os = "linux"))]
const O_NONBLOCK: i32 = 0x4; // macOS and the BSDs

/// Opens `path` (following symlinks) only if it is a regular file: a FIFO would block the
/// open or the read, a device (`/dev/zero`) would be read forever. Checked before opening,
/// and again on the open file, since the path may change in between.
pub(crate) fn open_regular(path: &Path) -> Result<(File, Metadata), NotRegular> {
    let before = std::fs::metadata(path).map_err(NotRegular::Io)?;
    if !before.is_file() {
        return Err(NotRegular::Kind(kind_of(&before)));
    }
    let file = File::options()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(NotRegular::Io)?;
    let meta = file.metadata().map_err(NotRegular::Io)?;
    if !meta.is_file() {
        return Err(NotRegular::Kind(kind_of(&meta)));
    }
    Ok((file, meta))
}

/// Why [`open_regular`] refused.
#[derive(Debug)]
pub(crate) enum NotRegular {
    Io(std::io::Error),
    Kind(&'static str),
}

/// Refuses, naming the path, anything but an existing regular file (after symlinks).
pub fn check_regular(path: &Path) -> Result<(), InspectError> {
    open_regular(path)
        .map(drop)
        .map_err(|e| not_regular(path, e))
}

fn not_regular(path: &Path, e: NotRegular) -> InspectError {
    let path = path.to_path_buf();
    match e {
        NotRegular::Io(source) => InspectError::Io { path, source },
        NotRegular::Kind(kind) => InspectError::NotRegular { path, kind },
    }
}

/// Inspects the ELF at `path`.
pub fn inspect_file(path: &Path) -> Result<Linkage, InspectError> {
    inspect_path(path, false)
}

/// Like [`inspect_file`], for a shared object that is loaded, not run (a node `.node`
/// addon): what it needs from the loader.
pub fn inspect_shared_object(path: &Path) -> Result<Linkage, InspectError> {
    inspect_path(path, true)
}

fn inspect_path(path: &Path, library: bool) -> Result<Linkage, InspectError> {
    let (file, meta) = open_regular(path).map_err(|e| not_regular(path, e))?;
    let src = FileSource {
        file: &file,
        len: meta.len(),
    };
    inspect_elf(&src, path, library)
}

/// Inspects ELF bytes; `path` only names the file in errors.
pub fn inspect_bytes(bytes: &[u8], path: &Path) -> Result<Linkage, InspectError> {
    inspect_elf(bytes, path, false)
}

/// Reads only the headers, PT_INTERP, the dynamic section and the Go build info (see
/// elf_read): memory stays small whatever the file's size.
fn inspect_elf<S: Source + ?Sized>(
    src: &S,
    path: &Path,
    library: bool,
) -> Result<Linkage, InspectError> {
    let read_error = |e| read_error(path, e);
    let head = src
        .read_at(0, src.size().min(64) as usize)
        .map_err(|e| read_error(e.into()))?;
    check_ident(&head, src.size(), path)?;
    let h = Headers::read(src).map_err(read_error)?;
    if !(library && h.header.e_type == header::ET_DYN) {
        check_kind(&h.header, path)?;
    }
    let platform = Platform::from_elf_machine(h.header.e_machine, h.is_64(), h.little_endian())
        .ok_or_else(|| InspectError::UnsupportedMachine {
            path: path.to_path_buf(),
            machine: header::machine_to_str(h.header.e_machine).to_string(),
        })?;
    check_segments(&h, src.size(), path)?;
    let interpreter = interpreter(src, &h, path)?;
    let deps = DynamicDeps::read(src, &h).map_err(read_error)?;
    Ok(Linkage {
        platform,
        is_static: interpreter.is_none() && deps.needed.is_empty(),
        interpreter,
        needed: deps.needed,
        runpath: deps.runpath,
        rpath: deps.rpath,
        go: go_info(src, &h).map_err(read_error)?,
    })
}

fn malformed(path: &Path, reason: String) -> InspectError {
    InspectError::Malformed {
        path: path.to_path_buf(),
        reason,
    }
}

fn read_error(path: &Path, e: ReadError) -> InspectError {
    match e {
        ReadError::Io(source) => InspectError::Io {
            path: path.to_path_buf(),
            source,
        },
        ReadError::Malformed(reason) => malformed(path, reason),
    }
}

/// The most of a Go build-info section, or of the data it is searched in, that is read: a
/// real one is a few KiB, at the start of the data.
const MAX_GO_INFO: u64 = 1 << 20;

/// Go's build info, found as Go's own debug/buildinfo finds it: the `.go.buildinfo` section,
/// else the start of the first writable, non-executable PT_LOAD (where the linker puts it;
/// for binaries whose section headers are gone).
fn go_info<S: Source + ?Sized>(src: &S, h: &Headers) -> Result<Option<GoInfo>, ReadError> {
    let section = h
        .section(b".go.buildinfo")
        .filter(|sh| sh.sh_type != section_header::SHT_NOBITS)
        .filter(|sh| check_in(src, sh.sh_offset, sh.sh_size, "").is_ok());
    if let Some(sh) = section {
        let bytes = read_in(src, sh.sh_offset, sh.sh_size.min(MAX_GO_INFO), "")?;
        if let Some(info) = goinfo::decode(Some(&bytes), &[]) {
            return Ok(Some(info));
        }
    }
    let (w, x) = (program_header::PF_W, program_header::PF_X);
    let data = h
        .program_headers
        .iter()
        .find(|p| p.p_type == program_header::PT_LOAD && p.p_flags & (w | x) == w);
    let Some(p) = data else {
        return Ok(None);
    };
    // check_segments made sure each PT_LOAD lies inside the file.
    let bytes = read_in(src, p.p_offset, p.p_filesz.min(MAX_GO_INFO), "a PT_LOAD")?;
    Ok(goinfo::decode(None, &bytes))
}

/// The identification bytes and header (`head`: the first 64 bytes of a file of `len`),
/// checked before goblin parses: a clear word for a file that is not an ELF, not Linux's,
/// or cut short.
fn check_ident(head: &[u8], len: u64, path: &Path) -> Result<(), InspectError> {
    if !head.starts_with(b"\x7fELF") {
        return Err(InspectError::NotElf {
            path: path.to_path_buf(),
        });
    }
    let header_len = if head.get(4) == Some(&2) { 64 } else { 52 };
    if len < header_len {
        return Err(malformed(
            path,
            format!("only {len} bytes, shorter than an ELF header"),
        ));
    }
    let osabi = head[header::EI_OSABI];
    // 0 (System V) and 3 (GNU/Linux) are what Linux toolchains write.
    if osabi != header::ELFOSABI_NONE && osabi != header::ELFOSABI_LINUX {
        return Err(InspectError::NotLinux {
            path: path.to_path_buf(),
            os: osabi_name(osabi),
        });
    }
    // Say "truncated" for a cut file rather than goblin's "bad offset".
    let (shoff, shnum, shentsize) = section_table(head);
    if shoff != 0 && shoff.saturating_add(shnum.saturating_mul(shentsize)) > len {
        return Err(malformed(
            path,
            format!(
                "its section headers at byte {shoff} lie past the end of the file ({len} bytes): truncated"
            ),
        ));
    }
    Ok(())
}

/// (e_shoff, e_shnum, e_shentsize) of a 64-bit header; zeros for a 32-bit one.
fn section_table(bytes: &[u8]) -> (u64, u64, u64) {
    if bytes[4] != 2 {
        return (0, 0, 0);
    }
    let le = bytes[5] == 1;
    let r16 = |at: usize| {
        let b = [bytes[at], bytes[at + 1]];
        u64::from(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let b: [u8; 8] = bytes[40..48].try_into().expect("8 bytes");
    let shoff = if le {
        u64::from_le_bytes(b)
    } else {
        u64::from_be_bytes(b)
    };
    (shoff, r16(60), r16(58))
}

/// An executable: not an object file, a core dump or a shared library.
fn check_kind(h: &Header, path: &Path) -> Result<(), InspectError> {
    let not = |kind| {
        Err(InspectError::NotExecutable {
            path: path.to_path_buf(),
            kind,
        })
    };
    match h.e_type {
        header::ET_DYN if h.e_entry == 0 => not("a shared library"),
        header::ET_EXEC | header::ET_DYN => Ok(()),
        header::ET_REL => not("a relocatable object file"),
        header::ET_CORE => not("a core dump"),
        t => Err(malformed(path, format!("unknown ELF type {t}"))),
    }
}

/// goblin accepts a file cut inside a segment's data; the loader would not.
fn check_segments(h: &Headers, len: u64, path: &Path) -> Result<(), InspectError> {
    for ph in &h.program_headers {
        let end = ph.p_offset.checked_add(ph.p_filesz);
        if ph.p_type == program_header::PT_LOAD && end.is_none_or(|end| end > len) {
            return Err(malformed(
                path,
                format!(
                    "a loadable segment of {} bytes at offset {} does not fit in the file's {len} bytes",
                    ph.p_filesz, ph.p_offset
                ),
            ));
        }
    }
    Ok(())
}

/// PT_INTERP read as the kernel does (goblin gives None for one that is not UTF-8, which would
/// make a broken binary look static): the first one, inside the file, NUL-terminated, at most
/// PATH_MAX bytes, and UTF-8 here since it is used as a path in the image.
fn interpreter<S: Source + ?Sized>(
    src: &S,
    h: &Headers,
    path: &Path,
) -> Result<Option<String>, InspectError> {
    let Some(ph) = h
        .program_headers
        .iter()
        .find(|ph| ph.p_type == program_header::PT_INTERP)
    else {
        return Ok(None);
    };
    let (at, len) = (ph.p_offset, ph.p_filesz);
    let what = format!("its interpreter path (PT_INTERP, {len} bytes at offset {at})");
    check_in(src, at, len, "").map_err(|_| {
        malformed(
            path,
            format!(
                "{what} lies past the end of the file ({} bytes)",
                src.size()
            ),
        )
    })?;
    let not_a_path = || {
        malformed(
            path,
            format!("{what} is not a NUL-terminated path of 1 to 4095 bytes"),
        )
    };
    if !(2..=4096).contains(&len) {
        return Err(not_a_path());
    }
    let raw = read_in(src, at, len, "PT_INTERP").map_err(|e| read_error(path, e))?;
    if raw.last() != Some(&0) {
        return Err(not_a_path());
    }
    let name = raw.split(|&b| b == 0).next().unwrap_or_default();
    match std::str::from_utf8(name) {
        Ok(s) if !s.is_empty() => Ok(Some(s.to_string())),
        _ => Err(malformed(
            path,
            format!(
                "its interpreter path (PT_INTERP) \"{}\" is empty or not valid UTF-8",
                name.escape_ascii()
            ),
        )),
    }
}

fn osabi_name(osabi: u8) -> String {
    match osabi {
        1 => "HP-UX".into(),
        2 => "NetBSD".into(),
        6 => "Solaris".into(),
        9 => "FreeBSD".into(),
        12 => "OpenBSD".into(),
        other => format!("OS ABI {other}"),
    }
}
