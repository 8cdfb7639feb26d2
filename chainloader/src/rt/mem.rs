//! `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`: the compiler may call
//! these for struct copies and array initialisation, and there is no libc.
//!
//! They are built on the architecture's string instructions (or volatile
//! loops) so that the optimiser cannot turn their bodies back into calls to
//! themselves.
//!
//! # Safety
//!
//! These are the C functions with the C contracts: the caller (compiler-
//! generated code) passes valid ranges of the stated lengths.
#![allow(unsafe_code)]

use crate::arch;

/// C `memset`.
///
/// # Safety
/// `dst` must be valid for `n` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: C contract.
    unsafe { arch::fill(dst, c as u8, n) };
    dst
}

/// C `memcpy`.
///
/// # Safety
/// Valid, non-overlapping ranges of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: C contract.
    unsafe { arch::copy_forward(dst, src, n) };
    dst
}

/// C `memmove`.
///
/// # Safety
/// Valid ranges of `n` bytes, possibly overlapping.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize) + n {
        // SAFETY: C contract; a forward copy is right when dst is below src.
        unsafe { arch::copy_forward(dst, src, n) };
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: i < n, within both ranges.
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    }
    dst
}

/// C `memcmp`.
///
/// # Safety
/// Valid ranges of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, within both ranges.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// C `bcmp`.
///
/// # Safety
/// Valid ranges of `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}

/// Never called: with `panic = "abort"` nothing unwinds, but the prebuilt
/// `core` still names the personality routine when it is not LTO-merged.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
