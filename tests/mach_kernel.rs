//! End-to-end tests of the emulated Mach kernel: `server::run` on a socket
//! in a temporary directory, tasks using `client.rs` from several threads
//! and from a separate process.

use std::path::Path;
use std::time::{Duration, Instant};

use ipcscope::mechanisms::ekernel::transport::Conn;
use ipcscope::mechanisms::mach::client::{
    InDescriptor, MachError, MachMsgArgs, MachTask, Observer, OolMemory, OutDescriptor, OutMsg,
};
use ipcscope::mechanisms::mach::proto::{
    decode_reply, encode_request, message_size, Descriptor, MachMsgRequest, MsgHeader, Reply, Request,
};
use ipcscope::mechanisms::mach::state::ReceiverState;
use ipcscope::mechanisms::mach::types::*;

#[path = "common/mach_test_kernel.rs"]
mod mach_test_kernel;
use mach_test_kernel::TestKernel;

fn simple(dest: u32, disposition: u32, id: i32, body: &[u8]) -> OutMsg {
    OutMsg { bits: mach_msgh_bits(disposition, 0), remote_port: dest, id, body: body.to_vec(), ..OutMsg::default() }
}

fn kern(e: MachError) -> u32 {
    e.kr().unwrap_or_else(|| panic!("not a kernel code: {e}"))
}

#[test]
fn rpc_between_tasks_and_threads() {
    let k = TestKernel::start();
    let server = MachTask::connect(k.path(), "server").expect("server task");
    let service = server.bootstrap_check_in(server.bootstrap_port(), "com.example.echo").expect("check in");

    let server_thread = std::thread::spawn(move || {
        for _ in 0..20 {
            let req = server.receive(service, 0, 0).expect("request");
            assert_eq!(req.header.local_port, service);
            assert_eq!(mach_msgh_bits_remote(req.header.bits), MACH_MSG_TYPE_PORT_SEND_ONCE);
            let mut body = req.body.clone();
            body.reverse();
            let reply = OutMsg {
                bits: mach_msgh_bits(MACH_MSG_TYPE_MOVE_SEND_ONCE, 0),
                remote_port: req.header.remote_port,
                id: req.header.id + 100,
                body,
                ..OutMsg::default()
            };
            server.send(reply, 0, 0).expect("reply");
        }
        server
    });

    let client = MachTask::connect(k.path(), "client").expect("client task");
    let svc = client.bootstrap_look_up(client.bootstrap_port(), "com.example.echo").expect("look up");
    // Two threads of the client share one name space: each uses its own
    // reply port but the service name looked up by the first thread.
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let thread = client.thread().expect("thread");
            std::thread::spawn(move || {
                let reply_port = thread.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("reply port");
                for i in 0..10 {
                    let msg = OutMsg {
                        bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MAKE_SEND_ONCE),
                        remote_port: svc,
                        local_port: reply_port,
                        id: w * 1000 + i,
                        body: format!("ping {w} {i}").into_bytes(),
                        ..OutMsg::default()
                    };
                    let got = thread
                        .mach_msg(MachMsgArgs {
                            options: MACH_SEND_MSG | MACH_RCV_MSG,
                            msg: Some(msg),
                            rcv_name: reply_port,
                            ..MachMsgArgs::default()
                        })
                        .expect("rpc")
                        .expect("reply message");
                    assert_eq!(got.header.id, w * 1000 + i + 100);
                    assert_eq!(got.body, format!("ping {w} {i}").into_bytes().into_iter().rev().collect::<Vec<_>>());
                    assert_eq!(got.sender_pid(), std::process::id() as i32);
                    assert_eq!(got.header.local_port, reply_port);
                }
                thread
            })
        })
        .collect();
    let threads: Vec<MachTask> = workers.into_iter().map(|w| w.join().expect("worker")).collect();
    let server = server_thread.join().expect("server");

    let state = Observer::connect(k.path()).expect("observer").state().expect("state");
    assert_eq!(state.counters.sent, 40);
    assert_eq!(state.counters.received, 40);
    let client_state = state.tasks.iter().find(|t| t.name == "client").expect("client in state");
    assert_eq!(client_state.threads.len(), 3);
    assert!(state.log.iter().any(|l| l.task == "server" && l.text.starts_with("mach_msg(RCV, rcv_name=")));
    assert!(state.bootstrap.iter().any(|s| s.name == "com.example.echo" && s.checked_in));
    drop(threads);
    let state = Observer::connect(k.path()).expect("observer").state().expect("state");
    assert_eq!(state.tasks.iter().find(|t| t.name == "client").map(|t| t.threads.len()), Some(1));
    drop(server);
    drop(client);
}

#[test]
fn out_of_line_megabyte_is_mapped_not_copied() {
    let k = TestKernel::start();
    let a = MachTask::connect(k.path(), "sender").expect("a");
    let b = MachTask::connect(k.path(), "receiver").expect("b");
    let port = b.bootstrap_check_in(b.bootstrap_port(), "ool").expect("check in");
    let dest = a.bootstrap_look_up(a.bootstrap_port(), "ool").expect("look up");

    const LEN: usize = 1 << 20;
    let pattern = |i: usize| (i.wrapping_mul(2_654_435_761) >> 7) as u8;
    // One region copied into a memfd, one built in place.
    let copied: Vec<u8> = (0..LEN).map(pattern).collect();
    let first = OolMemory::from_bytes(&copied).expect("memfd");
    let second =
        OolMemory::build(LEN, |buf| buf.iter_mut().enumerate().for_each(|(i, b)| *b = !pattern(i))).expect("memfd");
    let msg = OutMsg {
        bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, 0),
        remote_port: dest,
        id: 7,
        body: b"two regions".to_vec(),
        descriptors: vec![OutDescriptor::Ool(first), OutDescriptor::Ool(second)],
        ..OutMsg::default()
    };
    a.send(msg, 0, 0).expect("send");
    let state = Observer::connect(k.path()).expect("observer").state().expect("state");
    let queued: u64 = state.ports.iter().flat_map(|p| &p.queue).map(|m| m.ool_bytes).sum();
    assert_eq!(queued, 2 * LEN as u64);
    assert_eq!(state.counters.bytes_ool, 2 * LEN as u64);
    assert!(state.counters.bytes_inline < 64);

    let got = b.receive(port, 0, 0).expect("receive");
    assert_eq!(got.body, b"two regions");
    assert_ne!(got.header.bits & MACH_MSGH_BITS_COMPLEX, 0);
    let regions: Vec<&[u8]> = got
        .descriptors
        .iter()
        .map(|d| match d {
            InDescriptor::Ool(r) => r.bytes(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(regions.len(), 2);
    assert_eq!(regions[0].len(), LEN);
    assert!(regions[0].iter().enumerate().all(|(i, b)| *b == pattern(i)));
    assert!(regions[1].iter().enumerate().all(|(i, b)| *b == !pattern(i)));
}

#[test]
fn full_queue_behaviours_over_the_socket() {
    let k = TestKernel::start();
    let server = MachTask::connect(k.path(), "server").expect("server");
    let port = server.bootstrap_check_in(server.bootstrap_port(), "q").expect("check in");
    server.mach_port_set_attributes(port, MACH_PORT_LIMITS_INFO, &[1]).expect("qlimit 1");
    assert_eq!(server.mach_port_get_attributes(port, MACH_PORT_LIMITS_INFO, 1).expect("get"), vec![1]);
    assert_eq!(
        kern(server.mach_port_set_attributes(port, MACH_PORT_LIMITS_INFO, &[1025]).unwrap_err()),
        KERN_INVALID_VALUE
    );

    let client = MachTask::connect(k.path(), "client").expect("client");
    let dest = client.bootstrap_look_up(client.bootstrap_port(), "q").expect("look up");
    client.send(simple(dest, MACH_MSG_TYPE_COPY_SEND, 1, b"a"), 0, 0).expect("fits");
    // Return at once.
    let err = client.send(simple(dest, MACH_MSG_TYPE_COPY_SEND, 2, b"b"), MACH_SEND_TIMEOUT, 0).unwrap_err();
    assert_eq!(err, MachError::Kern(KernReturn(MACH_SEND_TIMED_OUT)));
    // Wait up to N ms.
    let started = Instant::now();
    let err = client.send(simple(dest, MACH_MSG_TYPE_COPY_SEND, 3, b"c"), MACH_SEND_TIMEOUT, 30).unwrap_err();
    assert_eq!(kern(err), MACH_SEND_TIMED_OUT);
    assert!(started.elapsed() >= Duration::from_millis(30));
    // Keep one message per thread and be told when it is accepted.
    let notify = client.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("notify port");
    let cache = |id| MachMsgArgs {
        options: MACH_SEND_MSG | MACH_SEND_TIMEOUT | MACH_SEND_NOTIFY,
        msg: Some(simple(dest, MACH_MSG_TYPE_COPY_SEND, id, b"kept")),
        notify,
        ..MachMsgArgs::default()
    };
    assert_eq!(kern(client.mach_msg(cache(4)).unwrap_err()), MACH_SEND_WILL_NOTIFY);
    assert_eq!(kern(client.mach_msg(cache(5)).unwrap_err()), MACH_SEND_NOTIFY_IN_PROGRESS);
    // Block indefinitely, on another thread of the client.
    let blocked = client.thread().expect("thread");
    let waiter = std::thread::spawn(move || blocked.send(simple(dest, MACH_MSG_TYPE_COPY_SEND, 6, b"d"), 0, 0));
    let observer = Observer::connect(k.path()).expect("observer");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = observer.state().expect("state");
        if st.ports.iter().any(|p| p.blocked_senders.len() == 1) {
            assert!(st.ports.iter().any(|p| p.queue.iter().any(|m| m.cached)));
            break;
        }
        assert!(Instant::now() < deadline, "sender never blocked");
        std::thread::sleep(Duration::from_millis(2));
    }
    let ids: Vec<i32> = (0..3).map(|_| server.receive(port, 0, 0).expect("receive").header.id).collect();
    assert_eq!(ids, vec![1, 4, 6]);
    waiter.join().expect("waiter").expect("blocked send completed");
    let note = client.receive(notify, MACH_RCV_TIMEOUT, 1000).expect("notification");
    assert_eq!(note.header.id, MACH_NOTIFY_MSG_ACCEPTED);
    assert_eq!(note.sender_pid(), 0);
    let counters = observer.state().expect("state").counters;
    assert_eq!((counters.returned_at_once, counters.send_timed_out, counters.cached, counters.notified), (1, 1, 1, 1));
    // Nothing left: a receive times out.
    assert_eq!(kern(server.receive(port, MACH_RCV_TIMEOUT, 10).unwrap_err()), MACH_RCV_TIMED_OUT);
}

#[test]
fn dead_names_and_notification_when_a_task_exits() {
    let k = TestKernel::start();
    let server = MachTask::connect(k.path(), "server").expect("server");
    server.bootstrap_check_in(server.bootstrap_port(), "mortal").expect("check in");
    let client = MachTask::connect(k.path(), "client").expect("client");
    let dest = client.bootstrap_look_up(client.bootstrap_port(), "mortal").expect("look up");
    let notify = client.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("port");
    let previous = client
        .mach_port_request_notification(dest, MACH_NOTIFY_DEAD_NAME, 0, notify, MACH_MSG_TYPE_MAKE_SEND_ONCE)
        .expect("request");
    assert_eq!(previous, MACH_PORT_NULL);
    client.send(simple(dest, MACH_MSG_TYPE_COPY_SEND, 1, b"left behind"), 0, 0).expect("send");
    drop(server); // the task's only thread disconnects: the task dies

    let note = client.receive(notify, MACH_RCV_TIMEOUT, 5000).expect("dead-name notification");
    assert_eq!(note.header.id, MACH_NOTIFY_DEAD_NAME);
    assert_eq!(&note.body[8..12], &dest.to_le_bytes());
    assert_eq!(
        kern(client.send(simple(dest, MACH_MSG_TYPE_COPY_SEND, 2, b""), 0, 0).unwrap_err()),
        MACH_SEND_INVALID_DEST
    );
    assert_eq!(
        kern(client.bootstrap_look_up(client.bootstrap_port(), "mortal").unwrap_err()),
        BOOTSTRAP_UNKNOWN_SERVICE
    );
    let st = Observer::connect(k.path()).expect("observer").state().expect("state");
    let me = st.tasks.iter().find(|t| t.name == "client").expect("client");
    let entry = me.names.iter().find(|n| n.name == dest).expect("dead name");
    assert_eq!(entry.dead_name_urefs, 2);
    assert_eq!(st.counters.destroyed, 1);
    assert!(st.ports.iter().all(
        |p| !matches!(p.receiver, ReceiverState::Task { ref task, .. } if !st.tasks.iter().any(|t| t.id == *task))
    ));
}

#[test]
fn garbage_gets_an_error_and_the_kernel_stays_up() {
    let mut k = TestKernel::start();
    let raw = Conn::connect(k.path()).expect("connect");
    let mut buf = Vec::new();
    for junk in [&b"\xff\xff\xff"[..], &b"\x0a\x01"[..], &[10u8; 300][..]] {
        raw.call(junk, &[], &mut buf).expect("answered");
        assert!(matches!(decode_reply(&buf), Ok(Reply::ProtocolError { .. })), "{buf:?}");
    }
    // A packet over the limit is refused whole, with an error reply.
    let huge = vec![1u8; ipcscope::mechanisms::ekernel::transport::MAX_PACKET];
    raw.call(&huge, &[], &mut buf).expect("answered");
    assert!(matches!(decode_reply(&buf), Ok(Reply::ProtocolError { .. })));
    // A task whose OOL memory is not a sealed memfd gets a Mach error.
    let raw_task = Conn::connect(k.path()).expect("connect");
    let mut ask = |req: &Request, fds: &[std::os::fd::BorrowedFd<'_>]| {
        raw_task.call(&encode_request(req), fds, &mut buf).expect("answered");
        decode_reply(&buf).expect("reply")
    };
    assert!(matches!(ask(&Request::RegisterTask { name: "raw".into() }, &[]), Reply::Registered { .. }));
    let Reply::Name { kr: 0, name } = ask(&Request::PortAllocate { right: MACH_PORT_RIGHT_RECEIVE }, &[]) else {
        panic!("allocate");
    };
    let descriptors = vec![Descriptor::Ool { size: 4, copy: MACH_MSG_VIRTUAL_COPY, deallocate: false, fd_index: 0 }];
    let m = MachMsgRequest {
        options: MACH_SEND_MSG,
        header: MsgHeader {
            bits: mach_msgh_bits(MACH_MSG_TYPE_MAKE_SEND, 0) | MACH_MSGH_BITS_COMPLEX,
            size: message_size(0, &descriptors) as u32,
            remote_port: name,
            ..MsgHeader::default()
        },
        descriptors,
        ..MachMsgRequest::default()
    };
    let devnull = std::fs::File::open("/dev/null").expect("/dev/null");
    use std::os::fd::AsFd;
    let reply = ask(&Request::MachMsg(m), &[devnull.as_fd()]);
    assert_eq!(reply, Reply::Msg { kr: MACH_SEND_INVALID_MEMORY, msg: None });
    drop(raw_task);
    let task = MachTask::connect(k.path(), "still works").expect("task after garbage");
    let port = task.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("allocate");
    task.mach_port_insert_right(port, port, MACH_MSG_TYPE_MAKE_SEND).expect("make send");
    task.send(simple(port, MACH_MSG_TYPE_COPY_SEND, 1, b"hello"), 0, 0).expect("send to self");
    let got = task.receive(port, 0, 0).expect("receive from self");
    assert_eq!(got.body, b"hello");
    drop(raw);
    drop(task);
    let path = k.path().to_path_buf();
    k.shutdown();
    assert!(!path.exists(), "the socket file is removed on stop");
}

/// Runs only as a child process (see `a_separate_process_is_a_task`).
#[test]
fn child_task_entry() {
    let Ok(path) = std::env::var("MACH_IT_CHILD_SOCKET") else {
        return;
    };
    let task = MachTask::connect(Path::new(&path), "child").expect("child task");
    let dest = task.bootstrap_look_up(task.bootstrap_port(), "parent").expect("look up");
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let msg = OutMsg {
        bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, 0),
        remote_port: dest,
        id: 4242,
        body: b"from the child".to_vec(),
        descriptors: vec![OutDescriptor::Ool(OolMemory::from_bytes(&data).expect("memfd"))],
        ..OutMsg::default()
    };
    task.send(msg, 0, 0).expect("send from child");
}

#[test]
fn a_separate_process_is_a_task() {
    let k = TestKernel::start();
    let parent = MachTask::connect(k.path(), "parent").expect("parent");
    let port = parent.bootstrap_check_in(parent.bootstrap_port(), "parent").expect("check in");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_task_entry", "--nocapture", "--test-threads=1"])
        .env("MACH_IT_CHILD_SOCKET", k.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let got = parent.receive(port, MACH_RCV_TIMEOUT, 30_000).expect("child's message");
    let status = child.wait().expect("child exit");
    assert!(status.success());
    assert_eq!(got.header.id, 4242);
    assert_eq!(got.sender_pid(), child.id() as i32, "the trailer's audit token names the child");
    match &got.descriptors[0] {
        InDescriptor::Ool(r) => assert!(r.bytes().iter().enumerate().all(|(i, b)| *b == i as u8)),
        other => panic!("{other:?}"),
    }
    // The child's task is gone with its process.
    let st = Observer::connect(k.path()).expect("observer").state().expect("state");
    assert!(st.tasks.iter().all(|t| t.name != "child"));
}

/// Runs only as a child process (see `ool_moved_with_deallocate_copies_nothing`):
/// sends three 1 MiB regions of its pool with `deallocate` and one without,
/// then checks every moved region came back to its pool.
#[test]
fn child_pool_sender_entry() {
    let Ok(path) = std::env::var("MACH_IT_POOL_SOCKET") else {
        return;
    };
    let task = MachTask::connect(Path::new(&path), "pool-child").expect("child task");
    let dest = task.bootstrap_look_up(task.bootstrap_port(), "pool-parent").expect("look up");
    let me = task.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("allocate");
    let send = |mem: OolMemory, id: i32, reply: MachPortName| {
        let msg = OutMsg {
            bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, if reply == 0 { 0 } else { MACH_MSG_TYPE_MAKE_SEND }),
            remote_port: dest,
            local_port: reply,
            id,
            descriptors: vec![OutDescriptor::Ool(mem)],
            ..OutMsg::default()
        };
        task.send(msg, 0, 0).expect("send");
    };
    for id in 0..3 {
        let mut mem = task.vm_allocate(POOL_LEN).expect("vm_allocate");
        assert!(mem.is_pool());
        mem.as_mut_slice().expect("in place").iter_mut().enumerate().for_each(|(i, b)| *b = pool_byte(i, id));
        send(mem.deallocate(true), id, 0);
    }
    // Without deallocate the kernel copies: overwriting our region (freed
    // after the send, so handed out again) must not reach the receiver.
    let mut mem = task.vm_allocate(POOL_LEN).expect("vm_allocate");
    mem.as_mut_slice().expect("in place").iter_mut().enumerate().for_each(|(i, b)| *b = pool_byte(i, 3));
    send(mem, 3, me);
    let mut again = task.vm_allocate(POOL_LEN).expect("vm_allocate");
    again.as_mut_slice().expect("in place").fill(0);
    drop(again);
    // The parent says when it has read and dropped every region.
    let done = task.receive(me, MACH_RCV_TIMEOUT, 30_000).expect("parent's go-ahead");
    assert_eq!(done.header.id, 99);
    let mem = task.vm_allocate(POOL_LEN).expect("vm_allocate");
    assert_eq!(task.vm_pool_chunks_in_use(), POOL_LEN / ipcscope::mechanisms::mach::vm::CHUNK, "regions came back");
    drop(mem);
}

const POOL_LEN: usize = 1 << 20;

fn pool_byte(i: usize, id: i32) -> u8 {
    ((i.wrapping_mul(2_654_435_761) >> 9) as u8) ^ (id as u8).wrapping_mul(37)
}

#[test]
fn ool_moved_with_deallocate_copies_nothing() {
    let k = TestKernel::start();
    let parent = MachTask::connect(k.path(), "pool-parent").expect("parent");
    let port = parent.bootstrap_check_in(parent.bootstrap_port(), "pool-parent").expect("check in");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_pool_sender_entry", "--nocapture", "--test-threads=1"])
        .env("MACH_IT_POOL_SOCKET", k.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(parent.receive(port, MACH_RCV_TIMEOUT, 30_000).expect("child's message"));
    }
    let st = Observer::connect(k.path()).expect("observer").state().expect("state");
    assert_eq!(st.counters.bytes_ool, 3 * POOL_LEN as u64, "moved regions are mapped");
    assert_eq!(st.counters.bytes_ool_copied, POOL_LEN as u64, "only the send without deallocate is copied");
    let mut reply = MACH_PORT_NULL;
    for m in &got {
        let id = m.header.id;
        let InDescriptor::Ool(r) = &m.descriptors[0] else { panic!("{:?}", m.descriptors) };
        assert_eq!(r.is_moved(), id < 3, "message {id}");
        assert_eq!(r.bytes().len(), POOL_LEN);
        assert!(r.bytes().iter().enumerate().all(|(i, b)| *b == pool_byte(i, id)), "message {id}");
        if id == 3 {
            reply = m.header.remote_port;
        }
    }
    drop(got);
    let go =
        OutMsg { bits: mach_msgh_bits(MACH_MSG_TYPE_MOVE_SEND, 0), remote_port: reply, id: 99, ..OutMsg::default() };
    parent.send(go, 0, 0).expect("go-ahead");
    let status = child.wait().expect("child exit");
    assert!(status.success(), "the child saw its regions come back");
}

#[test]
fn a_forged_region_is_refused() {
    use std::os::fd::AsFd;
    let k = TestKernel::start();
    let task = MachTask::connect(k.path(), "honest").expect("task");
    let port = task.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("allocate");
    let raw_task = Conn::connect(k.path()).expect("connect");
    let mut buf = Vec::new();
    let mut ask = |req: &Request, fds: &[std::os::fd::BorrowedFd<'_>]| {
        raw_task.call(&encode_request(req), fds, &mut buf).expect("answered");
        decode_reply(&buf).expect("reply")
    };
    assert!(matches!(ask(&Request::RegisterTask { name: "forger".into() }, &[]), Reply::Registered { .. }));
    let Reply::Name { kr: 0, name } = ask(&Request::PortAllocate { right: MACH_PORT_RIGHT_RECEIVE }, &[]) else {
        panic!("allocate");
    };
    // A pool-shaped memfd of 1 MiB, and one not sealed against shrinking.
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let pool = memfd_create(c"forged", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING).expect("memfd");
    nix::unistd::ftruncate(&pool, 1 << 20).expect("size");
    fcntl(pool.as_fd(), FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW)).expect("seal");
    let loose = memfd_create(c"loose", MFdFlags::MFD_CLOEXEC).expect("memfd");
    nix::unistd::ftruncate(&loose, 1 << 20).expect("size");
    let send = |offset: u64, size: u32, deallocate: bool| {
        let descriptors = vec![Descriptor::OolRegion { offset, size, deallocate, fd_index: 0, pool: 0 }];
        MachMsgRequest {
            options: MACH_SEND_MSG,
            header: MsgHeader {
                bits: mach_msgh_bits(MACH_MSG_TYPE_MAKE_SEND, 0) | MACH_MSGH_BITS_COMPLEX,
                size: message_size(0, &descriptors) as u32,
                remote_port: name,
                ..MsgHeader::default()
            },
            descriptors,
            ..MachMsgRequest::default()
        }
    };
    for (offset, size, deallocate) in [
        (2 << 20, 16, true),
        (u64::MAX - 8, 4096, true),
        ((1 << 20) - 4096, 8192, true),
        (u64::MAX - 8, 4096, false),
        ((1 << 20) - 4096, 8192, false),
    ] {
        let reply = ask(&Request::MachMsg(send(offset, size, deallocate)), &[pool.as_fd()]);
        assert_eq!(reply, Reply::Msg { kr: MACH_SEND_INVALID_MEMORY, msg: None }, "{offset} {size} {deallocate}");
    }
    let reply = ask(&Request::MachMsg(send(0, 4096, true)), &[loose.as_fd()]);
    assert_eq!(reply, Reply::Msg { kr: MACH_SEND_INVALID_MEMORY, msg: None }, "not sealed against shrinking");
    // A region inside the pool passes.
    let reply = ask(&Request::MachMsg(send(65536, 4096, true)), &[pool.as_fd()]);
    assert_eq!(reply, Reply::Msg { kr: 0, msg: None });
    drop(raw_task);
    // The kernel still serves an honest task.
    task.mach_port_insert_right(port, port, MACH_MSG_TYPE_MAKE_SEND).expect("make send");
    task.send(simple(port, MACH_MSG_TYPE_COPY_SEND, 1, b"hello"), 0, 0).expect("send to self");
    assert_eq!(task.receive(port, 0, 0).expect("receive").body, b"hello");
}

/// Claims 14 and 15: only the task holding the receive right receives. A
/// task with a send right to the port tries to receive on that name and the
/// kernel refuses with MACH_RCV_INVALID_NAME, counted per task and name;
/// the creator, trying the same, gets the message.
#[test]
fn receiving_needs_the_receive_right_and_the_creator_alone_has_it() {
    let k = TestKernel::start();
    let owner = MachTask::connect(k.path(), "owner").expect("owner");
    let port = owner.bootstrap_check_in(owner.bootstrap_port(), "com.example.own").expect("check in");
    let other = MachTask::connect(k.path(), "other").expect("other");
    let send = other.bootstrap_look_up(other.bootstrap_port(), "com.example.own").expect("look up");
    other.send(simple(send, MACH_MSG_TYPE_COPY_SEND, 7, b"hello"), 0, 0).expect("send");
    for _ in 0..3 {
        let e = other.receive(send, MACH_RCV_TIMEOUT, 0).expect_err("a send right does not receive");
        assert_eq!(kern(e), MACH_RCV_INVALID_NAME);
    }
    let state = Observer::connect(k.path()).expect("observer").state().expect("state");
    assert_eq!(state.counters.rcv_invalid_name, 3);
    let o = state.tasks.iter().find(|t| t.name == "other").expect("other in state");
    assert_eq!(o.rcv_refused, vec![(send, 3)]);
    assert!(state.tasks.iter().find(|t| t.name == "owner").is_some_and(|t| t.rcv_refused.is_empty()));
    // The message stayed queued for the one receiver.
    let got = owner.receive(port, MACH_RCV_TIMEOUT, 1000).expect("the creator receives");
    assert_eq!(got.body, b"hello");
}

/// Claim 17: two threads of one task share its name space, so one names
/// the other's own port and makes a send right from its receive right; the
/// kernel counts the messages a task received from itself.
#[test]
fn threads_of_a_task_talk_through_their_own_ports() {
    let k = TestKernel::start();
    let a = MachTask::connect(k.path(), "task").expect("task");
    let b = a.thread().expect("second thread");
    let port_a = a.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("a's port");
    let port_b = b.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("b's port");
    let other = std::thread::spawn(move || {
        for i in 0..5 {
            let m = b.receive(port_b, 0, 0).expect("b receives");
            assert_eq!(m.body, format!("a{i}").into_bytes());
            b.send(simple(port_a, MACH_MSG_TYPE_MAKE_SEND, 2, format!("b{i}").as_bytes()), 0, 0).expect("b sends");
        }
        b
    });
    for i in 0..5 {
        a.send(simple(port_b, MACH_MSG_TYPE_MAKE_SEND, 1, format!("a{i}").as_bytes()), 0, 0).expect("a sends");
        let m = a.receive(port_a, 0, 0).expect("a receives");
        assert_eq!(m.body, format!("b{i}").into_bytes());
    }
    let _b = other.join().expect("thread b");
    let state = Observer::connect(k.path()).expect("observer").state().expect("state");
    assert_eq!(state.counters.within_task, 10);
    assert_eq!(state.tasks.len(), 1, "one task, two threads");
}

/// Claim 13: a task's own port stands for the task; the kernel receives a
/// task_info request sent there and answers through the reply right.
#[test]
fn the_task_port_is_answered_by_the_kernel() {
    let k = TestKernel::start();
    let t = MachTask::connect(k.path(), "task").expect("task");
    let _second = t.thread().expect("second thread");
    let reply = t.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).expect("reply port");
    let msg = OutMsg {
        bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MAKE_SEND_ONCE),
        remote_port: t.mach_task_self(),
        local_port: reply,
        id: TASK_INFO_ID,
        body: NDR_RECORD.to_vec(),
        ..OutMsg::default()
    };
    let got = t
        .mach_msg(MachMsgArgs {
            options: MACH_SEND_MSG | MACH_RCV_MSG | MACH_RCV_TIMEOUT,
            msg: Some(msg),
            rcv_name: reply,
            rcv_timeout: 1000,
            ..MachMsgArgs::default()
        })
        .expect("task_info")
        .expect("an answer");
    assert_eq!(got.header.id, TASK_INFO_ID + 100);
    assert_eq!(got.sender_pid(), 0, "the kernel answered");
    let word = |i: usize| u32::from_le_bytes(got.body[8 + 4 * i..12 + 4 * i].try_into().unwrap());
    assert_eq!(word(0), KERN_SUCCESS);
    assert_eq!(word(1), 2, "two threads");
    // Another id to the task port is still refused.
    let e = t.send(simple(t.mach_task_self(), MACH_MSG_TYPE_COPY_SEND, 1, b"x"), 0, 0).expect_err("no such request");
    assert_eq!(kern(e), MACH_SEND_INVALID_DEST);
    let state = Observer::connect(k.path()).expect("observer").state().expect("state");
    assert_eq!(state.counters.kobject_answers, 1);
    assert_eq!(state.tasks[0].kobject_answers, 1);
}
