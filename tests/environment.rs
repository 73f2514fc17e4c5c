//! A hostile environment gets a clear message, and what can still run
//! keeps running: a read-only /tmp or /dev/shm, queue limits lower than
//! asked, XDG_RUNTIME_DIR, NO_COLOR, a terminal resized to 1×1.

mod common;

use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;
use common::*;

/// Run ipcscope in a private mount namespace where `target` is a
/// read-only tmpfs (the machine's own mounts are untouched).
fn with_read_only(target: &str, args: &str) -> std::process::Output {
    let _g = serial();
    Command::new("unshare")
        .args(["-m", "sh", "-c", &format!("mount -t tmpfs -o ro tmpfs {target} && exec {EXE} {args}")])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("unshare (util-linux)")
}

#[test]
fn read_only_tmp_is_one_clear_line() {
    let out = with_read_only("/tmp", "snapshot -m pipe --duration 0.2");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/tmp") && err.contains("Read-only"), "{err}");
}

#[test]
fn read_only_dev_shm_stops_only_shared_memory() {
    let out = with_read_only("/dev/shm", "snapshot -m pipe,shm --duration 1 --format json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: ipcscope::snapshot::Snapshot = serde_json::from_slice(&out.stdout).unwrap();
    let pipe = mech(&s, ipcscope::mechanisms::Kind::Pipe);
    assert!(pipe.integrity.delivered > 100, "the pipe should keep working");
    let shm = mech(&s, ipcscope::mechanisms::Kind::Shm);
    let why = shm.processes[0].exit.clone().unwrap_or_default();
    assert!(why.contains("shm_open") && why.contains("Read-only"), "{why}");
}

#[test]
fn queue_limits_lower_than_asked_name_the_limit() {
    let s = snapshot_json("pipe,mq", "0.8", &["mq.maxmsg=64"]);
    assert!(mech(&s, ipcscope::mechanisms::Kind::Pipe).integrity.delivered > 100);
    assert!(s.mechanism(ipcscope::mechanisms::Kind::Mq).is_none());
    let p = s.run.problems.join("\n");
    assert!(p.contains("mq.maxmsg=64") && p.contains("msg_max"), "{p}");
    assert_run_gone(&s);
    // Alone, the same request is a runtime failure with the same reason.
    let out = ipcscope(&["snapshot", "-m", "mq", "--duration", "0.2", "--set", "mq.maxmsg=64"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("msg_max"));
}

#[test]
fn xdg_runtime_dir_is_used_when_set() {
    let _g = serial();
    let xdg = std::env::temp_dir().join(format!("scope-xdg-{}", std::process::id()));
    std::fs::create_dir_all(&xdg).unwrap();
    let out = Command::new(EXE)
        .args(["snapshot", "-m", "fifo", "--duration", "0.5", "--format", "json"])
        .env("XDG_RUNTIME_DIR", &xdg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let s: ipcscope::snapshot::Snapshot = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s.run.runtime_dir.starts_with(xdg.to_str().unwrap()), "{}", s.run.runtime_dir);
    assert_eq!(std::fs::read_dir(&xdg).unwrap().count(), 0, "left something in XDG_RUNTIME_DIR");
    std::fs::remove_dir(&xdg).unwrap();
}

#[test]
fn no_color_draws_without_colour() {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("NO_COLOR=1 {EXE} -m pipe"), 100, 30) else { return };
    t.wait_screen("panel", |s| s.contains("ordinary pipe"));
    let out = Command::new("tmux").args(["-L", &t.name, "capture-pane", "-e", "-p", "-t", &t.name]).output().unwrap();
    let raw = String::from_utf8_lossy(&out.stdout);
    // No colour in any SGR sequence (bold, reverse and the default-colour
    // resets 39/49 are fine).
    for seq in raw.split("\x1b[").skip(1) {
        let Some(end) = seq.find('m') else { continue };
        for param in seq[..end].split(';').filter_map(|p| p.parse::<u32>().ok()) {
            let colour = matches!(param, 30..=38 | 40..=48 | 90..=97 | 100..=107);
            assert!(!colour, "colour code {param} in:\n{raw}");
        }
    }
    t.keys("q");
    t.wait_screen("exit", |s| s.contains("EXITED 0"));
}

#[test]
fn resized_to_one_by_one_and_back() {
    let _g = serial();
    let Some(t) = Tmux::start(&format!("{EXE} -m pipe"), 100, 30) else { return };
    t.wait_screen("panel", |s| s.contains("ordinary pipe"));
    let resize = |w: &str, h: &str| {
        Command::new("tmux").args(["-L", &t.name, "resize-window", "-t", &t.name, "-x", w, "-y", h]).status().unwrap();
    };
    resize("1", "1");
    std::thread::sleep(Duration::from_millis(500));
    resize("60", "20");
    t.wait_screen("the size notice", |s| s.contains("80×24"));
    resize("100", "30");
    t.wait_screen("the panel again", |s| s.contains("ordinary pipe") && s.contains("pid"));
    t.keys("q");
    t.wait_screen("exit", |s| s.contains("EXITED 0"));
}
