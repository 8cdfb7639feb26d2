//! `#!` lines, with the kernel's rules (`fs/binfmt_script.c`).

/// How many bytes of a file the kernel looks at for `#!` (`BINPRM_BUF_SIZE`).
pub const BUF_SIZE: usize = 256;

/// A parsed `#!` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    /// The interpreter path, as written.
    pub interpreter: Vec<u8>,
    /// The single optional argument: everything after the interpreter name,
    /// leading and trailing blanks removed, inner blanks kept.
    pub arg: Option<Vec<u8>>,
}

/// Why a `#!` line is unusable (the kernel says ENOEXEC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShebangError {
    /// Only blanks after `#!`.
    NoInterpreter,
    /// No newline in the first 256 bytes and no blank, tab or NUL after the
    /// interpreter name: the name may be truncated.
    Truncated,
}

fn blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn terminator(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == 0
}

/// Whether `head` starts with `#!`.
pub fn is_script(head: &[u8]) -> bool {
    head.starts_with(b"#!")
}

/// Parse the start of a file that begins with `#!`. Only the first
/// [`BUF_SIZE`] bytes count, as for the kernel.
pub fn parse(head: &[u8]) -> Result<Shebang, ShebangError> {
    let buf = &head[..head.len().min(BUF_SIZE)];
    debug_assert!(is_script(buf));
    let body = &buf[2..];
    // The line ends at the first newline; without one, the kernel accepts the
    // (truncated) buffer only if the interpreter name provably ended in it.
    let mut line = match body.iter().position(|&c| c == b'\n') {
        Some(n) => &body[..n],
        None => {
            // The kernel treats the last byte of its buffer as a terminator.
            let line = if buf.len() == BUF_SIZE {
                &body[..body.len() - 1]
            } else {
                body
            };
            let start = line
                .iter()
                .position(|&c| !blank(c))
                .ok_or(ShebangError::NoInterpreter)?;
            if buf.len() == BUF_SIZE && !line[start..].iter().any(|&c| terminator(c)) {
                return Err(ShebangError::Truncated);
            }
            line
        }
    };
    // A NUL ends the line for the kernel (it works on C strings).
    if let Some(n) = line.iter().position(|&c| c == 0) {
        line = &line[..n];
    }
    while line.last().is_some_and(|&c| blank(c)) {
        line = &line[..line.len() - 1];
    }
    let start = line
        .iter()
        .position(|&c| !blank(c))
        .ok_or(ShebangError::NoInterpreter)?;
    let line = &line[start..];
    match line.iter().position(|&c| blank(c)) {
        None => Ok(Shebang {
            interpreter: line.to_vec(),
            arg: None,
        }),
        Some(sep) => {
            let rest = &line[sep..];
            let arg_start = rest.iter().position(|&c| !blank(c));
            Ok(Shebang {
                interpreter: line[..sep].to_vec(),
                arg: arg_start.map(|a| rest[a..].to_vec()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &[u8]) -> (String, Option<String>) {
        let sb = parse(s).unwrap();
        (
            String::from_utf8(sb.interpreter).unwrap(),
            sb.arg.map(|a| String::from_utf8(a).unwrap()),
        )
    }

    #[test]
    fn interpreter_alone_and_with_one_argument() {
        assert_eq!(ok(b"#!/bin/sh\necho"), ("/bin/sh".into(), None));
        assert_eq!(ok(b"#! /bin/sh \n"), ("/bin/sh".into(), None));
        assert_eq!(
            ok(b"#!/usr/bin/env python3\n"),
            ("/usr/bin/env".into(), Some("python3".into()))
        );
        assert_eq!(ok(b"#!\t/bin/sh\t-e\t\n"), ("/bin/sh".into(), Some("-e".into())));
        assert_eq!(ok(b"#!/bin/sh"), ("/bin/sh".into(), None), "no newline, short file");
    }

    #[test]
    fn the_argument_keeps_inner_spaces_as_one_argument() {
        assert_eq!(
            ok(b"#!/usr/bin/env  -S a  b c  \n"),
            ("/usr/bin/env".into(), Some("-S a  b c".into()))
        );
        assert_eq!(
            ok(b"#!/bin/i a\tb\r\n"),
            ("/bin/i".into(), Some("a\tb\r".into())),
            "CR is not a blank"
        );
    }

    #[test]
    fn nul_ends_the_line() {
        assert_eq!(ok(b"#!/bin/sh\0 -x\n"), ("/bin/sh".into(), None));
        assert_eq!(ok(b"#!/bin/sh -x\0y\n"), ("/bin/sh".into(), Some("-x".into())));
    }

    #[test]
    fn no_interpreter() {
        assert_eq!(parse(b"#!\n"), Err(ShebangError::NoInterpreter));
        assert_eq!(parse(b"#!   \t\n"), Err(ShebangError::NoInterpreter));
        assert_eq!(parse(b"#!"), Err(ShebangError::NoInterpreter));
    }

    #[test]
    fn only_the_first_256_bytes_count() {
        // Interpreter name longer than the buffer: possibly truncated.
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        assert_eq!(parse(&long), Err(ShebangError::Truncated));
        // Name ends inside the buffer, argument runs past it: accepted, the
        // argument cut at byte 255 as the kernel does.
        let mut arg = b"#!/bin/sh ".to_vec();
        arg.extend(std::iter::repeat_n(b'x', 400));
        let sb = parse(&arg).unwrap();
        assert_eq!(sb.interpreter, b"/bin/sh");
        assert_eq!(sb.arg.unwrap().len(), BUF_SIZE - 1 - 10);
        // A newline after byte 256 does not count.
        let mut late = b"#!/".to_vec();
        late.extend(std::iter::repeat_n(b'b', 280));
        late.push(b'\n');
        assert_eq!(parse(&late), Err(ShebangError::Truncated));
    }
}
