//! The integration suite: one test crate, so `tests/support` is built once.
//! Each module is one area (the chainloader, the CLI, nested exec, the
//! sandbox, ...). Tests that measure the whole process — its descriptor
//! count, its descriptor limit — stay in crates of their own
//! (`tests/load.rs`, `tests/resolver_fds.rs`, `tests/service.rs`): other
//! tests' threads in the same process would disturb what they measure.

#[path = "../support/mod.rs"]
mod support;

mod bounded;
mod bwrap;
mod chainloader;
mod cli;
mod embed;
mod fresh;
mod fsop;
mod gdb;
mod hostile;
mod life;
mod nested;
mod ports;
mod resolver;
mod rights;
mod sandbox;
mod serve;
mod signals;
mod view;
