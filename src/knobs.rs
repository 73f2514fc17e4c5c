//! Knobs: every setting a user can turn, by `--set KEY=VALUE` or from the TUI.
//!
//! Each knob has a fixed slot in the control page (see `telemetry`), so a
//! worker reads the current value with one atomic load. Values are stored as
//! `u64`; the `KnobKind` says how to parse and print them.

use std::fmt::Write as _;

/// `u64::MAX` stands for "as fast as possible" in a rate knob.
pub const RATE_MAX: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
pub enum KnobKind {
    /// Messages per second, 0..=max, or `max` for unbounded.
    Rate {
        max: u64,
    },
    /// An integer within an inclusive range.
    Int {
        min: u64,
        max: u64,
    },
    Bool,
    /// One of the listed words; stored as its index.
    Choice(&'static [&'static str]),
    /// One of the listed words, where the word `with_arg` also takes
    /// `:N` (N within `arg`), e.g. `timeout:10`. Stored as
    /// `index << 32 | N`.
    ChoiceArg {
        choices: &'static [&'static str],
        with_arg: &'static str,
        arg: (u32, u32),
    },
}

#[derive(Debug, Clone, Copy)]
pub struct KnobSpec {
    pub key: &'static str,
    pub kind: KnobKind,
    pub default: &'static str,
    pub help: &'static str,
}

/// Knobs every mechanism shares.
pub const COMMON: &[KnobSpec] = &[
    KnobSpec {
        key: "producer.rate",
        kind: KnobKind::Rate { max: 1_000_000 },
        default: "1000",
        help: "messages each producer sends per second (`max` = as fast as it can)",
    },
    KnobSpec {
        key: "consumer.rate",
        kind: KnobKind::Rate { max: 1_000_000 },
        default: "max",
        help: "messages each consumer takes per second (0 = stalled, never reads)",
    },
    KnobSpec {
        key: "msg.size",
        kind: KnobKind::Int { min: crate::message::MIN_LEN as u64, max: 1 << 20 },
        default: "256",
        help: "bytes per message, header included",
    },
    KnobSpec {
        key: "producer.count",
        kind: KnobKind::Int { min: 0, max: u64::MAX >> 1 },
        default: "0",
        help: "messages a producer sends before it exits (0 = never stops)",
    },
];

pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "on" | "yes" | "1" => Some(true),
        "false" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

impl KnobSpec {
    /// The accepted values, for error messages and `ipcscope knobs`.
    pub fn range(&self) -> String {
        match self.kind {
            KnobKind::Rate { max } => format!("0..{max} or max"),
            KnobKind::Int { min, max } if max >= u64::MAX >> 1 => format!("{min}.."),
            KnobKind::Int { min, max } => format!("{min}..{max}"),
            KnobKind::Bool => "true|false".into(),
            KnobKind::Choice(c) => c.join("|"),
            KnobKind::ChoiceArg { choices, with_arg, arg } => choices
                .iter()
                .map(|c| if *c == with_arg { format!("{c}:{}..{}", arg.0, arg.1) } else { c.to_string() })
                .collect::<Vec<_>>()
                .join("|"),
        }
    }

    pub fn parse(&self, s: &str) -> Result<u64, String> {
        let bad = || format!("bad value {s:?} for {}: expected {}", self.key, self.range());
        let s = s.trim();
        match self.kind {
            KnobKind::Rate { max } => {
                if s == "max" {
                    return Ok(RATE_MAX);
                }
                let v: u64 = s.parse().map_err(|_| bad())?;
                if v > max {
                    return Err(bad());
                }
                Ok(v)
            }
            KnobKind::Int { min, max } => {
                let v = parse_size(s).ok_or_else(bad)?;
                if v < min || v > max {
                    return Err(bad());
                }
                Ok(v)
            }
            KnobKind::Bool => parse_bool(s).map(u64::from).ok_or_else(bad),
            KnobKind::Choice(c) => c.iter().position(|x| *x == s).map(|i| i as u64).ok_or_else(bad),
            KnobKind::ChoiceArg { choices, with_arg, arg } => {
                let (word, n) = match s.split_once(':') {
                    Some((w, n)) => (w, Some(n)),
                    None => (s, None),
                };
                let i = choices.iter().position(|x| *x == word).ok_or_else(bad)? as u64;
                match (word == with_arg, n) {
                    (true, Some(n)) => {
                        let n: u32 = n.parse().map_err(|_| bad())?;
                        if n < arg.0 || n > arg.1 {
                            return Err(bad());
                        }
                        Ok(i << 32 | n as u64)
                    }
                    (true, None) => Err(bad()),
                    (false, Some(_)) => Err(bad()),
                    (false, None) => Ok(i << 32),
                }
            }
        }
    }

    pub fn format(&self, v: u64) -> String {
        match self.kind {
            KnobKind::Rate { .. } if v == RATE_MAX => "max".into(),
            KnobKind::Rate { .. } | KnobKind::Int { .. } => v.to_string(),
            KnobKind::Bool => (v != 0).to_string(),
            KnobKind::Choice(c) => c.get(v as usize).unwrap_or(&"?").to_string(),
            KnobKind::ChoiceArg { choices, with_arg, .. } => {
                let word = choices.get((v >> 32) as usize).unwrap_or(&"?");
                if *word == with_arg {
                    format!("{word}:{}", v as u32)
                } else {
                    word.to_string()
                }
            }
        }
    }

    pub fn default_value(&self) -> u64 {
        // Defaults are written by us and checked by a unit test.
        self.parse(self.default).unwrap_or(0)
    }
}

/// Sizes may be written as `4096`, `4k`, `64K`, `1m`, `1MiB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let (num, mul) = if let Some(n) = lower.strip_suffix("kib").or(lower.strip_suffix('k')) {
        (n.to_string(), 1024)
    } else if let Some(n) = lower.strip_suffix("mib").or(lower.strip_suffix('m')) {
        (n.to_string(), 1024 * 1024)
    } else {
        (lower, 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// Every knob of this build: the common ones, then each mechanism's.
pub fn all() -> Vec<&'static KnobSpec> {
    let mut v: Vec<&'static KnobSpec> = COMMON.iter().collect();
    for m in crate::mechanisms::REGISTRY {
        v.extend(m.knobs.iter());
    }
    v
}

pub fn index(key: &str) -> Option<usize> {
    all().iter().position(|k| k.key == key)
}

pub fn spec(key: &str) -> Option<&'static KnobSpec> {
    all().into_iter().find(|k| k.key == key)
}

/// A full set of knob values, indexed like `all()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    pub values: Vec<u64>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { values: all().iter().map(|k| k.default_value()).collect() }
    }
}

impl Knobs {
    pub fn get(&self, key: &str) -> u64 {
        index(key).and_then(|i| self.values.get(i).copied()).unwrap_or(0)
    }

    /// Apply one `KEY=VALUE` assignment; the error names the valid choices.
    pub fn set_str(&mut self, assignment: &str) -> Result<(), String> {
        let (key, value) =
            assignment.split_once('=').ok_or_else(|| format!("--set expects KEY=VALUE, got {assignment:?}"))?;
        let key = key.trim();
        let i = index(key).ok_or_else(|| {
            let names: Vec<_> = all().iter().map(|k| k.key).collect();
            format!("unknown knob {key:?}; knobs are: {}", names.join(", "))
        })?;
        self.values[i] = all()[i].parse(value)?;
        Ok(())
    }

    pub fn set(&mut self, key: &str, v: u64) {
        if let Some(i) = index(key) {
            self.values[i] = v;
        }
    }
}

/// The `ipcscope knobs` listing.
pub fn listing() -> String {
    let mut out = String::new();
    let all = all();
    let w = all.iter().map(|k| k.key.len()).max().unwrap_or(10);
    let _ = writeln!(out, "{:w$}  {:24}  {:8}  meaning", "knob", "values", "default");
    for k in all {
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
    fn every_default_parses() {
        for k in all() {
            assert!(k.parse(k.default).is_ok(), "{}: default {:?} does not parse", k.key, k.default);
        }
    }

    #[test]
    fn keys_are_unique() {
        let keys: Vec<_> = all().iter().map(|k| k.key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys.len(), sorted.len());
    }

    #[test]
    fn parse_and_format() {
        let mut k = Knobs::default();
        k.set_str("producer.rate=max").unwrap();
        assert_eq!(k.get("producer.rate"), RATE_MAX);
        k.set_str("msg.size=4k").unwrap();
        assert_eq!(k.get("msg.size"), 4096);
        assert!(k.set_str("msg.size=1").unwrap_err().contains("32.."));
        assert!(k.set_str("nope=1").unwrap_err().contains("producer.rate"));
        assert!(k.set_str("novalue").is_err());
        let mode = KnobSpec {
            key: "m",
            kind: KnobKind::ChoiceArg { choices: &["block", "timeout"], with_arg: "timeout", arg: (0, 100) },
            default: "block",
            help: "",
        };
        assert_eq!(mode.format(mode.parse("timeout:10").unwrap()), "timeout:10");
        assert!(mode.parse("timeout").is_err());
        assert!(mode.parse("block:3").is_err());
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
