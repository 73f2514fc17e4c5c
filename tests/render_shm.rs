//! The shared-memory panel drawn from fixed snapshots, in both languages,
//! at the classroom's two sizes, in the grid and focused.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::shm::{ShmDetail, ShmMap};
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::render_text;

mod common;
use common::fixtures::{self, focused, run, view};

fn process(role: &str, pid: i32, state: &str, wchan: &str, op: &str, sent: u64, received: u64) -> ProcessSnapshot {
    fixtures::process("slot[3] ← 256 bytes; in = 4", role, pid, state, wchan, op, sent, received)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Consumer stalled: all 16 slots full, the producer asleep on `out`.
fn full_ring() -> Snapshot {
    let mut head = Vec::new();
    for w in [u64::from_le_bytes(*b"ipcsring"), 9232, 9216, 16, 1016, 0, 0, 0] {
        head.extend(w.to_le_bytes());
    }
    head.extend(b"IPCS\x00\x00\x01\x00");
    head.extend((0u8..56).map(|i| i.wrapping_mul(37)));
    let m = MechanismSnapshot {
        kind: Kind::Shm,
        processes: vec![
            process("producer", 4121, "S", "futex_do_wait", "futex wait", 9232, 0),
            process("consumer", 4122, "S", "hrtimer_nanosleep", "stalled", 0, 9216),
        ],
        channel: Channel { depth: 16, capacity: 16, unit: Unit::Slots, over: 0 },
        integrity: Integrity { delivered: 9216, ..Integrity::default() },
        history: (0..40).map(|i| (i / 2).min(16)).collect(),
        notes: vec![],
        knobs: vec![("producer.rate".into(), "1000".into()), ("consumer.rate".into(), "0".into())],
        detail: Detail::Shm(ShmDetail {
            name: "/ipcscope-4120-abcd1234-shm".into(),
            path: "/dev/shm/ipcscope-4120-abcd1234-shm".into(),
            exists: true,
            size: 16384,
            mode: 0o600,
            nlink: 1,
            mapped: true,
            in_idx: 9232,
            out_idx: 9216,
            slots: 16,
            slot_size: 1016,
            closed: false,
            msg_size: 256,
            msg_size_knob: 256,
            head_hex: hex(&head),
            next_offset: 64,
            next_hex: hex(&head[64..]),
            futex_waits: vec![("producer".into(), "out".into())],
            maps: vec![
                ShmMap { role: "producer".into(), pid: 4121, start: 0x7f3a_1c40_0000, end: 0x7f3a_1c40_4000, perms: "rw-s".into() },
                ShmMap { role: "consumer".into(), pid: 4122, start: 0x7f9b_2200_0000, end: 0x7f9b_2200_4000, perms: "rw-s".into() },
            ],
        }),
    };
    run(vec![m])
}

/// Flowing, part full, with msg.size cut to a small slot.
fn flowing_ring() -> Snapshot {
    let mut s = full_ring();
    let m = &mut s.mechanisms[0];
    m.processes[0] = process("producer", 4121, "S", "hrtimer_nanosleep", "paced", 9300, 0);
    m.processes[1] = process("consumer", 4122, "S", "futex_do_wait", "futex wait", 0, 9295);
    m.channel.depth = 5;
    let Detail::Shm(d) = &mut m.detail else { unreachable!() };
    d.in_idx = 9300;
    d.out_idx = 9295;
    d.msg_size = 1016;
    d.msg_size_knob = 2048;
    d.futex_waits = vec![("consumer".into(), "in".into())];
    m.notes = vec![Note {
        t_ms: 100,
        key: "clamped".into(),
        text: "producer: msg.size is larger than a slot — messages are cut to the slot size".into(),
        ..Note::default()
    }];
    s
}

/// Seven panels share 80×24: the shm cell must still say the essentials.
fn grid() -> Snapshot {
    fixtures::grid(full_ring(), 7)
}

#[test]
fn shm_focused_en_80x24() {
    insta::assert_snapshot!(render_text(&full_ring(), &focused(Lang::En), 80, 24));
}

#[test]
fn shm_focused_ko_80x24() {
    insta::assert_snapshot!(render_text(&full_ring(), &focused(Lang::Ko), 80, 24));
}

#[test]
fn shm_focused_en_160x45() {
    insta::assert_snapshot!(render_text(&full_ring(), &focused(Lang::En), 160, 45));
}

#[test]
fn shm_flowing_ko_160x45() {
    insta::assert_snapshot!(render_text(&flowing_ring(), &focused(Lang::Ko), 160, 45));
}

#[test]
fn shm_grid_en_80x24() {
    insta::assert_snapshot!(render_text(&grid(), &view(Lang::En), 80, 24));
}

#[test]
fn shm_grid_ko_160x45() {
    insta::assert_snapshot!(render_text(&grid(), &view(Lang::Ko), 160, 45));
}
