//! The monitor thread: samples every mechanism at a fixed rate and sends
//! each `Snapshot` to the UI. It only looks — /proc, borrowed descriptors
//! asked one question, read-only mappings, the emulated kernels'
//! introspection — and reaps children that ended.

pub mod exit;
pub mod measure;
pub mod procfs;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::knobs::{KnobId, SHOWN_COMMON};
use crate::mechanisms::Kind;
use crate::model::snapshot::{
    Errors, Event, Integrity, MechanismSnapshot, Note, ProcessSnapshot, RunInfo, Snapshot, SNAPSHOT_VERSION,
};
use crate::telemetry::{ExitStatus, Op, Slot, Telemetry};
pub use exit::{describe_exit, signal_name};

/// Sampling, on the monitor thread. The monitor says what it samples;
/// each mechanism implements it.
pub trait Probe: Send {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot;
}

/// Depth samples kept for sparklines.
pub const HISTORY: usize = 120;
/// Events per process carried in each snapshot.
pub const EVENTS_PER_PROCESS: usize = 32;

/// How a mechanism names its workers' recorded calls and current ops.
#[derive(Clone, Copy)]
pub struct Calls {
    pub event: fn(u64, [u64; 3], i64) -> String,
    pub op: fn(Op) -> &'static str,
}

pub use crate::telemetry::default_op_name;

/// Follows one worker slot across samples: turns counters into rates and
/// collects the events it recorded.
pub struct ProcTracker {
    slot: usize,
    role: String,
    calls: Calls,
    log: PathBuf,
    generation: u64,
    window: VecDeque<(u64, u64, u64)>,
    events: VecDeque<Event>,
    next_event: u64,
    /// The fd table, re-read every `FD_TABLE_EVERY` samples: descriptors
    /// change rarely, and reading every link and fdinfo of every worker at
    /// 10 Hz was most of the monitor's cost.
    fds: Vec<crate::snapshot::FdEntry>,
    fds_pid: i32,
    samples: u64,
    /// The process's /proc files, kept open (see `procfs::Watched`).
    watched: Option<procfs::Watched>,
    /// What /proc said last, the counters it was read at, and samples since.
    facts: Option<(String, String, Option<i64>)>,
    moved: [u64; 6],
    still: u64,
    /// Its network namespace: (pid, sample it was first seen at, inode).
    netns: (i32, u64, Option<u64>),
}

/// A process's network namespace is read at every sample for its first
/// second (the netns client unshares right after it starts), then with its
/// fd table: the link lookup at 10 Hz for every worker was a visible share
/// of the monitor's cost.
const NETNS_YOUNG: u64 = 10;

/// Samples a sleeping process whose counters do not move keeps what /proc
/// said of it, before /proc is read again anyway.
pub const PROC_STILL_EVERY: u64 = 10;

/// Moved on by the monitor when every process must be read again (a pause
/// or a resume stops or wakes them all without moving their counters).
static PROC_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// While paused, one tick in this many is sampled.
pub const PAUSED_EVERY: u64 = 10;

/// While paused, the processes and kernels of the panels on screen are
/// looked at again once in this many ticks (5 s at 10 Hz), after the first
/// two paused samples; in between only the reaper runs, and a snapshot is
/// sent only when it found something (the workers are stopped).
pub const PAUSED_FULL_EVERY: u64 = 50;

/// Samples between two reads of a process's fd table.
pub const FD_TABLE_EVERY: u64 = 10;

impl ProcTracker {
    pub fn new(slot: usize, role: &str, calls: Calls, run_dir: &Path) -> Self {
        ProcTracker {
            slot,
            role: role.into(),
            calls,
            log: run_dir.join(format!("{slot}.log")),
            generation: 0,
            window: VecDeque::new(),
            events: VecDeque::new(),
            next_event: 0,
            fds: Vec::new(),
            fds_pid: 0,
            samples: 0,
            watched: None,
            facts: None,
            moved: [0; 6],
            still: 0,
            netns: (0, 0, None),
        }
    }

    /// The network namespace of `pid` (see `NETNS_YOUNG`).
    fn netns_of(&mut self, pid: i32) -> Option<u64> {
        let (seen_pid, since, _) = self.netns;
        if seen_pid != pid {
            self.netns = (pid, self.samples, procfs::netns(pid));
        } else if self.samples.saturating_sub(since) < NETNS_YOUNG || self.samples.is_multiple_of(FD_TABLE_EVERY) {
            self.netns.2 = procfs::netns(pid);
        }
        self.netns.2
    }

    /// The telemetry slot this tracker follows.
    pub fn slot(&self) -> usize {
        self.slot
    }

    pub fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> ProcessSnapshot {
        let s = tel.slot(self.slot);
        let gen = s.generation.load(Relaxed);
        if gen != self.generation {
            // Restarted: a new process, new history.
            self.generation = gen;
            self.window.clear();
            self.events.clear();
            self.next_event = 0;
            self.fds_pid = 0;
            self.facts = None;
        }
        let pid = s.pid.load(Relaxed) as i32;
        self.samples += 1;
        let sent = s.sent_msgs.load(Relaxed);
        let received = s.recv_msgs.load(Relaxed);
        self.window.push_back((t_ms, sent, received));
        while self.window.len() > 2 && t_ms - self.window[0].0 > 1000 {
            self.window.pop_front();
        }
        let (t0, s0, r0) = self.window[0];
        let dt = (t_ms - t0) as f64 / 1000.0;
        let rate = |a: u64, b: u64| {
            if dt > 0.0 {
                a.saturating_sub(b) as f64 / dt
            } else {
                0.0
            }
        };

        for (_, t_us, call, args, ret) in s.events_since(self.next_event) {
            self.events.push_back(Event { t_ms: t_us / 1000, text: (self.calls.event)(call, args, ret) });
            if self.events.len() > EVENTS_PER_PROCESS {
                self.events.pop_front();
            }
        }
        self.next_event = s.event_head.load(Relaxed);

        let exit = ExitStatus::decode(s.exit.load(Relaxed)).map(|e| describe_exit(e, &self.log));
        // A process asleep whose counters, operation and events did not
        // move since the last sample is asleep where it was: /proc is read
        // again only once in PROC_STILL_EVERY samples (a running one, or
        // one that moved, every sample).
        let moved = [
            pid as u64 ^ PROC_EPOCH.load(Relaxed).rotate_left(32),
            sent,
            received,
            s.op.load(Relaxed),
            s.op_since_us.load(Relaxed),
            s.event_head.load(Relaxed) ^ s.exit.load(Relaxed).rotate_left(32),
        ];
        let asleep = matches!(&self.facts, Some((st, _, _)) if matches!(st.as_str(), "S" | "D" | "T" | "t" | "I"));
        let keep = asleep && moved == self.moved && self.still + 1 < PROC_STILL_EVERY;
        self.moved = moved;
        let (state, wchan, syscall, fds) = if pid > 0 && exit.is_none() {
            let facts = if keep {
                self.still += 1;
                self.facts.clone()
            } else {
                self.still = 0;
                if self.watched.as_ref().is_none_or(|w| w.pid != pid) {
                    self.watched = Some(procfs::Watched::open(pid));
                }
                self.facts = self
                    .watched
                    .as_mut()
                    .and_then(|w| w.sample())
                    .map(|(st, wchan, sc)| (st.state.to_string(), wchan, sc));
                self.facts.clone()
            };
            match facts {
                Some((state, wchan, syscall)) => {
                    if pid != self.fds_pid {
                        self.fds = procfs::fd_table(pid);
                        self.fds_pid = pid;
                    } else if self.samples.is_multiple_of(FD_TABLE_EVERY) {
                        self.fds = procfs::fd_table_since(pid, &self.fds);
                    }
                    (state, wchan, syscall, self.fds.clone())
                }
                None => ("-".into(), String::new(), None, Vec::new()),
            }
        } else {
            self.facts = None;
            self.watched = None;
            ("-".into(), String::new(), None, Vec::new())
        };
        let op = Op::from_u64(s.op.load(Relaxed));
        let op_since = s.op_since_us.load(Relaxed) / 1000;
        ProcessSnapshot {
            role: self.role.clone(),
            pid,
            state,
            wchan,
            syscall,
            op: if exit.is_some() { "exited".into() } else { (self.calls.op)(op).into() },
            op_ms: t_ms.saturating_sub(op_since),
            sent,
            received,
            bytes_sent: s.sent_bytes.load(Relaxed),
            bytes_received: s.recv_bytes.load(Relaxed),
            send_rate: rate(sent, s0),
            recv_rate: rate(received, r0),
            errors: Errors {
                epipe: s.err_epipe.load(Relaxed),
                eagain: s.err_again.load(Relaxed),
                etimedout: s.err_timedout.load(Relaxed),
                other: s.err_other.load(Relaxed),
            },
            netns: if pid > 0 && exit.is_none() { self.netns_of(pid) } else { None },
            exit,
            fds,
            events: self.events.iter().cloned().collect(),
        }
    }
}

/// Notes that appear once, when a condition is first seen.
#[derive(Default)]
pub struct NoteLog {
    notes: Vec<Note>,
    generation: u64,
}

impl NoteLog {
    /// Forget what was noted about an earlier start of the processes:
    /// `generation` is a slot's restart count (see `Slot::generation`).
    pub fn follow(&mut self, generation: u64) {
        if generation != self.generation {
            self.generation = generation;
            self.notes.clear();
        }
    }

    /// A note by message key (`[notes]` in assets/locales.toml) and
    /// arguments, translated when drawn; `text` keeps the English.
    pub fn say(&mut self, t_ms: u64, key: &str, msg: &str, args: &[(&str, String)]) {
        self.push(Note {
            t_ms,
            key: key.into(),
            msg: msg.into(),
            args: args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            text: crate::i18n::note_en(msg, args),
        });
    }

    fn push(&mut self, note: Note) {
        if !self.notes.iter().any(|n| n.key == note.key) {
            self.notes.push(note);
            if self.notes.len() > 8 {
                self.notes.remove(0);
            }
        }
    }
    pub fn clear(&mut self, key: &str) {
        self.notes.retain(|n| n.key != key);
    }
    pub fn list(&self) -> Vec<Note> {
        self.notes.clone()
    }
}

/// What a consumer counted, in its telemetry slot, of the messages it
/// verified.
pub fn integrity(slot: &Slot) -> Integrity {
    Integrity {
        delivered: slot.delivered.load(Relaxed),
        lost: slot.lost.load(Relaxed),
        corrupt: slot.corrupt.load(Relaxed),
        duplicated: slot.duplicated.load(Relaxed),
        reordered: slot.reordered.load(Relaxed),
        foreign: slot.foreign.load(Relaxed),
    }
}

/// A consumer's counts, plus what died with it: once the consumer has
/// ended, every message its producers handed to the channel that it never
/// delivered is lost — counted, never silent. (Its own `lost` only knows
/// the gaps it saw between messages that did arrive.)
pub fn integrity_after<'a>(consumer: &Slot, producers: impl IntoIterator<Item = &'a Slot>) -> Integrity {
    let mut i = integrity(consumer);
    if ExitStatus::decode(consumer.exit.load(Relaxed)).is_some() {
        let sent: u64 = producers.into_iter().map(|p| p.sent_msgs.load(Relaxed)).sum();
        i.lost = i.lost.max(sent.saturating_sub(i.delivered));
    }
    i
}

/// The same, summed over several consumers' slots.
pub fn integrity_sum<'a>(slots: impl IntoIterator<Item = &'a Slot>) -> Integrity {
    slots.into_iter().map(integrity).fold(Integrity::default(), |a, b| Integrity {
        delivered: a.delivered + b.delivered,
        lost: a.lost + b.lost,
        corrupt: a.corrupt + b.corrupt,
        duplicated: a.duplicated + b.duplicated,
        reordered: a.reordered + b.reordered,
        foreign: a.foreign + b.foreign,
    })
}

/// The values a mechanism goes by, as read back from the control page:
/// the common knobs worth showing (its own copy where one is set, so
/// `producer.rate` is what its processes use) and its own knobs.
pub fn knob_values(tel: &Telemetry, own: &[KnobId]) -> Vec<(String, String)> {
    let common = SHOWN_COMMON.iter().map(|&id| (id, tel.effective(own, id)));
    let own = own.iter().filter(|id| id.base().is_none()).map(|&id| (id, tel.knob(id)));
    common.chain(own).map(|(id, v)| (id.key().to_string(), id.format(v))).collect()
}

/// Ticks between two full samples of an emulated kernel (its tables:
/// ports, rights, queues, sections) at the monitor's 10 Hz: 2 Hz. Between
/// them its processes' counters are refreshed from telemetry; the zoomed
/// panel's kernel is sampled in full on every tick.
pub const KERNEL_FULL_EVERY: u64 = 5;

/// What the screen shows, as the TUI last drew it: a bit per `Kind::ALL`
/// index of the panels on screen (0: nobody said, everything), and the
/// zoomed panel's index + 1 (0: none). Read by the monitor to sample the
/// zoomed kernel in full and, while paused, only what is shown.
pub static SHOWN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
pub static ZOOMED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn kind_bit(k: Kind) -> u32 {
    1 << Kind::ALL.iter().position(|&x| x == k).unwrap_or(0)
}

/// Tell the monitor what the screen shows (the TUI, after each draw).
pub fn set_shown(shown: impl IntoIterator<Item = Kind>, zoomed: Option<Kind>) {
    SHOWN.store(shown.into_iter().fold(0, |a, k| a | kind_bit(k)), Relaxed);
    ZOOMED.store(zoomed.map_or(0, |k| kind_bit(k).trailing_zeros() + 1), Relaxed);
}

fn on_screen(k: Kind) -> bool {
    let shown = SHOWN.load(Relaxed);
    shown == 0 || shown & kind_bit(k) != 0
}

fn is_zoomed(k: Kind) -> bool {
    ZOOMED.load(Relaxed) == kind_bit(k).trailing_zeros() + 1
}

/// An emulated kernel's last full sample with its processes' counters
/// brought up to now from their telemetry slots (found by pid): no
/// introspection request, no /proc. Queue depths, tables, integrity,
/// process states and the name of the current operation stay as the last
/// full sample saw them. None when a process ended or
/// restarted since: then only a full sample tells the truth.
fn refresh_counts(prev: &MechanismSnapshot, tel: &Telemetry, t_ms: u64) -> Option<MechanismSnapshot> {
    let mut m = prev.clone();
    for p in &mut m.processes {
        if p.pid <= 0 || p.exit.is_some() {
            continue;
        }
        let s = (0..crate::telemetry::MAX_SLOTS).map(|i| tel.slot(i)).find(|s| s.pid.load(Relaxed) as i32 == p.pid)?;
        if ExitStatus::decode(s.exit.load(Relaxed)).is_some() {
            return None;
        }
        p.sent = s.sent_msgs.load(Relaxed);
        p.received = s.recv_msgs.load(Relaxed);
        p.bytes_sent = s.sent_bytes.load(Relaxed);
        p.bytes_received = s.recv_bytes.load(Relaxed);
        p.errors = Errors {
            epipe: s.err_epipe.load(Relaxed),
            eagain: s.err_again.load(Relaxed),
            etimedout: s.err_timedout.load(Relaxed),
            other: s.err_other.load(Relaxed),
        };
        p.op_ms = t_ms.saturating_sub(s.op_since_us.load(Relaxed) / 1000);
    }
    Some(m)
}

pub struct Monitor {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Reaps the workers that ended; returns the run's problems so far.
pub type Reaper = Box<dyn FnMut(&Telemetry) -> Vec<String> + Send>;

pub struct MonitorConfig {
    pub hz: u32,
    pub run: RunInfo,
    pub paused: Arc<AtomicBool>,
    /// The supervisor's, called on every sample.
    pub reap: Reaper,
}

impl Monitor {
    /// Start sampling `probes` on a thread of its own.
    pub fn spawn(
        mut probes: Vec<Box<dyn Probe>>,
        tel: Telemetry,
        mut cfg: MonitorConfig,
        tx: Sender<Snapshot>,
    ) -> std::io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let period = Duration::from_micros(1_000_000 / cfg.hz.clamp(1, 100) as u64);
        let handle = std::thread::Builder::new().name("monitor".into()).spawn(move || {
            let ticker = crossbeam_channel::tick(period);
            let mut ticks = 0u64;
            let mut was_paused = false;
            let mut meter = measure::Meter::default();
            // Each probe's last snapshot.
            let mut last: Vec<Option<MechanismSnapshot>> = vec![None; probes.len()];
            // Samples taken paused in a row; the problems the last one knew of.
            let (mut sampled_paused, mut problems_seen) = (0u32, 0);
            loop {
                if stop2.load(Relaxed) {
                    break;
                }
                // While the workers are stopped nothing moves: sample one
                // tick in PAUSED_EVERY (the first paused one at once), so an
                // idle, paused TUI costs next to nothing.
                ticks += 1;
                let paused = cfg.paused.load(Relaxed);
                let skip = paused && was_paused && !ticks.is_multiple_of(PAUSED_EVERY);
                was_paused = paused;
                if skip {
                    if ticker.recv().is_err() {
                        break;
                    }
                    continue;
                }
                let problems = (cfg.reap)(&tel);
                let t_ms = tel.elapsed_us() / 1000;
                let mut run = cfg.run.clone();
                run.problems.extend(problems);
                run.paused = cfg.paused.load(Relaxed);
                run.step_mode = tel.page().step_mode.load(Relaxed) != 0;
                // Paused, settled, nothing new from the reaper and no full
                // look due: the screen already shows all there is. No
                // snapshot is sent (no redraw, no /proc, no figures).
                if run.paused
                    && sampled_paused >= 2
                    && problems_seen == run.problems.len()
                    && !ticks.is_multiple_of(PAUSED_FULL_EVERY)
                {
                    if ticker.recv().is_err() {
                        break;
                    }
                    continue;
                }
                // Paused or resumed: every process stopped or woke without
                // moving a counter, so /proc is read again (the first two
                // paused samples and each full one after them).
                if run.paused != (sampled_paused > 0)
                    || (run.paused && (sampled_paused < 2 || ticks.is_multiple_of(PAUSED_FULL_EVERY)))
                {
                    PROC_EPOCH.fetch_add(1, Relaxed);
                }
                let mut mechanisms = Vec::with_capacity(probes.len());
                for (p, last) in probes.iter_mut().zip(last.iter_mut()) {
                    let reuse = match last.as_ref() {
                        // Paused, every worker is stopped: what the last
                        // sample saw still holds. A panel on screen is
                        // looked at again every PAUSED_FULL_EVERY ticks
                        // (something from outside: a kill, a `cat`), one
                        // off screen waits for the screen. A death is seen
                        // at once by the reaper above.
                        Some(m)
                            if run.paused
                                && sampled_paused >= 2
                                && problems_seen == run.problems.len()
                                && (!ticks.is_multiple_of(PAUSED_FULL_EVERY) || !on_screen(m.kind)) =>
                        {
                            Some(m.clone())
                        }
                        // An emulated kernel's tables at 2 Hz (every tick
                        // when zoomed); its processes' counters every tick.
                        Some(m)
                            if matches!(m.kind, Kind::Mach | Kind::Alpc)
                                && !is_zoomed(m.kind)
                                && !ticks.is_multiple_of(KERNEL_FULL_EVERY) =>
                        {
                            refresh_counts(m, &tel, t_ms)
                        }
                        _ => None,
                    };
                    let m = reuse.unwrap_or_else(|| p.sample(&tel, t_ms));
                    // Kept for the ticks that reuse it: an emulated
                    // kernel's, and every panel's while paused.
                    if run.paused || matches!(m.kind, Kind::Mach | Kind::Alpc) {
                        *last = Some(m.clone());
                    }
                    mechanisms.push(m);
                }
                sampled_paused = if run.paused { sampled_paused + 1 } else { 0 };
                problems_seen = run.problems.len();
                let mut snap = Snapshot { version: SNAPSHOT_VERSION, t_ms, run, mechanisms };
                meter.fill(&mut snap, &tel);
                crate::trace::observe(&snap);
                // Never block on a slow reader: a UI that is busy (or
                // already gone) skips this sample, and stopping the monitor
                // can never wait on a full channel.
                match tx.try_send(snap) {
                    Ok(()) | Err(crossbeam_channel::TrySendError::Full(_)) => {}
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => break,
                }
                if crate::fault("panic-monitor") {
                    panic!("injected fault: the monitor thread panics (IPCSCOPE_FAULT=panic-monitor)");
                }
                if ticker.recv().is_err() {
                    break;
                }
            }
        })?;
        Ok(Monitor { stop, handle: Some(handle) })
    }

    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest snapshot waiting in a channel, if any.
pub fn latest(rx: &Receiver<Snapshot>) -> Option<Snapshot> {
    rx.try_iter().last()
}
