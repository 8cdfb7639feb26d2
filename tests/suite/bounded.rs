//! Bounded on hostile namespaces: ld.so.conf glob bombs and
//! symlink chains. Each case builds its hostile tree for real (scaled down
//! from the figures that once took minutes, in proportion) and bounds what one load or plan
//! costs: wall time, dependencies a warm plan re-checks, notes, peak memory.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;
use ldchain::resolver::{Config, LdSoConf, Namespace, Resolver, Rule};

const LDSO: &str = "ld-linux-x86-64.so.2";

/// A temporary tree, on tmpfs when there is one (the bombs are many files).
fn tree() -> tempfile::TempDir {
    let mut b = tempfile::Builder::new();
    b.prefix("ldchain-bounded-");
    match Path::new("/dev/shm").is_dir() {
        true => b.tempdir_in("/dev/shm").or_else(|_| b.tempdir()).unwrap(),
        false => b.tempdir().unwrap(),
    }
}

fn write(root: &Path, inside: &str, bytes: &[u8]) {
    let p = root.join(inside.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, bytes).unwrap();
    // A dynamic linker must be executable, as the kernel requires of an
    // interpreter (the resolver checks it as the kernel would).
    if inside.ends_with(LDSO) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// `n` empty files named `{prefix}{i}` in directory `dir`.
fn fill(dir: &Path, prefix: &str, n: usize) {
    fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        fs::File::create(dir.join(format!("{prefix}{i}"))).unwrap();
    }
}

fn load(root: &Path) -> (LdSoConf, Duration) {
    let ns = Namespace::open(root).unwrap();
    let t = Instant::now();
    let conf = LdSoConf::load(&ns, b"/etc/ld.so.conf");
    (conf, t.elapsed())
}

fn has_dir(conf: &LdSoConf, dir: &str) -> bool {
    conf.dirs.iter().any(|d| d == dir.as_bytes())
}

/// `include /e/*/x*` over 512 directories of 256 entries (the reported case: 4,096
/// of 4,096, 5 s per plan). Every listed directory was a dependency a warm
/// plan re-checks; now the load reads a bounded number of entries in all.
#[test]
fn glob_bomb_include_e_star_x_star() {
    let t = tree();
    for i in 0..512 {
        fill(&t.path().join(format!("e/{i}")), "y", 256);
    }
    write(t.path(), "/etc/ld.so.conf", b"/legit\ninclude /e/*/x*\n");
    let (conf, took) = load(t.path());
    eprintln!(
        "e/*/x*: {took:?}, {} deps, {} notes: {:?}",
        conf.deps.len(),
        conf.notes.len(),
        conf.notes.last()
    );
    assert!(took < Duration::from_millis(500), "load took {took:?}");
    assert!(conf.deps.len() <= 256, "{} dependencies", conf.deps.len());
    assert!(conf.notes.iter().any(|n| n.contains("limit")), "{:?}", conf.notes);
    assert!(has_dir(&conf, "/legit"), "{:?}", conf.dirs);
}

/// The child half of [`glob_bomb_many_d_star`]: loads the configuration of
/// the tree named by `BOMB_ROOT` and prints what it kept (a no-op otherwise).
#[test]
fn glob_bomb_many_d_star_child() {
    let Some(root) = std::env::var_os("BOMB_ROOT") else {
        return;
    };
    let (conf, took) = load(Path::new(&root));
    println!(
        "RESULT deps={} notes={} dirs={} ms={}",
        conf.deps.len(),
        conf.notes.len(),
        conf.dirs.len(),
        took.as_millis()
    );
}

/// Thousands of `/d/*` patterns (the reported case: 200,000 in 1 MB, 6.6 GB then
/// SIGABRT). Loaded in a child process whose peak memory (`ru_maxrss`, from
/// `wait4`) is bounded, with few notes and dependencies.
#[test]
#[allow(clippy::zombie_processes)] // reaped by wait4, for its rusage
fn glob_bomb_many_d_star() {
    let t = tree();
    fill(&t.path().join("d"), "f", 512);
    let mut conf = b"/legit\n".to_vec();
    for _ in 0..40 {
        conf.extend_from_slice(b"include");
        conf.extend(std::iter::repeat_n(b" /d/*".as_slice(), 100).flatten());
        conf.push(b'\n');
    }
    write(t.path(), "/etc/ld.so.conf", &conf);
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bounded::glob_bomb_many_d_star_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BOMB_ROOT", t.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.unwrap(), &mut out).unwrap();
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut ru) }, pid);
    let result = out
        .split_once("RESULT")
        .map_or("", |(_, r)| r.lines().next().unwrap_or(""));
    eprintln!("/d/* x 4000: peak {} KiB; {result}", ru.ru_maxrss);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child: {status:#x}"
    );
    assert!(ru.ru_maxrss < 64 * 1024, "peak memory {} KiB", ru.ru_maxrss);
    let field = |k: &str| -> usize {
        let v = result.split(' ').find_map(|f| f.strip_prefix(k)).expect(k);
        v.parse().unwrap()
    };
    assert!(field("notes=") <= 32, "{result}");
    assert!(field("deps=") <= 256, "{result}");
    assert!(field("dirs=") >= 1, "{result}");
}

/// 10,000 × `include /empty/x*` (the reported case: 100,000, and ~105,000 openat2
/// per *warm* plan): the directory is one dependency, so a warm plan
/// re-checks two paths, not ten thousand.
#[test]
fn glob_bomb_warm_plans_recheck_empty() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree();
    fs::create_dir_all(t.path().join("empty")).unwrap();
    write(t.path(), "/bin/probe", &fs::read(&probe).unwrap());
    fs::set_permissions(
        t.path().join("bin/probe"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(t.path(), &format!("/legit/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    let conf = b"/legit\n"
        .iter()
        .copied()
        .chain(b"include /empty/x*\n".repeat(10_000))
        .collect::<Vec<u8>>();
    write(t.path(), "/etc/ld.so.conf", &conf);
    let (loaded, _) = load(t.path());
    assert!(loaded.deps.len() <= 2, "{} dependencies", loaded.deps.len());
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap();
    let p = r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]).unwrap();
    assert_eq!(p.ldso.unwrap().rule, Rule::LdSoConf);
    let start = Instant::now();
    for _ in 0..100 {
        r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]).unwrap();
    }
    let warm = start.elapsed() / 100;
    eprintln!("warm plan with 10,000 x /empty/x*: {warm:?}");
    assert!(warm < Duration::from_millis(2), "a warm plan took {warm:?}");
}

/// ld.so.conf naming 4,096 directories that all lead nowhere (the reported case:
/// each through a chain of 40 symlinks) used up the 4,096-candidate cap, so
/// the real ld.so at `PT_INTERP`, later in the search, was never tried. The
/// last two rules (one candidate each) are now always tried.
#[test]
fn symlink_chains_do_not_hide_the_real_ldso() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree();
    write(t.path(), "/bin/probe", &fs::read(&probe).unwrap());
    fs::set_permissions(
        t.path().join("bin/probe"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(t.path(), &format!("/lib64/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    // A short chain of symlinks, each full of `./` components, behind every
    // configured directory (scaled down: 8 links of 500 components).
    let dots = "./".repeat(500);
    fs::create_dir_all(t.path().join("s")).unwrap();
    for i in 0..8 {
        symlink(format!("/s/{dots}{}", i + 1), t.path().join(format!("s/{i}"))).unwrap();
    }
    let mut conf = Vec::new();
    for i in 0..4096 {
        conf.extend_from_slice(format!("/s/0/c{i}\n").as_bytes());
    }
    write(t.path(), "/etc/ld.so.conf", &conf);
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap();
    let start = Instant::now();
    let p = r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]);
    let took = start.elapsed();
    eprintln!("4,096 chained entries: {took:?}");
    let p = p.expect("the real ld.so at PT_INTERP is found");
    assert_eq!(p.ldso.unwrap().rule, Rule::Interp);
    assert!(took < Duration::from_secs(5), "plan took {took:?}");
}

/// A probe program at `/bin/probe` of a new tree.
fn tree_with_probe(probe: &Path) -> tempfile::TempDir {
    let t = tree();
    write(t.path(), "/bin/probe", &fs::read(probe).unwrap());
    fs::set_permissions(
        t.path().join("bin/probe"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    t
}

/// A chain of 40 symlinks `/{dir}/0` → `/{dir}/./././…/1` → … → `/{dir}/40`
/// (missing), each of ~2,000 `./` components: the kernel walks 80,000
/// components to learn that the path leads nowhere.
fn chain(root: &Path, dir: &str) {
    let dots = "./".repeat(2000);
    fs::create_dir_all(root.join(dir)).unwrap();
    for i in 0..40 {
        symlink(format!("/{dir}/{dots}{}", i + 1), root.join(format!("{dir}/{i}"))).unwrap();
    }
}

/// System calls of `ldchain resolve` under `strace -f -c`, by name.
fn syscalls_of_resolve(root: &Path) -> Option<std::collections::HashMap<String, u64>> {
    syscalls_of_resolve_in(root, "/", None)
}

/// The same, run from `cwd` inside the namespace with `LDSO_PATH` set to
/// `ldso_path` (if any).
fn syscalls_of_resolve_in(
    root: &Path,
    cwd: &str,
    ldso_path: Option<&str>,
) -> Option<std::collections::HashMap<String, u64>> {
    if !require("strace", "counts the resolver's system calls") {
        return None;
    }
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-c", "-o"])
        .arg(out.path())
        .arg(env!("CARGO_BIN_EXE_ldchain"))
        .args(["resolve", "--json", "--cwd", cwd, "--root"])
        .arg(root)
        .args(["--", "/bin/probe"])
        .env_remove("LDSO_PATH")
        .env_remove("LD_LIBRARY_PATH");
    if let Some(value) = ldso_path {
        cmd.env("LDSO_PATH", value);
    }
    let status = cmd
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ldchain resolve: {status}");
    let text = fs::read_to_string(out.path()).unwrap();
    // "% time seconds usecs/call calls [errors] syscall": calls is the 4th field.
    let counts = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.last()?.to_string(), f.get(3)?.parse().ok()?))
        })
        .collect();
    Some(counts)
}

/// The issue's shape: 4,095 ld.so.conf entries, each behind a chain of 40
/// symlinks of ~2,000 `./` components (12.6 s of kernel time per plan
/// before), then `/legit`, itself a symlink, holding the real ld.so. Each
/// lookup is bounded, a prefix that failed is not walked again, and the
/// real ld.so is found by ld.so.conf: the plan takes well under a second
/// and a bounded number of openat/openat2/readlinkat calls.
#[test]
fn symlink_chains_are_bounded_and_the_real_ldso_is_found() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree_with_probe(&probe);
    chain(t.path(), "s");
    write(t.path(), &format!("/real/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    symlink("/real", t.path().join("legit")).unwrap();
    let mut conf: Vec<u8> = (0..4095).flat_map(|i| format!("/s/0/c{i}\n").into_bytes()).collect();
    conf.extend_from_slice(b"/legit\n");
    write(t.path(), "/etc/ld.so.conf", &conf);
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap();
    let start = Instant::now();
    let p = r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]);
    let took = start.elapsed();
    let p = p.expect("the real ld.so is found");
    let ldso = p.ldso.as_ref().unwrap();
    assert_eq!(
        (ldso.rule, &ldso.path[..]),
        (Rule::LdSoConf, format!("/legit/{LDSO}").as_bytes())
    );
    assert_eq!(p.skipped.len(), 4095);
    assert!(
        p.skipped
            .iter()
            .all(|s| s.reason.ends_with("path lookup budget exceeded")),
        "{:?}",
        p.skipped[0]
    );
    eprintln!("4,095 chains of 40 links: {took:?}");
    assert!(took < Duration::from_millis(500), "plan took {took:?}");
    // System calls against the same tree with only `/legit` configured
    // (the process's own start-up cancels out): one openat2 per chained
    // candidate (RESOLVE_NO_SYMLINKS stops at /s/0: a kernel walk bounded
    // by the path), one walk up to the per-candidate budget (four links of
    // 4 KiB) and the same walk again to remember it across plans, and
    // nothing more for the rest of /s/0/…: it already failed.
    let Some(calls) = syscalls_of_resolve(t.path()) else {
        return;
    };
    write(t.path(), "/etc/ld.so.conf", b"/legit\n");
    let Some(base) = syscalls_of_resolve(t.path()) else {
        return;
    };
    let added = |name: &str| calls.get(name).copied().unwrap_or(0) as i64 - base.get(name).copied().unwrap_or(0) as i64;
    let (openat2, walk) = (
        added("openat2"),
        added("openat") + added("readlinkat") + added("fstatfs"),
    );
    eprintln!("added by 4,095 chained entries: openat2 {openat2}, openat+readlinkat+fstatfs {walk}");
    assert!(openat2 <= 4095 + 8, "{calls:?} against {base:?}");
    assert!(walk <= 48, "{calls:?} against {base:?}");
}

/// The costliest search a sandbox can ask for without a single symlink: a
/// working directory 1,000 levels deep and an `LDSO_PATH` of 20,000
/// relative entries, each candidate a kernel walk of 1,002 components
/// (20 million in all: about two seconds of a worker's time). The
/// search's kernel-walk budget stops it after about 260 candidates, and
/// the ld.so at `PT_INTERP` is still found.
#[test]
fn a_deep_working_directory_and_many_relative_entries_are_bounded() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree_with_probe(&probe);
    write(t.path(), &format!("/lib64/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    let cwd = "/d".repeat(1000);
    fs::create_dir_all(t.path().join(&cwd[1..])).unwrap();
    let entries: Vec<String> = (0..20_000).map(|i| format!("e{i}")).collect();
    let ldso_path = entries.join(":");
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap().with_cwd(cwd.as_bytes());
    let env = [format!("LDSO_PATH={ldso_path}")];
    let p = r
        .plan_exec(&ns, "/bin/probe", &["probe"], &env)
        .expect("found at PT_INTERP");
    assert_eq!(p.ldso.as_ref().unwrap().rule, Rule::Interp);
    let (Some(calls), Some(base)) = (
        syscalls_of_resolve_in(t.path(), &cwd, Some(&ldso_path)),
        syscalls_of_resolve_in(t.path(), &cwd, None),
    ) else {
        return;
    };
    let openat2 = calls.get("openat2").copied().unwrap_or(0) - base.get("openat2").copied().unwrap_or(0);
    eprintln!("added by 20,000 relative entries 1,000 levels down: openat2 {openat2}");
    assert!(
        (240..=280).contains(&openat2),
        "{openat2} candidates looked up (262,144 components / 1,002 each is 261)"
    );
}

/// Every candidate of the search paths behind its own chain: they share one
/// per-search budget, which runs out after a few; the `PT_INTERP` path then
/// still gets a budget of its own, and is found through `/lib64 -> usr/lib64`.
#[test]
fn the_search_budget_runs_out_but_pt_interp_is_reached() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree_with_probe(&probe);
    let mut conf = Vec::new();
    for i in 0..64 {
        chain(t.path(), &format!("t{i}"));
        conf.extend_from_slice(format!("/t{i}/0\n").as_bytes());
    }
    write(t.path(), "/etc/ld.so.conf", &conf);
    write(
        t.path(),
        &format!("/usr/lib64/{LDSO}"),
        &fs::read(glibc_ldso()).unwrap(),
    );
    symlink("usr/lib64", t.path().join("lib64")).unwrap();
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap();
    let start = Instant::now();
    let p = r
        .plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str])
        .expect("found at PT_INTERP");
    let took = start.elapsed();
    assert_eq!(p.ldso.as_ref().unwrap().rule, Rule::Interp);
    assert_eq!(p.skipped.len(), 64, "{:?}", p.skipped);
    assert!(took < Duration::from_millis(500), "plan took {took:?}");
}

/// Legal layouts resolve exactly as `openat2(RESOLVE_IN_ROOT)` resolves
/// them: the same inode, or the same errno.
#[test]
fn legal_symlinks_resolve_as_openat2_in_root_does() {
    let t = tree();
    let root = t.path();
    write(root, &format!("/usr/lib64/{LDSO}"), b"ld.so");
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    let links: &[(&str, &str)] = &[
        ("lib64", "usr/lib64"),
        ("abs", "/usr/lib64"),
        ("a/b/up", "../../usr"),
        ("chain1", "chain2"),
        ("chain2", "/a/../chain3"),
        ("chain3", "lib64"),
        ("a/dotdot", "../../../../.."),
        ("a/b/self", "."),
        ("a/b/file", &format!("../../usr/lib64/{LDSO}")),
        ("loop1", "loop2"),
        ("loop2", "loop1"),
        ("dangling", "/nope"),
        ("empty_dir_link", "a/b/c/"),
        ("toroot", "/"),
    ];
    for (at, to) in links {
        symlink(to, root.join(at)).unwrap();
    }
    // 40 links in a row resolve; 41 are a loop (ELOOP), as for the kernel.
    for i in 0..41 {
        symlink(format!("n{}", i + 1), root.join(format!("n{i}"))).unwrap();
    }
    fs::create_dir(root.join("n41")).unwrap();
    let paths = [
        format!("/lib64/{LDSO}"),
        format!("/abs/{LDSO}"),
        format!("/a/b/up/lib64/{LDSO}"),
        format!("/chain1/{LDSO}"),
        format!("/a/dotdot/usr/lib64/{LDSO}"),
        format!("/a/dotdot/../../lib64/./{LDSO}"),
        "/a/b/self/self/../b/file".into(),
        format!("/lib64/../lib64/./{LDSO}"),
        "/lib64/..".into(),
        "/abs/../../..".into(),
        "/chain1".into(),
        "/a/b/file".into(),
        "/a/b/file/".into(),
        format!("/lib64/{LDSO}/x"),
        "/loop1".into(),
        "/dangling".into(),
        "/empty_dir_link".into(),
        "/toroot/abs/..".into(),
        "lib64".into(),
        "a/b/up/../..".into(),
        "/n1".into(),
        "/n0".into(),
        "/n0/..".into(),
        // `..` above the root, then a link: the root is its own parent, as
        // for the kernel; never the host directories above the tree (from
        // the tree, three `..` reach the host's `/`, whose /lib64 has the
        // host's real ld.so).
        format!("/../../../lib64/{LDSO}"),
        format!("/../../../../abs/{LDSO}"),
        format!("/a/../../../../a/b/up/lib64/{LDSO}"),
        format!("/..{}/lib64/{LDSO}", root.display()),
        // `..` walked one component at a time, between two links.
        format!("/a/b/up/../lib64/{LDSO}"),
        format!("/a/dotdot/a/b/self/../up/../abs/../../chain1/{LDSO}"),
        format!("/a/b/self/../../a/b/up/../../../../../lib64/{LDSO}"),
    ];
    let ns = Namespace::open(root).unwrap();
    let dir = fs::File::open(root).unwrap();
    let id = |st: rustix::fs::Stat| (st.st_dev, st.st_ino);
    // The reference: openat2 answers EAGAIN when a rename or mount
    // anywhere on the machine raced its `..` checks (another test's, under
    // load); the resolver retries that, and so does the reference.
    let kernel_open = |p: &str| loop {
        match rustix::fs::openat2(
            &dir,
            p,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) => continue,
            r => break r,
        }
    };
    for p in &paths {
        let kernel = kernel_open(p.as_str())
            .map(|fd| id(rustix::fs::fstat(fd).unwrap()))
            .map_err(|e| e.raw_os_error());
        let ours = ns
            .open_path(p.as_bytes())
            .map(|fd| id(rustix::fs::fstat(fd).unwrap()))
            .map_err(|e| e.errno());
        assert_eq!(ours, kernel, "{p}");
    }
}

/// Once the search's budget is spent, a candidate without a symlink on its
/// path is still found: the first `openat2(RESOLVE_NO_SYMLINKS)` never
/// depends on what other lookups spent, nor on the prefixes that failed.
#[test]
fn a_plain_candidate_is_found_after_the_search_budget_is_spent() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree_with_probe(&probe);
    let mut conf = Vec::new();
    for i in 0..16 {
        chain(t.path(), &format!("t{i}"));
        conf.extend_from_slice(format!("/t{i}/0\n").as_bytes());
    }
    // Four chains spend the search's 64 KiB; /t0/plain, next to a failed
    // /t0/0, has no symlink on its path.
    conf.extend_from_slice(b"/t0/plain\n");
    write(t.path(), "/etc/ld.so.conf", &conf);
    write(t.path(), &format!("/t0/plain/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap();
    let p = r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]).unwrap();
    let ldso = p.ldso.as_ref().unwrap();
    assert_eq!(
        (ldso.rule, &ldso.path[..]),
        (Rule::LdSoConf, format!("/t0/plain/{LDSO}").as_bytes())
    );
    assert_eq!(p.skipped.len(), 16, "{:?}", p.skipped);
}

/// ld.so.conf's own lookups share one budget for the whole load: 250
/// `include`s, each behind its own chain of 40 links of ~2,000 `./`, cost
/// about what four do (before: each had a per-file budget, ~17 system
/// calls of walking apiece, ~4,250 in all). The directory named after them
/// is still kept, and found.
#[test]
fn an_ld_so_conf_load_shares_one_lookup_budget() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree_with_probe(&probe);
    let mut conf = Vec::new();
    for i in 0..250 {
        chain(t.path(), &format!("t{i}"));
        conf.extend_from_slice(format!("include /t{i}/0/x.conf\n").as_bytes());
    }
    conf.extend_from_slice(b"/legit\n");
    write(t.path(), "/etc/ld.so.conf", &conf);
    write(t.path(), &format!("/legit/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    let (loaded, took) = load(t.path());
    eprintln!("250 chained includes: {took:?}, notes {:?}", loaded.notes.first());
    assert!(has_dir(&loaded, "/legit"), "{:?}", loaded.dirs);
    let Some(calls) = syscalls_of_resolve(t.path()) else {
        return;
    };
    write(t.path(), "/etc/ld.so.conf", b"/legit\n");
    let Some(base) = syscalls_of_resolve(t.path()) else {
        return;
    };
    let added = |name: &str| calls.get(name).copied().unwrap_or(0) as i64 - base.get(name).copied().unwrap_or(0) as i64;
    let walk = added("openat") + added("readlinkat") + added("fstatfs");
    eprintln!(
        "added by 250 chained includes: openat2 {}, openat+readlinkat+fstatfs {walk}",
        added("openat2")
    );
    assert!(walk <= 4 * 20 + 8, "{calls:?} against {base:?}");
    assert!(added("openat2") <= 250 + 4 * 8, "{calls:?} against {base:?}");
}

/// Waits until the directories a test just made are older than the 2 s a
/// remembered failure requires of what it depends on (a change within the
/// same tick of a file system's clock could keep a change time).
fn settle() {
    std::thread::sleep(Duration::from_millis(2100));
}

/// The issue's shape, and `/legit` holding the real ld.so through a link.
fn issue_shape(probe: &Path) -> tempfile::TempDir {
    let t = tree_with_probe(probe);
    chain(t.path(), "s");
    write(t.path(), &format!("/real/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    symlink("/real", t.path().join("legit")).unwrap();
    let mut conf: Vec<u8> = (0..4095).flat_map(|i| format!("/s/0/c{i}\n").into_bytes()).collect();
    conf.extend_from_slice(b"/legit\n");
    write(t.path(), "/etc/ld.so.conf", &conf);
    t
}

/// The child half of [`a_warm_plan_does_not_walk_a_remembered_chain_again`]:
/// plans `/bin/probe` twice with one resolver in the tree named by
/// `MEMO_ROOT`, with a mark for strace (a failed `access` of
/// `/ldchain-mark-N`) before each plan and after the last (a no-op
/// without `MEMO_ROOT`).
#[test]
fn remembered_chain_child() {
    let Some(root) = std::env::var_os("MEMO_ROOT") else {
        return;
    };
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(Path::new(&root)).unwrap();
    let mark = |n: usize| rustix::fs::access(format!("/ldchain-mark-{n}").as_str(), rustix::fs::Access::EXISTS);
    for n in 0..2 {
        let _ = mark(n);
        let p = r
            .plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str])
            .expect("plan");
        let l = p.ldso.unwrap();
        println!("RESULT {} {}", l.rule, String::from_utf8_lossy(&l.path));
    }
    let _ = mark(2);
}

/// System calls by name of the thread that made the marks, between each
/// two marks, from an `strace -f` log; calls on paths from the current
/// directory (`AT_FDCWD`) are left out: every lookup in the namespace is
/// from a descriptor, and the process's own (malloc reading
/// `/proc/sys/vm/overcommit_memory` once, `/proc/self/fd` links) come and
/// go with what the allocator does.
fn syscalls_between_marks(log: &str) -> Vec<std::collections::HashMap<String, u64>> {
    let pid = |l: &str| l.split_whitespace().next().unwrap_or("").to_owned();
    let Some(first) = log.lines().find(|l| l.contains("\"/ldchain-mark-")) else {
        return Vec::new();
    };
    let tid = pid(first);
    let mut plans: Vec<std::collections::HashMap<String, u64>> = Vec::new();
    for line in log.lines().filter(|l| pid(l) == tid) {
        if line.contains("\"/ldchain-mark-") {
            plans.push(Default::default());
            continue;
        }
        let call = line[tid.len()..].trim_start();
        if call.contains("AT_FDCWD") {
            continue;
        }
        let Some((name, _)) = call.split_once('(') else {
            continue;
        };
        if let (Some(plan), false) = (plans.last_mut(), call.starts_with("<...")) {
            *plan.entry(name.to_owned()).or_default() += 1;
        }
    }
    plans.pop(); // after the last mark
    plans
}

/// A failure is remembered by the configuration's identity
/// across plans. The second plan under that shape re-checks what
/// the chain's failure depended on (the root and `/s`: an fstat, an
/// openat2, an fstat and a close) instead of walking it (≈20 system calls
/// of openat/readlinkat/fstatfs, and as many again the first time, to
/// remember it), and still finds the real ld.so behind `/legit`, whose own
/// link is walked each time (one openat, readlinkat and fstatfs).
#[test]
fn a_warm_plan_does_not_walk_a_remembered_chain_again() {
    let Some(probe) = glibc_probe() else { return };
    if !require("strace", "counts the resolver's system calls per plan") {
        return;
    }
    let t = issue_shape(&probe);
    settle();
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(log.path())
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bounded::remembered_chain_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MEMO_ROOT", t.path())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<&str> = stdout
        .lines()
        .filter_map(|l| Some(l.split_once("RESULT ")?.1))
        .collect();
    let want = format!("ld.so.conf /legit/{LDSO}");
    assert_eq!(found, [want.as_str(), want.as_str()], "{stdout}");
    let plans = syscalls_between_marks(&fs::read_to_string(log.path()).unwrap());
    assert_eq!(plans.len(), 2, "{plans:?}");
    // Memory management (the first plan grows the heap) is left out.
    let total = |p: &std::collections::HashMap<String, u64>| {
        let memory = ["mmap", "munmap", "mprotect", "madvise", "mremap", "brk"];
        p.iter()
            .filter(|(n, _)| !memory.contains(&n.as_str()))
            .map(|(_, c)| c)
            .sum::<u64>()
    };
    // Both plans make two fstatfs (noexec, for the program and for ld.so)
    // besides walking.
    let walk = |p: &std::collections::HashMap<String, u64>| {
        ["openat", "readlinkat", "fstatfs"]
            .iter()
            .map(|n| p.get(*n).copied().unwrap_or(0))
            .sum::<u64>()
            - 2
    };
    let (cold, warm) = (&plans[0], &plans[1]);
    eprintln!(
        "first plan: {} system calls ({} walking); second: {} ({} walking)",
        total(cold),
        walk(cold),
        total(warm),
        walk(warm)
    );
    eprintln!("first: {cold:?}\nsecond: {warm:?}");
    assert!(walk(cold) >= 30, "the first plan walks the chain twice: {cold:?}");
    assert!(walk(warm) <= 3, "the second walks only /legit's link: {warm:?}");
    assert!(total(warm) + 30 <= total(cold), "{warm:?} against {cold:?}");
}

/// A tree whose ld.so.conf names `/c/0`, the start of a chain of 40 links
/// in `/c` that leads nowhere, with the real ld.so at `PT_INTERP` and in
/// `/real`, and `/alt/0` linking to `/real`; settled, so the chain's
/// failure is remembered.
fn chain_to_nowhere(probe: &Path) -> tempfile::TempDir {
    let t = tree_with_probe(probe);
    chain(t.path(), "c");
    let ldso = fs::read(glibc_ldso()).unwrap();
    write(t.path(), &format!("/lib64/{LDSO}"), &ldso);
    write(t.path(), &format!("/real/{LDSO}"), &ldso);
    write(t.path(), "/etc/ld.so.conf", b"/c/0\n");
    fs::create_dir(t.path().join("alt")).unwrap();
    symlink("/real", t.path().join("alt/0")).unwrap();
    settle();
    t
}

/// Plan `/bin/probe`: the rule that found ld.so, and its path.
fn found_by(r: &Resolver, ns: &Namespace) -> (Rule, String) {
    let p = r.plan_exec(ns, "/bin/probe", &["probe"], &[] as &[&str]).expect("plan");
    let l = p.ldso.unwrap();
    (l.rule, String::from_utf8_lossy(&l.path).into_owned())
}

/// A remembered failure is not believed once the chain changed: a new
/// link renamed over the second link of the chain (`/c/1`, reached before
/// the budget runs out) now leads to `/real`, and the next plan finds the
/// ld.so there — the directory `/c` changed, so the memory did not hold.
#[test]
fn a_remembered_chain_is_walked_again_when_a_link_in_it_is_repointed() {
    let Some(probe) = glibc_probe() else { return };
    let t = chain_to_nowhere(&probe);
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap();
    let interp = (Rule::Interp, format!("/lib64/{LDSO}"));
    assert_eq!(found_by(&r, &ns), interp);
    assert_eq!(r.remembered_failures().0, 1, "the chain's failure is remembered");
    assert_eq!(found_by(&r, &ns), interp);
    symlink("/real", t.path().join("c/1.new")).unwrap();
    fs::rename(t.path().join("c/1.new"), t.path().join("c/1")).unwrap();
    assert_eq!(found_by(&r, &ns), (Rule::LdSoConf, format!("/c/0/{LDSO}")));
}

/// A mount is seen too: with a directory bind-mounted over `/c` (in a
/// mount namespace of this test's own thread), whose `0` links to
/// `/real`, the chain's directory re-reached by its path is another inode,
/// and the next plan finds the ld.so in `/real`. The root's and `/c`'s
/// own change times do not move.
#[test]
fn a_remembered_chain_is_walked_again_when_a_mount_covers_its_directory() {
    let Some(probe) = glibc_probe() else { return };
    if !require_root("bind-mounting in a mount namespace of its own") {
        return;
    }
    let t = chain_to_nowhere(&probe);
    let root = t.path().to_owned();
    in_a_mount_namespace_of_its_own(move || {
        let r = Resolver::new(Config::default());
        let ns = Namespace::open(&root).unwrap();
        let interp = (Rule::Interp, format!("/lib64/{LDSO}"));
        assert_eq!(found_by(&r, &ns), interp);
        assert_eq!(r.remembered_failures().0, 1, "the chain's failure is remembered");
        rustix::mount::mount_bind(root.join("alt"), root.join("c")).expect("bind mount");
        assert_eq!(found_by(&r, &ns), (Rule::LdSoConf, format!("/c/0/{LDSO}")));
    });
}

/// Run `f` on a thread of its own in a mount namespace of its own
/// (`CLONE_NEWNS` implies `CLONE_FS`: only that thread moves), with "/"
/// made private so that nothing it mounts propagates out; the namespace
/// and its mounts go with the thread.
fn in_a_mount_namespace_of_its_own(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare and mount are given only these constants.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            let slash = c"/".as_ptr();
            assert_eq!(
                libc::mount(std::ptr::null(), slash, std::ptr::null(), flags, std::ptr::null()),
                0
            );
        }
        f()
    })
    .join()
    .unwrap();
}

/// A mount over a *link* leaves every directory as it was: `move_mount`
/// puts a file over a symbolic link (the new mount API does not follow
/// it). Here `/y` links to `/x`, whose `ld-linux-x86-64.so.2` links into
/// the chain to nowhere; once the real ld.so is mounted over that link,
/// the remembered failure must not be believed (each link read is checked
/// to be the same inode), and the next plan finds ld.so through `/y`.
#[test]
fn a_remembered_chain_is_walked_again_when_a_file_is_mounted_over_a_link_in_it() {
    let Some(probe) = glibc_probe() else { return };
    if !require_root("mounting in a mount namespace of its own") {
        return;
    }
    let t = tree_with_probe(&probe);
    chain(t.path(), "c");
    let ldso = fs::read(glibc_ldso()).unwrap();
    write(t.path(), &format!("/lib64/{LDSO}"), &ldso);
    write(t.path(), &format!("/real/{LDSO}"), &ldso);
    fs::create_dir(t.path().join("x")).unwrap();
    symlink("/c/0", t.path().join(format!("x/{LDSO}"))).unwrap();
    symlink("/x", t.path().join("y")).unwrap();
    write(t.path(), "/etc/ld.so.conf", b"/y\n");
    settle();
    let root = t.path().to_owned();
    in_a_mount_namespace_of_its_own(move || {
        use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
        let r = Resolver::new(Config::default());
        let ns = Namespace::open(&root).unwrap();
        let interp = (Rule::Interp, format!("/lib64/{LDSO}"));
        assert_eq!(found_by(&r, &ns), interp);
        assert_eq!(r.remembered_failures().0, 1, "the chain's failure is remembered");
        let cwd = rustix::fs::CWD;
        let tree = open_tree(
            cwd,
            root.join(format!("real/{LDSO}")),
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
        )
        .expect("open_tree");
        let over = root.join(format!("x/{LDSO}"));
        move_mount(&tree, "", cwd, &over, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH).expect("a file over a link");
        assert_eq!(found_by(&r, &ns), (Rule::LdSoConf, format!("/y/{LDSO}")));
    });
}

/// A search that a limit cut short says which limit. An
/// ld.so.conf of 4,096 directories, each holding an unusable file of the
/// right name, and the real ld.so after them: the 4,097th directory is
/// never tried (ld.so.conf keeps `MAX_DIRS`), and the error names that limit instead
/// of claiming that no dynamic linker exists.
#[test]
fn a_search_cut_by_a_limit_names_the_limit() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree_with_probe(&probe);
    let mut conf = Vec::new();
    for i in 0..4096 {
        write(t.path(), &format!("/d/{i}/{LDSO}"), b"not an ELF file");
        conf.extend_from_slice(format!("/d/{i}\n").as_bytes());
    }
    write(t.path(), &format!("/real/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    conf.extend_from_slice(b"/real\n");
    write(t.path(), "/etc/ld.so.conf", &conf);
    // No ld.so at PT_INTERP or the conventional path in this tree.
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(t.path()).unwrap();
    let e = r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("(4096 candidates rejected"), "{msg}");
    assert!(
        msg.contains("limit") && msg.contains("MAX_DIRS"),
        "the limit is not named: {msg}"
    );
    // Within the limit, no limit is named.
    let conf: Vec<u8> = (0..10).flat_map(|i| format!("/d/{i}\n").into_bytes()).collect();
    write(t.path(), "/etc/ld.so.conf", &conf);
    let msg = r
        .plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("(10 candidates rejected)"), "{msg}");
}

/// A remembered failure is not believed once what was missing appears:
/// the chain `/d/0` -> ... -> `/d/20` ended nowhere, then `/d/20/` gets the
/// ld.so; the next plan finds it (`/d` changed: its identity is checked,
/// not assumed).
#[test]
fn a_remembered_chain_is_walked_again_when_its_missing_end_appears() {
    let Some(probe) = glibc_probe() else { return };
    let t = tree_with_probe(&probe);
    let root = t.path();
    fs::create_dir(root.join("d")).unwrap();
    for i in 0..20 {
        symlink(format!("/d/{}", i + 1), root.join(format!("d/{i}"))).unwrap();
    }
    let ldso = fs::read(glibc_ldso()).unwrap();
    write(root, &format!("/lib64/{LDSO}"), &ldso);
    write(root, "/etc/ld.so.conf", b"/d/0\n");
    settle();
    let r = Resolver::new(Config::default());
    let ns = Namespace::open(root).unwrap();
    assert_eq!(found_by(&r, &ns), (Rule::Interp, format!("/lib64/{LDSO}")));
    assert_eq!(r.remembered_failures().0, 1, "the chain's failure is remembered");
    write(root, &format!("/d/20/{LDSO}"), &ldso);
    assert_eq!(found_by(&r, &ns), (Rule::LdSoConf, format!("/d/0/{LDSO}")));
}

/// A procfs mounted inside the namespace: its magic links (`/proc/self/root`,
/// `/proc/1/cwd`, …) lead to the *resolving* process's view, the host's.
/// A search path through them never reaches a host-only ld.so: the walk
/// refuses magic links (the program still finds the tree's own).
#[test]
fn procfs_magic_links_in_the_namespace_are_never_followed() {
    let Some(probe) = glibc_probe() else { return };
    if !require_root("mounting a procfs in the tree, in a mount namespace of its own")
        || !require("unshare", "a mount namespace for the procfs")
    {
        return;
    }
    let t = tree_with_probe(&probe);
    let root = t.path();
    write(root, &format!("/lib64/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    fs::create_dir(root.join("proc")).unwrap();
    // A directory only the host has, holding a real ld.so.
    let host = tempfile::tempdir().unwrap();
    write(host.path(), &format!("/{LDSO}"), &fs::read(glibc_ldso()).unwrap());
    let h = host.path().display();
    let ldso_path =
        format!("/proc/self/root{h}:/proc/1/root{h}:/proc/thread-self/root{h}:/proc/self/cwd:/proc/self/fd");
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t proc proc \"$1/proc\" && exec \"$2\" resolve --json --root \"$1\" -- /bin/probe")
        .arg("sh")
        .arg(root)
        .arg(env!("CARGO_BIN_EXE_ldchain"))
        .current_dir(host.path())
        .env("LDSO_PATH", &ldso_path)
        .env_remove("RUST_LOG")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("\"ldso\":\"/lib64/{LDSO}\"")), "{stdout}");
    assert!(stdout.contains("\"rule\":\"pt-interp\""), "{stdout}");
}
