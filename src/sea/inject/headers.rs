//! The ELF64 headers the injector reads and writes, by offset: what goblin parses, but
//! written back byte for byte.

use super::*;

pub(super) const EHDR: usize = 64;
pub(super) const PHDR: usize = 56;
pub(super) const SHDR: usize = 64;
// Offsets of the ELF64 header fields read or rewritten.
pub(super) const E_MACHINE: usize = 18;
pub(super) const E_PHOFF: usize = 32;
pub(super) const E_SHOFF: usize = 40;
pub(super) const E_PHENTSIZE: usize = 54;
pub(super) const E_PHNUM: usize = 56;
pub(super) const E_SHENTSIZE: usize = 58;
pub(super) const E_SHNUM: usize = 60;
pub(super) const E_SHSTRNDX: usize = 62;

#[derive(Clone, Copy, Debug)]
pub(super) struct Phdr {
    pub(super) p_type: u32,
    pub(super) flags: u32,
    pub(super) offset: u64,
    pub(super) vaddr: u64,
    pub(super) paddr: u64,
    pub(super) filesz: u64,
    pub(super) memsz: u64,
    pub(super) align: u64,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Shdr {
    pub(super) name: u32,
    pub(super) sh_type: u32,
    pub(super) flags: u64,
    pub(super) addr: u64,
    pub(super) offset: u64,
    pub(super) size: u64,
    pub(super) link: u32,
    pub(super) info: u32,
    pub(super) addralign: u64,
    pub(super) entsize: u64,
}

pub(super) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
pub(super) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(super) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Phdr {
    pub(super) fn read(b: &[u8]) -> Phdr {
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
    pub(super) fn write(&self, out: &mut Vec<u8>) {
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
    pub(super) fn read(b: &[u8]) -> Shdr {
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
    pub(super) fn write(&self, out: &mut Vec<u8>) {
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
    pub(super) fn file_range(&self) -> Option<Range<u64>> {
        // read_sections refused a range that wraps; saturating keeps this safe on its own.
        (self.sh_type != SHT_NOBITS && self.size > 0)
            .then(|| self.offset..self.offset.saturating_add(self.size))
    }
    pub(super) fn is_alloc(&self) -> bool {
        self.flags & u64::from(SHF_ALLOC) != 0
    }
    /// Whether sh_info holds a section index (to renumber), not a count or a flag.
    pub(super) fn info_is_index(&self) -> bool {
        self.flags & u64::from(SHF_INFO_LINK) != 0
            || ((self.sh_type == SHT_REL || self.sh_type == SHT_RELA) && self.info != 0)
    }
}

/// `x` rounded up to a multiple of `a`; None when that does not fit in 64 bits (hostile
/// headers: a p_memsz near 2^64).
pub(super) fn align_up(x: u64, a: u64) -> Option<u64> {
    if a <= 1 {
        Some(x)
    } else {
        x.checked_next_multiple_of(a)
    }
}

/// Is this section one `strip` removes: the symbol table, its string table, debug info?
pub(super) fn droppable(name: &[u8], s: &Shdr) -> bool {
    !s.is_alloc()
        && (s.sh_type == SHT_SYMTAB
            || name.starts_with(b".debug")
            || name.starts_with(b".zdebug")
            || name == b".strtab")
}
