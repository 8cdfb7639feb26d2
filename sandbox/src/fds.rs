//! Descriptors a caller hands ldchain by number on its command line
//! (bwrap's `--file FD`, `--seccomp FD`, `--info-fd FD`, …).
//!
//! # Safety
//!
//! [`inherited`] turns a number into an [`OwnedFd`] only if the descriptor
//! is open, is not 0, 1 or 2 (which std's stdio uses), and has not been
//! taken before in this process: so no two owners ever close it.
#![allow(unsafe_code)]

use std::collections::HashSet;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

static TAKEN: Mutex<Option<HashSet<RawFd>>> = Mutex::new(None);

/// Take ownership of descriptor `n`, which this process inherited from its
/// parent for this purpose. Fails for 0, 1, 2, a closed descriptor, or one
/// taken already.
pub fn inherited(n: RawFd) -> io::Result<OwnedFd> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("descriptor {n}: {why}"));
    if n < 3 {
        return Err(bad("0, 1 and 2 cannot be taken"));
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    if taken.contains(&n) {
        return Err(bad("named twice"));
    }
    // SAFETY: fcntl(F_GETFD) on any number only checks that it is open.
    if unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return Err(bad("not open"));
    }
    taken.insert(n);
    // SAFETY: open (checked above), not stdio, and owned by no one else in
    // this process: every other taker goes through this function.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Everything readable from `fd` until end of file, at most `limit` bytes
/// (more is an error that names the limit).
pub fn read_all(fd: &OwnedFd, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = rustix::io::retry_on_intr(|| rustix::io::read(fd, &mut buf))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(io::Error::other(format!("more than {limit} bytes to read (the limit)")));
        }
        out.extend_from_slice(&buf[..n]);
    }
}
