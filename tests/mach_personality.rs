//! `mach.personality` on the real kernel loop (`server::run` on a socket):
//! what a full queue does with `MACH_SEND_NOTIFY` under the textbook's, GNU
//! Mach's and XNU's rules, switched on the same live tasks.

use ipcscope::mechanisms::mach::client::{MachError, MachMsgArgs, MachTask, Observer, OutMsg};
use ipcscope::mechanisms::mach::state::KernelState;
use ipcscope::mechanisms::mach::types::*;

const TEXTBOOK: u32 = 0;
const XNU: u32 = 1;
const GNUMACH: u32 = 2;

#[path = "common/mach_test_kernel.rs"]
mod mach_test_kernel;
use mach_test_kernel::TestKernel;

fn kern(e: MachError) -> u32 {
    e.kr().unwrap_or_else(|| panic!("not a kernel code: {e}"))
}

fn msg(dest: u32, id: i32) -> OutMsg {
    OutMsg { bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, 0), remote_port: dest, id, ..OutMsg::default() }
}

/// `MACH_SEND_NOTIFY` with timeout 0: option 4 of the textbook.
fn notify_send(t: &MachTask, dest: u32, notify: u32, id: i32) -> u32 {
    let args = MachMsgArgs {
        options: MACH_SEND_MSG | MACH_SEND_TIMEOUT | MACH_SEND_NOTIFY,
        msg: Some(msg(dest, id)),
        notify,
        ..MachMsgArgs::default()
    };
    match t.mach_msg(args) {
        Ok(_) => KERN_SUCCESS,
        Err(e) => kern(e),
    }
}

/// A notification waiting on `port` now, if any: (msgh_id, the name it carries).
fn pending_note(t: &MachTask, port: u32) -> Option<(i32, u32)> {
    match t.receive(port, MACH_RCV_TIMEOUT, 0) {
        Ok(m) => {
            let name = m.body.get(8..12).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
            Some((m.header.id, name))
        }
        Err(e) => {
            assert_eq!(kern(e), MACH_RCV_TIMED_OUT);
            None
        }
    }
}

/// A server with a service port of qlimit 1, a client task with two threads
/// (each with its own notify port) and an observer.
struct Setup {
    _k: TestKernel,
    server: MachTask,
    service: u32,
    a: MachTask,
    b: MachTask,
    dest: u32,
    notify_a: u32,
    notify_b: u32,
    observer: Observer,
}

fn setup() -> Setup {
    let k = TestKernel::start();
    let server = MachTask::connect(k.path(), "server").expect("server");
    let service = server.bootstrap_check_in(server.bootstrap_port(), "p").expect("check in");
    server.mach_port_set_attributes(service, MACH_PORT_LIMITS_INFO, &[1]).expect("qlimit 1");
    let a = MachTask::connect(k.path(), "client").expect("client");
    let b = a.thread().expect("second thread");
    let dest = a.bootstrap_look_up(a.bootstrap_port(), "p").expect("look up");
    let notify_a = a.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("notify a");
    let notify_b = a.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("notify b");
    let observer = Observer::connect(k.path()).expect("observer");
    a.send(msg(dest, 1), 0, 0).expect("the queue's one slot");
    Setup { _k: k, server, service, a, b, dest, notify_a, notify_b, observer }
}

fn state(s: &Setup) -> KernelState {
    s.observer.state().expect("state")
}

fn queue_len(s: &Setup) -> usize {
    let st = state(s);
    st.ports.iter().filter(|p| p.qlimit == 1).map(|p| p.queue_len).sum()
}

#[test]
fn textbook_keeps_one_per_thread_and_notifies_when_queued() {
    let s = setup();
    assert_eq!(state(&s).personality, "textbook");
    assert_eq!(notify_send(&s.a, s.dest, s.notify_a, 2), MACH_SEND_WILL_NOTIFY);
    assert_eq!(notify_send(&s.a, s.dest, s.notify_a, 3), MACH_SEND_NOTIFY_IN_PROGRESS);
    // Another thread of the same task may keep one of its own.
    assert_eq!(notify_send(&s.b, s.dest, s.notify_b, 4), MACH_SEND_WILL_NOTIFY);
    assert_eq!(queue_len(&s), 3);
    assert_eq!(pending_note(&s.a, s.notify_a), None);
    // One leaves: thread a's kept message is now within the limit, and
    // the notification comes although nobody has received it yet.
    assert_eq!(s.server.receive(s.service, 0, 0).expect("first").header.id, 1);
    assert_eq!(pending_note(&s.a, s.notify_a), Some((MACH_NOTIFY_MSG_ACCEPTED, s.dest)));
    assert_eq!(queue_len(&s), 2);
    let c = state(&s).counters;
    assert_eq!((c.cached, c.accepted_on_queue, c.accepted_on_dequeue, c.notify_in_progress), (2, 1, 0, 1));
}

#[test]
fn gnumach_keeps_one_per_task_and_notifies_when_dequeued() {
    let s = setup();
    s.observer.set_personality(GNUMACH).expect("switch");
    assert_eq!(state(&s).personality, "gnumach");
    assert_eq!(notify_send(&s.a, s.dest, s.notify_a, 2), MACH_SEND_WILL_NOTIFY);
    // The slot is per task and send right: the other thread is refused.
    assert_eq!(notify_send(&s.b, s.dest, s.notify_b, 3), MACH_SEND_NOTIFY_IN_PROGRESS);
    // Another task may keep one of its own.
    let other = MachTask::connect(s._k.path(), "other").expect("other task");
    let other_dest = other.bootstrap_look_up(other.bootstrap_port(), "p").expect("look up");
    let other_notify = other.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("notify");
    assert_eq!(notify_send(&other, other_dest, other_notify, 4), MACH_SEND_WILL_NOTIFY);
    // The first message leaves; the kept one is now within the limit but
    // not received: no notification yet.
    assert_eq!(s.server.receive(s.service, 0, 0).expect("first").header.id, 1);
    assert_eq!(pending_note(&s.a, s.notify_a), None);
    // Received: now MACH_NOTIFY_MSG_ACCEPTED comes.
    assert_eq!(s.server.receive(s.service, 0, 0).expect("kept").header.id, 2);
    assert_eq!(pending_note(&s.a, s.notify_a), Some((MACH_NOTIFY_MSG_ACCEPTED, s.dest)));
    // The slot is free again for either thread.
    assert_eq!(notify_send(&s.b, s.dest, s.notify_b, 5), MACH_SEND_WILL_NOTIFY);
    let c = state(&s).since_personality;
    assert_eq!((c.cached, c.accepted_on_queue, c.accepted_on_dequeue, c.notify_in_progress), (3, 0, 1, 1));
}

#[test]
fn xnu_keeps_nothing_and_sends_send_possible() {
    let s = setup();
    // Not an XNU kernel yet: 66 is GNU Mach's MACH_NOTIFY_MSG_ACCEPTED,
    // which cannot be requested.
    let request = |t: &MachTask, notify| {
        t.mach_port_request_notification(s.dest, MACH_NOTIFY_SEND_POSSIBLE, 0, notify, MACH_MSG_TYPE_MAKE_SEND_ONCE)
    };
    assert_eq!(kern(request(&s.a, s.notify_a).unwrap_err()), KERN_INVALID_VALUE);
    s.observer.set_personality(XNU).expect("switch");
    assert_eq!(state(&s).personality, "xnu");
    // Without a request, MACH_SEND_NOTIFY changes nothing.
    assert_eq!(notify_send(&s.a, s.dest, s.notify_a, 2), MACH_SEND_TIMED_OUT);
    assert_eq!(state(&s).since_personality.send_possible_armed, 0);
    assert_eq!(request(&s.a, s.notify_a).expect("request"), MACH_PORT_NULL);
    // Full queue: nothing kept, the request is armed, the send times out.
    assert_eq!(notify_send(&s.a, s.dest, s.notify_a, 3), MACH_SEND_TIMED_OUT);
    assert_eq!(queue_len(&s), 1);
    assert_eq!(pending_note(&s.a, s.notify_a), None);
    // A receive frees a slot: MACH_NOTIFY_SEND_POSSIBLE with our name.
    assert_eq!(s.server.receive(s.service, 0, 0).expect("first").header.id, 1);
    assert_eq!(pending_note(&s.a, s.notify_a), Some((MACH_NOTIFY_SEND_POSSIBLE, s.dest)));
    // The request is used up: the next full queue tells nobody.
    s.a.send(msg(s.dest, 4), 0, 0).expect("fits again");
    assert_eq!(notify_send(&s.a, s.dest, s.notify_a, 5), MACH_SEND_TIMED_OUT);
    assert_eq!(s.server.receive(s.service, 0, 0).expect("next").header.id, 4);
    assert_eq!(pending_note(&s.a, s.notify_a), None);
    let c = state(&s).since_personality;
    assert_eq!((c.cached, c.send_possible_armed, c.send_possible, c.returned_at_once), (0, 1, 1, 3));
    assert_eq!(state(&s).counters.accepted_on_queue + state(&s).counters.accepted_on_dequeue, 0);
}

#[test]
fn switching_live_keeps_the_promises_made() {
    let s = setup();
    // Kept under the textbook's rule...
    assert_eq!(notify_send(&s.a, s.dest, s.notify_a, 2), MACH_SEND_WILL_NOTIFY);
    // ...then the kernel becomes XNU: no new message is kept,
    s.observer.set_personality(XNU).expect("switch");
    assert_eq!(notify_send(&s.b, s.dest, s.notify_b, 3), MACH_SEND_TIMED_OUT);
    // and the kept one is still notified, when it is received.
    assert_eq!(s.server.receive(s.service, 0, 0).expect("first").header.id, 1);
    assert_eq!(pending_note(&s.a, s.notify_a), None);
    assert_eq!(s.server.receive(s.service, 0, 0).expect("kept").header.id, 2);
    assert_eq!(pending_note(&s.a, s.notify_a).map(|n| n.0), Some(MACH_NOTIFY_MSG_ACCEPTED));
    // Back to the textbook on the same tasks.
    s.a.set_personality(TEXTBOOK).expect("a task may switch too");
    assert_eq!(state(&s).personality, "textbook");
    assert_eq!(kern(s.observer.set_personality(3).unwrap_err()), KERN_INVALID_VALUE);
    let log = state(&s).log;
    assert!(log.iter().any(|l| l.text.starts_with("mach.personality = xnu")), "{log:?}");
}
