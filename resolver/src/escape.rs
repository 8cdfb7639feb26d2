//! Text that can reach a terminal: names from a sandbox may hold escape
//! sequences, newlines or invalid UTF-8, which would clear a screen or forge
//! a line if printed raw.

use std::fmt::Write as _;

/// `bytes` as printable text: control characters (C0, DEL, C1) and bytes
/// that are not UTF-8 become `\xNN`, a backslash becomes `\\`; everything
/// else is kept. The result is one line, and distinct inputs give distinct
/// outputs.
pub fn for_terminal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn control_bytes_and_invalid_utf8_are_escaped() {
        assert_eq!(for_terminal(b"/bin/ls"), "/bin/ls");
        assert_eq!(for_terminal(b"a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(for_terminal(b"x\ny\r\t"), "x\\x0ay\\x0d\\x09");
        assert_eq!(for_terminal(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(for_terminal("\u{9b}31m".as_bytes()), "\\xc2\\x9b31m");
        assert_eq!(for_terminal("é".as_bytes()), "é");
        // Lossless: the escape character itself is escaped.
        assert_ne!(for_terminal(b"\\x1b"), for_terminal(b"\x1b"));
        assert_eq!(for_terminal(b"\\"), "\\\\");
    }
}
