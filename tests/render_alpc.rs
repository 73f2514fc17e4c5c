//! The ALPC panel drawn from snapshots recorded from real runs
//! (`tests/fixtures/alpc-*.json`), in both languages, at the classroom's
//! two sizes, alone (focused, with the object directory, the headers and
//! the RPC layers) and in a grid. A `.snap` diff is a diff of the screen.

use ipcscope::i18n::Lang;
use ipcscope::snapshot::Snapshot;
use ipcscope::ui::render_text;

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
