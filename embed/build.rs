//! The chainloaders `src/lib.rs` embeds: one per machine in the
//! chainloader's table, the host's own first, left in `OUT_DIR` with their
//! SHA-256 for `include_bytes_aligned!`.
//!
//! **By default** they are the committed, reviewed binaries in `blobs/`,
//! each checked against `blobs/SHA256SUMS` (a mismatch or a missing file is
//! a build error). That needs no cross toolchain, no rustup target and no
//! network, so every build of a version embeds the same three files.
//!
//! **With `LDCHAIN_CHAINLOADER_FROM_SOURCE=1`** (a git checkout only: the
//! packaged crate has no `../chainloader`) they are built from source: a
//! nested `cargo build` of `../chainloader` per target, with its own target
//! directory and a clean environment (RUSTFLAGS, wrappers — clippy's
//! included — and profile overrides are removed), linked by the Rust
//! toolchain's own `rust-lld`. `tools/rebuild-chainloaders.sh` runs this
//! with the pinned toolchain and `LDCHAIN_CHAINLOADER_EXPORT=DIR`, which
//! also writes the files, `SHA256SUMS` and `BUILD-INFO` to DIR: that is how
//! `blobs/` is written and how CI checks it.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use chainloader::machine::Machine;
use sha2::{Digest, Sha256};

/// Set to `1`: build the chainloaders from `../chainloader` instead of
/// embedding `blobs/`.
const FROM_SOURCE: &str = "LDCHAIN_CHAINLOADER_FROM_SOURCE";
/// With [`FROM_SOURCE`]: a directory to write the built files, their
/// `SHA256SUMS` and `BUILD-INFO` to (the rebuild tool's output).
const EXPORT: &str = "LDCHAIN_CHAINLOADER_EXPORT";

/// Flags for the freestanding static PIE, on every target. See DESIGN.md
/// ("The chainloader binary") for what each buys. The linker is the
/// toolchain's own `rust-lld`, called directly (no C compiler driver): the
/// bytes then depend on the Rust toolchain alone.
const RUSTFLAGS: &[&str] = &[
    "-Clinker=rust-lld",
    "-Clinker-flavor=ld.lld",
    "-Crelocation-model=pie",
    "-Cforce-unwind-tables=no",
    // Keep byte loops loops: a memcpy/memset call would go through the GOT,
    // i.e. need a dynamic relocation, and the program has no relocator.
    "-Cllvm-args=-disable-loop-idiom-memcpy",
    "-Cllvm-args=-disable-loop-idiom-memset",
    "-Clink-arg=-nostdlib",
    "-Clink-arg=-znoexecstack",
    "-Clink-arg=-znoseparate-code",
    "-Clink-arg=-znorelro",
    "-Clink-arg=--build-id=none",
    "-Clink-arg=--no-eh-frame-hdr",
    "-Clink-arg=--gc-sections",
    // The layout is the linker script's (LINKER_SCRIPT): one PT_LOAD.
    "-Clink-arg=--no-rosegment",
];

/// The whole layout of the program, replacing the linker's default: one
/// `PT_LOAD` (R+X, the file and program headers, code, read-only data, and
/// i386's GOT header, never written: nothing relocates the program) and a
/// `PT_GNU_STACK` (non-executable stack). One mapping for the kernel to
/// make, one VMA left in every process. Discarded: what only a dynamic
/// linker or an unwinder would read — `.dynamic`, `.dynsym`, `.dynstr`, the
/// hash table (the kernel reads none of them; a static PIE has no loader to
/// relocate it, so they only cost bytes and a `PT_DYNAMIC` and `PT_PHDR`
/// header), and `.eh_frame` (LTO merges core's "uwtable" module flag into
/// ours, so `-Cforce-unwind-tables=no` alone does not drop it). Relocation
/// sections are *not* discarded: [`check_sections`] refuses a link that has
/// any, and any writable section.
const LINKER_SCRIPT: &str = "\
PHDRS { image PT_LOAD FILEHDR PHDRS FLAGS(5); stack PT_GNU_STACK FLAGS(6); }
SECTIONS {
  . = SIZEOF_HEADERS;
  .text : { *(.text .text.*) } :image
  .rodata : { *(.rodata .rodata.*) } :image
  .got : { *(.got) *(.got.plt) } :image
  /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.dynamic) *(.dynsym) *(.dynstr) *(.gnu.hash) *(.hash) *(.comment) *(.note .note.*) }
}
";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let blobs_dir = manifest_dir.join("blobs");
    println!("cargo:rerun-if-changed={}", blobs_dir.display());
    println!("cargo:rerun-if-env-changed={FROM_SOURCE}");
    println!("cargo:rerun-if-env-changed={EXPORT}");

    let host_triple = env::var("TARGET").unwrap();
    // The host's own first: it is `NATIVE`, installed as /chainloader; every
    // other one is /chainloader-ARCH.
    let Some(host) = Machine::from_triple(&host_triple) else {
        let supported: Vec<_> = Machine::ALL.iter().map(|m| m.triple()).collect();
        panic!(
            "ldchain-embed: unsupported host target {host_triple} (supported: {})",
            supported.join(", ")
        );
    };
    let mut order = vec![host];
    order.extend(Machine::ALL.into_iter().filter(|&m| m != host));

    let blobs = Blobs::read(&blobs_dir);
    // In a git checkout: the chainloader's sources, to build from or to
    // compare against what the blobs were built from.
    let workspace = manifest_dir.join("..");
    let sources = workspace
        .join("chainloader/src/main.rs")
        .is_file()
        .then(|| Sources::new(&workspace));
    let built = match env::var(FROM_SOURCE).as_deref() {
        Ok("1") => {
            let Some(sources) = &sources else {
                panic!(
                    "ldchain-embed: {FROM_SOURCE}=1, but {} does not exist: building the chainloaders \
                     from source needs the ldchain git checkout (the packaged crate carries only the \
                     prebuilt blobs/; unset {FROM_SOURCE} to use them)",
                    workspace.join("chainloader").display()
                );
            };
            Some(build_all(sources, &order, &out, &blobs))
        }
        Ok("0") | Ok("") | Err(env::VarError::NotPresent) => {
            if let Some(sources) = &sources {
                sources.warn_if_blobs_stale(&blobs);
            }
            None
        }
        Ok(v) => panic!("ldchain-embed: {FROM_SOURCE}={v:?}: expected 1 (or unset)"),
        Err(e) => panic!("ldchain-embed: {FROM_SOURCE}: {e}"),
    };
    let prebuilt = built.is_none();
    let mut entries = String::new();
    for (i, &m) in order.iter().enumerate() {
        let bytes = match &built {
            Some(b) => b[i].clone(),
            None => blobs.verified(m),
        };
        entries += &embed_entry(m, host, &bytes, &out);
    }
    fs::write(
        out.join("chainloaders.rs"),
        format!(
            "/// Every chainloader this build embeds, the host's own first.\n\
             pub static ALL: &[Chainloader] = &[\n{entries}];\n\n\
             /// `true` when [`ALL`] holds the crate's committed, reviewed binaries\n\
             /// (`blobs/`); `false` when this build compiled them from source\n\
             /// (`{FROM_SOURCE}=1`).\n\
             pub const PREBUILT: bool = {prebuilt};\n"
        ),
    )
    .unwrap();
}

/// `blobs/`: the committed binaries and their manifest.
struct Blobs {
    dir: PathBuf,
    /// (file name, lowercase hex SHA-256) from `SHA256SUMS`.
    sums: Vec<(String, String)>,
    /// The `sources` line of `BUILD-INFO`, if any.
    sources: Option<String>,
}

impl Blobs {
    fn read(dir: &Path) -> Blobs {
        let manifest = dir.join("SHA256SUMS");
        let text =
            fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("ldchain-embed: {}: {e}", manifest.display()));
        let mut sums = Vec::new();
        for (n, line) in text.lines().enumerate() {
            // sha256sum's format: 64 hex digits, a space, a space (text) or
            // `*` (binary), the file name.
            let parsed = line.split_at_checked(64).and_then(|(hex, rest)| {
                let name = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *"))?;
                let hex_ok = hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
                (hex_ok && !name.is_empty()).then(|| (name.to_owned(), hex.to_owned()))
            });
            let Some((name, hex)) = parsed else {
                panic!(
                    "ldchain-embed: {}:{}: not a sha256sum line: {line:?}",
                    manifest.display(),
                    n + 1
                );
            };
            if sums.iter().any(|(other, _)| *other == name) {
                panic!("ldchain-embed: {}: {name} is listed twice", manifest.display());
            }
            sums.push((name, hex));
        }
        let sources = fs::read_to_string(dir.join("BUILD-INFO")).ok().and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("sources: "))
                .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
        });
        Blobs {
            dir: dir.to_owned(),
            sums,
            sources,
        }
    }

    fn file_name(m: Machine) -> String {
        format!("chainloader-{}", m.name())
    }

    /// The committed SHA-256 of `m`'s blob.
    fn sum(&self, m: Machine) -> Option<&str> {
        let name = Blobs::file_name(m);
        self.sums.iter().find(|(n, _)| *n == name).map(|(_, h)| h.as_str())
    }

    /// `m`'s blob, after checking it against the manifest.
    fn verified(&self, m: Machine) -> Vec<u8> {
        let name = Blobs::file_name(m);
        let path = self.dir.join(&name);
        let Some(want) = self.sum(m) else {
            panic!(
                "ldchain-embed: {}: no line for {name}",
                self.dir.join("SHA256SUMS").display()
            );
        };
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("ldchain-embed: {}: {e}", path.display()));
        let got = sha256_hex(&bytes);
        if got != want {
            panic!(
                "ldchain-embed: {}: SHA-256 {got}, but SHA256SUMS says {want}: the blob is not the \
                 reviewed one (tools/rebuild-chainloaders.sh rewrites both from source)",
                path.display()
            );
        }
        bytes
    }
}

/// The chainloader's sources in a git checkout.
struct Sources {
    workspace: PathBuf,
}

impl Sources {
    fn new(workspace: &Path) -> Sources {
        let chainloader = workspace.join("chainloader");
        for p in ["src", "Cargo.toml"] {
            println!("cargo:rerun-if-changed={}", chainloader.join(p).display());
        }
        println!("cargo:rerun-if-changed={}", workspace.join("Cargo.toml").display());
        Sources {
            workspace: workspace.to_owned(),
        }
    }

    /// SHA-256 over what shapes the chainloader's bytes and lives in this
    /// repository: `chainloader/Cargo.toml`, every file under
    /// `chainloader/src` (relative path and contents, in path order), the
    /// workspace's `[profile.chainloader]` and this script's [`RUSTFLAGS`]
    /// and [`LINKER_SCRIPT`].
    /// Not covered (the CI rebuild is): the toolchain, `Cargo.lock`.
    fn digest(&self) -> String {
        let root = self.workspace.join("chainloader");
        let mut files = vec![PathBuf::from("Cargo.toml")];
        walk(&root, Path::new("src"), &mut files);
        files.sort();
        let mut h = Sha256::new();
        for f in &files {
            let bytes = fs::read(root.join(f)).unwrap_or_else(|e| panic!("{}: {e}", root.join(f).display()));
            h.update(f.to_string_lossy().as_bytes());
            h.update([0]);
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
        let cargo_toml = fs::read_to_string(self.workspace.join("Cargo.toml")).unwrap();
        let profile: Vec<&str> = cargo_toml
            .lines()
            .skip_while(|l| l.trim() != "[profile.chainloader]")
            .take_while(|l| !l.starts_with('[') || l.trim() == "[profile.chainloader]")
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        h.update(profile.join("\n").as_bytes());
        h.update(RUSTFLAGS.join("\x1f").as_bytes());
        h.update(LINKER_SCRIPT.as_bytes());
        hex(&h.finalize())
    }

    /// A warning (not an error: the blobs are still the reviewed ones) when
    /// the sources changed since `blobs/` was built from them.
    fn warn_if_blobs_stale(&self, blobs: &Blobs) {
        let now = self.digest();
        if blobs.sources.as_deref() != Some(now.as_str()) {
            println!(
                "cargo:warning=ldchain-embed: chainloader/src changed since embed/blobs was built; \
                 this build embeds the committed blobs. Run tools/rebuild-chainloaders.sh to refresh \
                 them, or set {FROM_SOURCE}=1 to test the sources."
            );
        }
    }
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let dir = root.join(rel);
    for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.unwrap();
        let rel = rel.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            walk(root, &rel, out);
        } else {
            out.push(rel);
        }
    }
}

/// Build every machine's chainloader from source, in `order`; with
/// [`EXPORT`] set, also write them, `SHA256SUMS` and `BUILD-INFO` there.
fn build_all(sources: &Sources, order: &[Machine], out: &Path, blobs: &Blobs) -> Vec<Vec<u8>> {
    let script = out.join("chainloader.ld");
    fs::write(&script, LINKER_SCRIPT).unwrap();
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = rustc_output(&rustc, &["--print", "sysroot"]);
    let mut all = Vec::new();
    for &m in order {
        require_target(&sysroot, m.triple());
        let target_dir = out.join(format!("chainloader-build-{}", m.name()));
        let linked = build(sources, m, &target_dir, &script);
        if let Err(why) = check_sections(&linked) {
            panic!(
                "ldchain-embed: the {} chainloader {why}. It runs before anything could relocate it \
                 and has no writable memory of its own, so it must have neither: avoid pointers in \
                 static data (tables of &str, function pointers), variable-length copies (memcpy \
                 through the GOT) and statics that change. See DESIGN.md.",
                m.name()
            );
        }
        let bytes = strip_section_headers(linked);
        if blobs.sum(m) != Some(sha256_hex(&bytes).as_str()) {
            println!(
                "cargo:warning=ldchain-embed: the {} chainloader built from source differs from \
                 embed/blobs/{}; tools/rebuild-chainloaders.sh refreshes the blobs",
                m.name(),
                Blobs::file_name(m)
            );
        }
        all.push(bytes);
    }
    if let Some(dir) = env::var_os(EXPORT) {
        let dir = PathBuf::from(dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        // SHA256SUMS in the table's order, so that the file is the same
        // whichever host wrote it.
        let mut sums = String::new();
        for m in Machine::ALL {
            let bytes = &all[order.iter().position(|&o| o == m).unwrap()];
            let name = Blobs::file_name(m);
            fs::write(dir.join(&name), bytes).unwrap();
            writeln!(sums, "{}  {name}", sha256_hex(bytes)).unwrap();
        }
        fs::write(dir.join("SHA256SUMS"), sums).unwrap();
        let info = format!(
            "# What embed/blobs was built from, written by tools/rebuild-chainloaders.sh;\n\
             # its --check rebuilds every file here and compares.\n\
             toolchain: {}\n\
             linker: rust-lld (the toolchain's own; no C compiler)\n\
             sources: {} (chainloader/Cargo.toml, chainloader/src, [profile.chainloader], embed/build.rs RUSTFLAGS and LINKER_SCRIPT)\n",
            rustc_output(&rustc, &["-V"]),
            sources.digest()
        );
        fs::write(dir.join("BUILD-INFO"), info).unwrap();
    }
    all
}

fn rustc_output(rustc: &std::ffi::OsStr, args: &[&str]) -> String {
    let out = Command::new(rustc)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ldchain-embed: cannot run rustc {}: {e}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Building from source needs the target's `core` (a rustup target) and
/// the toolchain's `rust-lld`; nothing is skipped.
fn require_target(sysroot: &str, triple: &str) {
    let rustlib = Path::new(sysroot).join("lib/rustlib");
    if !rustlib.join(triple).join("lib").is_dir() {
        panic!(
            "ldchain-embed: {FROM_SOURCE}=1: cannot build the {triple} chainloader: this toolchain has \
             no standard library for it (rustup target add {triple}; tools/rebuild-chainloaders.sh \
             installs it)"
        );
    }
    let host = env::var("HOST").unwrap();
    if !rustlib.join(&host).join("bin/rust-lld").is_file() {
        panic!(
            "ldchain-embed: {FROM_SOURCE}=1: this toolchain has no rust-lld ({}); a rustup toolchain \
             ships it",
            rustlib.join(&host).join("bin/rust-lld").display()
        );
    }
}

/// Check a chainloader, write it to `OUT_DIR`, and return its line of `ALL`.
fn embed_entry(m: Machine, host: Machine, bytes: &[u8], out: &Path) -> String {
    let (arch, triple) = (m.name(), m.triple());
    if let Err(why) = check_no_relocations(bytes) {
        panic!(
            "ldchain-embed: the {arch} chainloader {why}. It runs before anything could relocate it, \
             so it must have none: avoid pointers in static data (tables of &str, function pointers) \
             and variable-length copies (memcpy through the GOT). See DESIGN.md."
        );
    }
    fs::write(out.join(format!("chainloader-{arch}")), bytes).unwrap();
    let hex = sha256_hex(bytes);
    let file_name = format!("chainloader{}", m.chainloader_suffix(host));
    let machine = m.target().machine;
    // The conventional PT_INTERP paths of each libc family, where interp
    // mode puts this chainloader as a stub (as src/nested.rs does).
    let interp_paths: Vec<&str> = [&b"ld-linux"[..], b"ld-musl-"]
        .into_iter()
        .filter_map(|family| m.conventional_ldso(family))
        .map(|p| std::str::from_utf8(p).expect("ASCII path"))
        .collect();
    format!(
        "    Chainloader {{ arch: {arch:?}, triple: {triple:?}, machine: {machine}, \
         bytes: include_bytes_aligned::include_bytes_aligned!(8, concat!(env!(\"OUT_DIR\"), \"/chainloader-{arch}\")), \
         sha256: {hex:?}, file_name: {file_name:?}, interp_paths: &{interp_paths:?} }},\n"
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::new();
    for b in bytes {
        write!(s, "{b:02x}").unwrap();
    }
    s
}

fn build(sources: &Sources, m: Machine, target_dir: &Path, script: &Path) -> Vec<u8> {
    let target = m.triple();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(sources.workspace.join("chainloader/Cargo.toml"))
        .args([
            "--profile",
            "chainloader",
            "--features",
            "program",
            "--bin",
            "chainloader",
            "--locked",
        ])
        .args(["--target", target])
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--offline");
    // Start from a clean slate: nothing from the outer invocation may change
    // how the freestanding program is compiled.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_BUILD_")
            || key.starts_with("CARGO_ENCODED_")
            || key.starts_with("__CARGO")
            || key.starts_with("CARGO_TARGET_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_CFG_")
            || matches!(
                key.as_str(),
                "RUSTFLAGS" | "RUSTDOCFLAGS" | "RUSTC_WRAPPER" | "RUSTC_WORKSPACE_WRAPPER" | "CARGO_INCREMENTAL"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let mut flags: Vec<String> = RUSTFLAGS.iter().map(|f| f.to_string()).collect();
    flags.push(format!("-Clink-arg=-zmax-page-size={}", m.max_page_size()));
    if m == Machine::X86_64 {
        // rustc links a crt-static PIE as a static PIE on this target.
        flags.push("-Ctarget-feature=+crt-static".into());
    } else {
        // Elsewhere (i686, aarch64) crt-static means a fixed-address
        // executable: link a dynamic-style PIE and make it static ourselves.
        flags.extend(["-static", "--no-dynamic-linker", "-ztext"].map(|a| format!("-Clink-arg={a}")));
    }
    flags.push("-Clink-arg=-T".into());
    flags.push(format!("-Clink-arg={}", script.display()));
    // Paths never reach the stripped binary today; should one ever (a panic
    // location), it must not depend on where the checkout or cargo's
    // registry is.
    let workspace = fs::canonicalize(&sources.workspace).unwrap();
    flags.push(format!("--remap-path-prefix={}=/ldchain", workspace.display()));
    if let Some(home) =
        env::var_os("CARGO_HOME").or_else(|| env::var_os("HOME").map(|h| Path::new(&h).join(".cargo").into()))
    {
        flags.push(format!("--remap-path-prefix={}=/cargo", Path::new(&home).display()));
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    let output = cmd.output().expect("cannot run cargo to build the chainloader");
    if !output.status.success() {
        panic!(
            "building the chainloader for {target} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = target_dir.join(target).join("chainloader/chainloader");
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The program as linked (section headers still there) is started by the
/// kernel and never relocated, and its one segment is read-only: refuse
/// any relocation section (`SHT_RELA`, `SHT_REL`, `SHT_RELR`: the linker
/// keeps them even with `.dynamic` discarded) and any allocated writable
/// section other than i386's GOT header (`.got`, which nothing writes).
fn check_sections(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("is not an ELF file".into());
    }
    let class64 = bytes[4] == 2;
    let (shoff, shentsize, shnum, shstrndx) = if class64 {
        (le(bytes, 40, 8), le(bytes, 58, 2), le(bytes, 60, 2), le(bytes, 62, 2))
    } else {
        (le(bytes, 32, 4), le(bytes, 46, 2), le(bytes, 48, 2), le(bytes, 50, 2))
    };
    if shnum == 0 || shstrndx >= shnum {
        return Err("has no section headers to check".into());
    }
    // (name offset, type, flags, offset, size) of section i.
    let section = |i: u64| {
        let s = (shoff + i * shentsize) as usize;
        if class64 {
            (
                le(bytes, s, 4),
                le(bytes, s + 4, 4),
                le(bytes, s + 8, 8),
                le(bytes, s + 24, 8),
                le(bytes, s + 32, 8),
            )
        } else {
            (
                le(bytes, s, 4),
                le(bytes, s + 4, 4),
                le(bytes, s + 8, 4),
                le(bytes, s + 16, 4),
                le(bytes, s + 20, 4),
            )
        }
    };
    let strtab = section(shstrndx).3 as usize;
    for i in 0..shnum {
        let (name, kind, flags, _, size) = section(i);
        let name = &bytes[strtab + name as usize..];
        let name = String::from_utf8_lossy(&name[..name.iter().position(|&b| b == 0).unwrap_or(0)]).into_owned();
        // SHT_RELA, SHT_REL, SHT_RELR
        if matches!(kind, 4 | 9 | 19) && size != 0 {
            return Err(format!("has dynamic relocations ({name}, {size} bytes)"));
        }
        // SHF_WRITE | SHF_ALLOC
        if flags & 3 == 3 && name != ".got" {
            return Err(format!("has a writable section ({name})"));
        }
    }
    Ok(())
}

/// The program is started by the kernel and never relocated: refuse one
/// whose dynamic section, if it has one, asks for relocations.
fn check_no_relocations(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("is not an ELF file".into());
    }
    let class64 = bytes[4] == 2;
    let w = if class64 { 8 } else { 4 };
    let (phoff, phentsize, phnum) = if class64 {
        (le(bytes, 32, 8), le(bytes, 54, 2), le(bytes, 56, 2))
    } else {
        (le(bytes, 28, 4), le(bytes, 42, 2), le(bytes, 44, 2))
    };
    for i in 0..phnum {
        let p = (phoff + i * phentsize) as usize;
        if le(bytes, p, 4) != 2 {
            continue; // not PT_DYNAMIC
        }
        let (off, size) = if class64 {
            (le(bytes, p + 8, 8), le(bytes, p + 32, 8))
        } else {
            (le(bytes, p + 4, 4), le(bytes, p + 16, 4))
        };
        let mut d = off as usize;
        while d + 2 * w <= (off + size) as usize {
            let (tag, val) = (le(bytes, d, w), le(bytes, d + w, w));
            // DT_RELASZ, DT_RELSZ, DT_PLTRELSZ, DT_RELRSZ
            if matches!(tag, 8 | 18 | 2 | 35) && val != 0 {
                return Err(format!("has dynamic relocations (tag {tag}, {val} bytes)"));
            }
            if tag == 0 {
                break;
            }
            d += 2 * w;
        }
    }
    Ok(())
}

fn le(bytes: &[u8], off: usize, len: usize) -> u64 {
    bytes[off..off + len]
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

/// `sstrip`: the kernel needs only the program headers, so cut the file after
/// the last byte a `PT_LOAD` maps and clear the section-header fields. What
/// goes is the section header table, `.shstrtab` and `.comment`.
fn strip_section_headers(mut bytes: Vec<u8>) -> Vec<u8> {
    assert_eq!(&bytes[..4], b"\x7fELF", "chainloader is not ELF");
    let class64 = bytes[4] == 2;
    let (phoff, phentsize, phnum) = if class64 {
        (le(&bytes, 32, 8), le(&bytes, 54, 2), le(&bytes, 56, 2))
    } else {
        (le(&bytes, 28, 4), le(&bytes, 42, 2), le(&bytes, 44, 2))
    };
    let mut end = phoff + phentsize * phnum;
    for i in 0..phnum {
        let p = (phoff + i * phentsize) as usize;
        let (offset, filesz) = if class64 {
            (le(&bytes, p + 8, 8), le(&bytes, p + 32, 8))
        } else {
            (le(&bytes, p + 4, 4), le(&bytes, p + 16, 4))
        };
        end = end.max(offset + filesz);
    }
    bytes.truncate(end as usize);
    let (shoff, shfields) = if class64 { (40, 58) } else { (32, 46) };
    let width = if class64 { 8 } else { 4 };
    bytes[shoff..shoff + width].fill(0);
    bytes[shfields..shfields + 6].fill(0); // e_shentsize, e_shnum, e_shstrndx
    bytes
}
