//! The message-queue panel drawn from fixed snapshots, in both languages,
//! at the classroom's two sizes, in the grid and focused.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::mq::MqDetail;
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::{render_text, Theme, View};

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
            // 10 waiting: p0 ×2, p1 ×2, p2 ×3, p3 ×3.
            sent_by_prio: vec![110, 100, 100, 100],
            recv_by_prio: vec![108, 98, 97, 97],
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

/// The view: grid or focused, in `lang` and `theme`.
fn look(lang: Lang, theme: Theme, focused: bool) -> View {
    View { lang, theme, focused, ..View::default() }
}

/// The compact diagram (a grid cell of 160×45: about 51×12 inside) and
/// the full one (focused), in both languages and both classroom themes.
#[test]
fn diagram_frames() {
    for (name, focused) in [("compact", false), ("full", true)] {
        for lang in [Lang::En, Lang::Ko] {
            for theme in [Theme::Default, Theme::Projector] {
                let snap = if focused { full_queue() } else { grid() };
                let frame = render_text(&snap, &look(lang, theme, focused), 160, 45);
                let id = format!("mq_{name}_{}_{}_160x45", if lang == Lang::Ko { "ko" } else { "en" }, theme.name());
                insta::assert_snapshot!(id, frame);
            }
        }
    }
}

/// The queue's blocks are the kernel's count, labelled with the workers'
/// counts by priority, highest next to the consumer; where the two
/// disagree at the sampling instant the blocks say `?` and the line says
/// why, never a made-up priority.
#[test]
fn blocks_show_priorities_highest_at_the_head() {
    let frame = render_text(&grid(), &look(Lang::En, Theme::Default, false), 160, 45);
    assert!(frame.contains("│0│0│1│1│2│2│2│3│3│3│"), "{frame}");
    assert!(frame.contains("p3 ×3 p2 ×3 p1 ×2 p0 ×2"), "{frame}");
    let mut s = full_queue();
    let Detail::Mq(d) = &mut s.mechanisms[0].detail else { unreachable!() };
    d.recv_by_prio[0] -= 1;
    let frame = render_text(&fixtures::grid(s, 7), &look(Lang::En, Theme::Default, false), 160, 45);
    assert!(frame.contains("│?│?│?│?│?│?│?│?│?│?│"), "{frame}");
    assert!(frame.contains("≠ curmsgs 10"), "{frame}");
}

/// Digit runs of a frame: `64.0K/10` gives 64, 0, 10; a `…N more` count
/// is the layout's own, not a fact.
fn numbers(frame: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in frame.split('…').enumerate() {
        let part = if i > 0 { part.trim_start_matches(|c: char| c.is_ascii_digit()) } else { part };
        out.extend(part.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(str::to_string));
    }
    out
}

/// At every classroom size, grid and focused, both languages, every
/// theme: each number drawn is one the roomiest frames draw whole (a cut
/// `4121` would show as `412`), and no fraction passes its capacity.
#[test]
fn nothing_cut_at_any_size() {
    let snaps = [full_queue(), timed_out()];
    let mut whole = std::collections::HashSet::new();
    for s in &snaps {
        for lang in [Lang::En, Lang::Ko] {
            for focused in [false, true] {
                let g = if focused { s.clone() } else { fixtures::grid(s.clone(), 7) };
                whole.extend(numbers(&render_text(&g, &look(lang, Theme::Default, focused), 250, 90)));
            }
        }
    }
    for s in &snaps {
        for (w, h) in [(80, 24), (100, 30), (120, 35), (160, 45), (200, 60)] {
            for lang in [Lang::En, Lang::Ko] {
                for theme in Theme::ALL {
                    for focused in [false, true] {
                        let g = if focused { s.clone() } else { fixtures::grid(s.clone(), 7) };
                        let frame = render_text(&g, &look(lang, theme, focused), w, h);
                        // The header and footer are not this panel's.
                        let body: String = frame.lines().skip(1).take(h as usize - 2).collect::<Vec<_>>().join("\n");
                        let body = body.split(" events ").next().unwrap_or(&body).to_string();
                        // Zoomed: the lesson and log panes below the panel are not its own.
                        let body = if focused { body.split("\n┌").next().unwrap_or(&body).to_string() } else { body };
                        for n in numbers(&body) {
                            assert!(
                                whole.contains(&n),
                                "{w}x{h} {lang:?} {theme:?} focused {focused}: `{n}` is not whole\n{frame}"
                            );
                        }
                        for frac in body.split_whitespace().filter_map(|t| t.split_once('/')) {
                            if let (Ok(a), Ok(b)) = (frac.0.parse::<u64>(), frac.1.parse::<u64>()) {
                                assert!(a <= b, "{w}x{h}: {a}/{b} past capacity\n{frame}");
                            }
                        }
                    }
                }
            }
        }
    }
}
