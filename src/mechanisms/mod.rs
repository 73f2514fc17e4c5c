//! One module per IPC mechanism. Each gives:
//! - its knobs,
//! - `Mechanism`: sets up its objects and spawns its worker processes,
//! - the worker roles (what runs inside those processes),
//! - `Probe`: what the monitor samples, producing a `MechanismSnapshot`.
//!
//! Adding a mechanism = a module here, a line in `REGISTRY`, a `Detail`
//! variant and a panel under `ui/`.

pub mod alpc;
pub mod ekernel;
pub mod fifo;
pub mod mach;
pub mod mq;
pub mod pipe;
pub mod shm;
pub mod socket;
pub mod worker;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::knobs::KnobId;
use crate::snapshot::MechanismSnapshot;
use crate::supervisor::{Supervisor, WorkerSpec};
use crate::telemetry::Telemetry;

/// Every mechanism the textbook chapter covers, in the order the grid
/// shows them. Not all are built yet: `REGISTRY` says which are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pipe,
    Fifo,
    Shm,
    Mq,
    Mach,
    Alpc,
    Socket,
}

impl Kind {
    pub const ALL: [Kind; 7] = [Kind::Pipe, Kind::Fifo, Kind::Shm, Kind::Mq, Kind::Mach, Kind::Alpc, Kind::Socket];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Pipe => "pipe",
            Kind::Fifo => "fifo",
            Kind::Shm => "shm",
            Kind::Mq => "mq",
            Kind::Mach => "mach",
            Kind::Alpc => "alpc",
            Kind::Socket => "socket",
        }
    }

    pub fn info(self) -> Option<&'static Info> {
        REGISTRY.iter().copied().find(|i| i.kind == self)
    }
}

/// The mechanisms this build has.
pub static REGISTRY: &[&Info] =
    &[&pipe::INFO, &fifo::INFO, &shm::INFO, &mq::INFO, &mach::INFO, &alpc::INFO, &socket::INFO];

/// What the rest of the program needs to know about a mechanism.
pub struct Info {
    pub kind: Kind,
    /// Knobs of its own (the shared ones are `KnobId::COMMON`).
    pub knobs: &'static [KnobId],
    pub new: fn() -> Box<dyn Mechanism>,
    /// Runs a worker role inside a worker process.
    pub worker: fn(&mut worker::WorkerCtx, role: &str) -> Result<()>,
}

/// Split a comma-separated list given on the command line: an empty item
/// (`pipe,,fifo`, a trailing comma) or one named twice is refused, so a
/// typo is said rather than silently dropped. `what` names the list.
pub fn split_list<'a>(s: &'a str, what: &str) -> Result<Vec<&'a str>, String> {
    let mut out: Vec<&str> = Vec::new();
    for (i, item) in s.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            return Err(format!("empty item {} in {what} {s:?}", i + 1));
        }
        if out.contains(&item) {
            return Err(format!("{item:?} is named twice in {what} {s:?}"));
        }
        out.push(item);
    }
    Ok(out)
}

/// Parse `pipe,fifo` (or `all`) into kinds this build has; the error names
/// the valid choices.
pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
    let valid = || REGISTRY.iter().map(|i| i.kind.name()).collect::<Vec<_>>().join(", ");
    if s.trim() == "all" {
        return Ok(REGISTRY.iter().map(|i| i.kind).collect());
    }
    if s.trim().is_empty() {
        return Err(format!("no mechanism given; choose from: {}, all", valid()));
    }
    let mut out = Vec::new();
    for name in split_list(s, "--mechanisms")? {
        let info = REGISTRY
            .iter()
            .find(|i| i.kind.name() == name)
            .ok_or_else(|| format!("unknown mechanism {name:?}; choose from: {}, all", valid()))?;
        out.push(info.kind);
    }
    out.sort();
    Ok(out)
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

/// Spawn a producer and a consumer that meet at the named object `name`
/// (a shared-memory object, a message queue).
fn spawn_named_pair(sup: &mut Supervisor, kind: Kind, producer: usize, consumer: usize, name: &str) -> Result<()> {
    sup.spawn(&WorkerSpec::new(kind, "producer", producer).arg("name", name))?;
    sup.spawn(&WorkerSpec::new(kind, "consumer", consumer).arg("name", name))?;
    Ok(())
}

/// Sampling, on the monitor thread.
pub trait Probe: Send {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_refuse_empty_items_and_repeats() {
        assert_eq!(parse_list("fifo, pipe"), Ok(vec![Kind::Pipe, Kind::Fifo]));
        assert!(parse_list("pipe,pipe").unwrap_err().contains("twice"));
        assert!(parse_list("pipe,,fifo").unwrap_err().contains("empty item 2"));
        assert!(parse_list("pipe,").unwrap_err().contains("empty item 2"));
        assert!(parse_list(" ").unwrap_err().contains("no mechanism"));
    }

    #[test]
    fn every_knob_is_common_or_one_mechanisms_own() {
        let mut ids: Vec<KnobId> = KnobId::COMMON.to_vec();
        for info in REGISTRY {
            ids.extend(info.knobs);
        }
        ids.sort();
        assert_eq!(ids, KnobId::ALL);
    }
}
