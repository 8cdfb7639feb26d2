//! `#!` lines: the parser never panics, and what it returns obeys the
//! kernel's rules (an interpreter name without blanks or NULs; one argument
//! without leading or trailing blanks; nothing past the first 256 bytes).
#![no_main]

use ldchain_resolver::parse::shebang::{is_script, parse, BUF_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut line = b"#!".to_vec();
    line.extend_from_slice(data);
    assert!(is_script(&line));
    if let Ok(sb) = parse(&line) {
        assert!(!sb.interpreter.is_empty());
        assert!(!sb.interpreter.iter().any(|c| matches!(c, b' ' | b'\t' | 0 | b'\n')));
        if let Some(arg) = &sb.arg {
            assert!(!arg.is_empty());
            assert!(!matches!(arg.first(), Some(b' ' | b'\t')) && !matches!(arg.last(), Some(b' ' | b'\t')));
            assert!(!arg.contains(&b'\n') && !arg.contains(&0));
        }
        let used = sb.interpreter.len() + sb.arg.as_ref().map_or(0, |a| a.len());
        assert!(used < BUF_SIZE);
    }
});
