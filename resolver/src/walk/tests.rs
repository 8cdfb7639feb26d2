//! The memory of failed walks on real trees: it is bounded however many
//! distinct failures there are, in entries and in bytes.

use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

/// Wait until what a test just made is older than the 2 s a remembered
/// failure requires of what it depends on.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2100));
}

/// In directory `dir` (`inside`, its path in the tree), `n` chains of five
/// absolute links, `{i}` → `{i}a` → … → `{i}d` → `{i}e` (missing): the
/// walk of `{i}/x` costs ~20 system calls and fails at a prefix of its
/// own, so each chain is remembered apart.
fn chains(dir: &Path, inside: &str, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let names = [
            format!("{i}"),
            format!("{i}a"),
            format!("{i}b"),
            format!("{i}c"),
            format!("{i}d"),
        ];
        for (k, name) in names.iter().enumerate() {
            let next = ["a", "b", "c", "d", "e"][k];
            symlink(format!("{inside}/{i}{next}"), dir.join(name)).unwrap();
        }
    }
}

fn root_of(t: &tempfile::TempDir) -> OwnedFd {
    rfs::open(
        t.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

/// Open `path` as a candidate of a fresh search that remembers in `memo`.
fn open_remembering(root: &OwnedFd, path: &str, memo: &Memo) -> Result<OwnedFd, Failure> {
    let mut lookups = Lookups::per_search();
    lookups.remember_in(memo, Scope::new((0, 0), 0, None));
    open(
        root.as_fd(),
        path.as_bytes(),
        OFlags::PATH | OFlags::CLOEXEC,
        &mut lookups,
    )
}

#[test]
fn many_distinct_failures_stay_within_the_entry_cap() {
    let t = tempfile::tempdir().unwrap();
    let n = memo::MAX_ENTRIES + 104;
    chains(&t.path().join("d"), "/d", n);
    settle();
    let root = root_of(&t);
    let memo = Memo::default();
    for i in 0..n {
        let r = open_remembering(&root, &format!("/d/{i}/x"), &memo);
        assert_eq!(r.err(), Some(Failure::Errno(Errno::NOENT)), "/d/{i}/x");
        let (entries, bytes) = memo.size();
        assert!(
            entries <= memo::MAX_ENTRIES && bytes <= memo::MAX_BYTES,
            "{entries} {bytes}"
        );
        if i < memo::MAX_ENTRIES {
            assert_eq!(entries, i + 1, "each chain is remembered");
        }
    }
    // Emptied once, when full; filled again since.
    assert_eq!(memo.size().0, 104);
    // A remembered one gives the same answer again.
    let r = open_remembering(&root, &format!("/d/{}/x", n - 1), &memo);
    assert_eq!(r.err(), Some(Failure::Errno(Errno::NOENT)));
}

#[test]
fn failures_with_long_paths_stay_within_the_byte_cap() {
    let t = tempfile::tempdir().unwrap();
    // 15 directories of 200-byte names: each failure depends on 16
    // directories whose paths hold ~24 KB together.
    let mut inside = "/L".to_string();
    for k in 0..14 {
        inside.push('/');
        inside.push_str(&format!("{k:0>200}"));
    }
    let n = 200;
    chains(&t.path().join(&inside[1..]), &inside, n);
    settle();
    let root = root_of(&t);
    let memo = Memo::default();
    let mut most = 0;
    for i in 0..n {
        let r = open_remembering(&root, &format!("{inside}/{i}/x"), &memo);
        assert_eq!(r.err(), Some(Failure::Errno(Errno::NOENT)));
        let (entries, bytes) = memo.size();
        assert!(bytes <= memo::MAX_BYTES, "{entries} entries, {bytes} bytes");
        most = most.max(entries);
    }
    let (entries, bytes) = memo.size();
    eprintln!("at most {most} entries; at the end {entries}, {bytes} bytes");
    assert!(most >= 100, "long paths are remembered too: at most {most}");
    assert!(
        entries < n,
        "the byte cap emptied the memory: {entries} entries, {bytes} bytes"
    );
}

/// A directory changed less than 2 s ago is not relied on: a change within
/// the same tick of the file system's clock could leave its change time as
/// it was. The same failure is remembered once the tree has settled.
#[test]
fn a_failure_in_a_directory_changed_just_now_is_not_remembered() {
    let t = tempfile::tempdir().unwrap();
    chains(&t.path().join("d"), "/d", 1);
    let root = root_of(&t);
    let memo = Memo::default();
    let r = open_remembering(&root, "/d/0/x", &memo);
    assert_eq!(r.err(), Some(Failure::Errno(Errno::NOENT)));
    assert_eq!(memo.size().0, 0, "remembered a failure in a directory changed just now");
    settle();
    let r = open_remembering(&root, "/d/0/x", &memo);
    assert_eq!(r.err(), Some(Failure::Errno(Errno::NOENT)));
    assert_eq!(memo.size().0, 1);
}
