//! Pieces every panel uses: a process box, a fill gauge, the integrity
//! line, a sparkline, the fd table, the notes.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::View;
use crate::i18n::t;
use crate::model::snapshot::{Channel, Integrity, MechanismSnapshot, ProcessSnapshot, Unit};

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
    format!("{} {}", p.state, t(view.lang, p.waiting().label_key()))
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
        Line::from(Span::styled(state_text(p, view), th.state(p))),
    ];
    if p.exit.is_none() && p.pid > 0 {
        lines.push(Line::from(vec![Span::styled("wchan ", th.label()), Span::raw(wchan(&p.wchan))]));
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
        for (name, n) in [("EPIPE", e.epipe), ("EAGAIN", e.eagain), ("ETIMEDOUT", e.etimedout), ("other", e.other)] {
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
    let label = if c.unit == Unit::Bytes {
        format!(" {}/{}", bytes(c.depth), bytes(c.capacity))
    } else {
        format!(" {}/{} {}", c.depth, c.capacity, c.unit)
    };
    let bar_w = (width as usize).saturating_sub(label.chars().count()).max(4);
    let filled = (c.depth.min(c.capacity) as u128 * bar_w as u128).checked_div(c.capacity as u128).unwrap_or(0);
    // Round up, so any content shows at least one block.
    let filled = if c.depth > 0 && filled == 0 { 1 } else { filled as usize }.min(bar_w);
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
    let mut spans =
        vec![Span::styled(format!("{} ", t(l, "delivered")), th.label()), Span::styled(count(i.delivered), th.good())];
    for (key, n) in [("lost", i.lost), ("corrupt", i.corrupt), ("duplicated", i.duplicated), ("reordered", i.reordered)]
    {
        spans.push(Span::styled(format!("  {} ", t(l, key)), th.label()));
        spans.push(Span::styled(count(n), if n > 0 { th.bad() } else { th.value() }));
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
            let level = (d.min(capacity) * 7 + capacity / 2).checked_div(capacity).unwrap_or(0);
            BARS[level as usize]
        })
        .collect();
    Line::from(Span::styled(s, view.theme.gauge()))
}

/// A panel's outer block: number, title, subtitle; highlighted when selected.
pub fn panel_block(n: usize, title: &str, sub: &str, selected: bool, view: &View) -> Block<'static> {
    let th = view.theme;
    let border = if selected { th.selected_border() } else { th.border() };
    Block::default().borders(Borders::ALL).border_type(th.border_type(selected)).border_style(border).title(Line::from(
        vec![
            Span::styled(format!(" {n} "), th.title().add_modifier(Modifier::REVERSED)),
            Span::styled(format!(" {title} "), th.title()),
            Span::styled(format!("{sub} "), th.dim()),
        ],
    ))
}

/// Draw panel `n`'s frame (see [`panel_block`]); returns the area inside.
pub fn panel(f: &mut Frame, area: Rect, n: usize, title: &str, sub: &str, selected: bool, view: &View) -> Rect {
    let block = panel_block(n, title, sub, selected, view);
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// Whether the inside of a panel has room for its full layout; a smaller
/// cell gets the compact one.
pub fn roomy(inner: Rect) -> bool {
    inner.height >= 14 && inner.width >= 70
}

/// A panel's foot: its latest notes that fit, or the knob settings when
/// there are none.
pub fn notes_or_knobs(f: &mut Frame, area: Rect, m: &MechanismSnapshot, view: &View) {
    let mut bottom = note_lines(&m.notes, area.height as usize, view);
    if bottom.is_empty() {
        bottom.push(Line::from(Span::styled(knob_line(m), view.theme.dim())));
    }
    f.render_widget(Paragraph::new(bottom).wrap(Wrap { trim: false }), area);
}

/// The producer's and the consumer's lines, labels padded to one width.
pub fn producer_consumer_lines(m: &MechanismSnapshot, view: &View) -> Vec<Line<'static>> {
    let labels = [t(view.lang, "producer"), t(view.lang, "consumer")];
    let procs: Vec<_> = m.processes.iter().zip(labels).map(|(p, s)| (p, s.to_string())).collect();
    process_lines(&procs, view)
}

pub fn note_lines(notes: &[crate::model::snapshot::Note], max: usize, view: &View) -> Vec<Line<'static>> {
    notes
        .iter()
        .rev()
        .take(max)
        .rev()
        .map(|n| {
            let text = crate::i18n::note_msg(view.lang, &n.msg, &n.args)
                .unwrap_or_else(|| crate::i18n::note(view.lang, &n.text).to_string());
            Line::from(vec![Span::styled("▸ ", view.theme.warn()), Span::raw(text)])
        })
        .collect()
}

pub fn arrow(label: &str, width: u16, style: Style) -> Vec<Line<'static>> {
    let w = width as usize;
    let shaft = w.saturating_sub(2);
    vec![
        Line::from(Span::styled(format!("{label:^w$}"), style)),
        Line::from(Span::styled(format!(" {}▶", "─".repeat(shaft.saturating_sub(1))), style)),
    ]
}

/// `s` padded with spaces (or cut, ending in `…`) to exactly `w` columns
/// of display width, so Korean labels (two columns each) line up in tables.
pub fn pad(s: &str, w: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    let total = unicode_width::UnicodeWidthStr::width(s);
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if total > w && used + cw + 1 > w {
            if used < w {
                out.push('…');
                used += 1;
            }
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push_str(&" ".repeat(w.saturating_sub(used)));
    out
}

/// Like `pad`, but a string too long loses its beginning (`…/run/sock`):
/// for paths, whose end says the most.
pub fn pad_left_cut(s: &str, w: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if unicode_width::UnicodeWidthStr::width(s) <= w {
        return pad(s, w);
    }
    let mut tail = Vec::new();
    let mut used = 1;
    for c in s.chars().rev() {
        let cw = c.width().unwrap_or(0);
        if used + cw > w {
            break;
        }
        tail.push(c);
        used += cw;
    }
    let mut out = String::from("…");
    out.extend(tail.into_iter().rev());
    pad(&out, w)
}

/// One process on one line: `label    pid state rate`, for lists of
/// several processes and compact panels.
pub fn process_line(p: &ProcessSnapshot, label: &str, view: &View) -> Line<'static> {
    let th = view.theme;
    let rate_now = if p.sent > 0 || p.received == 0 { p.send_rate } else { p.recv_rate };
    Line::from(vec![
        Span::styled(format!("{label} "), th.label()),
        Span::styled(pid(p.pid), th.value()),
        Span::raw(" "),
        Span::styled(state_text(p, view), th.state(p)),
        Span::styled(format!(" {}", rate(rate_now)), th.dim()),
    ])
}

/// The textbook's picture in one row: sender, arrow, the kernel object,
/// arrow, receiver. Draws the two arrows (labelled with the calls) and
/// returns the sender, object and receiver areas for the caller to fill.
pub fn flow_row(f: &mut Frame, area: Rect, send: &str, recv: &str, view: &View) -> [Rect; 3] {
    use ratatui::layout::{Constraint, Layout};
    let aw = |s: &str| (unicode_width::UnicodeWidthStr::width(s) as u16 + 2).max(8);
    let cols = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(aw(send)),
        Constraint::Fill(1),
        Constraint::Length(aw(recv)),
        Constraint::Fill(1),
    ])
    .split(area);
    for (label, c) in [(send, cols[1]), (recv, cols[3])] {
        let r = Rect { y: c.y + 2, height: c.height.saturating_sub(2).min(2), ..c };
        f.render_widget(Paragraph::new(arrow(label, c.width, view.theme.label())), r);
    }
    [cols[0], cols[2], cols[4]]
}

/// A double-bordered box for the kernel object between the processes;
/// returns its inner area.
pub fn object_box(f: &mut Frame, area: Rect, title: &str, view: &View) -> Rect {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .title(Span::styled(format!(" {title} "), view.theme.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// `key=value  key=value …` of the knobs a snapshot carries.
pub fn knob_line(m: &MechanismSnapshot) -> String {
    m.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("  ")
}

/// `label value  label value …` as one line of label / value spans.
pub fn pairs_line(pairs: &[(&str, String)], view: &View) -> Line<'static> {
    let th = view.theme;
    let mut spans = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let sep = if i == 0 { "" } else { "  " };
        spans.push(Span::styled(format!("{sep}{k} "), th.label()));
        spans.push(Span::styled(v.clone(), th.value()));
    }
    Line::from(spans)
}

/// The textbook's picture of a channel: sender, arrow, the kernel's buffer,
/// arrow, receiver. Draws the arrows (labelled with the calls) and the
/// buffer's double border titled `buffer_title`; returns the sender's
/// area, the inside of the buffer box and the receiver's area for the
/// caller to fill.
pub fn flow_diagram(
    f: &mut Frame,
    area: Rect,
    calls: (&str, &str),
    buffer_title: &str,
    view: &View,
) -> (Rect, Rect, Rect) {
    let [left, mid, right] = flow_row(f, area, calls.0, calls.1, view);
    (left, object_box(f, mid, buffer_title, view), right)
}

/// `process_line` for several processes, their labels padded to one
/// display width so the pids line up in both languages.
pub fn process_lines(procs: &[(&ProcessSnapshot, String)], view: &View) -> Vec<Line<'static>> {
    let w = procs.iter().map(|(_, l)| unicode_width::UnicodeWidthStr::width(l.as_str())).max().unwrap_or(0);
    procs.iter().map(|(p, l)| process_line(p, &pad(l, w), view)).collect()
}

/// Columns `s` takes on screen (Korean syllables take two).
pub fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// Greedy word wrap by display width, for prose (lessons, captions). Ratatui
/// 0.30's `Wrap` can end a line with a wide (Korean) character one column
/// past the edge, over the border; this never does. A word longer than a
/// line is cut between characters.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    let width = width.max(2);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let w = word.width();
        if used > 0 && used + 1 + w <= width {
            cur.push(' ');
            cur.push_str(word);
            used += 1 + w;
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut cur));
            used = 0;
        }
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > width {
                lines.push(std::mem::take(&mut cur));
                used = 0;
            }
            cur.push(c);
            used += cw;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// "64.0 KiB" for a lesson sentence.
pub fn kib(n: u64) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else if n >= 1024 {
        format!("{} KiB", bytes(n).trim_end_matches('K'))
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod wrap_tests {
    use super::wrap_words;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn korean_lines_never_pass_the_edge() {
        let text = "아니라 경로이므로 부모–자식 관계가 필요 없습니다. 여기서는 읽는 프로세스 하나와 쓰는 프로세스 둘이";
        for w in 5..90 {
            for l in wrap_words(text, w) {
                assert!(l.width() <= w, "{w}: {l:?}");
            }
        }
        assert_eq!(wrap_words("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap_words("abcdef", 4), ["abcd", "ef"]);
        assert_eq!(wrap_words("", 4), [""]);
    }
}
