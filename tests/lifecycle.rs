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
    assert_clean_dir(supervisor, workers, what, &ipcscope::supervisor::rundir::dir_for(supervisor as u32));
}

fn assert_clean_dir(supervisor: i32, workers: &[i32], what: &str, dir: &std::path::Path) {
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

/// One field of /proc/PID/stat: the state letter (R, S, T, Z…), or None
/// when the process is gone.
fn state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Wait (bounded) until `pred` holds; panics saying `what` otherwise.
fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The run's workers are all up: at least `n` of them, and a shm object.
fn wait_for_workers(sup: i32, n: usize) -> Vec<i32> {
    let mut workers = Vec::new();
    wait_until(&format!("{n} workers of run {sup}"), || {
        workers = run_processes(sup);
        workers.len() >= n && !shm_objects(sup).is_empty()
    });
    workers
}

/// The janitor of run `sup`: `ipcs-janitor`, started as `ipcscope janitor SUP …`.
fn janitor_of(sup: i32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let ours = comm.trim() == "ipcs-janitor"
            && args.get(1) == Some(&&b"janitor"[..])
            && args.get(2) == Some(&sup.to_string().as_bytes());
        ours.then_some(pid)
    })
}

/// SIGKILLs a process the test started if the test ends early, so a
/// failing test (on old code) leaves no TUI stopped forever.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if process_alive(self.0) {
            signal(self.0, "KILL");
        }
    }
}

/// A runtime directory of the test's own (`XDG_RUNTIME_DIR`), so that no
/// other run's sweep of `/tmp/ipcscope-<uid>` cleans up after ours. Removed
/// on drop, with whatever a failed run left in it.
struct PrivateRuntime(std::path::PathBuf);

impl PrivateRuntime {
    fn new() -> PrivateRuntime {
        use std::os::unix::fs::DirBuilderExt;
        let p =
            std::env::temp_dir().join(format!("lifecycle-xdg-{}-{}", std::process::id(), common::tmux::rand_suffix()));
        std::fs::DirBuilder::new().mode(0o700).create(&p).unwrap();
        PrivateRuntime(p)
    }

    fn run_dir(&self, sup: i32) -> std::path::PathBuf {
        self.0.join(format!("ipcscope-{sup}"))
    }
}

impl Drop for PrivateRuntime {
    fn drop(&mut self) {
        for e in std::fs::read_dir(&self.0).into_iter().flatten().flatten() {
            ipcscope::supervisor::cleanup::remove_run(&e.path());
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A double fault: the janitor is killed outright, then the TUI. Nobody is
/// left to clean up but the workers themselves, and they must: no process,
/// shm object, message queue or run directory of the run remains.
fn janitor_then_tui(paused: bool) {
    let what = if paused { "janitor and TUI killed, paused" } else { "janitor and TUI killed" };
    let _g = serial();
    let xdg = PrivateRuntime::new();
    let cmd = format!("XDG_RUNTIME_DIR={} {EXE} --mechanisms pipe,fifo,shm,mq,socket", xdg.0.display());
    let Some(t) = Tmux::start(&cmd, 120, 40) else { return };
    t.wait_screen("panels", |s| s.contains("ordinary pipe"));
    let sup = t.program_pid().expect("the TUI's pid");
    let _kill = KillOnDrop(sup);
    assert!(xdg.run_dir(sup).is_dir(), "{what}: the run dir is not in the private runtime dir");
    let workers = wait_for_workers(sup, 9);
    assert!(!run_queues(sup).is_empty(), "{what}: no message queue to clean up");
    if paused {
        t.keys(" ");
        // Every worker stopped: a stopped process runs no signal handler.
        wait_until("every worker stopped", || workers.iter().all(|&p| state(p).is_none_or(|s| s == 'T')));
    }
    let mut janitor = None;
    wait_until("the janitor", || {
        janitor = janitor_of(sup);
        janitor.is_some()
    });
    let janitor = janitor.unwrap();
    signal(janitor, "KILL");
    wait_until("the janitor's death", || !process_alive(janitor));
    signal(sup, "KILL");
    let t0 = Instant::now();
    wait_until("the TUI's death", || !process_alive(sup));
    assert_clean_dir(sup, &workers, what, &xdg.run_dir(sup));
    eprintln!("{what}: seen clean {} ms after the SIGKILL (with the checks' own time)", t0.elapsed().as_millis());
}

#[test]
fn sigkill_of_the_janitor_then_the_tui() {
    janitor_then_tui(false);
}

#[test]
fn sigkill_of_the_janitor_then_the_tui_while_paused() {
    janitor_then_tui(true);
}

/// An interactive bash (job control on) in tmux, ready at its prompt.
fn job_shell() -> Option<(Tmux, i32)> {
    let t = Tmux::start("env PS1='ready> ' bash --norc --noprofile -i", 120, 40)?;
    t.wait_screen("the prompt", |s| s.contains("ready>"));
    let bash = t.program_pid().expect("bash's pid");
    Some((t, bash))
}

/// The TUI the shell `bash` started.
fn tui_of(bash: i32) -> i32 {
    let mut pid = None;
    wait_until("the TUI under bash", || {
        let children = std::fs::read_to_string(format!("/proc/{bash}/task/{bash}/children")).unwrap_or_default();
        pid = children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
            .find(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "ipcscope"));
        pid.is_some()
    });
    pid.unwrap()
}

/// The TUI ends, and does not sit stopped (state T) on the way.
fn wait_ended(what: &str, sup: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(sup) {
        assert!(Instant::now() < deadline, "{what}: the TUI did not end (state {:?})", state(sup));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `ipcscope &` stops on SIGTTOU when it reaches for the terminal, its
/// workers already running; `kill %1` (SIGTERM, then SIGCONT) must end it
/// and its whole run, not stop it again.
#[test]
fn a_background_job_ended_by_kill_percent() {
    let _g = serial();
    let Some((t, bash)) = job_shell() else { return };
    t.keys(&format!("{EXE} --mechanisms pipe,fifo,shm,mq,socket &"));
    t.keys("Enter");
    let sup = tui_of(bash);
    let _kill = KillOnDrop(sup);
    let workers = wait_for_workers(sup, 9);
    wait_until("the background job stopped on the terminal", || state(sup) == Some('T'));
    t.keys("kill %1");
    t.keys("Enter");
    wait_ended("kill %1", sup);
    assert_clean(sup, &workers, "kill %1");
    assert!(!t.alternate_on(), "kill %1: the alternate screen is on");
}

/// The running TUI is stopped (the shell takes the terminal back),
/// continued in the background, then sent SIGTERM: it must end, run and
/// all, without stopping on SIGTTOU while it gives the terminal back.
#[test]
fn stopped_continued_then_sigterm() {
    let _g = serial();
    let Some((t, bash)) = job_shell() else { return };
    t.keys(&format!("{EXE} --mechanisms pipe,fifo,shm,mq,socket"));
    t.keys("Enter");
    t.wait_screen("panels", |s| s.contains("ordinary pipe"));
    let sup = tui_of(bash);
    let _kill = KillOnDrop(sup);
    let workers = wait_for_workers(sup, 9);
    signal(sup, "STOP");
    t.wait_screen("the shell noticing", |s| s.contains("Stopped"));
    signal(sup, "CONT");
    wait_until("the TUI running again", || state(sup).is_some_and(|s| s != 'T'));
    signal(sup, "TERM");
    wait_ended("STOP, CONT, TERM", sup);
    assert_clean(sup, &workers, "STOP, CONT, TERM");
    // Given back from the background too (tmux may take a moment to read it).
    wait_until("STOP, CONT, TERM: the alternate screen off", || !t.alternate_on());
}

/// A session run by a program not called `ipcscope` (this test binary, or
/// any program built on the library) is a live run: another run's sweep
/// (`ipcscope clean`, or any start-up) leaves its dir and objects alone.
/// The run dir's owner record (pid + start time) says so, not the name.
#[test]
fn a_sweep_keeps_a_live_session_of_another_program() {
    let _g = serial();
    let sess = session(&[ipcscope::mechanisms::Kind::Shm], &[]);
    let s = wait_for(&sess, "shm flowing", Duration::from_secs(10), |s| s.mechanisms[0].integrity.delivered > 0);
    let dir = ipcscope::supervisor::rundir::dir_for(std::process::id());
    let prefix = format!("ipcscope-{}-", std::process::id());
    let objects = || -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<String>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|n: &String| n.starts_with(&prefix))
            .collect()
    };
    assert!(dir.exists() && !objects().is_empty());
    // Our reaper may collect the child's status: the run has ended either way.
    let _ = Command::new(EXE).arg("clean").env_remove("IPCSCOPE_SUPERVISOR").output();
    assert!(dir.exists(), "a sweep removed a live session's run dir");
    assert!(!objects().is_empty(), "a sweep removed a live session's shared memory");
    let after = wait_for(&sess, "shm still flowing", Duration::from_secs(10), |n| {
        n.mechanisms[0].integrity.delivered > s.mechanisms[0].integrity.delivered
    });
    let p = pids(&after);
    drop(sess);
    assert_nothing_left(&p);
}
