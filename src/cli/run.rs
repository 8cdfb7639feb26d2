//! `ldchain run`: build the jail's view, then either serve nested execs and
//! exec the program by path inside the jail (`--strategy interp`, the
//! default), or plan the one exec outside and carry it out (`chainloader`,
//! `execveat`).

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ldchain::resolver::{find_program, Credentials, ExecPlan, InterpRequest, Kind, Namespace, Resolver};
use ldchain::sandbox::boundary::{after_exit, program_ids, AfterExit, Jailed, Sandbox};
use ldchain::sandbox::fds;
use ldchain::sandbox::pty::{Pty, Relay};
use ldchain::sandbox::signals::{catch_signals, die_by, forward_signals};
use ldchain::sandbox::throwaway::{enter_private_namespace, ThrowawayJail};
use ldchain::sandbox::view::{Placed, ServiceDir, View};
use ldchain::service::{ExecService, Limits, NamespaceSource};
use tracing::{debug, info};

use super::args::{RunArgs, RunStrategy};
use super::binds;
use super::status::{exec_failure_status, EXIT_CANNOT_EXEC, EXIT_LDCHAIN, EXIT_NOT_FOUND};

fn own(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ldchain: run: {msg}");
    ExitCode::from(EXIT_LDCHAIN)
}

/// The jail: the one given (never written: what ldchain adds is placed in
/// its private view), or a throwaway one private to this process.
enum Jail {
    Given(PathBuf),
    Throwaway(ThrowawayJail),
}

impl Jail {
    fn root(&self) -> &Path {
        match self {
            Jail::Given(dir) => dir,
            Jail::Throwaway(j) => j.root(),
        }
    }
}

fn jail(args: &RunArgs) -> Result<Jail, ExitCode> {
    match &args.root {
        Some(dir) => {
            // Never written: what ldchain adds goes into the view.
            enter_private_namespace(inner_ids(args))
                .map_err(|e| own(format!("cannot make a private view of the jail: {e}")))?;
            Ok(Jail::Given(dir.clone()))
        }
        None => match ThrowawayJail::create(inner_ids(args)) {
            Ok(j) => {
                info!(root = %j.root().display(), "throwaway jail");
                Ok(Jail::Throwaway(j))
            }
            Err(e) => Err(own(format!("cannot build the throwaway jail: {e}"))),
        },
    }
}

/// The ids an unprivileged caller is mapped to in its user namespace:
/// --uid/--gid where given, else its own.
fn inner_ids(args: &RunArgs) -> Option<(u32, u32)> {
    if args.uid.is_none() && args.gid.is_none() {
        return None;
    }
    let own = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    Some((args.uid.unwrap_or(own.0), args.gid.unwrap_or(own.1)))
}

pub fn main(args: RunArgs) -> ExitCode {
    match prepare(&args) {
        // Everything `go` holds (the service, the throwaway jail) is
        // released before ldchain ends, even by a signal.
        Ok((ready, envp)) => match go(&args, ready, &envp) {
            Ending::Code(code) => code,
            Ending::Signal(sig) => die_by(sig),
        },
        Err(code) => code,
    }
}

/// How `ldchain run` ends: as the program did.
enum Ending {
    /// With this exit code.
    Code(ExitCode),
    /// Killed by this signal.
    Signal(i32),
}

impl From<ExitCode> for Ending {
    fn from(code: ExitCode) -> Ending {
        Ending::Code(code)
    }
}

/// What `main` has built before the program starts.
struct Ready {
    jail: Jail,
    /// The socket of the exec service (interp mode).
    service: Option<ServiceDir>,
    /// The program's path inside the jail.
    program: Vec<u8>,
    /// Its working directory inside the jail.
    cwd: Vec<u8>,
    /// Its terminal, with --pty.
    pty: Option<Pty>,
}

/// Build the jail's view (binds, stubs, socket) completely, then find the
/// program in it.
fn prepare(args: &RunArgs) -> Result<(Ready, Vec<Vec<u8>>), ExitCode> {
    let envp = args.common.envp().map_err(own)?;
    let jail = jail(args)?;
    let root = jail.root().to_owned();
    let mut view = View::new(&root, matches!(jail, Jail::Throwaway(_)))
        .map_err(|e| own(format!("{}: cannot open jail directory: {e}", root.display())))?;
    super::setup::apply(&args.setup.ops, &mut view, program_ids_of(args)).map_err(own)?;
    let own_dir = match jail {
        Jail::Throwaway(_) => binds::own_directory(args, &mut view).map_err(own)?,
        Jail::Given(_) => None,
    };
    let service = match args.strategy {
        RunStrategy::Interp => {
            Some(stubs_and_socket(&mut view).map_err(|e| own(format!("cannot start the exec service: {e}")))?)
        }
        RunStrategy::Chainloader => {
            chainloaders(&mut view).map_err(own)?;
            None
        }
        RunStrategy::Execveat => None,
    };
    view.finish()
        .map_err(|e| own(format!("cannot make the view's mirrors read-only: {e}")))?;
    let cwd = match (&args.chdir, &own_dir) {
        (Some(dir), _) => dir.as_bytes().to_vec(),
        (None, Some(d)) => d.cwd.clone(),
        (None, None) => b"/".to_vec(),
    };
    let argv0 = own_dir
        .as_ref()
        .map_or(args.command[0].as_bytes(), |d| d.program.as_slice());
    let ns = Namespace::open(&root).map_err(|e| own(format!("{}: {e}", root.display())))?;
    if let Err(e) = ns.open_path(&cwd) {
        return Err(own(format!("working directory: {e}")));
    }
    let program = find_program(
        &ns.with_cwd(&cwd).with_credentials(program_credentials(args)),
        argv0,
        &envp,
    )
    .map_err(|e| {
        eprintln!("ldchain: run: {e}");
        ExitCode::from(exec_failure_status(&e))
    })?;
    let pty = match args.pty {
        true => Some(view.open_pty().map_err(|e| own(format!("--pty: {e}")))?),
        false => None,
    };
    let ready = Ready {
        jail,
        service,
        program,
        cwd,
        pty,
    };
    Ok((ready, envp))
}

/// The program's rights, as this process's user namespace names them: its
/// uid and gid, no supplementary group (run by root: the program gets none;
/// run by another user: the kernel shows none of the caller's in the
/// namespace either).
fn program_credentials(args: &RunArgs) -> Credentials {
    let (uid, gid) = program_ids_of(args);
    Credentials {
        uid,
        gid,
        groups: Vec::new(),
    }
}

/// The request the program's stub will make, for a dynamic program exec'd
/// directly (not through `#!`): what the service can answer ahead of it.
fn first_request(plan: &ExecPlan, program: &[u8], cwd: &[u8], envp: &[Vec<u8>]) -> Option<InterpRequest> {
    let ldso = plan.ldso.as_ref()?;
    if plan.kind != Kind::Dynamic || !plan.scripts.is_empty() || plan.secure {
        return None;
    }
    let var = |name: &[u8]| {
        envp.iter()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix(b"=").map(<[u8]>::to_vec))
    };
    Some(InterpRequest {
        machine: plan.machine,
        interp: ldso.interp.clone(),
        execfn: program.to_vec(),
        cwd: cwd.to_vec(),
        ldso_path: var(b"LDSO_PATH"),
        ld_library_path: var(b"LD_LIBRARY_PATH"),
        secure: false,
    })
}

/// The program's uid and gid as this process's user namespace names them
/// (`--uid`/`--gid` apply here when ldchain is root on the host; otherwise
/// the namespace's id map already made them the program's): who owns a
/// --tmpfs, whose rights plans are made with.
fn program_ids_of(args: &RunArgs) -> (u32, u32) {
    let (uid, gid) = program_ids();
    if ldchain::sandbox::boundary::host_root() {
        (args.uid.unwrap_or(uid), args.gid.unwrap_or(gid))
    } else {
        (uid, gid)
    }
}

/// Start the program in the jail and wait for it.
fn go(args: &RunArgs, mut ready: Ready, envp: &[Vec<u8>]) -> Ending {
    let root = ready.jail.root();
    let argv: Vec<&[u8]> = args.command.iter().map(|a| a.as_bytes()).collect();
    let mut sandbox = match sandbox(args, root, &ready.cwd) {
        Ok(s) => s,
        Err(e) => return own(e).into(),
    };
    let (master, terminal) = match ready.pty {
        Some(Pty { master, terminal }) => {
            sandbox = sandbox.terminal(terminal.as_fd());
            (Some(master), Some(terminal))
        }
        None => (None, None),
    };
    // Held open (here, not in the jail) until ldchain ends.
    let _sync = match args.sync_fd.map(fds::inherited).transpose() {
        Ok(f) => f,
        Err(e) => return own(format!("--sync-fd: {e}")).into(),
    };
    if let Some(fd) = args.block_fd {
        if let Err(e) = block_on(fd) {
            return own(e).into();
        }
    }
    // From here a signal to ldchain is for the jail (passed on once it runs).
    catch_signals();
    let ns = match Namespace::open(root) {
        Ok(ns) => ns.with_cwd(&ready.cwd),
        Err(e) => return own(format!("{}: {e}", root.display())).into(),
    };
    // With the exec service, the program is exec'd as it is: the jail's
    // init is started now and enters the jail while the verdict below is
    // reached (the two overlap on two cores); it starts the program only
    // once the verdict is in, and ends having started nothing if it is an
    // error (dropping the gate).
    let gated = match ready.service.is_some() {
        true => match sandbox.spawn_gated(&ready.program, &argv, envp) {
            Ok(gated) => Some(gated),
            Err(e) => return not_spawned(&e, argv[0]).into(),
        },
        false => None,
    };
    let resolver = Resolver::new(args.common.config(args.strategy.plan_strategy()));
    // The resolver's verdict first, for every strategy: the same errors and
    // statuses (126 for ENOEXEC, where execvp would retry with /bin/sh).
    // With the program's rights, not ldchain's: what the kernel would let
    // the program itself exec.
    let as_program = ns.clone().with_credentials(program_credentials(args));
    let plan = match resolver.plan_exec(&as_program, &ready.program, &argv, envp) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ldchain: run: {e}");
            return ExitCode::from(exec_failure_status(&e)).into();
        }
    };
    if let (Some(service), Some(gated)) = (ready.service.take(), gated) {
        let first = first_request(&plan, &ready.program, &ready.cwd, envp);
        drop(plan);
        let source = Arc::new(NamespaceSource::new(resolver, ns).with_answer_dir(service.answers));
        // The program's own request is answered before it is made: its
        // answer is left standing now, from one search (the program's stub
        // takes it without a round trip). The program is let go at once;
        // its answer is searched for again, watched and cached on a thread
        // of its own while the program starts (the two overlap on two
        // cores), which withdraws the early link unless that answer
        // replaces it; then the exec service's threads start. The socket
        // is listening already: a request made before the service runs
        // waits in its backlog. If the service cannot start, the socket is
        // closed (the jail's nested execs fail at once, ECONNREFUSED, rather
        // than wait) and ldchain reports it at the end.
        let creds = program_credentials(args);
        let ahead = first.as_ref().and_then(|request| source.stand_ahead(request, &creds));
        // The program may start now (its own answer stands): the rest of
        // the service's start overlaps with it.
        let opened = gated.let_go();
        // A start that fails (or panics) closes the socket, and the jail's
        // requests then fail at once: the thread records the failure first,
        // holding a second descriptor of the socket until it has. Without
        // one, the thread is always waited for.
        let held = service.listener.try_clone().ok();
        let always_wait = held.is_none();
        let failed = Arc::new(AtomicBool::new(false));
        let starting = {
            let (source, listener, failed) = (source.clone(), service.listener, failed.clone());
            std::thread::Builder::new().spawn(move || {
                // Dropped in reverse order: `outcome` before `_held`.
                let _held = held;
                let mut outcome = StartOutcome { failed, started: false };
                if let (Some(request), Some(ahead)) = (first, ahead) {
                    source.prime(&request, &creds, ahead);
                }
                let started = ExecService::start(listener, source, Limits::default());
                outcome.started = started.is_ok();
                started
            })
        };
        let jailed = spawned(opened.started(), argv[0]);
        // Closing the answer cache's inotify instance (an SRCU grace
        // period) and removing the throwaway jail are left to a child that
        // does them once ldchain has exited: its caller does not wait.
        let remove = match &mut ready.jail {
            Jail::Throwaway(j) => j.leave().ok(),
            Jail::Given(_) => None,
        };
        if let Err(e) = after_exit(AfterExit {
            keep: source.lasting(),
            remove,
        }) {
            debug!(error = %e, "the answer cache and the jail are released at ldchain's exit");
        }
        let ending = finish(args, jailed, (master, terminal));
        // No thread (its socket closed with it): reported now, at the end.
        let starting = match starting {
            Ok(thread) => thread,
            Err(e) => return own(format!("cannot start the exec service: {e}")).into(),
        };
        // The jail has ended: nothing in it can ask the service any more.
        // A service still starting is not waited for (its thread ends with
        // this process); one whose start failed before is reported, as a
        // request in the jail may have been refused by it.
        if !always_wait && !failed.load(Ordering::SeqCst) && !starting.is_finished() {
            debug!("the program ended before the exec service had started");
            return ending;
        }
        match starting.join() {
            // Not stopped and joined: ldchain ends now, and its threads
            // with it (a stop costs a wake-up and a join per thread).
            Ok(Ok(service)) => std::mem::forget(service),
            Ok(Err(e)) => return own(format!("cannot start the exec service: {e}")).into(),
            Err(_) => return own("the exec service's start panicked").into(),
        }
        ending
    } else {
        let prepared = match plan.prepare(envp) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("ldchain: run: {e}");
                return ExitCode::from(exec_failure_status(&e)).into();
            }
        };
        let jailed = spawned(sandbox.spawn_prepared(prepared), argv[0]);
        if let Jail::Throwaway(j) = &mut ready.jail {
            let remove = j.leave().ok();
            if let Err(e) = after_exit(AfterExit { keep: None, remove }) {
                debug!(error = %e, "the jail is removed at ldchain's exit");
            }
        }
        finish(args, jailed, (master, terminal))
    }
}

/// Records, when dropped, that the exec service did not start (its start
/// failed, or panicked) unless `started` says it did.
struct StartOutcome {
    failed: Arc<AtomicBool>,
    started: bool,
}

impl Drop for StartOutcome {
    fn drop(&mut self) {
        if !self.started {
            self.failed.store(true, Ordering::SeqCst);
        }
    }
}

fn sandbox(args: &RunArgs, root: &Path, cwd: &[u8]) -> Result<Sandbox, String> {
    let mut sandbox = Sandbox::new(root, cwd)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .wait_all(args.wait_all);
    let all = args.unshare_all;
    sandbox = sandbox
        .unshare_net(args.unshare_net || (all && !args.share_net))
        .unshare_ipc(args.unshare_ipc || all);
    if args.unshare_uts || all || args.hostname.is_some() {
        if args.hostname.is_some() && !(args.unshare_uts || all) {
            return Err("--hostname needs --unshare-uts (as in bwrap)".into());
        }
        let name = args.hostname.as_ref().map(|h| h.as_bytes()).unwrap_or_default();
        sandbox = sandbox.hostname(name).map_err(|e| format!("--hostname: {e}"))?;
    }
    for fd in args.seccomp.iter().chain(&args.add_seccomp_fd) {
        let file = fds::inherited(*fd).map_err(|e| format!("--seccomp: {e}"))?;
        let program = fds::read_all(&file, 4096 * 8).map_err(|e| format!("--seccomp {fd}: {e}"))?;
        sandbox = sandbox.seccomp(program).map_err(|e| format!("--seccomp {fd}: {e}"))?;
    }
    sandbox = sandbox.as_pid_1(args.as_pid_1);
    if let Some(dest) = args.setup.proc.last() {
        sandbox = sandbox
            .proc_at(dest.as_os_str().as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let (uid, gid) = program_ids_of(args);
    sandbox = sandbox.ids(uid, gid);
    for &fd in &args.keep_fd {
        sandbox = sandbox.keep_fd(fd).map_err(|e| e.to_string())?;
    }
    Ok(sandbox)
}

/// Place this build's chainloaders at `/chainloader*` in the jail's view
/// (what this strategy's plans exec; only it needs them).
fn chainloaders(view: &mut View) -> Result<(), String> {
    for placed in view.place_chainloaders() {
        match placed {
            Placed::Stub(p) => debug!(path = %p.display(), "chainloader placed in the view"),
            Placed::Kept(p) => debug!(path = %p.display(), "the jail's own chainloader is current"),
            Placed::Skipped(p, why) => return Err(format!("cannot place {} in the jail's view: {why}", p.display())),
            Placed::NoChainloader(_) => {}
        }
    }
    Ok(())
}

/// Place the stubs and bind the exec service's socket in the jail's view.
fn stubs_and_socket(view: &mut View) -> std::io::Result<ServiceDir> {
    for placed in view.place_stubs() {
        match placed {
            Placed::Stub(p) => debug!(path = %p.display(), "interp stub placed"),
            Placed::Kept(p) => debug!(path = %p.display(), "kept what the jail has at a PT_INTERP path"),
            Placed::Skipped(p, why) => debug!(path = %p.display(), %why, "no interp stub"),
            Placed::NoChainloader(p) => debug!(path = %p.display(), "no chainloader for this architecture"),
        }
    }
    view.bind_service()
}

fn spawned(child: std::io::Result<Jailed>, argv0: &[u8]) -> Result<Jailed, ExitCode> {
    child.map_err(|e| not_spawned(&e, argv0))
}

/// Say why the program could not be started; the status to end with.
fn not_spawned(e: &std::io::Error, argv0: &[u8]) -> ExitCode {
    let errno = e.raw_os_error().unwrap_or(0);
    let (status, what) = match errno {
        libc::ENOENT => (EXIT_NOT_FOUND, "not found"),
        libc::EACCES => (EXIT_CANNOT_EXEC, "permission denied"),
        libc::ENOEXEC => (EXIT_CANNOT_EXEC, "exec format error"),
        libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS => {
            return own(format!("cannot enter the jail (namespaces unavailable?): {e}"))
        }
        _ => (EXIT_CANNOT_EXEC, "cannot execute"),
    };
    let name = ldchain::resolver::errno_name(errno);
    eprintln!(
        "ldchain: run: {}: {what} ({name})",
        ldchain::resolver::escape::for_terminal(argv0)
    );
    ExitCode::from(status)
}

/// Wait for the jail and end as its program did: its exit code, or killed
/// by the same signal. Until then SIGINT, SIGTERM, SIGHUP and SIGQUIT are
/// passed on to the jail. Its init ends when the program has (or, with
/// --wait-all, when the jail's last process has); processes left in the
/// jail are killed with it.
fn finish(args: &RunArgs, jailed: Result<Jailed, ExitCode>, pty: (Option<OwnedFd>, Option<OwnedFd>)) -> Ending {
    // The jail has its terminal now: only it may hold it, so that the
    // relay sees the end when the jail's last holder is gone.
    let (master, terminal) = pty;
    drop(terminal);
    let mut jailed = match jailed {
        Ok(j) => j,
        Err(code) => return code.into(),
    };
    forward_signals(jailed.id());
    let relay = match master.map(Relay::start).transpose() {
        Ok(r) => r,
        Err(e) => return own(format!("--pty: {e}")).into(),
    };
    let pid = jailed.id();
    let mut status_fd = None;
    for (fd, keep) in [(args.info_fd, false), (args.json_status_fd, true)] {
        let Some(fd) = fd else { continue };
        match fds::inherited(fd) {
            Ok(f) => {
                let mut f = std::fs::File::from(f);
                let _ = writeln!(f, "{{ \"child-pid\": {pid} }}");
                if keep {
                    status_fd = Some(f);
                }
            }
            Err(e) => eprintln!("ldchain: run: --info-fd/--json-status-fd: {e}"),
        }
    }
    // As bwrap: ldchain ends as soon as the init reports the program's
    // end (its namespaces' teardown is not waited for), unless every
    // process of the jail is to be waited for.
    let waited = match args.wait_all {
        true => jailed.wait(),
        false => jailed.wait_program(),
    };
    if let Some(relay) = relay {
        relay.finish();
    }
    match waited {
        Ok(status) => {
            let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            if let Some(mut f) = status_fd {
                let _ = writeln!(f, "{{ \"exit-code\": {code} }}");
            }
            match (status.code(), status.signal()) {
                (Some(code), _) => ExitCode::from(code as u8).into(),
                (None, Some(sig)) => Ending::Signal(sig),
                _ => own("unknown child status").into(),
            }
        }
        Err(e) => own(format!("wait: {e}")).into(),
    }
}

/// --block-fd: wait until `fd` is readable or closed.
fn block_on(fd: i32) -> Result<(), String> {
    let f = fds::inherited(fd).map_err(|e| format!("--block-fd: {e}"))?;
    let mut poll = [rustix::event::PollFd::new(&f, rustix::event::PollFlags::IN)];
    loop {
        match rustix::event::poll(&mut poll, None) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("--block-fd {fd}: {e}")),
        }
    }
}
