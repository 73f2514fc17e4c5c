//! The Mach panel drawn from fixed snapshots, in both languages, at the
//! classroom's two sizes. A `.snap` diff is a diff of the screen.

use ipcscope::i18n::Lang;
use ipcscope::model::detail::mach::*;

use std::collections::HashSet;

use ipcscope::mechanisms::Kind;
use ipcscope::snapshot::*;
use ipcscope::ui::{render_text, Theme, View};

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
        reply_port: 0,
    }
}

fn task(name_: &str, pid: i32, names: Vec<NameView>, threads: Vec<ThreadView>) -> TaskView {
    TaskView {
        id: pid as u32 % 10,
        name: name_.into(),
        pid,
        task_self: 0x103,
        bootstrap: 0x203,
        threads,
        names,
        rcv_refused: Vec::new(),
        kobject_answers: 0,
    }
}

/// A thread as the kernel's tables show it: blocked in a send (a full
/// queue), in a receive on its notify port with a message kept past the
/// limit, or in no call.
fn thread(blocked: &str, cached: bool) -> ThreadView {
    let call = match (blocked.split(' ').next(), cached) {
        (Some("send"), _) => {
            Some(EmuCall { call: "mach_msg(SEND)".into(), wait: EmuWait::QueueFull, ..EmuCall::default() })
        }
        (Some("receive"), true) => {
            Some(EmuCall { call: "mach_msg(RCV)".into(), wait: EmuWait::KeptAwaitingAccepted, ..EmuCall::default() })
        }
        (Some("receive"), false) => {
            Some(EmuCall { call: "mach_msg(RCV)".into(), wait: EmuWait::Message, ..EmuCall::default() })
        }
        _ => None,
    };
    let waited_ms = if blocked.is_empty() { 0 } else { 1200 };
    ThreadView { thread: 1, blocked: blocked.into(), waited_ms, cached, call: call.map(|c| EmuCall { waited_ms, ..c }) }
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
        // A recording from before mach.personality.
        ..MachDetail::default()
    };
    let m = MechanismSnapshot {
        latency_us: None,
        cost: None,
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

/// Option 1 (`block`): the server stopped receiving, the queue is at its
/// limit and every client thread waits inside `mach_msg(SEND)`.
fn blocked_mach() -> Snapshot {
    let mut s = cached_mach();
    let m = &mut s.mechanisms[0];
    m.channel = Channel::split(5, 5, Unit::Messages);
    m.notes.truncate(0);
    m.knobs.retain(|(k, _)| k != "mach.send_mode");
    let Detail::Mach(d) = &mut m.detail else { unreachable!() };
    d.send_mode = "block".into();
    let port = d.port.as_mut().unwrap();
    port.queue.retain(|q| !q.cached);
    port.queue_len = 5;
    port.cached = 0;
    port.blocked_senders = ["client-1", "client-1", "client-2"]
        .iter()
        .map(|t| WaiterView { task: (*t).into(), pid: 4122, thread: 1, waited_ms: 1200, ..WaiterView::default() })
        .collect();
    d.counters.cached = 0;
    for t in d.tasks.iter_mut().filter(|t| t.name != "server") {
        for th in &mut t.threads {
            *th = thread("send 0x503", false);
        }
    }
    for c in &mut d.clients {
        c.cached = 0;
        c.notify_in_progress = 0;
    }
    s
}

fn theme_name(t: Theme) -> &'static str {
    t.name()
}

/// One panel drawn alone into a cell of `w`×`h`, as text.
fn panel_text(s: &Snapshot, w: u16, h: u16, view: &View) -> String {
    let m = &s.mechanisms[0];
    let Detail::Mach(d) = &m.detail else { unreachable!() };
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    term.draw(|f| ipcscope::ui::mach::render(f, f.area(), m, d, 5, false, view)).unwrap();
    ipcscope::ui::buffer_text(term.backend().buffer())
}

/// The focused view's second part drawn alone.
fn extra_text(s: &Snapshot, w: u16, h: u16, view: &View) -> String {
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut term = ratatui::Terminal::new(backend).unwrap();
    term.draw(|f| ipcscope::ui::mach::render_extra(f, f.area(), s, view)).unwrap();
    ipcscope::ui::buffer_text(term.backend().buffer())
}

fn lang_name(l: Lang) -> &'static str {
    if l == Lang::En {
        "en"
    } else {
        "ko"
    }
}

/// Cells a panel gets: the grid's at 80×24 … 200×60 (about 40×5 to
/// 66×19), the zoomed panel's (78×16 … 198×32), and the sizes between.
fn cells() -> Vec<(u16, u16)> {
    let widths =
        [30u16, 34, 38, 40, 44, 48, 50, 53, 58, 64, 66, 69, 70, 72, 78, 80, 98, 100, 118, 120, 158, 160, 198, 200];
    let heights = [3u16, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 21, 23, 28, 32, 40];
    widths.iter().flat_map(|&w| heights.iter().map(move |&h| (w, h))).collect()
}

/// The figures at their compact and full sizes, in both languages and in
/// the default and projector themes: the mailbox of message blocks with
/// its qlimit, the rights as labelled arrows, every task marked by the
/// call the emulated kernel has it in.
#[test]
fn mach_diagrams() {
    for (name, snap) in [("blocked", blocked_mach()), ("kept", cached_mach())] {
        for lang in [Lang::En, Lang::Ko] {
            for theme in [Theme::Default, Theme::Projector] {
                let v = View { lang, theme, ..View::default() };
                let tag = format!("{name}_{}_{}", lang_name(lang), theme_name(theme));
                insta::assert_snapshot!(format!("mach_tiny_{tag}"), panel_text(&snap, 40, 5, &v));
                insta::assert_snapshot!(format!("mach_compact_{tag}"), panel_text(&snap, 53, 14, &v));
                insta::assert_snapshot!(format!("mach_full_{tag}"), panel_text(&snap, 120, 21, &v));
            }
        }
    }
}

/// Mach tasks read as Mach: the call they are in and why, from the
/// kernel's tables — never "BLOCKED on socket", our transport's state.
/// At compact size the blocked senders say `mach_msg(SEND) — queue full`.
#[test]
fn tasks_show_their_mach_call_not_the_socket() {
    for lang in [Lang::En, Lang::Ko] {
        let v = View { lang, ..View::default() };
        let socket = ipcscope::i18n::t(lang, "st_blocked_socket");
        for (w, h) in cells() {
            for snap in [blocked_mach(), cached_mach()] {
                let text = panel_text(&snap, w, h, &v);
                assert!(!text.contains(socket), "{w}x{h}:\n{text}");
            }
        }
        let full = ipcscope::i18n::t(lang, "emu_wait_queue_full");
        let text = panel_text(&blocked_mach(), 53, 14, &v);
        let c = |n: u32| ipcscope::i18n::tf(lang, "mach_client_n", &[("n", n.to_string())]);
        assert!(text.contains(&format!("■ {} mach_msg(SEND) — {full}", c(1))), "{text}");
        assert!(text.contains(&format!("■ {} mach_msg(SEND) — {full}", c(2))), "{text}");
        // Zoomed, the Linux side appears, labelled as the transport.
        let text = panel_text(&blocked_mach(), 158, 23, &v);
        assert!(text.contains(ipcscope::i18n::t(lang, "mach_transport")), "{text}");
        assert!(text.contains("__skb_wait_for_more_packets"), "{text}");
        let grid = panel_text(&blocked_mach(), 53, 14, &v);
        assert!(!grid.contains("__skb_wait"), "the transport's wait channel only when zoomed:\n{grid}");
    }
}

/// The compact figure keeps the mailbox (its blocks and count) and the
/// rights' arrows at every grid cell from 38×8 up.
#[test]
fn the_compact_figure_keeps_mailbox_and_rights() {
    for lang in [Lang::En, Lang::Ko] {
        let v = View { lang, ..View::default() };
        let (send, recv) = (ipcscope::i18n::t(lang, "mach_send"), ipcscope::i18n::t(lang, "mach_receive"));
        for (w, h) in cells().into_iter().filter(|&(w, h)| (38..70).contains(&w) && (8..14).contains(&h)) {
            let text = panel_text(&blocked_mach(), w, h, &v);
            for want in ["╔", "╚", "5/5", "▶", send, recv] {
                assert!(text.contains(want), "{w}x{h} lacks {want:?}:\n{text}");
            }
            assert_eq!(text.matches('▇').count(), 5, "one block per message:\n{text}");
        }
    }
}

/// Words of the snapshot, the locale file and the panel drawn large: the
/// whole forms a smaller drawing may show.
fn vocabulary(snap: &Snapshot, large: &[String]) -> (HashSet<String>, HashSet<String>) {
    let mut words = HashSet::new();
    let locales: toml::Table = toml::from_str(include_str!("../assets/locales.toml")).unwrap();
    for table in locales.values().filter_map(|t| t.as_table()) {
        for entry in table.values().filter_map(|e| e.as_table()) {
            for text in entry.values().filter_map(|v| v.as_str()) {
                words.extend(tokens(text));
            }
        }
    }
    words.extend(tokens(&serde_json::to_string(snap).unwrap()));
    for text in large {
        words.extend(tokens(text));
    }
    let mut prefixes = HashSet::new();
    for w in &words {
        let chars: Vec<char> = w.chars().collect();
        for k in 1..chars.len() {
            prefixes.insert(chars[..k].iter().collect::<String>());
        }
    }
    (words, prefixes)
}

fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// Tokens of `text` that are the start of a longer word and no word
/// themselves: `connection por`, `655` of `65536`, Korean `단방` of
/// `단방향`. The counts of `…N more` are left aside.
fn cut_tokens(text: &str, vocab: &(HashSet<String>, HashSet<String>)) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find(|c: char| c.is_alphanumeric() || c == '_') {
            let after_ellipsis = rest[..at].ends_with('…');
            let tail = &rest[at..];
            let end = tail.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(tail.len());
            let tok = &tail[..end];
            rest = &tail[end..];
            if after_ellipsis || tok.chars().count() < 2 {
                continue;
            }
            if vocab.1.contains(tok) && !vocab.0.contains(tok) {
                out.push(format!("{tok:?} in {line:?}"));
            }
        }
    }
    out
}

/// Never a cut number or word: at every cell size, in both languages and
/// every theme, each word drawn is whole — a label that does not fit is
/// left out or given its short form.
#[test]
fn no_cut_number_or_word_at_any_size() {
    for snap in [blocked_mach(), cached_mach()] {
        let large: Vec<String> = [Lang::En, Lang::Ko]
            .into_iter()
            .flat_map(|lang| {
                let v = View { lang, ..View::default() };
                [panel_text(&snap, 400, 60, &v), extra_text(&snap, 400, 30, &v)]
            })
            .collect();
        let vocab = vocabulary(&snap, &large);
        // The check itself sees a cut word and a cut number.
        assert!(!cut_tokens("connection por", &vocab).is_empty());
        assert!(!cut_tokens("client-1 412", &vocab).is_empty());
        assert!(cut_tokens("client-1 4122 …12 more", &vocab).is_empty());
        for lang in [Lang::En, Lang::Ko] {
            for theme in Theme::ALL {
                let v = View { lang, theme, ..View::default() };
                for (w, h) in cells() {
                    let text = panel_text(&snap, w, h, &v);
                    let cut = cut_tokens(&text, &vocab);
                    assert!(cut.is_empty(), "{w}x{h} {lang:?} {theme:?}: {cut:#?}\n{text}");
                }
                for (w, h) in [(78, 6), (78, 13), (98, 13), (118, 13), (158, 13), (198, 13)] {
                    let text = extra_text(&snap, w, h, &v);
                    let cut = cut_tokens(&text, &vocab);
                    assert!(cut.is_empty(), "extra {w}x{h} {lang:?}: {cut:#?}\n{text}");
                }
            }
        }
    }
}

/// A lesson step's `show` puts what it is about on the 80×24 screen: the
/// header of the last request, one client's name space with a port per
/// thread, a refused receive beside the one receiver — in both languages.
#[test]
fn a_lesson_step_shows_its_evidence_at_80x24() {
    let mut snap = blocked_mach();
    {
        let Detail::Mach(d) = &mut snap.mechanisms[0].detail else { unreachable!() };
        let port = d.port.as_mut().unwrap();
        for q in &mut port.queue {
            q.reply_port = 5;
        }
        d.reply_ports.push(ReplyPortView {
            task: "client-1".into(),
            pid: 4122,
            thread: 2,
            name: 0x403,
            port: 6,
            ..ReplyPortView::default()
        });
        let c1 = d.tasks.iter_mut().find(|t| t.name == "client-1").unwrap();
        c1.rcv_refused = vec![(0x503, 4)];
    }
    let step = |lang: Lang, show: &[&str]| {
        let bar = ipcscope::ui::LessonBar {
            title: "t".into(),
            step: 1,
            total: 2,
            caption: "c".into(),
            show: show.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let v = View { lang, lesson: Some(bar), ..view(lang) };
        render_text(&snap, &v, 80, 24)
    };
    let text = step(Lang::En, &["headers"]);
    for w in ["msgh_size 280", "msgh_remote_port 0x503", "msgh_local_port 0x303 MAKE_SEND_ONCE", "source client-1"] {
        assert!(text.contains(w), "{w}:\n{text}");
    }
    let text = step(Lang::Ko, &["headers"]);
    for w in ["msgh_size 280", "MAKE_SEND_ONCE", "출발지 클라이언트-1"] {
        assert!(text.contains(w), "{w}:\n{text}");
    }
    let text = step(Lang::En, &["names"]);
    for w in ["client-1: 0x103 task self", "thread 1 0x303", "thread 2 0x403"] {
        assert!(text.contains(w), "{w}:\n{text}");
    }
    let text = step(Lang::En, &["refused"]);
    for w in ["mach_msg(RCV, 0x503", "MACH_RCV_INVALID_NAME ×4", "only server holds RECEIVE 0x303"] {
        assert!(text.contains(w), "{w}:\n{text}");
    }
    let text = step(Lang::Ko, &["refused"]);
    assert!(text.contains("RECEIVE 0x303는 서버만 가짐"), "{text}");
}
