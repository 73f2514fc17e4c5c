//! Sockets: the "network port" side of the notes' IPC-port vs network-port
//! table. A server process listens — on a Unix stream socket whose name is
//! a path in the run's directory, or on TCP `127.0.0.1` at a port the
//! kernel picks (`bind` to port 0, then `getsockname`) — and 1–4 client
//! processes connect to it and stream messages. One listening endpoint
//! serves several connections, each its own connected socket.
//!
//! Only loopback is ever bound: the TCP listener binds `127.0.0.1`, the
//! clients connect to `127.0.0.1`, nothing binds `0.0.0.0`.
//!
//! The server takes messages with `poll()` over the listening and accepted
//! sockets (non-blocking accepted sockets, one `FrameReader` each), so it
//! never spins and a slow client never holds up the others.
//!
//! What the monitor reads (never touching the workers' data):
//! - our sockets: `socket:[INODE]` in the workers' fd tables;
//! - Unix: a `sock_diag` netlink dump (`UNIX_DIAG_NAME`, `_PEER`, `_RQLEN`,
//!   `_MEMINFO`): name, peer inode, receive / send queue (the same numbers
//!   `SIOCINQ` / `SIOCOUTQ` give; on a listener: pending connections and
//!   backlog) and buffer memory;
//! - TCP: `/proc/net/tcp` rows matched by inode (addresses, state,
//!   `tx_queue:rx_queue`), plus `getsockopt(SO_MEMINFO)` on a `pidfd_getfd`
//!   copy (buffer sizes and queued memory) and `getsockopt(TCP_INFO)` on the
//!   listener's copy (its accept backlog limit). The copies are only asked
//!   and closed at once.
//!
//! The channel gauge. `depth` = memory the kernel has charged to the
//! clients' sockets for data the server has not taken yet, summed over the
//! clients (Unix: `sk_wmem_alloc`, which is `SIOCOUTQ`, the skbs sitting in
//! the server's receive queue; TCP: `sk_wmem_queued`, the data not yet
//! acknowledged). `capacity` = the clients' `SO_SNDBUF`, summed. This is
//! the quantity `send()` blocks on (`sk_wmem_alloc >= sk_sndbuf` for Unix,
//! `sk_wmem_queued >= sk_sndbuf` for TCP), so with a stalled server the
//! gauge reaches full exactly when the clients block. The payload bytes
//! waiting in the server's receive queues (`SIOCINQ` / `rx_queue`) and in
//! the clients' TCP send queues (`tx_queue`) are shown beside it; a Unix
//! stream socket's receive queue is charged to the *sender*, which is why
//! the receive buffer (`SO_RCVBUF`) is not the limit.
//!
//! Telemetry `aux` words, server slot: [0] TCP port as `getsockname`
//! returned it, [1] Unix listening fd + 1, [2] TCP listening fd + 1,
//! [7] 1 once listening (clients wait on it with a futex).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::pipe::{errno_name, ret_str};
use super::worker::{self, errno, Frame, FrameReader, Pacer, WorkerCtx};
use super::{Info, Kind, Mechanism, Probe};
use crate::knobs::{KnobKind, KnobSpec};
use crate::message::{self, Verifier};
use crate::monitor::{Calls, NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, MechanismSnapshot, ProcessSnapshot};
use crate::supervisor::{Supervisor, WorkerSpec};
use crate::telemetry::{Op, Telemetry};

pub static INFO: Info =
    Info { kind: Kind::Socket, knobs: KNOBS, new: || Box::new(Socket::default()), worker: run_worker };

const FAMILIES: &[&str] = &["unix", "tcp", "both"];

const KNOBS: &[KnobSpec] = &[
    KnobSpec {
        key: "socket.family",
        kind: KnobKind::Choice(FAMILIES),
        default: "unix",
        help: "unix = a stream socket named by a path in the run dir; tcp = 127.0.0.1 at a port the kernel picks; both = one listener of each (clients alternate). Read at start and restart",
    },
    KnobSpec {
        key: "socket.clients",
        kind: KnobKind::Int { min: 1, max: 4 },
        default: "1",
        help: "client processes that connect to the one listener (each gets its own connected socket). Read at start",
    },
    KnobSpec {
        key: "socket.nodelay",
        kind: KnobKind::Bool,
        default: "false",
        help: "TCP_NODELAY on the clients' TCP sockets: send small segments at once instead of coalescing them (Nagle)",
    },
    KnobSpec {
        key: "socket.buffer",
        kind: KnobKind::Int { min: 0, max: 4 << 20 },
        default: "32768",
        help: "SO_SNDBUF of each client and SO_RCVBUF of the listener, in bytes (the kernel doubles it); 0 = kernel defaults and TCP autotuning (megabytes: a stalled server then takes long to block a client)",
    },
];

/// The listener's backlog (`listen(fd, BACKLOG)`).
const BACKLOG: i32 = 16;
/// The Unix socket's file name inside the run directory.
pub const SOCK_NAME: &str = "sock";

const FAM_UNIX: u64 = 1;
const FAM_TCP: u64 = 2;

// System calls the socket workers record for the event log.
const CALL_SOCKET: u64 = 1;
const CALL_BIND_UNIX: u64 = 2;
const CALL_BIND_INET: u64 = 3;
const CALL_GETSOCKNAME: u64 = 4;
const CALL_LISTEN: u64 = 5;
const CALL_ACCEPT: u64 = 6;
const CALL_CONNECT_UNIX: u64 = 7;
const CALL_CONNECT_INET: u64 = 8;
const CALL_SEND: u64 = 9;
const CALL_RECV: u64 = 10;
const CALL_CLOSE: u64 = 11;
const CALL_SETSOCKOPT: u64 = 12;
const CALL_UNLINK: u64 = 13;
const CALL_CHMOD: u64 = 14;

const OPT_SNDBUF: u64 = 1;
const OPT_RCVBUF: u64 = 2;
const OPT_NODELAY: u64 = 3;

fn ip_port(ip: u64, port: u64) -> String {
    format!("{}:{port}", Ipv4Addr::from(ip as u32))
}

fn format_call(call: u64, a: [u64; 3], ret: i64) -> String {
    let r = ret_str(ret);
    match call {
        CALL_SOCKET => {
            let fam = if a[0] == FAM_TCP { "AF_INET" } else { "AF_UNIX" };
            format!("socket({fam}, SOCK_STREAM) = {r}")
        }
        CALL_BIND_UNIX => format!("bind({}, \"…/{SOCK_NAME}\") = {r}", a[0]),
        CALL_BIND_INET => format!("bind({}, {}) = {r}", a[0], ip_port(a[1], a[2])),
        CALL_GETSOCKNAME => format!("getsockname({}) = {r} → {}", a[0], ip_port(a[1], a[2])),
        CALL_LISTEN => format!("listen({}, {}) = {r}", a[0], a[1]),
        CALL_ACCEPT => format!("accept({}) = {r}", a[0]),
        CALL_CONNECT_UNIX => format!("connect({}, \"…/{SOCK_NAME}\") = {r}", a[0]),
        CALL_CONNECT_INET => format!("connect({}, {}) = {r}", a[0], ip_port(a[1], a[2])),
        CALL_SEND => format!("send({}, {} bytes) = {r}", a[0], a[1]),
        CALL_RECV => format!("recv({}, {} bytes) = {r}", a[0], a[1]),
        CALL_CLOSE => format!("close({}) = {r}", a[0]),
        CALL_SETSOCKOPT => {
            let opt = match a[1] {
                OPT_SNDBUF => "SO_SNDBUF",
                OPT_RCVBUF => "SO_RCVBUF",
                _ => "TCP_NODELAY",
            };
            format!("setsockopt({}, {opt}, {}) = {r}", a[0], a[2])
        }
        CALL_UNLINK => format!("unlink(\"…/{SOCK_NAME}\") = {r}"),
        CALL_CHMOD => format!("chmod(\"…/{SOCK_NAME}\", 0{:o}) = {r}", a[0]),
        _ => format!("call {call}"),
    }
}

const CALLS: Calls = Calls { event: format_call, op: op_name };

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Write => "send()",
        Op::Read => "recv()",
        Op::Wait => "poll()",
        _ => crate::monitor::default_op_name(op),
    }
}

/// Which families a `socket.family` value runs.
fn families(knob: u64) -> u64 {
    match knob {
        0 => FAM_UNIX,
        1 => FAM_TCP,
        _ => FAM_UNIX | FAM_TCP,
    }
}

#[derive(Default)]
pub struct Socket {
    server: usize,
    clients: Vec<usize>,
    /// Family of each client (FAM_UNIX / FAM_TCP).
    client_family: Vec<u64>,
    families: u64,
}

impl Mechanism for Socket {
    fn kind(&self) -> Kind {
        Kind::Socket
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        let knobs = sup.knobs();
        self.families = families(knobs.get("socket.family"));
        let mut n = knobs.get("socket.clients").clamp(1, 4) as usize;
        if self.families == FAM_UNIX | FAM_TCP {
            // One client per family at least, or a listener would sit idle.
            n = n.max(2);
        }
        self.server = sup.alloc_slot()?;
        for i in 0..n {
            self.clients.push(sup.alloc_slot()?);
            self.client_family.push(match self.families {
                FAM_UNIX => FAM_UNIX,
                FAM_TCP => FAM_TCP,
                _ if i % 2 == 0 => FAM_UNIX,
                _ => FAM_TCP,
            });
        }
        self.spawn(sup)
    }

    fn victim(&self) -> Option<usize> {
        Some(self.server)
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        // Connections cannot be handed to a new server: everyone starts afresh
        // (a new port, the same path, unlinked and bound again).
        for &s in self.clients.iter().chain([&self.server]) {
            sup.signal_slot(s, libc::SIGKILL);
        }
        self.spawn(sup)
    }

    fn producers(&self) -> Vec<usize> {
        self.clients.clone()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        let dir = sup.dir_path().to_path_buf();
        Box::new(SocketProbe {
            server: ProcTracker::new(self.server, "server", CALLS, &dir),
            clients: self
                .clients
                .iter()
                .enumerate()
                .map(|(i, &s)| ProcTracker::new(s, &format!("client-{}", i + 1), CALLS, &dir))
                .collect(),
            server_slot: self.server,
            families: self.families,
            path: dir.join(SOCK_NAME).display().to_string(),
            history: VecDeque::new(),
            capacity: 0,
            notes: NoteLog::default(),
        })
    }
}

impl Socket {
    fn spawn(&mut self, sup: &mut Supervisor) -> Result<()> {
        let fam = |f: u64| if f == FAM_TCP { "tcp" } else { "unix" };
        let spec = WorkerSpec::new(Kind::Socket, "server", self.server).arg(
            "families",
            match self.families {
                FAM_UNIX => "unix",
                FAM_TCP => "tcp",
                _ => "both",
            },
        );
        sup.spawn(&spec)?;
        for (i, (&slot, &f)) in self.clients.iter().zip(&self.client_family).enumerate() {
            let spec = WorkerSpec::new(Kind::Socket, "client", slot)
                .arg("server-slot", self.server)
                .arg("family", fam(f))
                .arg("index", i + 1);
            sup.spawn(&spec)?;
        }
        Ok(())
    }
}

fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "server" => server(ctx),
        "client" => client(ctx),
        _ => bail!("the socket mechanism has no role {role:?} (server, client)"),
    }
}

/// The result of a libc call as the event log wants it: the value, or
/// minus the errno.
fn ret_of(r: libc::c_int) -> i64 {
    if r < 0 {
        -(errno() as i64)
    } else {
        r as i64
    }
}

fn new_socket(ctx: &WorkerCtx, fam: u64, flags: i32) -> Result<OwnedFd> {
    let domain = if fam == FAM_TCP { libc::AF_INET } else { libc::AF_UNIX };
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags, 0) };
    ctx.event(CALL_SOCKET, [fam, 0, 0], ret_of(fd));
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int_opt(ctx: &WorkerCtx, fd: RawFd, level: i32, name: i32, which: u64, v: u64) {
    let val = v.min(i32::MAX as u64) as libc::c_int;
    // SAFETY: an int option on our own socket.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    ctx.event(CALL_SETSOCKOPT, [fd as u64, which, v], ret_of(r));
    if r < 0 {
        ctx.count_error(errno());
    }
}

fn unix_addr(path: &std::path::Path) -> Result<(libc::sockaddr_un, libc::socklen_t)> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_bytes();
    if b.len() >= a.sun_path.len() {
        bail!("socket path too long: {}", path.display());
    }
    for (d, s) in a.sun_path.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + b.len() + 1;
    Ok((a, len as libc::socklen_t))
}

fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be() },
        sin_zero: [0; 8],
    }
}

/// One accepted connection on the server's side.
struct Conn {
    fd: OwnedFd,
    reader: FrameReader,
    /// poll() said readable, or the reader may hold whole messages.
    ready: bool,
}

fn server(ctx: &mut WorkerCtx) -> Result<()> {
    let fams = match ctx.arg("families")? {
        "unix" => FAM_UNIX,
        "tcp" => FAM_TCP,
        _ => FAM_UNIX | FAM_TCP,
    };
    let buffer = ctx.knob("socket.buffer");
    let mut listeners: Vec<OwnedFd> = Vec::new();
    if fams & FAM_UNIX != 0 {
        let path = ctx.run_dir.join(SOCK_NAME);
        // A stale socket file from an earlier server would make bind fail.
        let r = match std::fs::remove_file(&path) {
            Ok(()) => 0,
            Err(e) => -(e.raw_os_error().unwrap_or(0) as i64),
        };
        ctx.event(CALL_UNLINK, [0; 3], r);
        let fd = new_socket(ctx, FAM_UNIX, 0)?;
        let raw = fd.as_raw_fd();
        if buffer > 0 {
            set_int_opt(ctx, raw, libc::SOL_SOCKET, libc::SO_RCVBUF, OPT_RCVBUF, buffer);
        }
        let (addr, len) = unix_addr(&path)?;
        // SAFETY: a valid sockaddr_un of `len` bytes.
        let r = unsafe { libc::bind(raw, (&addr as *const libc::sockaddr_un).cast(), len) };
        ctx.event(CALL_BIND_UNIX, [raw as u64, 0, 0], ret_of(r));
        if r < 0 {
            bail!("bind {}: {}", path.display(), std::io::Error::last_os_error());
        }
        // Only our own user may connect (the run dir is 0700 as well).
        let r = match std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)) {
            Ok(()) => 0,
            Err(e) => -(e.raw_os_error().unwrap_or(0) as i64),
        };
        ctx.event(CALL_CHMOD, [0o600, 0, 0], r);
        listen(ctx, raw)?;
        ctx.me().aux[1].store(raw as u64 + 1, Relaxed);
        listeners.push(fd);
    }
    if fams & FAM_TCP != 0 {
        let fd = new_socket(ctx, FAM_TCP, 0)?;
        let raw = fd.as_raw_fd();
        if buffer > 0 {
            // Before listen(), so accepted sockets inherit it.
            set_int_opt(ctx, raw, libc::SOL_SOCKET, libc::SO_RCVBUF, OPT_RCVBUF, buffer);
        }
        // Loopback only, port 0: the kernel picks a free ephemeral port.
        let addr = loopback(0);
        let sz = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: a valid sockaddr_in.
        let r = unsafe { libc::bind(raw, (&addr as *const libc::sockaddr_in).cast(), sz) };
        ctx.event(CALL_BIND_INET, [raw as u64, u32::from(Ipv4Addr::LOCALHOST) as u64, 0], ret_of(r));
        if r < 0 {
            bail!("bind 127.0.0.1:0: {}", std::io::Error::last_os_error());
        }
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut got: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = sz;
        // SAFETY: valid out-pointers of the right size.
        let r = unsafe { libc::getsockname(raw, (&mut got as *mut libc::sockaddr_in).cast(), &mut len) };
        let ip = u32::from_be(got.sin_addr.s_addr);
        let port = u16::from_be(got.sin_port);
        ctx.event(CALL_GETSOCKNAME, [raw as u64, ip as u64, port as u64], ret_of(r));
        if r < 0 {
            bail!("getsockname: {}", std::io::Error::last_os_error());
        }
        listen(ctx, raw)?;
        ctx.me().aux[0].store(port as u64, Relaxed);
        ctx.me().aux[2].store(raw as u64 + 1, Relaxed);
        listeners.push(fd);
    }
    ctx.me().aux[7].store(1, Relaxed);
    worker::futex_wake(&ctx.me().aux[7]);

    let mut conns: Vec<Conn> = Vec::new();
    let mut pacer = Pacer::consumer(ctx);
    let mut verifier = Verifier::new();
    let rate_knob = ctx.knob_index("consumer.rate");
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    loop {
        let stalled = ctx.tel.knob(rate_knob) == 0;
        let any_ready = conns.iter().any(|c| c.ready);
        pfds.clear();
        for l in &listeners {
            pfds.push(libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
        if !stalled {
            for c in &conns {
                pfds.push(libc::pollfd { fd: c.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
        }
        let timeout = if stalled {
            // Nobody reads; accept newcomers and look at the knob again.
            ctx.op(Op::Stalled);
            100
        } else if any_ready {
            0
        } else {
            ctx.op(Op::Wait);
            500
        };
        // SAFETY: a valid array of pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if errno() != libc::EINTR {
                ctx.count_error(errno());
            }
            continue;
        }
        for (i, l) in listeners.iter().enumerate() {
            if pfds[i].revents & libc::POLLIN != 0 {
                ctx.op(Op::Accept);
                // SAFETY: accept4 on our listener; no address wanted.
                let fd = unsafe {
                    libc::accept4(
                        l.as_raw_fd(),
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    )
                };
                ctx.event(CALL_ACCEPT, [l.as_raw_fd() as u64, 0, 0], ret_of(fd));
                if fd < 0 {
                    ctx.count_error(errno());
                    continue;
                }
                conns.push(Conn {
                    // SAFETY: a fresh descriptor we own.
                    fd: unsafe { OwnedFd::from_raw_fd(fd) },
                    reader: FrameReader::default(),
                    ready: true,
                });
            }
        }
        if stalled {
            continue;
        }
        let base = listeners.len();
        for (i, c) in conns.iter_mut().enumerate() {
            if let Some(p) = pfds.get(base + i) {
                if p.revents != 0 && p.fd == c.fd.as_raw_fd() {
                    c.ready = true;
                }
            }
        }
        // One message from each ready connection in turn: fair to every
        // client, paced to consumer.rate.
        let mut closed = Vec::new();
        for (i, c) in conns.iter_mut().enumerate() {
            if !c.ready {
                continue;
            }
            if ctx.tel.knob(rate_knob) == 0 {
                break;
            }
            pacer.wait(ctx);
            ctx.op(Op::Read);
            let raw = c.fd.as_raw_fd();
            let frame = c.reader.next(raw, &mut verifier, |want, res| {
                if matches!(res, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
                    return;
                }
                ctx.event(CALL_RECV, [raw as u64, want as u64, 0], worker::io_ret(res));
            });
            match frame {
                Ok(Frame::Message(m)) => {
                    let m = m.to_vec();
                    ctx.receive(&mut verifier, &m);
                }
                Ok(Frame::Eof) => {
                    // recv() returned 0: that client closed its end.
                    crate::telemetry::Slot::add(&ctx.me().eof, 1);
                    closed.push(i);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => c.ready = false,
                Err(e) => {
                    ctx.count_error(e.raw_os_error().unwrap_or(0));
                    closed.push(i);
                }
            }
        }
        for i in closed.into_iter().rev() {
            let c = conns.remove(i);
            let raw = c.fd.as_raw_fd();
            drop(c);
            ctx.event(CALL_CLOSE, [raw as u64, 0, 0], 0);
            ctx.publish(verifier.counts());
        }
    }
}

fn listen(ctx: &WorkerCtx, fd: RawFd) -> Result<()> {
    // SAFETY: listen on our own socket.
    let r = unsafe { libc::listen(fd, BACKLOG) };
    ctx.event(CALL_LISTEN, [fd as u64, BACKLOG as u64, 0], ret_of(r));
    if r < 0 {
        bail!("listen: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn client(ctx: &mut WorkerCtx) -> Result<()> {
    let server_slot = ctx.arg_usize("server-slot")?;
    let fam = if ctx.arg("family")? == "tcp" { FAM_TCP } else { FAM_UNIX };
    // Wait (in the kernel) until the server is listening.
    ctx.op(Op::Wait);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = &ctx.tel.slot(server_slot).aux[7];
        if ready.load(Relaxed) != 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the server never started listening");
        }
        worker::futex_wait(ready, 0, Duration::from_millis(200));
    }
    let sock = new_socket(ctx, fam, 0)?;
    let fd = sock.as_raw_fd();
    let mut buffer = ctx.knob("socket.buffer");
    if buffer > 0 {
        set_int_opt(ctx, fd, libc::SOL_SOCKET, libc::SO_SNDBUF, OPT_SNDBUF, buffer);
    }
    let mut nodelay = ctx.knob("socket.nodelay");
    if fam == FAM_TCP && nodelay != 0 {
        set_int_opt(ctx, fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, OPT_NODELAY, 1);
    }
    ctx.op(Op::Connect);
    if fam == FAM_TCP {
        let port = ctx.tel.slot(server_slot).aux[0].load(Relaxed) as u16;
        let addr = loopback(port);
        // SAFETY: a valid sockaddr_in.
        let r = unsafe {
            libc::connect(
                fd,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        ctx.event(CALL_CONNECT_INET, [fd as u64, u32::from(Ipv4Addr::LOCALHOST) as u64, port as u64], ret_of(r));
        if r < 0 {
            ctx.count_error(errno());
            bail!("connect 127.0.0.1:{port}: {}", errno_name(errno()));
        }
    } else {
        let path = ctx.run_dir.join(SOCK_NAME);
        let (addr, len) = unix_addr(&path)?;
        // SAFETY: a valid sockaddr_un.
        let r = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) };
        ctx.event(CALL_CONNECT_UNIX, [fd as u64, 0, 0], ret_of(r));
        if r < 0 {
            ctx.count_error(errno());
            bail!("connect {}: {}", path.display(), errno_name(errno()));
        }
    }

    let sender = ctx.sender_id();
    let count = ctx.knob("producer.count");
    let mut pacer = Pacer::producer(ctx);
    let mut buf = vec![0u8; 1 << 20];
    let mut seq = 0u64;
    while count == 0 || seq < count {
        pacer.wait(ctx);
        // Knobs the TUI may turn while we run.
        let b = ctx.knob("socket.buffer");
        if b != buffer && b > 0 {
            buffer = b;
            set_int_opt(ctx, fd, libc::SOL_SOCKET, libc::SO_SNDBUF, OPT_SNDBUF, b);
        }
        let nd = ctx.knob("socket.nodelay");
        if fam == FAM_TCP && nd != nodelay {
            nodelay = nd;
            set_int_opt(ctx, fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, OPT_NODELAY, nd);
        }
        let size = ctx.msg_size();
        let msg = &mut buf[..size];
        message::encode(msg, sender, seq);
        ctx.op(Op::Write);
        match send_all(fd, msg) {
            Ok(()) => {
                ctx.event(CALL_SEND, [fd as u64, size as u64, 0], size as i64);
                ctx.count_sent(size);
            }
            Err(e) => {
                let code = e.raw_os_error().unwrap_or(0);
                ctx.event(CALL_SEND, [fd as u64, size as u64, 0], -(code as i64));
                ctx.count_error(code);
                ctx.op(Op::Done);
                bail!("send: {} ({e})", errno_name(code));
            }
        }
        seq += 1;
    }
    // Closing is what makes the server's recv() return 0.
    drop(sock);
    ctx.event(CALL_CLOSE, [fd as u64, 0, 0], 0);
    ctx.op(Op::Done);
    Ok(())
}

/// `send` the whole buffer (MSG_NOSIGNAL: a closed peer is EPIPE, not a
/// signal), retrying short sends and EINTR.
fn send_all(fd: RawFd, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: valid buffer.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

// ---------------------------------------------------------------- observing

/// One of our sockets, as the monitor saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SocketEntry {
    /// The process holding it (`server`, `client-1`, …), its pid and fd.
    pub role: String,
    pub pid: i32,
    pub fd: i32,
    pub inode: u64,
    /// `unix` or `tcp`.
    pub family: String,
    /// `LISTEN`, `ESTABLISHED`, `CLOSE_WAIT`, … (`UNCONNECTED` for a Unix
    /// socket that is neither).
    pub state: String,
    /// The local endpoint: the path, `127.0.0.1:PORT`, or empty (an unnamed
    /// Unix socket).
    pub local: String,
    pub local_ip: Option<String>,
    pub local_port: Option<u16>,
    /// The other end: its address, or for Unix the peer's name.
    pub peer: String,
    pub peer_port: Option<u16>,
    /// Which of our processes holds the other end, if any.
    pub peer_role: Option<String>,
    /// Connected: payload bytes waiting to be read (`SIOCINQ`, `rx_queue`).
    /// Listener: connections waiting for accept().
    pub recv_q: u64,
    /// Connected: Unix `SIOCOUTQ` (send memory charged, skb overhead
    /// included); TCP `tx_queue` (bytes not yet acknowledged). Listener: the
    /// backlog limit.
    pub send_q: u64,
    /// Kernel buffer figures (`SK_MEMINFO`): receive and send buffer sizes,
    /// and the memory that counts against the send buffer.
    pub rcvbuf: Option<u64>,
    pub sndbuf: Option<u64>,
    pub send_mem: Option<u64>,
}

impl SocketEntry {
    pub fn listening(&self) -> bool {
        self.state == "LISTEN"
    }
}

/// What the socket panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SocketDetail {
    /// `unix`, `tcp` or `both`.
    pub family: String,
    /// The Unix socket's path, when the Unix family runs.
    pub path: Option<String>,
    /// The TCP listener's port, from its `/proc/net/tcp` row.
    pub port: Option<u16>,
    /// The port the server's `getsockname()` returned (it publishes it).
    pub port_getsockname: Option<u16>,
    pub nodelay: bool,
    /// `socket.buffer` as set (0 = kernel defaults).
    pub buffer: u64,
    /// Every socket our processes hold, listeners first.
    pub sockets: Vec<SocketEntry>,
    /// Payload bytes waiting in the server's receive queues, summed.
    pub recv_payload: u64,
    /// Payload bytes in the clients' TCP send queues (not acknowledged).
    pub send_payload: u64,
    /// Processes using each endpoint: holding a socket whose local or peer
    /// end is the path / the port.
    pub path_users: u64,
    pub port_users: u64,
    /// Our sockets the kernel's tables did not list (should stay empty).
    pub unmatched: Vec<u64>,
}

struct SocketProbe {
    server: ProcTracker,
    clients: Vec<ProcTracker>,
    server_slot: usize,
    families: u64,
    path: String,
    history: VecDeque<u64>,
    capacity: u64,
    notes: NoteLog,
}

fn socket_inode(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

impl Probe for SocketProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let mut procs = vec![self.server.sample(tel, t_ms)];
        procs.extend(self.clients.iter_mut().map(|c| c.sample(tel, t_ms)));
        let ss = tel.slot(self.server_slot);
        let port_gsn = (self.families & FAM_TCP != 0).then(|| ss.aux[0].load(Relaxed) as u16).filter(|&p| p != 0);

        let unix = if self.families & FAM_UNIX != 0 { diag::unix_dump().unwrap_or_default() } else { HashMap::new() };
        let tcp = if self.families & FAM_TCP != 0 { diag::proc_net_tcp() } else { HashMap::new() };

        let mut sockets = Vec::new();
        let mut unmatched = Vec::new();
        for p in procs.iter().filter(|p| p.alive()) {
            for f in &p.fds {
                let Some(ino) = socket_inode(&f.target) else {
                    continue;
                };
                let mut e =
                    SocketEntry { role: p.role.clone(), pid: p.pid, fd: f.fd, inode: ino, ..SocketEntry::default() };
                if let Some(u) = unix.get(&ino) {
                    e.family = "unix".into();
                    e.state = diag::state_name(u.state).into();
                    e.local = u.name.clone().unwrap_or_default();
                    e.recv_q = u.rq;
                    e.send_q = u.wq;
                    if let Some(m) = u.mem {
                        e.rcvbuf = Some(m[diag::MEM_RCVBUF] as u64);
                        e.sndbuf = Some(m[diag::MEM_SNDBUF] as u64);
                        e.send_mem = Some(m[diag::MEM_WMEM_ALLOC] as u64);
                    }
                    e.peer = u.peer.and_then(|pi| unix.get(&pi)).and_then(|pu| pu.name.clone()).unwrap_or_default();
                } else if let Some(t) = tcp.get(&ino) {
                    e.family = "tcp".into();
                    e.state = diag::tcp_state_name(t.state).into();
                    e.local = format!("{}:{}", t.local.0, t.local.1);
                    e.local_ip = Some(t.local.0.to_string());
                    e.local_port = Some(t.local.1);
                    if !t.remote.0.is_unspecified() || t.remote.1 != 0 {
                        e.peer = format!("{}:{}", t.remote.0, t.remote.1);
                        e.peer_port = Some(t.remote.1);
                    }
                    e.recv_q = t.rx;
                    e.send_q = t.tx;
                    if e.listening() {
                        // The accept queue's limit (TCP_INFO on a listener:
                        // tcpi_unacked = pending, tcpi_sacked = backlog).
                        if let Some((pending, backlog)) = diag::listen_backlog(p.pid, f.fd) {
                            e.recv_q = pending;
                            e.send_q = backlog;
                        }
                    }
                    if let Some(m) = diag::meminfo(p.pid, f.fd) {
                        e.rcvbuf = Some(m[diag::MEM_RCVBUF] as u64);
                        e.sndbuf = Some(m[diag::MEM_SNDBUF] as u64);
                        e.send_mem = Some(m[diag::MEM_WMEM_QUEUED] as u64);
                    }
                } else {
                    unmatched.push(ino);
                    continue;
                }
                sockets.push(e);
            }
        }
        // Who holds the other end: Unix by the peer inode the kernel
        // reports, TCP by matching address pairs.
        let by_inode: HashMap<u64, String> = sockets.iter().map(|s| (s.inode, s.role.clone())).collect();
        let by_local: HashMap<String, String> = sockets
            .iter()
            .filter(|s| s.family == "tcp" && !s.listening())
            .map(|s| (s.local.clone(), s.role.clone()))
            .collect();
        for s in &mut sockets {
            s.peer_role = if s.family == "unix" {
                unix.get(&s.inode).and_then(|u| u.peer).and_then(|pi| by_inode.get(&pi).cloned())
            } else if s.peer.is_empty() {
                None
            } else {
                by_local.get(&s.peer).cloned()
            };
        }
        sockets.sort_by_key(|s| (!s.listening(), s.role != "server", s.role.clone(), s.fd));

        // The gauge: what send() blocks on (see the module notes).
        let client_socks = || sockets.iter().filter(|s| s.role.starts_with("client") && !s.listening());
        let depth: u64 = client_socks().filter_map(|s| s.send_mem).sum();
        let capacity: u64 = client_socks().filter_map(|s| s.sndbuf).sum();
        if capacity > 0 {
            self.capacity = capacity;
        }
        self.history.push_back(depth);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }
        let recv_payload = sockets.iter().filter(|s| s.role == "server" && !s.listening()).map(|s| s.recv_q).sum();
        let send_payload = client_socks().filter(|s| s.family == "tcp").map(|s| s.send_q).sum();

        let port = sockets.iter().find(|s| s.family == "tcp" && s.listening()).and_then(|s| s.local_port);
        let users = |hit: &dyn Fn(&SocketEntry) -> bool| {
            sockets.iter().filter(|s| hit(s)).map(|s| s.pid).collect::<HashSet<_>>().len() as u64
        };
        let path = (self.families & FAM_UNIX != 0).then(|| self.path.clone());
        let path_users = path
            .as_ref()
            .map_or(0, |p| users(&|s: &SocketEntry| s.family == "unix" && (&s.local == p || &s.peer == p)));
        let port_users = port.map_or(0, |port| {
            users(&|s: &SocketEntry| s.family == "tcp" && (s.local_port == Some(port) || s.peer_port == Some(port)))
        });

        self.notes_for(t_ms, &procs, &sockets, recv_payload);

        let integrity = crate::monitor::integrity(ss);
        MechanismSnapshot {
            kind: Kind::Socket,
            channel: Channel {
                depth,
                capacity: if capacity > 0 { capacity } else { self.capacity },
                unit: "bytes".into(),
            },
            integrity,
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, &["producer.rate", "consumer.rate", "msg.size"], KNOBS),
            detail: Detail::Socket(SocketDetail {
                family: FAMILIES[(tel.knob_by_key("socket.family") as usize).min(2)].into(),
                path,
                port,
                port_getsockname: port_gsn,
                nodelay: tel.knob_by_key("socket.nodelay") != 0,
                buffer: tel.knob_by_key("socket.buffer"),
                sockets,
                recv_payload,
                send_payload,
                path_users,
                port_users,
                unmatched,
            }),
            processes: procs,
        }
    }
}

impl SocketProbe {
    fn notes_for(&mut self, t_ms: u64, procs: &[ProcessSnapshot], sockets: &[SocketEntry], recv_payload: u64) {
        let server = &procs[0];
        if server.alive() && server.op == "stalled" && recv_payload > 0 {
            self.notes.once(
                t_ms,
                "stalled",
                "server: not reading — bytes pile up in its receive queue, then in the clients' send buffers",
            );
        }
        for c in &procs[1..] {
            let blocked = c.alive()
                && c.state == "S"
                && c.op == "send()"
                && (c.wchan.contains("sock_alloc_send") || c.wchan.contains("wait_woken"));
            if blocked {
                self.notes.once(
                    t_ms,
                    "blocked",
                    &format!("{}: blocked in send() ({}) — its send buffer (SO_SNDBUF) is full", c.role, c.wchan),
                );
            }
            if c.errors.epipe > 0 || c.errors.other > 0 {
                self.notes.once(t_ms, "peer-gone", &format!("{}: send() failed — the server's end is closed", c.role));
            }
        }
        if server.exit.is_some() {
            self.notes.once(
                t_ms,
                "server-gone",
                "server: gone — its listening socket and connections are closed (r restarts)",
            );
        }
        if let Some(l) = sockets.iter().find(|s| s.listening() && s.recv_q > 0) {
            self.notes.once(
                t_ms,
                "pending",
                &format!("{} connection(s) waiting in the listener's accept queue (backlog {})", l.recv_q, l.send_q),
            );
        }
    }
}

/// Reading the kernel's socket tables: a `sock_diag` dump for Unix
/// sockets, `/proc/net/tcp` for TCP, and single questions asked of a
/// borrowed descriptor.
pub mod diag {
    use std::collections::HashMap;
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use crate::monitor::procfs;

    const NETLINK_SOCK_DIAG: i32 = 4;
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const UDIAG_SHOW_NAME: u32 = 0x01;
    const UDIAG_SHOW_PEER: u32 = 0x04;
    const UDIAG_SHOW_RQLEN: u32 = 0x10;
    const UDIAG_SHOW_MEMINFO: u32 = 0x20;
    const UNIX_DIAG_NAME: u16 = 0;
    const UNIX_DIAG_PEER: u16 = 2;
    const UNIX_DIAG_RQLEN: u16 = 4;
    const UNIX_DIAG_MEMINFO: u16 = 5;
    const SO_MEMINFO: i32 = 55;

    /// Indices into `SK_MEMINFO` (`SO_MEMINFO`, `UNIX_DIAG_MEMINFO`).
    pub const MEM_RCVBUF: usize = 1;
    pub const MEM_WMEM_ALLOC: usize = 2;
    pub const MEM_SNDBUF: usize = 3;
    pub const MEM_WMEM_QUEUED: usize = 5;
    const MEM_VARS: usize = 9;

    #[derive(Debug, Clone, Default)]
    pub struct UnixSock {
        pub state: u8,
        pub name: Option<String>,
        pub peer: Option<u64>,
        /// UNIX_DIAG_RQLEN: connected = SIOCINQ / SIOCOUTQ; listener =
        /// pending connections / backlog.
        pub rq: u64,
        pub wq: u64,
        pub mem: Option<[u32; MEM_VARS]>,
    }

    pub fn state_name(st: u8) -> &'static str {
        match st {
            1 => "ESTABLISHED",
            7 => "UNCONNECTED",
            8 => "CLOSE_WAIT",
            10 => "LISTEN",
            _ => "?",
        }
    }

    pub fn tcp_state_name(st: u8) -> &'static str {
        match st {
            1 => "ESTABLISHED",
            2 => "SYN_SENT",
            3 => "SYN_RECV",
            4 => "FIN_WAIT1",
            5 => "FIN_WAIT2",
            6 => "TIME_WAIT",
            7 => "CLOSE",
            8 => "CLOSE_WAIT",
            9 => "LAST_ACK",
            10 => "LISTEN",
            11 => "CLOSING",
            _ => "?",
        }
    }

    fn u16_at(b: &[u8], o: usize) -> u16 {
        u16::from_ne_bytes([b[o], b[o + 1]])
    }
    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
    }

    /// Every Unix stream socket on the machine, by inode.
    pub fn unix_dump() -> std::io::Result<HashMap<u64, UnixSock>> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, NETLINK_SOCK_DIAG) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = Vec::with_capacity(40);
        req.extend_from_slice(&40u32.to_ne_bytes());
        req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes()); // seq
        req.extend_from_slice(&0u32.to_ne_bytes()); // pid
        req.push(libc::AF_UNIX as u8);
        req.push(0); // protocol
        req.extend_from_slice(&0u16.to_ne_bytes());
        req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
        req.extend_from_slice(&0u32.to_ne_bytes()); // ino
        let show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO;
        req.extend_from_slice(&show.to_ne_bytes());
        req.extend_from_slice(&[0xff; 8]); // cookie: none
                                           // SAFETY: all-zero is a valid sockaddr_nl (the kernel).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: a valid buffer and address.
        let r = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut out = HashMap::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: a valid buffer; blocks until the kernel answers.
            let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let b = &buf[..n as usize];
            if b.is_empty() {
                return Ok(out);
            }
            let mut off = 0;
            while off + 16 <= b.len() {
                let len = u32_at(b, off) as usize;
                let ty = u16_at(b, off + 4);
                if len < 16 || off + len > b.len() {
                    return Ok(out);
                }
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let err = u32_at(b, off + 16) as i32;
                        return Err(std::io::Error::from_raw_os_error(-err));
                    }
                    _ => {
                        if let Some((ino, s)) = parse_unix_msg(&b[off + 16..off + len]) {
                            out.insert(ino, s);
                        }
                    }
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// One `unix_diag_msg` and its attributes.
    fn parse_unix_msg(m: &[u8]) -> Option<(u64, UnixSock)> {
        if m.len() < 16 || m[1] != libc::SOCK_STREAM as u8 {
            return None;
        }
        let ino = u32_at(m, 4) as u64;
        let mut s = UnixSock { state: m[2], ..UnixSock::default() };
        let mut off = 16;
        while off + 4 <= m.len() {
            let len = u16_at(m, off) as usize;
            let ty = u16_at(m, off + 2);
            if len < 4 || off + len > m.len() {
                break;
            }
            let p = &m[off + 4..off + len];
            match ty {
                UNIX_DIAG_NAME if !p.is_empty() => {
                    let name = if p[0] == 0 {
                        // Abstract: '@' as ss prints it.
                        format!("@{}", String::from_utf8_lossy(&p[1..]))
                    } else {
                        let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                        String::from_utf8_lossy(&p[..end]).into_owned()
                    };
                    s.name = Some(name);
                }
                UNIX_DIAG_PEER if p.len() >= 4 => s.peer = Some(u32_at(p, 0) as u64),
                UNIX_DIAG_RQLEN if p.len() >= 8 => {
                    s.rq = u32_at(p, 0) as u64;
                    s.wq = u32_at(p, 4) as u64;
                }
                UNIX_DIAG_MEMINFO if p.len() >= 4 * MEM_VARS => {
                    let mut mem = [0u32; MEM_VARS];
                    for (i, v) in mem.iter_mut().enumerate() {
                        *v = u32_at(p, i * 4);
                    }
                    s.mem = Some(mem);
                }
                _ => {}
            }
            off += (len + 3) & !3;
        }
        Some((ino, s))
    }

    #[derive(Debug, Clone)]
    pub struct TcpRow {
        pub local: (Ipv4Addr, u16),
        pub remote: (Ipv4Addr, u16),
        pub state: u8,
        pub tx: u64,
        pub rx: u64,
    }

    /// `/proc/net/tcp`, by inode.
    pub fn proc_net_tcp() -> HashMap<u64, TcpRow> {
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        parse_proc_net_tcp(&text)
    }

    fn addr(s: &str) -> Option<(Ipv4Addr, u16)> {
        let (ip, port) = s.split_once(':')?;
        // The kernel prints the address word as it lies in memory.
        let ip = u32::from_str_radix(ip, 16).ok()?;
        Some((Ipv4Addr::from(ip.to_ne_bytes()), u16::from_str_radix(port, 16).ok()?))
    }

    pub fn parse_proc_net_tcp(text: &str) -> HashMap<u64, TcpRow> {
        let mut out = HashMap::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let (Some(local), Some(remote)) = (addr(f[1]), addr(f[2])) else {
                continue;
            };
            let Some((tx, rx)) = f[4].split_once(':') else {
                continue;
            };
            let (Ok(state), Ok(tx), Ok(rx), Ok(ino)) = (
                u8::from_str_radix(f[3], 16),
                u64::from_str_radix(tx, 16),
                u64::from_str_radix(rx, 16),
                f[9].parse::<u64>(),
            ) else {
                continue;
            };
            if ino != 0 {
                out.insert(ino, TcpRow { local, remote, state, tx, rx });
            }
        }
        out
    }

    /// `getsockopt(SO_MEMINFO)` on a borrowed copy of `pid`'s `fd`.
    pub fn meminfo(pid: i32, fd: i32) -> Option<[u32; MEM_VARS]> {
        let dup = procfs::borrow_fd(pid, fd)?;
        let mut mem = [0u32; MEM_VARS];
        let mut len = std::mem::size_of_val(&mem) as libc::socklen_t;
        // SAFETY: a valid buffer of `len` bytes; getsockopt only reads state.
        let r = unsafe {
            libc::getsockopt(dup.as_raw_fd(), libc::SOL_SOCKET, SO_MEMINFO, mem.as_mut_ptr().cast(), &mut len)
        };
        drop(dup);
        (r == 0).then_some(mem)
    }

    /// A TCP listener's (pending connections, backlog limit), from
    /// `TCP_INFO` on a borrowed copy.
    pub fn listen_backlog(pid: i32, fd: i32) -> Option<(u64, u64)> {
        let dup = procfs::borrow_fd(pid, fd)?;
        // SAFETY: all-zero is a valid tcp_info.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: a valid buffer of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                dup.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        drop(dup);
        (r == 0).then_some((info.tcpi_unacked as u64, info.tcpi_sacked as u64))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn proc_net_tcp_rows() {
            let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:9C4B 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:9C4B 0100007F:D2F0 01 00000010:00001388 00:00000000 00000000     0        0 12346 1\n";
            let m = parse_proc_net_tcp(t);
            let l = &m[&12345];
            assert_eq!(l.local, (Ipv4Addr::LOCALHOST, 0x9C4B));
            assert_eq!((l.state, l.rx), (10, 1));
            let c = &m[&12346];
            assert_eq!(c.remote.1, 0xD2F0);
            assert_eq!((c.tx, c.rx), (16, 5000));
        }

        #[test]
        fn unix_dump_sees_our_socketpair() {
            let mut fds = [0; 2];
            assert_eq!(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) }, 0);
            let n = unsafe { libc::write(fds[0], b"hello".as_ptr().cast(), 5) };
            assert_eq!(n, 5);
            let ino = |fd: i32| -> u64 {
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                unsafe { libc::fstat(fd, &mut st) };
                st.st_ino
            };
            let dump = unix_dump().unwrap();
            let b = &dump[&ino(fds[1])];
            assert_eq!(b.rq, 5);
            assert_eq!(b.peer, Some(ino(fds[0])));
            let me = std::process::id() as i32;
            let m = meminfo(me, fds[0]).unwrap();
            assert!(m[MEM_SNDBUF] > 0 && m[MEM_WMEM_ALLOC] > 0);
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
        }
    }
}
