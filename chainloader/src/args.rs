//! The command line: `chainloader FD ARG0 [ARGS...]`.

use crate::error::{Error, Reason, Subject};

/// The usage text printed when there are fewer than two arguments.
pub const USAGE: &str = "usage: chainloader FD ARG0 [ARGS...]\n";

/// Parse the FD argument: decimal digits only, no sign, no spaces, at most
/// `i32::MAX` (the largest descriptor number the kernel's `int` can hold).
pub fn parse_fd(arg: &[u8]) -> Result<i32, Error> {
    if arg.is_empty() {
        return Err(Error::new(Subject::FdArg, Reason::FdNotNumber));
    }
    let mut n: i32 = 0;
    for &c in arg {
        if !c.is_ascii_digit() {
            return Err(Error::new(Subject::FdArg, Reason::FdNotNumber));
        }
        n = match n.checked_mul(10).and_then(|n| n.checked_add(i32::from(c - b'0'))) {
            Some(n) => n,
            None => return Err(Error::new(Subject::FdArg, Reason::FdRange)),
        };
    }
    Ok(n)
}

/// The last `/`-separated component of `path` (the whole of it if it has no
/// `/`; the part before trailing slashes if it ends in some), as `basename(1)`.
pub fn basename(path: &[u8]) -> &[u8] {
    // Slice patterns and `get`, not indexing: no panic path.
    let mut trimmed = path;
    while let [rest @ .., b'/'] = trimmed {
        if rest.is_empty() {
            break;
        }
        trimmed = rest;
    }
    match trimmed.iter().rposition(|&c| c == b'/') {
        Some(i) if trimmed.len() > 1 => trimmed.get(i + 1..).unwrap_or_default(),
        _ => trimmed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fds() {
        assert_eq!(parse_fd(b"0"), Ok(0));
        assert_eq!(parse_fd(b"3"), Ok(3));
        assert_eq!(parse_fd(b"007"), Ok(7));
        assert_eq!(parse_fd(b"2147483647"), Ok(i32::MAX));
        for bad in [
            &b""[..],
            b"abc",
            b"-1",
            b"+3",
            b" 3",
            b"3 ",
            b"0x3",
            b"2147483648",
            b"99999999999",
        ] {
            let e = parse_fd(bad).unwrap_err();
            assert_eq!(e.subject(), Subject::FdArg, "{bad:?}");
        }
    }

    #[test]
    fn basenames() {
        assert_eq!(basename(b"/usr/bin/env"), b"env");
        assert_eq!(basename(b"env"), b"env");
        assert_eq!(basename(b"/usr/bin/"), b"bin");
        assert_eq!(basename(b"/"), b"/");
        assert_eq!(basename(b""), b"");
        assert_eq!(basename(b"a//"), b"a");
    }
}
