//! Wire format between a task and the emulated Mach kernel.
//!
//! One request or reply is one seqpacket packet: a tag byte, then the
//! fields in little-endian order, variable parts prefixed with a `u32`
//! length. It is written by hand so that decoding checks every length
//! against the bytes actually present and against a fixed limit before
//! allocating: arbitrary bytes give a [`DecodeError`], never a panic and
//! never more memory than the packet itself.
//!
//! File descriptors (out-of-line memory) travel beside the packet with
//! `SCM_RIGHTS`; an OOL descriptor names its fd by index.

use super::types::MACH_MSG_HEADER_SIZE;
use crate::mechanisms::ekernel::transport::{MAX_FDS, MAX_PACKET};

/// Inline body bytes a message may carry. XNU allows ~48 MiB; we are bound
/// by the packet size (and OOL memory is the road for bulk data anyway).
pub const MAX_INLINE_BODY: usize = 192 * 1024;
/// Descriptors of all kinds in one message.
pub const MAX_DESCRIPTORS: usize = 64;
/// OOL descriptors in one message: each needs a descriptor passed along.
pub const MAX_OOL_DESCRIPTORS: usize = MAX_FDS;
/// `fd_index` of a region whose pool the kernel process already holds
/// (named by `pool`): no descriptor in the packet.
pub const NO_FD: u32 = u32::MAX;
/// A task's name, as shown on screen.
pub const MAX_TASK_NAME: usize = 64;
/// `name_t` holds 127 characters and a NUL.
pub const MAX_SERVICE_NAME: usize = 127;
/// `port_info_t` entries accepted by set/get attributes.
pub const MAX_PORT_INFO: usize = 16;
/// Error text in a protocol-error reply.
const MAX_ERROR_TEXT: usize = 1024;
/// Largest introspection chunk's payload.
pub const MAX_STATE_CHUNK: usize = MAX_PACKET - 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("packet ends in the middle of a field")]
    Truncated,
    #[error("unknown tag {0}")]
    UnknownTag(u8),
    #[error("{0} exceeds its limit")]
    TooLong(&'static str),
    #[error("text is not UTF-8")]
    BadUtf8,
    #[error("{0} bytes left over after the last field")]
    TrailingBytes(usize),
}

/// `mach_msg_header_t`, field for field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsgHeader {
    pub bits: u32,
    pub size: u32,
    pub remote_port: u32,
    pub local_port: u32,
    pub voucher_port: u32,
    pub id: i32,
}

/// A descriptor in a message being sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Descriptor {
    /// `mach_msg_port_descriptor_t`: a right named in the sender's space.
    Port { name: u32, disposition: u32 },
    /// `mach_msg_ool_descriptor_t`: memory that travels as the
    /// `fd_index`-th descriptor of the packet (a sealed memfd).
    Ool { size: u32, copy: u32, deallocate: bool, fd_index: u32 },
    /// Out-of-line memory as `size` bytes at `offset` of the `fd_index`-th
    /// descriptor, a pool memfd of the sender (sealed against shrinking
    /// and growing): moved with `deallocate`, copied by the kernel without.
    /// `pool` (0: none) names the pool on this connection: once the kernel
    /// process has had its descriptor, later messages send `fd_index`
    /// [`NO_FD`] and the name only, and no descriptor travels.
    OolRegion { offset: u64, size: u32, deallocate: bool, fd_index: u32, pool: u32 },
}

/// A descriptor in a received message. OOL memory arrives as the packet's
/// descriptors, in the order of the `Ool` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceivedDescriptor {
    /// A right now named `name` in the receiver's space (`MACH_PORT_DEAD`
    /// if the port died on the way); `type_name` is `MACH_MSG_TYPE_PORT_*`.
    Port {
        name: u32,
        type_name: u32,
    },
    Ool {
        size: u32,
        copy: u32,
        deallocate: bool,
    },
    /// A region of the sender's pool (the packet's next descriptor), moved
    /// here: mapped and read in place, given back when released.
    OolRegion {
        offset: u64,
        size: u32,
        copy: u32,
        deallocate: bool,
    },
}

/// The arguments of `mach_msg`, with the message to send (if any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachMsgRequest {
    pub options: u32,
    /// ms, used with `MACH_SEND_TIMEOUT`.
    pub send_timeout: u32,
    /// ms, used with `MACH_RCV_TIMEOUT`.
    pub rcv_timeout: u32,
    pub rcv_name: u32,
    /// The receive buffer's size; a larger message → `MACH_RCV_TOO_LARGE`.
    pub rcv_size: u32,
    /// For `MACH_SEND_NOTIFY`: a receive right in the sender's space where
    /// `MACH_NOTIFY_MSG_ACCEPTED` is delivered.
    pub notify: u32,
    pub header: MsgHeader,
    pub body: Vec<u8>,
    pub descriptors: Vec<Descriptor>,
}

/// Everything a connection can ask the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Make this connection the first thread of a new task.
    RegisterTask {
        name: String,
    },
    /// Make this connection another thread of an existing task.
    JoinTask {
        task: u32,
        token: u64,
    },
    PortAllocate {
        right: u32,
    },
    PortInsertRight {
        name: u32,
        poly: u32,
        disposition: u32,
    },
    PortDeallocate {
        name: u32,
    },
    PortModRefs {
        name: u32,
        right: u32,
        delta: i32,
    },
    PortSetAttributes {
        name: u32,
        flavor: u32,
        info: Vec<i32>,
    },
    PortGetAttributes {
        name: u32,
        flavor: u32,
        count: u32,
    },
    PortRequestNotification {
        name: u32,
        msgid: i32,
        sync: u32,
        notify: u32,
        notify_disposition: u32,
    },
    MachMsg(MachMsgRequest),
    BootstrapCheckIn {
        bp: u32,
        service: String,
    },
    BootstrapRegister {
        bp: u32,
        service: String,
        port: u32,
    },
    BootstrapLookUp {
        bp: u32,
        service: String,
    },
    /// Introspection: the whole kernel state as JSON (observers only).
    State,
    /// Emulation only (no Mach call does this): switch the kernel's rules
    /// for `MACH_SEND_NOTIFY` on a full queue, by the index of
    /// `mach.personality`'s choices. Any connection may send it.
    SetPersonality {
        personality: u32,
    },
}

/// A message as the receiver gets it: header swapped as XNU does
/// (`remote_port` = the reply right, `local_port` = the destination's name),
/// plus the trailer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub header: MsgHeader,
    pub seqno: u32,
    /// `audit_token_t.val`: [auid, euid, egid, ruid, rgid, pid, asid, pidversion].
    pub audit_token: [u32; 8],
    pub body: Vec<u8>,
    pub descriptors: Vec<ReceivedDescriptor>,
}

/// Everything the kernel answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Registered {
        task: u32,
        token: u64,
        task_self: u32,
        bootstrap: u32,
    },
    Status {
        kr: u32,
    },
    Name {
        kr: u32,
        name: u32,
    },
    Attributes {
        kr: u32,
        info: Vec<i32>,
    },
    /// The outcome of `mach_msg`. A failed send may carry the message
    /// pseudo-received back (its rights restored in the sender's space).
    Msg {
        kr: u32,
        msg: Option<ReceivedMessage>,
    },
    /// One piece of the introspection JSON; the last one has `last` set.
    StateChunk {
        last: bool,
        data: Vec<u8>,
    },
    /// The request could not be decoded or is not allowed here.
    ProtocolError {
        message: String,
    },
}

mod tag {
    pub const REGISTER: u8 = 1;
    pub const JOIN: u8 = 2;
    pub const ALLOCATE: u8 = 3;
    pub const INSERT_RIGHT: u8 = 4;
    pub const DEALLOCATE: u8 = 5;
    pub const MOD_REFS: u8 = 6;
    pub const SET_ATTRIBUTES: u8 = 7;
    pub const GET_ATTRIBUTES: u8 = 8;
    pub const REQUEST_NOTIFICATION: u8 = 9;
    pub const MACH_MSG: u8 = 10;
    pub const CHECK_IN: u8 = 11;
    pub const REGISTER_SERVICE: u8 = 12;
    pub const LOOK_UP: u8 = 13;
    pub const STATE: u8 = 14;
    pub const SET_PERSONALITY: u8 = 15;

    pub const R_REGISTERED: u8 = 101;
    pub const R_STATUS: u8 = 102;
    pub const R_NAME: u8 = 103;
    pub const R_ATTRIBUTES: u8 = 104;
    pub const R_MSG: u8 = 105;
    pub const R_STATE_CHUNK: u8 = 106;
    pub const R_PROTOCOL_ERROR: u8 = 107;

    pub const D_PORT: u8 = 0;
    pub const D_OOL: u8 = 1;
    pub const D_OOL_REGION: u8 = 2;
}

// ---- encoding ------------------------------------------------------------

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    fn header(&mut self, h: &MsgHeader) {
        self.u32(h.bits);
        self.u32(h.size);
        self.u32(h.remote_port);
        self.u32(h.local_port);
        self.u32(h.voucher_port);
        self.i32(h.id);
    }
}

pub fn encode_request(req: &Request) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    match req {
        Request::RegisterTask { name } => {
            w.u8(tag::REGISTER);
            w.str(name);
        }
        Request::JoinTask { task, token } => {
            w.u8(tag::JOIN);
            w.u32(*task);
            w.u64(*token);
        }
        Request::PortAllocate { right } => {
            w.u8(tag::ALLOCATE);
            w.u32(*right);
        }
        Request::PortInsertRight { name, poly, disposition } => {
            w.u8(tag::INSERT_RIGHT);
            w.u32(*name);
            w.u32(*poly);
            w.u32(*disposition);
        }
        Request::PortDeallocate { name } => {
            w.u8(tag::DEALLOCATE);
            w.u32(*name);
        }
        Request::PortModRefs { name, right, delta } => {
            w.u8(tag::MOD_REFS);
            w.u32(*name);
            w.u32(*right);
            w.i32(*delta);
        }
        Request::PortSetAttributes { name, flavor, info } => {
            w.u8(tag::SET_ATTRIBUTES);
            w.u32(*name);
            w.u32(*flavor);
            w.u32(info.len() as u32);
            for v in info {
                w.i32(*v);
            }
        }
        Request::PortGetAttributes { name, flavor, count } => {
            w.u8(tag::GET_ATTRIBUTES);
            w.u32(*name);
            w.u32(*flavor);
            w.u32(*count);
        }
        Request::PortRequestNotification { name, msgid, sync, notify, notify_disposition } => {
            w.u8(tag::REQUEST_NOTIFICATION);
            w.u32(*name);
            w.i32(*msgid);
            w.u32(*sync);
            w.u32(*notify);
            w.u32(*notify_disposition);
        }
        Request::MachMsg(m) => {
            w.0.reserve(m.body.len() + 64 + m.descriptors.len() * 20);
            w.u8(tag::MACH_MSG);
            w.u32(m.options);
            w.u32(m.send_timeout);
            w.u32(m.rcv_timeout);
            w.u32(m.rcv_name);
            w.u32(m.rcv_size);
            w.u32(m.notify);
            w.header(&m.header);
            w.bytes(&m.body);
            w.u32(m.descriptors.len() as u32);
            for d in &m.descriptors {
                match *d {
                    Descriptor::Port { name, disposition } => {
                        w.u8(tag::D_PORT);
                        w.u32(name);
                        w.u32(disposition);
                    }
                    Descriptor::Ool { size, copy, deallocate, fd_index } => {
                        w.u8(tag::D_OOL);
                        w.u32(size);
                        w.u32(copy);
                        w.u8(deallocate as u8);
                        w.u32(fd_index);
                    }
                    Descriptor::OolRegion { offset, size, deallocate, fd_index, pool } => {
                        w.u8(tag::D_OOL_REGION);
                        w.u64(offset);
                        w.u32(size);
                        w.u8(deallocate as u8);
                        w.u32(fd_index);
                        w.u32(pool);
                    }
                }
            }
        }
        Request::BootstrapCheckIn { bp, service } => {
            w.u8(tag::CHECK_IN);
            w.u32(*bp);
            w.str(service);
        }
        Request::BootstrapRegister { bp, service, port } => {
            w.u8(tag::REGISTER_SERVICE);
            w.u32(*bp);
            w.str(service);
            w.u32(*port);
        }
        Request::BootstrapLookUp { bp, service } => {
            w.u8(tag::LOOK_UP);
            w.u32(*bp);
            w.str(service);
        }
        Request::State => w.u8(tag::STATE),
        Request::SetPersonality { personality } => {
            w.u8(tag::SET_PERSONALITY);
            w.u32(*personality);
        }
    }
    w.0
}

pub fn encode_reply(reply: &Reply) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64));
    match reply {
        Reply::Registered { task, token, task_self, bootstrap } => {
            w.u8(tag::R_REGISTERED);
            w.u32(*task);
            w.u64(*token);
            w.u32(*task_self);
            w.u32(*bootstrap);
        }
        Reply::Status { kr } => {
            w.u8(tag::R_STATUS);
            w.u32(*kr);
        }
        Reply::Name { kr, name } => {
            w.u8(tag::R_NAME);
            w.u32(*kr);
            w.u32(*name);
        }
        Reply::Attributes { kr, info } => {
            w.u8(tag::R_ATTRIBUTES);
            w.u32(*kr);
            w.u32(info.len() as u32);
            for v in info {
                w.i32(*v);
            }
        }
        Reply::Msg { kr, msg } => {
            w.u8(tag::R_MSG);
            w.u32(*kr);
            match msg {
                None => w.u8(0),
                Some(m) => {
                    w.0.reserve(m.body.len() + 96 + m.descriptors.len() * 16);
                    w.u8(1);
                    w.header(&m.header);
                    w.u32(m.seqno);
                    for v in m.audit_token {
                        w.u32(v);
                    }
                    w.bytes(&m.body);
                    w.u32(m.descriptors.len() as u32);
                    for d in &m.descriptors {
                        match *d {
                            ReceivedDescriptor::Port { name, type_name } => {
                                w.u8(tag::D_PORT);
                                w.u32(name);
                                w.u32(type_name);
                            }
                            ReceivedDescriptor::Ool { size, copy, deallocate } => {
                                w.u8(tag::D_OOL);
                                w.u32(size);
                                w.u32(copy);
                                w.u8(deallocate as u8);
                            }
                            ReceivedDescriptor::OolRegion { offset, size, copy, deallocate } => {
                                w.u8(tag::D_OOL_REGION);
                                w.u64(offset);
                                w.u32(size);
                                w.u32(copy);
                                w.u8(deallocate as u8);
                            }
                        }
                    }
                }
            }
        }
        Reply::StateChunk { last, data } => {
            w.u8(tag::R_STATE_CHUNK);
            w.u8(*last as u8);
            w.bytes(data);
        }
        Reply::ProtocolError { message } => {
            w.u8(tag::R_PROTOCOL_ERROR);
            let mut end = message.len().min(MAX_ERROR_TEXT);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            w.str(&message[..end]);
        }
    }
    w.0
}

// ---- decoding ------------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let lo = self.u32()? as u64;
        let hi = self.u32()? as u64;
        Ok(lo | (hi << 32))
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }
    /// A length prefix, checked against `max` and against what is left so
    /// that no allocation is ever larger than the packet.
    fn len(&mut self, max: usize, what: &'static str, unit: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(DecodeError::TooLong(what));
        }
        if n.saturating_mul(unit) > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }
    fn bytes(&mut self, max: usize, what: &'static str) -> Result<Vec<u8>, DecodeError> {
        let n = self.len(max, what, 1)?;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes(max, what)?).map_err(|_| DecodeError::BadUtf8)
    }
    fn header(&mut self) -> Result<MsgHeader, DecodeError> {
        Ok(MsgHeader {
            bits: self.u32()?,
            size: self.u32()?,
            remote_port: self.u32()?,
            local_port: self.u32()?,
            voucher_port: self.u32()?,
            id: self.i32()?,
        })
    }
    fn info(&mut self) -> Result<Vec<i32>, DecodeError> {
        let n = self.len(MAX_PORT_INFO, "port info", 4)?;
        (0..n).map(|_| self.i32()).collect()
    }
    fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}

pub fn decode_request(packet: &[u8]) -> Result<Request, DecodeError> {
    let mut r = Reader { buf: packet };
    let req = match r.u8()? {
        tag::REGISTER => Request::RegisterTask { name: r.str(MAX_TASK_NAME, "task name")? },
        tag::JOIN => Request::JoinTask { task: r.u32()?, token: r.u64()? },
        tag::ALLOCATE => Request::PortAllocate { right: r.u32()? },
        tag::INSERT_RIGHT => Request::PortInsertRight { name: r.u32()?, poly: r.u32()?, disposition: r.u32()? },
        tag::DEALLOCATE => Request::PortDeallocate { name: r.u32()? },
        tag::MOD_REFS => Request::PortModRefs { name: r.u32()?, right: r.u32()?, delta: r.i32()? },
        tag::SET_ATTRIBUTES => Request::PortSetAttributes { name: r.u32()?, flavor: r.u32()?, info: r.info()? },
        tag::GET_ATTRIBUTES => Request::PortGetAttributes { name: r.u32()?, flavor: r.u32()?, count: r.u32()? },
        tag::REQUEST_NOTIFICATION => Request::PortRequestNotification {
            name: r.u32()?,
            msgid: r.i32()?,
            sync: r.u32()?,
            notify: r.u32()?,
            notify_disposition: r.u32()?,
        },
        tag::MACH_MSG => {
            let options = r.u32()?;
            let send_timeout = r.u32()?;
            let rcv_timeout = r.u32()?;
            let rcv_name = r.u32()?;
            let rcv_size = r.u32()?;
            let notify = r.u32()?;
            let header = r.header()?;
            let body = r.bytes(MAX_INLINE_BODY, "inline body")?;
            // The smallest descriptor is 9 bytes on the wire.
            let n = r.len(MAX_DESCRIPTORS, "descriptor count", 9)?;
            let mut descriptors = Vec::with_capacity(n);
            let mut ool = 0;
            for _ in 0..n {
                descriptors.push(match r.u8()? {
                    tag::D_PORT => Descriptor::Port { name: r.u32()?, disposition: r.u32()? },
                    tag::D_OOL => {
                        ool += 1;
                        if ool > MAX_OOL_DESCRIPTORS {
                            return Err(DecodeError::TooLong("OOL descriptor count"));
                        }
                        Descriptor::Ool { size: r.u32()?, copy: r.u32()?, deallocate: r.bool()?, fd_index: r.u32()? }
                    }
                    tag::D_OOL_REGION => {
                        ool += 1;
                        if ool > MAX_OOL_DESCRIPTORS {
                            return Err(DecodeError::TooLong("OOL descriptor count"));
                        }
                        Descriptor::OolRegion {
                            offset: r.u64()?,
                            size: r.u32()?,
                            deallocate: r.bool()?,
                            fd_index: r.u32()?,
                            pool: r.u32()?,
                        }
                    }
                    other => return Err(DecodeError::UnknownTag(other)),
                });
            }
            Request::MachMsg(MachMsgRequest {
                options,
                send_timeout,
                rcv_timeout,
                rcv_name,
                rcv_size,
                notify,
                header,
                body,
                descriptors,
            })
        }
        tag::CHECK_IN => Request::BootstrapCheckIn { bp: r.u32()?, service: r.str(MAX_SERVICE_NAME, "service name")? },
        tag::REGISTER_SERVICE => Request::BootstrapRegister {
            bp: r.u32()?,
            service: r.str(MAX_SERVICE_NAME, "service name")?,
            port: r.u32()?,
        },
        tag::LOOK_UP => Request::BootstrapLookUp { bp: r.u32()?, service: r.str(MAX_SERVICE_NAME, "service name")? },
        tag::STATE => Request::State,
        tag::SET_PERSONALITY => Request::SetPersonality { personality: r.u32()? },
        other => return Err(DecodeError::UnknownTag(other)),
    };
    r.finish()?;
    Ok(req)
}

/// Decodes a reply. The client treats the kernel as trusted-but-verified:
/// the same bounds apply, so a confused kernel cannot crash a task.
pub fn decode_reply(packet: &[u8]) -> Result<Reply, DecodeError> {
    let mut r = Reader { buf: packet };
    let reply = match r.u8()? {
        tag::R_REGISTERED => {
            Reply::Registered { task: r.u32()?, token: r.u64()?, task_self: r.u32()?, bootstrap: r.u32()? }
        }
        tag::R_STATUS => Reply::Status { kr: r.u32()? },
        tag::R_NAME => Reply::Name { kr: r.u32()?, name: r.u32()? },
        tag::R_ATTRIBUTES => Reply::Attributes { kr: r.u32()?, info: r.info()? },
        tag::R_MSG => {
            let kr = r.u32()?;
            let msg = if r.bool()? {
                let header = r.header()?;
                let seqno = r.u32()?;
                let mut audit_token = [0u32; 8];
                for v in &mut audit_token {
                    *v = r.u32()?;
                }
                let body = r.bytes(MAX_INLINE_BODY, "inline body")?;
                let n = r.len(MAX_DESCRIPTORS, "descriptor count", 9)?;
                let mut descriptors = Vec::with_capacity(n);
                for _ in 0..n {
                    descriptors.push(match r.u8()? {
                        tag::D_PORT => ReceivedDescriptor::Port { name: r.u32()?, type_name: r.u32()? },
                        tag::D_OOL => ReceivedDescriptor::Ool { size: r.u32()?, copy: r.u32()?, deallocate: r.bool()? },
                        tag::D_OOL_REGION => ReceivedDescriptor::OolRegion {
                            offset: r.u64()?,
                            size: r.u32()?,
                            copy: r.u32()?,
                            deallocate: r.bool()?,
                        },
                        other => return Err(DecodeError::UnknownTag(other)),
                    });
                }
                Some(ReceivedMessage { header, seqno, audit_token, body, descriptors })
            } else {
                None
            };
            Reply::Msg { kr, msg }
        }
        tag::R_STATE_CHUNK => Reply::StateChunk { last: r.bool()?, data: r.bytes(MAX_STATE_CHUNK, "state chunk")? },
        tag::R_PROTOCOL_ERROR => Reply::ProtocolError { message: r.str(MAX_ERROR_TEXT, "error text")? },
        other => return Err(DecodeError::UnknownTag(other)),
    };
    r.finish()?;
    Ok(reply)
}

/// The `msgh_size` of a message with this body and these descriptors, as
/// the C structures would lay it out (LP64): header, then for a complex
/// message the body count and descriptors, then the data padded to 4.
pub fn message_size(body_len: usize, descriptors: &[Descriptor]) -> u64 {
    use super::types::{MACH_MSG_BODY_SIZE, MACH_MSG_OOL_DESCRIPTOR_SIZE, MACH_MSG_PORT_DESCRIPTOR_SIZE};
    let mut size = MACH_MSG_HEADER_SIZE as u64;
    if !descriptors.is_empty() {
        size += MACH_MSG_BODY_SIZE as u64;
        for d in descriptors {
            size += match d {
                Descriptor::Port { .. } => MACH_MSG_PORT_DESCRIPTOR_SIZE,
                Descriptor::Ool { .. } | Descriptor::OolRegion { .. } => MACH_MSG_OOL_DESCRIPTOR_SIZE,
            } as u64;
        }
    }
    size + (body_len as u64).div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_msg() -> Request {
        Request::MachMsg(MachMsgRequest {
            options: 3,
            send_timeout: 10,
            rcv_timeout: 20,
            rcv_name: 0x303,
            rcv_size: 4096,
            notify: 0,
            header: MsgHeader { bits: 0x1513, size: 40, remote_port: 0x403, local_port: 0x503, voucher_port: 0, id: 7 },
            body: vec![1, 2, 3],
            descriptors: vec![
                Descriptor::Port { name: 0x603, disposition: 20 },
                Descriptor::Ool { size: 100, copy: 1, deallocate: false, fd_index: 0 },
            ],
        })
    }

    #[test]
    fn requests_round_trip() {
        let all = vec![
            Request::RegisterTask { name: "server".into() },
            Request::JoinTask { task: 3, token: u64::MAX - 5 },
            Request::PortAllocate { right: 1 },
            Request::PortInsertRight { name: 1, poly: 1, disposition: 20 },
            Request::PortDeallocate { name: 9 },
            Request::PortModRefs { name: 9, right: 0, delta: -1 },
            Request::PortSetAttributes { name: 9, flavor: 1, info: vec![16] },
            Request::PortGetAttributes { name: 9, flavor: 2, count: 10 },
            Request::PortRequestNotification { name: 1, msgid: 72, sync: 0, notify: 2, notify_disposition: 21 },
            sample_msg(),
            Request::BootstrapCheckIn { bp: 0x203, service: "com.example".into() },
            Request::BootstrapRegister { bp: 0x203, service: "x".into(), port: 5 },
            Request::BootstrapLookUp { bp: 0x203, service: "y".into() },
            Request::State,
            Request::SetPersonality { personality: 2 },
        ];
        for req in all {
            assert_eq!(decode_request(&encode_request(&req)), Ok(req));
        }
    }

    #[test]
    fn replies_round_trip() {
        let all = vec![
            Reply::Registered { task: 1, token: 2, task_self: 0x103, bootstrap: 0x203 },
            Reply::Status { kr: 5 },
            Reply::Name { kr: 0, name: 0x303 },
            Reply::Attributes { kr: 0, info: vec![5] },
            Reply::Msg { kr: 0x10004003, msg: None },
            Reply::Msg {
                kr: 0,
                msg: Some(ReceivedMessage {
                    header: MsgHeader {
                        bits: 0x1112,
                        size: 24,
                        remote_port: 1,
                        local_port: 2,
                        voucher_port: 0,
                        id: -4,
                    },
                    seqno: 3,
                    audit_token: [1, 2, 3, 4, 5, 6, 7, 8],
                    body: vec![9; 10],
                    descriptors: vec![
                        ReceivedDescriptor::Port { name: 0x703, type_name: 17 },
                        ReceivedDescriptor::Ool { size: 5, copy: 1, deallocate: true },
                    ],
                }),
            },
            Reply::StateChunk { last: true, data: b"{}".to_vec() },
            Reply::ProtocolError { message: "nope".into() },
        ];
        for reply in all {
            assert_eq!(decode_reply(&encode_reply(&reply)), Ok(reply));
        }
    }

    #[test]
    fn hostile_lengths_are_refused_without_allocating() {
        // A body length of 4 GiB in a 40-byte packet.
        let mut bytes = encode_request(&sample_msg());
        let body_len_at = 1 + 6 * 4 + 24;
        bytes[body_len_at..body_len_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_request(&bytes), Err(DecodeError::TooLong("inline body")));
        assert_eq!(decode_request(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode_request(&[200]), Err(DecodeError::UnknownTag(200)));
        let mut extra = encode_request(&Request::State);
        extra.push(0);
        assert_eq!(decode_request(&extra), Err(DecodeError::TrailingBytes(1)));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(&bytes);
            let _ = decode_reply(&bytes);
        }

        #[test]
        fn mutated_valid_requests_never_panic(pos in 0usize..200, val in any::<u8>()) {
            let mut bytes = encode_request(&sample_msg());
            let n = bytes.len();
            bytes[pos % n] = val;
            let _ = decode_request(&bytes);
            bytes.truncate(pos % n);
            let _ = decode_request(&bytes);
        }
    }
}
