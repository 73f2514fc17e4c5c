//! `mach_msg` itself: the send half runs first (`send`), then the receive
//! half; a call that must wait is parked on its thread and ends when a
//! message, room, a timeout or a port's death comes.

use std::fmt::Write as _;

use super::kmsg::too_large_header;
use super::send::SendResult;
use super::thread::{BlockedRecv, Pending, RcvArgs};
use super::{kr_name, Attachment, ConnId, Kernel, Outgoing, TaskId};
use crate::mechanisms::mach::proto::{MachMsgRequest, ReceivedMessage, Reply};
use crate::mechanisms::mach::types::*;

impl<F> Kernel<F> {
    pub(super) fn mach_msg(&mut self, conn: ConnId, task: TaskId, req: MachMsgRequest, fds: Vec<Attachment<F>>) {
        let call = describe_mach_msg(&req);
        let since = self.now;
        let rcv = (req.options & MACH_RCV_MSG != 0).then_some(RcvArgs {
            name: req.rcv_name,
            options: req.options,
            timeout: req.rcv_timeout,
            size: req.rcv_size,
        });
        if req.options & MACH_SEND_MSG != 0 {
            match self.send(conn, task, req, fds, &call, rcv) {
                SendResult::Done => match rcv {
                    Some(args) => self.receive(conn, args, call, since),
                    None => self.finish(conn, &call, since, MACH_MSG_SUCCESS, None, Vec::new()),
                },
                SendResult::Failed(kr, pseudo) => self.finish(conn, &call, since, kr, pseudo, Vec::new()),
                SendResult::Blocked => {}
            }
        } else if let Some(args) = rcv {
            self.receive(conn, args, call, since);
        } else {
            self.finish(conn, &call, since, MACH_MSG_SUCCESS, None, Vec::new());
        }
    }

    /// The receive half of `mach_msg`.
    fn receive(&mut self, conn: ConnId, args: RcvArgs, call: String, since: u64) {
        let Some(task_id) = self.threads.get(&conn).map(|t| t.task) else {
            return;
        };
        let port_id = self
            .tasks
            .get(&task_id)
            .and_then(|t| t.space.entries.get(&args.name))
            .filter(|e| e.receive && e.dead == 0)
            .and_then(|e| e.port);
        let Some(port_id) = port_id else {
            // No receive right under that name: only the holder of
            // MACH_PORT_RIGHT_RECEIVE takes messages out.
            self.counters.rcv_invalid_name += 1;
            if let Some(t) = self.tasks.get_mut(&task_id) {
                // A few names per task: a task trying every name stays bounded.
                if t.rcv_refused.len() < 8 || t.rcv_refused.contains_key(&args.name) {
                    *t.rcv_refused.entry(args.name).or_default() += 1;
                }
            }
            self.finish(conn, &call, since, MACH_RCV_INVALID_NAME, None, Vec::new());
            return;
        };
        let Some(port) = self.ports.get_mut(&port_id) else {
            self.finish(conn, &call, since, MACH_RCV_INVALID_NAME, None, Vec::new());
            return;
        };
        if let Some(front) = port.queue.front() {
            if front.size.saturating_add(MACH_MSG_AUDIT_TRAILER_SIZE) > args.size {
                let msg = too_large_header(front, args.name);
                if args.options & MACH_RCV_LARGE == 0 {
                    // Without MACH_RCV_LARGE the message is lost (as in XNU).
                    if let Some(kmsg) = port.queue.pop_front() {
                        self.destroy_kmsg(kmsg);
                    }
                    self.after_dequeue(port_id);
                }
                self.finish(conn, &call, since, MACH_RCV_TOO_LARGE, Some(msg), Vec::new());
                return;
            }
            let seqno = port.seqno;
            port.seqno = port.seqno.wrapping_add(1);
            if let Some(kmsg) = port.queue.pop_front() {
                self.deliver(conn, args.name, kmsg, seqno, &call, since);
            }
            self.after_dequeue(port_id);
            return;
        }
        // An empty queue with a waiting sender happens only at qlimit 0:
        // the message passes straight from sender to receiver.
        if let Some(sender) = port.blocked_senders.front().copied() {
            let fits = match self.threads.get(&sender).map(|t| &t.pending) {
                Some(Pending::Send(bs)) => bs.kmsg.size.saturating_add(MACH_MSG_AUDIT_TRAILER_SIZE) <= args.size,
                _ => true,
            };
            if fits {
                if let Some(p) = self.ports.get_mut(&port_id) {
                    p.blocked_senders.pop_front();
                }
                if let Some(Pending::Send(bs)) = self.take_pending(sender) {
                    let bs = *bs;
                    self.counters.sent += 1;
                    let seqno = self.ports.get_mut(&port_id).map_or(0, |p| {
                        p.seqno = p.seqno.wrapping_add(1);
                        p.seqno.wrapping_sub(1)
                    });
                    self.deliver(conn, args.name, bs.kmsg, seqno, &call, since);
                    self.spnotify(port_id);
                    self.sender_done(sender, bs.call, bs.since, bs.rcv);
                    return;
                }
            }
        }
        if args.options & MACH_RCV_TIMEOUT != 0 && args.timeout == 0 {
            self.counters.rcv_timed_out += 1;
            self.finish(conn, &call, since, MACH_RCV_TIMED_OUT, None, Vec::new());
            return;
        }
        let deadline = (args.options & MACH_RCV_TIMEOUT != 0).then(|| self.deadline_after(args.timeout));
        if let Some(p) = self.ports.get_mut(&port_id) {
            p.blocked_receivers.push_back(conn);
        }
        if let Some(t) = self.threads.get_mut(&conn) {
            t.pending = Pending::Receive(BlockedRecv { port: port_id, name: args.name, args, deadline, since, call });
        }
    }

    /// A blocked sender's message was accepted: the call returns, or goes
    /// on to its receive half.
    pub(super) fn sender_done(&mut self, conn: ConnId, call: String, since: u64, rcv: Option<RcvArgs>) {
        match rcv {
            Some(args) => self.receive(conn, args, call, since),
            None => self.finish(conn, &call, since, MACH_MSG_SUCCESS, None, Vec::new()),
        }
    }

    pub(super) fn expire(&mut self, conn: ConnId) {
        let Some(task_id) = self.threads.get(&conn).map(|t| t.task) else {
            return;
        };
        match self.take_pending(conn) {
            Some(Pending::Send(bs)) => {
                let bs = *bs;
                if let Some(p) = self.ports.get_mut(&bs.port) {
                    p.blocked_senders.retain(|c| *c != conn);
                }
                if bs.options & MACH_SEND_NOTIFY != 0 && self.keeps_messages() {
                    let checked = self.check_kept(conn, task_id, bs.dest_name, bs.port, bs.notify);
                    if let Ok(notify_port) = checked {
                        self.keep_past_limit(conn, bs.port, bs.kmsg, notify_port, bs.dest_name);
                        self.finish(conn, &bs.call, bs.since, MACH_SEND_WILL_NOTIFY, None, Vec::new());
                        return;
                    }
                    let kr = checked.err().unwrap_or(MACH_SEND_INVALID_NOTIFY);
                    let pseudo = self.pseudo_receive(task_id, bs.kmsg);
                    self.finish(conn, &bs.call, bs.since, kr, Some(pseudo), Vec::new());
                    return;
                }
                self.counters.send_timed_out += 1;
                let pseudo = self.pseudo_receive(task_id, bs.kmsg);
                self.finish(conn, &bs.call, bs.since, MACH_SEND_TIMED_OUT, Some(pseudo), Vec::new());
            }
            Some(Pending::Receive(br)) => {
                if let Some(p) = self.ports.get_mut(&br.port) {
                    p.blocked_receivers.retain(|c| *c != conn);
                }
                self.counters.rcv_timed_out += 1;
                self.finish(conn, &br.call, br.since, MACH_RCV_TIMED_OUT, None, Vec::new());
            }
            Some(Pending::Idle) | None => {}
        }
    }

    /// Ends a `mach_msg` call: logs it and answers the thread.
    pub(super) fn finish(
        &mut self,
        conn: ConnId,
        call: &str,
        since: u64,
        kr: u32,
        msg: Option<ReceivedMessage>,
        fds: Vec<F>,
    ) {
        let task = self.threads.get(&conn).map(|t| t.task);
        // 0 is KERN_SUCCESS too, but mach_msg's own name for it reads better.
        let result = if kr == MACH_MSG_SUCCESS { "MACH_MSG_SUCCESS".to_string() } else { kr_name(kr) };
        let mut text = format!("{call} = {result}");
        if let Some(m) = msg.as_ref().filter(|_| kr == MACH_MSG_SUCCESS || kr & MACH_MSG_IPC_SPACE != 0) {
            let from = m.audit_token[5];
            let what =
                self.note_name(m.header.id).map(str::to_string).unwrap_or_else(|| format!("msgh_id={}", m.header.id));
            let _ = write!(text, " /* {what}, {} bytes, from pid {from} */", m.header.size);
        }
        let waited = self.now.saturating_sub(since);
        if waited > 0 {
            let _ = write!(text, " /* waited {waited} ms */");
        }
        self.log(task, text);
        self.out.push(Outgoing::Reply { conn, reply: Reply::Msg { kr, msg }, fds });
    }
}

fn describe_mach_msg(req: &MachMsgRequest) -> String {
    let mut s = format!("mach_msg({}", options_name(req.options));
    if req.options & MACH_SEND_MSG != 0 {
        let h = &req.header;
        let _ = write!(s, ", dest={:#x}", h.remote_port);
        if h.local_port != MACH_PORT_NULL {
            let _ = write!(s, ", reply={:#x} {}", h.local_port, disposition_name(mach_msgh_bits_local(h.bits)));
        }
        let _ = write!(s, ", msgh_id={}", h.id);
        if req.options & MACH_SEND_TIMEOUT != 0 {
            let _ = write!(s, ", timeout={}", req.send_timeout);
        }
        if req.options & MACH_SEND_NOTIFY != 0 {
            let _ = write!(s, ", notify={:#x}", req.notify);
        }
    }
    if req.options & MACH_RCV_MSG != 0 {
        let _ = write!(s, ", rcv_name={:#x}", req.rcv_name);
        if req.options & MACH_RCV_TIMEOUT != 0 {
            let _ = write!(s, ", rcv_timeout={}", req.rcv_timeout);
        }
    }
    s.push(')');
    s
}
