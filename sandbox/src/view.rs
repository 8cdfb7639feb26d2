//! Nested exec: the chainloader placed at the jail's `PT_INTERP` paths, and
//! the exec service's socket, in the jail's private view.
//!
//! Everything here happens in ldchain's own private mount namespace (see
//! [`crate::throwaway`] and `ldchain run --root`): the jail directory on disk
//! is never written. Where a stub or the socket needs a directory entry the
//! jail does not have, the directory that would hold it is *mirrored*: a
//! tmpfs with a bind of each of its entries is mounted over it, and the new
//! entry is created in the tmpfs. Entries already there are left alone — a
//! jail that brings a real `ld.so` at a `PT_INTERP` path keeps it.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Component, Path, PathBuf};

use rustix::mount::{self, MountFlags};
use tracing::debug;

use chainloader::proto::ANSWER_DIR;
use chainloader::proto::SERVICE_PATH;
use ldchain_resolver::Machine;

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
    /// The directory the jail sees, read-only, at [`ANSWER_DIR`].
    pub answers: OwnedFd,
}

/// A jail's view being prepared: which of its directories are already
/// ldchain's own tmpfs (writable without touching the disk).
#[derive(Debug)]
pub struct View {
    root: PathBuf,
    ours: HashSet<PathBuf>,
}

/// What [`View::place_stubs`] did with one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// A stub was written.
    Stub(PathBuf),
    /// The jail already has something there (kept).
    Kept(PathBuf),
    /// A component is a symbolic link or not a directory: left alone.
    Skipped(PathBuf, String),
    /// No chainloader for that architecture in this build.
    NoChainloader(PathBuf),
}

impl View {
    /// The view of `root`, in the calling process's private mount namespace.
    /// `root_is_ours`: `root` itself is a tmpfs ldchain made (the throwaway
    /// jail), so entries can be created in it directly.
    pub fn new(root: &Path, root_is_ours: bool) -> View {
        let mut ours = HashSet::new();
        if root_is_ours {
            ours.insert(root.to_owned());
        }
        View {
            root: root.to_owned(),
            ours,
        }
    }

    /// Place the architecture's chainloader at every conventional
    /// `PT_INTERP` path that does not exist in the jail.
    pub fn place_stubs(&mut self) -> Vec<Placed> {
        stub_paths()
            .into_iter()
            .map(|(path, machine)| {
                let (_, e_machine) = machine.ident();
                let host = self.host_path(path);
                match ldchain_embed::ALL.iter().find(|c| c.machine == e_machine) {
                    None => Placed::NoChainloader(host),
                    Some(blob) => self.place_file(path, blob.bytes),
                }
            })
            .collect()
    }

    /// Bind the exec service's socket at [`SERVICE_PATH`], and make the
    /// directory for its standing answers at [`ANSWER_DIR`], in a fresh
    /// tmpfs that the jail sees read-only. The writable mount of that tmpfs
    /// is detached: only the returned directory descriptor reaches it.
    pub fn bind_service(&mut self) -> io::Result<ServiceDir> {
        let path = Path::new(std::str::from_utf8(SERVICE_PATH).expect("ASCII path"));
        let answers = Path::new(std::str::from_utf8(ANSWER_DIR).expect("ASCII path"));
        let dir = path.parent().expect("has a parent");
        assert_eq!(
            answers.parent(),
            Some(dir),
            "the socket and the answers share a directory"
        );
        let host_dir = self.ensure_dir(dir)?;
        let scratch = tempfile::Builder::new().prefix("ldchain-service-").tempdir()?;
        let s = scratch.path();
        mount::mount(
            "tmpfs",
            s,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"mode=0755",
        )?;
        let socket = s.join(path.file_name().expect("a name"));
        let listener = UnixListener::bind(&socket)?;
        // Every process of the jail execs through it, whatever its uid; a
        // socket on a read-only mount can still be connected to.
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o666))?;
        let answers_host = s.join(answers.file_name().expect("a name"));
        fs::DirBuilder::new().mode(0o755).create(&answers_host)?;
        let answers = rustix::fs::open(
            &answers_host,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        mount::mount_bind(s, &host_dir)?;
        crate::throwaway::remount_read_only(s, &host_dir)?;
        mount::unmount(s, mount::UnmountFlags::DETACH)?;
        self.ours.remove(&host_dir);
        Ok(ServiceDir { listener, answers })
    }

    /// Bind host path `src` at `dest` inside the jail (created as a mount
    /// point if missing, in a directory of ours), read-only if `read_only`.
    pub fn bind(&mut self, src: &Path, dest: &Path, read_only: bool) -> io::Result<()> {
        let meta = fs::metadata(src).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
        let target = self.mount_point(dest, meta.is_dir())?;
        mount::mount_bind_recursive(src, &target)?;
        if read_only {
            crate::throwaway::remount_read_only(src, &target)?;
        }
        Ok(())
    }

    /// Mount a fresh tmpfs at `dest` inside the jail, owned by `owner`
    /// (uid, gid as this process's user namespace names them), mode 0755.
    pub fn tmpfs(&mut self, dest: &Path, owner: (u32, u32)) -> io::Result<()> {
        let target = self.mount_point(dest, true)?;
        let data = std::ffi::CString::new(format!("mode=0755,uid={},gid={}", owner.0, owner.1))?;
        mount::mount(
            "tmpfs",
            &target,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            &*data,
        )?;
        Ok(())
    }

    /// The host path of `inside`, a directory (or a file, `!dir`) to mount
    /// on: created in a directory of ours when missing. Symbolic links are
    /// refused anywhere on the way.
    fn mount_point(&mut self, inside: &Path, dir: bool) -> io::Result<PathBuf> {
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a usable mount point", inside.display()),
            )
        };
        if !inside.is_absolute() || inside.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(bad());
        }
        let (Some(parent), Some(name)) = (inside.parent(), inside.file_name()) else {
            return Err(bad());
        };
        let host_parent = self.ensure_dir(parent)?;
        let host = host_parent.join(name);
        match host.symlink_metadata() {
            Ok(m) if m.is_dir() == dir && !m.file_type().is_symlink() => Ok(host),
            Ok(_) => Err(bad()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.make_ours(&host_parent)?;
                if dir {
                    fs::DirBuilder::new().mode(0o755).create(&host)?;
                } else {
                    fs::File::create(&host)?;
                }
                Ok(host)
            }
            Err(e) => Err(e),
        }
    }

    fn host_path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    fn place_file(&mut self, inside: &str, bytes: &[u8]) -> Placed {
        let host = self.host_path(inside);
        if host.symlink_metadata().is_ok() {
            return Placed::Kept(host);
        }
        let parent = Path::new(inside).parent().unwrap_or(Path::new("/"));
        let result = self.ensure_dir(parent).and_then(|dir| {
            // Never a write to the jail on disk: the directory becomes ours first.
            self.make_ours(&dir)?;
            let file = dir.join(Path::new(inside).file_name().expect("a file name"));
            write_new(&file, bytes).map(|()| file)
        });
        match result {
            Ok(file) => Placed::Stub(file),
            Err(e) => Placed::Skipped(host, e.to_string()),
        }
    }

    /// The host path of directory `inside`, created (in a tmpfs of ours) if
    /// missing. A component that is a symbolic link, or not a directory, is
    /// an error: following it could lead anywhere in the jail.
    fn ensure_dir(&mut self, inside: &Path) -> io::Result<PathBuf> {
        let mut cur = self.root.clone();
        for comp in inside.components() {
            let Component::Normal(name) = comp else { continue };
            let next = cur.join(name);
            match next.symlink_metadata() {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{} is not a directory (or is a symbolic link)",
                        next.display()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.make_ours(&cur)?;
                    fs::DirBuilder::new().mode(0o755).create(&next)?;
                    self.ours.insert(next.clone());
                }
                Err(e) => return Err(e),
            }
            cur = next;
        }
        Ok(cur)
    }

    /// Make directory `dir` writable without touching what is under it:
    /// mirror it into a tmpfs (a bind of each entry, symbolic links copied)
    /// mounted over it.
    fn make_ours(&mut self, dir: &Path) -> io::Result<()> {
        if self.ours.contains(dir) {
            return Ok(());
        }
        let scratch = tempfile::Builder::new().prefix("ldchain-mirror-").tempdir()?;
        let s = scratch.path();
        mount::mount("tmpfs", s, "tmpfs", MountFlags::NOSUID, c"mode=0755")?;
        let meta = dir.metadata()?;
        fs::set_permissions(s, meta.permissions())?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let (from, to) = (entry.path(), s.join(entry.file_name()));
            let ty = entry.file_type()?;
            if ty.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
                continue;
            }
            if ty.is_dir() {
                fs::create_dir(&to)?;
            } else {
                fs::File::create(&to)?;
            }
            mount::mount_bind_recursive(&from, &to)?;
        }
        debug!(dir = %dir.display(), "mirrored into a tmpfs");
        mount::mount_move(s, dir)?;
        self.ours.insert(dir.to_owned());
        Ok(())
    }
}

/// Write a new file, mode 0755, failing if anything is there.
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(bytes)
}
