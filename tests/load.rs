//! The resolver under load: at least 16 threads calling `plan_exec` at once
//! on mixed programs for a minute (CI; 10 s elsewhere, or LDCHAIN_LOAD_SECS),
//! while another thread rewrites ld.so.conf and swaps an ld.so candidate
//! between a good and a bad file. No wrong result (every plan's ld.so is a
//! good one found by some rule the namespace offered at some moment), no
//! descriptor leak, bounded memory. In a test binary of its own: it counts
//! the process's descriptors.

// Only a few of the suite's helpers are used here.
#[allow(dead_code)]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ldchain::resolver::{Config, Namespace, Resolver, Rule};

const LDSO: &str = "ld-linux-x86-64.so.2";

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

/// Write `bytes` to `path` atomically (temporary file + rename).
fn replace(path: &Path, bytes: &[u8], mode: u32) {
    let tmp = path.with_extension(format!("tmp{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    fs::write(&tmp, bytes).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn sixteen_threads_plan_while_the_namespace_changes() {
    let Some(probe) = support::glibc_probe() else { return };
    let Some(sprobe) = support::compile("probe-static", "gcc", &["-static"], "probe.c") else {
        return;
    };
    let secs = std::env::var("LDCHAIN_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if support::strict() { 60 } else { 10 });
    let good = fs::read(support::glibc_ldso()).unwrap();
    let bad = b"\x7fELF but not really a dynamic linker".to_vec();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let put = |inside: &str, bytes: &[u8], mode: u32| {
        let p = root.join(inside);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        replace(&p, bytes, mode);
    };
    put("bin/probe", &fs::read(&probe).unwrap(), 0o755);
    put("bin/static", &fs::read(&sprobe).unwrap(), 0o755);
    put("bin/script", b"#!/bin/probe args\n", 0o755);
    put(&format!("A/{LDSO}"), &good, 0o755);
    put(&format!("B/{LDSO}"), &good, 0o755);
    put(&format!("lib64/{LDSO}"), &good, 0o755);
    put("etc/ld.so.conf", b"/A\n", 0o644);
    let ns = Namespace::open(root).unwrap();
    let fds_start = open_fds();
    let resolver = Resolver::new(Config::default());

    // Warm up, then take the baselines.
    for p in ["/bin/probe", "/bin/static", "/bin/script"] {
        resolver.plan_exec(&ns, p, &[p], &[] as &[&str]).unwrap();
    }
    let fds_before = open_fds();
    let rss_before = rss_kib();

    let stop = AtomicBool::new(false);
    let plans = AtomicUsize::new(0);
    let changes = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs(secs);
    std::thread::scope(|s| {
        // The writer: flip ld.so.conf between /A and /B, and /A's ld.so
        // between good and bad, each change atomic.
        s.spawn(|| {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let conf: &[u8] = if i % 2 == 0 { b"/B\n" } else { b"# comment\n/A\n" };
                replace(&root.join("etc/ld.so.conf"), conf, 0o644);
                let a: &[u8] = if i % 3 == 0 { &bad } else { &good };
                replace(&root.join(format!("A/{LDSO}")), a, 0o755);
                changes.fetch_add(1, Ordering::Relaxed);
                i += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        for t in 0..16 {
            let (ns, resolver, plans, good_len) = (&ns, &resolver, &plans, good.len());
            s.spawn(move || {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let path = ["/bin/probe", "/bin/static", "/bin/script", "/bin/missing"][(t + n) % 4];
                    n += 1;
                    match resolver.plan_exec(ns, path, &[path, "x"], &[] as &[&str]) {
                        Err(e) => assert_eq!((path, &*e.errno_name()), ("/bin/missing", "ENOENT"), "{e}"),
                        Ok(plan) => {
                            if path == "/bin/static" {
                                assert!(plan.ldso.is_none());
                                continue;
                            }
                            let l = plan.ldso.as_ref().expect("a dynamic program has an ld.so");
                            let want = [format!("/A/{LDSO}"), format!("/B/{LDSO}"), format!("/lib64/{LDSO}")];
                            assert!(want.iter().any(|w| w.as_bytes() == l.path.as_slice()), "{:?}", l);
                            assert!(matches!(l.rule, Rule::LdSoConf | Rule::Interp), "{:?}", l.rule);
                            // The descriptor handed out is a good ld.so,
                            // whatever the writer did since.
                            let st = rustix::fs::fstat(plan.fd_pairs().next().unwrap().1).unwrap();
                            assert_eq!(st.st_size as usize, good_len, "a bad candidate got through: {l:?}");
                        }
                    }
                }
                plans.fetch_add(n, Ordering::Relaxed);
            });
        }
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Threads finish their current plan; then stop the writer.
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
    });
    let (plans, changes) = (plans.load(Ordering::Relaxed), changes.load(Ordering::Relaxed));
    let grown = rss_kib().saturating_sub(rss_before);
    eprintln!("{plans} plans by 16 threads in {secs} s during {changes} namespace changes; RSS grew {grown} KiB");
    assert!(plans > 1000 && changes > 100, "{plans} plans, {changes} changes");
    // While it lives, a resolver holds no more than after the warm-up
    // (its warm plans' inotify instance, mount table and the files a kept
    // plan loads); dropped, it holds none.
    assert!(
        open_fds() <= fds_before,
        "descriptors leaked: {} > {fds_before}",
        open_fds()
    );
    drop(resolver);
    assert_eq!(open_fds(), fds_start, "descriptors leaked");
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
}
