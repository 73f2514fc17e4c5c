//! A hostile environment gets a clear message, and what can still run
//! keeps running: a read-only /tmp or /dev/shm, a full /dev/shm, queue
//! limits lower than asked, XDG_RUNTIME_DIR, NO_COLOR, a terminal resized
//! to 1×1.

mod common;

use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;
use common::*;

/// Run ipcscope in a private mount namespace after `mounts` (shell
/// commands; the machine's own mounts are untouched).
fn in_mount_namespace(mounts: &str, args: &str) -> std::process::Output {
    let _g = serial();
    Command::new("unshare")
        .args(["-m", "sh", "-c", &format!("{mounts} && exec {EXE} {args}")])
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("IPCSCOPE_SUPERVISOR")
        .output()
        .expect("unshare (util-linux)")
}

/// `target` made read-only in place: bound onto itself and remounted
/// read-only, so what is under it — the binary too, when the checkout is
/// under /tmp — stays visible.
fn with_read_only(target: &str, args: &str) -> std::process::Output {
    in_mount_namespace(&format!("mount --bind {target} {target} && mount -o remount,ro,bind {target}"), args)
}

/// /dev/shm replaced by a tmpfs of `size` (e.g. `8k`).
fn with_small_dev_shm(size: &str, args: &str) -> std::process::Output {
    in_mount_namespace(&format!("mount -t tmpfs -o size={size},mode=1777 tmpfs /dev/shm"), args)
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
    // The run is incomplete, so exit 1 — with the snapshot of what ran.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let s: ipcscope::snapshot::Snapshot = serde_json::from_slice(&out.stdout).unwrap();
    let pipe = mech(&s, ipcscope::mechanisms::Kind::Pipe);
    assert!(pipe.integrity.delivered > 100, "the pipe should keep working");
    assert!(s.mechanism(ipcscope::mechanisms::Kind::Shm).is_none());
    let why = s.run.problems.join("\n");
    assert!(why.contains("shm not started") && why.contains("shm_open") && why.contains("Read-only"), "{why}");
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end(), format!("ipcscope: {why}"));
}

/// A nearly full /dev/shm used to kill the whole run with SIGBUS (the
/// monitor touched a page tmpfs could not back): now it is one line at
/// setup naming /dev/shm, its free space and shm.size, and the others run.
#[test]
fn a_full_dev_shm_is_enospc_at_setup_not_sigbus() {
    let out = with_small_dev_shm("8k", "snapshot -m pipe,shm --duration 1 --format json");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s: ipcscope::snapshot::Snapshot = serde_json::from_slice(&out.stdout).expect("a snapshot of what ran");
    assert!(mech(&s, ipcscope::mechanisms::Kind::Pipe).integrity.delivered > 100, "the pipe should keep working");
    assert!(s.mechanism(ipcscope::mechanisms::Kind::Shm).is_none());
    let why = s.run.problems.join("\n");
    for m in ["shm not started", "/dev/shm has 8 KiB free", "shm.size=16K", "ENOSPC", "posix_fallocate"] {
        assert!(why.contains(m), "{why:?} does not mention {m:?}");
    }
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("SIGBUS") && !err.contains("panicked"), "{err}");

    // Alone, and asking for more than there is: the same line, exit 1.
    let out = with_small_dev_shm("64k", "snapshot -m shm --duration 0.3 --set shm.size=16M");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for m in ["/dev/shm has 64 KiB free", "shm.size=16M", "16 MiB", "ENOSPC"] {
        assert!(err.contains(m), "{err:?} does not mention {m:?}");
    }
    assert!(out.stdout.is_empty());
}

/// A run dir on a filesystem out of inodes: the FIFO's workers could not
/// even make their logs and ended with a bare "exit 1". Now the mechanism
/// that cannot start says so, naming the directory and the inodes.
#[test]
fn a_run_dir_out_of_inodes_names_what_failed() {
    let dir = std::env::temp_dir().join(format!("scope-inodes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The tmpfs root, the run dir, its manifest, its owner record and the
    // pipe producer's log: nothing is left for the FIFO's first worker.
    let d = dir.display();
    let out = in_mount_namespace(
        &format!("mount -t tmpfs -o nr_inodes=5,mode=0700 tmpfs {d} && export XDG_RUNTIME_DIR={d}"),
        "snapshot -m pipe,fifo --duration 0.5 --format json",
    );
    let left = std::fs::read_dir(&dir).unwrap().count();
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(left, 0, "the private mount leaked");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s: ipcscope::snapshot::Snapshot = serde_json::from_slice(&out.stdout).expect("a snapshot of what ran");
    assert!(mech(&s, ipcscope::mechanisms::Kind::Pipe).integrity.delivered > 100, "the pipe should keep working");
    let why = s.run.problems.join("\n");
    for m in ["fifo not started", "cannot create the log of fifo reader", &d.to_string(), "no free inodes"] {
        assert!(why.contains(m), "{why:?} does not mention {m:?}");
    }
}

#[test]
fn queue_limits_lower_than_asked_name_the_limit() {
    // The others run; the run says why mq did not, and exits 1.
    let out =
        ipcscope(&["snapshot", "-m", "pipe,mq", "--duration", "0.8", "--format", "json", "--set", "mq.maxmsg=64"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mq not started"));
    let s: ipcscope::snapshot::Snapshot = serde_json::from_slice(&out.stdout).unwrap();
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
