//! ipcscope: a live terminal visualizer of inter-process communication.
//!
//! Data flows one way: worker processes do real IPC and publish counters
//! (`telemetry`); the `monitor` samples them, /proc and the kernel objects
//! into a `Snapshot`; `ui` draws the snapshot. The `supervisor` owns every
//! process and object; `mechanisms` holds one module per IPC mechanism.

pub mod app;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod errno;
pub mod i18n;
pub mod knobs;
pub mod latency;
pub mod mechanisms;
pub mod message;
pub mod model;
pub mod monitor;
pub mod record;
pub mod registry;
pub mod render;
pub mod scenario;
pub mod session;
pub mod snapshot;
pub mod soak;
pub mod stdout;
pub mod supervisor;
pub mod telemetry;
pub mod trace;
pub mod ui;
pub mod userfile;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static TUI_ACTIVE: AtomicBool = AtomicBool::new(false);

/// This run draws on a terminal: its janitor gets the terminal too, to
/// give it back if we are killed outright (SIGKILL runs no handler).
pub static TUI_MODE: AtomicBool = AtomicBool::new(false);

/// Held while a frame is drawn. The panic hook takes it before it gives
/// the terminal back, so no thread draws on the main screen after that.
pub static DRAW_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn set_tui_active(on: bool) {
    TUI_ACTIVE.store(on, Relaxed);
}

/// Fault injection for the lifecycle tests: `IPCSCOPE_FAULT=panic-ui` or
/// `panic-monitor` makes that thread panic a second after the run started
/// (once every process is up), so the tests can prove a panic anywhere
/// still cleans up.
pub fn fault(name: &str) -> bool {
    static FAULT: std::sync::OnceLock<(Option<String>, std::time::Instant)> = std::sync::OnceLock::new();
    let (f, since) = FAULT.get_or_init(|| (std::env::var("IPCSCOPE_FAULT").ok(), std::time::Instant::now()));
    f.as_deref() == Some(name) && since.elapsed() > std::time::Duration::from_millis(1500)
}

/// Take over the terminal: raw mode, alternate screen, mouse reports.
/// Done by hand rather than with `ratatui::init`, whose own panic hook
/// would restore the terminal before ours can stop the UI from drawing.
pub fn init_terminal() -> std::io::Result<ratatui::DefaultTerminal> {
    use crossterm::{event::EnableMouseCapture, terminal::EnterAlternateScreen};
    crossterm::terminal::enable_raw_mode()?;
    set_tui_active(true);
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
}

/// Is our process group the terminal's foreground group? A job stopped and
/// continued in the background is not: the shell has the terminal then.
/// Without an answer (no controlling terminal, hung up) we say yes.
pub fn in_foreground() -> bool {
    use std::os::fd::AsFd;
    nix::unistd::tcgetpgrp(std::io::stdin().as_fd()).map_or(true, |fg| fg == nix::unistd::getpgrp())
}

/// Run `f` with `sigs` blocked in this thread only. Threads it starts
/// inherit the mask, and so would processes (std keeps the mask across
/// exec): the supervisor clears it in every child it starts.
pub fn with_blocked<T>(sigs: &[nix::sys::signal::Signal], f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
    let mut set = SigSet::empty();
    for &s in sigs {
        set.add(s);
    }
    let mut old = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).is_ok();
    let r = f();
    if blocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    }
    r
}

/// Give the terminal back: mouse reporting off, main screen, cursor shown,
/// raw mode off. Safe to call more than once, from any thread, in the
/// background too: it never stops the process (SIGTTOU is blocked, so the
/// kernel lets it through), and there it leaves the terminal's modes to
/// the foreground job (the shell restored its own when we were stopped).
pub fn restore_terminal() {
    use crossterm::{cursor::Show, event::DisableMouseCapture, terminal::LeaveAlternateScreen};
    if !TUI_ACTIVE.swap(false, Relaxed) {
        return;
    }
    with_blocked(&[nix::sys::signal::Signal::SIGTTOU], || {
        let fg = in_foreground();
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
        if fg {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    });
}

/// Take the terminal again after a stretch in the background (stopped,
/// `fg`): the shell set its own modes meanwhile and drew on the screen.
pub fn retake_terminal(terminal: &mut ratatui::DefaultTerminal) -> std::io::Result<()> {
    use crossterm::{event::EnableMouseCapture, terminal::EnterAlternateScreen};
    // crossterm keeps the first saved mode; forget it, then save the shell's.
    let _ = crossterm::terminal::disable_raw_mode();
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    terminal.clear()
}

/// On a panic in any thread: kill every process and remove every object of
/// the run (`cleanup`, the supervisor's, handed in from above), give the
/// terminal back, say what happened, and exit. A
/// panicking monitor thread must not leave the UI drawing on a restored
/// terminal, so the whole program ends here.
pub fn install_panic_hook(cleanup: fn()) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Held until _exit: a UI thread that is still running stops at its
        // next frame instead of drawing over the restored screen. A panic
        // inside draw holds it already, so only wait a moment for it.
        let mut _frame_guard = None;
        for _ in 0..40 {
            match DRAW_LOCK.try_lock() {
                Ok(g) => {
                    _frame_guard = Some(g);
                    break;
                }
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    _frame_guard = Some(p.into_inner());
                    break;
                }
                Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        // The run first: giving the terminal back must not be what keeps
        // the workers alive (it cannot stop us now, but it can block on a
        // terminal nobody reads).
        cleanup();
        restore_terminal();
        default(info);
        // SAFETY: ending the process after cleanup; nothing else to unwind.
        unsafe { libc::_exit(101) };
    }));
}
