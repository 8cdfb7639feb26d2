//! Matching one path component against a glob pattern, as `glob(3)` does
//! for ld.so.conf includes: `*`, `?`, `[...]` (ranges, `!`/`^` negation),
//! `\` escapes; a leading `.` is only matched by a literal `.`.

/// Whether `pattern` contains glob metacharacters.
pub fn has_magic(pattern: &[u8]) -> bool {
    pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'['))
}

/// Whether file name `name` matches `pattern` (one component, no `/`).
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    if name.first() == Some(&b'.') && pattern.first() != Some(&b'.') {
        return false;
    }
    match_from(pattern, name)
}

fn match_from(mut p: &[u8], mut n: &[u8]) -> bool {
    // Iterative with one backtrack point for `*` (linear in practice).
    let mut star: Option<(&[u8], &[u8])> = None;
    loop {
        match p.first() {
            Some(b'*') => {
                p = &p[1..];
                star = Some((p, n));
                continue;
            }
            Some(&c) if !n.is_empty() => {
                let (ok, used) = match c {
                    b'?' => (true, 1),
                    b'[' => match class(&p[1..], n[0]) {
                        Some((ok, len)) => (ok, 1 + len),
                        None => (n[0] == b'[', 1),
                    },
                    b'\\' if p.len() > 1 => (n[0] == p[1], 2),
                    c => (n[0] == c, 1),
                };
                if ok {
                    p = &p[used..];
                    n = &n[1..];
                    continue;
                }
            }
            None if n.is_empty() => return true,
            _ => {}
        }
        match star {
            Some((sp, sn)) if !sn.is_empty() => {
                star = Some((sp, &sn[1..]));
                p = sp;
                n = &sn[1..];
            }
            _ => return false,
        }
    }
}

/// Match `c` against a bracket expression whose body starts at `p` (after
/// the `[`). Returns (matched, bytes of pattern used including `]`), or None
/// if the bracket is not closed.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = matches!(p.first(), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_questions() {
        assert!(matches(b"*.conf", b"libc.conf"));
        assert!(!matches(b"*.conf", b".conf"), "leading dot needs a literal dot");
        assert!(matches(b".*", b".hidden"));
        assert!(!matches(b"*.conf", b"libc.conf~"));
        assert!(matches(b"x86_64-*.conf", b"x86_64-linux-gnu.conf"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"*", b"anything"));
        assert!(matches(b"a*b*c", b"aXXbYYbZc"));
        assert!(!matches(b"a*b*c", b"aXXbYY"));
    }

    #[test]
    fn brackets_and_escapes() {
        assert!(matches(b"[a-c]x", b"bx"));
        assert!(!matches(b"[!a-c]x", b"bx"));
        assert!(matches(b"[^a-c]x", b"dx"));
        assert!(matches(b"[]]", b"]"));
        assert!(matches(b"[a-]", b"-"));
        assert!(matches(b"[", b"["), "unclosed bracket is literal");
        assert!(matches(b"\\*", b"*"));
        assert!(!matches(b"\\*", b"x"));
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let p = b"*a*a*a*a*a*a*a*a*a*a*b".to_vec();
        let n = vec![b'a'; 200];
        let t = std::time::Instant::now();
        assert!(!matches(&p, &n));
        assert!(t.elapsed().as_secs() < 1);
    }

    #[test]
    fn magic() {
        assert!(has_magic(b"*.conf") && has_magic(b"a?") && has_magic(b"[ab]"));
        assert!(!has_magic(b"/etc/ld.so.conf"));
    }
}
