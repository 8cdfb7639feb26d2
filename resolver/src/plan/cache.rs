//! The resolver's caches: facts about files keyed by their identity
//! (device, inode, size, mtime, ctime), so an entry is never stale, and the parsed
//! ld.so.conf per namespace, revalidated on each use.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::conf::LdSoConf;
use crate::elfinfo::{Flavor, Machine};
use crate::fileid::FileId;
use crate::walk::Memo;

use crate::elfinfo::ElfInfo;
use crate::parse::shebang;

pub use crate::limits::MAX_CACHE_ENTRIES;

/// (root device, root inode, ld.so.conf path, digest of whose rights read
/// it): one parsed configuration per namespace, file and reader (a client
/// that cannot read an included file sees a different configuration).
pub(super) type ConfKey = (u64, u64, Vec<u8>, u64);

/// Every cache a [`Resolver`](super::Resolver) keeps.
#[derive(Default)]
pub(super) struct Caches {
    /// Parsed ld.so.conf, with the identities of what it was read from.
    pub conf: Mutex<HashMap<ConfKey, Arc<LdSoConf>>>,
    /// What a file is: script, ELF program, or neither.
    pub class: Mutex<HashMap<FileId, Class>>,
    /// Whether a file can be the dynamic linker of a program of a machine
    /// (`Err`: why not).
    pub ldso: Mutex<HashMap<(FileId, Machine), Result<(), String>>>,
    /// Which libc a dynamic linker belongs to.
    pub flavor: Mutex<HashMap<FileId, Flavor>>,
    /// Path lookups of ld.so.conf's candidates that failed, with what
    /// decided each (bounded like the others: [`MAX_CACHE_ENTRIES`]).
    pub failures: Memo,
    /// Whole plans, kept while nothing they depended on changes.
    pub warm: super::warm::Warm,
}

pub(super) use crate::lock::lock;

/// Insert into a cache, emptying it first when it is full.
pub(super) fn insert_bounded<K: Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut m = lock(map);
    if m.len() >= MAX_CACHE_ENTRIES {
        m.clear();
    }
    m.insert(key, value);
}

/// The cached value for `key`, made (outside the lock) and inserted if absent.
pub(super) fn cached<K: Hash + Eq, V: Clone>(map: &Mutex<HashMap<K, V>>, key: K, make: impl FnOnce() -> V) -> V {
    if let Some(v) = lock(map).get(&key) {
        return v.clone();
    }
    let v = make();
    insert_bounded(map, key, v.clone());
    v
}

/// What a file turned out to be (cached by identity).
#[derive(Debug, Clone)]
pub(super) enum Class {
    Script(shebang::Shebang),
    Elf(ElfInfo),
    Unknown(String),
}
