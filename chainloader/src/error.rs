//! Errors, and the one line the program prints for them.
//!
//! Every failure is reported as `chainloader: <what>: <why>` on stderr and the
//! process exits with status 127 (what a shell reports for a command it could
//! not run). The text is assembled here, without allocation, so that it can be
//! unit-tested on the host.

/// What an error is about: the `<what>` part of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
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
    /// The exec service (interp mode).
    Service,
}

/// A reason the image cannot be run: what it is about, why, and the errno
/// of the failed system call (0 if none).
///
/// Packed into one word (reason in bits 0..8, subject kind in 8..12, the
/// subject's number in 16..48, errno in 48..64) so that `Result<_, Error>`
/// travels in registers: the freestanding program has many error sites and
/// an 8 KiB budget.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Error(u64);

impl Error {
    /// An error with no errno.
    #[inline(always)]
    pub const fn new(subject: Subject, reason: Reason) -> Self {
        Error::sys(subject, reason, 0)
    }

    /// An error caused by a failed system call.
    #[inline(always)]
    pub const fn sys(subject: Subject, reason: Reason, errno: i32) -> Self {
        let (kind, num): (u64, u64) = match subject {
            Subject::FdArg => (0, 0),
            Subject::Fd(fd) => (1, fd as u32 as u64),
            Subject::ElfHeader => (2, 0),
            Subject::ProgramHeader(i) => (3, i as u64),
            Subject::Image => (4, 0),
            Subject::Service => (5, 0),
        };
        Error(reason as u64 | kind << 8 | num << 16 | (errno as u16 as u64) << 48)
    }

    /// What the error is about.
    pub const fn subject(self) -> Subject {
        let num = (self.0 >> 16) as u32;
        match (self.0 >> 8) & 0xf {
            0 => Subject::FdArg,
            1 => Subject::Fd(num as i32),
            2 => Subject::ElfHeader,
            3 => Subject::ProgramHeader(num as u16),
            4 => Subject::Image,
            _ => Subject::Service,
        }
    }

    /// Why, in words, packed ([`Line::push_packed`] unpacks them), without
    /// building a [`Reason`].
    fn reason_packed(self) -> &'static [u8] {
        nth_text(&REASON_TEXTS, self.0 as u8 as usize)
    }

    /// Why.
    pub fn reason(self) -> Reason {
        Reason::from_u8(self.0 as u8)
    }

    /// The errno of the failed system call, or 0.
    pub const fn errno(self) -> i32 {
        (self.0 >> 48) as i32
    }
}

impl core::fmt::Debug for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Error")
            .field("subject", &self.subject())
            .field("reason", &self.reason())
            .field("errno", &self.errno())
            .finish()
    }
}

/// Declares [`Reason`] and its texts side by side. The texts are kept in one
/// NUL-separated string rather than a table of `&str` (a table of pointers
/// would need a relocation per entry in the freestanding binary), packed
/// at compile time with [`WORDS`] (their bytes are a tenth of the program).
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

        /// Every reason's text, in order, each followed by a NUL.
        const REASON_TEXTS_RAW: &str = concat!($($text, "\0",)*);

        impl Reason {
            /// The reason with this number (the last one for out-of-range numbers).
            fn from_u8(n: u8) -> Reason {
                let all = [$(Reason::$name,)*];
                all[(n as usize).min(all.len() - 1)]
            }
        }
    };
}

/// Byte strings the reason texts, subject labels and errno names share,
/// NUL-separated:
/// in a packed text, byte `0x80 + n` stands for string `n` (the texts are
/// ASCII). Chosen greedily by what each saves (bytes replaced minus its own
/// length and NUL), largest gain first; [`pack`] replaces them in this order.
const WORDS: &str = "cannot \0program header\0segment\0 executable\0 address\0\
file\0t \0image\0ENO\0 the\0er\0 descriptor numb\0no\0 o\0an\0re\0 space\0ad\0\
T_\0s \0lo\0in\0 program\0e \0-bi\0end\0ELF \0EXEC\0p_offse\0IN\0valid \0\
wrong \0a \0la\0ma\0ec\0ER\0 p\0cat\0abl\0, \0ES\0AD\0EN\0size\0too \0FILE\0\
PIPE\0";

/// Room for the texts while they are packed (checked in [`pack`]).
const PACK_ROOM: usize = 2048;

/// `text` with every string of [`WORDS`] replaced by its byte, in order
/// (a const fn: the program holds only the result), and its length.
const fn pack(text: &[u8]) -> ([u8; PACK_ROOM], usize) {
    assert!(text.len() <= PACK_ROOM);
    let mut buf = [0u8; PACK_ROOM];
    let mut len = 0;
    while len < text.len() {
        assert!(text[len] < 0x80, "reason texts are ASCII");
        buf[len] = text[len];
        len += 1;
    }
    let words = WORDS.as_bytes();
    let (mut start, mut code) = (0, 0x80u8);
    while start < words.len() {
        let mut end = start;
        while words[end] != 0 {
            end += 1;
        }
        let mut out = [0u8; PACK_ROOM];
        let (mut i, mut o) = (0, 0);
        while i < len {
            let mut k = 0;
            while k < end - start && i + k < len && buf[i + k] == words[start + k] {
                k += 1;
            }
            if k == end - start {
                out[o] = code;
                i += k;
            } else {
                out[o] = buf[i];
                i += 1;
            }
            o += 1;
        }
        buf = out;
        len = o;
        start = end + 1;
        code += 1;
    }
    (buf, len)
}

/// The first `N` bytes of `text` packed (`N` is its packed length).
const fn packed<const N: usize>(text: &str) -> [u8; N] {
    let (buf, len) = pack(text.as_bytes());
    assert!(len == N);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = buf[i];
        i += 1;
    }
    out
}

/// Every reason's text, packed, each followed by a NUL.
static REASON_TEXTS: [u8; pack(REASON_TEXTS_RAW.as_bytes()).1] = packed(REASON_TEXTS_RAW);

/// What each kind of [`Subject`] is called (in [`Error`]'s order), each
/// followed by a NUL.
const LABELS_RAW: &str = "FD \0fd \0ELF header\0program header \0image\0exec service\0";

/// [`LABELS_RAW`], packed.
static LABELS: [u8; pack(LABELS_RAW.as_bytes()).1] = packed(LABELS_RAW);

reasons! {
        FdNotNumber => "not a file descriptor number",
        FdRange => "file descriptor number out of range",
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
        MapBss => "cannot map bss",
        ReadTail => "cannot read the segment's last page",
        PageSize => "bad AT_PAGESZ",
        NoLoad => "no PT_LOAD segment",
        PageZero => "ET_EXEC image at address 0",
        SpanTooBig => "image too large for the address space",
        PhdrsUnmapped => "program headers not in a PT_LOAD",
        EntryOutside => "entry point not in an executable segment",
        AddressesTaken => "ET_EXEC addresses already in use",
        Reserve => "cannot reserve address space",
        SetName => "cannot set process name",
        NoInterp => "no usable PT_INTERP in the program",
        Connect => "cannot connect",
        Send => "cannot send the request",
        Receive => "no answer",
        BadReply => "malformed answer",
}

impl Reason {
    /// The reason in words (for the host's tools and tests: `to_string()`,
    /// or compare with a `&str`).
    pub fn text(self) -> Text {
        Text(nth_text(&REASON_TEXTS, self as usize))
    }
}

/// A reason's text (see [`Reason::text`]).
#[derive(Clone, Copy)]
pub struct Text(&'static [u8]);

impl Text {
    /// Each unpacked piece of the text, in order.
    fn pieces(self) -> impl Iterator<Item = &'static [u8]> {
        self.0.iter().map(|b| match b {
            0x80.. => nth_text(WORDS.as_bytes(), usize::from(b - 0x80)),
            _ => core::slice::from_ref(b),
        })
    }
}

impl core::fmt::Display for Text {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The texts and words are ASCII.
        self.pieces()
            .try_for_each(|p| f.write_str(core::str::from_utf8(p).unwrap_or("?")))
    }
}

impl core::fmt::Debug for Text {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        let mut rest = other.as_bytes();
        self.pieces().all(|p| match rest.strip_prefix(p) {
            Some(r) => {
                rest = r;
                true
            }
            None => false,
        }) && rest.is_empty()
    }
}

/// Entry `n` of a NUL-separated list (empty if there is no such entry).
fn nth_text(all: &'static [u8], n: usize) -> &'static [u8] {
    let mut rest = all;
    let mut seen = 0;
    while let Some(end) = rest.iter().position(|&b| b == 0) {
        // `get`, not indexing (end < rest.len()): no panic path.
        if seen == n {
            return rest.get(..end).unwrap_or_default();
        }
        seen += 1;
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    b""
}

/// The symbolic names of the errno values a loader can plausibly meet,
/// from 1 up, each followed by a NUL.
const ERRNO_NAMES_RAW: &str = "EPERM\0ENOENT\0ESRCH\0EINTR\0EIO\0ENXIO\0E2BIG\0ENOEXEC\0EBADF\0ECHILD\0\
EAGAIN\0ENOMEM\0EACCES\0EFAULT\0ENOTBLK\0EBUSY\0EEXIST\0EXDEV\0ENODEV\0ENOTDIR\0EISDIR\0EINVAL\0\
ENFILE\0EMFILE\0ENOTTY\0ETXTBSY\0EFBIG\0ENOSPC\0ESPIPE\0EROFS\0EMLINK\0EPIPE\0EDOM\0ERANGE\0\
EDEADLK\0ENAMETOOLONG\0ENOLCK\0ENOSYS\0";

/// [`ERRNO_NAMES_RAW`], packed.
static ERRNO_NAMES: [u8; pack(ERRNO_NAMES_RAW.as_bytes()).1] = packed(ERRNO_NAMES_RAW);

/// The symbolic name of an errno value (`ENOMEM`), packed; empty for the
/// others (printed as `errno N`).
fn errno_packed(errno: i32) -> &'static [u8] {
    if errno < 1 {
        return b"";
    }
    nth_text(&ERRNO_NAMES, errno as usize - 1)
}

/// The symbolic name of an errno value (`ENOMEM`), for the values a loader
/// can plausibly meet; empty for others (printed as `errno N`).
pub fn errno_name(errno: i32) -> Text {
    Text(errno_packed(errno))
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
        // A plain loop, not copy_from_slice: a variable-length memcpy would
        // be a call through the GOT, i.e. a dynamic relocation (the program
        // is built with loop-idiom recognition off so this stays a loop).
        for &b in bytes {
            match self.buf.get_mut(self.len) {
                Some(slot) => *slot = b,
                None => break,
            }
            self.len += 1;
        }
        self
    }

    /// Append a packed text (from [`REASON_TEXTS`], [`LABELS`] or
    /// [`ERRNO_NAMES`]), unpacked.
    fn push_packed(&mut self, packed: &[u8]) -> &mut Self {
        for &b in packed {
            match b {
                0x80.. => self.push(nth_text(WORDS.as_bytes(), usize::from(b - 0x80))),
                _ => self.push(&[b]),
            };
        }
        self
    }

    /// Append a number in decimal.
    pub fn num(&mut self, n: u32) -> &mut Self {
        let mut digits = [0u8; 10];
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
        self.push(digits.get(i..).unwrap_or_default())
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
    // The subject's kind and number, straight from the packed word.
    let kind = (err.0 >> 8) as usize & 0xf;
    let num = (err.0 >> 16) as u32;
    line.push(b"chainloader: ").push_packed(nth_text(&LABELS, kind));
    // Fd (a descriptor, never shown negative) and ProgramHeader have a number.
    if (kind == 1 || kind == 3) && num as i32 >= 0 {
        line.num(num);
    }
    if kind == 0 {
        line.push(b"'").push(&fd_arg[..fd_arg.len().min(ECHO_MAX)]);
        if fd_arg.len() > ECHO_MAX {
            line.push(b"...");
        }
        line.push(b"'");
    }
    line.push(b": ").push_packed(err.reason_packed());
    let errno = err.errno();
    if errno != 0 {
        line.push(b": ");
        match errno_packed(errno) {
            b"" => line.push(b"errno ").num(errno as u32),
            name => line.push_packed(name),
        };
    }
    line.push(b"\n");
    let Line { buf, len } = line;
    buf.get(..len).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(err: Error, arg: &[u8]) -> std::string::String {
        let mut buf = [0u8; 256];
        std::string::String::from_utf8(render(&err, arg, &mut buf).to_vec()).unwrap()
    }

    extern crate std;
    use std::string::ToString;

    #[test]
    fn renders_each_subject() {
        assert_eq!(
            text(Error::new(Subject::FdArg, Reason::FdNotNumber), b"abc"),
            "chainloader: FD 'abc': not a file descriptor number\n"
        );
        assert_eq!(
            text(Error::sys(Subject::Fd(7), Reason::Read, 9), b"7"),
            "chainloader: fd 7: cannot read: EBADF\n"
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
        assert_eq!(
            render(&Error::new(Subject::Image, Reason::NoLoad), b"", &mut tiny),
            b"chainloa"
        );
    }

    #[test]
    fn unknown_errno_is_printed_by_number() {
        assert_eq!(
            text(Error::sys(Subject::Fd(3), Reason::Read, 95), b"3"),
            "chainloader: fd 3: cannot read: errno 95\n"
        );
    }

    #[test]
    fn every_reason_has_its_own_text() {
        let all: std::vec::Vec<&str> = REASON_TEXTS_RAW.split('\0').filter(|t| !t.is_empty()).collect();
        assert_eq!(
            Reason::BadReply as usize + 1,
            all.len(),
            "a reason without text, or a text without reason"
        );
        assert_eq!(Reason::FdNotNumber.text(), all[0]);
        assert_eq!(Reason::SetName.text(), "cannot set process name");
        assert_eq!(Reason::Interp.text(), all[Reason::Interp as usize]);
        for (n, t) in all.iter().enumerate() {
            assert!(!t.is_empty() && !t.contains('\n'));
            // Packing loses nothing, and every text unpacks to itself.
            assert_eq!(Reason::from_u8(n as u8).text().to_string(), *t);
            assert_ne!(Reason::from_u8(n as u8).text(), &t[1..]);
        }
        assert!(REASON_TEXTS.len() < REASON_TEXTS_RAW.len() * 3 / 4, "packing pays");
    }

    #[test]
    fn errors_pack_and_unpack() {
        for subject in [
            Subject::FdArg,
            Subject::Fd(0),
            Subject::Fd(i32::MAX),
            Subject::ElfHeader,
            Subject::ProgramHeader(65535),
            Subject::Image,
            Subject::Service,
        ] {
            for (reason, errno) in [(Reason::FdNotNumber, 0), (Reason::BadReply, 4095), (Reason::Interp, 12)] {
                let e = Error::sys(subject, reason, errno);
                assert_eq!((e.subject(), e.reason(), e.errno()), (subject, reason, errno));
            }
        }
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(1), "EPERM");
        assert_eq!(errno_name(12), "ENOMEM");
        assert_eq!(errno_name(38), "ENOSYS");
        assert_eq!(errno_name(39), "");
        assert_eq!(errno_name(0), "");
        assert_eq!(errno_name(-5), "");
        // Every name unpacks to itself.
        for (n, name) in ERRNO_NAMES_RAW.split('\0').filter(|t| !t.is_empty()).enumerate() {
            assert_eq!(errno_name(n as i32 + 1).to_string(), name);
        }
    }

    #[test]
    fn numbers() {
        let mut buf = [0u8; 32];
        let mut l = Line::new(&mut buf);
        l.num(0).push(b" ").num(u32::MAX);
        assert_eq!(l.as_bytes(), b"0 4294967295");
    }
}
