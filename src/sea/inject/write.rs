//! Writing the planned executable: the input copied, headers patched, the region appended.

use super::*;

/// Writes `plan` to `out` with mode 0755; returns its size.
pub(super) fn write(input: &Input, plan: &Plan, out: &Path) -> Result<u64, SeaError> {
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
pub(super) struct Out<'a> {
    pub(super) out: File,
    pub(super) src: &'a File,
    pub(super) pos: u64,
    pub(super) fuse_digit: u64,
    pub(super) flipped: bool,
}

impl Out<'_> {
    pub(super) fn write_plan(&mut self, plan: &Plan) -> io::Result<()> {
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

    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.pos += data.len() as u64;
        Ok(())
    }

    /// Moves to `at`, leaving zeros (a hole) in between.
    pub(super) fn pad_to(&mut self, at: u64) -> io::Result<()> {
        if at < self.pos {
            return Err(io::Error::other("overlapping output regions"));
        }
        self.out.seek(SeekFrom::Start(at))?;
        self.pos = at;
        Ok(())
    }

    pub(super) fn copy_plain(&mut self, range: Range<u64>) -> io::Result<()> {
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

    pub(super) fn copy(&mut self, range: Range<u64>) -> io::Result<()> {
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
pub(super) struct Scan {
    /// Offsets of the fuse (counted up to 1000: more than one is already an error).
    pub(super) fuses: Vec<u64>,
    pub(super) layout: Layout,
}

/// Reads the file once in 1 MiB chunks (overlapping by a pattern length) looking for the fuse
/// and the markers that give the blob layout.
pub(super) fn scan(file: &File, len: u64) -> io::Result<Scan> {
    use crate::sea::blob::{EXEC_ARGV_EXTENSION_MARKER, MAIN_FORMAT_MARKER};
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
