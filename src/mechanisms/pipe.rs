//! The ordinary (anonymous) pipe, as the textbook draws it: the producer
//! calls `pipe()` and forks the consumer, so they are parent and child;
//! each closes the end it does not use; data flows one way through a
//! kernel buffer of fixed capacity.
//!
//! Telemetry `aux` words: producer slot — [0] write-end fd, [1] reply
//! read-end fd (duplex), [2] consumer pid; consumer slot — [0] read-end fd,
//! [1] reply write-end fd (duplex).

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use anyhow::{bail, Result};

use super::pair::Pair;
use super::worker::{self, errno, Frame, FrameReader, Pacer, WorkerCtx};
use super::{Info, Kind, Mechanism, Probe};
use crate::knobs::KnobId;
use crate::message::{self, Verifier};
pub use crate::model::detail::pipe::{EndsHeld, PipeDetail};
use crate::monitor::{procfs, Calls, NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, FdEntry, MechanismSnapshot};
use crate::supervisor::{Supervisor, WorkerSpec};
use crate::telemetry::{ExitStatus, Op, Telemetry};

pub static INFO: Info =
    Info { kind: Kind::Pipe, knobs: KnobId::PIPE, new: || Box::new(Pipe::default()), worker: run_worker };

// System calls the pipe workers record for the event log.
const CALL_PIPE: u64 = 1;
const CALL_FORK: u64 = 2;
const CALL_CLOSE: u64 = 3;
const CALL_WRITE: u64 = 4;
const CALL_READ: u64 = 5;
const CALL_SETPIPE_SZ: u64 = 6;

fn format_call(call: u64, a: [u64; 3], ret: i64) -> String {
    let r = ret_str(ret);
    match call {
        CALL_PIPE => format!("pipe([{}, {}]) = {r}", a[0], a[1]),
        CALL_FORK => format!("fork() = {r}"),
        CALL_CLOSE => format!("close({}) = {r}", a[0]),
        CALL_WRITE => format!("write({}, {} bytes) = {r}", a[0], a[1]),
        CALL_READ => format!("read({}, {} bytes) = {r}", a[0], a[1]),
        CALL_SETPIPE_SZ => format!("fcntl({}, F_SETPIPE_SZ, {}) = {r}", a[0], a[1]),
        _ => format!("call {call}"),
    }
}

/// A system call's result the way strace prints it: a number, or -1 and
/// the errno's name.
pub fn ret_str(ret: i64) -> String {
    if ret >= 0 {
        ret.to_string()
    } else {
        format!("-1 {}", errno_name(-ret as i32))
    }
}

/// The errno's name (`EPIPE`), for the event log.
pub use crate::errno::name as errno_name;

const CALLS: Calls = Calls { event: format_call, op: op_name };

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Write => "write()",
        Op::Read => "read()",
        _ => crate::monitor::default_op_name(op),
    }
}

#[derive(Default)]
pub struct Pipe {
    pair: Pair,
}

impl Mechanism for Pipe {
    fn kind(&self) -> Kind {
        Kind::Pipe
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.pair = Pair::alloc(sup)?;
        self.spawn(sup)
    }

    fn victim(&self) -> Option<usize> {
        self.pair.victim()
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        // An anonymous pipe cannot be reopened: the pair starts afresh.
        self.pair.kill(sup);
        self.spawn(sup)
    }

    fn producers(&self) -> Vec<usize> {
        self.pair.producers()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        let (producer, consumer) = self.pair.trackers(CALLS, sup.dir_path());
        Box::new(PipeProbe {
            producer,
            consumer,
            producer_slot: self.pair.producer,
            consumer_slot: self.pair.consumer,
            history: VecDeque::new(),
            capacity: 0,
            notes: NoteLog::default(),
            generation: 0,
            parent_child: None,
        })
    }
}

impl Pipe {
    fn spawn(&mut self, sup: &mut Supervisor) -> Result<()> {
        // The producer forks the consumer itself (they share the pipe).
        sup.telemetry().reset_slot(self.pair.consumer);
        let spec = WorkerSpec::new(Kind::Pipe, "producer", self.pair.producer).arg("consumer-slot", self.pair.consumer);
        sup.spawn(&spec)?;
        Ok(())
    }
}

fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "producer" => producer(ctx),
        _ => bail!("the pipe has no role {role:?} (the consumer is forked by the producer)"),
    }
}

fn pipe_pair() -> Result<(i32, i32)> {
    use std::os::fd::IntoRawFd;
    // Raw numbers from here on: the lesson shows them and closes each
    // one by hand (pipe.close_unused), so no OwnedFd closes them for us.
    let (r, w) = nix::unistd::pipe().map_err(|e| anyhow::anyhow!("pipe: {}", std::io::Error::from(e)))?;
    Ok((r.into_raw_fd(), w.into_raw_fd()))
}

fn close(ctx: &WorkerCtx, fd: i32) {
    // SAFETY: `fd` came from pipe_pair (a raw descriptor nothing else
    // owns) and each end is closed once; a stale number is only EBADF.
    let r = unsafe { libc::close(fd) };
    ctx.event(CALL_CLOSE, [fd as u64, 0, 0], r as i64);
}

fn producer(ctx: &mut WorkerCtx) -> Result<()> {
    let consumer_slot = ctx.arg_usize("consumer-slot")?;
    let close_unused = ctx.knob(KnobId::PipeCloseUnused) != 0;
    let duplex = ctx.knob(KnobId::PipeDuplex) != 0;
    if ctx.knob(KnobId::PipeSigpipe) == 0 {
        worker::default_sigpipe();
    }
    let (r, w) = pipe_pair()?;
    ctx.event(CALL_PIPE, [r as u64, w as u64, 0], 0);
    let reply = if duplex {
        let (rr, rw) = pipe_pair()?;
        ctx.event(CALL_PIPE, [rr as u64, rw as u64, 0], 0);
        Some((rr, rw))
    } else {
        None
    };
    let mut capacity = ctx.knob(KnobId::PipeCapacity);
    set_capacity(ctx, w, capacity);

    // SAFETY: this process is single-threaded here, so fork is safe.
    let child = unsafe { libc::fork() };
    if child < 0 {
        let e = std::io::Error::last_os_error();
        let limit = crate::supervisor::limit_text("RLIMIT_NPROC", nix::sys::resource::Resource::RLIMIT_NPROC, 1);
        bail!("fork of the consumer: {e}{}", limit.map(|l| format!(" ({l})")).unwrap_or_default());
    }
    if child == 0 {
        // The child is the consumer: switch to its own slot and name.
        ctx.slot = consumer_slot;
        ctx.announce();
        worker::set_name("pipe-consumer");
        worker::die_with(ctx.supervisor)?;
        ctx.me().aux[0].store(r as u64, Relaxed);
        if close_unused {
            close(ctx, w);
        }
        if let Some((rr, rw)) = reply {
            ctx.me().aux[1].store(rw as u64, Relaxed);
            if close_unused {
                close(ctx, rr);
            }
        }
        let code = consumer(ctx, r, reply.map(|p| p.1));
        // SAFETY: leave without running the parent's atexit handlers twice.
        unsafe { libc::_exit(code) };
    }
    ctx.event(CALL_FORK, [0; 3], child as i64);
    let me = ctx.me();
    me.aux[0].store(w as u64, Relaxed);
    me.aux[2].store(child as u64, Relaxed);
    if close_unused {
        close(ctx, r);
    }
    if let Some((rr, rw)) = reply {
        ctx.me().aux[1].store(rr as u64, Relaxed);
        if close_unused {
            close(ctx, rw);
        }
    }

    let sender = ctx.sender_id();
    let count = ctx.knob(KnobId::ProducerCount);
    let mut pacer = Pacer::producer();
    let mut buf = vec![0u8; 1 << 20];
    let mut ack = FrameReader::sized();
    let mut ack_verifier = Verifier::new();
    let mut seq = 0u64;
    let mut child_done = false;
    loop {
        if !child_done {
            child_done = reap_child(ctx, child, consumer_slot);
        }
        if count > 0 && seq >= count {
            break;
        }
        pacer.wait(ctx);
        let want = ctx.knob(KnobId::PipeCapacity);
        if want != capacity {
            capacity = want;
            set_capacity(ctx, w, capacity);
        }
        let size = ctx.msg_size();
        let msg = &mut buf[..size];
        message::encode(msg, sender, seq);
        ctx.op(Op::Write);
        match worker::write_all(w, msg) {
            Ok(()) => {
                ctx.event(CALL_WRITE, [w as u64, size as u64, 0], size as i64);
                ctx.count_sent(size);
            }
            Err(e) => {
                let code = e.raw_os_error().unwrap_or(0);
                ctx.event(CALL_WRITE, [w as u64, size as u64, 0], -(code as i64));
                ctx.count_error(code);
                ctx.op(Op::Done);
                reap_child(ctx, child, consumer_slot);
                bail!("write: {} ({e})", errno_name(code));
            }
        }
        seq += 1;
        if let Some((rr, _)) = reply {
            ctx.op(Op::Read);
            match ack.next(rr, &mut ack_verifier, |_, _| {}) {
                Ok(Frame::Message(m)) => {
                    let len = m.len();
                    let m = m.to_vec();
                    if ack_verifier.check(&m).is_ok() {
                        ctx.count_received(len);
                        ctx.event(CALL_READ, [rr as u64, len as u64, 0], len as i64);
                    }
                }
                Ok(Frame::Eof) => {
                    count_eof(ctx);
                    ctx.event(CALL_READ, [rr as u64, 0, 0], 0);
                }
                Err(e) => ctx.count_error(e.raw_os_error().unwrap_or(0)),
            }
        }
    }
    // Done: closing the write end is what lets the reader see EOF.
    close(ctx, w);
    ctx.op(Op::Done);
    // Wait for the child so its exit is recorded, but only while it is
    // still reading; a reader that never sees EOF would keep us forever.
    for _ in 0..20 {
        if reap_child(ctx, child, consumer_slot) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

fn count_eof(ctx: &WorkerCtx) {
    crate::telemetry::Slot::add(&ctx.me().eof, 1);
}

fn set_capacity(ctx: &WorkerCtx, fd: i32, bytes: u64) {
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory of ours;
    // `fd` is our pipe's raw write end (a bad one is EBADF).
    let r = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, bytes as libc::c_int) };
    let ret = if r < 0 { -(errno() as i64) } else { r as i64 };
    ctx.event(CALL_SETPIPE_SZ, [fd as u64, bytes, 0], ret);
    if r < 0 {
        ctx.count_error(errno());
    }
}

/// Reap the consumer if it has ended and record how. True once it has.
fn reap_child(ctx: &WorkerCtx, child: i32, slot: usize) -> bool {
    let mut status = 0;
    // Raw waitpid: the status word itself is what ExitStatus::from_wait
    // decodes and the slot stores.
    // SAFETY: `status` is a valid int for the kernel to write; `child` is
    // our own child.
    let r = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
    if r == child {
        ctx.tel.slot(slot).exit.store(ExitStatus::from_wait(status).encode(), Relaxed);
        return true;
    }
    r < 0
}

/// The consumer loop; returns the exit code.
fn consumer(ctx: &WorkerCtx, r: i32, reply: Option<i32>) -> i32 {
    let mut pacer = Pacer::consumer();
    let mut reader = FrameReader::sized();
    let mut verifier = Verifier::new();
    let mut ack = vec![0u8; message::MIN_LEN];
    let sender = ctx.sender_id();
    let mut seq = 0;
    loop {
        pacer.wait(ctx);
        ctx.op(Op::Read);
        let frame = reader.next(r, &mut verifier, |want, res| {
            ctx.event(CALL_READ, [r as u64, want as u64, 0], worker::io_ret(res));
        });
        match frame {
            Ok(Frame::Message(m)) => {
                ctx.receive(&mut verifier, m);
                if let Some(w) = reply {
                    message::encode(&mut ack, sender, seq);
                    seq += 1;
                    ctx.op(Op::Write);
                    match worker::write_all(w, &ack) {
                        Ok(()) => {
                            ctx.count_sent(ack.len());
                            ctx.event(CALL_WRITE, [w as u64, ack.len() as u64, 0], ack.len() as i64);
                        }
                        Err(e) => ctx.count_error(e.raw_os_error().unwrap_or(0)),
                    }
                }
            }
            Ok(Frame::Eof) => {
                // read() returned 0: every write end is closed.
                count_eof(ctx);
                ctx.publish(verifier.counts());
                ctx.op(Op::Done);
                return 0;
            }
            Err(e) => {
                ctx.count_error(e.raw_os_error().unwrap_or(0));
                eprintln!("read: {e}");
                return 1;
            }
        }
    }
}

struct PipeProbe {
    producer: ProcTracker,
    consumer: ProcTracker,
    producer_slot: usize,
    consumer_slot: usize,
    history: VecDeque<u64>,
    capacity: u64,
    notes: NoteLog,
    /// The producer slot's generation: a restart starts a new story.
    generation: u64,
    /// Whether the consumer's parent is the producer, once seen.
    parent_child: Option<bool>,
}

fn pipe_inode(target: &str) -> Option<u64> {
    target.strip_prefix("pipe:[")?.strip_suffix(']')?.parse().ok()
}

impl Probe for PipeProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let prod = self.producer.sample(tel, t_ms);
        let cons = self.consumer.sample(tel, t_ms);
        let ps = tel.slot(self.producer_slot);
        let cs = tel.slot(self.consumer_slot);
        let gen = ps.generation.load(Relaxed);
        if gen != self.generation {
            self.generation = gen;
            self.notes = NoteLog::default();
            self.history.clear();
            self.parent_child = None;
        }
        // Read once per run of the pair: a parent never changes while both live.
        if self.parent_child.is_none() && prod.alive() && cons.alive() {
            self.parent_child = procfs::stat(cons.pid).map(|st| st.ppid == prod.pid);
        }
        let freed = prod.pid > 0 && cons.pid > 0 && prod.exit.is_some() && cons.exit.is_some();

        // Ask the pipe itself how full it is, through whichever end is
        // still held by a live process.
        let fill = [(prod.pid, ps.aux[0].load(Relaxed)), (cons.pid, cs.aux[0].load(Relaxed))]
            .into_iter()
            .filter(|&(pid, fd)| pid > 0 && fd > 0 && procfs::alive(pid))
            .find_map(|(pid, fd)| procfs::pipe_fill(pid, fd as i32));
        let (depth, capacity) = match fill {
            Some((d, c)) => {
                self.capacity = c;
                (d, c)
            }
            // Gone with its last holder: no capacity is left to draw.
            None if freed => (0, 0),
            None => (0, self.capacity),
        };
        self.history.push_back(depth);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }

        let duplex = tel.knob(KnobId::PipeDuplex) != 0;
        let reply = if duplex {
            [(prod.pid, ps.aux[1].load(Relaxed)), (cons.pid, cs.aux[1].load(Relaxed))]
                .into_iter()
                .filter(|&(pid, fd)| pid > 0 && fd > 0 && procfs::alive(pid))
                .find_map(|(pid, fd)| procfs::pipe_fill(pid, fd as i32))
                .map(|(d, c)| Channel { depth: d, capacity: c, unit: crate::model::figures::Unit::Bytes, over: 0 })
        } else {
            None
        };

        // Which process holds which end: the textbook's fd picture, read
        // from the real fd tables. The pipe is the one behind the numbers
        // pipe() returned (other pipes, the reply pipe or an inherited
        // one, are not it).
        let (w_fd, r_fd) = (ps.aux[0].load(Relaxed) as i32, cs.aux[0].load(Relaxed) as i32);
        let fd_pair = (r_fd > 0 && w_fd > 0).then_some([r_fd, w_fd]);
        let at = |p: &crate::snapshot::ProcessSnapshot, fd: i32| {
            p.fds.iter().find(|f| f.fd == fd && fd > 0).and_then(|f| pipe_inode(&f.target))
        };
        let inode = at(&prod, w_fd)
            .or_else(|| at(&cons, r_fd))
            .or_else(|| at(&prod, r_fd))
            .or_else(|| at(&cons, w_fd))
            .or_else(|| prod.fds.iter().chain(cons.fds.iter()).find_map(|f| pipe_inode(&f.target)));
        let ends = |p: &crate::snapshot::ProcessSnapshot, mode: &str| -> Vec<i32> {
            if !p.alive() || inode.is_none() {
                return Vec::new();
            }
            p.fds.iter().filter(|f: &&FdEntry| pipe_inode(&f.target) == inode && f.mode == mode).map(|f| f.fd).collect()
        };
        let holds: Vec<EndsHeld> = [&prod, &cons]
            .iter()
            .map(|p| EndsHeld { role: p.role.clone(), read: ends(p, "r"), write: ends(p, "w") })
            .collect();
        let holders = |mode: &str| -> Vec<String> {
            [&prod, &cons]
                .iter()
                .flat_map(|p| ends(p, mode).into_iter().map(move |fd| format!("{} fd {fd}", p.role)))
                .collect()
        };
        let read_ends = holders("r");
        let write_ends = holders("w");

        let eof_seen = cs.eof.load(Relaxed) > 0;
        let close_unused = tel.knob(KnobId::PipeCloseUnused) != 0;
        if eof_seen {
            self.notes.say(t_ms, "eof", "note_pipe_eof", &[]);
        }
        if prod.errors.epipe > 0 {
            self.notes.say(t_ms, "epipe", "note_pipe_epipe", &[]);
        }
        if let Some(ExitStatus::Signal(libc::SIGPIPE)) = ExitStatus::decode(ps.exit.load(Relaxed)) {
            self.notes.say(t_ms, "sigpipe", "note_pipe_sigpipe", &[]);
        }
        if let Some(ExitStatus::Signal(s)) = ExitStatus::decode(cs.exit.load(Relaxed)) {
            if s == libc::SIGKILL || s == libc::SIGTERM {
                self.notes.say(t_ms, "consumer-killed", "note_pipe_consumer_killed", &[]);
            }
        }
        if prod.exit.is_some()
            && cons.alive()
            && !eof_seen
            && cons.sleeps_in() == crate::snapshot::Wait::PipeRead
            && !write_ends.is_empty()
        {
            self.notes.say(t_ms, "no-eof", "note_pipe_no_eof", &[]);
        }

        let integrity = crate::monitor::integrity_after(cs, [ps]);
        let in_flight = integrity.lost.saturating_sub(cs.lost.load(Relaxed));
        if in_flight > 0 {
            self.notes.say(t_ms, "lost-in-pipe", "note_pipe_lost_in_pipe", &[("n", in_flight.to_string())]);
        }
        MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Pipe,
            channel: Channel { depth, capacity, unit: crate::model::figures::Unit::Bytes, over: 0 },
            integrity,
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, KnobId::PIPE),
            detail: Detail::Pipe(PipeDetail {
                inode,
                read_ends,
                write_ends,
                close_unused,
                duplex,
                reply,
                sigpipe: if tel.knob(KnobId::PipeSigpipe) == 0 { "default" } else { "ignore" }.into(),
                eof_seen,
                fd_pair,
                holds,
                parent_child: self.parent_child,
                freed,
            }),
            processes: vec![prod, cons],
        }
    }
}
