//! `NtAlpcSendWaitReceivePort`: what a message sent through a handle is
//! (request, datagram, callback, reply), where it goes, and receiving.

use super::objects::{
    header_for, pool_charge, Awaited, CallResult, ChannelId, Flow, HandleTarget, Message, QueueLoc, ReceiveSource,
    SentView, ServingCallback, Side, Wait,
};
use super::{AlpcKernel, ConnId, Millis};
use crate::mechanisms::alpc::proto::{ResponseBody, SendMessage};
use crate::mechanisms::alpc::types::{msg_flags, LpcMessageType, NtStatus};

impl AlpcKernel {
    pub(super) fn send_wait_receive(
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
    pub(super) fn outbound(&self, conn: ConnId, target: HandleTarget) -> Result<(ChannelId, Side, QueueLoc), NtStatus> {
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
    pub(super) fn handle_reaches(&self, target: HandleTarget, ch: ChannelId) -> bool {
        match target {
            HandleTarget::ConnectionPort(p) => self.channels.get(&ch).is_some_and(|c| c.connection_port == p),
            HandleTarget::ServerCommPort(c) | HandleTarget::ClientCommPort(c) => c == ch,
            HandleTarget::Section(_) => false,
        }
    }

    /// The request `message_id` that `conn` may answer (a reply or a
    /// callback) through `target`: it holds the request, the handle reaches
    /// its channel, the channel is connected and the sender still waits for
    /// exactly this request. Gives the channel and the waiting process.
    fn answerable(&self, conn: ConnId, target: HandleTarget, message_id: u32) -> Result<(ChannelId, ConnId), NtStatus> {
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
        Ok((ch, waiter))
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
        let (ch, client) = self.answerable(conn, target, served_id)?;
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
        let (ch, waiter) = self.answerable(conn, target, message_id)?;
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
}
