//! Answers the service need not recompute: the ld.so for a request, kept
//! open, for as long as nothing the answer depended on has changed.
//!
//! An answer depends on the paths the search consulted (each candidate
//! tried, each file and directory ld.so.conf was read from). Before an
//! answer is cached, an inotify watch is put on every one of them and on
//! every directory above them (so that a rename, a new file, a repointed
//! symbolic link, a chmod or a write is seen), then the search is run again
//! and *that* answer is cached: a change between the two searches is seen
//! by the second one, a change after the watches by the watches. Any event
//! empties the whole cache. The descriptor handed out is the same open file
//! each time; the chainloader only `pread`s it, so its offset is never
//! shared state.
//!
//! Not seen: a mount or unmount inside the namespace (the sandbox cannot
//! mount; the server that can must empty the cache itself), and a change in
//! a directory that only a symbolic link's *target* path passes through.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs as rfs;
use rustix::fs::inotify::{self, WatchFlags};

use super::{Credentials, InterpRequest};
use ldchain_resolver::{Machine, Namespace};

/// Most answers kept (the cache is emptied when full).
const MAX_ENTRIES: usize = 1024;
/// Most bytes of request strings in one key: longer requests (a 100 KiB
/// `LD_LIBRARY_PATH`) are answered, not cached, so the cache stays small.
const MAX_KEY_BYTES: usize = 8192;
/// Most watches one cache holds (inotify watches count against the user's
/// `max_user_watches`, 8,192 on many systems); past that every watch is
/// removed and the cache starts over.
const MAX_WATCHES: usize = 1024;

/// Everything in a request that can change the answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    machine: Machine,
    interp: Vec<u8>,
    secure: bool,
    ldso_path: Option<Vec<u8>>,
    ld_library_path: Option<Vec<u8>>,
    cwd: Vec<u8>,
    /// The program's directory (`$ORIGIN`).
    origin: Vec<u8>,
    /// Whose rights the answer was searched with: another client may not
    /// be able to use it, or may find another one first.
    client: Credentials,
}

impl Key {
    /// The key of `request`, if it is small enough to keep.
    pub fn of(request: &InterpRequest, client: &Credentials) -> Option<Key> {
        let size = request.interp.len()
            + request.cwd.len()
            + request.execfn.len()
            + request.ldso_path.as_ref().map_or(0, Vec::len)
            + request.ld_library_path.as_ref().map_or(0, Vec::len);
        (size <= MAX_KEY_BYTES).then(|| Key {
            machine: request.machine,
            interp: request.interp.clone(),
            secure: request.secure,
            ldso_path: request.ldso_path.clone(),
            ld_library_path: request.ld_library_path.clone(),
            cwd: request.cwd.clone(),
            origin: request.origin().to_vec(),
            client: client.clone(),
        })
    }
}

/// The cache; see the module docs.
#[derive(Debug)]
pub struct AnswerCache {
    /// One instance for the cache's life (watches are removed, never the
    /// instance replaced), so the server can wait on it.
    inotify: OwnedFd,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    answers: HashMap<Key, Arc<OwnedFd>>,
    watches: BTreeSet<i32>,
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

/// The temporary name a link is made under before it is renamed into
/// place (answer names start with a hex digit, never a dot).
const NEW_LINK: &str = ".new";

impl AnswerCache {
    /// An empty cache, or None if inotify is unavailable (nothing is cached then).
    pub fn new() -> Option<AnswerCache> {
        let inotify = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        Some(AnswerCache {
            inotify,
            state: Mutex::new(State {
                answers: HashMap::new(),
                watches: BTreeSet::new(),
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

    /// The inotify descriptor: readable when something an answer depended
    /// on has changed ([`refresh`](Self::refresh) then).
    pub fn changes(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Drop every answer if anything changed since the last look.
    pub fn refresh(&self) {
        drop(self.fresh());
    }

    /// The current generation (after dropping stale answers): pass it to
    /// [`insert`](Self::insert) with an answer searched for from now on.
    pub fn generation(&self) -> u64 {
        self.fresh().generation
    }

    /// The cached answer for `key`, unless anything changed since.
    pub fn get(&self, key: &Key) -> Option<Arc<OwnedFd>> {
        self.fresh().answers.get(key).cloned()
    }

    /// Watch everything `consulted` depends on; false if that could not be
    /// done completely (then the answer must not be cached).
    pub fn watch(&self, ns: &Namespace, consulted: &[Vec<u8>]) -> bool {
        let mut paths = BTreeSet::new();
        for p in consulted {
            if !p.starts_with(b"/") {
                return false;
            }
            paths.insert(b"/".to_vec());
            for (i, &c) in p.iter().enumerate().skip(1) {
                if c == b'/' {
                    paths.insert(p[..i].to_vec());
                }
            }
            paths.insert(p.clone());
        }
        let flags = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::MODIFY
            | WatchFlags::ATTRIB
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF;
        let mut state = self.lock();
        if state.watches.len() + paths.len() > MAX_WATCHES {
            // Start over: every answer goes with the watches it relied on.
            for wd in std::mem::take(&mut state.watches) {
                let _ = inotify::remove_watch(&self.inotify, wd);
            }
            state.clear();
            if paths.len() > MAX_WATCHES {
                return false;
            }
        }
        for path in paths {
            let fd = match ns.open_path(&path) {
                Ok(fd) => fd,
                // Its parent is watched: its creation will be seen.
                Err(ldchain_resolver::ExecError::NotFound { .. }) => continue,
                Err(_) => return false,
            };
            let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match inotify::add_watch(&self.inotify, proc_path.as_str(), flags) {
                Ok(wd) => {
                    state.watches.insert(wd);
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Remember `fd` as the answer for `key` — unless the answers were
    /// dropped since `generation` (something changed while it was searched
    /// for) — and leave `standing` in the answer directory.
    pub fn insert(&self, key: Key, fd: Arc<OwnedFd>, generation: u64, standing: Option<Standing<'_>>) {
        let mut state = self.fresh();
        if state.generation != generation {
            return;
        }
        if state.answers.len() >= MAX_ENTRIES {
            // Not stale, only many: this one is still kept.
            state.clear();
        }
        state.answers.insert(key, fd);
        if let Some(standing) = standing {
            state.publish(&standing);
        }
    }

    /// The state, every answer dropped first if anything changed since the
    /// last look.
    fn fresh(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.lock();
        if drain(&self.inotify) {
            state.clear();
        }
        state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::lock::lock(&self.state)
    }
}

impl State {
    /// Drop every answer, and every link left standing.
    fn clear(&mut self) {
        self.answers.clear();
        self.generation += 1;
        if let Some(dir) = &self.answer_dir {
            for name in self.published.drain(..) {
                let _ = rfs::unlinkat(dir, name.as_slice(), rfs::AtFlags::empty());
            }
        }
    }

    /// Leave a link `name` -> `target` in the answer directory, replacing
    /// any link of that name at once (a process opening it meanwhile sees
    /// the old answer or the new one).
    fn publish(&mut self, standing: &Standing<'_>) {
        let Some(dir) = &self.answer_dir else { return };
        let _ = rfs::unlinkat(dir, NEW_LINK, rfs::AtFlags::empty());
        let made = rfs::symlinkat(standing.target, dir, NEW_LINK)
            .and_then(|()| rfs::renameat(dir, NEW_LINK, dir, standing.name));
        match made {
            Ok(()) => self.published.push(standing.name.to_vec()),
            Err(e) => tracing::debug!(error = %e, "exec service: cannot leave a standing answer"),
        }
    }
}

/// Read every pending event; true if there was any.
fn drain(inotify: &OwnedFd) -> bool {
    let mut buf = [0u8; 4096];
    let mut any = false;
    while let Ok(n) = rustix::io::read(inotify, &mut buf) {
        if n == 0 {
            break;
        }
        any = true;
    }
    any
}
