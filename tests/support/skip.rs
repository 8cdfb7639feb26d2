//! Loud skips: a test that cannot run here says so (and fails in CI).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Whether every test must run (CI): a missing tool is then a failure, not a
/// skip.
pub fn strict() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("LDCHAIN_REQUIRE_ALL").is_some()
}

/// Whether `tool` is on PATH or is a path that exists. When it is missing,
/// print a loud SKIP line (or panic under [`strict`]) and return false.
pub fn require(tool: &str, why: &str) -> bool {
    let found = if tool.contains('/') {
        Path::new(tool).exists()
    } else {
        std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false)
    };
    if !found {
        skip(&format!("{tool} is missing ({why}); .ci/run installs it"));
    }
    found
}

/// The one way a test skips: a loud SKIP line on stderr locally, a failure
/// under [`strict`] (CI), so that no part of the suite passes by not
/// running. Callers return right after it.
#[track_caller]
pub fn skip(why: &str) {
    if strict() {
        panic!("this test cannot run here, and CI requires every test: {why}");
    }
    eprintln!("\n*** SKIP: {why} ***\n");
    // cargo shows a skipped test as passed and hides its stderr: leave a
    // line where tools/test.sh counts skips for its summary.
    if let Some(log) = std::env::var_os("LDCHAIN_SKIP_LOG") {
        let test = std::thread::current().name().unwrap_or("?").to_owned();
        if let Ok(mut f) = fs::OpenOptions::new().append(true).create(true).open(log) {
            let _ = writeln!(f, "{test}: {why}");
        }
    }
}

/// Whether the test process is root; otherwise [`skip`] for `why`.
#[track_caller]
pub fn require_root(why: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        skip(&format!("not root ({why})"));
    }
    root
}

/// Whether tests can run something as uid 65534 with an unprivileged user
/// namespace of its own (root to switch, `setpriv`, and the kernel
/// allowing it); otherwise [`skip`] for `why`.
#[track_caller]
pub fn nobody_can_run(why: &str) -> bool {
    if !require_root(why) || !require("setpriv", "switching to an unprivileged user") {
        return false;
    }
    let probe = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "-Ur",
            "true",
        ])
        .status()
        .unwrap();
    if !probe.success() {
        skip(&format!(
            "{why}: unprivileged user namespaces are disabled on this machine"
        ));
    }
    probe.success()
}
