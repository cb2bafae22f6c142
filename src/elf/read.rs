//! Reads the parts of an ELF file that `inspect` and `closure` need, one range at a time:
//! the headers, the section name table, the dynamic section and the strings it names.
//! goblin parses each range; nothing else of the file is read, so inspecting a 100 MB node
//! executable costs a few hundred KiB, and each read is checked against the file's length
//! and capped, so sizes claimed by a hostile header are never allocated.

use goblin::container::Ctx;
use goblin::elf::dynamic::{Dynamic, DT_NEEDED, DT_RPATH, DT_RUNPATH};
use goblin::elf::program_header::{ProgramHeader, PT_DYNAMIC};
use goblin::elf::section_header::{SectionHeader, SHN_XINDEX, SHT_NOBITS};
use goblin::elf::{Elf, Header};
use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Section header tables above this are refused (a real one is below 64 KiB).
const MAX_SECTION_TABLE: u64 = 16 << 20;
/// Of the section name table, of PT_DYNAMIC: at most this much is read (a real one is a
/// few hundred bytes); names or entries past it are not seen.
const MAX_TABLE: u64 = 1 << 20;
/// The longest library name or search path list read from the dynamic string table.
const MAX_STRING: u64 = 64 << 10;
/// All the names and paths of one dynamic section together.
const MAX_STRINGS: u64 = 1 << 20;

/// Where the bytes come from: a file, read range by range, or bytes already in memory.
pub trait Source {
    fn size(&self) -> u64;
    /// `n` bytes at `at`; the caller checked they lie inside the file.
    fn read_at(&self, at: u64, n: usize) -> io::Result<Cow<'_, [u8]>>;
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, at: u64, n: usize) -> io::Result<Cow<'_, [u8]>> {
        usize::try_from(at)
            .ok()
            .and_then(|at| self.get(at..at.checked_add(n)?))
            .map(Cow::Borrowed)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }
}

/// An open file and its length when opened.
pub struct FileSource<'a> {
    pub file: &'a File,
    pub len: u64,
}

impl Source for FileSource<'_> {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_at(&self, at: u64, n: usize) -> io::Result<Cow<'_, [u8]>> {
        let mut buf = vec![0u8; n];
        self.file.read_exact_at(&mut buf, at)?;
        Ok(Cow::Owned(buf))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Why the file is not a well-formed ELF.
    #[error("{0}")]
    Malformed(String),
}

fn malformed(reason: impl Into<String>) -> ReadError {
    ReadError::Malformed(reason.into())
}

/// An error naming `what` when `n` bytes at `at` do not lie inside the file.
pub fn check_in<S: Source + ?Sized>(src: &S, at: u64, n: u64, what: &str) -> Result<(), ReadError> {
    let len = src.size();
    match at.checked_add(n) {
        Some(end) if end <= len => Ok(()),
        _ => Err(malformed(format!(
            "{what}: {n} bytes at offset {at}, past the end of the file ({len} bytes)"
        ))),
    }
}

/// `n` bytes at `at`, or an error naming `what` when they do not lie inside the file.
pub fn read_in<'s, S: Source + ?Sized>(
    src: &'s S,
    at: u64,
    n: u64,
    what: &str,
) -> Result<Cow<'s, [u8]>, ReadError> {
    check_in(src, at, n, what)?;
    Ok(src.read_at(at, n as usize)?)
}

/// The ELF header, the program and section headers, and the section name table.
pub struct Headers {
    pub header: Header,
    pub ctx: Ctx,
    pub program_headers: Vec<ProgramHeader>,
    pub section_headers: Vec<SectionHeader>,
    shstrtab: Vec<u8>,
}

impl Headers {
    pub fn read<S: Source + ?Sized>(src: &S) -> Result<Headers, ReadError> {
        let head = src.read_at(0, src.size().min(64) as usize)?;
        let header = Elf::parse_header(&head).map_err(|e| malformed(e.to_string()))?;
        let goblin = |e: goblin::error::Error| malformed(e.to_string());
        let ctx = Ctx::new(
            header.container().map_err(goblin)?,
            header.endianness().map_err(goblin)?,
        );
        let n = u64::from(header.e_phnum) * ProgramHeader::size(ctx) as u64;
        let table = read_in(src, header.e_phoff, n, "its program headers")?;
        let program_headers =
            ProgramHeader::parse(&table, 0, header.e_phnum.into(), ctx).map_err(goblin)?;
        let section_headers = section_headers(src, &header, ctx)?;
        let shstrtab = shstrtab(src, &header, &section_headers)?;
        Ok(Headers {
            header,
            ctx,
            program_headers,
            section_headers,
            shstrtab,
        })
    }

    pub fn is_64(&self) -> bool {
        self.ctx.is_big()
    }

    pub fn little_endian(&self) -> bool {
        self.ctx.is_little_endian()
    }

    /// The first section named `name`.
    pub fn section(&self, name: &[u8]) -> Option<&SectionHeader> {
        let name_of = |sh: &SectionHeader| {
            let s = self.shstrtab.get(sh.sh_name..)?;
            s.split(|&b| b == 0).next()
        };
        self.section_headers
            .iter()
            .find(|sh| name_of(sh) == Some(name))
    }
}

/// The section header table (none when e_shoff is 0); its length comes from the first entry
/// when e_shnum is 0 (more than 0xff00 sections), as goblin reads it.
fn section_headers<S: Source + ?Sized>(
    src: &S,
    header: &Header,
    ctx: Ctx,
) -> Result<Vec<SectionHeader>, ReadError> {
    if header.e_shoff == 0 {
        return Ok(Vec::new());
    }
    let size = SectionHeader::size(ctx) as u64;
    let what = "its section headers";
    let goblin = |e: goblin::error::Error| malformed(e.to_string());
    let mut count = u64::from(header.e_shnum);
    if count == 0 {
        let first = read_in(src, header.e_shoff, size, what)?;
        count = SectionHeader::parse_from(&first, 0, 1, ctx).map_err(goblin)?[0].sh_size;
    }
    let n = count.max(1).saturating_mul(size);
    if n > MAX_SECTION_TABLE {
        return Err(malformed(format!(
            "it claims {count} section headers, more than binpack reads"
        )));
    }
    let table = read_in(src, header.e_shoff, n, what)?;
    SectionHeader::parse_from(&table, 0, count as usize, ctx).map_err(goblin)
}

/// The section name table (empty when there is none), at most MAX_TABLE bytes of it.
fn shstrtab<S: Source + ?Sized>(
    src: &S,
    header: &Header,
    sections: &[SectionHeader],
) -> Result<Vec<u8>, ReadError> {
    let mut index = usize::from(header.e_shstrndx);
    if index == SHN_XINDEX as usize {
        index = sections.first().map_or(usize::MAX, |s| s.sh_link as usize);
    }
    let Some(sh) = sections.get(index) else {
        return Ok(Vec::new());
    };
    if sh.sh_type == SHT_NOBITS {
        return Ok(Vec::new());
    }
    let (at, size, what) = (sh.sh_offset, sh.sh_size, "its section name table");
    check_in(src, at, size, what)?;
    Ok(read_in(src, at, size.min(MAX_TABLE), what)?.into_owned())
}

/// The dynamic section entries the loader searches with, for executables and libraries alike.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DynamicDeps {
    pub needed: Vec<String>,
    pub runpath: Vec<String>,
    pub rpath: Vec<String>,
}

impl DynamicDeps {
    /// DT_NEEDED, DT_RUNPATH and DT_RPATH of the first PT_DYNAMIC (none without one). A
    /// string that is not valid UTF-8, or longer than MAX_STRING, is an error: dropping it
    /// would make an image that lacks a library.
    pub fn read<S: Source + ?Sized>(src: &S, h: &Headers) -> Result<DynamicDeps, ReadError> {
        let mut deps = DynamicDeps::default();
        let Some(dynamic) = dynamic(src, h)? else {
            return Ok(deps);
        };
        let (strtab, strsz) = (dynamic.info.strtab as u64, dynamic.info.strsz as u64);
        check_in(
            src,
            strtab,
            strsz,
            "its dynamic string table (DT_STRTAB, DT_STRSZ)",
        )?;
        let mut budget = MAX_STRINGS;
        for d in &dynamic.dyns {
            let list = match d.d_tag {
                DT_NEEDED => &mut deps.needed,
                DT_RUNPATH => &mut deps.runpath,
                DT_RPATH => &mut deps.rpath,
                _ => continue,
            };
            // Past the table: goblin's Strtab::get_at gives None, and the entry is passed over.
            let Some(left) = strsz.checked_sub(d.d_val).filter(|&n| n > 0) else {
                continue;
            };
            // A short read first: names are short, and a crafted table of many entries must
            // not make each read 64 KiB.
            let full = left.min(MAX_STRING).min(budget);
            let mut window = full.min(4096);
            let mut bytes = src.read_at(strtab + d.d_val, window as usize)?;
            if !bytes.contains(&0) && window < full {
                window = full;
                bytes = src.read_at(strtab + d.d_val, window as usize)?;
            }
            let s = match bytes.iter().position(|&b| b == 0) {
                Some(end) => &bytes[..end],
                None if window == left => &bytes[..],
                None => {
                    return Err(malformed(format!(
                        "a dynamic entry's string at offset {} of the dynamic string table is longer than {MAX_STRING} bytes, or they add up to more than {MAX_STRINGS}",
                        d.d_val
                    )))
                }
            };
            // An unterminated string that ends the table has no NUL to charge.
            budget = budget.saturating_sub(s.len() as u64 + 1);
            let s = std::str::from_utf8(s).map_err(|_| {
                malformed(format!(
                    "a name in its dynamic section, \"{}\", is not valid UTF-8",
                    s.escape_ascii()
                ))
            })?;
            list.push(s.to_string());
        }
        // Each DT_RUNPATH/DT_RPATH string is a colon-separated list.
        let split = |v: Vec<String>| -> Vec<String> {
            v.iter()
                .flat_map(|s| s.split(':'))
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        deps.runpath = split(deps.runpath);
        deps.rpath = split(deps.rpath);
        Ok(deps)
    }
}

/// The first PT_DYNAMIC's entries, up to DT_NULL, with what goblin derives from them (the
/// string table's file offset from its address).
fn dynamic<S: Source + ?Sized>(src: &S, h: &Headers) -> Result<Option<Dynamic>, ReadError> {
    let Some(i) = h
        .program_headers
        .iter()
        .position(|p| p.p_type == PT_DYNAMIC)
    else {
        return Ok(None);
    };
    let ph = &h.program_headers[i];
    let what = "its dynamic section (PT_DYNAMIC)";
    // An empty one is not read, wherever it points (as goblin and the loader do).
    let bytes = if ph.p_filesz == 0 {
        Cow::Borrowed(&[][..])
    } else {
        check_in(src, ph.p_offset, ph.p_filesz, what)?;
        read_in(src, ph.p_offset, ph.p_filesz.min(MAX_TABLE), what)?
    };
    // goblin reads PT_DYNAMIC at its offset in the buffer given: point it at ours.
    let mut phdrs = h.program_headers.clone();
    phdrs[i].p_offset = 0;
    phdrs[i].p_filesz = bytes.len() as u64;
    Dynamic::parse(&bytes, &phdrs, h.ctx).map_err(|e| malformed(e.to_string()))
}
