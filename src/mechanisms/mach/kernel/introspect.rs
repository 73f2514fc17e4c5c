//! What an observer sees: the kernel's log of calls and its whole state,
//! sent in chunks.

use std::collections::VecDeque;

use super::kmsg::Item;
use super::port::Receiver;
use super::space::Kind;
use super::thread::Pending;
use super::{ConnId, Kernel, Outgoing, TaskId};
use crate::mechanisms::mach::proto::{Reply, MAX_STATE_CHUNK};
use crate::mechanisms::mach::state::{
    BlockedCall, BlockedState, KernelState, LogEntry, NameState, PortState, QueuedMsgState, ReceiverState,
    ServiceState, TaskState, ThreadState, WaitingThreadState, MAX_LISTED_MESSAGES,
};
use crate::mechanisms::mach::types::*;

impl<F> Kernel<F> {
    pub(super) fn log(&mut self, task: Option<TaskId>, text: String) {
        let (pid, name) = task.and_then(|t| self.tasks.get(&t)).map_or((0, String::new()), |t| (t.pid, t.name.clone()));
        self.log_as(pid, &name, text);
    }

    pub(super) fn log_as(&mut self, pid: i32, task: &str, text: String) {
        if self.limits.log_lines == 0 {
            return;
        }
        while self.log.len() >= self.limits.log_lines {
            self.log.pop_front();
        }
        self.log_seq += 1;
        self.log.push_back(LogEntry { seq: self.log_seq, at_ms: self.now, pid, task: task.to_string(), text });
    }

    pub(super) fn send_state(&mut self, conn: ConnId) {
        let json = match serde_json::to_vec(&self.state()) {
            Ok(j) => j,
            Err(e) => {
                self.reply(conn, Reply::ProtocolError { message: format!("state not serialisable: {e}") });
                return;
            }
        };
        let mut chunks = json.chunks(MAX_STATE_CHUNK).peekable();
        if chunks.peek().is_none() {
            self.reply(conn, Reply::StateChunk { last: true, data: Vec::new() });
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            self.out.push(Outgoing::Reply {
                conn,
                reply: Reply::StateChunk { last, data: chunk.to_vec() },
                fds: Vec::new(),
            });
        }
    }

    /// The whole state, as an observer sees it.
    pub fn state(&self) -> KernelState {
        let tasks = self
            .tasks
            .iter()
            .map(|(id, t)| TaskState {
                id: *id,
                pid: t.pid,
                name: t.name.clone(),
                task_self: t.task_self,
                bootstrap: t.bootstrap,
                rcv_refused: t.rcv_refused.iter().map(|(n, c)| (*n, *c)).collect(),
                kobject_answers: t.kobject_answers,
                threads: t
                    .threads
                    .iter()
                    .map(|c| {
                        let th = self.threads.get(c);
                        ThreadState {
                            thread: *c,
                            blocked: th.and_then(|th| match &th.pending {
                                Pending::Idle => None,
                                Pending::Send(bs) => Some(BlockedState {
                                    call: BlockedCall::Send,
                                    port: bs.port,
                                    name: bs.dest_name,
                                    since_ms: bs.since,
                                    deadline_ms: bs.deadline,
                                    options: bs.options,
                                }),
                                Pending::Receive(br) => Some(BlockedState {
                                    call: BlockedCall::Receive,
                                    port: br.port,
                                    name: br.name,
                                    since_ms: br.since,
                                    deadline_ms: br.deadline,
                                    options: br.args.options,
                                }),
                            }),
                            cached_msg: th.and_then(|th| th.cached),
                        }
                    })
                    .collect(),
                names: t
                    .space
                    .entries
                    .iter()
                    .map(|(name, e)| NameState {
                        name: *name,
                        port: e.port,
                        receive: e.receive,
                        send_urefs: e.send,
                        send_once: e.send_once,
                        dead_name_urefs: e.dead,
                        dead_name_request: e.dn_request.is_some(),
                    })
                    .collect(),
            })
            .collect();
        let waiting = |conns: &VecDeque<ConnId>| -> Vec<WaitingThreadState> {
            conns
                .iter()
                .filter_map(|c| {
                    let th = self.threads.get(c)?;
                    let pid = self.tasks.get(&th.task).map_or(0, |t| t.pid);
                    let (since_ms, deadline_ms, msgh_id, msgh_size) = match &th.pending {
                        Pending::Send(bs) => (bs.since, bs.deadline, Some(bs.kmsg.msgh_id), Some(bs.kmsg.size)),
                        Pending::Receive(br) => (br.since, br.deadline, None, None),
                        Pending::Idle => (0, None, None, None),
                    };
                    Some(WaitingThreadState {
                        task: th.task,
                        pid,
                        thread: *c,
                        since_ms,
                        deadline_ms,
                        msgh_id,
                        msgh_size,
                    })
                })
                .collect()
        };
        let ports = self
            .ports
            .iter()
            .map(|(id, p)| PortState {
                id: *id,
                receiver: match &p.receiver {
                    Receiver::Task { task, name } => ReceiverState::Task { task: *task, name: *name },
                    Receiver::InTransit { dest } => ReceiverState::InTransit { dest: *dest },
                    Receiver::Bootstrap => ReceiverState::Kernel { object: "bootstrap".into() },
                    Receiver::TaskSelf(t) => ReceiverState::Kernel { object: format!("task:{t}") },
                },
                qlimit: p.qlimit,
                seqno: p.seqno,
                mscount: p.mscount,
                queue_len: p.queue.len(),
                queue: p
                    .queue
                    .iter()
                    .take(MAX_LISTED_MESSAGES)
                    .map(|k| QueuedMsgState {
                        msg_id: k.id,
                        msgh_id: k.msgh_id,
                        msgh_size: k.size,
                        msgh_bits: mach_msgh_bits(k.reply.map_or(0, |r| r.kind.type_name()), k.dest.kind.type_name())
                            | if k.complex { MACH_MSGH_BITS_COMPLEX } else { 0 },
                        sender_pid: k.sender.map_or(0, |s| s.pid),
                        sender_task: k.sender.map(|s| s.task),
                        reply_type: k.reply.map_or(0, |r| r.kind.type_name()),
                        reply_port: k.reply.map(|r| r.port),
                        rights: k.items.iter().filter(|i| matches!(i, Item::Port { right: Some(_), .. })).count()
                            as u32,
                        ool_bytes: k.ool_bytes(),
                        enqueued_ms: k.enqueued_ms,
                        to_send_once: k.dest.kind == Kind::SendOnce,
                        cached: k.marequest.is_some(),
                        notification: k.sender.is_none(),
                    })
                    .collect(),
                blocked_senders: waiting(&p.blocked_senders),
                blocked_receivers: waiting(&p.blocked_receivers),
            })
            .collect();
        let bootstrap = self
            .services
            .iter()
            .map(|(name, s)| ServiceState {
                name: name.clone(),
                port: s.port,
                registered_by_task: s.task,
                registered_by_pid: s.pid,
                checked_in: s.checked_in,
            })
            .collect();
        KernelState {
            now_ms: self.now,
            tasks,
            ports,
            bootstrap,
            counters: self.counters.clone(),
            personality: self.personality.key().to_string(),
            personality_since_ms: self.personality_since,
            since_personality: self.counters.since(&self.personality_base),
            log: self.log.iter().cloned().collect(),
        }
    }
}
