//! Bad input gets one clear line and exit 2; nothing is started.

mod common;

use common::*;

fn one_line_error(args: &[&str], must_mention: &[&str]) {
    let out = ipcscope(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for m in must_mention {
        assert!(err.contains(m), "{args:?}: {err:?} does not mention {m:?}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_mechanism_names_the_choices() {
    one_line_error(&["snapshot", "--mechanisms", "carrier-pigeon"], &["carrier-pigeon", "pipe"]);
}

#[test]
fn unknown_knob_names_the_knobs() {
    one_line_error(&["snapshot", "--set", "pipe.colour=blue"], &["pipe.colour", "producer.rate"]);
}

#[test]
fn bad_knob_values() {
    one_line_error(&["snapshot", "--set", "msg.size=1"], &["msg.size", "32.."]);
    one_line_error(&["snapshot", "--set", "pipe.close_unused=maybe"], &["true|false"]);
    one_line_error(&["snapshot", "--set", "producer.rate=fast"], &["max"]);
    one_line_error(&["snapshot", "--set", "noequals"], &["KEY=VALUE"]);
}

#[test]
fn bad_flags_and_sizes() {
    one_line_error(&["--frobnicate"], &["--frobnicate"]);
    one_line_error(&["snapshot", "--size", "80"], &["WIDTHxHEIGHT"]);
    one_line_error(&["snapshot", "--size", "0x10"], &["WIDTHxHEIGHT"]);
    one_line_error(&["snapshot", "--format", "xml"], &["xml"]);
    one_line_error(&["snapshot", "--duration", "-1"], &[]);
    one_line_error(&["--lang", "fr"], &["ko", "en"]);
    one_line_error(&["--hz", "0"], &["0"]);
}

#[test]
fn the_tui_without_a_terminal_suggests_snapshot() {
    // Our stdin/stdout are not a terminal here.
    one_line_error(&[], &["terminal", "snapshot"]);
}

#[test]
fn knobs_are_listed_with_ranges_and_defaults() {
    let out = ipcscope(&["knobs"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for k in ["producer.rate", "consumer.rate", "msg.size", "pipe.capacity", "pipe.close_unused", "pipe.duplex"] {
        assert!(text.contains(k), "{k} missing from:\n{text}");
    }
}

#[test]
fn text_snapshot_has_no_escape_codes() {
    let out = ipcscope(&["snapshot", "-m", "pipe", "--duration", "0.3", "--size", "100x30"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\x1b'));
    assert_eq!(text.lines().count(), 30);
    assert!(text.contains("ordinary pipe"));
}

#[test]
fn a_too_small_frame_says_so() {
    let out = ipcscope(&["snapshot", "-m", "pipe", "--duration", "0.2", "--size", "60x20"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("at least 80×24"));
}
