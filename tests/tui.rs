//! The live TUI in a real terminal (tmux): it starts, shows live PIDs,
//! reacts to keys, and `q` (or a signal) gives the terminal back with
//! nothing left running.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;

use common::*;

/// The pids shown after "pid" on screen.
fn screen_pids(screen: &str) -> Vec<i32> {
    let words: Vec<&str> = screen.split(|c: char| c.is_whitespace() || c == '│').filter(|w| !w.is_empty()).collect();
    words.windows(2).filter(|w| w[0] == "pid").filter_map(|w| w[1].parse().ok()).collect()
}

fn run_and_quit(quit: impl Fn(&Tmux)) {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("{EXE} --mechanisms pipe"), 100, 30) else {
        return;
    };
    let s = t
        .wait_screen("the pipe panel with two live pids", |s| s.contains("ordinary pipe") && screen_pids(s).len() == 2);
    let pids = screen_pids(&s);
    for &p in &pids {
        assert!(process_alive(p), "pid {p} on screen is not a live process");
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap();
        assert!(comm.starts_with("pipe-"), "pid {p} is {comm:?}");
    }
    assert!(t.alternate_on());
    quit(&t);
    let s = t.wait_screen("the program to exit", |s| s.contains("EXITED"));
    assert!(s.contains("EXITED 0") || s.contains("EXITED 1"), "{s}");
    assert!(!t.alternate_on(), "alternate screen still on");
    assert!(!s.contains("panicked"), "{s}");
    // Nothing of the run survives.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| process_alive(p)) {
        assert!(Instant::now() < deadline, "workers survived the TUI");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn q_quits_and_restores_the_terminal() {
    run_and_quit(|t| t.keys("q"));
}

#[test]
fn ctrl_c_quits_cleanly() {
    run_and_quit(|t| t.keys("C-c"));
}

#[test]
fn sigterm_quits_cleanly() {
    run_and_quit(|_| {
        let out = Command::new("pgrep").args(["-f", &format!("^{EXE} --mechanisms pipe")]).output().unwrap();
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            Command::new("kill").args(["-TERM", pid]).status().unwrap();
        }
    });
}

#[test]
fn keys_pause_and_stall() {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("{EXE} --mechanisms pipe"), 100, 30) else {
        return;
    };
    t.wait_screen("live pids", |s| screen_pids(s).len() == 2);
    // Stall the consumer: '<' steps consumer.rate down to 0.
    for _ in 0..16 {
        t.keys("<");
    }
    t.wait_screen("a blocked producer", |s| s.contains("BLOCKED in write"));
    t.keys("Space");
    t.wait_screen("PAUSED and STOPPED", |s| s.contains("PAUSED") && s.contains("STOPPED"));
    t.keys("?");
    t.wait_screen("help", |s| s.contains("SIGSTOP"));
    t.keys("Escape");
    t.keys("l");
    t.wait_screen("Korean labels", |s| s.contains("생산자"));
    t.keys("q");
    t.wait_screen("exit", |s| s.contains("EXITED 0"));
}

#[test]
fn a_small_terminal_gets_a_notice_not_garbage() {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("{EXE} --mechanisms pipe"), 60, 20) else {
        return;
    };
    t.wait_screen("the size notice", |s| s.contains("80×24"));
    t.keys("q");
    t.wait_screen("exit", |s| s.contains("EXITED 0"));
}
