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

pub mod pipe;
pub mod theme;
pub mod widgets;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::i18n::{t, Lang};
use crate::mechanisms::Kind;
use crate::snapshot::{MechanismSnapshot, Snapshot};
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
}

/// Draws one mechanism's panel. One per mechanism, registered here.
type PanelFn = fn(&mut Frame, Rect, &MechanismSnapshot, usize, bool, &View);

fn panel_for(kind: Kind) -> Option<PanelFn> {
    match kind {
        Kind::Pipe => Some(pipe::render),
        _ => None,
    }
}

pub fn render(f: &mut Frame, snap: &Snapshot, view: &View) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(f, area, view);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(f, header, snap, view);
    // A single mechanism has the room to show its event log too.
    if view.focused || snap.mechanisms.len() == 1 {
        render_focus(f, body, snap, view);
    } else {
        render_grid(f, body, snap, view);
    }
    render_footer(f, footer, view);
    if view.help {
        render_help(f, area, view);
    }
}

fn too_small(f: &mut Frame, area: Rect, view: &View) {
    let text = t(view.lang, "too_small")
        .replace("{w}", &area.width.to_string())
        .replace("{h}", &area.height.to_string());
    let y = area.height / 2;
    let p = Paragraph::new(text).wrap(Wrap { trim: true });
    f.render_widget(
        p,
        Rect {
            x: 0,
            y: y.saturating_sub(1),
            width: area.width,
            height: area.height.min(3),
        },
    );
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
        Span::styled(
            widgets::pid(snap.run.pid).trim_start().to_string(),
            th.value(),
        ),
        Span::styled(format!("  {} ", t(l, "sampling")), th.label()),
        Span::styled(format!("{} Hz", snap.run.hz), th.value()),
        Span::styled(format!("  t={:.1}s  ", snap.t_ms as f64 / 1000.0), th.dim()),
        Span::styled(format!("● {mode}"), style.add_modifier(Modifier::BOLD)),
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn render_footer(f: &mut Frame, area: Rect, view: &View) {
    let th = view.theme;
    let text = match &view.status {
        Some(s) => Line::from(Span::styled(s.clone(), th.warn())),
        None => Line::from(Span::styled(t(view.lang, "footer"), th.dim())),
    };
    f.render_widget(Paragraph::new(text), area);
}

/// How many columns the grid gets: panels want ~40 columns at least and
/// are wider than tall, so at most three side by side.
pub fn grid_columns(width: u16, n: usize) -> usize {
    ((width / 40) as usize).clamp(1, 3).min(n.max(1))
}

fn render_grid(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let n = snap.mechanisms.len();
    if n == 0 {
        return;
    }
    let cols = grid_columns(area.width, n);
    let rows = n.div_ceil(cols);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(area);
    for (r, row_area) in row_areas.iter().enumerate() {
        let in_row = (n - r * cols).min(cols);
        let cells =
            Layout::horizontal(vec![Constraint::Ratio(1, in_row as u32); in_row]).split(*row_area);
        for (c, cell) in cells.iter().enumerate() {
            let i = r * cols + c;
            render_panel(f, *cell, &snap.mechanisms[i], i, view);
        }
    }
}

fn render_panel(f: &mut Frame, area: Rect, m: &MechanismSnapshot, i: usize, view: &View) {
    match panel_for(m.kind) {
        Some(draw) => draw(f, area, m, i + 1, i == view.selected, view),
        None => {
            let b = Block::default().borders(Borders::ALL).title(format!(
                " {} {} ",
                i + 1,
                m.kind.name()
            ));
            f.render_widget(b, area);
        }
    }
}

/// One panel large, with every process's recent system calls beside it.
fn render_focus(f: &mut Frame, area: Rect, snap: &Snapshot, view: &View) {
    let Some(m) = snap
        .mechanisms
        .get(view.selected.min(snap.mechanisms.len().saturating_sub(1)))
    else {
        return;
    };
    let i = view.selected.min(snap.mechanisms.len() - 1);
    // The diagram keeps what it needs; a tall screen gives the rest to the log.
    let panel_h = (area.height * 55 / 100).max(16).min(area.height);
    let [panel, log] =
        Layout::vertical([Constraint::Length(panel_h), Constraint::Fill(1)]).areas(area);
    render_panel(f, panel, m, i, view);
    let th = view.theme;
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" {} ", t(view.lang, "events")),
        th.title(),
    ));
    let inner = block.inner(log);
    f.render_widget(block, log);
    let cols = Layout::horizontal(vec![
        Constraint::Ratio(1, m.processes.len().max(1) as u32);
        m.processes.len().max(1)
    ])
    .split(inner);
    for (p, col) in m.processes.iter().zip(cols.iter()) {
        let mut lines = vec![Line::from(Span::styled(
            format!("{} {}", p.role, widgets::pid(p.pid).trim_start()),
            th.label(),
        ))];
        let room = col.height.saturating_sub(1) as usize;
        let skip = p.events.len().saturating_sub(room);
        lines.extend(
            p.events
                .iter()
                .skip(skip)
                .map(|e| Line::from(e.text.clone())),
        );
        f.render_widget(Paragraph::new(lines), *col);
    }
}

fn render_help(f: &mut Frame, area: Rect, view: &View) {
    let l = view.lang;
    let th = view.theme;
    let rows = [
        ("q", "key_quit"),
        ("space", "key_pause"),
        ("+ / -", "key_prate"),
        ("< / >", "key_crate"),
        ("k", "key_kill"),
        ("r", "key_restart"),
        ("tab / 1-7", "key_focus"),
        ("enter", "key_enter"),
        ("l", "key_lang"),
        ("?", "key_help"),
    ];
    let w = 74.min(area.width.saturating_sub(4));
    let h = (rows.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    let lines: Vec<Line> = rows
        .iter()
        .map(|(k, key)| {
            Line::from(vec![
                Span::styled(format!(" {k:>9}  "), th.value()),
                Span::raw(t(l, key)),
            ])
        })
        .collect();
    let block = Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" {} ", t(l, "help_title")),
        th.title(),
    ));
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
