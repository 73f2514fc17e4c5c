//! Mach's detail: the emulated kernel's tables as the panel shows them.
//! View types of our own, copied from the kernel's state by the probe, so
//! a kernel refactor does not change the JSON.

use serde::{Deserialize, Serialize};

pub use super::emu::{EmuCall, EmuWait};

/// What the Mach panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MachDetail {
    /// The kernel answered this sample.
    pub kernel_up: bool,
    pub service: String,
    pub send_mode: String,
    /// Whose rules the kernel follows on a full queue with
    /// `MACH_SEND_NOTIFY`: `textbook`, `xnu` or `gnumach`
    /// (`mach.personality`); empty in recordings made before it existed.
    #[serde(default)]
    pub personality: String,
    /// The kernel's counters since the personality was last set.
    #[serde(default)]
    pub since_personality: KernelCounters,
    /// The service port: the mailbox the clients send to.
    pub port: Option<PortView>,
    /// The kernel's counters (every port, every task).
    pub counters: KernelCounters,
    /// Per client process, from its own counters.
    pub clients: Vec<ClientCounts>,
    pub tasks: Vec<TaskView>,
    pub bootstrap: Vec<ServiceView>,
    pub reply_ports: Vec<ReplyPortView>,
    /// The headers of the latest messages seen in a queue, newest last.
    pub headers: Vec<MsgView>,
    /// The kernel's recent-call log, newest last.
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PortView {
    /// Kernel port id.
    pub id: u64,
    /// Who holds the receive right: a task's name, or where it is.
    pub receiver: String,
    pub receiver_pid: i32,
    /// The receive right's name in the receiver's space.
    pub receiver_name: u32,
    pub qlimit: u32,
    pub queue_len: usize,
    pub queue: Vec<MsgView>,
    /// Messages in the queue past the limit (`MACH_SEND_NOTIFY`).
    pub cached: usize,
    pub blocked_senders: Vec<WaiterView>,
    pub blocked_receivers: Vec<WaiterView>,
    /// Every task with a send right to it: (task, name, urefs).
    pub send_rights: Vec<HolderView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MsgView {
    pub msgh_bits: u32,
    pub msgh_size: u32,
    pub msgh_id: i32,
    /// The task that sent it (the audit token's pid names the process).
    pub sender: String,
    pub sender_pid: i32,
    /// `SEND_ONCE`, `SEND` or empty: the reply right it carries.
    pub reply: String,
    pub ool_bytes: u64,
    /// How long it has waited in the queue, ms.
    pub age_ms: u64,
    pub cached: bool,
    /// Which port's queue it was seen in (`service`, `reply`, `notify`).
    pub port: String,
    /// The kernel's message id (unique for its lifetime).
    pub msg_id: u64,
    /// The kernel port the reply right names (a thread's reply port), 0
    /// if none: `msgh_local_port`, the return address.
    #[serde(default)]
    pub reply_port: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WaiterView {
    pub task: String,
    pub pid: i32,
    pub thread: u64,
    pub waited_ms: u64,
    /// The timeout left, for `MACH_SEND_TIMEOUT`/`MACH_RCV_TIMEOUT`.
    pub timeout_left_ms: Option<u64>,
    pub msgh_id: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HolderView {
    pub task: String,
    pub pid: i32,
    pub name: u32,
    pub urefs: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClientCounts {
    pub role: String,
    pub timed_out: u64,
    pub returned_at_once: u64,
    pub cached: u64,
    pub notified: u64,
    pub notify_in_progress: u64,
    pub dead_name: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskView {
    pub id: u32,
    pub name: String,
    pub pid: i32,
    pub task_self: u32,
    pub bootstrap: u32,
    pub threads: Vec<ThreadView>,
    /// The task's port name space: name → rights.
    pub names: Vec<NameView>,
    /// Receives the kernel refused with `MACH_RCV_INVALID_NAME`: (name, count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rcv_refused: Vec<(u32, u64)>,
    /// Its requests to kernel objects (`task_info` on its task port) the
    /// kernel answered.
    #[serde(default)]
    pub kobject_answers: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThreadView {
    pub thread: u64,
    /// `send 0x1103`, `receive 0x1207`, or empty when not in the kernel.
    pub blocked: String,
    pub waited_ms: u64,
    /// It has a message cached past a full queue.
    pub cached: bool,
    /// The call the kernel has it blocked in, and why; `None` when it is
    /// in no blocking call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<EmuCall>,
}

impl ThreadView {
    /// Blocked in a send (a full queue), as opposed to a receive.
    pub fn in_send(&self) -> bool {
        self.blocked.split(' ').next() == Some("send")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NameView {
    pub name: u32,
    pub port: Option<u64>,
    /// `RECEIVE`, `SEND`, `SEND_ONCE`, `DEAD_NAME`, joined with `+`.
    pub rights: String,
    /// User references of the send right or dead name (1 for the others).
    pub urefs: u32,
    /// What the name is to this task: `task self`, `bootstrap`, `service`,
    /// `reply port`, `notify port`, or empty.
    pub what: String,
    pub dead_name_request: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceView {
    pub name: String,
    pub port: u64,
    pub task: String,
    pub pid: i32,
    pub checked_in: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReplyPortView {
    pub task: String,
    pub pid: i32,
    /// Thread 1 or 2 of the task.
    pub thread: usize,
    pub name: u32,
    pub port: u64,
    pub queue_len: usize,
    /// Send-once rights to it held in name spaces: (task, name).
    pub send_once: Vec<HolderView>,
    /// Send-once rights to it travelling in queued requests.
    pub in_transit: usize,
}

/// The kernel's counters (every port, every task).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KernelCounters {
    /// Messages accepted into a queue (or handed to a waiting receiver).
    pub sent: u64,
    pub received: u64,
    /// Senders that had to wait for room.
    pub blocked: u64,
    /// `MACH_SEND_TIMED_OUT` after waiting N > 0 ms.
    pub send_timed_out: u64,
    /// `MACH_SEND_TIMED_OUT` at once (timeout 0 on a full queue).
    pub returned_at_once: u64,
    pub rcv_timed_out: u64,
    /// `MACH_RCV_INVALID_NAME`: a receive on a name without the receive right.
    #[serde(default)]
    pub rcv_invalid_name: u64,
    /// Messages received by the task that sent them: its threads talking.
    #[serde(default)]
    pub within_task: u64,
    /// Requests to kernel objects (a task's port) the kernel answered.
    #[serde(default)]
    pub kobject_answers: u64,
    /// `MACH_SEND_WILL_NOTIFY`: kept past a full queue.
    pub cached: u64,
    /// `MACH_NOTIFY_MSG_ACCEPTED` sent.
    pub notified: u64,
    /// Messages destroyed without being received.
    pub destroyed: u64,
    /// Notifications of any kind generated by the kernel.
    pub notifications: u64,
    pub bytes_inline: u64,
    /// Out-of-line bytes passed by mapping (never copied by the kernel).
    pub bytes_ool: u64,
    /// Out-of-line bytes the kernel copied (a pool region sent without
    /// `deallocate`: Linux has no copy-on-write snapshot of a shared memfd).
    #[serde(default)]
    pub bytes_ool_copied: u64,
    pub ports_created: u64,
    pub ports_destroyed: u64,
    /// `MACH_NOTIFY_MSG_ACCEPTED` sent when the kept message came within
    /// the queue limit (the textbook's rule).
    #[serde(default)]
    pub accepted_on_queue: u64,
    /// `MACH_NOTIFY_MSG_ACCEPTED` sent when the kept message was received
    /// or destroyed (GNU Mach's rule).
    #[serde(default)]
    pub accepted_on_dequeue: u64,
    /// `MACH_SEND_NOTIFY_IN_PROGRESS` returned: the kept-message slot
    /// (per thread, or per task and send right) was taken.
    #[serde(default)]
    pub notify_in_progress: u64,
    /// XNU: `MACH_SEND_NOTIFY` on a full queue armed a send-possible request.
    #[serde(default)]
    pub send_possible_armed: u64,
    /// XNU: `MACH_NOTIFY_SEND_POSSIBLE` sent.
    #[serde(default)]
    pub send_possible: u64,
}

impl KernelCounters {
    /// What happened since `base` was read (each counter only grows).
    pub fn since(&self, base: &KernelCounters) -> KernelCounters {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        KernelCounters {
            sent: d(self.sent, base.sent),
            received: d(self.received, base.received),
            blocked: d(self.blocked, base.blocked),
            send_timed_out: d(self.send_timed_out, base.send_timed_out),
            returned_at_once: d(self.returned_at_once, base.returned_at_once),
            rcv_timed_out: d(self.rcv_timed_out, base.rcv_timed_out),
            cached: d(self.cached, base.cached),
            notified: d(self.notified, base.notified),
            destroyed: d(self.destroyed, base.destroyed),
            notifications: d(self.notifications, base.notifications),
            bytes_inline: d(self.bytes_inline, base.bytes_inline),
            bytes_ool: d(self.bytes_ool, base.bytes_ool),
            bytes_ool_copied: d(self.bytes_ool_copied, base.bytes_ool_copied),
            ports_created: d(self.ports_created, base.ports_created),
            ports_destroyed: d(self.ports_destroyed, base.ports_destroyed),
            accepted_on_queue: d(self.accepted_on_queue, base.accepted_on_queue),
            accepted_on_dequeue: d(self.accepted_on_dequeue, base.accepted_on_dequeue),
            notify_in_progress: d(self.notify_in_progress, base.notify_in_progress),
            send_possible_armed: d(self.send_possible_armed, base.send_possible_armed),
            send_possible: d(self.send_possible, base.send_possible),
            rcv_invalid_name: d(self.rcv_invalid_name, base.rcv_invalid_name),
            within_task: d(self.within_task, base.within_task),
            kobject_answers: d(self.kobject_answers, base.kobject_answers),
        }
    }
}

impl MachDetail {
    /// The key of a sentence about kept messages, for the rules the kernel
    /// follows: GNU Mach's variant (`KEY_gnumach`) instead of the
    /// textbook's when it follows GNU Mach.
    pub fn rule_key(&self, key: &'static str) -> &'static str {
        match (self.personality.as_str(), key) {
            ("gnumach", "obs_mach_cached") => "obs_mach_cached_gnumach",
            ("gnumach", "obs_mach_notified") => "obs_mach_notified_gnumach",
            ("gnumach", "note_mach_cached") => "note_mach_cached_gnumach",
            ("gnumach", "note_mach_notified") => "note_mach_notified_gnumach",
            _ => key,
        }
    }

    /// The task of a process, by its role (`server`, `client-1`, …).
    pub fn task(&self, role: &str) -> Option<&TaskView> {
        self.tasks.iter().find(|t| t.name == role)
    }

    /// The most telling call the task's threads are blocked in, and how
    /// many of its threads are in a call of that kind.
    pub fn task_call(&self, role: &str) -> Option<(&EmuCall, usize)> {
        let task = self.task(role)?;
        let best = task.threads.iter().filter_map(|t| t.call.as_ref()).min_by_key(|c| c.wait.rank())?;
        let n = task.threads.iter().filter_map(|t| t.call.as_ref()).filter(|c| c.wait == best.wait).count();
        Some((best, n))
    }
}

impl NameView {
    /// The name holds a dead name: its port is gone.
    pub fn dead(&self) -> bool {
        self.rights.split('+').any(|r| r == "DEAD_NAME")
    }
}
