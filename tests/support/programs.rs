//! The test programs (compiled from `tests/programs`) and the host's dynamic linkers.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use super::require;

/// Where compiled test programs are cached.
pub fn build_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ldchain-programs");
    fs::create_dir_all(&d).unwrap();
    d
}

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs")
}

/// Compile `tests/programs/<source>` with `compiler` and `flags` into a
/// program named `name`, once per test process (rebuilt every run, so it
/// never goes stale). Returns None (after a loud skip) if the compiler is
/// missing.
pub fn compile(name: &str, compiler: &str, flags: &[&str], source: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return Some(p.clone());
    }
    if !require(compiler, "needed to build the test programs") {
        return None;
    }
    let out = build_dir().join(format!("{name}-{}", std::process::id()));
    let status = Command::new(compiler)
        .args(flags)
        .args(["-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(programs_dir().join(source))
        .status()
        .unwrap_or_else(|e| panic!("{compiler}: {e}"));
    assert!(status.success(), "{compiler} {flags:?} {source} failed");
    built.insert(name.to_owned(), out.clone());
    Some(out)
}

/// The glibc-built probe (dynamic, PIE).
pub fn glibc_probe() -> Option<PathBuf> {
    compile("probe-glibc", "gcc", &[], "probe.c")
}

/// The musl-built probe (dynamic).
pub fn musl_probe() -> Option<PathBuf> {
    compile("probe-musl", "musl-gcc", &[], "probe.c")
}

/// The host's glibc dynamic linker.
pub fn glibc_ldso() -> PathBuf {
    fs::canonicalize("/lib64/ld-linux-x86-64.so.2").expect("glibc's ld.so")
}

/// The host's musl dynamic linker (Debian's musl package).
pub fn musl_ldso() -> Option<PathBuf> {
    if require(
        "/lib/ld-musl-x86_64.so.1",
        "musl's dynamic linker, from Debian's musl package",
    ) {
        Some(PathBuf::from("/lib/ld-musl-x86_64.so.1"))
    } else {
        None
    }
}
