//! Descriptor hygiene of the resolver, in a test binary of its own: the
//! process's descriptor table is shared by all tests of a binary, so these
//! checks run alone, in one test function.

// Only a few of the suite's helpers are used here.
#[allow(dead_code)]
mod support;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;

use ldchain::resolver::{Config, Namespace, Resolver};

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

    // 10,000 plans, successful and failing, leave the table as it was.
    let r = Resolver::new(Config::default());
    let before = open_fds();
    for i in 0..10_000 {
        let path = ["/bin/probe", "/bin/script", "/bin/missing", "/bin/data"][i % 4];
        let _ = r.plan_exec(&ns, path, &[path], &["LDSO_PATH=/nothing:/lib64"]);
    }
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
}
