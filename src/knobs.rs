//! Knobs: the table and the typed ids live in `model::knob`; here is what
//! the program around them needs: the `ipcscope knobs` listing and the
//! steps `+` / `-` take.

use std::fmt::Write as _;

pub use crate::model::knob::*;

// The table cannot import `message` (model imports nothing of ours).
const _: () = assert!(crate::message::MIN_LEN as u64 == MSG_MIN_LEN);

/// The `ipcscope knobs` listing, in English.
pub fn listing() -> String {
    listing_in(crate::i18n::Lang::En)
}

/// The `ipcscope knobs` listing in `lang`: the keys and values stay as
/// they are typed; the meaning is said in `lang` (`knob_KEY` in
/// assets/locales.toml, dots as `_`; English when a knob has none yet).
pub fn listing_in(lang: crate::i18n::Lang) -> String {
    use crate::i18n::{lookup, t, tf};
    let mut out = String::new();
    let w = KnobId::ALL.iter().map(|k| k.key().len()).max().unwrap_or(10);
    let head = |key: &'static str, width: usize| {
        let s = t(lang, key);
        let pad = width.saturating_sub(crate::ui::widgets::display_width(s));
        format!("{s}{}", " ".repeat(pad))
    };
    let _ = writeln!(
        out,
        "{}  {}  {}  {}",
        head("knobs_head_knob", w),
        head("knobs_head_values", 24),
        head("knobs_head_default", 8),
        t(lang, "knobs_head_meaning")
    );
    for id in KnobId::ALL.iter().copied() {
        let k = id.spec();
        let meaning = match (lang, id.base()) {
            (crate::i18n::Lang::En, _) => k.help.to_string(),
            // A mechanism's own copy of a common knob: said the same way for each.
            (_, Some(base)) => {
                let mech = k.key.split('.').next().unwrap_or_default();
                let title = crate::model::Kind::ALL
                    .into_iter()
                    .find(|kind| kind.name() == mech)
                    .map_or(mech, |kind| t(lang, crate::ui::title_key(kind)));
                tf(lang, "knob_own_copy", &[("base", base.key().to_string()), ("mech", title.to_string())])
            }
            (_, None) => lookup(lang, &format!("knob_{}", k.key.replace('.', "_"))).unwrap_or(k.help).to_string(),
        };
        // `0..1000000 or max`: the values as they are typed, with no English word.
        let range = if lang == crate::i18n::Lang::En { k.range() } else { k.range().replace(" or ", "|") };
        let _ = writeln!(out, "{:w$}  {:24}  {:8}  {}", k.key, range, k.default, meaning);
    }
    out
}

/// The steps `+` / `-` move a rate knob through.
pub const RATE_LADDER: &[u64] = &[0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, RATE_MAX];

pub fn step_rate(v: u64, up: bool) -> u64 {
    let pos = RATE_LADDER.iter().position(|&r| r >= v).unwrap_or(RATE_LADDER.len() - 1);
    if up {
        if RATE_LADDER[pos] > v {
            RATE_LADDER[pos]
        } else {
            RATE_LADDER[(pos + 1).min(RATE_LADDER.len() - 1)]
        }
    } else {
        RATE_LADDER[pos.saturating_sub(1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_has_every_knob() {
        let l = listing();
        assert_eq!(l.lines().count(), KnobId::COUNT + 1);
        for &id in KnobId::ALL {
            assert!(l.lines().any(|line| line.starts_with(&format!("{id} "))), "{id}");
        }
    }

    /// In Korean the meanings are Korean (every knob of this branch has
    /// one) and the keys, values and defaults stay as they are typed.
    #[test]
    fn listing_in_korean() {
        let ko = listing_in(crate::i18n::Lang::Ko);
        assert_eq!(ko.lines().count(), KnobId::COUNT + 1);
        let en = listing();
        for (k, e) in ko.lines().zip(en.lines()).skip(1) {
            let key = e.split_whitespace().next().unwrap();
            assert!(k.starts_with(&format!("{key} ")), "{k}");
        }
        for key in ["producer.rate", "pipe.capacity", "shm.slots", "mq.maxmsg", "fifo.writers", "pipe.msg.size"] {
            let line = ko.lines().find(|l| l.starts_with(&format!("{key} "))).unwrap();
            assert!(line.chars().any(|c| ('가'..='힣').contains(&c)), "{line}");
        }
    }

    #[test]
    fn ladder_moves() {
        assert_eq!(step_rate(1000, true), 2000);
        assert_eq!(step_rate(1000, false), 500);
        assert_eq!(step_rate(0, false), 0);
        assert_eq!(step_rate(RATE_MAX, true), RATE_MAX);
        assert_eq!(step_rate(300, true), 500);
        assert_eq!(step_rate(300, false), 200);
    }
}
