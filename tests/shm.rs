//! POSIX shared memory on real processes: an unrelated consumer maps the
//! producer's object by name; a futex-guarded ring carries whole messages.

mod common;

use std::time::Duration;

use common::*;
use ipcscope::mechanisms::shm::ShmDetail;
use ipcscope::mechanisms::Kind;
use ipcscope::session::Command;
use ipcscope::snapshot::{Detail, MechanismSnapshot, Snapshot};

fn shm(s: &Snapshot) -> &MechanismSnapshot {
    mech(s, Kind::Shm)
}

fn detail(m: &MechanismSnapshot) -> &ShmDetail {
    match &m.detail {
        Detail::Shm(d) => d,
        other => panic!("not shm: {other:?}"),
    }
}

#[test]
fn messages_flow_through_the_ring_intact() {
    let s = snapshot_json("shm", "1", &[]);
    let m = shm(&s);
    let i = m.integrity;
    assert!(i.delivered > 100, "only {} delivered", i.delivered);
    assert_eq!((i.lost, i.corrupt, i.duplicated, i.reordered), (0, 0, 0, 0));
    // Two unrelated processes: neither is the other's parent.
    let (prod, cons) = (&m.processes[0], &m.processes[1]);
    assert!(prod.pid > 0 && cons.pid > 0 && prod.pid != cons.pid);
    let d = detail(m);
    // Each holds its own descriptor of the object, opened by name.
    for p in [prod, cons] {
        assert!(p.fds.iter().any(|f| f.target == d.path), "{} has no fd for {}: {:?}", p.role, d.path, p.fds);
    }
    assert!(d.exists && d.mapped, "object not observed: {d:?}");
    assert_eq!(d.mode, 0o600);
    assert_eq!((d.size, d.slots, d.slot_size), (16384, 16, 1016));
    assert!(d.path.starts_with("/dev/shm/ipcscope-"));
    // The header the monitor reads is the one the workers move. The header
    // and the consumer's counters are read a moment apart, so allow one
    // ring's worth of messages between them.
    assert!(d.in_idx + d.slots >= i.delivered, "in {} vs delivered {}", d.in_idx, i.delivered);
    assert!(d.in_idx - d.out_idx <= d.slots);
    assert!(d.head_hex.starts_with(&"ipcsring".bytes().map(|b| format!("{b:02x}")).collect::<String>()));
    assert_eq!(m.channel.unit, "slots");
    // One object, mapped by each process at an address of its own: the
    // same size, shared (`s`), read from each one's /proc/PID/maps.
    assert_eq!(d.maps.len(), 2, "{:?}", d.maps);
    for (map, p) in d.maps.iter().zip([prod, cons]) {
        assert_eq!((map.pid, map.end - map.start, map.perms.as_str()), (p.pid, d.size, "rw-s"), "{map:?}");
    }
    // The system calls of the textbook, as recorded.
    assert!(prod.events.iter().any(|e| e.text.starts_with("slot[")));
    assert_run_gone(&s);
}

#[test]
fn stalled_consumer_fills_the_ring_and_the_producer_sleeps_on_a_futex() {
    let s = snapshot_json("shm", "1", &["consumer.rate=0"]);
    let m = shm(&s);
    assert_eq!((m.channel.depth, m.channel.capacity), (16, 16), "ring not full");
    let prod = &m.processes[0];
    assert_eq!(prod.state, "S");
    assert!(prod.wchan.contains("futex"), "producer waits in {:?}", prod.wchan);
    // It sleeps on the `out` word, found from /proc/PID/syscall + maps.
    assert!(detail(m).futex_waits.contains(&("producer".into(), "out".into())), "{:?}", detail(m).futex_waits);
    assert_eq!(m.integrity.corrupt, 0);
    assert_run_gone(&s);
}

#[test]
fn msg_size_is_cut_to_the_slot() {
    let s = snapshot_json("shm", "0.5", &["shm.size=4096", "shm.slots=8", "msg.size=4096"]);
    let m = shm(&s);
    let d = detail(m);
    assert_eq!(d.slot_size, 504);
    assert_eq!(d.msg_size, 504);
    assert_eq!(m.integrity.corrupt, 0);
    assert!(m.integrity.delivered > 0);
    assert_run_gone(&s);
}

#[test]
fn killing_the_consumer_is_survived_and_shown() {
    let _g = serial();
    let mut sess = session(&[Kind::Shm], &[]);
    let first = wait_for(&sess, "messages flowing", Duration::from_secs(5), |s| shm(s).integrity.delivered > 10);
    sess.apply(Command::Kill(Kind::Shm)).unwrap();
    let s = wait_for(&sess, "ring full, producer asleep", Duration::from_secs(5), |s| {
        let m = shm(s);
        m.processes[1].exit.is_some() && m.channel.depth == m.channel.capacity && m.processes[0].wchan.contains("futex")
    });
    let m = shm(&s);
    assert_eq!(m.processes[1].exit.as_deref(), Some("killed by SIGKILL"));
    assert!(m.processes[0].alive());
    assert!(detail(m).exists, "the object outlives the consumer");
    assert!(m.notes.iter().any(|n| n.key == "consumer-killed"));
    // Restart: a new pair on a new object, flowing again.
    sess.apply(Command::Restart(Kind::Shm)).unwrap();
    let s2 = wait_for(&sess, "flowing after restart", Duration::from_secs(5), |s| {
        let m = shm(s);
        m.processes.iter().all(|p| p.alive()) && m.integrity.delivered > 10
    });
    assert_eq!(shm(&s2).integrity.corrupt, 0);
    let mut all = pids(&first);
    all.extend(pids(&s2));
    sess.shutdown();
    assert_nothing_left(&all);
}

#[test]
fn the_consumer_unlinks_the_object_after_the_last_message() {
    let _g = serial();
    let sess = session(&[Kind::Shm], &["producer.count=50"]);
    let s = wait_for(&sess, "both done, name unlinked", Duration::from_secs(5), |s| {
        let m = shm(s);
        m.processes.iter().all(|p| p.exit.is_some()) && !detail(m).exists
    });
    let m = shm(&s);
    assert_eq!(m.integrity.delivered, 50);
    assert_eq!((m.integrity.lost, m.integrity.corrupt), (0, 0));
    assert!(m.processes[1].events.iter().any(|e| e.text.starts_with("shm_unlink(")));
    let pids = pids(&s);
    sess.shutdown();
    assert_nothing_left(&pids);
}
