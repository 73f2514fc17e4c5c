//! The message-queue panel drawn from fixed snapshots, in both languages,
//! at the classroom's two sizes, in the grid and focused.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::mq::MqDetail;
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::render_text;

mod common;
use common::fixtures::{self, focused, run, view};

fn process(role: &str, pid: i32, state: &str, wchan: &str, op: &str, sent: u64, received: u64) -> ProcessSnapshot {
    fixtures::process("mq_send(4, 256 bytes, prio 3) = 0", role, pid, state, wchan, op, sent, received)
}

/// Consumer slow, priorities on: the queue is full, the sender waits in
/// wq_sleep, and the highest priorities leave first.
fn full_queue() -> Snapshot {
    let m = MechanismSnapshot {
        latency_us: None,
        cost: None,
        kind: Kind::Mq,
        processes: vec![
            process("producer", 4121, "S", "wq_sleep", "mq_send()", 410, 0),
            process("consumer", 4122, "S", "hrtimer_nanosleep", "paced", 0, 400),
        ],
        channel: Channel { depth: 10, capacity: 10, unit: Unit::Messages, over: 0 },
        integrity: Integrity { delivered: 400, lost: 7, reordered: 96, ..Integrity::default() },
        history: (0..40).map(|i| (i / 3).min(10)).collect(),
        notes: vec![],
        knobs: vec![("producer.rate".into(), "1000".into()), ("consumer.rate".into(), "20".into())],
        detail: Detail::Mq(MqDetail {
            name: "/ipcscope-4120-abcd1234-mq".into(),
            attr_seen: true,
            curmsgs: 10,
            maxmsg: 10,
            msgsize: 1024,
            msg_max: 10,
            msgsize_max: 8192,
            priorities: true,
            sent_prios: vec![1, 3, 2, 0, 3, 1, 3, 2, 0, 3, 1, 0, 2, 1, 3, 2],
            recv_prios: vec![3, 3, 3, 2, 3, 3, 2, 3, 2, 3, 1, 3, 3, 2, 1, 3],
            inversions: 0,
            send_timeout_ms: 0,
            timeouts: 0,
            msg_size_knob: 256,
            msg_size: 256,
        }),
    };
    run(vec![m])
}

/// Priorities off, a timed send giving up while the queue stays full.
fn timed_out() -> Snapshot {
    let mut s = full_queue();
    let m = &mut s.mechanisms[0];
    m.integrity = Integrity { delivered: 400, ..Integrity::default() };
    m.processes[0].errors.etimedout = 12;
    m.notes = vec![Note {
        t_ms: 900,
        key: "timedout".into(),
        text: "producer: mq_timedsend gave up with ETIMEDOUT — the queue stayed full; it tries again".into(),
        ..Note::default()
    }];
    let Detail::Mq(d) = &mut m.detail else { unreachable!() };
    d.priorities = false;
    d.send_timeout_ms = 100;
    d.timeouts = 12;
    s
}

fn grid() -> Snapshot {
    fixtures::grid(full_queue(), 7)
}

#[test]
fn mq_focused_en_80x24() {
    insta::assert_snapshot!(render_text(&full_queue(), &focused(Lang::En), 80, 24));
}

#[test]
fn mq_focused_ko_80x24() {
    insta::assert_snapshot!(render_text(&full_queue(), &focused(Lang::Ko), 80, 24));
}

#[test]
fn mq_focused_en_160x45() {
    insta::assert_snapshot!(render_text(&full_queue(), &focused(Lang::En), 160, 45));
}

#[test]
fn mq_timed_out_ko_160x45() {
    insta::assert_snapshot!(render_text(&timed_out(), &focused(Lang::Ko), 160, 45));
}

#[test]
fn mq_grid_en_80x24() {
    insta::assert_snapshot!(render_text(&grid(), &view(Lang::En), 80, 24));
}

#[test]
fn mq_grid_ko_160x45() {
    insta::assert_snapshot!(render_text(&grid(), &view(Lang::Ko), 160, 45));
}
