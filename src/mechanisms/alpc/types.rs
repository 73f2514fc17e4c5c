//! NT names and values the emulated ALPC object manager speaks: NTSTATUS
//! codes, LPC message types, ALPC flags and the `PORT_MESSAGE` header.
//!
//! Values come from `/work/shared/reference/alpc.md` (ReactOS, phnt, Wine's
//! `ntstatus.h`). The screen shows these names, so a student can look any of
//! them up in the real headers.

pub use crate::model::detail::alpc::{ClientId, PortDataEntry, PortMessageHeader};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An NT status code. Kept as the raw 32-bit value so it travels on the wire
/// and in JSON exactly as NT defines it; `name()` gives the symbolic name.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NtStatus(pub u32);

macro_rules! nt_statuses {
    ($($name:ident = $value:expr;)*) => {
        impl NtStatus {
            $(pub const $name: NtStatus = NtStatus($value);)*

            /// The symbolic name, as in `ntstatus.h`; unknown values are shown in hex.
            pub fn name(self) -> &'static str {
                match self {
                    $(NtStatus::$name => stringify!($name),)*
                    _ => "STATUS_<unknown>",
                }
            }
        }
    };
}

nt_statuses! {
    STATUS_SUCCESS = 0x0000_0000;
    STATUS_TIMEOUT = 0x0000_0102;
    STATUS_UNSUCCESSFUL = 0xC000_0001;
    STATUS_NOT_IMPLEMENTED = 0xC000_0002;
    STATUS_INVALID_HANDLE = 0xC000_0008;
    STATUS_INVALID_PARAMETER = 0xC000_000D;
    STATUS_NO_MEMORY = 0xC000_0017;
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023;
    STATUS_OBJECT_TYPE_MISMATCH = 0xC000_0024;
    STATUS_ACCESS_VIOLATION = 0xC000_0005;
    STATUS_INVALID_PORT_ATTRIBUTES = 0xC000_002E;
    STATUS_PORT_MESSAGE_TOO_LONG = 0xC000_002F;
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033;
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034;
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035;
    STATUS_PORT_DISCONNECTED = 0xC000_0037;
    STATUS_PORT_CONNECTION_REFUSED = 0xC000_0041;
    STATUS_INVALID_PORT_HANDLE = 0xC000_0042;
    STATUS_QUOTA_EXCEEDED = 0xC000_0044;
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009A;
    STATUS_NOT_SUPPORTED = 0xC000_00BB;
    STATUS_REPLY_MESSAGE_MISMATCH = 0xC000_021F;
    STATUS_LPC_REPLY_LOST = 0xC000_0253;
    STATUS_PORT_CLOSED = 0xC000_0700;
    STATUS_RECURSIVE_DISPATCH = 0xC000_0704;
    STATUS_LPC_RECEIVE_BUFFER_EXPECTED = 0xC000_0705;
    STATUS_RESOURCE_IN_USE = 0xC000_0708;
}

impl NtStatus {
    /// The status the object manager returns when a port's pool quota
    /// (`MaxPoolUsage`, our `alpc.max_pool_usage`) cannot hold a message.
    /// LPC's only allocation failure is `STATUS_NO_MEMORY` (ReactOS send.c);
    /// which code ALPC gives for `MaxPoolUsage` is unverified (alpc.md §6),
    /// so we keep the verified LPC one and name the choice in one place.
    pub const POOL_QUOTA_EXHAUSTED: NtStatus = NtStatus::STATUS_NO_MEMORY;

    /// NT_SUCCESS(): severity bits 00 (success) or 01 (informational).
    pub fn is_success(self) -> bool {
        self.0 < 0x8000_0000
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "STATUS_<unknown>" => write!(f, "0x{:08X}", self.0),
            name => f.write_str(name),
        }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(0x{:08X})", self, self.0)
    }
}

/// `PORT_MESSAGE.u2.s2.Type`: what a message is. Numbers are LPC's
/// (`lpctypes.h`); 11 and above disagree between sources, so we use none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LpcMessageType {
    /// `LPC_NEW_MESSAGE` (0): "let the kernel pick" on input.
    NewMessage,
    Request,
    Reply,
    Datagram,
    LostReply,
    PortClosed,
    ClientDied,
    ConnectionRequest,
}

impl LpcMessageType {
    pub const LPC_NEW_MESSAGE: u16 = 0;
    pub const LPC_REQUEST: u16 = 1;
    pub const LPC_REPLY: u16 = 2;
    pub const LPC_DATAGRAM: u16 = 3;
    pub const LPC_LOST_REPLY: u16 = 4;
    pub const LPC_PORT_CLOSED: u16 = 5;
    pub const LPC_CLIENT_DIED: u16 = 6;
    pub const LPC_CONNECTION_REQUEST: u16 = 10;

    /// Flag bits that share the type word. The kernel masks them before it
    /// looks at the type, so a sender cannot smuggle e.g. a kernel-mode bit.
    pub const LPC_CONTINUATION_REQUIRED: u16 = 0x2000;
    pub const LPC_NO_IMPERSONATE: u16 = 0x4000;
    pub const LPC_KERNELMODE_MESSAGE: u16 = 0x8000;
    pub const TYPE_MASK: u16 = 0x00FF;

    pub fn code(self) -> u16 {
        match self {
            Self::NewMessage => Self::LPC_NEW_MESSAGE,
            Self::Request => Self::LPC_REQUEST,
            Self::Reply => Self::LPC_REPLY,
            Self::Datagram => Self::LPC_DATAGRAM,
            Self::LostReply => Self::LPC_LOST_REPLY,
            Self::PortClosed => Self::LPC_PORT_CLOSED,
            Self::ClientDied => Self::LPC_CLIENT_DIED,
            Self::ConnectionRequest => Self::LPC_CONNECTION_REQUEST,
        }
    }

    /// Decodes a type word after masking its flag bits; `None` for codes we
    /// do not model.
    pub fn from_code(word: u16) -> Option<Self> {
        Some(match word & Self::TYPE_MASK {
            Self::LPC_NEW_MESSAGE => Self::NewMessage,
            Self::LPC_REQUEST => Self::Request,
            Self::LPC_REPLY => Self::Reply,
            Self::LPC_DATAGRAM => Self::Datagram,
            Self::LPC_LOST_REPLY => Self::LostReply,
            Self::LPC_PORT_CLOSED => Self::PortClosed,
            Self::LPC_CLIENT_DIED => Self::ClientDied,
            Self::LPC_CONNECTION_REQUEST => Self::ConnectionRequest,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::NewMessage => "LPC_NEW_MESSAGE",
            Self::Request => "LPC_REQUEST",
            Self::Reply => "LPC_REPLY",
            Self::Datagram => "LPC_DATAGRAM",
            Self::LostReply => "LPC_LOST_REPLY",
            Self::PortClosed => "LPC_PORT_CLOSED",
            Self::ClientDied => "LPC_CLIENT_DIED",
            Self::ConnectionRequest => "LPC_CONNECTION_REQUEST",
        }
    }
}

impl fmt::Display for LpcMessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `ALPC_MSGFLG_*` flags of `NtAlpcSendWaitReceivePort` (phnt).
pub mod msg_flags {
    /// The send is a reply to the message whose `MessageId` it quotes. phnt
    /// says 0x1; Wine's 2026 headers say 0x10000 (alpc.md §3). We accept both.
    pub const ALPC_MSGFLG_REPLY_MESSAGE: u32 = 0x1;
    pub const ALPC_MSGFLG_RELEASE_MESSAGE: u32 = 0x1_0000;
    /// Send a request and block until its reply (or a callback) arrives.
    pub const ALPC_MSGFLG_SYNC_REQUEST: u32 = 0x2_0000;
    /// Every flag bit the emulation understands; others are rejected.
    pub const KNOWN: u32 = ALPC_MSGFLG_REPLY_MESSAGE | ALPC_MSGFLG_RELEASE_MESSAGE | ALPC_MSGFLG_SYNC_REQUEST;

    pub fn is_reply(flags: u32) -> bool {
        flags & (ALPC_MSGFLG_REPLY_MESSAGE | ALPC_MSGFLG_RELEASE_MESSAGE) != 0
    }
}

/// `ALPC_VIEWFLG_*` flags of an `ALPC_DATA_VIEW_ATTR` (phnt).
pub mod view_flags {
    /// The view goes away with the message that carried it, as soon as its
    /// receiver is done with it; without this flag a view stays until
    /// `NtAlpcDeleteSectionView` and can carry message after message.
    pub const ALPC_VIEWFLG_AUTO_RELEASE: u32 = 0x2_0000;
    /// Every flag bit the emulation understands; others are rejected.
    pub const KNOWN: u32 = ALPC_VIEWFLG_AUTO_RELEASE;
}

/// Size of the x64 `PORT_MESSAGE` header, charged against the pool quota for
/// every queued message as NT charges the kernel message blob.
pub const PORT_MESSAGE_SIZE: u32 = 0x28;
/// Size of `ALPC_DATA_VIEW_ATTR` on x64, charged for a message that carries a view.
pub const ALPC_DATA_VIEW_ATTR_SIZE: u32 = 0x20;
/// `PORT_DATA_INFORMATION` header and one `PORT_DATA_ENTRY` on x64.
pub const PORT_DATA_INFORMATION_SIZE: u32 = 8;
pub const PORT_DATA_ENTRY_SIZE: u32 = 16;

impl PortMessageHeader {
    pub fn message_type(&self) -> Option<LpcMessageType> {
        LpcMessageType::from_code(self.msg_type)
    }
}

/// The `ALPC_DATA_VIEW_ATTR` part a message carries: which section, and where
/// in it the payload lies. Pointers are never rebased by the kernel; each
/// process adds the offset to its own view's base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewAttribute {
    /// The section's handle in the *receiving* (or sending) process.
    pub section_handle: u32,
    pub offset: u64,
    pub size: u64,
}

/// Formats an NT handle value the way WinDbg and Process Explorer do.
pub fn handle_text(handle: u32) -> String {
    format!("0x{handle:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_and_values() {
        assert_eq!(NtStatus::STATUS_PORT_CONNECTION_REFUSED.0, 0xC000_0041);
        assert_eq!(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH.name(), "STATUS_REPLY_MESSAGE_MISMATCH");
        assert_eq!(NtStatus(0x1234_5678).to_string(), "0x12345678");
        assert!(NtStatus::STATUS_TIMEOUT.is_success());
        assert!(!NtStatus::STATUS_NO_MEMORY.is_success());
    }

    #[test]
    fn message_type_masks_flag_bits() {
        let word = LpcMessageType::LPC_REQUEST | LpcMessageType::LPC_KERNELMODE_MESSAGE;
        assert_eq!(LpcMessageType::from_code(word), Some(LpcMessageType::Request));
        assert_eq!(LpcMessageType::from_code(11), None);
        assert_eq!(LpcMessageType::ConnectionRequest.code(), 10);
    }
}
