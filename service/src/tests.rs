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
    assert!(
        source.cached(&[(&request(), &me())])[0].is_some(),
        "nothing is cached here"
    );
}

#[test]
fn a_worker_tracing_a_new_answer_does_not_stall_the_io_thread() {
    // A worker holds the cache while it traces a new answer's paths (up to
    // 256 of them, each up to 256 steps: milliseconds, and the jail picks
    // them). Meanwhile a request with a cached answer arrives: the I/O
    // thread must not wait for the cache (it goes to a worker instead), so
    // it still reads and refuses a malformed request at once.
    use std::io::Write;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::mpsc;
    use std::time::Duration;
    let Some(host_ldso) = host_ldso() else { return };
    let (jail, source) = first_and_lib(&host_ldso);
    let socket = jail.path().join("exec.sock");
    let service = crate::ExecService::start(
        UnixListener::bind(&socket).unwrap(),
        Arc::new(source),
        crate::Limits::default(),
    )
    .unwrap();
    let ask = |request: &[u8]| {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request).unwrap();
        s
    };
    // The errno of a reply, or None (closed without one).
    let errno = |s: &UnixStream| {
        let mut buf = [0u8; chainloader::proto::REPLY_HEADER];
        let n = rustix::net::recv(s, &mut buf, rustix::net::RecvFlags::WAITALL)
            .unwrap()
            .0;
        chainloader::proto::decode_reply_header(&buf[..n]).map(|(errno, _)| errno)
    };
    // Cached: asked twice (the second answer is the one kept).
    for _ in 0..2 {
        assert_eq!(errno(&ask(&request().encode())), Some(0));
    }
    let (tracing, release) = (mpsc::channel(), mpsc::channel::<()>());
    let (started, wait) = (tracing.0, release.1);
    *crate::lock::lock(&crate::cache::WHILE_TRACING) = Some(Box::new(move || {
        started.send(()).unwrap();
        let _ = wait.recv_timeout(Duration::from_secs(20));
    }));
    // A new key: a worker searches, then traces, holding the cache.
    let new_key = InterpRequest {
        ldso_path: Some(b"/lib".to_vec()),
        ..request()
    };
    let traced = ask(&new_key.encode());
    tracing.1.recv_timeout(Duration::from_secs(20)).expect("no trace began");
    // The cached one goes to a worker (the trace's is the other one being
    // answered) rather than wait for the cache...
    let cached = ask(&request().encode());
    let handed_on = std::time::Instant::now() + Duration::from_secs(20);
    while service.stats().answering.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < handed_on,
            "a request with a cached answer was not handed to a worker while a worker traced: \
             the I/O thread waited for the cache"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // ... and a malformed one is refused while the trace goes on.
    let mut bad = request().encode();
    bad[0] = b'X';
    let refused = ask(&bad);
    refused.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let r = rustix::net::recv(&refused, &mut [0u8; 8], rustix::net::RecvFlags::PEEK);
    assert!(
        matches!(r, Ok((n, _)) if n > 0),
        "no refusal while a worker traced: the I/O thread waited for the cache ({r:?})"
    );
    release.0.send(()).unwrap();
    assert_eq!(errno(&traced), Some(0));
    assert_eq!(errno(&cached), Some(0));
    assert_ne!(errno(&refused), Some(0));
    drop(service);
}
