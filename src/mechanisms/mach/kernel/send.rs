//! The send half of `mach_msg`, in steps: check the header, copy the
//! rights in (tentatively, on a copy of the sender's space, so that an
//! early failure changes nothing), choose the message's path by the send
//! options when the queue is full, commit, and hand the message on.

use super::kmsg::{Item, Kmsg, MaRequest, SenderInfo};
use super::port::Receiver;
use super::space::{copyin, Effect, Kind, Right, Space};
use super::thread::{BlockedSend, Pending, RcvArgs};
use super::{Attachment, ConnId, Kernel, PortId, TaskId};
use crate::mechanisms::mach::proto::{
    message_size, Descriptor, MachMsgRequest, MsgHeader, ReceivedMessage, MAX_INLINE_BODY,
};
use crate::mechanisms::mach::types::*;

pub(super) enum SendResult {
    /// The message is in the queue (or was handed to a receiver).
    Done,
    /// The call is over with this code (and maybe a pseudo-received message).
    Failed(u32, Option<ReceivedMessage>),
    Blocked,
}

/// What the tentative copyin took: committed only if the send goes on.
struct Copyin<F> {
    pub(super) sender: SenderInfo,
    /// The sender's space without the rights the message carries.
    pub(super) space: Space,
    pub(super) effects: Vec<Effect>,
    pub(super) dest: Right,
    pub(super) reply: Option<Right>,
    pub(super) items: Vec<Item<F>>,
}

/// Where a copied-in message goes.
enum Path {
    /// It carries a receive right that would end up queued on itself.
    Circular,
    /// There is room, or a receiver waiting.
    Enqueue,
    /// Option 4: kept past the limit, with `MACH_NOTIFY_MSG_ACCEPTED` to
    /// this port later.
    KeepPastLimit(PortId),
    /// Options 1 and 2: the thread waits for room.
    Block,
}

impl<F> Kernel<F> {
    /// The send half of `mach_msg`: validate, copy in, then enqueue, block,
    /// fail at once, or keep the message past the limit.
    pub(super) fn send(
        &mut self,
        conn: ConnId,
        task_id: TaskId,
        req: MachMsgRequest,
        fds: Vec<Attachment<F>>,
        call: &str,
        rcv: Option<RcvArgs>,
    ) -> SendResult {
        let steps = self
            .check_send(&req)
            .and_then(|()| self.copyin_msg(task_id, &req, fds))
            .and_then(|c| self.choose_path(conn, &req, &c).map(|path| (c, path)));
        let (c, path) = match steps {
            Ok(v) => v,
            Err(kr) => return SendResult::Failed(kr, None),
        };
        let MachMsgRequest { header: h, body, options, send_timeout, notify, .. } = req;
        let dest_name = h.remote_port;
        let kmsg = self.commit(task_id, c, &h, body);
        match path {
            Path::Circular => {
                // XNU marks such a message circular and destroys it; the
                // send itself succeeds and the port dies.
                self.destroy_kmsg(kmsg);
                SendResult::Done
            }
            Path::KeepPastLimit(notify_port) => {
                self.keep_past_limit(conn, kmsg.dest.port, kmsg, notify_port, dest_name);
                SendResult::Failed(MACH_SEND_WILL_NOTIFY, None)
            }
            Path::Enqueue if self.ports.get(&kmsg.dest.port).is_some_and(|p| p.is_kernel_port()) => {
                self.kobject_serve(kmsg);
                SendResult::Done
            }
            Path::Enqueue => {
                self.enqueue(kmsg.dest.port, kmsg);
                SendResult::Done
            }
            Path::Block => {
                let deadline = (options & MACH_SEND_TIMEOUT != 0).then(|| self.deadline_after(send_timeout));
                let port = kmsg.dest.port;
                let call = call.to_string();
                let since = self.now;
                let bs = BlockedSend { port, dest_name, kmsg, deadline, since, options, notify, call, rcv };
                self.block_sender(conn, bs);
                SendResult::Blocked
            }
        }
    }

    /// The header and the descriptors as the sender wrote them, and room
    /// in the kernel for the message.
    fn check_send(&self, req: &MachMsgRequest) -> Result<(), u32> {
        let h = req.header;
        if h.size < MACH_MSG_HEADER_SIZE || !h.size.is_multiple_of(4) {
            return Err(MACH_SEND_MSG_TOO_SMALL);
        }
        if req.body.len() > MAX_INLINE_BODY || h.size as usize > MAX_INLINE_BODY + 4096 {
            return Err(MACH_SEND_TOO_LARGE);
        }
        let computed = message_size(req.body.len(), &req.descriptors);
        if u64::from(h.size) < computed {
            return Err(MACH_SEND_MSG_TOO_SMALL);
        }
        if u64::from(h.size) > computed {
            return Err(MACH_SEND_INVALID_HEADER);
        }
        let complex = h.bits & MACH_MSGH_BITS_COMPLEX != 0;
        // Vouchers are not emulated (XNU's MACH_SEND_INVALID_VOUCHER value
        // is GNU's MACH_SEND_WILL_NOTIFY, which we return for option 4).
        if h.bits & !MACH_MSGH_BITS_USER != 0
            || (!req.descriptors.is_empty() && !complex)
            || mach_msgh_bits_voucher(h.bits) != 0
            || h.voucher_port != MACH_PORT_NULL
        {
            return Err(MACH_SEND_INVALID_HEADER);
        }
        let dest_disp = mach_msgh_bits_remote(h.bits);
        if !(MACH_MSG_TYPE_MOVE_SEND..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(&dest_disp) {
            return Err(MACH_SEND_INVALID_HEADER);
        }
        let reply_disp = mach_msgh_bits_local(h.bits);
        let reply_disp_ok = (MACH_MSG_TYPE_MOVE_SEND..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(&reply_disp);
        if (h.local_port != MACH_PORT_NULL && !reply_disp_ok) || h.local_port == MACH_PORT_DEAD {
            return Err(MACH_SEND_INVALID_REPLY);
        }
        if !mach_port_valid(h.remote_port) {
            return Err(MACH_SEND_INVALID_DEST);
        }
        let ool_count = req
            .descriptors
            .iter()
            .filter(|d| matches!(d, Descriptor::Ool { .. } | Descriptor::OolRegion { .. }))
            .count();
        if self.alive_msgs >= self.limits.max_messages
            || self.alive_bytes + req.body.len() > self.limits.max_message_bytes
            || self.alive_ool + ool_count > self.limits.max_ool_objects
        {
            return Err(MACH_SEND_NO_BUFFER);
        }
        for d in &req.descriptors {
            if let Descriptor::Port { disposition, .. } = d {
                if !(MACH_MSG_TYPE_MOVE_RECEIVE..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(disposition) {
                    return Err(MACH_SEND_INVALID_TYPE);
                }
            }
        }
        Ok(())
    }

    /// Tentative copyin of the destination, the reply right and the
    /// descriptors, on a copy of the sender's space.
    fn copyin_msg(&self, task_id: TaskId, req: &MachMsgRequest, fds: Vec<Attachment<F>>) -> Result<Copyin<F>, u32> {
        let h = req.header;
        let Some(task) = self.tasks.get(&task_id) else {
            return Err(MACH_SEND_INVALID_DEST);
        };
        let sender = SenderInfo { task: task_id, pid: task.pid, uid: task.uid, gid: task.gid };
        let mut space = task.space.clone();
        let mut effects = Vec::new();
        let Ok(mut dest) = copyin(&mut space, h.remote_port, mach_msgh_bits_remote(h.bits), &mut effects) else {
            return Err(MACH_SEND_INVALID_DEST);
        };
        dest.origin = h.remote_port;
        let Some(port) = self.ports.get(&dest.port) else {
            return Err(MACH_SEND_INVALID_DEST);
        };
        // Kernel objects answer MIG requests in real Mach; here the task
        // port answers a simple `task_info`, and the other services are the
        // bootstrap_* / mach_port_* calls instead.
        let kobject = self.kobject_answers(dest.port, h.id) && req.descriptors.is_empty();
        if port.is_kernel_port() && !kobject {
            return Err(MACH_SEND_INVALID_DEST);
        }
        let reply = if h.local_port == MACH_PORT_NULL {
            None
        } else {
            match copyin(&mut space, h.local_port, mach_msgh_bits_local(h.bits), &mut effects) {
                Ok(r) => Some(r),
                Err(_) => return Err(MACH_SEND_INVALID_REPLY),
            }
        };
        let mut slots: Vec<Option<Attachment<F>>> = fds.into_iter().map(Some).collect();
        let mut items = Vec::with_capacity(req.descriptors.len());
        for d in &req.descriptors {
            match *d {
                Descriptor::Port { name, disposition } => {
                    let type_name = match disposition {
                        MACH_MSG_TYPE_COPY_SEND | MACH_MSG_TYPE_MAKE_SEND => MACH_MSG_TYPE_PORT_SEND,
                        MACH_MSG_TYPE_MAKE_SEND_ONCE => MACH_MSG_TYPE_PORT_SEND_ONCE,
                        other => other,
                    };
                    if !mach_port_valid(name) {
                        items.push(Item::Port { right: None, type_name });
                        continue;
                    }
                    match copyin(&mut space, name, disposition, &mut effects) {
                        Ok(r) => items.push(Item::Port { right: Some(r), type_name }),
                        Err(_) => return Err(MACH_SEND_INVALID_RIGHT),
                    }
                }
                Descriptor::Ool { size, copy, deallocate, fd_index } => {
                    let slot = slots.get_mut(fd_index as usize).and_then(Option::take);
                    match slot {
                        // A pool is writable by its owner: never as a snapshot.
                        Some(a) if !a.pool && a.len.is_some_and(|len| len >= u64::from(size)) => {
                            let copied = a.copied;
                            items.push(Item::Ool { size, copy, deallocate, mem: a.handle, region: None, copied })
                        }
                        _ => return Err(MACH_SEND_INVALID_MEMORY),
                    }
                }
                // `pool` was resolved to a descriptor by the server (or
                // left `NO_FD`, which no slot answers).
                Descriptor::OolRegion { offset, size, deallocate, fd_index, .. } => {
                    let slot = slots.get_mut(fd_index as usize).and_then(Option::take);
                    let Some(a) = slot else { return Err(MACH_SEND_INVALID_MEMORY) };
                    // Every number is the task's: the range must lie inside
                    // the memory as measured, without overflow.
                    let inside = offset.checked_add(u64::from(size)).zip(a.len).is_some_and(|(end, len)| end <= len);
                    if !inside {
                        return Err(MACH_SEND_INVALID_MEMORY);
                    }
                    let item = if a.pool {
                        // Moved: the receiver maps the pool; without
                        // `deallocate` the server must have made a snapshot.
                        if !deallocate {
                            return Err(MACH_SEND_INVALID_MEMORY);
                        }
                        Item::Ool {
                            size,
                            copy: MACH_MSG_VIRTUAL_COPY,
                            deallocate,
                            mem: a.handle,
                            region: Some(offset),
                            copied: false,
                        }
                    } else if offset == 0 {
                        Item::Ool {
                            size,
                            copy: MACH_MSG_VIRTUAL_COPY,
                            deallocate,
                            mem: a.handle,
                            region: None,
                            copied: a.copied,
                        }
                    } else {
                        return Err(MACH_SEND_INVALID_MEMORY);
                    };
                    items.push(item);
                }
            }
        }
        Ok(Copyin { sender, space, effects, dest, reply, items })
    }

    /// Where the message goes, by room in the queue and, when it is full,
    /// the send options: a send-once destination has a bigger queue of its
    /// own; with a zero timeout, option 3 returns at once and option 4
    /// (`MACH_SEND_NOTIFY`) keeps the message if this thread may.
    fn choose_path(&mut self, conn: ConnId, req: &MachMsgRequest, c: &Copyin<F>) -> Result<Path, u32> {
        // Would a receive right in the message end up queued on itself
        // (directly or through a chain of in-transit ports)?
        let circular = c.items.iter().any(|i| match i {
            Item::Port { right: Some(r), .. } if r.kind == Kind::Receive => self.chain_reaches(c.dest.port, r.port),
            _ => false,
        });
        let port = &self.ports[&c.dest.port];
        let to_send_once = c.dest.kind == Kind::SendOnce;
        let fits = if to_send_once {
            port.queue.len() < MACH_PORT_QLIMIT_KERNEL as usize
        } else {
            !port.blocked_receivers.is_empty() || !port.is_full()
        };
        if to_send_once && !fits {
            return Err(MACH_SEND_NO_BUFFER);
        }
        if circular {
            return Ok(Path::Circular);
        }
        if fits {
            return Ok(Path::Enqueue);
        }
        let notify = req.options & MACH_SEND_NOTIFY != 0;
        if notify && !self.keeps_messages() && Self::arms_for(c.dest.kind) {
            // XNU: the option only arms a send-possible request; the send
            // itself goes on as if it were not there.
            self.arm_send_possible(c.sender.task, req.header.remote_port, c.dest.port);
        }
        let timeout_zero = req.options & MACH_SEND_TIMEOUT != 0 && req.send_timeout == 0;
        if !timeout_zero {
            return Ok(Path::Block);
        }
        if !notify || !self.keeps_messages() {
            // Option 3 of the textbook: return at once. Nothing was
            // committed, so the sender's space is untouched.
            self.counters.returned_at_once += 1;
            return Err(MACH_SEND_TIMED_OUT);
        }
        self.check_kept(conn, c.sender.task, req.header.remote_port, c.dest.port, req.notify).map(Path::KeepPastLimit)
    }

    /// The copyin stands: the sender's space loses the rights, their
    /// effects reach the ports, and the message exists.
    fn commit(&mut self, task_id: TaskId, c: Copyin<F>, h: &MsgHeader, body: Vec<u8>) -> Kmsg<F> {
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.space = c.space;
        }
        self.apply_effects(c.effects, c.dest.port);
        let kmsg = Kmsg {
            id: self.next_msg_id(),
            msgh_id: h.id,
            size: h.size,
            complex: h.bits & MACH_MSGH_BITS_COMPLEX != 0,
            dest: c.dest,
            reply: c.reply,
            body,
            items: c.items,
            sender: Some(c.sender),
            enqueued_ms: self.now,
            marequest: None,
        };
        self.account_new(&kmsg);
        self.counters.bytes_inline += kmsg.body.len() as u64;
        for i in &kmsg.items {
            if let Item::Ool { size, copied, .. } = i {
                if *copied {
                    self.counters.bytes_ool_copied += u64::from(*size);
                } else {
                    self.counters.bytes_ool += u64::from(*size);
                }
            }
        }
        kmsg
    }

    /// Options 1 and 2: the thread waits for room, forever or until the
    /// deadline.
    fn block_sender(&mut self, conn: ConnId, bs: BlockedSend<F>) {
        self.counters.blocked += 1;
        if let Some(p) = self.ports.get_mut(&bs.port) {
            p.blocked_senders.push_back(conn);
        }
        if let Some(t) = self.threads.get_mut(&conn) {
            t.pending = Pending::Send(Box::new(bs));
        }
    }

    /// Option 4: the message goes past the limit, and `notify_port` hears
    /// when it is accepted.
    pub(super) fn keep_past_limit(
        &mut self,
        conn: ConnId,
        port_id: PortId,
        mut kmsg: Kmsg<F>,
        notify_port: PortId,
        dest_name: MachPortName,
    ) {
        let task = kmsg.sender.map_or(0, |s| s.task);
        kmsg.marequest =
            Some(MaRequest { thread: conn, task, notify: Right::new(notify_port, Kind::SendOnce), dest_name });
        self.counters.cached += 1;
        if let Some(t) = self.threads.get_mut(&conn) {
            t.cached = Some(kmsg.id);
        }
        self.enqueue(port_id, kmsg);
    }

    fn chain_reaches(&self, start: PortId, target: PortId) -> bool {
        let mut cur = start;
        for _ in 0..=self.ports.len() {
            if cur == target {
                return true;
            }
            match self.ports.get(&cur).map(|p| &p.receiver) {
                Some(Receiver::InTransit { dest }) => cur = *dest,
                _ => return false,
            }
        }
        false
    }
}
