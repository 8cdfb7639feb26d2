//! Interp mode: the kernel ran the chainloader as a program's `PT_INTERP`.
//!
//! ```text
//! find PT_INTERP in the program the kernel mapped
//! -> not AT_SECURE: open the service's standing answer for this request
//!    (proto::ANSWER_DIR + proto::answer_name: PT_INTERP, LDSO_PATH,
//!    LD_LIBRARY_PATH, and the cwd and AT_EXECFN when they may matter); if
//!    it is there and loads, go to "jump"
//! -> getcwd -> connect to the exec service -> send what the resolver needs
//! -> receive one ld.so descriptor -> map it -> AT_BASE = its base -> jump
//! ```
//!
//! Nothing on the stack moves: argv, envp, `AT_PHDR`, `AT_ENTRY`,
//! `AT_EXECFN` and `AT_SECURE` stay the kernel's, so ld.so runs the program
//! as the interpreter the kernel would have started.
//!
//! # Safety
//!
//! The program header table and the `PT_INTERP` string are read from the
//! memory the kernel mapped for the program (`AT_PHDR`); [`interp::locate`]
//! checks that the string lies inside a file-backed `PT_LOAD`.
#![allow(unsafe_code)]

use core::mem::MaybeUninit;

// The request header is sent from its words' memory (`RequestHeader::words`).
const _: () = assert!(cfg!(target_endian = "little"));

use chainloader::elf::Arch;
use chainloader::interp;
use chainloader::machine::Native;
use chainloader::proto::{self, RequestHeader, FLAG_LDSO_PATH, FLAG_LD_LIBRARY_PATH, FLAG_SECURE};
use chainloader::{Error, Reason, Subject};

use crate::rt::stack::{c_str, Stack, AT_EXECFN, AT_SECURE};
use crate::rt::sys::{self, IoVec};

/// A buffer for the working directory (`PATH_MAX` bytes).
type CwdBuf = MaybeUninit<[u8; proto::MAX_PATH as usize]>;

/// Ask the exec service for the program's ld.so and map it; returns its
/// entry point (AT_BASE already points at it).
pub fn run(stack: &mut Stack) -> Result<usize, Error> {
    let (phdr, phent, phnum) = (stack.slot(0), stack.slot(1), stack.slot(2));
    if phent != Native::TARGET.phdr_size() || phnum == 0 || phnum > 0xffff {
        return Err(Error::new(Subject::Image, Reason::NoInterp));
    }
    // SAFETY: the kernel mapped the program's header table at AT_PHDR, with
    // AT_PHNUM entries of AT_PHENT bytes (checked just above).
    let table = unsafe { core::slice::from_raw_parts(phdr as *const u8, phent * phnum) };
    let (at, len) = interp::locate::<Native>(table, phnum as u16, phdr)?;
    // SAFETY: locate checked that the string lies in a file-backed PT_LOAD.
    let interp = interp::path(unsafe { core::slice::from_raw_parts(at as *const u8, len) });
    let execfn = match stack.aux(AT_EXECFN) {
        0 => &b""[..],
        // SAFETY: AT_EXECFN points at the NUL-terminated path the kernel
        // copied onto the stack.
        p => unsafe { c_str(p as *const u8) },
    };
    let vars = [stack.env(b"LDSO_PATH"), stack.env(b"LD_LIBRARY_PATH")];
    let secure = stack.aux(AT_SECURE) != 0;
    let mut cwd_buf = CwdBuf::uninit();
    // The working directory is looked up at most once: before the standing
    // answer if its name holds it, else only to ask.
    let mut cwd_len = None;
    if !secure {
        // Nothing but what the name holds can change the answer: take the
        // one the service left in ANSWER_DIR, if there is one and it loads.
        // The name holds the working directory only if a variable has a
        // relative entry or a `$` (proto::answer_needs).
        if proto::answer_needs(vars) & proto::NEEDS_CWD != 0 {
            cwd_len = Some(getcwd(&mut cwd_buf));
        }
        // SAFETY: getcwd initialised the first cwd_len bytes.
        let cwd = unsafe { cwd_of(&cwd_buf, cwd_len.unwrap_or(0)) };
        if let Some(entry) = answered(interp, vars, cwd, execfn, stack) {
            return Ok(entry);
        }
    }
    let cwd_len = match cwd_len {
        Some(len) => len,
        None => getcwd(&mut cwd_buf),
    };
    // SAFETY: getcwd initialised the first cwd_len bytes.
    let cwd = unsafe { cwd_of(&cwd_buf, cwd_len) };
    let parts: [&[u8]; 5] = [interp, execfn, cwd, vars[0].unwrap_or(b""), vars[1].unwrap_or(b"")];
    let mut lengths = [0u32; 5];
    for (slot, (part, max)) in lengths.iter_mut().zip(parts.iter().zip(proto::MAX_LENGTHS)) {
        if part.len() > max as usize {
            // Longer than execve itself would have accepted.
            return Err(Error::sys(Subject::Service, Reason::Send, E2BIG));
        }
        *slot = part.len() as u32;
    }
    let flags = (secure as u8 * FLAG_SECURE)
        | (vars[0].is_some() as u8 * FLAG_LDSO_PATH)
        | (vars[1].is_some() as u8 * FLAG_LD_LIBRARY_PATH);
    let header = RequestHeader {
        machine: Native::MACHINE.ident().1,
        class: Native::MACHINE.ident().0,
        flags,
        lengths,
    }
    .words();
    let fd = ask(&header, &parts)?;
    crate::rt::load::map_fd(fd, stack, true)
}

/// The working directory into `buf`: its length, 0 (sent empty) when it
/// cannot be named (deleted, or outside the root).
fn getcwd(buf: &mut CwdBuf) -> usize {
    // SAFETY: buf is MAX_PATH writable bytes; getcwd initialises the first
    // `len + 1` (the path and its NUL) on success.
    let len = unsafe { sys::getcwd(buf.as_mut_ptr().cast(), proto::MAX_PATH as usize) }.unwrap_or(0);
    // SAFETY: as above, the first len bytes are initialised.
    match unsafe { cwd_of(buf, len) }.first() {
        Some(b'/') => len,
        _ => 0,
    }
}

/// The first `len` bytes of `buf`.
///
/// # Safety
/// They must be initialised.
unsafe fn cwd_of(buf: &CwdBuf, len: usize) -> &[u8] {
    // SAFETY: the caller vouches for the bytes; len <= MAX_PATH (getcwd's
    // result fits its buffer).
    unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len.min(proto::MAX_PATH as usize)) }
}

/// The service's standing answer for this request (see
/// [`proto::ANSWER_DIR`]), mapped: the entry point, or `None` to ask over
/// the socket instead — no link (the name is too long, or the service has
/// not answered such a request yet), or what it leads to now is not a
/// loadable ld.so (the sandbox may have changed it; the service will have
/// removed the link by the time it answers).
fn answered(interp: &[u8], vars: [Option<&[u8]>; 2], cwd: &[u8], execfn: &[u8], stack: &mut Stack) -> Option<usize> {
    const DIR: usize = proto::ANSWER_DIR.len();
    /// ANSWER_DIR and this machine's name prefix (built at compile time).
    const HEAD: [u8; DIR + 5] = {
        let (class, machine) = Native::MACHINE.ident();
        let prefix = proto::answer_prefix(class, machine);
        let mut head = [0u8; DIR + 5];
        let mut i = 0;
        while i < DIR + 5 {
            head[i] = if i < DIR { proto::ANSWER_DIR[i] } else { prefix[i - DIR] };
            i += 1;
        }
        head
    };
    let mut path = [0u8; DIR + proto::MAX_ANSWER_NAME + 1];
    // A byte loop, not copy_from_slice: no memcpy call through the GOT.
    for (slot, &b) in path.iter_mut().zip(&HEAD) {
        *slot = b;
    }
    let name = path[DIR..].first_chunk_mut::<{ proto::MAX_ANSWER_NAME }>()?;
    let len = proto::answer_name_after(interp, vars, cwd, execfn, name)?;
    // path[DIR + len] is still 0: the NUL. (`get`: no panic path.)
    let fd = sys::open_read(path.get(..DIR + len + 1)?).ok()?;
    match crate::rt::load::map_fd(fd, stack, true) {
        Ok(entry) => Some(entry),
        Err(_) => {
            // Closed by map_fd only on success. A failure after some
            // segments were mapped leaves them: address space, not state.
            let _ = sys::close(fd);
            None
        }
    }
}

const E2BIG: i32 = 7;

/// One round trip to the service: the ld.so descriptor, or the exit with
/// the service's own message.
fn ask(header: &[u32; 8], parts: &[&[u8]; 5]) -> Result<i32, Error> {
    let err = |reason, e| Error::sys(Subject::Service, reason, e);
    let sock = sys::unix_socket().map_err(|e| err(Reason::Connect, e))?;
    const ADDR: [u8; proto::SERVICE_PATH.len() + 3] = sys::sockaddr_un(proto::SERVICE_PATH);
    sys::connect_unix(sock, &ADDR).map_err(|e| err(Reason::Connect, e))?;
    send_all(sock, header, parts).map_err(|e| err(Reason::Send, e))?;
    let mut reply = [0u8; proto::REPLY_HEADER + proto::MAX_MESSAGE];
    let mut got = 0;
    let mut fd = None;
    let answer = loop {
        let (n, passed) = sys::recv_fd(sock, &mut reply[got..]).map_err(|e| err(Reason::Receive, e))?;
        if let Some(passed) = passed {
            match fd {
                None => fd = Some(passed),
                Some(_) => drop(sys::close(passed)),
            }
        }
        got += n;
        let Some(received) = reply.get(..got) else {
            return Err(err(Reason::BadReply, 0));
        };
        if let Some((errno, len)) = proto::decode_reply_header(received) {
            if got >= proto::REPLY_HEADER + len {
                break (errno, len);
            }
        }
        if n == 0 || got == reply.len() {
            return Err(err(Reason::BadReply, 0));
        }
    };
    let _ = sys::close(sock);
    match (answer, fd) {
        ((0, _), Some(fd)) => Ok(fd),
        ((0, _), None) => Err(err(Reason::BadReply, 0)),
        ((_, len), passed) => {
            if let Some(passed) = passed {
                let _ = sys::close(passed);
            }
            match reply.get(proto::REPLY_HEADER..proto::REPLY_HEADER + len) {
                Some(message) => refused(message),
                None => Err(err(Reason::BadReply, 0)),
            }
        }
    }
}

/// The service refused: its message is the one line.
fn refused(message: &[u8]) -> ! {
    sys::say_and_exit(message)
}

/// Send the header and the five strings, however many calls it takes.
fn send_all(sock: i32, header: &[u32; 8], parts: &[&[u8]; 5]) -> Result<(), sys::Errno> {
    let mut iov = [IoVec {
        base: header.as_ptr() as usize,
        len: proto::REQUEST_HEADER,
    }; 6];
    for (v, part) in iov[1..].iter_mut().zip(parts) {
        *v = IoVec {
            base: part.as_ptr() as usize,
            len: part.len(),
        };
    }
    let mut first = 0;
    loop {
        // Skip what is sent (and empty strings).
        while iov.get(first).is_some_and(|v| v.len == 0) {
            first += 1;
        }
        let Some(rest) = iov.get(first..).filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        // SAFETY: every iovec lies inside the header or one of the live
        // slices in `parts`.
        let mut sent = unsafe { sys::sendmsg(sock, rest) }?;
        for v in &mut iov[first..] {
            let n = sent.min(v.len);
            v.base += n;
            v.len -= n;
            sent -= n;
        }
    }
}
