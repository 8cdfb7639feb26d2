//! `ldchain run --pty`: the jail gets a pseudo-terminal of its own, from its
//! own `devpts` instance, as its controlling terminal (so job control works
//! inside, and `tty` names it as the jail sees it); ldchain relays it to the
//! caller's terminal, which stays out of the jail's reach.
//!
//! # Safety
//!
//! The `SIGWINCH` handler only loads an atomic and makes two `ioctl`s on
//! a `struct winsize` on its own stack (async-signal-safe).
#![allow(unsafe_code)]

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use rustix::pty::OpenptFlags;
use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, tcsetwinsize, OptionalActions, Termios};

/// A pseudo-terminal pair: the side ldchain relays, and the jail's side.
#[derive(Debug)]
pub struct Pty {
    /// ldchain's side.
    pub master: OwnedFd,
    /// The program's controlling terminal (its descriptors 0, 1 and 2).
    pub terminal: OwnedFd,
}

/// Open a new pseudo-terminal in the `devpts` instance `pts` (a descriptor
/// of its root: the jail's `/dev/pts`).
pub(crate) fn open_in(pts: impl AsFd) -> io::Result<Pty> {
    let flags = rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC;
    let master = rustix::fs::openat(pts, c"ptmx", flags, rustix::fs::Mode::empty())?;
    rustix::pty::unlockpt(&master)?;
    // The peer of this very master: no path looked up.
    let terminal = rustix::pty::ioctl_tiocgptpeer(&master, OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    Ok(Pty { master, terminal })
}

/// The master the `SIGWINCH` handler resizes (-1: none).
static MASTER: AtomicI32 = AtomicI32::new(-1);

extern "C" fn resized(_: libc::c_int) {
    let master = MASTER.load(Ordering::Relaxed);
    if master >= 0 {
        // SAFETY: ioctls on a winsize on this stack; async-signal-safe.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(master, libc::TIOCSWINSZ, &ws);
            }
        }
    }
}

/// Relaying a [`Pty`] to ldchain's own descriptors 0 and 1 (raw mode on the
/// caller's terminal while it lasts; restored by [`Relay::finish`]).
pub struct Relay {
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
}

impl Relay {
    /// Start relaying: the caller's window size now and on every
    /// `SIGWINCH`; input from descriptor 0 to the master, and the master's
    /// output to descriptor 1, each on a thread of its own.
    pub fn start(master: OwnedFd) -> io::Result<Relay> {
        let stdin = rustix::stdio::stdin();
        let saved = tcgetattr(stdin).ok();
        if let Ok(ws) = tcgetwinsize(stdin) {
            let _ = tcsetwinsize(&master, ws);
        }
        MASTER.store(master.as_raw_fd(), Ordering::Relaxed);
        // SAFETY: the handler is async-signal-safe (module docs).
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = resized as extern "C" fn(libc::c_int) as usize;
            act.sa_flags = libc::SA_RESTART;
            libc::sigaction(libc::SIGWINCH, &act, std::ptr::null_mut());
        }
        if let Some(t) = &saved {
            let mut raw = t.clone();
            raw.make_raw();
            tcsetattr(stdin, OptionalActions::Now, &raw)?;
        }
        let mut to_master = std::fs::File::from(master.try_clone()?);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut input = io::stdin().lock();
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 || to_master.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut from_master = std::fs::File::from(master);
        let output = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut out = io::stdout().lock();
            // EIO once the jail's last holder of the terminal is gone.
            while let Ok(n) = from_master.read(&mut buf) {
                if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
        });
        Ok(Relay {
            saved,
            output: Some(output),
        })
    }

    /// The jail has ended: pass on what it wrote last, and give the caller
    /// its terminal back as it was.
    pub fn finish(mut self) {
        if let Some(t) = self.output.take() {
            let _ = t.join();
        }
        self.restore();
    }

    fn restore(&mut self) {
        MASTER.store(-1, Ordering::Relaxed);
        if let Some(t) = self.saved.take() {
            let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &t);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.restore();
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("raw", &self.saved.is_some()).finish()
    }
}

/// In the program's process (after fork, before exec): a session of its
/// own with `terminal` (raw descriptor) as its controlling terminal and as
/// its descriptors 0, 1 and 2. Async-signal-safe.
pub(crate) fn take_terminal(terminal: i32) -> rustix::io::Result<()> {
    match rustix::process::setsid() {
        // Already a session's leader (the jail's PID 1 with --as-pid-1).
        Ok(_) | Err(rustix::io::Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    // SAFETY: ioctl and dup2 on descriptors, no memory but the arguments.
    unsafe {
        if libc::ioctl(terminal, libc::TIOCSCTTY, 0) != 0 {
            return Err(rustix::io::Errno::from_raw_os_error(*libc::__errno_location()));
        }
        for n in 0..3 {
            if libc::dup2(terminal, n) < 0 {
                return Err(rustix::io::Errno::from_raw_os_error(*libc::__errno_location()));
            }
        }
    }
    Ok(())
}

/// Whether descriptor `fd` is a terminal.
pub fn is_terminal(fd: impl AsFd) -> bool {
    rustix::termios::isatty(fd)
}
