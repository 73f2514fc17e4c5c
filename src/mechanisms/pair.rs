//! The supervisor side shared by the producer/consumer mechanisms: their
//! slots, which one `k` kills, which ones step mode drives, and restart's
//! "kill them all, then spawn afresh".

use std::path::Path;

use anyhow::Result;

use super::Kind;
use crate::monitor::{Calls, ProcTracker};
use crate::supervisor::{Supervisor, WorkerSpec};

/// One producer and one consumer (pipe, shared memory, message queue).
#[derive(Default, Clone, Copy)]
pub struct Pair {
    pub producer: usize,
    pub consumer: usize,
}

impl Pair {
    /// Producer's slot first, then the consumer's.
    pub fn alloc(sup: &mut Supervisor) -> Result<Pair> {
        let producer = sup.alloc_slot()?;
        let consumer = sup.alloc_slot()?;
        Ok(Pair { producer, consumer })
    }

    /// The consumer: its death is what the lesson shows.
    pub fn victim(&self) -> Option<usize> {
        Some(self.consumer)
    }

    pub fn producers(&self) -> Vec<usize> {
        vec![self.producer]
    }

    /// Kill both, for a restart from scratch.
    pub fn kill(&self, sup: &Supervisor) {
        kill(sup, [self.producer, self.consumer]);
    }

    /// The probe's trackers, producer's then consumer's.
    pub fn trackers(&self, calls: Calls, run_dir: &Path) -> (ProcTracker, ProcTracker) {
        (
            ProcTracker::new(self.producer, "producer", calls, run_dir),
            ProcTracker::new(self.consumer, "consumer", calls, run_dir),
        )
    }

    /// Spawn the producer and the consumer, meeting at the named object
    /// `name` (a shared-memory object, a message queue).
    pub fn spawn_named(&self, sup: &mut Supervisor, kind: Kind, name: &str) -> Result<()> {
        sup.spawn(&WorkerSpec::new(kind, "producer", self.producer).arg("name", name))?;
        sup.spawn(&WorkerSpec::new(kind, "consumer", self.consumer).arg("name", name))?;
        Ok(())
    }
}

/// `n` slots, in order (a FIFO's writers, a socket's clients).
pub fn alloc_slots(sup: &mut Supervisor, n: usize) -> Result<Vec<usize>> {
    (0..n).map(|_| sup.alloc_slot()).collect()
}

/// SIGKILL every slot, in order; restart then spawns them all afresh.
pub fn kill(sup: &Supervisor, slots: impl IntoIterator<Item = usize>) {
    for s in slots {
        sup.signal_slot(s, libc::SIGKILL);
    }
}
