//! Every way a run can end leaves nothing behind — no process of the run,
//! no /dev/shm object, no message queue, no FIFO or socket file, no run
//! directory — and gives the terminal back.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::*;

/// Every process that carries the run's marker in its environment.
fn run_processes(supervisor: i32) -> Vec<i32> {
    let marker = format!("IPCSCOPE_SUPERVISOR={supervisor}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()) && process_alive(pid) {
                out.push(pid);
            }
        }
    }
    out
}

/// POSIX message queues of the run, listed through a private mount of the
/// mqueue file system (the machine's own mounts are not touched).
fn run_queues(supervisor: i32) -> Vec<String> {
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue && ls -1 /dev/mqueue"])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|n| n.starts_with(&format!("ipcscope-{supervisor}-")))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn shm_objects(supervisor: i32) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(&format!("ipcscope-{supervisor}-")))
        .collect()
}

fn assert_clean(supervisor: i32, workers: &[i32], what: &str) {
    let dir = ipcscope::supervisor::rundir::dir_for(supervisor as u32);
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let procs: Vec<i32> = workers.iter().copied().filter(|&p| process_alive(p)).collect();
        let marked = run_processes(supervisor);
        let shm = shm_objects(supervisor);
        let queues = run_queues(supervisor);
        if procs.is_empty() && marked.is_empty() && shm.is_empty() && queues.is_empty() && !dir.exists() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: left behind: processes {procs:?} {marked:?}, shm {shm:?}, queues {queues:?}, run dir {}",
            dir.exists()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start the TUI with every Linux mechanism, wait until their processes
/// run, end it with `end`, and check what is left.
fn ending(what: &str, env: &str, restores_terminal: bool, end: impl Fn(&Tmux, i32)) {
    let _g = serial();
    let cmd = format!("{env} {EXE} --mechanisms pipe,fifo,shm,mq,socket");
    let Some(t) = Tmux::start(&cmd, 120, 40) else { return };
    t.wait_screen("panels", |s| s.contains("ordinary pipe"));
    let sup = t.program_pid().expect("the TUI's pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut workers = run_processes(sup);
    while workers.len() < 9 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        workers = run_processes(sup);
    }
    assert!(workers.len() >= 9, "{what}: only {} workers started", workers.len());
    assert!(!shm_objects(sup).is_empty(), "{what}: no shm object to clean up");
    end(&t, sup);
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(sup) {
        assert!(Instant::now() < deadline, "{what}: the TUI did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_clean(sup, &workers, what);
    if restores_terminal {
        assert!(!t.alternate_on(), "{what}: the alternate screen is still on");
    }
}

fn signal(pid: i32, sig: &str) {
    Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status().unwrap();
}

#[test]
fn quit_key() {
    ending("q", "", true, |t, _| t.keys("q"));
}

#[test]
fn sigterm() {
    ending("SIGTERM", "", true, |_, pid| signal(pid, "TERM"));
}

#[test]
fn sigquit() {
    ending("SIGQUIT", "", true, |_, pid| signal(pid, "QUIT"));
}

#[test]
fn sighup_terminal_closed() {
    ending("SIGHUP", "", true, |_, pid| signal(pid, "HUP"));
}

#[test]
fn panic_in_the_ui_thread() {
    ending("panic in the UI", "IPCSCOPE_FAULT=panic-ui", true, |_, _| {});
}

#[test]
fn panic_in_the_monitor_thread() {
    ending("panic in the monitor", "IPCSCOPE_FAULT=panic-monitor", true, |_, _| {});
}

/// SIGKILL runs no handler: the workers die by PR_SET_PDEATHSIG and the
/// janitor removes the objects and gives the terminal back.
#[test]
fn sigkill_of_the_tui() {
    ending("SIGKILL", "", true, |_, pid| signal(pid, "KILL"));
}

/// The window itself closes: tmux hangs up the terminal.
#[test]
fn terminal_window_closed() {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("{EXE} --mechanisms pipe,shm"), 100, 30) else { return };
    t.wait_screen("panels", |s| s.contains("ordinary pipe"));
    let sup = t.program_pid().expect("the TUI's pid");
    std::thread::sleep(Duration::from_millis(500));
    let workers = run_processes(sup);
    assert!(workers.len() >= 4);
    drop(t);
    assert_clean(sup, &workers, "window closed");
    assert!(!process_alive(sup), "the TUI outlived its terminal");
}

#[test]
fn a_killed_worker_is_shown_and_the_rest_go_on() {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("{EXE} --mechanisms pipe,shm"), 120, 40) else { return };
    t.wait_screen("panels", |s| s.contains("ordinary pipe") && s.contains("shared memory"));
    let sup = t.program_pid().unwrap();
    // `k` kills the selected (first) panel's consumer.
    t.keys("k");
    t.wait_screen("the pipe consumer's death", |s| s.contains("SIGKILL") || s.contains("SIGPIPE"));
    let workers = run_processes(sup);
    assert!(workers.len() >= 2, "the shared-memory pair should still run: {workers:?}");
    t.keys("r");
    t.wait_screen("the restarted pair", |s| !s.contains("SIGPIPE"));
    t.keys("q");
    t.wait_screen("exit", |s| s.contains("EXITED 0"));
    assert_clean(sup, &workers, "after k, r and q");
}

#[test]
fn clean_spares_a_live_run_and_two_runs_do_not_disturb_each_other() {
    let _g = serial();
    let Some(a) = Tmux::start(&format!("{EXE} --mechanisms pipe,shm"), 100, 30) else { return };
    let b = Tmux::start(&format!("{EXE} --mechanisms pipe,shm"), 100, 30).unwrap();
    for t in [&a, &b] {
        t.wait_screen("panels", |s| s.contains("shared memory"));
    }
    let (pa, pb) = (a.program_pid().unwrap(), b.program_pid().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let out = Command::new(EXE).arg("clean").output().unwrap();
    assert!(out.status.success());
    for p in [pa, pb] {
        assert!(!shm_objects(p).is_empty(), "clean removed live run {p}'s objects");
        assert!(ipcscope::supervisor::rundir::dir_for(p as u32).exists());
    }
    let wb = run_processes(pb);
    a.keys("q");
    a.wait_screen("exit", |s| s.contains("EXITED 0"));
    // Run B is untouched by A's exit.
    assert_eq!(run_processes(pb), wb);
    assert!(!shm_objects(pb).is_empty());
    b.keys("q");
    b.wait_screen("exit", |s| s.contains("EXITED 0"));
    assert_clean(pb, &wb, "second run");
}
