//! Test support shared by the integration tests: compiling the C test
//! programs, building jails, running things in them, and loud skips.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

pub use ldchain::sandbox::confine::Confinement;

/// Whether every test must run (CI): a missing tool is then a failure, not a
/// skip.
pub fn strict() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("LDCHAIN_REQUIRE_ALL").is_some()
}

/// Whether `tool` is on PATH or is a path that exists. When it is missing,
/// print a loud SKIP line (or panic under [`strict`]) and return false.
pub fn require(tool: &str, why: &str) -> bool {
    let found = if tool.contains('/') {
        Path::new(tool).exists()
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
    };
    if !found {
        skip(&format!("{tool} is missing ({why}); .ci/run installs it"));
    }
    found
}

/// The one way a test skips: a loud SKIP line on stderr locally, a failure
/// under [`strict`] (CI), so that no part of the suite passes by not
/// running. Callers return right after it.
#[track_caller]
pub fn skip(why: &str) {
    if strict() {
        panic!("this test cannot run here, and CI requires every test: {why}");
    }
    eprintln!("\n*** SKIP: {why} ***\n");
    // cargo shows a skipped test as passed and hides its stderr: leave a
    // line where tools/test.sh counts skips for its summary.
    if let Some(log) = std::env::var_os("LDCHAIN_SKIP_LOG") {
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        if let Ok(mut f) = fs::OpenOptions::new().append(true).create(true).open(log) {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

/// Whether the test process is root; otherwise [`skip`] for `why`.
#[track_caller]
pub fn require_root(why: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        skip(&format!("not root ({why})"));
    }
    root
}

/// Where compiled test programs are cached.
pub fn build_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ldchain-programs");
    fs::create_dir_all(&d).unwrap();
    d
}

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs")
}

/// Compile `tests/programs/<source>` with `compiler` and `flags` into a
/// program named `name`, once per test process (rebuilt every run, so it
/// never goes stale). Returns None (after a loud skip) if the compiler is
/// missing.
pub fn compile(name: &str, compiler: &str, flags: &[&str], source: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return Some(p.clone());
    }
    if !require(compiler, "needed to build the test programs") {
        return None;
    }
    let out = build_dir().join(format!("{name}-{}", std::process::id()));
    let status = Command::new(compiler)
        .args(flags)
        .args(["-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(programs_dir().join(source))
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(status.success(), "{compiler} {flags:?} {source} failed");
    built.insert(name.to_owned(), out.clone());
    Some(out)
}

/// The glibc-built probe (dynamic, PIE).
pub fn glibc_probe() -> Option<PathBuf> {
    compile("probe-glibc", "gcc", &[], "probe.c")
}

/// The musl-built probe (dynamic).
pub fn musl_probe() -> Option<PathBuf> {
    compile("probe-musl", "musl-gcc", &[], "probe.c")
}

/// The host's glibc dynamic linker.
pub fn glibc_ldso() -> PathBuf {
    fs::canonicalize("/lib64/ld-linux-x86-64.so.2").expect("glibc's ld.so")
}

/// The host's musl dynamic linker (Debian's musl package).
pub fn musl_ldso() -> Option<PathBuf> {
    if require(
        "/lib/ld-musl-x86_64.so.1",
        "musl's dynamic linker, from Debian's musl package",
    ) {
        Some(PathBuf::from("/lib/ld-musl-x86_64.so.1"))
    } else {
        None
    }
}

/// The result of running something, with the exit status split out.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: o.status.code(),
            signal: o.status.signal(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Assert a clean exit with status 0, showing everything otherwise.
    pub fn ok(self) -> Run {
        assert_eq!((self.code, self.signal), (Some(0), None), "{self:#?}");
        self
    }
}

/// A jail directory with `/chainloader` in it.
pub struct Jail {
    dir: tempfile::TempDir,
}

impl Jail {
    /// A fresh jail with `/chainloader` (and `/chainloader-ARCH` for every
    /// other embedded architecture), `/proc` (a mount point), `/tmp`.
    pub fn new() -> Jail {
        let dir = tempfile::Builder::new().prefix("ldchain-jail-").tempdir().unwrap();
        // Searchable by everyone: `ldchain run` as root runs the program as
        // uid 65534. /tmp is writable by it, as on a real system.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["proc", "tmp", "bin"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        fs::set_permissions(dir.path().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        ldchain::embed::install_all(dir.path()).unwrap();
        Jail { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The host path of `inside` (an absolute path in the jail).
    pub fn host(&self, inside: &str) -> PathBuf {
        self.path().join(inside.trim_start_matches('/'))
    }

    /// Copy host file `from` to `inside`, keeping its mode.
    pub fn add(&self, from: &Path, inside: &str) {
        let to = self.host(inside);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        copy_file(from, &to);
    }

    /// Write `bytes` to `inside` with `mode`.
    pub fn write(&self, inside: &str, bytes: &[u8], mode: u32) {
        let to = self.host(inside);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::write(&to, bytes).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Copy a glibc program and every shared library `ldd` names for it
    /// (at the same paths), but never the dynamic linker.
    pub fn add_glibc_program(&self, from: &Path, inside: &str) {
        self.add(from, inside);
        let out = Command::new("ldd").arg(from).output().expect("ldd");
        assert!(out.status.success(), "ldd {}", from.display());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
            if let Some((_, rest)) = line.split_once("=> ") {
                let lib = rest.split_whitespace().next().unwrap();
                if lib.starts_with('/') && !lib.contains("/ld-") {
                    self.add(Path::new(lib), lib);
                }
            }
        }
    }

    /// Assert that no dynamic linker exists anywhere in the jail: no file
    /// named like one, and no copy of the host's glibc or musl ld.so.
    pub fn assert_no_ldso(&self) {
        let glibc = fs::read(glibc_ldso()).unwrap();
        let musl = fs::read("/lib/ld-musl-x86_64.so.1").ok();
        let mut stack = vec![self.path().to_owned()];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let ty = entry.file_type().unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                if ty.is_dir() {
                    stack.push(entry.path());
                    continue;
                }
                files += 1;
                assert!(
                    !name.starts_with("ld-linux") && !name.starts_with("ld-musl"),
                    "ld.so in the jail: {}",
                    entry.path().display()
                );
                if ty.is_file() {
                    let bytes = fs::read(entry.path()).unwrap();
                    assert!(
                        bytes != glibc && Some(&bytes) != musl.as_ref(),
                        "a copy of ld.so in the jail: {}",
                        entry.path().display()
                    );
                }
            }
        }
        assert!(files > 0);
    }

    /// A command that runs `argv` inside the jail (chroot, with /proc).
    pub fn command(&self, argv: &[&str], keep: &[&File]) -> Command {
        let conf = Confinement::new(self.path()).unwrap().with_proc().unwrap();
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null());
        conf.apply(&mut cmd);
        keep_fds(&mut cmd, keep);
        cmd
    }

    /// Run `argv` in the jail and collect the result.
    pub fn run(&self, argv: &[&str], keep: &[&File]) -> Run {
        output(&mut self.command(argv, keep)).expect("spawn in jail").into()
    }
}

/// Open a host file for passing to the chainloader.
pub fn open(path: &Path) -> File {
    File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number of an open file, as text for argv.
pub fn fdnum(f: &File) -> String {
    use std::os::fd::AsRawFd;
    f.as_raw_fd().to_string()
}

/// Write `bytes` to a fresh temporary file and open it for reading.
pub fn temp_image(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
    let mut t = tempfile::NamedTempFile::new().unwrap();
    t.write_all(bytes).unwrap();
    t.flush().unwrap();
    let f = File::open(t.path()).unwrap();
    (t, f)
}

/// The installed chainloaders on the host (for running without a jail).
fn host_bin_dir() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = build_dir().join(format!("bin-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        ldchain::embed::install_all(&dir).unwrap();
        dir
    })
    .clone()
}

/// The native chainloader, installed on the host.
pub fn host_chainloader() -> PathBuf {
    host_bin_dir().join("chainloader")
}

/// The chainloader for `arch` (`i386`, `aarch64`), installed on the host;
/// None (after a loud skip, or a panic in CI) if this build lacks it.
pub fn host_chainloader_for(arch: &str) -> Option<PathBuf> {
    let p = host_bin_dir().join(format!("chainloader-{arch}"));
    if p.exists() {
        return Some(p);
    }
    skip(&format!(
        "this build embeds no {arch} chainloader (install the cross toolchain; .ci/run does)"
    ));
    None
}

/// Run the host chainloader with `args`, passing on `keep`.
pub fn run_chainloader(args: &[&str], keep: &[&File]) -> Run {
    run_with_fds(Command::new(host_chainloader()).args(args), keep)
}

/// Run `cmd` with `keep` inherited (close-on-exec cleared in the child).
pub fn run_with_fds(cmd: &mut Command, keep: &[&File]) -> Run {
    cmd.stdin(Stdio::null());
    keep_fds(cmd, keep);
    output(cmd).expect("spawn chainloader").into()
}

/// Spawn `cmd` with `keep` inherited and stdout/stderr piped.
pub fn spawn_with_fds(cmd: &mut Command, keep: &[&File]) -> std::process::Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    keep_fds(cmd, keep);
    retry_text_busy(|| cmd.spawn()).expect("spawn")
}

fn keep_fds(cmd: &mut Command, keep: &[&File]) {
    use std::os::unix::process::CommandExt;
    let fds: Vec<i32> = keep.iter().map(|f| std::os::fd::AsRawFd::as_raw_fd(*f)).collect();
    // SAFETY: fcntl is async-signal-safe; the fds stay open until spawn returns.
    unsafe {
        cmd.pre_exec(move || {
            let fds = fds.iter().map(|&fd| std::os::fd::BorrowedFd::borrow_raw(fd));
            Ok(ldchain::resolver::inherit_fds(fds)?)
        });
    }
}

/// The little-endian unsigned field of `width` bytes at `off` (every test
/// image is little-endian: x86_64, i386, aarch64).
pub fn le_get(b: &[u8], off: usize, width: usize) -> u64 {
    b[off..off + width]
        .iter()
        .rev()
        .fold(0, |a, &x| (a << 8) | u64::from(x))
}

/// Store `v` as the little-endian field of `width` bytes at `off`.
pub fn le_set(b: &mut [u8], off: usize, width: usize, v: u64) {
    for i in 0..width {
        b[off + i] = (v >> (8 * i)) as u8;
    }
}

/// Retry `spawn` while exec fails with ETXTBSY. Tests run in parallel
/// threads: a chainloader just installed by one thread (its temporary file
/// open for writing) stays "busy" while a child forked meanwhile by another
/// thread still holds that descriptor, until the child execs (close-on-exec).
/// Nothing has run when exec fails, so trying again is safe.
pub fn retry_text_busy<T>(mut spawn: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut tries = 0;
    loop {
        match spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// `cmd.output()`, retried on ETXTBSY ([`retry_text_busy`]).
pub fn output(cmd: &mut Command) -> std::io::Result<Output> {
    retry_text_busy(|| cmd.output())
}

/// `cmd`'s output (stdout and stderr piped; spawn retried on ETXTBSY),
/// waiting at most `limit`: `Ok(None)` if it was still running then (it is
/// killed and reaped), `Err` if it could not be spawned at all.
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> std::io::Result<Option<Output>> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = retry_text_busy(|| cmd.spawn())?;
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.wait_with_output().map(Some)
}

/// Copy `from` to `to` keeping its mode, in a `cp` child process. A file
/// that will be exec'd must not be written by this process: while it holds
/// the file open for writing, any test thread's fork hands the descriptor
/// to a child, and exec'ing the file meanwhile fails with ETXTBSY.
pub fn copy_file(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("--preserve=mode")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}

/// Whether tests can run something as uid 65534 with an unprivileged user
/// namespace of its own (root to switch, `setpriv`, and the kernel
/// allowing it); otherwise [`skip`] for `why`.
#[track_caller]
pub fn nobody_can_run(why: &str) -> bool {
    if !require_root(why) || !require("setpriv", "switching to an unprivileged user") {
        return false;
    }
    let probe = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "-Ur",
            "true",
        ])
        .status()
        .unwrap();
    if !probe.success() {
        skip(&format!(
            "{why}: unprivileged user namespaces are disabled on this machine"
        ));
    }
    probe.success()
}

/// Have `cmd`'s child hold `file` as descriptor `n` (its number in this
/// process may be anything, `n` included: then dup2 would be a no-op that
/// leaves it close-on-exec, so the flag is cleared instead). `file` must
/// stay open until the command has been spawned.
pub fn pass_as_fd(cmd: &mut Command, file: &File, n: i32) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = file.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe, and touch only
    // descriptors.
    unsafe {
        cmd.pre_exec(move || {
            let r = if raw == n {
                libc::fcntl(n, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, n)
            };
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
    }
}

/// What came back on one connection to an exec service.
#[derive(Debug)]
pub struct Reply {
    /// `None`: the connection closed without a (complete) reply.
    pub errno: Option<u16>,
    pub message: String,
    pub fds: Vec<std::os::fd::OwnedFd>,
}

/// Read one reply: header, message and any descriptors, until the reply is
/// complete or the server closes.
pub fn receive(s: &std::os::unix::net::UnixStream) -> Reply {
    let mut buf = [0u8; ldchain::service::proto::REPLY_HEADER + ldchain::service::proto::MAX_MESSAGE];
    let mut got = 0;
    let mut fds = Vec::new();
    loop {
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut buf[got..])];
        let r = rustix::net::recvmsg(s, &mut iov, &mut control, rustix::net::RecvFlags::CMSG_CLOEXEC).unwrap();
        for msg in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        got += r.bytes;
        if let Some((errno, len)) = ldchain::service::proto::decode_reply_header(&buf[..got]) {
            if got >= ldchain::service::proto::REPLY_HEADER + len {
                assert_eq!(
                    got,
                    ldchain::service::proto::REPLY_HEADER + len,
                    "bytes after the reply"
                );
                let message = String::from_utf8(buf[ldchain::service::proto::REPLY_HEADER..got].to_vec()).unwrap();
                return Reply {
                    errno: Some(errno),
                    message,
                    fds,
                };
            }
        }
        if r.bytes == 0 {
            assert!(got == 0, "a partial reply: {:?}", &buf[..got]);
            return Reply {
                errno: None,
                message: String::new(),
                fds,
            };
        }
    }
}

/// The ld.so paths the exec service chose, from ldchain's `-v` log lines.
pub fn chosen<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| l.contains("exec service"))
        .filter_map(|l| l.split("ldso=").nth(1))
        .map(|s| s.split_whitespace().next().unwrap().to_owned())
        .collect()
}

/// The processes in process group `pgid` (their `/proc/PID/stat` lines).
pub fn members_of_group(pgid: u32) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...: comm may hold spaces, not ')'.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            rest.split(' ').nth(2) == Some(pgid.to_string().as_str())
        })
        .collect()
}

/// Host pids whose whole command line is `cmdline` (arguments each ended
/// by a NUL).
pub fn pids_with_cmdline(cmdline: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline.as_bytes()))
        .collect()
}
