//! The interactive TUI: an input thread turns keys into `Action`s, the
//! monitor sends `Snapshot`s, and the main loop applies actions to the
//! session and redraws — on a new snapshot, on input, on resize. It never
//! spins: it blocks on those channels.

pub mod input;
pub mod replay;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use crossbeam_channel::select;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use ratatui::layout::Rect;

use crate::i18n::tf;
use crate::knobs::{KnobId, Knobs};
use crate::mechanisms::Kind;
use crate::scenario::{self, Scenario};
use crate::session::{Command, Session};
use crate::snapshot::Snapshot;
use crate::ui::{self, LessonBar, Picker, View};
pub use input::Action;

pub struct TuiOptions {
    pub kinds: Vec<Kind>,
    pub knobs: Knobs,
    pub hz: u32,
    pub view: View,
    /// Write every observed snapshot here (JSON lines).
    pub record: Option<std::path::PathBuf>,
    /// Play this scripted lesson.
    pub lesson: Option<Scenario>,
}

/// Fails with a clear message when there is no terminal to draw on: we
/// never write escape codes into a file or a pipe.
pub fn check_terminal() -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("ipcscope's live view needs a terminal; for output to a file or pipe use `ipcscope snapshot --mechanisms pipe --duration 2`");
    }
    if std::env::var("TERM").is_ok_and(|t| t == "dumb") {
        bail!("TERM=dumb cannot draw the live view; use `ipcscope snapshot` for plain text, or set TERM (e.g. xterm-256color)");
    }
    Ok(())
}

/// Register SIGINT, SIGTERM, SIGHUP and SIGQUIT to raise `flag` instead of
/// killing us, so every way out goes through the cleanup.
pub fn exit_signals() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// Set by SIGINT, SIGTERM, SIGHUP or SIGQUIT in the TUI.
static EXIT: AtomicBool = AtomicBool::new(false);

/// The signals that end the TUI.
const EXIT_SIGNALS: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

extern "C" fn on_exit_signal(_: libc::c_int) {
    EXIT.store(true, Relaxed);
    // On the way out job control must not stop us again: a background
    // job touching the terminal would stop on SIGTTOU / SIGTTIN, with
    // every worker still running.
    // SAFETY: sigaction-based disposition changes are async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::signal(libc::SIGTTIN, libc::SIG_IGN);
    }
}

/// The TUI's exit signals. They reach the main thread only (every other
/// thread is started with them blocked, see `off_main`), and without
/// SA_RESTART: a main thread stopped on SIGTTOU inside a terminal call
/// (a job started in the background) comes back from it with EINTR when
/// `kill %1` sends SIGTERM and SIGCONT, instead of trying again and
/// stopping forever.
fn tui_exit_signals() -> Result<()> {
    let action = SigAction::new(SigHandler::Handler(on_exit_signal), SaFlags::empty(), SigSet::empty());
    for sig in EXIT_SIGNALS {
        // SAFETY: the handler stores to an atomic and changes dispositions.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

/// Run `f` (which starts threads) so that its threads block the exit
/// signals, and SIGTTIN: a read of the terminal by the input thread while
/// we are in the background fails with EIO rather than stopping us.
fn off_main<T>(f: impl FnOnce() -> T) -> T {
    let mut sigs = EXIT_SIGNALS.to_vec();
    sigs.push(Signal::SIGTTIN);
    crate::with_blocked(&sigs, f)
}

/// Where the user is looking: put back when a lesson is left.
#[derive(Debug, Clone, Default)]
struct Place {
    selected: usize,
    focused: bool,
    marked: Vec<Kind>,
}

impl Place {
    fn of(view: &View) -> Place {
        Place { selected: view.selected, focused: view.focused, marked: view.marked.clone() }
    }

    fn restore(self, view: &mut View) {
        view.selected = self.selected;
        view.focused = self.focused;
        view.marked = self.marked;
        view.lesson_scroll = 0;
        view.log_scroll = 0;
    }
}

/// What `Esc` goes back to from a lesson.
#[derive(Debug, Clone)]
enum Back {
    /// The lesson plays inside the run: its knobs are put back and its
    /// mechanisms restarted.
    Inside { knobs: Knobs, place: Place },
    /// The lesson needed mechanisms the run did not have, so it has a run
    /// of its own: that run of these mechanisms starts again.
    Run { kinds: Vec<Kind>, knobs: Knobs, place: Place },
    /// The lesson was what the program was started with: leaving it keeps
    /// the run going as it is.
    Nothing,
}

/// A session to start in place of the current one.
struct Next {
    kinds: Vec<Kind>,
    knobs: Knobs,
    /// A lesson to play in it, and what `Esc` goes back to (`None`: the
    /// lesson plays inside the new run, see `begin_inside`).
    lesson: Option<(Scenario, Option<Back>)>,
    place: Place,
}

/// Why the event loop returned.
enum Exit {
    Quit,
    /// Start another run (a lesson needs other mechanisms, or it was left
    /// for the run it replaced).
    Start(Box<Next>),
}

pub fn run(opts: TuiOptions) -> Result<()> {
    check_terminal()?;
    crate::TUI_MODE.store(true, Relaxed);
    tui_exit_signals()?;
    let mut recorder = opts.record.as_deref().map(crate::record::Recorder::create).transpose()?;
    let mut lesson = opts.lesson.map(|sc| (sc, Some(Back::Nothing)));
    let (kinds, knobs) = match &lesson {
        Some((sc, _)) => (sc.kinds.clone(), sc.setup.clone()),
        None => (opts.kinds, opts.knobs),
    };
    let mut session = Some(off_main(|| Session::start(&kinds, knobs, opts.hz))?);
    // A job started in the background stops in here (SIGTTOU) until `fg`;
    // `kill %1` makes it fail with EINTR.
    let mut terminal = match crate::init_terminal() {
        Ok(t) => t,
        Err(e) => {
            if let Some(s) = session.take() {
                s.shutdown();
            }
            crate::restore_terminal();
            if EXIT.load(Relaxed) {
                return Ok(());
            }
            bail!("cannot set up the terminal: {e}");
        }
    };
    let mut view = opts.view;
    let result = loop {
        let Some(s) = session.as_mut() else { break Ok(()) };
        match event_loop(&mut terminal, s, &mut view, recorder.as_mut(), lesson.take()) {
            Ok(Exit::Quit) => break Ok(()),
            Ok(Exit::Start(next)) => {
                if let Some(old) = session.take() {
                    old.shutdown();
                }
                let Next { kinds, knobs, lesson: l, place } = *next;
                match off_main(|| Session::start(&kinds, knobs, opts.hz)) {
                    Ok(s) => session = Some(s),
                    Err(e) => break Err(e),
                }
                place.restore(&mut view);
                lesson = l;
            }
            Err(e) => break Err(e),
        }
    };
    // The run goes first, then the terminal: whatever happens to the
    // terminal (we may be in the background now), nothing of the run is
    // left waiting on it.
    if let Some(s) = session {
        s.shutdown();
    }
    crate::restore_terminal();
    if let Some(r) = recorder {
        r.finish()?;
    }
    // Told to end: a thread that failed on the way (the input thread on a
    // hung-up terminal) is no error.
    if EXIT.load(Relaxed) {
        return Ok(());
    }
    result
}

/// A lesson being played: which step, since when.
struct LessonState {
    sc: Scenario,
    step: usize,
    entered: Instant,
    /// The current step's expectations all held in the last snapshot.
    observed: bool,
    /// → was pressed on the last step.
    over: bool,
    back: Back,
}

impl LessonState {
    fn new(sc: Scenario, back: Back) -> LessonState {
        LessonState { sc, step: 0, entered: Instant::now(), observed: false, over: false, back }
    }

    fn enter(&mut self, step: usize, session: &mut Session, view: &mut View) {
        self.step = step;
        self.entered = Instant::now();
        self.observed = false;
        if let Err(e) = self.sc.apply_step(step, session) {
            view.status = Some(format!("{e:#}"));
        }
    }

    fn bar(&self, snap: &Snapshot, lang: crate::i18n::Lang) -> LessonBar {
        let step = &self.sc.steps[self.step];
        LessonBar {
            title: self.sc.title.get(lang).to_string(),
            step: self.step + 1,
            total: self.sc.steps.len(),
            caption: step.caption.get(lang).to_string(),
            checks: if snap.mechanisms.is_empty() { Vec::new() } else { scenario::bar_checks(step, snap, lang) },
            over: self.over,
            show: step.show.clone(),
        }
    }
}

/// Start playing `sc` inside the running session: its setup goes to its
/// own mechanisms only (their own knobs, their own copies of the common
/// ones), they restart so it begins from a fresh state, and the screen
/// turns to them. What was there before is kept for `Esc`.
fn begin_inside(sc: Scenario, session: &mut Session, view: &mut View) -> LessonState {
    let back = Back::Inside { knobs: session.knobs(), place: Place::of(view) };
    session.set_scope(Some(sc.kinds.clone()));
    for &kind in &sc.kinds {
        let own = crate::registry::info(kind).map_or(&[][..], |i| i.knobs);
        for &id in own.iter().filter(|id| id.base().is_none()) {
            let _ = session.apply(Command::SetKnob(id, sc.setup.get(id)));
        }
        for &id in KnobId::COMMON {
            let v = match id.own_in(own).map(|o| sc.setup.get(o)) {
                Some(v) if v != crate::knobs::GLOBAL => v,
                _ => sc.setup.get(id),
            };
            session.set_for(kind, id, v);
        }
        if let Err(e) = session.apply(Command::Restart(kind)) {
            view.status = Some(format!("{e:#}"));
        }
    }
    look_at(&sc.kinds, session, view);
    LessonState::new(sc, back)
}

/// Turn the screen to `kinds`: one zoomed in, two or three side by side.
fn look_at(kinds: &[Kind], session: &Session, view: &mut View) {
    let running = session.kinds();
    view.lesson_scroll = 0;
    view.log_scroll = 0;
    if let [one] = kinds {
        view.selected = running.iter().position(|k| k == one).unwrap_or(0);
        view.focused = running.len() > 1;
        view.marked.clear();
    } else {
        view.selected = running.iter().position(|k| kinds.contains(k)).unwrap_or(0);
        view.focused = false;
        view.marked = if running.len() > kinds.len() { kinds.to_vec() } else { Vec::new() };
    }
}

/// Start playing `sc`: inside this run when it has the lesson's
/// mechanisms, else in a run of its own (`Exit::Start`).
fn begin(sc: Scenario, session: &mut Session, view: &mut View) -> Result<LessonState, Exit> {
    let running = session.kinds();
    if sc.kinds.iter().all(|k| running.contains(k)) {
        return Ok(begin_inside(sc, session, view));
    }
    let back = Back::Run { kinds: running, knobs: session.knobs(), place: Place::of(view) };
    Err(Exit::Start(Box::new(Next {
        kinds: sc.kinds.clone(),
        knobs: sc.setup.clone(),
        lesson: Some((sc, Some(back))),
        place: Place::default(),
    })))
}

/// Leave the lesson for where the user was. `Some` when that needs the
/// run it replaced to start again.
fn leave(l: LessonState, session: &mut Session, view: &mut View) -> Option<Exit> {
    view.lesson = None;
    view.status = Some(crate::i18n::t(view.lang, "lesson_left").to_string());
    match l.back {
        Back::Inside { knobs, place } => {
            session.set_scope(None);
            session.restore_knobs(&knobs);
            for &kind in &l.sc.kinds {
                if let Err(e) = session.apply(Command::Restart(kind)) {
                    view.status = Some(format!("{e:#}"));
                }
            }
            place.restore(view);
            None
        }
        Back::Run { kinds, knobs, place } => Some(Exit::Start(Box::new(Next { kinds, knobs, lesson: None, place }))),
        Back::Nothing => {
            session.set_scope(None);
            None
        }
    }
}

/// Switch from the lesson being played (if any) to `sc`.
fn pick(
    sc: Scenario,
    current: Option<LessonState>,
    session: &mut Session,
    view: &mut View,
) -> Result<LessonState, Exit> {
    let Some(cur) = current else { return begin(sc, session, view) };
    match cur.back {
        // The lesson had a run of its own: go back to the one it replaced,
        // playing the new lesson there if it has its mechanisms.
        Back::Run { kinds, knobs, place } => {
            let next = if sc.kinds.iter().all(|k| kinds.contains(k)) {
                Next { kinds, knobs, lesson: Some((sc, None)), place }
            } else {
                let back = Back::Run { kinds, knobs, place };
                Next {
                    kinds: sc.kinds.clone(),
                    knobs: sc.setup.clone(),
                    lesson: Some((sc, Some(back))),
                    place: Place::default(),
                }
            };
            Err(Exit::Start(Box::new(next)))
        }
        _ => {
            if let Some(exit) = leave(cur, session, view) {
                return Err(exit);
            }
            begin(sc, session, view)
        }
    }
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    session: &mut Session,
    view: &mut View,
    mut recorder: Option<&mut crate::record::Recorder>,
    lesson: Option<(Scenario, Option<Back>)>,
) -> Result<Exit> {
    let (input_rx, input) = off_main(input::spawn)?;
    let slow_tick = crossbeam_channel::tick(Duration::from_millis(250));
    let mut snap = Snapshot::default();
    let mut lesson = match lesson {
        // A run started for the lesson: its knobs are the lesson's already.
        Some((sc, Some(back))) => {
            look_at(&sc.kinds.clone(), session, view);
            Some(LessonState::new(sc, back))
        }
        Some((sc, None)) => Some(begin_inside(sc, session, view)),
        None => None,
    };
    if let Some(l) = lesson.as_mut() {
        l.enter(0, session, view);
        view.lesson = Some(l.bar(&snap, view.lang));
    } else {
        view.lesson = None;
    }
    // First frame at once, before the first sample arrives.
    let mut dirty = true;
    // Stopped and continued in the background: the shell has the terminal,
    // so we do not draw until we are in the foreground again.
    let mut away = false;
    let result = loop {
        if EXIT.load(Relaxed) {
            break Ok(Exit::Quit);
        }
        if !crate::in_foreground() {
            away = true;
        } else if away {
            away = false;
            crate::retake_terminal(terminal)?;
            dirty = true;
        }
        if dirty && !away {
            if let Some(l) = &lesson {
                view.lesson = Some(l.bar(&snap, view.lang));
            }
            {
                let _frame = crate::DRAW_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                terminal.draw(|f| ui::render(f, &snap, view))?;
            }
            tell_monitor(&snap, view);
            if crate::fault("panic-ui") && !snap.mechanisms.is_empty() {
                panic!("injected fault: the UI thread panics (IPCSCOPE_FAULT=panic-ui)");
            }
            dirty = false;
        }
        select! {
            recv(session.snapshots) -> s => match s {
                Ok(s) => {
                    if let Some(r) = recorder.as_deref_mut() {
                        r.write(&s)?;
                    }
                    snap = s;
                    if let Some(l) = lesson.as_mut() {
                        l.observed = scenario::check_step(&l.sc.steps[l.step], &snap).iter().all(|(_, ok)| *ok);
                    }
                    dirty = true;
                }
                Err(_) => break Err(anyhow::anyhow!("the monitor thread stopped")),
            },
            recv(input_rx) -> a => {
                let a = match a {
                    Ok(a) => a,
                    Err(_) => break Err(anyhow::anyhow!("the input thread stopped")),
                };
                dirty = true;
                // The lesson picker, when open, takes the keys; the run
                // goes on under it.
                if let Some(p) = view.picker.as_mut() {
                    match a {
                        Action::Scroll(up) | Action::Forward(up) => p.move_by(up),
                        Action::LessonScroll(down) => p.move_by(!down),
                        Action::ToggleFocus => {
                            let name = p.items[p.selected].0.clone();
                            view.picker = None;
                            match Scenario::find(&name) {
                                Ok(sc) => match pick(sc, lesson.take(), session, view) {
                                    Ok(mut l) => {
                                        l.enter(0, session, view);
                                        lesson = Some(l);
                                    }
                                    Err(exit) => break Ok(exit),
                                },
                                Err(e) => view.status = Some(format!("{e:#}")),
                            }
                        }
                        Action::Quit => break Ok(Exit::Quit),
                        _ => view.picker = None,
                    }
                    continue;
                }
                match (a, lesson.as_mut()) {
                    (Action::Quit, _) => break Ok(Exit::Quit),
                    (Action::Picker, _) => view.picker = Some(shipped_picker(view.lang)),
                    (Action::CloseOverlay, Some(_)) if !view.help => {
                        if let Some(l) = lesson.take() {
                            if let Some(exit) = leave(l, session, view) {
                                break Ok(exit);
                            }
                        }
                    }
                    (Action::Forward(true), Some(l)) => {
                        if l.step + 1 < l.sc.steps.len() {
                            let next = l.step + 1;
                            l.enter(next, session, view);
                        } else {
                            l.over = true;
                        }
                    }
                    (Action::Forward(false), Some(_)) => {}
                    (a, _) => {
                        let area = terminal.size().map(|s| Rect::new(0, 0, s.width, s.height)).unwrap_or_default();
                        apply(a, session, view, &snap, area);
                    }
                }
            },
            recv(slow_tick) -> _ => {
                if !session.monitor_alive() {
                    break Err(anyhow::anyhow!("the monitor thread stopped"));
                }
                // A step with a delay moves on by itself once what it
                // shows has been observed.
                if let Some(l) = lesson.as_mut() {
                    let due = l.sc.steps[l.step].after_ms.is_some_and(|ms| l.entered.elapsed() >= Duration::from_millis(ms));
                    if due && l.observed && l.step + 1 < l.sc.steps.len() {
                        let next = l.step + 1;
                        l.enter(next, session, view);
                        dirty = true;
                    }
                }
            },
        }
    };
    if result.as_ref().is_ok_and(|e| matches!(e, Exit::Quit)) {
        view.lesson = None;
    }
    input.stop();
    // Nothing on screen now: the monitor goes back to sampling everything.
    crate::monitor::set_shown([], None);
    result
}

/// Tell the monitor what is on screen: it samples the zoomed emulated
/// kernel's tables on every tick, and while paused only what is shown.
fn tell_monitor(snap: &Snapshot, view: &View) {
    let Some(last) = snap.mechanisms.len().checked_sub(1) else { return };
    let shown = ui::shown(snap, view).into_iter().map(|i| snap.mechanisms[i].kind);
    let zoomed = ui::zoomed(snap, view).then(|| snap.mechanisms[view.selected.min(last)].kind);
    crate::monitor::set_shown(shown, zoomed);
}

/// Apply one action: to the session (real processes, knobs) or the view.
pub fn apply(a: Action, session: &mut Session, view: &mut View, snap: &Snapshot, area: Rect) {
    let kind = snap.mechanisms.get(view.selected).map(|m| m.kind);
    view.status = None;
    let l = view.lang;
    let result = match a {
        Action::TogglePause => {
            let p = !session.sup.paused();
            session.apply(Command::SetPaused(p))
        }
        Action::ProducerRate(up) | Action::ConsumerRate(up) => {
            let id = if matches!(a, Action::ProducerRate(_)) { KnobId::ProducerRate } else { KnobId::ConsumerRate };
            if let Some(k) = kind {
                let v = session.step_knob_for(k, id, up);
                view.status = Some(tf(
                    l,
                    "st_rate_one",
                    &[("panel", k.name().into()), ("knob", id.to_string()), ("v", id.format(v))],
                ));
            }
            Ok(())
        }
        Action::ProducerRateAll(up) | Action::ConsumerRateAll(up) => {
            let id = if matches!(a, Action::ProducerRateAll(_)) { KnobId::ProducerRate } else { KnobId::ConsumerRate };
            let v = session.step_knob(id, up);
            view.status = Some(tf(l, "st_rate_all", &[("knob", id.to_string()), ("v", id.format(v))]));
            Ok(())
        }
        Action::Stall => {
            if let Some(k) = kind {
                let stalled = session.toggle_stall(k);
                let v = KnobId::ConsumerRate.format(session.effective(k, KnobId::ConsumerRate));
                let key = if stalled { "st_stalled" } else { "st_resumed" };
                view.status = Some(tf(l, key, &[("panel", k.name().into()), ("v", v)]));
            }
            Ok(())
        }
        Action::StallAll => {
            let stalled = session.toggle_stall_all();
            let v = KnobId::ConsumerRate.format(session.knob(KnobId::ConsumerRate));
            let key = if stalled { "st_stalled_all" } else { "st_resumed_all" };
            view.status = Some(tf(l, key, &[("v", v)]));
            Ok(())
        }
        Action::Kill => kind.map_or(Ok(()), |k| session.apply(Command::Kill(k))),
        Action::Restart => kind.map_or(Ok(()), |k| session.apply(Command::Restart(k))),
        Action::StepMode => session.apply(Command::SetStepMode(!snap.run.step_mode)),
        Action::Step => session.apply(Command::Step(None)),
        Action::StepSelected => kind.map_or(Ok(()), |k| session.apply(Command::Step(Some(k)))),
        view_only => {
            apply_view(view_only, view, snap, area);
            Ok(())
        }
    };
    if let Err(e) = result {
        view.status = Some(format!("{e:#}"));
    }
}

/// Most panels a comparison shows side by side.
pub const MAX_MARKED: usize = 3;

/// Actions that change only what is looked at (shared with replay).
pub fn apply_view(a: Action, view: &mut View, snap: &Snapshot, area: Rect) {
    let n = snap.mechanisms.len().max(1);
    let shown = ui::shown(snap, view);
    // Tab and → move through the panels on screen.
    let cycle = |view: &mut View, fwd: bool| {
        let pos = shown.iter().position(|&i| i == view.selected);
        let k = shown.len().max(1);
        view.selected = match pos {
            Some(p) => shown.get(if fwd { (p + 1) % k } else { (p + k - 1) % k }).copied().unwrap_or(0),
            None => shown.first().copied().unwrap_or(0),
        };
        view.lesson_scroll = 0;
    };
    match a {
        Action::Next | Action::Forward(true) => cycle(view, true),
        Action::Prev | Action::Forward(false) => cycle(view, false),
        Action::Select(i) if i < snap.mechanisms.len() => {
            view.costs = false;
            if view.selected == i {
                view.focused = !view.focused;
            } else {
                view.selected = i;
                view.focused = true;
            }
            view.lesson_scroll = 0;
        }
        Action::ToggleFocus => {
            view.costs = false;
            view.focused = !view.focused;
            view.lesson_scroll = 0;
        }
        Action::Help => view.help = !view.help,
        Action::Costs => view.costs = !view.costs,
        Action::CloseOverlay => {
            if view.help {
                view.help = false;
            } else if view.costs {
                view.costs = false;
            } else {
                view.focused = false;
            }
        }
        Action::Lang => view.lang = view.lang.toggle(),
        Action::Theme => {
            view.theme = view.theme.next();
            view.status = Some(format!("theme: {}", view.theme.name()));
        }
        Action::Scroll(back) => {
            view.log_scroll = if back { view.log_scroll + 5 } else { view.log_scroll.saturating_sub(5) };
        }
        Action::LessonScroll(down) => {
            let max = ui::lesson_scroll_max(area, snap, view);
            view.lesson_scroll =
                if down { (view.lesson_scroll + 3).min(max) } else { view.lesson_scroll.min(max).saturating_sub(3) };
        }
        Action::Mark => {
            let Some(k) = snap.mechanisms.get(view.selected.min(n - 1)).map(|m| m.kind) else { return };
            if let Some(at) = view.marked.iter().position(|&m| m == k) {
                view.marked.remove(at);
            } else if view.marked.len() >= MAX_MARKED {
                view.status = Some(tf(view.lang, "st_mark_full", &[("n", MAX_MARKED.to_string())]));
                return;
            } else {
                view.marked.push(k);
                view.marked.sort();
            }
            let names: Vec<&str> = view.marked.iter().map(|k| k.name()).collect();
            view.status = Some(tf(view.lang, "st_marked", &[("list", names.join(", "))]));
            if view.marked.len() >= 2 {
                view.focused = false;
            }
        }
        Action::ClearMarks => view.marked.clear(),
        Action::Click(x, y) if !ui::zoomed(snap, view) && !view.costs => {
            if let Some(i) = ui::panel_at(area, snap, view, x, y) {
                view.selected = i;
                view.focused = snap.mechanisms.len() > 1;
                view.lesson_scroll = 0;
            }
        }
        _ => {}
    }
}

/// The lesson picker (`L`) over the shipped lessons.
fn shipped_picker(lang: crate::i18n::Lang) -> Picker {
    let items = crate::scenario::SHIPPED
        .iter()
        .map(|(name, text)| {
            let title =
                crate::scenario::Scenario::parse(name, text).map(|s| s.title.get(lang).to_string()).unwrap_or_default();
            (name.to_string(), title)
        })
        .collect();
    Picker { items, selected: 0 }
}
