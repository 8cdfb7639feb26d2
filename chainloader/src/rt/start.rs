//! The program: from the kernel's stack to the loaded image's entry point.
//!
//! ```text
//! parse FD -> pread headers -> check + plan
//! -> map segments -> close FD -> set comm -> patch auxv -> drop 2 args -> jump
//! ```
//!
//! # Safety
//!
//! [`start`] is called exactly once, by the entry stub, with the kernel's
//! stack pointer.
#![allow(unsafe_code)]

use chainloader::args::{basename, parse_fd, USAGE};
use chainloader::error::{render, EXIT_FAILURE};
use chainloader::{Error, Reason, Subject};

use crate::rt::load::map_fd;
use crate::rt::stack::Stack;
use crate::rt::sys;

/// Entered from the architecture's entry stub, which calls it by this
/// symbol name (as a C runtime's `_start` calls `main`: the stub names no
/// Rust path, so `arch` depends on nothing above it). The program has no
/// dynamic relocations (embed/build.rs refuses to embed one that has), so
/// nothing needs fixing up before Rust code runs.
///
/// # Safety
/// See the module docs.
#[export_name = "ldchain_start"]
pub unsafe extern "C" fn start(sp: *mut usize) -> ! {
    // SAFETY: sp is the kernel's initial stack pointer.
    let mut stack = unsafe { Stack::new(sp) };
    // The kernel ran us as a program's PT_INTERP: it gave us our own base.
    if stack.slot(4) != 0 {
        match crate::rt::interp::run(&mut stack) {
            // SAFETY: ld.so is mapped and AT_BASE points at it; the stack is
            // the kernel's, untouched but for that value.
            Ok(entry) => unsafe { crate::arch::jump(entry, sp as usize) },
            Err(err) => fail(&err, b""),
        }
    }
    if stack.argc() < 3 {
        sys::write_all(2, USAGE.as_bytes());
        sys::exit(EXIT_FAILURE);
    }
    match run(&mut stack) {
        Ok(entry) => {
            let sp = stack.drop_args(2);
            // SAFETY: the image is mapped and the auxv describes it; sp is
            // the kernel's stack minus our two arguments, ABI-aligned.
            unsafe { crate::arch::jump(entry, sp) }
        }
        Err(err) => fail(&err, stack.arg(1)),
    }
}

/// Print the one line for `err` and exit 127.
pub fn fail(err: &Error, fd_arg: &[u8]) -> ! {
    // 128 bytes hold the longest line (a 40-byte FD echo and the longest
    // reason), and are cleared inline, without a memset call.
    let mut buf = [0u8; 128];
    sys::write_all(2, render(err, fd_arg, &mut buf));
    sys::exit(EXIT_FAILURE)
}

fn run(stack: &mut Stack) -> Result<usize, Error> {
    let fd = parse_fd(stack.arg(1))?;
    let entry = map_fd(fd, stack, false)?;

    // comm: the basename of ARG0, as the kernel would have set it. The
    // kernel copies at most 15 bytes from the pointer, up to the NUL, so the
    // basename inside argv[2] itself will do; only an ARG0 ending in '/'
    // needs its basename copied out first.
    let mut copy = [0u8; 16];
    let name = match stack.basename_of(2) {
        Some(ptr) => ptr,
        None => {
            for (slot, &c) in copy.iter_mut().zip(basename(stack.arg(2)).iter().take(15)) {
                *slot = c;
            }
            copy.as_ptr()
        }
    };
    // SAFETY: name points at a NUL-terminated string (inside argv[2], or copy).
    unsafe { sys::set_name(name) }.map_err(|e| Error::sys(Subject::Image, Reason::SetName, e))?;
    Ok(entry)
}
