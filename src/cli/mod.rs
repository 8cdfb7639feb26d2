//! Command-line parsing and dispatch.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use ldchain::resolver::{Config, ExecError, Strategy};

mod binds;
mod resolve;
mod run;
mod serve;
mod setup;

/// Exit status for ldchain's own failures (as coreutils `chroot` and `env`).
pub const EXIT_LDCHAIN: u8 = 125;
/// Exit status when the program was found but cannot be executed.
pub const EXIT_CANNOT_EXEC: u8 = 126;
/// Exit status when the program (or its interpreter) was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

const EXAMPLES: &str = "\
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

const SERVE_EXAMPLE: &str = "\
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
struct Cli {
    /// More diagnostics on stderr (repeat for more); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
struct Common {
    /// Use this dynamic linker from the host (opened outside the jail) instead of searching.
    #[arg(long, value_name = "FILE")]
    ldso: Option<PathBuf>,
    /// The sandbox's default LDSO_PATH: ':'-separated directories inside the jail.
    #[arg(long, value_name = "DIRS")]
    ldso_path: Option<OsString>,
    /// Set NAME=VALUE in the program's environment (repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    env: Vec<OsString>,
    /// Start from an empty environment instead of ldchain's own.
    #[arg(long, short = 'i', visible_alias = "clearenv")]
    ignore_environment: bool,
    /// Set VAR to VALUE in the program's environment (repeatable; after --env).
    #[arg(long, num_args = 2, value_names = ["VAR", "VALUE"], action = ArgAction::Append)]
    setenv: Vec<OsString>,
    /// Remove VAR from the program's environment (repeatable; last).
    #[arg(long, value_name = "VAR")]
    unsetenv: Vec<OsString>,
    /// Secure mode: ignore LDSO_PATH and LD_LIBRARY_PATH from the environment.
    #[arg(long)]
    secure: bool,
}

/// How `resolve` plans the exec.
#[derive(Clone, Copy, ValueEnum)]
enum StrategyArg {
    /// execve("/chainloader", [.., FD, ..]).
    Chainloader,
    /// execveat() of the ld.so descriptor.
    Execveat,
}

impl StrategyArg {
    fn strategy(self) -> Strategy {
        match self {
            StrategyArg::Chainloader => Strategy::Chainloader,
            StrategyArg::Execveat => Strategy::Execveat,
        }
    }
}

/// How `run` starts programs.
#[derive(Clone, Copy, ValueEnum)]
enum RunStrategy {
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
    fn plan_strategy(self) -> Strategy {
        match self {
            RunStrategy::Execveat => Strategy::Execveat,
            RunStrategy::Interp | RunStrategy::Chainloader => Strategy::Chainloader,
        }
    }
}

#[derive(Args)]
struct ResolveArgs {
    /// The namespace's root directory.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// The current directory inside the namespace.
    #[arg(long, value_name = "DIR", default_value = "/")]
    cwd: OsString,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// How to exec: through /chainloader, or execveat() of the ld.so descriptor.
    #[arg(long, value_enum, default_value_t = StrategyArg::Chainloader)]
    strategy: StrategyArg,
    #[command(flatten)]
    common: Common,
    /// The program (a bare name is looked up in PATH inside the namespace) and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM [ARGS...]")]
    command: Vec<OsString>,
}

#[derive(Args)]
struct RunArgs {
    /// Use DIR as the jail (and namespace) instead of a throwaway one.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// How to start programs: interp (every program in the jail can start
    /// others, through the exec service), or one planned exec.
    #[arg(long, value_enum, default_value_t = RunStrategy::Interp)]
    strategy: RunStrategy,
    #[command(flatten)]
    setup: setup::SetupArgs,
    /// The program's working directory inside the jail (default: /, or the
    /// caller's own when it lies in the program's bound directory).
    #[arg(long, value_name = "DIR")]
    chdir: Option<OsString>,
    /// Pass descriptor N on to the program (repeatable); every other one but
    /// 0, 1 and 2 is closed.
    #[arg(long = "keep-fd", value_name = "N")]
    keep_fd: Vec<i32>,
    /// Give the jail its own, empty network namespace (no network at all;
    /// the loopback device is up).
    #[arg(long)]
    unshare_net: bool,
    /// Give the jail its own IPC namespace (System V IPC, POSIX queues).
    #[arg(long)]
    unshare_ipc: bool,
    /// Give the jail its own UTS namespace (host name).
    #[arg(long)]
    unshare_uts: bool,
    /// Every namespace above (ldchain always has its own mount, PID and, when
    /// not root, user namespace); --share-net keeps the network.
    #[arg(long)]
    unshare_all: bool,
    /// With --unshare-all, keep the host's network.
    #[arg(long, requires = "unshare_all")]
    share_net: bool,
    /// The jail's host name (requires --unshare-uts or --unshare-all).
    #[arg(long, value_name = "NAME")]
    hostname: Option<OsString>,
    /// Load this seccomp filter (a compiled BPF program, as seccomp(2)
    /// takes it) from descriptor FD, just before exec.
    #[arg(long, value_name = "FD")]
    seccomp: Option<i32>,
    /// As --seccomp, repeatable: filters stack in order.
    #[arg(long, value_name = "FD")]
    add_seccomp_fd: Vec<i32>,
    /// Give the jail a pseudo-terminal of its own (from its /dev/pts) as its
    /// controlling terminal, relayed to ldchain's: job control works inside,
    /// and the caller's terminal stays out of its reach.
    #[arg(long)]
    pty: bool,
    /// No init: the program is PID 1 of the jail.
    #[arg(long)]
    as_pid_1: bool,
    /// Write {"child-pid": N} to descriptor FD once the jail runs.
    #[arg(long, value_name = "FD")]
    info_fd: Option<i32>,
    /// Write {"child-pid": N} to FD once the jail runs, then
    /// {"exit-code": N} when its program has ended.
    #[arg(long, value_name = "FD")]
    json_status_fd: Option<i32>,
    /// Wait until descriptor FD has something to read (or is closed) before
    /// starting the program.
    #[arg(long, value_name = "FD")]
    block_fd: Option<i32>,
    /// Keep descriptor FD open (in ldchain, not the program) while the jail
    /// runs.
    #[arg(long, value_name = "FD")]
    sync_fd: Option<i32>,
    /// Accepted for bwrap compatibility; always so here (PID and mount
    /// namespaces, a user namespace when not root).
    #[arg(long, hide = true)]
    unshare_pid: bool,
    /// Accepted for bwrap compatibility; always so here.
    #[arg(long, hide = true)]
    unshare_user: bool,
    /// Accepted for bwrap compatibility; always so here.
    #[arg(long, hide = true)]
    unshare_user_try: bool,
    /// Accepted for bwrap compatibility; always so here (the program starts
    /// a new session).
    #[arg(long, hide = true)]
    new_session: bool,
    /// Accepted for bwrap compatibility; always so here (the jail dies with
    /// ldchain).
    #[arg(long, hide = true)]
    die_with_parent: bool,
    /// Keep the jail until its last process has exited, not just the
    /// program (whose status is still the one reported). By default the
    /// jail ends with its program, as in bwrap: what is left is killed.
    #[arg(long)]
    wait_all: bool,
    /// The program's uid. Run by root: a host uid (default 65534, nobody;
    /// never 0 unless asked). Run by another user: the uid the program and
    /// its files show inside (default: the caller's own), still the caller
    /// outside.
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,
    /// The program's gid, as --uid (default 65534 for root, else the
    /// caller's own). No supplementary group is kept.
    #[arg(long, value_name = "GID")]
    gid: Option<u32>,
    #[command(flatten)]
    common: Common,
    /// The program (a bare name is looked up in PATH inside the jail) and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "PROGRAM [ARGS...]")]
    command: Vec<OsString>,
}

#[derive(Args)]
#[command(
    mut_arg("env", |a| a.hide(true)),
    mut_arg("ignore_environment", |a| a.hide(true)),
    mut_arg("setenv", |a| a.hide(true)),
    mut_arg("unsetenv", |a| a.hide(true))
)]
struct ServeArgs {
    /// The namespace to serve: the directory the jail's programs see as /.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Where the socket (exec.sock) and the standing answers (ld/) are made:
    /// the directory the jail binds read-only at /run/ldchain.
    #[arg(value_name = "SOCKET_DIR")]
    socket_dir: PathBuf,
}

impl Common {
    fn config(&self, strategy: Strategy) -> Config {
        Config {
            default_ldso_path: self.ldso_path.as_ref().map(|p| p.as_bytes().to_vec()),
            host_ldso: self.ldso.clone(),
            secure: self.secure,
            strategy,
            ..Config::default()
        }
    }

    /// The new program's environment: ldchain's own (unless -i), with each
    /// --env NAME=VALUE replacing or adding its NAME.
    fn envp(&self) -> Result<Vec<Vec<u8>>, String> {
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

fn pair(k: OsString, v: OsString) -> Vec<u8> {
    let mut e = k.into_vec();
    e.push(b'=');
    e.extend(v.into_vec());
    e
}

/// The exit status for an exec that could not happen: 127 for ENOENT (not
/// found), 126 for any other errno (found but cannot be executed), as a
/// shell reports them.
pub fn exec_failure_status(e: &ExecError) -> u8 {
    match e.errno() {
        libc::ENOENT => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_EXEC,
    }
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::new(v),
        _ => EnvFilter::new(match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }),
    };
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// bwrap's `--args FD`: NUL-separated arguments read from descriptor FD
/// stand where `--args FD` stood (before any `--`; at most 1 MiB).
fn expand_args_fd(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.into_iter();
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a);
            out.extend(it);
            break;
        }
        if a != "--args" {
            out.push(a);
            continue;
        }
        let n = it.next().ok_or("a descriptor number must follow")?;
        let n: i32 = n
            .to_str()
            .and_then(|s| s.parse().ok())
            .ok_or("not a descriptor number")?;
        let fd = ldchain::sandbox::fds::inherited(n).map_err(|e| e.to_string())?;
        let bytes = ldchain::sandbox::fds::read_all(&fd, 1 << 20).map_err(|e| e.to_string())?;
        let body = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
        if !body.is_empty() {
            out.extend(body.split(|&c| c == 0).map(|a| OsString::from_vec(a.to_vec())));
        }
    }
    Ok(out)
}

/// `install --check`: one line per path, then 0 (up to date), 1 (refresh
/// needed) or 2 (error), as `cmp` and `diff` answer.
fn check(jail: &std::path::Path) -> ExitCode {
    match ldchain::embed::check(jail) {
        Ok(report) => {
            report.iter().for_each(|c| println!("{c}"));
            let stale = report.iter().filter(|c| c.needs_refresh()).count();
            if stale == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "ldchain: {}: {stale} of the paths above need a refresh (ldchain install {0} \
                     rewrites its /chainloader*; an interp stub on disk is replaced by hand)",
                    jail.display()
                );
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("ldchain: install --check: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--version`'s long form: the embedded chainloaders' identity too.
fn long_version() -> &'static str {
    let e = &ldchain::embed::ALL;
    let mut v = format!(
        "{}\nchainloaders (ldchain-embed {}, {}):",
        env!("CARGO_PKG_VERSION"),
        ldchain::embed::VERSION,
        if ldchain::embed::PREBUILT {
            "the committed blobs"
        } else {
            "built from source"
        }
    );
    for c in e.iter() {
        v += &format!(
            "\n  {:<20} {:>6} bytes  sha256 {}",
            c.file_name,
            c.bytes.len(),
            c.sha256
        );
    }
    Box::leak(v.into_boxed_str())
}

/// Parse the command line, run the subcommand, and return its exit status
/// (see [`EXIT_LDCHAIN`] and the others).
pub fn main() -> ExitCode {
    let argv = match expand_args_fd(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ldchain: --args: {e}");
            return ExitCode::from(EXIT_LDCHAIN);
        }
    };
    let matches = Cli::command().long_version(long_version()).get_matches_from(argv);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Run(args), Some(m)) = (&mut cli.command, matches.subcommand_matches("run")) {
        if let Err(e) = args.setup.order(m) {
            eprintln!("ldchain: run: {e}");
            return ExitCode::from(EXIT_LDCHAIN);
        }
    }
    init_tracing(cli.verbose);
    match cli.command {
        Command::Install { check: true, jail_dir } => check(&jail_dir),
        Command::Install { check: false, jail_dir } => match ldchain::embed::install_all(&jail_dir) {
            Ok(done) => {
                done.iter().for_each(|d| println!("{d}"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ldchain: install: {e}");
                ExitCode::from(EXIT_LDCHAIN)
            }
        },
        Command::Resolve(args) => resolve::main(args),
        Command::Run(args) => run::main(*args),
        Command::Serve(args) => serve::main(args),
    }
}
