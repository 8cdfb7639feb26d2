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
use chainloader::elf::{parse_ehdr, Word};
use chainloader::machine::Native;

use crate::rt::load::W;
use chainloader::error::{render, EXIT_FAILURE};
use chainloader::plan::{plan, Plan};
use chainloader::{Error, Reason, Subject};

use crate::rt::stack::Stack;
use crate::rt::sys::{self, MAP_ANONYMOUS, MAP_PRIVATE};
use chainloader::plan::{PROT_READ, PROT_WRITE};

const EISDIR: sys::Errno = linux_raw_sys::errno::EISDIR as sys::Errno;
const ESPIPE: sys::Errno = linux_raw_sys::errno::ESPIPE as sys::Errno;

/// Bytes read at offset 0: the file header and, for any ordinary image, the
/// program headers too (glibc's ld.so needs 64 + 9 * 56 = 568).
const HEAD: usize = 1024;

/// Entered from the architecture's entry stub. The program has no dynamic
/// relocations (embed/build.rs refuses to embed one that has), so nothing
/// needs fixing up before Rust code runs.
///
/// # Safety
/// See the module docs.
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
    let (bias, plan) = map_fd(fd, stack)?;

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

    // Describe the image as the kernel would have had it been exec'd directly.
    let entry = bias.wrapping_add(plan.entry.to_usize());
    stack.describe_image(
        bias.wrapping_add(plan.phdr.to_usize()),
        usize::from(plan.phent),
        usize::from(plan.phnum),
        entry,
    );
    Ok(entry)
}

/// Map the image open on `fd` as the kernel would, then close `fd`:
/// returns the load bias and the plan it followed.
#[inline(never)]
pub fn map_fd(fd: i32, stack: &Stack) -> Result<(usize, Plan<W>), Error> {
    let at_fd = |reason, e| Error::sys(Subject::Fd(fd), reason, e);

    // No fstat: pread says all we need. A directory fails with EISDIR, a
    // pipe or socket with ESPIPE, a device like /dev/zero yields no ELF
    // header; a read shorter than asked gives the file's size, and a longer
    // file is proven long enough by the loader's reads.
    // Not zero-initialised: only the `n` bytes pread fills are ever read.
    let mut buf = core::mem::MaybeUninit::<[u8; HEAD]>::uninit();
    // SAFETY: buf is HEAD writable bytes.
    let n = unsafe { sys::pread_raw(fd, buf.as_mut_ptr().cast(), HEAD, 0) }.map_err(|e| match e {
        EISDIR => Error::new(Subject::Fd(fd), Reason::IsDirectory),
        ESPIPE => Error::new(Subject::Fd(fd), Reason::NotRegular),
        e => at_fd(Reason::Read, e),
    })?;
    // SAFETY: pread_raw initialised the first n <= HEAD bytes.
    let head: &[u8] = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), n) };
    let size = if n < HEAD { n as u64 } else { u64::MAX };
    let ehdr = parse_ehdr::<Native>(head, size)?;

    let page = stack.page_size().unwrap_or(4096) as u64;
    let table_len = ehdr.phdr_table_len() as usize;
    let table_end = ehdr.phoff as usize + table_len;
    let mut big = None;
    let table: &[u8] = if table_end <= n {
        &head[ehdr.phoff as usize..table_end]
    } else {
        // Headers beyond the first HEAD bytes (or a table larger than it):
        // read them into a scratch mapping. At most 64 KiB (parse_ehdr).
        // SAFETY: a fresh anonymous mapping, not MAP_FIXED.
        let addr = unsafe { sys::mmap(0, table_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }
            .map_err(|e| at_fd(Reason::PhdrBuffer, e))?;
        // SAFETY: the mapping is table_len bytes, readable and writable, and
        // nothing else refers to it.
        let buf = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, table_len) };
        let got = sys::pread_full(fd, buf, ehdr.phoff).map_err(|e| at_fd(Reason::Read, e))?;
        if got != table_len {
            return Err(Error::new(Subject::ElfHeader, Reason::PhdrsOutside));
        }
        big = Some((addr, table_len));
        buf
    };
    let plan = plan::<Native>(&ehdr, table, size, page)?;
    let bias = crate::rt::load::load(fd, &plan, table, W::from_u64(page), size)?;
    if let Some((addr, len)) = big {
        // SAFETY: `table` (the only reference into it) is not used again.
        let _ = unsafe { sys::munmap(addr, len) };
    }
    sys::close(fd).map_err(|e| at_fd(Reason::Close, e))?;
    Ok((bias, plan))
}
