//! Self-relocation: apply our own `R_*_RELATIVE` relocations before any code
//! that reads a pointer from static data runs.
//!
//! The chainloader is a static PIE: the kernel maps it anywhere and applies
//! no relocations. Rust code may keep absolute pointers in read-only data
//! (string tables, the panic machinery), each covered by a RELATIVE
//! relocation: "base + addend". This module walks our `_DYNAMIC` and applies
//! them — and nothing else: any other relocation type means the link went
//! wrong, and we exit 127 rather than run with broken pointers.
//!
//! Rules for this file (it runs before relocation): no calls outside the
//! crate, no panics, no formatting, no statics other than string literals
//! used through the `write` system call. (The integration test
//! `chainloader_is_a_static_pie` checks the built file contains only
//! relocations this code handles.)
//!
//! # Safety
//!
//! `base` and `dynamic` come from the entry stub's PC-relative address
//! computations, so they are our real load address and our real dynamic
//! section; the relocation targets lie inside our own writable segment
//! (the linker put every relocated word there).
#![allow(unsafe_code)]

use crate::arch;

const DT_NULL: usize = 0;
const DT_RELA: usize = 7;
const DT_RELASZ: usize = 8;
const DT_REL: usize = 17;
const DT_RELSZ: usize = 18;
const DT_RELR: usize = 36;

/// `ELF64_R_TYPE`: the low 32 bits of `r_info`.
#[cfg(target_pointer_width = "64")]
fn reloc_type(info: usize) -> usize {
    info & 0xffff_ffff
}

/// `ELF32_R_TYPE`: the low 8 bits of `r_info`.
#[cfg(target_pointer_width = "32")]
fn reloc_type(info: usize) -> usize {
    info & 0xff
}

fn fail() -> ! {
    crate::rt::sys::write_all(2, b"chainloader: self-relocation: unsupported relocation (bad build)\n");
    crate::rt::sys::exit(127)
}

/// Apply our RELATIVE relocations (from `DT_RELA` or `DT_REL`; the build
/// never asks the linker for packed `DT_RELR` relocations, and we refuse them).
///
/// # Safety
/// Must be called once, first thing, with the base and dynamic-section
/// addresses computed by the entry stub.
pub unsafe fn relocate(base: usize, dynamic: *const usize) {
    let (mut rel, mut relsz) = (0, 0);
    let mut d = dynamic;
    loop {
        // SAFETY: _DYNAMIC is an array of (tag, value) words ending in DT_NULL.
        let (tag, val) = unsafe { (*d, *d.add(1)) };
        match tag {
            DT_NULL => break,
            DT_RELA if arch::RELA => rel = val,
            DT_RELASZ if arch::RELA => relsz = val,
            DT_REL if !arch::RELA => rel = val,
            DT_RELSZ if !arch::RELA => relsz = val,
            DT_RELR => fail(),
            _ => {}
        }
        // SAFETY: still inside _DYNAMIC (we stop at DT_NULL).
        d = unsafe { d.add(2) };
    }
    let entry_words = if arch::RELA { 3 } else { 2 };
    let mut r = (base + rel) as *const usize;
    let end = (base + rel + relsz) as *const usize;
    while r < end {
        // SAFETY: r walks the relocation table the linker wrote, within its size.
        let (offset, info) = unsafe { (*r, *r.add(1)) };
        if reloc_type(info) != arch::R_RELATIVE {
            fail();
        }
        let place = (base + offset) as *mut usize;
        // SAFETY: RELATIVE targets are words in our own writable segment.
        unsafe {
            let addend = if arch::RELA { *r.add(2) } else { place.read() };
            place.write(base.wrapping_add(addend));
            r = r.add(entry_words);
        }
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}
