//! The exec service's request decoder, and a real `ExecService` fed the same
//! bytes. The input is a request as a client would send it: a 32-byte header
//! and a body. Properties:
//!
//! - `RequestHeader::decode` and `InterpRequest::decode` never panic; an
//!   accepted header re-encodes to the same 32 bytes, with every length
//!   within its limit; an accepted request re-encodes to the same bytes,
//!   has a non-empty PT_INTERP and no NUL in any string; a refusal maps to
//!   EPROTO, E2BIG (a length over its limit) or ENOEXEC.
//! - The service, sent the same bytes and then end of file, agrees: a
//!   complete request it refuses gets exactly the decoder's errno; one it
//!   accepts gets a reply (errno 0 with exactly one descriptor, or an errno
//!   and a one-line message with none); an incomplete one is closed without
//!   a reply. It answers within 5 s, every time.
#![no_main]

use std::fs;
use std::io::{IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chainloader::proto::{
    decode_reply_header, ProtoError, RequestHeader, MAX_LENGTHS, MAX_MESSAGE, REPLY_HEADER, REQUEST_HEADER,
};
use ldchain_service::{ExecService, InterpRequest, Limits, NamespaceSource, RequestError};
use ldchain_resolver::{Config, Namespace, Resolver};
use libfuzzer_sys::fuzz_target;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

struct Service {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    _service: ExecService,
}

/// One service for the whole run, over a small jail holding glibc's ld.so
/// at its conventional path and in /opt/l.
fn service() -> &'static Service {
    static S: OnceLock<Service> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for (from, to) in [
            ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
            ("/lib64/ld-linux-x86-64.so.2", "opt/l/ld-linux-x86-64.so.2"),
            ("/bin/true", "bin/app"),
        ] {
            let to = dir.path().join(to);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(from, to).unwrap();
        }
        let socket = dir.path().join("exec.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let source = NamespaceSource::new(Resolver::new(Config::default()), Namespace::open(dir.path()).unwrap());
        let service = ExecService::start(listener, Arc::new(source), Limits::default()).unwrap();
        Service {
            _dir: dir,
            socket,
            _service: service,
        }
    })
}

/// What the decoder makes of `data`: `None` if it is incomplete (the
/// service must close without a reply), else the verdict.
fn decode(data: &[u8]) -> Option<Result<InterpRequest, RequestError>> {
    let header: &[u8; REQUEST_HEADER] = data.get(..REQUEST_HEADER)?.try_into().unwrap();
    let header = match RequestHeader::decode(header) {
        Ok(h) => h,
        Err(e) => {
            if let ProtoError::TooLong(i) = e {
                let len = u32::from_le_bytes(data[12 + 4 * i..16 + 4 * i].try_into().unwrap());
                assert!(len > MAX_LENGTHS[i]);
            }
            return Some(Err(RequestError::Header(e)));
        }
    };
    assert_eq!(
        &header.encode()[..],
        &data[..REQUEST_HEADER],
        "header does not round-trip"
    );
    for (len, max) in header.lengths.iter().zip(MAX_LENGTHS) {
        assert!(*len <= max);
    }
    let body = &data[REQUEST_HEADER..];
    let want = header.body_len();
    if body.len() < want {
        // Handed a short body, the decoder refuses it (never reads past it).
        assert!(matches!(
            InterpRequest::decode(&header, body),
            Err(RequestError::BodyLength { .. })
        ));
        return None;
    }
    let verdict = InterpRequest::decode(&header, &body[..want]);
    if let Ok(r) = &verdict {
        assert_eq!(
            r.encode(),
            &data[..REQUEST_HEADER + want],
            "request does not round-trip"
        );
        assert!(!r.interp.is_empty());
        for s in [
            Some(&r.interp),
            Some(&r.execfn),
            Some(&r.cwd),
            r.ldso_path.as_ref(),
            r.ld_library_path.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(!s.contains(&0));
        }
    }
    Some(verdict)
}

/// Send `data` to the service, then end of file; read its reply: `None` if
/// it closed without one, else (errno, message, descriptors received).
fn ask(data: &[u8]) -> Option<(u16, String, usize)> {
    let mut s = UnixStream::connect(&service().socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The service stops reading at the end of the request (or at a refused
    // header), and may close before the rest is sent.
    let _ = s.write_all(data);
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = [0u8; REPLY_HEADER + MAX_MESSAGE];
    let (mut got, mut fds) = (0, 0);
    loop {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut buf[got..])];
        let n = match rustix::net::recvmsg(&s, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(r) => r.bytes,
            Err(rustix::io::Errno::AGAIN) => panic!("the service did not answer within 5 s"),
            Err(rustix::io::Errno::CONNRESET) => 0,
            Err(e) => panic!("recvmsg: {e}"),
        };
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = msg {
                fds += rights.count();
            }
        }
        got += n;
        if let Some((errno, len)) = decode_reply_header(&buf[..got]) {
            if got >= REPLY_HEADER + len {
                let message = String::from_utf8(buf[REPLY_HEADER..REPLY_HEADER + len].to_vec()).unwrap();
                return Some((errno, message, fds));
            }
        }
        if n == 0 {
            assert_eq!((got, fds), (0, 0), "a partial reply");
            return None;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let verdict = decode(data);
    let reply = ask(data);
    match (verdict, reply) {
        (None, None) => {}
        (Some(Err(e)), Some((errno, message, fds))) => {
            let want = match e {
                RequestError::Header(ProtoError::TooLong(_)) => libc::E2BIG,
                RequestError::Machine { .. } => libc::ENOEXEC,
                _ => libc::EPROTO,
            };
            assert_eq!(e.errno(), want);
            assert_eq!(i32::from(errno), want, "{e}: the service said {errno} {message:?}");
            assert_eq!(fds, 0);
            assert!(!message.is_empty() && !message.contains('\n'));
        }
        (Some(Ok(_)), Some((0, message, fds))) => {
            assert_eq!((message.as_str(), fds), ("", 1));
        }
        (Some(Ok(_)), Some((errno, message, fds))) => {
            assert!(errno != 0 && fds == 0, "{errno} {message:?} {fds}");
            assert!(!message.is_empty() && !message.contains('\n'));
        }
        (verdict, reply) => panic!("decoder {verdict:?}, service {reply:?}"),
    }
});
