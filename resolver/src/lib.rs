//! The resolver: what a trusted file-namespace server ("FsOp") links in to
//! serve a sandboxed process's `execve(path, argv, envp)` when the sandbox's
//! jail holds no dynamic linker.
//!
//! For each exec, [`Resolver::plan_exec`] finds the program and the right
//! `ld.so` *inside the sandbox's namespace* (a [`Namespace`]: a directory
//! taken as `/`), opens it, and returns an [`ExecPlan`]:
//! `execve("/chainloader", ["/chainloader", FD, ld.so-args…])`, where the
//! chainloader (a small static program put into the jail) maps that `ld.so`
//! from descriptor `FD` and runs it. Search order for a dynamic program's
//! `ld.so` (by the basename of its `PT_INTERP`): `LDSO_PATH`,
//! `LD_LIBRARY_PATH`, `/etc/ld.so.conf`, the `PT_INTERP` path, the
//! architecture's conventional path ([`Rule`]).
//!
//! # The whole flow
//!
//! A server with a jail whose `ld.so` lives only in `/opt/glibc` (named in
//! the jail's `/etc/ld.so.conf`), with the sibling crates
//! `ldchain-embed` (the chainloader and its installer), `ldchain-service`
//! (the exec service that answers the programs the jail starts itself) and
//! `ldchain-sandbox` (confinement). Nothing here needs `unsafe`:
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//!
//! use ldchain_resolver::{Config, Namespace, Resolver};
//! use ldchain_sandbox::{boundary::Sandbox, throwaway::enter_private_namespace, view::View};
//! use ldchain_service::{ExecService, Limits, NamespaceSource};
//!
//! let jail = Path::new("/srv/jail");
//! enter_private_namespace(None)?; // the mounts below are this process's own
//! ldchain_embed::install(jail)?; // /chainloader, for the first exec
//! ldchain_embed::install_stubs(jail)?; // the chainloader at each PT_INTERP path the jail lacks
//!
//! // Plan the first exec: /chainloader FD /bin/sh --argv0 sh /bin/sh -c …
//! let ns = Namespace::open(jail)?;
//! let resolver = Resolver::new(Config::default());
//! let envp = ["PATH=/bin"];
//! let plan = resolver.plan_exec(&ns, "/bin/sh", &["sh", "-c", "echo hi | /bin/cat"], &envp)?;
//!
//! // Serve the execs the program makes itself: the kernel runs the stub as
//! // the interpreter of /bin/cat, and the stub asks this service for its ld.so.
//! let mut view = View::new(jail, false)?;
//! let socket = view.bind_service()?; // /run/ldchain/exec.sock in the jail's view
//! view.finish()?;
//! let source = NamespaceSource::new(resolver, ns).with_answer_dir(socket.answers);
//! let _service = ExecService::start(socket.listener, Arc::new(source), Limits::default())?;
//!
//! // Confine and exec: prepare() allocates here; the exec after the fork
//! // does not (async-signal-safe in a threaded server).
//! let mut jailed = Sandbox::new(jail, b"/")?.spawn_prepared(plan.prepare(&envp)?)?;
//! assert!(jailed.wait()?.success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A server that confines by other means sends the plan's descriptors to
//! the sandboxed process instead ([`ExecPlan::fd_pairs`]: each one's number
//! goes into `argv[index]`), or takes the plan apart
//! ([`ExecPlan::into_parts`]).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(unnameable_types)]

mod bytepath;
mod conf;
mod creds;
mod elfinfo;
mod error;
#[doc(hidden)] // for the service's and the CLI's messages
pub mod escape;
mod exec;
mod fileid;
mod limits;
mod lock;
mod ns;
#[doc(hidden)] // for the fuzz targets
pub mod parse;
mod plan;
mod procfd;
mod request;
mod walk;
#[doc(hidden)] // the change watching warm plans and the exec service's cache share
pub mod watch;

#[doc(hidden)] // for the integration tests
pub use conf::LdSoConf;
pub use creds::Credentials;
pub use elfinfo::{Flavor, Machine};
#[doc(hidden)] // for the CLI's messages: ExecError::errno_name is the public one
pub use error::errno_name;
pub use error::ExecError;
pub use exec::{inherit_fds, Prepared};
#[doc(hidden)] // in LdSoConf
pub use fileid::FileId;
pub use ns::Namespace;
pub use plan::{
    find_program, Arg, Config, ExecPlan, InterpAnswer, Kind, LdsoChoice, PlanParts, Resolver, Rule, ScriptHop, Skipped,
    Strategy, Target,
};
pub use procfd::ProcFd;
pub use request::{InterpRequest, RequestError};
