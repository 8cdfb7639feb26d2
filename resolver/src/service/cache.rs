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
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

use rustix::fs::inotify::{self, WatchFlags};

use super::InterpRequest;
use crate::bytepath::dirname;
use crate::elfinfo::Machine;
use crate::ns::Namespace;

/// Most answers kept (the cache is emptied when full).
const MAX_ENTRIES: usize = 1024;
/// Most bytes of request strings in one key: longer requests (a 100 KiB
/// `LD_LIBRARY_PATH`) are answered, not cached, so the cache stays small.
const MAX_KEY_BYTES: usize = 8192;
/// Most watches one cache holds (inotify watches count against the user's
/// `max_user_watches`, 8,192 on many systems); past that the cache starts
/// over with a new inotify instance.
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
}

impl Key {
    /// The key of `request`, if it is small enough to keep.
    pub fn of(request: &InterpRequest) -> Option<Key> {
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
            origin: dirname(&request.execfn).to_vec(),
        })
    }
}

/// The cache; see the module docs.
#[derive(Debug)]
pub struct AnswerCache {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    inotify: OwnedFd,
    answers: HashMap<Key, Arc<OwnedFd>>,
    watches: BTreeSet<i32>,
}

fn new_inotify() -> Option<OwnedFd> {
    inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()
}

impl AnswerCache {
    /// An empty cache, or None if inotify is unavailable (nothing is cached then).
    pub fn new() -> Option<AnswerCache> {
        Some(AnswerCache {
            state: Mutex::new(State {
                inotify: new_inotify()?,
                answers: HashMap::new(),
                watches: BTreeSet::new(),
            }),
        })
    }

    /// The cached answer for `key`, unless anything changed since.
    pub fn get(&self, key: &Key) -> Option<Arc<OwnedFd>> {
        let mut state = self.lock();
        if drain(&state.inotify) {
            state.answers.clear();
            return None;
        }
        state.answers.get(key).cloned()
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
            // Start over: a new instance drops every old watch at once.
            let Some(fresh) = new_inotify() else { return false };
            *state = State {
                inotify: fresh,
                answers: HashMap::new(),
                watches: BTreeSet::new(),
            };
            if paths.len() > MAX_WATCHES {
                return false;
            }
        }
        for path in paths {
            let fd = match ns.open_path(&path) {
                Ok(fd) => fd,
                // Its parent is watched: its creation will be seen.
                Err(crate::ExecError::NotFound { .. }) => continue,
                Err(_) => return false,
            };
            let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match inotify::add_watch(&state.inotify, proc_path.as_str(), flags) {
                Ok(wd) => {
                    state.watches.insert(wd);
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Remember `fd` as the answer for `key`.
    pub fn insert(&self, key: Key, fd: Arc<OwnedFd>) {
        let mut state = self.lock();
        if state.answers.len() >= MAX_ENTRIES {
            state.answers.clear();
        }
        state.answers.insert(key, fd);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
