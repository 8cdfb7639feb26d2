//! i386: entry stub, system calls, final jump.
//!
//! # Safety
//!
//! Assembly against the i386 System V ABI (process entry: `%esp` 16-byte
//! aligned pointing at argc, `%edx` an atexit function or 0) and the Linux
//! `int $0x80` convention (number in `%eax`, arguments in `%ebx %ecx %edx
//! %esi %edi %ebp`, result in `%eax`, -4095..-1 meaning -errno). `%ebx` and
//! `%esi` cannot be inline-asm operands on i386 (LLVM reserves them), so
//! system calls go through a small `global_asm!` function that saves and
//! loads them itself.
#![allow(unsafe_code)]

use core::arch::{asm, global_asm};

use linux_raw_sys::general::{__NR_mmap2, __NR_pread64};

/// Stack alignment the ABI requires at process entry (the kernel gives 16;
/// glibc's i386 code relies on it for SSE).
pub const STACK_ALIGN: usize = 16;

// Call start(sp) with a cdecl argument on a 16-byte aligned stack, 64 bytes
// below the kernel's block. (i386 has no PC-relative data addressing; the
// compiler's own code reaches data through a call/pop thunk and GOTOFF
// offsets, which need no run-time relocation.)
global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xorl %ebp, %ebp", // outermost frame
    "movl %esp, %eax", // the kernel's stack
    "subl $64, %esp",  // room under the kernel's block
    "andl $-16, %esp",
    "subl $12, %esp", // 1 arg + 12 = 16: aligned at the call
    "pushl %eax",     // arg 1: sp
    "call ldchain_start",
    "ud2",
    "",
    // isize __chainloader_syscallN(nr, args...), cdecl. One body for every
    // arity: it loads all six argument registers, and the kernel ignores
    // those past the call's own arguments. For a short call they come from
    // the caller's frame above its arguments: at most 20 bytes, always
    // mapped (every caller runs below start's frame and the 64-byte gap).
    ".globl __chainloader_syscall1, __chainloader_syscall2, __chainloader_syscall3",
    ".globl __chainloader_syscall5, __chainloader_syscall6",
    ".hidden __chainloader_syscall1, __chainloader_syscall2, __chainloader_syscall3",
    ".hidden __chainloader_syscall5, __chainloader_syscall6",
    "__chainloader_syscall1:",
    "__chainloader_syscall2:",
    "__chainloader_syscall3:",
    "__chainloader_syscall5:",
    "__chainloader_syscall6:",
    "pushl %ebp",
    "pushl %edi",
    "pushl %esi",
    "pushl %ebx",
    "movl 20(%esp), %eax", // nr
    "movl 24(%esp), %ebx", // a
    "movl 28(%esp), %ecx", // b
    "movl 32(%esp), %edx", // c
    "movl 36(%esp), %esi", // d
    "movl 40(%esp), %edi", // e
    "movl 44(%esp), %ebp", // f
    "int $0x80",
    "popl %ebx",
    "popl %esi",
    "popl %edi",
    "popl %ebp",
    "ret",
    options(att_syntax),
);

extern "C" {
    fn __chainloader_syscall1(nr: usize, a: usize) -> isize;
    fn __chainloader_syscall2(nr: usize, a: usize, b: usize) -> isize;
    fn __chainloader_syscall3(nr: usize, a: usize, b: usize, c: usize) -> isize;
    fn __chainloader_syscall5(nr: usize, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize;
    fn __chainloader_syscall6(nr: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize;
}

/// `syscallN(nr, args…)`: a raw system call with N arguments, returning the
/// kernel's value; the caller pushes only those N.
///
/// # Safety (of the generated functions)
/// The caller must pass arguments valid for system call `nr`.
macro_rules! syscalls {
    ($($name:ident => $stub:ident($($arg:ident),*);)*) => {$(
        #[inline(always)]
        pub unsafe fn $name(nr: u32, $($arg: usize),*) -> isize {
            // SAFETY: the stub implements the int $0x80 convention; the
            // caller vouches for the arguments.
            unsafe { $stub(nr as usize, $($arg),*) }
        }
    )*};
}

syscalls! {
    syscall1 => __chainloader_syscall1(a);
    syscall2 => __chainloader_syscall2(a, b);
    syscall3 => __chainloader_syscall3(a, b, c);
    syscall5 => __chainloader_syscall5(a, b, c, d, e);
    syscall6 => __chainloader_syscall6(a, b, c, d, e, f);
}

/// `mmap2(2)`: the offset, in bytes here, must be page-aligned (the kernel
/// takes it in 4096-byte units).
///
/// # Safety
/// As for the raw system calls; with `MAP_FIXED` the caller must own the range.
#[inline(always)]
pub unsafe fn mmap(addr: usize, len: usize, prot: usize, flags: usize, fd: usize, offset: u64) -> isize {
    // SAFETY: forwarded contract.
    unsafe { syscall6(__NR_mmap2, addr, len, prot, flags, fd, (offset >> 12) as usize) }
}

/// `pread64(2)`: the 64-bit offset goes in two registers, low word first.
///
/// # Safety
/// `buf` must be valid for `len` bytes of writes.
#[inline(always)]
pub unsafe fn pread(fd: usize, buf: *mut u8, len: usize, offset: u64) -> isize {
    // SAFETY: forwarded contract.
    unsafe {
        syscall5(
            __NR_pread64,
            fd,
            buf as usize,
            len,
            offset as u32 as usize,
            (offset >> 32) as usize,
        )
    }
}

/// Hand the process to the loaded image: switch to `sp`, clear the
/// registers (`%edx` = 0: no atexit function) and jump to `entry`.
///
/// # Safety
/// As for the x86-64 version: `sp` is a well-formed, aligned initial stack
/// and `entry` the entry point of the image it describes.
pub unsafe fn jump(entry: usize, sp: usize) -> ! {
    // SAFETY: the caller guarantees the new stack and the image are ready.
    unsafe {
        asm!(
            "mov esp, {sp}",
            "xor ebx, ebx", "xor ecx, ecx", "xor edx, edx",
            "xor esi, esi", "xor edi, edi", "xor ebp, ebp",
            "jmp eax",
            sp = in(reg) sp,
            in("eax") entry,
            options(noreturn),
        )
    }
}

/// Fill `len` bytes at `dst` with `byte`.
///
/// # Safety
/// `dst` must be valid for `len` bytes of writes.
#[inline(always)]
pub unsafe fn fill(dst: *mut u8, byte: u8, len: usize) {
    // SAFETY: the caller vouches for the range; DF is clear per ABI.
    unsafe {
        asm!("rep stosb", inout("edi") dst => _, inout("ecx") len => _, in("al") byte, options(nostack));
    }
}

/// Copy `len` bytes from `src` to `dst`, front to back (a byte loop: `%esi`
/// is not available to inline assembly here).
///
/// # Safety
/// Both ranges must be valid; if they overlap, `dst` must not be above `src`.
#[inline(always)]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, len: usize) {
    let mut i = 0;
    while i < len {
        // SAFETY: i < len, within both ranges; volatile keeps the compiler
        // from turning this loop into a call to memcpy (that is us).
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        i += 1;
    }
}
