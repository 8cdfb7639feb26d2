//! What answers the service's requests (see [`LdsoSource`]).

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use ldchain_resolver::{Credentials, ExecError, InterpRequest};

/// What answers requests: the resolver over one namespace, or anything else
/// an FsOp server wants to put there.
///
/// `client` is the requesting process's credentials as the kernel gave them
/// for its connection (`SO_PEERCRED`, `SO_PEERGROUPS`), never anything the
/// request says: an answer must be a file that process could use as its
/// interpreter itself (every directory on the way searchable, the file
/// readable and executable, with no capabilities), and must say no more
/// than `execve` would tell it.
pub trait LdsoSource: Send + Sync {
    /// The dynamic linker for this request, open for reading. The same
    /// open file may be returned for many requests: the server sends each
    /// client a description of its own, opened again through
    /// `/proc/self/fd` (a client may change its description's status
    /// flags, `O_DIRECT` say, and no other client must see that).
    fn ldso(&self, request: &InterpRequest, client: &Credentials) -> Result<Arc<OwnedFd>, ExecError>;

    /// The answers known without searching, one for each of `requests`
    /// (None where there is none: that request goes to a worker). Asked on
    /// the I/O thread, so it must not block; asked for several requests at
    /// once, each of them read whole before the call, so that one look for
    /// changes can serve them all (a change made before a client sent its
    /// request must be seen in its answer).
    fn cached(&self, requests: &[(&InterpRequest, &Credentials)]) -> Vec<Option<Arc<OwnedFd>>> {
        vec![None; requests.len()]
    }

    /// A descriptor that becomes readable when cached answers may have
    /// gone stale: the server waits on it with its clients and calls
    /// [`refresh`](Self::refresh) (on the I/O thread: it must not block).
    /// Answers left standing in [`ANSWER_DIR`](chainloader::proto::ANSWER_DIR) are taken without
    /// asking, so they must go as soon as they are stale, not at the next
    /// request.
    fn changes(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// Drop whatever cached answers have gone stale.
    fn refresh(&self) {}

    /// Drop the answers left standing if what they depended on changed in
    /// a way [`changes`](Self::changes) does not report (a write through a
    /// mapping); whether answers still stand. The server calls it every
    /// [`STANDING_CHECK`](crate::STANDING_CHECK) while they do, on the I/O
    /// thread: without `wait` it must not block, and returns None if it
    /// cannot look now (the server then asks again soon, with `wait`).
    fn check_standing(&self, wait: bool) -> Option<bool> {
        let _ = wait;
        Some(false)
    }
}
