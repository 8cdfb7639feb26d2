//! What can go wrong, as the errno an `execve` would have returned.

use std::io;
use std::path::PathBuf;

/// Why an exec cannot be planned or carried out. Each variant maps to the
/// errno `execve(2)` would return ([`ExecError::errno`]); the message names
/// the path and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program, a `#!` interpreter, or a path component does not exist.
    #[error("{}: not found", path.display())]
    NotFound {
        /// The path as seen inside the namespace.
        path: PathBuf,
    },
    /// Not a regular file, no execute permission, or on a noexec mount.
    #[error("{}: permission denied: {reason}", path.display())]
    PermissionDenied {
        /// The path inside the namespace.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// Not a format the kernel would run (bad `#!` line, not ELF, an
    /// architecture or ELF type that cannot run).
    #[error("{}: exec format error: {reason}", path.display())]
    ExecFormat {
        /// The path inside the namespace.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `#!` interpreters nested deeper than the kernel allows.
    #[error("{}: too many levels of #! interpreters", path.display())]
    TooManyLevels {
        /// The script at which the limit was hit.
        path: PathBuf,
    },
    /// A dynamic program whose dynamic linker was found nowhere (the kernel
    /// says ENOENT when `PT_INTERP` does not exist).
    #[error("{}: no usable dynamic linker {} found ({} candidates rejected)", program.display(), interp.display(), skipped)]
    NoLdso {
        /// The program.
        program: PathBuf,
        /// Its `PT_INTERP`.
        interp: PathBuf,
        /// How many existing candidates were rejected.
        skipped: usize,
    },
    /// The configured host ld.so cannot run this program.
    #[error("{}: configured dynamic linker cannot be used: {reason}", path.display())]
    BadHostLdso {
        /// The host path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A path or argument is too long, or contains a NUL byte.
    #[error("{what}: {reason}")]
    InvalidArgument {
        /// What.
        what: String,
        /// Why.
        reason: &'static str,
        /// The errno (E2BIG, ENAMETOOLONG or EINVAL).
        errno: i32,
    },
    /// A plan whose placeholders and descriptors do not match.
    #[error("malformed exec plan: {0}")]
    BadPlan(&'static str),
    /// Any other system error while looking at a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl ExecError {
    /// The errno an `execve` of the same program would have returned.
    pub fn errno(&self) -> i32 {
        match self {
            ExecError::NotFound { .. } | ExecError::NoLdso { .. } => libc_errno::ENOENT,
            ExecError::PermissionDenied { .. } => libc_errno::EACCES,
            ExecError::ExecFormat { .. } | ExecError::BadHostLdso { .. } => libc_errno::ENOEXEC,
            ExecError::TooManyLevels { .. } => libc_errno::ELOOP,
            ExecError::InvalidArgument { errno, .. } => *errno,
            ExecError::BadPlan(_) => libc_errno::EIO,
            ExecError::Io { source, .. } => source.raw_os_error().unwrap_or(libc_errno::EIO),
        }
    }

    /// The symbolic name of [`errno`](Self::errno) (`ENOENT`, ...).
    pub fn errno_name(&self) -> &'static str {
        errno_name(self.errno())
    }
}

/// Symbolic name of an errno value.
pub fn errno_name(errno: i32) -> &'static str {
    use libc_errno::*;
    match errno {
        ENOENT => "ENOENT",
        EACCES => "EACCES",
        ENOEXEC => "ENOEXEC",
        ELOOP => "ELOOP",
        EIO => "EIO",
        E2BIG => "E2BIG",
        ENAMETOOLONG => "ENAMETOOLONG",
        EINVAL => "EINVAL",
        ENOTDIR => "ENOTDIR",
        EPERM => "EPERM",
        EXDEV => "EXDEV",
        ENOSYS => "ENOSYS",
        EMFILE => "EMFILE",
        ENOMEM => "ENOMEM",
        ETXTBSY => "ETXTBSY",
        _ => "EIO",
    }
}

/// The errno values used here (Linux, every architecture we support).
pub mod libc_errno {
    #![allow(missing_docs)]
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EIO: i32 = 5;
    pub const E2BIG: i32 = 7;
    pub const ENOEXEC: i32 = 8;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EXDEV: i32 = 18;
    pub const ENOTDIR: i32 = 20;
    pub const EINVAL: i32 = 22;
    pub const EMFILE: i32 = 24;
    pub const ETXTBSY: i32 = 26;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOSYS: i32 = 38;
    pub const ELOOP: i32 = 40;
}
