//! Nested exec: programs inside a jail start other programs through the
//! chainloader at the `PT_INTERP` paths and the exec service (`ldchain run`'s
//! default strategy). Real jails, real glibc and musl, real interpreters.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
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

/// `ldchain run -- sh -c SCRIPT` in a throwaway jail, with PATH set.
fn sh(script: &str) -> Run {
    run(ldchain().args([
        "run",
        "--env",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "--",
        "/bin/sh",
        "-c",
        script,
    ]))
}

#[test]
fn throwaway_jail_shell_pipelines_and_tools_start_programs() {
    let r = sh(
        "ls /usr | head -3 | wc -l; env -i PATH=/usr/bin:/bin sh -c 'echo envi'; \
                find /etc -maxdepth 1 -name hostname -exec echo found {} \\; ; \
                echo a b | xargs -n1 echo x",
    )
    .ok();
    assert_eq!(r.stdout, "3\nenvi\nfound /etc/hostname\nx a\nx b\n", "{r:#?}");
    assert_eq!(r.stderr, "");
    // The kernel loaded the program: /proc/self/exe and cmdline are its own.
    let r = sh("readlink /proc/self/exe; cat /proc/self/cmdline | tr '\\0' '|'").ok();
    assert_eq!(r.stdout, "/usr/bin/readlink\ncat|/proc/self/cmdline|", "{r:#?}");
    // What sits at PT_INTERP is ldchain's stub (this build's chainloader,
    // bound in for the comparison), not a libc's ld.so.
    let dir = tempfile::tempdir().unwrap();
    let blob = ldchain::embed::ALL
        .iter()
        .find(|b| b.file_name == "chainloader")
        .unwrap();
    std::fs::write(dir.path().join("cl"), blob.bytes).unwrap();
    let r = run(ldchain().args(["run", "--ro-bind"]).arg(dir.path().join("cl")).args([
        "/ours",
        "--",
        "/bin/sh",
        "-c",
        "cmp /lib64/ld-linux-x86-64.so.2 /ours && echo stub",
    ]))
    .ok();
    assert_eq!(r.stdout, "stub\n");
}

#[test]
fn throwaway_jail_interpreters_rerun_themselves() {
    let r = run(ldchain().args([
        "run",
        "--",
        "/usr/bin/perl",
        "-e",
        r#"print "$^X\n"; print `echo backticks`; system($^X, "-e", "print qq(child\n)") == 0 or die"#,
    ]))
    .ok();
    assert_eq!(r.stdout, "/usr/bin/perl\nbackticks\nchild\n", "{r:#?}");
    if require("/usr/bin/python3", "python3 in /usr/bin, for subprocess.run") {
        let r = run(ldchain().args([
            "run",
            "--",
            "/usr/bin/python3",
            "-c",
            "import subprocess,sys; print(sys.executable); \
             print(subprocess.run(['/bin/echo','sub'],capture_output=True,check=True).stdout.decode(),end='')",
        ]))
        .ok();
        assert_eq!(r.stdout, "/usr/bin/python3\nsub\n", "{r:#?}");
    }
    if require("/usr/bin/node", "node, for child_process re-running process.execPath") {
        let r = run(ldchain().args([
            "run",
            "--",
            "/usr/bin/node",
            "-e",
            "console.log(process.execPath); require('child_process').execFileSync(process.execPath, \
             ['-e','console.log(40+2)'], {stdio:'inherit'})",
        ]))
        .ok();
        assert_eq!(r.stdout, "/usr/bin/node\n42\n", "{r:#?}");
    }
}

#[test]
fn throwaway_jail_gcc_builds_a_program_that_runs_and_make_runs_recipes() {
    if !require("gcc", "compiling inside the jail") || !require("make", "running recipes inside the jail") {
        return;
    }
    let r = sh(
        "cd /tmp && printf '#include <stdio.h>\\nint main(void){puts(\"built\");return 0;}\\n' > h.c \
                && gcc -o h h.c && ./h && \
                printf 'all: a b\\na:\\n\\t@echo recipe-a\\nb:\\n\\t@sh -c \"echo recipe-b\"\\n' > Makefile && make -s",
    );
    assert_eq!(r.stdout, "built\nrecipe-a\nrecipe-b\n", "{r:#?}");
    assert_eq!(r.code, Some(0), "{r:#?}");
}

/// A `--root` jail that holds ld.so files only at non-conventional paths:
/// glibc's in /opt/glibc, musl's in /opt/musl (found with --ldso-path).
struct RootJail {
    jail: Jail,
}

const LDSO_PATH: &str = "/opt/glibc:/opt/musl:/opt/i386";

impl RootJail {
    fn new() -> Option<RootJail> {
        let (probe, mprobe, musl) = (glibc_probe()?, musl_probe()?, musl_ldso()?);
        let jail = Jail::new();
        jail.add_glibc_program(&probe, "/bin/probe");
        jail.add(&mprobe, "/bin/mprobe");
        jail.add(&glibc_ldso(), "/opt/glibc/ld-linux-x86-64.so.2");
        jail.add(&musl, "/opt/musl/ld-musl-x86_64.so.1");
        jail.add(&compile("spawn-static", "gcc", &["-static"], "spawn.c")?, "/bin/spawn");
        jail.add(&compile("spawn-glibc", "gcc", &[], "spawn.c")?, "/bin/gspawn");
        jail.add(&compile("spawn-musl", "musl-gcc", &[], "spawn.c")?, "/bin/mspawn");
        Some(RootJail { jail })
    }

    fn ldchain(&self, extra: &[&str], argv: &[&str]) -> Run {
        let mut c = ldchain();
        c.args(["run", "--root"])
            .arg(self.jail.path())
            .args(["--ldso-path", LDSO_PATH]);
        c.args(extra).arg("--").args(argv);
        run(&mut c)
    }

    /// Every path in the jail directory, with size and mode: what the host sees.
    fn snapshot(&self) -> BTreeSet<(PathBuf, u64, u32)> {
        let mut out = BTreeSet::new();
        let mut stack = vec![self.jail.path().to_owned()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).unwrap() {
                let e = e.unwrap();
                let m = e.path().symlink_metadata().unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                }
                out.insert((e.path(), m.len(), m.mode()));
            }
        }
        out
    }
}

fn no_conventional_ldso(jail: &Path) {
    for (path, _) in ldchain::sandbox::view::stub_paths() {
        let p = jail.join(path.trim_start_matches('/'));
        assert!(p.symlink_metadata().is_err(), "{} exists on disk", p.display());
    }
}

#[test]
fn root_jail_static_parent_starts_dynamic_children_by_libc_and_raw_execve() {
    let Some(rj) = RootJail::new() else { return };
    no_conventional_ldso(rj.jail.path());
    let before = rj.snapshot();
    for mode in ["libc", "raw"] {
        let r = rj.ldchain(&[], &["/bin/spawn", mode, "/bin/probe", "args", mode]).ok();
        assert_eq!(
            r.stdout,
            format!("argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]={mode}\nspawn: status 0\n"),
            "{r:#?}"
        );
        assert_eq!(r.stderr, "");
    }
    // The jail on disk is exactly as it was: stubs and socket live only in
    // ldchain's private view.
    assert_eq!(rj.snapshot(), before);
    no_conventional_ldso(rj.jail.path());
}

#[test]
fn root_jail_glibc_starts_musl_and_musl_starts_glibc() {
    let Some(rj) = RootJail::new() else { return };
    let r = rj
        .ldchain(&[], &["/bin/gspawn", "libc", "/bin/mprobe", "args", "m"])
        .ok();
    assert_eq!(
        r.stdout,
        "argc=3\nargv[0]=/bin/mprobe\nargv[1]=args\nargv[2]=m\nspawn: status 0\n"
    );
    let r = rj
        .ldchain(&[], &["/bin/mspawn", "libc", "/bin/probe", "args", "g"])
        .ok();
    assert_eq!(
        r.stdout,
        "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=g\nspawn: status 0\n"
    );
}

#[test]
fn root_jail_x86_64_starts_i386() {
    let Some(rj) = RootJail::new() else { return };
    if !require("i686-linux-gnu-gcc-12", "building i386 test programs")
        || !require("/lib/ld-linux.so.2", "glibc's i386 ld.so (Debian libc6-i386)")
    {
        return;
    }
    let Some(probe32) = compile("probe-i386", "i686-linux-gnu-gcc-12", &[], "probe.c") else {
        return;
    };
    rj.jail.add(&probe32, "/bin/probe32");
    rj.jail.add(
        &fs::canonicalize("/lib/ld-linux.so.2").unwrap(),
        "/opt/i386/ld-linux.so.2",
    );
    rj.jail
        .add(&fs::canonicalize("/lib32/libc.so.6").unwrap(), "/lib32/libc.so.6");
    let r = rj
        .ldchain(&[], &["/bin/spawn", "libc", "/bin/probe32", "args", "32"])
        .ok();
    assert_eq!(
        r.stdout,
        "argc=3\nargv[0]=/bin/probe32\nargv[1]=args\nargv[2]=32\nspawn: status 0\n"
    );
}

#[test]
fn root_jail_children_own_search_paths_are_respected_and_ignored_in_secure_mode() {
    let Some(rj) = RootJail::new() else { return };
    rj.jail.add(&glibc_ldso(), "/opt/alt/ld-linux-x86-64.so.2");
    rj.jail.add(&glibc_ldso(), "/opt/llp/ld-linux-x86-64.so.2");
    let spawn_env = |env: &[&str]| {
        let argv: Vec<&str> = ["/bin/spawn", "env"]
            .iter()
            .chain(env)
            .chain(&["--", "/bin/probe", "args"])
            .copied()
            .collect();
        rj.ldchain(&["-v"], &argv)
    };
    let r = spawn_env(&["LDSO_PATH=/opt/alt"]);
    assert!(r.stdout.ends_with("spawn: status 0\n"), "{r:#?}");
    assert_eq!(chosen(r.stderr.lines()), ["/opt/alt/ld-linux-x86-64.so.2"], "{r:#?}");
    // LDSO_PATH (the sandbox's default here) comes first; an empty one in
    // the child's environment lets LD_LIBRARY_PATH decide.
    let r = spawn_env(&["LDSO_PATH=", "LD_LIBRARY_PATH=/nowhere:/opt/llp"]);
    assert!(r.stdout.ends_with("spawn: status 0\n"), "{r:#?}");
    assert_eq!(chosen(r.stderr.lines()), ["/opt/llp/ld-linux-x86-64.so.2"], "{r:#?}");
    // Variables whose names only begin with those names are not them, even
    // when they come first.
    let r = spawn_env(&[
        "LDSO_PATHX=/opt/alt",
        "LDSO_PATH=",
        "LD_LIBRARY_PATH_=/opt/alt",
        "LD_LIBRARY_PATH=/opt/llp",
    ]);
    assert!(r.stdout.ends_with("spawn: status 0\n"), "{r:#?}");
    assert_eq!(chosen(r.stderr.lines()), ["/opt/llp/ld-linux-x86-64.so.2"], "{r:#?}");
    // Without either, the sandbox's default (--ldso-path) applies.
    let r = spawn_env(&["X=1"]);
    assert_eq!(chosen(r.stderr.lines()), ["/opt/glibc/ld-linux-x86-64.so.2"], "{r:#?}");
}

#[test]
fn root_jail_setuid_child_runs_in_secure_mode() {
    if !rustix::process::getuid().is_root() {
        // Needs a real setuid-root file and a parent that drops to nobody.
        assert!(!strict(), "CI runs as root");
        eprintln!("\n*** SKIP: setuid test needs root ***\n");
        return;
    }
    let Some(rj) = RootJail::new() else { return };
    let Some(escape) = compile("escape-static", "gcc", &["-static"], "escape.c") else {
        return;
    };
    rj.jail.add(&glibc_ldso(), "/opt/alt/ld-linux-x86-64.so.2");
    for (from, to) in [("/bin/probe", "/bin/suprobe"), ("", "/bin/suescape")] {
        let su = rj.jail.host(to);
        let from = if from.is_empty() {
            escape.clone()
        } else {
            rj.jail.host(from)
        };
        copy_file(&from, &su);
        fs::set_permissions(&su, fs::Permissions::from_mode(0o4755)).unwrap();
    }
    // Under `ldchain run` a setuid-root file gains nothing (the jail runs
    // with no_new_privs, as uid 65534): it is not root, so not secure, and
    // its own LDSO_PATH is honoured like any other program's.
    let r = rj.ldchain(&[], &["/bin/spawn", "drop", "/bin/suescape", "id"]).ok();
    assert!(r.stdout.starts_with("uid=65534 euid=65534 nnp=1\n"), "{r:#?}");
    let r = rj.ldchain(
        &["-v", "--env", "LDSO_PATH=/opt/alt"],
        &["/bin/spawn", "drop", "/bin/suprobe", "args", "secure"],
    );
    assert!(r.stdout.ends_with("argv[2]=secure\nspawn: status 0\n"), "{r:#?}");
    assert_eq!(chosen(r.stderr.lines()), ["/opt/alt/ld-linux-x86-64.so.2"], "{r:#?}");
    // The stub's secure mode itself, with the real stub and the real exec
    // service, in the same jail entered by chroot alone (no sandbox, so the
    // setuid bit works): the parent drops to uid 65534, the child is setuid
    // root, AT_SECURE, so its LDSO_PATH is ignored and the sandbox default
    // is used. Which ld.so it got is in its own /proc/self/maps.
    rj.jail.add(&host_chainloader(), "/lib64/ld-linux-x86-64.so.2");
    let _service = serve_in(&rj.jail, LDSO_PATH);
    let maps = |program: &str| {
        let mut cmd = rj.jail.command(&["/bin/spawn", "drop", program, "mapsall"], &[]);
        let r: Run = cmd.env("LDSO_PATH", "/opt/alt").output().unwrap().into();
        assert!(r.stdout.ends_with("spawn: status 0\n"), "{r:#?}");
        r.stdout
    };
    let secure = maps("/bin/suprobe");
    assert!(
        secure.contains("/opt/glibc/ld-linux-x86-64.so.2") && !secure.contains("/opt/alt/"),
        "{secure}"
    );
    // The same child without setuid honours it.
    let plain = maps("/bin/probe");
    assert!(plain.contains("/opt/alt/ld-linux-x86-64.so.2"), "{plain}");
}

#[test]
fn a_program_reached_through_a_symlink_finds_its_origin_libraries() {
    if !require("gcc", "compiling inside the jail") {
        return;
    }
    // Built and run inside the throwaway jail (glibc takes $ORIGIN of a
    // kernel-loaded program from /proc/self/exe, which resolves the link).
    let r = sh("set -e; mkdir -p /tmp/app/lib /tmp/app/bin /tmp/links && cd /tmp/app; \
                echo 'const char *f(void){return \"origin ok\";}' > lib.c; \
                printf '#include <stdio.h>\\nconst char *f(void);\\nint main(void){puts(f());return 0;}\\n' > m.c; \
                gcc -shared -fPIC -o lib/liborigin.so lib.c; \
                gcc -o bin/app m.c -Llib -lorigin -Wl,-rpath,'$ORIGIN/../lib' -Wl,--enable-new-dtags; \
                ln -s /tmp/app/bin/app /tmp/links/app; /tmp/links/app");
    assert_eq!(r.stdout, "origin ok\n", "{r:#?}");
    assert_eq!(r.code, Some(0), "{r:#?}");
}

#[test]
fn when_the_service_refuses_the_program_fails_like_a_missing_ldso() {
    let Some(rj) = RootJail::new() else { return };
    fs::remove_file(rj.jail.host("/opt/glibc/ld-linux-x86-64.so.2")).unwrap();
    let r = rj.ldchain(&[], &["/bin/spawn", "libc", "/bin/probe", "args"]).ok();
    assert_eq!(r.stdout, "spawn: status 127\n", "{r:#?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{r:#?}");
    assert!(
        lines[0].starts_with("chainloader: /bin/probe: no usable dynamic linker /lib64/ld-linux-x86-64.so.2"),
        "{r:#?}"
    );
}

/// A chroot jail with the glibc probe at /bin/probe and the stub at its
/// PT_INTERP, and no exec service; and the probe's host path.
fn stub_jail() -> Option<(Jail, PathBuf)> {
    let probe = glibc_probe()?;
    let jail = Jail::new();
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.add(&host_chainloader(), "/lib64/ld-linux-x86-64.so.2");
    Some((jail, probe))
}

#[test]
fn without_the_service_the_stub_fails_with_one_line_and_127() {
    let Some((jail, _)) = stub_jail() else { return };
    let r = jail.run(&["/bin/probe", "args"], &[]);
    assert_eq!(r.code, Some(127), "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr, "chainloader: exec service: cannot connect: ENOENT\n",
        "{r:#?}"
    );
    // A socket nobody listens on any more: refused, same shape.
    let dir = jail.host("/run/ldchain");
    fs::create_dir_all(&dir).unwrap();
    drop(std::os::unix::net::UnixListener::bind(dir.join("exec.sock")).unwrap());
    let r = jail.run(&["/bin/probe", "args"], &[]);
    assert_eq!(r.code, Some(127), "{r:#?}");
    assert_eq!(
        r.stderr, "chainloader: exec service: cannot connect: errno 111\n",
        "{r:#?}"
    );
}

#[test]
fn plain_gdb_in_the_jail_stops_in_main_and_in_libc_with_symbols() {
    if !require("gdb", "the gdb test") || !require("gcc", "compiling inside the jail") {
        return;
    }
    // The kernel loaded the program, so its auxv (AT_PHDR, AT_ENTRY) is the
    // kernel's own and gdb needs no helper: only the stub's AT_BASE is not
    // ld.so's, which costs gdb its early solib breakpoint (a warning), not
    // symbols — ld.so's r_debug is found through the program's DT_DEBUG.
    let r = sh(
        "cd /tmp && printf '#include <stdio.h>\\nint main(void){puts(\"hi\");return 0;}\\n' > g.c \
                && gcc -g -O0 -o g g.c && gdb -batch -nx -ex 'set breakpoint pending on' -ex 'break main' \
                -ex 'break puts' -ex run -ex bt -ex continue -ex bt --args /tmp/g",
    );
    let out = r.stdout.clone() + &r.stderr;
    assert!(out.contains("Breakpoint 1, main () at g.c:2"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Breakpoint 2, ") && l.contains("puts")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("#1 ") && l.contains(" in main () at g.c:2")),
        "{out}"
    );
}

#[test]
fn the_service_sees_the_namespace_change_between_execs() {
    // The service caches answers; a new, removed or replaced ld.so in a
    // searched directory must be seen by the very next exec. Which ld.so a
    // process got is in its own /proc/self/maps.
    let which = format!("LDSO_PATH=/tmp/ld {WHICH_LDSO}");
    let r = sh(&format!(
        "{which}; {which}; mkdir /tmp/ld && cp /lib64/../usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /tmp/ld/; \
         {which}; {which}; rm /tmp/ld/ld-linux-x86-64.so.2; {which}; \
         cp /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /tmp/ld/x && mv /tmp/ld/x /tmp/ld/ld-linux-x86-64.so.2; {which}"
    ));
    let host = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    let mine = "/tmp/ld/ld-linux-x86-64.so.2";
    // (The paths are as the jail's mount namespace names the server's view
    // of the file: the jail's host directory may come first.)
    let got: Vec<&str> = r.stdout.lines().collect();
    let want = [host, host, mine, mine, host, mine];
    assert_eq!(got.len(), want.len(), "{r:#?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.ends_with(w) && (g.len() == w.len() || g.contains("/ldchain-jail-")),
            "{r:#?}"
        );
    }
}

#[test]
fn the_service_outlives_the_first_program_and_serves_parallel_make_and_closed_descriptors() {
    // A background job execs after the shell has exited: with --wait-all
    // the jail lasts, and the service keeps serving, until the job is done.
    let r = run(ldchain().args([
        "run",
        "--wait-all",
        "--env",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "--",
        "/bin/sh",
        "-c",
        "(sleep 0.3; /bin/echo late) & echo early",
    ]))
    .ok();
    assert_eq!(r.stdout, "early\nlate\n", "{r:#?}");
    // A program that closed its descriptors (stdin, stderr) still execs.
    let r = sh("exec 0<&- 2>&-; /bin/echo fds-closed").ok();
    assert_eq!(r.stdout, "fds-closed\n", "{r:#?}");
    if require("make", "parallel recipes") {
        let r = sh("cd /tmp && for i in 1 2 3 4 5 6 7 8; do printf 't%s:\\n\\t@/bin/echo made-%s >/tmp/out%s\\n' $i $i $i; done > mk \
                    && make -s -j8 -f mk t1 t2 t3 t4 t5 t6 t7 t8 && cat /tmp/out* | sort | tr '\\n' ' '")
        .ok();
        assert_eq!(
            r.stdout, "made-1 made-2 made-3 made-4 made-5 made-6 made-7 made-8 ",
            "{r:#?}"
        );
    }
}

#[test]
fn aarch64_program_through_the_aarch64_stub_under_qemu_user() {
    const SYSROOT: &str = "/usr/aarch64-linux-gnu";
    if !require("aarch64-linux-gnu-gcc-12", "building AArch64 test programs")
        || !require(
            "/usr/bin/qemu-aarch64-static",
            "a static qemu-user that runs inside a jail (qemu-user-static)",
        )
        || !require(
            &format!("{SYSROOT}/lib/ld-linux-aarch64.so.1"),
            "glibc's AArch64 ld.so (libc6-arm64-cross)",
        )
    {
        return;
    }
    let Some(probe) = compile("probe-aarch64", "aarch64-linux-gnu-gcc-12", &[], "probe.c") else {
        return;
    };
    let jail = Jail::new();
    jail.add(&probe, "/bin/probe");
    jail.add(
        Path::new(&format!("{SYSROOT}/lib/ld-linux-aarch64.so.1")),
        "/opt/aarch64/ld-linux-aarch64.so.1",
    );
    jail.add(
        Path::new(&format!("{SYSROOT}/lib/libc.so.6")),
        "/lib/aarch64-linux-gnu/libc.so.6",
    );
    jail.add(
        Path::new("/usr/bin/qemu-aarch64-static"),
        "/usr/bin/qemu-aarch64-static",
    );
    // qemu maps the program and its PT_INTERP (/lib/ld-linux-aarch64.so.1:
    // the AArch64 stub ldchain placed), and the emulated stub asks the
    // service, which picks the AArch64 ld.so.
    let mut c = ldchain();
    c.args(["-v", "run", "--root"])
        .arg(jail.path())
        .args(["--ldso-path", "/opt/aarch64", "--"]);
    c.args(["/usr/bin/qemu-aarch64-static", "/bin/probe", "args", "a64"]);
    let r = run(&mut c).ok();
    assert_eq!(
        r.stdout, "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=a64\n",
        "{r:#?}"
    );
    assert_eq!(
        chosen(r.stderr.lines()),
        ["/opt/aarch64/ld-linux-aarch64.so.1"],
        "{r:#?}"
    );
    no_conventional_ldso(jail.path());
}

/// The standing answer's link for x86-64 programs naming glibc's PT_INTERP.
const STANDING_X86_64: &str = "/run/ldchain/ld/003e2%2flib64%2fld-linux-x86-64.so.2";

/// A shell command that prints the path of the x86-64 ld.so its process
/// got, from its own /proc/self/maps.
const WHICH_LDSO: &str = "grep -m1 -o '/[^ ]*/ld-linux-x86-64.so.2' /proc/self/maps";

/// ldchain's arguments to run `script` with `/bin/sh` in a throwaway jail
/// with ldchain `options` and an environment of PATH alone (cargo test's
/// LD_LIBRARY_PATH would make every exec ask the service).
fn clean_sh(options: &[&str], script: &str) -> Vec<String> {
    let head = ["run", "-i", "--env", "PATH=/usr/bin:/bin"];
    let tail = ["--", "/bin/sh", "-c", script];
    head.iter().chain(options).chain(&tail).map(|a| a.to_string()).collect()
}

/// Run `cmd` to its end, or kill it after 20 s (a hang is a failure, not a
/// stuck suite).
fn run_bounded(cmd: &mut Command) -> Run {
    output_within(cmd, std::time::Duration::from_secs(20))
        .expect("spawn")
        .unwrap_or_else(|| panic!("{cmd:?} hung"))
        .into()
}

#[test]
fn the_stub_takes_a_standing_answer_without_the_service_and_asks_when_it_does_not_load() {
    let Some((jail, probe)) = stub_jail() else { return };
    jail.add(&glibc_ldso(), "/opt/glibc/ld-linux-x86-64.so.2");
    jail.add(&probe, "/opt/static-or-not");
    let link = jail.host(STANDING_X86_64);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    let point = |target: &str| {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
    };
    // A standing answer: no service at all, and the program runs.
    point("/opt/glibc/ld-linux-x86-64.so.2");
    // (cargo test sets LD_LIBRARY_PATH: the programs here must not inherit it.)
    let command = |argv: &[&str]| {
        let mut c = jail.command(argv, &[]);
        c.env_remove("LD_LIBRARY_PATH").env_remove("LDSO_PATH");
        c
    };
    let r = run_bounded(&mut command(&["/bin/probe", "args", "x"]));
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r.stdout.contains("argv[2]=x\n"), "{r:#?}");
    let asked = "chainloader: exec service: cannot connect: ENOENT\n";
    // Its own search path in the environment: the answer may not hold, so
    // the stub asks (and, with no service here, fails as without an ld.so).
    for var in ["LD_LIBRARY_PATH=/opt", "LDSO_PATH=/opt/glibc"] {
        let (k, v) = var.split_once('=').unwrap();
        let r = run_bounded(command(&["/bin/probe", "args"]).env(k, v));
        assert_eq!((r.code, r.stderr.as_str()), (Some(127), asked), "{var}: {r:#?}");
    }
    // What the link leads to does not load (the sandbox changed it before
    // the service removed the link): the stub asks instead — never blocks
    // on a FIFO, never maps a directory, garbage or another program.
    fs::write(jail.host("/opt/garbage"), b"\x7fELF not really").unwrap();
    assert!(Command::new("mkfifo")
        .arg(jail.host("/opt/fifo"))
        .status()
        .unwrap()
        .success());
    fs::create_dir(jail.host("/opt/dir")).unwrap();
    for target in [
        "/opt/fifo",
        "/opt/garbage",
        "/opt/dir",
        "/opt/missing",
        "/opt/static-or-not",
        "/run/ldchain/ld",
    ] {
        point(target);
        let r = run_bounded(&mut command(&["/bin/probe", "args"]));
        assert_eq!((r.code, r.stderr.as_str()), (Some(127), asked), "{target}: {r:#?}");
    }
}

#[test]
fn a_keyed_standing_answer_serves_its_own_key_and_nothing_else() {
    let Some((jail, probe)) = stub_jail() else { return };
    jail.add(&glibc_ldso(), "/opt/glibc/ld-linux-x86-64.so.2");
    jail.add_glibc_program(&probe, "/opt/bin/probe");
    let dir = jail.host("/run/ldchain/ld");
    fs::create_dir_all(&dir).unwrap();
    let plain = STANDING_X86_64.rsplit('/').next().unwrap();
    // Links as the service would leave them (no service here: a process
    // that asks fails with "cannot connect").
    for key in [
        "%l%2fopt",                       // LD_LIBRARY_PATH=/opt
        "%L%2fo%l%2fopt",                 // LDSO_PATH=/o and that
        "%llib%c%2f",                     // a relative entry: cwd / in the name
        "%llib2%c%2fopt",                 // the same for cwd /opt
        "%l$ORIGIN%c%2f%o%2fbin%2fprobe", // $ORIGIN: the program's path in it
    ] {
        std::os::unix::fs::symlink("/opt/glibc/ld-linux-x86-64.so.2", dir.join(format!("{plain}{key}"))).unwrap();
    }
    let asked = "chainloader: exec service: cannot connect: ENOENT\n";
    let run_with = |program: &str, vars: &[(&str, &str)]| {
        let mut c = jail.command(&[program, "args", "x"], &[]);
        c.env_remove("LD_LIBRARY_PATH").env_remove("LDSO_PATH");
        c.envs(vars.iter().copied());
        let r = run_bounded(&mut c);
        (r.code, r.stderr)
    };
    let ran = (Some(0), String::new());
    let refused = (Some(127), asked.to_owned());
    for (program, vars, want) in [
        ("/bin/probe", &[("LD_LIBRARY_PATH", "/opt")][..], &ran),
        ("/bin/probe", &[("LDSO_PATH", "/o"), ("LD_LIBRARY_PATH", "/opt")], &ran),
        ("/bin/probe", &[("LD_LIBRARY_PATH", "lib")], &ran),
        ("/bin/probe", &[("LD_LIBRARY_PATH", "$ORIGIN")], &ran),
        // Another value, a prefix of it, another variable, set but empty.
        ("/bin/probe", &[("LD_LIBRARY_PATH", "/opt2")], &refused),
        ("/bin/probe", &[("LD_LIBRARY_PATH", "/op")], &refused),
        ("/bin/probe", &[("LDSO_PATH", "/opt")], &refused),
        (
            "/bin/probe",
            &[("LDSO_PATH", ""), ("LD_LIBRARY_PATH", "/opt")],
            &refused,
        ),
        ("/bin/probe", &[("LDSO_PATH", "/o")], &refused),
        // A relative entry from another working directory (the stub runs in /).
        ("/bin/probe", &[("LD_LIBRARY_PATH", "lib2")], &refused),
        // $ORIGIN for a program in another directory.
        ("/opt/bin/probe", &[("LD_LIBRARY_PATH", "$ORIGIN")], &refused),
        // With no variable the plain name is wanted (and is not there).
        ("/bin/probe", &[], &refused),
    ] {
        assert_eq!(&run_with(program, vars), want, "{program} {vars:?}");
    }
}

#[test]
fn secure_mode_execs_ask_even_when_their_keyed_answer_stands() {
    if !rustix::process::getuid().is_root() {
        // Needs a real setuid-root file and a parent that drops to nobody.
        assert!(!strict(), "CI runs as root");
        eprintln!("\n*** SKIP: setuid test needs root ***\n");
        return;
    }
    let Some(rj) = RootJail::new() else { return };
    rj.jail.add(&host_chainloader(), "/lib64/ld-linux-x86-64.so.2");
    let su = rj.jail.host("/bin/suprobe");
    copy_file(&rj.jail.host("/bin/probe"), &su);
    fs::set_permissions(&su, fs::Permissions::from_mode(0o4755)).unwrap();
    let dir = rj.jail.host("/run/ldchain/ld");
    fs::create_dir_all(&dir).unwrap();
    let plain = STANDING_X86_64.rsplit('/').next().unwrap();
    std::os::unix::fs::symlink("/opt/glibc/ld-linux-x86-64.so.2", dir.join(format!("{plain}%l%2fopt"))).unwrap();
    // No service: a process that asks fails with "cannot connect", 127.
    let spawn = |program: &str| {
        let mut cmd = rj.jail.command(&["/bin/spawn", "drop", program, "args"], &[]);
        cmd.env_remove("LDSO_PATH").env("LD_LIBRARY_PATH", "/opt");
        run_bounded(&mut cmd)
    };
    let r = spawn("/bin/probe");
    assert!(
        r.stdout.ends_with("spawn: status 0\n"),
        "the keyed answer was not taken: {r:#?}"
    );
    let r = spawn("/bin/suprobe");
    assert!(
        r.stdout.ends_with("spawn: status 127\n"),
        "a secure-mode exec did not ask: {r:#?}"
    );
    assert!(r.stderr.contains("chainloader: exec service: cannot connect"), "{r:#?}");
}

#[test]
fn standing_answers_spare_the_round_trip_and_the_jail_cannot_write_them() {
    if !require("strace", "counting the stub's connections") {
        return;
    }
    let log = tempfile::NamedTempFile::new().unwrap();
    let script = format!(
        "/bin/true; /bin/true; /bin/true; export LD_LIBRARY_PATH=/nowhere; /bin/true; /bin/true; /bin/true; \
         unset LD_LIBRARY_PATH; ls /run/ldchain/ld; \
         readlink '{STANDING_X86_64}'; ln -s /x /run/ldchain/ld/mine 2>&1 | grep -c 'Read-only file system'"
    );
    let r = run_bounded(
        Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=connect", "-o"])
            .arg(log.path())
            .arg(env!("CARGO_BIN_EXE_ldchain"))
            .args(clean_sh(&[], &script))
            .stdin(Stdio::null()),
    )
    .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r:#?}");
    let plain = STANDING_X86_64.rsplit('/').next().unwrap();
    assert_eq!(lines[0], plain, "{r:#?}");
    // The answer for LD_LIBRARY_PATH=/nowhere stands under its own key.
    assert_eq!(lines[1], format!("{plain}%l%2fnowhere"), "{r:#?}");
    assert!(
        lines[2].ends_with("/ld-linux-x86-64.so.2") && lines[2] != "/lib64/ld-linux-x86-64.so.2",
        "{r:#?}"
    );
    assert_eq!(lines[3], "1", "the jail wrote to the answer directory: {r:#?}");
    // Eleven programs started in the jail (sh, 6 × true, ls, readlink, ln,
    // grep): only the first with its own LD_LIBRARY_PATH asked the service
    // (the next two took the answer it left standing under that key). sh
    // did not: ldchain run leaves the program's own answer standing before
    // the jail's program starts.
    let trace = fs::read_to_string(log.path()).unwrap();
    let asked = trace.lines().filter(|l| l.contains("exec.sock")).count();
    assert_eq!(asked, 1, "{asked} asked: {trace}");
}

#[test]
fn a_standing_answer_goes_when_what_it_depended_on_changes() {
    // --ldso-path is the sandbox's default LDSO_PATH, the same for every
    // process: answers found through it stand. A new ld.so in its first
    // directory must replace the standing answer.
    let which = WHICH_LDSO;
    let script = format!(
        "{which}; {which}; cp /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /tmp/first/x && \
         mv /tmp/first/x /tmp/first/ld-linux-x86-64.so.2; i=0; \
         while [ \"$(readlink '{STANDING_X86_64}')\" != /tmp/first/ld-linux-x86-64.so.2 ] && [ $i -lt 500 ]; do i=$((i+1)); done; \
         echo waited=$i; {which}"
    );
    let r = run(ldchain().args(clean_sh(
        &["--ldso-path", "/tmp/first:/usr/lib/x86_64-linux-gnu"],
        &format!("mkdir /tmp/first && {script}"),
    )))
    .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r:#?}");
    let host = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    assert!(lines[0].ends_with(host) && lines[1].ends_with(host), "{r:#?}");
    assert_ne!(lines[2], "waited=500", "the old answer kept standing: {r:#?}");
    assert!(lines[3].ends_with("/tmp/first/ld-linux-x86-64.so.2"), "{r:#?}");
}

#[test]
fn a_keyed_standing_answer_goes_when_what_it_depended_on_changes() {
    // The same as above through the process's own LD_LIBRARY_PATH: its
    // answer stands under a name holding the value, and a new ld.so in the
    // first directory must replace it.
    let which = WHICH_LDSO;
    let link = format!("{STANDING_X86_64}%l%2ftmp%2ffirst:%2fusr%2flib%2fx86_64-linux-gnu");
    let script = format!(
        "mkdir /tmp/first && export LD_LIBRARY_PATH=/tmp/first:/usr/lib/x86_64-linux-gnu && {which}; {which}; \
         readlink '{link}'; cp /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /tmp/first/x && \
         mv /tmp/first/x /tmp/first/ld-linux-x86-64.so.2; i=0; \
         while [ \"$(readlink '{link}')\" != /tmp/first/ld-linux-x86-64.so.2 ] && [ $i -lt 500 ]; do i=$((i+1)); done; \
         echo waited=$i; {which}"
    );
    let r = run(ldchain().args(clean_sh(&[], &script))).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{r:#?}");
    let host = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
    assert!(lines[0].ends_with(host) && lines[1].ends_with(host), "{r:#?}");
    assert_eq!(lines[2], host, "no keyed answer stood: {r:#?}");
    assert_ne!(lines[3], "waited=500", "the old answer kept standing: {r:#?}");
    assert!(lines[4].ends_with("/tmp/first/ld-linux-x86-64.so.2"), "{r:#?}");
}

#[test]
fn an_answer_that_depends_on_the_working_directory_never_stands() {
    // A relative --ldso-path entry is searched from each process's working
    // directory: the same PT_INTERP gets different answers in /tmp and in /.
    let which = WHICH_LDSO;
    let r = run(ldchain().args(clean_sh(
        &["--ldso-path", "rel:/usr/lib/x86_64-linux-gnu"],
        &format!(
            "mkdir /tmp/rel && cp /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 /tmp/rel/ && cd /tmp && {which} && {which} \
             && cd / && {which} && ls /run/ldchain/ld | wc -l"
        ),
    )))
    .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{r:#?}");
    assert!(lines[0].ends_with("/tmp/rel/ld-linux-x86-64.so.2"), "{r:#?}");
    assert!(lines[1].ends_with("/tmp/rel/ld-linux-x86-64.so.2"), "{r:#?}");
    assert!(
        lines[2].ends_with("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        "{r:#?}"
    );
    assert_eq!(lines[3], "0", "an answer stood: {r:#?}");
}

#[test]
fn nothing_of_ldchain_outlives_it() {
    // ldchain hands its inotify instance and its throwaway jail to a child
    // so that its own exit need not wait for the instance's last close or
    // the jail's removal; that child must end just after ldchain, not
    // linger.
    use std::os::unix::process::CommandExt;
    let mut c = ldchain();
    c.args(["run", "-i", "--", "/bin/sh", "-c", "/bin/true; /bin/true"])
        .process_group(0);
    let mut child = c.spawn().unwrap();
    let pgid = child.id();
    assert!(child.wait().unwrap().success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = members_of_group(pgid);
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn ldchain_leaves_its_inotify_instance_to_the_child_that_outlives_it() {
    // The last close of an inotify instance that has watched anything
    // waits for an SRCU grace period (8-16 ms here, every time): ldchain's
    // exit must not, so the child that outlives it holds the instance
    // itself. An epoll instance watching it does not keep it open: held
    // alone, ldchain's exit waited for the grace period again.
    use std::os::unix::process::CommandExt;
    let mut c = ldchain();
    c.args(["run", "--", "/bin/sh", "-c", "read x; exit 0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .process_group(0);
    let mut child = c.spawn().unwrap();
    let pgid = child.id();
    let holds_inotify = |pid: &str| {
        fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|fds| {
                fds.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                    .any(|l| l.to_string_lossy() == "anon_inode:inotify")
            })
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let holders = loop {
        let holders: Vec<String> = members_of_group(pgid)
            .iter()
            .filter_map(|stat| stat.split(' ').next().map(str::to_owned))
            .filter(|pid| *pid != pgid.to_string() && holds_inotify(pid))
            .collect();
        if !holders.is_empty() || std::time::Instant::now() > deadline {
            break holders;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(
        holders.len(),
        1,
        "the inotify instance's holders besides ldchain: {holders:?}"
    );
}

/// The exec service for `jail`, in this process, at its
/// `/run/ldchain/exec.sock` (mode 0666), with `ldso_path` as the sandbox's
/// default LDSO_PATH; it stops when dropped.
fn serve_in(jail: &Jail, ldso_path: &str) -> ldchain::service::ExecService {
    let sock = jail.host("/run/ldchain/exec.sock");
    fs::create_dir_all(sock.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666)).unwrap();
    let resolver = ldchain::resolver::Resolver::new(ldchain::resolver::Config {
        default_ldso_path: Some(ldso_path.as_bytes().to_vec()),
        ..Default::default()
    });
    let ns = ldchain::resolver::Namespace::open(jail.path()).unwrap();
    let source = ldchain::service::NamespaceSource::new(resolver, ns);
    ldchain::service::ExecService::start(
        listener,
        std::sync::Arc::new(source),
        ldchain::service::Limits::default(),
    )
    .unwrap()
}

/// Whichever way the stub got its ld.so — a standing answer, the service
/// after a standing answer that did not load, the service alone — the
/// program starts with the descriptors it was given and nothing else (as a
/// static program started the same way does).
#[test]
fn the_stub_leaks_no_descriptor_whichever_way_it_got_its_ldso() {
    let Some((jail, _)) = stub_jail() else { return };
    let (Some(dynamic), Some(fixed)) = (
        compile("fds", "gcc", &[], "fds.c"),
        compile("fds-static", "gcc", &["-static"], "fds.c"),
    ) else {
        return;
    };
    jail.add_glibc_program(&dynamic, "/bin/fds");
    jail.add(&fixed, "/bin/sfds");
    jail.add(&glibc_ldso(), "/opt/glibc/ld-linux-x86-64.so.2");
    fs::write(jail.host("/opt/garbage"), b"\x7fELF not really").unwrap();
    let _service = serve_in(&jail, "/opt/glibc");
    let fds = |program: &str| {
        let mut c = jail.command(&[program], &[]);
        c.env_remove("LD_LIBRARY_PATH").env_remove("LDSO_PATH");
        let r = run_bounded(&mut c);
        assert_eq!(r.code, Some(0), "{r:#?}");
        r.stdout
    };
    let given = fds("/bin/sfds");
    assert!(given.starts_with("fds: 0 1 2"), "{given}");
    let link = jail.host(STANDING_X86_64);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    for standing in [Some("/opt/glibc/ld-linux-x86-64.so.2"), Some("/opt/garbage"), None] {
        let _ = fs::remove_file(&link);
        if let Some(target) = standing {
            std::os::unix::fs::symlink(target, &link).unwrap();
        }
        assert_eq!(fds("/bin/fds"), given, "{standing:?}");
    }
}

/// A program with two `PT_INTERP` headers (its first `PT_NOTE` turned into
/// a second one, naming note bytes): the kernel uses the first, and so does
/// the stub — the program runs.
#[test]
fn the_stub_asks_for_the_first_pt_interp_as_the_kernel_uses() {
    let Some((jail, probe)) = stub_jail() else { return };
    jail.add(&glibc_ldso(), "/opt/glibc/ld-linux-x86-64.so.2");
    let mut elf = fs::read(&probe).unwrap();
    let (phoff, phentsize, phnum) = (
        le_get(&elf, 0x20, 8) as usize,
        le_get(&elf, 0x36, 2) as usize,
        le_get(&elf, 0x38, 2) as usize,
    );
    let types: Vec<u64> = (0..phnum).map(|i| le_get(&elf, phoff + i * phentsize, 4)).collect();
    let (first_interp, note) = (
        types.iter().position(|&t| t == 3).expect("a PT_INTERP"),
        types.iter().position(|&t| t == 4).expect("a PT_NOTE"),
    );
    assert!(first_interp < note, "{types:?}");
    le_set(&mut elf, phoff + note * phentsize, 4, 3);
    jail.write("/bin/twointerp", &elf, 0o755);
    let _service = serve_in(&jail, "/opt/glibc");
    let mut c = jail.command(&["/bin/twointerp", "args", "two"], &[]);
    c.env_remove("LD_LIBRARY_PATH").env_remove("LDSO_PATH");
    let r = run_bounded(&mut c);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "argc=3\nargv[0]=/bin/twointerp\nargv[1]=args\nargv[2]=two\n"),
        "{r:#?}"
    );
}
