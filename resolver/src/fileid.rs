//! A file version's identity (a leaf: it imports nothing of the crate).

use rustix::fs as rfs;

/// Identity of a file version: a cached parse is valid while it is equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// The device holding it (`st_dev`): with `ino`, which file it is.
    pub dev: u64,
    /// Its inode number on that device (`st_ino`).
    pub ino: u64,
    /// Size in bytes (`st_size`); with the modification time, what tells a
    /// file rewritten in place from the version a cache saw.
    pub size: u64,
    /// Modification time, seconds (`st_mtime`).
    pub mtime: i64,
    /// Modification time, nanoseconds (`st_mtime_nsec`): two writes within
    /// one second differ here.
    pub mtime_nsec: i64,
    /// Change time, seconds (`st_ctime`): unlike the modification time it
    /// cannot be set back (`touch -d`, `utimensat`), and every write or
    /// `utimensat` moves it, so a file rewritten in place with its mtime
    /// restored still differs here.
    pub ctime: i64,
    /// Change time, nanoseconds (`st_ctime_nsec`).
    pub ctime_nsec: i64,
}

impl FileId {
    /// The identity `fstat` gave.
    pub(crate) fn of(st: &rfs::Stat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec as i64,
            ctime: st.st_ctime,
            ctime_nsec: st.st_ctime_nsec as i64,
        }
    }
}
