//! Descriptor hygiene of the resolver, in a test binary of its own: the
//! process's descriptor table is shared by all tests of a binary, so these
//! checks run alone, in one test function — leaks, and what a search does
//! when the table is full.

// Only a few of the suite's helpers are used here.
#[allow(dead_code)]
mod support;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;

use ldchain::resolver::{Config, Machine, Namespace, Resolver};
use ldchain::service::InterpRequest;

fn open_fds() -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort();
    v
}

#[test]
fn no_descriptor_leaks() {
    let Some(probe) = support::glibc_probe() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let put = |inside: &str, bytes: &[u8], mode: u32| {
        let p = root.join(inside);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    put("bin/probe", &fs::read(&probe).unwrap(), 0o755);
    put(
        "lib64/ld-linux-x86-64.so.2",
        &fs::read(support::glibc_ldso()).unwrap(),
        0o755,
    );
    put("bin/script", b"#!/bin/probe x\n", 0o755);
    put("bin/data", b"data", 0o755);
    put("etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n", 0o644);
    put("etc/ld.so.conf.d/a.conf", b"/nowhere\n", 0o644);
    let ns = Namespace::open(Path::new(root)).unwrap();

    // 10,000 plans, successful and failing, leave the table as it was once
    // the resolver is gone; meanwhile it holds what its warm plans need
    // (inotify, the mount table, each file they read), not one per plan.
    let r = Resolver::new(Config::default());
    let before = open_fds();
    for i in 0..10_000 {
        let path = ["/bin/probe", "/bin/script", "/bin/missing", "/bin/data"][i % 4];
        let _ = r.plan_exec(&ns, path, &[path], &["LDSO_PATH=/nothing:/lib64"]);
    }
    let held = open_fds().len() - before.len();
    assert!(held <= 12, "the resolver holds {held} descriptors after 10,000 plans");
    drop(r);
    assert_eq!(before, open_fds(), "descriptors leaked by plan_exec");

    // A failed exec closes the plan's descriptors.
    let r = Resolver::new(Config {
        chainloader: b"/nonexistent/chainloader".to_vec(),
        ..Config::default()
    });
    let plan = r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]).unwrap();
    let fd = plan.fd_pairs().next().unwrap().1.as_raw_fd();
    assert!(open_fds().contains(&fd));
    let err = plan.exec(&[] as &[&str]);
    assert_eq!(err.errno_name(), "ENOENT", "{err}");
    assert_eq!(before, open_fds(), "descriptor {fd} leaked by a failed exec");

    out_of_descriptors_ends_the_search(&ns);
    assert_eq!(before, open_fds(), "descriptors leaked when out of descriptors");
}

/// A search that runs out of descriptors while opening a candidate ends
/// with EMFILE, as execve would, instead of counting the candidate as
/// unusable and answering ENOENT ("no usable dynamic linker"). The table
/// is filled for real (under a lowered RLIMIT_NOFILE, so filling it is
/// quick), leaving 0, 1 and 2 descriptors free: opening a candidate takes
/// two at once (`O_PATH`, then the reopen for reading), so 0 and 1 fail
/// with EMFILE and 2 finds the ld.so — the same request, so the harness
/// leaves exactly what it says.
fn out_of_descriptors_ends_the_search(ns: &Namespace) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let request = InterpRequest {
        machine: Machine::X86_64,
        interp: b"/lib64/ld-linux-x86-64.so.2".to_vec(),
        execfn: b"/bin/probe".to_vec(),
        cwd: b"/".to_vec(),
        ldso_path: Some(b"/nothing".to_vec()),
        ld_library_path: None,
        secure: false,
    };
    let r = Resolver::new(Config::default());
    let saved = getrlimit(Resource::Nofile);
    let highest = *open_fds().last().unwrap() as u64;
    let low = Rlimit {
        current: Some(highest + 64),
        maximum: saved.maximum,
    };
    setrlimit(Resource::Nofile, low).unwrap();
    let mut outcomes = Vec::new();
    for free in 0..3 {
        let mut held = Vec::new();
        loop {
            match fs::File::open("/dev/null") {
                Ok(f) => held.push(f),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                Err(e) => panic!("filling the descriptor table: {e}"),
            }
        }
        held.truncate(held.len() - free);
        let result = r.ldso_for(ns, &request);
        drop(held);
        outcomes.push(match result {
            Ok(answer) => String::from_utf8_lossy(&answer.choice.path).into_owned(),
            Err(e) => format!("{} ({e})", e.errno_name()),
        });
    }
    setrlimit(Resource::Nofile, saved).unwrap();
    eprintln!("0, 1, 2 descriptors free: {outcomes:?}");
    assert!(outcomes[0].starts_with("EMFILE"), "{outcomes:?}");
    assert!(outcomes[1].starts_with("EMFILE"), "{outcomes:?}");
    assert_eq!(outcomes[2], "/lib64/ld-linux-x86-64.so.2", "{outcomes:?}");
}
