//! The service's threads: one I/O thread reading requests without ever
//! blocking on a client, and workers that run the resolver and answer.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chainloader::proto::{encode_reply_header, RequestHeader, MAX_MESSAGE, REQUEST_HEADER};
use rustix::event::epoll;
use rustix::event::{eventfd, EventfdFlags};
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use tracing::{debug, warn};

use crate::source::LdsoSource;
use ldchain_resolver::{Credentials, ExecError, InterpRequest, ProcFd, RequestError};

/// Bounds on what clients may cost the server.
///
/// The defaults ([`Limits::default`]): 1,024 connections, 5 seconds per
/// request, 2 workers.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections held at once, being read or waiting for their answer;
    /// more wait in the listen backlog. Default: 1,024.
    pub max_connections: usize,
    /// How long a client may take to send its request. Default: 5 seconds.
    pub request_timeout: Duration,
    /// Worker threads running the resolver (at least one is started).
    /// Default: 2.
    pub workers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            request_timeout: Duration::from_secs(5),
            workers: 2,
        }
    }
}

/// Counters, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests answered with a descriptor.
    pub served: AtomicU64,
    /// Requests answered with an errno.
    pub refused: AtomicU64,
    /// Connections closed without an answer (malformed beyond reply, client
    /// gone, deadline passed).
    pub dropped: AtomicU64,
    /// Connections being read right now.
    pub open: AtomicUsize,
    /// Complete requests with the workers (queued or being answered).
    pub answering: AtomicUsize,
}

/// A running exec service; stopped (threads joined) when dropped.
pub struct ExecService {
    stop: Arc<OwnedFd>,
    stats: Arc<Stats>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ExecService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecService").field("stats", &self.stats).finish()
    }
}

const LISTENER: u64 = u64::MAX;
const STOP: u64 = u64::MAX - 1;
/// A worker has finished with a connection: a slot may be free.
const WAKE: u64 = u64::MAX - 2;
/// Something cached answers depended on changed (`LdsoSource::changes`).
const CHANGED: u64 = u64::MAX - 3;
/// Most connections accepted before the connections being read are looked
/// at again (see `IoLoop::accept`).
const ACCEPT_BATCH: usize = 64;
/// Most complete requests read before the cache is asked for them (see
/// `IoLoop::answer_ready`): one look for changes serves them all. The
/// first of them waits for the rest of the batch, or of the epoll round if
/// that ends first: what a request late in the round waited for anyway.
const ANSWER_BATCH: usize = 16;
/// How long the listener is left alone after `accept` failed for want of
/// descriptors or memory.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How often connections being read are looked at for their deadline, and
/// a paused listener for its pause's end.
const TICK: Duration = Duration::from_millis(200);
/// How often, while answers stand, what they depended on is compared with
/// what it was ([`LdsoSource::check_standing`]): a write through a mapping
/// sends no event, and a standing answer is taken without asking. A change
/// of that kind goes unseen by execs for at most this long, plus 10 ms
/// and one worker's trace if the cache was busy (`STANDING_RETRY`).
pub const STANDING_CHECK: Duration = Duration::from_secs(1);
/// When the cache was busy at a check, how soon it is checked again, then
/// waiting for the cache: a jail that keeps the workers tracing must not
/// keep its stale answers standing.
const STANDING_RETRY: Duration = Duration::from_millis(10);

impl ExecService {
    /// Serve `listener` with `source` until dropped.
    ///
    /// Raises the process's soft `RLIMIT_NOFILE` to its hard limit first:
    /// the service holds a descriptor per client being served and per
    /// cached dynamic linker, and the soft limit (often 1,024) is a
    /// default for programs that use `select`, which this one does not.
    pub fn start(listener: UnixListener, source: Arc<dyn LdsoSource>, limits: Limits) -> io::Result<ExecService> {
        raise_nofile_limit();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let wake = Arc::new(eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?);
        let stats = Arc::new(Stats::default());
        let handout = Arc::new(Handout::new(stats.clone())?);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::new();
        for i in 0..limits.workers.max(1) {
            let (queue, source, handout, wake) = (queue.clone(), source.clone(), handout.clone(), wake.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("ldchain-exec-{i}"))
                    .spawn(move || worker(&queue, &*source, &handout, &wake))?,
            );
        }
        let io = IoLoop::new(listener, &stop, source, handout, wake, jobs, limits)?;
        threads.push(
            std::thread::Builder::new()
                .name("ldchain-exec-io".into())
                .spawn(move || io.run())?,
        );
        Ok(ExecService { stop, stats, threads })
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

impl Drop for ExecService {
    fn drop(&mut self) {
        let _ = rustix::io::write(&*self.stop, &1u64.to_ne_bytes());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard one (best effort).
fn raise_nofile_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            debug!(error = %e, "exec service: cannot raise RLIMIT_NOFILE");
        }
    }
}

/// A complete request, handed to a worker with its connection.
struct Job {
    stream: UnixStream,
    request: InterpRequest,
    client: Credentials,
}

/// A connection being read.
struct Conn {
    stream: UnixStream,
    /// Who connected, as the kernel says (`SO_PEERCRED`, `SO_PEERGROUPS`).
    client: Credentials,
    buf: Vec<u8>,
    header: Option<RequestHeader>,
    deadline: Instant,
}

enum Progress {
    More,
    Done(Box<InterpRequest>),
    Refuse(RequestError),
    Gone,
}

/// The most read from a client in one call.
const CHUNK: usize = 16384;

impl Conn {
    /// Read what the client has sent so far, never blocking, through
    /// `chunk` (the I/O thread's, reused: not cleared for every read). The
    /// first read takes up to a chunk, so a request that arrived whole is
    /// read at once.
    fn read(&mut self, chunk: &mut [u8; CHUNK]) -> Progress {
        if self.buf.is_empty() {
            if let Some(progress) = self.peek(chunk) {
                return progress;
            }
        }
        loop {
            if let Some(done) = self.parse() {
                return done;
            }
            let room = match &self.header {
                None => CHUNK,
                Some(h) => (REQUEST_HEADER + h.body_len() - self.buf.len()).min(CHUNK),
            };
            match self.stream.read(&mut chunk[..room]) {
                Ok(0) => return Progress::Gone,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::More,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Progress::Gone,
            }
        }
    }

    /// A request that arrived whole, looked at without being taken from
    /// the socket: taking it would wake the client, which waits on the same
    /// socket for its answer, for nothing (the kernel tells a socket's
    /// waiters that there is room to write again). It is freed when the
    /// connection is closed, after the answer. None if more is to come (the
    /// bytes are then read as they arrive) or the peek failed (the read
    /// then sees why).
    fn peek(&mut self, chunk: &mut [u8; CHUNK]) -> Option<Progress> {
        let flags = RecvFlags::PEEK | RecvFlags::DONTWAIT;
        let n = match rustix::net::recv(&self.stream, &mut chunk[..], flags) {
            Ok((0, _)) => return Some(Progress::Gone),
            Ok((n, _)) => n,
            Err(rustix::io::Errno::AGAIN) => return Some(Progress::More),
            Err(_) => return None,
        };
        self.buf.extend_from_slice(&chunk[..n]);
        let done = self.parse();
        if done.is_none() {
            self.buf.clear();
            self.header = None;
        }
        done
    }

    /// The request, once all of it has arrived. Only what has arrived is
    /// ever held: a slow client announcing 400 KiB costs what it sent.
    fn parse(&mut self) -> Option<Progress> {
        if self.header.is_none() {
            let head: &[u8; REQUEST_HEADER] = self.buf.get(..REQUEST_HEADER)?.try_into().ok()?;
            match RequestHeader::decode(head) {
                Ok(h) => self.header = Some(h),
                Err(e) => return Some(Progress::Refuse(RequestError::Header(e))),
            }
        }
        let h = self.header.as_ref()?;
        let want = REQUEST_HEADER + h.body_len();
        if self.buf.len() < want {
            return None;
        }
        // One request per connection: what a client sends after it is
        // never looked at (the first read may have taken some of it).
        Some(match InterpRequest::decode(h, &self.buf[REQUEST_HEADER..want]) {
            Ok(r) => Progress::Done(Box::new(r)),
            Err(e) => Progress::Refuse(e),
        })
    }
}

struct IoLoop {
    epoll: OwnedFd,
    wake: Arc<OwnedFd>,
    listener: UnixListener,
    source: Arc<dyn LdsoSource>,
    handout: Arc<Handout>,
    stats: Arc<Stats>,
    jobs: Sender<Job>,
    limits: Limits,
    conns: HashMap<u64, Conn>,
    /// Where every connection's bytes are read into first.
    chunk: Box<[u8; CHUNK]>,
    /// Requests read whole and not yet answered: the cache is asked for
    /// them together ([`answer_ready`](Self::answer_ready)), at most
    /// [`ANSWER_BATCH`] at a time.
    ready: Vec<(Conn, Box<InterpRequest>)>,
    next: u64,
    listening: bool,
    /// Not accepting until then: `accept` failed (`EMFILE`, `ENFILE`,
    /// `ENOMEM`, …). The listener stays readable, so watching it meanwhile
    /// would spin.
    accept_paused: Option<Instant>,
    /// When to look at the standing answers again
    /// ([`STANDING_CHECK`]); None while none stand.
    standing_check: Option<Instant>,
    /// The last look found the cache busy: the next one waits for it.
    standing_busy: bool,
}

impl IoLoop {
    fn new(
        listener: UnixListener,
        stop: &OwnedFd,
        source: Arc<dyn LdsoSource>,
        handout: Arc<Handout>,
        wake: Arc<OwnedFd>,
        jobs: Sender<Job>,
        limits: Limits,
    ) -> io::Result<IoLoop> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &epoll,
            &listener,
            epoll::EventData::new_u64(LISTENER),
            epoll::EventFlags::IN,
        )?;
        epoll::add(&epoll, stop, epoll::EventData::new_u64(STOP), epoll::EventFlags::IN)?;
        epoll::add(&epoll, &*wake, epoll::EventData::new_u64(WAKE), epoll::EventFlags::IN)?;
        if let Some(changes) = source.changes() {
            epoll::add(
                &epoll,
                changes,
                epoll::EventData::new_u64(CHANGED),
                epoll::EventFlags::IN,
            )?;
        }
        Ok(IoLoop {
            epoll,
            wake,
            listener,
            source,
            stats: handout.stats.clone(),
            handout,
            jobs,
            limits,
            conns: HashMap::new(),
            chunk: Box::new([0; CHUNK]),
            ready: Vec::with_capacity(ANSWER_BATCH),
            next: 0,
            listening: true,
            accept_paused: None,
            // Answers may stand from the start (left ahead of the service).
            standing_check: Some(Instant::now() + STANDING_CHECK),
            standing_busy: false,
        })
    }

    fn run(mut self) {
        let mut events = Vec::with_capacity(256);
        loop {
            events.clear();
            let timeout = self.timeout();
            match epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    warn!(error = %e, "exec service: epoll_wait failed; stopping");
                    return;
                }
            }
            // A change first: the stale answers, and the links standing for
            // them, go before any request of this round is answered.
            if events.iter().any(|ev| ev.data.u64() == CHANGED) {
                self.source.refresh();
            }
            for ev in &events {
                match ev.data.u64() {
                    STOP => return,
                    WAKE => {
                        let _ = rustix::io::read(&*self.wake, &mut [0u8; 8]);
                        // A worker answered: it may have left an answer standing.
                        self.standing_check
                            .get_or_insert_with(|| Instant::now() + STANDING_CHECK);
                    }
                    CHANGED => {}
                    LISTENER => self.accept(),
                    token => self.readable(token),
                }
            }
            self.answer_ready();
            self.expire();
            self.update_listening();
            self.check_standing();
        }
    }

    /// How long `epoll_wait` may wait: [`TICK`] while connections are
    /// being read or accepting is paused (to expire or resume them), and
    /// no later than the next look at the standing answers; else for ever.
    fn timeout(&self) -> Option<rustix::time::Timespec> {
        let ticking = !self.conns.is_empty() || self.accept_paused.is_some();
        let tick = ticking.then_some(TICK);
        let check = self
            .standing_check
            .map(|at| at.saturating_duration_since(Instant::now()));
        let wait = match (tick, check) {
            (Some(tick), Some(check)) => Some(tick.min(check)),
            (tick, check) => tick.or(check),
        };
        // At most a second: always a valid Timespec.
        wait.and_then(|d| rustix::time::Timespec::try_from(d).ok())
    }

    /// Look at the standing answers if it is time ([`STANDING_CHECK`]).
    fn check_standing(&mut self) {
        let now = Instant::now();
        if self.standing_check.is_none_or(|at| at > now) {
            return;
        }
        let wait = self.standing_busy;
        let looked = std::panic::catch_unwind(AssertUnwindSafe(|| self.source.check_standing(wait)));
        (self.standing_check, self.standing_busy) = match looked {
            Ok(Some(false)) => (None, false),
            Ok(Some(true)) | Err(_) => (Some(now + STANDING_CHECK), false),
            Ok(None) => (Some(now + STANDING_RETRY), true),
        };
    }

    /// Connections held: being read, read and about to be answered, or
    /// with the workers.
    fn held(&self) -> usize {
        self.conns.len() + self.ready.len() + self.stats.answering.load(Ordering::SeqCst)
    }

    /// Accept and serve what is waiting, at most [`ACCEPT_BATCH`]
    /// connections: then back to `epoll_wait`, where the listener (level-
    /// triggered) is reported again beside the connections still being
    /// read. Without the bound, clients that reconnect as fast as they are
    /// answered keep the backlog from emptying and starve a connection
    /// whose request came in parts (seconds, under 64 such clients).
    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            if self.held() >= self.limits.max_connections {
                break;
            }
            let flags = rustix::net::SocketFlags::NONBLOCK | rustix::net::SocketFlags::CLOEXEC;
            let stream = match rustix::net::accept_with(&self.listener, flags) {
                Ok(fd) => UnixStream::from(fd),
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
                Err(e) => {
                    debug!(error = %e, "exec service: accept failed; pausing");
                    self.accept_paused = Some(Instant::now() + ACCEPT_PAUSE);
                    break;
                }
            };
            // Whose rights the answer is searched with: the kernel's word,
            // taken once, never the request's.
            let client = match Credentials::of_peer(&stream) {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "exec service: no peer credentials; dropped");
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let mut conn = Conn {
                stream,
                client,
                buf: Vec::new(),
                header: None,
                deadline: Instant::now() + self.limits.request_timeout,
            };
            // A client usually sent its whole request before we looked: read
            // it now, and watch the connection only if more is to come.
            match conn.read(&mut self.chunk) {
                Progress::More => {
                    let token = self.next;
                    self.next += 1;
                    let data = epoll::EventData::new_u64(token);
                    if epoll::add(&self.epoll, &conn.stream, data, epoll::EventFlags::IN).is_ok() {
                        self.conns.insert(token, conn);
                        self.stats.open.store(self.conns.len(), Ordering::Relaxed);
                    } else {
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                progress => self.finish(conn, progress),
            }
        }
        self.answer_ready();
    }

    fn readable(&mut self, token: u64) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let progress = conn.read(&mut self.chunk);
        if matches!(progress, Progress::More) {
            return;
        }
        let conn = self.conns.remove(&token).expect("present");
        let _ = epoll::delete(&self.epoll, &conn.stream);
        self.stats.open.store(self.conns.len(), Ordering::Relaxed);
        self.finish(conn, progress);
    }

    /// Answer the requests read so far: each known one from the source's
    /// cache, the others by a worker. The cache is asked once for all of
    /// them, after every one was read whole, so one look for changes
    /// serves them all (`LdsoSource::cached`). A panic there (a bug) sends
    /// them to the workers.
    fn answer_ready(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        let mut ready = std::mem::take(&mut self.ready);
        let mut known = {
            let asked: Vec<(&InterpRequest, &Credentials)> = ready.iter().map(|(c, r)| (&**r, &c.client)).collect();
            std::panic::catch_unwind(AssertUnwindSafe(|| self.source.cached(&asked))).unwrap_or_default()
        };
        // A source that answered for fewer requests than it was asked about
        // leaves the rest to the workers.
        known.resize(ready.len(), None);
        for ((conn, request), known) in ready.drain(..).zip(known) {
            match known {
                Some(fd) => self.handout.reply(&conn.stream, &fd),
                None => {
                    self.stats.answering.fetch_add(1, Ordering::SeqCst);
                    let _ = self.jobs.send(Job {
                        stream: conn.stream,
                        request: *request,
                        client: conn.client,
                    });
                }
            }
        }
        self.ready = ready;
    }

    /// Answer a connection that has said all it will say (a complete
    /// request joins the batch to answer: [`answer_ready`](Self::answer_ready)).
    fn finish(&mut self, conn: Conn, progress: Progress) {
        match progress {
            Progress::Done(request) => {
                // The bytes were decoded: only the request is held now.
                let conn = Conn {
                    buf: Vec::new(),
                    ..conn
                };
                self.ready.push((conn, request));
                if self.ready.len() >= ANSWER_BATCH {
                    self.answer_ready();
                }
            }
            Progress::Refuse(e) => {
                debug!(error = %e, "exec service: request refused");
                reply_error(&conn.stream, e.errno(), &e.to_string(), &self.stats);
            }
            Progress::Gone | Progress::More => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Drop connections past their deadline.
    fn expire(&mut self) {
        let now = Instant::now();
        let late: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        for token in late {
            if let Some(conn) = self.conns.remove(&token) {
                let _ = epoll::delete(&self.epoll, &conn.stream);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.stats.open.store(self.conns.len(), Ordering::Relaxed);
    }

    /// Stop watching the listener while at the connection limit or while
    /// accepting is paused (it is level-triggered), and watch it again after.
    fn update_listening(&mut self) {
        if self.accept_paused.is_some_and(|until| until <= Instant::now()) {
            self.accept_paused = None;
        }
        let room = self.held() < self.limits.max_connections && self.accept_paused.is_none();
        if room != self.listening {
            let flags = if room {
                epoll::EventFlags::IN
            } else {
                epoll::EventFlags::empty()
            };
            if epoll::modify(&self.epoll, &self.listener, epoll::EventData::new_u64(LISTENER), flags).is_ok() {
                self.listening = room;
            }
        }
    }
}

fn worker(queue: &Mutex<Receiver<Job>>, source: &dyn LdsoSource, handout: &Handout, wake: &OwnedFd) {
    let stats = &*handout.stats;
    loop {
        let job = match crate::lock::lock(queue).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A panic in the source (a bug: nothing a client sends should
        // cause one) fails this request alone; the worker goes on. Shared
        // state is complete after each update (`crate::lock`).
        match std::panic::catch_unwind(AssertUnwindSafe(|| source.ldso(&job.request, &job.client))) {
            Ok(Ok(fd)) => handout.reply(&job.stream, &fd),
            Ok(Err(e)) => reply_exec_error(&job.stream, &job.request, &e, stats),
            Err(_) => {
                warn!("exec service: the search for a request panicked; it is refused (EIO)");
                reply_error(&job.stream, libc::EIO, "the exec service failed on this request", stats);
            }
        }
        // Closed before the slot is given back, so the cap bounds descriptors.
        drop(job);
        stats.answering.fetch_sub(1, Ordering::SeqCst);
        let _ = rustix::io::write(wake, &1u64.to_ne_bytes());
    }
}

/// How an answer's file goes to a client: as an open file description of
/// its own. A source hands out the same open file for many requests, and
/// a description's status flags are shared by everyone who holds it: one
/// client that set `O_DIRECT` on it would make every other client's
/// unaligned `pread` of the ld.so fail (EINVAL), across uids.
struct Handout {
    /// Each answer's file is opened again through its magic link there.
    proc_fd: ProcFd,
    /// What was sent, or not.
    stats: Arc<Stats>,
}

impl Handout {
    fn new(stats: Arc<Stats>) -> io::Result<Handout> {
        Ok(Handout {
            proc_fd: ProcFd::open()?,
            stats,
        })
    }

    /// Answer with `fd`'s file, opened again for this client alone; with
    /// the errno if it cannot be (out of descriptors, say).
    fn reply(&self, stream: &UnixStream, fd: &OwnedFd) {
        let stats = &*self.stats;
        match self.proc_fd.reopen(fd.as_fd()) {
            Ok(own) => reply_fd(stream, &own, stats),
            Err(e) => {
                warn!(error = %e, "exec service: cannot open the answer again for its client");
                reply_error(
                    stream,
                    e.raw_os_error(),
                    "cannot open the dynamic linker for this client",
                    stats,
                );
            }
        }
    }
}

/// Send the answer with the descriptor; a client that cannot take it at
/// once (it must be waiting for exactly this) is dropped.
fn reply_fd(stream: &UnixStream, fd: &OwnedFd, stats: &Stats) {
    let header = encode_reply_header(0, 0);
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    match rustix::net::sendmsg(stream, &[IoSlice::new(&header)], &mut control, flags) {
        Ok(n) if n == header.len() => {
            stats.served.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn reply_exec_error(stream: &UnixStream, request: &InterpRequest, e: &ExecError, stats: &Stats) {
    debug!(error = %e, interp = %String::from_utf8_lossy(&request.interp), "exec service: no ld.so");
    reply_error(stream, e.errno(), &e.to_string(), stats);
}

/// Send an errno and a one-line message (control bytes escaped, cut to
/// [`MAX_MESSAGE`] bytes on a character boundary).
fn reply_error(stream: &UnixStream, errno: i32, message: &str, stats: &Stats) {
    let text = ldchain_resolver::escape::for_terminal(message.as_bytes());
    let mut cut = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let header = encode_reply_header(errno as u16, cut);
    let mut control = SendAncillaryBuffer::default();
    let iov = [IoSlice::new(&header), IoSlice::new(&text.as_bytes()[..cut])];
    let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
    match rustix::net::sendmsg(stream, &iov, &mut control, flags) {
        Ok(_) => stats.refused.fetch_add(1, Ordering::Relaxed),
        Err(_) => stats.dropped.fetch_add(1, Ordering::Relaxed),
    };
}
