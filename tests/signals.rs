//! The chainloader under a signal storm: a thousand runs while another
//! thread stops, continues and pokes each one (SIGSTOP, SIGCONT, and
//! SIGWINCH, whose default action does nothing) as fast as it can. Every run
//! must complete with the right output. Signals go through a pidfd, so a
//! reaped process's id is never signalled.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustix::process::{pidfd_open, pidfd_send_signal, PidfdFlags, Signal};
use support::*;

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
