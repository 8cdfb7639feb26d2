//! Exit statuses, as a shell and coreutils' `chroot`/`env` report them.

use ldchain::resolver::ExecError;

/// Exit status for ldchain's own failures (as coreutils `chroot` and `env`).
pub const EXIT_LDCHAIN: u8 = 125;
/// Exit status when the program was found but cannot be executed.
pub const EXIT_CANNOT_EXEC: u8 = 126;
/// Exit status when the program (or its interpreter) was not found.
pub const EXIT_NOT_FOUND: u8 = 127;

/// The exit status for an exec that could not happen: 127 for ENOENT (not
/// found), 126 for any other errno (found but cannot be executed), as a
/// shell reports them.
pub fn exec_failure_status(e: &ExecError) -> u8 {
    match e.errno() {
        libc::ENOENT => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_EXEC,
    }
}
