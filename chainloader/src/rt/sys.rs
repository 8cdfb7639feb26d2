//! Typed system-call wrappers over `arch`, with EINTR handled.
//!
//! Every call that can fail with `EINTR` is retried. `close` is the exception
//! that proves the rule: on Linux the descriptor is gone even when `close`
//! reports `EINTR`, so retrying could only hit another descriptor (in this
//! single-threaded program it would harmlessly fail with `EBADF`); `EINTR`
//! from `close` counts as success.
//!
//! # Safety
//!
//! Each wrapper passes the kernel only pointers derived from Rust references
//! of the right length; the memory-management wrappers are `unsafe fn`
//! because unmapping or remapping memory can invalidate other references.
#![allow(unsafe_code)]

use crate::arch::{self, syscall6};

/// An errno value.
pub type Errno = i32;

const EINTR: Errno = 4;
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
    match result(unsafe { syscall6(arch::SYS_CLOSE, fd as usize, 0, 0, 0, 0, 0) }) {
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
        match retry(|| unsafe {
            syscall6(
                arch::SYS_WRITE,
                fd as usize,
                rest.as_ptr() as usize,
                rest.len(),
                0,
                0,
                0,
            )
        }) {
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
    const PR_SET_NAME: usize = 15;
    // SAFETY: the caller vouches for name.
    retry(|| unsafe { syscall6(arch::SYS_PRCTL, PR_SET_NAME, name as usize, 0, 0, 0, 0) }).map(drop)
}

/// `exit_group(status)`.
pub fn exit(status: i32) -> ! {
    loop {
        // SAFETY: exit_group touches no memory and does not return.
        unsafe { syscall6(arch::SYS_EXIT_GROUP, status as usize, 0, 0, 0, 0, 0) };
    }
}

pub const MAP_PRIVATE: usize = 0x02;
pub const MAP_FIXED: usize = 0x10;
pub const MAP_ANONYMOUS: usize = 0x20;
pub const MAP_FIXED_NOREPLACE: usize = 0x10_0000;

/// `mmap(2)`. Returns the address.
///
/// # Safety
/// With `MAP_FIXED` the range must not hold anything still in use.
pub unsafe fn mmap(addr: usize, len: usize, prot: u32, flags: usize, fd: i32, offset: u64) -> Result<usize, Errno> {
    // SAFETY: forwarded contract; mmap does not fail with EINTR.
    result(unsafe { arch::mmap(addr, len, prot as usize, flags, fd as usize, offset) })
}

/// `mprotect(2)`.
///
/// # Safety
/// Removing access must not break memory that is still referenced.
pub unsafe fn mprotect(addr: usize, len: usize, prot: u32) -> Result<(), Errno> {
    // SAFETY: forwarded contract.
    result(unsafe { syscall6(arch::SYS_MPROTECT, addr, len, prot as usize, 0, 0, 0) }).map(drop)
}

/// `munmap(2)`.
///
/// # Safety
/// The range must hold nothing still in use.
pub unsafe fn munmap(addr: usize, len: usize) -> Result<(), Errno> {
    // SAFETY: forwarded contract.
    result(unsafe { syscall6(arch::SYS_MUNMAP, addr, len, 0, 0, 0, 0) }).map(drop)
}

/// `socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)`.
pub fn unix_socket() -> Result<i32, Errno> {
    const AF_UNIX: usize = 1;
    const SOCK_STREAM_CLOEXEC: usize = 1 | 0o2_000_000;
    // SAFETY: socket touches no memory.
    retry(|| unsafe { syscall6(arch::SYS_SOCKET, AF_UNIX, SOCK_STREAM_CLOEXEC, 0, 0, 0, 0) }).map(|fd| fd as i32)
}

/// `connect(fd, {AF_UNIX, path})`; `path` has no NUL and is shorter than
/// `sun_path`.
pub fn connect_unix(fd: i32, path: &[u8]) -> Result<(), Errno> {
    // sockaddr_un: sa_family_t (u16) then 108 bytes of path.
    let mut addr = [0u8; 110];
    addr[0] = 1; // AF_UNIX, little-endian u16 on every supported target
    for (slot, &b) in addr[2..109].iter_mut().zip(path) {
        *slot = b;
    }
    // SAFETY: addr is a live sockaddr_un of the length passed.
    retry(|| unsafe {
        syscall6(
            arch::SYS_CONNECT,
            fd as usize,
            addr.as_ptr() as usize,
            addr.len(),
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IoVec {
    pub base: usize,
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
    const MSG_NOSIGNAL: usize = 0x4000;
    let msg = MsgHdr {
        name: 0,
        namelen: 0,
        iov: iov.as_ptr() as usize,
        iovlen: iov.len(),
        control: 0,
        controllen: 0,
        flags: 0,
    };
    // SAFETY: msg and the iovecs it points at are live; the caller vouches
    // for the buffers.
    retry(|| unsafe {
        syscall6(
            arch::SYS_SENDMSG,
            fd as usize,
            &msg as *const MsgHdr as usize,
            MSG_NOSIGNAL,
            0,
            0,
            0,
        )
    })
}

/// `recvmsg(fd, buf, MSG_CMSG_CLOEXEC)` with room for one `SCM_RIGHTS`
/// descriptor: the bytes received and the descriptor, if one came.
pub fn recv_fd(fd: i32, buf: &mut [u8]) -> Result<(usize, Option<i32>), Errno> {
    const MSG_CMSG_CLOEXEC: usize = 0x4000_0000;
    const SOL_SOCKET: u32 = 1;
    const SCM_RIGHTS: u32 = 1;
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
    // SAFETY: msg, iov, buf and control are live and writable for the
    // lengths given.
    let n = retry(|| unsafe {
        syscall6(
            arch::SYS_RECVMSG,
            fd as usize,
            &mut msg as *mut MsgHdr as usize,
            MSG_CMSG_CLOEXEC,
            0,
            0,
            0,
        )
    })?;
    let header = W + 8;
    let level_type = (control[1] as u64 & 0xffff_ffff, control[1] as u64 >> 32);
    let (len, level, kind, data) = if W == 8 {
        (
            control[0],
            level_type.0 as u32,
            level_type.1 as u32,
            control[2] as u32 as i32,
        )
    } else {
        (
            control[0],
            control[1] as u32,
            control[2] as u32,
            control[3] as u32 as i32,
        )
    };
    let got = (msg.controllen >= header + 4 && len >= header + 4 && level == SOL_SOCKET && kind == SCM_RIGHTS)
        .then_some(data);
    Ok((n, got))
}

/// `getcwd(buf, len)`: the length of the path, without its NUL.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes.
pub unsafe fn getcwd(buf: *mut u8, len: usize) -> Result<usize, Errno> {
    // SAFETY: the caller vouches for buf.
    let n = retry(|| unsafe { syscall6(arch::SYS_GETCWD, buf as usize, len, 0, 0, 0, 0) })?;
    Ok(n.saturating_sub(1))
}
