//! The command line. Exit codes: 0 success, 2 bad arguments (one line
//! naming the valid choices), 1 a runtime failure (one line saying why).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::app::{self, TuiOptions};
use crate::i18n::Lang;
use crate::knobs::{self, Knobs};
use crate::mechanisms;
use crate::model::Kind;
use crate::scenario::Scenario;
use crate::session::Session;
use crate::snapshot::Snapshot;
use crate::stdout::{out, outln};
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
    /// Colour theme: default, projector, light or mono (NO_COLOR: mono).
    #[arg(long, global = true)]
    theme: Option<String>,
    /// Record every observed snapshot to FILE for `replay` (compressed:
    /// 5–8 MB per 10 minutes of all seven mechanisms).
    #[arg(long, value_name = "FILE", global = true)]
    record: Option<PathBuf>,
    /// Write the run as a trace (Chrome Trace Event JSON: open it in
    /// ui.perfetto.dev or chrome://tracing): every process, each call it
    /// made, one arrow per message, each channel's depth.
    #[arg(long, value_name = "FILE", global = true)]
    trace: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the mechanisms headless for a while, then print the rendered
    /// frame (text) or the observed Snapshot (json).
    Snapshot {
        /// Seconds to run before sampling.
        #[arg(long, default_value = "2")]
        duration: f64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Frame size for text output, WxH.
        #[arg(long, default_value = "120x36")]
        size: String,
    },
    /// Play a scripted lesson (`ipcscope lesson pipe-blocking --lang ko`):
    /// → moves to the next step. `--list` shows the shipped lessons;
    /// `--check` plays one headless and checks every step's observation.
    /// `--coverage` lists the lecture notes' 39 claims with the step that
    /// shows each; with `--check` each is played at `--size` and marked ✓
    /// only when the observation holds and its words are on screen.
    Lesson {
        /// A shipped lesson's name, or a scenario .toml file (with
        /// --coverage: only that lesson's claims).
        name: Option<String>,
        /// List the shipped lessons.
        #[arg(long)]
        list: bool,
        /// Play the lesson headless and check every step's observation.
        #[arg(long)]
        check: bool,
        /// The lecture notes' claims, each with the lesson step that shows it.
        #[arg(long)]
        coverage: bool,
        /// Screen size the coverage check draws at, WxH.
        #[arg(long, default_value = "80x24")]
        size: String,
        /// With --coverage --check: print the screen looked at for each claim not shown.
        #[arg(long)]
        frames: bool,
    },
    /// Show a recording made with --record: the same UI, with pause,
    /// seek and speed. Needs no Linux IPC.
    Replay {
        /// The recording.
        file: PathBuf,
        /// Read the whole recording, print what it holds, and exit (no
        /// terminal needed).
        #[arg(long)]
        check: bool,
    },
    /// Draw one recorded instant headless, as text or SVG (`ipcscope
    /// render demo.rec --at 2.5 --size 160x45 --format svg > frame.svg`).
    /// Needs no Linux IPC.
    Render {
        /// The recording.
        file: PathBuf,
        /// Seconds on the recording's timeline, as replay shows it
        /// (default: its last instant).
        #[arg(long, allow_negative_numbers = true)]
        at: Option<f64>,
        /// Frame size, WxH.
        #[arg(long, default_value = "120x36")]
        size: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FrameFormat::Text)]
        format: FrameFormat,
        /// Zoom in on panel N (1 = the first, as the digit keys).
        #[arg(long, value_name = "N")]
        focus: Option<usize>,
    },
    /// Every mechanism at full speed for a while, the monitor at 20 Hz and
    /// every frame rendered off-screen; then the verdict: nothing lost,
    /// memory and descriptors flat, no zombies.
    Soak {
        /// Minutes to run.
        #[arg(long, default_value_t = 1.0)]
        minutes: f64,
    },
    /// List every knob with its values and default.
    Knobs,
    /// Remove what crashed runs left behind (never a live run's objects).
    Clean,
    /// Measure every mechanism against a raw baseline in the same run
    /// (`--self`: also the visualizer's own cost). Takes a while.
    Bench(crate::bench::BenchArgs),
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
    /// An emulated kernel process (`kernel mach`, `kernel nt`; started by
    /// ipcscope itself).
    #[command(hide = true)]
    Kernel {
        name: String,
        #[arg(long)]
        slot: usize,
        #[arg(long = "arg")]
        args: Vec<String>,
    },
    /// Cleans up after a supervisor that died (started by ipcscope itself).
    #[command(hide = true)]
    Janitor {
        pid: i32,
        dir: PathBuf,
        #[arg(long)]
        restore_tty: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Format {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum FrameFormat {
    Text,
    Svg,
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

/// The language the help speaks, known before the arguments are parsed:
/// `--lang X` or `--lang=X`, else `LANG` (an unknown one: `LANG`; the
/// parse that follows says what is wrong with it).
fn help_lang(args: &[std::ffi::OsString]) -> Lang {
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        let value = match a.strip_prefix("--lang=") {
            Some(v) => Some(v.to_string()),
            None if a == "--lang" => it.next().map(|v| v.to_string()),
            None if a == "--" => break,
            None => continue,
        };
        return value.as_deref().and_then(Lang::parse).unwrap_or_else(Lang::from_env);
    }
    Lang::from_env()
}

/// The command line as clap reads it, its help in `lang`: every about and
/// help text from `cli_*` in assets/locales.toml (English where a key is
/// missing), the headings, usage lines, defaults and choices in words.
fn command(lang: Lang) -> clap::Command {
    let mut cmd = Cli::command();
    if lang == Lang::En {
        return cmd;
    }
    // Built first, so the generated help/version flags and the global
    // options copied into each subcommand are there to translate.
    cmd.build();
    localize(cmd, lang, None)
}

fn localize(cmd: clap::Command, lang: Lang, sub: Option<&str>) -> clap::Command {
    use crate::i18n::{lookup, t};
    let about = match sub {
        None => lookup(lang, "cli_about"),
        Some(name) => lookup(lang, &format!("cli_{name}")),
    };
    let mut cmd = cmd;
    if let Some(a) = about {
        cmd = cmd.about(a).long_about(None);
    }
    // The usage line with its placeholders in words.
    let positionals: Vec<String> = cmd
        .get_positionals()
        .filter(|a| !a.is_hide_set())
        .map(|a| {
            let name = a
                .get_value_names()
                .and_then(|v| v.first())
                .map_or_else(|| a.get_id().as_str().to_ascii_uppercase(), |v| v.to_string());
            if a.is_required_set() {
                format!("<{name}>")
            } else {
                format!("[{name}]")
            }
        })
        .collect();
    let mut usage = format!("ipcscope {}[{}]", sub.map_or(String::new(), |s| format!("{s} ")), t(lang, "cli_options"));
    for p in &positionals {
        usage.push(' ');
        usage.push_str(p);
    }
    if sub.is_none() {
        usage.push_str(&format!(" [{}]", t(lang, "cli_commands")));
    }
    cmd = cmd
        .override_usage(usage)
        .help_template(format!(
            "{{about-with-newline}}\n{} {{usage}}\n\n{{all-args}}{{after-help}}",
            t(lang, "cli_usage_heading")
        ))
        .subcommand_help_heading(t(lang, "cli_commands"));
    cmd = cmd.mut_args(|a| {
        let name = a.get_long().unwrap_or(a.get_id().as_str()).replace('-', "_");
        let own = sub.and_then(|s| lookup(lang, &format!("cli_{s}_{name}")));
        let mut help = own.or_else(|| lookup(lang, &format!("cli_arg_{name}"))).map(str::to_string);
        let takes = a.get_action().takes_values();
        if help.is_none() && !takes {
            return a.help_heading(t(lang, "cli_options"));
        }
        let mut text = help.take().unwrap_or_else(|| a.get_help().map(|h| h.to_string()).unwrap_or_default());
        if takes {
            let defaults: Vec<String> =
                a.get_default_values().iter().map(|v| format!("`{}`", v.to_string_lossy())).collect();
            if !defaults.is_empty() && !a.is_hide_default_value_set() {
                text.push_str(&format!(" [{}: {}]", t(lang, "cli_default"), defaults.join(", ")));
            }
            let choices: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| format!("`{}`", v.get_name()))
                .collect();
            if !choices.is_empty() && !a.is_hide_possible_values_set() {
                text.push_str(&format!(" [{}: {}]", t(lang, "cli_possible"), choices.join(", ")));
            }
        }
        let heading = if a.is_positional() { t(lang, "cli_arguments") } else { t(lang, "cli_options") };
        a.help(text).long_help(None).hide_default_value(true).hide_possible_values(true).help_heading(heading)
    });
    cmd.mut_subcommands(|s| {
        let name = s.get_name().to_string();
        localize(s, lang, Some(&name))
    })
}

pub fn main() -> i32 {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed =
        command(help_lang(&args)).try_get_matches_from(&args).and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(e.kind(), DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand) {
                let _ = e.print();
                return 0;
            }
            // One line, not clap's page of usage.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments").trim_start_matches("error: ");
            eprintln!("ipcscope: {first} (see ipcscope --help)");
            return 2;
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = if e.downcast_ref::<Usage>().is_some() { 2 } else { 1 };
            eprintln!("ipcscope: {e:#}");
            code
        }
    }
}

/// The hidden subcommands are run by the supervisor, which sets `marker`
/// (`IPCSCOPE_SUPERVISOR`, or `IPCSCOPE_JANITOR_OF` for the janitor); by
/// hand they are a usage mistake, not a crash.
fn started_by_ipcscope(what: &str, marker: &str) -> Result<()> {
    if std::env::var_os(marker).is_none() {
        return Err(usage(format!("{what} is started by ipcscope itself, not by hand")));
    }
    Ok(())
}

fn dispatch(cli: Cli) -> Result<i32> {
    // `--record` is global so that `snapshot` and `lesson` take it after
    // their name; the commands that observe nothing refuse it.
    let observes =
        matches!(cli.cmd, None | Some(Cmd::Snapshot { .. }) | Some(Cmd::Lesson { .. }) | Some(Cmd::Replay { .. }));
    if cli.run.record.is_some() && !observes {
        return Err(usage("--record goes with the live view, `snapshot` or `lesson`: this command records nothing"));
    }
    let live = matches!(cli.cmd, None | Some(Cmd::Snapshot { .. }) | Some(Cmd::Lesson { list: false, .. }));
    if cli.run.trace.is_some() && !live {
        return Err(usage(
            "--trace goes with the live view, `snapshot` or `lesson`: this command runs nothing to trace",
        ));
    }
    if let Some(p) = &cli.run.trace {
        // Bad arguments are said before the file is touched; a bad path
        // is refused before anything starts.
        common(&cli.run)?;
        crate::trace::start(p).map_err(|e| usage(format!("{e:#}")))?;
    }
    let code = dispatch_cmd(cli);
    let traced = crate::trace::finish();
    let code = code?;
    traced?;
    Ok(code)
}

fn dispatch_cmd(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Some(Cmd::Worker { kind, role, slot, args }) => {
            started_by_ipcscope("worker", crate::supervisor::ENV_SUPERVISOR)?;
            Ok(worker(&kind, &role, slot, &args))
        }
        // A kernel is its mechanism's worker in the role "kernel"; NT's is
        // named for the kernel, not the mechanism.
        Some(Cmd::Kernel { name, slot, args }) => {
            started_by_ipcscope("kernel", crate::supervisor::ENV_SUPERVISOR)?;
            let kind = if name == "nt" { "alpc" } else { name.as_str() };
            Ok(worker(kind, "kernel", slot, &args))
        }
        Some(Cmd::Bench(args)) => crate::bench::main(args, &cli.run.mechanisms),
        Some(Cmd::Janitor { pid, dir, restore_tty }) => {
            started_by_ipcscope("janitor", crate::supervisor::ENV_JANITOR_OF)?;
            Ok(crate::supervisor::cleanup::janitor(pid, &dir, restore_tty))
        }
        Some(Cmd::Lesson { name, list, check, coverage, size, frames }) => {
            let (_, _, view) = common(&cli.run)?;
            if coverage {
                if cli.run.record.is_some() || cli.run.trace.is_some() {
                    return Err(usage("--record and --trace do not go with --coverage"));
                }
                let size = parse_size(&size)?;
                if size.0 < crate::ui::MIN_WIDTH || size.1 < crate::ui::MIN_HEIGHT {
                    return Err(usage(format!(
                        "--size {}x{} is below the smallest screen ({}x{})",
                        size.0,
                        size.1,
                        crate::ui::MIN_WIDTH,
                        crate::ui::MIN_HEIGHT
                    )));
                }
                return lesson_coverage(name.as_deref(), check, size, frames, view.lang);
            }
            if frames {
                return Err(usage("--frames goes with --coverage --check"));
            }
            if list || name.is_none() {
                for (n, text) in crate::scenario::SHIPPED {
                    let title =
                        Scenario::parse(n, text).map(|s| s.title.get(view.lang).to_string()).unwrap_or_default();
                    outln!("{n:<20} {title}");
                }
                return Ok(0);
            }
            let sc = Scenario::find(name.as_deref().unwrap_or_default()).map_err(|e| usage(format!("{e:#}")))?;
            if check && cli.run.record.is_some() {
                return Err(usage("--record goes with a lesson played live, not with --check"));
            }
            check_record_target(&cli.run.record)?;
            crate::install_panic_hook(crate::supervisor::cleanup::emergency_cleanup);
            if check {
                let exe = std::env::current_exe()?;
                let reports = crate::scenario::play_headless(&sc, exe, Duration::from_secs(10))?;
                let mut ok = true;
                for r in &reports {
                    outln!("{} step {}/{}: {}", sc.name, r.step, sc.steps.len(), r.detail);
                    ok &= r.passed;
                }
                ok &= reports.len() == sc.steps.len();
                return Ok(if ok { 0 } else { 1 });
            }
            let opts = TuiOptions {
                kinds: sc.kinds.clone(),
                knobs: sc.setup.clone(),
                hz: cli.run.hz,
                view,
                record: cli.run.record,
                lesson: Some(sc),
            };
            app::run(opts).map_err(tty_usage)?;
            Ok(0)
        }
        Some(Cmd::Replay { file, check }) => {
            let (_, _, view) = common(&cli.run)?;
            if cli.run.record.is_some() {
                return Err(usage("--record does not go with replay (the recording is already made)"));
            }
            let mut rec = crate::record::Recording::open(&file).map_err(|e| usage(format!("{e:#}")))?;
            if check {
                println!("{}", rec.check().map_err(|e| usage(format!("{e:#}")))?);
                return Ok(0);
            }
            let player = app::replay::Player::new(rec).map_err(|e| usage(format!("{e:#}")))?;
            app::replay::run(player, view).map_err(tty_usage)?;
            Ok(0)
        }
        Some(Cmd::Render { file, at, size, format, focus }) => {
            let (kinds, _, view) = common(&cli.run)?;
            if !cli.run.set.is_empty() {
                return Err(usage("--set does not go with render (the recording is already made)"));
            }
            let (width, height) = parse_size(&size)?;
            let format = match format {
                FrameFormat::Text => crate::render::Format::Text,
                FrameFormat::Svg => crate::render::Format::Svg,
            };
            let req = crate::render::Request { at, width, height, format, focus, kinds, view };
            match crate::render::render(&file, &req) {
                Ok(frame) => out!("{frame}"),
                Err(crate::render::Error::Input(e)) => return Err(usage(e)),
                Err(crate::render::Error::Other(e)) => return Err(e),
            }
            Ok(0)
        }
        Some(Cmd::Soak { minutes }) => {
            let (kinds, knobs, _) = common(&cli.run)?;
            if !(0.05..=1440.0).contains(&minutes) {
                return Err(usage(format!("--minutes must be between 0.05 and 1440, got {minutes}")));
            }
            crate::install_panic_hook(crate::supervisor::cleanup::emergency_cleanup);
            let exe = std::env::current_exe()?;
            let r = crate::soak::run(&kinds, knobs, Duration::from_secs_f64(minutes * 60.0), exe)?;
            out!("{}", r.text());
            Ok(if r.passed() { 0 } else { 1 })
        }
        Some(Cmd::Knobs) => {
            let (_, _, view) = common(&cli.run)?;
            out!("{}", knobs::listing_in(view.lang));
            Ok(0)
        }
        Some(Cmd::Clean) => {
            let r = crate::supervisor::sweep_stale();
            if let Some(line) = r.refused {
                // Nothing was read or removed under a base that is not ours.
                eprintln!("ipcscope: {line}");
                return Ok(1);
            }
            if r.is_empty() {
                outln!("nothing to clean");
            }
            for l in &r.removed {
                outln!("removed {l}");
            }
            for l in &r.left {
                outln!("left {l}");
            }
            for l in &r.ignored {
                outln!("ignored {l}");
            }
            for l in &r.failed {
                eprintln!("ipcscope: could not remove {l}");
            }
            Ok(if r.failed.is_empty() { 0 } else { 1 })
        }
        Some(Cmd::Snapshot { duration, format, size }) => {
            let (kinds, knobs, view) = common(&cli.run)?;
            let (w, h) = parse_size(&size)?;
            if !(0.0..=3600.0).contains(&duration) || duration.is_nan() {
                return Err(usage(format!("--duration must be between 0 and 3600 seconds, got {duration}")));
            }
            // Created before anything starts: a bad path is refused at once.
            let mut rec = match &cli.run.record {
                Some(p) => Some(crate::record::Recorder::create(p).map_err(|e| usage(format!("{e:#}")))?),
                None => None,
            };
            crate::install_panic_hook(crate::supervisor::cleanup::emergency_cleanup);
            let snap = headless(&kinds, knobs, cli.run.hz, Duration::from_secs_f64(duration), rec.as_mut());
            if let Some(r) = rec {
                r.finish()?;
            }
            let snap = snap?;
            match format {
                Format::Json => outln!("{}", serde_json::to_string_pretty(&snap)?),
                Format::Text => out!("{}", ui::render_text(&snap, &view, w, h)),
            }
            Ok(verdict(&snap))
        }
        None => {
            let (kinds, knobs, view) = common(&cli.run)?;
            check_record_target(&cli.run.record)?;
            crate::install_panic_hook(crate::supervisor::cleanup::emergency_cleanup);
            let opts = TuiOptions { kinds, knobs, hz: cli.run.hz, view, record: cli.run.record, lesson: None };
            app::run(opts).map_err(tty_usage)?;
            Ok(0)
        }
    }
}

/// `--record` at a FIFO, device, directory or symlink is refused before
/// anything starts (the TUI creates the file itself, safely, later).
fn check_record_target(record: &Option<PathBuf>) -> Result<()> {
    match record {
        Some(p) => crate::userfile::check_writable(p).map_err(|e| usage(format!("{e:#}"))),
        None => Ok(()),
    }
}

/// A missing or unusable terminal is the caller's mistake: exit 2.
fn tty_usage(e: anyhow::Error) -> anyhow::Error {
    if e.to_string().contains("needs a terminal") || e.to_string().contains("TERM=dumb") {
        usage(e.to_string())
    } else {
        e
    }
}

fn common(run: &RunArgs) -> Result<(Vec<Kind>, Knobs, View)> {
    let kinds = crate::registry::parse_list(&run.mechanisms).map_err(usage)?;
    let mut knobs = Knobs::default();
    for s in &run.set {
        knobs.set_str(s).map_err(usage)?;
    }
    let lang = match &run.lang {
        Some(l) => Lang::parse(l).ok_or_else(|| usage(format!("unknown language {l:?}; choose ko or en")))?,
        None => Lang::from_env(),
    };
    let theme = match &run.theme {
        Some(t) => Theme::parse(t)
            .ok_or_else(|| usage(format!("unknown theme {t:?}; choose default, projector, light or mono")))?,
        None => Theme::from_env(),
    };
    let view = View { lang, theme, ..View::default() };
    Ok((kinds, knobs, view))
}

/// `lesson --coverage`: one row per claim, `N  claim  lesson:step  ✓/✗`,
/// a reason under each ✗, and the count. Exit 0 only when every row is ✓.
fn lesson_coverage(only: Option<&str>, check: bool, size: (u16, u16), frames: bool, lang: Lang) -> Result<i32> {
    use crate::scenario::coverage::{self, Seen, Status};
    let mut claims = coverage::shipped()?;
    if let Some(n) = only {
        let sc = Scenario::find(n).map_err(|e| usage(format!("{e:#}")))?;
        claims.retain(|c| c.lesson.as_deref() == Some(sc.name.as_str()));
        if claims.is_empty() {
            return Err(usage(format!("no claim of the notes is mapped to lesson {n:?}")));
        }
    }
    let seen = if check {
        crate::install_panic_hook(crate::supervisor::cleanup::emergency_cleanup);
        coverage::check(&claims, std::env::current_exe()?, size, lang, Duration::from_secs(10))?
    } else {
        claims
            .iter()
            .map(|c| {
                let status = match &c.missing {
                    Some(why) => Status::Missing(why.get(lang).to_string()),
                    None => Status::Unchecked,
                };
                (c.id, Seen { status, frame: String::new() })
            })
            .collect()
    };
    let pad = |s: &str, w: usize| {
        let n = unicode_width::UnicodeWidthStr::width(s);
        format!("{s}{}", " ".repeat(w.saturating_sub(n)))
    };
    let text_w = claims.iter().map(|c| unicode_width::UnicodeWidthStr::width(c.text.get(lang))).max().unwrap_or(0);
    let place_w = claims.iter().map(|c| c.place().len()).max().unwrap_or(0);
    let mut shown = 0;
    for c in &claims {
        let s = &seen[&c.id];
        shown += usize::from(s.status == Status::Shown);
        outln!("{:>2}  {}  {}  {}", c.id, pad(c.text.get(lang), text_w), pad(&c.place(), place_w), s.status.mark());
        if let Status::NotShown(why) | Status::Missing(why) = &s.status {
            outln!("    {why}");
            if frames && !s.frame.is_empty() {
                for l in s.frame.lines() {
                    outln!("    | {l}");
                }
            }
        }
    }
    outln!("{shown}/{}", claims.len());
    Ok(if shown == claims.len() { 0 } else { 1 })
}

fn parse_size(s: &str) -> Result<(u16, u16)> {
    let bad = || usage(format!("bad --size {s:?}: expected WIDTHxHEIGHT, e.g. 120x36 (each 1..1000)"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u16 = w.trim().parse().map_err(|_| bad())?;
    let h: u16 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 1000 || h > 1000 {
        return Err(bad());
    }
    Ok((w, h))
}

/// Run the mechanisms for `duration`, then return the last observation.
/// Every sample is written to `record`, if given.
pub fn headless(
    kinds: &[Kind],
    knobs: Knobs,
    hz: u32,
    duration: Duration,
    mut record: Option<&mut crate::record::Recorder>,
) -> Result<Snapshot> {
    let term = app::exit_signals()?;
    let session = Session::start(kinds, knobs, hz)?;
    let deadline = Instant::now() + duration;
    let mut last = None;
    let mut interrupted = false;
    let mut failed = None;
    let mut keep = |s: Snapshot, last: &mut Option<Snapshot>| -> Result<()> {
        if let Some(r) = record.as_deref_mut() {
            r.write(&s)?;
        }
        *last = Some(s);
        Ok(())
    };
    loop {
        if term.load(std::sync::atomic::Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        let now = Instant::now();
        let wait = deadline.saturating_duration_since(now).min(Duration::from_millis(100));
        match session.snapshots.recv_timeout(wait) {
            Ok(s) => {
                if let Err(e) = keep(s, &mut last) {
                    failed = Some(e);
                    break;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= deadline {
            // One sample taken after the deadline, so the figures are fresh.
            if let Ok(s) = session.snapshots.recv_timeout(Duration::from_secs(2)) {
                failed = keep(s, &mut last).err();
            }
            break;
        }
    }
    session.shutdown();
    if let Some(e) = failed {
        return Err(e);
    }
    if interrupted {
        anyhow::bail!("interrupted");
    }
    last.ok_or_else(|| anyhow!("the monitor produced no sample"))
}

fn worker(kind: &str, role: &str, slot: usize, args: &[String]) -> i32 {
    let Some(info) = crate::registry::REGISTRY.iter().find(|i| i.kind.name() == kind) else {
        eprintln!("error: unknown mechanism {kind}");
        return 2;
    };
    let args = args.iter().filter_map(|a| a.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    let name = if role == "kernel" { format!("{kind}-kernel") } else { format!("{kind}-{role}") };
    let mut ctx = match mechanisms::worker::init(&name, slot, args) {
        Ok(c) => c,
        Err(e) => {
            // Starting needs a few descriptors of its own (the telemetry
            // page is kept above fd 10): a very low limit is the likely cause.
            let nofile = crate::supervisor::limit_text("RLIMIT_NOFILE", nix::sys::resource::Resource::RLIMIT_NOFILE, 1)
                .filter(|_| nofile_below(64))
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            eprintln!("error: {}{nofile}", crate::session::explain(&e));
            return 1;
        }
    };
    ctx.own_knobs = info.knobs;
    match (info.worker)(&mut ctx, role) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

fn nofile_below(n: u64) -> bool {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).is_ok_and(|(soft, _)| soft < n)
}

/// The exit code of a headless run that produced `snap`: 1, with a line
/// each on stderr, when a mechanism did not start, a worker ended at
/// start, or a mechanism has no process left and one of them failed. A
/// stalled consumer or producers that sent `producer.count` and ended
/// cleanly are a success.
fn verdict(snap: &Snapshot) -> i32 {
    let mut lines = snap.run.problems.clone();
    for m in &snap.mechanisms {
        let running = m.processes.iter().any(|p| p.exit.is_none() && p.pid > 0);
        let failed = m.processes.iter().find(|p| p.exit.as_deref().is_some_and(|e| e != "exit 0"));
        let said = lines.iter().any(|l| l.starts_with(&format!("{} ", m.kind.name())));
        if let (false, Some(p), false) = (running, failed, said) {
            let how = p.exit.as_deref().unwrap_or_default();
            lines.push(format!("{} {} ended ({how}); no {} process is left", m.kind.name(), p.role, m.kind.name()));
        }
    }
    for l in group_ended_at_start(&lines) {
        eprintln!("ipcscope: {l}");
    }
    if lines.is_empty() {
        0
    } else {
        1
    }
}

/// Workers that ended at start for the same reason (every one of them,
/// under a low limit) as one line: `3 workers ended at start (pipe
/// producer, fifo reader, fifo writer-1): why`.
fn group_ended_at_start(lines: &[String]) -> Vec<String> {
    const MARK: &str = " ended at start: ";
    let mut out: Vec<String> = Vec::new();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for l in lines {
        match l.split_once(MARK) {
            Some((who, why)) => match groups.iter_mut().find(|(w, _)| w == why) {
                Some((_, whos)) => whos.push(who.to_string()),
                None => groups.push((why.to_string(), vec![who.to_string()])),
            },
            None => out.push(l.clone()),
        }
    }
    for (why, whos) in groups {
        if let [who] = whos.as_slice() {
            out.push(format!("{who}{MARK}{why}"));
        } else {
            out.push(format!("{} workers ended at start ({}): {why}", whos.len(), whos.join(", ")));
        }
    }
    out
}
