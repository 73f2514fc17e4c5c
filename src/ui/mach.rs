//! The Mach panel: tasks, the service port as a mailbox between its
//! senders and its one receiver, and the rights that join them, as the
//! textbook draws it, from the emulated kernel's own tables.
//!
//! ```text
//! ┌ 5  Mach message passing  ports, rights, mach_msg (emulated) ──────────┐
//! │            send 0x503 ╔ port 0x303 · qlimit 5 ═╗ receive 0x303        │
//! │■ client-1 ──────────▶ ║▇ ▇ ▇ ▇ ▇ ┊▒ ▒ ▒        ║───────────▶ □ server │
//! │■ client-2 ──────────▶ ║5/5 messages + 3 kept   ║              │       │
//! │                       ╚════════════════════════╝              │       │
//! │◀──────────── send-once ×8: each reply to its thread's reply port ┘     │
//! │■ client-1 mach_msg(RCV) — kept past qlimit, waiting for MSG_ACCEPTED ×2│
//! │□ server pacing itself                                                  │
//! │bootstrap: "edu.ipcscope.echo" → port of server (check_in)             │
//! └────────────────────────────────────────────────────────────────────────┘
//! ```
//! Three levels, chosen from the room the panel gets: one row (a cell of
//! four rows or fewer), the figure above (a grid cell), and the figure with
//! every task's name space, the messages in the queue and the Linux side
//! of our transport (`widgets::roomy`). Each task is marked by the call the
//! emulated kernel has it in (`mach_msg(SEND) — queue full`), not by the
//! socket it sleeps on. Focused, a second view under it shows every name
//! space, the bootstrap registry, the reply ports and the last headers.
//!
//! Every text is put whole or left out (`widgets::Canvas`, `fit`).

use super::widgets::Boxed;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::BorderType;
use ratatui::Frame;

use super::fit::{self, Item};
use super::measured;
use super::widgets::{self, count, Canvas};
use super::View;
use crate::i18n::{t, tf};
use crate::model::detail::emu::emu_party;
use crate::model::detail::mach::{EmuCall, MachDetail, MsgView, NameView, TaskView};
use crate::model::figures::Party;
use crate::model::snapshot::{Detail, MechanismSnapshot, ProcessSnapshot, Snapshot};
use crate::model::Kind;

/// Rows the focused view adds under the panel.
pub const EXTRA_HEIGHT: u16 = 13;

fn detail(m: &MechanismSnapshot) -> Option<&MachDetail> {
    match &m.detail {
        Detail::Mach(d) => Some(d),
        _ => None,
    }
}

/// How well an arrangement shows what matters, most important first
/// (compared in order).
type Score = [bool; 8];

fn hex(n: u32) -> String {
    format!("{n:#x}")
}

/// One task as the figure draws it: its process, the call the kernel has
/// it in, and its part.
struct Task<'a> {
    p: &'a ProcessSnapshot,
    call: Option<(&'a EmuCall, usize)>,
    party: Party,
}

impl<'a> Task<'a> {
    fn of(p: &'a ProcessSnapshot, d: &'a MachDetail) -> Task<'a> {
        let call = d.task_call(&p.role);
        Task { p, call, party: emu_party(p, call.map(|c| c.0), false) }
    }

    fn mark(&self, view: &View) -> Span<'static> {
        Span::styled(widgets::party_mark(self.party).to_string(), view.theme.party(self.party))
    }

    fn line(&self, room: usize, view: &View) -> Option<Line<'static>> {
        widgets::emu_party_line(&role_label(&self.p.role, view), self.p, self.call, false, room, view)
    }

    fn rank(&self) -> u8 {
        self.party.rank()
    }
}

/// What every level draws.
struct Facts<'a> {
    clients: Vec<Task<'a>>,
    server: Option<Task<'a>>,
    /// The service port's queue and its limit; messages past it apart.
    channel: &'a crate::model::snapshot::Channel,
}

impl<'a> Facts<'a> {
    fn of(m: &'a MechanismSnapshot, d: &'a MachDetail) -> Facts<'a> {
        Facts {
            clients: m.processes.iter().filter(|p| p.role_kind().is_client()).map(|p| Task::of(p, d)).collect(),
            server: m
                .processes
                .iter()
                .find(|p| p.role_kind() == crate::model::figures::Role::Server)
                .map(|p| Task::of(p, d)),
            channel: &m.channel,
        }
    }

    /// Every task's part, the loudest first.
    fn party_lines(&self, room: usize, view: &View) -> Vec<(u8, Line<'static>)> {
        let mut tasks: Vec<&Task> = self.clients.iter().chain(self.server.as_ref()).collect();
        tasks.sort_by_key(|t| t.rank());
        tasks.iter().filter_map(|t| Some((t.rank().min(1), t.line(room, view)?))).collect()
    }
}

/// The send right the clients hold to the service port (the same name in
/// each task here, as each looked it up), or the dead name left of it.
fn send_label(d: &MachDetail, view: &View) -> Vec<String> {
    let l = view.lang;
    let send = t(l, "mach_send");
    match &d.port {
        Some(p) => match p.send_rights.first() {
            Some(h) if p.send_rights.iter().all(|x| x.name == h.name) => {
                vec![format!("{send} {}", hex(h.name)), send.to_string()]
            }
            _ => vec![send.to_string()],
        },
        None => {
            let dead = d.tasks.iter().flat_map(|t| t.names.iter()).find(|n| n.dead());
            match dead {
                Some(n) => vec![format!("{} {}", t(l, "mach_dead_name"), hex(n.name)), t(l, "mach_dead_name").into()],
                None => vec![send.to_string()],
            }
        }
    }
}

fn receive_label(d: &MachDetail, view: &View) -> Vec<String> {
    let r = t(view.lang, "mach_receive");
    match &d.port {
        Some(p) if p.receiver_name != 0 => vec![format!("{r} {}", hex(p.receiver_name)), r.to_string()],
        _ => vec![r.to_string()],
    }
}

/// Send-once rights travelling in queued requests: how the replies find
/// their way back.
fn in_transit(d: &MachDetail) -> usize {
    d.reply_ports.iter().map(|r| r.in_transit).sum()
}

fn reply_forms(d: &MachDetail, view: &View) -> Vec<String> {
    let l = view.lang;
    let n = in_transit(d);
    let mut forms = Vec::new();
    if n > 0 {
        forms.push(tf(l, "mach_reply_line_n", &[("n", n.to_string())]));
    }
    forms.push(t(l, "mach_reply_line").to_string());
    forms.push(t(l, "mach_send_once").to_string());
    forms
}

fn bootstrap_forms(d: &MachDetail, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let Some(s) = d.bootstrap.first() else {
        return vec![Line::from(vec![
            Span::styled(format!("{}: ", t(l, "mach_bootstrap")), th.label()),
            Span::styled(t(l, "mach_none").to_string(), th.dim()),
        ])];
    };
    let how = if s.checked_in { "bootstrap_check_in" } else { "bootstrap_register" };
    let name = format!("\"{}\"", s.name);
    // Who looked it up: the tasks that hold a send right to its port.
    let holders: Vec<String> = d
        .port
        .as_ref()
        .filter(|p| p.id == s.port)
        .map(|p| p.send_rights.iter().map(|h| role_label(&h.task, view)).collect())
        .unwrap_or_default();
    let looked_up = (!holders.is_empty())
        .then(|| Span::styled(tf(l, "mach_bootstrap_looked_up", &[("tasks", holders.join(", "))]), th.dim()));
    let mut forms: Vec<Line<'static>> = looked_up
        .map(|up| {
            Line::from(vec![
                Span::styled(format!("{}: ", t(l, "mach_bootstrap")), th.label()),
                Span::styled(name.clone(), th.value()),
                Span::styled(
                    tf(l, "mach_bootstrap_of", &[("task", role_label(&s.task, view)), ("how", how.into())]),
                    th.label(),
                ),
                up,
            ])
        })
        .into_iter()
        .collect();
    forms.extend([
        Line::from(vec![
            Span::styled(format!("{}: ", t(l, "mach_bootstrap")), th.label()),
            Span::styled(name.clone(), th.value()),
            Span::styled(
                tf(l, "mach_bootstrap_of", &[("task", role_label(&s.task, view)), ("how", how.into())]),
                th.label(),
            ),
        ]),
        Line::from(vec![
            Span::styled(format!("{}: ", t(l, "mach_bootstrap")), th.label()),
            Span::styled(name.clone(), th.value()),
            Span::styled(tf(l, "mach_bootstrap_of_short", &[("task", role_label(&s.task, view))]), th.label()),
        ]),
        Line::from(vec![
            Span::styled(format!("{}: ", t(l, "mach_bootstrap")), th.label()),
            Span::styled(name, th.value()),
        ]),
    ]);
    forms
}

/// What happened to sends, as a row of counts.
fn count_items(d: &MachDetail, view: &View) -> Vec<Item> {
    let l = view.lang;
    let th = view.theme;
    let c = &d.counters;
    let pair = |p: u8, k: &'static str, v: String| {
        Item::new(p, vec![Span::styled(format!("{} ", t(l, k)), th.label()), Span::styled(v, th.value())])
    };
    vec![
        pair(0, "mach_mode", mode_label(&d.send_mode, view)),
        pair(1, "sent", count(c.sent)),
        pair(1, "received", count(c.received)),
        pair(2, "mach_timed_out", count(c.send_timed_out)),
        pair(2, "mach_at_once", count(c.returned_at_once)),
        pair(2, "mach_cached", count(c.cached)),
        pair(3, "mach_notified", count(c.notified)),
        pair(3, "mach_destroyed", count(c.destroyed)),
        pair(4, "mach_copied", widgets::bytes(c.bytes_inline)),
        pair(4, "mach_mapped", widgets::bytes(c.bytes_ool)),
    ]
}

/// `mach.send_mode` in the reader's words: `block`, `timeout:10`,
/// `immediate`, `notify`.
fn mode_label(mode: &str, view: &View) -> String {
    let l = view.lang;
    match mode.split_once(':') {
        Some(("timeout", ms)) => tf(l, "mach_mode_timeout", &[("ms", ms.to_string())]),
        _ => match mode {
            "block" => t(l, "mach_mode_block").to_string(),
            "immediate" => t(l, "mach_mode_immediate").to_string(),
            "notify" => t(l, "mach_mode_notify").to_string(),
            other => other.to_string(),
        },
    }
}

/// `s` padded with spaces to `w` columns (wide letters count two).
fn pad(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(fit::width(s))))
}

/// What stands in the mailbox when there is none to draw.
fn no_port_key(d: &MachDetail) -> &'static str {
    if d.kernel_up {
        "mach_no_service"
    } else {
        "mach_kernel_down"
    }
}

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MachDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let (title, short) = (t(l, "mach_title"), t(l, "mach_title_short"));
    // The kernel's personality in the title first (`· XNU rules`).
    let named = super::mach_book::title(title, d, l);
    let named_short = super::mach_book::title(short, d, l);
    let (named, named_short) = (named.as_deref().unwrap_or(title), named_short.as_deref().unwrap_or(short));
    let forms = [
        (named, t(l, "mach_sub")),
        (named, t(l, "mach_sub_tiny")),
        (named, ""),
        (named_short, ""),
        (title, t(l, "mach_sub")),
        (title, t(l, "mach_sub_short")),
        (title, t(l, "mach_sub_tiny")),
        (title, ""),
        (short, t(l, "mach_sub_tiny")),
        (short, ""),
    ];
    let inner = widgets::panel_fit(f, area, n, &forms, selected, view);
    let facts = Facts::of(m, d);
    if inner.height <= 4 || inner.width < 30 {
        tiny(f, inner, m, d, &facts, view);
    } else if widgets::roomy(inner) {
        full(f, inner, m, d, &facts, view);
    } else {
        compact(f, inner, m, d, &facts, view);
    }
}

/// The flow in one row: `clients ■■ ─send▶ [▇▇▇▇▇┊▒▒▒ 5/5 + 3 kept]
/// ─receive▶ □ server`, the richest form that leaves the queue its room.
fn flow_row(d: &MachDetail, facts: &Facts, width: u16, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let w = width as usize;
    let marks: Vec<Span<'static>> = facts.clients.iter().map(|c| c.mark(view)).collect();
    let mut worded = vec![Span::styled(format!("{} ", t(l, "mach_clients_short")), th.label())];
    worded.extend(marks.iter().cloned());
    let lefts = [(true, worded), (false, marks)];
    let server_mark = facts.server.as_ref().map(|s| s.mark(view));
    let right = |named: bool| -> Vec<Span<'static>> {
        match &server_mark {
            Some(m) if named => vec![m.clone(), Span::styled(format!(" {}", t(l, "mach_server_short")), th.label())],
            Some(m) => vec![m.clone()],
            None => Vec::new(),
        }
    };
    let (send, recv) = (send_label(d, view), receive_label(d, view));
    let arrow = |label: Option<&String>| match label {
        Some(s) => Span::styled(format!(" ─{s}▶ "), th.label()),
        None => Span::styled(" ─▶ ".to_string(), th.label()),
    };
    let labels = [(send.first(), recv.first()), (send.last(), recv.last()), (None, None)];
    let counts = widgets::queue_count_forms(facts.channel, t(l, "gauge_kept"), view);
    let past = facts.channel.past() > 0;
    // Every arrangement that fits, scored by what matters most: the count
    // whole (with what is kept past the limit in words), the blocks one
    // per message, the receiver's name, the senders' word, the rights'
    // words, the unit.
    let mut best: Option<(Score, Line<'static>)> = None;
    for (k, count) in counts.iter().enumerate() {
        for (worded, left) in &lefts {
            for (li, (s, r)) in labels.iter().enumerate() {
                for named in [true, false] {
                    let right = right(named);
                    let fixed = fit::line_width(&Line::from(left.clone()))
                        + fit::line_width(&Line::from(vec![arrow(*s), arrow(*r)]))
                        + fit::line_width(&Line::from(right.clone()))
                        + 2;
                    let cw = fit::line_width(count);
                    let Some(room) = w.checked_sub(fixed + cw + 1) else { continue };
                    let blocks = widgets::queue_blocks(facts.channel, room, view);
                    let is_blocks = blocks.is_some();
                    let bar = match (&d.port, blocks) {
                        (None, _) => Line::from(Span::styled(t(l, no_port_key(d)).to_string(), th.bad())),
                        (_, Some(b)) => b,
                        (_, None) if room >= 4 => widgets::scaled_bar(facts.channel, room as u16, view),
                        _ => continue,
                    };
                    let kept_words = !past || k < 2;
                    let score = [kept_words, is_blocks, named, *worded, li < 2, li == 0, k == 0, false];
                    if best.as_ref().is_some_and(|(b, _)| *b >= score) {
                        continue;
                    }
                    let mut spans = left.clone();
                    spans.push(arrow(*s));
                    spans.push(Span::styled("[", th.label()));
                    spans.extend(bar.spans);
                    if d.port.is_some() {
                        spans.push(Span::raw(" "));
                        spans.extend(count.spans.clone());
                    }
                    spans.push(Span::styled("]", th.label()));
                    spans.push(arrow(*r));
                    spans.extend(right);
                    let line = Line::from(spans);
                    if fit::line_width(&line) <= w {
                        best = Some((score, line));
                    }
                }
            }
        }
    }
    best.map(|(_, l)| l).unwrap_or_default()
}

/// Four rows or fewer: the flow in one row, then each task's part, the
/// loudest first.
fn tiny(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MachDetail, facts: &Facts, view: &View) {
    let w = area.width as usize;
    let mut cv = Canvas::new(f, area);
    let mut y = 0;
    if !d.kernel_up && d.port.is_none() {
        cv.text(0, 0, t(view.lang, "mach_kernel_down"), view.theme.bad());
        y = 1;
    }
    if y < cv.height() {
        cv.put(0, y, &flow_row(d, facts, area.width, view));
        y += 1;
    }
    let mut lines = facts.party_lines(w, view);
    lines.push((3, fit::row(widgets::integrity_items(&m.integrity, view), "  ", w, view)));
    for line in widgets::pick_lines(lines, cv.height().saturating_sub(y) as usize, w, view) {
        cv.put(0, y, &line);
        y += 1;
    }
}

/// Where the parts of the figure go, left to right, and how they read.
struct Columns {
    senders: u16,
    send_arrow: u16,
    mailbox: u16,
    recv_arrow: u16,
    /// One sender per row; else one row of marks, after `clients` when
    /// `clients_word`.
    each: bool,
    clients_word: bool,
    send_label: String,
    recv_label: String,
    receiver_named: bool,
}

/// The mailbox's title, longest first: its name and limit, its limit.
fn mailbox_titles(d: &MachDetail, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    match &d.port {
        Some(p) => {
            let port = format!("{} {}", t(l, "mach_port"), hex(p.receiver_name));
            let q = format!("{} {}", t(l, "mach_qlimit"), p.qlimit);
            let q_short = format!("{} {}", t(l, "mach_qlimit_short"), p.qlimit);
            vec![
                Line::from(vec![Span::styled(format!("{port} · "), th.title()), Span::styled(q, th.value())]),
                Line::from(vec![Span::styled(format!("{port} · "), th.title()), Span::styled(q_short, th.value())]),
                Line::from(Span::styled(port, th.title())),
            ]
        }
        None => vec![Line::from(Span::styled(d.service.clone(), th.title()))],
    }
}

/// The richest arrangement: the mailbox first (its title, then its
/// blocks two cells apart, then one cell each), then the arrows' labels
/// with the rights' names, each sender on its row, the receiver's name.
fn columns(d: &MachDetail, facts: &Facts, width: u16, tall: bool, view: &View) -> Columns {
    let rows_for_senders = if tall { view.theme.gauge_rows() as usize + 1 } else { 1 };
    let l = view.lang;
    let clients_w = fit::width(t(l, "mach_clients_short")) as u16 + 1;
    let marks_w = facts.clients.len() as u16;
    let each_w = facts.clients.iter().map(|c| 2 + fit::width(&role_label(&c.p.role, view))).max().unwrap_or(0) as u16;
    let send = send_label(d, view);
    let recv = receive_label(d, view);
    let server_w = 3 + fit::width(t(l, "mach_server_short")) as u16;
    let each_fits = facts.clients.len() <= rows_for_senders;
    let titles_w: Vec<u16> = mailbox_titles(d, view).iter().map(|t| fit::line_width(t) as u16 + 4).collect();
    let title_w = titles_w.first().copied().unwrap_or(4);
    // The count: with what is kept past the limit in words, else bare.
    let counts: Vec<u16> = widgets::queue_count_forms(facts.channel, t(l, "gauge_kept"), view)
        .iter()
        .map(|c| fit::line_width(c) as u16)
        .collect();
    let worded = if facts.channel.past() > 0 { counts.get(1) } else { counts.last() }.copied().unwrap_or(3);
    let bare = counts.last().copied().unwrap_or(3);
    let blocks = |room: usize| widgets::queue_blocks(facts.channel, room, view).map(|b| fit::line_width(&b) as u16);
    let spaced = blocks(4096).unwrap_or(8);
    let tight = blocks(spaced as usize - 1).unwrap_or(spaced);
    // Blocks and count under each other (tall) or side by side.
    let inside = |blocks: u16, count: u16| if tall { blocks.max(count) } else { blocks + 1 + count } + 2;
    let needs = [
        title_w.max(inside(spaced, worded)),
        inside(spaced, worded),
        inside(tight, worded),
        inside(tight, bare),
        inside(4, bare),
    ];
    let arrow_w = |s: &str| (fit::width(s) as u16 + 2).max(4);
    // Every arrangement that fits, scored by what a class needs most: the
    // queue's blocks, the rights' words, each sender by name, the blocks
    // spaced, the receiver's name, the rights' names, the mailbox's title.
    let mut best: Option<(Score, Columns)> = None;
    for (k, need) in needs.into_iter().enumerate() {
        for label in [0usize, 1, 2] {
            for sender in [0u8, 1, 2] {
                for named in [true, false] {
                    if sender == 0 && !each_fits {
                        continue;
                    }
                    let (sl, rl) = match label {
                        0 => (send[0].clone(), recv[0].clone()),
                        1 => (send.last().cloned().unwrap_or_default(), recv.last().cloned().unwrap_or_default()),
                        _ => (String::new(), String::new()),
                    };
                    let senders = match sender {
                        0 => each_w,
                        1 => clients_w + marks_w,
                        _ => marks_w,
                    } + 1;
                    // The labels ride on the row above the arrows, over the
                    // senders' and the receiver's columns if need be.
                    let receiver = if named { server_w } else { 2 };
                    let sa = (arrow_w(&sl) + 1).saturating_sub(senders).max(3);
                    let ra = (arrow_w(&rl) - 1).saturating_sub(receiver).max(3);
                    let used = senders + sa + ra + receiver;
                    if width < used + need {
                        continue;
                    }
                    let score = [k < 3, label < 2, sender == 0, k < 2, named, label == 0, k == 0, sender == 1];
                    if best.as_ref().is_some_and(|(b, _)| *b >= score) {
                        continue;
                    }
                    // The mailbox takes what it needs and a third of the
                    // rest; the arrows share the others.
                    let spare = width - used - need;
                    let mut mailbox = need + spare / 3;
                    // Room for its title (name and limit, else the name) first.
                    if let Some(tw) = titles_w.iter().copied().find(|&tw| tw <= width - used) {
                        mailbox = mailbox.max(tw);
                    }
                    let extra = width - used - mailbox;
                    best = Some((
                        score,
                        Columns {
                            senders,
                            send_arrow: sa + extra / 2,
                            mailbox,
                            recv_arrow: ra + extra - extra / 2,
                            each: sender == 0,
                            clients_word: sender == 1,
                            send_label: sl,
                            recv_label: rl,
                            receiver_named: named,
                        },
                    ));
                }
            }
        }
    }
    if let Some((_, c)) = best {
        return c;
    }
    // The narrowest: marks only, no labels.
    let senders = marks_w + 1;
    Columns {
        senders,
        send_arrow: 3,
        mailbox: width.saturating_sub(senders + 3 + 3 + 2),
        recv_arrow: 3,
        each: false,
        clients_word: false,
        send_label: String::new(),
        recv_label: String::new(),
        receiver_named: false,
    }
}

/// The senders, their arrows into the mailbox, the mailbox with its
/// blocks and count, the receive arrow and the receiver; the reply path
/// under it when `reply` allows. `tall`: the blocks on rows of their own
/// (thick on a projector) and the count under them; else blocks and
/// count share one row. Returns the rows used.
fn figure(cv: &mut Canvas, d: &MachDetail, facts: &Facts, tall: bool, reply: bool, view: &View) -> u16 {
    let th = view.theme;
    let l = view.lang;
    let g = if tall { th.gauge_rows() } else { 1 };
    // Rows: 0 top border and labels, 1..=g blocks, then the count (tall),
    // then the bottom border.
    let inner_rows = if tall { g + 1 } else { 1 };
    let c = columns(d, facts, cv.width(), tall, view);
    let x_arrow = c.senders;
    let x_box = x_arrow + c.send_arrow;
    let x_recv = x_box + c.mailbox;
    let x_server = x_recv + c.recv_arrow;
    // Senders and their arrows.
    if c.each {
        for (i, task) in facts.clients.iter().enumerate() {
            let y = 1 + i as u16;
            let line = Line::from(vec![
                task.mark(view),
                Span::styled(format!(" {}", role_label(&task.p.role, view)), th.label()),
            ]);
            cv.put(0, y, &line);
            cv.arrow(x_arrow, y, c.send_arrow - 1, true, th.label());
        }
    } else {
        let mut spans = Vec::new();
        if c.clients_word {
            spans.push(Span::styled(format!("{} ", t(l, "mach_clients_short")), th.label()));
        }
        spans.extend(facts.clients.iter().map(|t| t.mark(view)));
        cv.put(0, 1, &Line::from(spans));
        cv.arrow(x_arrow, 1, c.send_arrow - 1, true, th.label());
    }
    let lw = fit::width(&c.send_label) as u16;
    cv.text(x_box.saturating_sub(lw + 1), 0, &c.send_label, th.label());
    // The mailbox.
    let boxr = Rect { x: x_box, y: 0, width: c.mailbox, height: inner_rows + 2 };
    let titles = mailbox_titles(d, view);
    let title_room = c.mailbox.saturating_sub(4) as usize;
    let title_has_q = titles.first().is_some_and(|t| fit::line_width(t) <= title_room);
    let inside = cv.frame(boxr, BorderType::Double, th.border(), titles);
    match &d.port {
        Some(p) => {
            let room = inside.width as usize;
            if tall {
                let (bar, count) = widgets::queue_figure(facts.channel, t(l, "gauge_kept"), inside.width, view);
                for k in 0..g {
                    cv.put(inside.x, inside.y + k, &bar);
                }
                cv.put(inside.x, inside.y + g, &count);
            } else {
                // Blocks and count on one row: the count the longest form
                // that leaves the blocks their room.
                // Blocks one per message before a scaled bar.
                let forms = widgets::queue_count_forms(facts.channel, t(l, "gauge_kept"), view);
                let tries = [true, false].into_iter().flat_map(|blocks| {
                    forms.iter().cloned().chain([Line::default()]).map(move |count| (blocks, count))
                });
                for (blocks, count) in tries {
                    let cw = fit::line_width(&count);
                    let bar_room = room.saturating_sub(if cw > 0 { cw + 1 } else { 0 });
                    let bar = if blocks {
                        widgets::queue_blocks(facts.channel, bar_room, view)
                    } else {
                        (bar_room >= 4).then(|| widgets::scaled_bar(facts.channel, bar_room as u16, view))
                    };
                    if let Some(bar) = bar {
                        let mut spans = bar.spans;
                        if cw > 0 {
                            spans.push(Span::raw(" "));
                            spans.extend(count.spans);
                        }
                        cv.put(inside.x, inside.y, &Line::from(spans));
                        break;
                    }
                }
            }
            // The limit on the bottom border when the title has no room.
            let q = format!(" {} {} ", t(l, "mach_qlimit"), p.qlimit);
            if !title_has_q && fit::width(&q) as u16 + 2 <= c.mailbox {
                cv.text(x_box + c.mailbox - fit::width(&q) as u16 - 1, inner_rows + 1, &q, th.value());
            }
        }
        None => {
            let msg = t(l, no_port_key(d));
            if !cv.text(inside.x, inside.y, msg, th.bad()) {
                cv.text(inside.x, inside.y, "✕", th.bad());
            }
        }
    }
    // The receive right and its holder.
    cv.text(x_recv + 1, 0, &c.recv_label, th.label());
    cv.arrow(x_recv + 1, 1, c.recv_arrow.saturating_sub(2), true, th.label());
    if let Some(s) = &facts.server {
        let mut spans = vec![s.mark(view)];
        if c.receiver_named {
            spans.push(Span::styled(format!(" {}", t(l, "mach_server_short")), th.label()));
        }
        cv.put(x_server, 1, &Line::from(spans));
    }
    let mut used = inner_rows + 2;
    // The replies: each request carries a send-once right to its thread's
    // reply port; the server's answer uses it up.
    if reply && cv.height() > used {
        let y = used;
        let x_end = x_server;
        cv.column(x_end, 2, y - 2, "│", th.dim());
        cv.run(x_end, y, 1, "┘", th.dim());
        cv.arrow(1, y, x_end.saturating_sub(1), false, th.dim());
        let room = x_end.saturating_sub(6);
        let forms: Vec<Line<'static>> =
            reply_forms(d, view).into_iter().map(|s| Line::from(Span::styled(format!(" {s} "), th.label()))).collect();
        if let Some(line) = fit::first_fit_line(forms, room as usize) {
            let lw = fit::line_width(&line) as u16;
            cv.put(1 + (x_end.saturating_sub(1) - lw) / 2, y, &line);
        }
        used += 1;
    }
    used
}

/// A grid cell: the figure, then every task's part in words, the
/// bootstrap server, the counts and the notes, as many as fit. What the
/// lesson step is about (`View::lesson_shows`) goes first; without a
/// lesson, what is happening now does (the headers of a full queue, the
/// bytes mapped once bodies go out of line).
fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MachDetail, facts: &Facts, view: &View) {
    let w = area.width as usize;
    let g = view.theme.gauge_rows();
    let mut cv = Canvas::new(f, area);
    let asked = asked_rows(m, d, w, false, view);
    // The blocks on rows of their own when three rows of words remain
    // besides what the lesson step asks for, the reply path when two more do.
    let tall = cv.height() >= g + 3 + (asked.len() as u16).max(3);
    let reply = tall && cv.height() >= g + 4 + 5 + asked.len() as u16;
    let used = figure(&mut cv, d, facts, tall, reply, view);
    let rows = cv.height().saturating_sub(used) as usize;
    let mut lines: Vec<(u8, Line<'static>)> = asked.into_iter().map(|l| (0, l)).collect();
    let quiet = !lines.is_empty();
    // Every task's part: the loud ones (blocked, kept) before the asked
    // rows' neighbours, the quiet ones (pacing itself) last.
    for (rank, line) in facts.party_lines(w, view) {
        lines.push((if rank == 0 { 1 } else { 3 }, line));
    }
    if !quiet {
        lines.extend(unasked_rows(d, w, view).into_iter().map(|l| (1, l)));
    }
    let busy = d.port.as_ref().is_some_and(|p| p.queue_len > 0);
    if !quiet && busy {
        lines.extend(header_lines(d, w, view).into_iter().map(|l| (2, l)));
    }
    if !quiet && d.counters.bytes_ool > 0 {
        if let Some(l) = ool_line(d, w, view) {
            lines.push((2, l));
        }
    }
    if let Some(b) = fit::first_fit_line(bootstrap_forms(d, view), w) {
        lines.push((if quiet { 4 } else { 2 }, b));
    }
    lines.push((4, fit::row(count_items(d, view), "  ", w, view)));
    lines.push((4, fit::row(widgets::integrity_items(&m.integrity, view), "  ", w, view)));
    let out = if quiet { most_important(lines, rows, w) } else { widgets::pick_lines(lines, rows, w, view) };
    let left = rows.saturating_sub(out.len());
    let mut y = used;
    for line in out {
        cv.put(0, y, &line);
        y += 1;
    }
    for line in widgets::note_prose(&m.notes, left, w, view) {
        cv.put(0, y, &line);
        y += 1;
    }
}

/// The `rows` most important lines that fit `width`, in their order (no
/// `…N more`: a lesson step said what matters).
fn most_important(lines: Vec<(u8, Line<'static>)>, rows: usize, width: usize) -> Vec<Line<'static>> {
    let fits: Vec<(u8, Line<'static>)> = lines.into_iter().filter(|(_, l)| fit::line_width(l) <= width).collect();
    let mut order: Vec<usize> = (0..fits.len()).collect();
    order.sort_by_key(|&i| (fits[i].0, i));
    let keep: Vec<usize> = order.into_iter().take(rows).collect();
    fits.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, (_, l))| l).collect()
}

/// The rows a lesson step asks the panel for (`show = [...]` in the
/// scenario), in the order named here.
/// `full`: the roomy figure, which draws the bootstrap registry and the
/// reply path itself.
fn asked_rows(m: &MechanismSnapshot, d: &MachDetail, w: usize, full: bool, view: &View) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if view.lesson_shows("names") {
        out.extend(names_line(d, w, view));
    }
    if view.lesson_shows("bootstrap") {
        if !full {
            out.extend(fit::first_fit_line(bootstrap_forms(d, view), w));
        }
        out.extend(fit::first_fit_line(lookup_forms(view), w));
    }
    if view.lesson_shows("calls") {
        out.extend(calls_line(m, d, w, view));
    }
    if view.lesson_shows("reply") && !full {
        let forms: Vec<Line<'static>> = reply_forms(d, view)
            .into_iter()
            .map(|s| Line::from(vec![Span::styled("◀─ ", view.theme.dim()), Span::styled(s, view.theme.label())]))
            .collect();
        out.extend(fit::first_fit_line(forms, w));
    }
    if view.lesson_shows("headers") {
        out.extend(header_lines(d, w, view));
    }
    if view.lesson_shows("refused") {
        out.extend(refused_lines(d, w, view));
    }
    if view.lesson_shows("kobject") {
        out.extend(kobject_lines(d, w, view));
    }
    if view.lesson_shows("talk") {
        out.extend(talk_line(d, w, view));
    }
    if view.lesson_shows("order") {
        out.push(fit::row(widgets::integrity_items(&m.integrity, view), "  ", w, view));
    }
    if view.lesson_shows("ool") {
        out.extend(ool_line(d, w, view));
    }
    out
}

/// Without a lesson step asking: what the knobs `mach.intruder`,
/// `mach.task_info` and `mach.thread_talk` make happen, once it has.
fn unasked_rows(d: &MachDetail, w: usize, view: &View) -> Vec<Line<'static>> {
    let mut out = refused_lines(d, w, view);
    out.extend(kobject_lines(d, w, view));
    if d.counters.within_task > 0 {
        out.extend(talk_line(d, w, view));
    }
    out
}

/// A task's name in the reader's language: `client-1` / `클라이언트-1`.
fn role_label(role: &str, view: &View) -> String {
    role_name(role, view.lang)
}

/// Who sent a message: a task, or the kernel (no audit pid).
fn sender_label(m: &MsgView, view: &View) -> String {
    if m.sender_pid == 0 {
        t(view.lang, "mach_kernel").to_string()
    } else {
        role_label(&m.sender, view)
    }
}

fn role_name(role: &str, lang: crate::i18n::Lang) -> String {
    use crate::model::figures::Role;
    match Role::parse(role) {
        Role::Server => t(lang, "mach_server_short").to_string(),
        Role::Client(n) => tf(lang, "mach_client_n", &[("n", n.to_string())]),
        _ => role.to_string(),
    }
}

/// What `bootstrap_look_up` is here and on a Mac.
fn lookup_forms(view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    ["mach_lookup_is_call", "mach_lookup_is_call_short"]
        .into_iter()
        .map(|k| {
            Line::from(vec![
                Span::styled("bootstrap_look_up", th.value()),
                Span::styled(format!(" {}", t(view.lang, k)), th.label()),
            ])
        })
        .collect()
}

/// The calls the tasks make, counted from their own counters: a client's
/// one `mach_msg(SEND|RCV)` per request, the server's receive and reply.
fn calls_line(m: &MechanismSnapshot, _d: &MachDetail, w: usize, view: &View) -> Option<Line<'static>> {
    let th = view.theme;
    let clients: Vec<&ProcessSnapshot> = m.processes.iter().filter(|p| p.role_kind().is_client()).collect();
    let server = m.processes.iter().find(|p| p.role_kind() == crate::model::figures::Role::Server);
    let sent: u64 = clients.iter().map(|p| p.sent).sum();
    let names: Vec<String> = clients.iter().map(|p| role_label(&p.role, view)).collect();
    let mut forms = Vec::new();
    for (named, worded) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut spans = Vec::new();
        if worded {
            spans.push(Span::styled(format!("{}: ", t(view.lang, "mach_calls")), th.label()));
        }
        if named {
            spans.push(Span::styled(format!("{} ", names.join(", ")), th.label()));
        }
        spans.push(Span::styled("mach_msg(SEND|RCV)", th.value()));
        spans.push(Span::styled(format!(" ×{}", count(sent)), th.value()));
        if let Some(s) = server {
            spans.push(Span::styled(" · ", th.dim()));
            if named {
                spans.push(Span::styled(format!("{} ", role_label(&s.role, view)), th.label()));
            }
            spans.push(Span::styled("mach_msg(RCV)", th.value()));
            spans.push(Span::styled(format!(" ×{}", count(s.received)), th.value()));
        }
        forms.push(Line::from(spans));
    }
    fit::first_fit_line(forms, w)
}

/// The header of the newest message seen: its size, where it goes (the
/// sender's name for the service port), its reply port made with
/// `MACH_MSG_TYPE_MAKE_SEND_ONCE`, and its source (the audit token's pid).
fn header_lines(d: &MachDetail, w: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let Some(h) = d.port.as_ref().and_then(|p| p.queue.iter().rev().find(|m| !m.cached)).or(d.headers.last()) else {
        return Vec::new();
    };
    let dest = d.port.as_ref().and_then(|p| p.send_rights.iter().find(|r| r.task == h.sender)).map(|r| r.name);
    let reply = d.reply_ports.iter().find(|r| r.port == h.reply_port && h.reply_port != 0);
    let dot = || Span::styled(" · ", th.dim());
    let head = Span::styled(format!("{}: ", t(l, "mach_header")), th.title());
    let size = vec![Span::styled("msgh_size ", th.label()), Span::styled(h.msgh_size.to_string(), th.value())];
    let ool = (h.ool_bytes > 0).then(|| Span::styled(format!(" +{} OOL", widgets::bytes(h.ool_bytes)), th.value()));
    let remote = |worded: bool| -> Vec<Span<'static>> {
        let Some(n) = dest else { return Vec::new() };
        let mut v = vec![dot(), Span::styled("msgh_remote_port ", th.label()), Span::styled(hex(n), th.value())];
        if worded {
            v.push(Span::styled(format!(" ({})", t(l, "mach_dest")), th.dim()));
        }
        v
    };
    let id = vec![dot(), Span::styled("msgh_id ", th.label()), Span::styled(h.msgh_id.to_string(), th.value())];
    let mut firsts = Vec::new();
    for (worded, with_id, with_head) in
        [(true, true, true), (true, false, true), (false, true, true), (false, false, true), (false, false, false)]
    {
        let mut spans = if with_head { vec![head.clone()] } else { Vec::new() };
        spans.extend(size.clone());
        spans.extend(ool.clone());
        spans.extend(remote(worded));
        if with_id {
            spans.extend(id.clone());
        }
        firsts.push(Line::from(spans));
    }
    let made = if h.reply == "SEND_ONCE" { "MAKE_SEND_ONCE".to_string() } else { h.reply.clone() };
    let local = |worded: bool| -> Vec<Span<'static>> {
        if h.reply.is_empty() {
            return Vec::new();
        }
        let mut v = vec![Span::styled("msgh_local_port ", th.label())];
        if let Some(r) = reply {
            v.push(Span::styled(format!("{} ", hex(r.name)), th.value()));
        }
        v.push(Span::styled(made.clone(), th.value()));
        if worded {
            v.push(Span::styled(format!(" ({})", t(l, "mach_return_address")), th.dim()));
        }
        v.push(dot());
        v
    };
    let source = |pid: bool| -> Vec<Span<'static>> {
        let mut v = vec![
            Span::styled(format!("{} ", t(l, "mach_source")), th.label()),
            Span::styled(sender_label(h, view), th.value()),
        ];
        if pid {
            v.push(Span::styled(format!(" ({} {})", t(l, "mach_audit_pid"), h.sender_pid), th.dim()));
        }
        v
    };
    let mut seconds = Vec::new();
    for (worded, pid) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut spans = local(worded);
        spans.extend(source(pid));
        seconds.push(Line::from(spans));
    }
    fit::first_fit_line(firsts, w).into_iter().chain(fit::first_fit_line(seconds, w)).collect()
}

/// Receives the kernel refused (`MACH_RCV_INVALID_NAME`): who tried on
/// which name and what that name holds, then who holds the receive right.
fn refused_lines(d: &MachDetail, w: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let mut out = Vec::new();
    for task in &d.tasks {
        for &(name, n) in &task.rcv_refused {
            let holds =
                task.names.iter().find(|x| x.name == name).map(|x| x.rights.replace('+', " ")).unwrap_or_default();
            let mut forms = Vec::new();
            for (named, held) in [(true, true), (true, false), (false, true), (false, false)] {
                let mut spans = Vec::new();
                if named {
                    spans.push(Span::styled(format!("{}: ", role_label(&task.name, view)), th.label()));
                }
                spans.push(Span::styled(format!("mach_msg(RCV, {}", hex(name)), th.value()));
                if held && !holds.is_empty() {
                    spans.push(Span::styled(format!(" = {holds}"), th.dim()));
                }
                spans.push(Span::styled(") → ", th.value()));
                spans.push(Span::styled("MACH_RCV_INVALID_NAME", th.bad()));
                spans.push(Span::styled(format!(" ×{}", count(n)), th.value()));
                forms.push(Line::from(spans));
            }
            out.extend(fit::first_fit_line(forms, w));
        }
    }
    if !out.is_empty() {
        if let Some(p) = d.port.as_ref().filter(|p| p.receiver_name != 0) {
            let forms = ["mach_only_receiver", "mach_only_receiver_short"]
                .into_iter()
                .map(|k| {
                    Line::from(Span::styled(
                        tf(l, k, &[("task", role_label(&p.receiver, view)), ("name", hex(p.receiver_name))]),
                        th.label(),
                    ))
                })
                .collect();
            out.extend(fit::first_fit_line(forms, w));
        }
    }
    out
}

/// Ports that stand for kernel objects: a task's own port, which the
/// kernel receives on, and the requests to it the kernel answered.
fn kobject_lines(d: &MachDetail, w: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let mut out = Vec::new();
    for task in d.tasks.iter().filter(|t| t.kobject_answers > 0) {
        let mut forms = Vec::new();
        for (long, named) in [(true, true), (false, true), (true, false), (false, false)] {
            let mut spans = Vec::new();
            if named {
                spans.push(Span::styled(format!("{}: ", role_label(&task.name, view)), th.title()));
            }
            spans.push(Span::styled(format!("mach_task_self() {} ", hex(task.task_self)), th.value()));
            let key = if long { "mach_kobject_task" } else { "mach_kobject_task_short" };
            spans.push(Span::styled(t(l, key).to_string(), th.label()));
            spans.push(Span::styled(" · task_info ", th.value()));
            spans.push(Span::styled(format!("×{} ", count(task.kobject_answers)), th.value()));
            spans.push(Span::styled(t(l, "mach_kobject_answered").to_string(), th.label()));
            forms.push(Line::from(spans));
        }
        out.extend(fit::first_fit_line(forms, w));
    }
    out
}

/// A task's threads talking through their own ports: the two reply
/// ports of the task with two threads, and the messages the kernel
/// delivered from a task to itself.
fn talk_line(d: &MachDetail, w: usize, view: &View) -> Option<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let n = d.counters.within_task;
    let task = d.tasks.iter().find(|t| d.reply_ports.iter().filter(|r| r.task == t.name).count() >= 2)?;
    let ports: Vec<&crate::model::detail::mach::ReplyPortView> =
        d.reply_ports.iter().filter(|r| r.task == task.name).take(2).collect();
    let end = |r: &crate::model::detail::mach::ReplyPortView| {
        vec![
            Span::styled(format!("{} {} ", t(l, "mach_thread"), r.thread), th.label()),
            Span::styled(hex(r.name), th.value()),
        ]
    };
    let mut forms = Vec::new();
    for (named, worded) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut spans = Vec::new();
        if named {
            spans.push(Span::styled(format!("{}: ", role_label(&task.name, view)), th.title()));
        }
        spans.extend(end(ports[0]));
        spans.push(Span::styled(" ⇄ ", th.value()));
        spans.extend(end(ports[1]));
        spans.push(Span::styled(format!(" · ×{}", count(n)), th.value()));
        if worded {
            spans.push(Span::styled(format!(" {}", t(l, "mach_within_task")), th.dim()));
        }
        forms.push(Line::from(spans));
    }
    fit::first_fit_line(forms, w)
}

/// Bytes the kernel copied beside bytes it mapped out of line.
fn ool_line(d: &MachDetail, w: usize, view: &View) -> Option<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let c = &d.counters;
    let pair = |p: u8, k: &'static str, v: String| {
        Item::new(p, vec![Span::styled(format!("{} ", t(l, k)), th.label()), Span::styled(v, th.value())])
    };
    let items = vec![
        pair(0, "mach_copied", widgets::bytes(c.bytes_inline)),
        pair(0, "mach_mapped", widgets::bytes(c.bytes_ool)),
        pair(1, "mach_ool_copied", widgets::bytes(c.bytes_ool_copied)),
    ];
    Some(fit::row(items, "  ", w, view)).filter(|l| fit::line_width(l) <= w)
}

/// One client's name space in a row: its task-self name and each
/// thread's reply port (threads share the space, not their ports).
fn names_line(d: &MachDetail, w: usize, view: &View) -> Option<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    // The client with the most threads tells the most.
    let task = d
        .tasks
        .iter()
        .filter(|t| t.name.starts_with("client"))
        .max_by_key(|t| (d.reply_ports.iter().filter(|r| r.task == t.name).count(), std::cmp::Reverse(t.id)))?;
    let replies: Vec<&crate::model::detail::mach::ReplyPortView> =
        d.reply_ports.iter().filter(|r| r.task == task.name).collect();
    let mut forms = Vec::new();
    for (worded, counted) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut spans = vec![
            Span::styled(format!("{}: ", role_label(&task.name, view)), th.title()),
            Span::styled(format!("{} ", hex(task.task_self)), th.value()),
            Span::styled(t(l, "mach_w_self").to_string(), th.label()),
        ];
        for (k, r) in replies.iter().enumerate() {
            spans.push(Span::styled(if k == 0 { " · " } else { ", " }, th.dim()));
            spans.push(Span::styled(format!("{} {} ", t(l, "mach_thread"), r.thread), th.label()));
            spans.push(Span::styled(hex(r.name), th.value()));
        }
        if worded && !replies.is_empty() {
            spans.push(Span::styled(format!(" ({})", t(l, "mach_reply_ports")), th.dim()));
        }
        // The service's send right, or the dead name left of it.
        for n in task.names.iter().filter(|n| n.dead() || n.what == "service") {
            spans.push(Span::styled(" · ", th.dim()));
            spans.push(Span::styled(format!("{} ", hex(n.name)), th.value()));
            let (words, style) = if n.dead() {
                (t(l, "mach_dead_name").to_string(), th.bad())
            } else {
                (t(l, "mach_send").to_string(), th.label())
            };
            spans.push(Span::styled(words, style));
        }
        if counted {
            let n = tf(
                l,
                "mach_names_count",
                &[("n", task.names.len().to_string()), ("t", task.threads.len().to_string())],
            );
            spans.push(Span::styled(format!(" · {n}"), th.dim()));
        }
        forms.push(Line::from(spans));
    }
    fit::first_fit_line(forms, w)
}

/// Which names of a task the figure lists: its rights to the service
/// port and its own reply and notify ports, not its task-self and
/// bootstrap rights (those are in the focused view).
fn figure_names(task: &TaskView) -> Vec<&NameView> {
    task.names.iter().filter(|n| n.name != task.task_self && n.name != task.bootstrap).collect()
}

fn name_line(n: &NameView, view: &View) -> Line<'static> {
    let th = view.theme;
    let rights = n.rights.replace('+', " ");
    let mut spans = vec![
        Span::styled(format!("{} ", hex(n.name)), th.value()),
        Span::styled(rights, if n.dead() { th.bad() } else { th.label() }),
    ];
    if n.urefs > 1 {
        spans.push(Span::styled(format!(" ×{}", n.urefs), th.dim()));
    }
    if !n.what.is_empty() {
        spans.push(Span::styled(format!(" {}", what_label(&n.what, view)), th.dim()));
    }
    Line::from(spans)
}

/// A task's box in the full figure: its part in words, then its name
/// space (name → rights); what does not fit is counted.
fn task_box(cv: &mut Canvas, r: Rect, task: &Task, d: &MachDetail, view: &View) {
    let th = view.theme;
    let title = vec![
        Line::from(vec![
            Span::styled(format!("{} ", role_label(&task.p.role, view)), th.title()),
            Span::styled(widgets::pid(task.p.pid).trim_start().to_string(), th.value()),
        ]),
        Line::from(Span::styled(role_label(&task.p.role, view), th.title())),
    ];
    let inside = cv.frame(r, BorderType::Rounded, th.border(), title);
    let w = inside.width as usize;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    // The call, without the name the title already gives.
    for line in widgets::emu_party_rows("", task.p, task.call, false, w, view) {
        lines.push((0, line));
    }
    if let Some(tv) = d.task(&task.p.role) {
        for n in figure_names(tv) {
            lines.push((1, name_line(n, view)));
        }
    }
    for (k, line) in widgets::pick_lines(lines, inside.height as usize, w, view).into_iter().enumerate() {
        cv.put(inside.x, inside.y + k as u16, &line);
    }
}

/// One queued message: `▇ id 1000  280 B client-1 ⟲SEND_ONCE`; shorter
/// forms leave out the reply right, then the size, then the id.
fn msg_line(msg: &MsgView, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let size = if msg.ool_bytes > 0 {
        format!("{}+{} OOL", msg.msgh_size, widgets::bytes(msg.ool_bytes))
    } else {
        format!("{} B", msg.msgh_size)
    };
    let (mark, style) = if msg.cached { ("▒", th.warn()) } else { ("▇", th.gauge()) };
    let mark = Span::styled(format!("{mark} "), style);
    let id = vec![
        Span::styled(format!("{} ", t(view.lang, "mach_msg_id")), th.label()),
        Span::styled(msg.msgh_id.to_string(), th.value()),
    ];
    let size = Span::styled(format!(" {size}"), th.dim());
    let sender = Span::styled(format!(" {}", sender_label(msg, view)), th.value());
    let mut head = vec![mark.clone()];
    head.extend(id.clone());
    head.extend([size.clone(), sender.clone()]);
    let mut long = head.clone();
    if !msg.reply.is_empty() {
        long.push(Span::styled(format!(" ⟲{}", msg.reply), th.dim()));
    }
    // Korean names the id by its field (`msgh_id`), which is wider.
    let mut no_size = vec![mark.clone()];
    no_size.extend(id);
    no_size.push(sender.clone());
    let no_id = vec![mark, Span::styled(size.content.trim_start().to_string(), th.dim()), sender];
    vec![Line::from(long), Line::from(head), Line::from(no_size), Line::from(no_id)]
}

/// The focused (roomy) panel: every task in its box with its name space,
/// the mailbox with its messages (those kept past the limit apart), the
/// rights as labelled arrows, the bootstrap server, and the Linux side of
/// our transport, labelled as such.
fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MachDetail, facts: &Facts, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let w = area.width;
    let mut cv = Canvas::new(f, area);
    // Under the figure: the reply path, bootstrap, transport, counts,
    // integrity and at least one note.
    let asked = asked_rows(m, d, w as usize, true, view);
    let below = 6 + asked.len() as u16;
    let fig_h = area.height.saturating_sub(below).clamp(6, 16);
    // Each task's own name for its send right: names are per task.
    let own_send = |role: &str| -> Vec<String> {
        let send = t(l, "mach_send");
        match d.port.as_ref().and_then(|p| p.send_rights.iter().find(|h| h.task == role)) {
            Some(h) => vec![format!("{send} {}", hex(h.name)), send.to_string()],
            None => send_label(d, view),
        }
    };
    let send: Vec<String> = facts.clients.iter().flat_map(|c| own_send(&c.p.role)).collect();
    let recv = receive_label(d, view);
    let cap = (w / 8).max(8);
    let aw = |s: &[String]| s.iter().map(|x| fit::width(x) as u16 + 2).filter(|&x| x <= cap).max().unwrap_or(5);
    let (sa, ra) = (aw(&send), aw(&recv));
    let sw = (w * 30 / 100).clamp(22, 48);
    let vw = (w * 24 / 100).clamp(18, 40);
    let mw = w.saturating_sub(sw + sa + ra + vw);
    let (x_sa, x_box, x_ra, x_srv) = (sw, sw + sa, sw + sa + mw, sw + sa + mw + ra);

    // The senders, one box per task, stacked.
    let n = facts.clients.len().max(1) as u16;
    let each_h = (fig_h / n).max(3);
    for (i, task) in facts.clients.iter().enumerate() {
        let y = i as u16 * each_h;
        if y + 3 > fig_h {
            let more = fit::more(facts.clients.len() - i, view);
            cv.text(1, fig_h.saturating_sub(1), &more, th.dim());
            break;
        }
        let h = if i + 1 == facts.clients.len() { fig_h - y } else { each_h };
        task_box(&mut cv, Rect { x: 0, y, width: sw, height: h }, task, d, view);
        cv.arrow(x_sa, y + 1, sa - 1, true, th.label());
        let label = own_send(&task.p.role).into_iter().find(|s| (fit::width(s) as u16) < sa).unwrap_or_default();
        cv.text(x_sa, y, &label, th.label());
    }

    // The mailbox.
    let titles: Vec<Line<'static>> = match &d.port {
        Some(p) => {
            let port = format!("{} {}", t(l, "mach_port"), hex(p.receiver_name));
            let q = format!("{} {}", t(l, "mach_qlimit"), p.qlimit);
            let q_short = format!("{} {}", t(l, "mach_qlimit_short"), p.qlimit);
            vec![
                Line::from(vec![
                    Span::styled(format!("{port} · "), th.title()),
                    Span::styled(q.clone(), th.value()),
                    Span::styled(format!(" · {}", d.service), th.title()),
                ]),
                Line::from(vec![Span::styled(format!("{port} · "), th.title()), Span::styled(q.clone(), th.value())]),
                Line::from(vec![Span::styled(format!("{port} · "), th.title()), Span::styled(q_short, th.value())]),
                Line::from(Span::styled(port, th.title())),
            ]
        }
        None => vec![Line::from(Span::styled(d.service.clone(), th.title()))],
    };
    let inside = cv.frame(Rect { x: x_box, y: 0, width: mw, height: fig_h }, BorderType::Double, th.border(), titles);
    let mut y = inside.y;
    match &d.port {
        Some(p) => {
            let (bar, count) = widgets::queue_figure(facts.channel, t(l, "gauge_kept"), inside.width, view);
            for _ in 0..th.gauge_rows() {
                cv.put(inside.x, y, &bar);
                y += 1;
            }
            cv.put(inside.x, y, &count);
            y += 1;
            // The messages in queue order; those kept past the limit apart.
            let room = inside.height.saturating_sub(y - inside.y) as usize;
            let iw = inside.width as usize;
            let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
            let mut kept_rule = false;
            for msg in &p.queue {
                if msg.cached && !kept_rule {
                    kept_rule = true;
                    let rule = format!("┄ {} ┄", t(l, "mach_kept_apart"));
                    if fit::width(&rule) <= iw {
                        lines.push((0, Line::from(Span::styled(rule, th.warn()))));
                    }
                }
                if let Some(line) = fit::first_fit_line(msg_line(msg, view), iw) {
                    lines.push((if msg.cached { 1 } else { 2 }, line));
                }
            }
            let hidden = p.queue_len.saturating_sub(p.queue.len());
            if hidden > 0 {
                lines.push((3, Line::from(Span::styled(fit::more(hidden, view), th.dim()))));
            }
            for line in widgets::pick_lines(lines, room, iw, view) {
                cv.put(inside.x, y, &line);
                y += 1;
            }
        }
        None => {
            let msg = t(l, no_port_key(d));
            for row in widgets::wrap_words(msg, inside.width as usize) {
                if fit::width(&row) <= inside.width as usize {
                    cv.text(inside.x, y, &row, th.bad());
                }
                y += 1;
            }
        }
    }

    // The receive right and the receiver.
    let rl = recv.iter().find(|s| (fit::width(s) as u16) < ra).cloned().unwrap_or_default();
    cv.text(x_ra + 1, 1, &rl, th.label());
    cv.arrow(x_ra + 1, 2, ra.saturating_sub(2), true, th.label());
    match &facts.server {
        Some(s) => {
            task_box(&mut cv, Rect { x: x_srv, y: 1, width: vw, height: fig_h.saturating_sub(1).max(3) }, s, d, view)
        }
        None => {
            cv.text(x_srv, 2, t(l, "mach_server_short"), th.dim());
        }
    }

    // Under the figure.
    let mut y = fig_h;
    let width = w as usize;
    let forms: Vec<Line<'static>> = reply_forms(d, view)
        .into_iter()
        .map(|s| {
            Line::from(vec![Span::styled("◀─ ", th.dim()), Span::styled(s, th.label()), Span::styled(" ─┘", th.dim())])
        })
        .collect();
    if let Some(line) = fit::first_fit_line(forms, width) {
        cv.put(0, y, &line);
    }
    y += 1;
    let quiet = !asked.is_empty();
    let mut lines: Vec<(u8, Line<'static>)> = asked.into_iter().map(|l| (0, l)).collect();
    if !quiet {
        lines.extend(unasked_rows(d, width, view).into_iter().map(|l| (1, l)));
    }
    if let Some(b) = fit::first_fit_line(bootstrap_forms(d, view), width) {
        lines.push((1, b));
    }
    lines.extend(super::mach_book::lines(d, width, view).into_iter().map(|l| (3, l)));
    // The Linux side: what our transport does, not what Mach does.
    let mut items = vec![Item::text(0, format!("{}:", t(l, "mach_transport")), th.label())];
    for p in &m.processes {
        let kernel = p.role_kind() == crate::model::figures::Role::Other;
        let mut item = widgets::transport_item(
            &if kernel { t(l, "mach_kernel").to_string() } else { role_label(&p.role, view) },
            p,
            view,
        );
        item.priority = if kernel { 2 } else { 1 };
        items.push(item);
    }
    lines.push((2, fit::row(items, "  ", width, view)));
    lines.push((2, fit::row(count_items(d, view), "  ", width, view)));
    lines.push((2, fit::row(widgets::integrity_items(&m.integrity, view), "  ", width, view)));
    if measured::any(m) {
        lines.push((2, measured::figures_row(m, width, view)));
    }
    let rows = area.height.saturating_sub(y) as usize;
    let out = widgets::pick_lines(lines, rows, width, view);
    let left = rows.saturating_sub(out.len());
    for line in out {
        cv.put(0, y, &line);
        y += 1;
    }
    let notes = widgets::note_prose(&m.notes, left, width, view);
    let shown = notes.len();
    for line in notes {
        cv.put(0, y, &line);
        y += 1;
    }
    if shown == 0 && left > 0 {
        let knobs: Vec<Item> = m.knobs.iter().map(|(k, v)| Item::text(1, format!("{k}={v}"), th.dim())).collect();
        cv.put(0, y, &fit::row(knobs, "  ", width, view));
    }
}

/// The focused view's second part: every task's name space, the
/// bootstrap registry, the reply ports and the last message headers.
pub fn render_extra(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let Some(m) = snap.mechanism(Kind::Mach) else { return };
    let Some(d) = detail(m) else { return };
    let l = view.lang;
    let th = view.theme;
    let cols = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(area);
    let boxed = |f: &mut Frame, r: Rect, titles: &[String]| -> Rect {
        let block = Boxed::new().border_style(th.border());
        let inner = block.inner(r);
        f.render_widget(block, r);
        let mut cv = Canvas::new(f, r);
        let forms = titles.iter().map(|s| Line::from(Span::styled(format!(" {s} "), th.title()))).collect();
        cv.put_first(1, 0, forms, r.width.saturating_sub(2));
        inner
    };

    // Name spaces: one small table per task, side by side when they fit.
    let per_task = 26u16;
    let ni_w = cols[0].width.saturating_sub(2);
    let fit_n = (ni_w / per_task).max(1) as usize;
    let shown: Vec<&TaskView> = d.tasks.iter().take(fit_n).collect();
    let mut titles = vec![t(l, "mach_names").to_string(), t(l, "mach_names_short").to_string()];
    if d.tasks.len() > fit_n {
        let more = fit::more(d.tasks.len() - fit_n, view);
        titles.insert(0, format!("{} {more}", t(l, "mach_names")));
        titles.insert(2, format!("{} {more}", t(l, "mach_names_short")));
    }
    let ni = boxed(f, cols[0], &titles);
    let tcols = Layout::horizontal(vec![Constraint::Ratio(1, shown.len().max(1) as u32); shown.len().max(1)]).split(ni);
    for (task, r) in shown.iter().zip(tcols.iter()) {
        let w = r.width.saturating_sub(1) as usize;
        let mut lines: Vec<(u8, Line<'static>)> = vec![(
            0,
            fit::first_fit_line(
                vec![
                    Line::from(vec![
                        Span::styled(format!("{} ", role_label(&task.name, view)), th.title()),
                        Span::styled(widgets::pid(task.pid).trim_start().to_string(), th.value()),
                    ]),
                    Line::from(Span::styled(role_label(&task.name, view), th.title())),
                ],
                w,
            )
            .unwrap_or_default(),
        )];
        for n in &task.names {
            let style = if n.dead() { th.bad() } else { th.value() };
            let rights = n.rights.replace("RECEIVE", "RECV");
            let base = vec![
                Span::styled(format!("{:<6}", hex(n.name)), th.label()),
                Span::styled(format!("{rights:<10}"), style),
                Span::styled(format!("{:>2}", n.urefs), th.dim()),
            ];
            let mut long = base.clone();
            if !n.what.is_empty() {
                long.push(Span::styled(format!(" {}", what_label(&n.what, view)), th.dim()));
            }
            if let Some(line) = fit::first_fit_line(vec![Line::from(long), Line::from(base)], w) {
                lines.push((1, line));
            }
        }
        let mut cv = Canvas::new(f, *r);
        for (k, line) in widgets::pick_lines(lines, r.height as usize, w, view).into_iter().enumerate() {
            cv.put(0, k as u16, &line);
        }
    }

    // Bootstrap registry, reply ports, last headers.
    let titles = [
        format!("{} · {} · {}", t(l, "mach_bootstrap"), t(l, "mach_reply_ports"), t(l, "mach_headers")),
        format!("{} · {}", t(l, "mach_bootstrap"), t(l, "mach_reply_ports")),
        t(l, "mach_bootstrap").to_string(),
    ];
    let ri = boxed(f, cols[1], &titles);
    let w = ri.width as usize;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    for s in &d.bootstrap {
        let how = if s.checked_in { "check_in" } else { "register" };
        let name = Span::styled(format!("\"{}\" ", s.name), th.value());
        let forms = vec![
            Line::from(vec![
                name.clone(),
                Span::styled(format!("→ {} ({how}, {})", t(l, "mach_port"), role_label(&s.task, view)), th.label()),
            ]),
            Line::from(vec![name.clone(), Span::styled(format!("→ {}", role_label(&s.task, view)), th.label())]),
            Line::from(vec![name]),
        ];
        if let Some(line) = fit::first_fit_line(forms, w) {
            lines.push((0, line));
        }
    }
    if d.bootstrap.is_empty() {
        lines.push((
            0,
            Line::from(Span::styled(format!("{}: {}", t(l, "mach_bootstrap"), t(l, "mach_none")), th.dim())),
        ));
    }
    for r in &d.reply_ports {
        let holders: Vec<String> =
            r.send_once.iter().map(|h| format!("{} {}", role_label(&h.task, view), hex(h.name))).collect();
        let head = vec![
            Span::styled(format!("{} {} {} ", role_label(&r.task, view), t(l, "mach_thread"), r.thread), th.label()),
            Span::styled(hex(r.name), th.value()),
        ];
        let mut long = head.clone();
        long.push(Span::styled(format!("  SEND_ONCE {} {}", t(l, "mach_in_transit"), r.in_transit), th.dim()));
        if !holders.is_empty() {
            long.push(Span::styled(format!(", {}", holders.join(", ")), th.warn()));
        }
        if r.queue_len > 0 {
            long.push(Span::styled(format!("  {} {}", t(l, "mach_queue"), r.queue_len), th.value()));
        }
        if let Some(line) = fit::first_fit_line(vec![Line::from(long), Line::from(head)], w) {
            lines.push((1, line));
        }
    }
    // The last headers as a table: with `msgh_bits` when every row fits.
    let who_w = d.headers.iter().map(|h| fit::width(&sender_label(h, view))).max().unwrap_or(0).max(10);
    let source_col = pad(&format!("{} ({})", t(l, "mach_source"), t(l, "mach_audit_pid")), who_w + 8);
    for bits in [true, false] {
        let cols = if bits {
            format!("msgh_bits  msgh_size  msgh_id  {source_col}  {}", t(l, "mach_reply_col"))
        } else {
            format!("msgh_size  msgh_id  {source_col}  {}", t(l, "mach_reply_col"))
        };
        let rows: Vec<Line<'static>> = d
            .headers
            .iter()
            .map(|h| {
                let mut spans = Vec::new();
                if bits {
                    spans.push(Span::styled(format!("{:#010x} ", h.msgh_bits), th.dim()));
                }
                spans.extend([
                    Span::styled(format!("{:>9}  ", h.msgh_size), th.value()),
                    Span::styled(format!("{:<7}  ", h.msgh_id), th.value()),
                    Span::styled(
                        format!(
                            "{}  ",
                            pad(
                                &format!("{}{}", pad(&sender_label(h, view), who_w), widgets::pid(h.sender_pid)),
                                who_w + 8
                            )
                        ),
                        th.label(),
                    ),
                    Span::styled(h.reply.clone(), th.dim()),
                ]);
                Line::from(spans)
            })
            .collect();
        if d.headers.is_empty() || fit::width(&cols) > w || rows.iter().any(|r| fit::line_width(r) > w) {
            continue;
        }
        lines.push((2, Line::from(Span::styled(cols, th.label()))));
        lines.extend(rows.into_iter().map(|r| (3, r)));
        break;
    }
    // The newest headers are the ones to keep: drop from the oldest.
    let rows = ri.height as usize;
    let fixed = lines.iter().filter(|(p, _)| *p < 3).count();
    let headers: Vec<(u8, Line<'static>)> = lines.iter().filter(|(p, _)| *p == 3).cloned().collect();
    let keep_headers = rows.saturating_sub(fixed);
    let mut kept: Vec<(u8, Line<'static>)> = lines.into_iter().filter(|(p, _)| *p < 3).collect();
    kept.extend(headers.into_iter().rev().take(keep_headers).rev());
    let mut cv = Canvas::new(f, ri);
    for (k, line) in widgets::pick_lines(kept, rows, w, view).into_iter().enumerate() {
        cv.put(0, k as u16, &line);
    }
}

fn what_label(what: &str, view: &View) -> String {
    let key = match what {
        "task self" => "mach_w_self",
        "bootstrap" => "mach_w_bootstrap",
        "service" => "mach_w_service",
        "reply port" => "mach_w_reply",
        "notify port" => "mach_w_notify",
        "reply right" => "mach_w_reply_right",
        other => return other.to_string(),
    };
    t(view.lang, key).to_string()
}

/// Sentences for the lesson pane about what the snapshot shows now.
pub fn observe(m: &MechanismSnapshot, d: &MachDetail, lang: crate::i18n::Lang) -> Vec<String> {
    let mut out = Vec::new();
    let c = &d.counters;
    if let Some(p) = &d.port {
        if p.qlimit > 0 && p.queue_len >= p.qlimit as usize && !p.blocked_senders.is_empty() {
            out.push(tf(
                lang,
                "obs_mach_blocked",
                &[
                    ("n", p.queue_len.to_string()),
                    ("q", p.qlimit.to_string()),
                    ("b", p.blocked_senders.len().to_string()),
                ],
            ));
        }
        if p.cached > 0 {
            let refused: u64 = d.clients.iter().map(|x| x.notify_in_progress).sum();
            let key = d.rule_key("obs_mach_cached");
            out.push(tf(lang, key, &[("c", p.cached.to_string()), ("r", refused.to_string())]));
        }
        // The same port under different names in different tasks.
        let mut names: Vec<String> = Vec::new();
        if p.receiver_name != 0 {
            names.push(format!("{} {}", role_name(&p.receiver, lang), hex(p.receiver_name)));
        }
        names.extend(p.send_rights.iter().map(|h| format!("{} {}", role_name(&h.task, lang), hex(h.name))));
        if names.len() > 1 {
            out.push(tf(lang, "obs_mach_names", &[("names", names.join(", "))]));
        }
    }
    if c.send_timed_out > 0 {
        out.push(tf(lang, "obs_mach_timed_out", &[("n", c.send_timed_out.to_string())]));
    }
    if c.returned_at_once > 0 {
        out.push(tf(lang, "obs_mach_at_once", &[("n", c.returned_at_once.to_string())]));
    }
    if c.notified > 0 {
        let key = d.rule_key("obs_mach_notified");
        out.push(tf(lang, key, &[("n", c.notified.to_string())]));
    }
    out.extend(super::mach_book::observe(d, lang));
    let dead: usize = d.tasks.iter().map(|t| t.names.iter().filter(|n| n.dead()).count()).sum();
    if dead > 0 {
        out.push(tf(lang, "obs_mach_dead", &[("n", dead.to_string())]));
    }
    let rate: f64 = m.processes.iter().filter(|p| p.role_kind().is_client()).map(|p| p.send_rate).sum();
    if rate > 0.0 && d.port.as_ref().is_some_and(|p| p.queue_len < p.qlimit as usize) {
        out.push(tf(lang, "obs_mach_flow", &[("rate", widgets::rate(rate))]));
    }
    out
}
