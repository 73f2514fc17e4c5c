//! The emulated Mach kernel process: one thread, one `poll` loop.
//!
//! It binds the socket, accepts tasks of its own uid, decodes each packet,
//! hands it to the pure [`Kernel`] and sends what the kernel answers. The
//! `poll` timeout is the nearest kernel deadline (a `MACH_SEND_TIMEOUT` or
//! `MACH_RCV_TIMEOUT`), capped so that `stop` is looked at regularly; the
//! loop never spins.
//!
//! Out-of-line memory arrives as a sealed `memfd`. The server measures it
//! (size, seals) and gives the kernel the descriptor itself, which stays in
//! the queued message until the receiver gets it with `SCM_RIGHTS` — the
//! bytes are mapped by the receiver, never copied here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::kernel::{Attachment, ConnId, Kernel, Limits, Outgoing, Personality};
use super::proto::{decode_request, encode_reply, Descriptor, Reply, Request, NO_FD};
use super::vm;
use crate::mechanisms::ekernel::transport::{self, Accept, AcceptGate, Conn, Listener, TransportError};
use crate::mechanisms::ekernel::{Throttled, STOP_ASK_EVERY};

/// Connections served at once; more are accepted and closed at once so the
/// listener does not stay readable (which would spin the loop).
const MAX_CONNECTIONS: usize = 256;
/// Replies queued for a peer that does not read them; past this the peer
/// is dropped.
const MAX_OUTBOX_BYTES: usize = 64 * 1024 * 1024;
/// How often `stop` is consulted while nothing happens.
const STOP_CHECK: Duration = Duration::from_millis(100);

struct Client {
    conn: Conn,
    outbox: VecDeque<(Vec<u8>, Vec<OwnedFd>)>,
    outbox_bytes: usize,
    /// The task's pools this connection has sent us, by its name for them
    /// (`Descriptor::OolRegion`'s `pool`), checked once: later regions of
    /// them come without a descriptor (a `dup` here instead of passing,
    /// checking and closing one per message).
    pools: HashMap<u32, (OwnedFd, u64)>,
}

/// Pools kept per connection (a thread has at most `MAX_POOLS`).
const MAX_KNOWN_POOLS: usize = 16;

/// Runs the kernel on `socket_path` until `stop()` returns true. The socket
/// file is removed on return.
pub fn run(socket_path: &Path, stop: impl Fn() -> bool) -> io::Result<()> {
    run_with_limits(socket_path, Limits::default(), stop)
}

/// [`run`] with explicit resource limits.
pub fn run_with_limits(socket_path: &Path, limits: Limits, stop: impl Fn() -> bool) -> io::Result<()> {
    run_controlled(socket_path, limits, stop, || None)
}

/// [`run_with_limits`], with the kernel's own settings read from
/// `control()` each time the loop wakes (at least every [`STOP_CHECK`]):
/// a new `Some(p)` switches the running kernel to personality `p`.
pub fn run_controlled(
    socket_path: &Path,
    limits: Limits,
    stop: impl Fn() -> bool,
    control: impl Fn() -> Option<Personality>,
) -> io::Result<()> {
    let listener = Listener::bind(socket_path)?;
    let mut server = Server {
        kernel: Kernel::new(limits, random_seed()),
        clients: BTreeMap::new(),
        next_conn: 1,
        start: Instant::now(),
        dead: Vec::new(),
        buf: Vec::with_capacity(transport::MAX_PACKET),
        gate: AcceptGate::default(),
    };
    // The setting as last read: applied when it changes, so a switch sent
    // over the socket stands until the setting itself moves.
    let mut setting = None;
    let mut stop = Throttled::new(stop, STOP_ASK_EVERY);
    while !stop.stop() {
        let now = server.now_ms();
        if let Some(p) = control().filter(|p| setting != Some(*p)) {
            setting = Some(p);
            server.kernel.set_personality(p, now);
        }
        let outs = server.kernel.tick(now);
        server.dispatch(outs);
        server.reap();

        let timeout = match server.kernel.next_deadline() {
            Some(deadline) => Duration::from_millis(deadline.saturating_sub(now)).min(STOP_CHECK),
            None => STOP_CHECK,
        };
        let ids: Vec<ConnId> = server.clients.keys().copied().collect();
        let mut fds = Vec::with_capacity(ids.len() + 1);
        fds.push(server.gate.pollfd(&listener));
        for id in &ids {
            let client = &server.clients[id];
            // A peer with unsent replies is not read from until it takes
            // them: that bounds what one peer can make us buffer.
            let events = if client.outbox.is_empty() { libc::POLLIN } else { libc::POLLOUT };
            fds.push(libc::pollfd { fd: client.conn.as_fd().as_raw_fd(), events, revents: 0 });
        }
        if transport::poll(&mut fds, Some(server.gate.timeout(timeout)))? == 0 {
            continue;
        }
        if fds[0].revents != 0 {
            server.accept_all(&listener)?;
        }
        for (pfd, id) in fds[1..].iter().zip(ids) {
            if pfd.revents == 0 {
                continue;
            }
            if pfd.revents & libc::POLLOUT != 0 {
                server.flush(id);
            }
            if pfd.revents & libc::POLLIN != 0 {
                server.read_one(id);
            } else if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                server.dead.push(id);
            }
            server.reap();
        }
    }
    Ok(())
}

struct Server {
    kernel: Kernel<OwnedFd>,
    clients: BTreeMap<ConnId, Client>,
    next_conn: ConnId,
    start: Instant,
    /// Connections to close and report to the kernel.
    dead: Vec<ConnId>,
    buf: Vec<u8>,
    /// Out of descriptors, accepting waits (instead of the kernel dying).
    gate: AcceptGate,
}

impl Server {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn accept_all(&mut self, listener: &Listener) -> io::Result<()> {
        loop {
            match listener.accept() {
                Ok(Accept::Ready(conn)) => {
                    if self.clients.len() >= MAX_CONNECTIONS {
                        drop(conn);
                        continue;
                    }
                    let id = self.next_conn;
                    self.next_conn += 1;
                    self.kernel.connect(id, conn.peer());
                    self.clients
                        .insert(id, Client { conn, outbox: VecDeque::new(), outbox_bytes: 0, pools: HashMap::new() });
                }
                Ok(Accept::Refused(_)) => continue,
                Ok(Accept::Empty) => return Ok(()),
                // Out of descriptors and the like: serve the others and
                // retry after a pause instead of dying (or spinning).
                Err(e) => return self.gate.on_error(e),
            }
        }
    }

    fn read_one(&mut self, id: ConnId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let fds = match client.conn.try_recv(&mut self.buf) {
            Ok(fds) => fds,
            Err(TransportError::WouldBlock) => return,
            Err(e @ (TransportError::TooLarge | TransportError::TooManyFds)) => {
                self.send_reply(id, &Reply::ProtocolError { message: e.to_string() }, Vec::new());
                return;
            }
            Err(TransportError::Closed | TransportError::Io(_)) => {
                self.dead.push(id);
                return;
            }
        };
        let mut request = match decode_request(&self.buf) {
            Ok(r) => r,
            Err(e) => {
                self.send_reply(id, &Reply::ProtocolError { message: format!("bad request: {e}") }, Vec::new());
                return;
            }
        };
        // Descriptors only mean something with a message; others are
        // closed here by dropping them.
        let attachments = match &mut request {
            Request::MachMsg(m) => attach(&mut m.descriptors, fds, &mut client.pools),
            _ => Vec::new(),
        };
        let now = self.now_ms();
        let outs = self.kernel.handle(id, request, attachments, now);
        self.dispatch(outs);
    }

    fn dispatch(&mut self, outs: Vec<Outgoing<OwnedFd>>) {
        for out in outs {
            match out {
                Outgoing::Reply { conn, reply, fds } => self.send_reply(conn, &reply, fds),
                Outgoing::Close { conn } => {
                    // The kernel already forgot this connection.
                    self.clients.remove(&conn);
                }
            }
        }
    }

    fn send_reply(&mut self, id: ConnId, reply: &Reply, fds: Vec<OwnedFd>) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let packet = encode_reply(reply);
        client.outbox_bytes += packet.len();
        client.outbox.push_back((packet, fds));
        if client.outbox_bytes > MAX_OUTBOX_BYTES {
            self.dead.push(id);
            return;
        }
        self.flush(id);
    }

    fn flush(&mut self, id: ConnId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        while let Some((packet, fds)) = client.outbox.front() {
            let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
            match client.conn.try_send(packet, &borrowed) {
                Ok(()) => {
                    let len = packet.len();
                    client.outbox.pop_front();
                    client.outbox_bytes -= len;
                }
                Err(TransportError::WouldBlock) => return,
                Err(_) => {
                    self.dead.push(id);
                    return;
                }
            }
        }
    }

    fn reap(&mut self) {
        while let Some(id) = self.dead.pop() {
            if self.clients.remove(&id).is_some() {
                let now = self.now_ms();
                let outs = self.kernel.disconnect(id, now);
                self.dispatch(outs);
            }
        }
    }
}

/// Measures each descriptor that came with a message: a sealed memfd, a
/// task's pool, or nothing usable. A pool region sent without `deallocate`
/// must stay as it is for the receiver while its owner goes on writing the
/// pool, and Linux has no copy-on-write snapshot of a shared memfd
/// (`MAP_PRIVATE` only hides the mapper's own writes): so the region is
/// copied here, in the kernel (`copy_file_range`), into a sealed memfd,
/// and counted as copied. A region outside its pool is left for the kernel
/// to refuse.
fn attach(
    descriptors: &mut [Descriptor],
    fds: Vec<OwnedFd>,
    known: &mut HashMap<u32, (OwnedFd, u64)>,
) -> Vec<Attachment<OwnedFd>> {
    let mut out: Vec<Attachment<OwnedFd>> = fds
        .into_iter()
        .map(|fd| {
            // The seals, read once, say which kind it can be.
            let seals = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).ok();
            if let Some(len) = seals.and_then(|s| sealed_len(fd.as_fd(), s)) {
                return Attachment::sealed(Some(len), fd);
            }
            match seals.and_then(|s| vm::pool_stat_sealed(fd.as_fd(), s)) {
                Some(pool) => Attachment { len: Some(pool.len), handle: fd, pool: true, copied: false },
                None => Attachment::sealed(None, fd),
            }
        })
        .collect();
    // A pool named for the first time is kept; a region of a kept pool
    // gets a duplicate of its descriptor, as if it had come with the packet.
    for d in descriptors.iter_mut() {
        let Descriptor::OolRegion { fd_index, pool, .. } = d else { continue };
        if *pool == 0 {
            continue;
        }
        if *fd_index == NO_FD {
            let Some((fd, len)) = known.get(pool) else { continue };
            if let Ok(dup) = fd.try_clone() {
                *fd_index = out.len() as u32;
                out.push(Attachment { len: Some(*len), handle: dup, pool: true, copied: false });
            }
        } else if let Some(a) = out.get(*fd_index as usize).filter(|a| a.pool) {
            if known.len() < MAX_KNOWN_POOLS && !known.contains_key(pool) {
                if let (Ok(dup), Some(len)) = (a.handle.try_clone(), a.len) {
                    known.insert(*pool, (dup, len));
                }
            }
        }
    }
    for d in descriptors.iter_mut() {
        let Descriptor::OolRegion { offset, size, deallocate: false, fd_index, .. } = d else { continue };
        let Some(a) = out.get_mut(*fd_index as usize) else { continue };
        let inside = offset.checked_add(u64::from(*size)).zip(a.len).is_some_and(|(end, len)| end <= len);
        if !a.pool || !inside {
            continue;
        }
        if let Ok(snapshot) = snapshot(a.handle.as_fd(), *offset, *size as usize) {
            *a = Attachment { len: Some(u64::from(*size)), handle: snapshot, pool: false, copied: true };
            *offset = 0;
        }
    }
    out
}

/// A sealed memfd holding `len` bytes of `from` at `offset`.
fn snapshot(from: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(c"mach-ool-copy", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    nix::unistd::ftruncate(&fd, len as i64)?;
    let mut off_in = offset as i64;
    let mut off_out = 0i64;
    let mut left = len;
    while left > 0 {
        // SAFETY: both descriptors are open for the call; the offsets are
        // ours (explicit offsets leave the files' own positions alone).
        let n = unsafe { libc::copy_file_range(from.as_raw_fd(), &mut off_in, fd.as_raw_fd(), &mut off_out, left, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n == 0 {
            return Err(io::Error::other("OOL region shorter than said"));
        }
        left -= n;
    }
    let seals = SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    fcntl(fd.as_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    Ok(fd)
}

/// The usable length of an OOL memory object with these `seals`: a memfd
/// sealed against writing, shrinking and growing, so that the receiver's
/// mapping is a snapshot and can never fault past the end. Anything else
/// → `None`.
fn sealed_len(fd: BorrowedFd<'_>, seals: i32) -> Option<u64> {
    let needed = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals & needed != needed {
        return None;
    }
    let st = nix::sys::stat::fstat(fd).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    u64::try_from(st.st_size).ok()
}

/// Seed for the join tokens: they must not be guessable by other processes.
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(fd_index: u32, pool: u32) -> Descriptor {
        Descriptor::OolRegion { offset: 0, size: 4096, deallocate: true, fd_index, pool }
    }

    #[test]
    fn a_pool_named_once_travels_by_name_after() {
        let pool = vm::Pool::create().unwrap();
        let mut known = HashMap::new();
        // First message: the descriptor comes with it, and is kept.
        let mut first = [region(0, 7)];
        let a = attach(&mut first, vec![pool.fd().try_clone_to_owned().unwrap()], &mut known);
        assert!(a.len() == 1 && a[0].pool && a[0].len == Some(vm::POOL_SIZE as u64));
        assert!(known.contains_key(&7));
        // Later: no descriptor, the name only; the server attaches a copy.
        let mut later = [region(NO_FD, 7)];
        let a = attach(&mut later, Vec::new(), &mut known);
        assert_eq!(later[0], region(0, 7));
        assert!(a.len() == 1 && a[0].pool && a[0].len == Some(vm::POOL_SIZE as u64));
        // A name this connection never sent stays unresolved (the kernel
        // answers MACH_SEND_INVALID_MEMORY), and so does a name with no pool.
        let mut unknown = [region(NO_FD, 8), region(NO_FD, 0)];
        assert!(attach(&mut unknown, Vec::new(), &mut known).is_empty());
        assert_eq!(unknown, [region(NO_FD, 8), region(NO_FD, 0)]);
    }

    #[test]
    fn only_a_pool_is_kept_and_only_so_many() {
        let mut known = HashMap::new();
        // A sealed memfd is not a pool: not kept under any name.
        let sealed = nix::sys::memfd::memfd_create(c"t", nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING).unwrap();
        nix::unistd::ftruncate(&sealed, 4096).unwrap();
        let seals = nix::fcntl::SealFlag::F_SEAL_WRITE
            | nix::fcntl::SealFlag::F_SEAL_SHRINK
            | nix::fcntl::SealFlag::F_SEAL_GROW;
        nix::fcntl::fcntl(sealed.as_fd(), nix::fcntl::FcntlArg::F_ADD_SEALS(seals)).unwrap();
        attach(&mut [region(0, 1)], vec![sealed], &mut known);
        assert!(known.is_empty());
        let pools: Vec<_> = (0..MAX_KNOWN_POOLS + 2).map(|_| vm::Pool::create().unwrap()).collect();
        for (i, p) in pools.iter().enumerate() {
            attach(&mut [region(0, 100 + i as u32)], vec![p.fd().try_clone_to_owned().unwrap()], &mut known);
        }
        assert_eq!(known.len(), MAX_KNOWN_POOLS);
    }
}
