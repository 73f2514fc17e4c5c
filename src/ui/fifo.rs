//! The named-pipe (FIFO) panel:
//!
//! ```text
//! ┌ 2  named pipe (FIFO)  mkfifo: unrelated processes meet by path ──────────┐
//! │╭ writers ─────────────╮ write() ╔ FIFO (kernel pipe buffer) ╗ read() ╭ reader ╮│
//! ││1   4121 S BLOCKED …  │ ──────▶ ║█████████░░░ 48.0K/64.0K   ║ ─────▶ │pid 4123││
//! ││2   4122 S paced      │         ║FIONREAD 49152             ║        │S paced ││
//! │╰──────────────────────╯         ╚═══════════════════════════╝        ╰────────╯│
//! │ prw------- 1 root root 0 /tmp/ipcscope-0/4120/fifo                          │
//! │ open by: reader fd 4 r · writer-1 fd 4 w · outside: cat 999 r                │
//! │ msg.size 256 ≤ PIPE_BUF 4096: each write() lands whole …                     │
//! │ delivered 1200  lost 0  corrupt 0  dup 0  reordered 0                        │
//! │ Linux FIFO: one direction at a time … Windows named pipe: full duplex …     │
//! └──────────────────────────────────────────────────────────────────────────────┘
//! ```
//! Small cells get a compact, line-by-line version of the same facts.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;

use super::widgets::{self, gauge_line, integrity_line, note_lines, process_box};
use super::View;
use crate::i18n::t;
use crate::model::detail::fifo::FifoDetail;
use crate::model::snapshot::{MechanismSnapshot, ProcessSnapshot, Role, Wait};

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &FifoDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let inner = widgets::panel(f, area, n, t(l, "fifo_title"), t(l, "fifo_sub"), selected, view);
    if widgets::roomy(inner) {
        full(f, inner, m, d, view);
    } else {
        compact(f, inner, m, d, view);
    }
}

/// `writer-1` → `writer 1` in the view's language.
fn role_label(role: &str, view: &View) -> String {
    match Role::parse(role) {
        Role::Writer(i) => format!("{} {i}", t(view.lang, "writer")),
        Role::Reader => t(view.lang, "reader").into(),
        _ => role.into(),
    }
}

/// Every writer on its line (and the reader after them, if given), labels
/// padded to one width.
fn writer_lines(writers: &[ProcessSnapshot], reader: Option<&ProcessSnapshot>, view: &View) -> Vec<Line<'static>> {
    let procs: Vec<_> = writers.iter().chain(reader).map(|p| (p, role_label(&p.role, view))).collect();
    widgets::process_lines(&procs, view)
}

/// The `ls -l` line, or a notice that the FIFO is gone.
fn ls_line(d: &FifoDetail, width: u16, view: &View) -> Line<'static> {
    let th = view.theme;
    if !d.exists {
        return Line::from(vec![
            Span::styled(widgets::pad_left_cut(&d.path, 40.min(width as usize)), th.dim()),
            Span::styled(format!("  {}", t(view.lang, "fifo_gone")), th.warn()),
        ]);
    }
    Line::from(Span::styled(widgets::pad_left_cut(&d.ls_line, width as usize), th.value()))
}

/// Who has the FIFO open: ours first, then anyone else (warned).
fn holder_line(d: &FifoDetail, view: &View) -> Line<'static> {
    let l = view.lang;
    let th = view.theme;
    let mut spans = vec![Span::styled(format!("{}: ", t(l, "open_by")), th.label())];
    let ours: Vec<String> = d
        .holders
        .iter()
        .filter_map(|h| h.role.as_ref().map(|r| format!("{} fd {} {}", role_label(r, view), h.fd, h.mode)))
        .collect();
    spans.push(Span::styled(if ours.is_empty() { t(l, "nobody").to_string() } else { ours.join(" · ") }, th.value()));
    for h in d.external() {
        spans.push(Span::styled(format!("  {}: ", t(l, "outside")), th.label()));
        spans.push(Span::styled(
            format!("{} {} fd {} {}", h.comm, widgets::pid(h.pid).trim_start(), h.fd, h.mode),
            th.warn(),
        ));
    }
    Line::from(spans)
}

fn atomic_line(d: &FifoDetail, view: &View) -> Line<'static> {
    let th = view.theme;
    let (key, style) = if d.atomic { ("fifo_atomic", th.good()) } else { ("fifo_not_atomic", th.bad()) };
    Line::from(vec![
        Span::styled(format!("msg.size {} ", d.msg_size), th.label()),
        Span::styled(t(view.lang, key).replace("{b}", &d.pipe_buf.to_string()), style),
    ])
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &FifoDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let writers: Vec<ProcessSnapshot> = m.processes.iter().skip(1).cloned().collect();
    let top = (writers.len() as u16 + 2).max(8);
    let rows =
        Layout::vertical([Constraint::Length(top), Constraint::Length(4), Constraint::Length(1), Constraint::Min(1)])
            .split(area);
    let [left, mid, right] = widgets::flow_row(f, rows[0], "write()", "read()", view);
    let wblock = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(Span::styled(format!(" {} ×{} ", t(l, "writers"), writers.len()), th.title()));
    let wi = wblock.inner(left);
    f.render_widget(wblock, left);
    f.render_widget(Paragraph::new(writer_lines(&writers, None, view)), wi);
    if let Some(r) = m.processes.first() {
        process_box(f, right, r, t(l, "reader"), view);
    }
    let bi = widgets::object_box(f, mid, t(l, "fifo_buffer"), view);
    let mut lines = vec![
        gauge_line(&m.channel, bi.width, view),
        widgets::sparkline(&m.history, m.channel.capacity, bi.width as usize, view),
        widgets::pairs_line(
            &[("FIONREAD", m.channel.depth.to_string()), ("F_GETPIPE_SZ", m.channel.capacity.to_string())],
            view,
        ),
        widgets::pairs_line(&[("inode", d.inode.to_string())], view),
    ];
    if m.channel.capacity > 0 && m.channel.depth >= m.channel.capacity {
        lines.push(Line::from(Span::styled(t(l, "blocked_full"), th.bad())));
    }
    f.render_widget(Paragraph::new(lines), bi);

    let info = vec![
        ls_line(d, area.width, view),
        holder_line(d, view),
        atomic_line(d, view),
        Line::from(Span::styled(t(l, "fifo_lesson"), th.dim())),
    ];
    f.render_widget(Paragraph::new(info), rows[1]);
    f.render_widget(Paragraph::new(integrity_line(&m.integrity, view)), rows[2]);
    widgets::notes_or_knobs(f, rows[3], m, view);
}

/// For small grid cells: the same facts, one per line, most important
/// first. Writers fold into one line when there is no room for each.
fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &FifoDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let mut lines = vec![gauge_line(&m.channel, area.width, view)];
    let writers: Vec<ProcessSnapshot> = m.processes.iter().skip(1).cloned().collect();
    let reader_label = t(l, "reader");
    if area.height as usize >= writers.len() + 4 {
        lines.extend(writer_lines(&writers, m.processes.first(), view));
    } else {
        // `writers ×2: S BLOCKED in write` — the first writer speaks for all.
        if let Some(p) = writers.first() {
            lines.push(Line::from(vec![
                Span::styled(format!("{} ×{} ", t(l, "writers"), writers.len()), th.label()),
                Span::styled(widgets::state_text(p, view), th.state(p)),
            ]));
        }
        if let Some(r) = m.processes.first() {
            lines.push(widgets::process_line(r, reader_label, view));
        }
    }
    lines.push(integrity_line(&m.integrity, view));
    if d.external().next().is_some() {
        lines.push(holder_line(d, view));
    }
    lines.extend(note_lines(&m.notes, 2, view));
    lines.push(ls_line(d, area.width, view));
    lines.push(atomic_line(d, view));
    lines.truncate(area.height as usize);
    f.render_widget(Paragraph::new(lines), area);
}

/// `writer-1` → `writer 1` / `쓰기 1`, for a lesson sentence.
fn role_in(role: &str, lang: crate::i18n::Lang) -> String {
    match Role::parse(role) {
        Role::Writer(i) => format!("{} {i}", t(lang, "writer")),
        Role::Reader => t(lang, "reader").into(),
        _ => role.into(),
    }
}

/// Sentences for the lesson pane about what the snapshot shows now.
pub fn observe(m: &MechanismSnapshot, d: &FifoDetail, lang: crate::i18n::Lang) -> Vec<String> {
    use crate::i18n::tf;
    let mut out = Vec::new();
    let Some(reader) = m.processes.first() else { return out };
    let writers = &m.processes[1..];
    let names = |ps: Vec<&ProcessSnapshot>| ps.iter().map(|p| role_in(&p.role, lang)).collect::<Vec<_>>().join(", ");

    for h in d.external() {
        out.push(tf(
            lang,
            if h.mode.contains('w') { "obs_fifo_external_w" } else { "obs_fifo_external_r" },
            &[("comm", h.comm.clone()), ("pid", h.pid.to_string())],
        ));
    }
    let killed: Vec<&ProcessSnapshot> =
        writers.iter().filter(|p| p.exit_cause().is_some_and(|e| e.sigpipe())).collect();
    if !killed.is_empty() {
        out.push(tf(lang, "obs_fifo_sigpipe", &[("who", names(killed))]));
    }
    if d.exists && d.holders.is_empty() && m.processes.iter().any(|p| p.exit.is_some()) {
        let gone = m.processes.iter().filter(|p| p.exit.is_some()).count();
        out.push(tf(
            lang,
            "obs_fifo_outlives",
            &[("n", gone.to_string()), ("ls", d.ls_line.split_whitespace().next().unwrap_or("p").to_string())],
        ));
    }
    let in_open = |p: &&ProcessSnapshot| p.alive() && p.sleeps_in() == Wait::FifoOpen;
    let waiting: Vec<&ProcessSnapshot> = writers.iter().filter(in_open).collect();
    if !waiting.is_empty() {
        out.push(tf(lang, "obs_fifo_writer_open", &[("who", names(waiting))]));
    }
    if in_open(&reader) {
        if d.eofs > 0 {
            out.push(tf(lang, "obs_fifo_reader_reopen", &[("n", d.eofs.to_string())]));
        } else {
            out.push(t(lang, "obs_fifo_reader_open").into());
        }
    }
    let c = &m.channel;
    let blocked: Vec<&ProcessSnapshot> =
        writers.iter().filter(|p| p.alive() && p.sleeps_in() == Wait::PipeWrite && p.blocked()).collect();
    let rate: f64 = writers.iter().filter(|p| p.alive()).map(|p| p.send_rate).sum();
    let alive = writers.iter().filter(|p| p.alive()).count();
    if !blocked.is_empty() && c.capacity > 0 && c.depth >= c.capacity {
        out.push(tf(lang, "obs_fifo_full", &[("cap", widgets::kib(c.capacity)), ("who", names(blocked))]));
    } else if reader.alive() && reader.sleeps_in() == Wait::PipeRead && c.depth == 0 {
        out.push(t(lang, "obs_fifo_empty").into());
    } else if rate > 0.0 && reader.alive() {
        out.push(tf(
            lang,
            if d.atomic { "obs_fifo_flow" } else { "obs_fifo_interleave" },
            &[
                ("n", alive.to_string()),
                ("rate", widgets::rate(rate)),
                ("size", d.msg_size.to_string()),
                ("pipe_buf", d.pipe_buf.to_string()),
            ],
        ));
    }
    out
}
