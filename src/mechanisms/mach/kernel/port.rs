//! Ports (`ipc_port`): who holds the receive right, the queue and the
//! threads waiting on it; a port's birth and death, rights nobody will
//! receive, and what a committed copyin does to ports.

use std::collections::VecDeque;

use super::kmsg::Kmsg;
use super::space::{copyout, Effect, Kind, Right};
use super::thread::Pending;
use super::{ndr_name_body, ConnId, Kernel, PortId, TaskId};
use crate::mechanisms::mach::types::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Receiver {
    Task { task: TaskId, name: MachPortName },
    InTransit { dest: PortId },
    Bootstrap,
    TaskSelf(TaskId),
}

#[derive(Debug)]
pub(super) struct Port<F> {
    pub(super) receiver: Receiver,
    pub(super) qlimit: u32,
    pub(super) seqno: u32,
    pub(super) mscount: u32,
    pub(super) queue: VecDeque<Kmsg<F>>,
    pub(super) blocked_senders: VecDeque<ConnId>,
    pub(super) blocked_receivers: VecDeque<ConnId>,
    /// The queue held more ordinary messages than a newly lowered qlimit.
    pub(super) over_lowered_limit: bool,
    /// XNU: armed send-possible requests, by (task, name).
    pub(super) sp_armed: Vec<(TaskId, MachPortName)>,
}

impl<F> Port<F> {
    pub(super) fn new(receiver: Receiver) -> Port<F> {
        Port {
            receiver,
            qlimit: MACH_PORT_QLIMIT_DEFAULT,
            seqno: 0,
            mscount: 0,
            queue: VecDeque::new(),
            blocked_senders: VecDeque::new(),
            blocked_receivers: VecDeque::new(),
            over_lowered_limit: false,
            sp_armed: Vec::new(),
        }
    }
    pub(super) fn is_full(&self) -> bool {
        self.queue.len() >= self.qlimit as usize
    }
    pub(super) fn is_kernel_port(&self) -> bool {
        matches!(self.receiver, Receiver::Bootstrap | Receiver::TaskSelf(_))
    }
}

impl<F> Kernel<F> {
    pub(super) fn new_port(&mut self, receiver: Receiver) -> PortId {
        let id = self.next_port;
        self.next_port += 1;
        self.ports.insert(id, Port::new(receiver));
        self.counters.ports_created += 1;
        id
    }

    /// The receive right is gone: the port dies (`ipc_port_destroy`).
    pub(super) fn destroy_port(&mut self, port_id: PortId) {
        let Some(mut port) = self.ports.remove(&port_id) else {
            return;
        };
        self.counters.ports_destroyed += 1;
        if let Receiver::Task { task, name } = port.receiver {
            if let Some(space) = self.tasks.get_mut(&task).map(|t| &mut t.space) {
                let drop_entry = match space.entries.get_mut(&name) {
                    Some(e) if e.port == Some(port_id) && e.receive => {
                        e.receive = false;
                        e.send == 0
                    }
                    _ => false,
                };
                if drop_entry {
                    if let Some(e) = space.remove(name) {
                        if let Some(request) = e.dn_request {
                            self.notify(request, MACH_NOTIFY_DEAD_NAME, ndr_name_body(name));
                        }
                    }
                }
            }
        }
        for conn in std::mem::take(&mut port.blocked_receivers) {
            if let Some(Pending::Receive(br)) = self.take_pending(conn) {
                self.finish(conn, &br.call, br.since, MACH_RCV_PORT_DIED, None, Vec::new());
            }
        }
        for conn in std::mem::take(&mut port.blocked_senders) {
            if let Some(Pending::Send(bs)) = self.take_pending(conn) {
                let bs = *bs;
                let task = self.threads.get(&conn).map(|t| t.task);
                let pseudo = task.map(|t| self.pseudo_receive(t, bs.kmsg));
                self.finish(conn, &bs.call, bs.since, MACH_SEND_INVALID_DEST, pseudo, Vec::new());
            }
        }
        for kmsg in std::mem::take(&mut port.queue) {
            self.destroy_kmsg(kmsg);
        }
        // Send and send-once rights elsewhere become dead names (XNU does
        // this lazily on next use; we do it now so the screen shows it).
        let mut notices = Vec::new();
        for task in self.tasks.values_mut() {
            for (name, e) in task.space.entries.iter_mut() {
                if e.dead == 0 && e.port == Some(port_id) && (e.send > 0 || e.send_once) {
                    e.dead = if e.send_once { 1 } else { e.send };
                    e.send = 0;
                    e.send_once = false;
                    e.sp_request = false;
                    if let Some(request) = e.dn_request.take() {
                        // The request holds a reference of its own.
                        e.dead = (e.dead + 1).min(MACH_PORT_UREFS_MAX);
                        notices.push((request, *name));
                    }
                }
            }
        }
        for (request, name) in notices {
            self.notify(request, MACH_NOTIFY_DEAD_NAME, ndr_name_body(name));
        }
        self.services.retain(|_, s| s.port != port_id);
    }

    /// A right that nobody will receive: a receive right kills its port, a
    /// send-once right tells its port `MACH_NOTIFY_SEND_ONCE`.
    pub(super) fn release_right(&mut self, right: Right) {
        match right.kind {
            Kind::Receive => self.doomed.push(right.port),
            Kind::SendOnce => self.notify(right, MACH_NOTIFY_SEND_ONCE, Vec::new()),
            Kind::Send => {}
        }
    }

    /// Puts a right into a task's space; a dead port yields `MACH_PORT_DEAD`.
    /// `None` if the space is full (the caller releases the right).
    pub(super) fn copyout_right(
        &mut self,
        task_id: TaskId,
        right: Right,
        preferred: MachPortName,
    ) -> Option<MachPortName> {
        if !self.ports.contains_key(&right.port) {
            return Some(MACH_PORT_DEAD);
        }
        let max_names = self.limits.max_names_per_task;
        let space = &mut self.tasks.get_mut(&task_id)?.space;
        let name = copyout(space, right, preferred, max_names)?;
        if right.kind == Kind::Receive {
            if let Some(port) = self.ports.get_mut(&right.port) {
                port.receiver = Receiver::Task { task: task_id, name };
            }
        }
        Some(name)
    }

    pub(super) fn reap(&mut self) {
        while let Some(port) = self.doomed.pop() {
            self.destroy_port(port);
        }
    }

    pub(super) fn apply_effects(&mut self, effects: Vec<Effect>, dest: PortId) {
        for effect in effects {
            match effect {
                Effect::MakeSend(p) => {
                    if let Some(port) = self.ports.get_mut(&p) {
                        port.mscount = port.mscount.wrapping_add(1);
                    }
                }
                Effect::MoveReceive(p) => {
                    let waiting = match self.ports.get_mut(&p) {
                        Some(port) => {
                            port.receiver = Receiver::InTransit { dest };
                            // XNU resets these when the receive right moves.
                            port.seqno = 0;
                            port.mscount = 0;
                            std::mem::take(&mut port.blocked_receivers)
                        }
                        None => VecDeque::new(),
                    };
                    for conn in waiting {
                        if let Some(Pending::Receive(br)) = self.take_pending(conn) {
                            self.finish(conn, &br.call, br.since, MACH_RCV_PORT_CHANGED, None, Vec::new());
                        }
                    }
                }
                Effect::RequestDropped { name, request } => {
                    self.notify(request, MACH_NOTIFY_PORT_DELETED, ndr_name_body(name))
                }
            }
        }
    }
}
