//! A process (one connection, one thread) and its handle table: NT
//! handle values, valid only in the process that owns them.

use super::objects::{HandleTarget, Process};
use super::{AlpcKernel, ConnId};
use crate::mechanisms::alpc::types::{ClientId, NtStatus};

impl AlpcKernel {
    pub(super) fn process(&self, conn: ConnId) -> Result<&Process, NtStatus> {
        self.processes.get(&conn).ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    pub(super) fn process_mut(&mut self, conn: ConnId) -> Result<&mut Process, NtStatus> {
        self.processes.get_mut(&conn).ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    pub(super) fn client_id(&self, conn: ConnId) -> ClientId {
        self.processes.get(&conn).map(|p| p.client_id).unwrap_or_default()
    }

    /// A handle is valid only in the process that owns it.
    pub(super) fn lookup(&self, conn: ConnId, handle: u32) -> Result<HandleTarget, NtStatus> {
        self.process(conn)?.handles.get(&handle).copied().ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    pub(super) fn ensure_handle_room(&self, conn: ConnId, count: usize) -> Result<(), NtStatus> {
        let used = self.process(conn)?.handles.len();
        if used + count > self.config.limits.max_handles_per_process {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        Ok(())
    }

    pub(super) fn insert_handle(&mut self, conn: ConnId, target: HandleTarget) -> Result<u32, NtStatus> {
        let max = self.config.limits.max_handles_per_process;
        let p = self.processes.get_mut(&conn).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if p.handles.len() >= max {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        // NT handle values are multiples of 4. We do not reuse them soon, so
        // a stale handle fails instead of naming a newer object.
        let mut value = p.next_handle;
        while value == 0 || p.handles.contains_key(&value) {
            value = value.wrapping_add(4);
        }
        p.next_handle = value.wrapping_add(4);
        p.handles.insert(value, target);
        Ok(value)
    }
}
