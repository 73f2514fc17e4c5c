//! The emulated NT ALPC port object manager as a pure state machine.
//!
//! No I/O and no clock: the caller passes `now` (milliseconds on any
//! monotonic scale) and performs the [`Outgoing`] actions the kernel returns.
//! A call that blocks in NT (connect, receive, a synchronous request) returns
//! nothing for its caller now; its response appears later in the output of
//! whichever call or [`AlpcKernel::tick`] completes it.
//!
//! Each kernel connection is one emulated process with one thread: handles
//! belong to it, and a reply is addressed to it (NT addresses replies to a
//! thread, matched by `MessageId`).
//!
//! Where the messages live follows NT, not the textbook's drawing:
//! client→server messages queue on the *connection* port (tagged by the
//! channel's PortContext), a request a server took waits on the connection
//! port's pending list until replied, server→client messages queue on the
//! client communication port, and replies go straight to the waiting thread.
//!
//! The object manager's parts, each an `impl AlpcKernel` block of its own
//! over the records in `objects`; imports run one way, from the calls down
//! to the records:
//! - `objects`: processes, ports, channels, sections, messages and waits.
//! - `connect`: creating a port, connecting, accepting or refusing.
//! - `message`: `NtAlpcSendWaitReceivePort` — requests, datagrams,
//!   callbacks, replies and receiving.
//! - `queue`: pool charges, queues and the pending list; delivery; undoing
//!   a wait.
//! - `section`: sections and their views.
//! - `direct`: `NtReadRequestData` / `NtWriteRequestData`.
//! - `teardown`: closing handles, broken channels, deleted ports.
//! - `process`: a process's handle table; `output`: responses, counters
//!   and the log; `describe`: calls and results as log lines.
//! - `introspect`: the state an observer receives; `invariants`: the checks
//!   tests run after every step.

use std::collections::{BTreeMap, VecDeque};

use super::proto::{Request, Response, ResponseBody};
use super::state::PathCounters;
use super::types::{ClientId, NtStatus, PORT_DATA_ENTRY_SIZE, PORT_DATA_INFORMATION_SIZE, PORT_MESSAGE_SIZE};

mod connect;
mod describe;
mod direct;
mod introspect;
mod invariants;
mod message;
mod objects;
mod output;
mod process;
mod queue;
mod section;
mod teardown;

use describe::{client_text, describe_body, describe_wait, printable};
use introspect::trim_state;
use objects::{
    Blocked, CallResult, Channel, ChannelId, ConnectRequest, ConnectionPort, Flow, HandleTarget, PendingRequest,
    PortId, Process, Section, Side,
};

/// Identifies one process connection to the kernel.
pub type ConnId = u64;
/// Milliseconds on the caller's monotonic clock.
pub type Millis = u64;
/// Kernel-wide id of a section object (the I/O layer keeps its memfd).
pub type SectionId = u64;

/// Largest `small_max` that still lets header + payload + data information
/// fit ALPC's 16-bit `TotalLength`.
pub const SMALL_MAX_CEILING: u32 = 0xFFFF
    - PORT_MESSAGE_SIZE
    - PORT_DATA_INFORMATION_SIZE
    - PORT_DATA_ENTRY_SIZE * super::proto::MAX_DATA_ENTRIES as u32;

/// Connection data is clamped to LPC's x86 `MaxConnectionInfoLength`
/// (0x104), silently, as NT clamps it.
pub const MAX_CONNECTION_INFO: usize = 0x104;

/// Hard limits on everything a process can make the kernel allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_processes: usize,
    pub max_handles_per_process: usize,
    pub max_connection_ports: usize,
    pub max_channels: usize,
    pub max_connection_requests_per_port: usize,
    /// Backstop over all queues together, on top of each port's pool quota.
    pub max_messages_total: usize,
    pub max_section_size: u64,
    pub max_total_section_bytes: u64,
    pub max_views_per_section: usize,
    /// Nested waits per thread (a request plus the callbacks inside it).
    pub max_nesting: usize,
    /// Largest single `NtReadRequestData` / `NtWriteRequestData`.
    pub max_direct_transfer: u64,
    /// Largest direct window a process may ask for (`MapDirectWindow`).
    pub max_direct_window: u64,
    pub max_pool_usage_ceiling: u64,
    pub log_lines: usize,
    /// Largest introspection JSON; it must fit one transport packet.
    pub max_state_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_processes: 64,
            max_handles_per_process: 256,
            max_connection_ports: 64,
            max_channels: 256,
            max_connection_requests_per_port: 64,
            max_messages_total: 4096,
            max_section_size: 16 << 20,
            max_total_section_bytes: 256 << 20,
            max_views_per_section: 256,
            max_nesting: 8,
            max_direct_transfer: 64 << 20,
            max_direct_window: 16 << 20,
            max_pool_usage_ceiling: 16 << 20,
            log_lines: 200,
            max_state_bytes: 200 << 10,
        }
    }
}

/// Which NT's rules the kernel follows (`alpc.personality`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Personality {
    /// The notes' (LPC's) rules: `small_max` inline, sections only at connect.
    #[default]
    Lpc,
    /// Vista+ ALPC: inline up to 64 KiB less the header, and a section may
    /// be created on a connected port at any time.
    Alpc,
}

impl Personality {
    pub fn name(self) -> &'static str {
        match self {
            Personality::Lpc => "lpc",
            Personality::Alpc => "alpc",
        }
    }

    /// As `alpc.personality` stores it (its index in `ALPC_PERSONALITIES`).
    pub fn from_knob(v: u64) -> Self {
        if v == 1 {
            Personality::Alpc
        } else {
            Personality::Lpc
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    pub kernel_pid: u32,
    /// `alpc.small_max`: largest payload copied through a queue (the notes' 256).
    pub small_max: u32,
    /// `alpc.personality`; switched at run time by [`AlpcKernel::set_personality`].
    pub personality: Personality,
    /// `alpc.max_pool_usage`: default pool quota of a port, in bytes.
    pub max_pool_usage: u64,
    pub limits: Limits,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            kernel_pid: 0,
            small_max: 256,
            personality: Personality::Lpc,
            max_pool_usage: 64 << 10,
            limits: Limits::default(),
        }
    }
}

/// Which way a direct copy goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyDirection {
    /// `NtReadRequestData`: client memory → server buffer.
    ReadFromClient,
    /// `NtWriteRequestData`: server buffer → client memory.
    WriteToClient,
}

/// A copy between two processes' address spaces the I/O layer must perform
/// (with `process_vm_readv` / `process_vm_writev`) and then report with
/// [`AlpcKernel::complete_direct_copy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectCopy {
    pub conn: ConnId,
    pub direction: CopyDirection,
    pub client_pid: u32,
    pub client_address: u64,
    pub server_pid: u32,
    pub server_address: u64,
    pub length: u64,
}

/// What the I/O layer must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Create backing memory (a memfd) of `size` bytes for a new section.
    /// Always precedes the first `Respond` that attaches it.
    CreateSection {
        section: SectionId,
        size: u64,
    },
    /// Send `response`; `attach[i]` is the section whose fd goes with
    /// `response.sections[i]`.
    Respond {
        conn: ConnId,
        response: Response,
        attach: Vec<SectionId>,
    },
    DirectCopy(DirectCopy),
    /// The section object is gone; drop its backing.
    ReleaseSection {
        section: SectionId,
    },
    /// Make (or remake) `conn`'s direct window: a memfd of `size` bytes the
    /// I/O layer maps too. Precedes the `Respond` that carries it.
    CreateWindow {
        conn: ConnId,
        size: u64,
    },
    /// `conn` mapped its window at `base`.
    WindowMapped {
        conn: ConnId,
        base: u64,
    },
}

/// The emulated port object manager.
#[derive(Debug)]
pub struct AlpcKernel {
    config: KernelConfig,
    now: Millis,
    processes: BTreeMap<ConnId, Process>,
    directory: BTreeMap<String, PortId>,
    ports: BTreeMap<PortId, ConnectionPort>,
    channels: BTreeMap<ChannelId, Channel>,
    sections: BTreeMap<SectionId, Section>,
    connects: BTreeMap<u32, ConnectRequest>,
    pending: BTreeMap<u32, PendingRequest>,
    next_object: u64,
    next_message_id: u32,
    next_callback_id: u32,
    live_messages: usize,
    total_section_bytes: u64,
    totals: PathCounters,
    log: VecDeque<String>,
    /// While a call is dispatched, lines of the calls it completes wait
    /// here, so the log shows the cause (e.g. the accept) before its effect
    /// (the client's connect returning).
    deferred_log: Option<Vec<String>>,
    calls_total: u64,
    out: Vec<Outgoing>,
}

impl AlpcKernel {
    pub fn new(mut config: KernelConfig) -> Self {
        config.small_max = config.small_max.clamp(1, SMALL_MAX_CEILING);
        config.max_pool_usage = config.max_pool_usage.clamp(1, config.limits.max_pool_usage_ceiling);
        AlpcKernel {
            config,
            now: 0,
            processes: BTreeMap::new(),
            directory: BTreeMap::new(),
            ports: BTreeMap::new(),
            channels: BTreeMap::new(),
            sections: BTreeMap::new(),
            connects: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_object: 1,
            next_message_id: 1,
            next_callback_id: 1,
            live_messages: 0,
            total_section_bytes: 0,
            totals: PathCounters::default(),
            log: VecDeque::new(),
            deferred_log: None,
            calls_total: 0,
            out: Vec::new(),
        }
    }

    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// Registers a new connection as a process whose pid the transport
    /// verified. Until `Hello` the thread id is taken to be the pid.
    pub fn attach(&mut self, conn: ConnId, pid: u32) -> Result<(), NtStatus> {
        if self.processes.contains_key(&conn) {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        if self.processes.len() >= self.config.limits.max_processes {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        self.processes.insert(
            conn,
            Process {
                client_id: ClientId { unique_process: pid, unique_thread: pid },
                name: String::new(),
                handles: BTreeMap::new(),
                next_handle: 4,
                blocked: None,
                reply_stack: Vec::new(),
                serving_callbacks: Vec::new(),
                direct_access_granted: false,
                release_on_next_call: Vec::new(),
            },
        );
        Ok(())
    }

    /// Handles one decoded call from `conn`.
    pub fn handle(&mut self, conn: ConnId, call_id: u32, request: Request, now: Millis) -> Vec<Outgoing> {
        self.now = self.now.max(now);
        self.calls_total += 1;
        let Some(process) = self.processes.get(&conn) else {
            self.respond(conn, Response::status(call_id, NtStatus::STATUS_UNSUCCESSFUL), Vec::new());
            return self.take_out();
        };
        let text = format!("[{}] {}", client_text(process.client_id), self.describe(conn, &request));
        if process.blocked.is_some() {
            // One connection is one thread, and a blocked thread cannot call.
            // The blocked call stays as it is.
            self.log_line(format!("{text} = STATUS_INVALID_PARAMETER (thread is blocked in another call)"));
            self.respond(conn, Response::status(call_id, NtStatus::STATUS_INVALID_PARAMETER), Vec::new());
            return self.take_out();
        }
        self.release_views_after_use(conn);
        // An observer samples the state many times a second; logging those
        // samples would push every real call out of the ring.
        let quiet = matches!(request, Request::QueryState);
        self.deferred_log = Some(Vec::new());
        let flow = self.dispatch(conn, request).unwrap_or_else(Flow::status);
        let effects = self.deferred_log.take().unwrap_or_default();
        match flow {
            Flow::Done { status, body, attach } => {
                if !quiet {
                    self.log_line(format!("{text} = {status}{}", describe_body(&body)));
                }
                self.respond_with(conn, call_id, status, body, attach);
            }
            Flow::Blocked { wait, deadline } => {
                self.log_line(format!("{text} … {}", describe_wait(&wait)));
                if let Some(p) = self.processes.get_mut(&conn) {
                    p.blocked = Some(Blocked { call_id, wait, deadline, call_text: text, since: self.now });
                }
            }
        }
        for line in effects {
            self.log_line(line);
        }
        self.take_out()
    }

    /// Answers a packet that could not be decoded: the process gets an error
    /// status and the kernel stays as it was.
    pub fn reject_malformed(&mut self, conn: ConnId, call_id: u32, reason: &str) -> Vec<Outgoing> {
        self.calls_total += 1;
        let who = self.processes.get(&conn).map(|p| client_text(p.client_id)).unwrap_or_default();
        self.log_line(format!("[{who}] <malformed call: {}> = STATUS_INVALID_PARAMETER", printable(reason)));
        self.respond(conn, Response::status(call_id, NtStatus::STATUS_INVALID_PARAMETER), Vec::new());
        self.take_out()
    }

    /// Expires timed-out waits.
    pub fn tick(&mut self, now: Millis) -> Vec<Outgoing> {
        self.now = self.now.max(now);
        let expired: Vec<ConnId> = self
            .processes
            .iter()
            .filter(|(_, p)| p.blocked.as_ref().and_then(|b| b.deadline).is_some_and(|d| d <= self.now))
            .map(|(&c, _)| c)
            .collect();
        for conn in expired {
            self.cancel_wait(conn);
            self.complete(conn, NtStatus::STATUS_TIMEOUT, ResponseBody::None, Vec::new());
        }
        self.take_out()
    }

    /// The earliest deadline of any blocked call.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.processes.values().filter_map(|p| p.blocked.as_ref().and_then(|b| b.deadline)).min()
    }

    /// The process behind `conn` is gone: close all its handles, as NT does
    /// when a process exits, and wake whoever waited on it.
    pub fn disconnect(&mut self, conn: ConnId, now: Millis) -> Vec<Outgoing> {
        self.now = self.now.max(now);
        let Some(process) = self.processes.get(&conn) else { return Vec::new() };
        self.log_line(format!(
            "[{}] process exit: closing {} handles",
            client_text(process.client_id),
            process.handles.len()
        ));
        self.cancel_wait(conn);
        if let Some(p) = self.processes.get_mut(&conn) {
            p.blocked = None;
        }
        let handles: Vec<u32> =
            self.processes.get(&conn).map(|p| p.handles.keys().copied().collect()).unwrap_or_default();
        for handle in handles {
            self.close_handle(conn, handle);
        }
        // Requests this process had taken but not answered can never be
        // answered now: their senders' replies are lost.
        let held: Vec<u32> = self.pending.iter().filter(|(_, r)| r.held_by == conn).map(|(&id, _)| id).collect();
        for message_id in held {
            self.drop_pending(message_id, true);
        }
        self.release_views_after_use(conn);
        self.processes.remove(&conn);
        self.take_out()
    }

    /// Size of a section, for the I/O layer.
    pub fn section_size(&self, section: SectionId) -> Option<u64> {
        self.sections.get(&section).map(|s| s.size)
    }

    /// The largest message a port created now may carry: `small_max`
    /// under LPC, just under 64 KiB under ALPC.
    pub fn system_max_message(&self) -> u32 {
        match self.config.personality {
            Personality::Lpc => self.config.small_max,
            Personality::Alpc => SMALL_MAX_CEILING,
        }
    }

    /// Switches the rules at run time. Connection ports created with the
    /// default limit take the new one; channels keep the limit they were
    /// made with (a client connects anew to get the other).
    pub fn set_personality(&mut self, personality: Personality) {
        if personality == self.config.personality {
            return;
        }
        self.config.personality = personality;
        let max = self.system_max_message();
        for port in self.ports.values_mut().filter(|p| p.attributes.max_message_length == 0) {
            port.max_message_length = max;
        }
        self.totals.personality_switches += 1;
        self.log_line(format!(
            "personality {} (ipcscope's switch, no real NT has one): messages up to {max} bytes inline{}",
            personality.name(),
            match personality {
                Personality::Lpc => ", sections only at connect",
                Personality::Alpc => ", sections on a connected port at any time",
            }
        ));
    }

    /// Called when a section's backing memory could not be created: the
    /// section object is deleted, so its handles stop working.
    pub fn revoke_section(&mut self, section: SectionId) -> Vec<Outgoing> {
        if self.sections.contains_key(&section) {
            self.log_line(format!("section {section}: backing memory could not be created; section deleted"));
            self.delete_section(section);
        }
        self.take_out()
    }

    // ------------------------------------------------------------ dispatch

    fn dispatch(&mut self, conn: ConnId, request: Request) -> CallResult {
        match request {
            Request::Hello { tid, name } => {
                let p = self.process_mut(conn)?;
                if tid != 0 {
                    p.client_id.unique_thread = tid;
                }
                p.name = name.chars().filter(|c| !c.is_control()).collect();
                Ok(Flow::ok(ResponseBody::Hello {
                    kernel_pid: self.config.kernel_pid,
                    small_max: self.config.small_max,
                }))
            }
            Request::NtAlpcCreatePort { name, attributes } => self.create_port(conn, name, attributes),
            Request::NtAlpcConnectPort { name, attributes, client_section_size, connection_data, timeout_ms } => {
                self.connect_port(conn, &name, attributes, client_section_size, connection_data, timeout_ms)
            }
            Request::NtAlpcAcceptConnectPort {
                connection_port,
                message_id,
                accept,
                port_context,
                server_section_size,
                connection_data,
            } => self.accept_connect_port(
                conn,
                connection_port,
                message_id,
                accept,
                port_context,
                server_section_size,
                connection_data,
            ),
            Request::NtAlpcSendWaitReceivePort { port, flags, send, receive, timeout_ms } => {
                self.send_wait_receive(conn, port, flags, send, receive, timeout_ms)
            }
            Request::NtAlpcCreatePortSection { port, size } => self.create_port_section(conn, port, size),
            Request::NtAlpcCreateSectionView { port, section, size, mapping_base, flags } => {
                self.create_section_view(conn, port, section, size, mapping_base, flags)
            }
            Request::NtAlpcDeleteSectionView { port, section, offset } => {
                self.delete_section_view(conn, port, section, offset)
            }
            Request::NtReadRequestData { port, message_id, index, buffer, length } => {
                self.request_data(conn, port, message_id, index, buffer, length, CopyDirection::ReadFromClient)
            }
            Request::NtWriteRequestData { port, message_id, index, buffer, length } => {
                self.request_data(conn, port, message_id, index, buffer, length, CopyDirection::WriteToClient)
            }
            Request::NtAlpcDisconnectPort { port, flags: _ } => {
                match self.lookup(conn, port)? {
                    HandleTarget::ServerCommPort(ch) => self.disconnect_channel(ch, Side::Server),
                    HandleTarget::ClientCommPort(ch) => self.disconnect_channel(ch, Side::Client),
                    HandleTarget::ConnectionPort(_) => return Err(NtStatus::STATUS_INVALID_PORT_HANDLE),
                    HandleTarget::Section(_) => return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH),
                }
                Ok(Flow::ok(ResponseBody::None))
            }
            Request::NtClose { handle } => {
                self.lookup(conn, handle)?;
                self.close_handle(conn, handle);
                Ok(Flow::ok(ResponseBody::None))
            }
            Request::GrantDirectAccess { granted } => {
                self.process_mut(conn)?.direct_access_granted = granted;
                Ok(Flow::ok(ResponseBody::None))
            }
            Request::MapDirectWindow { size, mapping_base } => self.map_direct_window(conn, size, mapping_base),
            Request::QueryState => {
                let max = self.config.limits.max_state_bytes;
                let mut state = self.state();
                let mut json = serde_json::to_string(&state).map_err(|_| NtStatus::STATUS_UNSUCCESSFUL)?;
                if json.len() > max {
                    // Long queues and logs are what grows; keep their heads,
                    // which is what a panel draws anyway.
                    trim_state(&mut state, 8);
                    json = serde_json::to_string(&state).map_err(|_| NtStatus::STATUS_UNSUCCESSFUL)?;
                }
                if json.len() > max {
                    return Err(NtStatus::STATUS_BUFFER_TOO_SMALL);
                }
                Ok(Flow::ok(ResponseBody::State(json)))
            }
        }
    }

    fn new_object_id(&mut self) -> u64 {
        let id = self.next_object;
        self.next_object += 1;
        id
    }

    /// NT's global MessageId counter, skipping 0 on wrap.
    fn new_message_id(&mut self) -> u32 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    fn new_callback_id(&mut self) -> u32 {
        let id = self.next_callback_id;
        self.next_callback_id = self.next_callback_id.wrapping_add(1).max(1);
        id
    }

    fn deadline(&self, timeout_ms: Option<u32>) -> Option<Millis> {
        timeout_ms.map(|t| crate::mechanisms::ekernel::deadline(self.now, t))
    }
}

#[cfg(test)]
mod tests;
