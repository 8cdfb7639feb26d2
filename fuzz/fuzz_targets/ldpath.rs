//! LD_LIBRARY_PATH and LDSO_PATH: splitting is bounded and yields no
//! separators; token expansion never panics and only ever replaces whole
//! `$ORIGIN`, `$LIB`, `$PLATFORM` tokens.
#![no_main]

use ldchain_resolver::parse::ldpath::{expand, getenv, split_ld_library_path, split_ldso_path, Tokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (entries, cut) = split_ld_library_path(data, 64);
    assert!(entries.len() <= 64);
    assert!(!cut || entries.len() == 64);
    let tokens = Tokens {
        origin: b"/o",
        lib: b"lib64",
        platform: b"x86_64",
    };
    for e in entries {
        assert!(!e.is_empty() && !e.contains(&b':') && !e.contains(&b';'));
        let x = expand(e, &tokens);
        if !e.contains(&b'$') {
            assert_eq!(x, e);
        }
    }
    let (dirs, _) = split_ldso_path(data, 64);
    assert!(dirs.iter().all(|d| !d.is_empty() && !d.contains(&b':')));
    let env = [data];
    if let Some(v) = getenv(&env, b"LD_LIBRARY_PATH") {
        assert!(data.starts_with(b"LD_LIBRARY_PATH=") && data.ends_with(v));
    }
});
