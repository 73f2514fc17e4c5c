//! `ipcscope bench`: the JSON shape of a tiny real run, that it leaves
//! nothing behind, and the framing the cases use. No wall-clock time is
//! asserted anywhere.

use std::process::Command;

use ipcscope::bench::cases::{message_buffer, stamp};
use ipcscope::bench::stats::{judge, Cmp, Verdict};
use ipcscope::message;

/// The runs take turns, so one run's peers are never taken for another's
/// leftovers.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_ipcscope")
}

fn leftovers() -> Vec<String> {
    let mine = |n: &str| n.starts_with("ipcscope-") && n.contains("-bench-");
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| mine(n)).collect())
        .unwrap_or_default();
    let (base, _) = ipcscope::supervisor::rundir::base();
    if let Ok(d) = std::fs::read_dir(base) {
        v.extend(d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("bench-")));
    }
    v
}

fn children_of(pid: u32) -> Vec<String> {
    let Ok(d) = std::fs::read_dir("/proc") else { return Vec::new() };
    d.flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some(stat)
        })
        .collect()
}

#[test]
fn tiny_run_completes_prints_json_and_leaves_nothing_behind() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = leftovers();
    let out = Command::new(exe())
        .args(["bench", "--mechanisms", "pipe,fifo,mq,shm", "--rounds", "1", "--sizes", "64"])
        .args(["--placement", "unpinned", "--round-ms", "5", "--format", "json", "--quiet"])
        .output()
        .expect("run ipcscope bench");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["rounds"], 1);
    assert_eq!(v["sizes"], serde_json::json!([64]));
    assert_eq!(v["placements"], serde_json::json!(["unpinned"]));
    for key in ["cpu_model", "cores", "kernel", "clocksource"] {
        assert!(!v["machine"][key].is_null(), "machine.{key}");
    }
    let cases = v["cases"].as_array().expect("cases");
    // pipe, FIFO, mq, shm futex, shm spin × ping-pong and stream.
    assert_eq!(cases.len(), 10, "{cases:#?}");
    for c in cases {
        assert!(c["not_measured"].is_null(), "{c}");
        let r = &c["ratio"];
        assert!(r["median"].as_f64().unwrap() > 0.0, "{c}");
        assert_eq!(r["rounds"], 1);
        match c["op"].as_str().unwrap() {
            "pingpong" => {
                let l = &c["latency"];
                let p50 = l["p50_ns"].as_u64().unwrap();
                assert!(
                    p50 > 0 && p50 <= l["p99_ns"].as_u64().unwrap() && l["p99_ns"].as_u64() <= l["max_ns"].as_u64()
                );
                assert!(c["baseline_latency"]["p50_ns"].as_u64().unwrap() > 0);
            }
            "stream" => {
                assert!(c["msgs_per_s"].as_f64().unwrap() > 0.0);
                assert!(c["bytes_per_s"].as_f64().unwrap() > 0.0);
                assert!(c["baseline_bytes_per_s"].as_f64().unwrap() > 0.0);
            }
            other => panic!("op {other}"),
        }
    }
    let targets = v["targets"].as_array().expect("targets");
    assert!(targets.iter().any(|t| t["name"].as_str().unwrap().starts_with("pipe ping-pong")));
    for t in targets {
        let verdict = t["verdict"].as_str().unwrap();
        assert!(["PASS", "MISS", "NOT_MEASURED"].contains(&verdict), "{t}");
        // The verdict follows from the value, the direction and the threshold.
        let cmp = if t["cmp"] == "<=" { Cmp::AtMost } else { Cmp::AtLeast };
        let want = judge(t["value"].as_f64(), cmp, t["threshold"].as_f64().unwrap());
        let got = match verdict {
            "PASS" => Verdict::Pass,
            "MISS" => Verdict::Miss,
            _ => Verdict::NotMeasured,
        };
        assert_eq!(got, want, "{t}");
    }
    // Nothing left: no shm, mq (unlinked at creation), FIFO or private dir,
    // and no child process of ours still running (the bench has exited, so
    // any peer would have been reparented: look for its name instead).
    assert_eq!(leftovers(), before);
    let stray = stray_peers();
    assert!(stray.is_empty(), "stray peers: {stray:?}");
    assert!(children_of(std::process::id()).is_empty());
}

/// Processes named like the bench's peers, anywhere.
fn stray_peers() -> Vec<String> {
    let peers = [
        "bench-pipe",
        "bench-fifo",
        "bench-mq",
        "bench-shm",
        "bench-relay",
        "bench-sink",
        "bench-mach",
        "bench-nt",
        "bench-rpc",
    ];
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .filter(|c| peers.iter().any(|p| c.starts_with(p)))
        .collect()
}

#[test]
fn csv_and_table_forms() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = |format: &str| {
        let out = Command::new(exe())
            .args(["bench", "--mechanisms", "pipe", "--rounds", "1", "--sizes", "64", "--placement", "same"])
            .args(["--round-ms", "2", "--quiet", "--format", format])
            .output()
            .expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = run("csv");
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("placement,mechanism,variant,op,size"));
    assert_eq!(lines.count(), 2);
    let table = run("table");
    assert!(table.contains("== targets =="));
    assert!(table.contains("PASS") || table.contains("MISS"));
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for args in [
        &["bench", "--sizes", "abc"][..],
        &["bench", "--placement", "nowhere"],
        &["bench", "--format", "xml"],
        &["bench", "--mechanisms", "carrier-pigeon"],
        &["bench", "--rounds", "0"],
    ] {
        let out = Command::new(exe()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "{args:?}");
    }
}

#[test]
fn stamped_messages_verify_and_any_flip_is_caught() {
    for size in [message::MIN_LEN, 64, 4096] {
        let mut b = message_buffer(size, 9);
        for seq in 0..3 {
            stamp(&mut b, 9, seq);
            let h = message::decode(&b).expect("stamped message decodes");
            assert_eq!((h.sender, h.seq, h.len as usize), (9, seq, size));
        }
        let mut c = b.clone();
        c[size - 1] ^= 1;
        assert!(message::decode(&c).is_err());
    }
}

/// SIGTERM, SIGINT or SIGHUP in the middle of a run: the run still leaves
/// nothing behind (its private directory with the emulated kernel's
/// socket files, its peers), and it dies of the signal.
#[test]
fn a_signal_mid_run_leaves_nothing_behind() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = leftovers();
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let mut child = Command::new(exe())
            .args(["bench", "--mechanisms", "mach", "--rounds", "50", "--sizes", "65536"])
            .args(["--placement", "unpinned", "--round-ms", "200", "--quiet"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run ipcscope bench");
        let (base, _) = ipcscope::supervisor::rundir::base();
        let dir = base.join(format!("bench-{}", child.id()));
        // Mid-run: the Mach kernel's socket is in the private directory.
        let started = Instant::now();
        while !std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            assert!(started.elapsed() < Duration::from_secs(20), "no socket in {}", dir.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(sig), "{status:?}");
        assert!(!dir.exists(), "{} left behind", dir.display());
        // The peers die with the bench (PR_SET_PDEATHSIG): give them a moment.
        let started = Instant::now();
        while !stray_peers().is_empty() && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(stray_peers().is_empty(), "stray peers: {:?}", stray_peers());
    }
    assert_eq!(leftovers(), before);
}

/// `--self` measures the TUI in a terminal of its own (a pty). Killed then,
/// the bench must not leave that TUI running, orphaned, with its workers:
/// the TUI sees its terminal hang up and cleans up after itself.
#[test]
fn a_signal_while_the_tui_is_measured_leaves_nothing_behind() {
    use std::time::{Duration, Instant};
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = leftovers();
    let mut bench = Command::new(exe())
        .args(["bench", "--self-only", "--quiet"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run ipcscope bench --self-only");
    // The TUI: a child of the bench with no arguments, leading a session.
    let tui_of = |bench: u32| -> Option<u32> {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let f: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let (ppid, session): (u32, u32) = (f.get(1)?.parse().ok()?, f.get(3)?.parse().ok()?);
            let argv = std::fs::read(e.path().join("cmdline")).ok()?;
            let args = argv.split(|b| *b == 0).filter(|a| !a.is_empty()).count();
            (ppid == bench && session == pid && args == 1).then_some(pid)
        })
    };
    let started = Instant::now();
    let tui = loop {
        if let Some(t) = tui_of(bench.id()) {
            break t;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the bench never started the TUI");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(bench.id() as i32, libc::SIGTERM) };
    bench.wait().unwrap();
    // Gone, and its run directory (and with it its FIFO, sockets, and the
    // janitor's work) too.
    let (base, _) = ipcscope::supervisor::rundir::base();
    let run_dir = base.join(tui.to_string());
    let alive = || std::path::Path::new(&format!("/proc/{tui}")).exists() || run_dir.exists();
    let started = Instant::now();
    while alive() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(), "the TUI {tui} or its run directory outlived the bench");
    assert_eq!(leftovers(), before);
}
