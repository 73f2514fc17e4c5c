//! The socket panel: the notes' figure of a server's port and its clients.
//!
//! ```text
//! listen: UNIX …/4120/sock · TCP 127.0.0.1:40123 · backlog 0/16
//! client-1 ■ ─▶ ██████████████ 64.0K/64.0K ─▶ fd 5 ─┐
//! client-2 ■ ─▶ ██████████████ 64.0K/64.0K ─▶ fd 6 ─┴▶ · server
//! bar: send-buffer memory (SO_SNDBUF), what send() blocks on
//! ■ client-1: BLOCKED: buffer full
//! ```
//! The listening endpoints (a path: the IPC side of the notes' table; an
//! address and port: the network side) are where clients connect;
//! `accept()` gives the server one connected socket per client (`fd 5`),
//! and each connection is an arrow whose bar is its client's send-buffer
//! memory against `SO_SNDBUF` — the quantity `send()` blocks on — never
//! drawn past full (the kernel's overshoot is counted apart).
//!
//! Levels by the room inside the frame: tiny (≤ 4 rows) the connections
//! and the listener one row each; compact the figure and the facts below,
//! most telling first; full (`widgets::roomy`) the server's box, the
//! listener's box, each connection's queues, and the sockets as `ss` lists
//! them.
//!
//! `render_endpoints` is the comparison view (the notes' "IPC port vs
//! network port" table, filled from the live run): every endpoint running
//! now, who can reach it, who manages its identifier, how many processes
//! hold it. It is drawn under the panel when the panel is focused.

use std::collections::HashSet;

use super::widgets::Boxed;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::BorderType;
use ratatui::Frame;

use super::fit::{self, Item};
use super::measured;
use super::widgets::{self, bytes, display_width, GaugeWords, Row};
use super::View;
use crate::i18n::t;
use crate::model::detail::socket::{Family, RemoteDetail, SocketDetail, SocketEntry};
use crate::model::figures::Party;
use crate::model::snapshot::{Channel, Detail, MechanismSnapshot, Op, ProcessSnapshot, Role, Snapshot, Unit};
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
    let title = t(l, "sock_title");
    let sub = widgets::panel_sub(area.width, n, title, &[t(l, "sock_sub"), t(l, "sock_sub_short")]);
    let inner = widgets::panel(f, area, n, title, sub, selected, view);
    if inner.height <= 4 {
        tiny(f, inner, m, d, view);
    } else if widgets::roomy(inner) {
        full(f, inner, m, d, view);
    } else {
        compact(f, inner, m, d, view);
    }
}

/// One client's connection: its process, its socket, the server's
/// accepted socket at the other end.
struct Conn<'a> {
    client: &'a ProcessSnapshot,
    mine: Option<&'a SocketEntry>,
    accepted: Option<&'a SocketEntry>,
}

impl Conn<'_> {
    /// The client's send-buffer memory against its SO_SNDBUF: what send()
    /// blocks on, split at the limit.
    fn channel(&self) -> Option<Channel> {
        let s = self.mine?;
        Some(Channel::split(s.send_mem?, s.sndbuf?, Unit::Bytes))
    }
}

fn conns<'a>(m: &'a MechanismSnapshot, d: &'a SocketDetail) -> Vec<Conn<'a>> {
    m.processes
        .iter()
        .skip(1)
        .map(|c| {
            let mine = d.sockets.iter().find(|s| s.role == c.role && !s.listening());
            // The same family as its own socket: a remote client holds a
            // second, idle connection to the path.
            let accepted = d.sockets.iter().find(|s| {
                s.server_side()
                    && s.peer_role.as_deref() == Some(c.role.as_str())
                    && mine.is_none_or(|m| m.family == s.family)
            });
            Conn { client: c, mine, accepted }
        })
        .collect()
}

/// `client-2` → `c2` where room is short.
fn short_role(role: &str, lang: crate::i18n::Lang) -> String {
    match Role::parse(role) {
        Role::Client(n) => crate::i18n::tf(lang, "sock_client_short", &[("n", n.to_string())]),
        _ => widgets::role_name(role, lang),
    }
}

/// A client's name in the reader's language: `client-1` / `클라이언트-1`.
fn client_name(role: &str, view: &View) -> String {
    match Role::parse(role) {
        Role::Client(n) => format!("{}-{n}", t(view.lang, "sock_client")),
        _ => role.to_string(),
    }
}

fn party_of(p: Option<&ProcessSnapshot>) -> Party {
    p.map_or(Party::NotStarted, |p| p.party(false))
}

fn mark(party: Party, view: &View) -> Span<'static> {
    Span::styled(widgets::party_mark(party), view.theme.party(party))
}

fn spans_width(s: &[Span]) -> usize {
    s.iter().map(|x| display_width(&x.content)).sum()
}

/// The connection rows of the figure, `room` wide: each client's name and
/// mark, an arrow, its send-buffer bar and numbers, an arrow to the
/// server's accepted socket (`fd 5`), all joined into the server on the
/// last row. A projector draws each bar twice as thick. `None` when not
/// even the shortest form fits.
fn conn_rows(
    m: &MechanismSnapshot,
    d: &SocketDetail,
    room: usize,
    view: &View,
) -> Option<Vec<(u8, Vec<Line<'static>>)>> {
    let th = view.theme;
    let l = view.lang;
    let cs = conns(m, d);
    let server = m.processes.first();
    let server_name = t(l, "sock_server");
    let n = cs.len();
    let unit_forms = [t(l, "sock_gauge_unit_short"), t(l, "sock_gauge_unit_shortest")];
    // (long names, pids, fd labels, server name, unit words)
    let forms = [
        (true, true, true, true, true),
        (true, false, true, true, true),
        (true, false, true, true, false),
        (false, false, true, true, false),
        (false, false, false, true, false),
        (false, false, false, false, false),
    ];
    'form: for (long, pids, fds, sname, unit) in forms {
        let name_of = |c: &Conn| {
            let mut s = if long { client_name(&c.client.role, view) } else { short_role(&c.client.role, l) };
            if pids && c.client.pid > 0 {
                s = format!("{s} {}", c.client.pid);
            }
            s
        };
        let name_w = cs.iter().map(|c| display_width(&name_of(c))).max().unwrap_or(0);
        let fd_of = |c: &Conn| c.accepted.map(|a| format!("fd {}", a.fd)).unwrap_or_else(|| "-".into());
        let fd_w = if fds { cs.iter().map(|c| display_width(&fd_of(c))).max().unwrap_or(0) + 2 } else { 0 };
        let server_part = if sname {
            vec![Span::raw(" "), mark(party_of(server), view), Span::styled(format!(" {server_name}"), th.title())]
        } else {
            vec![Span::raw(" "), mark(party_of(server), view)]
        };
        // name ␣ mark ␣─▶␣ [bar label] ␣─▶ fd ─┐ server
        let left_w = name_w + 1 + 1 + 4;
        let right_w = 3 + fd_w + 2 + 1 + spans_width(&server_part);
        // The bars are part of the figure, not wider than it needs.
        let Some(mid) = room.checked_sub(left_w + right_w).map(|w| w.min(MAX_BAR_LABEL)) else { continue };
        let mut rows = Vec::new();
        for (i, c) in cs.iter().enumerate() {
            let last = i + 1 == n;
            let mut lines = Vec::new();
            let gauge = match c.channel() {
                Some(ch) => {
                    let words = GaugeWords { unit: if unit { &unit_forms } else { &[""] }, over: None, wrap: false };
                    let g = widgets::gauge_words(&ch, mid as u16, words, view).swap_remove(0);
                    let bar = g
                        .spans
                        .iter()
                        .map(|s| s.content.chars().filter(|&c| c == '█' || c == '░').count())
                        .sum::<usize>();
                    // A bar too short to read: a shorter form gives it room.
                    if fit::line_width(&g) > mid || (bar < MIN_BAR && sname) {
                        continue 'form;
                    }
                    g
                }
                None => Line::from(Span::styled("-", th.dim())),
            };
            let mut row = Row::new(room);
            let name = name_of(c);
            row.put(0, vec![Span::styled(name.clone(), th.title())]);
            row.put(name_w + 1, vec![mark(c.client.party(false), view), Span::styled(" ─▶ ", th.label())]);
            row.put(left_w, gauge.spans.clone());
            let mut x = left_w + mid;
            row.put(x, vec![Span::styled(" ─▶", th.label())]);
            x += 3;
            if fds {
                row.put(x, vec![Span::styled(format!(" {}", fd_of(c)), th.value())]);
                x += fd_w;
            }
            let join = match (n, i, last) {
                (1, _, _) => "──",
                (_, 0, _) => "─┐",
                (_, _, true) => "─┴",
                _ => "─┤",
            };
            row.put(x, vec![Span::styled(join, th.label())]);
            if last {
                let mut sp = vec![Span::styled("▶", th.label())];
                sp.extend(server_part.clone());
                row.put(x + 2, sp);
            }
            lines.push(row.line());
            // A projector's thicker bar, the join going on beside it.
            for _ in 1..th.gauge_rows() {
                let mut thick = Row::new(room);
                let bar: Vec<Span<'static>> = gauge
                    .spans
                    .iter()
                    .take_while(|s| s.content.chars().all(|ch| "█░▒ ".contains(ch)))
                    .cloned()
                    .collect();
                thick.put(left_w, bar);
                if !last {
                    thick.put(x + 1, vec![Span::styled("│", th.label())]);
                }
                lines.push(thick.line());
            }
            let loud = c.client.party(false) == Party::BlockedFull;
            rows.push((if loud { 0 } else { 1 }, lines));
        }
        return Some(rows);
    }
    None
}

/// Columns of a connection's bar and its label at most.
const MAX_BAR_LABEL: usize = 60;
/// Columns of bar a connection row keeps before its words give way.
const MIN_BAR: usize = 12;

/// The listening endpoints as whole items: `listen: UNIX …/sock · TCP
/// 127.0.0.1:40123 · backlog 0/16`. The network port kept longest.
fn listen_row(d: &SocketDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let listeners: Vec<&SocketEntry> = d.sockets.iter().filter(|s| s.listening()).collect();
    if listeners.is_empty() {
        return Line::from(Span::styled(t(l, "sock_no_listener"), th.warn()));
    }
    let label = format!("{}: ", t(l, "sock_listen"));
    let backlog = |s: &SocketEntry| format!("{} {}/{}", t(l, "sock_backlog"), s.recv_q, s.send_q);
    let same_backlog = listeners.windows(2).all(|w| (w[0].recv_q, w[0].send_q) == (w[1].recv_q, w[1].send_q));
    // Paths lose leading components until the row fits.
    for path_room in [usize::MAX, 40, 28, 20, 12, 8] {
        let mut items = Vec::new();
        for (k, s) in listeners.iter().enumerate() {
            let addr = if s.family == Family::Unix {
                widgets::short_path(&s.local, path_room.min(room)).unwrap_or_default()
            } else {
                s.local.clone()
            };
            let mut spans =
                vec![Span::styled(format!("{} ", s.family.label()), th.label()), Span::styled(addr, th.value())];
            if k == 0 {
                spans.insert(0, Span::styled(label.clone(), th.label()));
            }
            if !same_backlog {
                spans.push(Span::styled(format!(" {}", backlog(s)), th.dim()));
            }
            items.push(Item::new(if s.family == Family::Tcp { 0 } else { 1 }, spans));
        }
        if same_backlog {
            items.push(Item::text(2, backlog(listeners[0]), th.dim()));
        }
        let total: usize = items.iter().map(|i| spans_width(&i.spans) + 3).sum::<usize>() - 3;
        if total <= room || path_room == 8 {
            return fit::row(items, " · ", room, view);
        }
    }
    Line::default()
}

/// What the bars measure, in the longest words that fit.
fn legend(room: usize, view: &View) -> Option<Line<'static>> {
    let l = view.lang;
    fit::first_fit(&[t(l, "sock_legend"), t(l, "sock_legend_short")], room)
        .map(|s| Line::from(Span::styled(s.to_string(), view.theme.dim())))
}

/// Each process's part as a line, the blocked ones kept longest.
fn party_lines(m: &MechanismSnapshot, room: usize, view: &View) -> Vec<(u8, Vec<Line<'static>>)> {
    let mut out = Vec::new();
    for (i, p) in m.processes.iter().enumerate() {
        let name = if i == 0 { t(view.lang, "sock_server").to_string() } else { client_name(&p.role, view) };
        let loud = matches!(p.party(false), Party::BlockedFull | Party::StepHeld | Party::Paused | Party::Exited);
        if let Some(line) = widgets::party_line(p, &name, room, view) {
            out.push((if loud { 1 } else { 2 }, vec![line]));
        }
    }
    out
}

/// Each connection's queues in payload bytes: `client-1 UNIX recv-q 13.0K
/// send-q 0` (the receive queue at the server's end; TCP's send queue at
/// the client's: bytes not yet acknowledged).
fn queue_lines(m: &MechanismSnapshot, d: &SocketDetail, room: usize, view: &View) -> Vec<(u8, Vec<Line<'static>>)> {
    let th = view.theme;
    let l = view.lang;
    conns(m, d)
        .iter()
        .map(|c| {
            let mut items = vec![Item::text(0, client_name(&c.client.role, view), th.label())];
            if let Some(s) = c.mine {
                items.push(Item::text(1, s.family.label(), th.dim()));
            }
            if let Some(a) = c.accepted {
                items.push(Item::new(
                    0,
                    vec![
                        Span::styled(format!("{} ", t(l, "sock_recvq")), th.label()),
                        Span::styled(bytes(a.recv_q), th.value()),
                    ],
                ));
            }
            if let Some(s) = c.mine.filter(|s| s.family == Family::Tcp) {
                items.push(Item::new(
                    1,
                    vec![
                        Span::styled(format!("{} ", t(l, "sock_sendq")), th.label()),
                        Span::styled(bytes(s.send_q), th.value()),
                    ],
                ));
            }
            items.push(Item::text(2, format!("({})", t(l, "sock_payload")), th.dim()));
            (4, vec![fit::row(items, " ", room, view)])
        })
        .collect()
}

fn tiny(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &SocketDetail, view: &View) {
    let room = area.width as usize;
    let plain = View { theme: crate::ui::Theme::Default, ..view.clone() };
    // One row per connection, in this small room never thickened.
    let thin = if view.theme.is_projector() { &plain } else { view };
    let mut groups = conn_rows(m, d, room, thin).unwrap_or_default();
    groups.push((1, vec![listen_row(d, room, view)]));
    groups.extend(party_lines(m, room, view).into_iter().map(|(p, l)| (p + 1, l)));
    widgets::fitted_groups(f, area, groups, view);
}

fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &SocketDetail, view: &View) {
    let room = area.width as usize;
    let mut fig = vec![listen_row(d, room, view)];
    let rows = conn_rows(m, d, room, view).unwrap_or_default();
    let conn_h: usize = rows.iter().map(|(_, g)| g.len()).sum();
    // The parties' lines keep two rows at least.
    if fig.len() + conn_h + 2 > area.height as usize {
        return tiny(f, area, m, d, view);
    }
    fig.extend(rows.into_iter().flat_map(|(_, g)| g));
    let fig_h = fig.len() as u16;
    let [top, rest] = Layout::vertical([Constraint::Length(fig_h), Constraint::Fill(1)]).areas(area);
    super::fit::draw(f, top, fig);
    let mut groups = netns_lines(d, room, view);
    groups.extend(legend(room, view).map(|l| (1, vec![l])));
    groups.extend(party_lines(m, room, view));
    groups.extend(queue_lines(m, d, room, view));
    groups.push((4, vec![widgets::integrity_row(&m.integrity, room, view)]));
    groups.extend(widgets::note_items(&m.notes, room, view));
    widgets::fitted_groups(f, rest, groups, view);
}

/// `socket.remote=netns`: the two network namespaces (inode, the veth
/// end's address), the traffic across, and what the remote client could
/// reach from its side.
///
/// ```text
/// network namespaces  run 4026531833  ◀═ veth ═▶  client-2 4026532174
/// 10.231.3.1:40123 ipcs12h  ◀─ 491.8K delivered · 1960 msgs ─  10.231.3.2:36742 ipcs12r
/// from client-2:  TCP ✓  path ✓  abstract ✗ ECONNREFUSED  127.0.0.1 ✗ ECONNREFUSED
/// ```
fn netns_lines(d: &SocketDetail, room: usize, view: &View) -> Vec<(u8, Vec<Line<'static>>)> {
    let Some(r) = d.remote.as_ref() else { return Vec::new() };
    let th = view.theme;
    let l = view.lang;
    let who = client_name(&r.role, view);
    if let Some(why) = &r.failed {
        let text = crate::i18n::tf(l, "sock_netns_failed", &[("why", why.clone())]);
        return vec![(0, vec![fit::row(vec![Item::text(0, text, th.warn())], " ", room, view)])];
    }
    let ino = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    // Whole forms, longest first: the namespaces and the addresses are
    // the point, so words around them go before any of them does.
    let pick = |forms: Vec<Vec<Span<'static>>>| -> Line<'static> {
        let lines: Vec<Line<'static>> = forms.into_iter().map(Line::from).collect();
        let last = lines.last().cloned().unwrap_or_default();
        fit::first_fit_line(lines, room).unwrap_or_else(|| fit::row(vec![Item::new(0, last.spans)], " ", room, view))
    };
    let run_ns = Span::styled(format!("{} {}", t(l, "sock_netns_run"), ino(r.host_netns)), th.value());
    let far_ns = Span::styled(format!("{who} {}", ino(r.remote_netns)), th.value());
    let cable = |pad: &str| Span::styled(format!("{pad}◀═ {} ═▶{pad}", t(l, "sock_netns_cable")), th.label());
    // Without a title, then closer together: the cable's Korean name is wider.
    let first = pick(
        [(t(l, "sock_netns"), "  "), (t(l, "sock_netns_short"), "  "), ("", "  "), ("", " ")]
            .into_iter()
            .map(|(title, pad)| {
                let mut v = Vec::new();
                if !title.is_empty() {
                    v.push(Span::styled(format!("{title}  "), th.label()));
                }
                v.extend([run_ns.clone(), cable(pad), far_ns.clone()]);
                v
            })
            .collect(),
    );
    let end = |ip: &Option<String>, port: Option<u16>| match (ip, port) {
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (Some(ip), None) => ip.clone(),
        _ => "-".into(),
    };
    let remote_port = d
        .sockets
        .iter()
        .find(|s| s.role == r.role && s.family == Family::Tcp)
        .and_then(|s| s.local.rsplit_once(':').and_then(|(_, p)| p.parse().ok()));
    let here = Span::styled(end(&r.host_ip, r.port), th.value());
    let there = Span::styled(end(&r.remote_ip, remote_port), th.value());
    let amount = bytes(r.delivered_bytes);
    let delivered = t(l, "sock_netns_delivered");
    let msgs = format!("{} {}", r.sent_msgs, t(l, "sock_netns_msgs"));
    let dim = |x: &str| Span::styled(format!(" {x}"), th.dim());
    let flow = |text: String| Span::styled(text, th.title());
    let second = pick(vec![
        vec![
            here.clone(),
            dim(&r.host_if),
            flow(format!(" ◀─ {amount} {delivered} · {msgs} ─ ")),
            there.clone(),
            dim(&r.remote_if),
        ],
        vec![here.clone(), flow(format!(" ◀─ {amount} {delivered} · {msgs} ─ ")), there.clone()],
        vec![here.clone(), flow(format!(" ◀─ {amount} {delivered} ─ ")), there.clone()],
        vec![here.clone(), flow(format!(" ◀─ {amount} ─ ")), there.clone()],
    ]);
    // ✓ connected, ✗ and the errno: a refusal is the news here.
    let said = |v: &Option<String>| match v.as_deref() {
        Some("connected") => Some(("✓".to_string(), th.value())),
        Some(e) => Some((format!("✗ {e}"), th.warn())),
        None => None,
    };
    let mut third = vec![Item::text(1, crate::i18n::tf(l, "sock_netns_from", &[("who", who.clone())]), th.label())];
    for (pri, name, v) in [
        (0, "TCP".to_string(), &r.reach_tcp),
        (0, t(l, "sock_netns_path").to_string(), &r.reach_path),
        (0, t(l, "sock_netns_abstract").to_string(), &r.reach_abstract),
        (2, "127.0.0.1".to_string(), &r.reach_loopback),
    ] {
        if let Some((text, style)) = said(v) {
            third.push(Item::new(pri, vec![Span::styled(format!("{name} "), th.dim()), Span::styled(text, style)]));
        }
    }
    vec![(0, vec![first]), (0, vec![second]), (1, vec![fit::row(third, "  ", room, view)])]
}

/// The listening sockets in their own box: each endpoint, which side of
/// the notes' table it is (a path: IPC; an address and port: network),
/// its backlog.
fn listener_box(f: &mut Frame, area: Rect, d: &SocketDetail, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let mut block = Boxed::new().border_type(BorderType::Double);
    if let Some(title) =
        fit::first_fit(&[t(l, "sock_listen_title"), t(l, "sock_listen")], area.width.saturating_sub(4) as usize)
    {
        block = block.title(Span::styled(format!(" {title} "), th.title()));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let room = inner.width as usize;
    let mut groups = Vec::new();
    for s in d.sockets.iter().filter(|s| s.listening()) {
        let abstract_name = s.family == Family::Unix && s.local.starts_with('@');
        let kind = if abstract_name {
            t(l, "sock_abstract_side")
        } else if s.family == Family::Unix {
            t(l, "sock_ipc_side")
        } else {
            t(l, "sock_net_side")
        };
        let users = if abstract_name {
            // Nobody is accepted there: whoever holds a socket by that name.
            let pids: HashSet<i32> =
                d.sockets.iter().filter(|o| o.local == s.local || o.peer == s.local).map(|o| o.pid).collect();
            pids.len() as u64
        } else if s.family == Family::Tcp {
            d.port_users
        } else {
            d.path_users
        };
        let build = |addr: String| {
            vec![
                Item::text(0, s.family.label(), th.label()),
                Item::text(0, addr, th.value()),
                Item::text(1, format!("{} {}/{}", t(l, "sock_backlog"), s.recv_q, s.send_q), th.dim()),
                Item::text(2, kind, th.dim()),
                Item::text(3, format!("{} {}", t(l, "sock_users"), users), th.dim()),
            ]
        };
        let addr = if s.family == Family::Unix {
            widgets::short_path(&s.local, room.saturating_sub(6)).unwrap_or_default()
        } else {
            s.local.clone()
        };
        groups.push((0, vec![fit::row(build(addr), "  ", room, view)]));
    }
    if groups.is_empty() {
        groups.push((0, vec![Line::from(Span::styled(t(l, "sock_no_listener"), th.warn()))]));
    }
    widgets::fitted_groups(f, inner, groups, view);
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &SocketDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let listeners = d.sockets.iter().filter(|s| s.listening()).count().max(1) as u16;
    let server_w = (area.width / 5).clamp(20, 30);
    let [diagram, server_col] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(server_w)]).areas(area);
    let room = diagram.width as usize;
    // The connections end in the server's mark and name; its box beside
    // them holds the rest.
    let plain_rows = conn_rows(m, d, room, view).unwrap_or_default();
    let conn_h: u16 = plain_rows.iter().map(|(_, g)| g.len() as u16).sum();
    let box_h = listeners + 2;
    let fig_h = (box_h + 1 + conn_h + 1).min(area.height.saturating_sub(3));
    let [fig, rest] = Layout::vertical([Constraint::Length(fig_h), Constraint::Fill(1)]).areas(area);
    let [_, fig_left] =
        Layout::vertical([Constraint::Length(0), Constraint::Fill(1)]).areas(Rect { width: diagram.width, ..fig });
    let [lbox, accept_row, conns_area] =
        Layout::vertical([Constraint::Length(box_h), Constraint::Length(1), Constraint::Fill(1)]).areas(fig_left);
    listener_box(f, lbox, d, view);
    let mut arrow = Row::new(room);
    let connect = format!("connect() ▼   ▼ accept(): {}", t(l, "sock_one_per_client"));
    let short = "connect() ▼   ▼ accept()".to_string();
    if !arrow.put_end(room, vec![Span::styled(connect, th.label())]) {
        arrow.put_end(room, vec![Span::styled(short, th.label())]);
    }
    super::fit::draw(f, accept_row, arrow.line());
    widgets::fitted_groups(f, conns_area, plain_rows, view);
    if let Some(s) = m.processes.first() {
        let h = fig.height.max(8).min(area.height);
        widgets::party_box(
            f,
            Rect { x: server_col.x, y: fig.y, width: server_col.width, height: h },
            s,
            t(l, "sock_server"),
            true,
            view,
        );
    }

    let room = rest.width.saturating_sub(server_w) as usize;
    let below = Rect { width: rest.width - server_w, ..rest };
    let mut groups = netns_lines(d, room, view);
    groups.extend(legend(room, view).map(|l| (0, vec![l])));
    groups.extend(party_lines(m, room, view).into_iter().skip(1).map(|(p, mut g)| {
        // The roomy view adds the kernel's own words for the wait.
        if let Some(c) = m
            .processes
            .iter()
            .skip(1)
            .find(|c| g[0].spans.iter().any(|s| s.content.contains(&client_name(&c.role, view))))
        {
            let raw = Line::from(vec![
                Span::raw("  "),
                Span::styled(format!("{} {}", c.state, widgets::wchan_in(&c.wchan, l)), th.dim()),
            ]);
            if fit::line_width(&raw) <= room {
                g.push(raw);
            }
        }
        (p, g)
    }));
    groups.extend(queue_lines(m, d, room, view).into_iter().map(|(_, g)| (2, g)));
    groups.push((3, socket_table(d, room, view)));
    groups.push((2, vec![widgets::integrity_row(&m.integrity, room, view)]));
    if measured::any(m) {
        groups.push((2, vec![measured::figures_row(m, room, view)]));
    }
    groups.extend(widgets::note_items(&m.notes, room, view));
    if m.notes.is_empty() {
        groups.push((6, vec![widgets::knob_row(m, room, view)]));
    }
    widgets::fitted_groups(f, below, groups, view);
}

/// Every socket our processes hold, as `ss` would list them: whole cells;
/// columns that do not fit are left out (peer first), paths lose leading
/// components.
fn socket_table(d: &SocketDetail, room: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let mut socks: Vec<&SocketEntry> = d.sockets.iter().collect();
    // Listeners, then each connection's two ends side by side.
    socks.sort_by_key(|s| {
        let client = if s.server_side() { s.peer_role.clone().unwrap_or_default() } else { s.role.clone() };
        (!s.listening(), client, s.server_side(), s.fd)
    });
    let header = [
        t(l, "sock_role"),
        "fd",
        t(l, "sock_state"),
        t(l, "sock_local"),
        t(l, "sock_peer"),
        t(l, "sock_recvq"),
        t(l, "sock_sendq"),
    ];
    for path_room in [32usize, 20, 12] {
        let cells: Vec<[String; 7]> = socks
            .iter()
            .map(|s| {
                let local = if s.local.is_empty() {
                    t(l, "sock_unnamed").to_string()
                } else {
                    widgets::short_path(&s.local, path_room).unwrap_or_else(|| "…".into())
                };
                // The table has room for the whole name in Korean (`c1` is no word).
                let peer_name =
                    |r: &str| if l == crate::i18n::Lang::En { short_role(r, l) } else { widgets::role_name(r, l) };
                let peer = match (&s.peer_role, s.peer.is_empty()) {
                    (Some(r), true) => peer_name(r),
                    (Some(r), false) => match s.peer_port {
                        Some(port) => format!("{} :{port}", peer_name(r)),
                        None => peer_name(r),
                    },
                    (None, true) => "-".into(),
                    (None, false) => widgets::short_path(&s.peer, path_room).unwrap_or_else(|| "…".into()),
                };
                [
                    widgets::role_name(&s.role, l),
                    s.fd.to_string(),
                    s.state.clone(),
                    local,
                    peer,
                    s.recv_q.to_string(),
                    s.send_q.to_string(),
                ]
            })
            .collect();
        let mut w = [0usize; 7];
        for (i, h) in header.iter().enumerate() {
            w[i] = display_width(h);
        }
        for r in &cells {
            for i in 0..7 {
                w[i] = w[i].max(display_width(&r[i]));
            }
        }
        // Columns left out, least telling first, until the row fits.
        let mut show = [true; 7];
        for drop in [4, 3, 2] {
            if (0..7).filter(|&i| show[i]).map(|i| w[i] + 1).sum::<usize>() <= room + 1 {
                break;
            }
            if path_room > 12 && drop == 4 {
                break;
            }
            show[drop] = false;
        }
        if (0..7).filter(|&i| show[i]).map(|i| w[i] + 1).sum::<usize>() > room + 1 {
            continue;
        }
        let right = |i: usize| i == 1 || i >= 5;
        let cell = |i: usize, s: &str| {
            let pad = " ".repeat(w[i] - display_width(s));
            if right(i) {
                format!("{pad}{s}")
            } else {
                format!("{s}{pad}")
            }
        };
        let mut out = Vec::new();
        let head: Vec<String> = (0..7).filter(|&i| show[i]).map(|i| cell(i, header[i])).collect();
        out.push(Line::from(Span::styled(head.join(" "), th.label())));
        for (s, r) in socks.iter().zip(&cells) {
            let state_style = if s.listening() {
                th.title()
            } else if s.established() {
                th.good()
            } else {
                th.warn()
            };
            let mut spans = Vec::new();
            for i in (0..7).filter(|&i| show[i]) {
                if !spans.is_empty() {
                    spans.push(Span::raw(" "));
                }
                let style = match i {
                    2 => state_style,
                    1 => th.dim(),
                    3 | 5 | 6 => th.value(),
                    _ => th.label(),
                };
                spans.push(Span::styled(cell(i, &r[i]), style));
            }
            out.push(Line::from(spans));
        }
        return out;
    }
    Vec::new()
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
    // (its name from the panel's detail when there is one: the telemetry
    // page reads back as `/memfd:…` and must not pass for it).
    let mq = snap.mechanism(Kind::Mq).map(|m| {
        let name = match &m.detail {
            Detail::Mq(d) if !d.name.is_empty() => Some(d.name.clone()),
            _ => None,
        };
        fd_holders(m, |t| match &name {
            Some(n) => t == n,
            None => t.starts_with('/') && !t.starts_with("/memfd:") && t[1..].find('/').is_none(),
        })
        .unwrap_or_else(|| ("-".into(), 0))
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
        let block = Boxed::new().title(Span::styled(format!(" {} ", t(l, "ep_title")), th.title()));
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
    let room = inner.width as usize;
    let ids: Vec<String> = rows.iter().map(|r| r[1].clone()).collect();
    // Wide enough: every column whole. Else the identifiers (paths) lose
    // leading components, then the columns managed-by and reach go.
    let mut chosen = None;
    let all = [true; 5];
    let no_mgr = [true, true, true, false, true];
    let no_reach = [true, true, false, false, true];
    let tries = [
        (all, usize::MAX),
        (all, 32),
        (no_mgr, usize::MAX),
        (no_mgr, 32),
        (no_mgr, 24),
        (no_reach, usize::MAX),
        (no_reach, 24),
        (no_reach, 16),
        (no_reach, 10),
    ];
    'fit: for (show, id_room) in tries {
        {
            let mut table = rows.clone();
            for (r, id) in table.iter_mut().zip(&ids) {
                r[1] = if id.starts_with('/') {
                    widgets::short_path(id, id_room).unwrap_or_else(|| "…".into())
                } else {
                    id.clone()
                };
            }
            let w = column_widths(&header, &table);
            if (0..5).filter(|&i| show[i]).map(|i| w[i] + 1).sum::<usize>() <= room + 1 {
                chosen = Some((show, table, w));
                break 'fit;
            }
        }
    }
    let Some((show, table, widths)) = chosen else { return };
    let cells = |r: &[String; 5]| -> Vec<String> {
        (0..5).filter(|&i| show[i]).map(|i| fit::pad_whole(&r[i], widths[i]).unwrap_or_else(|| r[i].clone())).collect()
    };
    let mut lines = vec![(0u8, vec![Line::from(Span::styled(cells(&header).join(" "), th.label()))])];
    for (e, r) in eps.iter().zip(&table) {
        let style = if e.users.is_some() { th.value() } else { th.dim() };
        let c = cells(r);
        let mut spans = vec![Span::styled(c[0].clone(), th.label())];
        for cell in &c[1..] {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(cell.clone(), style));
        }
        lines.push((if e.users.is_some() { 1 } else { 2 }, vec![Line::from(spans)]));
    }
    widgets::fitted_groups(f, inner, lines, view);
}

/// Rows the comparison view needs, borders included.
pub const ENDPOINTS_HEIGHT: u16 = 8;

/// Column widths for the comparison table: each column as wide as its
/// widest cell.
fn column_widths(header: &[String; 5], rows: &[[String; 5]]) -> [usize; 5] {
    let mut w = [0; 5];
    for r in std::iter::once(header).chain(rows) {
        for (wi, c) in w.iter_mut().zip(r) {
            *wi = (*wi).max(display_width(c.as_str()));
        }
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
    // The reason a lesson turned the remote client on comes first.
    if let Some(r) = &d.remote {
        out.extend(observe_remote(r, lang));
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
        .filter_map(|s| s.peer_role.as_ref().map(|r| format!("{} ({})", widgets::role_name(r, lang), s.family.label())))
        .collect();
    if conns.len() > 1 {
        out.push(tf(lang, "obs_sock_conns", &[("n", conns.len().to_string()), ("who", conns.join(", "))]));
    }
    let blocked: Vec<String> = clients
        .iter()
        .filter(|p| p.alive() && p.op_kind() == Op::Send && p.blocked())
        .map(|p| widgets::role_name(&p.role, lang))
        .collect();
    let rate: f64 = clients.iter().filter(|p| p.alive()).map(|p| p.send_rate).sum();
    if !blocked.is_empty() {
        out.push(tf(lang, "obs_sock_blocked", &[("who", blocked.join(", ")), ("recv", bytes(d.recv_payload))]));
    } else if rate > 0.0 && server.alive() {
        out.push(tf(lang, "obs_sock_flow", &[("n", clients.len().to_string()), ("rate", widgets::rate(rate))]));
    }
    out
}

/// The lesson pane's sentences about the client in another namespace.
fn observe_remote(r: &RemoteDetail, lang: crate::i18n::Lang) -> Vec<String> {
    use crate::i18n::tf;
    if let Some(why) = &r.failed {
        return vec![tf(lang, "obs_sock_netns_failed", &[("why", why.clone())])];
    }
    let mut out = Vec::new();
    let view = View { lang, ..View::default() };
    let who = client_name(&r.role, &view);
    if let (true, Some(hip), Some(rip), Some(port)) = (r.across(), &r.host_ip, &r.remote_ip, r.port) {
        let ino = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
        out.push(tf(
            lang,
            "obs_sock_netns",
            &[
                ("who", who),
                ("rn", ino(r.remote_netns)),
                ("hn", ino(r.host_netns)),
                ("b", r.delivered_bytes.to_string()),
                ("rip", rip.clone()),
                ("hip", hip.clone()),
                ("port", port.to_string()),
            ],
        ));
    }
    let word = |v: &Option<String>| match v.as_deref() {
        Some("connected") => t(lang, "sock_netns_connected").to_string(),
        Some(e) => e.to_string(),
        None => "-".into(),
    };
    if r.reach_path.is_some() && r.reach_abstract.is_some() {
        out.push(tf(
            lang,
            "obs_sock_netns_reach",
            &[
                ("path", word(&r.reach_path)),
                ("abs", word(&r.reach_abstract)),
                ("lo", word(&r.reach_loopback)),
                ("port", r.port.map_or_else(String::new, |p| p.to_string())),
            ],
        ));
    }
    out
}
