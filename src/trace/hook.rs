//! Inside a worker process: the few places every mechanism already passes
//! through (`message::encode`, the verifier, `WorkerCtx::op`, `count_sent`,
//! `count_error`, the futex and read/write helpers) report here.
//!
//! Always on, and cheap: each verified message's one-way latency goes into
//! the worker's histogram in the telemetry page, and message-path system
//! calls are counted there. Only with `--trace`: each thread appends
//! fixed-size records (`format`) to a file of its own through a shared
//! mapping. Without `--trace` a hook is one load of a flag and a branch.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use super::format::{self, Rec, RecKind};
use crate::clock::now_ns;
use crate::telemetry::{Op, Slot, Telemetry};

/// Tracing in this process (`IPCSCOPE_TRACE` was set by the supervisor).
static ON: AtomicBool = AtomicBool::new(false);
/// Bytes per thread's file.
static BUDGET: AtomicU64 = AtomicU64::new(super::DEFAULT_BUDGET);
/// Raised each time the process (re)attaches: a forked child must not
/// write into the file its parent's thread had open.
static EPOCH: AtomicU64 = AtomicU64::new(0);
/// The slot this process counts into (null outside a worker).
static SLOT: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
static SLOT_INDEX: AtomicU64 = AtomicU64::new(u32::MAX as u64);
/// Keeps the telemetry mapping that `SLOT` points into alive for good.
static TEL: OnceLock<Telemetry> = OnceLock::new();
static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Take `slot` of `tel` as this process's own (a worker at start, a forked
/// child after switching slots). Starts tracing if the supervisor asked.
pub fn attach(tel: &Telemetry, slot: usize, run_dir: &Path) {
    let tel = TEL.get_or_init(|| tel.clone());
    SLOT.store(tel.slot(slot) as *const Slot as *mut Slot, Relaxed);
    SLOT_INDEX.store(slot as u64, Relaxed);
    EPOCH.fetch_add(1, Relaxed);
    if let Some(budget) = std::env::var(super::ENV_TRACE).ok().and_then(|v| v.parse::<u64>().ok()) {
        BUDGET.store(budget.clamp(super::MIN_BUDGET, super::MAX_BUDGET), Relaxed);
        let _ = RUN_DIR.set(run_dir.to_path_buf());
        ON.store(true, Relaxed);
        // The main thread's file now, not on the first message.
        with_local(|l| {
            l.reset();
            l.writer();
        });
    }
}

fn slot() -> Option<&'static Slot> {
    let p = SLOT.load(Relaxed);
    // SAFETY: SLOT is null or points into the mapping TEL holds for the
    // rest of the process; Slot is all atomics.
    unsafe { p.as_ref() }
}

/// One message-path system call made (the caller is about to make it).
pub fn syscall() {
    if let Some(s) = slot() {
        s.syscalls.fetch_add(1, Relaxed);
    }
}

/// One call into an emulated kernel.
pub fn trap() {
    if let Some(s) = slot() {
        s.traps.fetch_add(1, Relaxed);
    }
}

/// Tracing is on in this process.
pub fn on() -> bool {
    ON.load(Relaxed)
}

/// The worker entered `op` (`WorkerCtx::op`): a call's slice starts here.
pub fn op(op: Op) {
    if !on() {
        return;
    }
    let now = now_ns();
    with_local(|l| {
        l.op = op as u8;
        l.op_t = now;
    });
}

/// The thread just built message (`sender`, `seq`): it is the one its next
/// send carries.
pub fn encoded(sender: u32, seq: u64) {
    // The thread's own sender id is known even when not tracing: it tells
    // a one-way message from one of our own coming back (an echo).
    with_local(|l| {
        l.own = Some(sender);
        l.cur = Some((sender, seq, 0, false));
    });
}

/// A message checked out: time it, and trace its arrival.
pub fn received(sender: u32, seq: u64, len: u32, sent_ns: u64) {
    let now = now_ns();
    let echo = with_local(|l| l.own == Some(sender));
    if !echo && sent_ns > 0 && sent_ns <= now {
        if let Some(s) = slot() {
            s.lat.record(now - sent_ns);
        }
    }
    if !on() {
        return;
    }
    with_local(|l| {
        l.cur = Some((sender, seq, sent_ns, true));
        let rec = Rec {
            seq,
            sent_ns,
            sender,
            bytes: len,
            flags: if echo { format::FLAG_ECHO } else { 0 },
            ..l.call(RecKind::Recv, now)
        };
        l.push(rec);
    });
}

/// The call that hands the current message over returned successfully.
pub fn sent(bytes: usize) {
    if !on() {
        return;
    }
    let now = now_ns();
    with_local(|l| {
        let Some((sender, seq, sent_ns, from_recv)) = l.cur else { return };
        let rec = Rec {
            seq,
            sent_ns,
            sender,
            bytes: bytes.min(u32::MAX as usize) as u32,
            flags: if from_recv { format::FLAG_ECHO } else { 0 },
            ..l.call(RecKind::Send, now)
        };
        l.push(rec);
    });
}

/// The current call failed with `code` (an errno, or a Mach/NT return code).
pub fn failed(code: i64) {
    if !on() {
        return;
    }
    let now = now_ns();
    with_local(|l| {
        let (sender, seq) = l.cur.map_or((0, 0), |c| (c.0, c.1));
        let rec = Rec { sender, seq, ret: code as i32, ..l.call(RecKind::Fail, now) };
        l.push(rec);
    });
}

/// A blocking wait with no message of its own, from `t_start` to now.
pub fn waited(call: u8, t_start: u64) {
    if !on() {
        return;
    }
    let now = now_ns();
    with_local(|l| {
        let rec = Rec {
            t_start: t_start.max(l.last_end),
            t_end: now,
            kind: RecKind::Wait as u8,
            call,
            op: l.op,
            ..Rec::default()
        };
        l.push(rec);
    });
}

/// The time now if tracing (for `waited`), else 0 without reading a clock.
pub fn start_time() -> u64 {
    if on() {
        now_ns()
    } else {
        0
    }
}

/// What one thread keeps.
#[derive(Default)]
struct Local {
    epoch: u64,
    op: u8,
    op_t: u64,
    last_end: u64,
    /// The sender id this thread last built a message as.
    own: Option<u32>,
    /// The message in hand: (sender, seq, send stamp, came in by a receive).
    cur: Option<(u32, u64, u64, bool)>,
    file: Option<Writer>,
    /// The file could not be made: do not try again on every message.
    failed: bool,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

fn with_local<R: Default>(f: impl FnOnce(&mut Local) -> R) -> R {
    LOCAL
        .try_with(|l| {
            let Ok(mut l) = l.try_borrow_mut() else { return R::default() };
            let epoch = EPOCH.load(Relaxed);
            if l.epoch != epoch {
                // A new process (forked) or a new slot: start afresh. The
                // inherited mapping is dropped in this process only.
                l.reset();
                l.epoch = epoch;
            }
            f(&mut l)
        })
        .unwrap_or_default()
}

impl Local {
    fn reset(&mut self) {
        let epoch = self.epoch;
        *self = Local { epoch, ..Local::default() };
    }

    /// A record of a call that ends now: it began when the worker entered
    /// its op, or when the thread's last record ended, whichever is later
    /// (so one thread's slices never overlap).
    fn call(&self, kind: RecKind, now: u64) -> Rec {
        let start = match self.op_t.max(self.last_end) {
            0 => now,
            t => t.min(now),
        };
        Rec { t_start: start, t_end: now, kind: kind as u8, op: self.op, ..Rec::default() }
    }

    fn writer(&mut self) -> Option<&mut Writer> {
        if self.file.is_none() && !self.failed {
            match Writer::create() {
                Some(w) => self.file = Some(w),
                None => self.failed = true,
            }
        }
        self.file.as_mut()
    }

    fn push(&mut self, rec: Rec) {
        self.last_end = rec.t_end;
        if let Some(w) = self.writer() {
            w.push(rec);
        }
    }
}

/// One thread's file, mapped shared.
struct Writer {
    map: memmap2::MmapRaw,
    cap: u64,
    every: u64,
    count: u64,
    skipped: u64,
    /// Records without a message seen so far (sampled by this count).
    calls: u64,
}

fn thread_name() -> [u8; format::NAME_LEN] {
    let mut buf = [0u8; format::NAME_LEN];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (NUL included) into buf.
    unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr(), 0, 0, 0) };
    buf
}

fn process_name() -> [u8; format::NAME_LEN] {
    let mut buf = [0u8; format::NAME_LEN];
    if let Ok(c) = std::fs::read("/proc/self/comm") {
        let c = c.strip_suffix(b"\n").unwrap_or(&c);
        let n = c.len().min(format::NAME_LEN - 1);
        buf[..n].copy_from_slice(&c[..n]);
    }
    buf
}

impl Writer {
    fn create() -> Option<Writer> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = RUN_DIR.get()?;
        let pid = std::process::id();
        let tid = nix::unistd::gettid().as_raw() as u32;
        let path = dir.join(format!("{}{pid}-{tid}{}", format::PREFIX, format::SUFFIX));
        let budget = BUDGET.load(Relaxed);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .ok()?;
        // Every block now: a full disk is a missing trace file, never a
        // SIGBUS at the first touch of a page.
        if nix::fcntl::posix_fallocate(&file, 0, budget as libc::off_t).is_err() {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let map = memmap2::MmapOptions::new().len(budget as usize).map_raw(&file).ok()?;
        let cap = (budget as usize - format::HEADER) as u64 / format::RECORD as u64;
        let w = Writer { map, cap, every: 1, count: 0, skipped: 0, calls: 0 };
        w.put(0, format::MAGIC);
        w.put(format::H_PID, &pid.to_le_bytes());
        w.put(format::H_TID, &tid.to_le_bytes());
        w.put(format::H_SLOT, &(SLOT_INDEX.load(Relaxed) as u32).to_le_bytes());
        w.put(format::H_CAP, &cap.to_le_bytes());
        w.put(format::H_COMM, &process_name());
        w.put(format::H_THREAD, &thread_name());
        w.sync_header();
        Some(w)
    }

    fn put(&self, at: usize, bytes: &[u8]) {
        assert!(at + bytes.len() <= self.map.len(), "trace write outside its file");
        // SAFETY: in bounds (checked above); this thread is the file's only
        // writer and nobody reads it until the process is gone, and no
        // Rust reference into the mapping exists.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.map.as_mut_ptr().add(at), bytes.len()) };
    }

    fn get(&self, i: u64) -> Rec {
        let at = format::HEADER + i as usize * format::RECORD;
        let mut b = [0u8; format::RECORD];
        assert!(at + format::RECORD <= self.map.len(), "trace read outside its file");
        // SAFETY: in bounds (checked above); only this thread writes the file.
        unsafe { std::ptr::copy_nonoverlapping(self.map.as_ptr().add(at), b.as_mut_ptr(), format::RECORD) };
        Rec::from_bytes(&b).unwrap_or_default()
    }

    fn sync_header(&self) {
        self.put(format::H_EVERY, &self.every.to_le_bytes());
        self.put(format::H_SKIPPED, &self.skipped.to_le_bytes());
        // The count last: a record counted is a record written.
        self.put(format::H_COUNT, &self.count.to_le_bytes());
    }

    /// Kept by the sampling rule at `every`: messages by sequence number
    /// (so the sender's and the receiver's files keep the same ones),
    /// other records by their own count.
    fn keeps(every: u64, rec: &Rec, calls: u64) -> bool {
        if rec.is_message() {
            rec.seq.is_multiple_of(every)
        } else {
            calls.is_multiple_of(every)
        }
    }

    fn push(&mut self, rec: Rec) {
        let calls = self.calls;
        if !rec.is_message() {
            self.calls += 1;
        }
        if !Self::keeps(self.every, &rec, calls) {
            self.skipped += 1;
            self.put(format::H_SKIPPED, &self.skipped.to_le_bytes());
            return;
        }
        while self.count >= self.cap {
            if !self.thin() {
                self.skipped += 1;
                return;
            }
            if !Self::keeps(self.every, &rec, calls) {
                self.skipped += 1;
                self.put(format::H_SKIPPED, &self.skipped.to_le_bytes());
                return;
            }
        }
        self.put(format::HEADER + self.count as usize * format::RECORD, &rec.to_bytes());
        self.count += 1;
        self.put(format::H_COUNT, &self.count.to_le_bytes());
    }

    /// The file is full: keep every (2N)th message from now on, and only
    /// those of the records so far. False if nothing could be freed.
    fn thin(&mut self) -> bool {
        if self.every >= 1 << 40 {
            return false;
        }
        let every = self.every * 2;
        self.put(format::H_STATE, &format::STATE_THINNING.to_le_bytes());
        let mut kept = 0;
        let mut calls = 0u64;
        for i in 0..self.count {
            let r = self.get(i);
            let keep = if r.is_message() {
                r.seq.is_multiple_of(every)
            } else {
                calls += 1;
                (calls - 1).is_multiple_of(2)
            };
            if keep {
                if kept != i {
                    self.put(format::HEADER + kept as usize * format::RECORD, &r.to_bytes());
                }
                kept += 1;
            }
        }
        self.skipped += self.count - kept;
        self.count = kept;
        self.every = every;
        self.sync_header();
        self.put(format::H_STATE, &format::STATE_OK.to_le_bytes());
        self.count < self.cap
    }
}
