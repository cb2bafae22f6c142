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
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The sentinel node checks to know it carries a blob: `:0` in a stock binary, `:1` in a SEA.
pub const FUSE: &[u8] = b"NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:";
const NOTE_NAME: &[u8] = b"NODE_SEA_BLOB\0";

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PF_R: u32 = 4;
const SHT_SYMTAB: u32 = 2;
const SHT_RELA: u32 = 4;
const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHF_ALLOC: u64 = 2;
const SHF_INFO_LINK: u64 = 0x40;
const EHDR: usize = 64;
const PHDR: usize = 56;
const SHDR: usize = 64;

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
        (self.sh_type != SHT_NOBITS && self.size > 0).then(|| self.offset..self.offset + self.size)
    }
}

fn align_up(x: u64, a: u64) -> u64 {
    if a <= 1 {
        x
    } else {
        x.div_ceil(a) * a
    }
}

/// Is this section one `strip` removes: the symbol table, its string table, debug info?
fn droppable(name: &[u8], s: &Shdr) -> bool {
    s.flags & SHF_ALLOC == 0
        && (s.sh_type == SHT_SYMTAB
            || name.starts_with(b".debug")
            || name.starts_with(b".zdebug")
            || name == b".strtab")
}

/// Writes `out`: `node` with `blob` injected, its fuse flipped, its symbols and debug info
/// dropped. `out` gets mode 0755.
pub fn make_executable(node: &Path, out: &Path, blob: &Blob) -> Result<Stats, SeaError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SeaError::Io { path, source }
    };
    let unsupported = |why: &str| SeaError::Unsupported {
        path: node.to_path_buf(),
        why: why.to_string(),
    };
    let file = File::open(node).map_err(io_err(node))?;
    let len = file.metadata().map_err(io_err(node))?.len();
    let read_at = |at: u64, n: usize| -> Result<Vec<u8>, SeaError> {
        match at.checked_add(n as u64) {
            Some(end) if end <= len => {}
            _ => return Err(unsupported("truncated or malformed ELF headers")),
        }
        let mut v = vec![0u8; n];
        file.read_exact_at(&mut v, at).map_err(io_err(node))?;
        Ok(v)
    };
    let ident = read_at(0, (len as usize).min(EHDR))?;
    if !ident.starts_with(b"\x7fELF") {
        return Err(SeaError::NotElf(node.to_path_buf()));
    }
    if ident.len() < EHDR || ident[4] != 2 || ident[5] != 1 {
        return Err(unsupported(
            "only 64-bit little-endian ELF node runtimes (x86-64, arm64) are supported",
        ));
    }
    let b = ident.as_slice();
    let machine = u16_at(b, 18);
    if machine != 62 && machine != 183 {
        return Err(unsupported(&format!(
            "ELF machine {machine}: only x86-64 and arm64 node runtimes are supported"
        )));
    }

    let phoff = u64_at(b, 32);
    let shoff = u64_at(b, 40);
    let phnum = u16_at(b, 56) as usize;
    let shnum = u16_at(b, 60) as usize;
    let shstrndx = u16_at(b, 62) as usize;
    if u16_at(b, 54) as usize != PHDR {
        return Err(unsupported("malformed program headers"));
    }
    let phdrs: Vec<Phdr> = read_at(phoff, phnum * PHDR)?
        .chunks(PHDR)
        .map(Phdr::read)
        .collect();
    let shdrs: Vec<Shdr> = if shoff == 0 {
        vec![]
    } else {
        if shnum == 0 || u16_at(b, 58) as usize != SHDR {
            return Err(unsupported("extended section numbering is not supported"));
        }
        read_at(shoff, shnum * SHDR)?
            .chunks(SHDR)
            .map(Shdr::read)
            .collect()
    };
    if !shdrs.is_empty() && shstrndx >= shdrs.len() {
        return Err(unsupported("the section name table index is out of range"));
    }
    for sh in &shdrs {
        if sh.sh_type != SHT_NOBITS && sh.offset.checked_add(sh.size).is_none_or(|e| e > len) {
            return Err(unsupported(
                "a section extends past the end of the file (truncated?)",
            ));
        }
    }
    let shstrtab = match shdrs.get(shstrndx) {
        Some(s) if s.sh_type != SHT_NOBITS => read_at(s.offset, s.size as usize)?,
        _ => vec![],
    };
    let loads: Vec<&Phdr> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let (Some(first), Some(last_load_idx)) = (
        loads.iter().min_by_key(|p| p.vaddr),
        phdrs.iter().rposition(|p| p.p_type == PT_LOAD),
    ) else {
        return Err(unsupported("no loadable segment"));
    };
    if phdrs.iter().any(|p| {
        p.offset.checked_add(p.filesz).is_none_or(|e| e > len)
            || p.vaddr.checked_add(p.memsz).is_none()
    }) {
        return Err(unsupported(
            "a segment extends past the end of the file (truncated?)",
        ));
    }

    // The fuse: exactly once, not yet flipped.
    let scan = scan(&file, len).map_err(io_err(node))?;
    let fuse_digit = match scan.fuses.as_slice() {
        [] => return Err(SeaError::FuseMissing(node.to_path_buf())),
        [one] => one + FUSE.len() as u64,
        more => return Err(SeaError::FuseDoubled(node.to_path_buf(), more.len())),
    };
    match read_at(fuse_digit, 1).ok().as_deref() {
        Some(b"0") => {}
        Some(b"1") => return Err(SeaError::FuseFlipped(node.to_path_buf())),
        _ => return Err(SeaError::FuseMissing(node.to_path_buf())),
    }
    let layout = scan.layout;

    // Which sections stay, and where the non-loaded ones go.
    let name_of = |s: &Shdr| -> &[u8] {
        shstrtab
            .get(s.name as usize..)
            .map(|n| &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())])
            .unwrap_or(b"")
    };
    let keep: Vec<bool> = shdrs
        .iter()
        .enumerate()
        .map(|(i, s)| i == 0 || i == shstrndx || !droppable(name_of(s), s))
        .collect();
    let mut new_index = vec![0u32; shdrs.len()];
    let mut n = 0u32;
    for (i, k) in keep.iter().enumerate() {
        if *k {
            new_index[i] = n;
            n += 1;
        }
    }
    // Everything the loader maps (and every allocated section) is copied as it is.
    let mut loaded_end = (EHDR as u64).max(phoff + (phnum * PHDR) as u64);
    for p in &phdrs {
        loaded_end = loaded_end.max(p.offset + p.filesz);
    }
    for s in shdrs.iter().filter(|s| s.flags & SHF_ALLOC != 0) {
        if let Some(r) = s.file_range() {
            loaded_end = loaded_end.max(r.end);
        }
    }
    if loaded_end > len {
        return Err(unsupported(
            "a section extends past the end of the file (truncated?)",
        ));
    }
    let mut cursor = loaded_end;
    let mut moved: Vec<(Range<u64>, u64)> = Vec::new(); // (source range, new offset)
    let mut new_shdrs: Vec<Shdr> = Vec::new();
    for (i, s) in shdrs.iter().enumerate() {
        if !keep[i] {
            continue;
        }
        let mut ns = *s;
        if let Some(r) = s
            .file_range()
            .filter(|r| r.start < loaded_end && r.end > loaded_end)
        {
            return Err(unsupported(&format!(
                "a non-loaded section spans bytes {}..{}, across the end of the loaded data",
                r.start, r.end
            )));
        }
        if let Some(r) = s.file_range().filter(|r| r.start >= loaded_end) {
            if s.addralign > 1 << 24 {
                return Err(unsupported(
                    "a non-loaded section asks for an alignment above 16 MiB",
                ));
            }
            if r.end > len {
                return Err(unsupported("a section extends past the end of the file"));
            }
            cursor = align_up(cursor, s.addralign);
            ns.offset = cursor;
            moved.push((r.clone(), cursor));
            cursor += r.end - r.start;
        }
        let remap = |idx: u32| -> u32 {
            if (idx as usize) < shdrs.len() && keep[idx as usize] {
                new_index[idx as usize]
            } else {
                0
            }
        };
        ns.link = remap(s.link);
        if s.flags & SHF_INFO_LINK != 0
            || ((s.sh_type == SHT_REL || s.sh_type == SHT_RELA) && s.info != 0)
        {
            ns.info = remap(s.info);
        }
        new_shdrs.push(ns);
    }
    let new_shoff = if new_shdrs.is_empty() {
        0
    } else {
        align_up(cursor, 8)
    };
    if !new_shdrs.is_empty() {
        cursor = new_shoff + (new_shdrs.len() * SHDR) as u64;
    }

    // The appended region: page-aligned, above every segment, with the same vaddr - offset
    // as the first PT_LOAD (kernels before 5.18 compute AT_PHDR as load address + e_phoff).
    let page: u64 = if machine == 183 { 0x10000 } else { 0x1000 };
    let delta = first
        .vaddr
        .checked_sub(first.offset)
        .ok_or_else(|| unsupported("first PT_LOAD maps below its file offset"))?;
    let max_end = loads.iter().map(|p| p.vaddr + p.memsz).max().unwrap_or(0);
    let off = align_up(cursor.max(max_end.saturating_sub(delta)), page);
    if off - cursor > 1 << 30 {
        return Err(unsupported(
            "its segments map more than 1 GiB past the end of the file",
        ));
    }
    let vaddr = off + delta;
    let new_phnum = phnum + 2;
    if new_phnum >= 0xffff {
        return Err(unsupported("too many program headers"));
    }
    let phdr_size = (new_phnum * PHDR) as u64;
    let note_off = off + align_up(phdr_size, 8);
    let blob_bytes = blob.to_bytes(layout);
    let name_pad = align_up(NOTE_NAME.len() as u64, 4) as usize - NOTE_NAME.len();
    let blob_pad = align_up(blob_bytes.len() as u64, 4) as usize - blob_bytes.len();
    let note_len = (12 + NOTE_NAME.len() + name_pad + blob_bytes.len() + blob_pad) as u64;
    let region = (note_off - off) + note_len;

    let mut table = Vec::with_capacity(phdr_size as usize);
    for (i, p) in phdrs.iter().enumerate() {
        if p.p_type == PT_PHDR {
            Phdr {
                offset: off,
                vaddr,
                paddr: vaddr,
                filesz: phdr_size,
                memsz: phdr_size,
                align: 8,
                ..*p
            }
            .write(&mut table);
        } else {
            p.write(&mut table);
        }
        if i == last_load_idx {
            // PT_LOADs stay sorted by address: the new one follows the last.
            Phdr {
                p_type: PT_LOAD,
                flags: PF_R,
                offset: off,
                vaddr,
                paddr: vaddr,
                filesz: region,
                memsz: region,
                align: page,
            }
            .write(&mut table);
        }
    }
    let note_vaddr = vaddr + (note_off - off);
    Phdr {
        p_type: PT_NOTE,
        flags: PF_R,
        offset: note_off,
        vaddr: note_vaddr,
        paddr: note_vaddr,
        filesz: note_len,
        memsz: note_len,
        align: 4,
    }
    .write(&mut table);

    let mut head = ident.clone();
    head[32..40].copy_from_slice(&off.to_le_bytes());
    head[56..58].copy_from_slice(&(new_phnum as u16).to_le_bytes());
    head[40..48].copy_from_slice(&new_shoff.to_le_bytes());
    head[60..62].copy_from_slice(&(new_shdrs.len() as u16).to_le_bytes());
    let new_shstrndx = if shdrs.is_empty() {
        0
    } else {
        new_index[shstrndx] as u16
    };
    head[62..64].copy_from_slice(&new_shstrndx.to_le_bytes());

    let f = File::create(out).map_err(io_err(out))?;
    let mut w = Out {
        out: f,
        src: &file,
        pos: 0,
        fuse_digit,
        flipped: false,
    };
    (|| -> io::Result<()> {
        w.write(&head)?;
        w.copy(EHDR as u64..loaded_end)?;
        for (r, at) in &moved {
            w.pad_to(*at)?;
            w.copy(r.clone())?;
        }
        if !new_shdrs.is_empty() {
            w.pad_to(new_shoff)?;
            let mut t = Vec::with_capacity(new_shdrs.len() * SHDR);
            for s in &new_shdrs {
                s.write(&mut t);
            }
            w.write(&t)?;
        }
        w.pad_to(off)?;
        w.write(&table)?;
        w.pad_to(note_off)?;
        let mut nhdr = Vec::with_capacity(12 + NOTE_NAME.len() + name_pad);
        nhdr.extend_from_slice(&(NOTE_NAME.len() as u32).to_le_bytes());
        nhdr.extend_from_slice(&(blob_bytes.len() as u32).to_le_bytes());
        nhdr.extend_from_slice(&0u32.to_le_bytes());
        nhdr.extend_from_slice(NOTE_NAME);
        nhdr.resize(nhdr.len() + name_pad, 0);
        w.write(&nhdr)?;
        w.write(&blob_bytes)?;
        w.write(&vec![0u8; blob_pad])
    })()
    .map_err(io_err(out))?;
    if !w.flipped {
        return Err(unsupported(
            "the SEA fuse is not in a loaded part of the file",
        ));
    }
    let output_size = w.pos;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).map_err(io_err(out))?;
    let copied = loaded_end + moved.iter().map(|(r, _)| r.end - r.start).sum::<u64>();
    Ok(Stats {
        layout,
        input_size: len,
        dropped: len.saturating_sub(copied + (shnum * SHDR) as u64),
        output_size,
    })
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
