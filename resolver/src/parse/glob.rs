//! Matching one path component against a glob pattern, as `glob(3)` does
//! for ld.so.conf includes: `*`, `?`, `[...]` (ranges, `!`/`^` negation),
//! `\` escapes; a leading `.` is only matched by a literal `.`.

/// Whether `pattern` contains glob metacharacters.
pub fn has_magic(pattern: &[u8]) -> bool {
    pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'['))
}

/// Whether file name `name` matches `pattern` (one component, no `/`).
/// To match many names, compile the pattern once: [`Pattern::new`].
pub fn matches(pattern: &[u8], name: &[u8]) -> bool {
    Pattern::new(pattern).matches(name)
}

/// A glob pattern compiled for matching: each bracket expression parsed
/// once into a set of bytes. Matching a name of `n` bytes costs at most
/// about `n` steps per element of the pattern (one backtrack point for
/// `*`), and a pattern with more fixed elements than the name has bytes
/// fails at once: a long pattern in a jail's ld.so.conf (an unclosed `[`
/// was rescanned to the end of the pattern at every step) costs no more
/// per directory entry than a short one.
#[derive(Debug, Clone)]
pub struct Pattern {
    elems: Vec<Elem>,
    /// Elements other than `*`: the shortest name that can match.
    fixed: usize,
    /// The pattern starts with a literal `.` (only then may a name that
    /// starts with one match).
    dot: bool,
}

#[derive(Debug, Clone)]
enum Elem {
    Byte(u8),
    Any,
    Star,
    Set(Box<[u64; 4]>),
}

impl Elem {
    fn accepts(&self, c: u8) -> bool {
        match self {
            Elem::Byte(b) => *b == c,
            Elem::Any => true,
            Elem::Star => false,
            Elem::Set(bits) => bits[usize::from(c >> 6)] & (1 << (c & 63)) != 0,
        }
    }
}

impl Pattern {
    /// Compile `pattern` (one component, no `/`).
    pub fn new(pattern: &[u8]) -> Pattern {
        let mut elems = Vec::new();
        // A `[` with no `]` after it is a literal, known without a scan to
        // the end (once per `[` would be quadratic in the pattern).
        let last_close = pattern.iter().rposition(|&c| c == b']');
        let mut i = 0;
        while let Some(&c) = pattern.get(i) {
            let (elem, used) = match c {
                b'*' => (Elem::Star, 1),
                b'?' => (Elem::Any, 1),
                b'[' if last_close.is_none_or(|l| l <= i + 1) => (Elem::Byte(b'['), 1),
                b'[' => match class(&pattern[i + 1..]) {
                    Some((set, len)) => (Elem::Set(Box::new(set)), 1 + len),
                    None => (Elem::Byte(b'['), 1),
                },
                b'\\' if pattern.len() > i + 1 => (Elem::Byte(pattern[i + 1]), 2),
                c => (Elem::Byte(c), 1),
            };
            // `**` matches what `*` does.
            if !(matches!(elem, Elem::Star) && matches!(elems.last(), Some(Elem::Star))) {
                elems.push(elem);
            }
            i += used;
        }
        let fixed = elems.iter().filter(|e| !matches!(e, Elem::Star)).count();
        Pattern {
            elems,
            fixed,
            dot: pattern.first() == Some(&b'.'),
        }
    }

    /// Whether file name `name` matches.
    pub fn matches(&self, name: &[u8]) -> bool {
        if name.first() == Some(&b'.') && !self.dot {
            return false;
        }
        if self.fixed > name.len() {
            return false;
        }
        // Iterative, with one backtrack point: the last `*` seen.
        let (mut p, mut n) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        loop {
            match self.elems.get(p) {
                Some(Elem::Star) => {
                    p += 1;
                    star = Some((p, n));
                    continue;
                }
                Some(e) if name.get(n).is_some_and(|&c| e.accepts(c)) => {
                    p += 1;
                    n += 1;
                    continue;
                }
                None if n == name.len() => return true,
                _ => {}
            }
            match star {
                Some((sp, sn)) if sn < name.len() => {
                    star = Some((sp, sn + 1));
                    p = sp;
                    n = sn + 1;
                }
                _ => return false,
            }
        }
    }
}

/// The set of bytes a bracket expression whose body starts at `p` (after
/// the `[`) matches, and the bytes of pattern it used including `]`; None
/// if the bracket is not closed (then the `[` is a literal).
fn class(p: &[u8]) -> Option<([u64; 4], usize)> {
    let mut bits = [0u64; 4];
    let mut add = |c: u8| bits[usize::from(c >> 6)] |= 1 << (c & 63);
    let mut i = 0;
    let negate = matches!(p.first(), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == b']' && !first {
            if negate {
                for word in &mut bits {
                    *word = !*word;
                }
            }
            return Some((bits, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&h| h != b']') {
            for c in lo..=p[i + 2] {
                add(c);
            }
            i += 3;
        } else {
            add(lo);
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
    fn a_long_pattern_with_an_unclosed_bracket_stays_fast() {
        // An unclosed `[` used to be scanned to the pattern's end at every
        // backtrack step: 800 bytes of pattern against 2,200 of name took
        // about 100 ms (the fuzzer found it), and a longer line longer.
        let n = vec![b'y'; 255];
        let t = std::time::Instant::now();
        let mut p = b"*[".to_vec();
        p.extend(std::iter::repeat_n(b'x', 100_000));
        p.push(b'*');
        // And one of 100,000 unclosed brackets compiles in linear time.
        let brackets = vec![b'['; 100_000];
        assert!(!Pattern::new(&brackets).matches(&n));
        for _ in 0..1000 {
            assert!(!matches(&p[..1000], &n));
        }
        let compiled = Pattern::new(&p);
        for _ in 0..1000 {
            assert!(!compiled.matches(&n));
        }
        assert!(t.elapsed().as_secs() < 1, "{:?}", t.elapsed());
    }

    #[test]
    fn compiled_sets_match_as_brackets_do() {
        for c in 0..=255u8 {
            let name = [c, b'x'];
            let want = (b'a'..=b'c').contains(&c);
            assert_eq!(matches(b"[a-c]x", &name), want, "{c}");
            assert_eq!(matches(b"[!a-c]x", &name), !want && c != b'.', "{c}");
        }
        assert!(!matches(b"[c-a]x", b"dx") && !matches(b"[c-a]x", b"bx"));
        assert!(matches(b"**a", b"ba") && matches(b"a**", b"a"));
    }

    #[test]
    fn magic() {
        assert!(has_magic(b"*.conf") && has_magic(b"a?") && has_magic(b"[ab]"));
        assert!(!has_magic(b"/etc/ld.so.conf"));
    }
}
