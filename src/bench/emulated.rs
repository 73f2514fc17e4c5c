//! The emulated kernels' cases: a Mach kernel process with an echo server
//! task (inline and out-of-line bodies), and an NT kernel process with an
//! RPC server (queue, section and direct paths). The bench itself is the
//! client task; every message carries ipcscope's header and checksum.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;

use super::cases::{message_buffer, Framing, Side};
use super::peer::{self, next_command, reply, Cmd, Peer, OP_PINGPONG, OP_STREAM};
use super::stats;
use crate::mechanisms::alpc::client::AlpcProcess;
use crate::mechanisms::alpc::kernel::KernelConfig;
use crate::mechanisms::alpc::rpc::{DataPath, RpcClient, RpcServer};
use crate::mechanisms::mach::client::{InDescriptor, MachMsgArgs, MachTask, OutDescriptor, OutMsg};
use crate::mechanisms::mach::types::*;
use crate::message;
use crate::telemetry::Telemetry;

const SERVICE: &str = "ipcscope.bench";
const REQUEST: i32 = 4200;
const REPLY: i32 = 4300;
/// The largest inline Mach body the bench sends (one packet to the kernel
/// holds the whole message).
pub const MACH_INLINE_MAX: usize = 64 * 1024;
/// The queue path's limit when the NT kernel runs with the largest
/// `alpc.small_max` (65495) minus the RPC header.
pub const ALPC_QUEUE_MAX: usize = 65_400;

fn retry<T, E: std::fmt::Display>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => bail!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn stop_with(parent: i32) -> impl Fn() -> bool {
    move || nix::unistd::getppid().as_raw() != parent
}

/// The message bytes a Mach message carries: the OOL region or the body.
fn mach_payload(msg: &crate::mechanisms::mach::client::ReceivedMsg) -> &[u8] {
    msg.descriptors
        .iter()
        .find_map(|d| match d {
            InDescriptor::Ool(r) => Some(r.bytes()),
            InDescriptor::Port { .. } => None,
        })
        .unwrap_or(&msg.body)
}

/// Body of a message: inline (a copy into the request), or out of line:
/// built in place in a region of the task's pool and sent with
/// `deallocate`, so the receiver maps it and nothing is copied. As for
/// every case, the payload pattern is written once (per region, which the
/// pool reuses) and only the header is stamped per message; the receiver's
/// checksum would catch a region that did not hold it.
fn mach_body(
    task: &MachTask,
    framing: &mut Framing,
    buf: &mut [u8],
    ool: bool,
    filled: &mut HashSet<(usize, usize)>,
) -> Result<(Vec<u8>, Vec<OutDescriptor>)> {
    if ool {
        let mut mem = task.vm_allocate(buf.len())?;
        let Some(region) = mem.as_mut_slice() else { bail!("vm_allocate gave no writable region") };
        if filled.insert((region.as_ptr() as usize, region.len())) {
            region.copy_from_slice(buf);
        }
        framing.out(region);
        Ok((Vec::new(), vec![OutDescriptor::Ool(mem.deallocate(true))]))
    } else {
        framing.out(buf);
        Ok((buf.to_vec(), Vec::new()))
    }
}

/// The emulated Mach kernel, an echo server task, and the bench as client.
pub struct Mach {
    task: MachTask,
    server: Peer,
    kernel: Peer,
    service: MachPortName,
    reply_port: MachPortName,
    ool: bool,
    framing: Framing,
    buf: Vec<u8>,
    filled: HashSet<(usize, usize)>,
}

impl Mach {
    pub fn new(dir: &Path, tel: &Telemetry, ool: bool) -> Result<Mach> {
        let path = dir.join(if ool { "mach-ool.sock" } else { "mach-inline.sock" });
        let me = nix::unistd::getpid().as_raw();
        let p = path.clone();
        let mut kernel = peer::spawn("bench-mach-kern", &[], move |_| {
            crate::mechanisms::mach::server::run(&p, stop_with(me)).context("mach kernel")
        })?;
        kernel.daemon = true;
        let p = path.clone();
        let tel2 = tel.clone();
        let server = peer::spawn("bench-mach-srv", &[], move |ctl| mach_server(ctl, &p, &tel2, ool))?;
        let task = retry("connect to the Mach kernel", || MachTask::connect(&path, "bench-client"))?;
        let bp = task.bootstrap_port();
        let service = retry("bootstrap_look_up", || task.bootstrap_look_up(bp, SERVICE))?;
        let reply_port = task.mach_port_allocate(MACH_PORT_RIGHT_RECEIVE).map_err(|e| anyhow!("allocate: {e}"))?;
        Ok(Mach {
            kernel,
            server,
            task,
            service,
            reply_port,
            ool,
            framing: Framing::new(tel, 2),
            buf: Vec::new(),
            filled: HashSet::new(),
        })
    }

    fn prepare(&mut self, size: usize) {
        if self.buf.len() != size {
            self.buf = message_buffer(size, self.framing.sender());
        }
    }
}

fn mach_server(ctl: i32, path: &Path, tel: &Telemetry, ool: bool) -> Result<()> {
    let task = retry("connect to the Mach kernel", || MachTask::connect(path, "bench-server"))?;
    let bp = task.bootstrap_port();
    let port = task.bootstrap_check_in(bp, SERVICE).map_err(|e| anyhow!("bootstrap_check_in: {e}"))?;
    // Inline bodies queue up to the largest limit. Out-of-line regions stay
    // at Mach's default queue limit (5): a sender that runs ahead blocks in
    // the kernel instead of filling ever more fresh pool pages.
    if !ool {
        let _ = task.mach_port_set_attributes(port, MACH_PORT_LIMITS_INFO, &[MACH_PORT_QLIMIT_MAX as i32]);
    }
    let mut framing = Framing::new(tel, 3);
    let mut buf = Vec::new();
    let mut filled = HashSet::new();
    while let Some(cmd) = next_command(ctl) {
        if buf.len() != cmd.size as usize {
            buf = message_buffer(cmd.size as usize, framing.sender());
        }
        for _ in 0..cmd.count {
            let msg = task
                .mach_msg(MachMsgArgs { options: MACH_RCV_MSG, rcv_name: port, ..MachMsgArgs::default() })
                .map_err(|e| anyhow!("mach_msg(RCV): {e}"))?
                .ok_or_else(|| anyhow!("no message"))?;
            framing.check(mach_payload(&msg))?;
            if cmd.op == OP_PINGPONG {
                let (body, descriptors) = mach_body(&task, &mut framing, &mut buf, ool, &mut filled)?;
                let out = OutMsg {
                    bits: mach_msgh_bits(MACH_MSG_TYPE_MOVE_SEND_ONCE, 0),
                    remote_port: msg.header.remote_port,
                    id: REPLY,
                    body,
                    descriptors,
                    ..OutMsg::default()
                };
                drop(msg);
                task.send(out, 0, 0).map_err(|e| anyhow!("reply: {e}"))?;
            }
        }
        reply(ctl, 0)?;
    }
    Ok(())
}

impl Side for Mach {
    fn pids(&self) -> Vec<i32> {
        vec![self.kernel.pid, self.server.pid]
    }

    fn unsupported(&self, _op: u64, size: usize) -> Option<String> {
        if size < message::MIN_LEN {
            return Some(format!("smaller than ipcscope's {}-byte minimum message", message::MIN_LEN));
        }
        if !self.ool && size > MACH_INLINE_MAX {
            return Some(format!(
                "inline bodies stop at {} KiB here (larger ones go out of line)",
                MACH_INLINE_MAX >> 10
            ));
        }
        None
    }

    fn pingpong(&mut self, size: usize, n: u64, h: &mut Histogram<u64>) -> Result<()> {
        self.prepare(size);
        self.server.command(Cmd { op: OP_PINGPONG, size: size as u64, count: n })?;
        for _ in 0..n {
            let t = Instant::now();
            let (body, descriptors) =
                mach_body(&self.task, &mut self.framing, &mut self.buf, self.ool, &mut self.filled)?;
            let msg = OutMsg {
                bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MAKE_SEND_ONCE),
                remote_port: self.service,
                local_port: self.reply_port,
                id: REQUEST,
                body,
                descriptors,
            };
            let got = self
                .task
                .mach_msg(MachMsgArgs {
                    options: MACH_SEND_MSG | MACH_RCV_MSG,
                    msg: Some(msg),
                    rcv_name: self.reply_port,
                    ..MachMsgArgs::default()
                })
                .map_err(|e| anyhow!("mach_msg(SEND|RCV): {e}"))?
                .ok_or_else(|| anyhow!("no reply"))?;
            self.framing.check(mach_payload(&got))?;
            drop(got);
            stats::record(h, t.elapsed().as_nanos() as u64);
        }
        self.server.answer()?;
        Ok(())
    }

    fn stream(&mut self, size: usize, n: u64) -> Result<Duration> {
        self.prepare(size);
        self.server.command(Cmd { op: OP_STREAM, size: size as u64, count: n })?;
        let t = Instant::now();
        for _ in 0..n {
            let (body, descriptors) =
                mach_body(&self.task, &mut self.framing, &mut self.buf, self.ool, &mut self.filled)?;
            let msg = OutMsg {
                bits: mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, 0),
                remote_port: self.service,
                id: REQUEST,
                body,
                descriptors,
                ..OutMsg::default()
            };
            self.task.send(msg, 0, 0).map_err(|e| anyhow!("mach_msg(SEND): {e}"))?;
        }
        self.server.answer()?;
        Ok(t.elapsed())
    }
}

// ------------------------------------------------------------ ALPC

/// Which of ALPC's three data paths a side forces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlpcPath {
    Queue,
    Section,
    Direct,
}

impl AlpcPath {
    fn expected(self) -> DataPath {
        match self {
            AlpcPath::Queue => DataPath::Copied,
            AlpcPath::Section => DataPath::Section,
            AlpcPath::Direct => DataPath::Direct,
        }
    }
}

/// The emulated NT kernel, an RPC server, and the bench as RPC client,
/// configured so that every call takes one path: the queue (the kernel's
/// `small_max` raised to 65495), a section (`small_max` 64 and a section as
/// large as the largest message), or direct reads (`small_max` 64, no
/// section).
pub struct Alpc {
    // Dropped in this order: the client's connection, the server, then
    // the kernel (a server that outlived its kernel would complain).
    client: RpcClient,
    server: Peer,
    kernel: Peer,
    path: AlpcPath,
    section: u64,
    framing: Framing,
    buf: Vec<u8>,
    filled: HashSet<(usize, usize)>,
}

const ENDPOINT: &str = "ipcscope-bench";

impl Alpc {
    pub fn new(dir: &Path, tel: &Telemetry, path: AlpcPath, max_size: usize) -> Result<Alpc> {
        let sock: PathBuf = dir.join(format!("nt-{path:?}.sock").to_lowercase());
        let small_max = if path == AlpcPath::Queue { 65_495 } else { 64 };
        let section = match path {
            AlpcPath::Section => (max_size.max(4096).div_ceil(4096) * 4096 + 4096).min(16 << 20) as u64,
            _ => 0,
        };
        let me = nix::unistd::getpid().as_raw();
        let p = sock.clone();
        let mut kernel = peer::spawn("bench-nt-kernel", &[], move |_| {
            let config = KernelConfig { small_max, ..KernelConfig::default() };
            crate::mechanisms::alpc::server::run_with_config(&p, config, stop_with(me)).context("nt kernel")
        })?;
        kernel.daemon = true;
        let p = sock.clone();
        let tel2 = tel.clone();
        let mut server = peer::spawn("bench-rpc-srv", &[], move |_| alpc_server(&p, &tel2, section, me))?;
        server.daemon = true;
        let mut client = retry("bind to the RPC endpoint", || {
            let process = AlpcProcess::connect_named(&sock, "bench-client").map_err(|e| e.to_string())?;
            RpcClient::bind(process, ENDPOINT, section).map_err(|e| e.to_string())
        })?;
        // The layer-by-layer trace is what the TUI's panel draws; the bench
        // runs without the TUI.
        client.trace_calls = false;
        Ok(Alpc {
            kernel,
            server,
            client,
            path,
            section,
            framing: Framing::new(tel, 4),
            buf: Vec::new(),
            filled: HashSet::new(),
        })
    }

    fn call(&mut self, procedure: &str, max_result: usize) -> Result<()> {
        let r = if self.path == AlpcPath::Section {
            // Built in place in the view; the pattern is written once per
            // view position (the section reuses them), the header per call.
            let (buf, framing, filled) = (&self.buf, &mut self.framing, &mut self.filled);
            let mut fill = |view: &mut [u8]| {
                if filled.insert((view.as_ptr() as usize, view.len())) {
                    view.copy_from_slice(buf);
                }
                framing.out(view);
            };
            self.client.call_with(procedure, self.buf.len(), max_result, &mut fill)
        } else {
            self.framing.out(&mut self.buf);
            self.client.call(procedure, &self.buf, max_result)
        }
        .map_err(|e| anyhow!("RPC {procedure}: {e}"))?;
        if r.args_path != self.path.expected() {
            bail!("the call took the {:?} path, not {:?}", r.args_path, self.path.expected());
        }
        if procedure == "echo" {
            self.framing.check(&r.result)?;
        }
        self.client.recycle(r.result);
        Ok(())
    }
}

fn alpc_server(sock: &Path, tel: &Telemetry, section: u64, parent: i32) -> Result<()> {
    let mut server = retry("listen on the RPC endpoint", || {
        let process = AlpcProcess::connect_named(sock, "bench-server").map_err(|e| e.to_string())?;
        RpcServer::listen(process, ENDPOINT, section).map_err(|e| e.to_string())
    })?;
    // The NT server loop: each reply goes out with the wait for the next
    // request, in one NtAlpcSendWaitReceivePort (this loop never pauses).
    server.reply_with_next_receive = true;
    let mut framing = Framing::new(tel, 5);
    let mut echo = Vec::new();
    let mut procedures = |name: &str, args: &[u8], out: &mut Vec<u8>| -> Result<(), u32> {
        framing.check(args).map_err(|_| 1u32)?;
        if name == "echo" {
            if echo.len() != args.len() {
                echo = message_buffer(args.len(), framing.sender());
            }
            framing.out(&mut echo);
            out.extend_from_slice(&echo);
        } else {
            out.extend_from_slice(&[0u8; 8]);
        }
        Ok(())
    };
    let stop = stop_with(parent);
    while !stop() {
        server.serve_one(&mut procedures, Some(Duration::from_millis(200))).map_err(|e| anyhow!("serve: {e}"))?;
    }
    Ok(())
}

impl Side for Alpc {
    fn pids(&self) -> Vec<i32> {
        vec![self.kernel.pid, self.server.pid]
    }

    fn unsupported(&self, _op: u64, size: usize) -> Option<String> {
        if size < message::MIN_LEN {
            return Some(format!("smaller than ipcscope's {}-byte minimum message", message::MIN_LEN));
        }
        match self.path {
            AlpcPath::Queue if size > ALPC_QUEUE_MAX => {
                Some("above the queue path's limit (an ALPC message is at most 64 KiB)".into())
            }
            AlpcPath::Section if size as u64 > self.section => Some("larger than the section".into()),
            _ => None,
        }
    }

    fn pingpong(&mut self, size: usize, n: u64, h: &mut Histogram<u64>) -> Result<()> {
        if self.buf.len() != size {
            self.buf = message_buffer(size, self.framing.sender());
        }
        for _ in 0..n {
            let t = Instant::now();
            self.call("echo", size)?;
            stats::record(h, t.elapsed().as_nanos() as u64);
        }
        Ok(())
    }

    /// A stream of calls whose result is 8 bytes: arguments one way.
    fn stream(&mut self, size: usize, n: u64) -> Result<Duration> {
        if self.buf.len() != size {
            self.buf = message_buffer(size, self.framing.sender());
        }
        let t = Instant::now();
        for _ in 0..n {
            self.call("sink", 16)?;
        }
        Ok(t.elapsed())
    }
}
