//! The Mach panel: the service port as a mailbox between its senders and
//! its one receiver, as the textbook draws it, with what the emulated
//! kernel's tables say.
//!
//! ```text
//! ┌ 5  Mach message passing  ports, rights, mach_msg ─────────────────────────┐
//! │╭ clients (send rights) ╮ mach_msg ╔ port 0x303 · edu.ipcscope.echo ╗ ╭ server ╮│
//! ││ client-1  4123 S …    │ ───────▶ ║█████████████ 5/5 messages     ║ │ pid …  ││
//! ││  send 0x503 ×2  1.0s  │          ║ id 1000  256 B client-1 ⟲1    ║ │ RECEIVE││
//! │╰───────────────────────╯          ╚═══════════════════════════════╝ ╰────────╯│
//! │ blocked senders: client-1 1.0s, …   cached: none                              │
//! │ sent 5  recv 0  timed out 834  at once 0  cached 0  notified 0  destroyed 0   │
//! │ delivered …                                                                   │
//! └───────────────────────────────────────────────────────────────────────────────┘
//! ```
//! Focused, a second view under it shows every task's name space, the
//! bootstrap registry, the reply ports and the last message headers.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::widgets::{self, count, integrity_line, note_lines, pad, GaugeWords};
use super::View;
use crate::i18n::t;
use crate::model::detail::mach::{MachDetail, MsgView, TaskView};
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

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MachDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let inner = widgets::panel(f, area, n, t(l, "mach_title"), t(l, "mach_sub"), selected, view);
    if inner.height >= 14 && inner.width >= 110 {
        full(f, inner, m, d, view);
    } else {
        compact(f, inner, m, d, view);
    }
}

fn proc_of<'a>(m: &'a MechanismSnapshot, role: &str) -> Option<&'a ProcessSnapshot> {
    m.processes.iter().find(|p| p.role == role)
}

fn task_of<'a>(d: &'a MachDetail, name: &str) -> Option<&'a TaskView> {
    d.tasks.iter().find(|t| t.name == name)
}

fn hex(n: u32) -> String {
    format!("{n:#x}")
}

/// The queue against `qlimit`; messages kept past it drawn apart
/// (`5/5 + 3 kept`).
fn gauge(m: &MechanismSnapshot, width: u16, view: &View) -> Vec<Line<'static>> {
    let words = GaugeWords { over: Some(t(view.lang, "gauge_kept")), wrap: true, ..GaugeWords::default() };
    widgets::gauge_words(&m.channel, width, words, view)
}

/// `id 1000  256 B  client-1  ⟲SEND_ONCE` for one queued message.
fn msg_line(msg: &MsgView, view: &View) -> Line<'static> {
    let th = view.theme;
    let size = if msg.ool_bytes > 0 {
        format!("{}+{} OOL", msg.msgh_size, widgets::bytes(msg.ool_bytes))
    } else {
        format!("{} B", msg.msgh_size)
    };
    let mut spans = vec![
        Span::styled("id ", th.label()),
        Span::styled(format!("{:<5}", msg.msgh_id), th.value()),
        Span::styled(format!("{size:>7} "), th.dim()),
        Span::styled(msg.sender.clone(), th.value()),
    ];
    if !msg.reply.is_empty() {
        spans.push(Span::styled(format!(" ⟲{}", msg.reply), th.dim()));
    }
    if msg.cached {
        spans.push(Span::styled(format!(" {}", t(view.lang, "mach_cached")), th.warn()));
    }
    Line::from(spans)
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MachDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let rows = Layout::vertical([
        Constraint::Length(9),
        Constraint::Length(2),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .split(area);
    let [left, mid, right] = widgets::flow_row(f, rows[0], "mach_msg(SEND)", "mach_msg(RCV)", view);

    // The senders: every client task, its threads and what they wait in.
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(Span::styled(format!(" {} ", t(l, "mach_clients")), th.title()));
    let ci = block.inner(left);
    f.render_widget(block, left);
    let clients: Vec<&ProcessSnapshot> = m.processes.iter().filter(|p| p.role_kind().is_client()).collect();
    let labelled: Vec<(&ProcessSnapshot, String)> = clients.iter().map(|p| (*p, p.role.clone())).collect();
    let mut lines = Vec::new();
    for (p, line) in clients.iter().zip(widgets::process_lines(&labelled, view)) {
        lines.push(line);
        if let Some(task) = task_of(d, &p.role) {
            for (i, thr) in task.threads.iter().enumerate() {
                let what = if thr.cached {
                    format!("{} · {}", t(l, "mach_cached"), thr.blocked)
                } else if thr.blocked.is_empty() {
                    "-".to_string()
                } else {
                    thr.blocked.clone()
                };
                let style = if thr.in_send() || thr.cached { th.warn() } else { th.dim() };
                lines.push(Line::from(vec![
                    Span::styled(format!("  {} {} ", t(l, "mach_thread"), i + 1), th.label()),
                    Span::styled(what, style),
                    Span::styled(
                        if thr.waited_ms > 0 { format!(" {}", widgets::since(thr.waited_ms)) } else { String::new() },
                        th.dim(),
                    ),
                ]));
            }
        }
    }
    f.render_widget(Paragraph::new(lines), ci);

    // The mailbox.
    let title = match &d.port {
        Some(p) => format!("{} {} · {}", t(l, "mach_port"), hex(p.receiver_name), d.service),
        None => d.service.clone(),
    };
    let bi = widgets::object_box(f, mid, &title, view);
    let mut lines = gauge(m, bi.width, view);
    match &d.port {
        Some(p) => {
            let mut spans = vec![
                Span::styled("qlimit ", th.label()),
                Span::styled(p.qlimit.to_string(), th.value()),
                Span::styled(format!("  {} ", t(l, "mach_queue")), th.label()),
                Span::styled(p.queue_len.to_string(), th.value()),
            ];
            if p.cached > 0 {
                spans.push(Span::styled(format!(" (+{} {})", p.cached, t(l, "mach_cached")), th.warn()));
            }
            lines.push(Line::from(spans));
            let room = (bi.height as usize).saturating_sub(lines.len());
            let shown = p.queue.len().min(room);
            for msg in p.queue.iter().take(if p.queue.len() > room { room.saturating_sub(1) } else { shown }) {
                lines.push(msg_line(msg, view));
            }
            if p.queue.len() > room && room > 0 {
                lines.push(Line::from(Span::styled(format!("… +{}", p.queue_len + 1 - room), th.dim())));
            }
        }
        None => {
            let key = if d.kernel_up { "mach_no_service" } else { "mach_kernel_down" };
            lines.push(Line::from(Span::styled(t(l, key), th.bad())));
        }
    }
    f.render_widget(Paragraph::new(lines), bi);

    // The one receiver.
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .title(Span::styled(format!(" {} ", t(l, "mach_server")), th.title()));
    let si = block.inner(right);
    f.render_widget(block, right);
    let mut lines = Vec::new();
    if let Some(s) = proc_of(m, "server") {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(l, "pid")), th.label()),
            Span::styled(widgets::pid(s.pid), th.value()),
        ]));
        lines.push(Line::from(Span::styled(widgets::state_text(s, view), th.state(s))));
        if s.alive() {
            lines.push(Line::from(vec![Span::styled("op ", th.label()), Span::raw(s.op.clone())]));
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(l, "received")), th.label()),
            Span::styled(count(s.received), th.value()),
            Span::styled(format!(" {}", widgets::rate(s.recv_rate)), th.dim()),
        ]));
    }
    if let Some(p) = &d.port {
        lines.push(Line::from(vec![
            Span::styled("RECEIVE ", th.label()),
            Span::styled(hex(p.receiver_name), th.value()),
        ]));
    }
    if let Some(k) = proc_of(m, "kernel") {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(l, "mach_kernel")), th.label()),
            Span::styled(widgets::pid(k.pid).trim_start().to_string(), th.value()),
        ]));
    }
    f.render_widget(Paragraph::new(lines), si);

    f.render_widget(Paragraph::new(waiting_lines(d, view)), rows[1]);
    f.render_widget(Paragraph::new(count_lines(d, view)), rows[2]);
    f.render_widget(Paragraph::new(integrity_line(&m.integrity, view)), rows[3]);
    let mut bottom = note_lines(&m.notes, rows[4].height as usize, view);
    if bottom.len() < rows[4].height as usize {
        bottom.push(Line::from(Span::styled(widgets::knob_line(m), th.dim())));
    }
    f.render_widget(Paragraph::new(bottom).wrap(Wrap { trim: false }), rows[4]);
}

/// Blocked senders and cached messages, and who holds send rights.
fn waiting_lines(d: &MachDetail, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let none = || t(l, "mach_none").to_string();
    let Some(p) = &d.port else { return Vec::new() };
    let blocked = if p.blocked_senders.is_empty() {
        none()
    } else {
        p.blocked_senders
            .iter()
            .map(|w| format!("{} {}", w.task, widgets::since(w.waited_ms)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cached: Vec<String> = d
        .tasks
        .iter()
        .filter_map(|task| {
            let n = task.threads.iter().filter(|t| t.cached).count();
            (n > 0).then(|| format!("{} ×{n}", task.name))
        })
        .collect();
    let holders =
        p.send_rights.iter().map(|h| format!("{} {} ×{}", h.task, hex(h.name), h.urefs)).collect::<Vec<_>>().join(", ");
    vec![
        Line::from(vec![
            Span::styled(format!("{}: ", t(l, "mach_blocked_senders")), th.label()),
            Span::styled(blocked, if p.blocked_senders.is_empty() { th.value() } else { th.warn() }),
            Span::styled(format!("   {}: ", t(l, "mach_cached")), th.label()),
            Span::styled(if cached.is_empty() { none() } else { cached.join(", ") }, th.value()),
        ]),
        Line::from(vec![
            Span::styled(format!("{}: ", t(l, "mach_send_rights")), th.label()),
            Span::styled(if holders.is_empty() { none() } else { holders }, th.value()),
        ]),
    ]
}

/// The kernel's counts: what happened to sends, and how bytes travelled.
fn count_lines(d: &MachDetail, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let c = &d.counters;
    let first = widgets::pairs_line(
        &[
            (t(l, "sent"), count(c.sent)),
            (t(l, "received"), count(c.received)),
            (t(l, "mach_timed_out"), count(c.send_timed_out)),
            (t(l, "mach_at_once"), count(c.returned_at_once)),
            (t(l, "mach_cached"), count(c.cached)),
            (t(l, "mach_notified"), count(c.notified)),
            (t(l, "mach_destroyed"), count(c.destroyed)),
        ],
        view,
    );
    let second = widgets::pairs_line(
        &[
            (t(l, "mach_mode"), d.send_mode.clone()),
            (t(l, "mach_copied"), widgets::bytes(c.bytes_inline)),
            (t(l, "mach_mapped"), widgets::bytes(c.bytes_ool)),
        ],
        view,
    );
    vec![first, second]
}

/// For small grid cells: the same facts, most important first.
fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &MachDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let mut lines = gauge(m, area.width, view);
    if let Some(s) = proc_of(m, "server") {
        lines.push(widgets::process_line(s, t(l, "mach_server_short"), view));
    }
    let c = &d.counters;
    let blocked = d.port.as_ref().map_or(0, |p| p.blocked_senders.len());
    let cached = d.port.as_ref().map_or(0, |p| p.cached);
    lines.push(widgets::pairs_line(
        &[
            (t(l, "mach_blocked_short"), blocked.to_string()),
            (t(l, "mach_cached"), cached.to_string()),
            (t(l, "mach_mode"), d.send_mode.clone()),
        ],
        view,
    ));
    lines.push(widgets::pairs_line(
        &[
            (t(l, "sent"), count(c.sent)),
            (t(l, "received"), count(c.received)),
            (t(l, "mach_timed_out"), count(c.send_timed_out + c.returned_at_once)),
        ],
        view,
    ));
    lines.push(integrity_line(&m.integrity, view));
    let clients: Vec<(&ProcessSnapshot, String)> =
        m.processes.iter().filter(|p| p.role_kind().is_client()).map(|p| (p, p.role.clone())).collect();
    lines.extend(widgets::process_lines(&clients, view));
    lines.extend(note_lines(&m.notes, 2, view));
    if !d.kernel_up {
        lines.insert(1, Line::from(Span::styled(t(l, "mach_kernel_down"), th.bad())));
    }
    lines.truncate(area.height as usize);
    f.render_widget(Paragraph::new(lines), area);
}

/// The focused view's second part: name spaces, bootstrap registry, reply
/// ports, last headers.
pub fn render_extra(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let Some(m) = snap.mechanism(Kind::Mach) else { return };
    let Some(d) = detail(m) else { return };
    let l = view.lang;
    let th = view.theme;
    let cols = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).split(area);
    let boxed = |title: &str| {
        Block::default()
            .borders(Borders::ALL)
            .border_style(th.border())
            .title(Span::styled(format!(" {title} "), th.title()))
    };

    // Name spaces: one small table per task, side by side when they fit.
    let per_task = 28u16;
    let fit = ((cols[0].width.saturating_sub(2)) / per_task).max(1) as usize;
    let mut title = t(l, "mach_names").to_string();
    if d.tasks.len() > fit {
        title += &format!(" (+{})", d.tasks.len() - fit);
    }
    let block = boxed(&title);
    let ni = block.inner(cols[0]);
    f.render_widget(block, cols[0]);
    let tasks: Vec<&TaskView> = d.tasks.iter().take(fit).collect();
    let tcols = Layout::horizontal(vec![Constraint::Ratio(1, tasks.len().max(1) as u32); tasks.len().max(1)]).split(ni);
    for (task, r) in tasks.iter().zip(tcols.iter()) {
        let w = r.width.saturating_sub(1) as usize;
        let mut lines = vec![Line::from(vec![
            Span::styled(pad(&task.name, w.saturating_sub(8)), th.title()),
            Span::styled(widgets::pid(task.pid), th.value()),
        ])];
        for n in &task.names {
            let style = if n.dead() { th.bad() } else { th.value() };
            let what = if n.what.is_empty() { String::new() } else { format!(" {}", what_label(&n.what, view)) };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<6}", hex(n.name)), th.label()),
                Span::styled(format!("{:<10}", n.rights.replace("RECEIVE", "RECV")), style),
                Span::styled(format!("{:>2}", n.urefs), th.dim()),
                Span::styled(pad(&what, w.saturating_sub(18)), th.dim()),
            ]));
        }
        f.render_widget(Paragraph::new(lines), *r);
    }
    // Bootstrap registry, reply ports, last headers.
    let block = boxed(&format!("{} · {} · {}", t(l, "mach_bootstrap"), t(l, "mach_reply_ports"), t(l, "mach_headers")));
    let ri = block.inner(cols[1]);
    f.render_widget(block, cols[1]);
    let mut lines = Vec::new();
    for s in &d.bootstrap {
        let how = if s.checked_in { "check_in" } else { "register" };
        lines.push(Line::from(vec![
            Span::styled(format!("\"{}\" ", s.name), th.value()),
            Span::styled(format!("→ {} ({how}, {})", t(l, "mach_port"), s.task), th.label()),
        ]));
    }
    if d.bootstrap.is_empty() {
        lines.push(Line::from(Span::styled(format!("{}: {}", t(l, "mach_bootstrap"), t(l, "mach_none")), th.dim())));
    }
    for r in &d.reply_ports {
        let holders: Vec<String> = r.send_once.iter().map(|h| format!("{} {}", h.task, hex(h.name))).collect();
        let mut spans = vec![
            Span::styled(format!("{} {} {} ", r.task, t(l, "mach_thread"), r.thread), th.label()),
            Span::styled(hex(r.name), th.value()),
            Span::styled(format!("  SEND_ONCE {} {}", t(l, "mach_in_transit"), r.in_transit), th.dim()),
        ];
        if !holders.is_empty() {
            spans.push(Span::styled(format!(", {}", holders.join(", ")), th.warn()));
        }
        if r.queue_len > 0 {
            spans.push(Span::styled(format!("  {} {}", t(l, "mach_queue"), r.queue_len), th.value()));
        }
        lines.push(Line::from(spans));
    }
    let room = (ri.height as usize).saturating_sub(lines.len() + 1);
    if room > 0 && !d.headers.is_empty() {
        lines.push(Line::from(Span::styled(
            "msgh_bits  msgh_size  msgh_id  source (audit pid)  reply".to_string(),
            th.label(),
        )));
        for h in d.headers.iter().rev().take(room.saturating_sub(1)).rev() {
            lines.push(Line::from(vec![
                Span::styled(format!("{:#010x} ", h.msgh_bits), th.dim()),
                Span::styled(format!("{:>9}  ", h.msgh_size), th.value()),
                Span::styled(format!("{:<7}  ", h.msgh_id), th.value()),
                Span::styled(format!("{:<10}{}  ", h.sender, widgets::pid(h.sender_pid)), th.label()),
                Span::styled(h.reply.clone(), th.dim()),
            ]));
        }
    }
    lines.truncate(ri.height as usize);
    f.render_widget(Paragraph::new(lines), ri);
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
    use crate::i18n::tf;
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
            out.push(tf(lang, "obs_mach_cached", &[("c", p.cached.to_string()), ("r", refused.to_string())]));
        }
        // The same port under different names in different tasks.
        let mut names: Vec<String> = Vec::new();
        if p.receiver_name != 0 {
            names.push(format!("{} {}", p.receiver, hex(p.receiver_name)));
        }
        names.extend(p.send_rights.iter().map(|h| format!("{} {}", h.task, hex(h.name))));
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
        out.push(tf(lang, "obs_mach_notified", &[("n", c.notified.to_string())]));
    }
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
