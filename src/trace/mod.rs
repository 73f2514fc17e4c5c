//! `--trace FILE`: the run as a Chrome trace (Trace Event Format JSON, which
//! ui.perfetto.dev and chrome://tracing both open).
//!
//! While a traced run goes, each worker thread appends fixed-size records
//! (`format`) to a file of its own in the run's directory (`hook`), and the
//! monitor hands every snapshot to `observe` (the channel depths, and who
//! each process is). When the run ends, `run_ended` merges it all into the
//! trace file (`chrome`). The file is a complete JSON document after every
//! run, so a TUI session that plays several lessons leaves one trace with
//! every run in it.
//!
//! Bounded: a thread's file holds `IPCSCOPE_TRACE_BUDGET` bytes (512 KiB by
//! default); once full, the thread keeps every 2nd message, then every 4th,
//! … (thinning what it already has the same way), and the trace's metadata
//! says N. Messages are kept by sequence number, so a sender and its
//! receiver keep the same ones.

pub mod chrome;
pub mod format;
pub mod hook;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::snapshot::Snapshot;

/// Set for the workers of a traced run: the byte budget of each thread's file.
pub const ENV_TRACE: &str = "IPCSCOPE_TRACE";
/// The user's override of that budget (bytes per thread).
pub const ENV_TRACE_BUDGET: &str = "IPCSCOPE_TRACE_BUDGET";
pub const DEFAULT_BUDGET: u64 = 512 << 10;
/// The header and 82 records.
pub const MIN_BUDGET: u64 = 4096;
pub const MAX_BUDGET: u64 = 64 << 20;
/// Depth samples kept per run (at 10 Hz and seven mechanisms: over an hour).
const MAX_COUNTER_SAMPLES: usize = 300_000;

static ON: AtomicBool = AtomicBool::new(false);
static TRACER: Mutex<Option<Tracer>> = Mutex::new(None);

fn tracer() -> std::sync::MutexGuard<'static, Option<Tracer>> {
    TRACER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every run of this process is traced into `path`. The file is created
/// (a regular file only, as `--record`) and holds an empty trace at once.
pub fn start(path: &Path) -> Result<()> {
    let budget = match std::env::var(ENV_TRACE_BUDGET) {
        Ok(v) => {
            v.trim().parse::<u64>().ok().filter(|b| (MIN_BUDGET..=MAX_BUDGET).contains(b)).with_context(|| {
                format!("{ENV_TRACE_BUDGET}={v:?}: give bytes per thread, {MIN_BUDGET}..={MAX_BUDGET}")
            })?
        }
        Err(_) => DEFAULT_BUDGET,
    };
    let file = crate::userfile::create_regular(path)?;
    let mut out = Output { file, path: path.to_path_buf(), events_end: 0, any: false };
    out.begin().with_context(|| format!("cannot write trace {}", path.display()))?;
    let mut t = Tracer { out, budget, origin_ns: None, runs: Vec::new(), active: Vec::new(), problem: None };
    t.write_closing().with_context(|| format!("cannot write trace {}", path.display()))?;
    *tracer() = Some(t);
    ON.store(true, Relaxed);
    Ok(())
}

/// Tracing was asked for in this process.
pub fn enabled() -> bool {
    ON.load(Relaxed)
}

/// After the last run: the first thing that went wrong writing the trace.
pub fn finish() -> Result<()> {
    ON.store(false, Relaxed);
    let Some(t) = tracer().take() else { return Ok(()) };
    match t.problem {
        Some(p) => anyhow::bail!("trace {}: {p}", t.out.path.display()),
        None => Ok(()),
    }
}

/// A run began (the supervisor made its directory and telemetry page;
/// `t0_us` is the page's start, CLOCK_MONOTONIC µs).
pub fn run_started(dir: &Path, t0_us: u64) {
    if !enabled() {
        return;
    }
    if let Some(t) = tracer().as_mut() {
        t.origin_ns.get_or_insert(t0_us * 1000);
        t.active.push(Run {
            dir: dir.to_path_buf(),
            supervisor: std::process::id() as i32,
            procs: BTreeMap::new(),
            counters: Vec::new(),
            dropped_counters: 0,
            delivered: BTreeMap::new(),
        });
    }
}

/// The environment a traced run's worker gets.
pub fn worker_env(cmd: &mut std::process::Command) {
    if !enabled() {
        return;
    }
    if let Some(t) = tracer().as_ref() {
        cmd.env(ENV_TRACE, t.budget.to_string());
    }
}

/// A process as the monitor saw it.
#[derive(Debug, Clone)]
pub struct ProcSeen {
    pub kind: String,
    pub role: String,
    /// `comm`, read while it ran (what `ps` shows).
    pub comm: String,
}

/// One depth sample of a channel.
#[derive(Debug, Clone)]
pub struct Counter {
    pub t_ns: u64,
    pub kind: &'static str,
    pub unit: &'static str,
    pub value: u64,
}

/// What the monitor tells about a traced run, sample by sample.
pub struct Run {
    pub dir: PathBuf,
    pub supervisor: i32,
    pub procs: BTreeMap<i32, ProcSeen>,
    pub counters: Vec<Counter>,
    pub dropped_counters: u64,
    /// The last `integrity.delivered` of each mechanism.
    pub delivered: BTreeMap<String, u64>,
}

/// Every snapshot of a traced run passes here (on the monitor thread).
pub fn observe(snap: &Snapshot) {
    if !enabled() {
        return;
    }
    let now = crate::clock::now_ns();
    let mut g = tracer();
    let Some(t) = g.as_mut() else { return };
    let Some(run) = t.active.iter_mut().find(|r| r.dir.as_os_str() == snap.run.runtime_dir.as_str()) else { return };
    for m in &snap.mechanisms {
        let kind = m.kind.name();
        for p in m.processes.iter().filter(|p| p.pid > 0) {
            run.procs.entry(p.pid).or_insert_with(|| ProcSeen {
                kind: kind.to_string(),
                role: p.role.clone(),
                comm: std::fs::read_to_string(format!("/proc/{}/comm", p.pid))
                    .map(|c| c.trim_end().to_string())
                    .unwrap_or_default(),
            });
        }
        if run.counters.len() < MAX_COUNTER_SAMPLES {
            let value = m.channel.depth + m.channel.over;
            run.counters.push(Counter { t_ns: now, kind, unit: m.channel.unit.as_str(), value });
        } else {
            run.dropped_counters += 1;
        }
        run.delivered.insert(kind.to_string(), m.integrity.delivered);
    }
}

/// The run in `dir` is over and its workers are gone: merge its records
/// into the trace. Called by the supervisor before it removes the run's
/// directory; a second call for the same run does nothing.
pub fn run_ended(dir: &Path) {
    if !enabled() {
        return;
    }
    let mut g = tracer();
    let Some(t) = g.as_mut() else { return };
    let Some(i) = t.active.iter().position(|r| r.dir == dir) else { return };
    let run = t.active.remove(i);
    let index = t.runs.len();
    let origin = t.origin_ns.unwrap_or(0);
    let merged = chrome::merge(&run, index, origin);
    t.runs.push(merged.meta);
    if let Err(e) = t.out.append(&merged.events).and_then(|()| t.write_closing()) {
        t.problem.get_or_insert(format!("cannot write: {e}"));
    }
}

struct Tracer {
    out: Output,
    budget: u64,
    /// ts 0 of the trace: the first traced run's start, CLOCK_MONOTONIC ns.
    origin_ns: Option<u64>,
    runs: Vec<serde_json::Value>,
    active: Vec<Run>,
    problem: Option<String>,
}

impl Tracer {
    fn write_closing(&mut self) -> std::io::Result<()> {
        let every = self.runs.iter().filter_map(|r| r["every_nth"].as_u64()).max().unwrap_or(1);
        let other = serde_json::json!({
            "producer": format!("ipcscope {}", env!("CARGO_PKG_VERSION")),
            "clock": "CLOCK_MONOTONIC of the worker processes themselves",
            "ts_origin_ns": self.origin_ns.unwrap_or(0),
            "ts_note": "ts = (CLOCK_MONOTONIC - ts_origin_ns) / 1000, in microseconds",
            "every_nth": every,
            "sampling": if every > 1 {
                format!("sampled: every {every}th message kept (a thread's file filled up)")
            } else {
                "every message".to_string()
            },
            "flow_id": "id = hex(run << 60 | sender << 36 | seq mod 2^36), cat = mechanism",
            "flows": "one arrow per message: s in the slice that sent it, t at each hop of an echo (a Mach reply \
                      through the send-once port, an ALPC reply), f (bp=e) in the slice that verified it; drawn \
                      when every process it passed through kept it",
            "slices": "X: a call from the moment the worker entered it until it returned (the time it was blocked \
                       included); args.latency_us: send stamp to verification",
            "counters": "C on the ipcscope (supervisor) track: each channel's depth as the monitor sampled it",
            "budget_bytes_per_thread": self.budget,
            "runs": self.runs,
        });
        self.out.close(&other)
    }
}

/// The trace file: `{"traceEvents":[` events `],"otherData":{…}}`, kept a
/// whole JSON document after every write (the closing is rewritten).
struct Output {
    file: File,
    path: PathBuf,
    /// Where the closing begins.
    events_end: u64,
    any: bool,
}

impl Output {
    fn begin(&mut self) -> std::io::Result<()> {
        self.file.write_all(b"{\"traceEvents\":[")?;
        self.events_end = self.file.stream_position()?;
        Ok(())
    }

    fn append(&mut self, events: &[String]) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(self.events_end))?;
        let mut w = std::io::BufWriter::new(&mut self.file);
        for e in events {
            w.write_all(if self.any { b",\n" } else { b"\n" })?;
            w.write_all(e.as_bytes())?;
            self.any = true;
        }
        w.flush()?;
        drop(w);
        self.events_end = self.file.stream_position()?;
        Ok(())
    }

    fn close(&mut self, other: &serde_json::Value) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(self.events_end))?;
        let mut tail = b"\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":".to_vec();
        tail.extend(serde_json::to_vec(other)?);
        tail.extend(b"}\n");
        self.file.write_all(&tail)?;
        let end = self.file.stream_position()?;
        self.file.set_len(end)?;
        self.file.flush()
    }
}
