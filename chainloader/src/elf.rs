//! Reading ELF file and program headers from bytes, with the kernel's checks.
//!
//! All fields are read little-endian (every architecture the chainloader
//! supports is little-endian; a big-endian image is rejected first). Both
//! classes are decoded so that the host's unit tests can exercise the i386
//! rules too; the program only accepts its own [`Arch::TARGET`].

use crate::error::{Error, Reason, Subject};
pub use crate::machine::{Arch, Target, Word};

/// `e_type` of a relocatable object.
pub const ET_REL: u16 = 1;
/// `e_type` of a fixed-address executable.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a position-independent image (ld.so, static-pie).
pub const ET_DYN: u16 = 3;
/// `e_type` of a core dump.
pub const ET_CORE: u16 = 4;

/// Loadable segment.
pub const PT_LOAD: u32 = 1;
/// Dynamic linking information.
pub const PT_DYNAMIC: u32 = 2;
/// Path of the program interpreter.
pub const PT_INTERP: u32 = 3;
/// The program header table itself.
pub const PT_PHDR: u32 = 6;
/// Stack executability.
pub const PT_GNU_STACK: u32 = 0x6474_e551;

/// Segment is executable.
pub const PF_X: u32 = 1;
/// Segment is writable.
pub const PF_W: u32 = 2;
/// Segment is readable.
pub const PF_R: u32 = 4;

/// The kernel refuses program header tables larger than this.
pub const MAX_PHDR_TABLE: u64 = 65536;

/// The fields of the ELF file header the loader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ehdr {
    /// `ET_EXEC` or `ET_DYN`.
    pub e_type: u16,
    /// Entry point (unrelocated).
    pub entry: u64,
    /// File offset of the program header table.
    pub phoff: u64,
    /// Number of program headers.
    pub phnum: u16,
    /// Size of one program header.
    pub phentsize: u16,
}

impl Ehdr {
    /// Byte length of the program header table.
    pub fn phdr_table_len(&self) -> u64 {
        u64::from(self.phnum) * u64::from(self.phentsize)
    }
}

/// One program header, in the image's address width `W`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Phdr<W = u64> {
    /// Segment type (`PT_*`).
    pub p_type: u32,
    /// Permissions (`PF_*`).
    pub p_flags: u32,
    /// File offset of the segment's data.
    pub p_offset: W,
    /// Virtual address (unrelocated).
    pub p_vaddr: W,
    /// Bytes of the segment present in the file.
    pub p_filesz: W,
    /// Bytes of the segment in memory.
    pub p_memsz: W,
    /// Alignment.
    pub p_align: W,
}

/// Little-endian field readers. Out-of-range reads give 0; callers bound
/// the slice once so that these checks fold away.
#[inline(always)]
fn le<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(s) = b.get(off..off + N) {
        out.copy_from_slice(s);
    }
    out
}

#[inline(always)]
fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(le(b, off))
}

#[inline(always)]
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(le(b, off))
}

#[inline(always)]
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(le(b, off))
}

fn header(reason: Reason) -> Error {
    Error::new(Subject::ElfHeader, reason)
}

/// Check the file header in `bytes` (the first bytes of a file of
/// `file_size` bytes) against architecture `A`, in the kernel's order, plus the
/// byte-order and class checks the kernel leaves to its per-arch macros.
pub fn parse_ehdr<A: Arch>(bytes: &[u8], file_size: u64) -> Result<Ehdr, Error> {
    let target = A::TARGET;
    if file_size == 0 {
        return Err(Error::new(Subject::Image, Reason::EmptyFile));
    }
    if bytes.len() < 4 || bytes[..4] != *b"\x7fELF" {
        return Err(header(Reason::BadMagic));
    }
    let class64 = match bytes.get(4) {
        Some(1) => false,
        Some(2) => true,
        Some(_) => return Err(header(Reason::BadClass)),
        None => return Err(header(Reason::Truncated)),
    };
    if class64 != target.class64 {
        return Err(header(if class64 { Reason::Class64 } else { Reason::Class32 }));
    }
    match bytes.get(5) {
        Some(1) => {}
        Some(2) => return Err(header(Reason::BigEndian)),
        Some(_) => return Err(header(Reason::BadData)),
        None => return Err(header(Reason::Truncated)),
    }
    if bytes.len() < target.ehdr_size() || file_size < target.ehdr_size() as u64 {
        return Err(header(Reason::Truncated));
    }
    let e_type = u16_at(bytes, 16);
    match e_type {
        ET_EXEC | ET_DYN => {}
        ET_REL => return Err(header(Reason::EtRel)),
        ET_CORE => return Err(header(Reason::EtCore)),
        _ => return Err(header(Reason::BadType)),
    }
    if u16_at(bytes, 18) != target.machine {
        return Err(header(Reason::Machine));
    }
    let (entry, phoff, phentsize, phnum) = if class64 {
        (
            u64_at(bytes, 24),
            u64_at(bytes, 32),
            u16_at(bytes, 54),
            u16_at(bytes, 56),
        )
    } else {
        (
            u64::from(u32_at(bytes, 24)),
            u64::from(u32_at(bytes, 28)),
            u16_at(bytes, 42),
            u16_at(bytes, 44),
        )
    };
    if usize::from(phentsize) != target.phdr_size() {
        return Err(header(Reason::Phentsize));
    }
    if phnum == 0 {
        return Err(header(Reason::NoPhdrs));
    }
    let ehdr = Ehdr {
        e_type,
        entry,
        phoff,
        phnum,
        phentsize,
    };
    if ehdr.phdr_table_len() > MAX_PHDR_TABLE {
        return Err(header(Reason::TooManyPhdrs));
    }
    match phoff.checked_add(ehdr.phdr_table_len()) {
        Some(end) if end <= file_size => Ok(ehdr),
        _ => Err(header(Reason::PhdrsOutside)),
    }
}

/// The `p_type` of program header `index` (0 if out of range): a cheap
/// look before decoding the whole header.
#[inline(always)]
pub fn phdr_type<A: Arch>(table: &[u8], index: u16) -> u32 {
    u32_at(table, usize::from(index) * A::TARGET.phdr_size())
}

/// Decode program header `index` from the program header table `table`.
/// Out-of-range reads decode as zero (the caller sized `table` from the
/// validated header, so this never happens in practice).
#[inline(always)]
pub fn phdr<A: Arch>(table: &[u8], index: u16) -> Phdr<A::Word> {
    let target = A::TARGET;
    let size = target.phdr_size();
    let off = usize::from(index) * size;
    // One bounds check for the whole entry; the field reads below are then
    // provably in range.
    let Some(e) = table.get(off..off + size) else {
        return Phdr::default();
    };
    let w = |x: u64| A::Word::from_u64(x);
    if target.class64 {
        Phdr {
            p_type: u32_at(e, 0),
            p_flags: u32_at(e, 4),
            p_offset: w(u64_at(e, 8)),
            p_vaddr: w(u64_at(e, 16)),
            p_filesz: w(u64_at(e, 32)),
            p_memsz: w(u64_at(e, 40)),
            p_align: w(u64_at(e, 48)),
        }
    } else {
        Phdr {
            p_type: u32_at(e, 0),
            p_offset: w(u32_at(e, 4).into()),
            p_vaddr: w(u32_at(e, 8).into()),
            p_filesz: w(u32_at(e, 16).into()),
            p_memsz: w(u32_at(e, 20).into()),
            p_flags: u32_at(e, 24),
            p_align: w(u32_at(e, 28).into()),
        }
    }
}
