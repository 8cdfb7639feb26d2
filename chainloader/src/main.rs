//! `/chainloader FD ARG0 [ARGS...]`: `fexecve()` in user space.
//!
//! A freestanding static PIE (no libc, no dynamic linker, no fixed address).
//! The decisions live in the `chainloader` library (pure, host-tested); this
//! binary is the runtime that acts on them. Build it through `embed/build.rs`
//! (it needs `-nostartfiles -static-pie` and `panic = "abort"`).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[cfg_attr(target_arch = "x86_64", path = "arch/x86_64.rs")]
#[cfg_attr(target_arch = "x86", path = "arch/x86.rs")]
#[cfg_attr(target_arch = "aarch64", path = "arch/aarch64.rs")]
mod arch;
// The 64-bit ABIs' file-offset calls, over the architecture's raw ones.
#[cfg(target_pointer_width = "64")]
#[path = "arch/lp64.rs"]
mod lp64;
mod rt;

/// No code path is meant to panic (the library checks every access); should
/// one, fail like any other error rather than fault.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    rt::sys::say_and_exit(b"internal error: panic")
}
