//! Noticing that a namespace changed, without looking at it again.
//!
//! A search's outcome depends on (a) the entries and permissions of every
//! directory its lookups looked names up in, (b) the bytes and attributes
//! of every file it read or checked, and (c) the mounts on the way. A
//! [`Changes`] sees each: an inotify watch on every directory a traced
//! path passes through — symbolic links followed inside the root, so a
//! link's *target* directories are watched too — and on the file at its
//! end (a write, a chmod, an ACL or a file capability set, a rename over
//! it); and `/proc/thread-self/mountinfo`, which `poll` reports
//! (`POLLPRI`) once the mount table of the namespace it was opened in
//! changes. One `poll` of both, with no wait, tells whether anything
//! happened since the last one. Kernel events are queued by the system
//! call that made the change, before it returns: a change made before a
//! plan begins is seen by that plan.
//!
//! What inotify does not report — a write through a shared writable
//! mapping, a change made on another machine to a network or FUSE file
//! system — is covered by the callers: each file at a traced path's end
//! is kept open and its identity (device, inode, size, mtime, ctime)
//! compared again on every use (a mapping's write moves the mtime), and
//! only file systems whose every change passes through this kernel are
//! traced ([`LOCAL_FILE_SYSTEMS`]). Mounts are seen only in the mount
//! namespace `mountinfo` was opened in: a namespace whose root is
//! mounted elsewhere is never trusted to be unchanged
//! ([`Changes::sees_mounts_of`]).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags};
use rustix::fs::inotify::{self, WatchFlags};
use rustix::fs::{self as rfs, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::fileid::FileId;
use crate::ns::Namespace;

/// File systems (`f_type`) whose every change is made through this
/// kernel's VFS, so inotify reports it: ext2/3/4, XFS, Btrfs, tmpfs,
/// ramfs, F2FS, overlayfs (its layers must not change under it), bcachefs.
pub const LOCAL_FILE_SYSTEMS: [i64; 8] = [
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0x8584_58f6,
    0xF2F5_2010,
    0x794c_7630,
    0xca45_1a4e,
];

/// Most inotify watches one [`Changes`] holds (each counts against the
/// user's `max_user_watches`); past it, every watch is removed and the
/// caller starts over.
pub const MAX_WATCHES: usize = 4096;
/// Most components (and symbolic links, at most 40 as the kernel's
/// `MAXSYMLINKS`) one traced path may take.
const MAX_TRACE_STEPS: usize = 256;

/// What a trace found at the ends of its paths: each regular file, kept
/// open (`O_PATH`) with its identity then, to compare again on each use.
#[derive(Debug, Default)]
pub struct Traced {
    /// (device, inode) → the file and its identity when traced.
    pub files: HashMap<(u64, u64), (Arc<OwnedFd>, FileId)>,
    /// The paths traced, as given.
    pub paths: HashSet<Vec<u8>>,
}

/// Why a trace could not vouch for its paths (the answer must then not be
/// kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untraceable {
    /// More watches than [`MAX_WATCHES`]: the caller should start over.
    TooManyWatches,
    /// A path too long or too costly, a file system not in
    /// [`LOCAL_FILE_SYSTEMS`], a root mounted outside the watched mount
    /// namespace, or a system call that failed.
    No,
}

/// Changes in what was traced: an inotify instance and the mount table.
#[derive(Debug)]
pub struct Changes {
    /// Shared with whoever holds it past this process's end
    /// ([`instance`](Self::instance)).
    inotify: Arc<OwnedFd>,
    /// `/proc/thread-self/mountinfo` of the thread that made this.
    mounts: OwnedFd,
    /// The same table opened again for [`waitable`](Self::waitable): each
    /// open file has its own record of the changes it reported, so a wait
    /// that reports one leaves it to be reported to [`changed`](Self::changed) too.
    wait_mounts: Option<OwnedFd>,
    /// Inodes watched since the last change (so a trace adds no watch
    /// twice), and every watch descriptor added (the kernel gives an inode
    /// watched already its descriptor again).
    watched: HashSet<(u64, u64)>,
    wds: HashSet<i32>,
    /// Mount ids found in the watched mount namespace (emptied on any
    /// change).
    local_mounts: HashMap<u64, bool>,
    /// Watches the current trace may still add.
    room: usize,
    /// Devices whose file system is in [`LOCAL_FILE_SYSTEMS`] (emptied on
    /// any change).
    local_devices: HashSet<u64>,
}

impl Changes {
    /// An inotify instance and the calling thread's mount table, or None
    /// if either is unavailable (nothing can then be trusted unchanged).
    pub fn new() -> Option<Changes> {
        let inotify = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        let mounts = rfs::open("/proc/thread-self/mountinfo", flags, Mode::empty()).ok()?;
        Some(Changes {
            inotify: Arc::new(inotify),
            mounts,
            wait_mounts: None,
            watched: HashSet::new(),
            wds: HashSet::new(),
            local_mounts: HashMap::new(),
            room: 0,
            local_devices: HashSet::new(),
        })
    }

    /// Whether anything watched, or the mount table, changed since the
    /// last call: one `poll` with no wait (the pending events are then
    /// read and dropped).
    pub fn changed(&mut self) -> bool {
        let mut fds = [
            PollFd::new(&*self.inotify, PollFlags::IN),
            PollFd::new(&self.mounts, PollFlags::PRI),
        ];
        let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(0) => false,
            Ok(_) => {
                self.reported();
                true
            }
            // Cannot tell: changed.
            Err(_) => {
                self.forget_seen();
                true
            }
        }
    }

    /// The caller learned of a change another way (a wait on
    /// [`waitable`](Self::waitable) reported it, and consumed the mount
    /// table's report): drop the pending events and look at everything
    /// again, as [`changed`](Self::changed) does when it sees one.
    pub fn reported(&mut self) {
        drain(&self.inotify);
        self.forget_seen();
    }

    /// After a change, look at everything again: a device may be mounted
    /// again, as another file system (a report a wait consumed is not seen
    /// here); and an inode whose watch the kernel removed when it was
    /// deleted may be numbered again at once for a new file or directory
    /// (ext4 does), which the next trace must watch, not skip as watched.
    fn forget_seen(&mut self) {
        self.local_mounts.clear();
        self.local_devices.clear();
        self.watched.clear();
    }

    /// The inotify instance. Its last close, once it has watched
    /// anything, waits for an SRCU grace period (8–16 ms measured, every
    /// time): hold it where that wait costs nothing (a process that
    /// outlives this one).
    pub fn instance(&self) -> Arc<OwnedFd> {
        self.inotify.clone()
    }

    /// One descriptor to wait on for both (an epoll instance: readable
    /// when inotify has events or the mount table changed). It watches the
    /// mount table through an open file of its own (kept here): a wait
    /// that reports a change consumes that file's report only, and
    /// [`changed`](Self::changed) still reports the change to whoever
    /// looks next. (Through one shared file, a thread answering between
    /// another's wait and its refresh saw no change and gave an answer
    /// from before the mount.)
    pub fn waitable(&mut self) -> std::io::Result<OwnedFd> {
        use rustix::event::epoll;
        let mounts = crate::procfd::reopen(self.mounts.as_fd())?;
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&ep, &*self.inotify, epoll::EventData::new_u64(0), epoll::EventFlags::IN)?;
        epoll::add(&ep, &mounts, epoll::EventData::new_u64(1), epoll::EventFlags::PRI)?;
        self.wait_mounts = Some(mounts);
        Ok(ep)
    }

    /// Remove every watch (the caller drops everything they vouched for).
    pub fn reset(&mut self) {
        for wd in self.wds.drain() {
            let _ = inotify::remove_watch(&*self.inotify, wd);
        }
        self.watched.clear();
        drain(&self.inotify);
    }

    /// Whether mounts under `ns`'s root are seen: its root's mount is in
    /// the mount namespace whose table is watched (a mount's children are
    /// in its namespace). Read from the table once per mount id until it
    /// changes.
    pub fn sees_mounts_of(&mut self, ns: &Namespace) -> bool {
        let id = ns.root_mount();
        if id == 0 {
            return false;
        }
        if let Some(&seen) = self.local_mounts.get(&id) {
            return seen;
        }
        let seen = mount_listed(&self.mounts, id);
        self.local_mounts.insert(id, seen);
        seen
    }

    /// Watch every directory each of `paths` (absolute, inside `ns`)
    /// passes through and the file or directory at its end, symbolic links
    /// followed inside the root as `RESOLVE_IN_ROOT` follows them; a path
    /// ends early where a component is missing (its directory is watched,
    /// so the component's creation is seen). Made with the calling thread's
    /// own rights. Regular files at the ends go to `into`. At most
    /// `max_new` watches are added (else `No`: too wide to watch).
    pub fn trace(
        &mut self,
        ns: &Namespace,
        paths: &[Vec<u8>],
        into: &mut Traced,
        max_new: usize,
    ) -> Result<(), Untraceable> {
        if !self.sees_mounts_of(ns) {
            return Err(Untraceable::No);
        }
        self.room = max_new;
        let root = ns.root_fd();
        let st = rfs::fstat(root).map_err(|_| Untraceable::No)?;
        self.watch(root, &st)?;
        for path in paths {
            if !into.paths.insert(path.clone()) {
                continue;
            }
            self.trace_one(root, path, into)?;
        }
        Ok(())
    }

    fn trace_one(&mut self, root: BorrowedFd<'_>, path: &[u8], into: &mut Traced) -> Result<(), Untraceable> {
        if path.len() >= crate::limits::PATH_MAX {
            return Err(Untraceable::No);
        }
        let mut todo: Vec<Vec<u8>> = components(path).rev().collect();
        // The directories walked (none: the root).
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let (mut steps, mut links) = (0, 0);
        while let Some(name) = todo.pop() {
            steps += 1;
            if steps > MAX_TRACE_STEPS {
                return Err(Untraceable::No);
            }
            if name == b".." {
                dirs.pop();
                continue;
            }
            let here = dirs.last().map_or(root, |d| d.as_fd());
            let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rfs::openat(here, name.as_slice(), flags, Mode::empty()) {
                Ok(fd) => fd,
                // The lookup ends here; `here` is watched.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::ACCESS | Errno::NAMETOOLONG) => return Ok(()),
                Err(_) => return Err(Untraceable::No),
            };
            let st = rfs::fstat(&fd).map_err(|_| Untraceable::No)?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => {
                    links += 1;
                    if links > crate::walk::MAX_SYMLINKS {
                        return Ok(());
                    }
                    let text = rfs::readlinkat(&fd, "", Vec::new()).map_err(|_| Untraceable::No)?;
                    let text = text.into_bytes();
                    if text.starts_with(b"/") {
                        dirs.clear();
                    }
                    todo.extend(components(&text).rev());
                }
                FileType::Directory => {
                    self.watch(fd.as_fd(), &st)?;
                    dirs.push(fd);
                }
                FileType::RegularFile if todo.is_empty() => {
                    self.watch(fd.as_fd(), &st)?;
                    into.files
                        .entry((st.st_dev, st.st_ino))
                        .or_insert_with(|| (Arc::new(fd), FileId::of(&st)));
                }
                // Another type, or a file with components after it (ENOTDIR).
                _ => {
                    self.watch(fd.as_fd(), &st)?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Watch the inode `fd` is open on (`st`: its `fstat`), once, if its
    /// file system reports every change (asked once per device).
    fn watch(&mut self, fd: BorrowedFd<'_>, st: &rfs::Stat) -> Result<(), Untraceable> {
        if self.watched.contains(&(st.st_dev, st.st_ino)) {
            return Ok(());
        }
        if !self.local_devices.contains(&st.st_dev) {
            let fs = rfs::fstatfs(fd).map_err(|_| Untraceable::No)?;
            if !LOCAL_FILE_SYSTEMS.contains(&(fs.f_type as i64)) {
                return Err(Untraceable::No);
            }
            self.local_devices.insert(st.st_dev);
        }
        if self.room == 0 {
            return Err(Untraceable::No);
        }
        if self.wds.len() >= MAX_WATCHES {
            return Err(Untraceable::TooManyWatches);
        }
        self.room -= 1;
        let flags = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF;
        let magic = format!("/proc/self/fd/{}", fd.as_raw_fd());
        let wd = inotify::add_watch(&*self.inotify, magic.as_str(), flags).map_err(|_| Untraceable::No)?;
        self.watched.insert((st.st_dev, st.st_ino));
        self.wds.insert(wd);
        Ok(())
    }
}

/// Whether every file in `files` still has the identity it had: one
/// `fstat` each.
pub fn unchanged<'a>(files: impl IntoIterator<Item = &'a (Arc<OwnedFd>, FileId)>) -> bool {
    files
        .into_iter()
        .all(|(fd, id)| rfs::fstat(&**fd).is_ok_and(|st| FileId::of(&st) == *id))
}

/// The components of `path`, without empty ones and `.`.
fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

/// Read every pending inotify event.
fn drain(inotify: &OwnedFd) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = rustix::io::read(inotify, &mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// Whether mount `id` is a line of the mount table open as `mounts`.
fn mount_listed(mounts: &OwnedFd, id: u64) -> bool {
    let want = format!("{id} ");
    let mut table = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        match rustix::io::pread(mounts, &mut chunk, table.len() as u64) {
            Ok(0) => break,
            Ok(n) => table.extend_from_slice(&chunk[..n]),
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        }
        if table.len() > 64 << 20 {
            return false;
        }
    }
    table
        .split(|&b| b == b'\n')
        .any(|line| line.starts_with(want.as_bytes()))
}
