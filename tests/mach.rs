//! Mach message passing on real processes: the emulated kernel, the echo
//! server and the client tasks, observed through the kernel's own tables.
//! (Kernel-level semantics one by one are in `mach_kernel.rs` and the
//! kernel's unit tests.)

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use ipcscope::mechanisms::ekernel::transport::Conn;
use ipcscope::mechanisms::mach::client::{MachError, MachTask, Observer};
use ipcscope::mechanisms::mach::proto::{decode_reply, Reply};
use ipcscope::mechanisms::mach::types::*;
use ipcscope::mechanisms::Kind;
use ipcscope::model::detail::mach::{EmuWait, MachDetail};
use ipcscope::session::Command;
use ipcscope::snapshot::{Detail, MechanismSnapshot, Snapshot};

fn mach(s: &Snapshot) -> &MechanismSnapshot {
    mech(s, Kind::Mach)
}

fn detail(m: &MechanismSnapshot) -> &MachDetail {
    match &m.detail {
        Detail::Mach(d) => d,
        other => panic!("not Mach: {other:?}"),
    }
}

fn kr(e: MachError) -> u32 {
    e.kr().unwrap_or_else(|| panic!("no kernel code: {e}"))
}

/// The first "done when": a full queue, `MACH_SEND_TIMED_OUT`
/// counted, and every task's rights on record.
#[test]
fn timeout_mode_holds_the_queue_at_its_limit_and_counts_timeouts() {
    let s = snapshot_json("mach", "3", &["consumer.rate=0", "mach.send_mode=timeout:10"]);
    let m = mach(&s);
    let d = detail(m);
    assert_eq!(m.channel.unit, "messages");
    assert_eq!(m.channel.capacity, 5, "MACH_PORT_QLIMIT_DEFAULT");
    assert!(m.channel.depth >= m.channel.capacity, "queue {} of {}", m.channel.depth, m.channel.capacity);
    assert!(d.counters.send_timed_out > 0, "no MACH_SEND_TIMED_OUT: {:?}", d.counters);
    assert!(d.clients.iter().map(|c| c.timed_out).sum::<u64>() > 0);
    let events: Vec<&str> = m.processes.iter().flat_map(|p| p.events.iter().map(|e| e.text.as_str())).collect();
    assert!(events.iter().any(|e| e.contains("timeout=10) = MACH_SEND_TIMED_OUT")), "{events:#?}");
    // Every task's rights: the server holds the receive right, every
    // client a send right to the same port, under names of their own.
    let port = d.port.as_ref().expect("service port");
    let server = d.tasks.iter().find(|t| t.name == "server").expect("server task");
    assert!(server.names.iter().any(|n| n.port == Some(port.id) && n.rights == "RECEIVE"));
    for c in ["client-1", "client-2"] {
        let t = d.tasks.iter().find(|t| t.name == c).unwrap_or_else(|| panic!("{c} is not a task"));
        assert!(t.names.iter().any(|n| n.port == Some(port.id) && n.rights == "SEND"), "{c}: {:?}", t.names);
        assert!(t.names.iter().any(|n| n.what == "reply port" && n.rights == "RECEIVE"));
        assert_ne!(t.task_self, 0);
    }
    // client-1 is multi-threaded: two threads, two reply ports, one name
    // space, and the service right looked up twice (2 user references).
    let c1 = d.tasks.iter().find(|t| t.name == "client-1").unwrap();
    assert_eq!(c1.threads.len(), 2);
    assert_eq!(c1.names.iter().filter(|n| n.what == "reply port").count(), 2);
    assert!(port.send_rights.iter().any(|h| h.task == "client-1" && h.urefs == 2), "{:?}", port.send_rights);
    assert_eq!(m.integrity.lost + m.integrity.corrupt + m.integrity.duplicated, 0);
    assert_run_gone(&s);
}

/// The second: with `notify`, messages past the limit, at most one per
/// sending thread, and a second try refused.
#[test]
fn notify_mode_caches_at_most_one_message_per_thread() {
    let s = snapshot_json("mach", "3", &["consumer.rate=0", "mach.send_mode=notify"]);
    let m = mach(&s);
    let d = detail(m);
    let port = d.port.as_ref().expect("service port");
    let threads: usize = d.tasks.iter().filter(|t| t.name.starts_with("client")).map(|t| t.threads.len()).sum();
    assert_eq!(threads, 3);
    assert!(port.cached >= 1 && port.cached <= threads, "cached {} for {threads} threads", port.cached);
    assert_eq!(port.queue_len, port.qlimit as usize + port.cached, "the cached ones are past the limit");
    for t in &d.tasks {
        assert!(t.threads.iter().filter(|th| th.cached).count() <= t.threads.len());
        // A thread with a kept message waits on its notify port for
        // MACH_NOTIFY_MSG_ACCEPTED, and the kernel's tables say so.
        for th in t.threads.iter().filter(|th| th.cached && !th.blocked.is_empty()) {
            let call = th.call.as_ref().expect("a blocked thread is in a call");
            assert_eq!((call.call.as_str(), call.wait), ("mach_msg(RCV)", EmuWait::KeptAwaitingAccepted));
        }
    }
    assert_eq!(d.counters.cached as usize, port.cached);
    let refused: u64 = d.clients.iter().map(|c| c.notify_in_progress).sum();
    assert!(refused >= 1, "a second cached send is refused: {:?}", d.clients);
    // The gauge stops at the limit; the kept ones are counted apart.
    assert_eq!((m.channel.depth, m.channel.capacity), (port.qlimit as u64, port.qlimit as u64), "{:?}", m.channel);
    assert_eq!(m.channel.over as usize, port.cached, "{:?}", m.channel);
    assert_run_gone(&s);
}

/// The hook's check: with default knobs a stalled server fills the queue
/// and a client sleeps, within one second.
#[test]
fn stalled_server_fills_the_queue_and_blocks_a_client_within_a_second() {
    let s = snapshot_json("mach", "1", &["consumer.rate=0"]);
    let m = mach(&s);
    assert!(m.channel.capacity > 0 && m.channel.depth >= m.channel.capacity, "{:?}", m.channel);
    assert!(m.processes.iter().any(|p| p.role.starts_with("client") && p.state == "S"));
    let d = detail(m);
    assert!(!d.port.as_ref().unwrap().blocked_senders.is_empty());
    // The kernel's tables say what the blocked threads are in: a send
    // waiting for room in the full queue (not a socket read).
    let calls: Vec<_> = d.tasks.iter().flat_map(|t| t.threads.iter().filter_map(|th| th.call.as_ref())).collect();
    assert!(calls.iter().any(|c| c.call == "mach_msg(SEND)" && c.wait == EmuWait::QueueFull), "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| c.wait == EmuWait::QueueFull).count(),
        d.port.as_ref().unwrap().blocked_senders.len(),
        "one call per blocked sender"
    );
    assert_run_gone(&s);
}

/// Requests and replies flow; large bodies go out of line (mapped, not
/// copied) and still come back byte for byte.
#[test]
fn echo_flows_intact_inline_and_out_of_line() {
    let s = snapshot_json("mach", "2", &["msg.size=65536", "mach.ool_threshold=16384", "producer.rate=200"]);
    let m = mach(&s);
    let d = detail(m);
    assert!(m.integrity.delivered > 20, "delivered {}", m.integrity.delivered);
    assert_eq!((m.integrity.lost, m.integrity.corrupt, m.integrity.duplicated), (0, 0, 0));
    assert!(d.counters.bytes_ool > 20 * 65536, "bytes mapped {}", d.counters.bytes_ool);
    assert!(d.counters.bytes_inline < d.counters.bytes_ool / 100, "bodies were copied: {:?}", d.counters);
    let replies: u64 = m.processes.iter().filter(|p| p.role.starts_with("client")).map(|p| p.received).sum();
    assert!(replies > 20, "replies {replies}");
    assert_run_gone(&s);
}

/// `k` kills the server: its port dies, the clients' send rights become
/// dead names, `bootstrap_look_up` says `BOOTSTRAP_UNKNOWN_SERVICE`; `r`
/// brings it all back.
#[test]
fn killing_the_server_leaves_dead_names_and_an_unknown_service() {
    let _g = serial();
    let mut sess = session(&[Kind::Mach], &["producer.rate=50"]);
    let first = wait_for(&sess, "requests answered", Duration::from_secs(10), |s| mach(s).integrity.delivered > 10);
    let mut all = pids(&first);
    sess.apply(Command::Kill(Kind::Mach)).unwrap();
    let s = wait_for(&sess, "dead names and an unknown service", Duration::from_secs(10), |s| {
        let m = mach(s);
        let d = detail(m);
        let unknown =
            m.processes.iter().any(|p| p.events.iter().any(|e| e.text.contains("= BOOTSTRAP_UNKNOWN_SERVICE")));
        // The dead names stay in the clients' spaces while no server is
        // found: the class sees them.
        let dead = ["client-1", "client-2"].iter().all(|c| d.task(c).is_some_and(|t| t.names.iter().any(|n| n.dead())));
        d.clients.iter().all(|c| c.dead_name > 0) && d.bootstrap.is_empty() && d.port.is_none() && unknown && dead
    });
    let m = mach(&s);
    assert_eq!(m.processes[1].exit.as_deref(), Some("killed by SIGKILL"));
    assert!(m.notes.iter().any(|n| n.key == "dead-name"), "{:?}", m.notes);
    let events: Vec<&str> = m.processes.iter().flat_map(|p| p.events.iter().map(|e| e.text.as_str())).collect();
    assert!(
        events.iter().any(|e| e.contains("MACH_SEND_INVALID_DEST") || e.contains("MACH_NOTIFY_SEND_ONCE")),
        "{events:#?}"
    );
    sess.apply(Command::Restart(Kind::Mach)).unwrap();
    let back = wait_for(&sess, "served again", Duration::from_secs(10), |s| {
        let m = mach(s);
        m.processes[1].received > 5 && detail(m).bootstrap.len() == 1
    });
    all.extend(pids(&back));
    sess.shutdown();
    assert_nothing_left(&all);
}

/// A task of our own (this test process) next to the workload: names are
/// its own, it cannot receive without the receive right, an unknown
/// service is refused, and garbage on the socket gets an error while the
/// kernel stays up.
#[test]
fn an_outside_task_meets_the_rules_and_garbage_is_refused() {
    let _g = serial();
    let sess = session(&[Kind::Mach], &["producer.rate=20"]);
    let s = wait_for(&sess, "service up", Duration::from_secs(10), |s| detail(mach(s)).port.is_some());
    let sock = Path::new(&s.run.runtime_dir).join("mach.sock");
    let me = MachTask::connect(&sock, "outsider").expect("a task of our own");
    let bp = me.bootstrap_port();
    let service = me.bootstrap_look_up(bp, "edu.ipcscope.echo").expect("look up");
    // A send right is not a receive right.
    assert_eq!(kr(me.receive(service, MACH_RCV_TIMEOUT, 10).unwrap_err()), MACH_RCV_INVALID_NAME);
    // A name the task does not have at all.
    assert_eq!(kr(me.receive(0x7777_7703, MACH_RCV_TIMEOUT, 10).unwrap_err()), MACH_RCV_INVALID_NAME);
    assert_eq!(kr(me.bootstrap_look_up(bp, "edu.ipcscope.nobody").unwrap_err()), BOOTSTRAP_UNKNOWN_SERVICE);
    // Someone else's name for the port means nothing here.
    let st = Observer::connect(&sock).unwrap().state().unwrap();
    let mine = st.tasks.iter().find(|t| t.name == "outsider").unwrap();
    assert!(mine.names.iter().any(|n| n.name == service && n.send_urefs == 1));
    assert!(!mine.names.iter().any(|n| n.receive), "the outsider holds no receive right");

    // Garbage: an error answer, never a crash.
    let raw = Conn::connect(&sock).unwrap();
    for junk in [&b"\xff\xff\xff\xff"[..], &[0u8; 4096], b"mach_msg please"] {
        let mut buf = Vec::new();
        raw.send(junk, &[]).unwrap();
        raw.recv(&mut buf).unwrap();
        assert!(matches!(decode_reply(&buf), Ok(Reply::ProtocolError { .. })), "{junk:?} → {buf:?}");
    }
    drop(raw);
    let later = wait_for(&sess, "kernel still serving", Duration::from_secs(5), |s2| {
        mach(s2).integrity.delivered > mach(&s).integrity.delivered + 3 && detail(mach(s2)).kernel_up
    });
    assert!(mach(&later).processes[0].alive(), "the kernel survived");
    drop(me);
    let all = pids(&later);
    sess.shutdown();
    assert_nothing_left(&all);
}

/// Claims 13, 14, 15, 17 on the workload's own processes: client-1 tries
/// to receive on its send right (refused with MACH_RCV_INVALID_NAME while
/// the server keeps receiving), its two threads message each other's own
/// port, and its task port answers task_info — all read from the kernel.
#[test]
fn rights_threads_and_the_task_port_on_the_workload() {
    let _g = serial();
    let sess = session(
        &[Kind::Mach],
        &["producer.rate=20", "mach.intruder=true", "mach.thread_talk=true", "mach.task_info=true"],
    );
    let s = wait_for(&sess, "refusals, thread talk and task_info", Duration::from_secs(15), |s| {
        let d = detail(mach(s));
        let c1 = d.task("client-1");
        d.counters.rcv_invalid_name > 0
            && d.counters.within_task > 0
            && c1.is_some_and(|t| !t.rcv_refused.is_empty() && t.kobject_answers > 0)
            && mach(s).processes[1].received > 5
    });
    let m = mach(&s);
    let d = detail(m);
    let c1 = d.task("client-1").unwrap();
    let port = d.port.as_ref().expect("service port");
    // The name refused is client-1's send right to the service port.
    let (name, _) = c1.rcv_refused[0];
    assert!(c1.names.iter().any(|n| n.name == name && n.port == Some(port.id) && n.rights == "SEND"), "{:?}", c1.names);
    // Only the server holds RECEIVE for it, and only the intruder was refused.
    assert!(d
        .tasks
        .iter()
        .filter(|t| t.name != "server")
        .all(|t| t.names.iter().all(|n| n.port != Some(port.id) || n.rights != "RECEIVE")));
    assert!(d.tasks.iter().filter(|t| t.name != "client-1").all(|t| t.rcv_refused.is_empty()));
    let events: Vec<&str> = m.processes.iter().flat_map(|p| p.events.iter().map(|e| e.text.as_str())).collect();
    assert!(events.iter().any(|e| e.contains("= MACH_RCV_INVALID_NAME")), "{events:#?}");
    assert!(events.iter().any(|e| e.contains("task_info reply from the kernel")), "{events:#?}");
    assert!(events.iter().all(|e| !e.contains("(id 7")), "notifications by name: {events:#?}");
    assert_eq!(m.integrity.lost + m.integrity.corrupt, 0);
    let all = pids(&s);
    sess.shutdown();
    assert_nothing_left(&all);
}
