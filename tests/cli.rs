//! The `ldchain` binary, run as a user would.

use std::fs;

use assert_cmd::Command;

fn ldchain() -> Command {
    Command::cargo_bin("ldchain").unwrap()
}

#[test]
fn install_prints_what_it_did_and_is_idempotent() {
    let jail = tempfile::tempdir().unwrap();
    let out = ldchain().arg("install").arg(jail.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let target = jail.path().join("chainloader");
    assert!(text.starts_with(&format!("installed {} (", target.display())), "{text}");
    assert!(text.contains(ldchain::embed::NATIVE.sha256));
    assert_eq!(fs::read(&target).unwrap(), ldchain::embed::NATIVE.bytes);
    let out = ldchain().arg("install").arg(jail.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("unchanged "));
}

#[test]
fn install_failure_exits_125_with_a_message() {
    let jail = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", jail.path().join("chainloader")).unwrap();
    let out = ldchain().arg("install").arg(jail.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("ldchain: install: ") && err.contains("symbolic link"),
        "{err}"
    );
    let out = ldchain().args(["install", "/nonexistent/dir"]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
}

#[test]
fn help_shows_examples() {
    let out = ldchain().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("install") && text.contains("Examples:"), "{text}");
}
