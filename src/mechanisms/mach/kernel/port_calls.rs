//! The `mach_port_*` calls a task makes on its own name space: allocate,
//! insert a right, deallocate, adjust references, queue limits and
//! status, dead-name requests.

use super::port::Receiver;
use super::space::{copyin, CopyinError, Effect, Entry, Kind, Right};
use super::{Kernel, Personality, PortId, TaskId};
use crate::mechanisms::mach::types::*;

impl<F> Kernel<F> {
    pub(super) fn port_allocate(&mut self, task_id: TaskId, right: u32) -> (u32, MachPortName) {
        let max_names = self.limits.max_names_per_task;
        let max_recv = self.limits.max_receive_rights_per_task;
        let ports_full = self.ports.len() >= self.limits.max_ports;
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return (KERN_INVALID_TASK, 0);
        };
        match right {
            MACH_PORT_RIGHT_RECEIVE => {
                if ports_full || task.space.receive_rights() >= max_recv {
                    return (KERN_RESOURCE_SHORTAGE, 0);
                }
                let Some(name) = task.space.alloc_name(max_names) else {
                    return (KERN_NO_SPACE, 0);
                };
                let port = self.new_port(Receiver::Task { task: task_id, name });
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.space.entries.insert(name, Entry { port: Some(port), receive: true, ..Entry::default() });
                }
                (KERN_SUCCESS, name)
            }
            MACH_PORT_RIGHT_DEAD_NAME => {
                let Some(name) = task.space.alloc_name(max_names) else {
                    return (KERN_NO_SPACE, 0);
                };
                task.space.entries.insert(name, Entry { dead: 1, ..Entry::default() });
                (KERN_SUCCESS, name)
            }
            // Port sets are not emulated.
            _ => (KERN_INVALID_VALUE, 0),
        }
    }

    pub(super) fn port_insert_right(
        &mut self,
        task_id: TaskId,
        name: MachPortName,
        poly: MachPortName,
        disposition: u32,
    ) -> u32 {
        if !(MACH_MSG_TYPE_MOVE_RECEIVE..=MACH_MSG_TYPE_MAKE_SEND_ONCE).contains(&disposition) {
            return KERN_INVALID_VALUE;
        }
        if !mach_port_valid(name) {
            return KERN_INVALID_VALUE;
        }
        if !mach_port_valid(poly) {
            return KERN_INVALID_CAPABILITY;
        }
        let max_names = self.limits.max_names_per_task;
        let Some(task) = self.tasks.get(&task_id) else {
            return KERN_INVALID_TASK;
        };
        let mut space = task.space.clone();
        let mut effects = Vec::new();
        let right = match copyin(&mut space, poly, disposition, &mut effects) {
            Ok(r) => r,
            Err(CopyinError::InvalidName) => return KERN_INVALID_NAME,
            Err(CopyinError::DeadName) => return KERN_INVALID_CAPABILITY,
            Err(CopyinError::InvalidRight) => return KERN_INVALID_RIGHT,
        };
        match space.entries.get_mut(&name) {
            Some(e) => {
                // Only coalescing with the same port's send/receive rights.
                if e.dead > 0 || e.port != Some(right.port) || e.send_once || right.kind == Kind::SendOnce {
                    return KERN_NAME_EXISTS;
                }
                match right.kind {
                    Kind::Receive => e.receive = true,
                    _ => e.send = (e.send + 1).min(MACH_PORT_UREFS_MAX),
                }
            }
            None => {
                if right.kind != Kind::SendOnce && space.name_of(right.port).is_some() {
                    return KERN_RIGHT_EXISTS;
                }
                if let Err(kr) = space.can_claim(name, max_names) {
                    return kr;
                }
                let mut e = Entry { port: Some(right.port), ..Entry::default() };
                match right.kind {
                    Kind::Receive => e.receive = true,
                    Kind::Send => e.send = 1,
                    Kind::SendOnce => e.send_once = true,
                }
                space.entries.insert(name, e);
            }
        }
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.space = space;
        }
        // The right stays in this task: a moved receive right only renames.
        let effects = effects.into_iter().filter(|e| !matches!(e, Effect::MoveReceive(_))).collect();
        self.apply_effects(effects, 0);
        if right.kind == Kind::Receive {
            if let Some(p) = self.ports.get_mut(&right.port) {
                p.receiver = Receiver::Task { task: task_id, name };
            }
        }
        KERN_SUCCESS
    }

    pub(super) fn port_deallocate(&mut self, task_id: TaskId, name: MachPortName) -> u32 {
        if !mach_port_valid(name) {
            return KERN_SUCCESS;
        }
        let Some(entry) = self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&name)) else {
            return KERN_INVALID_NAME;
        };
        if entry.dead > 0 {
            self.delta_urefs(task_id, name, MACH_PORT_RIGHT_DEAD_NAME, -1)
        } else if entry.send_once {
            self.destroy_name(task_id, name);
            KERN_SUCCESS
        } else if entry.send > 0 {
            self.delta_urefs(task_id, name, MACH_PORT_RIGHT_SEND, -1)
        } else {
            KERN_INVALID_RIGHT
        }
    }

    pub(super) fn port_mod_refs(&mut self, task_id: TaskId, name: MachPortName, right: u32, delta: i32) -> u32 {
        if right >= MACH_PORT_RIGHT_NUMBER {
            return KERN_INVALID_VALUE;
        }
        if !mach_port_valid(name) {
            return if right == MACH_PORT_RIGHT_SEND || right == MACH_PORT_RIGHT_SEND_ONCE {
                KERN_SUCCESS
            } else {
                KERN_INVALID_NAME
            };
        }
        let Some(entry) = self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&name)) else {
            return KERN_INVALID_NAME;
        };
        match right {
            MACH_PORT_RIGHT_RECEIVE => {
                if !entry.receive {
                    return KERN_INVALID_RIGHT;
                }
                match delta {
                    0 => KERN_SUCCESS,
                    -1 => {
                        if let Some(port) = entry.port {
                            self.destroy_port(port);
                        }
                        KERN_SUCCESS
                    }
                    _ => KERN_INVALID_VALUE,
                }
            }
            MACH_PORT_RIGHT_SEND_ONCE => {
                if !entry.send_once {
                    return KERN_INVALID_RIGHT;
                }
                match delta {
                    0 => KERN_SUCCESS,
                    -1 => {
                        self.destroy_name(task_id, name);
                        KERN_SUCCESS
                    }
                    _ => KERN_INVALID_VALUE,
                }
            }
            MACH_PORT_RIGHT_SEND if entry.send == 0 => KERN_INVALID_RIGHT,
            MACH_PORT_RIGHT_DEAD_NAME if entry.dead == 0 => KERN_INVALID_RIGHT,
            MACH_PORT_RIGHT_SEND | MACH_PORT_RIGHT_DEAD_NAME => self.delta_urefs(task_id, name, right, delta),
            _ => KERN_INVALID_RIGHT,
        }
    }

    /// User-reference arithmetic for send rights and dead names, saturating
    /// at `MACH_PORT_UREFS_MAX` as XNU does.
    fn delta_urefs(&mut self, task_id: TaskId, name: MachPortName, right: u32, delta: i32) -> u32 {
        let max = MACH_PORT_UREFS_MAX as i64;
        let delta = i64::from(delta);
        if delta.abs() > max {
            return KERN_INVALID_VALUE;
        }
        let Some(entry) = self.tasks.get_mut(&task_id).and_then(|t| t.space.entries.get_mut(&name)) else {
            return KERN_INVALID_NAME;
        };
        let urefs = if right == MACH_PORT_RIGHT_SEND { &mut entry.send } else { &mut entry.dead };
        let current = i64::from(*urefs);
        let new = if current == max {
            // Pegged: only a full -MAX brings it down.
            if delta == -max {
                0
            } else {
                max
            }
        } else {
            current + delta
        };
        if new < 0 {
            return KERN_INVALID_VALUE;
        }
        *urefs = new.min(max) as u32;
        let empty = entry.send == 0 && entry.dead == 0 && !entry.receive && !entry.send_once;
        if empty {
            self.destroy_name(task_id, name);
        }
        KERN_SUCCESS
    }

    pub(super) fn receive_port_of(&self, task_id: TaskId, name: MachPortName) -> Result<PortId, u32> {
        let entry = self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&name)).ok_or(KERN_INVALID_NAME)?;
        if !entry.receive {
            return Err(KERN_INVALID_RIGHT);
        }
        entry.port.ok_or(KERN_INVALID_RIGHT)
    }

    pub(super) fn port_set_attributes(
        &mut self,
        task_id: TaskId,
        name: MachPortName,
        flavor: u32,
        info: &[i32],
    ) -> u32 {
        let port_id = match self.receive_port_of(task_id, name) {
            Ok(p) => p,
            Err(kr) => return kr,
        };
        if flavor != MACH_PORT_LIMITS_INFO {
            return KERN_INVALID_ARGUMENT;
        }
        let Some(&qlimit) = info.first() else {
            return KERN_FAILURE;
        };
        if qlimit < 0 || qlimit as u32 > MACH_PORT_QLIMIT_MAX {
            return KERN_INVALID_VALUE;
        }
        if let Some(port) = self.ports.get_mut(&port_id) {
            port.qlimit = qlimit as u32;
            let ordinary = port.queue.iter().filter(|k| k.dest.kind != Kind::SendOnce && k.marequest.is_none()).count();
            port.over_lowered_limit = ordinary > port.qlimit as usize;
        }
        // A raised limit makes room for waiting senders and kept messages.
        self.make_room(port_id);
        KERN_SUCCESS
    }

    pub(super) fn port_get_attributes(
        &self,
        task_id: TaskId,
        name: MachPortName,
        flavor: u32,
        count: u32,
    ) -> (u32, Vec<i32>) {
        let port_id = match self.receive_port_of(task_id, name) {
            Ok(p) => p,
            Err(kr) => return (kr, Vec::new()),
        };
        let Some(port) = self.ports.get(&port_id) else {
            return (KERN_INVALID_NAME, Vec::new());
        };
        match flavor {
            MACH_PORT_LIMITS_INFO if count as usize >= MACH_PORT_LIMITS_INFO_COUNT => {
                (KERN_SUCCESS, vec![port.qlimit as i32])
            }
            MACH_PORT_RECEIVE_STATUS if count as usize >= MACH_PORT_RECEIVE_STATUS_COUNT => {
                let (mut srights, mut sorights) = (0, 0);
                for t in self.tasks.values() {
                    for e in t.space.entries.values().filter(|e| e.live_port() == Some(port_id)) {
                        srights += i32::from(e.send > 0);
                        sorights += i32::from(e.send_once);
                    }
                }
                let status = vec![
                    0, // mps_pset: port sets are not emulated
                    port.seqno as i32,
                    port.mscount as i32,
                    port.qlimit as i32,
                    port.queue.len() as i32,
                    sorights,
                    srights,
                    0,
                    0,
                    0,
                ];
                (KERN_SUCCESS, status)
            }
            MACH_PORT_LIMITS_INFO | MACH_PORT_RECEIVE_STATUS => (KERN_FAILURE, Vec::new()),
            _ => (KERN_INVALID_ARGUMENT, Vec::new()),
        }
    }

    pub(super) fn port_request_notification(
        &mut self,
        task_id: TaskId,
        name: MachPortName,
        msgid: i32,
        sync: u32,
        notify: MachPortName,
        notify_disposition: u32,
    ) -> (u32, MachPortName) {
        // Dead-name requests, and XNU's send-possible requests (66 is GNU
        // Mach's MACH_NOTIFY_MSG_ACCEPTED, which cannot be requested).
        let send_possible = msgid == MACH_NOTIFY_SEND_POSSIBLE && self.personality() == Personality::Xnu;
        if msgid != MACH_NOTIFY_DEAD_NAME && !send_possible {
            return (KERN_INVALID_VALUE, 0);
        }
        let Some(task) = self.tasks.get(&task_id) else {
            return (KERN_INVALID_TASK, 0);
        };
        let Some(entry) = task.space.entries.get(&name) else {
            return (KERN_INVALID_NAME, 0);
        };
        if entry.dead > 0 {
            return (KERN_INVALID_ARGUMENT, 0);
        }
        if notify == MACH_PORT_DEAD {
            return (KERN_INVALID_CAPABILITY, 0);
        }
        let mut space = task.space.clone();
        let mut effects = Vec::new();
        let new_request = if notify == MACH_PORT_NULL {
            None
        } else {
            if notify_disposition != MACH_MSG_TYPE_MAKE_SEND_ONCE && notify_disposition != MACH_MSG_TYPE_MOVE_SEND_ONCE
            {
                return (KERN_INVALID_VALUE, 0);
            }
            match copyin(&mut space, notify, notify_disposition, &mut effects) {
                Ok(r) => Some(Right::new(r.port, Kind::SendOnce)),
                Err(_) => return (KERN_INVALID_CAPABILITY, 0),
            }
        };
        // The entry itself may have gone if `notify` was the same name.
        let Some(entry) = space.entries.get_mut(&name) else {
            return (KERN_INVALID_NAME, 0);
        };
        let previous = std::mem::replace(&mut entry.dn_request, new_request);
        entry.sp_request = send_possible && new_request.is_some();
        let target = entry.live_port();
        let to_send_once = entry.send_once;
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.space = space;
        }
        self.apply_effects(effects, 0);
        if let (true, Some(port_id), true) = (send_possible, target, new_request.is_some()) {
            if let Some(p) = self.ports.get_mut(&port_id) {
                // A new request replaces an armed one in the same slot.
                p.sp_armed.retain(|a| *a != (task_id, name));
            }
            if sync != 0 {
                // Armed now: fires at once if a send would not wait.
                let full = self.ports.get(&port_id).is_none_or(|p| p.is_full() && !p.is_kernel_port());
                if !full || to_send_once {
                    self.fire_send_possible(task_id, name, port_id);
                } else {
                    self.arm_send_possible(task_id, name, port_id);
                }
            }
        }
        let previous_name = match previous {
            None => MACH_PORT_NULL,
            Some(r) => self.copyout_right(task_id, r, MACH_PORT_NULL).unwrap_or_else(|| {
                self.release_right(r);
                MACH_PORT_NULL
            }),
        };
        (KERN_SUCCESS, previous_name)
    }
}
