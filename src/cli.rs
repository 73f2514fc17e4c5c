//! The command line. Exit codes: 0 success, 2 bad arguments (one line
//! naming the valid choices), 1 a runtime failure (one line saying why).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::app::{self, TuiOptions};
use crate::i18n::Lang;
use crate::knobs::{self, Knobs};
use crate::mechanisms::{self, Kind};
use crate::session::Session;
use crate::snapshot::Snapshot;
use crate::ui::{self, Theme, View};

#[derive(Parser, Debug)]
#[command(
    name = "ipcscope",
    version,
    about = "Watch real processes communicate: pipes, FIFOs, shared memory, message queues, Mach ports and ALPC, live."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// Mechanisms to run, comma-separated, or `all`.
    #[arg(long, short, default_value = "all", global = true)]
    mechanisms: String,
    /// Set a knob, e.g. `--set consumer.rate=0` (see `ipcscope knobs`).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    /// Samples per second taken by the monitor.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100), global = true)]
    hz: u32,
    /// Language of labels and lessons: ko or en (default: from LANG).
    #[arg(long, global = true)]
    lang: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the mechanisms headless for a while, then print the rendered
    /// frame (text) or the observed Snapshot (json).
    Snapshot {
        /// Seconds to run before sampling.
        #[arg(long, default_value = "2")]
        duration: f64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Frame size for text output, WxH.
        #[arg(long, default_value = "120x36")]
        size: String,
    },
    /// List every knob with its values and default.
    Knobs,
    /// Remove what crashed runs left behind (never a live run's objects).
    Clean,
    /// A worker process (started by ipcscope itself).
    #[command(hide = true)]
    Worker {
        kind: String,
        role: String,
        #[arg(long)]
        slot: usize,
        #[arg(long = "arg")]
        args: Vec<String>,
    },
    /// Cleans up after a supervisor that died (started by ipcscope itself).
    #[command(hide = true)]
    Janitor { pid: i32, dir: PathBuf },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Format {
    Text,
    Json,
}

/// A bad-argument error: exit 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow!(Usage(msg.into()))
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(
                e.kind(),
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return 0;
            }
            // One line, not clap's page of usage.
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            eprintln!("ipcscope: {first} (see ipcscope --help)");
            return 2;
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = if e.downcast_ref::<Usage>().is_some() {
                2
            } else {
                1
            };
            eprintln!("ipcscope: {e:#}");
            code
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Some(Cmd::Worker {
            kind,
            role,
            slot,
            args,
        }) => Ok(worker(&kind, &role, slot, &args)),
        Some(Cmd::Janitor { pid, dir }) => Ok(crate::supervisor::cleanup::janitor(pid, &dir)),
        Some(Cmd::Knobs) => {
            print!("{}", knobs::listing());
            Ok(0)
        }
        Some(Cmd::Clean) => {
            let removed = crate::supervisor::sweep_stale();
            if removed.is_empty() {
                println!("nothing to clean");
            }
            for r in removed {
                println!("removed {r}");
            }
            Ok(0)
        }
        Some(Cmd::Snapshot {
            duration,
            format,
            size,
        }) => {
            let (kinds, knobs, view) = common(&cli.run)?;
            let (w, h) = parse_size(&size)?;
            if !(0.0..=3600.0).contains(&duration) || duration.is_nan() {
                return Err(usage(format!(
                    "--duration must be between 0 and 3600 seconds, got {duration}"
                )));
            }
            crate::install_panic_hook();
            let snap = headless(&kinds, knobs, cli.run.hz, Duration::from_secs_f64(duration))?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&snap)?),
                Format::Text => print!("{}", ui::render_text(&snap, &view, w, h)),
            }
            Ok(0)
        }
        None => {
            let (kinds, knobs, view) = common(&cli.run)?;
            crate::install_panic_hook();
            app::run(TuiOptions {
                kinds,
                knobs,
                hz: cli.run.hz,
                view,
            })
            .map_err(|e| {
                if e.to_string().contains("needs a terminal") || e.to_string().contains("TERM=dumb")
                {
                    usage(e.to_string())
                } else {
                    e
                }
            })?;
            Ok(0)
        }
    }
}

fn common(run: &RunArgs) -> Result<(Vec<Kind>, Knobs, View)> {
    let kinds = mechanisms::parse_list(&run.mechanisms).map_err(usage)?;
    let mut knobs = Knobs::default();
    for s in &run.set {
        knobs.set_str(s).map_err(usage)?;
    }
    let lang = match &run.lang {
        Some(l) => Lang::parse(l)
            .ok_or_else(|| usage(format!("unknown language {l:?}; choose ko or en")))?,
        None => Lang::from_env(),
    };
    let view = View {
        lang,
        theme: Theme::from_env(),
        ..View::default()
    };
    Ok((kinds, knobs, view))
}

fn parse_size(s: &str) -> Result<(u16, u16)> {
    let bad = || {
        usage(format!(
            "bad --size {s:?}: expected WIDTHxHEIGHT, e.g. 120x36 (each 1..1000)"
        ))
    };
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u16 = w.trim().parse().map_err(|_| bad())?;
    let h: u16 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 1000 || h > 1000 {
        return Err(bad());
    }
    Ok((w, h))
}

/// Run the mechanisms for `duration`, then return the last observation.
pub fn headless(kinds: &[Kind], knobs: Knobs, hz: u32, duration: Duration) -> Result<Snapshot> {
    let term = app::exit_signals()?;
    let session = Session::start(kinds, knobs, hz)?;
    let deadline = Instant::now() + duration;
    let mut last = None;
    let mut interrupted = false;
    loop {
        if term.load(std::sync::atomic::Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let now = Instant::now();
        let wait = deadline
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        match session.snapshots.recv_timeout(wait) {
            Ok(s) => last = Some(s),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= deadline {
            // One sample taken after the deadline, so the figures are fresh.
            if let Ok(s) = session.snapshots.recv_timeout(Duration::from_secs(2)) {
                last = Some(s);
            }
            break;
        }
    }
    session.shutdown();
    if interrupted {
        anyhow::bail!("interrupted");
    }
    last.ok_or_else(|| anyhow!("the monitor produced no sample"))
}

fn worker(kind: &str, role: &str, slot: usize, args: &[String]) -> i32 {
    let Some(info) = mechanisms::REGISTRY.iter().find(|i| i.kind.name() == kind) else {
        eprintln!("error: unknown mechanism {kind}");
        return 2;
    };
    let args = args
        .iter()
        .filter_map(|a| a.split_once('='))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let name = format!("{kind}-{role}");
    let mut ctx = match mechanisms::worker::init(&name, slot, args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    match (info.worker)(&mut ctx, role) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}
