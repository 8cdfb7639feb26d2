//! A hostile-ELF corpus for the real chainloader, with the kernel as the
//! oracle. From a real ld.so and a real static program, a generator derives
//! malformed images: every field of the ELF header and of each program
//! header pushed to its edge values, truncations at every header boundary,
//! overlapping and wrapping segments, huge p_memsz, program headers beyond
//! the file, PT_INTERP added, PT_LOAD removed.
//!
//! Each image is run twice: exec'd by the kernel, and loaded by the
//! chainloader. The chainloader must end with exit status 127 and one
//! `chainloader: ...` line, or — when the kernel runs the image fine — run it
//! with the same result. It must never die by a signal where the kernel's
//! run did not (an image that crashes under the kernel may crash through us,
//! perhaps with another signal, since the address-space layout differs), and
//! never hang.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

#[derive(Clone, Copy, Debug)]
enum Class {
    C32,
    C64,
}

/// Field layout of the ELF header and a program header for one class:
/// (name, offset, width).
fn ehdr_fields(c: Class) -> Vec<(&'static str, usize, usize)> {
    match c {
        Class::C64 => vec![
            ("ei_class", 4, 1),
            ("ei_data", 5, 1),
            ("ei_version", 6, 1),
            ("ei_osabi", 7, 1),
            ("ei_pad", 9, 1),
            ("e_type", 16, 2),
            ("e_machine", 18, 2),
            ("e_version", 20, 4),
            ("e_entry", 24, 8),
            ("e_phoff", 32, 8),
            ("e_shoff", 40, 8),
            ("e_flags", 48, 4),
            ("e_ehsize", 52, 2),
            ("e_phentsize", 54, 2),
            ("e_phnum", 56, 2),
            ("e_shentsize", 58, 2),
            ("e_shnum", 60, 2),
            ("e_shstrndx", 62, 2),
        ],
        Class::C32 => vec![
            ("ei_class", 4, 1),
            ("ei_data", 5, 1),
            ("ei_version", 6, 1),
            ("ei_osabi", 7, 1),
            ("ei_pad", 9, 1),
            ("e_type", 16, 2),
            ("e_machine", 18, 2),
            ("e_version", 20, 4),
            ("e_entry", 24, 4),
            ("e_phoff", 28, 4),
            ("e_shoff", 32, 4),
            ("e_flags", 36, 4),
            ("e_ehsize", 40, 2),
            ("e_phentsize", 42, 2),
            ("e_phnum", 44, 2),
            ("e_shentsize", 46, 2),
            ("e_shnum", 48, 2),
            ("e_shstrndx", 50, 2),
        ],
    }
}

fn phdr_fields(c: Class) -> Vec<(&'static str, usize, usize)> {
    match c {
        Class::C64 => vec![
            ("p_type", 0, 4),
            ("p_flags", 4, 4),
            ("p_offset", 8, 8),
            ("p_vaddr", 16, 8),
            ("p_paddr", 24, 8),
            ("p_filesz", 32, 8),
            ("p_memsz", 40, 8),
            ("p_align", 48, 8),
        ],
        Class::C32 => vec![
            ("p_type", 0, 4),
            ("p_offset", 4, 4),
            ("p_vaddr", 8, 4),
            ("p_paddr", 12, 4),
            ("p_filesz", 16, 4),
            ("p_memsz", 20, 4),
            ("p_flags", 24, 4),
            ("p_align", 28, 4),
        ],
    }
}

/// Edge values for a field of `w` bytes currently holding `cur`.
fn edges(w: usize, cur: u64) -> Vec<u64> {
    let max = if w == 8 { u64::MAX } else { (1u64 << (8 * w)) - 1 };
    let mut v = vec![
        0,
        1,
        max,
        max - 1,
        max >> 1,
        (max >> 1) + 1,
        cur.wrapping_add(1) & max,
        cur.wrapping_sub(1) & max,
    ];
    if w >= 4 {
        v.extend([0x1000, 0xfff, cur.wrapping_add(0x1000) & max, cur.wrapping_mul(2) & max]);
    }
    v.sort_unstable();
    v.dedup();
    v.retain(|&x| x != cur);
    v
}

/// Every mutant of `base`, named.
fn mutants(base: &[u8]) -> Vec<(String, Vec<u8>)> {
    let c = if base[4] == 2 { Class::C64 } else { Class::C32 };
    let (phoff, phentsize, phnum) = match c {
        Class::C64 => (
            le_get(base, 32, 8) as usize,
            le_get(base, 54, 2) as usize,
            le_get(base, 56, 2) as usize,
        ),
        Class::C32 => (
            le_get(base, 28, 4) as usize,
            le_get(base, 42, 2) as usize,
            le_get(base, 44, 2) as usize,
        ),
    };
    let mut out = Vec::new();
    for (name, off, w) in ehdr_fields(c) {
        let cur = le_get(base, off, w);
        for v in edges(w, cur) {
            let mut b = base.to_vec();
            le_set(&mut b, off, w, v);
            out.push((format!("{name}={v:#x}"), b));
        }
    }
    let loads: Vec<usize> = (0..phnum)
        .filter(|&i| le_get(base, phoff + i * phentsize, 4) == 1)
        .collect();
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        for (name, off, w) in phdr_fields(c) {
            let cur = le_get(base, p + off, w);
            for v in edges(w, cur) {
                let mut b = base.to_vec();
                le_set(&mut b, p + off, w, v);
                out.push((format!("phdr[{i}].{name}={v:#x}"), b));
            }
        }
    }
    // Truncations at every header boundary.
    let mut cuts = vec![0, 1, 4, 5, 6, 16, 18, 20, 24, 40, 52, 63, 64, phoff];
    for i in 0..=phnum {
        cuts.extend([phoff + i * phentsize, (phoff + i * phentsize).saturating_sub(1)]);
    }
    for &i in &loads {
        let p = phoff + i * phentsize;
        let (o, f) = match c {
            Class::C64 => (le_get(base, p + 8, 8) as usize, le_get(base, p + 32, 8) as usize),
            Class::C32 => (le_get(base, p + 4, 4) as usize, le_get(base, p + 16, 4) as usize),
        };
        cuts.extend([o, o + f / 2, (o + f).saturating_sub(1)]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts.into_iter().filter(|&n| n < base.len()) {
        out.push((format!("truncated at {cut}"), base[..cut].to_vec()));
    }
    // Structural ones.
    let (vo, fo, mo, w) = match c {
        Class::C64 => (16, 32, 40, 8),
        Class::C32 => (8, 16, 20, 4),
    };
    if loads.len() >= 2 {
        let (a, z) = (phoff + loads[0] * phentsize, phoff + loads[loads.len() - 1] * phentsize);
        let mut b = base.to_vec();
        let v = le_get(&b, a + vo, w);
        le_set(&mut b, z + vo, w, v);
        out.push(("last PT_LOAD overlaps the first".into(), b));
        let mut b = base.to_vec();
        le_set(&mut b, z + mo, w, if w == 8 { u64::MAX - 0x10 } else { 0xffff_fff0 });
        out.push(("last PT_LOAD wraps the address space".into(), b));
        let mut b = base.to_vec();
        le_set(&mut b, z + mo, w, 1 << (if w == 8 { 46 } else { 31 }));
        out.push(("huge p_memsz".into(), b));
        let mut b = base.to_vec();
        let f = le_get(&b, z + fo, w);
        le_set(&mut b, z + fo, w, f + (1 << 20));
        le_set(&mut b, z + mo, w, f + (2 << 20));
        out.push(("segment data past the end of the file".into(), b));
        let mut b = base.to_vec();
        le_set(&mut b, a, 4, 3);
        out.push(("PT_INTERP added".into(), b));
        let mut b = base.to_vec();
        for &i in &loads {
            le_set(&mut b, phoff + i * phentsize, 4, 0);
        }
        out.push(("PT_LOAD removed".into(), b));
    }
    let mut b = base.to_vec();
    let phoff_field = match c {
        Class::C64 => (32, 8),
        Class::C32 => (28, 4),
    };
    le_set(&mut b, phoff_field.0, phoff_field.1, (base.len() - 8) as u64);
    out.push(("program headers beyond the file".into(), b));
    out
}

struct Outcome {
    /// The exec itself failed with this errno (the kernel refused the image).
    refused: Option<i32>,
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    hung: bool,
}

fn run_bounded(cmd: &mut Command) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let nothing = Outcome {
        refused: None,
        code: None,
        signal: None,
        stdout: String::new(),
        stderr: String::new(),
        hung: false,
    };
    match output_within(cmd.stdin(Stdio::null()), Duration::from_secs(10)) {
        Err(e) => Outcome {
            refused: Some(e.raw_os_error().unwrap_or(-1)),
            ..nothing
        },
        Ok(None) => Outcome { hung: true, ..nothing },
        Ok(Some(out)) => Outcome {
            code: out.status.code(),
            signal: out.status.signal(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            ..nothing
        },
    }
}

/// Run every mutant of `base` both ways with `args` (after ARG0). Returns
/// how many were refused (127) and how many ran.
fn corpus(what: &str, base: &[u8], args: &[&str], chainloader: &std::path::Path) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut refused, mut ran) = (0, 0);
    let all = mutants(base);
    for (i, (name, bytes)) in all.iter().enumerate() {
        let path = dir.path().join(format!("m{i}"));
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let kernel = run_bounded(
            std::os::unix::process::CommandExt::arg0(&mut Command::new(&path), "image")
                .args(args)
                .env_clear(),
        );
        let f = open(&path);
        let mut cmd = Command::new(chainloader);
        cmd.arg(fdnum(&f)).arg("image").args(args).env_clear();
        let fds = vec![std::os::fd::AsRawFd::as_raw_fd(&f)];
        // SAFETY: fcntl is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                for &fd in &fds {
                    rustix::io::fcntl_setfd(std::os::fd::BorrowedFd::borrow_raw(fd), rustix::io::FdFlags::empty())?;
                }
                Ok(())
            });
        }
        let ours = run_bounded(&mut cmd);
        let ctx = || {
            format!(
                "{what} mutant {name}: kernel refused {:?} / exit {:?} / signal {:?}; chainloader exit {:?} / signal {:?}, stderr {:?}",
                kernel.refused, kernel.code, kernel.signal, ours.code, ours.signal, ours.stderr
            )
        };
        assert!(!ours.hung, "hang: {}", ctx());
        assert!(
            ours.signal.is_none() || kernel.refused.is_none(),
            "a signal where the kernel refuses: {}",
            ctx()
        );
        if ours.code == Some(127) && ours.stderr.starts_with("chainloader: ") {
            assert_eq!(ours.stderr.lines().count(), 1, "{}", ctx());
            refused += 1;
            continue;
        }
        // Loaded: at least as strict as the kernel, and whatever happened
        // next must be what happens under the kernel.
        assert!(
            kernel.refused.is_none(),
            "loaded an image the kernel refuses: {}",
            ctx()
        );
        ran += 1;
        assert!(kernel.code.is_some() || kernel.signal.is_some(), "{}", ctx());
        if ours.signal.is_some() {
            // The image itself is broken: it crashes under the kernel too
            // (the signal may differ, as the address-space layout does).
            assert!(
                kernel.signal.is_some(),
                "a signal where the kernel's run had none: {}",
                ctx()
            );
        } else {
            assert_eq!(ours.code, kernel.code, "{}", ctx());
            assert_eq!(ours.stdout, kernel.stdout, "{}", ctx());
        }
    }
    eprintln!(
        "{what}: {} mutants, {refused} refused with 127, {ran} ran as under the kernel",
        all.len()
    );
    assert!(all.len() >= 40);
    (refused, ran)
}

#[test]
fn hostile_images_derived_from_a_real_ld_so() {
    let ldso = fs::read(glibc_ldso()).unwrap();
    let (refused, ran) = corpus("ld.so", &ldso, &["--version"], &host_chainloader());
    assert!(refused > 100 && ran > 10, "refused {refused}, ran {ran}");
}

#[test]
fn hostile_images_derived_from_a_real_static_program() {
    let Some(probe) = compile("probe-static", "gcc", &["-static"], "probe.c") else {
        return;
    };
    let exe = fs::read(probe).unwrap();
    let (refused, ran) = corpus("static probe", &exe, &["args", "x"], &host_chainloader());
    assert!(refused > 100 && ran > 10, "refused {refused}, ran {ran}");
}

#[test]
fn hostile_images_derived_from_an_i386_static_program() {
    // The same corpus through the i386 chainloader (ELF32 fields, int $0x80,
    // mmap2), with the x86-64 kernel running the i386 images as the oracle.
    if !require("i686-linux-gnu-gcc-12", "building the i386 static program") {
        return;
    }
    let Some(cl) = host_chainloader_for("i386") else { return };
    let Some(probe) = compile("probe-i386-static", "i686-linux-gnu-gcc-12", &["-static"], "probe.c") else {
        return;
    };
    let exe = fs::read(probe).unwrap();
    let (refused, ran) = corpus("i386 static probe", &exe, &["args", "x"], &cl);
    assert!(refused > 50 && ran > 10, "refused {refused}, ran {ran}");
}

/// A minimal x86-64 `ET_EXEC` whose one PT_LOAD is R-X, 0x2000 bytes of file
/// and `memsz` of memory: the code at its entry calls exit(0).
fn rx_image_with_bss(memsz: u64) -> Vec<u8> {
    let vaddr = 0x10000u64;
    let mut b = vec![0u8; 0x2000];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4..7].copy_from_slice(&[2, 1, 1]);
    for (off, w, v) in [
        (16, 2, 2),           // ET_EXEC
        (18, 2, 62),          // EM_X86_64
        (20, 4, 1),           // EV_CURRENT
        (24, 8, vaddr + 120), // entry: just after the one program header
        (32, 8, 64),          // e_phoff
        (52, 2, 64),          // e_ehsize
        (54, 2, 56),          // e_phentsize
        (56, 2, 1),           // e_phnum
        (64, 4, 1),           // PT_LOAD
        (68, 4, 5),           // PF_R | PF_X
        (72, 8, 0),           // p_offset
        (80, 8, vaddr),       // p_vaddr
        (88, 8, vaddr),       // p_paddr
        (96, 8, 0x2000),      // p_filesz
        (104, 8, memsz),      // p_memsz
        (112, 8, 0x1000),     // p_align
    ] {
        le_set(&mut b, off, w, v);
    }
    // xor edi, edi; mov eax, 60; syscall
    b[120..129].copy_from_slice(&[0x31, 0xff, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]);
    b
}

/// The kernel maps bss like a writable private mapping, so it is accounted:
/// an R-X segment with terabytes of bss fails its exec (ENOMEM past the
/// point of no return: SIGSEGV) under the overcommit heuristic. The
/// chainloader must refuse it the same way (127, one line) — or, where the
/// kernel runs it (`vm.overcommit_memory = 1`), run it too.
#[test]
fn huge_bss_in_a_read_only_segment() {
    let dir = tempfile::tempdir().unwrap();
    // 64 GiB, 16 TiB, and the reported 0x7fff00000000 (128 TiB).
    for memsz in [0x10_0000_0000u64, 0x1000_0000_0000, 0x7fff_0000_0000] {
        let path = dir.path().join(format!("bss-{memsz:#x}"));
        fs::write(&path, rx_image_with_bss(memsz)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let kernel = run_bounded(&mut Command::new(&path));
        let f = open(&path);
        let ours = run_chainloader(&[&fdnum(&f), "image"], &[&f]);
        let ctx = format!(
            "memsz {memsz:#x}: kernel exit {:?} signal {:?}; chainloader exit {:?} signal {:?} stderr {:?}",
            kernel.code, kernel.signal, ours.code, ours.signal, ours.stderr
        );
        eprintln!("{ctx}");
        if kernel.code == Some(0) {
            assert_eq!(ours.code, Some(0), "{ctx}");
        } else {
            assert!(kernel.signal.is_some() || kernel.refused.is_some(), "{ctx}");
            assert_eq!(ours.code, Some(127), "{ctx}");
            assert!(
                ours.stderr.starts_with("chainloader: ") && ours.stderr.lines().count() == 1,
                "{ctx}"
            );
        }
    }
}
