//! Per-panel render cache. A panel draws from its own snapshot, its area,
//! its number, whether it is selected, the language and the theme — and
//! nothing else (the panels read only `view.lang` and `view.theme`). When
//! all of these are what they were at the last frame, its cells are copied
//! from that frame instead of drawn again: a redraw for a key press, a
//! paused run, a stalled or finished mechanism cost a copy, not a layout.
//! The frame is the same either way (`render` stays a pure function).

use std::cell::RefCell;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::Frame;

use crate::i18n::Lang;
use crate::snapshot::MechanismSnapshot;
use crate::ui::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    area: Rect,
    n: usize,
    selected: bool,
    lang: Lang,
    theme: Theme,
}

struct Drawn {
    key: Key,
    m: MechanismSnapshot,
    cells: Buffer,
}

/// Panels kept: one per panel on screen (and a few more for a zoom).
const KEEP: usize = 16;

thread_local! {
    static DRAWN: RefCell<Vec<Drawn>> = const { RefCell::new(Vec::new()) };
    static ROWS: RefCell<Vec<(Key, MechanismSnapshot, u16)>> = const { RefCell::new(Vec::new()) };
    static STATS: RefCell<(u64, u64)> = const { RefCell::new((0, 0)) };
}

/// Draw a panel with `draw`, or copy what it drew last time from the same
/// inputs. `area` must be inside the frame.
#[allow(clippy::too_many_arguments)]
pub fn panel(
    f: &mut Frame,
    area: Rect,
    m: &MechanismSnapshot,
    n: usize,
    selected: bool,
    lang: Lang,
    theme: Theme,
    draw: impl FnOnce(&mut Frame),
) {
    let key = Key { area, n, selected, lang, theme };
    let hit = DRAWN.with(|d| {
        let d = d.borrow();
        let Some(e) = d.iter().find(|e| e.key == key && e.m == *m) else { return false };
        let buf = f.buffer_mut();
        for y in area.top()..area.bottom() {
            for x in area.left()..area.right() {
                buf[(x, y)].clone_from(&e.cells[(x, y)]);
            }
        }
        true
    });
    STATS.with(|s| {
        let mut s = s.borrow_mut();
        if hit {
            s.0 += 1
        } else {
            s.1 += 1
        }
    });
    if hit {
        return;
    }
    draw(f);
    let mut cells = Buffer::empty(area);
    let buf = f.buffer_mut();
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            cells[(x, y)].clone_from(&buf[(x, y)]);
        }
    }
    DRAWN.with(|d| {
        let mut d = d.borrow_mut();
        // One entry per place on screen: the new drawing replaces the old.
        d.retain(|e| e.key.area != area);
        if d.len() >= KEEP {
            d.remove(0);
        }
        d.push(Drawn { key, m: m.clone(), cells });
    });
}

/// The rows a panel needs at `width` × `height` (see `ui::panel_rows`),
/// measured again only when its inputs changed.
pub fn rows(
    m: &MechanismSnapshot,
    n: usize,
    width: u16,
    height: u16,
    lang: Lang,
    theme: Theme,
    measure: impl FnOnce() -> u16,
) -> u16 {
    let key = Key { area: Rect::new(0, 0, width, height), n, selected: true, lang, theme };
    if let Some(r) = ROWS.with(|r| r.borrow().iter().find(|(k, mm, _)| *k == key && mm == m).map(|e| e.2)) {
        return r;
    }
    let rows = measure();
    ROWS.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|(k, mm, _)| !(k.n == n && k.area == key.area && mm.kind == m.kind));
        if r.len() >= KEEP {
            r.remove(0);
        }
        r.push((key, m.clone(), rows));
    });
    rows
}

/// (panels copied, panels drawn) on this thread so far.
pub fn stats() -> (u64, u64) {
    STATS.with(|s| *s.borrow())
}

/// Forget every cached panel (a test or a bench starting cold).
pub fn clear() {
    DRAWN.with(|d| d.borrow_mut().clear());
    ROWS.with(|r| r.borrow_mut().clear());
}
