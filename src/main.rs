//! `ldchain`: the jail setup tool. See `ldchain --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for ldchain's own failures (as coreutils `chroot` and `env`).
const EXIT_LDCHAIN: u8 = 125;

#[derive(Parser)]
#[command(
    name = "ldchain",
    version,
    about = "Run dynamically linked programs in a chroot jail that holds no dynamic linker",
    after_help = "Examples:\n  ldchain install /srv/jail        write /srv/jail/chainloader (idempotent)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the embedded chainloader into JAIL_DIR as `chainloader`, mode 0755.
    ///
    /// Atomic (a temporary file is renamed into place), idempotent (an
    /// identical file is left alone), durable (fsync), and it refuses to
    /// follow a symbolic link planted at the target.
    Install {
        /// The jail's root directory.
        jail_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Install { jail_dir } => match ldchain::embed::install(&jail_dir) {
            Ok(done) => {
                println!("{done}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ldchain: install: {e}");
                ExitCode::from(EXIT_LDCHAIN)
            }
        },
    }
}
