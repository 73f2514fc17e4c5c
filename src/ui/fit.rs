//! Text that fits whole or is left out. A projector must never show
//! `655` for `65536` or `anon_pipe_wri`: nothing here cuts a number or a
//! word. A layout offers forms (long to short) or items by priority, and
//! what does not fit is dropped whole and counted (`…3 more`).
//!
//! Every panel hands ratatui only lines these functions have fitted, so no
//! `Paragraph` ever truncates.

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::View;
use crate::i18n::tf;

/// Columns a line takes on screen (Korean syllables take two).
pub fn line_width(line: &Line) -> usize {
    line.spans.iter().map(|s| unicode_width::UnicodeWidthStr::width(s.content.as_ref())).sum()
}

/// Columns `s` takes on screen.
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// The first form (longest first) that fits in `room` columns.
pub fn first_fit<'a>(forms: &[&'a str], room: usize) -> Option<&'a str> {
    forms.iter().copied().find(|f| width(f) <= room)
}

/// The first line (longest first) that fits in `room` columns.
pub fn first_fit_line<'a>(forms: Vec<Line<'a>>, room: usize) -> Option<Line<'a>> {
    forms.into_iter().find(|l| line_width(l) <= room)
}

/// `s` padded with spaces to `w` columns, or `None` when it is wider: the
/// caller picks a shorter form or leaves the item out.
pub fn pad_whole(s: &str, w: usize) -> Option<String> {
    let used = width(s);
    (used <= w).then(|| format!("{s}{}", " ".repeat(w - used)))
}

/// One item of a row or a column: its spans and how much it matters
/// (0 = kept longest).
#[derive(Debug, Clone)]
pub struct Item {
    pub spans: Vec<Span<'static>>,
    pub priority: u8,
}

impl Item {
    pub fn new(priority: u8, spans: Vec<Span<'static>>) -> Item {
        Item { spans, priority }
    }
    pub fn text(priority: u8, text: impl Into<String>, style: Style) -> Item {
        Item { spans: vec![Span::styled(text.into(), style)], priority }
    }
    fn width(&self) -> usize {
        self.spans.iter().map(|s| width(&s.content)).sum()
    }
}

/// `…N more` in the reader's language.
pub fn more(n: usize, view: &View) -> String {
    tf(view.lang, "fit_more", &[("n", n.to_string())])
}

/// Items on one line, in their order, `sep` between them, within `room`
/// columns. When they do not all fit, the least important (highest
/// `priority`, later first among equals) are dropped whole and the line
/// ends with `…N more`.
pub fn row(items: Vec<Item>, sep: &str, room: usize, view: &View) -> Line<'static> {
    let n = items.len();
    let mut keep = vec![true; n];
    // Dropping order: highest priority number first, then from the end.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(items[i].priority), std::cmp::Reverse(i)));
    let total = |keep: &[bool]| -> usize {
        let kept: Vec<usize> = (0..n).filter(|&i| keep[i]).collect();
        let body: usize =
            kept.iter().map(|&i| items[i].width()).sum::<usize>() + width(sep) * kept.len().saturating_sub(1);
        let dropped = n - kept.len();
        body + if dropped > 0 { width(sep) + width(&more(dropped, view)) } else { 0 }
    };
    let mut next = order.into_iter();
    while total(&keep) > room {
        match next.next() {
            Some(i) => keep[i] = false,
            None => break,
        }
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    let mut spans = Vec::new();
    for (_, item) in items.into_iter().enumerate().filter(|(i, _)| keep[*i]) {
        if !spans.is_empty() {
            spans.push(Span::raw(sep.to_string()));
        }
        spans.extend(item.spans);
    }
    if dropped > 0 {
        let m = more(dropped, view);
        // Even the count may not fit in a very narrow room: then nothing.
        if width(sep) + width(&m) <= room.saturating_sub(spans.iter().map(|s| width(&s.content)).sum()) {
            if !spans.is_empty() {
                spans.push(Span::raw(sep.to_string()));
            }
            spans.push(Span::styled(m, view.theme.dim()));
        }
    }
    Line::from(spans)
}

/// Lines for `rows` rows of `room` columns: a line wider than the room is
/// dropped (never cut), then the least important lines (highest priority,
/// later first) until they fit, the last row saying `…N more`.
pub fn column(lines: Vec<(u8, Line<'static>)>, rows: usize, room: usize, view: &View) -> Vec<Line<'static>> {
    let fits: Vec<(u8, Line<'static>)> = lines.into_iter().filter(|(_, l)| line_width(l) <= room).collect();
    if fits.len() <= rows {
        return fits.into_iter().map(|(_, l)| l).collect();
    }
    let n = fits.len();
    let keep_n = rows.saturating_sub(1);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (fits[i].0, i));
    let mut keep = vec![false; n];
    for &i in order.iter().take(keep_n) {
        keep[i] = true;
    }
    let mut out: Vec<Line<'static>> =
        fits.into_iter().enumerate().filter(|(i, _)| keep[*i]).map(|(_, (_, l))| l).collect();
    let m = more(n - keep_n, view);
    if rows > 0 && width(&m) <= room {
        out.push(Line::from(Span::styled(m, view.theme.dim())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_row_drops_whole_items_and_counts_them() {
        let v = View::default();
        let items = || {
            vec![
                Item::text(0, "F_GETPIPE_SZ 65536", Style::default()),
                Item::text(2, "inode 12345", Style::default()),
                Item::text(1, "mode prw-------", Style::default()),
            ]
        };
        assert_eq!(plain(&row(items(), "  ", 80, &v)), "F_GETPIPE_SZ 65536  inode 12345  mode prw-------");
        let narrow = plain(&row(items(), "  ", 44, &v));
        assert_eq!(narrow, "F_GETPIPE_SZ 65536  mode prw-------  …1 more");
        let narrower = plain(&row(items(), "  ", 30, &v));
        assert!(narrower.starts_with("F_GETPIPE_SZ 65536  "), "{narrower}");
        assert!(narrower.contains('2'), "{narrower}");
        for w in 0..60 {
            let l = row(items(), "  ", w, &v);
            assert!(line_width(&l) <= w, "{w}: {}", plain(&l));
        }
    }

    #[test]
    fn a_column_keeps_the_important_lines() {
        let v = View::default();
        let lines = vec![
            (1, Line::from("b")),
            (0, Line::from("a")),
            (2, Line::from("c")),
            (0, Line::from("far too wide to fit")),
        ];
        let out: Vec<String> = column(lines.clone(), 2, 10, &v).iter().map(plain).collect();
        assert_eq!(out[0], "a");
        assert!(out[1].contains('2'), "{out:?}");
        let all: Vec<String> = column(lines, 5, 10, &v).iter().map(plain).collect();
        assert_eq!(all, ["b", "a", "c"]);
    }

    #[test]
    fn forms_pick_the_longest_that_fits() {
        assert_eq!(first_fit(&["connection port", "conn. port"], 12), Some("conn. port"));
        assert_eq!(first_fit(&["connection port"], 3), None);
        assert_eq!(pad_whole("65536", 3), None);
        assert_eq!(pad_whole("655", 5).as_deref(), Some("655  "));
    }
}
