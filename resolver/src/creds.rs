//! Whose rights a plan is made with.
//!
//! By default the resolver opens files with the calling thread's own rights
//! (for a server running as root: every file). A server that acts for a
//! client sets the client's [`Credentials`] on the [`Namespace`](crate::Namespace)
//! ([`with_credentials`](crate::Namespace::with_credentials)); every plan or
//! search in that namespace is then made as that client would make it:
//! [`act_as`] switches the calling *thread's* file-system uid and gid and its
//! supplementary groups to the client's and empties its effective
//! capability set, for as long as the returned guard lives, and puts all of
//! it back when the guard is dropped (on every path out, panics included).
//!
//! Why each part: `openat2` checks search permission on every directory and
//! the final `open` read permission with the thread's fs ids and groups; a
//! client in a jail has no capabilities (the sandbox empties every set), and
//! a server that is root *in its own user namespace* (an unprivileged
//! `ldchain run`) acts for a client that is uid 0 there too — switching
//! the fs uid alone would then keep `CAP_DAC_OVERRIDE`. Only this thread
//! changes: the raw system calls are per thread (glibc's `setgroups`
//! changes every thread, so `rustix::thread::set_thread_groups` is used).
//! The kernel marks the process non-dumpable when a thread's fs ids change;
//! the guard restores the previous setting.

use std::io;
use std::os::fd::AsFd;

use rustix::process::Gid;
use rustix::thread::{CapabilitySet, CapabilitySets};

use crate::error::ExecError;

mod sys;

/// A process's rights over files: what the kernel checks a path walk and an
/// open against (with no capabilities).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Its (fs) user id.
    pub uid: u32,
    /// Its (fs) group id.
    pub gid: u32,
    /// Its supplementary groups.
    pub groups: Vec<u32>,
}

impl Credentials {
    /// The credentials of the process at the other end of a connected Unix
    /// socket, as the kernel recorded them at `connect()` (`SO_PEERCRED`,
    /// and `SO_PEERGROUPS` for the supplementary groups): the client cannot
    /// forge them, unlike anything it writes in a request.
    pub fn of_peer(socket: impl AsFd) -> io::Result<Credentials> {
        let cred = rustix::net::sockopt::socket_peercred(&socket)?;
        let mut groups = sys::peer_groups(socket.as_fd())?;
        groups.sort_unstable();
        groups.dedup();
        Ok(Credentials {
            uid: cred.uid.as_raw(),
            gid: cred.gid.as_raw(),
            groups,
        })
    }

    /// A digest, for keys of caches whose entries depend on whose rights
    /// made them.
    pub(crate) fn digest(this: Option<&Credentials>) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        this.hash(&mut h);
        h.finish()
    }
}

/// The calling thread's state before [`act_as`], put back on drop.
#[derive(Debug)]
pub(crate) struct Acting {
    fsuid: u32,
    fsgid: u32,
    groups: Option<Vec<Gid>>,
    caps: CapabilitySets,
    dumpable: Option<rustix::process::DumpableBehavior>,
}

/// Make the calling thread check files as `who` would, with no
/// capabilities, until the guard is dropped; `None`: nothing changes (the
/// thread's own rights). Fails — and changes nothing — if the thread may
/// not take on those credentials.
pub(crate) fn act_as(who: Option<&Credentials>) -> Result<Option<Acting>, ExecError> {
    let Some(who) = who else { return Ok(None) };
    let fail = |what: &str, e: io::Error| ExecError::Io {
        path: format!("<{what} for uid {}>", who.uid).into(),
        source: e,
    };
    let caps = rustix::thread::capabilities(None).map_err(|e| fail("capget", e.into()))?;
    let mut acting = Acting {
        fsuid: sys::fsuid(),
        fsgid: sys::fsgid(),
        groups: None,
        caps,
        dumpable: rustix::process::dumpable_behavior().ok(),
    };
    // Groups first: setgroups needs CAP_SETGID, which the rest may drop.
    let current = rustix::process::getgroups().map_err(|e| fail("getgroups", e.into()))?;
    let mut want: Vec<Gid> = who.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    let mut have = current.clone();
    want.sort_unstable_by_key(|g| g.as_raw());
    have.sort_unstable_by_key(|g| g.as_raw());
    want.dedup();
    have.dedup();
    if want != have {
        rustix::thread::set_thread_groups(&want).map_err(|e| fail("setgroups", e.into()))?;
        acting.groups = Some(current);
    }
    // From here on, dropping `acting` undoes what was done.
    sys::set_fsgid(who.gid).map_err(|e| fail("setfsgid", e))?;
    sys::set_fsuid(who.uid).map_err(|e| fail("setfsuid", e))?;
    let none = CapabilitySets {
        effective: CapabilitySet::empty(),
        ..caps
    };
    rustix::thread::set_capabilities(None, none).map_err(|e| fail("capset", e.into()))?;
    Ok(Some(acting))
}

impl Drop for Acting {
    fn drop(&mut self) {
        // Capabilities first (setgroups and setfs*id may need them), then
        // the ids, then the capabilities exactly as they were (setting the
        // fs uid back to 0 raises the file capabilities of the permitted set).
        let mut ok = rustix::thread::set_capabilities(None, self.caps).is_ok();
        if let Some(groups) = &self.groups {
            ok &= rustix::thread::set_thread_groups(groups).is_ok();
        }
        ok &= sys::set_fsgid(self.fsgid).is_ok();
        ok &= sys::set_fsuid(self.fsuid).is_ok();
        ok &= rustix::thread::set_capabilities(None, self.caps).is_ok();
        if let Some(d) = self.dumpable {
            let _ = rustix::process::set_dumpable_behavior(d);
        }
        if !ok {
            tracing::error!(fsuid = self.fsuid, "cannot restore this thread's credentials");
        }
    }
}
