//! The one clock every message is stamped and timed with.

/// CLOCK_MONOTONIC in ns: the clock every process of a run shares.
pub fn now_ns() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; zero if it ever did.
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
