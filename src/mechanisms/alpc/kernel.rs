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

use super::proto::{PortAttributes, ReceivedMessage, Request, Response, ResponseBody, SectionGrant, SendMessage};
use super::state::{
    AlpcState, CallbackView, ChannelView, CommunicationPortView, ConnectionPortView, ConnectionRequestView,
    DirectAccessView, DirectoryEntry, HandleView, MessageView, PathCounters, ProcessView, SectionMapping, SectionView,
    SectionViewRegion,
};
use super::types::{
    handle_text, msg_flags, ClientId, LpcMessageType, NtStatus, PortDataEntry, PortMessageHeader, ViewAttribute,
    ALPC_DATA_VIEW_ATTR_SIZE, PORT_DATA_ENTRY_SIZE, PORT_DATA_INFORMATION_SIZE, PORT_MESSAGE_SIZE,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Identifies one process connection to the kernel.
pub type ConnId = u64;
/// Milliseconds on the caller's monotonic clock.
pub type Millis = u64;
/// Kernel-wide id of a section object (the I/O layer keeps its memfd).
pub type SectionId = u64;
type PortId = u64;
type ChannelId = u64;

/// Largest `small_max` that still lets header + payload + data information
/// fit ALPC's 16-bit `TotalLength`.
pub const SMALL_MAX_CEILING: u32 = 0xFFFF
    - PORT_MESSAGE_SIZE
    - PORT_DATA_INFORMATION_SIZE
    - PORT_DATA_ENTRY_SIZE * super::proto::MAX_DATA_ENTRIES as u32;

/// Connection data is clamped to LPC's x86 `MaxConnectionInfoLength`
/// (0x104), silently, as NT clamps it.
pub const MAX_CONNECTION_INFO: usize = 0x104;

/// Views inside a section start on this boundary, so offsets read well
/// ("@0x1000") and no two messages share a cache line.
const VIEW_ALIGNMENT: u64 = 64;

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
            max_pool_usage_ceiling: 16 << 20,
            log_lines: 200,
            max_state_bytes: 200 << 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    pub kernel_pid: u32,
    /// `alpc.small_max`: largest payload copied through a queue (the notes' 256).
    pub small_max: u32,
    /// `alpc.max_pool_usage`: default pool quota of a port, in bytes.
    pub max_pool_usage: u64,
    pub limits: Limits,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig { kernel_pid: 0, small_max: 256, max_pool_usage: 64 << 10, limits: Limits::default() }
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
}

// ------------------------------------------------------------------ objects

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandleTarget {
    ConnectionPort(PortId),
    ServerCommPort(ChannelId),
    ClientCommPort(ChannelId),
    Section(SectionId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// Where a message (or a pending request's pool charge) lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QueueLoc {
    ConnectionPort(PortId),
    ClientPort(ChannelId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SentView {
    section: SectionId,
    offset: u64,
    size: u64,
}

#[derive(Clone, Debug)]
struct Message {
    header: PortMessageHeader,
    kind: LpcMessageType,
    channel: Option<ChannelId>,
    port_context: u64,
    sender: ConnId,
    data: Vec<u8>,
    view: Option<SentView>,
    data_info: Vec<PortDataEntry>,
    charge: u64,
}

/// A request taken by a receiver and not yet replied to (NT's pending queue).
#[derive(Clone, Debug)]
struct PendingRequest {
    channel: ChannelId,
    loc: QueueLoc,
    from: ConnId,
    held_by: ConnId,
    charge: u64,
    view: Option<SentView>,
    data_info: Vec<PortDataEntry>,
    data_length: usize,
    callback_id: u32,
    sender: ClientId,
    port_context: u64,
}

#[derive(Clone, Debug)]
struct ConnectRequest {
    port: PortId,
    client: ConnId,
    attributes: PortAttributes,
    client_section_size: u64,
    received: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReceiveSource {
    ConnectionPort(PortId),
    ClientPort(ChannelId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Connect {
        message_id: u32,
    },
    Receive(ReceiveSource),
    /// Waiting for the reply matching the top of `reply_stack`.
    Reply,
    /// A direct copy is being performed by the I/O layer.
    Copy {
        channel: ChannelId,
        direction: CopyDirection,
    },
}

#[derive(Clone, Debug)]
struct Blocked {
    call_id: u32,
    wait: Wait,
    deadline: Option<Millis>,
    call_text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Awaited {
    message_id: u32,
    callback_id: u32,
    channel: ChannelId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ServingCallback {
    message_id: u32,
    callback_id: u32,
    caller: ConnId,
    channel: ChannelId,
}

#[derive(Clone, Debug)]
struct Process {
    client_id: ClientId,
    name: String,
    handles: BTreeMap<u32, HandleTarget>,
    next_handle: u32,
    blocked: Option<Blocked>,
    reply_stack: Vec<Awaited>,
    serving_callbacks: Vec<ServingCallback>,
    direct_access_granted: bool,
    /// Views delivered to this process that NT would release when the
    /// receiver is done with the message; we take "its next call" as done.
    release_on_next_call: Vec<(SectionId, u64)>,
}

#[derive(Clone, Debug)]
struct ConnectionPort {
    name: String,
    handle_open: bool,
    server: ConnId,
    attributes: PortAttributes,
    max_message_length: u32,
    max_pool_usage: u64,
    pool_usage: u64,
    queue: VecDeque<Message>,
    receivers: VecDeque<ConnId>,
    channels: BTreeSet<ChannelId>,
    refusals: u64,
    quota_failures: u64,
}

#[derive(Clone, Debug)]
struct Channel {
    connection_port: PortId,
    port_context: u64,
    max_message_length: u32,
    max_pool_usage: u64,
    server: ConnId,
    client: ConnId,
    server_handle: Option<u32>,
    client_handle: Option<u32>,
    connected: bool,
    client_queue: VecDeque<Message>,
    client_receivers: VecDeque<ConnId>,
    client_pool_usage: u64,
    client_section: Option<SectionId>,
    server_section: Option<SectionId>,
    counters: PathCounters,
}

impl Channel {
    fn side_of(&self, conn: ConnId, target: HandleTarget) -> Option<Side> {
        match target {
            HandleTarget::ServerCommPort(_) if conn == self.server => Some(Side::Server),
            HandleTarget::ClientCommPort(_) if conn == self.client => Some(Side::Client),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct ViewRegion {
    size: u64,
    in_message: Option<u32>,
}

#[derive(Clone, Debug)]
struct Section {
    channel: ChannelId,
    /// Which side writes into it: the client section carries client→server
    /// messages, the server section carries replies.
    writer: Side,
    size: u64,
    views: BTreeMap<u64, ViewRegion>,
    handles: BTreeMap<ConnId, u32>,
    mappings: BTreeMap<ConnId, u64>,
    /// Processes that already got the memfd.
    delivered: BTreeSet<ConnId>,
}

impl Section {
    fn bytes_in_use(&self) -> u64 {
        self.views.values().map(|v| v.size).sum()
    }

    /// First fit over the gaps between views, each view aligned.
    fn allocate(&self, size: u64) -> Option<u64> {
        let mut cursor = 0u64;
        for (&offset, view) in &self.views {
            if offset.saturating_sub(cursor) >= size {
                return Some(cursor);
            }
            cursor = align_up(offset.saturating_add(view.size));
        }
        (self.size.saturating_sub(cursor) >= size).then_some(cursor)
    }
}

fn align_up(value: u64) -> u64 {
    value.saturating_add(VIEW_ALIGNMENT - 1) & !(VIEW_ALIGNMENT - 1)
}

/// How a dispatched call ends for its caller.
enum Flow {
    Done { status: NtStatus, body: ResponseBody, attach: Vec<SectionId> },
    Blocked { wait: Wait, deadline: Option<Millis> },
}

impl Flow {
    fn ok(body: ResponseBody) -> Self {
        Flow::Done { status: NtStatus::STATUS_SUCCESS, body, attach: Vec::new() }
    }
    fn status(status: NtStatus) -> Self {
        Flow::Done { status, body: ResponseBody::None, attach: Vec::new() }
    }
}

type CallResult = Result<Flow, NtStatus>;

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
                    p.blocked = Some(Blocked { call_id, wait, deadline, call_text: text });
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

    /// Reports the outcome of a [`DirectCopy`]: `Ok(bytes)` or `Err(())` when
    /// the copy faulted (bad address, or the target process is gone).
    pub fn complete_direct_copy(&mut self, conn: ConnId, result: Result<u64, ()>, now: Millis) -> Vec<Outgoing> {
        self.now = self.now.max(now);
        let Some(Blocked { wait: Wait::Copy { channel, direction }, .. }) =
            self.processes.get(&conn).and_then(|p| p.blocked.clone())
        else {
            return Vec::new();
        };
        match result {
            Ok(bytes) => {
                self.count(Some(channel), |c| match direction {
                    CopyDirection::ReadFromClient => {
                        c.direct_reads += 1;
                        c.direct_read_bytes += bytes;
                    }
                    CopyDirection::WriteToClient => {
                        c.direct_writes += 1;
                        c.direct_write_bytes += bytes;
                    }
                });
                self.complete(conn, NtStatus::STATUS_SUCCESS, ResponseBody::Transferred { bytes }, Vec::new());
            }
            Err(()) => {
                self.count(Some(channel), |c| c.access_violations += 1);
                self.complete(conn, NtStatus::STATUS_ACCESS_VIOLATION, ResponseBody::None, Vec::new());
            }
        }
        self.take_out()
    }

    /// Size of a section, for the I/O layer.
    pub fn section_size(&self, section: SectionId) -> Option<u64> {
        self.sections.get(&section).map(|s| s.size)
    }

    /// The I/O layer could not create backing memory for a section: the
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
            Request::NtAlpcCreateSectionView { port, section, size, mapping_base } => {
                self.create_section_view(conn, port, section, size, mapping_base)
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

    fn create_port(&mut self, conn: ConnId, name: String, attributes: PortAttributes) -> CallResult {
        if !valid_object_name(&name) {
            return Err(NtStatus::STATUS_OBJECT_NAME_INVALID);
        }
        if self.directory.contains_key(&name) {
            return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
        }
        if self.ports.len() >= self.config.limits.max_connection_ports {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let max_message_length = match attributes.max_message_length {
            0 => self.config.small_max,
            n if n <= self.config.small_max => n,
            // NT rejects a MaxMessageLength above the system limit.
            _ => return Err(NtStatus::STATUS_INVALID_PARAMETER),
        };
        let max_pool_usage = match attributes.max_pool_usage {
            0 => self.config.max_pool_usage,
            n => n.min(self.config.limits.max_pool_usage_ceiling),
        };
        self.ensure_handle_room(conn, 1)?;
        let id = self.new_object_id();
        let handle = self.insert_handle(conn, HandleTarget::ConnectionPort(id))?;
        self.ports.insert(
            id,
            ConnectionPort {
                name: name.clone(),
                handle_open: true,
                server: conn,
                attributes,
                max_message_length,
                max_pool_usage,
                pool_usage: 0,
                queue: VecDeque::new(),
                receivers: VecDeque::new(),
                channels: BTreeSet::new(),
                refusals: 0,
                quota_failures: 0,
            },
        );
        self.directory.insert(name, id);
        Ok(Flow::ok(ResponseBody::Handle { handle }))
    }

    fn connect_port(
        &mut self,
        conn: ConnId,
        name: &str,
        attributes: PortAttributes,
        client_section_size: u64,
        mut connection_data: Vec<u8>,
        timeout_ms: Option<u32>,
    ) -> CallResult {
        let port_id = *self.directory.get(name).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
        if client_section_size > self.config.limits.max_section_size {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let port = self.ports.get(&port_id).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
        let waiting = self.connects.values().filter(|c| c.port == port_id).count();
        if waiting >= self.config.limits.max_connection_requests_per_port {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        // The client will need a communication port handle and up to two
        // section handles; refuse now rather than after the server accepted.
        self.ensure_handle_room(conn, 3)?;
        connection_data.truncate(MAX_CONNECTION_INFO);
        let charge = u64::from(PORT_MESSAGE_SIZE) + connection_data.len() as u64;
        if port.pool_usage + charge > port.max_pool_usage {
            self.count_quota_failure(None, port_id);
            return Err(NtStatus::POOL_QUOTA_EXHAUSTED);
        }
        if self.live_messages >= self.config.limits.max_messages_total {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let message_id = self.new_message_id();
        let client_id = self.client_id(conn);
        let message = Message {
            header: header_for(LpcMessageType::ConnectionRequest, client_id, message_id, 0, connection_data.len(), 0),
            kind: LpcMessageType::ConnectionRequest,
            channel: None,
            port_context: 0,
            sender: conn,
            data: connection_data,
            view: None,
            data_info: Vec::new(),
            charge,
        };
        self.connects.insert(
            message_id,
            ConnectRequest { port: port_id, client: conn, attributes, client_section_size, received: false },
        );
        self.enqueue(QueueLoc::ConnectionPort(port_id), message);
        Ok(Flow::Blocked { wait: Wait::Connect { message_id }, deadline: self.deadline(timeout_ms) })
    }

    #[allow(clippy::too_many_arguments)] // mirrors NtAlpcAcceptConnectPort's parameter list
    fn accept_connect_port(
        &mut self,
        conn: ConnId,
        connection_port: u32,
        message_id: u32,
        accept: bool,
        port_context: u64,
        server_section_size: u64,
        mut connection_data: Vec<u8>,
    ) -> CallResult {
        let HandleTarget::ConnectionPort(port_id) = self.lookup(conn, connection_port)? else {
            return Err(NtStatus::STATUS_INVALID_PORT_HANDLE);
        };
        let request = self.connects.get(&message_id).ok_or(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH)?;
        let client = request.client;
        let client_waits = self
            .processes
            .get(&client)
            .and_then(|p| p.blocked.as_ref())
            .is_some_and(|b| b.wait == Wait::Connect { message_id });
        if request.port != port_id || !request.received || !client_waits {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        if !accept {
            self.connects.remove(&message_id);
            if let Some(p) = self.ports.get_mut(&port_id) {
                p.refusals += 1;
            }
            self.totals.connection_refusals += 1;
            self.complete(client, NtStatus::STATUS_PORT_CONNECTION_REFUSED, ResponseBody::None, Vec::new());
            return Ok(Flow::ok(ResponseBody::None));
        }
        let client_section_size = request.client_section_size;
        let client_max = request.attributes.max_message_length;
        if server_section_size > self.config.limits.max_section_size {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        if self.channels.len() >= self.config.limits.max_channels {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let new_section_bytes = client_section_size + server_section_size;
        if self.total_section_bytes + new_section_bytes > self.config.limits.max_total_section_bytes {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let sections_needed = usize::from(client_section_size > 0) + usize::from(server_section_size > 0);
        self.ensure_handle_room(conn, 1 + sections_needed)?;
        self.ensure_handle_room(client, 1 + sections_needed)?;
        let port = self.ports.get(&port_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let max_message_length = match client_max {
            0 => port.max_message_length,
            n => n.min(port.max_message_length),
        };
        let max_pool_usage = port.max_pool_usage;

        self.connects.remove(&message_id);
        let channel_id = self.new_object_id();
        let server_handle = self.insert_handle(conn, HandleTarget::ServerCommPort(channel_id))?;
        let client_handle = self.insert_handle(client, HandleTarget::ClientCommPort(channel_id))?;
        // LPC: a NULL PortContext means "use the server port's handle value".
        let port_context = if port_context == 0 { u64::from(server_handle) } else { port_context };
        self.channels.insert(
            channel_id,
            Channel {
                connection_port: port_id,
                port_context,
                max_message_length,
                max_pool_usage,
                server: conn,
                client,
                server_handle: Some(server_handle),
                client_handle: Some(client_handle),
                connected: true,
                client_queue: VecDeque::new(),
                client_receivers: VecDeque::new(),
                client_pool_usage: 0,
                client_section: None,
                server_section: None,
                counters: PathCounters::default(),
            },
        );
        if let Some(p) = self.ports.get_mut(&port_id) {
            p.channels.insert(channel_id);
        }
        let mut attach = Vec::new();
        for (size, writer) in [(client_section_size, Side::Client), (server_section_size, Side::Server)] {
            if size > 0 {
                attach.push(self.create_section(channel_id, writer, size)?);
            }
        }
        connection_data.truncate(MAX_CONNECTION_INFO);
        self.complete(
            client,
            NtStatus::STATUS_SUCCESS,
            ResponseBody::Connected { port: client_handle, max_message_length, connection_data },
            attach.clone(),
        );
        Ok(Flow::Done {
            status: NtStatus::STATUS_SUCCESS,
            body: ResponseBody::Handle { handle: server_handle },
            attach,
        })
    }

    fn send_wait_receive(
        &mut self,
        conn: ConnId,
        port: u32,
        flags: u32,
        send: Option<SendMessage>,
        receive: bool,
        timeout_ms: Option<u32>,
    ) -> CallResult {
        if flags & !msg_flags::KNOWN != 0 {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let target = self.lookup(conn, port)?;
        if matches!(target, HandleTarget::Section(_)) {
            return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH);
        }
        let sync = flags & msg_flags::ALPC_MSGFLG_SYNC_REQUEST != 0;
        if sync && !receive {
            return Err(NtStatus::STATUS_LPC_RECEIVE_BUFFER_EXPECTED);
        }
        let deadline = self.deadline(timeout_ms);
        let Some(message) = send else {
            if sync {
                return Err(NtStatus::STATUS_INVALID_PARAMETER);
            }
            return if receive { self.receive(conn, target, deadline) } else { Ok(Flow::ok(ResponseBody::None)) };
        };
        if msg_flags::is_reply(flags) {
            self.send_reply(conn, target, message)?;
            if sync {
                // NtReplyWaitReplyPort: answered a callback, now wait on for
                // the reply to this thread's own outstanding request.
                return self.wait_own_reply(conn, deadline);
            }
            return if receive { self.receive(conn, target, deadline) } else { Ok(Flow::ok(ResponseBody::None)) };
        }
        match LpcMessageType::from_code(message.msg_type) {
            Some(LpcMessageType::Request) if message.message_id != 0 => {
                if !sync {
                    return Err(NtStatus::STATUS_INVALID_PARAMETER);
                }
                self.send_callback(conn, target, message, deadline)
            }
            Some(LpcMessageType::NewMessage | LpcMessageType::Request) if sync => {
                self.send_request(conn, target, message, deadline)
            }
            Some(LpcMessageType::NewMessage | LpcMessageType::Datagram) if !sync => {
                self.send_datagram(conn, target, message)?;
                if receive {
                    self.receive(conn, target, deadline)
                } else {
                    Ok(Flow::ok(ResponseBody::None))
                }
            }
            _ => Err(NtStatus::STATUS_INVALID_PARAMETER),
        }
    }

    /// The channel and direction a new message sent through `target` takes.
    fn outbound(&self, conn: ConnId, target: HandleTarget) -> Result<(ChannelId, Side, QueueLoc), NtStatus> {
        let ch = match target {
            HandleTarget::ServerCommPort(ch) | HandleTarget::ClientCommPort(ch) => ch,
            // A server initiates messages on the client's communication port,
            // never on the connection port.
            HandleTarget::ConnectionPort(_) => return Err(NtStatus::STATUS_INVALID_PORT_HANDLE),
            HandleTarget::Section(_) => return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH),
        };
        let channel = self.channels.get(&ch).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let side = channel.side_of(conn, target).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if !channel.connected {
            return Err(NtStatus::STATUS_PORT_DISCONNECTED);
        }
        let loc = match side {
            Side::Client => QueueLoc::ConnectionPort(channel.connection_port),
            Side::Server => QueueLoc::ClientPort(ch),
        };
        Ok((ch, side, loc))
    }

    /// Checks a message against the channel's rules and turns its view into
    /// the kernel's form. Nothing is changed if it fails.
    fn validate_message(
        &self,
        conn: ConnId,
        ch: ChannelId,
        side: Side,
        message: &SendMessage,
        allow_data_info: bool,
    ) -> Result<Option<SentView>, NtStatus> {
        let channel = self.channels.get(&ch).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if message.data.len() > channel.max_message_length as usize {
            return Err(NtStatus::STATUS_PORT_MESSAGE_TOO_LONG);
        }
        if !message.data_info.is_empty() {
            // NtRequestPort rejects a DataInfoOffset: direct access exists
            // only for a request whose sender waits for the reply.
            if !allow_data_info {
                return Err(NtStatus::STATUS_INVALID_PARAMETER);
            }
            if message.data_info.iter().any(|e| e.size == 0 || e.base.checked_add(e.size).is_none()) {
                return Err(NtStatus::STATUS_INVALID_PARAMETER);
            }
        }
        let Some(view) = message.view else { return Ok(None) };
        let HandleTarget::Section(section_id) = self.lookup(conn, view.section_handle)? else {
            return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH);
        };
        let section = self.sections.get(&section_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if section.channel != ch || section.writer != side {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let region = section.views.get(&view.offset).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        if region.in_message.is_some() || view.size == 0 || view.size > region.size {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        Ok(Some(SentView { section: section_id, offset: view.offset, size: view.size }))
    }

    // The message's parts arrive separately from validation; bundling them
    // into a struct would only move the list elsewhere.
    #[allow(clippy::too_many_arguments)]
    fn build_message(
        &mut self,
        conn: ConnId,
        kind: LpcMessageType,
        ch: ChannelId,
        message: SendMessage,
        view: Option<SentView>,
        message_id: u32,
        callback_id: u32,
    ) -> Message {
        let port_context = self.channels.get(&ch).map_or(0, |c| c.port_context);
        let charge = pool_charge(message.data.len(), view.is_some(), message.data_info.len());
        let header = header_for(
            kind,
            self.client_id(conn),
            message_id,
            callback_id,
            message.data.len(),
            message.data_info.len(),
        );
        if let Some(v) = view {
            self.mark_view(v, Some(message_id));
        }
        Message {
            header,
            kind,
            channel: Some(ch),
            port_context,
            sender: conn,
            data: message.data,
            view,
            data_info: message.data_info,
            charge,
        }
    }

    /// Fails with the pool status if the message cannot be charged at `loc`.
    fn check_room(&mut self, loc: QueueLoc, ch: ChannelId, charge: u64) -> Result<(), NtStatus> {
        let (usage, max) = self.pool_at(loc);
        if usage + charge > max {
            let port = self.channels.get(&ch).map_or(0, |c| c.connection_port);
            self.count_quota_failure(Some(ch), port);
            return Err(NtStatus::POOL_QUOTA_EXHAUSTED);
        }
        if self.live_messages >= self.config.limits.max_messages_total {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        Ok(())
    }

    fn send_request(
        &mut self,
        conn: ConnId,
        target: HandleTarget,
        message: SendMessage,
        deadline: Option<Millis>,
    ) -> CallResult {
        let (ch, side, loc) = self.outbound(conn, target)?;
        if self.process(conn)?.reply_stack.len() >= self.config.limits.max_nesting {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let view = self.validate_message(conn, ch, side, &message, true)?;
        let charge = pool_charge(message.data.len(), view.is_some(), message.data_info.len());
        self.check_room(loc, ch, charge)?;
        let message_id = self.new_message_id();
        let msg = self.build_message(conn, LpcMessageType::Request, ch, message, view, message_id, 0);
        self.count_path(ch, &msg, |c| c.requests += 1);
        self.process_mut(conn)?.reply_stack.push(Awaited { message_id, callback_id: 0, channel: ch });
        self.enqueue(loc, msg);
        Ok(Flow::Blocked { wait: Wait::Reply, deadline })
    }

    fn send_datagram(&mut self, conn: ConnId, target: HandleTarget, message: SendMessage) -> Result<(), NtStatus> {
        let (ch, side, loc) = self.outbound(conn, target)?;
        let view = self.validate_message(conn, ch, side, &message, false)?;
        let charge = pool_charge(message.data.len(), view.is_some(), 0);
        self.check_room(loc, ch, charge)?;
        let message_id = self.new_message_id();
        let msg = self.build_message(conn, LpcMessageType::Datagram, ch, message, view, message_id, 0);
        self.count_path(ch, &msg, |c| c.datagrams += 1);
        self.enqueue(loc, msg);
        Ok(())
    }

    /// Does `target` (a handle of the caller) reach channel `ch`?
    fn handle_reaches(&self, target: HandleTarget, ch: ChannelId) -> bool {
        match target {
            HandleTarget::ConnectionPort(p) => self.channels.get(&ch).is_some_and(|c| c.connection_port == p),
            HandleTarget::ServerCommPort(c) | HandleTarget::ClientCommPort(c) => c == ch,
            HandleTarget::Section(_) => false,
        }
    }

    /// An LPC nested request: the server, while serving request `M`, sends a
    /// request of its own straight into the client thread blocked on `M`.
    fn send_callback(
        &mut self,
        conn: ConnId,
        target: HandleTarget,
        message: SendMessage,
        deadline: Option<Millis>,
    ) -> CallResult {
        let served_id = message.message_id;
        let pending = self.pending.get(&served_id).ok_or(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH)?;
        if pending.held_by != conn || !self.handle_reaches(target, pending.channel) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        let (ch, client) = (pending.channel, pending.from);
        if !self.channels.get(&ch).is_some_and(|c| c.connected) {
            return Err(NtStatus::STATUS_PORT_DISCONNECTED);
        }
        if !self.waits_for(client, served_id, 0) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        if self.process(conn)?.reply_stack.len() >= self.config.limits.max_nesting {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let side = if self.channels.get(&ch).is_some_and(|c| c.server == conn) { Side::Server } else { Side::Client };
        let view = self.validate_message(conn, ch, side, &message, false)?;
        let callback_id = self.new_callback_id();
        let msg = self.build_message(conn, LpcMessageType::Request, ch, message, view, served_id, callback_id);
        self.count_path(ch, &msg, |c| c.callbacks += 1);
        // Handed to the blocked thread as the completion of its wait: no queue.
        let received = self.deliver_view_and_body(client, &msg);
        if let Some(v) = msg.view {
            self.release_after_next_call(client, v);
        }
        if let Some(p) = self.processes.get_mut(&client) {
            p.serving_callbacks.push(ServingCallback { message_id: served_id, callback_id, caller: conn, channel: ch });
        }
        let (body, attach) = received;
        self.complete(client, NtStatus::STATUS_SUCCESS, body, attach);
        self.process_mut(conn)?.reply_stack.push(Awaited { message_id: served_id, callback_id, channel: ch });
        Ok(Flow::Blocked { wait: Wait::Reply, deadline })
    }

    fn send_reply(&mut self, conn: ConnId, target: HandleTarget, message: SendMessage) -> Result<(), NtStatus> {
        if message.callback_id != 0 {
            return self.reply_to_callback(conn, target, message);
        }
        let message_id = message.message_id;
        let pending = self.pending.get(&message_id).ok_or(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH)?;
        if pending.held_by != conn || !self.handle_reaches(target, pending.channel) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        let (ch, waiter) = (pending.channel, pending.from);
        if !self.channels.get(&ch).is_some_and(|c| c.connected) {
            return Err(NtStatus::STATUS_PORT_DISCONNECTED);
        }
        if !self.waits_for(waiter, message_id, 0) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        let side = if self.channels.get(&ch).is_some_and(|c| c.server == conn) { Side::Server } else { Side::Client };
        let view = self.validate_message(conn, ch, side, &message, false)?;
        // The request is answered: its pending entry, its view and its
        // direct-access regions end here.
        self.drop_pending(message_id, false);
        self.deliver_reply(conn, waiter, ch, message, view, message_id, 0);
        Ok(())
    }

    fn reply_to_callback(&mut self, conn: ConnId, target: HandleTarget, message: SendMessage) -> Result<(), NtStatus> {
        let process = self.process(conn)?;
        let Some(&serving) = process.serving_callbacks.last() else {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        };
        if serving.message_id != message.message_id
            || serving.callback_id != message.callback_id
            || !self.handle_reaches(target, serving.channel)
        {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        // Whatever happens next, this thread is done serving the callback.
        self.process_mut(conn)?.serving_callbacks.pop();
        if !self.channels.get(&serving.channel).is_some_and(|c| c.connected) {
            return Err(NtStatus::STATUS_PORT_DISCONNECTED);
        }
        if !self.waits_for(serving.caller, serving.message_id, serving.callback_id) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        let side = if self.channels.get(&serving.channel).is_some_and(|c| c.server == conn) {
            Side::Server
        } else {
            Side::Client
        };
        let view = self.validate_message(conn, serving.channel, side, &message, false)?;
        self.deliver_reply(
            conn,
            serving.caller,
            serving.channel,
            message,
            view,
            serving.message_id,
            serving.callback_id,
        );
        Ok(())
    }

    /// Hands a reply to the thread waiting for it: replies never queue.
    #[allow(clippy::too_many_arguments)]
    fn deliver_reply(
        &mut self,
        conn: ConnId,
        waiter: ConnId,
        ch: ChannelId,
        message: SendMessage,
        view: Option<SentView>,
        message_id: u32,
        callback_id: u32,
    ) {
        let msg = self.build_message(conn, LpcMessageType::Reply, ch, message, view, message_id, callback_id);
        self.count_path(ch, &msg, |c| c.replies += 1);
        if let Some(p) = self.processes.get_mut(&waiter) {
            p.reply_stack.pop();
        }
        if let Some(v) = msg.view {
            self.release_after_next_call(waiter, v);
        }
        let (body, attach) = self.deliver_view_and_body(waiter, &msg);
        self.complete(waiter, NtStatus::STATUS_SUCCESS, body, attach);
    }

    fn wait_own_reply(&mut self, conn: ConnId, deadline: Option<Millis>) -> CallResult {
        let top = self.process(conn)?.reply_stack.last().copied().ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        if !self.channels.get(&top.channel).is_some_and(|c| c.connected) {
            self.process_mut(conn)?.reply_stack.pop();
            return Err(NtStatus::STATUS_LPC_REPLY_LOST);
        }
        Ok(Flow::Blocked { wait: Wait::Reply, deadline })
    }

    fn receive(&mut self, conn: ConnId, target: HandleTarget, deadline: Option<Millis>) -> CallResult {
        let source = match target {
            HandleTarget::ConnectionPort(p) => ReceiveSource::ConnectionPort(p),
            // A receive on a server communication port drains the
            // connection port's queue: that is where clients' messages are.
            HandleTarget::ServerCommPort(ch) => ReceiveSource::ConnectionPort(
                self.channels.get(&ch).map(|c| c.connection_port).ok_or(NtStatus::STATUS_INVALID_HANDLE)?,
            ),
            HandleTarget::ClientCommPort(ch) => ReceiveSource::ClientPort(ch),
            HandleTarget::Section(_) => return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH),
        };
        let loc = match source {
            ReceiveSource::ConnectionPort(p) => QueueLoc::ConnectionPort(p),
            ReceiveSource::ClientPort(ch) => QueueLoc::ClientPort(ch),
        };
        if let Some(message) = self.queue_mut(loc).and_then(|q| q.pop_front()) {
            let (body, attach) = self.take_delivery(conn, loc, message);
            return Ok(Flow::Done { status: NtStatus::STATUS_SUCCESS, body, attach });
        }
        if let ReceiveSource::ClientPort(ch) = source {
            if !self.channels.get(&ch).is_some_and(|c| c.connected) {
                return Err(NtStatus::STATUS_PORT_DISCONNECTED);
            }
        }
        if deadline == Some(self.now) {
            return Err(NtStatus::STATUS_TIMEOUT);
        }
        match source {
            ReceiveSource::ConnectionPort(p) => {
                if let Some(port) = self.ports.get_mut(&p) {
                    port.receivers.push_back(conn);
                }
            }
            ReceiveSource::ClientPort(ch) => {
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.client_receivers.push_back(conn);
                }
            }
        }
        Ok(Flow::Blocked { wait: Wait::Receive(source), deadline })
    }

    fn create_port_section(&mut self, conn: ConnId, port: u32, size: u64) -> CallResult {
        let target = self.lookup(conn, port)?;
        let (ch, side, _) = self.outbound(conn, target)?;
        if size == 0 || size > self.config.limits.max_section_size {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        if self.total_section_bytes + size > self.config.limits.max_total_section_bytes {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let channel = self.channels.get(&ch).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let existing = match side {
            Side::Client => channel.client_section,
            Side::Server => channel.server_section,
        };
        // The notes' model: one section per direction of a channel.
        if existing.is_some() {
            return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
        }
        let peer = match side {
            Side::Client => channel.server,
            Side::Server => channel.client,
        };
        self.ensure_handle_room(conn, 1)?;
        self.ensure_handle_room(peer, 1)?;
        let section = self.create_section(ch, side, size)?;
        let handle = self.sections.get(&section).and_then(|s| s.handles.get(&conn).copied()).unwrap_or(0);
        Ok(Flow::Done {
            status: NtStatus::STATUS_SUCCESS,
            body: ResponseBody::Section { section: handle, size },
            attach: vec![section],
        })
    }

    fn create_section_view(
        &mut self,
        conn: ConnId,
        port: u32,
        section: u32,
        size: u64,
        mapping_base: u64,
    ) -> CallResult {
        let target = self.lookup(conn, port)?;
        let HandleTarget::Section(section_id) = self.lookup(conn, section)? else {
            return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH);
        };
        let max_views = self.config.limits.max_views_per_section;
        let s = self.sections.get(&section_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if !self.handle_reaches(target, s.channel) {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let channel = self.channels.get(&s.channel).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let writer = match s.writer {
            Side::Client => channel.client,
            Side::Server => channel.server,
        };
        let offset = if size > 0 {
            if conn != writer || size > s.size {
                return Err(NtStatus::STATUS_INVALID_PARAMETER);
            }
            if s.views.len() >= max_views {
                return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
            }
            Some(s.allocate(size).ok_or(NtStatus::STATUS_NO_MEMORY)?)
        } else {
            None
        };
        let s = self.sections.get_mut(&section_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if mapping_base != 0 {
            s.mappings.insert(conn, mapping_base);
        }
        if let Some(offset) = offset {
            s.views.insert(offset, ViewRegion { size, in_message: None });
        }
        Ok(Flow::ok(ResponseBody::View { section, offset: offset.unwrap_or(0), size }))
    }

    fn delete_section_view(&mut self, conn: ConnId, port: u32, section: u32, offset: u64) -> CallResult {
        let target = self.lookup(conn, port)?;
        let HandleTarget::Section(section_id) = self.lookup(conn, section)? else {
            return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH);
        };
        let s = self.sections.get(&section_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if !self.handle_reaches(target, s.channel) {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        match s.views.get(&offset) {
            None => Err(NtStatus::STATUS_INVALID_PARAMETER),
            Some(v) if v.in_message.is_some() => Err(NtStatus::STATUS_RESOURCE_IN_USE),
            Some(_) => {
                if let Some(s) = self.sections.get_mut(&section_id) {
                    s.views.remove(&offset);
                }
                Ok(Flow::ok(ResponseBody::None))
            }
        }
    }

    /// `NtReadRequestData` / `NtWriteRequestData`: only for a request the
    /// caller is serving, only while its sender still waits for the reply,
    /// only inside a region the sender declared, and only with its grant.
    #[allow(clippy::too_many_arguments)]
    fn request_data(
        &mut self,
        conn: ConnId,
        port: u32,
        message_id: u32,
        index: u32,
        buffer: u64,
        length: u64,
        direction: CopyDirection,
    ) -> CallResult {
        let target = self.lookup(conn, port)?;
        let pending = self.pending.get(&message_id).ok_or(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH)?;
        if pending.held_by != conn || !self.handle_reaches(target, pending.channel) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        if !self.waits_for(pending.from, message_id, 0) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        if pending.data_info.is_empty() {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let entry = *pending.data_info.get(index as usize).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        if length > entry.size
            || length > self.config.limits.max_direct_transfer
            || buffer.checked_add(length).is_none()
        {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let (ch, from) = (pending.channel, pending.from);
        let client = self.process(from)?;
        if !client.direct_access_granted {
            self.count(Some(ch), |c| c.access_violations += 1);
            return Err(NtStatus::STATUS_ACCESS_VIOLATION);
        }
        let client_pid = client.client_id.unique_process;
        let server_pid = self.process(conn)?.client_id.unique_process;
        self.out.push(Outgoing::DirectCopy(DirectCopy {
            conn,
            direction,
            client_pid,
            client_address: entry.base,
            server_pid,
            server_address: buffer,
            length,
        }));
        Ok(Flow::Blocked { wait: Wait::Copy { channel: ch, direction }, deadline: None })
    }

    // ------------------------------------------------------------ queues

    fn pool_at(&self, loc: QueueLoc) -> (u64, u64) {
        match loc {
            QueueLoc::ConnectionPort(p) => self.ports.get(&p).map_or((0, 0), |p| (p.pool_usage, p.max_pool_usage)),
            QueueLoc::ClientPort(ch) => {
                self.channels.get(&ch).map_or((0, 0), |c| (c.client_pool_usage, c.max_pool_usage))
            }
        }
    }

    fn adjust_pool(&mut self, loc: QueueLoc, charge: u64, add: bool) {
        let usage = match loc {
            QueueLoc::ConnectionPort(p) => self.ports.get_mut(&p).map(|p| &mut p.pool_usage),
            QueueLoc::ClientPort(ch) => self.channels.get_mut(&ch).map(|c| &mut c.client_pool_usage),
        };
        if let Some(usage) = usage {
            *usage = if add { *usage + charge } else { usage.saturating_sub(charge) };
        }
    }

    fn queue_mut(&mut self, loc: QueueLoc) -> Option<&mut VecDeque<Message>> {
        match loc {
            QueueLoc::ConnectionPort(p) => self.ports.get_mut(&p).map(|p| &mut p.queue),
            QueueLoc::ClientPort(ch) => self.channels.get_mut(&ch).map(|c| &mut c.client_queue),
        }
    }

    /// Puts a message on a queue — or, if a thread is blocked receiving
    /// there, hands it over at once.
    fn enqueue(&mut self, loc: QueueLoc, message: Message) {
        self.adjust_pool(loc, message.charge, true);
        self.live_messages += 1;
        let receiver = match loc {
            QueueLoc::ConnectionPort(p) => self.ports.get_mut(&p).and_then(|p| p.receivers.pop_front()),
            QueueLoc::ClientPort(ch) => self.channels.get_mut(&ch).and_then(|c| c.client_receivers.pop_front()),
        };
        match receiver {
            Some(receiver) => {
                let (body, attach) = self.take_delivery(receiver, loc, message);
                self.complete(receiver, NtStatus::STATUS_SUCCESS, body, attach);
            }
            None => {
                if let Some(queue) = self.queue_mut(loc) {
                    queue.push_back(message);
                }
            }
        }
    }

    /// A receiver took `message` off the queue at `loc`. Returns the response
    /// body for it. Requests move to the pending list (keeping their pool
    /// charge, as NT keeps the blob on the pending queue); everything else
    /// gives its charge back.
    fn take_delivery(&mut self, receiver: ConnId, loc: QueueLoc, message: Message) -> (ResponseBody, Vec<SectionId>) {
        match message.kind {
            LpcMessageType::Request => {
                if let Some(ch) = message.channel {
                    self.pending.insert(
                        message.header.message_id,
                        PendingRequest {
                            channel: ch,
                            loc,
                            from: message.sender,
                            held_by: receiver,
                            charge: message.charge,
                            view: message.view,
                            data_info: message.data_info.clone(),
                            data_length: message.data.len(),
                            callback_id: message.header.callback_id,
                            sender: message.header.client_id,
                            port_context: message.port_context,
                        },
                    );
                }
            }
            LpcMessageType::ConnectionRequest => {
                if let Some(c) = self.connects.get_mut(&message.header.message_id) {
                    c.received = true;
                }
                self.release_charge(loc, message.charge);
            }
            _ => {
                self.release_charge(loc, message.charge);
                if let Some(v) = message.view {
                    self.release_after_next_call(receiver, v);
                }
            }
        }
        self.deliver_view_and_body(receiver, &message)
    }

    fn release_charge(&mut self, loc: QueueLoc, charge: u64) {
        self.adjust_pool(loc, charge, false);
        self.live_messages = self.live_messages.saturating_sub(1);
    }

    /// The response body a receiver gets for `message`, with the view's
    /// section translated into the receiver's handle, and the section's fd
    /// attached the first time this process sees it.
    fn deliver_view_and_body(&mut self, receiver: ConnId, message: &Message) -> (ResponseBody, Vec<SectionId>) {
        let mut attach = Vec::new();
        let view = message.view.and_then(|v| {
            let section = self.sections.get_mut(&v.section)?;
            let handle = *section.handles.get(&receiver)?;
            if section.delivered.insert(receiver) {
                attach.push(v.section);
            }
            Some(ViewAttribute { section_handle: handle, offset: v.offset, size: v.size })
        });
        // PortContext identifies the client's channel to the server; a
        // client's own port carries none. (A channel already deleted can only
        // have left an LPC_PORT_CLOSED for the server behind.)
        let port_context = match message.channel.and_then(|ch| self.channels.get(&ch)) {
            Some(c) if c.client == receiver && c.server != receiver => 0,
            _ => message.port_context,
        };
        let received = ReceivedMessage {
            header: message.header,
            port_context,
            data: message.data.clone(),
            view,
            data_info: message.data_info.clone(),
        };
        (ResponseBody::Message(received), attach)
    }

    fn mark_view(&mut self, view: SentView, message_id: Option<u32>) {
        if let Some(region) = self.sections.get_mut(&view.section).and_then(|s| s.views.get_mut(&view.offset)) {
            region.in_message = message_id;
        }
    }

    /// A view sent in a message is released when the message is (NT's
    /// auto-release views): here, when the message is freed.
    fn release_view(&mut self, view: SentView) {
        if let Some(s) = self.sections.get_mut(&view.section) {
            s.views.remove(&view.offset);
        }
    }

    fn release_after_next_call(&mut self, receiver: ConnId, view: SentView) {
        match self.processes.get_mut(&receiver) {
            Some(p) => p.release_on_next_call.push((view.section, view.offset)),
            None => self.release_view(view),
        }
    }

    fn release_views_after_use(&mut self, conn: ConnId) {
        let views =
            self.processes.get_mut(&conn).map(|p| std::mem::take(&mut p.release_on_next_call)).unwrap_or_default();
        for (section, offset) in views {
            self.release_view(SentView { section, offset, size: 0 });
        }
    }

    /// Frees a message that will never be delivered, counting it.
    fn free_message(&mut self, loc: QueueLoc, message: Message) {
        self.release_charge(loc, message.charge);
        if let Some(v) = message.view {
            self.release_view(v);
        }
        if message.kind == LpcMessageType::ConnectionRequest {
            self.connects.remove(&message.header.message_id);
        }
        let bytes = message.data.len() as u64 + message.view.map_or(0, |v| v.size);
        self.count(message.channel, |c| {
            c.freed_messages += 1;
            c.freed_bytes += bytes;
        });
    }

    /// Removes a pending request; with `wake_sender`, its sender (if still
    /// waiting for it) learns the reply is lost.
    fn drop_pending(&mut self, message_id: u32, wake_sender: bool) {
        let Some(request) = self.pending.remove(&message_id) else { return };
        self.release_charge(request.loc, request.charge);
        if let Some(v) = request.view {
            self.release_view(v);
        }
        if wake_sender && self.waits_for(request.from, message_id, 0) {
            let bytes = request.data_length as u64 + request.view.map_or(0, |v| v.size);
            self.count(Some(request.channel), |c| {
                c.freed_messages += 1;
                c.freed_bytes += bytes;
            });
            if let Some(p) = self.processes.get_mut(&request.from) {
                p.reply_stack.pop();
            }
            self.complete(request.from, NtStatus::STATUS_LPC_REPLY_LOST, ResponseBody::None, Vec::new());
        }
    }

    /// Is `conn` blocked waiting for exactly this reply?
    fn waits_for(&self, conn: ConnId, message_id: u32, callback_id: u32) -> bool {
        self.processes.get(&conn).is_some_and(|p| {
            matches!(p.blocked.as_ref().map(|b| b.wait), Some(Wait::Reply))
                && p.reply_stack.last().is_some_and(|a| a.message_id == message_id && a.callback_id == callback_id)
        })
    }

    /// Undoes whatever `conn` is blocked in (timeout or exit). The caller
    /// sends the blocked call's response, if any.
    fn cancel_wait(&mut self, conn: ConnId) {
        let Some(blocked) = self.processes.get(&conn).and_then(|p| p.blocked.clone()) else { return };
        match blocked.wait {
            Wait::Connect { message_id } => {
                if let Some(request) = self.connects.remove(&message_id) {
                    self.remove_queued(QueueLoc::ConnectionPort(request.port), message_id);
                }
            }
            Wait::Receive(ReceiveSource::ConnectionPort(p)) => {
                if let Some(port) = self.ports.get_mut(&p) {
                    port.receivers.retain(|&c| c != conn);
                }
            }
            Wait::Receive(ReceiveSource::ClientPort(ch)) => {
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.client_receivers.retain(|&c| c != conn);
                }
            }
            Wait::Reply => {
                let Some(top) = self.processes.get_mut(&conn).and_then(|p| p.reply_stack.pop()) else { return };
                if top.callback_id == 0 {
                    // The request is abandoned: take it off whichever queue
                    // holds it, or off the pending list; a late reply then
                    // gets STATUS_REPLY_MESSAGE_MISMATCH.
                    let locs = self
                        .channels
                        .get(&top.channel)
                        .map(|c| [QueueLoc::ConnectionPort(c.connection_port), QueueLoc::ClientPort(top.channel)]);
                    for loc in locs.into_iter().flatten() {
                        self.remove_queued(loc, top.message_id);
                    }
                    self.drop_pending(top.message_id, false);
                }
            }
            Wait::Copy { .. } => {}
        }
    }

    fn remove_queued(&mut self, loc: QueueLoc, message_id: u32) {
        let Some(queue) = self.queue_mut(loc) else { return };
        let Some(index) = queue.iter().position(|m| m.header.message_id == message_id && m.header.callback_id == 0)
        else {
            return;
        };
        if let Some(message) = queue.remove(index) {
            self.free_message(loc, message);
        }
    }

    // ------------------------------------------------------------ teardown

    fn close_handle(&mut self, conn: ConnId, handle: u32) {
        let Some(target) = self.processes.get_mut(&conn).and_then(|p| p.handles.remove(&handle)) else { return };
        match target {
            HandleTarget::ConnectionPort(p) => self.close_connection_port(p),
            HandleTarget::ServerCommPort(ch) => {
                self.disconnect_channel(ch, Side::Server);
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.server_handle = None;
                }
                self.maybe_delete_channel(ch);
            }
            HandleTarget::ClientCommPort(ch) => {
                self.disconnect_channel(ch, Side::Client);
                if let Some(c) = self.channels.get_mut(&ch) {
                    c.client_handle = None;
                }
                self.maybe_delete_channel(ch);
            }
            HandleTarget::Section(s) => {
                if let Some(section) = self.sections.get_mut(&s) {
                    section.handles.remove(&conn);
                    section.mappings.remove(&conn);
                }
            }
        }
    }

    /// The server's last handle to its connection port is gone: the name
    /// leaves the directory at once and waiting connects are refused, but
    /// existing channels live on (their messages still queue on the port
    /// object, which lives while they reference it).
    fn close_connection_port(&mut self, port_id: PortId) {
        let Some(port) = self.ports.get_mut(&port_id) else { return };
        port.handle_open = false;
        let name = port.name.clone();
        if self.directory.get(&name) == Some(&port_id) {
            self.directory.remove(&name);
        }
        let refused: Vec<(u32, ConnId)> =
            self.connects.iter().filter(|(_, c)| c.port == port_id).map(|(&id, c)| (id, c.client)).collect();
        for (message_id, client) in refused {
            self.remove_queued(QueueLoc::ConnectionPort(port_id), message_id);
            self.connects.remove(&message_id);
            self.totals.connection_refusals += 1;
            if let Some(p) = self.ports.get_mut(&port_id) {
                p.refusals += 1;
            }
            self.complete(client, NtStatus::STATUS_PORT_CONNECTION_REFUSED, ResponseBody::None, Vec::new());
        }
        self.maybe_delete_port(port_id);
    }

    /// Breaks a channel. Messages of the channel are freed, threads waiting
    /// for replies through it get `STATUS_LPC_REPLY_LOST`, a client blocked
    /// receiving gets `STATUS_PORT_DISCONNECTED`, and if the client side
    /// went, the server gets `LPC_PORT_CLOSED` on its connection port.
    fn disconnect_channel(&mut self, ch: ChannelId, initiator: Side) {
        let Some(channel) = self.channels.get_mut(&ch) else { return };
        if !channel.connected {
            return;
        }
        channel.connected = false;
        let port_id = channel.connection_port;
        let client = channel.client;
        let port_context = channel.port_context;
        let client_queue = std::mem::take(&mut channel.client_queue);
        let client_receivers = std::mem::take(&mut channel.client_receivers);
        for message in client_queue {
            self.free_message(QueueLoc::ClientPort(ch), message);
        }
        if let Some(port) = self.ports.get_mut(&port_id) {
            let (ours, rest): (VecDeque<Message>, VecDeque<Message>) =
                std::mem::take(&mut port.queue).into_iter().partition(|m| m.channel == Some(ch));
            port.queue = rest;
            for message in ours {
                self.free_message(QueueLoc::ConnectionPort(port_id), message);
            }
        }
        let pending: Vec<u32> = self.pending.iter().filter(|(_, r)| r.channel == ch).map(|(&id, _)| id).collect();
        for message_id in pending {
            self.drop_pending(message_id, true);
        }
        // Every other wait that goes through this channel: callbacks in
        // flight, requests still queued (freed above).
        let conns: Vec<ConnId> = self.processes.keys().copied().collect();
        for conn in conns {
            let Some(p) = self.processes.get_mut(&conn) else { continue };
            p.serving_callbacks.retain(|s| s.channel != ch);
            let top_lost = p.reply_stack.last().is_some_and(|a| a.channel == ch);
            p.reply_stack.retain(|a| a.channel != ch);
            let blocked_on_reply = matches!(p.blocked.as_ref().map(|b| b.wait), Some(Wait::Reply));
            if top_lost && blocked_on_reply {
                self.complete(conn, NtStatus::STATUS_LPC_REPLY_LOST, ResponseBody::None, Vec::new());
            }
        }
        for receiver in client_receivers {
            self.complete(receiver, NtStatus::STATUS_PORT_DISCONNECTED, ResponseBody::None, Vec::new());
        }
        if initiator == Side::Client && self.ports.contains_key(&port_id) {
            // NT preallocates this message (`CloseMessage`), so it is never
            // refused for quota; it carries no charge.
            let message_id = self.new_message_id();
            let client_id = self.client_id(client);
            let message = Message {
                header: header_for(LpcMessageType::PortClosed, client_id, message_id, 0, 0, 0),
                kind: LpcMessageType::PortClosed,
                channel: Some(ch),
                port_context,
                sender: client,
                data: Vec::new(),
                view: None,
                data_info: Vec::new(),
                charge: 0,
            };
            self.enqueue(QueueLoc::ConnectionPort(port_id), message);
        }
    }

    fn maybe_delete_channel(&mut self, ch: ChannelId) {
        let Some(channel) = self.channels.get(&ch) else { return };
        if channel.server_handle.is_some() || channel.client_handle.is_some() {
            return;
        }
        let Some(mut channel) = self.channels.remove(&ch) else { return };
        // A PORT_CLOSED message for this channel may still sit in the
        // connection queue; it outlives the channel, as in NT.
        for message in std::mem::take(&mut channel.client_queue) {
            self.free_message(QueueLoc::ClientPort(ch), message);
        }
        for section in [channel.client_section, channel.server_section].into_iter().flatten() {
            self.delete_section(section);
        }
        if let Some(port) = self.ports.get_mut(&channel.connection_port) {
            port.channels.remove(&ch);
            for message in port.queue.iter_mut().filter(|m| m.channel == Some(ch)) {
                message.channel = None;
            }
        }
        self.maybe_delete_port(channel.connection_port);
    }

    fn maybe_delete_port(&mut self, port_id: PortId) {
        let Some(port) = self.ports.get(&port_id) else { return };
        if port.handle_open || !port.channels.is_empty() {
            return;
        }
        let Some(mut port) = self.ports.remove(&port_id) else { return };
        for message in std::mem::take(&mut port.queue) {
            self.live_messages = self.live_messages.saturating_sub(1);
            if let Some(v) = message.view {
                self.release_view(v);
            }
            self.totals.freed_messages += 1;
            self.totals.freed_bytes += message.data.len() as u64;
        }
        for receiver in std::mem::take(&mut port.receivers) {
            self.complete(receiver, NtStatus::STATUS_PORT_DISCONNECTED, ResponseBody::None, Vec::new());
        }
    }

    fn create_section(&mut self, ch: ChannelId, writer: Side, size: u64) -> Result<SectionId, NtStatus> {
        let channel = self.channels.get(&ch).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let (server, client) = (channel.server, channel.client);
        let id = self.new_object_id();
        let server_handle = self.insert_handle(server, HandleTarget::Section(id))?;
        let client_handle = self.insert_handle(client, HandleTarget::Section(id))?;
        let mut handles = BTreeMap::new();
        handles.insert(server, server_handle);
        handles.insert(client, client_handle);
        self.sections.insert(
            id,
            Section {
                channel: ch,
                writer,
                size,
                views: BTreeMap::new(),
                handles,
                mappings: BTreeMap::new(),
                delivered: BTreeSet::new(),
            },
        );
        self.total_section_bytes += size;
        if let Some(c) = self.channels.get_mut(&ch) {
            match writer {
                Side::Client => c.client_section = Some(id),
                Side::Server => c.server_section = Some(id),
            }
        }
        self.out.push(Outgoing::CreateSection { section: id, size });
        Ok(id)
    }

    fn delete_section(&mut self, id: SectionId) {
        let Some(section) = self.sections.remove(&id) else { return };
        self.total_section_bytes = self.total_section_bytes.saturating_sub(section.size);
        for (conn, handle) in section.handles {
            if let Some(p) = self.processes.get_mut(&conn) {
                p.handles.remove(&handle);
            }
        }
        if let Some(c) = self.channels.get_mut(&section.channel) {
            if c.client_section == Some(id) {
                c.client_section = None;
            }
            if c.server_section == Some(id) {
                c.server_section = None;
            }
        }
        self.out.push(Outgoing::ReleaseSection { section: id });
    }

    // ------------------------------------------------------------ helpers

    fn process(&self, conn: ConnId) -> Result<&Process, NtStatus> {
        self.processes.get(&conn).ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    fn process_mut(&mut self, conn: ConnId) -> Result<&mut Process, NtStatus> {
        self.processes.get_mut(&conn).ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    fn client_id(&self, conn: ConnId) -> ClientId {
        self.processes.get(&conn).map(|p| p.client_id).unwrap_or_default()
    }

    /// A handle is valid only in the process that owns it.
    fn lookup(&self, conn: ConnId, handle: u32) -> Result<HandleTarget, NtStatus> {
        self.process(conn)?.handles.get(&handle).copied().ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    fn ensure_handle_room(&self, conn: ConnId, count: usize) -> Result<(), NtStatus> {
        let used = self.process(conn)?.handles.len();
        if used + count > self.config.limits.max_handles_per_process {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        Ok(())
    }

    fn insert_handle(&mut self, conn: ConnId, target: HandleTarget) -> Result<u32, NtStatus> {
        let max = self.config.limits.max_handles_per_process;
        let p = self.processes.get_mut(&conn).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if p.handles.len() >= max {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        // NT handle values are multiples of 4. We do not reuse them soon, so
        // a stale handle fails instead of naming a newer object.
        let mut value = p.next_handle;
        while value == 0 || p.handles.contains_key(&value) {
            value = value.wrapping_add(4);
        }
        p.next_handle = value.wrapping_add(4);
        p.handles.insert(value, target);
        Ok(value)
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
        timeout_ms.map(|t| self.now.saturating_add(u64::from(t)))
    }

    fn count(&mut self, channel: Option<ChannelId>, f: impl Fn(&mut PathCounters)) {
        f(&mut self.totals);
        if let Some(c) = channel.and_then(|ch| self.channels.get_mut(&ch)) {
            f(&mut c.counters);
        }
    }

    fn count_path(&mut self, ch: ChannelId, message: &Message, event: impl Fn(&mut PathCounters)) {
        let data = message.data.len() as u64;
        let view = message.view.map(|v| v.size);
        self.count(Some(ch), |c| {
            event(c);
            match view {
                Some(size) => {
                    c.section_messages += 1;
                    c.section_bytes += size;
                    c.copied_bytes += data;
                }
                None => {
                    c.copied_messages += 1;
                    c.copied_bytes += data;
                }
            }
        });
    }

    fn count_quota_failure(&mut self, channel: Option<ChannelId>, port: PortId) {
        self.count(channel, |c| c.quota_failures += 1);
        if let Some(p) = self.ports.get_mut(&port) {
            p.quota_failures += 1;
        }
    }

    fn respond(&mut self, conn: ConnId, response: Response, attach: Vec<SectionId>) {
        self.out.push(Outgoing::Respond { conn, response, attach });
    }

    fn respond_with(
        &mut self,
        conn: ConnId,
        call_id: u32,
        status: NtStatus,
        body: ResponseBody,
        attach: Vec<SectionId>,
    ) {
        let mut grants = Vec::new();
        let mut attached = Vec::new();
        for section_id in attach {
            let writer_conn = self.sections.get(&section_id).and_then(|s| {
                let c = self.channels.get(&s.channel)?;
                Some(match s.writer {
                    Side::Client => c.client,
                    Side::Server => c.server,
                })
            });
            if let Some(section) = self.sections.get_mut(&section_id) {
                if let Some(&handle) = section.handles.get(&conn) {
                    section.delivered.insert(conn);
                    grants.push(SectionGrant { handle, size: section.size, writer: writer_conn == Some(conn) });
                    attached.push(section_id);
                }
            }
        }
        self.respond(conn, Response { call_id, status, body, sections: grants }, attached);
    }

    /// Ends the call `conn` is blocked in.
    fn complete(&mut self, conn: ConnId, status: NtStatus, body: ResponseBody, attach: Vec<SectionId>) {
        let Some(blocked) = self.processes.get_mut(&conn).and_then(|p| p.blocked.take()) else { return };
        self.log_line(format!("{} = {status}{}", blocked.call_text, describe_body(&body)));
        self.respond_with(conn, blocked.call_id, status, body, attach);
    }

    fn take_out(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.out)
    }

    fn log_line(&mut self, line: String) {
        if let Some(deferred) = self.deferred_log.as_mut() {
            // Bounded: a call completes at most one blocked call per process.
            deferred.push(line);
            return;
        }
        if self.config.limits.log_lines == 0 {
            return;
        }
        while self.log.len() >= self.config.limits.log_lines {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    fn handle_name(&self, conn: ConnId, handle: u32) -> String {
        handle_text(handle)
            + match self.lookup(conn, handle) {
                Ok(HandleTarget::ConnectionPort(_)) => " conn",
                Ok(HandleTarget::ServerCommPort(_)) => " server comm",
                Ok(HandleTarget::ClientCommPort(_)) => " client comm",
                Ok(HandleTarget::Section(_)) => " section",
                Err(_) => "",
            }
    }

    /// The call as a log line: NT name and the arguments a student cares about.
    fn describe(&self, conn: ConnId, request: &Request) -> String {
        match request {
            Request::Hello { tid, name } => format!("Hello(tid={tid}, name=\"{}\")", printable(name)),
            Request::NtAlpcCreatePort { name, attributes } => format!(
                "NtAlpcCreatePort(\"{}\", MaxMessageLength={}, MaxPoolUsage={})",
                printable(name),
                attributes.max_message_length,
                attributes.max_pool_usage
            ),
            Request::NtAlpcConnectPort { name, client_section_size, connection_data, .. } => format!(
                "NtAlpcConnectPort(\"{}\", {} bytes connection data{})",
                printable(name),
                connection_data.len(),
                if *client_section_size > 0 {
                    format!(", large messages: section of {client_section_size} bytes")
                } else {
                    String::new()
                }
            ),
            Request::NtAlpcAcceptConnectPort {
                connection_port,
                message_id,
                accept,
                port_context,
                server_section_size,
                ..
            } => {
                format!(
                    "NtAlpcAcceptConnectPort(port={}, id={message_id}, {}, PortContext=0x{port_context:x}{})",
                    self.handle_name(conn, *connection_port),
                    if *accept { "Accept=TRUE" } else { "Accept=FALSE" },
                    if *server_section_size > 0 {
                        format!(", reply section of {server_section_size} bytes")
                    } else {
                        String::new()
                    }
                )
            }
            Request::NtAlpcSendWaitReceivePort { port, flags, send, receive, timeout_ms } => {
                let mut parts = vec![format!("port={}", self.handle_name(conn, *port))];
                if let Some(m) = send {
                    let sync = flags & msg_flags::ALPC_MSGFLG_SYNC_REQUEST != 0;
                    let kind = if msg_flags::is_reply(*flags) {
                        if m.callback_id != 0 {
                            format!("LPC_REPLY to callback {}/{}", m.message_id, m.callback_id)
                        } else {
                            format!("LPC_REPLY to id={}", m.message_id)
                        }
                    } else if m.msg_type & LpcMessageType::TYPE_MASK == LpcMessageType::LPC_REQUEST && m.message_id != 0
                    {
                        format!("LPC_REQUEST callback into id={}", m.message_id)
                    } else if sync {
                        "LPC_REQUEST".to_string()
                    } else {
                        "LPC_DATAGRAM".to_string()
                    };
                    parts.push(kind);
                    parts.push(describe_payload(m.data.len(), m.view.as_ref(), &m.data_info));
                    if msg_flags::is_reply(*flags) && sync {
                        parts.push("then wait for own reply".into());
                    }
                }
                if *receive && flags & msg_flags::ALPC_MSGFLG_SYNC_REQUEST == 0 {
                    parts.push("receive".into());
                }
                if let Some(t) = timeout_ms {
                    parts.push(format!("timeout {t} ms"));
                }
                format!("NtAlpcSendWaitReceivePort({})", parts.join(", "))
            }
            Request::NtAlpcCreatePortSection { port, size } => {
                format!("NtAlpcCreatePortSection(port={}, {size} bytes)", self.handle_name(conn, *port))
            }
            Request::NtAlpcCreateSectionView { port, section, size, mapping_base } => format!(
                "NtAlpcCreateSectionView(port={}, section={}, {size} bytes{})",
                self.handle_name(conn, *port),
                handle_text(*section),
                if *mapping_base != 0 { format!(", mapped @0x{mapping_base:x}") } else { String::new() }
            ),
            Request::NtAlpcDeleteSectionView { port, section, offset } => format!(
                "NtAlpcDeleteSectionView(port={}, section={}, @0x{offset:x})",
                self.handle_name(conn, *port),
                handle_text(*section)
            ),
            Request::NtReadRequestData { port, message_id, index, length, .. } => format!(
                "NtReadRequestData(port={}, id={message_id}, index={index}, {length} bytes)",
                self.handle_name(conn, *port)
            ),
            Request::NtWriteRequestData { port, message_id, index, length, .. } => format!(
                "NtWriteRequestData(port={}, id={message_id}, index={index}, {length} bytes)",
                self.handle_name(conn, *port)
            ),
            Request::NtAlpcDisconnectPort { port, .. } => {
                format!("NtAlpcDisconnectPort(port={})", self.handle_name(conn, *port))
            }
            Request::NtClose { handle } => format!("NtClose({})", self.handle_name(conn, *handle)),
            Request::GrantDirectAccess { granted } => {
                format!(
                    "prctl(PR_SET_PTRACER, kernel) → direct access {}",
                    if *granted { "granted" } else { "revoked" }
                )
            }
            Request::QueryState => "QueryState()".into(),
        }
    }

    // ------------------------------------------------------------ introspection

    /// The whole state, for an observer.
    pub fn state(&self) -> AlpcState {
        let cid = |conn: &ConnId| self.client_id(*conn);
        let message_view = |m: &Message| MessageView {
            message_id: m.header.message_id,
            callback_id: m.header.callback_id,
            msg_type: m.kind.name().to_string(),
            sender: m.header.client_id,
            port_context: m.port_context,
            channel: m.channel,
            data_length: m.data.len() as u32,
            view: m.view.map(|v| (v.section, v.offset, v.size)),
            data_info: m.data_info.clone(),
            pool_charge: m.charge,
        };
        let pending_view = |id: u32, r: &PendingRequest| MessageView {
            message_id: id,
            callback_id: r.callback_id,
            msg_type: LpcMessageType::Request.name().to_string(),
            sender: r.sender,
            port_context: r.port_context,
            channel: Some(r.channel),
            data_length: r.data_length as u32,
            view: r.view.map(|v| (v.section, v.offset, v.size)),
            data_info: r.data_info.clone(),
            pool_charge: r.charge,
        };
        let processes = self
            .processes
            .iter()
            .map(|(&conn, p)| ProcessView {
                conn,
                client_id: p.client_id,
                name: p.name.clone(),
                handles: p
                    .handles
                    .iter()
                    .map(|(&handle, target)| {
                        let (object_type, object) = match *target {
                            HandleTarget::ConnectionPort(id) => ("ALPC Connection Port", id),
                            HandleTarget::ServerCommPort(id) => ("ALPC Server Communication Port", id),
                            HandleTarget::ClientCommPort(id) => ("ALPC Client Communication Port", id),
                            HandleTarget::Section(id) => ("Section", id),
                        };
                        HandleView { handle, object_type: object_type.to_string(), object }
                    })
                    .collect(),
                waiting: p.blocked.as_ref().map(|b| match b.wait {
                    Wait::Reply => match p.reply_stack.last() {
                        Some(a) if a.callback_id != 0 => {
                            format!("waiting for reply to callback {}/{}", a.message_id, a.callback_id)
                        }
                        Some(a) => format!("waiting for reply to id {}", a.message_id),
                        None => "waiting for reply".into(),
                    },
                    other => describe_wait(&other),
                }),
                awaiting_replies: p.reply_stack.iter().map(|a| (a.message_id, a.callback_id)).collect(),
                serving_callbacks: p.serving_callbacks.iter().map(|s| (s.message_id, s.callback_id)).collect(),
                direct_access_granted: p.direct_access_granted,
            })
            .collect();
        let connection_ports = self
            .ports
            .iter()
            .map(|(&id, port)| ConnectionPortView {
                id,
                name: port.name.clone(),
                name_deleted: !port.handle_open,
                server: cid(&port.server),
                max_message_length: port.max_message_length,
                max_pool_usage: port.max_pool_usage,
                pool_usage: port.pool_usage,
                main_queue: port.queue.iter().map(message_view).collect(),
                pending_queue: self
                    .pending
                    .iter()
                    .filter(|(_, r)| r.loc == QueueLoc::ConnectionPort(id))
                    .map(|(&mid, r)| pending_view(mid, r))
                    .collect(),
                connection_requests: self
                    .connects
                    .iter()
                    .filter(|(_, c)| c.port == id)
                    .map(|(&mid, c)| ConnectionRequestView {
                        message_id: mid,
                        client: cid(&c.client),
                        received: c.received,
                        client_section_size: c.client_section_size,
                        connection_data_length: port
                            .queue
                            .iter()
                            .find(|m| m.header.message_id == mid)
                            .map_or(0, |m| m.data.len() as u32),
                    })
                    .collect(),
                receivers: port.receivers.iter().map(cid).collect(),
                channels: port.channels.iter().copied().collect(),
                connection_refusals: port.refusals,
                quota_failures: port.quota_failures,
                port_flags: port.attributes.flags,
            })
            .collect();
        let channels = self
            .channels
            .iter()
            .map(|(&id, c)| {
                let main_depth = self
                    .ports
                    .get(&c.connection_port)
                    .map_or(0, |p| p.queue.iter().filter(|m| m.channel == Some(id)).count());
                ChannelView {
                    id,
                    connection_port: c.connection_port,
                    port_context: c.port_context,
                    max_message_length: c.max_message_length,
                    connected: c.connected,
                    server_port: CommunicationPortView { owner: cid(&c.server), handle: c.server_handle },
                    client_port: CommunicationPortView { owner: cid(&c.client), handle: c.client_handle },
                    client_queue: c.client_queue.iter().map(message_view).collect(),
                    client_pool_usage: c.client_pool_usage,
                    main_queue_depth: main_depth as u32,
                    pending_depth: self.pending.values().filter(|r| r.channel == id).count() as u32,
                    client_section: c.client_section,
                    server_section: c.server_section,
                    counters: c.counters,
                }
            })
            .collect();
        let sections = self
            .sections
            .iter()
            .map(|(&id, s)| SectionView {
                id,
                channel: s.channel,
                direction: match s.writer {
                    Side::Client => "client→server".into(),
                    Side::Server => "server→client".into(),
                },
                size: s.size,
                bytes_in_use: s.bytes_in_use(),
                views: s
                    .views
                    .iter()
                    .map(|(&offset, v)| SectionViewRegion { offset, size: v.size, in_message: v.in_message })
                    .collect(),
                mapped_by: s.mappings.iter().map(|(c, &base)| SectionMapping { process: cid(c), base }).collect(),
                holders: s.handles.keys().map(cid).collect(),
            })
            .collect();
        let direct_access = self
            .pending
            .iter()
            .filter(|(_, r)| !r.data_info.is_empty())
            .map(|(&mid, r)| DirectAccessView {
                message_id: mid,
                client: cid(&r.from),
                server: cid(&r.held_by),
                regions: r.data_info.clone(),
                granted: self.processes.get(&r.from).is_some_and(|p| p.direct_access_granted),
                open: self.waits_for(r.from, mid, 0),
            })
            .collect();
        let callbacks = self
            .processes
            .iter()
            .flat_map(|(&client, p)| {
                p.serving_callbacks.iter().map(move |s| CallbackView {
                    message_id: s.message_id,
                    callback_id: s.callback_id,
                    server: self.client_id(s.caller),
                    server_waiting: self.waits_for(s.caller, s.message_id, s.callback_id),
                    client: self.client_id(client),
                })
            })
            .collect();
        AlpcState {
            kernel_pid: self.config.kernel_pid,
            small_max: self.config.small_max,
            max_pool_usage: self.config.max_pool_usage,
            processes,
            directory: self.directory.iter().map(|(name, &port)| DirectoryEntry { name: name.clone(), port }).collect(),
            connection_ports,
            channels,
            sections,
            direct_access,
            callbacks,
            totals: self.totals,
            recent_calls: self.log.iter().cloned().collect(),
            calls_total: self.calls_total,
        }
    }

    /// True when nothing is left: no process, port, channel, section,
    /// message or pool charge. After every process disconnected this must hold.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.directory.is_empty()
            && self.ports.is_empty()
            && self.channels.is_empty()
            && self.sections.is_empty()
            && self.connects.is_empty()
            && self.pending.is_empty()
            && self.live_messages == 0
            && self.total_section_bytes == 0
    }

    /// Checks the kernel's internal consistency; `Err` names the first
    /// broken rule.
    pub fn check_invariants(&self) -> Result<(), String> {
        // Handles point at live objects, and objects know their handles.
        for (&conn, p) in &self.processes {
            if p.handles.len() > self.config.limits.max_handles_per_process {
                return Err(format!("process {conn} exceeds the handle limit"));
            }
            for (&h, target) in &p.handles {
                let ok = match *target {
                    HandleTarget::ConnectionPort(id) => {
                        self.ports.get(&id).is_some_and(|port| port.server == conn && port.handle_open)
                    }
                    HandleTarget::ServerCommPort(id) => {
                        self.channels.get(&id).is_some_and(|c| c.server == conn && c.server_handle == Some(h))
                    }
                    HandleTarget::ClientCommPort(id) => {
                        self.channels.get(&id).is_some_and(|c| c.client == conn && c.client_handle == Some(h))
                    }
                    HandleTarget::Section(id) => {
                        self.sections.get(&id).is_some_and(|s| s.handles.get(&conn) == Some(&h))
                    }
                };
                if !ok {
                    return Err(format!("process {conn} handle 0x{h:x} → {target:?} is dangling"));
                }
            }
            let broken_wait = match p.blocked.as_ref().map(|b| b.wait) {
                Some(Wait::Reply) => p.reply_stack.is_empty(),
                Some(Wait::Receive(ReceiveSource::ConnectionPort(port))) => {
                    !self.ports.get(&port).is_some_and(|x| x.receivers.contains(&conn))
                }
                Some(Wait::Receive(ReceiveSource::ClientPort(ch))) => {
                    !self.channels.get(&ch).is_some_and(|x| x.client_receivers.contains(&conn))
                }
                Some(Wait::Connect { message_id }) => self.connects.get(&message_id).is_none_or(|c| c.client != conn),
                Some(Wait::Copy { .. }) | None => false,
            };
            if broken_wait {
                return Err(format!("process {conn} is blocked in a wait the kernel does not track"));
            }
            if p.reply_stack.len() > self.config.limits.max_nesting {
                return Err(format!("process {conn} nests too deep"));
            }
        }
        for (name, id) in &self.directory {
            if !self.ports.get(id).is_some_and(|p| &p.name == name && p.handle_open) {
                return Err(format!("directory entry {name} is stale"));
            }
        }
        // Pool usage equals the charges of what is queued or pending there.
        let mut live = 0usize;
        for (&id, port) in &self.ports {
            let queued: u64 = port.queue.iter().map(|m| m.charge).sum();
            let pending: u64 =
                self.pending.values().filter(|r| r.loc == QueueLoc::ConnectionPort(id)).map(|r| r.charge).sum();
            if port.pool_usage != queued + pending {
                return Err(format!("port {id} pool usage {} ≠ {queued} + {pending}", port.pool_usage));
            }
            if port.pool_usage > port.max_pool_usage {
                return Err(format!("port {id} is over its pool quota"));
            }
            live += port.queue.len();
            for &r in &port.receivers {
                let ok = self.processes.get(&r).and_then(|p| p.blocked.as_ref()).map(|b| b.wait)
                    == Some(Wait::Receive(ReceiveSource::ConnectionPort(id)));
                if !ok {
                    return Err(format!("port {id} lists receiver {r} that is not receiving"));
                }
            }
            if !port.receivers.is_empty() && !port.queue.is_empty() {
                return Err(format!("port {id} has both waiting receivers and queued messages"));
            }
            for ch in &port.channels {
                if self.channels.get(ch).map(|c| c.connection_port) != Some(id) {
                    return Err(format!("port {id} lists foreign channel {ch}"));
                }
            }
            if !port.handle_open && port.channels.is_empty() {
                return Err(format!("port {id} should have been deleted"));
            }
        }
        for (&id, c) in &self.channels {
            let queued: u64 = c.client_queue.iter().map(|m| m.charge).sum();
            let pending: u64 =
                self.pending.values().filter(|r| r.loc == QueueLoc::ClientPort(id)).map(|r| r.charge).sum();
            if c.client_pool_usage != queued + pending {
                return Err(format!("channel {id} client pool usage mismatch"));
            }
            if c.client_pool_usage > c.max_pool_usage {
                return Err(format!("channel {id} is over its pool quota"));
            }
            live += c.client_queue.len();
            if !self.ports.get(&c.connection_port).is_some_and(|p| p.channels.contains(&id)) {
                return Err(format!("channel {id} is not listed on its connection port"));
            }
            if c.server_handle.is_none() && c.client_handle.is_none() {
                return Err(format!("channel {id} should have been deleted"));
            }
            if !c.connected && !c.client_queue.is_empty() {
                return Err(format!("disconnected channel {id} still has queued messages"));
            }
            for section in [c.client_section, c.server_section].into_iter().flatten() {
                if self.sections.get(&section).map(|s| s.channel) != Some(id) {
                    return Err(format!("channel {id} names a missing section {section}"));
                }
            }
        }
        live += self.pending.len();
        if live != self.live_messages {
            return Err(format!("{} live messages counted, {live} found", self.live_messages));
        }
        if self.live_messages > self.config.limits.max_messages_total + self.config.limits.max_channels {
            return Err("message limit exceeded".into());
        }
        for (&mid, r) in &self.pending {
            if !self.processes.contains_key(&r.held_by) {
                return Err(format!("pending {mid} held by a gone process"));
            }
            if !self.channels.contains_key(&r.channel) {
                return Err(format!("pending {mid} on a gone channel"));
            }
        }
        for (&mid, c) in &self.connects {
            if !self.ports.contains_key(&c.port) {
                return Err(format!("connection request {mid} on a gone port"));
            }
            let client_waits = self
                .processes
                .get(&c.client)
                .and_then(|p| p.blocked.as_ref())
                .is_some_and(|b| b.wait == Wait::Connect { message_id: mid });
            if !client_waits {
                return Err(format!("connection request {mid} has no waiting client"));
            }
        }
        let mut section_bytes = 0;
        for (&id, s) in &self.sections {
            section_bytes += s.size;
            let mut end = 0u64;
            for (&offset, v) in &s.views {
                if offset < end || offset.saturating_add(v.size) > s.size {
                    return Err(format!("section {id} views overlap or overflow"));
                }
                end = offset + v.size;
            }
            if s.views.len() > self.config.limits.max_views_per_section {
                return Err(format!("section {id} has too many views"));
            }
            if !self.channels.contains_key(&s.channel) {
                return Err(format!("section {id} belongs to a gone channel"));
            }
        }
        if section_bytes != self.total_section_bytes || section_bytes > self.config.limits.max_total_section_bytes {
            return Err("section byte total mismatch".into());
        }
        if self.log.len() > self.config.limits.log_lines {
            return Err("log ring overflow".into());
        }
        Ok(())
    }
}

/// Shortens every list in `state` that grows with traffic to `keep` entries.
fn trim_state(state: &mut AlpcState, keep: usize) {
    for port in &mut state.connection_ports {
        port.main_queue.truncate(keep);
        port.pending_queue.truncate(keep);
        port.connection_requests.truncate(keep);
    }
    for channel in &mut state.channels {
        channel.client_queue.truncate(keep);
    }
    for section in &mut state.sections {
        section.views.truncate(keep);
    }
    let skip = state.recent_calls.len().saturating_sub(keep * 4);
    state.recent_calls.drain(..skip);
}

fn header_for(
    kind: LpcMessageType,
    client_id: ClientId,
    message_id: u32,
    callback_id: u32,
    data_length: usize,
    data_entries: usize,
) -> PortMessageHeader {
    let info = if data_entries > 0 {
        PORT_DATA_INFORMATION_SIZE as usize + PORT_DATA_ENTRY_SIZE as usize * data_entries
    } else {
        0
    };
    let data_length = u16::try_from(data_length).unwrap_or(u16::MAX);
    let total = PORT_MESSAGE_SIZE as usize + usize::from(data_length) + info;
    PortMessageHeader {
        data_length,
        total_length: u16::try_from(total).unwrap_or(u16::MAX),
        msg_type: kind.code(),
        // PORT_DATA_INFORMATION follows the payload, as LPC clients lay it out.
        data_info_offset: if data_entries > 0 {
            u16::try_from(PORT_MESSAGE_SIZE as usize + usize::from(data_length)).unwrap_or(u16::MAX)
        } else {
            0
        },
        client_id,
        message_id,
        callback_id,
    }
}

/// What a queued message costs against the pool: NT charges the kernel's
/// message blob — header, copied payload and attributes.
fn pool_charge(data_length: usize, has_view: bool, data_entries: usize) -> u64 {
    let mut charge = u64::from(PORT_MESSAGE_SIZE) + data_length as u64;
    if has_view {
        charge += u64::from(ALPC_DATA_VIEW_ATTR_SIZE);
    }
    if data_entries > 0 {
        charge += u64::from(PORT_DATA_INFORMATION_SIZE) + u64::from(PORT_DATA_ENTRY_SIZE) * data_entries as u64;
    }
    charge
}

/// NT object names are absolute paths: `\RPC Control\name`.
fn valid_object_name(name: &str) -> bool {
    name.len() > 1
        && name.starts_with('\\')
        && !name.ends_with('\\')
        && !name.contains("\\\\")
        && !name.chars().any(|c| c.is_control())
}

/// Object names as the screen shows them: backslashes as they are (NT
/// paths), control characters — which could upset a terminal — as `?`.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn client_text(id: ClientId) -> String {
    format!("{}:{}", id.unique_process, id.unique_thread)
}

fn describe_payload(data_length: usize, view: Option<&ViewAttribute>, data_info: &[PortDataEntry]) -> String {
    let mut parts = Vec::new();
    if let Some(v) = view {
        parts.push(format!("{} bytes via section @0x{:x}", v.size, v.offset));
    }
    if data_length > 0 || view.is_none() {
        parts.push(format!("{data_length} bytes copied"));
    }
    if !data_info.is_empty() {
        let total: u64 = data_info.iter().map(|e| e.size).sum();
        parts.push(format!("{total} bytes declared for direct access"));
    }
    parts.join(" + ")
}

fn describe_body(body: &ResponseBody) -> String {
    match body {
        ResponseBody::Handle { handle } => format!(", handle {}", handle_text(*handle)),
        ResponseBody::Connected { port, .. } => format!(", client port {}", handle_text(*port)),
        ResponseBody::Section { section, size } => format!(", section {} ({size} bytes)", handle_text(*section)),
        ResponseBody::View { offset, size, .. } if *size > 0 => format!(", view @0x{offset:x} ({size} bytes)"),
        ResponseBody::Message(m) => {
            let kind = m.header.message_type().map_or("?", LpcMessageType::name);
            let callback = if m.header.callback_id != 0 { format!("/{}", m.header.callback_id) } else { String::new() };
            format!(
                " → {kind} id={}{callback} from {}: {}",
                m.header.message_id,
                client_text(m.header.client_id),
                describe_payload(m.data.len(), m.view.as_ref(), &m.data_info)
            )
        }
        ResponseBody::Transferred { bytes } => format!(", {bytes} bytes"),
        _ => String::new(),
    }
}

fn describe_wait(wait: &Wait) -> String {
    match wait {
        Wait::Connect { message_id } => format!("waiting for the server to accept (id {message_id})"),
        Wait::Receive(ReceiveSource::ConnectionPort(_)) => "waiting to receive on the connection port".into(),
        Wait::Receive(ReceiveSource::ClientPort(_)) => "waiting to receive on the client port".into(),
        Wait::Reply => "waiting for the reply".into(),
        Wait::Copy { .. } => "copying between address spaces".into(),
    }
}

#[cfg(test)]
#[path = "kernel_tests.rs"]
mod tests;
