//! Wire format between a process and the emulated NT kernel.
//!
//! Every packet is one `SOCK_SEQPACKET` record, compact little-endian binary
//! written by hand. Requests come from untrusted processes, so decoding
//! checks every length against the bytes actually present *and* against a
//! fixed maximum before it allocates anything: arbitrary bytes give an
//! error, never a panic and never an allocation larger than the packet.
//!
//! Request packet:  `"AL" ver:u8 opcode:u8 call_id:u32 body…`
//! Response packet: `"al" ver:u8 body_tag:u8 call_id:u32 status:u32 body… grants…`
//! Section file descriptors travel as `SCM_RIGHTS` next to a response, in the
//! order of its `sections` list.

use super::types::{ClientId, NtStatus, PortDataEntry, PortMessageHeader, ViewAttribute};
use serde::{Deserialize, Serialize};
use thiserror::Error;

const REQUEST_MAGIC: [u8; 2] = *b"AL";
const RESPONSE_MAGIC: [u8; 2] = *b"al";
pub const PROTOCOL_VERSION: u8 = 1;

/// Longest object name, in bytes (`\RPC Control\…` names are ≤ 250 chars).
pub const MAX_NAME_LEN: usize = 512;
/// Longest process name given in `Hello`.
pub const MAX_PROCESS_NAME_LEN: usize = 64;
/// Largest inline payload a packet may carry: ALPC's 16-bit `TotalLength`.
pub const MAX_INLINE_DATA: usize = 0xFFFF;
/// Most connection data accepted on the wire; the kernel then clamps it to
/// the port's `MaxConnectionInfoLength` silently, as NT does.
pub const MAX_CONNECTION_DATA_WIRE: usize = 4096;
/// Most `PORT_DATA_ENTRY` records one message may declare.
pub const MAX_DATA_ENTRIES: usize = 16;
/// Most section grants in one response (a channel has at most two sections).
pub const MAX_SECTION_GRANTS: usize = 4;
/// Largest introspection JSON a client accepts.
pub const MAX_STATE_JSON: usize = 8 << 20;
/// Largest request packet; anything longer is refused before decoding.
pub const MAX_REQUEST_PACKET: usize = MAX_INLINE_DATA + MAX_CONNECTION_DATA_WIRE + 1024;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtoError {
    #[error("packet truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("bad magic or version")]
    BadHeader,
    #[error("unknown opcode or tag {0}")]
    UnknownTag(u8),
    #[error("{what} is {len} long, limit {max}")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    #[error("packet longer than {0} bytes")]
    PacketTooLong(usize),
}

/// `ALPC_PORT_ATTRIBUTES`, the subset the emulation honours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAttributes {
    /// `ALPC_PORFLG_*`; recorded and shown, not interpreted.
    pub flags: u32,
    /// Largest inline payload; 0 = the kernel's `small_max`.
    pub max_message_length: u32,
    /// Pool quota in bytes for messages queued on the port; 0 = the
    /// kernel's `alpc.max_pool_usage`.
    pub max_pool_usage: u64,
}

/// The message a caller hands to `NtAlpcSendWaitReceivePort`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendMessage {
    /// `LPC_NEW_MESSAGE` (0) lets the kernel choose request / datagram /
    /// reply from the flags; `LPC_REQUEST` quoting a served request's
    /// `MessageId` is a callback (LPC nested request).
    pub msg_type: u16,
    /// For replies and callbacks: the message being answered.
    pub message_id: u32,
    /// For a reply to a callback: the callback being answered.
    pub callback_id: u32,
    /// Path 1: bytes copied through the kernel.
    pub data: Vec<u8>,
    /// Path 2: a view the sender filled in its section.
    pub view: Option<ViewAttribute>,
    /// Path 3: regions of the sender's address space the receiver may read
    /// or write directly while serving this request (`PORT_DATA_INFORMATION`).
    pub data_info: Vec<PortDataEntry>,
}

/// A call from a process to the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Registers the calling thread (the connection is one NT thread).
    Hello {
        tid: u32,
        name: String,
    },
    NtAlpcCreatePort {
        name: String,
        attributes: PortAttributes,
    },
    NtAlpcConnectPort {
        name: String,
        attributes: PortAttributes,
        /// Non-zero: the client will send large messages, so the kernel
        /// creates a section of this size for the client→server direction.
        client_section_size: u64,
        connection_data: Vec<u8>,
        timeout_ms: Option<u32>,
    },
    NtAlpcAcceptConnectPort {
        connection_port: u32,
        /// `MessageId` of the `LPC_CONNECTION_REQUEST` being answered.
        message_id: u32,
        accept: bool,
        /// Returned with every message from this client; 0 = use the server
        /// communication port's handle value, as LPC does for a NULL context.
        port_context: u64,
        /// Non-zero: the server expects large replies and gets a section of
        /// this size for the server→client direction.
        server_section_size: u64,
        connection_data: Vec<u8>,
    },
    NtAlpcSendWaitReceivePort {
        port: u32,
        flags: u32,
        send: Option<SendMessage>,
        receive: bool,
        timeout_ms: Option<u32>,
    },
    NtAlpcCreatePortSection {
        port: u32,
        size: u64,
    },
    /// `size` > 0 allocates a message view of that many bytes in the section;
    /// `mapping_base` ≠ 0 reports where the caller mapped the section;
    /// `flags` are the view's `ALPC_VIEWFLG_*`.
    NtAlpcCreateSectionView {
        port: u32,
        section: u32,
        size: u64,
        mapping_base: u64,
        flags: u32,
    },
    NtAlpcDeleteSectionView {
        port: u32,
        section: u32,
        offset: u64,
    },
    NtReadRequestData {
        port: u32,
        message_id: u32,
        index: u32,
        buffer: u64,
        length: u64,
    },
    NtWriteRequestData {
        port: u32,
        message_id: u32,
        index: u32,
        buffer: u64,
        length: u64,
    },
    NtAlpcDisconnectPort {
        port: u32,
        flags: u32,
    },
    NtClose {
        handle: u32,
    },
    /// Not an NT call: the process tells the kernel it ran
    /// `prctl(PR_SET_PTRACER, kernel_pid)`, granting direct access.
    GrantDirectAccess {
        granted: bool,
    },
    /// Not an NT call: an observer asks for the whole state as JSON.
    QueryState,
    /// Not an NT call: the process asks for a direct window of `size` bytes
    /// (a memfd the kernel maps too, so `NtReadRequestData` into it is one
    /// copy, where any other buffer takes two through the kernel's own);
    /// `size` 0 with `mapping_base` ≠ 0 says where the process mapped it.
    MapDirectWindow {
        size: u64,
        mapping_base: u64,
    },
}

impl Request {
    /// The NT name of the call, for logs.
    pub fn nt_name(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "Hello",
            Request::NtAlpcCreatePort { .. } => "NtAlpcCreatePort",
            Request::NtAlpcConnectPort { .. } => "NtAlpcConnectPort",
            Request::NtAlpcAcceptConnectPort { .. } => "NtAlpcAcceptConnectPort",
            Request::NtAlpcSendWaitReceivePort { .. } => "NtAlpcSendWaitReceivePort",
            Request::NtAlpcCreatePortSection { .. } => "NtAlpcCreatePortSection",
            Request::NtAlpcCreateSectionView { .. } => "NtAlpcCreateSectionView",
            Request::NtAlpcDeleteSectionView { .. } => "NtAlpcDeleteSectionView",
            Request::NtReadRequestData { .. } => "NtReadRequestData",
            Request::NtWriteRequestData { .. } => "NtWriteRequestData",
            Request::NtAlpcDisconnectPort { .. } => "NtAlpcDisconnectPort",
            Request::NtClose { .. } => "NtClose",
            Request::GrantDirectAccess { .. } => "GrantDirectAccess",
            Request::QueryState => "QueryState",
            Request::MapDirectWindow { .. } => "MapDirectWindow",
        }
    }
}

/// A message as delivered to a receiver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    pub header: PortMessageHeader,
    /// `ALPC_CONTEXT_ATTR.PortContext` of the channel it came through.
    pub port_context: u64,
    pub data: Vec<u8>,
    /// The view, with the section handle translated into the receiver's table.
    pub view: Option<ViewAttribute>,
    pub data_info: Vec<PortDataEntry>,
}

/// A section handle granted in a response; its memfd follows as SCM_RIGHTS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionGrant {
    pub handle: u32,
    pub size: u64,
    /// The receiving process writes messages into this section (its own
    /// direction); otherwise it only reads the peer's messages from it.
    pub writer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    None,
    Hello {
        kernel_pid: u32,
        small_max: u32,
    },
    Handle {
        handle: u32,
    },
    Connected {
        port: u32,
        max_message_length: u32,
        connection_data: Vec<u8>,
    },
    Section {
        section: u32,
        size: u64,
    },
    View {
        section: u32,
        offset: u64,
        size: u64,
    },
    Message(ReceivedMessage),
    Transferred {
        bytes: u64,
    },
    State(String),
    /// A direct window of `size` bytes; its memfd follows as SCM_RIGHTS.
    Window {
        size: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Echo of the request's `call_id`.
    pub call_id: u32,
    pub status: NtStatus,
    pub body: ResponseBody,
    /// Section handles whose memfds ride along with this response.
    pub sections: Vec<SectionGrant>,
}

impl Response {
    pub fn status(call_id: u32, status: NtStatus) -> Self {
        Response { call_id, status, body: ResponseBody::None, sections: Vec::new() }
    }
}

// ---------------------------------------------------------------- writer

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// Length-prefixed bytes. Callers keep lengths within the decoder's
    /// limits; an over-long field would be rejected by the peer, not here.
    fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            Some(x) => {
                self.u8(1);
                self.u32(x);
            }
            None => self.u8(0),
        }
    }
    fn attributes(&mut self, a: &PortAttributes) {
        self.u32(a.flags);
        self.u32(a.max_message_length);
        self.u64(a.max_pool_usage);
    }
    fn view(&mut self, v: &Option<ViewAttribute>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u32(v.section_handle);
                self.u64(v.offset);
                self.u64(v.size);
            }
            None => self.u8(0),
        }
    }
    fn data_info(&mut self, entries: &[PortDataEntry]) {
        self.u8(u8::try_from(entries.len()).unwrap_or(u8::MAX));
        for e in entries {
            self.u64(e.base);
            self.u64(e.size);
        }
    }
    fn header(&mut self, h: &PortMessageHeader) {
        self.u16(h.data_length);
        self.u16(h.total_length);
        self.u16(h.msg_type);
        self.u16(h.data_info_offset);
        self.u32(h.client_id.unique_process);
        self.u32(h.client_id.unique_thread);
        self.u32(h.message_id);
        self.u32(h.callback_id);
    }
}

// ---------------------------------------------------------------- reader

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < n {
            return Err(ProtoError::Truncated { offset: self.pos, needed: n - rest.len() });
        }
        self.pos += n;
        Ok(&rest[..n])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bool(&mut self) -> Result<bool, ProtoError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(ProtoError::UnknownTag(other)),
        }
    }
    /// Length-prefixed bytes: the limit is checked before `take`, and `take`
    /// checks the bytes exist, so the allocation never exceeds the packet.
    fn bytes(&mut self, what: &'static str, max: usize) -> Result<Vec<u8>, ProtoError> {
        let len = usize::try_from(self.u32()?).unwrap_or(usize::MAX);
        if len > max {
            return Err(ProtoError::TooLong { what, len, max });
        }
        Ok(self.take(len)?.to_vec())
    }
    fn str(&mut self, what: &'static str, max: usize) -> Result<String, ProtoError> {
        String::from_utf8(self.bytes(what, max)?).map_err(|_| ProtoError::BadUtf8(what))
    }
    fn opt_u32(&mut self) -> Result<Option<u32>, ProtoError> {
        Ok(if self.bool()? { Some(self.u32()?) } else { None })
    }
    fn attributes(&mut self) -> Result<PortAttributes, ProtoError> {
        Ok(PortAttributes { flags: self.u32()?, max_message_length: self.u32()?, max_pool_usage: self.u64()? })
    }
    fn view(&mut self) -> Result<Option<ViewAttribute>, ProtoError> {
        Ok(if self.bool()? {
            Some(ViewAttribute { section_handle: self.u32()?, offset: self.u64()?, size: self.u64()? })
        } else {
            None
        })
    }
    fn data_info(&mut self) -> Result<Vec<PortDataEntry>, ProtoError> {
        let count = usize::from(self.u8()?);
        if count > MAX_DATA_ENTRIES {
            return Err(ProtoError::TooLong { what: "PORT_DATA_INFORMATION", len: count, max: MAX_DATA_ENTRIES });
        }
        (0..count).map(|_| Ok(PortDataEntry { base: self.u64()?, size: self.u64()? })).collect()
    }
    fn header(&mut self) -> Result<PortMessageHeader, ProtoError> {
        Ok(PortMessageHeader {
            data_length: self.u16()?,
            total_length: self.u16()?,
            msg_type: self.u16()?,
            data_info_offset: self.u16()?,
            client_id: ClientId { unique_process: self.u32()?, unique_thread: self.u32()? },
            message_id: self.u32()?,
            callback_id: self.u32()?,
        })
    }
    fn finish(&self) -> Result<(), ProtoError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(ProtoError::TrailingBytes(n)),
        }
    }
}

// ---------------------------------------------------------------- requests

mod opcode {
    pub const HELLO: u8 = 1;
    pub const CREATE_PORT: u8 = 2;
    pub const CONNECT_PORT: u8 = 3;
    pub const ACCEPT_CONNECT_PORT: u8 = 4;
    pub const SEND_WAIT_RECEIVE: u8 = 5;
    pub const CREATE_PORT_SECTION: u8 = 6;
    pub const CREATE_SECTION_VIEW: u8 = 7;
    pub const DELETE_SECTION_VIEW: u8 = 8;
    pub const READ_REQUEST_DATA: u8 = 9;
    pub const WRITE_REQUEST_DATA: u8 = 10;
    pub const DISCONNECT_PORT: u8 = 11;
    pub const CLOSE: u8 = 12;
    pub const GRANT_DIRECT_ACCESS: u8 = 13;
    pub const QUERY_STATE: u8 = 14;
    pub const MAP_DIRECT_WINDOW: u8 = 15;
}

pub fn encode_request(call_id: u32, request: &Request) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    w.0.extend_from_slice(&REQUEST_MAGIC);
    w.u8(PROTOCOL_VERSION);
    let op_at = w.0.len();
    w.u8(0);
    w.u32(call_id);
    let op = match request {
        Request::Hello { tid, name } => {
            w.u32(*tid);
            w.str(name);
            opcode::HELLO
        }
        Request::NtAlpcCreatePort { name, attributes } => {
            w.str(name);
            w.attributes(attributes);
            opcode::CREATE_PORT
        }
        Request::NtAlpcConnectPort { name, attributes, client_section_size, connection_data, timeout_ms } => {
            w.str(name);
            w.attributes(attributes);
            w.u64(*client_section_size);
            w.bytes(connection_data);
            w.opt_u32(*timeout_ms);
            opcode::CONNECT_PORT
        }
        Request::NtAlpcAcceptConnectPort {
            connection_port,
            message_id,
            accept,
            port_context,
            server_section_size,
            connection_data,
        } => {
            w.u32(*connection_port);
            w.u32(*message_id);
            w.bool(*accept);
            w.u64(*port_context);
            w.u64(*server_section_size);
            w.bytes(connection_data);
            opcode::ACCEPT_CONNECT_PORT
        }
        Request::NtAlpcSendWaitReceivePort { port, flags, send, receive, timeout_ms } => {
            w.u32(*port);
            w.u32(*flags);
            match send {
                Some(m) => {
                    w.u8(1);
                    w.u16(m.msg_type);
                    w.u32(m.message_id);
                    w.u32(m.callback_id);
                    w.bytes(&m.data);
                    w.view(&m.view);
                    w.data_info(&m.data_info);
                }
                None => w.u8(0),
            }
            w.bool(*receive);
            w.opt_u32(*timeout_ms);
            opcode::SEND_WAIT_RECEIVE
        }
        Request::NtAlpcCreatePortSection { port, size } => {
            w.u32(*port);
            w.u64(*size);
            opcode::CREATE_PORT_SECTION
        }
        Request::NtAlpcCreateSectionView { port, section, size, mapping_base, flags } => {
            w.u32(*port);
            w.u32(*section);
            w.u64(*size);
            w.u64(*mapping_base);
            w.u32(*flags);
            opcode::CREATE_SECTION_VIEW
        }
        Request::NtAlpcDeleteSectionView { port, section, offset } => {
            w.u32(*port);
            w.u32(*section);
            w.u64(*offset);
            opcode::DELETE_SECTION_VIEW
        }
        Request::NtReadRequestData { port, message_id, index, buffer, length }
        | Request::NtWriteRequestData { port, message_id, index, buffer, length } => {
            w.u32(*port);
            w.u32(*message_id);
            w.u32(*index);
            w.u64(*buffer);
            w.u64(*length);
            if matches!(request, Request::NtReadRequestData { .. }) {
                opcode::READ_REQUEST_DATA
            } else {
                opcode::WRITE_REQUEST_DATA
            }
        }
        Request::NtAlpcDisconnectPort { port, flags } => {
            w.u32(*port);
            w.u32(*flags);
            opcode::DISCONNECT_PORT
        }
        Request::NtClose { handle } => {
            w.u32(*handle);
            opcode::CLOSE
        }
        Request::GrantDirectAccess { granted } => {
            w.bool(*granted);
            opcode::GRANT_DIRECT_ACCESS
        }
        Request::QueryState => opcode::QUERY_STATE,
        Request::MapDirectWindow { size, mapping_base } => {
            w.u64(*size);
            w.u64(*mapping_base);
            opcode::MAP_DIRECT_WINDOW
        }
    };
    w.0[op_at] = op;
    w.0
}

/// Decodes a request packet from an untrusted process: `(call_id, request)`.
pub fn decode_request(packet: &[u8]) -> Result<(u32, Request), ProtoError> {
    if packet.len() > MAX_REQUEST_PACKET {
        return Err(ProtoError::PacketTooLong(MAX_REQUEST_PACKET));
    }
    let mut r = Reader { buf: packet, pos: 0 };
    if r.array::<2>()? != REQUEST_MAGIC || r.u8()? != PROTOCOL_VERSION {
        return Err(ProtoError::BadHeader);
    }
    let op = r.u8()?;
    let call_id = r.u32()?;
    let request = match op {
        opcode::HELLO => Request::Hello { tid: r.u32()?, name: r.str("process name", MAX_PROCESS_NAME_LEN)? },
        opcode::CREATE_PORT => {
            Request::NtAlpcCreatePort { name: r.str("port name", MAX_NAME_LEN)?, attributes: r.attributes()? }
        }
        opcode::CONNECT_PORT => Request::NtAlpcConnectPort {
            name: r.str("port name", MAX_NAME_LEN)?,
            attributes: r.attributes()?,
            client_section_size: r.u64()?,
            connection_data: r.bytes("connection data", MAX_CONNECTION_DATA_WIRE)?,
            timeout_ms: r.opt_u32()?,
        },
        opcode::ACCEPT_CONNECT_PORT => Request::NtAlpcAcceptConnectPort {
            connection_port: r.u32()?,
            message_id: r.u32()?,
            accept: r.bool()?,
            port_context: r.u64()?,
            server_section_size: r.u64()?,
            connection_data: r.bytes("connection data", MAX_CONNECTION_DATA_WIRE)?,
        },
        opcode::SEND_WAIT_RECEIVE => {
            let port = r.u32()?;
            let flags = r.u32()?;
            let send = if r.bool()? {
                Some(SendMessage {
                    msg_type: r.u16()?,
                    message_id: r.u32()?,
                    callback_id: r.u32()?,
                    data: r.bytes("message data", MAX_INLINE_DATA)?,
                    view: r.view()?,
                    data_info: r.data_info()?,
                })
            } else {
                None
            };
            Request::NtAlpcSendWaitReceivePort { port, flags, send, receive: r.bool()?, timeout_ms: r.opt_u32()? }
        }
        opcode::CREATE_PORT_SECTION => Request::NtAlpcCreatePortSection { port: r.u32()?, size: r.u64()? },
        opcode::CREATE_SECTION_VIEW => Request::NtAlpcCreateSectionView {
            port: r.u32()?,
            section: r.u32()?,
            size: r.u64()?,
            mapping_base: r.u64()?,
            flags: r.u32()?,
        },
        opcode::DELETE_SECTION_VIEW => {
            Request::NtAlpcDeleteSectionView { port: r.u32()?, section: r.u32()?, offset: r.u64()? }
        }
        opcode::READ_REQUEST_DATA => Request::NtReadRequestData {
            port: r.u32()?,
            message_id: r.u32()?,
            index: r.u32()?,
            buffer: r.u64()?,
            length: r.u64()?,
        },
        opcode::WRITE_REQUEST_DATA => Request::NtWriteRequestData {
            port: r.u32()?,
            message_id: r.u32()?,
            index: r.u32()?,
            buffer: r.u64()?,
            length: r.u64()?,
        },
        opcode::DISCONNECT_PORT => Request::NtAlpcDisconnectPort { port: r.u32()?, flags: r.u32()? },
        opcode::CLOSE => Request::NtClose { handle: r.u32()? },
        opcode::GRANT_DIRECT_ACCESS => Request::GrantDirectAccess { granted: r.bool()? },
        opcode::QUERY_STATE => Request::QueryState,
        opcode::MAP_DIRECT_WINDOW => Request::MapDirectWindow { size: r.u64()?, mapping_base: r.u64()? },
        other => return Err(ProtoError::UnknownTag(other)),
    };
    r.finish()?;
    Ok((call_id, request))
}

/// Best effort: the `call_id` of a packet that failed to decode, so the
/// error response can still be matched to the call.
pub fn peek_call_id(packet: &[u8]) -> u32 {
    packet.get(4..8).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).unwrap_or(0)
}

// ---------------------------------------------------------------- responses

mod body_tag {
    pub const NONE: u8 = 0;
    pub const HELLO: u8 = 1;
    pub const HANDLE: u8 = 2;
    pub const CONNECTED: u8 = 3;
    pub const SECTION: u8 = 4;
    pub const VIEW: u8 = 5;
    pub const MESSAGE: u8 = 6;
    pub const TRANSFERRED: u8 = 7;
    pub const STATE: u8 = 8;
    pub const WINDOW: u8 = 9;
}

pub fn encode_response(response: &Response) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    w.0.extend_from_slice(&RESPONSE_MAGIC);
    w.u8(PROTOCOL_VERSION);
    let tag_at = w.0.len();
    w.u8(0);
    w.u32(response.call_id);
    w.u32(response.status.0);
    let tag = match &response.body {
        ResponseBody::None => body_tag::NONE,
        ResponseBody::Hello { kernel_pid, small_max } => {
            w.u32(*kernel_pid);
            w.u32(*small_max);
            body_tag::HELLO
        }
        ResponseBody::Handle { handle } => {
            w.u32(*handle);
            body_tag::HANDLE
        }
        ResponseBody::Connected { port, max_message_length, connection_data } => {
            w.u32(*port);
            w.u32(*max_message_length);
            w.bytes(connection_data);
            body_tag::CONNECTED
        }
        ResponseBody::Section { section, size } => {
            w.u32(*section);
            w.u64(*size);
            body_tag::SECTION
        }
        ResponseBody::View { section, offset, size } => {
            w.u32(*section);
            w.u64(*offset);
            w.u64(*size);
            body_tag::VIEW
        }
        ResponseBody::Message(m) => {
            w.header(&m.header);
            w.u64(m.port_context);
            w.bytes(&m.data);
            w.view(&m.view);
            w.data_info(&m.data_info);
            body_tag::MESSAGE
        }
        ResponseBody::Transferred { bytes } => {
            w.u64(*bytes);
            body_tag::TRANSFERRED
        }
        ResponseBody::State(json) => {
            w.str(json);
            body_tag::STATE
        }
        ResponseBody::Window { size } => {
            w.u64(*size);
            body_tag::WINDOW
        }
    };
    w.0[tag_at] = tag;
    w.u8(u8::try_from(response.sections.len()).unwrap_or(u8::MAX));
    for g in &response.sections {
        w.u32(g.handle);
        w.u64(g.size);
        w.bool(g.writer);
    }
    w.0
}

/// Decodes a response. The kernel is trusted more than a task, but the
/// decoder is just as strict: a confused kernel must not crash its clients.
pub fn decode_response(packet: &[u8]) -> Result<Response, ProtoError> {
    let mut r = Reader { buf: packet, pos: 0 };
    if r.array::<2>()? != RESPONSE_MAGIC || r.u8()? != PROTOCOL_VERSION {
        return Err(ProtoError::BadHeader);
    }
    let tag = r.u8()?;
    let call_id = r.u32()?;
    let status = NtStatus(r.u32()?);
    let body = match tag {
        body_tag::NONE => ResponseBody::None,
        body_tag::HELLO => ResponseBody::Hello { kernel_pid: r.u32()?, small_max: r.u32()? },
        body_tag::HANDLE => ResponseBody::Handle { handle: r.u32()? },
        body_tag::CONNECTED => ResponseBody::Connected {
            port: r.u32()?,
            max_message_length: r.u32()?,
            connection_data: r.bytes("connection data", MAX_CONNECTION_DATA_WIRE)?,
        },
        body_tag::SECTION => ResponseBody::Section { section: r.u32()?, size: r.u64()? },
        body_tag::VIEW => ResponseBody::View { section: r.u32()?, offset: r.u64()?, size: r.u64()? },
        body_tag::MESSAGE => ResponseBody::Message(ReceivedMessage {
            header: r.header()?,
            port_context: r.u64()?,
            data: r.bytes("message data", MAX_INLINE_DATA)?,
            view: r.view()?,
            data_info: r.data_info()?,
        }),
        body_tag::TRANSFERRED => ResponseBody::Transferred { bytes: r.u64()? },
        body_tag::STATE => ResponseBody::State(r.str("state", MAX_STATE_JSON)?),
        body_tag::WINDOW => ResponseBody::Window { size: r.u64()? },
        other => return Err(ProtoError::UnknownTag(other)),
    };
    let count = usize::from(r.u8()?);
    if count > MAX_SECTION_GRANTS {
        return Err(ProtoError::TooLong { what: "section grants", len: count, max: MAX_SECTION_GRANTS });
    }
    let sections = (0..count)
        .map(|_| Ok(SectionGrant { handle: r.u32()?, size: r.u64()?, writer: r.bool()? }))
        .collect::<Result<Vec<_>, ProtoError>>()?;
    r.finish()?;
    Ok(Response { call_id, status, body, sections })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_requests() -> Vec<Request> {
        vec![
            Request::Hello { tid: 7, name: "client".into() },
            Request::NtAlpcCreatePort {
                name: r"\RPC Control\ipcscope-echo".into(),
                attributes: PortAttributes { flags: 0x10000, max_message_length: 256, max_pool_usage: 4096 },
            },
            Request::NtAlpcConnectPort {
                name: r"\RPC Control\ipcscope-echo".into(),
                attributes: PortAttributes::default(),
                client_section_size: 65536,
                connection_data: b"hi".to_vec(),
                timeout_ms: Some(5),
            },
            Request::NtAlpcAcceptConnectPort {
                connection_port: 4,
                message_id: 9,
                accept: true,
                port_context: 0x1234,
                server_section_size: 0,
                connection_data: vec![],
            },
            Request::NtAlpcSendWaitReceivePort {
                port: 8,
                flags: 0x20000,
                send: Some(SendMessage {
                    msg_type: 0,
                    message_id: 0,
                    callback_id: 0,
                    data: vec![1, 2, 3],
                    view: Some(ViewAttribute { section_handle: 12, offset: 0x1000, size: 4096 }),
                    data_info: vec![PortDataEntry { base: 0x7fff_0000, size: 1 << 20 }],
                }),
                receive: true,
                timeout_ms: None,
            },
            Request::NtAlpcCreatePortSection { port: 8, size: 1 << 16 },
            Request::NtAlpcCreateSectionView {
                port: 8,
                section: 12,
                size: 4096,
                mapping_base: 0x7000_0000,
                flags: 0x2_0000,
            },
            Request::NtAlpcDeleteSectionView { port: 8, section: 12, offset: 0 },
            Request::NtReadRequestData { port: 4, message_id: 3, index: 0, buffer: 0x1000, length: 10 },
            Request::NtWriteRequestData { port: 4, message_id: 3, index: 1, buffer: 0x1000, length: 10 },
            Request::NtAlpcDisconnectPort { port: 8, flags: 0 },
            Request::NtClose { handle: 8 },
            Request::GrantDirectAccess { granted: true },
            Request::MapDirectWindow { size: 1 << 20, mapping_base: 0 },
            Request::MapDirectWindow { size: 0, mapping_base: 0x7f00_0000_0000 },
            Request::QueryState,
        ]
    }

    #[test]
    fn requests_round_trip() {
        for (i, request) in sample_requests().into_iter().enumerate() {
            let call_id = u32::try_from(i).unwrap() + 100;
            let packet = encode_request(call_id, &request);
            assert_eq!(decode_request(&packet), Ok((call_id, request)));
            assert_eq!(peek_call_id(&packet), call_id);
            // Every strict prefix is an error, never a panic.
            for cut in 0..packet.len() {
                assert!(decode_request(&packet[..cut]).is_err(), "prefix {cut} of request {i} decoded");
            }
        }
    }

    #[test]
    fn responses_round_trip() {
        let response = Response {
            call_id: 5,
            status: NtStatus::STATUS_SUCCESS,
            body: ResponseBody::Message(ReceivedMessage {
                header: PortMessageHeader { data_length: 3, total_length: 43, msg_type: 1, ..Default::default() },
                port_context: 9,
                data: vec![7, 8, 9],
                view: None,
                data_info: vec![],
            }),
            sections: vec![SectionGrant { handle: 0x10, size: 4096, writer: true }],
        };
        assert_eq!(decode_response(&encode_response(&response)), Ok(response));
        let window = Response {
            call_id: 6,
            status: NtStatus::STATUS_SUCCESS,
            body: ResponseBody::Window { size: 1 << 20 },
            sections: vec![],
        };
        assert_eq!(decode_response(&encode_response(&window)), Ok(window));
    }

    #[test]
    fn length_fields_are_checked_before_allocating() {
        // A connect request that claims 4 GiB of connection data.
        let mut packet = encode_request(
            1,
            &Request::NtAlpcConnectPort {
                name: "x".into(),
                attributes: PortAttributes::default(),
                client_section_size: 0,
                connection_data: vec![],
                timeout_ms: None,
            },
        );
        let len_at = packet.len() - 1 - 4; // before opt_u32(None) is the u32 length
        packet[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_request(&packet), Err(ProtoError::TooLong { .. })));
    }

    #[test]
    fn trailing_and_unknown_are_errors() {
        let mut packet = encode_request(1, &Request::QueryState);
        packet.push(0);
        assert_eq!(decode_request(&packet), Err(ProtoError::TrailingBytes(1)));
        let mut packet = encode_request(1, &Request::QueryState);
        packet[3] = 200;
        assert_eq!(decode_request(&packet), Err(ProtoError::UnknownTag(200)));
    }
}
