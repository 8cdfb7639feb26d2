//! The resolver against real namespace trees: each search rule, rejected
//! candidates, secure mode, hostile trees, `#!` scripts, end-to-end execs in
//! a jail with no ld.so, descriptor hygiene and cache freshness.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::*;
use ldchain::resolver::{Config, ExecError, Kind, Namespace, Resolver, Rule, Strategy};

const LDSO: &str = "ld-linux-x86-64.so.2";

/// A namespace tree in a temporary directory.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            dir: tempfile::Builder::new().prefix("ldchain-ns-").tempdir().unwrap(),
        }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn host(&self, inside: &str) -> PathBuf {
        self.root().join(inside.trim_start_matches('/'))
    }
    fn file(&self, inside: &str, bytes: &[u8], mode: u32) -> &Self {
        let p = self.host(inside);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&p);
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }
    fn copy(&self, inside: &str, from: &Path) -> &Self {
        self.file(inside, &fs::read(from).unwrap(), 0o755)
    }
    fn link(&self, inside: &str, target: &str) -> &Self {
        let p = self.host(inside);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
        self
    }
    fn dir(&self, inside: &str) -> &Self {
        fs::create_dir_all(self.host(inside)).unwrap();
        self
    }
    fn fifo(&self, inside: &str) -> &Self {
        let p = self.host(inside);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        self
    }
    fn ns(&self) -> Namespace {
        Namespace::open(self.root()).unwrap()
    }
}

fn plan(r: &Resolver, ns: &Namespace, path: &str, env: &[&str]) -> Result<ldchain::resolver::ExecPlan, ExecError> {
    r.plan_exec(ns, path, &[path, "arg1"], env)
}

/// A tree with the glibc probe at /bin/probe and glibc's ld.so at each of
/// the places one rule searches.
fn rules_tree() -> Option<Tree> {
    let probe = glibc_probe()?;
    let ldso = glibc_ldso();
    let t = Tree::new();
    t.copy("/bin/probe", &probe)
        .copy(&format!("/ldso-path/{LDSO}"), &ldso)
        .copy(&format!("/llp/{LDSO}"), &ldso)
        .copy(&format!("/conf-dir/{LDSO}"), &ldso)
        .copy(&format!("/lib64/{LDSO}"), &ldso)
        .file("/etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n", 0o644)
        .file("/etc/ld.so.conf.d/a.conf", b"/nonexistent\n/conf-dir/\n", 0o644);
    Some(t)
}

fn rule_of(r: &Resolver, ns: &Namespace, env: &[&str]) -> (Rule, String) {
    let p = plan(r, ns, "/bin/probe", env).unwrap();
    let l = p.ldso.unwrap();
    (l.rule, String::from_utf8(l.path).unwrap())
}

#[test]
fn each_search_rule_wins_when_it_should_in_order() {
    let Some(t) = rules_tree() else { return };
    let r = Resolver::new(Config::default());
    let ns = t.ns();
    let env = ["LDSO_PATH=/nothing-here:/ldso-path", "LD_LIBRARY_PATH=/llp"];
    assert_eq!(rule_of(&r, &ns, &env), (Rule::LdsoPath, format!("/ldso-path/{LDSO}")));
    assert_eq!(
        rule_of(&r, &ns, &env[1..]),
        (Rule::LdLibraryPath, format!("/llp/{LDSO}"))
    );
    assert_eq!(rule_of(&r, &ns, &[]), (Rule::LdSoConf, format!("/conf-dir/{LDSO}")));
    fs::remove_file(t.host("/etc/ld.so.conf")).unwrap();
    assert_eq!(rule_of(&r, &ns, &[]), (Rule::Interp, format!("/lib64/{LDSO}")));

    // The conventional path: a program whose PT_INTERP does not exist.
    let Some(odd) = compile(
        "probe-odd-interp",
        "gcc",
        &[&format!("-Wl,--dynamic-linker=/opt/nowhere/{LDSO}")],
        "probe.c",
    ) else {
        return;
    };
    t.copy("/bin/odd", &odd);
    let p = plan(&r, &ns, "/bin/odd", &[]).unwrap();
    let l = p.ldso.unwrap();
    assert_eq!(
        (l.rule, l.path),
        (Rule::Conventional, format!("/lib64/{LDSO}").into_bytes())
    );
    assert_eq!(l.interp, format!("/opt/nowhere/{LDSO}").into_bytes());

    // Nothing anywhere: ENOENT, as the kernel reports a missing PT_INTERP.
    fs::remove_file(t.host(&format!("/lib64/{LDSO}"))).unwrap();
    let e = plan(&r, &ns, "/bin/odd", &[]).unwrap_err();
    assert_eq!(e.errno_name(), "ENOENT", "{e}");
    assert!(matches!(e, ExecError::NoLdso { .. }), "{e}");
}

#[test]
fn ld_library_path_tokens_and_relative_entries() {
    let Some(t) = rules_tree() else { return };
    let ldso = glibc_ldso();
    t.copy(&format!("/bin/lib64/{LDSO}"), &ldso)
        .copy(&format!("/home/u/rel/{LDSO}"), &ldso);
    fs::remove_file(t.host("/etc/ld.so.conf")).unwrap();
    let r = Resolver::new(Config::default());
    let ns = t.ns();
    assert_eq!(
        rule_of(&r, &ns, &["LD_LIBRARY_PATH=/x:$ORIGIN/$LIB"]).1,
        format!("/bin/lib64/{LDSO}")
    );
    assert_eq!(
        rule_of(&r, &ns, &["LD_LIBRARY_PATH=/x;${ORIGIN}/${LIB}"]).1,
        format!("/bin/lib64/{LDSO}")
    );
    // Relative and empty entries are taken from the current directory.
    let ns = t.ns().with_cwd("/home/u");
    assert_eq!(
        rule_of(&r, &ns, &["LD_LIBRARY_PATH=rel"]).1,
        format!("/home/u/rel/{LDSO}")
    );
    let ns = t.ns().with_cwd("/home/u/rel");
    assert_eq!(
        rule_of(&r, &ns, &["LD_LIBRARY_PATH=/x::/y"]).1,
        format!("/home/u/rel/{LDSO}")
    );
}

#[test]
fn default_ldso_path_and_secure_mode() {
    let Some(t) = rules_tree() else { return };
    let env = ["LDSO_PATH=/ldso-path", "LD_LIBRARY_PATH=/llp"];
    let ns = t.ns();
    // The sandbox's default LDSO_PATH applies when the environment has none.
    let r = Resolver::new(Config {
        default_ldso_path: Some(b"/llp".to_vec()),
        ..Config::default()
    });
    assert_eq!(rule_of(&r, &ns, &[]), (Rule::LdsoPath, format!("/llp/{LDSO}")));
    // Secure mode by configuration: the environment is ignored, not the default.
    let r = Resolver::new(Config {
        secure: true,
        ..Config::default()
    });
    assert_eq!(rule_of(&r, &ns, &env).0, Rule::LdSoConf);
    let p = plan(&r, &ns, "/bin/probe", &env).unwrap();
    assert!(p.secure);
    // A setuid program is secure by itself.
    fs::set_permissions(t.host("/bin/probe"), fs::Permissions::from_mode(0o4755)).unwrap();
    let r = Resolver::new(Config::default());
    let p = plan(&r, &ns, "/bin/probe", &env).unwrap();
    assert!(p.secure);
    assert_eq!(p.ldso.unwrap().rule, Rule::LdSoConf);
    // setgid with group execute too; setgid without it is not (mandatory locking).
    fs::set_permissions(t.host("/bin/probe"), fs::Permissions::from_mode(0o2755)).unwrap();
    assert!(plan(&r, &ns, "/bin/probe", &env).unwrap().secure);
    fs::set_permissions(t.host("/bin/probe"), fs::Permissions::from_mode(0o2745)).unwrap();
    assert!(!plan(&r, &ns, "/bin/probe", &env).unwrap().secure);
}

#[test]
fn unusable_candidates_are_skipped_with_a_reason() {
    let Some(t) = rules_tree() else { return };
    let ldso = fs::read(glibc_ldso()).unwrap();
    let mut arm = ldso.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    let Some(static_probe) = compile("probe-static", "gcc", &["-static"], "probe.c") else {
        return;
    };
    let probe = glibc_probe().unwrap();
    t.file(&format!("/c1/{LDSO}"), &arm, 0o755)
        .file(&format!("/c2/{LDSO}"), b"#!/bin/sh\nnot an elf\n", 0o755)
        .dir(&format!("/c3/{LDSO}"))
        .fifo(&format!("/c4/{LDSO}"))
        .copy(&format!("/c5/{LDSO}"), &static_probe)
        .copy(&format!("/c6/{LDSO}"), &probe)
        .file(&format!("/c7/{LDSO}"), &ldso[..5000], 0o755);
    let r = Resolver::new(Config::default());
    let p = plan(
        &r,
        &t.ns(),
        "/bin/probe",
        &["LDSO_PATH=/c1:/c2:/c3:/c4:/c5:/c6:/c7:/ldso-path"],
    )
    .unwrap();
    assert_eq!(p.ldso.as_ref().unwrap().path, format!("/ldso-path/{LDSO}").into_bytes());
    let reasons: Vec<(String, String)> = p
        .skipped
        .iter()
        .map(|s| (String::from_utf8_lossy(&s.path).into_owned(), s.reason.clone()))
        .collect();
    let want = [
        ("/c1", "wrong architecture"),
        ("/c2", "not an ELF file"),
        ("/c3", "not a regular file (directory)"),
        ("/c4", "not a regular file (FIFO)"),
        ("/c5", "not ET_DYN"),
        ("/c6", "has a PT_INTERP"),
        ("/c7", "segment extends past end of file"),
    ];
    assert_eq!(reasons.len(), want.len(), "{reasons:#?}");
    for ((path, reason), (dir, why)) in reasons.iter().zip(want) {
        assert_eq!(path, &format!("{dir}/{LDSO}"));
        assert!(reason.contains(why), "{path}: {reason} (want {why})");
    }
}

// ---------------------------------------------------------------------------
// Hostile namespaces: no escape, no hang, a clear result.

fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{what} took {:?}",
        start.elapsed()
    );
    out
}

/// Assert that the plan's dynamic linker is the file at `inside` within the
/// namespace (same inode), so no symlink led outside.
fn assert_inside(t: &Tree, p: &ldchain::resolver::ExecPlan, inside: &str) {
    use std::os::unix::fs::MetadataExt;
    let (_, fd) = p.fd_pairs().next().expect("a descriptor argument");
    let st = rustix::fs::fstat(fd).unwrap();
    let want = fs::metadata(t.host(inside)).unwrap();
    assert_eq!(
        (st.st_dev, st.st_ino),
        (want.dev(), want.ino()),
        "resolved outside {inside}"
    );
}

#[test]
fn symlinks_and_dotdot_never_leave_the_root() {
    let Some(t) = rules_tree() else { return };
    fs::remove_file(t.host("/etc/ld.so.conf")).unwrap();
    // A host ld.so outside the namespace that escapes would find.
    let outside = tempfile::tempdir().unwrap();
    fs::copy(glibc_ldso(), outside.path().join(LDSO)).unwrap();
    let out = outside.path().to_str().unwrap().to_owned();
    t.link("/abs", &out) // absolute symlink to a host directory
        .link("/rel", "../../../../../../../../../../..") // relative, far above the root
        .link(&format!("/lnk/{LDSO}"), &format!("{out}/{LDSO}"))
        .link("/loop1", "/loop2")
        .link("/loop2", "/loop1");
    let r = Resolver::new(Config::default());
    let ns = t.ns();
    for ldso_path in [
        out.clone(),
        "/abs".into(),
        format!("/rel{out}"),
        format!("/../../../..{out}"),
        "/lnk".into(),
        "/loop1".into(),
        "/loop1/x".into(),
    ] {
        let env = [format!("LDSO_PATH={ldso_path}")];
        let p = bounded(&ldso_path, || r.plan_exec(&ns, "/bin/probe", &["probe"], &env)).unwrap();
        // The search went on to the namespace's own PT_INTERP path.
        assert_eq!(
            p.ldso.as_ref().unwrap().rule,
            Rule::Interp,
            "{ldso_path}: {:?}",
            p.skipped
        );
        assert_inside(&t, &p, &format!("/lib64/{LDSO}"));
    }
    // The program itself behind an escaping symlink: not found inside.
    t.link("/bin/escape", &format!("{out}/{LDSO}"));
    let e = r.plan_exec(&ns, "/bin/escape", &["x"], &[] as &[&str]).unwrap_err();
    assert_eq!(e.errno_name(), "ENOENT", "{e}");
    let e = r.plan_exec(&ns, "/loop1", &["x"], &[] as &[&str]).unwrap_err();
    assert_eq!(e.errno_name(), "ELOOP", "{e}");
}

#[test]
fn hostile_ld_so_conf_fifo_device_huge_cycle() {
    let Some(t) = rules_tree() else { return };
    let r = Resolver::new(Config::default());
    // A FIFO where the config should be: no hang, ignored.
    fs::remove_file(t.host("/etc/ld.so.conf")).unwrap();
    t.fifo("/etc/ld.so.conf");
    let p = bounded("fifo", || plan(&r, &t.ns(), "/bin/probe", &[])).unwrap();
    assert_eq!(p.ldso.unwrap().rule, Rule::Interp);
    // A character device (as root): ignored, never read.
    fs::remove_file(t.host("/etc/ld.so.conf")).unwrap();
    if require_root("creating a character device for the ld.so.conf case") {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.host("/etc/ld.so.conf"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o644),
            rustix::fs::makedev(1, 5), // /dev/zero
        )
        .unwrap();
        let p = bounded("chardev", || plan(&r, &t.ns(), "/bin/probe", &[])).unwrap();
        assert_eq!(p.ldso.unwrap().rule, Rule::Interp);
        fs::remove_file(t.host("/etc/ld.so.conf")).unwrap();
    }
    // A huge file: bounded, and the directory on its first line still counts.
    let mut huge = b"/conf-dir\n".to_vec();
    huge.extend(std::iter::repeat_n(b'#', 20 << 20));
    t.file("/etc/ld.so.conf", &huge, 0o644);
    let p = bounded("huge", || plan(&r, &t.ns(), "/bin/probe", &[])).unwrap();
    assert_eq!(p.ldso.unwrap().rule, Rule::LdSoConf);
    // Include cycles: self, mutual, and through a glob; the directory listed
    // after the cycle is still found.
    t.file("/etc/ld.so.conf", b"include /etc/ld.so.conf\ninclude a.conf\n", 0o644)
        .file(
            "/etc/a.conf",
            b"include b.conf\ninclude /etc/*.conf\n/conf-dir\n",
            0o644,
        )
        .file("/etc/b.conf", b"include a.conf\n", 0o644);
    let p = bounded("cycle", || plan(&r, &t.ns(), "/bin/probe", &[])).unwrap();
    assert_eq!(p.ldso.unwrap().rule, Rule::LdSoConf);
    // Deep non-cyclic nesting is cut at the depth bound, without error.
    for i in 0..40 {
        t.file(
            &format!("/etc/deep/{i}.conf"),
            format!("include {}.conf\n", i + 1).as_bytes(),
            0o644,
        );
    }
    t.file("/etc/ld.so.conf", b"include deep/0.conf\n", 0o644);
    let p = bounded("deep", || plan(&r, &t.ns(), "/bin/probe", &[])).unwrap();
    assert_eq!(p.ldso.unwrap().rule, Rule::Interp);
}

#[test]
fn a_huge_ld_library_path_is_bounded() {
    let Some(t) = rules_tree() else { return };
    let r = Resolver::new(Config::default());
    // Over MAX_ARG_STRLEN: execve itself would refuse it (E2BIG).
    let entries: Vec<String> = (0..100_000).map(|i| format!("/nope{i}")).collect();
    let env = [format!("LD_LIBRARY_PATH={}", entries.join(":"))];
    let e = bounded("100k entries", || r.plan_exec(&t.ns(), "/bin/probe", &["probe"], &env)).unwrap_err();
    assert_eq!(e.errno_name(), "E2BIG", "{e}");
    let env = [format!("LD_LIBRARY_PATH={}", ":".repeat(100_000))];
    let p = bounded("100k empty entries", || {
        r.plan_exec(&t.ns(), "/bin/probe", &["probe"], &env)
    })
    .unwrap();
    assert_eq!(p.ldso.unwrap().rule, Rule::LdSoConf);
}

// ---------------------------------------------------------------------------
// The seed's exec tests.

fn script_tree() -> Option<Tree> {
    let t = rules_tree()?;
    t.file("/bin/plain", b"#!/bin/probe\n", 0o755)
        .file("/bin/onearg", b"#!/bin/probe args\n", 0o755)
        .file("/bin/spaces", b"#! /bin/probe  an arg  with spaces \n", 0o755)
        .file("/bin/nested", b"#!/bin/onearg x\n", 0o755)
        .file("/bin/nointerp", b"#!/bin/missing\n", 0o755)
        .file("/bin/noexec", b"#!/bin/probe\n", 0o644)
        .file("/bin/data", b"just some bytes\n", 0o755)
        .file("/bin/empty-shebang", b"#!   \n", 0o755);
    // A chain of scripts of each depth: sN runs s(N-1), s0 runs /bin/probe.
    t.file("/bin/s0", b"#!/bin/probe\n", 0o755);
    for n in 1..8 {
        t.file(&format!("/bin/s{n}"), format!("#!/bin/s{}\n", n - 1).as_bytes(), 0o755);
    }
    Some(t)
}

fn args(p: &ldchain::resolver::ExecPlan) -> Vec<String> {
    // glibc: [/chainloader, fd, ARG0, --argv0, NAME, PROGRAM, args...]
    let all = p.argv_display();
    assert_eq!(all[3], "--argv0");
    assert_eq!(all[5], String::from_utf8_lossy(&p.program));
    all[6..].to_vec()
}

#[test]
fn scripts_follow_the_kernels_rules() {
    let Some(t) = script_tree() else { return };
    let r = Resolver::new(Config::default());
    let ns = t.ns();
    let run = |path: &str| r.plan_exec(&ns, path, &[path, "a1", "a2"], &[] as &[&str]);
    let p = run("/bin/plain").unwrap();
    assert_eq!(p.program, b"/bin/probe");
    assert_eq!(args(&p), ["/bin/plain", "a1", "a2"]);
    assert_eq!(
        p.argv_display()[4],
        "/bin/probe",
        "--argv0 is the interpreter as written"
    );
    assert_eq!(args(&run("/bin/onearg").unwrap()), ["args", "/bin/onearg", "a1", "a2"]);
    assert_eq!(
        args(&run("/bin/spaces").unwrap()),
        ["an arg  with spaces", "/bin/spaces", "a1", "a2"]
    );
    let p = run("/bin/nested").unwrap();
    assert_eq!(args(&p), ["args", "/bin/onearg", "x", "/bin/nested", "a1", "a2"]);
    assert_eq!(p.scripts.len(), 2);
    // Relative script paths stay as given in argv.
    let ns2 = t.ns().with_cwd("/bin");
    let p = r.plan_exec(&ns2, "plain", &["plain"], &[] as &[&str]).unwrap();
    assert_eq!(args(&p), ["plain"]);

    assert_eq!(run("/bin/nointerp").unwrap_err().errno_name(), "ENOENT");
    assert_eq!(run("/bin/noexec").unwrap_err().errno_name(), "EACCES");
    assert_eq!(run("/bin").unwrap_err().errno_name(), "EACCES");
    assert_eq!(run("/bin/data").unwrap_err().errno_name(), "ENOEXEC");
    assert_eq!(run("/bin/empty-shebang").unwrap_err().errno_name(), "ENOEXEC");
    assert_eq!(run("").unwrap_err().errno_name(), "ENOENT");
    // Depth: five scripts in a chain run, six do not (ELOOP), as the kernel.
    assert!(run("/bin/s4").is_ok());
    assert_eq!(run("/bin/s4").unwrap().scripts.len(), 5);
    assert_eq!(run("/bin/s5").unwrap_err().errno_name(), "ELOOP");
}

#[test]
fn script_depth_limit_matches_the_real_kernel() {
    // Same chains on the host, exec'd by the kernel: /bin/true at the end.
    let dir = tempfile::tempdir().unwrap();
    let p = |n: usize| dir.path().join(format!("s{n}"));
    // Written by a child process: a descriptor open for writing in this
    // (multi-threaded) process would be inherited by whatever another test
    // thread forks meanwhile, and the kernel's exec of the script would
    // then fail with ETXTBSY until that child execs.
    let mut script = String::from("printf '#!/bin/true\\n' > \"$1/s0\"; ");
    for n in 1..8 {
        script += &format!("printf '#!%s\\n' \"$1/s{}\" > \"$1/s{n}\"; ", n - 1);
    }
    script += "chmod 755 \"$1\"/s*";
    let made = std::process::Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(made.success());
    let ns = Namespace::open(Path::new("/")).unwrap();
    let r = Resolver::new(Config::default());
    for n in 0..8 {
        let kernel = std::process::Command::new(p(n))
            .status()
            .map(|s| s.success())
            .map_err(|e| e.raw_os_error());
        let ours = r
            .plan_exec(&ns, p(n).to_str().unwrap(), &["x"], &[] as &[&str])
            .map(|_| true)
            .map_err(|e| Some(e.errno()));
        assert_eq!(kernel, ours, "chain of {} scripts", n + 1);
    }
}

#[test]
fn a_missing_program_is_enoent_without_touching_any_ldso() {
    // What is touched, seen by strace: every file the resolver opens in the
    // namespace is an openat2 relative to its root. For a missing program
    // that is the program's path and nothing else; the same trace of a real
    // plan shows the candidates, so the check can see them.
    if !require("strace", "watching what the resolver opens") {
        return;
    }
    let Some(t) = rules_tree() else { return };
    let opened = |program: &str| -> (Option<i32>, Vec<String>) {
        let log = tempfile::NamedTempFile::new().unwrap();
        let out = std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=openat2", "-o"])
            .arg(log.path())
            .arg(env!("CARGO_BIN_EXE_ldchain"))
            .args(["resolve", "--root"])
            .arg(t.root())
            .args([
                "--env",
                "LDSO_PATH=/ldso-path",
                "--env",
                "LD_LIBRARY_PATH=/llp",
                "--",
                program,
            ])
            .output()
            .unwrap();
        let lines = fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .filter(|l| l.contains("openat2("))
            .map(str::to_owned)
            .collect();
        (out.status.code(), lines)
    };
    for (program, path) in [
        ("/bin/missing", "\"/bin/missing\""),
        ("/no/such/dir/prog", "\"/no/such/dir/prog\""),
    ] {
        let (code, lines) = opened(program);
        assert_eq!(code, Some(127), "{program}: {lines:#?}");
        assert!(!lines.is_empty(), "{program}: nothing opened at all");
        for line in &lines {
            assert!(line.contains(path), "{program}: touched something else: {line}");
        }
    }
    let (code, lines) = opened("/bin/probe");
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains(&format!("\"/ldso-path/{LDSO}\""))),
        "the trace does not show the candidates: {lines:#?}"
    );
}

// ---------------------------------------------------------------------------
// End to end: plans materialised and exec'd in a jail with no ld.so.

/// A namespace (with ld.so under /ldso) and a jail (the same programs and
/// libraries, no ld.so anywhere).
fn e2e() -> Option<(Tree, Jail)> {
    let (probe, mprobe, musl) = (glibc_probe()?, musl_probe()?, musl_ldso()?);
    let static_probe = compile("probe-static", "gcc", &["-static"], "probe.c")?;
    let jail = Jail::new();
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.add(&mprobe, "/bin/mprobe");
    jail.add(&static_probe, "/bin/sprobe");
    jail.write("/bin/script", b"#!/bin/probe args\n", 0o755);
    jail.assert_no_ldso();
    let ns = Tree::new();
    fs::remove_dir(ns.root()).unwrap();
    copy_tree(jail.path(), ns.root());
    ns.copy(&format!("/ldso/{LDSO}"), &glibc_ldso())
        .copy("/ldso/ld-musl-x86_64.so.1", &musl);
    Some((ns, jail))
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else if ty.is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn exec_in_jail(jail: &Jail, plan: ldchain::resolver::ExecPlan, envp: &[&str]) -> Run {
    use std::os::unix::process::CommandExt;
    let prepared = plan.prepare(envp).unwrap();
    let mut cmd = jail.command(&["/nonexistent-placeholder"], &[]);
    // SAFETY: Prepared::exec only makes system calls (async-signal-safe).
    unsafe {
        cmd.pre_exec(move || Err(prepared.exec()));
    }
    output(&mut cmd).unwrap().into()
}

#[test]
fn plans_run_for_real_through_the_chainloader_and_execveat() {
    let Some((ns_tree, jail)) = e2e() else { return };
    let envp = ["LDSO_PATH=/ldso", "GREETING=hi"];
    for strategy in [Strategy::Chainloader, Strategy::Execveat] {
        let r = Resolver::new(Config {
            strategy,
            ..Config::default()
        });
        let ns = ns_tree.ns();
        let cases: [(&str, &[&str], &str); 4] = [
            (
                "/bin/probe",
                &["probe", "args", "x y"],
                "argc=3\nargv[0]=probe\nargv[1]=args\nargv[2]=x y\n",
            ),
            (
                "/bin/mprobe",
                &["mprobe", "args"],
                "argc=2\nargv[0]=mprobe\nargv[1]=args\n",
            ),
            (
                "/bin/sprobe",
                &["sprobe", "args"],
                "argc=2\nargv[0]=sprobe\nargv[1]=args\n",
            ),
            (
                "/bin/script",
                &["script", "z"],
                "argc=4\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=/bin/script\nargv[3]=z\n",
            ),
        ];
        for (path, argv, want) in cases {
            let plan = r.plan_exec(&ns, path, argv, &envp).unwrap();
            let kind = plan.kind;
            let run = exec_in_jail(&jail, plan, &envp);
            assert_eq!(run.stdout, want, "{strategy:?} {path} ({kind:?}): {run:#?}");
            assert_eq!(run.code, Some(0), "{strategy:?} {path}: {run:#?}");
        }
        // comm names the program (the chainloader sets it from ld.so's argv[0]).
        if strategy == Strategy::Chainloader {
            let plan = r.plan_exec(&ns, "/bin/probe", &["probe", "comm"], &envp).unwrap();
            assert_eq!(exec_in_jail(&jail, plan, &envp).stdout, "comm=probe\n");
        }
        // The environment passes through.
        let plan = r.plan_exec(&ns, "/bin/probe", &["probe", "env"], &envp).unwrap();
        let out = exec_in_jail(&jail, plan, &envp).stdout;
        assert!(out.contains("env=GREETING=hi\n"), "{out}");
    }
}

#[test]
fn a_program_named_like_ldd_runs_normally_under_musl() {
    let Some((ns_tree, jail)) = e2e() else { return };
    let mprobe = musl_probe().unwrap();
    jail.add(&mprobe, "/bin/myldd");
    ns_tree.copy("/bin/myldd", &mprobe);
    let r = Resolver::new(Config::default());
    let envp = ["LDSO_PATH=/ldso"];
    let plan = r
        .plan_exec(&ns_tree.ns(), "/bin/myldd", &["myldd", "comm"], &envp)
        .unwrap();
    assert_eq!(
        plan.argv_display()[2],
        "/bin/myldd/",
        "trailing slash keeps musl out of ldd mode"
    );
    let run = exec_in_jail(&jail, plan, &envp);
    assert_eq!(run.stdout, "comm=myldd\n", "{run:#?}");
}

#[test]
fn descriptors_live_in_the_argv_they_fill() {
    let Some(t) = rules_tree() else { return };
    let r = Resolver::new(Config::default());
    let plan = plan(&r, &t.ns(), "/bin/probe", &[]).unwrap();
    let pairs: Vec<usize> = plan.fd_pairs().map(|(i, _)| i).collect();
    assert_eq!(pairs, [1], "{plan:?}");
    assert!(matches!(plan.argv()[1], ldchain::resolver::Arg::Fd(_)));
    let display = plan.argv_display();
    let parts = plan.into_parts();
    assert_eq!(parts.fds.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
    for (i, a) in parts.argv.iter().enumerate() {
        assert_eq!(a.is_none(), i == 1, "argv[{i}]");
        if let Some(a) = a {
            assert_eq!(String::from_utf8_lossy(a), display[i]);
        }
    }
}

#[test]
fn caches_see_changed_configs_and_replaced_ldsos() {
    let Some(t) = rules_tree() else { return };
    let r = Resolver::new(Config::default());
    let ns = t.ns();
    assert_eq!(rule_of(&r, &ns, &[]).1, format!("/conf-dir/{LDSO}"));
    // Change an included file: the next plan sees the new directory.
    t.copy(&format!("/conf-dir2/{LDSO}"), &glibc_ldso());
    t.file("/etc/ld.so.conf.d/a.conf", b"/conf-dir2\n", 0o644);
    assert_eq!(rule_of(&r, &ns, &[]).1, format!("/conf-dir2/{LDSO}"));
    // Add a file the glob matches: seen too.
    t.copy(&format!("/conf-dir0/{LDSO}"), &glibc_ldso());
    t.file("/etc/ld.so.conf.d/0.conf", b"/conf-dir0\n", 0o644);
    assert_eq!(rule_of(&r, &ns, &[]).1, format!("/conf-dir0/{LDSO}"));
    // Replace the chosen ld.so with something unusable: skipped next time.
    t.file(&format!("/conf-dir0/{LDSO}"), b"\x7fELF garbage", 0o755);
    let p = plan(&r, &ns, "/bin/probe", &[]).unwrap();
    assert_eq!(p.ldso.unwrap().path, format!("/conf-dir2/{LDSO}").into_bytes());
    assert_eq!(p.skipped.len(), 1);
    // ... and with a good one again (in place, same size).
    t.copy(&format!("/conf-dir0/{LDSO}"), &glibc_ldso());
    assert_eq!(rule_of(&r, &ns, &[]).1, format!("/conf-dir0/{LDSO}"));
}

#[test]
fn execvp_style_search_is_a_separate_helper() {
    let Some(t) = script_tree() else { return };
    let ns = t.ns();
    let find = |name: &str, env: &[&str]| ldchain::resolver::find_program(&ns, name.as_bytes(), env);
    assert_eq!(find("probe", &["PATH=/nope:/bin"]).unwrap(), b"/bin/probe");
    assert_eq!(find("probe", &[]).unwrap(), b"/bin/probe", "default PATH /bin:/usr/bin");
    assert_eq!(
        find("./x/probe", &[]).unwrap(),
        b"./x/probe",
        "a name with a slash is not searched"
    );
    assert_eq!(find("noexec", &["PATH=/bin"]).unwrap_err().errno_name(), "EACCES");
    assert_eq!(find("nothing", &["PATH=/bin"]).unwrap_err().errno_name(), "ENOENT");
    let r = Resolver::new(Config::default());
    assert_eq!(
        r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]).unwrap().kind,
        Kind::Dynamic
    );
}

#[test]
fn many_threads_share_one_resolver() {
    let Some(t) = script_tree() else { return };
    let r = Resolver::new(Config::default());
    let ns = t.ns();
    std::thread::scope(|s| {
        for i in 0..8 {
            let (r, ns) = (&r, &ns);
            s.spawn(move || {
                for j in 0..200 {
                    let path = ["/bin/probe", "/bin/nested", "/bin/missing"][(i + j) % 3];
                    match r.plan_exec(ns, path, &[path], &[] as &[&str]) {
                        Ok(p) => assert_eq!(p.ldso.unwrap().path, format!("/conf-dir/{LDSO}").into_bytes()),
                        Err(e) => assert_eq!((path, &*e.errno_name()), ("/bin/missing", "ENOENT")),
                    }
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------
// Faithful to execve and ld.so.

/// The kernel's `MAX_ARG_STRLEN` (32 pages of 4 KiB), with the NUL.
const MAX_ARG_STRLEN: usize = 128 * 1024;

#[test]
fn search_paths_are_not_silently_cut_15000_entries() {
    let Some(t) = rules_tree() else { return };
    t.copy(&format!("/last/{LDSO}"), &glibc_ldso());
    let r = Resolver::new(Config::default());
    let mut entries: Vec<String> = (0..14_999).map(|i| format!("/n{i}")).collect();
    entries.push("/last".into());
    let value = entries.join(":");
    assert!(value.len() + "LD_LIBRARY_PATH=".len() < MAX_ARG_STRLEN);
    for var in ["LD_LIBRARY_PATH", "LDSO_PATH"] {
        let env = [format!("{var}={value}")];
        let start = Instant::now();
        let p = r.plan_exec(&t.ns(), "/bin/probe", &["probe"], &env).unwrap();
        let took = start.elapsed();
        let l = p.ldso.unwrap();
        assert_eq!(l.path, format!("/last/{LDSO}").into_bytes(), "{var}: {:?}", l.rule);
        assert!(took < Duration::from_secs(2), "{var}: 15,000 entries took {took:?}");
    }
    // One byte over MAX_ARG_STRLEN (with the NUL): E2BIG, as execve says.
    let long = format!("LDSO_PATH=/{}", "x".repeat(MAX_ARG_STRLEN));
    let e = r.plan_exec(&t.ns(), "/bin/probe", &["probe"], &[&long[..MAX_ARG_STRLEN]]);
    assert_eq!(e.unwrap_err().errno_name(), "E2BIG");
    let fits = &long[..MAX_ARG_STRLEN - 1];
    assert!(r.plan_exec(&t.ns(), "/bin/probe", &["probe"], &[fits]).is_ok());
}

/// The errno the real kernel gives for `execve` of `path` (a host path).
fn kernel_errno(path: &Path) -> i32 {
    let e = std::process::Command::new(path).spawn().expect_err("must not exec");
    e.raw_os_error().unwrap()
}

#[test]
fn errno_names_follow_execve_for_every_file_type() {
    let Some(t) = rules_tree() else { return };
    t.dir("/bin/dir.d");
    t.fifo("/bin/fifo");
    let sock = std::os::unix::net::UnixListener::bind(t.host("/bin/sock")).unwrap();
    let mut cases = vec!["/bin/dir.d", "/bin/fifo", "/bin/sock"];
    if require_root("creating a character device to exec") {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.host("/bin/tty"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o755),
            rustix::fs::makedev(5, 0), // /dev/tty: ENXIO from its driver without a terminal
        )
        .unwrap();
        cases.push("/bin/tty");
    }
    for inside in &cases {
        fs::set_permissions(t.host(inside), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let r = Resolver::new(Config::default());
    for inside in cases {
        let want = ldchain::resolver::errno_name(kernel_errno(&t.host(inside)));
        let e = plan(&r, &t.ns(), inside, &[]).unwrap_err();
        assert_eq!(e.errno_name(), want, "{inside}: {e}");
        assert_eq!(want, "EACCES", "{inside}");
    }
    drop(sock);
}

#[test]
fn stale_caches_a_same_size_rewrite_with_mtime_restored_is_reclassified() {
    let Some(t) = rules_tree() else { return };
    let elf = fs::read(t.host("/bin/probe")).unwrap();
    let mut script = b"#!/bin/probe\n".to_vec();
    script.resize(elf.len(), b'\n');
    t.file("/bin/flip", &script, 0o755);
    let host = t.host("/bin/flip");
    let mtime = fs::metadata(&host).unwrap().modified().unwrap();
    let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = ino(&host);
    let r = Resolver::new(Config::default());
    let ns = t.ns();
    assert_eq!(plan(&r, &ns, "/bin/flip", &[]).unwrap().scripts.len(), 1);
    let flip = |bytes: &[u8]| {
        fs::write(&host, bytes).unwrap(); // in place: same inode, same size
        fs::File::options()
            .write(true)
            .open(&host)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(ino(&host), before);
        assert_eq!(fs::metadata(&host).unwrap().modified().unwrap(), mtime);
    };
    flip(&elf);
    let p = plan(&r, &ns, "/bin/flip", &[]).unwrap();
    assert!(
        p.scripts.is_empty(),
        "an ELF now, not the cached script: {:?}",
        p.scripts
    );
    flip(&script);
    assert_eq!(plan(&r, &ns, "/bin/flip", &[]).unwrap().scripts.len(), 1);
}

/// Whether anything opened `path` (for reading or writing: `IN_OPEN`; an
/// `O_PATH` open is not reported) while `f` ran.
fn opened_during<T>(path: &Path, f: impl FnOnce() -> T) -> (bool, T) {
    use rustix::fs::inotify;
    let ino = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
    inotify::add_watch(&ino, path, inotify::WatchFlags::OPEN).unwrap();
    let out = f();
    let mut buf = [std::mem::MaybeUninit::uninit(); 1024];
    let mut reader = inotify::Reader::new(&ino, &mut buf);
    let mut opened = false;
    while let Ok(ev) = reader.next() {
        opened |= ev.events().contains(inotify::ReadFlags::OPEN);
    }
    (opened, out)
}

#[test]
fn device_nodes_and_fifos_are_never_opened_for_reading() {
    let Some(t) = rules_tree() else { return };
    t.fifo("/fifo/ld-linux-x86-64.so.2");
    // (candidate directory, the node a plan must not open)
    let mut cases = vec![("/fifo", format!("/fifo/{LDSO}"))];
    if require_root("creating a tty device node as a candidate") {
        t.dir("/dev");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            t.host("/dev/tty"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_raw_mode(0o666),
            rustix::fs::makedev(5, 0),
        )
        .unwrap();
        t.link(&format!("/tty/{LDSO}"), "/dev/tty");
        cases.push(("/tty", "/dev/tty".into()));
    }
    let r = Resolver::new(Config::default());
    for (dir, node) in cases {
        let env = [format!("LDSO_PATH={dir}:/ldso-path")];
        let watched = t.host(&node);
        let env = [env[0].as_str()];
        let (opened, p) = opened_during(&watched, || plan(&r, &t.ns(), "/bin/probe", &env).unwrap());
        assert!(!opened, "{dir}: the candidate was opened, not just looked at");
        assert_eq!(p.ldso.unwrap().path, format!("/ldso-path/{LDSO}").into_bytes());
        assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
        assert!(
            p.skipped[0].reason.contains("not a regular file"),
            "{dir}: {}",
            p.skipped[0].reason
        );
    }
}

#[test]
fn file_capabilities_run_secure_like_setuid() {
    let Some(t) = rules_tree() else { return };
    if !require("setcap", "setting file capabilities (libcap2-bin)") || !require_root("setcap") {
        return;
    }
    let r = Resolver::new(Config::default());
    let env = ["LDSO_PATH=/ldso-path"];
    let p = plan(&r, &t.ns(), "/bin/probe", &env).unwrap();
    assert!(!p.secure);
    assert_eq!(p.ldso.unwrap().rule, Rule::LdsoPath);
    let st = std::process::Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(t.host("/bin/probe"))
        .status()
        .unwrap();
    assert!(st.success(), "setcap failed");
    let p = plan(&r, &t.ns(), "/bin/probe", &env).unwrap();
    assert!(p.secure, "a program with file capabilities runs with AT_SECURE");
    assert_eq!(p.ldso.unwrap().rule, Rule::LdSoConf, "LDSO_PATH ignored");
}
