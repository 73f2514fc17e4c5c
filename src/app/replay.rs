//! Replaying a recording with the same UI: play, pause, seek, speed. The
//! header says REPLAY, so nobody mistakes it for a live run.

use std::time::{Duration, Instant};

use anyhow::Result;
use crossbeam_channel::select;

use super::input::{self, Action};
use crate::record::Recording;
use crate::snapshot::Snapshot;
use crate::ui::{self, View};

const SPEEDS: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// Where a replay is: which snapshot is shown and how time runs. Only the
/// block being shown is in memory; the rest is read when it is reached.
pub struct Player {
    rec: Recording,
    /// The block in `frames`, and the position in it.
    block: usize,
    frames: Vec<(u64, Snapshot)>,
    pos: usize,
    pub playing: bool,
    speed: usize,
    /// Timeline position (ms) at `anchor`.
    anchor_t: u64,
    anchor: Instant,
    /// A block that could not be read: shown, and playing stops.
    error: Option<String>,
}

impl Player {
    /// Starts at the first snapshot; fails if the first block is unreadable.
    pub fn new(mut rec: Recording) -> Result<Player> {
        let frames = rec.read_block(0)?;
        let anchor_t = frames[0].0;
        Ok(Player {
            rec,
            block: 0,
            frames,
            pos: 0,
            playing: true,
            speed: 2,
            anchor_t,
            anchor: Instant::now(),
            error: None,
        })
    }

    pub fn speed(&self) -> f64 {
        SPEEDS[self.speed]
    }

    /// Which snapshot of the whole recording is shown (0-based).
    pub fn index(&self) -> usize {
        self.rec.blocks()[self.block].first_index + self.pos
    }

    pub fn len(&self) -> usize {
        self.rec.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rec.is_empty()
    }

    fn pt(&self) -> u64 {
        self.frames[self.pos].0
    }

    fn end_pt(&self) -> u64 {
        self.rec.blocks().last().map_or(0, |b| b.last_pt)
    }

    fn at_end(&self) -> bool {
        self.block + 1 == self.rec.blocks().len() && self.pos + 1 == self.frames.len()
    }

    fn now_t(&self) -> u64 {
        if self.playing {
            self.anchor_t + (self.anchor.elapsed().as_secs_f64() * 1000.0 * self.speed()) as u64
        } else {
            self.anchor_t
        }
    }

    /// Show block `n`. On a read error the current block stays, playing
    /// stops and the status line says what is wrong.
    fn load(&mut self, n: usize) -> bool {
        if n == self.block {
            return true;
        }
        match self.rec.read_block(n) {
            Ok(f) => {
                self.frames = f;
                self.block = n;
                self.pos = 0;
                true
            }
            Err(e) => {
                self.error = Some(format!("{e:#}"));
                self.playing = false;
                false
            }
        }
    }

    /// Show the last snapshot at or before timeline position `t` (the
    /// first one if none is).
    fn goto(&mut self, t: u64) {
        if self.load(self.rec.block_at(t)) {
            self.pos = self.frames.partition_point(|f| f.0 <= t).saturating_sub(1);
        }
    }

    /// Move to the snapshot due at the current replay time. True if it changed.
    pub fn advance(&mut self) -> bool {
        let t = self.now_t();
        let before = self.index();
        let next_block = self.rec.blocks().get(self.block + 1).map(|b| b.first_pt);
        if next_block.is_some_and(|f| f <= t) {
            self.goto(t);
        } else {
            while self.pos + 1 < self.frames.len() && self.frames[self.pos + 1].0 <= t {
                self.pos += 1;
            }
        }
        if self.at_end() {
            self.playing = false;
        }
        self.index() != before
    }

    fn reanchor(&mut self, t: u64) {
        self.anchor_t = t;
        self.anchor = Instant::now();
    }

    pub fn toggle(&mut self) {
        let t = self.now_t();
        self.playing = !self.playing;
        if self.playing && self.at_end() {
            // At the end: play again from the start.
            self.goto(0);
            self.reanchor(self.pt());
        } else {
            self.reanchor(t.max(self.pt()));
        }
        if self.error.is_some() {
            self.playing = false;
        }
    }

    /// Seek by `delta_ms` (negative = back).
    pub fn seek(&mut self, delta_ms: i64) {
        let t = self.pt().saturating_add_signed(delta_ms);
        self.goto(t);
        self.reanchor(self.pt());
    }

    pub fn faster(&mut self, up: bool) {
        let t = self.now_t();
        self.speed = if up { (self.speed + 1).min(SPEEDS.len() - 1) } else { self.speed.saturating_sub(1) };
        self.reanchor(t);
    }

    /// The snapshot to draw, marked as a replay.
    pub fn current(&self) -> Snapshot {
        let mut s = self.frames[self.pos].1.clone();
        s.run.replay = true;
        s
    }

    pub fn status(&self) -> String {
        if let Some(e) = &self.error {
            return format!("REPLAY stopped: {e}  — < seek back  q quit");
        }
        format!(
            "REPLAY {:.1}s / {:.1}s  ×{}  {}  — space play/pause  < > seek 5 s  + - speed  q quit",
            self.pt() as f64 / 1000.0,
            self.end_pt() as f64 / 1000.0,
            self.speed(),
            if self.playing { "▶" } else { "❚❚" },
        )
    }
}

pub fn run(mut player: Player, mut view: View) -> Result<()> {
    super::check_terminal()?;
    let term_flag = super::exit_signals()?;
    let mut terminal = crate::init_terminal().map_err(|e| {
        crate::restore_terminal();
        anyhow::anyhow!("cannot set up the terminal: {e}")
    })?;
    let (input_rx, input) = input::spawn()?;
    let tick = crossbeam_channel::tick(Duration::from_millis(50));
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
    use crate::record::Recorder;

    /// A recording of `n` snapshots 100 ms apart (blocks of 10 s), opened.
    fn player(n: u64, name: &str) -> Player {
        let path = std::env::temp_dir().join(format!("ipcscope-player-{name}-{}", std::process::id()));
        let mut r = Recorder::create(&path).unwrap();
        for i in 0..n {
            r.write(&Snapshot { t_ms: i * 100, ..Snapshot::default() }).unwrap();
        }
        r.finish().unwrap();
        let rec = Recording::open(&path).unwrap();
        // The open descriptor keeps the data; the name can go.
        std::fs::remove_file(&path).unwrap();
        Player::new(rec).unwrap()
    }

    #[test]
    fn seek_and_bounds() {
        let mut p = player(50, "bounds");
        p.playing = false;
        p.seek(2000);
        assert_eq!(p.current().t_ms, 2000);
        p.seek(-10_000);
        assert_eq!(p.index(), 0);
        p.seek(1_000_000);
        assert_eq!(p.index(), 49);
        assert!(p.current().run.replay);
    }

    #[test]
    fn seeking_crosses_blocks_both_ways() {
        let mut p = player(500, "blocks");
        assert_eq!(p.rec.blocks().len(), 5);
        p.playing = false;
        for step in 1..=10 {
            p.seek(5000);
            assert_eq!(p.current().t_ms, (step * 5000).min(49_900));
        }
        assert_eq!(p.index(), 499);
        p.seek(-12_300);
        assert_eq!(p.current().t_ms, 37_600);
        assert_eq!(p.index(), 376);
        // Played to the end, space starts again from the beginning.
        p.seek(100_000);
        p.toggle();
        assert_eq!(p.index(), 0);
        assert!(p.playing);
    }

    #[test]
    fn speed_steps_are_bounded() {
        let mut p = player(50, "speed");
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
