//! x86-64: entry stub, system calls, final jump.
//!
//! # Safety
//!
//! Everything here is inline assembly. The contracts are the System V x86-64
//! psABI (process entry: `%rsp` 16-byte aligned and pointing at `argc`,
//! `%rdx` an atexit function or 0) and the Linux system-call convention
//! (number in `%rax`, arguments in `%rdi %rsi %rdx %r10 %r8 %r9`, `%rcx` and
//! `%r11` clobbered, result in `%rax`, -4095..-1 meaning -errno).
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};

/// Stack alignment the ABI requires at process entry.
pub const STACK_ALIGN: usize = 16;

// The kernel enters here with %rsp -> argc. We hand the Rust side the
// original stack pointer. The 64 bytes left free below it let the stack
// rewrite slide argv/envp/auxv down for alignment without touching a live
// frame (not needed on x86-64, where dropping two words keeps 16-byte
// alignment, but kept uniform across architectures).
global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",       // outermost frame: no frame pointer chain
    "mov rdi, rsp",       // arg 1: the kernel's stack (argc, argv, ...)
    "sub rsp, 64",        // keep a gap under the original stack
    "and rsp, -16",       // ABI alignment before the call
    "call ldchain_start", // never returns (rt/start.rs)
    "ud2",
);

/// `syscallN(nr, args…)`: a raw system call with N arguments, returning the
/// kernel's value. Each arity has its own `asm!`, so a call loads only the
/// registers its system call reads.
///
/// # Safety (of the generated functions)
/// The caller must pass arguments valid for system call `nr` (pointers to
/// memory of the right size, and so on).
macro_rules! syscalls {
    ($($name:ident($($arg:ident: $reg:tt),*);)*) => {$(
        #[inline(always)]
        pub unsafe fn $name(nr: u32, $($arg: usize),*) -> isize {
            let ret: isize;
            // SAFETY: the Linux x86-64 system-call convention; the caller
            // vouches for the arguments. rcx and r11 are clobbered by `syscall`.
            unsafe {
                asm!(
                    "syscall",
                    inlateout("rax") nr as isize => ret,
                    $(in($reg) $arg,)*
                    lateout("rcx") _, lateout("r11") _,
                    options(nostack),
                );
            }
            ret
        }
    )*};
}

syscalls! {
    syscall1(a: "rdi");
    syscall2(a: "rdi", b: "rsi");
    syscall3(a: "rdi", b: "rsi", c: "rdx");
    syscall4(a: "rdi", b: "rsi", c: "rdx", d: "r10");
    syscall6(a: "rdi", b: "rsi", c: "rdx", d: "r10", e: "r8", f: "r9");
}

/// Hand the process to the loaded image: switch to `sp`, clear every other
/// register (as the kernel does at exec; `%rdx` = 0 means "no atexit
/// function"), and jump to `entry`.
///
/// # Safety
/// `sp` must point at a well-formed initial stack (argc, argv, envp, auxv)
/// aligned to [`STACK_ALIGN`], and `entry` must be the entry point of an
/// image mapped according to that stack's auxv.
pub unsafe fn jump(entry: usize, sp: usize) -> ! {
    // SAFETY: the caller guarantees the new stack and the image are ready;
    // nothing of ours is used after the jump.
    unsafe {
        asm!(
            "mov rsp, {sp}",
            "xor eax, eax", "xor ebx, ebx", "xor ecx, ecx", "xor edx, edx",
            "xor esi, esi", "xor edi, edi", "xor ebp, ebp",
            "xor r8d, r8d", "xor r9d, r9d", "xor r10d, r10d", "xor r11d, r11d",
            "xor r12d, r12d", "xor r13d, r13d", "xor r14d, r14d",
            "jmp r15",
            sp = in(reg) sp,
            in("r15") entry,
            options(noreturn),
        )
    }
}

/// Fill `len` bytes at `dst` with `byte` (`rep stosb`: never a libc call).
///
/// # Safety
/// `dst` must be valid for `len` bytes of writes.
#[inline(always)]
pub unsafe fn fill(dst: *mut u8, byte: u8, len: usize) {
    // SAFETY: the caller vouches for the destination range; DF is clear per ABI.
    unsafe {
        asm!("rep stosb", inout("rdi") dst => _, inout("rcx") len => _, in("al") byte, options(nostack));
    }
}

/// Copy `len` bytes from `src` to `dst`, front to back (`rep movsb`).
///
/// # Safety
/// Both ranges must be valid; if they overlap, `dst` must not be above `src`.
#[inline(always)]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, len: usize) {
    // SAFETY: the caller vouches for the ranges; DF is clear per ABI.
    unsafe {
        asm!("rep movsb", inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") len => _, options(nostack));
    }
}
