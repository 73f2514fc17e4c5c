//! The kernel's invariants, checked by the tests after every step of a
//! hostile workload.

use std::collections::BTreeMap;

use super::kmsg::Kmsg;
use super::port::Receiver;
use super::space::Kind;
use super::thread::Pending;
use super::{Kernel, PortId};
use crate::mechanisms::mach::types::*;

impl<F> Kernel<F> {
    /// Checks the kernel's invariants; the error says which one broke.
    pub fn check_invariants(&self) -> Result<(), String> {
        // Receive rights: each live port has exactly one holder.
        let mut receive_holders: BTreeMap<PortId, usize> = BTreeMap::new();
        for (tid, t) in &self.tasks {
            for (name, e) in &t.space.entries {
                let kinds = usize::from(e.receive || e.send > 0) + usize::from(e.send_once) + usize::from(e.dead > 0);
                if kinds != 1 {
                    return Err(format!("task {tid} name {name:#x}: malformed entry {e:?}"));
                }
                if e.send > MACH_PORT_UREFS_MAX || e.dead > MACH_PORT_UREFS_MAX {
                    return Err(format!("task {tid} name {name:#x}: urefs over the maximum"));
                }
                if e.sp_request && e.dn_request.is_none() {
                    return Err(format!("task {tid} name {name:#x}: send-possible mark without a request"));
                }
                if e.dead > 0 {
                    if e.port.is_some_and(|p| self.ports.contains_key(&p)) {
                        return Err(format!("task {tid} name {name:#x}: dead name of a live port"));
                    }
                    if e.dn_request.is_some() {
                        return Err(format!("task {tid} name {name:#x}: request left on a dead name"));
                    }
                    continue;
                }
                let Some(p) = e.port else {
                    return Err(format!("task {tid} name {name:#x}: right without a port"));
                };
                let Some(port) = self.ports.get(&p) else {
                    return Err(format!("task {tid} name {name:#x}: right to dead port {p}"));
                };
                if e.receive {
                    *receive_holders.entry(p).or_default() += 1;
                    if port.receiver != (Receiver::Task { task: *tid, name: *name }) {
                        return Err(format!(
                            "port {p}: receiver {:?} but task {tid} holds it as {name:#x}",
                            port.receiver
                        ));
                    }
                }
            }
            let coalesced: Vec<PortId> = t
                .space
                .entries
                .values()
                .filter(|e| e.dead == 0 && (e.receive || e.send > 0))
                .filter_map(|e| e.port)
                .collect();
            let mut sorted = coalesced.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != coalesced.len() {
                return Err(format!("task {tid}: a port's send/receive rights under two names"));
            }
            for c in &t.threads {
                if self.threads.get(c).map(|th| th.task) != Some(*tid) {
                    return Err(format!("task {tid}: thread {c} not registered"));
                }
            }
        }
        let mut in_transit: BTreeMap<PortId, usize> = BTreeMap::new();
        let mut msgs = 0usize;
        let mut bytes = 0usize;
        let mut ool = 0usize;
        let mut count = |k: &Kmsg<F>, in_transit: &mut BTreeMap<PortId, usize>| {
            msgs += 1;
            bytes += k.body.len();
            ool += k.ool_objects();
            for r in k.rights().filter(|r| r.kind == Kind::Receive) {
                *in_transit.entry(r.port).or_default() += 1;
            }
        };
        for (id, port) in &self.ports {
            port.queue.iter().for_each(|k| count(k, &mut in_transit));
            let ordinary = port.queue.iter().filter(|k| k.dest.kind != Kind::SendOnce && k.marequest.is_none()).count();
            if ordinary > port.qlimit as usize && !port.over_lowered_limit {
                return Err(format!("port {id}: {ordinary} ordinary messages over qlimit {}", port.qlimit));
            }
            if !port.blocked_senders.is_empty() && !port.is_full() {
                return Err(format!("port {id}: senders wait although the queue has room"));
            }
            if !port.blocked_receivers.is_empty() && !port.queue.is_empty() {
                return Err(format!("port {id}: receivers wait although messages are queued"));
            }
            for c in &port.blocked_senders {
                match self.threads.get(c).map(|t| &t.pending) {
                    Some(Pending::Send(bs)) if bs.port == *id => {}
                    _ => return Err(format!("port {id}: blocked sender {c} is not waiting on it")),
                }
            }
            for c in &port.blocked_receivers {
                match self.threads.get(c).map(|t| &t.pending) {
                    Some(Pending::Receive(br)) if br.port == *id => {}
                    _ => return Err(format!("port {id}: blocked receiver {c} is not waiting on it")),
                }
            }
        }
        for (c, th) in &self.threads {
            if !self.tasks.get(&th.task).is_some_and(|t| t.threads.contains(c)) {
                return Err(format!("thread {c}: task {} does not list it", th.task));
            }
            match &th.pending {
                Pending::Send(bs) => {
                    count(&bs.kmsg, &mut in_transit);
                    if !self.ports.get(&bs.port).is_some_and(|p| p.blocked_senders.contains(c)) {
                        return Err(format!("thread {c}: blocked send not listed on port {}", bs.port));
                    }
                }
                Pending::Receive(br) => {
                    if !self.ports.get(&br.port).is_some_and(|p| p.blocked_receivers.contains(c)) {
                        return Err(format!("thread {c}: blocked receive not listed on port {}", br.port));
                    }
                }
                Pending::Idle => {}
            }
            if let Some(id) = th.cached {
                let found = self
                    .ports
                    .values()
                    .flat_map(|p| p.queue.iter())
                    .any(|k| k.id == id && k.marequest.is_some_and(|m| m.thread == *c));
                if !found {
                    return Err(format!("thread {c}: cached message {id} not pending in any queue"));
                }
            }
        }
        if (msgs, bytes, ool) != (self.alive_msgs, self.alive_bytes, self.alive_ool) {
            return Err(format!(
                "accounting: counted {msgs} msgs/{bytes} B/{ool} OOL, books say {}/{}/{}",
                self.alive_msgs, self.alive_bytes, self.alive_ool
            ));
        }
        for (id, port) in &self.ports {
            let holders = receive_holders.get(id).copied().unwrap_or(0);
            let travelling = in_transit.get(id).copied().unwrap_or(0);
            let ok = match port.receiver {
                Receiver::Task { .. } => holders == 1 && travelling == 0,
                Receiver::InTransit { .. } => holders == 0 && travelling == 1,
                Receiver::Bootstrap | Receiver::TaskSelf(_) => holders == 0 && travelling == 0,
            };
            if !ok {
                return Err(format!(
                    "port {id}: receiver {:?}, {holders} holders, {travelling} in transit",
                    port.receiver
                ));
            }
            if let Receiver::TaskSelf(t) = port.receiver {
                if !self.tasks.contains_key(&t) {
                    return Err(format!("port {id}: task port of dead task {t}"));
                }
            }
        }
        for (name, s) in &self.services {
            if !self.ports.contains_key(&s.port) {
                return Err(format!("service {name}: port {} is dead", s.port));
            }
        }
        if !self.doomed.is_empty() {
            return Err("ports left to destroy".into());
        }
        Ok(())
    }
}
