//! What the emulated NT kernel shows an observer: plain data, serde both
//! ways, so the monitor can sample it, record it and replay it.
//!
//! The shapes follow the textbook's picture (connection port, a channel of
//! two communication ports per client, sections, direct access, callbacks)
//! but every message sits where NT really keeps it: client→server messages
//! in the connection port's main queue, requests being served on its
//! pending queue, server→client messages on the client communication port,
//! and replies in no queue at all (handed to the waiting thread).

use super::types::{ClientId, PortDataEntry};
use serde::{Deserialize, Serialize};

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
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlpcState {
    pub kernel_pid: u32,
    /// `alpc.small_max`: largest payload copied through a queue.
    pub small_max: u32,
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
    /// Requests this thread awaits replies for, innermost last: (MessageId, CallbackId).
    pub awaiting_replies: Vec<(u32, u32)>,
    /// Callbacks delivered to this thread that it has not answered yet.
    pub serving_callbacks: Vec<(u32, u32)>,
    /// The process told the kernel it ran `prctl(PR_SET_PTRACER, kernel)`.
    pub direct_access_granted: bool,
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
