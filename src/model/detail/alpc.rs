//! ALPC's detail: the emulated NT kernel's tables and what the workers
//! report, as the panel shows them. These are the model's own types: the
//! probe reads the kernel's observer answer (JSON) and the workers' reports
//! into them, so a change inside the kernel does not change this JSON.

use serde::{Deserialize, Serialize};

pub use super::emu::{EmuCall, EmuWait};

/// A `PORT_MESSAGE` header a process received, and how its data came.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeenMessage {
    /// The role that received it.
    pub by: String,
    pub header: PortMessageHeader,
    /// 0 copied, 1 section view, 2 direct-access regions.
    pub path: u8,
    pub bytes: u64,
    pub view_offset: u64,
}

/// One client as it counts itself (its telemetry slot).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientFigures {
    pub role: String,
    pub pid: i32,
    /// Its client communication port handle (0 = not connected).
    pub port: u32,
    /// Calls whose arguments were copied / passed in a section / read directly.
    pub copied: u64,
    pub section: u64,
    pub direct: u64,
    pub callbacks_served: u64,
    pub refusals: u64,
    /// It ran `prctl(PR_SET_PTRACER, kernel)`.
    pub ptracer_granted: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerFigures {
    pub accepted: u64,
    pub refused: u64,
    pub callbacks_ok: u64,
    pub callbacks_bad: u64,
}

/// What the ALPC panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AlpcDetail {
    /// The kernel answered this sample.
    pub kernel_up: bool,
    /// `\RPC Control\ipcscope-echo`.
    pub port_name: String,
    pub small_max: u64,
    pub section_size: u64,
    pub max_pool_usage: u64,
    pub callbacks: bool,
    pub accept: bool,
    /// The kernel's tables (queues cut to a few messages each).
    pub state: Option<AlpcState>,
    /// Which pid plays which role, to name the kernel's processes.
    pub roles: Vec<(u32, String)>,
    pub clients: Vec<ClientFigures>,
    pub server: ServerFigures,
    /// The latest `PORT_MESSAGE` headers received, server's and clients'.
    pub headers: Vec<SeenMessage>,
    /// The latest RPC call's layers, and which client made it.
    pub rpc: Vec<RpcStep>,
    pub rpc_by: String,
    /// `msg.size`: the size of the clients' call arguments now.
    #[serde(default)]
    pub msg_size: u64,
    /// The largest message the queue path carries: the channel's
    /// `MaxMessageLength` (`msg.size` counts the RPC runtime's header and
    /// the arguments, as this does).
    #[serde(default)]
    pub queue_max: u64,
    /// Bytes of the RPC runtime's header in each call's message.
    #[serde(default)]
    pub rpc_header: u64,
    /// The kernel's `alpc.personality` now (`lpc`, `alpc`; empty when the
    /// kernel did not answer).
    #[serde(default)]
    pub personality: String,
    /// Size of the section the first client's channel has for its
    /// requests, if it has one (the client decides at connect).
    #[serde(default)]
    pub own_section: Option<u64>,
    /// The path a call of `msg_size` bytes takes now (0 copied through
    /// the queue, 1 section, 2 direct), by the RPC runtime's own rule
    /// against this run's limits; `None` when the sizes vary
    /// (`alpc.mix`) or no channel says what the limits are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_now: Option<u8>,
}

/// Fields recordings made before them lack stay out of the JSON when 0.
fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl AlpcDetail {
    pub fn role_of(&self, pid: u32) -> Option<&str> {
        self.roles.iter().find(|(p, _)| *p == pid).map(|(_, r)| r.as_str())
    }

    /// The pid playing `role`.
    pub fn pid_of(&self, role: &str) -> Option<u32> {
        self.roles.iter().find(|(_, r)| r == role).map(|(p, _)| *p)
    }

    /// The call the kernel has `role`'s thread blocked in, if any.
    pub fn call_of(&self, role: &str) -> Option<&EmuCall> {
        let pid = self.pid_of(role)?;
        let state = self.state.as_ref()?;
        state.processes.iter().filter(|p| p.client_id.unique_process == pid).find_map(|p| p.call.as_ref())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RpcLayer {
    Application,
    /// The client or server stub: marshalling.
    Stub,
    /// The RPC runtime: binding, endpoint → port, call ids.
    Runtime,
    /// The ALPC system calls.
    Alpc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Down,
    Up,
}

/// One hop of one call through the layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcStep {
    pub layer: RpcLayer,
    pub direction: Direction,
    /// The hop in English, for JSON readers.
    pub detail: String,
    /// The hop as a locale key (`rpc_…` in assets/locales.toml) and its
    /// arguments, drawn in the reader's language; empty in old reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, String)>,
}

impl RpcStep {
    /// The value of argument `name`, if the step has it.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The `PORT_MESSAGE` header as a receiver sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMessageHeader {
    /// `u1.s1.DataLength`: payload bytes after the header.
    pub data_length: u16,
    /// `u1.s1.TotalLength`: header + payload (+ data information).
    pub total_length: u16,
    /// `u2.s2.Type`, flags included.
    pub msg_type: u16,
    /// `u2.s2.DataInfoOffset`: where `PORT_DATA_INFORMATION` sits, 0 if none.
    pub data_info_offset: u16,
    pub client_id: ClientId,
    /// Global counter stamped by the kernel, never 0.
    pub message_id: u32,
    /// Non-zero only on a callback (nested request).
    pub callback_id: u32,
}

impl PortMessageHeader {
    /// The type's NT name (`LPC_REQUEST`, …), flag bits masked; `None` for a
    /// code the kernel does not model.
    pub fn type_name(&self) -> Option<&'static str> {
        Some(match self.msg_type & 0x00FF {
            0 => "LPC_NEW_MESSAGE",
            1 => "LPC_REQUEST",
            2 => "LPC_REPLY",
            3 => "LPC_DATAGRAM",
            4 => "LPC_LOST_REPLY",
            5 => "LPC_PORT_CLOSED",
            6 => "LPC_CLIENT_DIED",
            10 => "LPC_CONNECTION_REQUEST",
            _ => return None,
        })
    }
}

/// `CLIENT_ID`: who sent a message. The kernel stamps it from the sender's
/// credentials on every send; whatever a sender puts there is ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientId {
    /// `UniqueProcess`: the Linux pid (from `SO_PEERCRED`).
    pub unique_process: u32,
    /// `UniqueThread`: the Linux tid the process registered with.
    pub unique_thread: u32,
}

/// `PORT_DATA_ENTRY`: one region of the client's address space the server
/// may read or write with `NtReadRequestData` / `NtWriteRequestData`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortDataEntry {
    pub base: u64,
    pub size: u64,
}

/// Bytes and messages moved by each of the three data paths, plus the events
/// a panel counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathCounters {
    /// Path 1: messages whose payload the kernel copied (queue or straight to
    /// a waiting thread), and the payload bytes.
    pub copied_messages: u64,
    pub copied_bytes: u64,
    /// Path 2: messages that carried only an offset and size into a section.
    pub section_messages: u64,
    pub section_bytes: u64,
    /// Path 3: `NtReadRequestData` / `NtWriteRequestData` that succeeded.
    pub direct_reads: u64,
    pub direct_read_bytes: u64,
    pub direct_writes: u64,
    pub direct_write_bytes: u64,
    /// Of the direct bytes, those copied in one step, straight into or out of
    /// the server's direct window; the others went through the kernel
    /// process's bounce buffer (two copies).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub direct_window_bytes: u64,
    pub requests: u64,
    pub replies: u64,
    pub datagrams: u64,
    /// Nested requests (LPC callbacks) delivered into a waiting client.
    pub callbacks: u64,
    pub connection_refusals: u64,
    /// Messages refused because the port's pool quota was used up.
    pub quota_failures: u64,
    /// Direct accesses refused: no grant, outside the process, or a failed copy.
    pub access_violations: u64,
    /// Messages thrown away by teardown or timeout, and their payload bytes.
    pub freed_messages: u64,
    pub freed_bytes: u64,
    /// Times `alpc.personality` switched the kernel's rules at run time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub personality_switches: u64,
    /// Sections created on a connected port after connect (ALPC only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sections_after_connect: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlpcState {
    pub kernel_pid: u32,
    /// `alpc.small_max`: largest payload copied through a queue.
    pub small_max: u32,
    /// `alpc.personality` as the kernel follows it now: `lpc` or `alpc`
    /// (empty in recordings older than the knob).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub personality: String,
    /// The largest message a port created now may carry under that
    /// personality (`small_max`, or just under 64 KiB).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub system_max_message: u32,
    /// `alpc.max_pool_usage`: default pool quota per port.
    pub max_pool_usage: u64,
    pub processes: Vec<ProcessView>,
    /// The object directory: named connection ports, e.g. `\RPC Control\…`.
    pub directory: Vec<DirectoryEntry>,
    pub connection_ports: Vec<ConnectionPortView>,
    pub channels: Vec<ChannelView>,
    pub sections: Vec<SectionView>,
    /// Requests whose sender declared regions for direct access, with whether
    /// that sender granted the kernel access to its memory.
    pub direct_access: Vec<DirectAccessView>,
    pub callbacks: Vec<CallbackView>,
    pub totals: PathCounters,
    /// Most recent calls, oldest first, as `NtAlpc…(…) = STATUS_…` lines.
    pub recent_calls: Vec<String>,
    pub calls_total: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessView {
    pub conn: u64,
    pub client_id: ClientId,
    pub name: String,
    pub handles: Vec<HandleView>,
    /// What the thread is blocked in, if anything (e.g. "waiting for reply to id 7").
    pub waiting: Option<String>,
    /// The same, typed: the call under its NT name and why it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<EmuCall>,
    /// Requests this thread awaits replies for, innermost last: (MessageId, CallbackId).
    pub awaiting_replies: Vec<(u32, u32)>,
    /// Callbacks delivered to this thread that it has not answered yet.
    pub serving_callbacks: Vec<(u32, u32)>,
    /// The process told the kernel it ran `prctl(PR_SET_PTRACER, kernel)`.
    pub direct_access_granted: bool,
}

/// What a handle names, read from its `object_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleKind {
    ConnectionPort,
    ServerPort,
    ClientPort,
    Section,
    Other,
}

impl HandleView {
    pub fn kind(&self) -> HandleKind {
        match self.object_type.as_str() {
            "ALPC Connection Port" => HandleKind::ConnectionPort,
            "ALPC Server Communication Port" => HandleKind::ServerPort,
            "ALPC Client Communication Port" => HandleKind::ClientPort,
            "Section" => HandleKind::Section,
            _ => HandleKind::Other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleView {
    /// The handle value, as this process sees it.
    pub handle: u32,
    /// "ALPC Connection Port", "ALPC Server Communication Port",
    /// "ALPC Client Communication Port" or "Section".
    pub object_type: String,
    pub object: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub name: String,
    pub port: u64,
}

/// One message as it sits in a queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub message_id: u32,
    pub callback_id: u32,
    /// `LPC_REQUEST`, `LPC_DATAGRAM`, `LPC_CONNECTION_REQUEST`, `LPC_PORT_CLOSED`, …
    pub msg_type: String,
    pub sender: ClientId,
    pub port_context: u64,
    pub channel: Option<u64>,
    /// Inline payload bytes (path 1).
    pub data_length: u32,
    /// Section view carried instead of data (path 2): (section, offset, size).
    pub view: Option<(u64, u64, u64)>,
    /// Regions declared for direct access (path 3).
    pub data_info: Vec<PortDataEntry>,
    /// Bytes charged against the port's pool quota.
    pub pool_charge: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRequestView {
    pub message_id: u32,
    pub client: ClientId,
    /// Taken by the server with a receive, awaiting `NtAlpcAcceptConnectPort`.
    pub received: bool,
    /// The section the client asked for ("will send large messages"), 0 if none.
    pub client_section_size: u64,
    pub connection_data_length: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionPortView {
    pub id: u64,
    pub name: String,
    /// The server closed its handle: the name is gone, channels live on.
    pub name_deleted: bool,
    pub server: ClientId,
    pub max_message_length: u32,
    pub max_pool_usage: u64,
    pub pool_usage: u64,
    /// NT's main queue: every client→server message of every channel,
    /// tagged by the channel's PortContext, plus connection requests.
    pub main_queue: Vec<MessageView>,
    /// NT's pending queue: requests a server thread took and has not replied to.
    pub pending_queue: Vec<MessageView>,
    pub connection_requests: Vec<ConnectionRequestView>,
    /// Threads blocked receiving on this port.
    pub receivers: Vec<ClientId>,
    pub channels: Vec<u64>,
    pub connection_refusals: u64,
    pub quota_failures: u64,
    /// `ALPC_PORT_ATTRIBUTES.Flags` as given at creation.
    pub port_flags: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunicationPortView {
    pub owner: ClientId,
    /// The owner's handle to it; `None` once the owner closed it.
    pub handle: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    pub id: u64,
    pub connection_port: u64,
    pub port_context: u64,
    pub max_message_length: u32,
    pub connected: bool,
    /// The server's end: messages sent through it land on the client port.
    pub server_port: CommunicationPortView,
    /// The client's end: messages sent through it land on the connection port.
    pub client_port: CommunicationPortView,
    /// Messages waiting on the client communication port (server→client).
    pub client_queue: Vec<MessageView>,
    pub client_pool_usage: u64,
    /// This channel's messages in the connection port's main and pending queues.
    pub main_queue_depth: u32,
    pub pending_depth: u32,
    pub client_section: Option<u64>,
    pub server_section: Option<u64>,
    pub counters: PathCounters,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionViewRegion {
    pub offset: u64,
    pub size: u64,
    /// The message carrying this view, if it was sent.
    pub in_message: Option<u32>,
    /// Freed with its message (`ALPC_VIEWFLG_AUTO_RELEASE`), not kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub auto_release: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionMapping {
    pub process: ClientId,
    /// Where this process mapped the section; each process has its own.
    pub base: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionView {
    pub id: u64,
    pub channel: u64,
    /// "client→server" or "server→client".
    pub direction: String,
    pub size: u64,
    pub bytes_in_use: u64,
    pub views: Vec<SectionViewRegion>,
    pub mapped_by: Vec<SectionMapping>,
    /// Processes holding a handle to it.
    pub holders: Vec<ClientId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectAccessView {
    pub message_id: u32,
    pub client: ClientId,
    pub server: ClientId,
    pub regions: Vec<PortDataEntry>,
    pub granted: bool,
    /// The client still waits for this request's reply, so access is allowed.
    pub open: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackView {
    pub message_id: u32,
    pub callback_id: u32,
    /// The server thread that sent the nested request and waits for its reply.
    pub server: ClientId,
    pub server_waiting: bool,
    /// The client thread serving it while its own request stays unanswered.
    pub client: ClientId,
}
