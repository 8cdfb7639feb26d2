//! The exec service's wire format: what the chainloader in interp mode asks
//! the trusted server, and what it gets back.
//!
//! One request and one reply per connection on a `SOCK_STREAM` Unix socket.
//! All integers are little-endian. Both sides use this module, so the format
//! has one definition (the server in `ldchain-service`, the client in the
//! freestanding program).
//!
//! ```text
//! request:  0  magic "LDCQ"
//!           4  version (u16) = 1
//!           6  e_machine of the program (u16)
//!           8  ELF class of the program (u8: 1 = 32-bit, 2 = 64-bit)
//!           9  flags (u8): bit 0 AT_SECURE, bit 1 LDSO_PATH set,
//!                          bit 2 LD_LIBRARY_PATH set; others must be 0
//!          10  reserved (u16) = 0
//!          12  five lengths (u32 each), in this order:
//!              PT_INTERP, AT_EXECFN, working directory,
//!              LDSO_PATH value, LD_LIBRARY_PATH value
//!          32  the five byte strings, back to back, no NULs
//! reply:    0  magic "LDCR"
//!           4  version (u16) = 1
//!           6  errno (u16): 0 = success, one descriptor (the dynamic
//!              linker, open for reading) attached with SCM_RIGHTS
//!           8  message length (u16, at most MAX_MESSAGE)
//!          10  reserved (u16) = 0
//!          12  the message: why the exec cannot go on (empty on success)
//! ```
//!
//! Limits follow the kernel's: a path is at most `PATH_MAX` (4096) bytes, an
//! environment string at most `MAX_ARG_STRLEN` (128 KiB).

/// Where the exec service listens, inside the jail (`sun_path` holds at
/// most 107 bytes).
pub const SERVICE_PATH: &[u8] = b"/run/ldchain/exec.sock";
/// Protocol version; a server answers a different one with `EPROTO`.
pub const VERSION: u16 = 1;
/// First bytes of a request.
pub const REQUEST_MAGIC: [u8; 4] = *b"LDCQ";
/// First bytes of a reply.
pub const REPLY_MAGIC: [u8; 4] = *b"LDCR";
/// Size of a request's fixed header.
pub const REQUEST_HEADER: usize = 32;
/// Size of a reply's fixed header.
pub const REPLY_HEADER: usize = 12;
/// Longest reply message.
pub const MAX_MESSAGE: usize = 512;
/// `PATH_MAX`: the longest PT_INTERP, working directory or AT_EXECFN path.
pub const MAX_PATH: u32 = 4096;
/// `MAX_ARG_STRLEN`: the longest environment string execve accepts (so the
/// longest `LDSO_PATH` or `LD_LIBRARY_PATH` value).
pub const MAX_ENV: u32 = 128 * 1024;

/// Request flag: the kernel set `AT_SECURE` (setuid, setgid, file capabilities).
pub const FLAG_SECURE: u8 = 1;
/// Request flag: the process has `LDSO_PATH` in its environment.
pub const FLAG_LDSO_PATH: u8 = 2;
/// Request flag: the process has `LD_LIBRARY_PATH` in its environment.
pub const FLAG_LD_LIBRARY_PATH: u8 = 4;
const KNOWN_FLAGS: u8 = FLAG_SECURE | FLAG_LDSO_PATH | FLAG_LD_LIBRARY_PATH;

/// Where the service leaves answers that need no round trip, inside the
/// jail: a directory of symbolic links, one per (machine, `PT_INTERP`), each
/// pointing at the dynamic linker the resolver chose for programs that set
/// neither `LDSO_PATH` nor `LD_LIBRARY_PATH` and do not run in secure mode
/// (so that nothing in the process changes the answer). The chainloader
/// opens `ANSWER_DIR` + [`answer_name`] first and asks over the socket only
/// when there is no link or what it leads to does not load. The jail sees
/// the directory read-only; the service removes every link as soon as
/// anything the answers depended on changes.
pub const ANSWER_DIR: &[u8] = b"/run/ldchain/ld/";
/// Longest answer link name (`NAME_MAX`).
pub const MAX_ANSWER_NAME: usize = 255;

/// The name of the answer link for a `class`/`machine` program whose
/// `PT_INTERP` is `interp`: `e_machine` as four lowercase hex digits, the
/// class as one digit, then `interp` with `%` written `%25` and `/` written
/// `%2f` (so different strings get different names, and none is `.` or
/// `..`). Returns the name's length in `out`, or `None` when `interp` is not
/// absolute or the name would not fit in `NAME_MAX` bytes.
pub fn answer_name(class: u8, machine: u16, interp: &[u8], out: &mut [u8; MAX_ANSWER_NAME]) -> Option<usize> {
    if interp.first() != Some(&b'/') {
        return None;
    }
    let digits = [
        (machine >> 12) as u8,
        (machine >> 8) as u8,
        (machine >> 4) as u8,
        machine as u8,
        class,
    ];
    let mut len = 0;
    for d in digits {
        let d = d & 15;
        out[len] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        len += 1;
    }
    for &b in interp {
        let escaped = matches!(b, b'/' | b'%');
        if len + if escaped { 3 } else { 1 } > MAX_ANSWER_NAME {
            return None;
        }
        if escaped {
            out[len] = b'%';
            out[len + 1] = b'2';
            out[len + 2] = if b == b'/' { b'f' } else { b'5' };
            len += 3;
        } else {
            out[len] = b;
            len += 1;
        }
    }
    Some(len)
}

/// Most bytes each of the five strings may have, in request order.
pub const MAX_LENGTHS: [u32; 5] = [MAX_PATH, MAX_PATH, MAX_PATH, MAX_ENV, MAX_ENV];

/// A request's fixed header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// The program's `e_machine`.
    pub machine: u16,
    /// The program's ELF class (`ELFCLASS32` = 1, `ELFCLASS64` = 2).
    pub class: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Lengths of PT_INTERP, AT_EXECFN, cwd, LDSO_PATH, LD_LIBRARY_PATH.
    pub lengths: [u32; 5],
}

/// Why a request header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    /// Not a request of this protocol.
    BadMagic,
    /// Another version.
    Version(u16),
    /// Unknown flag bits or a non-zero reserved field.
    Reserved,
    /// String number `.0` is longer than its limit.
    TooLong(usize),
}

impl RequestHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; REQUEST_HEADER] {
        let mut out = [0u8; REQUEST_HEADER];
        out[..4].copy_from_slice(&REQUEST_MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&self.machine.to_le_bytes());
        out[8] = self.class;
        out[9] = self.flags;
        for (i, len) in self.lengths.iter().enumerate() {
            out[12 + 4 * i..16 + 4 * i].copy_from_slice(&len.to_le_bytes());
        }
        out
    }

    /// Decode and check a header: magic, version, flags and every length
    /// within its limit.
    pub fn decode(b: &[u8; REQUEST_HEADER]) -> Result<RequestHeader, ProtoError> {
        if b[..4] != REQUEST_MAGIC {
            return Err(ProtoError::BadMagic);
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(ProtoError::Version(version));
        }
        if b[9] & !KNOWN_FLAGS != 0 || b[10] != 0 || b[11] != 0 {
            return Err(ProtoError::Reserved);
        }
        let mut lengths = [0u32; 5];
        for (i, len) in lengths.iter_mut().enumerate() {
            *len = u32::from_le_bytes([b[12 + 4 * i], b[13 + 4 * i], b[14 + 4 * i], b[15 + 4 * i]]);
            if *len > MAX_LENGTHS[i] {
                return Err(ProtoError::TooLong(i));
            }
        }
        Ok(RequestHeader {
            machine: u16::from_le_bytes([b[6], b[7]]),
            class: b[8],
            flags: b[9],
            lengths,
        })
    }

    /// Bytes of strings that follow the header.
    pub fn body_len(&self) -> usize {
        self.lengths.iter().map(|&l| l as usize).sum()
    }
}

/// A reply's fixed header.
pub fn encode_reply_header(errno: u16, message_len: usize) -> [u8; REPLY_HEADER] {
    let mut out = [0u8; REPLY_HEADER];
    out[..4].copy_from_slice(&REPLY_MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_le_bytes());
    out[6..8].copy_from_slice(&errno.to_le_bytes());
    out[8..10].copy_from_slice(&(message_len.min(MAX_MESSAGE) as u16).to_le_bytes());
    out
}

/// Decode a reply header into (errno, message length); `None` if it is not
/// a well-formed reply of this version.
pub fn decode_reply_header(b: &[u8]) -> Option<(u16, usize)> {
    if b.len() < REPLY_HEADER || b[..4] != REPLY_MAGIC || b[4..6] != VERSION.to_le_bytes() {
        return None;
    }
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    (len <= MAX_MESSAGE).then_some((u16::from_le_bytes([b[6], b[7]]), len))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn request_header_round_trips() {
        let h = RequestHeader {
            machine: 62,
            class: 2,
            flags: FLAG_SECURE | FLAG_LD_LIBRARY_PATH,
            lengths: [28, 9, 1, 0, 4],
        };
        let b = h.encode();
        assert_eq!(&b[..4], b"LDCQ");
        assert_eq!(RequestHeader::decode(&b), Ok(h));
        assert_eq!(h.body_len(), 42);
    }

    #[test]
    fn bad_request_headers_are_refused() {
        let good = RequestHeader {
            machine: 3,
            class: 1,
            flags: 0,
            lengths: [10, 10, 1, 0, 0],
        }
        .encode();
        let mut b = good;
        b[0] = b'X';
        assert_eq!(RequestHeader::decode(&b), Err(ProtoError::BadMagic));
        let mut b = good;
        b[4] = 2;
        assert_eq!(RequestHeader::decode(&b), Err(ProtoError::Version(2)));
        let mut b = good;
        b[9] = 8;
        assert_eq!(RequestHeader::decode(&b), Err(ProtoError::Reserved));
        let mut b = good;
        b[11] = 1;
        assert_eq!(RequestHeader::decode(&b), Err(ProtoError::Reserved));
        for (i, max) in MAX_LENGTHS.iter().enumerate() {
            let mut b = good;
            b[12 + 4 * i..16 + 4 * i].copy_from_slice(&(max + 1).to_le_bytes());
            assert_eq!(RequestHeader::decode(&b), Err(ProtoError::TooLong(i)));
            b[12 + 4 * i..16 + 4 * i].copy_from_slice(&max.to_le_bytes());
            assert!(RequestHeader::decode(&b).is_ok());
        }
    }

    fn name(class: u8, machine: u16, interp: &[u8]) -> Option<std::vec::Vec<u8>> {
        let mut out = [0u8; MAX_ANSWER_NAME];
        answer_name(class, machine, interp, &mut out).map(|n| out[..n].to_vec())
    }

    #[test]
    fn answer_names() {
        assert_eq!(
            name(2, 62, b"/lib64/ld-linux-x86-64.so.2").as_deref(),
            Some(&b"003e2%2flib64%2fld-linux-x86-64.so.2"[..])
        );
        assert_eq!(
            name(1, 3, b"/lib/ld-linux.so.2").as_deref(),
            Some(&b"00031%2flib%2fld-linux.so.2"[..])
        );
        assert_eq!(name(2, 183, b"/a%b").as_deref(), Some(&b"00b72%2fa%25b"[..]));
        // One string, one name: `%` cannot be confused with an escape.
        assert_ne!(name(2, 62, b"/%2f"), name(2, 62, b"//"));
        assert_ne!(name(2, 62, b"/x"), name(1, 62, b"/x"));
        // Relative PT_INTERP depends on the working directory: never a link.
        assert_eq!(name(2, 62, b"lib/ld.so"), None);
        assert_eq!(name(2, 62, b""), None);
        // NAME_MAX, exactly: 5 + 3 + 247 = 255 fits, one more byte does not.
        let mut long = std::vec![b'/'];
        long.extend(std::iter::repeat_n(b'a', 247));
        assert_eq!(name(2, 62, &long).map(|n| n.len()), Some(MAX_ANSWER_NAME));
        long.push(b'a');
        assert_eq!(name(2, 62, &long), None);
    }

    #[test]
    fn reply_headers() {
        let b = encode_reply_header(0, 0);
        assert_eq!(decode_reply_header(&b), Some((0, 0)));
        let b = encode_reply_header(2, 40);
        assert_eq!(decode_reply_header(&b), Some((2, 40)));
        // Messages are capped, never announced longer than the limit.
        let b = encode_reply_header(5, 10_000);
        assert_eq!(decode_reply_header(&b), Some((5, MAX_MESSAGE)));
        assert_eq!(decode_reply_header(&b[..11]), None);
        let mut bad = b;
        bad[8..10].copy_from_slice(&(MAX_MESSAGE as u16 + 1).to_le_bytes());
        assert_eq!(decode_reply_header(&bad), None);
        let mut bad = b;
        bad[0] = 0;
        assert_eq!(decode_reply_header(&bad), None);
    }
}
