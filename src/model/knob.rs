//! Knobs: every setting a user can turn, by `--set KEY=VALUE`, a lesson
//! file or the TUI.
//!
//! Inside the program a knob is a `KnobId`, resolved once where a string
//! comes in (`KnobId::parse`); an unknown key is an error there, never a 0
//! read later. The id is also the knob's slot in the control page (see
//! `telemetry`, which checks at compile time that every id has one).
//! Values are stored as `u64`; the `KnobKind` says how to parse and print
//! them. This module imports nothing of ours.

/// `u64::MAX` stands for "as fast as possible" in a rate knob.
pub const RATE_MAX: u64 = u64::MAX;
/// A mechanism's own copy of a common knob holding this follows the
/// common knob (`global`). No knob's range reaches it.
pub const GLOBAL: u64 = u64::MAX - 1;
/// Smallest `msg.size`: `message::MIN_LEN` (which checks it is the same).
pub const MSG_MIN_LEN: u64 = 32;
/// The choices of `socket.family`, in the order they are stored.
pub const SOCKET_FAMILIES: &[&str] = &["unix", "tcp", "both"];
/// The choices of `socket.remote`, in the order they are stored.
pub const SOCKET_REMOTES: &[&str] = &["none", "netns"];
/// The choices of `mach.send_mode`, in the order they are stored.
pub const MACH_SEND_MODES: &[&str] = &["block", "timeout", "immediate", "notify"];
/// The choices of `mach.personality`, in the order they are stored.
pub const MACH_PERSONALITIES: &[&str] = &["textbook", "xnu", "gnumach"];
/// The choices of `alpc.personality`, in the order they are stored.
pub const ALPC_PERSONALITIES: &[&str] = &["lpc", "alpc"];
/// Most clients an ALPC run starts.
pub const ALPC_MAX_CLIENTS: u64 = 4;

#[derive(Debug, Clone, Copy)]
pub enum KnobKind {
    /// Messages per second, 0..=max, or `max` for unbounded.
    Rate {
        max: u64,
    },
    /// An integer within an inclusive range.
    Int {
        min: u64,
        max: u64,
    },
    Bool,
    /// One of the listed words; stored as its index.
    Choice(&'static [&'static str]),
    /// One of the listed words, where the word `with_arg` also takes
    /// `:N` (N within `arg`), e.g. `timeout:10`. Stored as
    /// `index << 32 | N`.
    ChoiceArg {
        choices: &'static [&'static str],
        with_arg: &'static str,
        arg: (u32, u32),
    },
    /// One mechanism's own value of a common knob (`pipe.consumer.rate`
    /// stands in for `consumer.rate` in the pipe's processes), or `global`
    /// (stored as `GLOBAL`): follow the common knob.
    Own(KnobId),
}

#[derive(Debug, Clone, Copy)]
pub struct KnobSpec {
    pub key: &'static str,
    pub kind: KnobKind,
    pub default: &'static str,
    pub help: &'static str,
}

/// The table of every knob: one line per knob, grouped by who reads it.
/// Makes `KnobId` (in table order, which is also the listing's order),
/// `KnobId::ALL`, a `&[KnobId]` per group and the specs.
macro_rules! knob_table {
    ($( $(#[$gdoc:meta])* $group:ident [ $( $id:ident = $spec:expr ),* $(,)? ] )*) => {
        /// A knob. Its number is its slot in the control page.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum KnobId {
            $( $( $id, )* )*
        }

        impl KnobId {
            /// Every knob, in slot order.
            pub const ALL: &'static [KnobId] = &[ $( $( KnobId::$id, )* )* ];
            $(
                $(#[$gdoc])*
                pub const $group: &'static [KnobId] = &[ $( KnobId::$id, )* ];
            )*
        }

        const SPECS: &[KnobSpec] = &[ $( $( $spec, )* )* ];
    };
}

/// The spec of mechanism `$mech`'s own copy of common knob `$base`
/// (whose key is `$key`).
macro_rules! own {
    ($mech:literal, $base:ident, $key:literal) => {
        KnobSpec {
            key: concat!($mech, ".", $key),
            kind: KnobKind::Own(KnobId::$base),
            default: "global",
            help: concat!($key, " for the ", $mech, " processes only (global = follow ", $key, ")"),
        }
    };
}

knob_table! {
    /// Knobs every mechanism shares.
    COMMON [
        ProducerRate = KnobSpec {
            key: "producer.rate",
            kind: KnobKind::Rate { max: 1_000_000 },
            default: "1000",
            help: "messages each producer sends per second (`max` = as fast as it can)",
        },
        ConsumerRate = KnobSpec {
            key: "consumer.rate",
            kind: KnobKind::Rate { max: 1_000_000 },
            default: "max",
            help: "messages each consumer takes per second (0 = stalled, never reads)",
        },
        MsgSize = KnobSpec {
            key: "msg.size",
            kind: KnobKind::Int { min: MSG_MIN_LEN, max: 1 << 20 },
            default: "256",
            help: "bytes per message, header included",
        },
        ProducerCount = KnobSpec {
            key: "producer.count",
            kind: KnobKind::Int { min: 0, max: u64::MAX >> 1 },
            default: "0",
            help: "messages a producer sends before it exits (0 = never stops)",
        },
    ]
    PIPE [
        PipeCapacity = KnobSpec {
            key: "pipe.capacity",
            kind: KnobKind::Int { min: 4096, max: 1 << 20 },
            default: "65536",
            help: "pipe buffer size set with fcntl(F_SETPIPE_SZ); the kernel rounds up to a power-of-two number of pages",
        },
        PipeCloseUnused = KnobSpec {
            key: "pipe.close_unused",
            kind: KnobKind::Bool,
            default: "true",
            help: "each process closes the pipe end it does not use (false: the reader never sees EOF)",
        },
        PipeDuplex = KnobSpec {
            key: "pipe.duplex",
            kind: KnobKind::Bool,
            default: "false",
            help: "add a second pipe for replies: one pipe carries one direction only",
        },
        PipeSigpipe = KnobSpec {
            key: "pipe.sigpipe",
            kind: KnobKind::Choice(&["default", "ignore"]),
            default: "default",
            help: "writing to a pipe with no reader: default = SIGPIPE kills the writer, ignore = write() fails with EPIPE",
        },
        PipeProducerRate = own!("pipe", ProducerRate, "producer.rate"),
        PipeConsumerRate = own!("pipe", ConsumerRate, "consumer.rate"),
        PipeMsgSize = own!("pipe", MsgSize, "msg.size"),
        PipeProducerCount = own!("pipe", ProducerCount, "producer.count"),
    ]
    FIFO [
        FifoWriters = KnobSpec {
            key: "fifo.writers",
            kind: KnobKind::Int { min: 1, max: 8 },
            default: "2",
            help: "writer processes sharing the FIFO (messages up to PIPE_BUF never interleave); applies at start / restart",
        },
        FifoSigpipe = KnobSpec {
            key: "fifo.sigpipe",
            kind: KnobKind::Choice(&["default", "ignore"]),
            default: "default",
            help: "writing with no reader left: default = SIGPIPE kills the writer, ignore = EPIPE, and the writer reopens the FIFO (and waits in open)",
        },
        FifoProducerRate = own!("fifo", ProducerRate, "producer.rate"),
        FifoConsumerRate = own!("fifo", ConsumerRate, "consumer.rate"),
        FifoMsgSize = own!("fifo", MsgSize, "msg.size"),
        FifoProducerCount = own!("fifo", ProducerCount, "producer.count"),
    ]
    SHM [
        ShmSize = KnobSpec {
            key: "shm.size",
            kind: KnobKind::Int { min: 4096, max: 1 << 24 },
            default: "16384",
            help: "bytes the producer passes to ftruncate(): the ring header (64 bytes) plus the slots",
        },
        ShmSlots = KnobSpec {
            key: "shm.slots",
            kind: KnobKind::Int { min: 1, max: 256 },
            default: "16",
            help: "slots in the ring (the bounded buffer's size); msg.size is cut to the slot size",
        },
        ShmProducerRate = own!("shm", ProducerRate, "producer.rate"),
        ShmConsumerRate = own!("shm", ConsumerRate, "consumer.rate"),
        ShmMsgSize = own!("shm", MsgSize, "msg.size"),
        ShmProducerCount = own!("shm", ProducerCount, "producer.count"),
    ]
    MQ [
        MqMaxmsg = KnobSpec {
            key: "mq.maxmsg",
            kind: KnobKind::Int { min: 1, max: 65536 },
            default: "10",
            help:
                "messages the queue holds (mq_maxmsg); above /proc/sys/fs/mqueue/msg_max (10 here) needs CAP_SYS_RESOURCE",
        },
        MqMsgsize = KnobSpec {
            key: "mq.msgsize",
            kind: KnobKind::Int { min: MSG_MIN_LEN, max: 1 << 20 },
            default: "1024",
            help: "largest message in bytes (mq_msgsize, at most /proc/sys/fs/mqueue/msgsize_max); msg.size is cut to it",
        },
        MqPriorities = KnobSpec {
            key: "mq.priorities",
            kind: KnobKind::Bool,
            default: "false",
            help: "send mixed priorities 0-3: the highest waiting message is received first",
        },
        MqSendTimeoutMs = KnobSpec {
            key: "mq.send_timeout_ms",
            kind: KnobKind::Int { min: 0, max: 60_000 },
            default: "0",
            help:
                "0 = mq_send blocks while the queue is full; N = mq_timedsend gives up after N ms (ETIMEDOUT) and retries",
        },
        MqProducerRate = own!("mq", ProducerRate, "producer.rate"),
        MqConsumerRate = own!("mq", ConsumerRate, "consumer.rate"),
        MqMsgSize = own!("mq", MsgSize, "msg.size"),
        MqProducerCount = own!("mq", ProducerCount, "producer.count"),
    ]
    MACH [
        MachQlimit = KnobSpec {
            key: "mach.qlimit",
            kind: KnobKind::Int { min: 0, max: 1024 },
            default: "5",
            help: "the service port's queue limit, set with mach_port_set_attributes(MACH_PORT_LIMITS_INFO); 5 = MACH_PORT_QLIMIT_DEFAULT, 1024 = MACH_PORT_QLIMIT_MAX",
        },
        MachSenders = KnobSpec {
            key: "mach.senders",
            kind: KnobKind::Int { min: 1, max: 8 },
            default: "2",
            help: "client tasks (client-1 has two threads sharing its name space); applies at restart",
        },
        MachSendMode = KnobSpec {
            key: "mach.send_mode",
            kind: KnobKind::ChoiceArg { choices: MACH_SEND_MODES, with_arg: "timeout", arg: (0, 60_000) },
            default: "block",
            help: "what mach_msg does on a full queue: block = wait, timeout:MS = MACH_SEND_TIMEOUT, immediate = timeout 0, notify = MACH_SEND_NOTIFY (one cached message per thread)",
        },
        MachOolThreshold = KnobSpec {
            key: "mach.ool_threshold",
            kind: KnobKind::Int { min: 0, max: 1 << 20 },
            default: "16384",
            help: "message bodies larger than this go out of line (mapped memory, not copied); 16384 = XNU's small-OOL copy limit on x86_64",
        },
        MachPersonality = KnobSpec {
            key: "mach.personality",
            kind: KnobKind::Choice(MACH_PERSONALITIES),
            default: "textbook",
            help: "whose rules MACH_SEND_NOTIFY follows on a full queue: textbook = one kept message per thread, MACH_NOTIFY_MSG_ACCEPTED when queued; gnumach = one per task and send right, MACH_NOTIFY_MSG_ACCEPTED when received; xnu = nothing kept, MACH_SEND_TIMED_OUT and MACH_NOTIFY_SEND_POSSIBLE; changes the running kernel",
        },
        MachIntruder = KnobSpec {
            key: "mach.intruder",
            kind: KnobKind::Bool,
            default: "false",
            help: "client-1 also calls mach_msg(RCV) on its send right to the service port twice a second: the kernel refuses with MACH_RCV_INVALID_NAME (only the receive right's holder receives)",
        },
        MachTaskInfo = KnobSpec {
            key: "mach.task_info",
            kind: KnobKind::Bool,
            default: "false",
            help: "client-1 sends a task_info request to its own task port (mach_task_self()) twice a second; the emulated kernel, the port's receiver, answers it (an emulated flavor: threads, names, receive rights)",
        },
        MachThreadTalk = KnobSpec {
            key: "mach.thread_talk",
            kind: KnobKind::Bool,
            default: "false",
            help: "client-1's two threads send each other messages through their own ports (one name space, a port per thread)",
        },
        MachProducerRate = own!("mach", ProducerRate, "producer.rate"),
        MachConsumerRate = own!("mach", ConsumerRate, "consumer.rate"),
        MachMsgSize = own!("mach", MsgSize, "msg.size"),
        MachProducerCount = own!("mach", ProducerCount, "producer.count"),
    ]
    ALPC [
        AlpcClients = KnobSpec {
            key: "alpc.clients",
            kind: KnobKind::Int { min: 1, max: ALPC_MAX_CLIENTS },
            default: "2",
            help: "client processes, each with its own channel (a pair of communication ports); read at start",
        },
        AlpcSmallMax = KnobSpec {
            key: "alpc.small_max",
            kind: KnobKind::Int { min: 64, max: 65495 },
            default: "256",
            help: "largest payload copied through the port's queue: 256 (the notes, 32-bit LPC), 512 (64-bit LPC), \
                   65495 (ALPC: 64 KiB - PORT_MESSAGE); the kernel reads it at start (r restarts)",
        },
        AlpcSectionSize = KnobSpec {
            key: "alpc.section_size",
            kind: KnobKind::Int { min: 0, max: 16 << 20 },
            default: "65536",
            help: "size of the section object each client asks for at connect (and the server gives for replies); \
                   0 = none: the client decides it needs no large messages, so they go the direct path; \
                   larger messages are read directly from the client; a change makes each client connect anew",
        },
        AlpcCallbacks = KnobSpec {
            key: "alpc.callbacks",
            kind: KnobKind::Bool,
            default: "false",
            help: "the server calls the client back (a nested LPC_REQUEST) on every 4th request, before replying",
        },
        AlpcMaxPoolUsage = KnobSpec {
            key: "alpc.max_pool_usage",
            kind: KnobKind::Int { min: 1024, max: 64 << 20 },
            default: "65536",
            help: "pool quota of a port in bytes (MaxPoolUsage); NT bounds no queue length, only this; read at start",
        },
        AlpcAccept = KnobSpec {
            key: "alpc.accept",
            kind: KnobKind::Bool,
            default: "true",
            help: "the server accepts connection requests (false: it refuses them, STATUS_PORT_CONNECTION_REFUSED)",
        },
        AlpcMix = KnobSpec {
            key: "alpc.mix",
            kind: KnobKind::Bool,
            default: "false",
            help: "clients cycle through 100 B, msg.size and twice the section size, so all three paths run at once",
        },
        AlpcPersonality = KnobSpec {
            key: "alpc.personality",
            kind: KnobKind::Choice(ALPC_PERSONALITIES),
            default: "lpc",
            help: "lpc = the notes' rules: 256-byte inline limit (alpc.small_max), sections only at connect; \
                   alpc = Vista+ ALPC: inline up to 64 KiB - PORT_MESSAGE, sections created on a connected port at any time; \
                   the kernel switches at run time",
        },
        AlpcProducerRate = own!("alpc", ProducerRate, "producer.rate"),
        AlpcConsumerRate = own!("alpc", ConsumerRate, "consumer.rate"),
        AlpcMsgSize = own!("alpc", MsgSize, "msg.size"),
        AlpcProducerCount = own!("alpc", ProducerCount, "producer.count"),
    ]
    SOCKET [
        SocketFamily = KnobSpec {
            key: "socket.family",
            kind: KnobKind::Choice(SOCKET_FAMILIES),
            default: "unix",
            help: "unix = a stream socket named by a path in the run dir; tcp = 127.0.0.1 at a port the kernel picks; both = one listener of each (clients alternate). Read at start and restart",
        },
        SocketClients = KnobSpec {
            key: "socket.clients",
            kind: KnobKind::Int { min: 1, max: 4 },
            default: "1",
            help: "client processes that connect to the one listener (each gets its own connected socket). Read at start",
        },
        SocketNodelay = KnobSpec {
            key: "socket.nodelay",
            kind: KnobKind::Bool,
            default: "false",
            help: "TCP_NODELAY on the clients' TCP sockets: send small segments at once instead of coalescing them (Nagle)",
        },
        SocketBuffer = KnobSpec {
            key: "socket.buffer",
            kind: KnobKind::Int { min: 0, max: 4 << 20 },
            default: "32768",
            help: "SO_SNDBUF of each client and SO_RCVBUF of the listener, in bytes (the kernel doubles it); 0 = kernel defaults and TCP autotuning (megabytes: a stalled server then takes long to block a client)",
        },
        SocketRemote = KnobSpec {
            key: "socket.remote",
            kind: KnobKind::Choice(SOCKET_REMOTES),
            default: "none",
            help: "netns = one more client in a network namespace of the run's own, joined by a veth pair (10.231.x.1/30 <-> .2), connecting to the TCP port across it; needs root (CAP_NET_ADMIN). Read at start and restart",
        },
        SocketProducerRate = own!("socket", ProducerRate, "producer.rate"),
        SocketConsumerRate = own!("socket", ConsumerRate, "consumer.rate"),
        SocketMsgSize = own!("socket", MsgSize, "msg.size"),
        SocketProducerCount = own!("socket", ProducerCount, "producer.count"),
    ]
}

/// The common knobs a mechanism's snapshot shows beside its own.
pub const SHOWN_COMMON: &[KnobId] = &[KnobId::ProducerRate, KnobId::ConsumerRate, KnobId::MsgSize];

impl KnobId {
    pub const COUNT: usize = Self::ALL.len();

    pub const fn spec(self) -> &'static KnobSpec {
        &SPECS[self as usize]
    }

    pub const fn key(self) -> &'static str {
        self.spec().key
    }

    /// Its index in `ALL`, in `Knobs` and in the control page.
    pub const fn slot(self) -> usize {
        self as usize
    }

    /// The knob named `key`; the error lists every valid key.
    pub fn parse(key: &str) -> Result<KnobId, String> {
        let key = key.trim();
        Self::ALL.iter().copied().find(|k| k.key() == key).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().filter(|k| k.base().is_none()).map(|k| k.key()).collect();
            format!(
                "unknown knob {key:?}; knobs are: {}, and MECHANISM.KNOB for one mechanism's own {} (e.g. pipe.consumer.rate)",
                names.join(", "),
                Self::COMMON.iter().map(|k| k.key()).collect::<Vec<_>>().join(" / ")
            )
        })
    }

    /// `v` as the user writes it (`max`, `true`, `timeout:10`, …).
    pub fn format(self, v: u64) -> String {
        self.spec().format(v)
    }

    /// The common knob a mechanism's own knob stands in for.
    pub const fn base(self) -> Option<KnobId> {
        match self.spec().kind {
            KnobKind::Own(b) => Some(b),
            _ => None,
        }
    }

    /// The mechanism's own copy of common knob `self`, among `group` (a
    /// mechanism's knobs, e.g. `KnobId::PIPE`).
    pub fn own_in(self, group: &[KnobId]) -> Option<KnobId> {
        group.iter().copied().find(|k| k.base() == Some(self))
    }
}

/// The value a mechanism with knobs `group` goes by: its own copy of
/// `id` when set, else `id` itself. `get` reads a knob.
pub fn effective(group: &[KnobId], id: KnobId, get: impl Fn(KnobId) -> u64) -> u64 {
    match id.own_in(group).map(&get) {
        Some(v) if v != GLOBAL => v,
        _ => get(id),
    }
}

impl std::fmt::Display for KnobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// Parse one `KEY=VALUE` assignment; the error names the valid choices.
pub fn parse_assignment(assignment: &str) -> Result<(KnobId, u64), String> {
    let (key, value) =
        assignment.split_once('=').ok_or_else(|| format!("--set expects KEY=VALUE, got {assignment:?}"))?;
    let id = KnobId::parse(key)?;
    Ok((id, id.spec().parse(value)?))
}

pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "on" | "yes" | "1" => Some(true),
        "false" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

impl KnobSpec {
    /// The accepted values, for error messages and `ipcscope knobs`.
    pub fn range(&self) -> String {
        match self.kind {
            KnobKind::Rate { max } => format!("0..{max} or max"),
            KnobKind::Int { min, max } if max >= u64::MAX >> 1 => format!("{min}.."),
            KnobKind::Int { min, max } => format!("{min}..{max}"),
            KnobKind::Bool => "true|false".into(),
            KnobKind::Choice(c) => c.join("|"),
            KnobKind::ChoiceArg { choices, with_arg, arg } => choices
                .iter()
                .map(|c| if *c == with_arg { format!("{c}:{}..{}", arg.0, arg.1) } else { c.to_string() })
                .collect::<Vec<_>>()
                .join("|"),
            KnobKind::Own(base) => format!("global|{}", base.spec().range()),
        }
    }

    pub fn parse(&self, s: &str) -> Result<u64, String> {
        let bad = || format!("bad value {s:?} for {}: expected {}", self.key, self.range());
        let s = s.trim();
        match self.kind {
            KnobKind::Rate { max } => {
                if s == "max" {
                    return Ok(RATE_MAX);
                }
                let v: u64 = s.parse().map_err(|_| bad())?;
                if v > max {
                    return Err(bad());
                }
                Ok(v)
            }
            KnobKind::Int { min, max } => {
                let v = parse_size(s).ok_or_else(bad)?;
                if v < min || v > max {
                    return Err(bad());
                }
                Ok(v)
            }
            KnobKind::Bool => parse_bool(s).map(u64::from).ok_or_else(bad),
            KnobKind::Choice(c) => c.iter().position(|x| *x == s).map(|i| i as u64).ok_or_else(bad),
            KnobKind::ChoiceArg { choices, with_arg, arg } => {
                let (word, n) = match s.split_once(':') {
                    Some((w, n)) => (w, Some(n)),
                    None => (s, None),
                };
                let i = choices.iter().position(|x| *x == word).ok_or_else(bad)? as u64;
                match (word == with_arg, n) {
                    (true, Some(n)) => {
                        let n: u32 = n.parse().map_err(|_| bad())?;
                        if n < arg.0 || n > arg.1 {
                            return Err(bad());
                        }
                        Ok(i << 32 | n as u64)
                    }
                    (true, None) => Err(bad()),
                    (false, Some(_)) => Err(bad()),
                    (false, None) => Ok(i << 32),
                }
            }
            KnobKind::Own(_) if s == "global" => Ok(GLOBAL),
            KnobKind::Own(base) => base.spec().parse(s).map_err(|_| bad()),
        }
    }

    pub fn format(&self, v: u64) -> String {
        match self.kind {
            KnobKind::Rate { .. } if v == RATE_MAX => "max".into(),
            KnobKind::Rate { .. } | KnobKind::Int { .. } => v.to_string(),
            KnobKind::Bool => (v != 0).to_string(),
            KnobKind::Choice(c) => c.get(v as usize).unwrap_or(&"?").to_string(),
            KnobKind::ChoiceArg { choices, with_arg, .. } => {
                let word = choices.get((v >> 32) as usize).unwrap_or(&"?");
                if *word == with_arg {
                    format!("{word}:{}", v as u32)
                } else {
                    word.to_string()
                }
            }
            KnobKind::Own(_) if v == GLOBAL => "global".into(),
            KnobKind::Own(base) => base.format(v),
        }
    }

    pub fn default_value(&self) -> u64 {
        // Defaults are written by us and checked by a unit test.
        self.parse(self.default).unwrap_or(0)
    }
}

/// Sizes may be written as `4096`, `4k`, `64K`, `1m`, `1MiB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let (num, mul) = if let Some(n) = lower.strip_suffix("kib").or(lower.strip_suffix('k')) {
        (n.to_string(), 1024)
    } else if let Some(n) = lower.strip_suffix("mib").or(lower.strip_suffix('m')) {
        (n.to_string(), 1024 * 1024)
    } else {
        (lower, 1)
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// A full set of knob values, one per `KnobId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    values: [u64; KnobId::COUNT],
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { values: std::array::from_fn(|i| KnobId::ALL[i].spec().default_value()) }
    }
}

impl Knobs {
    pub fn get(&self, id: KnobId) -> u64 {
        self.values[id.slot()]
    }

    pub fn set(&mut self, id: KnobId, v: u64) {
        self.values[id.slot()] = v;
    }

    /// Apply one `KEY=VALUE` assignment; the error names the valid choices.
    pub fn set_str(&mut self, assignment: &str) -> Result<(), String> {
        let (id, v) = parse_assignment(assignment)?;
        self.set(id, v);
        Ok(())
    }

    /// Every knob with its value, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (KnobId, u64)> + '_ {
        KnobId::ALL.iter().map(|&id| (id, self.get(id)))
    }

    /// What a mechanism with knobs `group` goes by (see `effective`).
    pub fn effective(&self, group: &[KnobId], id: KnobId) -> u64 {
        effective(group, id, |k| self.get(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        for &id in KnobId::ALL {
            let k = id.spec();
            assert!(k.parse(k.default).is_ok(), "{}: default {:?} does not parse", k.key, k.default);
        }
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<_> = KnobId::ALL.iter().map(|k| k.key()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), KnobId::COUNT);
    }

    #[test]
    fn every_id_round_trips_through_its_key() {
        for (i, &id) in KnobId::ALL.iter().enumerate() {
            assert_eq!(id.slot(), i);
            assert_eq!(KnobId::parse(id.key()), Ok(id));
            assert_eq!(KnobId::parse(&format!(" {id} ")), Ok(id));
        }
    }

    #[test]
    fn groups_cover_every_knob_once() {
        let groups = [
            KnobId::COMMON,
            KnobId::PIPE,
            KnobId::FIFO,
            KnobId::SHM,
            KnobId::MQ,
            KnobId::MACH,
            KnobId::ALPC,
            KnobId::SOCKET,
        ];
        let all: Vec<KnobId> = groups.concat();
        assert_eq!(all, KnobId::ALL);
        for &id in KnobId::ALL {
            let (group, _) = id.key().split_once('.').unwrap();
            let own = [
                ("pipe", KnobId::PIPE),
                ("fifo", KnobId::FIFO),
                ("shm", KnobId::SHM),
                ("mq", KnobId::MQ),
                ("mach", KnobId::MACH),
                ("alpc", KnobId::ALPC),
                ("socket", KnobId::SOCKET),
            ];
            let in_group = own.iter().find(|(g, _)| *g == group).map_or(KnobId::COMMON, |(_, ids)| ids);
            assert!(in_group.contains(&id), "{id} is in the wrong group");
        }
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_knobs() {
        let e = KnobId::parse("pipe.colour").unwrap_err();
        assert!(e.contains("pipe.colour") && e.contains("producer.rate") && e.contains("socket.buffer"), "{e}");
        assert!(KnobId::parse("").is_err());
        assert!(Knobs::default().set_str("nope=1").unwrap_err().contains("mach.qlimit"));
    }

    #[test]
    fn parse_and_format() {
        let mut k = Knobs::default();
        k.set_str("producer.rate=max").unwrap();
        assert_eq!(k.get(KnobId::ProducerRate), RATE_MAX);
        k.set_str("msg.size=4k").unwrap();
        assert_eq!(k.get(KnobId::MsgSize), 4096);
        assert!(k.set_str("msg.size=1").unwrap_err().contains("32.."));
        assert!(k.set_str("nope=1").unwrap_err().contains("producer.rate"));
        assert!(k.set_str("novalue").is_err());
        assert_eq!(parse_assignment(" mach.send_mode = timeout:10"), Ok((KnobId::MachSendMode, 1 << 32 | 10)));
        let mode = KnobId::MachSendMode;
        assert_eq!(mode.format(mode.spec().parse("timeout:10").unwrap()), "timeout:10");
        assert!(mode.spec().parse("timeout").is_err());
        assert!(mode.spec().parse("block:3").is_err());
    }

    /// `pipe.consumer.rate` stands in for `consumer.rate` in the pipe
    /// only; `global` (the default) follows the common knob.
    #[test]
    fn a_mechanisms_own_copy_overrides_the_common_knob() {
        let mut k = Knobs::default();
        k.set_str("consumer.rate=500").unwrap();
        assert_eq!(k.get(KnobId::PipeConsumerRate), GLOBAL);
        assert_eq!(k.effective(KnobId::PIPE, KnobId::ConsumerRate), 500);
        k.set_str("pipe.consumer.rate=0").unwrap();
        assert_eq!(k.effective(KnobId::PIPE, KnobId::ConsumerRate), 0);
        assert_eq!(k.effective(KnobId::SHM, KnobId::ConsumerRate), 500);
        assert_eq!(k.effective(KnobId::PIPE, KnobId::ProducerRate), 1000);
        k.set_str("pipe.consumer.rate=global").unwrap();
        assert_eq!(k.effective(KnobId::PIPE, KnobId::ConsumerRate), 500);
        k.set_str("mach.producer.rate=max").unwrap();
        assert_eq!(k.effective(KnobId::MACH, KnobId::ProducerRate), RATE_MAX);
        let id = KnobId::MqMsgSize;
        assert_eq!(id.format(GLOBAL), "global");
        assert_eq!(id.format(id.spec().parse("4k").unwrap()), "4096");
        let e = id.spec().parse("1").unwrap_err();
        assert!(e.contains("mq.msg.size") && e.contains("global|32.."), "{e}");
        // Every mechanism has its own copy of every common knob.
        for group in [KnobId::PIPE, KnobId::FIFO, KnobId::SHM, KnobId::MQ, KnobId::MACH, KnobId::ALPC, KnobId::SOCKET] {
            for &c in KnobId::COMMON {
                assert!(c.own_in(group).is_some(), "{c} in {group:?}");
            }
        }
    }

    #[test]
    fn defaults_fill_every_slot() {
        let k = Knobs::default();
        assert_eq!(k.iter().count(), KnobId::COUNT);
        assert_eq!(k.get(KnobId::ConsumerRate), RATE_MAX);
        assert_eq!(k.get(KnobId::SocketBuffer), 32768);
        assert_eq!(k.get(KnobId::PipeCloseUnused), 1);
    }
}
