//! A port's message queue (`ipc_mqueue`): a message goes straight to a
//! waiting receiver when there is one, else to the tail; as the queue
//! drains, kept messages within the limit are accepted and waiting senders
//! move in.

use super::kmsg::{too_large_header, Kmsg, MaRequest};
use super::thread::Pending;
use super::{Kernel, PortId};
use crate::mechanisms::mach::types::*;

impl<F> Kernel<F> {
    /// Puts a message on its port: straight to a waiting receiver if there
    /// is one, else at the tail of the queue. Room was checked by the caller.
    pub(super) fn enqueue(&mut self, port_id: PortId, mut kmsg: Kmsg<F>) {
        if kmsg.sender.is_some() {
            self.counters.sent += 1;
        }
        kmsg.enqueued_ms = self.now;
        loop {
            let Some(port) = self.ports.get_mut(&port_id) else {
                self.destroy_kmsg(kmsg);
                return;
            };
            let Some(conn) = port.blocked_receivers.pop_front() else {
                port.queue.push_back(kmsg);
                return;
            };
            let Some(Pending::Receive(br)) = self.take_pending(conn) else {
                continue;
            };
            if kmsg.size.saturating_add(MACH_MSG_AUDIT_TRAILER_SIZE) > br.args.size {
                // Too big for this receiver's buffer.
                if br.args.options & MACH_RCV_LARGE != 0 {
                    let msg = too_large_header(&kmsg, br.name);
                    self.finish(conn, &br.call, br.since, MACH_RCV_TOO_LARGE, Some(msg), Vec::new());
                    continue;
                }
                let msg = too_large_header(&kmsg, br.name);
                self.destroy_kmsg(kmsg);
                self.finish(conn, &br.call, br.since, MACH_RCV_TOO_LARGE, Some(msg), Vec::new());
                return;
            }
            if let Some(p) = self.ports.get_mut(&port_id) {
                p.seqno = p.seqno.wrapping_add(1);
            }
            let seqno = self.ports.get(&port_id).map_or(0, |p| p.seqno.wrapping_sub(1));
            self.deliver(conn, br.name, kmsg, seqno, &br.call, br.since);
            return;
        }
    }

    /// A message left the queue: armed send-possible requests fire (XNU),
    /// then room is made.
    pub(super) fn after_dequeue(&mut self, port_id: PortId) {
        self.spnotify(port_id);
        self.make_room(port_id);
    }

    /// Kept messages now within the limit are accepted (the textbook's
    /// rule only), and waiting senders take the free slots in FIFO order.
    pub(super) fn make_room(&mut self, port_id: PortId) {
        let on_queue = self.accepts_on_queue();
        loop {
            let Some(port) = self.ports.get_mut(&port_id) else {
                return;
            };
            if port.over_lowered_limit && port.queue.len() <= port.qlimit as usize {
                port.over_lowered_limit = false;
            }
            let limit = if on_queue { (port.qlimit as usize).min(port.queue.len()) } else { 0 };
            let accepted: Vec<(MaRequest, u64)> =
                port.queue.iter_mut().take(limit).filter_map(|k| k.marequest.take().map(|m| (m, k.id))).collect();
            for (m, id) in accepted {
                self.msg_accepted(m, id, false);
            }
            let Some(port) = self.ports.get_mut(&port_id) else {
                return;
            };
            if port.is_full() {
                return;
            }
            let Some(sender) = port.blocked_senders.pop_front() else {
                return;
            };
            if let Some(Pending::Send(bs)) = self.take_pending(sender) {
                let bs = *bs;
                self.enqueue(port_id, bs.kmsg);
                self.sender_done(sender, bs.call, bs.since, bs.rcv);
            }
        }
    }
}
