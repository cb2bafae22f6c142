//! Where the blob goes: the new program-header table, the PT_LOAD and the PT_NOTE past
//! every segment, and the sections that move with them.

use super::*;

/// The output's layout.
pub(super) struct Plan {
    /// The ELF header with e_phoff, e_phnum and the section header fields rewritten.
    pub(super) ehdr: Vec<u8>,
    pub(super) sections: Sections,
    /// None: only strip (no blob, the fuse left as it is).
    pub(super) region: Option<Region>,
}

/// Loaded bytes stay where they are; kept non-loaded sections follow them, closing the gaps
/// dropped ones leave; then the new section header table.
pub(super) struct Sections {
    /// Everything before this is copied as it is: headers, segments, allocated sections.
    pub(super) loaded_end: u64,
    pub(super) moved: Vec<Move>,
    pub(super) headers: Vec<Shdr>,
    /// The new section header table's offset; 0 when there is none.
    pub(super) shoff: u64,
    pub(super) shstrndx: u16,
    /// Where the section data and table end.
    pub(super) end: u64,
}

/// A kept non-loaded section: its bytes in the input, and their new offset.
pub(super) struct Move {
    pub(super) from: Range<u64>,
    pub(super) to: u64,
}

/// The appended region, page-aligned past every segment: the new program header table (the
/// old entries, PT_PHDR re-pointed, + one read-only PT_LOAD over the region + one PT_NOTE),
/// then the note.
pub(super) struct Region {
    pub(super) off: u64,
    pub(super) phdrs: Vec<Phdr>,
    pub(super) note_off: u64,
    pub(super) note: Note,
}

/// The `NODE_SEA_BLOB` note: namesz, descsz, type 0, the name and the blob, each padded to 4.
pub(super) struct Note {
    pub(super) blob: Vec<u8>,
    /// The blob's length, checked to fit the note's size field.
    pub(super) descsz: u32,
}

impl Plan {
    pub(super) fn new(input: &Input, blob: Option<&Blob>) -> Result<Plan, SeaError> {
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
    pub(super) fn dropped(&self, input: &Input) -> u64 {
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
    pub(super) fn plan(input: &Input) -> Result<Sections, SeaError> {
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
pub(super) fn new_indices(input: &Input) -> Vec<Option<u32>> {
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
pub(super) fn renumbered(s: &Shdr, index: &[Option<u32>]) -> Shdr {
    let remap = |i: u32| index.get(i as usize).copied().flatten().unwrap_or(0);
    let mut ns = *s;
    ns.link = remap(s.link);
    if s.info_is_index() {
        ns.info = remap(s.info);
    }
    ns
}

/// The end of what the loader maps (and of every allocated section): copied as it is.
pub(super) fn loaded_end(input: &Input) -> Result<u64, SeaError> {
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
pub(super) fn place(
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
pub(super) fn too_big(input: &Input) -> SeaError {
    input.unsupported("its sections add up to offsets past 2^64 (malformed headers)")
}

impl Region {
    /// The region placed past `after` and every segment, with the same vaddr - offset as the
    /// first PT_LOAD (kernels before 5.18 compute AT_PHDR as load address + e_phoff).
    pub(super) fn plan(input: &Input, after: u64, blob: &Blob) -> Result<Region, SeaError> {
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
pub(super) fn region_start(input: &Input, after: u64) -> Result<(u64, u64), SeaError> {
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
pub(super) fn program_headers(
    input: &Input,
    off: u64,
    vaddr: u64,
    note_off: u64,
    note_len: u64,
) -> Vec<Phdr> {
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
pub(super) fn desc_size(len: usize) -> Result<u32, SeaError> {
    u32::try_from(len).map_err(|_| SeaError::BlobTooLarge(len as u64))
}

/// Zeros that pad `len` bytes to a multiple of 4.
pub(super) fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

impl Note {
    pub(super) fn new(blob: Vec<u8>) -> Result<Note, SeaError> {
        let descsz = desc_size(blob.len())?;
        Ok(Note { blob, descsz })
    }

    pub(super) fn name_pad() -> usize {
        pad4(NOTE_NAME.len())
    }

    pub(super) fn blob_pad(&self) -> usize {
        pad4(self.blob.len())
    }

    pub(super) fn len(&self) -> u64 {
        (12 + NOTE_NAME.len() + Note::name_pad() + self.blob.len() + self.blob_pad()) as u64
    }

    /// The note header and name, up to the blob.
    pub(super) fn head(&self) -> Vec<u8> {
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
