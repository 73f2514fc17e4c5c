//! The socket panel and the endpoint comparison view drawn from fixed
//! snapshots, in both languages, at the classroom's two sizes. A `.snap`
//! diff is a diff of the screen.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::pipe::PipeDetail;
use ipcscope::mechanisms::socket::{Family, SocketDetail, SocketEntry};
use ipcscope::mechanisms::Kind;
use ipcscope::model::detail::socket::{DevCounters, RemoteDetail};
use ipcscope::snapshot::*;
use ipcscope::ui::socket::endpoints;
use ipcscope::ui::{render_text, Theme, View};

mod common;
use common::fixtures::{self, run, view, RUN_DIR};

fn process(role: &str, pid: i32, state: &str, wchan: &str, op: &str, sent: u64, received: u64) -> ProcessSnapshot {
    let p = fixtures::process("send(4, 256 bytes) = 256", role, pid, state, wchan, op, sent, received);
    ProcessSnapshot { recv_rate: if received > 0 { 1000.0 } else { 0.0 }, ..fixtures::streaming(p) }
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    role: &str,
    pid: i32,
    fd: i32,
    state: &str,
    local: u16,
    peer: Option<(u16, &str)>,
    q: (u64, u64),
) -> SocketEntry {
    SocketEntry {
        role: role.into(),
        pid,
        fd,
        inode: 50_000 + fd as u64 + pid as u64,
        family: Family::Tcp,
        state: state.into(),
        local: format!("127.0.0.1:{local}"),
        local_ip: Some("127.0.0.1".into()),
        local_port: Some(local),
        peer: peer.map(|(p, _)| format!("127.0.0.1:{p}")).unwrap_or_default(),
        peer_port: peer.map(|(p, _)| p),
        peer_role: peer.map(|(_, r)| r.to_string()),
        recv_q: q.0,
        send_q: q.1,
        rcvbuf: Some(65536),
        sndbuf: Some(65536),
        send_mem: Some(if role.starts_with("client") { 66_304 } else { 0 }),
    }
}

/// `--set socket.family=tcp --set socket.clients=2 --set consumer.rate=0`:
/// the server does not read, both clients sleep in the kernel's
/// wait_woken with full send buffers.
fn stalled_tcp() -> MechanismSnapshot {
    let sockets = vec![
        tcp("server", 4121, 4, "LISTEN", 40123, None, (0, 16)),
        tcp("server", 4121, 5, "ESTABLISHED", 40123, Some((51234, "client-1")), (59_648, 0)),
        tcp("server", 4121, 6, "ESTABLISHED", 40123, Some((51240, "client-2")), (59_392, 0)),
        tcp("client-1", 4122, 4, "ESTABLISHED", 51234, Some((40123, "server")), (0, 81_920)),
        tcp("client-2", 4123, 4, "ESTABLISHED", 51240, Some((40123, "server")), (0, 80_384)),
    ];
    MechanismSnapshot {
        latency_us: None,
        cost: None,
        kind: Kind::Socket,
        processes: vec![
            process("server", 4121, "S", "poll_schedule_timeout.constprop.0", "stalled", 0, 0),
            process("client-1", 4122, "S", "wait_woken", "send()", 553, 0),
            process("client-2", 4123, "S", "wait_woken", "send()", 547, 0),
        ],
        channel: Channel::split(132_608, 131_072, Unit::Bytes),
        integrity: Integrity::default(),
        history: (0..60).map(|i| (i * 4096).min(132_608)).collect(),
        notes: vec![
            Note {
                t_ms: 300,
                key: "stalled".into(),
                text: "server: not reading — bytes pile up in its receive queue, then in the clients' send buffers"
                    .into(),
                ..Note::default()
            },
            Note {
                t_ms: 700,
                key: "blocked".into(),
                text: "client-1: blocked in send() (wait_woken) — its send buffer (SO_SNDBUF) is full".into(),
                ..Note::default()
            },
        ],
        knobs: vec![
            ("producer.rate".into(), "1000".into()),
            ("consumer.rate".into(), "0".into()),
            ("socket.family".into(), "tcp".into()),
        ],
        detail: Detail::Socket(SocketDetail {
            family: "tcp".into(),
            path: None,
            port: Some(40123),
            port_getsockname: Some(40123),
            nodelay: false,
            buffer: 32768,
            sockets,
            recv_payload: 119_040,
            send_payload: 162_304,
            path_users: 0,
            port_users: 3,
            unmatched: vec![],
            remote: None,
        }),
    }
}

/// A Unix stream socket with one client, flowing freely.
fn unix_flow() -> MechanismSnapshot {
    let path = format!("{RUN_DIR}/sock");
    let unix =
        |role: &str, pid: i32, fd: i32, state: &str, local: &str, peer: &str, peer_role: Option<&str>| SocketEntry {
            role: role.into(),
            pid,
            fd,
            inode: 35_000 + fd as u64 + pid as u64,
            family: Family::Unix,
            state: state.into(),
            local: local.into(),
            peer: peer.into(),
            peer_role: peer_role.map(Into::into),
            send_q: if state == "LISTEN" { 16 } else { 0 },
            sndbuf: Some(65536),
            rcvbuf: Some(212_992),
            send_mem: Some(0),
            ..SocketEntry::default()
        };
    let mut m = stalled_tcp();
    m.processes = vec![
        process("server", 4121, "S", "poll_schedule_timeout.constprop.0", "poll()", 0, 5400),
        process("client-1", 4122, "S", "hrtimer_nanosleep", "paced", 5400, 0),
    ];
    m.channel = Channel::split(0, 65536, Unit::Bytes);
    m.integrity = Integrity { delivered: 5400, ..Integrity::default() };
    m.history = vec![0; 60];
    m.notes = vec![];
    m.knobs[1].1 = "max".into();
    m.knobs[2].1 = "unix".into();
    m.detail = Detail::Socket(SocketDetail {
        family: "unix".into(),
        path: Some(path.clone()),
        port: None,
        port_getsockname: None,
        sockets: vec![
            unix("server", 4121, 4, "LISTEN", &path, "", None),
            unix("server", 4121, 5, "ESTABLISHED", &path, "", Some("client-1")),
            unix("client-1", 4122, 4, "ESTABLISHED", "", &path, Some("server")),
        ],
        recv_payload: 0,
        send_payload: 0,
        path_users: 2,
        port_users: 0,
        ..SocketDetail::default()
    });
    m
}

/// Another mechanism whose processes hold `target` open (its own panel is
/// not drawn in these views, so a placeholder detail will do).
fn holder(kind: Kind, target: &str, pids: &[i32]) -> MechanismSnapshot {
    let mut m = stalled_tcp();
    m.kind = kind;
    m.processes = pids
        .iter()
        .map(|&pid| {
            let mut p = process("producer", pid, "S", "wq_sleep", "send", 10, 0);
            p.fds = vec![
                FdEntry { fd: 2, target: format!("{RUN_DIR}/3.log"), mode: "w".into() },
                FdEntry { fd: 4, target: target.into(), mode: "rw".into() },
            ];
            p
        })
        .collect();
    m.detail = Detail::Pipe(PipeDetail::default());
    m
}

/// Everything at once: a FIFO, a POSIX queue, and sockets of both families.
fn all_endpoints() -> Snapshot {
    let mut both = stalled_tcp();
    let Detail::Socket(u) = unix_flow().detail else { unreachable!() };
    let Detail::Socket(d) = &mut both.detail else { unreachable!() };
    d.family = "both".into();
    d.path = u.path.clone();
    d.path_users = 2;
    let mut socks = u.sockets;
    socks.append(&mut d.sockets);
    socks.sort_by_key(|s| s.state != "LISTEN");
    d.sockets = socks;
    run(vec![
        holder(Kind::Fifo, &format!("{RUN_DIR}/fifo"), &[4130, 4131, 4132]),
        holder(Kind::Mq, "/ipcscope-4120-k3x9-q", &[4140, 4141]),
        both,
    ])
}

/// `--set socket.remote=netns --set socket.family=tcp`: client-1 beside the
/// server, client-2 in a network namespace of its own, across a veth pair.
fn remote_netns() -> MechanismSnapshot {
    let mut m = stalled_tcp();
    m.processes = vec![
        ProcessSnapshot {
            netns: Some(4_026_531_833),
            ..process("server", 4121, "S", "do_sys_poll", "poll()", 0, 1960)
        },
        ProcessSnapshot {
            netns: Some(4_026_531_833),
            ..process("client-1", 4122, "S", "hrtimer_nanosleep", "send()", 980, 0)
        },
        ProcessSnapshot {
            netns: Some(4_026_532_174),
            ..process("client-2", 4123, "S", "hrtimer_nanosleep", "send()", 980, 0)
        },
    ];
    m.notes.clear();
    m.channel = Channel::split(0, 131_072, Unit::Bytes);
    let far = |s: SocketEntry, local: &str, peer: &str| SocketEntry {
        local: local.into(),
        local_ip: local.rsplit_once(':').map(|(ip, _)| ip.to_string()),
        peer: peer.into(),
        send_mem: Some(0),
        ..s
    };
    let Detail::Socket(d) = &mut m.detail else { unreachable!() };
    d.sockets = vec![
        tcp("server", 4121, 4, "LISTEN", 40123, None, (0, 16)),
        far(tcp("server", 4121, 5, "LISTEN", 40123, None, (0, 16)), "10.231.3.1:40123", ""),
        tcp("server", 4121, 7, "ESTABLISHED", 40123, Some((51234, "client-1")), (0, 0)),
        far(
            tcp("server", 4121, 8, "ESTABLISHED", 40123, Some((36742, "client-2")), (0, 0)),
            "10.231.3.1:40123",
            "10.231.3.2:36742",
        ),
        far(
            tcp("client-1", 4122, 4, "ESTABLISHED", 51234, Some((40123, "server")), (0, 0)),
            "127.0.0.1:51234",
            "127.0.0.1:40123",
        ),
        far(
            tcp("client-2", 4123, 6, "ESTABLISHED", 36742, Some((40123, "server")), (0, 0)),
            "10.231.3.2:36742",
            "10.231.3.1:40123",
        ),
    ];
    d.recv_payload = 0;
    d.send_payload = 0;
    d.remote = Some(RemoteDetail {
        role: "client-2".into(),
        host_netns: Some(4_026_531_833),
        remote_netns: Some(4_026_532_174),
        host_if: "ipcs4120h".into(),
        remote_if: "ipcs4120r".into(),
        host_ip: Some("10.231.3.1".into()),
        remote_ip: Some("10.231.3.2".into()),
        port: Some(40123),
        host_state: Some("ESTABLISHED".into()),
        remote_state: Some("ESTABLISHED".into()),
        delivered_bytes: 250_880,
        sent_msgs: 980,
        host_dev: Some(DevCounters { rx_bytes: 311_522, rx_packets: 925, tx_bytes: 60_626, tx_packets: 917 }),
        remote_dev: Some(DevCounters { rx_bytes: 60_626, rx_packets: 917, tx_bytes: 311_522, tx_packets: 925 }),
        reach_tcp: Some("connected".into()),
        reach_abstract: Some("ECONNREFUSED".into()),
        reach_path: Some("connected".into()),
        reach_loopback: Some("ECONNREFUSED".into()),
        abstract_name: Some("@ipcscope-4120-sock".into()),
        failed: None,
    });
    m
}

#[test]
fn remote_netns_en_80x24() {
    insta::assert_snapshot!(render_text(&run(vec![remote_netns()]), &view(Lang::En), 80, 24));
}

#[test]
fn remote_netns_ko_80x24() {
    insta::assert_snapshot!(render_text(&run(vec![remote_netns()]), &view(Lang::Ko), 80, 24));
}

#[test]
fn remote_netns_en_160x45() {
    insta::assert_snapshot!(render_text(&run(vec![remote_netns()]), &view(Lang::En), 160, 45));
}

/// The namespaces, the addresses and the bytes across are drawn whole at
/// the classroom's sizes, in both languages.
#[test]
fn remote_netns_drawn_whole() {
    for lang in [Lang::En, Lang::Ko] {
        for (w, h) in [(80, 24), (160, 45)] {
            let frame = render_text(&run(vec![remote_netns()]), &view(lang), w, h);
            // The cable: a veth pair, 가상 이더넷 in Korean.
            let cable = if lang == Lang::Ko { "가상 이더넷" } else { "veth" };
            for word in ["4026531833", "4026532174", "10.231.3.1:40123", cable, "245.0K", "ECONNREFUSED"] {
                assert!(frame.contains(word), "{lang:?} {w}x{h}: {word} missing\n{frame}");
            }
        }
    }
}

fn focused(lang: Lang, selected: usize) -> View {
    View { selected, ..fixtures::focused(lang) }
}

#[test]
fn stalled_tcp_en_80x24() {
    insta::assert_snapshot!(render_text(&run(vec![stalled_tcp()]), &view(Lang::En), 80, 24));
}

#[test]
fn stalled_tcp_ko_80x24() {
    insta::assert_snapshot!(render_text(&run(vec![stalled_tcp()]), &view(Lang::Ko), 80, 24));
}

#[test]
fn stalled_tcp_en_160x45() {
    insta::assert_snapshot!(render_text(&run(vec![stalled_tcp()]), &view(Lang::En), 160, 45));
}

#[test]
fn unix_flow_ko_160x45() {
    insta::assert_snapshot!(render_text(&run(vec![unix_flow()]), &view(Lang::Ko), 160, 45));
}

#[test]
fn comparison_en_160x45() {
    insta::assert_snapshot!(render_text(&all_endpoints(), &focused(Lang::En, 2), 160, 45));
}

#[test]
fn comparison_ko_160x45() {
    insta::assert_snapshot!(render_text(&all_endpoints(), &focused(Lang::Ko, 2), 160, 45));
}

#[test]
fn comparison_ko_80x24() {
    insta::assert_snapshot!(render_text(&all_endpoints(), &focused(Lang::Ko, 2), 80, 24));
}

/// Seven cells in the grid: the compact socket panel still says who is
/// blocked and where it listens.
#[test]
fn compact_grid_cell() {
    let s = fixtures::grid(run(vec![stalled_tcp()]), 7);
    insta::assert_snapshot!(render_text(&s, &view(Lang::En), 80, 24));
}

/// Every cell of the comparison comes from the snapshot: identifiers from
/// fd tables and the socket detail, holders counted by process.
#[test]
fn comparison_reads_the_snapshot() {
    let eps = endpoints(&all_endpoints());
    let get = |k: &str| eps.iter().find(|e| e.kind == k).unwrap();
    assert_eq!(get("ep_fifo").id, format!("{RUN_DIR}/fifo"));
    assert_eq!(get("ep_fifo").users, Some(3));
    assert_eq!(get("ep_mq").id, "/ipcscope-4120-k3x9-q");
    assert_eq!(get("ep_mq").users, Some(2));
    assert_eq!(get("ep_unix").id, format!("{RUN_DIR}/sock"));
    assert_eq!(get("ep_tcp").id, "40123");
    assert_eq!(get("ep_tcp").users, Some(3));
    assert_eq!(get("ep_tcp").reach, "reach_loopback");
    assert_eq!(get("ep_mach").users, None);
    // Nothing running: nothing made up.
    let none = endpoints(&run(vec![]));
    assert!(none.iter().all(|e| e.users.is_none() && e.id.is_empty()));
}

/// The view: grid or focused, in `lang` and `theme`.
fn look(lang: Lang, theme: Theme, focused: bool) -> View {
    View { lang, theme, focused, ..View::default() }
}

/// The compact diagram (a grid cell of 160×45) and the full one
/// (focused, with the endpoint comparison under it), in both languages
/// and both classroom themes.
#[test]
fn diagram_frames() {
    for (name, focused) in [("compact", false), ("full", true)] {
        for lang in [Lang::En, Lang::Ko] {
            for theme in [Theme::Default, Theme::Projector] {
                let snap = if focused { run(vec![stalled_tcp()]) } else { fixtures::grid(run(vec![stalled_tcp()]), 7) };
                let frame = render_text(&snap, &look(lang, theme, focused), 160, 45);
                let id =
                    format!("socket_{name}_{}_{}_160x45", if lang == Lang::Ko { "ko" } else { "en" }, theme.name());
                insta::assert_snapshot!(id, frame);
            }
        }
    }
}

/// Each client's connection is its own arrow into the server's accepted
/// socket, its bar the client's send-buffer memory against SO_SNDBUF and
/// never past full: the kernel's overshoot (66 304 − 65 536 bytes) is
/// counted apart. The listener is where they connected.
#[test]
fn one_arrow_per_connection_never_past_full() {
    let frame =
        render_text(&fixtures::grid(run(vec![stalled_tcp()]), 7), &look(Lang::En, Theme::Default, false), 160, 45);
    for fd in ["fd 5", "fd 6"] {
        assert!(frame.contains(fd), "{fd}: {frame}");
    }
    assert!(frame.contains("64.0K/64.0K +768"), "{frame}");
    assert!(!frame.contains("128.0K"), "no summed gauge: {frame}");
    assert!(frame.contains("listen: TCP 127.0.0.1:40123"), "{frame}");
    assert!(frame.contains("■ client-1: BLOCKED: buffer full"), "{frame}");
}

/// Digit runs of a frame: `64.0K/10` gives 64, 0, 10; a `…N more` count
/// is the layout's own, not a fact.
fn numbers(frame: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in frame.split('…').enumerate() {
        let part = if i > 0 { part.trim_start_matches(|c: char| c.is_ascii_digit()) } else { part };
        out.extend(part.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(str::to_string));
    }
    out
}

/// At every classroom size, grid and focused (with the comparison view),
/// both languages, every theme: each number drawn is one the roomiest
/// frames draw whole (a cut `40123` would show as `401`), and no fraction
/// passes its capacity.
#[test]
fn nothing_cut_at_any_size() {
    let snaps = [run(vec![stalled_tcp()]), run(vec![unix_flow()]), run(vec![remote_netns()]), all_endpoints()];
    let grid_of = |s: &Snapshot| {
        let mut g = s.clone();
        let sock = g.mechanisms.iter().find(|m| m.kind == Kind::Socket).unwrap().clone();
        g.mechanisms = vec![sock; 7];
        g
    };
    let socket_at = |s: &Snapshot| s.mechanisms.iter().position(|m| m.kind == Kind::Socket).unwrap();
    let mut whole = std::collections::HashSet::new();
    for s in &snaps {
        for lang in [Lang::En, Lang::Ko] {
            whole.extend(numbers(&render_text(&grid_of(s), &look(lang, Theme::Default, false), 250, 90)));
            let v = View { selected: socket_at(s), ..look(lang, Theme::Default, true) };
            whole.extend(numbers(&render_text(s, &v, 250, 90)));
        }
    }
    for s in &snaps {
        for (w, h) in [(80, 24), (100, 30), (120, 35), (160, 45), (200, 60)] {
            for lang in [Lang::En, Lang::Ko] {
                for theme in Theme::ALL {
                    for focused in [false, true] {
                        let (g, v) = if focused {
                            (s.clone(), View { selected: socket_at(s), ..look(lang, theme, true) })
                        } else {
                            (grid_of(s), look(lang, theme, false))
                        };
                        let frame = render_text(&g, &v, w, h);
                        let body: String = frame.lines().skip(1).take(h as usize - 2).collect::<Vec<_>>().join("\n");
                        // The lesson and event panes are not this panel's.
                        let body = body.split(" lesson ").next().unwrap_or(&body);
                        let body = body.split(" 설명 ").next().unwrap_or(body);
                        for n in numbers(body) {
                            assert!(
                                whole.contains(&n),
                                "{w}x{h} {lang:?} {theme:?} focused {focused}: `{n}` is not whole\n{frame}"
                            );
                        }
                        for frac in body.split_whitespace().filter_map(|t| t.split_once('/')) {
                            if let (Ok(a), Ok(b)) = (frac.0.parse::<u64>(), frac.1.parse::<u64>()) {
                                assert!(a <= b, "{w}x{h}: {a}/{b} past capacity\n{frame}");
                            }
                        }
                    }
                }
            }
        }
    }
}
