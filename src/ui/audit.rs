//! The no-cut audit of a rendered text frame: a number or a word on screen
//! is whole or absent (issue #15). Used by `tests/frames.rs` on recorded
//! snapshots at every size, language and theme.
//!
//! A *token* is a maximal run of letters, digits and `_` (Hangul
//! included), with a `.` inside it when it sits between two digits
//! (`64.0K`, `2.8s`). A token on screen is *whole* when it is a whole token
//! of the truth: what the snapshot holds (every string, every number in
//! each of the ways the UI formats numbers), every label of
//! `assets/locales.toml` in both languages, the lesson texts, and the
//! string literals of `src/ui/*.rs`. A `{placeholder}` of a label or a
//! format string stands for any whole token, so `{n}개` makes `5개` whole.
//! `anon_pipe_wri`, `655` (of `65536`) and `단방` (of `단방향`) are not.

use std::collections::HashSet;

use serde_json::Value;

use super::widgets;
use crate::model::snapshot::Snapshot;

/// Stands for a placeholder inside a token of a label or format string.
const MARK: char = '\u{e000}';

/// The string literals of these sources are part of the truth (their test
/// modules are not: a test may spell a cut word on purpose).
pub const UI_SOURCES: &[(&str, &str)] = &[
    ("alpc.rs", include_str!("alpc.rs")),
    ("fifo.rs", include_str!("fifo.rs")),
    ("fit.rs", include_str!("fit.rs")),
    ("lesson.rs", include_str!("lesson.rs")),
    ("mach.rs", include_str!("mach.rs")),
    ("measured.rs", include_str!("measured.rs")),
    ("mod.rs", include_str!("mod.rs")),
    ("mq.rs", include_str!("mq.rs")),
    ("pipe.rs", include_str!("pipe.rs")),
    ("shm.rs", include_str!("shm.rs")),
    ("socket.rs", include_str!("socket.rs")),
    ("theme.rs", include_str!("theme.rs")),
    ("widgets.rs", include_str!("widgets.rs")),
];

const LOCALES: &str = include_str!("../../assets/locales.toml");

/// What a token on screen may be.
#[derive(Debug, Default, Clone)]
pub struct Truth {
    words: HashSet<String>,
    /// Tokens with placeholders, as the literal pieces around them
    /// (`{n}개` is `["", "개"]`).
    patterns: HashSet<Vec<String>>,
    /// Every number of the snapshot, for `1.0k`-style short forms.
    numbers: Vec<f64>,
}

/// Something the audit found on one line of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// 1-based line of the frame.
    pub line: usize,
    /// The token (or gauge label) in question.
    pub token: String,
}

impl Truth {
    /// The truth for frames of `snap`: its JSON, the locales, the lessons
    /// and the literals of the UI sources built in.
    pub fn new(snap: &Snapshot) -> Truth {
        let mut t = Truth::static_sources();
        t.add_json(&serde_json::to_value(snap).unwrap_or_default());
        t
    }

    /// Only the texts that do not depend on the snapshot.
    pub fn static_sources() -> Truth {
        let mut t = Truth::default();
        t.add_locales(LOCALES);
        for p in super::PANELS {
            for text in p.lesson {
                t.add_plain(text);
            }
        }
        for (_, src) in UI_SOURCES {
            t.add_rust(src);
        }
        t
    }

    /// Every string (tokenized) and every number (in each UI format) of a
    /// JSON value.
    pub fn add_json(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.add_plain(s),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    self.add_integer(u);
                } else if let Some(i) = n.as_i64() {
                    self.add_integer(i.unsigned_abs());
                } else if let Some(f) = n.as_f64() {
                    self.add_float(f);
                }
            }
            Value::Array(a) => {
                a.iter().for_each(|v| self.add_json(v));
                self.add_sums(a);
            }
            Value::Object(o) => {
                o.values().for_each(|v| self.add_json(v));
                self.add_hex_dumps(o);
            }
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// Panels add up a field over a list (the writers' messages, the
    /// clients' send rates): each numeric field's sum over the list, and
    /// for rates (the only fractional fields) over every part of a short
    /// list (the clients but not the server).
    fn add_sums(&mut self, a: &[Value]) {
        if a.len() < 2 {
            return;
        }
        let mut fields: std::collections::BTreeMap<&str, Vec<&Value>> = Default::default();
        for o in a.iter().filter_map(Value::as_object) {
            for (k, v) in o.iter().filter(|(_, v)| v.is_number()) {
                fields.entry(k.as_str()).or_default().push(v);
            }
        }
        for values in fields.into_values() {
            let fractional = values.iter().any(|v| !v.is_u64());
            let nums: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
            if !fractional {
                self.add_integer(nums.iter().sum::<f64>() as u64);
            } else if nums.len() <= 8 {
                for subset in 1..(1u32 << nums.len()) {
                    let sum = nums.iter().enumerate().filter(|(i, _)| subset & (1 << i) != 0).map(|(_, n)| n).sum();
                    self.add_float(sum);
                }
            } else {
                self.add_float(nums.iter().sum());
            }
        }
    }

    /// A region's bytes as a hex string (`head_hex`) are drawn as a dump:
    /// 16 bytes a row, each `{:02x}`, the row's offset `{:04x}` from 0 or
    /// from an offset beside the string, and the bytes as ASCII.
    fn add_hex_dumps(&mut self, o: &serde_json::Map<String, Value>) {
        let is_hex = |s: &str| s.len() >= 32 && s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit());
        let bases: Vec<u64> = std::iter::once(0).chain(o.values().filter_map(Value::as_u64)).collect();
        for s in o.values().filter_map(Value::as_str).filter(|s| is_hex(s)) {
            let bytes: Vec<u8> =
                (0..s.len() / 2).filter_map(|i| u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()).collect();
            for (i, row) in bytes.chunks(16).enumerate() {
                for b in row {
                    self.words.insert(format!("{b:02x}"));
                }
                let text: String = row.iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect();
                self.add_plain(&text);
                for base in &bases {
                    self.words.insert(format!("{:04x}", base + i as u64 * 16));
                }
            }
        }
    }

    /// Every string of a locales file, both languages, `{name}` a placeholder.
    pub fn add_locales(&mut self, toml_text: &str) {
        fn walk(t: &mut Truth, v: &toml::Value) {
            match v {
                toml::Value::String(s) => t.add_template(s),
                toml::Value::Table(m) => m.values().for_each(|v| walk(t, v)),
                toml::Value::Array(a) => a.iter().for_each(|v| walk(t, v)),
                _ => {}
            }
        }
        if let Ok(v) = toml_text.parse::<toml::Table>() {
            walk(self, &toml::Value::Table(v));
        }
    }

    /// The string literals of a Rust source, before its first test module;
    /// format placeholders (`{}`, `{n:>3}`) stand for whole tokens.
    pub fn add_rust(&mut self, src: &str) {
        let body = src.split("#[cfg(test)]").next().unwrap_or_default();
        for s in rust_strings(body) {
            self.add_template(&s);
        }
    }

    /// Text whose every token is whole (a snapshot's string, a lesson).
    pub fn add_plain(&mut self, text: &str) {
        for (_, tok) in tokens(text) {
            self.words.insert(tok.to_string());
        }
    }

    /// Text with `{…}` placeholders (`{{` and `}}` are braces).
    pub fn add_template(&mut self, text: &str) {
        let mut marked = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    marked.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    marked.push('}');
                }
                '{' => {
                    let inner: String = chars.clone().take_while(|&c| c != '}' && c != '{').collect();
                    let closed = chars.clone().nth(inner.chars().count()) == Some('}');
                    if closed && inner.len() <= 40 {
                        chars.nth(inner.chars().count());
                        marked.push(MARK);
                    } else {
                        marked.push('{');
                    }
                }
                c => marked.push(c),
            }
        }
        for (_, tok) in tokens(&marked) {
            if !tok.contains(MARK) {
                self.words.insert(tok.to_string());
                continue;
            }
            let pieces: Vec<String> = tok.split(MARK).map(str::to_string).collect();
            // `{}{}` or `{}5` would make any run of digits whole.
            if pieces.iter().any(|p| p.chars().any(|c| !c.is_ascii_digit())) {
                self.patterns.insert(pieces);
            }
        }
    }

    /// An integer as every panel may print it.
    pub fn add_integer(&mut self, n: u64) {
        self.numbers.push(n as f64);
        let secs = n as f64 / 1000.0;
        let forms = [
            n.to_string(),
            widgets::bytes(n),
            widgets::count(n),
            widgets::kib(n),
            widgets::since(n),
            widgets::rate(n as f64),
            format!("{n:x}"),
            format!("{n:#x}"),
            format!("{n:X}"),
            format!("{n:#010x}"),
            format!("{n:08x}"),
            format!("{n:o}"),
            format!("{n:04o}"),
            format!("{secs:.1}s"),
            format!("{secs:.3}"),
        ];
        for f in forms {
            self.add_plain(&f);
        }
    }

    pub fn add_float(&mut self, f: f64) {
        self.numbers.push(f);
        for form in [format!("{f}"), format!("{f:.0}"), format!("{f:.1}"), format!("{f:.2}"), widgets::rate(f)] {
            self.add_plain(&form);
        }
        for form in super::measured::float_forms(f) {
            self.add_plain(&form);
        }
    }

    /// Whether a token on screen is whole.
    pub fn is_whole(&self, tok: &str) -> bool {
        self.whole_at(tok, 0)
    }

    fn whole_at(&self, tok: &str, depth: usize) -> bool {
        if tok.is_empty() {
            return false;
        }
        if self.words.contains(tok) || self.short_number(tok) {
            return true;
        }
        depth < 2 && self.patterns.iter().any(|p| self.matches(tok, p, depth + 1))
    }

    /// `tok` is `p0 X p1 X … pk` with every X whole. When the pieces are
    /// only punctuation (`{}.{}`, a pid.tid), every X has two characters
    /// at least, so a cut `64.0K` (`64.0`) is not taken for one.
    fn matches(&self, tok: &str, pieces: &[String], depth: usize) -> bool {
        let Some(rest) = tok.strip_prefix(pieces[0].as_str()) else { return false };
        let min = if pieces.iter().all(|p| !p.chars().any(char::is_alphanumeric)) { 2 } else { 1 };
        self.matches_rest(rest, &pieces[1..], depth, min)
    }

    fn matches_rest(&self, s: &str, pieces: &[String], depth: usize, min: usize) -> bool {
        let Some((lit, more)) = pieces.split_first() else { return s.is_empty() };
        let ok = |x: &str| x.chars().count() >= min && self.whole_at(x, depth);
        if more.is_empty() {
            return s.strip_suffix(lit.as_str()).is_some_and(ok);
        }
        s.match_indices(lit.as_str())
            .any(|(i, _)| i > 0 && ok(&s[..i]) && self.matches_rest(&s[i + lit.len()..], more, depth, min))
    }

    /// `1.0k`, `64.0K`, `2M`, `12 KiB`: a number of the snapshot in a
    /// short form, rounded (or cut down) to the digits shown.
    fn short_number(&self, tok: &str) -> bool {
        let split = tok.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(tok.len());
        let (num, unit) = tok.split_at(split);
        let scales: &[f64] = match unit {
            "K" | "k" | "KiB" | "KB" | "kB" => &[1000.0, 1024.0],
            "M" | "MiB" | "MB" => &[1e6, 1048576.0],
            "G" | "GiB" | "GB" => &[1e9, 1073741824.0],
            _ => return false,
        };
        let Ok(v) = num.parse::<f64>() else { return false };
        let decimals = num.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
        let half = 0.5 * 10f64.powi(-decimals) + 1e-9;
        self.numbers.iter().any(|&n| {
            scales.iter().any(|s| {
                let x = n / s;
                (x - v).abs() <= half || (decimals == 0 && x.floor() == v)
            })
        })
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == MARK
}

/// The tokens of a line with their display column.
pub fn tokens(line: &str) -> Vec<(usize, &str)> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut out = Vec::new();
    let mut col = 0;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if !is_word(c) {
            col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            i += 1;
            continue;
        }
        let start = (at, col);
        let mut j = i;
        while j < chars.len() {
            let c = chars[j].1;
            let digit = |c: char| c.is_ascii_digit() || c == MARK;
            let inner_dot = c == '.' && j > i && digit(chars[j - 1].1) && chars.get(j + 1).is_some_and(|n| digit(n.1));
            if !is_word(c) && !inner_dot {
                break;
            }
            col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            j += 1;
        }
        let end = chars.get(j).map_or(line.len(), |c| c.0);
        out.push((start.1, &line[start.0..end]));
        i = j;
    }
    out
}

/// Tokens of a rendered frame that are not whole, with their line; and a
/// number cut right after its `/` (`1000/s` drawn as `0/` at an edge).
pub fn cuts(frame: &str, truth: &Truth) -> Vec<Finding> {
    let mut out = Vec::new();
    for (n, line) in frame.lines().enumerate() {
        let masked = mask_scroll_position(line);
        let line = masked.as_str();
        for (_, tok) in tokens(line) {
            if !truth.is_whole(tok) {
                out.push(Finding { line: n + 1, token: tok.to_string() });
            }
        }
        let chars: Vec<char> = line.chars().collect();
        for (i, w) in chars.windows(2).enumerate() {
            let dangling = chars.get(i + 2).is_none_or(|&c| is_border(c));
            if w[0].is_ascii_digit() && w[1] == '/' && dangling {
                let start = chars[..=i].iter().rposition(|&c| !c.is_ascii_digit() && c != '.').map_or(0, |p| p + 1);
                out.push(Finding { line: n + 1, token: chars[start..i + 2].iter().collect() });
            }
        }
    }
    out
}

/// A pane's scroll position (`↑↓ 1-4/26` in its border) counts the pane's
/// own wrapped lines, which the UI works out at that width: not a fact of
/// the snapshot, so it is left out of the check.
fn mask_scroll_position(line: &str) -> String {
    let Some(at) = line.find("↑↓ ") else { return line.to_string() };
    let start = at + "↑↓ ".len();
    let rest = &line[start..];
    let len = rest.find(|c: char| !(c.is_ascii_digit() || c == '-' || c == '/')).unwrap_or(rest.len());
    format!("{}{}{}", &line[..start], " ".repeat(len), &rest[len..])
}

fn is_border(c: char) -> bool {
    matches!(c, '│' | '┃' | '║' | '┐' | '┓' | '╗' | '┘' | '┛' | '╝' | '┤' | '┫' | '╣')
}

fn is_bar(c: char) -> bool {
    matches!(c, '█' | '░' | '▓' | '▉' | '▊' | '▋' | '▌' | '▍' | '▎' | '▏')
}

/// A number of a gauge label, `64.0K` → 65536.
fn label_value(s: &str) -> Option<f64> {
    let (num, scale) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1024.0),
        'M' => (&s[..s.len() - 1], 1048576.0),
        'G' => (&s[..s.len() - 1], 1073741824.0),
        'k' => (&s[..s.len() - 1], 1000.0),
        _ => (s, 1.0),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    num.parse::<f64>().ok().map(|v| v * scale)
}

/// Gauge labels `a/b` with `a` above `b`. A label belongs to a gauge when
/// a bar (`█`, `░`) precedes it on its line (past spaces and the `▒` of
/// what is kept beyond capacity), or lies right above it.
pub fn gauges_over(frame: &str) -> Vec<Finding> {
    let lines: Vec<Vec<(usize, char)>> = frame
        .lines()
        .map(|l| {
            let mut col = 0;
            l.chars()
                .map(|c| {
                    let at = col;
                    col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                    (at, c)
                })
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let text: String = line.iter().map(|c| c.1).collect();
        let toks = tokens(&text);
        for pair in toks.windows(2) {
            let ((ca, a), (cb, b)) = (pair[0], pair[1]);
            // `a/b` with nothing else between.
            let Some(ia) = line.iter().position(|c| c.0 == ca) else { continue };
            let a_len = a.chars().count();
            if line.get(ia + a_len).map(|c| c.1) != Some('/') || line.get(ia + a_len + 1).map(|c| c.0) != Some(cb) {
                continue;
            }
            let (Some(va), Some(vb)) = (label_value(a), label_value(b)) else { continue };
            let before = line[..ia].iter().rev().map(|c| c.1).find(|&c| c != ' ' && c != '▒' && c != '[');
            let b_end = cb + b.chars().count();
            let above = n
                .checked_sub(1)
                .and_then(|p| lines.get(p))
                .is_some_and(|l| l.iter().any(|&(col, c)| is_bar(c) && col >= ca && col < b_end));
            if (before.is_some_and(is_bar) || above) && va > vb + 1e-9 {
                out.push(Finding { line: n + 1, token: format!("{a}/{b}") });
            }
        }
    }
    out
}

/// The string literals of Rust source text (comments, char literals and
/// lifetimes skipped), escapes resolved.
pub fn rust_strings(src: &str) -> Vec<String> {
    let b: Vec<char> = src.chars().collect();
    let n = b.len();
    let at = |i: usize| b.get(i).copied().unwrap_or('\0');
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = b[i];
        let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if c == '/' && at(i + 1) == '/' {
            while i < n && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < n && !(b[i] == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime.
            if at(i + 1) == '\\' {
                i += 2;
                while i < n && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c == 'r' && !ident_before && (at(i + 1) == '"' || at(i + 1) == '#') {
            let mut j = i + 1;
            while at(j) == '#' {
                j += 1;
            }
            let hashes = j - i - 1;
            if at(j) != '"' {
                i += 1;
                continue;
            }
            let start = j + 1;
            let mut k = start;
            while k < n && !(b[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#')) {
                k += 1;
            }
            out.push(b[start..k.min(n)].iter().collect());
            i = k + 1 + hashes;
        } else if c == '"' {
            let mut s = String::new();
            i += 1;
            while i < n && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                    match at(i) {
                        'n' | 't' | 'r' => s.push(' '),
                        '\n' => {
                            while i + 1 < n && b[i + 1].is_whitespace() {
                                i += 1;
                            }
                        }
                        'u' => {
                            let hex: String = b[i..].iter().skip(2).take_while(|&&c| c != '}').collect();
                            s.extend(u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32));
                            i += hex.chars().count() + 2;
                        }
                        'x' => i += 2,
                        c => s.push(c),
                    }
                } else {
                    s.push(b[i]);
                }
                i += 1;
            }
            out.push(s);
            i += 1;
        } else {
            i += 1;
        }
    }
    out
}

/// Every UI source file's literals, read from a checkout at run time (a
/// panel file added after this list was written joins the truth too).
pub fn add_sources_in(truth: &mut Truth, dir: &std::path::Path) -> std::io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "rs") && p.file_name().is_some_and(|f| f != "audit.rs") {
            truth.add_rust(&std::fs::read_to_string(&p)?);
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> Truth {
        let mut t = Truth::static_sources();
        t.add_json(&serde_json::json!({
            "t_ms": 2800,
            "channel": { "depth": 65536, "capacity": 65536 },
            "processes": [{ "role": "producer", "wchan": "anon_pipe_write", "pid": 4121, "rate": 1000.0 }],
        }));
        t
    }

    #[test]
    fn tokens_keep_decimals_and_hangul() {
        let toks: Vec<&str> = tokens("┃64.0K/64.0K 단방향─ a.b 1.2.x 0x503 t=2.8s…").into_iter().map(|t| t.1).collect();
        assert_eq!(toks, ["64.0K", "64.0K", "단방향", "a", "b", "1.2", "x", "0x503", "t", "2.8s"]);
        let cols: Vec<usize> = tokens("단방 ab").into_iter().map(|t| t.0).collect();
        assert_eq!(cols, [0, 5]);
    }

    /// The three cuts of the issue are found, with their lines; what is
    /// whole is not.
    #[test]
    fn finds_cut_numbers_and_words() {
        let frame = "┃F_GETPIPE_SZ 655   ┃\n\
                     ┃wchan anon_pipe_wri┃\n\
                     ┃pipe() + fork(): 부모 → 자식, 단방─┃\n\
                     ┃F_GETPIPE_SZ 65536 64.0K/64.0K 1000/s anon_pipe_write t=2.8s┃\n\
                     ┃pipe() + fork(): 부모 → 자식, 단방향┃\n";
        let found = cuts(frame, &truth());
        let want = [(1, "655"), (2, "anon_pipe_wri"), (3, "단방")];
        let got: Vec<(usize, &str)> = found.iter().map(|f| (f.line, f.token.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_panes_scroll_position_is_not_a_fact() {
        let t = truth();
        assert!(cuts("┌ lesson  ↑↓ 1-4/26 ──┐", &t).is_empty());
        assert_eq!(cuts("│ 655 │", &t).len(), 1);
    }

    #[test]
    fn a_rate_cut_after_its_slash_is_found() {
        let found = cuts("┃producer 0/┃\n┃sent 4121 0/s┃\n", &truth());
        assert_eq!(found, [Finding { line: 1, token: "0/".into() }]);
    }

    /// Placeholders of labels and format strings stand for whole tokens;
    /// short forms round a number of the snapshot.
    #[test]
    fn placeholders_and_short_forms() {
        let mut t = truth();
        t.add_template("채널 {n}개");
        assert!(t.is_whole("2800개"));
        assert!(!t.is_whole("280개"));
        assert!(t.is_whole("1.0k") && t.is_whole("64K") && t.is_whole("2.8s"));
        assert!(!t.is_whole("6.0k"));
        // Digits alone never form a pattern.
        t.add_template("{}{}");
        assert!(!t.is_whole("6553"));
    }

    #[test]
    fn gauges_above_capacity() {
        let frame = "│████████ 65.0K/64.0K send│\n\
                     │████████ 64.0K/64.0K +1.0K│\n\
                     │██████ ▒▒ 5/5 + 3 kept    │\n\
                     │███████░░░░░░░░░░░        │\n\
                     │8/5 messages              │\n\
                     │recv-q 13312/0  [██░░ 1.0M/64.0K]│\n";
        let got: Vec<(usize, String)> = gauges_over(frame).into_iter().map(|f| (f.line, f.token)).collect();
        assert_eq!(got, [(1, "65.0K/64.0K".into()), (5, "8/5".into()), (6, "1.0M/64.0K".into())]);
    }

    #[test]
    fn rust_literals() {
        let src = r##"
            // "a comment"
            let c = '"'; let l: &'a str = "x\"y\u{2192}"; /* "no" */
            let r = r#"raw "q""#; let f = format!("{n:>3}개 {{lit}}");
            #[cfg(test)] mod t { const S: &str = "hidden"; }
        "##;
        let s = rust_strings(src.split("#[cfg(test)]").next().unwrap());
        assert_eq!(s, ["x\"y→", "raw \"q\"", "{n:>3}개 {{lit}}"]);
    }
}
