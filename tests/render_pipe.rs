//! The pipe panel drawn from fixed snapshots, in both languages, at the
//! classroom's two sizes. A `.snap` diff is a diff of the screen.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::pipe::{EndsHeld, PipeDetail};
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::{render_text, View};

mod common;
use common::fixtures::{self, run, view};
#[path = "common/pipes_audit.rs"]
mod pipes_audit;
use ipcscope::ui::Theme;
use pipes_audit::{assert_nothing_cut, panel_text};

fn process(role: &str, pid: i32, state: &str, wchan: &str, op: &str, sent: u64, received: u64) -> ProcessSnapshot {
    fixtures::streaming(fixtures::process("write(5, 256 bytes) = 256", role, pid, state, wchan, op, sent, received))
}

fn held(role: &str, read: &[i32], write: &[i32]) -> EndsHeld {
    EndsHeld { role: role.into(), read: read.to_vec(), write: write.to_vec() }
}

/// The textbook moment: the consumer has stalled, the 64 KiB buffer is
/// full, and the producer sleeps in the kernel's pipe_write.
fn blocked_pipe() -> Snapshot {
    let m = MechanismSnapshot {
        latency_us: None,
        cost: None,
        kind: Kind::Pipe,
        processes: vec![
            process("producer", 4121, "S", "anon_pipe_write", "write()", 9216, 0),
            process("consumer", 4122, "S", "hrtimer_nanosleep", "stalled", 0, 8960),
        ],
        channel: Channel { depth: 65536, capacity: 65536, unit: Unit::Bytes, over: 0 },
        integrity: Integrity { delivered: 8960, ..Integrity::default() },
        history: (0..60).map(|i| (i * 2048).min(65536)).collect(),
        notes: vec![],
        knobs: vec![("producer.rate".into(), "1000".into()), ("consumer.rate".into(), "0".into())],
        detail: Detail::Pipe(PipeDetail {
            inode: Some(31337),
            read_ends: vec!["consumer fd 4".into()],
            write_ends: vec!["producer fd 5".into()],
            close_unused: true,
            duplex: false,
            reply: None,
            sigpipe: "default".into(),
            eof_seen: false,
            fd_pair: Some([4, 5]),
            holds: vec![held("producer", &[], &[5]), held("consumer", &[4], &[])],
            parent_child: Some(true),
            freed: false,
        }),
    };
    run(vec![m])
}

/// The classic bug: the consumer kept its write end, the producer is done,
/// and EOF never comes.
fn no_eof_pipe() -> Snapshot {
    let mut s = blocked_pipe();
    let m = &mut s.mechanisms[0];
    m.processes[0].exit = Some("exit 0".into());
    m.processes[0].state = "-".into();
    m.processes[1] = process("consumer", 4122, "S", "anon_pipe_read", "read()", 0, 50);
    m.channel.depth = 0;
    m.integrity.delivered = 50;
    m.notes = vec![Note {
        t_ms: 900,
        key: "no-eof".into(),
        text: "consumer: still waiting in read() — it holds a write end itself, so EOF never comes".into(),
        ..Note::default()
    }];
    #[allow(irrefutable_let_patterns)] // more mechanisms, more variants
    let Detail::Pipe(d) = &mut m.detail
    else {
        unreachable!()
    };
    d.write_ends = vec!["consumer fd 5".into()];
    d.close_unused = false;
    d.holds = vec![held("producer", &[], &[]), held("consumer", &[4], &[5])];
    s
}

#[test]
fn blocked_pipe_en_80x24() {
    insta::assert_snapshot!(render_text(&blocked_pipe(), &view(Lang::En), 80, 24));
}

#[test]
fn blocked_pipe_ko_80x24() {
    insta::assert_snapshot!(render_text(&blocked_pipe(), &view(Lang::Ko), 80, 24));
}

#[test]
fn blocked_pipe_en_160x45() {
    insta::assert_snapshot!(render_text(&blocked_pipe(), &view(Lang::En), 160, 45));
}

#[test]
fn no_eof_ko_160x45() {
    insta::assert_snapshot!(render_text(&no_eof_pipe(), &view(Lang::Ko), 160, 45));
}

#[test]
fn help_overlay_en_80x24() {
    let v = View { help: true, ..view(Lang::En) };
    insta::assert_snapshot!(render_text(&blocked_pipe(), &v, 80, 24));
}

#[test]
fn too_small_terminal() {
    insta::assert_snapshot!(render_text(&blocked_pipe(), &view(Lang::En), 79, 24));
}

/// Seven cells in the grid: a compact pipe panel must still say the
/// important things at 80×24.
#[test]
fn compact_grid_cell() {
    let s = fixtures::grid(blocked_pipe(), 4);
    insta::assert_snapshot!(render_text(&s, &view(Lang::En), 80, 24));
}

#[test]
fn rendering_is_a_pure_function() {
    let a = render_text(&blocked_pipe(), &view(Lang::Ko), 120, 36);
    let b = render_text(&blocked_pipe(), &view(Lang::Ko), 120, 36);
    assert_eq!(a, b);
}

/// A note is a message key plus arguments, built when drawn: one with a
/// figure in it is Korean too (before, only figure-free notes were).
#[test]
fn a_note_with_figures_is_drawn_in_the_chosen_language() {
    let mut s = blocked_pipe();
    s.mechanisms[0].notes = vec![Note {
        t_ms: 900,
        key: "lost-in-pipe".into(),
        msg: "note_pipe_lost_in_pipe".into(),
        args: vec![("n".into(), "7".into())],
        text: "7 messages were still in the pipe when the reader died: they are lost".into(),
    }];
    let ko = render_text(&s, &view(Lang::Ko), 120, 36);
    assert!(ko.contains("메시지 7개"), "{ko}");
    let en = render_text(&s, &view(Lang::En), 120, 36);
    assert!(en.contains("7 messages were still in the pipe"), "{en}");
}

/// The diagram alone at each level of detail: `tiny` (a 80×24 grid cell),
/// `low` (100×30), `compact` (160×45) and `full` (zoomed), in both
/// languages, the default and the projector theme (its gauges two rows
/// thick).
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

diagram!(diagram_tiny_en, blocked_pipe(), 40, 6, Lang::En, Theme::Default);
diagram!(diagram_tiny_ko, blocked_pipe(), 40, 6, Lang::Ko, Theme::Default);
diagram!(diagram_low_en, blocked_pipe(), 50, 7, Lang::En, Theme::Default);
diagram!(diagram_low_ko_projector, blocked_pipe(), 50, 7, Lang::Ko, Theme::Projector);
diagram!(diagram_compact_en, blocked_pipe(), 53, 14, Lang::En, Theme::Default);
diagram!(diagram_compact_ko, blocked_pipe(), 53, 14, Lang::Ko, Theme::Default);
diagram!(diagram_compact_en_projector, blocked_pipe(), 53, 14, Lang::En, Theme::Projector);
diagram!(diagram_compact_ko_projector, blocked_pipe(), 53, 14, Lang::Ko, Theme::Projector);
diagram!(diagram_full_en, blocked_pipe(), 110, 22, Lang::En, Theme::Default);
diagram!(diagram_full_ko, blocked_pipe(), 110, 22, Lang::Ko, Theme::Default);
diagram!(diagram_full_en_projector, blocked_pipe(), 110, 22, Lang::En, Theme::Projector);
diagram!(diagram_full_ko_projector, blocked_pipe(), 110, 22, Lang::Ko, Theme::Projector);
diagram!(diagram_no_eof_compact_en, no_eof_pipe(), 53, 14, Lang::En, Theme::Default);
diagram!(diagram_no_eof_full_ko, no_eof_pipe(), 110, 22, Lang::Ko, Theme::Default);
diagram!(diagram_duplex_full_en, duplex_pipe(), 110, 22, Lang::En, Theme::Default);

/// Duplex: a second pipe carries the consumer's replies back.
fn duplex_pipe() -> Snapshot {
    let mut s = blocked_pipe();
    let m = &mut s.mechanisms[0];
    m.processes[1] = process("consumer", 4122, "S", "anon_pipe_read", "read()", 8960, 8960);
    m.channel.depth = 512;
    #[allow(irrefutable_let_patterns)]
    let Detail::Pipe(d) = &mut m.detail
    else {
        unreachable!()
    };
    d.duplex = true;
    d.reply = Some(Channel { depth: 256, capacity: 65536, unit: Unit::Bytes, over: 0 });
    s
}

/// The parent holds only fd[1] and the child only fd[0]: the figure draws
/// the other two closed, with the numbers pipe() gave them.
#[test]
fn the_unused_ends_are_drawn_closed() {
    let v = pipes_audit::view(Lang::En, Theme::Default, false);
    let text = panel_text(&blocked_pipe().mechanisms[0], &v, 53, 14);
    let row = |a: &str, b: &str| text.lines().any(|l| l.contains(a) && l.contains(b));
    assert!(row("fd[0] 4 ✕ closed", "fd[0] 4 ● read end"), "{text}");
    assert!(row("fd[1] 5 ● write end", "fd[1] 5 ✕ closed"), "{text}");
    assert!(text.contains("■ BLOCKED: buffer full"), "{text}");
    // Left open by the child (close_unused off): drawn open, and unused.
    let text = panel_text(&no_eof_pipe().mechanisms[0], &v, 53, 14);
    assert!(text.contains("fd[1] 5 ● open, unused"), "{text}");
}

/// At every class size, in both languages and every theme, zoomed and in
/// the grid, no number of the snapshot is cut.
#[test]
fn nothing_is_cut_at_any_size() {
    assert_nothing_cut(&blocked_pipe(), 7);
    assert_nothing_cut(&no_eof_pipe(), 7);
    assert_nothing_cut(&duplex_pipe(), 7);
}

#[test]
fn the_cut_detector_sees_a_cut() {
    let s = blocked_pipe();
    assert_eq!(pipes_audit::cut_numbers("│F_GETPIPE_SZ 655│\n", &s).len(), 1);
    assert!(pipes_audit::cut_numbers("│F_GETPIPE_SZ 65536│\n", &s).is_empty());
}
