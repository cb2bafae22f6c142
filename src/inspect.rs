//! Reads an ELF executable and says what it needs at run time (goblin does the parsing).

use crate::goinfo::{self, GoInfo};
use crate::platform::Platform;
use goblin::elf::{header, program_header, Elf};
use serde::Serialize;
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
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not an ELF file (it does not start with \\x7fELF); binpack packs Linux executables", path.display())]
    NotElf { path: PathBuf },
    #[error("{} is a truncated or malformed ELF: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("{} is an ELF for {os}, not Linux", path.display())]
    NotLinux { path: PathBuf, os: String },
    #[error("{} is an ELF for an unsupported machine ({machine}); binpack packs amd64, arm64, 386, arm, riscv64, ppc64le and s390x", path.display())]
    UnsupportedMachine { path: PathBuf, machine: String },
    #[error("{} is {kind}, not an executable", path.display())]
    NotExecutable { path: PathBuf, kind: &'static str },
}

/// Inspects the ELF at `path`.
pub fn inspect_file(path: &Path) -> Result<Linkage, InspectError> {
    let bytes = std::fs::read(path).map_err(|source| InspectError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    inspect_bytes(&bytes, path)
}

/// Inspects ELF bytes; `path` only names the file in errors.
pub fn inspect_bytes(bytes: &[u8], path: &Path) -> Result<Linkage, InspectError> {
    check_ident(bytes, path)?;
    let elf = Elf::parse(bytes).map_err(|e| malformed(path, e.to_string()))?;
    check_kind(&elf, path)?;
    let platform = Platform::from_elf_machine(elf.header.e_machine, elf.is_64, elf.little_endian)
        .ok_or_else(|| InspectError::UnsupportedMachine {
        path: path.to_path_buf(),
        machine: header::machine_to_str(elf.header.e_machine).to_string(),
    })?;
    check_segments(&elf, bytes.len() as u64, path)?;
    let go_section = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(".go.buildinfo"))
        .and_then(|sh| sh.file_range())
        .and_then(|r| bytes.get(r));
    let interpreter = elf.interpreter.map(String::from);
    let deps = DynamicDeps::of(&elf);
    Ok(Linkage {
        platform,
        is_static: interpreter.is_none() && deps.needed.is_empty(),
        interpreter,
        needed: deps.needed,
        runpath: deps.runpath,
        rpath: deps.rpath,
        go: goinfo::decode(go_section, bytes),
    })
}

fn malformed(path: &Path, reason: String) -> InspectError {
    InspectError::Malformed {
        path: path.to_path_buf(),
        reason,
    }
}

/// The identification bytes and header, checked before goblin parses: a clear word for a
/// file that is not an ELF, not Linux's, or cut short.
fn check_ident(bytes: &[u8], path: &Path) -> Result<(), InspectError> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(InspectError::NotElf {
            path: path.to_path_buf(),
        });
    }
    let header_len = if bytes.get(4) == Some(&2) { 64 } else { 52 };
    if bytes.len() < header_len {
        return Err(malformed(
            path,
            format!("only {} bytes, shorter than an ELF header", bytes.len()),
        ));
    }
    let osabi = bytes[header::EI_OSABI];
    // 0 (System V) and 3 (GNU/Linux) are what Linux toolchains write.
    if osabi != header::ELFOSABI_NONE && osabi != header::ELFOSABI_LINUX {
        return Err(InspectError::NotLinux {
            path: path.to_path_buf(),
            os: osabi_name(osabi),
        });
    }
    // Say "truncated" for a cut file rather than goblin's "bad offset".
    let (shoff, shnum, shentsize) = section_table(bytes);
    if shoff != 0 && shoff.saturating_add(shnum.saturating_mul(shentsize)) > bytes.len() as u64 {
        return Err(malformed(
            path,
            format!(
                "its section headers at byte {shoff} lie past the end of the file ({} bytes): truncated",
                bytes.len()
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
fn check_kind(elf: &Elf, path: &Path) -> Result<(), InspectError> {
    let not = |kind| {
        Err(InspectError::NotExecutable {
            path: path.to_path_buf(),
            kind,
        })
    };
    match elf.header.e_type {
        header::ET_DYN if elf.entry == 0 => not("a shared library"),
        header::ET_EXEC | header::ET_DYN => Ok(()),
        header::ET_REL => not("a relocatable object file"),
        header::ET_CORE => not("a core dump"),
        t => Err(malformed(path, format!("unknown ELF type {t}"))),
    }
}

/// goblin accepts a file cut inside a segment's data; the loader would not.
fn check_segments(elf: &Elf, len: u64, path: &Path) -> Result<(), InspectError> {
    for ph in &elf.program_headers {
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

/// The dynamic section entries the loader searches with, for executables and libraries alike.
pub(crate) struct DynamicDeps {
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
    pub rpath: Vec<String>,
}

impl DynamicDeps {
    pub fn of(elf: &Elf) -> DynamicDeps {
        // Each DT_RUNPATH/DT_RPATH string is a colon-separated list.
        let split = |v: &[&str]| -> Vec<String> {
            v.iter()
                .flat_map(|s| s.split(':'))
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        DynamicDeps {
            needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
            runpath: split(&elf.runpaths),
            rpath: split(&elf.rpaths),
        }
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
