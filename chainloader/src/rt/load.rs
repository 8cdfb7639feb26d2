//! Carry out a [`Plan`]: claim the span, map each `PT_LOAD`, clear bss,
//! close the gaps. Mirrors `load_elf_binary` / `elf_load` in the kernel.
//!
//! # Safety
//!
//! Every `MAP_FIXED` mapping and every write lands inside the span this
//! module reserved itself (a fresh kernel-chosen range for `ET_DYN`, or one
//! claimed with `MAP_FIXED_NOREPLACE` for `ET_EXEC`), so nothing of ours —
//! code, stack, the header buffer — is ever replaced.
#![allow(unsafe_code)]

use chainloader::elf::{self, parse_ehdr, Arch, Word, PT_LOAD};
use chainloader::machine::Native;
use chainloader::plan::{plan, segment, Plan, Reserve, Segment, PROT_READ, PROT_WRITE};
use chainloader::{Error, Reason, Subject};

use crate::rt::stack::Stack;
use crate::rt::sys::{self, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE};

const EEXIST: sys::Errno = linux_raw_sys::errno::EEXIST as sys::Errno;
const EISDIR: sys::Errno = linux_raw_sys::errno::EISDIR as sys::Errno;
const ESPIPE: sys::Errno = linux_raw_sys::errno::ESPIPE as sys::Errno;

/// Bytes read at offset 0: the file header and, for any ordinary image, the
/// program headers too (glibc's ld.so needs 64 + 9 * 56 = 568).
const HEAD: usize = 1024;

/// The image's (and our own) address width.
pub type W = <Native as Arch>::Word;

/// Claim the span; returns where `plan.span_start` landed.
fn reserve(fd: i32, plan: &Plan<W>, page: W) -> Result<usize, Error> {
    let span = plan.span_len.to_usize();
    // ET_EXEC: exactly at its addresses, never over an existing mapping.
    // ET_DYN: wherever the kernel likes, with room to align.
    let (hint, flags, len) = if plan.fixed {
        (plan.span_start.to_usize(), MAP_PRIVATE | MAP_FIXED_NOREPLACE, span)
    } else {
        (0, MAP_PRIVATE, span + (plan.align - page).to_usize())
    };
    // SAFETY: no MAP_FIXED: the kernel picks free space, or refuses.
    let got = unsafe {
        match plan.reserve {
            Reserve::FirstSegment => sys::mmap(hint, len, plan.first_prot, flags, fd, plan.first_offset.to_u64()),
            Reserve::Aligned => sys::mmap(hint, len, 0, flags | MAP_ANONYMOUS, -1, 0),
        }
    }
    .map_err(|e| match e {
        EEXIST => Error::new(Subject::Image, Reason::AddressesTaken),
        e => Error::sys(Subject::Image, Reason::Reserve, e),
    })?;
    if plan.fixed && got != hint {
        // A kernel older than 4.17 treats NOREPLACE as a hint.
        // SAFETY: we just created this mapping.
        let _ = unsafe { sys::munmap(got, len) };
        return Err(Error::new(Subject::Image, Reason::AddressesTaken));
    }
    let start = (got + plan.align.to_usize() - 1) & !(plan.align.to_usize() - 1);
    // SAFETY: head and tail are the parts of our own fresh reservation
    // outside the aligned span (both empty unless align > page).
    unsafe {
        if start > got {
            let _ = sys::munmap(got, start - got);
        }
        if got + len > start + span {
            let _ = sys::munmap(start + span, got + len - (start + span));
        }
    }
    Ok(start)
}

/// Map the part of `seg` past its file data at `addr`: anonymous memory,
/// mapped writable as the kernel's `vm_brk_flags()` maps bss (so it is
/// accounted, and refused with ENOMEM where the kernel's exec would fail),
/// then — for a non-writable segment (rare) — given its own protection back;
/// the file bytes of a last page shared with the file data are read into
/// it. Returns how far into the file that read proved the file long (0 if
/// none).
///
/// # Safety
/// `addr .. addr + (seg.end - seg.file_end)` must lie inside the span the
/// image reserved, and hold nothing still in use.
#[inline(always)]
unsafe fn map_bss(fd: i32, seg: &Segment<W>, addr: usize, i: u16) -> Result<u64, Error> {
    let fail = |reason, e| Error::sys(Subject::ProgramHeader(i), reason, e);
    let anon = (seg.end - seg.file_end).to_usize();
    let flags = MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS;
    // SAFETY: the caller vouches for the range.
    unsafe {
        sys::mmap(addr, anon, seg.prot | PROT_WRITE, flags, -1, 0).map_err(|e| fail(Reason::MapBss, e))?;
        if seg.prot & PROT_WRITE == 0 {
            sys::mprotect(addr, anon, seg.prot).map_err(|e| fail(Reason::MapBss, e))?;
        }
    }
    if seg.tail == 0 {
        return Ok(0);
    }
    let from = seg.offset + (seg.file_end - seg.start);
    // SAFETY: the tail's bytes lie at the start of the writable range just mapped.
    let got = unsafe { sys::pread_raw(fd, addr as *mut u8, seg.tail.to_usize(), from.to_u64()) }
        .map_err(|e| fail(Reason::ReadTail, e))?;
    if got != seg.tail.to_usize() {
        return Err(fail(Reason::PastEof, 0));
    }
    Ok(from.to_u64() + seg.tail.to_u64())
}

/// Map the image on `fd` as `plan` says; returns the load bias (0 for
/// `ET_EXEC`). `known_size` is the file's size when the header read showed
/// it (a short file), else `u64::MAX`: then the file is proven long enough
/// for every segment before this returns (by the tail reads, or one more
/// one-byte `pread`), so no page of the image can fault with SIGBUS later.
pub fn load(fd: i32, plan: &Plan<W>, table: &[u8], page: W, known_size: u64) -> Result<usize, Error> {
    let base = reserve(fd, plan, page)?;
    let bias = base.wrapping_sub(plan.span_start.to_usize());
    let at = |a: W| bias.wrapping_add(a.to_usize());
    let mut prev_end = plan.span_start;
    // How much of the file is known to exist: all of what the image maps if
    // the size was known (plan() checked it), else what the reads show.
    let mut proven = if known_size == u64::MAX { 0 } else { plan.file_extent };
    for i in 0..plan.loads_end {
        if elf::phdr_type::<Native>(table, i) != PT_LOAD {
            continue;
        }
        let seg = segment(&elf::phdr::<Native>(table, i), page);
        let fail = |reason, e| Error::sys(Subject::ProgramHeader(i), reason, e);
        // SAFETY (whole block): every range below lies inside the span
        // reserved above: plan() checked the segments are ordered, inside
        // span_start..span_start + span_len, and page-aligned as computed.
        unsafe {
            if plan.reserve == Reserve::FirstSegment && prev_end < seg.start {
                // A hole between segments: still mapped from the file by the
                // first mapping; make it inaccessible (and keep it reserved).
                sys::mprotect(at(prev_end), (seg.start - prev_end).to_usize(), 0)
                    .map_err(|e| fail(Reason::ProtectGap, e))?;
            }
            // The first mapping already maps the file over the whole span,
            // with the first segment's protection: any segment at the same
            // file-to-memory distance with that protection (ld.so's second
            // read-only segment, typically) needs no mapping of its own.
            let already_mapped = plan.reserve == Reserve::FirstSegment
                && seg.prot == plan.first_prot
                && seg.offset.wrapping_sub(seg.start) == plan.first_offset.wrapping_sub(plan.span_start);
            if seg.file_end > seg.start && !already_mapped {
                sys::mmap(
                    at(seg.start),
                    (seg.file_end - seg.start).to_usize(),
                    seg.prot,
                    MAP_PRIVATE | MAP_FIXED,
                    fd,
                    seg.offset.to_u64(),
                )
                .map_err(|e| fail(Reason::MapSegment, e))?;
            }
            if seg.end > seg.file_end {
                proven = proven.max(map_bss(fd, &seg, at(seg.file_end), i)?);
            }
        }
        prev_end = seg.end;
    }
    if proven < plan.file_extent {
        // Nothing read the last byte the image maps: check it exists.
        let mut byte = [0u8; 1];
        let got = sys::pread_full(fd, &mut byte, plan.file_extent - 1)
            .map_err(|e| Error::sys(Subject::Image, Reason::Read, e))?;
        if got != 1 {
            return Err(Error::new(Subject::Image, Reason::PastEof));
        }
    }
    Ok(bias)
}

/// Map the image open on `fd` as the kernel would, close `fd`, and
/// describe it in the auxv: as the program the kernel would have exec'd
/// (command mode: `AT_PHDR`, `AT_PHENT`, `AT_PHNUM`, `AT_ENTRY`, `AT_BASE`
/// 0), or as the program's interpreter (`interp`: `AT_BASE` alone, its
/// load address). Returns its entry point.
#[inline(never)]
pub fn map_fd(fd: i32, stack: &mut Stack, interp: bool) -> Result<usize, Error> {
    let at_fd = |reason, e| Error::sys(Subject::Fd(fd), reason, e);

    // No fstat: pread says all we need. A directory fails with EISDIR, a
    // pipe or socket with ESPIPE, a device like /dev/zero yields no ELF
    // header; a read shorter than asked gives the file's size, and a longer
    // file is proven long enough by the loader's reads.
    // Not zero-initialised: only the `n` bytes pread fills are ever read.
    let mut buf = core::mem::MaybeUninit::<[u8; HEAD]>::uninit();
    // SAFETY: buf is HEAD writable bytes.
    let n = unsafe { sys::pread_raw(fd, buf.as_mut_ptr().cast(), HEAD, 0) }.map_err(|e| match e {
        EISDIR => Error::new(Subject::Fd(fd), Reason::IsDirectory),
        ESPIPE => Error::new(Subject::Fd(fd), Reason::NotRegular),
        e => at_fd(Reason::Read, e),
    })?;
    // SAFETY: pread_raw initialised the first n <= HEAD bytes.
    let head: &[u8] = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n) };
    let size = if n < HEAD { n as u64 } else { u64::MAX };
    let ehdr = parse_ehdr::<Native>(head, size)?;

    let page = stack.page_size().unwrap_or(4096) as u64;
    let table_len = ehdr.phdr_table_len() as usize;
    let table_end = ehdr.phoff as usize + table_len;
    let mut big = None;
    // `get`, not indexing: no panic path (on i386 the compiler cannot see
    // that phoff, a u64, fits).
    let table: &[u8] = if let Some(table) = head.get(ehdr.phoff as usize..table_end) {
        table
    } else {
        // Headers beyond the first HEAD bytes (or a table larger than it):
        // read them into a scratch mapping. At most 64 KiB (parse_ehdr).
        // SAFETY: a fresh anonymous mapping, not MAP_FIXED.
        let addr = unsafe { sys::mmap(0, table_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }
            .map_err(|e| at_fd(Reason::PhdrBuffer, e))?;
        // SAFETY: the mapping is table_len bytes, readable and writable, and
        // nothing else refers to it.
        let buf = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, table_len) };
        let got = sys::pread_full(fd, buf, ehdr.phoff).map_err(|e| at_fd(Reason::Read, e))?;
        if got != table_len {
            return Err(Error::new(Subject::ElfHeader, Reason::PhdrsOutside));
        }
        big = Some((addr, table_len));
        buf
    };
    let plan = plan::<Native>(&ehdr, table, size, page)?;
    let bias = load(fd, &plan, table, W::from_u64(page), size)?;
    if let Some((addr, len)) = big {
        // SAFETY: `table` (the only reference into it) is not used again.
        let _ = unsafe { sys::munmap(addr, len) };
    }
    sys::close(fd).map_err(|e| at_fd(Reason::Close, e))?;
    let entry = bias.wrapping_add(plan.entry.to_usize());
    if interp {
        stack.set_base(bias);
    } else {
        stack.describe_image(
            bias.wrapping_add(plan.phdr.to_usize()),
            usize::from(plan.phent),
            usize::from(plan.phnum),
            entry,
        );
    }
    Ok(entry)
}
