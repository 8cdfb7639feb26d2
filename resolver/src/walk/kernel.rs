//! The kernel's own lookup, as every walk starts it, and why a lookup fails
//! (a leaf of the walk: it imports nothing of the crate).

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Why a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The system's answer (`ENOENT`, `ENOTDIR`, `ELOOP`, ...).
    Errno(Errno),
    /// The lookup ran out of its budget.
    OverBudget,
}

impl From<Errno> for Failure {
    fn from(e: Errno) -> Failure {
        Failure::Errno(e)
    }
}

/// The flags every lookup adds: stay in the root, never a magic link.
const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Bounded retries of `EAGAIN` (a rename raced the kernel's lookup).
const EAGAIN_RETRIES: usize = 32;

/// `openat2(root, path, flags, extra | RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`,
/// retrying `EAGAIN` and `EINTR` a bounded number of times.
pub fn openat2(root: BorrowedFd<'_>, path: &[u8], flags: OFlags, extra: ResolveFlags) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rfs::openat2(root, path, flags, Mode::empty(), RESOLVE | extra) {
            Err(Errno::AGAIN | Errno::INTR) if tries < EAGAIN_RETRIES => tries += 1,
            r => return r,
        }
    }
}
