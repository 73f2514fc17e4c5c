//! Text that fits whole or is left out. A projector must never show
//! `655` for `65536` or `anon_pipe_wri`: nothing here cuts a number or a
//! word. A layout offers forms (long to short) or items by priority, and
//! what does not fit is dropped whole and counted (`…3 more`).
//!
//! Every panel draws only lines these functions have fitted, with `draw`
//! (what a `Paragraph` would draw, at a fraction of its cost), so nothing
//! is ever cut at an edge.

use ratatui::buffer::{Buffer, CellWidth};
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::Frame;

use super::View;
use crate::i18n::tf;

/// Columns a line takes on screen (Korean syllables take two).
pub fn line_width(line: &Line) -> usize {
    line.spans.iter().map(|s| width(s.content.as_ref())).sum()
}

/// Columns `s` takes on screen. Printable ASCII, most of what is measured
/// at every frame, is one column a byte without a table look-up.
pub fn width(s: &str) -> usize {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        s.len()
    } else {
        unicode_width::UnicodeWidthStr::width(s)
    }
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

/// Draws `lines` from the top of `area`, one per row, exactly as a
/// `Paragraph` without wrap or scroll would (styles patched text → line →
/// span, alignment honoured, a grapheme that would cross the right edge
/// ends the line), but without its per-frame machinery: no styling of the
/// whole area with an empty style, no list of graphemes collected per line.
/// A live frame draws every panel's text this way at 10 Hz (issue #18).
pub fn draw<'a>(f: &mut Frame, area: Rect, text: impl Into<Text<'a>>) {
    draw_lines(f, area, &text.into().lines);
}

/// [`draw`] for lines borrowed from elsewhere.
pub fn draw_lines(f: &mut Frame, area: Rect, lines: &[Line]) {
    let area = area.intersection(f.area());
    if area.is_empty() {
        return;
    }
    let buf = f.buffer_mut();
    let max = area.width;
    for (row, line) in lines.iter().take(area.height as usize).enumerate() {
        let y = area.y + row as u16;
        // The graphemes a truncating Paragraph keeps: whole ones from the
        // left while they fit; one wider than the area is skipped.
        let kept = || {
            cells(line).scan(0u16, move |used, (symbol, style, w)| {
                if w > max {
                    return Some(None);
                }
                if *used + w > max {
                    return None;
                }
                *used += w;
                Some(Some((symbol, style, w)))
            })
        };
        let x0 = match line.alignment {
            Some(a @ (Alignment::Center | Alignment::Right)) => {
                let w: u16 = kept().flatten().map(|(_, _, w)| w).sum();
                if a == Alignment::Center {
                    (max / 2).saturating_sub(w / 2)
                } else {
                    max.saturating_sub(w)
                }
            }
            _ => 0,
        };
        let mut x = x0;
        for (symbol, style, w) in kept().flatten() {
            if w == 0 {
                continue;
            }
            let symbol = if symbol.is_empty() { " " } else { symbol };
            if let Some(cell) = buf.cell_mut((area.x + x, y)) {
                cell.set_symbol(symbol).set_style(style);
            }
            x += w;
        }
    }
}

/// A line's graphemes with their styles and widths, as
/// `Line::styled_graphemes` gives them (control characters left out).
fn cells<'a>(line: &'a Line<'a>) -> impl Iterator<Item = (&'a str, Style, u16)> + 'a {
    let base = Style::default().patch(line.style);
    line.spans.iter().flat_map(move |span| span_cells(span, base))
}

/// `Buffer::set_line`, cell for cell (unit-tested against it), through
/// [`span_cells`]: the figures' canvases draw most of a frame's box-drawing
/// and arrows this way.
pub fn set_line(buf: &mut Buffer, x: u16, y: u16, line: &Line, max_width: u16) {
    let mut remaining = buf.area.right().saturating_sub(x).min(max_width);
    let mut x = x;
    for span in &line.spans {
        if remaining == 0 {
            break;
        }
        // Each span styled as set_line styles it: the line's style patched
        // with the span's (not over a default, as a Paragraph does).
        let style = line.style.patch(span.style);
        for (symbol, _, w) in span_cells(span, Style::default()) {
            if w == 0 || symbol.contains(char::is_control) {
                continue;
            }
            let Some(left) = remaining.checked_sub(w) else { break };
            remaining = left;
            // Outside the buffer (a caller's mistake) nothing is drawn,
            // where ratatui would panic.
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.set_symbol(symbol).set_style(style);
            }
            // Cells a wide grapheme covers are reset, as set_stringn does.
            for hidden in x + 1..x + w {
                if let Some(cell) = buf.cell_mut((hidden, y)) {
                    cell.reset();
                }
            }
            x += w;
        }
    }
}

/// One span's graphemes, styled over `base`, with their widths. Printable
/// ASCII, most of what a panel says, is one byte per cell. Text made only
/// of characters that never join their neighbours into one grapheme
/// (Latin-1, punctuation, arrows, box drawing, blocks, Hangul syllables…)
/// is one character per cell group, its width from the table for that one
/// character. Anything else is segmented as ratatui does.
fn span_cells<'a>(span: &'a Span<'a>, base: Style) -> SpanCells<'a> {
    let text = span.content.as_ref();
    let style = base.patch(span.style);
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        SpanCells::Ascii { text, at: 0, style }
    } else if text.chars().all(stands_alone) {
        SpanCells::Chars { text, chars: text.char_indices(), style }
    } else {
        SpanCells::Graphemes(Box::new(span.styled_graphemes(base).map(|g| (g.symbol, g.style, g.symbol.cell_width()))))
    }
}

/// A character that is a grapheme on its own whatever comes before or
/// after it, among other such characters: not a control, a combining mark,
/// a joiner, a variation selector, a Hangul jamo or an emoji piece, and
/// with one width in every context.
fn stands_alone(c: char) -> bool {
    matches!(c,
        ' '..='~'
        | '\u{A1}'..='\u{AC}' | '\u{AE}'..='\u{FF}'
        | '\u{2010}'..='\u{2027}' | '\u{2030}'..='\u{205E}'
        | '\u{2190}'..='\u{21FF}' | '\u{2200}'..='\u{22FF}'
        | '\u{2500}'..='\u{25A0}'
        | '\u{AC00}'..='\u{D7A3}')
}

enum SpanCells<'a> {
    Ascii { text: &'a str, at: usize, style: Style },
    Chars { text: &'a str, chars: std::str::CharIndices<'a>, style: Style },
    Graphemes(Box<dyn Iterator<Item = (&'a str, Style, u16)> + 'a>),
}

impl<'a> Iterator for SpanCells<'a> {
    type Item = (&'a str, Style, u16);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            SpanCells::Ascii { text, at, style } => {
                let i = *at;
                (i < text.len()).then(|| {
                    *at += 1;
                    (&text[i..i + 1], *style, 1)
                })
            }
            SpanCells::Chars { text, chars, style } => chars.next().map(|(i, c)| {
                let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0) as u16;
                (&text[i..i + c.len_utf8()], *style, w)
            }),
            SpanCells::Graphemes(g) => g.next(),
        }
    }
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

    /// `draw` puts every cell exactly where `Paragraph` would, styles
    /// included: fitted and overlong lines, wide Hangul, alignment, line
    /// and span styles, a grapheme wider than the area.
    #[test]
    fn draw_is_a_paragraph_without_its_cost() {
        use ratatui::backend::TestBackend;
        use ratatui::style::{Color, Modifier};
        use ratatui::widgets::Paragraph;
        use ratatui::Terminal;
        let lines = vec![
            Line::from(vec![Span::styled("mach_msg ", Style::new().fg(Color::Red)), Span::raw("65536")]),
            Line::from("메시지 큐가 가득 찼습니다 — MACH_SEND_TIMED_OUT 이후")
                .style(Style::new().add_modifier(Modifier::BOLD)),
            Line::from("centred").centered(),
            Line::from(vec![Span::raw("right "), Span::styled("끝", Style::new().bg(Color::Blue))]).right_aligned(),
            Line::from("a line far wider than the area it is drawn into, cut at the edge"),
            Line::from("한글이 경계를 넘는 줄입니다 한글이 경계를 넘는 줄입니다 한글이 경계").centered(),
            Line::from(""),
            Line::from("tab\tand zero\u{200b}width"),
            Line::from("┌─▶ pipe ──── 65536 B ▁▂▃▅▇█ ◀─┐ ⇄ · … ↑↓ ≤ ≥ ×"),
            Line::from(vec![Span::raw("커널 → "), Span::styled("포트 ⇄ 큐", Style::new().fg(Color::Green))]),
            Line::from("e\u{301}te\u{301} 👩\u{200d}💻 ❤\u{fe0f} \u{1100}\u{1161}\u{11a8} 각\u{11a8} ◽ ½ ©"),
        ];
        for (w, h) in [(23u16, 9u16), (24, 4), (1, 3), (2, 8), (60, 10)] {
            let area = Rect::new(3, 1, w, h);
            let mut a = Terminal::new(TestBackend::new(w + 5, h + 2)).unwrap();
            let mut b = Terminal::new(TestBackend::new(w + 5, h + 2)).unwrap();
            a.draw(|f| f.render_widget(Paragraph::new(lines.clone()), area)).unwrap();
            b.draw(|f| draw_lines(f, area, &lines)).unwrap();
            assert_eq!(a.backend().buffer(), b.backend().buffer(), "{w}x{h}");
        }
    }

    #[test]
    fn set_line_draws_what_buffers_set_line_draws() {
        use ratatui::buffer::Buffer;
        use ratatui::style::{Color, Modifier};
        let lines = vec![
            Line::from(vec![Span::styled("mach_msg ", Style::new().fg(Color::Red)), Span::raw("65536")])
                .style(Style::new().add_modifier(Modifier::BOLD)),
            Line::from("┌─▶ pipe ──── 65536 B ▁▂▃▅▇█ ◀─┐ ⇄ · … ↑↓ ≤ ≥ ×"),
            Line::from(vec![Span::raw("커널 → "), Span::styled("포트 ⇄ 큐", Style::new().bg(Color::Blue))]),
            Line::from("e\u{301}te\u{301} 👩\u{200d}💻 ❤\u{fe0f} \u{1100}\u{1161}\u{11a8} 각\u{11a8} ◽ ½ ©"),
            Line::from(vec![Span::raw("tab\tand\u{7} zero\u{200b}width "), Span::raw("한글")]),
        ];
        for line in &lines {
            for (x, max) in [(0u16, 80u16), (3, 7), (5, 1), (2, 2), (60, 30), (0, 0)] {
                let area = Rect::new(0, 0, 70, 1);
                let (mut a, mut b) = (Buffer::empty(area), Buffer::empty(area));
                a.set_line(x, 0, line, max);
                set_line(&mut b, x, 0, line, max);
                assert_eq!(a, b, "{line:?} at {x}, {max} columns");
            }
        }
    }
}
