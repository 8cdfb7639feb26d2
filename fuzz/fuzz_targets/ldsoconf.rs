//! ld.so.conf lines and include globs: the parser never panics, directory
//! lines carry no comment, leading blanks or trailing slashes, includes are
//! non-empty patterns, and glob matching stays fast on any pattern.
#![no_main]

use ldchain_resolver::parse::glob;
use ldchain_resolver::parse::ldsoconf::{parse, Directive, MAX_LINES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let got = parse(data);
    assert!(got.len() <= MAX_LINES);
    for d in &got {
        match d {
            Directive::Dir(dir) => {
                assert!(!dir.is_empty() && !dir.contains(&b'#') && !dir.contains(&b'\n'));
                assert!(!matches!(dir[0], b' ' | b'\t'));
                assert!(dir.len() == 1 || !dir.ends_with(b"/"));
            }
            Directive::Include(patterns) => {
                assert!(!patterns.is_empty());
                assert!(patterns
                    .iter()
                    .all(|p| !p.is_empty() && !p.contains(&b' ') && !p.contains(&b'#')));
            }
        }
    }
    if let Some(split) = data.iter().position(|&c| c == 0) {
        let (pattern, name) = (&data[..split], &data[split + 1..]);
        let t = std::time::Instant::now();
        let _ = glob::matches(pattern, name);
        assert!(t.elapsed().as_millis() < 100, "glob matching too slow");
    }
});
