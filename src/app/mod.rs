//! The interactive TUI: an input thread turns keys into `Action`s, the
//! monitor sends `Snapshot`s, and the main loop applies actions to the
//! session and redraws — on a new snapshot, on input, on resize. It never
//! spins: it blocks on those channels.

pub mod input;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use crossbeam_channel::select;

use crate::knobs::Knobs;
use crate::mechanisms::Kind;
use crate::session::{Command, Session};
use crate::snapshot::Snapshot;
use crate::ui::{self, View};
pub use input::Action;

pub struct TuiOptions {
    pub kinds: Vec<Kind>,
    pub knobs: Knobs,
    pub hz: u32,
    pub view: View,
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

pub fn run(opts: TuiOptions) -> Result<()> {
    check_terminal()?;
    let term_flag = exit_signals()?;
    let mut session = Session::start(&opts.kinds, opts.knobs, opts.hz)?;
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            session.shutdown();
            bail!("cannot set up the terminal: {e}");
        }
    };
    crate::set_tui_active(true);
    let result = event_loop(&mut terminal, &mut session, opts.view, &term_flag);
    crate::set_tui_active(false);
    ratatui::restore();
    session.shutdown();
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    session: &mut Session,
    mut view: View,
    term_flag: &AtomicBool,
) -> Result<()> {
    let (input_rx, input) = input::spawn()?;
    let slow_tick = crossbeam_channel::tick(Duration::from_millis(250));
    let mut snap = Snapshot::default();
    // First frame at once, before the first sample arrives.
    let mut dirty = true;
    let result = loop {
        if term_flag.load(Relaxed) {
            break Ok(());
        }
        if dirty {
            terminal.draw(|f| ui::render(f, &snap, &view))?;
            dirty = false;
        }
        select! {
            recv(session.snapshots) -> s => match s {
                Ok(s) => { snap = s; dirty = true; }
                Err(_) => break Err(anyhow::anyhow!("the monitor thread stopped")),
            },
            recv(input_rx) -> a => match a {
                Ok(Action::Quit) => break Ok(()),
                Ok(a) => { apply(a, session, &mut view, &snap); dirty = true; }
                Err(_) => break Err(anyhow::anyhow!("the input thread stopped")),
            },
            recv(slow_tick) -> _ => {
                if !session.monitor_alive() {
                    break Err(anyhow::anyhow!("the monitor thread stopped"));
                }
            },
        }
    };
    input.stop();
    result
}

/// Apply one action: to the session (real processes, knobs) or the view.
pub fn apply(a: Action, session: &mut Session, view: &mut View, snap: &Snapshot) {
    let kind = snap.mechanisms.get(view.selected).map(|m| m.kind);
    view.status = None;
    let n = snap.mechanisms.len().max(1);
    let result = match a {
        Action::Quit | Action::Redraw => Ok(()),
        Action::TogglePause => {
            let p = !session.sup.paused();
            session.apply(Command::SetPaused(p))
        }
        Action::ProducerRate(up) => {
            let v = session.step_knob("producer.rate", up);
            view.status = Some(format!(
                "producer.rate = {}",
                crate::knobs::spec("producer.rate")
                    .map(|s| s.format(v))
                    .unwrap_or_default()
            ));
            Ok(())
        }
        Action::ConsumerRate(up) => {
            let v = session.step_knob("consumer.rate", up);
            view.status = Some(format!(
                "consumer.rate = {}",
                crate::knobs::spec("consumer.rate")
                    .map(|s| s.format(v))
                    .unwrap_or_default()
            ));
            Ok(())
        }
        Action::Kill => kind.map_or(Ok(()), |k| session.apply(Command::Kill(k))),
        Action::Restart => kind.map_or(Ok(()), |k| session.apply(Command::Restart(k))),
        Action::Next => {
            view.selected = (view.selected + 1) % n;
            Ok(())
        }
        Action::Prev => {
            view.selected = (view.selected + n - 1) % n;
            Ok(())
        }
        Action::Select(i) => {
            if i < snap.mechanisms.len() {
                if view.selected == i {
                    view.focused = !view.focused;
                } else {
                    view.selected = i;
                    view.focused = true;
                }
            }
            Ok(())
        }
        Action::ToggleFocus => {
            view.focused = !view.focused;
            Ok(())
        }
        Action::Help => {
            view.help = !view.help;
            Ok(())
        }
        Action::CloseOverlay => {
            if view.help {
                view.help = false;
            } else {
                view.focused = false;
            }
            Ok(())
        }
        Action::Lang => {
            view.lang = view.lang.toggle();
            Ok(())
        }
        Action::StepMode => session.apply(Command::SetStepMode(!snap.run.step_mode)),
        Action::Step => session.apply(Command::Step(None)),
    };
    if let Err(e) = result {
        view.status = Some(format!("{e:#}"));
    }
}
