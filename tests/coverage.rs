//! `ipcscope lesson --coverage`: the lecture notes' 39 claims, each with the
//! lesson step that shows it, checked on real processes for the observation
//! and for its words on screen at a size; and the lesson bar's sentences.

mod common;

use common::*;
use ipcscope::i18n::Lang;
use ipcscope::scenario::{self, coverage, Scenario};
use ipcscope::snapshot::Snapshot;
use ipcscope::ui::{self, LessonBar, View};

#[test]
fn coverage_lists_the_39_claims_and_every_gap_says_why() {
    for lang in ["en", "ko"] {
        let out = ipcscope(&["lesson", "--coverage", "--lang", lang]);
        let text = String::from_utf8_lossy(&out.stdout);
        // Nothing is ✓ before it is checked.
        assert_eq!(out.status.code(), Some(1), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"0/39"), "{text}");
        let rows: Vec<&str> = lines.iter().copied().filter(|l| !l.starts_with("    ") && *l != "0/39").collect();
        assert_eq!(rows.len(), 39, "{text}");
        for (i, row) in rows.iter().enumerate() {
            assert!(row.trim_start().starts_with(&format!("{}  ", i + 1)), "{row}");
            assert!(row.ends_with('·') || row.ends_with('✗'), "{row}");
        }
        // Every ✗ is followed by its reason.
        for (i, l) in lines.iter().enumerate() {
            if l.ends_with('✗') {
                let why = lines.get(i + 1).unwrap_or(&"");
                assert!(why.starts_with("    ") && why.trim().len() > 20, "{l}\n{why}");
            }
        }
    }
}

#[test]
fn the_map_names_shipped_steps_and_what_must_be_seen() {
    let claims = coverage::shipped().unwrap();
    for c in &claims {
        if let (Some(l), Some(s)) = (&c.lesson, c.step) {
            let sc = Scenario::find(l).unwrap();
            assert!(s >= 1 && s <= sc.steps.len(), "claim {}", c.id);
            assert!(c.missing.is_some() || !c.words(Lang::Ko).is_empty(), "claim {}", c.id);
        } else {
            assert!(c.missing.is_some(), "claim {} has no step and no reason", c.id);
        }
    }
}

/// One lesson's claims, played on real processes at the projector size:
/// each ✓ only with the observation and the words in the frame; at a size
/// too small for the words the same claim is ✗ and says which are missing.
#[test]
fn coverage_check_plays_the_lesson_and_looks_at_the_frame() {
    let out = ipcscope(&["lesson", "shm-unrelated", "--coverage", "--check", "--size", "160x45", "--lang", "en"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.lines().last(), Some("7/7"), "{text}");
    assert!(text.lines().filter(|l| l.ends_with('✓')).count() == 7, "{text}");

    // What a claim looks for must be drawn in the frame of its step: at
    // 80x24 client-1's name space (claim 8's "thread 2") is on screen
    // because the step asks for it (`show`), and not without.
    let snap = snapshot_json("mach", "2", &["producer.rate=5", "consumer.rate=3"]);
    let sc = Scenario::find("mach-reply-ports").unwrap();
    let with = coverage::body_text(&sc, 0, &snap, Lang::En, (80, 24));
    assert!(with.contains("thread 2 0x") && with.contains("0x103 task self"), "{with}");
    let mut bare = sc.clone();
    bare.steps[0].show.clear();
    let without = coverage::body_text(&bare, 0, &snap, Lang::En, (80, 24));
    assert!(!without.contains("thread 2 0x"), "{without}");
}

#[test]
fn coverage_refuses_a_bad_size_in_one_line() {
    for size in ["80", "10x10", "axb"] {
        let out = ipcscope(&["lesson", "--coverage", "--check", "--size", size]);
        assert_eq!(out.status.code(), Some(2), "{size}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

/// The Korean lesson bar at 80 columns: a sentence, not a JSON path, and
/// every row inside the border.
#[test]
fn the_korean_lesson_bar_says_a_sentence_inside_its_border_at_80_columns() {
    let snap: Snapshot =
        serde_json::from_str(&std::fs::read_to_string("tests/fixtures/alpc-callbacks.json").unwrap()).unwrap();
    for (name, i) in [("alpc-rpc", 1), ("mach-queue-full", 1), ("alpc-paths", 0)] {
        let sc = Scenario::find(name).unwrap();
        let step = &sc.steps[i];
        let checks = scenario::bar_checks(step, &snap, Lang::Ko);
        let sentence = step.seen.as_ref().unwrap().ko.clone();
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].0, sentence);
        let bar = LessonBar {
            title: sc.title.ko.clone(),
            step: i + 1,
            total: sc.steps.len(),
            caption: step.caption.ko.clone(),
            checks,
            over: false,
            show: step.show.clone(),
        };
        let view = View { lang: Lang::Ko, lesson: Some(bar), ..View::default() };
        let frame = ui::render_text(&snap, &view, 80, 24);
        let rows: Vec<&str> = frame.lines().collect();
        let top = rows.iter().position(|l| l.starts_with("┌ 수업")).unwrap_or_else(|| panic!("{frame}"));
        let bottom = top + rows[top..].iter().position(|l| l.starts_with('└')).unwrap();
        for r in &rows[top + 1..bottom] {
            assert!(r.starts_with('│') && r.ends_with('│'), "{name}: a row leaves its border:\n{frame}");
            assert_eq!(unicode_width::UnicodeWidthStr::width(*r), 80, "{name}:\n{frame}");
        }
        let bar_text = rows[top..=bottom].join("\n");
        assert!(!bar_text.contains("/detail/") && !bar_text.contains(" > 0"), "{name}: a JSON path:\n{bar_text}");
        assert!(bar_text.contains("관찰:"), "{name}:\n{bar_text}");
    }
}
