//! Where the textbook's Mach and the real kernels part, on screen: the
//! kernel's personality in the panel's title, and "book ⇄ real kernel"
//! lines in the roomy (zoomed) panel while the rule the textbook simplifies (a full
//! queue with `MACH_SEND_NOTIFY`) is in play. Kept apart from `mach.rs` so
//! the panel's layout can change without touching this.

use ratatui::text::{Line, Span};

use super::fit::{self, Item};
use super::View;
use crate::i18n::{t, tf, Lang};
use crate::model::detail::mach::MachDetail;

/// The personality's words for the title (`XNU rules`), or `None` for a
/// recording made before the kernel had one.
pub fn personality_label(d: &MachDetail, lang: Lang) -> Option<&'static str> {
    Some(match d.personality.as_str() {
        "textbook" => t(lang, "mach_pers_textbook"),
        "xnu" => t(lang, "mach_pers_xnu"),
        "gnumach" => t(lang, "mach_pers_gnumach"),
        _ => return None,
    })
}

/// The panel's title with the personality: `Mach message passing · XNU rules`.
pub fn title(base: &str, d: &MachDetail, lang: Lang) -> Option<String> {
    personality_label(d, lang).map(|p| format!("{base} · {p}"))
}

/// The rule the textbook simplifies is in play: senders use
/// `MACH_SEND_NOTIFY`, or the kernel kept or armed something for it.
pub fn in_play(d: &MachDetail) -> bool {
    // A recording from before personalities existed shows none.
    !d.personality.is_empty()
        && (d.send_mode == "notify"
            || d.counters.cached > 0
            || d.counters.send_possible_armed > 0
            || d.port.as_ref().is_some_and(|p| p.cached > 0))
}

/// The strip's lines at `room` columns while the rule is in play (none
/// otherwise): the book's rule, then each real kernel's, the one the kernel
/// follows now marked, then what happened since the last switch. Each line
/// whole or left out.
pub fn lines(d: &MachDetail, room: usize, view: &View) -> Vec<Line<'static>> {
    if !in_play(d) {
        return Vec::new();
    }
    let l = view.lang;
    let th = view.theme;
    let active = d.personality.as_str();
    let rule = |key_long: &'static str, key_short: &'static str, on: bool| -> Vec<Line<'static>> {
        let style = if on { th.value() } else { th.dim() };
        let mark = if on { "▶ " } else { "  " };
        [key_long, key_short].iter().map(|k| Line::from(Span::styled(format!("{mark}{}", t(l, k)), style))).collect()
    };
    let head = vec![
        Line::from(vec![Span::styled(format!("{} ", t(l, "mach_book")), th.title())]),
        Line::from(Span::styled(format!("{} ", t(l, "mach_book_short")), th.title())),
    ];
    let mut out = Vec::new();
    // The heading beside the book's rule when both fit, else on its own.
    let book = rule("mach_book_textbook", "mach_book_textbook_short", active == "textbook");
    let joined: Vec<Line<'static>> = head
        .iter()
        .flat_map(|h| {
            book.iter().map(move |b| {
                let mut spans = h.spans.clone();
                spans.extend(b.spans.clone());
                Line::from(spans)
            })
        })
        .collect();
    match fit::first_fit_line(joined, room) {
        Some(line) => out.push(line),
        None => {
            out.extend(fit::first_fit_line(head, room));
            out.extend(fit::first_fit_line(book, room));
        }
    }
    for (long, short, key) in
        [("mach_book_xnu", "mach_book_xnu_short", "xnu"), ("mach_book_gnumach", "mach_book_gnumach_short", "gnumach")]
    {
        out.extend(fit::first_fit_line(rule(long, short, active == key), room));
    }
    // One line for the counters the lesson reads, when it fits.
    let c = &d.since_personality;
    let items = vec![
        Item::text(1, format!("{} {}", t(l, "mach_book_kept"), c.cached), th.label()),
        Item::text(2, format!("MACH_NOTIFY_MSG_ACCEPTED {}", c.accepted_on_queue + c.accepted_on_dequeue), th.label()),
        Item::text(2, format!("MACH_NOTIFY_SEND_POSSIBLE {}", c.send_possible), th.label()),
    ];
    if !d.personality.is_empty() {
        out.push(fit::row(items, " · ", room, view));
    }
    out
}

/// What the lesson pane says now about XNU's send-possible notifications.
pub fn observe(d: &MachDetail, lang: Lang) -> Vec<String> {
    let c = &d.counters;
    let mut out = Vec::new();
    if c.send_possible > 0 || c.send_possible_armed > 0 {
        let args = [("a", c.send_possible_armed.to_string()), ("n", c.send_possible.to_string())];
        out.push(tf(lang, "obs_mach_send_possible", &args));
    }
    out
}
