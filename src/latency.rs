//! One-way latency, as each receiver measures it: the time from the send
//! stamp in a message's header to the moment the receiver verified it.
//!
//! Every worker has a histogram of its own in the telemetry page: fixed
//! log-scale buckets of plain atomic counters, so recording is a couple of
//! atomic adds (no lock, no allocation) and the monitor can read it at any
//! time. Eight buckets per power of two: a value is known to within 12.5 %.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Sub-buckets per power of two (2^3).
const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Values (ns) from 2^36 (about 69 s) on share the last bucket.
const TOP_EXP: u32 = 36;
/// Buckets: exact below `SUB`, then `SUB` per power of two up to `TOP_EXP`.
pub const BUCKETS: usize = ((TOP_EXP - SUB_BITS + 1) as usize) * SUB as usize;

/// The bucket of a latency of `ns` nanoseconds.
pub fn bucket(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let ns = ns.min((1 << TOP_EXP) - 1);
    let e = 63 - ns.leading_zeros();
    let sub = (ns >> (e - SUB_BITS)) & (SUB - 1);
    ((e - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

/// The smallest value (ns) bucket `i` holds, and its width.
pub fn bucket_range(i: usize) -> (u64, u64) {
    if i < SUB as usize {
        return (i as u64, 1);
    }
    let e = (i / SUB as usize) as u32 + SUB_BITS - 1;
    let sub = (i % SUB as usize) as u64;
    let width = 1u64 << (e - SUB_BITS);
    ((SUB + sub) * width, width)
}

/// The value that stands for bucket `i`: its middle.
pub fn bucket_mid(i: usize) -> u64 {
    let (low, width) = bucket_range(i);
    low + width / 2
}

/// A worker's latency histogram in the telemetry page. All atomics, so it
/// sits in `telemetry::Slot` (which is reset word by word).
#[repr(C)]
pub struct Hist {
    pub buckets: [AtomicU64; BUCKETS],
    /// The largest sample since the monitor last took it (`take_max`).
    pub max_ns: AtomicU64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist { buckets: std::array::from_fn(|_| AtomicU64::new(0)), max_ns: AtomicU64::new(0) }
    }
}

impl Hist {
    /// Count one sample. Atomic adds: two threads of one task (a Mach
    /// client) may record at once.
    pub fn record(&self, ns: u64) {
        self.buckets[bucket(ns)].fetch_add(1, Relaxed);
        // A locked read-modify-write only when this sample is a new maximum
        // (rarely, once the monitor's sample period has seen a few).
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.fetch_max(ns, Relaxed);
        }
    }

    /// The counts so far (cumulative since the slot was reset).
    pub fn counts(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Relaxed))
    }

    /// The largest sample since the last call (the monitor's, once a sample).
    pub fn take_max(&self) -> u64 {
        self.max_ns.swap(0, Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_continuous_and_within_an_eighth() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(7), 7);
        assert_eq!(bucket(8), 8);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        let mut last = 0;
        for v in (1..1 << 20).step_by(7).chain([1 << 30, (1 << 36) - 1]) {
            let b = bucket(v);
            assert!(b >= last && b < BUCKETS, "{v}");
            last = b;
            let (low, width) = bucket_range(b);
            assert!(low <= v && v < low + width, "{v} not in bucket {b} = {low}+{width}");
            assert!(width * 8 <= low.max(8), "{v}: bucket {b} too wide");
        }
        for i in 1..BUCKETS {
            let (a, w) = bucket_range(i - 1);
            assert_eq!(a + w, bucket_range(i).0, "gap after bucket {}", i - 1);
        }
    }

    #[test]
    fn record_and_take_max() {
        let h = Hist::default();
        h.record(1500);
        h.record(90_000);
        assert_eq!(h.counts().iter().sum::<u64>(), 2);
        assert_eq!(h.take_max(), 90_000);
        assert_eq!(h.take_max(), 0);
    }
}
