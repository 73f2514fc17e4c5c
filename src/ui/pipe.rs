//! The ordinary pipe's panel, in the shape of the textbook's figure:
//! parent and child, each with its `fd[0]` (read end) and `fd[1]` (write
//! end), the ends each closed drawn closed, and the kernel's buffer below
//! them filling.
//!
//! ```text
//! ╭ parent · producer 4121 ╮        ╭ child · consumer 4122 ─╮
//! │■ BLOCKED: buffer full  │        │· pacing itself         │
//! │fd[0] 4 ✕ closed        │        │fd[0] 4 ● read end      │
//! │fd[1] 5 ● write end     │        │fd[1] 5 ✕ closed        │
//! ╰───────────┬────────────╯        ╰───────────▲────────────╯
//!             │ write(fd[1])                    │ read(fd[0])
//! ╔ kernel pipe buffer · pipe:[31337] ══════════╧════════════╗
//! ║███████████████████████████████████████ 64.0K/64.0K      ║
//! ╚══════════════════════════════════════════════════════════╝
//! delivered 8960  lost 0  corrupt 0  dup 0  reordered 0
//! ```
//! The level of detail follows the room: one row (`producer ■ ─▶ [███
//! 64.0K/64.0K] ─▶ · consumer`) in a tiny cell, the figure without boxes in
//! a low one, the boxed figure in a grid cell, and the raw Linux facts
//! (state letter, wait channel, call, FIONREAD, history) when roomy.

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::BorderType;
use ratatui::Frame;

use super::fit::{self, Item};
use super::measured;
use super::widgets::{self, put};
use super::View;
use crate::i18n::{t, tf, Lang};
use crate::model::detail::pipe::PipeDetail;
use crate::model::snapshot::{MechanismSnapshot, ProcessSnapshot, Wait};

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &PipeDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let subs = [t(l, "pipe_sub"), t(l, "pp_pipe_sub_s")];
    let inner = widgets::panel_fitted(f, area, n, &[t(l, "pipe_title")], &subs, selected, view);
    let g = view.theme.gauge_rows();
    if inner.height <= 4 {
        tiny(f, inner, m, d, view);
    } else if inner.height >= 7 + g && inner.width >= 38 {
        figure(f, inner, m, d, view);
    } else {
        low(f, inner, m, d, view);
    }
}

/// One end of the pipe as one process's table has it.
struct End {
    /// The descriptor number: the one it holds, else the one pipe()
    /// returned (closed now).
    fd: Option<String>,
    /// Held open; `None` when the table was not read (an old recording).
    open: Option<bool>,
    /// The end this process uses (the parent writes, the child reads).
    used: bool,
}

/// Process `i`'s (0 parent, 1 child) fd[0] and fd[1].
fn ends_of(d: &PipeDetail, i: usize) -> [End; 2] {
    let held = d.holds.get(i);
    let end = |k: usize| {
        let fds = held.map(|h| if k == 0 { &h.read } else { &h.write });
        let fd = match fds {
            Some(v) if !v.is_empty() => Some(v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")),
            _ => d.fd_pair.map(|p| p[k].to_string()),
        };
        End { fd, open: fds.map(|v| !v.is_empty()), used: (i == 0) == (k == 1) }
    };
    [end(0), end(1)]
}

/// `fd[1] 5 ● write end`, its shorter forms, in `room` columns.
fn end_line(k: usize, e: &End, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let (mark, words, style): (&str, [&str; 2], Style) = match (e.open, e.used) {
        (Some(true), true) if k == 0 => ("●", [t(l, "pp_read_end"), t(l, "pp_read_end_s")], th.value()),
        (Some(true), true) => ("●", [t(l, "pp_write_end"), t(l, "pp_write_end_s")], th.value()),
        (Some(true), false) => ("●", [t(l, "pp_open_unused"), t(l, "pp_open_unused_s")], th.warn()),
        (Some(false), _) => ("✕", [t(l, "pp_closed"), t(l, "pp_closed")], th.dim()),
        (None, _) => ("?", ["", ""], th.dim()),
    };
    let name = Span::styled(format!("fd[{k}]"), th.label());
    let num = e.fd.as_ref().map(|n| Span::styled(format!(" {n}"), th.value()));
    let mut forms = Vec::new();
    // The words shorten before the number goes; the mark stays.
    for (with_num, word) in [(true, 0), (true, 1), (false, 0), (false, 1), (true, 2), (false, 2)] {
        let mut spans = vec![name.clone()];
        if with_num {
            match &num {
                Some(n) => spans.push(n.clone()),
                None => continue,
            }
        }
        let text = match words.get(word).filter(|w| !w.is_empty()) {
            Some(w) => format!(" {mark} {w}"),
            None => format!(" {mark}"),
        };
        spans.push(Span::styled(text, style));
        forms.push(Line::from(spans));
    }
    fit::first_fit_line(forms, room).unwrap_or_default()
}

/// `parent · producer 4121`, shorter forms after it.
fn box_titles(i: usize, p: &ProcessSnapshot, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let (rel, role) = if i == 0 { ("parent", "producer") } else { ("child", "consumer") };
    let name = format!("{} · {}", t(l, rel), t(l, role));
    let pid = widgets::pid(p.pid).trim_start().to_string();
    vec![
        Line::from(vec![
            Span::styled(name.clone(), th.title()),
            Span::styled(format!(" · {} ", t(l, "pid")), th.label()),
            Span::styled(pid.clone(), th.value()),
        ]),
        Line::from(vec![Span::styled(name.clone(), th.title()), Span::styled(format!(" {pid}"), th.value())]),
        Line::from(Span::styled(name, th.title())),
        Line::from(Span::styled(t(l, rel).to_string(), th.title())),
    ]
}

/// The boxed figure: parent and child over the pipe.
fn figure(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &PipeDetail, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let roomy = widgets::roomy(area);
    let g = th.gauge_rows();
    let spare = std::cell::Cell::new(area.height.saturating_sub(7 + g));
    // A row for what is wanted, if `keep` rows still remain after it.
    let take = |want: bool, keep: u16| {
        let ok = want && spare.get() > keep;
        spare.set(spare.get() - u16::from(ok));
        ok
    };
    // What joins the figure as rows allow, most telling first.
    let conn_row = take(true, 0);
    let integrity = take(true, 0);
    // The notes keep the rows they need (when they can have them) from
    // everything after this.
    let notes = widgets::note_rows(m, 2, area.width as usize, view).len() as u16;
    let notes = if notes <= spare.get() { notes } else { 0 };
    let reply = take(d.duplex && d.reply.is_some(), notes);
    let figures = take(roomy && measured::any(m), notes);
    let fionread = take(!d.freed, notes);
    let raw_state = take(roomy, notes);
    let raw_op = take(roomy, notes);
    let history = take(roomy, notes);
    let counts = take(roomy, notes);
    // The notes' four design questions, answered from what is observed.
    let answers = super::design::pipe_answers(d);
    let design = usize::from(take(!answers.is_empty(), notes)) + usize::from(take(!answers.is_empty(), notes));
    // Room to spare: the channel grows, so its fill stays the biggest thing.
    let g = g + u16::from(take(true, notes)) + u16::from(take(g == 1, notes));
    let box_rows = 3 + u16::from(raw_state) + u16::from(raw_op) + u16::from(counts);
    let pipe_rows = g + u16::from(fionread) + u16::from(history);

    // The two processes, side by side.
    let bw = ((area.width - 2) / 2).min(if roomy { 52 } else { 40 });
    let boxes = [
        Rect { x: area.x, y: area.y, width: bw, height: box_rows + 2 },
        Rect { x: area.right() - bw, y: area.y, width: bw, height: box_rows + 2 },
    ];
    let mut centers = [0u16; 2];
    for (i, b) in boxes.iter().enumerate() {
        let Some(p) = m.processes.get(i) else { continue };
        let inner = widgets::fig_box(f, *b, box_titles(i, p, view), BorderType::Rounded, false, view);
        let room = inner.width as usize;
        let ends = ends_of(d, i);
        let mut lines = vec![
            Line::from(widgets::party_fit(p, room, view)),
            end_line(0, &ends[0], room, view),
            end_line(1, &ends[1], room, view),
        ];
        if raw_state {
            lines.push(raw_state_line(p, room, view));
        }
        if raw_op && p.alive() {
            lines.push(op_line(p, room, view));
        }
        if counts {
            lines.push(count_line(p, i == 0, room, view));
        }
        widgets::put_lines(f, inner, &lines);
        centers[i] = b.x + b.width / 2;
    }

    // The pipe, under both.
    let pipe_area =
        Rect { x: area.x, y: area.y + box_rows + 2 + u16::from(conn_row), width: area.width, height: pipe_rows + 2 };
    let name = t(l, "pipe_buffer");
    let mut titles = Vec::new();
    if let Some(ino) = d.inode {
        titles.push(Line::from(vec![
            Span::styled(name.to_string(), th.title()),
            Span::styled(format!(" · pipe:[{ino}]"), th.dim()),
        ]));
    }
    titles.push(Line::from(Span::styled(name.to_string(), th.title())));
    titles.push(Line::from(Span::styled(t(l, "pp_pipe").to_string(), th.title())));
    let inner = widgets::fig_box(f, pipe_area, titles, BorderType::Double, true, view);
    // A freed pipe has no buffer left to measure: say so instead of drawing
    // its last capacity.
    let mut lines = if d.freed {
        let freed = t(l, "pipe_freed");
        fit::first_fit(&[freed], inner.width as usize)
            .map(|s| Line::from(Span::styled(s, th.dim())))
            .into_iter()
            .collect()
    } else {
        widgets::gauge_rows(&m.channel, inner.width, g, view)
    };
    if fionread {
        let items = vec![
            Item::new(
                0,
                vec![Span::styled("FIONREAD ", th.label()), Span::styled(m.channel.depth.to_string(), th.value())],
            ),
            Item::new(
                1,
                vec![
                    Span::styled("F_GETPIPE_SZ ", th.label()),
                    Span::styled(m.channel.capacity.to_string(), th.value()),
                ],
            ),
        ];
        lines.push(fit::row(items, "  ", inner.width as usize, view));
    }
    if history {
        lines.push(widgets::history_line(m, inner.width as usize, view));
    }
    widgets::put_lines(f, inner, &lines);

    // Connectors: the parent's fd[1] down into the pipe, the pipe up into
    // the child's fd[0].
    let style = th.label();
    let box_bottom = area.y + box_rows + 1;
    let conn_y = box_bottom + 1;
    let [px, cx] = centers;
    put(f, area, px, box_bottom, &Line::from(Span::styled("┬", style)));
    put(f, area, cx, box_bottom, &Line::from(Span::styled("▲", style)));
    put(f, area, px, pipe_area.y, &Line::from(Span::styled("▼", style)));
    put(f, area, cx, pipe_area.y, &Line::from(Span::styled("╧", style)));
    // The calls label the connectors: on a row of their own, or (short
    // of rows) in the boxes' bottom borders.
    let (w_room, r_room) = if conn_row {
        (cx.saturating_sub(px + 3) as usize, area.right().saturating_sub(cx + 2) as usize)
    } else {
        let right_of = |i: usize, c: u16| (boxes[i].right() - 1).saturating_sub(c + 3) as usize;
        (right_of(0, px), right_of(1, cx))
    };
    let labels = [("write(fd[1])", "read(fd[0])"), ("write()", "read()")]
        .into_iter()
        .find(|(w, r)| fit::width(w) <= w_room && fit::width(r) <= r_room)
        .unwrap_or(("", ""));
    if conn_row {
        put(f, area, px, conn_y, &Line::from(Span::styled(format!("│ {}", labels.0), style)));
        put(f, area, cx, conn_y, &Line::from(Span::styled(format!("│ {}", labels.1), style)));
    } else if !labels.0.is_empty() {
        put(f, area, px + 1, box_bottom, &Line::from(Span::styled(format!(" {} ", labels.0), style)));
        put(f, area, cx + 1, box_bottom, &Line::from(Span::styled(format!(" {} ", labels.1), style)));
    }

    // Under the figure: integrity, the reply pipe, the notes.
    let below = Rect { y: pipe_area.bottom(), height: area.bottom().saturating_sub(pipe_area.bottom()), ..area };
    let room = below.width as usize;
    let mut lines = Vec::new();
    if integrity {
        lines.push(widgets::integrity_row(&m.integrity, room, view));
    }
    lines.extend(super::design::rows(&answers, room, design, view));
    if figures {
        lines.push(measured::figures_row(m, room, view));
    }
    if let (true, Some(r)) = (reply, &d.reply) {
        lines.push(reply_line(r, room, view));
    }
    let left = (below.height as usize).saturating_sub(lines.len());
    lines.extend(widgets::note_rows(m, left, room, view));
    if roomy && lines.len() < below.height as usize {
        lines.push(widgets::knob_row(m, room, view));
    }
    widgets::put_lines(f, below, &lines);
}

/// `reply pipe ◀ ████░░ 1.0K/64.0K`: the second pipe of a duplex pair.
fn reply_line(c: &crate::model::snapshot::Channel, room: usize, view: &View) -> Line<'static> {
    let head = format!("{} ◀ ", t(view.lang, "reply_pipe"));
    let mut spans = vec![Span::styled(head.clone(), view.theme.label())];
    let g = widgets::gauge_line(c, room.saturating_sub(fit::width(&head)) as u16, view);
    if fit::line_width(&g) + fit::width(&head) <= room {
        spans.extend(g.spans);
    }
    Line::from(spans)
}

/// The kernel's own words: state letter and wait channel.
fn raw_state_line(p: &ProcessSnapshot, room: usize, view: &View) -> Line<'static> {
    widgets::raw_state_line(p, room, view)
}

fn op_line(p: &ProcessSnapshot, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let items = vec![
        Item::new(
            0,
            vec![
                Span::styled(format!("{} ", crate::i18n::t(view.lang, "op_label")), th.label()),
                Span::raw(widgets::op_word(&p.op, view.lang)),
            ],
        ),
        Item::text(1, widgets::since(p.op_ms), th.dim()),
    ];
    fit::row(items, " ", room, view)
}

/// `sent 9216 1000/s` for the parent, `recv …` for the child.
fn count_line(p: &ProcessSnapshot, sends: bool, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let (key, n, r) = if sends { ("sent", p.sent, p.send_rate) } else { ("received", p.received, p.recv_rate) };
    let items = vec![
        Item::new(
            0,
            vec![
                Span::styled(format!("{} ", t(view.lang, key)), th.label()),
                Span::styled(widgets::count(n), th.value()),
            ],
        ),
        Item::text(1, widgets::rate(r), th.dim()),
    ];
    fit::row(items, " ", room, view)
}

/// A low cell: the same figure without boxes. The two processes' marks
/// and ends over the connectors, the pipe's gauge under them.
fn low(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &PipeDetail, view: &View) {
    let th = view.theme;
    let half = area.width.saturating_sub(1) / 2;
    let halves = [Rect { width: half, ..area }, Rect { x: area.right() - half, width: half, ..area }];
    // Both halves name their process in the same form.
    let form = (0..2).filter_map(|i| m.processes.get(i).map(|p| who_form(i, p, half as usize, view))).max();
    for (i, h) in halves.iter().enumerate() {
        let Some(p) = m.processes.get(i) else { continue };
        let room = h.width as usize;
        put(f, area, h.x, h.y, &who_line(i, p, form.unwrap_or(0), room, view));
        let ends = ends_of(d, i);
        let each = (room.saturating_sub(1)) / 2;
        let l0 = end_line(0, &ends[0], each, view);
        let l1 = end_line(1, &ends[1], each, view);
        let mut spans = l0.spans;
        spans.push(Span::raw(" "));
        spans.extend(l1.spans);
        put(f, area, h.x, h.y + 1, &Line::from(spans));
        let call = if i == 0 { ("▼ ", ["write(fd[1])", "write()"]) } else { ("▲ ", ["read(fd[0])", "read()"]) };
        let label = fit::first_fit(&call.1, room.saturating_sub(2)).unwrap_or("");
        put(f, area, h.x, h.y + 2, &Line::from(Span::styled(format!("{}{label}", call.0), th.label())));
    }
    let gauge = widgets::gauge_block(&m.channel, area.width, view);
    let gy = area.y + 3;
    widgets::put_lines(f, Rect { y: gy, height: area.bottom().saturating_sub(gy), ..area }, &gauge);
    let below_y = gy + gauge.len() as u16;
    let below = Rect { y: below_y, height: area.bottom().saturating_sub(below_y), ..area };
    let mut lines = vec![widgets::integrity_row(&m.integrity, area.width as usize, view)];
    lines.extend(widgets::note_rows(m, (below.height as usize).saturating_sub(1), area.width as usize, view));
    widgets::put_lines(f, below, &lines);
}

/// `parent · producer 4121`, shorter forms after it down to `parent`.
fn who_forms(i: usize, p: &ProcessSnapshot, view: &View) -> [String; 4] {
    let l = view.lang;
    let (rel, role) = if i == 0 { ("parent", "producer") } else { ("child", "consumer") };
    let pid = widgets::pid(p.pid).trim_start().to_string();
    [
        format!("{} · {} {pid}", t(l, rel), t(l, role)),
        format!("{} · {}", t(l, rel), t(l, role)),
        format!("{} {pid}", t(l, rel)),
        t(l, rel).to_string(),
    ]
}

/// The longest name form that leaves the part its short words (else its
/// mark) in `room` columns.
fn who_form(i: usize, p: &ProcessSnapshot, room: usize, view: &View) -> usize {
    let forms = who_forms(i, p, view);
    let short = fit::width(t(view.lang, widgets::party_short_key(p.party(false)))) + 2;
    forms
        .iter()
        .position(|n| fit::width(n) + 1 + short <= room)
        .or_else(|| forms.iter().position(|n| fit::width(n) + 2 <= room))
        .unwrap_or(forms.len() - 1)
}

/// `parent · producer 4121 ■ BLOCKED: buffer full` in name form `form`.
fn who_line(i: usize, p: &ProcessSnapshot, form: usize, room: usize, view: &View) -> Line<'static> {
    let name = who_forms(i, p, view)[form.min(3)].clone();
    let span = widgets::party_fit(p, room.saturating_sub(fit::width(&name) + 1), view);
    Line::from(vec![Span::styled(name, view.theme.title()), Span::raw(" "), span])
}

/// A tiny cell: the flow in one row, then the loudest part, the ends, the
/// count, as rows allow.
fn tiny(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &PipeDetail, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let room = area.width as usize;
    let side = |i: usize, key: &'static str| -> Vec<Item> {
        let Some(p) = m.processes.get(i) else { return Vec::new() };
        let party = p.party(false);
        let mark = Item::text(0, widgets::party_mark(party), th.party(party));
        let label = Item::text(2, t(l, key), th.label());
        let pid = Item::text(3, widgets::pid(p.pid).trim_start().to_string(), th.value());
        if i == 0 {
            vec![label, pid, mark]
        } else {
            vec![mark, pid, label]
        }
    };
    let mut lines = vec![widgets::flow_line(side(0, "producer"), &m.channel, side(1, "consumer"), room, view)];
    let parts: Vec<(&ProcessSnapshot, &str)> = m.processes.iter().zip([t(l, "producer"), t(l, "consumer")]).collect();
    lines.insert(1, widgets::parts_row(&parts, room, view));
    lines.push(ends_summary(d, room, view));
    lines.push(widgets::integrity_row(&m.integrity, room, view));
    widgets::put_lines(f, area, &lines);
}

/// `fd[1] 5 ─▶ fd[0] 4 · unused ends closed`, or which unused end is open.
fn ends_summary(d: &PipeDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let [p, c] = [ends_of(d, 0), ends_of(d, 1)];
    let num = |e: &End| e.fd.clone().map(|n| format!(" {n}")).unwrap_or_default();
    let mut items =
        vec![Item::new(0, vec![Span::styled(format!("fd[1]{} ─▶ fd[0]{}", num(&p[1]), num(&c[0])), th.value())])];
    let open_unused: Vec<String> = [(0, &p), (1, &c)]
        .iter()
        .flat_map(|(i, ends)| {
            ends.iter()
                .enumerate()
                .filter(|(_, e)| e.open == Some(true) && !e.used)
                .map(move |(k, e)| format!("{} fd[{k}]{}", t(l, if *i == 0 { "parent" } else { "child" }), num(e)))
        })
        .collect();
    let head = items.remove(0);
    let mut line = Line::from(head.spans);
    let rest: Vec<(String, Style)> = if d.holds.is_empty() {
        Vec::new()
    } else if open_unused.is_empty() {
        vec![(t(l, "pp_unused_closed").to_string(), th.good()), (t(l, "pp_closed_s").to_string(), th.good())]
    } else {
        vec![(format!("{}: {}", t(l, "pp_open_unused"), open_unused.join(", ")), th.warn())]
    };
    let used = fit::line_width(&line);
    if let Some((text, style)) = rest.into_iter().find(|(r, _)| used + 3 + fit::width(r) <= room) {
        line.spans.push(Span::raw(" · "));
        line.spans.push(Span::styled(text, style));
    }
    line
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
