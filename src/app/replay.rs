//! Replaying a recording with the same UI: play, pause, seek, speed. The
//! header says REPLAY, so nobody mistakes it for a live run.

use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::select;

use super::input::{self, Action};
use crate::snapshot::Snapshot;
use crate::ui::{self, View};

const SPEEDS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// Where a replay is: which snapshot is shown and how time runs.
pub struct Player {
    snaps: Vec<Snapshot>,
    pub index: usize,
    pub playing: bool,
    speed: usize,
    /// Recording time (ms) at `anchor`.
    anchor_t: u64,
    anchor: Instant,
}

impl Player {
    pub fn new(snaps: Vec<Snapshot>) -> Player {
        let anchor_t = snaps.first().map_or(0, |s| s.t_ms);
        Player { snaps, index: 0, playing: true, speed: 2, anchor_t, anchor: Instant::now() }
    }

    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed]
    }

    fn now_t(&self) -> u64 {
        if self.playing {
            self.anchor_t + (self.anchor.elapsed().as_secs_f64() * 1000.0 * self.speed()) as u64
        } else {
            self.anchor_t
        }
    }

    /// Move to the snapshot due at the current replay time. True if it changed.
    pub fn advance(&mut self) -> bool {
        let t = self.now_t();
        let before = self.index;
        while self.index + 1 < self.snaps.len() && self.snaps[self.index + 1].t_ms <= t {
            self.index += 1;
        }
        if self.index + 1 == self.snaps.len() {
            self.playing = false;
        }
        self.index != before
    }

    fn reanchor(&mut self, t: u64) {
        self.anchor_t = t;
        self.anchor = Instant::now();
    }

    pub fn toggle(&mut self) {
        let t = self.now_t();
        self.playing = !self.playing;
        if self.playing && self.index + 1 == self.snaps.len() {
            // At the end: play again from the start.
            self.index = 0;
            self.reanchor(self.snaps[0].t_ms);
        } else {
            self.reanchor(t.max(self.snaps[self.index].t_ms));
        }
    }

    /// Seek by `delta_ms` (negative = back).
    pub fn seek(&mut self, delta_ms: i64) {
        let t = (self.snaps[self.index].t_ms as i64 + delta_ms).max(0) as u64;
        self.index = match self.snaps.binary_search_by_key(&t, |s| s.t_ms) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
        .min(self.snaps.len() - 1);
        self.reanchor(self.snaps[self.index].t_ms);
    }

    pub fn faster(&mut self, up: bool) {
        let t = self.now_t();
        self.speed = if up { (self.speed + 1).min(SPEEDS.len() - 1) } else { self.speed.saturating_sub(1) };
        self.reanchor(t);
    }

    /// The snapshot to draw, marked as a replay.
    pub fn current(&self) -> Snapshot {
        let mut s = self.snaps[self.index].clone();
        s.run.replay = true;
        s
    }

    pub fn status(&self) -> String {
        let last = self.snaps.last().map_or(0, |s| s.t_ms);
        format!(
            "REPLAY {:.1}s / {:.1}s  ×{}  {}  — space play/pause  < > seek 5 s  + - speed  q quit",
            self.snaps[self.index].t_ms as f64 / 1000.0,
            last as f64 / 1000.0,
            self.speed(),
            if self.playing { "▶" } else { "❚❚" },
        )
    }
}

pub fn run(snaps: Vec<Snapshot>, mut view: View) -> Result<()> {
    super::check_terminal()?;
    let term_flag = super::exit_signals()?;
    let mut terminal = crate::init_terminal().map_err(|e| {
        crate::restore_terminal();
        anyhow::anyhow!("cannot set up the terminal: {e}")
    })?;
    let (input_rx, input) = input::spawn()?;
    let tick = crossbeam_channel::tick(Duration::from_millis(50));
    let mut player = Player::new(snaps);
    let mut dirty = true;
    let result = loop {
        if term_flag.load(std::sync::atomic::Ordering::Relaxed) {
            break Ok(());
        }
        if dirty {
            let snap = player.current();
            view.status = Some(player.status());
            {
                let _frame = crate::DRAW_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                terminal.draw(|f| ui::render(f, &snap, &view))?;
            }
            dirty = false;
        }
        select! {
            recv(tick) -> _ => dirty |= player.advance(),
            recv(input_rx) -> a => {
                dirty = true;
                match a {
                    Ok(Action::Quit) | Err(_) => break Ok(()),
                    Ok(Action::TogglePause) => player.toggle(),
                    Ok(Action::ConsumerRate(fwd)) => player.seek(if fwd { 5000 } else { -5000 }),
                    Ok(Action::ProducerRate(up)) => player.faster(up),
                    Ok(a) => {
                        let area = terminal.size().map(|s| ratatui::layout::Rect::new(0, 0, s.width, s.height)).unwrap_or_default();
                        super::apply_view(a, &mut view, &player.current(), area);
                    }
                }
            }
        }
    };
    input.stop();
    crate::restore_terminal();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snaps() -> Vec<Snapshot> {
        (0..50).map(|i| Snapshot { t_ms: i * 100, ..Snapshot::default() }).collect()
    }

    #[test]
    fn seek_and_bounds() {
        let mut p = Player::new(snaps());
        p.playing = false;
        p.seek(2000);
        assert_eq!(p.current().t_ms, 2000);
        p.seek(-10_000);
        assert_eq!(p.index, 0);
        p.seek(1_000_000);
        assert_eq!(p.index, 49);
        assert!(p.current().run.replay);
    }

    #[test]
    fn speed_steps_are_bounded() {
        let mut p = Player::new(snaps());
        for _ in 0..10 {
            p.faster(true);
        }
        assert_eq!(p.speed(), 8.0);
        for _ in 0..10 {
            p.faster(false);
        }
        assert_eq!(p.speed(), 0.25);
    }
}
