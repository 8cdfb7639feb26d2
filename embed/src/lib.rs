//! ldchain's chainloaders, embedded, and an installer and a checker for
//! jails.
//!
//! The chainloader is the small static program ldchain puts into a jail
//! (`/chainloader`) to run a dynamic linker from a file descriptor. This
//! crate embeds one build per architecture ldchain supports — x86-64, i386,
//! AArch64 ([`ALL`]; the host's own is [`NATIVE`]) — and writes them into
//! jails atomically and idempotently ([`install`], [`install_all`]).
//!
//! The bytes are the crate's committed, reviewed binaries (`blobs/`, with
//! their SHA-256 in `blobs/SHA256SUMS`, checked at build time): building
//! this crate needs no cross compiler and no extra rustup target, and every
//! build of one version embeds the same files. They are rebuilt from the
//! chainloader's source, bit for bit, by `tools/rebuild-chainloaders.sh` in
//! the ldchain repository; `LDCHAIN_CHAINLOADER_FROM_SOURCE=1` builds them
//! from source instead (in that repository only).
//!
//! Which chainloader a jail holds: [`VERSION`] and each [`Chainloader::sha256`]
//! name the embedded ones, and [`check`] compares a jail's files with them —
//! what a jail tool runs after an upgrade to know which jails to refresh.
//!
//! ```no_run
//! let done = ldchain_embed::install(std::path::Path::new("/srv/jail"))?;
//! println!("{}", done);
//! for c in ldchain_embed::check(std::path::Path::new("/srv/jail"))? {
//!     println!("{c}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(unnameable_types)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::fs::{self as rfs, Mode, OFlags};

use read::read_up_to;

mod blobs;
mod check;
mod read;
pub use blobs::{Chainloader, ALL, PREBUILT, VERSION};
pub use check::{check, CheckError, Checked, Role, State};

/// The chainloader for the architecture this library was compiled for.
pub static NATIVE: &Chainloader = &ALL[0];

/// What [`install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// There was no chainloader; one was written.
    Created,
    /// An identical file with mode 0755 was already there; nothing was written.
    Unchanged,
    /// A different file (or the same bytes with another mode) was atomically
    /// replaced.
    Replaced,
    /// A `PT_INTERP` path holds the jail's own file (its real ld.so, not a
    /// chainloader): left alone ([`install_stubs`]).
    Kept,
}

/// The result of a successful [`install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The installed file.
    pub path: PathBuf,
    /// Whether the file was created, left as it was, or replaced.
    pub outcome: Outcome,
    /// Its size in bytes.
    pub size: usize,
    /// Its SHA-256, lowercase hex (as `sha256sum` prints it).
    pub sha256: &'static str,
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.outcome {
            Outcome::Created => "installed",
            Outcome::Unchanged => "unchanged",
            Outcome::Replaced => "replaced",
            Outcome::Kept => return write!(f, "kept {} (the jail's own file)", self.path.display()),
        };
        write!(
            f,
            "{what} {} ({} bytes, sha256 {})",
            self.path.display(),
            self.size,
            self.sha256
        )
    }
}

/// Why [`install`] failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The jail path could not be opened as a directory.
    #[error("{}: cannot open jail directory: {source}", path.display())]
    Jail {
        /// The jail path.
        path: PathBuf,
        /// The cause (`ENOTDIR` when it is not a directory).
        source: io::Error,
    },
    /// A symbolic link sits where the chainloader goes; it is not followed.
    #[error("{}: is a symbolic link; refusing to follow it (remove it first)", path.display())]
    SymlinkTarget {
        /// The target path.
        path: PathBuf,
    },
    /// A directory sits where the chainloader goes.
    #[error("{}: is a directory; refusing to replace it", path.display())]
    DirectoryTarget {
        /// The target path.
        path: PathBuf,
    },
    /// Any other failure while checking, writing or renaming.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(rustix::io::Errno) -> InstallError + 'a {
    move |e| InstallError::Io {
        path: path.to_owned(),
        what,
        source: e.into(),
    }
}

/// Install [`NATIVE`] into `jail` as `jail/chainloader`, mode 0755.
pub fn install(jail: &Path) -> Result<Installed, InstallError> {
    install_blob(jail, NATIVE)
}

/// Install every embedded chainloader into `jail` ([`NATIVE`] as
/// `chainloader`, the others as `chainloader-ARCH`), stopping at the first
/// failure.
pub fn install_all(jail: &Path) -> Result<Vec<Installed>, InstallError> {
    ALL.iter().map(|c| install_blob(jail, c)).collect()
}

/// Install one chainloader build into the root of `jail`.
///
/// * **Atomic**: the bytes go to a fresh temporary file in the same
///   directory, which is fsynced and then renamed over the final name, so a
///   partly written file is never visible as `chainloader`.
/// * **Idempotent**: an identical regular file with mode 0755 is left alone.
/// * **Durable**: the file and the directory are fsynced.
/// * **Safe**: all work is relative to one descriptor for the jail directory;
///   a symlink at the target is refused, never followed.
pub fn install_blob(jail: &Path, blob: &Chainloader) -> Result<Installed, InstallError> {
    let dir = rfs::open(
        jail,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| InstallError::Jail {
        path: jail.to_owned(),
        source: e.into(),
    })?;
    install_in(&dir, jail, blob.file_name, blob, false)
}

/// Install the embedded chainloaders as interp stubs at the conventional
/// `PT_INTERP` paths of their architectures ([`Chainloader::interp_paths`]:
/// glibc's and musl's ld.so), as `ldchain run`'s interp mode places them in
/// its view, so that a jail another tool builds gets nested exec from
/// `ldchain serve`. Each path is resolved inside the jail (a symbolic link
/// such as `/lib64 -> usr/lib64` is followed there, never out of it);
/// missing directories are created (mode 0755). A path that holds the
/// jail's own file (its real ld.so) is [`Outcome::Kept`]; a chainloader of
/// another build is replaced. Each file is written as [`install_blob`]
/// writes (atomic, durable, never through a planted link).
pub fn install_stubs(jail: &Path) -> Result<Vec<Installed>, InstallError> {
    let root = rfs::open(jail, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        InstallError::Jail {
            path: jail.to_owned(),
            source: e.into(),
        }
    })?;
    let mut done = Vec::new();
    for blob in ALL {
        for inside in blob.interp_paths {
            let (parent, name) = inside.rsplit_once('/').unwrap_or(("", inside));
            let host_dir = jail.join(parent.trim_start_matches('/'));
            let dir = stub_dir(&root, jail, parent)?;
            done.push(install_in(&dir, &host_dir, name, blob, true)?);
        }
    }
    Ok(done)
}

/// Directory `inside` of the jail at `root`, created (mode 0755) where
/// missing, every component resolved inside the jail; opened for writing
/// entries in it.
fn stub_dir(root: &rustix::fd::OwnedFd, jail: &Path, inside: &str) -> Result<rustix::fd::OwnedFd, InstallError> {
    let in_root = rfs::ResolveFlags::IN_ROOT | rfs::ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut walked = String::new();
    for comp in inside.split('/').filter(|c| !c.is_empty()) {
        walked.push('/');
        walked.push_str(comp);
        let at = jail.join(walked.trim_start_matches('/'));
        match rfs::openat2(root, walked.as_str(), flags, Mode::empty(), in_root) {
            Ok(_) => continue,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(io_err(&at, "cannot open the directory")(e)),
        }
        // Missing: make it in its parent (itself resolved inside the jail).
        let (up, _) = walked.rsplit_once('/').unwrap_or(("", ""));
        let parent = rfs::openat2(
            root,
            if up.is_empty() { "/" } else { up },
            flags,
            Mode::empty(),
            in_root,
        )
        .map_err(io_err(&at, "cannot open the parent directory"))?;
        match rfs::mkdirat(&parent, comp, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io_err(&at, "cannot create the directory")(e)),
        }
    }
    let path = if inside.is_empty() { "/" } else { inside };
    rfs::openat2(root, path, flags, Mode::empty(), in_root).map_err(io_err(
        &jail.join(inside.trim_start_matches('/')),
        "cannot open the directory",
    ))
}

/// Install `blob` as `name` in directory `dir` (`jail`: that directory's
/// path, for messages). With `keep_foreign`, a regular file there that is
/// not a chainloader is left alone ([`Outcome::Kept`]).
fn install_in(
    dir: &rustix::fd::OwnedFd,
    jail: &Path,
    name: &str,
    blob: &Chainloader,
    keep_foreign: bool,
) -> Result<Installed, InstallError> {
    let path = jail.join(name);
    let installed = |outcome| Installed {
        path: path.clone(),
        outcome,
        size: blob.bytes.len(),
        sha256: blob.sha256,
    };

    let outcome = match rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Err(rustix::io::Errno::NOENT) => Outcome::Created,
        Err(rustix::io::Errno::LOOP) => return Err(InstallError::SymlinkTarget { path }),
        Err(e) => return Err(io_err(&path, "cannot open the existing file")(e)),
        Ok(fd) => {
            let st = rfs::fstat(&fd).map_err(io_err(&path, "cannot stat the existing file"))?;
            let kind = rfs::FileType::from_raw_mode(st.st_mode);
            if kind == rfs::FileType::Directory {
                return Err(InstallError::DirectoryTarget { path });
            }
            if st.st_mode & 0o7777 == 0o755 && blob.is_in(&fd) {
                return Ok(installed(Outcome::Unchanged));
            }
            if keep_foreign
                && !(kind == rfs::FileType::RegularFile
                    && read_up_to(&fd, 64 << 10).is_ok_and(|b| check::looks_like_a_chainloader(&b)))
            {
                return Ok(installed(Outcome::Kept));
            }
            Outcome::Replaced
        }
    };

    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let tmp = format!(
        ".{}.tmp-{}-{}",
        name,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let tmp_path = jail.join(&tmp);
    let written = (|| {
        let fd = rfs::openat(
            dir,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_err(&tmp_path, "cannot create temporary file"))?;
        let mut rest = blob.bytes;
        while !rest.is_empty() {
            let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, rest))
                .map_err(io_err(&tmp_path, "cannot write temporary file"))?;
            rest = &rest[n..];
        }
        // fchmod, not the creation mode, so the umask cannot change it.
        rfs::fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(io_err(&tmp_path, "cannot set mode"))?;
        rfs::fsync(&fd).map_err(io_err(&tmp_path, "cannot fsync"))?;
        // rename(2) replaces a symlink planted meanwhile; it never follows it.
        rfs::renameat(dir, &tmp, dir, name).map_err(io_err(&path, "cannot rename into place"))
    })();
    if let Err(e) = written {
        let _ = rfs::unlinkat(dir, &tmp, rfs::AtFlags::empty());
        return Err(e);
    }
    rfs::fsync(dir).map_err(io_err(jail, "cannot fsync the jail directory"))?;
    Ok(installed(outcome))
}
