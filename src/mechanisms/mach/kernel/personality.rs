//! Whose rules a full queue with `MACH_SEND_NOTIFY` follows: the
//! textbook's, GNU Mach's or XNU's. The kernel switches between them while
//! it runs (`mach.personality`); messages already kept stay kept and are
//! notified as they were promised, and what happens next follows the new
//! rules.
//!
//! - `textbook`: one message per sending *thread* kept past the limit
//!   (`MACH_SEND_WILL_NOTIFY`), `MACH_NOTIFY_MSG_ACCEPTED` when it comes
//!   within the limit ("when it can be queued").
//! - `gnumach`: one kept message per *task and send right*
//!   (`IE_BITS_MAREQUEST`), `MACH_NOTIFY_MSG_ACCEPTED` when it is received
//!   or destroyed [GNU Mach ipc/ipc_marequest.c, ipc/mach_msg.c].
//! - `xnu`: nothing is kept. A registered `MACH_NOTIFY_SEND_POSSIBLE`
//!   request on the destination name is armed, the send goes on as without
//!   the option (`MACH_SEND_TIMED_OUT` with timeout 0), and the next
//!   receive from the port sends `MACH_NOTIFY_SEND_POSSIBLE` [XNU
//!   osfmk/ipc/ipc_kmsg.c copyin, ipc_port.c `ipc_port_request_sparm`,
//!   `ipc_port_spnotify`].

use super::space::Kind;
use super::{ndr_name_body, ConnId, Kernel, PortId, TaskId};
use crate::mechanisms::mach::proto::Reply;
use crate::mechanisms::mach::types::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Personality {
    #[default]
    Textbook,
    Xnu,
    GnuMach,
}

impl Personality {
    /// In the order of `mach.personality`'s choices.
    pub const ALL: [Personality; 3] = [Personality::Textbook, Personality::Xnu, Personality::GnuMach];

    pub fn from_index(i: u64) -> Option<Personality> {
        Self::ALL.get(usize::try_from(i).ok()?).copied()
    }

    pub fn index(self) -> u32 {
        self as u32
    }

    /// The knob's word for it.
    pub fn key(self) -> &'static str {
        crate::knobs::MACH_PERSONALITIES[self as usize]
    }
}

impl<F> Kernel<F> {
    pub fn personality(&self) -> Personality {
        self.personality
    }

    /// Switches the rules on the running kernel; the counters since the
    /// switch start at zero.
    pub fn set_personality(&mut self, p: Personality, now: u64) {
        self.now = self.now.max(now);
        if p == self.personality {
            return;
        }
        self.personality = p;
        self.personality_since = self.now;
        self.personality_base = self.counters.clone();
        self.log(
            None,
            format!("mach.personality = {} /* emulation only: whose MACH_SEND_NOTIFY rules apply */", p.key()),
        );
    }

    pub(super) fn set_personality_request(&mut self, conn: ConnId, task: Option<TaskId>, index: u32) {
        let kr = match Personality::from_index(u64::from(index)) {
            Some(p) => {
                self.set_personality(p, self.now);
                KERN_SUCCESS
            }
            None => KERN_INVALID_VALUE,
        };
        if kr != KERN_SUCCESS {
            self.log(task, format!("mach.personality = {index} = {}", super::kr_name(kr)));
        }
        self.reply(conn, Reply::Status { kr });
    }

    /// Notification 66 is `MACH_NOTIFY_SEND_POSSIBLE` in XNU and
    /// `MACH_NOTIFY_MSG_ACCEPTED` in GNU Mach: named by the kernel's rules.
    pub(super) fn note_name(&self, msgh_id: i32) -> Option<&'static str> {
        if msgh_id == MACH_NOTIFY_SEND_POSSIBLE && self.personality == Personality::Xnu {
            return Some("MACH_NOTIFY_SEND_POSSIBLE");
        }
        notification_name(msgh_id)
    }

    /// XNU's copyin with `MACH_SEND_NOTIFY` on a full queue: the sender's
    /// send-possible request on `name` (if any) is armed.
    pub(super) fn arm_send_possible(&mut self, task: TaskId, name: MachPortName, port_id: PortId) {
        let has_request = self
            .tasks
            .get(&task)
            .and_then(|t| t.space.entries.get(&name))
            .is_some_and(|e| e.sp_request && e.dn_request.is_some() && e.live_port() == Some(port_id));
        let Some(port) = self.ports.get_mut(&port_id) else { return };
        if !has_request || port.sp_armed.contains(&(task, name)) {
            return;
        }
        port.sp_armed.push((task, name));
        self.counters.send_possible_armed += 1;
        self.log(Some(task), format!("send-possible request on {name:#x} armed: the queue is full"));
    }

    /// `ipc_port_spnotify`: a message left the port; every armed request
    /// gets `MACH_NOTIFY_SEND_POSSIBLE` with the sender's name, and is used up.
    pub(super) fn spnotify(&mut self, port_id: PortId) {
        let armed = match self.ports.get_mut(&port_id) {
            Some(p) if !p.sp_armed.is_empty() => std::mem::take(&mut p.sp_armed),
            _ => return,
        };
        for (task, name) in armed {
            self.fire_send_possible(task, name, port_id);
        }
    }

    /// Sends one request's `MACH_NOTIFY_SEND_POSSIBLE`, using it up.
    pub(super) fn fire_send_possible(&mut self, task: TaskId, name: MachPortName, port_id: PortId) {
        if let Some(p) = self.ports.get_mut(&port_id) {
            p.sp_armed.retain(|a| *a != (task, name));
        }
        {
            let request = self
                .tasks
                .get_mut(&task)
                .and_then(|t| t.space.entries.get_mut(&name))
                .filter(|e| e.sp_request && e.live_port() == Some(port_id))
                .and_then(|e| {
                    e.sp_request = false;
                    e.dn_request.take()
                });
            if let Some(request) = request {
                self.counters.send_possible += 1;
                self.log(
                    Some(task),
                    format!("MACH_NOTIFY_SEND_POSSIBLE({name:#x}) sent: a message left the full queue"),
                );
                self.notify(request, MACH_NOTIFY_SEND_POSSIBLE, ndr_name_body(name));
            }
        }
    }

    /// May this sender keep a message past the full queue? The textbook:
    /// one per thread; GNU Mach: one per task and send right. `notify` must
    /// name a receive right of the sender.
    pub(super) fn check_kept(
        &mut self,
        conn: ConnId,
        task: TaskId,
        dest_name: MachPortName,
        port_id: PortId,
        notify: MachPortName,
    ) -> Result<PortId, u32> {
        let taken = match self.personality {
            Personality::GnuMach => self.ports.get(&port_id).is_some_and(|p| {
                p.queue.iter().any(|k| k.marequest.is_some_and(|m| m.task == task && m.dest_name == dest_name))
            }),
            _ => self.threads.get(&conn).is_some_and(|t| t.cached.is_some()),
        };
        if taken {
            self.counters.notify_in_progress += 1;
            return Err(MACH_SEND_NOTIFY_IN_PROGRESS);
        }
        let space = &self.tasks.get(&task).ok_or(MACH_SEND_INVALID_NOTIFY)?.space;
        match space.entries.get(&notify) {
            Some(e) if e.receive && e.dead == 0 => e.port.ok_or(MACH_SEND_INVALID_NOTIFY),
            _ => Err(MACH_SEND_INVALID_NOTIFY),
        }
    }

    /// Does a send with `MACH_SEND_NOTIFY` keep its message under these rules?
    pub(super) fn keeps_messages(&self) -> bool {
        self.personality != Personality::Xnu
    }

    /// A kept message is accepted when it comes within the limit only under
    /// the textbook's rule; otherwise when it is received.
    pub(super) fn accepts_on_queue(&self) -> bool {
        self.personality == Personality::Textbook
    }

    /// `dest` is not a send-once right: only then does XNU arm anything.
    pub(super) fn arms_for(kind: Kind) -> bool {
        kind != Kind::SendOnce
    }
}
