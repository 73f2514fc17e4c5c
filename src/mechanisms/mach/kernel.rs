//! The emulated Mach IPC kernel as a pure state machine.
//!
//! No I/O and no clock: the server passes each request, the connection it
//! came from and the time in milliseconds; the kernel answers with the
//! packets to send ([`Outgoing`]). A call that must wait (a send to a full
//! queue, a receive from an empty one) produces no reply until a later
//! request, [`Kernel::tick`] or [`Kernel::disconnect`] completes it. Being
//! deterministic, the kernel can be unit-tested, fuzzed and snapshot-tested
//! without processes.
//!
//! Semantics follow XNU (`osfmk/ipc`): per-task name spaces with
//! `index<<8 | generation` names, coalesced send rights with user
//! references, one receive right per port, send-once rights consumed by use,
//! dead names, bounded FIFO queues (qlimit 5 by default, up to 1024) that a
//! send-once destination ignores, dispositions applied at copyin, the
//! received header swapped, an audit trailer. Where the textbook describes
//! something XNU lacks — keeping one message per sending thread past a full
//! queue and notifying when it is accepted — we follow the textbook under
//! GNU Mach's names. Deviations are listed in `mod.rs`.
//!
//! Every queue, name space and table is bounded by [`Limits`]; running into
//! a limit returns `KERN_NO_SPACE`, `KERN_RESOURCE_SHORTAGE` or
//! `MACH_SEND_NO_BUFFER` instead of growing.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use super::proto::{
    message_size, Descriptor, MachMsgRequest, MsgHeader, ReceivedDescriptor, ReceivedMessage, Reply, Request,
    MAX_INLINE_BODY, MAX_SERVICE_NAME, MAX_STATE_CHUNK,
};
use super::state::{
    BlockedCall, BlockedState, Counters, KernelState, LogEntry, NameState, PortState, QueuedMsgState, ReceiverState,
    ServiceState, TaskState, ThreadState, WaitingThreadState, MAX_LISTED_MESSAGES,
};
use super::types::*;
use crate::mechanisms::ekernel::transport::PeerCred;

/// The server's id for a connection; a connection of a task is a thread.
pub type ConnId = u64;
pub type TaskId = u32;
/// Kernel-wide port id, never reused (names, not ids, are what tasks see).
pub type PortId = u64;

/// Hard limits on what tasks can make the kernel allocate.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_tasks: usize,
    pub max_threads_per_task: usize,
    pub max_names_per_task: usize,
    /// Receive rights one task may hold.
    pub max_receive_rights_per_task: usize,
    pub max_ports: usize,
    /// Messages alive in the kernel (queued or held by blocked senders).
    pub max_messages: usize,
    /// Inline bytes of those messages.
    pub max_message_bytes: usize,
    /// OOL memory objects (file descriptors) those messages hold.
    pub max_ool_objects: usize,
    pub max_services: usize,
    pub log_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tasks: 128,
            max_threads_per_task: 64,
            max_names_per_task: 1024,
            max_receive_rights_per_task: 256,
            max_ports: 8192,
            max_messages: 8192,
            max_message_bytes: 64 * 1024 * 1024,
            max_ool_objects: 256,
            max_services: 256,
            log_lines: 256,
        }
    }
}

/// A file descriptor (or a test stand-in) that came with a request, with
/// its usable length as the server measured it: `None` if it is not a
/// sealed memfd and must not be mapped by a receiver.
#[derive(Debug)]
pub struct Attachment<F> {
    pub len: Option<u64>,
    pub handle: F,
}

/// A packet for the server to send, or a connection to close.
#[derive(Debug)]
pub enum Outgoing<F> {
    Reply { conn: ConnId, reply: Reply, fds: Vec<F> },
    Close { conn: ConnId },
}

// ---- internal types --------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Receive,
    Send,
    SendOnce,
}

impl Kind {
    fn type_name(self) -> u32 {
        match self {
            Kind::Receive => MACH_MSG_TYPE_PORT_RECEIVE,
            Kind::Send => MACH_MSG_TYPE_PORT_SEND,
            Kind::SendOnce => MACH_MSG_TYPE_PORT_SEND_ONCE,
        }
    }
}

/// A right outside any name space: in a message, or held by the kernel
/// for a notification request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Right {
    port: PortId,
    kind: Kind,
    /// The name it had in the sender's space, reused if the right comes back.
    origin: MachPortName,
    /// Taken with a `MOVE_*` disposition: a failed send gives it back.
    moved: bool,
}

impl Right {
    fn new(port: PortId, kind: Kind) -> Right {
        Right { port, kind, origin: MACH_PORT_NULL, moved: false }
    }
}

/// One name in a space. Exactly one of: port rights (receive and/or send,
/// coalesced), a send-once right, a dead name.
#[derive(Clone, Debug, Default)]
struct Entry {
    port: Option<PortId>,
    receive: bool,
    send: u32,
    send_once: bool,
    dead: u32,
    /// `MACH_NOTIFY_DEAD_NAME` request: the send-once right to notify.
    dn_request: Option<Right>,
}

impl Entry {
    fn live_port(&self) -> Option<PortId> {
        if self.dead == 0 {
            self.port
        } else {
            None
        }
    }
}

const MAX_NAME_INDEX: u32 = 0x00ff_ffff;
/// XNU hands out the first slots in order (`NUM_SEQ_ENTRIES`), then picks
/// free slots at random (`CONFIG_SEMI_RANDOM_ENTRIES`).
const SEQUENTIAL_INDICES: u32 = 8;
/// Slots added to a space's table when it runs out.
const TABLE_GROWTH: u32 = 64;

/// A task's port name space (`ipc_space`).
#[derive(Clone, Debug)]
struct Space {
    entries: BTreeMap<MachPortName, Entry>,
    /// Last generation handed out per kernel-chosen index.
    gens: BTreeMap<u32, u8>,
    /// Free kernel-chosen indices below `table`.
    free: Vec<u32>,
    /// Indices below this have been part of the table.
    table: u32,
    /// Deterministic per task, so tests and replays see the same names.
    rng: u64,
}

impl Space {
    fn new(seed: u64) -> Space {
        // Index 0 is reserved: names start at 0x103 like XNU's.
        Space { entries: BTreeMap::new(), gens: BTreeMap::new(), free: Vec::new(), table: 1, rng: seed | 1 }
    }

    fn index_in_use(&self, index: u32) -> bool {
        let lo = index << 8;
        self.entries.range(lo..=lo | 0xff).next().is_some()
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: cheap and good enough to scatter names.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A fresh kernel-chosen name: `index << 8 | gen`, the generation
    /// stepping by 4 from 0x03 on each reuse of an index, as XNU does.
    fn alloc_name(&mut self, max: usize) -> Option<MachPortName> {
        if self.entries.len() >= max {
            return None;
        }
        loop {
            let index = if self.table <= SEQUENTIAL_INDICES {
                self.table += 1;
                self.table - 1
            } else {
                if self.free.is_empty() {
                    if self.table > MAX_NAME_INDEX - TABLE_GROWTH {
                        return None;
                    }
                    self.free.extend(self.table..self.table + TABLE_GROWTH);
                    self.table += TABLE_GROWTH;
                }
                let pick = (self.next_random() % self.free.len() as u64) as usize;
                self.free.swap_remove(pick)
            };
            if self.index_in_use(index) {
                // Taken by a caller-chosen name; it returns to the free
                // list when that name goes.
                continue;
            }
            let gen = self.gens.get(&index).copied().unwrap_or(0xff).wrapping_add(4);
            self.gens.insert(index, gen);
            return Some(index << 8 | gen as u32);
        }
    }

    /// Whether a caller-chosen name can be created.
    fn can_claim(&self, name: MachPortName, max: usize) -> Result<(), u32> {
        if !mach_port_valid(name) {
            return Err(KERN_INVALID_VALUE);
        }
        if self.entries.contains_key(&name) || self.index_in_use(name >> 8) {
            return Err(KERN_NAME_EXISTS);
        }
        if self.entries.len() >= max {
            return Err(KERN_NO_SPACE);
        }
        Ok(())
    }

    fn remove(&mut self, name: MachPortName) -> Option<Entry> {
        let entry = self.entries.remove(&name)?;
        let index = name >> 8;
        if index < self.table && !self.index_in_use(index) && !self.free.contains(&index) {
            self.free.push(index);
        }
        Some(entry)
    }

    /// The name under which this space holds a receive or send right for
    /// `port` (send rights coalesce with each other and with the receive
    /// right under one name).
    fn name_of(&self, port: PortId) -> Option<MachPortName> {
        self.entries
            .iter()
            .find(|(_, e)| e.dead == 0 && e.port == Some(port) && (e.receive || e.send > 0))
            .map(|(n, _)| *n)
    }

    fn receive_rights(&self) -> usize {
        self.entries.values().filter(|e| e.receive).count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyinError {
    InvalidName,
    InvalidRight,
    DeadName,
}

/// Side effects of copyin that touch ports, applied only when the
/// (tentative) copyin is committed.
#[derive(Debug)]
enum Effect {
    MoveReceive(PortId),
    MakeSend(PortId),
    /// A name with a dead-name request went away while its port lives:
    /// the request's send-once right carries `MACH_NOTIFY_PORT_DELETED`.
    RequestDropped {
        name: MachPortName,
        request: Right,
    },
}

/// `ipc_right_copyin`: takes a right out of `space` by disposition.
fn copyin(
    space: &mut Space,
    name: MachPortName,
    disposition: u32,
    effects: &mut Vec<Effect>,
) -> Result<Right, CopyinError> {
    let entry = space.entries.get_mut(&name).ok_or(CopyinError::InvalidName)?;
    if entry.dead > 0 {
        return Err(match disposition {
            MACH_MSG_TYPE_MOVE_SEND | MACH_MSG_TYPE_COPY_SEND | MACH_MSG_TYPE_MOVE_SEND_ONCE => CopyinError::DeadName,
            _ => CopyinError::InvalidRight,
        });
    }
    let port = entry.port.ok_or(CopyinError::InvalidRight)?;
    let mut remove = false;
    let right = match disposition {
        MACH_MSG_TYPE_MOVE_RECEIVE if entry.receive => {
            entry.receive = false;
            remove = entry.send == 0;
            effects.push(Effect::MoveReceive(port));
            Right { port, kind: Kind::Receive, origin: name, moved: true }
        }
        MACH_MSG_TYPE_MOVE_SEND if entry.send > 0 => {
            // A saturated count stays saturated (XNU never lets it wrap).
            if entry.send < MACH_PORT_UREFS_MAX {
                entry.send -= 1;
            }
            remove = entry.send == 0 && !entry.receive;
            Right { port, kind: Kind::Send, origin: name, moved: true }
        }
        MACH_MSG_TYPE_MOVE_SEND_ONCE if entry.send_once => {
            remove = true;
            Right { port, kind: Kind::SendOnce, origin: name, moved: true }
        }
        MACH_MSG_TYPE_COPY_SEND if entry.send > 0 => Right::new(port, Kind::Send),
        MACH_MSG_TYPE_MAKE_SEND if entry.receive => {
            effects.push(Effect::MakeSend(port));
            Right::new(port, Kind::Send)
        }
        MACH_MSG_TYPE_MAKE_SEND_ONCE if entry.receive => Right::new(port, Kind::SendOnce),
        _ => return Err(CopyinError::InvalidRight),
    };
    if remove {
        if let Some(entry) = space.remove(name) {
            if let Some(request) = entry.dn_request {
                effects.push(Effect::RequestDropped { name, request });
            }
        }
    }
    Ok(right)
}

/// `ipc_right_copyout` into a space: coalesces receive/send rights with an
/// existing name for the port, else takes `preferred` if free, else a fresh
/// name. `None` when the space is full. The caller records a receive
/// right's new holder.
fn copyout(space: &mut Space, right: Right, preferred: MachPortName, max_names: usize) -> Option<MachPortName> {
    if right.kind != Kind::SendOnce {
        if let Some(name) = space.name_of(right.port) {
            let entry = space.entries.get_mut(&name)?;
            match right.kind {
                Kind::Receive => entry.receive = true,
                _ => entry.send = (entry.send + 1).min(MACH_PORT_UREFS_MAX),
            }
            return Some(name);
        }
    }
    let name = if space.can_claim(preferred, max_names).is_ok() { preferred } else { space.alloc_name(max_names)? };
    let mut entry = Entry { port: Some(right.port), ..Entry::default() };
    match right.kind {
        Kind::Receive => entry.receive = true,
        Kind::Send => entry.send = 1,
        Kind::SendOnce => entry.send_once = true,
    }
    space.entries.insert(name, entry);
    Some(name)
}

#[derive(Debug, Clone, Copy)]
struct SenderInfo {
    task: TaskId,
    pid: i32,
    uid: u32,
    gid: u32,
}

#[derive(Debug)]
enum Item<F> {
    Port { right: Option<Right>, type_name: u32 },
    Ool { size: u32, copy: u32, deallocate: bool, mem: F },
}

/// A kept `MACH_SEND_NOTIFY` request: who to tell when the message is
/// accepted.
#[derive(Debug, Clone, Copy)]
struct MaRequest {
    thread: ConnId,
    notify: Right,
    dest_name: MachPortName,
}

/// A message inside the kernel (`ipc_kmsg`).
#[derive(Debug)]
struct Kmsg<F> {
    id: u64,
    msgh_id: i32,
    size: u32,
    complex: bool,
    /// The destination right, consumed on delivery.
    dest: Right,
    reply: Option<Right>,
    body: Vec<u8>,
    items: Vec<Item<F>>,
    /// `None` for a notification generated by the kernel.
    sender: Option<SenderInfo>,
    enqueued_ms: u64,
    marequest: Option<MaRequest>,
}

impl<F> Kmsg<F> {
    fn ool_objects(&self) -> usize {
        self.items.iter().filter(|i| matches!(i, Item::Ool { .. })).count()
    }
    fn ool_bytes(&self) -> u64 {
        self.items.iter().map(|i| if let Item::Ool { size, .. } = i { *size as u64 } else { 0 }).sum()
    }
    fn rights(&self) -> impl Iterator<Item = &Right> {
        self.reply.iter().chain(self.items.iter().filter_map(|i| match i {
            Item::Port { right: Some(r), .. } => Some(r),
            _ => None,
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Receiver {
    Task { task: TaskId, name: MachPortName },
    InTransit { dest: PortId },
    Bootstrap,
    TaskSelf(TaskId),
}

#[derive(Debug)]
struct Port<F> {
    receiver: Receiver,
    qlimit: u32,
    seqno: u32,
    mscount: u32,
    queue: VecDeque<Kmsg<F>>,
    blocked_senders: VecDeque<ConnId>,
    blocked_receivers: VecDeque<ConnId>,
    /// The queue held more ordinary messages than a newly lowered qlimit.
    over_lowered_limit: bool,
}

impl<F> Port<F> {
    fn new(receiver: Receiver) -> Port<F> {
        Port {
            receiver,
            qlimit: MACH_PORT_QLIMIT_DEFAULT,
            seqno: 0,
            mscount: 0,
            queue: VecDeque::new(),
            blocked_senders: VecDeque::new(),
            blocked_receivers: VecDeque::new(),
            over_lowered_limit: false,
        }
    }
    fn is_full(&self) -> bool {
        self.queue.len() >= self.qlimit as usize
    }
    fn is_kernel_port(&self) -> bool {
        matches!(self.receiver, Receiver::Bootstrap | Receiver::TaskSelf(_))
    }
}

#[derive(Debug, Clone, Copy)]
struct RcvArgs {
    name: MachPortName,
    options: u32,
    timeout: u32,
    size: u32,
}

#[derive(Debug)]
struct BlockedSend<F> {
    port: PortId,
    dest_name: MachPortName,
    kmsg: Kmsg<F>,
    deadline: Option<u64>,
    since: u64,
    options: u32,
    notify: MachPortName,
    call: String,
    rcv: Option<RcvArgs>,
}

#[derive(Debug)]
struct BlockedRecv {
    port: PortId,
    name: MachPortName,
    args: RcvArgs,
    deadline: Option<u64>,
    since: u64,
    call: String,
}

#[derive(Debug)]
enum Pending<F> {
    Idle,
    Send(Box<BlockedSend<F>>),
    Receive(BlockedRecv),
}

#[derive(Debug)]
struct Thread<F> {
    task: TaskId,
    pending: Pending<F>,
    /// The kernel id of this thread's message kept past a full queue.
    cached: Option<u64>,
}

#[derive(Debug)]
struct Task {
    pid: i32,
    uid: u32,
    gid: u32,
    name: String,
    token: u64,
    threads: Vec<ConnId>,
    space: Space,
    self_port: PortId,
    task_self: MachPortName,
    bootstrap: MachPortName,
}

#[derive(Debug, Clone, Copy)]
enum ConnRole {
    Unbound,
    Observer,
    Thread,
}

#[derive(Debug, Clone, Copy)]
struct ConnInfo {
    peer: PeerCred,
    role: ConnRole,
}

#[derive(Debug, Clone)]
struct Service {
    port: PortId,
    task: TaskId,
    pid: i32,
    checked_in: bool,
}

enum SendResult {
    /// The message is in the queue (or was handed to a receiver).
    Done,
    /// The call is over with this code (and maybe a pseudo-received message).
    Failed(u32, Option<ReceivedMessage>),
    Blocked,
}

/// The emulated kernel. `F` is what out-of-line memory is held as: an
/// `OwnedFd` (a sealed memfd) in the server, anything in tests.
pub struct Kernel<F> {
    limits: Limits,
    now: u64,
    seed: u64,
    conns: BTreeMap<ConnId, ConnInfo>,
    threads: BTreeMap<ConnId, Thread<F>>,
    tasks: BTreeMap<TaskId, Task>,
    ports: BTreeMap<PortId, Port<F>>,
    services: BTreeMap<String, Service>,
    bootstrap_port: PortId,
    next_task: TaskId,
    next_port: PortId,
    next_msg: u64,
    /// Messages, inline bytes and OOL objects alive in the kernel.
    alive_msgs: usize,
    alive_bytes: usize,
    alive_ool: usize,
    /// Ports whose receive right was released; destroyed before returning.
    doomed: Vec<PortId>,
    counters: Counters,
    log: VecDeque<LogEntry>,
    log_seq: u64,
    out: Vec<Outgoing<F>>,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn ndr_name_body(name: MachPortName) -> Vec<u8> {
    let mut body = NDR_RECORD.to_vec();
    body.extend_from_slice(&name.to_le_bytes());
    body
}

fn kr_name(kr: u32) -> String {
    return_name(kr)
}

impl<F> Kernel<F> {
    /// A kernel with its bootstrap port. `seed` makes the join tokens
    /// unpredictable to other processes (the server passes random bytes).
    pub fn new(limits: Limits, seed: u64) -> Kernel<F> {
        let mut kernel = Kernel {
            limits,
            now: 0,
            seed,
            conns: BTreeMap::new(),
            threads: BTreeMap::new(),
            tasks: BTreeMap::new(),
            ports: BTreeMap::new(),
            services: BTreeMap::new(),
            bootstrap_port: 0,
            next_task: 1,
            next_port: 1,
            next_msg: 1,
            alive_msgs: 0,
            alive_bytes: 0,
            alive_ool: 0,
            doomed: Vec::new(),
            counters: Counters::default(),
            log: VecDeque::new(),
            log_seq: 0,
            out: Vec::new(),
        };
        kernel.bootstrap_port = kernel.new_port(Receiver::Bootstrap);
        kernel
    }

    // ---- public driving API ------------------------------------------------

    /// A new connection arrived (already checked to be of our uid).
    pub fn connect(&mut self, conn: ConnId, peer: PeerCred) {
        self.conns.insert(conn, ConnInfo { peer, role: ConnRole::Unbound });
    }

    /// One request from `conn` at time `now` (ms).
    pub fn handle(&mut self, conn: ConnId, request: Request, fds: Vec<Attachment<F>>, now: u64) -> Vec<Outgoing<F>> {
        self.now = self.now.max(now);
        let Some(info) = self.conns.get(&conn).copied() else {
            return Vec::new();
        };
        match info.role {
            ConnRole::Thread => {
                let busy = self.threads.get(&conn).is_some_and(|t| !matches!(t.pending, Pending::Idle));
                if busy {
                    // A thread is in one call at a time; a second request
                    // while the first waits is a broken client.
                    self.disconnect_inner(conn);
                    self.out.push(Outgoing::Close { conn });
                } else {
                    self.thread_request(conn, request, fds);
                }
            }
            ConnRole::Unbound | ConnRole::Observer => self.unbound_request(conn, info, request),
        }
        self.reap();
        std::mem::take(&mut self.out)
    }

    /// The connection is gone: a thread leaves its task; the last thread's
    /// departure terminates the task and releases all of its rights.
    pub fn disconnect(&mut self, conn: ConnId, now: u64) -> Vec<Outgoing<F>> {
        self.now = self.now.max(now);
        self.disconnect_inner(conn);
        self.reap();
        std::mem::take(&mut self.out)
    }

    /// Expires every timeout due at `now`.
    pub fn tick(&mut self, now: u64) -> Vec<Outgoing<F>> {
        self.now = self.now.max(now);
        let mut due: Vec<(u64, ConnId)> = self
            .threads
            .iter()
            .filter_map(|(c, t)| Self::deadline_of(t).filter(|d| *d <= self.now).map(|d| (d, *c)))
            .collect();
        due.sort_unstable();
        for (_, conn) in due {
            self.expire(conn);
        }
        self.reap();
        std::mem::take(&mut self.out)
    }

    /// The earliest pending timeout, for the server's `poll`.
    pub fn next_deadline(&self) -> Option<u64> {
        self.threads.values().filter_map(Self::deadline_of).min()
    }

    /// Counters, for tests and the screen.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Objects still allocated besides the bootstrap port: (ports, messages,
    /// tasks, services). All zero once every task has gone.
    pub fn usage(&self) -> (usize, usize, usize, usize) {
        (self.ports.len() - 1, self.alive_msgs, self.tasks.len(), self.services.len())
    }

    // ---- request dispatch --------------------------------------------------

    fn unbound_request(&mut self, conn: ConnId, info: ConnInfo, request: Request) {
        match request {
            Request::RegisterTask { name } if matches!(info.role, ConnRole::Unbound) => {
                self.register_task(conn, info.peer, name)
            }
            Request::JoinTask { task, token } if matches!(info.role, ConnRole::Unbound) => {
                self.join_task(conn, info.peer, task, token)
            }
            Request::State => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.role = ConnRole::Observer;
                }
                self.send_state(conn);
            }
            _ => self.reply(
                conn,
                Reply::ProtocolError { message: "not a task: send RegisterTask or JoinTask first".into() },
            ),
        }
    }

    fn thread_request(&mut self, conn: ConnId, request: Request, fds: Vec<Attachment<F>>) {
        let Some(task) = self.threads.get(&conn).map(|t| t.task) else {
            return;
        };
        match request {
            Request::RegisterTask { .. } | Request::JoinTask { .. } | Request::State => self
                .reply(conn, Reply::ProtocolError { message: "this connection is already a thread of a task".into() }),
            Request::PortAllocate { right } => {
                let (kr, name) = self.port_allocate(task, right);
                self.log(
                    Some(task),
                    format!(
                        "mach_port_allocate(mach_task_self(), {}, &name) = {}{}",
                        right_name(right),
                        kr_name(kr),
                        name_suffix(kr, name)
                    ),
                );
                self.reply(conn, Reply::Name { kr, name });
            }
            Request::PortInsertRight { name, poly, disposition } => {
                let kr = self.port_insert_right(task, name, poly, disposition);
                self.log(
                    Some(task),
                    format!(
                        "mach_port_insert_right(mach_task_self(), {name:#x}, {poly:#x}, {}) = {}",
                        disposition_name(disposition),
                        kr_name(kr)
                    ),
                );
                self.reply(conn, Reply::Status { kr });
            }
            Request::PortDeallocate { name } => {
                let kr = self.port_deallocate(task, name);
                self.log(Some(task), format!("mach_port_deallocate(mach_task_self(), {name:#x}) = {}", kr_name(kr)));
                self.reply(conn, Reply::Status { kr });
            }
            Request::PortModRefs { name, right, delta } => {
                let kr = self.port_mod_refs(task, name, right, delta);
                self.log(
                    Some(task),
                    format!(
                        "mach_port_mod_refs(mach_task_self(), {name:#x}, {}, {delta}) = {}",
                        right_name(right),
                        kr_name(kr)
                    ),
                );
                self.reply(conn, Reply::Status { kr });
            }
            Request::PortSetAttributes { name, flavor, info } => {
                let kr = self.port_set_attributes(task, name, flavor, &info);
                let shown = info.first().map(|v| format!("{{mpl_qlimit={v}}}")).unwrap_or_else(|| "{}".into());
                self.log(
                    Some(task),
                    format!(
                        "mach_port_set_attributes(mach_task_self(), {name:#x}, {}, {shown}) = {}",
                        flavor_name(flavor),
                        kr_name(kr)
                    ),
                );
                self.reply(conn, Reply::Status { kr });
            }
            Request::PortGetAttributes { name, flavor, count } => {
                let (kr, info) = self.port_get_attributes(task, name, flavor, count);
                self.log(
                    Some(task),
                    format!(
                        "mach_port_get_attributes(mach_task_self(), {name:#x}, {}) = {}",
                        flavor_name(flavor),
                        kr_name(kr)
                    ),
                );
                self.reply(conn, Reply::Attributes { kr, info });
            }
            Request::PortRequestNotification { name, msgid, sync, notify, notify_disposition } => {
                let (kr, previous) = self.port_request_notification(task, name, msgid, notify, notify_disposition);
                let what = notification_name(msgid).map(str::to_string).unwrap_or_else(|| msgid.to_string());
                self.log(Some(task), format!("mach_port_request_notification(mach_task_self(), {name:#x}, {what}, {sync}, {notify:#x}, {}, &previous) = {}", disposition_name(notify_disposition), kr_name(kr)));
                self.reply(conn, Reply::Name { kr, name: previous });
            }
            Request::MachMsg(m) => self.mach_msg(conn, task, m, fds),
            Request::BootstrapCheckIn { bp, service } => {
                let (kr, name) = self.bootstrap_check_in(task, bp, &service);
                self.log(
                    Some(task),
                    format!(
                        "bootstrap_check_in({bp:#x}, \"{}\", &port) = {}{}",
                        printable(&service),
                        kr_name(kr),
                        name_suffix(kr, name)
                    ),
                );
                self.reply(conn, Reply::Name { kr, name });
            }
            Request::BootstrapRegister { bp, service, port } => {
                let kr = self.bootstrap_register(task, bp, &service, port);
                self.log(
                    Some(task),
                    format!("bootstrap_register({bp:#x}, \"{}\", {port:#x}) = {}", printable(&service), kr_name(kr)),
                );
                self.reply(conn, Reply::Status { kr });
            }
            Request::BootstrapLookUp { bp, service } => {
                let (kr, name) = self.bootstrap_look_up(task, bp, &service);
                self.log(
                    Some(task),
                    format!(
                        "bootstrap_look_up({bp:#x}, \"{}\", &port) = {}{}",
                        printable(&service),
                        kr_name(kr),
                        name_suffix(kr, name)
                    ),
                );
                self.reply(conn, Reply::Name { kr, name });
            }
        }
    }

    // ---- tasks and threads -------------------------------------------------

    fn register_task(&mut self, conn: ConnId, peer: PeerCred, name: String) {
        if self.tasks.len() >= self.limits.max_tasks || self.ports.len() + 1 > self.limits.max_ports {
            self.reply(conn, Reply::Status { kr: KERN_RESOURCE_SHORTAGE });
            return;
        }
        let id = self.next_task;
        self.next_task = self.next_task.wrapping_add(1).max(1);
        let self_port = self.new_port(Receiver::TaskSelf(id));
        let mut space = Space::new(splitmix64(self.seed ^ u64::from(id)));
        // Every task starts with a send right to itself (mach_task_self())
        // and one to the bootstrap port, inherited in real Mach.
        let max = self.limits.max_names_per_task;
        let task_self = copyout(&mut space, Right::new(self_port, Kind::Send), 0, max).unwrap_or(MACH_PORT_NULL);
        let bootstrap =
            copyout(&mut space, Right::new(self.bootstrap_port, Kind::Send), 0, max).unwrap_or(MACH_PORT_NULL);
        let token = splitmix64(self.seed ^ (u64::from(id) << 32) ^ peer.pid as u64);
        self.tasks.insert(
            id,
            Task {
                pid: peer.pid,
                uid: peer.uid,
                gid: peer.gid,
                name: name.clone(),
                token,
                threads: vec![conn],
                space,
                self_port,
                task_self,
                bootstrap,
            },
        );
        self.threads.insert(conn, Thread { task: id, pending: Pending::Idle, cached: None });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.role = ConnRole::Thread;
        }
        self.log(
            Some(id),
            format!(
                "task_create(\"{}\") = KERN_SUCCESS /* task_self={task_self:#x}, bootstrap={bootstrap:#x} */",
                printable(&name)
            ),
        );
        self.reply(conn, Reply::Registered { task: id, token, task_self, bootstrap });
    }

    fn join_task(&mut self, conn: ConnId, peer: PeerCred, task_id: TaskId, token: u64) {
        let max_threads = self.limits.max_threads_per_task;
        let Some(task) = self.tasks.get_mut(&task_id) else {
            self.reply(conn, Reply::Status { kr: KERN_INVALID_TASK });
            return;
        };
        // Threads of one task live in one process: the token proves the
        // caller was told it, the pid that it is that process.
        if task.token != token || task.pid != peer.pid {
            self.reply(conn, Reply::Status { kr: KERN_INVALID_TASK });
            return;
        }
        if task.threads.len() >= max_threads {
            self.reply(conn, Reply::Status { kr: KERN_RESOURCE_SHORTAGE });
            return;
        }
        task.threads.push(conn);
        let reply = Reply::Registered { task: task_id, token, task_self: task.task_self, bootstrap: task.bootstrap };
        self.threads.insert(conn, Thread { task: task_id, pending: Pending::Idle, cached: None });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.role = ConnRole::Thread;
        }
        self.log(Some(task_id), "thread_create(mach_task_self()) = KERN_SUCCESS".into());
        self.reply(conn, reply);
    }

    fn disconnect_inner(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        let Some(thread) = self.threads.remove(&conn) else {
            return;
        };
        match thread.pending {
            Pending::Idle => {}
            Pending::Send(bs) => {
                if let Some(p) = self.ports.get_mut(&bs.port) {
                    p.blocked_senders.retain(|c| *c != conn);
                }
                // A thread that dies inside mach_msg takes its message with it.
                self.destroy_kmsg(bs.kmsg);
            }
            Pending::Receive(br) => {
                if let Some(p) = self.ports.get_mut(&br.port) {
                    p.blocked_receivers.retain(|c| *c != conn);
                }
            }
        }
        let task_id = thread.task;
        let last = match self.tasks.get_mut(&task_id) {
            Some(task) => {
                task.threads.retain(|c| *c != conn);
                task.threads.is_empty()
            }
            None => false,
        };
        if last {
            self.terminate_task(task_id);
        }
    }

    /// Task exit: like `mach_port_destroy` on every name in its space.
    fn terminate_task(&mut self, task_id: TaskId) {
        let names: Vec<MachPortName> = match self.tasks.get(&task_id) {
            Some(t) => t.space.entries.keys().copied().collect(),
            None => return,
        };
        for name in names {
            self.destroy_name(task_id, name);
        }
        // Names a task registered go with it, as a launchd job's do; a
        // checked-in service lives as long as its port.
        self.services.retain(|_, s| s.checked_in || s.task != task_id);
        if let Some(task) = self.tasks.remove(&task_id) {
            self.log_as(task.pid, &task.name, "task_terminate(mach_task_self()) = KERN_SUCCESS".into());
            self.destroy_port(task.self_port);
        }
    }

    /// Removes a name and everything it denotes.
    fn destroy_name(&mut self, task_id: TaskId, name: MachPortName) {
        let Some(entry) = self.tasks.get_mut(&task_id).and_then(|t| t.space.remove(name)) else {
            return;
        };
        if let Some(request) = entry.dn_request {
            if entry.live_port().is_some_and(|p| self.ports.contains_key(&p)) {
                self.notify(request, MACH_NOTIFY_PORT_DELETED, ndr_name_body(name));
            }
        }
        if let Some(port) = entry.live_port() {
            if entry.receive {
                self.destroy_port(port);
            } else if entry.send_once {
                self.release_right(Right::new(port, Kind::SendOnce));
            }
        }
    }

    // ---- ports ---------------------------------------------------------------

    fn new_port(&mut self, receiver: Receiver) -> PortId {
        let id = self.next_port;
        self.next_port += 1;
        self.ports.insert(id, Port::new(receiver));
        self.counters.ports_created += 1;
        id
    }

    /// The receive right is gone: the port dies (`ipc_port_destroy`).
    fn destroy_port(&mut self, port_id: PortId) {
        let Some(mut port) = self.ports.remove(&port_id) else {
            return;
        };
        self.counters.ports_destroyed += 1;
        if let Receiver::Task { task, name } = port.receiver {
            if let Some(space) = self.tasks.get_mut(&task).map(|t| &mut t.space) {
                let drop_entry = match space.entries.get_mut(&name) {
                    Some(e) if e.port == Some(port_id) && e.receive => {
                        e.receive = false;
                        e.send == 0
                    }
                    _ => false,
                };
                if drop_entry {
                    if let Some(e) = space.remove(name) {
                        if let Some(request) = e.dn_request {
                            self.notify(request, MACH_NOTIFY_DEAD_NAME, ndr_name_body(name));
                        }
                    }
                }
            }
        }
        for conn in std::mem::take(&mut port.blocked_receivers) {
            if let Some(Pending::Receive(br)) = self.take_pending(conn) {
                self.finish(conn, &br.call, br.since, MACH_RCV_PORT_DIED, None, Vec::new());
            }
        }
        for conn in std::mem::take(&mut port.blocked_senders) {
            if let Some(Pending::Send(bs)) = self.take_pending(conn) {
                let bs = *bs;
                let task = self.threads.get(&conn).map(|t| t.task);
                let pseudo = task.map(|t| self.pseudo_receive(t, bs.kmsg));
                self.finish(conn, &bs.call, bs.since, MACH_SEND_INVALID_DEST, pseudo, Vec::new());
            }
        }
        for kmsg in std::mem::take(&mut port.queue) {
            self.destroy_kmsg(kmsg);
        }
        // Send and send-once rights elsewhere become dead names (XNU does
        // this lazily on next use; we do it now so the screen shows it).
        let mut notices = Vec::new();
        for task in self.tasks.values_mut() {
            for (name, e) in task.space.entries.iter_mut() {
                if e.dead == 0 && e.port == Some(port_id) && (e.send > 0 || e.send_once) {
                    e.dead = if e.send_once { 1 } else { e.send };
                    e.send = 0;
                    e.send_once = false;
                    if let Some(request) = e.dn_request.take() {
                        // The request holds a reference of its own.
                        e.dead = (e.dead + 1).min(MACH_PORT_UREFS_MAX);
                        notices.push((request, *name));
                    }
                }
            }
        }
        for (request, name) in notices {
            self.notify(request, MACH_NOTIFY_DEAD_NAME, ndr_name_body(name));
        }
        self.services.retain(|_, s| s.port != port_id);
    }

    /// A right that nobody will receive: a receive right kills its port, a
    /// send-once right tells its port `MACH_NOTIFY_SEND_ONCE`.
    fn release_right(&mut self, right: Right) {
        match right.kind {
            Kind::Receive => self.doomed.push(right.port),
            Kind::SendOnce => self.notify(right, MACH_NOTIFY_SEND_ONCE, Vec::new()),
            Kind::Send => {}
        }
    }

    fn reap(&mut self) {
        while let Some(port) = self.doomed.pop() {
            self.destroy_port(port);
        }
    }

    // ---- messages ------------------------------------------------------------

    fn account_new(&mut self, kmsg: &Kmsg<F>) {
        self.alive_msgs += 1;
        self.alive_bytes += kmsg.body.len();
        self.alive_ool += kmsg.ool_objects();
    }

    fn account_gone(&mut self, kmsg: &Kmsg<F>) {
        self.alive_msgs -= 1;
        self.alive_bytes -= kmsg.body.len();
        self.alive_ool -= kmsg.ool_objects();
    }

    /// Destroys a message nobody received: its rights are released and a
    /// pending `MACH_SEND_NOTIFY` request fires (GNU Mach does so too).
    fn destroy_kmsg(&mut self, mut kmsg: Kmsg<F>) {
        self.account_gone(&kmsg);
        self.counters.destroyed += 1;
        if let Some(m) = kmsg.marequest.take() {
            self.msg_accepted(m, kmsg.id);
        }
        if let Some(r) = kmsg.reply.take() {
            self.release_right(r);
        }
        for item in std::mem::take(&mut kmsg.items) {
            if let Item::Port { right: Some(r), .. } = item {
                self.release_right(r);
            }
        }
        // The destination right simply goes away with the message.
    }

    /// A kernel notification through a send-once right. It ignores the
    /// queue limit, as every send to a send-once right does.
    fn notify(&mut self, target: Right, msgh_id: i32, body: Vec<u8>) {
        if !self.ports.contains_key(&target.port) {
            return;
        }
        self.counters.notifications += 1;
        let kmsg = Kmsg {
            id: self.next_msg_id(),
            msgh_id,
            size: MACH_MSG_HEADER_SIZE + body.len() as u32,
            complex: false,
            dest: Right::new(target.port, Kind::SendOnce),
            reply: None,
            body,
            items: Vec::new(),
            sender: None,
            enqueued_ms: self.now,
            marequest: None,
        };
        self.account_new(&kmsg);
        self.enqueue(target.port, kmsg);
    }

    fn next_msg_id(&mut self) -> u64 {
        self.next_msg += 1;
        self.next_msg - 1
    }

    /// `MACH_NOTIFY_MSG_ACCEPTED` for a kept message, freeing its thread's slot.
    fn msg_accepted(&mut self, m: MaRequest, msg_id: u64) {
        if let Some(t) = self.threads.get_mut(&m.thread) {
            if t.cached == Some(msg_id) {
                t.cached = None;
            }
        }
        self.counters.notified += 1;
        self.notify(m.notify, MACH_NOTIFY_MSG_ACCEPTED, ndr_name_body(m.dest_name));
    }

    /// Puts a message on its port: straight to a waiting receiver if there
    /// is one, else at the tail of the queue. Room was checked by the caller.
    fn enqueue(&mut self, port_id: PortId, mut kmsg: Kmsg<F>) {
        if kmsg.sender.is_some() {
            self.counters.sent += 1;
        }
        kmsg.enqueued_ms = self.now;
        loop {
            let Some(port) = self.ports.get_mut(&port_id) else {
                self.destroy_kmsg(kmsg);
                return;
            };
            let Some(conn) = port.blocked_receivers.pop_front() else {
                port.queue.push_back(kmsg);
                return;
            };
            let Some(Pending::Receive(br)) = self.take_pending(conn) else {
                continue;
            };
            if kmsg.size.saturating_add(MACH_MSG_AUDIT_TRAILER_SIZE) > br.args.size {
                // Too big for this receiver's buffer.
                if br.args.options & MACH_RCV_LARGE != 0 {
                    let msg = too_large_header(&kmsg, br.name);
                    self.finish(conn, &br.call, br.since, MACH_RCV_TOO_LARGE, Some(msg), Vec::new());
                    continue;
                }
                let msg = too_large_header(&kmsg, br.name);
                self.destroy_kmsg(kmsg);
                self.finish(conn, &br.call, br.since, MACH_RCV_TOO_LARGE, Some(msg), Vec::new());
                return;
            }
            if let Some(p) = self.ports.get_mut(&port_id) {
                p.seqno = p.seqno.wrapping_add(1);
            }
            let seqno = self.ports.get(&port_id).map_or(0, |p| p.seqno.wrapping_sub(1));
            self.deliver(conn, br.name, kmsg, seqno, &br.call, br.since);
            return;
        }
    }

    /// Copies a message out to a receiving thread and answers it.
    fn deliver(
        &mut self,
        conn: ConnId,
        dest_name: MachPortName,
        mut kmsg: Kmsg<F>,
        seqno: u32,
        call: &str,
        since: u64,
    ) {
        let Some(task_id) = self.threads.get(&conn).map(|t| t.task) else {
            self.destroy_kmsg(kmsg);
            return;
        };
        self.account_gone(&kmsg);
        if let Some(m) = kmsg.marequest.take() {
            self.msg_accepted(m, kmsg.id);
        }
        let mut kr = MACH_MSG_SUCCESS;
        let reply_type = kmsg.reply.map_or(0, |r| r.kind.type_name());
        let reply_name = match kmsg.reply.take() {
            None => MACH_PORT_NULL,
            Some(r) => self.copyout_right(task_id, r, MACH_PORT_NULL).unwrap_or_else(|| {
                kr = MACH_RCV_HEADER_ERROR | MACH_MSG_IPC_SPACE;
                self.release_right(r);
                MACH_PORT_NULL
            }),
        };
        let mut descriptors = Vec::with_capacity(kmsg.items.len());
        let mut fds = Vec::new();
        for item in std::mem::take(&mut kmsg.items) {
            match item {
                Item::Port { right: None, type_name } => {
                    descriptors.push(ReceivedDescriptor::Port { name: MACH_PORT_NULL, type_name })
                }
                Item::Port { right: Some(r), type_name } => {
                    let name = self.copyout_right(task_id, r, MACH_PORT_NULL).unwrap_or_else(|| {
                        if kr == MACH_MSG_SUCCESS {
                            kr = MACH_RCV_BODY_ERROR | MACH_MSG_IPC_SPACE;
                        }
                        self.release_right(r);
                        MACH_PORT_DEAD
                    });
                    descriptors.push(ReceivedDescriptor::Port { name, type_name });
                }
                Item::Ool { size, copy, deallocate, mem } => {
                    descriptors.push(ReceivedDescriptor::Ool { size, copy, deallocate });
                    fds.push(mem);
                }
            }
        }
        let mut bits = mach_msgh_bits(reply_type, kmsg.dest.kind.type_name());
        if kmsg.complex {
            bits |= MACH_MSGH_BITS_COMPLEX;
        }
        let audit_token = match kmsg.sender {
            Some(s) => [s.uid, s.uid, s.gid, s.uid, s.gid, s.pid as u32, 0, s.task],
            None => [0; 8],
        };
        let msg = ReceivedMessage {
            header: MsgHeader {
                bits,
                size: kmsg.size,
                remote_port: reply_name,
                local_port: dest_name,
                voucher_port: MACH_PORT_NULL,
                id: kmsg.msgh_id,
            },
            seqno,
            audit_token,
            body: std::mem::take(&mut kmsg.body),
            descriptors,
        };
        self.counters.received += 1;
        self.finish(conn, call, since, kr, Some(msg), fds);
    }

    /// Puts a right into a task's space; a dead port yields `MACH_PORT_DEAD`.
    /// `None` if the space is full (the caller releases the right).
    fn copyout_right(&mut self, task_id: TaskId, right: Right, preferred: MachPortName) -> Option<MachPortName> {
        if !self.ports.contains_key(&right.port) {
            return Some(MACH_PORT_DEAD);
        }
        let max_names = self.limits.max_names_per_task;
        let space = &mut self.tasks.get_mut(&task_id)?.space;
        let name = copyout(space, right, preferred, max_names)?;
        if right.kind == Kind::Receive {
            if let Some(port) = self.ports.get_mut(&right.port) {
                port.receiver = Receiver::Task { task: task_id, name };
            }
        }
        Some(name)
    }

    /// A send that failed after copyin: moved rights go back to the sender
    /// (under their old names when free), copied and made ones are dropped,
    /// so the sender's space is as before the call. Returns what XNU would
    /// write back into the sender's buffer.
    fn pseudo_receive(&mut self, task_id: TaskId, mut kmsg: Kmsg<F>) -> ReceivedMessage {
        self.account_gone(&kmsg);
        let give_back = |k: &mut Self, r: Right| -> MachPortName {
            if !r.moved {
                return r.origin;
            }
            k.copyout_right(task_id, r, r.origin).unwrap_or_else(|| {
                k.release_right(r);
                MACH_PORT_DEAD
            })
        };
        let remote = give_back(self, kmsg.dest);
        let local = kmsg.reply.take().map_or(MACH_PORT_NULL, |r| give_back(self, r));
        let mut descriptors = Vec::new();
        for item in std::mem::take(&mut kmsg.items) {
            match item {
                Item::Port { right, type_name } => {
                    let name = right.map_or(MACH_PORT_NULL, |r| give_back(self, r));
                    descriptors.push(ReceivedDescriptor::Port { name, type_name });
                }
                Item::Ool { size, copy, deallocate, .. } => {
                    descriptors.push(ReceivedDescriptor::Ool { size, copy, deallocate })
                }
            }
        }
        ReceivedMessage {
            header: MsgHeader {
                bits: 0,
                size: kmsg.size,
                remote_port: remote,
                local_port: local,
                voucher_port: 0,
                id: kmsg.msgh_id,
            },
            seqno: 0,
            audit_token: [0; 8],
            body: std::mem::take(&mut kmsg.body),
            descriptors,
        }
    }

    // ---- mach_msg --------------------------------------------------------------

    fn mach_msg(&mut self, conn: ConnId, task: TaskId, req: MachMsgRequest, fds: Vec<Attachment<F>>) {
        let call = describe_mach_msg(&req);
        let since = self.now;
        let rcv = (req.options & MACH_RCV_MSG != 0).then_some(RcvArgs {
            name: req.rcv_name,
            options: req.options,
            timeout: req.rcv_timeout,
            size: req.rcv_size,
        });
        if req.options & MACH_SEND_MSG != 0 {
            match self.send(conn, task, req, fds, &call, rcv) {
                SendResult::Done => match rcv {
                    Some(args) => self.receive(conn, args, call, since),
                    None => self.finish(conn, &call, since, MACH_MSG_SUCCESS, None, Vec::new()),
                },
                SendResult::Failed(kr, pseudo) => self.finish(conn, &call, since, kr, pseudo, Vec::new()),
                SendResult::Blocked => {}
            }
        } else if let Some(args) = rcv {
            self.receive(conn, args, call, since);
        } else {
            self.finish(conn, &call, since, MACH_MSG_SUCCESS, None, Vec::new());
        }
    }

    /// The send half of `mach_msg`: validate, copy in (tentatively, on a
    /// copy of the space, so that an early failure changes nothing), then
    /// enqueue, block, fail at once, or keep the message past the limit.
    fn send(
        &mut self,
        conn: ConnId,
        task_id: TaskId,
        req: MachMsgRequest,
        fds: Vec<Attachment<F>>,
        call: &str,
        rcv: Option<RcvArgs>,
    ) -> SendResult {
        use SendResult::Failed;
        let h = req.header;
        if h.size < MACH_MSG_HEADER_SIZE || !h.size.is_multiple_of(4) {
            return Failed(MACH_SEND_MSG_TOO_SMALL, None);
        }
        if req.body.len() > MAX_INLINE_BODY || h.size as usize > MAX_INLINE_BODY + 4096 {
            return Failed(MACH_SEND_TOO_LARGE, None);
        }
        let computed = message_size(req.body.len(), &req.descriptors);
        if u64::from(h.size) < computed {
            return Failed(MACH_SEND_MSG_TOO_SMALL, None);
        }
        if u64::from(h.size) > computed {
            return Failed(MACH_SEND_INVALID_HEADER, None);
        }
        let complex = h.bits & MACH_MSGH_BITS_COMPLEX != 0;
        // Vouchers are not emulated (XNU's MACH_SEND_INVALID_VOUCHER value
        // is GNU's MACH_SEND_WILL_NOTIFY, which we return for option 4).
        if h.bits & !MACH_MSGH_BITS_USER != 0
            || (!req.descriptors.is_empty() && !complex)
            || mach_msgh_bits_voucher(h.bits) != 0
            || h.voucher_port != MACH_PORT_NULL
        {
            return Failed(MACH_SEND_INVALID_HEADER, None);
        }
        let dest_disp = mach_msgh_bits_remote(h.bits);
        if !(MACH_MSG_TYPE_MOVE_SEND..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(&dest_disp) {
            return Failed(MACH_SEND_INVALID_HEADER, None);
        }
        let reply_disp = mach_msgh_bits_local(h.bits);
        let reply_disp_ok = (MACH_MSG_TYPE_MOVE_SEND..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(&reply_disp);
        if (h.local_port != MACH_PORT_NULL && !reply_disp_ok) || h.local_port == MACH_PORT_DEAD {
            return Failed(MACH_SEND_INVALID_REPLY, None);
        }
        if !mach_port_valid(h.remote_port) {
            return Failed(MACH_SEND_INVALID_DEST, None);
        }
        let ool_count = req.descriptors.iter().filter(|d| matches!(d, Descriptor::Ool { .. })).count();
        if self.alive_msgs >= self.limits.max_messages
            || self.alive_bytes + req.body.len() > self.limits.max_message_bytes
            || self.alive_ool + ool_count > self.limits.max_ool_objects
        {
            return Failed(MACH_SEND_NO_BUFFER, None);
        }
        for d in &req.descriptors {
            if let Descriptor::Port { disposition, .. } = d {
                if !(MACH_MSG_TYPE_MOVE_RECEIVE..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(disposition) {
                    return Failed(MACH_SEND_INVALID_TYPE, None);
                }
            }
        }

        // Tentative copyin on a copy of the sender's space.
        let Some(task) = self.tasks.get(&task_id) else {
            return Failed(MACH_SEND_INVALID_DEST, None);
        };
        let sender = SenderInfo { task: task_id, pid: task.pid, uid: task.uid, gid: task.gid };
        let mut space = task.space.clone();
        let mut effects = Vec::new();
        let Ok(mut dest) = copyin(&mut space, h.remote_port, dest_disp, &mut effects) else {
            return Failed(MACH_SEND_INVALID_DEST, None);
        };
        dest.origin = h.remote_port;
        let Some(port) = self.ports.get(&dest.port) else {
            return Failed(MACH_SEND_INVALID_DEST, None);
        };
        if port.is_kernel_port() {
            // Kernel objects answer MIG requests in real Mach; here their
            // services are the bootstrap_* / mach_port_* calls instead.
            return Failed(MACH_SEND_INVALID_DEST, None);
        }
        let reply = if h.local_port == MACH_PORT_NULL {
            None
        } else {
            match copyin(&mut space, h.local_port, reply_disp, &mut effects) {
                Ok(r) => Some(r),
                Err(_) => return Failed(MACH_SEND_INVALID_REPLY, None),
            }
        };
        let mut slots: Vec<Option<Attachment<F>>> = fds.into_iter().map(Some).collect();
        let mut items = Vec::with_capacity(req.descriptors.len());
        for d in &req.descriptors {
            match *d {
                Descriptor::Port { name, disposition } => {
                    let type_name = match disposition {
                        MACH_MSG_TYPE_COPY_SEND | MACH_MSG_TYPE_MAKE_SEND => MACH_MSG_TYPE_PORT_SEND,
                        MACH_MSG_TYPE_MAKE_SEND_ONCE => MACH_MSG_TYPE_PORT_SEND_ONCE,
                        other => other,
                    };
                    if !mach_port_valid(name) {
                        items.push(Item::Port { right: None, type_name });
                        continue;
                    }
                    match copyin(&mut space, name, disposition, &mut effects) {
                        Ok(r) => items.push(Item::Port { right: Some(r), type_name }),
                        Err(_) => return Failed(MACH_SEND_INVALID_RIGHT, None),
                    }
                }
                Descriptor::Ool { size, copy, deallocate, fd_index } => {
                    let slot = slots.get_mut(fd_index as usize).and_then(Option::take);
                    match slot {
                        Some(a) if a.len.is_some_and(|len| len >= u64::from(size)) => {
                            items.push(Item::Ool { size, copy, deallocate, mem: a.handle })
                        }
                        _ => return Failed(MACH_SEND_INVALID_MEMORY, None),
                    }
                }
            }
        }

        // Would a receive right in the message end up queued on itself
        // (directly or through a chain of in-transit ports)?
        let circular = items.iter().any(|i| match i {
            Item::Port { right: Some(r), .. } if r.kind == Kind::Receive => self.chain_reaches(dest.port, r.port),
            _ => false,
        });

        let port = &self.ports[&dest.port];
        let to_send_once = dest.kind == Kind::SendOnce;
        let fits = if to_send_once {
            port.queue.len() < MACH_PORT_QLIMIT_KERNEL as usize
        } else {
            !port.blocked_receivers.is_empty() || !port.is_full()
        };
        if to_send_once && !fits {
            return Failed(MACH_SEND_NO_BUFFER, None);
        }
        let timeout_zero = req.options & MACH_SEND_TIMEOUT != 0 && req.send_timeout == 0;
        let wants_notify = req.options & MACH_SEND_NOTIFY != 0;
        let mut cache_notify = None;
        if !fits && !circular && timeout_zero {
            if !wants_notify {
                // Option 3 of the textbook: return at once. Nothing was
                // committed, so the sender's space is untouched.
                self.counters.returned_at_once += 1;
                return Failed(MACH_SEND_TIMED_OUT, None);
            }
            match self.check_cache(conn, &space, req.notify) {
                Ok(notify_port) => cache_notify = Some(notify_port),
                Err(kr) => return Failed(kr, None),
            }
        }

        // Commit.
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.space = space;
        }
        self.apply_effects(effects, dest.port);
        let mut kmsg = Kmsg {
            id: self.next_msg_id(),
            msgh_id: h.id,
            size: h.size,
            complex,
            dest,
            reply,
            body: req.body,
            items,
            sender: Some(sender),
            enqueued_ms: self.now,
            marequest: None,
        };
        self.account_new(&kmsg);
        self.counters.bytes_inline += kmsg.body.len() as u64;
        self.counters.bytes_ool += kmsg.ool_bytes();
        if circular {
            // XNU marks such a message circular and destroys it; the send
            // itself succeeds and the port dies.
            self.destroy_kmsg(kmsg);
            return SendResult::Done;
        }
        if let Some(notify_port) = cache_notify {
            kmsg.marequest = Some(MaRequest {
                thread: conn,
                notify: Right::new(notify_port, Kind::SendOnce),
                dest_name: h.remote_port,
            });
            self.keep_past_limit(conn, dest.port, kmsg);
            return Failed(MACH_SEND_WILL_NOTIFY, None);
        }
        if fits {
            self.enqueue(dest.port, kmsg);
            return SendResult::Done;
        }
        // Options 1 and 2: wait for room, forever or until the timeout.
        let deadline = (req.options & MACH_SEND_TIMEOUT != 0).then(|| self.now + u64::from(req.send_timeout));
        self.counters.blocked += 1;
        if let Some(p) = self.ports.get_mut(&dest.port) {
            p.blocked_senders.push_back(conn);
        }
        if let Some(t) = self.threads.get_mut(&conn) {
            t.pending = Pending::Send(Box::new(BlockedSend {
                port: dest.port,
                dest_name: h.remote_port,
                kmsg,
                deadline,
                since: self.now,
                options: req.options,
                notify: req.notify,
                call: call.to_string(),
                rcv,
            }));
        }
        SendResult::Blocked
    }

    /// May this thread keep a message past a full queue? One per thread
    /// (the textbook's rule), and `notify` must name a receive right of the
    /// sender, which gets a send-once right for the notification.
    fn check_cache(&self, conn: ConnId, space: &Space, notify: MachPortName) -> Result<PortId, u32> {
        if self.threads.get(&conn).is_some_and(|t| t.cached.is_some()) {
            return Err(MACH_SEND_NOTIFY_IN_PROGRESS);
        }
        match space.entries.get(&notify) {
            Some(e) if e.receive && e.dead == 0 => e.port.ok_or(MACH_SEND_INVALID_NOTIFY),
            _ => Err(MACH_SEND_INVALID_NOTIFY),
        }
    }

    fn keep_past_limit(&mut self, conn: ConnId, port_id: PortId, kmsg: Kmsg<F>) {
        self.counters.cached += 1;
        if let Some(t) = self.threads.get_mut(&conn) {
            t.cached = Some(kmsg.id);
        }
        self.enqueue(port_id, kmsg);
    }

    fn chain_reaches(&self, start: PortId, target: PortId) -> bool {
        let mut cur = start;
        for _ in 0..=self.ports.len() {
            if cur == target {
                return true;
            }
            match self.ports.get(&cur).map(|p| &p.receiver) {
                Some(Receiver::InTransit { dest }) => cur = *dest,
                _ => return false,
            }
        }
        false
    }

    fn apply_effects(&mut self, effects: Vec<Effect>, dest: PortId) {
        for effect in effects {
            match effect {
                Effect::MakeSend(p) => {
                    if let Some(port) = self.ports.get_mut(&p) {
                        port.mscount = port.mscount.wrapping_add(1);
                    }
                }
                Effect::MoveReceive(p) => {
                    let waiting = match self.ports.get_mut(&p) {
                        Some(port) => {
                            port.receiver = Receiver::InTransit { dest };
                            // XNU resets these when the receive right moves.
                            port.seqno = 0;
                            port.mscount = 0;
                            std::mem::take(&mut port.blocked_receivers)
                        }
                        None => VecDeque::new(),
                    };
                    for conn in waiting {
                        if let Some(Pending::Receive(br)) = self.take_pending(conn) {
                            self.finish(conn, &br.call, br.since, MACH_RCV_PORT_CHANGED, None, Vec::new());
                        }
                    }
                }
                Effect::RequestDropped { name, request } => {
                    self.notify(request, MACH_NOTIFY_PORT_DELETED, ndr_name_body(name))
                }
            }
        }
    }

    /// The receive half of `mach_msg`.
    fn receive(&mut self, conn: ConnId, args: RcvArgs, call: String, since: u64) {
        let Some(task_id) = self.threads.get(&conn).map(|t| t.task) else {
            return;
        };
        let port_id = self
            .tasks
            .get(&task_id)
            .and_then(|t| t.space.entries.get(&args.name))
            .filter(|e| e.receive && e.dead == 0)
            .and_then(|e| e.port);
        let Some(port_id) = port_id else {
            self.finish(conn, &call, since, MACH_RCV_INVALID_NAME, None, Vec::new());
            return;
        };
        let Some(port) = self.ports.get_mut(&port_id) else {
            self.finish(conn, &call, since, MACH_RCV_INVALID_NAME, None, Vec::new());
            return;
        };
        if let Some(front) = port.queue.front() {
            if front.size.saturating_add(MACH_MSG_AUDIT_TRAILER_SIZE) > args.size {
                let msg = too_large_header(front, args.name);
                if args.options & MACH_RCV_LARGE == 0 {
                    // Without MACH_RCV_LARGE the message is lost (as in XNU).
                    if let Some(kmsg) = port.queue.pop_front() {
                        self.destroy_kmsg(kmsg);
                    }
                    self.after_dequeue(port_id);
                }
                self.finish(conn, &call, since, MACH_RCV_TOO_LARGE, Some(msg), Vec::new());
                return;
            }
            let seqno = port.seqno;
            port.seqno = port.seqno.wrapping_add(1);
            if let Some(kmsg) = port.queue.pop_front() {
                self.deliver(conn, args.name, kmsg, seqno, &call, since);
            }
            self.after_dequeue(port_id);
            return;
        }
        // An empty queue with a waiting sender happens only at qlimit 0:
        // the message passes straight from sender to receiver.
        if let Some(sender) = port.blocked_senders.front().copied() {
            let fits = match self.threads.get(&sender).map(|t| &t.pending) {
                Some(Pending::Send(bs)) => bs.kmsg.size.saturating_add(MACH_MSG_AUDIT_TRAILER_SIZE) <= args.size,
                _ => true,
            };
            if fits {
                if let Some(p) = self.ports.get_mut(&port_id) {
                    p.blocked_senders.pop_front();
                }
                if let Some(Pending::Send(bs)) = self.take_pending(sender) {
                    let bs = *bs;
                    self.counters.sent += 1;
                    let seqno = self.ports.get_mut(&port_id).map_or(0, |p| {
                        p.seqno = p.seqno.wrapping_add(1);
                        p.seqno.wrapping_sub(1)
                    });
                    self.deliver(conn, args.name, bs.kmsg, seqno, &call, since);
                    self.sender_done(sender, bs.call, bs.since, bs.rcv);
                    return;
                }
            }
        }
        if args.options & MACH_RCV_TIMEOUT != 0 && args.timeout == 0 {
            self.counters.rcv_timed_out += 1;
            self.finish(conn, &call, since, MACH_RCV_TIMED_OUT, None, Vec::new());
            return;
        }
        let deadline = (args.options & MACH_RCV_TIMEOUT != 0).then(|| self.now + u64::from(args.timeout));
        if let Some(p) = self.ports.get_mut(&port_id) {
            p.blocked_receivers.push_back(conn);
        }
        if let Some(t) = self.threads.get_mut(&conn) {
            t.pending = Pending::Receive(BlockedRecv { port: port_id, name: args.name, args, deadline, since, call });
        }
    }

    /// A message left the queue: kept messages now within the limit are
    /// accepted, and waiting senders take the free slots in FIFO order.
    fn after_dequeue(&mut self, port_id: PortId) {
        loop {
            let Some(port) = self.ports.get_mut(&port_id) else {
                return;
            };
            if port.over_lowered_limit && port.queue.len() <= port.qlimit as usize {
                port.over_lowered_limit = false;
            }
            let limit = (port.qlimit as usize).min(port.queue.len());
            let accepted: Vec<(MaRequest, u64)> =
                port.queue.iter_mut().take(limit).filter_map(|k| k.marequest.take().map(|m| (m, k.id))).collect();
            for (m, id) in accepted {
                self.msg_accepted(m, id);
            }
            let Some(port) = self.ports.get_mut(&port_id) else {
                return;
            };
            if port.is_full() {
                return;
            }
            let Some(sender) = port.blocked_senders.pop_front() else {
                return;
            };
            if let Some(Pending::Send(bs)) = self.take_pending(sender) {
                let bs = *bs;
                self.enqueue(port_id, bs.kmsg);
                self.sender_done(sender, bs.call, bs.since, bs.rcv);
            }
        }
    }

    /// A blocked sender's message was accepted: the call returns, or goes
    /// on to its receive half.
    fn sender_done(&mut self, conn: ConnId, call: String, since: u64, rcv: Option<RcvArgs>) {
        match rcv {
            Some(args) => self.receive(conn, args, call, since),
            None => self.finish(conn, &call, since, MACH_MSG_SUCCESS, None, Vec::new()),
        }
    }

    fn deadline_of(t: &Thread<F>) -> Option<u64> {
        match &t.pending {
            Pending::Idle => None,
            Pending::Send(bs) => bs.deadline,
            Pending::Receive(br) => br.deadline,
        }
    }

    fn take_pending(&mut self, conn: ConnId) -> Option<Pending<F>> {
        let t = self.threads.get_mut(&conn)?;
        Some(std::mem::replace(&mut t.pending, Pending::Idle))
    }

    fn expire(&mut self, conn: ConnId) {
        let Some(task_id) = self.threads.get(&conn).map(|t| t.task) else {
            return;
        };
        match self.take_pending(conn) {
            Some(Pending::Send(bs)) => {
                let bs = *bs;
                if let Some(p) = self.ports.get_mut(&bs.port) {
                    p.blocked_senders.retain(|c| *c != conn);
                }
                if bs.options & MACH_SEND_NOTIFY != 0 {
                    let checked = match self.tasks.get(&task_id) {
                        Some(t) => self.check_cache(conn, &t.space, bs.notify),
                        None => Err(MACH_SEND_INVALID_NOTIFY),
                    };
                    if let Ok(notify_port) = checked {
                        let mut kmsg = bs.kmsg;
                        kmsg.marequest = Some(MaRequest {
                            thread: conn,
                            notify: Right::new(notify_port, Kind::SendOnce),
                            dest_name: bs.dest_name,
                        });
                        self.keep_past_limit(conn, bs.port, kmsg);
                        self.finish(conn, &bs.call, bs.since, MACH_SEND_WILL_NOTIFY, None, Vec::new());
                        return;
                    }
                    let kr = checked.err().unwrap_or(MACH_SEND_INVALID_NOTIFY);
                    let pseudo = self.pseudo_receive(task_id, bs.kmsg);
                    self.finish(conn, &bs.call, bs.since, kr, Some(pseudo), Vec::new());
                    return;
                }
                self.counters.send_timed_out += 1;
                let pseudo = self.pseudo_receive(task_id, bs.kmsg);
                self.finish(conn, &bs.call, bs.since, MACH_SEND_TIMED_OUT, Some(pseudo), Vec::new());
            }
            Some(Pending::Receive(br)) => {
                if let Some(p) = self.ports.get_mut(&br.port) {
                    p.blocked_receivers.retain(|c| *c != conn);
                }
                self.counters.rcv_timed_out += 1;
                self.finish(conn, &br.call, br.since, MACH_RCV_TIMED_OUT, None, Vec::new());
            }
            Some(Pending::Idle) | None => {}
        }
    }

    /// Ends a `mach_msg` call: logs it and answers the thread.
    fn finish(&mut self, conn: ConnId, call: &str, since: u64, kr: u32, msg: Option<ReceivedMessage>, fds: Vec<F>) {
        let task = self.threads.get(&conn).map(|t| t.task);
        // 0 is KERN_SUCCESS too, but mach_msg's own name for it reads better.
        let result = if kr == MACH_MSG_SUCCESS { "MACH_MSG_SUCCESS".to_string() } else { kr_name(kr) };
        let mut text = format!("{call} = {result}");
        if let Some(m) = msg.as_ref().filter(|_| kr == MACH_MSG_SUCCESS || kr & MACH_MSG_IPC_SPACE != 0) {
            let from = m.audit_token[5];
            let what = notification_name(m.header.id)
                .map(str::to_string)
                .unwrap_or_else(|| format!("msgh_id={}", m.header.id));
            let _ = write!(text, " /* {what}, {} bytes, from pid {from} */", m.header.size);
        }
        let waited = self.now.saturating_sub(since);
        if waited > 0 {
            let _ = write!(text, " /* waited {waited} ms */");
        }
        self.log(task, text);
        self.out.push(Outgoing::Reply { conn, reply: Reply::Msg { kr, msg }, fds });
    }

    // ---- port calls ----------------------------------------------------------

    fn port_allocate(&mut self, task_id: TaskId, right: u32) -> (u32, MachPortName) {
        let max_names = self.limits.max_names_per_task;
        let max_recv = self.limits.max_receive_rights_per_task;
        let ports_full = self.ports.len() >= self.limits.max_ports;
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return (KERN_INVALID_TASK, 0);
        };
        match right {
            MACH_PORT_RIGHT_RECEIVE => {
                if ports_full || task.space.receive_rights() >= max_recv {
                    return (KERN_RESOURCE_SHORTAGE, 0);
                }
                let Some(name) = task.space.alloc_name(max_names) else {
                    return (KERN_NO_SPACE, 0);
                };
                let port = self.new_port(Receiver::Task { task: task_id, name });
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.space.entries.insert(name, Entry { port: Some(port), receive: true, ..Entry::default() });
                }
                (KERN_SUCCESS, name)
            }
            MACH_PORT_RIGHT_DEAD_NAME => {
                let Some(name) = task.space.alloc_name(max_names) else {
                    return (KERN_NO_SPACE, 0);
                };
                task.space.entries.insert(name, Entry { dead: 1, ..Entry::default() });
                (KERN_SUCCESS, name)
            }
            // Port sets are not emulated.
            _ => (KERN_INVALID_VALUE, 0),
        }
    }

    fn port_insert_right(&mut self, task_id: TaskId, name: MachPortName, poly: MachPortName, disposition: u32) -> u32 {
        if !(MACH_MSG_TYPE_MOVE_RECEIVE..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(&disposition) {
            return KERN_INVALID_VALUE;
        }
        if !mach_port_valid(name) {
            return KERN_INVALID_VALUE;
        }
        if !mach_port_valid(poly) {
            return KERN_INVALID_CAPABILITY;
        }
        let max_names = self.limits.max_names_per_task;
        let Some(task) = self.tasks.get(&task_id) else {
            return KERN_INVALID_TASK;
        };
        let mut space = task.space.clone();
        let mut effects = Vec::new();
        let right = match copyin(&mut space, poly, disposition, &mut effects) {
            Ok(r) => r,
            Err(CopyinError::InvalidName) => return KERN_INVALID_NAME,
            Err(CopyinError::DeadName) => return KERN_INVALID_CAPABILITY,
            Err(CopyinError::InvalidRight) => return KERN_INVALID_RIGHT,
        };
        match space.entries.get_mut(&name) {
            Some(e) => {
                // Only coalescing with the same port's send/receive rights.
                if e.dead > 0 || e.port != Some(right.port) || e.send_once || right.kind == Kind::SendOnce {
                    return KERN_NAME_EXISTS;
                }
                match right.kind {
                    Kind::Receive => e.receive = true,
                    _ => e.send = (e.send + 1).min(MACH_PORT_UREFS_MAX),
                }
            }
            None => {
                if right.kind != Kind::SendOnce && space.name_of(right.port).is_some() {
                    return KERN_RIGHT_EXISTS;
                }
                if let Err(kr) = space.can_claim(name, max_names) {
                    return kr;
                }
                let mut e = Entry { port: Some(right.port), ..Entry::default() };
                match right.kind {
                    Kind::Receive => e.receive = true,
                    Kind::Send => e.send = 1,
                    Kind::SendOnce => e.send_once = true,
                }
                space.entries.insert(name, e);
            }
        }
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.space = space;
        }
        // The right stays in this task: a moved receive right only renames.
        let effects = effects.into_iter().filter(|e| !matches!(e, Effect::MoveReceive(_))).collect();
        self.apply_effects(effects, 0);
        if right.kind == Kind::Receive {
            if let Some(p) = self.ports.get_mut(&right.port) {
                p.receiver = Receiver::Task { task: task_id, name };
            }
        }
        KERN_SUCCESS
    }

    fn port_deallocate(&mut self, task_id: TaskId, name: MachPortName) -> u32 {
        if !mach_port_valid(name) {
            return KERN_SUCCESS;
        }
        let Some(entry) = self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&name)) else {
            return KERN_INVALID_NAME;
        };
        if entry.dead > 0 {
            self.delta_urefs(task_id, name, MACH_PORT_RIGHT_DEAD_NAME, -1)
        } else if entry.send_once {
            self.destroy_name(task_id, name);
            KERN_SUCCESS
        } else if entry.send > 0 {
            self.delta_urefs(task_id, name, MACH_PORT_RIGHT_SEND, -1)
        } else {
            KERN_INVALID_RIGHT
        }
    }

    fn port_mod_refs(&mut self, task_id: TaskId, name: MachPortName, right: u32, delta: i32) -> u32 {
        if right >= MACH_PORT_RIGHT_NUMBER {
            return KERN_INVALID_VALUE;
        }
        if !mach_port_valid(name) {
            return if right == MACH_PORT_RIGHT_SEND || right == MACH_PORT_RIGHT_SEND_ONCE {
                KERN_SUCCESS
            } else {
                KERN_INVALID_NAME
            };
        }
        let Some(entry) = self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&name)) else {
            return KERN_INVALID_NAME;
        };
        match right {
            MACH_PORT_RIGHT_RECEIVE => {
                if !entry.receive {
                    return KERN_INVALID_RIGHT;
                }
                match delta {
                    0 => KERN_SUCCESS,
                    -1 => {
                        if let Some(port) = entry.port {
                            self.destroy_port(port);
                        }
                        KERN_SUCCESS
                    }
                    _ => KERN_INVALID_VALUE,
                }
            }
            MACH_PORT_RIGHT_SEND_ONCE => {
                if !entry.send_once {
                    return KERN_INVALID_RIGHT;
                }
                match delta {
                    0 => KERN_SUCCESS,
                    -1 => {
                        self.destroy_name(task_id, name);
                        KERN_SUCCESS
                    }
                    _ => KERN_INVALID_VALUE,
                }
            }
            MACH_PORT_RIGHT_SEND if entry.send == 0 => KERN_INVALID_RIGHT,
            MACH_PORT_RIGHT_DEAD_NAME if entry.dead == 0 => KERN_INVALID_RIGHT,
            MACH_PORT_RIGHT_SEND | MACH_PORT_RIGHT_DEAD_NAME => self.delta_urefs(task_id, name, right, delta),
            _ => KERN_INVALID_RIGHT,
        }
    }

    /// User-reference arithmetic for send rights and dead names, saturating
    /// at `MACH_PORT_UREFS_MAX` as XNU does.
    fn delta_urefs(&mut self, task_id: TaskId, name: MachPortName, right: u32, delta: i32) -> u32 {
        let max = MACH_PORT_UREFS_MAX as i64;
        let delta = i64::from(delta);
        if delta.abs() > max {
            return KERN_INVALID_VALUE;
        }
        let Some(entry) = self.tasks.get_mut(&task_id).and_then(|t| t.space.entries.get_mut(&name)) else {
            return KERN_INVALID_NAME;
        };
        let urefs = if right == MACH_PORT_RIGHT_SEND { &mut entry.send } else { &mut entry.dead };
        let current = i64::from(*urefs);
        let new = if current == max {
            // Pegged: only a full -MAX brings it down.
            if delta == -max {
                0
            } else {
                max
            }
        } else {
            current + delta
        };
        if new < 0 {
            return KERN_INVALID_VALUE;
        }
        *urefs = new.min(max) as u32;
        let empty = entry.send == 0 && entry.dead == 0 && !entry.receive && !entry.send_once;
        if empty {
            self.destroy_name(task_id, name);
        }
        KERN_SUCCESS
    }

    fn receive_port_of(&self, task_id: TaskId, name: MachPortName) -> Result<PortId, u32> {
        let entry = self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&name)).ok_or(KERN_INVALID_NAME)?;
        if !entry.receive {
            return Err(KERN_INVALID_RIGHT);
        }
        entry.port.ok_or(KERN_INVALID_RIGHT)
    }

    fn port_set_attributes(&mut self, task_id: TaskId, name: MachPortName, flavor: u32, info: &[i32]) -> u32 {
        let port_id = match self.receive_port_of(task_id, name) {
            Ok(p) => p,
            Err(kr) => return kr,
        };
        if flavor != MACH_PORT_LIMITS_INFO {
            return KERN_INVALID_ARGUMENT;
        }
        let Some(&qlimit) = info.first() else {
            return KERN_FAILURE;
        };
        if qlimit < 0 || qlimit as u32 > MACH_PORT_QLIMIT_MAX {
            return KERN_INVALID_VALUE;
        }
        if let Some(port) = self.ports.get_mut(&port_id) {
            port.qlimit = qlimit as u32;
            let ordinary = port.queue.iter().filter(|k| k.dest.kind != Kind::SendOnce && k.marequest.is_none()).count();
            port.over_lowered_limit = ordinary > port.qlimit as usize;
        }
        // A raised limit makes room for waiting senders and kept messages.
        self.after_dequeue(port_id);
        KERN_SUCCESS
    }

    fn port_get_attributes(&self, task_id: TaskId, name: MachPortName, flavor: u32, count: u32) -> (u32, Vec<i32>) {
        let port_id = match self.receive_port_of(task_id, name) {
            Ok(p) => p,
            Err(kr) => return (kr, Vec::new()),
        };
        let Some(port) = self.ports.get(&port_id) else {
            return (KERN_INVALID_NAME, Vec::new());
        };
        match flavor {
            MACH_PORT_LIMITS_INFO if count as usize >= MACH_PORT_LIMITS_INFO_COUNT => {
                (KERN_SUCCESS, vec![port.qlimit as i32])
            }
            MACH_PORT_RECEIVE_STATUS if count as usize >= MACH_PORT_RECEIVE_STATUS_COUNT => {
                let (mut srights, mut sorights) = (0, 0);
                for t in self.tasks.values() {
                    for e in t.space.entries.values().filter(|e| e.live_port() == Some(port_id)) {
                        srights += i32::from(e.send > 0);
                        sorights += i32::from(e.send_once);
                    }
                }
                let status = vec![
                    0, // mps_pset: port sets are not emulated
                    port.seqno as i32,
                    port.mscount as i32,
                    port.qlimit as i32,
                    port.queue.len() as i32,
                    sorights,
                    srights,
                    0,
                    0,
                    0,
                ];
                (KERN_SUCCESS, status)
            }
            MACH_PORT_LIMITS_INFO | MACH_PORT_RECEIVE_STATUS => (KERN_FAILURE, Vec::new()),
            _ => (KERN_INVALID_ARGUMENT, Vec::new()),
        }
    }

    fn port_request_notification(
        &mut self,
        task_id: TaskId,
        name: MachPortName,
        msgid: i32,
        notify: MachPortName,
        notify_disposition: u32,
    ) -> (u32, MachPortName) {
        // Only dead-name requests are emulated.
        if msgid != MACH_NOTIFY_DEAD_NAME {
            return (KERN_INVALID_VALUE, 0);
        }
        let Some(task) = self.tasks.get(&task_id) else {
            return (KERN_INVALID_TASK, 0);
        };
        let Some(entry) = task.space.entries.get(&name) else {
            return (KERN_INVALID_NAME, 0);
        };
        if entry.dead > 0 {
            return (KERN_INVALID_ARGUMENT, 0);
        }
        if notify == MACH_PORT_DEAD {
            return (KERN_INVALID_CAPABILITY, 0);
        }
        let mut space = task.space.clone();
        let mut effects = Vec::new();
        let new_request = if notify == MACH_PORT_NULL {
            None
        } else {
            if notify_disposition != MACH_MSG_TYPE_MAKE_SEND_ONCE && notify_disposition != MACH_MSG_TYPE_MOVE_SEND_ONCE
            {
                return (KERN_INVALID_VALUE, 0);
            }
            match copyin(&mut space, notify, notify_disposition, &mut effects) {
                Ok(r) => Some(Right::new(r.port, Kind::SendOnce)),
                Err(_) => return (KERN_INVALID_CAPABILITY, 0),
            }
        };
        // The entry itself may have gone if `notify` was the same name.
        let Some(entry) = space.entries.get_mut(&name) else {
            return (KERN_INVALID_NAME, 0);
        };
        let previous = std::mem::replace(&mut entry.dn_request, new_request);
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.space = space;
        }
        self.apply_effects(effects, 0);
        let previous_name = match previous {
            None => MACH_PORT_NULL,
            Some(r) => self.copyout_right(task_id, r, MACH_PORT_NULL).unwrap_or_else(|| {
                self.release_right(r);
                MACH_PORT_NULL
            }),
        };
        (KERN_SUCCESS, previous_name)
    }

    // ---- bootstrap server ------------------------------------------------------

    /// The bootstrap calls are messages to the bootstrap port in real Mach,
    /// so a bad `bp` fails like a send to a bad destination.
    fn check_bootstrap(&self, task_id: TaskId, bp: MachPortName, service: &str) -> Result<(), u32> {
        let ok = self
            .tasks
            .get(&task_id)
            .and_then(|t| t.space.entries.get(&bp))
            .is_some_and(|e| e.send > 0 && e.dead == 0 && e.port == Some(self.bootstrap_port));
        if !ok {
            return Err(MACH_SEND_INVALID_DEST);
        }
        if service.is_empty() || service.len() > MAX_SERVICE_NAME {
            return Err(BOOTSTRAP_BAD_COUNT);
        }
        Ok(())
    }

    fn bootstrap_check_in(&mut self, task_id: TaskId, bp: MachPortName, service: &str) -> (u32, MachPortName) {
        if let Err(kr) = self.check_bootstrap(task_id, bp, service) {
            return (kr, 0);
        }
        if let Some(s) = self.services.get(service) {
            return (if s.checked_in { BOOTSTRAP_SERVICE_ACTIVE } else { BOOTSTRAP_NOT_PRIVILEGED }, 0);
        }
        if self.services.len() >= self.limits.max_services {
            return (BOOTSTRAP_NO_MEMORY, 0);
        }
        // launchd creates a declared service's port and hands out its
        // receive right on check-in; services here are declared on demand.
        let (kr, name) = self.port_allocate(task_id, MACH_PORT_RIGHT_RECEIVE);
        if kr != KERN_SUCCESS {
            return (kr, 0);
        }
        let Ok(port) = self.receive_port_of(task_id, name) else {
            return (KERN_FAILURE, 0);
        };
        let pid = self.tasks.get(&task_id).map_or(0, |t| t.pid);
        self.services.insert(service.to_string(), Service { port, task: task_id, pid, checked_in: true });
        (KERN_SUCCESS, name)
    }

    fn bootstrap_register(&mut self, task_id: TaskId, bp: MachPortName, service: &str, port_name: MachPortName) -> u32 {
        if let Err(kr) = self.check_bootstrap(task_id, bp, service) {
            return kr;
        }
        if let Some(s) = self.services.get(service) {
            // launchd lets the registrant withdraw its own name with NULL.
            if port_name == MACH_PORT_NULL && s.task == task_id && !s.checked_in {
                self.services.remove(service);
                return KERN_SUCCESS;
            }
            return BOOTSTRAP_NAME_IN_USE;
        }
        if self.services.len() >= self.limits.max_services {
            return BOOTSTRAP_NO_MEMORY;
        }
        let port = match self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&port_name)) {
            Some(e) if e.dead == 0 && (e.receive || e.send > 0) => e.port,
            Some(_) => return KERN_INVALID_RIGHT,
            None => return KERN_INVALID_NAME,
        };
        let Some(port) = port else {
            return KERN_INVALID_RIGHT;
        };
        let pid = self.tasks.get(&task_id).map_or(0, |t| t.pid);
        self.services.insert(service.to_string(), Service { port, task: task_id, pid, checked_in: false });
        KERN_SUCCESS
    }

    fn bootstrap_look_up(&mut self, task_id: TaskId, bp: MachPortName, service: &str) -> (u32, MachPortName) {
        if let Err(kr) = self.check_bootstrap(task_id, bp, service) {
            return (kr, 0);
        }
        let Some(port) = self.services.get(service).map(|s| s.port) else {
            return (BOOTSTRAP_UNKNOWN_SERVICE, 0);
        };
        match self.copyout_right(task_id, Right::new(port, Kind::Send), MACH_PORT_NULL) {
            Some(name) if name != MACH_PORT_DEAD => (KERN_SUCCESS, name),
            Some(_) => (BOOTSTRAP_UNKNOWN_SERVICE, 0),
            None => (KERN_NO_SPACE, 0),
        }
    }

    // ---- introspection and log ---------------------------------------------

    fn reply(&mut self, conn: ConnId, reply: Reply) {
        self.out.push(Outgoing::Reply { conn, reply, fds: Vec::new() });
    }

    fn log(&mut self, task: Option<TaskId>, text: String) {
        let (pid, name) = task.and_then(|t| self.tasks.get(&t)).map_or((0, String::new()), |t| (t.pid, t.name.clone()));
        self.log_as(pid, &name, text);
    }

    fn log_as(&mut self, pid: i32, task: &str, text: String) {
        if self.limits.log_lines == 0 {
            return;
        }
        while self.log.len() >= self.limits.log_lines {
            self.log.pop_front();
        }
        self.log_seq += 1;
        self.log.push_back(LogEntry { seq: self.log_seq, at_ms: self.now, pid, task: task.to_string(), text });
    }

    fn send_state(&mut self, conn: ConnId) {
        let json = match serde_json::to_vec(&self.state()) {
            Ok(j) => j,
            Err(e) => {
                self.reply(conn, Reply::ProtocolError { message: format!("state not serialisable: {e}") });
                return;
            }
        };
        let mut chunks = json.chunks(MAX_STATE_CHUNK).peekable();
        if chunks.peek().is_none() {
            self.reply(conn, Reply::StateChunk { last: true, data: Vec::new() });
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.out.push(Outgoing::Reply {
                conn,
                reply: Reply::StateChunk { last, data: chunk.to_vec() },
                fds: Vec::new(),
            });
        }
    }

    /// The whole state, as an observer sees it.
    pub fn state(&self) -> KernelState {
        let tasks = self
            .tasks
            .iter()
            .map(|(id, t)| TaskState {
                id: *id,
                pid: t.pid,
                name: t.name.clone(),
                task_self: t.task_self,
                bootstrap: t.bootstrap,
                threads: t
                    .threads
                    .iter()
                    .map(|c| {
                        let th = self.threads.get(c);
                        ThreadState {
                            thread: *c,
                            blocked: th.and_then(|th| match &th.pending {
                                Pending::Idle => None,
                                Pending::Send(bs) => Some(BlockedState {
                                    call: BlockedCall::Send,
                                    port: bs.port,
                                    name: bs.dest_name,
                                    since_ms: bs.since,
                                    deadline_ms: bs.deadline,
                                }),
                                Pending::Receive(br) => Some(BlockedState {
                                    call: BlockedCall::Receive,
                                    port: br.port,
                                    name: br.name,
                                    since_ms: br.since,
                                    deadline_ms: br.deadline,
                                }),
                            }),
                            cached_msg: th.and_then(|th| th.cached),
                        }
                    })
                    .collect(),
                names: t
                    .space
                    .entries
                    .iter()
                    .map(|(name, e)| NameState {
                        name: *name,
                        port: e.port,
                        receive: e.receive,
                        send_urefs: e.send,
                        send_once: e.send_once,
                        dead_name_urefs: e.dead,
                        dead_name_request: e.dn_request.is_some(),
                    })
                    .collect(),
            })
            .collect();
        let waiting = |conns: &VecDeque<ConnId>| -> Vec<WaitingThreadState> {
            conns
                .iter()
                .filter_map(|c| {
                    let th = self.threads.get(c)?;
                    let pid = self.tasks.get(&th.task).map_or(0, |t| t.pid);
                    let (since_ms, deadline_ms, msgh_id, msgh_size) = match &th.pending {
                        Pending::Send(bs) => (bs.since, bs.deadline, Some(bs.kmsg.msgh_id), Some(bs.kmsg.size)),
                        Pending::Receive(br) => (br.since, br.deadline, None, None),
                        Pending::Idle => (0, None, None, None),
                    };
                    Some(WaitingThreadState {
                        task: th.task,
                        pid,
                        thread: *c,
                        since_ms,
                        deadline_ms,
                        msgh_id,
                        msgh_size,
                    })
                })
                .collect()
        };
        let ports = self
            .ports
            .iter()
            .map(|(id, p)| PortState {
                id: *id,
                receiver: match &p.receiver {
                    Receiver::Task { task, name } => ReceiverState::Task { task: *task, name: *name },
                    Receiver::InTransit { dest } => ReceiverState::InTransit { dest: *dest },
                    Receiver::Bootstrap => ReceiverState::Kernel { object: "bootstrap".into() },
                    Receiver::TaskSelf(t) => ReceiverState::Kernel { object: format!("task:{t}") },
                },
                qlimit: p.qlimit,
                seqno: p.seqno,
                mscount: p.mscount,
                queue_len: p.queue.len(),
                queue: p
                    .queue
                    .iter()
                    .take(MAX_LISTED_MESSAGES)
                    .map(|k| QueuedMsgState {
                        msg_id: k.id,
                        msgh_id: k.msgh_id,
                        msgh_size: k.size,
                        msgh_bits: mach_msgh_bits(k.reply.map_or(0, |r| r.kind.type_name()), k.dest.kind.type_name())
                            | if k.complex { MACH_MSGH_BITS_COMPLEX } else { 0 },
                        sender_pid: k.sender.map_or(0, |s| s.pid),
                        sender_task: k.sender.map(|s| s.task),
                        reply_type: k.reply.map_or(0, |r| r.kind.type_name()),
                        rights: k.items.iter().filter(|i| matches!(i, Item::Port { right: Some(_), .. })).count()
                            as u32,
                        ool_bytes: k.ool_bytes(),
                        enqueued_ms: k.enqueued_ms,
                        to_send_once: k.dest.kind == Kind::SendOnce,
                        cached: k.marequest.is_some(),
                        notification: k.sender.is_none(),
                    })
                    .collect(),
                blocked_senders: waiting(&p.blocked_senders),
                blocked_receivers: waiting(&p.blocked_receivers),
            })
            .collect();
        let bootstrap = self
            .services
            .iter()
            .map(|(name, s)| ServiceState {
                name: name.clone(),
                port: s.port,
                registered_by_task: s.task,
                registered_by_pid: s.pid,
                checked_in: s.checked_in,
            })
            .collect();
        KernelState {
            now_ms: self.now,
            tasks,
            ports,
            bootstrap,
            counters: self.counters.clone(),
            log: self.log.iter().cloned().collect(),
        }
    }

    /// Checks the kernel's invariants; the error says which one broke.
    pub fn check_invariants(&self) -> Result<(), String> {
        // Receive rights: each live port has exactly one holder.
        let mut receive_holders: BTreeMap<PortId, usize> = BTreeMap::new();
        for (tid, t) in &self.tasks {
            for (name, e) in &t.space.entries {
                let kinds = usize::from(e.receive || e.send > 0) + usize::from(e.send_once) + usize::from(e.dead > 0);
                if kinds != 1 {
                    return Err(format!("task {tid} name {name:#x}: malformed entry {e:?}"));
                }
                if e.send > MACH_PORT_UREFS_MAX || e.dead > MACH_PORT_UREFS_MAX {
                    return Err(format!("task {tid} name {name:#x}: urefs over the maximum"));
                }
                if e.dead > 0 {
                    if e.port.is_some_and(|p| self.ports.contains_key(&p)) {
                        return Err(format!("task {tid} name {name:#x}: dead name of a live port"));
                    }
                    if e.dn_request.is_some() {
                        return Err(format!("task {tid} name {name:#x}: request left on a dead name"));
                    }
                    continue;
                }
                let Some(p) = e.port else {
                    return Err(format!("task {tid} name {name:#x}: right without a port"));
                };
                let Some(port) = self.ports.get(&p) else {
                    return Err(format!("task {tid} name {name:#x}: right to dead port {p}"));
                };
                if e.receive {
                    *receive_holders.entry(p).or_default() += 1;
                    if port.receiver != (Receiver::Task { task: *tid, name: *name }) {
                        return Err(format!(
                            "port {p}: receiver {:?} but task {tid} holds it as {name:#x}",
                            port.receiver
                        ));
                    }
                }
            }
            let coalesced: Vec<PortId> = t
                .space
                .entries
                .values()
                .filter(|e| e.dead == 0 && (e.receive || e.send > 0))
                .filter_map(|e| e.port)
                .collect();
            let mut sorted = coalesced.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != coalesced.len() {
                return Err(format!("task {tid}: a port's send/receive rights under two names"));
            }
            for c in &t.threads {
                if self.threads.get(c).map(|th| th.task) != Some(*tid) {
                    return Err(format!("task {tid}: thread {c} not registered"));
                }
            }
        }
        let mut in_transit: BTreeMap<PortId, usize> = BTreeMap::new();
        let mut msgs = 0usize;
        let mut bytes = 0usize;
        let mut ool = 0usize;
        let mut count = |k: &Kmsg<F>, in_transit: &mut BTreeMap<PortId, usize>| {
            msgs += 1;
            bytes += k.body.len();
            ool += k.ool_objects();
            for r in k.rights().filter(|r| r.kind == Kind::Receive) {
                *in_transit.entry(r.port).or_default() += 1;
            }
        };
        for (id, port) in &self.ports {
            port.queue.iter().for_each(|k| count(k, &mut in_transit));
            let ordinary = port.queue.iter().filter(|k| k.dest.kind != Kind::SendOnce && k.marequest.is_none()).count();
            if ordinary > port.qlimit as usize && !port.over_lowered_limit {
                return Err(format!("port {id}: {ordinary} ordinary messages over qlimit {}", port.qlimit));
            }
            if !port.blocked_senders.is_empty() && !port.is_full() {
                return Err(format!("port {id}: senders wait although the queue has room"));
            }
            if !port.blocked_receivers.is_empty() && !port.queue.is_empty() {
                return Err(format!("port {id}: receivers wait although messages are queued"));
            }
            for c in &port.blocked_senders {
                match self.threads.get(c).map(|t| &t.pending) {
                    Some(Pending::Send(bs)) if bs.port == *id => {}
                    _ => return Err(format!("port {id}: blocked sender {c} is not waiting on it")),
                }
            }
            for c in &port.blocked_receivers {
                match self.threads.get(c).map(|t| &t.pending) {
                    Some(Pending::Receive(br)) if br.port == *id => {}
                    _ => return Err(format!("port {id}: blocked receiver {c} is not waiting on it")),
                }
            }
        }
        for (c, th) in &self.threads {
            if !self.tasks.get(&th.task).is_some_and(|t| t.threads.contains(c)) {
                return Err(format!("thread {c}: task {} does not list it", th.task));
            }
            match &th.pending {
                Pending::Send(bs) => {
                    count(&bs.kmsg, &mut in_transit);
                    if !self.ports.get(&bs.port).is_some_and(|p| p.blocked_senders.contains(c)) {
                        return Err(format!("thread {c}: blocked send not listed on port {}", bs.port));
                    }
                }
                Pending::Receive(br) => {
                    if !self.ports.get(&br.port).is_some_and(|p| p.blocked_receivers.contains(c)) {
                        return Err(format!("thread {c}: blocked receive not listed on port {}", br.port));
                    }
                }
                Pending::Idle => {}
            }
            if let Some(id) = th.cached {
                let found = self
                    .ports
                    .values()
                    .flat_map(|p| p.queue.iter())
                    .any(|k| k.id == id && k.marequest.is_some_and(|m| m.thread == *c));
                if !found {
                    return Err(format!("thread {c}: cached message {id} not pending in any queue"));
                }
            }
        }
        if (msgs, bytes, ool) != (self.alive_msgs, self.alive_bytes, self.alive_ool) {
            return Err(format!(
                "accounting: counted {msgs} msgs/{bytes} B/{ool} OOL, books say {}/{}/{}",
                self.alive_msgs, self.alive_bytes, self.alive_ool
            ));
        }
        for (id, port) in &self.ports {
            let holders = receive_holders.get(id).copied().unwrap_or(0);
            let travelling = in_transit.get(id).copied().unwrap_or(0);
            let ok = match port.receiver {
                Receiver::Task { .. } => holders == 1 && travelling == 0,
                Receiver::InTransit { .. } => holders == 0 && travelling == 1,
                Receiver::Bootstrap | Receiver::TaskSelf(_) => holders == 0 && travelling == 0,
            };
            if !ok {
                return Err(format!(
                    "port {id}: receiver {:?}, {holders} holders, {travelling} in transit",
                    port.receiver
                ));
            }
            if let Receiver::TaskSelf(t) = port.receiver {
                if !self.tasks.contains_key(&t) {
                    return Err(format!("port {id}: task port of dead task {t}"));
                }
            }
        }
        for (name, s) in &self.services {
            if !self.ports.contains_key(&s.port) {
                return Err(format!("service {name}: port {} is dead", s.port));
            }
        }
        if !self.doomed.is_empty() {
            return Err("ports left to destroy".into());
        }
        Ok(())
    }
}

fn too_large_header<F>(kmsg: &Kmsg<F>, dest_name: MachPortName) -> ReceivedMessage {
    ReceivedMessage {
        header: MsgHeader {
            bits: 0,
            size: kmsg.size,
            remote_port: MACH_PORT_NULL,
            local_port: dest_name,
            voucher_port: 0,
            id: kmsg.msgh_id,
        },
        ..ReceivedMessage::default()
    }
}

fn describe_mach_msg(req: &MachMsgRequest) -> String {
    let mut s = format!("mach_msg({}", options_name(req.options));
    if req.options & MACH_SEND_MSG != 0 {
        let h = &req.header;
        let _ = write!(s, ", dest={:#x}", h.remote_port);
        if h.local_port != MACH_PORT_NULL {
            let _ = write!(s, ", reply={:#x} {}", h.local_port, disposition_name(mach_msgh_bits_local(h.bits)));
        }
        let _ = write!(s, ", msgh_id={}", h.id);
        if req.options & MACH_SEND_TIMEOUT != 0 {
            let _ = write!(s, ", timeout={}", req.send_timeout);
        }
        if req.options & MACH_SEND_NOTIFY != 0 {
            let _ = write!(s, ", notify={:#x}", req.notify);
        }
    }
    if req.options & MACH_RCV_MSG != 0 {
        let _ = write!(s, ", rcv_name={:#x}", req.rcv_name);
        if req.options & MACH_RCV_TIMEOUT != 0 {
            let _ = write!(s, ", rcv_timeout={}", req.rcv_timeout);
        }
    }
    s.push(')');
    s
}

fn name_suffix(kr: u32, name: MachPortName) -> String {
    if kr == KERN_SUCCESS {
        format!(" /* {name:#x} */")
    } else {
        String::new()
    }
}

fn flavor_name(flavor: u32) -> String {
    match flavor {
        MACH_PORT_LIMITS_INFO => "MACH_PORT_LIMITS_INFO".into(),
        MACH_PORT_RECEIVE_STATUS => "MACH_PORT_RECEIVE_STATUS".into(),
        other => other.to_string(),
    }
}

/// Service names come from tasks: keep control characters off the screen.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
