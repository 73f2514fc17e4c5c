//! What the emulated Mach kernel shows an observer: plain data, serialised
//! as JSON in answer to an introspection request. Every number here is read
//! from the kernel's own tables at the moment of the request.

use serde::{Deserialize, Serialize};

/// The whole kernel at one instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelState {
    /// Milliseconds since the kernel started; every `*_ms` field below is on
    /// the same clock.
    pub now_ms: u64,
    pub tasks: Vec<TaskState>,
    pub ports: Vec<PortState>,
    /// The bootstrap server's registry.
    pub bootstrap: Vec<ServiceState>,
    pub counters: Counters,
    /// `mach.personality`: `textbook`, `xnu` or `gnumach`.
    #[serde(default)]
    pub personality: String,
    /// When it was last switched (0 = since the start).
    #[serde(default)]
    pub personality_since_ms: u64,
    /// The counters since then.
    #[serde(default)]
    pub since_personality: Counters,
    /// Recent calls, oldest first.
    pub log: Vec<LogEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskState {
    pub id: u32,
    pub pid: i32,
    pub name: String,
    /// `mach_task_self()` in this task's space.
    pub task_self: u32,
    /// The task's send right to the bootstrap port.
    pub bootstrap: u32,
    pub threads: Vec<ThreadState>,
    /// The task's port name space, by name.
    pub names: Vec<NameState>,
    /// Receives refused with `MACH_RCV_INVALID_NAME`: (name tried, count).
    #[serde(default)]
    pub rcv_refused: Vec<(u32, u64)>,
    /// Its requests to kernel objects the kernel answered.
    #[serde(default)]
    pub kobject_answers: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadState {
    /// The kernel's id for this thread (one connection per thread).
    pub thread: u64,
    /// What the thread is blocked in, if anything.
    pub blocked: Option<BlockedState>,
    /// `msg_id` of the message this thread has cached past a full queue
    /// (`MACH_SEND_NOTIFY`), waiting to be accepted.
    pub cached_msg: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockedCall {
    /// In `mach_msg` sending to a full queue.
    Send,
    /// In `mach_msg` receiving from an empty queue.
    Receive,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockedState {
    pub call: BlockedCall,
    pub port: u64,
    /// The name the thread used (dest for a send, rcv_name for a receive).
    pub name: u32,
    pub since_ms: u64,
    /// When `MACH_SEND_TIMEOUT`/`MACH_RCV_TIMEOUT` gives up; `None` = forever.
    pub deadline_ms: Option<u64>,
    /// The `mach_msg` options of the blocked call (`MACH_SEND_MSG`, …).
    #[serde(default)]
    pub options: u32,
}

/// One name in a task's space and the rights it denotes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NameState {
    pub name: u32,
    /// Kernel port id (stable across tasks); for a dead name, the port that
    /// died (if any).
    pub port: Option<u64>,
    pub receive: bool,
    /// User references of the send right (0 = no send right).
    pub send_urefs: u32,
    pub send_once: bool,
    /// User references of the dead name (0 = not a dead name).
    pub dead_name_urefs: u32,
    /// A `MACH_NOTIFY_DEAD_NAME` request is registered on this name.
    pub dead_name_request: bool,
}

impl NameState {
    /// The rights as `mach_port_type()` would list them.
    pub fn rights(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.receive {
            v.push("MACH_PORT_RIGHT_RECEIVE");
        }
        if self.send_urefs > 0 {
            v.push("MACH_PORT_RIGHT_SEND");
        }
        if self.send_once {
            v.push("MACH_PORT_RIGHT_SEND_ONCE");
        }
        if self.dead_name_urefs > 0 {
            v.push("MACH_PORT_RIGHT_DEAD_NAME");
        }
        v
    }
}

/// Who holds a port's receive right.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiverState {
    Task {
        task: u32,
        name: u32,
    },
    /// Travelling in a message queued on (or being sent to) `dest`.
    InTransit {
        dest: u64,
    },
    /// Owned by the kernel itself (`bootstrap`, `task:<id>`).
    Kernel {
        object: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortState {
    pub id: u64,
    pub receiver: ReceiverState,
    pub qlimit: u32,
    pub seqno: u32,
    pub mscount: u32,
    /// Messages queued (the list below may be cut at [`MAX_LISTED_MESSAGES`]).
    pub queue_len: usize,
    pub queue: Vec<QueuedMsgState>,
    pub blocked_senders: Vec<WaitingThreadState>,
    pub blocked_receivers: Vec<WaitingThreadState>,
}

/// Queue listings longer than this are cut in the introspection answer.
pub const MAX_LISTED_MESSAGES: usize = 128;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueuedMsgState {
    /// Kernel message id, unique for the kernel's lifetime.
    pub msg_id: u64,
    pub msgh_id: i32,
    pub msgh_size: u32,
    pub msgh_bits: u32,
    /// The audit-token pid: the textbook's "source". 0 for the kernel.
    pub sender_pid: i32,
    pub sender_task: Option<u32>,
    /// `MACH_MSG_TYPE_PORT_SEND` / `_SEND_ONCE` of the reply right, 0 if none.
    pub reply_type: u32,
    /// The port the reply right names (a thread's reply port), if any.
    #[serde(default)]
    pub reply_port: Option<u64>,
    /// Rights carried in descriptors.
    pub rights: u32,
    pub ool_bytes: u64,
    pub enqueued_ms: u64,
    /// Sent to a send-once right, which ignores the queue limit.
    pub to_send_once: bool,
    /// Kept past a full queue with `MACH_SEND_NOTIFY`, not yet accepted.
    pub cached: bool,
    /// A notification generated by the kernel.
    pub notification: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitingThreadState {
    pub task: u32,
    pub pid: i32,
    pub thread: u64,
    pub since_ms: u64,
    pub deadline_ms: Option<u64>,
    /// For a blocked sender: the message it is trying to send.
    pub msgh_id: Option<i32>,
    pub msgh_size: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    pub name: String,
    pub port: u64,
    pub registered_by_task: u32,
    pub registered_by_pid: i32,
    /// Created by `bootstrap_check_in` (else `bootstrap_register`).
    pub checked_in: bool,
}

/// The kernel's counters are the model's: one definition, shown as kept.
pub use crate::model::detail::mach::KernelCounters as Counters;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub at_ms: u64,
    pub pid: i32,
    pub task: String,
    /// C-like text, e.g. `mach_msg(SEND|SEND_TIMEOUT, dest=0x303, timeout=10) = MACH_SEND_TIMED_OUT`.
    pub text: String,
}
