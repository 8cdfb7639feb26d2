//! The resolver: what a trusted file-namespace server ("FsOp") links in to
//! serve a sandboxed process's `execve(path, argv, envp)` when the sandbox's
//! jail holds no dynamic linker.
//!
//! ```no_run
//! use ldchain_resolver::{Namespace, Resolver, Config};
//!
//! let ns = Namespace::open("/srv/jail".as_ref())?.with_cwd("/home/user");
//! let resolver = Resolver::new(Config::default());
//! let envp = ["PATH=/bin:/usr/bin", "HOME=/home/user"];
//! let plan = resolver.plan_exec(&ns, "/bin/echo", &["echo", "hello"], &envp)?;
//! // plan.argv(): ["/chainloader", <fd:ld.so>, "/bin/echo", "--argv0", "echo", "/bin/echo", "hello"]
//! for (index, fd) in plan.fd_pairs() {
//!     // send `fd` to the sandboxed process, which writes its number into argv[index]
//! #   let _ = (index, fd);
//! }
//! // ... or, in the process that execs (inside the jail):
//! let err = plan.exec(&envp); // returns only on failure
//! eprintln!("exec failed: {err} ({})", err.errno_name());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Search order for a dynamic program's ld.so (by the basename of its
//! `PT_INTERP`): `LDSO_PATH`, `LD_LIBRARY_PATH`, `/etc/ld.so.conf`, the
//! `PT_INTERP` path, the architecture's conventional path. See DESIGN.md.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod bytepath;
mod conf;
mod creds;
mod elfinfo;
mod error;
pub mod escape;
mod exec;
mod fileid;
mod limits;
mod lock;
mod ns;
pub mod parse;
mod plan;
mod request;
mod walk;
pub mod watch;

pub use conf::LdSoConf;
pub use creds::Credentials;
pub use elfinfo::{Flavor, Machine};
pub use error::{errno_name, ExecError};
pub use exec::{inherit_fds, Prepared};
pub use ns::{FileId, Namespace};
pub use plan::{
    find_program, Arg, Config, ExecPlan, InterpAnswer, Kind, LdsoChoice, PlanParts, Resolver, Rule, ScriptHop, Skipped,
    Strategy, Target, MAX_ARG_STRLEN, MAX_CANDIDATES, MAX_PATH_ENTRIES, MAX_SCRIPT_DEPTH,
};
pub use request::{InterpRequest, RequestError};

/// Plan with a default [`Config`] (no cache kept between calls; servers
/// should keep a [`Resolver`]).
pub fn plan_exec<A: AsRef<[u8]>, E: AsRef<[u8]>>(
    ns: &Namespace,
    path: impl AsRef<[u8]>,
    argv: &[A],
    envp: &[E],
) -> Result<ExecPlan, ExecError> {
    Resolver::new(Config::default()).plan_exec(ns, path, argv, envp)
}
