//! The exec service: how programs *inside* a jail start other programs.
//!
//! The chainloader sits at the jail's `PT_INTERP` paths
//! (`/lib64/ld-linux-x86-64.so.2`, …). When the kernel runs it as a
//! program's interpreter, it connects to [`SERVICE_PATH`] inside the jail,
//! sends what the resolver needs — the program's machine and `PT_INTERP`,
//! `AT_EXECFN`, `AT_SECURE`, its working directory, its `LDSO_PATH` and
//! `LD_LIBRARY_PATH` — and receives one descriptor: the dynamic linker the
//! [`Resolver`] chose inside the sandbox's namespace, by the
//! same rules and limits as [`plan_exec`](Resolver::plan_exec). The
//! wire format is `chainloader::proto` (one definition for both sides).
//!
//! [`ExecService::start`] serves one listening socket with one I/O thread
//! (non-blocking, `epoll`: a slow or hostile client holds up no one) and a
//! few worker threads that run the resolver. Every connection has a deadline
//! and a size limit; a client that dies mid-request costs nothing more.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(unnameable_types)]

mod cache;
mod lock;
mod server;
mod source;

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use cache::{AnswerCache, Depends, Key, Standing};

/// The wire format, for other clients and servers.
pub use chainloader::proto;
pub use chainloader::proto::{ProtoError, RequestHeader, MAX_MESSAGE, SERVICE_PATH};
pub use server::{ExecService, Limits, Stats, STANDING_CHECK};
pub use source::LdsoSource;

use ldchain_resolver::watch::Traced;
pub use ldchain_resolver::{Credentials, InterpRequest, RequestError};
use ldchain_resolver::{ExecError, InterpAnswer, LdsoChoice, Namespace, Resolver};

/// The resolver over one sandbox's namespace, with an answer cache that
/// watches what each answer depended on: what `ldchain run` serves.
#[derive(Debug)]
pub struct NamespaceSource {
    resolver: Resolver,
    ns: Namespace,
    cache: Option<AnswerCache>,
}

impl NamespaceSource {
    /// Serve `ns` with `resolver`.
    pub fn new(resolver: Resolver, ns: Namespace) -> NamespaceSource {
        NamespaceSource {
            resolver,
            ns,
            cache: AnswerCache::new(),
        }
    }

    /// Leave standing answers in `dir`, the directory the jail sees at
    /// [`proto::ANSWER_DIR`]: a symbolic link per [`proto::answer_name`]
    /// (machine, `PT_INTERP`, the variables, and the working directory and
    /// `AT_EXECFN` when they may matter) to the chosen dynamic linker, for
    /// requests whose answer depends on nothing else (`standing_name`), so
    /// that the chainloader needs no round trip for them. The jail must see
    /// `dir` read-only (else the sandbox chooses its own answers — for its
    /// own unprivileged processes only, as secure-mode programs always ask),
    /// and nothing else may write there: every link in it is the service's
    /// and is removed when anything an answer depended on changes.
    pub fn with_answer_dir(self, dir: OwnedFd) -> NamespaceSource {
        if let Some(cache) = &self.cache {
            cache.publish_in(dir);
        }
        self
    }

    /// The descriptor whose last close is slow (the answer cache's inotify
    /// instance: an SRCU grace period, 8–16 ms measured): give it to a
    /// process that outlives this one to close, as `ldchain run` and
    /// `ldchain serve` do, and this process's exit does not wait for it.
    pub fn lasting(&self) -> Option<BorrowedFd<'_>> {
        self.cache.as_ref().map(AnswerCache::lasting)
    }

    /// `first` was found and everything it consulted is now watched: search
    /// again, so that a change made before the watches were in place is not
    /// cached, and cache that answer — left standing too, if it may be: its
    /// name then. Its generation was taken before the watches were placed:
    /// a change any of them reports from then on, even before this search
    /// begins, keeps the answer out (the search may have seen it where no
    /// watch was placed for it).
    fn search_again_and_cache(
        &self,
        cache: &AnswerCache,
        key: Key,
        request: &InterpRequest,
        ns: &Namespace,
        first: InterpAnswer,
        watched: Watched,
    ) -> Result<Answered, ExecError> {
        let Watched { traced, generation } = watched;
        drop(first.fd);
        let second = self.resolver.ldso_for(ns, request)?;
        let covered = second
            .consulted
            .as_ref()
            .is_some_and(|c| c.iter().all(|p| traced.paths.contains(p)));
        if !covered || second.depends_on_rights {
            return Ok(Answered::new(Arc::new(second.fd), second.choice));
        }
        let mut name = [0u8; proto::MAX_ANSWER_NAME];
        let len = standing_name(request, &second, self.resolver.config().secure, &mut name);
        let standing = len.map(|len| Standing {
            name: &name[..len],
            target: &second.choice.path,
        });
        let depends = depends(&second, request, traced);
        let (fd, stands) = cache.insert(key, request, depends, second.fd, generation, standing);
        let mut answered = Answered::new(fd, second.choice);
        if let (true, Some(len)) = (stands, len) {
            answered.stands = Some(name[..len].to_vec());
        }
        Ok(answered)
    }

    /// The answer to `request` from `client`: cached, or searched for,
    /// watched and cached (and left standing, if it may be).
    fn answer(&self, request: &InterpRequest, client: &Credentials) -> Result<Answered, ExecError> {
        let key = Key::of(request, client);
        let cache = self.cache.as_ref().zip(key.as_ref());
        // Another worker may have answered the same question meanwhile.
        if let Some(fd) = cache.and_then(|(cache, key)| cache.get(key, request)) {
            return Ok(Answered {
                fd,
                choice: None,
                stands: None,
            });
        }
        let ns = self.ns.clone().with_credentials(client.clone());
        let first = self.search(&ns, request)?;
        self.watch_and_cache(request, &ns, key, first)
    }

    /// `first` was found (with no watch relied on): watch what it
    /// consulted, then search again and cache that answer
    /// ([`search_again_and_cache`](Self::search_again_and_cache)); or hand
    /// out `first` if it cannot be watched.
    fn watch_and_cache(
        &self,
        request: &InterpRequest,
        ns: &Namespace,
        key: Option<Key>,
        first: InterpAnswer,
    ) -> Result<Answered, ExecError> {
        // The generation first: a directory the trace finds missing is
        // watched only through its parent, and its creation after the trace
        // (seen by the second search, unwatched) must keep that answer out.
        // An answer that depended on the client's rights is not cached: the
        // trace (with the service's rights) would watch where the client
        // may not look, and a change there, emptying the cache and the
        // standing answers, would tell the jail of it.
        let watched = match (&self.cache, &first.consulted) {
            (Some(cache), Some(consulted)) if key.is_some() && !first.depends_on_rights => {
                let generation = cache.generation();
                cache
                    .watch(&self.ns, consulted)
                    .map(|traced| Watched { traced, generation })
            }
            _ => None,
        };
        #[cfg(test)]
        tests::between_watches_and_search();
        match (&self.cache, key, watched) {
            (Some(cache), Some(key), Some(watched)) => {
                self.search_again_and_cache(cache, key, request, ns, first, watched)
            }
            _ => Ok(Answered::new(Arc::new(first.fd), first.choice)),
        }
    }

    /// Search for the answer to `request` from `client` now, with nothing
    /// watched yet, and leave it standing if it may stand, so that the
    /// process that makes this request first (the program `ldchain run`
    /// starts) need not wait for the service to start. Pass the result to
    /// [`prime`](Self::prime), which watches what the answer depended on
    /// and withdraws the link unless the watched answer replaces it. None
    /// when there is no cache, or no answer (the request will be refused
    /// when it is made).
    pub fn stand_ahead(&self, request: &InterpRequest, client: &Credentials) -> Option<Ahead> {
        let cache = self.cache.as_ref()?;
        let ns = self.ns.clone().with_credentials(client.clone());
        let first = self.resolver.ldso_for(&ns, request).ok()?;
        let mut name = [0u8; proto::MAX_ANSWER_NAME];
        let name = standing_name(request, &first, self.resolver.config().secure, &mut name)
            .map(|len| &name[..len])
            .filter(|name| {
                cache.publish_ahead(&Standing {
                    name,
                    target: &first.choice.path,
                })
            })
            .map(<[u8]>::to_vec);
        Some(Ahead { first, name })
    }

    /// Cache the answer [`stand_ahead`](Self::stand_ahead) found as the
    /// service would — what it consulted watched, searched for again,
    /// cached, left standing if it may — before the service starts, so
    /// that the first process to ask finds it ready; then withdraw the
    /// early link unless that answer replaced it (it was found before
    /// anything was watched: a change since may have made it wrong).
    pub fn prime(&self, request: &InterpRequest, client: &Credentials, ahead: Ahead) {
        let ns = self.ns.clone().with_credentials(client.clone());
        let answered = self.watch_and_cache(request, &ns, Key::of(request, client), ahead.first);
        let stands = answered.ok().and_then(|a| a.stands);
        if let (Some(cache), Some(name)) = (&self.cache, ahead.name) {
            if stands.as_ref() != Some(&name) {
                cache.withdraw(&name);
            }
        }
    }

    /// One search, with the client's rights; if the process is out of
    /// descriptors, the cache's are given back and the search made once
    /// more (an exec matters more than a cached answer).
    fn search(&self, ns: &Namespace, request: &InterpRequest) -> Result<InterpAnswer, ExecError> {
        match self.resolver.ldso_for(ns, request) {
            Err(e) if matches!(e.errno(), libc::EMFILE | libc::ENFILE) && self.cache.is_some() => {
                tracing::debug!(error = %e, "exec service: out of descriptors; emptying the answer cache");
                if let Some(cache) = &self.cache {
                    cache.evict();
                }
                self.resolver.ldso_for(ns, request)
            }
            r => r,
        }
    }
}

/// A standing answer left by [`NamespaceSource::stand_ahead`], for
/// [`NamespaceSource::prime`] to confirm or withdraw.
#[derive(Debug)]
pub struct Ahead {
    /// The answer, found with nothing watched.
    first: InterpAnswer,
    /// The name it was left standing under, if it may stand.
    name: Option<Vec<u8>>,
}

/// What an answer's first search consulted, now watched, and the cache's
/// generation from before the watches were placed.
struct Watched {
    traced: Traced,
    generation: u64,
}

/// One answer: the descriptor, the choice when it was searched for now
/// (not taken from the cache), and the name it was left standing under.
struct Answered {
    fd: Arc<OwnedFd>,
    choice: Option<LdsoChoice>,
    stands: Option<Vec<u8>>,
}

impl Answered {
    fn new(fd: Arc<OwnedFd>, choice: LdsoChoice) -> Answered {
        Answered {
            fd,
            choice: Some(choice),
            stands: None,
        }
    }
}

/// The name `answer` may be left standing under (its length in `name`):
/// [`proto::answer_name`] of the request, which holds its variables, and
/// its working directory and `AT_EXECFN` when [`proto::answer_needs`] says
/// so. None when the answer must not stand: in secure mode (the request's
/// or the service's: those processes always ask), when it depended on the
/// client's rights, or on the working directory or the program's directory
/// while the name does not hold them — or when the name would not fit.
fn standing_name(
    request: &InterpRequest,
    answer: &InterpAnswer,
    secure: bool,
    name: &mut [u8; proto::MAX_ANSWER_NAME],
) -> Option<usize> {
    let vars = [request.ldso_path.as_deref(), request.ld_library_path.as_deref()];
    let needs = proto::answer_needs(vars);
    let (cwd, origin) = dependence(answer, request);
    let held = (!cwd || needs & proto::NEEDS_CWD != 0) && (!origin || needs & proto::NEEDS_EXECFN != 0);
    if request.secure || secure || answer.depends_on_rights || !held {
        return None;
    }
    let (class, machine) = request.machine.ident();
    proto::answer_name(
        class,
        machine,
        &request.interp,
        vars,
        &request.cwd,
        &request.execfn,
        name,
    )
}

/// What `answer` depended on besides the request's key: the working
/// directory if a relative candidate was tried (or `$ORIGIN` came from a
/// relative `AT_EXECFN`), the program's directory if `$ORIGIN` was expanded.
fn depends(answer: &InterpAnswer, request: &InterpRequest, traced: Traced) -> Depends {
    let (cwd, origin) = dependence(answer, request);
    Depends { traced, cwd, origin }
}

/// Whether `answer` depended on the working directory, and on the
/// program's directory (see [`depends`]).
fn dependence(answer: &InterpAnswer, request: &InterpRequest) -> (bool, bool) {
    let cwd = answer.depends_on_cwd || (answer.depends_on_origin && !request.execfn.starts_with(b"/"));
    (cwd, answer.depends_on_origin)
}

impl LdsoSource for NamespaceSource {
    fn ldso(&self, request: &InterpRequest, client: &Credentials) -> Result<Arc<OwnedFd>, ExecError> {
        let answered = self.answer(request, client)?;
        if let Some(choice) = &answered.choice {
            tracing::info!(ldso = %ldchain_resolver::escape::for_terminal(&choice.path), rule = %choice.rule,
                flavor = %choice.flavor, "exec service");
        }
        Ok(answered.fd)
    }

    /// Never waits: while a worker holds the cache, the requests go to a
    /// worker (which takes the answer from the cache when it can).
    fn cached(&self, requests: &[(&InterpRequest, &Credentials)]) -> Vec<Option<Arc<OwnedFd>>> {
        let Some(cache) = &self.cache else {
            return vec![None; requests.len()];
        };
        cache.try_get_batch(
            requests
                .iter()
                .map(|&(request, client)| (Key::of(request, client), request)),
        )
    }

    fn changes(&self) -> Option<BorrowedFd<'_>> {
        self.cache.as_ref().map(AnswerCache::changes)
    }

    fn refresh(&self) {
        if let Some(cache) = &self.cache {
            cache.refresh();
        }
    }

    fn check_standing(&self, wait: bool) -> Option<bool> {
        match &self.cache {
            Some(cache) => cache.check_standing(wait),
            None => Some(false),
        }
    }
}

#[cfg(test)]
mod tests;
