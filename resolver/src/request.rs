//! The exec service's question: one request from a chainloader in interp
//! mode, as the wire format (`chainloader::proto`) carries it, decoded and
//! checked. The resolver answers it ([`Resolver::ldso_for`](crate::Resolver::ldso_for));
//! the exec service (crate `ldchain-service`) receives and replies.

use chainloader::proto::{ProtoError, RequestHeader};

use crate::elfinfo::Machine;

/// One request from a chainloader in interp mode, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpRequest {
    /// The program's architecture.
    pub machine: Machine,
    /// Its `PT_INTERP` path.
    pub interp: Vec<u8>,
    /// `AT_EXECFN`: the path the program was exec'd by (maybe relative).
    pub execfn: Vec<u8>,
    /// The process's working directory inside the jail (empty if unknown).
    pub cwd: Vec<u8>,
    /// `LDSO_PATH` from its environment, if set.
    pub ldso_path: Option<Vec<u8>>,
    /// `LD_LIBRARY_PATH` from its environment, if set.
    pub ld_library_path: Option<Vec<u8>>,
    /// `AT_SECURE`: the kernel runs it in secure-execution mode.
    pub secure: bool,
}

/// Why a request is refused before the resolver sees it; each maps to an errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The header is not this protocol's.
    #[error("malformed request: {0:?}")]
    Header(ProtoError),
    /// A string holds a NUL byte.
    #[error("malformed request: NUL byte in string {0}")]
    Nul(usize),
    /// No such architecture.
    #[error("unsupported architecture (e_machine {machine}, class {class})")]
    Machine {
        /// `e_machine`.
        machine: u16,
        /// ELF class.
        class: u8,
    },
    /// An empty `PT_INTERP`.
    #[error("malformed request: empty PT_INTERP")]
    NoInterp,
    /// `LDSO_PATH` or `LD_LIBRARY_PATH` (string `.0`) has bytes but its
    /// flag says the variable is not set.
    #[error("malformed request: string {0} sent without its flag")]
    Unflagged(usize),
    /// The body is not as long as the header's lengths add up to.
    #[error("malformed request: {got}-byte body, the header says {want}")]
    BodyLength {
        /// Bytes received.
        got: usize,
        /// Bytes the header announced.
        want: usize,
    },
}

impl RequestError {
    /// The errno the chainloader reports: `EPROTO` for a malformed request,
    /// `E2BIG` for an oversized one, `ENOEXEC` for an unknown architecture.
    pub fn errno(&self) -> i32 {
        match self {
            RequestError::Header(ProtoError::TooLong(_)) => libc::E2BIG,
            RequestError::Machine { .. } => libc::ENOEXEC,
            _ => libc::EPROTO,
        }
    }
}

impl InterpRequest {
    /// The directory of the program's path (`AT_EXECFN`), which `$ORIGIN`
    /// in its search path stands for.
    pub fn origin(&self) -> &[u8] {
        crate::bytepath::dirname(&self.execfn)
    }

    /// Decode a request whose header has been checked: `body` must be
    /// exactly [`RequestHeader::body_len`] bytes. What is accepted is what
    /// [`encode`](Self::encode) gives back byte for byte: every byte of the
    /// request means something.
    pub fn decode(header: &RequestHeader, body: &[u8]) -> Result<InterpRequest, RequestError> {
        if body.len() != header.body_len() {
            return Err(RequestError::BodyLength {
                got: body.len(),
                want: header.body_len(),
            });
        }
        let machine = Machine::from_ident(header.class, header.machine).ok_or(RequestError::Machine {
            machine: header.machine,
            class: header.class,
        })?;
        let mut strings = Vec::with_capacity(5);
        let mut rest = body;
        for (i, &len) in header.lengths.iter().enumerate() {
            let (s, tail) = rest.split_at((len as usize).min(rest.len()));
            if s.contains(&0) {
                return Err(RequestError::Nul(i));
            }
            strings.push(s.to_vec());
            rest = tail;
        }
        let [interp, execfn, cwd, ldso_path, ld_library_path]: [Vec<u8>; 5] =
            strings.try_into().map_err(|_| RequestError::NoInterp)?;
        if interp.is_empty() {
            return Err(RequestError::NoInterp);
        }
        let flag = |bit: u8| header.flags & bit != 0;
        for (i, bit) in [
            (3, chainloader::proto::FLAG_LDSO_PATH),
            (4, chainloader::proto::FLAG_LD_LIBRARY_PATH),
        ] {
            if !flag(bit) && header.lengths[i] != 0 {
                return Err(RequestError::Unflagged(i));
            }
        }
        Ok(InterpRequest {
            machine,
            interp,
            execfn,
            cwd,
            ldso_path: flag(chainloader::proto::FLAG_LDSO_PATH).then_some(ldso_path),
            ld_library_path: flag(chainloader::proto::FLAG_LD_LIBRARY_PATH).then_some(ld_library_path),
            secure: flag(chainloader::proto::FLAG_SECURE),
        })
    }

    /// The request's bytes, as a chainloader sends them (for tests and
    /// other clients).
    pub fn encode(&self) -> Vec<u8> {
        let (class, machine) = self.machine.ident();
        let strings: [&[u8]; 5] = [
            &self.interp,
            &self.execfn,
            &self.cwd,
            self.ldso_path.as_deref().unwrap_or_default(),
            self.ld_library_path.as_deref().unwrap_or_default(),
        ];
        let mut flags = 0;
        for (set, bit) in [
            (self.secure, chainloader::proto::FLAG_SECURE),
            (self.ldso_path.is_some(), chainloader::proto::FLAG_LDSO_PATH),
            (self.ld_library_path.is_some(), chainloader::proto::FLAG_LD_LIBRARY_PATH),
        ] {
            if set {
                flags |= bit;
            }
        }
        let header = RequestHeader {
            machine,
            class,
            flags,
            lengths: strings.map(|s| s.len() as u32),
        };
        let mut out = header.encode().to_vec();
        strings.iter().for_each(|s| out.extend_from_slice(s));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> InterpRequest {
        InterpRequest {
            machine: Machine::X86_64,
            interp: b"/lib64/ld-linux-x86-64.so.2".to_vec(),
            execfn: b"./app".to_vec(),
            cwd: b"/home".to_vec(),
            ldso_path: Some(b"/opt/ld".to_vec()),
            ld_library_path: None,
            secure: true,
        }
    }

    fn decode(bytes: &[u8]) -> Result<InterpRequest, RequestError> {
        let header = RequestHeader::decode(bytes[..32].try_into().unwrap()).map_err(RequestError::Header)?;
        InterpRequest::decode(&header, &bytes[32..])
    }

    #[test]
    fn requests_round_trip() {
        for r in [
            request(),
            InterpRequest {
                ldso_path: None,
                ld_library_path: Some(Vec::new()),
                secure: false,
                machine: Machine::I386,
                ..request()
            },
        ] {
            let bytes = r.encode();
            assert_eq!(decode(&bytes), Ok(r.clone()));
            assert_eq!(decode(&bytes).unwrap().encode(), bytes);
        }
    }

    #[test]
    fn a_string_without_its_flag_is_refused() {
        // LD_LIBRARY_PATH's bytes sent with its flag clear: once accepted
        // and silently dropped, so the request meant less than it said.
        let mut bytes = InterpRequest {
            ld_library_path: Some(b"/lib".to_vec()),
            ..request()
        }
        .encode();
        bytes[9] &= !chainloader::proto::FLAG_LD_LIBRARY_PATH;
        let e = decode(&bytes).unwrap_err();
        assert_eq!(e, RequestError::Unflagged(4));
        assert_eq!(e.errno(), libc::EPROTO);
        let mut bytes = request().encode();
        bytes[9] &= !chainloader::proto::FLAG_LDSO_PATH;
        assert_eq!(decode(&bytes), Err(RequestError::Unflagged(3)));
        // A set flag with an empty value is a variable set to "".
        let r = InterpRequest {
            ldso_path: Some(Vec::new()),
            ..request()
        };
        assert_eq!(decode(&r.encode()), Ok(r));
    }

    #[test]
    fn a_body_of_the_wrong_length_is_refused() {
        let bytes = request().encode();
        let header = RequestHeader::decode(bytes[..32].try_into().unwrap()).unwrap();
        let want = header.body_len();
        for got in [0, want - 1, want + 1] {
            let mut body = bytes[32..].to_vec();
            body.resize(got, b'x');
            let e = InterpRequest::decode(&header, &body).unwrap_err();
            assert_eq!(e, RequestError::BodyLength { got, want });
            assert_eq!(e.errno(), libc::EPROTO);
        }
    }
}
