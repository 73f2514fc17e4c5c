//! The measured figures of each mechanism (`model::measured`), filled into
//! every snapshot on the monitor thread:
//!
//! - `latency_us`: the receivers' histograms in the telemetry page (each
//!   verified message timed from its header's send stamp), over the last
//!   second, as percentiles (hdrhistogram) and a log2 row for a heat map;
//! - `cost`: per message delivered in the last second — the workers' own
//!   system-call (and emulated-trap) counts, /proc/PID/io `syscr+syscw`,
//!   /proc/PID/task/*/status context switches, and the bytes the kernel
//!   copied or mapped (the workers' byte counts, or the emulated kernels'
//!   own counters).
//!
//! The processes counted are the mechanism's workers (sender and
//! receiver); an emulated kernel process is the kernel, not a party.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;

use crate::latency::{bucket_mid, BUCKETS};
use crate::model::measured::{Cost, Latency};
use crate::model::snapshot::{Detail, MechanismSnapshot, Snapshot};
use crate::model::Kind;
use crate::telemetry::{Telemetry, MAX_SLOTS};

/// The window both figures cover.
pub const WINDOW_MS: u64 = 1000;
/// The figures are worked out (and /proc read) at most this often.
const REFRESH_MS: u64 = 250;
/// Seconds of latency rows kept for the heat map (`Latency::seconds`).
pub const HEAT_SECONDS: usize = 8;

#[derive(Default)]
pub struct Meter {
    slots: HashMap<usize, SlotLatency>,
    costs: HashMap<Kind, CostWindow>,
    /// Per-process and per-slot counters last read, to add up deltas.
    last: HashMap<(Kind, Key), u64>,
    last_cost_ms: Option<u64>,
    /// /proc files of each process measured, kept open between refreshes.
    procs: HashMap<i32, ProcFiles>,
}

/// A process's /proc/PID/io and its threads' status files, opened once and
/// read again at offset 0 (procfs makes them afresh on each read): the
/// path lookups and opens were most of the meter's system calls. The
/// thread list is read again once a second; a file outlives its task
/// harmlessly (reads fail) and never follows a reused pid.
struct ProcFiles {
    io: Option<std::fs::File>,
    tasks: Vec<(i32, std::fs::File)>,
    listed_ms: u64,
    /// Refresh in which it was last wanted; others are closed.
    wanted: u64,
}

/// How often a process's thread list is read again, ms.
const TASKS_EVERY_MS: u64 = 1000;

impl ProcFiles {
    fn open(pid: i32, t: u64) -> ProcFiles {
        let mut f = ProcFiles {
            io: std::fs::File::open(format!("/proc/{pid}/io")).ok(),
            tasks: Vec::new(),
            listed_ms: t,
            wanted: 0,
        };
        f.list(pid, t);
        f
    }

    fn list(&mut self, pid: i32, t: u64) {
        self.listed_ms = t;
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            self.tasks.clear();
            return;
        };
        let mut tids: Vec<i32> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
        tids.sort_unstable();
        let mut old = std::mem::take(&mut self.tasks);
        for tid in tids {
            match old.iter().position(|(t, _)| *t == tid) {
                Some(i) => self.tasks.push(old.swap_remove(i)),
                None => {
                    if let Ok(f) = std::fs::File::open(format!("/proc/{pid}/task/{tid}/status")) {
                        self.tasks.push((tid, f));
                    }
                }
            }
        }
    }
}

/// The whole of a /proc file read from offset 0 into `buf`.
fn read_proc<'a>(f: &std::fs::File, buf: &'a mut [u8]) -> Option<&'a str> {
    use std::os::unix::fs::FileExt;
    let n = f.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok().filter(|s| !s.is_empty())
}

fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok())
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// (slot, generation, which counter)
    Slot(usize, u64, u8),
    /// (pid, which)
    Proc(i32, u8),
    /// (tid, which)
    Task(i32, u8),
    /// (which): the mechanism's own (delivered, kernel counters)
    Mech(u8),
}

/// One slot's latency samples, per monitor sample.
#[derive(Default)]
struct SlotLatency {
    generation: u64,
    prev: Vec<u64>,
    window: VecDeque<Tick>,
}

/// What one slot timed between two samples: (bucket, count) pairs, and the
/// largest value.
struct Tick {
    t: u64,
    delta: Vec<(u16, u64)>,
    max: u64,
}

#[derive(Default, Clone, Copy, Debug)]
struct Totals {
    delivered: u64,
    syscalls: u64,
    traps: u64,
    rw: u64,
    rw_seen: bool,
    vol: u64,
    invol: u64,
    ctx_seen: bool,
    moved: u64,
    copied: u64,
    mapped: u64,
}

#[derive(Default)]
struct CostWindow {
    totals: Totals,
    samples: VecDeque<(u64, Totals)>,
    last: Option<Cost>,
    latency: Option<Latency>,
    /// One `log2_us` row a second, and when the last was taken.
    seconds: VecDeque<Vec<u64>>,
    second_t: Option<u64>,
}

fn emulated(kind: Kind) -> bool {
    matches!(kind, Kind::Mach | Kind::Alpc)
}

impl Meter {
    /// Fill `latency_us` and `cost` of every mechanism of `snap`.
    pub fn fill(&mut self, snap: &mut Snapshot, tel: &Telemetry) {
        let t = snap.t_ms;
        let mut by_pid = HashMap::new();
        for i in 0..MAX_SLOTS {
            let s = tel.slot(i);
            let pid = s.pid.load(Relaxed) as i32;
            if pid > 0 {
                by_pid.insert(pid, i);
                self.sample_latency(tel, i, t);
            }
        }
        // Both figures change a few times a second, not at every sample: a
        // recording stays small, and a second's window moves little in 0.1 s.
        let refresh = self.last_cost_ms.is_none_or(|l| t.saturating_sub(l) >= REFRESH_MS || t < l);
        if refresh {
            self.last_cost_ms = Some(t);
        }
        for m in &mut snap.mechanisms {
            if refresh {
                let slots: Vec<usize> = parties(m).filter_map(|pid| by_pid.get(&pid).copied()).collect();
                let l = self.latency(&slots, t);
                let c = self.cost(m, tel, &slots, t);
                let w = self.costs.entry(m.kind).or_default();
                w.last = c;
                // A heat-map row a second (a clock that went back: a new run).
                if w.second_t.is_none_or(|s| t >= s + WINDOW_MS || t < s) {
                    if w.second_t.is_some_and(|s| t < s) {
                        w.seconds.clear();
                    }
                    w.second_t = Some(t);
                    w.seconds.push_back(l.as_ref().map(|l| l.log2_us.clone()).unwrap_or_default());
                    while w.seconds.len() > HEAT_SECONDS {
                        w.seconds.pop_front();
                    }
                }
                w.latency = l.map(|l| Latency { seconds: w.seconds.iter().cloned().collect(), ..l });
            }
            let w = self.costs.get(&m.kind);
            m.cost = w.and_then(|w| w.last.clone());
            m.latency_us = w.and_then(|w| w.latency.clone());
        }
        if refresh {
            self.procs.retain(|_, f| f.wanted == t);
        }
    }

    fn sample_latency(&mut self, tel: &Telemetry, i: usize, t: u64) {
        let s = tel.slot(i);
        let generation = s.generation.load(Relaxed);
        let e = self.slots.entry(i).or_default();
        if e.generation != generation || e.prev.len() != BUCKETS {
            *e = SlotLatency { generation, prev: vec![0; BUCKETS], window: VecDeque::new() };
        }
        let now = s.lat.counts();
        let mut delta = Vec::new();
        for (b, (&n, p)) in now.iter().zip(e.prev.iter_mut()).enumerate() {
            if n > *p {
                delta.push((b as u16, n - *p));
            }
            *p = n;
        }
        let max = s.lat.take_max();
        e.window.push_back(Tick { t, delta, max });
        while e.window.front().is_some_and(|w| w.t + WINDOW_MS <= t || w.t > t) {
            e.window.pop_front();
        }
    }

    fn latency(&self, slots: &[usize], t: u64) -> Option<Latency> {
        let mut counts = vec![0u64; BUCKETS];
        let mut max = 0u64;
        let mut since = t;
        for s in slots {
            let Some(l) = self.slots.get(s) else { continue };
            for tick in &l.window {
                since = since.min(tick.t);
                max = max.max(tick.max);
                for &(b, n) in &tick.delta {
                    counts[b as usize] += n;
                }
            }
        }
        let count: u64 = counts.iter().sum();
        if count == 0 {
            return None;
        }
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1 << 40, 2).ok()?;
        let mut log2 = Vec::new();
        for (b, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let mid = bucket_mid(b).max(1);
            h.saturating_record_n(mid, n);
            let us = (mid / 1000).max(1);
            let i = 63 - us.leading_zeros() as usize;
            if log2.len() <= i {
                log2.resize(i + 1, 0);
            }
            log2[i] += n;
        }
        let us = |ns: u64| (ns as f64 / 100.0).round() / 10.0;
        let q = |p: f64| us(h.value_at_quantile(p));
        // The bucket's middle can pass the true largest value: never report
        // a percentile above the maximum.
        let max_us = us(max.max(1));
        Some(Latency {
            p50: q(0.50).min(max_us),
            p90: q(0.90).min(max_us),
            p99: q(0.99).min(max_us),
            max: max_us,
            count,
            window_ms: (t - since).clamp(1, WINDOW_MS).div_ceil(100) * 100,
            log2_us: log2,
            seconds: Vec::new(),
        })
    }

    /// Add the change of a counter since its last reading to `total`. A
    /// counter seen for the first time only sets its baseline; one that went
    /// down (a restart) starts again from its new value.
    fn feed(&mut self, kind: Kind, key: Key, value: u64) -> u64 {
        match self.last.insert((kind, key), value) {
            Some(prev) if value >= prev => value - prev,
            Some(_) => value,
            None => 0,
        }
    }

    fn cost(&mut self, m: &MechanismSnapshot, tel: &Telemetry, slots: &[usize], t: u64) -> Option<Cost> {
        let kind = m.kind;
        let mut d = Totals { rw_seen: true, ctx_seen: true, ..Totals::default() };
        d.delivered = self.feed(kind, Key::Mech(0), m.integrity.delivered);
        for &i in slots {
            let s = tel.slot(i);
            let g = s.generation.load(Relaxed);
            d.syscalls += self.feed(kind, Key::Slot(i, g, 0), s.syscalls.load(Relaxed));
            d.traps += self.feed(kind, Key::Slot(i, g, 1), s.traps.load(Relaxed));
            let moved = s.sent_bytes.load(Relaxed) + s.recv_bytes.load(Relaxed);
            d.moved += self.feed(kind, Key::Slot(i, g, 2), moved);
        }
        for pid in parties(m).collect::<Vec<_>>() {
            let files = self.procs.entry(pid).or_insert_with(|| ProcFiles::open(pid, t));
            files.wanted = t;
            if t.saturating_sub(files.listed_ms) >= TASKS_EVERY_MS || t < files.listed_ms {
                files.list(pid, t);
            }
            let (rw, tasks) = (proc_io(files), ctx_switches(files));
            match rw {
                Some(rw) => d.rw += self.feed(kind, Key::Proc(pid, 0), rw),
                None => d.rw_seen = false,
            }
            if tasks.is_empty() {
                d.ctx_seen = false;
            }
            for (tid, vol, invol) in tasks {
                d.vol += self.feed(kind, Key::Task(tid, 0), vol);
                d.invol += self.feed(kind, Key::Task(tid, 1), invol);
            }
        }
        match &m.detail {
            Detail::Mach(md) => {
                // Out-of-line memory sent without `deallocate` is copied once
                // by the kernel (a snapshot the sender cannot change).
                d.copied = 2 * self.feed(kind, Key::Mech(1), md.counters.bytes_inline)
                    + self.feed(kind, Key::Mech(3), md.counters.bytes_ool_copied);
                d.mapped = self.feed(kind, Key::Mech(2), md.counters.bytes_ool);
            }
            Detail::Alpc(ad) => {
                if let Some(st) = &ad.state {
                    let c = st.totals;
                    let direct = c.direct_read_bytes + c.direct_write_bytes;
                    d.copied =
                        2 * self.feed(kind, Key::Mech(1), c.copied_bytes) + self.feed(kind, Key::Mech(3), direct);
                    d.mapped = self.feed(kind, Key::Mech(2), c.section_bytes);
                }
            }
            _ => {}
        }

        let w = self.costs.entry(kind).or_default();
        let tot = &mut w.totals;
        tot.delivered += d.delivered;
        tot.syscalls += d.syscalls;
        tot.traps += d.traps;
        tot.rw += d.rw;
        tot.vol += d.vol;
        tot.invol += d.invol;
        tot.moved += d.moved;
        tot.copied += d.copied;
        tot.mapped += d.mapped;
        tot.rw_seen = d.rw_seen;
        tot.ctx_seen = d.ctx_seen;
        let now = *tot;
        w.samples.push_back((t, now));
        // Keep one sample at or before the window's start as the base.
        while w.samples.len() > 2 && w.samples[1].0 + WINDOW_MS <= t {
            w.samples.pop_front();
        }
        w.samples.retain(|s| s.0 <= t);
        let &(t0, base) = w.samples.front()?;
        let msgs = now.delivered - base.delivered;
        let per = |x: u64| if msgs > 0 { Some(round1(x as f64 / msgs as f64)) } else { None };
        let emu = emulated(kind);
        let syscalls = per(now.syscalls - base.syscalls);
        let moved = per(now.moved - base.moved);
        let mut c = Cost {
            per: if emu { "round trip" } else { "message" }.into(),
            messages: msgs,
            window_ms: (t - t0).div_ceil(10) * 10,
            syscalls_per_msg: if emu { per(now.traps - base.traps) } else { syscalls },
            source: if emu { "emulated kernel traps" } else { "worker count" }.into(),
            host_syscalls_per_msg: if emu { syscalls } else { None },
            proc_io_rw_per_msg: if now.rw_seen { per(now.rw - base.rw) } else { None },
            ctx_switches_per_msg: if now.ctx_seen { per(now.vol + now.invol - base.vol - base.invol) } else { None },
            voluntary_per_msg: if now.ctx_seen { per(now.vol - base.vol) } else { None },
            involuntary_per_msg: if now.ctx_seen { per(now.invol - base.invol) } else { None },
            ..Cost::default()
        };
        match kind {
            Kind::Pipe | Kind::Fifo | Kind::Mq | Kind::Socket => {
                c.bytes_copied_per_msg = moved;
                c.bytes_source = "2 × payload: the sending call copies each byte into the kernel, the receiving \
                                  call copies it out (the workers' byte counts)"
                    .into();
            }
            Kind::Shm => {
                c.bytes_copied_per_msg = per(0);
                c.user_bytes_copied_per_msg = moved;
                c.bytes_source = "no copy by the kernel: the producer copies each message into a slot and the \
                                  consumer out of it (the workers' byte counts)"
                    .into();
            }
            Kind::Mach => {
                c.bytes_copied_per_msg = per(now.copied - base.copied);
                c.bytes_mapped_per_msg = per(now.mapped - base.mapped);
                c.bytes_source = "the emulated Mach kernel's counters: inline bodies copied in at send and out \
                                  at receive (2 × bytes_inline) plus out-of-line memory copied once without deallocate \
                                  (bytes_ool_copied); out-of-line memory mapped (bytes_ool)"
                    .into();
            }
            Kind::Alpc => {
                c.bytes_copied_per_msg = per(now.copied - base.copied);
                c.bytes_mapped_per_msg = per(now.mapped - base.mapped);
                c.bytes_source = "the emulated NT kernel's path counters: queue-copied payloads in and out \
                                  (2 × copied_bytes) plus direct reads and writes of the client's memory; \
                                  section payloads mapped"
                    .into();
            }
        }
        Some(c)
    }
}

/// One decimal: what a reader compares, and a recording stays small (a
/// figure that flickers in its second decimal would change every sample).
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The pids of a mechanism's parties: its workers, not an emulated kernel.
fn parties(m: &MechanismSnapshot) -> impl Iterator<Item = i32> + '_ {
    m.processes.iter().filter(|p| p.pid > 0 && p.role != "kernel").map(|p| p.pid)
}

/// `syscr + syscw` of /proc/PID/io (the whole process).
fn proc_io(f: &ProcFiles) -> Option<u64> {
    let mut buf = [0u8; 512];
    let text = read_proc(f.io.as_ref()?, &mut buf)?;
    Some(field(text, "syscr:")? + field(text, "syscw:")?)
}

/// Every thread's (tid, voluntary, involuntary) context switches.
/// /proc/PID/status counts the main thread only, hence each task's own.
fn ctx_switches(f: &ProcFiles) -> Vec<(i32, u64, u64)> {
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    for (tid, file) in &f.tasks {
        let Some(text) = read_proc(file, &mut buf) else { continue };
        if let (Some(v), Some(i)) =
            (field(text, "voluntary_ctxt_switches:"), field(text, "nonvoluntary_ctxt_switches:"))
        {
            out.push((*tid, v, i));
        }
    }
    out
}
