//! bwrap's options, with bwrap's names and meanings, each asserted from
//! inside the jail (README's table lists every bwrap option).

use std::fs::{self, File};
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

fn ldchain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ldchain"));
    c.stdin(Stdio::null()).env_remove("RUST_LOG").current_dir("/");
    c
}

/// A file holding `bytes`, open for reading (to pass as a descriptor).
fn data(dir: &std::path::Path, name: &str, bytes: &[u8]) -> File {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    File::open(p).unwrap()
}

#[test]
fn environment_options() {
    let mut c = ldchain();
    c.args([
        "run",
        "--clearenv",
        "--setenv",
        "A",
        "1",
        "--setenv",
        "B",
        "2",
        "--unsetenv",
        "B",
    ])
    .args(["--setenv", "C", "x=y", "--", "/usr/bin/env"]);
    assert_eq!(Run::from(output(&mut c).unwrap()).ok().stdout, "A=1\nC=x=y\n");
    let mut c = ldchain();
    c.args(["run", "--setenv", "A=B", "1", "--", "/usr/bin/true"]);
    let r = Run::from(output(&mut c).unwrap());
    assert_eq!(r.code, Some(125), "{r:#?}");
}

/// --dir, --symlink, --file, --bind-data, --ro-bind-data, --perms, --size,
/// --tmpfs, --remount-ro, --chmod, --bind-try, --ro-bind-try, --dev-bind,
/// --bind-fd, --mqueue, in one jail.
#[test]
fn filesystem_options() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("marker"), "src-marker\n").unwrap();
    let mut c = ldchain();
    c.arg("run")
        .args(["--perms", "0700", "--dir", "/d", "--symlink", "/usr/bin", "/ub"])
        .args(["--file", "3", "/f", "--perms", "0444", "--bind-data", "4", "/bd"])
        .args([
            "--ro-bind-data",
            "5",
            "/rbd",
            "--ro-bind-try",
            "/nonexistent-ldchain",
            "/x",
        ])
        .arg("--bind-try")
        .arg(&src)
        .arg("/y")
        .args([
            "--dev-bind",
            "/dev/null",
            "/devnull",
            "--tmpfs",
            "/t",
            "--remount-ro",
            "/t",
        ])
        .args([
            "--size", "65536", "--tmpfs", "/s", "--tmpfs", "/c", "--chmod", "0711", "/c",
        ])
        .args(["--ro-bind-fd", "6", "/z", "--mqueue", "/mq", "--"])
        .args(["/bin/sh", "-c"])
        .arg(
            "stat -c '%a %F' /d; readlink /ub; cat /f /bd /rbd; stat -c %a /bd; test -e /x || echo no-x; \
             cat /y/marker; echo >/devnull && echo devnull-ok; touch /t/a 2>/dev/null || echo t-ro; \
             echo >/rbd 2>/dev/null || echo rbd-ro; stat -f -c '%b %S' /s; stat -c %a /c; cat /z/marker; \
             stat -f -c %T /mq",
        );
    // (Each file stays open until the spawn: pass_as_fd keeps a number.)
    let files = [
        data(tmp.path(), "f", b"file-data\n"),
        data(tmp.path(), "bd", b"bind-data\n"),
        data(tmp.path(), "rbd", b"ro-bind-data\n"),
        File::open(&src).unwrap(),
    ];
    for (f, n) in files.iter().zip(3..) {
        pass_as_fd(&mut c, f, n);
    }
    let r = Run::from(output(&mut c).unwrap()).ok();
    assert_eq!(
        r.stdout,
        "700 directory\n/usr/bin\nfile-data\nbind-data\nro-bind-data\n444\nno-x\nsrc-marker\ndevnull-ok\n\
         t-ro\nrbd-ro\n16 4096\n711\nsrc-marker\nmqueue\n"
    );
    // --chmod never writes the jail's or a bind's own files; --perms must
    // be followed by something it applies to.
    for args in [
        &["--chmod", "0700", "/usr"][..],
        &["--perms", "0700", "--symlink", "a", "/b"],
    ] {
        let mut c = ldchain();
        c.arg("run").args(args).args(["--", "/usr/bin/true"]);
        let r = Run::from(output(&mut c).unwrap());
        assert_eq!(r.code, Some(125), "{args:?}: {r:#?}");
    }
}

/// A filter that makes uname(2) fail with EPERM and allows everything else
/// (x86-64 numbers).
fn deny_uname() -> Vec<u8> {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut b = code.to_ne_bytes().to_vec();
        b.extend([jt, jf]);
        b.extend(k.to_ne_bytes());
        b
    };
    [
        insn(0x20, 0, 0, 0),           // ld [nr]
        insn(0x15, 0, 1, 63),          // jeq #uname
        insn(0x06, 0, 0, 0x0005_0001), // ret ERRNO(EPERM)
        insn(0x06, 0, 0, 0x7fff_0000), // ret ALLOW
    ]
    .concat()
}

#[test]
fn process_options() {
    let tmp = tempfile::tempdir().unwrap();
    // --unshare-uts with --hostname; --hostname alone is refused.
    let mut c = ldchain();
    c.args(["run", "--unshare-uts", "--hostname", "jail-host", "--", "/bin/hostname"]);
    assert_eq!(Run::from(output(&mut c).unwrap()).ok().stdout, "jail-host\n");
    let mut c = ldchain();
    c.args(["run", "--hostname", "jail-host", "--", "/bin/hostname"]);
    assert_eq!(Run::from(output(&mut c).unwrap()).code, Some(125));
    // --as-pid-1: no init.
    let mut c = ldchain();
    c.args(["run", "--as-pid-1", "--", "/bin/sh", "-c", "echo $$"]);
    assert_eq!(Run::from(output(&mut c).unwrap()).ok().stdout, "1\n");
    let mut c = ldchain();
    c.args(["run", "--", "/bin/sh", "-c", "echo $$"]);
    assert_eq!(Run::from(output(&mut c).unwrap()).ok().stdout, "2\n");
    // --seccomp FD.
    if cfg!(target_arch = "x86_64") {
        let mut c = ldchain();
        c.args(["run", "--seccomp", "3", "--", "/bin/uname"]);
        let bpf = data(tmp.path(), "bpf", &deny_uname());
        pass_as_fd(&mut c, &bpf, 3);
        let r = Run::from(output(&mut c).unwrap());
        assert_ne!(r.code, Some(0), "{r:#?}");
        assert!(r.stderr.contains("Operation not permitted"), "{r:#?}");
    }
    // --json-status-fd and --info-fd.
    let status = tmp.path().join("status");
    let mut c = ldchain();
    c.args([
        "run",
        "--json-status-fd",
        "3",
        "--info-fd",
        "4",
        "--",
        "/bin/sh",
        "-c",
        "exit 5",
    ]);
    let info = tmp.path().join("info");
    let outs = [File::create(&status).unwrap(), File::create(&info).unwrap()];
    pass_as_fd(&mut c, &outs[0], 3);
    pass_as_fd(&mut c, &outs[1], 4);
    assert_eq!(Run::from(output(&mut c).unwrap()).code, Some(5));
    let status = fs::read_to_string(&status).unwrap();
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines.len(), 2, "{status}");
    assert!(
        lines[0].starts_with("{ \"child-pid\": ") && lines[0].ends_with(" }"),
        "{status}"
    );
    assert_eq!(lines[1], "{ \"exit-code\": 5 }");
    assert_eq!(fs::read_to_string(&info).unwrap(), format!("{}\n", lines[0]));
    // --args FD: NUL-separated arguments where it stands.
    let mut c = ldchain();
    c.args(["--args", "3"]);
    let args = data(tmp.path(), "args", b"run\0--\0/bin/echo\0from args\0");
    pass_as_fd(&mut c, &args, 3);
    assert_eq!(Run::from(output(&mut c).unwrap()).ok().stdout, "from args\n");
    // --block-fd: starts once the descriptor is readable (here: at once).
    let mut c = ldchain();
    c.args([
        "run",
        "--block-fd",
        "3",
        "--sync-fd",
        "4",
        "--",
        "/bin/echo",
        "unblocked",
    ]);
    let ins = [data(tmp.path(), "go", b"x"), data(tmp.path(), "sync", b"")];
    pass_as_fd(&mut c, &ins[0], 3);
    pass_as_fd(&mut c, &ins[1], 4);
    assert_eq!(Run::from(output(&mut c).unwrap()).ok().stdout, "unblocked\n");
    // --unshare-ipc: a message queue made inside is not the host's.
    if require("ipcmk", "makes a System V message queue") {
        let count = || {
            let out = Command::new("ipcs").arg("-q").output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("0x"))
                .count()
        };
        let before = count();
        let mut c = ldchain();
        c.args([
            "run",
            "--unshare-ipc",
            "--",
            "/bin/sh",
            "-c",
            "ipcmk -Q >/dev/null && ipcs -q | grep -c ^0x",
        ]);
        assert_eq!(Run::from(output(&mut c).unwrap()).ok().stdout, "1\n");
        assert_eq!(count(), before);
    }
    let _ = std::io::stdout().flush();
}

#[test]
fn the_start_comparison_runs_bwrap_and_each_build_and_reports_ratios() {
    // benches/start_compare.py is how BENCHMARKS.md's start ratios are
    // measured: it must run on a fresh machine (bwrap, python3 from
    // .ci/run) and report one line per command, bwrap's ratio 1.
    if !require_root("ldchain run's throwaway jail") || !require("bwrap", "the baseline") {
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/start_compare.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(format!("a={}", env!("CARGO_BIN_EXE_ldchain")))
        .arg(format!("b={}", env!("CARGO_BIN_EXE_ldchain")))
        .env("ROUNDS", "3")
        .output()
        .unwrap();
    let run = Run::from(out).ok();
    let lines: Vec<Vec<&str>> = run.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 3, "{run:#?}");
    let names: Vec<&str> = lines.iter().map(|l| l[0]).collect();
    assert_eq!(names, ["bwrap", "a", "b"], "{run:#?}");
    for line in &lines {
        let ratio: f64 = line[line.len() - 1].parse().unwrap();
        assert!(ratio > 0.0, "{run:#?}");
    }
    assert_eq!(lines[0][lines[0].len() - 1], "1.000", "{run:#?}");
    // A build that fails is reported, not timed.
    let out = Command::new("python3")
        .arg(&script)
        .arg("broken=/bin/false")
        .env("ROUNDS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken: exit status 1"),
        "{out:?}"
    );
}
