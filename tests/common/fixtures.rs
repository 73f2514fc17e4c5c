//! Builders shared by the render tests (`tests/render_*.rs`): fixed
//! processes, runs and views, so each test file only says what is special
//! about its mechanism's panel.

use ipcscope::i18n::Lang;
use ipcscope::snapshot::*;
use ipcscope::ui::View;

/// The supervisor pid of the fixture runs, and their runtime dir.
pub const RUN_PID: i32 = 4120;
pub const RUN_DIR: &str = "/tmp/ipcscope-0/4120";

/// A worker as a panel draws it, its last call `event` tagged with its
/// role; sending at 1000 messages/s while it has sent anything.
#[allow(clippy::too_many_arguments)]
pub fn process(
    event: &str,
    role: &str,
    pid: i32,
    state: &str,
    wchan: &str,
    op: &str,
    sent: u64,
    received: u64,
) -> ProcessSnapshot {
    ProcessSnapshot {
        role: role.into(),
        pid,
        state: state.into(),
        wchan: wchan.into(),
        op: op.into(),
        op_ms: 840,
        sent,
        received,
        send_rate: if sent > 0 { 1000.0 } else { 0.0 },
        events: vec![Event { t_ms: 10, text: format!("{event} [{role}]") }],
        ..ProcessSnapshot::default()
    }
}

/// A byte-stream worker (pipe, socket): 256-byte messages counted in
/// bytes too, in its current call for longer.
pub fn streaming(p: ProcessSnapshot) -> ProcessSnapshot {
    ProcessSnapshot { op_ms: 1840, bytes_sent: p.sent * 256, bytes_received: p.received * 256, ..p }
}

/// A run of supervisor `pid` at 12.3 s, sampled at 10 Hz.
pub fn run_of(pid: i32, mechanisms: Vec<MechanismSnapshot>) -> Snapshot {
    Snapshot {
        version: SNAPSHOT_VERSION,
        t_ms: 12_300,
        run: RunInfo { pid, runtime_dir: format!("/tmp/ipcscope-0/{pid}"), hz: 10, ..RunInfo::default() },
        mechanisms,
    }
}

/// A run of the fixture supervisor [`RUN_PID`].
pub fn run(mechanisms: Vec<MechanismSnapshot>) -> Snapshot {
    run_of(RUN_PID, mechanisms)
}

/// `n` copies of the run's first panel, as the grid draws several.
pub fn grid(mut s: Snapshot, n: usize) -> Snapshot {
    let one = s.mechanisms[0].clone();
    s.mechanisms = vec![one; n];
    s
}

/// The grid view in `lang`.
pub fn view(lang: Lang) -> View {
    View { lang, ..View::default() }
}

/// One panel focused, in `lang`.
pub fn focused(lang: Lang) -> View {
    View { lang, focused: true, ..View::default() }
}
