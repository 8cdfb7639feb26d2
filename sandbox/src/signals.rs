//! Signals as a well-behaved wrapper passes them: `SIGINT`, `SIGTERM`,
//! `SIGHUP` and `SIGQUIT` sent to ldchain go to the jail's init, and from
//! there to the program; a program that dies by a signal makes ldchain die
//! by the same signal (so that a shell loop around `ldchain run` stops at
//! the first ^C).
//!
//! # Safety
//!
//! The handler only loads an atomic and calls `kill(2)`, which is
//! async-signal-safe. Dispositions and masks are changed with
//! `sigaction(2)` and `sigprocmask(2)` on data built on the stack; both are
//! async-signal-safe, so they may run between `fork` and `exec`.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicI32, Ordering};

/// The signals passed on.
const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Where [`forward`] sends them (0: nowhere yet). Each process (ldchain,
/// the init) has its own copy.
static TARGET: AtomicI32 = AtomicI32::new(0);

/// A signal that came before there was anywhere to send it.
static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and touches no memory.
        unsafe { libc::kill(pid, sig) };
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

/// Catch the forwarded signals from now on; one that comes before
/// [`forward_to`] names a target is kept and sent then.
fn install() {
    for &sig in &FORWARDED {
        // SAFETY: a zeroed sigaction is valid; the handler is an extern "C"
        // fn that lives as long as the process; the kernel only reads `act`.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = forward as extern "C" fn(libc::c_int) as usize;
            act.sa_flags = libc::SA_RESTART;
            act.sa_mask = set_of(&FORWARDED);
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

fn set_of(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the set on our stack.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn mask(how: libc::c_int) {
    let set = set_of(&FORWARDED);
    // SAFETY: sigprocmask reads `set`, a valid initialised sigset_t.
    unsafe { libc::sigprocmask(how, &set, std::ptr::null_mut()) };
}

/// In a new process (a copy of its parent): hold the forwarded signals
/// back (they stay pending) while a child that should receive them is
/// being made, and forget what the parent kept for its own target.
pub(crate) fn block() {
    mask(libc::SIG_BLOCK);
    PENDING.store(0, Ordering::SeqCst);
}

/// Let the forwarded signals in again.
pub(crate) fn unblock() {
    mask(libc::SIG_UNBLOCK);
}

/// In the calling thread, hold the forwarded signals back (they stay
/// pending) until [`unblock`]: around the clone of a process that must not
/// take them before it can pass them on.
pub(crate) fn hold() {
    mask(libc::SIG_BLOCK);
}

/// In a program's own process, just before its exec: every signal let in,
/// and `SIGPIPE` back at its default (Rust's runtime ignores it, and an
/// ignored signal stays ignored across exec), as `Command` does.
pub(crate) fn reset_for_exec() {
    // SAFETY: an empty set built on the stack; sigprocmask reads it and
    // sigaction reads a zeroed sigaction with SIG_DFL (no code installed).
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGPIPE, &act, std::ptr::null_mut());
    }
}

/// From now on, pass every forwarded signal to `pid`, then let in those
/// that were held back. Async-signal-safe.
pub(crate) fn forward_to(pid: libc::pid_t) {
    install();
    TARGET.store(pid, Ordering::SeqCst);
    unblock();
    let early = PENDING.swap(0, Ordering::SeqCst);
    if early != 0 {
        // SAFETY: as in `forward`.
        unsafe { libc::kill(pid, early) };
    }
}

/// In ldchain, before starting the jail: catch `SIGINT`, `SIGTERM`,
/// `SIGHUP` and `SIGQUIT`, keeping one that comes before the jail runs for
/// [`forward_signals`].
pub fn catch_signals() {
    install();
}

/// In ldchain: pass `SIGINT`, `SIGTERM`, `SIGHUP` and `SIGQUIT` on to the
/// jail's PID 1, `pid` ([`Jailed::id`](crate::boundary::Jailed::id))
/// instead of dying by them. The jail decides; ldchain then exits
/// as the program did ([`die_by`]).
pub fn forward_signals(pid: u32) {
    forward_to(pid as libc::pid_t);
}

/// Die by signal `sig`, as the program did: its default action, without a
/// core dump of this process; exit status 128 + `sig` if it does not kill.
/// Async-signal-safe.
pub fn die_by(sig: i32) -> ! {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads `no_core`; sigaction with SIG_DFL installs no
    // code; sigprocmask reads a valid set; raise and _exit touch no memory.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &act, std::ptr::null_mut());
        let set = set_of(&[sig]);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        // Thread-directed: delivered to this thread before raise returns.
        libc::raise(sig);
        libc::_exit(128 + sig)
    }
}
