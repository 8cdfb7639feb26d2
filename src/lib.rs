//! ldchain: run dynamically linked programs from a chroot jail that contains
//! no dynamic linker.
//!
//! * [`embed`] — the chainloader, built from source and embedded, and its
//!   installer.
//! * [`resolver`] — find the right ld.so inside a sandbox's namespace and
//!   build the exec plan.
//! * [`jail`] — enter a chroot jail from a child process.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub use ldchain_embed as embed;
pub use ldchain_resolver as resolver;

pub mod jail;
