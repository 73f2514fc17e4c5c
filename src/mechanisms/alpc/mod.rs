//! Windows ALPC, emulated: an NT port object manager in a process of ours
//! (`ipcscope kernel nt`), with a real server and real clients talking to
//! it — the textbook's §3.7.3 on a Linux machine.
//!
//! The core (kernel state machine, wire format, NT-named client library,
//! local RPC on top):
//! - [`types`]: NTSTATUS codes, LPC message types, `PORT_MESSAGE`.
//! - [`proto`]: the wire format between a process and the kernel.
//! - [`kernel`]: the pure state machine (ports, channels, sections, …).
//! - [`state`]: what an observer sees (serde).
//! - [`server`]: the kernel process's poll loop.
//! - [`client`]: the NT-named API processes call, and the observer.
//! - [`rpc`]: a tiny local RPC layer over ALPC, as Windows applications see it.
//!
//! The mechanism on top of it:
//! - this file: knobs, the `Mechanism` (slots, spawning, restart), the
//!   event-log format of the workers' calls;
//! - [`workload`]: the roles `kernel`, `server`, `client-N`;
//! - [`probe`]: what the monitor samples into `model::detail::alpc`;
//! - [`report`]: what the workers leave for the probe.
//!
//! Telemetry `aux` words: server — [0] connections accepted, [1] refused,
//! [2] callbacks answered right, [3] wrong, [4] connection port handle;
//! client — [0] calls whose arguments were copied, [1] passed in a
//! section, [2] read directly, [3] callbacks served, [4] refusals seen,
//! [5] client communication port handle, [6] direct access granted,
//! [7] results that came back through a different path than the arguments.

pub mod client;
pub mod kernel;
pub mod probe;
pub mod proto;
pub mod report;
pub mod rpc;
pub mod server;
pub mod state;
pub mod types;
pub mod workload;

use anyhow::Result;

use super::{Info, Kind, Mechanism, Probe};
use crate::knobs::KnobId;
use crate::monitor::{Calls, ProcTracker};
use crate::supervisor::{Supervisor, WorkerSpec};
use crate::telemetry::Op;
use client::CallRecord;
use types::{LpcMessageType, NtStatus};

pub static INFO: Info =
    Info { kind: Kind::Alpc, knobs: KnobId::ALPC, new: || Box::new(Alpc::default()), worker: workload::run_worker };

/// The endpoint the server registers: `ncalrpc:[ipcscope-echo]`.
pub const ENDPOINT: &str = "ipcscope-echo";
pub use report::SOCKET;
/// Most clients a run starts.
pub const MAX_CLIENTS: usize = crate::knobs::ALPC_MAX_CLIENTS as usize;

// ---------------------------------------------------------------- event log

/// A call record packed into a telemetry event: `call` = api | path << 8
/// | type << 16 | received << 32 | the received message's id (31 bits)
/// << 33; `args` = [handle, bytes, offset or id]; `ret` = the NTSTATUS.
pub fn pack_call(r: &CallRecord) -> (u64, [u64; 3], i64) {
    let id = r.header.filter(|_| r.received).map_or(0, |h| u64::from(h.message_id) & 0x7fff_ffff);
    let call = u64::from(r.api)
        | u64::from(r.path) << 8
        | u64::from(r.msg_type) << 16
        | u64::from(r.received) << 32
        | id << 33;
    (call, [u64::from(r.handle), r.bytes, r.extra], i64::from(r.status.0))
}

/// Events of our own that are not kernel calls (a refused connection seen
/// by the client before it has a handle, say) use api numbers from here.
pub const EVENT_PRCTL_PTRACER: u64 = 100;

/// How the event log prints a packed call.
fn format_call(call: u64, a: [u64; 3], ret: i64) -> String {
    let status = NtStatus(ret as u32);
    if call == EVENT_PRCTL_PTRACER {
        return format!("prctl(PR_SET_PTRACER, {}) = 0  (the kernel may read this process)", a[0]);
    }
    let api = (call & 0xff) as u8;
    let path = (call >> 8 & 0xff) as u8;
    let msg_type = (call >> 16 & 0xffff) as u16;
    let received = call >> 32 & 1 == 1;
    let id = call >> 33;
    let name = CallRecord::API_NAMES.get(usize::from(api)).copied().unwrap_or("?");
    let type_name = LpcMessageType::from_code(msg_type).map_or("?", |t| t.name());
    // (arguments, what came back)
    let (args, back) = match name {
        "NtAlpcSendWaitReceivePort" if msg_type == 0 && !received => {
            (format!("port=0x{:x}, receive", a[0]), String::new())
        }
        "NtAlpcSendWaitReceivePort" => {
            let how = match path {
                1 => format!("{} bytes via section @0x{:x}", a[1], a[2]),
                2 => format!("{} bytes left for direct access", a[1]),
                _ => format!("{} bytes copied", a[1]),
            };
            if received {
                // The id from the header; a[2] holds the view's offset on
                // the section path.
                // (Records without a header carry the id in a[2].)
                let id = if id == 0 && path != 1 { a[2] } else { id };
                (format!("port=0x{:x}", a[0]), format!(" → {type_name} id={id}, {how}"))
            } else {
                (format!("port=0x{:x}, {type_name}, {how}", a[0]), String::new())
            }
        }
        "NtReadRequestData" | "NtWriteRequestData" => {
            (format!("port=0x{:x}, id={}, {} bytes", a[0], a[2], a[1]), String::new())
        }
        "NtAlpcCreateSectionView" => (format!("port=0x{:x}, {} bytes", a[0], a[1]), format!(" → view @0x{:x}", a[2])),
        "NtAlpcConnectPort" => {
            // The real call has no section-size argument (ALPC passes
            // sections in message attributes): ours is labelled as ours.
            let section =
                if a[1] > 0 { format!("  [ipcscope: asks for a {}-byte section]", a[1]) } else { String::new() };
            let handle = if a[0] > 0 { format!(" → port 0x{:x}", a[0]) } else { String::new() };
            (rpc::endpoint_port_name(ENDPOINT), format!("{handle}{section}"))
        }
        "GrantDirectAccess" => {
            return format!("[ipcscope only, no NT call] the kernel records the PR_SET_PTRACER grant = {status}");
        }
        "NtAlpcAcceptConnectPort" => {
            (format!("port=0x{:x}, id={}, {}", a[0], a[2], if path == 1 { "accept" } else { "refuse" }), String::new())
        }
        "NtAlpcCreatePort" => (rpc::endpoint_port_name(ENDPOINT), format!(" → 0x{:x}", a[0])),
        _ if a[0] > 0 => (format!("0x{:x}", a[0]), String::new()),
        _ => (String::new(), String::new()),
    };
    format!("{name}({args}){back} = {status}")
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Send => "NtAlpcSendWaitReceivePort (waiting for the reply)",
        Op::Receive => "NtAlpcSendWaitReceivePort (receive)",
        Op::Connect => "NtAlpcConnectPort",
        Op::Accept => "NtAlpcAcceptConnectPort",
        Op::Wait => "poll() for calls",
        _ => crate::monitor::default_op_name(op),
    }
}

pub(crate) const CALLS: Calls = Calls { event: format_call, op: op_name };

// ---------------------------------------------------------------- mechanism

#[derive(Default)]
pub struct Alpc {
    kernel: usize,
    server: usize,
    clients: Vec<usize>,
}

impl Mechanism for Alpc {
    fn kind(&self) -> Kind {
        Kind::Alpc
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.kernel = sup.alloc_slot()?;
        self.server = sup.alloc_slot()?;
        let n = (sup.knobs().get(KnobId::AlpcClients) as usize).clamp(1, MAX_CLIENTS);
        self.clients = (0..n).map(|_| sup.alloc_slot()).collect::<Result<_>>()?;
        self.spawn_all(sup)
    }

    /// Killing the server shows what NT does to clients waiting for replies.
    fn victim(&self) -> Option<usize> {
        Some(self.server)
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        if !sup.slot_alive(self.kernel) {
            // Every port, channel and section lived in the kernel: begin anew.
            for &s in [self.server].iter().chain(&self.clients) {
                sup.signal_slot(s, libc::SIGKILL);
            }
            return self.spawn_all(sup);
        }
        if !sup.slot_alive(self.server) {
            self.spawn_role(sup, self.server, "server")?;
        }
        for (i, &s) in self.clients.iter().enumerate() {
            if !sup.slot_alive(s) {
                self.spawn_role(sup, s, &format!("client-{}", i + 1))?;
            }
        }
        Ok(())
    }

    fn producers(&self) -> Vec<usize> {
        self.clients.clone()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        let dir = sup.dir_path().to_path_buf();
        Box::new(probe::AlpcProbe::new(
            &dir,
            ProcTracker::new(self.kernel, "kernel", CALLS, &dir),
            (self.server, ProcTracker::new(self.server, "server", CALLS, &dir)),
            self.clients
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, ProcTracker::new(s, &format!("client-{}", i + 1), CALLS, &dir)))
                .collect(),
        ))
    }
}

impl Alpc {
    fn spawn_all(&mut self, sup: &mut Supervisor) -> Result<()> {
        sup.spawn(&WorkerSpec::kernel(Kind::Alpc, "nt", self.kernel))?;
        self.spawn_role(sup, self.server, "server")?;
        for (i, &s) in self.clients.iter().enumerate() {
            self.spawn_role(sup, s, &format!("client-{}", i + 1))?;
        }
        Ok(())
    }

    fn spawn_role(&self, sup: &mut Supervisor, slot: usize, role: &str) -> Result<()> {
        sup.spawn(&WorkerSpec::new(Kind::Alpc, role, slot))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::detail::alpc::PortMessageHeader;

    #[test]
    fn calls_print_as_nt_names_them() {
        let r = CallRecord {
            api: 5,
            handle: 0x2c,
            msg_type: LpcMessageType::LPC_REQUEST,
            path: 1,
            bytes: 4096,
            extra: 0x1000,
            ..CallRecord::default()
        };
        let (c, a, ret) = pack_call(&r);
        assert_eq!(
            format_call(c, a, ret),
            "NtAlpcSendWaitReceivePort(port=0x2c, LPC_REQUEST, 4096 bytes via section @0x1000) = STATUS_SUCCESS"
        );
        let refused = CallRecord { api: 3, status: NtStatus::STATUS_PORT_CONNECTION_REFUSED, ..CallRecord::default() };
        let (c, a, ret) = pack_call(&refused);
        assert_eq!(
            format_call(c, a, ret),
            r"NtAlpcConnectPort(\RPC Control\ipcscope-echo) = STATUS_PORT_CONNECTION_REFUSED"
        );
        let recv = CallRecord {
            api: 5,
            handle: 4,
            msg_type: LpcMessageType::LPC_REQUEST,
            received: true,
            bytes: 120,
            extra: 7,
            ..CallRecord::default()
        };
        let (c, a, ret) = pack_call(&recv);
        assert_eq!(
            format_call(c, a, ret),
            "NtAlpcSendWaitReceivePort(port=0x4) → LPC_REQUEST id=7, 120 bytes copied = STATUS_SUCCESS"
        );
        // A message received with a section view: its id from the header,
        // the view's offset apart (the log once printed the offset as id=0).
        let header = PortMessageHeader { message_id: 42, ..PortMessageHeader::default() };
        let viewed = CallRecord {
            api: 5,
            handle: 4,
            msg_type: LpcMessageType::LPC_REQUEST,
            received: true,
            path: 1,
            bytes: 4076,
            extra: 0,
            header: Some(header),
            ..CallRecord::default()
        };
        let (c, a, ret) = pack_call(&viewed);
        assert_eq!(
            format_call(c, a, ret),
            "NtAlpcSendWaitReceivePort(port=0x4) → LPC_REQUEST id=42, 4076 bytes via section @0x0 = STATUS_SUCCESS"
        );
        // Arguments the real calls lack are marked as ours.
        let connect = CallRecord { api: 3, handle: 4, bytes: 65536, ..CallRecord::default() };
        let (c, a, ret) = pack_call(&connect);
        assert_eq!(
            format_call(c, a, ret),
            r"NtAlpcConnectPort(\RPC Control\ipcscope-echo) → port 0x4  [ipcscope: asks for a 65536-byte section] = STATUS_SUCCESS"
        );
    }
}
