//! Helpers shared by the end-to-end tests: run the real binary, run a
//! session in-process against the real binary's workers, and check that
//! nothing was left behind.
#![allow(dead_code)]

pub mod fixtures;
pub mod tmux;

use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipcscope::knobs::Knobs;
use ipcscope::mechanisms::Kind;
use ipcscope::session::Session;
use ipcscope::snapshot::{MechanismSnapshot, Snapshot};

pub const EXE: &str = env!("CARGO_BIN_EXE_ipcscope");

/// In-process sessions reap with waitpid(-1), so two in one test binary
/// would reap each other's children: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run the binary. Holds the serial lock: an in-process session's reaper
/// would otherwise collect this child's exit status before `output()`.
pub fn ipcscope(args: &[&str]) -> Output {
    let _g = serial();
    Command::new(EXE).args(args).env_remove("IPCSCOPE_SUPERVISOR").output().expect("run ipcscope")
}

/// `ipcscope snapshot --format json` for one or more mechanisms.
pub fn snapshot_json(mechanisms: &str, duration: &str, sets: &[&str]) -> Snapshot {
    let mut args = vec!["snapshot", "--mechanisms", mechanisms, "--duration", duration, "--format", "json"];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let out = ipcscope(&args);
    assert!(out.status.success(), "ipcscope {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("snapshot JSON")
}

pub fn mech(s: &Snapshot, kind: Kind) -> &MechanismSnapshot {
    s.mechanism(kind).unwrap_or_else(|| panic!("no {kind:?} in snapshot"))
}

/// A session in this process, its workers run from the real binary.
pub fn session(kinds: &[Kind], sets: &[&str]) -> Session {
    let mut knobs = Knobs::default();
    for s in sets {
        knobs.set_str(s).unwrap();
    }
    Session::start_with_exe(EXE.into(), kinds, knobs, 20).expect("start session")
}

/// Wait (bounded) until a snapshot satisfies `pred`; returns it, or the
/// last one seen with a panic message saying what never happened.
pub fn wait_for(session: &Session, what: &str, timeout: Duration, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(s) = session.snapshots.recv_timeout(Duration::from_millis(200)) {
            if pred(&s) {
                return s;
            }
            last = Some(s);
        }
    }
    panic!("timed out waiting for: {what}\nlast snapshot: {}", serde_json::to_string_pretty(&last).unwrap());
}

/// Nothing of ours is left: no run dir, no /dev/shm object, no process.
/// Leftovers of a killed supervisor are removed by its janitor within a
/// moment, so this waits a little before it complains.
pub fn assert_nothing_left(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|&p| p > 0 && process_alive(p)).collect();
        let shm: Vec<String> = std::fs::read_dir("/dev/shm")
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let shm: Vec<String> =
            shm.into_iter().filter(|n| n.contains(&format!("ipcscope-{}-", std::process::id()))).collect();
        let dir = ipcscope::supervisor::rundir::dir_for(std::process::id());
        if alive.is_empty() && shm.is_empty() && !dir.exists() {
            return;
        }
        if Instant::now() > deadline {
            panic!("left behind: processes {alive:?}, shm {shm:?}, run dir exists: {}", dir.exists());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

pub fn pids(s: &Snapshot) -> Vec<i32> {
    s.mechanisms.iter().flat_map(|m| m.processes.iter().map(|p| p.pid)).collect()
}

/// After a `snapshot` run of the binary: its workers are gone, its run dir
/// and its shared-memory objects too.
pub fn assert_run_gone(s: &Snapshot) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = pids(s).into_iter().filter(|&p| p > 0 && process_alive(p)).collect();
        let dir_exists = std::path::Path::new(&s.run.runtime_dir).exists();
        let prefix = format!("ipcscope-{}-", s.run.pid);
        let shm: Vec<String> = std::fs::read_dir("/dev/shm")
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let shm: Vec<String> = shm.into_iter().filter(|n| n.starts_with(&prefix)).collect();
        if alive.is_empty() && !dir_exists && shm.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("run {} left behind: processes {alive:?}, run dir {dir_exists}, shm {shm:?}", s.run.pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch directory of this test process, removed on drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("ipcscope-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    pub fn path(&self, f: &str) -> std::path::PathBuf {
        self.0.join(f)
    }
    /// A FIFO named `f` inside it.
    pub fn fifo(&self, f: &str) -> std::path::PathBuf {
        let p = self.path(f);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
