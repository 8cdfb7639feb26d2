//! The pure half of the chainloader: everything that decides, nothing that acts.
//!
//! The chainloader program (`src/main.rs`, built only by `embed/build.rs`) is
//! split in two:
//!
//! * this library — the table of supported architectures ([`machine`]), ELF
//!   header checks ([`elf`]), the mapping plan the kernel's ELF loader would
//!   follow ([`plan`]), command-line parsing ([`args`]) and error messages
//!   ([`error`]). It is `no_std`, contains no `unsafe`, and is
//!   unit-tested on the host with an ordinary `cargo test`;
//! * the runtime (`src/rt/`, `src/arch/`) — the entry stub,
//!   system calls, the stack rewrite and the final jump. Small, architecture
//!   specific, and the only place with `unsafe`.
//!
//! Nothing here allocates, formats or panics on any input: every slice access
//! is checked and every address computation is `checked_*`, so that hostile
//! headers become an [`error::Error`], never a crash.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
pub mod elf;
pub mod error;
pub mod interp;
pub mod machine;
pub mod plan;
pub mod proto;

pub use error::{Error, Reason, Subject};
