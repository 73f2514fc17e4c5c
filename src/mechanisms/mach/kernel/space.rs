//! Rights and name spaces (`ipc_right`, `ipc_entry`, `ipc_space`): a
//! right outside any space, one name's entry, a task's table of names, and
//! the copyin and copyout of a single right by disposition.

use std::collections::BTreeMap;

use super::PortId;
use crate::mechanisms::mach::types::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Receive,
    Send,
    SendOnce,
}

impl Kind {
    pub(super) fn type_name(self) -> u32 {
        match self {
            Kind::Receive => MACH_MSG_TYPE_PORT_RECEIVE,
            Kind::Send => MACH_MSG_TYPE_PORT_SEND,
            Kind::SendOnce => MACH_MSG_TYPE_PORT_SEND_ONCE,
        }
    }
}

/// A right outside any name space: in a message, or held by the kernel
/// for a notification request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Right {
    pub(super) port: PortId,
    pub(super) kind: Kind,
    /// The name it had in the sender's space, reused if the right comes back.
    pub(super) origin: MachPortName,
    /// Taken with a `MOVE_*` disposition: a failed send gives it back.
    pub(super) moved: bool,
}

impl Right {
    pub(super) fn new(port: PortId, kind: Kind) -> Right {
        Right { port, kind, origin: MACH_PORT_NULL, moved: false }
    }
}

/// One name in a space. Exactly one of: port rights (receive and/or send,
/// coalesced), a send-once right, a dead name.
#[derive(Clone, Debug, Default)]
pub(super) struct Entry {
    pub(super) port: Option<PortId>,
    pub(super) receive: bool,
    pub(super) send: u32,
    pub(super) send_once: bool,
    pub(super) dead: u32,
    /// `MACH_NOTIFY_DEAD_NAME` request: the send-once right to notify.
    /// XNU keeps a send-possible request in the same slot.
    pub(super) dn_request: Option<Right>,
    /// The request in `dn_request` is `MACH_NOTIFY_SEND_POSSIBLE` (which
    /// also fires `MACH_NOTIFY_DEAD_NAME` if the port dies).
    pub(super) sp_request: bool,
}

impl Entry {
    pub(super) fn live_port(&self) -> Option<PortId> {
        if self.dead == 0 {
            self.port
        } else {
            None
        }
    }
}

const MAX_NAME_INDEX: u32 = 0x00ff_ffff;
/// XNU hands out the first slots in order (`NUM_SEQ_ENTRIES`), then picks
/// free slots at random (`CONFIG_SEMI_RANDOM_ENTRIES`).
const SEQUENTIAL_INDICES: u32 = 8;
/// Slots added to a space's table when it runs out.
const TABLE_GROWTH: u32 = 64;

/// A task's port name space (`ipc_space`).
#[derive(Clone, Debug)]
pub(super) struct Space {
    pub(super) entries: BTreeMap<MachPortName, Entry>,
    /// Last generation handed out per kernel-chosen index.
    gens: BTreeMap<u32, u8>,
    /// Free kernel-chosen indices below `table`.
    pub(super) free: Vec<u32>,
    /// Indices below this have been part of the table.
    pub(super) table: u32,
    /// Deterministic per task, so tests and replays see the same names.
    rng: u64,
}

impl Space {
    pub(super) fn new(seed: u64) -> Space {
        // Index 0 is reserved: names start at 0x103 like XNU's.
        Space { entries: BTreeMap::new(), gens: BTreeMap::new(), free: Vec::new(), table: 1, rng: seed | 1 }
    }

    fn index_in_use(&self, index: u32) -> bool {
        let lo = index << 8;
        self.entries.range(lo..=lo | 0xff).next().is_some()
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: cheap and good enough to scatter names.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A fresh kernel-chosen name: `index << 8 | gen`, the generation
    /// stepping by 4 from 0x03 on each reuse of an index, as XNU does.
    pub(super) fn alloc_name(&mut self, max: usize) -> Option<MachPortName> {
        if self.entries.len() >= max {
            return None;
        }
        loop {
            let index = if self.table <= SEQUENTIAL_INDICES {
                self.table += 1;
                self.table - 1
            } else {
                if self.free.is_empty() {
                    if self.table > MAX_NAME_INDEX - TABLE_GROWTH {
                        return None;
                    }
                    self.free.extend(self.table..self.table + TABLE_GROWTH);
                    self.table += TABLE_GROWTH;
                }
                let pick = (self.next_random() % self.free.len() as u64) as usize;
                self.free.swap_remove(pick)
            };
            if self.index_in_use(index) {
                // Taken by a caller-chosen name; it returns to the free
                // list when that name goes.
                continue;
            }
            let gen = self.gens.get(&index).copied().unwrap_or(0xff).wrapping_add(4);
            self.gens.insert(index, gen);
            return Some(index << 8 | gen as u32);
        }
    }

    /// Whether a caller-chosen name can be created.
    pub(super) fn can_claim(&self, name: MachPortName, max: usize) -> Result<(), u32> {
        if !mach_port_valid(name) {
            return Err(KERN_INVALID_VALUE);
        }
        if self.entries.contains_key(&name) || self.index_in_use(name >> 8) {
            return Err(KERN_NAME_EXISTS);
        }
        if self.entries.len() >= max {
            return Err(KERN_NO_SPACE);
        }
        Ok(())
    }

    pub(super) fn remove(&mut self, name: MachPortName) -> Option<Entry> {
        let entry = self.entries.remove(&name)?;
        let index = name >> 8;
        if index < self.table && !self.index_in_use(index) && !self.free.contains(&index) {
            self.free.push(index);
        }
        Some(entry)
    }

    /// The name under which this space holds a receive or send right for
    /// `port` (send rights coalesce with each other and with the receive
    /// right under one name).
    pub(super) fn name_of(&self, port: PortId) -> Option<MachPortName> {
        self.entries
            .iter()
            .find(|(_, e)| e.dead == 0 && e.port == Some(port) && (e.receive || e.send > 0))
            .map(|(n, _)| *n)
    }

    pub(super) fn receive_rights(&self) -> usize {
        self.entries.values().filter(|e| e.receive).count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CopyinError {
    InvalidName,
    InvalidRight,
    DeadName,
}

/// Side effects of copyin that touch ports, applied only when the
/// (tentative) copyin is committed.
#[derive(Debug)]
pub(super) enum Effect {
    MoveReceive(PortId),
    MakeSend(PortId),
    /// A name with a dead-name request went away while its port lives:
    /// the request's send-once right carries `MACH_NOTIFY_PORT_DELETED`.
    RequestDropped {
        name: MachPortName,
        request: Right,
    },
}

/// `ipc_right_copyin`: takes a right out of `space` by disposition.
pub(super) fn copyin(
    space: &mut Space,
    name: MachPortName,
    disposition: u32,
    effects: &mut Vec<Effect>,
) -> Result<Right, CopyinError> {
    let entry = space.entries.get_mut(&name).ok_or(CopyinError::InvalidName)?;
    if entry.dead > 0 {
        return Err(match disposition {
            MACH_MSG_TYPE_MOVE_SEND | MACH_MSG_TYPE_COPY_SEND | MACH_MSG_TYPE_MOVE_SEND_ONCE => CopyinError::DeadName,
            _ => CopyinError::InvalidRight,
        });
    }
    let port = entry.port.ok_or(CopyinError::InvalidRight)?;
    let mut remove = false;
    let right = match disposition {
        MACH_MSG_TYPE_MOVE_RECEIVE if entry.receive => {
            entry.receive = false;
            remove = entry.send == 0;
            effects.push(Effect::MoveReceive(port));
            Right { port, kind: Kind::Receive, origin: name, moved: true }
        }
        MACH_MSG_TYPE_MOVE_SEND if entry.send > 0 => {
            // A saturated count stays saturated (XNU never lets it wrap).
            if entry.send < MACH_PORT_UREFS_MAX {
                entry.send -= 1;
            }
            remove = entry.send == 0 && !entry.receive;
            Right { port, kind: Kind::Send, origin: name, moved: true }
        }
        MACH_MSG_TYPE_MOVE_SEND_ONCE if entry.send_once => {
            remove = true;
            Right { port, kind: Kind::SendOnce, origin: name, moved: true }
        }
        MACH_MSG_TYPE_COPY_SEND if entry.send > 0 => Right::new(port, Kind::Send),
        MACH_MSG_TYPE_MAKE_SEND if entry.receive => {
            effects.push(Effect::MakeSend(port));
            Right::new(port, Kind::Send)
        }
        MACH_MSG_TYPE_MAKE_SEND_ONCE if entry.receive => Right::new(port, Kind::SendOnce),
        _ => return Err(CopyinError::InvalidRight),
    };
    if remove {
        if let Some(entry) = space.remove(name) {
            if let Some(request) = entry.dn_request {
                effects.push(Effect::RequestDropped { name, request });
            }
        }
    }
    Ok(right)
}

/// `ipc_right_copyout` into a space: coalesces receive/send rights with an
/// existing name for the port, else takes `preferred` if free, else a fresh
/// name. `None` when the space is full. The caller records a receive
/// right's new holder.
pub(super) fn copyout(
    space: &mut Space,
    right: Right,
    preferred: MachPortName,
    max_names: usize,
) -> Option<MachPortName> {
    if right.kind != Kind::SendOnce {
        if let Some(name) = space.name_of(right.port) {
            let entry = space.entries.get_mut(&name)?;
            match right.kind {
                Kind::Receive => entry.receive = true,
                _ => entry.send = (entry.send + 1).min(MACH_PORT_UREFS_MAX),
            }
            return Some(name);
        }
    }
    let name = if space.can_claim(preferred, max_names).is_ok() { preferred } else { space.alloc_name(max_names)? };
    let mut entry = Entry { port: Some(right.port), ..Entry::default() };
    match right.kind {
        Kind::Receive => entry.receive = true,
        Kind::Send => entry.send = 1,
        Kind::SendOnce => entry.send_once = true,
    }
    space.entries.insert(name, entry);
    Some(name)
}
