//! The ordinary pipe on real processes: what the textbook says, observed.

mod common;

use std::time::Duration;

use common::*;
use ipcscope::mechanisms::Kind;
use ipcscope::session::Command;
use ipcscope::snapshot::{Detail, Snapshot};

fn pipe_detail(m: &ipcscope::snapshot::MechanismSnapshot) -> &ipcscope::mechanisms::pipe::PipeDetail {
    match &m.detail {
        Detail::Pipe(d) => d,
        #[allow(unreachable_patterns)]
        other => panic!("not a pipe: {other:?}"),
    }
}

fn pipe(s: &Snapshot) -> &ipcscope::snapshot::MechanismSnapshot {
    mech(s, Kind::Pipe)
}

#[test]
fn messages_flow_and_all_arrive_intact() {
    let s = snapshot_json("pipe", "1", &[]);
    let m = pipe(&s);
    let i = m.integrity;
    assert!(i.delivered > 100, "only {} delivered", i.delivered);
    assert_eq!((i.lost, i.corrupt, i.duplicated, i.reordered), (0, 0, 0, 0));
    // Parent and child: the consumer's parent is the producer.
    let (prod, cons) = (&m.processes[0], &m.processes[1]);
    assert!(prod.pid > 0 && cons.pid > 0 && prod.pid != cons.pid);
    assert!(m.processes.iter().all(|p| p.sent + p.received > 0));
    let d = pipe_detail(m);
    // Each closed the end it does not use.
    assert_eq!(
        d.read_ends,
        vec![format!("consumer fd {}", cons.fds.iter().find(|f| f.target.starts_with("pipe:")).unwrap().fd)]
    );
    assert_eq!(d.write_ends.len(), 1);
    assert!(d.write_ends[0].starts_with("producer fd "));
    // The textbook's figure: fd[0] and fd[1] as pipe() returned them, the
    // parent holding only fd[1] and the child only fd[0].
    let [r, w] = d.fd_pair.expect("the numbers pipe() returned");
    assert_ne!(r, w);
    assert_eq!(d.holds.len(), 2);
    assert_eq!((d.holds[0].read.as_slice(), d.holds[0].write.as_slice()), (&[][..], &[w][..]), "{:?}", d.holds);
    assert_eq!((d.holds[1].read.as_slice(), d.holds[1].write.as_slice()), (&[r][..], &[][..]), "{:?}", d.holds);
    let at =
        |p: &ipcscope::snapshot::ProcessSnapshot, fd: i32| p.fds.iter().find(|f| f.fd == fd).unwrap().target.clone();
    assert_eq!(at(prod, w), format!("pipe:[{}]", d.inode.unwrap()));
    assert_eq!(at(cons, r), at(prod, w));
    assert_eq!(m.channel.unit, "bytes");
    assert_eq!(m.channel.capacity, 65536);
    // The design questions, answered from the processes: the child's
    // parent (/proc/PID/stat) is the producer.
    assert_eq!(d.parent_child, Some(true));
    assert!(!d.freed);
    assert_run_gone(&s);
}

#[test]
fn stalled_consumer_fills_the_pipe_and_blocks_the_producer() {
    let s = snapshot_json("pipe", "1", &["consumer.rate=0"]);
    let m = pipe(&s);
    assert_eq!(m.channel.depth, m.channel.capacity, "pipe not full");
    let prod = &m.processes[0];
    assert_eq!(prod.state, "S");
    assert!(prod.wchan.contains("pipe_write"), "producer waits in {:?}", prod.wchan);
    assert_eq!(prod.op, "write()");
    // The consumer is not reading: it sleeps, stalled by its rate knob,
    // and the screen marks the two parts apart.
    assert_eq!(m.processes[1].received, 0);
    assert_eq!(m.processes[1].party(false), ipcscope::snapshot::Party::Stalled);
    assert_eq!(prod.party(false), ipcscope::snapshot::Party::BlockedFull);
    assert_run_gone(&s);
}

#[test]
fn smaller_capacity_is_what_the_kernel_reports() {
    let s = snapshot_json("pipe", "0.5", &["consumer.rate=0", "pipe.capacity=4096"]);
    let m = pipe(&s);
    assert_eq!((m.channel.depth, m.channel.capacity), (4096, 4096));
    assert_run_gone(&s);
}

#[test]
fn killing_the_consumer_kills_the_producer_with_sigpipe() {
    let _g = serial();
    let mut sess = session(&[Kind::Pipe], &[]);
    let first = wait_for(&sess, "messages flowing", Duration::from_secs(5), |s| pipe(s).integrity.delivered > 10);
    sess.apply(Command::Kill(Kind::Pipe)).unwrap();
    let s = wait_for(&sess, "producer dies of SIGPIPE", Duration::from_secs(5), |s| {
        pipe(s).processes[0].exit.as_deref() == Some("killed by SIGPIPE")
    });
    let m = pipe(&s);
    assert_eq!(m.processes[1].exit.as_deref(), Some("killed by SIGKILL"));
    assert!(m.notes.iter().any(|n| n.key == "sigpipe"), "panel notes: {:?}", m.notes);
    let pids = pids(&first);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn with_sigpipe_ignored_the_producer_sees_epipe() {
    let _g = serial();
    let mut sess = session(&[Kind::Pipe], &["pipe.sigpipe=ignore"]);
    let first = wait_for(&sess, "messages flowing", Duration::from_secs(5), |s| pipe(s).integrity.delivered > 10);
    sess.apply(Command::Kill(Kind::Pipe)).unwrap();
    let s = wait_for(&sess, "producer sees EPIPE", Duration::from_secs(5), |s| pipe(s).processes[0].exit.is_some());
    let m = pipe(&s);
    let prod = &m.processes[0];
    assert_eq!(prod.errors.epipe, 1);
    assert!(prod.exit.as_deref().unwrap().contains("EPIPE"), "{:?}", prod.exit);
    assert!(prod.events.iter().any(|e| e.text.contains("= -1 EPIPE")), "{:?}", prod.events);
    assert!(m.notes.iter().any(|n| n.key == "epipe"));
    let pids = pids(&first);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn reader_sees_eof_once_the_writer_is_done() {
    let _g = serial();
    let sess = session(&[Kind::Pipe], &["producer.count=50", "producer.rate=max"]);
    let s = wait_for(&sess, "consumer reads EOF and exits", Duration::from_secs(5), |s| {
        pipe(s).processes[1].exit.is_some()
    });
    let m = pipe(&s);
    assert_eq!(m.processes[1].exit.as_deref(), Some("exit 0"));
    assert_eq!(m.integrity.delivered, 50);
    let d = pipe_detail(m);
    assert!(d.eof_seen);
    // Both gone: the kernel freed the pipe, and no capacity is drawn for it.
    let s = wait_for(&sess, "both ends gone", Duration::from_secs(5), |s| pipe(s).processes[0].exit.is_some());
    let (m, d) = (pipe(&s), pipe_detail(pipe(&s)));
    assert!(d.freed, "{d:?}");
    assert_eq!((m.channel.depth, m.channel.capacity), (0, 0));
    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn unused_write_end_left_open_means_no_eof_ever() {
    let _g = serial();
    let sess = session(&[Kind::Pipe], &["producer.count=50", "producer.rate=max", "pipe.close_unused=false"]);
    let s = wait_for(&sess, "producer done, consumer stuck in read", Duration::from_secs(5), |s| {
        let m = pipe(s);
        m.processes[0].exit.is_some() && m.integrity.delivered == 50 && m.processes[1].wchan.contains("pipe_read")
    });
    // Give EOF every chance to arrive: it must not.
    std::thread::sleep(Duration::from_millis(500));
    let s2 = wait_for(&sess, "a fresh sample", Duration::from_secs(2), |_| true);
    let m = pipe(&s2);
    let cons = &m.processes[1];
    assert!(cons.exit.is_none(), "consumer exited: {:?}", cons.exit);
    assert_eq!(cons.state, "S");
    assert!(cons.wchan.contains("pipe_read"));
    let d = pipe_detail(m);
    assert!(!d.eof_seen);
    // The consumer itself still holds a write end: that is why.
    assert!(d.write_ends.iter().any(|w| w.starts_with("consumer")), "{:?}", d.write_ends);
    // The figure's open fd[1] in the child: the same number pipe() returned.
    let [_, w] = d.fd_pair.expect("the numbers pipe() returned");
    assert_eq!(d.holds[1].write, vec![w], "{:?}", d.holds);
    assert!(d.holds[0].write.is_empty() && d.holds[0].read.is_empty(), "the producer exited: {:?}", d.holds);
    assert!(m.notes.iter().any(|n| n.key == "no-eof"), "{:?}", m.notes);
    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn pause_really_stops_the_processes() {
    let _g = serial();
    let mut sess = session(&[Kind::Pipe], &[]);
    wait_for(&sess, "running", Duration::from_secs(5), |s| pipe(s).integrity.delivered > 10);
    sess.apply(Command::SetPaused(true)).unwrap();
    let s = wait_for(&sess, "both stopped", Duration::from_secs(5), |s| {
        s.run.paused && pipe(s).processes.iter().all(|p| p.state == "T")
    });
    let before = pipe(&s).integrity.delivered;
    std::thread::sleep(Duration::from_millis(300));
    let s2 = wait_for(&sess, "sample", Duration::from_secs(2), |_| true);
    assert_eq!(pipe(&s2).integrity.delivered, before, "messages moved while paused");
    sess.apply(Command::SetPaused(false)).unwrap();
    wait_for(&sess, "flowing again", Duration::from_secs(5), |s| pipe(s).integrity.delivered > before);
    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn restart_brings_a_new_pair() {
    let _g = serial();
    let mut sess = session(&[Kind::Pipe], &[]);
    let s = wait_for(&sess, "running", Duration::from_secs(5), |s| pipe(s).integrity.delivered > 10);
    let old = pids(&s);
    sess.apply(Command::Kill(Kind::Pipe)).unwrap();
    wait_for(&sess, "producer gone", Duration::from_secs(5), |s| pipe(s).processes[0].exit.is_some());
    sess.apply(Command::Restart(Kind::Pipe)).unwrap();
    let s = wait_for(&sess, "new pair flowing", Duration::from_secs(5), |s| {
        let m = pipe(s);
        m.processes.iter().all(|p| p.alive() && !old.contains(&p.pid)) && m.integrity.delivered > 10
    });
    assert_eq!(pipe(&s).integrity.lost, 0);
    let mut all = old;
    all.extend(pids(&s));
    sess.shutdown();
    assert_nothing_left(&all);
}

#[test]
fn step_mode_lets_exactly_one_message_through() {
    let _g = serial();
    let mut sess = session(&[Kind::Pipe], &[]);
    wait_for(&sess, "running", Duration::from_secs(5), |s| pipe(s).integrity.delivered > 10);
    sess.apply(Command::SetStepMode(true)).unwrap();
    let s = wait_for(&sess, "producer held", Duration::from_secs(5), |s| pipe(s).processes[0].op == "step: held");
    let held = wait_for(&sess, "all delivered", Duration::from_secs(5), |x| {
        pipe(x).integrity.delivered == pipe(x).processes[0].sent
    });
    let before = pipe(&held).processes[0].sent;
    for k in 1..=3 {
        sess.apply(Command::Step(None)).unwrap();
        wait_for(&sess, "one more delivered", Duration::from_secs(5), |x| pipe(x).integrity.delivered == before + k);
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = wait_for(&sess, "sample", Duration::from_secs(2), |_| true);
    assert_eq!(pipe(&after).processes[0].sent, before + 3);
    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn messages_in_the_pipe_when_the_reader_dies_are_counted_lost() {
    let _g = serial();
    let mut sess = session(&[Kind::Pipe], &["consumer.rate=0"]);
    let full = wait_for(&sess, "a full pipe", Duration::from_secs(5), |s| {
        let m = pipe(s);
        m.channel.capacity > 0 && m.channel.depth == m.channel.capacity
    });
    assert_eq!(pipe(&full).integrity.lost, 0, "nothing is lost while the reader lives");
    sess.apply(Command::Kill(Kind::Pipe)).unwrap();
    let s = wait_for(&sess, "both ends gone", Duration::from_secs(5), |s| {
        pipe(s).processes.iter().all(|p| p.exit.is_some())
    });
    let m = pipe(&s);
    let sent = m.processes[0].sent;
    assert_eq!(sent, 65536 / 256, "a 64 KiB pipe holds 256 of our 256-byte messages");
    assert_eq!(m.integrity.delivered, 0);
    assert_eq!(m.integrity.lost, sent, "every message left in the pipe is lost, and counted");
    assert!(m.notes.iter().any(|n| n.key == "lost-in-pipe"), "{:?}", m.notes);
    let pids = pids(&full);
    sess.shutdown();
    assert_nothing_left(&pids);
}
