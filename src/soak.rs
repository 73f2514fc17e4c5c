//! `ipcscope soak`: every mechanism at full speed for a while, the monitor
//! at 20 Hz and every snapshot rendered into an off-screen terminal, then a
//! verdict: nothing lost, corrupt or duplicated; memory and descriptors of
//! every process flat after warm-up; no zombies.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::knobs::{KnobId, Knobs};
use crate::mechanisms::Kind;
use crate::session::Session;
use crate::snapshot::Snapshot;
use crate::ui::{self, View};

/// Growth allowed after warm-up before a process counts as leaking.
pub const RSS_SLACK_KIB: u64 = 4096;
pub const FD_SLACK: usize = 2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub rss_kib: u64,
    pub fds: usize,
}

pub fn usage(pid: i32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some(Usage { rss_kib, fds })
}

#[derive(Debug, Default)]
pub struct Report {
    pub seconds: f64,
    pub frames: u64,
    pub delivered: u64,
    pub lost: u64,
    pub corrupt: u64,
    pub duplicated: u64,
    pub zombies: Vec<String>,
    /// Per process: (who, usage after warm-up, usage at the end).
    pub growth: Vec<(String, Usage, Usage)>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn leaks(&self) -> Vec<String> {
        self.growth
            .iter()
            .filter(|(_, a, b)| b.rss_kib > a.rss_kib + RSS_SLACK_KIB || b.fds > a.fds + FD_SLACK)
            .map(|(who, a, b)| format!("{who}: rss {} → {} KiB, fds {} → {}", a.rss_kib, b.rss_kib, a.fds, b.fds))
            .collect()
    }

    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.corrupt == 0
            && self.duplicated == 0
            && self.zombies.is_empty()
            && self.leaks().is_empty()
            && self.problems.is_empty()
            && self.delivered > 0
    }

    pub fn text(&self) -> String {
        let mut out = format!(
            "soak {:.0} s: {} frames rendered, {} messages delivered, lost {}, corrupt {}, duplicated {}\n",
            self.seconds, self.frames, self.delivered, self.lost, self.corrupt, self.duplicated
        );
        for (who, a, b) in &self.growth {
            out +=
                &format!("  {who:<24} rss {:>7} → {:>7} KiB   fds {:>3} → {:>3}\n", a.rss_kib, b.rss_kib, a.fds, b.fds);
        }
        for z in &self.zombies {
            out += &format!("  zombie: {z}\n");
        }
        for l in self.leaks() {
            out += &format!("  LEAK: {l}\n");
        }
        for p in &self.problems {
            out += &format!("  PROBLEM: {p}\n");
        }
        out += if self.passed() { "PASS\n" } else { "FAIL\n" };
        out
    }
}

/// Every process the snapshot names, plus the supervisor itself.
fn processes(s: &Snapshot) -> BTreeMap<String, i32> {
    let mut m = BTreeMap::new();
    m.insert(format!("supervisor {}", std::process::id()), std::process::id() as i32);
    for mech in &s.mechanisms {
        for p in mech.processes.iter().filter(|p| p.alive()) {
            m.insert(format!("{} {} {}", mech.kind.name(), p.role, p.pid), p.pid);
        }
    }
    m
}

pub fn run(kinds: &[Kind], mut knobs: Knobs, duration: Duration, exe: std::path::PathBuf) -> Result<Report> {
    knobs.set(KnobId::ProducerRate, crate::knobs::RATE_MAX);
    knobs.set(KnobId::ConsumerRate, crate::knobs::RATE_MAX);
    let session = Session::start_with_exe(exe, kinds, knobs, 20)?;
    let backend = ratatui::backend::TestBackend::new(200, 60);
    let mut term = ratatui::Terminal::new(backend)?;
    let view = View::default();
    let start = Instant::now();
    let warm_up = start + duration / 4;
    let mut report = Report::default();
    let mut first: Option<BTreeMap<String, Usage>> = None;
    let mut last = Snapshot::default();
    while start.elapsed() < duration {
        let Ok(s) = session.snapshots.recv_timeout(Duration::from_secs(2)) else {
            report.problems.push("the monitor stopped sending snapshots".into());
            break;
        };
        term.draw(|f| ui::render(f, &s, &view))?;
        report.frames += 1;
        if first.is_none() && Instant::now() >= warm_up {
            first = Some(processes(&s).into_iter().filter_map(|(k, pid)| Some((k, usage(pid)?))).collect());
        }
        last = s;
    }
    report.seconds = start.elapsed().as_secs_f64();
    let end: BTreeMap<String, Usage> =
        processes(&last).into_iter().filter_map(|(k, pid)| Some((k, usage(pid)?))).collect();
    for (who, a) in first.unwrap_or_default() {
        if let Some(b) = end.get(&who) {
            report.growth.push((who, a, *b));
        }
    }
    for m in &last.mechanisms {
        report.delivered += m.integrity.delivered;
        report.lost += m.integrity.lost;
        report.corrupt += m.integrity.corrupt;
        report.duplicated += m.integrity.duplicated;
        for p in &m.processes {
            if p.state == "Z" {
                report.zombies.push(format!("{} {} {}", m.kind.name(), p.role, p.pid));
            }
            if let Some(e) = &p.exit {
                report.problems.push(format!("{} {} ended: {e}", m.kind.name(), p.role));
            }
        }
    }
    report.problems.extend(last.run.problems.iter().cloned());
    session.shutdown();
    Ok(report)
}
