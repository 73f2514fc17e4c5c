//! The message format every ipcscope worker speaks, and the verifier every
//! consumer runs.
//!
//! A message is a 32-byte header followed by a payload. The header carries a
//! sequence number, the sender's id, the total length, a CRC-32 over
//! everything else and the time it was sent (CLOCK_MONOTONIC ns), so a
//! consumer can tell a delivered message from a lost, corrupt, duplicated or
//! reordered one — and say so on screen with figures it checked itself —
//! and knows how long the message took to reach it.
//!
//! ```text
//! 0 magic "IPCS"  4 sender  8 seq  16 length  20 CRC-32  24 sent (ns)  32 payload…
//! ```

use std::collections::HashMap;

/// "IPCS" in little-endian: the first four bytes of every message we send.
pub const MAGIC: u32 = u32::from_le_bytes(*b"IPCS");
pub const HEADER_LEN: usize = 32;
/// Smallest message: the header alone (the CRC covers its send time as it
/// covers a payload, so every byte is still checked).
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
    let mut x = (seq as u32) ^ sender.rotate_left(16) ^ 0x9E37_79B9;
    for chunk in buf[HEADER_LEN..].chunks_mut(4) {
        // xorshift32: cheap, and no two neighbouring messages look alike.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
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
    let crc = checksum(buf);
    buf[20..24].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32 of everything but the CRC itself (the send time included).
fn checksum(buf: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..20]);
    h.update(&buf[24..]);
    h.finalize()
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
    senders: HashMap<u32, Track>,
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
