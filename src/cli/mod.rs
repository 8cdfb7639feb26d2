//! Command-line parsing and dispatch.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Command};
use status::EXIT_LDCHAIN;

mod args;
mod binds;
mod resolve;
mod run;
mod serve;
mod setup;
mod status;

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
        Command::Install {
            check: true, jail_dir, ..
        } => check(&jail_dir),
        Command::Install {
            check: false,
            stubs,
            jail_dir,
        } => match ldchain::embed::install_all(&jail_dir).and_then(|mut done| {
            if stubs {
                done.extend(ldchain::embed::install_stubs(&jail_dir)?);
            }
            Ok(done)
        }) {
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
