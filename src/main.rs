//! `ldchain`: the jail setup tool. See `ldchain --help`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
