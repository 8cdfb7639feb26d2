//! ldchain's sandbox: the jail a program runs in, and the boundary it
//! crosses to get there.
//!
//! Here, a **jail** is always one thing: the directory tree a confined
//! program sees as `/`. The modules, from the outside in:
//!
//! - [`throwaway`]: a jail made for one run (a tmpfs root with the host's
//!   `/usr` and `/etc` read-only), in a private mount namespace.
//! - [`view`]: a jail's private view — the user's binds, the chainloader at
//!   the `PT_INTERP` paths, the exec service's socket — built in the calling
//!   process's mount namespace, never on the jail's disk.
//! - [`boundary`]: entering the jail as a real boundary (PID and mount
//!   namespaces, `pivot_root`, every privilege dropped), bubblewrap-style.
//! - [`confine`]: the simpler confinement a test or an FsOp server uses: a
//!   private mount namespace (a user namespace when not root) and `chroot`.
#![deny(missing_docs)]
#![deny(unnameable_types)]
#![deny(unsafe_code)]

pub mod boundary;
pub mod confine;
pub mod fds;
mod mount;
pub mod pty;
pub mod signals;
pub mod throwaway;
pub mod view;
