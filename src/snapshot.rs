//! `Snapshot`: everything the monitor observed at one instant.
//!
//! This is the contract between observing and drawing. It is plain data, so
//! it can be printed as JSON, recorded, replayed and fed to render tests.
//! Every field is filled from a real process, a real kernel object or an
//! emulated kernel's tables by a probe; nothing here is computed from what
//! "should" be happening.

use serde::{Deserialize, Serialize};

use crate::mechanisms::Kind;

pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub version: u32,
    /// Milliseconds since the run started.
    pub t_ms: u64,
    pub run: RunInfo,
    pub mechanisms: Vec<MechanismSnapshot>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    /// The supervisor's pid (the run id).
    pub pid: i32,
    pub runtime_dir: String,
    pub hz: u32,
    /// Workers are SIGSTOPped.
    pub paused: bool,
    pub step_mode: bool,
    /// Replayed from a recording, not live.
    #[serde(default)]
    pub replay: bool,
    /// Mechanisms that could not start, and why.
    #[serde(default)]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MechanismSnapshot {
    pub kind: Kind,
    pub processes: Vec<ProcessSnapshot>,
    pub channel: Channel,
    pub integrity: Integrity,
    /// Depth samples, oldest first, for the sparkline.
    pub history: Vec<u64>,
    /// Things that happened that a class should notice (EOF, EPIPE, …),
    /// oldest first, as short sentences from the probe.
    pub notes: Vec<Note>,
    /// The knobs that shape this mechanism, as `key=value`.
    pub knobs: Vec<(String, String)>,
    pub detail: Detail,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Channel {
    pub depth: u64,
    pub capacity: u64,
    /// What depth and capacity count: `bytes`, `messages`, `slots`.
    pub unit: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Integrity {
    pub delivered: u64,
    pub lost: u64,
    pub corrupt: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Bytes or messages that were not ours (an outside writer).
    pub foreign: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Note {
    pub t_ms: u64,
    pub key: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessSnapshot {
    /// `producer`, `consumer`, `server`, `client-1`, …
    pub role: String,
    /// 0 before the process has started.
    pub pid: i32,
    /// State letter from /proc/PID/stat (`R`, `S`, `T`, `Z`, …), or `-` when
    /// the process has exited.
    pub state: String,
    /// /proc/PID/wchan: where in the kernel it sleeps (`0` when running).
    pub wchan: String,
    /// Number of the system call it is in (/proc/PID/syscall), if readable.
    pub syscall: Option<i64>,
    /// The call the worker says it is in (`write()`, `read()`, …).
    pub op: String,
    /// How long it has been in that call, ms.
    pub op_ms: u64,
    pub sent: u64,
    pub received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Messages per second over the last second.
    pub send_rate: f64,
    pub recv_rate: f64,
    pub errors: Errors,
    /// How it ended, e.g. `exit 0` or `killed by SIGPIPE`.
    pub exit: Option<String>,
    pub fds: Vec<FdEntry>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Errors {
    pub epipe: u64,
    pub eagain: u64,
    pub etimedout: u64,
    pub other: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FdEntry {
    pub fd: i32,
    /// readlink of /proc/PID/fd/N: `pipe:[123]`, a path, `socket:[9]`, …
    pub target: String,
    /// `r`, `w` or `rw`, from the flags in /proc/PID/fdinfo/N.
    pub mode: String,
}

/// One system call (or emulated kernel call) a worker recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    pub t_ms: u64,
    pub text: String,
}

/// The mechanism-specific part. One variant per mechanism; adding one is a
/// registration line here.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Detail {
    Pipe(crate::mechanisms::pipe::PipeDetail),
    Socket(crate::mechanisms::socket::SocketDetail),
    Shm(crate::mechanisms::shm::ShmDetail),
    Fifo(crate::mechanisms::fifo::FifoDetail),
    Mq(crate::mechanisms::mq::MqDetail),
    Mach(crate::mechanisms::mach::MachDetail),
    Alpc(crate::mechanisms::alpc::probe::AlpcDetail),
}

impl ProcessSnapshot {
    pub fn alive(&self) -> bool {
        self.pid > 0 && self.exit.is_none()
    }
}

impl Snapshot {
    pub fn mechanism(&self, kind: Kind) -> Option<&MechanismSnapshot> {
        self.mechanisms.iter().find(|m| m.kind == kind)
    }
}
