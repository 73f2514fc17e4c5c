//! The arithmetic of the benchmark: latency histograms and their
//! percentiles, medians over rounds and their spread, ratios to a baseline,
//! and PASS/MISS against a target.

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in nanoseconds: 1 ns to 100 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Record one duration in ns, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, ns: u64) {
    let v = ns.clamp(1, h.high());
    h.record(v).expect("clamped into range");
}

/// Round-trip percentiles of one histogram, in ns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            samples: h.len(),
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }

    /// One-way latency, derived: half the median round trip.
    pub fn half_rtt_ns(&self) -> u64 {
        self.p50_ns / 2
    }
}

/// The median of some values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// A value measured over several rounds: the median, the range, and the
/// relative spread (max − min) / median.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub spread: f64,
    pub rounds: usize,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Summary> {
        let med = median(values)?;
        let finite = values.iter().copied().filter(|x| x.is_finite());
        let min = finite.clone().fold(f64::INFINITY, f64::min);
        let max = finite.clone().fold(f64::NEG_INFINITY, f64::max);
        let spread = if med.abs() > 0.0 { (max - min) / med.abs() } else { 0.0 };
        Some(Summary { median: med, min, max, spread, rounds: finite.count() })
    }
}

/// The ratio of a measurement to its baseline, round by round (each round
/// measured both, back to back), then summarised. `None` for a round with a
/// zero baseline.
pub fn ratios(case: &[f64], baseline: &[f64]) -> Vec<f64> {
    case.iter().zip(baseline).filter(|(_, b)| **b > 0.0).map(|(a, b)| a / b).collect()
}

/// Spread above which a case is flagged as measured under interference.
pub const WIDE_SPREAD: f64 = 0.5;

/// A round whose ratio is this many times off the median of its case's
/// rounds (either way) measured the interference, not the mechanism.
pub const NOISE_FACTOR: f64 = 1.5;

/// Which rounds to keep: a round is dropped when its ratio (case over
/// baseline, `None` for a zero baseline) is off the median of all rounds by
/// more than NOISE_FACTOR either way, or its steal share was above
/// STEAL_FLAG. At least half the rounds must stay: if more would go there
/// is no quiet majority, and every round is kept (and the case flagged).
pub fn quiet_rounds(ratios: &[Option<f64>], steal: &[f64]) -> (Vec<bool>, bool) {
    let all: Vec<f64> = ratios.iter().flatten().copied().collect();
    let Some(med) = median(&all) else { return (vec![true; ratios.len()], false) };
    let keep: Vec<bool> = ratios
        .iter()
        .zip(steal.iter().copied().chain(std::iter::repeat(0.0)))
        .map(|(r, st)| {
            r.is_some_and(|r| r <= med * NOISE_FACTOR && r >= med / NOISE_FACTOR && r.is_finite()) && st <= STEAL_FLAG
        })
        .collect();
    let kept = keep.iter().filter(|&&k| k).count();
    if kept * 2 < ratios.len() || kept == 0 {
        return (vec![true; ratios.len()], true);
    }
    (keep, false)
}

/// Which way a target goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Cmp {
    /// The ratio must be at most the threshold (latency).
    #[serde(rename = "<=")]
    AtMost,
    /// The ratio must be at least the threshold (throughput).
    #[serde(rename = ">=")]
    AtLeast,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::AtMost => "≤",
            Cmp::AtLeast => "≥",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Pass,
    Miss,
    NotMeasured,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Miss => "MISS",
            Verdict::NotMeasured => "n/a",
        }
    }
}

/// PASS when `value` is on the right side of `threshold` (equal passes).
pub fn judge(value: Option<f64>, cmp: Cmp, threshold: f64) -> Verdict {
    match value {
        None => Verdict::NotMeasured,
        Some(v) if !v.is_finite() => Verdict::NotMeasured,
        Some(v) => {
            let ok = match cmp {
                Cmp::AtMost => v <= threshold,
                Cmp::AtLeast => v >= threshold,
            };
            if ok {
                Verdict::Pass
            } else {
                Verdict::Miss
            }
        }
    }
}

/// Steal and total jiffies of all CPUs, from the `cpu` line of /proc/stat.
pub fn cpu_jiffies() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

/// `(steal, total)` from a `cpu  user nice system idle iowait irq softirq steal …` line.
pub fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut it = line.split_whitespace();
    if it.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
    if v.len() < 8 {
        return None;
    }
    // guest and guest_nice are already inside user and nice.
    let total = v.iter().take(8).sum();
    Some((v[7], total))
}

/// The share of CPU time stolen by the hypervisor between two readings.
pub fn steal_share(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> f64 {
    match (before, after) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => s1.saturating_sub(s0) as f64 / (t1 - t0) as f64,
        _ => 0.0,
    }
}

/// Share of steal time above which a round is flagged.
pub const STEAL_FLAG: f64 = 0.02;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            record(&mut h, v * 1000);
        }
        let l = Latency::of(&h);
        assert_eq!(l.samples, 1000);
        // 3 significant digits: within 0.1 %.
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() / want as f64 <= 0.001;
        assert!(near(l.p50_ns, 500_000), "{l:?}");
        assert!(near(l.p90_ns, 900_000), "{l:?}");
        assert!(near(l.p99_ns, 990_000), "{l:?}");
        assert!(near(l.p999_ns, 999_000), "{l:?}");
        assert!(near(l.max_ns, 1_000_000), "{l:?}");
        assert_eq!(l.half_rtt_ns(), l.p50_ns / 2);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = new_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(Latency::of(&new_histogram()), Latency::default());
    }

    #[test]
    fn noisy_rounds_are_dropped_while_a_quiet_majority_stays() {
        let r = |v: &[f64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        // One round 7× off: dropped.
        let (keep, none) = quiet_rounds(&r(&[1.0, 1.05, 7.2, 0.98, 1.02]), &[0.0; 5]);
        assert_eq!(keep, vec![true, true, false, true, true]);
        assert!(!none);
        // Stolen time drops a round whatever its ratio.
        let (keep, _) = quiet_rounds(&r(&[1.0, 1.0, 1.0]), &[0.0, 0.5, 0.0]);
        assert_eq!(keep, vec![true, false, true]);
        // No quiet majority: everything stays, and it is said.
        let (keep, none) = quiet_rounds(&r(&[0.14, 7.2, 1.0, 30.0]), &[0.0, 0.0, 0.5, 0.0]);
        assert_eq!(keep, vec![true; 4]);
        assert!(none);
        // A zero baseline's round is never kept, but does not sink the rest.
        let (keep, _) = quiet_rounds(&[Some(1.0), None, Some(1.1)], &[]);
        assert_eq!(keep, vec![true, false, true]);
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 2.0]), Some(2.0));
        let s = Summary::of(&[1.0, 1.2, 0.8, 1.0, 1.1]).unwrap();
        assert_eq!(s.median, 1.0);
        assert_eq!((s.min, s.max, s.rounds), (0.8, 1.2, 5));
        assert!((s.spread - 0.4).abs() < 1e-12);
    }

    #[test]
    fn ratios_pair_rounds_and_skip_zero_baselines() {
        assert_eq!(ratios(&[2.0, 3.0, 4.0], &[1.0, 0.0, 2.0]), vec![2.0, 2.0]);
        let r = ratios(&[11.0, 10.0, 12.0], &[10.0, 10.0, 10.0]);
        assert!((Summary::of(&r).unwrap().median - 1.1).abs() < 1e-12);
    }

    #[test]
    fn pass_and_miss() {
        assert_eq!(judge(Some(1.10), Cmp::AtMost, 1.10), Verdict::Pass);
        assert_eq!(judge(Some(1.11), Cmp::AtMost, 1.10), Verdict::Miss);
        assert_eq!(judge(Some(0.90), Cmp::AtLeast, 0.90), Verdict::Pass);
        assert_eq!(judge(Some(0.39), Cmp::AtLeast, 0.40), Verdict::Miss);
        assert_eq!(judge(None, Cmp::AtLeast, 0.40), Verdict::NotMeasured);
        assert_eq!(judge(Some(f64::NAN), Cmp::AtMost, 2.0), Verdict::NotMeasured);
    }

    #[test]
    fn steal_from_proc_stat() {
        let a = parse_cpu_line("cpu  100 0 50 800 0 0 0 50 0 0").unwrap();
        let b = parse_cpu_line("cpu  200 0 100 1600 0 0 0 100 0 0").unwrap();
        assert_eq!(a, (50, 1000));
        assert!((steal_share(Some(a), Some(b)) - 0.05).abs() < 1e-12);
        assert_eq!(parse_cpu_line("cpu0 1 2 3"), None);
        assert_eq!(steal_share(None, Some(b)), 0.0);
    }
}
