//! The mechanism-specific part of a snapshot, one file per mechanism.

use serde::{Deserialize, Serialize};

pub mod alpc;
pub mod emu;
pub mod fifo;
pub mod mach;
pub mod mq;
pub mod pipe;
pub mod shm;
pub mod socket;

/// An answer to one of the four questions the notes ask of any pipe (which
/// way, both ways at once, related ends, across machines), as the pipe
/// and FIFO details back it with what was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    OneWay,
    HalfDuplex,
    /// Two-way, by a second pipe (`pipe.duplex`).
    TwoPipes,
    ParentChild,
    /// Joined by a path in the file system, not by kinship.
    ByPath,
    /// A kernel object of this machine: no network in between.
    Local,
}

/// The mechanism-specific part. One variant per mechanism; adding one is a
/// registration line here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    Pipe(pipe::PipeDetail),
    Socket(socket::SocketDetail),
    Shm(shm::ShmDetail),
    Fifo(fifo::FifoDetail),
    Mq(mq::MqDetail),
    Mach(mach::MachDetail),
    Alpc(alpc::AlpcDetail),
}
