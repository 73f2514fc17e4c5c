//! The lesson pane of a focused panel: what the class is looking at, in
//! the textbook's terms, and sentences that point at the live figures.
//! Lesson texts are ours, one file per mechanism per language, in
//! `assets/lessons/`.

use crate::i18n::{t, tf, Lang};
use crate::model::snapshot::{Detail, MechanismSnapshot, Snapshot};
use crate::model::Kind;
use crate::monitor::procfs;
use crate::ui::widgets;

/// The lesson text for a mechanism (registered here, one line each).
pub fn text(kind: Kind, lang: Lang) -> Option<&'static str> {
    Some(match (kind, lang) {
        (Kind::Pipe, Lang::En) => include_str!("../../assets/lessons/pipe.en.md"),
        (Kind::Pipe, Lang::Ko) => include_str!("../../assets/lessons/pipe.ko.md"),
        (Kind::Alpc, Lang::En) => include_str!("../../assets/lessons/alpc.en.md"),
        (Kind::Alpc, Lang::Ko) => include_str!("../../assets/lessons/alpc.ko.md"),
        (Kind::Mach, Lang::En) => include_str!("../../assets/lessons/mach.en.md"),
        (Kind::Mach, Lang::Ko) => include_str!("../../assets/lessons/mach.ko.md"),
        (Kind::Shm, Lang::En) => include_str!("../../assets/lessons/shm.en.md"),
        (Kind::Shm, Lang::Ko) => include_str!("../../assets/lessons/shm.ko.md"),
        (Kind::Fifo, Lang::En) => include_str!("../../assets/lessons/fifo.en.md"),
        (Kind::Fifo, Lang::Ko) => include_str!("../../assets/lessons/fifo.ko.md"),
        (Kind::Mq, Lang::En) => include_str!("../../assets/lessons/mq.en.md"),
        (Kind::Mq, Lang::Ko) => include_str!("../../assets/lessons/mq.ko.md"),
        (Kind::Socket, Lang::En) => include_str!("../../assets/lessons/socket.en.md"),
        (Kind::Socket, Lang::Ko) => include_str!("../../assets/lessons/socket.ko.md"),
    })
}

/// Sentences about what the snapshot shows right now.
pub type ObserveFn = fn(&MechanismSnapshot, Lang) -> Vec<String>;

fn observer(kind: Kind) -> Option<ObserveFn> {
    let f: ObserveFn = match kind {
        Kind::Pipe => observe_pipe,
        Kind::Alpc => observe_alpc,
        Kind::Mach => crate::ui::mach::observe,
        Kind::Shm => crate::ui::shm::observe,
        Kind::Fifo => crate::ui::fifo::observe,
        Kind::Mq => crate::ui::mq::observe,
        Kind::Socket => crate::ui::socket::observe,
    };
    Some(f)
}

pub fn observations(snap: &Snapshot, m: &MechanismSnapshot, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    if snap.run.paused {
        out.push(t(lang, "obs_paused").to_string());
    }
    if snap.run.step_mode {
        let sent: u64 = m.processes.iter().map(|p| p.sent).sum();
        let received: u64 = m.integrity.delivered;
        out.push(tf(lang, "obs_step", &[("inflight", sent.saturating_sub(received).to_string())]));
    }
    if let Some(f) = observer(m.kind) {
        out.extend(f(m, lang));
    }
    out
}

/// "64.0 KiB" for a lesson sentence.
pub(crate) fn kib(n: u64) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else if n >= 1024 {
        format!("{} KiB", widgets::bytes(n).trim_end_matches('K'))
    } else {
        format!("{n} B")
    }
}

fn observe_pipe(m: &MechanismSnapshot, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    let (Some(prod), Some(cons)) = (m.processes.first(), m.processes.get(1)) else { return out };
    #[allow(irrefutable_let_patterns)]
    let Detail::Pipe(d) = &m.detail
    else {
        return out;
    };
    let c = &m.channel;
    if prod.exit.as_deref() == Some("killed by SIGPIPE") {
        out.push(t(lang, "obs_pipe_sigpipe").into());
    } else if prod.errors.epipe > 0 {
        out.push(t(lang, "obs_pipe_epipe").into());
    }
    if d.eof_seen {
        out.push(t(lang, "obs_pipe_eof").into());
    }
    if d.write_ends.len() > 1 {
        out.push(tf(
            lang,
            "obs_pipe_two_writers",
            &[("n", d.write_ends.len().to_string()), ("who", d.write_ends.join(", "))],
        ));
    }
    if prod.alive() && procfs::is_blocked(&prod.state, &prod.wchan) && c.capacity > 0 && c.depth >= c.capacity {
        out.push(tf(lang, "obs_pipe_full", &[("cap", kib(c.capacity))]));
    } else if cons.alive() && cons.wchan.contains("pipe_read") && c.depth == 0 {
        out.push(t(lang, "obs_pipe_empty").into());
    } else if prod.alive() && cons.alive() && prod.send_rate > 0.0 {
        out.push(tf(
            lang,
            "obs_pipe_flow",
            &[("rate", widgets::rate(prod.send_rate)), ("depth", kib(c.depth)), ("cap", kib(c.capacity))],
        ));
    }
    out
}

fn observe_alpc(m: &MechanismSnapshot, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    let Detail::Alpc(d) = &m.detail else { return out };
    let Some(state) = &d.state else { return out };
    out.push(tf(lang, "obs_alpc_channels", &[("n", state.channels.len().to_string())]));
    // Which path carries the traffic: the one that moved the most bytes.
    let c = state.totals;
    let paths = [
        ("obs_alpc_path_queue", c.copied_messages, c.copied_bytes),
        ("obs_alpc_path_section", c.section_messages, c.section_bytes),
        ("obs_alpc_path_direct", c.direct_reads, c.direct_read_bytes + c.direct_write_bytes),
    ];
    if let Some((key, n, bytes)) = paths.iter().filter(|p| p.2 > 0).max_by_key(|p| p.2) {
        out.push(tf(lang, key, &[("n", n.to_string()), ("bytes", kib(*bytes)), ("max", d.small_max.to_string())]));
    }
    if m.channel.depth > 0 {
        out.push(tf(lang, "obs_alpc_waiting", &[("n", m.channel.depth.to_string())]));
    }
    if d.server.refused > 0 {
        out.push(tf(lang, "obs_alpc_refused", &[("n", d.server.refused.to_string())]));
    }
    if d.server.callbacks_ok > 0 {
        out.push(tf(lang, "obs_alpc_callbacks", &[("n", d.server.callbacks_ok.to_string())]));
    }
    out
}
