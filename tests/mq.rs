//! POSIX message queues on real processes: whole messages, a bounded
//! queue, priorities, and timed sends.

mod common;

use std::time::Duration;

use common::*;
use ipcscope::mechanisms::mq::MqDetail;
use ipcscope::mechanisms::Kind;
use ipcscope::session::Command;
use ipcscope::snapshot::{Detail, MechanismSnapshot, Snapshot};

fn mq(s: &Snapshot) -> &MechanismSnapshot {
    mech(s, Kind::Mq)
}

fn detail(m: &MechanismSnapshot) -> &MqDetail {
    match &m.detail {
        Detail::Mq(d) => d,
        other => panic!("not mq: {other:?}"),
    }
}

/// No queue of this run is left (there is no /dev/mqueue mount here, so
/// ask the kernel by name).
fn assert_queue_gone(d: &MqDetail) {
    let q = nix::mqueue::mq_open(d.name.as_str(), nix::mqueue::MQ_OFlag::O_RDONLY, nix::sys::stat::Mode::empty(), None);
    assert!(matches!(q, Err(nix::errno::Errno::ENOENT)), "queue {} still exists", d.name);
}

#[test]
fn messages_flow_intact() {
    let s = snapshot_json("mq", "1", &[]);
    let m = mq(&s);
    let i = m.integrity;
    assert!(i.delivered > 100, "only {} delivered", i.delivered);
    assert_eq!((i.lost, i.corrupt, i.duplicated, i.reordered), (0, 0, 0, 0));
    let d = detail(m);
    assert!(d.attr_seen);
    assert_eq!((d.maxmsg, d.msgsize), (10, 1024));
    assert_eq!(m.channel.unit, "messages");
    assert!(m.processes[0].events.iter().any(|e| e.text.starts_with("mq_send(")));
    assert_run_gone(&s);
    assert_queue_gone(d);
}

#[test]
fn stalled_consumer_fills_the_queue_and_the_sender_blocks() {
    let s = snapshot_json("mq", "1", &["consumer.rate=0"]);
    let m = mq(&s);
    assert_eq!((m.channel.depth, m.channel.capacity), (10, 10));
    let prod = &m.processes[0];
    assert_eq!(prod.state, "S");
    assert!(prod.wchan.contains("wq_sleep"), "producer waits in {:?}", prod.wchan);
    assert_eq!(prod.sent, 10);
    assert_run_gone(&s);
    assert_queue_gone(detail(m));
}

#[test]
fn timed_send_gives_up_with_etimedout() {
    let s = snapshot_json("mq", "1", &["consumer.rate=0", "mq.send_timeout_ms=100", "mq.maxmsg=3"]);
    let m = mq(&s);
    assert_eq!((m.channel.depth, m.channel.capacity), (3, 3));
    let d = detail(m);
    assert!(d.timeouts >= 3, "{} timeouts", d.timeouts);
    assert_eq!(m.processes[0].errors.etimedout, d.timeouts);
    assert!(m.processes[0].events.iter().any(|e| e.text.ends_with("ETIMEDOUT")));
    assert_run_gone(&s);
}

#[test]
fn higher_priorities_are_received_first() {
    // A slow consumer keeps the queue full, so the kernel always has a
    // choice to make.
    let s = snapshot_json("mq", "2", &["mq.priorities=on", "consumer.rate=50"]);
    let m = mq(&s);
    let d = detail(m);
    assert!(m.integrity.delivered > 20);
    assert_eq!(d.inversions, 0, "a lower priority left before a waiting higher one");
    // Priorities overtake: the per-sender order check sees that.
    assert!(m.integrity.reordered > 0);
    // What is "lost" here is what still waits in the queue.
    assert!(m.integrity.lost <= d.maxmsg, "lost {} > queue size", m.integrity.lost);
    assert_eq!((m.integrity.corrupt, m.integrity.duplicated), (0, 0));
    assert!(d.recv_prios.iter().any(|&p| p > 0));
    assert_run_gone(&s);
}

/// The panel's picture of the queue by priority comes from the workers'
/// own counts (the kernel lets nobody look without receiving): with the
/// consumer stalled, sent − received at each priority adds up to the
/// kernel's curmsgs, and the counts add up to the processes' totals.
#[test]
fn queued_by_priority_matches_the_kernels_count() {
    let s = snapshot_json("mq", "1.5", &["mq.priorities=on", "consumer.rate=0"]);
    let m = mq(&s);
    let d = detail(m);
    assert_eq!(d.curmsgs, 10, "the stalled queue fills");
    assert_eq!(d.sent_by_prio.len(), 4);
    assert_eq!(d.sent_by_prio.iter().sum::<u64>(), m.processes[0].sent);
    assert_eq!(d.recv_by_prio.iter().sum::<u64>(), m.processes[1].received);
    assert_eq!(d.queued_by_prio().iter().sum::<u64>(), d.curmsgs, "{d:?}");
    assert_eq!(d.counts_agree(), Some(true));
    let order = d.delivery_order().unwrap();
    assert!(order.windows(2).all(|w| w[0] >= w[1]), "highest first: {order:?}");
    assert!(order.iter().any(|&p| p > 0), "priorities mixed: {order:?}");
    assert_run_gone(&s);
    assert_queue_gone(d);
}

#[test]
fn sizes_beyond_the_machine_limit_are_refused_clearly() {
    let out = ipcscope(&["snapshot", "--mechanisms", "mq", "--duration", "0.5", "--set", "mq.maxmsg=100000"]);
    assert_eq!(out.status.code(), Some(2), "knob range");
    let max = std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max").unwrap().trim().parse::<u64>().unwrap();
    let over = format!("mq.maxmsg={}", max + 1);
    let out = ipcscope(&["snapshot", "--mechanisms", "mq", "--duration", "0.5", "--set", &over]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/proc/sys/fs/mqueue/msg_max"), "{err}");
}

#[test]
fn killing_the_consumer_is_survived_and_shown() {
    let _g = serial();
    let mut sess = session(&[Kind::Mq], &[]);
    let first = wait_for(&sess, "messages flowing", Duration::from_secs(5), |s| mq(s).integrity.delivered > 10);
    sess.apply(Command::Kill(Kind::Mq)).unwrap();
    let s = wait_for(&sess, "queue full, sender blocked", Duration::from_secs(5), |s| {
        let m = mq(s);
        m.processes[1].exit.is_some() && m.channel.depth == 10 && m.processes[0].wchan.contains("wq_sleep")
    });
    let m = mq(&s);
    assert_eq!(m.processes[1].exit.as_deref(), Some("killed by SIGKILL"));
    assert!(m.processes[0].alive());
    assert!(m.notes.iter().any(|n| n.key == "consumer-killed"));
    let name = detail(m).clone();
    let pids = pids(&first);
    sess.shutdown();
    assert_nothing_left(&pids);
    assert_queue_gone(&name);
}
