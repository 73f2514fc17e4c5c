//! The pipe panel drawn from fixed snapshots, in both languages, at the
//! classroom's two sizes. A `.snap` diff is a diff of the screen.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::pipe::{EndsHeld, PipeDetail};
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::{render_text, View};

mod common;
use common::fixtures::{self, run, view};

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
