//! The answer cache against changes made at the worst moment: between the
//! watches an answer's first search asked for and its second search (a
//! hook the code under test calls there, in test builds only).

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ldchain_resolver::{Config, Machine};

use super::*;

thread_local! {
    /// Run once, on this thread, where the watches are in place and the
    /// second search has not begun.
    static BETWEEN: Cell<Option<Box<dyn FnOnce()>>> = const { Cell::new(None) };
}

/// Called by `watch_and_cache` between the watches and the second search.
pub(crate) fn between_watches_and_search() {
    if let Some(change) = BETWEEN.take() {
        change();
    }
}

const INTERP: &str = "/lib64/ld-linux-x86-64.so.2";
const LDSO: &str = "ld-linux-x86-64.so.2";

fn request() -> InterpRequest {
    InterpRequest {
        machine: Machine::X86_64,
        interp: INTERP.as_bytes().to_vec(),
        execfn: b"/bin/app".to_vec(),
        cwd: b"/".to_vec(),
        ldso_path: None,
        ld_library_path: None,
        secure: false,
    }
}

fn me() -> Credentials {
    Credentials {
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
        groups: Vec::new(),
    }
}

fn id_of_fd(fd: &OwnedFd) -> (u64, u64) {
    let st = rustix::fs::fstat(fd).unwrap();
    (st.st_dev, st.st_ino)
}

fn id_of(path: &Path) -> (u64, u64) {
    let m = fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

/// The host's ld.so, to copy into jails; None (after saying why, loudly)
/// where there is none and CI is not asking for every test to run.
fn host_ldso() -> Option<std::path::PathBuf> {
    match fs::canonicalize(INTERP) {
        Ok(path) => Some(path),
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "{INTERP}: {e}");
            eprintln!("\n*** SKIP: no {INTERP} on this host ({e}) ***\n");
            None
        }
    }
}

/// A jail with glibc's ld.so at /lib and an empty directory /first, served
/// with /first:/lib as the default LDSO_PATH.
fn first_and_lib(host_ldso: &Path) -> (tempfile::TempDir, NamespaceSource) {
    let jail = tempfile::tempdir().unwrap();
    let lib = jail.path().join("lib");
    fs::create_dir(&lib).unwrap();
    fs::copy(host_ldso, lib.join(LDSO)).unwrap();
    let resolver = Resolver::new(Config {
        default_ldso_path: Some(b"/first:/lib".to_vec()),
        ..Default::default()
    });
    let source = NamespaceSource::new(resolver, Namespace::open(jail.path()).unwrap());
    assert!(source.cache.is_some(), "no inotify: nothing would be cached");
    (jail, source)
}

#[test]
fn a_directory_made_after_the_watches_keeps_the_answer_out_of_the_cache() {
    // The sandbox's LDSO_PATH is /first:/lib. The first search finds
    // /first missing, so the trace watches / for its creation and nothing
    // inside it. /first is made just then: the second search sees it (still
    // without an ld.so) and answers /lib's. That answer must not be kept,
    // or an ld.so put in /first later would never be seen (nothing watches
    // /first).
    let Some(host_ldso) = host_ldso() else { return };
    let (jail, source) = first_and_lib(&host_ldso);
    let lib = jail.path().join("lib");
    let first = jail.path().join("first");
    let made = first.clone();
    BETWEEN.set(Some(Box::new(move || fs::create_dir(&made).unwrap())));

    let answer = source.ldso(&request(), &me()).unwrap();
    assert!(BETWEEN.take().is_none(), "the change was not made");
    assert_eq!(id_of_fd(&answer), id_of(&lib.join(LDSO)));

    fs::copy(&host_ldso, first.join(LDSO)).unwrap();
    let answer = source.ldso(&request(), &me()).unwrap();
    assert_eq!(
        id_of_fd(&answer),
        id_of(&first.join(LDSO)),
        "the answer found after /first was made, with /first unwatched, was kept"
    );
    // The control: with nothing changing meanwhile, this answer is kept (so
    // the test's file system is one the cache trusts, and the check above
    // could have failed).
    assert!(source.cached(&request(), &me()).is_some(), "nothing is cached here");
}
