//! The library a task process uses to talk to the emulated Mach kernel,
//! with methods named after the real calls, and the observer that reads
//! the kernel's state.
//!
//! One [`MachTask`] is one connection, i.e. one thread of the task:
//! [`MachTask::thread`] opens another connection joined to the same task
//! (threads of a task share its name space). A connection carries one call
//! at a time, so calls on one `MachTask` from several threads take turns.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use memmap2::{Mmap, MmapMut, MmapOptions};

use super::proto::{
    decode_reply, encode_request, message_size, Descriptor, MachMsgRequest, MsgHeader, ReceivedDescriptor, Reply,
    Request, NO_FD,
};
use super::state::KernelState;
use super::types::*;
use super::vm::{Mappings, Pool, PoolRegion, Received};
use crate::mechanisms::ekernel::transport::{Conn, TransportError, MAX_PACKET};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachError {
    /// The kernel answered with this code (`MACH_SEND_TIMED_OUT`, …).
    #[error("{0}")]
    Kern(KernReturn),
    /// The connection to the kernel failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The kernel refused the request's form, or answered nonsense.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl MachError {
    /// The return code, if the kernel gave one.
    pub fn kr(&self) -> Option<u32> {
        match self {
            MachError::Kern(k) => Some(k.0),
            _ => None,
        }
    }
}

impl From<TransportError> for MachError {
    fn from(e: TransportError) -> Self {
        MachError::Transport(e.to_string())
    }
}

fn kern<T>(kr: u32, value: T) -> Result<T, MachError> {
    if kr == KERN_SUCCESS {
        Ok(value)
    } else {
        Err(MachError::Kern(KernReturn(kr)))
    }
}

fn unexpected(reply: Reply) -> MachError {
    match reply {
        Reply::Status { kr } | Reply::Name { kr, .. } | Reply::Attributes { kr, .. } | Reply::Msg { kr, .. }
            if kr != KERN_SUCCESS =>
        {
            MachError::Kern(KernReturn(kr))
        }
        Reply::ProtocolError { message } => MachError::Protocol(message),
        other => MachError::Protocol(format!("unexpected reply {other:?}")),
    }
}

/// One connection and its receive buffer; a call holds the lock from
/// request to reply.
#[derive(Debug)]
struct Channel {
    conn: Conn,
    buf: Mutex<Vec<u8>>,
}

impl Channel {
    fn connect(path: &Path) -> Result<Channel, MachError> {
        let conn = Conn::connect(path).map_err(|e| MachError::Transport(e.to_string()))?;
        Ok(Channel { conn, buf: Mutex::new(Vec::new()) })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic elsewhere while holding the buffer leaves it usable.
        self.buf.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn call(&self, request: &Request, fds: &[BorrowedFd<'_>]) -> Result<(Reply, Vec<OwnedFd>), MachError> {
        let mut buf = self.lock();
        let fds = self.conn.call(&encode_request(request), fds, &mut buf)?;
        let reply = decode_reply(&buf).map_err(|e| MachError::Protocol(e.to_string()))?;
        if let Reply::ProtocolError { message } = reply {
            return Err(MachError::Protocol(message));
        }
        Ok((reply, fds))
    }
}

/// Pools per thread: 8 × 64 MiB of address space at most.
pub const MAX_POOLS: usize = 8;

/// A task of the emulated kernel, seen from one of its threads.
#[derive(Debug)]
pub struct MachTask {
    channel: Channel,
    path: PathBuf,
    task: u32,
    token: u64,
    task_self: MachPortName,
    bootstrap: MachPortName,
    /// This thread's OOL pool (created at the first `vm_allocate`) and the
    /// pools of senders it has mapped.
    pools: Mutex<Vec<Arc<Pool>>>,
    /// Our pools whose descriptor the kernel process has had on this
    /// connection (a send that succeeded carried it): named, not sent, since.
    announced: Mutex<Vec<u32>>,
    mappings: Mappings,
}

/// A message to send. `bits` holds the dispositions,
/// `mach_msgh_bits(remote, local)`; the client adds
/// `MACH_MSGH_BITS_COMPLEX` and computes `msgh_size`.
#[derive(Debug, Default)]
pub struct OutMsg {
    pub bits: u32,
    pub remote_port: MachPortName,
    pub local_port: MachPortName,
    pub id: i32,
    pub body: Vec<u8>,
    pub descriptors: Vec<OutDescriptor>,
}

#[derive(Debug)]
pub enum OutDescriptor {
    Port {
        name: MachPortName,
        disposition: u32,
    },
    /// Out-of-line memory (`MACH_MSG_VIRTUAL_COPY`).
    Ool(OolMemory),
}

/// Out-of-line memory ready to send: a sealed `memfd` (an immutable
/// snapshot, as Mach's copy-on-write OOL memory is to a receiver), or a
/// region of the task's pool ([`MachTask::vm_allocate`]), which moves to
/// the receiver without a copy when sent with `deallocate`.
#[derive(Debug)]
pub struct OolMemory {
    inner: OolInner,
    deallocate: bool,
}

#[derive(Debug)]
enum OolInner {
    Sealed { fd: OwnedFd, len: usize },
    Pool(PoolRegion),
}

impl OolMemory {
    /// Copies `data` into a new memfd (the only copy on the way).
    pub fn from_bytes(data: &[u8]) -> io::Result<OolMemory> {
        let fd = new_memfd()?;
        let mut file = File::from(fd);
        file.write_all(data)?;
        let fd = OwnedFd::from(file);
        seal(fd.as_fd())?;
        Ok(OolMemory { inner: OolInner::Sealed { fd, len: data.len() }, deallocate: false })
    }

    /// Builds the memory in place: `fill` writes straight into the memfd's
    /// pages, so nothing is copied at all.
    pub fn build(len: usize, fill: impl FnOnce(&mut [u8])) -> io::Result<OolMemory> {
        let fd = new_memfd()?;
        let file = File::from(fd);
        file.set_len(len as u64)?;
        if len > 0 {
            // SAFETY: the memfd is ours alone until sealed; nobody else can
            // resize it while mapped.
            let mut map: MmapMut = unsafe { MmapOptions::new().len(len).map_mut(&file)? };
            fill(&mut map);
            // The writable mapping must be gone before F_SEAL_WRITE.
            drop(map);
        } else {
            fill(&mut []);
        }
        let fd = OwnedFd::from(file);
        seal(fd.as_fd())?;
        Ok(OolMemory { inner: OolInner::Sealed { fd, len }, deallocate: false })
    }

    pub fn len(&self) -> usize {
        match &self.inner {
            OolInner::Sealed { len, .. } => *len,
            OolInner::Pool(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pages to write the message into, in place: `Some` for pool
    /// memory (sealed memory is immutable).
    pub fn as_mut_slice(&mut self) -> Option<&mut [u8]> {
        match &mut self.inner {
            OolInner::Sealed { .. } => None,
            OolInner::Pool(r) => Some(r.as_mut_slice()),
        }
    }

    /// Send it with `deallocate`: the region leaves this task and the
    /// receiver maps it (a move, 0 bytes copied). Without it, the kernel
    /// copies pool memory into a snapshot (counted as copied).
    pub fn deallocate(mut self, on: bool) -> OolMemory {
        self.deallocate = on;
        self
    }

    /// True for a region of the task's pool (false: a sealed memfd).
    pub fn is_pool(&self) -> bool {
        matches!(self.inner, OolInner::Pool(_))
    }
}

fn new_memfd() -> io::Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    Ok(memfd_create(c"mach-ool", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?)
}

fn seal(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    let seals = SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    fcntl(fd, FcntlArg::F_ADD_SEALS(seals))?;
    Ok(())
}

/// The arguments of `mach_msg`. Timeouts are in ms and apply only with
/// `MACH_SEND_TIMEOUT` / `MACH_RCV_TIMEOUT` in `options`.
#[derive(Debug)]
pub struct MachMsgArgs {
    pub options: u32,
    pub msg: Option<OutMsg>,
    pub rcv_name: MachPortName,
    /// The receive buffer size; larger messages → `MACH_RCV_TOO_LARGE`.
    pub rcv_size: u32,
    pub send_timeout: u32,
    pub rcv_timeout: u32,
    /// Receive right for `MACH_NOTIFY_MSG_ACCEPTED` (with `MACH_SEND_NOTIFY`).
    pub notify: MachPortName,
}

impl Default for MachMsgArgs {
    fn default() -> Self {
        MachMsgArgs {
            options: 0,
            msg: None,
            rcv_name: MACH_PORT_NULL,
            rcv_size: MAX_PACKET as u32,
            send_timeout: 0,
            rcv_timeout: 0,
            notify: MACH_PORT_NULL,
        }
    }
}

/// A received message: header swapped as in XNU (`remote_port` is the
/// reply right, `local_port` the name of the port it arrived on).
#[derive(Debug)]
pub struct ReceivedMsg {
    pub header: MsgHeader,
    pub seqno: u32,
    pub audit_token: [u32; 8],
    pub body: Vec<u8>,
    pub descriptors: Vec<InDescriptor>,
}

impl ReceivedMsg {
    /// The sender's pid from the audit trailer: the textbook's "source".
    pub fn sender_pid(&self) -> i32 {
        self.audit_token[5] as i32
    }
}

#[derive(Debug)]
pub enum InDescriptor {
    Port { name: MachPortName, type_name: u32 },
    Ool(OolRegion),
}

/// Out-of-line memory received: mapped, not copied — a sealed snapshot,
/// or a region of the sender's pool read in place (given back to the
/// sender when dropped, Mach's `vm_deallocate`).
#[derive(Debug)]
pub struct OolRegion {
    map: Option<Mmap>,
    pooled: Option<Received>,
    pub copy: u32,
    pub deallocate: bool,
}

impl OolRegion {
    pub fn bytes(&self) -> &[u8] {
        match &self.pooled {
            Some(r) => r.bytes(),
            None => self.map.as_deref().unwrap_or(&[]),
        }
    }

    /// True if it is a region of the sender's pool (moved, not a snapshot).
    pub fn is_moved(&self) -> bool {
        self.pooled.is_some()
    }
}

fn map_ool(fd: OwnedFd, size: u32) -> Result<OolRegion, MachError> {
    let file = File::from(fd);
    let actual = file.metadata().map_err(|e| MachError::Protocol(e.to_string()))?.len();
    if actual < u64::from(size) {
        return Err(MachError::Protocol("OOL memory shorter than its descriptor".into()));
    }
    let map = if size == 0 {
        None
    } else {
        // SAFETY: the kernel only passes memfds sealed against writing and
        // shrinking, so the mapping cannot change or fault under us.
        Some(
            unsafe { MmapOptions::new().len(size as usize).map(&file) }
                .map_err(|e| MachError::Protocol(e.to_string()))?,
        )
    };
    Ok(OolRegion { map, pooled: None, copy: MACH_MSG_VIRTUAL_COPY, deallocate: false })
}

impl MachTask {
    /// Connects to the kernel at `path` and becomes a new task named `name`
    /// (its first thread).
    pub fn connect(path: &Path, name: &str) -> Result<MachTask, MachError> {
        let channel = Channel::connect(path)?;
        let (reply, _) = channel.call(&Request::RegisterTask { name: name.to_string() }, &[])?;
        match reply {
            Reply::Registered { task, token, task_self, bootstrap } => Ok(MachTask {
                channel,
                path: path.to_path_buf(),
                task,
                token,
                task_self,
                bootstrap,
                pools: Mutex::new(Vec::new()),
                announced: Mutex::new(Vec::new()),
                mappings: Mappings::default(),
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Another thread of this task: a new connection sharing the name space.
    pub fn thread(&self) -> Result<MachTask, MachError> {
        let channel = Channel::connect(&self.path)?;
        let (reply, _) = channel.call(&Request::JoinTask { task: self.task, token: self.token }, &[])?;
        match reply {
            Reply::Registered { task, token, task_self, bootstrap } => Ok(MachTask {
                channel,
                path: self.path.clone(),
                task,
                token,
                task_self,
                bootstrap,
                pools: Mutex::new(Vec::new()),
                announced: Mutex::new(Vec::new()),
                mappings: Mappings::default(),
            }),
            other => Err(unexpected(other)),
        }
    }

    /// The kernel's id of this task.
    pub fn task_id(&self) -> u32 {
        self.task
    }

    /// `mach_task_self()`.
    pub fn mach_task_self(&self) -> MachPortName {
        self.task_self
    }

    /// `bootstrap_port`: this task's send right to the bootstrap server.
    pub fn bootstrap_port(&self) -> MachPortName {
        self.bootstrap
    }

    fn name_call(&self, request: Request) -> Result<MachPortName, MachError> {
        match self.channel.call(&request, &[])?.0 {
            Reply::Name { kr, name } => kern(kr, name),
            other => Err(unexpected(other)),
        }
    }

    fn status_call(&self, request: Request) -> Result<(), MachError> {
        match self.channel.call(&request, &[])?.0 {
            Reply::Status { kr } => kern(kr, ()),
            other => Err(unexpected(other)),
        }
    }

    pub fn mach_port_allocate(&self, right: u32) -> Result<MachPortName, MachError> {
        self.name_call(Request::PortAllocate { right })
    }

    pub fn mach_port_insert_right(
        &self,
        name: MachPortName,
        poly: MachPortName,
        disposition: u32,
    ) -> Result<(), MachError> {
        self.status_call(Request::PortInsertRight { name, poly, disposition })
    }

    pub fn mach_port_deallocate(&self, name: MachPortName) -> Result<(), MachError> {
        self.status_call(Request::PortDeallocate { name })
    }

    pub fn mach_port_mod_refs(&self, name: MachPortName, right: u32, delta: i32) -> Result<(), MachError> {
        self.status_call(Request::PortModRefs { name, right, delta })
    }

    pub fn mach_port_set_attributes(&self, name: MachPortName, flavor: u32, info: &[i32]) -> Result<(), MachError> {
        self.status_call(Request::PortSetAttributes { name, flavor, info: info.to_vec() })
    }

    pub fn mach_port_get_attributes(&self, name: MachPortName, flavor: u32, count: u32) -> Result<Vec<i32>, MachError> {
        match self.channel.call(&Request::PortGetAttributes { name, flavor, count }, &[])?.0 {
            Reply::Attributes { kr, info } => kern(kr, info),
            other => Err(unexpected(other)),
        }
    }

    /// Registers a notification request; returns the previous send-once
    /// right's name (or `MACH_PORT_NULL`).
    pub fn mach_port_request_notification(
        &self,
        name: MachPortName,
        msgid: i32,
        sync: u32,
        notify: MachPortName,
        notify_disposition: u32,
    ) -> Result<MachPortName, MachError> {
        self.name_call(Request::PortRequestNotification { name, msgid, sync, notify, notify_disposition })
    }

    /// Emulation only: switch the kernel's `MACH_SEND_NOTIFY` rules (the
    /// index of a `mach.personality` choice).
    pub fn set_personality(&self, personality: u32) -> Result<(), MachError> {
        self.status_call(Request::SetPersonality { personality })
    }

    pub fn bootstrap_check_in(&self, bp: MachPortName, service: &str) -> Result<MachPortName, MachError> {
        self.name_call(Request::BootstrapCheckIn { bp, service: service.to_string() })
    }

    pub fn bootstrap_register(&self, bp: MachPortName, service: &str, port: MachPortName) -> Result<(), MachError> {
        self.status_call(Request::BootstrapRegister { bp, service: service.to_string(), port })
    }

    pub fn bootstrap_look_up(&self, bp: MachPortName, service: &str) -> Result<MachPortName, MachError> {
        self.name_call(Request::BootstrapLookUp { bp, service: service.to_string() })
    }

    /// `vm_allocate`: `len` bytes of this thread's OOL pools (each mapped
    /// once and reused) to build a message in place. A full pool adds
    /// another, up to [`MAX_POOLS`]; then `KERN_NO_SPACE`-like `Err`.
    pub fn vm_allocate(&self, len: usize) -> io::Result<OolMemory> {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = pools.iter().find_map(|p| p.allocate(len)) {
            return Ok(OolMemory { inner: OolInner::Pool(r), deallocate: false });
        }
        if pools.len() < MAX_POOLS {
            let p = Pool::create()?;
            if let Some(r) = p.allocate(len) {
                pools.push(p);
                return Ok(OolMemory { inner: OolInner::Pool(r), deallocate: false });
            }
        }
        Err(io::Error::new(io::ErrorKind::OutOfMemory, "vm_allocate: no room in the task's OOL pools"))
    }

    /// Pool chunks in use (allocated, or lent and not yet given back).
    pub fn vm_pool_chunks_in_use(&self) -> usize {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.iter().map(|p| p.chunks_in_use()).sum()
    }

    /// `mach_msg`: `Ok(Some(msg))` after a receive, `Ok(None)` after a
    /// send alone, `Err(Kern(code))` for any other code — including
    /// `MACH_SEND_WILL_NOTIFY`, which in C is also `!= MACH_MSG_SUCCESS`.
    pub fn mach_msg(&self, args: MachMsgArgs) -> Result<Option<ReceivedMsg>, MachError> {
        let (kr, msg) = self.mach_msg_raw(args)?;
        if kr.is_success() {
            Ok(msg)
        } else {
            Err(MachError::Kern(kr))
        }
    }

    /// `mach_msg` returning the code and whatever message came back, also
    /// on failure (a failed send's pseudo-received header names the rights
    /// returned to the sender; `MACH_RCV_TOO_LARGE` reports the size).
    pub fn mach_msg_raw(&self, args: MachMsgArgs) -> Result<(KernReturn, Option<ReceivedMsg>), MachError> {
        let mut request = MachMsgRequest {
            options: args.options,
            send_timeout: args.send_timeout,
            rcv_timeout: args.rcv_timeout,
            rcv_name: args.rcv_name,
            rcv_size: args.rcv_size,
            notify: args.notify,
            ..MachMsgRequest::default()
        };
        // The memory each OOL descriptor names, and whether its descriptor
        // travels in the packet (not for a pool the kernel process holds).
        let mut memory: Vec<(OolMemory, bool)> = Vec::new();
        let announced = self.announced.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(msg) = args.msg {
            for d in msg.descriptors {
                request.descriptors.push(match d {
                    OutDescriptor::Port { name, disposition } => Descriptor::Port { name, disposition },
                    OutDescriptor::Ool(mut m) => {
                        let size =
                            u32::try_from(m.len()).map_err(|_| MachError::Kern(KernReturn(MACH_SEND_TOO_LARGE)))?;
                        let fd_index = memory.iter().filter(|(_, travels)| *travels).count() as u32;
                        let deallocate = m.deallocate;
                        let (d, travels) = match &mut m.inner {
                            OolInner::Sealed { .. } => {
                                (Descriptor::Ool { size, copy: MACH_MSG_VIRTUAL_COPY, deallocate, fd_index }, true)
                            }
                            OolInner::Pool(r) => {
                                if deallocate {
                                    r.lend();
                                }
                                let pool = r.pool_id();
                                let known = announced.contains(&pool);
                                let fd_index = if known { NO_FD } else { fd_index };
                                (Descriptor::OolRegion { offset: r.offset(), size, deallocate, fd_index, pool }, !known)
                            }
                        };
                        memory.push((m, travels));
                        d
                    }
                });
            }
            let mut bits = msg.bits;
            if !request.descriptors.is_empty() {
                bits |= MACH_MSGH_BITS_COMPLEX;
            }
            let size = message_size(msg.body.len(), &request.descriptors);
            request.header = MsgHeader {
                bits,
                size: u32::try_from(size).unwrap_or(u32::MAX),
                remote_port: msg.remote_port,
                local_port: msg.local_port,
                voucher_port: MACH_PORT_NULL,
                id: msg.id,
            };
            request.body = msg.body;
        }
        let borrowed: Vec<BorrowedFd<'_>> = memory
            .iter()
            .filter(|(_, travels)| *travels)
            .map(|(m, _)| match &m.inner {
                OolInner::Sealed { fd, .. } => fd.as_fd(),
                OolInner::Pool(r) => r.fd(),
            })
            .collect();
        let call = self.channel.call(&Request::MachMsg(request), &borrowed);
        drop(borrowed);
        let sent = matches!(call, Ok((Reply::Msg { kr, .. }, _)) if kr == 0);
        // A named pool the kernel process did not have (it could not keep
        // the descriptor: out of descriptors) makes the send fail with
        // MACH_SEND_INVALID_MEMORY; the next send carries the descriptor.
        let unnamed = matches!(call, Ok((Reply::Msg { kr, .. }, _)) if kr == MACH_SEND_INVALID_MEMORY);
        let mut newly_known = Vec::new();
        let mut forget = Vec::new();
        for (m, travels) in memory {
            if let OolInner::Pool(mut r) = m.inner {
                // The kernel process keeps a pool whose descriptor came with
                // a message it accepted: from now on the pool is named only.
                if sent && travels {
                    newly_known.push(r.pool_id());
                }
                if unnamed && !travels {
                    forget.push(r.pool_id());
                }
                // A moved region is the receiver's until it gives it back;
                // after a copy or a failed send it is ours again (freed).
                if m.deallocate && sent {
                    r.moved();
                } else if m.deallocate {
                    r.unlend();
                }
            }
        }
        if !newly_known.is_empty() || !forget.is_empty() {
            let mut a = self.announced.lock().unwrap_or_else(|p| p.into_inner());
            a.retain(|id| !forget.contains(id));
            for id in newly_known {
                if !a.contains(&id) {
                    a.push(id);
                }
            }
        }
        let (reply, fds) = call?;
        let Reply::Msg { kr, msg } = reply else {
            return Err(unexpected(reply));
        };
        let Some(msg) = msg else {
            return Ok((KernReturn(kr), None));
        };
        let mut fds = fds.into_iter();
        let mut descriptors = Vec::with_capacity(msg.descriptors.len());
        for d in msg.descriptors {
            descriptors.push(match d {
                ReceivedDescriptor::Port { name, type_name } => InDescriptor::Port { name, type_name },
                ReceivedDescriptor::OolRegion { offset, size, copy, deallocate } => match fds.next() {
                    None => InDescriptor::Ool(OolRegion { map: None, pooled: None, copy, deallocate }),
                    Some(fd) => {
                        let r = self
                            .mappings
                            .region(fd, offset, size, deallocate)
                            .map_err(|e| MachError::Protocol(e.to_string()))?;
                        InDescriptor::Ool(OolRegion { map: None, pooled: Some(r), copy, deallocate })
                    }
                },
                ReceivedDescriptor::Ool { size, copy, deallocate } => match fds.next() {
                    // A pseudo-received message has no memory attached.
                    None => InDescriptor::Ool(OolRegion { map: None, pooled: None, copy, deallocate }),
                    Some(fd) => {
                        let mut region = map_ool(fd, size)?;
                        region.copy = copy;
                        region.deallocate = deallocate;
                        InDescriptor::Ool(region)
                    }
                },
            });
        }
        let received = ReceivedMsg {
            header: msg.header,
            seqno: msg.seqno,
            audit_token: msg.audit_token,
            body: msg.body,
            descriptors,
        };
        Ok((KernReturn(kr), Some(received)))
    }

    /// Sends `msg` (`MACH_SEND_MSG` plus `extra_options`).
    pub fn send(&self, msg: OutMsg, extra_options: u32, timeout: u32) -> Result<(), MachError> {
        self.mach_msg(MachMsgArgs {
            options: MACH_SEND_MSG | extra_options,
            msg: Some(msg),
            send_timeout: timeout,
            ..MachMsgArgs::default()
        })
        .map(|_| ())
    }

    /// Receives on `name` (`MACH_RCV_MSG` plus `extra_options`).
    pub fn receive(&self, name: MachPortName, extra_options: u32, timeout: u32) -> Result<ReceivedMsg, MachError> {
        self.mach_msg(MachMsgArgs {
            options: MACH_RCV_MSG | extra_options,
            rcv_name: name,
            rcv_timeout: timeout,
            ..MachMsgArgs::default()
        })?
        .ok_or_else(|| MachError::Protocol("receive returned no message".into()))
    }
}

/// A connection that only reads the kernel's state.
#[derive(Debug)]
pub struct Observer {
    channel: Channel,
}

/// The most introspection JSON an observer accepts.
const MAX_STATE_BYTES: usize = 64 * 1024 * 1024;

impl Observer {
    pub fn connect(path: &Path) -> Result<Observer, MachError> {
        Ok(Observer { channel: Channel::connect(path)? })
    }

    /// Bounds every later send and receive on this connection: a kernel
    /// that does not answer cannot hold the caller (the monitor) longer.
    /// After a timed-out call, drop the observer: a late answer would be
    /// taken for the next one.
    pub fn set_timeout(&self, timeout: std::time::Duration) -> io::Result<()> {
        use nix::sys::socket::{setsockopt, sockopt};
        let tv = nix::sys::time::TimeVal::new(
            timeout.as_secs() as libc::time_t,
            timeout.subsec_micros() as libc::suseconds_t,
        );
        setsockopt(&self.channel.conn, sockopt::ReceiveTimeout, &tv)?;
        setsockopt(&self.channel.conn, sockopt::SendTimeout, &tv)?;
        Ok(())
    }

    /// Emulation only: switch the kernel's `MACH_SEND_NOTIFY` rules (the
    /// index of a `mach.personality` choice).
    pub fn set_personality(&self, personality: u32) -> Result<(), MachError> {
        match self.channel.call(&Request::SetPersonality { personality }, &[])?.0 {
            Reply::Status { kr } => kern(kr, ()),
            other => Err(unexpected(other)),
        }
    }

    /// The kernel's whole state now.
    pub fn state(&self) -> Result<KernelState, MachError> {
        let mut buf = self.channel.lock();
        self.channel.conn.send(&encode_request(&Request::State), &[])?;
        let mut json = Vec::new();
        loop {
            self.channel.conn.recv(&mut buf)?;
            match decode_reply(&buf).map_err(|e| MachError::Protocol(e.to_string()))? {
                Reply::StateChunk { last, data } => {
                    if json.len() + data.len() > MAX_STATE_BYTES {
                        return Err(MachError::Protocol("state too large".into()));
                    }
                    json.extend_from_slice(&data);
                    if last {
                        break;
                    }
                }
                other => return Err(unexpected(other)),
            }
        }
        serde_json::from_slice(&json).map_err(|e| MachError::Protocol(e.to_string()))
    }
}
