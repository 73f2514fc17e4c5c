//! What the kernel tells: responses (with the sections they hand over),
//! the end of a blocked call, the path counters and the log.

use super::describe::describe_body;
use super::objects::{ChannelId, Message, PortId, Side};
use super::{AlpcKernel, ConnId, Outgoing, SectionId};
use crate::mechanisms::alpc::proto::{Response, ResponseBody, SectionGrant};
use crate::mechanisms::alpc::state::PathCounters;
use crate::mechanisms::alpc::types::NtStatus;

impl AlpcKernel {
    pub(super) fn count(&mut self, channel: Option<ChannelId>, f: impl Fn(&mut PathCounters)) {
        f(&mut self.totals);
        if let Some(c) = channel.and_then(|ch| self.channels.get_mut(&ch)) {
            f(&mut c.counters);
        }
    }

    pub(super) fn count_path(&mut self, ch: ChannelId, message: &Message, event: impl Fn(&mut PathCounters)) {
        let data = message.data.len() as u64;
        let view = message.view.map(|v| v.size);
        self.count(Some(ch), |c| {
            event(c);
            match view {
                Some(size) => {
                    c.section_messages += 1;
                    c.section_bytes += size;
                    c.copied_bytes += data;
                }
                None => {
                    c.copied_messages += 1;
                    c.copied_bytes += data;
                }
            }
        });
    }

    pub(super) fn count_quota_failure(&mut self, channel: Option<ChannelId>, port: PortId) {
        self.count(channel, |c| c.quota_failures += 1);
        if let Some(p) = self.ports.get_mut(&port) {
            p.quota_failures += 1;
        }
    }

    pub(super) fn respond(&mut self, conn: ConnId, response: Response, attach: Vec<SectionId>) {
        self.out.push(Outgoing::Respond { conn, response, attach });
    }

    pub(super) fn respond_with(
        &mut self,
        conn: ConnId,
        call_id: u32,
        status: NtStatus,
        body: ResponseBody,
        attach: Vec<SectionId>,
    ) {
        let mut grants = Vec::new();
        let mut attached = Vec::new();
        for section_id in attach {
            let writer_conn = self.sections.get(&section_id).and_then(|s| {
                let c = self.channels.get(&s.channel)?;
                Some(match s.writer {
                    Side::Client => c.client,
                    Side::Server => c.server,
                })
            });
            if let Some(section) = self.sections.get_mut(&section_id) {
                if let Some(&handle) = section.handles.get(&conn) {
                    section.delivered.insert(conn);
                    grants.push(SectionGrant { handle, size: section.size, writer: writer_conn == Some(conn) });
                    attached.push(section_id);
                }
            }
        }
        self.respond(conn, Response { call_id, status, body, sections: grants }, attached);
    }

    /// Ends the call `conn` is blocked in.
    pub(super) fn complete(&mut self, conn: ConnId, status: NtStatus, body: ResponseBody, attach: Vec<SectionId>) {
        let Some(blocked) = self.processes.get_mut(&conn).and_then(|p| p.blocked.take()) else { return };
        self.log_line(format!("{} = {status}{}", blocked.call_text, describe_body(&body)));
        self.respond_with(conn, blocked.call_id, status, body, attach);
    }

    pub(super) fn take_out(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.out)
    }

    pub(super) fn log_line(&mut self, line: String) {
        if let Some(deferred) = self.deferred_log.as_mut() {
            // Bounded: a call completes at most one blocked call per process.
            deferred.push(line);
            return;
        }
        if self.config.limits.log_lines == 0 {
            return;
        }
        while self.log.len() >= self.config.limits.log_lines {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }
}
