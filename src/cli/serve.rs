//! `ldchain serve`: the exec service for a jail that another tool builds
//! (bwrap, podman, systemd-nspawn).
//!
//! `ldchain run` serves the jails it builds itself. A jail made elsewhere
//! gets the same service from this long-running process: it serves the
//! namespace at `--root` through `SOCKET_DIR/exec.sock` and leaves its
//! standing answers in `SOCKET_DIR/ld/`; the jail binds `SOCKET_DIR`
//! read-only at `/run/ldchain` and the chainloader at its `PT_INTERP` paths.
//! It runs until SIGTERM or SIGINT, then removes what it made and exits 0.
//!
//! `SOCKET_DIR` is the caller's own: created (mode 0755) when missing;
//! refused when it is a symbolic link, not a directory, someone else's,
//! writable by group or others, or holds anything but what an earlier
//! `ldchain serve` leaves behind. A lock (`flock` on the directory, held for
//! serve's life) keeps a second serve out; a socket that still accepts
//! connections there (a server this lock does not know) is refused too.
//! The socket appears under its name only once the service answers (bound
//! under a temporary name, made 0666, renamed into place), at the moment
//! serve prints [`READY`] on stderr: scripts can wait for either.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ldchain::resolver::{escape, Namespace, Resolver, Strategy};
use ldchain::sandbox::boundary::{after_exit, AfterExit};
use ldchain::service::proto::ANSWER_DIR;
use ldchain::service::{ExecService, Limits, NamespaceSource, SERVICE_PATH};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{debug, info};

use super::args::ServeArgs;
use super::status::EXIT_LDCHAIN;

/// The line serve prints on stderr once the socket is in place and answered.
pub const READY: &str = "ldchain: serve: ready";

/// The temporary name the socket is bound under before it is renamed into
/// place (made 0666 first: no client ever sees it with the umask's mode).
const NEW_SOCKET: &str = ".exec.sock.new";

fn own(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ldchain: serve: {msg}");
    ExitCode::from(EXIT_LDCHAIN)
}

/// A path for a message: control bytes and invalid UTF-8 escaped.
fn show(p: &Path) -> String {
    escape::for_terminal(p.as_os_str().as_bytes())
}

/// The socket's and the answer directory's names in `SOCKET_DIR`: the last
/// components of [`SERVICE_PATH`] and [`ANSWER_DIR`], which share the
/// directory the jail binds `SOCKET_DIR` at.
fn layout() -> (&'static OsStr, &'static OsStr) {
    let socket = Path::new(OsStr::from_bytes(SERVICE_PATH));
    let answers = Path::new(OsStr::from_bytes(ANSWER_DIR));
    assert_eq!(
        socket.parent(),
        answers.parent(),
        "the socket and the answers share a directory"
    );
    (
        socket.file_name().expect("a name"),
        answers.file_name().expect("a name"),
    )
}

/// `path` through the descriptor of its directory: no component of the
/// caller's path is resolved again (and a socket path stays short).
fn via(dir: BorrowedFd<'_>, name: impl AsRef<OsStr>) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name.as_ref())
}

pub fn main(args: ServeArgs) -> ExitCode {
    let c = &args.common;
    if !c.env.is_empty() || c.ignore_environment || !c.setenv.is_empty() || !c.unsetenv.is_empty() {
        return own(
            "--env, -i, --setenv and --unsetenv do not apply: serve starts no program \
             (the jail's programs bring their own environment)",
        );
    }
    // First of all, so that a SIGTERM during set-up is a clean stop too.
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => return own(format!("cannot handle SIGTERM and SIGINT: {e}")),
    };
    let ns = match Namespace::open(&args.root) {
        Ok(ns) => ns,
        Err(e) => return own(format!("{}: {e}", show(&args.root))),
    };
    let dir = match SocketDir::take(&args.socket_dir) {
        Ok(d) => d,
        Err(e) => return own(e),
    };
    let service = match start(&args, ns, &dir) {
        Ok(s) => s,
        Err(e) => return own(e),
    };
    // Told to stop during set-up: stop, without claiming to be ready.
    let early = signals.pending().next();
    if early.is_none() {
        // Not eprintln: a reader of stderr that has gone must not make serve panic.
        let _ = writeln!(io::stderr(), "{READY}");
    }
    if let Some(signal) = early.or_else(|| signals.forever().next()) {
        info!(signal, "ldchain serve: stopping");
    }
    // New clients find no socket (the stub then fails with one line); those
    // already connected are answered while the service stops.
    dir.unlink_socket();
    drop(service);
    // Only now, with no thread left to leave a link: the answers go.
    drop(dir);
    ExitCode::SUCCESS
}

/// Start the service on `dir`'s socket, the answers in its `ld/`, and put
/// the socket in place.
fn start(args: &ServeArgs, ns: Namespace, dir: &SocketDir) -> Result<ExecService, String> {
    let answers = dir
        .fresh_answers()
        .map_err(|e| format!("{}: cannot make the answer directory: {e}", show(&dir.path)))?;
    let resolver = Resolver::new(args.common.config(Strategy::Chainloader));
    let source = Arc::new(NamespaceSource::new(resolver, ns).with_answer_dir(answers));
    // As `ldchain run`: the inotify instance's last close (an SRCU grace
    // period) happens after serve has exited.
    if let Some(instance) = source.lasting() {
        if let Err(e) = after_exit(AfterExit {
            keep: Some(instance),
            remove: None,
        }) {
            debug!(error = %e, "the answer cache's inotify instance will be closed at exit");
        }
    }
    let listener = dir
        .listen()
        .map_err(|e| format!("{}: cannot make the socket: {e}", show(&dir.path)))?;
    let service = ExecService::start(listener, source, Limits::default())
        .map_err(|e| format!("cannot start the exec service: {e}"))?;
    dir.publish_socket()
        .map_err(|e| format!("{}: cannot put the socket in place: {e}", show(&dir.path)))?;
    info!(root = %show(&args.root), socket_dir = %show(&dir.path), "ldchain serve: serving");
    Ok(service)
}

/// `SOCKET_DIR`, checked, locked and ours until dropped, when everything
/// serve made in it goes (and the directory itself, if serve made it).
struct SocketDir {
    path: PathBuf,
    /// The directory, open; `flock`ed for serve's life.
    fd: OwnedFd,
    /// (device, inode) of the directory if serve created it.
    created: Option<(u64, u64)>,
    socket: &'static OsStr,
    answers: &'static OsStr,
    /// The lock is ours: a directory serve made may be removed again.
    locked: bool,
    /// Checked and locked: what is in it is serve's to remove.
    ours: bool,
}

impl SocketDir {
    /// Create or take `path` (see the module docs for what is refused).
    fn take(given: &Path) -> Result<SocketDir, String> {
        // Without trailing slashes or `.`s: `link/` and `link/.` would
        // follow a symbolic link `link` that `link` alone refuses.
        let path: PathBuf = given.components().collect();
        let path = path.as_path();
        let (socket, answers) = layout();
        let at = |e: Errno| format!("{}: {e}", show(path));
        let symlink = || {
            format!(
                "{}: is a symbolic link (refused: give the directory itself)",
                show(path)
            )
        };
        let not_dir = || format!("{}: exists and is not a directory", show(path));
        let made = match rustix::fs::lstat(path) {
            Err(Errno::NOENT) => {
                rustix::fs::mkdir(path, Mode::from_raw_mode(0o755))
                    .map_err(|e| format!("{}: cannot create it: {e}", show(path)))?;
                true
            }
            Err(e) => return Err(at(e)),
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => return Err(symlink()),
                FileType::Directory => false,
                _ => return Err(not_dir()),
            },
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| match e {
            Errno::LOOP => symlink(),
            Errno::NOTDIR => not_dir(),
            e => at(e),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(at)?;
        let mut dir = SocketDir {
            path: path.to_owned(),
            fd,
            created: made.then_some((st.st_dev, st.st_ino)),
            socket,
            answers,
            locked: false,
            ours: false,
        };
        // Until it is ours, a refusal (dropping `dir`) leaves everything in
        // it alone: only a directory serve made itself, still empty, goes.
        let me = rustix::process::geteuid().as_raw();
        if st.st_uid != me {
            let why = format!(
                "{}: owned by uid {}, not by this user (uid {me}): its owner could replace the socket or the answers",
                show(path),
                st.st_uid
            );
            return Err(why);
        }
        if made {
            // Whatever the umask: everyone searches it, only serve writes.
            if let Err(e) = rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(0o755)) {
                return Err(at(e));
            }
        } else if st.st_mode & 0o022 != 0 {
            let why = format!(
                "{}: writable by group or others (mode {:o}): they could replace the socket or the answers",
                show(path),
                st.st_mode & 0o7777
            );
            return Err(why);
        }
        match rustix::fs::flock(&dir.fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => dir.locked = true,
            Err(Errno::WOULDBLOCK) => {
                let why = format!("{}: another ldchain serve is serving it", show(path));
                return Err(why);
            }
            Err(e) => return Err(at(e)),
        }
        dir.check_leftovers()?;
        dir.ours = true;
        Ok(dir)
    }

    /// Everything in the directory must be an earlier serve's: its socket
    /// (nobody listening: it goes) and its answer directory (symbolic
    /// links only: they go with [`fresh_answers`](Self::fresh_answers)).
    /// Anything else is refused, before anything is removed.
    fn check_leftovers(&self) -> Result<(), String> {
        let at = |e: io::Error| format!("{}: {e}", show(&self.path));
        let foreign = |name: &[u8]| {
            format!(
                "{}: not empty, and {} was not left by ldchain serve (give an empty or missing directory)",
                show(&self.path),
                escape::for_terminal(name)
            )
        };
        let mut socket = false;
        for name in entries(self.fd.as_fd()).map_err(at)? {
            let ty = type_at(self.fd.as_fd(), &name).map_err(at)?;
            let name = name.as_slice();
            if name == self.socket.as_bytes() && ty == FileType::Socket {
                socket = true;
            } else if name == NEW_SOCKET.as_bytes() && ty == FileType::Socket {
                // Removed by `listen`.
            } else if name == self.answers.as_bytes() && ty == FileType::Directory {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let ld = rustix::fs::openat(&self.fd, self.answers, flags, Mode::empty()).map_err(|e| at(e.into()))?;
                for link in entries(ld.as_fd()).map_err(at)? {
                    if type_at(ld.as_fd(), &link).map_err(at)? != FileType::Symlink {
                        return Err(foreign(&[name, b"/", &link].concat()));
                    }
                }
            } else {
                return Err(foreign(name));
            }
        }
        if socket {
            self.unlink_stale_socket()?;
        }
        Ok(())
    }

    /// The socket of a serve that did not stop cleanly goes; one that
    /// still accepts connections is someone's (no serve holds the lock).
    fn unlink_stale_socket(&self) -> Result<(), String> {
        let name = Path::new(&self.path).join(self.socket);
        match UnixStream::connect(via(self.fd.as_fd(), self.socket)) {
            Ok(_) => Err(format!(
                "{}: something is already listening there (a server outside this lock: stop it first)",
                show(&name)
            )),
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                debug!(socket = %show(&name), "removing the socket of a serve that did not stop cleanly");
                rustix::fs::unlinkat(&self.fd, self.socket, AtFlags::empty())
                    .map_err(|e| format!("{}: {e}", show(&name)))
            }
            Err(e) => Err(format!("{}: {e}", show(&name))),
        }
    }

    /// An empty answer directory, mode 0755 (only serve writes there), open.
    fn fresh_answers(&self) -> io::Result<OwnedFd> {
        self.remove_answers();
        let mode = Mode::from_raw_mode(0o755);
        rustix::fs::mkdirat(&self.fd, self.answers, mode)?;
        rustix::fs::chmodat(&self.fd, self.answers, mode, AtFlags::empty())?;
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(rustix::fs::openat(&self.fd, self.answers, flags, Mode::empty())?)
    }

    /// Listen on the socket, still under its temporary name, mode 0666:
    /// every uid of the jail execs through it.
    fn listen(&self) -> io::Result<UnixListener> {
        let _ = rustix::fs::unlinkat(&self.fd, NEW_SOCKET, AtFlags::empty());
        let listener = UnixListener::bind(via(self.fd.as_fd(), NEW_SOCKET))?;
        rustix::fs::chmodat(&self.fd, NEW_SOCKET, Mode::from_raw_mode(0o666), AtFlags::empty())?;
        Ok(listener)
    }

    /// Give the listening socket its name.
    fn publish_socket(&self) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, NEW_SOCKET, &self.fd, self.socket)?)
    }

    fn unlink_socket(&self) {
        let _ = rustix::fs::unlinkat(&self.fd, self.socket, AtFlags::empty());
        let _ = rustix::fs::unlinkat(&self.fd, NEW_SOCKET, AtFlags::empty());
    }

    /// The answer directory and its links (nothing else is ever there).
    fn remove_answers(&self) {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let Ok(ld) = rustix::fs::openat(&self.fd, self.answers, flags, Mode::empty()) else {
            return;
        };
        for name in entries(ld.as_fd()).unwrap_or_default() {
            let _ = rustix::fs::unlinkat(&ld, name.as_slice(), AtFlags::empty());
        }
        let _ = rustix::fs::unlinkat(&self.fd, self.answers, AtFlags::REMOVEDIR);
    }

    /// The directory itself, if serve made it, holds its lock, and it is
    /// still that one (a serve that lost the race for the lock leaves the
    /// winner's directory alone).
    fn remove_if_created(&self) {
        let Some(made) = self.created.filter(|_| self.locked) else {
            return;
        };
        if let Ok(st) = rustix::fs::lstat(&self.path) {
            if (st.st_dev, st.st_ino) == made {
                let _ = rustix::fs::rmdir(&self.path);
            }
        }
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        if self.ours {
            self.unlink_socket();
            self.remove_answers();
        }
        self.remove_if_created();
    }
}

/// The names in directory `dir` (`.` and `..` left out).
fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// What `name` in `dir` is, without following it.
fn type_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<FileType> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(st.st_mode))
}
