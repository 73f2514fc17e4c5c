//! The emulated NT kernel process: one thread, one `poll` loop.
//!
//! It owns the [`AlpcKernel`] state machine and does the I/O the state
//! machine asks for: sending responses (with section memfds as
//! `SCM_RIGHTS`), creating section memory, and copying between two
//! processes' address spaces for `NtReadRequestData` / `NtWriteRequestData`.
//! It never busy-waits: `poll` sleeps until a socket is ready, the next
//! timeout is due, or the stop check interval passes.

use super::kernel::{
    AlpcKernel, ConnId, CopyDirection, DirectCopy, KernelConfig, Millis, Outgoing, Personality, SectionId,
};
use super::proto::{decode_request, encode_response, peek_call_id, ProtoError, Response, ResponseBody};
use super::types::NtStatus;
use crate::mechanisms::ekernel::transport::{self, Accept, AcceptGate, Conn, Listener, TransportError};
use crate::mechanisms::ekernel::{Throttled, STOP_ASK_EVERY};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;

/// How often the loop wakes to ask `stop()` when nothing else happens.
const STOP_CHECK: Duration = Duration::from_millis(50);
/// Responses queued for a process that does not read them; past this the
/// process is cut off rather than letting it make the kernel hold memory.
const MAX_QUEUED_RESPONSES: usize = 64;
/// Direct copies go through a bounce buffer of this size, so a 64 MiB
/// `NtReadRequestData` costs the kernel 1 MiB, not 64 MiB. Each piece is a
/// `process_vm_readv` and a `process_vm_writev` that pin the remote pages:
/// measured here, 1 MiB in 64 KiB pieces takes 111 µs a direction, in one
/// piece 81 µs (a `memcpy` of it, 22 µs).
const BOUNCE_BUFFER: usize = 1 << 20;

/// Runs the kernel on `socket_path` with the default configuration until
/// `stop()` returns true. The socket file is removed on return.
pub fn run(socket_path: &Path, stop: impl Fn() -> bool) -> io::Result<()> {
    run_with_config(socket_path, KernelConfig::default(), stop)
}

/// Like [`run`], with explicit knobs (`alpc.small_max`, `alpc.max_pool_usage`, limits).
pub fn run_with_config(socket_path: &Path, config: KernelConfig, stop: impl Fn() -> bool) -> io::Result<()> {
    let personality = config.personality;
    run_switchable(socket_path, config, stop, move || personality)
}

/// Like [`run_with_config`]; `personality()` is asked every round (at
/// least every `STOP_CHECK`) and the kernel switches its rules when it
/// changes (`alpc.personality`).
pub fn run_switchable(
    socket_path: &Path,
    mut config: KernelConfig,
    stop: impl Fn() -> bool,
    personality: impl Fn() -> Personality,
) -> io::Result<()> {
    config.kernel_pid = std::process::id();
    let listener = Listener::bind(socket_path)?;
    let mut server = Server {
        kernel: AlpcKernel::new(config),
        conns: BTreeMap::new(),
        windows: HashMap::new(),
        sections: HashMap::new(),
        next_conn: 1,
        started: Instant::now(),
        bounce: vec![0; BOUNCE_BUFFER],
        packet: Vec::new(),
        gate: AcceptGate::default(),
    };
    let mut stop = Throttled::new(stop, STOP_ASK_EVERY);
    while !stop.stop() {
        server.kernel.set_personality(personality());
        server.poll_once(&listener)?;
    }
    // Dropping the listener removes the socket file; dropping the
    // connections tells every process the kernel is gone.
    Ok(())
}

struct Peer {
    conn: Conn,
    /// Responses the socket could not take yet, with their memfds.
    backlog: VecDeque<(Vec<u8>, Vec<OwnedFd>)>,
}

/// A process's direct window as the kernel process holds it: the same
/// memfd, mapped here too, so a direct copy lands in one step.
struct Window {
    fd: OwnedFd,
    map: memmap2::MmapRaw,
    /// Where the process mapped it (0 until it says).
    base: u64,
}

impl Window {
    /// Our address of the process's `address..+len`, if the window holds it.
    fn local(&self, address: u64, len: u64) -> Option<*mut u8> {
        let offset = address.checked_sub(self.base).filter(|_| self.base != 0)?;
        let end = offset.checked_add(len)?;
        if end > self.map.len() as u64 {
            return None;
        }
        // SAFETY: `offset + len` is inside the mapping (checked above).
        Some(unsafe { self.map.as_mut_ptr().add(usize::try_from(offset).ok()?) })
    }
}

struct Server {
    kernel: AlpcKernel,
    conns: BTreeMap<ConnId, Peer>,
    windows: HashMap<ConnId, Window>,
    /// The memfd behind each section object.
    sections: HashMap<SectionId, OwnedFd>,
    next_conn: ConnId,
    started: Instant,
    bounce: Vec<u8>,
    packet: Vec<u8>,
    /// Out of descriptors, accepting waits (instead of the kernel dying).
    gate: AcceptGate,
}

impl Server {
    fn now(&self) -> Millis {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn poll_once(&mut self, listener: &Listener) -> io::Result<()> {
        let now = self.now();
        let timeout = match self.kernel.next_deadline() {
            Some(deadline) => Duration::from_millis(deadline.saturating_sub(now)).min(STOP_CHECK),
            None => STOP_CHECK,
        };
        let mut ids = Vec::with_capacity(self.conns.len());
        let mut fds = Vec::with_capacity(self.conns.len() + 1);
        fds.push(self.gate.pollfd(listener));
        for (&id, peer) in &self.conns {
            let mut events = libc::POLLIN;
            if !peer.backlog.is_empty() {
                events |= libc::POLLOUT;
            }
            ids.push(id);
            fds.push(libc::pollfd { fd: peer.conn.as_fd().as_raw_fd(), events, revents: 0 });
        }
        transport::poll(&mut fds, Some(self.gate.timeout(timeout)))?;

        if fds[0].revents != 0 {
            self.accept_all(listener)?;
        }
        for (pfd, &id) in fds[1..].iter().zip(&ids) {
            if pfd.revents & libc::POLLOUT != 0 {
                self.flush(id);
            }
            if pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.read_from(id);
            }
        }
        let out = self.kernel.tick(self.now());
        self.perform(out);
        Ok(())
    }

    fn accept_all(&mut self, listener: &Listener) -> io::Result<()> {
        loop {
            let accepted = match listener.accept() {
                Ok(a) => a,
                Err(e) => return self.gate.on_error(e),
            };
            match accepted {
                Accept::Ready(conn) => {
                    let id = self.next_conn;
                    self.next_conn += 1;
                    let pid = u32::try_from(conn.peer().pid).unwrap_or(0);
                    // Over the process limit: closing the socket is the answer.
                    if self.kernel.attach(id, pid).is_ok() {
                        self.conns.insert(id, Peer { conn, backlog: VecDeque::new() });
                    }
                }
                // Another uid was closed by the transport already.
                Accept::Refused(_) => {}
                Accept::Empty => return Ok(()),
            }
        }
    }

    /// Reads one packet from a connection `poll` found readable. One per
    /// round, as the Mach kernel does: a process makes one call at a time,
    /// so a second read almost always finds nothing (3.5 empty reads per
    /// RPC call were measured when it read on until then), and a process
    /// that floods the kernel still gets only its turn.
    fn read_from(&mut self, id: ConnId) {
        let Some(peer) = self.conns.get(&id) else { return };
        let mut packet = std::mem::take(&mut self.packet);
        let received = peer.conn.try_recv(&mut packet);
        let out = match received {
            Ok(fds) if fds.is_empty() => match decode_request(&packet) {
                Ok((call_id, request)) => self.kernel.handle(id, call_id, request, self.now()),
                Err(e) => self.kernel.reject_malformed(id, peek_call_id(&packet), &e.to_string()),
            },
            // Processes never send descriptors: the kernel makes every
            // section itself. Dropping `fds` closes them.
            Ok(_fds) => self.kernel.reject_malformed(id, peek_call_id(&packet), "unexpected file descriptors"),
            Err(TransportError::TooLarge) => {
                self.kernel.reject_malformed(id, 0, &ProtoError::PacketTooLong(transport::MAX_PACKET).to_string())
            }
            Err(TransportError::TooManyFds) => self.kernel.reject_malformed(id, 0, "too many file descriptors"),
            Err(TransportError::WouldBlock) => {
                self.packet = packet;
                return;
            }
            Err(TransportError::Closed | TransportError::Io(_)) => {
                self.packet = packet;
                self.drop_conn(id);
                return;
            }
        };
        self.packet = packet;
        self.perform(out);
    }

    fn drop_conn(&mut self, id: ConnId) {
        self.windows.remove(&id);
        if self.conns.remove(&id).is_some() {
            let out = self.kernel.disconnect(id, self.now());
            self.perform(out);
        }
    }

    /// Carries out the kernel's actions; some produce more (a finished copy
    /// completes a call, a failed memfd revokes a section).
    fn perform(&mut self, out: Vec<Outgoing>) {
        let mut work: VecDeque<Outgoing> = out.into();
        while let Some(action) = work.pop_front() {
            match action {
                Outgoing::CreateSection { section, size } => match create_section_memory(section, size) {
                    Ok(fd) => {
                        self.sections.insert(section, fd);
                    }
                    Err(_) => work.extend(self.kernel.revoke_section(section)),
                },
                Outgoing::ReleaseSection { section } => {
                    self.sections.remove(&section);
                }
                Outgoing::Respond { conn, response, attach } => self.send(conn, response, &attach),
                Outgoing::CreateWindow { conn, size } => match create_window(conn, size) {
                    Ok(window) => {
                        self.windows.insert(conn, window);
                    }
                    // `send` answers STATUS_NO_MEMORY for a window it lacks.
                    Err(_) => {
                        self.windows.remove(&conn);
                    }
                },
                Outgoing::WindowMapped { conn, base } => {
                    if let Some(w) = self.windows.get_mut(&conn) {
                        w.base = base;
                    }
                }
                Outgoing::DirectCopy(copy) => {
                    let window = self.windows.get(&copy.conn).and_then(|w| w.local(copy.server_address, copy.length));
                    let result = match window {
                        Some(local) => window_copy(&copy, local),
                        None => direct_copy(&copy, &mut self.bounce),
                    };
                    if let (Some(_), Ok(bytes)) = (window, result) {
                        self.kernel.count_window_copy(copy.conn, bytes);
                    }
                    work.extend(self.kernel.complete_direct_copy(copy.conn, result, self.now()));
                }
            }
        }
    }

    fn send(&mut self, id: ConnId, mut response: Response, attach: &[SectionId]) {
        // A section whose memory could not be made is left out of the grants.
        let mut fds = Vec::with_capacity(attach.len());
        let mut grants = Vec::with_capacity(attach.len());
        for (grant, section) in response.sections.iter().zip(attach) {
            if let Some(fd) = self.sections.get(section).and_then(|fd| fd.try_clone().ok()) {
                fds.push(fd);
                grants.push(*grant);
            }
        }
        response.sections = grants;
        if let ResponseBody::Window { .. } = response.body {
            match self.windows.get(&id).and_then(|w| w.fd.try_clone().ok()) {
                Some(fd) => fds.push(fd),
                None => {
                    response.status = NtStatus::STATUS_NO_MEMORY;
                    response.body = ResponseBody::None;
                }
            }
        }
        let packet = encode_response(&response);
        let Some(peer) = self.conns.get_mut(&id) else { return };
        peer.backlog.push_back((packet, fds));
        if peer.backlog.len() > MAX_QUEUED_RESPONSES {
            self.drop_conn(id);
            return;
        }
        self.flush(id);
    }

    fn flush(&mut self, id: ConnId) {
        let Some(peer) = self.conns.get_mut(&id) else { return };
        while let Some((packet, fds)) = peer.backlog.front() {
            let borrowed: Vec<_> = fds.iter().map(|fd| fd.as_fd()).collect();
            match peer.conn.try_send(packet, &borrowed) {
                Ok(()) => {
                    peer.backlog.pop_front();
                }
                Err(TransportError::WouldBlock) => return,
                Err(_) => {
                    self.drop_conn(id);
                    return;
                }
            }
        }
    }
}

fn create_section_memory(section: SectionId, size: u64) -> io::Result<OwnedFd> {
    sealed_memfd(&format!("ipcscope-alpc-section-{section}"), size)
}

/// A direct window for `conn`: the memfd, and our own mapping of it.
fn create_window(conn: ConnId, size: u64) -> io::Result<Window> {
    let fd = sealed_memfd(&format!("ipcscope-alpc-window-{conn}"), size)?;
    let len = usize::try_from(size).map_err(io::Error::other)?;
    // Sealed against shrinking: no one can make this mapping fault.
    let map = memmap2::MmapOptions::new().len(len).map_raw(&fd)?;
    Ok(Window { fd, map, base: 0 })
}

/// A memfd of `size` bytes, sealed so that no process can shrink it under
/// another's mapping (which would turn the peer's next access into SIGBUS).
fn sealed_memfd(name: &str, size: u64) -> io::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let name = CString::new(name).map_err(io::Error::other)?;
    let fd = memfd_create(name.as_c_str(), MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let len = libc::off_t::try_from(size).map_err(io::Error::other)?;
    nix::unistd::ftruncate(&fd, len)?;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL))?;
    Ok(fd)
}

/// Copies between the client's declared region and the server's direct
/// window in one step: `local` is our mapping of the window's part that
/// the server named, `copy.length` bytes long (checked by `Window::local`).
fn window_copy(copy: &DirectCopy, local: *mut u8) -> Result<u64, ()> {
    let pid = libc::pid_t::try_from(copy.client_pid).map_err(|_| ())?;
    let len = usize::try_from(copy.length).map_err(|_| ())?;
    let mut done = 0usize;
    while done < len {
        let here = libc::iovec {
            // SAFETY: `done < len`, and `local..+len` is inside our mapping.
            iov_base: unsafe { local.add(done) }.cast(),
            iov_len: len - done,
        };
        let remote = usize::try_from(copy.client_address).ok().and_then(|a| a.checked_add(done)).ok_or(())?;
        let there = libc::iovec { iov_base: remote as *mut libc::c_void, iov_len: len - done };
        // SAFETY: one local iovec inside our own mapping (raw pointers: the
        // server may touch the same memory, so no Rust reference is made);
        // the remote one is checked by the Linux kernel (EFAULT).
        let n = unsafe {
            match copy.direction {
                CopyDirection::ReadFromClient => libc::process_vm_readv(pid, &here, 1, &there, 1, 0),
                CopyDirection::WriteToClient => libc::process_vm_writev(pid, &here, 1, &there, 1, 0),
            }
        };
        if n <= 0 {
            return Err(());
        }
        done += n as usize;
    }
    Ok(done as u64)
}

/// Copies between the client's declared region and the server's buffer,
/// through the kernel's bounce buffer. Any fault — an unmapped address, a
/// process that is gone, a partial transfer — is `Err(())`, which the
/// kernel reports as `STATUS_ACCESS_VIOLATION`.
fn direct_copy(copy: &DirectCopy, bounce: &mut [u8]) -> Result<u64, ()> {
    let (from_pid, from_addr, to_pid, to_addr) = match copy.direction {
        CopyDirection::ReadFromClient => (copy.client_pid, copy.client_address, copy.server_pid, copy.server_address),
        CopyDirection::WriteToClient => (copy.server_pid, copy.server_address, copy.client_pid, copy.client_address),
    };
    let from_pid = Pid::from_raw(libc::pid_t::try_from(from_pid).map_err(|_| ())?);
    let to_pid = Pid::from_raw(libc::pid_t::try_from(to_pid).map_err(|_| ())?);
    let mut done: u64 = 0;
    while done < copy.length {
        let chunk = usize::try_from((copy.length - done).min(bounce.len() as u64)).map_err(|_| ())?;
        let local = &mut bounce[..chunk];
        // The remote address names memory in another process; the kernel
        // checks it (EFAULT on a bad address) without touching ours.
        let from =
            RemoteIoVec { base: usize::try_from(from_addr.checked_add(done).ok_or(())?).map_err(|_| ())?, len: chunk };
        if process_vm_readv(from_pid, &mut [io::IoSliceMut::new(local)], &[from]) != Ok(chunk) {
            return Err(());
        }
        let to =
            RemoteIoVec { base: usize::try_from(to_addr.checked_add(done).ok_or(())?).map_err(|_| ())?, len: chunk };
        if process_vm_writev(to_pid, &[io::IoSlice::new(local)], &[to]) != Ok(chunk) {
            return Err(());
        }
        done += chunk as u64;
    }
    Ok(done)
}
