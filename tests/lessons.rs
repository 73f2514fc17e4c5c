//! Every shipped lesson, played headless on real processes: each step's
//! expected observation must actually be observed.

mod common;

use common::*;

#[test]
fn every_shipped_lesson_plays_and_each_step_is_observed() {
    for (name, _) in ipcscope::scenario::SHIPPED {
        let out = ipcscope(&["lesson", name, "--check"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "lesson {name}:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.lines().count() >= 2, "{text}");
        assert!(text.lines().all(|l| l.ends_with(": ok")), "{text}");
    }
}

#[test]
fn a_malformed_scenario_file_names_file_and_line() {
    let dir = std::env::temp_dir().join(format!("ipcscope-test-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(
        &f,
        "name = \"bad\"\nmechanisms = [\"pipe\"]\ntitle = { en = \"t\", ko = \"t\" }\n[[step]]\ncaption = { en = \"c\", ko = \"c\" }\nexpect = [\"pipe/channel/depth >>> 3\"]\n",
    )
    .unwrap();
    let out = ipcscope(&["lesson", f.to_str().unwrap(), "--check"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:6:"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn unknown_lesson_lists_the_shipped_ones() {
    let out = ipcscope(&["lesson", "no-such-lesson"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipe-blocking"), "{err}");
}
