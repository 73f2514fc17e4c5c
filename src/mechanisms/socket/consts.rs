//! What the supervisor's side, the workers and the probe share: the knobs,
//! the address families and the Unix socket's name. A leaf, so that the
//! parts of the socket mechanism import it and never each other in a
//! circle.

use crate::knobs::{KnobKind, KnobSpec};

pub(super) const FAMILIES: &[&str] = &["unix", "tcp", "both"];

pub(super) const KNOBS: &[KnobSpec] = &[
    KnobSpec {
        key: "socket.family",
        kind: KnobKind::Choice(FAMILIES),
        default: "unix",
        help: "unix = a stream socket named by a path in the run dir; tcp = 127.0.0.1 at a port the kernel picks; both = one listener of each (clients alternate). Read at start and restart",
    },
    KnobSpec {
        key: "socket.clients",
        kind: KnobKind::Int { min: 1, max: 4 },
        default: "1",
        help: "client processes that connect to the one listener (each gets its own connected socket). Read at start",
    },
    KnobSpec {
        key: "socket.nodelay",
        kind: KnobKind::Bool,
        default: "false",
        help: "TCP_NODELAY on the clients' TCP sockets: send small segments at once instead of coalescing them (Nagle)",
    },
    KnobSpec {
        key: "socket.buffer",
        kind: KnobKind::Int { min: 0, max: 4 << 20 },
        default: "32768",
        help: "SO_SNDBUF of each client and SO_RCVBUF of the listener, in bytes (the kernel doubles it); 0 = kernel defaults and TCP autotuning (megabytes: a stalled server then takes long to block a client)",
    },
];

/// The Unix socket's file name inside the run directory.
pub const SOCK_NAME: &str = "sock";

pub(super) const FAM_UNIX: u64 = 1;
pub(super) const FAM_TCP: u64 = 2;
