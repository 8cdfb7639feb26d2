//! `cargo bench --bench exec`: wall-clock cost of one exec, side by side, in
//! one run. For each program: the kernel exec'ing it normally (1), exec of
//! ld.so with the program as its argument (2), `/chainloader FD ld.so
//! program` (3), `execveat` of the ld.so descriptor (4); for a static
//! program, normal exec (5a) against the chainloader loading it (5b).
//!
//! Every scenario spawns through the same fork + pre_exec + exec path, many
//! times per sample; several samples give a median and a spread. Figures are
//! printed as µs per exec and as ratios against (1) and (2) measured in the
//! same run; nothing is asserted (timings vary; the deterministic budgets
//! are in benches/budgets.toml, checked by benches/report.sh).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const SAMPLES: usize = 7;

fn iterations() -> usize {
    std::env::var("LDCHAIN_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// How one scenario execs.
enum How {
    Argv(Vec<String>),
    /// execveat(fd, "", argv, envp, AT_EMPTY_PATH).
    Execveat(RawFd, Vec<String>),
}

fn spawn_once(how: &How, keep: &[RawFd]) {
    let keep = keep.to_vec();
    let mut cmd = match how {
        How::Argv(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        How::Execveat(_, argv) => {
            let mut c = Command::new("/nonexistent");
            c.args(&argv[1..]);
            c
        }
    };
    cmd.env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let execveat = match how {
        How::Execveat(fd, argv) => {
            let args: Vec<CString> = argv.iter().map(|a| CString::new(a.as_str()).unwrap()).collect();
            Some((*fd, args))
        }
        How::Argv(_) => None,
    };
    // SAFETY: only fcntl and execveat run between fork and exec; the argv
    // array is built before the fork and only read after it.
    unsafe {
        let ptrs: Option<(RawFd, Vec<CString>, Vec<*const libc::c_char>)> = execveat.map(|(fd, args)| {
            let p: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).chain([std::ptr::null()]).collect();
            (fd, args, p)
        });
        struct Send<T>(T);
        unsafe impl<T> Sync for Send<T> {}
        unsafe impl<T> std::marker::Send for Send<T> {}
        let ptrs = Send(ptrs);
        cmd.pre_exec(move || {
            let ptrs = &ptrs;
            for &fd in &keep {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
            if let Some((fd, _args, p)) = &ptrs.0 {
                let env: [*const libc::c_char; 1] = [std::ptr::null()];
                libc::syscall(
                    libc::SYS_execveat,
                    *fd,
                    c"".as_ptr(),
                    p.as_ptr(),
                    env.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("spawn");
    assert!(status.success(), "a benchmark exec failed: {status:?}");
}

/// µs per exec: (median, min, max) over the samples.
fn measure(how: &How, keep: &[RawFd]) -> (f64, f64, f64) {
    let n = iterations();
    spawn_once(how, keep); // warm the page cache
    let mut v: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                spawn_once(how, keep);
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[SAMPLES / 2], v[0], v[SAMPLES - 1])
}

fn static_true(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("true.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let out = dir.join("static-true");
    let ok = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .map(|s| s.success());
    ok.unwrap_or(false).then_some(out)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    ldchain::embed::install(dir.path()).unwrap();
    let cl = dir.path().join("chainloader").to_string_lossy().into_owned();
    let ldso_path = "/lib64/ld-linux-x86-64.so.2";
    let ldso = File::open(ldso_path).expect("glibc's ld.so");
    let fd = ldso.as_raw_fd();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    println!("Wall clock per exec (fork + exec + exit + wait), median of {SAMPLES} samples of {} execs; spread is min-max.\n", iterations());
    println!("| program | scenario | µs per exec (spread) | vs (1) | vs (2) |");
    println!("|---|---|---|---|---|");
    for (label, prog) in [
        ("/bin/true", s(&["/bin/true"])),
        ("bash -c true", s(&["/bin/bash", "-c", "true"])),
    ] {
        let mut with_ldso = vec![ldso_path.to_string()];
        with_ldso.extend(prog.clone());
        let mut chained = vec![cl.clone(), fd.to_string()];
        chained.extend(with_ldso.clone());
        let rows = [
            ("(1) kernel execs the program", How::Argv(prog.clone()), vec![]),
            ("(2) exec ld.so PROGRAM", How::Argv(with_ldso.clone()), vec![]),
            ("(3) /chainloader FD ld.so PROGRAM", How::Argv(chained), vec![fd]),
            (
                "(4) execveat(ld.so fd) PROGRAM",
                How::Execveat(fd, with_ldso.clone()),
                vec![fd],
            ),
        ];
        let results: Vec<_> = rows
            .iter()
            .map(|(name, how, keep)| (name, measure(how, keep)))
            .collect();
        let (base1, base2) = (results[0].1 .0, results[1].1 .0);
        for (name, (med, lo, hi)) in results {
            println!(
                "| {label} | {name} | {med:.1} ({lo:.1}–{hi:.1}) | {:.2} | {:.2} |",
                med / base1,
                med / base2
            );
        }
    }
    match static_true(dir.path()) {
        Some(st) => {
            let st = st.to_string_lossy().into_owned();
            let image = File::open(&st).unwrap();
            let ifd = image.as_raw_fd();
            let (a, alo, ahi) = measure(&How::Argv(s(&[&st])), &[]);
            let (b, blo, bhi) = measure(&How::Argv(vec![cl.clone(), ifd.to_string(), st.clone()]), &[ifd]);
            println!("| static true | (5a) kernel execs it | {a:.1} ({alo:.1}–{ahi:.1}) | 1.00 | |");
            println!(
                "| static true | (5b) /chainloader FD it | {b:.1} ({blo:.1}–{bhi:.1}) | {:.2} | |",
                b / a
            );
        }
        None => println!("\n(static scenario skipped: gcc -static failed)"),
    }
}
