//! A sandbox's view of the file system: a root directory (and a current
//! directory inside it), opened with chroot semantics.
//!
//! Every open goes through `openat2(root, path, …, RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` semantics: `..` and absolute symlinks stop at the
//! root, so nothing the sandbox arranges can make the trusted server open a
//! host file. A path with a symlink is walked by [`walk`](crate::walk),
//! within a budget.
//! Files are opened `O_PATH` and only a regular file is reopened for reading
//! (through its descriptor), so no FIFO, socket or device driver ever sees
//! an open; reads are capped.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, Mode, OFlags};

use crate::creds::Credentials;
use crate::error::ExecError;
pub use crate::fileid::FileId;
use crate::limits::OVER_BUDGET;
pub use crate::limits::PATH_MAX;
use crate::walk::{self, Budget, Failure, Lookups};

/// An open file and what `fstat` said about it.
#[derive(Debug)]
pub struct Opened {
    /// The descriptor (close-on-exec).
    pub fd: OwnedFd,
    /// File type and permission bits.
    pub mode: u32,
    /// Identity, for caches (its `size` is the file's size).
    pub id: FileId,
}

impl Opened {
    /// Size in bytes, when it was opened.
    pub fn size(&self) -> u64 {
        self.id.size
    }

    /// Whether it is a regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }

    /// Whether it lives on a `noexec` mount (where the kernel refuses to
    /// exec or map it executable). A file system that cannot say counts as
    /// exec-able.
    pub fn on_noexec_mount(&self) -> bool {
        rustix::fs::fstatvfs(&self.fd).is_ok_and(|vfs| vfs.f_flag.contains(rustix::fs::StatVfsMountFlags::NOEXEC))
    }

    /// Whether the calling thread may execute it, as the kernel decides
    /// (`faccessat2(X_OK, AT_EACCESS)` through its `/proc/self/fd` link:
    /// the thread's fs ids, groups and capabilities, ACLs, a `noexec` mount).
    pub fn may_exec(&self) -> bool {
        use std::os::fd::AsRawFd;
        let magic = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        rfs::accessat(rfs::CWD, magic.as_str(), rfs::Access::EXEC_OK, rfs::AtFlags::EACCESS).is_ok()
    }

    /// A short name for its type, for messages.
    pub fn kind(&self) -> &'static str {
        match self.mode & 0o170000 {
            0o100000 => "regular file",
            0o040000 => "directory",
            0o010000 => "FIFO",
            0o020000 => "character device",
            0o060000 => "block device",
            0o140000 => "socket",
            0o120000 => "symbolic link",
            _ => "unknown file type",
        }
    }

    /// Read up to `cap` bytes from offset `offset` (never moving the file
    /// offset).
    pub fn read_at(&self, offset: u64, cap: usize) -> io::Result<Vec<u8>> {
        // Never allocate more than the file holds (plus one byte, to notice
        // growth): callers pass generous caps.
        let cap = cap.min(
            self.size()
                .saturating_sub(offset)
                .saturating_add(1)
                .min(usize::MAX as u64) as usize,
        );
        read_at(&self.fd, offset, cap)
    }

    /// The identity of the file `fd` is open on.
    pub(crate) fn id_of(fd: BorrowedFd<'_>) -> Option<FileId> {
        rfs::fstat(fd).ok().map(|st| FileId::of(&st))
    }

    /// Build an [`Opened`] from a descriptor opened elsewhere (the host ld.so).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Opened> {
        let st = rfs::fstat(&fd)?;
        Ok(Opened::with_stat(fd, &st))
    }

    /// The descriptor with what `fstat` said of it.
    fn with_stat(fd: OwnedFd, st: &rfs::Stat) -> Opened {
        Opened {
            mode: st.st_mode,
            id: FileId::of(st),
            fd,
        }
    }
}

/// Read up to `cap` bytes at `offset` with `pread`, retrying `EINTR`.
pub fn read_at(fd: impl AsFd, offset: u64, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; cap];
    let mut done = 0;
    while done < cap {
        match rustix::io::retry_on_intr(|| rustix::io::pread(fd.as_fd(), &mut buf[done..], offset + done as u64))? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// A sandbox's namespace: its root directory on the host, its current
/// directory inside it, and whose rights files are opened with.
///
/// **Rights.** By default the resolver opens files in the namespace with
/// the calling thread's own rights — for a server running as root, every
/// file. A server acting for a sandboxed process must say whose rights the
/// plan is made with ([`with_credentials`](Self::with_credentials)): then
/// every plan and search in this namespace checks search permission on each
/// directory, read permission on each file it opens and execute permission
/// on the program and its dynamic linker as that process, with no
/// capabilities, as the kernel would for it (see `Credentials`).
#[derive(Debug, Clone)]
pub struct Namespace {
    root: std::sync::Arc<OwnedFd>,
    root_key: (u64, u64),
    /// The mount id of the root's mount (`statx`'s `STATX_MNT_ID`; 0 if
    /// the kernel does not say): lookups below it see that mount's
    /// namespace.
    root_mount: u64,
    /// The current directory inside the namespace, absolute.
    cwd: Vec<u8>,
    /// Whose rights files are opened with; None: the caller's own.
    creds: Option<std::sync::Arc<Credentials>>,
}

impl Namespace {
    /// The namespace rooted at host directory `root`, current directory `/`.
    pub fn open(root: &Path) -> io::Result<Namespace> {
        let fd = rfs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let flags = rfs::StatxFlags::BASIC_STATS | rfs::StatxFlags::MNT_ID;
        let st = rfs::statx(&fd, "", rfs::AtFlags::EMPTY_PATH, flags)?;
        let root_mount = match st.stx_mask & rfs::StatxFlags::MNT_ID.bits() {
            0 => 0,
            _ => st.stx_mnt_id,
        };
        Ok(Namespace {
            root: std::sync::Arc::new(fd),
            root_key: (rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino),
            root_mount,
            cwd: b"/".to_vec(),
            creds: None,
        })
    }

    /// Make plans in this namespace with `who`'s rights, as a process with
    /// those ids and groups and no capabilities (a jail's processes have
    /// none): a file is used only if that process could open it — each
    /// directory on the way searchable, the file readable (the descriptor
    /// handed out is readable) and, for the program and its dynamic linker,
    /// executable. Without this, the calling thread's own rights are used.
    /// The calling thread must be allowed to take on those credentials
    /// (`CAP_SETUID`/`CAP_SETGID`, or ids it already has); if it is not,
    /// plans fail with `EPERM`, never with more rights.
    pub fn with_credentials(mut self, who: Credentials) -> Namespace {
        self.creds = Some(std::sync::Arc::new(who));
        self
    }

    /// Whose rights plans are made with (None: the caller's own).
    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_deref()
    }

    /// Whether `file` (a regular file) may be executed by whose rights
    /// plans are made with: as the kernel decides it ([`Opened::may_exec`],
    /// one system call) when acting for a client; with the caller's own
    /// rights, any execute bit (root's rule, and no system call: a warm
    /// plan's count is held by CI).
    pub(crate) fn may_exec(&self, file: &Opened) -> bool {
        match self.creds {
            None => file.mode & 0o111 != 0,
            Some(_) => file.may_exec(),
        }
    }

    /// Set the current directory (a path inside the namespace; relative
    /// paths are taken from `/`).
    pub fn with_cwd(mut self, cwd: impl AsRef<[u8]>) -> Namespace {
        let cwd = cwd.as_ref();
        self.cwd = if cwd.starts_with(b"/") {
            cwd.to_vec()
        } else {
            [b"/", cwd].concat()
        };
        self
    }

    /// (device, inode) of the root directory: a key for per-namespace caches.
    pub(crate) fn root_key(&self) -> (u64, u64) {
        self.root_key
    }

    /// The mount id of the root's mount (0: unknown).
    pub(crate) fn root_mount(&self) -> u64 {
        self.root_mount
    }

    /// The root directory (`O_PATH`).
    pub(crate) fn root_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The current directory inside the namespace.
    pub(crate) fn cwd(&self) -> &[u8] {
        &self.cwd
    }

    /// `path` made absolute inside the namespace (relative paths are joined
    /// to the current directory; `..` is left for the kernel to resolve,
    /// inside the root).
    pub fn absolute(&self, path: &[u8]) -> Vec<u8> {
        if path.starts_with(b"/") {
            path.to_vec()
        } else {
            let mut p = self.cwd.clone();
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(path);
            p
        }
    }

    /// Open `path` inside the namespace, without following the sandbox
    /// anywhere outside it and without blocking, and `fstat` it. It is
    /// opened `O_PATH` first, so no device driver, FIFO or socket sees an
    /// open: only a regular file is then reopened for reading (the same
    /// inode, through its `/proc/self/fd` magic link). Any other
    /// type comes back with the `O_PATH` descriptor, which nothing can be
    /// read through: callers check `is_regular` first.
    pub(crate) fn open_file(&self, path: &[u8]) -> Result<Opened, ExecError> {
        self.open_file_in(path, &mut Lookups::with_budget(Budget::PER_CANDIDATE))
    }

    /// [`open_file`](Self::open_file), the lookup's work also charged to
    /// `lookups` (one search's candidates share a budget, and a prefix
    /// that failed once is not walked again).
    pub(crate) fn open_file_in(&self, path: &[u8], lookups: &mut Lookups<'_>) -> Result<Opened, ExecError> {
        let fd = self.lookup(path, OFlags::PATH | OFlags::CLOEXEC, lookups)?;
        let st = rfs::fstat(&fd).map_err(|e| io_err(path, e))?;
        let file = Opened::with_stat(fd, &st);
        if !file.is_regular() {
            return Ok(file);
        }
        // `file.fd` is an `O_PATH` descriptor of a regular file.
        let fd = crate::procfd::reopen(file.fd.as_fd()).map_err(|e| io_err(path, e))?;
        Ok(Opened { fd, ..file })
    }

    /// The path inside the namespace of the file `fd` was opened as, every
    /// symlink resolved (the kernel's own path of the opened dentry), or
    /// None if it cannot be told for sure: `/proc/self/fd/N` of the file
    /// must lie under that of the root, component-wise, and be reachable
    /// (not deleted, not "(unreachable)"). Two `readlink`s; nothing is
    /// opened by the result.
    pub(crate) fn path_inside(&self, fd: impl AsFd) -> Option<Vec<u8>> {
        let root = proc_fd_link(&*self.root)?;
        let file = proc_fd_link(fd)?;
        if !root.starts_with(b"/") || file.ends_with(b" (deleted)") {
            return None;
        }
        let rest = if root == b"/" {
            &file[..]
        } else {
            file.strip_prefix(&root[..])?
        };
        (rest.starts_with(b"/") && rest.len() < PATH_MAX).then(|| rest.to_vec())
    }

    /// Open a directory inside the namespace and list its entry names
    /// (without `.` and `..`), at most `max` of them, unsorted, the lookup's
    /// work charged to `lookups` (one ld.so.conf load shares a budget).
    pub(crate) fn list_dir_in(
        &self,
        path: &[u8],
        max: usize,
        lookups: &mut Lookups,
    ) -> Result<Vec<Vec<u8>>, ExecError> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = self.lookup(path, flags, lookups)?;
        let mut dir = rfs::Dir::read_from(&fd).map_err(|e| io_err(path, e))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| io_err(path, e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if names.len() == max {
                break;
            }
            names.push(name.to_vec());
        }
        Ok(names)
    }

    /// Identity of the file or directory at `path`, if it exists, the
    /// lookup's work charged to `lookups`: a path whose lookup is over
    /// budget has no identity, as a missing one.
    pub(crate) fn identity_in(&self, path: &[u8], lookups: &mut Lookups<'_>) -> Option<FileId> {
        let fd = self.lookup(path, OFlags::PATH | OFlags::CLOEXEC, lookups).ok()?;
        rfs::fstat(&fd).ok().map(|st| FileId::of(&st))
    }

    /// An `O_PATH` descriptor for `path` inside the namespace (for watching
    /// it; nothing can be read through it).
    pub fn open_path(&self, path: &[u8]) -> Result<OwnedFd, ExecError> {
        self.openat2(path, OFlags::PATH | OFlags::CLOEXEC)
    }

    /// Open `path` inside the namespace with `flags`, the lookup bounded
    /// by [`Budget::PER_CANDIDATE`] (see [`walk`](crate::walk)).
    fn openat2(&self, path: &[u8], flags: OFlags) -> Result<OwnedFd, ExecError> {
        self.lookup(path, flags, &mut Lookups::with_budget(Budget::PER_CANDIDATE))
    }

    /// Open `path` inside the namespace with `flags`, the lookup's work
    /// charged to `lookups` as well (a search's shared budget).
    fn lookup(&self, path: &[u8], flags: OFlags, lookups: &mut Lookups<'_>) -> Result<OwnedFd, ExecError> {
        if path.len() >= PATH_MAX {
            return Err(ExecError::InvalidArgument {
                what: crate::escape::for_terminal(&path[..64]) + "...",
                reason: "path too long",
                errno: libc::ENAMETOOLONG,
            });
        }
        if path.contains(&0) {
            return Err(ExecError::InvalidArgument {
                what: crate::escape::for_terminal(path),
                reason: "path contains a NUL byte",
                errno: libc::EINVAL,
            });
        }
        match walk::open(self.root.as_fd(), path, flags, lookups) {
            Ok(fd) => Ok(fd),
            Err(Failure::Errno(rustix::io::Errno::NOENT)) => Err(ExecError::NotFound { path: os_path(path) }),
            Err(Failure::Errno(e)) => Err(io_err(path, e)),
            Err(Failure::OverBudget) => Err(ExecError::InvalidArgument {
                what: crate::escape::for_terminal(path),
                reason: OVER_BUDGET,
                errno: libc::ELOOP,
            }),
        }
    }
}

/// What `/proc/self/fd/N` says of `fd`: the host path of the file it is
/// open on, as the kernel sees it from this process's root.
fn proc_fd_link(fd: impl AsFd) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    rfs::readlink(link.as_str(), Vec::new()).ok().map(|p| p.into_bytes())
}

/// Whether the file has a `security.capability` attribute (file
/// capabilities, `setcap`): the kernel runs it with `AT_SECURE`, as it
/// does a setuid program. A file system without extended attributes has
/// none.
pub fn has_file_capabilities(fd: impl AsFd) -> bool {
    rfs::fgetxattr_query(fd, "security.capability").is_ok_and(|n| n > 0)
}

/// A byte path as a `PathBuf` (for messages and errors).
pub fn os_path(path: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(path))
}

fn io_err(path: &[u8], e: rustix::io::Errno) -> ExecError {
    ExecError::Io {
        path: os_path(path),
        source: e.into(),
    }
}
