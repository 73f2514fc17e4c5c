//! Mach message passing as a mechanism of ipcscope: its knobs, the
//! supervisor's side (which processes to start, which one `k` kills) and
//! the registration record.
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
use crate::knobs::{KnobKind, KnobSpec};
use crate::mechanisms::worker::WorkerCtx;
use crate::mechanisms::{Info, Kind, Mechanism, Probe};
use crate::supervisor::{Supervisor, WorkerSpec};

pub static INFO: Info = Info { kind: Kind::Mach, knobs: KNOBS, new: || Box::new(Mach::default()), worker: run_worker };

/// The choices of `mach.send_mode`, in the order they are stored.
pub const SEND_MODES: &[&str] = &["block", "timeout", "immediate", "notify"];

pub(crate) const KNOBS: &[KnobSpec] = &[
    KnobSpec {
        key: "mach.qlimit",
        kind: KnobKind::Int { min: 0, max: 1024 },
        default: "5",
        help: "the service port's queue limit, set with mach_port_set_attributes(MACH_PORT_LIMITS_INFO); 5 = MACH_PORT_QLIMIT_DEFAULT, 1024 = MACH_PORT_QLIMIT_MAX",
    },
    KnobSpec {
        key: "mach.senders",
        kind: KnobKind::Int { min: 1, max: 8 },
        default: "2",
        help: "client tasks (client-1 has two threads sharing its name space); applies at restart",
    },
    KnobSpec {
        key: "mach.send_mode",
        kind: KnobKind::ChoiceArg { choices: SEND_MODES, with_arg: "timeout", arg: (0, 60_000) },
        default: "block",
        help: "what mach_msg does on a full queue: block = wait, timeout:MS = MACH_SEND_TIMEOUT, immediate = timeout 0, notify = MACH_SEND_NOTIFY (one cached message per thread)",
    },
    KnobSpec {
        key: "mach.ool_threshold",
        kind: KnobKind::Int { min: 0, max: 1 << 20 },
        default: "16384",
        help: "message bodies larger than this go out of line (mapped memory, not copied); 16384 = XNU's small-OOL copy limit on x86_64",
    },
];

/// The name the server checks in with the bootstrap server.
pub const SERVICE: &str = "edu.ipcscope.echo";
/// The socket of the emulated kernel, in the run's directory.
pub const SOCKET: &str = "mach.sock";

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
        let senders = (sup.knobs().get("mach.senders") as usize).clamp(1, 8);
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
