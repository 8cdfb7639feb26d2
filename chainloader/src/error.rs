//! Errors, and the one line the program prints for them.
//!
//! Every failure is reported as `chainloader: <what>: <why>` on stderr and the
//! process exits with status 127 (what a shell reports for a command it could
//! not run). The text is assembled here, without allocation, so that it can be
//! unit-tested on the host.

/// What an error is about: the `<what>` part of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The command line as a whole.
    Usage,
    /// The FD argument as given (it is echoed back).
    FdArg,
    /// The file descriptor, once parsed.
    Fd(i32),
    /// The ELF file header.
    ElfHeader,
    /// Program header number N (counting from 0).
    ProgramHeader(u16),
    /// The image as a whole.
    Image,
}

/// A reason the image cannot be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// What the error is about.
    pub subject: Subject,
    /// Why.
    pub reason: Reason,
    /// The errno of a failed system call, or 0.
    pub errno: i32,
}

impl Error {
    /// An error with no errno.
    pub const fn new(subject: Subject, reason: Reason) -> Self {
        Error { subject, reason, errno: 0 }
    }

    /// An error caused by a failed system call.
    pub const fn sys(subject: Subject, reason: Reason, errno: i32) -> Self {
        Error { subject, reason, errno }
    }
}

/// Declares [`Reason`] and its texts side by side. The texts are kept in one
/// NUL-separated string rather than a table of `&str`: a table of pointers
/// would need a relocation per entry in the freestanding binary.
macro_rules! reasons {
    ($($name:ident => $text:literal,)*) => {
        /// Why an image cannot be run: the `<why>` part of the message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Reason {
            $(
                #[doc = $text]
                $name,
            )*
        }

        const REASON_TEXTS: &str = concat!($($text, "\0",)*);
    };
}

reasons! {
        FdNotNumber => "not a file descriptor number",
        FdRange => "file descriptor number out of range",
        Stat => "cannot stat",
        IsDirectory => "is a directory",
        NotRegular => "not a regular file",
        Read => "cannot read",
        PhdrBuffer => "cannot allocate header buffer",
        Close => "cannot close",
        EmptyFile => "empty file",
        BadMagic => "not an ELF file (bad magic)",
        BadClass => "invalid ELF class",
        Class64 => "64-bit image, 32-bit loader",
        Class32 => "32-bit image, 64-bit loader",
        BigEndian => "big-endian image",
        BadData => "invalid byte order",
        Truncated => "truncated",
        EtRel => "relocatable object (ET_REL), not an executable",
        EtCore => "core dump (ET_CORE), not an executable",
        BadType => "unknown e_type",
        Machine => "wrong machine (another architecture)",
        Phentsize => "wrong e_phentsize",
        NoPhdrs => "no program headers",
        TooManyPhdrs => "too many program headers",
        PhdrsOutside => "program headers outside the file",
        Interp => "PT_INTERP: a dynamic program must be run through its ld.so",
        FileszMemsz => "p_filesz > p_memsz",
        Congruence => "p_offset and p_vaddr differ modulo the page size",
        PastEof => "segment extends past end of file",
        OffsetOverflow => "p_offset + p_filesz overflows",
        AddrOverflow => "segment overflows the address space",
        WriteExec => "segment is writable and executable",
        Overlap => "segments overlap or are out of order",
        MapSegment => "cannot map segment",
        ProtectGap => "cannot protect gap",
        ProtectSegment => "cannot protect segment",
        MapBss => "cannot map bss",
        PageSize => "bad AT_PAGESZ",
        NoLoad => "no PT_LOAD segment",
        PageZero => "ET_EXEC image at address 0",
        SpanTooBig => "image too large for the address space",
        PhdrsUnmapped => "program headers not in a PT_LOAD",
        EntryOutside => "entry point not in an executable segment",
        AddressesTaken => "ET_EXEC addresses already in use",
        Reserve => "cannot reserve address space",
        SetName => "cannot set process name",
}

impl Reason {
    /// The reason in words.
    pub fn bytes(self) -> &'static [u8] {
        nth_text(REASON_TEXTS.as_bytes(), self as usize)
    }

    /// The reason in words, as a `str` (for the host's tests and tools).
    pub fn text(self) -> &'static str {
        core::str::from_utf8(self.bytes()).unwrap_or("")
    }
}

/// Entry `n` of a NUL-separated list (empty if there is no such entry).
fn nth_text(all: &'static [u8], n: usize) -> &'static [u8] {
    let mut rest = all;
    let mut seen = 0;
    while let Some(end) = rest.iter().position(|&b| b == 0) {
        if seen == n {
            return &rest[..end];
        }
        seen += 1;
        rest = &rest[end + 1..];
    }
    b""
}

/// The text `strerror` would give, for the errors a loader can plausibly
/// meet; others print as `errno N`.
pub fn errno_text(errno: i32) -> &'static [u8] {
    match errno {
        1 => b"Operation not permitted",
        9 => b"Bad file descriptor",
        11 => b"Resource temporarily unavailable",
        12 => b"Cannot allocate memory",
        13 => b"Permission denied",
        17 => b"File exists",
        19 => b"No such device",
        22 => b"Invalid argument",
        38 => b"Function not implemented",
        _ => b"",
    }
}

/// The exit status for every failure, as a shell uses for "command not found".
pub const EXIT_FAILURE: i32 = 127;

/// A bounded writer into a byte buffer; output past the end is dropped.
pub struct Line<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Line<'a> {
    /// Start writing at the beginning of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Line { buf, len: 0 }
    }

    /// Append bytes, dropping whatever does not fit.
    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        self
    }

    /// Append a number in decimal.
    pub fn num(&mut self, n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The longest part of an echoed FD argument that is printed.
const ECHO_MAX: usize = 40;

/// Render `err` as the one line the program prints, newline included.
///
/// `fd_arg` is the FD argument as given on the command line; it is echoed
/// (shortened to a few dozen bytes) when the error is about it.
pub fn render<'a>(err: &Error, fd_arg: &[u8], buf: &'a mut [u8]) -> &'a [u8] {
    let mut line = Line::new(buf);
    line.push(b"chainloader: ");
    let (label, num): (&[u8], i64) = match err.subject {
        Subject::Usage => (b"usage", -1),
        Subject::FdArg => (b"FD ", -1),
        Subject::Fd(fd) => (b"fd ", i64::from(fd)),
        Subject::ElfHeader => (b"ELF header", -1),
        Subject::ProgramHeader(i) => (b"program header ", i64::from(i)),
        Subject::Image => (b"image", -1),
    };
    line.push(label);
    if num >= 0 {
        line.num(num as u64);
    }
    if err.subject == Subject::FdArg {
        line.push(b"'").push(&fd_arg[..fd_arg.len().min(ECHO_MAX)]);
        if fd_arg.len() > ECHO_MAX {
            line.push(b"...");
        }
        line.push(b"'");
    }
    line.push(b": ").push(err.reason.bytes());
    if err.errno != 0 {
        line.push(b": ");
        match errno_text(err.errno) {
            b"" => line.push(b"errno ").num(err.errno as u64),
            text => line.push(text),
        };
    }
    line.push(b"\n");
    let len = line.len;
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(err: Error, arg: &[u8]) -> std::string::String {
        let mut buf = [0u8; 256];
        std::string::String::from_utf8(render(&err, arg, &mut buf).to_vec()).unwrap()
    }

    extern crate std;

    #[test]
    fn renders_each_subject() {
        assert_eq!(
            text(Error::new(Subject::FdArg, Reason::FdNotNumber), b"abc"),
            "chainloader: FD 'abc': not a file descriptor number\n"
        );
        assert_eq!(
            text(Error::sys(Subject::Fd(7), Reason::Stat, 9), b"7"),
            "chainloader: fd 7: cannot stat: Bad file descriptor\n"
        );
        assert_eq!(
            text(Error::new(Subject::ProgramHeader(12), Reason::FileszMemsz), b"3"),
            "chainloader: program header 12: p_filesz > p_memsz\n"
        );
    }

    #[test]
    fn long_fd_argument_is_shortened_and_line_is_bounded() {
        let arg = [b'9'; 500];
        let t = text(Error::new(Subject::FdArg, Reason::FdRange), &arg);
        assert!(t.starts_with("chainloader: FD '9999"));
        assert!(t.contains("...': file descriptor number out of range\n"));
        assert!(t.len() < 140);
        let mut tiny = [0u8; 8];
        assert_eq!(render(&Error::new(Subject::Image, Reason::NoLoad), b"", &mut tiny), b"chainloa");
    }

    #[test]
    fn unknown_errno_is_printed_by_number() {
        assert_eq!(
            text(Error::sys(Subject::Fd(3), Reason::Read, 5), b"3"),
            "chainloader: fd 3: cannot read: errno 5\n"
        );
    }

    #[test]
    fn every_reason_has_its_own_text() {
        let all: std::vec::Vec<&str> = REASON_TEXTS.split('\0').filter(|t| !t.is_empty()).collect();
        assert_eq!(Reason::SetName as usize + 1, all.len(), "a reason without text, or a text without reason");
        assert_eq!(Reason::FdNotNumber.text(), all[0]);
        assert_eq!(Reason::SetName.text(), "cannot set process name");
        assert_eq!(Reason::Interp.text(), all[Reason::Interp as usize]);
        for t in &all {
            assert!(!t.is_empty() && !t.contains('\n'));
        }
    }

    #[test]
    fn numbers() {
        let mut buf = [0u8; 32];
        let mut l = Line::new(&mut buf);
        l.num(0).push(b" ").num(u64::MAX);
        assert_eq!(l.as_bytes(), b"0 18446744073709551615");
    }
}
