//! What can go wrong, as the errno an `execve` would have returned.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

/// Why an exec cannot be planned or carried out. Each variant maps to the
/// errno `execve(2)` would return ([`ExecError::errno`]); the message names
/// the path and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The program, a `#!` interpreter, or a path component does not exist.
    #[error("{}: not found", shown(path))]
    NotFound {
        /// The path as seen inside the namespace.
        path: PathBuf,
    },
    /// Not a regular file, no execute permission, or on a noexec mount.
    #[error("{}: permission denied: {reason}", shown(path))]
    PermissionDenied {
        /// The path inside the namespace.
        path: PathBuf,
        /// Which of those it is ("is a directory", "on a noexec mount", ...).
        reason: &'static str,
    },
    /// Not a format the kernel would run (bad `#!` line, not ELF, an
    /// architecture or ELF type that cannot run).
    #[error("{}: exec format error: {reason}", shown(path))]
    ExecFormat {
        /// The path inside the namespace.
        path: PathBuf,
        /// What the kernel would have found wrong with it.
        reason: String,
    },
    /// `#!` interpreters nested deeper than the kernel allows.
    #[error("{}: too many levels of #! interpreters", shown(path))]
    TooManyLevels {
        /// The script at which the limit was hit.
        path: PathBuf,
    },
    /// A dynamic program whose dynamic linker was found nowhere (the kernel
    /// says ENOENT when `PT_INTERP` does not exist).
    #[error(
        "{}: no usable dynamic linker {} found ({} candidates rejected{})",
        shown(program),
        shown(interp),
        skipped,
        limit.map(|l| format!("; search cut short by a limit: {l}")).unwrap_or_default()
    )]
    NoLdso {
        /// The program (after any `#!` chain), inside the namespace.
        program: PathBuf,
        /// Its `PT_INTERP`, whose basename was searched for.
        interp: PathBuf,
        /// How many existing candidates were rejected.
        skipped: usize,
        /// The limit that kept candidates from being tried, if one did:
        /// then the dynamic linker may exist after all.
        limit: Option<&'static str>,
    },
    /// The configured host ld.so cannot run this program.
    #[error("{}: configured dynamic linker cannot be used: {reason}", shown(path))]
    BadHostLdso {
        /// Its path on the host ([`Config::host_ldso`](crate::Config::host_ldso)).
        path: PathBuf,
        /// Why it cannot serve this program (cannot be opened, wrong
        /// architecture, refused by the chainloader's checks, ...).
        reason: String,
    },
    /// A path or argument is too long, or contains a NUL byte.
    #[error("{what}: {reason}")]
    InvalidArgument {
        /// The path or argument concerned (a long path is shortened).
        what: String,
        /// What is wrong with it.
        reason: &'static str,
        /// The errno `execve` gives for it (E2BIG, ENAMETOOLONG or EINVAL; ELOOP
        /// for a path lookup over its budget).
        errno: i32,
    },
    /// Any other system error while looking at a file.
    #[error("{}: {source}", shown(path))]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The system call's error.
        source: io::Error,
    },
}

/// A path as one line of printable text ([`for_terminal`](crate::escape::for_terminal)):
/// names from a sandbox may hold escape sequences or newlines.
fn shown(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    crate::escape::for_terminal(path.as_os_str().as_bytes())
}

impl ExecError {
    /// The errno an `execve` of the same program would have returned.
    pub fn errno(&self) -> i32 {
        match self {
            ExecError::NotFound { .. } | ExecError::NoLdso { .. } => libc::ENOENT,
            ExecError::PermissionDenied { .. } => libc::EACCES,
            ExecError::ExecFormat { .. } | ExecError::BadHostLdso { .. } => libc::ENOEXEC,
            ExecError::TooManyLevels { .. } => libc::ELOOP,
            ExecError::InvalidArgument { errno, .. } => *errno,
            ExecError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// Whether a path lookup ran out of its budget (not an answer of the
    /// file system: a limit of the resolver's).
    pub(crate) fn is_over_lookup_budget(&self) -> bool {
        matches!(self, ExecError::InvalidArgument { reason, .. } if *reason == crate::limits::OVER_BUDGET)
    }

    /// The symbolic name of [`errno`](Self::errno) (`ENOENT`, ...; see
    /// [`errno_name`]).
    pub fn errno_name(&self) -> Cow<'static, str> {
        errno_name(self.errno())
    }

    /// Whether this is the server running out of descriptors (`EMFILE`,
    /// `ENFILE`) or memory (`ENOMEM`): a fact about the server, not about
    /// the file, so it must end the exec with that errno (as `execve`
    /// would) rather than count the file as unusable.
    pub fn is_resource_shortage(&self) -> bool {
        matches!(self.errno(), libc::EMFILE | libc::ENFILE | libc::ENOMEM)
    }
}

/// Defines [`errno_name`]'s table from `libc`'s constants, so a name can
/// never be paired with the wrong number.
macro_rules! errno_table {
    ($($name:ident)*) => {
        /// The `<errno.h>` name of every errno value Linux defines on the
        /// architectures we support (the generic numbering: x86-64, i386,
        /// AArch64); `E<number>` for any other value (`E0`, `E4000`), never
        /// a real name that would misreport it.
        pub fn errno_name(errno: i32) -> Cow<'static, str> {
            match errno {
                $(libc::$name => Cow::Borrowed(stringify!($name)),)*
                n => Cow::Owned(format!("E{n}")),
            }
        }
    };
}

// Aliases (EWOULDBLOCK = EAGAIN, EDEADLOCK = EDEADLK, ENOTSUP = EOPNOTSUPP)
// are left out: each value has one name, the one glibc's strerrorname_np
// gives.
errno_table! {
    EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM
    EACCES EFAULT ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE
    EMFILE ENOTTY ETXTBSY EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE
    EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP ENOMSG EIDRM ECHRNG
    EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR EXFULL ENOANO
    EBADRQC EBADSLT EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE
    ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ
    EBADFD EREMCHG ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART
    ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT
    EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT
    EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED
    ECONNRESET ENOBUFS EISCONN ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT
    ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE EUCLEAN
    ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED
    ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE
    ERFKILL EHWPOISON
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linux_errno_has_its_own_name() {
        // The generic numbering defines 1..=133 except 41 and 58 (unused).
        let mut seen = std::collections::HashSet::new();
        for n in (1..=133).filter(|n| ![41, 58].contains(n)) {
            let name = errno_name(n);
            assert!(
                name.chars().skip(1).any(|c| c.is_ascii_alphabetic()),
                "{n} has no name: {name}"
            );
            assert!(seen.insert(name.clone()), "{n}: {name} named twice");
        }
        assert_eq!(errno_name(libc::ENOENT), "ENOENT");
        assert_eq!(errno_name(libc::EHWPOISON), "EHWPOISON");
    }

    #[test]
    fn unknown_errnos_are_named_by_number_not_eio() {
        assert_eq!(errno_name(0), "E0");
        assert_eq!(errno_name(41), "E41");
        assert_eq!(errno_name(134), "E134");
        assert_eq!(errno_name(-3), "E-3");
    }
}
