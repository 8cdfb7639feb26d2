//! Warm plans are never stale: a resolver that keeps its plans warm (see
//! DESIGN.md, "Warm plans") still sees each kind of change its search
//! consults — an ld.so.conf file (written, or written through a mapping,
//! which sends no inotify event), an included directory, a candidate
//! ld.so (appearing, disappearing, replaced, made non-executable), a
//! symbolic link on the way (repointed, or a directory its *target*
//! passes through replaced), a mount over a directory on the way, a
//! file system mounted again whose root has the old one's device and
//! inode — in the
//! next plan and in the next exec made from it; and a plan kept for one
//! client's credentials never serves another's.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::support::*;
use ldchain::resolver::{Config, Credentials, ExecPlan, Namespace, Resolver};

const LDSO: &str = "ld-linux-x86-64.so.2";

/// A jail that is also the namespace: the glibc probe and its libraries,
/// glibc's ld.so at `PT_INTERP` (the fallback) and in `/conf-a`, which
/// `/etc/ld.so.conf.d/a.conf` names.
fn jail() -> Option<Jail> {
    let probe = glibc_probe()?;
    let jail = Jail::new();
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.add(&glibc_ldso(), &format!("/lib64/{LDSO}"));
    jail.add(&glibc_ldso(), &format!("/conf-a/{LDSO}"));
    jail.write("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n", 0o644);
    jail.write("/etc/ld.so.conf.d/a.conf", b"/conf-a\n", 0o644);
    Some(jail)
}

/// (device, inode) of a host path.
fn id(path: &Path) -> (u64, u64) {
    let m = fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

/// Plan /bin/probe until the plan is kept warm (a resolver keeps plans
/// from its second on), so a change missed would be answered from it.
fn warm(r: &Resolver, ns: &Namespace) {
    for _ in 0..3 {
        plan(r, ns).unwrap();
    }
    assert!(r.warm_plans() >= 1, "no plan kept warm: this test would prove nothing");
}

fn plan(r: &Resolver, ns: &Namespace) -> Result<ExecPlan, ldchain::resolver::ExecError> {
    r.plan_exec(ns, "/bin/probe", &["probe", "args"], &[] as &[&str])
}

/// The next plan uses the ld.so at `inside` (that very file), and the
/// next exec, made from it in the jail, runs the program.
fn next_uses(r: &Resolver, ns: &Namespace, jail: &Jail, inside: &str, what: &str) {
    let p = plan(r, ns).unwrap_or_else(|e| panic!("{what}: {e}"));
    let (_, fd) = p.fd_pairs().next().unwrap();
    let got = rustix::fs::fstat(fd).unwrap();
    assert_eq!(
        (got.st_dev, got.st_ino),
        id(&jail.host(inside)),
        "{what}: the next plan did not use {inside} (plan: {:?})",
        p.ldso
    );
    assert_eq!(p.ldso.as_ref().unwrap().path, inside.as_bytes(), "{what}");
    let run = exec_plan(jail, p);
    assert_eq!(run.stdout, "argc=2\nargv[0]=probe\nargv[1]=args\n", "{what}: {run:#?}");
}

fn exec_plan(jail: &Jail, plan: ExecPlan) -> Run {
    use std::os::unix::process::CommandExt;
    let prepared = plan.prepare(&[] as &[&str]).unwrap();
    let mut cmd = jail.command(&["/nonexistent-placeholder"], &[]);
    // SAFETY: Prepared::exec only makes system calls (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || Err(prepared.exec()));
    }
    output(&mut cmd).unwrap().into()
}

/// Replace `inside` by `from`'s bytes under a new inode, at once (rename).
fn replace(jail: &Jail, inside: &str, bytes: &[u8], mode: u32) {
    let tmp = jail.host(&format!("{inside}.new"));
    fs::write(&tmp, bytes).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(&tmp, jail.host(inside)).unwrap();
}

/// Overwrite a file's bytes (same length) through a shared writable
/// mapping: the mtime moves, no inotify event is sent.
fn write_through_mapping(path: &Path, bytes: &[u8]) {
    assert_eq!(fs::metadata(path).unwrap().len() as usize, bytes.len());
    write_through_mapping_at(path, bytes);
}

/// Overwrite a file's first bytes through a shared writable mapping.
fn write_through_mapping_at(path: &Path, bytes: &[u8]) {
    use std::os::fd::AsRawFd;
    let f = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    // The file's timestamps have a clock tick's granularity.
    std::thread::sleep(std::time::Duration::from_millis(20));
    // SAFETY: a fresh shared mapping of `bytes.len()` bytes of an open
    // file, written within its bounds and unmapped before it is dropped.
    unsafe {
        let (prot, flags) = (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED);
        let p = libc::mmap(std::ptr::null_mut(), bytes.len(), prot, flags, f.as_raw_fd(), 0);
        assert_ne!(p, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len());
        assert_eq!(libc::msync(p, bytes.len(), libc::MS_SYNC), 0);
        libc::munmap(p, bytes.len());
    }
}

#[test]
fn ld_so_conf_files_and_included_directories() {
    let Some(jail) = jail() else { return };
    jail.add(&glibc_ldso(), &format!("/conf-b/{LDSO}"));
    jail.add(&glibc_ldso(), &format!("/conf-0/{LDSO}"));
    let (r, ns) = (Resolver::new(Config::default()), Namespace::open(jail.path()).unwrap());
    warm(&r, &ns);
    next_uses(&r, &ns, &jail, &format!("/conf-a/{LDSO}"), "before any change");
    // An included file rewritten.
    fs::write(jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-b\n").unwrap();
    next_uses(&r, &ns, &jail, &format!("/conf-b/{LDSO}"), "a.conf rewritten");
    // ... and through a mapping (no event: the held file's identity tells).
    warm(&r, &ns);
    write_through_mapping(&jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-a\n");
    next_uses(
        &r,
        &ns,
        &jail,
        &format!("/conf-a/{LDSO}"),
        "a.conf written through a mapping",
    );
    // A file appearing in the included directory, then going.
    warm(&r, &ns);
    jail.write("/etc/ld.so.conf.d/0.conf", b"/conf-0\n", 0o644);
    next_uses(&r, &ns, &jail, &format!("/conf-0/{LDSO}"), "0.conf added");
    warm(&r, &ns);
    fs::remove_file(jail.host("/etc/ld.so.conf.d/0.conf")).unwrap();
    next_uses(&r, &ns, &jail, &format!("/conf-a/{LDSO}"), "0.conf removed");
    // The top file itself.
    warm(&r, &ns);
    fs::write(jail.host("/etc/ld.so.conf"), b"/conf-b\n").unwrap();
    next_uses(&r, &ns, &jail, &format!("/conf-b/{LDSO}"), "ld.so.conf rewritten");
}

/// As root (else nothing, after saying why), in a mount namespace of its
/// own ([`in_own_mount_namespace`]), in the fresh jail: an empty tmpfs at
/// `/first`, listed in
/// `a.conf` before `/conf-a`, so that a search watches it. `check` gets
/// the namespace and a function that unmounts the tmpfs and mounts a new
/// one until its root has the old one's device and inode again: the kernel
/// numbers a tmpfs's root 1 and gives the lowest free anonymous device out
/// first, so the new root is the old watched inode's double, while the
/// kernel dropped the old watch with the old file system.
fn with_a_tmpfs_that_comes_back(check: impl FnOnce(&Jail, &Namespace, &dyn Fn()) + Send + 'static) {
    if !require_root("mounts in a private mount namespace") {
        return;
    }
    let Some(jail) = jail() else { return };
    fs::write(jail.host("/etc/ld.so.conf.d/a.conf"), b"/first\n/conf-a\n").unwrap();
    fs::create_dir(jail.host("/first")).unwrap();
    in_own_mount_namespace(move || {
        let first = jail.host("/first");
        let tmpfs = || mount(Some("tmpfs"), first.to_str().unwrap(), Some("tmpfs"), 0);
        tmpfs();
        let again = || {
            let old = id(&first);
            let back = (0..50).any(|_| {
                umount(&first);
                tmpfs();
                id(&first) == old
            });
            assert!(back, "no new tmpfs at /first had the old one's device and inode");
        };
        let ns = Namespace::open(jail.path()).unwrap();
        check(&jail, &ns, &again);
        // Or the jail, dropped here, cannot be removed.
        assert_eq!(umount2(&first, libc::MNT_DETACH), None, "unmounting /first");
    });
}

#[test]
fn a_watched_directory_whose_device_and_inode_come_back() {
    // The new tmpfs at /first must be watched, not skipped as the old
    // (device, inode) watched already, or an ld.so put in it later is
    // never seen by the next plan.
    with_a_tmpfs_that_comes_back(|jail, ns, again| {
        let r = Resolver::new(Config::default());
        warm(&r, ns);
        next_uses(&r, ns, jail, &format!("/conf-a/{LDSO}"), "before any change");
        again();
        warm(&r, ns);
        jail.add(&glibc_ldso(), &format!("/first/{LDSO}"));
        next_uses(&r, ns, jail, &format!("/first/{LDSO}"), "an ld.so put in the new tmpfs");
    });
}

#[test]
fn the_service_watches_a_directory_whose_device_and_inode_come_back() {
    // The same through the exec service's answer cache.
    with_a_tmpfs_that_comes_back(|jail, ns, again| {
        use ldchain::service::LdsoSource;
        let source = ldchain::service::NamespaceSource::new(Resolver::new(Config::default()), ns.clone());
        let request = crate::rights::request(&format!("/lib64/{LDSO}"), None);
        let me = Credentials {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            groups: Vec::new(),
        };
        let answer = |what: &str| {
            let fd = source.ldso(&request, &me).unwrap_or_else(|e| panic!("{what}: {e}"));
            let st = rustix::fs::fstat(&*fd).unwrap();
            (st.st_dev, st.st_ino)
        };
        let (conf_a, first) = (format!("/conf-a/{LDSO}"), format!("/first/{LDSO}"));
        assert_eq!(answer("before any change"), id(&jail.host(&conf_a)));
        again();
        assert_eq!(answer("the new tmpfs mounted"), id(&jail.host(&conf_a)));
        assert!(
            source.cached(&[(&request, &me)])[0].is_some(),
            "not cached: this test would prove nothing"
        );
        jail.add(&glibc_ldso(), &first);
        assert_eq!(
            answer("an ld.so put in the new tmpfs"),
            id(&jail.host(&first)),
            "the answer kept with the new tmpfs unwatched was given"
        );
    });
}

#[test]
fn a_candidate_appearing_disappearing_replaced_or_made_non_executable() {
    let Some(jail) = jail() else { return };
    let (r, ns) = (Resolver::new(Config::default()), Namespace::open(jail.path()).unwrap());
    let (conf_a, fallback) = (format!("/conf-a/{LDSO}"), format!("/lib64/{LDSO}"));
    let good = fs::read(glibc_ldso()).unwrap();
    warm(&r, &ns);
    fs::remove_file(jail.host(&conf_a)).unwrap();
    next_uses(&r, &ns, &jail, &fallback, "the candidate removed");
    warm(&r, &ns);
    jail.write(&conf_a, &good, 0o755);
    next_uses(&r, &ns, &jail, &conf_a, "the candidate back");
    warm(&r, &ns);
    replace(&jail, &conf_a, b"\x7fELF not a dynamic linker", 0o755);
    next_uses(&r, &ns, &jail, &fallback, "the candidate replaced by garbage");
    warm(&r, &ns);
    replace(&jail, &conf_a, &good, 0o755);
    next_uses(&r, &ns, &jail, &conf_a, "the candidate replaced by a good one");
    // Its bytes changed through a mapping (no event; same inode, size).
    warm(&r, &ns);
    write_through_mapping_at(&jail.host(&conf_a), b"XELF");
    next_uses(
        &r,
        &ns,
        &jail,
        &fallback,
        "the candidate's header broken through a mapping",
    );
    warm(&r, &ns);
    write_through_mapping_at(&jail.host(&conf_a), b"\x7fELF");
    next_uses(
        &r,
        &ns,
        &jail,
        &conf_a,
        "the candidate's header mended through a mapping",
    );
    warm(&r, &ns);
    fs::set_permissions(jail.host(&conf_a), fs::Permissions::from_mode(0o644)).unwrap();
    next_uses(&r, &ns, &jail, &fallback, "the candidate made non-executable");
    // The fallback gone as well: the next plan fails, as execve would.
    warm(&r, &ns);
    fs::remove_file(jail.host(&fallback)).unwrap();
    let e = plan(&r, &ns).unwrap_err();
    assert_eq!(e.errno_name(), "ENOENT", "{e}");
}

#[test]
fn a_symlink_on_the_way_repointed_or_its_targets_directory_replaced() {
    let Some(jail) = jail() else { return };
    for d in ["/deep/x/lib", "/deep/y/lib"] {
        jail.add(&glibc_ldso(), &format!("{d}/{LDSO}"));
    }
    symlink("deep/x/lib", jail.host("/conf-l")).unwrap();
    fs::write(jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-l\n").unwrap();
    let (r, ns) = (Resolver::new(Config::default()), Namespace::open(jail.path()).unwrap());
    let via = format!("/conf-l/{LDSO}");
    warm(&r, &ns);
    let check = |from: &str, what: &str| {
        let p = plan(&r, &ns).unwrap();
        let got = rustix::fs::fstat(p.fd_pairs().next().unwrap().1).unwrap();
        assert_eq!((got.st_dev, got.st_ino), id(&jail.host(from)), "{what}");
        assert_eq!(p.ldso.as_ref().unwrap().path, via.as_bytes(), "{what}");
        exec_plan(&jail, p).ok();
    };
    check(&format!("/deep/x/lib/{LDSO}"), "before any change");
    // Repointed at once (a new link renamed over it).
    symlink("deep/y/lib", jail.host("/conf-l.new")).unwrap();
    fs::rename(jail.host("/conf-l.new"), jail.host("/conf-l")).unwrap();
    check(&format!("/deep/y/lib/{LDSO}"), "the link repointed");
    // A directory only the link's target passes through replaced: nothing
    // changes in / or in the directory the link reached before.
    warm(&r, &ns);
    fs::rename(jail.host("/deep/y"), jail.host("/deep/old")).unwrap();
    fs::rename(jail.host("/deep/x"), jail.host("/deep/y")).unwrap();
    check(&format!("/deep/y/lib/{LDSO}"), "the target's parent directory replaced");
}

#[test]
fn a_mount_over_a_directory_on_the_way() {
    if !require_root("mounts in a private mount namespace") {
        return;
    }
    let Some(jail) = jail() else { return };
    jail.add(&glibc_ldso(), &format!("/other/{LDSO}"));
    // A resolver watching this thread's mount table (its watches are made
    // on its second plan, here).
    let outside = Resolver::new(Config::default());
    warm(&outside, &Namespace::open(jail.path()).unwrap());
    in_own_mount_namespace(move || {
        let (r, ns) = (Resolver::new(Config::default()), Namespace::open(jail.path()).unwrap());
        let (conf_a, fallback) = (format!("/conf-a/{LDSO}"), format!("/lib64/{LDSO}"));
        warm(&r, &ns);
        let target = jail.host("/conf-a");
        mount(Some("tmpfs"), target.to_str().unwrap(), Some("tmpfs"), 0);
        next_uses(&r, &ns, &jail, &fallback, "an empty tmpfs mounted over /conf-a");
        warm(&r, &ns);
        umount(&target);
        next_uses(&r, &ns, &jail, &conf_a, "the tmpfs unmounted");
        // A resolver that watches another mount table keeps no plan for a
        // root mounted here: it cannot see mounts under it.
        let kept = outside.warm_plans();
        for _ in 0..3 {
            next_uses(
                &outside,
                &ns,
                &jail,
                &conf_a,
                "planned by a resolver watching another mount table",
            );
        }
        assert_eq!(outside.warm_plans(), kept, "a plan kept without seeing its mounts");
        mount(Some("tmpfs"), target.to_str().unwrap(), Some("tmpfs"), 0);
        next_uses(
            &outside,
            &ns,
            &jail,
            &fallback,
            "mounted over, for a resolver watching another mount table",
        );
        umount(&target);
        warm(&r, &ns);
        let other = jail.host("/other");
        mount(
            Some(other.to_str().unwrap()),
            target.to_str().unwrap(),
            None,
            libc::MS_BIND,
        );
        let p = plan(&r, &ns).unwrap();
        let got = rustix::fs::fstat(p.fd_pairs().next().unwrap().1).unwrap();
        assert_eq!(
            (got.st_dev, got.st_ino),
            id(&jail.host(&format!("/other/{LDSO}"))),
            "another directory bound over /conf-a"
        );
        exec_plan(&jail, p).ok();
        // The kept plan holds the bound directory open: the mount is busy
        // until the resolver lets go of it.
        assert_eq!(umount2(&target, 0), Some(libc::EBUSY));
        r.forget_warm_plans();
        umount(&target);
        next_uses(&r, &ns, &jail, &conf_a, "the bound directory unmounted");
    });
}

/// Run `f` in a thread of its own, in a mount namespace of its own: mounts
/// made there are seen by nothing else, and go with the thread.
fn in_own_mount_namespace(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare takes flags only; it changes this thread alone.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNS) }, 0);
        mount(None, "/", Some("none"), libc::MS_REC | libc::MS_PRIVATE);
        f();
    })
    .join()
    .unwrap();
}

fn mount(source: Option<&str>, target: &str, fstype: Option<&str>, flags: libc::c_ulong) {
    use std::ffi::CString;
    let c = |s: &str| CString::new(s).unwrap();
    let (source, target, fstype) = (source.map(c), c(target), fstype.map(c));
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: NUL-terminated strings that outlive the call, or null.
    let r = unsafe { libc::mount(ptr(&source), target.as_ptr(), ptr(&fstype), flags, std::ptr::null()) };
    assert_eq!(r, 0, "mount {target:?}: {}", std::io::Error::last_os_error());
}

/// Unmount `target`, waiting up to 2 s for it to be free: a child another
/// test forks holds copies of this process's descriptors until it execs.
fn umount(target: &Path) {
    let t0 = std::time::Instant::now();
    while umount2(target, 0) == Some(libc::EBUSY) && t0.elapsed().as_secs() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        umount2(target, 0),
        Some(libc::EINVAL),
        "{} still mounted",
        target.display()
    );
}

/// `umount2(target, flags)`: None, or the errno.
fn umount2(target: &Path, flags: libc::c_int) -> Option<i32> {
    let t = std::ffi::CString::new(target.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated string that outlives the call.
    match unsafe { libc::umount2(t.as_ptr(), flags) } {
        0 => None,
        _ => std::io::Error::last_os_error().raw_os_error(),
    }
}

/// A plan kept for one client is never another's: uid 1000 may execute
/// /conf-a's ld.so (mode 0700, its own), uid 1001 may not, and one
/// resolver plans for both, each time after the other's plan was kept.
#[test]
fn a_plan_kept_for_one_client_never_serves_another() {
    if !require_root("plans made with other users' rights") {
        return;
    }
    let Some(jail) = jail() else { return };
    let conf_a = jail.host(&format!("/conf-a/{LDSO}"));
    fs::set_permissions(&conf_a, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&conf_a, Some(1000), Some(1000)).unwrap();
    let r = Resolver::new(Config::default());
    let as_user = |uid: u32| {
        Namespace::open(jail.path()).unwrap().with_credentials(Credentials {
            uid,
            gid: uid,
            groups: vec![],
        })
    };
    let (owner, other) = (as_user(1000), as_user(1001));
    for _ in 0..2 {
        warm(&r, &owner);
        assert_eq!(
            plan(&r, &owner).unwrap().ldso.unwrap().path,
            format!("/conf-a/{LDSO}").as_bytes()
        );
        assert_eq!(
            plan(&r, &other).unwrap().ldso.unwrap().path,
            format!("/lib64/{LDSO}").as_bytes()
        );
        warm(&r, &other);
        assert_eq!(
            plan(&r, &other).unwrap().ldso.unwrap().path,
            format!("/lib64/{LDSO}").as_bytes()
        );
        assert_eq!(
            plan(&r, &owner).unwrap().ldso.unwrap().path,
            format!("/conf-a/{LDSO}").as_bytes()
        );
    }
}

// ---------------------------------------------------------------------------
// The next exec through the exec service: a stub at PT_INTERP asks the
// service, whose cache answers from the I/O thread while nothing changed.

/// Counts the requests that reach a worker (searches), not those the
/// cache answers.
struct Counting(
    ldchain::service::NamespaceSource,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

impl ldchain::service::LdsoSource for Counting {
    fn ldso(
        &self,
        request: &ldchain::service::InterpRequest,
        client: &Credentials,
    ) -> Result<std::sync::Arc<std::os::fd::OwnedFd>, ldchain::resolver::ExecError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.ldso(request, client)
    }
    fn cached(
        &self,
        requests: &[(&ldchain::service::InterpRequest, &Credentials)],
    ) -> Vec<Option<std::sync::Arc<std::os::fd::OwnedFd>>> {
        self.0.cached(requests)
    }
    fn changes(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.0.changes()
    }
    fn refresh(&self) {
        self.0.refresh()
    }
    fn check_standing(&self, wait: bool) -> Option<bool> {
        self.0.check_standing(wait)
    }
}

/// A jail with the stub at the probe's PT_INTERP, glibc's ld.so in
/// /conf-a and /conf-z (both named by ld.so.conf, in that order), served
/// by an exec service in this process (stopped when dropped).
struct Served {
    jail: Jail,
    searches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The probe's standing answer, as the host sees it, when the service
    /// leaves answers standing.
    link: Option<std::path::PathBuf>,
    _service: ldchain::service::ExecService,
}

impl Served {
    /// With `answers`, the service leaves answers standing in the jail's
    /// /run/ldchain/ld, which the stub takes without asking.
    fn start(answers: bool) -> Option<Served> {
        let probe = glibc_probe()?;
        let jail = Jail::new();
        jail.add_glibc_program(&probe, "/bin/probe");
        jail.add(&host_chainloader(), &format!("/lib64/{LDSO}"));
        jail.add(&glibc_ldso(), &format!("/conf-a/{LDSO}"));
        jail.add(&glibc_ldso(), &format!("/conf-z/{LDSO}"));
        jail.write("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n", 0o644);
        jail.write("/etc/ld.so.conf.d/a.conf", b"/conf-a\n/conf-z\n", 0o644);
        let sock = jail.host("/run/ldchain/exec.sock");
        fs::create_dir_all(sock.parent().unwrap()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let ns = Namespace::open(jail.path()).unwrap();
        let mut source = ldchain::service::NamespaceSource::new(Resolver::new(Config::default()), ns);
        let mut link = None;
        if answers {
            let dir = jail.host("/run/ldchain/ld");
            fs::create_dir(&dir).unwrap();
            source = source.with_answer_dir(fs::File::open(&dir).unwrap().into());
            link = Some(dir.join(format!("003e2%2flib64%2f{LDSO}")));
        }
        let searches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counting = Counting(source, searches.clone());
        let limits = ldchain::service::Limits::default();
        let service = ldchain::service::ExecService::start(listener, std::sync::Arc::new(counting), limits).unwrap();
        Some(Served {
            jail,
            searches,
            link,
            _service: service,
        })
    }

    fn searches(&self) -> usize {
        self.searches.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Exec the probe in the jail (an empty environment: the stub asks
    /// the service) and return the (device, inode) of the ld.so it got,
    /// from its own /proc/self/maps.
    fn exec(&self) -> (u64, u64) {
        let mut cmd = self.jail.command(&["/bin/probe", "mapsall"], &[]);
        cmd.env_clear();
        let run: Run = output(&mut cmd).unwrap().into();
        let run = run.ok();
        let stub = format!("/lib64/{LDSO}");
        let line = run
            .stdout
            .lines()
            .find(|l| l.contains(LDSO) && !l.ends_with(&stub))
            .unwrap_or_else(|| panic!("no ld.so mapped: {run:#?}"));
        // "start-end perms offset MAJ:MIN inode path"
        let f: Vec<&str> = line.split_whitespace().collect();
        let (maj, min) = f[3].split_once(':').unwrap();
        let dev = rustix::fs::makedev(
            u32::from_str_radix(maj, 16).unwrap(),
            u32::from_str_radix(min, 16).unwrap(),
        );
        (dev, f[4].parse().unwrap())
    }

    /// Exec until the answer is cached (an exec then needs no search), and
    /// stands if answers are left standing.
    fn warm(&self) {
        self.exec();
        self.exec();
        let before = self.searches();
        self.exec();
        assert_eq!(
            self.searches(),
            before,
            "the answer is not cached: this test would prove nothing"
        );
        if let Some(link) = &self.link {
            self.wait_for("the answer left standing", &|| fs::symlink_metadata(link).is_ok());
        }
    }

    /// Wait until `cond`, at most 4 × STANDING_CHECK; how long it took.
    fn wait_for(&self, what: &str, cond: &dyn Fn() -> bool) -> std::time::Duration {
        let t0 = std::time::Instant::now();
        while !cond() {
            let waited = t0.elapsed();
            assert!(
                waited < 4 * ldchain::service::STANDING_CHECK,
                "{what}: not within {waited:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        t0.elapsed()
    }

    /// The next exec gets the ld.so at `inside`.
    fn next_uses(&self, inside: &str, what: &str) {
        self.next_is(id(&self.jail.host(inside)), &format!("{what}: {inside}"));
    }

    /// The next exec gets the ld.so that is `file` (device, inode). With
    /// answers standing, the next exec once the service has read the
    /// change's event (or compared the files, for a change that sends
    /// none): until the link goes, an exec may take it.
    fn next_is(&self, file: (u64, u64), what: &str) {
        if let Some(link) = &self.link {
            let stale = || {
                fs::read_link(link).is_ok_and(|target| {
                    let target = self.jail.host(target.to_str().unwrap());
                    fs::metadata(target).map_or(true, |m| (m.dev(), m.ino()) != file)
                })
            };
            self.wait_for(&format!("{what}: the stale answer removed"), &|| !stale());
        }
        assert_eq!(self.exec(), file, "{what}: the next exec did not get it");
    }
}

#[test]
fn the_service_sees_each_kind_of_change_in_the_next_exec() {
    each_kind_of_change(false);
}

/// The same with answers left standing: each kind of change removes the
/// standing answer, and the next exec after that gets the new answer.
#[test]
fn a_standing_answer_goes_with_each_kind_of_change() {
    each_kind_of_change(true);
}

fn each_kind_of_change(answers: bool) {
    let Some(s) = Served::start(answers) else { return };
    let (a, z) = (format!("/conf-a/{LDSO}"), format!("/conf-z/{LDSO}"));
    let good = fs::read(glibc_ldso()).unwrap();
    s.warm();
    s.next_uses(&a, "before any change");
    // An ld.so.conf file rewritten, and written through a mapping.
    fs::write(s.jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-z\n/conf-a\n").unwrap();
    s.next_uses(&z, "a.conf rewritten");
    s.warm();
    write_through_mapping(&s.jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-a\n/conf-z\n");
    s.next_uses(&a, "a.conf written through a mapping");
    // An included directory gains a file.
    s.warm();
    s.jail.add(&glibc_ldso(), &format!("/conf-0/{LDSO}"));
    s.warm();
    s.jail.write("/etc/ld.so.conf.d/0.conf", b"/conf-0\n", 0o644);
    s.next_uses(&format!("/conf-0/{LDSO}"), "0.conf added");
    s.warm();
    fs::remove_file(s.jail.host("/etc/ld.so.conf.d/0.conf")).unwrap();
    s.next_uses(&a, "0.conf removed");
    // A candidate goes, comes back, is replaced.
    s.warm();
    fs::remove_file(s.jail.host(&a)).unwrap();
    s.next_uses(&z, "the candidate removed");
    s.warm();
    s.jail.write(&a, &good, 0o755);
    s.next_uses(&a, "the candidate back");
    s.warm();
    replace(&s.jail, &a, &good, 0o755);
    s.next_uses(&a, "the candidate replaced (a new inode)");
    // A symbolic link on the way, repointed, and its target's directory
    // replaced.
    for d in ["/deep/x/lib", "/deep/y/lib"] {
        s.jail.add(&glibc_ldso(), &format!("{d}/{LDSO}"));
    }
    symlink("deep/x/lib", s.jail.host("/conf-l")).unwrap();
    fs::write(s.jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-l\n/conf-z\n").unwrap();
    s.warm();
    s.next_uses(&format!("/deep/x/lib/{LDSO}"), "through the link");
    symlink("deep/y/lib", s.jail.host("/conf-l.new")).unwrap();
    fs::rename(s.jail.host("/conf-l.new"), s.jail.host("/conf-l")).unwrap();
    s.next_uses(&format!("/deep/y/lib/{LDSO}"), "the link repointed");
    s.warm();
    let y_was = id(&s.jail.host(&format!("/deep/x/lib/{LDSO}")));
    fs::rename(s.jail.host("/deep/y"), s.jail.host("/deep/old")).unwrap();
    fs::rename(s.jail.host("/deep/x"), s.jail.host("/deep/y")).unwrap();
    s.next_is(y_was, "the link target's parent directory replaced");
}

/// A standing answer is taken without asking, so no hit compares the
/// files it depended on; a write through a mapping sends no event. The
/// service compares them itself every `STANDING_CHECK` while answers
/// stand: the link goes, and the next exec after it gets the new answer.
/// The service first finds nothing standing (its first check disarms the
/// timer), and the write comes after two more checks: the answer a worker
/// left must arm it again, and each check must arm the next.
#[test]
fn a_standing_answer_goes_after_a_change_no_event_reports() {
    let Some(s) = Served::start(true) else { return };
    let (a, z) = (format!("/conf-a/{LDSO}"), format!("/conf-z/{LDSO}"));
    let link = s.link.clone().unwrap();
    let check = ldchain::service::STANDING_CHECK;
    std::thread::sleep(check.mul_f64(1.5));
    s.warm();
    assert_eq!(fs::read_link(&link).unwrap(), Path::new(&a));
    let before = s.searches();
    s.next_uses(&a, "through the standing answer");
    assert_eq!(s.searches(), before, "the stub asked: the answer does not stand");
    std::thread::sleep(check.mul_f64(2.5));
    write_through_mapping(&s.jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-z\n/conf-a\n");
    let took = s.wait_for("the stale link removed", &|| fs::symlink_metadata(&link).is_err());
    eprintln!("the stale link went {took:?} after the write");
    s.next_uses(&z, "a.conf written through a mapping, its standing answer gone");
}

/// The exec service's I/O thread waits on [`Changes::waitable`] while its
/// workers look with [`Changes::changed`]. A wait that reported a mount
/// change must not hide it from the next look: a worker answering between
/// the wait and the I/O thread's refresh (which waits for the cache while
/// another worker traces) would give the answer from before the mount.
#[test]
fn a_wait_for_changes_hides_no_mount_change_from_the_next_look() {
    use ldchain::resolver::watch::Changes;
    in_own_mount_namespace(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut changes = Changes::new().expect("inotify and the mount table");
        let waitable = changes.waitable().unwrap();
        assert!(!changes.changed(), "a change reported before any was made");
        mount(Some("none"), dir.path().to_str().unwrap(), Some("tmpfs"), 0);
        let mut events = Vec::with_capacity(4);
        let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
        rustix::event::epoll::wait(&waitable, rustix::buffer::spare_capacity(&mut events), Some(&zero)).unwrap();
        assert!(!events.is_empty(), "the wait did not report the mount");
        assert!(
            changes.changed(),
            "the mount reported to the wait was not reported to the next look"
        );
        umount(dir.path());
    });
}

/// The I/O thread asks the cache for the requests it read together: one
/// look for events serves them all, and each answer's held files are
/// compared once per batch. Every answer in a batch is still compared, not
/// only the first one's.
#[test]
fn a_batch_from_the_cache_compares_each_answer_it_gives() {
    use ldchain::service::LdsoSource;
    let Some(jail) = jail() else { return };
    jail.add(&glibc_ldso(), &format!("/b/{LDSO}"));
    let source =
        ldchain::service::NamespaceSource::new(Resolver::new(Config::default()), Namespace::open(jail.path()).unwrap());
    let me = Credentials {
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
        groups: Vec::new(),
    };
    let interp = format!("/lib64/{LDSO}");
    // From ld.so.conf (its files held), and from LDSO_PATH (/b's ld.so held).
    let (conf, b) = (
        crate::rights::request(&interp, None),
        crate::rights::request(&interp, Some("/b")),
    );
    let inode = |fd: &std::os::fd::OwnedFd| {
        let st = rustix::fs::fstat(fd).unwrap();
        (st.st_dev, st.st_ino)
    };
    for request in [&conf, &b] {
        // The second answer is the one kept.
        for _ in 0..2 {
            source.ldso(request, &me).unwrap();
        }
    }
    let batch = [(&b, &me), (&conf, &me), (&conf, &me), (&b, &me)];
    let got: Vec<_> = source
        .cached(&batch)
        .into_iter()
        .map(|fd| fd.map(|fd| inode(&fd)))
        .collect();
    let (a_id, b_id) = (
        id(&jail.host(&format!("/conf-a/{LDSO}"))),
        id(&jail.host(&format!("/b/{LDSO}"))),
    );
    assert_eq!(
        got,
        [Some(b_id), Some(a_id), Some(a_id), Some(b_id)],
        "not cached: this test would prove nothing"
    );
    // No event is sent for this write: only the comparison sees it.
    write_through_mapping(&jail.host("/etc/ld.so.conf.d/a.conf"), b"/conf-b\n");
    let got = source.cached(&[(&b, &me), (&conf, &me)]);
    assert!(
        got[0].is_some(),
        "the answer that depended on nothing changed was dropped"
    );
    assert!(
        got[1].is_none(),
        "the second answer of a batch was given though a file it depended on changed"
    );
}

#[test]
fn the_service_sees_a_mount_over_a_directory_on_the_way() {
    served_through_a_mount_on_the_way(false);
}

/// The same with answers left standing.
#[test]
fn a_standing_answer_goes_with_a_mount_over_a_directory_on_the_way() {
    served_through_a_mount_on_the_way(true);
}

fn served_through_a_mount_on_the_way(answers: bool) {
    if !require_root("mounts in a private mount namespace") {
        return;
    }
    // The service, its threads and the jail's processes, all in a mount
    // namespace of this thread's own.
    std::thread::spawn(move || {
        // SAFETY: unshare takes flags only; it changes this thread alone.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNS) }, 0);
        mount(None, "/", Some("none"), libc::MS_REC | libc::MS_PRIVATE);
        let Some(s) = Served::start(answers) else { return };
        let (a, z) = (format!("/conf-a/{LDSO}"), format!("/conf-z/{LDSO}"));
        s.jail.add(&glibc_ldso(), &format!("/other/{LDSO}"));
        s.warm();
        s.next_uses(&a, "before any change");
        let target = s.jail.host("/conf-a");
        mount(Some("tmpfs"), target.to_str().unwrap(), Some("tmpfs"), 0);
        s.next_uses(&z, "an empty tmpfs mounted over /conf-a");
        s.warm();
        umount(&target);
        s.next_uses(&a, "the tmpfs unmounted");
        s.warm();
        let other = s.jail.host("/other");
        mount(
            Some(other.to_str().unwrap()),
            target.to_str().unwrap(),
            None,
            libc::MS_BIND,
        );
        s.next_uses(&format!("/other/{LDSO}"), "another directory bound over /conf-a");
        // Or the jail, dropped with `s`, cannot be removed.
        assert_eq!(umount2(&target, libc::MNT_DETACH), None, "unmounting /conf-a");
        drop(s);
    })
    .join()
    .unwrap();
}
