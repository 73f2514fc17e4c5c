//! Rendering: a pure function of the observed `Snapshot` and the `View`
//! (what the user chose to look at). The same inputs draw the same frame.
//!
//! ```text
//! ┌ header: ipcscope · run pid · sampling rate · LIVE / PAUSED / REPLAY ───┐
//! │ body: a grid with one panel per mechanism (panel modules below), or    │
//! │       one panel zoomed in with its event log (focus)                   │
//! └ footer: keys ──────────────────────────────────────────────────────────┘
//! ```
//! `?` draws the help over everything; below 80×24 only a notice is drawn.

pub mod alpc;
pub mod audit;
pub mod fifo;
pub mod fit;
pub mod lesson;
pub mod mach;
pub mod mq;
pub mod pipe;
pub mod shm;
pub mod socket;
pub mod theme;
pub mod widgets;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::i18n::{t, tf, Lang};
use crate::model::snapshot::{Detail, MechanismSnapshot, Snapshot};
use crate::model::Kind;
pub use theme::Theme;

pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// What the user is looking at; everything else on screen is observed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    /// The selected panel (index into the snapshot's mechanisms).
    pub selected: usize,
    /// Zoomed in on the selected panel.
    pub focused: bool,
    pub help: bool,
    pub lang: Lang,
    pub theme: Theme,
    /// A one-line message at the bottom (result of the last key).
    pub status: Option<String>,
    /// Event log lines scrolled back from the newest.
    pub log_scroll: usize,
    /// The scripted lesson being played, if any.
    pub lesson: Option<LessonBar>,
    /// The lesson picker overlay, when open.
    pub picker: Option<Picker>,
}

/// What the lesson bar shows: the step's caption and whether what it
/// describes is observed in the snapshot right now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LessonBar {
    pub title: String,
    pub step: usize,
    pub total: usize,
    pub caption: String,
    /// Each expectation of the step and whether it holds now.
    pub checks: Vec<(String, bool)>,
}

/// The list of shipped lessons (`L`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Picker {
    /// (name, title)
    pub items: Vec<(String, String)>,
    pub selected: usize,
}

impl Picker {
    /// Move the selection; `up` = towards the top.
    pub fn move_by(&mut self, up: bool) {
        let n = self.items.len().max(1);
        self.selected = if up { (self.selected + n - 1) % n } else { (self.selected + 1) % n };
    }
}

/// Draws one mechanism's panel: the area, the snapshot, its number on
/// screen, whether it is selected.
type PanelFn = fn(&mut Frame, Rect, &MechanismSnapshot, usize, bool, &View);

/// Sentences for the lesson pane about what the snapshot shows now.
pub type ObserveFn = fn(&MechanismSnapshot, Lang) -> Vec<String>;

/// What the UI has for one mechanism.
pub struct Panel {
    pub kind: Kind,
    pub draw: PanelFn,
    /// What the panel adds under itself when focused: height, and how.
    pub focus_extra: Option<(u16, FocusExtraFn)>,
    pub observe: ObserveFn,
    /// The lesson text, English and Korean.
    pub lesson: [&'static str; 2],
}

/// A panel's row of `PANELS`. The one place a snapshot's detail is matched
/// to its panel: the panel's `render` and `observe` take their typed
/// detail. A detail of another kind draws an empty named frame.
macro_rules! panel {
    ($kind:ident, $module:ident, $focus_extra:expr) => {
        Panel {
            kind: Kind::$kind,
            draw: |f, area, m, n, selected, view| match &m.detail {
                Detail::$kind(d) => $module::render(f, area, m, d, n, selected, view),
                _ => empty_panel(f, area, m, n - 1),
            },
            focus_extra: $focus_extra,
            observe: |m, lang| match &m.detail {
                Detail::$kind(d) => $module::observe(m, d, lang),
                _ => Vec::new(),
            },
            lesson: [
                include_str!(concat!("../../assets/lessons/", stringify!($module), ".en.md")),
                include_str!(concat!("../../assets/lessons/", stringify!($module), ".ko.md")),
            ],
        }
    };
}

/// The one list of panels: a new mechanism is one line here.
pub static PANELS: &[Panel] = &[
    panel!(Pipe, pipe, None),
    panel!(Fifo, fifo, None),
    panel!(Shm, shm, None),
    panel!(Mq, mq, None),
    panel!(Mach, mach, Some((mach::EXTRA_HEIGHT, mach::render_extra))),
    panel!(Alpc, alpc, Some((alpc::FOCUS_HEIGHT, alpc::render_focus))),
    panel!(Socket, socket, Some((socket::ENDPOINTS_HEIGHT, socket::render_endpoints))),
];

fn panel_for(kind: Kind) -> Option<&'static Panel> {
    PANELS.iter().find(|p| p.kind == kind)
}

pub fn render(f: &mut Frame, snap: &Snapshot, view: &View) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(f, area, view);
        return;
    }
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    render_header(f, header, snap, view);
    let body = match &view.lesson {
        Some(bar) => {
            let h = lesson_bar_height(bar, body.width).min(body.height.saturating_sub(8));
            let [body, bar_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(h)]).areas(body);
            render_lesson_bar(f, bar_area, bar, view);
            body
        }
        None => body,
    };
    // A single mechanism has the room to show its event log too.
    if view.focused || snap.mechanisms.len() == 1 {
        render_focus(f, body, snap, view);
    } else {
        render_grid(f, body, snap, view);
    }
    render_footer(f, footer, snap, view);
    if view.help {
        render_help(f, area, view);
    }
    if let Some(p) = &view.picker {
        render_picker(f, area, p, view);
    }
}

fn lesson_bar_height(bar: &LessonBar, width: u16) -> u16 {
    let w = width.saturating_sub(2).max(1) as usize;
    let caption = unicode_width::UnicodeWidthStr::width(bar.caption.as_str()).div_ceil(w).max(1);
    (caption + 2 + usize::from(!bar.checks.is_empty())) as u16
}

/// The scripted lesson's current step, and whether what it says is seen.
fn render_lesson_bar(f: &mut Frame, area: Rect, bar: &LessonBar, view: &View) {
    let th = view.theme;
    let title = Line::from(vec![
        Span::styled(
            format!(" {} {}/{} ", t(view.lang, "lesson_bar"), bar.step, bar.total),
            th.title().add_modifier(Modifier::REVERSED),
        ),
        Span::styled(format!(" {} ", bar.title), th.title()),
        Span::styled(format!("  {} ", t(view.lang, "lesson_keys")), th.dim()),
    ]);
    let block = Block::default().borders(Borders::ALL).border_style(th.selected_border()).title(title);
    let mut lines = vec![Line::from(Span::styled(bar.caption.clone(), th.value()))];
    if !bar.checks.is_empty() {
        let mut spans = vec![Span::styled(format!("{}: ", t(view.lang, "observed")), th.label())];
        for (src, ok) in &bar.checks {
            let (mark, style) = if *ok { ("✓", th.good()) } else { ("…", th.dim()) };
            spans.push(Span::styled(format!("{mark} {src}   "), style));
        }
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: true }), area);
}

fn render_picker(f: &mut Frame, area: Rect, p: &Picker, view: &View) {
    let th = view.theme;
    let w = 90.min(area.width.saturating_sub(4));
    let h = (p.items.len() as u16 + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, r);
    let lines: Vec<Line> = p
        .items
        .iter()
        .enumerate()
        .map(|(i, (name, title))| {
            let style = if i == p.selected { th.value().add_modifier(Modifier::REVERSED) } else { th.label() };
            Line::from(vec![Span::styled(format!(" {name:<18} "), style), Span::styled(title.clone(), th.label())])
        })
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(th.selected_border())
        .title(Span::styled(format!(" {} ", t(view.lang, "picker_title")), th.title()));
    f.render_widget(Paragraph::new(lines).block(block), r);
}

fn too_small(f: &mut Frame, area: Rect, view: &View) {
    let text =
        t(view.lang, "too_small").replace("{w}", &area.width.to_string()).replace("{h}", &area.height.to_string());
    let y = area.height / 2;
    let p = Paragraph::new(text).wrap(Wrap { trim: true });
    f.render_widget(p, Rect { x: 0, y: y.saturating_sub(1), width: area.width, height: area.height.min(3) });
}

fn render_header(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let (mode, style) = if snap.run.replay {
        (t(l, "replay"), th.warn())
    } else if snap.run.paused {
        (t(l, "paused"), th.warn())
    } else if snap.run.step_mode {
        (t(l, "step"), th.warn())
    } else {
        (t(l, "live"), th.good())
    };
    let line = Line::from(vec![
        Span::styled(" ipcscope ", th.title().add_modifier(Modifier::REVERSED)),
        Span::styled(format!("  {} ", t(l, "run")), th.label()),
        Span::styled(widgets::pid(snap.run.pid).trim_start().to_string(), th.value()),
        Span::styled(format!("  {} ", t(l, "sampling")), th.label()),
        Span::styled(format!("{} Hz", snap.run.hz), th.value()),
        Span::styled(format!("  t={:.1}s  ", snap.t_ms as f64 / 1000.0), th.dim()),
        Span::styled(format!("● {mode}"), style.add_modifier(Modifier::BOLD)),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn render_footer(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let th = view.theme;
    let text = match (&view.status, snap.run.problems.first()) {
        (Some(s), _) => Line::from(Span::styled(s.clone(), th.warn())),
        (None, Some(p)) => Line::from(Span::styled(format!("⚠ {p}"), th.bad())),
        (None, None) => Line::from(Span::styled(tf(view.lang, "footer", &[("n", PANELS.len().to_string())]), th.dim())),
    };
    f.render_widget(Paragraph::new(text), area);
}

/// How many columns the grid gets: panels want ~40 columns at least and
/// are wider than tall, so at most three side by side.
pub fn grid_columns(width: u16, n: usize) -> usize {
    ((width / 40) as usize).clamp(1, 3).min(n.max(1))
}

/// Where each panel of the grid goes, in order.
pub fn grid_cells(body: Rect, n: usize) -> Vec<Rect> {
    if n == 0 {
        return Vec::new();
    }
    let cols = grid_columns(body.width, n);
    let rows = n.div_ceil(cols);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(body);
    let mut out = Vec::with_capacity(n);
    for (r, row_area) in row_areas.iter().enumerate() {
        let in_row = (n - r * cols).min(cols);
        out.extend(Layout::horizontal(vec![Constraint::Ratio(1, in_row as u32); in_row]).split(*row_area).iter());
    }
    out
}

/// The body: everything between the header and footer lines.
pub fn body_area(area: Rect) -> Rect {
    Rect { y: area.y + 1, height: area.height.saturating_sub(2), ..area }
}

/// Which panel of the grid is at (x, y) of a screen of size `area`, for
/// mouse clicks.
pub fn panel_at(area: Rect, n: usize, x: u16, y: u16) -> Option<usize> {
    grid_cells(body_area(area), n).iter().position(|r| r.contains(ratatui::layout::Position { x, y }))
}

/// Rows of the live event strip under a grid panel, when the cell is tall
/// enough that the panel's compact view would leave them empty.
const STRIP_ROWS: u16 = 5;

fn render_grid(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    for (i, cell) in grid_cells(area, snap.mechanisms.len()).into_iter().enumerate() {
        let m = &snap.mechanisms[i];
        if cell.height >= 12 + STRIP_ROWS {
            let [panel, strip] = Layout::vertical([Constraint::Fill(1), Constraint::Length(STRIP_ROWS)]).areas(cell);
            render_panel(f, panel, m, i, view);
            render_event_log(f, strip, m, 0, view);
        } else {
            render_panel(f, cell, m, i, view);
        }
    }
}

fn render_panel(f: &mut Frame, area: Rect, m: &MechanismSnapshot, i: usize, view: &View) {
    match panel_for(m.kind) {
        Some(p) => (p.draw)(f, area, m, i + 1, i == view.selected, view),
        None => empty_panel(f, area, m, i),
    }
}

fn empty_panel(f: &mut Frame, area: Rect, m: &MechanismSnapshot, i: usize) {
    let b = Block::default().borders(Borders::ALL).title(format!(" {} {} ", i + 1, m.kind.name()));
    f.render_widget(b, area);
}

/// A view a panel adds under itself when focused, drawn from the whole
/// snapshot (the socket panel's endpoint comparison reads every
/// mechanism's identifiers): its height and how to draw it.
type FocusExtraFn = fn(&mut Frame, Rect, &Snapshot, &View);

/// One panel large; below it the lesson (with what is happening now) and
/// the event log of every process's system calls, newest last.
fn render_focus(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    if snap.mechanisms.is_empty() {
        return;
    }
    let i = view.selected.min(snap.mechanisms.len() - 1);
    let m = &snap.mechanisms[i];
    // The diagram keeps what it needs; a tall screen gives the rest to the
    // lesson and the log.
    let panel_h = (area.height * 55 / 100).max(16).min(area.height);
    let [panel, below] = Layout::vertical([Constraint::Length(panel_h), Constraint::Fill(1)]).areas(area);
    render_panel(f, panel, m, i, view);
    let below = match panel_for(m.kind).and_then(|p| p.focus_extra) {
        Some((h, draw)) => {
            // Above the lesson and the log; on a small screen, instead of them.
            let h = if below.height >= h + 6 { h } else { below.height };
            let [extra, rest] = Layout::vertical([Constraint::Length(h), Constraint::Fill(1)]).areas(below);
            draw(f, extra, snap, view);
            rest
        }
        None => below,
    };
    let [lesson_area, log_area] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(below);
    render_lesson(f, lesson_area, snap, m, view);
    render_event_log(f, log_area, m, view.log_scroll, view);
}

fn render_lesson(f: &mut Frame, area: Rect, snap: &Snapshot, m: &MechanismSnapshot, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(th.border())
        .title(Span::styled(format!(" {} ", t(l, "lesson")), th.title()));
    // Wrapped here by display width (see widgets::wrap_words), not by
    // ratatui, so Korean never runs over the border.
    let width = block.inner(area).width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let now = format!("{} ▸ ", t(l, "now"));
    for o in lesson::observations(snap, m, l, panel_for(m.kind).map(|p| p.observe)) {
        for (i, row) in widgets::wrap_words(&format!("{now}{o}"), width).into_iter().enumerate() {
            match row.strip_prefix(now.as_str()).filter(|_| i == 0) {
                Some(rest) => lines.push(Line::from(vec![
                    Span::styled(now.clone(), th.warn()),
                    Span::styled(rest.to_string(), th.value()),
                ])),
                None => lines.push(Line::from(Span::styled(row, th.value()))),
            }
        }
    }
    if !lines.is_empty() {
        lines.push(Line::default());
    }
    match panel_for(m.kind).map(|p| if l == Lang::Ko { p.lesson[1] } else { p.lesson[0] }) {
        // Paragraphs of the lesson file, re-flowed to the pane's width.
        Some(text) => {
            for para in text.split("\n\n") {
                lines.extend(
                    widgets::wrap_words(para, width).into_iter().map(|r| Line::from(Span::styled(r, th.label()))),
                );
                lines.push(Line::default());
            }
        }
        None => lines.push(Line::from(Span::styled(t(l, "no_lesson"), th.dim()))),
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// Every process's recorded calls on one time line, newest last, `scroll`
/// lines back from the newest.
fn render_event_log(f: &mut Frame, area: Rect, m: &MechanismSnapshot, scroll: usize, view: &View) {
    let th = view.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(th.border())
        .title(Span::styled(format!(" {} ", t(view.lang, "events")), th.title()));
    let inner = block.inner(area);
    f.render_widget(block, area);
    // Every process's calls on one time line.
    let mut events: Vec<(u64, usize, &str, &str)> = m
        .processes
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.events.iter().map(move |e| (e.t_ms, k, p.role.as_str(), e.text.as_str())))
        .collect();
    events.sort_by_key(|e| (e.0, e.1));
    let role_w = m.processes.iter().map(|p| p.role.len()).max().unwrap_or(8);
    let room = inner.height as usize;
    let end = events.len().saturating_sub(scroll.min(events.len().saturating_sub(room)));
    let start = end.saturating_sub(room);
    let lines: Vec<Line> = events[start..end]
        .iter()
        .map(|(t_ms, _, role, text)| {
            Line::from(vec![
                Span::styled(format!("{:>7.3} ", *t_ms as f64 / 1000.0), th.dim()),
                Span::styled(format!("{role:<role_w$} "), th.label()),
                Span::raw(text.to_string()),
            ])
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

fn render_help(f: &mut Frame, area: Rect, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let focus = format!("tab / 1-{}", PANELS.len());
    let rows = [
        ("q", "key_quit"),
        ("space", "key_pause"),
        ("+ / -", "key_prate"),
        ("< / >", "key_crate"),
        ("k", "key_kill"),
        ("r", "key_restart"),
        (focus.as_str(), "key_focus"),
        ("enter", "key_enter"),
        ("l", "key_lang"),
        ("t", "key_theme"),
        ("s / n / N", "key_step"),
        ("PgUp/PgDn", "key_scroll"),
        ("L / →", "key_lesson"),
        ("?", "key_help"),
    ];
    let w = 74.min(area.width.saturating_sub(4));
    let h = (rows.len() as u16 + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, r);
    let lines: Vec<Line> = rows
        .iter()
        .map(|(k, key)| Line::from(vec![Span::styled(format!(" {k:>9}  "), th.value()), Span::raw(t(l, key))]))
        .collect();
    let block =
        Block::default().borders(Borders::ALL).title(Span::styled(format!(" {} ", t(l, "help_title")), th.title()));
    f.render_widget(Paragraph::new(lines).block(block), r);
}

/// Render to plain text lines (trailing spaces trimmed), for `snapshot
/// --format text` and tests.
pub fn render_text(snap: &Snapshot, view: &View, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut term = match ratatui::Terminal::new(backend) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    let _ = term.draw(|f| render(f, snap, view));
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            line.push_str(sym);
            skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PANELS` is the one list of panels: every mechanism is in it once,
    /// with a lesson in each language.
    #[test]
    fn every_kind_has_one_panel() {
        for k in Kind::ALL {
            let rows: Vec<_> = PANELS.iter().filter(|p| p.kind == k).collect();
            assert_eq!(rows.len(), 1, "{k:?}");
            assert!(rows[0].lesson.iter().all(|t| !t.trim().is_empty()), "{k:?}");
        }
        assert_eq!(PANELS.len(), Kind::ALL.len());
    }

    /// A detail that does not match its kind draws a named frame, not a
    /// blank cell, and observes nothing.
    #[test]
    fn a_mismatched_detail_draws_a_named_frame() {
        let mut snap: Snapshot =
            serde_json::from_str(include_str!("../../tests/fixtures/alpc-stalled.json")).expect("fixture");
        snap.mechanisms[0].kind = Kind::Pipe;
        let text = render_text(&snap, &View::default(), 80, 24);
        assert!(text.contains(" 1 pipe "), "{text}");
        let p = panel_for(Kind::Pipe).unwrap();
        assert!((p.observe)(&snap.mechanisms[0], Lang::En).is_empty());
    }

    /// Panels draw the probes' facts; they do not decide by comparing the
    /// contract's strings (a reworded probe message would break them
    /// silently). A textual check of every `src/ui/*.rs`.
    #[test]
    fn no_panel_compares_contract_strings() {
        let sources = [
            ("alpc.rs", include_str!("alpc.rs")),
            ("audit.rs", include_str!("audit.rs")),
            ("fifo.rs", include_str!("fifo.rs")),
            ("fit.rs", include_str!("fit.rs")),
            ("lesson.rs", include_str!("lesson.rs")),
            ("mach.rs", include_str!("mach.rs")),
            ("mod.rs", include_str!("mod.rs")),
            ("mq.rs", include_str!("mq.rs")),
            ("pipe.rs", include_str!("pipe.rs")),
            ("shm.rs", include_str!("shm.rs")),
            ("socket.rs", include_str!("socket.rs")),
            ("theme.rs", include_str!("theme.rs")),
            ("widgets.rs", include_str!("widgets.rs")),
        ];
        let fields = ["role", "op", "exit", "state", "unit", "wchan", "family", "blocked", "rights", "key", "ip"];
        let tails = [" == \"", " != \"", ".as_deref() == Some(\"", ".starts_with(", ".ends_with(", ".contains(\""];
        let mut found = Vec::new();
        for (file, text) in sources {
            for (n, line) in text.lines().enumerate() {
                for f in fields {
                    for (at, _) in line.match_indices(f) {
                        let before = line[..at].chars().next_back();
                        let ident = |c: char| c.is_alphanumeric() || c == '_';
                        if before.is_some_and(ident) || line[at + f.len()..].starts_with(ident) {
                            continue;
                        }
                        if tails.iter().any(|t| line[at + f.len()..].starts_with(t)) {
                            found.push(format!("src/ui/{file}:{}: `{f}`: {}", n + 1, line.trim()));
                        }
                    }
                }
            }
        }
        // The list of files is complete: a new panel file joins the check.
        let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui")).map_or(0, |d| d.count());
        assert!(on_disk == 0 || on_disk == sources.len(), "src/ui has {on_disk} files; list them all above");
        assert!(found.is_empty(), "panels compare contract strings:\n{}", found.join("\n"));
    }
}
