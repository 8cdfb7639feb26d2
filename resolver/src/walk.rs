//! Bounded path lookup inside a namespace's root.
//!
//! Every open first tries `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)`:
//! a path without symlinks (the common case) costs that one system call,
//! and the kernel's work is bounded by the path's length. Only when it
//! fails with `ELOOP` is the path resolved here, one component at a time
//! with `openat(O_PATH | O_NOFOLLOW)` and `readlinkat`, exactly as
//! `RESOLVE_IN_ROOT` would (absolute symlinks and `..` stop at the root, at
//! most 40 symlinks) but counting the work against a [`Budget`]: a chain of
//! links full of `./` costs the kernel a component for each of them, and
//! the sandbox chooses how many. After each symlink the rest of the path is
//! tried in one `openat2(RESOLVE_NO_SYMLINKS)` again, so a path through one
//! link (merged `/usr`) costs five system calls, not one per component.
//! A costly failure of an ld.so.conf candidate is remembered across
//! searches with what decided it, and re-checked before it is believed
//! ([`memo`]).

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

mod kernel;
mod memo;
#[cfg(test)]
mod tests;
pub use kernel::{openat2, Failure};
pub use memo::{Memo, Scope};

/// Symlinks followed in one lookup, as the kernel's `MAXSYMLINKS`.
pub const MAX_SYMLINKS: usize = 40;

/// What one lookup may cost: components walked (each a system call or two)
/// and bytes of symlink text read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Components (other than `.`) still allowed.
    pub components: usize,
    /// Bytes of symlink targets still allowed.
    pub link_bytes: usize,
}

impl Budget {
    /// One candidate (or any single open): 256 components and 16 KiB of
    /// symlink text. A real system's longest lookups (Debian's `/lib64` →
    /// `/lib/x86_64-linux-gnu`, merged `/usr`) take 1–2 links and under 20
    /// components; the reported chain (40 links × ~2,000 `./`) takes
    /// 80,000 components and 160 KiB.
    pub const PER_CANDIDATE: Budget = Budget {
        components: 256,
        link_bytes: 16 * 1024,
    };

    /// One search's path rules together (`LDSO_PATH`, `LD_LIBRARY_PATH`,
    /// ld.so.conf): 4,096 components and 64 KiB of symlink text, spent
    /// only by lookups that meet a symlink.
    pub const PER_SEARCH: Budget = Budget {
        components: 4096,
        link_bytes: 64 * 1024,
    };

    fn min(self, other: Budget) -> Budget {
        Budget {
            components: self.components.min(other.components),
            link_bytes: self.link_bytes.min(other.link_bytes),
        }
    }

    fn spent_since(self, start: Budget) -> Budget {
        Budget {
            components: start.components - self.components,
            link_bytes: start.link_bytes - self.link_bytes,
        }
    }

    fn charge(&mut self, spent: Budget) {
        self.components = self.components.saturating_sub(spent.components);
        self.link_bytes = self.link_bytes.saturating_sub(spent.link_bytes);
    }
}

/// The lookups of one search: a shared budget, and the path prefixes
/// already found to fail (over budget, missing, not a directory, a loop),
/// which are not walked again. For the candidates of ld.so.conf, also the
/// resolver's [`Memo`] of failures from earlier searches, each kept with
/// the identities that decided it and checked before it is believed.
#[derive(Debug)]
pub struct Lookups<'m> {
    budget: Budget,
    /// What the kernel may still be asked to walk in one `openat2` per
    /// path (the fast path), in components: see [`KERNEL_PER_SEARCH`].
    kernel: usize,
    /// Normalized prefixes (components joined by `/`) and how they failed.
    failed: HashMap<Vec<u8>, Failure>,
    /// Where failures are remembered across searches, and for what.
    memo: Option<(&'m Memo, Scope)>,
}

impl<'m> Lookups<'m> {
    /// A fresh search's lookups, with [`Budget::PER_SEARCH`] and
    /// [`KERNEL_PER_SEARCH`].
    pub fn per_search() -> Lookups<'m> {
        Lookups {
            kernel: KERNEL_PER_SEARCH,
            ..Lookups::with_budget(Budget::PER_SEARCH)
        }
    }

    /// Lookups sharing `budget` in all; what the kernel walks on the fast
    /// path is not counted (one lookup's is bounded by `PATH_MAX`).
    pub fn with_budget(budget: Budget) -> Lookups<'m> {
        Lookups {
            budget,
            kernel: usize::MAX,
            failed: HashMap::new(),
            memo: None,
        }
    }

    /// From now on, consult and feed `memo` for `scope`.
    pub fn remember_in(&mut self, memo: &'m Memo, scope: Scope) {
        self.memo = Some((memo, scope));
    }
}

/// The components one search's fast-path lookups may ask the kernel to
/// walk in all (about 20 ms of kernel time). Without it, a request whose
/// `LDSO_PATH` held thousands of relative entries, sent from a working
/// directory 2,000 levels deep, had the kernel walk 2,000 components per
/// entry: seconds of a worker's time. Every entry of a search path that
/// fills execve's 128 KiB is still tried from a shallow directory (65,536
/// entries of two components each), as ld.so tries them; so are 4,096
/// ld.so.conf candidates of 32 components each.
pub const KERNEL_PER_SEARCH: usize = 262_144;

/// Open `path` (absolute or relative to the root) inside `root` with
/// `flags`, as `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` would,
/// the work bounded by [`Budget::PER_CANDIDATE`] and by what is left in
/// `lookups`, which is charged what this lookup spent.
pub fn open(root: BorrowedFd<'_>, path: &[u8], flags: OFlags, lookups: &mut Lookups<'_>) -> Result<OwnedFd, Failure> {
    let charge = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).count();
    match lookups.kernel.checked_sub(charge) {
        Some(left) => lookups.kernel = left,
        None => {
            lookups.kernel = 0;
            return Err(Failure::OverBudget);
        }
    }
    match openat2(root, path, flags, ResolveFlags::NO_SYMLINKS) {
        Err(Errno::LOOP) => {}
        r => return r.map_err(Failure::Errno),
    }
    // A symlink on the way: walk it here, unless a prefix already failed
    // in this search or, as its files still show, in an earlier one
    // (checked only now, so a path without symlinks never depends on what
    // other lookups spent or remembered).
    let key = normalized(path);
    if let Some(failure) = known_failure(&key, lookups).or_else(|| remembered(root, &key, lookups)) {
        return Err(failure);
    }
    // A trailing `/` asks for a directory, as it does of the kernel.
    let flags = match path.ends_with(b"/") {
        true => flags | OFlags::DIRECTORY,
        false => flags,
    };
    if lookups.budget.components == 0 || lookups.budget.link_bytes == 0 {
        // Spent: a walk would fail at its first component or link.
        return Err(Failure::OverBudget);
    }
    let start = Budget::PER_CANDIDATE.min(lookups.budget);
    let mut walk = Walk::new(root, start);
    let mut result = walk.run(&key, flags);
    lookups.budget.charge(walk.budget.spent_since(start));
    if matches!(result, Err((Failure::OverBudget, _))) && walk.stopped_by_shared() {
        // What was left of the shared budget stopped this walk: no walk
        // after it (each would read a link or two before failing too).
        lookups.budget = Budget {
            components: 0,
            link_bytes: 0,
        };
    }
    if let Err((failure, _)) = result {
        if let Some(again) = walk_again_to_remember(&walk, failure, &key, flags, lookups) {
            result = again;
        }
    }
    result.map_err(|(failure, prefix)| {
        if prefix < key.len() {
            lookups.failed.insert(key[..prefix].join(&b'/'), failure);
        }
        failure
    })
}

/// The failure remembered by an earlier search for a prefix of `key` (or
/// `key` itself), if its directories and links are still what they were;
/// one that no longer holds is forgotten. A prefix's failure then counts
/// for the rest of this search too, without spending any of its budget.
fn remembered(root: BorrowedFd<'_>, key: &[&[u8]], lookups: &mut Lookups<'_>) -> Option<Failure> {
    let (memo, scope) = lookups.memo?;
    for n in 1..=key.len() {
        let at = key[..n].join(&b'/');
        let Some(entry) = memo.get(scope, &at) else {
            continue;
        };
        if !entry.still_holds(root) {
            memo.forget(scope, &at);
            continue;
        }
        if n < key.len() {
            lookups.failed.insert(at, entry.failure);
        }
        return Some(entry.failure);
    }
    None
}

/// After `first` failed with `failure`: if the lookups remember failures,
/// the failure is the files' own (not what other lookups left of the
/// shared budget, not a shortage of descriptors or memory) and the walk
/// was costly, walk again noting what each look depends on
/// ([`memo::Record`]), and remember that walk's failure. Its result is the
/// answer (the files may have changed in between). The second walk is not
/// charged: it does at most what the first did, and only for a failure.
fn walk_again_to_remember(
    first: &Walk<'_>,
    failure: Failure,
    key: &[&[u8]],
    flags: OFlags,
    lookups: &Lookups<'_>,
) -> Option<Result<OwnedFd, (Failure, usize)>> {
    let (memo, scope) = lookups.memo?;
    if first.calls < memo::MIN_WALK_CALLS || !first.intrinsic(failure) {
        return None;
    }
    let mut walk = Walk::new(first.root, first.start);
    walk.record = Some(memo::Record::new());
    let result = walk.run(key, flags);
    if let (Err((failure, prefix)), Some(record)) = (&result, walk.record.take()) {
        if walk.intrinsic(*failure) {
            let n = if (1..key.len()).contains(prefix) {
                *prefix
            } else {
                key.len()
            };
            memo.remember(scope, key[..n].join(&b'/'), *failure, record, first.calls);
        }
    }
    Some(result)
}

/// The first recorded failing prefix of `key`'s components, if any.
fn known_failure(key: &[&[u8]], lookups: &Lookups<'_>) -> Option<Failure> {
    if lookups.failed.is_empty() {
        return None;
    }
    (1..key.len()).find_map(|n| lookups.failed.get(&key[..n].join(&b'/')).copied())
}

/// The components of `path` without empty ones and `.` (which change
/// nothing), `..` kept: two spellings of one lookup share a key.
fn normalized(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect()
}

/// One component-by-component lookup.
struct Walk<'r> {
    root: BorrowedFd<'r>,
    /// The budget it started with, and what is left of it.
    start: Budget,
    budget: Budget,
    links: usize,
    /// Whether [`Walk::rest_at_once`] spent components: they were the
    /// rest of the path's, not only its prefix's.
    batched: bool,
    /// Whether the budget ran out of components (not link bytes).
    short_of_components: bool,
    /// System calls made.
    calls: usize,
    /// What each look depended on, when the walk is to be remembered.
    record: Option<memo::Record>,
}

/// A component still to walk, and whether it came from the caller's path
/// (its index there) or from a symlink's text.
type Pending = (Vec<u8>, Option<usize>);

impl<'r> Walk<'r> {
    fn new(root: BorrowedFd<'r>, start: Budget) -> Walk<'r> {
        Walk {
            root,
            start,
            budget: start,
            links: 0,
            batched: false,
            short_of_components: false,
            calls: 0,
            record: None,
        }
    }

    /// Walk `key` (the caller's path, normalized) and open its end with
    /// `flags`. `Err` carries how many of `key`'s components were walked
    /// when it failed: that prefix fails for every path that starts with it.
    fn run(&mut self, key: &[&[u8]], flags: OFlags) -> Result<OwnedFd, (Failure, usize)> {
        // Components still to walk, the next one last.
        let mut todo: Vec<Pending> = key
            .iter()
            .enumerate()
            .rev()
            .map(|(i, c)| (c.to_vec(), Some(i)))
            .collect();
        // The directories walked so far (names from the root): `..` is the
        // one before, never above the root, as RESOLVE_IN_ROOT has it.
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut dir: Option<OwnedFd> = None; // None: the root
        let mut walked = 0;
        while let Some((name, from)) = todo.pop() {
            if let Some(i) = from {
                walked = i + 1;
            }
            if name == b".." {
                self.spend(1, 0).map_err(|f| self.at(f, walked, key.len()))?;
                names.pop();
                dir = self.reopen(&names).map_err(|f| self.at(f, walked, key.len()))?;
                continue;
            }
            self.spend(1, 0).map_err(|f| self.at(f, walked, key.len()))?;
            let here = dir.as_ref().map_or(self.root, |d| d.as_fd());
            self.look_in(&names, here);
            let last = todo.is_empty();
            match self
                .step(here, &name, last, flags)
                .map_err(|f| self.at(f, walked, key.len()))?
            {
                Step::Dir(fd) => {
                    names.push(name);
                    dir = Some(fd);
                }
                Step::End(fd) => return Ok(fd),
                Step::Link(text) => {
                    self.follow(here, &text).map_err(|f| self.at(f, walked, key.len()))?;
                    if text.starts_with(b"/") {
                        names.clear();
                        dir = None;
                    }
                    todo.extend(normalized(&text).into_iter().rev().map(|c| (c.to_vec(), None)));
                    if todo.is_empty() {
                        // A link to "/" (or to its own directory, "."): its
                        // directory is the end.
                        todo.push((b".".to_vec(), None));
                    }
                    if let Some(end) = self.rest_at_once(&names, &todo, flags) {
                        return end.map_err(|f| (f, key.len()));
                    }
                }
            }
        }
        // The path ended in `..` or named the root: open the directory reached.
        let here = dir.as_ref().map_or(self.root, |d| d.as_fd());
        self.look_in(&names, here);
        self.calls += 1;
        rfs::openat(here, ".", flags | OFlags::NOFOLLOW, Mode::empty()).map_err(|e| (e.into(), walked))
    }

    /// Note, when the walk is recorded, that it is about to look a name up
    /// in `here`, reached from the root by `names`.
    fn look_in(&mut self, names: &[Vec<u8>], here: BorrowedFd<'_>) {
        if let Some(record) = &mut self.record {
            self.calls += record.dir(names, here);
        }
    }

    /// Whether `failure` is the files' own: an answer of the file system
    /// about them (not a shortage of descriptors or memory), or the
    /// per-candidate budget running out (not what other lookups left of
    /// the shared one). Only such a failure is remembered across searches.
    fn intrinsic(&self, failure: Failure) -> bool {
        match failure {
            Failure::OverBudget => !self.stopped_by_shared(),
            Failure::Errno(e) => matches!(
                e,
                Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::ACCESS | Errno::NAMETOOLONG
            ),
        }
    }

    /// The rest of the path after a symlink, in one `openat2(RESOLVE_NO_SYMLINKS)`
    /// from the root (the directories walked, then what is left): a
    /// merged-`/usr` link costs one call, not one per component. None when
    /// there is another symlink on the way (`ELOOP`; the walk goes on one
    /// component at a time), or the path or the budget is too short. Any
    /// other answer is the walk's: without symlinks, the kernel's `..` from
    /// a walked directory is the one walked before it.
    /// A recorded walk takes only a success from it, and gets the
    /// components back otherwise: which directories the kernel looked in on
    /// the way to a failure (or to the `ELOOP`) is not known, so what a
    /// recorded walk ends with must not depend on it. Going on one
    /// component at a time, it spends no more than the unrecorded walk, so
    /// it fails only where that one fails too.
    fn rest_at_once(&mut self, names: &[Vec<u8>], todo: &[Pending], flags: OFlags) -> Option<Result<OwnedFd, Failure>> {
        let mut path = Vec::new();
        for c in names.iter().chain(todo.iter().rev().map(|(c, _)| c)) {
            path.extend_from_slice(c);
            path.push(b'/');
        }
        path.pop();
        if path.len() >= crate::limits::PATH_MAX {
            return None;
        }
        if names.len() + todo.len() > self.budget.components {
            return None;
        }
        let (spent, batched) = (names.len() + todo.len(), self.batched);
        self.spend(spent, 0).ok()?;
        self.batched = true;
        self.calls += 1;
        match openat2(self.root, &path, flags, ResolveFlags::NO_SYMLINKS) {
            Err(_) if self.record.is_some() => {
                self.budget.components += spent;
                self.batched = batched;
                None
            }
            Err(Errno::LOOP | Errno::NAMETOOLONG) => None,
            r => Some(r.map_err(Failure::Errno)),
        }
    }

    /// `failure`, with how many of the caller's `len` components it is
    /// known to follow from: `walked`, unless the components ran out after
    /// [`Walk::rest_at_once`] spent some on later components (then `len`:
    /// nothing to remember).
    fn at(&self, failure: Failure, walked: usize, len: usize) -> (Failure, usize) {
        let later = failure == Failure::OverBudget && self.batched && self.short_of_components;
        (failure, if later { len } else { walked })
    }

    /// Whether the walk ran out of what the shared
    /// budget allowed rather than of [`Budget::PER_CANDIDATE`]: then its
    /// failure says more about what other lookups spent than about the path.
    fn stopped_by_shared(&self) -> bool {
        match self.short_of_components {
            true => self.start.components < Budget::PER_CANDIDATE.components,
            false => self.start.link_bytes < Budget::PER_CANDIDATE.link_bytes,
        }
    }

    /// Take `components` and `link_bytes` from the budget, or fail.
    fn spend(&mut self, components: usize, link_bytes: usize) -> Result<(), Failure> {
        self.short_of_components |= components > self.budget.components;
        if components > self.budget.components || link_bytes > self.budget.link_bytes {
            return Err(Failure::OverBudget);
        }
        self.budget.components -= components;
        self.budget.link_bytes -= link_bytes;
        Ok(())
    }

    /// Account for following the symlink in `dir` whose text is `text`.
    fn follow(&mut self, dir: BorrowedFd<'_>, text: &[u8]) -> Result<(), Failure> {
        self.calls += 1;
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            return Err(Errno::LOOP.into());
        }
        if text.is_empty() {
            return Err(Errno::NOENT.into());
        }
        // RESOLVE_NO_MAGICLINKS: the kernel refuses procfs's magic links;
        // in user space they cannot be told from its plain ones, so every
        // procfs symlink is refused (only an ELOOP where it would not).
        if crate::procfd::is_procfs(dir) {
            return Err(Errno::LOOP.into());
        }
        self.spend(0, text.len())
    }

    /// The directory `names` leads to from the root, opened again (one
    /// `openat2` with no symlink allowed: they were all resolved already).
    fn reopen(&mut self, names: &[Vec<u8>]) -> Result<Option<OwnedFd>, Failure> {
        if names.is_empty() {
            return Ok(None);
        }
        self.calls += 1;
        let path = names.join(&b'/');
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Some(openat2(self.root, &path, flags, ResolveFlags::NO_SYMLINKS)?))
    }

    /// Look at `name` in `dir`: a directory to go on from, a symlink to
    /// follow, or (the last component) the file, opened with `flags`.
    fn step(&mut self, dir: BorrowedFd<'_>, name: &[u8], last: bool, flags: OFlags) -> Result<Step, Failure> {
        if !last {
            self.calls += 1;
            // An ordinary directory: one openat (O_NOFOLLOW | O_DIRECTORY
            // fails with ENOTDIR on a symlink).
            let dflags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rfs::openat(dir, name, dflags, Mode::empty()) {
                Ok(fd) => return Ok(Step::Dir(fd)),
                Err(Errno::NOTDIR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(record) = &mut self.record {
            self.calls += record.link(dir, name);
        }
        // Room for the longest link (PATH_MAX): one system call.
        self.calls += 1;
        match rfs::readlinkat(dir, name, Vec::with_capacity(crate::limits::PATH_MAX)) {
            Ok(text) => return Ok(Step::Link(text.into_bytes())),
            Err(Errno::INVAL) => {}
            Err(e) => return Err(e.into()),
        }
        if !last {
            return Err(Errno::NOTDIR.into());
        }
        self.calls += 1;
        // Not a symlink (if one was swapped in since, O_NOFOLLOW opens the
        // link itself with O_PATH, or fails: never a file outside).
        Ok(Step::End(rfs::openat(
            dir,
            name,
            flags | OFlags::NOFOLLOW,
            Mode::empty(),
        )?))
    }
}

/// What one component turned out to be.
enum Step {
    /// A directory, opened `O_PATH`.
    Dir(OwnedFd),
    /// The last component, opened.
    End(OwnedFd),
    /// A symlink, with its text.
    Link(Vec<u8>),
}
