//! POSIX shared memory, as the textbook shows it: the producer calls
//! `shm_open(name, O_CREAT | O_RDWR, 0600)`, `ftruncate` and `mmap`, and an
//! unrelated consumer process opens the same name and maps it too. The
//! region holds the textbook's bounded buffer:
//!
//! ```text
//! offset 0   magic "ipcsring"
//!        8   in    (messages written so far; slot = in % slots)
//!       16   out   (messages read so far;    slot = out % slots)
//!       24   slot count
//!       32   slot size in bytes
//!       40   closed (the producer has sent its last message)
//!       48   sleepers on `in` (a consumer in FUTEX_WAIT, or about to be)
//!       56   sleepers on `out` (a producer, likewise)
//!       64   slot 0, slot 1, … each holding one whole message
//! ```
//!
//! A full ring makes the producer sleep in `FUTEX_WAIT` on `out`, an empty
//! one makes the consumer sleep on `in`; each side `FUTEX_WAKE`s the other
//! after moving its index, but only when the other says it sleeps: while
//! neither side waits, a message costs no system call at all. Nobody spins.
//!
//! `ftruncate` only sets the size: tmpfs finds a page for the region when
//! it is first touched, and a full `/dev/shm` answers that touch with
//! SIGBUS. So the producer reserves every page with `posix_fallocate` right
//! after `ftruncate` (a full `/dev/shm` is then an `ENOSPC` it can say),
//! setup tries the same reservation first so the run can say it before
//! any process starts, and the monitor never maps the object: it `pread`s
//! it, which returns bytes or an error, never a signal.
//!
//! Telemetry `aux` words: producer — [0] shm fd, [1] message size used,
//! [2] slot size; consumer — [0] shm fd.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::pair::Pair;
use super::pipe::ret_str;
use super::worker::{futex_wait, futex_wake, Pacer, WorkerCtx};
use super::{Info, Kind, Mechanism, Probe};
use crate::knobs::KnobId;
use crate::message::{self, Verifier};
pub use crate::model::detail::shm::{ShmDetail, ShmMap};
use crate::monitor::{Calls, NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, MechanismSnapshot};
use crate::supervisor::{cleanup, ObjectKind, Supervisor};
use crate::telemetry::{ExitStatus, Op, Telemetry};

pub static INFO: Info =
    Info { kind: Kind::Shm, knobs: KnobId::SHM, new: || Box::new(Shm::default()), worker: run_worker };

/// Bytes before slot 0.
pub const HEADER: usize = 64;
const MAGIC: u64 = u64::from_le_bytes(*b"ipcsring");
// Header words (index × 8 = byte offset).
const W_MAGIC: usize = 0;
const W_IN: usize = 1;
const W_OUT: usize = 2;
const W_SLOTS: usize = 3;
const W_SLOT_SIZE: usize = 4;
const W_CLOSED: usize = 5;
const W_SLEEP_IN: usize = 6;
const W_SLEEP_OUT: usize = 7;

/// How long one futex sleep lasts at most, so a knob change or the end of
/// the run is noticed.
const NAP: Duration = Duration::from_secs(1);

const CALL_SHM_OPEN: u64 = 1;
const CALL_FTRUNCATE: u64 = 2;
const CALL_MMAP: u64 = 3;
const CALL_FUTEX_WAIT: u64 = 4;
const CALL_UNLINK: u64 = 5;
const CALL_PUT: u64 = 6;
const CALL_GET: u64 = 7;
const CALL_MUNMAP: u64 = 8;
const CALL_FALLOCATE: u64 = 9;

fn format_call(call: u64, a: [u64; 3], ret: i64) -> String {
    let r = ret_str(ret);
    let word = |w: u64| if w == W_IN as u64 { "in" } else { "out" };
    match call {
        CALL_SHM_OPEN if a[0] == 1 => {
            format!("shm_open(\"/ipcscope-…-shm\", O_CREAT|O_EXCL|O_RDWR, 0600) = {r}")
        }
        CALL_SHM_OPEN => format!("shm_open(\"/ipcscope-…-shm\", O_RDWR, 0) = {r}"),
        CALL_FTRUNCATE => format!("ftruncate({}, {}) = {r}", a[0], a[1]),
        CALL_FALLOCATE => format!("posix_fallocate({}, 0, {}) = {r}", a[0], a[1]),
        CALL_MMAP => format!(
            "mmap(NULL, {}, PROT_READ|PROT_WRITE, MAP_SHARED, {}, 0) = {}",
            a[1],
            a[0],
            if ret < 0 { r } else { "0x…".into() }
        ),
        CALL_FUTEX_WAIT => format!(
            "futex(&{}, FUTEX_WAIT, {}) = {r}  ({})",
            word(a[0]),
            a[1],
            if a[0] == W_OUT as u64 { "ring full" } else { "ring empty" }
        ),
        CALL_UNLINK => format!("shm_unlink(\"/ipcscope-…-shm\") = {r}"),
        CALL_PUT => format!("slot[{}] ← {} bytes; in = {}", a[0], a[1], a[2]),
        CALL_GET => format!("slot[{}] → {} bytes; out = {}", a[0], a[1], a[2]),
        CALL_MUNMAP => format!("munmap(0x…, {}) = {r}", a[0]),
        _ => format!("call {call}"),
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Write => "copy into slot",
        Op::Read => "copy from slot",
        Op::Wait => "futex wait",
        Op::Open => "shm_open()",
        _ => crate::monitor::default_op_name(op),
    }
}

const CALLS: Calls = Calls { event: format_call, op: op_name };

#[derive(Default)]
pub struct Shm {
    pair: Pair,
    name: String,
}

impl Mechanism for Shm {
    fn kind(&self) -> Kind {
        Kind::Shm
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.pair = Pair::alloc(sup)?;
        self.name = sup.object_name("shm");
        sup.register_object(ObjectKind::Shm, &self.name)?;
        check_room(&self.name, sup.knobs().get(KnobId::ShmSize))?;
        self.spawn(sup)
    }

    fn victim(&self) -> Option<usize> {
        self.pair.victim()
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        // A new consumer could attach to the old ring, but its verifier
        // would not know what the last one received: start both afresh.
        self.pair.kill(sup);
        cleanup::unlink_object(ObjectKind::Shm, &self.name);
        check_room(&self.name, sup.knobs().get(KnobId::ShmSize))?;
        self.spawn(sup)
    }

    fn producers(&self) -> Vec<usize> {
        self.pair.producers()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        let (producer, consumer) = self.pair.trackers(CALLS, sup.dir_path());
        Box::new(ShmProbe {
            producer,
            consumer,
            producer_slot: self.pair.producer,
            consumer_slot: self.pair.consumer,
            name: self.name.clone(),
            file: None,
            history: VecDeque::new(),
            slots: 0,
            notes: NoteLog::default(),
            maps: Vec::new(),
        })
    }
}

/// Try, at setup, the reservation the producer will make: create the
/// object, unlink it at once (the producer creates it itself, `O_EXCL`),
/// and `posix_fallocate` its pages; closing gives them back.
fn check_room(name: &str, size: u64) -> Result<()> {
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR;
    let fd = nix::sys::mman::shm_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| anyhow::anyhow!("shm_open /dev/shm{name}: {}", e.desc()))?;
    let _ = nix::sys::mman::shm_unlink(name);
    nix::unistd::ftruncate(&fd, size as libc::off_t)
        .map_err(|e| anyhow::anyhow!("ftruncate /dev/shm{name} to {size} bytes: {}", e.desc()))?;
    nix::fcntl::posix_fallocate(&fd, 0, size as libc::off_t).map_err(|e| no_room(size, e))?;
    Ok(())
}

/// The one line for a failed reservation: how much room `/dev/shm` has and
/// what `shm.size` asks for.
fn no_room(size: u64, e: nix::errno::Errno) -> anyhow::Error {
    if e != nix::errno::Errno::ENOSPC {
        return anyhow::anyhow!("posix_fallocate of {} in /dev/shm: {}", bytes(size), e.desc());
    }
    let free = nix::sys::statvfs::statvfs("/dev/shm")
        .map(|v| bytes(v.blocks_available().saturating_mul(v.fragment_size())))
        .unwrap_or_else(|_| "too little".into());
    anyhow::anyhow!(
        "/dev/shm has {free} free, shm.size={} needs {} (ENOSPC from posix_fallocate)",
        knob_size(size),
        bytes(size)
    )
}

/// `8 KiB`, `16 MiB`, `4.5 KiB`, `100 bytes`.
fn bytes(n: u64) -> String {
    const K: u64 = 1024;
    match n {
        n if n >= K * K && n % (K * K) == 0 => format!("{} MiB", n / (K * K)),
        n if n >= K * K => format!("{:.1} MiB", n as f64 / (K * K) as f64),
        n if n >= K && n % K == 0 => format!("{} KiB", n / K),
        n if n >= K => format!("{:.1} KiB", n as f64 / K as f64),
        n => format!("{n} bytes"),
    }
}

/// A size as `--set` takes it: `16M`, `64K`, or bytes.
fn knob_size(n: u64) -> String {
    const K: u64 = 1024;
    match n {
        n if n >= K * K && n % (K * K) == 0 => format!("{}M", n / (K * K)),
        n if n >= K && n % K == 0 => format!("{}K", n / K),
        n => n.to_string(),
    }
}

impl Shm {
    fn spawn(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.pair.spawn_named(sup, Kind::Shm, &self.name)
    }
}

fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "producer" => producer(ctx),
        "consumer" => consumer(ctx),
        _ => bail!("shared memory has no role {role:?}"),
    }
}

/// The ring as a worker maps it (read and write). The other process
/// writes it at the same time, so it is reached only through atomics and
/// raw-pointer copies, never a `&[u8]`/`&mut [u8]`.
struct Ring {
    map: memmap2::MmapRaw,
}

impl Ring {
    fn map(ctx: &WorkerCtx, fd: i32, len: usize) -> Result<Ring> {
        match memmap2::MmapOptions::new().len(len).map_raw(fd) {
            Ok(map) => {
                ctx.event(CALL_MMAP, [fd as u64, len as u64, 0], 0);
                Ok(Ring { map })
            }
            Err(e) => {
                let n = e.raw_os_error().unwrap_or(libc::EINVAL);
                ctx.event(CALL_MMAP, [fd as u64, len as u64, 0], -(n as i64));
                bail!("mmap: {e}");
            }
        }
    }

    /// Sleep (a while at most) until ring word `w` moves from `seen`, and
    /// log the futex wait.
    fn wait_on(&self, ctx: &WorkerCtx, w: usize, seen: u64) {
        ctx.op(Op::Wait);
        let sleepers = self.word(if w == W_IN { W_SLEEP_IN } else { W_SLEEP_OUT });
        sleepers.fetch_add(1, Ordering::SeqCst);
        // Said before looking again: a side that moves the word after this
        // sees us and wakes us (`wake`); one that moved it before, we see.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.word(w).load(Ordering::SeqCst) == seen {
            futex_wait(self.word(w), seen as u32, NAP);
        }
        sleepers.fetch_sub(1, Ordering::SeqCst);
        let now = self.word(w).load(Relaxed);
        ctx.event(
            CALL_FUTEX_WAIT,
            [w as u64, seen & 0xffff_ffff, 0],
            if now != seen { 0 } else { -(libc::ETIMEDOUT as i64) },
        );
    }

    /// Ring word `w` has moved: wake the other side if it sleeps on it.
    fn wake(&self, w: usize) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.word(if w == W_IN { W_SLEEP_IN } else { W_SLEEP_OUT }).load(Ordering::SeqCst) > 0 {
            futex_wake(self.word(w));
        }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!((i + 1) * 8 <= HEADER && HEADER <= self.map.len(), "ring word outside the header");
        // SAFETY: the header lies inside the mapping (checked above), 8-byte
        // aligned (the mapping is page aligned), lives as long as `self`,
        // and every process touches it only atomically.
        unsafe { &*(self.map.as_mut_ptr().add(i * 8) as *const AtomicU64) }
    }

    fn slots(&self) -> u64 {
        self.word(W_SLOTS).load(Relaxed).max(1)
    }

    fn slot_size(&self) -> usize {
        self.word(W_SLOT_SIZE).load(Relaxed) as usize
    }

    /// Start of slot `idx % slots` and its size, checked against the mapping.
    fn slot(&self, idx: u64) -> (*mut u8, usize) {
        let i = (idx % self.slots()) as usize;
        let size = self.slot_size();
        let off = HEADER + i * size;
        assert!(off + size <= self.map.len(), "slot outside the region");
        // SAFETY: `off` is inside the mapping (checked above).
        (unsafe { self.map.as_mut_ptr().add(off) }, size)
    }

    /// Copy `src` into the start of slot `idx`; the caller owns the slot
    /// (the ring is not full at `idx`).
    fn put(&self, idx: u64, src: &[u8]) {
        let (p, size) = self.slot(idx);
        assert!(src.len() <= size, "message larger than a slot");
        // SAFETY: `p..p+size` is inside the mapping and `src` is our own
        // buffer, so they do not overlap. By the in/out protocol (Acquire
        // on `out`, Release on `in`) the consumer does not touch this slot
        // until we publish it.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) };
    }

    /// Copy the start of slot `idx` into `dst`; the caller owns the slot
    /// (the ring is not empty at `idx`).
    fn get(&self, idx: u64, dst: &mut [u8]) {
        let (p, size) = self.slot(idx);
        assert!(dst.len() <= size, "read past a slot");
        // SAFETY: `p..p+size` is inside the mapping and `dst` is our own
        // buffer, so they do not overlap. By the in/out protocol (Acquire
        // on `in`, Release on `out`) the producer does not touch this slot
        // until we hand it back.
        unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) };
    }
}

fn shm_open(ctx: &WorkerCtx, name: &str, create: bool) -> Result<OwnedFd, Errno> {
    let flags = if create { OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR } else { OFlag::O_RDWR };
    let r = nix::sys::mman::shm_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR);
    let ret = match &r {
        Ok(fd) => fd.as_raw_fd() as i64,
        Err(e) => -(*e as i64),
    };
    if create || r.is_ok() {
        ctx.event(CALL_SHM_OPEN, [create as u64, 0, 0], ret);
    }
    r
}

/// Slot size for a region of `size` bytes cut into `slots`: 8-byte aligned,
/// and at least one smallest message.
pub fn slot_size(size: u64, slots: u64) -> u64 {
    (size.saturating_sub(HEADER as u64) / slots.max(1)) & !7
}

fn producer(ctx: &mut WorkerCtx) -> Result<()> {
    let name = ctx.arg("name")?.to_string();
    let size = ctx.knob(KnobId::ShmSize);
    let mut slots = ctx.knob(KnobId::ShmSlots).max(1);
    // Fewer, larger slots if the region is too small for this many.
    while slots > 1 && slot_size(size, slots) < message::MIN_LEN as u64 {
        slots -= 1;
    }
    let ssize = slot_size(size, slots);
    if ssize < message::MIN_LEN as u64 {
        bail!("shm.size={size} leaves no room for one message after the 64-byte header");
    }
    ctx.op(Op::Open);
    let owned = match shm_open(ctx, &name, true) {
        Ok(fd) => fd,
        Err(e) => bail!("shm_open: {}", std::io::Error::from(e)),
    };
    let fd = owned.as_raw_fd();
    ctx.me().aux[0].store(fd as u64, Relaxed);
    let r = nix::unistd::ftruncate(&owned, size as libc::off_t);
    ctx.event(CALL_FTRUNCATE, [fd as u64, size, 0], r.map_or_else(|e| -(e as i64), |()| 0));
    if let Err(e) = r {
        bail!("ftruncate: {}", std::io::Error::from(e));
    }
    // Every page now, so a full /dev/shm is ENOSPC here and not SIGBUS
    // at the first touch of a slot.
    let r = nix::fcntl::posix_fallocate(&owned, 0, size as libc::off_t);
    ctx.event(CALL_FALLOCATE, [fd as u64, size, 0], r.map_or_else(|e| -(e as i64), |()| 0));
    if let Err(e) = r {
        return Err(no_room(size, e));
    }
    let ring = Ring::map(ctx, fd, size as usize)?;
    ring.word(W_SLOTS).store(slots, Relaxed);
    ring.word(W_SLOT_SIZE).store(ssize, Relaxed);
    ring.word(W_MAGIC).store(MAGIC, Ordering::Release);
    ctx.me().aux[2].store(ssize, Relaxed);

    let sender = ctx.sender_id();
    let count = ctx.knob(KnobId::ProducerCount);
    let mut pacer = Pacer::producer();
    let mut seq = 0u64;
    let mut msg = vec![0u8; ssize as usize];
    while count == 0 || seq < count {
        pacer.wait(ctx);
        let size = ctx.msg_size().min(ssize as usize);
        ctx.me().aux[1].store(size as u64, Relaxed);
        let inn = ring.word(W_IN).load(Relaxed);
        // Wait while the ring is full: out has to move first.
        loop {
            let out = ring.word(W_OUT).load(Ordering::Acquire);
            if inn.wrapping_sub(out) < slots {
                break;
            }
            ring.wait_on(ctx, W_OUT, out);
        }
        ctx.op(Op::Write);
        message::encode(&mut msg[..size], sender, seq);
        ring.put(inn, &msg[..size]);
        ring.word(W_IN).store(inn + 1, Ordering::Release);
        ring.wake(W_IN);
        ctx.event(CALL_PUT, [inn % slots, size as u64, inn + 1], 0);
        ctx.count_sent(size);
        seq += 1;
    }
    // Tell the consumer there is no more; it unlinks the name when done.
    ring.word(W_CLOSED).store(1, Ordering::Release);
    ring.wake(W_IN);
    ctx.op(Op::Done);
    drop(ring);
    ctx.event(CALL_MUNMAP, [size, 0, 0], 0);
    Ok(())
}

fn consumer(ctx: &mut WorkerCtx) -> Result<()> {
    let name = ctx.arg("name")?.to_string();
    // The producer creates the object; until then the name does not exist.
    ctx.op(Op::Open);
    let owned = loop {
        match shm_open(ctx, &name, false) {
            Ok(fd) => break fd,
            Err(Errno::ENOENT) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => bail!("shm_open: {}", std::io::Error::from(e)),
        }
    };
    let fd = owned.as_raw_fd();
    ctx.me().aux[0].store(fd as u64, Relaxed);
    // Wait for ftruncate and the header (the producer sets magic last).
    let len = loop {
        let file = std::fs::File::from(owned.try_clone()?);
        let len = file.metadata()?.len() as usize;
        if len >= HEADER {
            break len;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let ring = Ring::map(ctx, fd, len)?;
    while ring.word(W_MAGIC).load(Ordering::Acquire) != MAGIC {
        std::thread::sleep(Duration::from_millis(10));
    }
    let slots = ring.slots();
    let ssize = ring.slot_size();
    let mut pacer = Pacer::consumer();
    let mut verifier = Verifier::new();
    let mut buf = vec![0u8; ssize];
    loop {
        pacer.wait(ctx);
        let out = ring.word(W_OUT).load(Relaxed);
        let done = loop {
            let inn = ring.word(W_IN).load(Ordering::Acquire);
            if inn != out {
                break false;
            }
            if ring.word(W_CLOSED).load(Ordering::Acquire) != 0 {
                break true;
            }
            ring.wait_on(ctx, W_IN, inn);
        };
        if done {
            break;
        }
        ctx.op(Op::Read);
        // One whole message per slot; its header says how long it is.
        let head = message::HEADER_LEN.min(ssize);
        ring.get(out, &mut buf[..head]);
        let len = match message::peek_header(&buf[..head]) {
            Ok(h) => (h.len as usize).min(ssize),
            Err(_) => ssize,
        };
        ring.get(out, &mut buf[..len.max(head)]);
        ring.word(W_OUT).store(out + 1, Ordering::Release);
        // A producer asleep on a full ring is woken once half of it is free,
        // not at every freed slot: it then refills a batch for one futex
        // wait and one wake (the hysteresis virtio's event index and most
        // rings use), instead of a wait and a wake per message.
        let free = slots - ring.word(W_IN).load(Ordering::Acquire).wrapping_sub(out + 1).min(slots);
        if free >= slots.div_ceil(2) {
            ring.wake(W_OUT);
        }
        ctx.event(CALL_GET, [out % slots, len as u64, out + 1], len as i64);
        ctx.receive(&mut verifier, &buf[..len]);
    }
    ctx.publish(verifier.counts());
    let r = nix::sys::mman::shm_unlink(name.as_str());
    ctx.event(CALL_UNLINK, [0; 3], r.map_or_else(|e| -(e as i64), |()| 0));
    ctx.op(Op::Done);
    Ok(())
}

struct ShmProbe {
    producer: ProcTracker,
    consumer: ProcTracker,
    producer_slot: usize,
    consumer_slot: usize,
    name: String,
    /// The monitor's own read-only descriptor of the object, and its inode.
    file: Option<(u64, std::fs::File)>,
    history: VecDeque<u64>,
    slots: u64,
    notes: NoteLog,
    /// Each worker's mapping of the object, by pid, and when /proc/PID/maps
    /// was last read: a worker maps the ring once, so the file (hundreds of
    /// lines) is read again once a second, not at every sample.
    maps: Vec<(i32, u64, Option<Mapping>)>,
}

/// One process's mapping of the object, from a line of /proc/PID/maps.
#[derive(Clone)]
struct Mapping {
    start: u64,
    end: u64,
    offset: u64,
    perms: String,
}

/// How long a process's mapping is taken as read, ms.
const MAPS_EVERY_MS: u64 = 1000;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Open the object read-only (`shm_open(O_RDONLY)`): the monitor reads it
/// with `pread` and cannot write it (EBADF), so it cannot disturb the ring.
/// Never a mapping: a page a full /dev/shm cannot back would SIGBUS the
/// supervisor, and a worker may shrink or replace the object at any time.
fn open_readonly(name: &str) -> Option<(u64, std::fs::File)> {
    let fd = nix::sys::mman::shm_open(name, nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty()).ok()?;
    let file = std::fs::File::from(fd);
    let ino = file.metadata().ok()?.ino();
    Some((ino, file))
}

/// Up to `len` bytes at `off`; fewer past the object's end, none on error.
fn read_at(file: &std::fs::File, off: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    buf.truncate(got);
    buf
}

/// Header word `i` of bytes read from offset 0.
fn word_of(head: &[u8], i: usize) -> u64 {
    head.get(i * 8..i * 8 + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

/// The ring word process `pid` sleeps on in FUTEX_WAIT, found from the
/// address in /proc/PID/syscall and its mapping of the object.
fn futex_word(pid: i32, map: &Mapping) -> Option<&'static str> {
    let sc = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let mut it = sc.split_whitespace();
    if it.next()? != "202" {
        return None;
    }
    let uaddr = u64::from_str_radix(it.next()?.trim_start_matches("0x"), 16).ok()?;
    if !(map.start..map.end).contains(&uaddr) {
        return None;
    }
    match (uaddr - map.start + map.offset) / 8 {
        1 => Some("in"),
        2 => Some("out"),
        _ => Some("?"),
    }
}

/// Where process `pid` mapped the object at `path`, from /proc/PID/maps
/// (the first mapping, if it has several; `(deleted)` once unlinked).
fn mapping(pid: i32, path: &str) -> Option<Mapping> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (range, perms, offset) = (f.next()?, f.next()?, f.next()?);
        let name = f.nth(2)?;
        let rest: Vec<&str> = f.collect();
        if name != path || !(rest.is_empty() || rest == ["(deleted)"]) {
            return None;
        }
        let (a, b) = range.split_once('-')?;
        Some(Mapping {
            start: u64::from_str_radix(a, 16).ok()?,
            end: u64::from_str_radix(b, 16).ok()?,
            offset: u64::from_str_radix(offset, 16).ok()?,
            perms: perms.to_string(),
        })
    })
}

impl ShmProbe {
    /// Process `pid`'s mapping of `path`: read again when a second has
    /// passed, the pid is new, or it had none yet.
    fn mapping_of(&mut self, pid: i32, path: &str, t_ms: u64) -> Option<Mapping> {
        match self.maps.iter_mut().find(|(p, _, _)| *p == pid) {
            Some((_, at, m)) if m.is_some() && t_ms.saturating_sub(*at) < MAPS_EVERY_MS => m.clone(),
            Some(entry) => {
                *entry = (pid, t_ms, mapping(pid, path));
                entry.2.clone()
            }
            None => {
                let m = mapping(pid, path);
                self.maps.push((pid, t_ms, m.clone()));
                if self.maps.len() > 4 {
                    self.maps.remove(0);
                }
                m
            }
        }
    }
}

impl Probe for ShmProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let prod = self.producer.sample(tel, t_ms);
        let cons = self.consumer.sample(tel, t_ms);
        let ps = tel.slot(self.producer_slot);
        let cs = tel.slot(self.consumer_slot);
        let path = format!("/dev/shm{}", self.name);
        let mut d = ShmDetail {
            name: self.name.clone(),
            path: path.clone(),
            msg_size: ps.aux[1].load(Relaxed),
            msg_size_knob: tel.effective(KnobId::SHM, KnobId::MsgSize),
            ..ShmDetail::default()
        };
        match std::fs::metadata(&path) {
            Ok(meta) => {
                d.exists = true;
                d.size = meta.len();
                d.mode = meta.mode() & 0o7777;
                d.nlink = meta.nlink();
                // A new object under the same name (after a restart) needs
                // a new descriptor.
                if self.file.as_ref().is_none_or(|(ino, _)| *ino != meta.ino()) {
                    self.file = open_readonly(&self.name);
                }
            }
            Err(_) => self.file = None,
        }
        if let Some((_, f)) = &self.file {
            let head = read_at(f, 0, HEADER * 2);
            if head.len() >= HEADER && word_of(&head, W_MAGIC) == MAGIC {
                d.mapped = true;
                d.in_idx = word_of(&head, W_IN);
                d.out_idx = word_of(&head, W_OUT);
                d.slots = word_of(&head, W_SLOTS);
                d.slot_size = word_of(&head, W_SLOT_SIZE);
                d.closed = word_of(&head, W_CLOSED) != 0;
                d.head_hex = hex(&head);
                if d.slots > 0 {
                    let off = (HEADER as u64).saturating_add((d.out_idx % d.slots).saturating_mul(d.slot_size));
                    d.next_offset = off;
                    d.next_hex = hex(&read_at(f, off, 64.min(d.slot_size) as usize));
                }
            }
        }
        for p in [&prod, &cons] {
            if !p.alive() {
                continue;
            }
            let Some(map) = self.mapping_of(p.pid, &path, t_ms) else { continue };
            if p.sleeps_in() == crate::snapshot::Wait::Futex {
                if let Some(w) = futex_word(p.pid, &map) {
                    d.futex_waits.push((p.role.clone(), w.to_string()));
                }
            }
            d.maps.push(ShmMap { role: p.role.clone(), pid: p.pid, start: map.start, end: map.end, perms: map.perms });
        }
        if d.mapped {
            self.slots = d.slots;
        }
        let depth = if d.mapped { d.in_idx.wrapping_sub(d.out_idx).min(d.slots) } else { 0 };
        self.history.push_back(depth);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }

        if d.msg_size > 0 && d.msg_size < d.msg_size_knob {
            self.notes.say(t_ms, "clamped", "note_shm_clamped", &[]);
        }
        if let Some(ExitStatus::Signal(_)) = ExitStatus::decode(cs.exit.load(Relaxed)) {
            self.notes.say(t_ms, "consumer-killed", "note_shm_consumer_killed", &[]);
        }
        if d.closed && !d.exists {
            self.notes.say(t_ms, "unlinked", "note_shm_unlinked", &[]);
        }

        MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Shm,
            channel: Channel { depth, capacity: self.slots, unit: crate::model::figures::Unit::Slots, over: 0 },
            integrity: crate::monitor::integrity_after(cs, [ps]),
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, KnobId::SHM),
            detail: Detail::Shm(d),
            processes: vec![prod, cons],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_sizes() {
        assert_eq!(slot_size(16384, 16), 1016);
        assert_eq!(slot_size(4096, 1), 4032);
        assert_eq!(slot_size(4096, 256), 8);
    }

    #[test]
    fn calls_read_like_strace() {
        assert_eq!(
            format_call(CALL_SHM_OPEN, [1, 0, 0], 5),
            "shm_open(\"/ipcscope-…-shm\", O_CREAT|O_EXCL|O_RDWR, 0600) = 5"
        );
        assert_eq!(format_call(CALL_FTRUNCATE, [5, 4096, 0], 0), "ftruncate(5, 4096) = 0");
    }
}
