//! A throwaway jail for `ldchain run`: a private mount namespace (inside a
//! new user namespace when not root) with a tmpfs root holding read-only
//! binds of the host's `/usr` and `/etc`, the
//! host's top-level symlinks (`/bin`, `/lib`, …) recreated — but **no
//! `/lib64`** — a minimal `/dev`, a fresh `/tmp`, and an empty `/proc` on
//! which the jail's init mounts its own PID namespace's (`crate::boundary`).
//!
//! Without `/lib64`, the `PT_INTERP` of the host's x86-64 programs
//! (`/lib64/ld-linux-x86-64.so.2`) does not exist inside: the kernel cannot
//! run them there, and ldchain can.
//!
//! [`ThrowawayJail::create`] changes the namespaces of the *calling process*
//! (which must be single-threaded for a user namespace); everything it mounts
//! is private to that process and its children, and disappears with them.
//!
//! # Safety
//!
//! `unshare(CLONE_NEWUSER | CLONE_NEWNS)` is called while the process has a
//! single thread (the CLI calls this before starting any), and never with
//! `CLONE_FILES`, the flag that makes rustix mark `unshare` unsafe.
#![allow(unsafe_code)]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use std::os::fd::AsFd;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{self, MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

use crate::confine::IdMaps;
use crate::mount::{attach, clone_tree, set_read_only};

/// Why the throwaway jail could not be built.
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    /// No user namespace for an unprivileged user.
    #[error(
        "cannot create a user namespace ({0}): run as root, or enable unprivileged user namespaces \
         (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone = 1 where that exists, \
         and no AppArmor or seccomp policy forbidding them)"
    )]
    UserNamespace(io::Error),
    /// Any other step.
    #[error("{what}: {source}")]
    Step {
        /// The step that failed ("mounting /proc", ...).
        what: String,
        /// Its system call's error.
        source: io::Error,
    },
}

fn step<T>(what: impl FnOnce() -> String, r: Result<T, impl Into<io::Error>>) -> Result<T, JailError> {
    r.map_err(|e| JailError::Step {
        what: what(),
        source: e.into(),
    })
}

/// The jail; unmounted when dropped.
#[derive(Debug)]
pub struct ThrowawayJail {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    /// Removed by someone else ([`leave`](Self::leave)).
    left: bool,
}

/// The top-level host entries a throwaway jail never gets: the directory of
/// the x86-64 `PT_INTERP` path.
const WITHHELD: &[&str] = &["lib64"];
/// Top-level directories bound read-only when they are real directories
/// (on systems without a merged `/usr`).
const BIND_IF_DIR: &[&str] = &["bin", "sbin", "lib", "lib32", "libx32"];

impl ThrowawayJail {
    /// Build it (see the module docs). The calling process must be
    /// single-threaded. `ids`: see [`enter_private_namespace`].
    pub fn create(ids: Option<(u32, u32)>) -> Result<ThrowawayJail, JailError> {
        enter_private_namespace(ids)?;
        let dir = step(
            || "creating the jail directory".into(),
            tempfile::Builder::new().prefix("ldchain-jail-").tempdir(),
        )?;
        let root = dir.path().to_owned();
        step(
            || format!("mounting a tmpfs at {}", root.display()),
            mount::mount("tmpfs", &root, "tmpfs", MountFlags::NOSUID, c"mode=0755"),
        )?;
        let jail = ThrowawayJail {
            dir: Some(dir),
            root,
            left: false,
        };
        jail.populate()?;
        Ok(jail)
    }

    /// The jail's root directory (valid in this process's mount namespace).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Leave the jail to be removed by someone else (after this process
    /// has ended: [`AfterExit`](crate::boundary::AfterExit)): its root,
    /// to unmount and remove. Dropping the jail then removes nothing.
    pub fn leave(&mut self) -> io::Result<std::ffi::CString> {
        use std::os::unix::ffi::OsStrExt;
        let root = std::ffi::CString::new(self.root.as_os_str().as_bytes())?;
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.left = true;
        Ok(root)
    }

    fn populate(&self) -> Result<(), JailError> {
        let r = &self.root;
        for dir in ["usr", "etc"] {
            bind_read_only(&Path::new("/").join(dir), &r.join(dir))?;
        }
        for entry in step(|| "reading /".into(), fs::read_dir("/"))? {
            let entry = step(|| "reading /".into(), entry)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if WITHHELD.contains(&name.as_ref()) {
                continue;
            }
            let ty = step(|| format!("/{name}"), entry.file_type())?;
            if ty.is_symlink() {
                let target = step(|| format!("reading /{name}"), fs::read_link(entry.path()))?;
                step(
                    || format!("symlink /{name}"),
                    std::os::unix::fs::symlink(&target, r.join(&*name)),
                )?;
            } else if ty.is_dir() && BIND_IF_DIR.contains(&name.as_ref()) {
                bind_read_only(&entry.path(), &r.join(&*name))?;
            }
        }
        // /dev, as bwrap's --dev makes it.
        step(
            || "making /dev".into(),
            crate::view::View::new(r, true).and_then(|mut v| v.dev(Path::new("/dev"))),
        )?;
        // /proc: a mount point; the jail's init mounts its own PID
        // namespace's there (crate::boundary).
        step(|| "mkdir /proc".into(), fs::create_dir(r.join("proc")))?;
        let tmp = r.join("tmp");
        step(|| "mkdir /tmp".into(), fs::create_dir(&tmp))?;
        step(
            || "mounting /tmp".into(),
            mount::mount(
                "tmpfs",
                &tmp,
                "tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV,
                c"mode=1777",
            ),
        )?;
        Ok(())
    }
}

/// Recursive bind of `from` at `to` (created), every mount under it
/// read-only too: the tree is cloned, made read-only while still detached,
/// then attached (no moment where it is writable).
fn bind_read_only(from: &Path, to: &Path) -> Result<(), JailError> {
    step(|| format!("mkdir {}", to.display()), fs::create_dir_all(to))?;
    let open = |p: &Path| rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty());
    let src = step(|| format!("opening {}", from.display()), open(from))?;
    let tree = step(|| format!("binding {}", from.display()), clone_tree(src.as_fd(), c""))?;
    step(
        || format!("making {} read-only", to.display()),
        set_read_only(tree.as_fd(), true),
    )?;
    let dest = step(|| format!("opening {}", to.display()), open(to))?;
    step(
        || format!("binding {}", from.display()),
        attach(tree.as_fd(), dest.as_fd()),
    )
}

impl Drop for ThrowawayJail {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let _ = mount::unmount(&self.root, UnmountFlags::DETACH);
        // Empty once unmounted: one rmdir (TempDir's own removal would
        // list it first); TempDir's if that fails.
        if let Some(dir) = self.dir.take() {
            if rustix::fs::rmdir(dir.path()).is_ok() {
                let _ = dir.keep();
            }
        }
    }
}

/// Move the calling process into a private mount namespace (inside a new
/// user namespace when it is not root: its own uid and gid are mapped to
/// `ids` there, by default to themselves, as bwrap does), with `/` made
/// private so that nothing mounted afterwards is seen outside. The process
/// keeps every capability in its user namespace until it execs. Returns
/// whether the process was privileged. The process must be single-threaded.
pub fn enter_private_namespace(ids: Option<(u32, u32)>) -> Result<bool, JailError> {
    let privileged = rustix::process::getuid().is_root();
    if privileged {
        // SAFETY: see the module docs (no CLONE_FILES).
        step(|| "unshare(CLONE_NEWNS)".into(), unsafe {
            rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)
        })?;
    } else {
        let own = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
        let (uid, gid) = ids.unwrap_or(own);
        let maps = IdMaps::caller_as(uid, gid);
        // SAFETY: single-threaded caller, no CLONE_FILES (module docs).
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) }
            .map_err(|e| JailError::UserNamespace(e.into()))?;
        step(|| "writing the user namespace's id maps".into(), maps.write())?;
    }
    step(
        || "making / private".into(),
        mount::mount_change("/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC),
    )?;
    Ok(privileged)
}
