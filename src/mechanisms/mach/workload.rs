//! What runs inside the Mach processes: the kernel, the echo server and
//! the clients. Every call a task makes is recorded (`ctx.event`) under
//! its real name and printed as C would show it.
//!
//! Telemetry `aux` words of a client slot: [0] `MACH_SEND_TIMED_OUT` after
//! waiting, [1] `MACH_SEND_TIMED_OUT` at once (timeout 0), [2]
//! `MACH_SEND_WILL_NOTIFY` (cached), [3] `MACH_NOTIFY_MSG_ACCEPTED`
//! received, [4] `MACH_SEND_NOTIFY_IN_PROGRESS`, [5] sends that found a
//! dead name (`MACH_SEND_INVALID_DEST`), [6] thread 1's reply port name |
//! notify port name << 32, [7] the same for thread 2. Server slot: [0] the
//! service port's name in the server's space.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::client::{InDescriptor, MachError, MachMsgArgs, MachTask, OolMemory, OutDescriptor, OutMsg, ReceivedMsg};
use super::consts::{SEND_MODES, SERVICE, SOCKET};
use super::kernel::Personality;
use super::types::*;
use crate::knobs::KnobId;
use crate::mechanisms::worker::{Pacer, WorkerCtx};
use crate::message::{self, Verifier};
use crate::monitor::Calls;
use crate::telemetry::Op;

// Calls the Mach tasks record.
const CALL_TASK: u64 = 1;
const CALL_CHECK_IN: u64 = 2;
const CALL_LOOK_UP: u64 = 3;
const CALL_ALLOCATE: u64 = 4;
const CALL_SET_QLIMIT: u64 = 5;
const CALL_REQUEST_DEAD_NAME: u64 = 6;
const CALL_MSG: u64 = 7;
const CALL_DEALLOCATE: u64 = 8;
const CALL_NOTIFICATION: u64 = 9;
const CALL_KERNEL: u64 = 10;
const CALL_REQUEST_SEND_POSSIBLE: u64 = 11;

/// `msgh_id` of a request; the reply is request + 100, as MIG numbers them.
pub const REQUEST_ID: i32 = 1000;
pub const REPLY_ID: i32 = REQUEST_ID + 100;
/// `mach.thread_talk`: one thread of client-1 to the other, through the
/// other's own (reply) port.
pub const THREAD_TALK_ID: i32 = REQUEST_ID + 200;

/// The largest body sent inline (one seqpacket packet holds the message).
const MAX_INLINE: usize = 128 * 1024;

pub(crate) const CALLS: Calls = Calls { event: format_call, op: op_name };

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Send => "mach_msg(SEND)",
        Op::Receive => "mach_msg(RCV)",
        Op::Wait => "serving",
        Op::Connect => "bootstrap_look_up",
        _ => crate::monitor::default_op_name(op),
    }
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

/// Pack a `mach_msg` call into the three event words: options and
/// timeout; destination (or receive name) and reply name; `msgh_id` and
/// `msgh_bits`.
fn msg_event(options: u32, timeout: u32, dest: u32, reply: u32, id: i32, bits: u32) -> [u64; 3] {
    [
        u64::from(options) | u64::from(timeout) << 32,
        u64::from(dest) | u64::from(reply) << 32,
        u64::from(id as u32) | u64::from(bits) << 32,
    ]
}

pub fn format_call(call: u64, a: [u64; 3], ret: i64) -> String {
    let kr = return_name(ret as u32);
    match call {
        CALL_TASK => {
            if a[2] > 0 {
                format!("thread {} joins: same name space, mach_task_self() = {}", a[2] + 1, hex(a[0]))
            } else {
                format!("task_self = {}, bootstrap_port = {}", hex(a[0]), hex(a[1]))
            }
        }
        CALL_CHECK_IN => format!("bootstrap_check_in({}, \"{SERVICE}\") = {kr} → {}", hex(a[0]), hex(a[1])),
        CALL_LOOK_UP if ret == 0 => format!("bootstrap_look_up({}, \"{SERVICE}\") = {kr} → {}", hex(a[0]), hex(a[1])),
        CALL_LOOK_UP => format!("bootstrap_look_up({}, \"{SERVICE}\") = {kr}", hex(a[0])),
        CALL_ALLOCATE => {
            let what = match a[2] {
                1 => "notify port",
                2 => "port for the kernel's answers",
                _ => "reply port",
            };
            format!("mach_port_allocate(RECEIVE) = {kr} → {} ({what})", hex(a[1]))
        }
        CALL_SET_QLIMIT => {
            format!("mach_port_set_attributes({}, MACH_PORT_LIMITS_INFO, qlimit={}) = {kr}", hex(a[0]), a[1])
        }
        CALL_REQUEST_DEAD_NAME => format!(
            "mach_port_request_notification({}, MACH_NOTIFY_DEAD_NAME, {} MAKE_SEND_ONCE) = {kr}",
            hex(a[0]),
            hex(a[1])
        ),
        CALL_MSG => {
            let options = a[0] as u32;
            let timeout = (a[0] >> 32) as u32;
            let (dest, reply) = (a[1] as u32, (a[1] >> 32) as u32);
            let id = a[2] as u32 as i32;
            let bits = (a[2] >> 32) as u32;
            let mut s = format!("mach_msg({}", options_name(options));
            if options & MACH_SEND_MSG != 0 {
                let disp = disposition_name(mach_msgh_bits_remote(bits)).trim_start_matches("MACH_MSG_TYPE_");
                s += &format!(", dest={} {disp}", hex(dest.into()));
                if reply != 0 {
                    let disp = disposition_name(mach_msgh_bits_local(bits)).trim_start_matches("MACH_MSG_TYPE_");
                    s += &format!(", reply={} {disp}", hex(reply.into()));
                }
                s += &format!(", id={id}");
                if id == TASK_INFO_ID {
                    s += " task_info";
                }
                if options & MACH_SEND_TIMEOUT != 0 {
                    s += &format!(", timeout={timeout}");
                }
            } else {
                s += &format!(", rcv_name={}", hex(dest.into()));
            }
            // mach_msg's own name for 0.
            let kr = if ret == 0 { "MACH_MSG_SUCCESS".to_string() } else { kr };
            s += &format!(") = {kr}");
            if options & MACH_RCV_MSG != 0 && ret == 0 && options & MACH_SEND_MSG == 0 {
                // A notification by its name; a request or reply by its id.
                match notification_name(id) {
                    Some(name) => s += &format!(" ({name})"),
                    None if id == TASK_INFO_ID + 100 => s += " (task_info reply from the kernel)",
                    None if id == THREAD_TALK_ID => s += " (from the task's other thread)",
                    None => s += &format!(" (id {id})"),
                }
            }
            s
        }
        CALL_REQUEST_SEND_POSSIBLE => format!(
            "mach_port_request_notification({}, MACH_NOTIFY_SEND_POSSIBLE, {} MAKE_SEND_ONCE) = {kr}",
            hex(a[0]),
            hex(a[1])
        ),
        CALL_DEALLOCATE => format!("mach_port_deallocate({}) = {kr}", hex(a[0])),
        CALL_NOTIFICATION => {
            // 66 is XNU's MACH_NOTIFY_SEND_POSSIBLE and GNU Mach's
            // MACH_NOTIFY_MSG_ACCEPTED: a[2] says which kernel's rules.
            let id = a[0] as u32 as i32;
            let name = if a[2] == 1 && id == MACH_NOTIFY_SEND_POSSIBLE {
                "MACH_NOTIFY_SEND_POSSIBLE"
            } else {
                notification_name(id).unwrap_or("notification")
            };
            format!("received {name} on {}", hex(a[1]))
        }
        CALL_KERNEL => format!("emulated Mach kernel listening (pid {})", a[0]),
        _ => format!("call {call}"),
    }
}

/// The events of a multi-threaded task go into one ring: one writer at a
/// time.
static EVENTS: Mutex<()> = Mutex::new(());

fn event(ctx: &WorkerCtx, call: u64, args: [u64; 3], ret: u32) {
    let _g = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    ctx.event(call, args, i64::from(ret));
}

fn kr_of(r: &Result<impl Sized, MachError>) -> u32 {
    match r {
        Ok(_) => KERN_SUCCESS,
        Err(e) => e.kr().unwrap_or(KERN_FAILURE),
    }
}

/// Counters that two threads of one task may bump at once.
fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

fn socket_path(ctx: &WorkerCtx) -> PathBuf {
    ctx.run_dir.join(SOCKET)
}

/// The kernel process: serve until the supervisor is gone.
pub fn kernel(ctx: &mut WorkerCtx) -> Result<()> {
    let path = socket_path(ctx);
    let supervisor = ctx.supervisor;
    ctx.op(Op::Wait);
    event(ctx, CALL_KERNEL, [std::process::id() as u64, 0, 0], 0);
    let stop = move || nix::unistd::getppid().as_raw() != supervisor;
    // `mach.personality` reaches the running kernel through the control
    // page, read each time the kernel's loop wakes.
    let ctx: &WorkerCtx = ctx;
    let control = || Personality::from_index(ctx.knob(KnobId::MachPersonality));
    super::server::run_controlled(&path, super::kernel::Limits::default(), stop, control)
        .with_context(|| format!("kernel on {}", path.display()))
}

/// Connects as a new task, waiting (bounded) for the kernel to listen.
fn connect(ctx: &WorkerCtx, path: &Path, name: &str) -> Result<MachTask> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match MachTask::connect(path, name) {
            Ok(t) => {
                event(ctx, CALL_TASK, [t.mach_task_self().into(), t.bootstrap_port().into(), 0], 0);
                return Ok(t);
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => bail!("cannot reach the Mach kernel at {}: {e}", path.display()),
        }
    }
}

fn qlimit_knob(ctx: &WorkerCtx) -> u32 {
    (ctx.knob(KnobId::MachQlimit) as u32).min(MACH_PORT_QLIMIT_MAX)
}

fn set_qlimit(ctx: &WorkerCtx, task: &MachTask, port: MachPortName, q: u32) {
    let r = task.mach_port_set_attributes(port, MACH_PORT_LIMITS_INFO, &[q as i32]);
    event(ctx, CALL_SET_QLIMIT, [port.into(), q.into(), 0], kr_of(&r));
}

/// The bytes of a received message: its inline body or its out-of-line
/// region, cut to the length its own header states.
fn payload(msg: &ReceivedMsg) -> &[u8] {
    let bytes = msg
        .descriptors
        .iter()
        .find_map(|d| match d {
            InDescriptor::Ool(r) => Some(r.bytes()),
            InDescriptor::Port { .. } => None,
        })
        .unwrap_or(&msg.body);
    match message::peek_header(bytes) {
        Ok(h) if (h.len as usize) <= bytes.len() => &bytes[..h.len as usize],
        _ => bytes,
    }
}

/// Build a message body: inline up to the threshold, else out of line,
/// written straight into a region of the task's pool and sent with
/// `deallocate`, so the receiver maps it and nothing is copied (a sealed
/// memfd if the pools are full).
fn body_for(
    ctx: &WorkerCtx,
    task: &MachTask,
    fill: impl FnOnce(&mut [u8]),
    size: usize,
) -> Result<(Vec<u8>, Vec<OutDescriptor>)> {
    let threshold = (ctx.knob(KnobId::MachOolThreshold) as usize).min(MAX_INLINE);
    if size > threshold {
        let ool = match task.vm_allocate(size) {
            Ok(mut mem) if mem.is_pool() => {
                if let Some(region) = mem.as_mut_slice() {
                    fill(region);
                }
                mem.deallocate(true)
            }
            _ => OolMemory::build(size, fill).context("memfd for out-of-line memory")?,
        };
        Ok((Vec::new(), vec![OutDescriptor::Ool(ool)]))
    } else {
        let mut body = vec![0u8; size];
        fill(&mut body);
        Ok((body, Vec::new()))
    }
}

/// The echo server: check in, then receive requests at `consumer.rate`
/// and answer each through its send-once reply right.
pub fn server(ctx: &mut WorkerCtx) -> Result<()> {
    let path = socket_path(ctx);
    let task = connect(ctx, &path, "server")?;
    let bp = task.bootstrap_port();
    let r = task.bootstrap_check_in(bp, SERVICE);
    let port = match r {
        Ok(p) => p,
        Err(e) => {
            event(ctx, CALL_CHECK_IN, [bp.into(), 0, 0], e.kr().unwrap_or(KERN_FAILURE));
            bail!("bootstrap_check_in: {e}");
        }
    };
    event(ctx, CALL_CHECK_IN, [bp.into(), port.into(), 0], 0);
    ctx.me().aux[0].store(port.into(), Relaxed);
    let mut qlimit = qlimit_knob(ctx);
    set_qlimit(ctx, &task, port, qlimit);

    let mut pacer = Pacer::consumer();
    let mut verifier = Verifier::new();
    loop {
        pacer.wait(ctx);
        // mach_port_set_attributes works on a live port: a raised limit
        // wakes blocked senders at once.
        let want = qlimit_knob(ctx);
        if want != qlimit {
            qlimit = want;
            set_qlimit(ctx, &task, port, qlimit);
        }
        ctx.op(Op::Receive);
        let got = task.mach_msg(MachMsgArgs { options: MACH_RCV_MSG, rcv_name: port, ..MachMsgArgs::default() });
        let msg = match got {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => {
                let kr = e.kr().unwrap_or(KERN_FAILURE);
                event(ctx, CALL_MSG, msg_event(MACH_RCV_MSG, 0, port, 0, 0, 0), kr);
                ctx.count_error(libc::EIO);
                if e.kr().is_none() {
                    bail!("mach_msg: {e}");
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        event(ctx, CALL_MSG, msg_event(MACH_RCV_MSG, 0, port, 0, msg.header.id, msg.header.bits), 0);
        let data = payload(&msg);
        ctx.count_received(data.len());
        let ok = verifier.check(data).is_ok();
        ctx.publish(verifier.counts());
        if msg.header.id != REQUEST_ID || msg.header.remote_port == MACH_PORT_NULL {
            continue;
        }
        // The echo: the same bytes back through the send-once right, which
        // a reply uses up (and which never waits for room in the queue).
        let echo = data.to_vec();
        let (body, descriptors) = body_for(ctx, &task, |b| b.copy_from_slice(&echo), echo.len())?;
        let bits = mach_msgh_bits(MACH_MSG_TYPE_MOVE_SEND_ONCE, 0);
        let reply = OutMsg {
            bits,
            remote_port: msg.header.remote_port,
            id: if ok { REPLY_ID } else { REPLY_ID + 1 },
            body,
            descriptors,
            ..OutMsg::default()
        };
        drop(msg);
        ctx.op(Op::Send);
        let dest = reply.remote_port;
        let id = reply.id;
        let r = task.send(reply, 0, 0);
        event(ctx, CALL_MSG, msg_event(MACH_SEND_MSG, 0, dest, 0, id, bits), kr_of(&r));
        match r {
            Ok(()) => ctx.count_sent(echo.len()),
            Err(_) => ctx.count_error(libc::EIO),
        }
    }
}

/// The kernel follows XNU's rules (`mach.personality=xnu`): nothing is
/// kept, `MACH_SEND_NOTIFY` needs a send-possible request.
fn xnu(ctx: &WorkerCtx) -> bool {
    Personality::from_index(ctx.knob(KnobId::MachPersonality)) == Some(Personality::Xnu)
}

/// How a send is to behave on a full queue, from `mach.send_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendMode {
    Block,
    Timeout(u32),
    Immediate,
    Notify,
}

impl SendMode {
    pub fn from_knob(v: u64) -> SendMode {
        match SEND_MODES.get((v >> 32) as usize).copied() {
            Some("timeout") => SendMode::Timeout(v as u32),
            Some("immediate") => SendMode::Immediate,
            Some("notify") => SendMode::Notify,
            _ => SendMode::Block,
        }
    }

    /// `mach_msg` options and send timeout for a request. The reply is
    /// collected separately, so a thread can have several requests queued.
    fn options(self) -> (u32, u32) {
        let rpc = MACH_SEND_MSG;
        match self {
            SendMode::Block => (rpc, 0),
            SendMode::Timeout(ms) => (rpc | MACH_SEND_TIMEOUT, ms),
            SendMode::Immediate => (rpc | MACH_SEND_TIMEOUT, 0),
            // Option 4: keep the message although the queue is full.
            SendMode::Notify => (rpc | MACH_SEND_TIMEOUT | MACH_SEND_NOTIFY, 0),
        }
    }
}

/// A client task: one process, one or two threads.
pub fn client(ctx: &mut WorkerCtx) -> Result<()> {
    let n = ctx.arg_usize("n")?;
    let threads = ctx.arg_usize("threads").unwrap_or(1).clamp(1, 2);
    let path = socket_path(ctx);
    let task = connect(ctx, &path, &format!("client-{n}"))?;
    let ctx: &WorkerCtx = ctx;
    std::thread::scope(|s| -> Result<()> {
        let mut handles = Vec::new();
        for k in 1..threads {
            let thread = task.thread().context("second thread")?;
            event(ctx, CALL_TASK, [thread.mach_task_self().into(), thread.bootstrap_port().into(), k as u64], 0);
            handles.push(s.spawn(move || client_thread(ctx, &thread, k)));
        }
        client_thread(ctx, &task, 0)?;
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        }
        Ok(())
    })
}

fn allocate(ctx: &WorkerCtx, t: &MachTask, purpose: u64) -> Result<MachPortName> {
    let r = t.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE);
    event(ctx, CALL_ALLOCATE, [MACH_PORT_RIGHT_RECEIVE.into(), *r.as_ref().unwrap_or(&0) as u64, purpose], kr_of(&r));
    Ok(r?)
}

/// Requests a thread may have waiting for their replies before it stops
/// sending and waits for one.
const WINDOW: u64 = 256;

struct ClientThread<'a> {
    ctx: &'a WorkerCtx,
    t: &'a MachTask,
    index: usize,
    reply: MachPortName,
    notify: MachPortName,
    service: Option<MachPortName>,
    /// The old service's dead name, kept until a new server is found.
    dead: Option<MachPortName>,
    /// Where the kernel's answers to `task_info` come (`mach.task_info`).
    info: Option<MachPortName>,
    /// `mach.thread_talk`: this thread's turn to message the other.
    talk_turn: bool,
    sender: u32,
    /// Requests sent whose replies have not come back.
    outstanding: u64,
    /// A message of ours is cached past a full queue (`MACH_SEND_WILL_NOTIFY`).
    cached: bool,
    /// XNU: our `MACH_NOTIFY_SEND_POSSIBLE` request is registered and has
    /// not fired yet.
    sp_requested: std::cell::Cell<bool>,
    /// The last request got into the queue.
    last_sent: bool,
    /// Replies checked: sequence numbers must come back in order.
    replies: Verifier,
    /// A call failed below Mach: the kernel process is gone.
    kernel_gone: std::cell::Cell<bool>,
}

fn client_thread(ctx: &WorkerCtx, t: &MachTask, index: usize) -> Result<()> {
    // Each thread has its own reply port (and a port for notifications);
    // the service's send right is shared by the whole task.
    let reply = allocate(ctx, t, 0)?;
    let notify = allocate(ctx, t, 1)?;
    ctx.me().aux[6 + index].store(u64::from(reply) | u64::from(notify) << 32, Relaxed);
    let sender = ctx.sender_id() ^ ((index as u32) << 15);
    let mut c = ClientThread {
        ctx,
        t,
        index,
        reply,
        notify,
        service: None,
        dead: None,
        info: None,
        talk_turn: index == 0,
        sender,
        outstanding: 0,
        cached: false,
        sp_requested: std::cell::Cell::new(false),
        last_sent: false,
        replies: Verifier::new(),
        kernel_gone: std::cell::Cell::new(false),
    };
    let mut pacer = Pacer::producer();
    let count = ctx.knob(KnobId::ProducerCount);
    let mut seq = 0u64;
    let mut last_poll = Instant::now();
    // mach.intruder: client-1's first thread also tries to receive.
    let intruder = index == 0 && ctx.arg_usize("n").unwrap_or(0) == 1;
    let mut last_intrusion = Instant::now();
    let mut last_talk = Instant::now();
    let mut last_info = Instant::now();
    loop {
        if c.kernel_gone.get() {
            anyhow::bail!("the Mach kernel is gone: every port and right went with it");
        }
        // Look for replies after a request got through, or now and then:
        // polling a port while the service is stalled only fills the log.
        if c.last_sent || last_poll.elapsed() >= Duration::from_millis(100) {
            c.collect_replies(false);
            last_poll = Instant::now();
        }
        if count > 0 && seq >= count {
            if c.outstanding > 0 {
                c.collect_replies(true);
                continue;
            }
            ctx.op(Op::Done);
            // Stay a task: the screen keeps showing its rights.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        if c.outstanding >= WINDOW {
            c.collect_replies(true);
            continue;
        }
        let service = c.look_up()?;
        if intruder && ctx.knob(KnobId::MachIntruder) != 0 && last_intrusion.elapsed() >= Duration::from_millis(500) {
            c.try_receive_on(service);
            last_intrusion = Instant::now();
        }
        if intruder && ctx.knob(KnobId::MachTaskInfo) != 0 && last_info.elapsed() >= Duration::from_millis(500) {
            c.task_info()?;
            last_info = Instant::now();
        }
        // Turn by turn: at most one message waits in the other's port, so
        // a thread blocked elsewhere never has its port filled up.
        let turn = c.talk_turn || last_talk.elapsed() >= Duration::from_secs(3);
        if ctx.knob(KnobId::MachThreadTalk) != 0 && turn && last_talk.elapsed() >= Duration::from_millis(250) {
            c.talk_to_sibling();
            c.talk_turn = false;
            last_talk = Instant::now();
        }
        pacer.wait(ctx);
        let mode = SendMode::from_knob(ctx.knob(KnobId::MachSendMode));
        let size = ctx.msg_size();
        let (body, descriptors) = body_for(ctx, c.t, |b| message::encode(b, sender, seq), size)?;
        if c.request(service, mode, body, descriptors, size) {
            seq += 1;
        }
    }
}

impl ClientThread<'_> {
    /// The service's send right, looked up once and again after the server
    /// died (its name became a dead name).
    fn look_up(&mut self) -> Result<MachPortName> {
        if let Some(s) = self.service {
            return Ok(s);
        }
        let ctx = self.ctx;
        let bp = self.t.bootstrap_port();
        let mut logged_unknown = false;
        loop {
            ctx.op(Op::Connect);
            match self.t.bootstrap_look_up(bp, SERVICE) {
                Ok(name) => {
                    event(ctx, CALL_LOOK_UP, [bp.into(), name.into(), 0], 0);
                    self.release_dead();
                    if self.index == 0 {
                        // Tell me when the server's port dies.
                        let r = self.t.mach_port_request_notification(
                            name,
                            MACH_NOTIFY_DEAD_NAME,
                            0,
                            self.notify,
                            MACH_MSG_TYPE_MAKE_SEND_ONCE,
                        );
                        event(ctx, CALL_REQUEST_DEAD_NAME, [name.into(), self.notify.into(), 0], kr_of(&r));
                    }
                    self.service = Some(name);
                    return Ok(name);
                }
                Err(e) => {
                    // BOOTSTRAP_UNKNOWN_SERVICE until the server has checked in.
                    if !logged_unknown {
                        event(ctx, CALL_LOOK_UP, [bp.into(), 0, 0], e.kr().unwrap_or(KERN_FAILURE));
                        bump(&ctx.me().err_other, 1);
                        logged_unknown = true;
                    }
                    if e.kr().is_none() {
                        // No kernel: this task is over.
                        anyhow::bail!("the Mach kernel is gone ({e})");
                    }
                    self.collect_replies(false);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// One notification from the notify port, waiting up to `timeout` ms.
    fn notification(&self, timeout: u32) -> Option<i32> {
        let ctx = self.ctx;
        let options = MACH_RCV_MSG | MACH_RCV_TIMEOUT;
        match self.t.mach_msg(MachMsgArgs {
            options,
            rcv_name: self.notify,
            rcv_timeout: timeout,
            ..MachMsgArgs::default()
        }) {
            Ok(Some(m)) => {
                let xnu = xnu(ctx);
                event(ctx, CALL_NOTIFICATION, [m.header.id as u32 as u64, self.notify.into(), u64::from(xnu)], 0);
                if m.header.id == MACH_NOTIFY_SEND_POSSIBLE && xnu {
                    self.sp_requested.set(false);
                } else if m.header.id == MACH_NOTIFY_MSG_ACCEPTED {
                    bump(&ctx.me().aux[3], 1);
                }
                Some(m.header.id)
            }
            Ok(None) => None,
            Err(e) => {
                if e.kr().is_none() {
                    self.kernel_gone.set(true);
                }
                None
            }
        }
    }

    /// XNU: wait for the armed request's `MACH_NOTIFY_SEND_POSSIBLE`; a
    /// bounded wait, since another thread may have taken the request slot.
    fn wait_send_possible(&mut self) {
        for _ in 0..4 {
            match self.notification(50) {
                Some(MACH_NOTIFY_SEND_POSSIBLE) if !self.sp_requested.get() => return,
                Some(MACH_NOTIFY_DEAD_NAME) => {
                    self.sp_requested.set(false);
                    self.forget_service();
                    return;
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// Our cached message has been accepted: the notification says so.
    fn wait_accepted(&mut self) {
        self.ctx.op(Op::Wait);
        while self.cached {
            match self.notification(1000) {
                Some(MACH_NOTIFY_MSG_ACCEPTED) => self.cached = false,
                Some(MACH_NOTIFY_DEAD_NAME) => self.forget_service(),
                _ => self.collect_replies(false),
            }
        }
    }

    /// The service died: its name is a dead name now. It stays in the
    /// name space (where the class can see it) until a new server is found.
    fn forget_service(&mut self) {
        self.sp_requested.set(false);
        if let Some(name) = self.service.take() {
            self.release_dead();
            self.dead = Some(name);
            if self.index == 0 {
                // The dead-name notification is waiting on the notify port.
                while let Some(id) = self.notification(0) {
                    if id == MACH_NOTIFY_MSG_ACCEPTED {
                        self.cached = false;
                    }
                }
            }
        }
    }

    /// Give back the dead name left of the old service: our reference,
    /// and the one the dead-name request added (thread 1 made it).
    fn release_dead(&mut self) {
        if let Some(name) = self.dead.take() {
            let r = self.t.mach_port_deallocate(name);
            event(self.ctx, CALL_DEALLOCATE, [name.into(), 0, 0], kr_of(&r));
            if self.index == 0 {
                let _ = self.t.mach_port_deallocate(name);
            }
        }
    }

    /// Send one request. True when the kernel took it (the next one gets
    /// a new sequence number); false to send it again.
    fn request(
        &mut self,
        service: MachPortName,
        mode: SendMode,
        body: Vec<u8>,
        descriptors: Vec<OutDescriptor>,
        size: usize,
    ) -> bool {
        let ctx = self.ctx;
        let me = ctx.me();
        let (options, timeout) = mode.options();
        let xnu = mode == SendMode::Notify && xnu(ctx);
        if xnu && !self.sp_requested.get() {
            // XNU: MACH_SEND_NOTIFY only arms a request registered first.
            // One slot per name: it replaces a dead-name request (or another
            // thread's), whose send-once right comes back to be released.
            let r = self.t.mach_port_request_notification(
                service,
                MACH_NOTIFY_SEND_POSSIBLE,
                0,
                self.notify,
                MACH_MSG_TYPE_MAKE_SEND_ONCE,
            );
            event(ctx, CALL_REQUEST_SEND_POSSIBLE, [service.into(), self.notify.into(), 0], kr_of(&r));
            if let Ok(previous) = r {
                self.sp_requested.set(true);
                if previous != MACH_PORT_NULL {
                    let _ = self.t.mach_port_deallocate(previous);
                }
            }
        }
        let bits = mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MAKE_SEND_ONCE);
        let msg = OutMsg { bits, remote_port: service, local_port: self.reply, id: REQUEST_ID, body, descriptors };
        ctx.op(Op::Send);
        let r = self.t.mach_msg(MachMsgArgs {
            options,
            msg: Some(msg),
            send_timeout: timeout,
            notify: if mode == SendMode::Notify { self.notify } else { MACH_PORT_NULL },
            ..MachMsgArgs::default()
        });
        let kr = kr_of(&r);
        match kr {
            KERN_SUCCESS | MACH_SEND_WILL_NOTIFY => crate::trace::hook::sent(size),
            _ => crate::trace::hook::failed(i64::from(kr)),
        }
        event(ctx, CALL_MSG, msg_event(options, timeout, service, self.reply, REQUEST_ID, bits), kr);
        self.last_sent = kr == KERN_SUCCESS;
        let taken = |c: &mut Self| {
            c.outstanding += 1;
            bump(&me.sent_msgs, 1);
            bump(&me.sent_bytes, size as u64);
        };
        match kr {
            KERN_SUCCESS => {
                taken(self);
                true
            }
            MACH_SEND_TIMED_OUT if timeout > 0 => {
                bump(&me.aux[0], 1);
                bump(&me.err_timedout, 1);
                false
            }
            MACH_SEND_TIMED_OUT => {
                bump(&me.aux[1], 1);
                bump(&me.err_again, 1);
                if xnu {
                    // Armed: wait (bounded) for MACH_NOTIFY_SEND_POSSIBLE.
                    ctx.op(Op::Wait);
                    self.wait_send_possible();
                }
                // Otherwise nothing to wait for: try again at the next tick.
                false
            }
            MACH_SEND_WILL_NOTIFY => {
                // Option 4: the kernel keeps it past the limit and will tell
                // us (MACH_NOTIFY_MSG_ACCEPTED) when it has its place.
                bump(&me.aux[2], 1);
                self.cached = true;
                taken(self);
                true
            }
            MACH_SEND_NOTIFY_IN_PROGRESS => {
                bump(&me.aux[4], 1);
                bump(&me.err_again, 1);
                if self.cached {
                    // One kept message per thread: wait until ours is accepted.
                    self.wait_accepted();
                } else {
                    // GNU Mach: another thread of this task holds the slot for
                    // this send right, and its notification goes to its own
                    // port; look at ours (bounded), then try again.
                    ctx.op(Op::Wait);
                    if let Some(MACH_NOTIFY_DEAD_NAME) = self.notification(100) {
                        self.forget_service();
                    }
                }
                false
            }
            MACH_SEND_INVALID_DEST => {
                bump(&me.aux[5], 1);
                bump(&me.err_other, 1);
                self.forget_service();
                false
            }
            _ => {
                bump(&me.err_other, 1);
                if r.as_ref().err().and_then(MachError::kr).is_none() {
                    // The kernel is gone: nothing more to do here.
                    self.kernel_gone.set(true);
                }
                false
            }
        }
    }

    /// `mach.task_info`: a request to our own task port, which the kernel
    /// receives and answers, on a port of ours made for the answer.
    fn task_info(&mut self) -> Result<()> {
        let ctx = self.ctx;
        let info = match self.info {
            Some(p) => p,
            None => {
                let p = allocate(ctx, self.t, 2)?;
                self.info = Some(p);
                p
            }
        };
        let me = self.t.mach_task_self();
        let bits = mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MAKE_SEND_ONCE);
        let msg = OutMsg {
            bits,
            remote_port: me,
            local_port: info,
            id: TASK_INFO_ID,
            body: NDR_RECORD.to_vec(),
            ..OutMsg::default()
        };
        let options = MACH_SEND_MSG | MACH_RCV_MSG | MACH_RCV_TIMEOUT;
        let r = self.t.mach_msg(MachMsgArgs {
            options,
            msg: Some(msg),
            rcv_name: info,
            rcv_timeout: 1000,
            ..MachMsgArgs::default()
        });
        let kr = kr_of(&r);
        if r.as_ref().err().is_some_and(|e| e.kr().is_none()) {
            self.kernel_gone.set(true);
        }
        event(ctx, CALL_MSG, msg_event(options, 0, me, info, TASK_INFO_ID, bits), kr);
        if let Ok(Some(m)) = r {
            event(ctx, CALL_MSG, msg_event(MACH_RCV_MSG, 0, info, 0, m.header.id, m.header.bits), 0);
        }
        Ok(())
    }

    /// `mach.thread_talk`: send the task's other thread a message on its
    /// own reply port. The name space is shared, so this thread names the
    /// other's receive right directly and makes a send right from it
    /// (`MACH_MSG_TYPE_MAKE_SEND`); it never waits on a full port.
    fn talk_to_sibling(&self) {
        let ctx = self.ctx;
        let other = 1 - self.index.min(1);
        let Some(sib) = ctx.me().aux.get(6 + other) else { return };
        let target = sib.load(Relaxed) as u32;
        if target == 0 || target == self.reply {
            return;
        }
        let bits = mach_msgh_bits(MACH_MSG_TYPE_MAKE_SEND, 0);
        let body = (self.index as u64 + 1).to_le_bytes().to_vec();
        let msg = OutMsg { bits, remote_port: target, id: THREAD_TALK_ID, body, ..OutMsg::default() };
        let r = self.t.send(msg, MACH_SEND_TIMEOUT, 0);
        event(
            ctx,
            CALL_MSG,
            msg_event(MACH_SEND_MSG | MACH_SEND_TIMEOUT, 0, target, 0, THREAD_TALK_ID, bits),
            kr_of(&r),
        );
    }

    /// `mach.intruder`: receive on the service's name, which holds only a
    /// send right here. The kernel refuses (`MACH_RCV_INVALID_NAME`): the
    /// server, which allocated the port, alone holds its receive right.
    fn try_receive_on(&self, service: MachPortName) {
        let ctx = self.ctx;
        let options = MACH_RCV_MSG | MACH_RCV_TIMEOUT;
        let r = self.t.mach_msg(MachMsgArgs { options, rcv_name: service, ..MachMsgArgs::default() });
        let kr = match &r {
            Ok(_) => KERN_SUCCESS,
            Err(e) => {
                if e.kr().is_none() {
                    self.kernel_gone.set(true);
                }
                e.kr().unwrap_or(KERN_FAILURE)
            }
        };
        event(ctx, CALL_MSG, msg_event(options, 0, service, 0, 0, 0), kr);
    }

    /// Take the replies waiting on our reply port; with `wait`, wait for
    /// at least one.
    fn collect_replies(&mut self, wait: bool) {
        let ctx = self.ctx;
        let mut first = wait;
        while self.outstanding > 0 {
            let options = if first { MACH_RCV_MSG } else { MACH_RCV_MSG | MACH_RCV_TIMEOUT };
            first = false;
            if wait {
                ctx.op(Op::Receive);
            }
            match self.t.mach_msg(MachMsgArgs { options, rcv_name: self.reply, ..MachMsgArgs::default() }) {
                Ok(Some(m)) => {
                    event(ctx, CALL_MSG, msg_event(MACH_RCV_MSG, 0, self.reply, 0, m.header.id, m.header.bits), 0);
                    // The other thread's message is no reply: keep waiting.
                    if m.header.id == THREAD_TALK_ID {
                        self.talk_turn = true;
                        first = wait;
                        continue;
                    }
                    self.outstanding -= 1;
                    self.check_reply(m);
                }
                Ok(None) => return,
                Err(e) => {
                    if e.kr().is_none() {
                        self.kernel_gone.set(true);
                    }
                    if e.kr() != Some(MACH_RCV_TIMED_OUT) {
                        let kr = e.kr().unwrap_or(KERN_FAILURE);
                        event(ctx, CALL_MSG, msg_event(options, 0, self.reply, 0, 0, 0), kr);
                        bump(&ctx.me().err_other, 1);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    return;
                }
            }
        }
    }

    fn check_reply(&mut self, reply: ReceivedMsg) {
        let me = self.ctx.me();
        if reply.header.id == MACH_NOTIFY_SEND_ONCE {
            // The request's send-once right died unused: the server is gone
            // (MIG calls this MIG_SERVER_DIED).
            // The next send finds the dead name and looks the service up.
            bump(&me.aux[5], 1);
            return;
        }
        let data = payload(&reply);
        if let Ok(h) = message::peek_header(data) {
            crate::trace::hook::received(h.sender, h.seq, h.len, h.sent_ns);
        }
        bump(&me.recv_msgs, 1);
        bump(&me.recv_bytes, data.len() as u64);
        // Every byte back as it went out: the payload is a function of
        // (sender, seq), so rebuild it and compare.
        let good = reply.header.id == REPLY_ID
            && match message::decode(data) {
                Ok(h) if h.sender == self.sender => {
                    let mut expect = vec![0u8; data.len()];
                    message::encode_at(&mut expect, self.sender, h.seq, h.sent_ns);
                    expect == data && self.replies.accept(h.sender, h.seq) == message::Verdict::Delivered
                }
                _ => false,
            };
        if good {
            bump(&me.delivered, 1);
        } else {
            bump(&me.corrupt, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_read_like_c() {
        let ev = msg_event(
            MACH_SEND_MSG | MACH_SEND_TIMEOUT,
            10,
            0x1103,
            0,
            REQUEST_ID,
            mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, 0),
        );
        assert_eq!(
            format_call(CALL_MSG, ev, MACH_SEND_TIMED_OUT as i64),
            "mach_msg(SEND|SEND_TIMEOUT, dest=0x1103 COPY_SEND, id=1000, timeout=10) = MACH_SEND_TIMED_OUT"
        );
        assert_eq!(
            format_call(CALL_LOOK_UP, [0x203, 0, 0], BOOTSTRAP_UNKNOWN_SERVICE as i64),
            "bootstrap_look_up(0x203, \"edu.ipcscope.echo\") = BOOTSTRAP_UNKNOWN_SERVICE"
        );
        assert_eq!(SendMode::from_knob(1 << 32 | 10), SendMode::Timeout(10));
        assert_eq!(SendMode::from_knob(3 << 32), SendMode::Notify);
        assert_eq!(SendMode::from_knob(0), SendMode::Block);
    }
}
