//! Opening a file again through procfs: `/proc/self/fd/N` is a magic link
//! to the very inode descriptor N is open on, so no path is walked and
//! nothing can be swapped in — as long as `/proc` is procfs.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

/// procfs's `f_type` (`PROC_SUPER_MAGIC`).
pub(crate) const PROC_SUPER_MAGIC: u64 = 0x9fa0;

/// How a file is opened again for reading: a new open file description,
/// never a controlling terminal, never blocking on a FIFO.
pub(crate) const REOPEN: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

/// Whether `fd` is on procfs.
pub(crate) fn is_procfs(fd: impl AsFd) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|s| s.f_type as u64 == PROC_SUPER_MAGIC)
}

/// Whether this process's `/proc` is procfs: checked once per process.
pub(crate) fn proc_is_procfs() -> bool {
    static PROCFS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROCFS.get_or_init(|| rustix::fs::statfs("/proc/self/fd").is_ok_and(|s| s.f_type as u64 == PROC_SUPER_MAGIC))
}

/// The file `fd` is open on, opened again for reading, once: one `open` of
/// `/proc/self/fd/N` (EOPNOTSUPP if `/proc` is not procfs: then there is
/// no race-free reopen). To reopen many files, hold a [`ProcFd`].
pub(crate) fn reopen(fd: BorrowedFd<'_>) -> rustix::io::Result<OwnedFd> {
    if !proc_is_procfs() {
        return Err(rustix::io::Errno::OPNOTSUPP);
    }
    let magic = format!("/proc/self/fd/{}", fd.as_raw_fd());
    rustix::fs::open(magic.as_str(), REOPEN, Mode::empty())
}

/// This process's `/proc/self/fd`, held open (valid for the process that
/// opened it: a forked child has its own descriptor table).
#[derive(Debug)]
pub struct ProcFd(OwnedFd);

impl ProcFd {
    /// Open it; EOPNOTSUPP if `/proc` is not procfs (then there is no
    /// race-free reopen).
    pub fn open() -> std::io::Result<ProcFd> {
        if !proc_is_procfs() {
            return Err(rustix::io::Errno::OPNOTSUPP.into());
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(ProcFd(rustix::fs::open("/proc/self/fd", flags, Mode::empty())?))
    }

    /// The file `fd` is open on, opened again for reading: a new open file
    /// description of that inode, read permission checked now (with the
    /// calling thread's rights).
    pub fn reopen(&self, fd: BorrowedFd<'_>) -> rustix::io::Result<OwnedFd> {
        let name = fd.as_raw_fd().to_string();
        rustix::fs::openat(&self.0, name.as_str(), REOPEN, Mode::empty())
    }
}
