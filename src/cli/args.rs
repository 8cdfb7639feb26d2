//! The command line: subcommands and their options (clap).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use ldchain::resolver::{Config, Strategy};

use super::setup;

pub(super) const EXAMPLES: &str = "\
Examples:
  ldchain run -- /bin/echo hello              run a host program in a throwaway jail without /lib64
  ldchain run -- /bin/sh -c 'ls / | head -3'  programs in the jail start other programs
  ldchain run --root /srv/jail -- /bin/sh -c 'echo hi'
                                              run inside an existing jail (never written)
  ldchain run --ldso /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 -- /bin/true
                                              always use this host ld.so (Plash's fixed-ld.so mode)
  ldchain resolve --json -- /bin/ls           show the exec plan for /bin/ls on /, as JSON
  ldchain install /srv/jail                   write /srv/jail/chainloader (idempotent)
  ldchain install --check /srv/jail           are its chainloaders this build's? (exit 1 if not)
  ldchain serve --root /srv/jail /tmp/ldchain-sock &
                                              serve nested execs to a jail that bwrap, podman, ... build

Exit status: the program's own (killed by signal N: ldchain dies by signal N too); 125 if
ldchain itself failed; 126 if the program cannot be executed; 127 if it was not found.
Diagnostics: -v (info), -vv (debug), -vvv (trace), or RUST_LOG (e.g. RUST_LOG=ldchain=debug).";

pub(super) const SERVE_EXAMPLE: &str = "\
Example (a jail J whose ld.so files are only under /opt):
  ldchain install J
  ldchain serve --root J --ldso-path /opt/glibc:/opt/musl /tmp/ldchain-sock &
  until [ -S /tmp/ldchain-sock/exec.sock ]; do sleep 0.1; done
  bwrap --bind J / --ro-bind /tmp/ldchain-sock /run/ldchain \\
        --ro-bind J/chainloader /lib64/ld-linux-x86-64.so.2 --proc /proc --dev /dev -- /bin/sh
  kill %1                                     removes the socket and the answers";

#[derive(Parser)]
#[command(
    name = "ldchain",
    version,
    about = "Run dynamically linked programs in a chroot jail that holds no dynamic linker",
    after_help = EXAMPLES
)]
pub(super) struct Cli {
    /// More diagnostics on stderr (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(super) verbose: u8,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Write the embedded chainloaders into JAIL_DIR, mode 0755.
    ///
    /// The host's own is `chainloader`; those for the other architectures are
    /// `chainloader-i386`, `chainloader-aarch64` (or `chainloader-x86_64`).
    /// Atomic (a temporary file is renamed into place), idempotent (an
    /// identical file is left alone), durable (fsync), and it refuses to
    /// follow a symbolic link planted at the target.
    ///
    /// With --check, write nothing: compare JAIL_DIR's chainloaders, and any
    /// chainloader at the conventional PT_INTERP paths (interp stubs), with
    /// this build's, one line per path (current, outdated, missing, absent,
    /// foreign). Symbolic links are reported, never followed; paths resolve
    /// inside the jail. Exit status 0 if nothing needs refreshing, 1 if
    /// something does, 2 on error.
    #[command(
        after_help = "Examples:\n  ldchain install /srv/jail\n  ldchain install --check /srv/jail || ldchain install /srv/jail"
    )]
    Install {
        /// Only report whether the jail's chainloaders are this build's.
        #[arg(long)]
        check: bool,
        /// Also place the chainloader at every conventional PT_INTERP path
        /// the jail does not fill with its own ld.so (resolved inside the
        /// jail; missing directories created): nested exec for a jail another
        /// tool builds, served by `ldchain serve`.
        #[arg(long, conflicts_with = "check")]
        stubs: bool,
        /// The jail's root directory.
        jail_dir: PathBuf,
    },
    /// Show what an exec of PROGRAM inside a namespace would do, without running anything.
    ///
    /// Prints the kind of program (dynamic, static, #! chain), the ld.so chosen and
    /// the rule that found it, every candidate skipped and why, and the final program
    /// path and argv (descriptor placeholders shown as <fd:...>).
    #[command(
        after_help = "Examples:\n  ldchain resolve -- /bin/echo hi\n  ldchain resolve --root /srv/jail --env LD_LIBRARY_PATH=/opt/lib --json -- /bin/app"
    )]
    Resolve(ResolveArgs),
    /// Run PROGRAM in a jail through the resolver and the chainloader.
    ///
    /// The jail is entered with pivot_root in new mount and PID namespaces (its
    /// own /proc), in a new session, without any capability or way to gain one
    /// (no_new_privs; uid 65534 when ldchain is root), with only descriptors 0-2
    /// (and --keep-fd). Without --root, a throwaway jail is built and torn down: a
    /// tmpfs root holding /chainloader, read-only binds of /usr and /etc, the
    /// host's top-level symlinks, a minimal /dev, /proc and /tmp, and no /lib64;
    /// a PROGRAM given as a path outside /usr gets its own directory bound
    /// read-only at the same path.
    #[command(
        after_help = "Examples:\n  ldchain run -- /bin/echo hello\n  cd ~/proj && ldchain run -- ./a.out\n  ldchain run --ro-bind ~/data /data --bind ~/out /out --chdir /data -- /bin/sh\n  ldchain run --root /srv/jail --strategy execveat -- /bin/true"
    )]
    Run(Box<RunArgs>),
    /// Serve nested execs to a jail that another tool builds (bwrap, podman, systemd-nspawn).
    ///
    /// The exec service of `run --strategy interp`, on its own: it serves the
    /// namespace at DIR (default /) through SOCKET_DIR/exec.sock and leaves
    /// standing answers in SOCKET_DIR/ld/. The jail binds SOCKET_DIR
    /// read-only at /run/ldchain, and the chainloader (`ldchain install`) at
    /// its PT_INTERP paths. SOCKET_DIR is created (mode 0755) if missing; it is
    /// refused if it is a symbolic link, not a directory, not the caller's,
    /// writable by group or others, holds anything an earlier serve did not
    /// leave there, or is being served already. The socket is mode 0666.
    /// Prints "ldchain: serve: ready" on stderr once the socket is in place;
    /// runs until SIGTERM or SIGINT, then removes the socket and the answers
    /// (and SOCKET_DIR, if it made it) and exits 0. Exit status 125 if it
    /// cannot serve.
    #[command(
        after_help = SERVE_EXAMPLE
    )]
    Serve(ServeArgs),
}

/// Options shared by `resolve` and `run`.
#[derive(Args, Clone)]
pub(super) struct Common {
    /// Use this dynamic linker from the host (opened outside the jail) instead of searching.
    #[arg(long, value_name = "FILE")]
    pub(super) ldso: Option<PathBuf>,
    /// The sandbox's default LDSO_PATH: ':'-separated directories inside the jail.
    #[arg(long, value_name = "DIRS")]
    pub(super) ldso_path: Option<OsString>,
    /// Set NAME=VALUE in the program's environment (repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub(super) env: Vec<OsString>,
    /// Start from an empty environment instead of ldchain's own.
    #[arg(long, short = 'i', visible_alias = "clearenv")]
    pub(super) ignore_environment: bool,
    /// Set VAR to VALUE in the program's environment (repeatable; after --env).
    #[arg(long, num_args = 2, value_names = ["VAR", "VALUE"], action = ArgAction::Append)]
    pub(super) setenv: Vec<OsString>,
    /// Remove VAR from the program's environment (repeatable; last).
    #[arg(long, value_name = "VAR")]
    pub(super) unsetenv: Vec<OsString>,
    /// Secure mode: ignore LDSO_PATH and LD_LIBRARY_PATH from the environment.
    #[arg(long)]
    pub(super) secure: bool,
}

/// How `resolve` plans the exec.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum StrategyArg {
    /// execve("/chainloader", [.., FD, ..]).
    Chainloader,
    /// execveat() of the ld.so descriptor.
    Execveat,
}

impl StrategyArg {
    pub(super) fn strategy(self) -> Strategy {
        match self {
            StrategyArg::Chainloader => Strategy::Chainloader,
            StrategyArg::Execveat => Strategy::Execveat,
        }
    }
}

/// How `run` starts programs.
#[derive(Clone, Copy, ValueEnum)]
pub(super) enum RunStrategy {
    /// The chainloader at the jail's PT_INTERP paths asks the exec service
    /// for each program's ld.so: every program in the jail can start others.
    Interp,
    /// Plan the one exec outside and run /chainloader FD ld.so PROGRAM:
    /// nothing at any PT_INTERP path, but programs cannot start dynamic ones.
    Chainloader,
    /// As chainloader, with execveat() of the ld.so descriptor instead.
    Execveat,
}

impl RunStrategy {
    /// The plan strategy for the first exec (interp mode plans none).
    pub(super) fn plan_strategy(self) -> Strategy {
        match self {
            RunStrategy::Execveat => Strategy::Execveat,
            RunStrategy::Interp | RunStrategy::Chainloader => Strategy::Chainloader,
        }
    }
}

#[derive(Args)]
pub(super) struct ResolveArgs {
    /// The namespace's root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub(super) root: PathBuf,
    /// The current directory inside the namespace.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub(super) cwd: OsString,
    /// Print one JSON object.
    #[arg(long)]
    pub(super) json: bool,
    /// How to exec: through /chainloader, or execveat() of the ld.so descriptor.
    #[arg(long, value_enum, default_value_t = StrategyArg::Chainloader)]
    pub(super) strategy: StrategyArg,
    #[command(flatten)]
    pub(super) common: Common,
    /// The program (a bare name is looked up in PATH inside the namespace) and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM [ARGS...]")]
    pub(super) command: Vec<OsString>,
}

#[derive(Args)]
pub(super) struct RunArgs {
    /// Use DIR as the jail (and namespace) instead of a throwaway one.
    #[arg(long, value_name = "DIR")]
    pub(super) root: Option<PathBuf>,
    /// How to start programs: interp (every program in the jail can start
    /// others, through the exec service), or one planned exec.
    #[arg(long, value_enum, default_value_t = RunStrategy::Interp)]
    pub(super) strategy: RunStrategy,
    #[command(flatten)]
    pub(super) setup: setup::SetupArgs,
    /// The program's working directory inside the jail (default: /, or the
    /// caller's own when it lies in the program's bound directory).
    #[arg(long, value_name = "DIR")]
    pub(super) chdir: Option<OsString>,
    /// Pass descriptor N on to the program (repeatable); every other one but
    /// 0, 1 and 2 is closed.
    #[arg(long = "keep-fd", value_name = "N")]
    pub(super) keep_fd: Vec<i32>,
    /// Give the jail its own, empty network namespace (no network at all;
    /// the loopback device is up).
    #[arg(long)]
    pub(super) unshare_net: bool,
    /// Give the jail its own IPC namespace (System V IPC, POSIX queues).
    #[arg(long)]
    pub(super) unshare_ipc: bool,
    /// Give the jail its own UTS namespace (host name).
    #[arg(long)]
    pub(super) unshare_uts: bool,
    /// Every namespace above (ldchain always has its own mount, PID and, when
    /// not root, user namespace); --share-net keeps the network.
    #[arg(long)]
    pub(super) unshare_all: bool,
    /// With --unshare-all, keep the host's network.
    #[arg(long, requires = "unshare_all")]
    pub(super) share_net: bool,
    /// The jail's host name (requires --unshare-uts or --unshare-all).
    #[arg(long, value_name = "NAME")]
    pub(super) hostname: Option<OsString>,
    /// Load this seccomp filter (a compiled BPF program, as seccomp(2)
    /// takes it) from descriptor FD, just before exec.
    #[arg(long, value_name = "FD")]
    pub(super) seccomp: Option<i32>,
    /// As --seccomp, repeatable: filters stack in order.
    #[arg(long, value_name = "FD")]
    pub(super) add_seccomp_fd: Vec<i32>,
    /// Give the jail a pseudo-terminal of its own (from its /dev/pts) as its
    /// controlling terminal, relayed to ldchain's: job control works inside,
    /// and the caller's terminal stays out of its reach.
    #[arg(long)]
    pub(super) pty: bool,
    /// No init: the program is PID 1 of the jail.
    #[arg(long)]
    pub(super) as_pid_1: bool,
    /// Write {"child-pid": N} to descriptor FD once the jail runs.
    #[arg(long, value_name = "FD")]
    pub(super) info_fd: Option<i32>,
    /// Write {"child-pid": N} to FD once the jail runs, then
    /// {"exit-code": N} when its program has ended.
    #[arg(long, value_name = "FD")]
    pub(super) json_status_fd: Option<i32>,
    /// Wait until descriptor FD has something to read (or is closed) before
    /// starting the program.
    #[arg(long, value_name = "FD")]
    pub(super) block_fd: Option<i32>,
    /// Keep descriptor FD open (in ldchain, not the program) while the jail
    /// runs.
    #[arg(long, value_name = "FD")]
    pub(super) sync_fd: Option<i32>,
    /// Accepted for bwrap compatibility; always so here (PID and mount
    /// namespaces, a user namespace when not root).
    #[arg(long, hide = true)]
    pub(super) unshare_pid: bool,
    /// Accepted for bwrap compatibility; always so here.
    #[arg(long, hide = true)]
    pub(super) unshare_user: bool,
    /// Accepted for bwrap compatibility; always so here.
    #[arg(long, hide = true)]
    pub(super) unshare_user_try: bool,
    /// Accepted for bwrap compatibility; always so here (the program starts
    /// a new session).
    #[arg(long, hide = true)]
    pub(super) new_session: bool,
    /// Accepted for bwrap compatibility; always so here (the jail dies with
    /// ldchain).
    #[arg(long, hide = true)]
    pub(super) die_with_parent: bool,
    /// Keep the jail until its last process has exited, not just the
    /// program (whose status is still the one reported). By default the
    /// jail ends with its program, as in bwrap: what is left is killed.
    #[arg(long)]
    pub(super) wait_all: bool,
    /// The program's uid. Run by root: a host uid (default 65534, nobody;
    /// never 0 unless asked). Run by another user: the uid the program and
    /// its files show inside (default: the caller's own), still the caller
    /// outside.
    #[arg(long, value_name = "UID")]
    pub(super) uid: Option<u32>,
    /// The program's gid, as --uid (default 65534 for root, else the
    /// caller's own). No supplementary group is kept.
    #[arg(long, value_name = "GID")]
    pub(super) gid: Option<u32>,
    #[command(flatten)]
    pub(super) common: Common,
    /// The program (a bare name is looked up in PATH inside the jail) and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM [ARGS...]")]
    pub(super) command: Vec<OsString>,
}

#[derive(Args)]
#[command(
    mut_arg("env", |a| a.hide(true)),
    mut_arg("ignore_environment", |a| a.hide(true)),
    mut_arg("setenv", |a| a.hide(true)),
    mut_arg("unsetenv", |a| a.hide(true))
)]
pub(super) struct ServeArgs {
    /// The namespace to serve: the directory the jail's programs see as /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub(super) root: PathBuf,
    #[command(flatten)]
    pub(super) common: Common,
    /// Where the socket (exec.sock) and the standing answers (ld/) are made:
    /// the directory the jail binds read-only at /run/ldchain.
    #[arg(value_name = "SOCKET_DIR")]
    pub(super) socket_dir: PathBuf,
}

impl Common {
    pub(super) fn config(&self, strategy: Strategy) -> Config {
        Config {
            default_ldso_path: self.ldso_path.as_ref().map(|p| p.as_bytes().to_vec()),
            host_ldso: self.ldso.as_ref().map(|p| p.as_os_str().as_bytes().to_vec()),
            secure: self.secure,
            strategy,
            ..Config::default()
        }
    }

    /// The new program's environment: ldchain's own (unless -i), with each
    /// --env NAME=VALUE replacing or adding its NAME.
    pub(super) fn envp(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut env: Vec<Vec<u8>> = if self.ignore_environment {
            Vec::new()
        } else {
            std::env::vars_os().map(|(k, v)| pair(k, v)).collect()
        };
        for e in &self.env {
            let e = e.as_bytes();
            let Some(eq) = e.iter().position(|&c| c == b'=').filter(|&n| n > 0) else {
                return Err(format!("--env {}: expected NAME=VALUE", String::from_utf8_lossy(e)));
            };
            let name = &e[..=eq];
            env.retain(|x| !x.starts_with(name));
            env.push(e.to_vec());
        }
        for pair in self.setenv.chunks(2) {
            let mut e = pair[0].as_bytes().to_vec();
            if e.is_empty() || e.contains(&b'=') {
                return Err(format!("--setenv {}: not a variable name", pair[0].to_string_lossy()));
            }
            e.push(b'=');
            env.retain(|x| !x.starts_with(&e));
            e.extend_from_slice(pair[1].as_bytes());
            env.push(e);
        }
        for name in &self.unsetenv {
            let mut n = name.as_bytes().to_vec();
            n.push(b'=');
            env.retain(|x| !x.starts_with(&n));
        }
        Ok(env)
    }
}

pub(super) fn pair(k: OsString, v: OsString) -> Vec<u8> {
    let mut e = k.into_vec();
    e.push(b'=');
    e.extend(v.into_vec());
    e
}
