//! `ldchain run`: build the jail's view, then either serve nested execs and
//! exec the program by path inside the jail (`--strategy interp`, the
//! default), or plan the one exec outside and carry it out (`chainloader`,
//! `execveat`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::Arc;

use ldchain::jail::Confinement;
use ldchain::nested::{Placed, View};
use ldchain::resolver::service::{ExecService, Limits, NamespaceSource};
use ldchain::resolver::{find_program, Namespace, Resolver};
use ldchain::throwaway::{enter_private_namespace, ignore_interactive_signals, ThrowawayJail};
use tracing::{debug, info};

use super::{exec_failure_status, RunArgs, RunStrategy, EXIT_CANNOT_EXEC, EXIT_LDCHAIN, EXIT_NOT_FOUND};

fn own(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ldchain: run: {msg}");
    ExitCode::from(EXIT_LDCHAIN)
}

/// The jail: the one given (chainloaders installed on demand), or a
/// throwaway one private to this process.
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

fn jail(args: &RunArgs, private_view: bool) -> Result<Jail, ExitCode> {
    match &args.root {
        Some(dir) => {
            match ldchain::embed::install_all(dir) {
                Ok(done) => done.iter().for_each(|d| info!("{d}")),
                Err(e) => return Err(own(e)),
            }
            if private_view {
                enter_private_namespace().map_err(|e| own(format!("cannot make a private view of the jail: {e}")))?;
            }
            Ok(Jail::Given(dir.clone()))
        }
        None => match ThrowawayJail::create() {
            Ok(j) => {
                info!(root = %j.root().display(), "throwaway jail");
                Ok(Jail::Throwaway(j))
            }
            Err(e) => Err(own(format!("cannot build the throwaway jail: {e}"))),
        },
    }
}

pub fn main(args: RunArgs) -> ExitCode {
    let envp = match args.common.envp() {
        Ok(e) => e,
        Err(msg) => return own(msg),
    };
    let interp = matches!(args.strategy, RunStrategy::Interp);
    let jail = match jail(&args, interp) {
        Ok(j) => j,
        Err(code) => return code,
    };
    let root = jail.root();
    let ns = match Namespace::open(root) {
        Ok(ns) => ns,
        Err(e) => return own(format!("{}: {e}", root.display())),
    };
    let argv: Vec<&[u8]> = args.command.iter().map(|a| a.as_bytes()).collect();
    let program = match find_program(&ns, argv[0], &envp) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ldchain: run: {e}");
            return ExitCode::from(exec_failure_status(&e));
        }
    };
    let confinement = match Confinement::new(root) {
        Ok(c) => c,
        Err(e) => return own(format!("{}: {e}", root.display())),
    };
    let resolver = Resolver::new(args.common.config(args.strategy.plan_strategy()));
    // The resolver's verdict first, for every strategy: the same errors and
    // statuses (126 for ENOEXEC, where execvp would retry with /bin/sh).
    let plan = match resolver.plan_exec(&ns, &program, &argv, &envp) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ldchain: run: {e}");
            return ExitCode::from(exec_failure_status(&e));
        }
    };
    if interp {
        drop(plan);
        let mut view = View::new(root, matches!(jail, Jail::Throwaway(_)));
        let _service = match serve(&mut view, resolver, ns) {
            Ok(s) => s,
            Err(e) => return own(format!("cannot start the exec service: {e}")),
        };
        // Orphans of the jail come to us: the service lives until they are gone.
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            return own(format!("cannot become the jail's subreaper: {e}"));
        }
        let mut cmd = by_path(&program, &argv, &envp);
        confinement.apply(&mut cmd);
        finish(spawn(cmd, &confinement, argv[0]), true)
    } else {
        let prepared = match plan.prepare(&envp) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("ldchain: run: {e}");
                return ExitCode::from(exec_failure_status(&e));
            }
        };
        // pre_exec hooks run in the order they were added: the jail first
        // (Confinement), then the exec inside it.
        let mut cmd = Command::new("/");
        confinement.apply(&mut cmd);
        // SAFETY: Prepared::exec only makes system calls (async-signal-safe).
        unsafe {
            cmd.pre_exec(move || Err(prepared.exec()));
        }
        finish(spawn(cmd, &confinement, argv[0]), false)
    }
}

/// Place the stubs and start the exec service on the jail's view.
fn serve(view: &mut View, resolver: Resolver, ns: Namespace) -> std::io::Result<ExecService> {
    for placed in view.place_stubs() {
        match placed {
            Placed::Stub(p) => debug!(path = %p.display(), "interp stub placed"),
            Placed::Kept(p) => debug!(path = %p.display(), "kept what the jail has at a PT_INTERP path"),
            Placed::Skipped(p, why) => debug!(path = %p.display(), %why, "no interp stub"),
            Placed::NoChainloader(p) => debug!(path = %p.display(), "no chainloader for this architecture"),
        }
    }
    let listener = view.bind_service()?;
    let source = NamespaceSource::new(resolver, ns);
    ExecService::start(listener, Arc::new(source), Limits::default())
}

/// The program exec'd by its path inside the jail, with its own argv[0] and
/// exactly `envp`.
fn by_path(program: &[u8], argv: &[&[u8]], envp: &[Vec<u8>]) -> Command {
    let mut cmd = Command::new(OsStr::from_bytes(program));
    cmd.arg0(OsStr::from_bytes(argv[0]));
    cmd.args(argv[1..].iter().map(|a| OsStr::from_bytes(a)));
    cmd.env_clear();
    for e in envp {
        let eq = e.iter().position(|&c| c == b'=').unwrap_or(e.len());
        let value = e.get(eq + 1..).unwrap_or_default();
        cmd.env(OsStr::from_bytes(&e[..eq]), OsStr::from_bytes(value));
    }
    cmd
}

/// Start `cmd`, whose hooks already enter the jail.
fn spawn(mut cmd: Command, confinement: &Confinement<'static>, argv0: &[u8]) -> Result<Child, ExitCode> {
    cmd.spawn().map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(0);
        if matches!(errno, libc::EPERM | libc::EINVAL) && confinement.needs_userns() {
            return own(format!("cannot enter the jail (user namespaces unavailable?): {e}"));
        }
        let (status, what) = match errno {
            libc::ENOENT => (EXIT_NOT_FOUND, "not found"),
            libc::EACCES => (EXIT_CANNOT_EXEC, "permission denied"),
            libc::ENOEXEC => (EXIT_CANNOT_EXEC, "exec format error"),
            _ => (EXIT_CANNOT_EXEC, "cannot execute"),
        };
        let name = ldchain::resolver::errno_name(errno);
        eprintln!(
            "ldchain: run: {}: {what} ({name})",
            ldchain::resolver::escape::for_terminal(argv0)
        );
        ExitCode::from(status)
    })
}

/// Wait for the program and pass its status on. With `reap_all`, ldchain is
/// the jail's subreaper and waits for every process the program left behind
/// (they may still exec through the service) before returning.
fn finish(child: Result<Child, ExitCode>, reap_all: bool) -> ExitCode {
    let mut child = match child {
        Ok(c) => c,
        Err(code) => return code,
    };
    ignore_interactive_signals();
    let status = child.wait();
    if reap_all {
        reap_orphans();
    }
    match status {
        Ok(status) => exit_code(status),
        Err(e) => own(format!("wait: {e}")),
    }
}

fn exit_code(status: ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => ExitCode::from(128 + sig as u8),
        _ => own("unknown child status"),
    }
}

/// Wait for every remaining child (orphans of the jail are reparented to
/// us, the subreaper) until there are none.
fn reap_orphans() {
    while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::empty()) {}
}
