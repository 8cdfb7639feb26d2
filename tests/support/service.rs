//! Talking to an exec service, and what ldchain says it chose.

/// What came back on one connection to an exec service.
#[derive(Debug)]
pub struct Reply {
    /// `None`: the connection closed without a (complete) reply.
    pub errno: Option<u16>,
    pub message: String,
    pub fds: Vec<std::os::fd::OwnedFd>,
}

/// Read one reply: header, message and any descriptors, until the reply is
/// complete or the server closes. Fails the test after a minute without a
/// byte: a service that never answers is a failure, not a hang.
pub fn receive(s: &std::os::unix::net::UnixStream) -> Reply {
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let mut buf = [0u8; ldchain::service::proto::REPLY_HEADER + ldchain::service::proto::MAX_MESSAGE];
    let mut got = 0;
    let mut fds = Vec::new();
    loop {
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut buf[got..])];
        let r = rustix::net::recvmsg(s, &mut iov, &mut control, rustix::net::RecvFlags::CMSG_CLOEXEC)
            .unwrap_or_else(|e| panic!("no reply from the service ({e}; a minute allowed)"));
        for msg in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(rights) = msg {
                fds.extend(rights);
            }
        }
        got += r.bytes;
        if let Some((errno, len)) = ldchain::service::proto::decode_reply_header(&buf[..got]) {
            if got >= ldchain::service::proto::REPLY_HEADER + len {
                assert_eq!(
                    got,
                    ldchain::service::proto::REPLY_HEADER + len,
                    "bytes after the reply"
                );
                let message = String::from_utf8(buf[ldchain::service::proto::REPLY_HEADER..got].to_vec()).unwrap();
                return Reply {
                    errno: Some(errno),
                    message,
                    fds,
                };
            }
        }
        if r.bytes == 0 {
            assert!(got == 0, "a partial reply: {:?}", &buf[..got]);
            return Reply {
                errno: None,
                message: String::new(),
                fds,
            };
        }
    }
}

/// The ld.so paths the exec service chose, from ldchain's `-v` log lines.
pub fn chosen<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| l.contains("exec service"))
        .filter_map(|l| l.split("ldso=").nth(1))
        .map(|s| s.split_whitespace().next().unwrap().to_owned())
        .collect()
}
