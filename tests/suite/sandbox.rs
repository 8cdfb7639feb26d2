//! `ldchain run` is a real boundary: each way out of the jail is
//! tried by a static attacker program (`tests/programs/escape.c`), as root
//! and as an unprivileged user (uid 65534 through `setpriv`), in the
//! throwaway jail and in a `--root` jail. Then the bwrap-style options.
//!
//! `LDCHAIN_TEST_BIN=/path/to/ldchain` runs the escape tests against another
//! build (to show that they fail on one without the sandbox).

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Who {
    Caller,
    Nobody,
}

/// Everything a test needs, readable by uid 65534: a copy of ldchain, the
/// attacker, a `--root` jail holding it, and a secret host file outside.
pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) escape: PathBuf,
    pub(crate) jail: Jail,
    pub(crate) secret: PathBuf,
}

pub(crate) const SECRET: &str = "host-secret-6a1f";

pub(crate) fn setup() -> Option<Setup> {
    let escape = compile("escape-static", "gcc", &["-static"], "escape.c")?;
    let dir = tempfile::Builder::new().prefix("ldchain-sandbox-").tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = std::env::var_os("LDCHAIN_TEST_BIN").unwrap_or(env!("CARGO_BIN_EXE_ldchain").into());
    copy_file(Path::new(&bin), &dir.path().join("ldchain"));
    let local = dir.path().join("escape");
    copy_file(&escape, &local);
    let secret = dir.path().join("secret");
    fs::write(&secret, format!("{SECRET}\n")).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    let jail = Jail::new();
    jail.add(&escape, "/bin/escape");
    Some(Setup {
        dir,
        escape: local,
        jail,
        secret,
    })
}

pub(crate) fn everyone() -> Vec<Who> {
    let mut v = vec![Who::Caller];
    if nobody_can_run("the unprivileged variant") {
        v.push(Who::Nobody);
    }
    v
}

impl Setup {
    /// `ldchain` run by `who`, with stdin from /dev/null.
    pub(crate) fn ldchain(&self, who: Who) -> Command {
        let bin = self.dir.path().join("ldchain");
        let mut c = match who {
            Who::Caller => Command::new(bin),
            Who::Nobody => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin);
                c
            }
        };
        c.stdin(Stdio::null()).env_remove("RUST_LOG").current_dir("/");
        c
    }

    /// Make the `--root` jail uid 65534's, so that a nobody run can use it.
    pub(crate) fn give_jail_to_nobody(&self) {
        let status = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(self.jail.path())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The attacker run with `args` in the throwaway jail (delivered on
    /// stdin into the jail's /tmp, so that any build can run it) and in the
    /// `--root` jail, each as `who`; `extra` are ldchain options.
    fn escape(&self, who: Who, extra: &[&str], args: &[&str]) -> [(String, Run); 2] {
        self.escape_commands(who, extra, args)
            .map(|(what, mut c)| (what, c.output().unwrap().into()))
    }

    /// The two commands [`escape`](Self::escape) runs, named, not yet run.
    fn escape_commands(&self, who: Who, extra: &[&str], args: &[&str]) -> [(String, Command); 2] {
        if who == Who::Nobody {
            self.give_jail_to_nobody();
        }
        let mut throwaway = self.ldchain(who);
        throwaway
            .arg("run")
            .args(extra)
            .args([
                "--",
                "/bin/sh",
                "-c",
                "cat > /tmp/escape && chmod 755 /tmp/escape && exec /tmp/escape \"$@\"",
                "sh",
            ])
            .args(args)
            .stdin(File::open(&self.escape).unwrap());
        let mut given = self.ldchain(who);
        given
            .args(["run", "--root"])
            .arg(self.jail.path())
            .args(extra)
            .arg("--")
            .arg("/bin/escape")
            .args(args);
        [("throwaway", throwaway), ("--root", given)].map(|(w, c)| (format!("{who:?} {w}"), c))
    }
}

/// Nothing got out: no "WHAT: ok" line and no secret, and the attacker ran.
pub(crate) fn contained(what: &str, r: &Run) {
    assert_eq!(r.code, Some(0), "{what}: {r:#?}");
    assert!(
        !r.stdout.contains(": ok") && !r.stdout.contains(SECRET),
        "{what}: got out: {r:#?}"
    );
}

#[test]
fn the_program_cannot_read_a_host_file_outside_its_binds() {
    let Some(s) = setup() else { return };
    let secret = s.secret.to_str().unwrap();
    for who in everyone() {
        for cmd in ["read", "chroot", "proc"] {
            for (what, r) in s.escape(who, &[], &[cmd, secret]) {
                contained(&format!("{what} {cmd}"), &r);
                assert!(r.stdout.starts_with(&cmd[..4]), "{what} {cmd}: {r:#?}");
            }
        }
    }
}

#[test]
fn the_program_cannot_remount_or_write_through_a_read_only_bind() {
    let Some(s) = setup() else { return };
    let shared = s.dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    // Writable by everyone on the host: only the read-only bind protects it.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let host_usr_file = Path::new("/usr/escape-file");
    for who in everyone() {
        // The throwaway jail's own read-only /usr, bound from the host's.
        let [(what, r), _] = s.escape(who, &[], &["remount", "/usr"]);
        let wrote = host_usr_file.exists();
        let _ = fs::remove_file(host_usr_file);
        contained(&what, &r);
        assert!(!wrote, "{what}: wrote into the host's /usr: {r:#?}");
        let bind = ["--ro-bind", shared.to_str().unwrap(), "/data"];
        for (what, r) in s.escape(who, &bind, &["remount", "/data"]) {
            contained(&what, &r);
            assert!(r.stdout.contains("write: failed"), "{what}: {r:#?}");
        }
    }
    assert_eq!(fs::read_dir(&shared).unwrap().count(), 0, "a file appeared on the host");
}

#[test]
fn the_program_cannot_see_or_signal_a_host_process() {
    let Some(s) = setup() else { return };
    // Owned by uid 65534, so that even an unprivileged jail's user may
    // signal it if it can reach it at all.
    let mut sleep = if rustix::process::geteuid().is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "60"])
            .spawn()
    } else {
        Command::new("sleep").arg("60").spawn()
    }
    .unwrap();
    let pid = sleep.id().to_string();
    for who in everyone() {
        for (what, r) in s.escape(who, &[], &["kill", &pid]) {
            contained(&what, &r);
            assert!(r.stdout.contains("kill: failed"), "{what}: {r:#?}");
            assert!(
                sleep.try_wait().unwrap().is_none(),
                "{what}: the host's sleep was killed"
            );
        }
    }
    sleep.kill().unwrap();
    sleep.wait().unwrap();
}

/// `cmd` with descriptor 5 open on `dir` (not close-on-exec), as a shell's
/// `5</some/dir` leaves it.
fn with_fd_5(cmd: &mut Command, dir: &Path) -> File {
    let d = File::open(dir).unwrap();
    pass_as_fd(cmd, &d, 5);
    d
}

#[test]
fn the_program_cannot_use_a_descriptor_it_was_not_given() {
    let Some(s) = setup() else { return };
    for who in everyone() {
        for given in [false, true] {
            let extra: &[&str] = if given { &["--keep-fd", "5"] } else { &[] };
            for (what, mut cmd) in s.escape_commands(who, extra, &["fd", "5", "secret"]) {
                let _d = with_fd_5(&mut cmd, s.dir.path());
                let r: Run = cmd.output().unwrap().into();
                if given {
                    // --keep-fd passes it on purpose.
                    assert_eq!(r.stdout, format!("fd: ok {SECRET}\n"), "{what}: {r:#?}");
                } else {
                    contained(&what, &r);
                    assert!(r.stdout.contains("fd: failed"), "{what}: {r:#?}");
                }
            }
        }
    }
}

/// A pseudo-terminal: the master, and the slave's path.
fn pty() -> (File, PathBuf) {
    // SAFETY: plain libc calls on a descriptor we own.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(m >= 0 && libc::grantpt(m) == 0 && libc::unlockpt(m) == 0);
        let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_str().unwrap().to_owned();
        (std::os::fd::FromRawFd::from_raw_fd(m), PathBuf::from(name))
    }
}

#[test]
fn the_program_cannot_type_into_the_callers_terminal() {
    let Some(s) = setup() else { return };
    for who in everyone() {
        let python = require("/usr/bin/python3", "the TIOCSTI attempt from the throwaway jail");
        let mut throwaway = s.ldchain(who);
        throwaway.args([
            "run",
            "--",
            "/usr/bin/python3",
            "-c",
            "import os,fcntl,termios\nprint('sid=%d pid=%d' % (os.getsid(0), os.getpid()))\n\
             try:\n fcntl.ioctl(0, termios.TIOCSTI, b'#'); print('tiocsti-stdin: ok')\n\
             except OSError as e: print('tiocsti-stdin: failed (%s)' % e)",
        ]);
        let mut root = s.ldchain(who);
        root.args(["run", "--root"])
            .arg(s.jail.path())
            .args(["--", "/bin/escape", "tty"]);
        let runs = if python {
            vec![("throwaway", throwaway), ("--root", root)]
        } else {
            vec![("--root", root)]
        };
        for (what, mut cmd) in runs {
            let (_master, slave) = pty();
            let tty = fs::OpenOptions::new().read(true).write(true).open(&slave).unwrap();
            cmd.stdin(tty);
            // ldchain leads a session whose controlling terminal is the pty,
            // as a shell's command does.
            // SAFETY: setsid and ioctl are async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            let ldchain_pid = child.id();
            let r: Run = child.wait_with_output().unwrap().into();
            contained(&format!("{who:?} {what}"), &r);
            assert!(r.stdout.contains("tiocsti-stdin: failed"), "{who:?} {what}: {r:#?}");
            // Not the caller's session: ldchain leads that one.
            let sid: u32 = r
                .stdout
                .split("sid=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_ne!(sid, ldchain_pid, "{who:?} {what}: in the caller's session: {r:#?}");
        }
    }
}

#[test]
fn bind_ro_bind_tmpfs_and_chdir() {
    let Some(s) = setup() else { return };
    let (rw, ro) = (s.dir.path().join("rw"), s.dir.path().join("ro"));
    fs::create_dir(&rw).unwrap();
    fs::create_dir(&ro).unwrap();
    fs::write(ro.join("file"), "ro-content\n").unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o777)).unwrap();
    if rustix::process::geteuid().is_root() {
        // The program's own uid (65534) owns the writable directory.
        Command::new("chown").args(["65534:65534"]).arg(&rw).status().unwrap();
    }
    let (rw_s, ro_s) = (rw.to_str().unwrap(), ro.to_str().unwrap());
    for who in everyone() {
        let mut c = s.ldchain(who);
        c.args(["run", "--bind", rw_s, "/work/rw", "--ro-bind", ro_s, "/work/ro"])
            .args(["--tmpfs", "/scratch", "--chdir", "/work", "--", "/bin/sh", "-c"])
            .arg(
                "pwd; cat ro/file; echo written > rw/out; (echo x > ro/new) 2>/dev/null || echo ro-refused; \
                 echo t > /scratch/t && cat /scratch/t",
            );
        let r: Run = c.output().unwrap().into();
        assert_eq!(r.stdout, "/work\nro-content\nro-refused\nt\n", "{who:?}: {r:#?}");
        assert_eq!(fs::read_to_string(rw.join("out")).unwrap(), "written\n");
        assert!(!ro.join("new").exists());
        // In a --root jail: the bind's mount point exists only in the view.
        if who == Who::Nobody {
            s.give_jail_to_nobody();
        }
        let mut c = s.ldchain(who);
        c.args(["run", "--root"])
            .arg(s.jail.path())
            .args(["--ro-bind", ro_s, "/data", "--chdir", "/data"]);
        let r: Run = c.args(["--", "/bin/escape", "read", "file"]).output().unwrap().into();
        assert_eq!(r.stdout, "read: ok ro-content\n", "{who:?}: {r:#?}");
        assert!(!s.jail.host("/data").exists(), "the jail on disk gained /data");
    }
}

#[test]
fn a_program_runs_from_its_own_directory_bound_read_only() {
    let Some(s) = setup() else { return };
    let Some(probe) = glibc_probe() else { return };
    let proj = s.dir.path().join("proj");
    fs::create_dir(&proj).unwrap();
    fs::set_permissions(&proj, fs::Permissions::from_mode(0o777)).unwrap();
    copy_file(&probe, &proj.join("a.out"));
    copy_file(&s.escape, &proj.join("escape"));
    fs::write(proj.join("notes"), "project-notes\n").unwrap();
    for who in everyone() {
        let run = |argv: &[&str]| -> Run {
            let mut c = s.ldchain(who);
            c.current_dir(&proj).arg("run").arg("--").args(argv);
            c.output().unwrap().into()
        };
        let r = run(&["./a.out", "args", "x"]).ok();
        assert_eq!(
            r.stdout, "argc=3\nargv[0]=./a.out\nargv[1]=args\nargv[2]=x\n",
            "{who:?}"
        );
        // Its working directory is the caller's; only that directory is
        // bound, read-only.
        let r = run(&["./escape", "read", "notes"]).ok();
        assert_eq!(r.stdout, "read: ok project-notes\n", "{who:?}");
        let r = run(&["./escape", "read", "../secret"]).ok();
        assert!(r.stdout.starts_with("read: failed"), "{who:?}: {r:#?}");
        let r = run(&["./escape", "remount", "."]).ok();
        assert!(r.stdout.contains("write: failed"), "{who:?}: {r:#?}");
        assert!(!proj.join("escape-file").exists());
    }
    // Never a home directory (nor /): a program there needs --ro-bind.
    let r: Run = s
        .ldchain(Who::Caller)
        .current_dir(&proj)
        .env("HOME", &proj)
        .args(["run", "--", "./a.out"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(r.stderr.contains("never / or a home directory"), "{r:#?}");
}

#[test]
fn unshare_net_leaves_only_a_loopback_device() {
    let Some(s) = setup() else { return };
    for who in everyone() {
        let devices = |extra: &[&str]| -> Vec<String> {
            let mut c = s.ldchain(who);
            c.arg("run").args(extra).args(["--", "/bin/cat", "/proc/net/dev"]);
            let r = Run::from(c.output().unwrap()).ok();
            r.stdout
                .lines()
                .skip(2)
                .map(|l| l.split(':').next().unwrap().trim().to_owned())
                .collect()
        };
        assert_eq!(devices(&["--unshare-net"]), ["lo"], "{who:?}");
        // Without it the host's network is shared (README says so).
        assert_eq!(
            devices(&[]).len(),
            fs::read_to_string("/proc/net/dev").unwrap().lines().count() - 2
        );
    }
}

#[test]
fn the_jail_dies_with_ldchain() {
    let Some(s) = setup() else { return };
    let marker = format!("{}.{}", std::process::id() % 1000 + 1000, 25);
    let mut ldchain = s.ldchain(Who::Caller);
    let mut child = ldchain.args(["run", "--", "/bin/sleep", &marker]).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pids_with_cmdline(&format!("/bin/sleep\0{marker}\0")).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the jail's sleep never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !pids_with_cmdline(&format!("/bin/sleep\0{marker}\0")).is_empty() {
        if std::time::Instant::now() > deadline {
            let left = pids_with_cmdline(&format!("/bin/sleep\0{marker}\0"));
            for &pid in &left {
                let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            panic!("the jail outlived ldchain: {left:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn mounts_apply_in_command_line_order() {
    // As in bwrap, a later mount goes over an earlier one: a bind inside a
    // tmpfs given before it is seen; a tmpfs given after a bind hides it.
    let Some(s) = setup() else { return };
    let src = s.dir.path().join("order");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), "in-bind\n").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(src.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
    let src = src.to_str().unwrap();
    let mut c = s.ldchain(Who::Caller);
    c.args(["run", "--tmpfs", "/x", "--ro-bind", src, "/x/b", "--"]);
    let r: Run = c.args(["/bin/sh", "-c", "cat /x/b/f"]).output().unwrap().into();
    assert_eq!(r.stdout, "in-bind\n", "{r:#?}");
    let mut c = s.ldchain(Who::Caller);
    c.args(["run", "--ro-bind", src, "/y", "--tmpfs", "/y", "--"]);
    let r: Run = c.args(["/bin/sh", "-c", "ls -A /y | wc -l"]).output().unwrap().into();
    assert_eq!(r.stdout.trim(), "0", "the tmpfs given last hides the bind: {r:#?}");
}

/// A check of what a command printed.
type Check = dyn Fn(&str) -> bool;

/// What the program is left with, read from inside, in the throwaway jail
/// and with `--root`, run by root (with supplementary groups 0, 4 and 27,
/// which must not reach it) and by uid 65534: every capability set empty,
/// `no_new_privs`, exactly the ids it was given and no other group, `/..`
/// is `/`, no host mount in its mount table, its working directory where
/// `--chdir` says.
#[test]
fn the_program_keeps_no_privilege_and_sees_only_the_jail() {
    let Some(s) = setup() else { return };
    let secret = s.secret.to_str().unwrap();
    let zero = "0000000000000000";
    for who in everyone() {
        for ids in [None, Some((1234u32, 4321u32))] {
            let mut extra = vec!["--chdir".to_owned(), "/tmp".to_owned()];
            if let Some((u, g)) = ids {
                extra.extend(["--uid".into(), u.to_string(), "--gid".into(), g.to_string()]);
            }
            let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
            for (what, mut c) in s.escape_commands(who, &extra, &["id"]) {
                if who == Who::Caller {
                    // Root with supplementary groups: run ldchain through
                    // setpriv, which sets them.
                    let mut with_groups = Command::new("setpriv");
                    with_groups
                        .arg("--groups=0,4,27")
                        .arg(c.get_program())
                        .args(c.get_args());
                    with_groups.stdin(File::open(&s.escape).unwrap()).current_dir("/");
                    c = with_groups;
                }
                let r: Run = output(&mut c).unwrap().into();
                let (uid, gid) = ids.unwrap_or((65534, 65534));
                let want = format!(
                    "uid={uid} euid={uid} nnp=1\ngid={gid} egid={gid} groups=\nCapInh:\t{zero}\nCapPrm:\t{zero}\n\
                     CapEff:\t{zero}\nCapBnd:\t{zero}\nCapAmb:\t{zero}\n"
                );
                // Unprivileged, the kernel shows the caller's primary gid as
                // its one group when setgroups is denied; nothing else.
                let r = r.ok();
                let got = r.stdout.replace(&format!("groups={gid}\n"), "groups=\n");
                assert_eq!(got, want, "{what} {ids:?}");
            }
        }
        let checks: [(&[&str], &Check); 5] = [
            // It starts as a shell would exec it: no signal blocked, and
            // SIGPIPE (13) not ignored (Rust's runtime ignores it in
            // ldchain, and an ignored signal stays ignored across exec).
            (&["cat", "/proc/self/status"], &|out: &str| {
                let field = |name: &str| {
                    let line = out.lines().find_map(|l| l.strip_prefix(name))?;
                    u64::from_str_radix(line.trim(), 16).ok()
                };
                field("SigBlk:") == Some(0) && field("SigIgn:").is_some_and(|ign| ign & (1 << 12) == 0)
            }),
            (&["stat", "/", "/.."], &|out: &str| {
                let lines: Vec<&str> = out.lines().map(|l| l.split_once(": ").unwrap().1).collect();
                lines.len() == 2 && lines[0] == lines[1]
            }),
            (
                &["read", &format!("/..{secret}"), &format!("/../..{secret}")],
                &|out: &str| out.matches("read: failed").count() == 2,
            ),
            (&["cwd"], &|out: &str| out == "cwd: /tmp\n"),
            (&["cat", "/proc/self/mountinfo"], &|out: &str| {
                let points: Vec<&str> = out.lines().filter_map(|l| l.split(' ').nth(4)).collect();
                !points.is_empty()
                    && points[0] == "/"
                    && points.iter().all(|p| !p.starts_with("/sys") && !p.starts_with("/boot"))
                    && !out.contains(" / /.. ")
            }),
        ];
        for (args, ok) in checks {
            for (what, r) in s.escape(who, &["--chdir", "/tmp"], args) {
                let r = r.ok();
                assert!(ok(&r.stdout), "{what} {args:?}: {r:#?}");
            }
        }
    }
}

#[test]
fn a_gated_jail_starts_its_program_only_once_opened() {
    // `ldchain run` starts the jail's init before its verdict on the
    // program and lets it go on only if the verdict is good: a gate
    // dropped unopened must end the init with nothing run in the jail
    // (the drop waits for the init, so a program it ran is done by then).
    use ldchain::sandbox::boundary::Sandbox;
    if !require_root("a jail of its own needs mount namespaces") {
        return;
    }
    let Some(touch) = compile("touch-static", "gcc", &["-static"], "touch.c") else {
        return;
    };
    let jail = Jail::new();
    jail.add(&touch, "/touch");
    fs::create_dir_all(jail.host("/tmp")).unwrap();
    fs::set_permissions(jail.host("/tmp"), fs::Permissions::from_mode(0o777)).unwrap();
    let sandbox = Sandbox::new(jail.path(), b"/").unwrap();
    let none: &[&str] = &[];

    let gated = sandbox
        .spawn_gated(b"/touch", &["/touch", "/tmp/dropped"], none)
        .unwrap();
    drop(gated);
    assert!(
        !jail.host("/tmp/dropped").exists(),
        "the program ran behind a closed gate"
    );

    let gated = sandbox
        .spawn_gated(b"/touch", &["/touch", "/tmp/opened"], none)
        .unwrap();
    assert!(
        !jail.host("/tmp/opened").exists(),
        "the program ran before the gate opened"
    );
    let mut jailed = gated.open().unwrap();
    assert!(jailed.wait().unwrap().success());
    assert!(jail.host("/tmp/opened").exists(), "the program did not run once opened");

    // Its failure to exec comes back from `open`, as from `spawn`.
    let gated = sandbox.spawn_gated(b"/missing", &["/missing"], none).unwrap();
    assert_eq!(gated.open().unwrap_err().raw_os_error(), Some(libc::ENOENT));
}
