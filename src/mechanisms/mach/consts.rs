//! What the Mach processes, the supervisor's side and the probe share: the
//! knobs, the service's name and the kernel's socket. A leaf, so that
//! `mechanism`, `workload` and `probe` import it and never each other in a
//! circle.

use crate::knobs::{KnobKind, KnobSpec};

/// The choices of `mach.send_mode`, in the order they are stored.
pub const SEND_MODES: &[&str] = &["block", "timeout", "immediate", "notify"];

pub(crate) const KNOBS: &[KnobSpec] = &[
    KnobSpec {
        key: "mach.qlimit",
        kind: KnobKind::Int { min: 0, max: 1024 },
        default: "5",
        help: "the service port's queue limit, set with mach_port_set_attributes(MACH_PORT_LIMITS_INFO); 5 = MACH_PORT_QLIMIT_DEFAULT, 1024 = MACH_PORT_QLIMIT_MAX",
    },
    KnobSpec {
        key: "mach.senders",
        kind: KnobKind::Int { min: 1, max: 8 },
        default: "2",
        help: "client tasks (client-1 has two threads sharing its name space); applies at restart",
    },
    KnobSpec {
        key: "mach.send_mode",
        kind: KnobKind::ChoiceArg { choices: SEND_MODES, with_arg: "timeout", arg: (0, 60_000) },
        default: "block",
        help: "what mach_msg does on a full queue: block = wait, timeout:MS = MACH_SEND_TIMEOUT, immediate = timeout 0, notify = MACH_SEND_NOTIFY (one cached message per thread)",
    },
    KnobSpec {
        key: "mach.ool_threshold",
        kind: KnobKind::Int { min: 0, max: 1 << 20 },
        default: "16384",
        help: "message bodies larger than this go out of line (mapped memory, not copied); 16384 = XNU's small-OOL copy limit on x86_64",
    },
];

/// The name the server checks in with the bootstrap server.
pub const SERVICE: &str = "edu.ipcscope.echo";
/// The socket of the emulated kernel, in the run's directory.
pub const SOCKET: &str = "mach.sock";
