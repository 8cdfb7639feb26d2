//! Answers the service need not recompute: the ld.so for a request, kept
//! open, for as long as nothing the answer depended on has changed.
//!
//! An answer depends on the paths the search consulted (each candidate
//! tried, each file and directory ld.so.conf was read from). Before an
//! answer is cached, each of them is traced by the resolver's
//! [`Changes`]: an inotify watch on every directory its lookup passes
//! through, symbolic links followed (so a rename, a new file, a repointed
//! link or a change under the link's target, a chmod or a write is seen),
//! and on the file at its end; and the mount table is watched. Then the
//! search is run again and *that* answer is cached: a change between the
//! two searches is seen by the second one, a change after the watches by
//! the watches. Any event empties the whole cache. Each regular file the
//! answer depended on is held open and its identity compared on every hit
//! (a write through a mapping sends no event); the hits of a batch of
//! requests, all read before the cache is asked, share one look for
//! events and one comparison per answer ([`AnswerCache::try_get_batch`]).
//! The cache holds one open file per answer; the server hands each client
//! a description of its own (`server::Handout`).
//!
//! An answer is kept under what it depended on: the request's machine,
//! `PT_INTERP`, secure flag and variables, the client's credentials, and
//! the working or program directory only if the search used them. The
//! cache holds one descriptor per distinct file (device, inode), however
//! many answers name it, and an answer needing more than
//! [`MAX_WATCHES_PER_ANSWER`] watches is not cached at all.
//!
//! Mounts are seen in the service's own mount namespace (where it looks
//! files up): a namespace whose root is mounted in another is not cached.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs as rfs;

use ldchain_resolver::watch::{self, Changes, Traced, Untraceable};
use ldchain_resolver::{Credentials, FileId, InterpRequest, Machine, Namespace};

/// Most answers kept (the cache is emptied when full).
const MAX_ENTRIES: usize = 1024;
/// Most bytes of request strings in one key: longer requests (a 100 KiB
/// `LD_LIBRARY_PATH`) are answered, not cached, so the cache stays small.
const MAX_KEY_BYTES: usize = 8192;
/// Most watches one answer may need (each path it consulted and every
/// directory above them). An answer that needs more is answered, not
/// cached — counted before anything is allocated or watched, so such a
/// request costs the cache nothing and empties no standing answer.
pub const MAX_WATCHES_PER_ANSWER: usize = 256;

/// What every answer to a request depends on. The working directory and
/// the program's directory are not here: only some answers depend on them
/// ([`Variant`]), and keying every answer by them would keep one entry per
/// directory a program is started from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    machine: Machine,
    interp: Vec<u8>,
    secure: bool,
    ldso_path: Option<Vec<u8>>,
    ld_library_path: Option<Vec<u8>>,
    /// Whose rights the answer was searched with: another client may not
    /// be able to use it, or may find another one first.
    client: Credentials,
}

impl Key {
    /// The key of `request` from `client`, if it is small enough to keep.
    pub fn of(request: &InterpRequest, client: &Credentials) -> Option<Key> {
        let size = request.interp.len()
            + request.cwd.len()
            + request.execfn.len()
            + request.ldso_path.as_ref().map_or(0, Vec::len)
            + request.ld_library_path.as_ref().map_or(0, Vec::len)
            + 4 * client.groups.len();
        (size <= MAX_KEY_BYTES).then(|| Key {
            machine: request.machine,
            interp: request.interp.clone(),
            secure: request.secure,
            ldso_path: request.ldso_path.clone(),
            ld_library_path: request.ld_library_path.clone(),
            client: client.clone(),
        })
    }
}

/// One cached answer under a [`Key`], with what else it depended on.
#[derive(Debug)]
struct Variant {
    /// The working directory, if the search tried a relative candidate.
    cwd: Option<Vec<u8>>,
    /// The program's directory (`AT_EXECFN`'s), if the search expanded
    /// `$ORIGIN`.
    origin: Option<Vec<u8>>,
    fd: Arc<OwnedFd>,
    /// Each regular file the answer depended on, with its identity then.
    files: Vec<(Arc<OwnedFd>, FileId)>,
    /// Its number, unique for the cache's life: a batch compares each
    /// variant's files once ([`AnswerCache::try_get_batch`]).
    serial: u64,
}

impl Variant {
    /// Whether this answer holds for `request`.
    fn fits(&self, request: &InterpRequest) -> bool {
        self.cwd.as_ref().is_none_or(|c| *c == request.cwd)
            && self.origin.as_deref().is_none_or(|o| o == request.origin())
    }
}

/// What an answer depended on besides its [`Key`] (`InterpAnswer`'s facts).
#[derive(Debug)]
pub struct Depends {
    /// The working directory.
    pub cwd: bool,
    /// The program's directory.
    pub origin: bool,
    /// The files it read or checked, and the paths watched for it.
    pub traced: Traced,
}

/// The cache; see the module docs.
#[derive(Debug)]
pub struct AnswerCache {
    /// What the server waits on: readable when anything watched or the
    /// mount table changed ([`Changes::waitable`]).
    wait: OwnedFd,
    /// The watches' inotify instance, shared with `state`'s [`Changes`]:
    /// see [`lasting`](AnswerCache::lasting).
    instance: Arc<OwnedFd>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    answers: HashMap<Key, Vec<Variant>>,
    /// How many variants `answers` holds in all.
    entries: usize,
    /// The next [`Variant::serial`].
    serials: u64,
    /// One open file per distinct file (device, inode) the answers name:
    /// many answers (per client, per directory) share it, so the cache
    /// holds at most one descriptor per dynamic linker.
    files: HashMap<(u64, u64), Arc<OwnedFd>>,
    /// The files answers depended on, held open to compare on each hit.
    held: HashMap<(u64, u64), Arc<OwnedFd>>,
    /// The watches (one instance for the cache's life).
    changes: Changes,
    /// Bumped each time the answers are dropped: an answer searched for
    /// under an older generation may be stale and is not kept.
    generation: u64,
    /// Where standing answers are left (`proto::ANSWER_DIR` as the jail
    /// sees it), and the names of the links there.
    answer_dir: Option<OwnedFd>,
    published: Vec<Vec<u8>>,
}

/// A standing answer to leave in the answer directory: the link's name
/// (`proto::answer_name`) and the dynamic linker's path in the namespace.
#[derive(Debug)]
pub struct Standing<'a> {
    /// The link's name.
    pub name: &'a [u8],
    /// What it points at.
    pub target: &'a [u8],
}

/// Run once, by the next thread to trace (any thread), while it holds the
/// cache: a test's hook.
#[cfg(test)]
pub(crate) static WHILE_TRACING: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>> = std::sync::Mutex::new(None);

#[cfg(test)]
fn while_tracing() {
    let hook = crate::lock::lock(&WHILE_TRACING).take();
    if let Some(hook) = hook {
        hook();
    }
}

/// The temporary name a link is made under before it is renamed into
/// place (answer names start with a hex digit, never a dot).
const NEW_LINK: &str = ".new";

impl AnswerCache {
    /// An empty cache, or None if inotify is unavailable (nothing is cached then).
    pub fn new() -> Option<AnswerCache> {
        let mut changes = Changes::new()?;
        Some(AnswerCache {
            wait: changes.waitable().ok()?,
            instance: changes.instance(),
            state: Mutex::new(State {
                answers: HashMap::new(),
                entries: 0,
                serials: 0,
                files: HashMap::new(),
                held: HashMap::new(),
                changes,
                generation: 0,
                answer_dir: None,
                published: Vec::new(),
            }),
        })
    }

    /// Leave standing answers in `dir` from now on (its entries are the
    /// service's: every link there is removed when the cache is emptied).
    pub fn publish_in(&self, dir: OwnedFd) {
        let mut state = self.lock();
        state.clear();
        state.answer_dir = Some(dir);
    }

    /// What to wait on: readable when something an answer depended on,
    /// or the mount table, has changed ([`refresh`](Self::refresh) then).
    pub fn changes(&self) -> BorrowedFd<'_> {
        self.wait.as_fd()
    }

    /// The descriptor whose last close is slow: the inotify instance's
    /// waits for an SRCU grace period ([`Changes::instance`]).
    pub fn lasting(&self) -> BorrowedFd<'_> {
        self.instance.as_fd()
    }

    /// Drop every answer: [`changes`](Self::changes) was readable. The
    /// cache's own look at the changes is made too, so that what the wait
    /// reported is not reported again to the next request (the wait and
    /// the look see the mount table through open files of their own).
    pub fn refresh(&self) {
        let mut state = self.lock();
        let _ = state.changes.changed();
        state.changes.reported();
        state.clear();
    }

    /// Compare every file the answers depended on with what it was, and
    /// drop every answer, with every link left standing, if one changed:
    /// a write through a mapping sends no event, and a standing answer is
    /// taken without asking, so no hit would ever compare it. Returns
    /// whether answers still stand (then call again later). Without
    /// `wait`, None while another thread uses the cache (a worker may hold
    /// it for milliseconds while it traces a new answer's paths); with
    /// `wait`, it waits for that thread.
    pub fn check_standing(&self, wait: bool) -> Option<bool> {
        let mut state = if wait {
            self.lock()
        } else {
            crate::lock::try_lock(&self.state)?
        };
        if state.published.is_empty() {
            return Some(false);
        }
        // Each file once, however many answers hold it with the same identity.
        let mut seen = std::collections::HashSet::new();
        let changed = state
            .answers
            .values()
            .flatten()
            .flat_map(|v| &v.files)
            .filter(|(fd, id)| seen.insert((Arc::as_ptr(fd), *id)))
            .any(|file| !watch::unchanged([file]));
        if changed {
            state.clear();
        }
        Some(!state.published.is_empty())
    }

    /// The current generation (after dropping stale answers): pass it to
    /// [`insert`](Self::insert) with an answer searched for from now on.
    pub fn generation(&self) -> u64 {
        self.fresh().generation
    }

    /// The cached answer for `request` (whose key is `key`), unless
    /// anything changed since.
    pub fn get(&self, key: &Key, request: &InterpRequest) -> Option<Arc<OwnedFd>> {
        self.fresh().get(key, request, &mut Vec::new())
    }

    /// [`get`](Self::get) for each of `requests`, if no other thread is
    /// using the cache (all None at once if one is: a worker may hold it
    /// for milliseconds while it traces a new answer's paths, up to 256
    /// paths of 256 steps, and the I/O thread must not wait). A request
    /// with no key (too large to keep) has no answer here.
    ///
    /// The cache is looked at once for all of them: one `poll` for
    /// events, and each answer's held files compared once however many of
    /// the requests it serves. That is as fresh as a look per request
    /// *if every request was read whole before this call*: a change made
    /// before a client sent its request is then reported by now.
    pub fn try_get_batch<'a>(
        &self,
        requests: impl ExactSizeIterator<Item = (Option<Key>, &'a InterpRequest)>,
    ) -> Vec<Option<Arc<OwnedFd>>> {
        let Some(state) = crate::lock::try_lock(&self.state) else {
            return vec![None; requests.len()];
        };
        let mut state = Self::freshened(state);
        let mut compared = Vec::new();
        requests
            .map(|(key, request)| state.get(&key?, request, &mut compared))
            .collect()
    }

    /// Drop every answer and close every descriptor the cache holds (the
    /// process ran out of descriptors: an exec matters more than a cache).
    pub fn evict(&self) {
        self.lock().clear();
    }

    /// Watch everything `consulted` depends on (see the module docs);
    /// None if that could not be done completely (then the answer must not
    /// be cached), else the files to compare on each hit. At most
    /// [`MAX_WATCHES_PER_ANSWER`] new watches: a wider answer is given up
    /// without emptying the cache.
    pub fn watch(&self, ns: &Namespace, consulted: &[Vec<u8>]) -> Option<Traced> {
        if consulted.len() > MAX_WATCHES_PER_ANSWER || consulted.iter().any(|p| !p.starts_with(b"/")) {
            return None;
        }
        let mut state = self.lock();
        #[cfg(test)]
        while_tracing();
        let mut traced = Traced::default();
        match state.changes.trace(ns, consulted, &mut traced, MAX_WATCHES_PER_ANSWER) {
            Ok(()) => Some(traced),
            Err(Untraceable::TooManyWatches) => {
                // Start over: every answer goes with the watches it relied on.
                state.changes.reset();
                state.clear();
                None
            }
            Err(Untraceable::No) => None,
        }
    }

    /// Remember `fd` as the answer for `request` (whose key is `key`),
    /// which depended on `depends` too — unless the answers were dropped
    /// since `generation` (something changed while it was searched for) —
    /// and leave `standing` in the answer directory. Returns the
    /// descriptor to hand out: the one already held for the same file
    /// (device and inode), if any, else `fd`; and whether `standing` now
    /// stands.
    pub fn insert(
        &self,
        key: Key,
        request: &InterpRequest,
        depends: Depends,
        fd: OwnedFd,
        generation: u64,
        standing: Option<Standing<'_>>,
    ) -> (Arc<OwnedFd>, bool) {
        let Ok(st) = rfs::fstat(&fd) else {
            return (Arc::new(fd), false);
        };
        let mut state = self.fresh();
        if state.generation != generation {
            return (Arc::new(fd), false);
        }
        if state.entries >= MAX_ENTRIES {
            // Not stale, only many: this one is still kept.
            state.clear();
        }
        let fd = state
            .files
            .entry((st.st_dev, st.st_ino))
            .or_insert_with(|| Arc::new(fd))
            .clone();
        let files = depends
            .traced
            .files
            .into_iter()
            .map(|(at, (file, id))| (state.held.entry(at).or_insert(file).clone(), id))
            .collect();
        let variant = Variant {
            cwd: depends.cwd.then(|| request.cwd.clone()),
            origin: depends.origin.then(|| request.origin().to_vec()),
            fd: fd.clone(),
            files,
            serial: state.serials,
        };
        state.serials += 1;
        let variants = state.answers.entry(key).or_default();
        // Another worker may have cached the same answer meanwhile.
        if !variants.iter().any(|v| v.fits(request)) {
            variants.push(variant);
            state.entries += 1;
        }
        let stands = standing.is_some_and(|standing| state.publish(&standing));
        (fd, stands)
    }

    /// Leave `standing` in the answer directory now, ahead of any answer
    /// cached for it: whether it stands. Like every published link it goes
    /// when anything watched changes; [`withdraw`](Self::withdraw) it if the
    /// answer, once searched for and watched, does not replace it.
    pub fn publish_ahead(&self, standing: &Standing<'_>) -> bool {
        self.fresh().publish(standing)
    }

    /// Remove the standing answer `name`, if it stands.
    pub fn withdraw(&self, name: &[u8]) {
        let mut state = self.lock();
        let Some(at) = state.published.iter().position(|n| n == name) else {
            return;
        };
        state.published.swap_remove(at);
        if let Some(dir) = &state.answer_dir {
            let _ = rfs::unlinkat(dir, name, rfs::AtFlags::empty());
        }
    }

    /// The state, every answer dropped first if anything changed since the
    /// last look.
    fn fresh(&self) -> std::sync::MutexGuard<'_, State> {
        Self::freshened(self.lock())
    }

    /// `state`, every answer dropped first if anything changed.
    fn freshened(mut state: std::sync::MutexGuard<'_, State>) -> std::sync::MutexGuard<'_, State> {
        if state.changes.changed() {
            state.clear();
        }
        state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }
}

impl State {
    /// The answer for `request` under `key`, unless a file it depended on
    /// changed (then every answer is dropped). `compared`: the variants
    /// whose files were compared since the caller looked for events; they
    /// are not compared again.
    fn get(&mut self, key: &Key, request: &InterpRequest, compared: &mut Vec<u64>) -> Option<Arc<OwnedFd>> {
        let variant = self.answers.get(key)?.iter().find(|v| v.fits(request))?;
        if !compared.contains(&variant.serial) {
            if !watch::unchanged(&variant.files) {
                // Changed in a way no event reports (a write through a mapping).
                self.clear();
                return None;
            }
            compared.push(variant.serial);
        }
        Some(variant.fd.clone())
    }

    /// Drop every answer, and every link left standing.
    fn clear(&mut self) {
        self.answers.clear();
        self.entries = 0;
        self.files.clear();
        self.held.clear();
        self.generation += 1;
        if let Some(dir) = &self.answer_dir {
            for name in self.published.drain(..) {
                let _ = rfs::unlinkat(dir, name.as_slice(), rfs::AtFlags::empty());
            }
        }
    }

    /// Leave a link `name` -> `target` in the answer directory, replacing
    /// any link of that name at once (a process opening it meanwhile sees
    /// the old answer or the new one): whether it stands.
    fn publish(&mut self, standing: &Standing<'_>) -> bool {
        let Some(dir) = &self.answer_dir else { return false };
        let _ = rfs::unlinkat(dir, NEW_LINK, rfs::AtFlags::empty());
        let made = rfs::symlinkat(standing.target, dir, NEW_LINK)
            .and_then(|()| rfs::renameat(dir, NEW_LINK, dir, standing.name));
        match made {
            Ok(()) => {
                if !self.published.iter().any(|n| n == standing.name) {
                    self.published.push(standing.name.to_vec());
                }
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "exec service: cannot leave a standing answer");
                false
            }
        }
    }
}
