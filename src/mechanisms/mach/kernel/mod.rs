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
//! queue and notifying when it is accepted — the kernel's [`Personality`]
//! decides: the textbook's rule under GNU Mach's names (the default), GNU
//! Mach's own rule, or XNU's send-possible notification. Deviations are
//! listed in [`crate::mechanisms::mach`].
//!
//! Every queue, name space and table is bounded by [`Limits`]; running into
//! a limit returns `KERN_NO_SPACE`, `KERN_RESOURCE_SHORTAGE` or
//! `MACH_SEND_NO_BUFFER` instead of growing.
//!
//! The kernel's parts, each beside the objects it owns, with an
//! `impl Kernel` block of its own; imports run one way, from the calls
//! down to the records:
//! - `space`: rights, name entries and a task's name space; copyin and
//!   copyout of one right.
//! - `kmsg`: a message's life — accounting, delivery to a receiver, the
//!   pseudo-receive of a failed send, destruction, kernel notifications.
//! - `thread`: a task's thread and the call it is blocked in.
//! - `port`: ports — creation, death, rights copied out or released.
//! - `task`: tasks — registration, joining threads, exit.
//! - `mqueue`: a port's queue — enqueue, and what a dequeue frees.
//! - `mach_msg`: the call itself, its receive half, timeouts; `send`: its
//!   send half.
//! - `port_calls`: `mach_port_*`; `bootstrap`: the bootstrap server.
//! - `introspect`: the log and the state an observer receives;
//!   `invariants`: the checks tests run after every step.

use std::collections::{BTreeMap, VecDeque};

use super::proto::{Reply, Request};
use super::state::{Counters, LogEntry};
use super::types::*;
use crate::mechanisms::ekernel::transport::PeerCred;

mod bootstrap;
mod introspect;
mod invariants;
mod kmsg;
mod kobject;
mod mach_msg;
mod mqueue;
mod personality;
mod port;
mod port_calls;
mod send;
mod space;
mod task;
mod thread;

use bootstrap::Service;
pub use personality::Personality;
use port::{Port, Receiver};
use task::Task;
use thread::{Pending, Thread};

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
/// its usable length as the server measured it: `None` if it is neither a
/// sealed memfd nor a pool and must not be mapped by a receiver.
#[derive(Debug)]
pub struct Attachment<F> {
    pub len: Option<u64>,
    pub handle: F,
    /// A task's pool (writable, sealed against shrinking and growing): only
    /// a region of it sent with `deallocate` may travel as is.
    pub pool: bool,
    /// The server copied a pool region into this sealed snapshot (a send
    /// without `deallocate`); counted as copied, not mapped.
    pub copied: bool,
}

impl<F> Attachment<F> {
    /// A sealed memfd (or a test stand-in) of `len` usable bytes.
    pub fn sealed(len: Option<u64>, handle: F) -> Attachment<F> {
        Attachment { len, handle, pool: false, copied: false }
    }
}

/// A packet for the server to send, or a connection to close.
#[derive(Debug)]
pub enum Outgoing<F> {
    Reply { conn: ConnId, reply: Reply, fds: Vec<F> },
    Close { conn: ConnId },
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
    /// Whose rules a full queue with `MACH_SEND_NOTIFY` follows, since when
    /// (ms), and the counters at that moment.
    personality: Personality,
    personality_since: u64,
    personality_base: Counters,
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
            personality: Personality::default(),
            personality_since: 0,
            personality_base: Counters::default(),
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

    /// The deadline of a wait of `ms` starting now.
    pub(super) fn deadline_after(&self, ms: u32) -> u64 {
        crate::mechanisms::ekernel::deadline(self.now, ms)
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
            Request::SetPersonality { personality } => self.set_personality_request(conn, None, personality),
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
            Request::SetPersonality { personality } => self.set_personality_request(conn, Some(task), personality),
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
                let (kr, previous) =
                    self.port_request_notification(task, name, msgid, sync, notify, notify_disposition);
                let what = self.note_name(msgid).map(str::to_string).unwrap_or_else(|| msgid.to_string());
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

    fn reply(&mut self, conn: ConnId, reply: Reply) {
        self.out.push(Outgoing::Reply { conn, reply, fds: Vec::new() });
    }
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
mod tests;
