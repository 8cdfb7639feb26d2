//! `ldchain serve`: the exec service for a jail that another tool builds,
//! here the real bubblewrap. The jail holds no ld.so at any `PT_INTERP`
//! path (glibc's only in /opt/glibc, musl's only in /opt/musl); bwrap binds
//! the chainloader there and serve's directory at /run/ldchain.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

/// What serve prints on stderr once it answers.
const READY: &str = "ldchain: serve: ready";
/// How long serve may take to become ready, or to stop.
const LIMIT: Duration = Duration::from_secs(20);
/// The ld.so search path of the jail (`--ldso-path`).
const LDSO_PATH: &str = "/opt/glibc:/opt/musl";

/// A running `ldchain -v serve`; killed (SIGKILL) and reaped if the test
/// ends without stopping it, so a failing test leaves no server behind.
struct Serve {
    child: Option<Child>,
    lines: Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Serve {
    /// Start `ldchain -v serve [extra...] SOCKET_DIR` in a process group of
    /// its own (so the test can tell that nothing of it outlives it).
    fn spawn(extra: &[&str], socket_dir: &Path) -> Serve {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(env!("CARGO_BIN_EXE_ldchain"));
        c.arg("-v").arg("serve").args(extra).arg(socket_dir);
        c.env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = retry_text_busy(|| c.spawn()).expect("spawn ldchain serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                keep.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        Serve {
            child: Some(child),
            lines,
            log,
            reader: Some(reader),
        }
    }

    /// Serve `jail` with the jail's search path, and wait until it is ready.
    fn start(jail: &Path, socket_dir: &Path) -> Serve {
        let root = jail.to_str().unwrap();
        let mut s = Serve::spawn(&["--root", root, "--ldso-path", LDSO_PATH], socket_dir);
        s.wait_ready();
        s
    }

    /// Wait (at most [`LIMIT`]) for the ready line.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == READY => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("serve not ready within {LIMIT:?}: {:?}", self.log()),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().unwrap().wait().unwrap();
                    panic!("serve ended ({status}) before it was ready: {:?}", self.log());
                }
            }
        }
    }

    /// Everything serve has printed on stderr so far.
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Wait (at most [`LIMIT`]) until serve's log satisfies `done`: it is
    /// read by another thread, so a line serve wrote may arrive later.
    fn wait_log(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !done(&self.log()) {
            assert!(Instant::now() < deadline, "{what}: {:?}", self.log());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Send `signal` and wait (at most [`LIMIT`]) for serve to exit: its
    /// status and everything it printed on stderr.
    fn stop_with(mut self, signal: rustix::process::Signal) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().unwrap();
        rustix::process::kill_process(rustix::process::Pid::from_child(&child), signal).unwrap();
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // Its stderr is closed now (nothing of serve outlives it
                // holding it): the reader has seen every line.
                self.reader.take().unwrap().join().unwrap();
                return (status, self.log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve did not stop within {LIMIT:?} of {signal:?}: {:?}", self.log());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `ldchain serve ARGS...` expected to refuse: its status and stderr, within
/// [`LIMIT`].
fn serve_refused(args: &[&str], socket_dir: &Path) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ldchain"));
    c.arg("serve").args(args).arg(socket_dir).stdin(Stdio::null());
    output_within(&mut c, LIMIT)
        .expect("spawn ldchain serve")
        .unwrap_or_else(|| panic!("ldchain serve {args:?} {} did not exit", socket_dir.display()))
        .into()
}

/// A jail with no ld.so at any `PT_INTERP` path: dash as /bin/sh and
/// coreutils (the host's glibc programs), the glibc and musl probes and
/// spawners; glibc's ld.so only in /opt/glibc, musl's only in /opt/musl.
fn jail() -> Option<Jail> {
    let (probe, mprobe, musl) = (glibc_probe()?, musl_probe()?, musl_ldso()?);
    let gspawn = compile("spawn-glibc", "gcc", &[], "spawn.c")?;
    let mspawn = compile("spawn-musl", "musl-gcc", &[], "spawn.c")?;
    let jail = Jail::new();
    jail.add_glibc_program(Path::new("/bin/dash"), "/bin/sh");
    for tool in ["echo", "cat", "tr"] {
        jail.add_glibc_program(&Path::new("/bin").join(tool), &format!("/bin/{tool}"));
    }
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.add_glibc_program(&gspawn, "/bin/gspawn");
    jail.add(&mprobe, "/bin/mprobe");
    jail.add(&mspawn, "/bin/mspawn");
    jail.add(&glibc_ldso(), "/opt/glibc/ld-linux-x86-64.so.2");
    jail.add(&musl, "/opt/musl/ld-musl-x86_64.so.1");
    for (path, _) in ldchain::sandbox::view::stub_paths() {
        assert!(jail.host(path).symlink_metadata().is_err(), "{path} in the jail");
    }
    Some(jail)
}

/// Run `argv` with the real bwrap in `jail`, with `socket_dir` at
/// /run/ldchain and the chainloader at glibc's and musl's `PT_INTERP`
/// paths, in an environment of PATH alone (cargo test's LD_LIBRARY_PATH
/// would make every exec ask the service): the README's command line.
fn bwrap(jail: &Jail, socket_dir: &Path, argv: &[&str]) -> Run {
    bwrap_with(jail, socket_dir, Stubs::Bound, argv)
}

/// Where the chainloader at the `PT_INTERP` paths comes from.
#[derive(Clone, Copy, PartialEq)]
enum Stubs {
    /// Bound by bwrap over a jail bound writable (bwrap makes the mount points).
    Bound,
    /// On disk in the jail, which is bound read-only.
    OnDisk,
}

fn bwrap_with(jail: &Jail, socket_dir: &Path, stubs: Stubs, argv: &[&str]) -> Run {
    let chainloader = jail.host("/chainloader");
    for _ in 0..10 {
        let mut c = Command::new("bwrap");
        let root = if stubs == Stubs::Bound { "--bind" } else { "--ro-bind" };
        c.arg(root).arg(jail.path()).arg("/");
        c.arg("--ro-bind").arg(socket_dir).arg("/run/ldchain");
        for interp in ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1"] {
            if stubs == Stubs::Bound {
                c.arg("--ro-bind").arg(&chainloader).arg(interp);
            }
        }
        c.args(["--proc", "/proc", "--dev", "/dev", "--unshare-pid", "--die-with-parent"]);
        c.args(["--clearenv", "--setenv", "PATH", "/bin", "--"]).args(argv);
        c.stdin(Stdio::null());
        let r: Run = output_within(&mut c, LIMIT)
            .expect("spawn bwrap")
            .unwrap_or_else(|| panic!("bwrap {argv:?} hung"))
            .into();
        // Another test thread's fork may briefly hold a just-installed
        // chainloader open for writing (see support::retry_text_busy).
        if !r.stderr.contains("Text file busy") {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("bwrap {argv:?}: text file busy, ten times");
}

/// Whether the real bwrap can run here (a failure in CI if not).
fn have_bwrap() -> bool {
    require("bwrap", "the jail that ldchain serve serves is bubblewrap's")
}

/// Kills a process group (SIGKILL) when dropped.
struct GroupGuard(rustix::process::Pid);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process_group(self.0, rustix::process::Signal::KILL);
    }
}

/// Run `cmd` in a process group of its own and collect its output once it
/// and everything holding its pipes have ended; at most [`LIMIT`], after
/// which the whole group is killed (a failure, never a stuck suite).
fn run_group_within(cmd: &mut Command) -> Run {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = retry_text_busy(|| cmd.spawn()).expect("spawn");
    let group = GroupGuard(rustix::process::Pid::from_child(&child));
    let deadline = Instant::now() + LIMIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            drop(group);
            let r: Run = child.wait_with_output().unwrap().into();
            panic!("{cmd:?} did not end within {LIMIT:?}: {r:#?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // What is left of the group (a serve being stopped) ends by itself;
    // the guard bounds that too.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(out) => out.unwrap().into(),
        Err(_) => {
            drop(group);
            panic!("{cmd:?}: something it started kept its output open past {LIMIT:?}");
        }
    }
}

/// A fresh directory to hold socket directories.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ldchain-serve-").tempdir().unwrap()
}

#[test]
fn bwrap_shell_pipeline_of_glibc_programs_runs_through_serve() {
    if !have_bwrap() {
        return;
    }
    let Some(jail) = jail() else { return };
    let tmp = scratch();
    let sock = tmp.path().join("sock");
    let script = "/bin/echo hello world | /bin/cat | /bin/tr a-z A-Z; /bin/echo done";
    // Without serve the jail cannot start its shell: nothing answers the
    // stub at PT_INTERP.
    fs::create_dir(&sock).unwrap();
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o755)).unwrap();
    let r = bwrap(&jail, &sock, &["/bin/sh", "-c", script]);
    assert_eq!(r.code, Some(127), "{r:#?}");
    assert_eq!(
        r.stderr, "chainloader: exec service: cannot connect: ENOENT\n",
        "{r:#?}"
    );
    let serve = Serve::start(jail.path(), &sock);
    let r = bwrap(&jail, &sock, &["/bin/sh", "-c", script]).ok();
    assert_eq!(r.stdout, "HELLO WORLD\ndone\n", "{r:#?}");
    assert_eq!(r.stderr, "", "{r:#?}");
    // The service chose glibc's ld.so in /opt/glibc, and left it standing.
    let glibc = "/opt/glibc/ld-linux-x86-64.so.2";
    serve.wait_log("no exec service answer logged", |log| {
        !chosen(log.iter().map(String::as_str)).is_empty()
    });
    let link = sock.join("ld/003e2%2flib64%2fld-linux-x86-64.so.2");
    assert_eq!(fs::read_link(&link).unwrap(), Path::new(glibc));
    // Standing answers: with the socket out of reach (any round trip would
    // fail with 127), every program of the pipeline still starts.
    let away = sock.join("exec.sock.away");
    fs::rename(sock.join("exec.sock"), &away).unwrap();
    let r = bwrap(&jail, &sock, &["/bin/sh", "-c", script]);
    fs::rename(&away, sock.join("exec.sock")).unwrap();
    let r = r.ok();
    assert_eq!(r.stdout, "HELLO WORLD\ndone\n", "{r:#?}");
    // The jail cannot write the answers.
    let r = bwrap(
        &jail,
        &sock,
        &["/bin/sh", "-c", "> /run/ldchain/ld/mine || /bin/echo refused"],
    );
    assert_eq!(r.stdout, "refused\n", "{r:#?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:#?}");
    let (status, log) = serve.stop_with(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert!(
        chosen(log.iter().map(String::as_str)).iter().all(|l| l == glibc),
        "{log:?}"
    );
}

#[test]
fn bwrap_glibc_starts_musl_and_musl_starts_glibc_through_serve() {
    if !have_bwrap() {
        return;
    }
    let Some(jail) = jail() else { return };
    let tmp = scratch();
    let sock = tmp.path().join("sock");
    let serve = Serve::start(jail.path(), &sock);
    let r = bwrap(&jail, &sock, &["/bin/gspawn", "libc", "/bin/mprobe", "args", "m"]).ok();
    assert_eq!(
        r.stdout, "argc=3\nargv[0]=/bin/mprobe\nargv[1]=args\nargv[2]=m\nspawn: status 0\n",
        "{r:#?}"
    );
    let r = bwrap(&jail, &sock, &["/bin/mspawn", "raw", "/bin/probe", "args", "g"]).ok();
    assert_eq!(
        r.stdout, "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=g\nspawn: status 0\n",
        "{r:#?}"
    );
    // Each libc's ld.so came from its own directory in /opt.
    let (status, log) = serve.stop_with(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0), "{log:?}");
    let got = chosen(log.iter().map(String::as_str));
    for want in ["/opt/glibc/ld-linux-x86-64.so.2", "/opt/musl/ld-musl-x86_64.so.1"] {
        assert!(got.iter().any(|g| g == want), "{want} never chosen: {log:?}");
    }
}

/// Wait (at most [`LIMIT`]) until no process of group `pgid` is left.
fn assert_group_gone(pgid: u32) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let left = members_of_group(pgid);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serve_stops_cleanly_on_sigterm_and_sigint_and_removes_what_it_made() {
    let tmp = scratch();
    let root = tmp.path().to_str().unwrap();
    // A missing SOCKET_DIR is made, 0755; the socket is 0666, the answers
    // directory 0755. SIGTERM: exit 0, and all of it is gone.
    let sock = tmp.path().join("made");
    let mut serve = Serve::spawn(&["--root", root], &sock);
    serve.wait_ready();
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode();
    assert_eq!(mode(&sock) & 0o7777, 0o755);
    assert!(fs::symlink_metadata(sock.join("exec.sock"))
        .unwrap()
        .file_type()
        .is_socket());
    assert_eq!(mode(&sock.join("exec.sock")) & 0o777, 0o666);
    assert_eq!(mode(&sock.join("ld")) & 0o7777, 0o755);
    assert!(std::os::unix::net::UnixStream::connect(sock.join("exec.sock")).is_ok());
    let pgid = serve.pid();
    let (status, log) = serve.stop_with(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert!(sock.symlink_metadata().is_err(), "SOCKET_DIR left behind");
    // Nothing of serve outlives it (the child holding its inotify instance).
    assert_group_gone(pgid);
    // A directory given (empty, ours): kept, emptied. SIGINT stops it too.
    let sock = tmp.path().join("given");
    fs::create_dir(&sock).unwrap();
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o755)).unwrap();
    let mut serve = Serve::spawn(&["--root", root], &sock);
    serve.wait_ready();
    let (status, log) = serve.stop_with(rustix::process::Signal::INT);
    assert_eq!(status.code(), Some(0), "{log:?}");
    assert_eq!(fs::read_dir(&sock).unwrap().count(), 0, "left in SOCKET_DIR");
    // What a killed serve leaves (its socket, nobody listening; its answer
    // links) is taken over.
    let serve = Serve::spawn(&["--root", root], &sock);
    let pgid = serve.pid();
    drop(serve); // SIGKILL: no clean-up
    assert_group_gone(pgid);
    let stale = sock.join("exec.sock");
    if !stale.exists() {
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    }
    fs::create_dir_all(sock.join("ld")).unwrap();
    std::os::unix::fs::symlink("/opt/x", sock.join("ld/003e2%2fx")).unwrap();
    let mut serve = Serve::spawn(&["--root", root], &sock);
    serve.wait_ready();
    assert_eq!(fs::read_dir(sock.join("ld")).unwrap().count(), 0, "stale answers kept");
    assert!(std::os::unix::net::UnixStream::connect(&stale).is_ok());
    assert_eq!(serve.stop_with(rustix::process::Signal::TERM).0.code(), Some(0));
}

#[test]
fn a_second_serve_on_the_same_socket_dir_fails_clearly_while_the_first_runs() {
    let tmp = scratch();
    let root = tmp.path().to_str().unwrap();
    let sock = tmp.path().join("sock");
    let mut first = Serve::spawn(&["--root", root], &sock);
    first.wait_ready();
    let r = serve_refused(&["--root", root], &sock);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert_eq!(
        r.stderr,
        format!(
            "ldchain: serve: {}: another ldchain serve is serving it\n",
            sock.display()
        ),
        "{r:#?}"
    );
    // The first is untouched: still listening, its directory intact.
    assert!(std::os::unix::net::UnixStream::connect(sock.join("exec.sock")).is_ok());
    assert!(sock.join("ld").is_dir());
    assert_eq!(first.stop_with(rustix::process::Signal::TERM).0.code(), Some(0));
    // A server serve knows nothing of, listening there: refused too, and
    // its socket left alone.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o755)).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(other.join("exec.sock")).unwrap();
    let r = serve_refused(&["--root", root], &other);
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(
        r.stderr.contains("exec.sock: something is already listening there"),
        "{r:#?}"
    );
    assert!(other.join("exec.sock").exists());
}

#[test]
fn a_socket_dir_that_is_a_symlink_a_file_busy_open_or_foreign_is_refused_and_left_alone() {
    let tmp = scratch();
    let root = tmp.path().to_str().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    let busy = tmp.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::set_permissions(&busy, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(busy.join("notes"), b"mine").unwrap();
    let open = tmp.path().join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let mut cases: Vec<(PathBuf, String)> = vec![
        (link.clone(), "is a symbolic link".into()),
        (tmp.path().join("link/"), "is a symbolic link".into()),
        (tmp.path().join("link/."), "is a symbolic link".into()),
        (file.clone(), "exists and is not a directory".into()),
        (
            busy.clone(),
            "not empty, and notes was not left by ldchain serve".into(),
        ),
        (open.clone(), "writable by group or others (mode 777)".into()),
        (tmp.path().join("no/such"), "cannot create it".into()),
    ];
    if rustix::process::geteuid().is_root() {
        let theirs = tmp.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        fs::set_permissions(&theirs, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        cases.push((theirs, "owned by uid 65534, not by this user (uid 0)".into()));
    }
    // The directory as messages name it: no trailing slash or `.`.
    let named = |dir: &Path| dir.components().collect::<PathBuf>();
    for (dir, why) in &cases {
        let r = serve_refused(&["--root", root], dir);
        assert_eq!(r.code, Some(125), "{}: {r:#?}", dir.display());
        assert!(
            r.stderr
                .starts_with(&format!("ldchain: serve: {}: ", named(dir).display()))
                && r.stderr.contains(why.as_str()),
            "{}: {r:#?}",
            dir.display()
        );
        assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    }
    // Nothing was made or removed anywhere.
    assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    assert_eq!(fs::read_link(&link).unwrap(), target);
    assert_eq!(fs::read(&file).unwrap(), b"x");
    assert_eq!(fs::read_dir(&busy).unwrap().count(), 1);
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
    // serve starts no program: options for one are refused.
    for option in [
        &["--env", "A=1"][..],
        &["-i"],
        &["--setenv", "A", "1"],
        &["--unsetenv", "A"],
    ] {
        let args: Vec<&str> = ["--root", root].iter().chain(option).copied().collect();
        let r = serve_refused(&args, &tmp.path().join("env"));
        assert_eq!(r.code, Some(125), "{option:?}: {r:#?}");
        assert!(
            r.stderr.contains("--env, -i, --setenv and --unsetenv do not apply"),
            "{r:#?}"
        );
        assert!(!tmp.path().join("env").exists());
    }
}

#[test]
fn readme_serve_example_runs_as_written() {
    if !have_bwrap() {
        return;
    }
    let Some(jail) = jail() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## A jail built by another tool: `ldchain serve`")
        .nth(1)
        .expect("the ldchain serve section");
    let block = section.split("```sh\n").nth(1).unwrap().split("```").next().unwrap();
    assert!(block.contains("bwrap --bind J /"), "{block}");
    // Run where `J` names the jail, with this build's ldchain on PATH and
    // a socket directory of the test's own.
    let tmp = scratch();
    std::os::unix::fs::symlink(jail.path(), tmp.path().join("J")).unwrap();
    let sock = tmp.path().join("sock");
    // If the example fails half-way (sh -e), serve must not outlive it.
    let script = format!(
        "trap '[ -z \"${{serve:-}}\" ] || kill $serve 2>/dev/null || :' EXIT\n{}",
        block.replace("/tmp/ldchain-sock", sock.to_str().unwrap())
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_ldchain")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut c = Command::new("sh");
    c.args(["-ec", &script])
        .current_dir(tmp.path())
        .env("PATH", path)
        .env_remove("LD_LIBRARY_PATH");
    let r = run_group_within(&mut c);
    let r = r.ok();
    assert!(r.stdout.ends_with("\nhi\n"), "{r:#?}");
    assert_eq!(r.stderr, format!("{READY}\n"), "{r:#?}");
    // serve has removed what it made (output_within waited for its stderr).
    assert!(sock.symlink_metadata().is_err(), "{} left behind", sock.display());
}

/// Every path in `dir` with its size, mode and modification time.
fn snapshot(dir: &Path) -> std::collections::BTreeSet<(PathBuf, u64, u32, i64)> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = p.symlink_metadata().unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert((p, m.len(), m.mode(), m.mtime_nsec() + m.mtime() * 1_000_000_000));
        }
    }
    out
}

#[test]
fn a_read_only_jail_with_the_stubs_on_disk_needs_no_other_bind_and_run_takes_it_too() {
    if !have_bwrap() {
        return;
    }
    let Some(jail) = jail() else { return };
    // The README's alternative: the stub at the PT_INTERP paths on disk,
    // the mount points there; bwrap then binds the jail read-only.
    jail.add(&jail.host("/chainloader"), "/lib64/ld-linux-x86-64.so.2");
    jail.add(&jail.host("/chainloader"), "/lib/ld-musl-x86_64.so.1");
    for d in ["/run/ldchain", "/dev"] {
        fs::create_dir_all(jail.host(d)).unwrap();
    }
    let tmp = scratch();
    let sock = tmp.path().join("sock");
    let serve = Serve::start(jail.path(), &sock);
    let before = snapshot(jail.path());
    let script = "/bin/echo hi | /bin/cat; /bin/gspawn libc /bin/mprobe args m";
    let r = bwrap_with(&jail, &sock, Stubs::OnDisk, &["/bin/sh", "-c", script]).ok();
    assert_eq!(
        r.stdout, "hi\nargc=3\nargv[0]=/bin/mprobe\nargv[1]=args\nargv[2]=m\nspawn: status 0\n",
        "{r:#?}"
    );
    assert_eq!(snapshot(jail.path()), before, "bwrap wrote into the jail");
    let (status, log) = serve.stop_with(rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(0), "{log:?}");
    // ldchain run keeps the jail's own stubs (current chainloaders) and serves them.
    let mut c = Command::new(env!("CARGO_BIN_EXE_ldchain"));
    c.args(["run", "-i", "--root"]).arg(jail.path());
    c.args(["--ldso-path", LDSO_PATH, "--", "/bin/sh", "-c", script]);
    let r: Run = output_within(&mut c, LIMIT)
        .expect("spawn ldchain run")
        .unwrap_or_else(|| panic!("ldchain run hung"))
        .into();
    let r = r.ok();
    assert!(r.stdout.starts_with("hi\nargc=3\n"), "{r:#?}");
    assert_eq!(snapshot(jail.path()), before, "ldchain run wrote into the jail");
}
