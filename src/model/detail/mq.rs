//! The message queue's detail: what its panel shows beyond the common figures.

use serde::{Deserialize, Serialize};

/// What the message-queue panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MqDetail {
    pub name: String,
    /// From mq_getattr on a borrowed copy of a worker's descriptor.
    pub attr_seen: bool,
    pub curmsgs: u64,
    pub maxmsg: u64,
    pub msgsize: u64,
    /// The machine's limits (/proc/sys/fs/mqueue).
    pub msg_max: u64,
    pub msgsize_max: u64,
    pub priorities: bool,
    /// Priorities of the last messages sent and received, oldest first.
    pub sent_prios: Vec<u32>,
    pub recv_prios: Vec<u32>,
    /// Messages received while an earlier one of the same or higher
    /// priority still waited: the kernel's order broken (should stay 0).
    pub inversions: u64,
    pub send_timeout_ms: u64,
    pub timeouts: u64,
    /// msg.size as asked and as sent (cut to mq_msgsize).
    pub msg_size_knob: u64,
    pub msg_size: u64,
}
