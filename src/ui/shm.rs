//! The shared-memory panel, in the shape of the textbook's figure: one
//! region, mapped into two address spaces, each process at an address of
//! its own; in it the bounded buffer's slots, filled or empty, and the
//! `in` / `out` indices.
//!
//! ```text
//! ╭ producer 4121 · address space ╮  ╭ consumer 4122 · address space ╮
//! │■ BLOCKED: buffer full         │  │· pacing itself                │
//! │0x7f3a1c400000 rw-s            │  │0x7f9b22000000 rw-s            │
//! ╰───────────────┬───────────────╯  ╰───────────────┬───────────────╯
//!                 │ mmap                             │ mmap
//! ╔═══════════════▼══════════════════════════════════▼═══════════════╗
//! ║■ ■ ■ ■ ■ ■ ■ ■ ■ ■ ■ ■ ■ ■ ■ ■  16/16 slots                       ║
//! ║↑in,out                                                           ║
//! ╚ /dev/shm/ipcscope-4120-abcd1234-shm · rw------- · 16384 B ═══════╝
//! ```
//! One row in a tiny cell, the figure without boxes in a low one, and the
//! raw facts (address ranges, futex words, state letters, the region's
//! bytes) when roomy.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::BorderType;
use ratatui::Frame;

use super::fit::{self, Item};
use super::measured;
use super::widgets::{self, put};
use super::View;
use crate::i18n::t;
use crate::model::detail::shm::{ShmDetail, ShmMap};
use crate::model::snapshot::{MechanismSnapshot, ProcessSnapshot};

pub fn render(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &ShmDetail, n: usize, selected: bool, view: &View) {
    let l = view.lang;
    let subs = [t(l, "shm_sub"), t(l, "pp_shm_sub_s"), t(l, "pp_shm_sub_xs")];
    let inner = widgets::panel_fitted(f, area, n, &[t(l, "shm_title")], &subs, selected, view);
    let g = view.theme.gauge_rows();
    if inner.height <= 4 {
        tiny(f, inner, m, d, view);
    } else if inner.height >= 7 + g && inner.width >= 38 {
        figure(f, inner, m, d, view);
    } else {
        low(f, inner, m, d, view);
    }
}

/// The ring's depth: slots filled between `out` and `in`.
fn depth(d: &ShmDetail) -> u64 {
    d.in_idx.wrapping_sub(d.out_idx).min(d.slots)
}

/// The slots as cells, filled between `out` and `in`, with the count
/// after them (`■ ■ ■ □ □  3/16 slots`), `rows` rows thick; then a row
/// marking where `out` and `in` point; `numbered`: each slot's number
/// over it, when they fit. Slots share a cell when there are more than
/// the room holds.
pub fn ring_lines(d: &ShmDetail, width: u16, rows: u16, numbered: bool, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let width = width as usize;
    if d.slots == 0 || !d.mapped {
        return vec![Line::from(Span::styled(t(view.lang, "pp_ring_unread"), th.dim()))];
    }
    let n = d.slots as usize;
    let dep = depth(d);
    let full = dep >= d.slots;
    let numbers = format!("{}/{}", dep, d.slots);
    let unit = t(view.lang, "unit_slots");
    // The count, with its unit when that leaves the slots a cell each.
    let count_w = |with_unit: bool| 2 + fit::width(&numbers) + if with_unit { 1 + fit::width(unit) } else { 0 };
    let with_unit = n.min(32) + count_w(true) <= width;
    let room = width.saturating_sub(count_w(with_unit)).max(1);
    // A slot is a block of cells when there is room (wider on a wide
    // screen, up to 6), `■ ` or `■` when narrow, and shares a cell with
    // its neighbours when there are more slots than columns.
    let (cell, per) = if n <= room { ((room / n).min(7), 1) } else { (1, n.div_ceil(room)) };
    let cells = n.div_ceil(per);
    let out_slot = (d.out_idx % d.slots) as usize;
    let filled = |slot: usize| (slot + n - out_slot) % n < dep as usize;
    let style = if full { th.gauge_full() } else { th.gauge() };
    let mut ring: Vec<Span<'static>> = Vec::new();
    for c in 0..cells {
        let any = (c * per..((c + 1) * per).min(n)).any(filled);
        let text = match cell {
            1 => (if any { "■" } else { "□" }).to_string(),
            2 => (if any { "■ " } else { "□ " }).to_string(),
            w => format!("{} ", (if any { "█" } else { "░" }).repeat(w - 1)),
        };
        ring.push(Span::styled(text, if any { style } else { th.dim() }));
    }
    if let Some(last) = ring.last_mut() {
        last.content = last.content.trim_end().to_string().into();
    }
    let mut out = Vec::new();
    // Each slot's number over it, when every number fits its cell.
    if numbered && cell >= 3 && per == 1 && (n - 1).to_string().len() < cell {
        let nums: String = (0..n).map(|i| format!("{:<w$}", i, w = cell)).collect();
        out.push(Line::from(Span::styled(nums.trim_end().to_string(), th.dim())));
    }
    for r in 0..rows.max(1) {
        let mut spans = ring.clone();
        if r == 0 {
            spans.push(Span::raw("  "));
            spans.push(Span::styled(numbers.clone(), if full { th.bad() } else { th.value() }));
            if with_unit {
                spans.push(Span::styled(format!(" {unit}"), th.label()));
            }
        }
        out.push(Line::from(spans));
    }
    // Where the indices point.
    let x_of = |slot: usize| (slot / per) * cell;
    let (xo, xi) = (x_of(out_slot), x_of((d.in_idx % d.slots) as usize));
    let (win, wout) = (t(view.lang, "ring_in"), t(view.lang, "ring_out"));
    let marks = if xo == xi {
        format!("{}↑{win},{wout}", " ".repeat(xo))
    } else {
        let (a, an, b, bn) = if xo < xi { (xo, wout, xi, win) } else { (xi, win, xo, wout) };
        let first = format!("{}↑{an}", " ".repeat(a));
        if fit::width(&first) < b {
            format!("{first}{}↑{bn}", " ".repeat(b - fit::width(&first)))
        } else {
            format!("{}↑{}↑ {an},{bn}", " ".repeat(a), " ".repeat(b - a - 1))
        }
    };
    if fit::width(&marks) <= width {
        out.push(Line::from(Span::styled(marks, th.label())));
    }
    out
}

/// `0x7f3a1c400000`: where a process mapped the region.
fn addr(a: u64) -> String {
    format!("{a:#x}")
}

/// A process's mapping of the region, in `room` columns: the range and
/// its permissions when roomy, the start address alone when narrow.
fn map_line(map: Option<&ShmMap>, room: usize, roomy: bool, view: &View) -> Line<'static> {
    let th = view.theme;
    let Some(m) = map else { return Line::from(Span::styled(t(view.lang, "pp_not_mapped"), th.dim())) };
    let mut forms = Vec::new();
    if roomy {
        forms.push(Line::from(vec![
            Span::styled(format!("{}–{}", addr(m.start), addr(m.end)), th.value()),
            Span::styled(format!(" {}", m.perms), th.label()),
        ]));
    }
    forms.push(Line::from(vec![
        Span::styled(addr(m.start), th.value()),
        Span::styled(format!(" {}", m.perms), th.label()),
    ]));
    forms.push(Line::from(Span::styled(addr(m.start), th.value())));
    fit::first_fit_line(forms, room).unwrap_or_default()
}

/// Process `p`'s mapping, found by its pid.
fn map_of<'a>(d: &'a ShmDetail, p: &ProcessSnapshot) -> Option<&'a ShmMap> {
    d.maps.iter().find(|m| m.pid == p.pid && p.pid > 0)
}

/// `producer 4121 · address space`, shorter forms after it.
fn box_titles(p: &ProcessSnapshot, role: &'static str, view: &View) -> Vec<Line<'static>> {
    let l = view.lang;
    let th = view.theme;
    let pid = widgets::pid(p.pid).trim_start().to_string();
    vec![
        Line::from(vec![
            Span::styled(format!("{} ", t(l, role)), th.title()),
            Span::styled(format!("{} ", t(l, "pid")), th.label()),
            Span::styled(pid.clone(), th.value()),
            Span::styled(format!(" · {}", t(l, "pp_addr_space")), th.dim()),
        ]),
        Line::from(vec![
            Span::styled(format!("{} ", t(l, role)), th.title()),
            Span::styled(pid.clone(), th.value()),
            Span::styled(format!(" · {}", t(l, "pp_addr_space")), th.dim()),
        ]),
        Line::from(vec![Span::styled(format!("{} ", t(l, role)), th.title()), Span::styled(pid, th.value())]),
        Line::from(Span::styled(t(l, role).to_string(), th.title())),
    ]
}

/// The object's name and size, for the region box's title.
fn object_titles(d: &ShmDetail, room: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let size = format!(" · {} B", d.size);
    let mut out = Vec::new();
    let style = if d.exists { th.title() } else { th.dim() };
    // The permissions shm_open's third argument set, as stat shows them.
    if d.exists && d.mode != 0 {
        let mode = crate::model::detail::fifo::mode_string(d.mode);
        let with_mode = format!(" · {}{size}", mode.get(1..).unwrap_or_default());
        if let Some(p) = widgets::path_fit(&d.path, room.saturating_sub(fit::width(&with_mode))) {
            out.push(Line::from(vec![Span::styled(p, style), Span::styled(with_mode, th.value())]));
        }
    }
    if let Some(p) = widgets::path_fit(&d.path, room.saturating_sub(fit::width(&size))) {
        out.push(Line::from(vec![Span::styled(p, style), Span::styled(size.clone(), th.value())]));
    }
    if let Some(p) = widgets::path_fit(&d.path, room) {
        out.push(Line::from(Span::styled(p, style)));
    }
    out.push(Line::from(Span::styled(t(view.lang, "pp_region"), th.title())));
    out
}

/// The boxed figure: two address spaces over the one region.
fn figure(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &ShmDetail, view: &View) {
    let th = view.theme;
    let roomy = widgets::roomy(area);
    let g = th.gauge_rows();
    let spare = std::cell::Cell::new(area.height.saturating_sub(7 + g));
    // A row for what is wanted, if `keep` rows still remain after it.
    let take = |want: bool, keep: u16| {
        let ok = want && spare.get() > keep;
        spare.set(spare.get() - u16::from(ok));
        ok
    };
    let conn_row = take(true, 0);
    let integrity = take(true, 0);
    // The notes keep the rows they need (when they can have them) from
    // everything after this.
    let notes = widgets::note_rows(m, 2, area.width as usize, view).len() as u16;
    let notes = if notes <= spare.get() { notes } else { 0 };
    let figures = take(roomy && measured::any(m), notes);
    let indices = take(true, notes);
    let raw_state = take(roomy, notes);
    let futex = take(roomy && !d.futex_waits.is_empty(), notes);
    let object = take(true, notes);
    let slot_sizes = take(roomy, notes);
    let numbered = take(roomy, notes);
    let history = take(true, notes);
    // Room to spare: the slots grow, so the fill stays the biggest thing.
    let g = g + u16::from(take(true, notes)) + u16::from(take(g == 1, notes));
    let box_rows = 2 + u16::from(raw_state);
    let ring_rows = g + 1 + u16::from(indices) + u16::from(futex) + u16::from(slot_sizes) + u16::from(numbered);

    let bw = ((area.width - 2) / 2).min(if roomy { 52 } else { 40 });
    let boxes = [
        Rect { x: area.x, y: area.y, width: bw, height: box_rows + 2 },
        Rect { x: area.right() - bw, y: area.y, width: bw, height: box_rows + 2 },
    ];
    let mut centers = [0u16; 2];
    for (i, (b, role)) in boxes.iter().zip(["producer", "consumer"]).enumerate() {
        let Some(p) = m.processes.get(i) else { continue };
        let inner = widgets::fig_box(f, *b, box_titles(p, role, view), BorderType::Rounded, false, view);
        let room = inner.width as usize;
        let mut lines = vec![Line::from(widgets::party_fit(p, room, view)), map_line(map_of(d, p), room, roomy, view)];
        if raw_state {
            lines.push(widgets::raw_state_line(p, room, view));
        }
        widgets::put_lines(f, inner, &lines);
        centers[i] = b.x + b.width / 2;
    }

    // The one region both map.
    let ring_y = area.y + box_rows + 2 + u16::from(conn_row);
    let ring_area = Rect { x: area.x, y: ring_y, width: area.width, height: ring_rows + 2 };
    let titles = object_titles(d, area.width.saturating_sub(4) as usize, view);
    let inner = widgets::fig_box(f, ring_area, titles, BorderType::Double, true, view);
    let room = inner.width as usize;
    let mut lines = ring_lines(d, inner.width, g, numbered, view);
    if indices {
        lines.push(index_row(d, room, view));
    }
    if futex {
        lines.push(futex_row(d, room, view));
    }
    if slot_sizes {
        lines.push(slot_row(d, room, view));
    }
    widgets::put_lines(f, inner, &lines);

    // Connectors: each address space down to the same region.
    let style = th.label();
    let box_bottom = area.y + box_rows + 1;
    for &x in &centers {
        put(f, area, x, box_bottom, &Line::from(Span::styled("┬", style)));
        put(f, area, x, ring_y, &Line::from(Span::styled("▼", style)));
    }
    let label = fit::first_fit(&["mmap()"], centers[1].saturating_sub(centers[0] + 3) as usize).unwrap_or("");
    if conn_row {
        for &x in &centers {
            put(f, area, x, box_bottom + 1, &Line::from(Span::styled(format!("│ {label}"), style)));
        }
    } else if !label.is_empty() {
        for (i, &x) in centers.iter().enumerate() {
            if x + 3 + (fit::width(label) as u16) < boxes[i].right() {
                put(f, area, x + 1, box_bottom, &Line::from(Span::styled(format!(" {label} "), style)));
            }
        }
    }

    let below = Rect { y: ring_area.bottom(), height: area.bottom().saturating_sub(ring_area.bottom()), ..area };
    let room = below.width as usize;
    let mut lines = Vec::new();
    if integrity {
        lines.push(widgets::integrity_row(&m.integrity, room, view));
    }
    if figures {
        lines.push(measured::figures_row(m, room, view));
    }
    if object {
        lines.push(object_line(d, room, view));
    }
    if history && d.mapped {
        lines.push(widgets::history_line(m, room, view));
    }
    let left = (below.height as usize).saturating_sub(lines.len());
    lines.extend(widgets::note_rows(m, left, room, view));
    // The region's bytes when there is room for two rows of them.
    if roomy && below.height as usize >= lines.len() + 3 && room >= 76 && !d.head_hex.is_empty() {
        let rows = (below.height as usize - lines.len() - 1).min(4);
        lines.push(Line::from(Span::styled(t(view.lang, "shm_hex_head"), th.title())));
        lines.extend(hex_lines(&d.head_hex, 0, rows, view));
    }
    widgets::put_lines(f, below, &lines);
}

/// `in 9232  out 9216`: the two indices, as counters.
fn index_row(d: &ShmDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let items = vec![
        Item::new(
            0,
            vec![Span::styled(t(view.lang, "ring_in_idx"), th.label()), Span::styled(d.in_idx.to_string(), th.value())],
        ),
        Item::new(
            0,
            vec![
                Span::styled(t(view.lang, "ring_out_idx"), th.label()),
                Span::styled(d.out_idx.to_string(), th.value()),
            ],
        ),
        Item::text(2, t(view.lang, "pp_ring_rule"), th.dim()),
    ];
    widgets::fit_quiet(items, "  ", room)
}

/// Who sleeps on which ring word: `producer futex(&out)`.
fn futex_row(d: &ShmDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let items = d
        .futex_waits
        .iter()
        .map(|(role, word)| {
            Item::new(
                0,
                vec![
                    Span::styled(format!("{} ", t_role(role, view)), th.label()),
                    Span::styled(format!("futex(&{word})"), th.warn()),
                ],
            )
        })
        .collect();
    fit::row(items, "  ", room, view)
}

/// `slot 1016 B  msg 256 B`, and the size msg.size asked for when cut.
fn slot_row(d: &ShmDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let mut items = vec![
        Item::new(
            0,
            vec![
                Span::styled(format!("{} ", t(l, "slot")), th.label()),
                Span::styled(format!("{} B", d.slot_size), th.value()),
            ],
        ),
        Item::new(
            0,
            vec![
                Span::styled(format!("{} ", t(l, "shm_msg")), th.label()),
                Span::styled(format!("{} B", d.msg_size), th.value()),
            ],
        ),
    ];
    if d.msg_size > 0 && d.msg_size < d.msg_size_knob {
        items.push(Item::text(1, format!("({} {} B)", t(l, "cut_from"), d.msg_size_knob), th.warn()));
    }
    fit::row(items, "  ", room, view)
}

/// A low cell: the two processes and their addresses over the slots.
fn low(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &ShmDetail, view: &View) {
    let th = view.theme;
    let half = area.width.saturating_sub(1) / 2;
    let halves = [Rect { width: half, ..area }, Rect { x: area.right() - half, width: half, ..area }];
    for (i, (h, role)) in halves.iter().zip(["producer", "consumer"]).enumerate() {
        let Some(p) = m.processes.get(i) else { continue };
        let room = h.width as usize;
        let name = t(view.lang, role);
        let pid = widgets::pid(p.pid).trim_start().to_string();
        let short = fit::width(t(view.lang, widgets::party_short_key(p.party(false)))) + 2;
        let head = [format!("{name} {pid}"), name.to_string()]
            .into_iter()
            .find(|n| fit::width(n) + 1 + short <= room)
            .unwrap_or_else(|| name.to_string());
        let party = widgets::party_fit(p, room.saturating_sub(fit::width(&head) + 1), view);
        put(f, area, h.x, h.y, &Line::from(vec![Span::styled(head, th.title()), Span::raw(" "), party]));
        let map = map_line(map_of(d, p), room.saturating_sub(2), false, view);
        let mut spans = vec![Span::styled("▼ ", th.label())];
        spans.extend(map.spans);
        put(f, area, h.x, h.y + 1, &Line::from(spans));
    }
    let ring = ring_lines(d, area.width, th.gauge_rows(), false, view);
    let mut lines = ring;
    lines.push(widgets::integrity_row(&m.integrity, area.width as usize, view));
    let y = area.y + 2;
    widgets::put_lines(f, Rect { y, height: area.bottom().saturating_sub(y), ..area }, &lines);
}

/// A tiny cell: the flow in one row, the loudest part, the object, the two
/// addresses.
fn tiny(f: &mut Frame, area: Rect, m: &MechanismSnapshot, d: &ShmDetail, view: &View) {
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
    lines.push(widgets::parts_row(&parts, room, view));
    let size = format!(" {} B", d.size);
    let mut obj = Vec::new();
    if let Some(p) = widgets::path_fit(&d.path, room.saturating_sub(fit::width(&size))) {
        obj.push(Span::styled(p, th.title()));
        obj.push(Span::styled(size, th.value()));
    }
    lines.push(Line::from(obj));
    // The same object at a different address in each process.
    let addrs: Vec<String> = m.processes.iter().filter_map(|p| map_of(d, p)).map(|mp| addr(mp.start)).collect();
    let head = format!("{} ", t(l, "pp_mapped_at"));
    let forms = [
        format!("{head}{}", addrs.join(" · ")),
        addrs.join(" · "),
        addrs.first().map(|a| format!("{head}{a}")).unwrap_or_default(),
    ];
    match forms.iter().find(|f| !addrs.is_empty() && fit::width(f) <= room) {
        Some(f) => lines.push(Line::from(Span::styled(f.clone(), th.value()))),
        None => lines.push(widgets::integrity_row(&m.integrity, room, view)),
    }
    widgets::put_lines(f, area, &lines);
}

/// `rw-------  16384 B  links 1`, from stat of /dev/shm/NAME (its name
/// is the box's title), or that the name is gone.
fn object_line(d: &ShmDetail, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    if !d.exists {
        return Line::from(Span::styled(t(l, "shm_gone"), th.warn()));
    }
    let mode = crate::model::detail::fifo::mode_string(d.mode);
    let items = vec![
        Item::text(0, mode.get(1..).unwrap_or_default().to_string(), th.value()),
        Item::new(0, vec![Span::styled(format!("{} B", d.size), th.value())]),
        Item::new(
            1,
            vec![
                Span::styled(format!("{} ", t(l, "links")), th.label()),
                Span::styled(d.nlink.to_string(), th.value()),
            ],
        ),
        Item::text(2, t(l, "shm_mode_note"), th.dim()),
    ];
    widgets::fit_quiet(items, "  ", room)
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
