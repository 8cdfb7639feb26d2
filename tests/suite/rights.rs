//! The exec service acts with its client's rights, never its own:
//! it hands out only a dynamic linker the requesting process could have
//! used as its interpreter itself — every directory on the way searchable,
//! the file readable and executable, for that process's uid, gid and
//! groups, with no capabilities — and its replies tell no more than
//! `execve` would. Real jails, real glibc ld.so, real sockets; clients are
//! threads that take on a jail process's credentials (ids, groups, no
//! capabilities) before they connect, so `SO_PEERCRED` reports them.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use ldchain::resolver::{Config, Credentials, ExecError, Machine, Namespace, Resolver};
use ldchain::service::{ExecService, InterpRequest, LdsoSource, Limits, NamespaceSource};
use rustix::process::{Gid, Uid};
use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::support::*;

const GLIBC: &str = "/lib64/ld-linux-x86-64.so.2";
const LDSO_NAME: &str = "ld-linux-x86-64.so.2";

/// A jail process's credentials: uid 65534 (what `ldchain run` as root
/// runs programs as), or root of the jail without capabilities.
#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    JailRoot,
}

impl Reply {
    /// The (dev, ino) of the one descriptor handed out.
    fn served(self) -> (u64, u64) {
        assert_eq!(self.errno, Some(0), "{self:?}");
        assert_eq!(self.fds.len(), 1, "{self:?}");
        let m = File::from(self.fds.into_iter().next().unwrap()).metadata().unwrap();
        (m.dev(), m.ino())
    }

    /// Refused: the errno and message, and no descriptor.
    fn refused(self) -> (u16, String) {
        assert!(self.fds.is_empty(), "a descriptor was handed out: {self:?}");
        let errno = self.errno.expect("a reply");
        assert_ne!(errno, 0, "{self:?}");
        (errno, self.message)
    }
}

/// Send `request` from a thread that is `who` — ids, no supplementary
/// groups, every capability set empty, as the jail's processes are — and
/// read the reply. Only that thread changes (per-thread system calls).
fn ask_as(who: Who, socket: &Path, request: &InterpRequest) -> Reply {
    let bytes = request.encode();
    std::thread::scope(|s| {
        s.spawn(|| {
            let id = match who {
                Who::Nobody => 65534,
                Who::JailRoot => 0,
            };
            rustix::thread::set_thread_groups(&[]).unwrap();
            rustix::thread::set_thread_res_gid(Gid::from_raw(id), Gid::from_raw(id), Gid::from_raw(id)).unwrap();
            rustix::thread::set_thread_res_uid(Uid::from_raw(id), Uid::from_raw(id), Uid::from_raw(id)).unwrap();
            let none = CapabilitySets {
                effective: CapabilitySet::empty(),
                permitted: CapabilitySet::empty(),
                inheritable: CapabilitySet::empty(),
            };
            rustix::thread::set_capabilities(None, none).unwrap();
            let mut c = UnixStream::connect(socket).unwrap();
            c.write_all(&bytes).unwrap();
            receive(&c)
        })
        .join()
        .unwrap()
    })
}

/// A jail served by an in-process exec service on a socket anyone may use.
struct Served {
    jail: Jail,
    socket: PathBuf,
    _service: ExecService,
}

impl Served {
    fn new(jail: Jail) -> Served {
        Served::with_answers(jail, None)
    }

    /// Served, leaving standing answers in `answers` (a host directory).
    fn with_answers(jail: Jail, answers: Option<&Path>) -> Served {
        let socket = jail.host("/tmp/exec.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o777)).unwrap();
        let ns = Namespace::open(jail.path()).unwrap();
        let mut source = NamespaceSource::new(Resolver::new(Config::default()), ns);
        if let Some(dir) = answers {
            source = source.with_answer_dir(OwnedFd::from(File::open(dir).unwrap()));
        }
        let service = ExecService::start(listener, Arc::new(source), Limits::default()).unwrap();
        Served {
            jail,
            socket,
            _service: service,
        }
    }

    fn ask(&self, who: Who, request: &InterpRequest) -> Reply {
        ask_as(who, &self.socket, request)
    }

    fn id(&self, inside: &str) -> (u64, u64) {
        let m = fs::metadata(self.jail.host(inside)).unwrap();
        (m.dev(), m.ino())
    }
}

/// A stub's request for `/bin/app` from `/`, with `LDSO_PATH` if given.
pub(crate) fn request(interp: &str, ldso_path: Option<&str>) -> InterpRequest {
    InterpRequest {
        machine: Machine::X86_64,
        interp: interp.as_bytes().to_vec(),
        execfn: b"/bin/app".to_vec(),
        cwd: b"/".to_vec(),
        ldso_path: ldso_path.map(|p| p.as_bytes().to_vec()),
        ld_library_path: None,
        secure: false,
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The jail: a root-owned 0700 `/secret` holding a 0700 static-pie
/// program and a 0600 copy of ld.so; the real ld.so, 0755, in /opt/glibc;
/// and ld.so copies that lack one right each: `/noexec` 0644 (readable,
/// not executable), `/execonly` 0711 (executable, not readable by others).
fn secret_jail() -> Option<Jail> {
    let secretprog = compile("hello-static-pie", "gcc", &["-static-pie"], "hello.c")?;
    let jail = Jail::new();
    jail.add(&glibc_ldso(), &format!("/opt/glibc/{LDSO_NAME}"));
    chmod(&jail.host(&format!("/opt/glibc/{LDSO_NAME}")), 0o755);
    jail.add(&secretprog, "/secret/secretprog");
    chmod(&jail.host("/secret/secretprog"), 0o700);
    jail.add(&glibc_ldso(), &format!("/secret/{LDSO_NAME}"));
    chmod(&jail.host(&format!("/secret/{LDSO_NAME}")), 0o600);
    chmod(&jail.host("/secret"), 0o700);
    for (dir, mode) in [("/noexec", 0o644), ("/execonly", 0o711)] {
        let p = format!("{dir}/{LDSO_NAME}");
        jail.add(&glibc_ldso(), &p);
        chmod(&jail.host(&p), mode);
    }
    Some(jail)
}

#[test]
fn the_service_hands_a_client_only_an_interpreter_it_could_exec_itself() {
    if !require_root("the service must be able to open root-only files") {
        return;
    }
    let Some(jail) = secret_jail() else { return };
    let served = Served::new(jail);

    // Its own request naming the root-only program as PT_INTERP: the
    // kernel would say EACCES to uid 65534, and so does the service.
    let secret = request("/secret/secretprog", None);
    let (errno, msg) = served.ask(Who::Nobody, &secret).refused();
    assert_eq!(errno as i32, libc::EACCES, "{msg}");
    // The jail's root (no capabilities, but the owner) may use it.
    assert_eq!(
        served.ask(Who::JailRoot, &secret).served(),
        served.id("/secret/secretprog")
    );

    // LDSO_PATH through every kind of file it may not use: nobody gets the
    // real one, after all of them.
    let all = request(GLIBC, Some("/secret:/noexec:/execonly:/opt/glibc"));
    let real = served.id(&format!("/opt/glibc/{LDSO_NAME}"));
    assert_eq!(served.ask(Who::Nobody, &all).served(), real);
    // The jail's root cannot execute the 0600 or the 0644 copy either (no
    // execute bit at all), but owns the 0711 one.
    assert_eq!(
        served.ask(Who::JailRoot, &all).served(),
        served.id(&format!("/execonly/{LDSO_NAME}"))
    );
    // Asked again (now from the cache), each still gets its own answer.
    assert_eq!(served.ask(Who::Nobody, &all).served(), real);
    let only_secret = request(GLIBC, Some("/secret"));
    assert!(served.ask(Who::Nobody, &only_secret).refused().0 != 0);
}

/// An answer kept for one client never serves another: the jail's root
/// owns /secret's ld.so (made 0700), nothing on its way is refused, so its
/// answer is cached; uid 65534, asking the same, gets the ld.so it may use.
#[test]
fn a_cached_answer_serves_only_the_client_it_was_found_for() {
    if !require_root("the service must be able to open root-only files") {
        return;
    }
    let Some(jail) = secret_jail() else { return };
    chmod(&jail.host(&format!("/secret/{LDSO_NAME}")), 0o700);
    let served = Served::new(jail);
    let both = request(GLIBC, Some("/secret:/opt/glibc"));
    let secret = served.id(&format!("/secret/{LDSO_NAME}"));
    for _ in 0..3 {
        assert_eq!(served.ask(Who::JailRoot, &both).served(), secret);
    }
    assert_eq!(
        served.ask(Who::Nobody, &both).served(),
        served.id(&format!("/opt/glibc/{LDSO_NAME}")),
        "uid 65534 was given the answer kept for the jail's root"
    );
}

#[test]
fn a_refusal_does_not_tell_whether_a_file_exists_where_the_client_cannot_look() {
    if !require_root("the service must be able to see into root-only directories") {
        return;
    }
    let Some(jail) = secret_jail() else { return };
    let served = Served::new(jail);
    // A name nothing else in the jail has: only LDSO_PATH=/secret could
    // find it. Asked with the file absent, then present (a valid ld.so, and
    // an invalid one): the same reply each time, to the byte.
    let ask = || {
        let r = served.ask(Who::Nobody, &request("/lib64/ld-hidden.so.2", Some("/secret")));
        r.refused()
    };
    let absent = ask();
    let hidden = served.jail.host("/secret/ld-hidden.so.2");
    copy_file(&glibc_ldso(), &hidden);
    chmod(&hidden, 0o755);
    assert_eq!(ask(), absent, "a usable ld.so in /secret shows");
    fs::write(&hidden, b"not an ELF file").unwrap();
    assert_eq!(ask(), absent, "an unusable file in /secret shows");
}

/// `ldchain` itself, run by `who`.
fn ldchain(nobody: bool) -> Command {
    let bin = env!("CARGO_BIN_EXE_ldchain");
    let mut c = if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    c.stdin(Stdio::null()).env_remove("RUST_LOG").current_dir("/");
    c
}

/// `ldchain run --root` of a static parent that execs a dynamic child with
/// `LDSO_PATH=/secret:/opt/glibc` (the child goes through the stub and the service).
fn spawn_with_secret_ldso_path(jail: &Jail, nobody: bool) -> Run {
    let mut c = ldchain(nobody);
    c.args(["-v", "run", "--root"]).arg(jail.path());
    c.args(["--ldso-path", "/opt/glibc", "--"]);
    c.args([
        "/bin/spawn",
        "env",
        "LDSO_PATH=/secret:/opt/glibc",
        "--",
        "/bin/probe",
        "args",
    ]);
    c.output().expect("run ldchain").into()
}

fn jail_with_probe() -> Option<Jail> {
    let jail = Jail::new();
    jail.add_glibc_program(&glibc_probe()?, "/bin/probe");
    jail.add(&compile("spawn-static", "gcc", &["-static"], "spawn.c")?, "/bin/spawn");
    jail.add(&glibc_ldso(), &format!("/opt/glibc/{LDSO_NAME}"));
    Some(jail)
}

#[test]
fn a_jail_program_cannot_borrow_ldchains_rights_through_ldso_path() {
    if !require_root("`ldchain run` as root runs the jail's programs as uid 65534") {
        return;
    }
    let Some(jail) = jail_with_probe() else { return };
    // The shape: a 0600 ld.so in a root-only directory.
    let secret = jail.host(&format!("/secret/{LDSO_NAME}"));
    jail.add(&glibc_ldso(), &format!("/secret/{LDSO_NAME}"));
    chmod(&secret, 0o600);
    chmod(&jail.host("/secret"), 0o700);
    let r = spawn_with_secret_ldso_path(&jail, false);
    assert!(r.stdout.ends_with("spawn: status 0\n"), "{r:#?}");
    assert_eq!(chosen(r.stderr.lines()), [format!("/opt/glibc/{LDSO_NAME}")], "{r:#?}");
}

#[test]
fn an_unprivileged_ldchain_run_lends_its_namespace_capabilities_to_no_one() {
    if !nobody_can_run("ldchain run by an unprivileged user") {
        return;
    }
    let Some(jail) = jail_with_probe() else { return };
    // Everything is uid 65534's — the caller's, so root's inside its user
    // namespace, where ldchain has every capability over it. /secret is
    // mode 0000: only a capability (CAP_DAC_READ_SEARCH) searches it, and
    // the jail's program, uid 0 there too, has none.
    jail.add(&glibc_ldso(), &format!("/secret/{LDSO_NAME}"));
    chmod(&jail.host(&format!("/secret/{LDSO_NAME}")), 0o755);
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(jail.path())
        .status()
        .unwrap();
    assert!(status.success());
    chmod(&jail.host("/secret"), 0o000);
    let r = spawn_with_secret_ldso_path(&jail, true);
    assert!(r.stdout.ends_with("spawn: status 0\n"), "{r:#?}");
    assert_eq!(chosen(r.stderr.lines()), [format!("/opt/glibc/{LDSO_NAME}")], "{r:#?}");
}

/// The calling thread's `Uid:`, `Gid:`, `Groups:` and `CapEff:` lines.
fn thread_credentials() -> Vec<String> {
    let status = fs::read_to_string("/proc/thread-self/status").unwrap();
    status
        .lines()
        .filter(|l| ["Uid:", "Gid:", "Groups:", "CapEff:"].iter().any(|k| l.starts_with(k)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn plan_exec_for_a_client_uses_its_rights_and_gives_the_thread_its_own_back() {
    if !require_root("planning as uid 65534 from root") {
        return;
    }
    let Some(jail) = secret_jail() else { return };
    let Some(probe) = glibc_probe() else { return };
    jail.add_glibc_program(&probe, "/bin/probe");
    let nobody = Credentials {
        uid: 65534,
        gid: 65534,
        groups: vec![],
    };
    let resolver = Resolver::new(Config::default());
    let own = Namespace::open(jail.path()).unwrap();
    let theirs = own.clone().with_credentials(nobody);
    let before = thread_credentials();
    let env = ["LDSO_PATH=/secret:/noexec:/execonly:/opt/glibc"];
    // The default: the caller's own rights (root: the 0711 copy is the
    // first it may execute; 0600 and 0644 have no execute bit at all).
    let plan = resolver.plan_exec(&own, "/bin/probe", &["probe"], &env).unwrap();
    assert_eq!(
        plan.ldso.as_ref().unwrap().path,
        format!("/execonly/{LDSO_NAME}").into_bytes()
    );
    // As uid 65534: only the real one.
    let plan = resolver.plan_exec(&theirs, "/bin/probe", &["probe"], &env).unwrap();
    assert_eq!(
        plan.ldso.as_ref().unwrap().path,
        format!("/opt/glibc/{LDSO_NAME}").into_bytes()
    );
    assert_eq!(
        thread_credentials(),
        before,
        "the thread's credentials were not restored"
    );
    // The program itself: root may, uid 65534 may not (EACCES, as execve).
    resolver
        .plan_exec(&own, "/secret/secretprog", &["s"], &[] as &[&str])
        .unwrap();
    let e = resolver
        .plan_exec(&theirs, "/secret/secretprog", &["s"], &[] as &[&str])
        .unwrap_err();
    assert_eq!(e.errno(), libc::EACCES, "{e}");
    assert!(
        matches!(e, ExecError::Io { .. } | ExecError::PermissionDenied { .. }),
        "{e:?}"
    );
    // Readable by all, executable by its owner alone (0744, root's): the
    // kernel refuses uid 65534 (EACCES), though ld.so could read and run it.
    jail.add(&jail.host("/secret/secretprog"), "/bin/owners");
    chmod(&jail.host("/bin/owners"), 0o744);
    resolver.plan_exec(&own, "/bin/owners", &["o"], &[] as &[&str]).unwrap();
    let e = resolver
        .plan_exec(&theirs, "/bin/owners", &["o"], &[] as &[&str])
        .unwrap_err();
    assert_eq!(e.errno(), libc::EACCES, "{e}");
    assert!(e.to_string().contains("no execute permission"), "{e}");
    assert_eq!(
        thread_credentials(),
        before,
        "the thread's credentials were not restored"
    );
}

/// The standing answers' targets in `dir`.
fn standing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| fs::read_link(e.unwrap().path()).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

/// A standing answer is taken by every process without asking, so one
/// searched with a client's rights stands only if no candidate was refused
/// for want of permission: uid 65534's answer (past a root-only directory)
/// would send the jail's root past the ld.so it may use.
#[test]
fn an_answer_that_depended_on_the_clients_rights_never_stands() {
    if !require_root("the service must see into root-only directories") {
        return;
    }
    let Some(jail) = secret_jail() else { return };
    chmod(&jail.host(&format!("/secret/{LDSO_NAME}")), 0o755);
    jail.write("/etc/ld.so.conf", b"/secret\n/opt/glibc\n", 0o644);
    let answers = tempfile::tempdir().unwrap();
    let served = Served::with_answers(jail, Some(answers.path()));
    let plain = request(GLIBC, None);
    let real = served.id(&format!("/opt/glibc/{LDSO_NAME}"));
    for _ in 0..2 {
        assert_eq!(served.ask(Who::Nobody, &plain).served(), real);
    }
    assert_eq!(standing(answers.path()), Vec::<String>::new());
    // The jail's root searches /secret: nothing refused, so its answer stands.
    let secret = served.id(&format!("/secret/{LDSO_NAME}"));
    for _ in 0..2 {
        assert_eq!(served.ask(Who::JailRoot, &plain).served(), secret);
    }
    assert_eq!(standing(answers.path()), [format!("/secret/{LDSO_NAME}")]);
}

/// An answer that depended on the client's rights is not cached, so
/// nothing is watched where the client may not look: uid 65534's search
/// is refused at the root-only `/secret` on its way to `/secret/deeper`.
/// Watched with the service's rights, a file made in `/secret/deeper`
/// emptied the cache and unlinked every standing answer, which the jail
/// sees: a change in a directory it may not read, told.
#[test]
fn a_change_where_the_client_may_not_look_is_not_told_to_the_jail() {
    if !require_root("the service must see into root-only directories") {
        return;
    }
    let Some(jail) = secret_jail() else { return };
    fs::create_dir(jail.host("/secret/deeper")).unwrap();
    jail.write("/etc/ld.so.conf", b"/secret/deeper\n/opt/glibc\n", 0o644);
    let answers = tempfile::tempdir().unwrap();
    let served = Served::with_answers(jail, Some(answers.path()));
    let real = served.id(&format!("/opt/glibc/{LDSO_NAME}"));
    // An answer that stands: LDSO_PATH names /opt/glibc, nothing refused.
    let own_path = request(GLIBC, Some("/opt/glibc"));
    for _ in 0..2 {
        assert_eq!(served.ask(Who::Nobody, &own_path).served(), real);
    }
    let standing_now = standing(answers.path());
    assert_eq!(standing_now.len(), 1, "no answer stands: this test would prove nothing");
    // ld.so.conf's /secret/deeper is refused (EACCES at /secret).
    let plain = request(GLIBC, None);
    for _ in 0..2 {
        assert_eq!(served.ask(Who::Nobody, &plain).served(), real);
    }
    fs::write(served.jail.host("/secret/deeper/other-users-file"), b"").unwrap();
    // Another request (its own key: the standing one is not made again) is
    // answered after the I/O thread has read the change reports, if any.
    let another = request(GLIBC, Some("/opt/glibc:/elsewhere"));
    assert_eq!(served.ask(Who::Nobody, &another).served(), real);
    assert_eq!(
        standing(answers.path()).len(),
        2,
        "a file made in a directory uid 65534 may not search unlinked the first standing answer"
    );
}

/// `ldchain run` leaves its program's answer standing before the service
/// starts (`stand_ahead`: one search, nothing watched yet), and `prime`
/// then watches what that search consulted and searches again. An early
/// link that the watched answer does not replace is withdrawn. Last case:
/// the first directory's ld.so became root-only in between, so uid
/// 65534's answer (past it) depends on its rights and may not stand, and
/// the early link would send every process to the ld.so only root may use.
#[test]
fn an_answer_left_standing_early_goes_unless_the_watched_answer_replaces_it() {
    if !require_root("the ld.so must become root-only") {
        return;
    }
    let jail = Jail::new();
    for dir in ["/opt/a", "/opt/b"] {
        let p = format!("{dir}/{LDSO_NAME}");
        jail.add(&glibc_ldso(), &p);
        chmod(&jail.host(&p), 0o755);
    }
    jail.write("/etc/ld.so.conf", b"/opt/a\n/opt/b\n", 0o644);
    let answers = tempfile::tempdir().unwrap();
    let open = || {
        let ns = Namespace::open(jail.path()).unwrap();
        NamespaceSource::new(Resolver::new(Config::default()), ns)
            .with_answer_dir(OwnedFd::from(File::open(answers.path()).unwrap()))
    };
    let nobody = Credentials {
        uid: 65534,
        gid: 65534,
        groups: Vec::new(),
    };
    let plain = request(GLIBC, None);
    let a = format!("/opt/a/{LDSO_NAME}");

    // Nothing changed: the watched answer stands where the early one did.
    let source = open();
    let ahead = source.stand_ahead(&plain, &nobody).unwrap();
    assert_eq!(standing(answers.path()), std::slice::from_ref(&a));
    source.prime(&plain, &nobody, ahead);
    assert_eq!(standing(answers.path()), std::slice::from_ref(&a));
    drop(source);

    // Another answer since: the early one goes (the watched search found a
    // candidate the early one never consulted, so it is not cached), and
    // the next request leaves the new answer standing.
    let source = open();
    let ahead = source.stand_ahead(&plain, &nobody).unwrap();
    assert_eq!(standing(answers.path()), std::slice::from_ref(&a));
    jail.write("/etc/ld.so.conf", b"/opt/b\n", 0o644);
    source.prime(&plain, &nobody, ahead);
    assert_eq!(standing(answers.path()), Vec::<String>::new());
    source.ldso(&plain, &nobody).unwrap();
    assert_eq!(standing(answers.path()), [format!("/opt/b/{LDSO_NAME}")]);
    drop(source);

    // An answer that may not stand since: the early one goes.
    jail.write("/etc/ld.so.conf", b"/opt/a\n/opt/b\n", 0o644);
    let source = open();
    let ahead = source.stand_ahead(&plain, &nobody).unwrap();
    assert_eq!(standing(answers.path()), std::slice::from_ref(&a));
    chmod(&jail.host(&a), 0o700);
    source.prime(&plain, &nobody, ahead);
    assert_eq!(standing(answers.path()), Vec::<String>::new());
    drop(source);

    // An answer that may not stand from the start: no early one either
    // (/opt/a's ld.so is root-only, so uid 65534's is /opt/b's, past it).
    let source = open();
    let ahead = source.stand_ahead(&plain, &nobody).unwrap();
    assert_eq!(
        standing(answers.path()),
        Vec::<String>::new(),
        "an early answer found past a root-only ld.so stood"
    );
    source.prime(&plain, &nobody, ahead);
    assert_eq!(standing(answers.path()), Vec::<String>::new());
}
