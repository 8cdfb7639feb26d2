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

use chainloader::elf::{self, Target, PT_LOAD};
use chainloader::plan::{segment, Plan, Reserve};
use chainloader::{Error, Subject};

use crate::rt::sys::{self, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE};

const EEXIST: i32 = 17;

fn image_err(reason: &'static str, errno: i32) -> Error {
    Error::sys(Subject::Image, reason, errno)
}

/// Claim the span; returns where `plan.span_start` landed.
fn reserve(fd: i32, plan: &Plan, page: u64) -> Result<usize, Error> {
    let span = plan.span_len as usize;
    let taken = |e: i32| {
        if e == EEXIST {
            image_err("fixed-address (ET_EXEC) image: its addresses are already in use", 0)
        } else {
            image_err("cannot reserve address space for the image", e)
        }
    };
    let (addr, noreplace) = if plan.fixed { (plan.span_start as usize, MAP_FIXED_NOREPLACE) } else { (0, 0) };
    match plan.reserve {
        Reserve::FirstSegment => {
            // SAFETY: no MAP_FIXED: the kernel picks free space, or refuses.
            let got = unsafe { sys::mmap(addr, span, plan.first_prot, MAP_PRIVATE | noreplace, fd, plan.first_offset) }
                .map_err(taken)?;
            if plan.fixed && got != addr {
                // A kernel older than 4.17 treats NOREPLACE as a hint.
                // SAFETY: we just created this mapping.
                let _ = unsafe { sys::munmap(got, span) };
                return Err(taken(EEXIST));
            }
            Ok(got)
        }
        Reserve::Aligned if plan.fixed => {
            // SAFETY: as above.
            let got = unsafe { sys::mmap(addr, span, 0, MAP_PRIVATE | MAP_ANONYMOUS | noreplace, -1, 0) }.map_err(taken)?;
            if got != addr {
                // SAFETY: we just created this mapping.
                let _ = unsafe { sys::munmap(got, span) };
                return Err(taken(EEXIST));
            }
            Ok(got)
        }
        Reserve::Aligned => {
            let align = plan.align as usize;
            let len = span + align - page as usize;
            // SAFETY: no MAP_FIXED.
            let got = unsafe { sys::mmap(0, len, 0, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }.map_err(taken)?;
            let start = (got + align - 1) & !(align - 1);
            // SAFETY: head and tail are the parts of our own fresh
            // reservation outside the aligned span.
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
    }
}

/// Map the image on `fd` as `plan` says; returns the load bias (0 for
/// `ET_EXEC`).
pub fn load(fd: i32, plan: &Plan, table: &[u8], page: u64, target: &Target) -> Result<usize, Error> {
    let base = reserve(fd, plan, page)?;
    let bias = base.wrapping_sub(plan.span_start as usize);
    let mut first = true;
    let mut prev_end = plan.span_start;
    for i in 0..plan.phnum {
        let ph = elf::phdr(table, i, target);
        if ph.p_type != PT_LOAD {
            continue;
        }
        let seg = segment(&ph, page);
        let at = |a: u64| bias.wrapping_add(a as usize);
        let fail = |reason, e| Error::sys(Subject::ProgramHeader(i), reason, e);
        // SAFETY (whole block): every range below lies inside the span
        // reserved above: plan() checked the segments are ordered, inside
        // span_start..span_start + span_len, and page-aligned as computed.
        unsafe {
            if plan.reserve == Reserve::FirstSegment && prev_end < seg.start {
                // A hole between segments: still mapped from the file by the
                // first mapping; make it inaccessible (and keep it reserved).
                sys::mprotect(at(prev_end), (seg.start - prev_end) as usize, 0)
                    .map_err(|e| fail("cannot protect the gap before the segment", e))?;
            }
            let already_mapped = first && plan.reserve == Reserve::FirstSegment;
            if seg.file_end > seg.start && !already_mapped {
                sys::mmap(
                    at(seg.start),
                    (seg.file_end - seg.start) as usize,
                    seg.map_prot,
                    MAP_PRIVATE | MAP_FIXED,
                    fd,
                    seg.offset,
                )
                .map_err(|e| fail("cannot map segment", e))?;
            }
            if seg.zero_end > seg.zero_start {
                crate::arch::fill(at(seg.zero_start) as *mut u8, 0, (seg.zero_end - seg.zero_start) as usize);
            }
            if seg.map_prot != seg.prot {
                sys::mprotect(at(seg.start), (seg.file_end - seg.start) as usize, seg.prot)
                    .map_err(|e| fail("cannot protect segment", e))?;
            }
            if seg.end > seg.file_end {
                sys::mmap(
                    at(seg.file_end),
                    (seg.end - seg.file_end) as usize,
                    seg.prot,
                    MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS,
                    -1,
                    0,
                )
                .map_err(|e| fail("cannot map bss", e))?;
            }
        }
        prev_end = seg.end;
        first = false;
    }
    Ok(bias)
}
