//! Warm plans: a plan whose inputs did not change is answered from the
//! last one, with no lookup, no read and no search.
//!
//! A plan is kept under everything the caller gave that it depends on
//! ([`Key`]: the namespace — its root directory *and* mount —, whose
//! rights, the working directory, the path, `LDSO_PATH` and
//! `LD_LIBRARY_PATH`), with what the namespace gave kept current by a
//! [`Changes`]: every path the plan consulted (each script and program,
//! each ld.so candidate, each ld.so.conf file and globbed directory) is
//! traced and watched, the mount table is watched, and each regular file
//! at a traced path's end is held open and its identity compared again on
//! every use. As the exec service's cache does, a plan is kept only from
//! a *second* plan made after the watches are in place, and only if
//! nothing was reported since before the first: a change between the two
//! is seen by the second plan or by the watches.
//!
//! A warm plan then costs one `poll` (inotify and the mount table), one
//! `fstat` per held file, and one `open` of `/proc/self/fd/N`: the
//! loaded file is reopened for reading — a new open file description,
//! its read permission checked again as whose rights the plan is made
//! with — never a shared descriptor handed to two sandboxes.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::creds::Credentials;
use crate::elfinfo::Machine;
use crate::fileid::FileId;
use crate::ns::Namespace;
use crate::parse::ldpath;
use crate::procfd::ProcFd;
use crate::watch::{self, Changes, Traced, Untraceable};

use super::exec_plan::{Kind, LdsoChoice, ScriptHop, Skipped};

/// Most plans kept (emptied when full).
pub const MAX_PLANS: usize = 1024;
/// Most files held open for all kept plans (shared by device and inode);
/// past it every plan is dropped.
pub const MAX_HELD: usize = 1024;
/// Most inotify watches one plan may add: a plan that needs more is made,
/// not kept.
pub const MAX_WATCHES_PER_PLAN: usize = 256;
/// Most bytes of a key's strings: a longer request is planned, not kept.
pub const MAX_KEY_BYTES: usize = 8192;

/// What a plan depends on that the caller gave.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Root (device, inode) and the root's mount id: the same directory
    /// mounted elsewhere may have other mounts below it.
    root: (u64, u64, u64),
    /// Whose rights: a client's; None, the calling thread's own, taken to
    /// be the same at every plan (as the resolver's other caches take them).
    who: Option<Credentials>,
    cwd: Vec<u8>,
    path: Vec<u8>,
    ldso_path: Option<Vec<u8>>,
    ld_library_path: Option<Vec<u8>>,
}

impl Key {
    /// The key of a plan of `path` in `ns` with `envp`, if small enough.
    pub fn of<E: AsRef<[u8]>>(ns: &Namespace, path: &[u8], envp: &[E]) -> Option<Key> {
        let ldso_path = ldpath::getenv(envp, b"LDSO_PATH").map(<[u8]>::to_vec);
        let ld_library_path = ldpath::getenv(envp, b"LD_LIBRARY_PATH").map(<[u8]>::to_vec);
        let who = ns.credentials().cloned();
        let size = path.len()
            + ns.cwd().len()
            + ldso_path.as_ref().map_or(0, Vec::len)
            + ld_library_path.as_ref().map_or(0, Vec::len)
            + who.as_ref().map_or(0, |w| 4 * w.groups.len());
        let (dev, ino) = ns.root_key();
        (size <= MAX_KEY_BYTES).then(|| Key {
            root: (dev, ino, ns.root_mount()),
            who,
            cwd: ns.cwd().to_vec(),
            path: path.to_vec(),
            ldso_path,
            ld_library_path,
        })
    }
}

/// A kept plan: its facts, and how to make its exec again.
#[derive(Debug, Clone)]
pub struct Kept {
    pub kind: Kind,
    /// The program's real path, and the path it was reached by.
    pub program: Vec<u8>,
    pub given: Vec<u8>,
    pub machine: Machine,
    pub scripts: Vec<ScriptHop>,
    pub ldso: Option<LdsoChoice>,
    pub skipped: Vec<Skipped>,
    pub secure: bool,
    /// The file loaded (the dynamic linker, or the static program), open,
    /// and its identity.
    pub image: Arc<OwnedFd>,
    pub image_id: FileId,
    /// Every other regular file the plan read or checked, with its identity.
    pub files: Vec<(Arc<OwnedFd>, FileId)>,
}

/// A kept plan found for a key.
#[derive(Debug)]
pub struct Hit {
    pub kept: Arc<Kept>,
    /// This process's `/proc/self/fd`.
    proc_fd: Arc<ProcFd>,
}

impl Hit {
    /// The loaded file opened again for reading — a new open file
    /// description of the very inode held, read permission checked now —
    /// if every file the plan read or checked (the loaded one included) is
    /// still what it was: one `fstat` each. None otherwise.
    pub fn reopen(&self) -> Option<OwnedFd> {
        if !watch::unchanged(&self.kept.files) {
            return None;
        }
        // Through its /proc/self/fd link: that inode, never whatever its
        // name leads to now (which may no longer be a regular file: no
        // FIFO or device ever sees an open).
        let fd = self.proc_fd.reopen(self.kept.image.as_fd()).ok()?;
        rustix::fs::fstat(&fd)
            .is_ok_and(|st| FileId::of(&st) == self.kept.image_id)
            .then_some(fd)
    }
}

/// The warm plans of one resolver.
#[derive(Debug, Default)]
pub struct Warm {
    state: Mutex<Option<State>>,
    /// Whether a plan was made before: a resolver's first plan is not
    /// kept (a resolver made for one plan, as [`crate::plan_exec`]'s, would
    /// pay for watches it never uses, and for closing them).
    planned: AtomicBool,
}

#[derive(Debug)]
struct State {
    changes: Changes,
    /// `/proc/self/fd`, opened by process `pid`: a forked child (another
    /// pid) shares the inotify instance and the mount table's descriptor
    /// with its parent — reading them would take the parent's reports —
    /// and its `/proc/self/fd` is not this one; it plans from scratch.
    proc_fd: Arc<ProcFd>,
    pid: u32,
    plans: HashMap<Key, Arc<Kept>>,
    /// Files held by the plans, shared by (device, inode).
    held: HashMap<(u64, u64), Arc<OwnedFd>>,
    /// Bumped whenever the plans are dropped: a plan made under an older
    /// generation is not kept.
    generation: u64,
}

impl State {
    fn clear(&mut self) {
        self.plans.clear();
        self.held.clear();
        self.generation += 1;
    }

    /// Drop everything if anything changed since the last look.
    fn refresh(&mut self) {
        if self.changes.changed() {
            self.clear();
        }
    }
}

impl Warm {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<State>> {
        crate::lock::lock(&self.state)
    }

    /// The kept plan for `key`, if nothing reported a change since
    /// (the caller then checks its files: [`Hit::reopen`]).
    pub fn get(&self, key: &Key) -> Option<Hit> {
        let mut guard = self.lock();
        let state = guard.as_mut()?;
        if state.plans.is_empty() || state.pid != std::process::id() {
            return None;
        }
        state.refresh();
        let kept = state.plans.get(key)?.clone();
        Some(Hit {
            kept,
            proc_fd: state.proc_fd.clone(),
        })
    }

    /// How many plans are kept now.
    pub fn len(&self) -> usize {
        self.lock().as_ref().map_or(0, |s| s.plans.len())
    }

    /// Drop every kept plan: one was found changed in a way no event
    /// reported (a write through a mapping).
    pub fn forget(&self) {
        if let Some(state) = self.lock().as_mut() {
            state.clear();
        }
    }

    /// The current generation, to give [`keep`](Self::keep) with a plan
    /// made from now on; None when nothing is to be kept: the resolver's
    /// first plan, or no inotify or no `/proc`.
    pub fn generation(&self) -> Option<u64> {
        if !self.planned.swap(true, Ordering::Relaxed) {
            return None;
        }
        let mut guard = self.lock();
        if guard.is_none() {
            let dir = ProcFd::open().ok()?;
            *guard = Some(State {
                changes: Changes::new()?,
                proc_fd: Arc::new(dir),
                pid: std::process::id(),
                plans: HashMap::new(),
                held: HashMap::new(),
                generation: 0,
            });
        }
        let state = guard.as_mut().filter(|s| s.pid == std::process::id())?;
        state.refresh();
        Some(state.generation)
    }

    /// Watch everything `paths` (inside `ns`) lead through and to; the held
    /// files, or None if the plan cannot be vouched for.
    pub fn trace(&self, ns: &Namespace, paths: &[Vec<u8>]) -> Option<Traced> {
        let mut guard = self.lock();
        let state = guard.as_mut()?;
        let mut traced = Traced::default();
        match state.changes.trace(ns, paths, &mut traced, MAX_WATCHES_PER_PLAN) {
            Ok(()) => Some(traced),
            Err(Untraceable::TooManyWatches) => {
                state.changes.reset();
                state.clear();
                None
            }
            Err(Untraceable::No) => None,
        }
    }

    /// Keep `kept` under `key`, unless anything was reported since
    /// `generation`.
    pub fn keep(&self, key: Key, mut kept: Kept, generation: u64) {
        let mut guard = self.lock();
        let Some(state) = guard.as_mut() else { return };
        state.refresh();
        if state.generation != generation {
            return;
        }
        if state.plans.len() >= MAX_PLANS || state.held.len() + kept.files.len() >= MAX_HELD {
            state.clear();
            if kept.files.len() >= MAX_HELD {
                return;
            }
        }
        // One descriptor per file, however many plans name it.
        let id = kept.image_id;
        kept.image = state
            .held
            .entry((id.dev, id.ino))
            .or_insert_with(|| kept.image.clone())
            .clone();
        for (fd, id) in &mut kept.files {
            *fd = state.held.entry((id.dev, id.ino)).or_insert_with(|| fd.clone()).clone();
        }
        state.plans.insert(key, Arc::new(kept));
    }

    /// Drop every kept plan and close the files they held (the process
    /// ran out of descriptors). Whether there was anything to drop.
    pub fn evict(&self) -> bool {
        let mut guard = self.lock();
        let Some(state) = guard.as_mut() else { return false };
        let had = !state.held.is_empty();
        state.clear();
        had
    }
}
