//! gdb on a program started through the chainloader. The kernel's saved auxv
//! describes the chainloader, so gdb alone finds no symbols; with
//! tools/ldchain-gdb.py (`ldchain-start`) it stops in the program's `main`
//! and in libc's `puts`, with a symbolic backtrace.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

/// gdb -batch with the ld.so open on descriptor 7 in the inferior.
fn gdb(script: bool, ex: &[&str], program: &Path) -> String {
    let ldso = open(&glibc_ldso());
    let mut cmd = Command::new("gdb");
    cmd.args(["-batch", "-nx"]);
    if script {
        cmd.arg("-x")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/ldchain-gdb.py"));
    }
    for e in ex {
        cmd.args(["-ex", e]);
    }
    cmd.arg("--args")
        .arg(host_chainloader())
        .args(["7", "ld.so"])
        .arg(program);
    cmd.stdin(Stdio::null());
    pass_as_fd(&mut cmd, &ldso, 7);
    let out = cmd.output().expect("run gdb");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn gdb_stops_in_main_and_in_a_shared_library_function_with_symbols() {
    if !require("gdb", "the gdb test") {
        return;
    }
    let Some(hello) = compile("hello-g", "gcc", &["-g", "-O0"], "hello.c") else {
        return;
    };
    let ex = [
        "set breakpoint pending on",
        "ldchain-start",
        "break main",
        "break puts",
        "continue",
        "bt",
        "continue",
        "bt",
        "continue",
    ];
    let out = gdb(true, &ex, &hello);
    assert!(
        out.contains("ldchain: stopped at the entry of the loaded image"),
        "{out}"
    );
    assert!(out.contains(", main (argc=1"), "no stop in main: {out}");
    assert!(out.contains("#0  main (argc=1"), "no symbolic backtrace in main: {out}");
    assert!(out.contains("puts (str="), "no stop in puts: {out}");
    assert!(
        out.contains(" in main (") && out.contains("hello.c:"),
        "no caller frame: {out}"
    );
    assert!(
        out.contains("hello from main") && out.contains("exited normally"),
        "{out}"
    );

    // Without the script gdb cannot find the program's symbols at all —
    // which is why the script exists.
    let plain = gdb(false, &["set breakpoint pending on", "break main", "run"], &hello);
    assert!(!plain.contains(", main (argc="), "gdb alone found main? {plain}");
    assert!(plain.contains("hello from main"), "{plain}");
}
