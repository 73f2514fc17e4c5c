//! The shared-memory panel:
//!
//! ```text
//! ┌ 3  shared memory  shm_open + mmap: one region, two processes ─────────┐
//! │╭ producer ╮  memcpy  ╔ /dev/shm/ipcscope-…-shm ╗  memcpy  ╭ consumer ╮│
//! ││ pid 4121 │ ───────▶ ║ ■■■■■■□□□□□□□□□□       ║ ───────▶ │ pid 4122 ││
//! ││ S futex  │          ║ ^out  ^in               ║          │ S paced  ││
//! │╰──────────╯          ╚═════════════════════════╝          ╰──────────╯│
//! │ /dev/shm/…  rw-------  16384 B  links 1   0600: only this user maps it │
//! │ delivered 1200  lost 0  corrupt 0  dup 0  reordered 0                  │
//! │ 0000  69 70 63 73 72 69 6e 67 …  (header)   3840  49 50 43 53 … (next) │
//! └────────────────────────────────────────────────────────────────────────┘
//! ```
//! Small cells get a compact, line-by-line version of the same facts.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::widgets::{self, gauge_line, integrity_line, note_lines, process_box};
use super::View;
use crate::i18n::t;
use crate::model::detail::shm::ShmDetail;
use crate::model::snapshot::MechanismSnapshot;

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &ShmDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let inner = widgets::panel(f, area, n, t(l, "shm_title"), t(l, "shm_sub"), selected, view);
    if widgets::roomy(inner) {
        full(f, inner, m, d, view);
    } else {
        compact(f, inner, m, d, view);
    }
}

/// One cell per slot (or per group of slots when they do not fit), filled
/// between `out` and `in`, with the count; then arrows marking `out` and
/// `in`, and their names.
pub fn ring_lines(d: &ShmDetail, width: u16, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    if d.slots == 0 {
        return vec![Line::from(Span::styled("-", th.dim()))];
    }
    let count = format!(" {}/{}", d.in_idx.wrapping_sub(d.out_idx).min(d.slots), d.slots);
    let room = (width as usize).saturating_sub(count.len()).max(4);
    let per = (d.slots as usize).div_ceil(room);
    let cells = (d.slots as usize).div_ceil(per);
    let depth = d.in_idx.wrapping_sub(d.out_idx).min(d.slots);
    let filled = |slot: u64| (slot + d.slots - d.out_idx % d.slots) % d.slots < depth;
    let ring: String = (0..cells)
        .map(|c| {
            let slots = (c * per) as u64..(((c + 1) * per) as u64).min(d.slots);
            if slots.into_iter().any(filled) {
                '■'
            } else {
                '□'
            }
        })
        .collect();
    let style = if depth >= d.slots { th.gauge_full() } else { th.gauge() };
    let out_c = (d.out_idx % d.slots) as usize / per;
    let in_c = (d.in_idx % d.slots) as usize / per;
    let mut arrows = vec![' '; cells];
    arrows[out_c] = '↑';
    arrows[in_c] = '↑';
    let names = if in_c == out_c {
        format!("{}in,out", " ".repeat(in_c))
    } else {
        let (a, first, b, second) = if out_c < in_c { (out_c, "out", in_c, "in") } else { (in_c, "in", out_c, "out") };
        let s = format!("{}{first}", " ".repeat(a));
        let gap = b.saturating_sub(s.len()).max(1);
        format!("{s}{}{second}", " ".repeat(gap))
    };
    vec![
        Line::from(vec![
            Span::styled(ring, style),
            Span::styled(count, if depth >= d.slots { th.bad() } else { th.value() }),
        ]),
        Line::from(Span::styled(arrows.into_iter().collect::<String>(), th.label())),
        Line::from(Span::styled(names, th.label())),
    ]
}

/// `/dev/shm/NAME  rw-------  16384 B  links 1`, from stat.
fn object_line(d: &ShmDetail, width: u16, view: &View) -> Line<'static> {
    let th = view.theme;
    if !d.exists {
        return Line::from(vec![
            Span::styled(widgets::pad_left_cut(&d.path, 30.min(width as usize)), th.dim()),
            Span::styled(format!("  {}", t(view.lang, "shm_gone")), th.warn()),
        ]);
    }
    let tail = format!(
        "  {}  {} B  {} {}",
        &crate::model::detail::fifo::mode_string(d.mode)[1..],
        d.size,
        t(view.lang, "links"),
        d.nlink
    );
    let room = (width as usize).saturating_sub(unicode_width::UnicodeWidthStr::width(tail.as_str()));
    Line::from(vec![
        Span::styled(widgets::pad_left_cut(&d.path, room.min(d.path.len()).max(8)), th.value()),
        Span::styled(tail, th.label()),
    ])
}

/// `in 1234  out 1230  slot 1016 B  msg 256 B` and who sleeps on which word.
fn index_lines(d: &ShmDetail, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let mut lines = vec![widgets::pairs_line(&[("in", d.in_idx.to_string()), ("out", d.out_idx.to_string())], view)];
    let mut msg = vec![
        Span::styled(format!("{} ", t(l, "slot")), th.label()),
        Span::styled(format!("{} B", d.slot_size), th.value()),
        Span::styled("  msg ", th.label()),
        Span::styled(format!("{} B", d.msg_size), th.value()),
    ];
    if d.msg_size > 0 && d.msg_size < d.msg_size_knob {
        msg.push(Span::styled(format!(" ({} {} B)", t(l, "cut_from"), d.msg_size_knob), th.warn()));
    }
    lines.push(Line::from(msg));
    for (role, word) in &d.futex_waits {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t_role(role, view)), th.label()),
            Span::styled(format!("futex(&{word})"), th.warn()),
        ]));
    }
    lines
}

fn t_role(role: &str, view: &View) -> &'static str {
    match role {
        "producer" => t(view.lang, "producer"),
        _ => t(view.lang, "consumer"),
    }
}

/// `0040  49 50 43 53 …  IPCS…`: 16 bytes a row.
pub fn hex_lines(hex: &str, base: u64, rows: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let bytes: Vec<u8> =
        (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok()).collect();
    bytes
        .chunks(16)
        .take(rows)
        .enumerate()
        .map(|(i, row)| {
            let hexes: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            let text: String = row.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect();
            Line::from(vec![
                Span::styled(format!("{:04x}  ", base + i as u64 * 16), th.dim()),
                Span::styled(format!("{:<47}", hexes.join(" ")), th.value()),
                Span::styled(format!("  {text}"), th.label()),
            ])
        })
        .collect()
}

fn full(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &ShmDetail, view: &View) {
    let l = view.lang;
    let th = view.theme;
    // The hex dump (a title and 16 bytes a row) when at least two rows fit.
    let spare = area.height.saturating_sub(8 + 2 + 1 + 1);
    let hex_h = if spare >= 3 { spare.min(5) } else { 0 };
    let rows = Layout::vertical([
        Constraint::Length(8),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(hex_h),
        Constraint::Min(1),
    ])
    .split(area);
    let [left, mid, right] = widgets::flow_row(f, rows[0], "memcpy", "memcpy", view);
    if let Some(p) = m.processes.first() {
        process_box(f, left, p, t(l, "producer"), view);
    }
    if let Some(c) = m.processes.get(1) {
        process_box(f, right, c, t(l, "consumer"), view);
    }
    let inner = widgets::object_box(f, mid, t(l, "shm_ring"), view);
    let mut lines = ring_lines(d, inner.width, view);
    lines.extend(index_lines(d, view));
    f.render_widget(Paragraph::new(lines), inner);

    let mode_note = Line::from(Span::styled(t(l, "shm_mode_note"), th.dim()));
    f.render_widget(Paragraph::new(vec![object_line(d, area.width, view), mode_note]), rows[1]);
    f.render_widget(Paragraph::new(integrity_line(&m.integrity, view)), rows[2]);
    if hex_h > 0 {
        let cols = Layout::horizontal([Constraint::Length(76), Constraint::Fill(1)]).split(rows[3]);
        let rows_n = hex_h as usize - 1;
        let mut left = vec![Line::from(Span::styled(t(l, "shm_hex_head"), th.title()))];
        left.extend(hex_lines(&d.head_hex, 0, rows_n, view));
        f.render_widget(Paragraph::new(left), cols[0]);
        if cols[1].width >= 70 {
            let mut right =
                vec![Line::from(Span::styled(format!("{} (+{})", t(l, "shm_hex_next"), d.next_offset), th.title()))];
            right.extend(hex_lines(&d.next_hex, d.next_offset, rows_n, view));
            f.render_widget(Paragraph::new(right), cols[1]);
        }
    }
    widgets::notes_or_knobs(f, rows[4], m, view);
}

/// For small grid cells: the same facts, one per line, most important first.
fn compact(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &ShmDetail, view: &View) {
    let mut lines = vec![gauge_line(&m.channel, area.width, view)];
    lines.extend(widgets::producer_consumer_lines(m, view));
    lines.push(integrity_line(&m.integrity, view));
    lines.extend(index_lines(d, view).into_iter().take(1));
    lines.extend(note_lines(&m.notes, 2, view));
    lines.push(object_line(d, area.width, view));
    lines.truncate(area.height as usize);
    f.render_widget(Paragraph::new(lines), area);
}

/// Sentences for the lesson pane about what the snapshot shows now.
pub fn observe(m: &MechanismSnapshot, d: &ShmDetail, lang: crate::i18n::Lang) -> Vec<String> {
    use crate::i18n::tf;
    let mut out = Vec::new();
    let (Some(prod), Some(cons)) = (m.processes.first(), m.processes.get(1)) else { return out };
    if !d.exists {
        if d.closed {
            out.push(t(lang, "obs_shm_unlinked").into());
        }
        return out;
    }
    // Who has the object open, from their fd tables.
    let holders: Vec<String> = m
        .processes
        .iter()
        .filter(|p| p.alive() && p.fds.iter().any(|f| f.target == d.path))
        .map(|p| format!("{} {}", t_role_lang(&p.role, lang), p.pid))
        .collect();
    if holders.len() > 1 {
        out.push(tf(
            lang,
            "obs_shm_shared",
            &[("path", d.path.clone()), ("who", holders.join(", ")), ("size", widgets::kib(d.size))],
        ));
    }
    let waits = |role: &str, word: &str| d.futex_waits.iter().any(|(r, w)| r == role && w == word);
    let depth = m.channel.depth;
    if d.slots > 0 && depth >= d.slots && waits("producer", "out") {
        out.push(tf(lang, "obs_shm_full", &[("n", depth.to_string()), ("slots", d.slots.to_string())]));
    } else if depth == 0 && waits("consumer", "in") {
        out.push(t(lang, "obs_shm_empty").into());
    } else if prod.alive() && prod.send_rate > 0.0 && d.slots > 0 {
        out.push(tf(
            lang,
            "obs_shm_flow",
            &[
                ("rate", widgets::rate(prod.send_rate)),
                ("n", depth.to_string()),
                ("slots", d.slots.to_string()),
                ("in", d.in_idx.to_string()),
                ("out", d.out_idx.to_string()),
            ],
        ));
    }
    if d.msg_size > 0 && d.msg_size < d.msg_size_knob {
        out.push(tf(
            lang,
            "obs_shm_clamped",
            &[("knob", d.msg_size_knob.to_string()), ("slot", d.slot_size.to_string())],
        ));
    }
    if cons.exit.is_some() && !d.closed {
        out.push(tf(lang, "obs_shm_outlives", &[("path", d.path.clone())]));
    }
    out
}

fn t_role_lang(role: &str, lang: crate::i18n::Lang) -> &str {
    match role {
        "producer" => t(lang, "producer"),
        "consumer" => t(lang, "consumer"),
        r => r,
    }
}
