//! The object manager's invariants, checked by the tests after every step
//! of a hostile sequence.

use super::objects::{HandleTarget, QueueLoc, ReceiveSource, Wait};
use super::AlpcKernel;

impl AlpcKernel {
    /// Checks the kernel's internal consistency; `Err` names the first
    /// broken rule.
    pub fn check_invariants(&self) -> Result<(), String> {
        // Handles point at live objects, and objects know their handles.
        for (&conn, p) in &self.processes {
            if p.handles.len() > self.config.limits.max_handles_per_process {
                return Err(format!("process {conn} exceeds the handle limit"));
            }
            for (&h, target) in &p.handles {
                let ok = match *target {
                    HandleTarget::ConnectionPort(id) => {
                        self.ports.get(&id).is_some_and(|port| port.server == conn && port.handle_open)
                    }
                    HandleTarget::ServerCommPort(id) => {
                        self.channels.get(&id).is_some_and(|c| c.server == conn && c.server_handle == Some(h))
                    }
                    HandleTarget::ClientCommPort(id) => {
                        self.channels.get(&id).is_some_and(|c| c.client == conn && c.client_handle == Some(h))
                    }
                    HandleTarget::Section(id) => {
                        self.sections.get(&id).is_some_and(|s| s.handles.get(&conn) == Some(&h))
                    }
                };
                if !ok {
                    return Err(format!("process {conn} handle 0x{h:x} → {target:?} is dangling"));
                }
            }
            let broken_wait = match p.blocked.as_ref().map(|b| b.wait) {
                Some(Wait::Reply) => p.reply_stack.is_empty(),
                Some(Wait::Receive(ReceiveSource::ConnectionPort(port))) => {
                    !self.ports.get(&port).is_some_and(|x| x.receivers.contains(&conn))
                }
                Some(Wait::Receive(ReceiveSource::ClientPort(ch))) => {
                    !self.channels.get(&ch).is_some_and(|x| x.client_receivers.contains(&conn))
                }
                Some(Wait::Connect { message_id }) => self.connects.get(&message_id).is_none_or(|c| c.client != conn),
                Some(Wait::Copy { .. }) | None => false,
            };
            if broken_wait {
                return Err(format!("process {conn} is blocked in a wait the kernel does not track"));
            }
            if p.reply_stack.len() > self.config.limits.max_nesting {
                return Err(format!("process {conn} nests too deep"));
            }
        }
        for (name, id) in &self.directory {
            if !self.ports.get(id).is_some_and(|p| &p.name == name && p.handle_open) {
                return Err(format!("directory entry {name} is stale"));
            }
        }
        // Pool usage equals the charges of what is queued or pending there.
        let mut live = 0usize;
        for (&id, port) in &self.ports {
            let queued: u64 = port.queue.iter().map(|m| m.charge).sum();
            let pending: u64 =
                self.pending.values().filter(|r| r.loc == QueueLoc::ConnectionPort(id)).map(|r| r.charge).sum();
            if port.pool_usage != queued + pending {
                return Err(format!("port {id} pool usage {} ≠ {queued} + {pending}", port.pool_usage));
            }
            if port.pool_usage > port.max_pool_usage {
                return Err(format!("port {id} is over its pool quota"));
            }
            live += port.queue.len();
            for &r in &port.receivers {
                let ok = self.processes.get(&r).and_then(|p| p.blocked.as_ref()).map(|b| b.wait)
                    == Some(Wait::Receive(ReceiveSource::ConnectionPort(id)));
                if !ok {
                    return Err(format!("port {id} lists receiver {r} that is not receiving"));
                }
            }
            if !port.receivers.is_empty() && !port.queue.is_empty() {
                return Err(format!("port {id} has both waiting receivers and queued messages"));
            }
            for ch in &port.channels {
                if self.channels.get(ch).map(|c| c.connection_port) != Some(id) {
                    return Err(format!("port {id} lists foreign channel {ch}"));
                }
            }
            if !port.handle_open && port.channels.is_empty() {
                return Err(format!("port {id} should have been deleted"));
            }
        }
        for (&id, c) in &self.channels {
            let queued: u64 = c.client_queue.iter().map(|m| m.charge).sum();
            let pending: u64 =
                self.pending.values().filter(|r| r.loc == QueueLoc::ClientPort(id)).map(|r| r.charge).sum();
            if c.client_pool_usage != queued + pending {
                return Err(format!("channel {id} client pool usage mismatch"));
            }
            if c.client_pool_usage > c.max_pool_usage {
                return Err(format!("channel {id} is over its pool quota"));
            }
            live += c.client_queue.len();
            if !self.ports.get(&c.connection_port).is_some_and(|p| p.channels.contains(&id)) {
                return Err(format!("channel {id} is not listed on its connection port"));
            }
            if c.server_handle.is_none() && c.client_handle.is_none() {
                return Err(format!("channel {id} should have been deleted"));
            }
            if !c.connected && !c.client_queue.is_empty() {
                return Err(format!("disconnected channel {id} still has queued messages"));
            }
            for section in [c.client_section, c.server_section].into_iter().flatten() {
                if self.sections.get(&section).map(|s| s.channel) != Some(id) {
                    return Err(format!("channel {id} names a missing section {section}"));
                }
            }
        }
        live += self.pending.len();
        if live != self.live_messages {
            return Err(format!("{} live messages counted, {live} found", self.live_messages));
        }
        if self.live_messages > self.config.limits.max_messages_total + self.config.limits.max_channels {
            return Err("message limit exceeded".into());
        }
        for (&mid, r) in &self.pending {
            if !self.processes.contains_key(&r.held_by) {
                return Err(format!("pending {mid} held by a gone process"));
            }
            if !self.channels.contains_key(&r.channel) {
                return Err(format!("pending {mid} on a gone channel"));
            }
        }
        for (&mid, c) in &self.connects {
            if !self.ports.contains_key(&c.port) {
                return Err(format!("connection request {mid} on a gone port"));
            }
            let client_waits = self
                .processes
                .get(&c.client)
                .and_then(|p| p.blocked.as_ref())
                .is_some_and(|b| b.wait == Wait::Connect { message_id: mid });
            if !client_waits {
                return Err(format!("connection request {mid} has no waiting client"));
            }
        }
        let mut section_bytes = 0;
        for (&id, s) in &self.sections {
            section_bytes += s.size;
            let mut end = 0u64;
            for (&offset, v) in &s.views {
                if offset < end || offset.saturating_add(v.size) > s.size {
                    return Err(format!("section {id} views overlap or overflow"));
                }
                end = offset + v.size;
            }
            if s.views.len() > self.config.limits.max_views_per_section {
                return Err(format!("section {id} has too many views"));
            }
            if !self.channels.contains_key(&s.channel) {
                return Err(format!("section {id} belongs to a gone channel"));
            }
        }
        if section_bytes != self.total_section_bytes || section_bytes > self.config.limits.max_total_section_bytes {
            return Err("section byte total mismatch".into());
        }
        if self.log.len() > self.config.limits.log_lines {
            return Err("log ring overflow".into());
        }
        Ok(())
    }
}
