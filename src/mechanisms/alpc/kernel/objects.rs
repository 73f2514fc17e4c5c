//! The object manager's records: handles, connection ports, channels
//! (a pair of communication ports), sections and their views, messages,
//! pending requests and what a blocked thread waits for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{ConnId, CopyDirection, Millis, SectionId};
use crate::mechanisms::alpc::proto::{PortAttributes, ResponseBody};
use crate::mechanisms::alpc::state::PathCounters;
use crate::mechanisms::alpc::types::{
    ClientId, LpcMessageType, NtStatus, PortDataEntry, PortMessageHeader, ALPC_DATA_VIEW_ATTR_SIZE,
    PORT_DATA_ENTRY_SIZE, PORT_DATA_INFORMATION_SIZE, PORT_MESSAGE_SIZE,
};

pub(super) type PortId = u64;
pub(super) type ChannelId = u64;

/// Views inside a section start on this boundary, so offsets read well
/// ("@0x1000") and no two messages share a cache line.
const VIEW_ALIGNMENT: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HandleTarget {
    ConnectionPort(PortId),
    ServerCommPort(ChannelId),
    ClientCommPort(ChannelId),
    Section(SectionId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Server,
    Client,
}

/// Where a message (or a pending request's pool charge) lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum QueueLoc {
    ConnectionPort(PortId),
    ClientPort(ChannelId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SentView {
    pub(super) section: SectionId,
    pub(super) offset: u64,
    pub(super) size: u64,
}

#[derive(Clone, Debug)]
pub(super) struct Message {
    pub(super) header: PortMessageHeader,
    pub(super) kind: LpcMessageType,
    pub(super) channel: Option<ChannelId>,
    pub(super) port_context: u64,
    pub(super) sender: ConnId,
    pub(super) data: Vec<u8>,
    pub(super) view: Option<SentView>,
    pub(super) data_info: Vec<PortDataEntry>,
    pub(super) charge: u64,
}

/// A request taken by a receiver and not yet replied to (NT's pending queue).
#[derive(Clone, Debug)]
pub(super) struct PendingRequest {
    pub(super) channel: ChannelId,
    pub(super) loc: QueueLoc,
    pub(super) from: ConnId,
    pub(super) held_by: ConnId,
    pub(super) charge: u64,
    pub(super) view: Option<SentView>,
    pub(super) data_info: Vec<PortDataEntry>,
    pub(super) data_length: usize,
    pub(super) callback_id: u32,
    pub(super) sender: ClientId,
    pub(super) port_context: u64,
}

#[derive(Clone, Debug)]
pub(super) struct ConnectRequest {
    pub(super) port: PortId,
    pub(super) client: ConnId,
    pub(super) attributes: PortAttributes,
    pub(super) client_section_size: u64,
    pub(super) received: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReceiveSource {
    ConnectionPort(PortId),
    ClientPort(ChannelId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wait {
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
pub(super) struct Blocked {
    pub(super) call_id: u32,
    pub(super) wait: Wait,
    pub(super) deadline: Option<Millis>,
    pub(super) call_text: String,
    /// When it blocked, on the kernel's clock.
    pub(super) since: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Awaited {
    pub(super) message_id: u32,
    pub(super) callback_id: u32,
    pub(super) channel: ChannelId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ServingCallback {
    pub(super) message_id: u32,
    pub(super) callback_id: u32,
    pub(super) caller: ConnId,
    pub(super) channel: ChannelId,
}

#[derive(Clone, Debug)]
pub(super) struct Process {
    pub(super) client_id: ClientId,
    pub(super) name: String,
    pub(super) handles: BTreeMap<u32, HandleTarget>,
    pub(super) next_handle: u32,
    pub(super) blocked: Option<Blocked>,
    pub(super) reply_stack: Vec<Awaited>,
    pub(super) serving_callbacks: Vec<ServingCallback>,
    pub(super) direct_access_granted: bool,
    /// Views delivered to this process that NT would release when the
    /// receiver is done with the message; we take "its next call" as done.
    pub(super) release_on_next_call: Vec<(SectionId, u64)>,
}

#[derive(Clone, Debug)]
pub(super) struct ConnectionPort {
    pub(super) name: String,
    pub(super) handle_open: bool,
    pub(super) server: ConnId,
    pub(super) attributes: PortAttributes,
    pub(super) max_message_length: u32,
    pub(super) max_pool_usage: u64,
    pub(super) pool_usage: u64,
    pub(super) queue: VecDeque<Message>,
    pub(super) receivers: VecDeque<ConnId>,
    pub(super) channels: BTreeSet<ChannelId>,
    pub(super) refusals: u64,
    pub(super) quota_failures: u64,
}

#[derive(Clone, Debug)]
pub(super) struct Channel {
    pub(super) connection_port: PortId,
    pub(super) port_context: u64,
    pub(super) max_message_length: u32,
    pub(super) max_pool_usage: u64,
    pub(super) server: ConnId,
    pub(super) client: ConnId,
    pub(super) server_handle: Option<u32>,
    pub(super) client_handle: Option<u32>,
    pub(super) connected: bool,
    pub(super) client_queue: VecDeque<Message>,
    pub(super) client_receivers: VecDeque<ConnId>,
    pub(super) client_pool_usage: u64,
    pub(super) client_section: Option<SectionId>,
    pub(super) server_section: Option<SectionId>,
    pub(super) counters: PathCounters,
}

impl Channel {
    pub(super) fn side_of(&self, conn: ConnId, target: HandleTarget) -> Option<Side> {
        match target {
            HandleTarget::ServerCommPort(_) if conn == self.server => Some(Side::Server),
            HandleTarget::ClientCommPort(_) if conn == self.client => Some(Side::Client),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct ViewRegion {
    pub(super) size: u64,
    pub(super) in_message: Option<u32>,
    /// `ALPC_VIEWFLG_AUTO_RELEASE`: freed with its message, not kept.
    pub(super) auto_release: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Section {
    pub(super) channel: ChannelId,
    /// Which side writes into it: the client section carries client→server
    /// messages, the server section carries replies.
    pub(super) writer: Side,
    pub(super) size: u64,
    pub(super) views: BTreeMap<u64, ViewRegion>,
    pub(super) handles: BTreeMap<ConnId, u32>,
    pub(super) mappings: BTreeMap<ConnId, u64>,
    /// Processes that already got the memfd.
    pub(super) delivered: BTreeSet<ConnId>,
}

impl Section {
    pub(super) fn bytes_in_use(&self) -> u64 {
        self.views.values().map(|v| v.size).sum()
    }

    /// First fit over the gaps between views, each view aligned.
    pub(super) fn allocate(&self, size: u64) -> Option<u64> {
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
pub(super) enum Flow {
    Done { status: NtStatus, body: ResponseBody, attach: Vec<SectionId> },
    Blocked { wait: Wait, deadline: Option<Millis> },
}

impl Flow {
    pub(super) fn ok(body: ResponseBody) -> Self {
        Flow::Done { status: NtStatus::STATUS_SUCCESS, body, attach: Vec::new() }
    }
    pub(super) fn status(status: NtStatus) -> Self {
        Flow::Done { status, body: ResponseBody::None, attach: Vec::new() }
    }
}

pub(super) type CallResult = Result<Flow, NtStatus>;

pub(super) fn header_for(
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
pub(super) fn pool_charge(data_length: usize, has_view: bool, data_entries: usize) -> u64 {
    let mut charge = u64::from(PORT_MESSAGE_SIZE) + data_length as u64;
    if has_view {
        charge += u64::from(ALPC_DATA_VIEW_ATTR_SIZE);
    }
    if data_entries > 0 {
        charge += u64::from(PORT_DATA_INFORMATION_SIZE) + u64::from(PORT_DATA_ENTRY_SIZE) * data_entries as u64;
    }
    charge
}
