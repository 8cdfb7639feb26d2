//! The initial process stack the kernel built: reading it, patching the
//! auxiliary vector, and dropping our own two arguments.
//!
//! Layout (one word per slot, from the stack pointer up):
//! `argc, argv[0..argc], NULL, envp..., NULL, (type, value)..., AT_NULL, 0`,
//! then the strings. We never move or rewrite the strings; only `argc`, the
//! `argv` array, and a few auxv values change.
//!
//! # Safety
//!
//! [`Stack::new`] trusts its pointer to be the kernel's initial stack pointer;
//! all other accesses stay inside the arrays it measured.
#![allow(unsafe_code)]

use crate::arch;

use linux_raw_sys::auxvec;

// The auxv keys we read or patch, as stack words.
const AT_NULL: usize = auxvec::AT_NULL as usize;
const AT_PHDR: usize = auxvec::AT_PHDR as usize;
const AT_PHENT: usize = auxvec::AT_PHENT as usize;
const AT_PHNUM: usize = auxvec::AT_PHNUM as usize;
const AT_PAGESZ: usize = auxvec::AT_PAGESZ as usize;
const AT_BASE: usize = auxvec::AT_BASE as usize;
const AT_ENTRY: usize = auxvec::AT_ENTRY as usize;
pub const AT_SECURE: usize = auxvec::AT_SECURE as usize;
pub const AT_EXECFN: usize = auxvec::AT_EXECFN as usize;

const _: () = assert!(core::mem::size_of::<usize>() <= arch::STACK_ALIGN);
// after_last_slash reads words as bytes in address order from the low end.
const _: () = assert!(cfg!(target_endian = "little"));

/// The kernel's initial stack, measured in one pass.
pub struct Stack {
    sp: *mut usize,
    argc: usize,
    /// The first auxv pair.
    auxv: *mut usize,
    /// `AT_PAGESZ`, if the kernel gave it.
    page_size: Option<usize>,
    /// The value slots of `AT_PHDR`, `AT_PHENT`, `AT_PHNUM`, `AT_ENTRY`,
    /// `AT_BASE` (null where absent), so that describing the image needs no
    /// second walk.
    slots: [*mut usize; 5],
}

impl Stack {
    /// Measure the stack at `sp`.
    ///
    /// # Safety
    /// `sp` must be the stack pointer the kernel passed at process entry.
    pub unsafe fn new(sp: *mut usize) -> Stack {
        // SAFETY: the kernel's layout (module docs): argc, then argc+1
        // argv slots, then envp up to NULL, then auxv pairs up to AT_NULL.
        unsafe {
            let argc = *sp;
            let mut p = sp.add(argc + 2);
            while *p != 0 {
                p = p.add(1);
            }
            let auxv = p.add(1);
            // The value slot of each key below 10 (AT_PHDR 3, AT_PHENT 4,
            // AT_PHNUM 5, AT_PAGESZ 6, AT_BASE 7, AT_ENTRY 9), by key; a bit
            // of `found` says which slots were written (no table to clear).
            // Stop at AT_NULL, or as soon as those six are found (they come
            // early in the kernel's auxv, before uid, random bytes, ...).
            // Keys of 10 and up cost a compare each.
            const WANTED: usize =
                1 << AT_PHDR | 1 << AT_PHENT | 1 << AT_PHNUM | 1 << AT_PAGESZ | 1 << AT_BASE | 1 << AT_ENTRY;
            let mut by_key = [core::mem::MaybeUninit::<*mut usize>::uninit(); 10];
            let (mut a, mut found) = (auxv, 0usize);
            loop {
                let key = *a;
                if let Some(slot) = by_key.get_mut(key) {
                    if key == AT_NULL {
                        break;
                    }
                    slot.write(a.add(1));
                    found |= 1 << key;
                    if found & WANTED == WANTED {
                        break;
                    }
                }
                a = a.add(2);
            }
            // SAFETY (of assume_init): a slot is read only if its bit says
            // the walk wrote it.
            let slot = |key: usize| {
                if found & 1 << key != 0 {
                    by_key[key].assume_init()
                } else {
                    core::ptr::null_mut()
                }
            };
            let page: *mut usize = slot(AT_PAGESZ);
            let page_size = (!page.is_null()).then(|| *page);
            let slots = [
                slot(AT_PHDR),
                slot(AT_PHENT),
                slot(AT_PHNUM),
                slot(AT_ENTRY),
                slot(AT_BASE),
            ];
            Stack {
                sp,
                argc,
                auxv,
                page_size,
                slots,
            }
        }
    }

    /// Number of arguments.
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// Argument `i` (< argc), without its NUL.
    pub fn arg(&self, i: usize) -> &'static [u8] {
        if i >= self.argc {
            return b"";
        }
        // SAFETY: argv[i] for i < argc is a NUL-terminated string the kernel
        // copied above the arrays; we never modify the strings.
        unsafe { c_str(*self.sp.add(1 + i) as *const u8) }
    }

    /// Where the basename of argument `i` (< argc) starts inside the
    /// argument itself; None if the argument ends in `/` (its basename is
    /// then not a suffix of it).
    ///
    /// The kernel lays the argument strings out back to back (its
    /// `create_elf_tables` makes each argv pointer the previous one plus
    /// the previous string's length and NUL), so argument `i`'s NUL is the
    /// byte before argument `i + 1`: the basename is found by a scan back
    /// from there, over the basename alone. The last argument (or a layout
    /// that does not look like that) is scanned forwards instead.
    pub fn basename_of(&self, i: usize) -> Option<*const u8> {
        // SAFETY: argv[i] for i < argc is a NUL-terminated string the kernel
        // copied above the arrays (the caller checked argc); the backward
        // scan reads only bytes from argv[i] up to the NUL just before
        // argv[i + 1], checked to be there.
        unsafe {
            let start = *self.sp.add(1 + i) as *const u8;
            let next = if i + 1 < self.argc {
                *self.sp.add(2 + i) as *const u8
            } else {
                start
            };
            let mut end = next.wrapping_sub(1);
            if next <= start || end.read_volatile() != 0 {
                end = start;
                while end.read_volatile() != 0 {
                    end = end.add(1);
                }
            }
            let base = after_last_slash(start, end);
            (base != end || base == start).then_some(base)
        }
    }

    /// Auxv value `i` of the five found by `new` (`AT_PHDR`, `AT_PHENT`,
    /// `AT_PHNUM`, `AT_ENTRY`, `AT_BASE`), 0 where absent.
    pub fn slot(&self, i: usize) -> usize {
        match self.slots.get(i) {
            // SAFETY: a non-null slot points at an auxv value word found in `new`.
            Some(p) if !p.is_null() => unsafe { **p },
            _ => 0,
        }
    }

    /// The value of auxv entry `kind` (0 where absent), by a walk of the
    /// whole vector (interp mode only: command mode needs none).
    pub fn aux(&self, kind: usize) -> usize {
        // SAFETY: auxv pairs up to AT_NULL (measured in `new`).
        unsafe {
            let mut a = self.auxv;
            while *a != AT_NULL {
                if *a == kind {
                    return *a.add(1);
                }
                a = a.add(2);
            }
        }
        0
    }

    /// The value of the first environment entry `NAME=value`, if any.
    /// Each entry is compared with `NAME=` byte by byte, as far as they
    /// agree: no entry is measured unless it matches.
    pub fn env(&self, name: &[u8]) -> Option<&'static [u8]> {
        // SAFETY: envp starts after argv's NULL and ends with a NULL; each
        // entry is a NUL-terminated string the kernel copied, read up to
        // its first byte that differs from `name` (its NUL differs from
        // every byte of a name, and from '=').
        unsafe {
            let mut p = self.sp.add(self.argc + 2);
            while *p != 0 {
                let entry = *p as *const u8;
                let mut n = 0;
                while n < name.len() && entry.add(n).read_volatile() == name[n] {
                    n += 1;
                }
                if n == name.len() && entry.add(n).read_volatile() == b'=' {
                    return Some(c_str(entry.add(n + 1)));
                }
                p = p.add(1);
            }
        }
        None
    }

    /// `AT_PAGESZ`, if present.
    pub fn page_size(&self) -> Option<usize> {
        self.page_size
    }

    /// Point `AT_BASE` at the interpreter loaded at `base` (interp mode).
    pub fn set_base(&mut self, base: usize) {
        if !self.slots[4].is_null() {
            // SAFETY: a non-null slot points at an auxv value word found in `new`.
            unsafe { *self.slots[4] = base };
        }
    }

    /// Describe the loaded image in auxv: `AT_PHDR`, `AT_PHENT`, `AT_PHNUM`,
    /// `AT_ENTRY` and `AT_BASE` (0) get the values the kernel would have
    /// given had it exec'd the image itself. Absent entries stay absent (the
    /// kernel always provides these five).
    pub fn describe_image(&mut self, phdr: usize, phent: usize, phnum: usize, entry: usize) {
        let [at_phdr, at_phent, at_phnum, at_entry, at_base] = self.slots;
        // SAFETY: a non-null slot points at an auxv value word found in `new`.
        unsafe {
            set(at_phdr, phdr);
            set(at_phent, phent);
            set(at_phnum, phnum);
            set(at_entry, entry);
            set(at_base, 0);
        }
    }

    /// Remove `argv[0..n]` and return the new stack pointer: `argc - n`
    /// stored `n` words higher, so argv, envp, auxv and the strings stay
    /// where they are. If that breaks the ABI's stack alignment (i386:
    /// two 4-byte words), slide the whole word block down to the aligned
    /// address instead; the entry stub left room below the original stack.
    pub fn drop_args(self, n: usize) -> usize {
        // SAFETY: n < argc (checked by the caller), so sp + n is the slot of
        // argv[n - 1], inside the block; the slide stays within the block
        // and the gap the entry stub reserved below it.
        unsafe {
            let new_sp = self.sp.add(n);
            *new_sp = self.argc - n;
            let addr = new_sp as usize;
            let aligned = addr & !(arch::STACK_ALIGN - 1);
            if aligned != addr {
                // The block ends after the AT_NULL pair.
                let mut a = self.auxv;
                while *a != AT_NULL {
                    a = a.add(2);
                }
                let len = a.add(2) as usize - addr;
                arch::copy_forward(aligned as *mut u8, addr as *const u8, len);
            }
            aligned
        }
    }
}

/// Store `value` in the auxv value word at `slot`, unless it is null
/// (the entry is absent).
///
/// # Safety
/// `slot` is null or points at an auxv value word.
#[inline(always)]
unsafe fn set(slot: *mut usize, value: usize) {
    if !slot.is_null() {
        // SAFETY: the caller vouches for the slot.
        unsafe { *slot = value };
    }
}

/// Just past the last `/` in `start..end`, or `start` if there is none.
///
/// A word at a time, from the end (the basename is usually most of a path,
/// and this scan is on every exec's path): each aligned word holding a
/// byte of the range is read whole, and the bytes outside the range are
/// masked off.
///
/// # Safety
/// `start..end` must be readable, and `start <= end`.
unsafe fn after_last_slash(start: *const u8, end: *const u8) -> *const u8 {
    const W: usize = core::mem::size_of::<usize>();
    const ONES: usize = usize::MAX / 255;
    const LOW7: usize = ONES * 0x7f;
    const SLASHES: usize = ONES * b'/' as usize;
    let (s, e) = (start as usize, end as usize);
    if e == s {
        return start;
    }
    let mut w = (e - 1) & !(W - 1);
    // Bytes of the first word at or past `end` do not count (1 <= e - w <= W).
    let mut keep = usize::MAX.wrapping_shr((8 * (W - (e - w))) as u32);
    loop {
        // SAFETY: w is aligned and holds a byte of start..end, which the
        // caller vouches is readable: a word never straddles a page, so all
        // of it is readable. Little-endian: the byte at w + k is bits 8k...
        let x = unsafe { (w as *const usize).read_volatile() } ^ SLASHES;
        // The top bit of each byte of x that is zero (a '/'), exactly: no
        // borrow crosses bytes, unlike the (x - ONES) & !x trick.
        let slashes = !(((x & LOW7) + LOW7) | x | LOW7) & keep;
        if slashes != 0 {
            // The highest '/' in this word, and none above it: if it lies
            // below `start`, start..end has none.
            let after = w + (usize::BITS - 1 - slashes.leading_zeros()) as usize / 8 + 1;
            return if after > s { after as *const u8 } else { start };
        }
        if w <= s {
            return start;
        }
        w -= W;
        keep = usize::MAX;
    }
}

/// The bytes of the NUL-terminated string at `s`, without the NUL.
///
/// # Safety
/// `s` must point at a NUL-terminated string that outlives the program.
pub unsafe fn c_str(s: *const u8) -> &'static [u8] {
    // SAFETY: the caller vouches for the string.
    unsafe {
        let mut n = 0;
        while s.add(n).read_volatile() != 0 {
            n += 1;
        }
        core::slice::from_raw_parts(s, n)
    }
}
