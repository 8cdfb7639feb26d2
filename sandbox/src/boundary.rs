//! Entering the jail of `ldchain run` as a real boundary, bubblewrap-style.
//!
//! [`Sandbox::spawn`] starts two processes from the `ldchain` process
//! (which has already built the jail's view in its private mount namespace,
//! and keeps serving nested execs from there):
//!
//! 1. **the init**, cloned straight into new mount and PID namespaces (and
//!    network, IPC and UTS ones when asked) as their PID 1: starts a new
//!    session (`setsid`, so a terminal's signals reach ldchain alone, which
//!    passes them on), dies with ldchain (`PR_SET_PDEATHSIG`), makes its
//!    mount namespace private, mounts a fresh `/proc` of the new PID
//!    namespace in the jail (when asked), `pivot_root`s into the jail and
//!    detaches the old root — no outside is left to `chdir("..")` to —
//!    forks the program, closes every descriptor but a status pipe, and
//!    reaps every process of the namespace; when the program has ended it
//!    writes the program's raw wait status to the pipe and exits with it
//!    (128+N when the program was killed by signal N). It is the child
//!    `ldchain` waits for ([`Jailed::wait`]), which reads the status.
//! 2. **the program**: gives up every privilege — as root it becomes uid and
//!    gid 65534 outright, as an ordinary user it stays the caller's own uid
//!    (root of ldchain's user namespace, mapped to the caller); in both cases
//!    the capability bounding, ambient, effective, permitted and inheritable
//!    sets are emptied and `PR_SET_NO_NEW_PRIVS` is set — marks every
//!    descriptor but 0, 1, 2 close-on-exec (except those passed on purpose),
//!    changes to its working directory, starts with every signal unblocked
//!    and `SIGPIPE` at its default, and is exec'd. A failure of any step
//!    in either process, the exec included, comes back to
//!    [`Sandbox::spawn`] as its `errno` on a pipe, as `Command::spawn`
//!    reports one.
//!
//! No process in between: the init is ldchain's own child, so starting a
//! jail copies ldchain's address space twice (init, program), not three
//! times, and its mount table once.
//!
//! [`Sandbox::spawn_gated`] splits the start in two: the init enters the
//! jail at once and waits at a gate (a pipe) before it starts the program;
//! [`Gated::open`] lets it go on, dropping the [`Gated`] ends it. `ldchain
//! run` reaches its verdict on the program meanwhile.
//!
//! # Safety
//!
//! The init and the program are raw `clone` copies of a multi-threaded
//! process (no `atfork` handler runs): until the exec they must be
//! async-signal-safe. They only make system calls (rustix, or libc's thin
//! wrappers) on data prepared before the clone (argv and envp as C
//! strings), and allocate nothing. The descriptors passed on are the
//! caller's, checked open before the spawn.
#![allow(unsafe_code)]

use std::convert::Infallible;
use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use ldchain_resolver::Prepared;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::mount::{self, MountPropagationFlags, UnmountFlags};
use rustix::thread::{CapabilitySet, CapabilitySets};

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

/// A jail started by [`Sandbox::spawn`]: its PID 1, a child of the caller.
#[derive(Debug)]
pub struct Jailed {
    /// The jail's PID 1 (the init, or the program itself with
    /// [`Sandbox::as_pid_1`]), as the caller's PID namespace names it.
    pid: u32,
    /// Where the init reports the program's raw wait status.
    status: OwnedFd,
}

impl Jailed {
    /// The host pid of the jail's PID 1 (what `--info-fd` reports, and
    /// where the caller's signals are to be passed on).
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// The program's status as soon as the init reports it, as bwrap's
    /// monitor does: the init may still be ending (its namespaces being
    /// torn down, what is left in them being killed), and is not reaped
    /// (a caller that goes on living calls [`wait`](Self::wait) later).
    /// Without a report (the program was PID 1, or the init died first):
    /// as [`wait`](Self::wait).
    pub fn wait_program(&mut self) -> io::Result<ExitStatus> {
        let mut word = [0u8; 4];
        let mut poll = [rustix::event::PollFd::new(&self.status, rustix::event::PollFlags::IN)];
        loop {
            match rustix::event::poll(&mut poll, None) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        match rustix::io::read(&self.status, &mut word) {
            Ok(4) => Ok(ExitStatus::from_raw(i32::from_ne_bytes(word))),
            _ => self.wait(),
        }
    }

    /// Wait for the jail to end; the program's status: its exit code, or
    /// the signal that killed it (with [`Sandbox::as_pid_1`], PID 1's own).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let pid = rustix::process::Pid::from_raw(self.pid as i32);
        let status = loop {
            match rustix::process::waitpid(pid, rustix::process::WaitOptions::empty()) {
                Ok(Some((_, status))) => break status.as_raw(),
                Ok(None) | Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut word = [0u8; 4];
        Ok(match rustix::io::read(&self.status, &mut word) {
            Ok(4) => ExitStatus::from_raw(i32::from_ne_bytes(word)),
            _ => ExitStatus::from_raw(status),
        })
    }
}

/// A jail whose init has been started by [`Sandbox::spawn_gated`] and
/// waits to start the program. Dropped unopened, the init ends (and is
/// reaped) without starting anything.
#[derive(Debug)]
pub struct Gated {
    jailed: Option<Jailed>,
    /// Its write end: a byte lets the init go on, its closing ends it.
    gate: Option<OwnedFd>,
    /// Where the init or the program reports the error that stopped it.
    error: Option<OwnedFd>,
}

impl Gated {
    /// Let the init start the program; then as [`Sandbox::spawn`]: once
    /// the program has been exec'd, the jail, or the error that stopped it.
    pub fn open(self) -> io::Result<Jailed> {
        self.let_go().started()
    }

    /// Let the init start the program, and return at once: the caller
    /// goes on while the program starts, then learns how that went from
    /// [`Opened::started`].
    pub fn let_go(mut self) -> Opened {
        let (Some(gate), Some(jailed), Some(error)) = (self.gate.take(), self.jailed.take(), self.error.take()) else {
            unreachable!("a Gated is opened once, by value");
        };
        // EPIPE if the init is gone already: its error, or its status, says why.
        let _ = rustix::io::write(&gate, &[1]);
        drop(gate);
        Opened { jailed, error }
    }
}

/// A jail whose init was let go by [`Gated::let_go`]: its program is
/// starting. Dropped, the jail runs on unwatched (its init ends with the
/// caller's process).
#[derive(Debug)]
pub struct Opened {
    jailed: Jailed,
    /// Where the init or the program reports the error that stopped it.
    error: OwnedFd,
}

impl Opened {
    /// As [`Sandbox::spawn`]: once the program has been exec'd, the jail,
    /// or the error that stopped it.
    pub fn started(self) -> io::Result<Jailed> {
        started(self.jailed, &self.error)
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        drop(self.gate.take());
        if let Some(mut jailed) = self.jailed.take() {
            let _ = jailed.wait();
        }
    }
}

/// The gate the init of [`Sandbox::spawn_gated`] waits at (its pipe's
/// ends, as the init's copy of the descriptor table holds them).
#[derive(Debug, Clone, Copy)]
struct Gate {
    read: RawFd,
    write: RawFd,
}

impl Gate {
    /// In the init: wait for the byte that lets it go on; an error
    /// (`ECANCELED`) if the write end was closed without one.
    fn pass(self) -> rustix::io::Result<()> {
        // SAFETY: both ends are open in the init's copy of the table (the
        // caller's `Gated` holds them until after the clone); the init
        // closes its own copy of the write end so that the caller's
        // closing is seen, and the read end once passed.
        unsafe {
            libc::close(self.write);
        }
        let mut byte = [0u8; 1];
        // SAFETY: as above, `read` is open here until closed below.
        let read = unsafe { BorrowedFd::borrow_raw(self.read) };
        let passed = loop {
            match rustix::io::read(read, &mut byte) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(1) => break true,
                Ok(_) | Err(_) => break false,
            }
        };
        // SAFETY: as above; nothing uses it after this.
        unsafe {
            libc::close(self.read);
        }
        match passed {
            true => Ok(()),
            false => Err(rustix::io::Errno::CANCELED),
        }
    }
}

/// Wait until the jail's program has been exec'd (its error pipe closes)
/// or has failed to be (its errno comes on it): the jail, or that error.
fn started(mut jailed: Jailed, error: &OwnedFd) -> io::Result<Jailed> {
    let mut word = [0u8; 4];
    let failed = loop {
        match rustix::io::read(error, &mut word) {
            Ok(4) => break Some(io::Error::from_raw_os_error(i32::from_ne_bytes(word))),
            Err(rustix::io::Errno::INTR) => continue,
            Ok(_) | Err(_) => break None,
        }
    };
    match failed {
        None => Ok(jailed),
        Some(e) => {
            let _ = jailed.wait();
            Err(e)
        }
    }
}

/// What the program's process execs once it is in the jail, prepared
/// before the clone (nothing is allocated after it).
enum Then {
    /// `execve` of a path inside the jail.
    Execve {
        path: CString,
        argv: CStrings,
        envp: CStrings,
    },
    /// A plan of the resolver's, carried out in the program's process.
    Prepared(Prepared),
}

/// A NULL-terminated array of C strings, as `execve` takes them.
struct CStrings {
    _strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl Then {
    /// `execve` of `program` with `argv` and `envp`, as C strings.
    fn execve<A: AsRef<[u8]>, E: AsRef<[u8]>>(program: &[u8], argv: &[A], envp: &[E]) -> io::Result<Then> {
        Ok(Then::Execve {
            path: cstring(program)?,
            argv: CStrings::new(argv)?,
            envp: CStrings::new(envp)?,
        })
    }
}

impl CStrings {
    fn new<T: AsRef<[u8]>>(items: &[T]) -> io::Result<CStrings> {
        let strings = items
            .iter()
            .map(|s| cstring(s.as_ref()))
            .collect::<io::Result<Vec<_>>>()?;
        // The strings' bytes live on the heap: moving the Vec keeps them.
        let mut ptrs: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(CStrings {
            _strings: strings,
            ptrs,
        })
    }
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

impl Sandbox {
    /// The jail at `root` (a host path in the calling process's mount
    /// namespace, which must be private), with a fresh `/proc` mounted at
    /// `root/proc` if that is a directory (not a symbolic link), and
    /// `cwd` (a path inside the jail) as the program's working directory.
    ///
    /// Defaults, each changed by the method named:
    ///
    /// | what | default | |
    /// |---|---|---|
    /// | the program's uid and gid | [`program_ids`]: [`NOBODY`] when the caller is root on the host, else its own | [`ids`](Self::ids) |
    /// | namespaces besides mount and PID | the caller's network, IPC and UTS | [`unshare_net`](Self::unshare_net), [`unshare_ipc`](Self::unshare_ipc), [`hostname`](Self::hostname) |
    /// | `/proc` | at `proc`, as above | [`proc_at`](Self::proc_at) |
    /// | descriptors passed on | 0, 1 and 2 only | [`keep_fd`](Self::keep_fd) |
    /// | controlling terminal | none | [`terminal`](Self::terminal) |
    /// | seccomp filters | none | [`seccomp`](Self::seccomp) |
    /// | PID 1 | an init that reaps, ending with the program | [`as_pid_1`](Self::as_pid_1), [`wait_all`](Self::wait_all) |
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

    /// Start `program` (a path inside the jail, exec'd as it is: no
    /// `PATH` search) with exactly `argv` and `envp` (`NAME=value`) in the
    /// jail. Returns once it has been exec'd, or with the error that
    /// stopped it (its `errno`: ENOENT, EACCES, ENOEXEC, …); the
    /// [`Jailed`] ends as the program did (see the module docs).
    pub fn spawn<A: AsRef<[u8]>, E: AsRef<[u8]>>(&self, program: &[u8], argv: &[A], envp: &[E]) -> io::Result<Jailed> {
        self.spawn_then(Then::execve(program, argv, envp)?)
    }

    /// Spawn the exec `prepared` describes (a plan carried out in the
    /// program's own process, after the sandbox's set-up), as
    /// [`spawn`](Self::spawn).
    pub fn spawn_prepared(&self, prepared: Prepared) -> io::Result<Jailed> {
        self.spawn_then(Then::Prepared(prepared))
    }

    /// As [`spawn`](Self::spawn), in two steps: the init is started now and
    /// enters the jail (its namespaces, its root) while the caller goes on —
    /// with a last check before the program may start, say — and starts the
    /// program only at [`Gated::open`]. Dropped unopened, the [`Gated`]
    /// ends the init before anything runs in the jail.
    pub fn spawn_gated<A: AsRef<[u8]>, E: AsRef<[u8]>>(
        &self,
        program: &[u8],
        argv: &[A],
        envp: &[E],
    ) -> io::Result<Gated> {
        let then = Then::execve(program, argv, envp)?;
        let (gate_read, gate_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let gate = Gate {
            read: gate_read.as_raw_fd(),
            write: gate_write.as_raw_fd(),
        };
        let (jailed, error) = self.start(&then, Some(gate))?;
        Ok(Gated {
            jailed: Some(jailed),
            gate: Some(gate_write),
            error: Some(error),
        })
    }

    fn spawn_then(&self, then: Then) -> io::Result<Jailed> {
        let (jailed, error) = self.start(&then, None)?;
        started(jailed, &error)
    }

    /// Clone the init (see the module docs), which waits at `gate` if
    /// given; the jail, and the read end of the pipe its errors come on.
    fn start(&self, then: &Then, gate: Option<Gate>) -> io::Result<(Jailed, OwnedFd)> {
        use rustix::pipe::{pipe_with, PipeFlags};
        // The init reports the program's raw wait status on `status`; any
        // step that fails, in the init or the program, its errno on
        // `error`, which the exec closes (close-on-exec) when all went well.
        let (status_read, status_write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let (error_read, error_write) = pipe_with(PipeFlags::CLOEXEC)?;
        let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID;
        for (yes, flag) in [
            (self.unshare_net, libc::CLONE_NEWNET),
            (self.unshare_ipc, libc::CLONE_NEWIPC),
            (self.uts.is_some(), libc::CLONE_NEWUTS),
        ] {
            if yes {
                flags |= flag;
            }
        }
        let root = jail_root(&self.root);
        // The program's process runs on this until its exec (see
        // `spawn_program`); allocated here, where allocating is safe.
        let mut stack = vec![0u8; PROGRAM_STACK];
        // Held back in the init until it can pass them on (they stay
        // pending there); let in again here at once.
        signals::hold();
        let init = fork_into(flags as libc::c_ulong);
        if init == Ok(0) {
            let pipes = (status_write.as_raw_fd(), error_write.as_raw_fd());
            let Err(err) = self.init(then, pipes, gate, root, &mut stack);
            report(pipes.1, err)
        }
        signals::unblock();
        let init = init?;
        drop((status_write, error_write));
        let jailed = Jailed {
            pid: init as u32,
            status: status_read,
        };
        Ok((jailed, error_read))
    }

    /// The init, PID 1 of the new namespaces, between clone and exec;
    /// returns only with the error that stopped it or the program (whose
    /// process is exec'd, or returns its error too).
    fn init(
        &self,
        then: &Then,
        (status, error): (RawFd, RawFd),
        gate: Option<Gate>,
        root: JailRoot,
        stack: &mut [u8],
    ) -> rustix::io::Result<Infallible> {
        // First out of ldchain's process group and session: a terminal's
        // signals are for ldchain alone (it passes them on).
        rustix::process::setsid()?;
        signals::block();
        // The jail ends with ldchain (the thread that spawned us).
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        if self.unshare_net {
            loopback_up()?;
        }
        if let Some(name) = self.uts.as_ref().filter(|n| !n.is_empty()) {
            rustix::system::sethostname(name.as_bytes())?;
        }
        self.enter_root(root)?;
        if let Some(gate) = gate {
            gate.pass()?;
        }
        if self.as_pid_1 {
            return self.program(then);
        }
        let program = self.spawn_program(then, error, stack)?;
        reap(program, status, self.wait_all)
    }

    /// In the init: start the program's process as `posix_spawn` does
    /// (`CLONE_VM | CLONE_VFORK`): it runs [`program`](Self::program) on
    /// `stack`, in the init's memory, while the init is suspended until its
    /// exec (or its end). Nothing of ldchain's address space is copied for
    /// it. Its failure reaches [`Sandbox::spawn`] on `error`.
    fn spawn_program(&self, then: &Then, error: RawFd, stack: &mut [u8]) -> rustix::io::Result<libc::pid_t> {
        struct Args<'a> {
            sandbox: &'a Sandbox,
            then: &'a Then,
            error: RawFd,
        }
        extern "C" fn run(arg: *mut libc::c_void) -> libc::c_int {
            // SAFETY: `arg` is the `Args` below, on the init's stack, which
            // lives on: the init is suspended (CLONE_VFORK) until this
            // process has exec'd or ended, and shares its memory.
            let args = unsafe { &*(arg as *const Args<'_>) };
            let Err(err) = args.sandbox.program(args.then);
            report(args.error, err)
        }
        let args = Args {
            sandbox: self,
            then,
            error,
        };
        // The stack grows down from the (16-byte aligned) end of `stack`.
        let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
        // SAFETY: `run` only makes system calls on data prepared before the
        // init was cloned (async-signal-safe), on its own stack (`stack`,
        // unused by anything else), and never returns into the init's
        // frames: it execs or exits. CLONE_VFORK keeps `args` alive.
        let pid = unsafe {
            libc::clone(
                run,
                top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &args as *const Args<'_> as *mut libc::c_void,
            )
        };
        if pid < 0 {
            return Err(rustix::io::Errno::from_raw_os_error(errno()));
        }
        Ok(pid)
    }

    /// In the program's process: give up everything, then exec.
    fn program(&self, then: &Then) -> rustix::io::Result<Infallible> {
        signals::reset_for_exec();
        self.drop_privileges()?;
        // Every descriptor but 0, 1, 2 is closed at exec (the error pipe
        // included, so that the exec's success closes it).
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
        match then {
            Then::Execve { path, argv, envp } => {
                // SAFETY: three NULL-terminated arrays of live C strings,
                // prepared before the clone; execve returns only on failure.
                unsafe { libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr()) };
                Err(rustix::io::Errno::from_raw_os_error(errno()))
            }
            Then::Prepared(prepared) => {
                let e = prepared.exec();
                Err(rustix::io::Errno::from_raw_os_error(
                    e.raw_os_error().unwrap_or(libc::EINVAL),
                ))
            }
        }
    }

    /// In the init: a private copy of the view, a fresh `/proc`, then
    /// `pivot_root` into the jail with the old root detached.
    fn enter_root(&self, root: JailRoot) -> rustix::io::Result<()> {
        mount::mount_change(c"/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)?;
        // pivot_root needs the new root to be a mount point (the throwaway
        // jail's, or a mirrored root, is one already).
        if root != JailRoot::Mount {
            mount::mount_bind_recursive(self.root.as_c_str(), self.root.as_c_str())?;
        }
        // A lookup of "/" starts at this process's root and never enters
        // what is mounted on it (the bind just made, the view's mirror of
        // `/`): `pivot_root` would refuse it as the current root (EBUSY).
        // `..` from the root steps into the topmost mount there.
        let into = if root == JailRoot::Own {
            c"/.."
        } else {
            self.root.as_c_str()
        };
        rustix::process::chdir(into)?;
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
            // By number, not by rustix's names: a newer kernel may know more.
            match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << cap)) {
                Ok(()) => {}
                // Past the last capability this kernel knows (they are
                // numbered without gaps): none is left.
                Err(rustix::io::Errno::INVAL) => break,
                Err(err) => return Err(err),
            }
        }
        if self.as_root {
            let gid = rustix::process::Gid::from_raw(self.ids.1);
            let uid = rustix::process::Uid::from_raw(self.ids.0);
            rustix::thread::set_thread_groups(&[])?;
            rustix::thread::set_thread_res_gid(gid, gid, gid)?;
            rustix::thread::set_thread_res_uid(uid, uid, uid)?;
        }
        rustix::thread::clear_ambient_capability_set()?;
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

/// The stack of the program's process until its exec: what `program`,
/// `Prepared::exec` and the seccomp loader need, with room to spare.
const PROGRAM_STACK: usize = 256 << 10;

/// What a jail's root directory is, for entering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JailRoot {
    /// The root of a mount other than this process's `/` (not followed if
    /// a link): entered as it is.
    Mount,
    /// This process's own `/` (followed if a link; `ldchain run --root /`):
    /// bound on itself, then entered through `/..`.
    Own,
    /// Any other directory: bound on itself (`pivot_root` needs a mount).
    Dir,
}

/// Classify `path` against this process's `/`: one `statx` of each, and
/// one more of `path` only if it is a symbolic link.
fn jail_root(path: &CString) -> JailRoot {
    use rustix::fs::{AtFlags, FileType, StatxAttributes, StatxFlags};
    let want = StatxFlags::TYPE | StatxFlags::INO | StatxFlags::MNT_ID;
    let stat = |p: &std::ffi::CStr, flags| rustix::fs::statx(rustix::fs::CWD, p, flags | AtFlags::NO_AUTOMOUNT, want);
    let has_mnt_id = |s: &rustix::fs::Statx| s.stx_mask & StatxFlags::MNT_ID.bits() != 0;
    let id = |s: &rustix::fs::Statx| (s.stx_dev_major, s.stx_dev_minor, s.stx_ino, s.stx_mnt_id);
    let (Ok(root), Ok(here)) = (
        stat(c"/", AtFlags::empty()),
        stat(path.as_c_str(), AtFlags::SYMLINK_NOFOLLOW),
    ) else {
        return JailRoot::Dir;
    };
    if here.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
        && here.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
        && has_mnt_id(&here)
        && here.stx_mnt_id != root.stx_mnt_id
    {
        return JailRoot::Mount;
    }
    let target = match FileType::from_raw_mode(here.stx_mode.into()) {
        FileType::Symlink => stat(path.as_c_str(), AtFlags::empty()).ok(),
        _ => Some(here),
    };
    match target {
        Some(t) if has_mnt_id(&t) && id(&t) == id(&root) => JailRoot::Own,
        _ => JailRoot::Dir,
    }
}

/// `fork` into the new namespaces `namespaces` (`CLONE_NEW*` flags), as a
/// raw `clone` system call: no `atfork` handler runs in this copy of a
/// multi-threaded process. Returns the child's pid, or 0 in the child.
fn fork_into(namespaces: libc::c_ulong) -> rustix::io::Result<libc::pid_t> {
    // SAFETY: clone with SIGCHLD, namespace flags and no stack is fork(2)
    // into new namespaces; the child continues on a copy of this stack, as
    // after fork.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong | namespaces,
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

/// The init, PID 1 of the jail: pass signals on to the program, reap every
/// process of the namespace, and when the program has ended, write its raw
/// status to `write` (for ldchain, see [`Jailed::wait`]) and exit — the kernel then kills
/// whatever is left in the namespace — or, with `wait_all`, go on reaping
/// until no process is left.
fn reap(program: libc::pid_t, write: RawFd, wait_all: bool) -> ! {
    close_all_but(3, write);
    signals::forward_to(program);
    let mut code = 125;
    loop {
        let (pid, status) = match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((pid, status))) => (pid.as_raw_nonzero().get(), status.as_raw()),
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            // ECHILD: none is left.
            Err(_) => break,
        };
        if pid == program {
            code = exit_code(status);
            if !wait_all {
                // The rest of the jail goes first, then the report: once
                // ldchain has it, it ends and its exec service with it,
                // and nothing left in the jail may run on to find the
                // service gone (and print what it would not have).
                // SAFETY: kill(-1) from PID 1 signals every other process
                // of its PID namespace, and nothing outside it.
                unsafe { libc::kill(-1, libc::SIGKILL) };
            }
            // SAFETY: `write` is open in this process (kept by
            // close_all_but) until it ends.
            let _ = rustix::io::write(unsafe { BorrowedFd::borrow_raw(write) }, &status.to_ne_bytes());
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

/// In the init or the program's process: report `err` to
/// [`Sandbox::spawn`] on `error` and exit, as an exec that failed.
fn report(error: RawFd, err: rustix::io::Errno) -> ! {
    let word = err.raw_os_error().to_ne_bytes();
    // SAFETY: write reads 4 bytes from `word`; _exit ends the process at
    // once, running nothing of the parent's copied state.
    unsafe {
        libc::write(error, word.as_ptr().cast(), 4);
        libc::_exit(127)
    }
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

/// What a child of ldchain does once ldchain has exited, so that ldchain's
/// caller does not wait for it: see [`after_exit`].
#[derive(Debug, Default)]
pub struct AfterExit<'a> {
    /// A descriptor whose last close happens then, in the child (its copy
    /// of it). For an inotify instance with watches that last close waits
    /// for an SRCU grace period (8–16 ms measured, every time). It must be
    /// the instance itself: an epoll instance watching it does not hold it
    /// open.
    pub keep: Option<BorrowedFd<'a>>,
    /// A directory unmounted (detached) and removed then: a throwaway
    /// jail's ([`ThrowawayJail::leave`](crate::throwaway::ThrowawayJail::leave)).
    /// The tear-down of its mounts and the removal of its directory took
    /// 1–7 ms at ldchain's end.
    pub remove: Option<CString>,
}

/// Start a child that waits, holding nothing but `what.keep`, until this
/// process has exited (every other descriptor closed, a pipe's far end
/// closing tells it), then does `what` and ends. It also does it if this
/// process is killed (`SIGKILL` included), so a jail is removed then too.
///
/// It shares this process's memory and mount namespace (`CLONE_VM`, on a
/// small stack of its own that is never freed), so starting it copies
/// nothing; it only makes system calls on data that is never freed, with
/// every signal blocked (a terminal's ^C, sent to the whole process group,
/// must not run our handlers in it). Its descriptor table is its own, so
/// what it closes stays open here.
pub fn after_exit(what: AfterExit<'_>) -> io::Result<()> {
    struct Job {
        keep: RawFd,
        gone: RawFd,
        remove: Option<CString>,
    }
    extern "C" fn keeper(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is a leaked `Job`, alive as long as the memory.
        let job = unsafe { &*(arg as *const Job) };
        // (close_range cannot fail on these ranges, so it never writes
        // the errno it shares with the thread that cloned it.)
        close_all_except(&mut [job.keep, job.gone]);
        let mut byte = [0u8; 1];
        // Blocks until the last write end, ldchain's, is closed.
        while let Err(rustix::io::Errno::INTR) | Ok(1..) = rustix::io::read(
            // SAFETY: `gone` is open in this process until it ends.
            unsafe { BorrowedFd::borrow_raw(job.gone) },
            &mut byte,
        ) {}
        if let Some(dir) = &job.remove {
            let _ = mount::unmount(dir.as_c_str(), UnmountFlags::DETACH);
            let _ = rustix::fs::rmdir(dir.as_c_str());
        }
        // SAFETY: _exit ends this process at once, no handlers run.
        unsafe { libc::_exit(0) }
    }
    let (gone, tell) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let job: &'static mut Job = Box::leak(Box::new(Job {
        keep: what.keep.map_or(-1, |fd| fd.as_raw_fd()),
        gone: gone.as_raw_fd(),
        remove: what.remove,
    }));
    let stack: &'static mut [u8] = Box::leak(vec![0u8; KEEPER_STACK].into_boxed_slice());
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: zeroed sigsets filled or written by libc on our stack; every
    // signal is blocked in this thread around the clone, so the child
    // starts with all of them blocked.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: `keeper` runs on `stack` (leaked: never reused or freed),
    // reads only the leaked `job`, makes only system calls, and never
    // returns.
    let pid = unsafe {
        libc::clone(
            keeper,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::SIGCHLD,
            job as *mut Job as *mut libc::c_void,
        )
    };
    let err = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(err);
    }
    // Ours is the one write end: it closes when this process ends.
    std::mem::forget(tell);
    drop(gone);
    Ok(())
}

/// The keeper's stack: a few frames of system calls.
const KEEPER_STACK: usize = 16 << 10;

/// Close every descriptor but those in `keep` (negative ones ignored).
/// Async-signal-safe.
fn close_all_except(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut first = 0u32;
    for &fd in keep.iter().filter(|&&fd| fd >= 0) {
        let fd = fd as u32;
        if fd > first {
            let _ = close_range(first, fd - 1, 0);
        }
        first = fd + 1;
    }
    let _ = close_range(first, u32::MAX, 0);
}
