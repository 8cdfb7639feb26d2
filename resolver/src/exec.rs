//! Materialising a plan in the process that execs it: each descriptor
//! placed without close-on-exec, its number written into argv, then
//! `execve` (or `execveat`).
//!
//! [`ExecPlan::prepare`] does everything that allocates or can fail on bad
//! input (a NUL byte); [`Prepared::exec`] only makes system calls, so it is safe to call
//! between `fork` and `exec` (for example from `Command::pre_exec`).
//!
//! # Safety
//!
//! `Prepared` holds C-style argv/envp pointer arrays that point into
//! `CString`s it owns and never mutates after construction; the pointers
//! stay valid for its lifetime, whichever thread or forked child reads them.
#![allow(unsafe_code)]

use std::ffi::{c_char, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use crate::error::ExecError;
use crate::plan::{Arg, ExecPlan, Target};

/// A plan turned into what `execve` takes, by [`ExecPlan::prepare`]: argv
/// and envp as C strings and pointer arrays, each descriptor argument
/// written as its number and made inheritable.
///
/// Preparing does everything that allocates or can fail on bad input (a
/// NUL byte); [`exec`](Self::exec) only makes system calls, so it may be
/// called between `fork` and `exec` of a multi-threaded process (from
/// `Command::pre_exec`, or a sandbox's own hook).
pub struct Prepared {
    target: PreparedTarget,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
    fds: Vec<OwnedFd>,
}

enum PreparedTarget {
    Path(CString),
    Fd(OwnedFd),
}

// SAFETY: the raw pointers point into CStrings owned by the same struct and
// never written after construction (module docs).
unsafe impl Send for Prepared {}
// SAFETY: as above; `exec` only reads them.
unsafe impl Sync for Prepared {}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("argv", &self._argv)
            .finish_non_exhaustive()
    }
}

fn cstring(bytes: Vec<u8>, what: &str) -> Result<CString, ExecError> {
    CString::new(bytes).map_err(|_| ExecError::InvalidArgument {
        what: what.to_owned(),
        reason: "contains a NUL byte",
        errno: libc::EINVAL,
    })
}

impl ExecPlan {
    /// Build everything `execve` needs: each descriptor argument becomes
    /// its descriptor's number. Fails only on a NUL byte (EINVAL).
    pub fn prepare<E: AsRef<[u8]>>(self, envp: &[E]) -> Result<Prepared, ExecError> {
        let mut fds = Vec::new();
        let argv = self
            .argv
            .into_iter()
            .map(|a| match a {
                Arg::Str(s) => cstring(s, "argument"),
                Arg::Fd(fd) => {
                    let number = fd.as_raw_fd().to_string();
                    fds.push(fd);
                    cstring(number.into_bytes(), "argument")
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let envp = envp
            .iter()
            .map(|e| cstring(e.as_ref().to_vec(), "environment entry"))
            .collect::<Result<Vec<_>, _>>()?;
        let target = match self.target {
            Target::Path(p) => PreparedTarget::Path(cstring(p, "program path")?),
            Target::Fd(fd) => PreparedTarget::Fd(fd),
        };
        let argv_ptrs = argv.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
        let envp_ptrs = envp.iter().map(|e| e.as_ptr()).chain([std::ptr::null()]).collect();
        Ok(Prepared {
            target,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
            fds,
        })
    }

    /// Materialise and exec in this process. Returns only on failure, after
    /// closing the plan's descriptors.
    pub fn exec<E: AsRef<[u8]>>(self, envp: &[E]) -> ExecError {
        match self.prepare(envp) {
            Ok(p) => {
                let err = p.exec();
                drop(p);
                ExecError::Io {
                    path: "execve".into(),
                    source: err,
                }
            }
            Err(e) => e,
        }
    }
}

impl Prepared {
    /// Clear close-on-exec on the plan's descriptors and exec. Returns only
    /// on failure (the descriptors are then back to close-on-exec, so a
    /// failed exec leaks nothing into a later one). Async-signal-safe.
    pub fn exec(&self) -> io::Error {
        if let Err(e) = inherit_fds(self.fds.iter().map(AsFd::as_fd)) {
            return e.into();
        }
        // SAFETY: argv_ptrs/envp_ptrs are NULL-terminated arrays of pointers
        // to NUL-terminated strings owned by self (module docs).
        let ret = unsafe {
            match &self.target {
                PreparedTarget::Path(p) => libc::execve(p.as_ptr(), self.argv_ptrs.as_ptr(), self.envp_ptrs.as_ptr()),
                PreparedTarget::Fd(fd) => libc::syscall(
                    libc::SYS_execveat,
                    fd.as_fd().as_raw_fd() as libc::c_long,
                    c"".as_ptr(),
                    self.argv_ptrs.as_ptr(),
                    self.envp_ptrs.as_ptr(),
                    libc::AT_EMPTY_PATH as libc::c_long,
                ) as libc::c_int,
            }
        };
        debug_assert_eq!(ret, -1);
        let err = io::Error::last_os_error();
        for fd in &self.fds {
            let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
        }
        err
    }
}

/// Clear close-on-exec on each of `fds`, so the next `exec` passes them on
/// with their numbers. Async-signal-safe (one `fcntl` each): for a child
/// between `fork` and `exec`. Stops at the first failure.
pub fn inherit_fds<'a>(fds: impl IntoIterator<Item = BorrowedFd<'a>>) -> rustix::io::Result<()> {
    fds.into_iter()
        .try_for_each(|fd| rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()))
}
