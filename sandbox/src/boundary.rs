//! Entering the jail of `ldchain run` as a real boundary, bubblewrap-style.
//!
//! [`Sandbox::spawn`] forks three processes from the `ldchain` process
//! (which has already built the jail's view in its private mount namespace,
//! and keeps serving nested execs from there):
//!
//! 1. **the monitor**, in ldchain's namespaces: dies with ldchain
//!    (`PR_SET_PDEATHSIG`), `unshare(CLONE_NEWNS | CLONE_NEWPID)` (and
//!    `CLONE_NEWNET` with `--unshare-net`), forks the init, closes every descriptor, and exits with
//!    the init's status. It is the child `ldchain` waits for.
//! 2. **the init**, PID 1 of the new PID namespace: dies with the monitor
//!    (`PR_SET_PDEATHSIG`), makes its mount namespace private, mounts a
//!    fresh `/proc` of the new PID namespace in the jail (when asked),
//!    `pivot_root`s into the jail and detaches the old root — no outside is
//!    left to `chdir("..")` to — starts a new session (`setsid`), forks the
//!    program, closes every descriptor, and reaps every process of the
//!    namespace until none is left; it exits with the program's status
//!    (128+N when the program was killed by signal N).
//! 3. **the program**: gives up every privilege — as root it becomes uid and
//!    gid 65534 outright, as an ordinary user it stays the caller's own uid
//!    (root of ldchain's user namespace, mapped to the caller); in both cases
//!    the capability bounding, ambient, effective, permitted and inheritable
//!    sets are emptied and `PR_SET_NO_NEW_PRIVS` is set — marks every
//!    descriptor but 0, 1, 2 close-on-exec (except those passed on purpose),
//!    changes to its working directory and is exec'd by [`Command`].
//!
//! # Safety
//!
//! The `pre_exec` hook runs after `fork` in a copy of a multi-threaded
//! process: it must be async-signal-safe. It only makes system calls
//! (rustix, or libc's thin wrappers; the further forks are raw `clone`
//! system calls, so no `atfork` handler runs) on data prepared before the
//! fork, and allocates nothing. The descriptors it passes on are the
//! caller's, checked open before the spawn.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

use ldchain_resolver::Prepared;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{self, MountPropagationFlags, UnmountFlags};
use rustix::thread::{CapabilitySet, CapabilitySets, UnshareFlags};

use crate::signals;

/// The unprivileged host uid and gid a program runs as when ldchain is root.
pub const NOBODY: u32 = 65534;

/// How the program is put into the jail. See the module docs.
#[derive(Debug, Clone)]
pub struct Sandbox {
    root: CString,
    /// Where the init mounts a fresh `/proc`, relative to the jail's root.
    proc_at: Option<CString>,
    cwd: CString,
    keep: Vec<RawFd>,
    unshare_net: bool,
    as_root: bool,
    ids: (u32, u32),
    wait_all: bool,
    unshare_ipc: bool,
    /// `Some`: a UTS namespace of its own, with this host name (if not empty).
    uts: Option<CString>,
    /// BPF programs (`struct sock_filter` arrays) loaded just before exec.
    seccomp: Vec<Vec<u8>>,
    as_pid_1: bool,
    /// The program's controlling terminal (`--pty`), a descriptor of ours.
    terminal: Option<RawFd>,
}

/// A jail started by [`Sandbox::spawn`].
#[derive(Debug)]
pub struct Jailed {
    /// The monitor: it ends as the program did (module docs).
    pub child: Child,
    /// The host pid of the jail's PID 1 (the init, or the program itself
    /// with [`Sandbox::as_pid_1`]), when it was started.
    pub init_pid: Option<u32>,
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl Sandbox {
    /// The jail at `root` (a host path in the calling process's mount
    /// namespace, which must be private), with a fresh `/proc` mounted at
    /// `root/proc` if that is a directory (not a symbolic link), and
    /// `cwd` (a path inside the jail) as the program's working directory.
    pub fn new(root: &Path, cwd: &[u8]) -> io::Result<Sandbox> {
        let has_proc = root.join("proc").symlink_metadata().is_ok_and(|m| m.is_dir());
        Ok(Sandbox {
            root: cstring(root.as_os_str().as_bytes())?,
            proc_at: has_proc.then(|| c"proc".to_owned()),
            cwd: cstring(cwd)?,
            keep: Vec::new(),
            unshare_net: false,
            as_root: host_root(),
            ids: program_ids(),
            wait_all: false,
            unshare_ipc: false,
            uts: None,
            seccomp: Vec::new(),
            as_pid_1: false,
            terminal: None,
        })
    }

    /// Pass descriptor `fd` (open in this process) on to the program, under
    /// the same number.
    pub fn keep_fd(mut self, fd: RawFd) -> io::Result<Self> {
        // SAFETY: fcntl(F_GETFD) on any number is harmless; it only checks.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
        if !open || fd < 3 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--keep-fd {fd}: not an open descriptor above 2"),
            ));
        }
        self.keep.push(fd);
        Ok(self)
    }

    /// The uid and gid the program runs as, when this process is root on
    /// the host (default [`NOBODY`]); otherwise the ids are those the user
    /// namespace maps the caller to, and this changes nothing.
    pub fn ids(mut self, uid: u32, gid: u32) -> Self {
        if self.as_root {
            self.ids = (uid, gid);
        }
        self
    }

    /// Give the jail its own network namespace (only a loopback device, down).
    pub fn unshare_net(mut self, yes: bool) -> Self {
        self.unshare_net = yes;
        self
    }

    /// Mount the jail's fresh `/proc` at `dest` (a directory inside the
    /// jail, which must exist there; resolved without following any
    /// symbolic link) instead of `/proc`.
    pub fn proc_at(mut self, dest: &[u8]) -> io::Result<Self> {
        let rel = dest.strip_prefix(b"/").unwrap_or(dest);
        self.proc_at = Some(cstring(if rel.is_empty() { b"." } else { rel })?);
        Ok(self)
    }

    /// Give the jail its own IPC namespace (System V IPC, POSIX message
    /// queues).
    pub fn unshare_ipc(mut self, yes: bool) -> Self {
        self.unshare_ipc = yes;
        self
    }

    /// Give the jail its own UTS namespace, named `hostname` if not empty.
    pub fn hostname(mut self, hostname: &[u8]) -> io::Result<Self> {
        self.uts = Some(cstring(hostname)?);
        Ok(self)
    }

    /// Load this seccomp filter (a BPF program as `seccomp(2)` takes it: an
    /// array of 8-byte `struct sock_filter`) in the program's process, after
    /// everything else, just before exec. Filters stack in the order given.
    pub fn seccomp(mut self, program: Vec<u8>) -> io::Result<Self> {
        if program.is_empty() || program.len() % 8 != 0 || program.len() / 8 > 4096 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a seccomp program of {} bytes: not 1 to 4096 instructions of 8 bytes",
                    program.len()
                ),
            ));
        }
        self.seccomp.push(program);
        Ok(self)
    }

    /// Make `terminal` (the jail's side of a [`Pty`](crate::pty::Pty), which
    /// must stay open until the spawn has returned) the program's
    /// controlling terminal and its descriptors 0, 1 and 2.
    pub fn terminal(mut self, terminal: BorrowedFd<'_>) -> Self {
        self.terminal = Some(terminal.as_raw_fd());
        self
    }

    /// No init: the program itself is PID 1 of the jail, and reaps (or
    /// not) what it leaves behind.
    pub fn as_pid_1(mut self, yes: bool) -> Self {
        self.as_pid_1 = yes;
        self
    }

    /// With `yes`, the jail lasts until its last process has exited, not
    /// just its program (for batch jobs that leave workers behind).
    pub fn wait_all(mut self, yes: bool) -> Self {
        self.wait_all = yes;
        self
    }

    /// Spawn `cmd` (its program is looked up inside the jail) in the jail.
    /// The [`Child`] is the monitor; it ends as the program did: with its
    /// exit code, or killed by the same signal (see the module docs).
    pub fn spawn(&self, cmd: Command) -> io::Result<Jailed> {
        self.spawn_then(cmd, None)
    }

    /// Spawn the exec `prepared` describes (a plan carried out in the
    /// program's own process, after the sandbox's set-up), as
    /// [`spawn`](Self::spawn).
    pub fn spawn_prepared(&self, prepared: Prepared) -> io::Result<Jailed> {
        self.spawn_then(Command::new("/"), Some(prepared))
    }

    fn spawn_then(&self, mut cmd: Command, prepared: Option<Prepared>) -> io::Result<Jailed> {
        use rustix::pipe::{pipe_with, PipeFlags};
        // The init reports the program's raw wait status to the monitor,
        // and the monitor the init's pid to us; every end is closed in the
        // program (close-on-exec).
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let (info_read, info_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let hook = self.clone();
        let status = (read.as_raw_fd(), write.as_raw_fd(), info_write.as_raw_fd());
        // SAFETY: the hook is async-signal-safe (module docs); the pipe's
        // descriptors stay open until `spawn` has returned.
        unsafe {
            cmd.pre_exec(move || hook.enter(status).map_err(io::Error::from));
        }
        if let Some(prepared) = prepared {
            // SAFETY: Prepared::exec only makes system calls
            // (async-signal-safe); it runs after the hook above, in the
            // program's process, and returns only on failure.
            unsafe {
                cmd.pre_exec(move || Err(prepared.exec()));
            }
        }
        let child = cmd.spawn()?;
        drop((read, write, info_write));
        let mut word = [0u8; 4];
        let init_pid = match rustix::io::read(&info_read, &mut word) {
            Ok(4) => Some(u32::from_ne_bytes(word)),
            _ => None,
        };
        Ok(Jailed { child, init_pid })
    }

    /// Runs in the monitor, between fork and exec; returns (to exec the
    /// program) only in the program's process.
    fn enter(&self, status: (RawFd, RawFd, RawFd)) -> rustix::io::Result<()> {
        // The jail ends with ldchain (the thread that spawned us).
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        // A terminal's signals reach ldchain alone, which passes them on
        // (crate::signals); they wait until each process can pass them on.
        rustix::process::setpgid(None, None)?;
        signals::block();
        let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWPID;
        for (yes, flag) in [
            (self.unshare_net, UnshareFlags::NEWNET),
            (self.unshare_ipc, UnshareFlags::NEWIPC),
            (self.uts.is_some(), UnshareFlags::NEWUTS),
        ] {
            if yes {
                flags |= flag;
            }
        }
        // SAFETY: no CLONE_FILES, the flag that makes rustix mark unshare unsafe.
        unsafe { rustix::thread::unshare_unsafe(flags)? };
        let init = fork()?;
        if init != 0 {
            let word = (init as u32).to_ne_bytes();
            // SAFETY: write reads 4 bytes from `word`.
            unsafe { libc::write(status.2, word.as_ptr().cast(), 4) };
            monitor(init, status.0);
        }
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        if self.unshare_net {
            loopback_up()?;
        }
        if let Some(name) = self.uts.as_ref().filter(|n| !n.is_empty()) {
            // SAFETY: sethostname reads `len` bytes of a live CString.
            if unsafe { libc::sethostname(name.as_ptr(), name.as_bytes().len()) } != 0 {
                return Err(rustix::io::Errno::from_raw_os_error(errno()));
            }
        }
        self.enter_root()?;
        rustix::process::setsid()?;
        if !self.as_pid_1 {
            let program = fork()?;
            if program != 0 {
                reap(program, status.1, self.wait_all);
            }
        }
        signals::unblock();
        self.drop_privileges()?;
        // Every descriptor but 0, 1, 2 is closed at exec (Command's own
        // error pipe included, so it still reports a failed exec).
        close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC)?;
        if let Some(terminal) = self.terminal {
            crate::pty::take_terminal(terminal)?;
        }
        // SAFETY: each fd was checked open by `keep_fd`, and nothing in
        // this process has closed it since.
        ldchain_resolver::inherit_fds(self.keep.iter().map(|&fd| unsafe { BorrowedFd::borrow_raw(fd) }))?;
        rustix::process::chdir(self.cwd.as_c_str())?;
        for program in &self.seccomp {
            load_seccomp(program)?;
        }
        Ok(())
    }

    /// In the init: a private copy of the view, a fresh `/proc`, then
    /// `pivot_root` into the jail with the old root detached.
    fn enter_root(&self) -> rustix::io::Result<()> {
        mount::mount_change(c"/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)?;
        // pivot_root needs the new root to be a mount point.
        mount::mount_bind_recursive(self.root.as_c_str(), self.root.as_c_str())?;
        rustix::process::chdir(self.root.as_c_str())?;
        if let Some(dest) = &self.proc_at {
            // Onto the jail's `proc` as a descriptor: a symbolic link put
            // there meanwhile is refused, never followed.
            let attrs = mount::MountAttrFlags::MOUNT_ATTR_NOSUID
                | mount::MountAttrFlags::MOUNT_ATTR_NODEV
                | mount::MountAttrFlags::MOUNT_ATTR_NOEXEC;
            let proc = crate::mount::new_fs(c"proc", &[], &[], attrs)?;
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let target = rustix::fs::openat2(rustix::fs::CWD, dest.as_c_str(), flags, Mode::empty(), resolve)?;
            let empty = mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH;
            mount::move_mount(&proc, c"", &target, c"", empty)?;
        }
        // The old root is stacked on top of the new one, then detached.
        rustix::process::pivot_root(c".", c".")?;
        mount::unmount(c".", UnmountFlags::DETACH)?;
        rustix::process::chdir(c"/")
    }

    /// In the program's process: no capability left, no way to gain one,
    /// and (as root) its uid and gid (default [`NOBODY`]), with no
    /// supplementary group.
    fn drop_privileges(&self) -> rustix::io::Result<()> {
        for cap in 0..64 {
            // SAFETY: prctl with integer arguments; EINVAL past the last
            // capability this kernel knows is expected and ignored.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
                let err = rustix::io::Errno::from_raw_os_error(errno());
                if err != rustix::io::Errno::INVAL {
                    return Err(err);
                }
            }
        }
        if self.as_root {
            let gid = rustix::process::Gid::from_raw(self.ids.1);
            let uid = rustix::process::Uid::from_raw(self.ids.0);
            rustix::thread::set_thread_groups(&[])?;
            rustix::thread::set_thread_res_gid(gid, gid, gid)?;
            rustix::thread::set_thread_res_uid(uid, uid, uid)?;
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) } != 0 {
            return Err(rustix::io::Errno::from_raw_os_error(errno()));
        }
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: CapabilitySet::empty(),
                permitted: CapabilitySet::empty(),
                inheritable: CapabilitySet::empty(),
            },
        )?;
        rustix::thread::set_no_new_privs(true)
    }
}

/// Whether this process is root on the host (not merely in a user
/// namespace of its own, as `ldchain run` makes for an ordinary user).
pub fn host_root() -> bool {
    // Decided once: entering ldchain's own user namespace never changes it
    // (root stays root; any other caller is mapped to itself or --uid).
    static HOST_ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HOST_ROOT.get_or_init(|| {
        rustix::process::getuid().is_root()
            && std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| m.split_whitespace().nth(1) == Some("0"))
    })
}

/// The program's uid and gid, as this process's user namespace names them:
/// [`NOBODY`] when this process is root on the host, else its own.
pub fn program_ids() -> (u32, u32) {
    if host_root() {
        (NOBODY, NOBODY)
    } else {
        (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw())
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

/// `fork` as a raw `clone` system call: no `atfork` handler runs in this
/// copy of a multi-threaded process. Returns the child's pid, or 0 in the
/// child.
fn fork() -> rustix::io::Result<libc::pid_t> {
    // SAFETY: clone with only SIGCHLD and no stack is fork(2); the child
    // continues on a copy of this stack, as after fork.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(rustix::io::Errno::from_raw_os_error(errno()));
    }
    Ok(pid as libc::pid_t)
}

/// `close_range(first, last, flags)`.
fn close_range(first: u32, last: u32, flags: u32) -> rustix::io::Result<()> {
    // SAFETY: close_range only closes (or marks) descriptors of this
    // process; nothing in it uses them afterwards.
    if unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) } != 0 {
        return Err(rustix::io::Errno::from_raw_os_error(errno()));
    }
    Ok(())
}

/// Close every descriptor from `first` on but `keep` (which is above it).
/// Async-signal-safe.
fn close_all_but(first: u32, keep: RawFd) {
    let keep = keep as u32;
    if keep > first {
        let _ = close_range(first, keep - 1, 0);
    }
    let _ = close_range(keep + 1, u32::MAX, 0);
}

/// The monitor: pass signals on to the init; when the init is gone, end
/// as the program did, as the init reported it on the status pipe (`read`,
/// non-blocking), else as the init itself did.
fn monitor(init: libc::pid_t, read: RawFd) -> ! {
    close_all_but(3, read);
    signals::forward_to(init);
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only to `status`.
        let pid = unsafe { libc::waitpid(init, &mut status, 0) };
        if pid == init || (pid < 0 && errno() != libc::EINTR) {
            break;
        }
    }
    let mut word = [0u8; 4];
    // SAFETY: read writes at most 4 bytes into `word`.
    if unsafe { libc::read(read, word.as_mut_ptr().cast(), 4) } == 4 {
        status = i32::from_ne_bytes(word);
    }
    end_as(status)
}

/// The init, PID 1 of the jail: pass signals on to the program, reap every
/// process of the namespace, and when the program has ended, write its raw
/// status to `write` (for the monitor) and exit — the kernel then kills
/// whatever is left in the namespace — or, with `wait_all`, go on reaping
/// until no process is left.
fn reap(program: libc::pid_t, write: RawFd, wait_all: bool) -> ! {
    close_all_but(3, write);
    signals::forward_to(program);
    let mut code = 125;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only to `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            break;
        }
        if pid == program {
            code = exit_code(status);
            let word = status.to_ne_bytes();
            // SAFETY: write reads 4 bytes from `word`.
            unsafe { libc::write(write, word.as_ptr().cast(), 4) };
            if !wait_all {
                break;
            }
        }
    }
    // SAFETY: _exit ends this process without running anything of the
    // parent's copied state (no atexit handlers, no destructors).
    unsafe { libc::_exit(code) }
}

/// A wait status as an exit code: its own, or 128 + N for signal N.
fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// End as a process with wait status `status` did: by the same signal, or
/// with the same exit code.
fn end_as(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        signals::die_by(libc::WTERMSIG(status));
    }
    // SAFETY: as in `reap`.
    unsafe { libc::_exit(exit_code(status)) }
}

/// Load one seccomp filter program (checked by [`Sandbox::seccomp`]).
fn load_seccomp(program: &[u8]) -> rustix::io::Result<()> {
    let prog = libc::sock_fprog {
        len: (program.len() / 8) as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `len` 8-byte instructions of a live buffer,
    // which the kernel copies; no_new_privs is already set.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(rustix::io::Errno::from_raw_os_error(errno()));
    }
    Ok(())
}

/// Bring the new network namespace's loopback device up (a new namespace
/// starts with `lo` down), as `ip link set lo up` does.
fn loopback_up() -> rustix::io::Result<()> {
    // SAFETY: socket returns a new descriptor or -1; ifreq is zeroed then
    // given a NUL-terminated name; the ioctls read and write only `req`;
    // the descriptor is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(rustix::io::Errno::from_raw_os_error(errno()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        let mut r = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            r = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let err = errno();
        libc::close(fd);
        if r != 0 {
            return Err(rustix::io::Errno::from_raw_os_error(err));
        }
    }
    Ok(())
}

/// Keep `fd` open in a child process until this process has exited, so
/// that the last close of its open file happens there, not in this
/// process's exit. For an inotify instance with watches that last close
/// waits for an SRCU grace period (≈8 ms measured, every time); ldchain's
/// caller would otherwise wait for it after the jail's last process has
/// exited. The child holds nothing else (every other descriptor closed),
/// and dies with this process (`PR_SET_PDEATHSIG`, from the main thread,
/// which lives as long as the process); init reaps it.
pub fn release_after_exit(fd: BorrowedFd<'_>) -> io::Result<()> {
    let keep = fd.as_raw_fd() as u32;
    let parent = rustix::process::getpid();
    match fork()? {
        0 => {
            // The child of a multi-threaded process: system calls only.
            let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
            if rustix::process::getppid() != Some(parent) {
                // SAFETY: _exit ends the process at once, no handlers run.
                unsafe { libc::_exit(0) };
            }
            close_all_but(0, keep as RawFd);
            loop {
                // SAFETY: pause touches no memory.
                unsafe { libc::pause() };
            }
        }
        _ => Ok(()),
    }
}
