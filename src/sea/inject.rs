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
use crate::platform::Platform;
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

const EHDR: usize = 64;
const PHDR: usize = 56;
const SHDR: usize = 64;
// Offsets of the ELF64 header fields read or rewritten.
const E_MACHINE: usize = 18;
const E_PHOFF: usize = 32;
const E_SHOFF: usize = 40;
const E_PHENTSIZE: usize = 54;
const E_PHNUM: usize = 56;
const E_SHENTSIZE: usize = 58;
const E_SHNUM: usize = 60;
const E_SHSTRNDX: usize = 62;

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

#[derive(Clone, Copy, Debug)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

#[derive(Clone, Copy, Debug)]
struct Shdr {
    name: u32,
    sh_type: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    addralign: u64,
    entsize: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Phdr {
    fn read(b: &[u8]) -> Phdr {
        Phdr {
            p_type: u32_at(b, 0),
            flags: u32_at(b, 4),
            offset: u64_at(b, 8),
            vaddr: u64_at(b, 16),
            paddr: u64_at(b, 24),
            filesz: u64_at(b, 32),
            memsz: u64_at(b, 40),
            align: u64_at(b, 48),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.p_type.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        for v in [
            self.offset,
            self.vaddr,
            self.paddr,
            self.filesz,
            self.memsz,
            self.align,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl Shdr {
    fn read(b: &[u8]) -> Shdr {
        Shdr {
            name: u32_at(b, 0),
            sh_type: u32_at(b, 4),
            flags: u64_at(b, 8),
            addr: u64_at(b, 16),
            offset: u64_at(b, 24),
            size: u64_at(b, 32),
            link: u32_at(b, 40),
            info: u32_at(b, 44),
            addralign: u64_at(b, 48),
            entsize: u64_at(b, 56),
        }
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name.to_le_bytes());
        out.extend_from_slice(&self.sh_type.to_le_bytes());
        for v in [self.flags, self.addr, self.offset, self.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.link.to_le_bytes());
        out.extend_from_slice(&self.info.to_le_bytes());
        out.extend_from_slice(&self.addralign.to_le_bytes());
        out.extend_from_slice(&self.entsize.to_le_bytes());
    }
    fn file_range(&self) -> Option<Range<u64>> {
        // read_sections refused a range that wraps; saturating keeps this safe on its own.
        (self.sh_type != SHT_NOBITS && self.size > 0)
            .then(|| self.offset..self.offset.saturating_add(self.size))
    }
    fn is_alloc(&self) -> bool {
        self.flags & u64::from(SHF_ALLOC) != 0
    }
    /// Whether sh_info holds a section index (to renumber), not a count or a flag.
    fn info_is_index(&self) -> bool {
        self.flags & u64::from(SHF_INFO_LINK) != 0
            || ((self.sh_type == SHT_REL || self.sh_type == SHT_RELA) && self.info != 0)
    }
}

/// `x` rounded up to a multiple of `a`; None when that does not fit in 64 bits (hostile
/// headers: a p_memsz near 2^64).
fn align_up(x: u64, a: u64) -> Option<u64> {
    if a <= 1 {
        Some(x)
    } else {
        x.checked_next_multiple_of(a)
    }
}

/// Is this section one `strip` removes: the symbol table, its string table, debug info?
fn droppable(name: &[u8], s: &Shdr) -> bool {
    !s.is_alloc()
        && (s.sh_type == SHT_SYMTAB
            || name.starts_with(b".debug")
            || name.starts_with(b".zdebug")
            || name == b".strtab")
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
    let plan = Plan::new(&input, None)?;
    let output_size = write(&input, &plan, out)?;
    Ok(Stats {
        layout: input.layout,
        input_size: input.src.len,
        dropped: plan.dropped(&input),
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
        let (fuse_digit, layout) = find_fuse(&src)?;
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

/// The output's layout.
struct Plan {
    /// The ELF header with e_phoff, e_phnum and the section header fields rewritten.
    ehdr: Vec<u8>,
    sections: Sections,
    /// None: only strip (no blob, the fuse left as it is).
    region: Option<Region>,
}

/// Loaded bytes stay where they are; kept non-loaded sections follow them, closing the gaps
/// dropped ones leave; then the new section header table.
struct Sections {
    /// Everything before this is copied as it is: headers, segments, allocated sections.
    loaded_end: u64,
    moved: Vec<Move>,
    headers: Vec<Shdr>,
    /// The new section header table's offset; 0 when there is none.
    shoff: u64,
    shstrndx: u16,
    /// Where the section data and table end.
    end: u64,
}

/// A kept non-loaded section: its bytes in the input, and their new offset.
struct Move {
    from: Range<u64>,
    to: u64,
}

/// The appended region, page-aligned past every segment: the new program header table (the
/// old entries, PT_PHDR re-pointed, + one read-only PT_LOAD over the region + one PT_NOTE),
/// then the note.
struct Region {
    off: u64,
    phdrs: Vec<Phdr>,
    note_off: u64,
    note: Note,
}

/// The `NODE_SEA_BLOB` note: namesz, descsz, type 0, the name and the blob, each padded to 4.
struct Note {
    blob: Vec<u8>,
    /// The blob's length, checked to fit the note's size field.
    descsz: u32,
}

impl Plan {
    fn new(input: &Input, blob: Option<&Blob>) -> Result<Plan, SeaError> {
        let sections = Sections::plan(input)?;
        let region = match blob {
            Some(b) => Some(Region::plan(input, sections.end, b)?),
            None => None,
        };
        let mut ehdr = input.ehdr.clone();
        let mut put = |at: usize, v: &[u8]| ehdr[at..at + v.len()].copy_from_slice(v);
        if let Some(region) = &region {
            put(E_PHOFF, &region.off.to_le_bytes());
            put(E_PHNUM, &(region.phdrs.len() as u16).to_le_bytes());
        }
        put(E_SHOFF, &sections.shoff.to_le_bytes());
        put(E_SHNUM, &(sections.headers.len() as u16).to_le_bytes());
        put(E_SHSTRNDX, &sections.shstrndx.to_le_bytes());
        Ok(Plan {
            ehdr,
            sections,
            region,
        })
    }

    /// Input bytes not in the output: dropped sections and the old section header table.
    fn dropped(&self, input: &Input) -> u64 {
        let s = &self.sections;
        // Saturating: overlapping sections on lying headers may add up past the file.
        let copied = s.moved.iter().fold(s.loaded_end, |n, m| {
            n.saturating_add(m.from.end - m.from.start)
        });
        input
            .src
            .len
            .saturating_sub(copied.saturating_add((input.shnum * SHDR) as u64))
    }
}

impl Sections {
    fn plan(input: &Input) -> Result<Sections, SeaError> {
        let index = new_indices(input);
        let loaded_end = loaded_end(input)?;
        let mut cursor = loaded_end;
        let mut moved = Vec::new();
        let mut headers = Vec::new();
        for (s, new) in input.shdrs.iter().zip(&index) {
            if new.is_none() {
                continue;
            }
            let mut ns = renumbered(s, &index);
            if let Some(m) = place(input, s, loaded_end, &mut cursor)? {
                ns.offset = m.to;
                moved.push(m);
            }
            headers.push(ns);
        }
        let (shoff, end) = if headers.is_empty() {
            (0, cursor)
        } else {
            let shoff = align_up(cursor, 8).ok_or_else(|| too_big(input))?;
            let end = shoff.checked_add((headers.len() * SHDR) as u64);
            (shoff, end.ok_or_else(|| too_big(input))?)
        };
        Ok(Sections {
            loaded_end,
            moved,
            headers,
            shoff,
            shstrndx: index.get(input.shstrndx).copied().flatten().unwrap_or(0) as u16,
            end,
        })
    }
}

/// Each section's index in the output; None for a dropped one. The null section and the
/// name table always stay.
fn new_indices(input: &Input) -> Vec<Option<u32>> {
    let mut n = 0u32;
    let mut index = Vec::with_capacity(input.shdrs.len());
    for (i, s) in input.shdrs.iter().enumerate() {
        let keep = i == 0 || i == input.shstrndx || !droppable(input.name_of(s), s);
        index.push(keep.then(|| {
            n += 1;
            n - 1
        }));
    }
    index
}

/// `s` with its links to other sections renumbered; a link to a dropped section becomes 0.
fn renumbered(s: &Shdr, index: &[Option<u32>]) -> Shdr {
    let remap = |i: u32| index.get(i as usize).copied().flatten().unwrap_or(0);
    let mut ns = *s;
    ns.link = remap(s.link);
    if s.info_is_index() {
        ns.info = remap(s.info);
    }
    ns
}

/// The end of what the loader maps (and of every allocated section): copied as it is.
fn loaded_end(input: &Input) -> Result<u64, SeaError> {
    // Each sum was checked to stay inside the file when read; saturating keeps it so here.
    let table_end = input
        .phoff
        .saturating_add((input.phdrs.len() * PHDR) as u64);
    let mut end = (EHDR as u64).max(table_end);
    for p in &input.phdrs {
        end = end.max(p.offset.saturating_add(p.filesz));
    }
    for s in input.shdrs.iter().filter(|s| s.is_alloc()) {
        if let Some(r) = s.file_range() {
            end = end.max(r.end);
        }
    }
    if end > input.src.len {
        return Err(input.unsupported("a section extends past the end of the file (truncated?)"));
    }
    Ok(end)
}

/// Where kept section `s` goes: a non-loaded one moves to `cursor` (aligned), which advances;
/// a loaded one stays (None).
fn place(
    input: &Input,
    s: &Shdr,
    loaded_end: u64,
    cursor: &mut u64,
) -> Result<Option<Move>, SeaError> {
    let Some(r) = s.file_range() else {
        return Ok(None);
    };
    if r.start < loaded_end && r.end > loaded_end {
        return Err(input.unsupported(format!(
            "a non-loaded section spans bytes {}..{}, across the end of the loaded data",
            r.start, r.end
        )));
    }
    if r.start < loaded_end {
        return Ok(None);
    }
    if s.addralign > 1 << 24 {
        return Err(input.unsupported("a non-loaded section asks for an alignment above 16 MiB"));
    }
    if r.end > input.src.len {
        return Err(input.unsupported("a section extends past the end of the file"));
    }
    let to = align_up(*cursor, s.addralign).ok_or_else(|| too_big(input))?;
    *cursor = to
        .checked_add(r.end - r.start)
        .ok_or_else(|| too_big(input))?;
    Ok(Some(Move { from: r, to }))
}

/// Offsets past 2^64: only headers that lie get there.
fn too_big(input: &Input) -> SeaError {
    input.unsupported("its sections add up to offsets past 2^64 (malformed headers)")
}

impl Region {
    /// The region placed past `after` and every segment, with the same vaddr - offset as the
    /// first PT_LOAD (kernels before 5.18 compute AT_PHDR as load address + e_phoff).
    fn plan(input: &Input, after: u64, blob: &Blob) -> Result<Region, SeaError> {
        let phnum = input.phdrs.len() + 2;
        if phnum >= 0xffff {
            return Err(input.unsupported("too many program headers"));
        }
        let note = Note::new(blob.to_bytes(input.layout))?;
        let (off, vaddr) = region_start(input, after)?;
        // (phnum * PHDR) is below 4 MiB: it aligns; the sums may not fit on lying headers.
        let table = align_up((phnum * PHDR) as u64, 8).unwrap_or(u64::MAX);
        let note_off = off.checked_add(table).ok_or_else(|| too_big(input))?;
        let end = note_off
            .checked_add(note.len())
            .ok_or_else(|| too_big(input))?;
        if vaddr.checked_add(end - off).is_none() {
            return Err(input.unsupported(
                "the new segment would map past the top of the address space (malformed PT_LOAD)",
            ));
        }
        let phdrs = program_headers(input, off, vaddr, note_off, note.len());
        Ok(Region {
            off,
            phdrs,
            note_off,
            note,
        })
    }
}

/// The region's offset, page-aligned past `after` and past every PT_LOAD's end in memory,
/// and its address, with the same vaddr - offset as the first PT_LOAD.
fn region_start(input: &Input, after: u64) -> Result<(u64, u64), SeaError> {
    let first = &input.first_load;
    let delta = first
        .vaddr
        .checked_sub(first.offset)
        .ok_or_else(|| input.unsupported("first PT_LOAD maps below its file offset"))?;
    // check_segments refused a vaddr + memsz that wraps.
    let max_end = input
        .phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .map(|p| p.vaddr.saturating_add(p.memsz))
        .max()
        .unwrap_or(0);
    let too_far = || {
        input.unsupported(format!(
            "its segments map more than 1 GiB past the end of the file (up to address {max_end:#x}: p_vaddr + p_memsz)"
        ))
    };
    // A p_memsz near 2^64 puts the end where no page boundary follows it.
    let off = align_up(after.max(max_end.saturating_sub(delta)), input.page).ok_or_else(too_far)?;
    if off - after > 1 << 30 {
        return Err(too_far());
    }
    let vaddr = off.checked_add(delta).ok_or_else(|| {
        input.unsupported("the first PT_LOAD's address leaves no room for the new segment")
    })?;
    Ok((off, vaddr))
}

/// The new program header table, at `off`/`vaddr`, for a note of `note_len` at `note_off`.
fn program_headers(input: &Input, off: u64, vaddr: u64, note_off: u64, note_len: u64) -> Vec<Phdr> {
    let table_len = ((input.phdrs.len() + 2) * PHDR) as u64;
    let region_len = (note_off - off) + note_len;
    let segment = |p_type, offset, filesz, align| Phdr {
        p_type,
        flags: PF_R,
        offset,
        vaddr: vaddr + (offset - off),
        paddr: vaddr + (offset - off),
        filesz,
        memsz: filesz,
        align,
    };
    let mut phdrs = Vec::with_capacity(input.phdrs.len() + 2);
    for (i, p) in input.phdrs.iter().enumerate() {
        phdrs.push(if p.p_type == PT_PHDR {
            Phdr {
                flags: p.flags,
                ..segment(PT_PHDR, off, table_len, 8)
            }
        } else {
            *p
        });
        if i == input.last_load {
            // PT_LOADs stay sorted by address: the new one follows the last.
            phdrs.push(segment(PT_LOAD, off, region_len, input.page));
        }
    }
    phdrs.push(segment(PT_NOTE, note_off, note_len, 4));
    phdrs
}

/// The note's 32-bit size field for a blob of `len` bytes. A larger blob is refused: `as u32`
/// would cut the size and node would read a truncated blob.
fn desc_size(len: usize) -> Result<u32, SeaError> {
    u32::try_from(len).map_err(|_| SeaError::BlobTooLarge(len as u64))
}

/// Zeros that pad `len` bytes to a multiple of 4.
fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

impl Note {
    fn new(blob: Vec<u8>) -> Result<Note, SeaError> {
        let descsz = desc_size(blob.len())?;
        Ok(Note { blob, descsz })
    }

    fn name_pad() -> usize {
        pad4(NOTE_NAME.len())
    }

    fn blob_pad(&self) -> usize {
        pad4(self.blob.len())
    }

    fn len(&self) -> u64 {
        (12 + NOTE_NAME.len() + Note::name_pad() + self.blob.len() + self.blob_pad()) as u64
    }

    /// The note header and name, up to the blob.
    fn head(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(12 + NOTE_NAME.len() + Note::name_pad());
        h.extend_from_slice(&(NOTE_NAME.len() as u32).to_le_bytes());
        h.extend_from_slice(&self.descsz.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(NOTE_NAME);
        h.resize(h.len() + Note::name_pad(), 0);
        h
    }
}

// Writing.

/// Writes `plan` to `out` with mode 0755; returns its size.
fn write(input: &Input, plan: &Plan, out: &Path) -> Result<u64, SeaError> {
    let f = File::create(out).map_err(io_err(out))?;
    let mut w = Out {
        out: f,
        src: &input.src.file,
        pos: 0,
        // Stripping only: no offset matches, the fuse stays as it is.
        fuse_digit: if plan.region.is_some() {
            input.fuse_digit
        } else {
            u64::MAX
        },
        flipped: false,
    };
    w.write_plan(plan).map_err(io_err(out))?;
    if plan.region.is_some() && !w.flipped {
        return Err(input.unsupported("the SEA fuse is not in a loaded part of the file"));
    }
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).map_err(io_err(out))?;
    Ok(w.pos)
}

/// The output: tracks its position, copies input ranges in the kernel (`copy_file_range`
/// through `io::copy`) and writes `1` over the fuse's `0` on the way.
struct Out<'a> {
    out: File,
    src: &'a File,
    pos: u64,
    fuse_digit: u64,
    flipped: bool,
}

impl Out<'_> {
    fn write_plan(&mut self, plan: &Plan) -> io::Result<()> {
        let sections = &plan.sections;
        self.write(&plan.ehdr)?;
        self.copy(EHDR as u64..sections.loaded_end)?;
        for m in &sections.moved {
            self.pad_to(m.to)?;
            self.copy(m.from.clone())?;
        }
        if !sections.headers.is_empty() {
            self.pad_to(sections.shoff)?;
            let mut table = Vec::with_capacity(sections.headers.len() * SHDR);
            sections.headers.iter().for_each(|s| s.write(&mut table));
            self.write(&table)?;
        }
        let Some(region) = &plan.region else {
            return Ok(());
        };
        self.pad_to(region.off)?;
        let mut table = Vec::with_capacity(region.phdrs.len() * PHDR);
        region.phdrs.iter().for_each(|p| p.write(&mut table));
        self.write(&table)?;
        self.pad_to(region.note_off)?;
        self.write(&region.note.head())?;
        self.write(&region.note.blob)?;
        self.write(&vec![0u8; region.note.blob_pad()])
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.pos += data.len() as u64;
        Ok(())
    }

    /// Moves to `at`, leaving zeros (a hole) in between.
    fn pad_to(&mut self, at: u64) -> io::Result<()> {
        if at < self.pos {
            return Err(io::Error::other("overlapping output regions"));
        }
        self.out.seek(SeekFrom::Start(at))?;
        self.pos = at;
        Ok(())
    }

    fn copy_plain(&mut self, range: Range<u64>) -> io::Result<()> {
        let mut src = self.src;
        src.seek(SeekFrom::Start(range.start))?;
        let n = range.end - range.start;
        let copied = io::copy(&mut src.take(n), &mut self.out)?;
        if copied != n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the node binary changed while being copied",
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn copy(&mut self, range: Range<u64>) -> io::Result<()> {
        if range.contains(&self.fuse_digit) {
            self.copy_plain(range.start..self.fuse_digit)?;
            self.write(b"1")?;
            self.copy_plain(self.fuse_digit + 1..range.end)?;
            self.flipped = true;
            Ok(())
        } else {
            self.copy_plain(range)
        }
    }
}

/// What one pass over the input finds.
struct Scan {
    /// Offsets of the fuse (counted up to 1000: more than one is already an error).
    fuses: Vec<u64>,
    layout: Layout,
}

/// Reads the file once in 1 MiB chunks (overlapping by a pattern length) looking for the fuse
/// and the markers that give the blob layout.
fn scan(file: &File, len: u64) -> io::Result<Scan> {
    use super::blob::{EXEC_ARGV_EXTENSION_MARKER, MAIN_FORMAT_MARKER};
    const CHUNK: usize = 1 << 20;
    let patterns = [FUSE, EXEC_ARGV_EXTENSION_MARKER, MAIN_FORMAT_MARKER];
    let finders: Vec<memchr::memmem::Finder> =
        patterns.iter().map(memchr::memmem::Finder::new).collect();
    let overlap = patterns.iter().map(|p| p.len()).max().unwrap_or(1) - 1;
    let mut fuses: Vec<u64> = Vec::new();
    let mut found = [false; 3];
    let mut buf = vec![0u8; CHUNK + overlap];
    let mut kept = 0usize; // bytes carried over from the previous chunk
    let mut at = 0u64; // file offset of buf[0]
    while at + (kept as u64) < len {
        let want = CHUNK.min((len - at - kept as u64) as usize);
        file.read_exact_at(&mut buf[kept..kept + want], at + kept as u64)?;
        let window = &buf[..kept + want];
        for (i, f) in finders.iter().enumerate() {
            for m in f.find_iter(window) {
                let abs = at + m as u64;
                if i == 0 {
                    // A match inside the carried-over bytes was already seen.
                    if !fuses.contains(&abs) && fuses.len() < 1000 {
                        fuses.push(abs);
                    }
                } else {
                    found[i] = true;
                }
            }
        }
        let end = kept + want;
        kept = overlap.min(end);
        buf.copy_within(end - kept..end, 0);
        at += (end - kept) as u64;
        if want == 0 {
            break;
        }
    }
    Ok(Scan {
        fuses,
        layout: Layout {
            exec_argv_extension: found[1],
            main_format: found[2],
        },
    })
}

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
