//! The named-pipe (FIFO) panel, in the shape of the textbook's figure: a
//! named node in the file system where unrelated writers and the reader
//! meet, its kernel buffer filling; anyone else who opened the path (a
//! `cat` from another terminal) joins the figure too.
//!
//! ```text
//! writer 1  4122 ■ BLOCKED: buffer full ──┐ write()
//! writer 2  4123 ■ BLOCKED: buffer full ──┤
//! bash      5150 outside · w ─────────────┤
//! ╔ /tmp/ipcscope-0/4120/fifo ════════════▼═══════╗
//! ║p rw------- · inode 31337                      ║
//! ║███████████████████████████████ 64.0K/64.0K    ║
//! ╚═╤═════════════════════════════════════════════╝
//!   └ read() ▶ reader 4121 · pacing itself
//! ```
//! One row in a tiny cell, the figure without the box in a low one, and
//! the raw Linux facts (state letters, wait channels, fds) when roomy.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::BorderType;
use ratatui::Frame;

use super::fit::{self, Item};
use super::measured;
use super::widgets::{self, put};
use super::View;
use crate::i18n::t;
use crate::model::detail::fifo::{FifoDetail, FifoHolder};
use crate::model::snapshot::{MechanismSnapshot, ProcessSnapshot, Role, Wait};

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &FifoDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let subs = [t(l, "fifo_sub"), t(l, "pp_fifo_sub_s"), t(l, "pp_fifo_sub_xs")];
    let titles = [t(l, "fifo_title"), t(l, "pp_fifo_title_s")];
    let inner = widgets::panel_fitted(f, area, n, &titles, &subs, selected, view);
    let g = view.theme.gauge_rows();
    if inner.height <= 4 {
        tiny(f, inner, m, d, view);
    } else if inner.height > 5 + g && inner.width >= 38 {
        figure(f, inner, m, d, view);
    } else {
        low(f, inner, m, d, view);
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

/// One party at the FIFO: one of ours, or a process from outside that
/// opened the path.
enum Opener<'a> {
    Ours(&'a ProcessSnapshot),
    Outside(&'a FifoHolder),
}

/// The writers (ours, then outsiders opened for writing) and the readers
/// (ours, then outsiders opened for reading).
fn sides<'a>(m: &'a MechanismSnapshot, d: &'a FifoDetail) -> (Vec<Opener<'a>>, Vec<Opener<'a>>) {
    let mut writers: Vec<Opener> = m.processes.iter().skip(1).map(Opener::Ours).collect();
    let mut readers: Vec<Opener> = m.processes.first().map(Opener::Ours).into_iter().collect();
    for h in d.external() {
        if h.mode.contains('w') {
            writers.push(Opener::Outside(h));
        } else {
            readers.push(Opener::Outside(h));
        }
    }
    (writers, readers)
}

/// A party's row: `writer 1  4122 ■ BLOCKED: buffer full  S anon_pipe_write`
/// with its name padded to `name_w`; what does not fit is left out.
fn party_line(p: &Opener, name_w: usize, room: usize, roomy: bool, d: &FifoDetail, view: &View) -> Line<'static> {
    let th = view.theme;
    match p {
        Opener::Ours(p) => {
            let name = fit::pad_whole(&role_label(&p.role, view), name_w).unwrap_or_else(|| role_label(&p.role, view));
            let pid = Span::styled(format!(" {}", widgets::pid(p.pid).trim_start()), th.value());
            // The part's words matter more than the pid: the pid goes first.
            let base = |with_pid: bool| {
                let mut spans = vec![Span::styled(name.clone(), th.label())];
                if with_pid {
                    spans.push(pid.clone());
                }
                spans
            };
            // The part's words matter more than the pid: the pid goes first.
            let party = p.party(false);
            let long = fit::width(t(view.lang, party.label_key())) + 2;
            let short = fit::width(t(view.lang, widgets::party_short_key(party))) + 2;
            let w_of = |with_pid: bool| fit::line_width(&Line::from(base(with_pid))) + 1;
            let with_pid = [long, short]
                .iter()
                .find_map(|&need| [true, false].into_iter().find(|&with| w_of(with) + need <= room));
            let head = base(with_pid.unwrap_or(false));
            let head_w = fit::line_width(&Line::from(head.clone()));
            let span = widgets::party_fit(p, room.saturating_sub(head_w + 1), view);
            let mut first = head;
            first.push(Span::raw(" "));
            first.push(span);
            let mut items = vec![Item::new(0, first)];
            if roomy {
                if let Some(h) = d.holders.iter().find(|h| h.pid == p.pid) {
                    items.push(Item::text(2, format!("fd {} {}", h.fd, h.mode), th.dim()));
                }
                if p.alive() {
                    items.push(Item::new(
                        3,
                        vec![
                            Span::styled(format!("{} ", p.state), th.state(p)),
                            Span::styled(widgets::wchan_in(&p.wchan, view.lang), th.dim()),
                        ],
                    ));
                }
            }
            widgets::fit_quiet(items, "  ", room)
        }
        Opener::Outside(h) => {
            let name = fit::pad_whole(&h.comm, name_w).unwrap_or_else(|| h.comm.clone());
            let items = vec![
                Item::new(
                    0,
                    vec![
                        Span::styled(name, th.warn()),
                        Span::styled(format!(" {}", widgets::pid(h.pid).trim_start()), th.value()),
                        Span::styled(format!(" {} · {}", t(view.lang, "outside"), h.mode), th.warn()),
                    ],
                ),
                Item::text(2, format!("fd {}", h.fd), th.dim()),
            ];
            widgets::fit_quiet(items, "  ", room)
        }
    }
}

fn name_of(p: &Opener, view: &View) -> String {
    match p {
        Opener::Ours(p) => role_label(&p.role, view),
        Opener::Outside(h) => h.comm.clone(),
    }
}

/// The node's path in `room` columns, losing whole leading components
/// when narrow.
fn path_span(d: &FifoDetail, room: usize, view: &View) -> Option<Span<'static>> {
    let style = if d.exists { view.theme.title() } else { view.theme.dim() };
    widgets::path_fit(&d.path, room).map(|p| Span::styled(p, style))
}

/// `/tmp/…/fifo p rw------- · inode 31337` in `room` columns: the type,
/// mode and inode first, the path in what they leave (whole components),
/// the inode dropped before the path is.
fn node_full(d: &FifoDetail, room: usize, view: &View) -> Line<'static> {
    for with_inode in [true, false] {
        let node = node_line(d, if with_inode { room } else { 0 }, view);
        let node = if with_inode { node } else { node_kind(d, view) };
        let left = room.saturating_sub(fit::line_width(&node) + 1);
        if let Some(p) = path_span(d, left, view) {
            let mut spans = vec![p, Span::raw(" ")];
            spans.extend(node.spans);
            return Line::from(spans);
        }
    }
    node_line(d, room, view)
}

/// `p rw-------` alone.
fn node_kind(d: &FifoDetail, view: &View) -> Line<'static> {
    let mode = d.mode_text();
    let (kind, perms) = mode.split_at(mode.len().min(1));
    Line::from(Span::styled(format!("{kind} {perms}"), view.theme.value()))
}

/// `p rw------- · inode 31337 · 1 link`, or that the node is gone.
fn node_line(d: &FifoDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    if !d.exists {
        return Line::from(Span::styled(t(view.lang, "fifo_gone"), th.warn()));
    }
    let mode = d.mode_text();
    let (kind, perms) = mode.split_at(mode.len().min(1));
    let items = vec![
        Item::new(0, vec![Span::styled(kind.to_string(), th.value()), Span::styled(format!(" {perms}"), th.value())]),
        Item::new(
            0,
            vec![
                Span::styled(format!("{} ", t(view.lang, "inode")), th.label()),
                Span::styled(d.inode.to_string(), th.value()),
            ],
        ),
        Item::text(2, t(view.lang, "pp_fifo_node"), th.dim()),
    ];
    widgets::fit_quiet(items, " · ", room)
}

/// `msg.size 256 ≤ PIPE_BUF 4096: each write() lands whole …`, whole or out.
fn atomic_line(d: &FifoDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let (key, style) = if d.atomic { ("fifo_atomic", th.good()) } else { ("fifo_not_atomic", th.bad()) };
    let long = Line::from(vec![
        Span::styled(format!("msg.size {} ", d.msg_size), th.label()),
        Span::styled(t(view.lang, key).replace("{b}", &d.pipe_buf.to_string()), style),
    ]);
    let op = if d.atomic { "≤" } else { ">" };
    let short = Line::from(vec![
        Span::styled(format!("msg.size {} ", d.msg_size), th.label()),
        Span::styled(format!("{op} PIPE_BUF {}", d.pipe_buf), style),
    ]);
    fit::first_fit_line(vec![long, short], room).unwrap_or_default()
}

/// The boxed figure: writers converging on the node, the reader under it.
fn figure(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &FifoDetail, view: &View) {
    let th = view.theme;
    let roomy = widgets::roomy(area);
    let g = th.gauge_rows();
    let (writers, readers) = sides(m, d);
    // Rows: writers, the box (borders, gauge), readers; then what fits.
    let fixed = 2 + g;
    let max_rows = area.height.saturating_sub(fixed + 1) as usize;
    let n_readers = readers.len().clamp(1, 2).min(max_rows.saturating_sub(1).max(1));
    let n_writers = writers.len().clamp(1, max_rows.saturating_sub(n_readers).max(1));
    let spare = std::cell::Cell::new(area.height.saturating_sub(fixed + n_writers as u16 + n_readers as u16));
    // A row for what is wanted, if `keep` rows still remain after it.
    let take = |want: bool, keep: u16| {
        let ok = want && spare.get() > keep;
        spare.set(spare.get() - u16::from(ok));
        ok
    };
    // The box's title is the node's path when it ends before the writers'
    // line comes in; else the path goes on a row inside.
    let cx = area.x + (area.width * 2 / 3).min(area.width.saturating_sub(12));
    let title_room = cx.saturating_sub(area.x + 4) as usize;
    let titled = path_span(d, title_room, view).filter(|_| d.exists && d.path.len() <= title_room);
    let node = take(true, 0);
    let integrity = take(true, 0);
    // The notes keep the rows they need (when they can have them) from
    // everything after this.
    let notes = widgets::note_rows(m, 2, area.width as usize, view).len() as u16;
    let notes = if notes <= spare.get() { notes } else { 0 };
    let figures = take(roomy && measured::any(m), notes);
    let atomic = take(true, notes);
    let history = take(true, notes);
    // The notes' four design questions, answered from what is observed.
    let answers = super::design::fifo_answers(d);
    let design = usize::from(take(!answers.is_empty(), notes)) + usize::from(take(!answers.is_empty(), notes));
    // Room to spare: the channel grows, so its fill stays the biggest thing.
    let g = g + u16::from(take(true, notes)) + u16::from(take(g == 1, notes));

    // The writers, each joined by a line to one column over the node.
    let name_w = writers.iter().chain(readers.iter()).map(|p| fit::width(&name_of(p, view))).max().unwrap_or(0);
    let shown = if writers.len() > n_writers { n_writers - 1 } else { n_writers };
    let style = th.label();
    let mut y = area.y;
    let first_y = y;
    for (i, w) in writers.iter().take(shown).enumerate() {
        let room = cx.saturating_sub(area.x + 2) as usize;
        let line = party_line(w, name_w, room, roomy, d, view);
        let lw = fit::line_width(&line) as u16;
        put(f, area, area.x, y, &line);
        let dash = cx.saturating_sub(area.x + lw + 1);
        let corner = if i == 0 { "┐" } else { "┤" };
        put(
            f,
            area,
            area.x + lw + 1,
            y,
            &Line::from(Span::styled(format!("{}{corner}", "─".repeat(dash as usize)), style)),
        );
        y += 1;
    }
    if shown < writers.len() {
        let more = fit::more(writers.len() - shown, view);
        let corner = if shown == 0 { "┐" } else { "┤" };
        put(f, area, area.x, y, &Line::from(Span::styled(more, th.dim())));
        put(f, area, cx, y, &Line::from(Span::styled(corner, style)));
        y += 1;
    }
    // The call, beside the first writer's corner.
    let label = fit::first_fit(&["write()"], area.right().saturating_sub(cx + 2) as usize).unwrap_or("");
    put(f, area, cx + 1, first_y, &Line::from(Span::styled(format!(" {label}"), style)));

    // The node and its buffer.
    let box_h = 2 + g + u16::from(node) + u16::from(history);
    let node_area = Rect { x: area.x, y, width: area.width, height: box_h };
    let title = match &titled {
        Some(p) => Line::from(p.clone()),
        None => Line::from(Span::styled(t(view.lang, "pp_fifo_title_s"), th.title())),
    };
    let inner = widgets::fig_box(f, node_area, vec![title], BorderType::Double, false, view);
    let mut lines = Vec::new();
    if node {
        let room = inner.width as usize;
        lines.push(if titled.is_some() { node_line(d, room, view) } else { node_full(d, room, view) });
    }
    lines.extend(widgets::gauge_rows(&m.channel, inner.width, g, view));
    if history {
        lines.push(widgets::history_line(m, inner.width as usize, view));
    }
    widgets::put_lines(f, inner, &lines);
    put(f, area, cx, node_area.y, &Line::from(Span::styled("▼", style)));
    y = node_area.bottom();

    // The readers, out of the node's bottom.
    let rx = area.x + 2;
    put(f, area, rx, y - 1, &Line::from(Span::styled("╤", style)));
    let shown_r = if readers.len() > n_readers { n_readers - 1 } else { n_readers };
    let call = format!(" {} ▶ ", fit::first_fit(&["read()"], area.width as usize / 3).unwrap_or(""));
    for (i, r) in readers.iter().take(shown_r).enumerate() {
        let last = i + 1 == n_readers;
        let lead = format!("{}{call}", if last { "└" } else { "├" });
        let room = area.right().saturating_sub(rx + fit::width(&lead) as u16) as usize;
        let mut spans = vec![Span::styled(lead, style)];
        spans.extend(party_line(r, name_w, room, roomy, d, view).spans);
        put(f, area, rx, y, &Line::from(spans));
        y += 1;
    }
    if shown_r < readers.len() {
        let more = fit::more(readers.len() - shown_r, view);
        put(f, area, rx, y, &Line::from(vec![Span::styled("└ ", style), Span::styled(more, th.dim())]));
        y += 1;
    }

    // Under the figure.
    let below = Rect { y, height: area.bottom().saturating_sub(y), ..area };
    let room = below.width as usize;
    let mut lines = Vec::new();
    if integrity {
        lines.push(widgets::integrity_row(&m.integrity, room, view));
    }
    if figures {
        lines.push(measured::figures_row(m, room, view));
    }
    if atomic {
        lines.push(atomic_line(d, room, view));
    }
    lines.extend(super::design::rows(&answers, room, design, view));
    let left = (below.height as usize).saturating_sub(lines.len());
    lines.extend(widgets::note_rows(m, left, room, view));
    if roomy && lines.len() < below.height as usize {
        lines.push(Line::from(Span::styled(t(view.lang, "fifo_lesson"), th.dim())));
        if fit::line_width(lines.last().unwrap_or(&Line::default())) > room {
            lines.pop();
        }
    }
    widgets::put_lines(f, below, &lines);
}

/// The writers in one row: `writer 1 ■ · writer 2 ■ · bash ✎`.
fn writers_row(writers: &[Opener], room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let items = writers
        .iter()
        .map(|w| match w {
            Opener::Ours(p) => {
                let party = p.party(false);
                Item::new(
                    widgets::party_rank(party),
                    vec![
                        Span::styled(format!("{} ", role_label(&p.role, view)), th.label()),
                        Span::styled(widgets::party_mark(party), th.party(party)),
                    ],
                )
            }
            Opener::Outside(h) => Item::text(1, format!("{} ({})", h.comm, t(view.lang, "outside")), th.warn()),
        })
        .collect();
    fit::row(items, " · ", room, view)
}

/// A low cell: writers, the node, the buffer, the reader, one row each.
fn low(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &FifoDetail, view: &View) {
    let th = view.theme;
    let room = area.width as usize;
    let (writers, readers) = sides(m, d);
    let tail = format!(" ─▶ {}", "write()");
    let row0 = writers_row(&writers, room.saturating_sub(fit::width(&tail)), view);
    let mut spans = row0.spans;
    spans.push(Span::styled(tail, th.label()));
    let mut lines = vec![Line::from(spans)];
    let mut node = vec![Span::styled("▼ ", th.label())];
    node.extend(node_full(d, room.saturating_sub(2), view).spans);
    lines.push(Line::from(node));
    lines.extend(widgets::gauge_block(&m.channel, area.width, view));
    if let Some(r) = readers.first() {
        let lead = "▼ read() ▶ ";
        let mut spans = vec![Span::styled(lead, th.label())];
        let name_w = fit::width(&name_of(r, view));
        spans.extend(party_line(r, name_w, room.saturating_sub(fit::width(lead)), false, d, view).spans);
        lines.push(Line::from(spans));
    }
    lines.push(widgets::integrity_row(&m.integrity, room, view));
    let left = (area.height as usize).saturating_sub(lines.len());
    lines.extend(widgets::note_rows(m, left, room, view));
    widgets::put_lines(f, area, &lines);
}

/// A tiny cell: the flow in one row, the node, the loudest part, and who
/// else opened the path.
fn tiny(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &FifoDetail, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let room = area.width as usize;
    let writers: Vec<&ProcessSnapshot> = m.processes.iter().skip(1).collect();
    let marks: String = writers.iter().map(|p| widgets::party_mark(p.party(false))).collect();
    let loudest = writers.iter().map(|p| p.party(false)).min_by_key(|p| widgets::party_rank(*p));
    let left = vec![
        Item::text(2, format!("{} ×{}", t(l, "writers"), writers.len()), th.label()),
        Item::text(0, marks, loudest.map_or(th.label(), |p| th.party(p))),
    ];
    let right = match m.processes.first() {
        Some(r) => {
            let party = r.party(false);
            vec![
                Item::text(0, widgets::party_mark(party), th.party(party)),
                Item::text(3, widgets::pid(r.pid).trim_start().to_string(), th.value()),
                Item::text(2, t(l, "reader"), th.label()),
            ]
        }
        None => Vec::new(),
    };
    let mut lines = vec![widgets::flow_line(left, &m.channel, right, room, view)];
    // The loudest writer speaks for the writers, then the reader.
    let mut parts: Vec<(&ProcessSnapshot, &str)> = Vec::new();
    if let Some(w) = writers.iter().min_by_key(|p| widgets::party_rank(p.party(false))) {
        parts.push((w, t(l, "writers")));
    }
    if let Some(r) = m.processes.first() {
        parts.push((r, t(l, "reader")));
    }
    lines.push(widgets::parts_row(&parts, room, view));
    lines.push(node_full(d, room, view));
    let outside: Vec<Item> = d
        .external()
        .map(|h| Item::text(0, format!("{} {} {}", h.comm, widgets::pid(h.pid).trim_start(), h.mode), th.warn()))
        .collect();
    if outside.is_empty() {
        lines.push(widgets::integrity_row(&m.integrity, room, view));
    } else {
        let mut items = vec![Item::text(0, format!("{}:", t(l, "outside")), th.warn())];
        items.extend(outside);
        lines.push(fit::row(items, " ", room, view));
    }
    widgets::put_lines(f, area, &lines);
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
