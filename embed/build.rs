//! Build the chainloader from source (a nested `cargo build` of
//! `../chainloader` with its own target directory and flags) and leave the
//! bytes, with their size and SHA-256, in `OUT_DIR` for `src/lib.rs`.
//!
//! Nothing from the outer build leaks in: RUSTFLAGS, wrappers (clippy's
//! included) and profile overrides are removed, and the flags the freestanding
//! program needs are passed explicitly.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use chainloader::machine::Machine;
use sha2::{Digest, Sha256};

/// Flags for the freestanding static PIE. See DESIGN.md ("The chainloader
/// binary") for what each buys.
const RUSTFLAGS: &[&str] = &[
    "-Crelocation-model=pie",
    "-Cforce-unwind-tables=no",
    // Keep byte loops loops: a memcpy/memset call would go through the GOT,
    // i.e. need a dynamic relocation, and the program has no relocator.
    "-Cllvm-args=-disable-loop-idiom-memcpy",
    "-Cllvm-args=-disable-loop-idiom-memset",
    "-Clink-arg=-nostartfiles",
    "-Clink-arg=-nostdlib",
    "-Clink-arg=-Wl,-z,noexecstack",
    "-Clink-arg=-Wl,-z,noseparate-code",
    "-Clink-arg=-Wl,-z,norelro",
    "-Clink-arg=-Wl,--build-id=none",
    "-Clink-arg=-Wl,--no-eh-frame-hdr",
    "-Clink-arg=-Wl,--gc-sections",
    "-Clink-arg=-Wl,--hash-style=gnu",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let chainloader = manifest_dir.join("../chainloader");
    for p in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", chainloader.join(p).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        manifest_dir.join("../Cargo.toml").display()
    );
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-env-changed=PATH");

    let host_triple = env::var("TARGET").unwrap();
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    // Unwind tables are useless without an unwinder, but LTO merges core's
    // "uwtable" module flag into ours; drop .eh_frame at link time instead.
    let script = out.join("discard-eh-frame.ld");
    fs::write(
        &script,
        "SECTIONS { /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) } } INSERT AFTER .text;\n",
    )
    .unwrap();

    // Every machine in the chainloader's table, the host's own first: it is
    // `NATIVE`, installed as /chainloader; every other one is
    // /chainloader-ARCH.
    let Some(host) = Machine::from_triple(&host_triple) else {
        let supported: Vec<_> = Machine::ALL.iter().map(|m| m.triple()).collect();
        panic!(
            "ldchain-embed: unsupported host target {host_triple} (supported: {})",
            supported.join(", ")
        );
    };
    let mut order = vec![host];
    order.extend(Machine::ALL.into_iter().filter(|&m| m != host));
    let mut entries = String::new();
    for m in order {
        let Some(linker) = toolchain(m, host) else { continue };
        let bytes = build(
            &chainloader,
            m.triple(),
            linker,
            m.max_page_size(),
            &out.join(format!("chainloader-build-{}", m.name())),
            &script,
        );
        entries += &embed_entry(m, host, strip_section_headers(bytes), &out);
    }
    fs::write(
        out.join("chainloaders.rs"),
        format!("/// Every chainloader this build embeds, the host's own first.\npub static ALL: &[Chainloader] = &[\n{entries}];\n"),
    )
    .unwrap();
}

/// The cross linker for machine `m` (`Some(None)` for the host's own, which
/// needs none), or `None` to skip it — a missing toolchain is a build error
/// with `CI` set or the machine's feature on, else a warning.
fn toolchain(m: Machine, host: Machine) -> Option<Option<&'static str>> {
    if m == host {
        return Some(None);
    }
    let (arch, triple, linkers) = (m.name(), m.triple(), m.cross_linkers());
    let linker = linkers.iter().copied().find(|l| on_path(l));
    let missing = match (has_rust_target(triple), linker) {
        (false, _) => format!("the Rust standard library for {triple} (rustup target add {triple})"),
        (true, None) => format!("a linker for {triple} ({})", linkers.join(" or ")),
        (true, Some(l)) => return Some(Some(l)),
    };
    let wanted = env::var_os(format!("CARGO_FEATURE_{}", arch.to_uppercase())).is_some();
    if wanted || env::var_os("CI").is_some() {
        panic!(
            "ldchain-embed: cannot build the {arch} chainloader: missing {missing}. \
             .ci/run installs it; without CI=true or the `{arch}` feature it would be skipped."
        );
    }
    println!("cargo:warning=ldchain: no {arch} chainloader: missing {missing}");
    None
}

/// Check a built chainloader, write it to `OUT_DIR`, and return its line
/// of `ALL`.
fn embed_entry(m: Machine, host: Machine, bytes: Vec<u8>, out: &Path) -> String {
    let (arch, triple) = (m.name(), m.triple());
    if let Err(why) = check_no_relocations(&bytes) {
        panic!(
            "ldchain-embed: the {arch} chainloader {why}. It runs before anything could relocate it, \
             so it must have none: avoid pointers in static data (tables of &str, function pointers) \
             and variable-length copies (memcpy through the GOT). See DESIGN.md."
        );
    }
    fs::write(out.join(format!("chainloader-{arch}")), &bytes).unwrap();
    let mut hex = String::new();
    for b in Sha256::digest(&bytes) {
        write!(hex, "{b:02x}").unwrap();
    }
    let file_name = format!("chainloader{}", m.chainloader_suffix(host));
    let machine = m.target().machine;
    format!(
        "    Chainloader {{ arch: {arch:?}, triple: {triple:?}, machine: {machine}, \
         bytes: include_bytes_aligned::include_bytes_aligned!(8, concat!(env!(\"OUT_DIR\"), \"/chainloader-{arch}\")), \
         sha256: {hex:?}, file_name: {file_name:?} }},\n"
    )
}

fn on_path(tool: &str) -> bool {
    env::var_os("PATH").is_some_and(|p| env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn has_rust_target(triple: &str) -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(triple)
        .join("lib")
        .is_dir()
}

fn build(
    chainloader: &Path,
    target: &str,
    linker: Option<&str>,
    page: u32,
    target_dir: &Path,
    script: &Path,
) -> Vec<u8> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(chainloader.join("Cargo.toml"))
        .args([
            "--profile",
            "chainloader",
            "--features",
            "program",
            "--bin",
            "chainloader",
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
    flags.push(format!("-Clink-arg=-Wl,-z,max-page-size={page}"));
    if target.starts_with("x86_64") {
        // rustc links a crt-static PIE as -static-pie on this target.
        flags.push("-Ctarget-feature=+crt-static".into());
    } else {
        // Elsewhere (i686) crt-static means a fixed-address executable: link
        // a dynamic-style PIE and make it static ourselves.
        flags.push("-Clink-arg=-static-pie".into());
    }
    flags.push(format!("-Clink-arg=-Wl,-T,{}", script.display()));
    if let Some(linker) = linker {
        let var = format!("CARGO_TARGET_{}_LINKER", target.to_uppercase().replace('-', "_"));
        cmd.env(var, linker);
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

/// The program is started by the kernel and never relocated: refuse one
/// whose dynamic section asks for relocations.
fn check_no_relocations(bytes: &[u8]) -> Result<(), String> {
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
