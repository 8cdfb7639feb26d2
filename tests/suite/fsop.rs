//! `examples/fsop.rs`, run as its docs say (`cargo run --example fsop`): a
//! library user's FsOp server, from the jail to a nested pipeline's output.

use std::process::Command;

use crate::support::require_root;

#[test]
fn the_fsop_example_runs_a_pipeline_of_nested_execs() {
    if !require_root("the example runs its jail's programs as uid 65534") {
        return;
    }
    // Its temporary jail goes here, to see that none is left behind.
    let tmp = tempfile::tempdir().unwrap();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.current_dir(env!("CARGO_MANIFEST_DIR")).env("TMPDIR", tmp.path());
    cargo.args(["run", "--quiet", "--example", "fsop"]);
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    let out = cargo.output().expect("cargo run --example fsop");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(stdout, "fsop: ok\n", "stderr: {stderr}");
    assert!(out.status.success(), "{:?}; stderr: {stderr}", out.status);
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "the example left {left:?} behind");
}
