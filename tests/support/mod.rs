//! Test support shared by the integration tests, by concern: loud skips,
//! the test programs, running things, jails, the chainloader on the host,
//! the exec service, the host's processes.

// The test crates that measure a whole process (tests/load.rs, …) use only
// a few of these.
#![allow(unused_imports)]

mod chainloader;
mod jail;
mod procs;
mod programs;
mod run;
mod service;
mod skip;

pub use chainloader::*;
pub use jail::*;
pub use ldchain::sandbox::confine::Confinement;
pub use procs::*;
pub use programs::*;
pub use run::*;
pub use service::*;
pub use skip::*;
