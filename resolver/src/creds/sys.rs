//! The three system calls rustix does not wrap: `setfsuid`, `setfsgid`
//! (per thread; glibc's wrappers are plain system calls, but the raw ones
//! leave no doubt) and `getsockopt(SO_PEERGROUPS)`. The only `unsafe` of
//! the resolver outside `exec.rs`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The 32-bit-id system calls: on i386 and 32-bit Arm the plain ones take
/// 16-bit ids.
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
const SYS: (libc::c_long, libc::c_long) = (libc::SYS_setfsuid32, libc::SYS_setfsgid32);
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
const SYS: (libc::c_long, libc::c_long) = (libc::SYS_setfsuid, libc::SYS_setfsgid);

/// `setfsuid(uid)`: returns the previous fs uid; an invalid id (`-1`)
/// changes nothing, so it also reads the current one.
fn setfsuid(uid: u32) -> u32 {
    // SAFETY: setfsuid takes one integer and touches no memory.
    unsafe { libc::syscall(SYS.0, uid as libc::c_long) as u32 }
}

/// `setfsgid(gid)`, as [`setfsuid`].
fn setfsgid(gid: u32) -> u32 {
    // SAFETY: setfsgid takes one integer and touches no memory.
    unsafe { libc::syscall(SYS.1, gid as libc::c_long) as u32 }
}

/// The calling thread's fs uid.
pub fn fsuid() -> u32 {
    setfsuid(u32::MAX)
}

/// The calling thread's fs gid.
pub fn fsgid() -> u32 {
    setfsgid(u32::MAX)
}

/// Set the calling thread's fs uid; the call reports no error, so the
/// result is read back (EPERM if it did not take).
pub fn set_fsuid(uid: u32) -> io::Result<()> {
    setfsuid(uid);
    if fsuid() == uid {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }
}

/// Set the calling thread's fs gid, as [`set_fsuid`].
pub fn set_fsgid(gid: u32) -> io::Result<()> {
    setfsgid(gid);
    if fsgid() == gid {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }
}

/// The supplementary groups of the peer of a connected Unix socket
/// (`SO_PEERGROUPS`, Linux ≥ 4.13), as of its `connect()`.
pub fn peer_groups(socket: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the buffer is `len` bytes of writable, initialized memory
        // owned by `groups`; the kernel writes at most `len` bytes and sets
        // `len` to what it wrote (or needs).
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if r == 0 {
            groups.truncate(n);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        // ERANGE: the buffer was too small; `len` says how much is needed
        // (at most NGROUPS_MAX, 65,536 groups).
        if e.raw_os_error() == Some(libc::ERANGE) && n > groups.len() && n <= 65536 {
            groups.resize(n, 0);
            continue;
        }
        return Err(e);
    }
}
