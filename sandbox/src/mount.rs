//! Mounting from descriptors: the few operations the view and the
//! throwaway jail are built from. No path that the jail can change is
//! resolved by the kernel at the moment of mounting: every place is a
//! descriptor opened once, one component at a time, refusing symbolic links
//! ([`open_beneath`]), and trees are cloned, made read-only and attached
//! through descriptors (`open_tree`, `mount_setattr`, `move_mount`).
//!
//! # Safety
//!
//! `mount_setattr` has no wrapper in rustix yet; [`set_attr`] makes the raw
//! system call on a descriptor it borrows and a `struct mount_attr` on its
//! own stack. Nothing else here is unsafe.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree, FsMountFlags,
    FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

/// How symbolic links are refused, twice over: none is followed on the way
/// (`RESOLVE_NO_SYMLINKS`, `ELOOP`), and one in the last place is opened as
/// itself (`O_NOFOLLOW`), which every caller then rejects by its type.
const NO_LINKS: (OFlags, ResolveFlags) = (
    OFlags::NOFOLLOW,
    ResolveFlags::NO_SYMLINKS.union(ResolveFlags::NO_MAGICLINKS),
);

/// How every jail-relative name is resolved: beneath the directory (no
/// `..` out of it, no absolute path), and no link ([`NO_LINKS`]).
const BENEATH: ResolveFlags = ResolveFlags::BENEATH.union(NO_LINKS.1);

/// `name` (one component, or a relative path) under `dir`, opened `O_PATH`:
/// a symbolic link on the way is `ELOOP`, one at the end is opened as
/// itself, `..` out of `dir` is `EXDEV`. `EAGAIN` (a concurrent rename elsewhere) is retried.
pub(crate) fn open_beneath(dir: BorrowedFd<'_>, name: impl AsRef<std::path::Path>) -> io::Result<OwnedFd> {
    let flags = OFlags::PATH | OFlags::CLOEXEC | NO_LINKS.0;
    for _ in 0..64 {
        match rustix::fs::openat2(dir, name.as_ref(), flags, Mode::empty(), BENEATH) {
            Err(rustix::io::Errno::AGAIN) => continue,
            r => return Ok(r?),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

/// A detached copy of the mount tree at `name` under `dir` (`""`: at `dir`
/// itself), every submount included. A symbolic link at `name` is cloned
/// as itself, never followed.
pub(crate) fn clone_tree(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE;
    flags |= if name.is_empty() {
        OpenTreeFlags::AT_EMPTY_PATH
    } else {
        OpenTreeFlags::AT_SYMLINK_NOFOLLOW
    };
    Ok(open_tree(dir, name, flags)?)
}

/// Attach the detached tree `tree` onto the place `onto` names (a
/// descriptor: nothing is looked up).
pub(crate) fn attach(tree: BorrowedFd<'_>, onto: BorrowedFd<'_>) -> io::Result<()> {
    let flags = MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
    Ok(move_mount(tree, c"", onto, c"", flags)?)
}

/// A new tmpfs as a detached mount, with `options` (`mode`, `uid`, `gid`,
/// `size`, …) and the mount attributes `attrs`.
pub(crate) fn new_tmpfs(options: &[(&CStr, &CStr)], attrs: MountAttrFlags) -> io::Result<OwnedFd> {
    Ok(new_fs(c"tmpfs", options, &[], attrs)?)
}

/// A new instance of file system `fstype` as a detached mount: `options`
/// set as strings, `flags` set as flags, with the mount attributes `attrs`.
/// Only system calls on borrowed data: async-signal-safe.
pub(crate) fn new_fs(
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    flags: &[&CStr],
    attrs: MountAttrFlags,
) -> rustix::io::Result<OwnedFd> {
    let fs = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (key, value) in options {
        fsconfig_set_string(&fs, *key, *value)?;
    }
    for flag in flags {
        fsconfig_set_flag(&fs, *flag)?;
    }
    fsconfig_create(&fs)?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
}

/// Make the mount at `mount` (the root of a mount, as [`clone_tree`] or
/// [`new_tmpfs`] return, attached or not) read-only: with `recursive`, every
/// mount under it too.
pub(crate) fn set_read_only(mount: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    set_attrs(mount, recursive, MountAttrFlags::MOUNT_ATTR_RDONLY)
}

/// Set the mount attributes `attrs` (read-only, nosuid, nodev, …) on the
/// mount at `mount`, and with `recursive` on every mount under it.
pub(crate) fn set_attrs(mount: BorrowedFd<'_>, recursive: bool, attrs: MountAttrFlags) -> io::Result<()> {
    set_attr(mount, recursive, u64::from(attrs.bits()))
}

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], {attr_set})`.
fn set_attr(mount: BorrowedFd<'_>, recursive: bool, attr_set: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `mount` is a live descriptor for the duration of the call; the
    // path is a NUL-terminated empty string; `attr` is a valid, initialised
    // `struct mount_attr` whose size is passed with it, and the kernel only
    // reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `/proc/self/fd/N` path of descriptor `fd`: what a call that takes
/// only a path (binding a Unix socket) uses to reach a directory known by
/// descriptor.
pub(crate) fn fd_path(fd: impl AsFd) -> std::path::PathBuf {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()).into()
}
