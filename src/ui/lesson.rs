//! The lesson pane of a focused panel: what the class is looking at, in
//! the textbook's terms, and sentences that point at the live figures.
//! Lesson texts are ours, one file per mechanism per language, in
//! `assets/lessons/`; `ui::PANELS` lists them with each panel and its
//! observer, so this file names no mechanism.

use crate::i18n::{t, tf, Lang};
use crate::model::snapshot::{MechanismSnapshot, Snapshot};

/// Sentences about what the snapshot shows right now: the run's state,
/// then what the panel's own observer (`observe`) sees.
pub fn observations(
    snap: &Snapshot,
    m: &MechanismSnapshot,
    lang: Lang,
    observe: Option<fn(&MechanismSnapshot, Lang) -> Vec<String>>,
) -> Vec<String> {
    let mut out = Vec::new();
    if snap.run.paused {
        out.push(t(lang, "obs_paused").to_string());
    }
    if snap.run.step_mode {
        let sent: u64 = m.processes.iter().map(|p| p.sent).sum();
        let received: u64 = m.integrity.delivered;
        out.push(tf(lang, "obs_step", &[("inflight", sent.saturating_sub(received).to_string())]));
    }
    if let Some(f) = observe {
        out.extend(f(m, lang));
    }
    out
}

/// The lesson bar's observation rows: `observed: ✓ sentence` (… while it
/// is not yet seen), re-flowed to `width` columns between words, never
/// cut, in the reader's language (the JSON paths stay in the scenario).
pub fn bar_checks(
    checks: &[(String, bool)],
    width: usize,
    view: &super::View,
) -> Vec<(u8, ratatui::text::Line<'static>)> {
    use ratatui::text::{Line, Span};
    let th = view.theme;
    let mut out = Vec::new();
    for (i, (sentence, ok)) in checks.iter().enumerate() {
        let (mark, style) = if *ok { ("✓", th.good()) } else { ("…", th.dim()) };
        let lead = if i == 0 { format!("{}: ", t(view.lang, "observed")) } else { String::new() };
        let text = format!("{lead}{mark} {sentence}");
        for row in super::widgets::wrap_words(&text, width) {
            out.push((1, Line::from(Span::styled(row, style))));
        }
    }
    out
}
