//! The ALPC panel drawn from snapshots recorded from real runs
//! (`tests/fixtures/alpc-*.json`), in both languages, at the classroom's
//! two sizes, alone (focused, with the object directory, the headers and
//! the RPC layers) and in a grid. A `.snap` diff is a diff of the screen.

use std::collections::HashSet;

use ipcscope::i18n::Lang;
use ipcscope::snapshot::{Detail, Snapshot};
use ipcscope::ui::{render_text, Theme, View};

mod common;
use common::fixtures::view;

fn fixture(name: &str) -> Snapshot {
    let path = format!("{}/tests/fixtures/alpc-{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Three runs side by side, as the grid draws several panels.
fn grid() -> Snapshot {
    let mut s = fixture("callbacks");
    for name in ["direct", "stalled"] {
        s.mechanisms.push(fixture(name).mechanisms.remove(0));
    }
    s
}

#[test]
fn focused_small_and_large() {
    for (name, lang) in [("callbacks", Lang::En), ("callbacks", Lang::Ko), ("direct", Lang::En), ("stalled", Lang::Ko)]
    {
        let s = fixture(name);
        let l = if lang == Lang::En { "en" } else { "ko" };
        insta::assert_snapshot!(format!("alpc_{name}_{l}_80x24"), render_text(&s, &view(lang), 80, 24));
        insta::assert_snapshot!(format!("alpc_{name}_{l}_160x45"), render_text(&s, &view(lang), 160, 45));
    }
}

#[test]
fn grid_small_and_large() {
    let s = grid();
    for lang in [Lang::En, Lang::Ko] {
        let l = if lang == Lang::En { "en" } else { "ko" };
        insta::assert_snapshot!(format!("alpc_grid_{l}_80x24"), render_text(&s, &view(lang), 80, 24));
        insta::assert_snapshot!(format!("alpc_grid_{l}_160x45"), render_text(&s, &view(lang), 160, 45));
    }
}

fn lang_name(l: Lang) -> &'static str {
    if l == Lang::En {
        "en"
    } else {
        "ko"
    }
}

/// One panel drawn alone into a cell of `w`×`h`, as text.
fn panel_text(s: &Snapshot, w: u16, h: u16, view: &View) -> String {
    let m = &s.mechanisms[0];
    let Detail::Alpc(d) = &m.detail else { unreachable!() };
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    term.draw(|f| ipcscope::ui::alpc::render(f, f.area(), m, d, 6, false, view)).unwrap();
    ipcscope::ui::buffer_text(term.backend().buffer())
}

/// The focused view's second pane drawn alone.
fn focus_text(s: &Snapshot, w: u16, h: u16, view: &View) -> String {
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    term.draw(|f| ipcscope::ui::alpc::render_focus(f, f.area(), s, view)).unwrap();
    ipcscope::ui::buffer_text(term.backend().buffer())
}

/// Cells a panel gets: the grid's at 80×24 … 200×60 (about 40×5 to
/// 66×19), the zoomed panel's (78×16 … 198×32), and the sizes between.
fn cells() -> Vec<(u16, u16)> {
    let widths =
        [30u16, 34, 38, 40, 44, 48, 50, 53, 58, 64, 66, 69, 70, 72, 78, 80, 98, 100, 118, 120, 158, 160, 198, 200];
    let heights = [3u16, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 21, 23, 28, 32, 40];
    widths.iter().flat_map(|&w| heights.iter().map(move |&h| (w, h))).collect()
}

const FIXTURES: [&str; 4] = ["callbacks", "waiting", "direct", "stalled"];

/// The figure of the notes at its compact and full sizes, in both
/// languages and in the default and projector themes: clients, the named
/// connection port with NT's main queue filling, each channel's pair of
/// communication ports, the section both map, and the path a message of
/// `msg.size` takes now, marked.
#[test]
fn alpc_diagrams() {
    for name in ["waiting", "stalled"] {
        let snap = fixture(name);
        for lang in [Lang::En, Lang::Ko] {
            for theme in [Theme::Default, Theme::Projector] {
                let v = View { lang, theme, ..View::default() };
                let tag = format!("{name}_{}_{}", lang_name(lang), theme.name());
                insta::assert_snapshot!(format!("alpc_tiny_{tag}"), panel_text(&snap, 40, 5, &v));
                insta::assert_snapshot!(format!("alpc_compact_{tag}"), panel_text(&snap, 53, 14, &v));
                insta::assert_snapshot!(format!("alpc_full_{tag}"), panel_text(&snap, 120, 23, &v));
            }
        }
    }
}

/// Which of the three paths the current message size takes is marked, by
/// the runtime's own rule against the run's limits: 100 bytes copied
/// through the queue, 256 (over 236 with the RPC header) in the section,
/// 1 MiB read directly — at the compact and the full size.
#[test]
fn the_path_taken_now_is_marked() {
    for (name, mark) in [("callbacks", "▶①"), ("waiting", "▶②"), ("direct", "▶③"), ("stalled", "▶②")] {
        let snap = fixture(name);
        for lang in [Lang::En, Lang::Ko] {
            let v = View { lang, ..View::default() };
            for (w, h) in [(40, 5), (38, 9), (53, 14), (66, 14), (78, 16), (158, 23)] {
                let text = panel_text(&snap, w, h, &v);
                assert!(text.contains(mark), "{name} {w}x{h}: {mark}\n{text}");
            }
        }
    }
}

/// ALPC processes read as NT: the call they are in and why, from the
/// kernel's tables — never "BLOCKED on socket", our transport's state.
#[test]
fn processes_show_their_nt_call_not_the_socket() {
    for lang in [Lang::En, Lang::Ko] {
        let v = View { lang, ..View::default() };
        let socket = ipcscope::i18n::t(lang, "st_blocked_socket");
        for name in FIXTURES {
            let snap = fixture(name);
            for (w, h) in cells() {
                let text = panel_text(&snap, w, h, &v);
                assert!(!text.contains(socket), "{name} {w}x{h}:\n{text}");
            }
        }
        let accept = ipcscope::i18n::t(lang, "emu_wait_accept");
        let text = panel_text(&fixture("stalled"), 53, 14, &v);
        // Roles in the reader's language: client-1, 클라이언트-1.
        let client = |n: &str| ipcscope::i18n::tf(lang, "alpc_client_n", &[("n", n.to_string())]);
        assert!(text.contains(&format!("◇ {} NtAlpcConnectPort — {accept}", client("1"))), "{text}");
        let reply = ipcscope::i18n::t(lang, "emu_wait_reply");
        let text = panel_text(&fixture("waiting"), 66, 14, &v);
        assert!(text.contains(&format!("{} NtAlpcSendWaitReceivePort — {reply}", client("2"))), "{text}");
        // Zoomed, the Linux side, labelled as the transport.
        let text = panel_text(&fixture("waiting"), 158, 23, &v);
        assert!(text.contains(ipcscope::i18n::t(lang, "alpc_transport")), "{text}");
        assert!(!panel_text(&fixture("waiting"), 53, 14, &v).contains("__skb_wait"));
    }
}

/// The compact figure keeps the connection port (named when there is
/// room, its queue filling), the channels and the section.
#[test]
fn the_compact_figure_keeps_ports_and_section() {
    for lang in [Lang::En, Lang::Ko] {
        let v = View { lang, ..View::default() };
        let conn = ipcscope::i18n::t(lang, "alpc_conn_port");
        let text = panel_text(&fixture("waiting"), 53, 14, &v);
        for want in [conn, "\\ipcscope-echo", "2/712", "◀══", "0x4", "0x8", "0x14", "64.0K", "╔", "╚"] {
            assert!(text.contains(want), "lacks {want:?}:\n{text}");
        }
    }
}

/// Words of the snapshot, the locale file and the panel drawn large: the
/// whole forms a smaller drawing may show.
fn vocabulary(snap: &Snapshot, large: &[String]) -> (HashSet<String>, HashSet<String>) {
    let mut words = HashSet::new();
    let locales: toml::Table = toml::from_str(include_str!("../assets/locales.toml")).unwrap();
    for table in locales.values().filter_map(|t| t.as_table()) {
        for entry in table.values().filter_map(|e| e.as_table()) {
            for text in entry.values().filter_map(|v| v.as_str()) {
                words.extend(tokens(text));
            }
        }
    }
    words.extend(tokens(&serde_json::to_string(snap).unwrap()));
    for text in large {
        words.extend(tokens(text));
    }
    let mut prefixes = HashSet::new();
    for w in &words {
        let chars: Vec<char> = w.chars().collect();
        for k in 1..chars.len() {
            prefixes.insert(chars[..k].iter().collect::<String>());
        }
    }
    (words, prefixes)
}

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// Tokens of `text` that are the start of a longer word and no word
/// themselves: `connection por`, `655` of `65536`, Korean `단방` of
/// `단방향`. The counts of `…N more` are left aside.
fn cut_tokens(text: &str, vocab: &(HashSet<String>, HashSet<String>)) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find(|c: char| c.is_alphanumeric() || c == '_') {
            let after_ellipsis = rest[..at].ends_with('…');
            let tail = &rest[at..];
            let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(tail.len());
            let tok = &tail[..end];
            rest = &tail[end..];
            if after_ellipsis || tok.chars().count() < 2 {
                continue;
            }
            if vocab.1.contains(tok) && !vocab.0.contains(tok) {
                out.push(format!("{tok:?} in {line:?}"));
            }
        }
    }
    out
}

/// Never a cut number or word (`connection por` was the bug): at every
/// cell size, in both languages and every theme, each word drawn is whole.
#[test]
fn no_cut_number_or_word_at_any_size() {
    for name in FIXTURES {
        let snap = fixture(name);
        let large: Vec<String> = [Lang::En, Lang::Ko]
            .into_iter()
            .flat_map(|lang| {
                let v = View { lang, ..View::default() };
                [panel_text(&snap, 400, 60, &v), focus_text(&snap, 400, 40, &v)]
            })
            .collect();
        let vocab = vocabulary(&snap, &large);
        assert!(!cut_tokens("connection por", &vocab).is_empty());
        assert!(!cut_tokens("max_pool_usage=6553", &vocab).is_empty());
        for lang in [Lang::En, Lang::Ko] {
            for theme in Theme::ALL {
                let v = View { lang, theme, ..View::default() };
                for (w, h) in cells() {
                    let text = panel_text(&snap, w, h, &v);
                    let cut = cut_tokens(&text, &vocab);
                    assert!(cut.is_empty(), "{name} {w}x{h} {lang:?} {theme:?}: {cut:#?}\n{text}");
                }
                for (w, h) in [(78, 6), (78, 13), (98, 13), (118, 13), (158, 13), (198, 13)] {
                    let text = focus_text(&snap, w, h, &v);
                    let cut = cut_tokens(&text, &vocab);
                    assert!(cut.is_empty(), "{name} focus {w}x{h} {lang:?}: {cut:#?}\n{text}");
                }
            }
        }
    }
}

/// The compact panel a lesson shows at 80×24 (80×11) draws what the steps
/// observe, from a live run: the callbacks, the message that came with a
/// section view, one RPC call down the layers — and in Korean, Korean
/// roles and words (only API names stay English). The title says which
/// rules the kernel follows.
#[test]
fn the_compact_panel_shows_what_the_steps_observe() {
    // The callbacks step (alpc-rpc:2) and the section step (alpc-paths:2).
    let runs: [(&[&str], [&[&str]; 2]); 2] = [
        (
            &["alpc.callbacks=on", "producer.rate=200"],
            [
                &["LPC rules", "callbacks: the server", "RPC runtime", "ncalrpc:[ipcscope-echo]"],
                &["LPC 규칙", "콜백", "번: 서버가", "RPC 런타임", "ncalrpc:[ipcscope-echo]", "서버"],
            ],
        ),
        (&["msg.size=4096", "producer.rate=200"], [&["section @", "▶②"], &["섹션 @", "▶②"]]),
    ];
    for (sets, words) in runs {
        let s = common::snapshot_json("alpc", "3", sets);
        common::assert_run_gone(&s);
        for (lang, want) in [Lang::En, Lang::Ko].into_iter().zip(words) {
            let v = View { lang, ..View::default() };
            let text = panel_text(&s, 80, 11, &v);
            for w in want {
                assert!(text.contains(w), "{sets:?} {} 80x11 lacks {w:?}:\n{text}", lang_name(lang));
            }
            if lang == Lang::Ko {
                assert!(!text.contains("client-") && !text.contains(" server"), "English roles in Korean:\n{text}");
            }
        }
    }
}
