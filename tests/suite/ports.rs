//! The i386 and AArch64 chainloaders: glibc programs built by the Debian
//! cross compilers, in jails with no ld.so; static programs; the same bad
//! inputs as on x86-64; and the resolver choosing the chainloader that
//! matches the program. i386 runs natively on the x86-64 kernel; AArch64
//! runs under qemu-aarch64, with `-L JAIL` as its root for guest paths.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use ldchain::resolver::{Config, Namespace, Resolver};

const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

struct Port {
    arch: &'static str,
    cc: &'static str,
    /// The host path of the architecture's glibc ld.so.
    ldso: PathBuf,
    /// Where its libc goes inside a jail, and where it comes from.
    libc: (&'static str, PathBuf),
    /// Run the chainloader under this emulator (with -L JAIL).
    qemu: Option<&'static str>,
    e_machine: u16,
}

fn i386() -> Option<Port> {
    if !require("i686-linux-gnu-gcc-12", "building i386 test programs")
        || !require("/lib/ld-linux.so.2", "glibc's i386 ld.so (Debian libc6-i386)")
    {
        return None;
    }
    Some(Port {
        arch: "i386",
        cc: "i686-linux-gnu-gcc-12",
        ldso: fs::canonicalize("/lib/ld-linux.so.2").unwrap(),
        libc: ("/lib32/libc.so.6", fs::canonicalize("/lib32/libc.so.6").unwrap()),
        qemu: None,
        e_machine: 3,
    })
}

fn aarch64() -> Option<Port> {
    if !require("aarch64-linux-gnu-gcc-12", "building AArch64 test programs")
        || !require("qemu-aarch64", "running AArch64 programs (Debian qemu-user)")
        || !require(
            &format!("{AARCH64_SYSROOT}/lib/ld-linux-aarch64.so.1"),
            "glibc's AArch64 ld.so (libc6-arm64-cross)",
        )
    {
        return None;
    }
    Some(Port {
        arch: "aarch64",
        cc: "aarch64-linux-gnu-gcc-12",
        ldso: PathBuf::from(format!("{AARCH64_SYSROOT}/lib/ld-linux-aarch64.so.1")),
        libc: (
            "/lib/libc.so.6",
            PathBuf::from(format!("{AARCH64_SYSROOT}/lib/libc.so.6")),
        ),
        qemu: Some("qemu-aarch64"),
        e_machine: 183,
    })
}

impl Port {
    fn probe(&self) -> Option<PathBuf> {
        compile(&format!("probe-{}", self.arch), self.cc, &[], "probe.c")
    }
    fn static_probe(&self) -> Option<PathBuf> {
        compile(&format!("probe-{}-static", self.arch), self.cc, &["-static"], "probe.c")
    }

    /// A jail with the chainloaders, the dynamic probe at /bin/probe and
    /// this architecture's libc — and no ld.so.
    fn jail(&self) -> Option<Jail> {
        let probe = self.probe()?;
        let jail = Jail::new();
        jail.add(&probe, "/bin/probe");
        jail.add(&self.libc.1, self.libc.0);
        for entry in walk(jail.path()) {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.starts_with("ld-linux"), "ld.so in the jail: {}", entry.display());
        }
        Some(jail)
    }

    /// Run `/chainloader-ARCH args...` in `jail` with `keep` inherited.
    fn run(&self, jail: &Jail, args: &[&str], keep: &[&File]) -> Run {
        let inside = format!("/chainloader-{}", self.arch);
        match self.qemu {
            None => {
                let mut argv = vec![inside.as_str()];
                argv.extend_from_slice(args);
                let mut cmd = jail.command(&argv, &[]);
                run_with_fds(&mut cmd, keep)
            }
            Some(qemu) => {
                let mut cmd = Command::new(qemu);
                cmd.arg("-L").arg(jail.path()).arg(jail.host(&inside)).args(args);
                run_with_fds(&mut cmd, keep)
            }
        }
    }

    /// Run a program in `jail` directly, as the kernel (or qemu) would.
    fn run_direct(&self, jail: &Jail, argv: &[&str]) -> std::io::Result<Run> {
        match self.qemu {
            None => output(&mut jail.command(argv, &[])).map(Run::from),
            Some(qemu) => Command::new(qemu)
                .arg("-L")
                .arg(jail.path())
                .arg(jail.host(argv[0]))
                .args(&argv[1..])
                .output()
                .map(Run::from),
        }
    }

    fn available(&self) -> bool {
        host_chainloader_for(self.arch).is_some()
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn dynamic_program_in_a_jail_without_ldso(port: Port) {
    if !port.available() {
        return;
    }
    let Some(jail) = port.jail() else { return };
    let ldso = open(&port.ldso);
    let fd = fdnum(&ldso);
    let run = port
        .run(&jail, &[&fd, "ld.so", "/bin/probe", "args", "x y"], &[&ldso])
        .ok();
    assert_eq!(
        run.stdout, "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=x y\n",
        "{}",
        port.arch
    );
    let run = port.run(&jail, &[&fd, "ld.so", "/bin/probe", "exit", "5"], &[&ldso]);
    assert_eq!((run.code, run.signal), (Some(5), None), "{}: {run:#?}", port.arch);
    let run = port.run(&jail, &[&fd, "ld.so", "/bin/probe", "fd", &fd], &[&ldso]).ok();
    assert_eq!(run.stdout, format!("fd {fd} closed\n"));
    // comm, found in this architecture's words (4 or 8 bytes): the unused
    // last argument moves the end of ARG0 by 0 to 7 bytes.
    for pad in 0..8 {
        let pad = "p".repeat(pad);
        for (arg0, comm) in [
            ("a/b", "b"),
            ("x/.hidden", ".hidden"),
            ("/123/5678/9abc", "9abc"),
            ("abcdefg/", "abcdefg"),
            ("/lib/ld-linux-armhf.so.3", "ld-linux-armhf."),
        ] {
            let run = port.run(&jail, &[&fd, arg0, "/bin/probe", "comm", &pad], &[&ldso]).ok();
            assert_eq!(
                run.stdout,
                format!("comm={comm}\n"),
                "{}: ARG0 {arg0:?}, pad {pad:?}",
                port.arch
            );
        }
    }
    // Without the chainloader, the program cannot start in that jail.
    match port.run_direct(&jail, &["/bin/probe", "args"]) {
        Err(e) => assert_eq!(e.raw_os_error(), Some(2), "{}: {e}", port.arch),
        Ok(r) => assert!(r.code != Some(0) && !r.stdout.contains("argc"), "{}: {r:#?}", port.arch),
    }
}

#[test]
fn i386_dynamic_program_in_a_jail_without_ldso() {
    if let Some(p) = i386() {
        dynamic_program_in_a_jail_without_ldso(p);
    }
}

#[test]
fn aarch64_dynamic_program_in_a_jail_without_ldso() {
    if let Some(p) = aarch64() {
        dynamic_program_in_a_jail_without_ldso(p);
    }
}

fn static_program(port: Port) {
    if !port.available() {
        return;
    }
    let Some(sprobe) = port.static_probe() else { return };
    let jail = Jail::new();
    let image = open(&sprobe);
    let fd = fdnum(&image);
    let run = port.run(&jail, &[&fd, "probe", "args", "s"], &[&image]).ok();
    assert_eq!(
        run.stdout, "argc=3\nargv[0]=probe\nargv[1]=args\nargv[2]=s\n",
        "{}",
        port.arch
    );
    let run = port.run(&jail, &[&fd, "probe", "maps"], &[&image]).ok();
    assert_eq!(run.stdout, "stack=rw-p\n", "{}", port.arch);
    // The auxv describes the program as a kernel run would (AT_BASE 0, the
    // rest its own image), after i386's stack slide too.
    let phent = if port.e_machine == 3 { 32 } else { 56 };
    let run = port.run(&jail, &[&fd, "probe", "auxv"], &[&image]).ok();
    assert_eq!(
        run.stdout,
        format!("AT_BASE=0\nAT_PHDR=own\nAT_PHENT={phent}\nAT_PHNUM=own\nAT_ENTRY=own\n"),
        "{}",
        port.arch
    );
}

#[test]
fn i386_static_program() {
    if let Some(p) = i386() {
        static_program(p);
    }
}

#[test]
fn aarch64_static_program() {
    if let Some(p) = aarch64() {
        static_program(p);
    }
}

/// Little-endian ELF field editing for either class.
struct Elf {
    b: Vec<u8>,
}

impl Elf {
    fn c64(&self) -> bool {
        self.b[4] == 2
    }
    fn get(&self, off: usize, n: usize) -> u64 {
        le_get(&self.b, off, n)
    }
    fn set(&mut self, off: usize, n: usize, v: u64) {
        le_set(&mut self.b, off, n, v)
    }
    fn w(&self) -> usize {
        if self.c64() {
            8
        } else {
            4
        }
    }
    fn phoff(&self) -> usize {
        if self.c64() {
            self.get(32, 8) as usize
        } else {
            self.get(28, 4) as usize
        }
    }
    fn phentsize_off(&self) -> usize {
        if self.c64() {
            54
        } else {
            42
        }
    }
    fn phnum(&self) -> usize {
        self.get(self.phentsize_off() + 2, 2) as usize
    }
    fn ph(&self, i: usize) -> usize {
        self.phoff() + i * self.get(self.phentsize_off(), 2) as usize
    }
    /// (offset of p_flags, p_offset, p_vaddr, p_filesz, p_memsz) in a header.
    fn fields(&self, p: usize) -> (usize, usize, usize, usize, usize) {
        if self.c64() {
            (p + 4, p + 8, p + 16, p + 32, p + 40)
        } else {
            (p + 24, p + 4, p + 8, p + 16, p + 20)
        }
    }
    fn loads(&self) -> Vec<usize> {
        (0..self.phnum()).filter(|&i| self.get(self.ph(i), 4) == 1).collect()
    }
}

fn bad_inputs(port: Port) {
    if !port.available() {
        return;
    }
    let jail = Jail::new();
    let ldso = fs::read(&port.ldso).unwrap();
    let refused = |run: &Run, want: &str, what: &str| {
        assert_eq!(
            (run.code, run.signal),
            (Some(127), None),
            "{} {what}: {run:#?}",
            port.arch
        );
        let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.starts_with("qemu")).collect();
        assert_eq!(lines.len(), 1, "{} {what}: {run:#?}", port.arch);
        assert!(
            lines[0].starts_with("chainloader: ") && lines[0].contains(want),
            "{} {what}: want {want:?}: {run:#?}",
            port.arch
        );
    };
    let usage = port.run(&jail, &[], &[]);
    assert_eq!(usage.code, Some(127));
    assert!(usage.stderr.contains("usage: chainloader FD ARG0"), "{usage:#?}");
    refused(
        &port.run(&jail, &["abc", "x"], &[]),
        "FD 'abc': not a file descriptor number",
        "abc",
    );
    refused(
        &port.run(&jail, &["-1", "x"], &[]),
        "not a file descriptor number",
        "-1",
    );
    refused(&port.run(&jail, &["99999999999", "x"], &[]), "out of range", "huge fd");
    refused(
        &port.run(&jail, &["77", "x"], &[]),
        "fd 77: cannot read: EBADF",
        "closed fd",
    );
    let dir = File::open("/").unwrap();
    refused(
        &port.run(&jail, &[&fdnum(&dir), "x"], &[&dir]),
        "is a directory",
        "directory",
    );
    let zero = File::open("/dev/zero").unwrap();
    refused(
        &port.run(&jail, &[&fdnum(&zero), "x"], &[&zero]),
        "not an ELF file",
        "/dev/zero",
    );
    let (_t, empty) = temp_image(b"");
    refused(
        &port.run(&jail, &[&fdnum(&empty), "x"], &[&empty]),
        "empty file",
        "empty",
    );
    // The other architectures' ld.so: wrong class or wrong machine.
    let x86_64 = open(&glibc_ldso());
    let want = if port.e_machine == 3 {
        "64-bit image, 32-bit loader"
    } else {
        "wrong machine"
    };
    refused(
        &port.run(&jail, &[&fdnum(&x86_64), "x"], &[&x86_64]),
        want,
        "foreign ld.so",
    );
    // A dynamic program of the right architecture.
    let probe = open(&port.probe().unwrap());
    refused(
        &port.run(&jail, &[&fdnum(&probe), "x"], &[&probe]),
        "PT_INTERP",
        "dynamic program",
    );

    type Mutation = fn(&mut Elf);
    let cases: [(&str, Mutation, &str); 12] = [
        ("bad magic", |e| e.b[0] = 0, "not an ELF file"),
        ("big-endian", |e| e.b[5] = 2, "big-endian"),
        ("ET_REL", |e| e.set(16, 2, 1), "ET_REL"),
        ("ET_CORE", |e| e.set(16, 2, 4), "ET_CORE"),
        (
            "e_phentsize",
            |e| {
                let o = e.phentsize_off();
                e.set(o, 2, 40)
            },
            "wrong e_phentsize",
        ),
        (
            "too many",
            |e| {
                let o = e.phentsize_off() + 2;
                e.set(o, 2, 5000)
            },
            "too many program headers",
        ),
        (
            "filesz > memsz",
            |e| {
                let p = e.ph(*e.loads().last().unwrap());
                let (_, _, _, fs, ms) = e.fields(p);
                let m = e.get(ms, e.w());
                e.set(fs, e.w(), m + 1)
            },
            "p_filesz > p_memsz",
        ),
        (
            "misaligned",
            |e| {
                let p = e.ph(*e.loads().last().unwrap());
                let (_, off, _, _, _) = e.fields(p);
                let o = e.get(off, e.w());
                e.set(off, e.w(), o + 4)
            },
            "differ modulo the page size",
        ),
        (
            "W+X",
            |e| {
                let p = e.ph(*e.loads().last().unwrap());
                let (fl, ..) = e.fields(p);
                e.set(fl, 4, 7)
            },
            "writable and executable",
        ),
        (
            "overlap",
            |e| {
                let l = e.loads();
                let n = l.len();
                let (p1, p2) = (e.ph(l[n - 2]), e.ph(l[n - 1]));
                let (_, o1, v1, ..) = e.fields(p1);
                let (_, o2, v2, ..) = e.fields(p2);
                let (a, b) = (e.get(v1, e.w()), e.get(o1, e.w()));
                e.set(v2, e.w(), a);
                e.set(o2, e.w(), b)
            },
            "overlap",
        ),
        (
            "no PT_LOAD",
            |e| {
                for i in e.loads() {
                    let p = e.ph(i);
                    e.set(p, 4, 0x6fff_0000)
                }
            },
            "no PT_LOAD",
        ),
        ("truncated", |e| e.b.truncate(e.b.len() / 2), "past end of file"),
    ];
    for (what, mutate, want) in cases {
        let mut elf = Elf { b: ldso.clone() };
        mutate(&mut elf);
        let (_t, f) = temp_image(&elf.b);
        refused(&port.run(&jail, &[&fdnum(&f), "x"], &[&f]), want, what);
    }
}

#[test]
fn i386_bad_inputs() {
    if let Some(p) = i386() {
        bad_inputs(p);
    }
}

#[test]
fn aarch64_bad_inputs() {
    if let Some(p) = aarch64() {
        bad_inputs(p);
    }
}

#[test]
fn the_resolver_picks_the_chainloader_and_rules_of_the_programs_architecture() {
    let Some(port) = i386() else { return };
    if !port.available() {
        return;
    }
    let Some(jail) = port.jail() else { return };
    // A namespace with the i386 ld.so at its conventional (and PT_INTERP)
    // path, and one found through $LIB/$PLATFORM for i386.
    let ns_dir = tempfile::tempdir().unwrap();
    let put = |inside: &str, from: &Path| {
        let p = ns_dir.path().join(inside.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::copy(from, p).unwrap();
    };
    put("/bin/probe", &port.probe().unwrap());
    put("/lib/ld-linux.so.2", &port.ldso);
    put("/opt/lib/i686/ld-linux.so.2", &port.ldso);
    let ns = Namespace::open(ns_dir.path()).unwrap();
    let r = Resolver::new(Config::default());
    let plan = r
        .plan_exec(&ns, "/bin/probe", &["probe", "args"], &[] as &[&str])
        .unwrap();
    assert_eq!(plan.argv_display()[0], "/chainloader-i386");
    assert_eq!(plan.ldso.as_ref().unwrap().path, b"/lib/ld-linux.so.2");
    let plan2 = r
        .plan_exec(&ns, "/bin/probe", &["probe"], &["LD_LIBRARY_PATH=/opt/$LIB/$PLATFORM"])
        .unwrap();
    assert_eq!(plan2.ldso.as_ref().unwrap().path, b"/opt/lib/i686/ld-linux.so.2");
    // Materialised and run in the jail (which has no ld.so).
    use std::os::unix::process::CommandExt;
    let prepared = plan.prepare(&[] as &[&str]).unwrap();
    let mut cmd = jail.command(&["/unused"], &[]);
    // SAFETY: Prepared::exec only makes system calls.
    unsafe { cmd.pre_exec(move || Err(prepared.exec())) };
    let run: Run = output(&mut cmd).unwrap().into();
    assert_eq!(run.ok().stdout, "argc=2\nargv[0]=probe\nargv[1]=args\n");
    // And through the CLI, with the host's i386 ld.so.
    let out = Command::new(env!("CARGO_BIN_EXE_ldchain"))
        .args(["run", "--ldso", "/lib/ld-linux.so.2", "--root"])
        .arg(jail.path())
        .args(["--", "/bin/probe", "args", "cli"])
        .output()
        .unwrap();
    let run: Run = out.into();
    assert_eq!(
        run.ok().stdout,
        "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=cli\n"
    );
}

#[test]
fn every_embedded_chainloader_is_a_static_pie_of_its_architecture() {
    for c in ldchain::embed::ALL {
        let b = c.bytes;
        assert_eq!(&b[..4], b"\x7fELF", "{}", c.arch);
        assert_eq!(u16::from_le_bytes([b[16], b[17]]), 3, "{}: ET_DYN", c.arch);
        assert_eq!(u16::from_le_bytes([b[18], b[19]]), c.machine, "{}", c.arch);
        let elf = Elf { b: b.to_vec() };
        let mut stack = None;
        for i in 0..elf.phnum() {
            let p = elf.ph(i);
            let ty = elf.get(p, 4);
            let (fl, ..) = elf.fields(p);
            let flags = elf.get(fl, 4);
            assert_ne!(ty, 3, "{}: PT_INTERP", c.arch);
            if ty == 1 {
                assert!(!(flags & 2 != 0 && flags & 1 != 0), "{}: W+X segment", c.arch);
            }
            if ty == 0x6474_e551 {
                stack = Some(flags);
            }
        }
        assert_eq!(
            stack.map(|f| f & 1),
            Some(0),
            "{}: executable or missing PT_GNU_STACK",
            c.arch
        );
        if strict() {
            let names: Vec<&str> = ldchain::embed::ALL.iter().map(|c| c.arch).collect();
            assert_eq!(names, ["x86_64", "i386", "aarch64"], "CI embeds all three");
        }
    }
}
