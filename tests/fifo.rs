//! Named pipes on real processes: unrelated writers and a reader meet by
//! path; writes up to PIPE_BUF never interleave; outsiders are seen.

mod common;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command as Proc, Stdio};
use std::time::{Duration, Instant};

use common::*;
use ipcscope::mechanisms::fifo::FifoDetail;
use ipcscope::mechanisms::Kind;
use ipcscope::session::Command;
use ipcscope::snapshot::{Detail, MechanismSnapshot, Snapshot};

fn fifo(s: &Snapshot) -> &MechanismSnapshot {
    mech(s, Kind::Fifo)
}

fn detail(m: &MechanismSnapshot) -> &FifoDetail {
    match &m.detail {
        Detail::Fifo(d) => d,
        other => panic!("not a FIFO: {other:?}"),
    }
}

#[test]
fn writers_and_reader_meet_by_path_and_messages_arrive_intact() {
    let s = snapshot_json("fifo", "1", &[]);
    let m = fifo(&s);
    let i = m.integrity;
    assert!(i.delivered > 100, "only {} delivered", i.delivered);
    assert_eq!((i.lost, i.corrupt, i.duplicated, i.reordered, i.foreign), (0, 0, 0, 0, 0));
    let d = detail(m);
    assert!(d.exists);
    assert!(d.ls_line.starts_with("prw------- 1 "), "{}", d.ls_line);
    // The node's type and mode, as a number the figure draws from.
    assert_eq!(d.mode & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!((d.mode & 0o7777, d.mode_text().as_str()), (0o600, "prw-------"));
    assert!(d.path.starts_with(&s.run.runtime_dir));
    // Reader + 2 writers, each holding the FIFO by its own open().
    let roles: Vec<&str> = m.processes.iter().map(|p| p.role.as_str()).collect();
    assert_eq!(roles, ["reader", "writer-1", "writer-2"]);
    assert_eq!(d.holders.len(), 3, "{:?}", d.holders);
    assert!(d.external().next().is_none());
    for p in &m.processes {
        assert!(p.fds.iter().any(|f| f.target == d.path), "{} does not hold {}", p.role, d.path);
    }
    assert_run_gone(&s);
}

#[test]
fn stalled_reader_fills_the_fifo_and_writers_block() {
    let s = snapshot_json("fifo", "1", &["consumer.rate=0"]);
    let m = fifo(&s);
    assert_eq!((m.channel.depth, m.channel.capacity), (65536, 65536));
    for w in &m.processes[1..] {
        assert_eq!(w.state, "S", "{}", w.role);
        assert!(w.wchan.contains("pipe_write"), "{} waits in {:?}", w.role, w.wchan);
    }
    assert_run_gone(&s);
}

#[test]
fn eight_writers_never_interleave_a_message() {
    let s = snapshot_json("fifo", "1.5", &["fifo.writers=8", "msg.size=4096", "producer.rate=max"]);
    let m = fifo(&s);
    let i = m.integrity;
    assert_eq!(m.processes.len(), 9);
    assert!(i.delivered > 1000, "only {} delivered", i.delivered);
    assert!(m.processes[1..].iter().all(|w| w.sent > 0), "every writer wrote");
    assert_eq!((i.corrupt, i.foreign, i.duplicated), (0, 0, 0), "{i:?}");
    assert!(detail(m).atomic);
    assert_run_gone(&s);
}

#[test]
fn reader_waits_in_open_after_the_writers_are_done() {
    let _g = serial();
    let sess = session(&[Kind::Fifo], &["producer.count=100"]);
    let s = wait_for(&sess, "reader back in open()", Duration::from_secs(5), |s| {
        let m = fifo(s);
        m.processes[0].wchan.contains("wait_for_partner") && m.processes[1..].iter().all(|w| w.exit.is_some())
    });
    let m = fifo(&s);
    assert_eq!(m.integrity.delivered, 200);
    assert_eq!(m.integrity.lost, 0);
    let d = detail(m);
    assert!(d.eofs >= 1);
    // Nobody has it open, and it is still in the file system.
    assert!(d.exists && d.holders.is_empty(), "{d:?}");
    assert!(m.notes.iter().any(|n| n.key == "reopen"));
    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn killing_the_reader_kills_writers_with_sigpipe_and_the_fifo_stays() {
    let _g = serial();
    let mut sess = session(&[Kind::Fifo], &[]);
    let first = wait_for(&sess, "flowing", Duration::from_secs(5), |s| fifo(s).integrity.delivered > 10);
    sess.apply(Command::Kill(Kind::Fifo)).unwrap();
    let s = wait_for(&sess, "writers die of SIGPIPE", Duration::from_secs(5), |s| {
        fifo(s).processes[1..].iter().all(|w| w.exit.as_deref() == Some("killed by SIGPIPE"))
    });
    let m = fifo(&s);
    assert_eq!(m.processes[0].exit.as_deref(), Some("killed by SIGKILL"));
    assert!(detail(m).exists, "the FIFO outlives its processes");
    assert!(m.notes.iter().any(|n| n.key == "sigpipe"));
    let pids = pids(&first);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn with_sigpipe_ignored_writers_wait_in_open_for_a_new_reader() {
    let _g = serial();
    let mut sess = session(&[Kind::Fifo], &["fifo.sigpipe=ignore"]);
    let first = wait_for(&sess, "flowing", Duration::from_secs(5), |s| fifo(s).integrity.delivered > 10);
    sess.apply(Command::Kill(Kind::Fifo)).unwrap();
    let s = wait_for(&sess, "writers wait in open()", Duration::from_secs(5), |s| {
        fifo(s).processes[1..].iter().all(|w| w.wchan.contains("wait_for_partner"))
    });
    let m = fifo(&s);
    assert!(m.processes[1..].iter().all(|w| w.errors.epipe > 0 && w.alive()));
    assert!(m.processes[1..].iter().all(|w| w.op == "open()"));
    let pids = pids(&first);
    sess.shutdown();
    assert_nothing_left(&pids);
}

/// A process that is not ours writes into the FIFO by its path (as
/// `echo hi > PATH` would from another terminal): the panel shows it, and
/// the reader counts its bytes as foreign, not as corruption.
#[test]
fn an_outside_writer_is_seen_and_its_bytes_are_foreign() {
    let _g = serial();
    let child = Proc::new(EXE)
        .args(["snapshot", "--mechanisms", "fifo", "--duration", "2.5", "--format", "json"])
        .env_remove("IPCSCOPE_SUPERVISOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let path = ipcscope::supervisor::rundir::dir_for(child.id()).join("fifo");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(Instant::now() < deadline, "no FIFO at {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Non-blocking: the run's reader has it open (or we try again).
    let mut f = loop {
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(&path) {
            Ok(f) => break f,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    };
    f.write_all(b"hello from another terminal\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(f);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Snapshot = serde_json::from_slice(&out.stdout).unwrap();
    let m = fifo(&s);
    assert!(m.integrity.foreign >= 20, "foreign {}", m.integrity.foreign);
    assert_eq!(m.integrity.corrupt, 0);
    let me = std::process::id() as i32;
    let ext: Vec<_> = detail(m).external().collect();
    assert!(ext.iter().any(|h| h.pid == me && h.mode == "w"), "outside holders: {ext:?}");
    assert!(m.notes.iter().any(|n| n.key == format!("external-{me}")));
    assert_run_gone(&s);
}
