//! `ipcscope render`: one recorded instant drawn headless, as the text
//! `snapshot --format text` prints or as an SVG picture for slides.
//!
//! The frame is the TUI's own (`ui::render` on an off-screen buffer) for
//! the snapshot shown at `--at` on the replay's timeline, marked REPLAY
//! like every recorded frame. Needs no Linux IPC, so pictures can be made
//! anywhere from a recording made once.

pub mod svg;

use std::path::Path;

use ratatui::buffer::Buffer;

use crate::model::Kind;
use crate::record::Recording;
use crate::snapshot::Snapshot;
use crate::ui::{self, View};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Svg,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct Request {
    /// Seconds on the recording's timeline (as replay shows it); `None`:
    /// its last instant.
    pub at: Option<f64>,
    pub width: u16,
    pub height: u16,
    pub format: Format,
    /// The panel zoomed in, numbered from 1 as on screen.
    pub focus: Option<usize>,
    /// The mechanisms drawn, in the recording's order (the others are
    /// left out, as `--mechanisms` leaves them out of a live run).
    pub kinds: Vec<Kind>,
    pub view: View,
}

/// A failure to render: bad input (exit 2) or anything else (exit 1).
#[derive(Debug)]
pub enum Error {
    Input(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        Error::Other(e)
    }
}

fn input(msg: impl Into<String>) -> Error {
    Error::Input(msg.into())
}

/// The snapshot at `at` seconds of the recording at `path` (the last one
/// if `at` is `None`), marked as replayed.
pub fn snapshot_at(path: &Path, at: Option<f64>) -> Result<Snapshot, Error> {
    let mut rec = Recording::open(path).map_err(|e| input(format!("{e:#}")))?;
    let (first, last) = match (rec.blocks().first(), rec.blocks().last()) {
        (Some(f), Some(l)) => (f.first_pt, l.last_pt),
        _ => return Err(input(format!("{}: no snapshots", path.display()))),
    };
    let pt = match at {
        None => last,
        Some(s) if !s.is_finite() || s < 0.0 => {
            return Err(input(format!("--at must be a number of seconds ≥ 0, got {s}")))
        }
        Some(s) if s * 1000.0 > last as f64 => {
            return Err(input(format!(
                "--at {s} is past the end of {} (it covers {:.1} s to {:.1} s)",
                path.display(),
                first as f64 / 1000.0,
                last as f64 / 1000.0
            )))
        }
        Some(s) => (s * 1000.0).round() as u64,
    };
    let block = rec.block_at(pt);
    let frames = rec.read_block(block).map_err(|e| input(format!("{e:#}")))?;
    // The last snapshot at or before `pt`; the first if none is.
    let i = frames.partition_point(|f| f.0 <= pt).saturating_sub(1);
    let mut snap = frames.into_iter().nth(i).map(|f| f.1).ok_or_else(|| input("an empty block"))?;
    snap.run.replay = true;
    Ok(snap)
}

/// The frame as ratatui draws it on a terminal of `width` × `height`.
pub fn buffer(snap: &Snapshot, view: &View, width: u16, height: u16) -> Buffer {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut term = match ratatui::Terminal::new(backend) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    let _ = term.draw(|f| ui::render(f, snap, view));
    term.backend().buffer().clone()
}

/// Draw the request from the recording at `path`: the text or SVG document.
pub fn render(path: &Path, req: &Request) -> Result<String, Error> {
    draw(&snapshot_at(path, req.at)?, req)
}

/// Draw one snapshot as the request asks (`req.at` is not looked at).
pub fn draw(snap: &Snapshot, req: &Request) -> Result<String, Error> {
    let mut snap = snap.clone();
    snap.mechanisms.retain(|m| req.kinds.contains(&m.kind));
    if snap.mechanisms.is_empty() {
        let names: Vec<&str> = req.kinds.iter().map(|k| k.name()).collect();
        return Err(input(format!("the recording holds none of the mechanisms asked for ({})", names.join(","))));
    }
    let mut view = req.view.clone();
    if let Some(n) = req.focus {
        let count = snap.mechanisms.len();
        if n == 0 || n > count {
            return Err(input(format!("--focus {n}: the frame has panels 1 to {count}")));
        }
        view.selected = n - 1;
        view.focused = true;
    }
    Ok(match req.format {
        Format::Text => ui::render_text(&snap, &view, req.width, req.height),
        Format::Svg => svg::svg(&buffer(&snap, &view, req.width, req.height), view.theme),
    })
}
