//! Finding a dynamic program's ld.so: one method per rule, in the order
//! they are tried — `LDSO_PATH`, `LD_LIBRARY_PATH`, `/etc/ld.so.conf`, the
//! `PT_INTERP` path, the conventional path — or the configured host ld.so
//! instead of all of them.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};
use tracing::{debug, trace};

use crate::bytepath::{basename, dirname, join};
use crate::conf::{self, LdSoConf};
use crate::elfinfo::{self, Machine};
use crate::error::ExecError;
use crate::ns::{os_path, Namespace, Opened};
use crate::parse::ldpath;
use crate::walk::{Lookups, Scope};

use super::cache::{cached, insert_bounded, lock};
use super::config::{lossy, Resolver, MAX_CANDIDATES};
use super::exec_plan::{Rule, Skipped};

/// Most candidate paths a search lists as consulted (what the exec
/// service watches to keep an answer): a search that tried more is not
/// cached, and does not keep their paths.
pub const MAX_CONSULTED: usize = 256;
/// Most rejected candidates whose path and reason a search keeps
/// ([`ExecPlan::skipped`](super::ExecPlan)): ld.so.conf's
/// [`MAX_CANDIDATES`] and the last two rules; all are counted.
pub const MAX_SKIPPED_KEPT: usize = MAX_CANDIDATES + 2;

/// A dynamic linker that was found.
pub(super) struct Found {
    /// The open file.
    pub file: Opened,
    /// Its path inside the namespace (a host path for [`Rule::Configured`]).
    pub path: Vec<u8>,
    /// The rule that found it.
    pub rule: Rule,
}

/// One search for the dynamic linker of one program: what it looks for,
/// and the candidates tried and rejected so far.
pub(super) struct Search<'a, E> {
    resolver: &'a Resolver,
    ns: &'a Namespace,
    /// The program's `PT_INTERP`.
    pub interp: &'a [u8],
    /// Its basename, the name searched for.
    name: &'a [u8],
    /// The program's absolute path (for `$ORIGIN` and messages).
    pub program: &'a [u8],
    machine: Machine,
    envp: &'a [E],
    /// Whether the environment's search paths count (not in secure mode).
    from_env: bool,
    /// A digest of every candidate path opened (each is tried once): 8
    /// bytes each however long the path (with a 4 KiB working directory,
    /// every relative entry of a 128 KiB `LDSO_PATH` is a 4 KiB path).
    /// Keyed by a random `RandomState`, so a client cannot aim at a collision.
    tried: HashSet<u64>,
    tried_hasher: RandomState,
    /// The first [`MAX_CONSULTED`] candidate paths, for [`consulted`](Self::consulted);
    /// beyond that only their number.
    consulted: Vec<Vec<u8>>,
    /// How many existing candidates were rejected (all of them, whether or
    /// not `skipped` keeps their details).
    rejected: usize,
    /// How many rejected candidates `skipped` keeps in detail.
    keep_skipped: usize,
    /// How many of those came from ld.so.conf, bounded by
    /// [`MAX_CANDIDATES`]; the environment's entries are bounded by the exec
    /// string's size, and the last two rules add one each.
    from_namespace: usize,
    /// The existing candidates rejected, in order, with their reasons: the
    /// first `keep_skipped` of them.
    pub skipped: Vec<Skipped>,
    /// The ld.so.conf consulted, if the search got that far.
    conf: Option<Arc<LdSoConf>>,
    /// The path lookups of the search paths' candidates: one budget for
    /// them all, and the prefixes that failed (`crate::walk`).
    lookups: Lookups<'a>,
    /// The server ran out of descriptors or memory opening a candidate:
    /// the search ends with that error, no candidate is tried after it.
    aborted: Option<ExecError>,
    /// Whether a candidate path was relative (resolved from the working
    /// directory): then the answer depends on it.
    relative: bool,
    /// Whether a tried `LD_LIBRARY_PATH` entry named `$ORIGIN`: then the
    /// answer depends on the program's directory.
    origin: bool,
    /// A limit that kept a candidate from being tried (named in the error).
    limit: Option<&'static str>,
    /// Whether the `PT_INTERP` candidate was refused for want of permission
    /// (a directory on the way not searchable, the file not readable or
    /// not executable): what the kernel says then is EACCES.
    interp_denied: bool,
    /// Whether any candidate was refused for want of permission: then the
    /// outcome depended on whose rights the search was made with.
    denied: bool,
}

/// The limit named when [`MAX_CANDIDATES`] stopped a search.
const CANDIDATE_LIMIT: &str = "at most 4096 ld.so.conf candidates are tried (MAX_CANDIDATES)";
/// The limit named when ld.so.conf named more directories than are kept.
const CONF_DIRS_LIMIT: &str = "at most 4096 ld.so.conf directories are kept (MAX_DIRS)";
/// The limit named when the search paths' shared lookup budget ran out.
const LOOKUP_LIMIT: &str = "the search paths' candidates share a path lookup budget of 4096 components and \
     64 KiB of link text where a symlink is met, and 262144 components in all (KERNEL_PER_SEARCH)";

impl<'a, E: AsRef<[u8]>> Search<'a, E> {
    /// A search for the ld.so of `program` (a `machine` program whose
    /// `PT_INTERP` is `interp`), run with environment `envp`.
    pub fn new(
        resolver: &'a Resolver,
        ns: &'a Namespace,
        program: &'a [u8],
        interp: &'a [u8],
        machine: Machine,
        envp: &'a [E],
        secure: bool,
    ) -> Self {
        Search {
            resolver,
            ns,
            interp,
            name: basename(interp),
            program,
            machine,
            envp,
            from_env: !secure,
            tried: HashSet::new(),
            tried_hasher: RandomState::new(),
            consulted: Vec::new(),
            rejected: 0,
            keep_skipped: MAX_SKIPPED_KEPT,
            from_namespace: 0,
            skipped: Vec::new(),
            conf: None,
            lookups: Lookups::per_search(),
            aborted: None,
            relative: false,
            origin: false,
            limit: None,
            interp_denied: false,
            denied: false,
        }
    }

    /// Whether the outcome depended on the working directory (a relative
    /// candidate path was tried).
    pub fn depends_on_cwd(&self) -> bool {
        self.relative
    }

    /// Whether a candidate was refused for want of permission (the
    /// outcome may differ for a process with other rights).
    pub fn depends_on_rights(&self) -> bool {
        self.denied
    }

    /// Whether the outcome depended on the program's directory (a tried
    /// `LD_LIBRARY_PATH` entry used `$ORIGIN`).
    pub fn depends_on_origin(&self) -> bool {
        self.origin
    }

    /// Keep the details of at most `n` rejected candidates (all are counted).
    pub fn keep_skipped(mut self, n: usize) -> Self {
        self.keep_skipped = n;
        self
    }

    /// Every path whose state decided the outcome so far: each candidate
    /// tried, and each file or directory ld.so.conf was read from — or
    /// None if there were more than [`MAX_CONSULTED`] candidates (too many
    /// to watch; they are not kept).
    pub fn consulted(&self) -> Option<Vec<Vec<u8>>> {
        if self.tried.len() > MAX_CONSULTED {
            return None;
        }
        let conf = self.conf.iter().flat_map(|c| c.deps.iter().map(|(p, _)| p.clone()));
        Some(self.consulted.iter().cloned().chain(conf).collect())
    }

    /// The rules in order; the first candidate that is usable wins.
    pub fn run(&mut self) -> Result<Found, ExecError> {
        let found = match &self.resolver.config.host_ldso {
            Some(host) => return self.resolver.host_ldso(host, self.machine),
            None => self
                .ldso_path()
                .or_else(|| self.ld_library_path())
                .or_else(|| self.ld_so_conf())
                .or_else(|| self.interp())
                .or_else(|| self.conventional()),
        };
        if let Some(e) = self.aborted.take() {
            return Err(e);
        }
        if found.is_none() && self.interp_denied {
            // As execve: the interpreter exists for all the client can
            // tell, and it may not use it.
            return Err(ExecError::PermissionDenied {
                path: os_path(self.interp),
                reason: "dynamic linker not accessible",
            });
        }
        found.ok_or_else(|| ExecError::NoLdso {
            program: os_path(self.program),
            interp: os_path(self.interp),
            skipped: self.rejected,
            limit: self.limit,
        })
    }

    /// 1. `LDSO_PATH`: the sandbox's environment's, or the configured default.
    fn ldso_path(&mut self) -> Option<Found> {
        let from_env = self.getenv(b"LDSO_PATH").map(<[u8]>::to_vec);
        let value = from_env.or_else(|| self.resolver.config.default_ldso_path.clone())?;
        // Every entry: the string is at most MAX_ARG_STRLEN (plan_exec
        // refuses a longer one with E2BIG, as execve does).
        let (dirs, _) = ldpath::split_ldso_path(&value, usize::MAX);
        dirs.into_iter().find_map(|dir| self.try_in(dir, Rule::LdsoPath))
    }

    /// 2. `LD_LIBRARY_PATH`, with glibc's separators and tokens.
    fn ld_library_path(&mut self) -> Option<Found> {
        let value = self.getenv(b"LD_LIBRARY_PATH")?;
        let tokens = ldpath::Tokens {
            origin: dirname(self.program),
            lib: self.machine.lib(),
            platform: self.machine.platform(),
        };
        let (entries, _) = ldpath::split_ld_library_path(value, usize::MAX);
        entries.into_iter().find_map(|entry| {
            self.origin |= uses_origin(entry, &tokens);
            self.try_in(&ldpath::expand(entry, &tokens), Rule::LdLibraryPath)
        })
    }

    /// 3. The directories `/etc/ld.so.conf` names.
    fn ld_so_conf(&mut self) -> Option<Found> {
        let conf = self.resolver.ld_so_conf(self.ns);
        self.conf = Some(conf.clone());
        // Lookups that failed in an earlier search for this configuration
        // are not walked again while what decided them is unchanged.
        let scope = Scope::new(self.ns.root_key(), conf.identity(), self.ns.credentials());
        self.lookups.remember_in(&self.resolver.caches.failures, scope);
        let found = conf.dirs.iter().find_map(|dir| self.try_in(dir, Rule::LdSoConf));
        if found.is_none() && conf.dirs_cut {
            self.limit.get_or_insert(CONF_DIRS_LIMIT);
        }
        found
    }

    /// 4. The `PT_INTERP` path itself.
    fn interp(&mut self) -> Option<Found> {
        self.try_path(self.interp.to_vec(), Rule::Interp)
    }

    /// 5. The conventional path of the program's linker family.
    fn conventional(&mut self) -> Option<Found> {
        let path = self.machine.conventional_ldso(self.name)?;
        self.try_path(path.to_vec(), Rule::Conventional)
    }

    /// `name` of the new program's environment, unless in secure mode.
    fn getenv(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.from_env.then(|| ldpath::getenv(self.envp, name)).flatten()
    }

    /// The candidate in directory `dir` (empty or `.`: the current one).
    fn try_in(&mut self, dir: &[u8], rule: Rule) -> Option<Found> {
        let path = if dir.is_empty() || dir == b"." {
            self.name.to_vec()
        } else {
            join(dir, self.name)
        };
        self.try_path(path, rule)
    }

    /// The candidate at `path`, if it exists, was not tried yet, and is
    /// usable; an existing unusable one is recorded in `skipped`. The
    /// candidate cap stops the search paths, never the last two rules (one
    /// candidate each), so a namespace that fills the cap with dead ends
    /// cannot hide the ld.so at `PT_INTERP`. Running out of descriptors or
    /// memory ends the search instead ([`ExecError::is_resource_shortage`]).
    fn try_path(&mut self, path: Vec<u8>, rule: Rule) -> Option<Found> {
        self.relative |= !path.starts_with(b"/");
        let path = self.ns.absolute(&path);
        // Only ld.so.conf's directories count against the cap: the
        // environment's entries are bounded by execve's string limit, and
        // PT_INTERP and the conventional path add one candidate each.
        let conf = rule == Rule::LdSoConf;
        let capped = conf && self.from_namespace >= MAX_CANDIDATES;
        if capped {
            self.limit.get_or_insert(CANDIDATE_LIMIT);
        }
        if self.aborted.is_some() || capped || !self.tried.insert(self.tried_hasher.hash_one(&path)) {
            return None;
        }
        if self.tried.len() <= MAX_CONSULTED {
            self.consulted.push(path.clone());
        } else {
            self.consulted = Vec::new();
        }
        self.from_namespace += usize::from(conf);
        // The search paths share one lookup budget; PT_INTERP and the
        // conventional path get their own, so they are always reached.
        let opened = match rule {
            Rule::Interp | Rule::Conventional => self.ns.open_file(&path),
            _ => self.ns.open_file_in(&path, &mut self.lookups),
        };
        let reason = match opened {
            Err(ExecError::NotFound { .. }) => {
                trace!(candidate = %lossy(&path), %rule, "not there");
                return None;
            }
            Err(e) if e.is_resource_shortage() => {
                debug!(candidate = %lossy(&path), %rule, error = %e, "search aborted");
                self.aborted = Some(e);
                return None;
            }
            Err(e) => {
                if e.is_over_lookup_budget() && !matches!(rule, Rule::Interp | Rule::Conventional) {
                    self.limit.get_or_insert(LOOKUP_LIMIT);
                }
                if e.errno() == libc::EACCES {
                    self.note_denied(&path);
                }
                e.to_string()
            }
            Ok(file) => match self.resolver.accept_ldso(&file, self.machine) {
                // The kernel opens an interpreter for execution: execute
                // permission for whose rights the search is made with
                // (read permission was needed to open it).
                Ok(()) if !self.ns.may_exec(&file) => {
                    self.note_denied(&path);
                    "no execute permission".into()
                }
                Ok(()) => return Some(Found { file, path, rule }),
                Err(reason) => reason,
            },
        };
        debug!(candidate = %lossy(&path), %rule, %reason, "skipped");
        self.rejected += 1;
        if self.skipped.len() < self.keep_skipped {
            self.skipped.push(Skipped { path, reason });
        }
        None
    }
}

/// Whether `entry` of `LD_LIBRARY_PATH` expands `$ORIGIN` (or `${ORIGIN}`).
fn uses_origin(entry: &[u8], tokens: &ldpath::Tokens<'_>) -> bool {
    // An entry holds no NUL (environment strings cannot): expanded with a
    // NUL for the origin, it holds one exactly when `$ORIGIN` was replaced.
    entry.windows(6).any(|w| w == b"ORIGIN")
        && ldpath::expand(
            entry,
            &ldpath::Tokens {
                origin: b"\0",
                ..*tokens
            },
        )
        .contains(&0)
}

impl<E> Search<'_, E> {
    /// `path` was refused for want of permission: if it is the `PT_INTERP`
    /// path (tried by whichever rule reached it first), the search's answer
    /// is EACCES when nothing else is found, as the kernel's would be.
    fn note_denied(&mut self, path: &[u8]) {
        self.denied = true;
        self.interp_denied |= path == self.ns.absolute(self.interp).as_slice();
    }
}

impl Resolver {
    /// The configured host dynamic linker, opened outside the namespace,
    /// if it can serve a `machine` program.
    fn host_ldso(&self, host: &[u8], machine: Machine) -> Result<Found, ExecError> {
        let bad = |reason: String| ExecError::BadHostLdso {
            path: os_path(host),
            reason,
        };
        let fd = rustix::fs::open(host, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| bad(e.to_string()))?;
        let file = Opened::from_fd(fd).map_err(|e| bad(e.to_string()))?;
        self.accept_ldso(&file, machine).map_err(bad)?;
        Ok(Found {
            file,
            path: host.to_vec(),
            rule: Rule::Configured,
        })
    }

    /// Whether `file` can be the dynamic linker of a `machine` program:
    /// not on a `noexec` mount (a property of the mount, so never cached),
    /// and [`elfinfo::check_ldso`] (cached by identity). `Err`: why not.
    pub(super) fn accept_ldso(&self, file: &Opened, machine: Machine) -> Result<(), String> {
        if file.on_noexec_mount() {
            return Err("on a noexec mount".into());
        }
        cached(&self.caches.ldso, (file.id, machine), || {
            elfinfo::check_ldso(file, machine, self.page_size)?;
            // The chainloader passes every check of a dynamic linker; at a
            // PT_INTERP path in a jail it is the stub that asked, never an answer.
            if elfinfo::is_chainloader(file) {
                return Err("the ldchain chainloader, not a dynamic linker".into());
            }
            Ok(())
        })
    }

    /// The namespace's ld.so.conf: the cached parse while every file and
    /// directory it was read from is unchanged, else a fresh one.
    fn ld_so_conf(&self, ns: &Namespace) -> Arc<LdSoConf> {
        let root = ns.root_key();
        let who = crate::creds::Credentials::digest(ns.credentials());
        let key = (root.0, root.1, self.config.ld_so_conf.clone(), who);
        if let Some(c) = lock(&self.caches.conf).get(&key) {
            if c.is_fresh(ns) {
                return c.clone();
            }
            debug!("ld.so.conf changed: re-reading");
        }
        let c = Arc::new(conf::load(ns, &self.config.ld_so_conf));
        insert_bounded(&self.caches.conf, key, c.clone());
        c
    }
}
