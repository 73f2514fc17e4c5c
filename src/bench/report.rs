//! The machine fingerprint and the report's three forms: table, csv, json
//! (json is the `Report` itself, serialised).

use serde::Serialize;

use super::{CaseResult, Report};
use crate::bench::stats::Verdict;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    pub clocksource: String,
    pub load_average: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu_model = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_string()))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu_model,
            cores: super::peer::online_cpus(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource").trim().to_string(),
            load_average: read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        }
    }
}

/// Human units: 1.23 µs, 4.5 ms.
pub fn ns(v: u64) -> String {
    let v = v as f64;
    if v < 1e3 {
        format!("{v:.0} ns")
    } else if v < 1e6 {
        format!("{:.1} µs", v / 1e3)
    } else {
        format!("{:.2} ms", v / 1e6)
    }
}

pub fn bytes_per_s(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} GB/s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1} MB/s", v / 1e6)
    } else {
        format!("{:.1} kB/s", v / 1e3)
    }
}

fn size(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn ratio_text(c: &CaseResult) -> String {
    match c.ratio {
        Some(r) => format!("{:.2}× ({:.2}–{:.2})", r.median, r.min, r.max),
        None => "-".into(),
    }
}

pub fn table(rep: &Report) -> String {
    let m = &rep.machine;
    let mut out = String::new();
    out += "ipcscope bench: each mechanism against its raw baseline, measured in the same run\n";
    out += &format!(
        "machine: {} · {} cores · Linux {} · clocksource {} · load {}\n",
        m.cpu_model, m.cores, m.kernel, m.clocksource, m.load_average
    );
    out += &format!(
        "rounds: {} (interleaved A B / B A, warm-up discarded) · ratio = median over rounds (min–max) · a round \
         whose ratio is {}× off the median or that lost over {:.0} % to steal is dropped while most rounds stay\n",
        rep.rounds,
        crate::bench::stats::NOISE_FACTOR,
        crate::bench::stats::STEAL_FLAG * 100.0
    );
    out += "pinned placements first (same CPU, then across CPUs); unpinned rows are indicative: the scheduler \
            moves the processes during a round\n";
    for &pl in &rep.placements {
        let cases: Vec<&CaseResult> = rep.cases.iter().filter(|c| c.placement == pl).collect();
        if cases.is_empty() {
            continue;
        }
        out += &format!("\n== round trip (ping-pong), placement: {} ==\n", pl.name());
        out += &format!(
            "{:<30} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {:<20} {:>9}  {:<22} {}\n",
            "mechanism",
            "size",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "RTT/2",
            "baseline",
            "base p50",
            "ratio p50",
            "flags"
        );
        for c in cases.iter().filter(|c| c.op == "pingpong") {
            out += &format!("{:<30} {:>7} ", c.variant, size(c.size));
            match (&c.latency, &c.baseline_latency, &c.not_measured) {
                (Some(l), Some(b), None) => {
                    out += &format!(
                        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {:<20} {:>9}  {:<22} {}\n",
                        ns(l.p50_ns),
                        ns(l.p90_ns),
                        ns(l.p99_ns),
                        ns(l.p999_ns),
                        ns(l.max_ns),
                        ns(l.half_rtt_ns()),
                        c.baseline,
                        ns(b.p50_ns),
                        ratio_text(c),
                        c.flags.join(", ")
                    )
                }
                _ => out += &format!("not measured: {}\n", c.not_measured.as_deref().unwrap_or("?")),
            }
        }
        out += &format!("\n== one-way throughput (stream), placement: {} ==\n", pl.name());
        out += &format!(
            "{:<30} {:>7} {:>12} {:>11}  {:<20} {:>11}  {:<22} {}\n",
            "mechanism", "size", "msgs/s", "bytes/s", "baseline", "base bytes/s", "ratio", "flags"
        );
        for c in cases.iter().filter(|c| c.op == "stream") {
            out += &format!("{:<30} {:>7} ", c.variant, size(c.size));
            match (c.msgs_per_s, c.bytes_per_s, c.baseline_bytes_per_s, &c.not_measured) {
                (Some(mps), Some(bps), Some(base), None) => {
                    out += &format!(
                        "{:>12.0} {:>11}  {:<20} {:>11}  {:<22} {}\n",
                        mps,
                        bytes_per_s(bps),
                        c.baseline,
                        bytes_per_s(base),
                        ratio_text(c),
                        c.flags.join(", ")
                    )
                }
                _ => out += &format!("not measured: {}\n", c.not_measured.as_deref().unwrap_or("?")),
            }
        }
    }
    if !rep.crossovers.is_empty() {
        out += "\n== ALPC crossovers (p50 round trip of an echo call) ==\n";
        for x in &rep.crossovers {
            let at = x.measured_bytes.map_or("not within the sweep".to_string(), size);
            out += &format!(
                "[{}] {}: from {} · configured: {} by {}\n",
                x.placement.name(),
                x.what,
                at,
                size(x.configured_bytes),
                x.configured_by
            );
            let sweep: Vec<String> =
                x.sweep.iter().map(|(s, a, b)| format!("{}: {} vs {}", size(*s), ns(*a), ns(*b))).collect();
            out += &format!("    {}\n", sweep.join(" · "));
        }
    }
    if let Some(s) = &rep.self_cost {
        out += "\n== the visualizer's own cost ==\n";
        for line in s.lines() {
            out += &format!("{line}\n");
        }
    }
    out += "\n== targets ==\n";
    for t in &rep.targets {
        let value = t.value.map_or("-".to_string(), |v| format!("{v:.2}"));
        let at = if t.size > 0 { format!(" @ {}", size(t.size)) } else { String::new() };
        out += &format!(
            "{:<4} {:<42} [{}{}] {} {} {}{}\n",
            t.verdict.word(),
            t.name,
            t.placement.name(),
            at,
            value,
            t.cmp.symbol(),
            t.threshold,
            t.why.as_ref().map(|w| format!("  — {w}")).unwrap_or_default()
        );
    }
    let pass = rep.targets.iter().filter(|t| t.verdict == Verdict::Pass).count();
    let miss = rep.targets.iter().filter(|t| t.verdict == Verdict::Miss).count();
    let na = rep.targets.iter().filter(|t| t.verdict == Verdict::NotMeasured).count();
    out += &format!("{pass} PASS, {miss} MISS, {na} not measured\n");
    if !rep.notes.is_empty() {
        out += "\nnotes:\n";
        for n in &rep.notes {
            out += &format!("- {n}\n");
        }
    }
    out
}

pub fn csv(rep: &Report) -> String {
    let mut out = String::from(
        "placement,mechanism,variant,op,size,baseline,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,half_rtt_ns,\
         baseline_p50_ns,msgs_per_s,bytes_per_s,baseline_bytes_per_s,ratio_median,ratio_min,ratio_max,flags,not_measured\n",
    );
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let o = |v: Option<String>| v.unwrap_or_default();
    for c in &rep.cases {
        let l = c.latency;
        out += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            c.placement.name(),
            c.mechanism,
            q(&c.variant),
            c.op,
            c.size,
            q(&c.baseline),
            o(l.map(|l| l.p50_ns.to_string())),
            o(l.map(|l| l.p90_ns.to_string())),
            o(l.map(|l| l.p99_ns.to_string())),
            o(l.map(|l| l.p999_ns.to_string())),
            o(l.map(|l| l.max_ns.to_string())),
            o(l.map(|l| l.half_rtt_ns().to_string())),
            o(c.baseline_latency.map(|l| l.p50_ns.to_string())),
            o(c.msgs_per_s.map(|v| format!("{v:.0}"))),
            o(c.bytes_per_s.map(|v| format!("{v:.0}"))),
            o(c.baseline_bytes_per_s.map(|v| format!("{v:.0}"))),
            o(c.ratio.map(|r| format!("{:.4}", r.median))),
            o(c.ratio.map(|r| format!("{:.4}", r.min))),
            o(c.ratio.map(|r| format!("{:.4}", r.max))),
            q(&c.flags.join(";")),
            q(c.not_measured.as_deref().unwrap_or("")),
        );
    }
    out
}

/// Say why targets were missed, from what the run itself measured.
pub fn notes(rep: &mut Report) {
    let mut notes = Vec::new();
    notes.push(
        "mechanism = ipcscope's framing (32-byte header + checksum stamped by the sender and verified by the \
         receiver, the FrameReader on byte streams, telemetry counters); raw = the same system calls on a \
         pre-filled buffer, nothing else. The payload pattern is generated once, not per message. The \
         framed shm ring's receiver verifies each message in its slot; the raw ring copies it out."
            .to_string(),
    );
    if rep.cases.iter().any(|c| c.mechanism == "alpc" && c.op == "stream") {
        notes.push(
            "ALPC 'stream' = back-to-back RPC calls whose result is 8 bytes (ALPC is request/reply); Mach and \
             relay streams are one-way sends acknowledged once at the end."
                .into(),
        );
    }
    if rep.targets.iter().any(|t| t.name.starts_with("pipe stream") && t.verdict == Verdict::Miss) {
        notes.push(
            "pipe stream: the FrameReader asks for one whole message per read() (the length of the one \
             before), so the backlog stays in the kernel where the monitor can see it; what is left over raw \
             is the checksum the sender computes and the receiver checks over every byte, and the counters."
                .into(),
        );
    }
    let missed_big = rep.targets.iter().any(|t| t.verdict == Verdict::Miss && t.size >= 65536);
    if missed_big {
        notes.push(
            "large-message misses: framing reads every byte twice more than raw (the checksum at the sender \
             and at the receiver), so at 64 KiB–1 MiB the checksum's cost, not the system call, sets the ratio."
                .into(),
        );
    }
    if rep.cases.iter().any(|c| c.flags.iter().any(|f| f.contains("noisy rounds dropped"))) {
        notes.push(
            "'noisy rounds dropped': those rounds' ratios were more than 1.5× off the case's median (or lost time \
             to steal); the ratio, percentiles and rates are of the rounds that stayed."
                .into(),
        );
    }
    if rep
        .cases
        .iter()
        .any(|c| c.flags.iter().any(|f| f.starts_with("steal") || f == "wide spread" || f.starts_with("noise")))
    {
        notes.push(
            "flagged rows ran under interference (hypervisor steal time above 2 %, or per-round ratios \
             spreading more than 50 % of their median): read them as indicative."
                .into(),
        );
    }
    if rep.cases.iter().any(|c| c.variant.contains("SPIN")) {
        notes.push(
            "the SPIN variant busy-waits (yielding every 64 polls) and burns a core while it waits; ipcscope's \
             own shared-memory mechanism never does, it sleeps on a futex."
                .into(),
        );
    }
    rep.notes.extend(notes);
}
