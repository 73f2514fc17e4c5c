//! The ordinary pipe's panel:
//!
//! ```text
//! ┌ 1  ordinary pipe  pipe() + fork(): parent → child ────────────────────┐
//! │╭ producer (parent) ╮  write()  ╭ kernel pipe buffer ╮ read() ╭ consumer ╮│
//! ││ pid     4121      │ ───────▶  │█████████░░ 48K/64K │ ─────▶ │ pid 4122 ││
//! ││ S BLOCKED in write│           │▁▂▄▆██████ (depth)  │        │ S paced  ││
//! │╰───────────────────╯           ╰────────────────────╯        ╰──────────╯│
//! │ read end: consumer fd 3   write end: producer fd 4                       │
//! │ delivered 1200  lost 0  corrupt 0  dup 0  reordered 0                    │
//! │ ▸ notes (EOF, EPIPE, SIGPIPE …)                                          │
//! └──────────────────────────────────────────────────────────────────────────┘
//! ```
//! Small cells get a compact, line-by-line version of the same facts.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;

use super::widgets::{self, gauge_line, integrity_line, note_lines, process_box};
use super::View;
use crate::i18n::{t, tf, Lang};
use crate::model::detail::pipe::PipeDetail;
use crate::model::snapshot::{MechanismSnapshot, Wait};

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &PipeDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let inner = widgets::panel(f, area, n, t(l, "pipe_title"), t(l, "pipe_sub"), selected, view);
    if widgets::roomy(inner) {
        full(f, inner, m, d, view);
    } else {
        compact(f, inner, m, d, view);
    }
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &PipeDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let rows = Layout::vertical([
        Constraint::Length(8),
        Constraint::Length(if d.duplex { 2 } else { 0 }),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .split(area);
    let cols = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Fill(1),
    ])
    .split(rows[0]);
    let prod = m.processes.first();
    let cons = m.processes.get(1);
    if let Some(p) = prod {
        let title = format!("{} ({})", t(l, "producer"), t(l, "parent"));
        process_box(f, cols[0], p, &title, view);
    }
    if let Some(c) = cons {
        let title = format!("{} ({})", t(l, "consumer"), t(l, "child"));
        process_box(f, cols[4], c, &title, view);
    }
    let arrow_area = |r: Rect| Rect { y: r.y + 2, height: 2, ..r };
    f.render_widget(Paragraph::new(widgets::arrow("write()", cols[1].width, th.label())), arrow_area(cols[1]));
    f.render_widget(Paragraph::new(widgets::arrow("read()", cols[3].width, th.label())), arrow_area(cols[3]));

    // The kernel's buffer between them.
    let buf_block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .title(Span::styled(format!(" {} ", t(l, "pipe_buffer")), th.title()));
    let bi = buf_block.inner(cols[2]);
    f.render_widget(buf_block, cols[2]);
    let full = m.channel.capacity > 0 && m.channel.depth >= m.channel.capacity;
    let mut lines = vec![
        gauge_line(&m.channel, bi.width, view),
        widgets::sparkline(&m.history, m.channel.capacity, bi.width as usize, view),
        Line::from(vec![
            Span::styled("FIONREAD ", th.label()),
            Span::styled(m.channel.depth.to_string(), th.value()),
            Span::styled("  F_GETPIPE_SZ ", th.label()),
            Span::styled(m.channel.capacity.to_string(), th.value()),
        ]),
    ];
    if let Some(ino) = d.inode {
        lines.push(Line::from(Span::styled(format!("pipe:[{ino}]"), th.dim())));
    }
    if full {
        lines.push(Line::from(Span::styled(t(l, "blocked_full"), th.bad())));
    }
    f.render_widget(Paragraph::new(lines), bi);

    if d.duplex {
        if let Some(r) = &d.reply {
            let line = Line::from(vec![Span::styled(format!("{} ◀ ", t(l, "reply_pipe")), th.label())]);
            let g = gauge_line(r, rows[1].width.saturating_sub(16), view);
            let mut spans = line.spans;
            spans.extend(g.spans);
            f.render_widget(Paragraph::new(Line::from(spans)), rows[1]);
        }
    }

    f.render_widget(Paragraph::new(ends_lines(d, view)), rows[2]);
    f.render_widget(Paragraph::new(integrity_line(&m.integrity, view)), rows[3]);
    widgets::notes_or_knobs(f, rows[4], m, view);
}

fn ends_lines(d: &PipeDetail, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let list = |v: &[String]| {
        if v.is_empty() {
            t(l, "nobody").to_string()
        } else {
            v.join(", ")
        }
    };
    // More than one holder of the write end is the classic bug: the
    // reader will never see EOF.
    let w_style = if d.write_ends.len() > 1 { th.warn() } else { th.value() };
    vec![
        Line::from(vec![
            Span::styled(format!("{} {}: ", t(l, "read_end"), t(l, "held_by")), th.label()),
            Span::styled(list(&d.read_ends), th.value()),
        ]),
        Line::from(vec![
            Span::styled(format!("{} {}: ", t(l, "write_end"), t(l, "held_by")), th.label()),
            Span::styled(list(&d.write_ends), w_style),
        ]),
    ]
}

/// For small grid cells: the same facts, one per line, most important first.
fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &PipeDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let mut lines = vec![gauge_line(&m.channel, area.width, view)];
    for (p, (key, sends)) in m.processes.iter().zip([("producer", true), ("consumer", false)]) {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(l, key)), th.label()),
            Span::styled(widgets::pid(p.pid), th.value()),
            Span::raw(" "),
            Span::styled(widgets::state_text(p, view), th.state(p)),
            Span::styled(format!(" {}", widgets::rate(if sends { p.send_rate } else { p.recv_rate })), th.dim()),
        ]));
    }
    lines.push(integrity_line(&m.integrity, view));
    lines.extend(note_lines(&m.notes, 2, view));
    lines.extend(ends_lines(d, view));
    lines.truncate(area.height as usize);
    f.render_widget(Paragraph::new(lines), area);
}

/// Sentences for the lesson pane about what the pipe shows now.
pub fn observe(m: &MechanismSnapshot, d: &PipeDetail, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(prod), Some(cons)) = (m.processes.first(), m.processes.get(1)) else { return out };
    let c = &m.channel;
    if prod.exit_cause().is_some_and(|e| e.sigpipe()) {
        out.push(t(lang, "obs_pipe_sigpipe").into());
    } else if prod.errors.epipe > 0 {
        out.push(t(lang, "obs_pipe_epipe").into());
    }
    if d.eof_seen {
        out.push(t(lang, "obs_pipe_eof").into());
    }
    if d.write_ends.len() > 1 {
        out.push(tf(
            lang,
            "obs_pipe_two_writers",
            &[("n", d.write_ends.len().to_string()), ("who", d.write_ends.join(", "))],
        ));
    }
    if prod.alive() && prod.blocked() && c.capacity > 0 && c.depth >= c.capacity {
        out.push(tf(lang, "obs_pipe_full", &[("cap", widgets::kib(c.capacity))]));
    } else if cons.alive() && cons.sleeps_in() == Wait::PipeRead && c.depth == 0 {
        out.push(t(lang, "obs_pipe_empty").into());
    } else if prod.alive() && cons.alive() && prod.send_rate > 0.0 {
        out.push(tf(
            lang,
            "obs_pipe_flow",
            &[
                ("rate", widgets::rate(prod.send_rate)),
                ("depth", widgets::kib(c.depth)),
                ("cap", widgets::kib(c.capacity)),
            ],
        ));
    }
    out
}
