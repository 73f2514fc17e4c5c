//! Where messages wait: the pool charge at a queue, the queues themselves,
//! the pending list of requests taken and not yet answered, delivery to a
//! receiver, and undoing a wait on timeout or exit.

use std::collections::VecDeque;

use super::objects::{Message, PendingRequest, QueueLoc, ReceiveSource, Wait};
use super::{AlpcKernel, ConnId, SectionId};
use crate::mechanisms::alpc::proto::{ReceivedMessage, ResponseBody};
use crate::mechanisms::alpc::types::{LpcMessageType, NtStatus, ViewAttribute};

impl AlpcKernel {
    pub(super) fn pool_at(&self, loc: QueueLoc) -> (u64, u64) {
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

    pub(super) fn queue_mut(&mut self, loc: QueueLoc) -> Option<&mut VecDeque<Message>> {
        match loc {
            QueueLoc::ConnectionPort(p) => self.ports.get_mut(&p).map(|p| &mut p.queue),
            QueueLoc::ClientPort(ch) => self.channels.get_mut(&ch).map(|c| &mut c.client_queue),
        }
    }

    /// Puts a message on a queue — or, if a thread is blocked receiving
    /// there, hands it over at once.
    pub(super) fn enqueue(&mut self, loc: QueueLoc, message: Message) {
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
    pub(super) fn take_delivery(
        &mut self,
        receiver: ConnId,
        loc: QueueLoc,
        message: Message,
    ) -> (ResponseBody, Vec<SectionId>) {
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
    pub(super) fn deliver_view_and_body(
        &mut self,
        receiver: ConnId,
        message: &Message,
    ) -> (ResponseBody, Vec<SectionId>) {
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

    /// Frees a message that will never be delivered, counting it.
    pub(super) fn free_message(&mut self, loc: QueueLoc, message: Message) {
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
    pub(super) fn drop_pending(&mut self, message_id: u32, wake_sender: bool) {
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
    pub(super) fn waits_for(&self, conn: ConnId, message_id: u32, callback_id: u32) -> bool {
        self.processes.get(&conn).is_some_and(|p| {
            matches!(p.blocked.as_ref().map(|b| b.wait), Some(Wait::Reply))
                && p.reply_stack.last().is_some_and(|a| a.message_id == message_id && a.callback_id == callback_id)
        })
    }

    /// Undoes whatever `conn` is blocked in (timeout or exit). The caller
    /// sends the blocked call's response, if any.
    pub(super) fn cancel_wait(&mut self, conn: ConnId) {
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

    pub(super) fn remove_queued(&mut self, loc: QueueLoc, message_id: u32) {
        let Some(queue) = self.queue_mut(loc) else { return };
        let Some(index) = queue.iter().position(|m| m.header.message_id == message_id && m.header.callback_id == 0)
        else {
            return;
        };
        if let Some(message) = queue.remove(index) {
            self.free_message(loc, message);
        }
    }
}
