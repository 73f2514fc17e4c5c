//! What the monitor samples for ALPC: the emulated kernel's own tables
//! (through an observer connection with a short timeout), every process
//! through `/proc` and the telemetry page, and the small reports the
//! workers leave in the run's directory (headers they received, the
//! latest RPC call's layers).
//!
//! The channel figure: `depth` = messages waiting in the connection port's
//! main queue (NT queues every client→server message of every channel
//! there); `capacity` = how many messages of the current size the port's
//! pool quota (`alpc.max_pool_usage`, NT's `MaxPoolUsage`) could hold — NT
//! bounds the pool a port may charge, never the length of a queue. Unit:
//! `messages`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::client::Observer;
use super::report::{report_path, socket_path, WorkerReport};
use super::rpc::{args_path, request_header_len};
use super::types::PORT_MESSAGE_SIZE;
use super::types::{ALPC_DATA_VIEW_ATTR_SIZE, PORT_DATA_ENTRY_SIZE, PORT_DATA_INFORMATION_SIZE};
use super::workload::ECHO;
use crate::knobs::KnobId;
use crate::mechanisms::{Kind, Probe};
use crate::model::detail::alpc::{AlpcDetail, AlpcState, ClientFigures, SeenMessage, ServerFigures};
use crate::monitor::{NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, MechanismSnapshot};
use crate::telemetry::Telemetry;

/// How long the monitor waits for the kernel's answer before it gives up
/// on this sample (and reconnects on a later one).
const OBSERVER_TIMEOUT: Duration = Duration::from_millis(150);
/// Messages of each queue carried in a snapshot.
const QUEUE_SHOWN: usize = 6;
/// Lines of the kernel's call log carried in a snapshot.
const CALLS_SHOWN: usize = 12;

pub struct AlpcProbe {
    dir: PathBuf,
    socket: PathBuf,
    observer: Option<Observer>,
    next_try_ms: u64,
    kernel: ProcTracker,
    server: (usize, ProcTracker),
    clients: Vec<(usize, ProcTracker)>,
    history: VecDeque<u64>,
    notes: NoteLog,
    reports: Vec<(usize, WorkerReport)>,
    next_report_ms: u64,
}

impl AlpcProbe {
    pub fn new(
        dir: &Path,
        kernel: ProcTracker,
        server: (usize, ProcTracker),
        clients: Vec<(usize, ProcTracker)>,
    ) -> Self {
        AlpcProbe {
            dir: dir.to_path_buf(),
            socket: socket_path(dir),
            observer: None,
            next_try_ms: 0,
            kernel,
            server,
            clients,
            history: VecDeque::new(),
            notes: NoteLog::default(),
            reports: Vec::new(),
            next_report_ms: 0,
        }
    }

    /// The kernel's state, or `None` if it did not answer in time.
    fn kernel_state(&mut self, t_ms: u64, kernel_alive: bool) -> Option<AlpcState> {
        if self.observer.is_none() && kernel_alive && t_ms >= self.next_try_ms && self.socket.exists() {
            match Observer::connect_with_timeout(&self.socket, OBSERVER_TIMEOUT) {
                Ok(o) => self.observer = Some(o),
                Err(_) => self.next_try_ms = t_ms + 250,
            }
        }
        let state = self.observer.as_mut()?.state_as::<AlpcState>();
        match state {
            Ok(s) => Some(s),
            Err(_) => {
                // A kernel that was restarted, or too busy to answer: ask
                // again on a later sample over a new connection.
                self.observer = None;
                self.next_try_ms = t_ms + 250;
                None
            }
        }
    }

    fn read_reports(&mut self, t_ms: u64) {
        if t_ms < self.next_report_ms {
            return;
        }
        self.next_report_ms = t_ms + 300;
        let slots: Vec<usize> = std::iter::once(self.server.0).chain(self.clients.iter().map(|c| c.0)).collect();
        self.reports = slots
            .into_iter()
            .filter_map(|s| {
                let text = std::fs::read(report_path(&self.dir, s)).ok()?;
                Some((s, serde_json::from_slice(&text).ok()?))
            })
            .collect();
    }
}

/// Bytes one message of `size` charges against the port's pool: its
/// `PORT_MESSAGE` and what travels inline with it.
fn charge_per_message(size: u64, small_max: u64, section: u64) -> u64 {
    let rpc_header = request_header_len(ECHO);
    let size = args_len(size);
    let inline = if size + rpc_header <= small_max {
        (size + rpc_header).div_ceil(4) * 4
    } else if size <= section {
        rpc_header + u64::from(ALPC_DATA_VIEW_ATTR_SIZE)
    } else {
        rpc_header + u64::from(PORT_DATA_INFORMATION_SIZE) + 2 * u64::from(PORT_DATA_ENTRY_SIZE)
    };
    u64::from(PORT_MESSAGE_SIZE) + inline
}

/// The arguments a client passes for `msg.size`: the message less the
/// RPC runtime's header (the client's own rule, `workload::client`).
pub fn args_len(msg_size: u64) -> u64 {
    msg_size.saturating_sub(request_header_len(ECHO)).clamp(crate::knobs::MSG_MIN_LEN, 1 << 20)
}

fn trim(state: &mut AlpcState) {
    for p in &mut state.connection_ports {
        p.main_queue.truncate(QUEUE_SHOWN);
        p.pending_queue.truncate(QUEUE_SHOWN);
        p.connection_requests.truncate(QUEUE_SHOWN);
    }
    for c in &mut state.channels {
        c.client_queue.truncate(QUEUE_SHOWN);
    }
    let n = state.recent_calls.len();
    state.recent_calls.drain(..n.saturating_sub(CALLS_SHOWN));
    state.processes.retain(|p| p.name != "observer");
}

impl Probe for AlpcProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let kernel = self.kernel.sample(tel, t_ms);
        // A restart (of the kernel and everything on it) starts a new story.
        self.notes.follow(tel.slot(self.kernel.slot()).generation.load(std::sync::atomic::Ordering::Relaxed));
        let server = self.server.1.sample(tel, t_ms);
        let clients: Vec<_> = self.clients.iter_mut().map(|(_, t)| t.sample(tel, t_ms)).collect();
        let mut state = self.kernel_state(t_ms, kernel.alive());
        self.read_reports(t_ms);

        let knob = |k: KnobId| tel.effective(KnobId::ALPC, k);
        let small_max = knob(KnobId::AlpcSmallMax);
        let section_size = knob(KnobId::AlpcSectionSize);
        let msg_size = knob(KnobId::MsgSize);
        let max_pool = state.as_ref().map_or(knob(KnobId::AlpcMaxPoolUsage), |s| s.max_pool_usage);
        let depth: u64 =
            state.as_ref().map_or(0, |s| s.connection_ports.iter().map(|p| p.main_queue.len() as u64).sum());
        let capacity = max_pool / charge_per_message(msg_size, small_max, section_size).max(1);
        self.history.push_back(depth);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }

        let ss = tel.slot(self.server.0);
        let server_figures = ServerFigures {
            accepted: ss.aux[0].load(Relaxed),
            refused: ss.aux[1].load(Relaxed),
            callbacks_ok: ss.aux[2].load(Relaxed),
            callbacks_bad: ss.aux[3].load(Relaxed),
        };
        let mut integrity = crate::monitor::integrity_sum(self.clients.iter().map(|&(slot, _)| tel.slot(slot)));
        integrity.corrupt += ss.corrupt.load(Relaxed);
        let mut figures = Vec::new();
        for ((slot, _), p) in self.clients.iter().zip(&clients) {
            let s = tel.slot(*slot);
            figures.push(ClientFigures {
                role: p.role.clone(),
                pid: p.pid,
                port: s.aux[5].load(Relaxed) as u32,
                copied: s.aux[0].load(Relaxed),
                section: s.aux[1].load(Relaxed),
                direct: s.aux[2].load(Relaxed),
                callbacks_served: s.aux[3].load(Relaxed),
                refusals: s.aux[4].load(Relaxed),
                ptracer_granted: s.aux[6].load(Relaxed) != 0,
            });
        }

        // Notes: what a class should notice, once.
        if server_figures.refused > 0 {
            self.notes.say(t_ms, "refused", "note_alpc_refused", &[]);
        }
        if server_figures.callbacks_ok > 0 {
            self.notes.say(t_ms, "callback", "note_alpc_callback", &[]);
        }
        if let Some(s) = &state {
            if s.totals.quota_failures > 0 {
                self.notes.say(t_ms, "quota", "note_alpc_quota", &[]);
            }
            if s.totals.direct_reads > 0 {
                self.notes.say(t_ms, "direct", "note_alpc_direct", &[]);
            }
            if depth > 0 && knob(KnobId::ConsumerRate) == 0 && s.channels.is_empty() {
                self.notes.say(t_ms, "stalled-connect", "note_alpc_stalled_connect", &[]);
            } else if depth > 0 && knob(KnobId::ConsumerRate) == 0 {
                self.notes.say(t_ms, "stalled", "note_alpc_stalled", &[]);
            }
        }
        if kernel.exit.is_some() {
            self.notes.say(t_ms, "kernel-died", "note_alpc_kernel_died", &[]);
        } else if let Some(e) = &server.exit {
            self.notes.say(t_ms, "server-exit", "note_alpc_server_exit", &[("exit", e.clone())]);
        }

        let mut headers: Vec<SeenMessage> = Vec::new();
        let mut rpc = (Vec::new(), String::new());
        for (slot, r) in &self.reports {
            headers.extend(r.headers.iter().rev().take(2).rev().cloned());
            if rpc.0.is_empty() && !r.rpc.is_empty() {
                let role = self.clients.iter().zip(&clients).find(|((s, _), _)| s == slot).map(|(_, p)| p.role.clone());
                rpc = (r.rpc.clone(), role.unwrap_or_default());
            }
        }
        headers.sort_by_key(|h| h.header.message_id);

        let mut roles: Vec<(u32, String)> = std::iter::once(&kernel)
            .chain(Some(&server))
            .chain(&clients)
            .filter(|p| p.pid > 0)
            .map(|p| (p.pid as u32, p.role.clone()))
            .collect();
        roles.dedup();
        // The path a call of msg.size takes now: the runtime's rule against
        // the limits the kernel gave this run's channels.
        let channel_max = state.as_ref().and_then(|s| s.channels.first()).map(|c| c.max_message_length);
        let kernel_max = state.as_ref().map_or(small_max, |s| u64::from(s.small_max));
        let max_message = channel_max.map_or(kernel_max, u64::from);
        // Before a channel exists, the section a client asks for at bind.
        let first = state.as_ref().and_then(|s| s.channels.first());
        let own_section = first
            .and_then(|c| c.client_section)
            .and_then(|id| state.as_ref().and_then(|s| s.sections.iter().find(|x| x.id == id)).map(|x| x.size));
        let args = args_len(msg_size);
        // ALPC: a client without one creates a section when a call needs it.
        let any_time = state.as_ref().is_some_and(|s| s.personality == "alpc");
        let section_for = match (first, own_section) {
            (_, Some(size)) => Some(size),
            (None, None) if section_size > 0 => Some(section_size),
            _ if any_time => Some(args.next_power_of_two().max(64 << 10)),
            _ => None,
        };
        let path_now = (knob(KnobId::AlpcMix) == 0 && state.is_some())
            .then(|| args_path(ECHO, args, max_message, section_for).code());
        let kernel_up = state.is_some();
        let state_personality = state.as_ref().map(|s| s.personality.clone()).unwrap_or_default();
        if let Some(s) = state.as_mut() {
            trim(s);
        }
        let detail = AlpcDetail {
            kernel_up,
            port_name: super::rpc::endpoint_port_name(super::ENDPOINT),
            small_max: state.as_ref().map_or(small_max, |s| u64::from(s.small_max)),
            section_size,
            max_pool_usage: max_pool,
            callbacks: knob(KnobId::AlpcCallbacks) != 0,
            accept: knob(KnobId::AlpcAccept) != 0,
            state,
            roles,
            clients: figures,
            server: server_figures,
            headers,
            rpc: rpc.0,
            rpc_by: rpc.1,
            msg_size,
            queue_max: max_message,
            rpc_header: request_header_len(ECHO),
            personality: state_personality,
            own_section,
            path_now,
        };
        let mut processes = vec![kernel, server];
        processes.extend(clients);
        MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Alpc,
            processes,
            channel: Channel { depth, capacity, unit: crate::model::figures::Unit::Messages, over: 0 },
            integrity,
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, KnobId::ALPC),
            detail: Detail::Alpc(detail),
        }
    }
}
