//! The POSIX message-queue panel:
//!
//! ```text
//! ┌ 4  message queue  mq_send / mq_receive: a named port, by priority ────┐
//! │╭ producer ╮ mq_send() ╔ kernel message queue ╗ mq_receive() ╭ consumer ╮│
//! ││ pid 4121 │ ────────▶ ║ ██████░░░░ 6/10 msgs ║ ───────────▶ │ pid 4122 ││
//! ││ S wq_sleep│          ║ mq_getattr: cur 6 …  ║              │ S paced  ││
//! │╰──────────╯           ╚══════════════════════╝              ╰──────────╯│
//! │ sent prio  0 3 1 2 0 …     recv prio  3 3 2 1 …    inversions 0         │
//! │ delivered 1200  lost 0  corrupt 0  dup 0  reordered 0                   │
//! └─────────────────────────────────────────────────────────────────────────┘
//! ```
//! Small cells get a compact, line-by-line version of the same facts.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::widgets::{self, gauge_line, integrity_line, note_lines, process_box};
use super::View;
use crate::i18n::t;
use crate::model::detail::mq::MqDetail;
use crate::model::snapshot::{MechanismSnapshot, Wait};

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let inner = widgets::panel(f, area, n, t(l, "mq_title"), t(l, "mq_sub"), selected, view);
    if widgets::roomy(inner) {
        full(f, inner, m, d, view);
    } else {
        compact(f, inner, m, d, view);
    }
}

/// The priorities sent and received, oldest first, then the order check.
fn prio_lines(d: &MqDetail, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    if !d.priorities {
        return vec![Line::from(Span::styled(t(l, "prio_off"), th.dim()))];
    }
    let labels = [t(l, "sent_prio"), t(l, "recv_prio")];
    let w = labels.iter().map(|s| unicode_width::UnicodeWidthStr::width(*s)).max().unwrap_or(0);
    let seq = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    vec![
        Line::from(vec![
            Span::styled(format!("{} ", widgets::pad(labels[0], w)), th.label()),
            Span::styled(seq(&d.sent_prios), th.value()),
        ]),
        Line::from(vec![
            Span::styled(format!("{} ", widgets::pad(labels[1], w)), th.label()),
            Span::styled(seq(&d.recv_prios), th.value()),
            Span::styled(format!("  {} ", t(l, "inversions")), th.label()),
            Span::styled(d.inversions.to_string(), if d.inversions > 0 { th.bad() } else { th.good() }),
        ]),
        Line::from(Span::styled(t(l, "prio_note"), th.dim())),
    ]
}

/// `mq_getattr: curmsgs 6  maxmsg 10  msgsize 1024`.
fn attr_line(d: &MqDetail, view: &View) -> Line<'static> {
    let mut line = widgets::pairs_line(
        &[("curmsgs", d.curmsgs.to_string()), ("maxmsg", d.maxmsg.to_string()), ("msgsize", d.msgsize.to_string())],
        view,
    );
    if !d.attr_seen {
        line.spans.push(Span::styled(" (-)", view.theme.dim()));
    }
    line
}

fn timeout_line(d: &MqDetail, view: &View) -> Option<Line<'static>> {
    (d.send_timeout_ms > 0).then(|| {
        let th = view.theme;
        Line::from(vec![
            Span::styled(format!("mq_timedsend +{}ms  ", d.send_timeout_ms), th.label()),
            Span::styled(
                format!("{} ×{}", t(view.lang, "timeouts"), d.timeouts),
                if d.timeouts > 0 { th.warn() } else { th.value() },
            ),
        ])
    })
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let rows = Layout::vertical([
        Constraint::Length(8),
        Constraint::Length(if d.priorities { 3 } else { 1 }),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .split(area);
    let [left, mid, right] = widgets::flow_row(f, rows[0], "mq_send()", "mq_receive()", view);
    if let Some(p) = m.processes.first() {
        process_box(f, left, p, t(l, "producer"), view);
    }
    if let Some(c) = m.processes.get(1) {
        process_box(f, right, c, t(l, "consumer"), view);
    }
    let bi = widgets::object_box(f, mid, t(l, "mq_queue"), view);
    let mut lines = vec![
        gauge_line(&m.channel, bi.width, view),
        widgets::sparkline(&m.history, m.channel.capacity, bi.width as usize, view),
        Line::from(Span::styled("mq_getattr:", th.label())),
        attr_line(d, view),
        Line::from(Span::styled(widgets::pad_left_cut(&d.name, bi.width as usize), th.dim())),
    ];
    if let Some(tl) = timeout_line(d, view) {
        lines.push(tl);
    } else if m.channel.capacity > 0 && m.channel.depth >= m.channel.capacity {
        lines.push(Line::from(Span::styled(t(l, "blocked_full"), th.bad())));
    }
    f.render_widget(Paragraph::new(lines), bi);
    f.render_widget(Paragraph::new(prio_lines(d, view)), rows[1]);
    f.render_widget(Paragraph::new(integrity_line(&m.integrity, view)), rows[2]);
    let mut bottom = vec![Line::from(vec![
        Span::styled(format!("{}: ", t(l, "mq_limits")), th.label()),
        Span::styled(format!("msg_max {}  msgsize_max {}  (/proc/sys/fs/mqueue)", d.msg_max, d.msgsize_max), th.dim()),
    ])];
    bottom.extend(note_lines(&m.notes, rows[3].height.saturating_sub(1) as usize, view));
    if bottom.len() == 1 {
        bottom.push(Line::from(Span::styled(widgets::knob_line(m), th.dim())));
    }
    f.render_widget(Paragraph::new(bottom).wrap(Wrap { trim: false }), rows[3]);
}

/// For small grid cells: the same facts, one per line, most important first.
fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, view: &View) {
    let mut lines = vec![gauge_line(&m.channel, area.width, view)];
    lines.extend(widgets::producer_consumer_lines(m, view));
    lines.push(integrity_line(&m.integrity, view));
    lines.extend(timeout_line(d, view));
    lines.extend(prio_lines(d, view));
    lines.extend(note_lines(&m.notes, 2, view));
    lines.push(attr_line(d, view));
    lines.truncate(area.height as usize);
    f.render_widget(Paragraph::new(lines), area);
}

/// Sentences for the lesson pane about what the snapshot shows now.
pub fn observe(m: &MechanismSnapshot, d: &MqDetail, lang: crate::i18n::Lang) -> Vec<String> {
    use crate::i18n::tf;
    let mut out = Vec::new();
    let (Some(prod), Some(cons)) = (m.processes.first(), m.processes.get(1)) else { return out };
    let c = &m.channel;
    let full = c.capacity > 0 && c.depth >= c.capacity;
    if full && prod.alive() && prod.sleeps_in() == Wait::MqWait {
        let key = if d.send_timeout_ms > 0 { "obs_mq_full_timed" } else { "obs_mq_full" };
        out.push(tf(
            lang,
            key,
            &[("n", c.depth.to_string()), ("max", c.capacity.to_string()), ("ms", d.send_timeout_ms.to_string())],
        ));
    } else if c.depth == 0 && cons.alive() && cons.sleeps_in() == Wait::MqWait {
        out.push(t(lang, "obs_mq_empty").into());
    } else if prod.alive() && prod.send_rate > 0.0 {
        out.push(tf(
            lang,
            "obs_mq_flow",
            &[
                ("rate", widgets::rate(prod.send_rate)),
                ("n", c.depth.to_string()),
                ("max", c.capacity.to_string()),
                ("size", d.msg_size.to_string()),
                ("msgsize", d.msgsize.to_string()),
            ],
        ));
    }
    if d.timeouts > 0 && d.send_timeout_ms > 0 {
        out.push(tf(lang, "obs_mq_timedout", &[("n", d.timeouts.to_string()), ("ms", d.send_timeout_ms.to_string())]));
    }
    let last = |v: &[u32]| v.iter().rev().take(8).rev().map(u32::to_string).collect::<Vec<_>>().join(" ");
    if d.priorities && !d.recv_prios.is_empty() {
        out.push(tf(
            lang,
            "obs_mq_prio",
            &[
                ("sent", last(&d.sent_prios)),
                ("recv", last(&d.recv_prios)),
                ("reordered", m.integrity.reordered.to_string()),
            ],
        ));
        if m.integrity.lost > 0 && c.depth > 0 {
            out.push(tf(lang, "obs_mq_prio_waiting", &[("n", m.integrity.lost.to_string())]));
        }
    }
    if d.inversions > 0 {
        out.push(tf(lang, "obs_mq_inversions", &[("n", d.inversions.to_string())]));
    }
    if d.msg_size < d.msg_size_knob {
        out.push(tf(
            lang,
            "obs_mq_clamped",
            &[("knob", d.msg_size_knob.to_string()), ("msgsize", d.msgsize.to_string())],
        ));
    }
    out
}
