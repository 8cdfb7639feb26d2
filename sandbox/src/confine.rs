//! Entering a chroot jail from a child process, as root or, where user
//! namespaces allow it, as an ordinary user.
//!
//! [`Confinement::apply`] (or [`Confinement::spawn`]) installs a `pre_exec`
//! hook on a [`Command`]: after `fork`, the child gets a private mount
//! namespace (inside a new user namespace when it is not root), optionally a
//! recursive bind of the host's `/proc` at `ROOT/proc`, then `chroot(ROOT)`
//! and `chdir("/")`; finally the descriptors to pass on have their
//! close-on-exec flag cleared. The program named on the command is then
//! resolved *inside* the jail.
//!
//! # Safety
//!
//! `pre_exec` hooks run between `fork` and `exec` in a copy of a possibly
//! multi-threaded process: they must be async-signal-safe. The hook below
//! only makes system calls through rustix on data prepared before the fork
//! (`CString`s and byte buffers): it allocates nothing and takes no locks.
//! The descriptors it passes on are borrowed by the [`Confinement`] for
//! `'fd`, and a confinement that borrows any can only spawn through
//! [`Confinement::spawn`], which uses them before it returns.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

use rustix::fs::{Mode, OFlags};
use rustix::mount::MountPropagationFlags;
use rustix::thread::UnshareFlags;

/// How a child process is put into a jail. See the module docs.
///
/// `'fd` is how long the descriptors it passes on ([`keep_fd`](Self::keep_fd))
/// are borrowed; a confinement that passes none is `Confinement<'static>`.
#[derive(Debug, Clone)]
pub struct Confinement<'fd> {
    root: CString,
    proc_target: Option<CString>,
    keep: Vec<BorrowedFd<'fd>>,
    /// The id maps of the user namespace, when one is needed.
    userns: Option<IdMaps>,
}

/// The uid and gid maps that make the caller root inside a new user
/// namespace, written out before a fork (so writing them allocates nothing).
#[derive(Debug, Clone)]
pub(crate) struct IdMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl IdMaps {
    /// Map root inside to the calling process's uid and gid.
    pub(crate) fn for_caller() -> IdMaps {
        IdMaps::caller_as(0, 0)
    }

    /// Map `uid` and `gid` inside to the calling process's own (the only
    /// ids an unprivileged process may map).
    pub(crate) fn caller_as(uid: u32, gid: u32) -> IdMaps {
        let (outer_uid, outer_gid) = (rustix::process::getuid(), rustix::process::getgid());
        IdMaps {
            uid_map: format!("{uid} {} 1\n", outer_uid.as_raw()).into_bytes(),
            gid_map: format!("{gid} {} 1\n", outer_gid.as_raw()).into_bytes(),
        }
    }

    /// Write them for the calling process, which has just entered its new
    /// user namespace (`setgroups` is denied first, as an unprivileged map
    /// requires). Async-signal-safe.
    pub(crate) fn write(&self) -> rustix::io::Result<()> {
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", &self.uid_map)?;
        write_file(c"/proc/self/gid_map", &self.gid_map)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl Confinement<'static> {
    /// Confine to `root` (a directory on the host).
    pub fn new(root: &Path) -> io::Result<Self> {
        let root = root.canonicalize()?;
        let userns = (!rustix::process::getuid().is_root()).then(IdMaps::for_caller);
        Ok(Confinement {
            root: cstring(&root)?,
            proc_target: None,
            keep: Vec::new(),
            userns,
        })
    }

    /// Install the hook on `cmd`, to run at each later spawn. Only for a
    /// confinement that borrows no descriptors (see
    /// [`spawn`](Confinement::spawn) for one that does).
    pub fn apply(&self, cmd: &mut Command) {
        self.install(cmd);
    }
}

impl<'fd> Confinement<'fd> {
    /// Bind the host's `/proc` at `ROOT/proc` (which must exist) inside the
    /// child's private mount namespace.
    pub fn with_proc(mut self) -> io::Result<Self> {
        let root = Path::new(std::ffi::OsStr::from_bytes(self.root.as_bytes()));
        self.proc_target = Some(cstring(&root.join("proc"))?);
        Ok(self)
    }

    /// Let the child inherit `fd` (its close-on-exec flag is cleared in the
    /// child only; the number stays the same). The confinement borrows it,
    /// so it stays open until the child has been spawned.
    pub fn keep_fd(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.keep.push(fd);
        self
    }

    /// Whether entering needs a user namespace (we are not root).
    pub fn needs_userns(&self) -> bool {
        self.userns.is_some()
    }

    /// Spawn `cmd` confined. `cmd` is consumed, so the hook, which uses the
    /// borrowed descriptors, runs only here, while they are still borrowed
    /// (`spawn` returns once the child has exec'd or failed to).
    ///
    /// ```no_run
    /// # use std::os::fd::AsFd;
    /// let ldso = std::fs::File::open("/lib64/ld-linux-x86-64.so.2")?;
    /// let confinement = ldchain_sandbox::confine::Confinement::new("/srv/jail".as_ref())?.keep_fd(ldso.as_fd());
    /// let child = confinement.spawn(std::process::Command::new("/bin/true"))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(&self, mut cmd: Command) -> io::Result<Child> {
        self.install(&mut cmd);
        cmd.spawn()
    }

    fn install(&self, cmd: &mut Command) {
        let hook = Hook {
            root: self.root.clone(),
            proc_target: self.proc_target.clone(),
            keep: self.keep.iter().map(|fd| fd.as_raw_fd()).collect(),
            userns: self.userns.clone(),
        };
        // SAFETY: the hook is async-signal-safe (module docs): system calls
        // only, on data owned by `hook`, prepared before the fork.
        unsafe {
            cmd.pre_exec(move || hook.enter().map_err(io::Error::from));
        }
    }
}

/// What the child needs, owned by the `pre_exec` closure. The descriptors
/// are numbers here: the closure must be `'static`; [`Confinement`]'s
/// lifetime is what keeps them open (module docs).
struct Hook {
    root: CString,
    proc_target: Option<CString>,
    keep: Vec<RawFd>,
    userns: Option<IdMaps>,
}

impl Hook {
    /// Runs in the child, between fork and exec.
    fn enter(&self) -> rustix::io::Result<()> {
        // SAFETY (both unshare calls): CLONE_NEWNS and CLONE_NEWUSER do not
        // unshare the file table, which is what makes unshare unsafe in rustix.
        match &self.userns {
            None => unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)? },
            Some(maps) => {
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS)? };
                maps.write()?;
            }
        }
        rustix::mount::mount_change(c"/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)?;
        if let Some(target) = &self.proc_target {
            rustix::mount::mount_bind_recursive(c"/proc", target.as_c_str())?;
        }
        rustix::process::chroot(self.root.as_c_str())?;
        rustix::process::chdir(c"/")?;
        // SAFETY: each fd was borrowed by the Confinement that installed
        // this hook, and is open until the spawn that runs it returns.
        ldchain_resolver::inherit_fds(self.keep.iter().map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) }))
    }
}

/// Write all of `bytes` to the file at `path`. Async-signal-safe.
fn write_file(path: &CStr, bytes: &[u8]) -> rustix::io::Result<()> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, rest))?;
        rest = &rest[n..];
    }
    Ok(())
}
