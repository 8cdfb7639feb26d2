//! Failed walks remembered across searches, each with what decided it.
//!
//! A walk's outcome is a function of the directories it looked names up
//! in and of the symbolic links it read: a directory's entries and
//! permissions (any add, remove, rename or chmod moves its change time,
//! which user space cannot set), the inode each name leads to (mounts
//! included), and each link's text (immutable: replacing a link changes
//! its directory). So a failure is remembered with, for every directory
//! the walk looked in, its symlink-free path from the root and its
//! identity (device, inode, size, mtime, ctime) from an `fstat` taken
//! *before* the walk looked in it, and for every link it read, its device
//! and inode from an `fstatat` taken before the `readlinkat`. It still
//! holds while re-reaching each directory by that path with
//! `openat2(RESOLVE_NO_SYMLINKS)` gives the same identity (a mount on or
//! above it changes the device or inode) and each link is still that
//! inode (a file mounted over a link, which `move_mount` allows, changes
//! it while its directory stays the same). DESIGN.md ("Bounded path
//! lookups") has the reasoning, and why neither `RESOLVE_NO_XDEV` nor the
//! mount id is needed.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rustix::fs::{self as rfs, AtFlags, FileType, OFlags, ResolveFlags};

use super::kernel::Failure;
use crate::fileid::FileId;

/// Most directories and links one remembered failure may depend on: a
/// walk that looked in more is not remembered.
pub const MAX_REMEMBERED: usize = 64;
/// Most failures remembered; the memory is emptied when it is full, as the
/// resolver's other caches are.
pub const MAX_ENTRIES: usize = crate::limits::MAX_CACHE_ENTRIES;
/// Most bytes of paths and names held in all (with a fixed cost per
/// item); past it the memory is emptied as well.
pub const MAX_BYTES: usize = 4 << 20;
/// Only a walk that made at least this many system calls is walked again
/// to be remembered: a real system's lookups (merged `/usr`, Debian's
/// `/lib64`) take under ten, and re-checking them would cost about as much.
pub const MIN_WALK_CALLS: usize = 16;
/// A directory changed less than this long ago is not relied on: a later
/// change within the same tick of the file system's clock (a second on
/// some, two on FAT) could leave its change time as it was.
const SETTLED: Duration = Duration::from_secs(2);

/// What a failure is remembered for: the namespace root (device, inode)
/// and the configuration whose candidates it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    root: (u64, u64),
    conf: u64,
    /// Whose rights the lookups were made with (`Credentials::digest`): a
    /// directory one client cannot search, another can.
    who: u64,
}

impl Scope {
    /// The failures of lookups under the root `root` for the configuration
    /// with identity `conf` (`LdSoConf::identity`), made with `who`'s rights.
    pub fn new(root: (u64, u64), conf: u64, who: Option<&crate::creds::Credentials>) -> Scope {
        Scope {
            root,
            conf,
            who: crate::creds::Credentials::digest(who),
        }
    }
}

/// One remembered failure and what it depends on.
#[derive(Debug)]
pub struct Entry {
    /// How the walk failed.
    pub failure: Failure,
    /// Each directory looked in: its symlink-free path (components joined
    /// by `/`, empty for the root) and identity.
    dirs: Vec<(Vec<u8>, FileId)>,
    /// Each link read: the index of its directory in `dirs`, its name, and
    /// its (device, inode).
    links: Vec<(usize, Vec<u8>, (u64, u64))>,
}

impl Entry {
    /// System calls [`Entry::still_holds`] makes: `fstat` of the root,
    /// `openat2`, `fstat` and `close` for each other directory, an
    /// `fstatat` per link.
    fn checks(dirs: &[(Vec<u8>, FileId)], links: usize) -> usize {
        dirs.iter()
            .map(|(p, _)| if p.is_empty() { 1 } else { 3 })
            .sum::<usize>()
            + links
    }

    /// Whether every directory and link is still what it was, seen from
    /// `root`. Any error (a directory gone, out of descriptors) is a no.
    pub fn still_holds(&self, root: BorrowedFd<'_>) -> bool {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        self.dirs.iter().enumerate().all(|(i, (path, id))| {
            let opened;
            let dir = match path.is_empty() {
                true => root,
                false => match super::kernel::openat2(root, path, flags, ResolveFlags::NO_SYMLINKS) {
                    Ok(fd) => {
                        opened = fd;
                        opened.as_fd()
                    }
                    Err(_) => return false,
                },
            };
            rfs::fstat(dir).is_ok_and(|st| FileId::of(&st) == *id)
                && self
                    .links
                    .iter()
                    .filter(|(at, _, _)| *at == i)
                    .all(|(_, name, want)| link_id(dir, name) == Some(*want))
        })
    }

    /// Bytes this entry holds, for [`MAX_BYTES`].
    fn bytes(&self, key: &[u8]) -> usize {
        let item = std::mem::size_of::<(Vec<u8>, FileId)>();
        key.len()
            + self.dirs.iter().map(|(p, _)| p.len() + item).sum::<usize>()
            + self.links.iter().map(|(_, n, _)| n.len() + item).sum::<usize>()
    }
}

/// (device, inode) of the symbolic link `name` in `dir`; None if it is not
/// a link (or not there).
fn link_id(dir: BorrowedFd<'_>, name: &[u8]) -> Option<(u64, u64)> {
    let st = rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::Symlink).then_some((st.st_dev, st.st_ino))
}

/// What a walk that is to be remembered notes as it goes, before each
/// look into a directory and each read of a link.
#[derive(Debug)]
pub struct Record {
    dirs: Vec<(Vec<u8>, FileId)>,
    links: Vec<(usize, Vec<u8>, (u64, u64))>,
    /// The index in `dirs` of the directory the walk is in.
    current: usize,
    /// Too many items, a failed `fstat`, or a directory changed too
    /// recently: this walk is not remembered.
    unusable: bool,
    /// Change times from this one on are too recent ([`SETTLED`]).
    settled_before: (i64, i64),
}

impl Record {
    /// An empty record, for a walk starting now.
    pub fn new() -> Record {
        let before = SystemTime::now()
            .checked_sub(SETTLED)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .unwrap_or_default();
        Record {
            dirs: Vec::new(),
            links: Vec::new(),
            current: 0,
            unusable: false,
            settled_before: (before.as_secs() as i64, i64::from(before.subsec_nanos())),
        }
    }

    /// The walk is about to look a name up in `dir`, reached by the
    /// symlink-free path `names`. Returns the system calls it made (0 or
    /// 1: each directory is noted once).
    pub fn dir(&mut self, names: &[Vec<u8>], dir: BorrowedFd<'_>) -> usize {
        let path = names.join(&b'/');
        if let Some(i) = self.dirs.iter().position(|(p, _)| *p == path) {
            self.current = i;
            return 0;
        }
        if self.full() {
            return 0;
        }
        match rfs::fstat(dir) {
            Ok(st) => {
                let id = FileId::of(&st);
                self.unusable |= (id.ctime, id.ctime_nsec) >= self.settled_before;
                self.current = self.dirs.len();
                self.dirs.push((path, id));
            }
            Err(_) => self.unusable = true,
        }
        1
    }

    /// The walk is about to read `name`, in the current directory, as a
    /// link. Returns the system calls it made.
    pub fn link(&mut self, dir: BorrowedFd<'_>, name: &[u8]) -> usize {
        if self.full() {
            return 0;
        }
        if let Some(id) = link_id(dir, name) {
            self.links.push((self.current, name.to_vec(), id));
        }
        1
    }

    /// Whether nothing more can be noted (and the walk is not remembered).
    fn full(&mut self) -> bool {
        self.unusable |= self.dirs.len() + self.links.len() >= MAX_REMEMBERED;
        self.unusable
    }
}

/// The failures remembered across searches, bounded ([`MAX_ENTRIES`],
/// [`MAX_BYTES`]). Behind a mutex: a resolver is shared between threads.
#[derive(Debug, Default)]
pub struct Memo {
    map: Mutex<Map>,
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<(Scope, Vec<u8>), Arc<Entry>>,
    bytes: usize,
}

impl Memo {
    fn lock(&self) -> MutexGuard<'_, Map> {
        crate::lock::lock(&self.map)
    }

    /// The failure remembered for the walk of `path` (normalized) in
    /// `scope`, if any; not yet checked.
    pub fn get(&self, scope: Scope, path: &[u8]) -> Option<Arc<Entry>> {
        let map = self.lock();
        if map.entries.is_empty() {
            return None;
        }
        map.entries.get(&(scope, path.to_vec())).cloned()
    }

    /// Forget the failure remembered for `path` in `scope`.
    pub fn forget(&self, scope: Scope, path: &[u8]) {
        let mut map = self.lock();
        if let Some(old) = map.entries.remove(&(scope, path.to_vec())) {
            map.bytes -= old.bytes(path);
        }
    }

    /// Remember that the walk of `path` failed with `failure`, as `record`
    /// noted it — unless the record is unusable, or checking it would cost
    /// as many system calls as the `walk_calls` the walk made.
    pub fn remember(&self, scope: Scope, path: Vec<u8>, failure: Failure, record: Record, walk_calls: usize) -> bool {
        if record.unusable || Entry::checks(&record.dirs, record.links.len()) >= walk_calls {
            return false;
        }
        let entry = Entry {
            failure,
            dirs: record.dirs,
            links: record.links,
        };
        let bytes = entry.bytes(&path);
        let mut map = self.lock();
        if map.entries.len() >= MAX_ENTRIES || map.bytes + bytes > MAX_BYTES {
            map.entries.clear();
            map.bytes = 0;
        }
        map.bytes += bytes;
        if let Some(old) = map.entries.insert((scope, path.clone()), Arc::new(entry)) {
            map.bytes -= old.bytes(&path);
        }
        true
    }

    /// How many failures are remembered, and the bytes they hold.
    pub fn size(&self) -> (usize, usize) {
        let map = self.lock();
        (map.entries.len(), map.bytes)
    }
}
