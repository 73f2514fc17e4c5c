//! The shared-memory panel drawn from fixed snapshots, in both languages,
//! at the classroom's two sizes, in the grid and focused.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::shm::{ShmDetail, ShmMap};
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::render_text;

mod common;
use common::fixtures::{self, focused, run, view};
#[path = "common/pipes_audit.rs"]
mod pipes_audit;
use ipcscope::ui::Theme;
use pipes_audit::{assert_nothing_cut, panel_text};

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
        latency_us: None,
        cost: None,
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
                ShmMap {
                    role: "producer".into(),
                    pid: 4121,
                    start: 0x7f3a_1c40_0000,
                    end: 0x7f3a_1c40_4000,
                    perms: "rw-s".into(),
                },
                ShmMap {
                    role: "consumer".into(),
                    pid: 4122,
                    start: 0x7f9b_2200_0000,
                    end: 0x7f9b_2200_4000,
                    perms: "rw-s".into(),
                },
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

/// The diagram alone at each level of detail: `tiny` (a 80×24 grid cell),
/// `low` (100×30), `compact` (160×45) and `full` (zoomed), in both
/// languages, the default and the projector theme.
macro_rules! diagram {
    ($name:ident, $fixture:expr, $w:expr, $h:expr, $lang:expr, $theme:expr) => {
        #[test]
        fn $name() {
            let s = $fixture;
            let v = pipes_audit::view($lang, $theme, false);
            insta::assert_snapshot!(panel_text(&s.mechanisms[0], &v, $w, $h));
        }
    };
}

diagram!(diagram_tiny_en, full_ring(), 40, 6, Lang::En, Theme::Default);
diagram!(diagram_tiny_ko, full_ring(), 40, 6, Lang::Ko, Theme::Default);
diagram!(diagram_low_en, flowing_ring(), 50, 7, Lang::En, Theme::Default);
diagram!(diagram_low_ko_projector, full_ring(), 50, 7, Lang::Ko, Theme::Projector);
diagram!(diagram_compact_en, full_ring(), 53, 14, Lang::En, Theme::Default);
diagram!(diagram_compact_ko, flowing_ring(), 53, 14, Lang::Ko, Theme::Default);
diagram!(diagram_compact_en_projector, flowing_ring(), 53, 14, Lang::En, Theme::Projector);
diagram!(diagram_compact_ko_projector, full_ring(), 53, 14, Lang::Ko, Theme::Projector);
diagram!(diagram_full_en, full_ring(), 110, 24, Lang::En, Theme::Default);
diagram!(diagram_full_ko, flowing_ring(), 110, 24, Lang::Ko, Theme::Default);
diagram!(diagram_full_en_projector, flowing_ring(), 110, 24, Lang::En, Theme::Projector);
diagram!(diagram_full_ko_projector, full_ring(), 110, 24, Lang::Ko, Theme::Projector);
diagram!(diagram_many_slots_compact_en, many_slots(), 53, 14, Lang::En, Theme::Default);

/// 256 slots: more than a cell row holds, so slots share cells.
fn many_slots() -> Snapshot {
    let mut s = flowing_ring();
    let m = &mut s.mechanisms[0];
    m.channel = Channel { depth: 100, capacity: 256, unit: Unit::Slots, over: 0 };
    let Detail::Shm(d) = &mut m.detail else { unreachable!() };
    d.slots = 256;
    d.slot_size = 8;
    d.in_idx = 9395;
    d.out_idx = 9295;
    s
}

/// One region, two address spaces: each process's own address of the
/// same object, and the slots filled between out and in.
#[test]
fn one_region_is_drawn_in_two_address_spaces() {
    let v = pipes_audit::view(Lang::En, Theme::Default, false);
    let text = panel_text(&full_ring().mechanisms[0], &v, 53, 14);
    assert!(text.contains("0x7f3a1c400000") && text.contains("0x7f9b22000000"), "{text}");
    assert!(text.contains("/dev/shm/ipcscope-4120-abcd1234-shm"), "{text}");
    assert!(text.contains("16/16"), "{text}");
    let text = panel_text(&flowing_ring().mechanisms[0], &v, 53, 14);
    // 9295 % 16 = 15 and 9300 % 16 = 4: slots 15, 0, 1, 2, 3 are full.
    let ring = text.lines().find(|l| l.contains("5/16")).expect("the ring");
    let cells: String = ring.chars().filter(|c| *c == '■' || *c == '□').collect();
    assert_eq!(cells, "■■■■□□□□□□□□□□□■", "{text}");
}

/// At every class size, in both languages and every theme, zoomed and in
/// the grid, no number of the snapshot is cut.
#[test]
fn nothing_is_cut_at_any_size() {
    assert_nothing_cut(&full_ring(), 7);
    assert_nothing_cut(&flowing_ring(), 7);
    assert_nothing_cut(&many_slots(), 7);
}
