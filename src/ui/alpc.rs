//! The ALPC panel: the textbook's picture and where NT really keeps the
//! messages, from the emulated kernel's own tables.
//!
//! ```text
//! ┌ 6  Windows ALPC  emulated NT kernel: connection port, channels, 3 paths ┐
//! │connection port \RPC Control\ipcscope-echo  server 4121  requests 0      │
//! │client-1  4122  port 0x4 ══▶ 0x8 server  waiting 0 · in service 1 · s→c 0│
//! │          section c→s 64.0K (4.0K in use) · s→c 64.0K · ptrace ✓         │
//! │NT keeps them: main queue ███░░ 2/409 · pending 1 · replies → thread     │
//! │path                          messages     bytes                         │
//! │① copied through the queue       11.8k      1.3M ██████████            │
//! │② passed in a section                0         0                       │
//! │③ read directly                      0         0                       │
//! │delivered 5901  lost 0  corrupt 0  dup 0  reordered 0                    │
//! │▸ notes                                                                  │
//! └─────────────────────────────────────────────────────────────────────────┘
//! ```
//! Small cells get the path counters first, then the queues, the
//! integrity line and the processes. Focused, a second pane shows the
//! object directory, the latest `PORT_MESSAGE` headers, the callback in
//! flight and the latest RPC call's trip through the layers.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::widgets::{self, gauge_line, integrity_line, note_lines, pad};
use super::View;
use crate::i18n::{t, tf};
use crate::model::detail::alpc::{AlpcDetail, ChannelView, Direction, PathCounters, RpcLayer};
use crate::model::snapshot::{Detail, MechanismSnapshot, Snapshot};
use crate::model::Kind;

/// Rows the focused view's extra pane wants.
pub const FOCUS_HEIGHT: u16 = 13;

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &AlpcDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let inner = widgets::panel(f, area, n, t(l, "alpc_title"), t(l, "alpc_sub"), selected, view);
    let lines =
        if inner.height >= 12 && inner.width >= 70 { full(m, d, inner, view) } else { compact(m, d, inner, view) };
    f.render_widget(Paragraph::new(lines), inner);
}

fn totals(d: &AlpcDetail) -> PathCounters {
    d.state.as_ref().map(|s| s.totals).unwrap_or_default()
}

fn role(d: &AlpcDetail, pid: u32) -> String {
    d.role_of(pid).map_or_else(|| pid.to_string(), str::to_string)
}

fn full(m: &MechanismSnapshot, d: &AlpcDetail, area: Rect, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let w = area.width as usize;
    let mut lines = Vec::new();
    let Some(state) = &d.state else {
        lines.push(kernel_down_line(m, view));
        lines.push(integrity_line(&m.integrity, view));
        lines.extend(note_lines(&m.notes, 3, view));
        return lines;
    };
    // The connection port, as the notes draw it: named, visible to all.
    let port = state.connection_ports.first();
    let server_pid = m.processes.get(1).map_or(0, |p| p.pid);
    let narrow = w < 110;
    lines.push(Line::from(vec![
        Span::styled(format!("{} ", t(l, "alpc_conn_port")), th.label()),
        Span::styled(d.port_name.clone(), th.value()),
        Span::styled(format!("  {} ", t(l, "alpc_server")), th.label()),
        Span::styled(widgets::pid(server_pid).trim_start().to_string(), th.value()),
        Span::styled(
            format!("  {} ", t(l, if narrow { "alpc_conn_requests_short" } else { "alpc_conn_requests" })),
            th.label(),
        ),
        Span::styled(port.map_or(0, |p| p.connection_requests.len()).to_string(), th.value()),
        Span::styled(format!("  {} ", t(l, "alpc_refused")), th.label()),
        Span::styled(d.server.refused.to_string(), if d.server.refused > 0 { th.warn() } else { th.value() }),
    ]));
    // Each client's channel: a pair of communication ports.
    let budget = (area.height as usize).saturating_sub(8);
    let two_lines = state.channels.len() * 2 <= budget;
    if state.channels.is_empty() {
        lines.push(Line::from(Span::styled(t(l, "alpc_no_channels"), th.dim())));
    }
    // In the order of the clients' roles, whatever order they were accepted in.
    let mut channels: Vec<&ChannelView> = state.channels.iter().collect();
    channels.sort_by_key(|c| role(d, c.client_port.owner.unique_process));
    for ch in channels.into_iter().take(budget.max(1)) {
        lines.extend(channel_lines(d, ch, two_lines, narrow, view));
    }
    // Where NT keeps them.
    let main = port.map_or(0, |p| p.main_queue.len());
    let pending = port.map_or(0, |p| p.pending_queue.len());
    let lead = format!("{} ", t(l, if narrow { "alpc_nt_keeps_short" } else { "alpc_nt_keeps" }));
    let tail = tf(l, if narrow { "alpc_nt_tail_short" } else { "alpc_nt_tail" }, &[("pending", pending.to_string())]);
    let gauge_w = w.saturating_sub(widgets::display_width(&lead) + widgets::display_width(&tail)).clamp(12, 30);
    let mut spans = vec![Span::styled(lead, th.label())];
    spans.extend(gauge_line(&m.channel, gauge_w as u16, view).spans);
    spans.push(Span::styled(tail, if pending > 0 || main > 0 { th.warn() } else { th.dim() }));
    lines.push(Line::from(spans));
    // The three paths.
    lines.extend(path_lines(&totals(d), w, view));
    lines.push(integrity_line(&m.integrity, view));
    // The processes, when there is room for them and a line of notes.
    if (area.height as usize) >= lines.len() + m.processes.len() + 2 {
        let labels: Vec<_> = m.processes.iter().map(|p| (p, p.role.clone())).collect();
        lines.extend(widgets::process_lines(&labels, view));
    }
    let room = (area.height as usize).saturating_sub(lines.len());
    let notes = note_lines(&m.notes, room, view);
    if notes.is_empty() && room > 0 {
        lines.push(Line::from(Span::styled(widgets::knob_line(m), th.dim())));
    }
    lines.extend(notes);
    lines
}

fn kernel_down_line(m: &MechanismSnapshot, view: &View) -> Line<'static> {
    let th = view.theme;
    let k = m.processes.first();
    let text = match k.and_then(|p| p.exit.clone()) {
        Some(e) => format!("{} · {e}", t(view.lang, "alpc_kernel_gone")),
        None => t(view.lang, "alpc_kernel_waiting").to_string(),
    };
    Line::from(Span::styled(text, th.warn()))
}

fn channel_lines(d: &AlpcDetail, ch: &ChannelView, two: bool, narrow: bool, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let who = role(d, ch.client_port.owner.unique_process);
    let handle = |h: Option<u32>| h.map_or_else(|| "-".to_string(), |h| format!("0x{h:x}"));
    let figures = d.clients.iter().find(|c| c.role == who);
    let mut first = vec![
        Span::styled(pad(&who, 9), th.label()),
        Span::styled(widgets::pid(ch.client_port.owner.unique_process as i32), th.value()),
        Span::styled(if narrow { " ".to_string() } else { format!(" {} ", t(l, "alpc_port")) }, th.label()),
        Span::styled(handle(ch.client_port.handle), th.value()),
        Span::styled(" ══▶ ", th.label()),
        Span::styled(handle(ch.server_port.handle), th.value()),
        Span::styled(if narrow { "  ".to_string() } else { format!(" {}  ", t(l, "alpc_server")) }, th.label()),
        Span::styled(
            tf(
                l,
                "alpc_channel_queues",
                &[
                    ("main", ch.main_queue_depth.to_string()),
                    ("pending", ch.pending_depth.to_string()),
                    ("back", ch.client_queue.len().to_string()),
                ],
            ),
            if ch.main_queue_depth + ch.pending_depth > 0 { th.warn() } else { th.value() },
        ),
    ];
    if !ch.connected {
        first.push(Span::styled(format!("  {}", t(l, "alpc_disconnected")), th.bad()));
    }
    let mut out = vec![Line::from(first)];
    if two {
        let section = |id: Option<u64>| -> String {
            match id.and_then(|id| d.state.as_ref()?.sections.iter().find(|s| s.id == id)) {
                Some(s) if narrow => format!("{}/{}", widgets::bytes(s.bytes_in_use), widgets::bytes(s.size)),
                Some(s) => tf(
                    l,
                    "alpc_section_fill",
                    &[
                        ("size", widgets::bytes(s.size)),
                        ("used", widgets::bytes(s.bytes_in_use)),
                        ("maps", s.mapped_by.len().to_string()),
                    ],
                ),
                None => t(l, "alpc_none").to_string(),
            }
        };
        let granted = figures.is_some_and(|c| c.ptracer_granted)
            || d.state.as_ref().is_some_and(|s| {
                s.processes.iter().any(|p| {
                    p.client_id.unique_process == ch.client_port.owner.unique_process && p.direct_access_granted
                })
            });
        let mut second = vec![
            Span::raw(" ".repeat(10)),
            Span::styled(format!("{} c→s ", t(l, "alpc_section")), th.label()),
            Span::styled(section(ch.client_section), th.value()),
            Span::styled("  s→c ", th.label()),
            Span::styled(section(ch.server_section), th.value()),
            Span::styled(if narrow { "  ptracer " } else { "  PR_SET_PTRACER " }, th.label()),
            Span::styled(if granted { "✓" } else { "-" }, if granted { th.good() } else { th.dim() }),
        ];
        if let Some(c) = figures.filter(|c| c.callbacks_served > 0) {
            second.push(Span::styled(format!("  {} ", t(l, "alpc_callbacks")), th.label()));
            second.push(Span::styled(c.callbacks_served.to_string(), th.value()));
        }
        out.push(Line::from(second));
    }
    out
}

/// The three paths of the notes, with messages, bytes and a bar of each
/// path's share of the bytes moved.
fn path_lines(c: &PathCounters, width: usize, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let rows = [
        (t(l, "alpc_path_queue"), c.copied_messages, c.copied_bytes),
        (t(l, "alpc_path_section"), c.section_messages, c.section_bytes),
        (t(l, "alpc_path_direct"), c.direct_reads + c.direct_writes, c.direct_read_bytes + c.direct_write_bytes),
    ];
    let label_w = rows.iter().map(|r| widgets::display_width(r.0)).max().unwrap_or(10).max(10) + 1;
    let total: u64 = rows.iter().map(|r| r.2).sum();
    let bar_w = width.saturating_sub(label_w + 22).min(40);
    let mut out = vec![Line::from(Span::styled(
        format!(
            "{}{}{}",
            pad(t(l, "alpc_path"), label_w),
            rpad(t(l, "alpc_messages"), 10),
            rpad(t(l, "alpc_bytes"), 10)
        ),
        th.dim(),
    ))];
    for (label, msgs, bytes) in rows {
        let filled = (bytes as u128 * bar_w as u128).checked_div(total as u128).unwrap_or(0) as usize;
        let filled = if bytes > 0 { filled.max(1) } else { 0 };
        let busy = bytes > 0;
        out.push(Line::from(vec![
            Span::styled(pad(label, label_w), if busy { th.value() } else { th.label() }),
            Span::styled(format!("{:>10}", widgets::count(msgs)), th.value()),
            Span::styled(format!("{:>10} ", widgets::bytes(bytes)), th.value()),
            Span::styled("█".repeat(filled), th.gauge()),
            Span::styled("░".repeat(bar_w.saturating_sub(filled)), th.dim()),
        ]));
    }
    out
}

/// For small grid cells: the paths first (the lesson of the panel), then
/// the queues, the integrity line and the processes.
fn compact(m: &MechanismSnapshot, d: &AlpcDetail, area: Rect, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let c = totals(d);
    let mut lines = Vec::new();
    if d.state.is_none() {
        lines.push(kernel_down_line(m, view));
    } else {
        let pairs = [
            (t(l, "alpc_short_queue"), widgets::count(c.copied_messages)),
            (t(l, "alpc_short_section"), widgets::count(c.section_messages)),
            (t(l, "alpc_short_direct"), widgets::count(c.direct_reads + c.direct_writes)),
        ];
        lines.push(widgets::pairs_line(&pairs, view));
        let port = d.state.as_ref().and_then(|s| s.connection_ports.first());
        let channels = d.state.as_ref().map_or(0, |s| s.channels.len());
        lines.push(Line::from(Span::styled(
            tf(
                l,
                "alpc_compact_queues",
                &[
                    ("channels", channels.to_string()),
                    ("main", port.map_or(0, |p| p.main_queue.len()).to_string()),
                    ("pending", port.map_or(0, |p| p.pending_queue.len()).to_string()),
                ],
            ),
            th.label(),
        )));
    }
    lines.push(integrity_line(&m.integrity, view));
    let labels: Vec<_> = m.processes.iter().map(|p| (p, p.role.clone())).collect();
    lines.extend(widgets::process_lines(&labels, view));
    lines.extend(note_lines(&m.notes, 2, view));
    lines.truncate(area.height as usize);
    lines
}

/// The focused view's second pane: the object directory and the latest
/// `PORT_MESSAGE` headers on the left, the callback in flight and one RPC
/// call's trip through the layers on the right.
pub fn render_focus(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let Some(m) = snap.mechanism(Kind::Alpc) else { return };
    let Detail::Alpc(d) = &m.detail else { return };
    let l = view.lang;
    let th = view.theme;
    let [left, right] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let bordered = |title: &str| {
        Block::default()
            .borders(Borders::ALL)
            .border_style(th.border())
            .title(Span::styled(format!(" {title} "), th.title()))
    };

    // Left: the object directory, then the headers.
    let mut lines = Vec::new();
    if let Some(s) = &d.state {
        for e in &s.directory {
            let server = s
                .connection_ports
                .iter()
                .find(|p| p.id == e.port)
                .map(|p| format!("{} {}", role(d, p.server.unique_process), p.server.unique_process))
                .unwrap_or_default();
            lines.push(Line::from(vec![
                Span::styled(e.name.clone(), th.value()),
                Span::styled(format!("  ALPC Connection Port #{}  ({server})", e.port), th.label()),
            ]));
        }
    }
    lines.push(Line::from(Span::styled(
        format!(
            "{}  {}",
            pad(t(l, "alpc_by"), 11),
            "Type          DataLen TotalLen ClientId      MessageId CallbackId"
        ),
        th.dim(),
    )));
    for h in d.headers.iter().rev().take(6).rev() {
        let ty = h.header.type_name().unwrap_or("?");
        lines.push(Line::from(vec![
            Span::styled(format!("{}  ", pad(&h.by, 11)), th.label()),
            Span::raw(format!(
                "{:<13} {:>7} {:>8} {:<13} {:>9} {:>10}",
                ty,
                h.header.data_length,
                h.header.total_length,
                format!("{}.{}", h.header.client_id.unique_process, h.header.client_id.unique_thread),
                h.header.message_id,
                h.header.callback_id
            )),
        ]));
    }
    let title = format!("{} · PORT_MESSAGE", t(l, "alpc_directory"));
    f.render_widget(Paragraph::new(lines).block(bordered(&title)), left);

    // Right: the callback in flight, then the RPC call's layers.
    let mut lines = Vec::new();
    let inflight = d.state.as_ref().and_then(|s| s.callbacks.first());
    match inflight {
        Some(c) => lines.push(Line::from(Span::styled(
            tf(
                l,
                "alpc_callback_now",
                &[
                    ("id", c.message_id.to_string()),
                    ("cb", c.callback_id.to_string()),
                    ("server", role(d, c.server.unique_process)),
                    ("client", role(d, c.client.unique_process)),
                ],
            ),
            th.warn(),
        ))),
        None => lines.push(Line::from(Span::styled(
            tf(
                l,
                "alpc_callback_none",
                &[("n", d.server.callbacks_ok.to_string()), ("on", if d.callbacks { "on" } else { "off" }.to_string())],
            ),
            th.dim(),
        ))),
    }
    for step in &d.rpc {
        let arrow = match step.direction {
            Direction::Down => "↓",
            Direction::Up => "↑",
        };
        let layer = match step.layer {
            RpcLayer::Application => t(l, "alpc_layer_app"),
            RpcLayer::Stub => t(l, "alpc_layer_stub"),
            RpcLayer::Runtime => t(l, "alpc_layer_runtime"),
            RpcLayer::Alpc => "ALPC",
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{arrow} {} ", pad(layer, 11)), th.label()),
            Span::raw(step.detail.clone()),
        ]));
    }
    let title = if d.rpc_by.is_empty() {
        t(l, "alpc_rpc_title").to_string()
    } else {
        format!("{} · {}", t(l, "alpc_rpc_title"), d.rpc_by)
    };
    f.render_widget(Paragraph::new(lines).block(bordered(&title)).wrap(Wrap { trim: false }), right);
}

/// `s` right-aligned in `w` columns of display width.
fn rpad(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(widgets::display_width(s))))
}

/// Sentences for the lesson pane about what ALPC shows now.
pub fn observe(m: &MechanismSnapshot, d: &AlpcDetail, lang: crate::i18n::Lang) -> Vec<String> {
    let mut out = Vec::new();
    let Some(state) = &d.state else { return out };
    out.push(tf(lang, "obs_alpc_channels", &[("n", state.channels.len().to_string())]));
    // Which path carries the traffic: the one that moved the most bytes.
    let c = state.totals;
    let paths = [
        ("obs_alpc_path_queue", c.copied_messages, c.copied_bytes),
        ("obs_alpc_path_section", c.section_messages, c.section_bytes),
        ("obs_alpc_path_direct", c.direct_reads, c.direct_read_bytes + c.direct_write_bytes),
    ];
    if let Some((key, n, bytes)) = paths.iter().filter(|p| p.2 > 0).max_by_key(|p| p.2) {
        out.push(tf(
            lang,
            key,
            &[("n", n.to_string()), ("bytes", widgets::kib(*bytes)), ("max", d.small_max.to_string())],
        ));
    }
    if m.channel.depth > 0 {
        out.push(tf(lang, "obs_alpc_waiting", &[("n", m.channel.depth.to_string())]));
    }
    if d.server.refused > 0 {
        out.push(tf(lang, "obs_alpc_refused", &[("n", d.server.refused.to_string())]));
    }
    if d.server.callbacks_ok > 0 {
        out.push(tf(lang, "obs_alpc_callbacks", &[("n", d.server.callbacks_ok.to_string())]));
    }
    out
}
