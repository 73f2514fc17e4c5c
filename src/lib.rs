//! ipcscope: a live terminal visualizer of inter-process communication.
//!
//! Data flows one way: worker processes do real IPC and publish counters
//! (`telemetry`); the `monitor` samples them, /proc and the kernel objects
//! into a `Snapshot`; `ui` draws the snapshot. The `supervisor` owns every
//! process and object; `mechanisms` holds one module per IPC mechanism.

pub mod app;
pub mod cli;
pub mod i18n;
pub mod knobs;
pub mod mechanisms;
pub mod message;
pub mod monitor;
pub mod record;
pub mod scenario;
pub mod session;
pub mod snapshot;
pub mod supervisor;
pub mod telemetry;
pub mod ui;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static TUI_ACTIVE: AtomicBool = AtomicBool::new(false);

pub fn set_tui_active(on: bool) {
    TUI_ACTIVE.store(on, Relaxed);
}

/// Give the terminal back: mouse reporting off, raw mode off, main screen.
pub fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
}

/// On a panic in any thread: give the terminal back, kill every process
/// and remove every object of the run, say what happened, and exit. A
/// panicking monitor thread must not leave the UI drawing on a restored
/// terminal, so the whole program ends here.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if TUI_ACTIVE.swap(false, Relaxed) {
            restore_terminal();
        }
        supervisor::cleanup::emergency_cleanup();
        default(info);
        // SAFETY: ending the process after cleanup; nothing else to unwind.
        unsafe { libc::_exit(101) };
    }));
}
