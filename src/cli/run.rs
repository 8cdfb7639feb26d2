//! `ldchain run`: plan, confine, exec, and pass the status through.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitCode};

use ldchain::jail::Confinement;
use ldchain::resolver::{find_program, Namespace, Resolver};
use ldchain::throwaway::{ignore_interactive_signals, ThrowawayJail};
use tracing::info;

use super::{exec_failure_status, RunArgs, EXIT_CANNOT_EXEC, EXIT_LDCHAIN, EXIT_NOT_FOUND};

fn own(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("ldchain: run: {msg}");
    ExitCode::from(EXIT_LDCHAIN)
}

pub fn main(args: RunArgs) -> ExitCode {
    let envp = match args.common.envp() {
        Ok(e) => e,
        Err(msg) => return own(msg),
    };
    // The jail: the one given (with /chainloader installed on demand), or a
    // throwaway one private to this process.
    let throwaway;
    let root: &Path = match &args.root {
        Some(dir) => {
            match ldchain::embed::install_all(dir) {
                Ok(done) => done.iter().for_each(|d| info!("{d}")),
                Err(e) => return own(e),
            }
            dir
        }
        None => {
            throwaway = match ThrowawayJail::create() {
                Ok(j) => j,
                Err(e) => return own(format!("cannot build the throwaway jail: {e}")),
            };
            info!(root = %throwaway.root().display(), "throwaway jail");
            throwaway.root()
        }
    };
    let ns = match Namespace::open(root) {
        Ok(ns) => ns,
        Err(e) => return own(format!("{}: {e}", root.display())),
    };
    let resolver = Resolver::new(args.common.config());
    let argv: Vec<&[u8]> = args.command.iter().map(|a| a.as_bytes()).collect();
    let plan = match find_program(&ns, argv[0], &envp).and_then(|p| resolver.plan_exec(&ns, p, &argv, &envp)) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("ldchain: run: {e}");
            return ExitCode::from(exec_failure_status(&e));
        }
    };
    let prepared = match plan.prepare(&envp) {
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
    let mut cmd = Command::new("/");
    confinement.apply(&mut cmd);
    // SAFETY: Prepared::exec only makes system calls (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || Err(prepared.exec()));
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let (status, what) = match e.raw_os_error() {
                Some(libc::ENOENT) => (EXIT_NOT_FOUND, "not found"),
                Some(libc::EPERM) | Some(libc::EINVAL) if confinement.needs_userns() => {
                    return own(format!("cannot enter the jail (user namespaces unavailable?): {e}"))
                }
                _ => (EXIT_CANNOT_EXEC, "cannot execute"),
            };
            eprintln!("ldchain: run: {}: {what}: {e}", String::from_utf8_lossy(argv[0]));
            return ExitCode::from(status);
        }
    };
    ignore_interactive_signals();
    match child.wait() {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExitCode::from(code as u8),
            (None, Some(sig)) => ExitCode::from(128 + sig as u8),
            _ => own("unknown child status"),
        },
        Err(e) => own(format!("wait: {e}")),
    }
}
