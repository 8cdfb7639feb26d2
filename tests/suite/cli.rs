//! The `ldchain` binary, run as a user would: every subcommand, JSON shape,
//! exit statuses, throwaway and given jails, root and unprivileged, and the
//! README's quick-start line exactly as written.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

fn ldchain() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ldchain"));
    c.stdin(Stdio::null()).env_remove("RUST_LOG");
    c
}

fn run(cmd: &mut Command) -> Run {
    cmd.output().expect("run ldchain").into()
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// A JSON array of strings, as `&str`s.
fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect()
}

#[test]
fn install_prints_what_it_did_and_is_idempotent() {
    let jail = tempfile::tempdir().unwrap();
    let r = run(ldchain().arg("install").arg(jail.path())).ok();
    let target = jail.path().join("chainloader");
    assert!(
        r.stdout.starts_with(&format!("installed {} (", target.display())),
        "{r:#?}"
    );
    assert!(r.stdout.contains(ldchain::embed::NATIVE.sha256));
    assert_eq!(fs::read(&target).unwrap(), ldchain::embed::NATIVE.bytes);
    let r = run(ldchain().arg("install").arg(jail.path())).ok();
    assert!(r.stdout.starts_with("unchanged "), "{r:#?}");
}

#[test]
fn install_check_reports_each_path_and_exits_1_until_refreshed() {
    let jail = tempfile::tempdir().unwrap();
    let j = jail.path();
    let r = run(ldchain().args(["install", "--check"]).arg(j));
    assert_eq!(r.code, Some(1), "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 9, "{r:#?}");
    assert_eq!(
        lines[0],
        format!("missing  {}/chainloader (ldchain install writes it)", j.display())
    );
    assert_eq!(
        lines[5],
        format!(
            "absent   {}/lib/ld-linux.so.2 (no interp stub; none needed)",
            j.display()
        )
    );
    assert!(r.stderr.contains("3 of the paths above need a refresh"), "{r:#?}");
    assert!(fs::read_dir(j).unwrap().next().is_none(), "--check wrote something");

    run(ldchain().arg("install").arg(j)).ok();
    let r = run(ldchain().args(["install", "--check"]).arg(j)).ok();
    assert!(
        r.stdout.starts_with(&format!(
            "current  {}/chainloader (x86_64, sha256 {})\n",
            j.display(),
            ldchain::embed::NATIVE.sha256
        )),
        "{r:#?}"
    );
    assert_eq!(r.stderr, "");

    // An outdated chainloader (one byte of another build) makes it 1 again.
    let mut old = ldchain::embed::NATIVE.bytes.to_vec();
    old[100] ^= 1;
    fs::write(j.join("chainloader"), old).unwrap();
    let r = run(ldchain().args(["install", "--check"]).arg(j));
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stdout.starts_with(&format!(
            "outdated {}/chainloader (another chainloader build, sha256 ",
            j.display()
        )),
        "{r:#?}"
    );
    // Errors are 2.
    let r = run(ldchain().args(["install", "--check", "/nonexistent/jail"]));
    assert_eq!(r.code, Some(2), "{r:#?}");
    assert_eq!(
        r.stderr,
        "ldchain: install --check: /nonexistent/jail: cannot open jail directory: No such file or directory (os error 2)\n"
    );
}

#[test]
fn version_names_the_embedded_chainloaders() {
    let r = run(ldchain().arg("--version")).ok();
    assert!(
        r.stdout
            .starts_with(&format!("ldchain {}\n", env!("CARGO_PKG_VERSION"))),
        "{r:#?}"
    );
    for c in ldchain::embed::ALL {
        let line = format!("{:<20} {:>6} bytes  sha256 {}", c.file_name, c.bytes.len(), c.sha256);
        assert!(r.stdout.contains(&line), "{line}\n{r:#?}");
    }
}

#[test]
fn install_failure_exits_125_with_a_message() {
    let jail = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", jail.path().join("chainloader")).unwrap();
    let r = run(ldchain().arg("install").arg(jail.path()));
    assert_eq!(r.code, Some(125));
    assert!(
        r.stderr.starts_with("ldchain: install: ") && r.stderr.contains("symbolic link"),
        "{r:#?}"
    );
    assert_eq!(r.stderr.lines().count(), 1, "{r:#?}");
    assert!(r.stdout.is_empty(), "{r:#?}");
    let r = run(ldchain().args(["install", "/nonexistent/dir"]));
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert_eq!(
        r.stderr,
        "ldchain: install: /nonexistent/dir: cannot open jail directory: No such file or directory (os error 2)\n"
    );
    assert!(r.stdout.is_empty(), "{r:#?}");
}

#[test]
fn help_for_every_command_has_examples() {
    let r = run(ldchain().arg("--help")).ok();
    for word in ["install", "resolve", "run", "Examples:", "Exit status", "RUST_LOG"] {
        assert!(r.stdout.contains(word), "--help lacks {word}: {}", r.stdout);
    }
    for sub in ["install", "resolve", "run"] {
        let r = run(ldchain().args([sub, "--help"])).ok();
        assert!(r.stdout.contains("Example"), "{sub} --help: {}", r.stdout);
    }
    let r = run(ldchain().arg("--version")).ok();
    assert!(r.stdout.starts_with("ldchain "));
    // A usage error is clap's status 2, with a message.
    let r = run(ldchain().arg("frobnicate"));
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("frobnicate"));
}

#[test]
fn resolve_prints_the_plan_and_is_quiet_on_stderr() {
    let r = run(ldchain().args(["resolve", "--", "/bin/echo", "hi there"])).ok();
    assert!(r.stderr.is_empty(), "quiet by default: {r:#?}");
    // The program is named by its own path (/usr/bin/echo on a merged-/usr
    // system), the file ld.so takes $ORIGIN from.
    let real = fs::canonicalize("/bin/echo").unwrap();
    let real = real.to_str().unwrap();
    assert!(
        r.stdout.contains(&format!("program:  {real} (dynamic, x86_64)")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("ld.so:    /") && r.stdout.contains("found by rule"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "argv:     /chainloader <fd:ld.so> /bin/echo --argv0 /bin/echo {real} 'hi there'"
        )),
        "{}",
        r.stdout
    );
    // -v shows the decisions on stderr.
    let r = run(ldchain().args(["-v", "resolve", "--", "/bin/echo"])).ok();
    assert!(r.stderr.contains("dynamic program"), "{r:#?}");
    // A bare name is looked up in PATH inside the namespace.
    let r = run(ldchain().args(["resolve", "-i", "--env", "PATH=/usr/bin", "--", "echo"])).ok();
    assert!(r.stdout.contains("program:  /usr/bin/echo"), "{}", r.stdout);
}

fn rules_tree() -> Option<tempfile::TempDir> {
    let probe = glibc_probe()?;
    let t = tempfile::tempdir().unwrap();
    let put = |inside: &str, bytes: &[u8], mode: u32| {
        let p = t.path().join(inside);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    put("bin/probe", &fs::read(probe).unwrap(), 0o755);
    put("bad/ld-linux-x86-64.so.2", b"not an elf", 0o755);
    put("good/ld-linux-x86-64.so.2", &fs::read(glibc_ldso()).unwrap(), 0o755);
    put("bin/script", b"#!/bin/probe args\n", 0o755);
    put("bin/noexec", b"#!/bin/probe\n", 0o644);
    Some(t)
}

#[test]
fn resolve_json_shape_with_skipped_candidates() {
    let Some(t) = rules_tree() else { return };
    let r = run(ldchain().args(["resolve", "--json", "--root"]).arg(t.path()).args([
        "--env",
        "LDSO_PATH=/bad:/good",
        "--",
        "/bin/script",
        "x",
    ]))
    .ok();
    let v = json(&r.stdout);
    assert_eq!(v["kind"], "dynamic");
    assert_eq!(v["program"], "/bin/probe");
    assert_eq!(v["ldso"], "/good/ld-linux-x86-64.so.2");
    assert_eq!(v["rule"], "ldso-path");
    assert_eq!(v["skipped"][0]["path"], "/bad/ld-linux-x86-64.so.2");
    assert_eq!(v["skipped"][0]["reason"], "not an ELF file");
    assert_eq!(v["scripts"][0]["interpreter"], "/bin/probe");
    let argv = strings(&v["argv"]);
    assert_eq!(
        argv,
        [
            "/chainloader",
            "<fd:ld.so>",
            "/bin/probe",
            "--argv0",
            "/bin/probe",
            "/bin/probe",
            "args",
            "/bin/script",
            "x"
        ]
    );
    // --secure ignores the environment's LDSO_PATH.
    let r = run(ldchain()
        .args(["resolve", "--json", "--secure", "--root"])
        .arg(t.path())
        .args(["--env", "LDSO_PATH=/good", "--", "/bin/probe"]));
    let v = json(&r.stdout);
    assert_eq!((r.code, v["error"].as_str()), (Some(127), Some("ENOENT")), "{r:#?}");
    // --ldso-path is the sandbox's default.
    let r = run(ldchain()
        .args(["resolve", "--json", "--secure", "--ldso-path", "/good", "--root"])
        .arg(t.path())
        .args(["--", "/bin/probe"]))
    .ok();
    assert_eq!(json(&r.stdout)["rule"], "ldso-path");
    // --ldso uses a host file; static programs have no ld.so.
    let r = run(ldchain()
        .args(["resolve", "--json", "--ldso"])
        .arg(glibc_ldso())
        .arg("--root")
        .arg(t.path())
        .args(["--", "/bin/probe"]))
    .ok();
    assert_eq!(json(&r.stdout)["rule"], "configured");
}

#[test]
fn resolve_failures_are_json_with_an_errno_and_the_right_status() {
    let Some(t) = rules_tree() else { return };
    for (path, errno, status) in [
        ("/bin/missing", "ENOENT", 127),
        ("/bin/noexec", "EACCES", 126),
        ("/bin", "EACCES", 126),
    ] {
        let r = run(ldchain()
            .args(["resolve", "--json", "--root"])
            .arg(t.path())
            .args(["--", path]));
        assert_eq!(r.code, Some(status), "{path}: {r:#?}");
        let v = json(&r.stdout);
        assert_eq!(v["error"], errno, "{path}");
        assert!(v["message"].as_str().unwrap().contains(path));
    }
    // ldchain's own failures: 125 and one line naming the command and why.
    let r = run(ldchain().args(["resolve", "--root", "/nonexistent/root", "--", "/bin/true"]));
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert_eq!(
        r.stderr,
        "ldchain: resolve: /nonexistent/root: No such file or directory (os error 2)\n"
    );
    let r = run(ldchain().args(["resolve", "--env", "NOEQUALS", "--", "/bin/true"]));
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert_eq!(r.stderr, "ldchain: resolve: --env NOEQUALS: expected NAME=VALUE\n");
}

#[test]
fn run_in_a_throwaway_jail_where_the_kernel_cannot_exec_the_same_program() {
    let r = run(ldchain().args(["run", "--", "/bin/echo", "hello"])).ok();
    assert_eq!(r.stdout, "hello\n");
    assert!(r.stderr.is_empty(), "{r:#?}");
    // With --strategy chainloader the jail has nothing at /lib64, so a plain
    // execve of /bin/echo inside fails: its PT_INTERP does not exist.
    let r = run(ldchain().args([
        "run",
        "--strategy",
        "chainloader",
        "--",
        "/bin/sh",
        "-c",
        "[ -x /chainloader ] && echo in-jail; [ -e /lib64 ] && echo has-lib64; exec /bin/echo direct",
    ]));
    assert_eq!(r.code, Some(127), "{r:#?}");
    // sh ran, inside the jail (it sees /chainloader and no /lib64).
    assert_eq!(r.stdout, "in-jail\n", "{r:#?}");
    assert!(r.stderr.contains("not found"), "{r:#?}");
    // The execveat strategy needs no /chainloader at all.
    let r = run(ldchain().args(["run", "--strategy", "execveat", "--", "/bin/echo", "via", "execveat"])).ok();
    assert_eq!(r.stdout, "via execveat\n");
    // ... and it runs inside the jail, where there is no /lib64.
    let r = run(ldchain().args([
        "run",
        "--strategy",
        "execveat",
        "--",
        "/bin/sh",
        "-c",
        "[ -e /lib64 ] || echo jailed",
    ]))
    .ok();
    assert_eq!(r.stdout, "jailed\n", "{r:#?}");
    // stdin passes through.
    let mut cmd = ldchain();
    cmd.args(["run", "--", "/bin/sh", "-c", "read line; echo got $line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"input\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got input\n");
}

#[test]
fn run_exit_statuses() {
    let Some(probe) = glibc_probe() else { return };
    let jail = Jail::new();
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.write("/bin/noexec", b"#!/bin/probe\n", 0o644);
    jail.write("/bin/data", b"data", 0o755);
    let base = |args: &[&str]| {
        let mut c = ldchain();
        c.args(["run", "--ldso"])
            .arg(glibc_ldso())
            .arg("--root")
            .arg(jail.path())
            .arg("--")
            .args(args);
        run(&mut c)
    };
    assert_eq!(base(&["/bin/probe", "exit", "0"]).code, Some(0));
    assert_eq!(base(&["/bin/probe", "exit", "7"]).code, Some(7));
    // A program killed by a signal: ldchain dies by the same signal.
    for sig in [9, 15] {
        let r = base(&["/bin/probe", "kill", &sig.to_string()]);
        assert_eq!((r.code, r.signal), (None, Some(sig)), "{r:#?}");
    }
    let r = base(&["/bin/missing"]);
    assert_eq!(r.code, Some(127), "{r:#?}");
    assert!(r.stderr.contains("not found"), "{r:#?}");
    let r = base(&["/bin/noexec"]);
    assert_eq!(r.code, Some(126), "{r:#?}");
    assert!(r.stderr.contains("permission denied"), "{r:#?}");
    assert_eq!(base(&["/bin/data"]).code, Some(126));
    let r = run(ldchain().args(["run", "--root", "/nonexistent/jail", "--", "/bin/true"]));
    assert_eq!(r.code, Some(125), "{r:#?}");
    assert_eq!(
        r.stderr,
        "ldchain: run: /nonexistent/jail: cannot open jail directory: No such file or directory (os error 2)\n"
    );
}

#[test]
fn run_with_root_glibc_musl_static_and_script_in_one_jail() {
    let (Some(probe), Some(mprobe), Some(musl)) = (glibc_probe(), musl_probe(), musl_ldso()) else {
        return;
    };
    let Some(sprobe) = compile("probe-static", "gcc", &["-static"], "probe.c") else {
        return;
    };
    let jail = Jail::new();
    fs::remove_file(jail.path().join("chainloader")).unwrap(); // run places it in its view
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.add(&mprobe, "/bin/mprobe");
    jail.add(&sprobe, "/bin/sprobe");
    jail.write("/bin/script", b"#!/bin/probe args\n", 0o755);
    // musl's ld.so lives in the jail but away from its PT_INTERP path; the
    // sandbox's LDSO_PATH finds it. glibc's comes from the host (--ldso).
    jail.add(&musl, "/opt/musl/ld-musl-x86_64.so.1");
    let go = |extra: &[&str], args: &[&str]| {
        let mut c = ldchain();
        c.args(["run", "--root"])
            .arg(jail.path())
            .args(extra)
            .arg("--")
            .args(args);
        run(&mut c)
    };
    let ldso = glibc_ldso();
    let ldso = ldso.to_str().unwrap();
    assert_eq!(
        go(&["--ldso", ldso], &["/bin/probe", "args", "g"]).ok().stdout,
        "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=g\n"
    );
    assert_eq!(
        go(
            &["--strategy", "chainloader", "--ldso", ldso],
            &["/bin/probe", "args", "c"]
        )
        .ok()
        .stdout,
        "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=c\n"
    );
    assert!(
        !jail.path().join("chainloader").exists(),
        "--root is never written: /chainloader lives in the view only"
    );
    assert_eq!(
        go(&["--ldso-path", "/opt/musl"], &["/bin/mprobe", "args", "m"])
            .ok()
            .stdout,
        "argc=3\nargv[0]=/bin/mprobe\nargv[1]=args\nargv[2]=m\n"
    );
    assert_eq!(
        go(&[], &["/bin/sprobe", "args", "s"]).ok().stdout,
        "argc=3\nargv[0]=/bin/sprobe\nargv[1]=args\nargv[2]=s\n"
    );
    assert_eq!(
        go(&["--ldso", ldso], &["/bin/script", "z"]).ok().stdout,
        "argc=4\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=/bin/script\nargv[3]=z\n"
    );
    // --env reaches the program; -i starts empty.
    let r = go(&["--ldso", ldso, "-i", "--env", "A=1"], &["/bin/probe", "env"]).ok();
    assert_eq!(r.stdout, "env=A=1\nenvc=1\n");
}

#[test]
fn run_with_the_host_root_as_the_jail() {
    // `--root /` (bwrap's `--bind / /`): the jail's root is ldchain's own
    // `/`, which a lookup of "/" never leaves for what is mounted on it;
    // pivot_root refused it (EBUSY) until the init entered the bind from
    // "/..". The view (the service's socket, /chainloader) is in the jail,
    // never on the host.
    let marker = "/chainloader";
    assert!(
        !Path::new(marker).exists(),
        "the host has {marker}: cannot tell the view from it"
    );
    let go = |strategy: &str, script: &str| {
        run(ldchain()
            .args(["run", "--root", "/", "--strategy", strategy, "--", "/bin/sh", "-c"])
            .arg(script))
    };
    let r = go("interp", "test -S /run/ldchain/exec.sock && sh -c 'echo nested'").ok();
    assert_eq!(r.stdout, "nested\n");
    let r = go("chainloader", "test -f /chainloader && echo view").ok();
    assert_eq!(r.stdout, "view\n");
    let r = go("execveat", "echo plain").ok();
    assert_eq!(r.stdout, "plain\n");
    assert!(!Path::new(marker).exists(), "--root / wrote {marker} on the host");
    assert!(
        !Path::new("/run/ldchain").exists(),
        "--root / left /run/ldchain on the host"
    );
}

/// Run `ldchain` as user nobody (65534), from a copy of the binary every
/// user can read, if this machine allows unprivileged user namespaces.
fn as_nobody(args: &[&str], dir: &Path) -> Option<Run> {
    if !nobody_can_run("the unprivileged run") {
        return None;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("ldchain");
    if !bin.exists() {
        copy_file(Path::new(env!("CARGO_BIN_EXE_ldchain")), &bin);
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    }
    Some(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .unwrap()
            .into(),
    )
}

#[test]
fn run_as_an_unprivileged_user() {
    let dir = tempfile::tempdir().unwrap();
    let Some(r) = as_nobody(&["run", "--", "/bin/echo", "hello from nobody"], dir.path()) else {
        return;
    };
    assert_eq!(r.ok().stdout, "hello from nobody\n");
    // And with a jail directory the user owns.
    let Some(probe) = glibc_probe() else { return };
    let jail = dir.path().join("jail");
    fs::create_dir(&jail).unwrap();
    fs::create_dir(jail.join("bin")).unwrap();
    copy_file(&probe, &jail.join("bin/probe"));
    let out = Command::new("ldd").arg(&probe).output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((_, rest)) = line.split_once("=> ") {
            let lib = rest.split_whitespace().next().unwrap();
            let to = jail.join(lib.trim_start_matches('/'));
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(lib, to).unwrap();
        }
    }
    Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&jail)
        .status()
        .unwrap();
    let ldso = glibc_ldso();
    let r = as_nobody(
        &[
            "run",
            "--ldso",
            ldso.to_str().unwrap(),
            "--root",
            jail.to_str().unwrap(),
            "--",
            "/bin/probe",
            "args",
            "u",
        ],
        dir.path(),
    )
    .unwrap();
    assert_eq!(r.ok().stdout, "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=u\n");
}

#[test]
fn readme_quick_start_runs_exactly_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("## Quick start").nth(1).expect("a Quick start section");
    let block = section.split("```").nth(1).expect("a code block");
    let first = block
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("sh"))
        .expect("a command");
    let command = first.split(" #").next().unwrap().trim();
    assert!(
        command.starts_with("cargo run --release -- run"),
        "main job line changed: {command}"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r: Run = out.into();
    assert_eq!(r.code, Some(0), "{command}: {r:#?}");
    assert_eq!(r.stdout, "hello\n", "{command}");
}

/// A tmpfs mounted `noexec` at `dir` (root only), lazily unmounted on drop.
struct NoexecTmpfs(std::path::PathBuf);

impl NoexecTmpfs {
    fn mount(dir: &Path) -> Option<NoexecTmpfs> {
        if !require_root("mounting a noexec tmpfs") {
            return None;
        }
        use rustix::mount::{mount, MountFlags};
        fs::create_dir_all(dir).unwrap();
        mount(
            "ldchain-noexec",
            dir,
            "tmpfs",
            MountFlags::NOEXEC | MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=0755",
        )
        .unwrap_or_else(|e| panic!("mount a noexec tmpfs at {}: {e}", dir.display()));
        Some(NoexecTmpfs(dir.to_owned()))
    }
}

impl Drop for NoexecTmpfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn noexec_mounts_are_refused_for_the_program_and_for_a_candidate_ldso() {
    // The kernel refuses to exec from a noexec mount, and to map ld.so from
    // one executable; the resolver must decide the same, from the mount.
    let Some(probe) = glibc_probe() else { return };
    let jail = Jail::new();
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.add(&glibc_ldso(), "/good/ld-linux-x86-64.so.2");
    let Some(_mount) = NoexecTmpfs::mount(&jail.host("/nx")) else {
        return;
    };
    jail.add(&probe, "/nx/probe");
    jail.add(&glibc_ldso(), "/nx/ld-linux-x86-64.so.2");
    for f in ["/nx/probe", "/nx/ld-linux-x86-64.so.2"] {
        fs::set_permissions(jail.host(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The oracle: the kernel itself refuses the program there.
    let err = Command::new(jail.host("/nx/probe")).output().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");

    // The program: EACCES and 126, from resolve, run and the library.
    let r = run(ldchain()
        .args(["resolve", "--json", "--root"])
        .arg(jail.path())
        .args(["--", "/nx/probe", "args"]));
    assert_eq!(r.code, Some(126), "{r:#?}");
    let v = json(&r.stdout);
    assert_eq!(v["error"], "EACCES", "{r:#?}");
    assert!(v["message"].as_str().unwrap().contains("noexec"), "{r:#?}");
    let r = run(ldchain()
        .args(["run", "--ldso"])
        .arg(glibc_ldso())
        .arg("--root")
        .arg(jail.path())
        .args(["--", "/nx/probe", "args"]));
    assert_eq!(r.code, Some(126), "{r:#?}");
    assert!(r.stderr.contains("permission denied"), "{r:#?}");
    assert!(r.stdout.is_empty(), "{r:#?}");
    let ns = ldchain::resolver::Namespace::open(jail.path()).unwrap();
    let resolver = ldchain::resolver::Resolver::new(Default::default());
    let err = resolver
        .plan_exec(&ns, "/nx/probe", &["probe"], &[] as &[&str])
        .unwrap_err();
    assert_eq!(err.errno_name(), "EACCES", "{err}");

    // A candidate ld.so there: skipped for that reason; the next one is used
    // and the program runs.
    let r = run(ldchain().args(["resolve", "--json", "--root"]).arg(jail.path()).args([
        "--env",
        "LDSO_PATH=/nx:/good",
        "--",
        "/bin/probe",
    ]))
    .ok();
    let v = json(&r.stdout);
    assert_eq!(v["ldso"], "/good/ld-linux-x86-64.so.2", "{r:#?}");
    assert_eq!(v["skipped"][0]["path"], "/nx/ld-linux-x86-64.so.2", "{r:#?}");
    assert_eq!(v["skipped"][0]["reason"], "on a noexec mount", "{r:#?}");
    let r = run(ldchain().args(["run", "--root"]).arg(jail.path()).args([
        "--env",
        "LDSO_PATH=/nx:/good",
        "--",
        "/bin/probe",
        "args",
        "n",
    ]))
    .ok();
    assert_eq!(r.stdout, "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=n\n");
    // With only the noexec one, there is none.
    let r = run(ldchain()
        .args(["resolve", "--json", "--ldso-path", "/nx", "--root"])
        .arg(jail.path())
        .args(["--", "/bin/probe"]));
    assert_eq!(r.code, Some(127), "{r:#?}");
}

#[test]
fn foreign_architecture_ldsos_are_skipped_as_foreign() {
    // The resolver checks the machine itself, before the chainloader's
    // header checks would refuse the file for other reasons: the reason names
    // both architectures, for a 64-bit and a 32-bit program.
    let aarch64 = "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1";
    let i386 = "/lib/ld-linux.so.2";
    if !require(aarch64, "glibc's AArch64 ld.so (libc6-arm64-cross)")
        || !require(i386, "glibc's i386 ld.so (libc6-i386)")
    {
        return;
    }
    let (Some(probe), Some(probe32)) = (
        glibc_probe(),
        compile("probe-i386", "i686-linux-gnu-gcc-12", &[], "probe.c"),
    ) else {
        return;
    };
    let jail = Jail::new();
    jail.add(&probe, "/bin/probe");
    jail.add(&probe32, "/bin/probe32");
    let (x86_64, i386) = (glibc_ldso(), fs::canonicalize(i386).unwrap());
    for (dir, from) in [("/a64", Path::new(aarch64)), ("/i386", &i386), ("/x64", &x86_64)] {
        jail.add(from, &format!("{dir}/ld-linux-x86-64.so.2"));
        jail.add(from, &format!("{dir}/ld-linux.so.2"));
    }
    let skipped = |program: &str, ldso_path: &str| {
        let r = run(ldchain().args(["resolve", "--json", "--root"]).arg(jail.path()).args([
            "--env",
            &format!("LDSO_PATH={ldso_path}"),
            "--",
            program,
        ]))
        .ok();
        let v = json(&r.stdout);
        let reasons: Vec<(String, String)> = v["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["path"].as_str().unwrap().into(), s["reason"].as_str().unwrap().into()))
            .collect();
        (v["ldso"].as_str().unwrap().to_owned(), reasons)
    };
    let pair = |p: &str, r: &str| (p.to_owned(), r.to_owned());
    assert_eq!(
        skipped("/bin/probe", "/a64:/i386:/x64"),
        (
            "/x64/ld-linux-x86-64.so.2".to_owned(),
            vec![
                pair(
                    "/a64/ld-linux-x86-64.so.2",
                    "wrong architecture (aarch64, program is x86_64)"
                ),
                pair(
                    "/i386/ld-linux-x86-64.so.2",
                    "wrong architecture (i386, program is x86_64)"
                ),
            ]
        )
    );
    assert_eq!(
        skipped("/bin/probe32", "/a64:/x64:/i386"),
        (
            "/i386/ld-linux.so.2".to_owned(),
            vec![
                pair("/a64/ld-linux.so.2", "wrong architecture (aarch64, program is i386)"),
                pair("/x64/ld-linux.so.2", "wrong architecture (x86_64, program is i386)"),
            ]
        )
    );
    // A configured ld.so of the wrong architecture is refused outright.
    let r = run(ldchain()
        .args(["resolve", "--ldso", aarch64, "--root"])
        .arg(jail.path())
        .args(["--", "/bin/probe"]));
    assert_ne!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stderr.contains("wrong architecture (aarch64, program is x86_64)"),
        "{r:#?}"
    );
}

// ---------------------------------------------------------------------------
// Faithful to ld.so, safe to print.

#[test]
fn origin_through_a_symlink_in_command_mode() {
    let Some(probe) = glibc_probe() else { return };
    let Some(lib) = compile(
        "liborigin",
        "gcc",
        &["-shared", "-fPIC", "-Wl,-soname,liborigin.so"],
        "origin_lib.c",
    ) else {
        return;
    };
    let lib_flag = lib.to_str().unwrap().to_owned();
    let Some(app) = compile(
        "origin-app",
        "gcc",
        &[
            "-Wl,--no-as-needed",
            "-Wl,--enable-new-dtags",
            "-Wl,-rpath,$ORIGIN/../lib",
            &lib_flag,
        ],
        "origin_app.c",
    ) else {
        return;
    };
    let jail = Jail::new();
    jail.add_glibc_program(&probe, "/bin/probe"); // libc
    jail.add(&app, "/opt/app/bin/app");
    jail.add(&lib, "/opt/app/lib/liborigin.so");
    fs::create_dir_all(jail.host("/usr/local/bin")).unwrap();
    std::os::unix::fs::symlink("/opt/app/bin/app", jail.host("/usr/local/bin/app")).unwrap();
    jail.add(&glibc_ldso(), "/opt/ld/ld-linux-x86-64.so.2");
    // The plan carried out in the jail as `ldchain run --strategy
    // chainloader` does (its own flow runs the exec before entering the
    // jail today: a separate bug, left to src/cli/run.rs's owner).
    let resolver = ldchain::resolver::Resolver::new(ldchain::resolver::Config {
        default_ldso_path: Some(b"/opt/ld".to_vec()),
        ..Default::default()
    });
    let ns = ldchain::resolver::Namespace::open(jail.path()).unwrap();
    let argv = ["/usr/local/bin/app"];
    let plan = resolver.plan_exec(&ns, argv[0], &argv, &[] as &[&str]).unwrap();
    let prepared = plan.prepare(&[] as &[&str]).unwrap();
    let mut cmd = jail.command(&["/nonexistent-placeholder"], &[]);
    // SAFETY: Prepared::exec only makes system calls (async-signal-safe).
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || Err(prepared.exec()));
    }
    let r: Run = output(&mut cmd).unwrap().into();
    assert_eq!(r.stdout, "hello from liborigin\nargv[0]=/usr/local/bin/app\n", "{r:#?}");
    assert_eq!(r.code, Some(0), "{r:#?}");
    let r = run(ldchain()
        .args(["resolve", "--json", "--ldso-path", "/opt/ld", "--root"])
        .arg(jail.path())
        .args(["--", "/usr/local/bin/app"]))
    .ok();
    let v = json(&r.stdout);
    assert_eq!(v["program"], "/opt/app/bin/app", "{v}");
    let argv = strings(&v["argv"]);
    assert_eq!(
        argv[2..],
        [
            "/usr/local/bin/app",
            "--argv0",
            "/usr/local/bin/app",
            "/opt/app/bin/app"
        ],
        "comm and argv[0] keep the symlink's name; ld.so gets the file's own path"
    );
}

/// Whether `bytes` holds a control byte other than the newlines ending lines
/// (C0, DEL, or a C1 control encoded in UTF-8).
fn has_raw_control(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| (b < 0x20 && b != b'\n') || b == 0x7f)
        || String::from_utf8_lossy(bytes)
            .chars()
            .any(|c| ('\u{80}'..='\u{9f}').contains(&c))
}

#[test]
fn control_bytes_in_names_are_escaped_in_text_json_errors_and_logs() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let Some(t) = rules_tree() else { return };
    let probe = fs::read(t.path().join("bin/probe")).unwrap();
    // Names that print the same if escaped carelessly: an ESC sequence and a
    // newline; invalid UTF-8 against its U+FFFD replacement; a C1 CSI.
    let names: [&[u8]; 5] = [
        b"/bin/a\x1b[2J\nforged: line",
        b"/bin/a\\x1b[2J\\x0aforged: line",
        b"/bin/p\xff\xfe",
        "/bin/p\u{fffd}\u{fffd}".as_bytes(),
        "/bin/c\u{9b}31m".as_bytes(),
    ];
    for name in names {
        let host = t.path().join(OsStr::from_bytes(&name[1..]));
        fs::write(&host, &probe).unwrap();
        fs::set_permissions(&host, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let go = |args: &[&str], name: &[u8]| {
        let out = ldchain()
            .args(args)
            .arg("--ldso-path")
            .arg("/good")
            .arg("--root")
            .arg(t.path())
            .arg("--")
            .arg(OsStr::from_bytes(name))
            .output()
            .unwrap();
        (out.stdout, out.stderr)
    };
    let mut texts = std::collections::HashSet::new();
    let mut jsons = std::collections::HashSet::new();
    for name in names {
        let (text, log) = go(&["-vvv", "resolve"], name);
        assert!(!has_raw_control(&text), "text: {}", String::from_utf8_lossy(&text));
        assert!(!has_raw_control(&log), "-vvv log: {}", String::from_utf8_lossy(&log));
        assert!(!String::from_utf8_lossy(&text).contains("\nforged"), "a forged line");
        assert!(texts.insert(text), "two names printed the same");
        let (out, _) = go(&["resolve", "--json"], name);
        assert!(!has_raw_control(&out), "json: {}", String::from_utf8_lossy(&out));
        let v = json(std::str::from_utf8(&out).expect("JSON is UTF-8"));
        let program = match v.get("program_bytes") {
            Some(bytes) => bytes
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
                .collect(),
            None => v["program"].as_str().unwrap().as_bytes().to_vec(),
        };
        assert_eq!(program, name, "lossless: {v}");
        assert!(jsons.insert(out), "two names gave the same JSON");
        // Errors: the same names, missing.
        let missing = [name, b".missing"].concat();
        let (_, err) = go(&["resolve"], &missing);
        assert!(!has_raw_control(&err), "error: {}", String::from_utf8_lossy(&err));
        assert_eq!(err.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let (out, _) = go(&["resolve", "--json"], &missing);
        assert!(!has_raw_control(&out), "json error: {}", String::from_utf8_lossy(&out));
    }
}
