//! One module per IPC mechanism. Each gives:
//! - its knobs,
//! - `Mechanism`: sets up its objects and spawns its worker processes,
//! - the worker roles (what runs inside those processes),
//! - a `Probe` (the trait is the monitor's): what the monitor samples.
//!
//! Adding a mechanism = a module here, its detail in `model/detail/`, a line
//! in `registry::REGISTRY` and one in `ui::PANELS`.

pub mod alpc;
pub mod ekernel;
pub mod fifo;
pub mod mach;
pub mod mq;
pub mod pair;
pub mod pipe;
pub mod shm;
pub mod socket;
pub mod worker;

use anyhow::Result;

use crate::knobs::KnobId;
pub use crate::model::Kind;
pub use crate::monitor::Probe;
use crate::supervisor::Supervisor;

/// What the rest of the program needs to know about a mechanism.
pub struct Info {
    pub kind: Kind,
    /// Knobs of its own (the shared ones are `KnobId::COMMON`).
    pub knobs: &'static [KnobId],
    pub new: fn() -> Box<dyn Mechanism>,
    /// Runs a worker role inside a worker process.
    pub worker: fn(&mut worker::WorkerCtx, role: &str) -> Result<()>,
}

/// A mechanism's life on the supervisor's side.
pub trait Mechanism: Send {
    fn kind(&self) -> Kind;
    /// Create its objects and spawn its processes.
    fn start(&mut self, sup: &mut Supervisor) -> Result<()>;
    /// The role `k` kills (the one whose death teaches something: the
    /// reader of a pipe, the server of a port, …).
    fn victim(&self) -> Option<usize>;
    /// Bring dead roles back (kills the survivors first where the
    /// mechanism cannot reconnect them, e.g. an anonymous pipe).
    fn restart(&mut self, sup: &mut Supervisor) -> Result<()>;
    /// The producer slots, for step mode.
    fn producers(&self) -> Vec<usize>;
    /// What the monitor thread will sample.
    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe>;
}
