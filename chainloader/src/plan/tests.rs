extern crate std;
use std::string::ToString;
use std::vec::Vec;

use super::*;
use crate::elf::{parse_ehdr, ET_DYN, ET_EXEC, PT_GNU_STACK};
use crate::error::Reason;
use crate::machine::{I386, X86_64};

const PAGE: u64 = 4096;

type PhdrMutation<'a> = &'a dyn Fn(&mut Vec<Phdr>);
type ByteMutation<'a> = &'a dyn Fn(&mut Vec<u8>);

/// A minimal 64-bit ELF image: header, program headers right after it, and
/// `size` bytes in all.
fn image(e_type: u16, entry: u64, phdrs: &[Phdr], size: usize) -> Vec<u8> {
    let mut b = std::vec![0u8; size.max(64 + 56 * phdrs.len())];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&e_type.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    for (i, p) in phdrs.iter().enumerate() {
        let o = 64 + 56 * i;
        b[o..o + 4].copy_from_slice(&p.p_type.to_le_bytes());
        b[o + 4..o + 8].copy_from_slice(&p.p_flags.to_le_bytes());
        b[o + 8..o + 16].copy_from_slice(&p.p_offset.to_le_bytes());
        b[o + 16..o + 24].copy_from_slice(&p.p_vaddr.to_le_bytes());
        b[o + 32..o + 40].copy_from_slice(&p.p_filesz.to_le_bytes());
        b[o + 40..o + 48].copy_from_slice(&p.p_memsz.to_le_bytes());
        b[o + 48..o + 56].copy_from_slice(&p.p_align.to_le_bytes());
    }
    b
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Phdr {
    Phdr {
        p_type: PT_LOAD,
        p_flags: flags,
        p_offset: offset,
        p_vaddr: vaddr,
        p_filesz: filesz,
        p_memsz: memsz,
        p_align: PAGE,
    }
}

/// The layout of Debian's glibc 2.36 ld.so.
fn ldso_like() -> Vec<Phdr> {
    std::vec![
        load(PF_R, 0, 0, 0xd58, 0xd58),
        load(PF_R | PF_X, 0x1000, 0x1000, 0x25111, 0x25111),
        load(PF_R, 0x27000, 0x27000, 0x9c7c, 0x9c7c),
        load(PF_R | PF_W, 0x31900, 0x31900, 0x2810, 0x29d8),
        Phdr {
            p_type: PT_GNU_STACK,
            p_flags: PF_R | PF_W,
            ..Default::default()
        },
    ]
}

fn run(bytes: &[u8]) -> Result<Plan, Error> {
    let ehdr = parse_ehdr::<X86_64>(bytes, bytes.len() as u64)?;
    let table = &bytes[ehdr.phoff as usize..][..ehdr.phdr_table_len() as usize];
    plan::<X86_64>(&ehdr, table, bytes.len() as u64, PAGE)
}

fn reason(bytes: &[u8]) -> Reason {
    run(bytes).unwrap_err().reason()
}

#[test]
fn plans_an_ldso_layout_like_the_kernel() {
    let img = image(ET_DYN, 0x1ab70, &ldso_like(), 0x34110);
    let p = run(&img).unwrap();
    assert!(!p.fixed);
    assert_eq!(p.reserve, Reserve::FirstSegment);
    assert_eq!((p.span_start, p.span_len, p.align), (0, 0x35000, PAGE));
    assert_eq!((p.entry, p.phdr, p.phnum, p.phent), (0x1ab70, 64, 5, 56));
    assert_eq!((p.first_offset, p.first_prot), (0, PROT_READ));
    assert_eq!(p.file_extent, 0x34110);
    // The loader's walk ends after the last PT_LOAD (GNU_STACK is not walked).
    assert_eq!(p.loads_end, 4);
    // The data segment: three file pages, then its last page is anonymous
    // with the 0x110 bytes of file data read in (the rest stays zero, to
    // the end of the page, as glibc's ld.so relies on).
    let data = segment(&ldso_like()[3], PAGE);
    assert_eq!((data.start, data.offset, data.file_end), (0x31000, 0x31000, 0x34000));
    assert_eq!((data.tail, data.end), (0x110, 0x35000));
    assert_eq!(data.prot, PROT_READ | PROT_WRITE);
    // Text: no bss, the last partial page stays mapped from the file.
    let text = segment(&ldso_like()[1], PAGE);
    assert_eq!(
        (text.prot, text.file_end, text.tail, text.end),
        (PROT_READ | PROT_EXEC, 0x27000, 0, 0x27000)
    );
}

#[test]
fn the_walk_ends_after_the_last_load_wherever_it_is() {
    const PT_NOTE: u32 = 4;
    let note = Phdr {
        p_type: PT_NOTE,
        p_flags: PF_R,
        ..Default::default()
    };
    // A PT_LOAD after other headers, and other headers after the last one.
    let mut phdrs = ldso_like();
    phdrs.insert(2, note);
    phdrs.push(note);
    let img = image(ET_DYN, 0x1ab70, &phdrs, 0x34110);
    assert_eq!(run(&img).unwrap().loads_end, 5);
    let last_is_load = &phdrs[..5];
    let img = image(ET_DYN, 0x1ab70, last_is_load, 0x34110);
    assert_eq!(run(&img).unwrap().loads_end, 5);
}

#[test]
fn bss_is_relative_to_its_own_segment() {
    // A data segment at a high, unaligned address with a large bss: the
    // anonymous part starts at *this segment's* last file page.
    let ph = load(PF_R | PF_W, 0x2e10, 0x203e10, 0x100, 0x10_0000);
    let s = segment(&ph, PAGE);
    assert_eq!((s.start, s.offset), (0x203000, 0x2000));
    assert_eq!((s.file_end, s.tail), (0x203000, 0xf10));
    assert_eq!(s.end, 0x304000);
    // bss starting on a page boundary: no page to read in.
    let s = segment(&load(PF_R | PF_W, 0x1000, 0x1000, 0x1000, 0x3000), PAGE);
    assert_eq!((s.file_end, s.tail, s.end), (0x2000, 0, 0x4000));
    // No file data at all: the whole segment is anonymous.
    let s = segment(&load(PF_R | PF_W, 0, 0x5000, 0, 0x2000), PAGE);
    assert_eq!((s.start, s.file_end, s.tail, s.end), (0x5000, 0x5000, 0, 0x7000));
}

#[test]
fn read_only_segments_keep_their_last_file_page_as_the_kernel_does() {
    // The kernel's padzero() fails (ignored) on a page that is not
    // writable: the file's bytes after p_filesz stay. No tail is read.
    let s = segment(&load(PF_R | PF_X, 0x1000, 0x1000, 0x10, 0x2000), PAGE);
    assert_eq!(
        (s.prot, s.file_end, s.tail, s.end),
        (PROT_READ | PROT_EXEC, 0x2000, 0, 0x3000)
    );
    let s = segment(&load(PF_R, 0x1000, 0x1000, 0x10, 0x20), PAGE);
    assert_eq!((s.file_end, s.tail, s.end), (0x2000, 0, 0x2000));
    // Without bss the partial page stays file-backed and nothing is read.
    let s = segment(&load(PF_R | PF_W, 0x1000, 0x1000, 0x10, 0x10), PAGE);
    assert_eq!((s.file_end, s.tail), (0x2000, 0));
}

#[test]
fn fixed_and_aligned_images() {
    let mut phs = ldso_like();
    for p in &mut phs {
        p.p_vaddr += 0x400000;
    }
    let img = image(ET_EXEC, 0x41ab70, &phs, 0x34110);
    let p = run(&img).unwrap();
    assert!(p.fixed);
    assert_eq!(p.reserve, Reserve::FirstSegment);
    assert_eq!((p.span_start, p.phdr), (0x400000, 0x400040));
    // p_align does not move a fixed-address image.
    phs[1].p_align = 0x20_0000;
    let p = run(&image(ET_EXEC, 0x41ab70, &phs, 0x34110)).unwrap();
    assert_eq!((p.align, p.reserve), (PAGE, Reserve::FirstSegment));

    let mut phs = ldso_like();
    phs[1].p_align = 0x20_0000;
    phs[2].p_align = 3; // not a power of two: ignored, as the kernel does
    phs[3].p_align = 0x30_0000; // larger, but not a power of two either
    let p = run(&image(ET_DYN, 0x1ab70, &phs, 0x34110)).unwrap();
    assert_eq!((p.align, p.reserve), (0x20_0000, Reserve::Aligned));
    // Only page-aligned or larger powers of two count; the largest wins,
    // in any order.
    phs[0].p_align = 0x40_0000;
    phs[3].p_align = 0x10_0000;
    assert_eq!(run(&image(ET_DYN, 0x1ab70, &phs, 0x34110)).unwrap().align, 0x40_0000);
}

#[test]
fn a_segment_may_end_at_the_address_limit_and_not_past_it() {
    // The user address space of x86-64 ends at 0x7fff_ffff_f000. A data
    // segment ending there (or inside its last page) passes the per-segment
    // check, so the image fails only as a whole (span plus alignment);
    // one byte past it fails the segment.
    for (memsz, want) in [
        (0x2700, Reason::SpanTooBig),
        (0x26ff, Reason::SpanTooBig),
        (0x2701, Reason::AddrOverflow),
    ] {
        let mut phs = ldso_like();
        phs[3].p_vaddr = 0x7fff_ffff_c900;
        phs[3].p_filesz = 0x2000;
        phs[3].p_memsz = memsz;
        assert_eq!(
            reason(&image(ET_DYN, 0x1ab70, &phs, 0x34110)),
            want,
            "p_memsz {memsz:#x}"
        );
    }
}

#[test]
fn pt_phdr_wins_and_unmapped_headers_are_refused() {
    let mut phs = ldso_like();
    phs.push(Phdr {
        p_type: PT_PHDR,
        p_vaddr: 0x40,
        ..Default::default()
    });
    assert_eq!(run(&image(ET_DYN, 0x1ab70, &phs, 0x34110)).unwrap().phdr, 0x40);
    let mut phs = ldso_like();
    phs[0].p_offset = 0x1000;
    phs[0].p_vaddr = 0x0;
    phs[0].p_filesz = 0;
    phs[0].p_memsz = 0x1000;
    assert_eq!(reason(&image(ET_DYN, 0x1ab70, &phs, 0x34110)), Reason::PhdrsUnmapped);
}

#[test]
fn every_bad_program_header_is_refused() {
    let size = 0x34110;
    let cases: &[(PhdrMutation, Reason)] = &[
        (
            &|p| {
                p.insert(
                    0,
                    Phdr {
                        p_type: PT_INTERP,
                        ..Default::default()
                    },
                )
            },
            Reason::Interp,
        ),
        (&|p| p[3].p_filesz = p[3].p_memsz + 1, Reason::FileszMemsz),
        (&|p| p[3].p_offset += 8, Reason::Congruence),
        (&|p| p[3].p_filesz += 0x10_0000, Reason::FileszMemsz),
        (&|p| p[2].p_filesz = 0x20_0000, Reason::FileszMemsz),
        (
            &|p| {
                p[2].p_filesz = 0x20_0000;
                p[2].p_memsz = 0x20_0000
            },
            Reason::PastEof,
        ),
        (&|p| p[3].p_offset = u64::MAX - 0xfff + 0x900, Reason::OffsetOverflow),
        (&|p| p[3].p_memsz = u64::MAX - 0x1000, Reason::AddrOverflow),
        (&|p| p[3].p_vaddr = 0x7fff_ffff_f900, Reason::AddrOverflow),
        (&|p| p[2].p_vaddr = 0x1000, Reason::Overlap),
        (&|p| p.swap(1, 2), Reason::Overlap),
        (&|p| p[3].p_flags |= PF_X, Reason::WriteExec),
        (&|p| p.retain(|p| p.p_type != PT_LOAD), Reason::NoLoad),
        (&|p| p[1].p_flags = PF_R, Reason::EntryOutside),
        (&|p| p[3].p_align = 1 << 62, Reason::SpanTooBig),
    ];
    for (mutate, want) in cases {
        let mut phs = ldso_like();
        mutate(&mut phs);
        let got = run(&image(ET_DYN, 0x1ab70, &phs, size));
        let err = got.expect_err(&want.text().to_string());
        assert_eq!(err.reason(), *want, "got {err:?}");
    }
}

#[test]
fn fixed_image_at_page_zero_is_refused() {
    assert_eq!(
        reason(&image(ET_EXEC, 0x1ab70, &ldso_like(), 0x34110)),
        Reason::PageZero
    );
}

#[test]
fn bad_page_size() {
    let img = image(ET_DYN, 0x1ab70, &ldso_like(), 0x34110);
    let ehdr = parse_ehdr::<X86_64>(&img, img.len() as u64).unwrap();
    let e = plan::<X86_64>(&ehdr, &img[64..], img.len() as u64, 3000).unwrap_err();
    assert_eq!(e.reason(), Reason::PageSize);
}

#[test]
fn every_bad_file_header_is_refused() {
    let good = image(ET_DYN, 0x1ab70, &ldso_like(), 0x34110);
    let cases: &[(ByteMutation, Reason)] = &[
        (&|b| b[0] = b'X', Reason::BadMagic),
        (&|b| b.truncate(3), Reason::BadMagic),
        (&|b| b[4] = 1, Reason::Class32),
        (&|b| b[4] = 9, Reason::BadClass),
        (&|b| b[5] = 2, Reason::BigEndian),
        (&|b| b[5] = 0, Reason::BadData),
        (&|b| b.truncate(40), Reason::Truncated),
        (&|b| b[16] = 1, Reason::EtRel),
        (&|b| b[16] = 4, Reason::EtCore),
        (&|b| b[16] = 7, Reason::BadType),
        (&|b| b[18] = 3, Reason::Machine),
        (&|b| b[54] = 32, Reason::Phentsize),
        (
            &|b| {
                b[56] = 0;
                b[57] = 0
            },
            Reason::NoPhdrs,
        ),
        (
            &|b| {
                b[56] = 0xff;
                b[57] = 0xff
            },
            Reason::TooManyPhdrs,
        ),
        (
            &|b| b[32..40].copy_from_slice(&0x34100u64.to_le_bytes()),
            Reason::PhdrsOutside,
        ),
        (
            &|b| b[32..40].copy_from_slice(&u64::MAX.to_le_bytes()),
            Reason::PhdrsOutside,
        ),
    ];
    for (mutate, want) in cases {
        let mut b = good.clone();
        mutate(&mut b);
        let size = b.len() as u64;
        let err = parse_ehdr::<X86_64>(&b, size).expect_err(&want.text().to_string());
        assert_eq!(err.reason(), *want, "got {err:?}");
    }
    assert_eq!(parse_ehdr::<X86_64>(b"", 0).unwrap_err().reason(), Reason::EmptyFile);
    // A 64-bit image is the wrong class for an i386 loader, and vice versa.
    assert_eq!(
        parse_ehdr::<I386>(&good, good.len() as u64).unwrap_err().reason(),
        Reason::Class64
    );
}

/// Whether every test must run (CI, as in `tests/support`): a missing
/// input is then a failure, not a skip.
fn strict() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("LDCHAIN_REQUIRE_ALL").is_some()
}

/// A loud SKIP locally, a failure under [`strict`].
fn skip(why: &str) {
    assert!(
        !strict(),
        "this test cannot run here, and CI requires every test: {why}"
    );
    std::eprintln!("\n*** SKIP: {why} ***\n");
}

/// `int main(void) { return 0; }` built by `compiler` with `flags`, or None
/// (after [`skip`]) when the compiler is missing.
fn compile_static(compiler: &str, flags: &[&str]) -> Option<Vec<u8>> {
    let dir = std::env::temp_dir().join(std::format!("ldchain-plan-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("main.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let out = dir.join(std::format!("prog{}", flags.join("")));
    match std::process::Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
    {
        Ok(st) => assert!(st.success(), "{compiler} {flags:?} failed"),
        Err(e) => {
            skip(&std::format!("{compiler}: {e} (.ci/run installs it)"));
            return None;
        }
    }
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Some(bytes)
}

#[test]
fn host_ldso_and_static_layouts_are_accepted() {
    // The host's dynamic linkers must plan cleanly, at a kernel-chosen address.
    for path in ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1"] {
        let Ok(bytes) = std::fs::read(path) else {
            skip(&std::format!("{path} is not installed (.ci/run installs it)"));
            continue;
        };
        let p = run(&bytes).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert!(!p.fixed, "{path}");
        assert!(p.span_len > 0);
    }
    // Static layouts as the toolchains produce them: ET_EXEC at its own
    // addresses, static PIE anywhere.
    for (compiler, flags, fixed) in [
        ("gcc", &["-static"][..], true),
        ("gcc", &["-static-pie"][..], false),
        ("musl-gcc", &["-static"][..], true),
    ] {
        let Some(bytes) = compile_static(compiler, flags) else {
            continue;
        };
        let p = run(&bytes).unwrap_or_else(|e| panic!("{compiler} {flags:?}: {e:?}"));
        assert_eq!(p.fixed, fixed, "{compiler} {flags:?}");
        assert!(p.span_len > 0, "{compiler} {flags:?}");
        let entry = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
        assert_eq!(p.entry, entry, "{compiler} {flags:?}: the entry point is the file's");
    }
}

#[test]
fn every_flag_combination_maps_to_its_protection() {
    for flags in 0..8u32 {
        let want = if flags & PF_R != 0 { PROT_READ } else { 0 }
            | if flags & PF_W != 0 { PROT_WRITE } else { 0 }
            | if flags & PF_X != 0 { PROT_EXEC } else { 0 };
        assert_eq!(prot_of(flags), want, "flags {flags:#x}");
        // Other bits (PF_MASKOS, PF_MASKPROC) change nothing.
        assert_eq!(prot_of(flags | 0xf000_0000 | 0x0ff0_0000), want, "flags {flags:#x}");
    }
}
