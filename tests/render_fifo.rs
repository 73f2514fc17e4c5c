//! The named-pipe panel drawn from fixed snapshots, in both languages, at
//! the classroom's two sizes, in the grid and focused.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::fifo::{FifoDetail, FifoHolder};
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::render_text;

mod common;
use common::fixtures::{self, focused, run, view};

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
