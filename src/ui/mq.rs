//! The POSIX message-queue panel: the textbook's figure of a queue of
//! message blocks between a producer and a consumer.
//!
//! ```text
//! producer                                                       consumer
//! ■ ───────────▶ │░│░│0│0│1│1│2│3│3│3│ ────────────────────────▶ □
//!   mq_send()            8/10 messages              mq_receive()
//! ■ producer: BLOCKED: buffer full
//! waiting by priority: p3 ×3  p2 ×1  p1 ×2  p0 ×2  = curmsgs 8 ✓
//! ```
//! Each slot is one of `mq_maxmsg`; a filled one shows the priority of the
//! message in it. The head — the message `mq_receive` takes next — is the
//! rightmost, beside the consumer: the kernel hands out the highest
//! priority first, first in first out within one. The kernel lets nobody
//! look at a queued message without receiving it, so the priorities come
//! from the workers' own counts (sent − received at each priority), checked
//! against `mq_getattr`'s `curmsgs`; the panel says so.
//!
//! Levels by the room inside the frame: tiny (≤ 4 rows) one flow row;
//! compact the figure above and the facts below, most telling first; full
//! (`widgets::roomy`) boxes with the raw Linux facts.

use super::widgets::Boxed;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::BorderType;
use ratatui::Frame;

use super::fit::{self, Item};
use super::measured;
use super::widgets::{self, display_width, Row};
use super::View;
use crate::i18n::{t, tf};
use crate::model::detail::mq::MqDetail;
use crate::model::figures::Party;
use crate::model::snapshot::{MechanismSnapshot, Wait};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Tiny,
    Compact,
    Full,
}

fn level(inner: Rect) -> Level {
    if inner.height <= 4 {
        Level::Tiny
    } else if widgets::roomy(inner) {
        Level::Full
    } else {
        Level::Compact
    }
}

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let title = t(l, "mq_title");
    let sub = widgets::panel_sub(area.width, n, title, &[t(l, "mq_sub"), t(l, "mq_sub_short")]);
    let inner = widgets::panel(f, area, n, title, sub, selected, view);
    match level(inner) {
        Level::Tiny => tiny(f, inner, m, d, view),
        Level::Compact => compact(f, inner, m, d, view),
        Level::Full => full(f, inner, m, d, view),
    }
}

/// Each slot of the queue, left to right: the empty ones (`None`), then
/// the waiting messages' priorities, lowest first, so the head is the
/// rightmost. `?` where the workers' counts are missing or disagree with
/// the kernel's at this instant (the kernel's count of filled slots wins).
fn slot_labels(m: &MechanismSnapshot, d: &MqDetail) -> Vec<Option<char>> {
    let cap = m.channel.capacity as usize;
    let filled = (m.channel.within() as usize).min(cap);
    let mut v = vec![None; cap - filled];
    match (d.delivery_order(), d.counts_agree()) {
        (Some(order), Some(true)) if order.len() == filled => {
            v.extend(order.iter().rev().map(|&p| char::from_digit(p, 10).or(Some('+'))));
        }
        _ => v.extend(std::iter::repeat_n(Some('?'), filled)),
    }
    v
}

/// Columns a row of `n` slots `cw` wide takes, separators included.
fn slots_width(n: usize, cw: usize) -> usize {
    n * (cw + 1) + 1
}

/// One row of slots: `│░│0│3│`. The first row names each message's
/// priority; a projector's second row (`digits = false`) thickens the fill.
fn slot_spans(labels: &[Option<char>], cw: usize, digits: bool, full: bool, view: &View) -> Vec<Span<'static>> {
    let th = view.theme;
    let fill = if full { th.gauge_full() } else { th.gauge() };
    let sep = Span::styled("│", th.label());
    let mut spans = vec![sep.clone()];
    for label in labels {
        match label {
            Some(c) if digits => {
                let pad = "█".repeat((cw - 1) / 2);
                spans.push(Span::styled(pad.clone(), fill));
                spans.push(Span::styled(c.to_string(), fill.add_modifier(Modifier::REVERSED)));
                spans.push(Span::styled(pad, fill));
            }
            Some(_) => spans.push(Span::styled("█".repeat(cw), fill)),
            None => spans.push(Span::styled("░".repeat(cw), th.dim())),
        }
        spans.push(sep.clone());
    }
    spans
}

/// `8/10 messages` (or `8/10` in less room): the kernel's own count.
fn fraction(m: &MechanismSnapshot, room: usize, unit: bool, view: &View) -> Option<Vec<Span<'static>>> {
    let th = view.theme;
    let c = &m.channel;
    let style = if c.full() { th.bad() } else { th.value() };
    let nums = format!("{}/{}", c.within(), c.capacity);
    let long = vec![
        Span::styled(nums.clone(), style),
        Span::styled(format!(" {}", t(view.lang, "unit_messages")), th.label()),
    ];
    [long, vec![Span::styled(nums, style)]]
        .into_iter()
        .skip(usize::from(!unit))
        .find(|s| s.iter().map(|x| display_width(&x.content)).sum::<usize>() <= room)
}

/// A party's mark alone, in its style.
fn mark(party: Party, view: &View) -> Span<'static> {
    Span::styled(widgets::party_mark(party), view.theme.party(party))
}

/// The figure in rows `room` wide: the names, then the marks, arrows and
/// slots (the slots twice on a projector), then the calls under the arrows
/// and the kernel's count under the slots. `None` when the slots do not
/// fit between the two parties (a queue longer than the room).
fn figure_rows(
    m: &MechanismSnapshot,
    d: &MqDetail,
    room: usize,
    boxed: bool,
    view: &View,
) -> Option<Vec<Line<'static>>> {
    let l = view.lang;
    let th = view.theme;
    let labels = slot_labels(m, d);
    if labels.is_empty() {
        return None;
    }
    let names = [t(l, "producer"), t(l, "consumer")];
    // Beside the slots: a mark and an arrow, and (framed) the names above.
    let name_w = names.iter().map(|s| display_width(s)).max().unwrap_or(0) + 1;
    let side_min = if boxed { name_w.max(5) } else { 5 };
    let (cw, sw) = [3, 1]
        .into_iter()
        .map(|cw| (cw, slots_width(labels.len(), cw)))
        .find(|&(_, sw)| sw + 2 * side_min.max(name_w.min(9)) <= room)
        .or_else(|| Some((1, slots_width(labels.len(), 1))).filter(|&(_, sw)| sw + 2 * side_min <= room))?;
    let sx = (room - sw) / 2;
    let rx = sx + sw;
    let (prod, cons) = (m.processes.first(), m.processes.get(1));
    let party = |p: Option<&crate::model::snapshot::ProcessSnapshot>| p.map_or(Party::NotStarted, |p| p.party(false));
    let full = m.channel.full();

    // Names, with pids where both have room.
    let mut top = Row::new(room);
    let named = |i: usize, p: Option<&crate::model::snapshot::ProcessSnapshot>, pid: bool| {
        let mut spans = vec![Span::styled(names[i].to_string(), th.title())];
        if let Some(p) = p.filter(|p| pid && p.pid > 0) {
            spans.push(Span::styled(format!(" {}", p.pid), th.dim()));
        }
        spans
    };
    let w = |s: &[Span]| s.iter().map(|x| display_width(&x.content)).sum::<usize>();
    let pids = w(&named(0, prod, true)) < sx && w(&named(1, cons, true)) < room - rx;
    for (i, p) in [prod, cons].into_iter().enumerate() {
        let spans = named(i, p, pids);
        if i == 0 {
            top.put(0, spans);
        } else {
            top.put_end(room, spans);
        }
    }
    let edge = |a: &str, mid: &str, b: &str| {
        vec![Span::styled(format!("{a}{}{b}", vec!["─".repeat(cw); labels.len()].join(mid)), th.label())]
    };
    if boxed {
        top.put(sx, edge("┌", "┬", "┐"));
    } else {
        // The queue's name over the slots, when it fits there.
        top.put_centred(sx, sw, vec![Span::styled(d.name.clone(), th.dim())]);
    }

    // Marks, arrows, slots.
    let mut flow = Row::new(room);
    flow.put(0, vec![mark(party(prod), view)]);
    flow.put(2, vec![Span::styled(format!("{}▶", "─".repeat(sx - 4)), th.label())]);
    flow.put(sx, slot_spans(&labels, cw, true, full, view));
    flow.put(rx + 1, vec![Span::styled(format!("{}▶", "─".repeat(room - rx - 4)), th.label())]);
    flow.put_end(room, vec![mark(party(cons), view)]);
    let mut rows = vec![top.line(), flow.line()];
    for _ in 1..view.theme.gauge_rows() {
        let mut thick = Row::new(room);
        thick.put(sx, slot_spans(&labels, cw, false, full, view));
        rows.push(thick.line());
    }

    // Calls under the arrows, the kernel's count under the slots.
    let mut under = Row::new(room);
    if let Some(call) = fit::first_fit(&["mq_send()", "mq_send"], sx.saturating_sub(2)) {
        under.put_centred(0, sx, vec![Span::styled(call.to_string(), th.label())]);
    }
    if let Some(call) = fit::first_fit(&["mq_receive()", "mq_receive"], room - rx - 1) {
        under.put_centred(rx + 1, room - rx - 1, vec![Span::styled(call.to_string(), th.label())]);
    }
    if boxed {
        under.put(sx, edge("└", "┴", "┘"));
        rows.push(under.line());
        under = Row::new(room);
    }
    if let Some(fr) = fraction(m, sw, true, view) {
        under.put_centred(sx, sw, fr);
    }
    rows.push(under.line());
    Some(rows)
}

/// A queue too long to draw slot by slot: a fill bar with the count.
fn bar_rows(m: &MechanismSnapshot, room: usize, view: &View) -> Vec<Line<'static>> {
    let mut rows =
        widgets::gauge_words(&m.channel, room as u16, widgets::GaugeWords { wrap: true, ..Default::default() }, view);
    if view.theme.gauge_rows() > 1 {
        rows.insert(1, rows[0].clone());
    }
    rows
}

/// `waiting by priority: p3 ×3  p1 ×2  p0 ×2  = curmsgs 7 ✓`, the source
/// said when asked and there is room; a shorter label before any count is
/// left out.
fn by_prio_line(d: &MqDetail, room: usize, source: bool, view: &View) -> Line<'static> {
    let l = view.lang;
    let th = view.theme;
    let q = d.queued_by_prio();
    let build = |label: &str, check: bool, src: bool| -> Vec<Item> {
        let mut items = vec![Item::text(0, format!("{label}:"), th.label())];
        if q.is_empty() {
            items.push(Item::text(0, t(l, "mq_byprio_none"), th.dim()));
            return items;
        }
        let waiting: Vec<(usize, u64)> = q.iter().copied().enumerate().rev().filter(|&(_, n)| n > 0).collect();
        if waiting.is_empty() {
            items.push(Item::text(0, t(l, "mq_byprio_empty"), th.dim()));
        }
        for (p, n) in waiting {
            let spans = vec![
                Span::styled(tf(l, "mq_prio_n", &[("p", p.to_string())]), th.value()),
                Span::styled(format!(" ×{n}"), th.label()),
            ];
            items.push(Item::new(0, spans));
        }
        match d.counts_agree() {
            Some(true) if check => items.push(Item::new(
                1,
                vec![
                    Span::styled(tf(l, "mq_curmsgs_eq", &[("n", d.curmsgs.to_string())]), th.label()),
                    Span::styled(" ✓", th.good()),
                ],
            )),
            Some(false) => {
                items.push(Item::text(0, tf(l, "mq_byprio_differs", &[("n", d.curmsgs.to_string())]), th.warn()))
            }
            _ => {}
        }
        if src {
            items.push(Item::text(2, t(l, "mq_byprio_source"), th.dim()));
        }
        items
    };
    let width = |items: &[Item]| {
        items.iter().map(|i| i.spans.iter().map(|s| display_width(&s.content)).sum::<usize>() + 1).sum::<usize>()
    };
    let (long, short) = (t(l, "mq_byprio"), t(l, "mq_byprio_short"));
    let forms = [(long, true, source), (long, true, false), (short, true, false), (short, false, false)];
    let items = forms
        .iter()
        .map(|&(label, check, src)| build(label, check, src))
        .find(|items| width(items) <= room + 1)
        .unwrap_or_else(|| build(short, false, false));
    fit::row(items, " ", room, view)
}

/// The queue's name and its sizes, as whole items.
fn attr_row(d: &MqDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let pair = |pri: u8, k: &str, v: u64| {
        Item::new(pri, vec![Span::styled(format!("{k} "), th.label()), Span::styled(v.to_string(), th.value())])
    };
    let mut items = vec![pair(0, "mq_maxmsg", d.maxmsg), pair(1, "mq_msgsize", d.msgsize)];
    if !d.attr_seen {
        items.push(Item::text(1, "(mq_getattr -)", th.dim()));
    }
    fit::row(items, "  ", room, view)
}

/// The queue's name in the mqueue file system.
fn name_line(d: &MqDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let long = Line::from(vec![
        Span::styled(d.name.clone(), th.value()),
        Span::styled(format!(" ({})", t(view.lang, "mq_fs")), th.dim()),
    ]);
    fit::first_fit_line(vec![long, Line::from(Span::styled(d.name.clone(), th.value()))], room).unwrap_or_default()
}

fn timeout_row(d: &MqDetail, room: usize, view: &View) -> Option<Line<'static>> {
    (d.send_timeout_ms > 0).then(|| {
        let th = view.theme;
        let items = vec![
            Item::text(1, format!("mq_timedsend +{}ms", d.send_timeout_ms), th.label()),
            Item::text(
                0,
                format!("{} ×{}", t(view.lang, "timeouts"), d.timeouts),
                if d.timeouts > 0 { th.warn() } else { th.value() },
            ),
        ];
        fit::row(items, "  ", room, view)
    })
}

/// Each process's part as a line, the loud ones kept longest.
fn party_lines(m: &MechanismSnapshot, room: usize, view: &View) -> Vec<(u8, Line<'static>)> {
    let names = [t(view.lang, "producer"), t(view.lang, "consumer")];
    let mut out = Vec::new();
    for (p, name) in m.processes.iter().zip(names) {
        let loud = matches!(p.party(false), Party::BlockedFull | Party::StepHeld | Party::Paused | Party::Exited);
        if let Some(line) = widgets::party_line(p, name, room, view) {
            out.push((if loud { 0 } else { 1 }, line));
        }
    }
    out
}

/// The last priorities sent and received, as many whole numbers as fit,
/// and the order check.
fn history_lines(d: &MqDetail, room: usize, view: &View) -> Vec<(u8, Vec<Line<'static>>)> {
    let l = view.lang;
    let th = view.theme;
    if !d.priorities {
        return vec![widgets::prose(t(l, "prio_off"), room, 3, th.dim())];
    }
    let labels = [t(l, "sent_prio"), t(l, "recv_prio")];
    let lw = labels.iter().map(|s| display_width(s)).max().unwrap_or(0);
    let seq_line = |label: &str, v: &[u32], tail: Vec<Span<'static>>| {
        let tail_w: usize = tail.iter().map(|s| display_width(&s.content)).sum();
        let head = fit::pad_whole(label, lw).unwrap_or_else(|| label.to_string());
        let avail = room.saturating_sub(display_width(&head) + 1 + tail_w);
        // The newest that fit, whole.
        let k = (0..=v.len()).rev().find(|&k| k * 2 <= avail + 1).unwrap_or(0);
        let seq = v[v.len() - k..].iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        let mut spans = vec![Span::styled(format!("{head} "), th.label()), Span::styled(seq, th.value())];
        spans.extend(tail);
        Line::from(spans)
    };
    let inv = vec![
        Span::styled(format!("  {} ", t(l, "inversions")), th.label()),
        Span::styled(d.inversions.to_string(), if d.inversions > 0 { th.bad() } else { th.good() }),
    ];
    let mut out = vec![(3, vec![seq_line(labels[0], &d.sent_prios, vec![]), seq_line(labels[1], &d.recv_prios, inv)])];
    out.push(widgets::prose(t(l, "prio_note"), room, 5, th.dim()));
    out
}

/// The one-row figure: `producer ■ ─▶ │░│0│3│ 2/10 ─▶ □ consumer`, names
/// and pids left out first.
fn flow_line(m: &MechanismSnapshot, d: &MqDetail, room: usize, view: &View) -> Line<'static> {
    let l = view.lang;
    let th = view.theme;
    let labels = slot_labels(m, d);
    let (prod, cons) = (m.processes.first(), m.processes.get(1));
    let party = |p: Option<&crate::model::snapshot::ProcessSnapshot>| p.map_or(Party::NotStarted, |p| p.party(false));
    let arrow = || Span::styled(" ─▶ ", th.label());
    let full = m.channel.full();
    // (names, pids, numbers: 0 none / 1 bare / 2 with the unit, slots)
    let build = |names: bool, pids: bool, nums: u8, slots: bool| -> Vec<Span<'static>> {
        let who = |i: usize, p: Option<&crate::model::snapshot::ProcessSnapshot>| {
            let mut s = if names { t(l, ["producer", "consumer"][i]).to_string() } else { String::new() };
            if let Some(p) = p.filter(|p| pids && p.pid > 0) {
                s = format!("{s} {}", p.pid).trim_start().to_string();
            }
            s
        };
        let mut spans = Vec::new();
        let left = who(0, prod);
        if !left.is_empty() {
            spans.push(Span::styled(format!("{left} "), th.title()));
        }
        spans.push(mark(party(prod), view));
        spans.push(arrow());
        if slots && !labels.is_empty() {
            spans.extend(slot_spans(&labels, 1, true, full, view));
        } else {
            spans.push(Span::styled("[", th.label()));
            let c = &m.channel;
            let filled = (c.within() * 6).checked_div(c.capacity).unwrap_or(0) as usize;
            let filled = if c.within() > 0 { filled.max(1) } else { 0 };
            spans.push(Span::styled("█".repeat(filled), if full { th.gauge_full() } else { th.gauge() }));
            spans.push(Span::styled("░".repeat(6 - filled), th.dim()));
            spans.push(Span::styled("]", th.label()));
        }
        if nums > 0 {
            spans.push(Span::raw(" "));
            spans.extend(fraction(m, usize::MAX, nums > 1, view).unwrap_or_default());
        }
        spans.push(arrow());
        spans.push(mark(party(cons), view));
        let right = who(1, cons);
        if !right.is_empty() {
            spans.push(Span::styled(format!(" {right}"), th.title()));
        }
        spans
    };
    let width = |s: &[Span]| s.iter().map(|x| display_width(&x.content)).sum::<usize>();
    // The slots and the kernel's count before the names; pids go first.
    let forms = [
        (true, true, 2, true),
        (true, false, 2, true),
        (true, false, 1, true),
        (false, false, 2, true),
        (false, false, 1, true),
        (false, false, 0, true),
        (true, false, 2, false),
        (false, false, 2, false),
        (false, false, 1, false),
        (false, false, 0, false),
    ];
    forms.iter().map(|&(a, b, c, s)| build(a, b, c, s)).find(|s| width(s) <= room).map(Line::from).unwrap_or_default()
}

fn tiny(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, view: &View) {
    let room = area.width as usize;
    let mut lines = vec![(0, flow_line(m, d, room, view))];
    lines.extend(party_lines(m, room, view).into_iter().map(|(p, l)| (p + 1, l)));
    lines.push((2, by_prio_line(d, room, false, view)));
    lines.push((3, attr_row(d, room, view)));
    widgets::fitted_groups(f, area, lines.into_iter().map(|(p, l)| (p, vec![l])).collect(), view);
}

fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, view: &View) {
    let room = area.width as usize;
    // Room to spare under the figure: the slots get their frame.
    let boxed = area.height >= 10 + view.theme.gauge_rows();
    let fig = figure_rows(m, d, room, boxed, view)
        .or_else(|| figure_rows(m, d, room, false, view))
        .unwrap_or_else(|| bar_rows(m, room, view));
    // The parties' lines below keep two rows at least; else the one-row
    // figure.
    if fig.len() + 2 > area.height as usize {
        return tiny(f, area, m, d, view);
    }
    let fig_h = (fig.len() as u16).min(area.height);
    let [top, rest] = Layout::vertical([Constraint::Length(fig_h), Constraint::Fill(1)]).areas(area);
    super::fit::draw(f, top, fig);
    let mut lines = party_lines(m, room, view);
    lines.push((1, by_prio_line(d, room, true, view)));
    lines.push((2, attr_row(d, room, view)));
    lines.push((3, name_line(d, room, view)));
    lines.extend(timeout_row(d, room, view).map(|l| (2, l)));
    lines.push((3, widgets::integrity_row(&m.integrity, room, view)));
    let mut groups: Vec<(u8, Vec<Line<'static>>)> = lines.into_iter().map(|(p, l)| (p, vec![l])).collect();
    groups.extend(widgets::note_items(&m.notes, room, view));
    groups.push(widgets::prose(t(view.lang, "mq_byprio_source_long"), room, 9, view.theme.dim()));
    widgets::fitted_groups(f, rest, groups, view);
}

/// The queue box's inside: the slots in their own frame, the kernel's
/// count and sizes, where the priorities come from.
fn queue_box(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let mut block = Boxed::new().border_type(BorderType::Double);
    let title = fit::first_fit(
        &[&format!("{} {}", t(l, "mq_queue"), d.name), &d.name, t(l, "mq_queue")],
        area.width.saturating_sub(4) as usize,
    )
    .map(str::to_string);
    if let Some(title) = title {
        block = block.title(Span::styled(format!(" {title} "), th.title()));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let room = inner.width as usize;
    let labels = slot_labels(m, d);
    let full = m.channel.full();
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    match [3, 1].into_iter().find(|&cw| slots_width(labels.len(), cw) + 2 <= room).filter(|_| !labels.is_empty()) {
        Some(cw) => {
            let n = labels.len();
            let edge = |a: &str, mid: &str, b: &str| {
                let cells = vec!["─".repeat(cw); n].join(mid);
                Line::from(Span::styled(format!("{a}{cells}{b}"), th.label()))
            };
            let mut head = Row::new(room);
            head.put_end(room, vec![Span::styled(t(l, "mq_head"), th.label())]);
            lines.push((0, head.line()));
            lines.push((0, edge("┌", "┬", "┐")));
            let mut row = slot_spans(&labels, cw, true, full, view);
            row.push(Span::styled(" ▶", th.label()));
            lines.push((0, Line::from(row)));
            for _ in 1..th.gauge_rows() {
                lines.push((0, Line::from(slot_spans(&labels, cw, false, full, view))));
            }
            lines.push((0, edge("└", "┴", "┘")));
        }
        None => lines.extend(bar_rows(m, room, view).into_iter().map(|l| (0, l))),
    }
    let slots_drawn = lines.len() > th.gauge_rows() as usize + 1;
    if let Some(fr) = fraction(m, room, true, view).filter(|_| slots_drawn) {
        let mut spans = fr;
        spans.push(Span::styled(t(view.lang, "mq_getattr_fraction"), th.dim()));
        let short: Vec<Span<'static>> = spans[..spans.len() - 1].to_vec();
        lines.extend(fit::first_fit_line(vec![Line::from(spans), Line::from(short)], room).map(|l| (0, l)));
    }
    lines.push((1, attr_row(&MqDetail { name: String::new(), ..d.clone() }, room, view)));
    lines.extend(timeout_row(d, room, view).map(|l| (1, l)));
    lines.push((3, widgets::sparkline(&m.history, m.channel.capacity, room, view)));
    widgets::fitted_lines(f, inner, lines, view);
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MqDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let fig_h = (10 + th.gauge_rows()).min(area.height.saturating_sub(4));
    let [fig, rest] = Layout::vertical([Constraint::Length(fig_h), Constraint::Fill(1)]).areas(area);
    let aw = |s: &str| display_width(s) as u16 + 2;
    // The queue keeps room for its slots, one column each at least.
    let mid_min = slots_width(m.channel.capacity as usize, 1) as u16 + 4;
    let spare = area.width.saturating_sub(aw("mq_send()") + aw("mq_receive()") + mid_min) / 2;
    let side = (area.width / 5).clamp(18, 28).min(spare.max(14));
    let cols = Layout::horizontal([
        Constraint::Length(side),
        Constraint::Length(aw("mq_send()")),
        Constraint::Fill(1),
        Constraint::Length(aw("mq_receive()")),
        Constraint::Length(side),
    ])
    .split(fig);
    let names = [t(l, "producer"), t(l, "consumer")];
    for (i, c) in [cols[0], cols[4]].into_iter().enumerate() {
        if let Some(p) = m.processes.get(i) {
            widgets::party_box(f, c, p, names[i], true, view);
        }
    }
    for (call, c) in [("mq_send()", cols[1]), ("mq_receive()", cols[3])] {
        let r = Rect { y: c.y + 3, height: c.height.saturating_sub(3).min(2), ..c };
        super::fit::draw(f, r, widgets::arrow(call, c.width, th.label()));
    }
    queue_box(f, cols[2], m, d, view);

    let room = rest.width as usize;
    let mut groups = vec![(0, vec![by_prio_line(d, room, false, view)])];
    groups.push(widgets::prose(t(l, "mq_byprio_source_long"), room, 1, th.dim()));
    groups.extend(history_lines(d, room, view));
    groups.push((1, vec![widgets::integrity_row(&m.integrity, room, view)]));
    if measured::any(m) {
        groups.push((2, vec![measured::figures_row(m, room, view)]));
    }
    let limits = vec![
        Item::text(0, format!("{}:", t(l, "mq_limits")), th.label()),
        Item::text(0, format!("msg_max {}", d.msg_max), th.dim()),
        Item::text(0, format!("msgsize_max {}", d.msgsize_max), th.dim()),
        Item::text(1, "(/proc/sys/fs/mqueue)", th.dim()),
    ];
    groups.push((4, vec![fit::row(limits, "  ", room, view)]));
    groups.extend(widgets::note_items(&m.notes, room, view));
    if m.notes.is_empty() {
        groups.push((6, vec![widgets::knob_row(m, room, view)]));
    }
    widgets::fitted_groups(f, rest, groups, view);
}

/// Sentences for the lesson pane about what the snapshot shows now.
pub fn observe(m: &MechanismSnapshot, d: &MqDetail, lang: crate::i18n::Lang) -> Vec<String> {
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
