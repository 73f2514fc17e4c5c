//! The bootstrap server (launchd's part): check in, register and look up
//! services by name.

use super::space::{Kind, Right};
use super::{Kernel, PortId, TaskId};
use crate::mechanisms::mach::proto::MAX_SERVICE_NAME;
use crate::mechanisms::mach::types::*;

#[derive(Debug, Clone)]
pub(super) struct Service {
    pub(super) port: PortId,
    pub(super) task: TaskId,
    pub(super) pid: i32,
    pub(super) checked_in: bool,
}

impl<F> Kernel<F> {
    /// The bootstrap calls are messages to the bootstrap port in real Mach,
    /// so a bad `bp` fails like a send to a bad destination.
    fn check_bootstrap(&self, task_id: TaskId, bp: MachPortName, service: &str) -> Result<(), u32> {
        let ok = self
            .tasks
            .get(&task_id)
            .and_then(|t| t.space.entries.get(&bp))
            .is_some_and(|e| e.send > 0 && e.dead == 0 && e.port == Some(self.bootstrap_port));
        if !ok {
            return Err(MACH_SEND_INVALID_DEST);
        }
        if service.is_empty() || service.len() > MAX_SERVICE_NAME {
            return Err(BOOTSTRAP_BAD_COUNT);
        }
        Ok(())
    }

    pub(super) fn bootstrap_check_in(
        &mut self,
        task_id: TaskId,
        bp: MachPortName,
        service: &str,
    ) -> (u32, MachPortName) {
        if let Err(kr) = self.check_bootstrap(task_id, bp, service) {
            return (kr, 0);
        }
        if let Some(s) = self.services.get(service) {
            return (if s.checked_in { BOOTSTRAP_SERVICE_ACTIVE } else { BOOTSTRAP_NOT_PRIVILEGED }, 0);
        }
        if self.services.len() >= self.limits.max_services {
            return (BOOTSTRAP_NO_MEMORY, 0);
        }
        // launchd creates a declared service's port and hands out its
        // receive right on check-in; services here are declared on demand.
        let (kr, name) = self.port_allocate(task_id, MACH_PORT_RIGHT_RECEIVE);
        if kr != KERN_SUCCESS {
            return (kr, 0);
        }
        let Ok(port) = self.receive_port_of(task_id, name) else {
            return (KERN_FAILURE, 0);
        };
        let pid = self.tasks.get(&task_id).map_or(0, |t| t.pid);
        self.services.insert(service.to_string(), Service { port, task: task_id, pid, checked_in: true });
        (KERN_SUCCESS, name)
    }

    pub(super) fn bootstrap_register(
        &mut self,
        task_id: TaskId,
        bp: MachPortName,
        service: &str,
        port_name: MachPortName,
    ) -> u32 {
        if let Err(kr) = self.check_bootstrap(task_id, bp, service) {
            return kr;
        }
        if let Some(s) = self.services.get(service) {
            // launchd lets the registrant withdraw its own name with NULL.
            if port_name == MACH_PORT_NULL && s.task == task_id && !s.checked_in {
                self.services.remove(service);
                return KERN_SUCCESS;
            }
            return BOOTSTRAP_NAME_IN_USE;
        }
        if self.services.len() >= self.limits.max_services {
            return BOOTSTRAP_NO_MEMORY;
        }
        let port = match self.tasks.get(&task_id).and_then(|t| t.space.entries.get(&port_name)) {
            Some(e) if e.dead == 0 && (e.receive || e.send > 0) => e.port,
            Some(_) => return KERN_INVALID_RIGHT,
            None => return KERN_INVALID_NAME,
        };
        let Some(port) = port else {
            return KERN_INVALID_RIGHT;
        };
        let pid = self.tasks.get(&task_id).map_or(0, |t| t.pid);
        self.services.insert(service.to_string(), Service { port, task: task_id, pid, checked_in: false });
        KERN_SUCCESS
    }

    pub(super) fn bootstrap_look_up(
        &mut self,
        task_id: TaskId,
        bp: MachPortName,
        service: &str,
    ) -> (u32, MachPortName) {
        if let Err(kr) = self.check_bootstrap(task_id, bp, service) {
            return (kr, 0);
        }
        let Some(port) = self.services.get(service).map(|s| s.port) else {
            return (BOOTSTRAP_UNKNOWN_SERVICE, 0);
        };
        match self.copyout_right(task_id, Right::new(port, Kind::Send), MACH_PORT_NULL) {
            Some(name) if name != MACH_PORT_DEAD => (KERN_SUCCESS, name),
            Some(_) => (BOOTSTRAP_UNKNOWN_SERVICE, 0),
            None => (KERN_NO_SPACE, 0),
        }
    }
}
