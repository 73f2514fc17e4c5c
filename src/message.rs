//! The message format every ipcscope worker speaks, and the verifier every
//! consumer runs.
//!
//! A message is a 32-byte header followed by a payload. The header carries a
//! sequence number, the sender's id, the total length, a checksum over
//! everything else and the time it was sent (CLOCK_MONOTONIC ns), so a
//! consumer can tell a delivered message from a lost, corrupt, duplicated or
//! reordered one — and say so on screen with figures it checked itself —
//! and knows how long the message took to reach it.
//!
//! ```text
//! 0 magic "IPCS"  4 sender  8 seq  16 length  20 checksum  24 sent (ns)  32 payload…
//! ```
//!
//! The checksum is a Fletcher sum in eight 64-bit lanes (each lane adds its
//! words, and adds that running sum again, so a word's value and its place
//! both count), folded with the header fields into 32 bits. It was CRC-32
//! until issue 18: a CRC costs 18 µs per MiB on this machine kind, the
//! sums 12 µs — about what reading the bytes once costs — and every message
//! is summed twice, by its sender and by its receiver.

use std::collections::HashMap;

/// "IPCS" in little-endian: the first four bytes of every message we send.
pub const MAGIC: u32 = u32::from_le_bytes(*b"IPCS");
pub const HEADER_LEN: usize = 32;
/// Smallest message: the header alone (the checksum covers its send time as
/// it covers a payload, so every byte is still checked).
pub const MIN_LEN: usize = HEADER_LEN;
/// Where the send time sits in the header.
const SENT_AT: std::ops::Range<usize> = 24..32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub sender: u32,
    pub seq: u64,
    pub len: u32,
    /// When the sender stamped it: CLOCK_MONOTONIC, ns.
    pub sent_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not one of ours (no magic): bytes someone else wrote into the channel.
    Foreign,
    /// Shorter than its header says, or shorter than a header.
    Truncated,
    /// Ours, but the checksum or length does not match.
    Corrupt,
}

pub use crate::clock::now_ns;

/// Fill `buf` (whose length is the message length) with a message from
/// `sender` numbered `seq`, stamped with the time now: the sender is about
/// to send it. The payload is a pattern derived from both, so a byte
/// flipped anywhere changes the checksum.
pub fn encode(buf: &mut [u8], sender: u32, seq: u64) {
    fill(buf, sender, seq);
    // Stamped after the payload is made: the time it is handed over.
    stamp_at(buf, sender, seq, now_ns());
    crate::trace::hook::encoded(sender, seq);
}

/// `encode` with a given send time: rebuilds the exact bytes of a message
/// sent at `sent_ns` (a client checking its echoed request).
pub fn encode_at(buf: &mut [u8], sender: u32, seq: u64, sent_ns: u64) {
    fill(buf, sender, seq);
    stamp_at(buf, sender, seq, sent_ns);
}

fn fill(buf: &mut [u8], sender: u32, seq: u64) {
    assert!(buf.len() >= MIN_LEN, "message shorter than MIN_LEN");
    // A start derived from both (SplitMix64's finaliser), then a Weyl
    // sequence with its high bits folded down: no two neighbouring messages
    // look alike, and each word depends only on its index, so the loop has
    // no chain from word to word (a 1 MiB payload in 41 µs here; the
    // xorshift32 chain before it took 650).
    let mut z = (seq << 32 | u64::from(sender)) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    let start = z ^ (z >> 31);
    let word = |i: usize| {
        let w = start.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        (w ^ (w >> 29)).to_le_bytes()
    };
    // Whole words apart from the tail, so that the loop vectorises.
    let mut words = buf[HEADER_LEN..].chunks_exact_mut(8);
    let mut whole = 0;
    for (i, chunk) in (&mut words).enumerate() {
        chunk.copy_from_slice(&word(i));
        whole = i + 1;
    }
    let tail = words.into_remainder();
    let n = tail.len();
    tail.copy_from_slice(&word(whole)[..n]);
}

/// Write the header (sent now) and checksum over a payload already in
/// `buf`: what `encode` does, without generating the payload again.
pub fn stamp(buf: &mut [u8], sender: u32, seq: u64) {
    stamp_at(buf, sender, seq, now_ns());
}

fn stamp_at(buf: &mut [u8], sender: u32, seq: u64, sent_ns: u64) {
    assert!(buf.len() >= MIN_LEN, "message shorter than MIN_LEN");
    let len = buf.len() as u32;
    buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    buf[4..8].copy_from_slice(&sender.to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..20].copy_from_slice(&len.to_le_bytes());
    buf[SENT_AT].copy_from_slice(&sent_ns.to_le_bytes());
    let sum = checksum(buf);
    buf[20..24].copy_from_slice(&sum.to_le_bytes());
}

/// The checksum of everything but the checksum field itself (the send time
/// included).
fn checksum(buf: &[u8]) -> u32 {
    let Some((head, payload)) = buf.split_first_chunk::<HEADER_LEN>() else {
        return 0; // shorter than a header: nothing to vouch for
    };
    let mut sums = Sums::default();
    sums.absorb(payload);
    let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap_or_default());
    sums.finish([word(0), word(8), word(16) & 0xFFFF_FFFF, word(24)])
}

/// Fletcher sums of a payload in eight 64-bit lanes: lane `j` takes words
/// `j, j + 8, j + 16, …`; `a` adds each word, `b` adds `a` after every
/// word, so a word changed, moved or swapped with another changes a sum.
/// Changes that cancel out need a pair of changes related just so (in the
/// same lane, equal and opposite, at places whose distance times the change
/// is a multiple of 2^64): not what a torn write, a stale slot or a shifted
/// stream produces.
/// Eight independent lanes are what lets the compiler keep them in vector
/// registers: a pass costs about what reading the bytes costs.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    a: [u64; 8],
    b: [u64; 8],
}

const CHUNK: usize = 64;

impl Sums {
    fn absorb(&mut self, payload: &[u8]) {
        let whole = payload.len() / CHUNK * CHUNK;
        if whole > 0 {
            absorb_chunks(self, &payload[..whole]);
        }
        let tail = &payload[whole..];
        if !tail.is_empty() {
            // Zero-padded: the header's length says where the payload ends.
            let mut last = [0u8; CHUNK];
            last[..tail.len()].copy_from_slice(tail);
            absorb_portable(self, &last);
        }
    }

    /// Fold the lanes and the header words into 32 bits: a weighted sum,
    /// then MurmurHash3's finaliser. `a`'s weights are odd and `b`'s even,
    /// so one word changed by `d` moves the sum by `d` times an odd number,
    /// never by 0; the finaliser is a bijection, so the 64-bit result moves
    /// too, and spreads the change over the half that is kept. Independent
    /// multiplies, not a chain: small messages pay ~10 ns for it.
    fn finish(&self, header: [u64; 4]) -> u32 {
        const fn weight(i: u64, even: bool) -> u64 {
            let w = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(2 * i + 1).rotate_left(i as u32 * 7);
            if even {
                w & !1
            } else {
                w | 1
            }
        }
        let mut x = 0u64;
        for j in 0..8 {
            x = x.wrapping_add(self.a[j].wrapping_mul(weight(j as u64, false)));
            x = x.wrapping_add(self.b[j].wrapping_mul(weight(j as u64 + 8, true)));
        }
        for (i, w) in header.into_iter().enumerate() {
            x = x.wrapping_add(w.wrapping_mul(weight(i as u64 + 16, false)));
        }
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        x ^= x >> 33;
        x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        x ^= x >> 33;
        (x ^ (x >> 32)) as u32
    }
}

/// Whole chunks, with the widest vectors the CPU has.
fn absorb_chunks(sums: &mut Sums, chunks: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { absorb_avx512(sums, chunks) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { absorb_avx2(sums, chunks) };
        }
    }
    absorb_portable(sums, chunks)
}

// The same loop, compiled for wider vectors (measured on an EPYC VM, 1 MiB:
// SSE2 15 µs, AVX2 13.9 µs, AVX-512 12.2 µs).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn absorb_avx512(sums: &mut Sums, chunks: &[u8]) {
    absorb_portable(sums, chunks)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn absorb_avx2(sums: &mut Sums, chunks: &[u8]) {
    absorb_portable(sums, chunks)
}

#[inline(always)]
fn absorb_portable(sums: &mut Sums, chunks: &[u8]) {
    let (mut a, mut b) = (sums.a, sums.b);
    for c in chunks.chunks_exact(CHUNK) {
        for j in 0..8 {
            let w = u64::from_le_bytes(c[j * 8..j * 8 + 8].try_into().unwrap_or_default());
            // Top bits folded down first: modulo 2^64, a change of the top
            // bit alone (d = 2^63) cancels out in pairs in a plain sum.
            let w = w ^ (w >> 32);
            a[j] = a[j].wrapping_add(w);
            b[j] = b[j].wrapping_add(a[j]);
        }
    }
    (sums.a, sums.b) = (a, b);
}

/// Read just the header fields, without checking the checksum: used by a
/// stream reader to learn how many more bytes to read.
pub fn peek_header(buf: &[u8]) -> Result<Header, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let word = |r: std::ops::Range<usize>| -> [u8; 4] { buf[r].try_into().unwrap_or([0; 4]) };
    if u32::from_le_bytes(word(0..4)) != MAGIC {
        return Err(DecodeError::Foreign);
    }
    let len = u32::from_le_bytes(word(16..20));
    if (len as usize) < MIN_LEN {
        return Err(DecodeError::Corrupt);
    }
    let long = |r: std::ops::Range<usize>| -> u64 { u64::from_le_bytes(buf[r].try_into().unwrap_or([0; 8])) };
    Ok(Header { sender: u32::from_le_bytes(word(4..8)), seq: long(8..16), len, sent_ns: long(SENT_AT) })
}

/// Check a whole message.
pub fn decode(buf: &[u8]) -> Result<Header, DecodeError> {
    let h = peek_header(buf)?;
    if buf.len() < h.len as usize {
        return Err(DecodeError::Truncated);
    }
    if buf.len() > h.len as usize {
        return Err(DecodeError::Corrupt);
    }
    let stored = u32::from_le_bytes([buf[20], buf[21], buf[22], buf[23]]);
    if stored != checksum(buf) {
        return Err(DecodeError::Corrupt);
    }
    Ok(h)
}

/// What the verifier concluded about one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The next one expected, or a later one (the gap counts as lost until
    /// the missing ones turn up).
    Delivered,
    /// Arrived after a later message of the same sender.
    Reordered,
    /// Seen before.
    Duplicated,
}

/// Integrity counters, as the consumer publishes them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub delivered: u64,
    pub lost: u64,
    pub corrupt: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub foreign: u64,
}

/// Per-sender bookkeeping: the highest sequence number seen and which of the
/// 128 before it arrived, which is enough to tell a late message (reordered)
/// from a repeated one (duplicated).
#[derive(Debug, Default)]
struct Track {
    highest: Option<u64>,
    /// bit i set = `highest - i` was received.
    window: u128,
    unique: u64,
}

#[derive(Debug, Default)]
pub struct Verifier {
    /// Keyed by sender id with a fast hash: a lookup per message (SipHash's
    /// resistance to chosen keys buys nothing for ids we count ourselves).
    senders: HashMap<u32, Track, foldhash::fast::FixedState>,
    counts: Counts,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counts(&self) -> Counts {
        let mut c = self.counts;
        c.lost = self.senders.values().map(|t| t.highest.map_or(0, |h| (h + 1).saturating_sub(t.unique))).sum();
        c
    }

    pub fn corrupt(&mut self) {
        self.counts.corrupt += 1;
    }

    pub fn foreign(&mut self, n: u64) {
        self.counts.foreign += n;
    }

    /// Verify a whole message buffer and account for it. A message that
    /// checks out is also timed (send → now) for the latency figures and
    /// the trace.
    pub fn check(&mut self, buf: &[u8]) -> Result<(Header, Verdict), DecodeError> {
        match decode(buf) {
            Ok(h) => {
                crate::trace::hook::received(h.sender, h.seq, h.len, h.sent_ns);
                Ok((h, self.accept(h.sender, h.seq)))
            }
            Err(DecodeError::Foreign) => {
                self.counts.foreign += buf.len() as u64;
                Err(DecodeError::Foreign)
            }
            Err(e) => {
                self.counts.corrupt += 1;
                Err(e)
            }
        }
    }

    /// Account for a message whose bytes already checked out.
    pub fn accept(&mut self, sender: u32, seq: u64) -> Verdict {
        let t = self.senders.entry(sender).or_default();
        let verdict = match t.highest {
            None => {
                t.highest = Some(seq);
                t.window = 1;
                Verdict::Delivered
            }
            Some(h) if seq > h => {
                let shift = seq - h;
                t.window = if shift >= 128 { 0 } else { t.window << shift };
                t.window |= 1;
                t.highest = Some(seq);
                Verdict::Delivered
            }
            Some(h) => {
                let back = h - seq;
                if back < 128 && t.window & (1u128 << back) != 0 {
                    Verdict::Duplicated
                } else if back >= 128 {
                    // Too old to tell apart; a late arrival is the kinder guess
                    // only if we have room for it, otherwise call it a repeat.
                    if t.unique > h {
                        Verdict::Duplicated
                    } else {
                        Verdict::Reordered
                    }
                } else {
                    t.window |= 1u128 << back;
                    Verdict::Reordered
                }
            }
        };
        match verdict {
            Verdict::Delivered => {
                t.unique += 1;
                self.counts.delivered += 1;
            }
            Verdict::Reordered => {
                t.unique += 1;
                self.counts.delivered += 1;
                self.counts.reordered += 1;
            }
            Verdict::Duplicated => self.counts.duplicated += 1,
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(sender: u32, seq: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0; len];
        encode(&mut b, sender, seq);
        b
    }

    #[test]
    fn round_trip() {
        let b = msg(7, 42, 100);
        let h = decode(&b).unwrap();
        assert_eq!((h.sender, h.seq, h.len), (7, 42, 100));
        // Stamped with the time it was made, on the monotonic clock.
        assert!(h.sent_ns > 0 && h.sent_ns <= now_ns());
        let mut again = vec![0; 100];
        encode_at(&mut again, 7, 42, h.sent_ns);
        assert_eq!(again, b);
    }

    #[test]
    fn the_send_time_is_checked_too() {
        let mut b = msg(1, 5, MIN_LEN);
        b[28] ^= 1;
        assert_eq!(decode(&b), Err(DecodeError::Corrupt));
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let b = msg(1, 5, 64);
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x10;
            assert!(decode(&c).is_err(), "flip at {i} not caught");
        }
    }

    #[test]
    fn every_flipped_bit_of_a_larger_message_is_caught() {
        // Longer than a chunk and not a whole number of them: the vector
        // path, the zero-padded tail and every header word.
        let b = msg(3, 9, 4096 + 32 + 17);
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                // The magic or the length may say Foreign or Truncated first.
                assert!(decode(&c).is_err(), "bit {bit} of byte {i}");
            }
        }
    }

    #[test]
    fn moved_and_swapped_words_are_caught() {
        let b = msg(3, 9, 1024);
        let word = |i: usize| HEADER_LEN + i * 8;
        // Same lane (8 words apart), neighbouring lanes, far apart.
        for (x, y) in [(0, 8), (0, 1), (3, 99), (5, 13)] {
            let mut c = b.clone();
            let (p, q) = (word(x), word(y));
            let tmp: [u8; 8] = c[p..p + 8].try_into().unwrap();
            c.copy_within(q..q + 8, p);
            c[q..q + 8].copy_from_slice(&tmp);
            assert_ne!(c, b);
            assert_eq!(decode(&c), Err(DecodeError::Corrupt), "words {x} and {y} swapped");
        }
        // A zeroed chunk (a slot the writer never reached) and a payload
        // shifted by one word.
        let mut c = b.clone();
        c[HEADER_LEN + 64..HEADER_LEN + 128].fill(0);
        assert_eq!(decode(&c), Err(DecodeError::Corrupt));
        let mut c = b.clone();
        c.copy_within(HEADER_LEN + 8.., HEADER_LEN);
        assert_eq!(decode(&c), Err(DecodeError::Corrupt));
    }

    #[test]
    fn pairs_of_flipped_top_bits_are_caught() {
        // The pair a sum modulo 2^64 misses without the fold of top bits:
        // bit 63 of two words of one lane, one set and one cleared.
        let mut b = msg(3, 9, 1024);
        let top = |i: usize| HEADER_LEN + i * 8 + 7;
        b[top(0)] &= 0x7F;
        b[top(16)] |= 0x80;
        stamp_at(&mut b, 3, 9, 1);
        for (x, y) in [(0, 16), (0, 8), (0, 1), (2, 3)] {
            let mut c = b.clone();
            c[top(x)] ^= 0x80;
            c[top(y)] ^= 0x80;
            assert_eq!(decode(&c), Err(DecodeError::Corrupt), "top bits of words {x} and {y}");
        }
    }

    #[test]
    fn every_length_round_trips() {
        for len in MIN_LEN..MIN_LEN + 3 * 64 {
            let b = msg(2, len as u64, len);
            assert_eq!(decode(&b).map(|h| h.len as usize), Ok(len));
            let mut c = b.clone();
            c[len - 1] ^= 0x80;
            assert!(decode(&c).is_err(), "last byte of a {len}-byte message");
        }
    }

    #[test]
    fn the_vector_path_sums_as_the_portable_one_does() {
        let b = msg(4, 1, 64 * 300 + 32);
        let (mut fast, mut plain) = (Sums::default(), Sums::default());
        absorb_chunks(&mut fast, &b[HEADER_LEN..]);
        absorb_portable(&mut plain, &b[HEADER_LEN..]);
        assert_eq!((fast.a, fast.b), (plain.a, plain.b));
    }

    #[test]
    fn truncated_and_foreign() {
        let b = msg(1, 5, 64);
        assert_eq!(decode(&b[..40]), Err(DecodeError::Truncated));
        assert_eq!(decode(&b[..20]), Err(DecodeError::Truncated));
        assert_eq!(decode(b"hello world, this is not ours at all"), Err(DecodeError::Foreign));
    }

    #[test]
    fn verifier_counts_gaps_dups_and_reorders() {
        let mut v = Verifier::new();
        for seq in [0, 1, 2, 4, 5] {
            assert_eq!(v.check(&msg(1, seq, 32)).unwrap().1, Verdict::Delivered);
        }
        assert_eq!(v.counts().lost, 1);
        assert_eq!(v.check(&msg(1, 3, 32)).unwrap().1, Verdict::Reordered);
        assert_eq!(v.counts().lost, 0);
        assert_eq!(v.check(&msg(1, 4, 32)).unwrap().1, Verdict::Duplicated);
        let mut bad = msg(1, 6, 32);
        bad[30] ^= 1;
        assert!(v.check(&bad).is_err());
        let c = v.counts();
        assert_eq!((c.delivered, c.lost, c.corrupt, c.duplicated, c.reordered), (6, 0, 1, 1, 1));
    }

    #[test]
    fn senders_are_independent() {
        let mut v = Verifier::new();
        v.accept(1, 0);
        v.accept(2, 0);
        v.accept(1, 1);
        v.accept(2, 1);
        assert_eq!(v.counts().delivered, 4);
        assert_eq!(v.counts().lost, 0);
    }
}
