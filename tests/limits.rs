//! Too few descriptors or processes, an object shrunk under the monitor:
//! the run says what failed and which limit, the emulated kernels survive,
//! and nothing the supervisor reads can kill it with SIGBUS.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::{Detail, Snapshot};

/// Run the binary with `resource` limited to `n` (soft and hard).
fn with_limit(resource: libc::__rlimit_resource_t, n: u64, cmd: &mut Command) -> Output {
    let _g = serial();
    // SAFETY: setrlimit is async-signal-safe; it runs in the child between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit { rlim_cur: n, rlim_max: n };
            if libc::setrlimit(resource, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.env_remove("IPCSCOPE_SUPERVISOR").output().expect("run ipcscope")
}

fn snapshot_of(out: &Output) -> Snapshot {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no snapshot ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

/// With RLIMIT_NOFILE=10 every worker dies before it can say its pid; the
/// run used to print an empty picture and exit 0.
#[test]
fn workers_that_die_at_start_are_reported() {
    let mut cmd = Command::new(EXE);
    cmd.args(["snapshot", "-m", "pipe,mach", "--duration", "0.5", "--format", "json"]);
    let out = with_limit(libc::RLIMIT_NOFILE, 10, &mut cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s = snapshot_of(&out);
    let p = s.run.problems.join("\n");
    for who in ["pipe producer", "mach kernel", "mach server", "mach client-1"] {
        assert!(p.contains(&format!("{who} ended at start: ")), "{who} not reported: {p}");
    }
    assert!(p.contains("RLIMIT_NOFILE is 10"), "the limit is not named: {p}");
    // The panel shows the process and how it ended, not an empty slot.
    let producer = &mech(&s, Kind::Pipe).processes[0];
    assert!(producer.pid > 0 && producer.exit.as_deref().is_some_and(|e| e.starts_with("exit 1")), "{producer:?}");
    // Same reason for all: one line on stderr names them all.
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("workers ended at start") && err.contains("RLIMIT_NOFILE is 10"), "{err}");
    assert_run_gone(&s);
}

/// With RLIMIT_NOFILE=12 and more tasks than descriptors, the NT kernel's
/// accept failed with EMFILE and the kernel exited, taking ALPC down (the
/// Mach kernel lived, but spun on its still-readable listener). Both must
/// ride it out: the tasks that got in keep talking, the others wait.
#[test]
fn emulated_kernels_survive_running_out_of_descriptors() {
    let mut cmd = Command::new(EXE);
    cmd.args(["snapshot", "-m", "mach,alpc", "--duration", "2", "--format", "json"]);
    cmd.args(["--set", "alpc.clients=4", "--set", "mach.senders=8"]);
    let out = with_limit(libc::RLIMIT_NOFILE, 12, &mut cmd);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = snapshot_of(&out);
    for kind in [Kind::Mach, Kind::Alpc] {
        let m = mech(&s, kind);
        let kernel = m.processes.iter().find(|p| p.role == "kernel").expect("a kernel");
        assert!(kernel.exit.is_none(), "{kind:?} kernel ended: {:?}", kernel.exit);
        for p in &m.processes {
            assert!(p.exit.is_none(), "{kind:?} {} ended: {:?}", p.role, p.exit);
        }
        // Who gets one of the few descriptors is a race: when the clients
        // take them all before the Mach server checks in, the server waits
        // in the backlog and nothing can be delivered yet — the kernel and
        // every task still live, which is what this test is about.
        let server = m.processes.iter().find(|p| p.role == "server").expect("a server");
        let server_waits_to_get_in = server.op == "starting";
        assert!(m.integrity.delivered > 0 || server_waits_to_get_in, "{kind:?} delivered nothing");
    }
    assert_run_gone(&s);
}

/// A uid with no process of its own here, so its RLIMIT_NPROC count is
/// ours alone.
fn lonely_uid() -> u32 {
    61_000 + std::process::id() % 4_000
}

/// Under RLIMIT_NPROC=1 the supervisor cannot fork its first worker: the
/// line names the worker, that fork failed, and the limit — it used to be
/// a bare "Resource temporarily unavailable (os error 11)".
#[test]
fn a_refused_fork_names_the_worker_and_the_limit() {
    let uid = lonely_uid();
    let ids = [format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()];
    // Its own XDG_RUNTIME_DIR for the run dir, and the binary where that
    // uid can run it (a checkout under a 0700 directory is out of reach).
    let top = std::env::temp_dir().join(format!("scope-nproc-{}", std::process::id()));
    let xdg = top.join("run");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&xdg, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(&xdg, std::fs::Permissions::from_mode(0o700)).unwrap();
    let reachable = Command::new("setpriv").args(&ids).args(["test", "-x", EXE]).status().is_ok_and(|s| s.success());
    let exe = if reachable {
        std::path::PathBuf::from(EXE)
    } else {
        let copy = top.join("ipcscope");
        std::fs::copy(EXE, &copy).unwrap();
        copy
    };
    let mut cmd = Command::new("setpriv");
    cmd.args(&ids).arg(&exe).args(["snapshot", "-m", "pipe", "--duration", "0.3"]).env("XDG_RUNTIME_DIR", &xdg);
    let out = with_limit(libc::RLIMIT_NPROC, 1, &mut cmd);
    let left: Vec<_> = std::fs::read_dir(&xdg).unwrap().flatten().map(|e| e.path()).collect();
    std::fs::remove_dir_all(&top).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot start pipe producer: fork failed: Resource temporarily unavailable (RLIMIT_NPROC is 1)"),
        "{err}"
    );
    assert!(left.is_empty(), "left in the run's base dir: {left:?}");
}

/// The monitor reads the ring of a live object that a worker (or anyone
/// of our uid) may shrink at any time. Reading it through a mapping, it
/// died of SIGBUS — and the supervisor with it; now it reads with pread.
#[test]
fn a_shrunk_object_never_sigbuses_the_supervisor() {
    let _g = serial();
    let session = session(&[Kind::Shm], &["consumer.rate=0"]);
    let path = |s: &Snapshot| match &mech(s, Kind::Shm).detail {
        Detail::Shm(d) if d.mapped => Some(d.path.clone()),
        _ => None,
    };
    let s = wait_for(&session, "the ring header read", Duration::from_secs(10), |s| path(s).is_some());
    let p = path(&s).unwrap();
    std::fs::OpenOptions::new().write(true).open(&p).expect("open the object").set_len(0).expect("shrink it");
    let after = wait_for(
        &session,
        "the shrunk object sampled",
        Duration::from_secs(10),
        |s| matches!(&mech(s, Kind::Shm).detail, Detail::Shm(d) if d.exists && d.size == 0),
    );
    match &mech(&after, Kind::Shm).detail {
        Detail::Shm(d) => assert!(!d.mapped && d.head_hex.is_empty(), "{d:?}"),
        _ => unreachable!(),
    }
    assert!(session.monitor_alive());
    let pids = pids(&after);
    session.shutdown();
    assert_nothing_left(&pids);
}

/// A `ulimit -v` too small to run in is one line naming the limit and the
/// least that works, before anything starts — not an allocation abort in
/// the middle of the run.
#[test]
fn too_little_address_space_is_one_line_before_anything_starts() {
    let mut cmd = Command::new(EXE);
    cmd.args(["snapshot", "--mechanisms", "all", "--duration", "1", "--format", "json"]);
    let out = with_limit(libc::RLIMIT_AS, 30_000 * 1024, &mut cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("ulimit -v") && err.contains("30000 KiB"), "{err}");
    assert!(out.stdout.is_empty(), "nothing ran, nothing printed");
}
