//! `mach.personality` on screen: the rules in force in the Mach panel's
//! title, and the book ⇄ real kernel lines in the roomy panel while
//! `MACH_SEND_NOTIFY` is in play; nothing of it for a recording made
//! before personalities existed.

use ipcscope::i18n::Lang;
use ipcscope::mechanisms::Kind;
use ipcscope::model::detail::mach::*;
use ipcscope::snapshot::*;
use ipcscope::ui::{render_text, View};

mod common;
use common::fixtures::{self, focused};

fn snapshot(personality: &str) -> Snapshot {
    let since = KernelCounters { send_possible: 7, returned_at_once: 40, ..KernelCounters::default() };
    let d = MachDetail {
        kernel_up: true,
        service: "edu.ipcscope.echo".into(),
        send_mode: "notify".into(),
        personality: personality.into(),
        since_personality: since.clone(),
        port: Some(PortView {
            id: 3,
            receiver: "server".into(),
            receiver_pid: 4121,
            receiver_name: 0x303,
            qlimit: 2,
            queue_len: 2,
            ..PortView::default()
        }),
        counters: KernelCounters { sent: 30, cached: 4, send_possible_armed: 9, ..since },
        ..MachDetail::default()
    };
    let call =
        "mach_msg(SEND|SEND_TIMEOUT|SEND_NOTIFY, dest=0x503 COPY_SEND, id=1000, timeout=0) = MACH_SEND_TIMED_OUT";
    let m = MechanismSnapshot {
        latency_us: None,
        cost: None,
        kind: Kind::Mach,
        processes: vec![
            fixtures::process(call, "kernel", 4120, "S", "poll_schedule_timeout", "serving", 0, 0),
            fixtures::process(call, "server", 4121, "S", "hrtimer_nanosleep", "paced", 0, 9),
            fixtures::process(call, "client-1", 4122, "S", "__skb_wait_for_more_packets", "sending", 12, 0),
        ],
        channel: Channel::split(2, 2, Unit::Messages),
        integrity: Integrity::default(),
        history: vec![2; 30],
        notes: vec![],
        knobs: vec![("mach.personality".into(), personality.into())],
        detail: Detail::Mach(d),
    };
    fixtures::run_of(4119, vec![m])
}

fn frame(personality: &str, lang: Lang, w: u16, h: u16) -> String {
    let view = View { ..focused(lang) };
    render_text(&snapshot(personality), &view, w, h)
}

fn title_row(frame: &str) -> &str {
    frame.lines().find(|l| l.contains("Mach")).unwrap_or("")
}

#[test]
fn the_title_names_the_rules_in_force() {
    for (p, en, ko) in [
        ("textbook", "textbook rules", "교과서 규칙"),
        ("xnu", "XNU rules", "XNU 규칙"),
        ("gnumach", "GNU Mach rules", "GNU Mach 규칙"),
    ] {
        for (w, h) in [(80, 24), (160, 45)] {
            let f = frame(p, Lang::En, w, h);
            assert!(title_row(&f).contains(&format!("· {en}")), "{p} {w}x{h}:\n{f}");
            let f = frame(p, Lang::Ko, w, h);
            assert!(title_row(&f).contains(&format!("· {ko}")), "{p} {w}x{h} ko:\n{f}");
        }
    }
    // A recording from before personalities: the title as it was.
    let f = frame("", Lang::En, 160, 45);
    assert!(!title_row(&f).contains(" rules"), "{f}");
}

#[test]
fn the_roomy_panel_sets_the_book_beside_the_real_kernels() {
    let f = frame("xnu", Lang::En, 160, 45);
    assert!(f.contains("book ⇄ real kernel:"), "{f}");
    assert!(f.contains("▶ XNU: nothing kept — MACH_SEND_TIMED_OUT, then MACH_NOTIFY_SEND_POSSIBLE"), "{f}");
    assert!(f.contains("  GNU Mach: one kept per task and send right"), "{f}");
    assert!(f.contains("MACH_NOTIFY_SEND_POSSIBLE 7"), "{f}");
    let f = frame("gnumach", Lang::Ko, 160, 45);
    assert!(f.contains("교과서 ⇄ 실제 커널:"), "{f}");
    assert!(f.contains("▶ GNU Mach: 태스크와 송신 권리마다 하나 보관"), "{f}");
    // Old recordings and a queue without MACH_SEND_NOTIFY show none.
    assert!(!frame("", Lang::En, 160, 45).contains("book ⇄"));
    let mut s = snapshot("textbook");
    if let Detail::Mach(d) = &mut s.mechanisms[0].detail {
        d.send_mode = "block".into();
        d.counters = KernelCounters::default();
    }
    assert!(!render_text(&s, &focused(Lang::En), 160, 45).contains("book ⇄"));
}

#[test]
fn nothing_is_cut_at_any_size() {
    for p in ["textbook", "xnu", "gnumach"] {
        for lang in [Lang::En, Lang::Ko] {
            for (w, h) in [(80, 24), (100, 30), (120, 35), (160, 45), (200, 60)] {
                let f = frame(p, lang, w, h);
                for line in f.lines().filter(|l| l.contains("⇄") || l.contains("rules") || l.contains("규칙")) {
                    for word in ["MACH_NOTIFY_SEND_POSSIBLE", "MACH_NOTIFY_MSG_ACCEPTED", "MACH_SEND_TIMED_OUT"] {
                        let cut = &word[..word.len() - 3];
                        if line.contains(cut) {
                            assert!(line.contains(word), "{p} {w}x{h}: cut {word}: {line}");
                        }
                    }
                }
            }
        }
    }
}
