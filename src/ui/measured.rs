//! The measured figures on screen (issue #17): what a message costs and
//! how long it took, as the monitor measured them on this machine
//! (`model::measured`). Pure functions of the snapshot, like every panel.
//!
//! - `figures_row`: one row for a panel's roomy level, `p50 39 µs  p99
//!   119 µs · per msg: 3.0 syscalls  2.6 ctx sw  512 B copied`;
//! - `block_lines`: the zoomed view's block: each figure with where it
//!   comes from, "woken N µs after the send", and the latency heat map,
//!   a row per second on a log scale (as csysdig's spectrogram);
//! - `table_lines`: the comparison view, every mechanism in one table.
//!
//! A figure that is not there (an old recording, nothing moved in the
//! last second, a mechanism without it) is left out or drawn `–`, never 0.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::fit::{self, Item};
use super::widgets;
use super::View;
use crate::i18n::{t, tf};
use crate::model::figures::Party;
use crate::model::measured::{Cost, Latency};
use crate::model::snapshot::{MechanismSnapshot, Snapshot};
use crate::model::Kind;

/// Drawn for a figure that is not known.
pub const ABSENT: &str = "–";

/// A latency in µs as drawn: `7.5 µs`, `39 µs`, `12.3 ms`, `1.2 s`.
pub fn us(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} µs")
    } else if v < 10_000.0 {
        format!("{v:.0} µs")
    } else if v < 10_000_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{:.1} s", v / 1e6)
    }
}

/// Bytes per message as drawn: `512 B`, `12.0K B`.
pub fn bytes(v: f64) -> String {
    if v < 10_000.0 {
        format!("{v:.0} B")
    } else {
        format!("{} B", widgets::bytes(v.round() as u64))
    }
}

/// A per-message count as drawn: one decimal, as measured.
pub fn per(v: f64) -> String {
    format!("{v:.1}")
}

/// The numbers a float of the snapshot may be drawn as here beyond the
/// audit's usual forms (`ms` and `s` of a µs figure), for `audit::Truth`.
pub fn float_forms(f: f64) -> [String; 2] {
    [format!("{:.1}", f / 1000.0), format!("{:.1}", f / 1e6)]
}

/// Whether the snapshot has any measured figure for this mechanism.
pub fn any(m: &MechanismSnapshot) -> bool {
    m.latency_us.is_some() || m.cost.as_ref().is_some_and(|c| c.syscalls_per_msg.is_some())
}

fn round_trip(m: &MechanismSnapshot) -> bool {
    // The emulated kernels echo every request: their figures are per round trip.
    m.cost.as_ref().is_some_and(|c| c.host_syscalls_per_msg.is_some()) || matches!(m.kind, Kind::Mach | Kind::Alpc)
}

fn per_key(m: &MechanismSnapshot) -> &'static str {
    if round_trip(m) {
        "ms_per_rt"
    } else {
        "ms_per_msg"
    }
}

fn kv(label: String, value: String, view: &View) -> Vec<Span<'static>> {
    vec![Span::styled(label, view.theme.label()), Span::styled(value, view.theme.value())]
}

/// One row for a panel's roomy level: latency first, then the cost.
/// Empty when nothing was measured.
pub fn figures_row(m: &MechanismSnapshot, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let mut items = Vec::new();
    if let Some(lat) = &m.latency_us {
        items.push(Item::new(0, kv("p50 ".into(), us(lat.p50), view)));
        items.push(Item::new(1, kv("p99 ".into(), us(lat.p99), view)));
    }
    if let Some(c) = &m.cost {
        let mut cost = Vec::new();
        if let Some(v) = c.syscalls_per_msg {
            let key = if c.host_syscalls_per_msg.is_some() { "ms_traps" } else { "ms_syscalls" };
            cost.push(Item::new(1, kv(String::new(), format!("{} {}", per(v), t(l, key)), view)));
        }
        if let Some(v) = c.ctx_switches_per_msg {
            cost.push(Item::new(2, kv(String::new(), format!("{} {}", per(v), t(l, "ms_ctx_short")), view)));
        }
        if let Some(v) = c.bytes_copied_per_msg {
            cost.push(Item::new(2, kv(String::new(), format!("{} {}", bytes(v), t(l, "ms_copied_short")), view)));
        }
        if let Some(v) = c.bytes_mapped_per_msg.filter(|v| *v > 0.0) {
            cost.push(Item::new(3, kv(String::new(), format!("{} {}", bytes(v), t(l, "ms_mapped_short")), view)));
        }
        if !cost.is_empty() {
            items.push(Item::text(3, format!("{}:", t(l, per_key(m))), th.dim()));
            items.extend(cost);
        }
    }
    if items.is_empty() {
        return Line::default();
    }
    fit::row(items, "  ", room, view)
}

/// The receiving party of a mechanism: the worker that received most.
fn receiver(m: &MechanismSnapshot) -> Option<&crate::model::snapshot::ProcessSnapshot> {
    m.processes.iter().filter(|p| p.pid > 0 && p.received > 0).max_by_key(|p| p.received)
}

/// "consumer woken 39 µs after the send (median; 99 % within 119 µs)",
/// or "received …" when the receiver is not waiting now (it was busy, so
/// the time is queueing, not a wake-up).
pub fn woken_line(m: &MechanismSnapshot, room: usize, view: &View) -> Option<Line<'static>> {
    let lat = m.latency_us.as_ref()?;
    let th = view.theme;
    let l = view.lang;
    let r = receiver(m);
    let who = r.map_or_else(|| t(l, "ms_receiver").to_string(), |p| super::widgets::role_name(&p.role, l));
    let waits = r.is_some_and(|p| p.party(false) == Party::WaitingData);
    let args = |p99: bool| {
        let mut a = vec![("who", who.clone()), ("p50", us(lat.p50))];
        if p99 {
            a.push(("p99", us(lat.p99)));
        }
        a
    };
    let (long, short) = if waits { ("ms_woken", "ms_woken_short") } else { ("ms_got", "ms_got_short") };
    let forms = [tf(l, long, &args(true)), tf(l, short, &args(false)), format!("{who} {}", us(lat.p50)), us(lat.p50)];
    let text = forms.into_iter().find(|s| fit::width(s) <= room)?;
    Some(Line::from(Span::styled(text, th.value())))
}

/// The heat map's columns: bucket `i` holds [2^i, 2^(i+1)) µs; 1 µs to 2 s.
const HEAT_BUCKETS: usize = 21;
/// The shades from few to many messages.
const SHADES: [&str; 4] = ["░", "▒", "▓", "█"];
/// The axis marks: (bucket position ×100, label).
const DECADES: [(usize, &str); 7] =
    [(0, "1µs"), (332, "10µs"), (664, "100µs"), (997, "1ms"), (1329, "10ms"), (1661, "100ms"), (1993, "1s")];

/// The rows of the heat map: `Latency::seconds` (one a second, oldest
/// first), else the last second alone.
fn heat_source(lat: &Latency) -> Vec<&[u64]> {
    if lat.seconds.is_empty() {
        vec![lat.log2_us.as_slice()]
    } else {
        lat.seconds.iter().map(|r| r.as_slice()).collect()
    }
}

/// The latency heat map, `rows` rows at most (the newest seconds) and an
/// axis row, `width` columns: each row one second, each column a band of
/// latencies on a log scale, darker where more messages took that long.
/// Empty when there is no room for a readable map (each band one column
/// at least) or no latency.
pub fn heat_map(lat: &Latency, width: usize, rows: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let cw = width / HEAT_BUCKETS;
    if cw == 0 || rows < 2 {
        return Vec::new();
    }
    let src = heat_source(lat);
    let shown = &src[src.len().saturating_sub(rows - 1)..];
    let bucket = |row: &[u64], i: usize| -> u64 {
        if i + 1 == HEAT_BUCKETS {
            row.iter().skip(i).sum()
        } else {
            row.get(i).copied().unwrap_or(0)
        }
    };
    let max = shown.iter().flat_map(|r| (0..HEAT_BUCKETS).map(move |i| bucket(r, i))).max().unwrap_or(0);
    let mut out = Vec::new();
    for row in shown {
        let mut spans = Vec::new();
        for i in 0..HEAT_BUCKETS {
            let n = bucket(row, i);
            let cell = if n == 0 || max == 0 {
                Span::styled("·".repeat(cw), th.dim())
            } else {
                // Log scale on the count too: one message still shows.
                let level = if max <= 1 { 3 } else { ((n as f64).ln() / (max as f64).ln() * 3.0).round() as usize };
                Span::styled(SHADES[level.min(3)].repeat(cw), th.warn())
            };
            spans.push(cell);
        }
        out.push(Line::from(spans));
    }
    let mut axis = widgets::Row::new(cw * HEAT_BUCKETS);
    for (pos, label) in DECADES {
        axis.put(pos * cw / 100, vec![Span::styled(format!("└{label}"), th.dim())]);
    }
    out.push(axis.line());
    out
}

/// The zoomed view's block of measured figures, `room` columns wide,
/// each line with its priority (lower kept longer): each figure with
/// where it comes from, then "woken N µs after the send". The heat map
/// is drawn beside or under it (`heat_map`).
pub fn block_lines(m: &MechanismSnapshot, room: usize, view: &View) -> Vec<(u8, Line<'static>)> {
    let th = view.theme;
    let l = view.lang;
    let mut out: Vec<(u8, Line<'static>)> = Vec::new();
    if let Some(c) = &m.cost {
        out.extend(cost_lines(m, c, room, view));
    }
    if let Some(lat) = &m.latency_us {
        let items = vec![
            Item::text(0, format!("{}:", t(l, "ms_latency")), th.label()),
            Item::new(0, kv("p50 ".into(), us(lat.p50), view)),
            Item::new(2, kv("p90 ".into(), us(lat.p90), view)),
            Item::new(0, kv("p99 ".into(), us(lat.p99), view)),
            Item::new(1, kv(format!("{} ", t(l, "ms_max")), us(lat.max), view)),
            Item::text(3, tf(l, "ms_of_n", &[("n", lat.count.to_string())]), th.dim()),
        ];
        out.push((0, sourced(items, &[t(l, "ms_src_latency"), t(l, "ms_src_latency_short")], room, view)));
        if let Some(w) = woken_line(m, room, view) {
            out.push((1, w));
        }
    }
    if out.is_empty() {
        for row in widgets::wrap_words(t(l, "ms_none"), room) {
            out.push((0, Line::from(Span::styled(row, th.dim()))));
        }
    }
    out
}

/// The heat map's caption in `room` columns, if a form fits.
pub fn heat_caption(room: usize, view: &View) -> Option<Line<'static>> {
    let l = view.lang;
    fit::first_fit(&[t(l, "ms_heat"), t(l, "ms_heat_short")], room)
        .map(|c| Line::from(Span::styled(c.to_string(), view.theme.label())))
}

/// Rows of the heat map worth drawing: the seconds there are (up to 8),
/// and the axis.
pub fn heat_rows(m: &MechanismSnapshot) -> usize {
    m.latency_us.as_ref().map_or(0, |l| heat_source(l).len().min(8) + 1)
}

/// Columns the heat map takes beside the text: two a band.
pub const HEAT_SIDE_W: u16 = 2 * HEAT_BUCKETS as u16;

/// `items` on one row, then where the figure comes from: the longest of
/// `sources` that fits the room left (none when none does).
fn sourced(items: Vec<Item>, sources: &[&str], room: usize, view: &View) -> Line<'static> {
    let mut line = fit::row(items, "  ", room, view);
    let used = fit::line_width(&line);
    let left = room.saturating_sub(used + 2);
    if let Some(s) = sources.iter().filter(|s| !s.is_empty()).map(|s| format!("({s})")).find(|s| fit::width(s) <= left)
    {
        line.spans.push(Span::raw("  "));
        line.spans.push(Span::styled(s, view.theme.dim()));
    }
    line
}

/// The cost's lines: system calls, context switches, bytes, each with
/// where it comes from.
fn cost_lines(m: &MechanismSnapshot, c: &Cost, room: usize, view: &View) -> Vec<(u8, Line<'static>)> {
    let th = view.theme;
    let l = view.lang;
    let lead = |key: &'static str| Item::text(0, format!("{}:", t(l, key)), th.label());
    let val = |p: u8, s: String| Item::text(p, s, th.value());
    let mut out = Vec::new();
    let head = tf(l, "ms_window", &[("n", c.messages.to_string()), ("per", t(l, per_key(m)).to_string())]);
    out.push((3, Line::from(Span::styled(head, th.dim()))));
    let emu = c.host_syscalls_per_msg.is_some();
    let mut items = vec![lead(if emu { "ms_traps_long" } else { "ms_syscalls_long" })];
    items.push(val(0, c.syscalls_per_msg.map_or(ABSENT.into(), per)));
    if let Some(h) = c.host_syscalls_per_msg {
        items.push(Item::text(2, tf(l, "ms_host", &[("n", per(h))]), th.label()));
    }
    if let Some(rw) = c.proc_io_rw_per_msg {
        items.push(Item::text(3, tf(l, "ms_proc_io", &[("n", per(rw))]), th.label()));
    }
    let srcs = if emu {
        [t(l, "ms_src_traps"), t(l, "ms_src_traps_short")]
    } else {
        [t(l, "ms_src_count"), t(l, "ms_src_count_short")]
    };
    out.push((0, sourced(items, &srcs, room, view)));
    let mut items = vec![lead("ms_ctx_long"), val(0, c.ctx_switches_per_msg.map_or(ABSENT.into(), per))];
    if let (Some(v), Some(i)) = (c.voluntary_per_msg, c.involuntary_per_msg) {
        items.push(Item::text(2, tf(l, "ms_vol", &[("v", per(v)), ("i", per(i))]), th.label()));
    }
    out.push((2, sourced(items, &[t(l, "ms_src_ctx"), t(l, "ms_src_ctx_short")], room, view)));
    let mut items = vec![lead("ms_copied_long"), val(0, c.bytes_copied_per_msg.map_or(ABSENT.into(), bytes))];
    if let Some(v) = c.bytes_mapped_per_msg {
        items.push(Item::text(1, tf(l, "ms_mapped", &[("n", bytes(v))]), th.label()));
    }
    if let Some(v) = c.user_bytes_copied_per_msg {
        items.push(Item::text(1, tf(l, "ms_own", &[("n", bytes(v))]), th.label()));
    }
    let (long, short) = bytes_source_keys(m.kind);
    let srcs: &[&str] = if c.bytes_copied_per_msg.is_some() { &[t(l, long), t(l, short)] } else { &[] };
    out.push((1, sourced(items, srcs, room, view)));
    out
}

/// Where the byte figures of a mechanism come from (`Cost::bytes_source`
/// in the reader's language, long and short; the monitor decides them by
/// kind too).
fn bytes_source_keys(k: Kind) -> (&'static str, &'static str) {
    match k {
        Kind::Shm => ("ms_src_bytes_shm", "ms_src_bytes_shm_short"),
        Kind::Mach => ("ms_src_bytes_mach", "ms_src_bytes_mach_short"),
        Kind::Alpc => ("ms_src_bytes_alpc", "ms_src_bytes_alpc_short"),
        Kind::Pipe | Kind::Fifo | Kind::Mq | Kind::Socket => ("ms_src_bytes_copy", "ms_src_bytes_copy_short"),
    }
}

/// One column of the comparison table.
struct Col {
    head: &'static str,
    /// Kept longest: 0.
    priority: u8,
    /// Right-aligned (numbers).
    right: bool,
}

const COLS: [Col; 10] = [
    Col { head: "ms_col_mech", priority: 0, right: false },
    Col { head: "ms_col_per", priority: 3, right: false },
    Col { head: "ms_col_syscalls", priority: 0, right: true },
    Col { head: "ms_col_ctx", priority: 1, right: true },
    Col { head: "ms_col_copied", priority: 0, right: true },
    Col { head: "ms_col_mapped", priority: 4, right: true },
    Col { head: "ms_col_own", priority: 4, right: true },
    Col { head: "ms_col_p50", priority: 1, right: true },
    Col { head: "ms_col_p99", priority: 2, right: true },
    Col { head: "ms_col_dist", priority: 5, right: false },
];

/// The short name of a mechanism in the table.
fn mech_key(k: Kind) -> &'static str {
    match k {
        Kind::Pipe => "pipe_title",
        Kind::Fifo => "pp_fifo_title_s",
        Kind::Shm => "shm_title",
        Kind::Mq => "mq_title",
        Kind::Mach => "ms_mach",
        Kind::Alpc => "ms_alpc",
        Kind::Socket => "sock_title",
    }
}

/// One mechanism's cells, in `COLS` order (`–` where not known).
fn cells(m: &MechanismSnapshot, view: &View) -> Vec<(String, Style)> {
    let th = view.theme;
    let l = view.lang;
    let c = m.cost.as_ref();
    let lat = m.latency_us.as_ref();
    let num = |v: Option<String>| v.map_or((ABSENT.to_string(), th.dim()), |s| (s, th.value()));
    let sys = c.and_then(|c| {
        c.syscalls_per_msg.map(|v| match c.host_syscalls_per_msg {
            Some(h) => format!("{} ({})", per(v), per(h)),
            None => per(v),
        })
    });
    let dist = lat.map(|lat| {
        (0..16)
            .map(|i| match lat.log2_us.get(i).copied().unwrap_or(0) {
                0 => "·",
                n if n * 10 < lat.count => "░",
                n if n * 3 < lat.count => "▒",
                n if n * 3 < lat.count * 2 => "▓",
                _ => "█",
            })
            .collect::<String>()
    });
    vec![
        (t(l, mech_key(m.kind)).to_string(), th.title()),
        (c.map_or(ABSENT.to_string(), |_| t(l, per_key(m)).to_string()), th.label()),
        num(sys),
        num(c.and_then(|c| c.ctx_switches_per_msg).map(per)),
        num(c.and_then(|c| c.bytes_copied_per_msg).map(bytes)),
        num(c.and_then(|c| c.bytes_mapped_per_msg).map(bytes)),
        num(c.and_then(|c| c.user_bytes_copied_per_msg).map(bytes)),
        num(lat.map(|x| us(x.p50))),
        num(lat.map(|x| us(x.p99))),
        dist.map_or((ABSENT.to_string(), th.dim()), |d| (d, th.warn())),
    ]
}

/// The knobs that make the workload, when every mechanism has the same:
/// `producer.rate=200  msg.size=256`; `None` when they differ.
fn workload(snap: &Snapshot) -> Option<String> {
    let mut common: Option<Vec<String>> = None;
    for m in &snap.mechanisms {
        let mine: Vec<String> = ["producer.rate", "consumer.rate", "msg.size"]
            .iter()
            .filter_map(|k| m.knobs.iter().find(|(key, _)| key == k).map(|(k, v)| format!("{k}={v}")))
            .collect();
        match &common {
            None => common = Some(mine),
            Some(c) if *c != mine => return None,
            _ => {}
        }
    }
    common.map(|c| c.join("  "))
}

/// The comparison view's lines, `room` columns wide, with priorities:
/// the table (columns dropped whole by priority when narrow), what it
/// shows in a sentence, then where each number comes from.
pub fn table_lines(snap: &Snapshot, room: usize, view: &View) -> Vec<(u8, Line<'static>)> {
    let th = view.theme;
    let l = view.lang;
    let rows: Vec<Vec<(String, Style)>> = snap.mechanisms.iter().map(|m| cells(m, view)).collect();
    let heads: Vec<String> = COLS.iter().map(|c| t(l, c.head).to_string()).collect();
    let widths: Vec<usize> = (0..COLS.len())
        .map(|i| rows.iter().map(|r| fit::width(&r[i].0)).chain([fit::width(&heads[i])]).max().unwrap_or(0))
        .collect();
    // Drop the least important columns (later first) until the rest fit.
    let mut keep = vec![true; COLS.len()];
    let mut order: Vec<usize> = (0..COLS.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(COLS[i].priority), std::cmp::Reverse(i)));
    let total = |keep: &[bool]| -> usize { (0..COLS.len()).filter(|&i| keep[i]).map(|i| widths[i] + 2).sum() };
    for i in order {
        if total(&keep) <= room {
            break;
        }
        if COLS[i].priority > 0 {
            keep[i] = false;
        }
    }
    let mut out: Vec<(u8, Line<'static>)> = Vec::new();
    if let Some(w) = workload(snap) {
        let line = tf(l, "ms_workload", &[("knobs", w)]);
        out.push((2, Line::from(Span::styled(line, th.dim()))));
    } else {
        out.push((2, Line::from(Span::styled(t(l, "ms_workload_differs").to_string(), th.warn()))));
    }
    if total(&keep) > room {
        return out;
    }
    let line_of = |cells: Vec<(String, Style)>| -> Line<'static> {
        let mut spans = Vec::new();
        for (i, (text, style)) in cells.into_iter().enumerate().filter(|(i, _)| keep[*i]) {
            let pad = " ".repeat(widths[i] - fit::width(&text));
            let cell = if COLS[i].right { format!("{pad}{text}") } else { format!("{text}{pad}") };
            spans.push(Span::styled(cell, style));
            spans.push(Span::raw("  "));
        }
        spans.pop();
        Line::from(spans)
    };
    out.push((0, line_of(heads.iter().map(|h| (h.clone(), th.label())).collect())));
    for r in rows {
        out.push((0, line_of(r)));
    }
    out.push((1, Line::default()));
    for s in claims(snap, view) {
        for row in widgets::wrap_words(&s, room) {
            out.push((1, Line::from(Span::styled(row, th.value()))));
        }
    }
    out.push((3, Line::default()));
    for key in ["ms_note_syscalls", "ms_note_ctx", "ms_note_copied", "ms_note_latency", "ms_note_dist"] {
        for row in widgets::wrap_words(t(l, key), room) {
            out.push((3, Line::from(Span::styled(row, th.dim()))));
        }
    }
    out
}

/// The notes' claim as this machine's numbers: shared memory against the
/// pipe (or any message-passing mechanism measured), when both are known.
fn claims(snap: &Snapshot, view: &View) -> Vec<String> {
    let l = view.lang;
    let figures = |k: Kind| -> Option<(f64, f64)> {
        let c = snap.mechanism(k)?.cost.as_ref()?;
        Some((c.syscalls_per_msg?, c.bytes_copied_per_msg?))
    };
    let Some((shm_sys, shm_copied)) = figures(Kind::Shm) else { return Vec::new() };
    let Some((other, (sys, copied))) =
        [Kind::Pipe, Kind::Fifo, Kind::Mq, Kind::Socket].into_iter().find_map(|k| figures(k).map(|f| (k, f)))
    else {
        return Vec::new();
    };
    vec![tf(
        l,
        "ms_claim",
        &[
            ("shm_sys", per(shm_sys)),
            ("shm_copied", bytes(shm_copied)),
            ("other", t(l, mech_key(other)).to_string()),
            ("sys", per(sys)),
            ("copied", bytes(copied)),
        ],
    )]
}
