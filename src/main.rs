//! `ldchain`: the jail setup tool. See `ldchain --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
