//! Record what a live run observed, read it back, and draw the same frames.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use ipcscope::knobs::Knobs;
use ipcscope::mechanisms::Kind;
use ipcscope::record::{Recorder, Recording, KEYFRAME_MS};
use ipcscope::session::Session;
use ipcscope::snapshot::Snapshot;
use ipcscope::ui::{render_text, View};

/// `n` snapshots of all seven mechanisms at 10 Hz (the TUI's default),
/// after the first second of the run.
fn observe_all_seven(n: usize) -> Vec<Snapshot> {
    let _g = serial();
    let sess = Session::start_with_exe(EXE.into(), &Kind::ALL, Knobs::default(), 10).expect("start session");
    let mut got = Vec::new();
    let mut seen = 0;
    while got.len() < n {
        if let Ok(s) = sess.snapshots.recv_timeout(Duration::from_secs(5)) {
            seen += 1;
            if seen > 10 {
                got.push(s);
            }
        }
    }
    let pids = pids(&got[0]);
    sess.shutdown();
    assert_nothing_left(&pids);
    got
}

fn record(path: &Path, snaps: &[Snapshot]) -> u64 {
    let mut r = Recorder::create(path).unwrap();
    for s in snaps {
        r.write(s).unwrap();
    }
    r.finish().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn read_all(path: &Path) -> Vec<Snapshot> {
    Recording::open(path).unwrap().snapshots().map(|s| s.unwrap()).collect()
}

#[test]
fn replay_reproduces_every_recorded_snapshot_of_all_seven_exactly() {
    let recorded = observe_all_seven(40);
    let dir = Scratch::new("rec-exact");
    let path = dir.path("all.rec");
    record(&path, &recorded);
    let back = read_all(&path);
    assert_eq!(back.len(), recorded.len());
    for (i, (a, b)) in recorded.iter().zip(&back).enumerate() {
        assert!(a == b, "snapshot {i} differs after replay");
    }
    let view = View::default();
    for (a, b) in recorded.iter().zip(&back).step_by(7) {
        assert_eq!(render_text(a, &view, 160, 45), render_text(b, &view, 160, 45));
    }

    // The same snapshots spread over several blocks (as if sampled 3 s
    // apart): still exact, block after block.
    let spread: Vec<Snapshot> =
        recorded.iter().enumerate().map(|(i, s)| Snapshot { t_ms: i as u64 * 3000, ..s.clone() }).collect();
    record(&path, &spread);
    assert!(Recording::open(&path).unwrap().blocks().len() >= 10);
    assert!(read_all(&path) == spread, "a multi-block recording replays differently");
}

#[test]
fn a_90_minute_lecture_of_all_seven_records_under_100_mb() {
    let snaps = observe_all_seven(50);
    let dir = Scratch::new("rec-size");
    let all = record(&dir.path("all.rec"), &snaps);
    let first = record(&dir.path("first.rec"), &snaps[..1]);
    let secs = (snaps.last().unwrap().t_ms - snaps[0].t_ms) as f64 / 1000.0;
    // Steady state: the changes as observed, plus one keyframe per block.
    let per_s = (all - first) as f64 / secs + first as f64 / (KEYFRAME_MS as f64 / 1000.0);
    let lecture = per_s * 5400.0;
    eprintln!("{per_s:.0} B/s: 90 minutes = {:.1} MB (keyframe {first} B)", lecture / 1e6);
    assert!(lecture < 100e6, "{per_s:.0} B/s would make a 90-minute recording of {:.0} MB", lecture / 1e6);
}

#[test]
fn a_headless_snapshot_run_records_every_sample() {
    let dir = Scratch::new("rec-headless");
    let path = dir.path("run.rec");
    // An old file there is replaced, not appended to.
    std::fs::write(&path, vec![b'x'; 1 << 20]).unwrap();
    let p = path.to_str().unwrap();
    let out = ipcscope(&["snapshot", "--mechanisms", "pipe,mq", "--duration", "2", "--format", "json", "--record", p]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Snapshot = serde_json::from_slice(&out.stdout).unwrap();
    assert_run_gone(&printed);
    let back = read_all(&path);
    assert!(back.len() >= 5, "only {} samples recorded in 2 s at 10 Hz", back.len());
    assert!(back.last() == Some(&printed), "the last recorded sample is not the one printed");
    assert!(back.windows(2).all(|w| w[0].t_ms < w[1].t_ms));

    let out = ipcscope(&["replay", "--check", p]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("{} snapshots", back.len())), "{said}");
}

#[test]
fn version_1_recordings_still_replay() {
    let dir = Scratch::new("rec-v1");
    let path = dir.path("old.jsonl");
    let snaps: Vec<Snapshot> = (0..250).map(|i| Snapshot { version: 1, t_ms: i * 100, ..Default::default() }).collect();
    let mut text = String::from("{\"format\":\"ipcscope-recording\",\"version\":1,\"ipcscope\":\"0.1.0\"}\n");
    for s in &snaps {
        text += &serde_json::to_string(s).unwrap();
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    assert!(read_all(&path) == snaps);
    let out = ipcscope(&["replay", "--check", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("version 1, 250 snapshots"));
}

#[test]
fn truncated_foreign_newer_and_damaged_recordings_are_refused() {
    let dir = Scratch::new("rec-bad");
    // A good recording of two blocks to damage.
    let good = dir.path("good.rec");
    let snaps: Vec<Snapshot> = (0..150).map(|i| Snapshot { t_ms: i * 100, ..Default::default() }).collect();
    record(&good, &snaps);
    let good = std::fs::read(&good).unwrap();
    let h = good.iter().position(|&c| c == b'\n').unwrap() + 1;
    let clen = u32::from_le_bytes(good[h + 4..h + 8].try_into().unwrap()) as usize;
    let second = h + 36 + clen;
    let with = |at: usize, bytes: &[u8]| {
        let mut g = good.clone();
        g[at..at + bytes.len()].copy_from_slice(bytes);
        g
    };

    let v1_truncated: &[u8] =
        b"{\"format\":\"ipcscope-recording\",\"version\":1,\"ipcscope\":\"0\"}\n{\"version\":1,\"t_ms\":";
    let cases: Vec<(&str, Vec<u8>, String, bool)> = vec![
        ("empty", b"".to_vec(), "empty".into(), false),
        ("foreign", b"{\"hello\": 1}\n".to_vec(), "not an ipcscope recording".into(), false),
        ("binary", b"\x00\xff\xfe garbage".to_vec(), "not".into(), false),
        (
            "newer",
            b"{\"format\":\"ipcscope-recording\",\"version\":99,\"ipcscope\":\"9\"}\n".to_vec(),
            "version 99".into(),
            false,
        ),
        ("v1-truncated", v1_truncated.to_vec(), "truncated".into(), false),
        ("header-only", good[..h].to_vec(), "no snapshots".into(), false),
        ("cut-in-a-block", good[..second + 40].to_vec(), format!("block 1 at byte {second}: truncated"), false),
        ("cut-in-a-header", good[..second + 5].to_vec(), format!("block 1 at byte {second}: truncated"), false),
        ("not-a-block", with(h, b"JUNK"), format!("block 0 at byte {h}: not a recording block"), false),
        ("damaged", with(h + 36 + clen / 2, b"\x55\xaa"), format!("block 0 at byte {h}: damaged"), false),
        ("huge-claim", with(h + 8, &u32::MAX.to_le_bytes()), format!("block 0 at byte {h}: claims"), false),
        ("damaged-later", with(second + 36 + 3, b"\x55\xaa"), format!("block 1 at byte {second}: damaged"), true),
    ];
    for (name, bytes, expect, check) in &cases {
        let f = dir.path(name);
        std::fs::write(&f, bytes).unwrap();
        let args: &[&str] = if *check { &["replay", "--check"] } else { &["replay"] };
        let out = ipcscope(&[args, &[f.to_str().unwrap()]].concat());
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect.as_str()), "{name}: expected {expect:?} in {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
    }
}

#[test]
fn replay_memory_does_not_grow_with_the_recording() {
    let dir = Scratch::new("rec-memory");
    let path = dir.path("long.rec");
    // 4000 snapshots of 200 KB each: 800 MB if held at once.
    let big = "ipcscope ".repeat(200 << 10 >> 3);
    let mut r = Recorder::create(&path).unwrap();
    let mut s = Snapshot::default();
    s.run.problems = vec![big];
    for i in 0..4000u64 {
        s.t_ms = i * 100;
        r.write(&s).unwrap();
    }
    r.finish().unwrap();

    let _g = serial();
    // Reaped below by wait4, which also reports its peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = std::process::Command::new(EXE)
        .args(["replay", "--check", path.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::read_to_string(child.stdout.take().unwrap()).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with pointers to live locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "replay --check failed: {out}");
    assert!(out.contains("4000 snapshots"), "{out}");
    let peak_mib = usage.ru_maxrss / 1024;
    eprintln!("replay --check of 800 MB of snapshots: peak {peak_mib} MiB");
    assert!(peak_mib < 200, "replaying 800 MB of snapshots peaked at {peak_mib} MiB");
}
