//! Pieces every panel uses: a process box, a fill gauge, the integrity
//! line, a sparkline, the fd table, the notes.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;

use super::View;
use crate::i18n::t;
use crate::monitor::procfs;
use crate::snapshot::{Channel, Integrity, ProcessSnapshot};

/// "48.0K", "1.0M", "512": short byte counts for narrow boxes.
pub fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1}M", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1}K", n as f64 / 1024.0)
    } else {
        n.to_string()
    }
}

pub fn count(n: u64) -> String {
    if n >= 10_000_000 {
        format!("{}M", n / 1_000_000)
    } else if n >= 100_000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

pub fn rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k/s", r / 1000.0)
    } else {
        format!("{r:.0}/s")
    }
}

/// The state in words, with the letter the kernel reports.
pub fn state_text(p: &ProcessSnapshot, view: &View) -> String {
    if p.pid == 0 {
        return t(view.lang, "not_started").into();
    }
    if let Some(e) = &p.exit {
        return format!("{} · {e}", t(view.lang, "exited"));
    }
    format!(
        "{} {}",
        p.state,
        t(view.lang, procfs::describe(&p.state, &p.wchan))
    )
}

/// A bordered box describing one process.
pub fn process_box(f: &mut Frame, area: Rect, p: &ProcessSnapshot, title: &str, view: &View) {
    let th = view.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(Span::styled(format!(" {title} "), th.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "pid")), th.label()),
            Span::styled(pid(p.pid), th.value()),
        ]),
        Line::from(Span::styled(
            state_text(p, view),
            th.state(&p.state, &p.wchan),
        )),
    ];
    if p.exit.is_none() && p.pid > 0 {
        lines.push(Line::from(vec![
            Span::styled("wchan ", th.label()),
            Span::raw(wchan(&p.wchan)),
        ]));
        lines.push(Line::from(vec![
            Span::styled("op ", th.label()),
            Span::raw(p.op.clone()),
            Span::styled(format!(" {}", since(p.op_ms)), th.dim()),
        ]));
    }
    if p.sent > 0 || p.received == 0 {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "sent")), th.label()),
            Span::styled(count(p.sent), th.value()),
            Span::styled(format!(" {}", rate(p.send_rate)), th.dim()),
        ]));
    }
    if p.received > 0 || p.sent == 0 {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "received")), th.label()),
            Span::styled(count(p.received), th.value()),
            Span::styled(format!(" {}", rate(p.recv_rate)), th.dim()),
        ]));
    }
    let e = p.errors;
    if e.epipe + e.eagain + e.etimedout + e.other > 0 {
        let mut parts = Vec::new();
        for (name, n) in [
            ("EPIPE", e.epipe),
            ("EAGAIN", e.eagain),
            ("ETIMEDOUT", e.etimedout),
            ("other", e.other),
        ] {
            if n > 0 {
                parts.push(format!("{name} {n}"));
            }
        }
        lines.push(Line::from(Span::styled(parts.join(" "), th.bad())));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// PIDs right-aligned in a fixed width, so a snapshot filter can mask them
/// without shifting the line.
pub fn pid(p: i32) -> String {
    if p > 0 {
        format!("{p:>7}")
    } else {
        format!("{:>7}", "-")
    }
}

pub fn wchan(w: &str) -> String {
    match w {
        "" => "-".into(),
        "0" => "0 (running)".into(),
        w => w.into(),
    }
}

pub fn since(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// A one-line fill bar: `███████░░░░ 48.0K/64.0K`.
pub fn gauge_line(c: &Channel, width: u16, view: &View) -> Line<'static> {
    let th = view.theme;
    let label = if c.unit == "bytes" {
        format!(" {}/{}", bytes(c.depth), bytes(c.capacity))
    } else {
        format!(" {}/{} {}", c.depth, c.capacity, c.unit)
    };
    let bar_w = (width as usize)
        .saturating_sub(label.chars().count())
        .max(4);
    let filled = (c.depth.min(c.capacity) as u128 * bar_w as u128)
        .checked_div(c.capacity as u128)
        .unwrap_or(0);
    // Round up, so any content shows at least one block.
    let filled = if c.depth > 0 && filled == 0 {
        1
    } else {
        filled as usize
    }
    .min(bar_w);
    let full = c.capacity > 0 && c.depth >= c.capacity;
    let style = if full { th.gauge_full() } else { th.gauge() };
    Line::from(vec![
        Span::styled("█".repeat(filled), style),
        Span::styled("░".repeat(bar_w - filled), th.dim()),
        Span::styled(label, if full { th.bad() } else { th.value() }),
    ])
}

pub fn integrity_line(i: &Integrity, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let mut spans = vec![
        Span::styled(format!("{} ", t(l, "delivered")), th.label()),
        Span::styled(count(i.delivered), th.good()),
    ];
    for (key, n) in [
        ("lost", i.lost),
        ("corrupt", i.corrupt),
        ("duplicated", i.duplicated),
        ("reordered", i.reordered),
    ] {
        spans.push(Span::styled(format!("  {} ", t(l, key)), th.label()));
        spans.push(Span::styled(
            count(n),
            if n > 0 { th.bad() } else { th.value() },
        ));
    }
    if i.foreign > 0 {
        spans.push(Span::styled(format!("  {} ", t(l, "foreign")), th.label()));
        spans.push(Span::styled(count(i.foreign), th.warn()));
    }
    Line::from(spans)
}

/// Sparkline of channel depth, scaled to capacity, as one line of blocks.
pub fn sparkline(history: &[u64], capacity: u64, width: usize, view: &View) -> Line<'static> {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let take = history.len().min(width);
    let s: String = history[history.len() - take..]
        .iter()
        .map(|&d| {
            let level = (d.min(capacity) * 7 + capacity / 2)
                .checked_div(capacity)
                .unwrap_or(0);
            BARS[level as usize]
        })
        .collect();
    Line::from(Span::styled(s, view.theme.gauge()))
}

/// A panel's outer block: number, title, subtitle; highlighted when selected.
pub fn panel_block(
    n: usize,
    title: &str,
    sub: &str,
    selected: bool,
    view: &View,
) -> Block<'static> {
    let th = view.theme;
    let border = if selected {
        th.selected_border()
    } else {
        th.dim()
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(if selected {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(border)
        .title(Line::from(vec![
            Span::styled(
                format!(" {n} "),
                th.title().add_modifier(Modifier::REVERSED),
            ),
            Span::styled(format!(" {title} "), th.title()),
            Span::styled(format!("{sub} "), th.dim()),
        ]))
}

pub fn note_lines(notes: &[crate::snapshot::Note], max: usize, view: &View) -> Vec<Line<'static>> {
    notes
        .iter()
        .rev()
        .take(max)
        .rev()
        .map(|n| {
            Line::from(vec![
                Span::styled("▸ ", view.theme.warn()),
                Span::raw(n.text.clone()),
            ])
        })
        .collect()
}

pub fn arrow(label: &str, width: u16, style: Style) -> Vec<Line<'static>> {
    let w = width as usize;
    let shaft = w.saturating_sub(2);
    vec![
        Line::from(Span::styled(format!("{label:^w$}"), style)),
        Line::from(Span::styled(
            format!(" {}▶", "─".repeat(shaft.saturating_sub(1))),
            style,
        )),
    ]
}
