//! The figures every mechanism's snapshot has in common: its channel's
//! fill, the integrity count, notes, and each process as /proc and its
//! telemetry slot show it.

use serde::{Deserialize, Serialize};

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

impl ProcessSnapshot {
    pub fn alive(&self) -> bool {
        self.pid > 0 && self.exit.is_none()
    }
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

/// A short reading of a state letter plus wait channel, as a label key
/// (see assets/locales.toml): "BLOCKED in write", "waiting in read", …
pub fn describe(state: &str, wchan: &str) -> &'static str {
    match state {
        "R" => "st_running",
        "T" | "t" => "st_stopped",
        "Z" => "st_zombie",
        "D" => "st_disk",
        "-" | "" => "st_exited",
        _ => {
            let by_wchan = [
                ("pipe_write", "st_blocked_write"),
                ("pipe_read", "st_blocked_read"),
                ("wait_for_partner", "st_blocked_open"),
                ("wq_sleep", "st_blocked_mq"),
                ("futex", "st_blocked_futex"),
                ("nanosleep", "st_paced"),
                ("unix_", "st_blocked_socket"),
                ("skb_wait", "st_blocked_socket"),
                ("wait_woken", "st_blocked_socket"),
                ("sock_alloc_send", "st_blocked_socket"),
                ("poll", "st_poll"),
            ];
            by_wchan.iter().find(|(w, _)| wchan.contains(w)).map_or("st_sleeping", |(_, k)| k)
        }
    }
}

/// True when the process sleeps in an IPC call that cannot proceed (as
/// opposed to pacing itself or polling).
pub fn is_blocked(state: &str, wchan: &str) -> bool {
    state == "D" || (state == "S" && describe(state, wchan).starts_with("st_blocked"))
}
