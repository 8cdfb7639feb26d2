//! What `plan_exec` returns: the exec itself (target and argv, owning its
//! descriptors) and the facts behind it.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::elfinfo::{Flavor, Machine};

/// How the planned exec is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// `execve("/chainloader", [.., FD, ..])`: needs the chainloader in the jail.
    #[default]
    Chainloader,
    /// `execveat(FD, "", argv, envp, AT_EMPTY_PATH)` on the dynamic linker (or
    /// static program) itself: nothing in the jail at all; Linux ≥ 3.19, and
    /// the sandbox's seccomp policy must allow it.
    Execveat,
}

/// Which rule found the dynamic linker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A directory of `LDSO_PATH` (from the environment or the sandbox's default).
    LdsoPath,
    /// An entry of `LD_LIBRARY_PATH`.
    LdLibraryPath,
    /// A directory named by `/etc/ld.so.conf`.
    LdSoConf,
    /// The program's `PT_INTERP` path itself.
    Interp,
    /// The architecture's conventional path.
    Conventional,
    /// The sandbox's configured host dynamic linker.
    Configured,
}

impl Rule {
    /// A short stable name (`ldso-path`, `ld-library-path`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Rule::LdsoPath => "ldso-path",
            Rule::LdLibraryPath => "ld-library-path",
            Rule::LdSoConf => "ld.so.conf",
            Rule::Interp => "pt-interp",
            Rule::Conventional => "conventional",
            Rule::Configured => "configured",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A candidate dynamic linker that was found but not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its path inside the namespace.
    pub path: Vec<u8>,
    /// Why it was not used (for people; not a stable format).
    pub reason: String,
}

/// The dynamic linker a plan uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdsoChoice {
    /// Its path inside the namespace (a host path for [`Rule::Configured`]).
    pub path: Vec<u8>,
    /// The rule that found it.
    pub rule: Rule,
    /// Which libc it belongs to (decides `--argv0` and `--`).
    pub flavor: Flavor,
    /// The program's `PT_INTERP`, whose basename was searched for.
    pub interp: Vec<u8>,
}

/// What kind of program is finally run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An ELF program with `PT_INTERP`: run through its dynamic linker.
    Dynamic,
    /// An ELF program without `PT_INTERP`: loaded directly.
    Static,
}

/// One `#!` script on the way to the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHop {
    /// The script's path, as it was exec'd.
    pub script: Vec<u8>,
    /// The interpreter its `#!` line names.
    pub interpreter: Vec<u8>,
    /// The one optional argument of its `#!` line (inner blanks kept).
    pub arg: Option<Vec<u8>>,
}

/// One element of a planned argv.
///
/// A descriptor is owned by the argv element it fills, so a plan cannot
/// have a placeholder without a descriptor or a descriptor without a place.
#[derive(Debug)]
pub enum Arg {
    /// A literal argument.
    Str(Vec<u8>),
    /// An open descriptor (close-on-exec) whose number, as the exec'ing
    /// process sees it, is this argument.
    Fd(OwnedFd),
}

/// What is exec'd.
#[derive(Debug)]
pub enum Target {
    /// A path inside the jail (`/chainloader`).
    Path(Vec<u8>),
    /// A descriptor, with `execveat(fd, "", .., AT_EMPTY_PATH)`.
    Fd(OwnedFd),
}

/// The result of [`Resolver::plan_exec`](super::Resolver::plan_exec): what
/// to exec and with which argv — whose descriptor arguments own their
/// descriptors — plus the facts behind it.
///
/// The target and argv are private: only the resolver builds them, and
/// every [`Arg::Fd`] carries its own descriptor, so there is nothing to
/// cross-check when the plan is carried out. A server that passes the
/// descriptors to another process reads them with
/// [`fd_pairs`](Self::fd_pairs) or takes them with
/// [`into_parts`](Self::into_parts).
#[derive(Debug)]
pub struct ExecPlan {
    pub(crate) target: Target,
    pub(crate) argv: Vec<Arg>,
    /// Dynamic or static.
    pub kind: Kind,
    /// The program finally run (after any `#!` chain), inside the namespace.
    pub program: Vec<u8>,
    /// Its architecture.
    pub machine: Machine,
    /// The `#!` scripts on the way, outermost first.
    pub scripts: Vec<ScriptHop>,
    /// The dynamic linker, for a dynamic program.
    pub ldso: Option<LdsoChoice>,
    /// Candidates found but rejected, in search order.
    pub skipped: Vec<Skipped>,
    /// Whether secure mode applied (setuid/setgid program or configuration).
    pub secure: bool,
    /// The strategy used.
    pub strategy: Strategy,
}

/// An [`ExecPlan`]'s exec taken apart, for a server that sends it to the
/// process that execs: the literal arguments, and each descriptor with the
/// argv index its number fills.
#[derive(Debug)]
pub struct PlanParts {
    /// What to exec.
    pub target: Target,
    /// The argv; `None` where a descriptor's number goes.
    pub argv: Vec<Option<Vec<u8>>>,
    /// (argv index, descriptor), in argv order; every `None` of `argv` has
    /// exactly one.
    pub fds: Vec<(usize, OwnedFd)>,
}

impl ExecPlan {
    /// The descriptor of the file loaded (the dynamic linker, or the
    /// static program).
    pub(crate) fn image(&self) -> Option<BorrowedFd<'_>> {
        match &self.target {
            Target::Fd(fd) => Some(fd.as_fd()),
            Target::Path(_) => self.fd_pairs().next().map(|(_, fd)| fd),
        }
    }

    /// What to exec.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The argv; descriptor arguments are [`Arg::Fd`].
    pub fn argv(&self) -> &[Arg] {
        &self.argv
    }

    /// The argv with placeholders shown as `<fd:WHAT>` (for people).
    pub fn argv_display(&self) -> Vec<String> {
        let what = match self.kind {
            Kind::Dynamic => "ld.so",
            Kind::Static => "program",
        };
        self.argv
            .iter()
            .map(|a| match a {
                Arg::Str(s) => String::from_utf8_lossy(s).into_owned(),
                Arg::Fd(_) => format!("<fd:{what}>"),
            })
            .collect()
    }

    /// The (argv index, descriptor) pairs, for a caller that sends the
    /// descriptors over a socket and fills the numbers in on the other side.
    pub fn fd_pairs(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> {
        self.argv.iter().enumerate().filter_map(|(i, a)| match a {
            Arg::Fd(fd) => Some((i, fd.as_fd())),
            Arg::Str(_) => None,
        })
    }

    /// The target, the literal argv and the owned (index, descriptor)
    /// pairs, consuming the plan (the facts are dropped).
    pub fn into_parts(self) -> PlanParts {
        let mut fds = Vec::new();
        let argv = self
            .argv
            .into_iter()
            .enumerate()
            .map(|(i, a)| match a {
                Arg::Str(s) => Some(s),
                Arg::Fd(fd) => {
                    fds.push((i, fd));
                    None
                }
            })
            .collect();
        PlanParts {
            target: self.target,
            argv,
            fds,
        }
    }
}
