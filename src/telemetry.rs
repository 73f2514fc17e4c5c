//! The telemetry and control page: one small shared-memory area per run.
//!
//! The supervisor creates it as a `memfd` and every worker inherits it at a
//! fixed descriptor number. Workers publish their counters and the call they
//! are in with plain atomic stores (no locks in the hot path); the monitor
//! reads them. The other way, the TUI writes knob values that workers load
//! on every message.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use memmap2::MmapRaw;

use crate::model::knob::KnobId;

/// The descriptor number workers find the page at.
pub const WORKER_FD: RawFd = 3;
pub const MAX_KNOBS: usize = 96;
// Every knob has its own slot in the page.
const _: () = assert!(KnobId::COUNT <= MAX_KNOBS);
pub const MAX_SLOTS: usize = 48;
pub const EVENTS: usize = 32;
const MAGIC: u64 = u64::from_le_bytes(*b"ipcscope");

/// One recorded system call, as the worker saw it.
#[repr(C)]
#[derive(Default)]
pub struct EventRec {
    /// Sequence number + 1 of the event written here (0 = empty). Written
    /// last, so a reader that sees the same value before and after copying
    /// the fields has a consistent record.
    pub seq: AtomicU64,
    pub t_us: AtomicU64,
    pub call: AtomicU64,
    pub args: [AtomicU64; 3],
    pub ret: AtomicU64,
}

/// One worker's counters. `u64` everywhere: plain, lock-free, and the
/// layout is the same in every process of the run.
#[repr(C)]
#[derive(Default)]
pub struct Slot {
    pub pid: AtomicU64,
    /// Raised by the supervisor each time the role is (re)started.
    pub generation: AtomicU64,
    pub sent_msgs: AtomicU64,
    pub sent_bytes: AtomicU64,
    pub recv_msgs: AtomicU64,
    pub recv_bytes: AtomicU64,
    pub delivered: AtomicU64,
    pub lost: AtomicU64,
    pub corrupt: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub foreign: AtomicU64,
    pub err_epipe: AtomicU64,
    pub err_again: AtomicU64,
    pub err_timedout: AtomicU64,
    pub err_other: AtomicU64,
    pub last_errno: AtomicU64,
    /// The call the worker is in now (`Op` as u64) and since when (µs since
    /// the run started).
    pub op: AtomicU64,
    pub op_since_us: AtomicU64,
    pub eof: AtomicU64,
    /// How the process ended, as `ExitStatus::encode`; 0 while running.
    pub exit: AtomicU64,
    /// Mechanism-specific values (descriptor numbers, a child's pid, …);
    /// each mechanism documents its own use.
    pub aux: [AtomicU64; 8],
    /// Step mode: messages the worker may still send before it holds.
    pub step_tokens: AtomicU64,
    pub event_head: AtomicU64,
    pub events: [EventRec; EVENTS],
    /// One-way latency of the messages this worker verified (`latency`).
    pub lat: crate::latency::Hist,
    /// System calls the worker made moving messages, by its own count
    /// (each read, write, send, recv, poll, mq_*, futex, sendmsg/recvmsg).
    pub syscalls: AtomicU64,
    /// Calls it made into an emulated kernel (Mach, NT): its traps.
    pub traps: AtomicU64,
}

#[repr(C)]
pub struct Page {
    pub magic: AtomicU64,
    /// Run start as CLOCK_MONOTONIC µs, so every process stamps events on
    /// one time line.
    pub t0_us: AtomicU64,
    pub knobs: [AtomicU64; MAX_KNOBS],
    pub step_mode: AtomicU64,
    pub slots: [Slot; MAX_SLOTS],
}

/// What the worker is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    Idle = 0,
    Starting,
    Write,
    Read,
    Open,
    Paced,
    Stalled,
    Send,
    Receive,
    Wait,
    Connect,
    Accept,
    Done,
    StepHold,
}

impl Op {
    pub fn from_u64(v: u64) -> Op {
        use Op::*;
        [Idle, Starting, Write, Read, Open, Paced, Stalled, Send, Receive, Wait, Connect, Accept, Done, StepHold]
            .get(v as usize)
            .copied()
            .unwrap_or(Idle)
    }
}

/// How an op reads on screen and in traces, unless a mechanism names it
/// its own way.
pub fn default_op_name(op: Op) -> &'static str {
    match op {
        Op::Idle => "idle",
        Op::Starting => "starting",
        Op::Write => "write()",
        Op::Read => "read()",
        Op::Open => "open()",
        Op::Paced => "paced",
        Op::Stalled => "stalled",
        Op::Send => "send",
        Op::Receive => "receive",
        Op::Wait => "wait",
        Op::Connect => "connect()",
        Op::Accept => "accept()",
        Op::Done => "done",
        Op::StepHold => "step: held",
    }
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    pub fn encode(self) -> u64 {
        match self {
            ExitStatus::Code(c) => 1 << 32 | (c as u32 as u64),
            ExitStatus::Signal(s) => 2 << 32 | (s as u32 as u64),
        }
    }
    pub fn decode(v: u64) -> Option<ExitStatus> {
        match v >> 32 {
            1 => Some(ExitStatus::Code(v as u32 as i32)),
            2 => Some(ExitStatus::Signal(v as u32 as i32)),
            _ => None,
        }
    }
    pub fn from_wait(status: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(libc::WTERMSIG(status))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        }
    }
}

/// A mapped telemetry page. Cheap to clone (shared mapping). Other
/// processes write it at any time, so it is a raw mapping reached only
/// through the atomics of `Page`, never as bytes.
#[derive(Clone)]
pub struct Telemetry {
    map: Arc<MmapRaw>,
}

pub fn now_us() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; zero if it ever did.
    let ts =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1000
}

impl Telemetry {
    /// Create a fresh page in a new memfd (supervisor side).
    pub fn create() -> Result<(Telemetry, OwnedFd)> {
        let name = c"ipcscope-telemetry";
        let owned = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(std::io::Error::from)
            .context("memfd_create for the telemetry page")?;
        let file = File::from(owned.try_clone()?);
        file.set_len(std::mem::size_of::<Page>() as u64)?;
        let t = Self::map(&file)?;
        t.page().magic.store(MAGIC, Relaxed);
        t.page().t0_us.store(now_us(), Relaxed);
        Ok((t, owned))
    }

    /// Map the page a worker inherited at `fd`.
    pub fn open(fd: RawFd) -> Result<Telemetry> {
        // SAFETY: dup gives us our own descriptor; the original stays open.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        if dup < 0 {
            bail!("no telemetry page at descriptor {fd}: {}", std::io::Error::last_os_error());
        }
        // SAFETY: `dup` was just returned by fcntl (checked above) and
        // nothing else owns it.
        let file = unsafe { File::from_raw_fd(dup) };
        let t = Self::map(&file)?;
        if t.page().magic.load(Relaxed) != MAGIC {
            bail!("descriptor {fd} is not an ipcscope telemetry page");
        }
        Ok(t)
    }

    fn map(file: &File) -> Result<Telemetry> {
        let len = file.metadata()?.len() as usize;
        if len < std::mem::size_of::<Page>() {
            bail!("telemetry page too small ({len} bytes)");
        }
        let map = memmap2::MmapOptions::new().len(len).map_raw(file)?;
        Ok(Telemetry { map: Arc::new(map) })
    }

    pub fn page(&self) -> &Page {
        // SAFETY: the mapping is at least size_of::<Page>() bytes (checked
        // in `map`), page aligned, lives as long as `self`, and Page is made
        // of atomics only (any bit pattern valid, shared writes are atomic).
        unsafe { &*(self.map.as_ptr() as *const Page) }
    }

    pub fn slot(&self, i: usize) -> &Slot {
        &self.page().slots[i.min(MAX_SLOTS - 1)]
    }

    pub fn knob(&self, id: KnobId) -> u64 {
        self.page().knobs[id.slot()].load(Relaxed)
    }

    /// The value a mechanism with knobs `group` goes by: its own copy of
    /// the common knob `id` when one is set, else `id`.
    pub fn effective(&self, group: &[KnobId], id: KnobId) -> u64 {
        crate::model::knob::effective(group, id, |k| self.knob(k))
    }

    pub fn set_knob(&self, id: KnobId, v: u64) {
        self.page().knobs[id.slot()].store(v, Relaxed);
    }

    pub fn elapsed_us(&self) -> u64 {
        now_us().saturating_sub(self.page().t0_us.load(Relaxed))
    }

    /// Zero a slot before its role is started (again).
    pub fn reset_slot(&self, i: usize) {
        let s = self.slot(i);
        let gen = s.generation.load(Relaxed) + 1;
        // SAFETY: zeroing atomics through a shared reference is done with
        // stores; the struct is all AtomicU64.
        for w in slot_words(s) {
            w.store(0, Relaxed);
        }
        s.generation.store(gen, Relaxed);
    }

    pub fn fd_of(owned: &OwnedFd) -> RawFd {
        owned.as_raw_fd()
    }
}

/// Every word of a slot, for resetting it.
fn slot_words(s: &Slot) -> &[AtomicU64] {
    let n = std::mem::size_of::<Slot>() / 8;
    // SAFETY: Slot is repr(C) and consists only of AtomicU64 fields.
    unsafe { std::slice::from_raw_parts(s as *const Slot as *const AtomicU64, n) }
}

impl Slot {
    pub fn set_op(&self, op: Op, t_us: u64) {
        if self.op.load(Relaxed) != op as u64 {
            self.op.store(op as u64, Relaxed);
            self.op_since_us.store(t_us, Relaxed);
        }
    }

    pub fn op(&self) -> Op {
        Op::from_u64(self.op.load(Relaxed))
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        // Single writer per counter: a load and store is enough and cheaper
        // than a locked add.
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn push_event(&self, t_us: u64, call: u64, args: [u64; 3], ret: i64) {
        let seq = self.event_head.load(Relaxed);
        let e = &self.events[(seq as usize) % EVENTS];
        e.seq.store(0, Relaxed);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        e.t_us.store(t_us, Relaxed);
        e.call.store(call, Relaxed);
        for (a, v) in e.args.iter().zip(args) {
            a.store(v, Relaxed);
        }
        e.ret.store(ret as u64, Relaxed);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        e.seq.store(seq + 1, Relaxed);
        self.event_head.store(seq + 1, Relaxed);
    }

    /// The recorded events with sequence number ≥ `from`, oldest first.
    pub fn events_since(&self, from: u64) -> Vec<(u64, u64, u64, [u64; 3], i64)> {
        let head = self.event_head.load(Relaxed);
        let start = from.max(head.saturating_sub(EVENTS as u64));
        let mut out = Vec::new();
        for seq in start..head {
            let e = &self.events[(seq as usize) % EVENTS];
            let before = e.seq.load(Relaxed);
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            let rec = (
                seq,
                e.t_us.load(Relaxed),
                e.call.load(Relaxed),
                [e.args[0].load(Relaxed), e.args[1].load(Relaxed), e.args[2].load(Relaxed)],
                e.ret.load(Relaxed) as i64,
            );
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            if before == seq + 1 && e.seq.load(Relaxed) == seq + 1 {
                out.push(rec);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fits_and_round_trips() {
        let (t, fd) = Telemetry::create().unwrap();
        let t2 = Telemetry::open(fd.as_raw_fd()).unwrap();
        t.slot(3).sent_msgs.store(7, Relaxed);
        assert_eq!(t2.slot(3).sent_msgs.load(Relaxed), 7);
        t.set_knob(KnobId::MsgSize, 99);
        assert_eq!(t2.knob(KnobId::MsgSize), 99);
        // The last knob has a slot of its own too.
        let last = *KnobId::ALL.last().unwrap();
        t.set_knob(last, 7);
        assert_eq!(t2.knob(last), 7);
        assert_eq!(t2.knob(KnobId::MsgSize), 99);
        t.reset_slot(3);
        assert_eq!(t2.slot(3).sent_msgs.load(Relaxed), 0);
        assert_eq!(t2.slot(3).generation.load(Relaxed), 1);
    }

    #[test]
    fn event_ring_keeps_the_newest() {
        let (t, _fd) = Telemetry::create().unwrap();
        let s = t.slot(0);
        for i in 0..(EVENTS as u64 + 5) {
            s.push_event(i, 1, [i, 0, 0], i as i64);
        }
        let ev = s.events_since(0);
        assert_eq!(ev.len(), EVENTS);
        assert_eq!(ev.first().unwrap().0, 5);
        assert_eq!(s.events_since(EVENTS as u64 + 3).len(), 2);
    }

    #[test]
    fn exit_status_codes() {
        for e in [ExitStatus::Code(0), ExitStatus::Code(3), ExitStatus::Signal(13)] {
            assert_eq!(ExitStatus::decode(e.encode()), Some(e));
        }
        assert_eq!(ExitStatus::decode(0), None);
    }
}
