//! Messages to ports that stand for kernel objects. In real Mach the
//! kernel is the receiver of a task's port and answers MIG requests sent
//! to it; here a task's own port (`mach_task_self()`) answers one
//! `task_info`-like request (an emulated flavor: the task's threads, names
//! and receive rights, read from the kernel's tables).

use super::kmsg::Kmsg;
use super::port::Receiver;
use super::space::Kind;
use super::{Kernel, PortId};
use crate::mechanisms::mach::types::*;

impl<F> Kernel<F> {
    /// `msgh_id` is a request the kernel object behind `port` answers.
    pub(super) fn kobject_answers(&self, port: PortId, msgh_id: i32) -> bool {
        matches!(self.ports.get(&port).map(|p| &p.receiver), Some(Receiver::TaskSelf(_))) && msgh_id == TASK_INFO_ID
    }

    /// The kernel receives the request itself and answers at once through
    /// its reply right (a send-once right, as MIG makes it).
    pub(super) fn kobject_serve(&mut self, mut kmsg: Kmsg<F>) {
        self.account_gone(&kmsg);
        let task = match self.ports.get(&kmsg.dest.port).map(|p| &p.receiver) {
            Some(Receiver::TaskSelf(t)) => *t,
            _ => 0,
        };
        let reply = kmsg.reply.take();
        // A request without a reply right gets no answer, as in MIG.
        let Some(reply) = reply else { return };
        let Some(t) = self.tasks.get(&task) else {
            self.release_right(reply);
            return;
        };
        let receive = t.space.entries.values().filter(|e| e.receive).count() as u32;
        let mut body = NDR_RECORD.to_vec();
        for v in [KERN_SUCCESS, t.threads.len() as u32, t.space.entries.len() as u32, receive] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(s) = kmsg.sender {
            if let Some(st) = self.tasks.get_mut(&s.task) {
                st.kobject_answers += 1;
            }
        }
        self.counters.kobject_answers += 1;
        if reply.kind != Kind::SendOnce || !self.ports.contains_key(&reply.port) {
            self.release_right(reply);
            return;
        }
        self.send_from_kernel(reply, TASK_INFO_ID + 100, body);
    }
}
