//! The chainloader, run for real: jails with no dynamic linker, glibc and
//! musl side by side, static programs, Plash's old checklist, and every bad
//! input a loader must refuse (malformed, hostile, or not an ld.so).

use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;

use crate::support::*;

/// Jail with the glibc probe and its libraries, no ld.so.
fn glibc_jail() -> Option<(Jail, File)> {
    let probe = glibc_probe()?;
    let jail = Jail::new();
    jail.add_glibc_program(&probe, "/bin/probe");
    jail.assert_no_ldso();
    Some((jail, open(&glibc_ldso())))
}

#[test]
fn glibc_program_runs_in_a_jail_with_no_dynamic_linker() {
    let Some((jail, ldso)) = glibc_jail() else { return };
    let fd = fdnum(&ldso);
    let run = jail
        .run(
            &[
                "/chainloader",
                &fd,
                "ld-linux-x86-64.so.2",
                "/bin/probe",
                "args",
                "x",
                "y z",
            ],
            &[&ldso],
        )
        .ok();
    assert_eq!(
        run.stdout,
        "argc=4\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=x\nargv[3]=y z\n"
    );

    // The environment reaches the program unchanged, and only it.
    let mut cmd = jail.command(&["/chainloader", &fd, "ld.so", "/bin/probe", "env"], &[&ldso]);
    cmd.env_clear().env("GREETING", "hello world").env("EMPTY", "");
    let run: Run = output(&mut cmd).unwrap().into();
    let run = run.ok();
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["env=EMPTY=", "env=GREETING=hello world", "envc=2"]);

    // The exit status passes through.
    let run = jail.run(&["/chainloader", &fd, "ld.so", "/bin/probe", "exit", "7"], &[&ldso]);
    assert_eq!((run.code, run.signal), (Some(7), None), "{run:#?}");
    assert_eq!(run.stdout, "exiting with 7\n");
}

#[test]
fn direct_exec_of_a_dynamic_program_fails_with_enoent_in_that_jail() {
    let Some((jail, _ldso)) = glibc_jail() else { return };
    let err = output(&mut jail.command(&["/bin/probe", "args"], &[]))
        .expect_err("the kernel cannot find PT_INTERP in the jail");
    assert_eq!(err.raw_os_error(), Some(2), "{err}");
}

#[test]
fn glibc_and_musl_programs_side_by_side_in_one_jail_with_no_dynamic_linker() {
    let (Some(gprobe), Some(mprobe), Some(musl)) = (glibc_probe(), musl_probe(), musl_ldso()) else {
        return;
    };
    let jail = Jail::new();
    jail.add_glibc_program(&gprobe, "/bin/probe");
    jail.add(&mprobe, "/bin/mprobe"); // musl's libc *is* its ld.so: nothing else to copy
    jail.assert_no_ldso();
    let glibc = open(&glibc_ldso());
    let musl = open(&musl);
    let (g, m) = (fdnum(&glibc), fdnum(&musl));
    let both = [&glibc, &musl];
    let run = jail
        .run(&["/chainloader", &g, "ld.so", "/bin/probe", "args", "glibc"], &both)
        .ok();
    assert_eq!(run.stdout, "argc=3\nargv[0]=/bin/probe\nargv[1]=args\nargv[2]=glibc\n");
    let run = jail
        .run(&["/chainloader", &m, "ld-musl", "/bin/mprobe", "args", "musl"], &both)
        .ok();
    assert_eq!(run.stdout, "argc=3\nargv[0]=/bin/mprobe\nargv[1]=args\nargv[2]=musl\n");
    // musl's --argv0 works through the chainloader too.
    let run = jail
        .run(
            &[
                "/chainloader",
                &m,
                "ld-musl",
                "--argv0",
                "renamed",
                "/bin/mprobe",
                "args",
            ],
            &both,
        )
        .ok();
    assert!(run.stdout.contains("argv[0]=renamed\n"), "{run:#?}");
    let run = jail.run(&["/chainloader", &m, "ld-musl", "/bin/mprobe", "exit", "3"], &both);
    assert_eq!((run.code, run.signal), (Some(3), None), "{run:#?}");
}

#[test]
fn static_and_static_pie_programs_are_loaded_directly() {
    let programs = [
        compile("probe-static", "gcc", &["-static"], "probe.c"),
        compile("probe-static-pie", "gcc", &["-static-pie"], "probe.c"),
        compile("probe-musl-static", "musl-gcc", &["-static"], "probe.c"),
    ];
    let jail = Jail::new(); // holds nothing but /chainloader: the program comes in as an fd
    for program in programs.into_iter().flatten() {
        let image = open(&program);
        let fd = fdnum(&image);
        let run = jail.run(&["/chainloader", &fd, "probe", "args", "a b"], &[&image]).ok();
        assert_eq!(
            run.stdout,
            "argc=3\nargv[0]=probe\nargv[1]=args\nargv[2]=a b\n",
            "{}",
            program.display()
        );
        let run = jail.run(&["/chainloader", &fd, "probe", "exit", "9"], &[&image]);
        assert_eq!(run.code, Some(9), "{}: {run:#?}", program.display());
    }
}

#[test]
fn entry_state_is_what_the_abi_requires() {
    // A freestanding program checks %rsp alignment and %rdx == 0 at _start.
    let Some(entry) = compile(
        "entry",
        "gcc",
        &["-static", "-nostdlib", "-nostartfiles", "-fno-pie", "-no-pie"],
        "entry.c",
    ) else {
        return;
    };
    let image = open(&entry);
    let fd = fdnum(&image);
    // Odd and even argument counts: dropping two words must keep alignment either way.
    for args in [&["e"][..], &["e", "a"], &["e", "a", "b"]] {
        let mut argv = vec![fd.as_str()];
        argv.extend_from_slice(args);
        let run = run_chainloader(&argv, &[&image]).ok();
        assert_eq!(run.stdout, format!("entry ok argc={}\n", args.len()));
    }
}

#[test]
fn plash_checklist_stack_heap_fd_and_names() {
    let Some((jail, ldso)) = glibc_jail() else { return };
    let fd = fdnum(&ldso);
    let probe = |args: &[&str]| {
        let mut argv = vec!["/chainloader", fd.as_str(), "/lib/ld-x", "/bin/probe"];
        argv.extend_from_slice(args);
        jail.run(&argv, &[&ldso]).ok().stdout
    };
    // The stack is not executable.
    assert_eq!(probe(&["maps"]), "stack=rw-p\n");
    // A huge .bss does not stop brk; there is exactly one [heap].
    assert_eq!(probe(&["brk"]), "heaps=1\nbss_below_brk=0\n");
    // The ld.so descriptor is closed before ld.so runs.
    assert_eq!(probe(&["fd", &fd]), format!("fd {fd} closed\n"));
    // /proc/self/cmdline is the kernel's copy of the original argv: the
    // program's own arguments come last, unchanged.
    let cmdline = probe(&["cmdline", "last arg"]);
    assert!(cmdline.starts_with("cmdline=/chainloader|"), "{cmdline}");
    assert!(cmdline.ends_with("|/bin/probe|cmdline|last arg|\n"), "{cmdline}");
    // comm is the basename of ARG0, as the kernel would have set it.
    let run = jail
        .run(
            &["/chainloader", &fd, "/some/where/my-ld.so", "/bin/probe", "comm"],
            &[&ldso],
        )
        .ok();
    assert_eq!(run.stdout, "comm=my-ld.so\n");
    let run = jail
        .run(
            &["/chainloader", &fd, "a-very-long-name-indeed", "/bin/probe", "comm"],
            &[&ldso],
        )
        .ok();
    assert_eq!(run.stdout, "comm=a-very-long-nam\n", "the kernel keeps 15 bytes");
}

#[test]
fn comm_is_the_basename_of_arg0_wherever_its_bytes_lie() {
    // The chainloader finds ARG0's last '/' a word at a time: each name
    // below puts a '/' (or none) at another place in its words, and the
    // padding variable moves the argument strings by 0 to 7 bytes. Around
    // ARG0 lie bytes that must not count: a '/' as our argv[0], four bytes
    // below it (before the FD), and "/bin/probe" just after its NUL.
    let Some((jail, ldso)) = glibc_jail() else { return };
    let fd = fdnum(&ldso);
    let cases = [
        ("ld", "ld"),
        ("/ld", "ld"),
        ("a/b", "b"),
        ("a//b", "b"),
        ("x/.hidden", ".hidden"),
        ("./.", "."),
        ("/1234567/89abcdef", "89abcdef"),
        ("0123456789abcdef/x", "x"),
        ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "ld-linux-x86-64"),
        ("abcdefg/", "abcdefg"),
        ("/some/where/", "where"),
        ("/", "/"),
        ("", ""),
    ];
    for pad in 0..8 {
        for (arg0, comm) in cases {
            let mut cmd = jail.command(&["/chainloader", &fd, arg0, "/bin/probe", "comm"], &[&ldso]);
            cmd.env("PAD", "p".repeat(pad)).arg0("/");
            let run: Run = output(&mut cmd).expect("spawn in jail").into();
            assert_eq!(
                run.ok().stdout,
                format!("comm={comm}\n"),
                "ARG0 {arg0:?}, padding {pad}"
            );
        }
    }
}

#[test]
fn musl_heap_works_through_the_chainloader() {
    let (Some(mprobe), Some(musl)) = (musl_probe(), musl_ldso()) else {
        return;
    };
    let jail = Jail::new();
    jail.add(&mprobe, "/bin/mprobe");
    let ldso = open(&musl);
    let fd = fdnum(&ldso);
    let run = jail
        .run(&["/chainloader", &fd, "ld", "/bin/mprobe", "brk"], &[&ldso])
        .ok();
    // brk works (the probe grows it by 4 MiB and writes it), the heap is
    // above the bss, and the [heap] lines are what the kernel gives musl's
    // ld.so run directly (musl's allocator splits the brk area itself: two).
    let direct: Run = std::process::Command::new(&musl)
        .arg(&mprobe)
        .arg("brk")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .into();
    assert_eq!(
        run.stdout,
        direct.ok().stdout,
        "brk through the chainloader vs the kernel"
    );
    assert!(run.stdout.ends_with("\nbss_below_brk=0\n"), "{run:#?}");
    let run = jail
        .run(&["/chainloader", &fd, "ld", "/bin/mprobe", "maps"], &[&ldso])
        .ok();
    assert_eq!(run.stdout, "stack=rw-p\n");
}

#[test]
fn bash_c_works() {
    if !require("bash", "the bash -c test") {
        return;
    }
    let bash = fs::canonicalize(which("bash")).unwrap();
    let jail = Jail::new();
    jail.add_glibc_program(&bash, "/bin/bash");
    jail.assert_no_ldso();
    let ldso = open(&glibc_ldso());
    let fd = fdnum(&ldso);
    let run = jail
        .run(
            &[
                "/chainloader",
                &fd,
                "bash",
                "/bin/bash",
                "-c",
                "echo $((6 * 7)) \"$0\" \"$1\"",
                "zero",
                "one",
            ],
            &[&ldso],
        )
        .ok();
    assert_eq!(run.stdout, "42 zero one\n");
}

fn which(tool: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap()
}

#[test]
fn one_open_file_serves_many_execs_and_its_offset_is_untouched() {
    let Some((jail, ldso)) = glibc_jail() else { return };
    let mut ldso = ldso;
    // A shared file offset somewhere odd: a loader that read() at the
    // current offset would fail, one that moved it would be caught below.
    ldso.seek(SeekFrom::Start(1234)).unwrap();
    let fd = fdnum(&ldso);
    for i in 0..5 {
        let n = i.to_string();
        let run = jail
            .run(&["/chainloader", &fd, "ld.so", "/bin/probe", "args", &n], &[&ldso])
            .ok();
        assert!(run.stdout.ends_with(&format!("argv[2]={n}\n")), "{run:#?}");
    }
    assert_eq!(ldso.stream_position().unwrap(), 1234);
}

#[test]
fn no_mapping_is_ever_writable_and_executable() {
    if !require("strace", "watching the loader's mmap and mprotect calls") {
        return;
    }
    let Some(probe) = glibc_probe() else { return };
    let ldso = glibc_ldso();
    let ld = open(&ldso);
    let fd = fdnum(&ld);
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=mmap,mprotect", "--"])
        .arg(host_chainloader())
        .args([fd.as_str(), "ld.so"])
        .arg(&probe)
        .arg("maps");
    let run = run_with_fds(&mut cmd, &[&ld]);
    let run = run.ok();
    assert_eq!(run.stdout, "stack=rw-p\n");
    let calls: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("mmap(") || l.starts_with("mprotect("))
        .collect();
    assert!(calls.len() >= 4, "{}", run.stderr);
    for call in calls {
        assert!(
            !(call.contains("PROT_WRITE") && call.contains("PROT_EXEC")),
            "W+X mapping: {call}"
        );
    }
}

#[test]
fn image_mappings_have_segment_protections_and_inaccessible_gaps() {
    // 2 MiB-aligned segments: gaps between them, and a load address that
    // must honour p_align.
    let Some(program) = compile(
        "probe-static-pie-2m",
        "gcc",
        &["-static-pie", "-Wl,-z,max-page-size=0x200000", "-Wl,-z,separate-code"],
        "probe.c",
    ) else {
        return;
    };
    let image = open(&program);
    let fd = fdnum(&image);
    let run = run_chainloader(&[&fd, "probe", "mapsall"], &[&image]).ok();
    let name = program.to_string_lossy().into_owned();
    let lines: Vec<&str> = run.stdout.lines().filter(|l| l.ends_with(&name)).collect();
    assert!(lines.len() >= 3, "{}", run.stdout);
    let first = u64::from_str_radix(lines[0].split('-').next().unwrap(), 16).unwrap();
    assert_eq!(first % 0x200000, 0, "load address honours p_align: {}", lines[0]);
    for line in run.stdout.lines() {
        let perms = line.split_whitespace().nth(1).unwrap();
        assert!(!(perms.contains('w') && perms.contains('x')), "W+X: {line}");
    }
    // Between the image's first and last mapping, every page is either one
    // of its segments or an inaccessible (---p) reservation.
    let last_end = u64::from_str_radix(lines.last().unwrap().split(['-', ' ']).nth(1).unwrap(), 16).unwrap();
    for line in run.stdout.lines() {
        let mut it = line.split(['-', ' ']);
        let (lo, hi) = (
            u64::from_str_radix(it.next().unwrap(), 16).unwrap(),
            u64::from_str_radix(it.next().unwrap(), 16).unwrap(),
        );
        if lo >= first && hi <= last_end && !line.ends_with(&name) {
            let perms = line.split_whitespace().nth(1).unwrap();
            // bss beyond the file is anonymous and writable; anything else
            // inside the span must be a PROT_NONE gap.
            assert!(perms == "---p" || perms == "rw-p", "accessible gap: {line}");
        }
    }
}

// ---------------------------------------------------------------------------
// Bad input: each must exit 127 with one line `chainloader: <what>: <why>`.

#[track_caller]
fn assert_refused(run: &Run, want: &str) {
    assert_eq!((run.code, run.signal), (Some(127), None), "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {run:#?}");
    assert!(lines[0].starts_with("chainloader: "), "{run:#?}");
    assert!(lines[0].contains(want), "want {want:?}: {run:#?}");
}

#[test]
fn usage_and_bad_fd_arguments() {
    let run = run_chainloader(&[], &[]);
    assert_eq!((run.code, run.signal), (Some(127), None));
    assert!(run.stderr.starts_with("usage: chainloader FD ARG0"), "{run:#?}");
    let run = run_chainloader(&["3"], &[]);
    assert!(run.stderr.starts_with("usage: chainloader FD ARG0"), "{run:#?}");
    assert_eq!(run.code, Some(127));
    assert_refused(
        &run_chainloader(&["abc", "x"], &[]),
        "chainloader: FD 'abc': not a file descriptor number",
    );
    assert_refused(
        &run_chainloader(&["-1", "x"], &[]),
        "FD '-1': not a file descriptor number",
    );
    assert_refused(&run_chainloader(&["", "x"], &[]), "FD '': not a file descriptor number");
    assert_refused(
        &run_chainloader(&["99999999999", "x"], &[]),
        "FD '99999999999': file descriptor number out of range",
    );
    assert_refused(&run_chainloader(&["77", "x"], &[]), "fd 77: cannot read: EBADF");
}

#[test]
fn non_images_are_refused() {
    let dir = File::open("/").unwrap();
    assert_refused(&run_chainloader(&[&fdnum(&dir), "x"], &[&dir]), "is a directory");
    let zero = File::open("/dev/zero").unwrap();
    assert_refused(&run_chainloader(&[&fdnum(&zero), "x"], &[&zero]), "not an ELF file");
    let (_t, empty) = temp_image(b"");
    assert_refused(&run_chainloader(&[&fdnum(&empty), "x"], &[&empty]), "image: empty file");
    let (_t, text) = temp_image(b"#!/bin/sh\necho hi\n");
    assert_refused(
        &run_chainloader(&[&fdnum(&text), "x"], &[&text]),
        "ELF header: not an ELF file",
    );
    // A dynamic *program* must go through its ld.so.
    let Some(probe) = glibc_probe() else { return };
    let prog = open(&probe);
    assert_refused(
        &run_chainloader(&[&fdnum(&prog), "x"], &[&prog]),
        "PT_INTERP: a dynamic program must be run through its ld.so",
    );
}

/// Read/write little-endian fields of an ELF64 image.
struct Elf(Vec<u8>);

impl Elf {
    fn u16(&self, off: usize) -> u16 {
        le_get(&self.0, off, 2) as u16
    }
    fn u64(&self, off: usize) -> u64 {
        le_get(&self.0, off, 8)
    }
    fn set16(&mut self, off: usize, v: u16) {
        le_set(&mut self.0, off, 2, v.into())
    }
    fn set32(&mut self, off: usize, v: u32) {
        le_set(&mut self.0, off, 4, v.into())
    }
    fn set64(&mut self, off: usize, v: u64) {
        le_set(&mut self.0, off, 8, v)
    }
    /// Offset of program header `i`.
    fn ph(&self, i: usize) -> usize {
        self.u64(32) as usize + i * 56
    }
    /// Indices of the PT_LOAD headers.
    fn loads(&self) -> Vec<usize> {
        (0..self.u16(56) as usize)
            .filter(|&i| self.u16(self.ph(i)) == 1)
            .collect()
    }
}

#[test]
fn every_malformed_header_is_refused_with_its_reason() {
    let Some(static_probe) = compile("probe-static", "gcc", &["-static"], "probe.c") else {
        return;
    };
    let ldso = fs::read(glibc_ldso()).unwrap();
    let exe = fs::read(&static_probe).unwrap();
    type Mutation = fn(&mut Elf);
    let cases: Vec<(&str, &[u8], Mutation, &str)> = vec![
        (
            "bad magic",
            &ldso,
            |e| e.0[1] = b'X',
            "ELF header: not an ELF file (bad magic)",
        ),
        (
            "32-bit class",
            &ldso,
            |e| e.0[4] = 1,
            "ELF header: 32-bit image, 64-bit loader",
        ),
        ("invalid class", &ldso, |e| e.0[4] = 7, "ELF header: invalid ELF class"),
        ("big-endian", &ldso, |e| e.0[5] = 2, "ELF header: big-endian image"),
        ("invalid data", &ldso, |e| e.0[5] = 0, "ELF header: invalid byte order"),
        (
            "ET_REL",
            &ldso,
            |e| e.set16(16, 1),
            "ELF header: relocatable object (ET_REL)",
        ),
        ("ET_CORE", &ldso, |e| e.set16(16, 4), "ELF header: core dump (ET_CORE)"),
        (
            "aarch64 machine",
            &ldso,
            |e| e.set16(18, 183),
            "ELF header: wrong machine",
        ),
        ("i386 machine", &exe, |e| e.set16(18, 3), "ELF header: wrong machine"),
        (
            "e_phentsize",
            &ldso,
            |e| e.set16(54, 32),
            "ELF header: wrong e_phentsize",
        ),
        ("no phdrs", &ldso, |e| e.set16(56, 0), "ELF header: no program headers"),
        (
            "too many phdrs",
            &ldso,
            |e| e.set16(56, 2000),
            "ELF header: too many program headers",
        ),
        (
            "phdrs outside",
            &ldso,
            |e| {
                let n = e.0.len() as u64;
                e.set64(32, n - 100)
            },
            "ELF header: program headers outside the file",
        ),
        (
            "phoff overflow",
            &ldso,
            |e| e.set64(32, u64::MAX - 8),
            "ELF header: program headers outside the file",
        ),
        (
            "p_filesz > p_memsz",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[3]);
                let m = e.u64(p + 40);
                e.set64(p + 32, m + 1)
            },
            "p_filesz > p_memsz",
        ),
        (
            "misaligned",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[3]);
                let o = e.u64(p + 8);
                e.set64(p + 8, o + 8)
            },
            "p_offset and p_vaddr differ modulo the page size",
        ),
        // Past the end of the file: found by the final one-byte probe (no
        // bss) or by the short read of the last page (bss).
        (
            "past EOF",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[3]);
                e.set64(p + 32, 0x100_0000);
                e.set64(p + 40, 0x100_0000)
            },
            "image: segment extends past end of file",
        ),
        (
            "past EOF, bss",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[3]);
                e.set64(p + 32, 0x10_0110);
                e.set64(p + 40, 0x20_0000)
            },
            "program header 3: segment extends past end of file",
        ),
        (
            "offset overflow",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[3]);
                e.set64(p + 8, u64::MAX - 0xfff + 0x900)
            },
            "p_offset + p_filesz overflows",
        ),
        (
            "vaddr overflow",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[3]);
                e.set64(p + 40, u64::MAX - 0x1000)
            },
            "segment overflows the address space",
        ),
        (
            "overlap",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[2]);
                e.set64(p + 16, 0x1000);
                e.set64(p + 8, 0x1000)
            },
            "segments overlap or are out of order",
        ),
        (
            "W+X",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[3]);
                e.set32(p + 4, 7)
            },
            "segment is writable and executable",
        ),
        (
            "no PT_LOAD",
            &ldso,
            |e| {
                for i in e.loads() {
                    let p = e.ph(i);
                    e.set32(p, 0x6fff_0000)
                }
            },
            "image: no PT_LOAD segment",
        ),
        (
            "PT_INTERP added",
            &ldso,
            |e| {
                let p = e.ph(e.loads()[0]);
                e.set32(p, 3)
            },
            "PT_INTERP",
        ),
        (
            "ET_EXEC at 0",
            &exe,
            |e| {
                for i in e.loads() {
                    let p = e.ph(i);
                    let v = e.u64(p + 16);
                    e.set64(p + 16, v - 0x400000)
                }
            },
            "ET_EXEC image at address 0",
        ),
        (
            "entry outside",
            &ldso,
            |e| e.set64(24, 0x31950),
            "entry point not in an executable segment",
        ),
    ];
    for (name, base, mutate, want) in &cases {
        let mut elf = Elf(base.to_vec());
        mutate(&mut elf);
        let (_t, f) = temp_image(&elf.0);
        let run = run_chainloader(&[&fdnum(&f), "x", "arg"], &[&f]);
        assert_eq!((run.code, run.signal), (Some(127), None), "{name}: {run:#?}");
        assert!(
            run.stderr.starts_with("chainloader: ") && run.stderr.contains(want) && run.stderr.lines().count() == 1,
            "{name}: want {want:?}, got {run:#?}"
        );
    }
    // Truncations at every header boundary: each refused with its reason,
    // in one line.
    for (len, want) in [
        (1, "ELF header: not an ELF file (bad magic)"),
        (4, "ELF header: truncated"),
        (5, "ELF header: truncated"),
        (6, "ELF header: truncated"),
        (16, "ELF header: truncated"),
        (40, "ELF header: truncated"),
        (63, "ELF header: truncated"),
        (64, "ELF header: program headers outside the file"),
        (64 + 56, "ELF header: program headers outside the file"),
        (64 + 56 * 4, "ELF header: program headers outside the file"),
        (0x1000, "program header 3: segment extends past end of file"),
        (0x20000, "program header 3: segment extends past end of file"),
    ] {
        let (_t, f) = temp_image(&ldso[..len]);
        let run = run_chainloader(&[&fdnum(&f), "x"], &[&f]);
        assert_eq!(
            run.stderr,
            format!("chainloader: {want}\n"),
            "truncated at {len}: {run:#?}"
        );
        assert_eq!(
            (run.code, run.signal),
            (Some(127), None),
            "truncated at {len}: {run:#?}"
        );
        assert!(run.stdout.is_empty(), "truncated at {len}: {run:#?}");
    }
}

#[test]
fn et_exec_over_an_existing_mapping_is_refused() {
    if !require("setarch", "disabling ASLR to place a mapping deterministically") {
        return;
    }
    let Some(static_probe) = compile("probe-static", "gcc", &["-static"], "probe.c") else {
        return;
    };
    // With ASLR off, find where the chainloader itself is mapped ...
    let image = open(&static_probe);
    let cl = host_chainloader();
    let mut cmd = std::process::Command::new("setarch");
    cmd.args(["x86_64", "-R"])
        .arg(&cl)
        .args([fdnum(&image).as_str(), "probe", "mapsall"]);
    let run = run_with_fds(&mut cmd, &[&image]);
    let run = run.ok();
    let cl_name = cl.to_string_lossy().into_owned();
    let line = run
        .stdout
        .lines()
        .find(|l| l.ends_with(&cl_name))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let taken = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
    // ... and move a fixed-address program so that the last page of its
    // span is the chainloader's first page (it sits near the top of the
    // address space, so the program must end there, not start there).
    let mut elf = Elf(fs::read(&static_probe).unwrap());
    let loads = elf.loads();
    let last = elf.ph(*loads.last().unwrap());
    let hi = (elf.u64(last + 16) + elf.u64(last + 40) + 0xfff) & !0xfff;
    let delta = taken + 0x1000 - hi;
    assert_eq!(delta % 0x1000, 0);
    for i in loads {
        let p = elf.ph(i);
        let v = elf.u64(p + 16);
        elf.set64(p + 16, v + delta);
    }
    let entry = elf.u64(24);
    elf.set64(24, entry + delta);
    let (_t, f) = temp_image(&elf.0);
    let mut cmd = std::process::Command::new("setarch");
    cmd.args(["x86_64", "-R"])
        .arg(&cl)
        .args([fdnum(&f).as_str(), "probe", "args"]);
    let run = run_with_fds(&mut cmd, &[&f]);
    assert_refused(&run, "image: ET_EXEC addresses already in use");
}

#[test]
fn large_program_header_tables_are_read_beyond_the_first_kilobyte() {
    // Move the program header table of a static program to the end of the
    // file, past any fixed buffer, and pad it with PT_NULL entries up to
    // 1000 headers (56,000 bytes, under the kernel's 64 KiB limit). The
    // first PT_LOAD maps the file from offset 0, so we also grow it to
    // cover the table: then AT_PHDR points at mapped memory.
    let Some(static_pie) = compile("probe-static-pie", "gcc", &["-static-pie"], "probe.c") else {
        return;
    };
    let mut elf = Elf(fs::read(&static_pie).unwrap());
    let phnum = elf.u16(56) as usize;
    let old = elf.u64(32) as usize;
    let table: Vec<u8> = elf.0[old..old + phnum * 56].to_vec();
    // Pad the file to a page boundary, then append the table.
    while elf.0.len() % 4096 != 0 {
        elf.0.push(0);
    }
    let new_off = elf.0.len();
    elf.0.extend_from_slice(&table);
    elf.0.resize(new_off + 1000 * 56, 0);
    elf.set64(32, new_off as u64);
    elf.set16(56, 1000);
    // A PT_PHDR entry says where the table is in memory; make it a PT_NULL
    // so the loader finds the table through a PT_LOAD instead.
    for i in 0..phnum {
        let p = elf.ph(i);
        if elf.u16(p) == 6 {
            elf.set32(p, 0);
        }
    }
    let (_t, f) = temp_image(&elf.0);
    let run = run_chainloader(&[&fdnum(&f), "x"], &[&f]);
    // The table is not inside any PT_LOAD's file data: refused cleanly,
    // which proves the whole 56 KB table was read and checked.
    assert_refused(&run, "program headers not in a PT_LOAD");
}

#[test]
fn dynamic_linker_run_directly_sees_no_difference_from_the_kernel() {
    // glibc's ld.so lists what it would load: same output either way.
    let Some(probe) = glibc_probe() else { return };
    let direct = std::process::Command::new(glibc_ldso())
        .arg("--list")
        .arg(&probe)
        .output()
        .unwrap();
    assert!(direct.status.success());
    let ld = open(&glibc_ldso());
    let ldso_path = glibc_ldso();
    let run = run_chainloader(
        &[
            &fdnum(&ld),
            ldso_path.to_str().unwrap(),
            "--list",
            probe.to_str().unwrap(),
        ],
        &[&ld],
    )
    .ok();
    let strip = |s: &str| {
        s.lines()
            .map(|l| l.split(" (0x").next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&run.stdout), strip(&String::from_utf8_lossy(&direct.stdout)));
    // The one difference README names: the program's /proc/self/exe is the
    // chainloader (the kernel exec'd it), where a kernel run shows ld.so.
    let exe = |run: Run| run.ok().stdout;
    let direct: Run = std::process::Command::new(&ldso_path)
        .args([probe.to_str().unwrap(), "exe"])
        .output()
        .unwrap()
        .into();
    assert_eq!(exe(direct), format!("exe={}\n", ldso_path.display()));
    let through = run_chainloader(&[&fdnum(&ld), "ld.so", probe.to_str().unwrap(), "exe"], &[&ld]);
    assert_eq!(exe(through), format!("exe={}\n", host_chainloader().display()));
}

// ---------------------------------------------------------------------------
// The auxiliary vector the loaded image sees: what the kernel gives a program
// it runs directly (DESIGN step 8: AT_PHDR, AT_PHENT, AT_PHNUM, AT_ENTRY
// describe the image, AT_BASE is 0).

/// `loader ARGS...` run by the kernel directly, and through the chainloader
/// from a descriptor open on `loader`.
fn auxv_both_ways(loader: &Path, args: &[&str]) -> (Run, Run) {
    let direct: Run = std::process::Command::new(loader)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .into();
    let image = open(loader);
    let fd = fdnum(&image);
    let mut argv = vec![fd.as_str(), "loaded"];
    argv.extend_from_slice(args);
    (direct.ok(), run_chainloader(&argv, &[&image]).ok())
}

#[test]
fn static_programs_see_the_auxv_the_kernel_would_give_them() {
    let programs = [
        compile("probe-static", "gcc", &["-static"], "probe.c"),
        compile("probe-static-pie", "gcc", &["-static-pie"], "probe.c"),
        compile("probe-musl-static", "musl-gcc", &["-static"], "probe.c"),
    ];
    for program in programs.into_iter().flatten() {
        let (direct, through) = auxv_both_ways(&program, &["auxv"]);
        // The probe reports AT_PHDR/AT_PHNUM/AT_ENTRY as "own" when they
        // describe its own image (linker symbols __ehdr_start, _start).
        assert_eq!(
            direct.stdout,
            "AT_BASE=0\nAT_PHDR=own\nAT_PHENT=56\nAT_PHNUM=own\nAT_ENTRY=own\n",
            "{}: the kernel's own run",
            program.display()
        );
        assert_eq!(
            through.stdout,
            direct.stdout,
            "{}: auxv through the chainloader differs from the kernel's",
            program.display()
        );
    }
}

#[test]
fn dynamic_linkers_see_the_auxv_the_kernel_would_give_them() {
    // glibc: LD_SHOW_AUXV prints the auxv ld.so was started with.
    let Some(probe) = glibc_probe() else { return };
    let probe = probe.to_str().unwrap();
    let show = |run: &Run| -> std::collections::BTreeMap<String, String> {
        run.stdout
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect()
    };
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    let ldso = glibc_ldso();
    let direct: Run = std::process::Command::new(&ldso)
        .args([probe, "args"])
        .env("LD_SHOW_AUXV", "1")
        .output()
        .unwrap()
        .into();
    let image = open(&ldso);
    let through = run_with_fds(
        std::process::Command::new(host_chainloader())
            .args([fdnum(&image).as_str(), "ld.so", probe, "args"])
            .env("LD_SHOW_AUXV", "1"),
        &[&image],
    );
    let (direct, through) = (show(&direct.ok()), show(&through.ok()));
    for key in ["AT_BASE", "AT_PHENT", "AT_PHNUM"] {
        assert!(
            direct.contains_key(key),
            "{key} missing from the kernel's run: {direct:#?}"
        );
        assert_eq!(through.get(key), direct.get(key), "{key} through the chainloader");
    }
    assert_eq!(direct["AT_BASE"], "0x0");
    // The image is mapped elsewhere, but AT_ENTRY and AT_PHDR point into it
    // at the same distance.
    let delta = |m: &std::collections::BTreeMap<String, String>| hex(&m["AT_ENTRY"]).wrapping_sub(hex(&m["AT_PHDR"]));
    assert_eq!(delta(&through), delta(&direct), "AT_ENTRY - AT_PHDR: {through:#?}");

    // What the program itself then sees (after ld.so), glibc and musl.
    let (direct, through) = auxv_both_ways(&ldso, &[probe, "auxv"]);
    assert!(direct.stdout.starts_with("AT_BASE=0\n"), "{direct:#?}");
    assert_eq!(
        through.stdout, direct.stdout,
        "glibc program's auxv through the chainloader"
    );
    let (Some(mprobe), Some(musl)) = (musl_probe(), musl_ldso()) else {
        return;
    };
    let (direct, through) = auxv_both_ways(&musl, &[mprobe.to_str().unwrap(), "auxv"]);
    assert!(direct.stdout.starts_with("AT_BASE=0\n"), "{direct:#?}");
    assert_eq!(
        through.stdout, direct.stdout,
        "musl program's auxv through the chainloader"
    );
}

/// `/proc/PID/maps` as (start, end, perms, rest of the line).
fn parse_maps(maps: &str) -> Vec<(u64, u64, String, String)> {
    maps.lines()
        .map(|line| {
            let mut f = line.splitn(3, ' ');
            let range = f.next().unwrap();
            let perms = f.next().unwrap().to_owned();
            let (lo, hi) = range.split_once('-').unwrap();
            (
                u64::from_str_radix(lo, 16).unwrap(),
                u64::from_str_radix(hi, 16).unwrap(),
                perms,
                f.next().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn page_aligned_gaps_between_segments_are_inaccessible() {
    // A static PIE linked for 2 MiB pages has gaps of many pages between its
    // PT_LOADs. With p_align set back to 4 KiB (the file offsets and
    // addresses still agree modulo the page size) the loader claims the span
    // with the first segment's file mapping, as for glibc's ld.so, so every
    // gap is first mapped from the file, readable: it must end up ---p.
    let Some(program) = compile(
        "probe-static-pie-2m",
        "gcc",
        &["-static-pie", "-Wl,-z,max-page-size=0x200000", "-Wl,-z,separate-code"],
        "probe.c",
    ) else {
        return;
    };
    let mut elf = Elf(fs::read(&program).unwrap());
    let mut segments = vec![]; // (page-aligned start, page-aligned end, "rwx")
                               // The program makes its PT_GNU_RELRO pages read-only itself.
    let relro = (0..elf.u16(56) as usize)
        .map(|i| elf.ph(i))
        .find(|&p| le_get(&elf.0, p, 4) == 0x6474_e552)
        .map(|p| (elf.u64(p + 16) & !0xfff, (elf.u64(p + 16) + elf.u64(p + 40)) & !0xfff))
        .unwrap_or((0, 0));
    for i in elf.loads() {
        let p = elf.ph(i);
        elf.set64(p + 48, 0x1000);
        let (vaddr, memsz, flags) = (elf.u64(p + 16), elf.u64(p + 40), le_get(&elf.0, p + 4, 4));
        let perms: String = [(4, 'r'), (2, 'w'), (1, 'x')]
            .iter()
            .map(|&(bit, c)| if flags & bit != 0 { c } else { '-' })
            .collect();
        segments.push((vaddr & !0xfff, (vaddr + memsz + 0xfff) & !0xfff, perms));
    }
    let gaps: Vec<(u64, u64)> = segments
        .windows(2)
        .filter(|w| w[1].0 > w[0].1)
        .map(|w| (w[0].1, w[1].0))
        .collect();
    assert!(!gaps.is_empty(), "no page-aligned gap in {segments:x?}");
    let (t, f) = temp_image(&elf.0);
    let run = run_chainloader(&[&fdnum(&f), "probe", "mapsall"], &[&f]).ok();
    let maps = parse_maps(&run.stdout);
    let name = t.path().to_string_lossy().into_owned();
    // The first segment starts at offset 0 of the file: its first mapping is
    // the load address.
    let base = maps
        .iter()
        .find(|m| m.3.ends_with(&name))
        .unwrap_or_else(|| panic!("the image is not mapped: {}", run.stdout))
        .0
        - segments[0].0;
    // Every page of the span is covered, by its segment's protection or, in
    // a gap, by none at all.
    let perms_at = |addr: u64| -> &str {
        maps.iter()
            .find(|m| m.0 <= addr && addr < m.1)
            .map(|m| m.2.as_str())
            .unwrap_or_else(|| panic!("{addr:#x} is not mapped (a hole in the image): {}", run.stdout))
    };
    for (lo, hi, perms) in &segments {
        for page in (lo + base..hi + base).step_by(0x1000) {
            let want = if (relro.0..relro.1).contains(&(page - base)) {
                "r--"
            } else {
                perms
            };
            assert_eq!(&perms_at(page)[..3], want, "segment page {page:#x}: {}", run.stdout);
        }
    }
    for (lo, hi) in &gaps {
        for page in (lo + base..hi + base).step_by(0x1000) {
            assert_eq!(
                perms_at(page),
                "---p",
                "gap page {page:#x} is accessible: {}",
                run.stdout
            );
        }
    }
}
