//! The named-pipe panel drawn from fixed snapshots, in both languages, at
//! the classroom's two sizes, in the grid and focused.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::fifo::{FifoDetail, FifoHolder};
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
    fixtures::process("write(4, 256 bytes) = 256", role, pid, state, wchan, op, sent, received)
}

fn holder(pid: i32, comm: &str, mode: &str, role: Option<&str>) -> FifoHolder {
    FifoHolder { pid, fd: 4, comm: comm.into(), mode: mode.into(), role: role.map(Into::into) }
}

/// Reader stalled, two writers blocked on a full FIFO, and a `cat`-like
/// outsider writing into it from another terminal.
fn blocked_fifo() -> Snapshot {
    let m = MechanismSnapshot {
        latency_us: None,
        cost: None,
        kind: Kind::Fifo,
        processes: vec![
            process("reader", 4121, "S", "hrtimer_nanosleep", "stalled", 0, 4000),
            process("writer-1", 4122, "S", "anon_pipe_write", "write()", 2128, 0),
            process("writer-2", 4123, "S", "anon_pipe_write", "write()", 2128, 0),
        ],
        channel: Channel { depth: 65536, capacity: 65536, unit: Unit::Bytes, over: 0 },
        integrity: Integrity { delivered: 4000, foreign: 28, ..Integrity::default() },
        history: (0..40).map(|i| (i * 4096).min(65536)).collect(),
        notes: vec![Note {
            t_ms: 900,
            key: "external-5150".into(),
            text: "bash writer (pid 5150) opened the FIFO by its path — another process can join".into(),
            ..Note::default()
        }],
        knobs: vec![("producer.rate".into(), "1000".into()), ("consumer.rate".into(), "0".into())],
        detail: Detail::Fifo(FifoDetail {
            path: "/tmp/ipcscope-0/4120/fifo".into(),
            exists: true,
            ls_line: "prw------- 1 root root 0 /tmp/ipcscope-0/4120/fifo".into(),
            mode: 0o10600,
            inode: 31337,
            writers: 2,
            pipe_buf: 4096,
            msg_size: 256,
            atomic: true,
            holders: vec![
                holder(4121, "fifo-reader", "r", Some("reader")),
                holder(4122, "fifo-writer-1", "w", Some("writer-1")),
                holder(4123, "fifo-writer-2", "w", Some("writer-2")),
                holder(5150, "bash", "w", None),
            ],
            sigpipe: "default".into(),
            eofs: 0,
        }),
    };
    run(vec![m])
}

/// The writers are done; the reader saw EOF and waits in open() again.
fn waiting_in_open() -> Snapshot {
    let mut s = blocked_fifo();
    let m = &mut s.mechanisms[0];
    m.processes[0] = process("reader", 4121, "S", "wait_for_partner", "open()", 0, 200);
    for w in &mut m.processes[1..] {
        w.exit = Some("exit 0".into());
        w.state = "-".into();
    }
    m.channel.depth = 0;
    m.integrity = Integrity { delivered: 200, ..Integrity::default() };
    m.notes = vec![Note {
        t_ms: 900,
        key: "reopen".into(),
        text: "reader: every writer closed (EOF); it opened the FIFO again and waits in open() for the next writer"
            .into(),
        ..Note::default()
    }];
    let Detail::Fifo(d) = &mut m.detail else { unreachable!() };
    d.holders.clear();
    d.eofs = 1;
    s
}

fn grid() -> Snapshot {
    fixtures::grid(blocked_fifo(), 7)
}

#[test]
fn fifo_focused_en_80x24() {
    insta::assert_snapshot!(render_text(&blocked_fifo(), &focused(Lang::En), 80, 24));
}

#[test]
fn fifo_focused_ko_80x24() {
    insta::assert_snapshot!(render_text(&blocked_fifo(), &focused(Lang::Ko), 80, 24));
}

#[test]
fn fifo_focused_en_160x45() {
    insta::assert_snapshot!(render_text(&blocked_fifo(), &focused(Lang::En), 160, 45));
}

#[test]
fn fifo_waiting_in_open_ko_160x45() {
    insta::assert_snapshot!(render_text(&waiting_in_open(), &focused(Lang::Ko), 160, 45));
}

#[test]
fn fifo_grid_en_80x24() {
    insta::assert_snapshot!(render_text(&grid(), &view(Lang::En), 80, 24));
}

#[test]
fn fifo_grid_ko_160x45() {
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

diagram!(diagram_tiny_en, blocked_fifo(), 40, 6, Lang::En, Theme::Default);
diagram!(diagram_tiny_ko, blocked_fifo(), 40, 6, Lang::Ko, Theme::Default);
diagram!(diagram_low_en, blocked_fifo(), 50, 7, Lang::En, Theme::Default);
diagram!(diagram_low_ko_projector, blocked_fifo(), 50, 7, Lang::Ko, Theme::Projector);
diagram!(diagram_compact_en, blocked_fifo(), 53, 14, Lang::En, Theme::Default);
diagram!(diagram_compact_ko, blocked_fifo(), 53, 14, Lang::Ko, Theme::Default);
diagram!(diagram_compact_en_projector, blocked_fifo(), 53, 14, Lang::En, Theme::Projector);
diagram!(diagram_compact_ko_projector, blocked_fifo(), 53, 14, Lang::Ko, Theme::Projector);
diagram!(diagram_full_en, blocked_fifo(), 110, 22, Lang::En, Theme::Default);
diagram!(diagram_full_ko, blocked_fifo(), 110, 22, Lang::Ko, Theme::Default);
diagram!(diagram_full_en_projector, blocked_fifo(), 110, 22, Lang::En, Theme::Projector);
diagram!(diagram_full_ko_projector, blocked_fifo(), 110, 22, Lang::Ko, Theme::Projector);
diagram!(diagram_reopen_compact_ko, waiting_in_open(), 53, 14, Lang::Ko, Theme::Default);
diagram!(diagram_eight_writers_compact_en, eight_writers(), 53, 14, Lang::En, Theme::Default);

/// `fifo.writers=8` and a `cat` reading from another terminal: more
/// writers than rows, counted; the outside reader beside ours.
fn eight_writers() -> Snapshot {
    let mut s = blocked_fifo();
    let m = &mut s.mechanisms[0];
    for i in 3..=8 {
        m.processes.push(process(&format!("writer-{i}"), 4120 + i + 1, "S", "anon_pipe_write", "write()", 500, 0));
    }
    let Detail::Fifo(d) = &mut m.detail else { unreachable!() };
    d.holders.push(holder(5151, "cat", "r", None));
    d.writers = 8;
    s
}

/// The figure names the node as the file system has it, draws every
/// writer and the reader at it, and the outsider who opened the path.
#[test]
fn writers_and_readers_meet_at_the_named_node() {
    let v = pipes_audit::view(Lang::En, Theme::Default, false);
    let text = panel_text(&blocked_fifo().mechanisms[0], &v, 53, 14);
    assert!(text.contains("/tmp/ipcscope-0/4120/fifo"), "{text}");
    assert!(text.contains("p rw-------") && text.contains("inode 31337"), "{text}");
    for who in ["writer 1", "writer 2", "bash", "reader"] {
        assert!(text.contains(who), "{who} missing:\n{text}");
    }
    assert!(text.contains("outside"), "{text}");
    let text = panel_text(&eight_writers().mechanisms[0], &v, 53, 14);
    assert!(text.contains("more") && text.contains("cat"), "{text}");
}

/// At every class size, in both languages and every theme, zoomed and in
/// the grid, no number of the snapshot is cut.
#[test]
fn nothing_is_cut_at_any_size() {
    assert_nothing_cut(&blocked_fifo(), 7);
    assert_nothing_cut(&waiting_in_open(), 7);
    assert_nothing_cut(&eight_writers(), 7);
}
