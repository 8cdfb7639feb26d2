//! `/etc/ld.so.conf` inside a namespace: includes expanded (globs, relative
//! patterns, sorted matches), cycles and depth bounded, and the result cached
//! by the identity of every file and directory it was built from.

use std::collections::HashSet;

use tracing::debug;

use crate::bytepath::{dirname, join};
use crate::ns::{FileId, Namespace};
use crate::parse::{glob, ldsoconf};

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
}

impl LdSoConf {
    /// Whether every dependency still has the identity it had.
    pub fn is_fresh(&self, ns: &Namespace) -> bool {
        self.deps.iter().all(|(path, id)| ns.identity(path) == *id)
    }
}

struct Loader<'a> {
    ns: &'a Namespace,
    out: LdSoConf,
    seen_dirs: HashSet<Vec<u8>>,
    files: usize,
    active: Vec<FileId>,
}

/// Read the configuration at `path` (normally `/etc/ld.so.conf`).
pub fn load(ns: &Namespace, path: &[u8]) -> LdSoConf {
    let mut l = Loader {
        ns,
        out: LdSoConf::default(),
        seen_dirs: HashSet::new(),
        files: 0,
        active: Vec::new(),
    };
    l.file(path, 0);
    l.out
}

impl Loader<'_> {
    fn note(&mut self, msg: String) {
        debug!(target: "ldchain::resolver", "ld.so.conf: {msg}");
        self.out.notes.push(msg);
    }

    fn file(&mut self, path: &[u8], depth: usize) {
        let shown = String::from_utf8_lossy(path).into_owned();
        if depth > MAX_DEPTH {
            self.note(format!("{shown}: include depth limit ({MAX_DEPTH}) reached"));
            return;
        }
        if self.files == MAX_FILES {
            self.note(format!("{shown}: file limit ({MAX_FILES}) reached"));
            return;
        }
        self.files += 1;
        let opened = match self.ns.open_file(path) {
            Ok(o) => o,
            Err(e) => {
                if !matches!(e, crate::ExecError::NotFound { .. }) {
                    self.note(format!("{shown}: {e}"));
                }
                self.out.deps.push((path.to_vec(), None));
                return;
            }
        };
        self.out.deps.push((path.to_vec(), Some(opened.id)));
        if !opened.is_regular() {
            self.note(format!("{shown}: not a regular file ({}), ignored", opened.kind()));
            return;
        }
        if self.active.contains(&opened.id) {
            self.note(format!("{shown}: include cycle, not followed again"));
            return;
        }
        let bytes = match opened.read_at(0, MAX_FILE_BYTES) {
            Ok(b) => b,
            Err(e) => {
                self.note(format!("{shown}: {e}"));
                return;
            }
        };
        if opened.size() > MAX_FILE_BYTES as u64 {
            self.note(format!("{shown}: only the first {MAX_FILE_BYTES} bytes are read"));
        }
        drop(opened.fd);
        self.active.push(opened.id);
        for directive in ldsoconf::parse(&bytes) {
            match directive {
                ldsoconf::Directive::Dir(dir) => self.dir(dir, &shown),
                ldsoconf::Directive::Include(patterns) => {
                    for pattern in patterns {
                        let pattern = if pattern.starts_with(b"/") {
                            pattern
                        } else {
                            join(dirname(path), &pattern)
                        };
                        for m in self.glob(&pattern) {
                            self.file(&m, depth + 1);
                        }
                    }
                }
            }
        }
        self.active.pop();
    }

    fn dir(&mut self, dir: Vec<u8>, from: &str) {
        if !dir.starts_with(b"/") {
            self.note(format!(
                "{from}: relative directory {:?} ignored",
                String::from_utf8_lossy(&dir)
            ));
            return;
        }
        if self.out.dirs.len() == MAX_DIRS {
            return;
        }
        if self.seen_dirs.insert(dir.clone()) {
            self.out.dirs.push(dir);
        }
    }

    /// Expand an absolute glob pattern component by component, listing only
    /// the directories a wildcard component needs; matches come out sorted
    /// per directory, as `glob(3)` sorts them.
    fn glob(&mut self, pattern: &[u8]) -> Vec<Vec<u8>> {
        let mut prefixes: Vec<Vec<u8>> = vec![b"/".to_vec()];
        let components: Vec<&[u8]> = pattern.split(|&c| c == b'/').filter(|c| !c.is_empty()).collect();
        for comp in components {
            let mut next = Vec::new();
            for prefix in &prefixes {
                if glob::has_magic(comp) {
                    let id = self.ns.identity(prefix);
                    self.out.deps.push((prefix.clone(), id));
                    let Ok(mut names) = self.ns.list_dir(prefix, MAX_DIR_ENTRIES) else {
                        continue;
                    };
                    names.retain(|n| glob::matches(comp, n));
                    names.sort();
                    next.extend(names.into_iter().map(|n| join(prefix, &n)));
                } else {
                    next.push(join(prefix, comp));
                }
                if next.len() > MAX_FILES {
                    break;
                }
            }
            prefixes = next;
        }
        prefixes
    }
}
