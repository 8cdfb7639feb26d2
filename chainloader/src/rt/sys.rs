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
//! The safe wrappers (`pread_full`, `close`, `write_all`, `exit`,
//! `open_read`) pass the
//! kernel only pointers derived from Rust references of the right length.
//! The others are `unsafe fn` and pass the caller's raw pointers on, under
//! the contracts they state: `pread_raw` writes through a raw buffer
//! pointer, `set_name` reads a C string, and `mmap`, `mprotect` and
//! `munmap` can invalidate memory that references still point into.
#![allow(unsafe_code)]

use linux_raw_sys::general::{
    __NR_close, __NR_connect, __NR_exit_group, __NR_getcwd, __NR_mprotect, __NR_munmap, __NR_openat, __NR_prctl,
    __NR_recvmsg, __NR_sendmsg, __NR_socket, __NR_write,
};
pub use linux_raw_sys::general::{MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE};
use linux_raw_sys::net;
use linux_raw_sys::prctl::PR_SET_NAME;

use crate::arch::{syscall1, syscall2, syscall3};
// `mmap` and `pread` with a file offset: one register on the 64-bit ABIs,
// split (and `mmap2`'s pages) on i386.
#[cfg(target_pointer_width = "32")]
use crate::arch as offsets;
#[cfg(target_pointer_width = "64")]
use crate::lp64 as offsets;

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
        let n = retry(|| unsafe { offsets::pread(fd as usize, buf.add(done), len - done, offset + done as u64) })?;
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
        let written = retry(|| unsafe { syscall3(__NR_write, fd as usize, rest.as_ptr() as usize, rest.len()) });
        // `get`, not indexing: no panic path for a count the kernel never
        // returns (more than asked).
        match written.ok().filter(|&n| n > 0).and_then(|n| rest.get(n..)) {
            Some(left) => rest = left,
            None => return,
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
    result(unsafe { offsets::mmap(addr, len, prot as usize, flags as usize, fd as usize, offset) })
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

/// `openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)`:
/// never blocks on a FIFO, never takes a terminal as controlling terminal.
/// `path` must end with its NUL.
pub fn open_read(path: &[u8]) -> Result<i32, Errno> {
    use linux_raw_sys::general::{AT_FDCWD, O_CLOEXEC, O_NOCTTY, O_NONBLOCK, O_RDONLY};
    if path.last() != Some(&0) {
        return Err(linux_raw_sys::errno::EINVAL as Errno);
    }
    let flags = (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) as usize;
    // SAFETY: path is a live, NUL-terminated buffer (checked above).
    retry(|| unsafe { syscall3(__NR_openat, AT_FDCWD as usize, path.as_ptr() as usize, flags) }).map(|fd| fd as i32)
}

/// `socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)`.
pub fn unix_socket() -> Result<i32, Errno> {
    let kind = net::SOCK_STREAM as usize | linux_raw_sys::general::O_CLOEXEC as usize;
    // SAFETY: socket touches no memory.
    retry(|| unsafe { syscall3(__NR_socket, net::AF_UNIX as usize, kind, 0) }).map(|fd| fd as i32)
}

/// `sockaddr_un` for `path` (no NUL, shorter than `sun_path`'s 108 bytes):
/// the family (native byte order), the path, a NUL; built at compile time.
pub const fn sockaddr_un<const N: usize>(path: &[u8]) -> [u8; N] {
    assert!(N == path.len() + 3 && path.len() < 108);
    let mut addr = [0u8; N];
    let family = (net::AF_UNIX as u16).to_ne_bytes();
    addr[0] = family[0];
    addr[1] = family[1];
    let mut i = 0;
    while i < path.len() {
        addr[2 + i] = path[i];
        i += 1;
    }
    addr
}

/// `connect(fd, addr)` for an address [`sockaddr_un`] made.
pub fn connect_unix(fd: i32, addr: &[u8]) -> Result<(), Errno> {
    // SAFETY: addr is a live sockaddr_un of the length passed.
    retry(|| unsafe { syscall3(__NR_connect, fd as usize, addr.as_ptr() as usize, addr.len()) }).map(drop)
}

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IoVec {
    /// Start of the buffer.
    pub base: usize,
    /// Its length.
    pub len: usize,
}

/// `struct msghdr` (the kernel's `user_msghdr`: lengths are `size_t`).
#[repr(C)]
struct MsgHdr {
    name: usize,
    namelen: u32,
    iov: usize,
    iovlen: usize,
    control: usize,
    controllen: usize,
    flags: i32,
}

/// `sendmsg(fd, iov, MSG_NOSIGNAL)`: the number of bytes sent.
///
/// # Safety
/// Every `IoVec` must describe live, readable memory.
pub unsafe fn sendmsg(fd: i32, iov: &[IoVec]) -> Result<usize, Errno> {
    let msg = MsgHdr {
        name: 0,
        namelen: 0,
        iov: iov.as_ptr() as usize,
        iovlen: iov.len(),
        control: 0,
        controllen: 0,
        flags: 0,
    };
    let msg = &msg as *const MsgHdr as usize;
    // SAFETY: msg and the iovecs it points at are live; the caller vouches
    // for the buffers.
    retry(|| unsafe { syscall3(__NR_sendmsg, fd as usize, msg, net::MSG_NOSIGNAL as usize) })
}

/// `recvmsg(fd, buf, MSG_CMSG_CLOEXEC)` with room for one `SCM_RIGHTS`
/// descriptor: the bytes received and the descriptor, if one came.
pub fn recv_fd(fd: i32, buf: &mut [u8]) -> Result<(usize, Option<i32>), Errno> {
    const W: usize = core::mem::size_of::<usize>();
    // cmsghdr (len: size_t, level: i32, type: i32) then the int: 16 or 24
    // bytes, word-aligned.
    let mut control = [0usize; 4];
    let iov = IoVec {
        base: buf.as_mut_ptr() as usize,
        len: buf.len(),
    };
    let mut msg = MsgHdr {
        name: 0,
        namelen: 0,
        iov: &iov as *const IoVec as usize,
        iovlen: 1,
        control: control.as_mut_ptr() as usize,
        controllen: core::mem::size_of_val(&control),
        flags: 0,
    };
    let m = &mut msg as *mut MsgHdr as usize;
    // SAFETY: msg, iov, buf and control are live and writable for the
    // lengths given.
    let n = retry(|| unsafe { syscall3(__NR_recvmsg, fd as usize, m, net::MSG_CMSG_CLOEXEC as usize) })?;
    // The words of the first control message: 64-bit: [len, level|type<<32,
    // fd]; 32-bit: [len, level, type, fd] (both little-endian).
    let (len, level, kind, data) = if W == 8 {
        let lt = control[1] as u64;
        (control[0], lt as u32, (lt >> 32) as u32, control[2] as u32 as i32)
    } else {
        (
            control[0],
            control[1] as u32,
            control[2] as u32,
            control[3] as u32 as i32,
        )
    };
    let header = W + 8;
    let ok = msg.controllen >= header + 4 && len >= header + 4 && level == net::SOL_SOCKET && kind == net::SCM_RIGHTS;
    Ok((n, ok.then_some(data)))
}

/// `getcwd(buf, len)`: the length of the path, without its NUL.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes.
pub unsafe fn getcwd(buf: *mut u8, len: usize) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for buf.
    let n = retry(|| unsafe { syscall2(__NR_getcwd, buf as usize, len) })?;
    Ok(n.saturating_sub(1))
}

/// Print `chainloader: MESSAGE` as the one line and exit 127 (interp mode's
/// messages, and a panic's).
pub fn say_and_exit(message: &[u8]) -> ! {
    write_all(2, b"chainloader: ");
    write_all(2, message);
    write_all(2, b"\n");
    exit(chainloader::error::EXIT_FAILURE)
}
