//! Record what a live run observed, read it back, and draw the same frames.

mod common;

use std::time::Duration;

use common::*;
use ipcscope::mechanisms::Kind;
use ipcscope::record::{load, Recorder};
use ipcscope::ui::{render_text, View};

#[test]
fn replay_reproduces_the_recorded_frames_exactly() {
    let _g = serial();
    let sess = session(&[Kind::Pipe], &["consumer.rate=200"]);
    let mut recorded = Vec::new();
    while recorded.len() < 15 {
        if let Ok(s) = sess.snapshots.recv_timeout(Duration::from_secs(2)) {
            recorded.push(s);
        }
    }
    let pids = pids(&recorded[0]);
    sess.shutdown();
    assert_nothing_left(&pids);

    let path = std::env::temp_dir().join(format!("ipcscope-test-rec-{}.jsonl", std::process::id()));
    let mut r = Recorder::create(&path).unwrap();
    for s in &recorded {
        r.write(s).unwrap();
    }
    r.finish().unwrap();
    let back = load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    assert_eq!(back, recorded);
    let view = View::default();
    for (a, b) in recorded.iter().zip(&back) {
        assert_eq!(render_text(a, &view, 120, 36), render_text(b, &view, 120, 36));
    }
}

#[test]
fn truncated_and_foreign_recordings_are_refused() {
    let dir = std::env::temp_dir().join(format!("ipcscope-test-bad-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty", b"", "empty"),
        ("foreign", b"{\"hello\": 1}\n", "not an ipcscope recording"),
        ("binary", b"\x00\xff\xfe garbage", "not"),
        ("newer", b"{\"format\":\"ipcscope-recording\",\"version\":99,\"ipcscope\":\"9\"}\n", "version 99"),
        (
            "truncated",
            b"{\"format\":\"ipcscope-recording\",\"version\":1,\"ipcscope\":\"0\"}\n{\"version\":1,\"t_ms\":",
            "truncated",
        ),
    ];
    for (name, bytes, expect) in cases {
        let f = dir.join(format!("{name}.jsonl"));
        std::fs::write(&f, bytes).unwrap();
        let out = ipcscope(&["replay", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
