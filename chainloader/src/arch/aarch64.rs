//! AArch64: entry stub, system calls, final jump.
//!
//! # Safety
//!
//! Assembly against the AArch64 ELF ABI for Linux (process entry: `sp`
//! 16-byte aligned pointing at argc, `x0` a function to register with atexit
//! or 0) and the `svc #0` convention (number in `x8`, arguments in `x0`–`x5`,
//! result in `x0`, -4095..-1 meaning -errno).
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};

/// Stack alignment the ABI requires (always, not only at entry).
pub const STACK_ALIGN: usize = 16;

global_asm!(
    ".globl _start",
    ".type _start,%function",
    "_start:",
    "mov x29, #0",     // outermost frame
    "mov x30, #0",     // no return address
    "mov x0, sp",      // arg 1: the kernel's stack
    "sub x3, x0, #64", // room under the kernel's block
    "and sp, x3, #-16",
    "bl ldchain_start",
    "brk #0",
);

/// `syscallN(nr, args…)`: a raw system call with N arguments, returning the
/// kernel's value. Each arity has its own `asm!`, so a call loads only the
/// registers its system call reads.
///
/// # Safety (of the generated functions)
/// The caller must pass arguments valid for system call `nr`.
macro_rules! syscalls {
    ($($name:ident(a $(, $arg:ident: $reg:tt)*);)*) => {$(
        #[inline(always)]
        pub unsafe fn $name(nr: u32, a: usize $(, $arg: usize)*) -> isize {
            let ret: isize;
            // SAFETY: the Linux AArch64 system-call convention; the caller
            // vouches for the arguments.
            unsafe {
                asm!(
                    "svc #0",
                    in("x8") nr as usize,
                    inlateout("x0") a as isize => ret,
                    $(in($reg) $arg,)*
                    options(nostack),
                );
            }
            ret
        }
    )*};
}

syscalls! {
    syscall1(a);
    syscall2(a, b: "x1");
    syscall3(a, b: "x1", c: "x2");
    syscall4(a, b: "x1", c: "x2", d: "x3");
    syscall6(a, b: "x1", c: "x2", d: "x3", e: "x4", f: "x5");
}

/// Hand the process to the loaded image: switch to `sp`, clear every
/// general register (`x0` = 0: no atexit function) and branch to `entry`.
///
/// # Safety
/// `sp` is a well-formed, aligned initial stack and `entry` the entry point
/// of the image it describes.
pub unsafe fn jump(entry: usize, sp: usize) -> ! {
    // SAFETY: the caller guarantees the new stack and the image are ready.
    unsafe {
        asm!(
            "mov sp, {sp}",
            "mov x0, #0", "mov x1, #0", "mov x2, #0", "mov x3, #0", "mov x4, #0", "mov x5, #0",
            "mov x6, #0", "mov x7, #0", "mov x8, #0", "mov x9, #0", "mov x10, #0", "mov x11, #0",
            "mov x12, #0", "mov x13, #0", "mov x14, #0", "mov x15, #0", "mov x17, #0",
            "mov x18, #0", "mov x19, #0", "mov x20, #0", "mov x21, #0", "mov x22, #0", "mov x23, #0",
            "mov x24, #0", "mov x25, #0", "mov x26, #0", "mov x27, #0", "mov x28, #0", "mov x29, #0",
            "mov x30, #0",
            "br x16",
            sp = in(reg) sp,
            in("x16") entry,
            options(noreturn),
        )
    }
}

/// Fill `len` bytes at `dst` with `byte` (a volatile loop, so the compiler
/// cannot turn it into a call to `memset`, which is us).
///
/// # Safety
/// `dst` must be valid for `len` bytes of writes.
#[inline(always)]
pub unsafe fn fill(dst: *mut u8, byte: u8, len: usize) {
    let mut i = 0;
    while i < len {
        // SAFETY: i < len, inside the caller's range.
        unsafe { dst.add(i).write_volatile(byte) };
        i += 1;
    }
}

/// Copy `len` bytes from `src` to `dst`, front to back.
///
/// # Safety
/// Both ranges must be valid; if they overlap, `dst` must not be above `src`.
#[inline(always)]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, len: usize) {
    let mut i = 0;
    while i < len {
        // SAFETY: i < len, within both ranges.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        i += 1;
    }
}
