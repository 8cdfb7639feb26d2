//! `cargo bench --bench service_load [-- CLIENTS SECONDS]`: the exec
//! service under load. `ldchain serve --root /` runs as a process of its
//! own; CLIENTS threads (default 64) each ask it, one connection per
//! request as the chainloader's stub does (`chainloader/src/proto.rs`),
//! for SECONDS (default 5), with `LD_LIBRARY_PATH` set in every request.
//! The clients connect to the socket themselves, so every request is a
//! round trip, as a stub's is when no answer stands under its key (a
//! secure-mode exec; an answer that depended on the client's rights or on
//! a working directory; a `make -j` in a conda or CUDA environment before
//! its answer stands). Every request is the same, so after the first the
//! service's cache answers each: this measures its hits, not its searches.
//! Printed: answers per second, latency percentiles (connect to reply
//! with its descriptor), the service's CPU time per answer and in all, and
//! its resident memory and descriptors before and after a first and a
//! second run (flat: the cache holds one answer, and nothing grows with
//! the number served).
//!
//! The same clients then load **the protocol's floor**: a server in this
//! bench (its own process, one thread) that does only what every answer
//! needs — accept, the peer's credentials, a peek at the whole request, a
//! description of its own for the client (`ProcFd::reopen`), the reply —
//! and nothing else (no resolver, no cache, no bounds, no care for a slow
//! client). ldchain's figures are printed against the floor's, measured
//! in the same run: on a shared 2-core machine the absolute figures move
//! by a third from hour to hour, the ratios much less.
//!
//! Wall clock on a shared machine: printed, never asserted.
//!
//! `SERVICE_LOAD_QUEUED=N [SERVICE_LOAD_ROOT=DIR] cargo bench --bench service_load`: a
//! deterministic figure instead (`benches/report.sh` holds it as a budget):
//! the system calls the service makes to answer N requests that were all
//! waiting when it ran (it is stopped while they connect and send, then
//! traced with `strace -f -c` while it answers them). Each answer costs its
//! own accept, credentials, peek, reopen, reply and closes; the look for
//! changes and the comparison of the answer's files are made once per
//! batch.

use std::io::{IoSliceMut, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldchain::resolver::Machine;
use ldchain::service::proto::{decode_reply_header, REPLY_HEADER};
use ldchain::service::InterpRequest;

/// The ldchain to serve with: `$SERVICE_LOAD_LDCHAIN`, or this build's.
fn ldchain() -> PathBuf {
    if let Some(path) = std::env::var_os("SERVICE_LOAD_LDCHAIN") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    // target/TRIPLE/release/deps/service_load-HASH -> target/TRIPLE/release/ldchain
    exe.parent().unwrap().parent().unwrap().join("ldchain")
}

/// One request like a stub's for /bin/true with `LD_LIBRARY_PATH` set.
fn request() -> Vec<u8> {
    InterpRequest {
        machine: Machine::X86_64,
        interp: b"/lib64/ld-linux-x86-64.so.2".to_vec(),
        execfn: b"/usr/bin/true".to_vec(),
        cwd: b"/tmp".to_vec(),
        ldso_path: None,
        ld_library_path: Some(b"/opt/conda/lib:/usr/local/cuda/lib64".to_vec()),
        secure: false,
    }
    .encode()
}

/// Ask once: connect, send, receive the reply and its descriptor (closed
/// at once). Err: why the service did not answer with a descriptor.
fn ask(socket: &Path, request: &[u8]) -> Result<(), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    s.write_all(request).map_err(|e| format!("send: {e}"))?;
    receive_reply(&s)
}

/// The service's (CPU ticks, VmRSS KiB, descriptors).
fn service_state(pid: u32) -> (u64, u64, usize) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // Fields 14 and 15 (utime, stime); `rest` starts at field 3.
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (ticks, rss, fds)
}

struct Serve {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let _ = self.child.wait();
    }
}

fn serve() -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let sockdir = dir.path().join("run");
    // SERVICE_LOAD_LOG=FILE: the service's debug log goes there.
    let log = std::env::var_os("SERVICE_LOAD_LOG");
    // SERVICE_LOAD_ROOT: the namespace to serve (default: the host's root).
    let root = std::env::var_os("SERVICE_LOAD_ROOT").unwrap_or_else(|| "/".into());
    let mut child = Command::new(ldchain())
        .args(["serve", "--root"])
        .arg(&root)
        .arg(&sockdir)
        .env_clear()
        .envs(log.as_ref().map(|_| ("RUST_LOG", "debug")))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ldchain serve (build it first: cargo build --release)");
    // READY on stderr once the socket answers.
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        use std::io::Read;
        assert_eq!(
            err.read(&mut byte).unwrap(),
            1,
            "serve ended: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    std::thread::spawn(move || match log {
        Some(path) => std::io::copy(&mut err, &mut std::fs::File::create(path).unwrap()),
        None => std::io::copy(&mut err, &mut std::io::sink()),
    });
    Serve {
        child,
        socket: sockdir.join("exec.sock"),
        _dir: dir,
    }
}

/// CLIENTS threads asking for `secs`: (answers, latencies in µs, elapsed,
/// requests not answered with a descriptor). With `rate` (answers per
/// second for all clients together), each client asks on a fixed schedule
/// (open loop) and a latency counts from when its request was due, so
/// time spent waiting behind a slow answer is not hidden; without, each
/// asks again as soon as it is answered (closed loop: the throughput).
fn load(socket: &Path, clients: usize, secs: f64, rate: Option<f64>) -> (usize, Vec<u32>, Duration, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let request = Arc::new(request());
    let t0 = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, request, socket) = (stop.clone(), request.clone(), socket.to_owned());
            std::thread::spawn(move || {
                let (mut lat, mut failed) = (Vec::with_capacity(1 << 16), 0);
                let every = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
                // Clients start spread over one interval.
                let mut due = t0 + every.map_or(Duration::ZERO, |e| e.mul_f64(rand_fraction()));
                while !stop.load(Ordering::Relaxed) {
                    let t = match every {
                        Some(every) => {
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                            let t = due;
                            due += every;
                            t
                        }
                        None => Instant::now(),
                    };
                    match ask(&socket, &request) {
                        Ok(()) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                        Err(why) => {
                            if failed == 0 {
                                println!("  a request not answered: {why}");
                            }
                            failed += 1;
                        }
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in threads {
        let (lat, f) = t.join().unwrap();
        all.extend(lat);
        failed += f;
    }
    let elapsed = t0.elapsed();
    (all.len(), all, elapsed, failed)
}

/// A number in [0, 1) that differs between threads (no generator needed).
fn rand_fraction() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::thread::current().id()) % 1_000_000) as f64 / 1e6
}

/// `SERVICE_LOAD_FLOOR=SOCKET`: be the floor server (see the module docs)
/// on SOCKET, answering every request with the host's ld.so; "ready" on
/// stderr once listening.
fn floor_server(socket: &Path) -> ! {
    use ldchain::service::proto::REQUEST_HEADER;
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    let ldso = std::fs::File::open("/lib64/ld-linux-x86-64.so.2").unwrap();
    let proc_fd = ldchain::resolver::ProcFd::open().unwrap();
    eprintln!("ready");
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let Ok((stream, _)) = listener.accept() else { continue };
        let Ok(_client) = ldchain::resolver::Credentials::of_peer(&stream) else {
            continue;
        };
        // Peek until the whole request is there (its header says how long).
        let whole = loop {
            match rustix::net::recv(&stream, &mut buf[..], rustix::net::RecvFlags::PEEK) {
                Ok((n, _)) if n >= REQUEST_HEADER => {
                    let head: &[u8; REQUEST_HEADER] = buf[..REQUEST_HEADER].try_into().unwrap();
                    match ldchain::service::proto::RequestHeader::decode(head) {
                        Ok(h) if n >= REQUEST_HEADER + h.body_len() => break true,
                        Ok(_) => std::thread::yield_now(),
                        Err(_) => break false,
                    }
                }
                Ok((0, _)) | Err(_) => break false,
                Ok(_) => std::thread::yield_now(),
            }
        };
        if !whole {
            continue;
        }
        let Ok(own) = proc_fd.reopen(std::os::fd::AsFd::as_fd(&ldso)) else {
            continue;
        };
        let header = ldchain::service::proto::encode_reply_header(0, 0);
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        let fds = [std::os::fd::AsFd::as_fd(&own)];
        control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds));
        let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
        let _ = rustix::net::sendmsg(&stream, &[std::io::IoSlice::new(&header)], &mut control, flags);
    }
}

/// Start the floor server (this bench, run again): its socket, and the
/// process (killed when dropped).
fn floor() -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("floor.sock");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env_clear()
        .env("SERVICE_LOAD_FLOOR", &socket)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(child.stderr.as_mut().unwrap(), &mut ready).expect("the floor server did not start");
    assert_eq!(&ready, b"ready\n");
    Serve {
        child,
        socket,
        _dir: dir,
    }
}

/// Receive the reply to `s`'s request and its descriptor (closed at
/// once). Err: why the service did not answer with a descriptor.
fn receive_reply(s: &UnixStream) -> Result<(), String> {
    let mut buf = [0u8; REPLY_HEADER + 512];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let r = rustix::net::recvmsg(s, &mut iov, &mut control, rustix::net::RecvFlags::CMSG_CLOEXEC)
        .map_err(|e| format!("receive: {e}"))?;
    let fds: usize = control
        .drain()
        .map(|msg| match msg {
            rustix::net::RecvAncillaryMessage::ScmRights(rights) => rights.count(),
            _ => 0,
        })
        .sum();
    match decode_reply_header(&buf[..r.bytes]) {
        Some((0, _)) if fds == 1 => Ok(()),
        Some((errno, _)) => Err(format!("errno {errno}, {fds} descriptors")),
        None => Err(format!("no reply ({} bytes)", r.bytes)),
    }
}

/// `SERVICE_LOAD_QUEUED=N`: the system calls of answering N waiting
/// requests (see the module docs). Prints `service_queued_syscalls=T` for
/// the N answers together.
fn queued(n: usize) {
    use rustix::process::{kill_process, Pid, Signal};
    let serve = serve();
    let pid = Pid::from_child(&serve.child);
    let request = request();
    // Searched for, then cached from the second search on.
    for _ in 0..2 {
        ask(&serve.socket, &request).expect("the service did not answer");
    }
    // Idle (the last reply's connection closed), then stopped: every
    // thread (a stop is delivered to each in its own time).
    std::thread::sleep(Duration::from_millis(200));
    kill_process(pid, Signal::STOP).unwrap();
    let tasks = format!("/proc/{}/task", serve.child.id());
    let stopped = || {
        std::fs::read_dir(&tasks).unwrap().all(|t| {
            let stat = std::fs::read_to_string(t.unwrap().path().join("stat")).unwrap_or_default();
            stat.rfind(')')
                .is_some_and(|i| stat[i + 1..].trim_start().starts_with('T'))
        })
    };
    let t0 = Instant::now();
    while !stopped() {
        assert!(t0.elapsed() < Duration::from_secs(10), "the service did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
    let clients: Vec<UnixStream> = (0..n)
        .map(|_| {
            let mut s = UnixStream::connect(&serve.socket).unwrap();
            s.write_all(&request).unwrap();
            s
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("strace");
    let mut strace = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&out)
        .args(["-p", &serve.child.id().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace");
    // Attached (to every thread) before the service goes on.
    let mut err = std::io::BufReader::new(strace.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("attached") {
        line.clear();
        assert_ne!(
            std::io::BufRead::read_line(&mut err, &mut line).unwrap(),
            0,
            "strace did not attach"
        );
    }
    kill_process(pid, Signal::CONT).unwrap();
    for s in &clients {
        receive_reply(s).expect("a queued request was not answered");
    }
    // The service is idle again (its next call waits): detach.
    std::thread::sleep(Duration::from_millis(200));
    kill_process(Pid::from_child(&strace), Signal::INT).unwrap();
    strace.wait().unwrap();
    let table = std::fs::read_to_string(&out).unwrap();
    let total: u64 = table
        .lines()
        .find(|l| l.trim_end().ends_with("total"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no total in strace's table:\n{table}"));
    print!("{table}");
    println!("service_queued_answers={n} service_queued_syscalls={total}");
}

fn main() {
    if let Some(socket) = std::env::var_os("SERVICE_LOAD_FLOOR") {
        floor_server(Path::new(&socket));
    }
    if let Some(n) = std::env::var_os("SERVICE_LOAD_QUEUED") {
        queued(n.to_str().and_then(|n| n.parse().ok()).expect("SERVICE_LOAD_QUEUED=N"));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let clients: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let secs: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let serve = serve();
    let pid = serve.child.id();
    let request = request();
    // The first answer is searched for and cached; then the runs.
    ask(&serve.socket, &request).expect("the service did not answer");
    let before = service_state(pid);
    let (n1, _, _, _) = load(&serve.socket, clients, secs / 5.0, None);
    let middle = service_state(pid);
    let me = std::process::id();
    let clients_before = service_state(me).0;
    let (n, mut lat, elapsed, failed) = load(&serve.socket, clients, secs, None);
    let after = service_state(pid);
    let clients_cpu_us =
        (service_state(me).0 - clients_before) as f64 * 1e6 / rustix::param::clock_ticks_per_second() as f64;
    // The floor, right after, with the same clients for as long.
    let (floor_n, mut floor_lat, floor_elapsed, floor_failed, floor_ticks) = {
        let floor = floor();
        ask(&floor.socket, &request).expect("the floor server did not answer");
        let fpid = floor.child.id();
        let start = service_state(fpid).0;
        let (n, lat, elapsed, failed) = load(&floor.socket, clients, secs, None);
        (n, lat, elapsed, failed, service_state(fpid).0 - start)
    };
    floor_lat.sort_unstable();
    // Open loop at two offered rates: half the target, and the target.
    let open: Vec<_> = [10_000.0, 20_000.0]
        .into_iter()
        .map(|offered| {
            let start = service_state(pid);
            let (n, mut lat, elapsed, failed) = load(&serve.socket, clients, secs, Some(offered));
            let end = service_state(pid);
            lat.sort_unstable();
            (offered, n, lat, elapsed, failed, start, end)
        })
        .collect();
    let last = open.last().unwrap().6;
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let tick = 1e6 / rustix::param::clock_ticks_per_second() as f64;
    let cpu_us = (after.0 - middle.0) as f64 * tick;
    println!("ldchain serve under load: {clients} clients, each request with LD_LIBRARY_PATH set");
    println!(
        "  answers: {n} in {:.2} s = {:.0} answers/s ({failed} requests not answered)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency (connect to reply with descriptor): p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat[lat.len() - 1]
    );
    println!(
        "  service CPU: {:.2} s in {:.2} s ({:.0} % of one core), {:.1} µs per answer",
        cpu_us / 1e6,
        elapsed.as_secs_f64(),
        100.0 * cpu_us / 1e6 / elapsed.as_secs_f64(),
        cpu_us / n as f64
    );
    println!(
        "  the clients' CPU (this process, {clients} threads): {:.1} µs per answer",
        clients_cpu_us / n as f64
    );
    let floor_pct = |p: f64| floor_lat[((floor_lat.len() as f64 * p) as usize).min(floor_lat.len() - 1)];
    let rate = n as f64 / elapsed.as_secs_f64();
    let floor_rate = floor_n as f64 / floor_elapsed.as_secs_f64();
    println!(
        "  the protocol's floor (one thread: accept, credentials, peek, reopen, reply), same clients, right after: \
         {floor_rate:.0} answers/s, p50 {} µs, p99 {} µs, its CPU {:.1} µs per answer ({floor_failed} not answered)",
        floor_pct(0.50),
        floor_pct(0.99),
        floor_ticks as f64 * tick / floor_n as f64
    );
    println!(
        "  ldchain / floor: answers/s {:.3}, p50 {:.3}, p99 {:.3}, server CPU per answer {:.3}",
        rate / floor_rate,
        pct(0.50) as f64 / floor_pct(0.50) as f64,
        pct(0.99) as f64 / floor_pct(0.99) as f64,
        (cpu_us / n as f64) / (floor_ticks as f64 * tick / floor_n as f64)
    );
    println!(
        "  service RSS: {} KiB before, {} KiB after {n1} answers, {} KiB after {} more",
        before.1, middle.1, after.1, n
    );
    println!(
        "  service descriptors: {} before, {} after {n1} answers, {} after {} more",
        before.2, middle.2, after.2, n
    );
    for (offered, no, lato, elapsedo, failedo, start, end) in &open {
        let pcto = |p: f64| lato[((lato.len() as f64 * p) as usize).min(lato.len() - 1)];
        println!(
            "  at a fixed {offered:.0} requests/s (open loop, latency from when each was due): {:.0} answers/s, \
             p50 {} µs, p99 {} µs, max {} µs ({failedo} not answered); service CPU {:.1} µs per answer",
            *no as f64 / elapsedo.as_secs_f64(),
            pcto(0.50),
            pcto(0.99),
            lato[lato.len() - 1],
            (end.0 - start.0) as f64 * tick / *no as f64
        );
        println!(
            "service_load: offered={offered:.0} answers_per_s={:.0} p50_us={} p99_us={}",
            *no as f64 / elapsedo.as_secs_f64(),
            pcto(0.50),
            pcto(0.99)
        );
    }
    println!("  service RSS after that: {} KiB, descriptors: {}", last.1, last.2);
    println!(
        "service_load: answers_per_s={:.0} p50_us={} p99_us={} cpu_us_per_answer={:.1} rss_kib={}->{} fds={}->{} \
         floor_answers_per_s={floor_rate:.0} floor_p99_us={} p99_vs_floor={:.3}",
        rate,
        pct(0.50),
        pct(0.99),
        cpu_us / n as f64,
        middle.1,
        after.1,
        middle.2,
        after.2,
        floor_pct(0.99),
        pct(0.99) as f64 / floor_pct(0.99) as f64
    );
}
