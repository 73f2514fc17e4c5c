//! `ipcscope bench`: every mechanism measured side by side against a raw
//! baseline in the same run, and the visualizer's own cost (`--self`).
//!
//! Method: each case is a pair (ipcscope's mechanism, its raw baseline),
//! each side with its processes forked once (before any thread exists) and
//! pinned per placement. A case is calibrated (the warm-up, discarded) to
//! about `--round-ms` per measurement, then measured in rounds A B, B A, …
//! The headline is the ratio to the baseline: the median over rounds of
//! the per-round ratio, with its spread.

pub mod cases;
pub mod emulated;
pub mod peer;
pub mod report;
pub mod selfcost;
pub mod stats;

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use cases::{Env, Linux, Memcpy, Relay, Side, Via, Wait};
use emulated::{Alpc, AlpcPath, Mach};
use peer::{Placement, OP_PINGPONG, OP_STREAM};
use stats::{Cmp, Latency, Summary, Verdict};

/// The time per measurement `--round-ms` accepts.
const ROUND_MS: std::ops::RangeInclusive<u64> = 1..=10_000;

/// `ipcscope bench` options (`--mechanisms` is the program's global flag).
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Message sizes in bytes, comma-separated.
    #[arg(long, default_value = "64,4096,65536,1048576")]
    pub sizes: String,
    /// Where the processes run: same CPU, crossing CPUs, unpinned, or all three.
    #[arg(long, default_value = "all")]
    pub placement: String,
    /// Measured rounds per case (each round measures the case and its baseline).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Output: table, json or csv.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Also measure the visualizer's own cost (render, monitor, idle TUI).
    #[arg(long = "self")]
    pub self_cost: bool,
    /// Only the visualizer's own cost.
    #[arg(long)]
    pub self_only: bool,
    /// Time per measurement, in ms.
    #[arg(long, default_value_t = 25)]
    pub round_ms: u64,
    /// No progress bar on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Also write the JSON report to FILE, whatever --format prints.
    #[arg(long, value_name = "FILE")]
    pub save_json: Option<std::path::PathBuf>,
}

/// The report, as printed by `--format json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub version: u32,
    pub command: String,
    pub machine: report::Machine,
    pub rounds: usize,
    pub sizes: Vec<usize>,
    pub placements: Vec<Placement>,
    pub cases: Vec<CaseResult>,
    pub targets: Vec<Target>,
    pub crossovers: Vec<Crossover>,
    #[serde(rename = "self")]
    pub self_cost: Option<selfcost::SelfCost>,
    /// ipcscope's framing alone per message, by size (stamp + verify in
    /// one process): the part of every floor below that is not a hop.
    pub framing: Vec<FramingCost>,
    pub notes: Vec<String>,
}

/// The shortest time per message, and so the best ratio, that any design
/// with a kernel *process* in the middle could reach in this run: ipcscope's
/// framing, `hops` packets through a middle process priced at the raw unix
/// relay's small-message round trip (4 packets) from this run and
/// placement, and `copies` copies of the message at memcpy's speed. Derived
/// only where the parts cannot overlap: every process on one CPU, or a
/// request/reply call (each step waits for the one before).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Floor {
    pub ratio: f64,
    pub framing_ns: f64,
    pub hops: u32,
    pub hop_ns: f64,
    pub copies: u32,
    pub copy_ns: f64,
}

impl Floor {
    /// Why a target below `threshold` missed, in one line.
    pub fn describe(&self, threshold: f64) -> String {
        let copies = match self.copies {
            0 => String::new(),
            n => format!(" + {n} copy of {:.0} µs", n as f64 * self.copy_ns / 1e3),
        };
        let parts = format!(
            "framing {:.0} µs + {} packets × {:.1} µs through a middle process (this run's raw unix relay){copies}",
            self.framing_ns / 1e3,
            self.hops,
            self.hop_ns / 1e3,
        );
        if self.ratio < threshold {
            format!("out of reach for any kernel process: at best {:.2}× here = {parts}", self.ratio)
        } else {
            format!("floor {:.2}× here = {parts}; the rest is the emulated kernel's own work", self.ratio)
        }
    }
}

/// The packets a message costs through the emulated kernel, and the copies
/// no design avoids, for the bulk rows whose parts cannot overlap at `pl`.
fn floor_shape(variant: &str, pl: Placement) -> Option<(u32, u32)> {
    let sequential = |oneway: bool| match pl {
        Placement::Same => true,
        Placement::Cross => !oneway,
        Placement::Unpinned => false,
    };
    match variant {
        // mach_msg(SEND): task → kernel, status back; mach_msg(RCV): the
        // same. A one-way stream overlaps across CPUs, so: one CPU only.
        "Mach out-of-line" if sequential(true) => Some((4, 0)),
        // A call: client → kernel → server, reply: server → kernel → client.
        "ALPC section" if sequential(false) => Some((4, 0)),
        // … plus NtReadRequestData's round trip, and the one copy it makes.
        "ALPC direct" if sequential(false) => Some((6, 1)),
        _ => None,
    }
}

/// [`Floor`] for `variant`'s `size`-byte stream at `pl`, from this run's
/// own figures (none when one of them is missing).
fn floor(rep: &Report, variant: &str, size: usize, pl: Placement) -> Option<Floor> {
    let (hops, copies) = floor_shape(variant, pl)?;
    let framing_ns = rep.framing.iter().find(|f| f.size == size)?.ns_per_msg;
    // The relay's round trip with the smallest message any case measured,
    // the lowest of them: a packet priced as cheaply as this run allows.
    let smallest = *rep.sizes.iter().min()?;
    if smallest > 256 {
        return None;
    }
    let relay_rtt = rep
        .cases
        .iter()
        .filter(|c| c.baseline == RELAY && c.op == "pingpong" && c.size == smallest && c.placement == pl)
        .filter_map(|c| c.baseline_latency.map(|l| l.p50_ns))
        .min()? as f64;
    let stream =
        rep.cases.iter().find(|c| c.variant == variant && c.op == "stream" && c.size == size && c.placement == pl)?;
    let copy_ns = size as f64 / stream.baseline_bytes_per_s? * 1e9;
    let hop_ns = relay_rtt / 4.0;
    let total = framing_ns + f64::from(hops) * hop_ns + f64::from(copies) * copy_ns;
    Some(Floor { ratio: copy_ns / total, framing_ns, hops, hop_ns, copies, copy_ns })
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct FramingCost {
    pub size: usize,
    pub ns_per_msg: f64,
}

/// One measured case: a mechanism variant, an operation, a size, a
/// placement, against its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub mechanism: String,
    pub variant: String,
    pub baseline: String,
    /// `pingpong` or `stream`.
    pub op: String,
    pub size: usize,
    pub placement: Placement,
    /// Why it was not measured (then everything below is empty).
    pub not_measured: Option<String>,
    pub latency: Option<Latency>,
    pub baseline_latency: Option<Latency>,
    /// Messages per second and bytes per second (median over rounds).
    pub msgs_per_s: Option<f64>,
    pub bytes_per_s: Option<f64>,
    pub baseline_bytes_per_s: Option<f64>,
    /// Ratio to the baseline: p50 round trip (pingpong) or bytes/s (stream).
    pub ratio: Option<Summary>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub placement: Placement,
    pub size: usize,
    pub value: Option<f64>,
    pub cmp: Cmp,
    pub threshold: f64,
    pub verdict: Verdict,
    pub why: Option<String>,
    /// The best ratio any design with a kernel process in the middle could
    /// reach in this run (see [`floor`]), where one can be derived.
    pub floor: Option<Floor>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Crossover {
    pub placement: Placement,
    pub what: String,
    /// The smallest swept size where the second path's p50 round trip was
    /// below the first's, if any.
    pub measured_bytes: Option<usize>,
    pub configured_bytes: usize,
    pub configured_by: String,
    /// (size, p50 of the first path, p50 of the second) in ns.
    pub sweep: Vec<(usize, u64, u64)>,
}

/// The emulated kernels' baseline: client → relay → server and back over
/// unix sockets, the same system calls with no kernel logic.
const RELAY: &str = "unix relay, 2 hops";

/// A mechanism of the benchmark: its side and its baselines.
struct Mech {
    key: &'static str,
    variant: &'static str,
    pp_baseline: &'static str,
    st_baseline: &'static str,
}

const MECHS: &[Mech] = &[
    Mech { key: "pipe", variant: "pipe", pp_baseline: "raw pipe", st_baseline: "raw pipe" },
    Mech { key: "fifo", variant: "FIFO", pp_baseline: "raw FIFO", st_baseline: "raw FIFO" },
    Mech { key: "mq", variant: "POSIX mq", pp_baseline: "raw mq", st_baseline: "raw mq" },
    Mech { key: "shm", variant: "shm ring (futex notify)", pp_baseline: "raw shm ring (futex)", st_baseline: "memcpy" },
    Mech {
        key: "shm",
        variant: "shm ring (SPIN: busy-waits)",
        pp_baseline: "raw shm ring (spin)",
        st_baseline: "memcpy",
    },
    Mech { key: "mach", variant: "Mach inline", pp_baseline: RELAY, st_baseline: RELAY },
    Mech { key: "mach", variant: "Mach out-of-line", pp_baseline: RELAY, st_baseline: "memcpy" },
    Mech { key: "alpc", variant: "ALPC queue", pp_baseline: RELAY, st_baseline: RELAY },
    Mech { key: "alpc", variant: "ALPC section", pp_baseline: RELAY, st_baseline: "memcpy" },
    Mech { key: "alpc", variant: "ALPC direct", pp_baseline: RELAY, st_baseline: "memcpy" },
];

fn make_side(env: &Env, m: &Mech) -> Result<Box<dyn Side>> {
    Ok(match m.variant {
        "pipe" => Box::new(Linux::new(env, Via::Pipe, true)?),
        "FIFO" => Box::new(Linux::new(env, Via::Fifo, true)?),
        "POSIX mq" => Box::new(Linux::new(env, Via::Mq, true)?),
        "shm ring (futex notify)" => Box::new(Linux::new(env, Via::Shm(Wait::Futex), true)?),
        "shm ring (SPIN: busy-waits)" => Box::new(Linux::new(env, Via::Shm(Wait::Spin), true)?),
        "Mach inline" => Box::new(Mach::new(&env.dir, &env.tel, false)?),
        "Mach out-of-line" => Box::new(Mach::new(&env.dir, &env.tel, true)?),
        "ALPC queue" => Box::new(Alpc::new(&env.dir, &env.tel, AlpcPath::Queue, env.max_size)?),
        "ALPC section" => Box::new(Alpc::new(&env.dir, &env.tel, AlpcPath::Section, env.max_size)?),
        _ => Box::new(Alpc::new(&env.dir, &env.tel, AlpcPath::Direct, env.max_size)?),
    })
}

fn make_baseline(env: &Env, name: &str) -> Result<Box<dyn Side>> {
    Ok(match name {
        "raw pipe" => Box::new(Linux::new(env, Via::Pipe, false)?),
        "raw FIFO" => Box::new(Linux::new(env, Via::Fifo, false)?),
        "raw mq" => Box::new(Linux::new(env, Via::Mq, false)?),
        "raw shm ring (futex)" => Box::new(Linux::new(env, Via::Shm(Wait::Futex), false)?),
        "raw shm ring (spin)" => Box::new(Linux::new(env, Via::Shm(Wait::Spin), false)?),
        "memcpy" => Box::new(Memcpy::default()),
        _ => Box::new(Relay::new()?),
    })
}

/// Progress on stderr: a bar redrawn in place.
pub struct Progress {
    total: usize,
    done: usize,
    on: bool,
    start: Instant,
}

impl Progress {
    fn new(total: usize, on: bool) -> Progress {
        Progress { total: total.max(1), done: 0, on, start: Instant::now() }
    }
    fn step(&mut self, what: &str) {
        self.done += 1;
        if !self.on {
            return;
        }
        let width = 30;
        let filled = (self.done * width / self.total).min(width);
        eprint!(
            "\r\x1b[2K[{}{}] {}/{} {:>4.0}s  {what}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            self.done.min(self.total),
            self.total,
            self.start.elapsed().as_secs_f64()
        );
    }
    fn finish(&self) {
        if self.on {
            eprintln!("\r\x1b[2Kbench: done in {:.0} s", self.start.elapsed().as_secs_f64());
        }
    }
}

fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    if s.trim().is_empty() {
        return Err("no size given in --sizes".into());
    }
    let mut v = Vec::new();
    for part in crate::registry::split_list(s, "--sizes")? {
        let n: usize =
            part.parse().map_err(|_| format!("bad size {part:?} in --sizes: expected bytes, e.g. 64,4096"))?;
        if !(1..=(16 << 20)).contains(&n) {
            return Err(format!("size {n} out of range 1..16777216"));
        }
        if v.contains(&n) {
            return Err(format!("size {n} is given twice in --sizes {s:?}"));
        }
        v.push(n);
    }
    v.sort();
    Ok(v)
}

/// Mechanism keys from the global `--mechanisms` list (socket is measured
/// only as the raw relay baseline).
fn parse_mechanisms(s: &str) -> Result<Vec<&'static str>, String> {
    let all = ["pipe", "fifo", "mq", "shm", "mach", "alpc"];
    if s.trim() == "all" {
        return Ok(all.to_vec());
    }
    if s.trim().is_empty() {
        return Err("no mechanism given".into());
    }
    let mut v = Vec::new();
    for name in crate::registry::split_list(s, "--mechanisms")? {
        let k = all
            .iter()
            .find(|k| **k == name)
            .ok_or_else(|| format!("unknown mechanism {name:?} for bench; choose from: {}, all", all.join(", ")))?;
        v.push(*k);
    }
    Ok(v)
}

/// Entry point: returns the exit code (2 for bad arguments).
pub fn main(args: BenchArgs, mechanisms: &str) -> Result<i32> {
    let bad = |m: String| {
        eprintln!("ipcscope: {m} (see ipcscope bench --help)");
        Ok(2)
    };
    let sizes = match parse_sizes(&args.sizes) {
        Ok(s) => s,
        Err(e) => return bad(e),
    };
    let placements = match Placement::parse_list(&args.placement) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let mechs = match parse_mechanisms(mechanisms) {
        Ok(m) => m,
        Err(e) => return bad(e),
    };
    if !["table", "json", "csv"].contains(&args.format.as_str()) {
        return bad(format!("unknown format {:?}; choose table, json or csv", args.format));
    }
    if args.rounds == 0 || args.rounds > 1000 {
        return bad("--rounds must be between 1 and 1000".into());
    }
    if !ROUND_MS.contains(&args.round_ms) {
        return bad(format!(
            "--round-ms must be between {} and {} ms, got {}",
            ROUND_MS.start(),
            ROUND_MS.end(),
            args.round_ms
        ));
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut rep = Report {
        version: 1,
        command,
        machine: report::Machine::probe(),
        rounds: args.rounds,
        sizes: sizes.clone(),
        placements: placements.clone(),
        cases: Vec::new(),
        targets: Vec::new(),
        crossovers: Vec::new(),
        self_cost: None,
        framing: Vec::new(),
        notes: Vec::new(),
    };
    if !args.self_only {
        run_cases(&args, &mechs, &sizes, &placements, &mut rep)?;
    }
    if args.self_cost || args.self_only {
        rep.self_cost = Some(selfcost::measure(args.rounds, !args.quiet));
    }
    rep.targets = targets(&rep);
    if let Some(s) = &rep.self_cost {
        rep.targets.extend(s.targets());
    }
    report::notes(&mut rep);
    if let Some(path) = &args.save_json {
        std::fs::write(path, serde_json::to_string_pretty(&rep)? + "\n")?;
    }
    let out = match args.format.as_str() {
        "json" => serde_json::to_string_pretty(&rep)? + "\n",
        "csv" => report::csv(&rep),
        _ => report::table(&rep),
    };
    crate::stdout::write_out(format_args!("{out}"));
    Ok(0)
}

/// A private directory for FIFOs and kernel sockets, removed at the end —
/// also when SIGINT, SIGTERM, SIGHUP or SIGQUIT ends the run.
struct PrivateDir(std::path::PathBuf);

impl PrivateDir {
    fn create() -> Result<PrivateDir> {
        let base = crate::supervisor::rundir::private_base()?;
        let p = base.join(format!("bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
        remove_on_exit_signals(&p)?;
        Ok(PrivateDir(p))
    }
}

/// The directory the exit signals empty and remove (set once), and the
/// process that made it: the peers forked afterwards inherit the handler,
/// and a signal to one of them must not remove the run's directory.
static DIR_ON_SIGNAL: std::sync::OnceLock<(std::ffi::CString, libc::pid_t)> = std::sync::OnceLock::new();

/// The bench forks its peers and must stay single-threaded (no watcher
/// thread), and its loops block on the peers: so the handler itself
/// removes the directory, with system calls only, then dies of the signal
/// as it would have. The peers die with us (`PR_SET_PDEATHSIG`); shm and mq
/// objects were unlinked when made.
fn remove_on_exit_signals(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let _ = DIR_ON_SIGNAL.set((std::ffi::CString::new(dir.as_os_str().as_bytes())?, std::process::id() as libc::pid_t));
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_exit_signal),
        nix::sys::signal::SaFlags::SA_RESETHAND,
        nix::sys::signal::SigSet::empty(),
    );
    use nix::sys::signal::Signal::*;
    for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
        // SAFETY: the handler makes only async-signal-safe system calls.
        unsafe { nix::sys::signal::sigaction(sig, &action) }?;
    }
    Ok(())
}

extern "C" fn on_exit_signal(sig: libc::c_int) {
    // SAFETY: getpid is async-signal-safe.
    if let Some((dir, _)) = DIR_ON_SIGNAL.get().filter(|(_, owner)| *owner == unsafe { libc::getpid() }) {
        // SAFETY: open, getdents64, unlinkat, close and rmdir are system
        // calls (async-signal-safe); the buffer is on the stack.
        unsafe { remove_flat_dir(dir) };
    }
    // SA_RESETHAND put the default action back: die of the signal.
    // SAFETY: raise is async-signal-safe.
    unsafe { libc::raise(sig) };
}

/// Removes `dir` and the files directly in it (ours: FIFOs and sockets,
/// no subdirectories), without allocating. Never follows a symlink.
unsafe fn remove_flat_dir(dir: &std::ffi::CStr) {
    let fd = libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        let n = libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len());
        if n <= 0 {
            break;
        }
        let mut off = 0usize;
        // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
        while off + 19 < n as usize {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = buf.as_ptr().add(off + 19) as *const libc::c_char;
            let dot = *name == b'.' as libc::c_char
                && (*name.add(1) == 0 || (*name.add(1) == b'.' as libc::c_char && *name.add(2) == 0));
            if !dot {
                libc::unlinkat(fd, name, 0);
            }
            if reclen == 0 {
                break;
            }
            off += reclen;
        }
    }
    libc::close(fd);
    libc::rmdir(dir.as_ptr());
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_cases(
    args: &BenchArgs,
    mechs: &[&str],
    sizes: &[usize],
    placements: &[Placement],
    rep: &mut Report,
) -> Result<()> {
    let dir = PrivateDir::create()?;
    let (tel, _tel_fd) = crate::telemetry::Telemetry::create()?;
    let env = Env {
        tel,
        dir: dir.0.clone(),
        max_size: *sizes.iter().max().unwrap_or(&64),
        prefix: format!("ipcscope-{}-bench-", std::process::id()),
        counter: std::cell::Cell::new(0),
    };
    let selected: Vec<&Mech> = MECHS.iter().filter(|m| mechs.contains(&m.key)).collect();
    let sweep = mechs.contains(&"alpc");
    let total = selected.len() * placements.len() * sizes.len() * 2 + if sweep { placements.len() } else { 0 };
    let mut progress = Progress::new(total, !args.quiet);
    let budget = Duration::from_millis(args.round_ms);
    for m in &selected {
        let sides = (|| -> Result<_> {
            let a = make_side(&env, m)?;
            let pp = make_baseline(&env, m.pp_baseline)?;
            let st = if m.st_baseline == m.pp_baseline { None } else { Some(make_baseline(&env, m.st_baseline)?) };
            Ok((a, pp, st))
        })();
        let (mut a, mut pp, mut st) = match sides {
            Ok(s) => s,
            Err(e) => {
                for &pl in placements {
                    for &size in sizes {
                        for op in [OP_PINGPONG, OP_STREAM] {
                            rep.cases.push(not_measured(m, op, size, pl, format!("could not start: {e:#}")));
                            progress.step(m.variant);
                        }
                    }
                }
                continue;
            }
        };
        for &pl in placements {
            for &size in sizes {
                for op in [OP_PINGPONG, OP_STREAM] {
                    progress.step(&format!("{} {} {size} B {}", m.variant, op_name(op), pl.name()));
                    let b: &mut Box<dyn Side> = if op == OP_STREAM { st.as_mut().unwrap_or(&mut pp) } else { &mut pp };
                    let r = measure(m, a.as_mut(), b.as_mut(), op, size, pl, args.rounds, budget);
                    rep.cases.push(r.unwrap_or_else(|e| not_measured(m, op, size, pl, format!("failed: {e:#}"))));
                }
            }
        }
        peer::pin(0, None);
    }
    if sweep {
        let sides = (|| -> Result<_> {
            let top = env.max_size.max(1 << 20);
            let q = Alpc::new(&env.dir, &env.tel, AlpcPath::Queue, top)?;
            let s = Alpc::new(&env.dir, &env.tel, AlpcPath::Section, top)?;
            let d = Alpc::new(&env.dir, &env.tel, AlpcPath::Direct, top)?;
            Ok((q, s, d))
        })();
        match sides {
            Ok((mut q, mut s, mut d)) => {
                for &pl in placements {
                    progress.step(&format!("ALPC crossovers {}", pl.name()));
                    let rounds = args.rounds.min(3);
                    let qs = [64, 256, 1024, 4096, 16384, emulated::ALPC_QUEUE_MAX];
                    rep.crossovers.push(crossover(
                        pl,
                        "section path beats the queue",
                        &mut q,
                        &mut s,
                        &qs,
                        rounds,
                        budget,
                        256,
                        "alpc.small_max (default; the notes' 256 B)",
                    ));
                    let ds = [4096, 16384, 65536, 262_144, 1 << 20];
                    rep.crossovers.push(crossover(
                        pl,
                        "direct read beats the section",
                        &mut s,
                        &mut d,
                        &ds,
                        rounds,
                        budget,
                        65536,
                        "alpc.section_size (default)",
                    ));
                }
                peer::pin(0, None);
            }
            Err(e) => rep.notes.push(format!("ALPC crossovers not measured: {e:#}")),
        }
    }
    progress.finish();
    rep.framing = framing_cost(sizes);
    for f in &rep.framing {
        rep.notes.push(format!(
            "framing alone at {} B (stamp + verify, one process): {:.2} µs per message, {:.2} GB/s",
            f.size,
            f.ns_per_msg / 1e3,
            f.size as f64 / f.ns_per_msg
        ));
    }
    Ok(())
}

/// What ipcscope's framing alone costs per message (stamp at the sender,
/// verify at the receiver), in this process: the floor under every ratio.
fn framing_cost(sizes: &[usize]) -> Vec<FramingCost> {
    let mut out = Vec::new();
    for &size in sizes.iter().filter(|s| **s >= crate::message::MIN_LEN) {
        let mut buf = cases::message_buffer(size, 1);
        let n = (16 << 20) / size.max(1) + 10;
        // The best of five passes: a floor should not carry a noisy pass.
        let best = (0..5)
            .map(|_| {
                let t = Instant::now();
                for seq in 0..n as u64 {
                    cases::stamp(&mut buf, 1, seq);
                    let _ = std::hint::black_box(crate::message::decode(std::hint::black_box(&buf)));
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .fold(f64::INFINITY, f64::min);
        out.push(FramingCost { size, ns_per_msg: best });
    }
    out
}

fn op_name(op: u64) -> &'static str {
    if op == OP_PINGPONG {
        "pingpong"
    } else {
        "stream"
    }
}

fn not_measured(m: &Mech, op: u64, size: usize, pl: Placement, why: String) -> CaseResult {
    CaseResult {
        mechanism: m.key.into(),
        variant: m.variant.into(),
        baseline: if op == OP_PINGPONG { m.pp_baseline } else { m.st_baseline }.into(),
        op: op_name(op).into(),
        size,
        placement: pl,
        not_measured: Some(why),
        latency: None,
        baseline_latency: None,
        msgs_per_s: None,
        bytes_per_s: None,
        baseline_bytes_per_s: None,
        ratio: None,
        flags: Vec::new(),
    }
}

/// How many operations fill `budget`, from a short warm-up run (discarded).
fn calibrate(side: &mut dyn Side, op: u64, size: usize, budget: Duration, pl: Placement) -> Result<u64> {
    pl.apply(&side.pids());
    let n0: u64 = if size > 65536 { 3 } else { 20 };
    let t = Instant::now();
    if op == OP_PINGPONG {
        let mut h = stats::new_histogram();
        side.pingpong(size, n0, &mut h)?;
    } else {
        side.stream(size, n0)?;
    }
    let per = t.elapsed().as_secs_f64() / n0 as f64;
    Ok(((budget.as_secs_f64() / per.max(1e-9)) as u64).clamp(5, 200_000))
}

/// One value per round: p50 (pingpong, ns) or bytes/s (stream).
enum Round {
    Lat(hdrhistogram::Histogram<u64>),
    Bw(f64, f64),
}

fn once(side: &mut dyn Side, op: u64, size: usize, n: u64, pl: Placement) -> Result<Round> {
    // Each side's own chain is pinned before it runs: bench on CPU 0,
    // its first peer on CPU 1 (cross), and so on.
    pl.apply(&side.pids());
    if op == OP_PINGPONG {
        let mut h = stats::new_histogram();
        side.pingpong(size, n, &mut h)?;
        Ok(Round::Lat(h))
    } else {
        let d = side.stream(size, n)?.as_secs_f64().max(1e-9);
        Ok(Round::Bw(n as f64 / d, (n * size as u64) as f64 / d))
    }
}

#[allow(clippy::too_many_arguments)]
fn measure(
    m: &Mech,
    a: &mut dyn Side,
    b: &mut dyn Side,
    op: u64,
    size: usize,
    pl: Placement,
    rounds: usize,
    budget: Duration,
) -> Result<CaseResult> {
    if let Some(why) = a.unsupported(op, size).or_else(|| b.unsupported(op, size)) {
        return Ok(not_measured(m, op, size, pl, why));
    }
    let na = calibrate(a, op, size, budget, pl)?;
    let nb = calibrate(b, op, size, budget, pl)?;
    let mut all_a = stats::new_histogram();
    let mut all_b = stats::new_histogram();
    let (mut va, mut vb, mut msgs) = (Vec::new(), Vec::new(), Vec::new());
    let mut flags = Vec::new();
    let mut steals = Vec::new();
    let mut hists = Vec::new();
    for r in 0..rounds {
        let j0 = stats::cpu_jiffies();
        let (ra, rb) = if r % 2 == 0 {
            let ra = once(a, op, size, na, pl)?;
            (ra, once(b, op, size, nb, pl)?)
        } else {
            let rb = once(b, op, size, nb, pl)?;
            (once(a, op, size, na, pl)?, rb)
        };
        steals.push(stats::steal_share(j0, stats::cpu_jiffies()));
        match (ra, rb) {
            (Round::Lat(ha), Round::Lat(hb)) => {
                va.push(ha.value_at_quantile(0.5) as f64);
                vb.push(hb.value_at_quantile(0.5) as f64);
                hists.push((ha, hb));
            }
            (Round::Bw(ma, ba), Round::Bw(_, bb)) => {
                msgs.push(ma);
                va.push(ba);
                vb.push(bb);
            }
            _ => unreachable!("both sides ran the same operation"),
        }
    }
    // Rounds that measured the VM's neighbours, not the mechanism, go
    // (while a quiet majority stays); the report says how many.
    let per_round: Vec<Option<f64>> = va.iter().zip(&vb).map(|(a, b)| (*b > 0.0).then(|| a / b)).collect();
    let (keep, no_majority) = stats::quiet_rounds(&per_round, &steals);
    let dropped = keep.iter().filter(|&&k| !k).count();
    let kept = |v: &[f64]| -> Vec<f64> { v.iter().zip(&keep).filter(|(_, &k)| k).map(|(x, _)| *x).collect() };
    let (va, vb, msgs) = (kept(&va), kept(&vb), if msgs.is_empty() { msgs } else { kept(&msgs) });
    for ((ha, hb), _) in hists.iter().zip(&keep).filter(|(_, &k)| k) {
        let _ = all_a.add(ha);
        let _ = all_b.add(hb);
    }
    if dropped > 0 {
        flags.push(format!("{dropped}/{rounds} noisy rounds dropped"));
    }
    if no_majority {
        flags.push("noise: no quiet majority".into());
    }
    let worst_steal = kept(&steals).into_iter().fold(0.0, f64::max);
    if worst_steal > stats::STEAL_FLAG {
        flags.push(format!("steal {:.0}%", worst_steal * 100.0));
    }
    let ratio = Summary::of(&stats::ratios(&va, &vb));
    if ratio.is_some_and(|s| s.spread > stats::WIDE_SPREAD) {
        flags.push("wide spread".into());
    }
    let mut res = not_measured(m, op, size, pl, String::new());
    res.not_measured = None;
    res.ratio = ratio;
    res.flags = flags;
    if op == OP_PINGPONG {
        res.latency = Some(Latency::of(&all_a));
        res.baseline_latency = Some(Latency::of(&all_b));
    } else {
        res.msgs_per_s = stats::median(&msgs);
        res.bytes_per_s = stats::median(&va);
        res.baseline_bytes_per_s = stats::median(&vb);
    }
    Ok(res)
}

#[allow(clippy::too_many_arguments)]
fn crossover(
    pl: Placement,
    what: &str,
    first: &mut dyn Side,
    second: &mut dyn Side,
    sizes: &[usize],
    rounds: usize,
    budget: Duration,
    configured: usize,
    by: &str,
) -> Crossover {
    let mut sweep = Vec::new();
    for &size in sizes {
        if first.unsupported(OP_PINGPONG, size).is_some() || second.unsupported(OP_PINGPONG, size).is_some() {
            continue;
        }
        let run = |s: &mut dyn Side| -> Result<f64> {
            let n = calibrate(s, OP_PINGPONG, size, budget / 2, pl)?;
            let mut p = Vec::new();
            for _ in 0..rounds {
                pl.apply(&s.pids());
                let mut h = stats::new_histogram();
                s.pingpong(size, n, &mut h)?;
                p.push(h.value_at_quantile(0.5) as f64);
            }
            Ok(stats::median(&p).unwrap_or(f64::NAN))
        };
        if let (Ok(x), Ok(y)) = (run(first), run(second)) {
            sweep.push((size, x as u64, y as u64));
        }
    }
    Crossover {
        placement: pl,
        what: what.into(),
        measured_bytes: crossover_point(&sweep),
        configured_bytes: configured,
        configured_by: by.into(),
        sweep,
    }
}

/// The smallest size from which the second path stays faster.
pub fn crossover_point(sweep: &[(usize, u64, u64)]) -> Option<usize> {
    let mut at = None;
    for &(size, first, second) in sweep.iter().rev() {
        if second < first {
            at = Some(size);
        } else {
            break;
        }
    }
    at
}

/// The targets, judged on this run's cases.
pub fn targets(rep: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let find = |variant: &str, op: &str, size: usize, pl: Placement| {
        rep.cases.iter().find(|c| c.variant == variant && c.op == op && c.size == size && c.placement == pl)
    };
    let push = |out: &mut Vec<Target>, name: String, c: Option<&CaseResult>, pl, size, cmp, thr: f64| {
        let value = c.and_then(|c| c.ratio).map(|r| r.median);
        let why = match c {
            None => Some("not in this run".to_string()),
            Some(c) => c.not_measured.clone().map(|w| format!("not measured: {w}")),
        };
        out.push(Target {
            name,
            placement: pl,
            size,
            value,
            cmp,
            threshold: thr,
            verdict: stats::judge(value, cmp, thr),
            why,
            floor: None,
        });
    };
    let has = |variant: &str| rep.cases.iter().any(|c| c.variant == variant);
    for &pl in &rep.placements {
        for &size in &rep.sizes {
            for v in ["pipe", "FIFO", "POSIX mq"] {
                if has(v) && !(v == "POSIX mq" && size > cases::MQ_MAX) {
                    let c = find(v, "pingpong", size, pl);
                    push(&mut out, format!("{v} ping-pong p50 vs raw"), c, pl, size, Cmp::AtMost, 1.10);
                }
            }
            if has("pipe") {
                let c = find("pipe", "stream", size, pl);
                push(&mut out, "pipe stream throughput vs raw".into(), c, pl, size, Cmp::AtLeast, 0.90);
            }
            if has("Mach inline") && size <= emulated::MACH_INLINE_MAX {
                let c = find("Mach inline", "pingpong", size, pl);
                push(&mut out, "Mach inline RTT p50 vs raw unix".into(), c, pl, size, Cmp::AtMost, 2.0);
            }
            if has("ALPC queue") && size <= emulated::ALPC_QUEUE_MAX {
                let c = find("ALPC queue", "pingpong", size, pl);
                push(&mut out, "ALPC queue RTT p50 vs raw unix".into(), c, pl, size, Cmp::AtMost, 2.0);
            }
        }
        let mib = 1 << 20;
        for (v, name, thr) in [
            ("shm ring (futex notify)", "shm 1 MiB bulk (futex) vs memcpy", 0.40),
            ("shm ring (SPIN: busy-waits)", "shm 1 MiB bulk (spin) vs memcpy", 0.40),
            ("Mach out-of-line", "Mach OOL 1 MiB vs memcpy", 0.40),
            ("ALPC section", "ALPC section 1 MiB vs memcpy", 0.40),
            ("ALPC direct", "ALPC direct 1 MiB vs memcpy", 0.25),
        ] {
            if has(v) {
                let c = find(v, "stream", mib, pl);
                push(&mut out, name.into(), c, pl, mib, Cmp::AtLeast, thr);
                if let Some(t) = out.last_mut() {
                    if c.is_none() {
                        t.why = Some("not measured: 1048576 is not in --sizes".into());
                    } else if t.verdict == Verdict::Miss {
                        t.floor = floor(rep, v, mib, pl);
                        if let Some(f) = t.floor {
                            t.why = Some(f.describe(thr));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_mechanisms_parse() {
        assert_eq!(parse_sizes("4096, 64").unwrap(), vec![64, 4096]);
        assert!(parse_sizes("64,64").unwrap_err().contains("twice"));
        assert!(parse_sizes("64,,4096").unwrap_err().contains("empty item"));
        assert!(parse_mechanisms("pipe,pipe").unwrap_err().contains("twice"));
        assert!(parse_sizes("0").is_err());
        assert!(parse_sizes("x").is_err());
        assert_eq!(parse_mechanisms("pipe,mq").unwrap(), vec!["pipe", "mq"]);
        assert_eq!(parse_mechanisms("all").unwrap().len(), 6);
        assert!(parse_mechanisms("socketz").is_err());
    }

    /// A case with just what `floor` reads.
    fn case(variant: &str, op: &str, size: usize, pl: Placement, relay_p50: u64, base_bps: f64) -> CaseResult {
        CaseResult {
            mechanism: String::new(),
            variant: variant.into(),
            baseline: if op == "pingpong" { RELAY.into() } else { "memcpy".into() },
            op: op.into(),
            size,
            placement: pl,
            not_measured: None,
            latency: None,
            baseline_latency: Some(Latency { p50_ns: relay_p50, ..Latency::default() }),
            msgs_per_s: None,
            bytes_per_s: None,
            baseline_bytes_per_s: Some(base_bps),
            ratio: None,
            flags: Vec::new(),
        }
    }

    #[test]
    fn the_floor_adds_framing_packets_and_copies_where_nothing_overlaps() {
        let mib = 1 << 20;
        let mut rep = Report {
            version: 1,
            command: String::new(),
            machine: report::Machine {
                cpu_model: String::new(),
                cores: 2,
                kernel: String::new(),
                clocksource: String::new(),
                load_average: String::new(),
            },
            rounds: 1,
            sizes: vec![64, mib],
            placements: vec![Placement::Same, Placement::Cross],
            cases: Vec::new(),
            targets: Vec::new(),
            crossovers: Vec::new(),
            self_cost: None,
            framing: vec![FramingCost { size: mib, ns_per_msg: 20_000.0 }],
            notes: Vec::new(),
        };
        // memcpy of 1 MiB in 20 µs; the cheapest relay round trip counts.
        let memcpy_bps = mib as f64 / 20e-6;
        for (pl, rtt) in [(Placement::Same, 24_000), (Placement::Cross, 80_000)] {
            for v in ["Mach out-of-line", "ALPC section", "ALPC direct"] {
                rep.cases.push(case(v, "pingpong", 64, pl, rtt + 1000, 0.0));
                rep.cases.push(case(v, "stream", mib, pl, 0, memcpy_bps));
            }
            rep.cases.push(case("Mach inline", "pingpong", 64, pl, rtt, 0.0));
        }
        let f = floor(&rep, "ALPC section", mib, Placement::Same).unwrap();
        // 20 µs of copying against 20 framing + 4 × 6 µs packets.
        assert!((f.ratio - 20.0 / 44.0).abs() < 1e-9, "{f:?}");
        let f = floor(&rep, "ALPC direct", mib, Placement::Cross).unwrap();
        // 20 against 20 + 6 × 20 + one 20 µs copy.
        assert!((f.ratio - 20.0 / 160.0).abs() < 1e-9, "{f:?}");
        assert!(f.describe(0.25).starts_with("out of reach"));
        assert!(floor(&rep, "ALPC section", mib, Placement::Same).unwrap().describe(0.40).starts_with("floor 0.45×"));
        // A one-way stream overlaps across CPUs: no floor; nor without a
        // small-message relay, or the framing of that size.
        assert!(floor(&rep, "Mach out-of-line", mib, Placement::Cross).is_none());
        assert!(floor(&rep, "Mach out-of-line", mib, Placement::Same).is_some());
        rep.sizes = vec![4096, mib];
        assert!(floor(&rep, "ALPC section", mib, Placement::Same).is_none());
        rep.sizes = vec![64, mib];
        rep.framing.clear();
        assert!(floor(&rep, "ALPC section", mib, Placement::Same).is_none());
    }

    #[test]
    fn crossover_is_where_the_second_path_stays_ahead() {
        assert_eq!(crossover_point(&[(64, 10, 20), (256, 10, 9), (1024, 10, 5)]), Some(256));
        assert_eq!(crossover_point(&[(64, 10, 5), (256, 10, 20), (1024, 10, 5)]), Some(1024));
        assert_eq!(crossover_point(&[(64, 10, 20), (256, 10, 20)]), None);
        assert_eq!(crossover_point(&[]), None);
    }
}
