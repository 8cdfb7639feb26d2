//! Warm plans across `fork`, in a test binary of its own (one test: the
//! process forks). A forked child shares its parent's inotify instance and
//! mount-table descriptor: if it read them, the parent would never see the
//! changes it took. So a child plans from scratch, and the change it made is
//! seen by the parent's next plan too.

// Only a few of the suite's helpers are used here.
#[allow(dead_code)]
mod support;

use std::fs;
use std::path::Path;

use ldchain::resolver::{Config, Namespace, Resolver};

#[test]
fn a_forked_child_never_takes_its_parents_change_reports() {
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
    let ldso = fs::read(support::glibc_ldso()).unwrap();
    put("bin/probe", &fs::read(&probe).unwrap(), 0o755);
    put("a/ld-linux-x86-64.so.2", &ldso, 0o755);
    fs::create_dir(root.join("b")).unwrap();
    put("etc/ld.so.conf", b"/b\n/a\n", 0o644);
    let ns = Namespace::open(Path::new(root)).unwrap();
    let r = Resolver::new(Config::default());
    let chosen = |r: &Resolver| {
        let p = r.plan_exec(&ns, "/bin/probe", &["probe"], &[] as &[&str]).unwrap();
        String::from_utf8(p.ldso.unwrap().path).unwrap()
    };
    for _ in 0..3 {
        assert_eq!(chosen(&r), "/a/ld-linux-x86-64.so.2");
    }
    assert!(r.warm_plans() >= 1);
    // SAFETY: the child makes system calls and allocations (glibc's malloc
    // is fork-safe) and leaves with _exit; this test binary has no other
    // test thread.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // A new candidate: only the directory's watch can tell.
        fs::write(root.join("b/ld-linux-x86-64.so.2"), &ldso).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(root.join("b/ld-linux-x86-64.so.2"), fs::Permissions::from_mode(0o755)).unwrap();
        let ok = chosen(&r) == "/b/ld-linux-x86-64.so.2" && r.plan_exec(&ns, "/bin/probe", &["p"], &[""]).is_ok();
        // SAFETY: ends the child at once, running nothing of the parent's.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked; `status` is ours.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child planned wrong"
    );
    assert_eq!(
        chosen(&r),
        "/b/ld-linux-x86-64.so.2",
        "the parent missed the change its child made"
    );
}
