//! A rendered frame (ratatui's cell buffer) as an SVG picture for slides
//! and course pages: real `<text>` (Hangul included, a wide character on
//! its two cells), the theme's colours mapped to a 16-colour ANSI palette
//! (plus 256-colour and RGB), bold, and box lines and blocks drawn as
//! shapes so borders and gauges join up whatever font the reader has.

use std::fmt::Write;

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthStr;

use crate::ui::Theme;

/// One cell: 10 × 22 px, text at 18 px: a Korean coding font's half-width
/// glyph (0.5 em) fills a cell, Hangul (1 em) its two, and a Latin
/// monospace (0.6 em) overhangs by less than a pixel.
const CW: f32 = 10.0;
const CH: f32 = 22.0;
const FONT_SIZE: f32 = 18.0;
/// From the top of a cell to the text's baseline.
const BASELINE: f32 = 16.5;
/// Monospace fonts with Hangul first, for text with wide characters.
pub const FONT_FAMILY: &str =
    "D2Coding, 'Noto Sans Mono CJK KR', NanumGothicCoding, 'Nanum Gothic Coding', 'Noto Sans Mono', 'DejaVu Sans Mono', Menlo, Consolas, monospace";
/// Latin monospace fonts first, for runs of one-cell characters: a Korean
/// font draws symbols of ambiguous width (`□ → ·`) two cells wide, a
/// terminal's Latin font one, as the frame counts them.
pub const NARROW_FAMILY: &str =
    "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', 'Noto Sans Mono', D2Coding, 'Noto Sans Mono CJK KR', NanumGothicCoding, monospace";

/// The 16 ANSI colours (VS Code's terminal palette), in ANSI order:
/// black, red, green, yellow, blue, magenta, cyan, white (ratatui's Gray),
/// then the bright eight (DarkGray … White).
pub const ANSI: [&str; 16] = [
    "#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5", "#666666", "#f14c4c",
    "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
];

/// The terminal's own foreground and background under each theme: the
/// light theme is meant for a white terminal, the others for a dark one.
pub fn default_colors(theme: Theme) -> (&'static str, &'static str) {
    match theme {
        Theme::Light => ("#1e1e1e", "#ffffff"),
        Theme::Projector => ("#ffffff", "#000000"),
        Theme::Default | Theme::Mono => ("#d4d4d4", "#1e1e1e"),
    }
}

/// `Color::Reset` is the terminal's default (`dflt`).
fn color(c: Color, dflt: &str) -> String {
    let ansi = |i: usize| ANSI[i].to_string();
    match c {
        Color::Reset => dflt.to_string(),
        Color::Black => ansi(0),
        Color::Red => ansi(1),
        Color::Green => ansi(2),
        Color::Yellow => ansi(3),
        Color::Blue => ansi(4),
        Color::Magenta => ansi(5),
        Color::Cyan => ansi(6),
        Color::Gray => ansi(7),
        Color::DarkGray => ansi(8),
        Color::LightRed => ansi(9),
        Color::LightGreen => ansi(10),
        Color::LightYellow => ansi(11),
        Color::LightBlue => ansi(12),
        Color::LightMagenta => ansi(13),
        Color::LightCyan => ansi(14),
        Color::White => ansi(15),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
        Color::Indexed(i) => indexed(i),
    }
}

/// xterm's 256 colours: the 16, a 6×6×6 cube, 24 greys.
fn indexed(i: u8) -> String {
    match i {
        0..=15 => ANSI[i as usize].to_string(),
        16..=231 => {
            let n = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
            format!("#{:02x}{:02x}{:02x}", level(n / 36), level(n / 6 % 6), level(n % 6))
        }
        _ => {
            let v = 8 + 10 * (i - 232);
            format!("#{v:02x}{v:02x}{v:02x}")
        }
    }
}

/// Text as XML character data or an attribute value. Characters XML does
/// not allow (control characters from a foreign byte) become U+FFFD.
pub fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// What a cell looks like once the terminal's defaults and `REVERSED`
/// are applied.
#[derive(Clone, PartialEq)]
struct Look {
    fg: String,
    bg: String,
    bold: bool,
    italic: bool,
    underline: bool,
    dim: bool,
}

fn look(cell: &ratatui::buffer::Cell, fg0: &str, bg0: &str) -> Look {
    let m = cell.modifier;
    let (mut fg, mut bg) = (color(cell.fg, fg0), color(cell.bg, bg0));
    if m.contains(Modifier::REVERSED) {
        std::mem::swap(&mut fg, &mut bg);
    }
    Look {
        fg,
        bg,
        bold: m.contains(Modifier::BOLD),
        italic: m.contains(Modifier::ITALIC),
        underline: m.contains(Modifier::UNDERLINED),
        dim: m.contains(Modifier::DIM),
    }
}

/// Line weights of a box-drawing character, as (up, down, left, right):
/// 0 none, 1 light, 2 heavy, 3 double.
fn box_arms(c: char) -> Option<[u8; 4]> {
    Some(match c {
        '─' => [0, 0, 1, 1],
        '│' => [1, 1, 0, 0],
        '┌' | '╭' => [0, 1, 0, 1],
        '┐' | '╮' => [0, 1, 1, 0],
        '└' | '╰' => [1, 0, 0, 1],
        '┘' | '╯' => [1, 0, 1, 0],
        '├' => [1, 1, 0, 1],
        '┤' => [1, 1, 1, 0],
        '┬' => [0, 1, 1, 1],
        '┴' => [1, 0, 1, 1],
        '┼' => [1, 1, 1, 1],
        '╴' => [0, 0, 1, 0],
        '╶' => [0, 0, 0, 1],
        '╵' => [1, 0, 0, 0],
        '╷' => [0, 1, 0, 0],
        '━' => [0, 0, 2, 2],
        '┃' => [2, 2, 0, 0],
        '┏' => [0, 2, 0, 2],
        '┓' => [0, 2, 2, 0],
        '┗' => [2, 0, 0, 2],
        '┛' => [2, 0, 2, 0],
        '┣' => [2, 2, 0, 2],
        '┫' => [2, 2, 2, 0],
        '┳' => [0, 2, 2, 2],
        '┻' => [2, 0, 2, 2],
        '╋' => [2, 2, 2, 2],
        '═' => [0, 0, 3, 3],
        '║' => [3, 3, 0, 0],
        '╔' => [0, 3, 0, 3],
        '╗' => [0, 3, 3, 0],
        '╚' => [3, 0, 0, 3],
        '╝' => [3, 0, 3, 0],
        '╠' => [3, 3, 0, 3],
        '╣' => [3, 3, 3, 0],
        '╦' => [0, 3, 3, 3],
        '╩' => [3, 0, 3, 3],
        '╬' => [3, 3, 3, 3],
        _ => return None,
    })
}

/// A block element as (x, y, width, height) in cell fractions, and its
/// opacity (the shades are a fraction of the foreground over the back).
fn block_shape(c: char) -> Option<([f32; 4], f32)> {
    let eighth = |n: f32| ([0.0, 1.0 - n / 8.0, 1.0, n / 8.0], 1.0);
    Some(match c {
        '█' => ([0.0, 0.0, 1.0, 1.0], 1.0),
        '▀' => ([0.0, 0.0, 1.0, 0.5], 1.0),
        '▌' => ([0.0, 0.0, 0.5, 1.0], 1.0),
        '▐' => ([0.5, 0.0, 0.5, 1.0], 1.0),
        '░' => ([0.0, 0.0, 1.0, 1.0], 0.25),
        '▒' => ([0.0, 0.0, 1.0, 1.0], 0.5),
        '▓' => ([0.0, 0.0, 1.0, 1.0], 0.75),
        '▁' => eighth(1.0),
        '▂' => eighth(2.0),
        '▃' => eighth(3.0),
        '▄' => eighth(4.0),
        '▅' => eighth(5.0),
        '▆' => eighth(6.0),
        '▇' => eighth(7.0),
        _ => return None,
    })
}

/// A straight piece of a box line: horizontal at `at` from `from` to
/// `to`, or vertical.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Seg {
    H { at: f32, from: f32, to: f32 },
    V { at: f32, from: f32, to: f32 },
}

impl Seg {
    fn key(&self) -> (u8, f32, f32) {
        match *self {
            Seg::H { at, from, .. } => (0, at, from),
            Seg::V { at, from, .. } => (1, at, from),
        }
    }

    /// `next` continues this line (same direction and place, touching).
    fn join(&mut self, next: &Seg) -> bool {
        match (self, next) {
            (Seg::H { at, to, .. }, Seg::H { at: a2, from: f2, to: t2 })
            | (Seg::V { at, to, .. }, Seg::V { at: a2, from: f2, to: t2 })
                if at == a2 && *f2 <= *to + 0.01 =>
            {
                *to = to.max(*t2);
                true
            }
            _ => false,
        }
    }
}

/// The box lines of one cell, each with its stroke width.
fn box_segments(arms: [u8; 4], x: f32, y: f32) -> Vec<(f32, Seg)> {
    let [up, down, left, right] = arms;
    let (cx, cy) = (x + CW / 2.0, y + CH / 2.0);
    let (x1, y1) = (x + CW, y + CH);
    let mut out = Vec::new();
    // Light and heavy arms: a line from the centre to each edge (square
    // caps close the corners).
    for (i, w) in [(1u8, 1.2f32), (2, 2.6)] {
        if up == i {
            out.push((w, Seg::V { at: cx, from: y, to: cy }));
        }
        if down == i {
            out.push((w, Seg::V { at: cx, from: cy, to: y1 }));
        }
        if left == i {
            out.push((w, Seg::H { at: cy, from: x, to: cx }));
        }
        if right == i {
            out.push((w, Seg::H { at: cy, from: cx, to: x1 }));
        }
    }
    // Double arms: two lines 1.5 px either side of the centre, meeting
    // the perpendicular pair at a corner (the inner line stops short).
    let o = 1.5;
    let (h, v) = (left != 0 || right != 0, up != 0 || down != 0);
    // How far past the centre a line at offset `s` reaches: the outer
    // line of a corner goes on to meet the other outer line.
    let reach = |cross: bool, inner: bool| match (cross, inner) {
        (false, _) => 0.0,
        (true, true) => -o,
        (true, false) => o,
    };
    for s in [-o, o] {
        let inner_v = (s > 0.0 && right != 0) || (s < 0.0 && left != 0);
        let inner_h = (s > 0.0 && down != 0) || (s < 0.0 && up != 0);
        if up == 3 {
            out.push((1.0, Seg::V { at: cx + s, from: y, to: cy + reach(h, inner_v) }));
        }
        if down == 3 {
            out.push((1.0, Seg::V { at: cx + s, from: cy - reach(h, inner_v), to: y1 }));
        }
        if left == 3 {
            out.push((1.0, Seg::H { at: cy + s, from: x, to: cx + reach(v, inner_h) }));
        }
        if right == 3 {
            out.push((1.0, Seg::H { at: cy + s, from: cx - reach(v, inner_h), to: x1 }));
        }
    }
    out
}

/// One cell of the frame, as drawn.
struct Glyph<'a> {
    col: u16,
    sym: &'a str,
    width: u16,
    look: Look,
}

/// A filled rectangle: a background or a block element.
#[derive(PartialEq)]
struct Fill {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
    color: String,
    opacity: f32,
}

impl Fill {
    /// `next` extends this one to the right (same row band and colour).
    fn join(&mut self, next: &Fill) -> bool {
        let same = self.y == next.y && self.h == next.h && self.color == next.color && self.opacity == next.opacity;
        if same && (self.x + self.w - next.x).abs() < 0.01 {
            self.w += next.w;
            true
        } else {
            false
        }
    }

    fn write(&self, out: &mut String) {
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}""#,
            self.x, self.y, self.w, self.h, self.color
        );
        if self.opacity < 1.0 {
            let _ = write!(out, r#" fill-opacity="{}""#, self.opacity);
        }
        out.push_str("/>\n");
    }
}

fn push_fill(fills: &mut Vec<Fill>, f: Fill) {
    if !fills.last_mut().is_some_and(|last| last.join(&f)) {
        fills.push(f);
    }
}

/// The frame as an SVG document.
pub fn svg(buf: &Buffer, theme: Theme) -> String {
    let (fg0, bg0) = default_colors(theme);
    let (w, h) = (buf.area.width, buf.area.height);
    let mut out = String::with_capacity(w as usize * h as usize * 12);
    let _ = writeln!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{pw}" height="{ph}" viewBox="0 0 {pw} {ph}" font-family="{FONT_FAMILY}" font-size="{FONT_SIZE}">
<style>.n{{font-family:{NARROW_FAMILY}}}</style>
<rect width="100%" height="100%" fill="{bg0}"/>"#,
        pw = w as f32 * CW,
        ph = h as f32 * CH,
    );
    let mut backs: Vec<Fill> = Vec::new();
    let mut blocks: Vec<Fill> = Vec::new();
    // Box lines by colour and stroke width, joined into long lines.
    let mut lines: std::collections::BTreeMap<(String, String), Vec<Seg>> = Default::default();
    let mut texts = String::new();
    for y in 0..h {
        let row = glyphs(buf, y, fg0, bg0);
        let top = y as f32 * CH;
        let mut run: Vec<&Glyph> = Vec::new();
        for g in &row {
            let x = g.col as f32 * CW;
            if g.look.bg != bg0 {
                let bg = Fill { x, y: top, w: g.width as f32 * CW, h: CH, color: g.look.bg.clone(), opacity: 1.0 };
                push_fill(&mut backs, bg);
            }
            // Blocks and box lines as shapes; the rest as text runs.
            let mut chars = g.sym.chars();
            let c = chars.next().unwrap_or(' ');
            let single = chars.next().is_none();
            let shape = single.then(|| block_shape(c)).flatten();
            let arms = single.then(|| box_arms(c)).flatten();
            let breaks = g.sym.trim().is_empty() || shape.is_some() || arms.is_some();
            // A run is all one-cell or all two-cell characters (its font);
            // a cluster of several characters (a base and its combining
            // marks) is a run of its own, so each `x` meets its character.
            let cluster = !single && !breaks;
            let alone = run.first().is_some_and(|r| r.sym.chars().nth(1).is_some());
            if breaks
                || cluster
                || alone
                || run.first().is_some_and(|r| r.look != g.look || (r.width == 1) != (g.width == 1))
            {
                text_run(&run, top, &mut texts);
                run.clear();
            }
            if let Some(([fx, fy, fw, fh], opacity)) = shape {
                let color = g.look.fg.clone();
                push_fill(
                    &mut blocks,
                    Fill { x: x + fx * CW, y: top + fy * CH, w: fw * CW, h: fh * CH, color, opacity },
                );
            } else if let Some(arms) = arms {
                for (sw, seg) in box_segments(arms, x, top) {
                    lines.entry((g.look.fg.clone(), sw.to_string())).or_default().push(seg);
                }
            } else if !breaks {
                run.push(g);
            }
        }
        text_run(&run, top, &mut texts);
    }
    for f in backs.iter().chain(&blocks) {
        f.write(&mut out);
    }
    for ((color, width), mut segs) in lines {
        segs.sort_by(|a, b| a.key().partial_cmp(&b.key()).unwrap_or(std::cmp::Ordering::Equal));
        let mut joined: Vec<Seg> = Vec::new();
        for s in segs {
            if !joined.last_mut().is_some_and(|l| l.join(&s)) {
                joined.push(s);
            }
        }
        let mut d = String::new();
        for s in joined {
            let _ = match s {
                Seg::H { at, from, to } => write!(d, "M{from} {at}H{to}"),
                Seg::V { at, from, to } => write!(d, "M{at} {from}V{to}"),
            };
        }
        let _ = writeln!(
            out,
            r#"<path d="{d}" stroke="{color}" stroke-width="{width}" stroke-linecap="square" fill="none"/>"#
        );
    }
    out.push_str(&texts);
    out.push_str("</svg>\n");
    out
}

/// The visible cells of row `y`: a wide character once, with its width.
fn glyphs<'a>(buf: &'a Buffer, y: u16, fg0: &str, bg0: &str) -> Vec<Glyph<'a>> {
    let mut row = Vec::new();
    let mut x = 0;
    while x < buf.area.width {
        let cell = &buf[(x, y)];
        let sym = cell.symbol();
        let width = (UnicodeWidthStr::width(sym) as u16).clamp(1, buf.area.width - x);
        row.push(Glyph { col: x, sym, width, look: look(cell, fg0, bg0) });
        x += width;
    }
    row
}

/// One `<text>` for a run of cells of one look, each character in a
/// `<tspan>` on its own cell: a fallback font of another width cannot
/// shift what follows, and renderers without per-character `x` lists
/// (librsvg) place it right too.
fn text_run(run: &[&Glyph], top: f32, out: &mut String) {
    let Some(first) = run.first() else { return };
    let l = &first.look;
    let _ = write!(out, r#"<text y="{}" fill="{}""#, top + BASELINE, l.fg);
    if first.width == 1 {
        out.push_str(r#" class="n""#);
    }
    if l.bold {
        out.push_str(r#" font-weight="bold""#);
    }
    if l.italic {
        out.push_str(r#" font-style="italic""#);
    }
    if l.underline {
        out.push_str(r#" text-decoration="underline""#);
    }
    if l.dim {
        out.push_str(r#" fill-opacity="0.6""#);
    }
    out.push('>');
    for g in run {
        let _ = write!(out, r#"<tspan x="{}">"#, g.col as f32 * CW);
        escape(g.sym, out);
        out.push_str("</tspan>");
    }
    out.push_str("</text>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn text_is_escaped_and_wide_characters_take_two_cells() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 2));
        buf.set_string(0, 0, "a<b & 단방향", Style::default().fg(Color::LightRed).add_modifier(Modifier::BOLD));
        buf.set_string(0, 1, "┌─█", Style::default());
        let s = svg(&buf, Theme::Default);
        let a_lt_b = r#"<tspan x="0">a</tspan><tspan x="10">&lt;</tspan><tspan x="20">b</tspan></text>"#;
        assert!(s.contains(&format!(r##"fill="#f14c4c" class="n" font-weight="bold">{a_lt_b}"##)), "{s}");
        assert!(s.contains(r#"<tspan x="40">&amp;</tspan>"#), "{s}");
        // 단 at column 6, 방 at 8, 향 at 10, in the Korean-first font.
        let wide = r#"<tspan x="60">단</tspan><tspan x="80">방</tspan><tspan x="100">향</tspan></text>"#;
        assert!(s.contains(&format!(r##"<text y="16.5" fill="#f14c4c" font-weight="bold">{wide}"##)), "{s}");
        assert!(s.contains("<path d="), "{s}");
        assert!(s.contains(r#"<rect x="20" y="22" width="10" height="22""#), "{s}");
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        let mut s = String::new();
        escape("a\u{1}b\"'", &mut s);
        assert_eq!(s, "a\u{fffd}b&quot;&apos;");
    }

    #[test]
    fn colours() {
        assert_eq!(color(Color::Reset, "#123456"), "#123456");
        assert_eq!(color(Color::Gray, "#000000"), ANSI[7]);
        assert_eq!(color(Color::Rgb(1, 2, 255), "#000000"), "#0102ff");
        assert_eq!(indexed(196), "#ff0000");
        assert_eq!(indexed(232), "#080808");
    }
}
