//! Search-path variables: `LD_LIBRARY_PATH` (glibc's rules) and `LDSO_PATH`.

/// What `$ORIGIN`, `$LIB` and `$PLATFORM` expand to for one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens<'a> {
    /// The directory containing the program (`$ORIGIN`).
    pub origin: &'a [u8],
    /// The architecture's library directory name (`$LIB`).
    pub lib: &'a [u8],
    /// The platform string (`$PLATFORM`).
    pub platform: &'a [u8],
}

/// Expand `$NAME` and `${NAME}` for the three tokens glibc knows. Anything
/// else after a `$` is kept literally, as glibc does.
pub fn expand(entry: &[u8], tokens: &Tokens<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.len());
    let mut i = 0;
    while i < entry.len() {
        if entry[i] == b'$' {
            let rest = &entry[i + 1..];
            let (name, used) = if let Some(braced) = rest.strip_prefix(b"{") {
                match braced.iter().position(|&c| c == b'}') {
                    Some(end) => (&braced[..end], end + 2),
                    None => (&b""[..], 0),
                }
            } else {
                let end = rest
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .unwrap_or(rest.len());
                (&rest[..end], end)
            };
            let value = match name {
                b"ORIGIN" => Some(tokens.origin),
                b"LIB" => Some(tokens.lib),
                b"PLATFORM" => Some(tokens.platform),
                _ => None,
            };
            if let (Some(value), true) = (value, used > 0) {
                out.extend_from_slice(value);
                i += 1 + used;
                continue;
            }
        }
        out.push(entry[i]);
        i += 1;
    }
    out
}

/// Split `LD_LIBRARY_PATH` as glibc does: `:` and `;` separate entries, and
/// an empty entry means the current directory (returned as `.`). At most
/// `max` entries are returned (a bound against hostile environments); the
/// second value says whether any were dropped.
pub fn split_ld_library_path(value: &[u8], max: usize) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    for entry in value.split(|&c| c == b':' || c == b';') {
        if out.len() == max {
            return (out, true);
        }
        out.push(if entry.is_empty() { &b"."[..] } else { entry });
    }
    (out, false)
}

/// Split `LDSO_PATH`: `:`-separated directories; empty entries are skipped
/// (an ld.so search path has no use for "the current directory"). At most
/// `max` entries.
pub fn split_ldso_path(value: &[u8], max: usize) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    for entry in value.split(|&c| c == b':').filter(|e| !e.is_empty()) {
        if out.len() == max {
            return (out, true);
        }
        out.push(entry);
    }
    (out, false)
}

/// The value of `name` in an environment given as `NAME=VALUE` entries (the
/// first one wins, as `getenv` does).
pub fn getenv<'a, S: AsRef<[u8]>>(envp: &'a [S], name: &[u8]) -> Option<&'a [u8]> {
    envp.iter().find_map(|e| {
        let e = e.as_ref();
        (e.len() > name.len() && e.starts_with(name) && e[name.len()] == b'=').then(|| &e[name.len() + 1..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Tokens<'static> = Tokens {
        origin: b"/opt/app/bin",
        lib: b"lib64",
        platform: b"x86_64",
    };

    #[test]
    fn tokens_expand_with_and_without_braces() {
        assert_eq!(expand(b"$ORIGIN/../lib", &T), b"/opt/app/bin/../lib");
        assert_eq!(expand(b"${ORIGIN}/x", &T), b"/opt/app/bin/x");
        assert_eq!(expand(b"/usr/$LIB/$PLATFORM", &T), b"/usr/lib64/x86_64");
        assert_eq!(expand(b"/a${LIB}b", &T), b"/alib64b");
        assert_eq!(expand(b"$ORIGINAL", &T), b"$ORIGINAL", "only whole names");
        assert_eq!(expand(b"$HOME/x", &T), b"$HOME/x", "unknown tokens stay literal");
        assert_eq!(expand(b"${LIB", &T), b"${LIB", "unclosed brace");
        assert_eq!(expand(b"$", &T), b"$");
        assert_eq!(expand(b"a$$LIB", &T), b"a$lib64");
    }

    #[test]
    fn ld_library_path_separators_and_empty_entries() {
        let (v, cut) = split_ld_library_path(b"/a:/b;/c", 100);
        assert_eq!(v, [&b"/a"[..], b"/b", b"/c"]);
        assert!(!cut);
        let (v, _) = split_ld_library_path(b":/a::", 100);
        assert_eq!(v, [&b"."[..], b"/a", b".", b"."]);
        let (v, _) = split_ld_library_path(b"", 100);
        assert_eq!(v, [&b"."[..]]);
    }

    #[test]
    fn huge_paths_are_bounded() {
        let huge = vec![b':'; 100_000];
        let (v, cut) = split_ld_library_path(&huge, 1024);
        assert_eq!(v.len(), 1024);
        assert!(cut);
        let (v, cut) = split_ldso_path(&huge, 1024);
        assert!(v.is_empty() && !cut);
    }

    #[test]
    fn ldso_path_skips_empty_entries() {
        let (v, _) = split_ldso_path(b"::/opt/ld::/lib:", 100);
        assert_eq!(v, [&b"/opt/ld"[..], b"/lib"]);
    }

    #[test]
    fn getenv_first_match_and_exact_name() {
        let env = [
            "LD_LIBRARY_PATH_X=1",
            "LD_LIBRARY_PATH=/a",
            "LD_LIBRARY_PATH=/b",
            "EMPTY=",
        ];
        assert_eq!(getenv(&env, b"LD_LIBRARY_PATH"), Some(&b"/a"[..]));
        assert_eq!(getenv(&env, b"EMPTY"), Some(&b""[..]));
        assert_eq!(getenv(&env, b"MISSING"), None);
        assert_eq!(getenv(&env, b"LD_LIBRARY"), None);
    }
}
