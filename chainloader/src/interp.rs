//! Interp mode: the chainloader was run by the kernel as a program's
//! `PT_INTERP`. The kernel has mapped the program already; these pure
//! functions find what the exec service needs to know about it.

use crate::elf::{phdr, phdr_type, Arch, Word, PT_INTERP, PT_LOAD, PT_PHDR};
use crate::proto::MAX_PATH;
use crate::{Error, Reason, Subject};

/// Where the program's `PT_INTERP` string lies in memory: `(address,
/// length)`, the length counting the bytes up to the first NUL (the kernel
/// opened the path as a C string).
///
/// `table` is the program header table the kernel mapped (`AT_PHDR`,
/// `AT_PHNUM` entries of `AT_PHENT` bytes), `at_phdr` its address. The load
/// bias comes from `PT_PHDR`, as glibc's ld.so takes it (0 without one: a
/// fixed-address program). The string must lie inside the file-backed part
/// of a `PT_LOAD`, so that reading it cannot fault.
pub fn locate<A: Arch>(table: &[u8], phnum: u16, at_phdr: usize) -> Result<(usize, usize), Error> {
    let bad = Error::new(Subject::Image, Reason::NoInterp);
    let mut bias = A::Word::ZERO;
    let mut interp = None;
    for i in 0..phnum {
        match phdr_type::<A>(table, i) {
            PT_PHDR => bias = A::Word::from_u64(at_phdr as u64).wrapping_sub(phdr::<A>(table, i).p_vaddr),
            PT_INTERP if interp.is_none() => interp = Some(phdr::<A>(table, i)),
            _ => {}
        }
    }
    let interp = interp.ok_or(bad)?;
    let (start, len) = (interp.p_vaddr, interp.p_filesz);
    if len == A::Word::ZERO || len.to_u64() > u64::from(MAX_PATH) {
        return Err(bad);
    }
    let end = start.checked_add(len).ok_or(bad)?;
    let inside = (0..phnum).any(|i| {
        let p = phdr::<A>(table, i);
        p.p_type == PT_LOAD && p.p_vaddr <= start && p.p_vaddr.checked_add(p.p_filesz).is_some_and(|e| end <= e)
    });
    if !inside {
        return Err(bad);
    }
    Ok((bias.wrapping_add(start).to_usize(), len.to_usize()))
}

/// The path in a `PT_INTERP` string: up to its first NUL, which the kernel
/// requires in the last byte.
pub fn path(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::elf::{PF_R, PF_X};
    use crate::machine::X86_64;

    fn phdr64(p_type: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64) -> [u8; 56] {
        let mut e = [0u8; 56];
        e[0..4].copy_from_slice(&p_type.to_le_bytes());
        e[4..8].copy_from_slice(&flags.to_le_bytes());
        e[8..16].copy_from_slice(&off.to_le_bytes());
        e[16..24].copy_from_slice(&vaddr.to_le_bytes());
        e[32..40].copy_from_slice(&filesz.to_le_bytes());
        e[40..48].copy_from_slice(&memsz.to_le_bytes());
        e
    }

    fn table(entries: &[[u8; 56]]) -> std::vec::Vec<u8> {
        entries.iter().flatten().copied().collect()
    }

    #[test]
    fn a_pie_program_with_pt_phdr() {
        let t = table(&[
            phdr64(PT_PHDR, PF_R, 64, 64, 56 * 3, 56 * 3),
            phdr64(PT_INTERP, PF_R, 0x200, 0x200, 28, 28),
            phdr64(PT_LOAD, PF_R | PF_X, 0, 0, 0x1000, 0x1000),
        ]);
        let base = 0x5555_0000_0000usize;
        assert_eq!(locate::<X86_64>(&t, 3, base + 64), Ok((base + 0x200, 28)));
    }

    #[test]
    fn a_fixed_address_program_without_pt_phdr() {
        let t = table(&[
            phdr64(PT_INTERP, PF_R, 0x200, 0x40_0200, 28, 28),
            phdr64(PT_LOAD, PF_R | PF_X, 0, 0x40_0000, 0x1000, 0x1000),
        ]);
        assert_eq!(locate::<X86_64>(&t, 2, 0x40_0040), Ok((0x40_0200, 28)));
    }

    #[test]
    fn interp_strings_that_could_fault_are_refused() {
        let load = phdr64(PT_LOAD, PF_R, 0, 0, 0x1000, 0x2000);
        let bad = Err(Error::new(Subject::Image, Reason::NoInterp));
        // No PT_INTERP at all.
        assert_eq!(locate::<X86_64>(&table(&[load]), 1, 0), bad);
        // In the bss (not file-backed), past every segment, empty, too long, wrapping.
        for (vaddr, len) in [
            (0x1800, 10),
            (0x3000, 10),
            (0x100, 0),
            (0x100, 4097),
            (u64::MAX - 4, 10),
        ] {
            let t = table(&[phdr64(PT_INTERP, PF_R, 0x100, vaddr, len, len), load]);
            assert_eq!(locate::<X86_64>(&t, 2, 0), bad, "vaddr {vaddr:#x} len {len}");
        }
        // Only the first PT_INTERP counts; phnum bounds the table.
        let t = table(&[phdr64(PT_INTERP, PF_R, 0x100, 0x100, 8, 8), load]);
        assert_eq!(locate::<X86_64>(&t, 1, 0), bad);
    }

    #[test]
    fn path_stops_at_the_first_nul() {
        assert_eq!(path(b"/lib64/ld-linux-x86-64.so.2\0"), b"/lib64/ld-linux-x86-64.so.2");
        assert_eq!(path(b"/a\0/b\0"), b"/a");
        assert_eq!(path(b"/no-nul"), b"/no-nul");
    }
}
