//! The jail's view as a boundary: built from descriptors while the jail
//! races it, read-only all the way down where asked, nothing written that
//! vanishes, the `--root` jail on disk never written, and no shared
//! directory bound by default. Each test runs as root and as uid 65534
//! (ldchain in a user namespace of its own).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rustix::fs::RenameFlags;

use crate::sandbox::{everyone, setup, Setup, Who, SECRET};
use crate::support::*;

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A host directory with a marker file, to bind into jails.
fn source(s: &Setup, name: &str) -> std::path::PathBuf {
    let src = s.dir.path().join(name);
    fs::create_dir(&src).unwrap();
    fs::write(src.join("marker"), format!("{name}-marker\n")).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    src
}

/// Two `ldchain run` on one jail: a program of the jail (here: a thread
/// with the same power over the jail's files) swaps directories that the
/// second run's set-up works on for symbolic links to a host directory
/// holding a secret, as fast as it can, all through the runs: entries of
/// the jail's `/` that the mirror of `/` clones (`run`, `lib64`), a
/// directory the socket's mount point is made in (`/run`), one mirrored
/// for the stubs (`/lib64`), a directory mirrored for a
/// bind's mount point (`/tmp/a`), and the entries of `/tmp`, mirrored for
/// another. A mount made by path would follow the link on the host.
#[test]
fn racing_the_view_never_exposes_the_host() {
    let Some(s) = setup() else { return };
    let outside = s.dir.path();
    let src = source(&s, "src");
    let before = names(outside);
    let j = s.jail.path();
    for (dir, name) in [(j.join("tmp"), "a"), (j.to_owned(), "run"), (j.to_owned(), "lib64")] {
        fs::create_dir(dir.join(name)).unwrap();
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o777)).unwrap();
        symlink(outside, dir.join(format!("{name}.alt"))).unwrap();
    }
    for who in everyone() {
        if who == Who::Nobody {
            s.give_jail_to_nobody();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let swapper = {
            let (stop, swaps, j) = (stop.clone(), swaps.clone(), j.to_owned());
            std::thread::spawn(move || {
                let (tmp, root) = (
                    rustix::fs::open(j.join("tmp"), rustix::fs::OFlags::PATH, 0.into()).unwrap(),
                    rustix::fs::open(&j, rustix::fs::OFlags::PATH, 0.into()).unwrap(),
                );
                while !stop.load(Ordering::Relaxed) {
                    for (dir, a, b) in [
                        (&tmp, "a", "a.alt"),
                        (&root, "run", "run.alt"),
                        (&root, "lib64", "lib64.alt"),
                    ] {
                        if rustix::fs::renameat_with(dir, a, dir, b, RenameFlags::EXCHANGE).is_ok() {
                            swaps.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        let (mut ran, runs) = (0, 150);
        for i in 0..runs {
            let mut c = s.ldchain(who);
            c.args(["run", "--root"])
                .arg(j)
                .arg("--bind")
                .arg(&src)
                .arg("/tmp/a/m")
                .arg("--ro-bind")
                .arg(&src)
                .arg(format!("/tmp/n{i}"))
                .args(["--", "/bin/escape", "read"])
                .args(["/tmp/a/secret", "/tmp/a.alt/secret", "/run/secret", "/run.alt/secret"])
                .args(["/lib64/secret", "/lib64.alt/secret", "/run/ldchain/../secret"]);
            let r: Run = output(&mut c).unwrap().into();
            assert!(
                !r.stdout.contains(SECRET),
                "{who:?}, run {i}: the host's directory is in the jail: {r:#?}"
            );
            assert!(
                r.code == Some(0) || (r.code == Some(125) && r.stderr.starts_with("ldchain: run: ")),
                "{who:?}, run {i}: {r:#?}"
            );
            if r.code == Some(0) {
                // Where `a` was renamed meanwhile, the bind went with it.
                ran += 1;
                assert_eq!(r.stdout.matches("read: ").count(), 7, "{who:?}, run {i}: {r:#?}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        let swaps = swaps.load(Ordering::Relaxed);
        eprintln!("{who:?}: {ran} of {runs} runs got through the set-up, {swaps} swaps of each pair meanwhile");
        assert!(swaps >= 1000, "{who:?}: only {swaps} swaps: the race was not run");
        assert!(
            ran > 0,
            "{who:?}: no run got through the set-up: the race tested nothing"
        );
        assert_eq!(names(outside), before, "{who:?}: the host directory gained entries");
    }
}

/// A `--root` jail's `/` is mirrored (it has no `/run` or `/lib64` for the
/// socket and the stubs): a new entry there fails with EROFS instead of
/// landing in a tmpfs that vanishes; a write in an existing directory
/// reaches the disk. The mirror keeps the owner and mode of `/`.
#[test]
fn a_new_entry_in_a_mirrored_directory_fails_and_a_write_below_it_lasts() {
    let Some(s) = setup() else { return };
    let j = s.jail.path();
    for who in everyone() {
        if who == Who::Nobody {
            s.give_jail_to_nobody();
        }
        fs::set_permissions(j, fs::Permissions::from_mode(0o751)).unwrap();
        let mut c = s.ldchain(who);
        c.args(["run", "--root"])
            .arg(j)
            .args(["--", "/bin/escape", "write", "/hello", "/tmp/kept"]);
        let r: Run = output(&mut c).unwrap().into();
        assert_eq!(
            r.ok().stdout,
            "write /hello: failed (Read-only file system)\nwrite /tmp/kept: ok\n",
            "{who:?}"
        );
        assert!(!j.join("hello").exists(), "{who:?}");
        assert_eq!(fs::read_to_string(j.join("tmp/kept")).unwrap(), "written\n", "{who:?}");
        fs::remove_file(j.join("tmp/kept")).unwrap();
        // The mirror of / has the jail's mode and owner (the owner of the
        // jail's /bin too, on disk: compared as the program sees them).
        let mut c = s.ldchain(who);
        c.args(["run", "--root"])
            .arg(j)
            .args(["--", "/bin/escape", "stat", "/", "/bin"]);
        let r = Run::from(output(&mut c).unwrap()).ok();
        let (root, bin) = r.stdout.split_once('\n').unwrap();
        assert!(root.starts_with("stat /: mode=751 "), "{who:?}: {r:#?}");
        assert_eq!(
            root.split_once(" uid=").unwrap().1,
            bin.split_once(" uid=").unwrap().1.trim_end(),
            "{who:?}: {r:#?}"
        );
    }
}

/// `--bind W /work --ro-bind R /work/sub` where W has no `sub`: `/work` is
/// mirrored for the mount point. A new entry in `/work` fails with EROFS,
/// a write into W's own subdirectory reaches W, and W never gains `sub`.
#[test]
fn a_nested_bind_never_turns_a_writable_bind_into_a_vanishing_tmpfs() {
    let Some(s) = setup() else { return };
    let r_src = source(&s, "r");
    for who in everyone() {
        let w = s.dir.path().join(format!("w-{who:?}"));
        fs::create_dir_all(w.join("d")).unwrap();
        for d in [&w, &w.join("d")] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
        }
        let mut c = s.ldchain(who);
        c.args(["run", "--root"])
            .arg(s.jail.path())
            .arg("--bind")
            .arg(&w)
            .arg("/work")
            .arg("--ro-bind")
            .arg(&r_src)
            .arg("/work/sub")
            .args(["--", "/bin/escape", "write", "/work/new", "/work/d/file", "/work/sub/x"]);
        let r: Run = output(&mut c).unwrap().into();
        assert_eq!(
            r.ok().stdout,
            "write /work/new: failed (Read-only file system)\nwrite /work/d/file: ok\n\
             write /work/sub/x: failed (Read-only file system)\n",
            "{who:?}"
        );
        assert_eq!(fs::read_to_string(w.join("d/file")).unwrap(), "written\n");
        assert_eq!(
            names(&w),
            BTreeSet::from(["d".to_owned()]),
            "{who:?}: W on disk changed"
        );
        assert!(!s.jail.host("/work").exists(), "{who:?}: the jail on disk gained /work");
    }
}

/// `--ro-bind SRC /data` with a tmpfs mounted at `SRC/sub`: the submount
/// is read-only in the jail too (the bind is cloned with its submounts and
/// made read-only as a whole before it is attached).
#[test]
fn read_only_binds_are_read_only_all_the_way_down() {
    let Some(s) = setup() else { return };
    if !require(
        "unshare",
        "mounts a tmpfs under the source in a private mount namespace",
    ) {
        return;
    }
    let src = source(&s, "ro");
    fs::create_dir(src.join("sub")).unwrap();
    let ldchain = s.dir.path().join("ldchain");
    for who in everyone() {
        if who == Who::Nobody {
            s.give_jail_to_nobody();
        }
        let setpriv = match who {
            Who::Caller => "",
            Who::Nobody => "setpriv --reuid=65534 --regid=65534 --clear-groups",
        };
        let script = format!(
            "mount -t tmpfs -o mode=0777 t \"$1/sub\" && {setpriv} \"$2\" run --root \"$3\" --ro-bind \"$1\" /data \
             -- /bin/escape write /data/sub/x /data/y; ls -A \"$1/sub\"; echo end"
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(&src)
            .arg(&ldchain)
            .arg(s.jail.path())
            .output()
            .unwrap();
        let r: Run = out.into();
        assert_eq!(
            r.ok().stdout,
            "write /data/sub/x: failed (Read-only file system)\nwrite /data/y: failed (Read-only file system)\nend\n",
            "{who:?}"
        );
    }
}

/// `ldchain run -- /tmp/.../prog` for a program in a world-writable sticky
/// directory binds the program alone: the directory's other entries (other
/// users' files, sockets) are not in the jail.
#[test]
fn a_program_in_a_shared_directory_is_bound_alone() {
    let Some(s) = setup() else { return };
    let shared = s.dir.path().join("shared");
    fs::create_dir(&shared).unwrap();
    copy_file(&s.escape, &shared.join("escape"));
    fs::write(shared.join("other"), "someone-else's\n").unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let prog = shared.join("escape");
    for who in everyone() {
        let mut c = s.ldchain(who);
        c.current_dir(&shared)
            .args(["run", "--", "./escape", "read"])
            .arg(shared.join("other"))
            .arg("other");
        let r: Run = output(&mut c).unwrap().into();
        assert_eq!(
            r.ok().stdout,
            "read: failed (No such file or directory)\nread: failed (No such file or directory)\n",
            "{who:?}"
        );
        let mut c = s.ldchain(who);
        c.args(["run", "--"]).arg(&prog).args(["stat"]).arg(&prog);
        let r = Run::from(output(&mut c).unwrap()).ok();
        assert!(
            r.stdout.starts_with(&format!("stat {}: mode=755", prog.display())),
            "{who:?}: {r:#?}"
        );
    }
}

/// `--root` is never written: a jail on a read-only mount works, and so
/// does a root-owned jail run by an unprivileged user; neither gains
/// anything on disk.
#[test]
fn a_read_only_or_root_owned_root_is_used_as_it_is() {
    let Some(s) = setup() else { return };
    if !require(
        "unshare",
        "makes a read-only bind of the jail in a private mount namespace",
    ) {
        return;
    }
    let j = s.jail.path();
    fs::remove_file(j.join("chainloader")).unwrap();
    let before = names(j);
    let ldchain = s.dir.path().join("ldchain");
    for strategy in ["interp", "chainloader"] {
        let script = format!(
            "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && \
             \"$2\" run --strategy {strategy} --root \"$1\" -- /bin/escape read /tmp/../bin/../proc/self/comm"
        );
        let out = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(j)
            .arg(&ldchain)
            .output()
            .unwrap();
        let r: Run = out.into();
        assert_eq!(r.ok().stdout, "read: ok escape\n", "read-only image, {strategy}");
    }
    if nobody_can_run("a root-owned jail run by uid 65534") {
        for strategy in ["interp", "chainloader"] {
            let mut c = s.ldchain(Who::Nobody);
            c.args(["run", "--strategy", strategy, "--root"]).arg(j).args([
                "--",
                "/bin/escape",
                "read",
                "/proc/self/comm",
            ]);
            let r: Run = output(&mut c).unwrap().into();
            assert_eq!(
                r.ok().stdout,
                "read: ok escape\n",
                "root-owned jail, nobody, {strategy}"
            );
        }
    }
    assert_eq!(names(j), before, "the jail on disk changed");
}

/// A symbolic link on the way to a mount point is refused, wherever it
/// leads (inside the jail too): the view never follows one.
#[test]
fn a_symbolic_link_on_the_way_to_a_mount_point_is_refused() {
    let Some(s) = setup() else { return };
    let src = source(&s, "src");
    symlink("tmp", s.jail.host("/rel")).unwrap();
    symlink("/tmp", s.jail.host("/abs")).unwrap();
    for who in everyone() {
        for dest in ["/rel/m", "/abs/m", "/rel", "/tmp/../rel/m"] {
            let mut c = s.ldchain(who);
            c.args(["run", "--root"])
                .arg(s.jail.path())
                .arg("--bind")
                .arg(&src)
                .arg(dest)
                .args(["--", "/bin/escape", "read", "/tmp/m/marker"]);
            let r: Run = output(&mut c).unwrap().into();
            assert_eq!(r.code, Some(125), "{who:?} {dest}: {r:#?}");
            assert!(
                r.stderr.contains("not a usable mount point") || r.stderr.contains("symbolic link"),
                "{who:?} {dest}: {r:#?}"
            );
            assert!(!s.jail.host("/tmp/m").exists(), "{who:?} {dest}");
        }
    }
}

/// A symbolic link where a file is bound is refused too (a file mount
/// point is never a link, wherever it leads).
#[test]
fn a_symbolic_link_as_a_file_mount_point_is_refused() {
    let Some(s) = setup() else { return };
    let file = s.dir.path().join("data");
    fs::write(&file, "bound-data\n").unwrap();
    fs::write(s.jail.host("/tmp/real"), "jail's own\n").unwrap();
    symlink("real", s.jail.host("/tmp/link")).unwrap();
    let mut c = s.ldchain(Who::Caller);
    c.args(["run", "--root"])
        .arg(s.jail.path())
        .arg("--ro-bind")
        .arg(&file)
        .arg("/tmp/link")
        .args(["--", "/bin/escape", "read", "/tmp/real"]);
    let r: Run = output(&mut c).unwrap().into();
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert!(r.stderr.contains("a symbolic link"), "{r:#?}");
}

/// A `--root` jail whose `/chainloader*` are this build's (from `ldchain
/// install`) keeps them: with the chainloader strategy nothing needs a new
/// entry in `/`, so `/` is not mirrored and stays writable.
#[test]
fn a_jails_own_current_chainloaders_are_kept_and_its_root_stays_writable() {
    let Some(s) = setup() else { return };
    let j = s.jail.path();
    s.give_jail_to_nobody(); // the program (65534) may write its own /
    let mut c = s.ldchain(Who::Caller);
    c.args(["run", "--strategy", "chainloader", "--root"])
        .arg(j)
        .args(["--", "/bin/escape", "write", "/new-in-root"]);
    let r = Run::from(output(&mut c).unwrap()).ok();
    assert_eq!(r.stdout, "write /new-in-root: ok\n", "{r:#?}");
    assert_eq!(fs::read_to_string(j.join("new-in-root")).unwrap(), "written\n");
}

/// A symbolic link among the entries of a mirrored directory is cloned as
/// a link: inside, it resolves in the jail, never to the host directory it
/// names (the race above, made deterministic). `/` is mirrored here for a
/// bind's new mount point.
#[test]
fn a_link_in_a_mirrored_directory_stays_a_link() {
    let Some(s) = setup() else { return };
    let j = s.jail.path();
    let host_dir = s.secret.parent().unwrap();
    symlink(host_dir, j.join("hostlink")).unwrap();
    let inside = Path::new("/hostlink").join(s.secret.file_name().unwrap());
    let src = source(&s, "bound");
    for who in everyone() {
        if who == Who::Nobody {
            s.give_jail_to_nobody();
        }
        let mut c = s.ldchain(who);
        c.args(["run", "--root"])
            .arg(j)
            .arg("--ro-bind")
            .arg(&src)
            .args(["/new-mount-point", "--", "/bin/escape", "read"])
            .arg(&inside)
            .arg("/new-mount-point/marker");
        let r = Run::from(output(&mut c).unwrap()).ok();
        assert!(
            !r.stdout.contains(SECRET),
            "{who:?}: the host's file through the link: {r:#?}"
        );
        assert!(r.stdout.contains(": failed"), "{who:?}: {r:#?}");
        assert!(r.stdout.contains("bound-marker"), "{who:?}: the bind is there: {r:#?}");
    }
}
