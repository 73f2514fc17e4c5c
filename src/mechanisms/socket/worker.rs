//! The socket mechanism's processes: the server (one listener per family,
//! `poll()` over it and the accepted sockets) and the clients (connect,
//! then stream messages); every call they make is recorded under its real
//! name and printed as C would show it.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, SockaddrIn, UnixAddr};

use super::consts::{abstract_name, FAM_TCP, FAM_UNIX, SOCK_NAME};
use super::netns;
use crate::knobs::KnobId;
use crate::mechanisms::pipe::{errno_name, ret_str};
use crate::mechanisms::worker::{self, errno, Frame, FrameReader, Pacer, WorkerCtx};
use crate::message::{self, Verifier};
use crate::monitor::Calls;
use crate::telemetry::Op;

/// The listener's backlog (`listen(fd, BACKLOG)`).
const BACKLOG: i32 = 16;

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

const CALL_UNSHARE: u64 = 15;
const CALL_VETH: u64 = 16;
const CALL_CONNECT_ABSTRACT: u64 = 17;
const CALL_BIND_ABSTRACT: u64 = 18;

const OPT_SNDBUF: u64 = 1;
const OPT_RCVBUF: u64 = 2;
const OPT_NODELAY: u64 = 3;
const OPT_FREEBIND: u64 = 4;

fn ip_port(ip: u64, port: u64) -> String {
    format!("{}:{port}", Ipv4Addr::from(ip as u32))
}

fn ip_cidr(ip: u64) -> String {
    netns::Plan::cidr(Ipv4Addr::from(ip as u32))
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
                OPT_FREEBIND => "IP_FREEBIND",
                _ => "TCP_NODELAY",
            };
            format!("setsockopt({}, {opt}, {}) = {r}", a[0], a[2])
        }
        CALL_UNLINK => format!("unlink(\"…/{SOCK_NAME}\") = {r}"),
        CALL_CHMOD => format!("chmod(\"…/{SOCK_NAME}\", 0{:o}) = {r}", a[0]),
        CALL_UNSHARE => format!("unshare(CLONE_NEWNET) = {r}"),
        CALL_VETH => {
            let step = netns::Step::from_u64(a[0]).map_or("veth", |s| s.name());
            format!("{step} {} ↔ {} = {r}", ip_cidr(a[1]), ip_cidr(a[2]))
        }
        CALL_CONNECT_ABSTRACT => format!("connect({}, \"@…-{SOCK_NAME}\") = {r}", a[0]),
        CALL_BIND_ABSTRACT => format!("bind({}, \"@…-{SOCK_NAME}\") = {r}", a[0]),
        _ => format!("call {call}"),
    }
}

pub(super) const CALLS: Calls = Calls { event: format_call, op: op_name };

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Write => "send()",
        Op::Read => "recv()",
        Op::Wait => "poll()",
        _ => crate::monitor::default_op_name(op),
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

/// A nix call's result as the event log wants it: 0, or minus the errno.
fn ret_nix<T>(r: &nix::Result<T>) -> i64 {
    r.as_ref().map_or_else(|e| -(*e as i64), |_| 0)
}

fn new_socket(ctx: &WorkerCtx, fam: u64, flags: SockFlag) -> Result<OwnedFd> {
    let domain = if fam == FAM_TCP { AddressFamily::Inet } else { AddressFamily::Unix };
    let r = socket::socket(domain, SockType::Stream, SockFlag::SOCK_CLOEXEC | flags, None);
    ctx.event(CALL_SOCKET, [fam, 0, 0], r.as_ref().map_or_else(|e| -(*e as i64), |fd| fd.as_raw_fd() as i64));
    r.map_err(|e| anyhow::anyhow!("socket: {}", std::io::Error::from(e)))
}

fn set_int_opt(ctx: &WorkerCtx, fd: RawFd, level: i32, name: i32, which: u64, v: u64) {
    let val = v.min(i32::MAX as u64) as libc::c_int;
    // SAFETY: `val` is a live c_int and the length says so; setsockopt
    // only reads it, and a bad `fd` is EBADF, not UB.
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

fn unix_addr(path: &std::path::Path) -> Result<UnixAddr> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() >= 108 {
        bail!("socket path too long: {}", path.display());
    }
    UnixAddr::new(path).map_err(|e| anyhow::anyhow!("socket path {}: {}", path.display(), e.desc()))
}

fn loopback(port: u16) -> SockaddrIn {
    SockaddrIn::from(std::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// One accepted connection on the server's side.
struct Conn {
    fd: OwnedFd,
    reader: FrameReader,
    /// poll() said readable, or the reader may hold whole messages.
    ready: bool,
}

pub(super) fn server(ctx: &mut WorkerCtx) -> Result<()> {
    let fams = match ctx.arg("families")? {
        "unix" => FAM_UNIX,
        "tcp" => FAM_TCP,
        _ => FAM_UNIX | FAM_TCP,
    };
    let buffer = ctx.knob(KnobId::SocketBuffer);
    let mut listeners: Vec<OwnedFd> = Vec::new();
    if fams & FAM_UNIX != 0 {
        let path = ctx.run_dir.join(SOCK_NAME);
        // A stale socket file from an earlier server would make bind fail.
        let r = match std::fs::remove_file(&path) {
            Ok(()) => 0,
            Err(e) => -(e.raw_os_error().unwrap_or(0) as i64),
        };
        ctx.event(CALL_UNLINK, [0; 3], r);
        let fd = new_socket(ctx, FAM_UNIX, SockFlag::empty())?;
        let raw = fd.as_raw_fd();
        if buffer > 0 {
            set_int_opt(ctx, raw, libc::SOL_SOCKET, libc::SO_RCVBUF, OPT_RCVBUF, buffer);
        }
        let addr = unix_addr(&path)?;
        let r = socket::bind(raw, &addr);
        ctx.event(CALL_BIND_UNIX, [raw as u64, 0, 0], ret_nix(&r));
        if let Err(e) = r {
            bail!("bind {}: {}", path.display(), std::io::Error::from(e));
        }
        // Only our own user may connect (the run dir is 0700 as well).
        let r = match std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)) {
            Ok(()) => 0,
            Err(e) => -(e.raw_os_error().unwrap_or(0) as i64),
        };
        ctx.event(CALL_CHMOD, [0o600, 0, 0], r);
        listen(ctx, &fd)?;
        ctx.me().aux[1].store(raw as u64 + 1, Relaxed);
        listeners.push(fd);
    }
    if fams & FAM_TCP != 0 {
        let fd = new_socket(ctx, FAM_TCP, SockFlag::empty())?;
        let raw = fd.as_raw_fd();
        if buffer > 0 {
            // Before listen(), so accepted sockets inherit it.
            set_int_opt(ctx, raw, libc::SOL_SOCKET, libc::SO_RCVBUF, OPT_RCVBUF, buffer);
        }
        // Loopback only, port 0: the kernel picks a free ephemeral port.
        let addr = loopback(0);
        let r = socket::bind(raw, &addr);
        ctx.event(CALL_BIND_INET, [raw as u64, u32::from(Ipv4Addr::LOCALHOST) as u64, 0], ret_nix(&r));
        if let Err(e) = r {
            bail!("bind 127.0.0.1:0: {}", std::io::Error::from(e));
        }
        let r = socket::getsockname::<SockaddrIn>(raw);
        let (ip, port) = r.as_ref().map_or((0, 0), |a| (u32::from(a.ip()), a.port()));
        ctx.event(CALL_GETSOCKNAME, [raw as u64, ip as u64, port as u64], ret_nix(&r));
        if let Err(e) = r {
            bail!("getsockname: {}", std::io::Error::from(e));
        }
        listen(ctx, &fd)?;
        ctx.me().aux[0].store(port as u64, Relaxed);
        ctx.me().aux[2].store(raw as u64 + 1, Relaxed);
        listeners.push(fd);
    }
    // socket.remote=netns: the same port on the run's end of the veth
    // (bound before the address exists: IP_FREEBIND), and an abstract
    // Unix name, which the other namespace cannot see. The abstract
    // listener is never accepted from (anyone in this namespace could
    // connect to an abstract name; it is only there to be looked for).
    let mut parked: Vec<OwnedFd> = Vec::new();
    if let Ok(ip) = ctx.arg("remote-ip") {
        let ip: Ipv4Addr = ip.parse().map_err(|_| anyhow::anyhow!("--arg remote-ip is not an address"))?;
        let port = ctx.me().aux[0].load(Relaxed) as u16;
        let fd = new_socket(ctx, FAM_TCP, SockFlag::empty())?;
        let raw = fd.as_raw_fd();
        if buffer > 0 {
            set_int_opt(ctx, raw, libc::SOL_SOCKET, libc::SO_RCVBUF, OPT_RCVBUF, buffer);
        }
        set_int_opt(ctx, raw, libc::IPPROTO_IP, libc::IP_FREEBIND, OPT_FREEBIND, 1);
        let r = socket::bind(raw, &SockaddrIn::from(std::net::SocketAddrV4::new(ip, port)));
        ctx.event(CALL_BIND_INET, [raw as u64, u32::from(ip) as u64, port as u64], ret_nix(&r));
        if let Err(e) = r {
            bail!("bind {ip}:{port}: {}", std::io::Error::from(e));
        }
        listen(ctx, &fd)?;
        listeners.push(fd);

        let fd = new_socket(ctx, FAM_UNIX, SockFlag::empty())?;
        let raw = fd.as_raw_fd();
        let name = abstract_name(&ctx.run_dir);
        let addr = UnixAddr::new_abstract(name.as_bytes())
            .map_err(|e| anyhow::anyhow!("abstract name {name}: {}", e.desc()))?;
        let r = socket::bind(raw, &addr);
        ctx.event(CALL_BIND_ABSTRACT, [raw as u64, 0, 0], ret_nix(&r));
        if let Err(e) = r {
            bail!("bind @{name}: {}", std::io::Error::from(e));
        }
        listen(ctx, &fd)?;
        parked.push(fd);
    }
    ctx.me().aux[7].store(1, Relaxed);
    worker::futex_wake(&ctx.me().aux[7]);

    let mut conns: Vec<Conn> = Vec::new();
    let mut pacer = Pacer::consumer();
    let mut verifier = Verifier::new();
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    loop {
        let stalled = ctx.knob(KnobId::ConsumerRate) == 0;
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
        crate::trace::hook::syscall();
        // SAFETY: `pfds` is a writable slice of `pfds.len()` pollfds; the
        // kernel writes `revents` only.
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
                let r = socket::accept4(l.as_raw_fd(), SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK);
                ctx.event(CALL_ACCEPT, [l.as_raw_fd() as u64, 0, 0], r.map_or_else(|e| -(e as i64), |fd| fd as i64));
                let fd = match r {
                    Ok(fd) => fd,
                    Err(e) => {
                        ctx.count_error(e as i32);
                        continue;
                    }
                };
                conns.push(Conn {
                    // SAFETY: accept4 just returned `fd`; nothing else owns it.
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
            if ctx.knob(KnobId::ConsumerRate) == 0 {
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

fn listen(ctx: &WorkerCtx, sock: &OwnedFd) -> Result<()> {
    let fd = sock.as_raw_fd();
    let r = socket::listen(sock, socket::Backlog::new(BACKLOG).unwrap_or(socket::Backlog::MAXCONN));
    ctx.event(CALL_LISTEN, [fd as u64, BACKLOG as u64, 0], ret_nix(&r));
    if let Err(e) = r {
        bail!("listen: {}", std::io::Error::from(e));
    }
    Ok(())
}

/// Wait (in the kernel) until the server is listening.
fn wait_for_server(ctx: &WorkerCtx, server_slot: usize) -> Result<()> {
    ctx.op(Op::Wait);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = &ctx.tel.slot(server_slot).aux[7];
        if ready.load(Relaxed) != 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server never started listening");
        }
        worker::futex_wait(ready, 0, Duration::from_millis(200));
    }
}

/// Telemetry `aux` words of the remote client: what its namespace could
/// reach. 0 = not tried, 1 = connected, 2 + errno = refused.
pub(super) const AUX_REMOTE_TCP: usize = 0;
pub(super) const AUX_REMOTE_ABSTRACT: usize = 1;
pub(super) const AUX_REMOTE_PATH: usize = 2;
pub(super) const AUX_REMOTE_LOOPBACK: usize = 3;
/// Setup failed: step (netns::Step) << 32 | errno.
pub(super) const AUX_REMOTE_FAILED: usize = 4;
/// 1 once its namespace and veth are up.
pub(super) const AUX_REMOTE_READY: usize = 5;

fn reach_code(r: &nix::Result<()>) -> u64 {
    r.as_ref().map_or_else(|e| 2 + *e as u64, |_| 1)
}

/// The client in a network namespace of its own (`socket.remote=netns`):
/// enter it, then try each of the server's names from there, and stream
/// over the one that is a network address.
pub(super) fn remote(ctx: &mut WorkerCtx) -> Result<()> {
    let server_slot = ctx.arg_usize("server-slot")?;
    wait_for_server(ctx, server_slot)?;
    let plan = netns::Plan::for_run(ctx.supervisor);
    let (h, r) = (u32::from(plan.host_ip) as u64, u32::from(plan.remote_ip) as u64);
    ctx.op(Op::Connect);
    if let Err(e) = netns::enter(&plan) {
        let code = -(e.errno as i64);
        if e.step == netns::Step::Unshare {
            ctx.event(CALL_UNSHARE, [0; 3], code);
        } else {
            ctx.event(CALL_UNSHARE, [0; 3], 0);
            ctx.event(CALL_VETH, [e.step as u64, h, r], code);
        }
        ctx.me().aux[AUX_REMOTE_FAILED].store((e.step as u64) << 32 | e.errno as u64, Relaxed);
        ctx.count_error(e.errno as i32);
        ctx.op(Op::Done);
        bail!("socket.remote=netns: {e}");
    }
    ctx.event(CALL_UNSHARE, [0; 3], 0);
    ctx.event(CALL_VETH, [netns::Step::Up as u64, h, r], 0);
    ctx.me().aux[AUX_REMOTE_READY].store(1, Relaxed);

    let port = ctx.tel.slot(server_slot).aux[0].load(Relaxed) as u16;
    // The network port, across the veth (the first connection: the
    // panel's arrow follows it).
    let sock = new_socket(ctx, FAM_TCP, SockFlag::empty())?;
    let fd = sock.as_raw_fd();
    let buffer = ctx.knob(KnobId::SocketBuffer);
    if buffer > 0 {
        set_int_opt(ctx, fd, libc::SOL_SOCKET, libc::SO_SNDBUF, OPT_SNDBUF, buffer);
    }
    let addr = SockaddrIn::from(std::net::SocketAddrV4::new(plan.host_ip, port));
    let res = socket::connect(fd, &addr);
    ctx.event(CALL_CONNECT_INET, [fd as u64, h, port as u64], ret_nix(&res));
    ctx.me().aux[AUX_REMOTE_TCP].store(reach_code(&res), Relaxed);
    if let Err(e) = res {
        ctx.count_error(e as i32);
        bail!("connect {}:{port}: {}", plan.host_ip, errno_name(e as i32));
    }

    // The abstract name: per network namespace, not found from here.
    let name = abstract_name(&ctx.run_dir);
    let probe = new_socket(ctx, FAM_UNIX, SockFlag::empty())?;
    let res = UnixAddr::new_abstract(name.as_bytes()).and_then(|a| socket::connect(probe.as_raw_fd(), &a));
    ctx.event(CALL_CONNECT_ABSTRACT, [probe.as_raw_fd() as u64, 0, 0], ret_nix(&res));
    ctx.me().aux[AUX_REMOTE_ABSTRACT].store(reach_code(&res), Relaxed);
    drop(probe);

    // The path: a file, found through the file system this process
    // shares with the run, whatever its network namespace. Kept open.
    let path = ctx.run_dir.join(SOCK_NAME);
    let by_path = new_socket(ctx, FAM_UNIX, SockFlag::empty())?;
    let res = unix_addr(&path)
        .map_err(|_| nix::errno::Errno::ENAMETOOLONG)
        .and_then(|a| socket::connect(by_path.as_raw_fd(), &a));
    ctx.event(CALL_CONNECT_UNIX, [by_path.as_raw_fd() as u64, 0, 0], ret_nix(&res));
    ctx.me().aux[AUX_REMOTE_PATH].store(reach_code(&res), Relaxed);

    // 127.0.0.1 here is this namespace's own loopback: nobody listens.
    let probe = new_socket(ctx, FAM_TCP, SockFlag::empty())?;
    let res = socket::connect(probe.as_raw_fd(), &loopback(port));
    ctx.event(
        CALL_CONNECT_INET,
        [probe.as_raw_fd() as u64, u32::from(Ipv4Addr::LOCALHOST) as u64, port as u64],
        ret_nix(&res),
    );
    ctx.me().aux[AUX_REMOTE_LOOPBACK].store(reach_code(&res), Relaxed);
    drop(probe);

    stream(ctx, sock, FAM_TCP, buffer)?;
    drop(by_path);
    Ok(())
}

pub(super) fn client(ctx: &mut WorkerCtx) -> Result<()> {
    let server_slot = ctx.arg_usize("server-slot")?;
    let fam = if ctx.arg("family")? == "tcp" { FAM_TCP } else { FAM_UNIX };
    wait_for_server(ctx, server_slot)?;
    let sock = new_socket(ctx, fam, SockFlag::empty())?;
    let fd = sock.as_raw_fd();
    let buffer = ctx.knob(KnobId::SocketBuffer);
    if buffer > 0 {
        set_int_opt(ctx, fd, libc::SOL_SOCKET, libc::SO_SNDBUF, OPT_SNDBUF, buffer);
    }
    ctx.op(Op::Connect);
    if fam == FAM_TCP {
        let port = ctx.tel.slot(server_slot).aux[0].load(Relaxed) as u16;
        let addr = loopback(port);
        let r = socket::connect(fd, &addr);
        ctx.event(CALL_CONNECT_INET, [fd as u64, u32::from(Ipv4Addr::LOCALHOST) as u64, port as u64], ret_nix(&r));
        if let Err(e) = r {
            ctx.count_error(e as i32);
            bail!("connect 127.0.0.1:{port}: {}", errno_name(e as i32));
        }
    } else {
        let path = ctx.run_dir.join(SOCK_NAME);
        let addr = unix_addr(&path)?;
        let r = socket::connect(fd, &addr);
        ctx.event(CALL_CONNECT_UNIX, [fd as u64, 0, 0], ret_nix(&r));
        if let Err(e) = r {
            ctx.count_error(e as i32);
            bail!("connect {}: {}", path.display(), errno_name(e as i32));
        }
    }
    stream(ctx, sock, fam, buffer)
}

/// Stream messages over a connected socket, then close it.
fn stream(ctx: &mut WorkerCtx, sock: OwnedFd, fam: u64, mut buffer: u64) -> Result<()> {
    let fd = sock.as_raw_fd();
    let mut nodelay = ctx.knob(KnobId::SocketNodelay);
    if fam == FAM_TCP && nodelay != 0 {
        set_int_opt(ctx, fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, OPT_NODELAY, 1);
    }
    let sender = ctx.sender_id();
    let count = ctx.knob(KnobId::ProducerCount);
    let mut pacer = Pacer::producer();
    let mut buf = vec![0u8; 1 << 20];
    let mut seq = 0u64;
    while count == 0 || seq < count {
        pacer.wait(ctx);
        // Knobs the TUI may turn while we run.
        let b = ctx.knob(KnobId::SocketBuffer);
        if b != buffer && b > 0 {
            buffer = b;
            set_int_opt(ctx, fd, libc::SOL_SOCKET, libc::SO_SNDBUF, OPT_SNDBUF, b);
        }
        let nd = ctx.knob(KnobId::SocketNodelay);
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
        crate::trace::hook::syscall();
        // SAFETY: `buf` is readable for `buf.len()` bytes; send keeps no
        // pointer, and a bad `fd` is EBADF, not UB.
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
