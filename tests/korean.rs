//! Korean everywhere (issue #16 §4): a Korean frame has no plain English
//! word left. Frames are drawn from the recorded runs in tests/fixtures
//! by the function `ipcscope render` calls (as tests/frames.rs does), at
//! the projector size, and every ASCII word on them must be an API name,
//! an identifier, a path, a number or a unit — see `english_words`.

use std::path::{Path, PathBuf};

use ipcscope::i18n::Lang;
use ipcscope::model::Kind;
use ipcscope::render::{self, Format, Request};
use ipcscope::scenario::{self, Scenario, SHIPPED};
use ipcscope::snapshot::Snapshot;
use ipcscope::ui::{LessonBar, Picker, View};

const RECORDINGS: [&str; 3] = ["stalled.rec", "stalled-notify.rec", "healthy.rec"];
const W: u16 = 160;
const H: u16 = 45;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Units and symbols drawn after numbers.
const UNITS: &[&str] = &["B", "K", "M", "G", "KiB", "MiB", "GiB", "Hz", "s", "ms", "µs", "us", "ns", "/s", "%"];

/// The few lowercase or capitalised words that stay as they are, each for
/// a reason: the program's own name, proper names of systems and the
/// name of the other language on the language switch, and key caps as
/// printed on the keyboard.
const NAMES: &[&str] = &[
    "ipcscope", // the program
    "Mach", "Linux", "Windows", "Vista", "Unix", "macOS", "launchd", "Chrome",  // systems and programs
    "English", // the language switch names the other language in itself
    "space", "enter", "esc", "tab", "Alt", "Shift", "Ctrl", // keys
    "fd",   // POSIX's name of a file descriptor, as in `fd[0]`
    "p50", "p90", "p99", "p999", // percentiles
];

/// One ASCII token (a run of printable ASCII between spaces, Hangul and
/// drawing characters) is allowed when it is code or a figure, by rule:
/// - a call or a subscript: `write()`, `mach_msg(SEND)`, `fd[0]`;
/// - a path or an address: starts with `/` or has a `\` (`/dev/shm/…`,
///   `\RPC Control\…`), `@0x7f…`;
/// - an identifier: has `_` (`F_GETPIPE_SZ`, `mq_maxmsg`), or is in
///   camelCase (`NtAlpcConnectPort`), or ALL CAPS (`FIONREAD`, `TCP`);
/// - a dotted name: `msg.size`, `edu.ipcscope.echo`;
/// - an assignment `name=value` (the name is a variable);
/// - a number, hex (`0x303`) or a number with a unit (`64.0K`, `3.0s`);
/// - a mode string (`rw-------`, `rw-s`);
/// - one letter (a symbol: `t`, `p`, `n`), but not the words `a` and `I`;
/// - one of `NAMES`.
///
/// Tokens joined by `/ , : + - < > …` are judged piece by piece.
fn allowed(tok: &str) -> bool {
    // A hex dump's characters column (`ipcsring........`).
    if tok.contains("..") {
        return true;
    }
    let mut tok = tok.trim_matches(|c: char| ",.;:!?\"'`".contains(c));
    // Parentheses around the token, not part of it: `(FIFO)`, `(read(),`.
    loop {
        let (open, close) = (tok.matches('(').count(), tok.matches(')').count());
        let t = if tok.starts_with('(') && open > close {
            &tok[1..]
        } else if tok.ends_with(')') && close > open {
            &tok[..tok.len() - 1]
        } else if tok.starts_with('(') && tok.ends_with(')') && tok[1..].find(')') == Some(tok.len() - 2) {
            &tok[1..tok.len() - 1]
        } else {
            break;
        };
        tok = t.trim_matches(|c: char| ",.;:!?\"'`".contains(c));
    }
    if tok.is_empty() || !tok.chars().any(|c| c.is_ascii_alphabetic()) {
        return true;
    }
    if NAMES.contains(&tok) || UNITS.contains(&tok) {
        return true;
    }
    let letters = tok.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if letters == 1 && tok.len() == 1 {
        return tok != "a" && tok != "I";
    }
    // A call or a subscript, a path, an identifier.
    let balanced = |o: char, c: char| tok.contains(o) && tok.ends_with(c) && !tok.starts_with(o);
    if balanced('(', ')') || balanced('[', ']') || tok.contains(":[") {
        return true;
    }
    // An address (`@0x7f…`), a path (`/dev/shm/…`, `\\RPC Control\\…`).
    let tok = tok.strip_prefix('@').unwrap_or(tok);
    if tok.starts_with('/') || tok.starts_with("…/") || tok.contains('\\') || tok.contains('_') {
        return true;
    }
    if let Some((name, _)) = tok.split_once('=') {
        return !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._()[]".contains(c));
    }
    let alpha: String = tok.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    if alpha.len() >= 2 && alpha.chars().all(|c| c.is_ascii_uppercase()) {
        return true;
    }
    let camel = tok.as_bytes().windows(2).any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
    if camel {
        return true;
    }
    // Dotted names, with letters on both sides of a dot.
    let parts: Vec<&str> = tok.split('.').collect();
    if parts.len() > 1
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && parts.iter().filter(|p| p.chars().any(|c| c.is_ascii_alphabetic())).count() >= 2
    {
        return true;
    }
    // Hex and numbers with units.
    if let Some(h) = tok.strip_prefix("0x") {
        return h.chars().all(|c| c.is_ascii_hexdigit() || c == '…');
    }
    let digits_end = tok.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(tok.len());
    if digits_end > 0 && UNITS.contains(&&tok[digits_end..]) {
        return true;
    }
    if tok.len() >= 4 && tok.contains('-') && tok.chars().all(|c| "-rwxsStTp".contains(c)) {
        return true;
    }
    // Pieces joined by punctuation.
    for sep in ['/', ',', ':', '+', '-', '<', '>', '…', '(', ')', '[', ']'] {
        if tok.contains(sep) {
            return tok.split(sep).all(allowed);
        }
    }
    false
}

/// A line without its code: spans in backticks and the argument lists
/// of calls (`mq_send(fd, buf, len, prio)`). With an odd number of
/// backticks a span runs on from the line before or to the next one: both
/// readings are returned.
fn prose(line: &str) -> Vec<String> {
    let strip = |line: &str, open: bool| -> String {
        let mut out = String::new();
        let mut code = open;
        for piece in line.split('`') {
            if !code {
                out.push_str(piece);
            }
            out.push(' ');
            code = !code;
        }
        // Argument lists: from `name(` to its `)`.
        let mut res = String::new();
        let mut depth = 0usize;
        let mut prev = ' ';
        for c in out.chars() {
            if depth == 0 && c == '(' && (prev.is_ascii_alphanumeric() || prev == '_') {
                depth = 1;
                res.push_str("()");
            } else if depth > 0 {
                depth = match c {
                    '(' => depth + 1,
                    ')' => depth - 1,
                    _ => depth,
                };
            } else {
                res.push(c);
            }
            prev = c;
        }
        // An assignment `in = 11`: the name is a variable.
        res.replace(" = ", "=")
    };
    if line.matches('`').count() % 2 == 1 {
        vec![strip(line, false), strip(line, true)]
    } else {
        vec![strip(line, false)]
    }
}

/// The plain English words of a frame: each as `word (line N)`.
fn english_words(frame: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in frame.lines().enumerate() {
        // A row of a hex dump: its bytes (`6e`, `c1`) are figures.
        let byte = |tok: &str| tok.len() == 2 && tok.chars().all(|c| c.is_ascii_hexdigit());
        let dump = line.split(' ').filter(|tok| byte(tok)).count() >= 8;
        let words = |text: &String| -> Vec<String> {
            text.split(|c: char| !(c.is_ascii_graphic() || c == '…' || c == 'µ'))
                .filter(|tok| !(allowed(tok) || dump && byte(tok)))
                .map(str::to_string)
                .collect()
        };
        let found = prose(line).iter().map(words).min_by_key(Vec::len).unwrap_or_default();
        for tok in found {
            if !out.iter().any(|o: &String| o.starts_with(&format!("{tok} "))) {
                out.push(format!("{tok} (line {})", n + 1));
            }
        }
    }
    out
}

#[test]
fn the_rule_knows_code_from_words() {
    for ok in [
        "write()",
        "mach_msg(SEND)",
        "fd[0]",
        "pipe:[1209908]",
        "/dev/shm/ipcscope-1-ab-shm",
        "F_GETPIPE_SZ",
        "MACH_SEND_TIMED_OUT",
        "NtAlpcConnectPort",
        "msg.size",
        "\"edu.ipcscope.echo\"",
        "t=3.1s",
        "0x303",
        "64.0K/64.0K",
        "16384",
        "3.0s",
        "rw-------",
        "10",
        "Hz",
        "p",
        "ipcscope",
        "FIFO)",
        "(/proc/sys/fs/mqueue)",
        "(read(),",
        "1000/s",
        "0/64.0K",
        "ipcsring........",
        "0x…",
        "p99",
    ] {
        assert!(allowed(ok), "{ok} is code or a figure");
    }
    for word in ["messages", "slots", "consumer", "server", "in", "out", "c1", "a", "read/write", "quit", "inode"] {
        assert!(!allowed(word), "{word} is an English word");
    }
    assert_eq!(english_words("╭ 생산자 server 12 ─╮ write() in 3"), ["server (line 1)", "in (line 1)"]);
    // Code in backticks and argument lists is code, even broken over lines.
    assert!(english_words("`mkfifo(path, mode)` 만듭니다 mq_send(fd, buf, len, prio)").is_empty());
    assert!(english_words("만듭니다 `mkfifo(path,\nmode)` 또").is_empty());
    assert_eq!(english_words("`cat` reads"), ["reads (line 1)"]);
    assert!(english_words("0000  69 70 63 73 72 69 6e 67 10 00 00 00 00 00 00 c1  ipcsring........").is_empty());
    assert!(english_words("slot[10] ← 256 B; in = 11").is_empty());
}

fn request(focus: Option<usize>, kinds: Vec<Kind>, view: View) -> Request {
    Request { at: None, width: W, height: H, format: Format::Text, focus, kinds, view: View { lang: Lang::Ko, ..view } }
}

/// Panels judged by their own tests (`mach_and_socket_panels_are_korean`,
/// `alpc_panel_is_korean`), not by the Linux mechanisms' ones.
const THEIRS: [Kind; 3] = [Kind::Mach, Kind::Alpc, Kind::Socket];

/// Korean frames of `kinds` from every recording at two instants, at the
/// projector size and the smallest (compact forms say things in other
/// words): each panel zoomed, and the grid of them when `grid`.
fn frames_of(kinds: &[Kind], grid: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in RECORDINGS {
        for at in [Some(1.0), None] {
            let snap = render::snapshot_at(&fixture(name), at).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let shown: Vec<Kind> = snap.mechanisms.iter().map(|m| m.kind).filter(|k| kinds.contains(k)).collect();
            for (w, h) in [(W, H), (80, 24)] {
                let sized = |focus| Request { width: w, height: h, ..request(focus, shown.clone(), View::default()) };
                if grid {
                    out.push((format!("{name} {w}x{h} grid"), render::draw(&snap, &sized(None)).unwrap()));
                }
                for (i, k) in shown.iter().enumerate() {
                    let frame = render::draw(&snap, &sized(Some(i + 1))).unwrap();
                    out.push((format!("{name} {w}x{h} {} zoomed", k.name()), frame));
                }
            }
        }
    }
    out
}

fn report(frames: &[(String, String)]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|(what, frame)| {
            let words = english_words(frame);
            (!words.is_empty()).then(|| format!("{what}: {}\n{frame}", words.join(", ")))
        })
        .collect()
}

/// The grid of the Linux mechanisms and each of them zoomed (with its
/// lesson pane), from every recording.
#[test]
fn korean_frames_have_no_english_words() {
    let mine: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| !THEIRS.contains(k)).collect();
    let frames = frames_of(&mine, true);
    assert!(frames.len() >= RECORDINGS.len() * 2 * 2 * 5);
    let bad = report(&frames);
    assert!(bad.is_empty(), "{} frames with English words:\n{}", bad.len(), bad.join("\n"));
}

/// The Korean view of step `i` of a lesson, its bar's checks read off `snap`.
fn korean_step_view(sc: &Scenario, i: usize, snap: &Snapshot) -> View {
    let st = &sc.steps[i];
    let bar = LessonBar {
        title: sc.title.ko.clone(),
        step: i + 1,
        total: sc.steps.len(),
        caption: st.caption.ko.clone(),
        checks: scenario::bar_checks(st, snap, Lang::Ko),
        over: false,
        show: st.show.clone(),
    };
    View { lang: Lang::Ko, lesson: Some(bar), ..View::default() }
}

/// The lesson bar's rows (not the panels: those are the other tests'
/// business) of every step of the shipped lessons `which` picks.
fn lesson_bars(snap: &Snapshot, which: impl Fn(&Scenario) -> bool) -> Vec<(String, String)> {
    let mut frames = Vec::new();
    for (name, text) in SHIPPED {
        let sc = Scenario::parse(name, text).unwrap();
        if !which(&sc) {
            continue;
        }
        for i in 0..sc.steps.len() {
            let view = korean_step_view(&sc, i, snap);
            let frame = render::draw(snap, &request(None, sc.kinds.clone(), view.clone())).unwrap();
            let body = ipcscope::ui::screen(ratatui::layout::Rect::new(0, 0, W, H), &view).body;
            let rows: Vec<&str> = frame
                .lines()
                .enumerate()
                .filter(|(n, _)| !(body.y as usize..(body.y + body.height) as usize).contains(n))
                .map(|(_, l)| l)
                .collect();
            frames.push((format!("{name} step {}", i + 1), rows.join("\n")));
        }
    }
    frames
}

fn theirs(sc: &Scenario) -> bool {
    sc.kinds.iter().any(|k| THEIRS.contains(k))
}

/// The help overlay, the lesson picker and the cost table (over the
/// Linux mechanisms' panels), and the lesson bar of every step of the
/// lessons about them.
#[test]
fn korean_overlays_and_lesson_bars_have_no_english_words() {
    let snap = render::snapshot_at(&fixture("stalled.rec"), None).unwrap();
    let mine: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| !THEIRS.contains(k)).collect();
    let mut frames = Vec::new();
    // The overlays over an empty screen: only their own words are judged.
    let empty = Snapshot { mechanisms: Vec::new(), ..snap.clone() };
    let overlay = |view: View| ipcscope::ui::render_text(&empty, &View { lang: Lang::Ko, ..view }, W, H);
    frames.push(("help".to_string(), overlay(View { help: true, ..View::default() })));
    let items =
        SHIPPED.iter().map(|(n, text)| (n.to_string(), Scenario::parse(n, text).unwrap().title.ko)).collect::<Vec<_>>();
    frames
        .push(("picker".to_string(), overlay(View { picker: Some(Picker { items, selected: 0 }), ..View::default() })));
    // The footer and header over the Linux mechanisms.
    frames.push(("grid".to_string(), render::draw(&snap, &request(None, mine, View::default())).unwrap()));
    let costs = View { costs: true, ..View::default() };
    frames.push(("costs".to_string(), render::draw(&snap, &request(None, Kind::ALL.to_vec(), costs)).unwrap()));
    frames.extend(lesson_bars(&snap, |sc| !theirs(sc)));
    let bad = report(&frames);
    assert!(bad.is_empty(), "{} frames with English words:\n{}", bad.len(), bad.join("\n"));
}

/// Mach and sockets, zoomed, in the grid of every mechanism but ALPC, and
/// the lesson bars of their lessons.
#[test]
fn mach_and_socket_panels_are_korean() {
    let ours = [Kind::Mach, Kind::Socket];
    let mut frames = frames_of(&ours, false);
    let but_alpc: Vec<Kind> = Kind::ALL.iter().copied().filter(|&k| k != Kind::Alpc).collect();
    frames.extend(frames_of(&but_alpc, true).into_iter().filter(|(w, _)| w.ends_with("grid")));
    let snap = render::snapshot_at(&fixture("stalled.rec"), None).unwrap();
    frames
        .extend(lesson_bars(&snap, |sc| sc.kinds.iter().any(|k| ours.contains(k)) && !sc.kinds.contains(&Kind::Alpc)));
    let bad = report(&frames);
    assert!(bad.is_empty(), "{} frames with English words:\n{}", bad.len(), bad.join("\n"));
}

/// ALPC, zoomed and in the full grid, and the lesson bars of its lessons.
#[test]
fn alpc_panel_is_korean() {
    // healthy.rec was recorded before the RPC trace became keys with
    // arguments: it stores the trace as English text, which a replay can
    // only show as stored. The newer recordings carry the keys.
    let mut frames: Vec<_> =
        frames_of(&[Kind::Alpc], false).into_iter().filter(|(w, _)| !w.starts_with("healthy.rec")).collect();
    frames.extend(frames_of(&Kind::ALL, true).into_iter().filter(|(w, _)| w.ends_with("grid")));
    let snap = render::snapshot_at(&fixture("stalled.rec"), None).unwrap();
    frames.extend(lesson_bars(&snap, |sc| sc.kinds.contains(&Kind::Alpc)));
    let bad = report(&frames);
    assert!(bad.is_empty(), "{} frames with English words:\n{}", bad.len(), bad.join("\n"));
}

/// Hangul is stored composed (NFC): a decomposed syllable looks the same
/// but is measured, wrapped and searched differently. NFC never leaves a
/// conjoining jamo (U+1100–U+11FF, U+A960–U+A97F, U+D7B0–U+D7FF) where it
/// composes into a syllable, nor a combining mark after a letter that has
/// a composed form; our texts use neither, so any of them is a defect.
#[test]
fn korean_text_is_nfc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("assets/locales.toml")];
    for dir in ["assets/lessons", "assets/scenarios"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            files.push(e.path());
        }
    }
    let decomposed = |c: char| matches!(c, '\u{1100}'..='\u{11ff}' | '\u{a960}'..='\u{a97f}' | '\u{d7b0}'..='\u{d7ff}' | '\u{0300}'..='\u{036f}');
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            assert!(!line.chars().any(decomposed), "{}:{} is not NFC", f.display(), n + 1);
        }
    }
    assert!(files.len() > 20);
    // The check sees a decomposed 한 (ᄒ ᅡ ᆫ).
    assert!("\u{1112}\u{1161}\u{11ab}".chars().any(decomposed) && !"한".chars().any(decomposed));
}

/// Every Korean lesson bar stays inside its border at 80 columns: no row
/// of the bar is wider than the screen and the border closes.
#[test]
fn korean_lesson_bar_fits_80_columns() {
    let snap: Snapshot = render::snapshot_at(&fixture("stalled.rec"), None).unwrap();
    for (name, text) in SHIPPED {
        let sc = Scenario::parse(name, text).unwrap();
        for i in 0..sc.steps.len() {
            let view = korean_step_view(&sc, i, &snap);
            let req = Request { width: 80, height: 24, ..request(None, sc.kinds.clone(), view.clone()) };
            let frame = render::draw(&snap, &req).unwrap();
            let at = |n: usize| format!("{name} step {}: line {}:\n{frame}", i + 1, n + 1);
            for (n, line) in frame.lines().enumerate() {
                let w = unicode_width::UnicodeWidthStr::width(line);
                assert!(w <= 80, "{w} columns at {}", at(n));
            }
            // The bar's box: closed on both sides on every row.
            let r = ipcscope::ui::screen(ratatui::layout::Rect::new(0, 0, 80, 24), &view).bar.expect("a bar");
            let rows: Vec<&str> = frame.lines().skip(r.y as usize).take(r.height as usize).collect();
            assert!(rows[0].starts_with('┌') && rows[0].ends_with('┐'), "{}", at(r.y as usize));
            let last = rows.len() - 1;
            assert!(rows[last].starts_with('└') && rows[last].ends_with('┘'), "{}", at(r.y as usize + last));
            for (k, row) in rows[1..last].iter().enumerate() {
                assert!(row.starts_with('│') && row.ends_with('│'), "{}", at(r.y as usize + k + 1));
                assert_eq!(unicode_width::UnicodeWidthStr::width(*row), 80, "{}", at(r.y as usize + k + 1));
            }
        }
    }
}

fn ipcscope(args: &[&str], lang_env: Option<&str>) -> String {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ipcscope"));
    cmd.args(args).env_remove("LC_ALL").env_remove("LC_MESSAGES").env("LANG", lang_env.unwrap_or("C"));
    let out = cmd.output().expect("run ipcscope");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `--help` of the program and of every command follows `--lang` (either
/// spelling) and `LANG`, and says nothing in plain English.
#[test]
fn help_follows_the_language() {
    let subs = ["snapshot", "lesson", "replay", "render", "soak", "knobs", "clean", "bench"];
    let mut pages = vec![("--help --lang ko".to_string(), ipcscope(&["--help", "--lang", "ko"], None))];
    pages.push(("LANG=ko_KR --help".into(), ipcscope(&["--help"], Some("ko_KR.UTF-8"))));
    for s in subs {
        pages.push((format!("{s} --help --lang=ko"), ipcscope(&[s, "--help", "--lang=ko"], None)));
        pages.push((format!("LANG=ko {s} -h"), ipcscope(&[s, "-h"], Some("ko_KR.UTF-8"))));
    }
    pages.push(("help render".into(), ipcscope(&["--lang", "ko", "help", "render"], None)));
    for (what, page) in &pages {
        assert!(page.contains("사용법:") && page.contains("옵션:"), "{what}:\n{page}");
        // The usage line, a listed command or option is typed as it is:
        // only what is said about it is judged.
        let said: Vec<&str> = page
            .lines()
            .filter(|l| !l.starts_with("사용법: ipcscope"))
            .map(|l| match l.strip_prefix("  ") {
                Some(item) => item.trim_start().split_once("  ").map_or("", |(_, d)| d),
                None => l,
            })
            .collect();
        let words = english_words(&said.join("\n"));
        assert!(words.is_empty(), "{what}: {}\n{page}", words.join(", "));
    }
    // English stays English, and --lang en wins over a Korean LANG.
    for en in [ipcscope(&["--help"], None), ipcscope(&["--help", "--lang", "en"], Some("ko_KR.UTF-8"))] {
        assert!(
            en.contains("Usage:") && en.contains("Watch real processes communicate") && !en.contains("사용법"),
            "{en}"
        );
    }
}

/// `ipcscope knobs` in Korean: the keys, values and defaults as they are
/// typed, every meaning in Korean words.
#[test]
fn knobs_follow_the_language() {
    use ipcscope::knobs::KnobId;
    let ko = ipcscope(&["knobs", "--lang", "ko"], None);
    assert_eq!(ko, ipcscope(&["knobs"], Some("ko_KR.UTF-8")));
    let en = ipcscope(&["knobs"], None);
    assert!(en.starts_with("knob ") && ko.starts_with("설정 "), "{ko}");
    let w = KnobId::ALL.iter().map(|k| k.key().len()).max().unwrap();
    for id in KnobId::ALL {
        let k = id.spec();
        let range = k.range().replace(" or ", "|");
        let line = ko.lines().find(|l| l.starts_with(&format!("{} ", k.key))).unwrap_or_else(|| panic!("{}", k.key));
        let lead = format!("{:w$}  {:24}  {:8}  ", k.key, range, k.default);
        let meaning = line.strip_prefix(&lead).unwrap_or_else(|| panic!("{line:?} does not start {lead:?}"));
        let words = english_words(meaning);
        assert!(words.is_empty(), "{}: {}: {meaning}", k.key, words.join(", "));
        assert!(meaning.chars().any(|c| ('가'..='힣').contains(&c)), "{}: {meaning}", k.key);
    }
}

/// The lesson texts of a mechanism (`assets/lessons/NAME.ko.md`), whole:
/// the pane scrolls, so more is read than one frame shows.
fn lesson_text_words(kinds: &[Kind]) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/lessons");
    let mut bad = Vec::new();
    for k in kinds {
        let text = std::fs::read_to_string(dir.join(format!("{}.ko.md", k.name()))).unwrap();
        let words = english_words(&text);
        if !words.is_empty() {
            bad.push(format!("{}.ko.md: {}", k.name(), words.join(", ")));
        }
    }
    bad
}

#[test]
fn korean_lesson_texts_have_no_english_words() {
    let mine: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| !THEIRS.contains(k)).collect();
    let bad = lesson_text_words(&mine);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn their_lesson_texts_are_korean() {
    let bad = lesson_text_words(&THEIRS);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Keys of the Mach, ALPC and socket panels and their kernels' notes.
fn theirs_key(k: &str) -> bool {
    let k = k.trim_start_matches("obs_").trim_start_matches("note_");
    ["mach", "alpc", "sock", "emu", "ep_", "mgr_", "reach_"].iter().any(|p| k.starts_with(p))
}

/// Every Korean label and note of assets/locales.toml (`which` keys), with
/// its `{placeholders}` filled by a figure, has no plain English word —
/// also those no recorded frame happens to show.
fn locale_words(which: impl Fn(&str) -> bool) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/locales.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let mut bad = Vec::new();
    for table in ["labels", "notes"] {
        for (k, e) in v[table].as_table().unwrap() {
            let Some(ko) = e.get("ko").and_then(|x| x.as_str()).filter(|_| which(k)) else { continue };
            let mut filled = String::new();
            for (i, piece) in ko.split('{').enumerate() {
                match piece.split_once('}').filter(|_| i > 0) {
                    Some((_, rest)) => filled.push_str(&format!("7{rest}")),
                    None => filled.push_str(piece),
                }
            }
            let words = english_words(&filled);
            if !words.is_empty() {
                bad.push(format!("{k}: {} — {ko}", words.join(", ")));
            }
        }
    }
    bad
}

#[test]
fn korean_labels_and_notes_have_no_english_words() {
    let bad = locale_words(|k| !theirs_key(k));
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn their_labels_and_notes_are_korean() {
    let bad = locale_words(theirs_key);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Every Mach call line the workers write (`format_call`, as the events
/// pane shows it) reads in Korean: the calls, constants and names stay,
/// the words around them (`received … on`, `(reply port)`, `(id …)`) are
/// translated.
#[test]
fn mach_event_lines_are_korean() {
    use ipcscope::mechanisms::mach::workload::format_call;
    use ipcscope::ui::widgets::call_text;
    let mut lines = vec![
        // A received reply by its id, and the recorded form with a sequence number.
        "mach_msg(RCV, rcv_name=0x303) = MACH_MSG_SUCCESS (id 1100)".to_string(),
        "mach_msg(RCV, rcv_name=0x303) = MACH_MSG_SUCCESS (id 1100, seq 3)".to_string(),
    ];
    // Receives (MACH_RCV_MSG = 2) of a reply, a notification, the kernel's
    // task_info answer and the other thread's message.
    let talk = ipcscope::mechanisms::mach::workload::THREAD_TALK_ID as u64;
    let received = [[2, 0x303, 1100], [2, 0x303, 72], [2, 0x303, 3505], [2, 0x303, talk]];
    for call in 1..=12u64 {
        let args = [[0x303, 0x403, 0], [0x303, 0x403, 1], [0x303, 0x403, 2], [66, 0x503, 1], [0x5, 0x303, 1000]];
        for a in args.into_iter().chain(received) {
            for ret in [0, 0x1000_0004] {
                lines.push(format_call(call, a, ret));
            }
        }
    }
    let english: Vec<String> = lines
        .iter()
        .map(|l| (l, call_text(l, Lang::Ko)))
        .filter(|(_, ko)| !english_words(ko).is_empty() && !ko.starts_with("call "))
        .map(|(l, ko)| format!("{l} → {ko}: {}", english_words(&ko).join(", ")))
        .collect();
    assert!(english.is_empty(), "{}", english.join("\n"));
    // The lines above did reach the words they are about.
    let ko: Vec<String> = lines.iter().map(|l| call_text(l, Lang::Ko)).collect();
    for said in ["msgh_id 1100", "순번 3", "task_info 응답", "다른 스레드에서", "응답 포트", "받음", "합류"]
    {
        assert!(ko.iter().any(|l| l.contains(said)), "{said} in none of:\n{}", ko.join("\n"));
    }
}

/// The NT kernel's call lines (as `mechanisms::alpc` formats them, in
/// recordings old and new) read in Korean apart from the calls, statuses
/// and message types.
#[test]
fn alpc_event_lines_are_korean() {
    use ipcscope::ui::widgets::call_text;
    let lines = [
        "NtAlpcSendWaitReceivePort(port=0x2c, LPC_REQUEST, 4096 bytes via section @0x1000) = STATUS_SUCCESS",
        "NtAlpcSendWaitReceivePort(port=0x4) → LPC_REQUEST id=7, 120 bytes copied = STATUS_SUCCESS",
        "NtAlpcSendWaitReceivePort(port=0x4) → LPC_REQUEST id=42, 4076 bytes via section @0x0 = STATUS_SUCCESS",
        "NtAlpcSendWaitReceivePort(port=0x4, LPC_REQUEST, 200000 bytes left for direct access) = STATUS_SUCCESS",
        "NtAlpcSendWaitReceivePort(port=0x4, receive) = STATUS_SUCCESS",
        "NtAlpcCreateSectionView(port=0x4, 65536 bytes) → view @0x7f00 = STATUS_SUCCESS",
        "NtAlpcConnectPort(\\RPC Control\\ipcscope-echo) → port 0x4  [ipcscope: asks for a 65536-byte section] = STATUS_SUCCESS",
        "[ipcscope only, no NT call] the kernel records the PR_SET_PTRACER grant = STATUS_SUCCESS",
    ];
    for l in lines {
        let ko = call_text(l, Lang::Ko);
        assert!(english_words(&ko).is_empty(), "{l} → {ko}: {:?}", english_words(&ko));
        assert_ne!(ko, l, "nothing translated in {l}");
    }
}
