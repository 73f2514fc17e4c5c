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
