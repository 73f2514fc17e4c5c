//! Knobs: the table and the typed ids live in `model::knob`; here is what
//! the program around them needs: the `ipcscope knobs` listing and the
//! steps `+` / `-` take.

use std::fmt::Write as _;

pub use crate::model::knob::*;

// The table cannot import `message` (model imports nothing of ours).
const _: () = assert!(crate::message::MIN_LEN as u64 == MSG_MIN_LEN);

/// The `ipcscope knobs` listing.
pub fn listing() -> String {
    let mut out = String::new();
    let w = KnobId::ALL.iter().map(|k| k.key().len()).max().unwrap_or(10);
    let _ = writeln!(out, "{:w$}  {:24}  {:8}  meaning", "knob", "values", "default");
    for k in KnobId::ALL.iter().map(|k| k.spec()) {
        let _ = writeln!(out, "{:w$}  {:24}  {:8}  {}", k.key, k.range(), k.default, k.help);
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
