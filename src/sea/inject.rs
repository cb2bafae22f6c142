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
//! little-endian records are simpler than a writer crate. The input is memory-mapped, so the
//! process's own memory grows with the blob, not with the ~100 MB binary.

use super::blob::{Blob, Layout};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
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
    // SAFETY: the node binary is a runtime binpack copies from; nothing writes it while it is
    // mapped (a concurrent truncation would be a bug elsewhere and fault loudly).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err(node))?;
    let b: &[u8] = &map;
    if !b.starts_with(b"\x7fELF") {
        return Err(SeaError::NotElf(node.to_path_buf()));
    }
    if b.len() < EHDR || b[4] != 2 || b[5] != 1 {
        return Err(unsupported(
            "only 64-bit little-endian ELF node runtimes (x86-64, arm64) are supported",
        ));
    }
    let machine = u16_at(b, 18);
    if machine != 62 && machine != 183 {
        return Err(unsupported(&format!(
            "ELF machine {machine}: only x86-64 and arm64 node runtimes are supported"
        )));
    }

    // The fuse: exactly once, not yet flipped.
    let fuses: Vec<usize> = memchr::memmem::find_iter(b, FUSE).take(3).collect();
    let fuse_digit = match fuses.as_slice() {
        [] => return Err(SeaError::FuseMissing(node.to_path_buf())),
        [one] => one + FUSE.len(),
        more => return Err(SeaError::FuseDoubled(node.to_path_buf(), more.len())),
    };
    match b.get(fuse_digit) {
        Some(b'0') => {}
        Some(b'1') => return Err(SeaError::FuseFlipped(node.to_path_buf())),
        _ => return Err(SeaError::FuseMissing(node.to_path_buf())),
    }
    let layout = Layout::detect(b);

    let phoff = u64_at(b, 32) as usize;
    let shoff = u64_at(b, 40) as usize;
    let phnum = u16_at(b, 56) as usize;
    let shnum = u16_at(b, 60) as usize;
    let shstrndx = u16_at(b, 62) as usize;
    if u16_at(b, 54) as usize != PHDR || phoff.checked_add(phnum * PHDR).is_none_or(|e| e > b.len())
    {
        return Err(unsupported("truncated or malformed program headers"));
    }
    let phdrs: Vec<Phdr> = (0..phnum)
        .map(|i| Phdr::read(&b[phoff + i * PHDR..]))
        .collect();
    let shdrs: Vec<Shdr> = if shoff == 0 {
        vec![]
    } else {
        if shnum == 0 || u16_at(b, 58) as usize != SHDR {
            return Err(unsupported("extended section numbering is not supported"));
        }
        if shoff.checked_add(shnum * SHDR).is_none_or(|e| e > b.len()) {
            return Err(unsupported("truncated or malformed section headers"));
        }
        (0..shnum)
            .map(|i| Shdr::read(&b[shoff + i * SHDR..]))
            .collect()
    };
    let loads: Vec<&Phdr> = phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let (Some(first), Some(last_load_idx)) = (
        loads.iter().min_by_key(|p| p.vaddr),
        phdrs.iter().rposition(|p| p.p_type == PT_LOAD),
    ) else {
        return Err(unsupported("no loadable segment"));
    };
    let len = b.len() as u64;
    if phdrs
        .iter()
        .any(|p| p.offset.saturating_add(p.filesz) > len)
    {
        return Err(unsupported(
            "a segment extends past the end of the file (truncated?)",
        ));
    }

    // Which sections stay, and where the non-loaded ones go.
    let name_of = |s: &Shdr| -> &[u8] {
        let Some(strtab) = shdrs.get(shstrndx) else {
            return b"";
        };
        let start = (strtab.offset + u64::from(s.name)) as usize;
        let end = (strtab.offset + strtab.size) as usize;
        b.get(start..end.min(b.len()))
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
    let mut loaded_end = (EHDR as u64).max((phoff + phnum * PHDR) as u64);
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
        if let Some(r) = s.file_range().filter(|r| r.start >= loaded_end) {
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
    let vaddr = off + delta;
    let new_phnum = phnum + 2;
    if new_phnum > 0xffff {
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

    let mut head = b[..EHDR].to_vec();
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
        w: BufWriter::with_capacity(1 << 20, f),
        pos: 0,
        fuse_digit: fuse_digit as u64,
        flipped: false,
    };
    let write = |w: &mut Out, data: &[u8]| w.write(data).map_err(io_err(out));
    write(&mut w, &head)?;
    w.copy(b, EHDR as u64..loaded_end).map_err(io_err(out))?;
    for (r, at) in &moved {
        w.pad_to(*at).map_err(io_err(out))?;
        w.copy(b, r.clone()).map_err(io_err(out))?;
    }
    if !new_shdrs.is_empty() {
        w.pad_to(new_shoff).map_err(io_err(out))?;
        let mut t = Vec::with_capacity(new_shdrs.len() * SHDR);
        for s in &new_shdrs {
            s.write(&mut t);
        }
        write(&mut w, &t)?;
    }
    w.pad_to(off).map_err(io_err(out))?;
    write(&mut w, &table)?;
    w.pad_to(note_off).map_err(io_err(out))?;
    let mut nhdr = Vec::with_capacity(12 + NOTE_NAME.len() + name_pad);
    nhdr.extend_from_slice(&(NOTE_NAME.len() as u32).to_le_bytes());
    nhdr.extend_from_slice(&(blob_bytes.len() as u32).to_le_bytes());
    nhdr.extend_from_slice(&0u32.to_le_bytes());
    nhdr.extend_from_slice(NOTE_NAME);
    nhdr.resize(nhdr.len() + name_pad, 0);
    write(&mut w, &nhdr)?;
    write(&mut w, &blob_bytes)?;
    write(&mut w, &vec![0u8; blob_pad])?;
    if !w.flipped {
        return Err(unsupported(
            "the SEA fuse is not in a loaded part of the file",
        ));
    }
    let output_size = w.pos;
    w.w.flush().map_err(io_err(out))?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755)).map_err(io_err(out))?;
    let copied = loaded_end + moved.iter().map(|(r, _)| r.end - r.start).sum::<u64>();
    Ok(Stats {
        layout,
        input_size: len,
        dropped: len.saturating_sub(copied + (shnum * SHDR) as u64),
        output_size,
    })
}

/// The output stream: tracks its position and flips the fuse byte as it goes by.
struct Out {
    w: BufWriter<File>,
    pos: u64,
    fuse_digit: u64,
    flipped: bool,
}

impl Out {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.w.write_all(data)?;
        self.pos += data.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, at: u64) -> io::Result<()> {
        debug_assert!(at >= self.pos);
        let zeros = vec![0u8; (at - self.pos) as usize];
        self.write(&zeros)
    }

    /// Copies `src[range]`, writing `1` over the fuse's `0` if it lies in the range.
    fn copy(&mut self, src: &[u8], range: Range<u64>) -> io::Result<()> {
        let (start, end) = (range.start as usize, range.end as usize);
        if range.contains(&self.fuse_digit) {
            let at = self.fuse_digit as usize;
            self.write(&src[start..at])?;
            self.write(b"1")?;
            self.write(&src[at + 1..end])?;
            self.flipped = true;
            Ok(())
        } else {
            self.write(&src[start..end])
        }
    }
}
