//! File-offset system calls as every 64-bit Linux ABI passes them: the
//! offset in one register, `mmap`'s in bytes. (i386 differs: `mmap2` takes
//! pages and `pread64` splits the offset in two; see `x86.rs`.)
//!
//! # Safety
//!
//! Thin forwarders to the architecture's raw system calls; the contracts
//! are the callers'.
#![allow(unsafe_code)]

use linux_raw_sys::general::{__NR_mmap, __NR_pread64};

use crate::arch::{syscall4, syscall6};

/// `mmap(2)`; the offset is in bytes.
///
/// # Safety
/// As for the raw system calls; with `MAP_FIXED` the caller must own the range.
#[inline(always)]
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, offset: u64) -> isize {
    // SAFETY: forwarded contract.
    unsafe { syscall6(__NR_mmap, addr, len, prot, flags, fd, offset as usize) }
}

/// `pread64(2)`.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes.
#[inline(always)]
pub unsafe fn pread(fd: usize, buf: *mut u8, len: usize, offset: u64) -> isize {
    // SAFETY: forwarded contract.
    unsafe { syscall4(__NR_pread64, fd, buf as usize, len, offset as usize) }
}
