//! What the monitor samples for Mach: the emulated kernel's own tables
//! (through an observer connection with short timeouts) and each task's
//! process in /proc and its telemetry slot.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::Observer;
use super::consts::{SERVICE, SOCKET};
use super::state::{
    BlockedCall, BlockedState, KernelState, NameState, QueuedMsgState, ReceiverState, TaskState, ThreadState,
    WaitingThreadState,
};
use super::types::*;
use super::workload::CALLS;
use crate::knobs::KnobId;
use crate::mechanisms::{Kind, Probe};
use crate::model::detail::mach::*;
use crate::monitor::{NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, MechanismSnapshot, Unit};
use crate::telemetry::Telemetry;

/// The longest the monitor waits for the kernel's answer.
const OBSERVE_TIMEOUT: Duration = Duration::from_millis(150);
/// Headers kept in the "last messages" list.
const HEADERS: usize = 10;
/// Kernel log lines carried in a snapshot.
const LOG_LINES: usize = 16;

pub struct MachProbe {
    socket: PathBuf,
    run_dir: PathBuf,
    kernel_slot: usize,
    server_slot: usize,
    clients: Arc<Mutex<Vec<usize>>>,
    kernel: ProcTracker,
    server: ProcTracker,
    trackers: BTreeMap<usize, ProcTracker>,
    observer: Option<Observer>,
    history: VecDeque<u64>,
    capacity: u64,
    headers: VecDeque<MsgView>,
    notes: NoteLog,
}

impl MachProbe {
    pub fn new(kernel: usize, server: usize, clients: Arc<Mutex<Vec<usize>>>, run_dir: &Path) -> MachProbe {
        MachProbe {
            socket: run_dir.join(SOCKET),
            run_dir: run_dir.to_path_buf(),
            kernel_slot: kernel,
            server_slot: server,
            clients,
            kernel: ProcTracker::new(kernel, "kernel", CALLS, run_dir),
            server: ProcTracker::new(server, "server", CALLS, run_dir),
            trackers: BTreeMap::new(),
            observer: None,
            history: VecDeque::new(),
            capacity: 0,
            headers: VecDeque::new(),
            notes: NoteLog::default(),
        }
    }

    /// The kernel's state, or `None` if it does not answer in time (the
    /// connection is then dropped and made again on the next sample).
    fn observe(&mut self) -> Option<KernelState> {
        if self.observer.is_none() {
            let o = Observer::connect(&self.socket).ok()?;
            o.set_timeout(OBSERVE_TIMEOUT).ok()?;
            self.observer = Some(o);
        }
        match self.observer.as_ref()?.state() {
            Ok(s) => Some(s),
            Err(_) => {
                self.observer = None;
                None
            }
        }
    }
}

fn rights_text(n: &NameState) -> String {
    let mut v = Vec::new();
    if n.receive {
        v.push("RECEIVE");
    }
    if n.send_urefs > 0 {
        v.push("SEND");
    }
    if n.send_once {
        v.push("SEND_ONCE");
    }
    if n.dead_name_urefs > 0 {
        v.push("DEAD_NAME");
    }
    v.join("+")
}

fn reply_text(t: u32) -> String {
    match t {
        MACH_MSG_TYPE_PORT_SEND_ONCE => "SEND_ONCE".into(),
        MACH_MSG_TYPE_PORT_SEND => "SEND".into(),
        _ => String::new(),
    }
}

fn waiter(st: &KernelState, w: &WaitingThreadState) -> WaiterView {
    WaiterView {
        task: task_name(st, w.task),
        pid: w.pid,
        thread: w.thread,
        waited_ms: st.now_ms.saturating_sub(w.since_ms),
        timeout_left_ms: w.deadline_ms.map(|d| d.saturating_sub(st.now_ms)),
        msgh_id: w.msgh_id,
    }
}

/// The call a blocked thread is in, and why, from the kernel's tables:
/// a send only blocks on a full queue; a receive waits on the service
/// port (a message), on the thread's reply port (its reply) or on its
/// notify port (with a message kept past the limit: `MSG_ACCEPTED`).
fn emu_call(
    st: &KernelState,
    task: &TaskState,
    thread: &ThreadState,
    b: &BlockedState,
    service_port: Option<u64>,
    purpose: &BTreeMap<(i32, u32), (usize, bool)>,
) -> EmuCall {
    let (call, wait) = match b.call {
        BlockedCall::Send => ("mach_msg(SEND)", EmuWait::QueueFull),
        BlockedCall::Receive if Some(b.port) == service_port => ("mach_msg(RCV)", EmuWait::Message),
        BlockedCall::Receive => match purpose.get(&(task.pid, b.name)) {
            Some((_, true)) => ("mach_msg(RCV)", EmuWait::Reply),
            Some((_, false)) if thread.cached_msg.is_some() => ("mach_msg(RCV)", EmuWait::KeptAwaitingAccepted),
            Some((_, false)) => ("mach_msg(RCV)", EmuWait::Notification),
            None => ("mach_msg(RCV)", EmuWait::Message),
        },
    };
    EmuCall {
        call: call.into(),
        wait,
        waited_ms: st.now_ms.saturating_sub(b.since_ms),
        timeout_left_ms: b.deadline_ms.map(|d| d.saturating_sub(st.now_ms)),
    }
}

fn task_name(st: &KernelState, id: u32) -> String {
    st.tasks.iter().find(|t| t.id == id).map_or_else(|| format!("task {id}"), |t| t.name.clone())
}

fn msg_view(st: &KernelState, m: &QueuedMsgState, port: &str) -> MsgView {
    MsgView {
        msgh_bits: m.msgh_bits,
        msgh_size: m.msgh_size,
        msgh_id: m.msgh_id,
        sender: match m.sender_task {
            Some(t) => task_name(st, t),
            None => "kernel".into(),
        },
        sender_pid: m.sender_pid,
        reply: reply_text(m.reply_type),
        ool_bytes: m.ool_bytes,
        age_ms: st.now_ms.saturating_sub(m.enqueued_ms),
        cached: m.cached,
        port: port.into(),
        msg_id: m.msg_id,
        reply_port: m.reply_port.unwrap_or(0),
    }
}

impl Probe for MachProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let clients: Vec<usize> = self.clients.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A restart (of the kernel and everything on it) starts a new story.
        self.notes.follow(tel.slot(self.kernel_slot).generation.load(std::sync::atomic::Ordering::Relaxed));
        let mut processes = vec![self.kernel.sample(tel, t_ms), self.server.sample(tel, t_ms)];
        for (i, &slot) in clients.iter().enumerate() {
            let tracker = self
                .trackers
                .entry(slot)
                .or_insert_with(|| ProcTracker::new(slot, &format!("client-{}", i + 1), CALLS, &self.run_dir));
            processes.push(tracker.sample(tel, t_ms));
        }
        let client_counts: Vec<ClientCounts> = clients
            .iter()
            .enumerate()
            .map(|(i, &slot)| {
                let a = &tel.slot(slot).aux;
                ClientCounts {
                    role: format!("client-{}", i + 1),
                    timed_out: a[0].load(Relaxed),
                    returned_at_once: a[1].load(Relaxed),
                    cached: a[2].load(Relaxed),
                    notified: a[3].load(Relaxed),
                    notify_in_progress: a[4].load(Relaxed),
                    dead_name: a[5].load(Relaxed),
                }
            })
            .collect();
        // Which names are a thread's reply and notify ports, as the
        // clients announced them: (pid, name) → (thread, is_reply).
        let mut purpose: BTreeMap<(i32, u32), (usize, bool)> = BTreeMap::new();
        for &slot in &clients {
            let s = tel.slot(slot);
            let pid = s.pid.load(Relaxed) as i32;
            for k in 0..2 {
                let w = s.aux[6 + k].load(Relaxed);
                if w != 0 {
                    purpose.insert((pid, w as u32), (k, true));
                    purpose.insert((pid, (w >> 32) as u32), (k, false));
                }
            }
        }

        let state = if processes[0].alive() { self.observe() } else { None };
        let mut d = MachDetail {
            kernel_up: state.is_some(),
            service: SERVICE.into(),
            send_mode: KnobId::MachSendMode.format(tel.knob(KnobId::MachSendMode)),
            clients: client_counts,
            ..MachDetail::default()
        };
        if let Some(st) = &state {
            self.fill(st, &mut d, &purpose);
        }
        // Messages past qlimit (kept with MACH_SEND_NOTIFY, or sent to a
        // send-once right) are counted apart, never as fill above 100 %.
        let channel = match &d.port {
            Some(p) => {
                self.capacity = p.qlimit as u64;
                Channel::split(p.queue_len as u64, p.qlimit as u64, Unit::Messages)
            }
            None => Channel { capacity: self.capacity, unit: Unit::Messages, ..Channel::default() },
        };
        self.history.push_back(channel.depth);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }
        self.take_notes(t_ms, &d, &processes);

        let ss = tel.slot(self.server_slot);
        let mut integrity = crate::monitor::integrity(ss);
        // A reply that came back different counts as corrupt too.
        integrity.corrupt += clients.iter().map(|&c| tel.slot(c).corrupt.load(Relaxed)).sum::<u64>();
        MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Mach,
            processes,
            channel,
            integrity,
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, KnobId::MACH),
            detail: Detail::Mach(d),
        }
    }
}

impl MachProbe {
    fn fill(&mut self, st: &KernelState, d: &mut MachDetail, purpose: &BTreeMap<(i32, u32), (usize, bool)>) {
        let service_port = st.bootstrap.iter().find(|s| s.name == SERVICE).map(|s| s.port);
        d.bootstrap = st
            .bootstrap
            .iter()
            .map(|s| ServiceView {
                name: s.name.clone(),
                port: s.port,
                task: task_name(st, s.registered_by_task),
                pid: s.registered_by_pid,
                checked_in: s.checked_in,
            })
            .collect();
        d.counters = st.counters.clone();
        d.personality = st.personality.clone();
        d.since_personality = st.since_personality.clone();
        d.log =
            st.log.iter().rev().take(LOG_LINES).rev().map(|e| format!("{} {}: {}", e.task, e.pid, e.text)).collect();

        // Every task's name space.
        for t in &st.tasks {
            let names = t
                .names
                .iter()
                .map(|n| {
                    let what = if n.name == t.task_self {
                        "task self"
                    } else if n.name == t.bootstrap {
                        "bootstrap"
                    } else if n.port.is_some() && n.port == service_port {
                        "service"
                    } else {
                        match purpose.get(&(t.pid, n.name)) {
                            Some((_, true)) => "reply port",
                            Some((_, false)) => "notify port",
                            // A request's reply right, between receive and reply.
                            None if n.send_once => "reply right",
                            None => "",
                        }
                    };
                    NameView {
                        name: n.name,
                        port: n.port,
                        rights: rights_text(n),
                        urefs: if n.send_urefs > 0 {
                            n.send_urefs
                        } else if n.dead_name_urefs > 0 {
                            n.dead_name_urefs
                        } else {
                            1
                        },
                        what: what.into(),
                        dead_name_request: n.dead_name_request,
                    }
                })
                .collect();
            let threads = t
                .threads
                .iter()
                .map(|th| ThreadView {
                    call: th.blocked.as_ref().map(|b| emu_call(st, t, th, b, service_port, purpose)),
                    thread: th.thread,
                    blocked: th
                        .blocked
                        .as_ref()
                        .map(|b| {
                            let call = match b.call {
                                BlockedCall::Send => "send",
                                BlockedCall::Receive => "receive",
                            };
                            format!("{call} {:#x}", b.name)
                        })
                        .unwrap_or_default(),
                    waited_ms: th.blocked.as_ref().map_or(0, |b| st.now_ms.saturating_sub(b.since_ms)),
                    cached: th.cached_msg.is_some(),
                })
                .collect();
            d.tasks.push(TaskView {
                id: t.id,
                name: t.name.clone(),
                pid: t.pid,
                task_self: t.task_self,
                bootstrap: t.bootstrap,
                threads,
                names,
                rcv_refused: t.rcv_refused.clone(),
                kobject_answers: t.kobject_answers,
            });
        }

        // The service port as a mailbox.
        if let Some(p) = service_port.and_then(|id| st.ports.iter().find(|p| p.id == id)) {
            let (receiver, receiver_pid, receiver_name) = match &p.receiver {
                ReceiverState::Task { task, name } => {
                    let pid = st.tasks.iter().find(|t| t.id == *task).map_or(0, |t| t.pid);
                    (task_name(st, *task), pid, *name)
                }
                ReceiverState::InTransit { .. } => ("in transit".into(), 0, 0),
                ReceiverState::Kernel { object } => (object.clone(), 0, 0),
            };
            let queue: Vec<MsgView> = p.queue.iter().map(|m| msg_view(st, m, "service")).collect();
            let send_rights = st
                .tasks
                .iter()
                .flat_map(|t| {
                    t.names.iter().filter(|n| n.port == Some(p.id) && n.send_urefs > 0).map(move |n| HolderView {
                        task: t.name.clone(),
                        pid: t.pid,
                        name: n.name,
                        urefs: n.send_urefs,
                    })
                })
                .collect();
            for m in &queue {
                if !self.headers.iter().any(|h| h.msg_id == m.msg_id) {
                    self.headers.push_back(m.clone());
                    if self.headers.len() > HEADERS {
                        self.headers.pop_front();
                    }
                }
            }
            d.port = Some(PortView {
                id: p.id,
                receiver,
                receiver_pid,
                receiver_name,
                qlimit: p.qlimit,
                queue_len: p.queue_len,
                cached: p.queue.iter().filter(|m| m.cached).count(),
                queue,
                blocked_senders: p.blocked_senders.iter().map(|w| waiter(st, w)).collect(),
                blocked_receivers: p.blocked_receivers.iter().map(|w| waiter(st, w)).collect(),
                send_rights,
            });
        }

        // Reply ports: where the answers come back, and the send-once
        // rights to them wherever they are.
        for t in &st.tasks {
            for n in &t.names {
                let Some((thread, true)) = purpose.get(&(t.pid, n.name)).copied() else { continue };
                let Some(id) = n.port else { continue };
                let Some(p) = st.ports.iter().find(|p| p.id == id) else { continue };
                for m in &p.queue {
                    let v = msg_view(st, m, "reply");
                    if !self.headers.iter().any(|h| h.msg_id == v.msg_id) {
                        self.headers.push_back(v);
                        if self.headers.len() > HEADERS {
                            self.headers.pop_front();
                        }
                    }
                }
                let send_once = st
                    .tasks
                    .iter()
                    .flat_map(|o| {
                        o.names.iter().filter(|x| x.port == Some(id) && x.send_once).map(move |x| HolderView {
                            task: o.name.clone(),
                            pid: o.pid,
                            name: x.name,
                            urefs: 1,
                        })
                    })
                    .collect();
                // Send-once rights to this port travelling in queued requests.
                let in_transit = service_port.and_then(|sp| st.ports.iter().find(|p| p.id == sp)).map_or(0, |sp| {
                    sp.queue
                        .iter()
                        .filter(|m| m.reply_port == Some(id) && m.reply_type == MACH_MSG_TYPE_PORT_SEND_ONCE)
                        .count()
                });
                d.reply_ports.push(ReplyPortView {
                    task: t.name.clone(),
                    pid: t.pid,
                    thread: thread + 1,
                    name: n.name,
                    port: id,
                    queue_len: p.queue_len,
                    send_once,
                    in_transit,
                });
            }
        }
        d.headers = self.headers.iter().cloned().collect();
    }

    fn take_notes(&mut self, t_ms: u64, d: &MachDetail, processes: &[crate::snapshot::ProcessSnapshot]) {
        let c = &d.counters;
        let full = d.port.as_ref().is_some_and(|p| p.qlimit > 0 && p.queue_len >= p.qlimit as usize);
        // Clients give a dead name back as soon as a send fails on it, so
        // their own count says it too.
        let dead =
            d.tasks.iter().any(|t| t.names.iter().any(|n| n.dead())) || d.clients.iter().any(|c| c.dead_name > 0);
        let server_gone = processes.get(1).is_some_and(|s| s.exit.is_some());
        let notes: [(bool, &str, &str); 8] = [
            (full, "full", "note_mach_full"),
            (c.send_timed_out > 0, "timed-out", "note_mach_timed_out"),
            (c.returned_at_once > 0, "at-once", "note_mach_at_once"),
            (c.cached > 0, "cached", d.rule_key("note_mach_cached")),
            (c.notified > 0, "notified", d.rule_key("note_mach_notified")),
            (c.send_possible > 0, "send-possible", "note_mach_send_possible"),
            (dead, "dead-name", "note_mach_dead_name"),
            (server_gone && c.destroyed > 0, "destroyed", "note_mach_destroyed"),
        ];
        for (seen, key, msg) in notes {
            if seen {
                self.notes.say(t_ms, key, msg, &[]);
            }
        }
        // processes[0] is the kernel itself.
        if processes.first().is_some_and(|k| k.exit.is_some()) {
            self.notes.say(t_ms, "kernel-died", "note_mach_kernel_died", &[]);
        }
    }
}
