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

#[test]
fn lists_with_repeats_or_empty_items_are_refused() {
    one_line_error(&["snapshot", "--mechanisms", "pipe,pipe"], &["\"pipe\"", "twice"]);
    one_line_error(&["snapshot", "--mechanisms", "pipe,,fifo"], &["empty item 2", "pipe,,fifo"]);
    one_line_error(&["snapshot", "--mechanisms", "pipe,"], &["empty item 2"]);
    one_line_error(&["bench", "--mechanisms", "pipe,pipe"], &["twice"]);
    one_line_error(&["bench", "--sizes", "64,,4096"], &["empty item 2"]);
}

#[test]
fn bench_round_ms_out_of_range_is_refused_not_clamped() {
    one_line_error(&["bench", "--round-ms", "0"], &["--round-ms", "1", "10000", "got 0"]);
    one_line_error(&["bench", "--round-ms", "10001"], &["--round-ms", "got 10001"]);
}

#[test]
fn hidden_subcommands_run_by_hand_say_so() {
    for (args, what) in [
        (&["worker", "pipe", "producer", "--slot", "0"][..], "worker"),
        (&["kernel", "mach", "--slot", "0"], "kernel"),
        (&["janitor", "1", "/nonexistent"], "janitor"),
    ] {
        one_line_error(args, &[&format!("ipcscope: {what} is started by ipcscope itself, not by hand")]);
    }
}

/// `--record` is accepted anywhere on the line (it is global), but a
/// command that observes nothing says so instead of ignoring it.
#[test]
fn record_with_a_command_that_records_nothing_is_refused() {
    let file = std::env::temp_dir().join(format!("ipcscope-norecord-{}.rec", std::process::id()));
    let f = file.to_str().unwrap();
    for args in [&["knobs", "--record", f][..], &["clean", "--record", f], &["soak", "--record", f]] {
        one_line_error(args, &["records nothing"]);
    }
    assert!(!file.exists(), "nothing was written");
}

/// `ipcscope lesson --list | head -1`: the reader is gone before we write.
/// Rust ignores SIGPIPE, so `println!` used to panic (exit 101).
#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    for args in [
        &["lesson", "--list"][..],
        &["knobs"],
        &["clean"],
        &["snapshot", "-m", "pipe", "--duration", "0.2", "--format", "json"],
        &["snapshot", "-m", "pipe", "--duration", "0.2"],
    ] {
        let _g = serial();
        // A pipe whose read end is closed: every write to it is EPIPE.
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let out = std::process::Command::new(EXE)
            .args(args)
            .env_remove("IPCSCOPE_SUPERVISOR")
            .stdout(std::process::Stdio::from(w))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}
