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

use crate::elf::{self, Arch, Ehdr, Phdr, PF_R, PF_W, PF_X, PT_INTERP, PT_LOAD, PT_PHDR};
use crate::error::{Error, Reason, Subject};

/// `PROT_READ`.
pub const PROT_READ: u32 = 1;
/// `PROT_WRITE`.
pub const PROT_WRITE: u32 = 2;
/// `PROT_EXEC`.
pub const PROT_EXEC: u32 = 4;

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
pub struct Plan {
    /// `ET_EXEC`: load at the addresses in the file.
    pub fixed: bool,
    /// How to claim the span.
    pub reserve: Reserve,
    /// Page-aligned lowest address of any `PT_LOAD`.
    pub span_start: u64,
    /// Page-aligned length from `span_start` to the end of the last `PT_LOAD`.
    pub span_len: u64,
    /// Alignment of the load address (a power of two, at least a page).
    pub align: u64,
    /// File offset (page-aligned) and protection of the first `PT_LOAD`.
    pub first_offset: u64,
    /// Protection the first mapping is made with.
    pub first_prot: u32,
    /// Entry point.
    pub entry: u64,
    /// Address of the program header table in memory (for `AT_PHDR`).
    pub phdr: u64,
    /// Number of program headers (for `AT_PHNUM`).
    pub phnum: u16,
    /// Size of a program header (for `AT_PHENT`).
    pub phent: u16,
}

/// The mappings for one `PT_LOAD`, page-aligned except the zeroing range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First page of the segment.
    pub start: u64,
    /// End of the file-backed pages (`start` when the segment has no file data).
    pub file_end: u64,
    /// Page-aligned file offset mapped at `start`.
    pub offset: u64,
    /// Bytes to clear after the file data: from the end of `p_filesz` to the
    /// end of that page (empty when nothing needs clearing).
    pub zero_start: u64,
    /// End of the clearing range (page-aligned, or equal to `zero_start`).
    pub zero_end: u64,
    /// End of the segment: anonymous zero pages fill `file_end..end`.
    pub end: u64,
    /// Final protection (`PROT_*`).
    pub prot: u32,
    /// Protection to map the file pages with: `prot`, plus `PROT_WRITE` and
    /// minus `PROT_EXEC` when clearing needs a write to a read-only page
    /// (`mprotect` to `prot` afterwards). Never writable and executable.
    pub map_prot: u32,
}

fn ph_err(i: u16, reason: Reason) -> Error {
    Error::new(Subject::ProgramHeader(i), reason)
}

/// `PF_*` to `PROT_*`.
pub fn prot_of(flags: u32) -> u32 {
    let mut prot = 0;
    if flags & PF_R != 0 {
        prot |= PROT_READ;
    }
    if flags & PF_W != 0 {
        prot |= PROT_WRITE;
    }
    if flags & PF_X != 0 {
        prot |= PROT_EXEC;
    }
    prot
}

fn page_down(x: u64, page: u64) -> u64 {
    x & !(page - 1)
}

fn page_up(x: u64, page: u64) -> Option<u64> {
    Some(x.checked_add(page - 1)? & !(page - 1))
}

/// The mappings for one `PT_LOAD` that [`plan`] has accepted.
pub fn segment(ph: &Phdr, page: u64) -> Segment {
    let start = page_down(ph.p_vaddr, page);
    let offset = page_down(ph.p_offset, page);
    let data_end = ph.p_vaddr + ph.p_filesz;
    let file_end = if ph.p_filesz == 0 {
        start
    } else {
        page_up(data_end, page).unwrap_or(start)
    };
    let end = page_up(ph.p_vaddr + ph.p_memsz, page).unwrap_or(file_end);
    // The kernel clears the tail of the last file page only when there is bss;
    // it clears to the end of the page (glibc's ld.so relies on that).
    let (zero_start, zero_end) = if ph.p_memsz > ph.p_filesz && ph.p_filesz != 0 {
        (data_end, file_end)
    } else {
        (file_end, file_end)
    };
    let prot = prot_of(ph.p_flags);
    let map_prot = if zero_end > zero_start && prot & PROT_WRITE == 0 {
        (prot | PROT_WRITE) & !PROT_EXEC
    } else {
        prot
    };
    Segment {
        start,
        file_end,
        offset,
        zero_start,
        zero_end,
        end,
        prot,
        map_prot,
    }
}

/// Validate the program headers in `table` (for the already-checked `ehdr`,
/// in a file of `file_size` bytes, with `page`-byte pages, for architecture
/// `A`) and plan the load.
pub fn plan<A: Arch>(ehdr: &Ehdr, table: &[u8], file_size: u64, page: u64) -> Result<Plan, Error> {
    let target = A::TARGET;
    if page == 0 || !page.is_power_of_two() {
        return Err(Error::new(Subject::Image, Reason::PageSize));
    }
    let mut loads = 0u32;
    let mut span_start = 0;
    let mut prev_end = 0; // page-aligned end of the previous PT_LOAD
    let mut align = page;
    let mut first: Option<Phdr> = None;
    let mut pt_phdr: Option<u64> = None;
    let mut mapped_phdr: Option<u64> = None;
    let mut entry_ok = false;
    let table_len = ehdr.phdr_table_len();

    for i in 0..ehdr.phnum {
        let ph = elf::phdr::<A>(table, i);
        match ph.p_type {
            PT_INTERP => return Err(ph_err(i, Reason::Interp)),
            PT_PHDR => pt_phdr = Some(ph.p_vaddr),
            PT_LOAD => {}
            _ => continue,
        }
        if ph.p_type != PT_LOAD {
            continue;
        }
        if ph.p_filesz > ph.p_memsz {
            return Err(ph_err(i, Reason::FileszMemsz));
        }
        if ph.p_offset & (page - 1) != ph.p_vaddr & (page - 1) {
            return Err(ph_err(i, Reason::Congruence));
        }
        match ph.p_offset.checked_add(ph.p_filesz) {
            Some(end) if end <= file_size => {}
            Some(_) => return Err(ph_err(i, Reason::PastEof)),
            None => return Err(ph_err(i, Reason::OffsetOverflow)),
        }
        let end = match ph.p_vaddr.checked_add(ph.p_memsz).and_then(|e| page_up(e, page)) {
            Some(end) if end <= target.addr_limit => end,
            _ => return Err(ph_err(i, Reason::AddrOverflow)),
        };
        if ph.p_flags & PF_W != 0 && ph.p_flags & PF_X != 0 {
            return Err(ph_err(i, Reason::WriteExec));
        }
        let start = page_down(ph.p_vaddr, page);
        if loads > 0 && start < prev_end {
            return Err(ph_err(i, Reason::Overlap));
        }
        if ph.p_align.is_power_of_two() && ph.p_align > align {
            align = ph.p_align;
        }
        if loads == 0 {
            span_start = start;
            first = Some(ph);
        }
        // The PT_LOAD whose file data holds the program header table maps
        // it (unless PT_PHDR says where, which wins whatever its position).
        if mapped_phdr.is_none() && ph.p_offset <= ehdr.phoff && ehdr.phoff + table_len <= ph.p_offset + ph.p_filesz {
            mapped_phdr = Some(ph.p_vaddr + (ehdr.phoff - ph.p_offset));
        }
        if ph.p_flags & PF_X != 0 && ph.p_vaddr <= ehdr.entry && ehdr.entry < ph.p_vaddr + ph.p_memsz {
            entry_ok = true;
        }
        prev_end = end;
        loads += 1;
    }
    let first = match first {
        Some(first) => first,
        None => return Err(Error::new(Subject::Image, Reason::NoLoad)),
    };
    let fixed = ehdr.e_type == elf::ET_EXEC;
    if fixed {
        // The kernel ignores p_align for fixed-address images.
        align = page;
    }
    let span_len = prev_end - span_start;
    if fixed && span_start == 0 {
        return Err(Error::new(Subject::Image, Reason::PageZero));
    }
    if !fixed && span_len.checked_add(align).is_none_or(|n| n > target.addr_limit) {
        return Err(Error::new(Subject::Image, Reason::SpanTooBig));
    }

    let phdr = pt_phdr.or(mapped_phdr);
    let phdr = match phdr {
        Some(phdr) => phdr,
        None => return Err(Error::new(Subject::Image, Reason::PhdrsUnmapped)),
    };
    if !entry_ok {
        return Err(Error::new(Subject::Image, Reason::EntryOutside));
    }

    let first_seg = segment(&first, page);
    let reserve = if first.p_filesz != 0 && (fixed || align == page) {
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
        first_prot: first_seg.map_prot,
        entry: ehdr.entry,
        phdr,
        phnum: ehdr.phnum,
        phent: ehdr.phentsize,
    })
}

#[cfg(test)]
mod tests;
