//! Which of a jail's chainloader files are the ones this build embeds.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{self as rfs, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::blobs::{Chainloader, ALL};
use crate::read::read_up_to;

/// No chainloader is near this size (they are under 12 KiB); a larger file
/// is not one, and is not read.
const MAX_CHAINLOADER: u64 = 64 * 1024;

/// What a checked path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `/chainloader` or `/chainloader-ARCH`: what [`install_all`](crate::install_all)
    /// writes. Anything but [`State::Current`] there needs a refresh.
    Chainloader,
    /// A conventional `PT_INTERP` path (`/lib64/ld-linux-x86-64.so.2`, …),
    /// where a chainloader may sit as an interp stub. Optional: `ldchain run`
    /// puts stubs in its private view of the jail, never on disk, so only an
    /// outdated chainloader here needs a refresh; a real ld.so is left alone.
    InterpStub,
}

/// What [`check`] found at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The embedded chainloader's bytes (and, for [`Role::Chainloader`],
    /// mode 0755, as `install` leaves it).
    Current,
    /// A chainloader, but not the current one: the reason (another build,
    /// another architecture's, the wrong mode).
    Outdated(String),
    /// Nothing there (or a directory on the way is missing).
    Missing,
    /// Something that is not a chainloader: what it is. A symbolic link is
    /// reported, never followed.
    Foreign(String),
}

/// One checked path of a jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The path on the host (the jail's path joined with the path inside it).
    pub path: PathBuf,
    /// What the path is for.
    pub role: Role,
    /// The embedded chainloader that belongs there.
    pub expected: &'static Chainloader,
    /// What is there.
    pub state: State,
}

impl Checked {
    /// Whether the jail needs a refresh for this path: an outdated
    /// chainloader anywhere, or a missing or blocked `/chainloader*`.
    pub fn needs_refresh(&self) -> bool {
        match (self.role, &self.state) {
            (_, State::Current) => false,
            (_, State::Outdated(_)) => true,
            (Role::Chainloader, State::Missing | State::Foreign(_)) => true,
            (Role::InterpStub, State::Missing | State::Foreign(_)) => false,
        }
    }
}

impl fmt::Display for Checked {
    /// One line: a word (`current`, `outdated`, `missing`, `absent`,
    /// `foreign`), the path, and why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, want) = (self.path.display(), self.expected);
        match (&self.state, self.role) {
            (State::Current, Role::Chainloader) => {
                write!(f, "current  {path} ({}, sha256 {})", want.arch, want.sha256)
            }
            (State::Current, Role::InterpStub) => write!(
                f,
                "current  {path} (interp stub: the {} chainloader, sha256 {})",
                want.arch, want.sha256
            ),
            (State::Outdated(why), _) => write!(
                f,
                "outdated {path} ({why}; the current {} chainloader is sha256 {})",
                want.arch, want.sha256
            ),
            (State::Missing, Role::Chainloader) => {
                write!(f, "missing  {path} (ldchain install writes it)")
            }
            (State::Missing, Role::InterpStub) => write!(f, "absent   {path} (no interp stub; none needed)"),
            (State::Foreign(what), Role::Chainloader) => {
                write!(f, "foreign  {path} ({what}; not a chainloader)")
            }
            (State::Foreign(what), Role::InterpStub) => {
                write!(f, "foreign  {path} ({what}; not a chainloader: left alone)")
            }
        }
    }
}

/// Why [`check`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The jail path could not be opened as a directory.
    #[error("{}: cannot open jail directory: {source}", path.display())]
    Jail {
        /// The jail path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file could not be opened, examined or read.
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

/// Compare `jail`'s chainloader files with the embedded ones: each
/// `/chainloader*` [`install_all`](crate::install_all) writes, then each
/// conventional `PT_INTERP` path of each architecture, in [`ALL`]'s order.
///
/// Every path is resolved with the jail as its root (`openat2` with
/// `RESOLVE_IN_ROOT`): a symbolic link on the way cannot lead out of the
/// jail, and one at a checked path is reported, not followed. Nothing is
/// written.
pub fn check(jail: &Path) -> Result<Vec<Checked>, CheckError> {
    let dir = rfs::open(
        jail,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| CheckError::Jail {
        path: jail.to_owned(),
        source: e.into(),
    })?;
    let mut wanted: Vec<(String, Role, &'static Chainloader)> = ALL
        .iter()
        .map(|c| (format!("/{}", c.file_name), Role::Chainloader, c))
        .collect();
    for c in ALL {
        wanted.extend(c.interp_paths.iter().map(|p| (p.to_string(), Role::InterpStub, c)));
    }
    wanted
        .into_iter()
        .map(|(inside, role, expected)| {
            let path = jail.join(inside.trim_start_matches('/'));
            let state = examine(&dir, &inside, &path, role, expected)?;
            Ok(Checked {
                path,
                role,
                expected,
                state,
            })
        })
        .collect()
}

fn open_in(dir: &OwnedFd, inside: &str, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    rfs::openat2(
        dir,
        inside.trim_start_matches('/'),
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

fn examine(
    dir: &OwnedFd,
    inside: &str,
    path: &Path,
    role: Role,
    expected: &'static Chainloader,
) -> Result<State, CheckError> {
    let err = |what| {
        move |e: Errno| CheckError::Io {
            path: path.to_owned(),
            what,
            source: e.into(),
        }
    };
    // O_PATH | O_NOFOLLOW opens a symbolic link itself, and nothing blocks
    // (a FIFO) or has side effects (a device).
    let fd = match open_in(dir, inside, OFlags::PATH) {
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(State::Missing),
        Err(Errno::LOOP) => return Ok(State::Foreign("symbolic links loop on the way".into())),
        Err(e) => return Err(err("cannot open")(e)),
        Ok(fd) => fd,
    };
    let st = rfs::fstat(&fd).map_err(err("cannot stat"))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Symlink => {
            let target = rfs::readlinkat(&fd, "", Vec::new()).map_err(err("cannot read the symbolic link"))?;
            return Ok(State::Foreign(format!(
                "a symbolic link to {}, not followed",
                target.to_string_lossy()
            )));
        }
        FileType::Directory => return Ok(State::Foreign("a directory".into())),
        other => return Ok(State::Foreign(format!("not a regular file ({other:?})"))),
    }
    if st.st_size as u64 > MAX_CHAINLOADER {
        return Ok(State::Foreign(format!("a file of {} bytes", st.st_size)));
    }
    let file = open_in(dir, inside, OFlags::RDONLY | OFlags::NONBLOCK).map_err(err("cannot open"))?;
    let bytes = read_up_to(&file, MAX_CHAINLOADER as usize).map_err(err("cannot read"))?;
    let mode = st.st_mode & 0o7777;
    if bytes == expected.bytes {
        return Ok(if role == Role::Chainloader && mode != 0o755 {
            State::Outdated(format!("the current bytes, but mode {mode:04o}, not 0755"))
        } else {
            State::Current
        });
    }
    if let Some(other) = ALL.iter().find(|c| c.bytes == bytes) {
        return Ok(State::Outdated(format!(
            "the {} chainloader, not the {} one",
            other.arch, expected.arch
        )));
    }
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    Ok(if looks_like_a_chainloader(&bytes) {
        State::Outdated(format!("another chainloader build, sha256 {sha256}"))
    } else {
        State::Foreign(format!("a file of {} bytes, sha256 {sha256}", bytes.len()))
    })
}

/// Any version's chainloader, by its traits: a small ELF position-independent
/// executable whose messages start `chainloader: `. A real ld.so is ten
/// times its size.
pub(crate) fn looks_like_a_chainloader(bytes: &[u8]) -> bool {
    const ET_DYN: u8 = 3;
    bytes.len() >= 64
        && bytes.starts_with(b"\x7fELF")
        && bytes[16] == ET_DYN
        && bytes[17] == 0
        && bytes.windows(13).any(|w| w == b"chainloader: ")
}
