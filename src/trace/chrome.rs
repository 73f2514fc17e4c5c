//! A run's records as Trace Event Format events (the JSON both
//! ui.perfetto.dev and chrome://tracing read):
//!
//! - `M` `process_name` / `process_labels` / `process_sort_index` for every
//!   process of the run (named as `ps` shows it), `thread_name` per thread;
//! - `X` (complete) slices: each call a worker made, as long as it was in
//!   it — a `write()` that waited for room lasts as long as it waited;
//! - flow events with one id per message (`s` in the send's slice, `t` at
//!   each hop of an echo, `f` with `"bp":"e"` in the slice that verified
//!   it): one arrow per delivered message;
//! - `C` counters on the supervisor's track: each channel's depth as the
//!   monitor sampled it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde_json::{json, Value};

use super::format::{self, FileHeader, Rec, RecKind};
use super::Run;
use crate::telemetry::Op;

/// What a run turns into.
pub struct Merged {
    /// One JSON object per event, sorted by time (metadata first).
    pub events: Vec<String>,
    /// The run's entry in `otherData.runs`.
    pub meta: Value,
}

/// One thread's records, read back.
pub struct ThreadFile {
    pub header: FileHeader,
    pub recs: Vec<Rec>,
}

/// Read every worker thread's file in `dir`. Untrusted bytes: only regular
/// files of ours, of sane size, named as we name them; a file left half
/// thinned is counted and left out.
pub fn read_files(dir: &Path) -> (Vec<ThreadFile>, u64) {
    let mut files = Vec::new();
    let mut lost = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return (files, lost) };
    let uid = nix::unistd::geteuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(format::PREFIX) || !name.ends_with(format::SUFFIX) {
            continue;
        }
        let Ok(mut f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(e.path())
        else {
            continue;
        };
        let Ok(m) = f.metadata() else { continue };
        if !m.is_file() || m.uid() != uid || m.len() > super::MAX_BUDGET {
            continue;
        }
        let mut b = Vec::with_capacity(m.len() as usize);
        if f.read_to_end(&mut b).is_err() {
            continue;
        }
        match format::parse(&b) {
            Some((h, _)) if h.state != format::STATE_OK => lost += 1,
            Some((header, recs)) => files.push(ThreadFile { header, recs }),
            None => lost += 1,
        }
    }
    files.sort_by_key(|f| (f.header.pid, f.header.tid));
    (files, lost)
}

/// µs since the trace's origin, to the ns.
fn ts(t_ns: u64, origin: u64) -> f64 {
    t_ns.saturating_sub(origin) as f64 / 1000.0
}

fn op(r: &Rec) -> Op {
    Op::from_u64(r.op as u64)
}

/// What a slice is called: the call the worker was making, as its
/// mechanism names it.
pub fn slice_name(kind: &str, r: &Rec) -> String {
    let k = RecKind::from_u8(r.kind);
    if k == Some(RecKind::Wait) {
        return "futex(FUTEX_WAIT)".into();
    }
    let recv = k == Some(RecKind::Recv);
    let o = op(r);
    let name = match kind {
        "pipe" | "fifo" => {
            if recv || o == Op::Read {
                "read()"
            } else {
                "write()"
            }
        }
        "socket" => {
            if recv || o == Op::Read {
                "recv()"
            } else {
                "send()"
            }
        }
        "shm" => {
            if recv || o == Op::Read {
                "copy from slot"
            } else {
                "copy into slot"
            }
        }
        "mq" => {
            if recv || o == Op::Receive {
                "mq_receive()"
            } else if r.ret == libc::ETIMEDOUT {
                "mq_timedsend()"
            } else {
                "mq_send()"
            }
        }
        "mach" => {
            if recv || o == Op::Receive {
                "mach_msg(RCV)"
            } else {
                "mach_msg(SEND)"
            }
        }
        "alpc" => {
            // The client sends and waits for the reply in one call; the
            // server receives in one and replies in the next.
            if recv && r.flags & format::FLAG_ECHO != 0 {
                "reply checked"
            } else if recv {
                "NtAlpcSendWaitReceivePort (receive)"
            } else if o == Op::Receive {
                "NtAlpcSendWaitReceivePort (reply)"
            } else {
                "NtAlpcSendWaitReceivePort"
            }
        }
        _ => crate::telemetry::default_op_name(o),
    };
    name.to_string()
}

fn error_name(kind: &str, ret: i32) -> String {
    if kind == "mach" {
        crate::mechanisms::mach::types::return_name(ret as u32)
    } else {
        format!("{} ({ret})", crate::errno::name(ret))
    }
}

/// The flow id of message (`sender`, `seq`) of run `run`: unique in the
/// trace (a sender id is unique within its run), in hex as both viewers
/// read a string id.
pub fn flow_id(run: usize, sender: u32, seq: u64) -> String {
    let id = ((run as u64 & 0xf) << 60) | ((sender as u64 & 0xff_ffff) << 36) | (seq & ((1 << 36) - 1));
    format!("{id:x}")
}

/// Where a message left a thread (a send) or reached one (a receive).
struct Point {
    t: u64,
    pid: i32,
    tid: u32,
    arrival: bool,
    kind: String,
}

fn ev(v: Value) -> String {
    v.to_string()
}

/// Merge run number `index` (`run`, the monitor's view, and the records its
/// workers left in its directory) into events.
pub fn merge(run: &Run, index: usize, origin: u64) -> Merged {
    let (files, lost) = read_files(&run.dir);
    merge_files(run, &files, lost, index, origin)
}

pub fn merge_files(run: &Run, files: &[ThreadFile], lost: u64, index: usize, origin: u64) -> Merged {
    let sup = run.supervisor;
    // pid → (name as ps shows it, kind, role).
    let mut procs: BTreeMap<i32, (String, String, String)> = BTreeMap::new();
    for (&pid, p) in &run.procs {
        procs.insert(pid, (p.comm.clone(), p.kind.clone(), p.role.clone()));
    }
    for f in files {
        let pid = f.header.pid as i32;
        let e = procs.entry(pid).or_insert_with(|| {
            // Never seen by the monitor: its name says its mechanism.
            let comm = f.header.comm.clone();
            let kind = crate::model::Kind::ALL
                .iter()
                .map(|k| k.name())
                .find(|k| comm.starts_with(&format!("{k}-")))
                .unwrap_or("")
                .to_string();
            (comm, kind, String::new())
        });
        if e.0.is_empty() {
            e.0 = f.header.comm.clone();
        }
    }

    let mut meta_events = Vec::new();
    let mut timed: Vec<(f64, u8, String)> = Vec::new();
    meta_events.push(ev(json!({"ph":"M","name":"process_name","pid":sup,"tid":sup,"args":{"name":"ipcscope"}})));
    meta_events.push(ev(json!({"ph":"M","name":"process_labels","pid":sup,"tid":sup,
        "args":{"labels":format!("run {index}: supervisor and monitor (channel depth counters)")}})));
    meta_events.push(ev(json!({"ph":"M","name":"process_sort_index","pid":sup,"tid":sup,"args":{"sort_index":0}})));
    let kinds: Vec<&str> = crate::model::Kind::ALL.iter().map(|k| k.name()).collect();
    for (&pid, (comm, kind, role)) in &procs {
        let name = if comm.is_empty() { format!("{kind}-{role}") } else { comm.clone() };
        meta_events.push(ev(json!({"ph":"M","name":"process_name","pid":pid,"tid":pid,"args":{"name":name}})));
        let label = [kind.as_str(), role.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>();
        if !label.is_empty() {
            meta_events.push(ev(json!({"ph":"M","name":"process_labels","pid":pid,"tid":pid,
                "args":{"labels":label.join(" ")}})));
        }
        let order = kinds.iter().position(|k| k == kind).map_or(99, |i| i + 1);
        meta_events
            .push(ev(json!({"ph":"M","name":"process_sort_index","pid":pid,"tid":pid,"args":{"sort_index":order}})));
    }

    // Slices, and the points where messages leave and arrive.
    // (run-unique sender, seq) → where the message left and arrived.
    let mut points: BTreeMap<(u32, u64), Vec<Point>> = BTreeMap::new();
    let mut every = 1u64;
    let mut every_by_proc = BTreeMap::new();
    let mut records = 0u64;
    let mut skipped = 0u64;
    let mut threads = BTreeSet::new();
    for f in files {
        let pid = f.header.pid as i32;
        let tid = f.header.tid;
        let kind = procs.get(&pid).map(|p| p.1.clone()).unwrap_or_default();
        every = every.max(f.header.every);
        let e = every_by_proc.entry(pid.to_string()).or_insert(1u64);
        *e = (*e).max(f.header.every);
        records += f.recs.len() as u64;
        skipped += f.header.skipped;
        if threads.insert((pid, tid)) {
            let pname = procs.get(&pid).map(|p| p.0.clone()).unwrap_or_default();
            let tname = if tid as i32 == pid {
                pname
            } else {
                let t = if f.header.thread.is_empty() { pname } else { f.header.thread.clone() };
                format!("{t} (thread {tid})")
            };
            meta_events.push(ev(json!({"ph":"M","name":"thread_name","pid":pid,"tid":tid,"args":{"name":tname}})));
        }
        for r in &f.recs {
            let Some(rk) = RecKind::from_u8(r.kind) else { continue };
            // At least 2 ns long, so a point strictly inside exists.
            let end = r.t_end.max(r.t_start + 2);
            let mut args = serde_json::Map::new();
            match rk {
                RecKind::Send | RecKind::Recv => {
                    args.insert("seq".into(), json!(r.seq));
                    args.insert("sender".into(), json!(format!("{:#x}", r.sender)));
                    args.insert("bytes".into(), json!(r.bytes));
                    if rk == RecKind::Recv && r.flags & format::FLAG_ECHO == 0 && r.sent_ns > 0 {
                        let lat = r.t_end.saturating_sub(r.sent_ns) as f64 / 1000.0;
                        args.insert("latency_us".into(), json!((lat * 10.0).round() / 10.0));
                    }
                    if r.flags & format::FLAG_ECHO != 0 {
                        args.insert("echo".into(), json!(true));
                    }
                }
                RecKind::Fail => {
                    args.insert("error".into(), json!(error_name(&kind, r.ret)));
                }
                RecKind::Wait => {}
            }
            args.insert("in_call_us".into(), json!(((end - r.t_start) as f64 / 100.0).round() / 10.0));
            let name = slice_name(&kind, r);
            let t = ts(r.t_start, origin);
            timed.push((
                t,
                1,
                ev(json!({"ph":"X","name":name,"cat":kind,"pid":pid,"tid":tid,"ts":t,
                    "dur":ts(end, r.t_start),"args":args})),
            ));
            match rk {
                // Leaves just after the send begins …
                RecKind::Send => points.entry((r.sender, r.seq)).or_default().push(Point {
                    t: r.t_start + 1,
                    pid,
                    tid,
                    arrival: false,
                    kind: kind.clone(),
                }),
                // … arrives just before the receiver verified it.
                RecKind::Recv => points.entry((r.sender, r.seq)).or_default().push(Point {
                    t: end - 1,
                    pid,
                    tid,
                    arrival: true,
                    kind: kind.clone(),
                }),
                _ => {}
            }
        }
    }

    // One arrow (a chain, for an echo) per message seen leaving and arriving.
    let mut flows_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for ((sender, seq), mut pts) in points {
        pts.sort_by_key(|p| p.t);
        // A reply still on its way when the run ended: the arrow ends where
        // the message last arrived.
        while pts.last().is_some_and(|p| !p.arrival) {
            pts.pop();
        }
        let (Some(first), Some(last)) = (pts.first(), pts.last()) else { continue };
        // From a send to a receive, and through another process: with
        // sampling, a message one process kept and another did not leaves
        // only part of its way, which is no arrow.
        if pts.len() < 2 || first.arrival || !last.arrival || pts.iter().all(|p| p.pid == first.pid) {
            continue;
        }
        let kind = first.kind.clone();
        *flows_by_kind.entry(kind.clone()).or_default() += 1;
        let id = flow_id(index, sender, seq);
        let n = pts.len();
        for (i, Point { t, pid, tid, .. }) in pts.into_iter().enumerate() {
            let t = ts(t, origin);
            let e = match i {
                0 => json!({"ph":"s","name":"message","cat":kind,"id":id,"pid":pid,"tid":tid,"ts":t}),
                i if i == n - 1 => {
                    json!({"ph":"f","bp":"e","name":"message","cat":kind,"id":id,"pid":pid,"tid":tid,"ts":t})
                }
                _ => json!({"ph":"t","name":"message","cat":kind,"id":id,"pid":pid,"tid":tid,"ts":t}),
            };
            timed.push((t, 2, ev(e)));
        }
    }

    for c in &run.counters {
        let t = ts(c.t_ns, origin);
        timed.push((
            t,
            0,
            ev(json!({"ph":"C","name":format!("{} channel", c.kind),"pid":sup,"tid":sup,"ts":t,
                "args":{c.unit: c.value}})),
        ));
    }

    // Time order (slices before the flow points at the same instant).
    timed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut events = meta_events;
    events.extend(timed.into_iter().map(|t| t.2));

    let delivered: BTreeMap<&String, &u64> = run.delivered.iter().collect();
    let meta = json!({
        "run": index,
        "supervisor_pid": sup,
        "every_nth": every,
        "every_nth_by_pid": every_by_proc,
        "records": records,
        "records_not_kept": skipped,
        "thread_files": files.len(),
        "thread_files_lost": lost,
        "flows_by_mechanism": flows_by_kind,
        "delivered_by_mechanism": delivered,
        "depth_samples_dropped": run.dropped_counters,
    });
    Merged { events, meta }
}
