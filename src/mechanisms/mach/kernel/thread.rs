//! A thread of a task (one connection to the kernel) and the `mach_msg`
//! call it may be blocked in.

use super::kmsg::Kmsg;
use super::{ConnId, Kernel, PortId, TaskId};
use crate::mechanisms::mach::types::*;

#[derive(Debug)]
pub(super) struct Thread<F> {
    pub(super) task: TaskId,
    pub(super) pending: Pending<F>,
    /// The kernel id of this thread's message kept past a full queue.
    pub(super) cached: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct RcvArgs {
    pub(super) name: MachPortName,
    pub(super) options: u32,
    pub(super) timeout: u32,
    pub(super) size: u32,
}

#[derive(Debug)]
pub(super) struct BlockedSend<F> {
    pub(super) port: PortId,
    pub(super) dest_name: MachPortName,
    pub(super) kmsg: Kmsg<F>,
    pub(super) deadline: Option<u64>,
    pub(super) since: u64,
    pub(super) options: u32,
    pub(super) notify: MachPortName,
    pub(super) call: String,
    pub(super) rcv: Option<RcvArgs>,
}

#[derive(Debug)]
pub(super) struct BlockedRecv {
    pub(super) port: PortId,
    pub(super) name: MachPortName,
    pub(super) args: RcvArgs,
    pub(super) deadline: Option<u64>,
    pub(super) since: u64,
    pub(super) call: String,
}

#[derive(Debug)]
pub(super) enum Pending<F> {
    Idle,
    Send(Box<BlockedSend<F>>),
    Receive(BlockedRecv),
}

impl<F> Kernel<F> {
    pub(super) fn deadline_of(t: &Thread<F>) -> Option<u64> {
        match &t.pending {
            Pending::Idle => None,
            Pending::Send(bs) => bs.deadline,
            Pending::Receive(br) => br.deadline,
        }
    }

    pub(super) fn take_pending(&mut self, conn: ConnId) -> Option<Pending<F>> {
        let t = self.threads.get_mut(&conn)?;
        Some(std::mem::replace(&mut t.pending, Pending::Idle))
    }
}
