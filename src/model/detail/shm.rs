//! The shared-memory object's detail: what its panel shows beyond the common figures.

use serde::{Deserialize, Serialize};

/// What the shared-memory panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ShmDetail {
    /// The object's name (`/ipcscope-…-shm`) and where it shows up.
    pub name: String,
    pub path: String,
    /// The name exists under /dev/shm now.
    pub exists: bool,
    /// From stat of /dev/shm/NAME.
    pub size: u64,
    pub mode: u32,
    pub nlink: u64,
    /// The header was read (with `pread` on the monitor's own read-only
    /// descriptor; the name stays for recorded snapshots).
    pub mapped: bool,
    pub in_idx: u64,
    pub out_idx: u64,
    pub slots: u64,
    pub slot_size: u64,
    pub closed: bool,
    /// Bytes per message the producer uses (msg.size cut to the slot size)
    /// and what msg.size asks for.
    pub msg_size: u64,
    pub msg_size_knob: u64,
    /// The region's first bytes (header and slot 0), as hex.
    pub head_hex: String,
    /// The slot the consumer reads next: its offset and first bytes.
    pub next_offset: u64,
    pub next_hex: String,
    /// Who sleeps in FUTEX_WAIT on which ring word (`in` / `out`), from
    /// /proc/PID/syscall and /proc/PID/maps.
    pub futex_waits: Vec<(String, String)>,
    /// Where each process mapped the object in its own address space
    /// (from /proc/PID/maps): one region, a different address in each.
    #[serde(default)]
    pub maps: Vec<ShmMap>,
}

/// One process's mapping of the object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShmMap {
    pub role: String,
    pub pid: i32,
    /// Its first and one-past-last address.
    pub start: u64,
    pub end: u64,
    /// `rw-s`: readable, writable, shared (as /proc/PID/maps writes it).
    pub perms: String,
}
