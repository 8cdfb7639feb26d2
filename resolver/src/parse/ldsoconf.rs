//! `/etc/ld.so.conf` lines, with ldconfig's rules (`elf/ldconfig.c`,
//! `parse_conf`). Includes are returned as patterns; expanding them (globs,
//! relative paths, cycles, depth) needs the file system and is the
//! resolver's job.

/// One meaningful line of an ld.so.conf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// A library directory (trailing blanks and slashes removed).
    Dir(Vec<u8>),
    /// `include` with one or more glob patterns, in order.
    Include(Vec<Vec<u8>>),
}

/// The most lines of one file that are looked at (a bound against huge
/// files; ldconfig has none).
pub const MAX_LINES: usize = 10_000;

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Parse one file's bytes. `#` starts a comment anywhere; `include` needs a
/// blank after it; `hwcap` lines are ignored; directory lines lose trailing
/// whitespace and slashes. Duplicates are *not* dropped here (that happens
/// across all files, in the resolver).
pub fn parse(bytes: &[u8]) -> Vec<Directive> {
    let mut out = Vec::new();
    for raw in bytes.split(|&c| c == b'\n').take(MAX_LINES) {
        let line = match raw.iter().position(|&c| c == b'#') {
            Some(n) => &raw[..n],
            None => raw,
        };
        let start = line.iter().position(|&c| !is_space(c)).unwrap_or(line.len());
        let line = &line[start..];
        if line.is_empty() {
            continue;
        }
        if line.len() > 7 && line.starts_with(b"include") && is_blank(line[7]) {
            let patterns: Vec<Vec<u8>> = line[8..]
                .split(|&c| is_blank(c))
                .map(trim_end)
                .filter(|p| !p.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            if !patterns.is_empty() {
                out.push(Directive::Include(patterns));
            }
            continue;
        }
        if line.len() > 5 && line[..5].eq_ignore_ascii_case(b"hwcap") && is_blank(line[5]) {
            continue;
        }
        let mut dir = trim_end(line);
        while dir.len() > 1 && dir.ends_with(b"/") {
            dir = &dir[..dir.len() - 1];
        }
        out.push(Directive::Dir(dir.to_vec()));
    }
    out
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while s.last().is_some_and(|&c| is_space(c)) {
        s = &s[..s.len() - 1];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(s: &str) -> Directive {
        Directive::Dir(s.as_bytes().to_vec())
    }

    #[test]
    fn debian_files() {
        assert_eq!(
            parse(b"include /etc/ld.so.conf.d/*.conf\n\n"),
            [Directive::Include(vec![b"/etc/ld.so.conf.d/*.conf".to_vec()])]
        );
        assert_eq!(
            parse(b"# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n"),
            [dir("/usr/local/lib/x86_64-linux-gnu"), dir("/lib/x86_64-linux-gnu"), dir("/usr/lib/x86_64-linux-gnu")]
        );
    }

    #[test]
    fn comments_blanks_slashes_and_hwcap() {
        let got = parse(b"  /a/b//   # trailing\n#whole line\n\t\n/c # x\nhwcap 0 nosegneg\nHWCAP\t1 x\n/\n/d\r\n");
        assert_eq!(got, [dir("/a/b"), dir("/c"), dir("/"), dir("/d")]);
    }

    #[test]
    fn include_with_several_patterns_and_relative_ones() {
        assert_eq!(
            parse(b"include  a/*.conf\t/etc/x.conf   b.conf # c\n"),
            [Directive::Include(vec![
                b"a/*.conf".to_vec(),
                b"/etc/x.conf".to_vec(),
                b"b.conf".to_vec()
            ])]
        );
        // "include" must be followed by a blank; otherwise it is a directory.
        assert_eq!(parse(b"include/x\n"), [dir("include/x")]);
        assert_eq!(parse(b"include\n"), [dir("include")]);
        assert_eq!(parse(b"include   \n"), []);
    }

    #[test]
    fn include_patterns_are_never_empty_after_trimming() {
        // Found by fuzzing (ldsoconf): a vertical tab is whitespace but not a
        // separator, so "\x0b" was a pattern that trimmed to nothing.
        assert_eq!(
            parse(b"include /etc/*.conf\x0b  \x0b  /x\n"),
            [Directive::Include(vec![b"/etc/*.conf".to_vec(), b"/x".to_vec()])]
        );
    }

    #[test]
    fn huge_input_is_bounded() {
        let huge = b"/x\n".repeat(50_000);
        assert_eq!(parse(&huge).len(), MAX_LINES);
    }
}
