//! Pieces every panel uses: a process box, a fill gauge, the integrity
//! line, a sparkline, the fd table, the notes.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{BorderType, Paragraph, Wrap};
use ratatui::Frame;

use super::View;
use crate::i18n::t;
use crate::model::figures::Party;
use crate::model::snapshot::{Channel, Integrity, MechanismSnapshot, ProcessSnapshot, Unit};

/// "48.0K", "1.0M", "512": short byte counts for narrow boxes.
pub fn bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1}M", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1}K", n as f64 / 1024.0)
    } else {
        n.to_string()
    }
}

pub fn count(n: u64) -> String {
    if n >= 10_000_000 {
        format!("{}M", n / 1_000_000)
    } else if n >= 100_000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

pub fn rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k/s", r / 1000.0)
    } else {
        format!("{r:.0}/s")
    }
}

/// The state in words, with the letter the kernel reports.
pub fn state_text(p: &ProcessSnapshot, view: &View) -> String {
    if p.pid == 0 {
        return t(view.lang, "not_started").into();
    }
    if let Some(e) = &p.exit {
        return format!("{} · {}", t(view.lang, "exited"), exit_in(e, view.lang));
    }
    format!("{} {}", p.state, t(view.lang, p.waiting().label_key()))
}

/// A process's part as one mark and its words, styled so the key event
/// stands out: `■ BLOCKED: buffer full` (red, bold) is the thing a class
/// should see; `□ waiting for data` is the normal state of a fast reader.
pub fn party_span(p: &ProcessSnapshot, view: &View, run_paused: bool) -> Span<'static> {
    let party = p.party(run_paused);
    Span::styled(format!("{} {}", party_mark(party), t(view.lang, party.label_key())), view.theme.party(party))
}

/// The mark of a part alone, for diagrams with no room for words.
pub fn party_mark(party: Party) -> &'static str {
    match party {
        Party::BlockedFull => "■",
        Party::WaitingData => "□",
        Party::WaitingPartner => "◇",
        Party::StepHeld => "◆",
        Party::Stalled => "◌",
        Party::Paused => "‖",
        Party::Pacing => "·",
        Party::Running => "▶",
        Party::Idle => "○",
        Party::Exited => "✕",
        Party::NotStarted => "-",
    }
}

/// A box with all four borders and at most one left-aligned title, at its
/// top or its bottom: every cell exactly as ratatui's `Block` draws that
/// box, without what makes a `Block` cost at 10 Hz (styling every cell of
/// its area with an empty style, merging border symbols, sorting titles by
/// position and alignment). A frame draws a few dozen of them (issue #18).
#[derive(Debug, Clone, Default)]
pub struct Boxed<'a> {
    kind: BorderType,
    style: Style,
    title: Option<Line<'a>>,
    bottom: bool,
}

impl<'a> Boxed<'a> {
    pub fn new() -> Boxed<'a> {
        Boxed::default()
    }
    pub fn border_type(mut self, kind: BorderType) -> Self {
        self.kind = kind;
        self
    }
    pub fn border_style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
    pub fn title(mut self, title: impl Into<Line<'a>>) -> Self {
        self.title = Some(title.into());
        self
    }
    /// The title on the bottom border instead of the top one.
    pub fn title_bottom(mut self) -> Self {
        self.bottom = true;
        self
    }
    /// The area inside the borders.
    pub fn inner(&self, area: Rect) -> Rect {
        let x = area.x.saturating_add(1).min(area.right());
        let y = area.y.saturating_add(1).min(area.bottom());
        Rect { x, y, width: area.width.saturating_sub(2), height: area.height.saturating_sub(2) }
    }
}

impl ratatui::widgets::Widget for Boxed<'_> {
    fn render(self, area: Rect, buf: &mut ratatui::buffer::Buffer) {
        let area = area.intersection(buf.area);
        if area.is_empty() {
            return;
        }
        let set = self.kind.to_border_set();
        let (left, top) = (area.left(), area.top());
        let (right, bottom) = (area.right() - 1, area.bottom() - 1);
        let mut put = |x: u16, y: u16, symbol: &str| {
            if let Some(c) = buf.cell_mut((x, y)) {
                c.set_symbol(symbol).set_style(self.style);
            }
        };
        // Block's order: left, top, right, bottom sides, then the corners.
        for y in top..=bottom {
            put(left, y, set.vertical_left);
        }
        for x in left..=right {
            put(x, top, set.horizontal_top);
        }
        for y in top..=bottom {
            put(right, y, set.vertical_right);
        }
        for x in left..=right {
            put(x, bottom, set.horizontal_bottom);
        }
        put(right, bottom, set.bottom_right);
        put(right, top, set.top_right);
        put(left, bottom, set.bottom_left);
        put(left, top, set.top_left);
        if let Some(title) = &self.title {
            let room = area.width.saturating_sub(2);
            if room > 0 {
                let width = title.width().min(u16::MAX as usize) as u16;
                let y = if self.bottom { bottom } else { top };
                title.render(Rect { x: left + 1, y, width: width.min(room), height: 1 }, buf);
            }
        }
    }
}

/// A bordered box describing one process.
pub fn process_box(f: &mut Frame, area: Rect, p: &ProcessSnapshot, title: &str, view: &View) {
    let th = view.theme;
    let block = Boxed::new().border_type(BorderType::Rounded).title(Span::styled(format!(" {title} "), th.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "pid")), th.label()),
            Span::styled(pid(p.pid), th.value()),
        ]),
        Line::from(Span::styled(state_text(p, view), th.state(p))),
    ];
    if p.exit.is_none() && p.pid > 0 {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "wchan_label")), th.label()),
            Span::raw(wchan_in(&p.wchan, view.lang)),
        ]));
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "op_label")), th.label()),
            Span::raw(op_word(&p.op, view.lang)),
            Span::styled(format!(" {}", since(p.op_ms)), th.dim()),
        ]));
    }
    if p.sent > 0 || p.received == 0 {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "sent")), th.label()),
            Span::styled(count(p.sent), th.value()),
            Span::styled(format!(" {}", rate(p.send_rate)), th.dim()),
        ]));
    }
    if p.received > 0 || p.sent == 0 {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t(view.lang, "received")), th.label()),
            Span::styled(count(p.received), th.value()),
            Span::styled(format!(" {}", rate(p.recv_rate)), th.dim()),
        ]));
    }
    let e = p.errors;
    if e.epipe + e.eagain + e.etimedout + e.other > 0 {
        let mut parts = Vec::new();
        for (name, n) in
            [("EPIPE", e.epipe), ("EAGAIN", e.eagain), ("ETIMEDOUT", e.etimedout), (t(view.lang, "err_other"), e.other)]
        {
            if n > 0 {
                parts.push(format!("{name} {n}"));
            }
        }
        lines.push(Line::from(Span::styled(parts.join(" "), th.bad())));
    }
    super::fit::draw(f, inner, lines);
}

/// PIDs right-aligned in a fixed width, so a snapshot filter can mask them
/// without shifting the line.
pub fn pid(p: i32) -> String {
    if p > 0 {
        format!("{p:>7}")
    } else {
        format!("{:>7}", "-")
    }
}

pub fn wchan(w: &str) -> String {
    wchan_in(w, crate::i18n::Lang::En)
}

/// A wait channel as the kernel names it; `0` (on a CPU) says so in
/// `lang`.
pub fn wchan_in(w: &str, lang: crate::i18n::Lang) -> String {
    match w {
        "" => "-".into(),
        "0" => format!("0 ({})", t(lang, "wchan_running")),
        w => w.into(),
    }
}

/// A process's role in `lang`: `producer` → `생산자`, `writer-2` →
/// `쓰기 2`, `client-1` → `클라이언트-1`; in English and for an unknown
/// role, as recorded (the JSON's own word).
pub fn role_name(role: &str, lang: crate::i18n::Lang) -> String {
    use crate::model::figures::Role;
    if lang == crate::i18n::Lang::En {
        return role.into();
    }
    match Role::parse(role) {
        Role::Producer => t(lang, "producer").into(),
        Role::Consumer => t(lang, "consumer").into(),
        Role::Reader => t(lang, "reader").into(),
        Role::Writer(i) => format!("{} {i}", t(lang, "writer")),
        Role::Server => t(lang, "role_server").into(),
        Role::Client(n) => format!("{}-{n}", t(lang, "role_client")),
        // `kernel`, and any other role the table names.
        Role::Other => crate::i18n::lookup(lang, &format!("role_{role}")).unwrap_or(role).into(),
    }
}

/// A probe's note in `lang` (`i18n::note_msg`), its `{role}` argument (a
/// process's role as recorded, `client-1`) said in the reader's language.
pub fn note_msg(lang: crate::i18n::Lang, msg: &str, args: &[(String, String)]) -> Option<String> {
    let args: Vec<(String, String)> =
        args.iter().map(|(k, v)| (k.clone(), if k == "role" { role_name(v, lang) } else { v.clone() })).collect();
    crate::i18n::note_msg(lang, msg, &args)
}

/// A recorded call line (`read(6, 24 bytes) = 24`, as the workers' trace
/// writes it, in recordings old and new) in `lang`: the call stays, the
/// few words around it (`bytes`, `ring full`, `prio`) are translated.
pub fn call_text(text: &str, lang: crate::i18n::Lang) -> String {
    if lang == crate::i18n::Lang::En {
        return text.to_string();
    }
    let mut out =
        text.replace("(ring full)", t(lang, "call_ring_full")).replace("(ring empty)", t(lang, "call_ring_empty"));
    out = mach_call_text(out, lang);
    out = alpc_call_text(out, lang);
    // mq_open's attributes by their field names in `struct mq_attr`.
    out = out.replace("{maxmsg ", "{mq_maxmsg=").replace(", msgsize ", ", mq_msgsize=");
    // `mq_receive(…) = 256, prio 3`: the priority received, after the result.
    if let Some(i) = out.rfind(" = ") {
        let tail = out[i..].replace(", prio ", t(lang, "call_prio"));
        out.replace_range(i.., &tail);
    }
    // `24 bytes` → `24 B`: only after a number.
    let mut res = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find(" bytes") {
        let after_number = rest[..i].chars().last().is_some_and(|c| c.is_ascii_digit());
        res.push_str(&rest[..i]);
        res.push_str(if after_number { " B" } else { " bytes" });
        rest = &rest[i + " bytes".len()..];
    }
    res.push_str(rest);
    res
}

/// The Mach workers' few words around their calls (see
/// `mechanisms::mach::workload::format_call`) in `lang`; the calls, names
/// and constants stay.
fn mach_call_text(out: String, lang: crate::i18n::Lang) -> String {
    use crate::i18n::tf;
    if out.starts_with("mach_msg(") {
        // The received message by its header field (`msgh_id`).
        return out
            .replace(" (id ", " (msgh_id ")
            .replace(", seq ", t(lang, "call_mach_seq"))
            .replace(" (task_info reply from the kernel)", t(lang, "call_mach_task_info_reply"))
            .replace(" (from the task's other thread)", t(lang, "call_mach_other_thread"));
    }
    if out.starts_with("mach_port_allocate(") {
        return out
            .replace(" (notify port)", t(lang, "call_mach_notify_port"))
            .replace(" (port for the kernel's answers)", t(lang, "call_mach_kernel_answers_port"))
            .replace(" (reply port)", t(lang, "call_mach_reply_port"));
    }
    if let Some((n, rest)) = out.strip_prefix("thread ").and_then(|r| r.split_once(" joins: same name space, ")) {
        return format!("{} {rest}", tf(lang, "call_mach_thread_joins", &[("n", n.to_string())]));
    }
    if let Some((name, port)) = out.strip_prefix("received ").and_then(|r| r.split_once(" on ")) {
        // A notification the worker has no constant's name for.
        let name = if name == "notification" { t(lang, "call_mach_notification") } else { name };
        return tf(lang, "call_mach_received", &[("name", name.to_string()), ("port", port.to_string())]);
    }
    if let Some(pid) = out.strip_prefix("emulated Mach kernel listening (pid ").and_then(|r| r.strip_suffix(')')) {
        return tf(lang, "call_mach_kernel_listening", &[("pid", pid.to_string())]);
    }
    out
}

/// The NT kernel's words around its calls (see
/// `mechanisms::alpc::describe_call`) in `lang`; calls, statuses and
/// message types stay.
fn alpc_call_text(out: String, lang: crate::i18n::Lang) -> String {
    use crate::i18n::tf;
    if !out.starts_with("Nt") && !out.starts_with("[ipcscope") {
        return out;
    }
    let mut out = out
        .replace(" bytes via section @", t(lang, "call_alpc_via_section"))
        .replace(" bytes left for direct access", t(lang, "call_alpc_left_direct"))
        .replace(" bytes copied", t(lang, "call_alpc_copied"))
        .replace(" → view @", t(lang, "call_alpc_view"))
        .replace(" → port 0x", t(lang, "call_alpc_port"))
        .replace(", receive)", t(lang, "call_alpc_receive"))
        .replace("[ipcscope only, no NT call] the kernel records the PR_SET_PTRACER grant", t(lang, "call_alpc_grant"));
    // `[ipcscope: asks for a 65536-byte section]`
    if let Some(i) = out.find("[ipcscope: asks for a ") {
        let rest = &out[i + "[ipcscope: asks for a ".len()..];
        if let Some((n, tail)) = rest.split_once("-byte section]") {
            let said = tf(lang, "call_alpc_asks_section", &[("n", n.to_string())]);
            out = format!("{}{said}{tail}", &out[..i]);
        }
    }
    out
}

/// What a process is doing, as its worker names it: a call (`write()`,
/// `mq_send()`) stays; the few words (`paced`, `stalled`, `futex wait`)
/// are said in `lang`.
pub fn op_word(op: &str, lang: crate::i18n::Lang) -> String {
    let key = match op {
        "idle" => "op_idle",
        "starting" => "op_starting",
        "paced" => "op_paced",
        "stalled" => "op_stalled",
        "send" => "op_send",
        "receive" => "op_receive",
        "wait" => "op_wait",
        "done" => "op_done",
        "step: held" => "op_step_held",
        "copy into slot" => "op_copy_in",
        "copy from slot" => "op_copy_out",
        "futex wait" => "op_futex_wait",
        _ => return op.to_string(),
    };
    t(lang, key).to_string()
}

pub fn since(ms: u64) -> String {
    if ms >= 10_000 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

/// What a gauge's label says beside its numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct GaugeWords<'a> {
    /// What the numbers count, after them: the first form that leaves the
    /// bar its room (longest first), or none. Empty: the unit's word
    /// (`messages`; nothing for bytes).
    pub unit: &'a [&'a str],
    /// What the part past capacity is (`kept`); `None`: only `+N`.
    pub over: Option<&'a str>,
    /// Too narrow for bar and label side by side: the label goes under the
    /// bar (else the bar shrinks to 4 cells and the line runs over).
    pub wrap: bool,
}

/// A one-line fill bar: `███████░░░░ 48.0K/64.0K`.
pub fn gauge_line(c: &Channel, width: u16, view: &View) -> Line<'static> {
    let mut lines = gauge_words(c, width, GaugeWords::default(), view);
    lines.swap_remove(0)
}

/// Columns a gauge's bar keeps before the label gives up its unit words.
const GAUGE_MIN_BAR: usize = 4;

/// A fill bar whose label names what it counts. The bar is the capacity
/// and never fills past it: what the kernel holds beyond it is drawn apart
/// after the bar and counted as `+N`, so `██████████ ▒▒▒ 5/5 + 3 kept`,
/// never `8/5`. One line when the label fits beside a bar; else the bar,
/// then the label's parts on as many lines as they need (never cut).
pub fn gauge_words(c: &Channel, width: u16, words: GaugeWords, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let num = |n: u64| if c.unit == Unit::Bytes { bytes(n) } else { n.to_string() };
    let (within, past) = (c.within(), c.past());
    let full = c.full();
    let numbers = format!("{}/{}", num(within), num(c.capacity));
    let over = match (past, words.over) {
        (0, _) => String::new(),
        (n, Some(w)) => format!("+ {} {w}", num(n)),
        (n, None) => format!("+{}", num(n)),
    };
    let width = width as usize;
    let apart = if past > 0 { 2 } else { 0 };
    let used = 1 + display_width(&numbers) + if past > 0 { 1 + display_width(&over) } else { 0 };
    // What a student reads is in their language: the unit word too.
    let own = [match c.unit {
        Unit::Bytes => "",
        Unit::Messages => t(view.lang, "unit_messages"),
        Unit::Slots => t(view.lang, "unit_slots"),
    }];
    let forms: &[&str] = match (words.unit, c.unit) {
        ([], Unit::Bytes) => &[],
        ([], _) => &own,
        (forms, _) => forms,
    };
    let one_line = !words.wrap || used + apart + GAUGE_MIN_BAR <= width;
    // On one line the unit must leave the bar its room; under the bar it
    // goes beside the last part, or alone.
    let fitting = |room: usize| forms.iter().copied().find(|u| display_width(u) < room).unwrap_or_default();
    let unit = if one_line { fitting(width.saturating_sub(used + apart + GAUGE_MIN_BAR)) } else { "" };
    let label_w = if one_line { used + if unit.is_empty() { 0 } else { 1 + display_width(unit) } } else { 0 };
    let avail = width.saturating_sub(label_w).max(4);
    // The part past capacity: a separate run of cells, on the bar's scale
    // but at most a quarter of the room.
    let seg = if past > 0 {
        let scaled = (past as u128 * avail as u128).div_ceil((c.capacity + past) as u128) as usize;
        scaled.clamp(1, (avail / 4).max(1))
    } else {
        0
    };
    let bar_w = avail.saturating_sub(seg + apart / 2).max(2);
    let filled = (within as u128 * bar_w as u128).checked_div(c.capacity as u128).unwrap_or(0);
    // Round up, so any content shows at least one block.
    let filled = if within > 0 && filled == 0 { 1 } else { filled as usize }.min(bar_w);
    let style = if full { th.gauge_full() } else { th.gauge() };
    let mut bar = vec![Span::styled("█".repeat(filled), style), Span::styled("░".repeat(bar_w - filled), th.dim())];
    if seg > 0 {
        bar.push(Span::raw(" "));
        bar.push(Span::styled("▒".repeat(seg), th.warn()));
    }
    let mut parts = vec![Span::styled(numbers, if full { th.bad() } else { th.value() })];
    if !over.is_empty() {
        parts.push(Span::styled(over, th.warn()));
    }
    if !unit.is_empty() {
        parts.push(Span::styled(unit.to_string(), th.label()));
    }
    if one_line {
        for p in parts {
            bar.push(Span::raw(" "));
            bar.push(p);
        }
        return vec![Line::from(bar)];
    }
    // Narrow: the label's parts packed under the bar.
    let mut lines = vec![Line::from(bar)];
    let mut cur: Vec<Span<'static>> = Vec::new();
    let mut cur_w = 0;
    for p in parts {
        let w = display_width(&p.content);
        if !cur.is_empty() && cur_w + 1 + w > width {
            lines.push(Line::from(std::mem::take(&mut cur)));
            cur_w = 0;
        }
        if !cur.is_empty() {
            cur.push(Span::raw(" "));
            cur_w += 1;
        }
        cur.push(p);
        cur_w += w;
    }
    // The unit beside the last part, else on a line of its own.
    let beside = fitting(width.saturating_sub(cur_w));
    if !beside.is_empty() {
        cur.push(Span::raw(" "));
        cur.push(Span::styled(beside.to_string(), th.label()));
    }
    lines.push(Line::from(cur));
    let alone = fitting(width + 1);
    if beside.is_empty() && !alone.is_empty() {
        lines.push(Line::from(Span::styled(alone.to_string(), th.label())));
    }
    lines
}

pub fn integrity_line(i: &Integrity, view: &View) -> Line<'static> {
    let th = view.theme;
    let l = view.lang;
    let mut spans =
        vec![Span::styled(format!("{} ", t(l, "delivered")), th.label()), Span::styled(count(i.delivered), th.good())];
    for (key, n) in [("lost", i.lost), ("corrupt", i.corrupt), ("duplicated", i.duplicated), ("reordered", i.reordered)]
    {
        spans.push(Span::styled(format!("  {} ", t(l, key)), th.label()));
        spans.push(Span::styled(count(n), if n > 0 { th.bad() } else { th.value() }));
    }
    if i.foreign > 0 {
        spans.push(Span::styled(format!("  {} ", t(l, "foreign")), th.label()));
        spans.push(Span::styled(count(i.foreign), th.warn()));
    }
    Line::from(spans)
}

/// Sparkline of channel depth, scaled to capacity, as one line of blocks.
pub fn sparkline(history: &[u64], capacity: u64, width: usize, view: &View) -> Line<'static> {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let take = history.len().min(width);
    let s: String = history[history.len() - take..]
        .iter()
        .map(|&d| {
            let level = (d.min(capacity) * 7 + capacity / 2).checked_div(capacity).unwrap_or(0);
            BARS[level as usize]
        })
        .collect();
    Line::from(Span::styled(s, view.theme.gauge()))
}

/// A panel's outer block: number, title, subtitle; highlighted when selected.
pub fn panel_block(n: usize, title: &str, sub: &str, selected: bool, view: &View) -> Boxed<'static> {
    let th = view.theme;
    let border = if selected { th.selected_border() } else { th.border() };
    Boxed::new().border_type(th.border_type(selected)).border_style(border).title(Line::from(vec![
        Span::styled(format!(" {n} "), th.title().add_modifier(Modifier::REVERSED)),
        Span::styled(format!(" {title} "), th.title()),
        Span::styled(format!("{sub} "), th.dim()),
    ]))
}

/// Draw panel `n`'s frame (see [`panel_block`]); returns the area inside.
pub fn panel(f: &mut Frame, area: Rect, n: usize, title: &str, sub: &str, selected: bool, view: &View) -> Rect {
    let block = panel_block(n, title, sub, selected, view);
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// Whether the inside of a panel has room for its full layout; a smaller
/// cell gets the compact one.
pub fn roomy(inner: Rect) -> bool {
    inner.height >= 14 && inner.width >= 70
}

/// A panel's foot: its latest notes that fit, or the knob settings when
/// there are none.
pub fn notes_or_knobs(f: &mut Frame, area: Rect, m: &MechanismSnapshot, view: &View) {
    let mut bottom = note_lines(&m.notes, area.height as usize, view);
    if bottom.is_empty() {
        bottom.push(Line::from(Span::styled(knob_line(m), view.theme.dim())));
    }
    f.render_widget(Paragraph::new(bottom).wrap(Wrap { trim: false }), area);
}

/// The producer's and the consumer's lines, labels padded to one width.
pub fn producer_consumer_lines(m: &MechanismSnapshot, view: &View) -> Vec<Line<'static>> {
    let labels = [t(view.lang, "producer"), t(view.lang, "consumer")];
    let procs: Vec<_> = m.processes.iter().zip(labels).map(|(p, s)| (p, s.to_string())).collect();
    process_lines(&procs, view)
}

pub fn note_lines(notes: &[crate::model::snapshot::Note], max: usize, view: &View) -> Vec<Line<'static>> {
    notes
        .iter()
        .rev()
        .take(max)
        .rev()
        .map(|n| {
            let text = note_msg(view.lang, &n.msg, &n.args)
                .unwrap_or_else(|| crate::i18n::note(view.lang, &n.text).to_string());
            Line::from(vec![Span::styled("▸ ", view.theme.warn()), Span::raw(text)])
        })
        .collect()
}

pub fn arrow(label: &str, width: u16, style: Style) -> Vec<Line<'static>> {
    let w = width as usize;
    let shaft = w.saturating_sub(2);
    vec![
        Line::from(Span::styled(format!("{label:^w$}"), style)),
        Line::from(Span::styled(format!(" {}▶", "─".repeat(shaft.saturating_sub(1))), style)),
    ]
}

/// `s` padded with spaces (or cut, ending in `…`) to exactly `w` columns
/// of display width, so Korean labels (two columns each) line up in tables.
pub fn pad(s: &str, w: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let mut out = String::new();
    let mut used = 0;
    let total = super::fit::width(s);
    for c in s.chars() {
        let cw = c.width().unwrap_or(0);
        if total > w && used + cw + 1 > w {
            if used < w {
                out.push('…');
                used += 1;
            }
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push_str(&" ".repeat(w.saturating_sub(used)));
    out
}

/// Like `pad`, but a string too long loses its beginning (`…/run/sock`):
/// for paths, whose end says the most.
pub fn pad_left_cut(s: &str, w: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if super::fit::width(s) <= w {
        return pad(s, w);
    }
    let mut tail = Vec::new();
    let mut used = 1;
    for c in s.chars().rev() {
        let cw = c.width().unwrap_or(0);
        if used + cw > w {
            break;
        }
        tail.push(c);
        used += cw;
    }
    let mut out = String::from("…");
    out.extend(tail.into_iter().rev());
    pad(&out, w)
}

/// One process on one line: `label    pid state rate`, for lists of
/// several processes and compact panels.
pub fn process_line(p: &ProcessSnapshot, label: &str, view: &View) -> Line<'static> {
    let th = view.theme;
    let rate_now = if p.sent > 0 || p.received == 0 { p.send_rate } else { p.recv_rate };
    Line::from(vec![
        Span::styled(format!("{label} "), th.label()),
        Span::styled(pid(p.pid), th.value()),
        Span::raw(" "),
        Span::styled(state_text(p, view), th.state(p)),
        Span::styled(format!(" {}", rate(rate_now)), th.dim()),
    ])
}

/// The textbook's picture in one row: sender, arrow, the kernel object,
/// arrow, receiver. Draws the two arrows (labelled with the calls) and
/// returns the sender, object and receiver areas for the caller to fill.
pub fn flow_row(f: &mut Frame, area: Rect, send: &str, recv: &str, view: &View) -> [Rect; 3] {
    use ratatui::layout::{Constraint, Layout};
    let aw = |s: &str| (super::fit::width(s) as u16 + 2).max(8);
    let cols = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(aw(send)),
        Constraint::Fill(1),
        Constraint::Length(aw(recv)),
        Constraint::Fill(1),
    ])
    .split(area);
    for (label, c) in [(send, cols[1]), (recv, cols[3])] {
        let r = Rect { y: c.y + 2, height: c.height.saturating_sub(2).min(2), ..c };
        super::fit::draw(f, r, arrow(label, c.width, view.theme.label()));
    }
    [cols[0], cols[2], cols[4]]
}

/// A double-bordered box for the kernel object between the processes;
/// returns its inner area.
pub fn object_box(f: &mut Frame, area: Rect, title: &str, view: &View) -> Rect {
    let block =
        Boxed::new().border_type(BorderType::Double).title(Span::styled(format!(" {title} "), view.theme.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// `key=value  key=value …` of the knobs a snapshot carries.
pub fn knob_line(m: &MechanismSnapshot) -> String {
    m.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("  ")
}

/// `label value  label value …` as one line of label / value spans.
pub fn pairs_line(pairs: &[(&str, String)], view: &View) -> Line<'static> {
    let th = view.theme;
    let mut spans = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let sep = if i == 0 { "" } else { "  " };
        spans.push(Span::styled(format!("{sep}{k} "), th.label()));
        spans.push(Span::styled(v.clone(), th.value()));
    }
    Line::from(spans)
}

/// The textbook's picture of a channel: sender, arrow, the kernel's buffer,
/// arrow, receiver. Draws the arrows (labelled with the calls) and the
/// buffer's double border titled `buffer_title`; returns the sender's
/// area, the inside of the buffer box and the receiver's area for the
/// caller to fill.
pub fn flow_diagram(
    f: &mut Frame,
    area: Rect,
    calls: (&str, &str),
    buffer_title: &str,
    view: &View,
) -> (Rect, Rect, Rect) {
    let [left, mid, right] = flow_row(f, area, calls.0, calls.1, view);
    (left, object_box(f, mid, buffer_title, view), right)
}

/// `process_line` for several processes, their labels padded to one
/// display width so the pids line up in both languages.
pub fn process_lines(procs: &[(&ProcessSnapshot, String)], view: &View) -> Vec<Line<'static>> {
    let w = procs.iter().map(|(_, l)| super::fit::width(l.as_str())).max().unwrap_or(0);
    procs.iter().map(|(p, l)| process_line(p, &pad(l, w), view)).collect()
}

/// Columns `s` takes on screen (Korean syllables take two).
pub fn display_width(s: &str) -> usize {
    super::fit::width(s)
}

/// Greedy word wrap by display width, for prose (lessons, captions). Ratatui
/// 0.30's `Wrap` can end a line with a wide (Korean) character one column
/// past the edge, over the border; this never does. A word longer than a
/// line is cut between characters.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    let width = width.max(2);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let w = word.width();
        if used > 0 && used + 1 + w <= width {
            cur.push(' ');
            cur.push_str(word);
            used += 1 + w;
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut cur));
            used = 0;
        }
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if used + cw > width {
                lines.push(std::mem::take(&mut cur));
                used = 0;
            }
            cur.push(c);
            used += cw;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// "64.0 KiB" for a lesson sentence.
pub fn kib(n: u64) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else if n >= 1024 {
        format!("{} KiB", bytes(n).trim_end_matches('K'))
    } else {
        format!("{n} B")
    }
}

#[cfg(test)]
mod wrap_tests {
    use super::wrap_words;
    use unicode_width::UnicodeWidthStr;

    #[test]
    fn korean_lines_never_pass_the_edge() {
        let text = "아니라 경로이므로 부모–자식 관계가 필요 없습니다. 여기서는 읽는 프로세스 하나와 쓰는 프로세스 둘이";
        for w in 5..90 {
            for l in wrap_words(text, w) {
                assert!(l.width() <= w, "{w}: {l:?}");
            }
        }
        assert_eq!(wrap_words("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap_words("abcdef", 4), ["abcd", "ef"]);
        assert_eq!(wrap_words("", 4), [""]);
    }
}

#[cfg(test)]
mod gauge_tests {
    use super::{display_width, gauge_line, gauge_words, GaugeWords};
    use crate::model::snapshot::{Channel, Unit};
    use crate::ui::View;

    fn text(c: &Channel, width: u16, words: GaugeWords) -> String {
        let lines = gauge_words(c, width, words, &View::default());
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `a/b` in a gauge's label, as numbers.
    fn fraction(s: &str) -> (u64, u64) {
        let f = s.split_whitespace().find(|w| w.contains('/')).unwrap_or_else(|| panic!("no a/b in {s:?}"));
        let (a, b) = f.split_once('/').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    }

    /// Whatever the channel says (an old recording's depth past its
    /// capacity included), the gauge never draws more than full: the label
    /// is never a fraction over 1, the bar never longer than its room, and
    /// what is past capacity is counted as `+N`.
    #[test]
    fn a_gauge_never_draws_more_than_full() {
        for capacity in [1, 5, 10, 1024] {
            for depth in [0, 1, capacity - 1, capacity, capacity + 1, capacity + 3, capacity * 3] {
                for over in [0, 1, 3, 200] {
                    let c = Channel { depth, capacity, unit: Unit::Messages, over };
                    let past = over + depth.saturating_sub(capacity);
                    for width in [12u16, 20, 38, 46, 78] {
                        let kept = GaugeWords { over: Some("kept"), wrap: true, ..GaugeWords::default() };
                        for words in [GaugeWords::default(), kept] {
                            let s = text(&c, width, words);
                            let (a, b) = fraction(&s);
                            assert!(a <= b, "{c:?} at {width}: {s:?}");
                            assert_eq!((a, b), (depth.min(capacity), capacity), "{s:?}");
                            let bar = s.chars().take_while(|&ch| ch == '█' || ch == '░').count();
                            let filled = s.chars().filter(|&ch| ch == '█').count();
                            assert!(filled <= bar && (filled == bar) == (depth >= capacity), "{c:?}: {s:?}");
                            if past > 0 {
                                assert!(
                                    s.contains(&format!("+{past}")) || s.contains(&format!("+ {past} kept")),
                                    "{s:?}"
                                );
                                assert!(s.contains('▒'), "the part past capacity is drawn apart: {s:?}");
                            } else {
                                assert!(!s.contains('+') && !s.contains('▒'), "{s:?}");
                            }
                            // Wider than asked only when even the numbers do not fit.
                            for l in s.lines() {
                                assert!(display_width(l) <= width as usize || (!words.wrap && bar <= 4), "{s:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The two cases: a Unix socket's memory one skb past
    /// SO_SNDBUF, and Mach's queue with three messages kept past qlimit.
    #[test]
    fn the_excess_is_counted_apart() {
        let sock = Channel::split(66_560, 65_536, Unit::Bytes);
        let s = text(&sock, 46, GaugeWords { unit: &["send-buffer memory", "memory"], over: None, wrap: true });
        assert!(s.ends_with(" 64.0K/64.0K +1.0K send-buffer memory"), "{s:?}");
        assert_eq!(display_width(&s), 46);
        // Narrow: a shorter unit word, the numbers whole.
        let s = text(&sock, 32, GaugeWords { unit: &["send-buffer memory", "memory"], over: None, wrap: true });
        assert!(s.ends_with(" 64.0K/64.0K +1.0K memory"), "{s:?}");
        // Too narrow for both: the bar, then the label whole under it.
        let s =
            text(&Channel::split(132_608, 131_072, Unit::Bytes), 18, GaugeWords { wrap: true, ..Default::default() });
        assert_eq!(s, "████████████████ ▒\n128.0K/128.0K\n+1.5K");
        let narrow = GaugeWords { unit: &["send-buffer memory", "memory"], wrap: true, ..Default::default() };
        let s = text(&Channel::split(132_608, 131_072, Unit::Bytes), 18, narrow);
        assert_eq!(s, "████████████████ ▒\n128.0K/128.0K\n+1.5K memory");
        let mach = Channel::split(8, 5, Unit::Messages);
        let s = text(&mach, 38, GaugeWords { over: Some("kept"), wrap: true, ..GaugeWords::default() });
        assert_eq!(s, "███████████ ▒▒▒▒ 5/5 + 3 kept messages");
        assert!(!s.contains("8/5"));
        // An old recording (depth past capacity, no `over`) reads the same.
        let old = Channel { depth: 8, capacity: 5, unit: Unit::Messages, over: 0 };
        assert!(gauge_line(&old, 38, &View::default()).to_string().contains(" 5/5 +3 messages"));
    }
}

// --- diagrams (queues) ---

/// One row of a diagram: spans placed at columns, each whole or not at
/// all (a span past the room or over another is refused, never cut).
#[derive(Debug, Clone, Default)]
pub struct Row {
    room: usize,
    parts: Vec<(usize, usize, Span<'static>)>,
}

impl Row {
    pub fn new(room: usize) -> Row {
        Row { room, parts: Vec::new() }
    }

    /// Whether columns `x..x+w` are inside the room and free.
    pub fn free(&self, x: usize, w: usize) -> bool {
        x + w <= self.room && self.parts.iter().all(|&(px, pw, _)| x + w <= px || px + pw <= x)
    }

    /// Place `spans` side by side from column `x`, all or none.
    pub fn put(&mut self, x: usize, spans: Vec<Span<'static>>) -> bool {
        let w: usize = spans.iter().map(|s| display_width(&s.content)).sum();
        if !self.free(x, w) {
            return false;
        }
        let mut at = x;
        for s in spans {
            let sw = display_width(&s.content);
            self.parts.push((at, sw, s));
            at += sw;
        }
        true
    }

    /// Place `spans` so they end at column `end` (exclusive).
    pub fn put_end(&mut self, end: usize, spans: Vec<Span<'static>>) -> bool {
        let w: usize = spans.iter().map(|s| display_width(&s.content)).sum();
        end >= w && self.put(end - w, spans)
    }

    /// Place `spans` centred on `x..x+w`.
    pub fn put_centred(&mut self, x: usize, w: usize, spans: Vec<Span<'static>>) -> bool {
        let sw: usize = spans.iter().map(|s| display_width(&s.content)).sum();
        sw <= w && self.put(x + (w - sw) / 2, spans)
    }

    /// The row as a line, gaps filled with spaces.
    pub fn line(mut self) -> Line<'static> {
        self.parts.sort_by_key(|p| p.0);
        let mut spans = Vec::new();
        let mut at = 0;
        for (x, w, s) in self.parts {
            if x > at {
                spans.push(Span::raw(" ".repeat(x - at)));
            }
            spans.push(s);
            at = x + w;
        }
        Line::from(spans)
    }
}

/// Lines drawn whole into `area`: a line wider than the area is left out,
/// and when they are too many the least important go first (lower number
/// = kept longer), the last row counting them (`…N more`).
pub fn fitted_lines(f: &mut Frame, area: Rect, lines: Vec<(u8, Line<'static>)>, view: &View) {
    let out = super::fit::column(lines, area.height as usize, area.width as usize, view);
    super::fit::draw(f, area, out);
}

/// Prose wrapped at words into lines of `room` columns: one group, drawn
/// whole or not at all.
pub fn prose(text: &str, room: usize, priority: u8, style: Style) -> (u8, Vec<Line<'static>>) {
    (priority, wrap_words(text, room).into_iter().map(|l| Line::from(Span::styled(l, style))).collect())
}

/// A path in `room` columns: whole, or with its leading components left
/// out (`…/5240/sock`); `None` when not even its last component fits.
pub fn short_path(path: &str, room: usize) -> Option<String> {
    if display_width(path) <= room {
        return Some(path.to_string());
    }
    let parts: Vec<&str> = path.split('/').collect();
    (1..parts.len()).map(|i| format!("…/{}", parts[i..].join("/"))).find(|s| display_width(s) <= room)
}

/// The panel's subtitle: the first form that leaves the title whole in a
/// frame `width` columns wide, or none.
pub fn panel_sub<'a>(width: u16, n: usize, title: &str, forms: &[&'a str]) -> &'a str {
    // ` n `, ` title `, `sub `, and the two corners.
    let used = n.to_string().len() + 2 + display_width(title) + 2 + 2;
    super::fit::first_fit(forms, (width as usize).saturating_sub(used + 1)).unwrap_or("")
}

/// A process's part as one line: `■ producer: BLOCKED: buffer full`,
/// else `■ producer`, else the mark alone; `None` in no room at all.
pub fn party_line(p: &ProcessSnapshot, name: &str, room: usize, view: &View) -> Option<Line<'static>> {
    // A paused run stops its workers: their state letter says so.
    let party = p.party(false);
    let style = view.theme.party(party);
    let mark = party_mark(party);
    let words = t(view.lang, party.label_key());
    let forms = [format!("{mark} {name}: {words}"), format!("{mark} {name}"), mark.to_string()];
    forms.into_iter().find(|s| display_width(s) <= room).map(|s| Line::from(Span::styled(s, style)))
}

/// The integrity count as whole items, the least telling dropped first.
pub fn integrity_row(i: &Integrity, room: usize, view: &View) -> Line<'static> {
    use super::fit::Item;
    let th = view.theme;
    let l = view.lang;
    let item = |pri: u8, key: &'static str, n: u64, style: Style| {
        Item::new(pri, vec![Span::styled(format!("{} ", t(l, key)), th.label()), Span::styled(count(n), style)])
    };
    let bad = |n: u64| if n > 0 { th.bad() } else { th.value() };
    let mut items = vec![item(0, "delivered", i.delivered, th.good())];
    for (pri, key, n) in [(1, "lost", i.lost), (2, "corrupt", i.corrupt), (2, "duplicated", i.duplicated)] {
        items.push(item(if n > 0 { 0 } else { pri }, key, n, bad(n)));
    }
    items.push(item(1, "reordered", i.reordered, bad(i.reordered)));
    if i.foreign > 0 {
        items.push(item(1, "foreign", i.foreign, th.warn()));
    }
    super::fit::row(items, "  ", room, view)
}

/// The knob settings as whole `key=value` items.
pub fn knob_row(m: &MechanismSnapshot, room: usize, view: &View) -> Line<'static> {
    use super::fit::Item;
    let items = m.knobs.iter().map(|(k, v)| Item::text(1, format!("{k}={v}"), view.theme.dim())).collect();
    super::fit::row(items, "  ", room, view)
}

/// Notes, newest last, each wrapped at words as one group; the newest
/// kept longest.
pub fn note_items(notes: &[crate::model::snapshot::Note], room: usize, view: &View) -> Vec<(u8, Vec<Line<'static>>)> {
    let n = notes.len();
    notes
        .iter()
        .enumerate()
        .map(|(k, note)| {
            let text = note_msg(view.lang, &note.msg, &note.args)
                .unwrap_or_else(|| crate::i18n::note(view.lang, &note.text).to_string());
            let pri = 3 + (n - 1 - k).min(5) as u8;
            let lines = wrap_words(&format!("▸ {text}"), room)
                .into_iter()
                .enumerate()
                .map(|(i, row)| match row.strip_prefix("▸ ").filter(|_| i == 0) {
                    Some(rest) => Line::from(vec![Span::styled("▸ ", view.theme.warn()), Span::raw(rest.to_string())]),
                    None => Line::from(Span::raw(row)),
                })
                .collect();
            (pri, lines)
        })
        .collect()
}

/// A process in a rounded box titled `title`: its part (mark and words,
/// wrapped at whole words) first, then its pid, its counts and — `raw`, in
/// the roomy view — the state letter and wait channel the kernel reports
/// and the call it is in. Each line whole or left out.
pub fn party_box(f: &mut Frame, area: Rect, p: &ProcessSnapshot, title: &str, raw: bool, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let mut block = Boxed::new().border_type(BorderType::Rounded);
    if display_width(title) + 4 <= area.width as usize {
        block = block.title(Span::styled(format!(" {title} "), th.title()));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let room = inner.width as usize;
    let party = p.party(false);
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    let words = format!("{} {}", party_mark(party), t(l, party.label_key()));
    for row in wrap_words(&words, room) {
        lines.push((0, Line::from(Span::styled(row, th.party(party)))));
    }
    if p.pid > 0 {
        lines.push((
            1,
            Line::from(vec![
                Span::styled(format!("{} ", t(l, "pid")), th.label()),
                Span::styled(p.pid.to_string(), th.value()),
            ]),
        ));
    }
    if raw && p.alive() {
        let state =
            vec![Span::styled(format!("{} ", p.state), th.state(p)), Span::styled(wchan_in(&p.wchan, l), th.dim())];
        let short = vec![Span::styled(p.state.clone(), th.state(p))];
        if let Some(line) = super::fit::first_fit_line(vec![Line::from(state), Line::from(short)], room) {
            lines.push((2, line));
        }
        lines.push((
            3,
            Line::from(vec![
                Span::styled(format!("{} ", t(l, "op_label")), th.label()),
                Span::raw(op_word(&p.op, l)),
                Span::styled(format!(" {}", since(p.op_ms)), th.dim()),
            ]),
        ));
    }
    if let Some(e) = &p.exit {
        lines.push((1, Line::from(Span::styled(e.clone(), th.dim()))));
    }
    let counted = |key: &'static str, n: u64, r: f64| {
        let long = Line::from(vec![
            Span::styled(format!("{} ", t(l, key)), th.label()),
            Span::styled(count(n), th.value()),
            Span::styled(format!(" {}", rate(r)), th.dim()),
        ]);
        let short =
            Line::from(vec![Span::styled(format!("{} ", t(l, key)), th.label()), Span::styled(count(n), th.value())]);
        super::fit::first_fit_line(vec![long, short], room)
    };
    if p.sent > 0 || p.received == 0 {
        lines.extend(counted("sent", p.sent, p.send_rate).map(|x| (2, x)));
    }
    if p.received > 0 || p.sent == 0 {
        lines.extend(counted("received", p.received, p.recv_rate).map(|x| (2, x)));
    }
    let e = p.errors;
    for (name, n) in
        [("EPIPE", e.epipe), ("EAGAIN", e.eagain), ("ETIMEDOUT", e.etimedout), (t(l, "err_other"), e.other)]
    {
        if n > 0 {
            lines.push((1, Line::from(Span::styled(format!("{name} {n}"), th.bad()))));
        }
    }
    fitted_lines(f, inner, lines, view);
}

/// Like [`fitted_lines`], for groups of lines that make sense only whole
/// (a wrapped sentence, a note): each group is drawn whole or left out,
/// the least important first (lower number = kept longer), and the last
/// row counts what was left out (`…N more`).
pub fn fitted_groups(f: &mut Frame, area: Rect, groups: Vec<(u8, Vec<Line<'static>>)>, view: &View) {
    let room = area.width as usize;
    let rows = area.height as usize;
    // A group with a line wider than the room cannot be drawn whole.
    let groups: Vec<(u8, Vec<Line<'static>>)> = groups
        .into_iter()
        .filter(|(_, g)| !g.is_empty() && g.iter().all(|l| super::fit::line_width(l) <= room))
        .collect();
    let total: usize = groups.iter().map(|(_, g)| g.len()).sum();
    let mut keep = vec![true; groups.len()];
    if total > rows {
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by_key(|&i| (groups[i].0, i));
        keep = vec![false; groups.len()];
        let mut used = 0;
        // One row stays for the count.
        for i in order {
            if used + groups[i].1.len() < rows {
                used += groups[i].1.len();
                keep[i] = true;
            }
        }
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    let mut out: Vec<Line<'static>> =
        groups.into_iter().zip(&keep).filter(|(_, k)| **k).flat_map(|((_, g), _)| g).collect();
    let more = super::fit::more(dropped, view);
    if dropped > 0 && display_width(&more) <= room {
        out.push(Line::from(Span::styled(more, view.theme.dim())));
    }
    super::fit::draw(f, area, out);
}

// --- diagrams (emu) ---
// Figures of the emulated kernels' panels (Mach, ALPC): a canvas that puts
// text whole or not at all, message blocks of a bounded queue, and a
// task's part read from the emulated kernel's tables.

use crate::model::detail::emu::{emu_party, EmuCall};

/// A drawing surface bounded by one area. Text goes in whole or not at
/// all, never cut at the edge: a figure leaves a label out rather than
/// show half of it. Lines of box drawing are clipped (they are no text).
pub struct Canvas<'a> {
    buf: &'a mut ratatui::buffer::Buffer,
    area: Rect,
}

impl<'a> Canvas<'a> {
    pub fn new(f: &'a mut Frame, area: Rect) -> Canvas<'a> {
        let area = area.intersection(f.area());
        Canvas { buf: f.buffer_mut(), area }
    }

    pub fn width(&self) -> u16 {
        self.area.width
    }

    pub fn height(&self) -> u16 {
        self.area.height
    }

    /// `line` at column `x`, row `y` of the area when it fits whole; false
    /// (and nothing drawn) when it does not.
    pub fn put(&mut self, x: u16, y: u16, line: &Line) -> bool {
        let w = super::fit::line_width(line);
        if y >= self.area.height || x as usize + w > self.area.width as usize {
            return false;
        }
        super::fit::set_line(self.buf, self.area.x + x, self.area.y + y, line, w as u16);
        true
    }

    pub fn text(&mut self, x: u16, y: u16, s: &str, style: Style) -> bool {
        self.put(x, y, &Line::from(Span::styled(s.to_string(), style)))
    }

    /// The first of `forms` (longest first) that fits in `room` columns
    /// from `x`, put there; its width, or `None` when none fits.
    pub fn put_first(&mut self, x: u16, y: u16, forms: Vec<Line<'static>>, room: u16) -> Option<u16> {
        let room = room.min(self.area.width.saturating_sub(x)) as usize;
        let line = super::fit::first_fit_line(forms, room)?;
        self.put(x, y, &line).then(|| super::fit::line_width(&line) as u16)
    }

    /// `n` cells of `sym` to the right from (x, y), clipped to the area.
    pub fn run(&mut self, x: u16, y: u16, n: u16, sym: &str, style: Style) {
        if y >= self.area.height {
            return;
        }
        for i in x..x.saturating_add(n).min(self.area.width) {
            self.buf[(self.area.x + i, self.area.y + y)].set_symbol(sym).set_style(style);
        }
    }

    /// `n` cells of `sym` downwards from (x, y), clipped to the area.
    pub fn column(&mut self, x: u16, y: u16, n: u16, sym: &str, style: Style) {
        if x >= self.area.width {
            return;
        }
        for j in y..y.saturating_add(n).min(self.area.height) {
            self.buf[(self.area.x + x, self.area.y + j)].set_symbol(sym).set_style(style);
        }
    }

    /// A horizontal arrow of `n` cells: `───▶`, or `◀───` pointing left.
    pub fn arrow(&mut self, x: u16, y: u16, n: u16, right: bool, style: Style) {
        if n == 0 {
            return;
        }
        self.run(x, y, n, "─", style);
        let head = if right { x + n - 1 } else { x };
        self.run(head, y, 1, if right { "▶" } else { "◀" }, style);
    }

    /// A box's border on `r` (relative to the area, clipped to it), with
    /// the first title form that fits between its corners; returns the
    /// inside, relative to the area.
    pub fn frame(&mut self, r: Rect, kind: BorderType, style: Style, titles: Vec<Line<'static>>) -> Rect {
        use ratatui::widgets::Widget;
        let abs = Rect { x: self.area.x + r.x, y: self.area.y + r.y, ..r }.intersection(self.area);
        if abs.width < 2 || abs.height < 2 {
            return Rect { x: r.x, y: r.y, width: 0, height: 0 };
        }
        Boxed::new().border_type(kind).border_style(style).render(abs, self.buf);
        let room = abs.width.saturating_sub(4);
        self.put_first(r.x + 2, r.y, titles, room);
        Rect { x: r.x + 1, y: r.y + 1, width: abs.width - 2, height: abs.height - 2 }
    }
}

/// A panel's frame titled with the first form that fits its top border
/// (title and subtitle, then the shorter forms): never a cut title.
/// Returns the inside.
pub fn panel_fit(f: &mut Frame, area: Rect, n: usize, forms: &[(&str, &str)], selected: bool, view: &View) -> Rect {
    let room = area.width.saturating_sub(2) as usize;
    let num = n.to_string().len() + 2;
    let w = |(title, sub): &(&str, &str)| {
        num + display_width(title) + 2 + if sub.is_empty() { 0 } else { display_width(sub) + 1 }
    };
    let (title, sub) = forms.iter().find(|form| w(form) <= room).copied().unwrap_or(("", ""));
    let block = if title.is_empty() {
        let th = view.theme;
        let border = if selected { th.selected_border() } else { th.border() };
        Boxed::new().border_type(th.border_type(selected)).border_style(border)
    } else {
        panel_block(n, title, sub, selected, view)
    };
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// One task's part in words, the longest form that fits `room`: its mark,
/// its name, and the call the emulated kernel has it in and why
/// (`■ client-1 mach_msg(SEND) — queue full ×2 1.2s`), or its part when it
/// is in no call (`· server pacing itself`).
pub fn emu_party_line(
    label: &str,
    p: &ProcessSnapshot,
    call: Option<(&EmuCall, usize)>,
    run_paused: bool,
    room: usize,
    view: &View,
) -> Option<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let party = emu_party(p, call.map(|c| c.0), run_paused);
    let loud = th.party(party);
    let mark = Span::styled(party_mark(party).to_string(), loud);
    // No name: the caller's title says whose part it is.
    let name = Span::styled(if label.is_empty() { String::new() } else { format!(" {label}") }, th.label());
    let mut forms: Vec<Line<'static>> = Vec::new();
    // The call's words only while the kernel's reading decides the part.
    let in_call = call.filter(|(c, _)| c.wait.party() == party);
    match in_call {
        Some((c, n)) => {
            let [long, short] = c.wait.label_keys();
            let times = if n > 1 { format!(" ×{n}") } else { String::new() };
            let waited = waited_words(c, view);
            let call_span = Span::styled(format!(" {}", c.call), th.value());
            for (why, extra) in [(long, true), (long, false), (short, true), (short, false)] {
                let mut spans = vec![mark.clone(), name.clone(), call_span.clone()];
                spans.push(Span::styled(format!(" — {}", t(l, why)), loud));
                if extra {
                    spans.push(Span::styled(times.clone(), th.value()));
                    spans.push(Span::styled(waited.clone(), th.dim()));
                }
                forms.push(Line::from(spans));
            }
            forms.push(Line::from(vec![mark.clone(), name.clone(), Span::styled(format!(" {}", t(l, short)), loud)]));
        }
        None => {
            forms.push(Line::from(vec![
                mark.clone(),
                name.clone(),
                Span::styled(format!(" {}", t(l, party.label_key())), loud),
            ]));
        }
    }
    forms.push(Line::from(vec![mark.clone(), name]));
    forms.push(Line::from(vec![mark]));
    super::fit::first_fit_line(forms, room)
}

/// How long a call has waited, and what is left of its timeout:
/// ` 1.2s`, ` 13ms, 7ms left`.
fn waited_words(c: &EmuCall, view: &View) -> String {
    let mut s = if c.waited_ms > 0 { format!(" {}", since(c.waited_ms)) } else { String::new() };
    if let Some(left) = c.timeout_left_ms {
        s += &format!(", {}", crate::i18n::tf(view.lang, "emu_left", &[("t", since(left))]));
    }
    s
}

/// How a process ended (`exit 0`, `killed by SIGKILL`, as the monitor
/// records it) in `lang`: the signal's name and the code stay; a worker's
/// own last error line after `exit N: ` stays as it wrote it.
pub fn exit_in(e: &str, lang: crate::i18n::Lang) -> String {
    if lang == crate::i18n::Lang::En {
        return e.to_string();
    }
    if let Some(sig) = e.strip_prefix("killed by ") {
        return crate::i18n::tf(lang, "exit_killed_by", &[("sig", sig.to_string())]);
    }
    match e.strip_prefix("exit ").map(|rest| rest.split_once(": ").unwrap_or((rest, ""))) {
        Some((code, "")) => crate::i18n::tf(lang, "exit_code", &[("code", code.to_string())]),
        Some((code, why)) => format!("{}: {why}", crate::i18n::tf(lang, "exit_code", &[("code", code.to_string())])),
        None => e.to_string(),
    }
}

/// The Linux side of an emulated task, labelled as our transport's (a
/// task talks to the emulated kernel over a Unix socket): state letter
/// and wait channel, for the roomy view only.
pub fn transport_item(label: &str, p: &ProcessSnapshot, view: &View) -> super::fit::Item {
    let th = view.theme;
    let what = match &p.exit {
        Some(e) => exit_in(e, view.lang),
        None => format!("{} {}", p.state, wchan_in(&p.wchan, view.lang)),
    };
    super::fit::Item::new(
        1,
        vec![
            Span::styled(format!("{label} "), th.label()),
            Span::styled(pid(p.pid).trim_start().to_string(), th.value()),
            Span::styled(format!(" {what}"), th.dim()),
        ],
    )
}

/// The blocks of a bounded queue, one per place when `room` holds them:
/// `▇` for each message within the limit, `·` for each free place, and
/// what is kept past the limit apart after `┊`, as `▒` (`▇▇▇▇▇┊▒▒▒`).
/// Wider rooms space them out. `None` when one cell per place does not
/// fit: the caller draws a scaled bar instead.
pub fn queue_blocks(c: &Channel, room: usize, view: &View) -> Option<Line<'static>> {
    let th = view.theme;
    let (within, past, cap) = (c.within() as usize, c.past() as usize, c.capacity as usize);
    let cells = |per: usize| cap * per + if past > 0 { 1 + past * per } else { 0 };
    let per = [2usize, 1].into_iter().find(|&per| cells(per) <= room)?;
    if cap == 0 && past == 0 {
        return None;
    }
    let cell = |sym: &str| if per == 2 { format!("{sym} ") } else { sym.to_string() };
    let style = if c.full() { th.gauge_full() } else { th.gauge() };
    let mut spans = vec![
        Span::styled(cell("▇").repeat(within), style),
        Span::styled(cell("·").repeat(cap - within.min(cap)), th.dim()),
    ];
    if past > 0 {
        spans.push(Span::styled("┊", th.warn()));
        spans.push(Span::styled(cell("▒").repeat(past), th.warn()));
    }
    Some(Line::from(spans))
}

/// A queue's count as words, longest first: `5/5 + 3 kept messages`,
/// `5/5 + 3 kept`, `5/5 +3`, `5/5`; never above capacity.
pub fn queue_count_forms(c: &Channel, kept: &str, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let num = |n: u64| if c.unit == crate::model::snapshot::Unit::Bytes { bytes(n) } else { n.to_string() };
    let numbers = format!("{}/{}", num(c.within()), num(c.capacity));
    let nstyle = if c.full() { th.bad() } else { th.value() };
    let past = c.past();
    let with = |unit: bool, over: Option<String>| {
        let mut spans = vec![Span::styled(numbers.clone(), nstyle)];
        if let Some(o) = over {
            spans.push(Span::styled(o, th.warn()));
        }
        if unit && !unit_is_empty(c) {
            spans.push(Span::styled(format!(" {}", unit_word(c, view)), th.label()));
        }
        Line::from(spans)
    };
    if past == 0 {
        return vec![with(true, None), with(false, None)];
    }
    let kept_words = format!(" + {} {kept}", num(past));
    let plus = format!(" +{}", num(past));
    vec![
        with(true, Some(kept_words.clone())),
        with(false, Some(kept_words)),
        with(false, Some(plus)),
        with(false, None),
    ]
}

fn unit_is_empty(c: &Channel) -> bool {
    c.unit == crate::model::snapshot::Unit::Bytes
}

fn unit_word(c: &Channel, view: &View) -> &'static str {
    match c.unit {
        crate::model::snapshot::Unit::Bytes => "",
        crate::model::snapshot::Unit::Messages => t(view.lang, "unit_messages"),
        crate::model::snapshot::Unit::Slots => t(view.lang, "unit_slots"),
    }
}

/// A fill bar on the capacity's scale in `width` cells; what is past
/// capacity apart after a gap, at most a quarter of the room.
pub fn scaled_bar(c: &Channel, width: u16, view: &View) -> Line<'static> {
    let th = view.theme;
    let width = width as usize;
    let (within, past) = (c.within(), c.past());
    let seg = if past > 0 && width >= 4 {
        let scaled = (past as u128 * width as u128).div_ceil((c.capacity + past) as u128) as usize;
        scaled.clamp(1, width / 4)
    } else {
        0
    };
    let bar_w = width.saturating_sub(if seg > 0 { seg + 1 } else { 0 });
    let filled = (within as u128 * bar_w as u128).checked_div(c.capacity as u128).unwrap_or(0) as usize;
    let filled = if within > 0 && filled == 0 { 1 } else { filled }.min(bar_w);
    let style = if c.full() { th.gauge_full() } else { th.gauge() };
    let mut spans = vec![Span::styled("█".repeat(filled), style), Span::styled("░".repeat(bar_w - filled), th.dim())];
    if seg > 0 {
        spans.push(Span::raw(" "));
        spans.push(Span::styled("▒".repeat(seg), th.warn()));
    }
    Line::from(spans)
}

/// A queue as the biggest thing of a figure: its blocks, one per place,
/// or a scaled bar when they do not fit `width`; and its count, the
/// longest form that fits.
pub fn queue_figure(c: &Channel, kept: &str, width: u16, view: &View) -> (Line<'static>, Line<'static>) {
    let bar = queue_blocks(c, width as usize, view).unwrap_or_else(|| scaled_bar(c, width, view));
    let count = super::fit::first_fit_line(queue_count_forms(c, kept, view), width as usize).unwrap_or_default();
    (bar, count)
}

/// The integrity count as items of a row: what was lost or damaged kept
/// longest.
pub fn integrity_items(i: &Integrity, view: &View) -> Vec<super::fit::Item> {
    let th = view.theme;
    let l = view.lang;
    let item = |p: u8, key: &'static str, n: u64, style: Style| {
        super::fit::Item::new(
            p,
            vec![Span::styled(format!("{} ", t(l, key)), th.label()), Span::styled(count(n), style)],
        )
    };
    let bad = |n: u64| if n > 0 { th.bad() } else { th.value() };
    let mut items = vec![
        item(0, "delivered", i.delivered, th.good()),
        item(0, "lost", i.lost, bad(i.lost)),
        item(0, "corrupt", i.corrupt, bad(i.corrupt)),
        item(1, "duplicated", i.duplicated, bad(i.duplicated)),
        item(1, "reordered", i.reordered, bad(i.reordered)),
    ];
    if i.foreign > 0 {
        items.push(item(1, "foreign", i.foreign, th.warn()));
    }
    items
}

/// The latest notes that fit `rows` rows of `width` columns, newest last,
/// each wrapped between words (a note with a word longer than a row is
/// left out, never cut).
pub fn note_prose(
    notes: &[crate::model::snapshot::Note],
    rows: usize,
    width: usize,
    view: &View,
) -> Vec<Line<'static>> {
    let mut out: Vec<Vec<Line<'static>>> = Vec::new();
    let mut used = 0;
    for n in notes.iter().rev() {
        let text =
            note_msg(view.lang, &n.msg, &n.args).unwrap_or_else(|| crate::i18n::note(view.lang, &n.text).to_string());
        let text = format!("▸ {text}");
        if text.split_whitespace().any(|w| display_width(w) > width) {
            continue;
        }
        let wrapped = wrap_words(&text, width);
        if used + wrapped.len() > rows {
            break;
        }
        used += wrapped.len();
        out.push(
            wrapped
                .into_iter()
                .enumerate()
                .map(|(k, r)| match r.strip_prefix("▸ ").filter(|_| k == 0) {
                    Some(rest) => Line::from(vec![
                        Span::styled("▸ ", view.theme.warn()),
                        Span::styled(rest.to_string(), view.theme.label()),
                    ]),
                    None => Line::from(Span::styled(r, view.theme.label())),
                })
                .collect(),
        );
    }
    out.into_iter().rev().flatten().collect()
}

/// Lines for `rows` rows of `width` columns, in their order: all when
/// they fit; on three rows or fewer the most important ones (a count of
/// the others would take a third of the room); else `fit::column` (least
/// important dropped, counted as `…N more`). A line wider than the room is
/// left out.
pub fn pick_lines(lines: Vec<(u8, Line<'static>)>, rows: usize, width: usize, view: &View) -> Vec<Line<'static>> {
    let fits: Vec<(u8, Line<'static>)> =
        lines.into_iter().filter(|(_, l)| super::fit::line_width(l) <= width).collect();
    if fits.len() > rows && rows <= 3 {
        let mut order: Vec<usize> = (0..fits.len()).collect();
        order.sort_by_key(|&i| (fits[i].0, i));
        let keep: Vec<usize> = order.into_iter().take(rows).collect();
        return fits.into_iter().enumerate().filter(|(i, _)| keep.contains(i)).map(|(_, (_, l))| l).collect();
    }
    super::fit::column(fits, rows, width, view)
}

/// A task's part for a box of `room` columns: one line when its call and
/// reason fit on one, else the call on one and the reason on the next
/// (`■ mach_msg(SEND)` / `  — queue full 1.2s`), else the shorter forms.
pub fn emu_party_rows(
    label: &str,
    p: &ProcessSnapshot,
    call: Option<(&EmuCall, usize)>,
    run_paused: bool,
    room: usize,
    view: &View,
) -> Vec<Line<'static>> {
    let th = view.theme;
    let party = emu_party(p, call.map(|c| c.0), run_paused);
    let long = emu_party_line(label, p, call, run_paused, usize::MAX, view);
    if let Some(l) = long.filter(|l| super::fit::line_width(l) <= room) {
        return vec![l];
    }
    if let Some((c, n)) = call.filter(|(c, _)| c.wait.party() == party) {
        let loud = th.party(party);
        let mut first = vec![Span::styled(party_mark(party).to_string(), loud)];
        if !label.is_empty() {
            first.push(Span::styled(format!(" {label}"), th.label()));
        }
        first.push(Span::styled(format!(" {}", c.call), th.value()));
        let [long, short] = c.wait.label_keys();
        let times = if n > 1 { format!(" ×{n}") } else { String::new() };
        let waited = waited_words(c, view);
        let second = |key: &'static str, extra: bool| {
            let mut spans = vec![Span::styled(format!("  — {}", t(view.lang, key)), loud)];
            if extra {
                spans.push(Span::styled(times.clone(), th.value()));
                spans.push(Span::styled(waited.clone(), th.dim()));
            }
            Line::from(spans)
        };
        let first = Line::from(first);
        let seconds = vec![second(long, true), second(long, false), second(short, true), second(short, false)];
        if super::fit::line_width(&first) <= room {
            if let Some(s) = super::fit::first_fit_line(seconds, room) {
                return vec![first, s];
            }
        }
    }
    emu_party_line(label, p, call, run_paused, room, view).into_iter().collect()
}

// --- diagrams (pipes) ---
//
// Pieces of the textbook's figures (process boxes over a kernel object,
// connectors, one-row flows), drawn so nothing is ever cut: a text goes in
// whole or stays out.

/// `line` drawn at (x, y) when it fits whole inside `area`; else nothing,
/// and false.
pub fn put(f: &mut Frame, area: Rect, x: u16, y: u16, line: &Line) -> bool {
    let w = super::fit::line_width(line) as u16;
    if y < area.y || y >= area.bottom() || x < area.x || x.saturating_add(w) > area.right() {
        return false;
    }
    super::fit::set_line(f.buffer_mut(), x, y, line, w);
    true
}

/// Lines drawn from the top of `area`, each whole or not at all.
pub fn put_lines(f: &mut Frame, area: Rect, lines: &[Line]) {
    for (i, l) in lines.iter().enumerate().take(area.height as usize) {
        put(f, area, area.x, area.y + i as u16, l);
    }
}

/// A box with the first title (longest first) that fits whole, on its
/// top border (or its bottom one, where connectors come in from above);
/// returns the inside.
pub fn fig_box(
    f: &mut Frame,
    area: Rect,
    titles: Vec<Line<'static>>,
    border: BorderType,
    bottom: bool,
    view: &View,
) -> Rect {
    let room = area.width.saturating_sub(4) as usize;
    let mut block = Boxed::new().border_type(border).border_style(view.theme.border());
    if let Some(t) = super::fit::first_fit_line(titles, room) {
        let mut spans = vec![Span::raw(" ")];
        spans.extend(t.spans);
        spans.push(Span::raw(" "));
        block = block.title(Line::from(spans));
        if bottom {
            block = block.title_bottom();
        }
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// A panel's frame whose title and subtitle fit whole: the first subtitle
/// form that fits beside the title, else none; the title's short form
/// when even it alone does not fit. Returns the area inside.
#[allow(clippy::too_many_arguments)]
pub fn panel_fitted(
    f: &mut Frame,
    area: Rect,
    n: usize,
    titles: &[&str],
    subs: &[&str],
    selected: bool,
    view: &View,
) -> Rect {
    let room = area.width.saturating_sub(2) as usize;
    let chip = display_width(&format!(" {n} "));
    let title = titles.iter().copied().find(|t| chip + display_width(t) + 2 <= room).unwrap_or("");
    let used = chip + if title.is_empty() { 0 } else { display_width(title) + 2 };
    let sub = subs.iter().copied().find(|s| used + display_width(s) < room).unwrap_or("");
    let block = panel_block(n, title, sub, selected, view);
    let inner = block.inner(area);
    f.render_widget(block, area);
    inner
}

/// The locale key of a part's short words, for narrow boxes.
pub fn party_short_key(party: Party) -> &'static str {
    match party {
        Party::BlockedFull => "pp_party_full_s",
        Party::WaitingData => "pp_party_empty_s",
        Party::WaitingPartner => "pp_party_partner_s",
        Party::StepHeld => "pp_party_step_s",
        Party::Stalled => "pp_party_stalled_s",
        Party::Paused => "party_paused",
        Party::Pacing => "pp_party_pacing_s",
        Party::Running => "party_running",
        Party::Idle => "party_idle",
        Party::Exited => "party_exited",
        Party::NotStarted => "pp_party_not_started_s",
    }
}

/// A process's mark and words in `room` columns: the words, their short
/// form, or the mark alone.
pub fn party_fit(p: &ProcessSnapshot, room: usize, view: &View) -> Span<'static> {
    let party = p.party(false);
    let mark = party_mark(party);
    let long = format!("{mark} {}", t(view.lang, party.label_key()));
    let short = format!("{mark} {}", t(view.lang, party_short_key(party)));
    let text = [long, short].into_iter().find(|s| display_width(s) <= room).unwrap_or_else(|| mark.to_string());
    Span::styled(text, view.theme.party(party))
}

/// How loud a part is: the blocked sender first, then what stops a run.
pub fn party_rank(party: Party) -> u8 {
    match party {
        Party::BlockedFull => 0,
        Party::Paused => 1,
        Party::StepHeld => 2,
        Party::Exited => 3,
        Party::Stalled => 4,
        Party::WaitingPartner => 4,
        Party::WaitingData => 5,
        _ => 6,
    }
}

/// The bar alone, `width` cells, no label: for a room too narrow for the
/// numbers and for the projector's second gauge row.
pub fn bar_only(c: &Channel, width: u16, view: &View) -> Line<'static> {
    let w = width as usize;
    let within = c.within();
    let filled = (within as u128 * w as u128).checked_div(c.capacity as u128).unwrap_or(0) as usize;
    let filled = if within > 0 && filled == 0 { 1 } else { filled }.min(w);
    let style = if c.full() { view.theme.gauge_full() } else { view.theme.gauge() };
    Line::from(vec![Span::styled("█".repeat(filled), style), Span::styled("░".repeat(w - filled), view.theme.dim())])
}

/// A fill gauge `theme.gauge_rows()` rows thick (two on a projector): the
/// numbers on the first row, the bar alone under it. Never wider than
/// `width`: with no room for the numbers, the bar alone.
pub fn gauge_block(c: &Channel, width: u16, view: &View) -> Vec<Line<'static>> {
    gauge_rows(c, width, view.theme.gauge_rows(), view)
}

/// [`gauge_block`] `rows` rows thick: a roomy figure thickens its channel
/// so the fill stays the biggest thing in it.
pub fn gauge_rows(c: &Channel, width: u16, rows: u16, view: &View) -> Vec<Line<'static>> {
    let first = gauge_line(c, width, view);
    if super::fit::line_width(&first) > width as usize {
        return vec![bar_only(c, width, view); rows.max(1) as usize];
    }
    // The bar's own cells (and the run past capacity) repeat below.
    let bar: Vec<Span<'static>> = first
        .spans
        .iter()
        .take_while(|s| s.content.chars().all(|ch| matches!(ch, '█' | '░' | '▒' | ' ')))
        .cloned()
        .collect();
    let mut out = vec![first];
    for _ in 1..rows {
        out.push(Line::from(bar.clone()));
    }
    out
}

/// The textbook's picture in one row:
/// `producer ■ ─▶ [████░░ 64.0K/64.0K] ─▶ □ consumer`. The bar takes what
/// the ends leave; the ends' items are dropped whole (highest priority
/// number first) until the bar and its numbers fit, then the arrows.
pub fn flow_line(
    left: Vec<super::fit::Item>,
    c: &Channel,
    right: Vec<super::fit::Item>,
    room: usize,
    view: &View,
) -> Line<'static> {
    use super::fit::line_width;
    let th = view.theme;
    let numbers = line_width(&gauge_line(c, 0, view)).saturating_sub(4);
    let min_gauge = 6 + numbers;
    let side_w = |items: &[super::fit::Item]| -> usize {
        let w: usize = items.iter().map(|i| i.spans.iter().map(|s| display_width(&s.content)).sum::<usize>()).sum();
        w + items.len().saturating_sub(1)
    };
    let (mut left, mut right) = (left, right);
    let arrows = |l: &[super::fit::Item], r: &[super::fit::Item]| {
        (if l.is_empty() { 0 } else { 1 }) + (if r.is_empty() { 0 } else { 1 }) + 8
    };
    // Both sides lose a level at once (pids, then names), so the figure
    // stays symmetric.
    while side_w(&left) + side_w(&right) + arrows(&left, &right) + min_gauge > room {
        let Some(top) = left.iter().chain(right.iter()).map(|i| i.priority).max() else { break };
        left.retain(|i| i.priority < top);
        right.retain(|i| i.priority < top);
    }
    let join = |items: Vec<super::fit::Item>| -> Vec<Span<'static>> {
        let mut spans = Vec::new();
        for (i, it) in items.into_iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw(" "));
            }
            spans.extend(it.spans);
        }
        spans
    };
    let fixed = side_w(&left) + side_w(&right) + arrows(&left, &right);
    let mut spans = join(left);
    if room < fixed + min_gauge {
        // No room for the arrows: the gauge alone, as wide as it may be.
        return if line_width(&gauge_line(c, room as u16, view)) <= room {
            gauge_line(c, room as u16, view)
        } else {
            bar_only(c, room as u16, view)
        };
    }
    let gw = (room - fixed) as u16;
    if !spans.is_empty() {
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled("─▶ [", th.label()));
    spans.extend(gauge_line(c, gw, view).spans);
    spans.push(Span::styled("] ─▶", th.label()));
    let r = join(right);
    if !r.is_empty() {
        spans.push(Span::raw(" "));
        spans.extend(r);
    }
    Line::from(spans)
}

/// The latest notes as `▸ ` lines wrapped at spaces to `room` columns,
/// newest kept first, at most `rows` rows; a note that would need a word
/// cut (a long path) is left out.
pub fn note_rows(m: &MechanismSnapshot, rows: usize, room: usize, view: &View) -> Vec<Line<'static>> {
    let mut out: Vec<Vec<Line<'static>>> = Vec::new();
    let mut used = 0;
    for n in m.notes.iter().rev() {
        let text =
            note_msg(view.lang, &n.msg, &n.args).unwrap_or_else(|| crate::i18n::note(view.lang, &n.text).to_string());
        let rows_of = wrap_words(&text, room.saturating_sub(2));
        if text.split_whitespace().any(|w| display_width(w) > room.saturating_sub(2)) {
            continue;
        }
        if used + rows_of.len() > rows {
            break;
        }
        used += rows_of.len();
        out.push(
            rows_of
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let lead = if i == 0 { Span::styled("▸ ", view.theme.warn()) } else { Span::raw("  ") };
                    Line::from(vec![lead, Span::raw(r)])
                })
                .collect(),
        );
    }
    out.into_iter().rev().flatten().collect()
}

/// A path in `room` columns, losing only whole leading components
/// (`…/4120/fifo`); `None` when not even its last component fits.
pub fn path_fit(path: &str, room: usize) -> Option<String> {
    if display_width(path) <= room {
        return Some(path.to_string());
    }
    let parts: Vec<&str> = path.split('/').collect();
    (1..parts.len()).map(|i| format!("…/{}", parts[i..].join("/"))).find(|s| display_width(s) <= room)
}

/// Each process's mark and words after its label (`producer ■ BLOCKED:
/// buffer full · consumer · pacing itself`), the loudest first and given
/// the room first; a quieter one joins when it fits.
pub fn parts_row(parts: &[(&ProcessSnapshot, &str)], room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| party_rank(parts[i].0.party(false)));
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0;
    for i in order {
        let p = parts[i].0;
        let sep = if spans.is_empty() { 0 } else { 3 };
        let label = format!("{} ", parts[i].1);
        let left = room.saturating_sub(used + sep + display_width(&label));
        let party = party_fit(p, left, view);
        let w = display_width(&label) + display_width(&party.content);
        // A quieter part joins only with its words.
        if used + sep + w > room || (sep > 0 && display_width(&party.content) <= 2) {
            continue;
        }
        if sep > 0 {
            spans.push(Span::raw(" · "));
        }
        spans.push(Span::styled(label, th.label()));
        spans.push(party);
        used += sep + w;
    }
    Line::from(spans)
}

/// The kernel's own words for a process, for roomy views: its state
/// letter and wait channel (`S BLOCKED in write  wchan anon_pipe_write`).
pub fn raw_state_line(p: &ProcessSnapshot, room: usize, view: &View) -> Line<'static> {
    let th = view.theme;
    // Gone: how it ended, not its last wait channel.
    if let Some(e) = &p.exit {
        let forms = [e.clone(), e.split(':').next().unwrap_or_default().to_string()];
        return forms
            .into_iter()
            .find(|f| display_width(f) <= room)
            .map_or_else(Line::default, |f| Line::from(Span::styled(f, th.dim())));
    }
    // The letter with the kernel's wait in words (`S BLOCKED in write`),
    // then the wait channel itself: the Linux view under the class's part.
    let state = Span::styled(state_text(p, view), th.state(p));
    let w = wchan_in(&p.wchan, view.lang);
    let forms = vec![
        Line::from(vec![
            state.clone(),
            Span::styled(format!("  {} ", t(view.lang, "wchan_label")), th.label()),
            Span::raw(w.clone()),
        ]),
        Line::from(vec![state.clone(), Span::styled(" · ", th.label()), Span::raw(w)]),
        Line::from(state),
    ];
    super::fit::first_fit_line(forms, room).unwrap_or_default()
}

/// `history ▁▂▄▆███`: the channel's fill over the last samples, labelled.
pub fn history_line(m: &MechanismSnapshot, room: usize, view: &View) -> Line<'static> {
    let head = format!("{} ", t(view.lang, "pp_history"));
    let w = room.saturating_sub(display_width(&head));
    let mut spans = vec![Span::styled(head, view.theme.label())];
    spans.extend(sparkline(&m.history, m.channel.capacity, w, view).spans);
    Line::from(spans)
}

/// Items on one line within `room` columns, the least important (highest
/// priority number, later first) left out whole until they fit. For the
/// labels of a figure, where a `…N more` would say less than the figure.
pub fn fit_quiet(items: Vec<super::fit::Item>, sep: &str, room: usize) -> Line<'static> {
    let mut items = items;
    let width = |items: &[super::fit::Item]| -> usize {
        items.iter().map(|i| i.spans.iter().map(|s| display_width(&s.content)).sum::<usize>()).sum::<usize>()
            + display_width(sep) * items.len().saturating_sub(1)
    };
    while width(&items) > room && !items.is_empty() {
        let worst = (0..items.len()).max_by_key(|&i| (items[i].priority, i)).unwrap_or(0);
        items.remove(worst);
    }
    let mut spans = Vec::new();
    for (i, it) in items.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(sep.to_string()));
        }
        spans.extend(it.spans);
    }
    Line::from(spans)
}

#[cfg(test)]
mod state_tests {
    use super::state_text;
    use crate::i18n::Lang;
    use crate::model::figures::ProcessSnapshot;
    use crate::ui::View;

    #[test]
    fn how_a_process_ended_is_in_the_readers_language() {
        let ended = |exit: &str| ProcessSnapshot { pid: 7, exit: Some(exit.into()), ..Default::default() };
        let ko = View { lang: Lang::Ko, ..View::default() };
        assert_eq!(state_text(&ended("exit 0"), &ko), "종료됨 · 종료 코드 0");
        assert_eq!(state_text(&ended("killed by SIGPIPE"), &ko), "종료됨 · SIGPIPE로 종료");
        assert_eq!(state_text(&ended("exit 0"), &View::default()), "EXITED · exit 0");
    }
}

#[cfg(test)]
mod boxed_tests {
    use super::Boxed;
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::{Line, Span};
    use ratatui::widgets::{Block, BorderType, Borders, TitlePosition, Widget};

    /// Every cell as `Block` draws it: sizes down to 1×1, the four border
    /// kinds, styled titles that fit, fill or overflow (Hangul too), top
    /// and bottom, over a buffer that already holds text.
    #[test]
    fn boxed_draws_what_block_draws() {
        let titles: Vec<Option<Line>> = vec![
            None,
            Some(Line::from(Span::styled(" pipe ", Style::new().fg(Color::Cyan)))),
            Some(Line::from(vec![
                Span::styled(" 3 ", Style::new().add_modifier(Modifier::REVERSED)),
                Span::raw(" 메시지 큐 (mq_open) "),
            ])),
            Some(Line::from(" a title much wider than any of the boxes it is drawn on ")),
        ];
        let kinds = [BorderType::Plain, BorderType::Rounded, BorderType::Double, BorderType::Thick];
        for (w, h) in [(1u16, 1u16), (2, 1), (1, 3), (2, 2), (3, 3), (8, 4), (13, 5), (40, 6)] {
            for kind in kinds {
                for title in &titles {
                    for bottom in [false, true] {
                        let style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
                        let area = Rect::new(1, 1, w, h);
                        let mut a = Buffer::with_lines(vec!["한글 and text under the box ....................."; 9]);
                        let mut b = a.clone();
                        let mut block = Block::default().borders(Borders::ALL).border_type(kind).border_style(style);
                        let mut boxed = Boxed::new().border_type(kind).border_style(style);
                        if let Some(t) = title {
                            block = block.title(t.clone());
                            boxed = boxed.title(t.clone());
                        }
                        if bottom {
                            block = block.title_position(TitlePosition::Bottom);
                            boxed = boxed.title_bottom();
                        }
                        assert_eq!(block.inner(area), boxed.inner(area), "{w}x{h}");
                        block.render(area, &mut a);
                        boxed.render(area, &mut b);
                        assert_eq!(a, b, "{w}x{h} {kind:?} {title:?} bottom={bottom}");
                    }
                }
            }
        }
    }
}
