//! `Snapshot`: everything the monitor observed at one instant.
//!
//! This is the contract between observing and drawing. It is plain data, so
//! it can be printed as JSON, recorded, replayed and fed to render tests.
//! Every field is filled from a real process, a real kernel object or an
//! emulated kernel's tables by a probe; nothing here is computed from what
//! "should" be happening.

use serde::{Deserialize, Serialize};

pub use super::detail::Detail;
pub use super::figures::*;
use super::kind::Kind;
pub use super::measured::{Cost, Latency};

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
    /// One-way latency over the last second (`model::measured`); absent in
    /// older recordings and before a message was timed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Latency>,
    /// What a message costs (`model::measured`), filled by the monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

impl Snapshot {
    pub fn mechanism(&self, kind: Kind) -> Option<&MechanismSnapshot> {
        self.mechanisms.iter().find(|m| m.kind == kind)
    }
}
