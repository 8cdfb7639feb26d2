//! The resolver's configuration, limits and the `Resolver` itself (the
//! plan module's leaf: its methods are in `plan.rs`, `script.rs` and
//! `search.rs`, which all use this).

use std::fmt;

use super::cache::Caches;
pub use super::exec_plan::Strategy;

/// How deep `#!` interpreters may nest: the kernel examines at most six
/// files for one exec (`exec_binprm`: depth 0 to 5), so at most five scripts.
pub(crate) const MAX_SCRIPT_DEPTH: usize = 5;
/// Most entries of ldchain's own `PATH` searched by [`find_program`](crate::find_program).
/// `LD_LIBRARY_PATH` and `LDSO_PATH` have no such limit: every entry is
/// searched, as ld.so does, and the string is bounded by [`MAX_ARG_STRLEN`].
pub(crate) const MAX_PATH_ENTRIES: usize = 1024;
/// Most candidate files opened from the namespace's own rules (ld.so.conf,
/// `PT_INTERP`, the conventional path) while looking for one ld.so.
pub(crate) const MAX_CANDIDATES: usize = 4096;
/// The longest argument or environment string `execve` takes, with its NUL
/// (`MAX_ARG_STRLEN`, 32 pages): a longer one is E2BIG.
pub(crate) const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Per-sandbox configuration.
///
/// Every path here is bytes (`Vec<u8>`), as the kernel takes paths and as
/// the resolver takes and returns every other path (argv, plans, requests):
/// a Linux path need not be UTF-8, and no conversion stands between a
/// sandbox's bytes and what is searched.
///
/// The defaults ([`Config::default`]):
///
/// | field | default |
/// |---|---|
/// | [`default_ldso_path`](Self::default_ldso_path) | `None` |
/// | [`host_ldso`](Self::host_ldso) | `None` |
/// | [`chainloader`](Self::chainloader) | `b"/chainloader"` |
/// | [`strategy`](Self::strategy) | [`Strategy::Chainloader`] |
/// | [`secure`](Self::secure) | `false` |
/// | [`ld_so_conf`](Self::ld_so_conf) | `b"/etc/ld.so.conf"` |
///
/// ```
/// let config = ldchain_resolver::Config {
///     default_ldso_path: Some(b"/opt/glibc:/opt/musl".to_vec()),
///     ..Default::default()
/// };
/// assert_eq!(config.chainloader, b"/chainloader");
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// `LDSO_PATH` to use when the sandbox does not set one (or is not
    /// allowed to): `:`-separated directories inside the namespace.
    /// Default: none.
    pub default_ldso_path: Option<Vec<u8>>,
    /// Always use this dynamic linker, a path on the host opened outside
    /// the namespace, instead of searching (Plash's fixed-ld.so mode).
    /// Default: none (search).
    pub host_ldso: Option<Vec<u8>>,
    /// Where the native chainloader is inside the jail; the chainloader for
    /// another architecture is this path with `-ARCH` appended
    /// (`/chainloader-i386`, `/chainloader-aarch64`). Default:
    /// `/chainloader`.
    pub chainloader: Vec<u8>,
    /// How the exec is carried out. Default: [`Strategy::Chainloader`].
    pub strategy: Strategy,
    /// Treat every program as setuid: ignore the environment's search paths
    /// (`LDSO_PATH`, `LD_LIBRARY_PATH`; the default `LDSO_PATH` still
    /// applies). Default: `false`.
    pub secure: bool,
    /// The ld.so.conf to read, inside the namespace. Default:
    /// `/etc/ld.so.conf`.
    pub ld_so_conf: Vec<u8>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_ldso_path: None,
            host_ldso: None,
            chainloader: b"/chainloader".to_vec(),
            strategy: Strategy::Chainloader,
            secure: false,
            ld_so_conf: b"/etc/ld.so.conf".to_vec(),
        }
    }
}

/// Plans execs for one sandbox configuration. Cheap to share between
/// threads (`&Resolver` is all `plan_exec` needs); its caches are keyed by
/// file identity (device, inode, size, mtime, ctime), so they are never stale.
pub struct Resolver {
    pub(super) config: Config,
    pub(super) caches: Caches,
    /// The running kernel's page size: the chainloader maps with
    /// `AT_PAGESZ`, so candidates are checked against the same value.
    pub(super) page_size: u64,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A name for a log line: control bytes and invalid UTF-8 escaped
/// ([`for_terminal`](crate::escape::for_terminal)), so a hostile name can
/// neither forge a line nor drive the terminal.
pub(super) fn lossy(b: &[u8]) -> String {
    crate::escape::for_terminal(b)
}
