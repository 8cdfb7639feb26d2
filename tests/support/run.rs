//! Running things: results, descriptors passed on, retries on ETXTBSY, deadlines.

use std::fs::File;
use std::process::{Command, Output, Stdio};

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

pub(super) fn keep_fds(cmd: &mut Command, keep: &[&File]) {
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

/// Have `cmd`'s child hold `file` as descriptor `n` (its number in this
/// process may be anything, `n` included: then dup2 would be a no-op that
/// leaves it close-on-exec, so the flag is cleared instead). `file` must
/// stay open until the command has been spawned.
pub fn pass_as_fd(cmd: &mut Command, file: &File, n: i32) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // A copy numbered 100 or more (close-on-exec) is what is dup'ed to `n`
    // in the child: the file's own number may be another call's `n`, and
    // an earlier dup2 onto it would hand that call this file instead.
    let high = rustix::io::fcntl_dupfd_cloexec(file, 100).unwrap();
    // SAFETY: dup2 is async-signal-safe, and touches only descriptors.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(high.as_raw_fd(), n) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        });
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
