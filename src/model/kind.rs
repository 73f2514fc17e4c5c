//! Which IPC mechanism: the key every layer names a mechanism by.

use serde::{Deserialize, Serialize};

/// Every mechanism the textbook chapter covers, in the order the grid
/// shows them. `registry::REGISTRY` lists what each one is made of.
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
}
