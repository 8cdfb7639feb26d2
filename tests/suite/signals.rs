//! The chainloader and signals. Two different things:
//!
//! - EINTR. The chainloader installs no handlers, so no real signal can make
//!   its system calls fail with EINTR (the kernel restarts them); DESIGN.md
//!   promises they are retried anyway, and `close` is not. strace's fault
//!   injection makes each call fail with EINTR once, at will.
//! - A signal storm: a thousand runs while another thread stops, continues
//!   and pokes each one (SIGSTOP, SIGCONT, and SIGWINCH, whose default action
//!   does nothing) as fast as it can. Every run must complete with the right
//!   output: being stopped and continued anywhere in the loader is harmless.
//!   Signals go through a pidfd, so a reaped process's id is never signalled.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::support::*;
use rustix::process::{pidfd_open, pidfd_send_signal, PidfdFlags, Signal};

#[test]
fn a_thousand_runs_under_sigstop_sigcont_and_a_do_nothing_signal() {
    let Some(probe) = glibc_probe() else { return };
    let ldso = open(&glibc_ldso());
    let fd = fdnum(&ldso);
    let runs = 1000;
    let signals_sent = AtomicUsize::new(0);
    for i in 0..runs {
        let n = i.to_string();
        let mut cmd = std::process::Command::new(host_chainloader());
        cmd.args([fd.as_str(), "ld.so"]).arg(&probe).args(["args", &n]);
        let child = spawn_with_fds(&mut cmd, &[&ldso]);
        let pid = rustix::process::Pid::from_child(&child);
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).expect("pidfd_open");
        let done = AtomicBool::new(false);
        let out = std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    for sig in [Signal::STOP, Signal::CONT, Signal::WINCH] {
                        if pidfd_send_signal(&pidfd, sig).is_ok() {
                            signals_sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                // Never leave it stopped.
                let _ = pidfd_send_signal(&pidfd, Signal::CONT);
            });
            let out = child.wait_with_output().expect("wait");
            done.store(true, Ordering::Relaxed);
            out
        });
        let run: Run = out.into();
        assert_eq!(run.code, Some(0), "run {i}: {run:#?}");
        assert_eq!(
            run.stdout,
            format!("argc=3\nargv[0]={}\nargv[1]=args\nargv[2]={i}\n", probe.display()),
            "run {i}"
        );
    }
    let sent = signals_sent.load(Ordering::Relaxed);
    eprintln!("{runs} runs completed under {sent} signals");
    assert!(sent >= runs * 3, "the storm was too weak: {sent} signals");
}

/// Run the glibc probe through the host chainloader under
/// `strace -e trace=CALL -e inject=CALL:error=EINTR:when=N`: the Nth call
/// of CALL in the process fails with EINTR (without being made). N = 0:
/// only trace (CALL may then be a list).
fn with_eintr(call: &str, when: usize, fd: &str, probe: &std::path::Path, ldso: &std::fs::File) -> Run {
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-qq", "-e"]).arg(format!("trace={call}"));
    if when > 0 {
        cmd.arg("-e").arg(format!("inject={call}:error=EINTR:when={when}"));
    }
    cmd.arg(host_chainloader())
        .args([fd, "ld.so"])
        .arg(probe)
        .args(["args", "x"]);
    run_with_fds(&mut cmd, &[ldso])
}

#[test]
fn eintr_from_every_loader_system_call_is_retried_except_close() {
    if !require("strace", "injecting EINTR into the chainloader's system calls") {
        return;
    }
    let Some(probe) = glibc_probe() else { return };
    let ldso = open(&glibc_ldso());
    let fd = fdnum(&ldso);
    let want = format!("argc=3\nargv[0]={}\nargv[1]=args\nargv[2]=x\n", probe.display());
    // The chainloader's own calls come first in the process, up to its
    // close(FD): for glibc's ld.so, pread64 twice (the headers, then the
    // tail of the data segment's last file page); then prctl once (comm).
    let plain = with_eintr("pread64,close", 0, &fd, &probe, &ldso).ok();
    let preads = plain
        .stderr
        .lines()
        .take_while(|l| !l.starts_with(&format!("close({fd})")))
        .filter(|l| l.starts_with(&format!("pread64({fd}")))
        .count();
    assert!(preads >= 2, "{plain:#?}");
    let cases = (1..=preads).map(|n| ("pread64", n)).chain([("prctl", 1)]);
    for (call, when) in cases {
        let run = with_eintr(call, when, &fd, &probe, &ldso);
        let injected = format!("{call}({fd}");
        let calls: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with(&call[..5])).collect();
        assert!(
            calls
                .get(when - 1)
                .is_some_and(|l| l.contains("EINTR") && l.contains("(INJECTED)")),
            "{call} #{when}: no EINTR was injected: {run:#?}"
        );
        // The same call again, and this time it is made.
        assert!(
            calls.get(when).is_some_and(|l| !l.contains("INJECTED")),
            "{call} #{when} is not retried: {run:#?}"
        );
        if call == "pread64" {
            assert!(calls[when - 1].starts_with(&injected), "{run:#?}");
        }
        assert_eq!(
            (run.code, run.signal),
            (Some(0), None),
            "EINTR from {call} #{when}: {run:#?}"
        );
        assert_eq!(run.stdout, want, "EINTR from {call} #{when}");
    }
    // close is not retried: on Linux the descriptor is gone even when close
    // reports EINTR, and a second close could hit a descriptor opened since.
    // (Injection skips the call, so here the descriptor stays open; glibc's
    // ld.so then uses the next number.)
    let run = with_eintr("close", 1, &fd, &probe, &ldso);
    let closes: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with(&format!("close({fd})")))
        .collect();
    assert_eq!(closes.len(), 1, "close({fd}) retried after EINTR: {run:#?}");
    assert!(closes[0].contains("(INJECTED)"), "{run:#?}");
    assert_eq!((run.code, run.signal), (Some(0), None), "EINTR from close: {run:#?}");
    assert_eq!(run.stdout, want);
    // mmap is the exception: the kernel returns EINTR from mmap only when a
    // fatal signal is pending (its killable mmap lock), so the process dies
    // before it could retry, and the chainloader (sys.rs) does not retry it.
    // An injected one must still end cleanly: the program runs, or one line
    // and 127, never a crash.
    let run = with_eintr("mmap", 1, &fd, &probe, &ldso);
    if run.code != Some(0) {
        assert_eq!((run.code, run.signal), (Some(127), None), "{run:#?}");
        let message: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("chainloader: ")).collect();
        assert_eq!(
            message,
            ["chainloader: image: cannot reserve address space: EINTR"],
            "{run:#?}"
        );
    } else {
        assert_eq!(run.stdout, want);
    }
}
