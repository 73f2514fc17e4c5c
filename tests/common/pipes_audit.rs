//! For the pipe, FIFO and shared-memory render tests: one panel drawn
//! alone in a rectangle (its diagram at one level of detail, whatever the
//! screen's layout), and a check that a frame cuts no number.
#![allow(dead_code)]

use ipcscope::i18n::Lang;
use ipcscope::snapshot::{MechanismSnapshot, Snapshot};
use ipcscope::ui::{render_text, Theme, View, PANELS};

/// The panel of `m` drawn alone in `w`×`h`, as text.
pub fn panel_text(m: &MechanismSnapshot, view: &View, w: u16, h: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut term = ratatui::Terminal::new(backend).expect("test backend");
    let panel = PANELS.iter().find(|p| p.kind == m.kind).expect("a panel for the kind");
    term.draw(|f| (panel.draw)(f, f.area(), m, 1, true, view)).expect("draw");
    ipcscope::ui::buffer_text(term.backend().buffer())
}

/// The view of one frame: language, theme, zoomed or the grid.
pub fn view(lang: Lang, theme: Theme, focused: bool) -> View {
    View { lang, theme, focused, ..View::default() }
}

/// The terminal sizes a class uses.
pub const SIZES: [(u16, u16); 5] = [(80, 24), (100, 30), (120, 35), (160, 45), (200, 60)];

/// Every number in the snapshot (as JSON writes it), whole.
fn known_numbers(snap: &Snapshot) -> Vec<String> {
    let json = serde_json::to_string(snap).expect("json");
    let mut out: Vec<String> =
        json.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(String::from).collect();
    out.sort();
    out.dedup();
    out
}

/// Digit runs in `frame` that are a number of the snapshot with its end
/// cut off: a run of at least two digits that a longer known number
/// starts with, and that is not itself known, right before a border or
/// the end of its line (where a cut happens).
pub fn cut_numbers(frame: &str, snap: &Snapshot) -> Vec<String> {
    let known = known_numbers(snap);
    let mut found = Vec::new();
    for line in frame.lines() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_ascii_digit() || (i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '.')) {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            let next = chars.get(i).copied();
            let at_edge = next.is_none_or(|c| "│┃║╗╝┐┘╮╯─━═…".contains(c));
            if run.len() >= 2
                && at_edge
                && !known.contains(&run)
                && known.iter().any(|k| k.len() > run.len() && k.starts_with(&run))
            {
                found.push(format!("{run:?} in {line:?}"));
            }
        }
    }
    found
}

/// Draws the panel of `snap`'s first mechanism alone in rectangles of
/// many sizes (tiny to zoomed, odd ones too), in both languages, with one
/// and two rows of gauge: it must not panic, and must cut no number.
pub fn assert_panel_nothing_cut(snap: &Snapshot) {
    let m = &snap.mechanisms[0];
    let mut bad = Vec::new();
    let widths = [2u16, 12, 30, 38, 40, 45, 48, 51, 53, 60, 64, 70, 78, 100, 158];
    for w in widths {
        for h in [2u16, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 20, 23] {
            for lang in [Lang::En, Lang::Ko] {
                // The themes differ in geometry only by the gauge's rows.
                for theme in [Theme::Default, Theme::Projector] {
                    let frame = panel_text(m, &view(lang, theme, false), w, h);
                    for c in cut_numbers(&frame, snap) {
                        bad.push(format!("{w}x{h} {lang:?} {theme:?}: {c}"));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "cut numbers:\n{}", bad.join("\n"));
}

/// Draws `snap` in the grid (`n` copies of its panel) and zoomed, at every
/// class size, in both languages and every theme, and fails on a cut
/// number or a line the panel let run past its frame; then its panel
/// alone at many sizes.
pub fn assert_nothing_cut(snap: &Snapshot, n: usize) {
    assert_panel_nothing_cut(snap);
    let mut grid = snap.clone();
    grid.mechanisms = vec![snap.mechanisms[0].clone(); n];
    let mut bad = Vec::new();
    for (w, h) in SIZES {
        for lang in [Lang::En, Lang::Ko] {
            for theme in Theme::ALL {
                for (s, focused) in [(&grid, false), (snap, true)] {
                    let frame = render_text(s, &view(lang, theme, focused), w, h);
                    for c in cut_numbers(&frame, snap) {
                        bad.push(format!("{w}x{h} {lang:?} {theme:?} focused={focused}: {c}"));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "cut numbers:\n{}", bad.join("\n"));
}
