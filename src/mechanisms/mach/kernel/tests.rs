//! Unit tests of the pure kernel: each textbook behaviour, the real
//! kernels' rules we follow, and a hostile random workload checked against
//! the invariants after every step.

use super::*;
use crate::mechanisms::mach::proto::{
    message_size, Descriptor, MachMsgRequest, MsgHeader, ReceivedDescriptor, ReceivedMessage,
};
use crate::mechanisms::mach::state::{NameState, ReceiverState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Stand-in for an OOL memfd that counts how many are alive, so a test can
/// see that the kernel never leaks one.
#[derive(Debug)]
struct Mem(Arc<AtomicUsize>);

impl Mem {
    fn new(live: &Arc<AtomicUsize>) -> Mem {
        live.fetch_add(1, Ordering::SeqCst);
        Mem(live.clone())
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, Debug)]
struct TaskInfo {
    conn: ConnId,
    task: u32,
    token: u64,
    pid: i32,
    bootstrap: u32,
}

struct H {
    k: Kernel<Mem>,
    now: u64,
    next_conn: ConnId,
    live: Arc<AtomicUsize>,
}

fn peer(pid: i32) -> PeerCred {
    PeerCred { pid, uid: 1000, gid: 1000 }
}

fn msg(dest: u32, dest_disp: u32, reply: u32, reply_disp: u32, id: i32, body: &[u8]) -> MachMsgRequest {
    let header = MsgHeader {
        bits: mach_msgh_bits(dest_disp, if reply == 0 { 0 } else { reply_disp }),
        size: message_size(body.len(), &[]) as u32,
        remote_port: dest,
        local_port: reply,
        voucher_port: 0,
        id,
    };
    MachMsgRequest { options: MACH_SEND_MSG, header, body: body.to_vec(), rcv_size: 1 << 20, ..Default::default() }
}

fn with_descriptors(mut m: MachMsgRequest, descriptors: Vec<Descriptor>) -> MachMsgRequest {
    m.header.size = message_size(m.body.len(), &descriptors) as u32;
    m.header.bits |= MACH_MSGH_BITS_COMPLEX;
    m.descriptors = descriptors;
    m
}

fn rcv(name: u32, options: u32, timeout: u32) -> MachMsgRequest {
    MachMsgRequest {
        options: MACH_RCV_MSG | options,
        rcv_name: name,
        rcv_timeout: timeout,
        rcv_size: 1 << 20,
        ..Default::default()
    }
}

impl H {
    fn new() -> H {
        H { k: Kernel::new(Limits::default(), 42), now: 0, next_conn: 1, live: Arc::new(AtomicUsize::new(0)) }
    }

    fn handle(&mut self, conn: ConnId, req: Request, fds: Vec<Attachment<Mem>>) -> Vec<Outgoing<Mem>> {
        let out = self.k.handle(conn, req, fds, self.now);
        self.k.check_invariants().unwrap_or_else(|e| panic!("invariant broken: {e}"));
        out
    }

    /// The reply to `conn` among `out` (and nothing else for it).
    fn reply_for(out: &[Outgoing<Mem>], conn: ConnId) -> Option<Reply> {
        let mut replies = out.iter().filter_map(|o| match o {
            Outgoing::Reply { conn: c, reply, .. } if *c == conn => Some(reply.clone()),
            _ => None,
        });
        let first = replies.next();
        assert!(replies.next().is_none(), "two replies to one call");
        first
    }

    fn call(&mut self, conn: ConnId, req: Request) -> Reply {
        let out = self.handle(conn, req, Vec::new());
        H::reply_for(&out, conn).expect("a reply")
    }

    fn task(&mut self, name: &str, pid: i32) -> TaskInfo {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.k.connect(conn, peer(pid));
        match self.call(conn, Request::RegisterTask { name: name.into() }) {
            Reply::Registered { task, token, bootstrap, .. } => TaskInfo { conn, task, token, pid, bootstrap },
            other => panic!("register: {other:?}"),
        }
    }

    fn thread(&mut self, t: &TaskInfo) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.k.connect(conn, peer(t.pid));
        match self.call(conn, Request::JoinTask { task: t.task, token: t.token }) {
            Reply::Registered { .. } => conn,
            other => panic!("join: {other:?}"),
        }
    }

    fn port(&mut self, conn: ConnId) -> u32 {
        match self.call(conn, Request::PortAllocate { right: MACH_PORT_RIGHT_RECEIVE }) {
            Reply::Name { kr: 0, name } => name,
            other => panic!("allocate: {other:?}"),
        }
    }

    fn status(&mut self, conn: ConnId, req: Request) -> u32 {
        match self.call(conn, req) {
            Reply::Status { kr } | Reply::Name { kr, .. } | Reply::Attributes { kr, .. } => kr,
            other => panic!("status: {other:?}"),
        }
    }

    fn name(&mut self, conn: ConnId, req: Request) -> (u32, u32) {
        match self.call(conn, req) {
            Reply::Name { kr, name } => (kr, name),
            other => panic!("name: {other:?}"),
        }
    }

    /// `mach_msg`; `None` when the call blocks.
    fn mm(&mut self, conn: ConnId, m: MachMsgRequest) -> Option<(u32, Option<ReceivedMessage>)> {
        let out = self.handle(conn, Request::MachMsg(m), Vec::new());
        H::reply_for(&out, conn).map(|r| match r {
            Reply::Msg { kr, msg } => (kr, msg),
            other => panic!("mach_msg: {other:?}"),
        })
    }

    fn send(&mut self, conn: ConnId, m: MachMsgRequest) -> Option<u32> {
        self.mm(conn, m).map(|(kr, _)| kr)
    }

    fn recv(&mut self, conn: ConnId, name: u32) -> (u32, Option<ReceivedMessage>) {
        self.mm(conn, rcv(name, MACH_RCV_TIMEOUT, 0)).expect("a polling receive never blocks")
    }

    fn tick(&mut self, ms: u64) -> Vec<Outgoing<Mem>> {
        self.now += ms;
        let out = self.k.tick(self.now);
        self.k.check_invariants().unwrap_or_else(|e| panic!("invariant broken: {e}"));
        out
    }

    fn disconnect(&mut self, conn: ConnId) -> Vec<Outgoing<Mem>> {
        let out = self.k.disconnect(conn, self.now);
        self.k.check_invariants().unwrap_or_else(|e| panic!("invariant broken: {e}"));
        out
    }

    fn queue_len(&self, task: u32, name: u32) -> usize {
        let st = self.k.state();
        let port = self.port_id(task, name);
        st.ports.iter().find(|p| p.id == port).map_or(0, |p| p.queue_len)
    }

    fn entry(&self, task: u32, name: u32) -> Option<NameState> {
        let st = self.k.state();
        st.tasks.iter().find(|t| t.id == task)?.names.iter().find(|n| n.name == name).cloned()
    }

    fn port_id(&self, task: u32, name: u32) -> PortId {
        self.entry(task, name).and_then(|e| e.port).expect("name denotes a port")
    }

    /// A server task with a service, and a client holding a send right.
    fn pair(&mut self) -> (TaskInfo, u32, TaskInfo, u32) {
        let s = self.task("server", 100);
        let c = self.task("client", 200);
        let (kr, service) = self.name(s.conn, Request::BootstrapCheckIn { bp: s.bootstrap, service: "svc".into() });
        assert_eq!(kr, KERN_SUCCESS);
        let (kr, send) = self.name(c.conn, Request::BootstrapLookUp { bp: c.bootstrap, service: "svc".into() });
        assert_eq!(kr, KERN_SUCCESS);
        (s, service, c, send)
    }

    fn fill(&mut self, conn: ConnId, dest: u32, n: usize) {
        for i in 0..n {
            assert_eq!(self.send(conn, msg(dest, MACH_MSG_TYPE_COPY_SEND, 0, 0, i as i32, b"fill")), Some(0));
        }
    }
}

fn kr_of(out: &[Outgoing<Mem>], conn: ConnId) -> Option<u32> {
    H::reply_for(out, conn).map(|r| match r {
        Reply::Msg { kr, .. } => kr,
        other => panic!("{other:?}"),
    })
}

#[test]
fn names_look_like_xnu_and_differ_per_task() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    // index << 8 | generation, generation 3 on first use.
    assert_eq!(service & 0xff, 0x03);
    assert_eq!(h.port_id(s.task, service), h.port_id(c.task, send));
    // Past the first eight slots, names are scattered as in XNU.
    let names: Vec<u32> = (0..12).map(|_| h.port(c.conn)).collect();
    assert!(names.iter().all(|n| n & 0xff == 0x03 && n >> 8 != 0));
    assert!(names.iter().any(|n| n >> 8 > 16), "{names:x?}");
    // A name means nothing outside its task: the server's name for the
    // service, used by the client, denotes whatever the client has there.
    let theirs = h.entry(c.task, service).and_then(|e| e.port);
    assert_ne!(theirs, Some(h.port_id(s.task, service)).filter(|_| service != send));
    // Deallocating and reallocating a slot bumps its generation by 4.
    let p = h.port(s.conn);
    assert_eq!(h.status(s.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_RECEIVE, delta: -1 }), 0);
    let reused: Vec<u32> = (0..80).map(|_| h.port(s.conn)).collect();
    assert!(reused.contains(&(p + 4)), "slot {:#x} reused with gen+4", p >> 8);
}

#[test]
fn receive_needs_the_receive_right() {
    let mut h = H::new();
    let (_s, _service, c, send) = h.pair();
    assert_eq!(h.recv(c.conn, send).0, MACH_RCV_INVALID_NAME);
    assert_eq!(h.recv(c.conn, 0x9903).0, MACH_RCV_INVALID_NAME);
}

#[test]
fn rpc_with_a_send_once_reply_right_consumed_by_use() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let reply_port = h.port(c.conn);
    // The reply port is "full" (qlimit 0): a reply still lands (XNU §4.3).
    assert_eq!(
        h.status(c.conn, Request::PortSetAttributes { name: reply_port, flavor: MACH_PORT_LIMITS_INFO, info: vec![0] }),
        0
    );
    let mut req = msg(send, MACH_MSG_TYPE_COPY_SEND, reply_port, MACH_MSG_TYPE_MAKE_SEND_ONCE, 500, b"ping");
    req.options |= MACH_RCV_MSG;
    req.rcv_name = reply_port;
    assert_eq!(h.mm(c.conn, req), None, "client waits for the reply");

    let (kr, got) = h.recv(s.conn, service);
    assert_eq!(kr, 0);
    let got = got.expect("message");
    // Swapped header: remote = the reply right, local = the service name.
    assert_eq!(got.header.local_port, service);
    assert_eq!(mach_msgh_bits_remote(got.header.bits), MACH_MSG_TYPE_PORT_SEND_ONCE);
    assert_eq!(got.audit_token[5], 200, "the trailer names the sender's pid");
    let so = got.header.remote_port;
    assert!(h.entry(s.task, so).is_some_and(|e| e.send_once));

    let out = h.handle(s.conn, Request::MachMsg(msg(so, MACH_MSG_TYPE_MOVE_SEND_ONCE, 0, 0, 600, b"pong")), Vec::new());
    assert_eq!(kr_of(&out, s.conn), Some(0));
    match H::reply_for(&out, c.conn) {
        Some(Reply::Msg { kr: 0, msg: Some(m) }) => {
            assert_eq!(m.header.id, 600);
            assert_eq!(m.body, b"pong");
            assert_eq!(m.audit_token[5], 100);
        }
        other => panic!("client reply: {other:?}"),
    }
    // Used once, gone.
    assert!(h.entry(s.task, so).is_none());
    assert_eq!(h.send(s.conn, msg(so, MACH_MSG_TYPE_MOVE_SEND_ONCE, 0, 0, 601, b"")), Some(MACH_SEND_INVALID_DEST));
}

#[test]
fn full_queue_option_1_blocks_until_room() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    h.fill(c.conn, send, MACH_PORT_QLIMIT_DEFAULT as usize);
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 99, b"late")), None);
    assert_eq!(h.k.state().counters.blocked, 1);
    // Even much later it is still waiting.
    assert!(kr_of(&h.tick(60_000), c.conn).is_none());
    let out = h.handle(s.conn, Request::MachMsg(rcv(service, 0, 0)), Vec::new());
    assert_eq!(kr_of(&out, c.conn), Some(MACH_MSG_SUCCESS));
    assert_eq!(h.queue_len(s.task, service), 5);
}

#[test]
fn full_queue_option_2_times_out_after_n_ms() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    h.fill(c.conn, send, 5);
    let mut m = msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 99, b"late");
    m.options |= MACH_SEND_TIMEOUT;
    m.send_timeout = 10;
    assert_eq!(h.send(c.conn, m), None);
    // Sent during millisecond 0: the wait may end in millisecond 11, not
    // 10, which could come less than 10 ms after the call.
    assert_eq!(h.k.next_deadline(), Some(11));
    assert!(kr_of(&h.tick(10), c.conn).is_none());
    assert_eq!(kr_of(&h.tick(1), c.conn), Some(MACH_SEND_TIMED_OUT));
    assert_eq!(h.k.counters().send_timed_out, 1);
    assert_eq!(h.queue_len(s.task, service), 5);
    assert!(
        h.k.state().log.iter().any(|l| l.text.contains("mach_msg(SEND|SEND_TIMEOUT, dest=")
            && l.text.contains("timeout=10) = MACH_SEND_TIMED_OUT"))
            && h.k.state().log.iter().any(|l| l.text.ends_with("msgh_id=4) = MACH_MSG_SUCCESS"))
    );
}

#[test]
fn full_queue_option_3_returns_at_once() {
    let mut h = H::new();
    let (_s, _service, c, send) = h.pair();
    let reply = h.port(c.conn);
    h.fill(c.conn, send, 5);
    let before = h.k.state().tasks.iter().find(|t| t.id == c.task).map(|t| t.names.clone());
    let mut m = msg(send, MACH_MSG_TYPE_COPY_SEND, reply, MACH_MSG_TYPE_MAKE_SEND, 99, b"now");
    m.options |= MACH_SEND_TIMEOUT;
    assert_eq!(h.send(c.conn, m), Some(MACH_SEND_TIMED_OUT));
    assert_eq!(h.k.counters().returned_at_once, 1);
    let after = h.k.state().tasks.iter().find(|t| t.id == c.task).map(|t| t.names.clone());
    assert_eq!(before, after, "a failed send leaves the space as it was");
}

#[test]
fn full_queue_option_4_keeps_one_message_per_thread_and_notifies() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let notify = h.port(c.conn);
    let t2 = h.thread(&c);
    h.fill(c.conn, send, 5);
    let cached = |dest: u32, id: i32| {
        let mut m = msg(dest, MACH_MSG_TYPE_COPY_SEND, 0, 0, id, b"kept");
        m.options |= MACH_SEND_TIMEOUT | MACH_SEND_NOTIFY;
        m.notify = notify;
        m
    };
    assert_eq!(h.send(c.conn, cached(send, 70)), Some(MACH_SEND_WILL_NOTIFY));
    assert_eq!(h.queue_len(s.task, service), 6, "kept past the limit");
    assert_eq!(h.send(c.conn, cached(send, 71)), Some(MACH_SEND_NOTIFY_IN_PROGRESS));
    // Another thread of the same task has its own slot.
    assert_eq!(h.send(t2, cached(send, 72)), Some(MACH_SEND_WILL_NOTIFY));
    assert_eq!(h.k.counters().cached, 2);
    let st = h.k.state();
    let q = &st.ports.iter().find(|p| p.id == h.port_id(s.task, service)).expect("port").queue;
    assert_eq!(q.iter().filter(|m| m.cached).count(), 2);

    // One receive: the first kept message is now within the limit.
    assert_eq!(h.recv(s.conn, service).0, 0);
    let (kr, note) = h.recv(c.conn, notify);
    assert_eq!(kr, 0);
    let note = note.expect("notification");
    assert_eq!(note.header.id, MACH_NOTIFY_MSG_ACCEPTED);
    assert_eq!(&note.body[8..12], &send.to_le_bytes(), "carries the send right's name");
    assert_eq!(note.audit_token[5], 0, "sent by the kernel");
    assert_eq!(h.recv(c.conn, notify).0, MACH_RCV_TIMED_OUT, "the second is not accepted yet");
    // The first thread may keep another one now.
    assert_eq!(h.send(c.conn, cached(send, 73)), Some(MACH_SEND_WILL_NOTIFY));
    assert_eq!(h.k.counters().notified, 1);

    // Without a receive right for the notification: MACH_SEND_INVALID_NOTIFY.
    let mut bad = cached(send, 74);
    bad.notify = send;
    let t3 = h.thread(&c);
    assert_eq!(h.send(t3, bad), Some(MACH_SEND_INVALID_NOTIFY));
}

#[test]
fn option_4_after_a_timeout_and_on_destruction() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let notify = h.port(c.conn);
    h.fill(c.conn, send, 5);
    let mut m = msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 80, b"");
    m.options |= MACH_SEND_TIMEOUT | MACH_SEND_NOTIFY;
    m.send_timeout = 5;
    m.notify = notify;
    assert_eq!(h.send(c.conn, m), None);
    assert_eq!(kr_of(&h.tick(6), c.conn), Some(MACH_SEND_WILL_NOTIFY));
    // The server dies: its queue is destroyed and the kept message's
    // notification still arrives.
    h.disconnect(s.conn);
    assert_eq!(h.k.counters().destroyed, 6);
    let (kr, note) = h.recv(c.conn, notify);
    assert_eq!((kr, note.map(|n| n.header.id)), (0, Some(MACH_NOTIFY_MSG_ACCEPTED)));
    let _ = service;
}

#[test]
fn send_once_destination_ignores_the_qlimit() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    h.fill(c.conn, send, 5);
    // An ordinary send would wait now...
    let mut m = msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 8, b"");
    m.options |= MACH_SEND_TIMEOUT;
    assert_eq!(h.send(c.conn, m), Some(MACH_SEND_TIMED_OUT));
    // ... but a message to a send-once right never does (MAKE_SEND_ONCE
    // from the receive right makes the destination a send-once right).
    assert_eq!(h.send(s.conn, msg(service, MACH_MSG_TYPE_MAKE_SEND_ONCE, 0, 0, 9, b"reply")), Some(0));
    assert_eq!(h.queue_len(s.task, service), 6);
    let st = h.k.state();
    let q = &st.ports.iter().find(|p| p.id == h.port_id(s.task, service)).expect("port").queue;
    assert!(q[5].to_send_once);
}

#[test]
fn blocked_senders_wake_in_fifo_order_and_queue_is_fifo() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let d = h.task("d", 300);
    let (_, d_send) = h.name(d.conn, Request::BootstrapLookUp { bp: d.bootstrap, service: "svc".into() });
    // Interleaved sends from two tasks keep each sender's order.
    for i in 0..2 {
        assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 10 + i, b"")), Some(0));
        assert_eq!(h.send(d.conn, msg(d_send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 20 + i, b"")), Some(0));
    }
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 12, b"")), Some(0));
    // Now full: three more threads block in order.
    let waiters: Vec<ConnId> = (0..3).map(|_| h.thread(&c)).collect();
    for (i, w) in waiters.iter().enumerate() {
        assert_eq!(h.send(*w, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 30 + i as i32, b"")), None);
    }
    let mut order = Vec::new();
    for _ in 0..8 {
        let out = h.handle(s.conn, Request::MachMsg(rcv(service, MACH_RCV_TIMEOUT, 0)), Vec::new());
        match H::reply_for(&out, s.conn) {
            Some(Reply::Msg { kr: 0, msg: Some(m) }) => order.push(m.header.id),
            other => panic!("{other:?}"),
        }
        // Exactly the first waiter still blocked is released.
        let released: Vec<usize> =
            waiters.iter().enumerate().filter(|(_, w)| kr_of(&out, **w).is_some()).map(|(i, _)| i).collect();
        assert!(released.len() <= 1);
    }
    assert_eq!(order, vec![10, 20, 11, 21, 12, 30, 31, 32]);
    let seqnos_ok = h.k.state().ports.iter().any(|p| p.seqno == 8);
    assert!(seqnos_ok);
}

#[test]
fn dead_names_when_the_receiver_dies_and_queue_destroyed() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    // Two urefs under one name: look-ups coalesce.
    let (_, again) = h.name(c.conn, Request::BootstrapLookUp { bp: c.bootstrap, service: "svc".into() });
    assert_eq!(again, send);
    assert_eq!(h.entry(c.task, send).map(|e| e.send_urefs), Some(2));
    // A queued message carries a receive right: it dies with the queue.
    let carried = h.port(c.conn);
    let m = with_descriptors(
        msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 1, b""),
        vec![Descriptor::Port { name: carried, disposition: MACH_MSG_TYPE_MOVE_RECEIVE }],
    );
    assert_eq!(h.send(c.conn, m), Some(0));
    h.fill(c.conn, send, 4);
    let blocked = h.thread(&c);
    assert_eq!(h.send(blocked, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 9, b"")), None);
    let ports_before = h.k.state().ports.len();

    assert_eq!(h.status(s.conn, Request::PortModRefs { name: service, right: MACH_PORT_RIGHT_RECEIVE, delta: -1 }), 0);
    let e = h.entry(c.task, send).expect("still named");
    assert_eq!((e.dead_name_urefs, e.send_urefs), (2, 0), "send rights became a dead name, urefs kept");
    assert_eq!(h.k.counters().destroyed, 5);
    assert_eq!(h.k.state().ports.len(), ports_before - 2, "the service port and the carried port died");
    assert!(h.k.state().bootstrap.is_empty(), "the service left the registry");
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 2, b"")), Some(MACH_SEND_INVALID_DEST));
    // The blocked sender failed (its message went back to it).
    let st = h.k.state();
    assert!(st.log.iter().any(|l| l.text.contains("msgh_id=9) = MACH_SEND_INVALID_DEST")));
    assert!(st.tasks.iter().flat_map(|t| &t.threads).all(|t| t.blocked.is_none()));
    // Two deallocations remove the dead name.
    assert_eq!(h.status(c.conn, Request::PortDeallocate { name: send }), 0);
    assert_eq!(h.status(c.conn, Request::PortDeallocate { name: send }), 0);
    assert!(h.entry(c.task, send).is_none());
}

#[test]
fn dead_name_notification_on_task_death() {
    let mut h = H::new();
    let (s, _service, c, send) = h.pair();
    let notify = h.port(c.conn);
    let (kr, previous) = h.name(
        c.conn,
        Request::PortRequestNotification {
            name: send,
            msgid: MACH_NOTIFY_DEAD_NAME,
            sync: 0,
            notify,
            notify_disposition: MACH_MSG_TYPE_MAKE_SEND_ONCE,
        },
    );
    assert_eq!((kr, previous), (0, 0));
    assert!(h.entry(c.task, send).is_some_and(|e| e.dead_name_request));
    // A receiver blocked on its own port sees it die with the task.
    let waiting = h.thread(&c);
    assert_eq!(h.mm(waiting, rcv(notify, 0, 0)), None);
    let out = h.disconnect(s.conn);
    match H::reply_for(&out, waiting) {
        Some(Reply::Msg { kr: 0, msg: Some(m) }) => {
            assert_eq!(m.header.id, MACH_NOTIFY_DEAD_NAME);
            assert_eq!(&m.body[8..12], &send.to_le_bytes());
        }
        other => panic!("{other:?}"),
    }
    // The request's reference is added to the dead name's.
    assert_eq!(h.entry(c.task, send).map(|e| e.dead_name_urefs), Some(2));
    assert_eq!(
        h.status(
            c.conn,
            Request::PortRequestNotification {
                name: send,
                msgid: MACH_NOTIFY_DEAD_NAME,
                sync: 0,
                notify,
                notify_disposition: MACH_MSG_TYPE_MAKE_SEND_ONCE
            }
        ),
        KERN_INVALID_ARGUMENT
    );
    assert_eq!(
        h.status(
            c.conn,
            Request::PortRequestNotification {
                name: notify,
                msgid: MACH_NOTIFY_NO_SENDERS,
                sync: 0,
                notify,
                notify_disposition: MACH_MSG_TYPE_MAKE_SEND_ONCE
            }
        ),
        KERN_INVALID_VALUE
    );
}

#[test]
fn receiver_blocked_on_a_dying_port_gets_port_died() {
    let mut h = H::new();
    let a = h.task("a", 1);
    let p = h.port(a.conn);
    let t = h.thread(&a);
    assert_eq!(h.mm(t, rcv(p, 0, 0)), None);
    let out = h.handle(a.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_RECEIVE, delta: -1 }, Vec::new());
    assert_eq!(kr_of(&out, t), Some(MACH_RCV_PORT_DIED));
}

#[test]
fn bootstrap_server_rules() {
    let mut h = H::new();
    let (s, _service, c, _send) = h.pair();
    assert_eq!(
        h.name(c.conn, Request::BootstrapLookUp { bp: c.bootstrap, service: "nope".into() }).0,
        BOOTSTRAP_UNKNOWN_SERVICE
    );
    assert_eq!(
        h.name(c.conn, Request::BootstrapCheckIn { bp: c.bootstrap, service: "svc".into() }).0,
        BOOTSTRAP_SERVICE_ACTIVE
    );
    let p = h.port(c.conn);
    assert_eq!(
        h.status(c.conn, Request::BootstrapRegister { bp: c.bootstrap, service: "svc".into(), port: p }),
        BOOTSTRAP_NAME_IN_USE
    );
    assert_eq!(h.status(c.conn, Request::BootstrapRegister { bp: c.bootstrap, service: "mine".into(), port: p }), 0);
    assert_eq!(
        h.name(s.conn, Request::BootstrapCheckIn { bp: s.bootstrap, service: "mine".into() }).0,
        BOOTSTRAP_NOT_PRIVILEGED
    );
    assert_eq!(h.name(c.conn, Request::BootstrapLookUp { bp: p, service: "svc".into() }).0, MACH_SEND_INVALID_DEST);
    assert_eq!(
        h.name(c.conn, Request::BootstrapLookUp { bp: c.bootstrap, service: String::new() }).0,
        BOOTSTRAP_BAD_COUNT
    );
    // A message to the bootstrap port itself is refused (no MIG server).
    assert_eq!(h.send(c.conn, msg(c.bootstrap, MACH_MSG_TYPE_COPY_SEND, 0, 0, 404, b"")), Some(MACH_SEND_INVALID_DEST));
    let services: Vec<String> = h.k.state().bootstrap.iter().map(|b| b.name.clone()).collect();
    assert_eq!(services, vec!["mine".to_string(), "svc".to_string()]);
}

#[test]
fn rights_move_in_messages_per_disposition() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let q = h.port(c.conn);
    let q_id = h.port_id(c.task, q);
    let other = h.port(c.conn);
    let m = with_descriptors(
        msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 1, b""),
        vec![
            Descriptor::Port { name: q, disposition: MACH_MSG_TYPE_MOVE_RECEIVE },
            Descriptor::Port { name: other, disposition: MACH_MSG_TYPE_MAKE_SEND },
            Descriptor::Port { name: other, disposition: MACH_MSG_TYPE_MAKE_SEND_ONCE },
            Descriptor::Port { name: 0, disposition: MACH_MSG_TYPE_COPY_SEND },
        ],
    );
    assert_eq!(h.send(c.conn, m), Some(0));
    assert!(h.entry(c.task, q).is_none(), "the receive right left the sender");
    assert!(matches!(
        h.k.state().ports.iter().find(|p| p.id == q_id).map(|p| p.receiver.clone()),
        Some(ReceiverState::InTransit { .. })
    ));
    let (kr, got) = h.recv(s.conn, service);
    assert_eq!(kr, 0);
    let got = got.expect("msg");
    let names: Vec<(u32, u32)> = got
        .descriptors
        .iter()
        .map(|d| match d {
            ReceivedDescriptor::Port { name, type_name } => (*name, *type_name),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names[0].1, MACH_MSG_TYPE_PORT_RECEIVE);
    assert_eq!(names[1].1, MACH_MSG_TYPE_PORT_SEND);
    assert_eq!(names[2].1, MACH_MSG_TYPE_PORT_SEND_ONCE);
    assert_eq!(names[3], (0, MACH_MSG_TYPE_PORT_SEND));
    assert_ne!(names[1].0, names[2].0, "send-once rights get their own name");
    assert_eq!(h.port_id(s.task, names[0].0), q_id);
    assert_eq!(
        h.k.state().ports.iter().find(|p| p.id == q_id).map(|p| p.receiver.clone()),
        Some(ReceiverState::Task { task: s.task, name: names[0].0 })
    );
    // The new holder receives on it; the old one cannot.
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 2, b"")), Some(0));
    assert_eq!(h.recv(c.conn, q).0, MACH_RCV_INVALID_NAME);
    assert_eq!(h.recv(s.conn, names[0].0).0, MACH_RCV_TIMED_OUT);
    // A right not held, or a receive right not held: MACH_SEND_INVALID_RIGHT.
    let bad = with_descriptors(
        msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 3, b""),
        vec![Descriptor::Port { name: send, disposition: MACH_MSG_TYPE_MOVE_RECEIVE }],
    );
    assert_eq!(h.send(c.conn, bad), Some(MACH_SEND_INVALID_RIGHT));
    // MOVE_SEND of the last uref removes the name.
    let one = h.name(c.conn, Request::BootstrapLookUp { bp: c.bootstrap, service: "svc".into() }).1;
    assert_eq!(one, send);
    assert_eq!(h.entry(c.task, send).map(|e| e.send_urefs), Some(2));
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_MOVE_SEND, 0, 0, 4, b"")), Some(0));
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_MOVE_SEND, 0, 0, 5, b"")), Some(0));
    assert!(h.entry(c.task, send).is_none());
}

#[test]
fn circular_receive_right_is_destroyed() {
    let mut h = H::new();
    let a = h.task("a", 1);
    let p = h.port(a.conn);
    let m = with_descriptors(
        msg(p, MACH_MSG_TYPE_MAKE_SEND, 0, 0, 1, b""),
        vec![Descriptor::Port { name: p, disposition: MACH_MSG_TYPE_MOVE_RECEIVE }],
    );
    assert_eq!(h.send(a.conn, m), Some(0));
    assert!(h.entry(a.task, p).is_none());
    assert_eq!(h.k.usage().0, 1, "only the task port is left");
}

#[test]
fn qlimit_set_get_and_bounds() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let get = |h: &mut H| match h
        .call(s.conn, Request::PortGetAttributes { name: service, flavor: MACH_PORT_LIMITS_INFO, count: 1 })
    {
        Reply::Attributes { kr: 0, info } => info[0],
        other => panic!("{other:?}"),
    };
    assert_eq!(get(&mut h), 5);
    let set = |h: &mut H, v: i32| {
        h.status(s.conn, Request::PortSetAttributes { name: service, flavor: MACH_PORT_LIMITS_INFO, info: vec![v] })
    };
    assert_eq!(set(&mut h, 1024), 0);
    assert_eq!(get(&mut h), 1024);
    assert_eq!(set(&mut h, 1025), KERN_INVALID_VALUE);
    assert_eq!(set(&mut h, -1), KERN_INVALID_VALUE);
    assert_eq!(set(&mut h, 0), 0);
    assert_eq!(get(&mut h), 0);
    assert_eq!(
        h.status(s.conn, Request::PortSetAttributes { name: service, flavor: MACH_PORT_LIMITS_INFO, info: vec![] }),
        KERN_FAILURE
    );
    assert_eq!(
        h.status(c.conn, Request::PortSetAttributes { name: send, flavor: MACH_PORT_LIMITS_INFO, info: vec![3] }),
        KERN_INVALID_RIGHT
    );
    assert_eq!(
        h.status(c.conn, Request::PortSetAttributes { name: 0x4242, flavor: MACH_PORT_LIMITS_INFO, info: vec![3] }),
        KERN_INVALID_NAME
    );
    // qlimit 0: a sender blocks; a receiver takes its message directly.
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 7, b"")), None);
    let out = h.handle(s.conn, Request::MachMsg(rcv(service, 0, 0)), Vec::new());
    assert_eq!(kr_of(&out, s.conn), Some(0));
    assert_eq!(kr_of(&out, c.conn), Some(0));
    // Raising the limit wakes a waiting sender.
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 8, b"")), None);
    let out = h.handle(
        s.conn,
        Request::PortSetAttributes { name: service, flavor: MACH_PORT_LIMITS_INFO, info: vec![2] },
        Vec::new(),
    );
    assert_eq!(kr_of(&out, c.conn), Some(0));
    let status = match h
        .call(s.conn, Request::PortGetAttributes { name: service, flavor: MACH_PORT_RECEIVE_STATUS, count: 10 })
    {
        Reply::Attributes { kr: 0, info } => info,
        other => panic!("{other:?}"),
    };
    assert_eq!((status[3], status[4]), (2, 1), "mps_qlimit, mps_msgcount");
    // Lowering below the current depth is allowed.
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 9, b"")), Some(0));
    assert_eq!(set(&mut h, 1), 0);
}

#[test]
fn receive_timeout_and_too_large() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    assert_eq!(h.mm(s.conn, rcv(service, MACH_RCV_TIMEOUT, 50)), None);
    assert!(kr_of(&h.tick(50), s.conn).is_none(), "never before 50 whole ms");
    assert_eq!(kr_of(&h.tick(1), s.conn), Some(MACH_RCV_TIMED_OUT));
    assert_eq!(h.send(c.conn, msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 1, &[0; 100])), Some(0));
    let mut small = rcv(service, MACH_RCV_TIMEOUT | MACH_RCV_LARGE, 0);
    small.rcv_size = 64;
    match h.mm(s.conn, small.clone()) {
        Some((kr, Some(m))) => assert_eq!((kr, m.header.size), (MACH_RCV_TOO_LARGE, 124)),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.queue_len(s.task, service), 1, "kept with MACH_RCV_LARGE");
    small.options &= !MACH_RCV_LARGE;
    assert_eq!(h.mm(s.conn, small).map(|r| r.0), Some(MACH_RCV_TOO_LARGE));
    assert_eq!(h.queue_len(s.task, service), 0, "lost without it");
}

#[test]
fn header_validation() {
    let mut h = H::new();
    let (_s, _service, c, send) = h.pair();
    let mut m = msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 1, b"abc");
    m.header.size = 20;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_MSG_TOO_SMALL));
    m.header.size = 26;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_MSG_TOO_SMALL));
    m.header.size = 32;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_INVALID_HEADER));
    m.header.size = 28;
    m.header.bits = 0x1234_0000 | MACH_MSG_TYPE_COPY_SEND;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_INVALID_HEADER));
    m.header.bits = MACH_MSG_TYPE_MOVE_RECEIVE;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_INVALID_HEADER));
    m.header.bits = mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MOVE_RECEIVE);
    m.header.local_port = send;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_INVALID_REPLY));
    m.header.bits = MACH_MSG_TYPE_COPY_SEND;
    m.header.local_port = 0;
    m.header.remote_port = 0x7777;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_INVALID_DEST));
    m.header.remote_port = MACH_PORT_NULL;
    assert_eq!(h.send(c.conn, m.clone()), Some(MACH_SEND_INVALID_DEST));
    // OOL descriptors must come with sealed memory of at least their size.
    let live = h.live.clone();
    let ool = with_descriptors(
        msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 2, b""),
        vec![Descriptor::Ool { size: 10, copy: 1, deallocate: false, fd_index: 0 }],
    );
    let out = h.handle(c.conn, Request::MachMsg(ool.clone()), vec![Attachment::sealed(Some(5), Mem::new(&live))]);
    assert_eq!(kr_of(&out, c.conn), Some(MACH_SEND_INVALID_MEMORY));
    let out = h.handle(c.conn, Request::MachMsg(ool.clone()), vec![Attachment::sealed(None, Mem::new(&live))]);
    assert_eq!(kr_of(&out, c.conn), Some(MACH_SEND_INVALID_MEMORY));
    let out = h.handle(c.conn, Request::MachMsg(ool), vec![]);
    assert_eq!(kr_of(&out, c.conn), Some(MACH_SEND_INVALID_MEMORY));
    assert_eq!(live.load(Ordering::SeqCst), 0, "refused memory is released");
}

#[test]
fn ool_memory_travels_to_the_receiver() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let live = h.live.clone();
    let ool = with_descriptors(
        msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 2, b"hdr"),
        vec![Descriptor::Ool { size: 1 << 20, copy: 1, deallocate: false, fd_index: 0 }],
    );
    let out = h.handle(c.conn, Request::MachMsg(ool), vec![Attachment::sealed(Some(1 << 20), Mem::new(&live))]);
    assert_eq!(kr_of(&out, c.conn), Some(0));
    assert_eq!(live.load(Ordering::SeqCst), 1, "held by the queued message");
    assert_eq!(h.k.counters().bytes_ool, 1 << 20);
    assert_eq!(h.k.state().ports.iter().flat_map(|p| &p.queue).map(|m| m.ool_bytes).sum::<u64>(), 1 << 20);
    let out = h.handle(s.conn, Request::MachMsg(rcv(service, 0, 0)), Vec::new());
    match out.into_iter().next() {
        Some(Outgoing::Reply { fds, reply: Reply::Msg { kr: 0, msg: Some(m) }, .. }) => {
            assert_eq!(fds.len(), 1);
            assert_eq!(m.descriptors, vec![ReceivedDescriptor::Ool { size: 1 << 20, copy: 1, deallocate: false }]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);
}

#[test]
fn a_pool_region_moves_and_a_forged_one_is_refused() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let live = h.live.clone();
    let pool = |len| Attachment { len: Some(len), handle: Mem::new(&live), pool: true, copied: false };
    let region = |offset, size, deallocate| {
        with_descriptors(
            msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 2, b""),
            vec![Descriptor::OolRegion { offset, size, deallocate, fd_index: 0, pool: 0 }],
        )
    };
    // Past the end, overflowing, or a pool sent as a snapshot: refused.
    for (offset, size, deallocate) in
        [(1 << 20, 1, true), (u64::MAX - 1, 16, true), ((1 << 20) - 8, 16, true), (0, 8, false)]
    {
        let out = h.handle(c.conn, Request::MachMsg(region(offset, size, deallocate)), vec![pool(1 << 20)]);
        assert_eq!(kr_of(&out, c.conn), Some(MACH_SEND_INVALID_MEMORY), "{offset} {size} {deallocate}");
    }
    // A plain OOL descriptor may not carry a pool either.
    let plain = with_descriptors(
        msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 2, b""),
        vec![Descriptor::Ool { size: 8, copy: 1, deallocate: true, fd_index: 0 }],
    );
    let out = h.handle(c.conn, Request::MachMsg(plain), vec![pool(1 << 20)]);
    assert_eq!(kr_of(&out, c.conn), Some(MACH_SEND_INVALID_MEMORY));
    assert_eq!(live.load(Ordering::SeqCst), 0, "refused memory is released");
    // Inside the pool with deallocate: moved, mapped, counted as mapped.
    let out = h.handle(c.conn, Request::MachMsg(region(65536, 4096, true)), vec![pool(1 << 20)]);
    assert_eq!(kr_of(&out, c.conn), Some(0));
    assert_eq!((h.k.counters().bytes_ool, h.k.counters().bytes_ool_copied), (4096, 0));
    let out = h.handle(s.conn, Request::MachMsg(rcv(service, 0, 0)), Vec::new());
    match out.into_iter().next() {
        Some(Outgoing::Reply { fds, reply: Reply::Msg { kr: 0, msg: Some(m) }, .. }) => {
            assert_eq!(fds.len(), 1);
            assert_eq!(
                m.descriptors,
                vec![ReceivedDescriptor::OolRegion { offset: 65536, size: 4096, copy: 1, deallocate: true }]
            );
        }
        other => panic!("{other:?}"),
    }
    // A snapshot the server copied out of a pool is counted as copied.
    let copied = with_descriptors(
        msg(send, MACH_MSG_TYPE_COPY_SEND, 0, 0, 2, b""),
        vec![Descriptor::OolRegion { offset: 0, size: 100, deallocate: false, fd_index: 0, pool: 0 }],
    );
    let snapshot = Attachment { len: Some(100), handle: Mem::new(&live), pool: false, copied: true };
    let out = h.handle(c.conn, Request::MachMsg(copied), vec![snapshot]);
    assert_eq!(kr_of(&out, c.conn), Some(0));
    assert_eq!((h.k.counters().bytes_ool, h.k.counters().bytes_ool_copied), (4096, 100));
}

#[test]
fn urefs_deallocate_and_mod_refs() {
    let mut h = H::new();
    let a = h.task("a", 1);
    let p = h.port(a.conn);
    assert_eq!(h.status(a.conn, Request::PortDeallocate { name: p }), KERN_INVALID_RIGHT, "receive-only");
    assert_eq!(
        h.status(a.conn, Request::PortInsertRight { name: p, poly: p, disposition: MACH_MSG_TYPE_MAKE_SEND }),
        0
    );
    assert_eq!(h.entry(a.task, p).map(|e| (e.receive, e.send_urefs)), Some((true, 1)));
    let other = h.port(a.conn);
    assert_eq!(
        h.status(a.conn, Request::PortInsertRight { name: 0x4403, poly: p, disposition: MACH_MSG_TYPE_MAKE_SEND }),
        KERN_RIGHT_EXISTS
    );
    assert_eq!(
        h.status(a.conn, Request::PortInsertRight { name: other, poly: p, disposition: MACH_MSG_TYPE_MAKE_SEND }),
        KERN_NAME_EXISTS
    );
    assert_eq!(h.status(a.conn, Request::PortInsertRight { name: p, poly: p, disposition: 99 }), KERN_INVALID_VALUE);
    assert_eq!(h.status(a.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_SEND, delta: 65534 }), 0);
    assert_eq!(h.status(a.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_SEND, delta: 5 }), 0);
    assert_eq!(h.entry(a.task, p).map(|e| e.send_urefs), Some(MACH_PORT_UREFS_MAX), "saturates");
    assert_eq!(h.status(a.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_SEND, delta: -1 }), 0);
    assert_eq!(h.entry(a.task, p).map(|e| e.send_urefs), Some(MACH_PORT_UREFS_MAX), "pegged");
    assert_eq!(h.status(a.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_SEND, delta: -65535 }), 0);
    assert_eq!(h.entry(a.task, p).map(|e| (e.receive, e.send_urefs)), Some((true, 0)));
    assert_eq!(
        h.status(a.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_SEND, delta: -1 }),
        KERN_INVALID_RIGHT
    );
    assert_eq!(
        h.status(a.conn, Request::PortModRefs { name: p, right: MACH_PORT_RIGHT_RECEIVE, delta: 2 }),
        KERN_INVALID_VALUE
    );
    assert_eq!(h.status(a.conn, Request::PortModRefs { name: p, right: 9, delta: 0 }), KERN_INVALID_VALUE);
    assert_eq!(
        h.status(a.conn, Request::PortModRefs { name: 0x5503, right: MACH_PORT_RIGHT_SEND, delta: 1 }),
        KERN_INVALID_NAME
    );
    let (kr, dead) = h.name(a.conn, Request::PortAllocate { right: MACH_PORT_RIGHT_DEAD_NAME });
    assert_eq!(kr, 0);
    assert_eq!(h.entry(a.task, dead).map(|e| e.dead_name_urefs), Some(1));
    assert_eq!(h.status(a.conn, Request::PortDeallocate { name: dead }), 0);
    assert_eq!(h.name(a.conn, Request::PortAllocate { right: MACH_PORT_RIGHT_PORT_SET }).0, KERN_INVALID_VALUE);
    assert_eq!(h.status(a.conn, Request::PortDeallocate { name: MACH_PORT_DEAD }), 0);
}

#[test]
fn protocol_misuse() {
    let mut h = H::new();
    let conn = 77;
    h.k.connect(conn, peer(5));
    assert!(matches!(h.call(conn, Request::PortAllocate { right: 1 }), Reply::ProtocolError { .. }));
    let a = h.task("a", 1);
    // Join with a wrong token or from another process.
    h.k.connect(78, peer(1));
    assert_eq!(h.status(78, Request::JoinTask { task: a.task, token: a.token ^ 1 }), KERN_INVALID_TASK);
    h.k.connect(79, peer(2));
    assert_eq!(h.status(79, Request::JoinTask { task: a.task, token: a.token }), KERN_INVALID_TASK);
    // A task connection may not observe; an observer may not act.
    assert!(matches!(h.call(a.conn, Request::State), Reply::ProtocolError { .. }));
    let out = h.handle(conn, Request::State, Vec::new());
    assert!(matches!(out.last(), Some(Outgoing::Reply { reply: Reply::StateChunk { last: true, .. }, .. })));
    // A second request while a call waits closes the connection.
    let p = h.port(a.conn);
    assert_eq!(h.mm(a.conn, rcv(p, 0, 0)), None);
    let out = h.handle(a.conn, Request::PortAllocate { right: 1 }, Vec::new());
    assert!(matches!(out.as_slice(), [Outgoing::Close { conn }] if *conn == a.conn));
    assert_eq!(h.k.usage(), (0, 0, 0, 0));
}

#[test]
fn task_death_releases_everything() {
    let mut h = H::new();
    let (s, service, c, send) = h.pair();
    let reply = h.port(c.conn);
    let mut req = msg(send, MACH_MSG_TYPE_COPY_SEND, reply, MACH_MSG_TYPE_MAKE_SEND_ONCE, 1, b"x");
    req.options |= MACH_RCV_MSG;
    req.rcv_name = reply;
    assert_eq!(h.mm(c.conn, req), None);
    let (_, got) = h.recv(s.conn, service);
    assert!(got.is_some());
    // The server dies holding the client's send-once reply right: the
    // client learns it from MACH_NOTIFY_SEND_ONCE (MIG_SERVER_DIED).
    let out = h.disconnect(s.conn);
    match H::reply_for(&out, c.conn) {
        Some(Reply::Msg { kr: 0, msg: Some(m) }) => assert_eq!(m.header.id, MACH_NOTIFY_SEND_ONCE),
        other => panic!("{other:?}"),
    }
    h.disconnect(c.conn);
    assert_eq!(h.k.usage(), (0, 0, 0, 0));
    assert!(h.k.state().log.iter().any(|l| l.text.starts_with("task_terminate")));
}

// ---- hostile random workload ----------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = splitmix64(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.below(v.len() as u64) as usize])
        }
    }
}

/// What a random thread knows: its own names (with rights) and everyone's.
struct View {
    own: Vec<NameState>,
    all: Vec<u32>,
    bootstrap: u32,
}

fn view(k: &Kernel<Mem>, conn: ConnId) -> View {
    let st = k.state();
    let mine = st.tasks.iter().find(|t| t.threads.iter().any(|th| th.thread == conn));
    let mut all: Vec<u32> = st.tasks.iter().flat_map(|t| t.names.iter().map(|n| n.name)).collect();
    all.extend_from_slice(&[0, MACH_PORT_DEAD, 0x103, 0x203, 0xabcd03]);
    View { own: mine.map(|t| t.names.clone()).unwrap_or_default(), all, bootstrap: mine.map_or(0x203, |t| t.bootstrap) }
}

impl View {
    /// Mostly a name this task holds with a disposition that fits it; now
    /// and then anything at all.
    fn right(&self, r: &mut Rng, want_receive: bool) -> (u32, u32) {
        if r.below(8) == 0 || self.own.is_empty() {
            return (r.pick(&self.all).unwrap_or(0), 16 + r.below(7) as u32);
        }
        let candidates: Vec<&NameState> = self.own.iter().filter(|e| !want_receive || e.receive).collect();
        let Some(e) = r.pick(&candidates) else {
            return (r.pick(&self.all).unwrap_or(0), 16 + r.below(7) as u32);
        };
        let mut options = Vec::new();
        if e.receive {
            options.extend_from_slice(&[
                MACH_MSG_TYPE_MAKE_SEND,
                MACH_MSG_TYPE_MAKE_SEND_ONCE,
                MACH_MSG_TYPE_MOVE_RECEIVE,
            ]);
        }
        if e.send_urefs > 0 {
            options.extend_from_slice(&[MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MOVE_SEND]);
        }
        if e.send_once {
            options.push(MACH_MSG_TYPE_MOVE_SEND_ONCE);
        }
        if options.is_empty() {
            options.push(MACH_MSG_TYPE_COPY_SEND);
        }
        (e.name, r.pick(&options).unwrap_or(MACH_MSG_TYPE_COPY_SEND))
    }
}

fn random_request(r: &mut Rng, v: &View, live: &Arc<AtomicUsize>) -> (Request, Vec<Attachment<Mem>>) {
    let (n1, d1) = v.right(r, false);
    let (n2, _) = v.right(r, false);
    let (recv_name, _) = v.right(r, true);
    let bp = if r.below(10) == 0 { n1 } else { v.bootstrap };
    let service = format!("s{}", r.below(3));
    let req = match r.below(24) {
        0..=1 => {
            Request::PortAllocate { right: if r.below(5) == 0 { r.below(6) as u32 } else { MACH_PORT_RIGHT_RECEIVE } }
        }
        3 => Request::PortInsertRight {
            name: if r.below(2) == 0 { n1 } else { 0x4000_0003 + (r.below(4) as u32) * 0x100 },
            poly: n1,
            disposition: d1,
        },
        4 => Request::PortDeallocate { name: n1 },
        // Switching the kernel's rules mid-run (one index out of range).
        5 if r.below(4) == 0 => Request::SetPersonality { personality: r.below(4) as u32 },
        5 => Request::PortModRefs { name: n1, right: r.below(6) as u32, delta: r.below(5) as i32 - 2 },
        2 | 6 => Request::PortSetAttributes {
            name: recv_name,
            flavor: if r.below(6) == 0 { 2 } else { 1 },
            info: vec![r.below(5) as i32 - 1],
        },
        7 => Request::PortGetAttributes { name: recv_name, flavor: 1 + r.below(2) as u32, count: r.below(12) as u32 },
        8 => Request::PortRequestNotification {
            name: n1,
            msgid: match r.below(5) {
                0 => MACH_NOTIFY_NO_SENDERS,
                1 | 2 => MACH_NOTIFY_SEND_POSSIBLE,
                _ => MACH_NOTIFY_DEAD_NAME,
            },
            sync: r.below(2) as u32,
            notify: if r.below(6) == 0 { 0 } else { recv_name },
            notify_disposition: if r.below(6) == 0 {
                MACH_MSG_TYPE_MOVE_SEND_ONCE
            } else {
                MACH_MSG_TYPE_MAKE_SEND_ONCE
            },
        },
        9 => Request::BootstrapCheckIn { bp, service },
        10 => Request::BootstrapRegister { bp, service, port: n2 },
        11 | 12 => Request::BootstrapLookUp { bp, service },
        _ => {
            let mut descriptors = Vec::new();
            let mut fds = Vec::new();
            let count = if r.below(2) == 0 { 0 } else { r.below(4) };
            for _ in 0..count {
                if r.below(3) == 0 {
                    let size = r.below(64);
                    let sane = r.below(8) != 0;
                    let fd_index = if sane { fds.len() as u32 } else { r.below(3) as u32 };
                    descriptors.push(Descriptor::Ool { size: size as u32, copy: 1, deallocate: false, fd_index });
                    let len =
                        if sane { Some(size + r.below(4)) } else { Some(r.below(80)).filter(|_| r.below(4) != 0) };
                    fds.push(Attachment::sealed(len, Mem::new(live)));
                } else {
                    let (name, disposition) = v.right(r, false);
                    descriptors.push(Descriptor::Port { name, disposition });
                }
            }
            if r.below(10) == 0 {
                fds.push(Attachment::sealed(Some(8), Mem::new(live)));
            }
            let mut options = match r.below(4) {
                0 => MACH_SEND_MSG,
                1 => MACH_SEND_MSG | MACH_SEND_TIMEOUT | MACH_SEND_NOTIFY,
                2 => MACH_RCV_MSG,
                _ => MACH_SEND_MSG | MACH_RCV_MSG,
            };
            for bit in [MACH_SEND_TIMEOUT, MACH_RCV_TIMEOUT, MACH_SEND_NOTIFY, MACH_RCV_LARGE] {
                if r.below(2) == 0 {
                    options |= bit;
                }
            }
            let body = vec![7u8; r.below(40) as usize];
            let mut size = message_size(body.len(), &descriptors) as u32;
            if r.below(12) == 0 {
                size = r.below(200) as u32;
            }
            let (reply, reply_disp) = if r.below(2) == 0 { (0, 0) } else { v.right(r, false) };
            let reply_disp =
                if reply_disp == MACH_MSG_TYPE_MOVE_RECEIVE { MACH_MSG_TYPE_MAKE_SEND_ONCE } else { reply_disp };
            let dest_disp = if d1 == MACH_MSG_TYPE_MOVE_RECEIVE { MACH_MSG_TYPE_MAKE_SEND } else { d1 };
            let mut bits = mach_msgh_bits(dest_disp, reply_disp);
            if !descriptors.is_empty() || r.below(8) == 0 {
                bits |= MACH_MSGH_BITS_COMPLEX;
            }
            let m = MachMsgRequest {
                options,
                send_timeout: r.below(3) as u32 * 5,
                rcv_timeout: r.below(3) as u32 * 5,
                rcv_name: recv_name,
                rcv_size: if r.below(8) == 0 { 40 } else { 4096 },
                notify: recv_name,
                header: MsgHeader {
                    bits,
                    size,
                    remote_port: n1,
                    local_port: reply,
                    voucher_port: 0,
                    id: r.below(100) as i32,
                },
                body,
                descriptors,
            };
            return (Request::MachMsg(m), fds);
        }
    };
    (req, Vec::new())
}

#[test]
fn hostile_random_workload_keeps_invariants_and_leaks_nothing() {
    for seed in 0..60u64 {
        let live = Arc::new(AtomicUsize::new(0));
        let mut r = Rng(seed);
        let mut k: Kernel<Mem> =
            Kernel::new(Limits { max_names_per_task: 48, max_messages: 64, ..Limits::default() }, seed);
        let mut now = 0u64;
        let mut conns: Vec<(ConnId, i32)> = Vec::new();
        let mut tasks: Vec<(u32, u64, i32)> = Vec::new();
        let mut next_conn = 1;
        for step in 0..400 {
            let choice = r.below(20);
            let out = if conns.len() < 2 || choice == 0 {
                // A new task, or a new thread of a known one (sometimes
                // with a wrong token).
                let conn = next_conn;
                next_conn += 1;
                let (req, pid) = match r.pick(&tasks).filter(|_| r.below(2) == 0) {
                    Some((task, token, pid)) => (Request::JoinTask { task, token: token ^ (r.below(3) / 2) }, pid),
                    None => (Request::RegisterTask { name: format!("t{conn}") }, 1000 + conn as i32),
                };
                k.connect(conn, peer(pid));
                conns.push((conn, pid));
                let out = k.handle(conn, req, Vec::new(), now);
                for o in &out {
                    if let Outgoing::Reply { reply: Reply::Registered { task, token, .. }, .. } = o {
                        tasks.push((*task, *token, pid));
                    }
                }
                out
            } else if choice == 1 {
                let i = r.below(conns.len() as u64) as usize;
                let (conn, _) = conns.swap_remove(i);
                k.disconnect(conn, now)
            } else if choice == 2 {
                now += r.below(12);
                k.tick(now)
            } else {
                // Mostly threads that are not in a call; now and then a
                // second request from a waiting thread (which is closed).
                let st = k.state();
                let idle: Vec<ConnId> = st
                    .tasks
                    .iter()
                    .flat_map(|t| &t.threads)
                    .filter(|th| th.blocked.is_none())
                    .map(|th| th.thread)
                    .collect();
                let any: Vec<ConnId> = conns.iter().map(|c| c.0).collect();
                let pool = if r.below(20) == 0 || idle.is_empty() { any } else { idle };
                let Some(conn) = r.pick(&pool) else { continue };
                let v = view(&k, conn);
                let (req, fds) = random_request(&mut r, &v, &live);
                k.handle(conn, req, fds, now)
            };
            for o in out {
                if let Outgoing::Close { conn } = o {
                    conns.retain(|(c, _)| *c != conn);
                }
            }
            if let Err(e) = k.check_invariants() {
                panic!("seed {seed} step {step}: {e}");
            }
        }
        for (conn, _) in std::mem::take(&mut conns) {
            drop(k.disconnect(conn, now));
            k.check_invariants().unwrap_or_else(|e| panic!("seed {seed} teardown: {e}"));
        }
        assert_eq!(k.usage(), (0, 0, 0, 0), "seed {seed}: something leaked");
        assert_eq!(live.load(Ordering::SeqCst), 0, "seed {seed}: OOL memory leaked");
        assert!(serde_json::to_string(&k.state()).is_ok());
    }
}
