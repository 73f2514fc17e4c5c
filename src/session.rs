//! A session: one run of some mechanisms — the supervisor with its worker
//! processes, the monitor thread, and the channel of snapshots between
//! them. The TUI and the headless `snapshot` command both drive one.

use std::sync::atomic::Ordering::Relaxed;

use anyhow::Result;
use crossbeam_channel::Receiver;

use crate::knobs::{self, KnobId, Knobs};
use crate::mechanisms::{Kind, Mechanism};
use crate::monitor::{Monitor, MonitorConfig};
use crate::snapshot::{RunInfo, Snapshot};
pub use crate::supervisor::strip_os_error;
use crate::supervisor::{limit_text, Supervisor};

pub struct Session {
    pub sup: Supervisor,
    mechs: Vec<Box<dyn Mechanism>>,
    monitor: Monitor,
    pub snapshots: Receiver<Snapshot>,
    /// A lesson played inside a larger run: the common knobs it sets
    /// (`consumer.rate=0`) go to these mechanisms' own copies only.
    scope: Option<Vec<Kind>>,
    /// The consumer rate each stalled mechanism had before `toggle_stall`.
    stalled_from: std::collections::HashMap<Kind, u64>,
    /// The common consumer rate before `toggle_stall_all` stalled them all.
    all_stalled_from: Option<u64>,
}

/// Something the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    SetPaused(bool),
    SetKnob(KnobId, u64),
    /// Kill the mechanism's victim role (`k`).
    Kill(Kind),
    Restart(Kind),
    SetStepMode(bool),
    /// Let one message through each producer of the mechanism (or all).
    Step(Option<Kind>),
}

impl Session {
    pub fn start(kinds: &[Kind], knobs: Knobs, hz: u32) -> Result<Session> {
        let exe = std::env::current_exe()?;
        Self::start_with_exe(exe, kinds, knobs, hz)
    }

    /// Start with workers run from `exe` (tests run from a test binary and
    /// point this at the real one).
    pub fn start_with_exe(exe: std::path::PathBuf, kinds: &[Kind], knobs: Knobs, hz: u32) -> Result<Session> {
        check_address_space()?;
        let mut sup = Supervisor::with_exe(exe, knobs)?;
        let mut mechs = Vec::new();
        // One mechanism that cannot start (a limit, a read-only /dev/shm)
        // must not take the others down: it is left out and said why.
        let mut problems = Vec::new();
        for &k in kinds {
            let info = crate::registry::info(k).ok_or_else(|| anyhow::anyhow!("{} is not built yet", k.name()))?;
            let mut m = (info.new)();
            match m.start(&mut sup) {
                Ok(()) => mechs.push(m),
                Err(e) if kinds.len() > 1 => problems.push(format!("{} not started: {}", k.name(), explain(&e))),
                Err(e) => return Err(anyhow::anyhow!(explain(&e))),
            }
        }
        let probes = mechs.iter().map(|m| m.probe(&sup)).collect();
        let (tx, rx) = crossbeam_channel::bounded(4);
        let run = RunInfo {
            pid: std::process::id() as i32,
            runtime_dir: sup.dir_path().display().to_string(),
            hz,
            problems,
            ..RunInfo::default()
        };
        let cfg = MonitorConfig { hz, run, paused: sup.paused_flag(), reap: Box::new(sup.reaper()) };
        let monitor = Monitor::spawn(probes, sup.telemetry().clone(), cfg, tx)
            .map_err(|e| anyhow::anyhow!("cannot start the monitor thread: {}", io_text(&e)))?;
        Ok(Session {
            sup,
            mechs,
            monitor,
            snapshots: rx,
            scope: None,
            stalled_from: Default::default(),
            all_stalled_from: None,
        })
    }

    pub fn kinds(&self) -> Vec<Kind> {
        self.mechs.iter().map(|m| m.kind()).collect()
    }

    /// The monitor thread is still alive (it dies only by panic).
    pub fn monitor_alive(&self) -> bool {
        self.monitor.is_running()
    }

    pub fn apply(&mut self, cmd: Command) -> Result<()> {
        match cmd {
            Command::SetPaused(p) => self.sup.set_paused(p),
            Command::SetKnob(k, v) => match self.scope.clone() {
                Some(kinds) if KnobId::COMMON.contains(&k) => {
                    for kind in kinds {
                        self.set_for(kind, k, v);
                    }
                }
                _ => self.sup.set_knob(k, v),
            },
            Command::Kill(kind) => {
                if let Some(m) = self.mechs.iter().find(|m| m.kind() == kind) {
                    if let Some(slot) = m.victim() {
                        self.sup.signal_slot(slot, libc::SIGKILL);
                    }
                }
            }
            Command::Restart(kind) => {
                if let Some(m) = self.mechs.iter_mut().find(|m| m.kind() == kind) {
                    m.restart(&mut self.sup).map_err(|e| anyhow::anyhow!(explain(&e)))?;
                }
            }
            Command::SetStepMode(on) => {
                let tel = self.sup.telemetry();
                tel.page().step_mode.store(on as u64, Relaxed);
                for m in &self.mechs {
                    for s in m.producers() {
                        tel.slot(s).step_tokens.store(0, Relaxed);
                        crate::mechanisms::worker::futex_wake(&tel.slot(s).step_tokens);
                    }
                }
            }
            Command::Step(kind) => {
                let tel = self.sup.telemetry();
                for m in self.mechs.iter().filter(|m| kind.is_none_or(|k| k == m.kind())) {
                    for s in m.producers() {
                        let slot = tel.slot(s);
                        slot.step_tokens.store(slot.step_tokens.load(Relaxed) + 1, Relaxed);
                        crate::mechanisms::worker::futex_wake(&slot.step_tokens);
                    }
                }
            }
        }
        Ok(())
    }

    pub fn knob(&self, id: KnobId) -> u64 {
        self.sup.knobs().get(id)
    }

    /// Step a common rate knob for every mechanism: the common value moves
    /// and every mechanism's own copy goes back to following it.
    pub fn step_knob(&mut self, id: KnobId, up: bool) -> u64 {
        let v = knobs::step_rate(self.knob(id), up);
        self.set_all(id, v);
        v
    }

    /// Set a common knob for every mechanism (own copies back to `global`).
    pub fn set_all(&mut self, id: KnobId, v: u64) {
        self.sup.set_knob(id, v);
        for &kind in &Kind::ALL {
            if let Some(own) = id.own_in(group(kind)) {
                self.sup.set_knob(own, knobs::GLOBAL);
            }
        }
        self.stalled_from.clear();
    }

    /// The value of common knob `id` that `kind`'s processes go by.
    pub fn effective(&self, kind: Kind, id: KnobId) -> u64 {
        self.sup.knobs().effective(group(kind), id)
    }

    /// Set `kind`'s own copy of common knob `id`.
    pub fn set_for(&mut self, kind: Kind, id: KnobId, v: u64) {
        match id.own_in(group(kind)) {
            Some(own) => self.sup.set_knob(own, v),
            None => self.sup.set_knob(id, v),
        }
        if id == KnobId::ConsumerRate {
            self.stalled_from.remove(&kind);
        }
    }

    /// Step a common rate knob of one mechanism only.
    pub fn step_knob_for(&mut self, kind: Kind, id: KnobId, up: bool) -> u64 {
        let v = knobs::step_rate(self.effective(kind, id), up);
        self.set_for(kind, id, v);
        v
    }

    /// Stall `kind`'s consumer (consumer rate 0), or give it back the rate
    /// it had before. Returns whether it is stalled now.
    pub fn toggle_stall(&mut self, kind: Kind) -> bool {
        let now = self.effective(kind, KnobId::ConsumerRate);
        if now == 0 {
            let before = self.stalled_from.get(&kind).copied();
            let global = self.knob(KnobId::ConsumerRate);
            match before {
                Some(v) => self.set_for(kind, KnobId::ConsumerRate, v),
                // Stalled by a knob, not by us: follow the common rate if
                // that one runs, else run at full speed.
                None if global != 0 => self.set_for(kind, KnobId::ConsumerRate, knobs::GLOBAL),
                None => self.set_for(kind, KnobId::ConsumerRate, knobs::RATE_MAX),
            }
            false
        } else {
            self.set_for(kind, KnobId::ConsumerRate, 0);
            self.stalled_from.insert(kind, now);
            true
        }
    }

    /// Stall every consumer, or give them back the common rate they had
    /// before. Returns whether they are stalled now.
    pub fn toggle_stall_all(&mut self) -> bool {
        let kinds = self.kinds();
        let all_stalled = !kinds.is_empty() && kinds.iter().all(|&k| self.effective(k, KnobId::ConsumerRate) == 0);
        if all_stalled {
            let v = self.all_stalled_from.take().filter(|&v| v != 0).unwrap_or(knobs::RATE_MAX);
            self.set_all(KnobId::ConsumerRate, v);
            false
        } else {
            let before = self.knob(KnobId::ConsumerRate);
            self.set_all(KnobId::ConsumerRate, 0);
            self.all_stalled_from = Some(before);
            true
        }
    }

    /// Direct the common knobs a lesson sets to `kinds` only (`None`:
    /// to every mechanism, as `--set` does).
    pub fn set_scope(&mut self, kinds: Option<Vec<Kind>>) {
        self.scope = kinds;
    }

    /// Every knob's value now.
    pub fn knobs(&self) -> crate::knobs::Knobs {
        self.sup.knobs().clone()
    }

    /// Set every knob that differs from `to` back to its value there.
    pub fn restore_knobs(&mut self, to: &crate::knobs::Knobs) {
        for (id, v) in to.iter() {
            if self.sup.knobs().get(id) != v {
                self.sup.set_knob(id, v);
            }
        }
        self.stalled_from.clear();
    }

    /// Stop sampling, kill every process, remove every object.
    pub fn shutdown(mut self) {
        self.monitor.stop();
        self.sup.shutdown();
    }
}

/// A mechanism's own knobs (empty for one this build does not have).
fn group(kind: Kind) -> &'static [KnobId] {
    crate::registry::info(kind).map_or(&[], |i| i.knobs)
}

/// An error as one line, with the limit that explains it: a fork that
/// failed with `EAGAIN` names `RLIMIT_NPROC`, `EMFILE` names
/// `RLIMIT_NOFILE`, `ENOMEM` the address-space limit (`ulimit -v`).
pub fn explain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        match cause.downcast_ref::<std::io::Error>() {
            Some(io) => {
                // A failed spawn: std's fork (or exec) said no.
                if parts.last().is_some_and(|p| p.starts_with("cannot start "))
                    && matches!(io.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM))
                {
                    parts.push(format!("fork failed: {}", io_text(io)));
                } else {
                    parts.push(io_text(io));
                }
                break;
            }
            None => parts.push(strip_os_error(&cause.to_string())),
        }
    }
    parts.join(": ")
}

/// An I/O error without Rust's "(os error N)", with the limit behind it.
pub fn io_text(e: &std::io::Error) -> String {
    use nix::sys::resource::Resource;
    let text = strip_os_error(&e.to_string());
    let limit = match e.raw_os_error() {
        Some(libc::EAGAIN) => limit_text("RLIMIT_NPROC", Resource::RLIMIT_NPROC, 1),
        Some(libc::EMFILE) => limit_text("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE, 1),
        Some(libc::ENOMEM) => limit_text("ulimit -v", Resource::RLIMIT_AS, 1024),
        _ => None,
    };
    match limit {
        Some(l) => format!("{text} ({l})"),
        None => text,
    }
}

/// The least address space (`ulimit -v`) a run is known to work in: below
/// it the supervisor or a worker would die of an allocation abort in the
/// middle of the run, with no word of why. Measured: every mechanism runs
/// at 40 MiB; 64 MiB leaves room for a release build's other layout.
pub const MIN_ADDRESS_SPACE: u64 = 64 << 20;

/// Refuse at once, in one line, a limit too low to run in.
fn check_address_space() -> Result<()> {
    use nix::sys::resource::{getrlimit, Resource};
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_AS) else { return Ok(()) };
    if soft != libc::RLIM_INFINITY && soft < MIN_ADDRESS_SPACE {
        anyhow::bail!(
            "the address-space limit (ulimit -v) is {} KiB; a run needs at least {} KiB (every process maps its threads' stacks and the shared pages): raise it, e.g. `ulimit -v unlimited`",
            soft / 1024,
            MIN_ADDRESS_SPACE / 1024
        );
    }
    Ok(())
}
