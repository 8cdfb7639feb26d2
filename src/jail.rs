//! Entering a chroot jail from a child process, as root or, where user
//! namespaces allow it, as an ordinary user.
//!
//! [`Confinement::apply`] installs a `pre_exec` hook on a [`Command`]: after
//! `fork`, the child gets a private mount namespace (inside a new user
//! namespace when it is not root), optionally a recursive bind of the host's
//! `/proc` at `ROOT/proc`, then `chroot(ROOT)` and `chdir("/")`; finally the
//! descriptors to pass on have their close-on-exec flag cleared. The program
//! named on the command is then resolved *inside* the jail.
//!
//! # Safety
//!
//! `pre_exec` hooks run between `fork` and `exec` in a copy of a possibly
//! multi-threaded process: they must be async-signal-safe. The hook below
//! only makes system calls through rustix on data prepared before the fork
//! (`CString`s and byte buffers): it allocates nothing and takes no locks.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use rustix::fs::{Mode, OFlags};
use rustix::io::FdFlags;
use rustix::mount::MountPropagationFlags;
use rustix::thread::UnshareFlags;

/// How a child process is put into a jail. See the module docs.
#[derive(Debug, Clone)]
pub struct Confinement {
    root: CString,
    proc_target: Option<CString>,
    keep: Vec<RawFd>,
    /// `Some((uid_map, gid_map))` when a user namespace is needed.
    userns: Option<(Vec<u8>, Vec<u8>)>,
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl Confinement {
    /// Confine to `root` (a directory on the host).
    pub fn new(root: &Path) -> io::Result<Self> {
        let root = root.canonicalize()?;
        let uid = rustix::process::getuid();
        let userns = if uid.is_root() {
            None
        } else {
            let gid = rustix::process::getgid();
            Some((
                format!("0 {} 1\n", uid.as_raw()).into_bytes(),
                format!("0 {} 1\n", gid.as_raw()).into_bytes(),
            ))
        };
        Ok(Confinement {
            root: cstring(&root)?,
            proc_target: None,
            keep: Vec::new(),
            userns,
        })
    }

    /// Bind the host's `/proc` at `ROOT/proc` (which must exist) inside the
    /// child's private mount namespace.
    pub fn with_proc(mut self) -> io::Result<Self> {
        let root = Path::new(std::ffi::OsStr::from_bytes(self.root.as_bytes()));
        self.proc_target = Some(cstring(&root.join("proc"))?);
        Ok(self)
    }

    /// Let the child inherit `fd` (its close-on-exec flag is cleared in the
    /// child only; the number stays the same).
    pub fn keep_fd(mut self, fd: BorrowedFd<'_>) -> Self {
        self.keep.push(fd.as_raw_fd());
        self
    }

    /// Whether entering needs a user namespace (we are not root).
    pub fn needs_userns(&self) -> bool {
        self.userns.is_some()
    }

    /// Install the hook on `cmd`.
    pub fn apply(&self, cmd: &mut Command) {
        let this = self.clone();
        // SAFETY: the hook is async-signal-safe (module docs): system calls
        // only, on data owned by `this`, prepared before the fork.
        unsafe {
            cmd.pre_exec(move || this.enter().map_err(io::Error::from));
        }
    }

    /// Runs in the child, between fork and exec.
    fn enter(&self) -> rustix::io::Result<()> {
        // SAFETY (both unshare calls): CLONE_NEWNS and CLONE_NEWUSER do not
        // unshare the file table, which is what makes unshare unsafe in rustix.
        match &self.userns {
            None => unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)? },
            Some((uid_map, gid_map)) => {
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS)? };
                write_file(c"/proc/self/setgroups", b"deny")?;
                write_file(c"/proc/self/uid_map", uid_map)?;
                write_file(c"/proc/self/gid_map", gid_map)?;
            }
        }
        rustix::mount::mount_change(c"/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)?;
        if let Some(target) = &self.proc_target {
            rustix::mount::mount_bind_recursive(c"/proc", target.as_c_str())?;
        }
        rustix::process::chroot(self.root.as_c_str())?;
        rustix::process::chdir(c"/")?;
        for &fd in &self.keep {
            // SAFETY: the fd was open in the parent when the command was
            // configured and the caller keeps it open until spawn returns.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            rustix::io::fcntl_setfd(fd, FdFlags::empty())?;
        }
        Ok(())
    }
}

fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> rustix::io::Result<()> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut rest = bytes;
    while !rest.is_empty() {
        match rustix::io::write(&fd, rest) {
            Ok(n) => rest = &rest[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
