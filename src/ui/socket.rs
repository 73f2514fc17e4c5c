//! The socket panel:
//!
//! ```text
//! ┌ 7  sockets  listen / accept / connect: Unix path or TCP 127.0.0.1:port ─┐
//! │╭ client-1 ╮ send() ╔ kernel socket buffers ╗ recv() ╭ server ╮           │
//! ││ pid 4121 │ ─────▶ ║█████████░ 60K/64K     ║ ─────▶ │ pid    │           │
//! ││ S BLOCKED│        ║▁▂▄▆██ recv-q 32K      ║        │ S poll │           │
//! │╰──────────╯        ╚═══════════════════════╝        ╰────────╯           │
//! │ listening 127.0.0.1:40123 (TCP)  backlog 0/16  3 processes use it         │
//! │ role      fd state       local             peer              recv-q send-q│
//! │ server     3 LISTEN      127.0.0.1:40123   -                      0     16│
//! │ delivered 1200  lost 0 …                                                  │
//! └───────────────────────────────────────────────────────────────────────────┘
//! ```
//! Small cells get a compact, line-by-line version of the same facts.
//!
//! `render_endpoints` is the comparison view (the notes' "IPC port vs
//! network port" table, filled from the live run): every endpoint running
//! now, who can reach it, who manages its identifier, how many processes
//! hold it. It is drawn under the panel when the panel is focused.

use std::collections::HashSet;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::widgets::{
    self, bytes, integrity_line, note_lines, pad, pad_left_cut, process_box, process_line, GaugeWords,
};
use super::View;
use crate::i18n::t;
use crate::model::detail::socket::{Family, SocketDetail, SocketEntry};
use crate::model::snapshot::{Detail, MechanismSnapshot, Op, Role, Snapshot};
use crate::model::Kind;

pub fn render(
    f: &mut Frame,
    area: Rect,
    m: &MechanismSnapshot,
    d: &SocketDetail,
    n: usize,
    selected: bool,
    view: &View,
) {
    let l = view.lang;
    let inner = widgets::panel(f, area, n, t(l, "sock_title"), t(l, "sock_sub"), selected, view);
    if widgets::roomy(inner) {
        full(f, inner, m, d, view);
    } else {
        compact(f, inner, m, d, view);
    }
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &SocketDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    // The socket list before the knobs line.
    let table_h = (d.sockets.len() as u16 + 1).min(area.height.saturating_sub(11).max(2));
    let listeners = d.sockets.iter().filter(|s| s.listening()).count().max(1) as u16;
    let rows = Layout::vertical([
        Constraint::Length(8),
        Constraint::Length(listeners),
        Constraint::Length(table_h),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .split(area);
    let (left, bi, right) = widgets::flow_diagram(f, rows[0], ("send()", "recv()"), t(l, "sock_buffers"), view);

    let clients: Vec<_> = m.processes.iter().skip(1).collect();
    if let [c] = clients.as_slice() {
        let title = format!("{} (connect)", c.role);
        process_box(f, left, c, &title, view);
    } else {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_type(BorderType::Rounded)
            .title(Span::styled(format!(" {} ({}) ", t(l, "sock_clients"), clients.len()), th.title()));
        let inner = block.inner(left);
        f.render_widget(block, left);
        let lines: Vec<Line> = clients.iter().map(|c| process_line(c, &short_role(&c.role), view)).collect();
        f.render_widget(Paragraph::new(lines), inner);
    }
    if let Some(s) = m.processes.first() {
        let title = format!("{} (listen)", s.role);
        process_box(f, right, s, &title, view);
    }
    let gauge = gauge(m, bi.width, view);
    let queue = queue_line(d, true, view);
    // Narrow: the gauge's label under its bar; the caption and the
    // sparkline give way (the label names the unit).
    let narrow = gauge.len() > 1 || queue.width() > bi.width as usize;
    let mut lines = Vec::new();
    if !narrow {
        lines.push(Line::from(Span::styled(t(l, "sock_sndbuf"), th.label())));
    }
    lines.extend(gauge);
    if !narrow {
        lines.push(widgets::sparkline(&m.history, m.channel.capacity, bi.width as usize, view));
    }
    if queue.width() > bi.width as usize {
        // One queue a line, without the word `payload`.
        let mut spans = queue_line(d, false, view).spans.into_iter();
        let first: Vec<_> = spans.by_ref().take(2).collect();
        lines.push(Line::from(first));
        let rest: Vec<_> = spans.map(|s| Span::styled(s.content.trim_start().to_string(), s.style)).collect();
        if !rest.is_empty() {
            lines.push(Line::from(rest));
        }
    } else {
        lines.push(queue);
    }
    if is_full(m) {
        lines.push(Line::from(Span::styled(t(l, "sock_blocked"), th.bad())));
    }
    f.render_widget(Paragraph::new(lines), bi);

    f.render_widget(Paragraph::new(endpoint_lines(d, view)), rows[1]);
    f.render_widget(Paragraph::new(socket_table(d, rows[2].width as usize, view)), rows[2]);
    f.render_widget(Paragraph::new(integrity_line(&m.integrity, view)), rows[3]);
    let mut bottom = note_lines(&m.notes, rows[4].height as usize, view);
    if bottom.is_empty() {
        let knobs = m.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("  ");
        bottom.push(Line::from(Span::styled(knobs, th.dim())));
    }
    f.render_widget(Paragraph::new(bottom).wrap(Wrap { trim: false }), rows[4]);
}

fn is_full(m: &MechanismSnapshot) -> bool {
    m.channel.full()
}

/// The clients' send-buffer memory against `SO_SNDBUF`, the unit named:
/// what `send()` blocks on, with the kernel's overshoot counted apart.
fn gauge(m: &MechanismSnapshot, width: u16, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let unit = [t(l, "sock_gauge_unit"), t(l, "sock_gauge_unit_short"), t(l, "sock_gauge_unit_shortest")];
    widgets::gauge_words(&m.channel, width, GaugeWords { unit: &unit, over: None, wrap: true }, view)
}

/// `client-2` → `c2` where room is short.
fn short_role(role: &str) -> String {
    match Role::parse(role) {
        Role::Client(n) => format!("c{n}"),
        _ => role.to_string(),
    }
}

/// Payload waiting (the bytes the programs sent, no overhead): in the
/// server's receive queues (and, for TCP, in the clients' send queues).
fn queue_line(d: &SocketDetail, payload_word: bool, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let word = if payload_word { format!("{} ", t(l, "sock_payload")) } else { String::new() };
    let mut spans = vec![
        Span::styled(format!("{word}{} ", t(l, "sock_recvq")), th.label()),
        Span::styled(bytes(d.recv_payload), th.value()),
    ];
    if d.sockets.iter().any(|s| s.family == Family::Tcp) {
        spans.push(Span::styled(format!("  {} ", t(l, "sock_sendq")), th.label()));
        spans.push(Span::styled(bytes(d.send_payload), th.value()));
    }
    Line::from(spans)
}

/// The listening endpoint(s), one line each: the path or the port,
/// backlog, how many processes use it.
fn endpoint_lines(d: &SocketDetail, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let mut lines: Vec<Line> = d
        .sockets
        .iter()
        .filter(|s| s.listening())
        .map(|s| {
            let users = if s.family == Family::Tcp { d.port_users } else { d.path_users };
            Line::from(vec![
                Span::styled(format!("{} ", t(l, "sock_listening")), th.label()),
                Span::styled(s.local.clone(), th.value()),
                Span::styled(
                    format!(
                        " ({})  {} {}/{}  {} {}",
                        s.family.label(),
                        t(l, "sock_backlog"),
                        s.recv_q,
                        s.send_q,
                        t(l, "sock_users"),
                        users
                    ),
                    th.dim(),
                ),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(t(l, "sock_no_listener"), th.warn())));
    }
    lines
}

/// Every socket our processes hold, as `ss` would list them.
fn socket_table(d: &SocketDetail, width: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    // role fd state local peer recv-q send-q
    let fixed = 9 + 1 + 3 + 1 + 11 + 1 + 1 + 8 + 8;
    let addr_w = width.saturating_sub(fixed) / 2;
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{}{:>3} {} {} {} {}{}",
            pad(t(l, "sock_role"), 9),
            "fd",
            pad(t(l, "sock_state"), 11),
            pad(t(l, "sock_local"), addr_w),
            pad(t(l, "sock_peer"), addr_w),
            pad_right(t(l, "sock_recvq"), 8),
            pad_right(t(l, "sock_sendq"), 8),
        ),
        th.label(),
    ))];
    // Listeners, then each connection's two ends side by side (client,
    // then the server's accepted socket), so a short table still shows
    // one whole connection.
    let mut socks: Vec<&SocketEntry> = d.sockets.iter().collect();
    socks.sort_by_key(|s| {
        let client = if s.server_side() { s.peer_role.clone().unwrap_or_default() } else { s.role.clone() };
        (!s.listening(), client, s.server_side(), s.fd)
    });
    for s in socks {
        lines.push(socket_row(s, addr_w, view));
    }
    lines
}

/// Right-aligned by display width.
fn pad_right(s: &str, w: usize) -> String {
    let used = unicode_width::UnicodeWidthStr::width(s);
    if used >= w {
        return pad(s, w);
    }
    format!("{}{s}", " ".repeat(w - used))
}

fn socket_row(s: &SocketEntry, addr_w: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let local = if s.local.is_empty() { "(unnamed)".to_string() } else { s.local.clone() };
    let peer = match (&s.peer_role, s.peer.is_empty()) {
        (Some(r), true) => short_role(r),
        (Some(r), false) => {
            let full = format!("{} {}", short_role(r), s.peer);
            match s.peer_port {
                // Narrow: who it is matters more than the address.
                Some(port) if full.len() > addr_w => format!("{} :{port}", short_role(r)),
                _ => full,
            }
        }
        (None, true) => "-".into(),
        (None, false) => s.peer.clone(),
    };
    let state_style = if s.listening() {
        th.title()
    } else if s.established() {
        th.good()
    } else {
        th.warn()
    };
    Line::from(vec![
        Span::raw(pad(&s.role, 9)),
        Span::styled(format!("{:>3} ", s.fd), th.dim()),
        Span::styled(pad(&s.state, 11), state_style),
        Span::raw(" "),
        Span::styled(pad_left_cut(&local, addr_w), th.value()),
        Span::raw(" "),
        Span::raw(pad_left_cut(&peer, addr_w)),
        Span::styled(format!("{:>8}", s.recv_q), th.value()),
        Span::styled(format!("{:>8}", s.send_q), th.value()),
    ])
}

/// For small grid cells: the same facts, one per line, most important first.
fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &SocketDetail, view: &View) {
    let th = view.theme;
    let w = area.width as usize;
    // A full gauge shows red, and the blocked client comes right below.
    let mut lines = gauge(m, area.width, view);
    lines.extend(d.sockets.iter().filter(|s| s.listening()).map(|s| {
        // `TCP 127.0.0.1:40123 0/16`: the endpoint and its backlog.
        let tail = format!(" {}/{}", s.recv_q, s.send_q);
        let fam = format!("{} ", s.family.label());
        let room = w.saturating_sub(fam.len() + tail.len());
        Line::from(vec![
            Span::styled(fam, th.label()),
            Span::styled(pad_left_cut(&s.local, room), th.value()),
            Span::styled(tail, th.dim()),
        ])
    }));
    // A blocked client first: that is the thing to see.
    let mut clients: Vec<_> = m.processes.iter().skip(1).collect();
    clients.sort_by_key(|p| !(p.sleeping() && p.op_kind() == Op::Send));
    for c in clients {
        lines.push(process_line(c, &short_role(&c.role), view));
    }
    if let Some(s) = m.processes.first() {
        lines.push(process_line(s, &s.role, view));
    }
    lines.push(queue_line(d, true, view));
    lines.push(integrity_line(&m.integrity, view));
    lines.extend(note_lines(&m.notes, 2, view));
    // Room to spare: the connected sockets, `ss` style.
    for s in d.sockets.iter().filter(|s| !s.listening()) {
        let head = format!("{:<6} {:<5} ", short_role(&s.role), &s.state[..s.state.len().min(5)]);
        let tail = format!(" {}/{}", s.recv_q, s.send_q);
        let local = if s.local.is_empty() { "(unnamed)" } else { &s.local };
        let room = w.saturating_sub(head.len() + tail.len());
        lines.push(Line::from(vec![
            Span::styled(head, th.label()),
            Span::raw(pad_left_cut(local, room)),
            Span::styled(tail, th.dim()),
        ]));
    }
    lines.truncate(area.height as usize);
    f.render_widget(Paragraph::new(lines), area);
}

// ------------------------------------------------------ comparison view

/// One endpoint of the comparison view, read from the live snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Label keys: the kind of endpoint, who can reach it, who manages its
    /// identifier.
    pub kind: &'static str,
    pub id: String,
    pub reach: &'static str,
    pub manager: &'static str,
    /// Processes holding it open (None when not running).
    pub users: Option<u64>,
}

/// Distinct processes of `m` with a descriptor whose target satisfies `f`,
/// and the first such target.
fn fd_holders(m: &MechanismSnapshot, f: impl Fn(&str) -> bool) -> Option<(String, u64)> {
    let mut first = None;
    let mut pids = HashSet::new();
    for p in m.processes.iter().filter(|p| p.alive()) {
        for e in &p.fds {
            if f(&e.target) {
                first.get_or_insert_with(|| e.target.clone());
                pids.insert(p.pid);
            }
        }
    }
    first.map(|t| (t, pids.len() as u64))
}

/// The endpoints of every mechanism running in `snap`, in the order of the
/// notes' table: IPC ports first, network ports last.
pub fn endpoints(snap: &Snapshot) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let not_running = |kind, reach, manager| Endpoint { kind, id: String::new(), reach, manager, users: None };
    // Mach: the emulated kernel's per-task names (its panel lists them).
    out.push(match snap.mechanism(Kind::Mach) {
        Some(m) => Endpoint {
            kind: "ep_mach",
            id: "-".into(),
            reach: "reach_task",
            manager: "mgr_mach",
            users: Some(m.processes.iter().filter(|p| p.alive()).count() as u64),
        },
        None => not_running("ep_mach", "reach_task", "mgr_mach"),
    });
    // A POSIX queue's descriptor reads back as its name, `/NAME`.
    let mq = snap.mechanism(Kind::Mq).map(|m| {
        fd_holders(m, |t| t.starts_with('/') && t[1..].find('/').is_none()).unwrap_or_else(|| ("-".into(), 0))
    });
    out.push(match mq {
        Some((id, users)) => {
            Endpoint { kind: "ep_mq", id, reach: "reach_name", manager: "mgr_mqueue", users: Some(users) }
        }
        None => not_running("ep_mq", "reach_name", "mgr_mqueue"),
    });
    // A FIFO's descriptor reads back as its path in the run dir.
    let dir = snap.run.runtime_dir.clone();
    let fifo = snap.mechanism(Kind::Fifo).map(|m| {
        fd_holders(m, |t| !dir.is_empty() && t.starts_with(&dir) && !t.ends_with(".log"))
            .unwrap_or_else(|| ("-".into(), 0))
    });
    out.push(match fifo {
        Some((id, users)) => {
            Endpoint { kind: "ep_fifo", id, reach: "reach_path", manager: "mgr_fs", users: Some(users) }
        }
        None => not_running("ep_fifo", "reach_path", "mgr_fs"),
    });
    let sock = snap.mechanism(Kind::Socket).and_then(|m| match &m.detail {
        Detail::Socket(d) => Some(d),
        _ => None,
    });
    out.push(match sock.and_then(|d| d.path.clone().map(|p| (p, d.path_users))) {
        Some((id, users)) => {
            Endpoint { kind: "ep_unix", id, reach: "reach_path", manager: "mgr_fs", users: Some(users) }
        }
        None => not_running("ep_unix", "reach_path", "mgr_fs"),
    });
    let tcp = sock.and_then(|d| {
        let l = d.sockets.iter().find(|s| s.family == Family::Tcp && s.listening())?;
        Some((l.clone(), d.port_users))
    });
    out.push(match tcp {
        Some((l, users)) => Endpoint {
            kind: "ep_tcp",
            id: l.local_port.map(|p| p.to_string()).unwrap_or_default(),
            // What the bound address allows, as observed.
            reach: if l.loopback() { "reach_loopback" } else { "reach_host" },
            manager: "mgr_tcp",
            users: Some(users),
        },
        None => not_running("ep_tcp", "reach_host", "mgr_tcp"),
    });
    out
}

/// The comparison view, drawn under the focused socket panel.
pub fn render_endpoints(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let l = view.lang;
    let th = view.theme;
    // Short of room (a small screen): no border, the title on the header
    // row, running endpoints first.
    let roomy = area.height >= ENDPOINTS_HEIGHT;
    let inner = if roomy {
        let block =
            Block::default().borders(Borders::ALL).title(Span::styled(format!(" {} ", t(l, "ep_title")), th.title()));
        let inner = block.inner(area);
        f.render_widget(block, area);
        inner
    } else {
        area
    };
    let mut eps = endpoints(snap);
    if !roomy {
        eps.sort_by_key(|e| e.users.is_none());
    }
    // The cells as text: kind | identifier | reach | managed by | open by.
    let header = [
        t(l, "ep_kind").to_string(),
        t(l, "ep_id").to_string(),
        t(l, "ep_reach").to_string(),
        t(l, "ep_manager").to_string(),
        t(l, "ep_users").to_string(),
    ];
    let rows: Vec<[String; 5]> = eps
        .iter()
        .map(|e| {
            let id = if e.users.is_some() { e.id.clone() } else { t(l, "ep_not_running").to_string() };
            [
                t(l, e.kind).to_string(),
                id,
                t(l, e.reach).to_string(),
                t(l, e.manager).to_string(),
                e.users.map_or_else(|| "-".to_string(), |n| n.to_string()),
            ]
        })
        .collect();
    let widths = column_widths(&header, &rows, inner.width as usize);
    let cells = |r: &[String; 5]| -> Vec<String> {
        r.iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| if i == 1 { pad_left_cut(c, w) } else { pad(c, w) })
            .collect()
    };
    let mut lines = vec![Line::from(Span::styled(cells(&header).join(" "), th.label()))];
    for (e, r) in eps.iter().zip(&rows) {
        let style = if e.users.is_some() { th.value() } else { th.dim() };
        let c = cells(r);
        let mut spans = vec![Span::styled(c[0].clone(), th.label())];
        for cell in &c[1..] {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(cell.clone(), style));
        }
        lines.push(Line::from(spans));
    }
    lines.truncate(inner.height as usize);
    f.render_widget(Paragraph::new(lines), inner);
}

/// Rows the comparison view needs, borders included.
pub const ENDPOINTS_HEIGHT: u16 = 8;

/// Column widths for the comparison table: each column as wide as its
/// widest cell; when the row is too wide for `total`, the widest of the
/// text columns (identifier, reach, manager) gives up columns first.
fn column_widths(header: &[String; 5], rows: &[[String; 5]], total: usize) -> [usize; 5] {
    let width = unicode_width::UnicodeWidthStr::width;
    let mut w = [0; 5];
    for r in std::iter::once(header).chain(rows) {
        for (wi, c) in w.iter_mut().zip(r) {
            *wi = (*wi).max(width(c.as_str()));
        }
    }
    let room = total.saturating_sub(4);
    while w.iter().sum::<usize>() > room {
        let Some(i) = (1..4).max_by_key(|&i| w[i]) else { break };
        if w[i] <= 6 {
            break;
        }
        w[i] -= 1;
    }
    w
}

/// Sentences for the lesson pane about what the snapshot shows now.
pub fn observe(m: &MechanismSnapshot, d: &SocketDetail, lang: crate::i18n::Lang) -> Vec<String> {
    use crate::i18n::tf;
    let mut out = Vec::new();
    let Some(server) = m.processes.first() else { return out };
    let clients = &m.processes[1..];
    if server.exit.is_some() {
        out.push(t(lang, "obs_sock_server_gone").into());
    }
    for l in d.sockets.iter().filter(|s| s.listening()) {
        if l.family == Family::Unix {
            out.push(tf(lang, "obs_sock_path", &[("path", l.local.clone()), ("n", d.path_users.to_string())]));
        } else if let Some(port) = l.local_port {
            let ip = l.local_ip.clone().unwrap_or_default();
            let key = if l.loopback() { "obs_sock_port_local" } else { "obs_sock_port_any" };
            out.push(tf(lang, key, &[("ip", ip), ("port", port.to_string()), ("n", d.port_users.to_string())]));
        }
        if l.recv_q > 0 {
            out.push(tf(lang, "obs_sock_pending", &[("n", l.recv_q.to_string()), ("b", l.send_q.to_string())]));
        }
    }
    let conns: Vec<String> = d
        .sockets
        .iter()
        .filter(|s| s.server_side() && s.established())
        .filter_map(|s| s.peer_role.as_ref().map(|r| format!("{r} ({})", s.family.label())))
        .collect();
    if conns.len() > 1 {
        out.push(tf(lang, "obs_sock_conns", &[("n", conns.len().to_string()), ("who", conns.join(", "))]));
    }
    let blocked: Vec<&str> = clients
        .iter()
        .filter(|p| p.alive() && p.op_kind() == Op::Send && p.blocked())
        .map(|p| p.role.as_str())
        .collect();
    let rate: f64 = clients.iter().filter(|p| p.alive()).map(|p| p.send_rate).sum();
    if !blocked.is_empty() {
        out.push(tf(lang, "obs_sock_blocked", &[("who", blocked.join(", ")), ("recv", bytes(d.recv_payload))]));
    } else if rate > 0.0 && server.alive() {
        out.push(tf(lang, "obs_sock_flow", &[("n", clients.len().to_string()), ("rate", widgets::rate(rate))]));
    }
    out
}
