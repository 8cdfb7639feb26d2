//! Byte-string path helpers shared by the resolver's modules (paths inside
//! a namespace are bytes, not host `Path`s).

/// The last component (`path` itself if it has no `/`).
pub fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(n) => &path[n + 1..],
        None => path,
    }
}

/// Everything before the last `/` (`/` for a top-level entry, `.` for a
/// bare name).
pub fn dirname(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/",
        Some(n) => &path[..n],
        None => b".",
    }
}

/// `dir/name`, with exactly one `/` between them.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(dirname(b"/etc/ld.so.conf"), b"/etc");
        assert_eq!(dirname(b"/x"), b"/");
        assert_eq!(dirname(b"x"), b".");
        assert_eq!(basename(b"/lib64/ld-linux-x86-64.so.2"), b"ld-linux-x86-64.so.2");
        assert_eq!(basename(b"ld.so"), b"ld.so");
        assert_eq!(join(b"/", b"a"), b"/a");
        assert_eq!(join(b"/etc", b"a"), b"/etc/a");
    }
}
