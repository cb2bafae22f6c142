//! Append-only injection of a SEA blob into a copy of a node executable (ELF64 little-endian:
//! x86-64 and arm64), dropping its symbol and debug sections on the way.
//!
//! The copy keeps every loaded byte where it was. After them come the kept non-loaded sections
//! and a new section header table, then, page-aligned past every segment: a new program header
//! table (the old entries + one read-only PT_LOAD + one PT_NOTE) and the note `NODE_SEA_BLOB`
//! holding the blob. PT_PHDR, e_phoff and e_phnum point at the new table, and the fuse is
//! flipped. At run time node finds the note by walking the PT_NOTE segments in memory
//! (`dl_iterate_phdr`), so it must be inside a PT_LOAD; section headers do not matter to it.
//!
//! The ELF records are read and written by hand: goblin only reads, and three fixed-size
//! little-endian records are simpler than a writer crate. The input is scanned in 1 MiB
//! chunks and copied with `copy_file_range` (through `io::copy`), so memory grows with the
//! blob, not with the ~100 MB binary.

use super::blob::{Blob, Layout};
use crate::support::platform::Platform;
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, ELFMAG};
use goblin::elf::program_header::{PF_R, PT_LOAD, PT_NOTE, PT_PHDR};
use goblin::elf::section_header::{
    SHF_ALLOC, SHF_INFO_LINK, SHT_NOBITS, SHT_REL, SHT_RELA, SHT_SYMTAB,
};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The sentinel node checks to know it carries a blob: `:0` in a stock binary, `:1` in a SEA.
pub const FUSE: &[u8] = b"NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:";
const NOTE_NAME: &[u8] = b"NODE_SEA_BLOB\0";

/// The node runtimes supported, by OCI architecture, with the page size the new segment is
/// aligned to: arm64 kernels may run with 64 KiB pages.
const ARCHES: [(&str, u64); 2] = [("amd64", 0x1000), ("arm64", 0x10000)];

mod headers;
mod layout;
mod write;

use headers::*;
use layout::*;
use write::*;

#[derive(Debug, thiserror::Error)]
pub enum SeaError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is not an ELF file: a node runtime for Linux is needed", .0.display())]
    NotElf(PathBuf),
    #[error("{}: {why}", path.display())]
    Unsupported { path: PathBuf, why: String },
    #[error("{} has no SEA fuse (NODE_SEA_FUSE_...): it is not a node binary that supports single executable applications (node 20 or later)", .0.display())]
    FuseMissing(PathBuf),
    #[error("{} has the SEA fuse {} times; it must occur exactly once", .0.display(), .1)]
    FuseDoubled(PathBuf, usize),
    #[error("{} already carries a SEA blob (its fuse is flipped); start from a stock node binary", .0.display())]
    FuseFlipped(PathBuf),
    #[error("the SEA blob is {0} bytes: node reads it from an ELF note, whose 32-bit size field holds at most {max} bytes (4 GiB); bundle fewer or smaller assets", max = u32::MAX)]
    BlobTooLarge(u64),
}

/// What the injection did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub layout: Layout,
    pub input_size: u64,
    /// Bytes of symbol and debug sections left out.
    pub dropped: u64,
    pub output_size: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SeaError {
    let path = path.to_path_buf();
    move |source| SeaError::Io { path, source }
}

/// Writes `out`: `node` with `blob` injected, its fuse flipped, its symbols and debug info
/// dropped. `out` gets mode 0755.
pub fn make_executable(node: &Path, out: &Path, blob: &Blob) -> Result<Stats, SeaError> {
    let input = Input::read(node)?;
    let plan = Plan::new(&input, Some(blob))?;
    let output_size = write(&input, &plan, out)?;
    Ok(Stats {
        layout: input.layout,
        input_size: input.src.len,
        dropped: plan.dropped(&input),
        output_size,
    })
}

/// Writes `out`: `node` with its symbols and debug info dropped, nothing added, its fuse
/// untouched (a stock runtime, as `strip` would leave it). `out` gets mode 0755.
pub fn strip(node: &Path, out: &Path) -> Result<Stats, SeaError> {
    let input = Input::read(node)?;
    strip_input(&input, out)
}

/// [`strip`] for any ELF64 executable or shared library (a pyenv build's 23 MB
/// libpython3.11.so keeps its symbols and debug info: 5.7 MB without them), no fuse needed.
pub fn strip_object(path: &Path, out: &Path) -> Result<Stats, SeaError> {
    let input = Input::read_any(path)?;
    strip_input(&input, out)
}

fn strip_input(input: &Input, out: &Path) -> Result<Stats, SeaError> {
    let plan = Plan::new(input, None)?;
    let output_size = write(input, &plan, out)?;
    Ok(Stats {
        layout: input.layout,
        input_size: input.src.len,
        dropped: plan.dropped(input),
        output_size,
    })
}

// Reading: the node binary's headers, checked, and where its fuse is.

/// The open node binary: reads that stay inside it, errors that name it.
struct Source<'a> {
    path: &'a Path,
    file: File,
    len: u64,
}

impl<'a> Source<'a> {
    fn open(path: &'a Path) -> Result<Source<'a>, SeaError> {
        let file = File::open(path).map_err(io_err(path))?;
        let len = file.metadata().map_err(io_err(path))?.len();
        Ok(Source { path, file, len })
    }

    fn unsupported(&self, why: impl Into<String>) -> SeaError {
        SeaError::Unsupported {
            path: self.path.to_path_buf(),
            why: why.into(),
        }
    }

    /// `n` bytes at `at`; past the end means the headers lie.
    fn read_at(&self, at: u64, n: usize) -> Result<Vec<u8>, SeaError> {
        match at.checked_add(n as u64) {
            Some(end) if end <= self.len => {}
            _ => return Err(self.unsupported("truncated or malformed ELF headers")),
        }
        let mut v = vec![0u8; n];
        self.file
            .read_exact_at(&mut v, at)
            .map_err(io_err(self.path))?;
        Ok(v)
    }
}

/// The node binary as read: its headers, its segments and sections, its fuse.
struct Input<'a> {
    src: Source<'a>,
    /// The ELF header as it is in the file.
    ehdr: Vec<u8>,
    /// The page size the new segment aligns to (see ARCHES).
    page: u64,
    phoff: u64,
    phdrs: Vec<Phdr>,
    /// The PT_LOAD with the lowest address, and the index of the last PT_LOAD.
    first_load: Phdr,
    last_load: usize,
    /// e_shnum as the header has it: its whole table is replaced, so counted as dropped.
    shnum: usize,
    shdrs: Vec<Shdr>,
    shstrndx: usize,
    shstrtab: Vec<u8>,
    /// The offset of the fuse's `0`.
    fuse_digit: u64,
    layout: Layout,
}

impl<'a> Input<'a> {
    fn read(path: &'a Path) -> Result<Input<'a>, SeaError> {
        Input::read_with(path, true)
    }

    /// An ELF file that need not be node: no fuse is looked for (stripping never touches it).
    fn read_any(path: &'a Path) -> Result<Input<'a>, SeaError> {
        Input::read_with(path, false)
    }

    fn read_with(path: &'a Path, fuse: bool) -> Result<Input<'a>, SeaError> {
        let src = Source::open(path)?;
        let ehdr = src.read_at(0, (src.len as usize).min(EHDR))?;
        let page = check_header(&src, &ehdr)?;
        let phoff = u64_at(&ehdr, E_PHOFF);
        let phdrs: Vec<Phdr> = src
            .read_at(phoff, u16_at(&ehdr, E_PHNUM) as usize * PHDR)?
            .chunks(PHDR)
            .map(Phdr::read)
            .collect();
        let shstrndx = u16_at(&ehdr, E_SHSTRNDX) as usize;
        let (shdrs, shstrtab) = read_sections(&src, &ehdr)?;
        let (first_load, last_load) = check_segments(&src, &phdrs)?;
        let (fuse_digit, layout) = match fuse {
            true => find_fuse(&src)?,
            false => (u64::MAX, Layout::default()),
        };
        Ok(Input {
            shnum: u16_at(&ehdr, E_SHNUM) as usize,
            src,
            ehdr,
            page,
            phoff,
            phdrs,
            first_load,
            last_load,
            shdrs,
            shstrndx,
            shstrtab,
            fuse_digit,
            layout,
        })
    }

    fn unsupported(&self, why: impl Into<String>) -> SeaError {
        self.src.unsupported(why)
    }

    /// The name of section `s`, empty when the name table does not have it.
    fn name_of(&self, s: &Shdr) -> &[u8] {
        self.shstrtab
            .get(s.name as usize..)
            .map(|n| &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())])
            .unwrap_or(b"")
    }
}

/// Checks the ELF header is a supported node runtime's; returns the page size to align to.
fn check_header(src: &Source, ehdr: &[u8]) -> Result<u64, SeaError> {
    if !ehdr.starts_with(ELFMAG) {
        return Err(SeaError::NotElf(src.path.to_path_buf()));
    }
    if ehdr.len() < EHDR || ehdr[EI_CLASS] != ELFCLASS64 || ehdr[EI_DATA] != ELFDATA2LSB {
        return Err(src.unsupported(
            "only 64-bit little-endian ELF node runtimes (x86-64, arm64) are supported",
        ));
    }
    let machine = u16_at(ehdr, E_MACHINE);
    let page = Platform::from_elf_machine(machine, true, true)
        .and_then(|p| ARCHES.iter().find(|(arch, _)| *arch == p.arch))
        .map(|(_, page)| *page)
        .ok_or_else(|| {
            src.unsupported(format!(
                "ELF machine {machine}: only x86-64 and arm64 node runtimes are supported"
            ))
        })?;
    if u16_at(ehdr, E_PHENTSIZE) as usize != PHDR {
        return Err(src.unsupported("malformed program headers"));
    }
    Ok(page)
}

/// The section headers (none when e_shoff is 0) and the section name table, checked to lie
/// inside the file.
fn read_sections(src: &Source, ehdr: &[u8]) -> Result<(Vec<Shdr>, Vec<u8>), SeaError> {
    let shoff = u64_at(ehdr, E_SHOFF);
    let shnum = u16_at(ehdr, E_SHNUM) as usize;
    let shstrndx = u16_at(ehdr, E_SHSTRNDX) as usize;
    let shdrs: Vec<Shdr> = if shoff == 0 {
        vec![]
    } else {
        if shnum == 0 || u16_at(ehdr, E_SHENTSIZE) as usize != SHDR {
            return Err(src.unsupported("extended section numbering is not supported"));
        }
        src.read_at(shoff, shnum * SHDR)?
            .chunks(SHDR)
            .map(Shdr::read)
            .collect()
    };
    if !shdrs.is_empty() && shstrndx >= shdrs.len() {
        return Err(src.unsupported("the section name table index is out of range"));
    }
    for sh in &shdrs {
        if sh.sh_type != SHT_NOBITS && sh.offset.checked_add(sh.size).is_none_or(|e| e > src.len) {
            return Err(src.unsupported("a section extends past the end of the file (truncated?)"));
        }
    }
    let shstrtab = match shdrs.get(shstrndx) {
        Some(s) if s.sh_type != SHT_NOBITS => src.read_at(s.offset, s.size as usize)?,
        _ => vec![],
    };
    Ok((shdrs, shstrtab))
}

/// Checks every segment lies inside the file and its addresses do not wrap; returns the
/// PT_LOAD with the lowest address and the index of the last PT_LOAD.
fn check_segments(src: &Source, phdrs: &[Phdr]) -> Result<(Phdr, usize), SeaError> {
    let is_load = |p: &Phdr| p.p_type == PT_LOAD;
    let (Some(first), Some(last)) = (
        phdrs.iter().filter(|p| is_load(p)).min_by_key(|p| p.vaddr),
        phdrs.iter().rposition(is_load),
    ) else {
        return Err(src.unsupported("no loadable segment"));
    };
    if phdrs.iter().any(|p| {
        p.offset.checked_add(p.filesz).is_none_or(|e| e > src.len)
            || p.vaddr.checked_add(p.memsz).is_none()
    }) {
        return Err(src.unsupported("a segment extends past the end of the file (truncated?)"));
    }
    Ok((*first, last))
}

/// The offset of the fuse's `0` (the fuse must be there once, not yet flipped) and the blob
/// layout, found in the same pass over the file.
fn find_fuse(src: &Source) -> Result<(u64, Layout), SeaError> {
    let scan = scan(&src.file, src.len).map_err(io_err(src.path))?;
    let digit = match scan.fuses.as_slice() {
        [] => return Err(SeaError::FuseMissing(src.path.to_path_buf())),
        [one] => one + FUSE.len() as u64,
        more => return Err(SeaError::FuseDoubled(src.path.to_path_buf(), more.len())),
    };
    match src.read_at(digit, 1).ok().as_deref() {
        Some(b"0") => Ok((digit, scan.layout)),
        Some(b"1") => Err(SeaError::FuseFlipped(src.path.to_path_buf())),
        _ => Err(SeaError::FuseMissing(src.path.to_path_buf())),
    }
}

// Planning: where every kept byte goes, and the new headers.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_over_4_gib_is_refused_not_cut() {
        assert_eq!(desc_size(u32::MAX as usize).unwrap(), u32::MAX);
        let e = desc_size(u32::MAX as usize + 1).unwrap_err();
        assert!(matches!(e, SeaError::BlobTooLarge(4_294_967_296)), "{e}");
        assert!(
            e.to_string()
                .starts_with("the SEA blob is 4294967296 bytes: node reads it from an ELF note"),
            "{e}"
        );
    }

    #[test]
    fn align_up_says_when_it_does_not_fit() {
        assert_eq!(align_up(5, 0), Some(5));
        assert_eq!(align_up(0x1001, 0x1000), Some(0x2000));
        assert_eq!(align_up(u64::MAX - 5, 0x1000), None);
    }
}
