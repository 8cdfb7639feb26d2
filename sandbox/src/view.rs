//! A jail's private view: the user's binds, the chainloader at the jail's
//! `PT_INTERP` paths, and the exec service's socket.
//!
//! Everything here happens in ldchain's own private mount namespace (see
//! [`crate::throwaway`] and `ldchain run --root`): **the jail directory on
//! disk is never written**. Where a stub, a mount point or the socket needs
//! a directory entry the jail does not have, the directory that would hold
//! it is *mirrored*: a tmpfs with the directory's owner and mode, holding a
//! bind of each of its entries (symbolic links copied), is mounted over it,
//! and the new entry is created in the tmpfs. [`View::finish`] makes every
//! mirror read-only: a program that creates a new entry in a mirrored
//! directory gets `EROFS`, never a write that vanishes; what it writes in
//! the entries (the binds) reaches the jail on disk as before. Entries
//! already there are left alone: a jail that brings a real `ld.so` at a
//! `PT_INTERP` path keeps it.
//!
//! **Built from descriptors.** The jail may change its own files while the
//! view is built (another run of the same jail, a program racing the set-up).
//! So every directory is opened once, one component at a time, from the
//! jail root's descriptor, refusing symbolic links and `..`
//! (the `mount` module); mirrors clone each entry by name relative to that
//! descriptor without following it; every mount is made onto a descriptor.
//! No path the jail can change is resolved twice, or on the host.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixListener;
use std::path::{Component, Path, PathBuf};

use chainloader::proto::ANSWER_DIR;
use chainloader::proto::SERVICE_PATH;
use ldchain_resolver::Machine;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::mount::MountAttrFlags;
use tracing::debug;

use crate::mount::{attach, clone_tree, new_fs, new_tmpfs, open_beneath, set_attrs, set_read_only};

/// The most entries a directory may have to be mirrored: a jail that fills
/// one with more gets an error that names this limit, not a long stall.
pub const MAX_MIRROR_ENTRIES: usize = 65_536;

/// The host's device nodes a jail's `/dev` gets ([`View::dev`]).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// The conventional `PT_INTERP` paths the stubs are placed at — glibc's and
/// musl's for every machine in the chainloader's table — and the
/// architecture of the programs that name them.
pub fn stub_paths() -> Vec<(&'static str, Machine)> {
    Machine::ALL
        .iter()
        .flat_map(|m| [&b"ld-linux"[..], b"ld-musl-"].map(|family| (m.conventional_ldso(family), *m)))
        .filter_map(|(path, m)| Some((std::str::from_utf8(path?).ok()?, m)))
        .collect()
}

/// The exec service's end of the jail's view.
#[derive(Debug)]
pub struct ServiceDir {
    /// Listening at [`SERVICE_PATH`].
    pub listener: UnixListener,
    /// The directory the jail sees, read-only, at [`ANSWER_DIR`] (this
    /// descriptor reaches it through a writable mount of its own).
    pub answers: OwnedFd,
}

/// A jail's view being prepared (see the module docs).
#[derive(Debug)]
pub struct View {
    /// The jail's root directory, or the mirror over it.
    root: OwnedFd,
    /// Directories of ours, by path inside the jail: a tmpfs (a mirror, or
    /// the throwaway jail's root) or a directory created in one. Entries
    /// can be created in them without touching the disk.
    ours: HashMap<PathBuf, OwnedFd>,
    /// The mirrors, made read-only by [`View::finish`].
    mirrors: Vec<OwnedFd>,
}

/// What [`View::place_stubs`] or [`View::place_chainloaders`] did with one
/// path (a path inside the jail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// The file was written (in a mirror of its directory).
    Stub(PathBuf),
    /// The jail already has something there (kept).
    Kept(PathBuf),
    /// A component is a symbolic link or not a directory: left alone.
    Skipped(PathBuf, String),
    /// No chainloader for that architecture in this build.
    NoChainloader(PathBuf),
}

impl View {
    /// The view of `root` (a host path, trusted: the jail's root directory
    /// itself), in the calling process's private mount namespace.
    /// `root_is_ours`: `root` itself is a tmpfs ldchain made (the throwaway
    /// jail), so entries can be created in it directly.
    pub fn new(root: &Path, root_is_ours: bool) -> io::Result<View> {
        let fd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let mut ours = HashMap::new();
        if root_is_ours {
            ours.insert(PathBuf::from("/"), fd.try_clone()?);
        }
        Ok(View {
            root: fd,
            ours,
            mirrors: Vec::new(),
        })
    }

    /// Place the architecture's chainloader at every conventional
    /// `PT_INTERP` path that does not exist in the jail.
    pub fn place_stubs(&mut self) -> Vec<Placed> {
        stub_paths()
            .into_iter()
            .map(|(path, machine)| {
                let (_, e_machine) = machine.ident();
                match ldchain_embed::ALL.iter().find(|c| c.machine == e_machine) {
                    None => Placed::NoChainloader(path.into()),
                    Some(blob) => self.place_file(Path::new(path), blob.bytes),
                }
            })
            .collect()
    }

    /// Place this build's chainloaders at `/chainloader*` (what the
    /// `chainloader` strategy's plans exec). A jail's own copy with the same
    /// bytes is kept; any other file there is hidden by ours, in the view
    /// only.
    pub fn place_chainloaders(&mut self) -> Vec<Placed> {
        let blobs = ldchain_embed::ALL;
        let root = match self.dir_fd(Path::new("/")) {
            Ok(fd) => fd,
            Err(e) => {
                let why = e.to_string();
                return blobs
                    .iter()
                    .map(|b| Placed::Skipped(Path::new("/").join(b.file_name), why.clone()))
                    .collect();
            }
        };
        let current =
            |b: &ldchain_embed::Chainloader| open_beneath(root.as_fd(), b.file_name).is_ok_and(|fd| holds(&fd, b));
        let stale: Vec<&OsStr> = blobs
            .iter()
            .filter(|b| !current(b))
            .map(|b| OsStr::new(b.file_name))
            .collect();
        let ours = if stale.is_empty() || self.ours.contains_key(Path::new("/")) {
            Ok(())
        } else {
            self.make_ours(Path::new("/"), root.as_fd(), &stale).map(drop)
        };
        blobs
            .iter()
            .map(|b| {
                let inside = Path::new("/").join(b.file_name);
                if !stale.contains(&OsStr::new(b.file_name)) {
                    return Placed::Kept(inside);
                }
                let result = match &ours {
                    Ok(()) => write_new(self.ours[Path::new("/")].as_fd(), OsStr::new(b.file_name), b.bytes),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                placed(&inside, result.map(|()| true))
            })
            .collect()
    }

    /// Bind the exec service's socket at [`SERVICE_PATH`], and make the
    /// directory for its standing answers at [`ANSWER_DIR`], in a fresh
    /// tmpfs that the jail sees read-only. Only the returned directory
    /// descriptor reaches it through a writable mount.
    pub fn bind_service(&mut self) -> io::Result<ServiceDir> {
        let path = Path::new(std::str::from_utf8(SERVICE_PATH).expect("ASCII path"));
        let answers = Path::new(std::str::from_utf8(ANSWER_DIR).expect("ASCII path"));
        let dir = path.parent().expect("has a parent");
        assert_eq!(
            answers.parent(),
            Some(dir),
            "the socket and the answers share a directory"
        );
        let target = self.mount_point(dir, true)?;
        let tmpfs = new_tmpfs(
            &[(c"mode", c"0755")],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )?;
        attach(tmpfs.as_fd(), target.as_fd())?;
        let name = path.file_name().expect("a name");
        let listener = UnixListener::bind(crate::mount::fd_path(&tmpfs).join(name))?;
        // Every process of the jail execs through it, whatever its uid; a
        // socket on a read-only mount can still be connected to.
        rustix::fs::chmodat(&tmpfs, name, Mode::from_raw_mode(0o666), AtFlags::empty())?;
        let answers_name = answers.file_name().expect("a name");
        rustix::fs::mkdirat(&tmpfs, answers_name, Mode::from_raw_mode(0o755))?;
        // A writable mount of the same tmpfs, reachable only by descriptor;
        // the one the jail sees becomes read-only.
        let writable = clone_tree(tmpfs.as_fd(), c"")?;
        let answers = rustix::fs::openat(
            &writable,
            answers_name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        set_read_only(tmpfs.as_fd(), false)?;
        Ok(ServiceDir { listener, answers })
    }

    /// Bind host path `src` at `dest` inside the jail (created as a mount
    /// point if missing, in a mirror), with every mount under `src`; all of
    /// them read-only if `read_only`, and none giving access to device
    /// nodes (bwrap's `--bind`; see [`dev_bind`](Self::dev_bind)). `src` is
    /// the caller's own path and is resolved as such (symbolic links
    /// followed); `dest` is resolved in the jail, refusing symbolic links.
    pub fn bind(&mut self, src: &Path, dest: &Path, read_only: bool) -> io::Result<()> {
        let from = open_source(src)?;
        self.bind_tree(from.as_fd(), dest, read_only, false)
    }

    /// As [`bind`](Self::bind), writable, with device nodes usable (bwrap's
    /// `--dev-bind`).
    pub fn dev_bind(&mut self, src: &Path, dest: &Path) -> io::Result<()> {
        let from = open_source(src)?;
        self.bind_tree(from.as_fd(), dest, false, true)
    }

    /// As [`bind`](Self::bind), from a directory or file the caller has
    /// open (bwrap's `--bind-fd`, `--ro-bind-fd`): nothing is looked up.
    pub fn bind_fd(&mut self, src: BorrowedFd<'_>, dest: &Path, read_only: bool) -> io::Result<()> {
        // A descriptor opened before this process entered its private
        // mount namespace names a mount of the old one, which cannot be
        // cloned here: its path is opened again in this namespace, and
        // must lead to the very same file.
        let path = rustix::fs::readlink(crate::mount::fd_path(src), Vec::new())?;
        let again = open_source(Path::new(OsStr::from_bytes(path.as_bytes())))?;
        let (a, b) = (rustix::fs::fstat(src)?, rustix::fs::fstat(&again)?);
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
            return Err(io::Error::other(format!(
                "the descriptor's file is no longer at {}",
                String::from_utf8_lossy(path.as_bytes())
            )));
        }
        self.bind_tree(again.as_fd(), dest, read_only, false)
    }

    fn bind_tree(&mut self, from: BorrowedFd<'_>, dest: &Path, read_only: bool, devices: bool) -> io::Result<()> {
        let is_dir = FileType::from_raw_mode(rustix::fs::fstat(from)?.st_mode) == FileType::Directory;
        let tree = clone_tree(from, c"")?;
        let mut attrs = MountAttrFlags::empty();
        if read_only {
            attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
        }
        if !devices {
            attrs |= MountAttrFlags::MOUNT_ATTR_NODEV;
        }
        if !attrs.is_empty() {
            set_attrs(tree.as_fd(), true, attrs)?;
        }
        let target = self.mount_point(dest, is_dir)?;
        attach(tree.as_fd(), target.as_fd())
    }

    /// Mount a fresh tmpfs at `dest` inside the jail, owned by `owner`
    /// (uid, gid as this process's user namespace names them), with `mode`
    /// (bwrap: 0755) and at most `size` bytes (default: half of memory).
    pub fn tmpfs(&mut self, dest: &Path, owner: (u32, u32), mode: u32, size: Option<u64>) -> io::Result<()> {
        let target = self.mount_point(dest, true)?;
        let (uid, gid) = (CString::new(owner.0.to_string())?, CString::new(owner.1.to_string())?);
        let mode = CString::new(format!("{mode:o}"))?;
        let size = size.map(|s| CString::new(s.to_string())).transpose()?;
        let mut options = vec![(c"mode", mode.as_c_str()), (c"uid", &uid), (c"gid", &gid)];
        if let Some(size) = &size {
            options.push((c"size", size));
        }
        let tmpfs = new_tmpfs(
            &options,
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )?;
        attach(tmpfs.as_fd(), target.as_fd())
    }

    /// A POSIX message queue filesystem at `dest` (bwrap's `--mqueue`).
    pub fn mqueue(&mut self, dest: &Path) -> io::Result<()> {
        let target = self.mount_point(dest, true)?;
        let mq = new_fs(
            c"mqueue",
            &[],
            &[],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )?;
        attach(mq.as_fd(), target.as_fd())
    }

    /// A directory at `dest` (bwrap's `--dir`): made with `mode` in a mirror
    /// when missing; an existing one is left as it is.
    pub fn dir(&mut self, dest: &Path, mode: u32) -> io::Result<()> {
        let (parent, name) = split(dest).ok_or_else(|| not_absolute(dest))?;
        let parent_fd = self.dir_fd(parent)?;
        match open_beneath(parent_fd.as_fd(), name) {
            Ok(fd) if is_dir(&fd)? => Ok(()),
            Ok(_) => Err(not_a_dir(dest)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let ours = self.make_ours(parent, parent_fd.as_fd(), &[])?;
                create(ours, name, true, mode)?;
                // The mode as given, not as the umask left it.
                rustix::fs::chmodat(ours, name, Mode::from_raw_mode(mode), AtFlags::empty())?;
                Ok(())
            }
            Err(e) => Err(with_path(dest, e)),
        }
    }

    /// A symbolic link at `dest` pointing at `target` (bwrap's `--symlink`),
    /// in a mirror of its directory. One already there with that target is
    /// fine; anything else there is an error.
    pub fn symlink(&mut self, target: &Path, dest: &Path) -> io::Result<()> {
        let (parent, name) = split(dest).ok_or_else(|| not_absolute(dest))?;
        let parent_fd = self.dir_fd(parent)?;
        match rustix::fs::readlinkat(&parent_fd, name, Vec::new()) {
            Ok(t) if t.as_bytes() == target.as_os_str().as_bytes() => return Ok(()),
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::EEXIST)),
            Err(rustix::io::Errno::NOENT) => {}
            Err(rustix::io::Errno::INVAL) => return Err(io::Error::from_raw_os_error(libc::EEXIST)),
            Err(e) => return Err(e.into()),
        }
        let ours = self.make_ours(parent, parent_fd.as_fd(), &[])?;
        Ok(rustix::fs::symlinkat(target, ours, name)?)
    }

    /// A new file at `dest` holding `bytes`, with `mode` (bwrap's `--file`),
    /// in a mirror of its directory (so read-only once the view is
    /// finished, unless the directory is a tmpfs of the jail's own).
    pub fn file(&mut self, dest: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        let (parent, name) = split(dest).ok_or_else(|| not_absolute(dest))?;
        let parent_fd = self.dir_fd(parent)?;
        let ours = self.make_ours(parent, parent_fd.as_fd(), &[])?;
        write_new(ours, name, bytes)?;
        Ok(rustix::fs::chmodat(
            ours,
            name,
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )?)
    }

    /// `bytes` as a file of its own, with `mode`, bound at `dest` (bwrap's
    /// `--bind-data`, `--ro-bind-data`).
    pub fn bind_data(&mut self, dest: &Path, bytes: &[u8], mode: u32, read_only: bool) -> io::Result<()> {
        let tmpfs = new_tmpfs(
            &[(c"mode", c"0755")],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )?;
        write_new(tmpfs.as_fd(), OsStr::new("data"), bytes)?;
        rustix::fs::chmodat(&tmpfs, "data", Mode::from_raw_mode(mode), AtFlags::empty())?;
        let file = clone_tree(tmpfs.as_fd(), c"data")?;
        if read_only {
            set_read_only(file.as_fd(), false)?;
        }
        let target = self.mount_point(dest, false)?;
        attach(file.as_fd(), target.as_fd())
    }

    /// Make the mount at `dest` (a mount point) read-only, with every mount
    /// under it (bwrap's `--remount-ro`, recursive here).
    pub fn remount_ro(&mut self, dest: &Path) -> io::Result<()> {
        let fd = self.dir_fd(dest)?;
        set_read_only(fd.as_fd(), true).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => io::Error::other(format!("{}: not a mount point", dest.display())),
            _ => e,
        })
    }

    /// Change the mode of `path` (bwrap's `--chmod`), only where the view
    /// made it (a tmpfs: a mirror, `--tmpfs`, `--dir`, the throwaway jail):
    /// the jail's own files and a bind's are never written.
    pub fn chmod(&mut self, path: &Path, mode: u32) -> io::Result<()> {
        let (parent, name) = split(path).ok_or_else(|| not_absolute(path))?;
        let parent_fd = self.dir_fd(parent)?;
        let fd = open_beneath(parent_fd.as_fd(), name)?;
        if rustix::fs::fstatfs(&fd)?.f_type != libc::TMPFS_MAGIC as _ {
            return Err(io::Error::other(format!(
                "{}: on the jail's or a bind's own files, which ldchain never writes",
                path.display()
            )));
        }
        Ok(rustix::fs::chmodat(
            &parent_fd,
            name,
            Mode::from_raw_mode(mode),
            AtFlags::empty(),
        )?)
    }

    /// A `/dev` at `dest`, as bwrap's `--dev` makes it: a tmpfs with binds
    /// of the host's `null`, `zero`, `full`, `random`, `urandom` and `tty`, a
    /// private `devpts` instance at `pts` (with `ptmx` leading into it), a
    /// tmpfs at `shm` (mode 1777), and the `fd`, `stdin`, `stdout`, `stderr`
    /// links into `/proc/self/fd`.
    pub fn dev(&mut self, dest: &Path) -> io::Result<()> {
        let target = self.mount_point(dest, true)?;
        let dev = new_tmpfs(
            &[(c"mode", c"0755")],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )?;
        let host = rustix::fs::open(
            "/dev",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for name in DEVICES {
            let Ok(node) = clone_tree(host.as_fd(), &CString::new(*name)?) else {
                continue; // the host has none: neither does the jail
            };
            create(dev.as_fd(), OsStr::new(name), false, 0o666)?;
            attach(node.as_fd(), open_beneath(dev.as_fd(), name)?.as_fd())?;
        }
        for (link, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            rustix::fs::symlinkat(to, &dev, link)?;
        }
        create(dev.as_fd(), OsStr::new("pts"), true, 0o755)?;
        let pts = new_fs(
            c"devpts",
            &[(c"ptmxmode", c"0666"), (c"mode", c"0620")],
            &[c"newinstance"],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NOEXEC,
        )?;
        attach(pts.as_fd(), open_beneath(dev.as_fd(), "pts")?.as_fd())?;
        create(dev.as_fd(), OsStr::new("shm"), true, 0o755)?;
        let shm = new_tmpfs(
            &[(c"mode", c"1777")],
            MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV,
        )?;
        attach(shm.as_fd(), open_beneath(dev.as_fd(), "shm")?.as_fd())?;
        attach(dev.as_fd(), target.as_fd())
    }

    /// A new pseudo-terminal from the jail's own `devpts` at `/dev/pts` (as
    /// [`dev`](Self::dev) makes it), for `ldchain run --pty`.
    pub fn open_pty(&mut self) -> io::Result<crate::pty::Pty> {
        let pts = self.dir_fd(Path::new("/dev/pts"))?;
        if rustix::fs::fstatfs(&pts)?.f_type != libc::DEVPTS_SUPER_MAGIC as _ {
            return Err(io::Error::other(
                "the jail's /dev/pts is not a devpts of its own (--dev /dev)",
            ));
        }
        crate::pty::open_in(pts)
    }

    /// Directory `inside` exists in the view (created in a mirror of its
    /// parent when missing): a place to mount on later.
    pub fn ensure_dir(&mut self, inside: &Path) -> io::Result<()> {
        self.mount_point(inside, true).map(drop)
    }

    /// The view is complete: every mirror becomes read-only (its entries,
    /// binds of the jail's own, keep their own mounts' flags).
    pub fn finish(&mut self) -> io::Result<()> {
        for mirror in self.mirrors.drain(..) {
            set_read_only(mirror.as_fd(), false)?;
        }
        Ok(())
    }

    /// `inside`, a directory (or a file, `!dir`) to mount on: created in a
    /// mirror of its directory when missing. Symbolic links are refused
    /// anywhere on the way.
    fn mount_point(&mut self, inside: &Path, dir: bool) -> io::Result<OwnedFd> {
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a usable mount point ({why})", inside.display()),
            )
        };
        let (parent, name) = split(inside).ok_or_else(|| bad("not an absolute path without `..`"))?;
        let parent_fd = self.dir_fd(parent)?;
        match open_beneath(parent_fd.as_fd(), name) {
            Ok(fd) => match kind(&fd)? {
                FileType::Symlink => Err(bad("a symbolic link")),
                FileType::Directory if dir => Ok(fd),
                _ if dir => Err(bad("not a directory")),
                FileType::Directory => Err(bad("a directory, where a file is bound")),
                _ => Ok(fd),
            },
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(bad("a symbolic link")),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let ours = self.make_ours(parent, parent_fd.as_fd(), &[])?;
                create(ours.as_fd(), name, dir, 0o755)?;
                open_beneath(ours, name)
            }
            Err(e) => Err(e),
        }
    }

    /// Directory `inside`, opened `O_PATH`; missing components are created
    /// in mirrors. A component that is a symbolic link, or not a directory,
    /// is an error: following it could lead anywhere.
    fn dir_fd(&mut self, inside: &Path) -> io::Result<OwnedFd> {
        let mut cur = self.root.try_clone()?;
        let mut path = PathBuf::from("/");
        for comp in inside.components() {
            let name = match comp {
                Component::RootDir => continue,
                Component::Normal(name) => name,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "`.` or `..` in a jail path",
                    ))
                }
            };
            let parent = path.clone();
            path.push(name);
            if let Some(ours) = self.ours.get(&path) {
                cur = ours.try_clone()?;
                continue;
            }
            cur = match open_beneath(cur.as_fd(), name) {
                Ok(fd) if is_dir(&fd)? => fd,
                Ok(_) => return Err(not_a_dir(&path)),
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(not_a_dir(&path)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let ours = self.make_ours(&parent, cur.as_fd(), &[])?;
                    create(ours.as_fd(), name, true, 0o755)?;
                    let fd = open_beneath(ours, name)?;
                    self.ours.insert(path.clone(), fd.try_clone()?);
                    fd
                }
                Err(e) => return Err(with_path(&path, e)),
            };
        }
        Ok(cur)
    }

    /// Make directory `inside` (open as `dir`) writable without touching
    /// the disk: mirror it (module docs), leaving out the entries `except`.
    /// Returns the mirror's descriptor.
    fn make_ours(&mut self, inside: &Path, dir: BorrowedFd<'_>, except: &[&OsStr]) -> io::Result<BorrowedFd<'_>> {
        if !self.ours.contains_key(inside) {
            let mirror = mirror(inside, dir, except)?;
            if inside == Path::new("/") {
                self.root = mirror.try_clone()?;
            }
            self.ours.insert(inside.to_owned(), mirror.try_clone()?);
            self.mirrors.push(mirror);
        }
        Ok(self.ours[inside].as_fd())
    }

    /// Write `bytes` at `inside` as a new file (mode 0755), in a mirror of
    /// its directory, unless something is already there.
    fn place_file(&mut self, inside: &Path, bytes: &[u8]) -> Placed {
        let Some((parent, name)) = split(inside) else {
            return Placed::Skipped(inside.into(), "not an absolute path".into());
        };
        let result = self
            .dir_fd(parent)
            .and_then(|dir| match open_beneath(dir.as_fd(), name) {
                Ok(_) => Ok(false),
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Ok(false),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let ours = self.make_ours(parent, dir.as_fd(), &[])?;
                    write_new(ours, name, bytes).map(|()| true)
                }
                Err(e) => Err(e),
            });
        placed(inside, result)
    }
}

fn placed(inside: &Path, result: io::Result<bool>) -> Placed {
    match result {
        Ok(true) => Placed::Stub(inside.into()),
        Ok(false) => Placed::Kept(inside.into()),
        Err(e) => Placed::Skipped(inside.into(), e.to_string()),
    }
}

/// Mirror directory `inside` (open as `dir`): a tmpfs with its owner and
/// mode, mounted over it, holding a clone of each entry's mount tree (never
/// following a symbolic link: a link is copied as a link) but `except`.
fn mirror(inside: &Path, dir: BorrowedFd<'_>, except: &[&OsStr]) -> io::Result<OwnedFd> {
    let names = list(inside, dir)?;
    let st = rustix::fs::fstat(dir)?;
    let mode = CString::new(format!("{:o}", st.st_mode & 0o7777))?;
    let (uid, gid) = (
        CString::new(st.st_uid.to_string())?,
        CString::new(st.st_gid.to_string())?,
    );
    let attrs = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
    // The owner may have no name in this user namespace: then the mirror is
    // owned by us (it is read-only to the jail in the end either way).
    let tmpfs = new_tmpfs(&[(c"mode", &mode), (c"uid", &uid), (c"gid", &gid)], attrs)
        .or_else(|_| new_tmpfs(&[(c"mode", &mode)], attrs))?;
    attach(tmpfs.as_fd(), dir)?;
    for name in names.iter().filter(|n| !except.contains(&n.as_os_str())) {
        mirror_entry(dir, tmpfs.as_fd(), name)?;
    }
    debug!(dir = %inside.display(), entries = names.len(), "mirrored into a tmpfs");
    Ok(tmpfs)
}

/// Mirror entry `name` of `dir` into `tmpfs`. An entry that is gone or has
/// changed its type meanwhile is left out, as if it had changed a moment
/// later; nothing it has become is followed.
fn mirror_entry(dir: BorrowedFd<'_>, tmpfs: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let gone = |e: rustix::io::Errno| matches!(e, rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR);
    // One lookup, never following a link: what is copied or cloned below
    // is what it found, whatever the name is swapped for meanwhile.
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let entry = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) if gone(e) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let ty = FileType::from_raw_mode(rustix::fs::fstat(&entry)?.st_mode);
    if ty == FileType::Symlink {
        let target = rustix::fs::readlinkat(&entry, c"", Vec::new())?;
        return Ok(rustix::fs::symlinkat(&*target, tmpfs, name)?);
    }
    let tree = clone_tree(entry.as_fd(), c"")?;
    create(tmpfs, name, ty == FileType::Directory, 0o755)?;
    attach(tree.as_fd(), open_beneath(tmpfs, name)?.as_fd())
}

/// The names in directory `dir`, at most [`MAX_MIRROR_ENTRIES`].
fn list(inside: &Path, dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let fd = rustix::fs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        if names.len() == MAX_MIRROR_ENTRIES {
            return Err(io::Error::other(format!(
                "{}: more than {MAX_MIRROR_ENTRIES} entries to mirror (the limit of MAX_MIRROR_ENTRIES)",
                inside.display()
            )));
        }
        names.push(OsString::from_vec(name));
    }
    Ok(names)
}

/// `inside` as (its directory, its name): absolute, no `.` or `..`.
fn split(inside: &Path) -> Option<(&Path, &OsStr)> {
    if !inside.is_absolute()
        || inside
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return None;
    }
    Some((inside.parent()?, inside.file_name()?))
}

fn kind(fd: &OwnedFd) -> io::Result<FileType> {
    Ok(FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode))
}

fn is_dir(fd: &OwnedFd) -> io::Result<bool> {
    Ok(kind(fd)? == FileType::Directory)
}

/// A new directory or empty file `name` in `dir` (a tmpfs of ours).
fn create(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool, mode: u32) -> io::Result<()> {
    if is_dir {
        rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))?;
    } else {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644))?;
    }
    Ok(())
}

/// Whether `fd` (`O_PATH`) is a regular file holding exactly `blob`'s bytes.
fn holds(fd: &OwnedFd, blob: &ldchain_embed::Chainloader) -> bool {
    // An O_PATH descriptor is read by opening it again, through its magic
    // link (`openat(fd, "")` would be ENOENT: no AT_EMPTY_PATH for open).
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    rustix::fs::open(crate::mount::fd_path(fd), flags, Mode::empty()).is_ok_and(|file| blob.is_in(&file))
}

/// Write a new file `name` in `dir`, mode 0755, failing if anything is there.
fn write_new(dir: BorrowedFd<'_>, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o755))?;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, rest))?;
        rest = &rest[n..];
    }
    Ok(())
}

fn not_absolute(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: not an absolute path without `.` or `..`", path.display()),
    )
}

/// A bind's source, the caller's own path, opened `O_PATH`.
fn open_source(src: &Path) -> io::Result<OwnedFd> {
    rustix::fs::open(src, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(|e| with_path(src, e.into()))
}

fn not_a_dir(path: &Path) -> io::Error {
    io::Error::other(format!("{} is not a directory (or is a symbolic link)", path.display()))
}

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
