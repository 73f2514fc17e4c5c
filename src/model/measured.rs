//! Figures measured per message: how long a message took to arrive, and
//! what moving it cost the processes and the kernel. The monitor fills them
//! (`monitor::measure`) from the workers' own counters in the telemetry
//! page and /proc; recordings made before they existed replay without them.

use serde::{Deserialize, Serialize};

/// One-way latency over the last second: from the send stamp in a
/// message's header (the sender's CLOCK_MONOTONIC) to the moment the
/// receiver verified it (its CLOCK_MONOTONIC: one clock, one machine).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Messages timed in the window.
    pub count: u64,
    /// The window, ms (about a second).
    pub window_ms: u64,
    /// The distribution for a heat-map row: `log2_us[i]` counts messages
    /// that took [2^i, 2^(i+1)) µs (`[0]` also holds those under 1 µs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log2_us: Vec<u64>,
    /// The heat map over time: `log2_us` as it was once a second, oldest
    /// first, the newest last (an empty row: a second nothing arrived).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seconds: Vec<Vec<u64>>,
}

/// What one message costs, over the last second (sender and receiver
/// together). `None` where it cannot be known (no message moved).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cost {
    /// What the figures are per: `message`, or `round trip` (a request and
    /// the echoed reply: Mach, ALPC).
    pub per: String,
    /// Messages delivered in the window (what the figures are divided by).
    pub messages: u64,
    pub window_ms: u64,
    /// System calls per message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls_per_msg: Option<f64>,
    /// Where `syscalls_per_msg` comes from: `worker count` (each worker
    /// counts the calls it makes to move messages: read, write, send, recv,
    /// poll, mq_*, futex) or `emulated kernel traps` (calls into the Mach or
    /// NT kernel process, as `mach_msg` is one trap on XNU).
    pub source: String,
    /// For the emulated kernels: the Linux system calls the workers made to
    /// carry those traps (socket calls), by their own count. (For the Linux
    /// mechanisms that is `syscalls_per_msg` itself.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_syscalls_per_msg: Option<f64>,
    /// `syscr + syscw` of /proc/PID/io per message: the kernel's own count
    /// of read- and write-family calls only (not send/recv, mq_*, futex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_io_rw_per_msg: Option<f64>,
    /// Context switches (voluntary + involuntary, /proc/PID/status of every
    /// thread) per message. A paced sender's sleep between messages counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx_switches_per_msg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voluntary_per_msg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involuntary_per_msg: Option<f64>,
    /// Bytes the kernel copied per message (into it and out of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_copied_per_msg: Option<f64>,
    /// Bytes passed by mapping shared memory instead of copying (Mach
    /// out-of-line memory, ALPC sections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_mapped_per_msg: Option<f64>,
    /// Bytes our own processes copied (shared memory: into a slot and out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_bytes_copied_per_msg: Option<f64>,
    /// How the byte figures were found.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bytes_source: String,
}
