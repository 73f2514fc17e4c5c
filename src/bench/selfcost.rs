//! What watching costs (`ipcscope bench --self`): rendering a full frame,
//! the monitor thread at 10 Hz, pipe throughput with the monitor on vs
//! off, and the real TUI in a pty: idle CPU, time to first frame, memory.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::cases::{Env, Linux, Side, Via};
use super::peer::Placement;
use super::stats::{self, Cmp, Latency};
use super::Target;
use crate::knobs::Knobs;
use crate::mechanisms::Kind;
use crate::monitor::{Monitor, MonitorConfig};
use crate::snapshot::{RunInfo, Snapshot};
use crate::supervisor::Supervisor;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SelfCost {
    /// A frame whose snapshot changed (every panel drawn).
    pub render: Option<Latency>,
    pub buffer_diff: Option<Latency>,
    pub monitor_cpu_percent: Option<f64>,
    pub pipe_monitor_on_vs_off: Option<stats::Summary>,
    pub tui_idle_cpu_percent: Option<f64>,
    /// The part of it spent in the TUI's monitor thread.
    pub tui_idle_monitor_percent: Option<f64>,
    pub tui_first_frame_ms: Option<f64>,
    pub tui_rss_mib: Option<f64>,
    /// What could not be measured, and why.
    pub errors: Vec<String>,
}

pub fn measure(rounds: usize, progress: bool) -> SelfCost {
    let mut s = SelfCost::default();
    let say = |what: &str| {
        if progress {
            eprint!("\r\x1b[2Kbench --self: {what}");
        }
    };
    say("monitor and snapshots");
    let snaps = match monitor_cost(rounds, &mut s) {
        Ok(snaps) => snaps,
        Err(e) => {
            s.errors.push(format!("monitor: {e:#}"));
            Vec::new()
        }
    };
    say("render");
    if snaps.len() >= 2 {
        let (r, d) = render_cost(&snaps);
        s.render = Some(r);
        s.buffer_diff = Some(d);
    } else {
        s.errors.push("render: no snapshot of a live session to draw".into());
    }
    say("TUI in a pty");
    if let Err(e) = tui_cost(&mut s) {
        s.errors.push(format!("TUI: {e:#}"));
    }
    if progress {
        eprintln!("\r\x1b[2Kbench --self: done");
    }
    s
}

/// CPU time of one thread of this process, in ns (schedstat).
fn thread_cpu_ns(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

fn monitor_tid() -> Option<i32> {
    std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|e| {
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "monitor").then(|| e.file_name().to_str()?.parse().ok()).flatten()
    })
}

/// Every mechanism running with default knobs; the monitor sampled at
/// 10 Hz. Returns a few snapshots it took, for the render measurement.
fn monitor_cost(rounds: usize, s: &mut SelfCost) -> Result<Vec<Snapshot>> {
    // The pipe peer is forked before any thread of ours starts.
    let dir = std::env::temp_dir();
    let (tel, _fd) = crate::telemetry::Telemetry::create()?;
    let env = Env {
        tel,
        dir,
        max_size: 4096,
        prefix: format!("ipcscope-{}-bench-self-", std::process::id()),
        counter: std::cell::Cell::new(0),
    };
    let mut pipe = Linux::new(&env, Via::Pipe, true)?;
    let exe = std::env::current_exe()?;
    let mut sup = Supervisor::with_exe(exe, Knobs::default())?;
    let mut mechs = Vec::new();
    for k in Kind::ALL {
        if let Some(info) = crate::registry::info(k) {
            let mut m = (info.new)();
            match m.start(&mut sup) {
                Ok(()) => mechs.push(m),
                Err(e) => s.errors.push(format!("{} did not start: {e:#}", k.name())),
            }
        }
    }
    let latest = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Snapshot>::new()));
    let start = |sup: &Supervisor| -> Result<(Monitor, std::thread::JoinHandle<()>)> {
        let probes = mechs.iter().map(|m| m.probe(sup)).collect();
        let (tx, rx) = crossbeam_channel::bounded(4);
        let run = RunInfo {
            pid: std::process::id() as i32,
            runtime_dir: sup.dir_path().display().to_string(),
            hz: 10,
            ..RunInfo::default()
        };
        let monitor = Monitor::spawn(
            probes,
            sup.telemetry().clone(),
            MonitorConfig { hz: 10, run, paused: sup.paused_flag(), reap: Box::new(sup.reaper()) },
            tx,
        )?;
        // Drain like the app does, so the monitor never waits on us.
        let keep = latest.clone();
        let drain = std::thread::spawn(move || {
            for snap in rx.iter() {
                let mut v = keep.lock().unwrap_or_else(|e| e.into_inner());
                v.push(snap);
                if v.len() > 8 {
                    v.remove(0);
                }
            }
        });
        Ok((monitor, drain))
    };
    let stop = |(mut m, d): (Monitor, std::thread::JoinHandle<()>)| {
        m.stop();
        drop(m);
        let _ = d.join();
    };
    let result = (|| -> Result<()> {
        // The monitor's CPU over a window, after a second of settling.
        let on = start(&sup)?;
        std::thread::sleep(Duration::from_secs(1));
        let tid = monitor_tid().context("no thread named monitor")?;
        let path = format!("/proc/self/task/{tid}/schedstat");
        let c0 = thread_cpu_ns(&path).context("schedstat")?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(4));
        let c1 = thread_cpu_ns(&path).context("schedstat")?;
        s.monitor_cpu_percent = Some((c1 - c0) as f64 / t0.elapsed().as_nanos() as f64 * 100.0);
        // Pipe throughput with the monitor on vs off, interleaved.
        let size = 4096;
        pipe.stream(size, 200)?;
        let t = Instant::now();
        pipe.stream(size, 200)?;
        let n = ((0.2 / (t.elapsed().as_secs_f64() / 200.0)) as u64).clamp(100, 1_000_000);
        let mut on = Some(on);
        let (mut r_on, mut r_off) = (Vec::new(), Vec::new());
        for r in 0..rounds.max(5) * 2 {
            let want_on = (r % 4 == 0) || (r % 4 == 3);
            match (want_on, on.is_some()) {
                (true, false) => on = Some(start(&sup)?),
                (false, true) => {
                    if let Some(m) = on.take() {
                        stop(m);
                    }
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(150));
            let bw = n as f64 * size as f64 / pipe.stream(size, n)?.as_secs_f64();
            if want_on {
                r_on.push(bw);
            } else {
                r_off.push(bw);
            }
        }
        s.pipe_monitor_on_vs_off = stats::Summary::of(&stats::ratios(&r_on, &r_off));
        if let Some(m) = on.take() {
            stop(m);
        }
        Ok(())
    })();
    let snaps = latest.lock().map(|v| v.clone()).unwrap_or_default();
    drop(mechs);
    sup.shutdown();
    result?;
    Ok(snaps)
}

/// Drawing a full 200×60 frame of all panels (render, diff, write to a
/// TestBackend), alternating two observed snapshots, so every panel
/// changed (the live case: counters move at every sample); and ratatui's
/// own `Buffer::diff` of a fully changed buffer of that size, timed
/// between the frames so both see the same interference.
fn render_cost(snaps: &[Snapshot]) -> (Latency, Latency) {
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::Terminal;
    let (w, h) = (200u16, 60u16);
    let view = crate::ui::View::default();
    let area = Rect::new(0, 0, w, h);
    let mut x = Buffer::empty(area);
    let mut y = Buffer::empty(area);
    for (i, c) in x.content.iter_mut().enumerate() {
        c.set_char(char::from(b'a' + (i % 26) as u8));
    }
    for (i, c) in y.content.iter_mut().enumerate() {
        c.set_char(char::from(b'A' + (i % 26) as u8));
    }
    let (mut live, mut dh) = (stats::new_histogram(), stats::new_histogram());
    let Ok(mut term) = Terminal::new(TestBackend::new(w, h));
    let a = &snaps[snaps.len() - 2];
    let b = &snaps[snaps.len() - 1];
    for i in 0..400 {
        let snap = if i % 2 == 0 { a } else { b };
        let t = Instant::now();
        let _ = term.draw(|f| crate::ui::render(f, snap, &view));
        if i >= 20 {
            stats::record(&mut live, t.elapsed().as_nanos() as u64);
        }
        let t = Instant::now();
        let d = x.diff(&y);
        let n = std::hint::black_box(d.len());
        if i >= 20 {
            stats::record(&mut dh, t.elapsed().as_nanos() as u64);
        }
        assert_eq!(n, (w as usize) * (h as usize));
    }
    (Latency::of(&live), Latency::of(&dh))
}

/// CPU time of a whole process (all its threads), in ns.
fn process_cpu_ns(pid: i32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    Some(tasks.flatten().filter_map(|t| thread_cpu_ns(&format!("{}/schedstat", t.path().display()))).sum())
}

fn rss_mib(pid: i32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 =
        text.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

/// Read what the pty has for up to `wait`, appending to `out`.
fn pump(master: &mut std::fs::File, out: &mut Vec<u8>, wait: Duration) {
    let mut pfd = libc::pollfd { fd: master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `pfd` is one writable pollfd; `master` stays open.
    let r = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
    if r > 0 {
        let mut buf = [0u8; 65536];
        if let Ok(n) = master.read(&mut buf) {
            out.extend_from_slice(&buf[..n]);
            if out.len() > 1 << 20 {
                out.drain(..out.len() - 4096);
            }
        }
    }
}

/// The real binary in a 200×60 pty: time to the first frame drawn from an
/// observed snapshot, then paused with no input: CPU over 5 s, memory.
fn tui_cost(s: &mut SelfCost) -> Result<()> {
    let ws = libc::winsize { ws_row: 60, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
    let pty =
        nix::pty::openpty(Some(&ws), None).map_err(|e| anyhow::anyhow!("openpty: {}", std::io::Error::from(e)))?;
    let (master, slave) = (pty.master, pty.slave);
    // The TUI must not inherit the master: if the bench dies, closing the
    // master hangs the terminal up, and the TUI's SIGHUP path cleans up
    // (with an inherited master it ran on, orphaned, with its workers).
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    let mut master = std::fs::File::from(master);
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.env("TERM", "xterm-256color").env("LANG", "en_US.UTF-8").env_remove("NO_COLOR");
    cmd.stdin(slave.try_clone()?).stdout(slave.try_clone()?).stderr(slave.try_clone()?);
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY as _, 0);
            Ok(())
        });
    }
    let t0 = Instant::now();
    let mut child = cmd.spawn().context("start the TUI")?;
    drop(slave);
    let pid = child.id() as i32;
    let mut out = Vec::new();
    let outcome = (|| -> Result<()> {
        let deadline = t0 + Duration::from_secs(10);
        loop {
            pump(&mut master, &mut out, Duration::from_millis(5));
            if out.windows(3).any(|w| w == b" Hz") {
                s.tui_first_frame_ms = Some(t0.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if Instant::now() > deadline {
                bail!("no frame within 10 s");
            }
        }
        // Pause (space), let it settle, then measure with no input.
        use std::io::Write;
        master.write_all(b" ")?;
        let settle = Instant::now() + Duration::from_secs(2);
        while Instant::now() < settle {
            pump(&mut master, &mut out, Duration::from_millis(50));
        }
        let monitor = std::fs::read_dir(format!("/proc/{pid}/task")).ok().and_then(|d| {
            d.flatten().find_map(|e| {
                let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
                (comm.trim() == "monitor").then(|| format!("{}/schedstat", e.path().display()))
            })
        });
        let m0 = monitor.as_deref().and_then(thread_cpu_ns);
        let c0 = process_cpu_ns(pid).context("schedstat of the TUI")?;
        let w0 = Instant::now();
        while w0.elapsed() < Duration::from_secs(5) {
            pump(&mut master, &mut out, Duration::from_millis(100));
        }
        let c1 = process_cpu_ns(pid).context("schedstat of the TUI")?;
        let m1 = monitor.as_deref().and_then(thread_cpu_ns);
        let window = w0.elapsed().as_nanos() as f64;
        s.tui_idle_cpu_percent = Some((c1.saturating_sub(c0)) as f64 / window * 100.0);
        if let (Some(a), Some(b)) = (m0, m1) {
            s.tui_idle_monitor_percent = Some(b.saturating_sub(a) as f64 / window * 100.0);
        }
        s.tui_rss_mib = rss_mib(pid);
        master.write_all(b"q")?;
        Ok(())
    })();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        pump(&mut master, &mut out, Duration::from_millis(20));
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > end {
            // Our own child; TERM lets it clean up its run.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
            std::thread::sleep(Duration::from_millis(500));
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
    }
    outcome
}

/// A latency whose tail says the thread was preempted, not slow.
fn noisy(l: &Latency) -> bool {
    l.p99_ns > 4 * l.p50_ns.max(1)
}

impl SelfCost {
    pub fn lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        let ms = |n: u64| n as f64 / 1e6;
        if let (Some(r), Some(d)) = (self.render, self.buffer_diff) {
            v.push(format!(
                "render + diff of a full 200×60 frame, snapshot changed (all panels drawn): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                ms(r.p50_ns),
                ms(r.p99_ns),
                ms(r.max_ns)
            ));
            v.push(format!(
                "ratatui Buffer::diff of a fully changed 200×60 buffer (timed between those frames): p50 {:.3} ms, p99 {:.3} ms → changed frame p50 {:.1}×, p99 {:.1}×{}",
                ms(d.p50_ns),
                ms(d.p99_ns),
                r.p50_ns as f64 / d.p50_ns.max(1) as f64,
                r.p99_ns as f64 / d.p99_ns.max(1) as f64,
                if noisy(&d) { " — NOISY: the diff's p99 is over 4× its p50 (preempted), read the p50 ratio" } else { "" }
            ));
        }
        if let Some(c) = self.monitor_cpu_percent {
            v.push(format!("monitor thread at 10 Hz watching every mechanism: {c:.2} % of one core (4 s window)"));
        }
        if let Some(r) = self.pipe_monitor_on_vs_off {
            v.push(format!(
                "pipe stream (4 KiB) with the monitor on vs off: {:.3}× ({:.2}–{:.2}, {} rounds)",
                r.median, r.min, r.max, r.rounds
            ));
        }
        if let Some(c) = self.tui_idle_cpu_percent {
            let of = self
                .tui_idle_monitor_percent
                .map(|m| format!(", of which its monitor thread {m:.2} %"))
                .unwrap_or_default();
            v.push(format!("TUI idle (paused, no input, 5 s, all threads): {c:.2} % of one core{of}"));
        }
        if let Some(t) = self.tui_first_frame_ms {
            v.push(format!("TUI start to first frame drawn from an observed snapshot: {t:.0} ms"));
        }
        if let Some(m) = self.tui_rss_mib {
            v.push(format!("TUI resident memory: {m:.1} MiB"));
        }
        for e in &self.errors {
            v.push(format!("not measured: {e}"));
        }
        v
    }

    pub fn targets(&self) -> Vec<Target> {
        let t = |name: &str, value: Option<f64>, cmp, threshold, why: &str| Target {
            name: name.into(),
            placement: Placement::Unpinned,
            size: 0,
            value,
            cmp,
            threshold,
            verdict: stats::judge(value, cmp, threshold),
            why: (value.is_none() || stats::judge(value, cmp, threshold) == stats::Verdict::Miss)
                .then(|| why.to_string())
                .filter(|w| !w.is_empty()),
            floor: None,
        };
        let r = self.render.map(|r| r.p99_ns as f64 / 1e6);
        let ratio = match (self.render, self.buffer_diff) {
            (Some(r), Some(d)) => Some(r.p99_ns as f64 / d.p99_ns.max(1) as f64),
            _ => None,
        };
        vec![
            t("render+diff 200×60 p99 (ms)", r, Cmp::AtMost, 2.0, ""),
            t(
                "render+diff p99 vs Buffer::diff p99",
                ratio,
                Cmp::AtMost,
                3.0,
                "a live frame redraws all seven panels (their counters and times move at every sample), and \
                 laying out their widgets costs more than comparing two buffers",
            ),
            t(
                "monitor CPU at 10 Hz (% of a core)",
                self.monitor_cpu_percent,
                Cmp::AtMost,
                1.5,
                "each 10 Hz sample reads every moving worker's /proc stat, wchan and syscall (files kept open), \
                 the pipes' and sockets' queues and the emulated kernels' counters; their full tables at 2 Hz, \
                 fd tables and the FIFO's /proc scan once a second; the cost is the monitor's and its probes'",
            ),
            t(
                "pipe throughput monitor on / off",
                self.pipe_monitor_on_vs_off.map(|s| s.median),
                Cmp::AtLeast,
                0.95,
                "the monitor's share of a core (above) comes out of the two cores the pipe's writer and reader use",
            ),
            t(
                "TUI idle CPU (% of a core)",
                self.tui_idle_cpu_percent,
                Cmp::AtMost,
                0.3,
                "paused, the monitor samples once a second (its share is shown above); the rest is the input \
                 thread's 100 ms poll and one redraw per sample",
            ),
            t("TUI time to first frame (ms)", self.tui_first_frame_ms, Cmp::AtMost, 200.0, ""),
            t("TUI resident memory (MiB)", self.tui_rss_mib, Cmp::AtMost, 30.0, ""),
        ]
    }
}
