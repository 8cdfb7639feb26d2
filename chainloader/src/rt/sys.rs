//! Typed system-call wrappers over `arch`, with EINTR handled.
//!
//! Every call that can fail with `EINTR` is retried. `close` is the exception
//! that proves the rule: on Linux the descriptor is gone even when `close`
//! reports `EINTR`, so retrying could only hit another descriptor (in this
//! single-threaded program it would harmlessly fail with `EBADF`); `EINTR`
//! from `close` counts as success.
//!
//! System-call numbers, flags and errno values come from `linux-raw-sys`,
//! whose modules are generated per architecture from the kernel's headers.
//!
//! # Safety
//!
//! The safe wrappers (`pread_full`, `close`, `write_all`, `exit`) pass the
//! kernel only pointers derived from Rust references of the right length.
//! The others are `unsafe fn` and pass the caller's raw pointers on, under
//! the contracts they state: `pread_raw` writes through a raw buffer
//! pointer, `set_name` reads a C string, and `mmap`, `mprotect` and
//! `munmap` can invalidate memory that references still point into.
#![allow(unsafe_code)]

use linux_raw_sys::general::{__NR_close, __NR_exit_group, __NR_mprotect, __NR_munmap, __NR_prctl, __NR_write};
pub use linux_raw_sys::general::{MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE};
use linux_raw_sys::prctl::PR_SET_NAME;

use crate::arch::{self, syscall1, syscall2, syscall3};

/// An errno value, as [`chainloader::Error`] carries it.
pub type Errno = i32;

const EINTR: Errno = linux_raw_sys::errno::EINTR as Errno;

/// Return values from -4095 to -1 are -errno (the kernel's `MAX_ERRNO`).
const MAX_ERRNO: isize = 4095;

fn result(ret: isize) -> Result<usize, Errno> {
    if (-MAX_ERRNO..0).contains(&ret) {
        Err((-ret) as Errno)
    } else {
        Ok(ret as usize)
    }
}

/// Run `f` until it returns something other than `-EINTR`.
#[inline(always)]
fn retry(mut f: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        let ret = f();
        if ret != -(EINTR as isize) {
            return result(ret);
        }
    }
}

/// `pread(fd, buf, offset)` until `buf` is full or the file ends; returns
/// the number of bytes read. Never uses or moves the file offset.
pub fn pread_full(fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    // SAFETY: `buf` is a live, exclusively borrowed buffer of `buf.len()` bytes.
    unsafe { pread_raw(fd, buf.as_mut_ptr(), buf.len(), offset) }
}

/// [`pread_full`] into possibly uninitialised memory; the first `n` bytes
/// (the return value) are initialised afterwards.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes.
pub unsafe fn pread_raw(fd: i32, buf: *mut u8, len: usize, offset: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < len {
        // SAFETY: buf + done .. buf + len is writable per the caller.
        let n = retry(|| unsafe { arch::pread(fd as usize, buf.add(done), len - done, offset + done as u64) })?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// `close(fd)`; see the module docs for `EINTR`.
pub fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: closing a descriptor touches no memory.
    match result(unsafe { syscall1(__NR_close, fd as usize) }) {
        Ok(_) | Err(EINTR) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Write all of `bytes` to `fd`, best effort (errors are ignored: there is
/// nowhere left to report them).
pub fn write_all(fd: i32, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live buffer of `rest.len()` bytes.
        match retry(|| unsafe { syscall3(__NR_write, fd as usize, rest.as_ptr() as usize, rest.len()) }) {
            Ok(n) if n > 0 => rest = &rest[n..],
            _ => return,
        }
    }
}

/// `prctl(PR_SET_NAME, name)`: the kernel copies at most 15 bytes, up to
/// the first NUL.
///
/// # Safety
/// `name` must point at a NUL-terminated string, or at 16 readable bytes.
pub unsafe fn set_name(name: *const u8) -> Result<(), Errno> {
    // SAFETY: the caller vouches for name.
    retry(|| unsafe { syscall2(__NR_prctl, PR_SET_NAME as usize, name as usize) }).map(drop)
}

/// `exit_group(status)`.
pub fn exit(status: i32) -> ! {
    loop {
        // SAFETY: exit_group touches no memory and does not return.
        unsafe { syscall1(__NR_exit_group, status as usize) };
    }
}

/// `mmap(2)`. Returns the address.
///
/// # Safety
/// With `MAP_FIXED` the range must not hold anything still in use.
pub unsafe fn mmap(addr: usize, len: usize, prot: u32, flags: u32, fd: i32, offset: u64) -> Result<usize, Errno> {
    // SAFETY: forwarded contract; mmap does not fail with EINTR.
    result(unsafe { arch::mmap(addr, len, prot as usize, flags as usize, fd as usize, offset) })
}

/// `mprotect(2)`.
///
/// # Safety
/// Removing access must not break memory that is still referenced.
pub unsafe fn mprotect(addr: usize, len: usize, prot: u32) -> Result<(), Errno> {
    // SAFETY: forwarded contract.
    result(unsafe { syscall3(__NR_mprotect, addr, len, prot as usize) }).map(drop)
}

/// `munmap(2)`.
///
/// # Safety
/// The range must hold nothing still in use.
pub unsafe fn munmap(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: forwarded contract.
    result(unsafe { syscall2(__NR_munmap, addr, len) }).map(drop)
}
