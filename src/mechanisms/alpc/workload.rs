//! What runs inside the ALPC processes:
//! - `kernel`: the emulated NT kernel (`ipcscope kernel nt`), its socket in
//!   the run's directory;
//! - `server`: creates `\RPC Control\ipcscope-echo`, accepts (or refuses)
//!   clients and serves their RPC calls, optionally calling them back;
//! - `client-N`: binds to the endpoint and calls `Echo` with one of our
//!   checked messages, verifying every byte that comes back, whatever path
//!   carried it.
//!
//! Every kernel call a worker makes goes into its event log, named as NT
//! names it. Each worker also writes a small report (the latest
//! `PORT_MESSAGE` headers it received, the latest RPC call's layers) into
//! the run's directory for the probe.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::client::{AlpcError, AlpcProcess, CallRecord};
use super::kernel::{KernelConfig, Personality};
use super::report::{report_path, socket_path, WorkerReport};
use super::rpc::{request_header_len, DataPath, RpcClient, RpcError, RpcServer, Served, UNKNOWN_PROCEDURE};
use super::types::NtStatus;
use super::{pack_call, ENDPOINT};
use crate::knobs::KnobId;
use crate::mechanisms::worker::{Pacer, WorkerCtx};
use crate::message::{self, Verifier};
use crate::model::detail::alpc::SeenMessage;
use crate::telemetry::{Op, Slot};

/// The one procedure the echo server offers.
pub const ECHO: &str = "Echo";

pub fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "kernel" => kernel(ctx),
        "server" => serve(ctx),
        r if r.starts_with("client-") => client(ctx, r),
        _ => bail!("ALPC has no role {role:?} (kernel, server, client-N)"),
    }
}

fn kernel(ctx: &mut WorkerCtx) -> Result<()> {
    let config = KernelConfig {
        small_max: ctx.knob(KnobId::AlpcSmallMax) as u32,
        personality: Personality::from_knob(ctx.knob(KnobId::AlpcPersonality)),
        max_pool_usage: ctx.knob(KnobId::AlpcMaxPoolUsage),
        ..KernelConfig::default()
    };
    ctx.op(Op::Wait);
    let supervisor = ctx.supervisor;
    // The kernel ends with its run.
    let orphaned = move || nix::unistd::getppid().as_raw() != supervisor;
    // The kernel switches personality at run time, on the same processes.
    let tel = ctx.tel.clone();
    let personality = move || Personality::from_knob(tel.knob(KnobId::AlpcPersonality));
    super::server::run_switchable(&socket_path(&ctx.run_dir), config, orphaned, personality)
        .context("the NT kernel stopped")?;
    ctx.op(Op::Done);
    Ok(())
}

/// Connects to the kernel, waiting (bounded) for it to come up.
fn connect_kernel(ctx: &WorkerCtx, name: &str) -> Result<AlpcProcess> {
    let path = socket_path(&ctx.run_dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match AlpcProcess::connect_named(&path, name) {
            Ok(p) => return Ok(p),
            Err(e) if Instant::now() > deadline => bail!("cannot reach the NT kernel at {}: {e}", path.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Puts the calls a process made into the worker's event log, and keeps
/// the headers of the messages it received.
fn log_calls(ctx: &WorkerCtx, process: &mut AlpcProcess, seen: &mut Vec<SeenMessage>, role: &str) {
    for r in process.take_calls() {
        if r.api == 14 || r.api == 1 {
            continue; // QueryState, Hello: not part of the story
        }
        let (call, args, ret) = pack_call(&r);
        ctx.event(call, args, ret);
        if let Some(header) = r.header {
            seen.push(SeenMessage { by: role.to_string(), header, path: r.path, bytes: r.bytes, view_offset: r.extra });
            if seen.len() > 4 {
                seen.remove(0);
            }
        }
    }
}

/// Writes the report atomically (the probe never reads half of one).
fn write_report(ctx: &WorkerCtx, report: &WorkerReport) {
    let path = report_path(&ctx.run_dir, ctx.slot);
    let tmp = path.with_extension("tmp");
    if let Ok(json) = serde_json::to_vec(report) {
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
}

fn add(ctx: &WorkerCtx, i: usize, n: u64) {
    Slot::add(&ctx.me().aux[i], n);
}

fn serve(ctx: &mut WorkerCtx) -> Result<()> {
    let process = connect_kernel(ctx, "alpc-server")?;
    let section = ctx.knob(KnobId::AlpcSectionSize);
    let mut rpc = match RpcServer::listen(process, ENDPOINT, section) {
        Ok(r) => r,
        Err(e) => bail!("NtAlpcCreatePort: {e}"),
    };
    let mut seen = Vec::new();
    log_calls(ctx, rpc.process(), &mut seen, "server");
    let mut verifier = Verifier::new();
    let mut pacer = Pacer::consumer();
    let mut last_report = Instant::now();
    loop {
        pacer.wait(ctx);
        rpc.accept_connections = ctx.knob(KnobId::AlpcAccept) != 0;
        rpc.reply_section_size = ctx.knob(KnobId::AlpcSectionSize);
        rpc.callback_every = if ctx.knob(KnobId::AlpcCallbacks) != 0 { 4 } else { 0 };
        ctx.op(Op::Receive);
        let mut bytes_in = 0usize;
        let served = {
            let verifier = &mut verifier;
            let bytes_in = &mut bytes_in;
            let mut echo = |name: &str, args: &[u8], out: &mut Vec<u8>| -> Result<(), u32> {
                if name != ECHO {
                    return Err(UNKNOWN_PROCEDURE);
                }
                // The server checks what reached it too; the client checks
                // the round trip.
                let _ = verifier.check(args);
                *bytes_in = args.len();
                out.extend_from_slice(args);
                Ok(())
            };
            rpc.serve_one(&mut echo, Some(Duration::from_millis(500)))
        };
        log_calls(ctx, rpc.process(), &mut seen, "server");
        match served {
            Ok(Served::Connected { .. }) => add(ctx, 0, 1),
            Ok(Served::Refused { .. }) => add(ctx, 1, 1),
            Ok(Served::Call { .. }) => {
                ctx.count_received(bytes_in);
                ctx.count_sent(bytes_in);
            }
            Ok(Served::Closed | Served::Other | Served::Idle) => {}
            Err(RpcError::Alpc(AlpcError::Status(s))) => ctx.count_error(status_errno(s)),
            Err(e) => bail!("serving: {e}"),
        }
        ctx.me().aux[2].store(rpc.callbacks_ok, Relaxed);
        ctx.me().aux[3].store(rpc.callbacks_bad, Relaxed);
        let c = verifier.counts();
        // Only corruption is the server's to report: order and loss are
        // judged per client, on the round trip.
        ctx.me().corrupt.store(c.corrupt, Relaxed);
        if last_report.elapsed() >= Duration::from_millis(300) {
            last_report = Instant::now();
            write_report(ctx, &WorkerReport { headers: seen.clone(), rpc: Vec::new() });
        }
    }
}

fn status_errno(s: NtStatus) -> i32 {
    match s {
        NtStatus::STATUS_TIMEOUT => libc::ETIMEDOUT,
        NtStatus::STATUS_NO_MEMORY | NtStatus::STATUS_QUOTA_EXCEEDED => libc::EAGAIN,
        NtStatus::STATUS_PORT_DISCONNECTED | NtStatus::STATUS_LPC_REPLY_LOST | NtStatus::STATUS_PORT_CLOSED => {
            libc::EPIPE
        }
        _ => libc::EIO,
    }
}

/// Binds to the endpoint; a refusal is logged and retried a second later,
/// a server not there yet a moment later.
fn bind(ctx: &WorkerCtx, name: &str) -> Result<RpcClient> {
    let mut seen = Vec::new();
    loop {
        let process = connect_kernel(ctx, name)?;
        let section = ctx.knob(KnobId::AlpcSectionSize);
        ctx.op(Op::Connect);
        match RpcClient::bind(process, ENDPOINT, section) {
            Ok(mut c) => {
                c.sections_any_time = ctx.knob(KnobId::AlpcPersonality) == 1;
                log_calls(ctx, c.process(), &mut seen, name);
                ctx.me().aux[5].store(u64::from(c.port()), Relaxed);
                return Ok(c);
            }
            Err(RpcError::Alpc(AlpcError::Status(status))) => {
                let r = CallRecord { api: 3, bytes: section, status, ..CallRecord::default() };
                let (call, args, ret) = pack_call(&r);
                ctx.event(call, args, ret);
                if status == NtStatus::STATUS_PORT_CONNECTION_REFUSED {
                    add(ctx, 4, 1);
                    std::thread::sleep(Duration::from_secs(1));
                } else {
                    // The server has not created its port yet.
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Err(e) => bail!("binding to {ENDPOINT}: {e}"),
        }
    }
}

fn client(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    let name = format!("alpc-{role}");
    let mut rpc = bind(ctx, &name)?;
    // What this client decided at setup: its section and the rules it
    // connected under. A change makes it connect anew (a new channel).
    let setup = |ctx: &WorkerCtx| (ctx.knob(KnobId::AlpcSectionSize), ctx.knob(KnobId::AlpcPersonality));
    let mut bound = setup(ctx);
    let sender = ctx.sender_id();
    let mut verifier = Verifier::new();
    let mut pacer = Pacer::producer();
    let mut seen = Vec::new();
    let mut trace = Vec::new();
    let mut buf = vec![0u8; 1 << 21];
    let mut seq = 0u64;
    let mut turn = 0usize;
    let mut granted = false;
    let mut last_report = Instant::now();
    let count = ctx.knob(KnobId::ProducerCount);
    loop {
        if count > 0 && seq >= count {
            break;
        }
        pacer.wait(ctx);
        if setup(ctx) != bound {
            // Closing the old connection closes its port: the server gets
            // LPC_PORT_CLOSED and lets the channel go.
            drop(rpc);
            rpc = bind(ctx, &name)?;
            bound = setup(ctx);
            granted = false;
        }
        // msg.size counts the whole ALPC message: the RPC runtime's header
        // and the call's arguments.
        let size = next_size(ctx, &mut turn)
            .saturating_sub(request_header_len(ECHO) as usize)
            .clamp(message::MIN_LEN, 1 << 20);
        let msg = &mut buf[..size];
        message::encode(msg, sender, seq);
        seq += 1;
        ctx.op(Op::Send);
        let outcome = rpc.call(ECHO, msg, size);
        if !granted && rpc.granted() {
            granted = true;
            ctx.event(super::EVENT_PRCTL_PTRACER, [u64::from(rpc.process().kernel_pid()), 0, 0], 0);
            ctx.me().aux[6].store(1, Relaxed);
        }
        log_calls(ctx, rpc.process(), &mut seen, role);
        match outcome {
            Ok(o) => {
                ctx.count_sent(size);
                ctx.count_received(o.result.len());
                if o.result.as_slice() == &buf[..size] {
                    let _ = verifier.check(&o.result);
                } else {
                    verifier.corrupt();
                }
                add(
                    ctx,
                    match o.args_path {
                        DataPath::Copied => 0,
                        DataPath::Section => 1,
                        DataPath::Direct => 2,
                    },
                    1,
                );
                if o.result_path != o.args_path {
                    add(ctx, 7, 1);
                }
                ctx.me().aux[3].store(rpc.callbacks_served, Relaxed);
                ctx.publish(verifier.counts());
                trace = o.trace;
                rpc.recycle(o.result);
            }
            Err(RpcError::Alpc(AlpcError::Status(s))) => {
                ctx.count_error(status_errno(s));
                if matches!(
                    s,
                    NtStatus::STATUS_PORT_DISCONNECTED
                        | NtStatus::STATUS_LPC_REPLY_LOST
                        | NtStatus::STATUS_PORT_CLOSED
                        | NtStatus::STATUS_INVALID_HANDLE
                ) {
                    // The server is gone: its channel with it. Bind anew.
                    std::thread::sleep(Duration::from_millis(200));
                    rpc = bind(ctx, &name)?;
                    granted = false;
                }
            }
            Err(RpcError::Alpc(e)) => bail!("the NT kernel is gone: {e}"),
            Err(e) => {
                ctx.count_error(libc::EIO);
                verifier.corrupt();
                ctx.publish(verifier.counts());
                eprintln!("call failed: {e}");
            }
        }
        if last_report.elapsed() >= Duration::from_millis(300) {
            last_report = Instant::now();
            write_report(ctx, &WorkerReport { headers: seen.clone(), rpc: trace.clone() });
        }
    }
    ctx.op(Op::Done);
    write_report(ctx, &WorkerReport { headers: seen, rpc: trace.clone() });
    Ok(())
}

/// `msg.size`, or with `alpc.mix` a cycle of one message for each path.
fn next_size(ctx: &WorkerCtx, turn: &mut usize) -> usize {
    let size = ctx.msg_size();
    if ctx.knob(KnobId::AlpcMix) == 0 {
        return size;
    }
    *turn = (*turn + 1) % 3;
    let section = ctx.knob(KnobId::AlpcSectionSize) as usize;
    let pick = match *turn {
        0 => 100,
        1 => size,
        _ => section * 2,
    };
    pick.clamp(message::MIN_LEN, 1 << 20)
}
