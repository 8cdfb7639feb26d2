//! The mapping plan: where each segment goes and with which protection, as
//! the kernel's ELF loader (`fs/binfmt_elf.c`) would do it.
//!
//! [`plan`] validates every program header and computes the whole-image facts
//! (span, alignment, entry, where the program headers are in memory);
//! [`segment`] turns one `PT_LOAD` into the mappings the runtime makes. Both
//! are pure so that the runtime's loop is a handful of system calls.
//!
//! Addresses here are *unbiased* (as in the file); the runtime adds the load
//! bias (0 for `ET_EXEC`).

use crate::elf::{self, Arch, Ehdr, Phdr, Word, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use crate::error::{Error, Reason, Subject};

pub use linux_raw_sys::general::{PROT_EXEC, PROT_READ, PROT_WRITE};

// `prot_of` moves the bits with shifts; Linux uses these values everywhere.
const _: () = assert!(PROT_READ == 1 && PROT_WRITE == 2 && PROT_EXEC == 4);

/// How the runtime claims the image's address range before mapping segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Map the first `PT_LOAD` from the file over the whole span (one system
    /// call, as the kernel does), at a kernel-chosen address (`ET_DYN`) or at
    /// `span_start` without replacing anything (`ET_EXEC`,
    /// `MAP_FIXED_NOREPLACE`). Gaps are then made `PROT_NONE`.
    FirstSegment,
    /// Reserve `span_len + align - page` bytes `PROT_NONE`, trim to an
    /// `align`-aligned span, then map every segment over it. Used when the
    /// image asks for more than page alignment, or its first segment has no
    /// file data.
    Aligned,
}

/// Facts about the whole image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan<W = u64> {
    /// `ET_EXEC`: load at the addresses in the file.
    pub fixed: bool,
    /// How to claim the span.
    pub reserve: Reserve,
    /// Page-aligned lowest address of any `PT_LOAD`.
    pub span_start: W,
    /// Page-aligned length from `span_start` to the end of the last `PT_LOAD`.
    pub span_len: W,
    /// Alignment of the load address (a power of two, at least a page).
    pub align: W,
    /// File offset (page-aligned) and protection of the first `PT_LOAD`.
    pub first_offset: W,
    /// Protection the first mapping is made with.
    pub first_prot: u32,
    /// How long the file must be: the end of the last byte any `PT_LOAD`
    /// maps from it. Checked against `file_size` when that is known, else by
    /// the loader after mapping (before anything runs).
    pub file_extent: u64,
    /// Entry point.
    pub entry: W,
    /// Address of the program header table in memory (for `AT_PHDR`).
    pub phdr: W,
    /// Number of program headers (for `AT_PHNUM`).
    pub phnum: u16,
    /// Size of a program header (for `AT_PHENT`).
    pub phent: u16,
    /// One past the index of the last `PT_LOAD`: the loader's walk stops
    /// there (the headers after it, `PT_DYNAMIC`, `PT_GNU_STACK`, notes,
    /// map nothing).
    pub loads_end: u16,
}

/// The mappings for one `PT_LOAD`.
///
/// File pages are mapped from the file; the rest of the segment is
/// anonymous (zero) memory. The bss of a segment usually begins inside its
/// last file page: that page is *not* mapped from the file (whose bytes past
/// `p_filesz` are whatever follows in the file) but made anonymous, and its
/// `tail` bytes of file data are read into it with `pread`. The kernel maps
/// the page and clears the rest instead; reading is cheaper than clearing in
/// user space, and leaves the rest of the page zero as glibc's ld.so expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<W = u64> {
    /// First page of the segment.
    pub start: W,
    /// End of the file-backed pages (`start` when there are none).
    pub file_end: W,
    /// Page-aligned file offset mapped at `start`.
    pub offset: W,
    /// Bytes of file data to read into the first anonymous page (at
    /// `file_end`, from file offset `offset + (file_end - start)`); 0: none.
    pub tail: W,
    /// End of the segment: anonymous zero pages fill `file_end..end`.
    pub end: W,
    /// Protection (`PROT_*`), of the file and the anonymous pages alike
    /// (a segment with a tail to read in is writable).
    pub prot: u32,
}

fn ph_err(i: u16, reason: Reason) -> Error {
    Error::new(Subject::ProgramHeader(i), reason)
}

/// `PF_*` to `PROT_*` (R 4→1, W 2→2, X 1→4: the three bits reversed), by
/// a table of eight nibbles in one constant: no branches, four instructions.
pub fn prot_of(flags: u32) -> u32 {
    (0x7351_6240 >> ((flags & (PF_R | PF_W | PF_X)) * 4)) & 7
}

fn page_down<W: Word>(x: W, page: W) -> W {
    x & !(page - W::ONE)
}

/// The mappings for one `PT_LOAD` that [`plan`] has accepted (it checked
/// that none of these sums overflows, so they wrap nowhere).
#[inline(always)]
pub fn segment<W: Word>(ph: &Phdr<W>, page: W) -> Segment<W> {
    let mask = !(page - W::ONE);
    let start = ph.p_vaddr & mask;
    let offset = ph.p_offset & mask;
    let data_end = ph.p_vaddr.wrapping_add(ph.p_filesz);
    let end = ph.p_vaddr.wrapping_add(ph.p_memsz).wrapping_add(page - W::ONE) & mask;
    let (file_end, tail) = if ph.p_filesz == W::ZERO {
        (start, W::ZERO)
    } else if ph.p_memsz > ph.p_filesz && data_end & !mask != W::ZERO && ph.p_flags & PF_W != 0 {
        // bss starts inside the last file page: read that page's data in.
        // (Only for writable segments: the kernel's padzero() fails, and is
        // ignored, on a read-only page, which keeps the file's bytes.)
        let full = data_end & mask;
        (full, data_end - full)
    } else {
        // No bss (the last page keeps the file's bytes, as with the kernel),
        // or it starts on a page boundary.
        (data_end.wrapping_add(page - W::ONE) & mask, W::ZERO)
    };
    Segment {
        start,
        file_end,
        offset,
        tail,
        end,
        prot: prot_of(ph.p_flags),
    }
}

/// The kernel's checks of one `PT_LOAD` (number `i`): its page-aligned end
/// in memory and the end of its data in the file.
#[inline(always)]
fn check_load<A: Arch>(
    i: u16,
    ph: &Phdr<A::Word>,
    page: A::Word,
    limit: A::Word,
    file_size: u64,
) -> Result<(A::Word, u64), Error> {
    if ph.p_filesz > ph.p_memsz {
        return Err(ph_err(i, Reason::FileszMemsz));
    }
    if ph.p_offset & (page - A::Word::ONE) != ph.p_vaddr & (page - A::Word::ONE) {
        return Err(ph_err(i, Reason::Congruence));
    }
    let file_end = match ph.p_offset.checked_add(ph.p_filesz).map(Word::to_u64) {
        Some(end) if end <= file_size => end,
        Some(_) => return Err(ph_err(i, Reason::PastEof)),
        None => return Err(ph_err(i, Reason::OffsetOverflow)),
    };
    // (`limit` is page-aligned: the end rounded up is within it exactly when
    // the end is, and rounding it up cannot wrap.)
    let end = match ph.p_vaddr.checked_add(ph.p_memsz) {
        Some(end) if end <= limit => page_down(end.wrapping_add(page - A::Word::ONE), page),
        _ => return Err(ph_err(i, Reason::AddrOverflow)),
    };
    if ph.p_flags & PF_W != 0 && ph.p_flags & PF_X != 0 {
        return Err(ph_err(i, Reason::WriteExec));
    }
    Ok((end, file_end))
}

/// `p_align` if it is a power of two (the kernel ignores any other), else
/// `align`. Rare (most images ask for page alignment), and out of line so
/// that the compiler keeps the common case a compare and a branch.
#[cold]
fn larger_align<W: Word>(align: W, p_align: W) -> W {
    if p_align.is_power_of_two() {
        p_align
    } else {
        align
    }
}

/// Validate the program headers in `table` (for the already-checked `ehdr`,
/// in a file of `file_size` bytes — `u64::MAX` if not known yet — with
/// `page`-byte pages, for architecture `A`) and plan the load.
pub fn plan<A: Arch>(ehdr: &Ehdr, table: &[u8], file_size: u64, page: u64) -> Result<Plan<A::Word>, Error> {
    let target = A::TARGET;
    if page == 0 || !page.is_power_of_two() || page > 1 << 30 {
        return Err(Error::new(Subject::Image, Reason::PageSize));
    }
    let page = A::Word::from_u64(page);
    // Page-aligned: no page-aligned address above it is allowed either.
    let limit = page_down(A::Word::from_u64(target.addr_limit), page);
    let mut span_start = A::Word::ZERO;
    let mut prev_end = A::Word::ZERO; // page-aligned end of the previous PT_LOAD
    let mut align = page;
    let mut first: Option<Phdr<A::Word>> = None;
    let mut file_extent = 0u64;
    let mut pt_phdr: Option<A::Word> = None;
    let mut mapped_phdr: Option<A::Word> = None;
    let mut entry_ok = false;
    let mut loads_end = 0u16;
    let table_len = ehdr.phdr_table_len();

    for i in 0..ehdr.phnum {
        match elf::phdr_type::<A>(table, i) {
            PT_LOAD => {}
            PT_INTERP => return Err(ph_err(i, Reason::Interp)),
            PT_PHDR => {
                pt_phdr = Some(elf::phdr::<A>(table, i).p_vaddr);
                continue;
            }
            _ => continue,
        }
        let ph = elf::phdr::<A>(table, i);
        let (end, file_end) = check_load::<A>(i, &ph, page, limit, file_size)?;
        file_extent = file_extent.max(file_end);
        let start = page_down(ph.p_vaddr, page);
        // (prev_end is 0 before the first PT_LOAD: nothing is below it.)
        if start < prev_end {
            return Err(ph_err(i, Reason::Overlap));
        }
        if ph.p_align > align {
            align = larger_align(align, ph.p_align);
        }
        if first.is_none() {
            span_start = start;
            first = Some(ph);
        }
        // The PT_LOAD whose file data holds the program header table maps
        // it (unless PT_PHDR says where, which wins whatever its position).
        let (offset, vaddr) = (ph.p_offset.to_u64(), ph.p_vaddr.to_u64());
        if mapped_phdr.is_none() && offset <= ehdr.phoff && ehdr.phoff + table_len <= offset + ph.p_filesz.to_u64() {
            mapped_phdr = Some(A::Word::from_u64(vaddr + (ehdr.phoff - offset)));
        }
        if ph.p_flags & PF_X != 0 && vaddr <= ehdr.entry && ehdr.entry < vaddr + ph.p_memsz.to_u64() {
            entry_ok = true;
        }
        prev_end = end;
        loads_end = i + 1;
    }
    let first = first.ok_or(Error::new(Subject::Image, Reason::NoLoad))?;
    let scan = Scan {
        span_start,
        prev_end,
        align,
        first,
        file_extent,
        phdr: pt_phdr.or(mapped_phdr),
        entry_ok,
        loads_end,
    };
    finish::<A>(ehdr, page, limit, scan)
}

/// What one pass over the program headers found.
struct Scan<W> {
    span_start: W,
    /// Page-aligned end of the last `PT_LOAD`.
    prev_end: W,
    align: W,
    first: Phdr<W>,
    file_extent: u64,
    /// Where the program headers are in memory (`PT_PHDR`, else the
    /// `PT_LOAD` that maps them).
    phdr: Option<W>,
    entry_ok: bool,
    loads_end: u16,
}

/// The image-wide checks, then the plan.
#[inline(always)]
fn finish<A: Arch>(ehdr: &Ehdr, page: A::Word, limit: A::Word, scan: Scan<A::Word>) -> Result<Plan<A::Word>, Error> {
    let Scan {
        span_start,
        prev_end,
        mut align,
        first,
        file_extent,
        phdr,
        entry_ok,
        loads_end,
    } = scan;
    let image_err = |reason| Error::new(Subject::Image, reason);
    let fixed = ehdr.e_type == elf::ET_EXEC;
    if fixed {
        // The kernel ignores p_align for fixed-address images.
        align = page;
    }
    let span_len = prev_end - span_start;
    if fixed && span_start == A::Word::ZERO {
        return Err(image_err(Reason::PageZero));
    }
    if !fixed && span_len.checked_add(align).is_none_or(|n| n > limit) {
        return Err(image_err(Reason::SpanTooBig));
    }
    let phdr = phdr.ok_or(image_err(Reason::PhdrsUnmapped))?;
    if !entry_ok {
        return Err(image_err(Reason::EntryOutside));
    }
    let first_seg = segment(&first, page);
    let reserve = if first_seg.file_end > first_seg.start && (fixed || align == page) {
        Reserve::FirstSegment
    } else {
        Reserve::Aligned
    };
    Ok(Plan {
        fixed,
        reserve,
        span_start,
        span_len,
        align,
        first_offset: first_seg.offset,
        first_prot: first_seg.prot,
        file_extent,
        entry: A::Word::from_u64(ehdr.entry),
        phdr,
        phnum: ehdr.phnum,
        phent: ehdr.phentsize,
        loads_end,
    })
}

#[cfg(test)]
mod tests;
