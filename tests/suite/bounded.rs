//! Issue 12, "bounded on hostile namespaces": ld.so.conf glob bombs and
//! symlink chains. Each case builds its hostile tree for real (scaled down
//! from the figures, in proportion) and bounds what one load or plan
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
    fs::write(p, bytes).unwrap();
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

/// `include /e/*/x*` over 512 directories of 256 entries (the issue: 4,096
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

/// Thousands of `/d/*` patterns (the issue: 200,000 in 1 MB, 6.6 GB then
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

/// 10,000 × `include /empty/x*` (the issue: 100,000, and ~105,000 openat2
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

/// ld.so.conf naming 4,096 directories that all lead nowhere (the issue:
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
