//! The chainloader on the host, and the ELF images fed to it.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{build_dir, run_with_fds, skip, Run};

/// Open a host file for passing to the chainloader.
pub fn open(path: &Path) -> File {
    File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number of an open file, as text for argv.
pub fn fdnum(f: &File) -> String {
    use std::os::fd::AsRawFd;
    f.as_raw_fd().to_string()
}

/// Write `bytes` to a fresh temporary file and open it for reading.
pub fn temp_image(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
    let mut t = tempfile::NamedTempFile::new().unwrap();
    t.write_all(bytes).unwrap();
    t.flush().unwrap();
    let f = File::open(t.path()).unwrap();
    (t, f)
}

/// The installed chainloaders on the host (for running without a jail).
fn host_bin_dir() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = build_dir().join(format!("bin-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        ldchain::embed::install_all(&dir).unwrap();
        dir
    })
    .clone()
}

/// The native chainloader, installed on the host.
pub fn host_chainloader() -> PathBuf {
    host_bin_dir().join("chainloader")
}

/// The chainloader for `arch` (`i386`, `aarch64`), installed on the host;
/// None (after a loud skip, or a panic in CI) if this build lacks it.
pub fn host_chainloader_for(arch: &str) -> Option<PathBuf> {
    let p = host_bin_dir().join(format!("chainloader-{arch}"));
    if p.exists() {
        return Some(p);
    }
    skip(&format!(
        "this build embeds no {arch} chainloader (install the cross toolchain; .ci/run does)"
    ));
    None
}

/// Run the host chainloader with `args`, passing on `keep`.
pub fn run_chainloader(args: &[&str], keep: &[&File]) -> Run {
    run_with_fds(Command::new(host_chainloader()).args(args), keep)
}

/// The little-endian unsigned field of `width` bytes at `off` (every test
/// image is little-endian: x86_64, i386, aarch64).
pub fn le_get(b: &[u8], off: usize, width: usize) -> u64 {
    b[off..off + width]
        .iter()
        .rev()
        .fold(0, |a, &x| (a << 8) | u64::from(x))
}

/// Store `v` as the little-endian field of `width` bytes at `off`.
pub fn le_set(b: &mut [u8], off: usize, width: usize, v: u64) {
    for i in 0..width {
        b[off + i] = (v >> (8 * i)) as u8;
    }
}
