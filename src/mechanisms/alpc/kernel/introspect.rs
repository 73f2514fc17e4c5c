//! What an observer sees: the whole state, and a shortened copy when it
//! would not fit one packet.

use super::describe::describe_wait;
use super::objects::{Blocked, HandleTarget, Message, PendingRequest, QueueLoc, Side, Wait};
use super::{AlpcKernel, ConnId, CopyDirection, Millis};
use crate::mechanisms::alpc::state::{
    AlpcState, CallbackView, ChannelView, CommunicationPortView, ConnectionPortView, ConnectionRequestView,
    DirectAccessView, DirectoryEntry, HandleView, MessageView, ProcessView, SectionMapping, SectionView,
    SectionViewRegion,
};
use crate::mechanisms::alpc::types::LpcMessageType;
use crate::model::detail::emu::{EmuCall, EmuWait};

/// The call a blocked thread is in under its NT name, and why it waits.
fn emu_call(b: &Blocked, now: Millis) -> EmuCall {
    let (call, wait) = match b.wait {
        Wait::Connect { .. } => ("NtAlpcConnectPort", EmuWait::Accept),
        Wait::Receive(_) => ("NtAlpcSendWaitReceivePort", EmuWait::Message),
        Wait::Reply => ("NtAlpcSendWaitReceivePort", EmuWait::Reply),
        Wait::Copy { direction: CopyDirection::ReadFromClient, .. } => ("NtReadRequestData", EmuWait::Copy),
        Wait::Copy { direction: CopyDirection::WriteToClient, .. } => ("NtWriteRequestData", EmuWait::Copy),
    };
    EmuCall {
        call: call.into(),
        wait,
        waited_ms: now.saturating_sub(b.since),
        timeout_left_ms: b.deadline.map(|d| d.saturating_sub(now)),
    }
}

impl AlpcKernel {
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
                call: p.blocked.as_ref().map(|b| emu_call(b, self.now)),
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
                    .map(|(&offset, v)| SectionViewRegion {
                        offset,
                        size: v.size,
                        in_message: v.in_message,
                        auto_release: v.auto_release,
                    })
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
            personality: self.config.personality.name().to_string(),
            system_max_message: self.system_max_message(),
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
}

/// Shortens every list in `state` that grows with traffic to `keep` entries.
pub(super) fn trim_state(state: &mut AlpcState, keep: usize) {
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
