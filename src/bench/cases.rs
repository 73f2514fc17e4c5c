//! The measured sides of each case: ipcscope's own framing over pipe, FIFO,
//! POSIX mq and a shared-memory ring, their raw twins (the same system
//! calls, no header, no checksum, no counters, no allocation), `memcpy`,
//! and a raw two-hop Unix-socket relay (the floor of a kernel-process
//! design). Every side is a [`Side`]: the orchestrator needs nothing else.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;

use super::peer::{self, next_command, read_exact, reply, write_all, Cmd, Peer, OP_PINGPONG, OP_STREAM};
use super::stats;
use crate::mechanisms::worker::{futex_wait, futex_wake, Frame, FrameReader};
use crate::message::{self, Verifier};
use crate::telemetry::Telemetry;

/// What one side of a case can do.
pub trait Side {
    /// Its processes, in chain order, for pinning.
    fn pids(&self) -> Vec<i32>;
    /// Why `op` at `size` cannot be measured here, if it cannot.
    fn unsupported(&self, _op: u64, _size: usize) -> Option<String> {
        None
    }
    /// `n` round trips of `size`-byte messages, each recorded in ns.
    fn pingpong(&mut self, size: usize, n: u64, h: &mut Histogram<u64>) -> Result<()>;
    /// `n` one-way messages; the time until the last is consumed.
    fn stream(&mut self, size: usize, n: u64) -> Result<Duration>;
}

// ------------------------------------------------------------ framing

/// ipcscope's header and checksum over a payload already in `buf`: the
/// same bytes `message::encode` writes, without generating the payload
/// pattern again (an application's data exists before it is sent).
pub fn stamp(buf: &mut [u8], sender: u32, seq: u64) {
    message::stamp(buf, sender, seq);
}

/// A pre-faulted message buffer with a payload pattern in it.
pub fn message_buffer(size: usize, sender: u32) -> Vec<u8> {
    let mut b = vec![0u8; size.max(message::MIN_LEN)];
    message::encode(&mut b, sender, 0);
    b
}

/// One process's framing state: sequence numbers out, a verifier and a
/// frame reader in, telemetry counters both ways.
pub struct Framing {
    sender: u32,
    seq: u64,
    verifier: Verifier,
    reader: FrameReader,
    tel: Telemetry,
    slot: usize,
}

impl Framing {
    pub fn new(tel: &Telemetry, slot: usize) -> Framing {
        Framing {
            sender: 0xBE00 + slot as u32,
            seq: 0,
            verifier: Verifier::new(),
            reader: FrameReader::sized(),
            tel: tel.clone(),
            slot,
        }
    }

    pub fn sender(&self) -> u32 {
        self.sender
    }

    /// Stamp the next header into `buf` and count it as sent.
    pub fn out(&mut self, buf: &mut [u8]) {
        stamp(buf, self.sender, self.seq);
        self.seq += 1;
        let s = self.tel.slot(self.slot);
        crate::telemetry::Slot::add(&s.sent_msgs, 1);
        crate::telemetry::Slot::add(&s.sent_bytes, buf.len() as u64);
    }

    /// Verify a received message and count it.
    pub fn check(&mut self, buf: &[u8]) -> Result<()> {
        self.verifier.check(buf).map_err(|e| anyhow!("message failed verification: {e:?}"))?;
        let s = self.tel.slot(self.slot);
        crate::telemetry::Slot::add(&s.recv_msgs, 1);
        crate::telemetry::Slot::add(&s.recv_bytes, buf.len() as u64);
        Ok(())
    }

    /// Receive one framed message from a byte stream and verify it.
    pub fn read_stream(&mut self, fd: RawFd) -> Result<()> {
        let msg = match self.reader.next(fd, &mut self.verifier, |_, _| {})? {
            Frame::Message(m) => m,
            Frame::Eof => bail!("end of file"),
        };
        self.verifier.check(msg).map_err(|e| anyhow!("message failed verification: {e:?}"))?;
        let s = self.tel.slot(self.slot);
        crate::telemetry::Slot::add(&s.recv_msgs, 1);
        crate::telemetry::Slot::add(&s.recv_bytes, msg.len() as u64);
        Ok(())
    }
}

// ------------------------------------------------------------ endpoints

/// One process's end of a two-way link.
pub trait End {
    fn send(&mut self, b: &[u8]) -> Result<()>;
    /// Receive one message of exactly `want` bytes into `b[..want]` (`b`
    /// may be longer: a message queue needs room for its largest message).
    fn recv(&mut self, b: &mut [u8], want: usize) -> Result<()>;
    /// Receive one message of `want` bytes and hand it to `take`: where it
    /// lies if the end can (a shared-memory slot, released after `take`),
    /// else copied into `b` first.
    fn recv_with(&mut self, b: &mut [u8], want: usize, take: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.recv(b, want)?;
        take(&b[..want])
    }
    /// The byte stream to read from, for the frame reader.
    fn stream_fd(&self) -> Option<RawFd> {
        None
    }
}

/// A pipe or FIFO pair: read one, write the other.
pub struct FdEnd {
    pub rd: OwnedFd,
    pub wr: OwnedFd,
}

impl End for FdEnd {
    fn send(&mut self, b: &[u8]) -> Result<()> {
        Ok(write_all(self.wr.as_raw_fd(), b)?)
    }
    fn recv(&mut self, b: &mut [u8], want: usize) -> Result<()> {
        Ok(read_exact(self.rd.as_raw_fd(), &mut b[..want])?)
    }
    fn stream_fd(&self) -> Option<RawFd> {
        Some(self.rd.as_raw_fd())
    }
}

/// Two POSIX message queues.
pub struct MqEnd {
    pub rd: libc::mqd_t,
    pub wr: libc::mqd_t,
    pub msgsize: usize,
}

impl End for MqEnd {
    fn send(&mut self, b: &[u8]) -> Result<()> {
        loop {
            // Raw mq_*: both ends share the two raw queue descriptors.
            // SAFETY: `b` is readable for `b.len()` bytes; mq_send keeps no
            // pointer, and a bad descriptor is EBADF, not UB.
            if unsafe { libc::mq_send(self.wr, b.as_ptr().cast(), b.len(), 0) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e.into());
            }
        }
    }
    fn recv(&mut self, b: &mut [u8], want: usize) -> Result<()> {
        loop {
            let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME);
            let mut ts: libc::timespec = now.map_or(libc::timespec { tv_sec: 0, tv_nsec: 0 }, |t| *t.as_ref());
            ts.tv_sec += 10;
            let mut prio = 0;
            // mq_receive wants a buffer of at least mq_msgsize bytes: the
            // callers' buffers are that large.
            if b.len() < self.msgsize {
                bail!("receive buffer smaller than the queue's message size");
            }
            // SAFETY: `b` is writable for `b.len()` bytes and `prio`/`ts`
            // are live; nothing is kept after the call.
            let n = unsafe { libc::mq_timedreceive(self.rd, b.as_mut_ptr().cast(), b.len(), &mut prio, &ts) };
            if n >= 0 {
                if n as usize != want {
                    bail!("mq message of {n} bytes, expected {want}");
                }
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(anyhow!("mq_timedreceive: {e}"));
            }
        }
    }
}

/// A bounded ring of message slots in shared memory.
#[repr(C)]
struct RingHdr {
    head: AtomicU64,
    _p0: [u64; 7],
    tail: AtomicU64,
    _p1: [u64; 7],
    /// A receiver sleeps on `head` / a sender on `tail` (futex variant).
    rx_waiting: AtomicU64,
    tx_waiting: AtomicU64,
}

pub const RING_SLOTS: u64 = 4;
const HDR: usize = 256;

/// One direction of the shared-memory link.
#[derive(Clone, Copy)]
struct Ring {
    base: *mut u8,
    slot: usize,
}

/// How a shared-memory end waits for its peer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wait {
    /// Sleep in the kernel on a futex; the other side wakes it.
    Futex,
    /// Spin (yielding the CPU every 64 polls): the labelled busy-wait variant.
    Spin,
}

impl Ring {
    fn hdr(&self) -> &RingHdr {
        // SAFETY: the region starts with a RingHdr, mapped shared, aligned.
        unsafe { &*(self.base as *const RingHdr) }
    }
    fn slot_ptr(&self, i: u64) -> *mut u8 {
        // SAFETY: inside the mapping: HDR + RING_SLOTS * slot bytes.
        unsafe { self.base.add(HDR + (i % RING_SLOTS) as usize * self.slot) }
    }

    fn wait_until(&self, wait: Wait, word: &AtomicU64, flag: &AtomicU64, ready: impl Fn() -> bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut polls = 0u32;
        while !ready() {
            match wait {
                Wait::Spin => {
                    std::hint::spin_loop();
                    polls += 1;
                    if polls.is_multiple_of(64) {
                        std::thread::yield_now(); // sched_yield
                        if polls.is_multiple_of(64 * 1024) && Instant::now() > deadline {
                            bail!("shared-memory peer stopped answering");
                        }
                    }
                }
                Wait::Futex => {
                    let seen = word.load(SeqCst);
                    flag.store(1, SeqCst);
                    if ready() {
                        flag.store(0, SeqCst);
                        break;
                    }
                    futex_wait(word, seen as u32, Duration::from_millis(100));
                    if Instant::now() > deadline {
                        bail!("shared-memory peer stopped answering");
                    }
                }
            }
        }
        Ok(())
    }

    fn send(&self, wait: Wait, b: &[u8]) -> Result<()> {
        let h = self.hdr();
        let head = h.head.load(SeqCst);
        self.wait_until(wait, &h.tail, &h.tx_waiting, || head - h.tail.load(SeqCst) < RING_SLOTS)?;
        // SAFETY: the slot is free (the receiver is past it) and holds `slot` bytes.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.slot_ptr(head), b.len().min(self.slot)) };
        h.head.store(head + 1, SeqCst);
        if wait == Wait::Futex && h.rx_waiting.swap(0, SeqCst) == 1 {
            futex_wake(&h.head);
        }
        Ok(())
    }

    fn recv(&self, wait: Wait, b: &mut [u8]) -> Result<()> {
        let len = b.len().min(self.slot);
        self.recv_with(wait, len, |slot| {
            b[..len].copy_from_slice(slot);
            Ok(())
        })
    }

    /// The next message, `len` bytes, where it lies in its slot; the slot
    /// goes back to the sender once `take` is done with it.
    fn recv_with(&self, wait: Wait, len: usize, take: impl FnOnce(&[u8]) -> Result<()>) -> Result<()> {
        let h = self.hdr();
        let tail = h.tail.load(SeqCst);
        self.wait_until(wait, &h.head, &h.rx_waiting, || h.head.load(SeqCst) > tail)?;
        // SAFETY: the slot is filled (head is past it) and holds `slot`
        // bytes; the sender writes it again only after `tail` moves past it,
        // below. Bytes have no invalid values: a peer breaking that rule
        // could only make the checksum fail.
        let msg = unsafe { std::slice::from_raw_parts(self.slot_ptr(tail), len.min(self.slot)) };
        let taken = take(msg);
        h.tail.store(tail + 1, SeqCst);
        if wait == Wait::Futex && h.tx_waiting.swap(0, SeqCst) == 1 {
            futex_wake(&h.tail);
        }
        taken
    }
}

pub struct ShmEnd {
    tx: Ring,
    rx: Ring,
    wait: Wait,
    _map: std::rc::Rc<ShmMap>,
}

impl End for ShmEnd {
    fn send(&mut self, b: &[u8]) -> Result<()> {
        self.tx.send(self.wait, b)
    }
    fn recv(&mut self, b: &mut [u8], want: usize) -> Result<()> {
        self.rx.recv(self.wait, &mut b[..want])
    }
    /// Verified where it lies: shared memory's point is that the receiver
    /// needs no copy of its own.
    fn recv_with(&mut self, _b: &mut [u8], want: usize, take: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.rx.recv_with(self.wait, want, take)
    }
}

/// A shared mapping of an (already unlinked) POSIX shm object. The peer
/// writes it concurrently: raw pointer and atomics only, never a slice.
pub struct ShmMap {
    ptr: *mut u8,
    _map: memmap2::MmapRaw,
}

// ------------------------------------------------------------ Linux sides

/// Which Linux mechanism a [`Linux`] side runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Pipe,
    Fifo,
    Mq,
    Shm(Wait),
}

/// Everything a side needs from the run: telemetry page, private dir, the
/// largest message size.
pub struct Env {
    pub tel: Telemetry,
    pub dir: std::path::PathBuf,
    pub max_size: usize,
    pub prefix: String,
    pub counter: std::cell::Cell<u32>,
}

impl Env {
    pub fn unique(&self, what: &str) -> String {
        let n = self.counter.get();
        self.counter.set(n + 1);
        format!("{}{what}-{n}", self.prefix)
    }
}

/// A Linux mechanism with ipcscope's framing (`framed`) or raw.
pub struct Linux {
    peer: Peer,
    end: Box<dyn End>,
    framed: Option<Framing>,
    buf: Vec<u8>,
    rbuf: Vec<u8>,
    via: Via,
    mq_msgsize: usize,
}

pub const MQ_MAX: usize = 8192;

fn make_pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| anyhow!("pipe: {}", io::Error::from(e)))
}

fn open_path(p: &Path, flags: i32) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(p, OFlag::from_bits_retain(flags) | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| anyhow!("open {}: {}", p.display(), io::Error::from(e)))
}

fn mq_create(name: &str, msgsize: usize) -> Result<libc::mqd_t> {
    let c = CString::new(name)?;
    // SAFETY: mq_attr is plain integers; all-zero is a valid value.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 10;
    attr.mq_msgsize = msgsize as _;
    // SAFETY: `c` is a NUL-terminated name and `attr` a live mq_attr;
    // mq_open reads both and keeps neither.
    let q = unsafe {
        libc::mq_open(c.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC, 0o600, &attr)
    };
    if q < 0 {
        bail!("mq_open {name}: {}", io::Error::last_os_error());
    }
    // Unlinked at once: nothing is left behind whatever happens next.
    let _ = nix::mqueue::mq_unlink(c.as_c_str());
    Ok(q)
}

fn shm_create(name: &str, len: usize) -> Result<ShmMap> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let fd = nix::sys::mman::shm_open(name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
        .map_err(|e| anyhow!("shm_open {name}: {}", io::Error::from(e)))?;
    // Unlinked at once: nothing is left behind whatever happens next.
    let _ = nix::sys::mman::shm_unlink(name);
    nix::unistd::ftruncate(&fd, len as i64).map_err(|e| anyhow!("ftruncate: {}", io::Error::from(e)))?;
    let map = memmap2::MmapOptions::new().len(len).map_raw(&fd).map_err(|e| anyhow!("mmap: {e}"))?;
    let ptr = map.as_mut_ptr();
    // Pre-fault: every page exists before anything is timed.
    // SAFETY: `ptr..ptr+len` is the whole mapping, and nobody else has it
    // yet (the peers are made from it afterwards).
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    Ok(ShmMap { ptr, _map: map })
}

impl Linux {
    pub fn new(env: &Env, via: Via, framed: bool) -> Result<Linux> {
        let tag = match via {
            Via::Pipe => "pipe",
            Via::Fifo => "fifo",
            Via::Mq => "mq",
            Via::Shm(_) => "shm",
        };
        let name = format!("bench-{tag}{}", if framed { "" } else { "-raw" });
        let mq_msgsize = env.max_size.clamp(message::MIN_LEN, MQ_MAX);
        // The peer's end is made in the child from descriptor numbers (or
        // paths), so the closure holds nothing the parent must keep.
        type Make = Box<dyn FnOnce() -> Result<Box<dyn End>>>;
        let mut close_after: Vec<OwnedFd> = Vec::new();
        let (mine, theirs, keep): (Make, Make, Vec<RawFd>) = match via {
            Via::Pipe => {
                let (a_r, a_w) = make_pipe()?;
                let (b_r, b_w) = make_pipe()?;
                let (ar, bw) = (a_r.as_raw_fd(), b_w.as_raw_fd());
                close_after.push(a_r);
                close_after.push(b_w);
                (
                    Box::new(move || Ok(Box::new(FdEnd { rd: b_r, wr: a_w }) as Box<dyn End>)),
                    // SAFETY: inherited descriptors the child alone owns now.
                    Box::new(move || unsafe {
                        Ok(Box::new(FdEnd { rd: OwnedFd::from_raw_fd(ar), wr: OwnedFd::from_raw_fd(bw) })
                            as Box<dyn End>)
                    }),
                    vec![ar, bw],
                )
            }
            Via::Fifo => {
                let a = env.dir.join(env.unique("fifo-a"));
                let b = env.dir.join(env.unique("fifo-b"));
                for p in [&a, &b] {
                    let mode = nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR;
                    if let Err(e) = nix::unistd::mkfifo(p.as_path(), mode) {
                        bail!("mkfifo {}: {}", p.display(), io::Error::from(e));
                    }
                }
                let (a2, b2) = (a.clone(), b.clone());
                (
                    // Both sides open A first, then B: no deadlock. Once
                    // both are open the paths go: nothing is left behind.
                    Box::new(move || {
                        let wr = open_path(&a, libc::O_WRONLY)?;
                        let rd = open_path(&b, libc::O_RDONLY)?;
                        let _ = std::fs::remove_file(&a);
                        let _ = std::fs::remove_file(&b);
                        Ok(Box::new(FdEnd { rd, wr }) as Box<dyn End>)
                    }),
                    Box::new(move || {
                        let rd = open_path(&a2, libc::O_RDONLY)?;
                        let wr = open_path(&b2, libc::O_WRONLY)?;
                        Ok(Box::new(FdEnd { rd, wr }) as Box<dyn End>)
                    }),
                    Vec::new(),
                )
            }
            Via::Mq => {
                let a = mq_create(&format!("/{}", env.unique("mq-a")), mq_msgsize)?;
                let b = mq_create(&format!("/{}", env.unique("mq-b")), mq_msgsize)?;
                (
                    Box::new(move || Ok(Box::new(MqEnd { rd: b, wr: a, msgsize: mq_msgsize }) as Box<dyn End>)),
                    Box::new(move || Ok(Box::new(MqEnd { rd: a, wr: b, msgsize: mq_msgsize }) as Box<dyn End>)),
                    vec![a, b],
                )
            }
            Via::Shm(wait) => {
                let slot = env.max_size.max(message::MIN_LEN).div_ceil(64) * 64;
                let ring_len = HDR + RING_SLOTS as usize * slot;
                let map = std::rc::Rc::new(shm_create(&format!("/{}", env.unique("shm")), 2 * ring_len)?);
                let a = Ring { base: map.ptr, slot };
                // SAFETY: the second ring starts inside the mapping.
                let b = Ring { base: unsafe { map.ptr.add(ring_len) }, slot };
                let m2 = map.clone();
                (
                    Box::new(move || Ok(Box::new(ShmEnd { tx: a, rx: b, wait, _map: map }) as Box<dyn End>)),
                    Box::new(move || Ok(Box::new(ShmEnd { tx: b, rx: a, wait, _map: m2 }) as Box<dyn End>)),
                    Vec::new(),
                )
            }
        };
        let tel = env.tel.clone();
        let peer = peer::spawn(&name, &keep, move |ctl| {
            let end = theirs()?;
            serve_linux(ctl, end, framed, &tel, mq_msgsize)
        })?;
        drop(close_after);
        let end = mine()?;
        Ok(Linux {
            peer,
            end,
            framed: framed.then(|| Framing::new(&env.tel, 0)),
            buf: Vec::new(),
            rbuf: Vec::new(),
            via,
            mq_msgsize,
        })
    }

    fn prepare(&mut self, size: usize) {
        if self.buf.len() != size {
            self.buf = message_buffer(size, self.framed.as_ref().map_or(0, |f| f.sender()));
            self.rbuf = vec![1u8; size.max(self.mq_msgsize)];
        }
    }

    fn send_one(&mut self) -> Result<()> {
        if let Some(f) = &mut self.framed {
            f.out(&mut self.buf);
        }
        self.end.send(&self.buf)
    }

    fn recv_one(&mut self) -> Result<()> {
        match (&mut self.framed, self.end.stream_fd()) {
            (Some(f), Some(fd)) => f.read_stream(fd),
            (Some(f), None) => {
                let n = self.buf.len();
                self.end.recv_with(&mut self.rbuf, n, &mut |m| f.check(m))
            }
            (None, _) => self.end.recv(&mut self.rbuf, self.buf.len()),
        }
    }
}

/// The peer of a Linux side: echo or sink, framed or raw, per command.
fn serve_linux(ctl: RawFd, mut end: Box<dyn End>, framed: bool, tel: &Telemetry, mq_msgsize: usize) -> Result<()> {
    let mut framing = framed.then(|| Framing::new(tel, 1));
    let mut buf = Vec::new();
    let mut rbuf = Vec::new();
    while let Some(cmd) = next_command(ctl) {
        let size = cmd.size as usize;
        if buf.len() != size {
            buf = message_buffer(size, 0xBE01);
            rbuf = vec![1u8; size.max(mq_msgsize)];
        }
        for _ in 0..cmd.count {
            match (&mut framing, end.stream_fd()) {
                (Some(f), Some(fd)) => f.read_stream(fd)?,
                (Some(f), None) => end.recv_with(&mut rbuf, size, &mut |m| f.check(m))?,
                (None, _) => end.recv(&mut rbuf, size)?,
            }
            if cmd.op == OP_PINGPONG {
                if let Some(f) = &mut framing {
                    f.out(&mut buf);
                }
                end.send(&buf)?;
            }
        }
        reply(ctl, 0)?;
    }
    Ok(())
}

impl Side for Linux {
    fn pids(&self) -> Vec<i32> {
        vec![self.peer.pid]
    }

    fn unsupported(&self, _op: u64, size: usize) -> Option<String> {
        if size < message::MIN_LEN {
            return Some(format!("smaller than ipcscope's {}-byte minimum message", message::MIN_LEN));
        }
        match self.via {
            Via::Mq if size > MQ_MAX => {
                Some(format!("mq message size is capped at msgsize_max = {MQ_MAX} B without CAP_SYS_RESOURCE"))
            }
            _ => None,
        }
    }

    fn pingpong(&mut self, size: usize, n: u64, h: &mut Histogram<u64>) -> Result<()> {
        self.prepare(size);
        self.peer.command(Cmd { op: OP_PINGPONG, size: size as u64, count: n })?;
        for _ in 0..n {
            let t = Instant::now();
            self.send_one()?;
            self.recv_one()?;
            stats::record(h, t.elapsed().as_nanos() as u64);
        }
        self.peer.answer().context("peer")?;
        Ok(())
    }

    fn stream(&mut self, size: usize, n: u64) -> Result<Duration> {
        self.prepare(size);
        self.peer.command(Cmd { op: OP_STREAM, size: size as u64, count: n })?;
        let t = Instant::now();
        for _ in 0..n {
            self.send_one()?;
        }
        self.peer.answer().context("peer")?;
        Ok(t.elapsed())
    }
}

// ------------------------------------------------------------ memcpy

/// `memcpy` of the same size in one process: the bandwidth any copy-based
/// transfer is judged against.
#[derive(Default)]
pub struct Memcpy {
    src: Vec<u8>,
    dst: Vec<u8>,
}

impl Side for Memcpy {
    fn pids(&self) -> Vec<i32> {
        Vec::new()
    }
    fn unsupported(&self, op: u64, _size: usize) -> Option<String> {
        (op == OP_PINGPONG).then(|| "memcpy has no round trip".into())
    }
    fn pingpong(&mut self, _size: usize, _n: u64, _h: &mut Histogram<u64>) -> Result<()> {
        bail!("memcpy has no round trip")
    }
    fn stream(&mut self, size: usize, n: u64) -> Result<Duration> {
        if self.src.len() != size {
            self.src = message_buffer(size, 1);
            self.dst = vec![1u8; size];
        }
        let t = Instant::now();
        for _ in 0..n {
            self.dst.copy_from_slice(std::hint::black_box(&self.src));
            std::hint::black_box(&mut self.dst);
        }
        Ok(t.elapsed())
    }
}

// ------------------------------------------------------------ raw relay

/// A raw round trip through a middle process, as a message to an emulated
/// kernel takes: client → relay → server → relay → client, Unix stream
/// sockets, bare `read`/`write`.
pub struct Relay {
    relay: Peer,
    server: Peer,
    sock: OwnedFd,
    buf: Vec<u8>,
}

impl Relay {
    pub fn new() -> Result<Relay> {
        let (c, r1) = peer::socketpair()?;
        let (r2, s) = peer::socketpair()?;
        let (r1f, r2f, sf) = (r1.as_raw_fd(), r2.as_raw_fd(), s.as_raw_fd());
        let mut relay = peer::spawn("bench-relay", &[r1f, r2f], move |_ctl| forward(r1f, r2f))?;
        relay.daemon = true;
        drop((r1, r2));
        let server = peer::spawn("bench-sink", &[sf], move |ctl| serve_raw(ctl, sf))?;
        drop(s);
        Ok(Relay { relay, server, sock: c, buf: Vec::new() })
    }
}

/// Forward bytes both ways between two sockets until either closes.
fn forward(a: RawFd, b: RawFd) -> Result<()> {
    let mut buf = vec![0u8; 256 << 10];
    let mut fds = [
        libc::pollfd { fd: a, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: b, events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: `fds` is two writable pollfds; the kernel writes
        // `revents` only.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for (i, (from, to)) in [(a, b), (b, a)].into_iter().enumerate() {
            if fds[i].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                let n = crate::mechanisms::worker::read_some(from, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                write_all(to, &buf[..n])?;
            }
        }
    }
}

/// The far end of the relay: echo or sink `size`-byte messages, raw.
fn serve_raw(ctl: RawFd, fd: RawFd) -> Result<()> {
    let mut buf = Vec::new();
    while let Some(cmd) = next_command(ctl) {
        buf.resize(cmd.size as usize, 7);
        for _ in 0..cmd.count {
            read_exact(fd, &mut buf)?;
            if cmd.op == OP_PINGPONG {
                write_all(fd, &buf)?;
            }
        }
        reply(ctl, 0)?;
    }
    Ok(())
}

impl Side for Relay {
    fn pids(&self) -> Vec<i32> {
        vec![self.relay.pid, self.server.pid]
    }
    fn pingpong(&mut self, size: usize, n: u64, h: &mut Histogram<u64>) -> Result<()> {
        self.buf.resize(size, 3);
        self.server.command(Cmd { op: OP_PINGPONG, size: size as u64, count: n })?;
        let fd = self.sock.as_raw_fd();
        for _ in 0..n {
            let t = Instant::now();
            write_all(fd, &self.buf)?;
            read_exact(fd, &mut self.buf)?;
            stats::record(h, t.elapsed().as_nanos() as u64);
        }
        self.server.answer()?;
        Ok(())
    }
    fn stream(&mut self, size: usize, n: u64) -> Result<Duration> {
        self.buf.resize(size, 3);
        self.server.command(Cmd { op: OP_STREAM, size: size as u64, count: n })?;
        let t = Instant::now();
        for _ in 0..n {
            write_all(self.sock.as_raw_fd(), &self.buf)?;
        }
        self.server.answer()?;
        Ok(t.elapsed())
    }
}
