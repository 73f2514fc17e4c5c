//! Closing: a handle goes, a channel breaks (its messages freed, its
//! waiters woken), a channel or connection port with no handle left is
//! deleted.

use std::collections::VecDeque;

use super::objects::{header_for, ChannelId, HandleTarget, Message, PortId, QueueLoc, Side, Wait};
use super::{AlpcKernel, ConnId};
use crate::mechanisms::alpc::proto::ResponseBody;
use crate::mechanisms::alpc::types::{LpcMessageType, NtStatus};

impl AlpcKernel {
    pub(super) fn close_handle(&mut self, conn: ConnId, handle: u32) {
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
    pub(super) fn disconnect_channel(&mut self, ch: ChannelId, initiator: Side) {
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
}
