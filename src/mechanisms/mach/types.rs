//! Mach constants under their real names.
//!
//! Values are XNU's (xnu-11417, `osfmk/mach/*.h`) except for the
//! `MACH_SEND_NOTIFY` path, which XNU does not have in the form the textbook
//! describes: there we use GNU Mach's names (`MACH_SEND_WILL_NOTIFY`,
//! `MACH_SEND_NOTIFY_IN_PROGRESS`, `MACH_NOTIFY_MSG_ACCEPTED`). The two
//! kernels' numbers collide in a few places (0x10000005 is XNU's
//! `MACH_SEND_INVALID_VOUCHER` and GNU's `MACH_SEND_WILL_NOTIFY`); this
//! emulator never returns the XNU meaning of a colliding value, so
//! [`return_name`] is unambiguous.

use std::fmt;

/// A Mach port name: meaningful only inside the task that holds it.
pub type MachPortName = u32;

/// `kern_return_t` / `mach_msg_return_t`: the emulator's return codes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct KernReturn(pub u32);

impl KernReturn {
    pub const SUCCESS: KernReturn = KernReturn(KERN_SUCCESS);

    pub fn is_success(self) -> bool {
        self.0 == KERN_SUCCESS
    }

    pub fn name(self) -> String {
        return_name(self.0)
    }
}

impl fmt::Display for KernReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

// ---- kern_return.h ---------------------------------------------------------
pub const KERN_SUCCESS: u32 = 0;
pub const KERN_INVALID_ADDRESS: u32 = 1;
pub const KERN_NO_SPACE: u32 = 3;
pub const KERN_INVALID_ARGUMENT: u32 = 4;
pub const KERN_FAILURE: u32 = 5;
pub const KERN_RESOURCE_SHORTAGE: u32 = 6;
pub const KERN_NOT_RECEIVER: u32 = 7;
pub const KERN_NAME_EXISTS: u32 = 13;
pub const KERN_INVALID_NAME: u32 = 15;
pub const KERN_INVALID_TASK: u32 = 16;
pub const KERN_INVALID_RIGHT: u32 = 17;
pub const KERN_INVALID_VALUE: u32 = 18;
pub const KERN_UREFS_OVERFLOW: u32 = 19;
pub const KERN_INVALID_CAPABILITY: u32 = 20;
pub const KERN_RIGHT_EXISTS: u32 = 21;
pub const KERN_OPERATION_TIMED_OUT: u32 = 49;

// ---- message.h: mach_msg return codes --------------------------------------
pub const MACH_MSG_SUCCESS: u32 = 0;
pub const MACH_SEND_IN_PROGRESS: u32 = 0x1000_0001;
pub const MACH_SEND_INVALID_DATA: u32 = 0x1000_0002;
pub const MACH_SEND_INVALID_DEST: u32 = 0x1000_0003;
pub const MACH_SEND_TIMED_OUT: u32 = 0x1000_0004;
/// GNU Mach value (XNU uses 0x10000005 for `MACH_SEND_INVALID_VOUCHER`,
/// which this emulator never returns).
pub const MACH_SEND_WILL_NOTIFY: u32 = 0x1000_0005;
/// GNU Mach value; unused in XNU.
pub const MACH_SEND_NOTIFY_IN_PROGRESS: u32 = 0x1000_0006;
pub const MACH_SEND_INTERRUPTED: u32 = 0x1000_0007;
pub const MACH_SEND_MSG_TOO_SMALL: u32 = 0x1000_0008;
pub const MACH_SEND_INVALID_REPLY: u32 = 0x1000_0009;
pub const MACH_SEND_INVALID_RIGHT: u32 = 0x1000_000a;
pub const MACH_SEND_INVALID_NOTIFY: u32 = 0x1000_000b;
pub const MACH_SEND_INVALID_MEMORY: u32 = 0x1000_000c;
pub const MACH_SEND_NO_BUFFER: u32 = 0x1000_000d;
pub const MACH_SEND_TOO_LARGE: u32 = 0x1000_000e;
pub const MACH_SEND_INVALID_TYPE: u32 = 0x1000_000f;
pub const MACH_SEND_INVALID_HEADER: u32 = 0x1000_0010;
pub const MACH_SEND_INVALID_OPTIONS: u32 = 0x1000_0013;

pub const MACH_RCV_IN_PROGRESS: u32 = 0x1000_4001;
pub const MACH_RCV_INVALID_NAME: u32 = 0x1000_4002;
pub const MACH_RCV_TIMED_OUT: u32 = 0x1000_4003;
pub const MACH_RCV_TOO_LARGE: u32 = 0x1000_4004;
pub const MACH_RCV_INTERRUPTED: u32 = 0x1000_4005;
pub const MACH_RCV_PORT_CHANGED: u32 = 0x1000_4006;
pub const MACH_RCV_INVALID_NOTIFY: u32 = 0x1000_4007;
pub const MACH_RCV_INVALID_DATA: u32 = 0x1000_4008;
pub const MACH_RCV_PORT_DIED: u32 = 0x1000_4009;
pub const MACH_RCV_HEADER_ERROR: u32 = 0x1000_400b;
pub const MACH_RCV_BODY_ERROR: u32 = 0x1000_400c;
/// ORed into `MACH_RCV_*_ERROR` when the receiver's name space is full.
pub const MACH_MSG_IPC_SPACE: u32 = 0x2000;

// ---- launchd bootstrap.h ---------------------------------------------------
pub const BOOTSTRAP_SUCCESS: u32 = 0;
pub const BOOTSTRAP_NOT_PRIVILEGED: u32 = 1100;
pub const BOOTSTRAP_NAME_IN_USE: u32 = 1101;
pub const BOOTSTRAP_UNKNOWN_SERVICE: u32 = 1102;
pub const BOOTSTRAP_SERVICE_ACTIVE: u32 = 1103;
pub const BOOTSTRAP_BAD_COUNT: u32 = 1104;
pub const BOOTSTRAP_NO_MEMORY: u32 = 1105;
/// `name_t` is `char[128]`, NUL included.
pub const BOOTSTRAP_MAX_NAME_LEN: usize = 128;

// ---- mach_msg options (XNU bits) -------------------------------------------
pub const MACH_MSG_OPTION_NONE: u32 = 0;
pub const MACH_SEND_MSG: u32 = 0x1;
pub const MACH_RCV_MSG: u32 = 0x2;
pub const MACH_RCV_LARGE: u32 = 0x4;
pub const MACH_SEND_TIMEOUT: u32 = 0x10;
/// XNU's bit (0x80). XNU uses it to arm a send-possible request; here it
/// means what the textbook (and GNU Mach, whose bit is 0x20) describe: keep
/// the message although the queue is full and notify when it is accepted.
pub const MACH_SEND_NOTIFY: u32 = 0x80;
pub const MACH_RCV_TIMEOUT: u32 = 0x100;
/// Every option this emulator understands; other bits are rejected.
pub const MACH_MSG_OPTIONS_KNOWN: u32 =
    MACH_SEND_MSG | MACH_RCV_MSG | MACH_RCV_LARGE | MACH_SEND_TIMEOUT | MACH_SEND_NOTIFY | MACH_RCV_TIMEOUT;

// ---- header bits -----------------------------------------------------------
pub const MACH_MSGH_BITS_REMOTE_MASK: u32 = 0x0000_001f;
pub const MACH_MSGH_BITS_LOCAL_MASK: u32 = 0x0000_1f00;
pub const MACH_MSGH_BITS_VOUCHER_MASK: u32 = 0x001f_0000;
pub const MACH_MSGH_BITS_COMPLEX: u32 = 0x8000_0000;
pub const MACH_MSGH_BITS_USER: u32 = 0x801f_1f1f;

/// `MACH_MSGH_BITS(remote, local)`.
pub const fn mach_msgh_bits(remote: u32, local: u32) -> u32 {
    remote | (local << 8)
}
pub const fn mach_msgh_bits_remote(bits: u32) -> u32 {
    bits & MACH_MSGH_BITS_REMOTE_MASK
}
pub const fn mach_msgh_bits_local(bits: u32) -> u32 {
    (bits & MACH_MSGH_BITS_LOCAL_MASK) >> 8
}
pub const fn mach_msgh_bits_voucher(bits: u32) -> u32 {
    (bits & MACH_MSGH_BITS_VOUCHER_MASK) >> 16
}

/// `sizeof(mach_msg_header_t)`.
pub const MACH_MSG_HEADER_SIZE: u32 = 24;
/// `sizeof(mach_msg_body_t)`.
pub const MACH_MSG_BODY_SIZE: u32 = 4;
/// LP64 `mach_msg_port_descriptor_t`.
pub const MACH_MSG_PORT_DESCRIPTOR_SIZE: u32 = 12;
/// LP64 `mach_msg_ool_descriptor_t`.
pub const MACH_MSG_OOL_DESCRIPTOR_SIZE: u32 = 16;
/// LP64 `mach_msg_audit_trailer_t`: what a receiver gets appended.
pub const MACH_MSG_AUDIT_TRAILER_SIZE: u32 = 52;

// ---- dispositions and received type names ----------------------------------
pub const MACH_MSG_TYPE_MOVE_RECEIVE: u32 = 16;
pub const MACH_MSG_TYPE_MOVE_SEND: u32 = 17;
pub const MACH_MSG_TYPE_MOVE_SEND_ONCE: u32 = 18;
pub const MACH_MSG_TYPE_COPY_SEND: u32 = 19;
pub const MACH_MSG_TYPE_MAKE_SEND: u32 = 20;
pub const MACH_MSG_TYPE_MAKE_SEND_ONCE: u32 = 21;
pub const MACH_MSG_TYPE_PORT_NAME: u32 = 15;
pub const MACH_MSG_TYPE_PORT_RECEIVE: u32 = MACH_MSG_TYPE_MOVE_RECEIVE;
pub const MACH_MSG_TYPE_PORT_SEND: u32 = MACH_MSG_TYPE_MOVE_SEND;
pub const MACH_MSG_TYPE_PORT_SEND_ONCE: u32 = MACH_MSG_TYPE_MOVE_SEND_ONCE;

/// Descriptor types (`mach_msg_descriptor_type_t`).
pub const MACH_MSG_PORT_DESCRIPTOR: u32 = 0;
pub const MACH_MSG_OOL_DESCRIPTOR: u32 = 1;
/// OOL copy options.
pub const MACH_MSG_PHYSICAL_COPY: u32 = 0;
pub const MACH_MSG_VIRTUAL_COPY: u32 = 1;

// ---- port.h ----------------------------------------------------------------
pub const MACH_PORT_NULL: MachPortName = 0;
pub const MACH_PORT_DEAD: MachPortName = 0xFFFF_FFFF;
pub const fn mach_port_valid(name: MachPortName) -> bool {
    name != MACH_PORT_NULL && name != MACH_PORT_DEAD
}

pub const MACH_PORT_RIGHT_SEND: u32 = 0;
pub const MACH_PORT_RIGHT_RECEIVE: u32 = 1;
pub const MACH_PORT_RIGHT_SEND_ONCE: u32 = 2;
pub const MACH_PORT_RIGHT_PORT_SET: u32 = 3;
pub const MACH_PORT_RIGHT_DEAD_NAME: u32 = 4;
pub const MACH_PORT_RIGHT_NUMBER: u32 = 6;

/// `MACH_PORT_TYPE(right)` bits, as `mach_port_type()` reports them.
pub const MACH_PORT_TYPE_SEND: u32 = 1 << 16;
pub const MACH_PORT_TYPE_RECEIVE: u32 = 1 << 17;
pub const MACH_PORT_TYPE_SEND_ONCE: u32 = 1 << 18;
pub const MACH_PORT_TYPE_DEAD_NAME: u32 = 1 << 20;
pub const MACH_PORT_TYPE_DNREQUEST: u32 = 0x8000_0000;

/// User references are 16 bits; XNU saturates here instead of overflowing.
pub const MACH_PORT_UREFS_MAX: u32 = 0xffff;

pub const MACH_PORT_QLIMIT_ZERO: u32 = 0;
pub const MACH_PORT_QLIMIT_BASIC: u32 = 5;
pub const MACH_PORT_QLIMIT_DEFAULT: u32 = MACH_PORT_QLIMIT_BASIC;
pub const MACH_PORT_QLIMIT_SMALL: u32 = 16;
pub const MACH_PORT_QLIMIT_LARGE: u32 = 1024;
pub const MACH_PORT_QLIMIT_MAX: u32 = MACH_PORT_QLIMIT_LARGE;
/// The cap that still applies to sends to a send-once right.
pub const MACH_PORT_QLIMIT_KERNEL: u32 = 65534;

/// `mach_port_{get,set}_attributes` flavors.
pub const MACH_PORT_LIMITS_INFO: u32 = 1;
pub const MACH_PORT_RECEIVE_STATUS: u32 = 2;
pub const MACH_PORT_LIMITS_INFO_COUNT: usize = 1;
pub const MACH_PORT_RECEIVE_STATUS_COUNT: usize = 10;

// ---- notify.h --------------------------------------------------------------
pub const MACH_NOTIFY_FIRST: i32 = 0o100;
pub const MACH_NOTIFY_PORT_DELETED: i32 = MACH_NOTIFY_FIRST + 0o1;
/// GNU Mach's name for 66 (XNU calls the same id `MACH_NOTIFY_SEND_POSSIBLE`).
pub const MACH_NOTIFY_MSG_ACCEPTED: i32 = MACH_NOTIFY_FIRST + 0o2;
pub const MACH_NOTIFY_SEND_POSSIBLE: i32 = MACH_NOTIFY_FIRST + 0o2;
pub const MACH_NOTIFY_PORT_DESTROYED: i32 = MACH_NOTIFY_FIRST + 0o5;
pub const MACH_NOTIFY_NO_SENDERS: i32 = MACH_NOTIFY_FIRST + 0o6;
pub const MACH_NOTIFY_SEND_ONCE: i32 = MACH_NOTIFY_FIRST + 0o7;
pub const MACH_NOTIFY_DEAD_NAME: i32 = MACH_NOTIFY_FIRST + 0o10;

/// `NDR_record` for a little-endian host: the 8 bytes MIG puts before the
/// arguments of every notification body.
/// `task_info` in the task subsystem (3400) of XNU's task.defs; the
/// reply's id is 100 more, as MIG makes it.
pub const TASK_INFO_ID: i32 = 3405;
pub const NDR_RECORD: [u8; 8] = [0, 0, 0, 0, 1, 0, 0, 0];

/// The name of a `kern_return_t`, `mach_msg_return_t` or bootstrap code, for
/// the screen and the call log. Unknown values print in hex.
pub fn return_name(code: u32) -> String {
    let name = match code {
        KERN_SUCCESS => "KERN_SUCCESS",
        KERN_INVALID_ADDRESS => "KERN_INVALID_ADDRESS",
        KERN_NO_SPACE => "KERN_NO_SPACE",
        KERN_INVALID_ARGUMENT => "KERN_INVALID_ARGUMENT",
        KERN_FAILURE => "KERN_FAILURE",
        KERN_RESOURCE_SHORTAGE => "KERN_RESOURCE_SHORTAGE",
        KERN_NOT_RECEIVER => "KERN_NOT_RECEIVER",
        KERN_NAME_EXISTS => "KERN_NAME_EXISTS",
        KERN_INVALID_NAME => "KERN_INVALID_NAME",
        KERN_INVALID_TASK => "KERN_INVALID_TASK",
        KERN_INVALID_RIGHT => "KERN_INVALID_RIGHT",
        KERN_INVALID_VALUE => "KERN_INVALID_VALUE",
        KERN_UREFS_OVERFLOW => "KERN_UREFS_OVERFLOW",
        KERN_INVALID_CAPABILITY => "KERN_INVALID_CAPABILITY",
        KERN_RIGHT_EXISTS => "KERN_RIGHT_EXISTS",
        KERN_OPERATION_TIMED_OUT => "KERN_OPERATION_TIMED_OUT",
        MACH_SEND_IN_PROGRESS => "MACH_SEND_IN_PROGRESS",
        MACH_SEND_INVALID_DATA => "MACH_SEND_INVALID_DATA",
        MACH_SEND_INVALID_DEST => "MACH_SEND_INVALID_DEST",
        MACH_SEND_TIMED_OUT => "MACH_SEND_TIMED_OUT",
        MACH_SEND_WILL_NOTIFY => "MACH_SEND_WILL_NOTIFY",
        MACH_SEND_NOTIFY_IN_PROGRESS => "MACH_SEND_NOTIFY_IN_PROGRESS",
        MACH_SEND_INTERRUPTED => "MACH_SEND_INTERRUPTED",
        MACH_SEND_MSG_TOO_SMALL => "MACH_SEND_MSG_TOO_SMALL",
        MACH_SEND_INVALID_REPLY => "MACH_SEND_INVALID_REPLY",
        MACH_SEND_INVALID_RIGHT => "MACH_SEND_INVALID_RIGHT",
        MACH_SEND_INVALID_NOTIFY => "MACH_SEND_INVALID_NOTIFY",
        MACH_SEND_INVALID_MEMORY => "MACH_SEND_INVALID_MEMORY",
        MACH_SEND_NO_BUFFER => "MACH_SEND_NO_BUFFER",
        MACH_SEND_TOO_LARGE => "MACH_SEND_TOO_LARGE",
        MACH_SEND_INVALID_TYPE => "MACH_SEND_INVALID_TYPE",
        MACH_SEND_INVALID_HEADER => "MACH_SEND_INVALID_HEADER",
        MACH_SEND_INVALID_OPTIONS => "MACH_SEND_INVALID_OPTIONS",
        MACH_RCV_IN_PROGRESS => "MACH_RCV_IN_PROGRESS",
        MACH_RCV_INVALID_NAME => "MACH_RCV_INVALID_NAME",
        MACH_RCV_TIMED_OUT => "MACH_RCV_TIMED_OUT",
        MACH_RCV_TOO_LARGE => "MACH_RCV_TOO_LARGE",
        MACH_RCV_INTERRUPTED => "MACH_RCV_INTERRUPTED",
        MACH_RCV_PORT_CHANGED => "MACH_RCV_PORT_CHANGED",
        MACH_RCV_INVALID_NOTIFY => "MACH_RCV_INVALID_NOTIFY",
        MACH_RCV_INVALID_DATA => "MACH_RCV_INVALID_DATA",
        MACH_RCV_PORT_DIED => "MACH_RCV_PORT_DIED",
        MACH_RCV_HEADER_ERROR => "MACH_RCV_HEADER_ERROR",
        MACH_RCV_BODY_ERROR => "MACH_RCV_BODY_ERROR",
        BOOTSTRAP_NOT_PRIVILEGED => "BOOTSTRAP_NOT_PRIVILEGED",
        BOOTSTRAP_NAME_IN_USE => "BOOTSTRAP_NAME_IN_USE",
        BOOTSTRAP_UNKNOWN_SERVICE => "BOOTSTRAP_UNKNOWN_SERVICE",
        BOOTSTRAP_SERVICE_ACTIVE => "BOOTSTRAP_SERVICE_ACTIVE",
        BOOTSTRAP_BAD_COUNT => "BOOTSTRAP_BAD_COUNT",
        BOOTSTRAP_NO_MEMORY => "BOOTSTRAP_NO_MEMORY",
        _ => {
            if code & MACH_MSG_IPC_SPACE != 0 {
                let base = code & !MACH_MSG_IPC_SPACE;
                if base == MACH_RCV_HEADER_ERROR || base == MACH_RCV_BODY_ERROR {
                    return format!("{}|MACH_MSG_IPC_SPACE", return_name(base));
                }
            }
            return format!("{code:#x}");
        }
    };
    name.to_string()
}

/// The name of a disposition or received type name (`MACH_MSG_TYPE_*`).
pub fn disposition_name(disposition: u32) -> &'static str {
    match disposition {
        0 => "0",
        MACH_MSG_TYPE_PORT_NAME => "MACH_MSG_TYPE_PORT_NAME",
        MACH_MSG_TYPE_MOVE_RECEIVE => "MACH_MSG_TYPE_MOVE_RECEIVE",
        MACH_MSG_TYPE_MOVE_SEND => "MACH_MSG_TYPE_MOVE_SEND",
        MACH_MSG_TYPE_MOVE_SEND_ONCE => "MACH_MSG_TYPE_MOVE_SEND_ONCE",
        MACH_MSG_TYPE_COPY_SEND => "MACH_MSG_TYPE_COPY_SEND",
        MACH_MSG_TYPE_MAKE_SEND => "MACH_MSG_TYPE_MAKE_SEND",
        MACH_MSG_TYPE_MAKE_SEND_ONCE => "MACH_MSG_TYPE_MAKE_SEND_ONCE",
        _ => "?",
    }
}

/// The name of a `MACH_PORT_RIGHT_*` value.
pub fn right_name(right: u32) -> &'static str {
    match right {
        MACH_PORT_RIGHT_SEND => "MACH_PORT_RIGHT_SEND",
        MACH_PORT_RIGHT_RECEIVE => "MACH_PORT_RIGHT_RECEIVE",
        MACH_PORT_RIGHT_SEND_ONCE => "MACH_PORT_RIGHT_SEND_ONCE",
        MACH_PORT_RIGHT_PORT_SET => "MACH_PORT_RIGHT_PORT_SET",
        MACH_PORT_RIGHT_DEAD_NAME => "MACH_PORT_RIGHT_DEAD_NAME",
        _ => "?",
    }
}

/// `mach_msg` options as the call log prints them, e.g. `SEND|SEND_TIMEOUT`.
pub fn options_name(options: u32) -> String {
    const BITS: [(u32, &str); 6] = [
        (MACH_SEND_MSG, "SEND"),
        (MACH_RCV_MSG, "RCV"),
        (MACH_RCV_LARGE, "RCV_LARGE"),
        (MACH_SEND_TIMEOUT, "SEND_TIMEOUT"),
        (MACH_SEND_NOTIFY, "SEND_NOTIFY"),
        (MACH_RCV_TIMEOUT, "RCV_TIMEOUT"),
    ];
    let mut parts: Vec<String> =
        BITS.iter().filter(|(bit, _)| options & bit != 0).map(|(_, name)| (*name).to_string()).collect();
    let unknown = options & !MACH_MSG_OPTIONS_KNOWN;
    if unknown != 0 {
        parts.push(format!("{unknown:#x}"));
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join("|")
    }
}

/// The name of a notification `msgh_id`, if it is one.
pub fn notification_name(msgh_id: i32) -> Option<&'static str> {
    Some(match msgh_id {
        MACH_NOTIFY_PORT_DELETED => "MACH_NOTIFY_PORT_DELETED",
        MACH_NOTIFY_MSG_ACCEPTED => "MACH_NOTIFY_MSG_ACCEPTED",
        MACH_NOTIFY_PORT_DESTROYED => "MACH_NOTIFY_PORT_DESTROYED",
        MACH_NOTIFY_NO_SENDERS => "MACH_NOTIFY_NO_SENDERS",
        MACH_NOTIFY_SEND_ONCE => "MACH_NOTIFY_SEND_ONCE",
        MACH_NOTIFY_DEAD_NAME => "MACH_NOTIFY_DEAD_NAME",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_codes() {
        assert_eq!(return_name(MACH_SEND_TIMED_OUT), "MACH_SEND_TIMED_OUT");
        assert_eq!(return_name(MACH_SEND_WILL_NOTIFY), "MACH_SEND_WILL_NOTIFY");
        assert_eq!(return_name(BOOTSTRAP_UNKNOWN_SERVICE), "BOOTSTRAP_UNKNOWN_SERVICE");
        assert_eq!(return_name(0xdead), "0xdead");
        assert_eq!(return_name(MACH_RCV_BODY_ERROR | MACH_MSG_IPC_SPACE), "MACH_RCV_BODY_ERROR|MACH_MSG_IPC_SPACE");
        assert_eq!(options_name(MACH_SEND_MSG | MACH_SEND_TIMEOUT), "SEND|SEND_TIMEOUT");
        assert_eq!(mach_msgh_bits(MACH_MSG_TYPE_COPY_SEND, MACH_MSG_TYPE_MAKE_SEND_ONCE), 0x1513);
        assert_eq!(MACH_NOTIFY_DEAD_NAME, 72);
        assert_eq!(MACH_NOTIFY_MSG_ACCEPTED, 66);
    }
}
