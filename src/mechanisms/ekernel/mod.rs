//! What the emulated kernels (Mach, NT's ALPC) share: the Unix
//! `SOCK_SEQPACKET` transport between a kernel process and its tasks.
//! Each kernel runs as `ipcscope kernel NAME`, a process of its own in its
//! own process group (pausing the workers must not freeze the kernel the
//! monitor asks for its state).

pub mod transport;

use std::time::{Duration, Instant};

/// A kernel loop's `stop()` asked at most once per `every`. The loop wakes
/// for every packet, and asking (a `getppid`, say) at each wake-up was one
/// more system call per message; a stop is still seen within `every` plus
/// the loop's poll timeout.
pub struct Throttled<F> {
    ask: F,
    every: Duration,
    next: Option<Instant>,
}

impl<F: Fn() -> bool> Throttled<F> {
    pub fn new(ask: F, every: Duration) -> Self {
        Throttled { ask, every, next: None }
    }

    /// `ask()` if `every` has passed since it was last asked (or never was).
    pub fn stop(&mut self) -> bool {
        let now = Instant::now();
        if self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.next = Some(now + self.every);
        (self.ask)()
    }
}

/// How often the kernels ask whether to stop while they are busy.
pub const STOP_ASK_EVERY: Duration = Duration::from_millis(10);

/// When a wait of `ms` that starts at kernel time `now` ends. The kernels'
/// clock counts whole milliseconds and the call arrived somewhere inside
/// millisecond `now`: ending at `now + ms` could cut the wait up to 1 ms
/// short, so it ends one later (as Linux adds a jiffy to its timeouts). A
/// zero wait ends now.
pub fn deadline(now: u64, ms: u32) -> u64 {
    if ms == 0 {
        now
    } else {
        now.saturating_add(u64::from(ms) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn asks_at_once_then_once_per_period() {
        let asked = Cell::new(0);
        let mut t = Throttled::new(
            || {
                asked.set(asked.get() + 1);
                false
            },
            Duration::from_millis(30),
        );
        assert!(!t.stop());
        for _ in 0..100 {
            assert!(!t.stop());
        }
        assert_eq!(asked.get(), 1);
        std::thread::sleep(Duration::from_millis(35));
        assert!(!t.stop());
        assert_eq!(asked.get(), 2);
    }
}
