//! Sections (one per direction of a channel) and their views: created by
//! calls, marked while a message carries them, released after the
//! receiver's next call.

use std::collections::{BTreeMap, BTreeSet};

use super::objects::{CallResult, ChannelId, Flow, HandleTarget, Section, SentView, Side, ViewRegion};
use super::{AlpcKernel, ConnId, Outgoing, SectionId};
use crate::mechanisms::alpc::proto::ResponseBody;
use crate::mechanisms::alpc::types::{view_flags, NtStatus};

impl AlpcKernel {
    pub(super) fn create_port_section(&mut self, conn: ConnId, port: u32, size: u64) -> CallResult {
        let target = self.lookup(conn, port)?;
        let (ch, side, _) = self.outbound(conn, target)?;
        if size == 0 || size > self.config.limits.max_section_size {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        if self.total_section_bytes + size > self.config.limits.max_total_section_bytes {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let channel = self.channels.get(&ch).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let existing = match side {
            Side::Client => channel.client_section,
            Side::Server => channel.server_section,
        };
        // LPC takes sections at connect only; ALPC on a connected port at
        // any time. Our kernel keeps one section per direction of a
        // channel: a second is refused with a status labelled as ours.
        if self.config.personality == super::Personality::Lpc || existing.is_some() {
            return Err(NtStatus::STATUS_NOT_SUPPORTED);
        }
        let peer = match side {
            Side::Client => channel.server,
            Side::Server => channel.client,
        };
        self.ensure_handle_room(conn, 1)?;
        self.ensure_handle_room(peer, 1)?;
        let section = self.create_section(ch, side, size)?;
        self.totals.sections_after_connect += 1;
        let handle = self.sections.get(&section).and_then(|s| s.handles.get(&conn).copied()).unwrap_or(0);
        Ok(Flow::Done {
            status: NtStatus::STATUS_SUCCESS,
            body: ResponseBody::Section { section: handle, size },
            attach: vec![section],
        })
    }

    pub(super) fn create_section_view(
        &mut self,
        conn: ConnId,
        port: u32,
        section: u32,
        size: u64,
        mapping_base: u64,
        flags: u32,
    ) -> CallResult {
        if flags & !view_flags::KNOWN != 0 {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let target = self.lookup(conn, port)?;
        let HandleTarget::Section(section_id) = self.lookup(conn, section)? else {
            return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH);
        };
        let max_views = self.config.limits.max_views_per_section;
        let s = self.sections.get(&section_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if !self.handle_reaches(target, s.channel) {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let channel = self.channels.get(&s.channel).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let writer = match s.writer {
            Side::Client => channel.client,
            Side::Server => channel.server,
        };
        let offset = if size > 0 {
            if conn != writer || size > s.size {
                return Err(NtStatus::STATUS_INVALID_PARAMETER);
            }
            if s.views.len() >= max_views {
                return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
            }
            Some(s.allocate(size).ok_or(NtStatus::STATUS_NO_MEMORY)?)
        } else {
            None
        };
        let s = self.sections.get_mut(&section_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if mapping_base != 0 {
            s.mappings.insert(conn, mapping_base);
        }
        if let Some(offset) = offset {
            let auto_release = flags & view_flags::ALPC_VIEWFLG_AUTO_RELEASE != 0;
            s.views.insert(offset, ViewRegion { size, in_message: None, auto_release });
        }
        Ok(Flow::ok(ResponseBody::View { section, offset: offset.unwrap_or(0), size }))
    }

    pub(super) fn delete_section_view(&mut self, conn: ConnId, port: u32, section: u32, offset: u64) -> CallResult {
        let target = self.lookup(conn, port)?;
        let HandleTarget::Section(section_id) = self.lookup(conn, section)? else {
            return Err(NtStatus::STATUS_OBJECT_TYPE_MISMATCH);
        };
        let s = self.sections.get(&section_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if !self.handle_reaches(target, s.channel) {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        match s.views.get(&offset) {
            None => Err(NtStatus::STATUS_INVALID_PARAMETER),
            Some(v) if v.in_message.is_some() => Err(NtStatus::STATUS_RESOURCE_IN_USE),
            Some(_) => {
                if let Some(s) = self.sections.get_mut(&section_id) {
                    s.views.remove(&offset);
                }
                Ok(Flow::ok(ResponseBody::None))
            }
        }
    }

    pub(super) fn create_section(&mut self, ch: ChannelId, writer: Side, size: u64) -> Result<SectionId, NtStatus> {
        let channel = self.channels.get(&ch).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let (server, client) = (channel.server, channel.client);
        let id = self.new_object_id();
        let server_handle = self.insert_handle(server, HandleTarget::Section(id))?;
        let client_handle = self.insert_handle(client, HandleTarget::Section(id))?;
        let mut handles = BTreeMap::new();
        handles.insert(server, server_handle);
        handles.insert(client, client_handle);
        self.sections.insert(
            id,
            Section {
                channel: ch,
                writer,
                size,
                views: BTreeMap::new(),
                handles,
                mappings: BTreeMap::new(),
                delivered: BTreeSet::new(),
            },
        );
        self.total_section_bytes += size;
        if let Some(c) = self.channels.get_mut(&ch) {
            match writer {
                Side::Client => c.client_section = Some(id),
                Side::Server => c.server_section = Some(id),
            }
        }
        self.out.push(Outgoing::CreateSection { section: id, size });
        Ok(id)
    }

    pub(super) fn delete_section(&mut self, id: SectionId) {
        let Some(section) = self.sections.remove(&id) else { return };
        self.total_section_bytes = self.total_section_bytes.saturating_sub(section.size);
        for (conn, handle) in section.handles {
            if let Some(p) = self.processes.get_mut(&conn) {
                p.handles.remove(&handle);
            }
        }
        if let Some(c) = self.channels.get_mut(&section.channel) {
            if c.client_section == Some(id) {
                c.client_section = None;
            }
            if c.server_section == Some(id) {
                c.server_section = None;
            }
        }
        self.out.push(Outgoing::ReleaseSection { section: id });
    }

    pub(super) fn mark_view(&mut self, view: SentView, message_id: Option<u32>) {
        if let Some(region) = self.sections.get_mut(&view.section).and_then(|s| s.views.get_mut(&view.offset)) {
            region.in_message = message_id;
        }
    }

    /// The message that carried a view is done with it: an auto-release
    /// view goes with it; a kept one is free to carry the next message.
    pub(super) fn release_view(&mut self, view: SentView) {
        if let Some(s) = self.sections.get_mut(&view.section) {
            match s.views.get_mut(&view.offset) {
                Some(region) if !region.auto_release => region.in_message = None,
                Some(_) => {
                    s.views.remove(&view.offset);
                }
                None => {}
            }
        }
    }

    pub(super) fn release_after_next_call(&mut self, receiver: ConnId, view: SentView) {
        match self.processes.get_mut(&receiver) {
            Some(p) => p.release_on_next_call.push((view.section, view.offset)),
            None => self.release_view(view),
        }
    }

    pub(super) fn release_views_after_use(&mut self, conn: ConnId) {
        let views =
            self.processes.get_mut(&conn).map(|p| std::mem::take(&mut p.release_on_next_call)).unwrap_or_default();
        for (section, offset) in views {
            self.release_view(SentView { section, offset, size: 0 });
        }
    }
}
