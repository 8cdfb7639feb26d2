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
    /// Why, in words.
    pub reason: &'static str,
    /// The errno of a failed system call, or 0.
    pub errno: i32,
}

impl Error {
    /// An error with no errno.
    pub const fn new(subject: Subject, reason: &'static str) -> Self {
        Error { subject, reason, errno: 0 }
    }

    /// An error caused by a failed system call.
    pub const fn sys(subject: Subject, reason: &'static str, errno: i32) -> Self {
        Error { subject, reason, errno }
    }
}

/// The exit status for every failure, as a shell uses for "command not found".
pub const EXIT_FAILURE: i32 = 127;

/// The text `strerror` would give for the errors a loader can meet.
pub fn errno_text(errno: i32) -> &'static str {
    match errno {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        4 => "Interrupted system call",
        5 => "Input/output error",
        9 => "Bad file descriptor",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        14 => "Bad address",
        17 => "File exists",
        19 => "No such device",
        21 => "Is a directory",
        22 => "Invalid argument",
        23 => "Too many open files in system",
        24 => "Too many open files",
        26 => "Text file busy",
        29 => "Illegal seek",
        38 => "Function not implemented",
        75 => "Value too large for defined data type",
        _ => "system call failed",
    }
}

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
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
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
    match err.subject {
        Subject::Usage => line.push(b"usage"),
        Subject::FdArg => {
            line.push(b"FD '");
            line.push(&fd_arg[..fd_arg.len().min(ECHO_MAX)]);
            if fd_arg.len() > ECHO_MAX {
                line.push(b"...");
            }
            line.push(b"'")
        }
        Subject::Fd(fd) => line.push(b"fd ").num(fd as u64),
        Subject::ElfHeader => line.push(b"ELF header"),
        Subject::ProgramHeader(i) => line.push(b"program header ").num(u64::from(i)),
        Subject::Image => line.push(b"image"),
    };
    line.push(b": ").push(err.reason.as_bytes());
    if err.errno != 0 {
        line.push(b": ").push(errno_text(err.errno).as_bytes());
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
            text(Error::new(Subject::FdArg, "not a decimal number"), b"abc"),
            "chainloader: FD 'abc': not a decimal number\n"
        );
        assert_eq!(
            text(Error::sys(Subject::Fd(7), "cannot stat", 9), b"7"),
            "chainloader: fd 7: cannot stat: Bad file descriptor\n"
        );
        assert_eq!(
            text(Error::new(Subject::ProgramHeader(12), "p_filesz exceeds p_memsz"), b"3"),
            "chainloader: program header 12: p_filesz exceeds p_memsz\n"
        );
    }

    #[test]
    fn long_fd_argument_is_shortened_and_line_is_bounded() {
        let arg = [b'9'; 500];
        let t = text(Error::new(Subject::FdArg, "out of range"), &arg);
        assert!(t.starts_with("chainloader: FD '9999"));
        assert!(t.contains("...': out of range\n"));
        assert!(t.len() < 120);
        let mut tiny = [0u8; 8];
        assert_eq!(render(&Error::new(Subject::Image, "x"), b"", &mut tiny), b"chainloa");
    }

    #[test]
    fn numbers() {
        let mut buf = [0u8; 32];
        let mut l = Line::new(&mut buf);
        l.num(0).push(b" ").num(u64::MAX);
        assert_eq!(l.as_bytes(), b"0 18446744073709551615");
    }
}
