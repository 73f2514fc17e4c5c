//! The ALPC panel: the figure of the notes — clients, the server's named
//! connection port, each client's channel (a client and a server
//! communication port), the section object both map, and which of the
//! three paths a message of the current size takes — drawn from the
//! emulated NT kernel's own tables, with each process marked by the call
//! the kernel has it in.
//!
//! ```text
//! ┌ 6  Windows ALPC  emulated NT: ports, section, 3 paths ─────────────┐
//! │           connect  ╔ connection port ══════════╗ receive           │
//! │■ client-1 ───────▶ ║\RPC Control\ipcscope-echo ║ ──────▶ · server  │
//! │■ client-2 ───────▶ ║██░░░░░░░░ 2/712 messages  ║                   │
//! │                    ╚═══════════════════════════╝                   │
//! │client-1 client port 0x4 ◀══ channel ══▶ 0x8 server port            │
//! │╰═ section 64.0K, shared: c→s 4.0K in use · s→c 0 ═╯                │
//! │msg.size 256: ① queue ≤ 236 B  ▶② section ≤ 64.0K◀  ③ direct        │
//! │◇ client-1 NtAlpcConnectPort — waiting for accept                   │
//! └────────────────────────────────────────────────────────────────────┘
//! ```
//! NT keeps the messages where the notes do not draw them: every
//! client→server message (and connection request) waits in the connection
//! port's main queue, a request being served on its pending queue, and a
//! reply goes straight to the waiting thread. The box's fill is that main
//! queue against what the port's pool quota holds. Roomy, each process
//! gets its box with its handles, the paths their counts, and the Linux
//! side of our transport its labelled line. Focused, a second pane shows
//! the object directory, the latest `PORT_MESSAGE` headers, the callback
//! in flight and the latest RPC call's trip through the layers.
//!
//! Every text is put whole or left out (`widgets::Canvas`, `fit`).

use super::widgets::Boxed;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::BorderType;
use ratatui::Frame;

use super::fit::{self, Item};
use super::measured;
use super::widgets::{self, Canvas};
use super::View;
use crate::i18n::{t, tf, Lang};
use crate::model::detail::alpc::{
    AlpcDetail, AlpcState, ChannelView, ConnectionPortView, Direction, EmuCall, HandleKind, RpcLayer, RpcStep,
};
use crate::model::detail::emu::emu_party;
use crate::model::figures::{Party, Role};
use crate::model::snapshot::{Detail, MechanismSnapshot, ProcessSnapshot, Snapshot};
use crate::model::Kind;

/// Rows the focused view's extra pane wants.
pub const FOCUS_HEIGHT: u16 = 13;

fn role(d: &AlpcDetail, pid: u32) -> String {
    d.role_of(pid).map_or_else(|| pid.to_string(), str::to_string)
}

/// A role as the reader's language names it: `server` → `서버`,
/// `client-1` → `클라이언트-1`.
pub fn role_label(l: Lang, role: &str) -> String {
    match role {
        "server" => t(l, "alpc_server").to_string(),
        "kernel" => t(l, "alpc_kernel").to_string(),
        r => match r.strip_prefix("client-") {
            Some(n) => tf(l, "alpc_client_n", &[("n", n.to_string())]),
            None => r.to_string(),
        },
    }
}

/// The role of `pid`, in the reader's language.
fn who(d: &AlpcDetail, pid: u32, l: Lang) -> String {
    role_label(l, &role(d, pid))
}

fn hex(h: u32) -> String {
    format!("{h:#x}")
}

/// One process as the figure draws it.
struct Task<'a> {
    p: &'a ProcessSnapshot,
    call: Option<&'a EmuCall>,
    party: Party,
}

impl<'a> Task<'a> {
    fn of(p: &'a ProcessSnapshot, d: &'a AlpcDetail) -> Task<'a> {
        let call = d.call_of(&p.role);
        Task { p, call, party: emu_party(p, call, false) }
    }

    fn mark(&self, view: &View) -> Span<'static> {
        Span::styled(widgets::party_mark(self.party).to_string(), view.theme.party(self.party))
    }

    fn line(&self, label: &str, room: usize, view: &View) -> Option<Line<'static>> {
        widgets::emu_party_line(label, self.p, self.call.map(|c| (c, 1)), false, room, view)
    }

    fn rank(&self) -> u8 {
        self.party.rank()
    }
}

/// What every level draws.
struct Facts<'a> {
    clients: Vec<Task<'a>>,
    server: Option<Task<'a>>,
    state: Option<&'a AlpcState>,
    port: Option<&'a ConnectionPortView>,
    /// In the order of the clients' roles, whatever order they were
    /// accepted in.
    channels: Vec<&'a ChannelView>,
    m: &'a MechanismSnapshot,
}

impl<'a> Facts<'a> {
    fn of(m: &'a MechanismSnapshot, d: &'a AlpcDetail) -> Facts<'a> {
        let state = d.state.as_ref();
        let mut channels: Vec<&ChannelView> = state.map(|s| s.channels.iter().collect()).unwrap_or_default();
        channels.sort_by_key(|c| role(d, c.client_port.owner.unique_process));
        Facts {
            clients: m.processes.iter().filter(|p| p.role_kind().is_client()).map(|p| Task::of(p, d)).collect(),
            server: m.processes.iter().find(|p| p.role_kind() == Role::Server).map(|p| Task::of(p, d)),
            state,
            port: state.and_then(|s| s.connection_ports.first()),
            channels,
            m,
        }
    }

    /// Every process's part, the loudest first, as (priority, line).
    fn party_lines(&self, room: usize, view: &View) -> Vec<(u8, Line<'static>)> {
        let mut tasks: Vec<&Task> = self.clients.iter().chain(self.server.as_ref()).collect();
        tasks.sort_by_key(|t| t.rank());
        // The loudest before the section; the calm ones with the channels.
        tasks
            .iter()
            .filter_map(|t| {
                let label = role_label(view.lang, &t.p.role);
                Some((if t.rank() < 2 { 1 } else { 3 }, t.line(&label, room, view)?))
            })
            .collect()
    }
}

/// The connection port's name, then with whole leading components left
/// out: `\RPC Control\ipcscope-echo`, `…\ipcscope-echo`.
fn name_forms(name: &str) -> Vec<String> {
    let mut forms = vec![name.to_string()];
    let parts: Vec<&str> = name.split('\\').filter(|p| !p.is_empty()).collect();
    for k in 1..parts.len() {
        forms.push(format!("…\\{}", parts[k..].join("\\")));
    }
    forms
}

fn kernel_down_key(m: &MechanismSnapshot) -> &'static str {
    match m.processes.first().and_then(|k| k.exit.as_ref()) {
        Some(_) => "alpc_kernel_gone",
        None => "alpc_kernel_waiting",
    }
}

/// The three paths of the notes with their limits, the one a message of
/// `msg.size` takes now marked: `msg.size 256: ① queue ≤ 236 B ▶② section
/// ≤ 64.0K◀ ③ direct`. Longest form first.
fn path_forms(d: &AlpcDetail, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let now = d.path_now;
    let section_limit = match (d.own_section, d.personality.as_str()) {
        (Some(size), _) => format!(" ≤ {}", widgets::bytes(size)),
        // A recording older than the knob: the size asked for.
        (None, "") => format!(" ≤ {}", widgets::bytes(d.section_size)),
        (None, "alpc") => format!(" {}", t(l, "alpc_path_s_later")),
        (None, _) => format!(" {}", t(l, "alpc_path_s_none")),
    };
    let limits = [format!(" ≤ {}", size_words(d.queue_max)), section_limit, String::new()];
    let words = [
        [t(l, "alpc_path_queue"), t(l, "alpc_path_q_short"), "①"],
        [t(l, "alpc_path_section"), t(l, "alpc_path_s_short"), "②"],
        [t(l, "alpc_path_direct"), t(l, "alpc_path_d_short"), "③"],
    ];
    // The longest lead says what msg.size counts: the runtime's header
    // and the arguments, one ALPC message.
    let lead = |long: u8| {
        let size = size_words(d.msg_size);
        let args = size_words(d.msg_size.saturating_sub(d.rpc_header));
        let text = match long {
            2 if d.rpc_header > 0 => {
                tf(l, "alpc_path_lead_counts", &[("size", size), ("h", d.rpc_header.to_string()), ("args", args)])
            }
            1 => tf(l, "alpc_path_lead", &[("size", size)]),
            _ => format!("{size}:"),
        };
        Span::styled(text, th.label())
    };
    let item = |k: usize, form: usize, limit: bool| -> Vec<Span<'static>> {
        let text = format!("{}{}", words[k][form], if limit { limits[k].as_str() } else { "" });
        if now == Some(k as u8) {
            vec![Span::raw(" "), Span::styled(format!("▶{text}◀"), th.party(Party::BlockedFull))]
        } else {
            vec![Span::styled(format!(" {text}"), th.dim())]
        }
    };
    let mut forms = Vec::new();
    for (long_lead, form, limit) in [
        (2, 0, true),
        (2, 1, true),
        (1, 0, true),
        (1, 1, true),
        (0, 1, true),
        (1, 0, false),
        (0, 1, false),
        (0, 2, true),
        (0, 2, false),
    ] {
        let mut spans = vec![lead(long_lead)];
        for k in 0..3 {
            spans.extend(item(k, form, limit));
        }
        forms.push(Line::from(spans));
    }
    // Only the path taken now, with its limit.
    if let Some(k) = now {
        let k = k as usize;
        for form in [1, 2] {
            let mut spans = vec![lead(0)];
            spans.extend(item(k, form, true));
            forms.push(Line::from(spans));
        }
    }
    forms
}

/// One RPC hop in the reader's language (its key and arguments), or
/// its English detail when the report predates keys.
fn rpc_step_text(step: &RpcStep, l: Lang) -> String {
    // A report is a file of a worker's: only keys of ours are looked up.
    let Some(&key) = RPC_KEYS.iter().find(|&&k| k == step.key) else {
        return step.detail.clone();
    };
    let args: Vec<(&str, String)> = step
        .args
        .iter()
        .map(|(k, v)| {
            let v = match (k.as_str(), v.as_str()) {
                ("path", "queue") => t(l, "alpc_short_queue").to_string(),
                ("path", "section") => t(l, "alpc_short_section").to_string(),
                ("path", "direct") => t(l, "alpc_short_direct").to_string(),
                _ => v.clone(),
            };
            (k.as_str(), v)
        })
        .collect();
    tf(l, key, &args)
}

/// The keys an RPC hop may carry (`rpc::step`).
const RPC_KEYS: &[&str] = &[
    "rpc_app_down",
    "rpc_stub_down",
    "rpc_runtime_down",
    "rpc_alpc_down_queue",
    "rpc_alpc_down_section",
    "rpc_alpc_down_direct",
    "rpc_alpc_up",
    "rpc_runtime_up",
    "rpc_stub_up",
    "rpc_app_up",
    "rpc_callback_up",
    "rpc_callback_down",
    "rpc_section_created",
];

/// Rows that show what a step of the lessons observes, each from the
/// kernel's tables or the workers' reports, loudest first: a callback,
/// the latest message that came with a section view (its offset), and
/// one RPC call down the layers.
fn observed_rows(d: &AlpcDetail, width: usize, view: &View) -> Vec<(u8, Line<'static>)> {
    let l = view.lang;
    let th = view.theme;
    let mut out = Vec::new();
    // Callbacks: the nested request in flight, else how many were answered.
    let inflight = d.state.as_ref().and_then(|s| s.callbacks.first());
    if inflight.is_some() || d.server.callbacks_ok > 0 {
        let n = d.server.callbacks_ok.to_string();
        let mut forms = Vec::new();
        if let Some(c) = inflight {
            forms.push(tf(
                l,
                "alpc_obs_callback_now",
                &[
                    ("n", n.clone()),
                    ("client", who(d, c.client.unique_process, l)),
                    ("id", c.message_id.to_string()),
                    ("cb", c.callback_id.to_string()),
                ],
            ));
        }
        forms.push(tf(l, "alpc_obs_callbacks", &[("n", n.clone())]));
        forms.push(tf(l, "alpc_obs_callbacks_short", &[("n", n)]));
        let lines = forms.into_iter().map(|f| Line::from(Span::styled(f, th.warn()))).collect();
        if let Some(line) = fit::first_fit_line(lines, width) {
            out.push((1, line));
        }
    }
    // The latest message whose data came in a section view: only its
    // offset and size travelled in the port's message.
    if d.path_now == Some(1) {
        if let Some(h) = d.headers.iter().rev().find(|h| h.path == 1) {
            let args = [
                ("by", role_label(l, &h.by)),
                ("type", h.header.type_name().unwrap_or("?").to_string()),
                ("inline", h.header.data_length.to_string()),
                ("off", format!("{:#x}", h.view_offset)),
                ("size", size_words(h.bytes)),
            ];
            let forms = ["alpc_obs_view", "alpc_obs_view_short"]
                .iter()
                .map(|k| Line::from(Span::styled(tf(l, k, &args), th.value())))
                .collect();
            if let Some(line) = fit::first_fit_line(forms, width) {
                out.push((3, line));
            }
        }
    }
    // One call down the layers: application → stub → RPC runtime → ALPC.
    let app = d.rpc.iter().find(|s| s.layer == RpcLayer::Application && s.direction == Direction::Down);
    let runtime = d.rpc.iter().find(|s| s.layer == RpcLayer::Runtime && s.direction == Direction::Down);
    // (Reports older than the hops' arguments have none to show.)
    let named = app.and_then(|a| Some((a, a.arg("proc")?, a.arg("n")?.parse::<u64>().ok()?)));
    if let (Some((_, proc_, n)), Some(ep)) = (named, runtime.and_then(|r| r.arg("ep"))) {
        let (proc_, n, ep) = (proc_.to_string(), size_words(n), ep.to_string());
        let by = role_label(l, &d.rpc_by);
        let args = [("by", by), ("proc", proc_), ("n", n), ("ep", ep)];
        let forms = ["alpc_obs_rpc", "alpc_obs_rpc_mid", "alpc_obs_rpc_short"]
            .iter()
            .map(|k| Line::from(Span::styled(tf(l, k, &args), th.label())))
            .collect();
        if let Some(line) = fit::first_fit_line(forms, width) {
            out.push((2, line));
        }
    }
    out
}

/// "book ⇄ real kernel": while the notes' simplified rule (LPC's 256
/// bytes, sections only at connect) is in play, what Windows does.
fn book_line(d: &AlpcDetail, width: usize, view: &View) -> Option<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let keys = match d.personality.as_str() {
        "lpc" => ["alpc_book_lpc", "alpc_book_lpc_short"],
        "alpc" => ["alpc_book_alpc", "alpc_book_alpc_short"],
        _ => return None,
    };
    let forms = keys
        .iter()
        .map(|k| {
            Line::from(vec![
                Span::styled(format!("{} ", t(l, "alpc_book")), th.title()),
                Span::styled(t(l, k).to_string(), th.dim()),
            ])
        })
        .collect();
    fit::first_fit_line(forms, width)
}

/// Bytes for a sentence, whole units: `236 B`, `4 KiB`, `1.4 MiB`.
fn size_text(n: u64) -> String {
    if n >= 1 << 20 {
        let m = n as f64 / (1u64 << 20) as f64;
        if n.is_multiple_of(1 << 20) {
            format!("{} MiB", n >> 20)
        } else {
            format!("{m:.1} MiB")
        }
    } else if n >= 1 << 10 {
        if n.is_multiple_of(1 << 10) {
            format!("{} KiB", n >> 10)
        } else {
            format!("{:.1} KiB", n as f64 / 1024.0)
        }
    } else {
        format!("{n} B")
    }
}

/// A size for a sentence: `256 B`, `64.0K`.
fn size_words(n: u64) -> String {
    if n >= 1024 {
        widgets::bytes(n)
    } else {
        format!("{n} B")
    }
}

/// One channel, a pair of communication ports: `client-1 client port 0x4
/// ◀══ channel ══▶ 0x8 server port`, the longest form that fits.
fn channel_forms(d: &AlpcDetail, ch: &ChannelView, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let who = who(d, ch.client_port.owner.unique_process, l);
    let handle = |h: Option<u32>| h.map_or_else(|| "-".to_string(), hex);
    let (c, s) = (handle(ch.client_port.handle), handle(ch.server_port.handle));
    let pipe = |label: &str| {
        if label.is_empty() {
            " ◀══▶ ".to_string()
        } else {
            format!(" ◀══ {label} ══▶ ")
        }
    };
    let style = if ch.connected { th.label() } else { th.bad() };
    let gone = if ch.connected { String::new() } else { format!(" {}", t(l, "alpc_disconnected")) };
    let make = |ports: bool, label: &str| {
        let mut spans = vec![Span::styled(format!("{who} "), th.label())];
        if ports {
            spans.push(Span::styled(format!("{} ", t(l, "alpc_client_port")), th.dim()));
        }
        spans.push(Span::styled(c.clone(), th.value()));
        spans.push(Span::styled(pipe(label), style));
        spans.push(Span::styled(s.clone(), th.value()));
        if ports {
            spans.push(Span::styled(format!(" {}", t(l, "alpc_server_port")), th.dim()));
        }
        spans.push(Span::styled(gone.clone(), th.bad()));
        Line::from(spans)
    };
    let ch_word = t(l, "alpc_channel");
    vec![make(true, ch_word), make(true, ""), make(false, ch_word), make(false, "")]
}

/// The channels: one row each when `rows` allow, else one row for all.
fn channel_lines(d: &AlpcDetail, facts: &Facts, rows: usize, width: usize, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    if facts.state.is_none() {
        return Vec::new();
    }
    if facts.channels.is_empty() {
        let forms = vec![
            Line::from(Span::styled(t(l, "alpc_no_channels").to_string(), th.dim())),
            Line::from(Span::styled(t(l, "alpc_no_channels_short").to_string(), th.dim())),
        ];
        return fit::first_fit_line(forms, width).into_iter().collect();
    }
    if facts.channels.len() <= rows {
        // One form for every channel, so their rows line up.
        let all: Vec<Vec<Line<'static>>> = facts.channels.iter().map(|ch| channel_forms(d, ch, view)).collect();
        let k = (0..4).find(|&k| all.iter().all(|forms| fit::line_width(&forms[k]) <= width));
        return match k {
            Some(k) => all.into_iter().map(|mut forms| forms.swap_remove(k)).collect(),
            None => Vec::new(),
        };
    }
    let n = facts.channels.len().to_string();
    let forms = vec![
        Line::from(Span::styled(tf(l, "alpc_channels_n", &[("n", n.clone())]), th.label())),
        Line::from(Span::styled(tf(l, "alpc_channels_n_short", &[("n", n)]), th.label())),
    ];
    fit::first_fit_line(forms, width).into_iter().collect()
}

/// The section object the channel's two ends map: its size, what is in
/// use, who maps it — `╰═ section 64.0K, shared: c→s 4.0K in use · s→c 0 ═╯`.
fn section_forms(d: &AlpcDetail, facts: &Facts, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let Some(state) = facts.state else { return Vec::new() };
    let find = |id: Option<u64>| id.and_then(|id| state.sections.iter().find(|s| s.id == id));
    let ch = facts.channels.first();
    let cs = ch.and_then(|c| find(c.client_section));
    let sc = ch.and_then(|c| find(c.server_section));
    let edge = |s: String| {
        Line::from(vec![
            Span::styled("╰═ ", th.border()),
            Span::styled(s, th.label()),
            Span::styled(" ═╯", th.border()),
        ])
    };
    match cs {
        Some(s) => {
            let size = size_words(s.size);
            let used = size_words(s.bytes_in_use);
            let back = sc.map_or_else(|| t(l, "alpc_none").to_string(), |x| size_words(x.bytes_in_use));
            let n = state.sections.len().to_string();
            vec![
                edge(tf(
                    l,
                    "alpc_section_long",
                    &[("size", size.clone()), ("used", used.clone()), ("back", back), ("n", n)],
                )),
                edge(tf(l, "alpc_section_mid", &[("size", size.clone()), ("used", used)])),
                edge(tf(l, "alpc_section_short", &[("size", size.clone())])),
                Line::from(Span::styled(tf(l, "alpc_section_short", &[("size", size)]), th.label())),
            ]
        }
        None if d.section_size > 0 && ch.is_none() => {
            let size = size_words(d.section_size);
            vec![
                Line::from(Span::styled(tf(l, "alpc_section_asked", &[("size", size.clone())]), th.dim())),
                Line::from(Span::styled(tf(l, "alpc_section_short", &[("size", size)]), th.dim())),
            ]
        }
        // A channel without a section: its client asked for none at connect.
        None if ch.is_some() => {
            let keys = if d.personality == "alpc" {
                ["alpc_section_none_alpc", "alpc_section_none_short"]
            } else {
                ["alpc_section_none_lpc", "alpc_section_none_short"]
            };
            keys.iter().map(|k| Line::from(Span::styled(t(l, k).to_string(), th.warn()))).collect()
        }
        None => vec![Line::from(Span::styled(format!("{}: {}", t(l, "alpc_section"), t(l, "alpc_none")), th.dim()))],
    }
}

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &AlpcDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    // Which rules the kernel follows now, in the title.
    let (title, short) = match d.personality.as_str() {
        "alpc" => (t(l, "alpc_title_alpc"), t(l, "alpc_title_short_alpc")),
        "lpc" => (t(l, "alpc_title_lpc"), t(l, "alpc_title_short_lpc")),
        _ => (t(l, "alpc_title"), t(l, "alpc_title_short")),
    };
    let forms = [
        (title, t(l, "alpc_sub")),
        (title, t(l, "alpc_sub_short")),
        (title, t(l, "alpc_sub_tiny")),
        (title, ""),
        (short, ""),
    ];
    let inner = widgets::panel_fit(f, area, n, &forms, selected, view);
    let facts = Facts::of(m, d);
    if inner.height <= 4 || inner.width < 30 {
        tiny(f, inner, d, &facts, view);
    } else if widgets::roomy(inner) {
        full(f, inner, d, &facts, view);
    } else {
        compact(f, inner, d, &facts, view);
    }
}

/// One row: `clients ◇◇ ─▶ [██░░ 2/712] ─▶ · server`, the richest form
/// that leaves the main queue its room.
fn flow_row(facts: &Facts, width: u16, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let w = width as usize;
    let marks: Vec<Span<'static>> = facts.clients.iter().map(|c| c.mark(view)).collect();
    let mut worded = vec![Span::styled(format!("{} ", t(l, "alpc_clients_short")), th.label())];
    worded.extend(marks.iter().cloned());
    let server = facts.server.as_ref().map(|s| s.mark(view));
    let counts = widgets::queue_count_forms(&facts.m.channel, t(l, "gauge_kept"), view);
    for left in [worded, marks] {
        for named in [true, false] {
            for count in &counts {
                let mut right = server.clone().into_iter().collect::<Vec<_>>();
                if named {
                    right.push(Span::styled(format!(" {}", t(l, "alpc_server")), th.label()));
                }
                let fixed =
                    fit::line_width(&Line::from(left.clone())) + fit::line_width(&Line::from(right.clone())) + 10;
                let cw = fit::line_width(count);
                let Some(room) = w.checked_sub(fixed + cw + 1) else { continue };
                if room < 4 {
                    continue;
                }
                let mut spans = left.clone();
                spans.push(Span::styled(" ─▶ [", th.label()));
                spans.extend(widgets::scaled_bar(&facts.m.channel, room as u16, view).spans);
                spans.push(Span::raw(" "));
                spans.extend(count.spans.clone());
                spans.push(Span::styled("] ─▶ ", th.label()));
                spans.extend(right);
                return Line::from(spans);
            }
        }
    }
    Line::default()
}

/// Four rows or fewer: the flow, the path taken now, each part.
fn tiny(f: &mut Frame, area: Rect, d: &AlpcDetail, facts: &Facts, view: &View) {
    let w = area.width as usize;
    let mut cv = Canvas::new(f, area);
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    if facts.state.is_none() {
        lines
            .push((0, Line::from(Span::styled(t(view.lang, kernel_down_key(facts.m)).to_string(), view.theme.warn()))));
    } else {
        lines.push((0, flow_row(facts, area.width, view)));
        if let Some(p) = fit::first_fit_line(path_forms(d, view), w) {
            lines.push((1, p));
        }
    }
    lines.extend(facts.party_lines(w, view));
    lines.push((4, fit::row(widgets::integrity_items(&facts.m.integrity, view), "  ", w, view)));
    for (y, line) in widgets::pick_lines(lines, cv.height() as usize, w, view).into_iter().enumerate() {
        cv.put(0, y as u16, &line);
    }
}

/// The top of the figure: the clients and their arrows into the
/// connection port, the port (named, its main queue filling), and the
/// arrow to the server that receives from it. `tall`: the name on a row
/// of its own under the title. Returns the rows used.
fn port_figure(cv: &mut Canvas, d: &AlpcDetail, facts: &Facts, tall: bool, view: &View) -> u16 {
    let th = view.theme;
    let l = view.lang;
    let w = cv.width();
    let inner_rows: u16 = if tall { 2 } else { 1 };
    let each_w = facts.clients.iter().map(|c| 2 + fit::width(&role_label(l, &c.p.role))).max().unwrap_or(0) as u16;
    let marks_w = facts.clients.len() as u16;
    let send_word = if facts.channels.is_empty() { t(l, "alpc_connect") } else { t(l, "alpc_send") };
    let recv_word = t(l, "alpc_receive");
    let server_w = 3 + fit::width(t(l, "alpc_server")) as u16;
    let names = name_forms(&d.port_name);
    let title_w = fit::width(t(l, "alpc_conn_port")) as u16 + 4;
    let count_w = widgets::queue_count_forms(&facts.m.channel, "", view).last().map_or(3, fit::line_width) as u16;
    let need = count_w.max(title_w.min(12)) + 6;
    let each_fits = facts.clients.len() <= inner_rows as usize;
    let aw = |s: &str| (fit::width(s) as u16 + 2).max(4);
    // The richest that leaves the box its room: named senders, worded
    // arrows, the server's name.
    let mut choice = None;
    'search: for labels in [true, false] {
        for each in [true, false] {
            for named in [true, false] {
                if each && !each_fits {
                    continue;
                }
                let sw = if each { each_w } else { marks_w } + 1;
                let (sa, ra) = if labels { (aw(send_word), aw(recv_word)) } else { (4, 4) };
                let vw = if named { server_w } else { 2 };
                if w >= sw + sa + ra + vw + need {
                    choice = Some((labels, each, named, sw, sa, ra, vw));
                    break 'search;
                }
            }
        }
    }
    let (labels, each, named, sw, sa, ra, vw) = choice.unwrap_or((false, false, false, marks_w + 1, 4, 4, 2));
    let bw = w.saturating_sub(sw + sa + ra + vw);
    let (x_sa, x_box, x_ra, x_srv) = (sw, sw + sa, sw + sa + bw, sw + sa + bw + ra);
    // Senders.
    if each {
        for (i, c) in facts.clients.iter().enumerate() {
            let y = 1 + i as u16;
            let label = role_label(l, &c.p.role);
            cv.put(0, y, &Line::from(vec![c.mark(view), Span::styled(format!(" {label}"), th.label())]));
            cv.arrow(x_sa, y, sa - 1, true, th.label());
        }
    } else {
        cv.put(0, 1, &Line::from(facts.clients.iter().map(|c| c.mark(view)).collect::<Vec<_>>()));
        cv.arrow(x_sa, 1, sa - 1, true, th.label());
    }
    if labels {
        cv.text(x_sa, 0, send_word, th.label());
        cv.text(x_ra + 1, 0, recv_word, th.label());
    }
    // The connection port: named, visible to all; its main queue.
    let conn = t(l, "alpc_conn_port");
    let mut titles: Vec<Line<'static>> = Vec::new();
    if !tall {
        for n in &names {
            titles.push(Line::from(vec![
                Span::styled(format!("{conn} "), th.title()),
                Span::styled(n.clone(), th.value()),
            ]));
        }
    }
    titles.push(Line::from(Span::styled(conn.to_string(), th.title())));
    if !tall {
        titles.extend(names.iter().map(|n| Line::from(Span::styled(n.clone(), th.value()))));
    }
    let inside =
        cv.frame(Rect { x: x_box, y: 0, width: bw, height: inner_rows + 2 }, BorderType::Double, th.border(), titles);
    let mut y = inside.y;
    if tall {
        let forms = names.iter().map(|n| Line::from(Span::styled(n.clone(), th.value()))).collect();
        cv.put_first(inside.x, y, forms, inside.width);
        y += 1;
    }
    match facts.state {
        Some(_) => {
            let room = inside.width as usize;
            let pending = facts.port.map_or(0, |p| p.pending_queue.len());
            let tail = if pending > 0 {
                format!(" · {}", tf(l, "alpc_in_service", &[("n", pending.to_string())]))
            } else {
                String::new()
            };
            let mut counts: Vec<Line<'static>> = Vec::new();
            for c in widgets::queue_count_forms(&facts.m.channel, "", view) {
                let mut with = c.clone();
                with.spans.push(Span::styled(tail.clone(), th.warn()));
                counts.push(with);
                counts.push(c);
            }
            for count in counts {
                let cw = fit::line_width(&count);
                if cw + 5 > room {
                    continue;
                }
                let mut spans = widgets::scaled_bar(&facts.m.channel, (room - cw - 1) as u16, view).spans;
                spans.push(Span::raw(" "));
                spans.extend(count.spans);
                cv.put(inside.x, y, &Line::from(spans));
                break;
            }
        }
        None => {
            cv.text(inside.x, y, t(l, kernel_down_key(facts.m)), th.warn());
        }
    }
    // The server receives from it.
    cv.arrow(x_ra + 1, 1, ra.saturating_sub(2), true, th.label());
    if let Some(s) = &facts.server {
        let mut spans = vec![s.mark(view)];
        if named {
            spans.push(Span::styled(format!(" {}", t(l, "alpc_server")), th.label()));
        }
        cv.put(x_srv, 1, &Line::from(spans));
    }
    inner_rows + 2
}

/// A grid cell: the connection port figure, then the channels, the
/// section, the three paths with the one taken now marked, each part in
/// words and the notes, as many as fit.
fn compact(f: &mut Frame, area: Rect, d: &AlpcDetail, facts: &Facts, view: &View) {
    let w = area.width as usize;
    let mut cv = Canvas::new(f, area);
    let tall = cv.height() >= 10;
    let used = port_figure(&mut cv, d, facts, tall, view);
    let rows = cv.height().saturating_sub(used) as usize;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    let observed = if facts.state.is_some() { observed_rows(d, w, view) } else { Vec::new() };
    // The channels give their rows to what the step observes first.
    let ch_rows = rows.saturating_sub(4 + observed.len()).clamp(1, 3);
    for line in channel_lines(d, facts, ch_rows, w, view) {
        lines.push((3, line));
    }
    if let Some(s) = fit::first_fit_line(section_forms(d, facts, view), w) {
        lines.push((2, s));
    }
    if facts.state.is_some() {
        if let Some(p) = fit::first_fit_line(path_forms(d, view), w) {
            lines.push((0, p));
        }
    }
    lines.extend(observed);
    lines.extend(facts.party_lines(w, view));
    lines.push((4, fit::row(widgets::integrity_items(&facts.m.integrity, view), "  ", w, view)));
    let out = widgets::pick_lines(lines, rows, w, view);
    let left = rows.saturating_sub(out.len());
    let mut y = used;
    for line in out {
        cv.put(0, y, &line);
        y += 1;
    }
    for line in widgets::note_prose(&facts.m.notes, left, w, view) {
        cv.put(0, y, &line);
        y += 1;
    }
}

/// A process's box in the full figure: its part in words, then its
/// handles (each an object of the kernel's, valid only in this process).
fn process_box(cv: &mut Canvas, r: Rect, task: &Task, d: &AlpcDetail, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let titles = vec![
        Line::from(vec![
            Span::styled(format!("{} ", role_label(l, &task.p.role)), th.title()),
            Span::styled(widgets::pid(task.p.pid).trim_start().to_string(), th.value()),
        ]),
        Line::from(Span::styled(role_label(l, &task.p.role), th.title())),
    ];
    let inside = cv.frame(r, BorderType::Rounded, th.border(), titles);
    let w = inside.width as usize;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    for line in widgets::emu_party_rows("", task.p, task.call.map(|c| (c, 1)), false, w, view) {
        lines.push((0, line));
    }
    let pid = task.p.pid as u32;
    if let Some(state) = &d.state {
        for pv in state.processes.iter().filter(|p| p.client_id.unique_process == pid) {
            for h in &pv.handles {
                let what = match h.kind() {
                    HandleKind::ConnectionPort => t(l, "alpc_conn_port"),
                    HandleKind::ServerPort => t(l, "alpc_server_port"),
                    HandleKind::ClientPort => t(l, "alpc_client_port"),
                    HandleKind::Section => t(l, "alpc_section"),
                    HandleKind::Other => h.object_type.as_str(),
                };
                // The section's own address in this process.
                let at = state
                    .sections
                    .iter()
                    .find(|s| s.id == h.object && h.kind() == HandleKind::Section)
                    .and_then(|s| s.mapped_by.iter().find(|m| m.process.unique_process == pid))
                    .map(|m| format!(" @{:#x}", m.base));
                let head = vec![
                    Span::styled(format!("{} ", hex(h.handle)), th.value()),
                    Span::styled(what.to_string(), th.label()),
                ];
                let mut long = head.clone();
                if let Some(at) = at {
                    long.push(Span::styled(at, th.dim()));
                }
                if let Some(line) = fit::first_fit_line(vec![Line::from(long), Line::from(head)], w) {
                    lines.push((1, line));
                }
            }
        }
    }
    for (k, line) in widgets::pick_lines(lines, inside.height as usize, w, view).into_iter().enumerate() {
        cv.put(inside.x, inside.y + k as u16, &line);
    }
}

/// The three paths as a table: each with its limit, its counts, a bar of
/// its share of the bytes, the one taken now marked.
fn path_table(d: &AlpcDetail, width: usize, view: &View) -> Vec<(u8, Line<'static>)> {
    let l = view.lang;
    let th = view.theme;
    let c = d.state.as_ref().map(|s| s.totals).unwrap_or_default();
    let rows = [
        (t(l, "alpc_path_queue"), format!("≤ {}", size_words(d.queue_max)), c.copied_messages, c.copied_bytes),
        (
            t(l, "alpc_path_section"),
            match (d.own_section, d.personality.as_str()) {
                (Some(size), _) => format!("≤ {}", widgets::bytes(size)),
                (None, "") => format!("≤ {}", widgets::bytes(d.section_size)),
                (None, "alpc") => t(l, "alpc_path_s_later").to_string(),
                (None, _) => t(l, "alpc_path_s_none").to_string(),
            },
            c.section_messages,
            c.section_bytes,
        ),
        (
            t(l, "alpc_path_direct"),
            String::new(),
            c.direct_reads + c.direct_writes,
            c.direct_read_bytes + c.direct_write_bytes,
        ),
    ];
    let label_w = rows.iter().map(|r| fit::width(r.0) + 1 + fit::width(&r.1)).max().unwrap_or(10) + 2;
    let total: u64 = rows.iter().map(|r| r.3).sum();
    let num_w = 9;
    let bar_w = width.saturating_sub(label_w + 2 * num_w + 2).min(30);
    let size = size_words(d.msg_size);
    let args = size_words(d.msg_size.saturating_sub(d.rpc_header));
    let counts =
        tf(l, "alpc_path_lead_counts", &[("size", size.clone()), ("h", d.rpc_header.to_string()), ("args", args)]);
    let head = tf(l, "alpc_path_lead", &[("size", size)]);
    // What msg.size counts, on its own row above the table.
    let mut out = Vec::new();
    if d.rpc_header > 0 && fit::width(&counts) <= width {
        out.push((4, Line::from(Span::styled(counts, th.dim()))));
    }
    let head_line = format!(
        "{}{}{}",
        fit::pad_whole(&head, label_w).unwrap_or_else(|| format!("{head} ")),
        rpad(t(l, "alpc_messages"), num_w),
        rpad(t(l, "alpc_bytes"), num_w)
    );
    out.push((1, Line::from(Span::styled(head_line, th.dim()))));
    for (k, (label, limit, msgs, bytes)) in rows.into_iter().enumerate() {
        let now = d.path_now == Some(k as u8);
        let text = if limit.is_empty() { label.to_string() } else { format!("{label} {limit}") };
        let (mark, style) = if now { ("▶", th.party(Party::BlockedFull)) } else { (" ", th.label()) };
        let filled = (bytes as u128 * bar_w as u128).checked_div(total as u128).unwrap_or(0) as usize;
        let filled = if bytes > 0 { filled.max(1) } else { 0 }.min(bar_w);
        let mut spans = vec![
            Span::styled(mark.to_string(), style),
            Span::styled(fit::pad_whole(&text, label_w - 1).unwrap_or(text), style),
            Span::styled(format!("{:>num_w$}", widgets::count(msgs)), th.value()),
            Span::styled(format!("{:>num_w$} ", widgets::bytes(bytes)), th.value()),
        ];
        if bar_w > 0 {
            spans.push(Span::styled("█".repeat(filled), th.gauge()));
            spans.push(Span::styled("░".repeat(bar_w - filled), th.dim()));
        }
        out.push((if now { 0 } else { 1 }, Line::from(spans)));
    }
    out
}

/// The focused (roomy) panel: each process in its box with its handles,
/// the connection port with its queues, the channels, the section, the
/// paths as a table, and the Linux side of our transport, labelled.
fn full(f: &mut Frame, area: Rect, d: &AlpcDetail, facts: &Facts, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let w = area.width;
    let mut cv = Canvas::new(f, area);
    // Under the figure: channels, section, the paths (4), transport,
    // integrity.
    let below = 4 + 4;
    let fig_h = area.height.saturating_sub(below).clamp(5, 12);
    let send_word = if facts.channels.is_empty() { t(l, "alpc_connect") } else { t(l, "alpc_send") };
    let recv_word = t(l, "alpc_receive");
    let sa = fit::width(send_word) as u16 + 3;
    let ra = fit::width(recv_word) as u16 + 3;
    let sw = (w * 24 / 100).clamp(19, 44);
    let vw = (w * 24 / 100).clamp(19, 44);
    let bw = w.saturating_sub(sw + sa + ra + vw);
    let (x_sa, x_box, x_ra, x_srv) = (sw, sw + sa, sw + sa + bw, sw + sa + bw + ra);

    // The clients, one box each.
    let n = facts.clients.len().max(1) as u16;
    let each_h = (fig_h / n).max(3);
    for (i, task) in facts.clients.iter().enumerate() {
        let y = i as u16 * each_h;
        if y + 3 > fig_h {
            cv.text(1, fig_h.saturating_sub(1), &fit::more(facts.clients.len() - i, view), th.dim());
            break;
        }
        let h = if i + 1 == facts.clients.len() { fig_h - y } else { each_h };
        process_box(&mut cv, Rect { x: 0, y, width: sw, height: h }, task, d, view);
        cv.arrow(x_sa, y + 1, sa - 1, true, th.label());
    }
    cv.text(x_sa, 0, send_word, th.label());

    // The connection port and NT's queues in it.
    let conn = t(l, "alpc_conn_port");
    let mut titles: Vec<Line<'static>> = name_forms(&d.port_name)
        .into_iter()
        .map(|n| Line::from(vec![Span::styled(format!("{conn} "), th.title()), Span::styled(n, th.value())]))
        .collect();
    titles.push(Line::from(Span::styled(conn.to_string(), th.title())));
    let inside = cv.frame(Rect { x: x_box, y: 0, width: bw, height: fig_h }, BorderType::Double, th.border(), titles);
    let iw = inside.width as usize;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    match facts.state {
        Some(_) => {
            // NT's main queue: the lead word when there is room for it.
            let lead = format!("{} ", t(l, "alpc_main_queue"));
            let mut done = false;
            for with_lead in [true, false] {
                for count in widgets::queue_count_forms(&facts.m.channel, "", view) {
                    let lw = if with_lead { fit::width(&lead) } else { 0 };
                    let cw = fit::line_width(&count) + lw;
                    if done || cw + 5 > iw {
                        continue;
                    }
                    let mut spans = Vec::new();
                    if with_lead {
                        spans.push(Span::styled(lead.clone(), th.label()));
                    }
                    spans.extend(widgets::scaled_bar(&facts.m.channel, (iw - cw - 1) as u16, view).spans);
                    spans.push(Span::raw(" "));
                    spans.extend(count.spans);
                    for _ in 0..th.gauge_rows() {
                        lines.push((0, Line::from(spans.clone())));
                    }
                    done = true;
                }
            }
            let port = facts.port;
            let items = vec![
                Item::text(
                    0,
                    tf(l, "alpc_in_service", &[("n", port.map_or(0, |p| p.pending_queue.len()).to_string())]),
                    th.value(),
                ),
                Item::text(
                    1,
                    format!("{} {}", t(l, "alpc_conn_requests"), port.map_or(0, |p| p.connection_requests.len())),
                    th.value(),
                ),
                Item::text(1, format!("{} {}", t(l, "alpc_refused"), d.server.refused), th.value()),
                Item::text(2, tf(l, "alpc_replies_direct", &[]), th.dim()),
            ];
            // Whole items only; a row that would say nothing but a count is left out.
            let row = fit::row(items, " · ", iw, view);
            if row.spans.len() > 1 {
                lines.push((1, row));
            }
            // The messages waiting, as NT keeps them.
            for msg in port.map(|p| p.main_queue.as_slice()).unwrap_or_default() {
                let how = if msg.view.is_some() {
                    t(l, "alpc_via_section")
                } else if !msg.data_info.is_empty() {
                    t(l, "alpc_via_direct")
                } else {
                    ""
                };
                let who = who(d, msg.sender.unique_process, l);
                let long = Line::from(vec![
                    Span::styled("▇ ", th.gauge()),
                    Span::styled(format!("{} ", msg.msg_type), th.value()),
                    Span::styled(format!("#{} ", msg.message_id), th.label()),
                    Span::styled(who.clone(), th.value()),
                    Span::styled(format!(" {} B {how}", msg.data_length), th.dim()),
                ]);
                let short = Line::from(vec![
                    Span::styled("▇ ", th.gauge()),
                    Span::styled(format!("{} ", msg.msg_type), th.value()),
                    Span::styled(who, th.value()),
                ]);
                if let Some(line) = fit::first_fit_line(vec![long, short], iw) {
                    lines.push((2, line));
                }
            }
            let hidden = facts.m.channel.depth as usize
                - port.map_or(0, |p| p.main_queue.len()).min(facts.m.channel.depth as usize);
            if hidden > 0 {
                lines.push((3, Line::from(Span::styled(fit::more(hidden, view), th.dim()))));
            }
        }
        None => {
            for row in widgets::wrap_words(t(l, kernel_down_key(facts.m)), iw) {
                if fit::width(&row) <= iw {
                    lines.push((0, Line::from(Span::styled(row, th.warn()))));
                }
            }
        }
    }
    for (k, line) in widgets::pick_lines(lines, inside.height as usize, iw, view).into_iter().enumerate() {
        cv.put(inside.x, inside.y + k as u16, &line);
    }

    // The server receives on it.
    cv.text(x_ra + 1, 0, recv_word, th.label());
    cv.arrow(x_ra + 1, 1, ra.saturating_sub(2), true, th.label());
    if let Some(s) = &facts.server {
        process_box(&mut cv, Rect { x: x_srv, y: 0, width: vw, height: fig_h }, s, d, view);
    }

    // Under the figure.
    let width = w as usize;
    let mut y = fig_h;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    for line in channel_lines(d, facts, 3, width, view) {
        lines.push((2, line));
    }
    if let Some(s) = fit::first_fit_line(section_forms(d, facts, view), width) {
        lines.push((1, s));
    }
    lines.extend(path_table(d, width, view));
    if let Some(b) = facts.state.and(book_line(d, width, view)) {
        lines.push((1, b));
    }
    // The Linux side: what our transport does, not what NT does.
    let mut items = vec![Item::text(0, format!("{}:", t(l, "alpc_transport")), th.label())];
    for p in &facts.m.processes {
        let kernel = p.role_kind() == Role::Other;
        let label = role_label(l, &p.role);
        let mut item = widgets::transport_item(&label, p, view);
        item.priority = if kernel { 2 } else { 1 };
        items.push(item);
    }
    lines.push((3, fit::row(items, "  ", width, view)));
    lines.push((3, fit::row(widgets::integrity_items(&facts.m.integrity, view), "  ", width, view)));
    if measured::any(facts.m) {
        lines.push((2, measured::figures_row(facts.m, width, view)));
    }
    // What the lesson's step observes; on a tie the transport's row stays.
    if facts.state.is_some() {
        lines.extend(observed_rows(d, width, view));
    }
    let rows = area.height.saturating_sub(y) as usize;
    let out = widgets::pick_lines(lines, rows, width, view);
    let left = rows.saturating_sub(out.len());
    for line in out {
        cv.put(0, y, &line);
        y += 1;
    }
    for line in widgets::note_prose(&facts.m.notes, left, width, view) {
        cv.put(0, y, &line);
        y += 1;
    }
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
    let boxed = |f: &mut Frame, r: Rect, titles: Vec<String>| -> Rect {
        let block = Boxed::new().border_style(th.border());
        let inner = block.inner(r);
        f.render_widget(block, r);
        let mut cv = Canvas::new(f, r);
        let forms = titles.into_iter().map(|s| Line::from(Span::styled(format!(" {s} "), th.title()))).collect();
        cv.put_first(1, 0, forms, r.width.saturating_sub(2));
        inner
    };

    // Left: the object directory, then the headers.
    let li =
        boxed(f, left, vec![format!("{} · PORT_MESSAGE", t(l, "alpc_directory")), t(l, "alpc_directory").to_string()]);
    let w = li.width as usize;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    if let Some(s) = &d.state {
        for e in &s.directory {
            let server = s
                .connection_ports
                .iter()
                .find(|p| p.id == e.port)
                .map(|p| format!("{} {}", who(d, p.server.unique_process, l), p.server.unique_process))
                .unwrap_or_default();
            let forms = vec![
                Line::from(vec![
                    Span::styled(e.name.clone(), th.value()),
                    Span::styled(
                        format!("  {}  ({server})", tf(l, "alpc_dir_conn_port", &[("n", e.port.to_string())])),
                        th.label(),
                    ),
                ]),
                Line::from(vec![
                    Span::styled(e.name.clone(), th.value()),
                    Span::styled(format!("  #{} ({server})", e.port), th.label()),
                ]),
                Line::from(Span::styled(e.name.clone(), th.value())),
            ];
            if let Some(line) = fit::first_fit_line(forms, w) {
                lines.push((0, line));
            }
        }
    }
    let by_w = d
        .headers
        .iter()
        .map(|h| fit::width(&role_label(l, &h.by)))
        .fold(fit::width(t(l, "alpc_by")).max(11), usize::max);
    // PORT_MESSAGE's field names; `Type` (u2.s2.Type) is said in words,
    // four columns wide in either language.
    let cols = format!("{}          DataLen TotalLen ClientId      MessageId CallbackId", t(l, "alpc_col_type"));
    let head = format!("{}  {cols}", fit::pad_whole(t(l, "alpc_by"), by_w).unwrap_or_default());
    if fit::width(&head) <= w {
        lines.push((1, Line::from(Span::styled(head, th.dim()))));
        for h in d.headers.iter().rev().take(6).rev() {
            let ty = h.header.type_name().unwrap_or("?");
            let Some(by) = fit::pad_whole(&role_label(l, &h.by), by_w) else { continue };
            lines.push((
                2,
                Line::from(vec![
                    Span::styled(format!("{by}  "), th.label()),
                    Span::raw(format!(
                        "{:<13} {:>7} {:>8} {:<13} {:>9} {:>10}",
                        ty,
                        h.header.data_length,
                        h.header.total_length,
                        format!("{}.{}", h.header.client_id.unique_process, h.header.client_id.unique_thread),
                        h.header.message_id,
                        h.header.callback_id
                    )),
                ]),
            ));
        }
    }
    let mut cv = Canvas::new(f, li);
    for (k, line) in widgets::pick_lines(lines, li.height as usize, w, view).into_iter().enumerate() {
        cv.put(0, k as u16, &line);
    }

    // Right: the callback in flight, then the RPC call's layers.
    let mut titles = vec![t(l, "alpc_rpc_title").to_string()];
    if !d.rpc_by.is_empty() {
        titles.insert(0, format!("{} · {}", t(l, "alpc_rpc_title"), role_label(l, &d.rpc_by)));
    }
    let ri = boxed(f, right, titles);
    let w = ri.width as usize;
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    let inflight = d.state.as_ref().and_then(|s| s.callbacks.first());
    let first = match inflight {
        Some(c) => tf(
            l,
            "alpc_callback_now",
            &[
                ("id", c.message_id.to_string()),
                ("cb", c.callback_id.to_string()),
                ("server", who(d, c.server.unique_process, l)),
                ("client", who(d, c.client.unique_process, l)),
            ],
        ),
        None => tf(
            l,
            "alpc_callback_none",
            &[("n", d.server.callbacks_ok.to_string()), ("on", if d.callbacks { "on" } else { "off" }.to_string())],
        ),
    };
    let style = if inflight.is_some() { th.warn() } else { th.dim() };
    // Prose, wrapped between words; a word too long for the pane drops it.
    if first.split_whitespace().all(|word| fit::width(word) <= w) {
        for row in widgets::wrap_words(&first, w) {
            lines.push((0, Line::from(Span::styled(row, style))));
        }
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
        let layer = fit::pad_whole(layer, 11).unwrap_or_else(|| layer.to_string());
        let head = Span::styled(format!("{arrow} {layer} "), th.label());
        // The detail between words onto the next rows, under itself.
        let indent = fit::width(&head.content);
        let room = w.saturating_sub(indent);
        let text = rpc_step_text(step, l);
        if room < 8 || text.split_whitespace().any(|word| fit::width(word) > room) {
            lines.push((1, Line::from(head)));
            continue;
        }
        for (k, row) in widgets::wrap_words(&text, room).into_iter().enumerate() {
            let lead = if k == 0 { head.clone() } else { Span::raw(" ".repeat(indent)) };
            lines.push((1, Line::from(vec![lead, Span::raw(row)])));
        }
    }
    let mut cv = Canvas::new(f, ri);
    for (k, line) in widgets::pick_lines(lines, ri.height as usize, w, view).into_iter().enumerate() {
        cv.put(0, k as u16, &line);
    }
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
            &[("n", n.to_string()), ("bytes", size_text(*bytes)), ("max", d.queue_max.to_string())],
        ));
    }
    if m.channel.depth > 0 {
        // Before the server accepts, clients wait in NtAlpcConnectPort.
        let key = if state.channels.is_empty() { "obs_alpc_waiting_connect" } else { "obs_alpc_waiting" };
        out.push(tf(lang, key, &[("n", m.channel.depth.to_string())]));
    }
    if d.server.refused > 0 {
        out.push(tf(lang, "obs_alpc_refused", &[("n", d.server.refused.to_string())]));
    }
    if d.server.callbacks_ok > 0 {
        out.push(tf(lang, "obs_alpc_callbacks", &[("n", d.server.callbacks_ok.to_string())]));
    }
    if !state.personality.is_empty() {
        let rules = state.personality.to_uppercase();
        out.push(tf(lang, "obs_alpc_personality", &[("rules", rules), ("max", state.system_max_message.to_string())]));
    }
    out
}
