//! A jail people can live in: it ends with its program (or with its last
//! process, `--wait-all`), signals sent to ldchain reach the program and
//! ldchain ends as the program did, a terminal's ^C stops a shell loop at
//! once, and `/dev`, ptys, `/dev/shm` and the loopback device are there.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn ldchain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ldchain"));
    c.stdin(Stdio::null()).env_remove("RUST_LOG");
    c
}

#[test]
fn the_jail_ends_with_its_program_unless_asked_to_wait_for_all() {
    // A daemon left behind does not hold ldchain, and does not live on.
    let marker = "4242.125";
    let mut c = ldchain();
    c.args(["run", "--", "/bin/sh", "-c"])
        .arg(format!("sleep {marker} & echo started; exit 3"));
    let out = output_within(&mut c, Duration::from_secs(20))
        .unwrap()
        .expect("ldchain waited for the daemon");
    let r = Run::from(out);
    assert_eq!((r.code, r.stdout.as_str()), (Some(3), "started\n"), "{r:#?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids_with_cmdline(format!("sleep\0{marker}\0").as_str()).is_empty() {
        assert!(Instant::now() < deadline, "the daemon outlived the jail");
        std::thread::sleep(Duration::from_millis(20));
    }
    // With --wait-all, what is left finishes its work first; the status is
    // still the program's.
    for (wait_all, want) in [(true, "late\n"), (false, "")] {
        let mut c = ldchain();
        c.arg("run");
        if wait_all {
            c.arg("--wait-all");
        }
        c.args(["--", "/bin/sh", "-c", "(sleep 0.3; echo late) & exit 4"]);
        let r = Run::from(
            output_within(&mut c, Duration::from_secs(20))
                .unwrap()
                .expect("bounded"),
        );
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (Some(4), want),
            "--wait-all {wait_all}: {r:#?}"
        );
    }
}

/// `ldchain run -- sh -c 'trap …; echo ready; wait'`: a signal sent to
/// ldchain's pid reaches the program; ldchain then exits as it did, and
/// leaves nothing behind either way (the throwaway jail's directory in
/// `$TMPDIR` is removed, by ldchain's keeper just after it has ended).
#[test]
fn signals_sent_to_ldchain_reach_the_program_and_ldchain_ends_as_it_did() {
    for (sig, name) in [(2, "INT"), (15, "TERM"), (1, "HUP"), (3, "QUIT")] {
        for trapped in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let trap = if trapped {
                format!("trap 'echo got-{name}; exit 7' {name}; ")
            } else {
                String::new()
            };
            let mut c = ldchain();
            c.env("TMPDIR", tmp.path())
                .args(["run", "--", "/bin/sh", "-c"])
                .arg(format!("{trap}echo ready; sleep 30 & wait"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            let mut buf = [0u8; 6];
            stdout.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ready\n");
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
                rustix::process::Signal::from_named_raw(sig).unwrap(),
            )
            .unwrap();
            let status = wait_within(&mut child, Duration::from_secs(20));
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).unwrap();
            use std::os::unix::process::ExitStatusExt;
            if trapped {
                assert_eq!(
                    (status.code(), rest.as_str()),
                    (Some(7), format!("got-{name}\n").as_str()),
                    "{name}"
                );
            } else {
                assert_eq!(
                    (status.code(), status.signal()),
                    (None, Some(sig)),
                    "{name}: {status:?}"
                );
            }
            // Removed by ldchain's keeper once ldchain has ended.
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
                if left.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name}, trapped {trapped}: left behind: {left:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Run `argv` (a Python list; `LDCHAIN` names this build) on a new
/// pseudo-terminal (Python's `pty`), drive it with `steps` (Python, with
/// `fd` the terminal, `out` what it printed, `read_until(pred)` reading
/// until `pred()` holds, the terminal closes or 15 s pass), then print what
/// it printed, `exit=N` and `signal=N`.
fn on_a_pty(argv: &str, steps: &str) -> Run {
    let script = format!(
        r#"
import os, pty, signal, sys, time, select
LDCHAIN = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    # As a terminal's shell starts: ^C and ^\ at their defaults, whatever
    # this test process inherited (a job started with `&` by a
    # non-interactive shell ignores both, and bash keeps an ignored SIGINT).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    argv = {argv}
    os.execvp(argv[0], argv)
out = b""
deadline = time.time() + 15
def read_until(pred):
    global out
    while not pred() and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            out += chunk
{steps}
if time.time() >= deadline:
    os.kill(pid, 9)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
sys.stdout.write("\nexit=%d\nsignal=%d\n" % (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
                                          os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0))
"#
    );
    let mut c = Command::new("python3");
    c.args(["-c", &script, env!("CARGO_BIN_EXE_ldchain")]);
    Run::from(
        output_within(&mut c, Duration::from_secs(60))
            .unwrap()
            .expect("bounded"),
    )
}

fn wait_within(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// On a real pseudo-terminal (Python's `pty`), one ^C ends a bash loop of
/// three `ldchain run`: ldchain dies by SIGINT, so bash stops too.
#[test]
fn one_ctrl_c_on_a_terminal_stops_a_shell_loop() {
    if !require("python3", "drives a pseudo-terminal") || !require("bash", "the shell whose loop ^C must stop") {
        return;
    }
    let r = on_a_pty(
        r#"["bash", "-c", 'for i in 1 2 3; do "$0" run -- /bin/sh -c "echo started; exec sleep 100"; done; echo after', LDCHAIN]"#,
        r#"
read_until(lambda: b"started" in out)
os.write(fd, b"\x03")
read_until(lambda: False)
"#,
    );
    assert_eq!(r.stdout.matches("started").count(), 1, "{r:#?}");
    assert!(!r.stdout.contains("after"), "{r:#?}");
    assert!(r.stdout.ends_with("\nsignal=2\n"), "bash did not stop by ^C: {r:#?}");
}

/// The throwaway jail's `/dev` is bwrap's: ptys from a private devpts,
/// POSIX semaphores in `/dev/shm`; `--unshare-net` brings `lo` up.
#[test]
fn dev_ptys_shm_and_loopback_work() {
    if !require("python3", "opens a pty and a multiprocessing lock inside the jail") {
        return;
    }
    let code = "import multiprocessing as m, pty, os, socket\n\
                m.Lock(); a, b = pty.openpty(); print(os.ttyname(b))\n\
                s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n\
                c = socket.create_connection(s.getsockname()); print('loopback ok')";
    let mut c = ldchain();
    c.args(["run", "--unshare-net", "--", "python3", "-c", code]);
    let r = Run::from(output(&mut c).unwrap()).ok();
    assert_eq!(r.stdout, "/dev/pts/0\nloopback ok\n");
    if nobody_can_run("the unprivileged variant") {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ldchain"))
            .args(["run", "--unshare-net", "--", "python3", "-c", code])
            .current_dir("/")
            .stdin(Stdio::null());
        let r = Run::from(output(&mut c).unwrap()).ok();
        assert_eq!(r.stdout, "/dev/pts/0\nloopback ok\n");
    }
    let _ = std::io::stdout().flush();
}

/// `--pty`: the jail gets its own terminal, from its own devpts, as its
/// controlling terminal: an interactive bash has job control inside, and a
/// ^C typed at the caller's terminal reaches the jail's foreground job
/// (through the jail's terminal), not ldchain.
#[test]
fn pty_gives_the_jail_a_terminal_with_job_control() {
    if !require("python3", "drives a pseudo-terminal") || !require("bash", "the interactive shell in the jail") {
        return;
    }
    let r = on_a_pty(
        r#"[LDCHAIN, "run", "--pty", "--", "/bin/bash", "--norc", "--noprofile", "-i"]"#,
        r#"
read_until(lambda: b"$ " in out)
os.write(fd, b"tty; set -m; sleep 100\n")
read_until(lambda: b"/dev/pts/" in out)
time.sleep(0.3)
os.write(fd, b"\x03")
os.write(fd, b"echo alive-$((6*7)); exit 3\n")
read_until(lambda: False)
"#,
    );
    assert!(r.stdout.contains("/dev/pts/0\n"), "{r:#?}");
    assert!(!r.stdout.contains("no job control"), "{r:#?}");
    assert!(
        r.stdout.contains("alive-42\n"),
        "the jail's shell did not survive its job's ^C: {r:#?}"
    );
    assert!(r.stdout.ends_with("\nexit=3\nsignal=0\n"), "{r:#?}");
}
