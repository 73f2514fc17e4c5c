//! The library a process uses to talk to the emulated NT kernel, with the
//! NT call names (`nt_alpc_connect_port`, `nt_alpc_send_wait_receive_port`, …).
//!
//! One [`AlpcProcess`] is one connection to the kernel, which the kernel
//! treats as one NT thread with its own handle table. Calls block the way
//! the NT calls block.
//!
//! Sections arrive as memfds next to a response; the library maps each one
//! at an address of this process's choosing and tells the kernel where, so
//! the observer can show that every process sees the same section at its
//! own base.

use super::proto::{
    decode_response, encode_request, PortAttributes, ProtoError, ReceivedMessage, Request, Response, ResponseBody,
    SendMessage,
};
use super::state::AlpcState;
use super::types::view_flags::ALPC_VIEWFLG_AUTO_RELEASE;
use super::types::{msg_flags, LpcMessageType, NtStatus, PortDataEntry, PortMessageHeader, ViewAttribute};
use crate::mechanisms::ekernel::transport::{Conn, TransportError};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AlpcError {
    /// The kernel answered with a status other than `STATUS_SUCCESS`.
    #[error("{0}")]
    Status(NtStatus),
    #[error("kernel connection: {0}")]
    Transport(#[from] TransportError),
    #[error("malformed response from the kernel: {0}")]
    Proto(#[from] ProtoError),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("the kernel answered with an unexpected response")]
    Unexpected,
    #[error("section handle 0x{0:x} is not mapped in this process")]
    NoSuchSection(u32),
}

impl AlpcError {
    /// The NT status, if the kernel gave one.
    pub fn status(&self) -> Option<NtStatus> {
        match self {
            AlpcError::Status(s) => Some(*s),
            _ => None,
        }
    }
}

pub type AlpcResult<T> = Result<T, AlpcError>;

/// Connection attributes of `NtAlpcConnectPort`.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// Largest inline payload wanted; 0 = whatever the port allows.
    pub max_message_length: u32,
    /// Non-zero: the client will send large messages; the kernel creates a
    /// section of this size for the client→server direction.
    pub client_section_size: u64,
    pub connection_data: Vec<u8>,
    pub timeout: Option<Duration>,
}

/// What `nt_alpc_connect_port` returns.
#[derive(Clone, Debug)]
pub struct ConnectedPort {
    /// The client communication port handle.
    pub port: u32,
    pub max_message_length: u32,
    /// The connection data as the server rewrote it.
    pub connection_data: Vec<u8>,
    /// The section this process writes large messages into, if any.
    pub own_section: Option<u32>,
    /// The section the server writes large replies into, if any.
    pub peer_section: Option<u32>,
}

/// What `nt_alpc_accept_connect_port` returns when it accepts.
#[derive(Clone, Debug)]
pub struct AcceptedPort {
    /// The server communication port handle.
    pub port: u32,
    pub own_section: Option<u32>,
    pub peer_section: Option<u32>,
}

/// A section mapped into this process. The peer writes it concurrently, so
/// it is a raw mapping: bytes go in and out by raw-pointer copies only.
struct MappedSection {
    map: memmap2::MmapRaw,
    writer: bool,
    /// A port through which the kernel lets us name this section.
    port: u32,
}

impl MappedSection {
    fn range(&self, view: &ViewAttribute) -> AlpcResult<std::ops::Range<usize>> {
        let start = usize::try_from(view.offset).map_err(|_| AlpcError::Status(NtStatus::STATUS_INVALID_PARAMETER))?;
        let len = usize::try_from(view.size).map_err(|_| AlpcError::Status(NtStatus::STATUS_INVALID_PARAMETER))?;
        let end = start.checked_add(len).filter(|&e| e <= self.map.len());
        end.map(|end| start..end).ok_or(AlpcError::Status(NtStatus::STATUS_INVALID_PARAMETER))
    }
}

/// One call this process made, as a worker's event log shows it
/// (`NtAlpcSendWaitReceivePort(port=0x2c, LPC_REQUEST, 4096 bytes via
/// section @0x1000) = STATUS_SUCCESS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallRecord {
    /// Which call: [`CallRecord::API_NAMES`] index.
    pub api: u8,
    /// The handle the call named (a port, or 0).
    pub handle: u32,
    /// The message type sent, or received when `received` is set.
    pub msg_type: u16,
    pub received: bool,
    /// 0: bytes inline (copied), 1: a section view, 2: regions for direct access.
    pub path: u8,
    pub bytes: u64,
    /// The view's offset in its section, or the `MessageId`.
    pub extra: u64,
    pub status: NtStatus,
    /// The `PORT_MESSAGE` header of the message received, if one was.
    pub header: Option<PortMessageHeader>,
}

impl CallRecord {
    pub const API_NAMES: [&'static str; 16] = [
        "?",
        "Hello",
        "NtAlpcCreatePort",
        "NtAlpcConnectPort",
        "NtAlpcAcceptConnectPort",
        "NtAlpcSendWaitReceivePort",
        "NtAlpcCreatePortSection",
        "NtAlpcCreateSectionView",
        "NtAlpcDeleteSectionView",
        "NtReadRequestData",
        "NtWriteRequestData",
        "NtAlpcDisconnectPort",
        "NtClose",
        "GrantDirectAccess",
        "QueryState",
        "MapDirectWindow",
    ];

    pub fn api_name(&self) -> &'static str {
        Self::API_NAMES.get(usize::from(self.api)).copied().unwrap_or("?")
    }

    fn of(request: &Request, response: &Response) -> CallRecord {
        let api = CallRecord::API_NAMES.iter().position(|n| *n == request.nt_name()).unwrap_or(0) as u8;
        let mut r = CallRecord { api, status: response.status, ..CallRecord::default() };
        match request {
            Request::NtAlpcSendWaitReceivePort { port, flags, send, .. } => {
                r.handle = *port;
                if let ResponseBody::Message(m) = &response.body {
                    if send.as_ref().is_none_or(|s| s.view.is_none() && s.data_info.is_empty()) {
                        r.received = true;
                        r.header = Some(m.header);
                        r.msg_type = m.header.msg_type;
                        r.extra = u64::from(m.header.message_id);
                        describe_payload(&mut r, &m.data, m.view.as_ref(), &m.data_info);
                        if send.is_none() {
                            return r;
                        }
                    }
                }
                if let Some(s) = send {
                    r.received = false;
                    if let ResponseBody::Message(m) = &response.body {
                        r.header = Some(m.header);
                    }
                    r.msg_type = match s.msg_type {
                        0 if msg_flags::is_reply(*flags) => LpcMessageType::LPC_REPLY,
                        0 if flags & msg_flags::ALPC_MSGFLG_SYNC_REQUEST != 0 => LpcMessageType::LPC_REQUEST,
                        0 => LpcMessageType::LPC_DATAGRAM,
                        t => t,
                    };
                    describe_payload(&mut r, &s.data, s.view.as_ref(), &s.data_info);
                }
            }
            Request::NtReadRequestData { port, length, message_id, .. }
            | Request::NtWriteRequestData { port, length, message_id, .. } => {
                r.handle = *port;
                r.path = 2;
                r.bytes = *length;
                r.extra = u64::from(*message_id);
            }
            Request::NtAlpcCreateSectionView { port, size, .. } => {
                r.handle = *port;
                r.bytes = *size;
                if let ResponseBody::View { offset, .. } = response.body {
                    r.extra = offset;
                }
            }
            Request::NtAlpcConnectPort { client_section_size, .. } => {
                r.bytes = *client_section_size;
                if let ResponseBody::Connected { port, .. } = response.body {
                    r.handle = port;
                }
            }
            Request::NtAlpcAcceptConnectPort { connection_port, message_id, accept, .. } => {
                r.handle = *connection_port;
                r.extra = u64::from(*message_id);
                r.path = u8::from(*accept);
            }
            Request::NtAlpcCreatePort { .. } => {
                if let ResponseBody::Handle { handle } = response.body {
                    r.handle = handle;
                }
            }
            Request::NtAlpcCreatePortSection { port, size } => {
                r.handle = *port;
                r.bytes = *size;
            }
            Request::NtAlpcDeleteSectionView { port, offset, .. } => {
                r.handle = *port;
                r.extra = *offset;
            }
            Request::NtAlpcDisconnectPort { port, .. } => r.handle = *port,
            Request::NtClose { handle } => r.handle = *handle,
            Request::MapDirectWindow { size, .. } => r.bytes = *size,
            Request::Hello { .. } | Request::GrantDirectAccess { .. } | Request::QueryState => {}
        }
        r
    }
}

fn describe_payload(r: &mut CallRecord, data: &[u8], view: Option<&ViewAttribute>, info: &[PortDataEntry]) {
    match (view, info.first()) {
        (Some(v), _) => {
            r.path = 1;
            r.bytes = v.size;
            r.extra = v.offset;
        }
        (None, Some(_)) => {
            r.path = 2;
            r.bytes = info.iter().map(|e| e.size).sum();
        }
        (None, None) => {
            r.path = 0;
            r.bytes = data.len() as u64;
        }
    }
}

/// Calls kept for [`AlpcProcess::take_calls`] before the oldest are dropped.
const CALL_LOG: usize = 64;

/// One process (one NT thread) talking to the emulated kernel.
pub struct AlpcProcess {
    conn: Conn,
    next_call: u32,
    kernel_pid: u32,
    small_max: u32,
    sections: BTreeMap<u32, MappedSection>,
    /// The view kept in each section by [`stage_in_kept_view_with`](Self::stage_in_kept_view_with).
    kept_views: BTreeMap<u32, ViewAttribute>,
    /// This process's direct window, if it asked for one
    /// ([`nt_read_request_data_into_window`](Self::nt_read_request_data_into_window)).
    window: Option<memmap2::MmapRaw>,
    /// The smallest window size the kernel refused (not asked again).
    window_refused: usize,
    /// Mappings whose base the kernel has not been told yet; reported at the
    /// start of the next call (reporting earlier would count as "done with
    /// the message just received" and release its view).
    unreported: Vec<u32>,
    packet: Vec<u8>,
    /// The calls made since the last [`take_calls`](Self::take_calls).
    calls: Vec<CallRecord>,
}

impl AlpcProcess {
    /// A process on `conn` that has not said `Hello` yet.
    fn unregistered(conn: Conn) -> AlpcProcess {
        AlpcProcess {
            conn,
            next_call: 1,
            kernel_pid: 0,
            small_max: 0,
            sections: BTreeMap::new(),
            kept_views: BTreeMap::new(),
            window: None,
            window_refused: usize::MAX,
            unreported: Vec::new(),
            packet: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// Connects to the kernel at `kernel_socket` and registers this thread.
    pub fn connect(kernel_socket: &Path) -> AlpcResult<Self> {
        let name = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
        Self::connect_named(kernel_socket, name.trim())
    }

    /// Like [`connect`](Self::connect), with the name the observer shows.
    pub fn connect_named(kernel_socket: &Path, name: &str) -> AlpcResult<Self> {
        let mut process = AlpcProcess::unregistered(Conn::connect(kernel_socket)?);
        let tid = u32::try_from(nix::unistd::gettid().as_raw()).unwrap_or(0);
        let name: String = name.chars().take(super::proto::MAX_PROCESS_NAME_LEN / 4).collect();
        let response = process.call(None, Request::Hello { tid, name })?;
        match response.body {
            ResponseBody::Hello { kernel_pid, small_max } => {
                process.kernel_pid = kernel_pid;
                process.small_max = small_max;
                Ok(process)
            }
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// The calls made since the last time this was asked, oldest first.
    pub fn take_calls(&mut self) -> Vec<CallRecord> {
        std::mem::take(&mut self.calls)
    }

    /// Bounds every later wait for the kernel's answer: a blocked call
    /// then fails with a transport error instead of waiting on (for an
    /// observer, which must never hang the monitor).
    pub fn set_io_timeout(&self, timeout: Duration) -> AlpcResult<()> {
        use nix::sys::socket::{setsockopt, sockopt};
        let tv = nix::sys::time::TimeVal::new(
            timeout.as_secs() as libc::time_t,
            timeout.subsec_micros() as libc::suseconds_t,
        );
        setsockopt(&self.conn, sockopt::ReceiveTimeout, &tv).map_err(|e| AlpcError::Io(e.into()))?;
        setsockopt(&self.conn, sockopt::SendTimeout, &tv).map_err(|e| AlpcError::Io(e.into()))?;
        Ok(())
    }

    /// The emulated kernel's pid (the target of `PR_SET_PTRACER`).
    pub fn kernel_pid(&self) -> u32 {
        self.kernel_pid
    }

    /// The kernel's `alpc.small_max`: the largest payload the queue path carries.
    pub fn small_max(&self) -> u32 {
        self.small_max
    }

    // ------------------------------------------------------------ plumbing

    fn exchange(&mut self, request: &Request) -> AlpcResult<(Response, Vec<OwnedFd>)> {
        let call_id = self.next_call;
        self.next_call = self.next_call.wrapping_add(1).max(1);
        self.conn.send(&encode_request(call_id, request), &[])?;
        loop {
            let fds = self.conn.recv(&mut self.packet)?;
            let response = decode_response(&self.packet)?;
            // A response to an earlier, abandoned call is skipped.
            if response.call_id == call_id {
                return Ok((response, fds));
            }
        }
    }

    /// Makes one call: reports pending mappings first, maps any sections
    /// that come back, and turns a failure status into an error.
    fn call(&mut self, port: Option<u32>, request: Request) -> AlpcResult<Response> {
        for section in std::mem::take(&mut self.unreported) {
            let Some(mapped) = self.sections.get(&section) else { continue };
            let report = Request::NtAlpcCreateSectionView {
                port: mapped.port,
                section,
                size: 0,
                mapping_base: mapped.map.as_ptr() as u64,
                flags: 0,
            };
            // Only for the observer's picture; a failure changes nothing.
            let _ = self.exchange(&report);
        }
        let (response, fds) = self.exchange(&request)?;
        self.record(&request, &response);
        for (grant, fd) in response.sections.iter().zip(fds) {
            let Some(port) = port else { continue };
            let file = File::from(fd);
            let len = usize::try_from(grant.size).map_err(|_| AlpcError::Unexpected)?;
            // The kernel created this memfd with exactly `len` bytes and
            // sealed it against shrinking, so the mapping can never refer
            // past the end of the file (no SIGBUS).
            let map = memmap2::MmapOptions::new().len(len).map_raw(&file)?;
            self.sections.insert(grant.handle, MappedSection { map, writer: grant.writer, port });
            self.unreported.push(grant.handle);
        }
        if response.status != NtStatus::STATUS_SUCCESS {
            return Err(AlpcError::Status(response.status));
        }
        Ok(response)
    }

    /// Keeps the call for [`take_calls`](Self::take_calls), dropping the oldest past [`CALL_LOG`].
    fn record(&mut self, request: &Request, response: &Response) {
        if self.calls.len() >= CALL_LOG {
            self.calls.remove(0);
        }
        self.calls.push(CallRecord::of(request, response));
    }

    fn split_sections(&self, response: &Response) -> (Option<u32>, Option<u32>) {
        let own = response.sections.iter().find(|g| g.writer).map(|g| g.handle);
        let peer = response.sections.iter().find(|g| !g.writer).map(|g| g.handle);
        (own, peer)
    }

    // ------------------------------------------------------------ NT calls

    /// `NtAlpcCreatePort`: a named connection port, e.g. `\RPC Control\x`.
    pub fn nt_alpc_create_port(&mut self, name: &str, attributes: PortAttributes) -> AlpcResult<u32> {
        match self.call(None, Request::NtAlpcCreatePort { name: name.into(), attributes })?.body {
            ResponseBody::Handle { handle } => Ok(handle),
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// `NtAlpcConnectPort`: blocks until the server accepts or refuses
    /// (`STATUS_PORT_CONNECTION_REFUSED`).
    pub fn nt_alpc_connect_port(&mut self, name: &str, options: &ConnectOptions) -> AlpcResult<ConnectedPort> {
        let request = Request::NtAlpcConnectPort {
            name: name.into(),
            attributes: PortAttributes { max_message_length: options.max_message_length, ..PortAttributes::default() },
            client_section_size: options.client_section_size,
            connection_data: options.connection_data.clone(),
            timeout_ms: options.timeout.map(millis),
        };
        // The port handle is only known from the response, so grants are
        // mapped under a placeholder port and fixed below.
        let response = self.call(Some(0), request)?;
        let (own_section, peer_section) = self.split_sections(&response);
        match response.body {
            ResponseBody::Connected { port, max_message_length, connection_data } => {
                self.bind_sections(port, [own_section, peer_section]);
                Ok(ConnectedPort { port, max_message_length, connection_data, own_section, peer_section })
            }
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// `NtAlpcAcceptConnectPort` for a received `LPC_CONNECTION_REQUEST`.
    /// Returns the server communication port if `accept`.
    pub fn nt_alpc_accept_connect_port(
        &mut self,
        connection_port: u32,
        request: &ReceivedMessage,
        accept: bool,
        port_context: u64,
        server_section_size: u64,
        connection_data: &[u8],
    ) -> AlpcResult<Option<AcceptedPort>> {
        let call = Request::NtAlpcAcceptConnectPort {
            connection_port,
            message_id: request.header.message_id,
            accept,
            port_context,
            server_section_size,
            connection_data: connection_data.to_vec(),
        };
        let response = self.call(Some(0), call)?;
        let (own_section, peer_section) = self.split_sections(&response);
        match response.body {
            ResponseBody::Handle { handle } => {
                self.bind_sections(handle, [own_section, peer_section]);
                Ok(Some(AcceptedPort { port: handle, own_section, peer_section }))
            }
            ResponseBody::None if !accept => Ok(None),
            _ => Err(AlpcError::Unexpected),
        }
    }

    fn bind_sections(&mut self, port: u32, sections: [Option<u32>; 2]) {
        for handle in sections.into_iter().flatten() {
            if let Some(s) = self.sections.get_mut(&handle) {
                s.port = port;
            }
        }
    }

    /// `NtAlpcSendWaitReceivePort`, as is: send and/or receive, blocking as
    /// the flags say. `Ok(None)` when nothing was received.
    pub fn nt_alpc_send_wait_receive_port(
        &mut self,
        port: u32,
        flags: u32,
        send: Option<SendMessage>,
        receive: bool,
        timeout: Option<Duration>,
    ) -> AlpcResult<Option<ReceivedMessage>> {
        let request =
            Request::NtAlpcSendWaitReceivePort { port, flags, send, receive, timeout_ms: timeout.map(millis) };
        match self.call(Some(port), request)?.body {
            ResponseBody::Message(m) => Ok(Some(m)),
            ResponseBody::None => Ok(None),
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// A synchronous request: blocks until its reply — or a callback
    /// (`LPC_REQUEST` with the same `MessageId`), which the caller serves and
    /// answers with [`nt_reply_wait_reply_port`](Self::nt_reply_wait_reply_port).
    pub fn send_request(
        &mut self,
        port: u32,
        message: SendMessage,
        timeout: Option<Duration>,
    ) -> AlpcResult<ReceivedMessage> {
        self.nt_alpc_send_wait_receive_port(port, msg_flags::ALPC_MSGFLG_SYNC_REQUEST, Some(message), true, timeout)?
            .ok_or(AlpcError::Unexpected)
    }

    /// A datagram: no reply expected.
    pub fn send_datagram(&mut self, port: u32, message: SendMessage) -> AlpcResult<()> {
        self.nt_alpc_send_wait_receive_port(port, 0, Some(message), false, None).map(|_| ())
    }

    /// Waits for the next message on `port`.
    pub fn receive(&mut self, port: u32, timeout: Option<Duration>) -> AlpcResult<ReceivedMessage> {
        self.nt_alpc_send_wait_receive_port(port, 0, None, true, timeout)?.ok_or(AlpcError::Unexpected)
    }

    /// Replies to `request`; the reply goes straight to the waiting thread.
    pub fn reply(&mut self, port: u32, request: &ReceivedMessage, message: SendMessage) -> AlpcResult<()> {
        let message = SendMessage { message_id: request.header.message_id, callback_id: 0, ..message };
        self.nt_alpc_send_wait_receive_port(port, msg_flags::ALPC_MSGFLG_REPLY_MESSAGE, Some(message), false, None)
            .map(|_| ())
    }

    /// Server side of an LPC callback: while serving `request`, send a
    /// nested request into the waiting client and wait for its answer.
    pub fn send_callback(
        &mut self,
        port: u32,
        request: &ReceivedMessage,
        message: SendMessage,
        timeout: Option<Duration>,
    ) -> AlpcResult<ReceivedMessage> {
        let message =
            SendMessage { msg_type: LpcMessageType::LPC_REQUEST, message_id: request.header.message_id, ..message };
        self.send_request(port, message, timeout)
    }

    /// `NtReplyWaitReplyPort`: answer a callback, then go on waiting for the
    /// reply to this thread's own request.
    pub fn nt_reply_wait_reply_port(
        &mut self,
        port: u32,
        callback: &ReceivedMessage,
        message: SendMessage,
        timeout: Option<Duration>,
    ) -> AlpcResult<ReceivedMessage> {
        let message =
            SendMessage { message_id: callback.header.message_id, callback_id: callback.header.callback_id, ..message };
        let flags = msg_flags::ALPC_MSGFLG_REPLY_MESSAGE | msg_flags::ALPC_MSGFLG_SYNC_REQUEST;
        self.nt_alpc_send_wait_receive_port(port, flags, Some(message), true, timeout)?.ok_or(AlpcError::Unexpected)
    }

    /// `NtAlpcCreatePortSection`: a section for this side's direction of the
    /// channel, created after connection.
    pub fn nt_alpc_create_port_section(&mut self, port: u32, size: u64) -> AlpcResult<u32> {
        match self.call(Some(port), Request::NtAlpcCreatePortSection { port, size })?.body {
            ResponseBody::Section { section, .. } => Ok(section),
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// `NtAlpcCreateSectionView`: carve a view of `size` bytes out of
    /// `section`: for one message with `ALPC_VIEWFLG_AUTO_RELEASE`, else
    /// kept until [`nt_alpc_delete_section_view`](Self::nt_alpc_delete_section_view).
    pub fn nt_alpc_create_section_view(
        &mut self,
        port: u32,
        section: u32,
        size: u64,
        flags: u32,
    ) -> AlpcResult<ViewAttribute> {
        let base = self.sections.get(&section).map_or(0, |s| s.map.as_ptr() as u64);
        let request = Request::NtAlpcCreateSectionView { port, section, size, mapping_base: base, flags };
        self.unreported.retain(|&h| h != section);
        match self.call(Some(port), request)?.body {
            ResponseBody::View { offset, size, .. } => Ok(ViewAttribute { section_handle: section, offset, size }),
            _ => Err(AlpcError::Unexpected),
        }
    }

    pub fn nt_alpc_delete_section_view(&mut self, port: u32, view: &ViewAttribute) -> AlpcResult<()> {
        let request = Request::NtAlpcDeleteSectionView { port, section: view.section_handle, offset: view.offset };
        self.call(Some(port), request)?;
        if self.kept_views.get(&view.section_handle).is_some_and(|k| k.offset == view.offset) {
            self.kept_views.remove(&view.section_handle);
        }
        Ok(())
    }

    /// Writes `bytes` into this process's mapping of a view.
    pub fn write_view(&mut self, view: &ViewAttribute, bytes: &[u8]) -> AlpcResult<()> {
        let section =
            self.sections.get_mut(&view.section_handle).ok_or(AlpcError::NoSuchSection(view.section_handle))?;
        if !section.writer {
            return Err(AlpcError::Status(NtStatus::STATUS_ACCESS_VIOLATION));
        }
        let range = section.range(view)?;
        if bytes.len() > range.len() {
            return Err(AlpcError::Status(NtStatus::STATUS_BUFFER_TOO_SMALL));
        }
        // SAFETY: `range` lies inside the mapping (checked by `range()`),
        // which lives while `section` is borrowed; `bytes` is our own memory,
        // so they do not overlap. The peer may touch the same bytes, so no
        // reference into the mapping is made, only a raw copy.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), section.map.as_mut_ptr().add(range.start), bytes.len());
        }
        Ok(())
    }

    /// Copies a received view out of this process's own mapping.
    pub fn read_view(&self, view: &ViewAttribute) -> AlpcResult<Vec<u8>> {
        let mut out = Vec::new();
        self.read_view_into(view, &mut out)?;
        Ok(out)
    }

    /// [`read_view`](Self::read_view) into `out` (replacing what it held),
    /// so a caller can reuse memory that is already mapped.
    pub fn read_view_into(&self, view: &ViewAttribute, out: &mut Vec<u8>) -> AlpcResult<()> {
        let section = self.sections.get(&view.section_handle).ok_or(AlpcError::NoSuchSection(view.section_handle))?;
        let range = section.range(view)?;
        out.clear();
        out.reserve(range.len());
        // SAFETY: `range` lies inside the mapping (checked by `range()`) and
        // `out` has room for that many bytes; raw copy, as in write_view.
        // The copy initialises all `range.len()` bytes before `set_len`.
        unsafe {
            std::ptr::copy_nonoverlapping(section.map.as_ptr().add(range.start), out.as_mut_ptr(), range.len());
            out.set_len(range.len());
        }
        Ok(())
    }

    /// A received view read in place, without a copy. The kernel keeps the
    /// view marked for the message until this process's next call, and its
    /// writer waits for the reply meanwhile, so the bytes hold still.
    pub fn view_bytes(&self, view: &ViewAttribute) -> AlpcResult<&[u8]> {
        let section = self.sections.get(&view.section_handle).ok_or(AlpcError::NoSuchSection(view.section_handle))?;
        let range = section.range(view)?;
        // SAFETY: `range` lies inside the mapping (checked by `range()`),
        // which lives while `self` is borrowed (no call can unmap it then).
        Ok(unsafe { std::slice::from_raw_parts(section.map.as_ptr().add(range.start), range.len()) })
    }

    /// Creates a view of `len` bytes and lets `fill` build the message in
    /// it, in place: the only copy on the way is the one `fill` makes.
    pub fn stage_in_section_with(
        &mut self,
        port: u32,
        section: u32,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> AlpcResult<ViewAttribute> {
        let view = self.nt_alpc_create_section_view(port, section, len as u64, ALPC_VIEWFLG_AUTO_RELEASE)?;
        self.fill_view(view, len, fill)
    }

    /// Like [`stage_in_section_with`](Self::stage_in_section_with), in a
    /// view kept from message to message: created (without
    /// `ALPC_VIEWFLG_AUTO_RELEASE`) the first time, made again only when a
    /// message outgrows it, and otherwise reused, which saves a kernel call
    /// per message. The caller sends one message through it at a time (a
    /// synchronous request, or a reply): the kernel refuses a view that is
    /// still in a message. Falls back to a view for this message alone when
    /// the section has no room for a kept one.
    pub fn stage_in_kept_view_with(
        &mut self,
        port: u32,
        section: u32,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> AlpcResult<ViewAttribute> {
        let fits = |v: &ViewAttribute| len as u64 <= v.size;
        if let Some(small) = self.kept_views.get(&section).copied().filter(|v| !fits(v)) {
            // Still in a message (it should not be): this one goes alone.
            if self.nt_alpc_delete_section_view(port, &small).is_err() {
                return self.stage_in_section_with(port, section, len, fill);
            }
        }
        if !self.kept_views.contains_key(&section) {
            if let Ok(view) = self.nt_alpc_create_section_view(port, section, len as u64, 0) {
                self.kept_views.insert(section, view);
            }
        }
        match self.kept_views.get(&section).copied().filter(fits) {
            Some(kept) => self.fill_view(ViewAttribute { size: len as u64, ..kept }, len, fill),
            None => self.stage_in_section_with(port, section, len, fill),
        }
    }

    /// Lets `fill` write the first `len` bytes of `view`, in place.
    fn fill_view(
        &mut self,
        view: ViewAttribute,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> AlpcResult<ViewAttribute> {
        let s = self.sections.get_mut(&view.section_handle).ok_or(AlpcError::NoSuchSection(view.section_handle))?;
        if !s.writer {
            return Err(AlpcError::Status(NtStatus::STATUS_ACCESS_VIOLATION));
        }
        let range = s.range(&view)?;
        if range.len() < len {
            return Err(AlpcError::Status(NtStatus::STATUS_BUFFER_TOO_SMALL));
        }
        // SAFETY: inside the mapping (checked by `range()`), which lives
        // while `s` is borrowed; the view is ours until we send it.
        fill(unsafe { std::slice::from_raw_parts_mut(s.map.as_mut_ptr().add(range.start), len) });
        Ok(view)
    }

    /// Where this process mapped a section (each process has its own base).
    pub fn section_base(&self, section: u32) -> Option<u64> {
        self.sections.get(&section).map(|s| s.map.as_ptr() as u64)
    }

    /// Path 2 in one go: carve a view, write `bytes` into it, and return the
    /// view attribute to send instead of the bytes.
    pub fn stage_in_section(&mut self, port: u32, section: u32, bytes: &[u8]) -> AlpcResult<ViewAttribute> {
        let view = self.nt_alpc_create_section_view(port, section, bytes.len() as u64, ALPC_VIEWFLG_AUTO_RELEASE)?;
        self.write_view(&view, bytes)?;
        Ok(view)
    }

    /// The payload of a received message: the view's bytes if it carried a
    /// view, else its inline data.
    pub fn payload(&self, message: &ReceivedMessage) -> AlpcResult<Vec<u8>> {
        match &message.view {
            Some(view) => self.read_view(view),
            None => Ok(message.data.clone()),
        }
    }

    /// `NtReadRequestData`: copy region `index` the client declared in
    /// `request` into `buffer`, straight from the client's address space.
    pub fn nt_read_request_data(
        &mut self,
        port: u32,
        request: &ReceivedMessage,
        index: u32,
        buffer: &mut [u8],
    ) -> AlpcResult<u64> {
        let call = Request::NtReadRequestData {
            port,
            message_id: request.header.message_id,
            index,
            buffer: buffer.as_mut_ptr() as u64,
            length: buffer.len() as u64,
        };
        // The kernel writes into `buffer` (process_vm_writev) while this
        // thread is blocked in the call, as a read(2) would.
        match self.call(Some(port), call)?.body {
            ResponseBody::Transferred { bytes } => Ok(bytes),
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// Makes sure this process has a direct window of at least `len` bytes
    /// (asked for, or made larger, as needed): a memfd the kernel process
    /// maps too, so [`nt_read_request_data_into_window`](Self::nt_read_request_data_into_window)
    /// lands in one copy where any other buffer takes two, through the
    /// kernel's own. Fails for a window larger than the kernel allows.
    pub fn ensure_direct_window(&mut self, len: usize) -> AlpcResult<()> {
        if self.window.as_ref().is_some_and(|w| w.len() >= len) {
            return Ok(());
        }
        let size = len.max(64 << 10).checked_next_power_of_two().ok_or(AlpcError::Unexpected)?;
        if size >= self.window_refused {
            return Err(AlpcError::Status(NtStatus::STATUS_INVALID_PARAMETER));
        }
        let mapped = self.map_direct_window(size);
        if let Err(AlpcError::Status(_)) = mapped {
            self.window_refused = size;
        }
        mapped
    }

    /// `NtReadRequestData` of `len` bytes into the start of this process's
    /// direct window (see [`ensure_direct_window`](Self::ensure_direct_window));
    /// read them with [`direct_window_bytes`](Self::direct_window_bytes).
    pub fn nt_read_request_data_into_window(
        &mut self,
        port: u32,
        request: &ReceivedMessage,
        index: u32,
        len: usize,
    ) -> AlpcResult<u64> {
        self.ensure_direct_window(len)?;
        let buffer = self.window.as_ref().map_or(0, |w| w.as_ptr() as u64);
        let call = Request::NtReadRequestData {
            port,
            message_id: request.header.message_id,
            index,
            buffer,
            length: len as u64,
        };
        // The kernel process writes into the window (its own mapping of the
        // memfd) while this thread is blocked in the call.
        match self.call(Some(port), call)?.body {
            ResponseBody::Transferred { bytes } => Ok(bytes),
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// The first `len` bytes of the direct window.
    pub fn direct_window_bytes(&self, len: usize) -> AlpcResult<&[u8]> {
        let window = self.window.as_ref().filter(|w| len <= w.len()).ok_or(AlpcError::Unexpected)?;
        // SAFETY: inside the mapping, which lives while `self` is borrowed
        // (no call can replace it then).
        Ok(unsafe { std::slice::from_raw_parts(window.as_ptr(), len) })
    }

    /// Asks the kernel for a direct window of `size` bytes, maps it and says
    /// where (two calls, once per size).
    fn map_direct_window(&mut self, size: usize) -> AlpcResult<()> {
        let request = Request::MapDirectWindow { size: size as u64, mapping_base: 0 };
        let (response, mut fds) = self.exchange(&request)?;
        self.record(&request, &response);
        if response.status != NtStatus::STATUS_SUCCESS {
            return Err(AlpcError::Status(response.status));
        }
        let (ResponseBody::Window { size: granted }, Some(fd), true) = (response.body, fds.pop(), fds.is_empty())
        else {
            return Err(AlpcError::Unexpected);
        };
        let file = File::from(fd);
        let len = usize::try_from(granted).map_err(|_| AlpcError::Unexpected)?;
        // The kernel sealed the memfd against shrinking; its size is checked
        // anyway, so that the mapping can never refer past its end.
        if granted != size as u64 || file.metadata()?.len() < granted {
            return Err(AlpcError::Unexpected);
        }
        let map = memmap2::MmapOptions::new().len(len).map_raw(&file)?;
        let base = map.as_ptr() as u64;
        self.window = Some(map);
        self.call(None, Request::MapDirectWindow { size: 0, mapping_base: base }).map(|_| ())
    }

    /// `NtWriteRequestData`: copy `buffer` into region `index` of the client.
    pub fn nt_write_request_data(
        &mut self,
        port: u32,
        request: &ReceivedMessage,
        index: u32,
        buffer: &[u8],
    ) -> AlpcResult<u64> {
        let call = Request::NtWriteRequestData {
            port,
            message_id: request.header.message_id,
            index,
            buffer: buffer.as_ptr() as u64,
            length: buffer.len() as u64,
        };
        match self.call(Some(port), call)?.body {
            ResponseBody::Transferred { bytes } => Ok(bytes),
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// Lets the kernel read and write this process's memory for direct
    /// access: `prctl(PR_SET_PTRACER, kernel_pid)` (what Yama would need),
    /// then the kernel's own grant record.
    pub fn grant_direct_access(&mut self) -> AlpcResult<()> {
        allow_kernel_ptrace(self.kernel_pid);
        self.call(None, Request::GrantDirectAccess { granted: true }).map(|_| ())
    }

    /// A `PORT_DATA_ENTRY` the server may only read (`NtReadRequestData`).
    /// The buffer must outlive the request's reply.
    pub fn data_entry(buffer: &[u8]) -> PortDataEntry {
        PortDataEntry { base: buffer.as_ptr() as u64, size: buffer.len() as u64 }
    }

    /// A `PORT_DATA_ENTRY` the server may also write (`NtWriteRequestData`).
    /// Taking `&mut` matters: the kernel writes into this memory behind the
    /// compiler's back while the request is outstanding.
    pub fn data_entry_mut(buffer: &mut [u8]) -> PortDataEntry {
        PortDataEntry { base: buffer.as_mut_ptr() as u64, size: buffer.len() as u64 }
    }

    pub fn nt_alpc_disconnect_port(&mut self, port: u32) -> AlpcResult<()> {
        self.call(None, Request::NtAlpcDisconnectPort { port, flags: 0 }).map(|_| ())
    }

    /// `NtClose`. Closing a communication port also unmaps the sections that
    /// came with it.
    pub fn nt_close(&mut self, handle: u32) -> AlpcResult<()> {
        let result = self.call(None, Request::NtClose { handle }).map(|_| ());
        self.sections.retain(|&h, s| s.port != handle && h != handle);
        let sections = &self.sections;
        self.kept_views.retain(|h, _| sections.contains_key(h));
        result
    }

    /// The kernel's whole state (what the observer samples).
    pub fn query_state(&mut self) -> AlpcResult<AlpcState> {
        self.query_state_as()
    }

    /// The kernel's state read into any type of the same JSON shape (the
    /// monitor reads it into the snapshot model's own view types).
    pub fn query_state_as<T: serde::de::DeserializeOwned>(&mut self) -> AlpcResult<T> {
        match self.call(None, Request::QueryState)?.body {
            ResponseBody::State(json) => serde_json::from_str(&json).map_err(|e| AlpcError::Io(io::Error::other(e))),
            _ => Err(AlpcError::Unexpected),
        }
    }

    /// Sends raw bytes as a request packet — for tests of the kernel's
    /// handling of malformed input. Returns the status it answered with.
    pub fn send_raw_packet(&mut self, packet: &[u8]) -> AlpcResult<NtStatus> {
        self.conn.send(packet, &[])?;
        self.conn.recv(&mut self.packet)?;
        Ok(decode_response(&self.packet)?.status)
    }
}

/// An observer connection: it only samples the kernel's state.
pub struct Observer {
    process: AlpcProcess,
}

impl Observer {
    pub fn connect(kernel_socket: &Path) -> AlpcResult<Self> {
        Ok(Observer { process: AlpcProcess::connect_named(kernel_socket, "observer")? })
    }

    /// Like [`connect`](Self::connect), but no answer is awaited longer
    /// than `timeout` (the monitor's sampling must not hang on a stopped
    /// or busy kernel).
    pub fn connect_with_timeout(kernel_socket: &Path, timeout: Duration) -> AlpcResult<Self> {
        let process = AlpcProcess::unregistered(Conn::connect(kernel_socket)?);
        process.set_io_timeout(timeout)?;
        let mut process = process;
        let response = process.call(None, Request::Hello { tid: 0, name: "observer".into() })?;
        if let ResponseBody::Hello { kernel_pid, small_max } = response.body {
            process.kernel_pid = kernel_pid;
            process.small_max = small_max;
        }
        process.calls.clear();
        Ok(Observer { process })
    }

    pub fn state(&mut self) -> AlpcResult<AlpcState> {
        self.process.query_state()
    }

    /// The state as the snapshot model's view types.
    pub fn state_as<T: serde::de::DeserializeOwned>(&mut self) -> AlpcResult<T> {
        self.process.query_state_as()
    }
}

/// `prctl(PR_SET_PTRACER, pid)`. Without Yama the call fails with EINVAL
/// and nothing is needed anyway, so its result is deliberately ignored.
pub fn allow_kernel_ptrace(kernel_pid: u32) {
    // SAFETY: prctl with integer arguments has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PTRACER, libc::c_ulong::from(kernel_pid), 0, 0, 0);
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
