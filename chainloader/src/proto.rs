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
/// jail: a directory of symbolic links, each pointing at the dynamic linker
/// the resolver chose for every request with the same [`answer_name`]
/// (not in secure mode: those always ask). The chainloader opens
/// `ANSWER_DIR` + [`answer_name`] first and asks over the socket only when
/// there is no link or what it leads to does not load. The jail sees the
/// directory read-only; the service removes every link as soon as anything
/// the answers depended on changes.
pub const ANSWER_DIR: &[u8] = b"/run/ldchain/ld/";
/// Longest answer link name (`NAME_MAX`).
pub const MAX_ANSWER_NAME: usize = 255;

/// [`answer_needs`]: the name holds the working directory.
pub const NEEDS_CWD: u8 = 1;
/// [`answer_needs`]: the name holds `AT_EXECFN` (and the working directory).
pub const NEEDS_EXECFN: u8 = 2;

/// What an answer for a process with these `[LDSO_PATH, LD_LIBRARY_PATH]`
/// values may depend on besides them, so what its name must hold: the
/// working directory ([`NEEDS_CWD`]) if an entry is relative (empty, or not
/// starting with `/`; `:` and `;` both separate, as `LD_LIBRARY_PATH`'s do),
/// `AT_EXECFN` and the working directory (`NEEDS_CWD | NEEDS_EXECFN`) if
/// either value holds a `$` (`$ORIGIN` is the program's directory). Never
/// less than what the resolver can use, sometimes more: a name that holds
/// more only means fewer processes share it.
pub fn answer_needs(vars: [Option<&[u8]>; 2]) -> u8 {
    let mut needs = 0;
    for value in vars.into_iter().flatten() {
        let mut entry_start = true;
        for &b in value {
            if b == b'$' {
                needs = NEEDS_CWD | NEEDS_EXECFN;
            }
            if entry_start && b != b'/' {
                needs |= NEEDS_CWD;
            }
            entry_start = b == b':' || b == b';';
        }
        if entry_start {
            needs |= NEEDS_CWD;
        }
    }
    needs
}

/// The marker before each part of an answer name, in order: `PT_INTERP`
/// (none: its slot is unused), `LDSO_PATH`, `LD_LIBRARY_PATH`, the working
/// directory, `AT_EXECFN`.
const NAME_MARKERS: [u8; 5] = *b"-Llco";

/// The name of the answer link for a `class`/`machine` program whose
/// `PT_INTERP` is `interp`, run with `vars` = `[LDSO_PATH, LD_LIBRARY_PATH]`
/// (`None`: not set) from `cwd` as `execfn`: `e_machine` as four lowercase
/// hex digits, the class as one digit, then `interp`, then for each set
/// variable, and for `cwd` and `execfn` when [`answer_needs`] says so, `%`,
/// its marker (`L`, `l`, `c`, `o`) and its value. Every string is written
/// with `%` as `%25` and `/` as `%2f`, so a `%` followed by a marker is
/// never part of a string: different requests get different names (the
/// name is the key itself, not a hash of it), and none is `.` or `..`.
/// With no variable set the name is `e_machine`, class and `interp` alone.
/// Returns the name's length in `out`, or `None` when `interp` is not
/// absolute or the name would not fit in `NAME_MAX` bytes (such a process
/// asks).
pub fn answer_name(
    class: u8,
    machine: u16,
    interp: &[u8],
    vars: [Option<&[u8]>; 2],
    cwd: &[u8],
    execfn: &[u8],
    out: &mut [u8; MAX_ANSWER_NAME],
) -> Option<usize> {
    out[..5].copy_from_slice(&answer_prefix(class, machine));
    answer_name_after(interp, vars, cwd, execfn, out)
}

/// The first five bytes of every [`answer_name`] for a `class`/`machine`
/// program (a const fn: the chainloader's are computed at compile time).
pub const fn answer_prefix(class: u8, machine: u16) -> [u8; 5] {
    let id = (machine as u32) << 4 | class as u32;
    let mut out = [0u8; 5];
    let mut i = 0;
    while i < 5 {
        let d = (id >> (16 - 4 * i)) as u8 & 15;
        out[i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        i += 1;
    }
    out
}

/// [`answer_name`] after its first five bytes, which `out` holds already
/// ([`answer_prefix`]).
pub fn answer_name_after(
    interp: &[u8],
    vars: [Option<&[u8]>; 2],
    cwd: &[u8],
    execfn: &[u8],
    out: &mut [u8; MAX_ANSWER_NAME],
) -> Option<usize> {
    if interp.first() != Some(&b'/') {
        return None;
    }
    let needs = answer_needs(vars);
    let parts = [
        Some(interp),
        vars[0],
        vars[1],
        (needs & NEEDS_CWD != 0).then_some(cwd),
        (needs & NEEDS_EXECFN != 0).then_some(execfn),
    ];
    let mut len = 5;
    for (i, (part, marker)) in parts.iter().zip(NAME_MARKERS).enumerate() {
        let Some(value) = part else { continue };
        // `%` and the marker before every part but PT_INTERP. (Slice
        // patterns over `get_mut`: every write is checked once, and nothing
        // can panic.)
        if i > 0 {
            let [percent, slot] = out.get_mut(len..len + 2)? else {
                return None;
            };
            (*percent, *slot) = (b'%', marker);
            len += 2;
        }
        for &b in value.iter() {
            if b == b'/' || b == b'%' {
                let [percent, two, last] = out.get_mut(len..len + 3)? else {
                    return None;
                };
                (*percent, *two, *last) = (b'%', b'2', if b == b'/' { b'f' } else { b'5' });
                len += 3;
            } else {
                *out.get_mut(len)? = b;
                len += 1;
            }
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
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.words()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// The header as eight 32-bit words, each to be written little-endian
    /// (on a little-endian machine, the words' memory is the header: how
    /// the chainloader sends it, without a byte-by-byte copy).
    pub fn words(&self) -> [u32; REQUEST_HEADER / 4] {
        let l = self.lengths;
        [
            u32::from_le_bytes(REQUEST_MAGIC),
            u32::from(VERSION) | u32::from(self.machine) << 16,
            u32::from(self.class) | u32::from(self.flags) << 8,
            l[0],
            l[1],
            l[2],
            l[3],
            l[4],
        ]
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
        keyed(class, machine, interp, [None, None], b"/cwd", b"/bin/x")
    }

    fn keyed(
        class: u8,
        machine: u16,
        interp: &[u8],
        vars: [Option<&[u8]>; 2],
        cwd: &[u8],
        execfn: &[u8],
    ) -> Option<std::vec::Vec<u8>> {
        let mut out = [0u8; MAX_ANSWER_NAME];
        answer_name(class, machine, interp, vars, cwd, execfn, &mut out).map(|n| out[..n].to_vec())
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
    fn what_keyed_names_need() {
        let needs = |ldso: Option<&[u8]>, llp: Option<&[u8]>| answer_needs([ldso, llp]);
        assert_eq!(needs(None, None), 0);
        assert_eq!(needs(Some(b"/a:/b"), Some(b"/c;/d")), 0);
        // Relative: empty value, empty entry (leading, inner, trailing), no
        // leading slash, under either separator, in either variable.
        for rel in [
            &b""[..],
            b":/a",
            b"/a::/b",
            b"/a:",
            b"/a;",
            b"a",
            b"/a:b",
            b"/a;./b",
            b"~/x",
        ] {
            assert_eq!(needs(None, Some(rel)), NEEDS_CWD, "{rel:?}");
            assert_eq!(needs(Some(rel), None), NEEDS_CWD, "{rel:?}");
        }
        // Any `$` (`$ORIGIN`, `${ORIGIN}`, `$LIB` too): the program's path as well.
        for origin in [&b"$ORIGIN/../lib"[..], b"/a:${ORIGIN}", b"/a/$LIB", b"$"] {
            assert_eq!(needs(Some(b"/x"), Some(origin)), NEEDS_CWD | NEEDS_EXECFN, "{origin:?}");
            assert_eq!(needs(Some(origin), None), NEEDS_CWD | NEEDS_EXECFN, "{origin:?}");
        }
    }

    #[test]
    fn keyed_answer_names() {
        let i = &b"/lib64/ld-linux-x86-64.so.2"[..];
        let base = &b"003e2%2flib64%2fld-linux-x86-64.so.2"[..];
        let with = |tail: &[u8]| Some([base, tail].concat());
        assert_eq!(keyed(2, 62, i, [None, None], b"/w", b"/p"), with(b""));
        assert_eq!(
            keyed(2, 62, i, [None, Some(b"/nowhere")], b"/w", b"/p"),
            with(b"%l%2fnowhere")
        );
        assert_eq!(keyed(2, 62, i, [Some(b"/o"), None], b"/w", b"/p"), with(b"%L%2fo"));
        // Set but empty is not unset, and LDSO_PATH is not LD_LIBRARY_PATH.
        assert_eq!(keyed(2, 62, i, [Some(b""), None], b"/w", b"/p"), with(b"%L%c%2fw"));
        assert_eq!(keyed(2, 62, i, [None, Some(b"")], b"/w", b"/p"), with(b"%l%c%2fw"));
        // The working directory and the program's path only when needed.
        assert_eq!(
            keyed(2, 62, i, [None, Some(b"lib")], b"/w", b"/p"),
            with(b"%llib%c%2fw")
        );
        assert_eq!(
            keyed(2, 62, i, [Some(b"/a%"), Some(b"$ORIGIN")], b"/w", b"/b/p"),
            with(b"%L%2fa%25%l$ORIGIN%c%2fw%o%2fb%2fp")
        );
        // Different requests, different names: no value can forge a marker.
        let names = [
            keyed(2, 62, i, [Some(b"/a"), Some(b"/b")], b"/", b"/"),
            keyed(2, 62, i, [Some(b"/a%l%2fb"), None], b"/", b"/"),
            keyed(2, 62, i, [None, Some(b"/a%L%2fb")], b"/", b"/"),
            keyed(2, 62, i, [None, Some(b"/a/b")], b"/", b"/"),
            keyed(2, 62, i, [None, Some(b"a")], b"/x", b"/"),
            keyed(2, 62, i, [None, Some(b"a")], b"/y", b"/"),
            keyed(2, 62, i, [None, Some(b"$ORIGIN")], b"/", b"/x/p"),
            keyed(2, 62, i, [None, Some(b"$ORIGIN")], b"/", b"/y/p"),
            keyed(2, 62, i, [None, Some(b"$ORIGIN")], b"/x", b"p"),
            keyed(2, 62, i, [None, Some(b"$ORIGIN")], b"/y", b"p"),
        ];
        for (a, x) in names.iter().enumerate() {
            assert!(x.is_some());
            for y in &names[a + 1..] {
                assert_ne!(x, y);
            }
        }
        // Too long for NAME_MAX: none (the process asks).
        let long = std::vec![b'/'; 100];
        assert_eq!(keyed(2, 62, i, [None, Some(&long)], b"/", b"/"), None);
        assert_eq!(keyed(2, 62, b"x", [None, Some(b"/a")], b"/", b"/"), None);
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
