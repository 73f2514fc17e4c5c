//! Mach message passing as a mechanism of ipcscope: the supervisor's side
//! (which processes to start, which one `k` kills) and the registration
//! record. Its knobs are in [`super::consts`].
//!
//! Processes, each a task of the emulated kernel except the kernel itself:
//! - `kernel` — `ipcscope kernel mach`, the emulated Mach kernel (its own
//!   process group, so pausing the workers never freezes it);
//! - `server` — checks in `edu.ipcscope.echo` with the bootstrap server and
//!   answers every request through the request's send-once reply right;
//! - `client-1` … `client-N` — look the service up and send requests
//!   (`client-1` has two threads sharing one name space).

use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};

use super::probe::MachProbe;
use super::workload;
use crate::knobs::KnobId;
use crate::mechanisms::worker::WorkerCtx;
use crate::mechanisms::{Info, Kind, Mechanism, Probe};
use crate::supervisor::{Supervisor, WorkerSpec};

pub static INFO: Info =
    Info { kind: Kind::Mach, knobs: KnobId::MACH, new: || Box::new(Mach::default()), worker: run_worker };

#[derive(Default)]
pub struct Mach {
    kernel: usize,
    server: usize,
    /// The client slots of the current start; shared with the probe, as
    /// `mach.senders` may change at a restart.
    clients: Arc<Mutex<Vec<usize>>>,
    /// Every client slot ever allocated, in order.
    all: Vec<usize>,
}

impl Mechanism for Mach {
    fn kind(&self) -> Kind {
        Kind::Mach
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.kernel = sup.alloc_slot()?;
        self.server = sup.alloc_slot()?;
        self.spawn(sup)
    }

    fn victim(&self) -> Option<usize> {
        Some(self.server)
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        // A fresh kernel, fresh tasks: knobs read at start (the number of
        // senders) take effect, and no name from the old kernel survives.
        for s in self.client_slots().into_iter().chain([self.server, self.kernel]) {
            sup.signal_slot(s, libc::SIGKILL);
        }
        self.spawn(sup)
    }

    fn producers(&self) -> Vec<usize> {
        self.client_slots()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        Box::new(MachProbe::new(self.kernel, self.server, self.clients.clone(), sup.dir_path()))
    }
}

impl Mach {
    fn client_slots(&self) -> Vec<usize> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn spawn(&mut self, sup: &mut Supervisor) -> Result<()> {
        let senders = (sup.knobs().get(KnobId::MachSenders) as usize).clamp(1, 8);
        // Slots are never given back: a restart with fewer senders keeps
        // the others for a later restart with more.
        while self.all.len() < senders {
            self.all.push(sup.alloc_slot()?);
        }
        let slots: Vec<usize> = self.all[..senders].to_vec();
        for &s in &self.all[senders..] {
            sup.telemetry().reset_slot(s);
        }
        *self.clients.lock().unwrap_or_else(|e| e.into_inner()) = slots.clone();
        sup.spawn(&WorkerSpec::kernel(Kind::Mach, "mach", self.kernel))?;
        sup.spawn(&WorkerSpec::new(Kind::Mach, "server", self.server))?;
        for (i, &slot) in slots.iter().enumerate() {
            let threads = if i == 0 { 2 } else { 1 };
            let spec = WorkerSpec::new(Kind::Mach, "client", slot).arg("n", i + 1).arg("threads", threads);
            sup.spawn(&spec)?;
        }
        Ok(())
    }
}

fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "kernel" => workload::kernel(ctx),
        "server" => workload::server(ctx),
        "client" => workload::client(ctx),
        _ => bail!("Mach has no role {role:?} (kernel, server, client)"),
    }
}
