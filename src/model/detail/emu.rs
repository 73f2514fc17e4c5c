//! What an emulated kernel's own tables say a task is doing: the call it
//! is in, under the real system's name, and why that call has not
//! returned. The Mach and ALPC panels draw this, not the Linux state of
//! our transport: a task waiting for the emulated kernel sleeps reading a
//! socket, which says nothing about Mach or NT (and would suggest that
//! Mach "uses sockets").

use serde::{Deserialize, Serialize};

use crate::model::figures::{Party, ProcessSnapshot};

/// A call a thread is blocked in, as the emulated kernel records it at
/// the instant it was asked.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmuCall {
    /// The call under its real name: `mach_msg(SEND)`, `mach_msg(RCV)`,
    /// `NtAlpcConnectPort`, `NtAlpcSendWaitReceivePort`, …
    pub call: String,
    /// Why it has not returned.
    pub wait: EmuWait,
    /// How long it has been waiting, ms, on the kernel's clock.
    #[serde(default)]
    pub waited_ms: u64,
    /// What is left of its timeout (`MACH_SEND_TIMEOUT`, a timed receive);
    /// `None`: it waits for as long as it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_left_ms: Option<u64>,
}

/// Why an emulated call waits. In JSON the snake-case word.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EmuWait {
    /// A send waits for room: the port's queue is at its limit (Mach qlimit).
    QueueFull,
    /// A message was kept past the full queue (`MACH_SEND_NOTIFY`) and the
    /// thread waits for `MACH_NOTIFY_MSG_ACCEPTED` before it sends again.
    KeptAwaitingAccepted,
    /// A receive waits for a message to arrive.
    #[default]
    Message,
    /// A request waits for its reply.
    Reply,
    /// A receive on a port that only notifications reach.
    Notification,
    /// A connection request waits for the server to accept or refuse it.
    Accept,
    /// The kernel copies between two address spaces on its behalf.
    Copy,
}

impl EmuWait {
    /// Its part as the classroom screen marks it: a sender held by a full
    /// queue is `BlockedFull`, whatever call holds it.
    pub fn party(self) -> Party {
        match self {
            EmuWait::QueueFull | EmuWait::KeptAwaitingAccepted => Party::BlockedFull,
            EmuWait::Message | EmuWait::Reply | EmuWait::Notification => Party::WaitingData,
            EmuWait::Accept => Party::WaitingPartner,
            EmuWait::Copy => Party::Running,
        }
    }

    /// The locale key of its words, long and short.
    pub fn label_keys(self) -> [&'static str; 2] {
        match self {
            EmuWait::QueueFull => ["emu_wait_queue_full", "emu_wait_queue_full_short"],
            EmuWait::KeptAwaitingAccepted => ["emu_wait_kept", "emu_wait_kept_short"],
            EmuWait::Message => ["emu_wait_message", "emu_wait_message_short"],
            EmuWait::Reply => ["emu_wait_reply", "emu_wait_reply_short"],
            EmuWait::Notification => ["emu_wait_notification", "emu_wait_notification_short"],
            EmuWait::Accept => ["emu_wait_accept", "emu_wait_accept_short"],
            EmuWait::Copy => ["emu_wait_copy", "emu_wait_copy_short"],
        }
    }

    /// The more a class should see it, the lower: a task with several
    /// threads is marked by its most telling one.
    pub fn rank(self) -> u8 {
        match self {
            EmuWait::QueueFull => 0,
            EmuWait::KeptAwaitingAccepted => 1,
            EmuWait::Accept => 2,
            EmuWait::Reply => 3,
            EmuWait::Message => 4,
            EmuWait::Copy => 5,
            EmuWait::Notification => 6,
        }
    }
}

/// A task's part, read from the call the emulated kernel says it is in.
/// What the kernel cannot know (not started, exited, paused, held by step
/// mode, pacing itself) still comes from the process. A process that sleeps
/// in the transport while the kernel has it in no blocking call is in a
/// round trip being served, not waiting: it is running.
pub fn emu_party(p: &ProcessSnapshot, call: Option<&EmuCall>, run_paused: bool) -> Party {
    let linux = p.party(run_paused);
    match linux {
        Party::NotStarted | Party::Exited | Party::Paused | Party::StepHeld => linux,
        _ => match call {
            Some(c) => c.wait.party(),
            None => match linux {
                Party::BlockedFull | Party::WaitingData | Party::WaitingPartner => Party::Running,
                other => other,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(state: &str, wchan: &str, op: &str) -> ProcessSnapshot {
        ProcessSnapshot {
            role: "client-1".into(),
            pid: 10,
            state: state.into(),
            wchan: wchan.into(),
            op: op.into(),
            ..ProcessSnapshot::default()
        }
    }

    /// The transport's sleep never decides the mark: the kernel's call does.
    #[test]
    fn the_emulated_call_decides_the_mark() {
        let socket = proc("S", "__skb_wait_for_more_packets", "mach_msg(SEND)");
        let full = EmuCall { call: "mach_msg(SEND)".into(), wait: EmuWait::QueueFull, ..EmuCall::default() };
        let reply = EmuCall { call: "mach_msg(RCV)".into(), wait: EmuWait::Reply, ..EmuCall::default() };
        let accept = EmuCall { call: "NtAlpcConnectPort".into(), wait: EmuWait::Accept, ..EmuCall::default() };
        assert_eq!(emu_party(&socket, Some(&full), false), Party::BlockedFull);
        assert_eq!(emu_party(&socket, Some(&reply), false), Party::WaitingData);
        assert_eq!(emu_party(&socket, Some(&accept), false), Party::WaitingPartner);
        // Asleep on the socket, in no blocking call: a round trip.
        assert_eq!(emu_party(&socket, None, false), Party::Running);
        // What only the process knows.
        assert_eq!(emu_party(&socket, Some(&full), true), Party::Paused);
        assert_eq!(emu_party(&proc("S", "hrtimer_nanosleep", "paced"), None, false), Party::Pacing);
        assert_eq!(emu_party(&proc("S", "futex_wait", "step: held"), Some(&full), false), Party::StepHeld);
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(json, r#"{"call":"mach_msg(SEND)","wait":"queue_full","waited_ms":0}"#);
        let back: EmuCall = serde_json::from_str(r#"{"call":"x","wait":"reply"}"#).unwrap();
        assert_eq!(back.wait, EmuWait::Reply);
    }
}
