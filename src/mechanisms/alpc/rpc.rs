//! A tiny local RPC over ALPC — what Windows applications actually see.
//!
//! Applications never call ALPC: they make RPC calls, and for a server on
//! the same machine the RPC runtime (ncalrpc, the LRPC transport) carries
//! them over ALPC. Endpoint `X` is the connection port `\RPC Control\X`.
//! Each call records the layers it passed through, so a panel can show one
//! call travelling down (application → stub → runtime → ALPC) and back up.
//!
//! The marshalling is our own toy format, not NDR/LRPC (whose wire format
//! is undocumented); the data path per call follows the notes: inline if it
//! fits the message, else through the channel's section, else read/written
//! directly in the client's address space.

use super::client::{AlpcError, AlpcProcess, ConnectOptions};
use super::proto::{PortAttributes, ReceivedMessage, SendMessage};
use super::types::{msg_flags, LpcMessageType, NtStatus};
pub use crate::model::detail::alpc::{Direction, RpcLayer, RpcStep};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The object directory where RPC endpoints live.
pub const RPC_CONTROL: &str = r"\RPC Control\";
const REQUEST_MAGIC: &[u8; 4] = b"RPQ1";
const REPLY_MAGIC: &[u8; 4] = b"RPR1";
/// Largest argument or result the toy runtime moves (the direct path's cap).
pub const MAX_RPC_PAYLOAD: usize = 64 << 20;
const NO_INDEX: u8 = 0xFF;
/// The fault code a procedure table returns for a name it does not know.
pub const UNKNOWN_PROCEDURE: u32 = u32::MAX;

pub fn endpoint_port_name(endpoint: &str) -> String {
    format!("{RPC_CONTROL}{endpoint}")
}

/// Which of the notes' three data paths a payload took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataPath {
    /// Copied through the kernel inside the message.
    Copied,
    /// Written into the channel's section; the message carried offset and size.
    Section,
    /// Read or written by the server directly in the client's address space.
    Direct,
}

impl DataPath {
    /// 0 copied, 1 section, 2 direct: as reports and headers number them.
    pub fn code(self) -> u8 {
        match self {
            DataPath::Copied => 0,
            DataPath::Section => 1,
            DataPath::Direct => 2,
        }
    }
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DataPath::Copied,
            1 => DataPath::Section,
            2 => DataPath::Direct,
            _ => return None,
        })
    }
}

/// One hop of a call, in English and as a locale key with arguments.
fn step(
    trace: &mut Vec<RpcStep>,
    layer: RpcLayer,
    direction: Direction,
    detail: String,
    key: &str,
    args: &[(&str, String)],
) {
    let args = args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    trace.push(RpcStep { layer, direction, detail, key: key.to_string(), args });
}

/// `step(…)` when `$on`: the strings of a step are only made for a trace
/// that is kept.
macro_rules! trace_step {
    ($on:expr; $($arg:expr),+ $(,)?) => {
        if $on {
            step($($arg),+);
        }
    };
}

/// A path as the trace's `path` argument names it (the panel translates).
fn path_word(path: DataPath) -> &'static str {
    match path {
        DataPath::Copied => "queue",
        DataPath::Section => "section",
        DataPath::Direct => "direct",
    }
}

/// Bytes the runtime puts in front of a call's inline arguments.
pub fn request_header_len(procedure: &str) -> u64 {
    (REQUEST_MAGIC.len() + 4 + procedure.len() + 8) as u64
}

/// The path the arguments of a call take, the notes' rule: inline when
/// they fit the channel's message (`max_message_length`) with the
/// runtime's header, else through the channel's section (`section`: its
/// size, if the client asked for one) when they fit it, else left in the
/// client for the server to read directly.
pub fn args_path(procedure: &str, size: u64, max_message_length: u64, section: Option<u64>) -> DataPath {
    if request_header_len(procedure) + size <= max_message_length {
        DataPath::Copied
    } else if section.is_some_and(|s| size <= s) {
        DataPath::Section
    } else {
        DataPath::Direct
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpcCallResult {
    pub result: Vec<u8>,
    pub args_path: DataPath,
    pub result_path: DataPath,
    pub message_id: u32,
    pub trace: Vec<RpcStep>,
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Alpc(#[from] AlpcError),
    #[error("the server does not know procedure {0:?}")]
    UnknownProcedure(String),
    #[error("the procedure failed with code {0}")]
    Fault(u32),
    #[error("the result does not fit the caller's buffer")]
    ResultTooLarge,
    #[error("malformed RPC message")]
    Malformed,
}

/// How the server answers: its status byte in the reply.
mod reply_status {
    pub const OK: u8 = 0;
    pub const UNKNOWN_PROCEDURE: u8 = 1;
    pub const FAULT: u8 = 2;
    pub const RESULT_TOO_LARGE: u8 = 3;
    pub const MALFORMED: u8 = 4;
}

/// The RPC request header, inline in the ALPC message.
struct RequestHeader {
    procedure: String,
    args_len: u32,
    args_path: DataPath,
    /// `PORT_DATA_INFORMATION` index of the arguments (direct path).
    args_index: u8,
    max_result: u32,
    /// Index of the caller's result buffer, for a result written directly.
    result_index: u8,
}

impl RequestHeader {
    fn encode(&self, inline_args: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.procedure.len() + inline_args.len());
        out.extend_from_slice(REQUEST_MAGIC);
        out.push(self.args_path.code());
        out.push(self.args_index);
        out.push(self.result_index);
        out.push(u8::try_from(self.procedure.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.procedure.as_bytes());
        out.extend_from_slice(&self.args_len.to_le_bytes());
        out.extend_from_slice(&self.max_result.to_le_bytes());
        out.extend_from_slice(inline_args);
        out
    }

    /// Parses an untrusted request: `(header, inline arguments)`.
    fn decode(bytes: &[u8]) -> Option<(RequestHeader, &[u8])> {
        let rest = bytes.strip_prefix(REQUEST_MAGIC)?;
        let (&[path, args_index, result_index, name_len], rest) = rest.split_first_chunk::<4>()?;
        let (name, rest) = rest.split_at_checked(usize::from(name_len))?;
        let (args_len, rest) = rest.split_first_chunk::<4>()?;
        let (max_result, rest) = rest.split_first_chunk::<4>()?;
        let header = RequestHeader {
            procedure: String::from_utf8(name.to_vec()).ok()?,
            args_len: u32::from_le_bytes(*args_len),
            args_path: DataPath::from_code(path)?,
            args_index,
            max_result: u32::from_le_bytes(*max_result),
            result_index,
        };
        Some((header, rest))
    }
}

fn encode_reply(status: u8, path: DataPath, result_len: u32, inline: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(10 + inline.len());
    out.extend_from_slice(REPLY_MAGIC);
    out.push(status);
    out.push(path.code());
    out.extend_from_slice(&result_len.to_le_bytes());
    out.extend_from_slice(inline);
    out
}

/// `(status, path, result length or fault code, inline bytes)`.
fn decode_reply(bytes: &[u8]) -> Option<(u8, DataPath, u32, &[u8])> {
    let rest = bytes.strip_prefix(REPLY_MAGIC)?;
    let (&[status, path], rest) = rest.split_first_chunk::<2>()?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    Some((status, DataPath::from_code(path)?, u32::from_le_bytes(*len), rest))
}

/// The client side: a binding to one endpoint.
/// A call's arguments: bytes of the caller, or built in place.
enum Args<'a> {
    Bytes(&'a [u8]),
    Build(usize, &'a mut dyn FnMut(&mut [u8])),
}

pub struct RpcClient {
    process: AlpcProcess,
    /// Arguments built by `call_with` off the section path (reused).
    scratch: Vec<u8>,
    /// Result buffers given back ([`RpcClient::recycle`]) or not needed by
    /// the last call. A fresh 1 MiB buffer costs 256 page faults at its
    /// first touch — measured here, 430–510 µs, more than the whole call.
    spare: Vec<Vec<u8>>,
    /// Nested requests (LPC callbacks) this client served while it waited.
    pub callbacks_served: u64,
    endpoint: String,
    port: u32,
    max_message_length: usize,
    section: Option<u32>,
    section_size: u64,
    granted: bool,
    /// ALPC's rule: a section may be created on the port after connect,
    /// when a call needs one and none was asked for (`alpc.personality=alpc`).
    pub sections_any_time: bool,
    /// Record each call's way through the layers (`RpcCallResult::trace`,
    /// what the ALPC panel draws). On by default; the bench turns it off,
    /// as it runs without the TUI: it times the call, not its drawing
    /// (the strings cost about 4 µs a call, measured with perf).
    pub trace_calls: bool,
}

impl RpcClient {
    /// Binds to `ncalrpc:[endpoint]`: connects to `\RPC Control\endpoint`,
    /// asking for a section of `section_size` bytes for large arguments
    /// (0 = none, so large arguments go the direct path).
    pub fn bind(mut process: AlpcProcess, endpoint: &str, section_size: u64) -> Result<Self, RpcError> {
        let options = ConnectOptions {
            client_section_size: section_size,
            connection_data: b"ncalrpc".to_vec(),
            timeout: Some(Duration::from_secs(10)),
            ..ConnectOptions::default()
        };
        let connected = process.nt_alpc_connect_port(&endpoint_port_name(endpoint), &options)?;
        Ok(RpcClient {
            process,
            scratch: Vec::new(),
            spare: Vec::new(),
            callbacks_served: 0,
            endpoint: endpoint.to_string(),
            port: connected.port,
            max_message_length: connected.max_message_length as usize,
            section: connected.own_section,
            section_size,
            granted: false,
            sections_any_time: false,
            trace_calls: true,
        })
    }

    pub fn process(&mut self) -> &mut AlpcProcess {
        &mut self.process
    }

    /// Give a result's buffer back, for the next call's result to land in
    /// memory that is already mapped.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < 2 {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// A zeroed buffer of `len` bytes, from the spares if one is there.
    fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut b = self.spare.pop().unwrap_or_default();
        b.clear();
        b.resize(len, 0);
        b
    }

    pub fn port(&self) -> u32 {
        self.port
    }

    /// This client has run `prctl(PR_SET_PTRACER, kernel)` and told the
    /// kernel so (done before the first call that declares regions).
    pub fn granted(&self) -> bool {
        self.granted
    }

    /// Calls `procedure(args)`; the result may be up to `max_result` bytes.
    pub fn call(&mut self, procedure: &str, args: &[u8], max_result: usize) -> Result<RpcCallResult, RpcError> {
        self.call_args(procedure, Args::Bytes(args), max_result)
    }

    /// A call whose arguments `fill` builds in place: in the section's view
    /// when the call takes that path (then nothing else copies them), else
    /// in a buffer of ours.
    pub fn call_with(
        &mut self,
        procedure: &str,
        len: usize,
        max_result: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<RpcCallResult, RpcError> {
        self.call_args(procedure, Args::Build(len, fill), max_result)
    }

    fn call_args(
        &mut self,
        procedure: &str,
        mut source: Args<'_>,
        max_result: usize,
    ) -> Result<RpcCallResult, RpcError> {
        let len = match &source {
            Args::Bytes(b) => b.len(),
            Args::Build(n, _) => *n,
        };
        if procedure.len() > 64 || len > MAX_RPC_PAYLOAD || max_result > MAX_RPC_PAYLOAD {
            return Err(RpcError::Alpc(AlpcError::Status(NtStatus::STATUS_INVALID_PARAMETER)));
        }
        let on = self.trace_calls;
        let mut trace = Vec::new();
        let n = if on { len.to_string() } else { String::new() };
        trace_step!(on;
            &mut trace,
            RpcLayer::Application,
            Direction::Down,
            format!("{procedure}({len} bytes)"),
            "rpc_app_down",
            &[("proc", procedure.to_string()), ("n", n.clone())],
        );

        // ALPC: a client that asked for no section at connect may create
        // one on its port now, for a call too big to go inline.
        if self.section.is_none()
            && self.sections_any_time
            && request_header_len(procedure) + len as u64 > self.max_message_length as u64
        {
            let size = (len as u64).next_power_of_two().max(64 << 10);
            if let Ok(handle) = self.process.nt_alpc_create_port_section(self.port, size) {
                self.section = Some(handle);
                self.section_size = size;
                trace_step!(on;
                    &mut trace,
                    RpcLayer::Runtime,
                    Direction::Down,
                    format!("NtAlpcCreatePortSection(port=0x{:x}, {size} bytes): a section after connect", self.port),
                    "rpc_section_created",
                    &[("h", format!("0x{:x}", self.port)), ("size", size.to_string())],
                );
            }
        }
        let section = self.section.map(|_| self.section_size);
        let args_path = args_path(procedure, len as u64, self.max_message_length as u64, section);
        // Arguments built in place go into the view (below) on the section
        // path, else into our own buffer first.
        let mut scratch = std::mem::take(&mut self.scratch);
        if let (Args::Build(n, fill), false) = (&mut source, args_path == DataPath::Section) {
            scratch.resize(*n, 0);
            fill(&mut scratch);
        }
        let args: &[u8] = match &source {
            Args::Bytes(b) => b,
            Args::Build(..) => &scratch,
        };
        // A result too big for an inline reply may come back through the
        // server's section or be written into this buffer directly.
        // The server replies inline only up to the kernel's `small_max`
        // (whatever the channel's own limit), so plan by that.
        let inline_reply = self.process.small_max() as usize;
        let mut result_buffer = self.buffer(if max_result + 10 > inline_reply { max_result } else { 0 });
        let mut data_info = Vec::new();
        let args_index = if args_path == DataPath::Direct {
            data_info.push(AlpcProcess::data_entry(args));
            0
        } else {
            NO_INDEX
        };
        let result_index = if result_buffer.is_empty() {
            NO_INDEX
        } else {
            data_info.push(AlpcProcess::data_entry_mut(&mut result_buffer));
            u8::try_from(data_info.len() - 1).unwrap_or(NO_INDEX)
        };
        if !data_info.is_empty() && !self.granted {
            self.process.grant_direct_access()?;
            self.granted = true;
        }
        let header = RequestHeader {
            procedure: procedure.to_string(),
            args_len: len as u32,
            args_path,
            args_index,
            max_result: max_result as u32,
            result_index,
        };
        let inline_args = if args_path == DataPath::Copied { args } else { &[] };
        let data = header.encode(inline_args);
        trace_step!(on;
            &mut trace,
            RpcLayer::Stub,
            Direction::Down,
            format!("marshal {procedure}: {} bytes inline, arguments {args_path:?}", data.len()),
            "rpc_stub_down",
            &[
                ("proc", procedure.to_string()),
                ("inline", data.len().to_string()),
                ("path", path_word(args_path).into()),
            ],
        );

        let view = match (args_path, self.section, &mut source) {
            // One view kept for every call: the call waits for its reply,
            // by which time the server is done with the view.
            (DataPath::Section, Some(section), Args::Build(n, fill)) => {
                Some(self.process.stage_in_kept_view_with(self.port, section, *n, &mut **fill)?)
            }
            (DataPath::Section, Some(section), Args::Bytes(b)) => {
                let mut copy = |view: &mut [u8]| view.copy_from_slice(b);
                Some(self.process.stage_in_kept_view_with(self.port, section, b.len(), &mut copy)?)
            }
            _ => None,
        };
        trace_step!(on;
            &mut trace,
            RpcLayer::Runtime,
            Direction::Down,
            format!(
                "ncalrpc:[{}] → {} (client port 0x{:x})",
                self.endpoint,
                endpoint_port_name(&self.endpoint),
                self.port
            ),
            "rpc_runtime_down",
            &[
                ("ep", self.endpoint.clone()),
                ("port", endpoint_port_name(&self.endpoint)),
                ("h", format!("0x{:x}", self.port)),
            ],
        );
        let h = format!("0x{:x}", self.port);
        let (path_text, key, args) = match (args_path, view) {
            (DataPath::Section, Some(v)) => (
                format!("{len} bytes via section @0x{:x}", v.offset),
                "rpc_alpc_down_section",
                vec![("h", h), ("n", n.clone()), ("off", format!("0x{:x}", v.offset))],
            ),
            (DataPath::Direct, _) => (
                format!("{len} bytes left in the client for NtReadRequestData"),
                "rpc_alpc_down_direct",
                vec![("h", h), ("n", n.clone())],
            ),
            _ => (
                format!("{} bytes copied", data.len()),
                "rpc_alpc_down_queue",
                vec![("h", h), ("n", data.len().to_string())],
            ),
        };
        trace_step!(on;
            &mut trace,
            RpcLayer::Alpc,
            Direction::Down,
            format!("NtAlpcSendWaitReceivePort(port=0x{:x}, LPC_REQUEST, {path_text})", self.port),
            key,
            &args,
        );

        let message = SendMessage { data, view, data_info, ..SendMessage::default() };
        // `args` and `result_buffer` stay borrowed across this blocking
        // call: the server reads and writes them in place.
        let sent = self.process.send_request(self.port, message, None);
        self.scratch = scratch;
        let reply = match sent {
            Ok(reply) => self.serve_callbacks(reply, &mut trace),
            Err(e) => {
                // A view the kernel refused is still ours; give it back.
                if let Some(view) = view {
                    let _ = self.process.nt_alpc_delete_section_view(self.port, &view);
                }
                return Err(e.into());
            }
        };
        let reply = reply?;
        if reply.header.message_type() != Some(LpcMessageType::Reply) {
            return Err(RpcError::Malformed);
        }
        let (status, result_path, len, inline) = decode_reply(&reply.data).ok_or(RpcError::Malformed)?;
        // The reply header travels inline; a view holds the result only.
        let view_result = match &reply.view {
            Some(view) => {
                let mut out = self.spare.pop().unwrap_or_default();
                self.process.read_view_into(view, &mut out)?;
                Some(out)
            }
            None => None,
        };
        trace_step!(on;
            &mut trace,
            RpcLayer::Alpc,
            Direction::Up,
            format!(
                "LPC_REPLY id={} from {}: result {result_path:?}",
                reply.header.message_id, reply.header.client_id.unique_process
            ),
            "rpc_alpc_up",
            &[
                ("id", reply.header.message_id.to_string()),
                ("pid", reply.header.client_id.unique_process.to_string()),
                ("path", path_word(result_path).into()),
            ],
        );
        trace_step!(on;
            &mut trace,
            RpcLayer::Runtime,
            Direction::Up,
            format!("reply matched call id {}", reply.header.message_id),
            "rpc_runtime_up",
            &[("id", reply.header.message_id.to_string())],
        );
        let result = match status {
            reply_status::OK => match (result_path, view_result) {
                (DataPath::Section, Some(bytes)) => {
                    self.recycle(result_buffer);
                    bytes
                }
                (DataPath::Direct, unused) => {
                    unused.into_iter().for_each(|b| self.recycle(b));
                    let n = (len as usize).min(result_buffer.len());
                    result_buffer.truncate(n);
                    result_buffer
                }
                (_, unused) => {
                    unused.into_iter().for_each(|b| self.recycle(b));
                    self.recycle(result_buffer);
                    inline.to_vec()
                }
            },
            reply_status::UNKNOWN_PROCEDURE => return Err(RpcError::UnknownProcedure(procedure.into())),
            reply_status::FAULT => return Err(RpcError::Fault(len)),
            reply_status::RESULT_TOO_LARGE => return Err(RpcError::ResultTooLarge),
            _ => return Err(RpcError::Malformed),
        };
        trace_step!(on;
            &mut trace,
            RpcLayer::Stub,
            Direction::Up,
            format!("unmarshal {} bytes of result", result.len()),
            "rpc_stub_up",
            &[("n", result.len().to_string())],
        );
        trace_step!(on;
            &mut trace,
            RpcLayer::Application,
            Direction::Up,
            format!("{procedure} returned"),
            "rpc_app_up",
            &[("proc", procedure.to_string())],
        );
        Ok(RpcCallResult { result, args_path, result_path, message_id: reply.header.message_id, trace })
    }

    /// While this thread waits for its reply, the server may send it a
    /// nested request (an LPC callback: `LPC_REQUEST`, same `MessageId`,
    /// a new `CallbackId`). Serve each with `NtReplyWaitReplyPort` and go
    /// on waiting, until the real reply comes.
    fn serve_callbacks(
        &mut self,
        mut reply: ReceivedMessage,
        trace: &mut Vec<RpcStep>,
    ) -> Result<ReceivedMessage, AlpcError> {
        let on = self.trace_calls;
        while reply.header.message_type() == Some(LpcMessageType::Request) && reply.header.callback_id != 0 {
            trace_step!(on;
                trace,
                RpcLayer::Alpc,
                Direction::Up,
                format!(
                    "LPC_REQUEST id={} callback={}: the server calls back while we wait",
                    reply.header.message_id, reply.header.callback_id
                ),
                "rpc_callback_up",
                &[("id", reply.header.message_id.to_string()), ("cb", reply.header.callback_id.to_string())],
            );
            let answer = callback_answer(&reply.data);
            reply = self.process.nt_reply_wait_reply_port(
                self.port,
                &reply,
                SendMessage { data: answer, ..SendMessage::default() },
                None,
            )?;
            self.callbacks_served += 1;
            trace_step!(on;
                trace,
                RpcLayer::Alpc,
                Direction::Down,
                "NtReplyWaitReplyPort: callback answered, waiting on".into(),
                "rpc_callback_down",
                &[],
            );
        }
        Ok(reply)
    }
}

/// What a client answers to a callback: the question's bytes reversed, so
/// the server can check the answer came from the right client unchanged.
pub fn callback_answer(question: &[u8]) -> Vec<u8> {
    question.iter().rev().copied().collect()
}

/// What one [`RpcServer::serve_one`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    Connected {
        client_pid: u32,
    },
    /// A connection request the server turned down (`accept_connections` off).
    Refused {
        client_pid: u32,
    },
    Call {
        procedure: String,
        args_path: DataPath,
        result_path: DataPath,
    },
    /// A client's port closed (`LPC_PORT_CLOSED`); its channel was released.
    Closed,
    /// Something that needed no answer (a datagram, a failed call).
    Other,
    /// Nothing arrived before the timeout.
    Idle,
}

/// The server's procedures: `(name, arguments)` in, the result written
/// into the (empty) buffer given, or a fault code out;
/// [`UNKNOWN_PROCEDURE`] says no such procedure exists.
pub type Procedure<'a> = dyn FnMut(&str, &[u8], &mut Vec<u8>) -> Result<(), u32> + 'a;

struct ServerChannel {
    port: u32,
    section: Option<u32>,
    /// Requests served on this channel (callbacks are spread per channel).
    requests: u64,
}

/// The server side: an endpoint and its clients.
#[derive(Clone, Copy)]
enum ArgsAt {
    Inline,
    View,
    /// Read directly into the direct window (one copy).
    Window,
    /// Read directly into our scratch buffer (two copies, the kernel's).
    Scratch,
}

pub struct RpcServer {
    process: AlpcProcess,
    /// Arguments read directly from a client (reused, grown as needed).
    scratch: Vec<u8>,
    /// The procedures' results (reused).
    result: Vec<u8>,
    /// Accept connection requests; `false` refuses them
    /// (`STATUS_PORT_CONNECTION_REFUSED` in the client).
    pub accept_connections: bool,
    /// Every Nth request, call the client back before replying (0 = never).
    pub callback_every: u64,
    /// Callbacks answered correctly / wrongly.
    pub callbacks_ok: u64,
    pub callbacks_bad: u64,
    connection_port: u32,
    /// The section each client gets for large replies (0 = none); read at
    /// each accept.
    pub reply_section_size: u64,
    channels: BTreeMap<u64, ServerChannel>,
    /// Reply and wait for the next message in one `NtAlpcSendWaitReceivePort`,
    /// the usual NT server loop: the reply goes out when `serve_one` is next
    /// called, one kernel call fewer per request. Only for a loop that calls
    /// `serve_one` again at once (a paced server would hold its clients).
    pub reply_with_next_receive: bool,
    /// The reply that waits for the next `serve_one`, with its port.
    deferred: Option<(u32, SendMessage)>,
}

impl RpcServer {
    /// Registers endpoint `X` as `\RPC Control\X`. `reply_section_size` > 0
    /// gives every client a section for large results.
    pub fn listen(mut process: AlpcProcess, endpoint: &str, reply_section_size: u64) -> Result<Self, RpcError> {
        let connection_port = process.nt_alpc_create_port(&endpoint_port_name(endpoint), PortAttributes::default())?;
        // The kernel writes results of NtReadRequestData into our buffers.
        super::client::allow_kernel_ptrace(process.kernel_pid());
        Ok(RpcServer {
            process,
            scratch: Vec::new(),
            result: Vec::new(),
            accept_connections: true,
            callback_every: 0,
            callbacks_ok: 0,
            callbacks_bad: 0,
            connection_port,
            reply_section_size,
            channels: BTreeMap::new(),
            reply_with_next_receive: false,
            deferred: None,
        })
    }

    pub fn process(&mut self) -> &mut AlpcProcess {
        &mut self.process
    }

    /// Receives one message and deals with it (sending the reply deferred
    /// by [`reply_with_next_receive`](Self::reply_with_next_receive) first).
    pub fn serve_one(&mut self, procedures: &mut Procedure<'_>, timeout: Option<Duration>) -> Result<Served, RpcError> {
        let received = match self.deferred.take() {
            Some((port, reply)) => {
                let view = reply.view;
                let flags = msg_flags::ALPC_MSGFLG_REPLY_MESSAGE;
                match self.process.nt_alpc_send_wait_receive_port(port, flags, Some(reply), true, timeout) {
                    Ok(m) => m.ok_or(AlpcError::Unexpected),
                    Err(AlpcError::Status(NtStatus::STATUS_TIMEOUT)) => {
                        Err(AlpcError::Status(NtStatus::STATUS_TIMEOUT))
                    }
                    // Any other status is the reply's (its client vanished
                    // or gave up), and nothing was received: as `answer`
                    // does, give the view back, then wait as usual.
                    Err(AlpcError::Status(_)) => {
                        if let Some(view) = view {
                            let _ = self.process.nt_alpc_delete_section_view(port, &view);
                        }
                        self.process.receive(self.connection_port, timeout)
                    }
                    Err(e) => Err(e),
                }
            }
            None => self.process.receive(self.connection_port, timeout),
        };
        let message = match received {
            Ok(m) => m,
            Err(AlpcError::Status(NtStatus::STATUS_TIMEOUT)) => return Ok(Served::Idle),
            Err(e) => return Err(e.into()),
        };
        match message.header.message_type() {
            Some(LpcMessageType::ConnectionRequest) if !self.accept_connections => {
                let refused =
                    self.process.nt_alpc_accept_connect_port(self.connection_port, &message, false, 0, 0, b"refused");
                match refused {
                    Ok(_) | Err(AlpcError::Status(_)) => {
                        Ok(Served::Refused { client_pid: message.header.client_id.unique_process })
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Some(LpcMessageType::ConnectionRequest) => {
                let accepted = self.process.nt_alpc_accept_connect_port(
                    self.connection_port,
                    &message,
                    true,
                    0,
                    self.reply_section_size,
                    b"ncalrpc",
                );
                match accepted {
                    // PortContext 0 → the kernel uses the port's handle value.
                    Ok(Some(port)) => {
                        self.channels.insert(
                            u64::from(port.port),
                            ServerChannel { port: port.port, section: port.own_section, requests: 0 },
                        );
                        Ok(Served::Connected { client_pid: message.header.client_id.unique_process })
                    }
                    // The client gave up meanwhile.
                    Ok(None) | Err(AlpcError::Status(_)) => Ok(Served::Other),
                    Err(e) => Err(e.into()),
                }
            }
            Some(LpcMessageType::PortClosed) => {
                if let Some(channel) = self.channels.remove(&message.port_context) {
                    let _ = self.process.nt_close(channel.port);
                }
                Ok(Served::Closed)
            }
            Some(LpcMessageType::Request) => self.dispatch(&message, procedures),
            _ => Ok(Served::Other),
        }
    }

    fn dispatch(&mut self, message: &ReceivedMessage, procedures: &mut Procedure<'_>) -> Result<Served, RpcError> {
        let Some(channel) = self.channels.get_mut(&message.port_context) else { return Ok(Served::Other) };
        channel.requests += 1;
        let (port, section, nth) = (channel.port, channel.section, channel.requests);
        let Some((header, inline)) = RequestHeader::decode(&message.data) else {
            return self.answer(port, message, encode_reply(reply_status::MALFORMED, DataPath::Copied, 0, &[]), None);
        };
        // Where the arguments are read: inline in the message, in place in
        // the section's view (no copy), or read once into our buffer.
        let at = match header.args_path {
            DataPath::Copied => Ok((ArgsAt::Inline, inline.len())),
            DataPath::Section => match &message.view {
                Some(v) => self.process.view_bytes(v).map(|b| (ArgsAt::View, b.len())).map_err(RpcError::from),
                None => Err(RpcError::Malformed),
            },
            DataPath::Direct => self.read_direct(port, message, &header),
        };
        let at = match at {
            Ok((at, n)) if n == header.args_len as usize => at,
            Ok(_) | Err(RpcError::Malformed) => {
                return self.answer(
                    port,
                    message,
                    encode_reply(reply_status::MALFORMED, DataPath::Copied, 0, &[]),
                    None,
                )
            }
            // A failed direct read (e.g. STATUS_ACCESS_VIOLATION) is the
            // caller's fault; answer it rather than stop serving.
            Err(RpcError::Alpc(AlpcError::Status(status))) => {
                let reply = encode_reply(reply_status::FAULT, DataPath::Copied, status.0, &[]);
                return self.answer(port, message, reply, None);
            }
            Err(e) => return Err(e),
        };
        if self.callback_every > 0 && nth.is_multiple_of(self.callback_every) {
            self.call_back(port, message)?;
        }
        let procedure = header.procedure.clone();
        // The result goes into a buffer kept from call to call: a fresh
        // 1 MiB one costs 256 page faults when the procedure first writes it.
        let mut result = std::mem::take(&mut self.result);
        result.clear();
        let args: &[u8] = match (at, &message.view) {
            (ArgsAt::Inline, _) => inline,
            (ArgsAt::View, Some(v)) => self.process.view_bytes(v)?,
            (ArgsAt::View, None) => return Err(RpcError::Malformed),
            (ArgsAt::Window, _) => self.process.direct_window_bytes(header.args_len as usize)?,
            (ArgsAt::Scratch, _) => &self.scratch[..header.args_len as usize],
        };
        let outcome = procedures(&procedure, args, &mut result);
        let served = match outcome {
            Ok(()) => self.send_result(port, message, &header, section, &result).map(|path| match path {
                Some(result_path) => Served::Call { procedure, args_path: header.args_path, result_path },
                None => Served::Other,
            }),
            Err(code) => {
                let status =
                    if code == UNKNOWN_PROCEDURE { reply_status::UNKNOWN_PROCEDURE } else { reply_status::FAULT };
                self.answer(port, message, encode_reply(status, DataPath::Copied, code, &[]), None)
            }
        };
        self.result = result;
        served
    }

    /// Replies with `result` by the path its size calls for; `None` if it
    /// was larger than the caller allowed (answered `RESULT_TOO_LARGE`).
    fn send_result(
        &mut self,
        port: u32,
        message: &ReceivedMessage,
        header: &RequestHeader,
        section: Option<u32>,
        result: &[u8],
    ) -> Result<Option<DataPath>, RpcError> {
        if result.len() > header.max_result as usize {
            let reply = encode_reply(reply_status::RESULT_TOO_LARGE, DataPath::Copied, 0, &[]);
            return self.answer(port, message, reply, None).map(|_| None);
        }
        let result_len = result.len() as u32;
        let inline_room = self.process.small_max() as usize;
        let result_path = if result.len() + 10 <= inline_room {
            DataPath::Copied
        } else if section.is_some_and(|_| result.len() as u64 <= self.reply_section_size) {
            DataPath::Section
        } else {
            DataPath::Direct
        };
        match result_path {
            DataPath::Copied => {
                self.answer(port, message, encode_reply(reply_status::OK, DataPath::Copied, result_len, result), None)?;
            }
            DataPath::Section => {
                let Some(section) = section else { return Err(RpcError::Malformed) };
                // A kept view: the client's next call releases it, and no
                // next request can come before that call.
                let mut copy = |view: &mut [u8]| view.copy_from_slice(result);
                let view = self.process.stage_in_kept_view_with(port, section, result.len(), &mut copy)?;
                self.answer(
                    port,
                    message,
                    encode_reply(reply_status::OK, DataPath::Section, result_len, &[]),
                    Some(view),
                )?;
            }
            DataPath::Direct => {
                let written = if header.result_index == NO_INDEX {
                    Err(AlpcError::Status(NtStatus::STATUS_BUFFER_TOO_SMALL))
                } else {
                    self.process.nt_write_request_data(port, message, u32::from(header.result_index), result)
                };
                let reply = match written {
                    Ok(_) => encode_reply(reply_status::OK, DataPath::Direct, result_len, &[]),
                    Err(AlpcError::Status(_)) => encode_reply(reply_status::RESULT_TOO_LARGE, DataPath::Copied, 0, &[]),
                    Err(e) => return Err(e.into()),
                };
                self.answer(port, message, reply, None)?;
            }
        }
        Ok(Some(result_path))
    }

    /// An LPC callback: while serving `message`, ask its waiting client a
    /// question of our own and check the answer.
    fn call_back(&mut self, port: u32, message: &ReceivedMessage) -> Result<(), RpcError> {
        let question = format!("callback for request {}", message.header.message_id).into_bytes();
        let sent = SendMessage { data: question.clone(), ..SendMessage::default() };
        match self.process.send_callback(port, message, sent, Some(Duration::from_secs(5))) {
            Ok(answer) if answer.data == callback_answer(&question) => self.callbacks_ok += 1,
            // A wrong answer, or a client that vanished: counted, not fatal.
            Ok(_) | Err(AlpcError::Status(_)) => self.callbacks_bad += 1,
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    fn read_direct(
        &mut self,
        port: u32,
        message: &ReceivedMessage,
        header: &RequestHeader,
    ) -> Result<(ArgsAt, usize), RpcError> {
        let entry = message.data_info.get(usize::from(header.args_index)).ok_or(RpcError::Malformed)?;
        let len = header.args_len as usize;
        if len > MAX_RPC_PAYLOAD || len as u64 > entry.size {
            return Err(RpcError::Malformed);
        }
        let index = u32::from(header.args_index);
        // One read, straight into the direct window the kernel process maps
        // too; without one (larger than the kernel allows), into a buffer
        // reused from call to call, through the kernel's bounce buffer.
        if self.process.ensure_direct_window(len).is_ok() {
            let n = self.process.nt_read_request_data_into_window(port, message, index, len)?;
            return Ok((ArgsAt::Window, usize::try_from(n).map_err(|_| RpcError::Malformed)?));
        }
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        self.process.nt_read_request_data(port, message, index, &mut self.scratch[..len])?;
        Ok((ArgsAt::Scratch, len))
    }

    fn answer(
        &mut self,
        port: u32,
        request: &ReceivedMessage,
        data: Vec<u8>,
        view: Option<super::types::ViewAttribute>,
    ) -> Result<Served, RpcError> {
        if self.reply_with_next_receive {
            let reply = SendMessage { data, view, message_id: request.header.message_id, ..SendMessage::default() };
            self.deferred = Some((port, reply));
            return Ok(Served::Other);
        }
        match self.process.reply(port, request, SendMessage { data, view, ..SendMessage::default() }) {
            Ok(()) => Ok(Served::Other),
            // The client vanished or gave up: nothing to answer, and a view
            // staged for it goes back to the section.
            Err(AlpcError::Status(_)) => {
                if let Some(view) = view {
                    let _ = self.process.nt_alpc_delete_section_view(port, &view);
                }
                Ok(Served::Other)
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for RpcServer {
    /// A reply still deferred goes out: its client waits for it.
    fn drop(&mut self) {
        if let Some((port, reply)) = self.deferred.take() {
            let flags = msg_flags::ALPC_MSGFLG_REPLY_MESSAGE;
            let _ = self.process.nt_alpc_send_wait_receive_port(port, flags, Some(reply), false, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_reject_garbage() {
        let header = RequestHeader {
            procedure: "Echo".into(),
            args_len: 5,
            args_path: DataPath::Copied,
            args_index: NO_INDEX,
            max_result: 100,
            result_index: NO_INDEX,
        };
        let bytes = header.encode(b"hello");
        let (decoded, inline) = RequestHeader::decode(&bytes).unwrap();
        assert_eq!((decoded.procedure.as_str(), decoded.args_len, inline), ("Echo", 5, &b"hello"[..]));
        for cut in 0..bytes.len() - 5 {
            assert!(RequestHeader::decode(&bytes[..cut]).is_none());
        }
        let reply = encode_reply(reply_status::OK, DataPath::Section, 4096, &[]);
        assert_eq!(decode_reply(&reply), Some((reply_status::OK, DataPath::Section, 4096, &[][..])));
        assert_eq!(decode_reply(b"RPR1\x00\x09\x00\x00\x00\x00"), None);
    }
}
