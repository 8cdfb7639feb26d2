//! Jail directories built for a test, and files copied into them.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{glibc_ldso, keep_fds, output, Confinement, Run};

/// A jail directory with `/chainloader` in it. Dropping it removes it, and
/// a jail that cannot be removed (a mount left on it, say) fails the test
/// that made it rather than staying in /tmp unseen.
pub struct Jail {
    dir: Option<tempfile::TempDir>,
}

impl Drop for Jail {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        let path = dir.path().to_owned();
        if let Err(e) = dir.close() {
            if !std::thread::panicking() {
                panic!("jail {} not removed: {e}", path.display());
            }
        }
    }
}

impl Jail {
    /// A fresh jail with `/chainloader` (and `/chainloader-ARCH` for every
    /// other embedded architecture), `/proc` (a mount point), `/tmp`.
    pub fn new() -> Jail {
        let dir = tempfile::Builder::new().prefix("ldchain-jail-").tempdir().unwrap();
        // Searchable by everyone: `ldchain run` as root runs the program as
        // uid 65534. /tmp is writable by it, as on a real system.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["proc", "tmp", "bin"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        fs::set_permissions(dir.path().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        ldchain::embed::install_all(dir.path()).unwrap();
        Jail { dir: Some(dir) }
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("dropped only once").path()
    }

    /// The host path of `inside` (an absolute path in the jail).
    pub fn host(&self, inside: &str) -> PathBuf {
        self.path().join(inside.trim_start_matches('/'))
    }

    /// Copy host file `from` to `inside`, keeping its mode.
    pub fn add(&self, from: &Path, inside: &str) {
        let to = self.host(inside);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        copy_file(from, &to);
    }

    /// Write `bytes` to `inside` with `mode`.
    pub fn write(&self, inside: &str, bytes: &[u8], mode: u32) {
        let to = self.host(inside);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::write(&to, bytes).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Copy a glibc program and every shared library `ldd` names for it
    /// (at the same paths), but never the dynamic linker.
    pub fn add_glibc_program(&self, from: &Path, inside: &str) {
        self.add(from, inside);
        let out = Command::new("ldd").arg(from).output().expect("ldd");
        assert!(out.status.success(), "ldd {}", from.display());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
            if let Some((_, rest)) = line.split_once("=> ") {
                let lib = rest.split_whitespace().next().unwrap();
                if lib.starts_with('/') && !lib.contains("/ld-") {
                    self.add(Path::new(lib), lib);
                }
            }
        }
    }

    /// Assert that no dynamic linker exists anywhere in the jail: no file
    /// named like one, and no copy of the host's glibc or musl ld.so.
    pub fn assert_no_ldso(&self) {
        let glibc = fs::read(glibc_ldso()).unwrap();
        let musl = fs::read("/lib/ld-musl-x86_64.so.1").ok();
        let mut stack = vec![self.path().to_owned()];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let ty = entry.file_type().unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                if ty.is_dir() {
                    stack.push(entry.path());
                    continue;
                }
                files += 1;
                assert!(
                    !name.starts_with("ld-linux") && !name.starts_with("ld-musl"),
                    "ld.so in the jail: {}",
                    entry.path().display()
                );
                if ty.is_file() {
                    let bytes = fs::read(entry.path()).unwrap();
                    assert!(
                        bytes != glibc && Some(&bytes) != musl.as_ref(),
                        "a copy of ld.so in the jail: {}",
                        entry.path().display()
                    );
                }
            }
        }
        assert!(files > 0);
    }

    /// A command that runs `argv` inside the jail (chroot, with /proc).
    pub fn command(&self, argv: &[&str], keep: &[&File]) -> Command {
        let conf = Confinement::new(self.path()).unwrap().with_proc().unwrap();
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]).stdin(Stdio::null());
        conf.apply(&mut cmd);
        keep_fds(&mut cmd, keep);
        cmd
    }

    /// Run `argv` in the jail and collect the result.
    pub fn run(&self, argv: &[&str], keep: &[&File]) -> Run {
        output(&mut self.command(argv, keep)).expect("spawn in jail").into()
    }
}

/// Copy `from` to `to` keeping its mode, in a `cp` child process. A file
/// that will be exec'd must not be written by this process: while it holds
/// the file open for writing, any test thread's fork hands the descriptor
/// to a child, and exec'ing the file meanwhile fails with ETXTBSY.
pub fn copy_file(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("--preserve=mode")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}
