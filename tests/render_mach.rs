//! The Mach panel drawn from fixed snapshots, in both languages, at the
//! classroom's two sizes. A `.snap` diff is a diff of the screen.

use ipcscope::i18n::Lang;
use ipcscope::model::detail::mach::*;

use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::render_text;

mod common;
use common::fixtures::{self, view};

fn process(role: &str, pid: i32, state: &str, wchan: &str, op: &str, sent: u64, received: u64) -> ProcessSnapshot {
    let call = "mach_msg(SEND|SEND_TIMEOUT|SEND_NOTIFY, dest=0x503 COPY_SEND, reply=0x303 MAKE_SEND_ONCE, id=1000, timeout=0) = MACH_SEND_WILL_NOTIFY";
    let mut p = fixtures::process(call, role, pid, state, wchan, op, sent, received);
    p.events[0].t_ms = 10 + pid as u64 % 7;
    ProcessSnapshot {
        op_ms: 1840,
        send_rate: if sent > 0 { 5.0 } else { 0.0 },
        recv_rate: if received > 0 { 5.0 } else { 0.0 },
        ..p
    }
}

fn name(name: u32, port: u64, rights: &str, urefs: u32, what: &str) -> NameView {
    NameView { name, port: Some(port), rights: rights.into(), urefs, what: what.into(), dead_name_request: false }
}

fn queued(id: u64, sender: &str, pid: i32, cached: bool) -> MsgView {
    MsgView {
        msgh_bits: 0x1112,
        msgh_size: 280,
        msgh_id: 1000,
        sender: sender.into(),
        sender_pid: pid,
        reply: "SEND_ONCE".into(),
        ool_bytes: 0,
        age_ms: 900,
        cached,
        port: "service".into(),
        msg_id: id,
    }
}

fn task(name_: &str, pid: i32, names: Vec<NameView>, threads: Vec<ThreadView>) -> TaskView {
    TaskView { id: pid as u32 % 10, name: name_.into(), pid, task_self: 0x103, bootstrap: 0x203, threads, names }
}

fn thread(blocked: &str, cached: bool) -> ThreadView {
    ThreadView {
        thread: 1,
        blocked: blocked.into(),
        waited_ms: if blocked.is_empty() { 0 } else { 1200 },
        cached,
        call: None,
    }
}

/// Option 4 at work: the server stopped receiving, the queue is at its
/// limit and each of the three client threads has one message cached past
/// it, waiting for MACH_NOTIFY_MSG_ACCEPTED.
fn cached_mach() -> Snapshot {
    let svc = 3;
    let d = MachDetail {
        kernel_up: true,
        service: "edu.ipcscope.echo".into(),
        send_mode: "notify".into(),
        port: Some(PortView {
            id: svc,
            receiver: "server".into(),
            receiver_pid: 4121,
            receiver_name: 0x303,
            qlimit: 5,
            queue_len: 8,
            queue: vec![
                queued(1, "client-1", 4122, false),
                queued(2, "client-2", 4123, false),
                queued(3, "client-1", 4122, false),
                queued(4, "client-2", 4123, false),
                queued(5, "client-1", 4122, false),
                queued(6, "client-1", 4122, true),
                queued(7, "client-2", 4123, true),
                queued(8, "client-1", 4122, true),
            ],
            cached: 3,
            blocked_senders: vec![],
            blocked_receivers: vec![],
            send_rights: vec![
                HolderView { task: "client-1".into(), pid: 4122, name: 0x503, urefs: 2 },
                HolderView { task: "client-2".into(), pid: 4123, name: 0x503, urefs: 1 },
            ],
        }),
        counters: KernelCounters {
            sent: 8,
            cached: 3,
            bytes_inline: 2240,
            ports_created: 11,
            ..KernelCounters::default()
        },
        clients: vec![
            ClientCounts { role: "client-1".into(), cached: 2, notify_in_progress: 2, ..ClientCounts::default() },
            ClientCounts { role: "client-2".into(), cached: 1, notify_in_progress: 1, ..ClientCounts::default() },
        ],
        tasks: vec![
            task(
                "server",
                4121,
                vec![
                    name(0x103, 1, "SEND", 1, "task self"),
                    name(0x203, 2, "SEND", 1, "bootstrap"),
                    name(0x303, svc, "RECEIVE", 1, "service"),
                ],
                vec![thread("", false)],
            ),
            task(
                "client-1",
                4122,
                vec![
                    name(0x103, 4, "SEND", 1, "task self"),
                    name(0x203, 2, "SEND", 1, "bootstrap"),
                    name(0x303, 5, "RECEIVE", 1, "reply port"),
                    name(0x403, 6, "RECEIVE", 1, "notify port"),
                    name(0x503, svc, "SEND", 2, "service"),
                    name(0x603, 7, "RECEIVE", 1, "reply port"),
                    name(0x703, 8, "RECEIVE", 1, "notify port"),
                ],
                vec![thread("receive 0x403", true), thread("receive 0x703", true)],
            ),
            task(
                "client-2",
                4123,
                vec![
                    name(0x103, 9, "SEND", 1, "task self"),
                    name(0x203, 2, "SEND", 1, "bootstrap"),
                    name(0x303, 10, "RECEIVE", 1, "reply port"),
                    name(0x403, 11, "RECEIVE", 1, "notify port"),
                    name(0x503, svc, "SEND", 1, "service"),
                ],
                vec![thread("receive 0x403", true)],
            ),
        ],
        bootstrap: vec![ServiceView {
            name: "edu.ipcscope.echo".into(),
            port: svc,
            task: "server".into(),
            pid: 4121,
            checked_in: true,
        }],
        reply_ports: vec![
            ReplyPortView {
                task: "client-1".into(),
                pid: 4122,
                thread: 1,
                name: 0x303,
                port: 5,
                queue_len: 0,
                send_once: vec![],
                in_transit: 5,
            },
            ReplyPortView {
                task: "client-2".into(),
                pid: 4123,
                thread: 1,
                name: 0x303,
                port: 10,
                queue_len: 1,
                send_once: vec![HolderView { task: "server".into(), pid: 4121, name: 0x907, urefs: 1 }],
                in_transit: 3,
            },
        ],
        headers: (1..=4).map(|i| queued(i, if i % 2 == 1 { "client-1" } else { "client-2" }, 4122, false)).collect(),
        log: vec![],
    };
    let m = MechanismSnapshot {
        kind: Kind::Mach,
        processes: vec![
            process("kernel", 4120, "S", "poll_schedule_timeout", "serving", 0, 0),
            process("server", 4121, "S", "hrtimer_nanosleep", "stalled", 0, 0),
            process("client-1", 4122, "S", "__skb_wait_for_more_packets", "serving", 5, 0),
            process("client-2", 4123, "S", "__skb_wait_for_more_packets", "serving", 3, 0),
        ],
        channel: Channel::split(8, 5, Unit::Messages),
        integrity: Integrity::default(),
        history: (0..60).map(|i| (i / 6).min(8)).collect(),
        notes: vec![Note {
            t_ms: 300,
            key: "cached".into(),
            text: "MACH_SEND_WILL_NOTIFY: the kernel kept a message past the full queue (one per thread)".into(),
            ..Note::default()
        }],
        knobs: vec![
            ("producer.rate".into(), "1000".into()),
            ("consumer.rate".into(), "0".into()),
            ("mach.send_mode".into(), "notify".into()),
        ],
        detail: Detail::Mach(d),
    };
    fixtures::run_of(4119, vec![m])
}

#[test]
fn mach_focused_en_80x24() {
    insta::assert_snapshot!(render_text(&cached_mach(), &view(Lang::En), 80, 24));
}

#[test]
fn mach_focused_ko_80x24() {
    insta::assert_snapshot!(render_text(&cached_mach(), &view(Lang::Ko), 80, 24));
}

#[test]
fn mach_focused_en_160x45() {
    insta::assert_snapshot!(render_text(&cached_mach(), &view(Lang::En), 160, 45));
}

#[test]
fn mach_focused_ko_160x45() {
    insta::assert_snapshot!(render_text(&cached_mach(), &view(Lang::Ko), 160, 45));
}

/// Option 4 (`mach.send_mode=notify`): 8 messages in a queue of qlimit 5.
/// The gauge stops at 5/5 and the 3 kept past the limit are drawn and
/// counted apart, at every size and in both languages.
#[test]
fn mach_notify_kept_apart_en_120x35() {
    for (lang, word) in [(Lang::En, "kept"), (Lang::Ko, "보관")] {
        for (w, h) in [(80, 24), (120, 35), (160, 45)] {
            let text = render_text(&cached_mach(), &view(lang), w, h);
            assert!(text.contains(&format!("5/5 + 3 {word}")), "{w}x{h}:\n{text}");
            assert!(!text.contains("8/5"), "{w}x{h}:\n{text}");
        }
        let grid = render_text(&fixtures::grid(cached_mach(), 6), &view(lang), 80, 24);
        assert!(grid.contains(&format!("5/5 + 3 {word}")), "{grid}");
    }
    insta::assert_snapshot!(render_text(&cached_mach(), &view(Lang::En), 120, 35));
}

/// Several mechanisms in the grid: the compact panel at ~40×5.
#[test]
fn mach_grid_en_80x24() {
    let s = fixtures::grid(cached_mach(), 6);
    insta::assert_snapshot!(render_text(&s, &view(Lang::En), 80, 24));
}

#[test]
fn mach_grid_ko_160x45() {
    let s = fixtures::grid(cached_mach(), 3);
    insta::assert_snapshot!(render_text(&s, &view(Lang::Ko), 160, 45));
}

/// The server was killed: no port, no service.
#[test]
fn mach_server_gone_en_160x45() {
    let mut s = cached_mach();
    let m = &mut s.mechanisms[0];
    m.processes[1].exit = Some("killed by SIGKILL".into());
    m.processes[1].state = "-".into();
    m.channel = Channel::split(0, 5, Unit::Messages);
    let Detail::Mach(d) = &mut m.detail else { unreachable!() };
    d.port = None;
    d.bootstrap.clear();
    d.tasks.retain(|t| t.name != "server");
    for t in &mut d.tasks {
        for n in &mut t.names {
            if n.what == "service" {
                n.rights = "DEAD_NAME".into();
            }
        }
    }
    insta::assert_snapshot!(render_text(&s, &view(Lang::En), 160, 45));
}
