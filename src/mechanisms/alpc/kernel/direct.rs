//! Direct access to a waiting client's memory (`NtReadRequestData` /
//! `NtWriteRequestData`): the kernel checks, the I/O layer copies and
//! reports back.

use super::objects::{Blocked, CallResult, Flow, Wait};
use super::{AlpcKernel, ConnId, CopyDirection, DirectCopy, Millis, Outgoing};
use crate::mechanisms::alpc::proto::ResponseBody;
use crate::mechanisms::alpc::types::NtStatus;

impl AlpcKernel {
    /// Reports the outcome of a [`DirectCopy`]: `Ok(bytes)` or `Err(())` when
    /// the copy faulted (bad address, or the target process is gone).
    pub fn complete_direct_copy(&mut self, conn: ConnId, result: Result<u64, ()>, now: Millis) -> Vec<Outgoing> {
        self.now = self.now.max(now);
        let Some(Blocked { wait: Wait::Copy { channel, direction }, .. }) =
            self.processes.get(&conn).and_then(|p| p.blocked.clone())
        else {
            return Vec::new();
        };
        match result {
            Ok(bytes) => {
                self.count(Some(channel), |c| match direction {
                    CopyDirection::ReadFromClient => {
                        c.direct_reads += 1;
                        c.direct_read_bytes += bytes;
                    }
                    CopyDirection::WriteToClient => {
                        c.direct_writes += 1;
                        c.direct_write_bytes += bytes;
                    }
                });
                self.complete(conn, NtStatus::STATUS_SUCCESS, ResponseBody::Transferred { bytes }, Vec::new());
            }
            Err(()) => {
                self.count(Some(channel), |c| c.access_violations += 1);
                self.complete(conn, NtStatus::STATUS_ACCESS_VIOLATION, ResponseBody::None, Vec::new());
            }
        }
        self.take_out()
    }

    /// Counts `bytes` of the copy `conn` waits for as made in one step,
    /// straight into (or out of) its direct window; the rest of the direct
    /// bytes went through the kernel's bounce buffer, two copies.
    pub fn count_window_copy(&mut self, conn: ConnId, bytes: u64) {
        let Some(Blocked { wait: Wait::Copy { channel, .. }, .. }) =
            self.processes.get(&conn).and_then(|p| p.blocked.clone())
        else {
            return;
        };
        self.count(Some(channel), |c| c.direct_window_bytes += bytes);
    }

    /// Not an NT call (the emulation's stand-in for the kernel reaching a
    /// server's buffer directly): a window of `size` bytes for `conn`, or,
    /// with `size` 0, where it mapped it. The kernel checks the size; the
    /// I/O layer makes, maps and keeps the memory.
    pub(super) fn map_direct_window(&mut self, conn: ConnId, size: u64, mapping_base: u64) -> CallResult {
        self.process(conn)?;
        if size > 0 {
            if size > self.config.limits.max_direct_window {
                return Err(NtStatus::STATUS_INVALID_PARAMETER);
            }
            self.out.push(Outgoing::CreateWindow { conn, size });
            return Ok(Flow::ok(ResponseBody::Window { size }));
        }
        self.out.push(Outgoing::WindowMapped { conn, base: mapping_base });
        Ok(Flow::ok(ResponseBody::None))
    }

    /// `NtReadRequestData` / `NtWriteRequestData`: only for a request the
    /// caller is serving, only while its sender still waits for the reply,
    /// only inside a region the sender declared, and only with its grant.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn request_data(
        &mut self,
        conn: ConnId,
        port: u32,
        message_id: u32,
        index: u32,
        buffer: u64,
        length: u64,
        direction: CopyDirection,
    ) -> CallResult {
        let target = self.lookup(conn, port)?;
        let pending = self.pending.get(&message_id).ok_or(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH)?;
        if pending.held_by != conn || !self.handle_reaches(target, pending.channel) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        if !self.waits_for(pending.from, message_id, 0) {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        if pending.data_info.is_empty() {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let entry = *pending.data_info.get(index as usize).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        if length > entry.size
            || length > self.config.limits.max_direct_transfer
            || buffer.checked_add(length).is_none()
        {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let (ch, from) = (pending.channel, pending.from);
        let client = self.process(from)?;
        if !client.direct_access_granted {
            self.count(Some(ch), |c| c.access_violations += 1);
            return Err(NtStatus::STATUS_ACCESS_VIOLATION);
        }
        let client_pid = client.client_id.unique_process;
        let server_pid = self.process(conn)?.client_id.unique_process;
        self.out.push(Outgoing::DirectCopy(DirectCopy {
            conn,
            direction,
            client_pid,
            client_address: entry.base,
            server_pid,
            server_address: buffer,
            length,
        }));
        Ok(Flow::Blocked { wait: Wait::Copy { channel: ch, direction }, deadline: None })
    }
}
