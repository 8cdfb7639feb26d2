//! `/etc/ld.so.conf` inside a namespace: includes expanded (globs, relative
//! patterns, sorted matches), cycles and depth bounded, and the result cached
//! by the identity of every file and directory it was built from.
//!
//! The sandbox writes these files, so one load is bounded in *total*, not per
//! file: patterns expanded, directory entries read, glob matches, bytes read,
//! notes and dependencies (each dependency costs a warm plan an `openat2`).
//! When a budget runs out the load stops there, says so in one note, and
//! keeps the directories found before it. Path lookups through symlinks
//! share one budget for the whole load (`crate::walk`), as a search's do.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use tracing::debug;

use crate::bytepath::{dirname, join};
use crate::fileid::FileId;
use crate::ns::Namespace;
use crate::parse::{glob, ldsoconf};
use crate::walk::Lookups;

/// Deepest include nesting followed (glibc has no limit; cycles would hang it).
pub const MAX_DEPTH: usize = 16;
/// Most files parsed for one configuration.
pub const MAX_FILES: usize = 256;
/// Most directories kept.
pub const MAX_DIRS: usize = 4096;
/// Most bytes read from one file.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Most entries listed from one directory while globbing.
pub const MAX_DIR_ENTRIES: usize = 4096;
/// Most include patterns expanded in one load.
pub const MAX_PATTERNS: usize = 256;
/// Most directory entries read in one load, over all globs.
pub const MAX_ENTRIES_READ: usize = 16_384;
/// Most paths glob expansion produces in one load (every component's).
pub const MAX_MATCHES: usize = 1024;
/// Most bytes of configuration read in one load.
pub const MAX_TOTAL_BYTES: usize = 4 << 20;
/// Most files and directories a load depends on: a warm plan re-checks each.
pub const MAX_DEPS: usize = 256;
/// Most notes kept from one load.
pub const MAX_NOTES: usize = 32;

/// The directories an ld.so.conf names, and what they were read from.
#[derive(Debug, Clone, Default)]
pub struct LdSoConf {
    /// Library directories, in order, without duplicates.
    pub dirs: Vec<Vec<u8>>,
    /// Every file or directory consulted, with its identity then (None:
    /// it did not exist). The parse is stale when any of them changes.
    pub deps: Vec<(Vec<u8>, Option<FileId>)>,
    /// Things worth telling an operator (cycles, limits, odd files).
    pub notes: Vec<String>,
    /// Whether directories past `MAX_DIRS` (4,096) were left out: a search that
    /// finds nothing must then say that a limit cut it.
    pub dirs_cut: bool,
}

impl LdSoConf {
    /// Read the configuration at `path` inside `ns` (normally
    /// `/etc/ld.so.conf`), within this module's bounds.
    pub fn load(ns: &Namespace, path: &[u8]) -> LdSoConf {
        load(ns, path)
    }

    /// The identity of this configuration: a digest of every file and
    /// directory it was read from, with their identities then. Failures
    /// of its candidates' lookups are remembered under it (`crate::walk`).
    pub(crate) fn identity(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.deps.hash(&mut h);
        h.finish()
    }

    /// Whether every dependency still has the identity it had (the checks
    /// share one lookup budget, as the load did: a path over it has no
    /// identity, as it had none in the load).
    pub fn is_fresh(&self, ns: &Namespace) -> bool {
        let mut lookups = Lookups::per_search();
        self.deps
            .iter()
            .all(|(path, id)| ns.identity_in(path, &mut lookups) == *id)
    }
}

struct Loader<'a> {
    ns: &'a Namespace,
    out: LdSoConf,
    seen_dirs: HashSet<Vec<u8>>,
    files: usize,
    active: Vec<FileId>,
    /// Paths already recorded as dependencies (each is checked once).
    dep_paths: HashSet<Vec<u8>>,
    /// Directories already listed in this load, with their names.
    listed: HashMap<Vec<u8>, Rc<Vec<Vec<u8>>>>,
    /// What is left of the load's budgets.
    left: Budget,
    /// A budget ran out: nothing more is opened, listed or expanded.
    stopped: bool,
    /// The path lookups of the whole load: one budget for every file
    /// opened and directory listed, as a search's candidates share one
    /// (`crate::walk`), so 256 includes behind costly symlink chains cost
    /// what four do.
    lookups: Lookups<'a>,
}

/// What one load may still spend.
struct Budget {
    patterns: usize,
    entries: usize,
    matches: usize,
    bytes: usize,
}

/// Read the configuration at `path` (normally `/etc/ld.so.conf`).
pub fn load(ns: &Namespace, path: &[u8]) -> LdSoConf {
    let mut l = Loader {
        ns,
        out: LdSoConf::default(),
        seen_dirs: HashSet::new(),
        files: 0,
        active: Vec::new(),
        dep_paths: HashSet::new(),
        listed: HashMap::new(),
        left: Budget {
            patterns: MAX_PATTERNS,
            entries: MAX_ENTRIES_READ,
            matches: MAX_MATCHES,
            bytes: MAX_TOTAL_BYTES,
        },
        stopped: false,
        lookups: Lookups::per_search(),
    };
    l.file(path, 0);
    l.out
}

impl Loader<'_> {
    fn note(&mut self, msg: String) {
        debug!(target: "ldchain::resolver", "ld.so.conf: {msg}");
        match self.out.notes.len() {
            n if n < MAX_NOTES - 1 => self.out.notes.push(msg),
            n if n == MAX_NOTES - 1 => self.out.notes.push(format!("note limit ({MAX_NOTES}) reached")),
            _ => {}
        }
    }

    /// Stop the load: `what` ran out. Directories found so far are kept.
    fn stop(&mut self, what: &str) {
        if !self.stopped {
            self.stopped = true;
            self.note(format!("{what}: the rest of the configuration is ignored"));
        }
    }

    /// Record that the load depends on `path` having identity `id`; false
    /// (and the load stops) when no more dependencies can be recorded.
    fn depend(&mut self, path: &[u8], id: Option<FileId>) -> bool {
        if self.dep_paths.contains(path) {
            return true;
        }
        if self.out.deps.len() == MAX_DEPS {
            self.stop(&format!("dependency limit ({MAX_DEPS}) reached"));
            return false;
        }
        self.dep_paths.insert(path.to_vec());
        self.out.deps.push((path.to_vec(), id));
        true
    }

    fn file(&mut self, path: &[u8], depth: usize) {
        if self.stopped {
            return;
        }
        let shown = crate::escape::for_terminal(path);
        if depth > MAX_DEPTH {
            self.note(format!("{shown}: include depth limit ({MAX_DEPTH}) reached"));
            return;
        }
        if self.files == MAX_FILES {
            self.stop(&format!("{shown}: file limit ({MAX_FILES})"));
            return;
        }
        self.files += 1;
        let Some((id, bytes)) = self.read(path, &shown) else {
            return;
        };
        self.active.push(id);
        for directive in ldsoconf::parse(&bytes) {
            match directive {
                ldsoconf::Directive::Dir(dir) => self.dir(dir, &shown),
                ldsoconf::Directive::Include(patterns) => {
                    for pattern in patterns {
                        self.include(path, pattern, depth);
                    }
                }
            }
        }
        self.active.pop();
    }

    /// Open and read one configuration file, recording it as a dependency;
    /// None when it is missing, odd, part of a cycle, or over a budget.
    fn read(&mut self, path: &[u8], shown: &str) -> Option<(FileId, Vec<u8>)> {
        let opened = match self.ns.open_file_in(path, &mut self.lookups) {
            Ok(o) => o,
            Err(e) => {
                if !matches!(e, crate::ExecError::NotFound { .. }) {
                    self.note(format!("{shown}: {e}"));
                }
                self.depend(path, None);
                return None;
            }
        };
        if !self.depend(path, Some(opened.id)) {
            return None;
        }
        if !opened.is_regular() {
            self.note(format!("{shown}: not a regular file ({}), ignored", opened.kind()));
            return None;
        }
        if self.active.contains(&opened.id) {
            self.note(format!("{shown}: include cycle, not followed again"));
            return None;
        }
        let cap = MAX_FILE_BYTES.min(self.left.bytes);
        let bytes = match opened.read_at(0, cap) {
            Ok(b) => b,
            Err(e) => {
                self.note(format!("{shown}: {e}"));
                return None;
            }
        };
        self.left.bytes -= bytes.len();
        if opened.size() > cap as u64 {
            self.note(format!("{shown}: only the first {cap} bytes are read"));
        }
        if self.left.bytes == 0 {
            self.stop(&format!("byte limit ({MAX_TOTAL_BYTES})"));
        }
        Some((opened.id, bytes))
    }

    /// One `include` pattern of the file at `path`: expanded, and each
    /// match read as a file.
    fn include(&mut self, path: &[u8], pattern: Vec<u8>, depth: usize) {
        if self.stopped {
            return;
        }
        if self.left.patterns == 0 {
            self.stop(&format!("pattern limit ({MAX_PATTERNS}) reached"));
            return;
        }
        self.left.patterns -= 1;
        let pattern = if pattern.starts_with(b"/") {
            pattern
        } else {
            join(dirname(path), &pattern)
        };
        for m in self.glob(&pattern) {
            self.file(&m, depth + 1);
        }
    }

    fn dir(&mut self, dir: Vec<u8>, from: &str) {
        if !dir.starts_with(b"/") {
            self.note(format!(
                "{from}: relative directory \"{}\" ignored",
                crate::escape::for_terminal(&dir)
            ));
            return;
        }
        if self.out.dirs.len() == MAX_DIRS {
            if !self.out.dirs_cut {
                self.out.dirs_cut = true;
                self.note(format!(
                    "{from}: more than {MAX_DIRS} directories; the rest are ignored"
                ));
            }
            return;
        }
        if self.seen_dirs.insert(dir.clone()) {
            self.out.dirs.push(dir);
        }
    }

    /// Expand an absolute glob pattern component by component, listing only
    /// the directories a wildcard component needs; matches come out sorted
    /// per directory, as `glob(3)` sorts them. Every path made counts
    /// against the load's match budget, every entry read against its entry
    /// budget; a directory is listed once per load.
    fn glob(&mut self, pattern: &[u8]) -> Vec<Vec<u8>> {
        let mut prefixes: Vec<Vec<u8>> = vec![b"/".to_vec()];
        let components: Vec<&[u8]> = pattern.split(|&c| c == b'/').filter(|c| !c.is_empty()).collect();
        for comp in components {
            let mut next = Vec::new();
            for prefix in &prefixes {
                if self.stopped {
                    return Vec::new();
                }
                if !glob::has_magic(comp) {
                    next.push(join(prefix, comp));
                } else if let Some(names) = self.list(prefix) {
                    let pattern = glob::Pattern::new(comp);
                    let mut names: Vec<&Vec<u8>> = names.iter().filter(|n| pattern.matches(n)).collect();
                    names.sort();
                    next.extend(names.into_iter().map(|n| join(prefix, n)));
                }
                if next.len() > self.left.matches {
                    self.stop(&format!("glob match limit ({MAX_MATCHES}) reached"));
                    return Vec::new();
                }
            }
            self.left.matches -= next.len();
            prefixes = next;
        }
        prefixes
    }

    /// The names in directory `dir` (listed once per load, as a
    /// dependency); None if it cannot be listed or a budget ran out.
    fn list(&mut self, dir: &[u8]) -> Option<Rc<Vec<Vec<u8>>>> {
        if let Some(names) = self.listed.get(dir) {
            return Some(names.clone());
        }
        let id = self.ns.identity_in(dir, &mut self.lookups);
        if !self.depend(dir, id) {
            return None;
        }
        let max = MAX_DIR_ENTRIES.min(self.left.entries);
        let names = Rc::new(self.ns.list_dir_in(dir, max + 1, &mut self.lookups).unwrap_or_default());
        if names.len() > max {
            let shown = crate::escape::for_terminal(dir);
            self.stop(&match max == MAX_DIR_ENTRIES {
                true => format!("{shown}: directory entry limit ({MAX_DIR_ENTRIES}) reached"),
                false => format!("{shown}: directory entries read per load limit ({MAX_ENTRIES_READ}) reached"),
            });
            return None;
        }
        self.left.entries -= names.len();
        self.listed.insert(dir.to_vec(), names.clone());
        Some(names)
    }
}
