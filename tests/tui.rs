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
    // Stall the consumer: one key.
    t.keys("c");
    t.wait_screen("a blocked producer", |s| s.contains("BLOCKED in write"));
    t.keys("Space");
    t.wait_screen("PAUSED and STOPPED", |s| s.contains("PAUSED") && s.contains("STOPPED"));
    t.keys("?");
    t.wait_screen("help", |s| s.contains("SIGSTOP"));
    t.keys("Escape");
    // An Escape followed at once by a key reads as Alt+key (a loaded CI
    // machine saw the help stay open and no `l`): wait for it to close.
    t.wait_screen("the help closed", |s| !s.contains("this help"));
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

// ---- The classroom's controls, in a real terminal ----

/// Every process under `pid` (its children, theirs, …) with its name.
fn descendants(pid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else { continue };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
                let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
                out.push((c, comm.trim().to_string()));
                todo.push(c);
            }
        }
    }
    out
}

/// Wait (bounded) until `pred` holds; panics saying `what` never happened.
fn wait_until(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The live worker named `comm` under the program `prog`.
fn worker(prog: i32, comm: &str) -> i32 {
    let find = || descendants(prog).into_iter().find(|(p, c)| c == comm && process_alive(*p)).map(|(p, _)| p);
    wait_until(&format!("a live {comm}"), || find().is_some());
    find().unwrap()
}

fn wchan(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default()
}

/// The run time the header shows (`t=4.2s`), in tenths of a second.
fn header_t(screen: &str) -> Option<u64> {
    let first = screen.lines().next()?;
    let at = first.find("t=")? + 2;
    let num: String = first[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    num.replace('.', "").parse().ok()
}

/// Let the monitor take a few more samples (the header's clock moves on).
fn let_samples_come(t: &Tmux) {
    let now = header_t(&t.screen()).unwrap_or(0);
    t.wait_screen("a few more samples", |s| header_t(s).is_some_and(|x| x >= now + 5));
}

/// Quit, and wait until every worker seen under the program is gone.
fn quit_leaving_nothing(t: &Tmux) {
    let workers: Vec<i32> =
        t.program_pid().map(|p| descendants(p).into_iter().map(|(p, _)| p).collect()).unwrap_or_default();
    t.keys("q");
    t.wait_screen("exit", |s| s.contains("EXITED 0"));
    wait_until("every worker gone", || workers.iter().all(|&p| !process_alive(p)));
}

/// Every snapshot of a recording.
fn recorded(path: &std::path::Path) -> Vec<ipcscope::snapshot::Snapshot> {
    let mut rec = ipcscope::record::Recording::open(path).expect("recording");
    rec.snapshots().map(|s| s.expect("snapshot")).collect()
}

fn knob_of(s: &ipcscope::snapshot::Snapshot, kind: ipcscope::mechanisms::Kind, key: &str) -> Option<String> {
    s.mechanism(kind)?.knobs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn received(s: &ipcscope::snapshot::Snapshot, kind: ipcscope::mechanisms::Kind) -> u64 {
    s.mechanism(kind).map_or(0, |m| m.processes.iter().filter(|p| p.role == "consumer").map(|p| p.received).sum())
}

#[test]
fn one_key_stalls_the_selected_panels_consumer_and_no_other() {
    use ipcscope::mechanisms::Kind::{Pipe, Shm};
    let _g = serial();
    let dir = Scratch::new("tui-stall");
    let rec = dir.path("rec");
    let Some(t) = Tmux::start(&format!("{EXE} -m pipe,shm --record {}", rec.display()), 120, 35) else {
        return;
    };
    t.wait_screen("the live run", |s| s.contains("LIVE"));
    let producer = worker(t.program_pid().unwrap(), "pipe-producer");
    // The pipe panel is selected: one key stalls its consumer.
    t.keys("c");
    t.wait_screen("the stall said", |s| s.contains("pipe: consumer stalled"));
    wait_until("the pipe's producer blocked on the full pipe", || wchan(producer).contains("pipe_write"));
    let_samples_come(&t);
    // The same key lets it read again.
    t.keys("c");
    t.wait_screen("the consumer reading again", |s| s.contains("pipe: consumer reads again"));
    wait_until("the pipe's producer out of write()", || !wchan(producer).contains("pipe_write"));
    let_samples_come(&t);
    quit_leaving_nothing(&t);

    let snaps = recorded(&rec);
    let stalled: Vec<_> = snaps.iter().filter(|s| knob_of(s, Pipe, "consumer.rate").as_deref() == Some("0")).collect();
    assert!(stalled.len() >= 4, "{} snapshots with the pipe's consumer stalled", stalled.len());
    for s in &stalled {
        assert_eq!(knob_of(s, Shm, "consumer.rate").as_deref(), Some("max"), "shm's consumer was stalled too");
    }
    let (mid, last) = (stalled[stalled.len() / 2], stalled[stalled.len() - 1]);
    assert_eq!(received(mid, Pipe), received(last, Pipe), "the pipe's consumer read while stalled");
    assert!(received(last, Shm) > received(stalled[0], Shm), "shm's consumer stopped reading");
    let end = snaps.last().unwrap();
    assert_eq!(knob_of(end, Pipe, "consumer.rate").as_deref(), Some("max"));
    assert!(received(end, Pipe) > received(last, Pipe));
}

#[test]
fn rate_keys_change_the_selected_panel_and_alt_every_panel() {
    use ipcscope::mechanisms::Kind::{Pipe, Shm};
    let _g = serial();
    let dir = Scratch::new("tui-rates");
    let rec = dir.path("rec");
    let Some(t) = Tmux::start(&format!("{EXE} -m pipe,shm --record {}", rec.display()), 120, 35) else {
        return;
    };
    t.wait_screen("the live run", |s| s.contains("LIVE"));
    t.keys("-");
    t.wait_screen("the pipe's rate", |s| s.contains("pipe: producer.rate = 500"));
    // A sample must record the pipe's new rate before the next key changes shm's.
    let_samples_come(&t);
    t.keys("Tab");
    t.keys("+");
    t.wait_screen("shm's rate", |s| s.contains("shm: producer.rate = 2000"));
    let_samples_come(&t);
    t.keys("M-+");
    t.wait_screen("every panel's rate", |s| s.contains("producer.rate = 2000 for every panel"));
    let_samples_come(&t);
    quit_leaving_nothing(&t);

    let snaps = recorded(&rec);
    let rates = |s: &ipcscope::snapshot::Snapshot| {
        (knob_of(s, Pipe, "producer.rate").unwrap_or_default(), knob_of(s, Shm, "producer.rate").unwrap_or_default())
    };
    let seen: Vec<(String, String)> = snaps.iter().map(rates).collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert!(seen.contains(&pair("500", "1000")), "{seen:?}");
    assert!(seen.contains(&pair("500", "2000")), "{seen:?}");
    assert_eq!(seen.last(), Some(&pair("2000", "2000")), "{seen:?}");
    // Never both changed by a key meant for one.
    assert!(!seen.contains(&pair("1000", "2000")) && !seen.contains(&pair("500", "500")), "{seen:?}");
}

#[test]
fn the_lesson_picker_keeps_the_run_and_esc_returns() {
    use ipcscope::mechanisms::Kind::{Pipe, Shm};
    let _g = serial();
    let dir = Scratch::new("tui-picker");
    let rec = dir.path("rec");
    let Some(t) = Tmux::start(&format!("{EXE} -m pipe,shm --record {}", rec.display()), 100, 30) else {
        return;
    };
    t.wait_screen("the live run", |s| s.contains("LIVE"));
    let prog = t.program_pid().unwrap();
    let shm = [worker(prog, "shm-producer"), worker(prog, "shm-consumer")];
    t.keys("L");
    t.wait_screen("the picker", |s| s.contains("pipe-blocking") && s.contains("mach-queue-full"));
    assert!(shm.iter().all(|&p| process_alive(p)), "the picker stopped the run");
    // A lesson on a mechanism that runs: played inside the run.
    t.keys("Enter");
    t.wait_screen("the lesson's first step", |s| s.contains("lesson 1/5"));
    t.keys("Right");
    t.wait_screen("the lesson's second step", |s| s.contains("lesson 2/5"));
    let producer = worker(prog, "pipe-producer");
    wait_until("the lesson's stalled pipe", || wchan(producer).contains("pipe_write"));
    assert!(shm.iter().all(|&p| process_alive(p)), "the lesson stopped the shm processes");
    // Samples must record the stalled pipe before the lesson is left.
    let_samples_come(&t);
    t.keys("Escape");
    t.wait_screen("back where we were", |s| s.contains("left the lesson") && !s.contains("lesson 2/5"));
    assert!(shm.iter().all(|&p| process_alive(p)), "leaving the lesson stopped the shm processes");
    // A lesson on a mechanism that does not run: a run of its own, and Esc
    // brings the pipe and shm back.
    t.keys("L");
    t.wait_screen("the picker", |s| s.contains("mach-queue-full"));
    t.keys("Down");
    t.keys("Down");
    t.keys("Enter");
    t.wait_screen("the Mach lesson", |s| s.contains("lesson 1/"));
    worker(prog, "mach-server");
    wait_until("the shm processes gone", || shm.iter().all(|&p| !process_alive(p)));
    t.keys("Escape");
    t.wait_screen("back where we were", |s| s.contains("left the lesson"));
    worker(prog, "shm-producer");
    worker(prog, "pipe-producer");
    wait_until("no Mach task left", || !descendants(prog).iter().any(|(_, c)| c.starts_with("mach-")));
    // The restored run must be sampled (and recorded) before the quit.
    t.wait_screen("the restored panels", |s| s.contains("shm") && !s.contains("Mach"));
    let_samples_come(&t);
    quit_leaving_nothing(&t);

    // The lesson's `consumer.rate=0` went to the pipe alone.
    let snaps = recorded(&rec);
    let stalled: Vec<_> = snaps.iter().filter(|s| knob_of(s, Pipe, "consumer.rate").as_deref() == Some("0")).collect();
    assert!(!stalled.is_empty());
    assert!(stalled.iter().all(|s| knob_of(s, Shm, "consumer.rate").as_deref() == Some("max")));
    let end = snaps.last().unwrap();
    assert_eq!(end.mechanisms.iter().map(|m| m.kind).collect::<Vec<_>>(), vec![Pipe, Shm]);
    assert_eq!(knob_of(end, Pipe, "consumer.rate").as_deref(), Some("max"), "the lesson's knobs were put back");
    assert_eq!(knob_of(end, Pipe, "producer.rate").as_deref(), Some("1000"), "the lesson's knobs were put back");
}

#[test]
fn after_the_last_step_the_bar_says_the_lesson_is_over_and_esc_leaves() {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("{EXE} lesson pipe-blocking"), 100, 30) else {
        return;
    };
    t.wait_screen("the first step", |s| s.contains("lesson 1/5") && s.contains("next step"));
    for step in 2..=5 {
        t.keys("Right");
        t.wait_screen("the next step", |s| s.contains(&format!("lesson {step}/5")));
    }
    let s = t.wait_screen("the last step", |s| s.contains("last step"));
    assert!(!s.contains("next step"), "{s}");
    t.keys("Right");
    t.wait_screen("the lesson over", |s| s.contains("lesson over"));
    let producer = worker(t.program_pid().unwrap(), "pipe-producer");
    t.keys("Escape");
    let s = t.wait_screen("the lesson left", |s| s.contains("left the lesson"));
    assert!(!s.contains("lesson 5/5"), "{s}");
    assert!(process_alive(producer), "the run ended with the lesson");
    quit_leaving_nothing(&t);
}
