//! `--trace FILE`, measured latency and cost, on real processes: the trace
//! is a well-formed Trace Event Format document (checked the way Perfetto
//! and chrome://tracing read it), every process of the snapshot has a
//! track, nearly every delivered message an arrow; every mechanism reports
//! its one-way latency and what a message costs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::{assert_run_gone, ipcscope, Scratch, EXE};
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::Snapshot;
use serde_json::Value;

/// `ipcscope snapshot … --trace FILE --format json`, with extra environment.
fn traced_snapshot(
    mechanisms: &str,
    duration: &str,
    sets: &[&str],
    trace: &std::path::Path,
    env: &[(&str, &str)],
) -> (Snapshot, Value) {
    let mut args = vec!["snapshot", "--mechanisms", mechanisms, "--duration", duration, "--format", "json"];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let t = trace.to_str().unwrap();
    args.extend(["--trace", t]);
    let _g = common::serial();
    let mut cmd = Command::new(EXE);
    cmd.args(&args).env_remove("IPCSCOPE_SUPERVISOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ipcscope");
    assert!(out.status.success(), "ipcscope {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let snap: Snapshot = serde_json::from_slice(&out.stdout).expect("snapshot JSON");
    let trace: Value = serde_json::from_slice(&std::fs::read(trace).expect("trace written")).expect("trace is JSON");
    (snap, trace)
}

/// A µs timestamp as Perfetto reads it: rounded to the ns.
fn ns(v: &Value) -> i64 {
    (v.as_f64().expect("a number") * 1000.0).round() as i64
}

/// What the structure check found.
struct Checked {
    /// Flow ids with their chain, by mechanism (`cat`).
    flows: BTreeMap<String, BTreeSet<String>>,
    process_names: BTreeMap<i64, String>,
}

/// Check the document against the Trace Event Format as both viewers read
/// it; panics naming the first thing wrong.
fn check_structure(t: &Value) -> Checked {
    let events = t["traceEvents"].as_array().expect("traceEvents is an array");
    assert!(t["otherData"].is_object(), "otherData (the trace's metadata) missing");
    let legal: BTreeSet<&str> = ["X", "M", "s", "t", "f", "C"].into();
    let mut slices: BTreeMap<(i64, i64), Vec<(i64, i64)>> = BTreeMap::new();
    let mut process_names = BTreeMap::new();
    let mut last_ts = i64::MIN;
    for e in events {
        let ph = e["ph"].as_str().expect("every event has a ph");
        assert!(legal.contains(ph), "illegal ph {ph}: {e}");
        assert!(e["pid"].is_i64(), "pid missing: {e}");
        if ph == "M" {
            assert!(e["args"]["name"].is_string() || e["name"] != "process_name", "{e}");
            if e["name"] == "process_name" {
                process_names.insert(e["pid"].as_i64().unwrap(), e["args"]["name"].as_str().unwrap().to_string());
            }
            continue;
        }
        assert!(e["tid"].is_i64(), "tid missing: {e}");
        let ts = ns(&e["ts"]);
        // Sorted by time: every track's events are in order.
        assert!(ts >= last_ts, "events out of time order at {e}");
        last_ts = ts;
        match ph {
            "X" => {
                let dur = ns(&e["dur"]);
                assert!(dur >= 0 && e["name"].is_string(), "{e}");
                let key = (e["pid"].as_i64().unwrap(), e["tid"].as_i64().unwrap());
                slices.entry(key).or_default().push((ts, ts + dur));
            }
            "C" => {
                let args = e["args"].as_object().expect("a counter has args");
                assert!(!args.is_empty() && args.values().all(Value::is_number), "{e}");
            }
            _ => {
                assert!(e["id"].is_string() && e["cat"].is_string() && e["name"] == "message", "{e}");
            }
        }
    }
    // One thread's slices nest or follow each other, never half overlap.
    for (track, v) in &slices {
        for w in v.windows(2) {
            let ((a0, a1), (b0, b1)) = (w[0], w[1]);
            assert!(b0 >= a1 || b1 <= a1, "slices half overlap on {track:?}: {a0}..{a1} and {b0}..{b1}");
        }
    }
    // Every flow: one s first, one f last (bound to its enclosing slice),
    // t between, in time order, each point inside a slice of its thread.
    let mut chains: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for e in events.iter().filter(|e| matches!(e["ph"].as_str(), Some("s" | "t" | "f"))) {
        chains.entry((e["cat"].as_str().unwrap().into(), e["id"].as_str().unwrap().into())).or_default().push(e);
    }
    let mut flows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((cat, id), pts) in &chains {
        let phs: String = pts.iter().map(|e| e["ph"].as_str().unwrap()).collect();
        assert!(phs.starts_with('s') && phs.ends_with('f') && phs.len() >= 2, "flow {cat}/{id} is {phs}");
        assert_eq!(phs.matches('s').count() + phs.matches('f').count(), 2, "flow {cat}/{id} is {phs}");
        assert_eq!(pts.last().unwrap()["bp"], "e", "flow {cat}/{id} ends unbound");
        let mut t = i64::MIN;
        for p in pts {
            let ts = ns(&p["ts"]);
            assert!(ts >= t, "flow {cat}/{id} goes back in time");
            t = ts;
            let key = (p["pid"].as_i64().unwrap(), p["tid"].as_i64().unwrap());
            let inside = slices.get(&key).is_some_and(|v| v.iter().any(|&(a, b)| a < ts && ts < b));
            assert!(inside, "flow {cat}/{id} point {p} is in no slice of its thread");
        }
        let pids: BTreeSet<i64> = pts.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
        assert!(pids.len() >= 2, "flow {cat}/{id} never leaves its process");
        flows.entry(cat.clone()).or_default().insert(id.clone());
    }
    Checked { flows, process_names }
}

#[test]
fn snapshot_trace_has_every_process_and_an_arrow_per_message() {
    let dir = Scratch::new("trace-all");
    let path = dir.path("t.json");
    let (snap, trace) = traced_snapshot("all", "3", &["producer.rate=200"], &path, &[]);
    let c = check_structure(&trace);

    // A process track for every process of the snapshot, named as ps shows it.
    for m in &snap.mechanisms {
        for p in m.processes.iter().filter(|p| p.pid > 0) {
            let name = c.process_names.get(&(p.pid as i64));
            assert!(name.is_some(), "{} {} (pid {}) has no process track", m.kind.name(), p.role, p.pid);
            assert!(name.unwrap().starts_with(m.kind.name()), "pid {} named {name:?}", p.pid);
        }
    }
    // Arrows for at least 90 % of what each mechanism delivered.
    for m in &snap.mechanisms {
        let delivered = m.integrity.delivered;
        assert!(delivered > 0, "{} delivered nothing", m.kind.name());
        let arrows = c.flows.get(m.kind.name()).map_or(0, |f| f.len()) as u64;
        assert!(arrows * 10 >= delivered * 9, "{}: {arrows} arrows for {delivered} delivered messages", m.kind.name());
    }
    let other = &trace["otherData"];
    assert_eq!(other["every_nth"], 1, "nothing to sample at 200 messages/s: {other}");
    // Channel depth counters, on the supervisor's track.
    let counters: BTreeSet<&str> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "C" && e["pid"].as_i64() == Some(snap.run.pid as i64))
        .filter_map(|e| e["name"].as_str())
        .collect();
    for m in &snap.mechanisms {
        assert!(counters.contains(format!("{} channel", m.kind.name()).as_str()), "no depth counter for {:?}", m.kind);
    }
    assert_run_gone(&snap);
}

#[test]
fn every_mechanism_reports_latency_and_cost() {
    let dir = Scratch::new("trace-cost");
    let path = dir.path("t.json");
    let (snap, _) = traced_snapshot("all", "3", &["producer.rate=200"], &path, &[]);
    for m in &snap.mechanisms {
        let k = m.kind.name();
        let l = m.latency_us.as_ref().unwrap_or_else(|| panic!("{k}: no latency_us"));
        assert!(l.count > 0 && l.p50 > 0.0, "{k}: {l:?}");
        assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, "{k}: percentiles out of order: {l:?}");
        assert_eq!(l.log2_us.iter().sum::<u64>(), l.count, "{k}: the heat-map row holds every sample");
        let c = m.cost.as_ref().unwrap_or_else(|| panic!("{k}: no cost"));
        assert!(c.messages > 0, "{k}: {c:?}");
        assert!(c.syscalls_per_msg.is_some_and(|s| s > 0.0), "{k}: {c:?}");
        assert!(c.ctx_switches_per_msg.is_some(), "{k}: {c:?}");
        assert!(!c.source.is_empty() && !c.bytes_source.is_empty(), "{k}: {c:?}");
    }
    let cost = |k: Kind| common::mech(&snap, k).cost.clone().unwrap();
    let (pipe, shm) = (cost(Kind::Pipe), cost(Kind::Shm));
    // The notes' claim, measured: the kernel copies none of shared
    // memory's bytes. System calls are at most the pipe's: at this rate the
    // consumer sleeps for each message, and waking it takes a futex_wait
    // and a futex_wake, as many calls as the pipe's write and read (which
    // reads one message per call).
    assert!(shm.syscalls_per_msg.unwrap() <= pipe.syscalls_per_msg.unwrap(), "shm {shm:?} above pipe {pipe:?}");
    assert_eq!(shm.bytes_copied_per_msg, Some(0.0));
    // A pipe message crosses the kernel twice: in with write, out with read.
    let size = 256.0;
    let copied = pipe.bytes_copied_per_msg.unwrap();
    assert!((copied - 2.0 * size).abs() < 0.1 * size, "pipe copies {copied} bytes a message");
    // The workers' own count of a pipe's read and write calls agrees with
    // the kernel's (/proc/PID/io syscr + syscw).
    let (own, kernel) = (pipe.syscalls_per_msg.unwrap(), pipe.proc_io_rw_per_msg.unwrap());
    assert!((own - kernel).abs() <= 0.15 * own, "pipe: workers count {own}, /proc/PID/io {kernel}");
    assert_eq!(cost(Kind::Mach).source, "emulated kernel traps");
    assert_run_gone(&snap);
}

/// The notes' "no kernel after setup", measured in system calls: with the
/// buffer the bottleneck (a producer faster than its consumer), the pipe
/// still makes a `write` and a `read` per message, while the shm ring wakes
/// its sleeping producer once per half ring — about 2 calls per 8 messages
/// with 16 slots. Fails on a ring that wakes the producer at every freed
/// slot (2 calls a message, the pipe's count).
#[test]
fn a_full_shm_ring_costs_fewer_system_calls_than_a_full_pipe() {
    let dir = Scratch::new("trace-full");
    let path = dir.path("t.json");
    let (snap, _) = traced_snapshot("pipe,shm", "3", &["producer.rate=max", "consumer.rate=2000"], &path, &[]);
    let sys = |k: Kind| {
        let c = common::mech(&snap, k).cost.clone().unwrap();
        assert!(c.messages > 100, "{k:?}: {c:?}");
        c.syscalls_per_msg.unwrap()
    };
    let (pipe, shm) = (sys(Kind::Pipe), sys(Kind::Shm));
    assert!(pipe >= 1.5, "a pipe message is a write and a read: {pipe}");
    assert!(shm * 2.0 < pipe, "shm {shm} calls a message, pipe {pipe}");
    for k in [Kind::Pipe, Kind::Shm] {
        let i = &common::mech(&snap, k).integrity;
        assert!(i.lost == 0 && i.corrupt == 0 && i.reordered == 0, "{k:?}: {i:?}");
    }
    assert_run_gone(&snap);
}

#[test]
fn a_full_trace_file_keeps_every_nth_message_and_says_n() {
    let dir = Scratch::new("trace-sampled");
    let path = dir.path("t.json");
    // 8 KiB per thread: about 80 records, full within a second.
    let env = [("IPCSCOPE_TRACE_BUDGET", "8192")];
    let (snap, trace) = traced_snapshot("pipe", "2", &["producer.rate=2000"], &path, &env);
    let c = check_structure(&trace);
    let other = &trace["otherData"];
    let every = other["every_nth"].as_u64().unwrap();
    assert!(every > 1, "not sampled: {other}");
    assert!(other["sampling"].as_str().unwrap().contains(&format!("every {every}th")), "{other}");
    let flows = c.flows.get("pipe").expect("arrows for the messages both ends kept");
    // Both ends keep the same messages: every arrow's sequence number is a
    // multiple of N (the id's low 36 bits).
    for id in flows {
        let seq = u64::from_str_radix(id, 16).unwrap() & ((1 << 36) - 1);
        assert_eq!(seq % every, 0, "arrow for message {seq} with every_nth {every}");
    }
    let delivered = common::mech(&snap, Kind::Pipe).integrity.delivered;
    assert!(flows.len() as u64 * every * 2 >= delivered, "{} arrows × {every} for {delivered}", flows.len());
    assert!(std::fs::metadata(&path).unwrap().len() < 4 << 20, "a bounded trace is small");
    assert_run_gone(&snap);
}

#[test]
fn a_trace_path_must_be_a_regular_file() {
    let dir = Scratch::new("trace-paths");
    let fifo = dir.fifo("fifo");
    std::fs::write(dir.path("real.json"), "keep me").unwrap();
    let link = dir.path("link.json");
    std::os::unix::fs::symlink(dir.path("real.json"), &link).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["snapshot", "--mechanisms", "pipe", "--duration", "0.2", "--trace", link.to_str().unwrap()],
            "symbolic link",
        ),
        (vec!["snapshot", "--mechanisms", "pipe", "--duration", "0.2", "--trace", fifo.to_str().unwrap()], "FIFO"),
        (vec!["snapshot", "--mechanisms", "pipe", "--duration", "0.2", "--trace", "/dev/null"], "character device"),
        (
            vec!["snapshot", "--mechanisms", "pipe", "--duration", "0.2", "--trace", dir.0.to_str().unwrap()],
            "directory",
        ),
        (vec!["knobs", "--trace", "x.json"], "--trace goes with"),
        (vec!["lesson", "--list", "--trace", "x.json"], "--trace goes with"),
    ];
    for (args, says) in cases {
        let out = ipcscope(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!std::path::Path::new("x.json").exists());
    assert_eq!(std::fs::read_to_string(dir.path("real.json")).unwrap(), "keep me", "followed the symlink");
}

#[test]
fn the_live_view_writes_its_trace_when_it_quits() {
    let dir = Scratch::new("trace-tui");
    let path = dir.path("live.json");
    let _g = common::serial();
    let cmd = format!("{EXE} --mechanisms pipe --set producer.rate=100 --trace {}", path.display());
    let Some(t) = common::tmux::Tmux::start(&cmd, 100, 30) else {
        return;
    };
    // Until the consumer has verified messages for a moment.
    let s = t.wait_screen("the pipe delivering", |s| s.contains("ordinary pipe") && s.contains("delivered"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    t.keys("q");
    let end = t.wait_screen("the program to exit", |s| s.contains("EXITED"));
    assert!(end.contains("EXITED 0"), "{end}\n(before: {s})");
    let trace: Value = serde_json::from_slice(&std::fs::read(&path).expect("trace written")).expect("JSON");
    let c = check_structure(&trace);
    let names: BTreeSet<&str> = c.process_names.values().map(String::as_str).collect();
    assert!(names.contains("pipe-producer") && names.contains("pipe-consumer"), "{names:?}");
    assert!(c.flows.get("pipe").is_some_and(|f| f.len() >= 50), "{:?}", c.flows.get("pipe").map(|f| f.len()));
    // The run it traced is gone, its directory (and the thread files in it) too.
    let sup = trace["otherData"]["runs"][0]["supervisor_pid"].as_i64().expect("the run's supervisor") as u32;
    let run_dir = ipcscope::supervisor::rundir::dir_for(sup);
    assert!(!run_dir.exists(), "{} left behind", run_dir.display());
    let pids: Vec<i32> = c.process_names.keys().map(|&p| p as i32).filter(|&p| p as u32 != sup).collect();
    assert!(pids.iter().all(|&p| !common::process_alive(p)), "workers left: {pids:?}");
}
