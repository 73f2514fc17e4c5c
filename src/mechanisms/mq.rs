//! The POSIX message queue — what the lecture notes call a "port": a
//! kernel queue with a name, holding whole messages up to a fixed count
//! (`mq_maxmsg`) and size (`mq_msgsize`). `mq_send` blocks when it is full
//! (or gives up with `ETIMEDOUT` under `mq_timedsend`), `mq_receive` when
//! it is empty, and the highest priority always leaves first.
//!
//! Telemetry `aux` words: producer — [0] mqd, [3] last 16 priorities sent
//! (4 bits each, newest lowest), [4] how many of them; consumer — [0] mqd,
//! [1] priority inversions seen, [3]/[4] the same for priorities received.
//! Both — [`PRIO_WORDS`]: messages sent (producer) or received (consumer)
//! at priority 0, 1, 2, 3. The kernel lets nobody look at a queued message
//! without taking it, so what waits at each priority is sent − received.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{bail, Result};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, MqAttr, MqdT};
use nix::sys::stat::Mode;

use super::pair::Pair;
use super::pipe::{errno_name, ret_str};
use super::worker::{Pacer, WorkerCtx};
use super::{Info, Kind, Mechanism, Probe};
use crate::knobs::KnobId;
use crate::message::{self, Verifier};
pub use crate::model::detail::mq::MqDetail;
use crate::monitor::{procfs, Calls, NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, MechanismSnapshot};
use crate::supervisor::{cleanup, ObjectKind, Supervisor};
use crate::telemetry::{ExitStatus, Op, Slot, Telemetry};

pub static INFO: Info = Info { kind: Kind::Mq, knobs: KnobId::MQ, new: || Box::new(Mq::default()), worker: run_worker };

/// Priorities used when `mq.priorities` is on.
pub const PRIORITIES: u32 = 4;
/// The `aux` words counting messages at priority 0..PRIORITIES.
const PRIO_WORDS: [usize; PRIORITIES as usize] = [2, 5, 6, 7];
const LIMITS: &str = "/proc/sys/fs/mqueue";

const CALL_OPEN_CREATE: u64 = 1;
const CALL_OPEN: u64 = 2;
const CALL_SEND: u64 = 3;
const CALL_TIMEDSEND: u64 = 4;
const CALL_RECEIVE: u64 = 5;
const CALL_UNLINK: u64 = 6;
const CALL_CLOSE: u64 = 7;

fn format_call(call: u64, a: [u64; 3], ret: i64) -> String {
    let r = ret_str(ret);
    match call {
        CALL_OPEN_CREATE => format!(
            "mq_open(\"/ipcscope-…-mq\", O_CREAT|O_EXCL|O_WRONLY, 0600, {{maxmsg {}, msgsize {}}}) = {r}",
            a[0], a[1]
        ),
        CALL_OPEN => format!("mq_open(\"/ipcscope-…-mq\", O_RDONLY) = {r}"),
        CALL_SEND => format!("mq_send({}, {} bytes, prio {}) = {r}", a[0], a[1], a[2]),
        CALL_TIMEDSEND => {
            format!("mq_timedsend({}, {} bytes, prio {}, +{}ms) = {r}", a[0], a[1], a[2] & 0xffff_ffff, a[2] >> 32)
        }
        CALL_RECEIVE if ret >= 0 => {
            format!("mq_receive({}, buf {}, &prio) = {r}, prio {}", a[0], a[1], a[2])
        }
        CALL_RECEIVE => format!("mq_receive({}, buf {}, &prio) = {r}", a[0], a[1]),
        CALL_UNLINK => format!("mq_unlink(\"/ipcscope-…-mq\") = {r}"),
        CALL_CLOSE => format!("mq_close({}) = {r}", a[0]),
        _ => format!("call {call}"),
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Send => "mq_send()",
        Op::Receive => "mq_receive()",
        Op::Open => "mq_open()",
        _ => crate::monitor::default_op_name(op),
    }
}

const CALLS: Calls = Calls { event: format_call, op: op_name };

#[derive(Default)]
pub struct Mq {
    pair: Pair,
    name: String,
}

/// The machine's limit for a knob, from /proc/sys/fs/mqueue.
fn limit(file: &str) -> Option<u64> {
    std::fs::read_to_string(format!("{LIMITS}/{file}")).ok()?.trim().parse().ok()
}

/// CAP_SYS_RESOURCE lifts the mqueue limits.
fn can_exceed_limits() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        // bit 24 = CAP_SYS_RESOURCE
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// Why the kernel would refuse these sizes, naming the limit.
pub fn check_limits(maxmsg: u64, msgsize: u64) -> Result<(), String> {
    if can_exceed_limits() {
        return Ok(());
    }
    for (key, v, file) in [(KnobId::MqMaxmsg, maxmsg, "msg_max"), (KnobId::MqMsgsize, msgsize, "msgsize_max")] {
        if let Some(max) = limit(file) {
            if v > max {
                return Err(format!(
                    "{key}={v} exceeds {LIMITS}/{file}={max} (the kernel says EINVAL; raising it needs CAP_SYS_RESOURCE or root writing that file)"
                ));
            }
        }
    }
    Ok(())
}

impl Mechanism for Mq {
    fn kind(&self) -> Kind {
        Kind::Mq
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        let k = sup.knobs();
        check_limits(k.get(KnobId::MqMaxmsg), k.get(KnobId::MqMsgsize)).map_err(anyhow::Error::msg)?;
        self.pair = Pair::alloc(sup)?;
        self.name = sup.object_name("mq");
        sup.register_object(ObjectKind::Mq, &self.name)?;
        self.spawn(sup)
    }

    fn victim(&self) -> Option<usize> {
        self.pair.victim()
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.pair.kill(sup);
        cleanup::unlink_object(ObjectKind::Mq, &self.name);
        let k = sup.knobs();
        check_limits(k.get(KnobId::MqMaxmsg), k.get(KnobId::MqMsgsize)).map_err(anyhow::Error::msg)?;
        self.spawn(sup)
    }

    fn producers(&self) -> Vec<usize> {
        self.pair.producers()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        let (producer, consumer) = self.pair.trackers(CALLS, sup.dir_path());
        Box::new(MqProbe {
            producer,
            consumer,
            producer_slot: self.pair.producer,
            consumer_slot: self.pair.consumer,
            name: self.name.clone(),
            attr: None,
            history: VecDeque::new(),
            notes: NoteLog::default(),
        })
    }
}

impl Mq {
    fn spawn(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.pair.spawn_named(sup, Kind::Mq, &self.name)
    }
}

fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "producer" => producer(ctx),
        "consumer" => consumer(ctx),
        _ => bail!("the message queue has no role {role:?}"),
    }
}

/// The priority of message `seq`: a fixed scramble of 0..PRIORITIES.
pub fn priority(seq: u64) -> u32 {
    (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 62) as u32 % PRIORITIES
}

/// Remember a priority in a slot's packed history (aux[3], count in aux[4]).
fn push_prio(s: &Slot, prio: u32) {
    s.aux[3].store((s.aux[3].load(Relaxed) << 4) | (prio as u64 & 0xf), Relaxed);
    Slot::add(&s.aux[4], 1);
}

/// Count one message at `prio` in the slot's per-priority counters.
fn count_prio(s: &Slot, prio: u32) {
    if let Some(&w) = PRIO_WORDS.get(prio as usize) {
        Slot::add(&s.aux[w], 1);
    }
}

/// The per-priority counters of a slot, index = priority.
fn prio_counts(s: &Slot) -> Vec<u64> {
    PRIO_WORDS.iter().map(|&w| s.aux[w].load(Relaxed)).collect()
}

/// The packed priority history, oldest first.
pub fn unpack_prios(packed: u64, count: u64) -> Vec<u32> {
    let n = count.min(16) as u32;
    (0..n).rev().map(|i| ((packed >> (i * 4)) & 0xf) as u32).collect()
}

fn attr_of(mqd: &MqdT) -> Option<MqAttr> {
    nix::mqueue::mq_getattr(mqd).ok()
}

fn producer(ctx: &mut WorkerCtx) -> Result<()> {
    let name = CString::new(ctx.arg("name")?)?;
    let maxmsg = ctx.knob(KnobId::MqMaxmsg);
    let msgsize = ctx.knob(KnobId::MqMsgsize);
    let attr = MqAttr::new(0, maxmsg as _, msgsize as _, 0);
    ctx.op(Op::Open);
    let flags = MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL | MQ_OFlag::O_WRONLY | MQ_OFlag::O_CLOEXEC;
    let opened = nix::mqueue::mq_open(name.as_c_str(), flags, Mode::S_IRUSR | Mode::S_IWUSR, Some(&attr));
    let ret = match &opened {
        Ok(q) => q.as_raw_fd() as i64,
        Err(e) => -(*e as i64),
    };
    ctx.event(CALL_OPEN_CREATE, [maxmsg, msgsize, 0], ret);
    let mqd = match opened {
        Ok(q) => q,
        Err(e) => {
            let e = e as i32;
            let why = match e {
                libc::EINVAL => {
                    check_limits(maxmsg, msgsize).err().unwrap_or_else(|| "mq.maxmsg or mq.msgsize out of range".into())
                }
                libc::EMFILE | libc::ENOSPC => {
                    format!("too many queues ({LIMITS}/queues_max={})", limit("queues_max").unwrap_or(0))
                }
                libc::ENOMEM => "the queue would exceed RLIMIT_MSGQUEUE (ulimit -q)".into(),
                _ => errno_name(e).into(),
            };
            bail!("mq_open: {} — {why}", errno_name(e));
        }
    };
    let fd = mqd.as_raw_fd();
    ctx.me().aux[0].store(fd as u64, Relaxed);

    let sender = ctx.sender_id();
    let count = ctx.knob(KnobId::ProducerCount);
    let mut pacer = Pacer::producer();
    let mut buf = vec![0u8; msgsize as usize];
    let mut seq = 0u64;
    while count == 0 || seq < count {
        pacer.wait(ctx);
        let size = ctx.msg_size().min(msgsize as usize);
        let prio = if ctx.knob(KnobId::MqPriorities) != 0 { priority(seq) } else { 0 };
        let msg = &mut buf[..size];
        message::encode(msg, sender, seq);
        let timeout = ctx.knob(KnobId::MqSendTimeoutMs);
        ctx.op(Op::Send);
        crate::trace::hook::syscall();
        let (r, call, a2) = if timeout > 0 {
            let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
                .map_or(Default::default(), |t| *t.as_ref());
            let mut ts: libc::timespec = now;
            let ns = ts.tv_nsec as u64 + (timeout % 1000) * 1_000_000;
            ts.tv_sec += (timeout / 1000 + ns / 1_000_000_000) as libc::time_t;
            ts.tv_nsec = (ns % 1_000_000_000) as libc::c_long;
            // nix has no mq_timedsend.
            // SAFETY: `fd` is our open queue descriptor, `msg` is `size`
            // readable bytes and `ts` a valid timespec; nothing is kept.
            let r = unsafe { libc::mq_timedsend(fd, msg.as_ptr().cast(), size, prio, &ts) };
            (if r < 0 { Err(Errno::last()) } else { Ok(()) }, CALL_TIMEDSEND, prio as u64 | timeout << 32)
        } else {
            (nix::mqueue::mq_send(&mqd, msg, prio), CALL_SEND, prio as u64)
        };
        let ret = r.map_or_else(|e| -(e as i64), |()| 0);
        ctx.event(call, [fd as u64, size as u64, a2], ret);
        if let Err(e) = r {
            let e = e as i32;
            ctx.count_error(e);
            match e {
                // Queue still full after the timeout: try the same message again.
                libc::ETIMEDOUT | libc::EINTR => continue,
                _ => bail!("mq_send: {}", errno_name(e)),
            }
        }
        ctx.count_sent(size);
        push_prio(ctx.me(), prio);
        count_prio(ctx.me(), prio);
        seq += 1;
    }
    // Done: the name goes away now; the queue itself lives on until the
    // consumer closes it too.
    let r = nix::mqueue::mq_close(mqd);
    ctx.event(CALL_CLOSE, [fd as u64, 0, 0], r.map_or(-1, |()| 0));
    let r = nix::mqueue::mq_unlink(name.as_c_str());
    ctx.event(CALL_UNLINK, [0; 3], r.map_or_else(|e| -(e as i64), |()| 0));
    ctx.me().aux[0].store(0, Relaxed);
    ctx.op(Op::Done);
    Ok(())
}

/// Checks that messages leave in priority order: a message must not be
/// received while an earlier-sent one of the same or higher priority is
/// still waiting.
#[derive(Default)]
pub struct PrioCheck {
    sender: Option<u32>,
    /// The highest sequence number received so far at each priority.
    highest: [Option<u64>; 16],
    pub inversions: u64,
}

impl PrioCheck {
    pub fn check(&mut self, sender: u32, seq: u64, prio: u32) {
        if self.sender != Some(sender) {
            *self = PrioCheck { sender: Some(sender), inversions: self.inversions, ..PrioCheck::default() };
        }
        let p = (prio as usize).min(15);
        // A later message at this priority or lower already left before us:
        // we should have gone first.
        if self.highest[..=p].iter().flatten().any(|&h| h > seq) {
            self.inversions += 1;
        }
        self.highest[p] = Some(self.highest[p].map_or(seq, |h| h.max(seq)));
    }
}

fn consumer(ctx: &mut WorkerCtx) -> Result<()> {
    let name = CString::new(ctx.arg("name")?)?;
    ctx.op(Op::Open);
    let mqd = loop {
        match nix::mqueue::mq_open(name.as_c_str(), MQ_OFlag::O_RDONLY | MQ_OFlag::O_CLOEXEC, Mode::empty(), None) {
            Ok(mqd) => {
                ctx.event(CALL_OPEN, [0; 3], mqd.as_raw_fd() as i64);
                break mqd;
            }
            // The producer creates it; until then the name does not exist.
            Err(Errno::ENOENT) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                ctx.event(CALL_OPEN, [0; 3], -(e as i64));
                bail!("mq_open: {}", errno_name(e as i32));
            }
        }
    };
    let fd = mqd.as_raw_fd();
    ctx.me().aux[0].store(fd as u64, Relaxed);
    let msgsize = attr_of(&mqd).map_or(8192, |a| a.msgsize() as usize);
    let mut buf = vec![0u8; msgsize];
    let mut pacer = Pacer::consumer();
    let mut verifier = Verifier::new();
    let mut order = PrioCheck::default();
    loop {
        pacer.wait(ctx);
        ctx.op(Op::Receive);
        let mut prio: u32 = 0;
        crate::trace::hook::syscall();
        let r = nix::mqueue::mq_receive(&mqd, &mut buf, &mut prio);
        let ret = r.map_or_else(|e| -(e as i64), |n| n as i64);
        ctx.event(CALL_RECEIVE, [fd as u64, msgsize as u64, prio as u64], ret);
        let n = match r {
            Ok(n) => n,
            Err(e) => {
                ctx.count_error(e as i32);
                if e == Errno::EINTR {
                    continue;
                }
                bail!("mq_receive: {}", errno_name(e as i32));
            }
        };
        let m = &buf[..n];
        if let Ok((h, _)) = verifier.check(m) {
            order.check(h.sender, h.seq, prio);
        }
        let me = ctx.me();
        me.aux[1].store(order.inversions, Relaxed);
        push_prio(me, prio);
        count_prio(me, prio);
        ctx.count_received(n);
        ctx.publish(verifier.counts());
    }
}

struct MqProbe {
    producer: ProcTracker,
    consumer: ProcTracker,
    producer_slot: usize,
    consumer_slot: usize,
    name: String,
    attr: Option<(u64, u64)>,
    history: VecDeque<u64>,
    notes: NoteLog,
}

/// `mq_getattr` through a borrowed copy of `pid`'s descriptor `fd`: asks,
/// and closes at once (the copy shares the worker's flags; never set them).
fn getattr(pid: i32, fd: i32) -> Option<MqAttr> {
    let dup = procfs::borrow_fd(pid, fd)?;
    // SAFETY: `dup` stays open for the call; MqdT does not close on drop,
    // so `dup` alone owns the descriptor.
    attr_of(&unsafe { MqdT::from_raw_fd(dup.as_raw_fd()) })
}

impl Probe for MqProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let prod = self.producer.sample(tel, t_ms);
        let cons = self.consumer.sample(tel, t_ms);
        let ps = tel.slot(self.producer_slot);
        let cs = tel.slot(self.consumer_slot);
        // Received first, then sent: a message moving between the two reads
        // counts as queued, not as received before it was sent. A call can
        // still be between the kernel and its counter (±1 for a moment):
        // the panel compares the sum with mq_getattr's curmsgs.
        let recv_by_prio = prio_counts(cs);
        let sent_by_prio = prio_counts(ps);
        let attr = [(&cons, cs), (&prod, ps)]
            .into_iter()
            .filter(|(p, s)| p.alive() && s.aux[0].load(Relaxed) > 0)
            .find_map(|(p, s)| getattr(p.pid, s.aux[0].load(Relaxed) as i32));
        let mut d = MqDetail {
            name: self.name.clone(),
            msg_max: limit("msg_max").unwrap_or(0),
            msgsize_max: limit("msgsize_max").unwrap_or(0),
            priorities: tel.knob(KnobId::MqPriorities) != 0,
            sent_prios: unpack_prios(ps.aux[3].load(Relaxed), ps.aux[4].load(Relaxed)),
            recv_prios: unpack_prios(cs.aux[3].load(Relaxed), cs.aux[4].load(Relaxed)),
            inversions: cs.aux[1].load(Relaxed),
            send_timeout_ms: tel.knob(KnobId::MqSendTimeoutMs),
            timeouts: ps.err_timedout.load(Relaxed),
            msg_size_knob: tel.effective(KnobId::MQ, KnobId::MsgSize),
            sent_by_prio,
            recv_by_prio,
            ..MqDetail::default()
        };
        d.msg_size = d.msg_size_knob.min(tel.knob(KnobId::MqMsgsize));
        if let Some(a) = attr {
            d.attr_seen = true;
            d.curmsgs = a.curmsgs().max(0) as u64;
            d.maxmsg = a.maxmsg().max(0) as u64;
            d.msgsize = a.msgsize().max(0) as u64;
            self.attr = Some((d.maxmsg, d.msgsize));
            d.msg_size = d.msg_size_knob.min(d.msgsize);
        } else if let Some((m, s)) = self.attr {
            d.maxmsg = m;
            d.msgsize = s;
        }
        self.history.push_back(d.curmsgs);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }

        if d.timeouts > 0 {
            self.notes.say(t_ms, "timedout", "note_mq_timedout", &[]);
        }
        if d.msg_size < d.msg_size_knob {
            self.notes.say(t_ms, "clamped", "note_mq_clamped", &[]);
        }
        if let Some(ExitStatus::Signal(_)) = ExitStatus::decode(cs.exit.load(Relaxed)) {
            self.notes.say(t_ms, "consumer-killed", "note_mq_consumer_killed", &[]);
        }

        MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Mq,
            channel: Channel {
                depth: d.curmsgs,
                capacity: d.maxmsg,
                unit: crate::model::figures::Unit::Messages,
                over: 0,
            },
            integrity: crate::monitor::integrity_after(cs, [ps]),
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, KnobId::MQ),
            detail: Detail::Mq(d),
            processes: vec![prod, cons],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_order_check() {
        let mut c = PrioCheck::default();
        // Sent 0(p0) 1(p3) 2(p1) 3(p3) while the consumer slept: the kernel
        // hands out 1, 3, 2, 0.
        for (seq, p) in [(1, 3), (3, 3), (2, 1), (0, 0)] {
            c.check(7, seq, p);
        }
        assert_eq!(c.inversions, 0);
        // 2 (p1) leaving before 1 (p3) breaks the rule.
        let mut c = PrioCheck::default();
        c.check(7, 2, 1);
        c.check(7, 1, 3);
        assert_eq!(c.inversions, 1);
    }

    #[test]
    fn priorities_are_mixed_and_packed() {
        let ps: Vec<u32> = (0..64).map(priority).collect();
        for p in 0..PRIORITIES {
            assert!(ps.contains(&p), "priority {p} never used");
        }
        let s = Slot::default();
        for p in [1, 2, 3] {
            push_prio(&s, p);
        }
        assert_eq!(unpack_prios(s.aux[3].load(Relaxed), s.aux[4].load(Relaxed)), [1, 2, 3]);
    }

    #[test]
    fn calls_read_like_strace() {
        assert_eq!(format_call(CALL_SEND, [3, 256, 0], 0), "mq_send(3, 256 bytes, prio 0) = 0");
    }
}
