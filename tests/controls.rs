//! Per-panel controls on real processes: a mechanism's own copy of a
//! common knob (`pipe.consumer.rate=0`) reaches its workers only, the stall
//! toggle stalls one consumer and gives it its rate back, and a lesson's
//! knobs go to the lesson's mechanisms only.

mod common;

use std::time::Duration;

use common::*;
use ipcscope::knobs::{KnobId, RATE_MAX};
use ipcscope::mechanisms::Kind;
use ipcscope::session::Command;
use ipcscope::snapshot::{MechanismSnapshot, Snapshot};

/// The value a mechanism's snapshot shows for `key`.
fn knob(m: &MechanismSnapshot, key: &str) -> String {
    m.knobs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {key} in {:?}", m.knobs))
}

fn consumer_received(m: &MechanismSnapshot) -> u64 {
    m.processes.iter().filter(|p| p.role == "consumer").map(|p| p.received).sum()
}

#[test]
fn a_mechanisms_own_rate_reaches_its_workers_only() {
    let s = snapshot_json("pipe,shm", "2", &["consumer.rate=500", "pipe.consumer.rate=0"]);
    let (pipe, shm) = (mech(&s, Kind::Pipe), mech(&s, Kind::Shm));
    // The snapshot shows what each mechanism goes by.
    assert_eq!(knob(pipe, "consumer.rate"), "0");
    assert_eq!(knob(shm, "consumer.rate"), "500");
    assert!(!pipe.knobs.iter().any(|(k, _)| k.starts_with("pipe.consumer")), "{:?}", pipe.knobs);
    assert_eq!(consumer_received(pipe), 0, "the pipe's consumer never reads");
    assert!(consumer_received(shm) > 0, "the shm consumer reads");
    assert_run_gone(&s);
}

#[test]
fn a_bad_own_value_is_one_clear_line() {
    let out = ipcscope(&["snapshot", "-m", "pipe", "--duration", "1", "--set", "pipe.consumer.rate=fast"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipe.consumer.rate") && err.contains("global"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn the_knobs_listing_names_the_own_copies() {
    let out = ipcscope(&["knobs"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for k in Kind::ALL {
        for c in ["producer.rate", "consumer.rate", "msg.size", "producer.count"] {
            let key = format!("{}.{c} ", k.name());
            assert!(text.lines().any(|l| l.starts_with(&key) && l.contains("global")), "{key}:\n{text}");
        }
    }
}

/// Wait for a snapshot where `pred` holds of the pipe and shm panels.
fn wait_both(
    sess: &ipcscope::session::Session,
    what: &str,
    pred: impl Fn(&MechanismSnapshot, &MechanismSnapshot) -> bool,
) -> Snapshot {
    wait_for(sess, what, Duration::from_secs(10), |s| {
        s.mechanism(Kind::Pipe).zip(s.mechanism(Kind::Shm)).is_some_and(|(p, m)| pred(p, m))
    })
}

#[test]
fn the_stall_toggle_and_a_lessons_scope_act_on_one_mechanism() {
    let mut sess = session(&[Kind::Pipe, Kind::Shm], &["consumer.rate=200"]);
    wait_both(&sess, "both consumers reading", |p, m| consumer_received(p) > 0 && consumer_received(m) > 0);

    // One key's worth: the pipe's consumer stalls, the shm's reads on.
    assert!(sess.toggle_stall(Kind::Pipe));
    let s = wait_both(&sess, "the pipe's producer blocked on the full pipe", |p, _| {
        p.processes.iter().any(|x| x.role == "producer" && x.wchan.contains("pipe_write"))
    });
    let before = consumer_received(mech(&s, Kind::Shm));
    let s = wait_both(&sess, "the shm consumer still reading", |_, m| consumer_received(m) > before);
    assert_eq!(knob(mech(&s, Kind::Pipe), "consumer.rate"), "0");
    assert_eq!(knob(mech(&s, Kind::Shm), "consumer.rate"), "200");

    // Again: the pipe's consumer gets its rate back.
    assert!(!sess.toggle_stall(Kind::Pipe));
    assert_eq!(sess.effective(Kind::Pipe, KnobId::ConsumerRate), 200);
    let stalled_at = consumer_received(mech(&s, Kind::Pipe));
    wait_both(&sess, "the pipe's consumer reading again", |p, _| {
        knob(p, "consumer.rate") == "200" && consumer_received(p) > stalled_at
    });

    // A lesson about shm only: its `consumer.rate=0` stalls shm alone.
    sess.set_scope(Some(vec![Kind::Shm]));
    sess.apply(Command::SetKnob(KnobId::ConsumerRate, 0)).unwrap();
    assert_eq!(sess.effective(Kind::Shm, KnobId::ConsumerRate), 0);
    assert_eq!(sess.effective(Kind::Pipe, KnobId::ConsumerRate), 200);
    sess.set_scope(None);

    // Every panel at once: the common value, and no own copies left.
    sess.set_all(KnobId::ConsumerRate, RATE_MAX);
    let s = wait_both(&sess, "every consumer at max", |p, m| {
        knob(p, "consumer.rate") == "max" && knob(m, "consumer.rate") == "max"
    });
    assert_eq!(sess.knobs().get(KnobId::ShmConsumerRate), ipcscope::knobs::GLOBAL);

    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}
