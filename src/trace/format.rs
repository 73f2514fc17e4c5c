//! The binary files a traced worker writes: one per thread, in the run's
//! directory, `trace-<pid>-<tid>.bin`. A fixed header, then fixed-size
//! records, all little-endian. The worker writes them through a shared
//! mapping (no system call per record; what it wrote survives SIGKILL);
//! the supervisor reads them once the workers are gone, as untrusted bytes.

pub const MAGIC: &[u8; 8] = b"IPCTRC01";
pub const HEADER: usize = 128;
pub const RECORD: usize = 48;
/// File name prefix and suffix.
pub const PREFIX: &str = "trace-";
pub const SUFFIX: &str = ".bin";

// Header offsets.
pub const H_PID: usize = 8;
pub const H_TID: usize = 12;
pub const H_SLOT: usize = 16;
/// 0 = consistent; 1 = the worker was thinning its records (a file left in
/// this state is not trusted).
pub const H_STATE: usize = 20;
/// Every Nth message is kept (1 until the file first filled up).
pub const H_EVERY: usize = 24;
pub const H_COUNT: usize = 32;
/// Records not kept by sampling.
pub const H_SKIPPED: usize = 40;
pub const H_CAP: usize = 48;
/// `comm` of the process (as `ps` shows it) and of the thread, NUL-padded.
pub const H_COMM: usize = 56;
pub const H_THREAD: usize = 72;
pub const NAME_LEN: usize = 16;

pub const STATE_OK: u32 = 0;
pub const STATE_THINNING: u32 = 1;

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecKind {
    /// A call that handed a message over (`write`, `mq_send`, `mach_msg(SEND)`, …).
    Send = 1,
    /// A call that took a message (the message was verified at `t_end`).
    Recv = 2,
    /// A blocking wait with no message of its own (`futex(FUTEX_WAIT)`).
    Wait = 3,
    /// A call that failed (`ret` says why).
    Fail = 4,
}

impl RecKind {
    pub fn from_u8(v: u8) -> Option<RecKind> {
        Some(match v {
            1 => RecKind::Send,
            2 => RecKind::Recv,
            3 => RecKind::Wait,
            4 => RecKind::Fail,
            _ => return None,
        })
    }
}

/// `flags` bit: the message is an echo (a reply carrying the request's own
/// header back, or a request coming home to its sender).
pub const FLAG_ECHO: u8 = 1;
/// `call` of a `Wait` record.
pub const CALL_FUTEX_WAIT: u8 = 1;

/// One record: a call, when it began and ended (CLOCK_MONOTONIC ns), and
/// the message it carried, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rec {
    pub t_start: u64,
    pub t_end: u64,
    pub seq: u64,
    /// The message's send stamp (its header), 0 when there is none.
    pub sent_ns: u64,
    pub sender: u32,
    pub bytes: u32,
    /// errno, or the emulated kernel's return code, for `Fail`.
    pub ret: i32,
    pub kind: u8,
    /// `telemetry::Op` the worker said it was in.
    pub op: u8,
    pub flags: u8,
    pub call: u8,
}

impl Rec {
    pub fn to_bytes(&self) -> [u8; RECORD] {
        let mut b = [0u8; RECORD];
        b[0..8].copy_from_slice(&self.t_start.to_le_bytes());
        b[8..16].copy_from_slice(&self.t_end.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.sent_ns.to_le_bytes());
        b[32..36].copy_from_slice(&self.sender.to_le_bytes());
        b[36..40].copy_from_slice(&self.bytes.to_le_bytes());
        b[40..44].copy_from_slice(&self.ret.to_le_bytes());
        b[44] = self.kind;
        b[45] = self.op;
        b[46] = self.flags;
        b[47] = self.call;
        b
    }

    pub fn from_bytes(b: &[u8]) -> Option<Rec> {
        if b.len() < RECORD {
            return None;
        }
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
        Some(Rec {
            t_start: u64_at(0),
            t_end: u64_at(8),
            seq: u64_at(16),
            sent_ns: u64_at(24),
            sender: u32_at(32),
            bytes: u32_at(36),
            ret: u32_at(40) as i32,
            kind: b[44],
            op: b[45],
            flags: b[46],
            call: b[47],
        })
    }

    /// A record about a message (the sampling rule keeps it by `seq`).
    pub fn is_message(&self) -> bool {
        self.kind == RecKind::Send as u8 || self.kind == RecKind::Recv as u8
    }
}

/// A file's header, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileHeader {
    pub pid: u32,
    pub tid: u32,
    pub slot: u32,
    pub state: u32,
    pub every: u64,
    pub count: u64,
    pub skipped: u64,
    pub comm: String,
    pub thread: String,
}

fn name_at(b: &[u8], at: usize) -> String {
    let raw = &b[at..at + NAME_LEN];
    let end = raw.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Parse a whole file: its header and the records it says it holds (never
/// more than the bytes hold). None unless it is one of ours.
pub fn parse(b: &[u8]) -> Option<(FileHeader, Vec<Rec>)> {
    if b.len() < HEADER || &b[..8] != MAGIC {
        return None;
    }
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
    let h = FileHeader {
        pid: u32_at(H_PID),
        tid: u32_at(H_TID),
        slot: u32_at(H_SLOT),
        state: u32_at(H_STATE),
        every: u64_at(H_EVERY).max(1),
        count: u64_at(H_COUNT),
        skipped: u64_at(H_SKIPPED),
        comm: name_at(b, H_COMM),
        thread: name_at(b, H_THREAD),
    };
    let fit = ((b.len() - HEADER) / RECORD) as u64;
    let n = h.count.min(fit) as usize;
    let recs = (0..n).filter_map(|i| Rec::from_bytes(&b[HEADER + i * RECORD..])).collect();
    Some((h, recs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let r = Rec {
            t_start: 1,
            t_end: 2,
            seq: 3,
            sent_ns: 4,
            sender: 5,
            bytes: 6,
            ret: -7,
            kind: 2,
            op: 8,
            flags: 1,
            call: 0,
        };
        assert_eq!(Rec::from_bytes(&r.to_bytes()), Some(r));
        assert!(parse(b"not ours").is_none());
        let mut f = vec![0u8; HEADER + RECORD];
        f[..8].copy_from_slice(MAGIC);
        // A count past the end is cut to what the bytes hold.
        f[H_COUNT..H_COUNT + 8].copy_from_slice(&1000u64.to_le_bytes());
        f[HEADER..].copy_from_slice(&r.to_bytes());
        let (h, recs) = parse(&f).unwrap();
        assert_eq!((h.every, recs.len()), (1, 1));
    }
}
