//! The one clock every message is stamped and timed with.

/// CLOCK_MONOTONIC in ns: the clock every process of a run shares.
pub fn now_ns() -> u64 {
    // Called twice per message (stamp, arrival): libc's vDSO call directly,
    // without nix's Result and TimeSpec around it.
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0; // CLOCK_MONOTONIC cannot fail on Linux; zero if it ever did
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
