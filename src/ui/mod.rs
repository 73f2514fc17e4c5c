//! Rendering: a pure function of the observed `Snapshot` and the `View`
//! (what the user chose to look at). The same inputs draw the same frame.
//!
//! ```text
//! ┌ header: ipcscope · run pid · sampling rate · LIVE / PAUSED / REPLAY ───┐
//! │ body: a grid with one panel per mechanism (panel modules below), the   │
//! │       two or three marked for comparison, or one panel zoomed in with  │
//! │       its headline figure, lesson pane and event log (focus)           │
//! │ lesson bar: the scripted lesson's step, when one is played             │
//! └ footer: keys (`? help` always) ────────────────────────────────────────┘
//! ```
//! `?` draws the help over everything; below 80×24 only a notice is drawn.

pub mod alpc;
pub mod audit;
pub mod design;
pub mod fifo;
pub mod fit;
pub mod lesson;
pub mod mach;
pub mod mach_book;
pub mod measured;
pub mod mq;
pub mod pipe;
pub mod shm;
pub mod socket;
pub mod theme;
pub mod widgets;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Clear;
use ratatui::Frame;
use widgets::Boxed;

use crate::i18n::{t, Lang};
use crate::model::figures::Party;
use crate::model::snapshot::{Detail, MechanismSnapshot, Snapshot, Unit};
use crate::model::Kind;
use fit::Item;
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
    /// Lesson pane lines scrolled down from its top.
    pub lesson_scroll: usize,
    /// Panels marked for comparison (`m`): two or three marked are shown
    /// alone, side by side.
    pub marked: Vec<Kind>,
    /// The scripted lesson being played, if any.
    pub lesson: Option<LessonBar>,
    /// The lesson picker overlay, when open.
    pub picker: Option<Picker>,
    /// The comparison view (`v`): every mechanism's measured cost and
    /// latency in one table, instead of the panels.
    pub costs: bool,
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
    /// Past the last step: the lesson is over (`Esc` leaves it).
    pub over: bool,
    /// What of the panel the step is about (`Step::show`).
    pub show: Vec<String>,
}

impl View {
    /// The lesson step being played asks the panel to draw `what` first.
    pub fn lesson_shows(&self, what: &str) -> bool {
        self.lesson.as_ref().is_some_and(|b| !b.over && b.show.iter().any(|s| s == what))
    }
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

/// The rows a panel's drawing takes at a width (a zoomed panel gets
/// these, the lesson pane the rest).
pub type RowsFn = fn(&MechanismSnapshot, u16, &View) -> u16;

/// Sentences for the lesson pane about what the snapshot shows now.
pub type ObserveFn = fn(&MechanismSnapshot, Lang) -> Vec<String>;

/// What the UI has for one mechanism.
pub struct Panel {
    pub kind: Kind,
    pub draw: PanelFn,
    /// What the panel adds under itself when focused: height, and how.
    pub focus_extra: Option<(u16, FocusExtraFn)>,
    /// The rows its drawing takes; `None`: measured (`panel_rows`).
    pub rows: Option<RowsFn>,
    pub observe: ObserveFn,
    /// The lesson text, English and Korean.
    pub lesson: [&'static str; 2],
}

/// A panel's row of `PANELS`. The one place a snapshot's detail is matched
/// to its panel: the panel's `render` and `observe` take their typed
/// detail. A detail of another kind draws an empty named frame.
macro_rules! panel {
    ($kind:ident, $module:ident, $focus_extra:expr) => {
        panel!($kind, $module, $focus_extra, None)
    };
    ($kind:ident, $module:ident, $focus_extra:expr, $rows:expr) => {
        Panel {
            kind: Kind::$kind,
            draw: |f, area, m, n, selected, view| match &m.detail {
                Detail::$kind(d) => $module::render(f, area, m, d, n, selected, view),
                _ => empty_panel(f, area, m, n - 1),
            },
            focus_extra: $focus_extra,
            rows: $rows,
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

/// Rows a zoomed panel keeps at least (a compact diagram).
const PANEL_MIN: u16 = 10;
/// Rows the lesson pane keeps at least: its border and three lines.
const PANE_MIN: u16 = 5;
/// Rows the body keeps under a lesson bar.
const BODY_MIN: u16 = PANEL_MIN + PANE_MIN;
/// Rows of the headline figure (big text, four rows of glyphs).
const HEADLINE_ROWS: u16 = 4;
/// The outer size at which a panel draws its full diagram
/// (`widgets::roomy` inside a border).
const ROOMY_W: u16 = 72;
const ROOMY_H: u16 = 16;
/// Rows of the live event strip under a grid panel, when the cell is tall
/// enough that the panel's compact view would leave them empty.
const STRIP_ROWS: u16 = 5;

/// Where the parts of the screen go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub header: Rect,
    pub body: Rect,
    /// The lesson bar, when a lesson is played.
    pub bar: Option<Rect>,
    pub footer: Rect,
}

/// The screen's parts: a lesson bar takes the rows its caption needs,
/// but leaves the body `BODY_MIN` rows (a diagram and the lesson pane).
pub fn screen(area: Rect, view: &View) -> Screen {
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let Some(bar) = &view.lesson else { return Screen { header, body, bar: None, footer } };
    let want = lesson_bar_lines(bar, body.width.saturating_sub(2), view).len() as u16 + 2;
    let h = want.min(body.height.saturating_sub(BODY_MIN)).max(3).min(body.height);
    let [body, bar_area] = Layout::vertical([Constraint::Fill(1), Constraint::Length(h)]).areas(body);
    Screen { header, body, bar: Some(bar_area), footer }
}

/// The panels the body shows (indexes into the snapshot): the two or
/// three marked for comparison, else every one.
pub fn shown(snap: &Snapshot, view: &View) -> Vec<usize> {
    let all = 0..snap.mechanisms.len();
    let marked: Vec<usize> = all.clone().filter(|&i| view.marked.contains(&snap.mechanisms[i].kind)).collect();
    if marked.len() >= 2 {
        marked
    } else {
        all.collect()
    }
}

/// Whether the body is one panel zoomed in (a run of one mechanism is).
pub fn zoomed(snap: &Snapshot, view: &View) -> bool {
    view.focused || shown(snap, view).len() == 1
}

pub fn render(f: &mut Frame, snap: &Snapshot, view: &View) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(f, area, view);
        return;
    }
    let sc = screen(area, view);
    render_header(f, sc.header, snap, view);
    if let (Some(bar), Some(r)) = (&view.lesson, sc.bar) {
        render_lesson_bar(f, r, bar, view);
    }
    if view.costs {
        render_costs(f, sc.body, snap, view);
    } else if zoomed(snap, view) {
        render_focus(f, sc.body, snap, view);
    } else {
        render_grid(f, sc.body, snap, &shown(snap, view), view);
    }
    render_footer(f, sc.footer, snap, view);
    if view.help {
        render_help(f, area, view);
    }
    if let Some(p) = &view.picker {
        render_picker(f, area, p, view);
    }
}

/// The lesson bar's lines inside its border, `width` columns wide: the
/// caption re-flowed (never cut), then what is observed of it.
fn lesson_bar_lines(bar: &LessonBar, width: u16, view: &View) -> Vec<(u8, Line<'static>)> {
    let th = view.theme;
    let w = width.max(1) as usize;
    let mut lines: Vec<(u8, Line<'static>)> = widgets::wrap_words(&bar.caption, w)
        .into_iter()
        .map(|r| (0, Line::from(Span::styled(r, th.value()))))
        .collect();
    lines.extend(lesson::bar_checks(&bar.checks, w, view));
    lines
}

/// The scripted lesson's current step, and whether what it says is seen.
fn render_lesson_bar(f: &mut Frame, area: Rect, bar: &LessonBar, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let keys = if bar.over {
        t(l, "lesson_over")
    } else if bar.step >= bar.total {
        t(l, "lesson_last")
    } else {
        t(l, "lesson_next")
    };
    // The step and the keys first; the lesson's title when it fits too.
    let badge = Span::styled(
        format!(" {} {}/{} ", t(l, "lesson_bar"), bar.step, bar.total),
        th.title().add_modifier(Modifier::REVERSED),
    );
    let keys = Span::styled(format!(" {keys} "), if bar.over { th.good() } else { th.dim() });
    let name = Span::styled(format!(" {} ", bar.title), th.title());
    let forms = vec![
        Line::from(vec![badge.clone(), name, keys.clone()]),
        Line::from(vec![badge.clone(), keys]),
        Line::from(badge),
    ];
    let title = fit::first_fit_line(forms, area.width.saturating_sub(2) as usize).unwrap_or_default();
    let block = Boxed::new().border_style(th.selected_border()).title(title);
    let inner = block.inner(area);
    let lines = lesson_bar_lines(bar, inner.width, view);
    f.render_widget(block, area);
    fit::draw(f, inner, fit::column(lines, inner.height as usize, inner.width as usize, view));
}

fn render_picker(f: &mut Frame, area: Rect, p: &Picker, view: &View) {
    let th = view.theme;
    let w = 90.min(area.width.saturating_sub(4));
    let room = w.saturating_sub(2) as usize;
    // A title too long for the row goes on under the name, between words.
    let name_w = 20;
    let mut lines: Vec<Line> = Vec::new();
    for (i, (name, title)) in p.items.iter().enumerate() {
        let style = if i == p.selected { th.value().add_modifier(Modifier::REVERSED) } else { th.label() };
        let parts = widgets::wrap_words(title, room.saturating_sub(name_w).max(10));
        // The lesson's file name is English; a Korean reader picks by number.
        let name = if view.lang == crate::i18n::Lang::Ko { format!("{:>2}", i + 1) } else { name.clone() };
        for (j, part) in parts.into_iter().enumerate() {
            let lead =
                if j == 0 { Span::styled(format!(" {name:<18} "), style) } else { Span::raw(" ".repeat(name_w)) };
            lines.push(Line::from(vec![lead, Span::styled(part, th.label())]));
        }
    }
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, r);
    let title = fit::first_fit(&[t(view.lang, "picker_title"), t(view.lang, "picker_short")], room).unwrap_or("");
    let block = Boxed::new().border_style(th.selected_border()).title(Span::styled(format!(" {title} "), th.title()));
    let inner = block.inner(r);
    f.render_widget(block, r);
    fit::draw(f, inner, lines);
}

fn too_small(f: &mut Frame, area: Rect, view: &View) {
    let text =
        t(view.lang, "too_small").replace("{w}", &area.width.to_string()).replace("{h}", &area.height.to_string());
    let rows = widgets::wrap_words(&text, area.width.max(1) as usize);
    let y = (area.height / 2).saturating_sub(1);
    let h = (rows.len() as u16).min(area.height.saturating_sub(y));
    let lines: Vec<Line> = rows.into_iter().map(Line::from).collect();
    fit::draw(f, Rect { x: 0, y, width: area.width, height: h }, lines);
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
    let mut items = vec![
        Item::text(0, " ipcscope ", th.title().add_modifier(Modifier::REVERSED)),
        Item::new(
            3,
            vec![
                Span::styled(format!("{} ", t(l, "run")), th.label()),
                Span::styled(widgets::pid(snap.run.pid).trim_start().to_string(), th.value()),
            ],
        ),
        Item::new(
            4,
            vec![
                Span::styled(format!("{} ", t(l, "sampling")), th.label()),
                Span::styled(format!("{} Hz", snap.run.hz), th.value()),
            ],
        ),
        Item::text(2, format!("t={:.1}s", snap.t_ms as f64 / 1000.0), th.dim()),
        Item::text(0, format!("● {mode}"), style.add_modifier(Modifier::BOLD)),
    ];
    if !view.marked.is_empty() {
        let names: Vec<&str> = view.marked.iter().map(|k| k.name()).collect();
        items.push(Item::text(1, format!("◆ {} {}", t(l, "compare"), names.join(" · ")), th.title()));
    }
    fit::draw(f, area, fit::row(items, "  ", area.width as usize, view));
}

/// The footer: the last key's result or the run's first problem, else
/// the main keys; `? help` is always there, the rest drop by priority.
fn render_footer(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let key = |p: u8, k: &str, words: &'static str| {
        Item::new(p, vec![Span::styled(k.to_string(), th.value()), Span::styled(format!(" {}", t(l, words)), th.dim())])
    };
    let help = key(0, "?", "foot_help");
    let message = match (&view.status, snap.run.problems.first()) {
        (Some(s), _) => Some((s.clone(), th.warn())),
        (None, Some(p)) => Some((format!("⚠ {p}"), th.bad())),
        (None, None) => None,
    };
    // `? help` at the end, always; the rest fits in the room before it.
    let help_w = fit::line_width(&Line::from(help.spans.clone())) + 2;
    let room = (area.width as usize).saturating_sub(help_w);
    let line = match message {
        // The message's words, whole, as many as fit.
        Some((text, style)) => {
            let words: Vec<Item> = text.split(' ').map(|w| Item::text(1, w.to_string(), style)).collect();
            fit::row(words, " ", room, view)
        }
        None => {
            let zoom = if zoomed(snap, view) { "foot_unzoom" } else { "foot_zoom" };
            let n = snap.mechanisms.len();
            let mut items = vec![
                key(1, "q", "foot_quit"),
                key(2, "c", "foot_stall"),
                key(3, "+/-", "foot_prate"),
                key(3, "</>", "foot_crate"),
                key(4, "space", "foot_pause"),
            ];
            // Keys that choose among panels, when there is a choice.
            if n > 1 {
                items.push(key(5, &format!("1-{n}"), "foot_select"));
                items.push(key(5, "enter", zoom));
            }
            if n > 2 {
                items.push(key(6, "m", "foot_compare"));
            }
            items.push(key(6, "v", "foot_costs"));
            items.push(key(6, "L", "foot_lessons"));
            items.push(key(7, "l", "foot_lang"));
            fit::row(items, "  ", room, view)
        }
    };
    let mut spans = line.spans;
    spans.push(Span::raw("  "));
    spans.extend(help.spans);
    fit::draw(f, area, Line::from(spans));
}

/// How many columns the grid gets: panels want ~40 columns at least and
/// are wider than tall, so at most three side by side.
pub fn grid_columns(width: u16, n: usize) -> usize {
    ((width / 40) as usize).clamp(1, 3).min(n.max(1))
}

/// `n` cells in rows of `cols`, the last row's cells sharing its width.
fn rows_of(body: Rect, n: usize, cols: usize) -> Vec<Rect> {
    let rows = n.div_ceil(cols);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(body);
    let mut out = Vec::with_capacity(n);
    for (r, row_area) in row_areas.iter().enumerate() {
        let in_row = (n - r * cols).min(cols);
        out.extend(Layout::horizontal(vec![Constraint::Ratio(1, in_row as u32); in_row]).split(*row_area).iter());
    }
    out
}

/// Whether a cell gives its panel the full diagram.
fn roomy_cell(r: &Rect) -> bool {
    r.width >= ROOMY_W && r.height >= ROOMY_H
}

/// Where each panel of the grid goes, in order. Two or three panels (a
/// comparison) are arranged so each gets its full diagram when some
/// arrangement allows it: side by side, stacked, or two over one.
pub fn grid_cells(body: Rect, n: usize) -> Vec<Rect> {
    if n == 0 {
        return Vec::new();
    }
    let default = rows_of(body, n, grid_columns(body.width, n));
    if n <= 3 && !default.iter().all(roomy_cell) {
        let others = match n {
            2 => vec![rows_of(body, 2, 1)],
            3 => vec![rows_of(body, 3, 2), rows_of(body, 3, 1)],
            _ => Vec::new(),
        };
        if let Some(c) = others.into_iter().find(|c| c.iter().all(roomy_cell)) {
            return c;
        }
    }
    default
}

/// The body: everything between the header and footer lines.
pub fn body_area(area: Rect) -> Rect {
    Rect { y: area.y + 1, height: area.height.saturating_sub(2), ..area }
}

/// Which panel (index into the snapshot) is at (x, y) of a screen of size
/// `area`, for mouse clicks on the grid.
pub fn panel_at(area: Rect, snap: &Snapshot, view: &View, x: u16, y: u16) -> Option<usize> {
    let shown = shown(snap, view);
    let body = screen(area, view).body;
    let at = grid_cells(body, shown.len()).iter().position(|r| r.contains(ratatui::layout::Position { x, y }))?;
    shown.get(at).copied()
}

fn render_grid(f: &mut Frame, area: Rect, snap: &Snapshot, shown: &[usize], view: &View) {
    for (&i, cell) in shown.iter().zip(grid_cells(area, shown.len())) {
        let m = &snap.mechanisms[i];
        match grid_strip(cell, m, i, view) {
            Some(rows) => {
                let [panel, strip] = Layout::vertical([Constraint::Fill(1), Constraint::Length(rows)]).areas(cell);
                render_panel(f, panel, m, i, view);
                render_event_log(f, strip, m, 0, view);
            }
            None => render_panel(f, cell, m, i, view),
        }
        if view.marked.contains(&m.kind) && cell.width > 12 {
            // The comparison mark on the top border, right.
            let r = Rect { x: cell.right() - 5, y: cell.y, width: 3, height: 1 };
            fit::draw(f, r, Span::styled(" ◆ ", view.theme.title()));
        }
    }
}

/// Rows of events under a grid panel, if any: a full-size panel keeps
/// what its diagram needs and the strip gets the rest; a small one keeps
/// all but `STRIP_ROWS` when it is tall enough.
fn grid_strip(cell: Rect, m: &MechanismSnapshot, i: usize, view: &View) -> Option<u16> {
    if cell.height < 12 + STRIP_ROWS {
        return None;
    }
    let below = Rect { height: cell.height - STRIP_ROWS, ..cell };
    if !roomy_cell(&cell) {
        return Some(STRIP_ROWS);
    }
    if !roomy_cell(&below) {
        return None;
    }
    let need = panel_rows(m, i, cell.width, below.height, view);
    Some(cell.height - need.clamp(ROOMY_H, below.height))
}

fn render_panel(f: &mut Frame, area: Rect, m: &MechanismSnapshot, i: usize, view: &View) {
    match panel_for(m.kind) {
        Some(p) => (p.draw)(f, area, m, i + 1, i == view.selected, view),
        None => empty_panel(f, area, m, i),
    }
}

/// The rows a panel's drawing takes at `width` when given up to `height`:
/// its own answer if it has one, else measured by drawing it off screen
/// (panels draw from the top) down to its last non-blank row. A panel
/// that draws its full diagram at that height keeps that diagram.
pub fn panel_rows(m: &MechanismSnapshot, i: usize, width: u16, height: u16, view: &View) -> u16 {
    let Some(p) = panel_for(m.kind) else { return PANEL_MIN.min(height) };
    if let Some(rows) = p.rows {
        return rows(m, width, view).min(height);
    }
    if width < 3 || height < 3 {
        return height;
    }
    let mut term = match ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    let _ = term.draw(|f| (p.draw)(f, f.area(), m, i + 1, true, view));
    let buf = term.backend().buffer();
    let last = (1..height - 1).rev().find(|&y| (1..width - 1).any(|x| buf[(x, y)].symbol() != " "));
    let used = last.map_or(2, |y| y + 2);
    let full = roomy_cell(&Rect::new(0, 0, width, height));
    used.max(if full { ROOMY_H } else { 0 }).min(height)
}

fn empty_panel(f: &mut Frame, area: Rect, m: &MechanismSnapshot, i: usize) {
    let b = Boxed::new().title(format!(" {} {} ", i + 1, m.kind.name()));
    f.render_widget(b, area);
}

/// A view a panel adds under itself when focused, drawn from the whole
/// snapshot (the socket panel's endpoint comparison reads every
/// mechanism's identifiers): its height and how to draw it.
type FocusExtraFn = fn(&mut Frame, Rect, &Snapshot, &View);

/// Where the parts of the zoomed view go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FocusAreas {
    pub panel: Rect,
    /// The panel's own extra view (`Panel::focus_extra`).
    pub extra: Option<Rect>,
    /// The measured figures (cost, latency, heat map): `measured::`.
    pub measured: Option<Rect>,
    /// The headline figure in big text.
    pub headline: Option<Rect>,
    pub lesson: Rect,
    /// The event log; dropped first when rows are short.
    pub log: Option<Rect>,
}

/// The zoomed view's arithmetic. The panel gets the rows it `need`s (at
/// least `PANEL_MIN`) but leaves the lesson pane `PANE_MIN`; below it, in
/// this order while rows last: the panel's extra view (`extra` rows), the
/// measured figures (up to `measured` rows, at least `MEASURED_MIN`, while
/// the lesson keeps two rows over its minimum), the headline (on a projector as soon as the lesson keeps its minimum,
/// elsewhere only when the lesson keeps twice that), then the lesson pane
/// and the event log — side by side from 100 columns, else stacked when
/// both get their minimum, else the lesson alone.
pub fn focus_layout(area: Rect, need: u16, extra: Option<u16>, measured: u16, projector: bool) -> FocusAreas {
    let hi = area.height.saturating_sub(PANE_MIN);
    let panel_h = need.clamp(PANEL_MIN.min(hi), hi.max(PANEL_MIN.min(area.height)));
    let [panel, mut rest] = Layout::vertical([Constraint::Length(panel_h), Constraint::Fill(1)]).areas::<2>(area);
    let mut take = |rows: u16, keep: u16| -> Option<Rect> {
        if rows == 0 || rest.height < rows + keep {
            return None;
        }
        let [top, below] = Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas::<2>(rest);
        rest = below;
        Some(top)
    };
    let extra = extra.and_then(|h| take(h, PANE_MIN));
    let measured = (MEASURED_MIN..=measured).rev().find_map(|h| take(h, PANE_MIN + 2));
    let headline = take(HEADLINE_ROWS, if projector { PANE_MIN } else { 2 * PANE_MIN });
    let (lesson, log) = if rest.width >= 100 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(rest);
        (a, Some(b))
    } else if rest.height >= 2 * PANE_MIN + 2 {
        let lesson_h = (rest.height * 3).div_ceil(5).clamp(PANE_MIN, rest.height - PANE_MIN);
        let [a, b] = Layout::vertical([Constraint::Length(lesson_h), Constraint::Fill(1)]).areas(rest);
        (a, Some(b))
    } else {
        (rest, None)
    };
    FocusAreas { panel, extra, measured, headline, lesson, log }
}

/// The zoomed panel (index into the snapshot) and where its parts go in
/// the body `area`.
fn focus_areas(area: Rect, snap: &Snapshot, view: &View) -> Option<(usize, FocusAreas)> {
    let i = view.selected.min(snap.mechanisms.len().checked_sub(1)?);
    let m = &snap.mechanisms[i];
    let measured = measured_rows(m, area.width, view);
    // On a tall screen a panel that fills any height it gets (shm's bytes)
    // leaves the measured figures their rows; on a small one the panel
    // keeps its full diagram, with the figures' own row in it.
    let keep = if area.height >= 2 * ROOMY_H + PANE_MIN { measured.min(MEASURED_KEEP) } else { 0 };
    let hi = area.height.saturating_sub(PANE_MIN + keep).max(PANEL_MIN.min(area.height));
    let need = panel_rows(m, i, area.width, hi, view);
    let extra = panel_for(m.kind).and_then(|p| p.focus_extra).map(|(h, _)| h);
    Some((i, focus_layout(area, need, extra, measured, view.theme.is_projector())))
}

/// How far the lesson pane of the zoomed view on a screen of size `area`
/// can scroll (0 when all of it shows, or nothing is zoomed).
pub fn lesson_scroll_max(area: Rect, snap: &Snapshot, view: &View) -> usize {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT || !zoomed(snap, view) {
        return 0;
    }
    let Some((i, a)) = focus_areas(screen(area, view).body, snap, view) else { return 0 };
    let lines = lesson_lines(snap, &snap.mechanisms[i], a.lesson.width.saturating_sub(2) as usize, view);
    lines.len().saturating_sub(a.lesson.height.saturating_sub(2) as usize)
}

/// One panel large; below it its headline figure, the lesson (with what
/// is happening now) and the event log of every process's system calls.
fn render_focus(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let Some((i, a)) = focus_areas(area, snap, view) else { return };
    let m = &snap.mechanisms[i];
    let extra = panel_for(m.kind).and_then(|p| p.focus_extra);
    render_panel(f, a.panel, m, i, view);
    if let (Some(r), Some((_, draw))) = (a.extra, extra) {
        draw(f, r, snap, view);
    }
    if let Some(r) = a.measured {
        render_measured(f, r, m, view);
    }
    if let Some(r) = a.headline {
        render_headline(f, r, m, view);
    }
    render_lesson(f, a.lesson, snap, m, view);
    if let Some(r) = a.log {
        render_event_log(f, r, m, view.log_scroll, view);
    }
}

/// Rows the measured block takes at least: its border and two lines.
const MEASURED_MIN: u16 = 4;
/// Rows a zoomed panel leaves the measured block when it could fill them.
const MEASURED_KEEP: u16 = 10;
/// From this inner width the heat map goes beside the figures.
const MEASURED_SIDE_W: u16 = 110;

/// Rows the measured block wants at `width` (0: nothing measured).
fn measured_rows(m: &MechanismSnapshot, width: u16, view: &View) -> u16 {
    if !measured::any(m) {
        return 0;
    }
    let inner = width.saturating_sub(2);
    let heat = measured::heat_rows(m) as u16;
    let heat = if heat > 0 { heat + 1 } else { 0 };
    let side = inner >= MEASURED_SIDE_W;
    let text_w = if side { inner - measured::HEAT_SIDE_W - 2 } else { inner };
    let text = measured::block_lines(m, text_w as usize, view).len() as u16;
    2 + if side { text.max(heat) } else { text + heat }
}

/// The measured figures of the zoomed panel: cost and latency with their
/// sources, and the latency heat map beside them (wide) or under them.
fn render_measured(f: &mut Frame, area: Rect, m: &MechanismSnapshot, view: &View) {
    let th = view.theme;
    let title = fit::first_fit(&[t(view.lang, "ms_title")], area.width.saturating_sub(4) as usize);
    let mut block = Boxed::new().border_style(th.border());
    if let Some(title) = title {
        block = block.title(Span::styled(format!(" {title} "), th.title()));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let side = inner.width >= MEASURED_SIDE_W;
    let (text_area, heat_area) = if side {
        let [a, _, b] =
            Layout::horizontal([Constraint::Fill(1), Constraint::Length(2), Constraint::Length(measured::HEAT_SIDE_W)])
                .areas(inner);
        (a, Some(b))
    } else {
        (inner, None)
    };
    let text = measured::block_lines(m, text_area.width as usize, view);
    let shown = fit::column(text, text_area.height as usize, text_area.width as usize, view);
    let used = shown.len() as u16;
    fit::draw(f, text_area, shown);
    // Under the text when there is no room beside it.
    let heat_area = heat_area.unwrap_or(Rect {
        y: text_area.y + used.min(text_area.height),
        height: text_area.height.saturating_sub(used),
        ..text_area
    });
    let Some(lat) = &m.latency_us else { return };
    let room = heat_area.width as usize;
    let Some(caption) = measured::heat_caption(room, view) else { return };
    let map = measured::heat_map(lat, room, heat_area.height.saturating_sub(1) as usize, view);
    if map.is_empty() {
        return;
    }
    let mut lines = vec![caption];
    lines.extend(map);
    fit::draw(f, heat_area, lines);
}

/// The comparison view (`v`): every mechanism of the run in one table,
/// measured on this machine under the same workload, with what it shows
/// and where each number comes from.
fn render_costs(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let th = view.theme;
    let l = view.lang;
    let room = area.width.saturating_sub(4) as usize;
    let title = fit::first_fit(&[t(l, "ms_table_title"), t(l, "ms_table_title_short")], room);
    let mut block = Boxed::new().border_style(th.selected_border());
    if let Some(title) = title {
        block = block.title(Span::styled(format!(" {title} "), th.title()));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let inner = Rect { x: inner.x + 1, width: inner.width.saturating_sub(2), ..inner };
    let lines = measured::table_lines(snap, inner.width as usize, view);
    widgets::fitted_lines(f, inner, lines, view);
}

/// The channel's fill as the headline figure: `48.0K/64.0K`, `5/10`.
pub fn headline_figure(m: &MechanismSnapshot) -> String {
    let c = &m.channel;
    let num = |n: u64| if c.unit == Unit::Bytes { widgets::bytes(n) } else { n.to_string() };
    if c.capacity == 0 {
        num(c.depth)
    } else {
        format!("{}/{}", num(c.within()), num(c.capacity))
    }
}

/// How loud a party is on the headline: the sender blocked on a full
/// channel first.
fn loudness(p: Party) -> u8 {
    match p {
        Party::BlockedFull => 0,
        Party::Paused => 1,
        Party::StepHeld => 2,
        Party::Stalled => 3,
        Party::WaitingPartner => 3,
        Party::WaitingData => 4,
        Party::Running => 5,
        Party::Pacing => 6,
        Party::Idle => 7,
        Party::Exited => 8,
        Party::NotStarted => 9,
    }
}

/// The title key of a mechanism's panel.
pub fn title_key(k: Kind) -> &'static str {
    match k {
        Kind::Pipe => "pipe_title",
        Kind::Fifo => "fifo_title",
        Kind::Shm => "shm_title",
        Kind::Mq => "mq_title",
        Kind::Mach => "mach_title",
        Kind::Alpc => "alpc_title",
        Kind::Socket => "sock_title",
    }
}

/// The headline: the channel's fill in big digits (tui-big-text), and
/// beside it the loudest party in words and the rates the panel runs at.
fn render_headline(f: &mut Frame, area: Rect, m: &MechanismSnapshot, view: &View) {
    use tui_big_text::{BigText, PixelSize};
    let th = view.theme;
    let l = view.lang;
    let figure = headline_figure(m);
    let style = if m.channel.full() { th.bad() } else { th.value() };
    let chars = figure.chars().count() as u16;
    // The biggest glyphs that leave the words beside them 30 columns.
    let words_min = 30;
    let size = [(PixelSize::HalfHeight, 8), (PixelSize::Quadrant, 4)]
        .into_iter()
        .find(|(_, w)| chars * w + 2 + words_min <= area.width);
    let words_area = match size {
        Some((px, w)) => {
            let big = Rect { width: chars * w, ..area };
            let text = BigText::builder().pixel_size(px).style(style).lines(vec![Line::from(figure.clone())]).build();
            f.render_widget(text, big);
            Rect { x: area.x + big.width + 2, width: area.width - big.width - 2, ..area }
        }
        None => area,
    };
    let room = words_area.width as usize;
    let unit = match m.channel.unit {
        Unit::Bytes => t(l, "unit_bytes"),
        Unit::Messages => t(l, "unit_messages"),
        Unit::Slots => t(l, "unit_slots"),
    };
    let mut lines: Vec<(u8, Line<'static>)> = Vec::new();
    let mut head = vec![Item::text(0, t(l, title_key(m.kind)).to_string(), th.title())];
    if size.is_none() {
        head.push(Item::text(0, figure, style));
    }
    head.push(Item::text(1, unit.to_string(), th.label()));
    lines.push((0, fit::row(head, "  ", room, view)));
    if let Some(p) = m.processes.iter().min_by_key(|p| loudness(p.party(false))) {
        let party = widgets::party_span(p, view, false);
        let forms = vec![
            Line::from(vec![Span::styled(format!("{}: ", widgets::role_name(&p.role, l)), th.label()), party.clone()]),
            Line::from(party),
        ];
        if let Some(line) = fit::first_fit_line(forms, room) {
            lines.push((0, line));
        }
    }
    let knob = |key: &str| m.knobs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let mut rates = Vec::new();
    for (key, words) in [("producer.rate", "producer"), ("consumer.rate", "consumer")] {
        if let Some(v) = knob(key) {
            let v = match v.as_str() {
                "0" => format!("0 ({})", t(l, "stalled")),
                "max" => t(l, "rate_max").to_string(),
                v => format!("{v}/s"),
            };
            rates.push(Item::new(
                1,
                vec![Span::styled(format!("{} ", t(l, words)), th.label()), Span::styled(v, th.value())],
            ));
        }
    }
    if !rates.is_empty() {
        lines.push((1, fit::row(rates, " · ", room, view)));
    }
    lines.push((2, widgets::integrity_line(&m.integrity, view)));
    let lines = fit::column(lines, words_area.height as usize, room, view);
    fit::draw(f, words_area, lines);
}

/// The lesson pane: what is happening now, then the mechanism's lesson
/// text; it scrolls (`↑` `↓`) and says where it is when it does not fit.
fn render_lesson(f: &mut Frame, area: Rect, snap: &Snapshot, m: &MechanismSnapshot, view: &View) {
    let th = view.theme;
    let l = view.lang;
    // Wrapped here by display width (see widgets::wrap_words), not by
    // ratatui, so Korean never runs over the border.
    let width = area.width.saturating_sub(2) as usize;
    let lines = lesson_lines(snap, m, width, view);
    let room = area.height.saturating_sub(2) as usize;
    let top = view.lesson_scroll.min(lines.len().saturating_sub(room));
    let mut title = vec![Item::text(0, format!(" {} ", t(l, "lesson")), th.title())];
    if lines.len() > room {
        let pos = format!(" ↑↓ {}-{}/{} ", top + 1, (top + room).min(lines.len()), lines.len());
        title.push(Item::text(1, pos, th.dim()));
    }
    let block =
        Boxed::new().border_style(th.border()).title(fit::row(title, "", area.width.saturating_sub(2) as usize, view));
    let shown: Vec<Line> = lines.into_iter().skip(top).take(room).collect();
    let inner = block.inner(area);
    f.render_widget(block, area);
    fit::draw(f, inner, shown);
}

/// Every line of the lesson pane at `width` columns.
fn lesson_lines(snap: &Snapshot, m: &MechanismSnapshot, width: usize, view: &View) -> Vec<Line<'static>> {
    let th = view.theme;
    let l = view.lang;
    let mut lines: Vec<Line<'static>> = Vec::new();
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
    lines
}

/// Every process's recorded calls on one time line, newest last, `scroll`
/// lines back from the newest. A line too wide loses its time, then the
/// call goes on the next lines, broken between words (never in one).
fn render_event_log(f: &mut Frame, area: Rect, m: &MechanismSnapshot, scroll: usize, view: &View) {
    let th = view.theme;
    let room = area.width.saturating_sub(2) as usize;
    let title = fit::first_fit(&[t(view.lang, "events"), t(view.lang, "events_short")], room.saturating_sub(2));
    let mut block = Boxed::new().border_style(th.border());
    if let Some(title) = title {
        block = block.title(Span::styled(format!(" {title} "), th.title()));
    }
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
    let role = |r: &str| widgets::role_name(r, view.lang);
    let role_w = m.processes.iter().map(|p| fit::width(&role(&p.role))).max().unwrap_or(8);
    let rows = inner.height as usize;
    let width = inner.width as usize;
    // Enough of the newest events to fill the rows (each takes one or more).
    let wanted = rows + scroll;
    let mut lines: Vec<Line> = Vec::new();
    let mut lens: Vec<usize> = Vec::new();
    for (t_ms, _, who, text) in events.iter().rev() {
        let time = Span::styled(format!("{:>7.3} ", *t_ms as f64 / 1000.0), th.dim());
        let who = role(who);
        let role = Span::styled(format!("{} ", fit::pad_whole(&who, role_w).unwrap_or(who)), th.label());
        let text = widgets::call_text(text, view.lang);
        let text = text.as_str();
        let call = Span::styled(text.to_string(), th.text());
        let whole = Line::from(vec![time, role.clone(), call.clone()]);
        let no_time = Line::from(vec![role.clone(), call]);
        let group = match fit::first_fit_line(vec![whole, no_time], width) {
            Some(line) => vec![line],
            None => {
                let indent = fit::width(&role.content);
                let parts = widgets::wrap_words(text, width.saturating_sub(indent).max(8));
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let lead = if i == 0 { role.clone() } else { Span::raw(" ".repeat(indent)) };
                        Line::from(vec![lead, Span::styled(p, th.text())])
                    })
                    .collect()
            }
        };
        // Where each event starts, counted from the end.
        lens.push(group.len());
        lines.splice(0..0, group);
        if lines.len() >= wanted {
            break;
        }
    }
    let end = lines.len().saturating_sub(scroll.min(lines.len().saturating_sub(rows)));
    let mut start = end.saturating_sub(rows);
    // Never the tail of an event whose start is off the top.
    let mut at = lines.len();
    for len in &lens {
        at -= len;
        if at <= start {
            if at < start {
                start = at + len;
            }
            break;
        }
    }
    fit::draw_lines(f, inner, &lines[start..end.max(start)]);
}

/// Every key, in the reader's language; a description too long for the
/// box continues on the next line (never cut).
fn render_help(f: &mut Frame, area: Rect, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let focus = format!("tab / 1-{}", PANELS.len());
    // (key, words, shorter words for a small screen)
    let rows: [(&str, &'static str, Option<&'static str>); 22] = [
        ("q", "key_quit", None),
        ("space", "key_pause", None),
        ("+ / -", "key_prate_one", None),
        ("< / >", "key_crate_one", None),
        ("c", "key_stall", Some("key_stall_short")),
        (t(l, "helpkey_alt"), "key_all", None),
        ("k", "key_kill", None),
        ("r", "key_restart", None),
        (focus.as_str(), "key_focus", None),
        ("enter", "key_enter", None),
        // `v` shares the row: the help fits 80×24.
        ("m / M, v", "key_mark_costs", Some("key_mark_costs_short")),
        ("↑ / ↓", "key_lesson_scroll", None),
        ("PgUp/PgDn", "key_scroll", None),
        ("s / n / N", "key_step", Some("key_step_short")),
        ("L", "key_picker", Some("key_picker_short")),
        ("→ / ←", "key_forward", None),
        ("esc", "key_esc", None),
        ("l", "key_lang", None),
        ("t", "key_theme", None),
        ("? / h", "key_help", None),
        ("C-c / C-l", "key_ctrl", None),
        (t(l, "helpkey_click"), "key_click", None),
    ];
    let w = 96.min(area.width.saturating_sub(2));
    let key_w = 11;
    let text_w = (w as usize).saturating_sub(2 + key_w + 1).max(10);
    let room = area.height.saturating_sub(2) as usize;
    let layout = |short: bool| -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        for (k, long, brief) in &rows {
            let words = t(l, if short { brief.unwrap_or(long) } else { long });
            for (j, part) in widgets::wrap_words(words, text_w).into_iter().enumerate() {
                let k = if j == 0 { k } else { "" };
                lines.push(Line::from(vec![
                    Span::styled(format!("{k:>9}  "), th.value()),
                    Span::styled(part, th.label()),
                ]));
            }
        }
        lines
    };
    // The shorter words when the longer do not fit the screen.
    let long = layout(false);
    let lines = if long.len() <= room { long } else { layout(true) };
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    f.render_widget(Clear, r);
    let block = Boxed::new()
        .border_style(th.selected_border())
        .title(Span::styled(format!(" {} ", t(l, "help_title")), th.title()));
    let inner = block.inner(r);
    f.render_widget(block, r);
    fit::draw(f, inner, lines);
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
    buffer_text(term.backend().buffer())
}

/// A drawn buffer as plain text lines (trailing spaces trimmed); a wide
/// (Korean) character is written once, not once per cell.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in 0..buf.area.width {
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

    fn alpc_snap() -> Snapshot {
        serde_json::from_str(include_str!("../../tests/fixtures/alpc-stalled.json")).expect("fixture")
    }

    fn bar(step: usize, total: usize, over: bool) -> LessonBar {
        LessonBar {
            title: "An ordinary pipe fills up, and the writer blocks".into(),
            step,
            total,
            caption: "Stall the consumer (consumer.rate=0). Watch the buffer fill: nobody takes the bytes out. \
                      The kernel buffer of 65536 bytes fills, and write() sleeps."
                .into(),
            checks: vec![
                ("pipe/channel/depth > 12000".into(), true),
                ("pipe/processes/producer/op == write()".into(), false),
            ],
            over,
            show: Vec::new(),
        }
    }

    /// The zoomed panel keeps the rows it needs; the rest goes below it,
    /// and the lesson pane never gets less than its minimum.
    #[test]
    fn focus_layout_gives_the_panel_its_rows_and_the_lesson_the_rest() {
        let area = Rect::new(0, 1, 160, 43);
        let a = focus_layout(area, 20, None, 0, false);
        assert_eq!(a.panel, Rect::new(0, 1, 160, 20));
        assert_eq!(a.headline.map(|r| r.height), Some(HEADLINE_ROWS));
        assert_eq!(a.lesson.height, 43 - 20 - HEADLINE_ROWS);
        assert_eq!(a.lesson.width, 80);
        assert!(a.log.is_some());
        // Not a fixed share: a panel that needs 16 rows gets 16.
        assert_eq!(focus_layout(area, 16, None, 0, false).panel.height, 16);
        // Every size, every need: nothing overlaps, nothing is lost, the
        // lesson keeps PANE_MIN rows and the panel PANEL_MIN.
        for h in BODY_MIN..60 {
            for w in [80, 100, 120, 160, 200] {
                for need in [0, 8, 16, 30, 80] {
                    for (extra, measured) in [(None, 0), (Some(12), 0), (None, 14), (Some(12), 20)] {
                        for projector in [false, true] {
                            let area = Rect::new(0, 1, w, h);
                            let a = focus_layout(area, need, extra, measured, projector);
                            assert!(a.measured.is_none_or(|r| r.height >= MEASURED_MIN && r.height <= measured));
                            let stacked = a.panel.height
                                + a.extra.map_or(0, |r| r.height)
                                + a.measured.map_or(0, |r| r.height)
                                + a.headline.map_or(0, |r| r.height)
                                + a.lesson.height
                                + a.log.filter(|l| l.x == a.lesson.x).map_or(0, |r| r.height);
                            assert_eq!(stacked, h, "{w}x{h} need {need} extra {extra:?}: {a:?}");
                            assert!(a.lesson.height >= PANE_MIN, "{w}x{h} need {need}: {a:?}");
                            assert!(a.panel.height >= PANEL_MIN, "{w}x{h} need {need}: {a:?}");
                            assert!(a.panel.height >= need.min(h - PANE_MIN), "{w}x{h} need {need}: {a:?}");
                            if let Some(log) = a.log {
                                assert!(log.height >= PANE_MIN && log.width >= 40, "{a:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// At 80×24 with a lesson running, the lesson bar and the lesson pane
    /// keep rows of text: the event log goes first.
    #[test]
    fn at_80x24_a_lesson_keeps_its_bar_and_pane() {
        let view = View { lesson: Some(bar(2, 5, false)), focused: true, ..View::default() };
        let sc = screen(Rect::new(0, 0, 80, 24), &view);
        let b = sc.bar.unwrap();
        assert!(b.height >= 4, "{sc:?}");
        assert!(sc.body.height >= BODY_MIN, "{sc:?}");
        let a = focus_layout(sc.body, 16, Some(12), 12, false);
        assert!(a.lesson.height >= PANE_MIN && a.log.is_none() && a.extra.is_none(), "{a:?}");
        // Drawn: the caption and the pane's words are there.
        let text = render_text(&alpc_snap(), &view, 80, 24);
        assert!(text.contains("Stall the consumer"), "{text}");
        assert!(text.contains("▸"), "the lesson pane shows what happens now:\n{text}");
        assert!(!text.contains("events (system calls"), "the log goes first:\n{text}");
    }

    /// Two or three panels compared at 160×45 each get the full diagram;
    /// the grid of seven keeps three columns.
    #[test]
    fn a_comparison_gives_each_panel_its_full_diagram() {
        let body = Rect::new(0, 1, 160, 43);
        for n in [2, 3] {
            let cells = grid_cells(body, n);
            assert_eq!(cells.len(), n);
            assert!(cells.iter().all(roomy_cell), "{n}: {cells:?}");
            let area: u32 = cells.iter().map(|r| r.width as u32 * r.height as u32).sum();
            assert_eq!(area, 160 * 43, "cells cover the body");
        }
        assert_eq!(grid_cells(body, 3)[2].width, 160, "two over one");
        let seven = grid_cells(body, 7);
        assert_eq!(seven[0].width, 53);
        assert_eq!(seven[6].width, 160);
        // Too small for full diagrams: the plain grid.
        assert_eq!(grid_cells(Rect::new(0, 1, 100, 28), 2)[0].width, 50);
        // Marks pick the panels shown.
        let mut snap = alpc_snap();
        let mut m2 = snap.mechanisms[0].clone();
        m2.kind = Kind::Pipe;
        snap.mechanisms.insert(0, m2.clone());
        m2.kind = Kind::Shm;
        snap.mechanisms.insert(1, m2);
        let mut view = View { marked: vec![Kind::Alpc], ..View::default() };
        assert_eq!(shown(&snap, &view), vec![0, 1, 2]);
        view.marked.push(Kind::Pipe);
        assert_eq!(shown(&snap, &view), vec![0, 2]);
        assert_eq!(panel_at(Rect::new(0, 0, 160, 45), &snap, &view, 100, 10), Some(2));
    }

    /// The lesson bar says where the lesson is: next step, last step,
    /// over; never `→ next step` on the last one.
    #[test]
    fn the_lesson_bar_says_when_the_lesson_is_over() {
        let snap = alpc_snap();
        for (b, want) in
            [(bar(2, 5, false), "→ next step"), (bar(5, 5, false), "last step"), (bar(5, 5, true), "lesson over")]
        {
            let last = b.step == b.total;
            let view = View { lesson: Some(b), ..View::default() };
            let text = render_text(&snap, &view, 120, 35);
            assert!(text.contains(want), "{want}:\n{text}");
            assert!(!last || !text.contains("next step"), "{text}");
        }
    }

    /// At 80 columns the footer always ends in `? help`, in both
    /// languages, with or without a message.
    #[test]
    fn the_footer_never_hides_help() {
        let snap = alpc_snap();
        for lang in [Lang::En, Lang::Ko] {
            for status in [None, Some("pipe: producer.rate = 2000 (this panel only; Alt+key: every panel) and then some more words to run long".to_string())] {
                let view = View { lang, status, ..View::default() };
                let text = render_text(&snap, &view, 80, 24);
                let foot = text.lines().nth(23).unwrap();
                assert!(foot.ends_with(&format!("? {}", t(lang, "foot_help"))), "{foot:?}");
            }
        }
    }

    /// The help lists every key the input thread knows.
    #[test]
    fn help_lists_every_key() {
        let view = View { help: true, ..View::default() };
        let text = render_text(&alpc_snap(), &view, 120, 35);
        for k in [
            "q",
            "space",
            "+ / -",
            "< / >",
            "c",
            "Alt+key",
            "k",
            "r",
            "tab / 1-7",
            "enter",
            "m / M, v",
            "↑ / ↓",
            "PgUp/PgDn",
            "s / n / N",
            "L",
            "→ / ←",
            "esc",
            "l",
            "t",
            "? / h",
            "C-c / C-l",
            "click",
        ] {
            assert!(
                text.lines().any(|l| l.contains(&format!("│{k:>9}  ")) || l.contains(&format!("{k:>9}  "))),
                "{k}:\n{text}"
            );
        }
    }

    /// A lesson pane longer than its rows scrolls and says where it is.
    #[test]
    fn the_lesson_pane_scrolls() {
        let snap = alpc_snap();
        let area = Rect::new(0, 0, 100, 30);
        let view = View { focused: true, ..View::default() };
        let max = lesson_scroll_max(area, &snap, &view);
        assert!(max > 0);
        let top = render_text(&snap, &view, 100, 30);
        let scrolled = render_text(&snap, &View { lesson_scroll: max, ..view.clone() }, 100, 30);
        assert_ne!(top, scrolled);
        assert!(top.contains("↑↓ 1-"), "{top}");
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
            ("design.rs", include_str!("design.rs")),
            ("fifo.rs", include_str!("fifo.rs")),
            ("fit.rs", include_str!("fit.rs")),
            ("lesson.rs", include_str!("lesson.rs")),
            ("mach.rs", include_str!("mach.rs")),
            ("mach_book.rs", include_str!("mach_book.rs")),
            ("measured.rs", include_str!("measured.rs")),
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
