//! The consumers' verifiers catch what they are told to catch: messages
//! written into a live FIFO from outside — one of ours replayed, one with a
//! flipped byte, one cut short — are counted as duplicated, corrupt and
//! lost, and never as delivered twice.

mod common;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ipcscope::message;

#[test]
fn replayed_corrupted_and_truncated_messages_are_caught() {
    let _g = serial();
    let child = Command::new(EXE)
        .args(["snapshot", "-m", "fifo", "--duration", "2.5", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let fifo = ipcscope::supervisor::rundir::dir_for(child.id()).join("fifo");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !fifo.exists() {
        assert!(Instant::now() < deadline, "no FIFO at {}", fifo.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut w = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let sender = 0xdead_0001;
    let mut good = vec![0u8; 200];
    message::encode(&mut good, sender, 0);
    let mut bad = good.clone();
    bad[150] ^= 0x40;
    let mut short = vec![0u8; 200];
    message::encode(&mut short, sender, 1);
    // Each write is ≤ PIPE_BUF, so none mixes with the workers' messages.
    w.write_all(&good).unwrap(); // delivered
    w.write_all(&good).unwrap(); // replayed: duplicated
    w.write_all(&bad).unwrap(); // corrupt
    w.write_all(&short[..120]).unwrap(); // cut short: the reader takes the next bytes and finds it corrupt
    drop(w);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let s: ipcscope::snapshot::Snapshot = serde_json::from_slice(&out.stdout).unwrap();
    let i = mech(&s, ipcscope::mechanisms::Kind::Fifo).integrity;
    assert_eq!(i.duplicated, 1, "{i:?}");
    assert!(i.corrupt >= 2, "{i:?}");
    // Lost, honestly: the cut-short message (seq 1) never arrives whole,
    // and the worker message whose bytes completed it is gone too.
    assert!((1..=2).contains(&i.lost), "{i:?}");
    assert!(i.foreign > 0, "resynchronising skips bytes: {i:?}");
    assert_run_gone(&s);
}
