//! plan_exec over namespace trees the fuzzer builds: files (real ld.so and
//! program copies, scripts, configs, garbage), directories, FIFOs, and
//! symlinks with `..` chains and absolute targets — some pointing at a real
//! ld.so *outside* the root. Property: whatever the plan hands out (program
//! or ld.so descriptor) is a file reachable inside the root without leaving
//! it; never the outside copy.
#![no_main]

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ldchain_resolver::{Config, Namespace, Resolver, Target};
use libfuzzer_sys::fuzz_target;

struct Fixtures {
    _dir: tempfile::TempDir,
    ldso: PathBuf,
    program: PathBuf,
    outside: String,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let ldso = dir.path().join("ldso");
        fs::copy("/lib64/ld-linux-x86-64.so.2", &ldso).unwrap();
        let program = dir.path().join("program");
        fs::copy("/bin/true", &program).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::copy("/lib64/ld-linux-x86-64.so.2", outside.join("ld-linux-x86-64.so.2")).unwrap();
        let outside = outside.to_string_lossy().into_owned();
        Fixtures {
            _dir: dir,
            ldso,
            program,
            outside,
        }
    })
}

const PATHS: &[&str] = &[
    "/bin/p",
    "/bin/s",
    "/lib64/ld-linux-x86-64.so.2",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d/a.conf",
    "/a",
    "/a/b",
    "/l/ld-linux-x86-64.so.2",
    "/x",
    "/bin",
    "/l",
    "/a/ld-linux-x86-64.so.2",
];

fn target(i: u8, f: &Fixtures) -> String {
    match i % 12 {
        0 => "..".into(),
        1 => "../../../../..".into(),
        2 => "/".into(),
        3 => f.outside.clone(),
        4 => format!("{}/ld-linux-x86-64.so.2", f.outside),
        5 => "/lib64".into(),
        6 => "a".into(),
        7 => "../../../../x".into(),
        8 => "/bin/p".into(),
        9 => "/x".into(),
        10 => format!("/../..{}", f.outside),
        _ => "/a/b".into(),
    }
}

/// Whether any component of `inside` (under `root`), the last included, is a
/// symbolic link. Building the tree must never write through one: a link
/// to "/" would make the fuzzer write into the host's root.
fn crosses_a_symlink(root: &Path, inside: &str) -> bool {
    let mut p = root.to_owned();
    for c in inside.trim_start_matches('/').split('/') {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return true,
            Ok(_) => {}
            Err(_) => return false, // does not exist yet: nothing below it does
        }
    }
    false
}

fn build(root: &Path, ops: &[u8], f: &Fixtures) {
    for op in ops.chunks_exact(3) {
        let inside = PATHS[op[1] as usize % PATHS.len()];
        let p = root.join(inside.trim_start_matches('/'));
        // Only a removal may name a symlink itself; nothing may go through one.
        let parent_inside = inside.rsplit_once('/').map_or("", |(a, _)| a);
        if crosses_a_symlink(root, parent_inside) || (op[0] % 6 != 4 && crosses_a_symlink(root, inside)) {
            continue;
        }
        if let Some(parent) = p.parent() {
            let _ = fs::create_dir_all(parent);
        }
        // Never open an existing FIFO for writing (that blocks): a new file
        // replaces whatever non-directory was there.
        if op[0] % 6 == 1 {
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    let _ = fs::remove_file(&p);
                }
                Err(_) => {}
            }
        }
        let _ = match op[0] % 6 {
            0 => fs::create_dir_all(&p),
            1 => match op[2] % 6 {
                0 => fs::hard_link(&f.ldso, &p),
                1 => fs::hard_link(&f.program, &p),
                2 => fs::write(&p, b"#!/bin/p x\n"),
                3 => fs::write(&p, b"include /etc/ld.so.conf.d/*.conf\n/l\n"),
                4 => fs::write(&p, b"/a\n/lib64\ninclude /etc/ld.so.conf\n"),
                _ => fs::write(&p, b"\x7fELF garbage"),
            },
            2 => symlink(target(op[2], f), &p),
            3 => rustix::fs::mknodat(
                rustix::fs::CWD,
                &p,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o644),
                0,
            )
            .map_err(Into::into),
            4 => fs::remove_file(&p),
            _ => fs::set_permissions(&p, fs::Permissions::from_mode(0o755)),
        };
    }
}

/// (dev, ino) of every regular file reachable from the root without
/// following a symlink.
fn inside(root: &Path) -> HashSet<(u64, u64)> {
    let mut set = HashSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                set.insert((m.dev(), m.ino()));
            }
        }
    }
    set
}

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let split = data.iter().position(|&c| c == b'\n').unwrap_or(data.len());
    let (ops, env) = data.split_at(split);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    build(root, &ops[..ops.len().min(3 * 32)], f);
    for p in PATHS {
        if crosses_a_symlink(root, p) {
            continue;
        }
        if let Ok(m) = fs::symlink_metadata(root.join(p.trim_start_matches('/'))) {
            if m.is_file() {
                let _ = fs::set_permissions(root.join(p.trim_start_matches('/')), fs::Permissions::from_mode(0o755));
            }
        }
    }
    let allowed = inside(root);
    let env =
        String::from_utf8_lossy(&env.get(1..).unwrap_or_default()[..env.len().saturating_sub(1).min(64)]).into_owned();
    let envp = [format!("LDSO_PATH={env}"), format!("LD_LIBRARY_PATH={env}")];
    let ns = Namespace::open(root).unwrap().with_cwd("/bin");
    // One resolver for all inputs, as a server keeps one: its caches are
    // keyed by file identity and must never serve a stale answer.
    static RESOLVER: OnceLock<Resolver> = OnceLock::new();
    let resolver = RESOLVER.get_or_init(|| Resolver::new(Config::default()));
    for path in ["/bin/p", "/bin/s", "/x", "p", "../a/b"] {
        let Ok(plan) = resolver.plan_exec(&ns, path, &[path], &envp) else {
            continue;
        };
        let mut fds: Vec<std::os::fd::BorrowedFd<'_>> = plan.fd_pairs().map(|(_, fd)| fd).collect();
        if let Target::Fd(fd) = plan.target() {
            fds.push(std::os::fd::AsFd::as_fd(fd));
        }
        for fd in fds {
            let st = rustix::fs::fstat(fd).unwrap();
            assert!(
                allowed.contains(&(st.st_dev, st.st_ino)),
                "{path}: resolved outside the root: {plan:?}"
            );
        }
    }
});
