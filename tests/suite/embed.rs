//! The embedded chainloader as a file (structure, size, relocations), the
//! committed blobs it comes from, the installer (atomic, idempotent,
//! durable, refuses symlinks) and the checker (current or not, never
//! following a symlink).

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use ldchain::embed::{check, install, CheckError, Checked, InstallError, Outcome, Role, State, NATIVE};
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::LittleEndian as LE;

/// The size budget for the chainloader file, in bytes (DESIGN.md; held by
/// CI through this test and the budget check).
const SIZE_BUDGET: usize = 12288;

#[test]
fn chainloader_is_a_small_static_pie_with_no_interpreter_and_a_non_executable_stack() {
    let bytes = NATIVE.bytes;
    assert!(
        bytes.len() <= SIZE_BUDGET,
        "chainloader is {} bytes, budget {SIZE_BUDGET}",
        bytes.len()
    );
    let header = FileHeader64::<LE>::parse(bytes).expect("an ELF64 file");
    assert_eq!(
        header.e_type(LE),
        elf::ET_DYN,
        "position-independent (no fixed load address)"
    );
    assert_eq!(header.e_machine(LE), elf::EM_X86_64);
    let phdrs = header.program_headers(LE, bytes).unwrap();
    assert!(
        phdrs.iter().all(|p| p.p_type(LE) != elf::PT_INTERP),
        "no PT_INTERP: it needs no dynamic linker"
    );
    let stack = phdrs
        .iter()
        .find(|p| p.p_type(LE) == elf::PT_GNU_STACK)
        .expect("a PT_GNU_STACK");
    assert_eq!(stack.p_flags(LE) & elf::PF_X, 0, "non-executable stack");
    let loads: Vec<_> = phdrs.iter().filter(|p| p.p_type(LE) == elf::PT_LOAD).collect();
    assert!(!loads.is_empty());
    for p in &loads {
        let f = p.p_flags(LE);
        assert!(!(f & elf::PF_W != 0 && f & elf::PF_X != 0), "a W+X segment: {f:#x}");
    }
    // Every part of the file the kernel needs is inside the file.
    for p in &loads {
        assert!(p.p_offset(LE) + p.p_filesz(LE) <= bytes.len() as u64);
    }
}

#[test]
fn chainloader_needs_no_libraries_and_no_relocations() {
    // The program is never relocated (it has no relocator: nothing runs
    // before it). It has no dynamic section at all — nothing to name a
    // library or a relocation (embed/build.rs refused the link if it had
    // relocation sections) — and one read-only, executable PT_LOAD: no
    // writable memory that a relocation could have been meant for.
    for c in ldchain::embed::ALL {
        let bytes = c.bytes;
        let (phoff, phentsize, phnum, class64) = if bytes[4] == 2 {
            let h = FileHeader64::<LE>::parse(bytes).unwrap();
            (h.e_phoff(LE), h.e_phentsize(LE), h.e_phnum(LE), true)
        } else {
            (
                u64::from(u32::from_le_bytes(bytes[28..32].try_into().unwrap())),
                u16::from_le_bytes([bytes[42], bytes[43]]),
                u16::from_le_bytes([bytes[44], bytes[45]]),
                false,
            )
        };
        let types: Vec<(u32, u32)> = (0..u64::from(phnum))
            .map(|i| {
                let p = (phoff + i * u64::from(phentsize)) as usize;
                let word = |o: usize| u32::from_le_bytes(bytes[p + o..p + o + 4].try_into().unwrap());
                (word(0), if class64 { word(4) } else { word(24) })
            })
            .collect();
        assert!(
            !types.iter().any(|&(t, _)| t == elf::PT_DYNAMIC || t == elf::PT_INTERP),
            "{}: a dynamic section or an interpreter: {types:?}",
            c.arch
        );
        let loads: Vec<u32> = types
            .iter()
            .filter(|&&(t, _)| t == elf::PT_LOAD)
            .map(|&(_, f)| f)
            .collect();
        assert_eq!(loads, [elf::PF_R | elf::PF_X], "{}: one R+X PT_LOAD", c.arch);
    }
}

#[test]
fn chainloader_has_no_panic_path() {
    // Every index and slice in the program is checked where it is made
    // (`get`, slice patterns), so no input can reach a bounds-check panic.
    // The link drops what nothing calls: the panic handler's message is in
    // the bytes only if some panic path is.
    let message = "internal error: panic";
    let main = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/chainloader/src/main.rs")).unwrap();
    assert!(
        main.contains(message),
        "the panic handler's message changed: update this test"
    );
    for c in ldchain::embed::ALL {
        assert!(
            !c.bytes.windows(message.len()).any(|w| w == message.as_bytes()),
            "{}: the chainloader has a panic path (an unchecked index or slice?)",
            c.arch
        );
    }
}

#[test]
fn embedded_facts_match_the_bytes() {
    assert_eq!(NATIVE.arch, "x86_64");
    assert_eq!(NATIVE.machine, elf::EM_X86_64);
    assert_eq!(NATIVE.sha256.len(), 64);
    assert!(NATIVE
        .sha256
        .bytes()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // Independent check of the digest with sha256sum, when present.
    if crate::support::require("sha256sum", "checking the embedded digest") {
        let (_t, _) = crate::support::temp_image(NATIVE.bytes);
        let out = std::process::Command::new("sha256sum").arg(_t.path()).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).starts_with(NATIVE.sha256));
    }
}

#[test]
fn install_creates_then_is_idempotent_then_replaces_atomically() {
    let jail = tempfile::tempdir().unwrap();
    let target = jail.path().join("chainloader");
    let done = install(jail.path()).unwrap();
    assert_eq!(done.outcome, Outcome::Created);
    assert_eq!(done.path, target);
    assert_eq!(
        fs::read(&target).unwrap(),
        NATIVE.bytes,
        "byte-identical to the embedded bytes"
    );
    let meta = fs::metadata(&target).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert!(done.to_string().starts_with(&format!("installed {}", target.display())));

    // Again: nothing is written (same inode, same mtime).
    let again = install(jail.path()).unwrap();
    assert_eq!(again.outcome, Outcome::Unchanged);
    let meta2 = fs::metadata(&target).unwrap();
    assert_eq!(
        (meta.ino(), meta.mtime(), meta.mtime_nsec()),
        (meta2.ino(), meta2.mtime(), meta2.mtime_nsec())
    );

    // A different file is replaced by rename: a reader holding the old file
    // keeps seeing it whole, and the new file appears whole.
    fs::write(&target, b"old contents").unwrap();
    let mut old = fs::File::open(&target).unwrap();
    let replaced = install(jail.path()).unwrap();
    assert_eq!(replaced.outcome, Outcome::Replaced);
    let mut seen = String::new();
    old.read_to_string(&mut seen).unwrap();
    assert_eq!(seen, "old contents");
    assert_eq!(fs::read(&target).unwrap(), NATIVE.bytes);

    // Same bytes, wrong mode: replaced too.
    fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(install(jail.path()).unwrap().outcome, Outcome::Replaced);
    assert_eq!(fs::metadata(&target).unwrap().permissions().mode() & 0o7777, 0o755);

    // No temporary files are left behind.
    let names: Vec<_> = fs::read_dir(jail.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["chainloader"]);
}

#[test]
fn install_ignores_the_umask() {
    // fchmod after creation: the installed mode is 0755 whatever the umask.
    // The umask is the process's: set it in a child (`ldchain install`), not
    // in this process, whose other tests create files meanwhile.
    let jail = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("sh")
        .args(["-c", "umask 077 && exec \"$0\" install \"$1\" >/dev/null"])
        .arg(env!("CARGO_BIN_EXE_ldchain"))
        .arg(jail.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        fs::metadata(jail.path().join("chainloader"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
}

#[test]
fn install_refuses_a_symlink_at_the_target_and_leaves_it_alone() {
    let jail = tempfile::tempdir().unwrap();
    let victim = tempfile::NamedTempFile::new().unwrap();
    fs::write(victim.path(), b"precious").unwrap();
    std::os::unix::fs::symlink(victim.path(), jail.path().join("chainloader")).unwrap();
    let err = install(jail.path()).unwrap_err();
    assert!(matches!(err, InstallError::SymlinkTarget { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(fs::read(victim.path()).unwrap(), b"precious");
    assert!(fs::symlink_metadata(jail.path().join("chainloader"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A dangling symlink too.
    let jail2 = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/nonexistent/x", jail2.path().join("chainloader")).unwrap();
    assert!(matches!(
        install(jail2.path()).unwrap_err(),
        InstallError::SymlinkTarget { .. }
    ));
}

#[test]
fn install_refuses_a_jail_that_is_not_a_directory_or_a_directory_target() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = install(file.path()).unwrap_err();
    assert!(matches!(err, InstallError::Jail { .. }), "{err}");
    assert!(err.to_string().contains("Not a directory"), "{err}");
    let err = install(std::path::Path::new("/nonexistent/jail")).unwrap_err();
    assert!(err.to_string().contains("No such file or directory"), "{err}");
    let jail = tempfile::tempdir().unwrap();
    fs::create_dir(jail.path().join("chainloader")).unwrap();
    let err = install(jail.path()).unwrap_err();
    assert!(matches!(err, InstallError::DirectoryTarget { .. }), "{err}");
}

#[test]
fn install_replaces_a_fifo_without_blocking() {
    let jail = tempfile::tempdir().unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        jail.path().join("chainloader"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert_eq!(install(jail.path()).unwrap().outcome, Outcome::Replaced);
    assert_eq!(fs::read(jail.path().join("chainloader")).unwrap(), NATIVE.bytes);
}

#[test]
fn install_never_writes_through_a_name_planted_at_its_temporary_file() {
    // The temporary file's name is predictable: `.chainloader.tmp-PID-N`,
    // N counting installs in this process. Someone who can write to the jail
    // plants, at every name this process could use, a symlink to a victim
    // file (one jail) or a hard link to one (another jail: O_NOFOLLOW alone
    // does not stop that). Whatever happens, no victim may change, and an
    // installed chainloader must be a file of its own.
    let outer = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    for how in ["symlink", "hard link"] {
        let jail = outer.path().join(format!("jail-{}", how.replace(' ', "-")));
        fs::create_dir(&jail).unwrap();
        let victim = outer.path().join(format!("victim-of-a-{}", how.replace(' ', "-")));
        fs::write(&victim, b"precious").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
        for n in 0..1024 {
            let name = jail.join(format!(".chainloader.tmp-{pid}-{n}"));
            if how == "symlink" {
                std::os::unix::fs::symlink(&victim, name).unwrap();
            } else {
                fs::hard_link(&victim, name).unwrap();
            }
        }
        let result = install(&jail);
        let now = fs::read(&victim).unwrap();
        assert!(
            now == b"precious",
            "written through a planted {how}: the victim now holds {} bytes starting {:?}",
            now.len(),
            String::from_utf8_lossy(&now[..now.len().min(8)])
        );
        let mode = fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600, "chmodded through a planted {how}");
        let target = jail.join("chainloader");
        match result {
            // Refused: the name it wanted was taken.
            Err(e) => {
                assert!(e.to_string().contains("cannot create temporary file"), "{how}: {e}");
                assert!(
                    fs::symlink_metadata(&target).is_err(),
                    "{how}: {e}, yet the target exists"
                );
            }
            // Or a file of its own, not one of the planted inodes.
            Ok(done) => {
                let meta = fs::symlink_metadata(&target).unwrap();
                assert!(meta.file_type().is_file(), "{how}: {done}");
                assert_eq!(
                    meta.nlink(),
                    1,
                    "{how}: {done}: the installed file is linked elsewhere too"
                );
                assert_eq!(fs::read(&target).unwrap(), NATIVE.bytes);
            }
        }
    }
}

#[test]
fn install_fsyncs_the_file_before_the_rename_and_the_directory_after_it() {
    // "Durably": traced for real. The temporary file must be fsynced after
    // its last write and before it is renamed into place (else a crash can
    // leave an empty or partial `chainloader` under the final name), and the
    // jail directory after the rename (else the rename itself can be lost).
    if !crate::support::require("strace", "tracing the installer's system calls") {
        return;
    }
    let jail = tempfile::tempdir().unwrap();
    let jail_path = fs::canonicalize(jail.path()).unwrap();
    let jail_s = jail_path.to_str().unwrap();
    let out = std::process::Command::new("strace")
        .args(["-f", "-qq", "-y", "-e"])
        .arg("trace=openat,write,fchmod,fsync,fdatasync,rename,renameat,renameat2,close")
        .arg(env!("CARGO_BIN_EXE_ldchain"))
        .arg("install")
        .arg(&jail_path)
        .output()
        .unwrap();
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{trace}");
    // Drop "[pid N] " prefixes.
    let lines: Vec<&str> = trace
        .lines()
        .map(|l| {
            if l.starts_with("[pid ") {
                l.split_once("] ").map_or(l, |x| x.1)
            } else {
                l
            }
        })
        .collect();
    let tmp_fd = format!("<{jail_s}/.chainloader.tmp-");
    let dir_fd = format!("<{jail_s}>)");
    let rename = lines
        .iter()
        .position(|l| l.starts_with("rename") && l.contains("\"chainloader\"") && l.ends_with("= 0"))
        .unwrap_or_else(|| panic!("no rename into place:\n{trace}"));
    let last_write = lines[..rename]
        .iter()
        .rposition(|l| l.starts_with("write(") && l.contains(&tmp_fd))
        .unwrap_or_else(|| panic!("no write to a temporary file before the rename:\n{trace}"));
    let synced = |l: &&str, fd: &str| {
        (l.starts_with("fsync(") || l.starts_with("fdatasync(")) && l.contains(fd) && l.ends_with("= 0")
    };
    assert!(
        lines[last_write..rename].iter().any(|l| synced(l, &tmp_fd)),
        "the temporary file is not fsynced between its last write and the rename:\n{trace}"
    );
    assert!(
        lines[rename..].iter().any(|l| synced(l, &dir_fd)),
        "the jail directory is not fsynced after the rename:\n{trace}"
    );
}

#[test]
fn install_replaces_a_file_of_the_same_size_and_mode_with_other_bytes() {
    // "Unchanged" means identical bytes, not just the same size and mode: a
    // stale or tampered chainloader of the right length is replaced.
    let jail = tempfile::tempdir().unwrap();
    let target = jail.path().join("chainloader");
    let mut bytes = NATIVE.bytes.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&target, &bytes).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(install(jail.path()).unwrap().outcome, Outcome::Replaced);
    assert_eq!(fs::read(&target).unwrap(), NATIVE.bytes);
}

#[test]
fn every_machine_is_embedded_from_the_committed_blobs() {
    // All three on every build, whatever cross toolchains this machine has:
    // the host's own first, then the table's order.
    let names: Vec<&str> = ldchain::embed::ALL.iter().map(|c| c.arch).collect();
    assert_eq!(names, ["x86_64", "i386", "aarch64"]);
    let files: Vec<&str> = ldchain::embed::ALL.iter().map(|c| c.file_name).collect();
    assert_eq!(files, ["chainloader", "chainloader-i386", "chainloader-aarch64"]);
    // Each one's interp paths are where interp mode puts stubs.
    for c in ldchain::embed::ALL {
        let mut want: Vec<&str> = ldchain::sandbox::view::stub_paths()
            .into_iter()
            .filter(|(_, m)| m.ident().1 == c.machine)
            .map(|(p, _)| p)
            .collect();
        want.sort();
        let mut got = c.interp_paths.to_vec();
        got.sort();
        assert_eq!(got, want, "{}", c.arch);
    }
    let from_source = std::env::var_os("LDCHAIN_CHAINLOADER_FROM_SOURCE").is_some_and(|v| v == "1");
    assert_eq!(
        ldchain::embed::PREBUILT,
        !from_source,
        "PREBUILT unless built from source"
    );
    if from_source {
        return;
    }
    // The embedded bytes are the committed files, and the manifest names
    // them with their digests, in sha256sum's format.
    let blobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("embed/blobs");
    let sums = fs::read_to_string(blobs.join("SHA256SUMS")).unwrap();
    for c in ldchain::embed::ALL {
        let name = format!("chainloader-{}", c.arch);
        assert_eq!(fs::read(blobs.join(&name)).unwrap(), c.bytes, "{name}");
        assert!(
            sums.lines().any(|l| l == format!("{}  {name}", c.sha256)),
            "{name}: {sums}"
        );
        assert_eq!(c.bytes.len() as u64, fs::metadata(blobs.join(&name)).unwrap().len());
    }
    assert_eq!(sums.lines().count(), 3);
    assert_eq!(ldchain::embed::VERSION, env!("CARGO_PKG_VERSION"));
}

/// `check`'s verdict for the path ending in `suffix`.
fn verdict(report: &[Checked], suffix: &str) -> (State, bool) {
    let c = report
        .iter()
        .find(|c| c.path.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("{suffix} not checked: {report:#?}"));
    (c.state.clone(), c.needs_refresh())
}

fn i386() -> &'static ldchain::embed::Chainloader {
    ldchain::embed::ALL.iter().find(|c| c.arch == "i386").unwrap()
}

#[test]
fn check_tells_current_from_missing_outdated_and_foreign() {
    let jail = tempfile::tempdir().unwrap();
    let j = jail.path();
    let report = check(j).unwrap();
    // Three chainloaders, then six conventional PT_INTERP paths.
    assert_eq!(report.len(), 9, "{report:#?}");
    assert_eq!(report.iter().filter(|c| c.role == Role::Chainloader).count(), 3);
    assert_eq!(verdict(&report, "/chainloader"), (State::Missing, true));
    assert_eq!(verdict(&report, "/lib/ld-linux.so.2"), (State::Missing, false));
    assert!(report[0]
        .to_string()
        .starts_with(&format!("missing  {}/chainloader ", j.display())));

    ldchain::embed::install_all(j).unwrap();
    let report = check(j).unwrap();
    for c in &report[..3] {
        assert_eq!(c.state, State::Current, "{c}");
        assert!(c.to_string().contains(c.expected.sha256), "{c}");
    }
    assert!(report.iter().all(|c| !c.needs_refresh()), "{report:#?}");

    // An older build of the same chainloader (one byte differs), another
    // architecture's, the right bytes with the wrong mode.
    let mut old = i386().bytes.to_vec();
    old[200] ^= 1;
    fs::write(j.join("chainloader-i386"), &old).unwrap();
    fs::write(j.join("chainloader-aarch64"), NATIVE.bytes).unwrap();
    fs::set_permissions(j.join("chainloader"), fs::Permissions::from_mode(0o700)).unwrap();
    let report = check(j).unwrap();
    let (state, refresh) = verdict(&report, "/chainloader-i386");
    assert!(
        matches!(&state, State::Outdated(why) if why.starts_with("another chainloader build, sha256 ")),
        "{state:?}"
    );
    assert!(refresh);
    let (state, _) = verdict(&report, "/chainloader-aarch64");
    assert_eq!(
        state,
        State::Outdated("the x86_64 chainloader, not the aarch64 one".into())
    );
    let (state, _) = verdict(&report, "/chainloader");
    assert_eq!(
        state,
        State::Outdated("the current bytes, but mode 0700, not 0755".into())
    );
    // install_all is what refreshes them.
    ldchain::embed::install_all(j).unwrap();
    assert!(check(j).unwrap().iter().all(|c| !c.needs_refresh()));

    // Interp stubs: the current one, an old one, and a real ld.so (left
    // alone), at the conventional paths.
    fs::create_dir_all(j.join("lib64")).unwrap();
    fs::create_dir_all(j.join("lib")).unwrap();
    fs::write(j.join("lib/ld-linux.so.2"), i386().bytes).unwrap();
    fs::write(j.join("lib/ld-musl-i386.so.1"), &old).unwrap();
    let real = fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
    fs::copy(&real, j.join("lib64/ld-linux-x86-64.so.2")).unwrap();
    let report = check(j).unwrap();
    assert_eq!(verdict(&report, "/lib/ld-linux.so.2"), (State::Current, false));
    let (state, refresh) = verdict(&report, "/lib/ld-musl-i386.so.1");
    assert!(matches!(state, State::Outdated(_)) && refresh, "{state:?}");
    let (state, refresh) = verdict(&report, "/lib64/ld-linux-x86-64.so.2");
    assert!(
        matches!(&state, State::Foreign(what) if what.starts_with("a file of ")),
        "{state:?}"
    );
    assert!(!refresh);
    let line = report
        .iter()
        .find(|c| c.path.ends_with("lib64/ld-linux-x86-64.so.2"))
        .unwrap()
        .to_string();
    assert!(
        line.starts_with("foreign  ") && line.ends_with("not a chainloader: left alone)"),
        "{line}"
    );
}

#[test]
fn check_never_follows_a_symlink_out_of_the_jail() {
    // Outside the jail, the current chainloaders at the paths a symlink in
    // the jail points to: a check that followed them would call the jail
    // current.
    let outside = tempfile::tempdir().unwrap();
    let o = fs::canonicalize(outside.path()).unwrap();
    fs::write(o.join("ld-linux-x86-64.so.2"), NATIVE.bytes).unwrap();
    fs::write(o.join("chainloader"), NATIVE.bytes).unwrap();
    fs::set_permissions(o.join("chainloader"), fs::Permissions::from_mode(0o755)).unwrap();
    let jail = tempfile::tempdir().unwrap();
    let j = jail.path();
    // A directory on the way: an absolute symlink resolves inside the jail.
    std::os::unix::fs::symlink(&o, j.join("lib64")).unwrap();
    // The checked file itself: reported, not followed.
    std::os::unix::fs::symlink(o.join("chainloader"), j.join("chainloader")).unwrap();
    // A FIFO at a checked path: examined without opening it for reading.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        j.join("chainloader-i386"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let report = check(j).unwrap();
    assert_eq!(
        verdict(&report, "/lib64/ld-linux-x86-64.so.2"),
        (State::Missing, false),
        "followed /lib64 out of the jail"
    );
    let (state, refresh) = verdict(&report, "/chainloader");
    assert_eq!(
        state,
        State::Foreign(format!(
            "a symbolic link to {}, not followed",
            o.join("chainloader").display()
        ))
    );
    assert!(refresh, "install refuses a symlink: the jail needs attention");
    let (state, _) = verdict(&report, "/chainloader-i386");
    assert!(
        matches!(&state, State::Foreign(w) if w.starts_with("not a regular file")),
        "{state:?}"
    );
    // A jail that is not a directory is an error, not a report.
    let file = tempfile::NamedTempFile::new().unwrap();
    let err = check(file.path()).unwrap_err();
    assert!(matches!(err, CheckError::Jail { .. }), "{err}");
}

/// `install_stubs` places the chainloader at the conventional `PT_INTERP`
/// paths, resolving the jail's own links inside the jail: `/lib64 ->
/// usr/lib64` and an absolute `/lib -> <a host directory>` both land in the
/// jail, never in the host directory. The jail's own ld.so is kept; a
/// second run changes nothing; a link planted at a stub's name is refused,
/// not followed.
#[test]
fn install_stubs_resolve_links_inside_the_jail_and_keep_its_own_ldso() {
    use std::os::unix::fs::symlink;
    let jail = tempfile::tempdir().unwrap();
    let host = tempfile::tempdir().unwrap();
    let j = jail.path();
    fs::create_dir_all(j.join("usr/lib64")).unwrap();
    symlink("usr/lib64", j.join("lib64")).unwrap();
    // Absolute, to a directory that exists on the host only.
    symlink(host.path(), j.join("lib")).unwrap();
    let inside_host = j.join(host.path().strip_prefix("/").unwrap());
    fs::create_dir_all(&inside_host).unwrap();
    let own = b"\x7fELF the jail's own musl ld.so".repeat(4);
    fs::write(inside_host.join("ld-musl-x86_64.so.1"), &own).unwrap();
    let done = ldchain::embed::install_stubs(j).unwrap();
    let kept: Vec<_> = done.iter().filter(|d| d.outcome == Outcome::Kept).collect();
    assert_eq!(kept.len(), 1, "{done:?}");
    assert!(kept[0].path.ends_with("lib/ld-musl-x86_64.so.1"), "{done:?}");
    assert_eq!(fs::read(inside_host.join("ld-musl-x86_64.so.1")).unwrap(), own);
    let x86 = fs::read(j.join("usr/lib64/ld-linux-x86-64.so.2")).unwrap();
    assert!(ldchain::embed::ALL.iter().any(|c| c.bytes == &x86[..]));
    assert!(
        inside_host.join("ld-linux.so.2").is_file(),
        "the i386 stub, through /lib"
    );
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "the host directory was written"
    );
    let again = ldchain::embed::install_stubs(j).unwrap();
    assert!(
        again
            .iter()
            .all(|d| matches!(d.outcome, Outcome::Unchanged | Outcome::Kept)),
        "{again:?}"
    );
    // The checker agrees: every stub current, the jail's own file foreign.
    let checked = check(j).unwrap();
    let stubs: Vec<&Checked> = checked.iter().filter(|c| c.role == Role::InterpStub).collect();
    assert!(
        stubs.iter().filter(|c| c.state == State::Current).count() >= 5,
        "{checked:?}"
    );
    // A link planted at a stub's name: refused, never followed.
    fs::remove_file(j.join("usr/lib64/ld-linux-x86-64.so.2")).unwrap();
    let victim = host.path().join("victim");
    fs::write(&victim, b"host data").unwrap();
    symlink(&victim, j.join("usr/lib64/ld-linux-x86-64.so.2")).unwrap();
    let err = ldchain::embed::install_stubs(j).unwrap_err();
    assert!(matches!(err, InstallError::SymlinkTarget { .. }), "{err:?}");
    assert_eq!(fs::read(&victim).unwrap(), b"host data");
}
