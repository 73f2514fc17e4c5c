//! Tasks and threads: a connection becomes a task or joins one as a
//! thread; the last thread's departure terminates the task and destroys
//! every name in its space.

use super::port::Receiver;
use super::space::{copyout, Kind, Right, Space};
use super::thread::{Pending, Thread};
use super::{ndr_name_body, printable, splitmix64, ConnId, ConnRole, Kernel, PortId, TaskId};
use crate::mechanisms::ekernel::transport::PeerCred;
use crate::mechanisms::mach::proto::Reply;
use crate::mechanisms::mach::types::*;

#[derive(Debug)]
pub(super) struct Task {
    pub(super) pid: i32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) name: String,
    pub(super) token: u64,
    pub(super) threads: Vec<ConnId>,
    pub(super) space: Space,
    self_port: PortId,
    pub(super) task_self: MachPortName,
    pub(super) bootstrap: MachPortName,
    /// Receives refused with `MACH_RCV_INVALID_NAME`, by the name tried
    /// (a name the task holds no receive right under).
    pub(super) rcv_refused: std::collections::BTreeMap<MachPortName, u64>,
    /// Requests to kernel objects (its task port) the kernel answered.
    pub(super) kobject_answers: u64,
}

impl<F> Kernel<F> {
    pub(super) fn register_task(&mut self, conn: ConnId, peer: PeerCred, name: String) {
        if self.tasks.len() >= self.limits.max_tasks || self.ports.len() + 1 > self.limits.max_ports {
            self.reply(conn, Reply::Status { kr: KERN_RESOURCE_SHORTAGE });
            return;
        }
        let id = self.next_task;
        self.next_task = self.next_task.wrapping_add(1).max(1);
        let self_port = self.new_port(Receiver::TaskSelf(id));
        let mut space = Space::new(splitmix64(self.seed ^ u64::from(id)));
        // Every task starts with a send right to itself (mach_task_self())
        // and one to the bootstrap port, inherited in real Mach.
        let max = self.limits.max_names_per_task;
        let task_self = copyout(&mut space, Right::new(self_port, Kind::Send), 0, max).unwrap_or(MACH_PORT_NULL);
        let bootstrap =
            copyout(&mut space, Right::new(self.bootstrap_port, Kind::Send), 0, max).unwrap_or(MACH_PORT_NULL);
        let token = splitmix64(self.seed ^ (u64::from(id) << 32) ^ peer.pid as u64);
        self.tasks.insert(
            id,
            Task {
                pid: peer.pid,
                uid: peer.uid,
                gid: peer.gid,
                name: name.clone(),
                token,
                threads: vec![conn],
                space,
                self_port,
                task_self,
                bootstrap,
                rcv_refused: std::collections::BTreeMap::new(),
                kobject_answers: 0,
            },
        );
        self.threads.insert(conn, Thread { task: id, pending: Pending::Idle, cached: None });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.role = ConnRole::Thread;
        }
        self.log(
            Some(id),
            format!(
                "task_create(\"{}\") = KERN_SUCCESS /* task_self={task_self:#x}, bootstrap={bootstrap:#x} */",
                printable(&name)
            ),
        );
        self.reply(conn, Reply::Registered { task: id, token, task_self, bootstrap });
    }

    pub(super) fn join_task(&mut self, conn: ConnId, peer: PeerCred, task_id: TaskId, token: u64) {
        let max_threads = self.limits.max_threads_per_task;
        let Some(task) = self.tasks.get_mut(&task_id) else {
            self.reply(conn, Reply::Status { kr: KERN_INVALID_TASK });
            return;
        };
        // Threads of one task live in one process: the token proves the
        // caller was told it, the pid that it is that process.
        if task.token != token || task.pid != peer.pid {
            self.reply(conn, Reply::Status { kr: KERN_INVALID_TASK });
            return;
        }
        if task.threads.len() >= max_threads {
            self.reply(conn, Reply::Status { kr: KERN_RESOURCE_SHORTAGE });
            return;
        }
        task.threads.push(conn);
        let reply = Reply::Registered { task: task_id, token, task_self: task.task_self, bootstrap: task.bootstrap };
        self.threads.insert(conn, Thread { task: task_id, pending: Pending::Idle, cached: None });
        if let Some(c) = self.conns.get_mut(&conn) {
            c.role = ConnRole::Thread;
        }
        self.log(Some(task_id), "thread_create(mach_task_self()) = KERN_SUCCESS".into());
        self.reply(conn, reply);
    }

    pub(super) fn disconnect_inner(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        let Some(thread) = self.threads.remove(&conn) else {
            return;
        };
        match thread.pending {
            Pending::Idle => {}
            Pending::Send(bs) => {
                if let Some(p) = self.ports.get_mut(&bs.port) {
                    p.blocked_senders.retain(|c| *c != conn);
                }
                // A thread that dies inside mach_msg takes its message with it.
                self.destroy_kmsg(bs.kmsg);
            }
            Pending::Receive(br) => {
                if let Some(p) = self.ports.get_mut(&br.port) {
                    p.blocked_receivers.retain(|c| *c != conn);
                }
            }
        }
        let task_id = thread.task;
        let last = match self.tasks.get_mut(&task_id) {
            Some(task) => {
                task.threads.retain(|c| *c != conn);
                task.threads.is_empty()
            }
            None => false,
        };
        if last {
            self.terminate_task(task_id);
        }
    }

    /// Task exit: like `mach_port_destroy` on every name in its space.
    fn terminate_task(&mut self, task_id: TaskId) {
        let names: Vec<MachPortName> = match self.tasks.get(&task_id) {
            Some(t) => t.space.entries.keys().copied().collect(),
            None => return,
        };
        for name in names {
            self.destroy_name(task_id, name);
        }
        // Names a task registered go with it, as a launchd job's do; a
        // checked-in service lives as long as its port.
        self.services.retain(|_, s| s.checked_in || s.task != task_id);
        if let Some(task) = self.tasks.remove(&task_id) {
            self.log_as(task.pid, &task.name, "task_terminate(mach_task_self()) = KERN_SUCCESS".into());
            self.destroy_port(task.self_port);
        }
    }

    /// Removes a name and everything it denotes.
    pub(super) fn destroy_name(&mut self, task_id: TaskId, name: MachPortName) {
        let Some(entry) = self.tasks.get_mut(&task_id).and_then(|t| t.space.remove(name)) else {
            return;
        };
        if let Some(request) = entry.dn_request {
            if entry.live_port().is_some_and(|p| self.ports.contains_key(&p)) {
                self.notify(request, MACH_NOTIFY_PORT_DELETED, ndr_name_body(name));
            }
        }
        if let Some(port) = entry.live_port() {
            if entry.receive {
                self.destroy_port(port);
            } else if entry.send_once {
                self.release_right(Right::new(port, Kind::SendOnce));
            }
        }
    }
}
