//! The input thread: polls crossterm (≤100 ms at a time, so it notices a
//! stop request and never holds a blocked read while the terminal is being
//! restored) and sends actions.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    TogglePause,
    /// The selected panel's producer rate; true = up.
    ProducerRate(bool),
    /// The selected panel's consumer rate; true = up.
    ConsumerRate(bool),
    /// Every panel's producer rate (Alt + `+` / `-`).
    ProducerRateAll(bool),
    /// Every panel's consumer rate (Alt + `<` / `>`).
    ConsumerRateAll(bool),
    /// Stall the selected panel's consumer, or let it go again (`c`).
    Stall,
    /// Stall every consumer, or let them all go again (`C`, Alt + `c`).
    StallAll,
    /// Mark the selected panel for comparison, or unmark it (`m`).
    Mark,
    /// Unmark every panel (`M`).
    ClearMarks,
    /// The comparison view of measured costs, on or off (`v`).
    Costs,
    /// Scroll the lesson pane: true = down.
    LessonScroll(bool),
    Kill,
    Restart,
    Next,
    Prev,
    Select(usize),
    ToggleFocus,
    Help,
    CloseOverlay,
    Lang,
    StepMode,
    /// One message through every producer.
    Step,
    /// One message through the selected panel's producers only.
    StepSelected,
    Theme,
    /// Scroll the event log: true = back (older).
    Scroll(bool),
    /// A mouse click at (column, row).
    Click(u16, u16),
    /// → / ←: the next lesson step (or the next panel outside a lesson).
    Forward(bool),
    /// Open the lesson picker.
    Picker,
    Redraw,
}

/// The action a key stands for, if any.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') | KeyCode::Char('d') => Some(Action::Quit),
            KeyCode::Char('l') => Some(Action::Redraw),
            _ => None,
        };
    }
    // Alt (Meta) + a rate key: every panel at once.
    if key.modifiers.contains(KeyModifiers::ALT) {
        return match key.code {
            KeyCode::Char('+') | KeyCode::Char('=') => Some(Action::ProducerRateAll(true)),
            KeyCode::Char('-') | KeyCode::Char('_') => Some(Action::ProducerRateAll(false)),
            KeyCode::Char('>') | KeyCode::Char('.') => Some(Action::ConsumerRateAll(true)),
            KeyCode::Char('<') | KeyCode::Char(',') => Some(Action::ConsumerRateAll(false)),
            KeyCode::Char('c') | KeyCode::Char('C') => Some(Action::StallAll),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('c') => Action::Stall,
        KeyCode::Char('C') => Action::StallAll,
        KeyCode::Char('m') => Action::Mark,
        KeyCode::Char('M') => Action::ClearMarks,
        KeyCode::Char('v') => Action::Costs,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::ProducerRate(true),
        KeyCode::Char('-') | KeyCode::Char('_') => Action::ProducerRate(false),
        KeyCode::Char('>') | KeyCode::Char('.') => Action::ConsumerRate(true),
        KeyCode::Char('<') | KeyCode::Char(',') => Action::ConsumerRate(false),
        KeyCode::Char('k') => Action::Kill,
        KeyCode::Char('r') => Action::Restart,
        KeyCode::Tab => Action::Next,
        KeyCode::BackTab => Action::Prev,
        KeyCode::Right => Action::Forward(true),
        KeyCode::Left => Action::Forward(false),
        KeyCode::Char('L') => Action::Picker,
        // One digit per mechanism, as many as there are (up to 9).
        KeyCode::Char(c @ '1'..='9') if (c as usize - '1' as usize) < crate::model::Kind::ALL.len() => {
            Action::Select(c as usize - '1' as usize)
        }
        KeyCode::Enter => Action::ToggleFocus,
        KeyCode::Char('?') | KeyCode::Char('h') | KeyCode::F(1) => Action::Help,
        KeyCode::Esc => Action::CloseOverlay,
        KeyCode::Char('l') => Action::Lang,
        KeyCode::Char('s') => Action::StepMode,
        KeyCode::Char('n') => Action::Step,
        KeyCode::Char('N') => Action::StepSelected,
        KeyCode::Char('t') => Action::Theme,
        KeyCode::PageUp => Action::Scroll(true),
        KeyCode::PageDown => Action::Scroll(false),
        KeyCode::Up => Action::LessonScroll(false),
        KeyCode::Down => Action::LessonScroll(true),
        _ => return None,
    })
}

pub struct InputThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl InputThread {
    /// Ask the thread to end and wait for it briefly. When the terminal
    /// has hung up, crossterm can stay inside `poll` and never come back
    /// to see the flag; the thread is then left to die with the process
    /// rather than holding up the cleanup.
    pub fn stop(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let deadline = std::time::Instant::now() + Duration::from_millis(300);
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

pub fn spawn() -> std::io::Result<(Receiver<Action>, InputThread)> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let handle = std::thread::Builder::new().name("input".into()).spawn(move || {
        while !stop2.load(Relaxed) {
            // A terminal that hung up (SIGHUP: the window was closed) is
            // gone for good: stop reading rather than spin on it.
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                let _ = tx.send(Action::Quit);
                break;
            }
            // In the background the shell reads the terminal, not us (and
            // a read there would fail, or stop the whole program).
            if !crate::in_foreground() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            match event::poll(Duration::from_millis(100)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) if !crate::in_foreground() => continue,
                Err(_) => break,
            }
            let action = match event::read() {
                Ok(Event::Key(k)) => action_for(k),
                Ok(Event::Resize(..)) => Some(Action::Redraw),
                Ok(Event::Mouse(m)) if matches!(m.kind, MouseEventKind::Down(_)) => {
                    Some(Action::Click(m.column, m.row))
                }
                Ok(_) => None,
                Err(_) if !crate::in_foreground() => continue,
                Err(_) => break,
            };
            if let Some(a) = action {
                if tx.send(a).is_err() {
                    break;
                }
            }
        }
    })?;
    Ok((rx, InputThread { stop, handle: Some(handle) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rate keys act on the selected panel; with Alt on every panel.
    #[test]
    fn alt_makes_a_rate_key_apply_to_every_panel() {
        let key = |c, m| action_for(KeyEvent::new(KeyCode::Char(c), m));
        assert_eq!(key('+', KeyModifiers::NONE), Some(Action::ProducerRate(true)));
        assert_eq!(key('+', KeyModifiers::ALT), Some(Action::ProducerRateAll(true)));
        assert_eq!(key('<', KeyModifiers::ALT), Some(Action::ConsumerRateAll(false)));
        assert_eq!(key('c', KeyModifiers::NONE), Some(Action::Stall));
        assert_eq!(key('C', KeyModifiers::SHIFT), Some(Action::StallAll));
        assert_eq!(key('c', KeyModifiers::ALT), Some(Action::StallAll));
        assert_eq!(key('q', KeyModifiers::ALT), None);
        // The comparison view of measured costs.
        assert_eq!(key('v', KeyModifiers::NONE), Some(Action::Costs));
    }

    /// A digit per mechanism, from the one list of kinds: a new mechanism
    /// gets its key without an edit here.
    #[test]
    fn digits_select_as_many_panels_as_there_are() {
        let press = |c| action_for(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        let n = crate::model::Kind::ALL.len();
        for (i, c) in ('1'..='9').enumerate() {
            match press(c) {
                Some(Action::Select(j)) => assert!(i < n && j == i, "{c} selects {j}"),
                other => assert!(i >= n && other.is_none(), "{c}: {other:?}"),
            }
        }
    }
}
