//! The figures every mechanism's snapshot has in common: its channel's
//! fill, the integrity count, notes, and each process as /proc and its
//! telemetry slot show it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Channel {
    /// What the channel holds, counted against `capacity`; never more than
    /// `capacity` (what the kernel holds past it is `over`).
    pub depth: u64,
    pub capacity: u64,
    /// What depth and capacity count: `bytes`, `messages`, `slots`.
    pub unit: Unit,
    /// What the kernel holds past `capacity`, in the same unit: Mach
    /// messages kept past `qlimit` (`MACH_SEND_NOTIFY`), socket buffer
    /// memory the last `send()` took past `SO_SNDBUF`. 0 for the others.
    #[serde(default)]
    pub over: u64,
}

impl Channel {
    /// A kernel's count split at the limit: `depth` the part within it,
    /// `over` the rest.
    pub fn split(total: u64, capacity: u64, unit: Unit) -> Channel {
        let depth = total.min(capacity);
        Channel { depth, capacity, unit, over: total - depth }
    }

    /// The part within capacity, even from a recording made before `over`
    /// existed (whose depth could pass the capacity).
    pub fn within(&self) -> u64 {
        self.depth.min(self.capacity)
    }

    /// Everything past capacity.
    pub fn past(&self) -> u64 {
        self.over + (self.depth - self.within())
    }

    /// At its limit: a sender now waits (or, for Mach, is kept).
    pub fn full(&self) -> bool {
        self.capacity > 0 && self.depth >= self.capacity
    }
}

/// What a channel's depth and capacity count. In JSON the lowercase word.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    #[default]
    Bytes,
    Messages,
    Slots,
}

impl Unit {
    /// The word as JSON has it (and as the gauge prints it).
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Messages => "messages",
            Unit::Slots => "slots",
        }
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lets a test write `assert_eq!(channel.unit, "bytes")` against the JSON word.
impl PartialEq<&str> for Unit {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Integrity {
    pub delivered: u64,
    pub lost: u64,
    pub corrupt: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Bytes or messages that were not ours (an outside writer).
    pub foreign: u64,
}

/// Something a class should notice. The probe names the message and its
/// arguments; the panel builds the sentence in the reader's language.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Note {
    pub t_ms: u64,
    /// The condition, noted once per start (`eof`, `sigpipe`, …).
    pub key: String,
    /// The message's key in assets/locales.toml `[notes]` (`note_pipe_eof`);
    /// empty in recordings made before notes had keys.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msg: String,
    /// The message's arguments, filled into its `{name}` places.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, String)>,
    /// The English sentence, for JSON readers and older replays.
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessSnapshot {
    /// `producer`, `consumer`, `server`, `client-1`, …
    pub role: String,
    /// 0 before the process has started.
    pub pid: i32,
    /// State letter from /proc/PID/stat (`R`, `S`, `T`, `Z`, …), or `-` when
    /// the process has exited.
    pub state: String,
    /// /proc/PID/wchan: where in the kernel it sleeps (`0` when running).
    pub wchan: String,
    /// Number of the system call it is in (/proc/PID/syscall), if readable.
    pub syscall: Option<i64>,
    /// The call the worker says it is in (`write()`, `read()`, …).
    pub op: String,
    /// How long it has been in that call, ms.
    pub op_ms: u64,
    pub sent: u64,
    pub received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Messages per second over the last second.
    pub send_rate: f64,
    pub recv_rate: f64,
    pub errors: Errors,
    /// How it ended, e.g. `exit 0` or `killed by SIGPIPE`.
    pub exit: Option<String>,
    pub fds: Vec<FdEntry>,
    pub events: Vec<Event>,
    /// Its network namespace: the inode of `/proc/PID/ns/net` (absent once
    /// it has exited, and in recordings made before it was read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<u64>,
}

impl ProcessSnapshot {
    pub fn alive(&self) -> bool {
        self.pid > 0 && self.exit.is_none()
    }

    /// What its role name says it is.
    pub fn role_kind(&self) -> Role {
        Role::parse(&self.role)
    }

    /// Where in the kernel it sleeps, read from its wait channel (whatever
    /// its state letter; see `waiting` for the state-aware reading).
    pub fn sleeps_in(&self) -> Wait {
        Wait::of_wchan(&self.wchan)
    }

    /// Its state letter and wait channel read together.
    pub fn waiting(&self) -> Wait {
        Wait::of(&self.state, &self.wchan)
    }

    /// Its part in the story a class follows: blocked on a full channel,
    /// waiting for data, held by step mode, paused, … Read from its state,
    /// wait channel, current call and role, and the run's own modes.
    pub fn party(&self, run_paused: bool) -> Party {
        if self.pid <= 0 {
            return Party::NotStarted;
        }
        // Read once: a frame asks every process's part several times.
        let w = self.waiting();
        if self.exit.is_some() || matches!(w, Wait::Exited | Wait::Zombie) {
            return Party::Exited;
        }
        if run_paused || w == Wait::Stopped {
            return Party::Paused;
        }
        if self.op.starts_with("step") {
            return Party::StepHeld;
        }
        let op = self.op_kind();
        let blocked = self.state == "D" || (self.state == "S" && w.is_ipc_block());
        // Its rate knob is 0: it sleeps on purpose, not to keep a rate.
        if op == Op::Stalled && !blocked {
            return Party::Stalled;
        }
        if w == Wait::FifoOpen || op == Op::Open && blocked {
            return Party::WaitingPartner;
        }
        if blocked {
            return match op {
                Op::Write | Op::Send => Party::BlockedFull,
                Op::Read | Op::Recv => Party::WaitingData,
                // The call is not named: the role says which side it is.
                _ => match self.role_kind() {
                    Role::Producer | Role::Writer(_) | Role::Client(_) => Party::BlockedFull,
                    _ => Party::WaitingData,
                },
            };
        }
        match (w, op) {
            (Wait::Running | Wait::Disk, _) => Party::Running,
            // A consumer at rate 0 sleeps between looks at its knob, in
            // nanosleep or (the socket server) a poll() with a timeout.
            (Wait::Paced, _) | (_, Op::Stalled) => Party::Pacing,
            // A server waiting in poll() for its clients' data.
            (Wait::Poll, Op::Poll) => Party::WaitingData,
            _ => Party::Idle,
        }
    }

    /// Sleeping (`S`), interruptibly: in a call or pacing itself.
    pub fn sleeping(&self) -> bool {
        self.state == "S"
    }

    /// True when it sleeps in an IPC call that cannot proceed.
    pub fn blocked(&self) -> bool {
        is_blocked(&self.state, &self.wchan)
    }

    /// The call the worker says it is in.
    pub fn op_kind(&self) -> Op {
        Op::parse(&self.op)
    }

    /// How it ended, if it has.
    pub fn exit_cause(&self) -> Option<ExitCause> {
        self.exit.as_deref().map(ExitCause::parse)
    }
}

/// A process's part, from its role name (`producer`, `writer-2`,
/// `client-1`, …). The name stays the JSON contract; this is its reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer,
    Consumer,
    Reader,
    /// `writer-N`.
    Writer(u32),
    Server,
    /// `client-N`.
    Client(u32),
    Other,
}

impl Role {
    pub fn parse(role: &str) -> Role {
        let numbered = |prefix: &str| role.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok();
        match role {
            "producer" => Role::Producer,
            "consumer" => Role::Consumer,
            "reader" => Role::Reader,
            "server" => Role::Server,
            _ => {
                if let Some(n) = numbered("writer") {
                    Role::Writer(n)
                } else if let Some(n) = numbered("client") {
                    Role::Client(n)
                } else {
                    Role::Other
                }
            }
        }
    }

    pub fn is_client(self) -> bool {
        matches!(self, Role::Client(_))
    }
}

/// A process's part as the classroom screen marks it. Each has its own
/// mark and words (`ui::widgets::party_span`), so "blocked: buffer full"
/// never looks like "waiting for data".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// A sender in a call that cannot go on: the channel is full.
    BlockedFull,
    /// A receiver in a call waiting for something to arrive.
    WaitingData,
    /// Waiting for the other end to open or connect.
    WaitingPartner,
    /// Held before its next send by step mode (`s`).
    StepHeld,
    /// Its rate knob is 0 (`consumer.rate=0`): it does not read (or send)
    /// at all: the stall a class sets up to fill the channel.
    Stalled,
    /// Stopped with the run (`space`) or by SIGSTOP.
    Paused,
    /// Sleeping between messages to keep its rate.
    Pacing,
    Running,
    /// Alive, in none of the above (polling, sleeping elsewhere).
    Idle,
    Exited,
    NotStarted,
}

impl Party {
    /// How much a class should see it, for ordering a panel's parties:
    /// 0 a sender held by a full channel, 1 a party that holds the flow up
    /// or ended, 2 the rest.
    pub fn rank(self) -> u8 {
        match self {
            Party::BlockedFull => 0,
            Party::WaitingPartner | Party::StepHeld | Party::Paused | Party::Exited => 1,
            _ => 2,
        }
    }

    /// The locale key of its words.
    pub fn label_key(self) -> &'static str {
        match self {
            Party::BlockedFull => "party_full",
            Party::WaitingData => "party_empty",
            Party::WaitingPartner => "party_partner",
            Party::StepHeld => "party_step",
            Party::Stalled => "party_stalled",
            Party::Paused => "party_paused",
            Party::Pacing => "party_pacing",
            Party::Running => "party_running",
            Party::Idle => "party_idle",
            Party::Exited => "party_exited",
            Party::NotStarted => "party_not_started",
        }
    }
}

/// The call a worker reports it is in (its `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    Read,
    Send,
    Recv,
    Open,
    /// In poll(), waiting for any of its descriptors.
    Poll,
    /// Not reading on purpose: its rate is 0 (the monitor's `stalled`).
    Stalled,
    Other,
}

impl Op {
    pub fn parse(op: &str) -> Op {
        match op.split('(').next().unwrap_or("") {
            "write" => Op::Write,
            "read" => Op::Read,
            "send" => Op::Send,
            "recv" => Op::Recv,
            "open" => Op::Open,
            "poll" => Op::Poll,
            "stalled" => Op::Stalled,
            _ => Op::Other,
        }
    }
}

/// How a worker ended, from the exit text the monitor wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitCause {
    /// `exit N` (with or without the last line of its log).
    Code(i32),
    /// `killed by SIGNAME`.
    Signal(String),
}

impl ExitCause {
    pub fn parse(exit: &str) -> ExitCause {
        if let Some(sig) = exit.strip_prefix("killed by ") {
            return ExitCause::Signal(sig.to_string());
        }
        let code = exit.strip_prefix("exit ").and_then(|r| r.split(':').next()).and_then(|c| c.trim().parse().ok());
        ExitCause::Code(code.unwrap_or(-1))
    }

    /// Killed by SIGPIPE: it wrote where nobody could read.
    pub fn sigpipe(&self) -> bool {
        matches!(self, ExitCause::Signal(s) if s == "SIGPIPE")
    }
}

/// Where a process waits, read from its state letter and its kernel wait
/// channel (/proc/PID/wchan), so panels never read wchan text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    Running,
    Stopped,
    Zombie,
    Disk,
    Exited,
    /// In a pipe or FIFO write, the buffer full.
    PipeWrite,
    /// In a pipe or FIFO read, the buffer empty.
    PipeRead,
    /// In a FIFO's open(), waiting for the other end.
    FifoOpen,
    /// In mq_timedsend / mq_timedreceive.
    MqWait,
    Futex,
    /// In nanosleep: pacing itself.
    Paced,
    /// In a socket call.
    Socket,
    Poll,
    Sleeping,
}

impl Wait {
    /// The wait channel alone.
    pub fn of_wchan(wchan: &str) -> Wait {
        let by_wchan = [
            ("pipe_write", Wait::PipeWrite),
            ("pipe_read", Wait::PipeRead),
            ("wait_for_partner", Wait::FifoOpen),
            ("wq_sleep", Wait::MqWait),
            ("futex", Wait::Futex),
            ("nanosleep", Wait::Paced),
            ("unix_", Wait::Socket),
            ("skb_wait", Wait::Socket),
            ("wait_woken", Wait::Socket),
            ("sock_alloc_send", Wait::Socket),
            ("poll", Wait::Poll),
        ];
        by_wchan.iter().find(|(w, _)| wchan.contains(w)).map_or(Wait::Sleeping, |(_, k)| *k)
    }

    pub fn of(state: &str, wchan: &str) -> Wait {
        match state {
            "R" => Wait::Running,
            "T" | "t" => Wait::Stopped,
            "Z" => Wait::Zombie,
            "D" => Wait::Disk,
            "-" | "" => Wait::Exited,
            _ => Wait::of_wchan(wchan),
        }
    }

    /// Its label key (see assets/locales.toml).
    pub fn label_key(self) -> &'static str {
        match self {
            Wait::Running => "st_running",
            Wait::Stopped => "st_stopped",
            Wait::Zombie => "st_zombie",
            Wait::Disk => "st_disk",
            Wait::Exited => "st_exited",
            Wait::PipeWrite => "st_blocked_write",
            Wait::PipeRead => "st_blocked_read",
            Wait::FifoOpen => "st_blocked_open",
            Wait::MqWait => "st_blocked_mq",
            Wait::Futex => "st_blocked_futex",
            Wait::Paced => "st_paced",
            Wait::Socket => "st_blocked_socket",
            Wait::Poll => "st_poll",
            Wait::Sleeping => "st_sleeping",
        }
    }

    /// An IPC call that cannot proceed (not pacing, not polling).
    pub fn is_ipc_block(self) -> bool {
        matches!(self, Wait::PipeWrite | Wait::PipeRead | Wait::FifoOpen | Wait::MqWait | Wait::Futex | Wait::Socket)
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Errors {
    pub epipe: u64,
    pub eagain: u64,
    pub etimedout: u64,
    pub other: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FdEntry {
    pub fd: i32,
    /// readlink of /proc/PID/fd/N: `pipe:[123]`, a path, `socket:[9]`, …
    pub target: String,
    /// `r`, `w` or `rw`, from the flags in /proc/PID/fdinfo/N.
    pub mode: String,
}

/// One system call (or emulated kernel call) a worker recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    pub t_ms: u64,
    pub text: String,
}

/// A short reading of a state letter plus wait channel, as a label key
/// (see assets/locales.toml): "BLOCKED in write", "waiting in read", …
pub fn describe(state: &str, wchan: &str) -> &'static str {
    Wait::of(state, wchan).label_key()
}

/// True when the process sleeps in an IPC call that cannot proceed (as
/// opposed to pacing itself or polling).
pub fn is_blocked(state: &str, wchan: &str) -> bool {
    state == "D" || (state == "S" && Wait::of(state, wchan).is_ipc_block())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON keeps the contract's words; the types read them back.
    #[test]
    fn typed_facts_keep_the_json_words() {
        let c = Channel { depth: 1, capacity: 2, unit: Unit::Messages, over: 0 };
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(j, r#"{"depth":1,"capacity":2,"unit":"messages","over":0}"#);
        // Recordings made before `over` still read.
        assert_eq!(
            serde_json::from_str::<Channel>(r#"{"depth":0,"capacity":0,"unit":"slots"}"#).unwrap().unit,
            Unit::Slots
        );
        assert_eq!(Role::parse("writer-2"), Role::Writer(2));
        assert_eq!(Role::parse("client-1"), Role::Client(1));
        assert_eq!(Role::parse("reader"), Role::Reader);
        assert!(ExitCause::parse("killed by SIGPIPE").sigpipe());
        assert_eq!(ExitCause::parse("exit 1: write: EPIPE"), ExitCause::Code(1));
        assert_eq!(Op::parse("send()"), Op::Send);
        assert_eq!(Op::parse("stalled"), Op::Stalled);
        assert_eq!(Wait::of("S", "anon_pipe_write"), Wait::PipeWrite);
        assert_eq!(Wait::of("S", "pipe_wait_for_partner"), Wait::FifoOpen);
        assert_eq!(Wait::of("R", "anon_pipe_write"), Wait::Running);
        assert!(is_blocked("S", "wq_sleep") && !is_blocked("S", "hrtimer_nanosleep"));
    }

    /// The socket server waits for its clients' data in poll(), and with
    /// consumer.rate=0 looks at its knob from a poll() with a timeout.
    #[test]
    fn a_server_in_poll_waits_for_data() {
        let p = |op: &str, wchan: &str| ProcessSnapshot {
            role: "server".into(),
            pid: 7,
            state: "S".into(),
            wchan: wchan.into(),
            op: op.into(),
            ..ProcessSnapshot::default()
        };
        assert_eq!(p("poll()", "poll_schedule_timeout.constprop.0").party(false), Party::WaitingData);
        assert_eq!(p("stalled", "poll_schedule_timeout.constprop.0").party(false), Party::Stalled);
    }

    /// A reader stalled by its rate knob is not pacing itself: the class
    /// set it up to stop, and the screen says so.
    #[test]
    fn a_stalled_reader_is_not_pacing() {
        let p = |op: &str, wchan: &str| ProcessSnapshot {
            role: "consumer".into(),
            pid: 7,
            state: "S".into(),
            wchan: wchan.into(),
            op: op.into(),
            ..ProcessSnapshot::default()
        };
        assert_eq!(p("stalled", "hrtimer_nanosleep").party(false), Party::Stalled);
        assert_eq!(p("paced", "hrtimer_nanosleep").party(false), Party::Pacing);
        assert_eq!(p("read()", "anon_pipe_read").party(false), Party::WaitingData);
        assert_eq!(p("stalled", "hrtimer_nanosleep").party(true), Party::Paused);
    }

    #[test]
    fn a_channel_never_holds_more_than_its_capacity() {
        let c = Channel::split(8, 5, Unit::Messages);
        assert_eq!((c.depth, c.capacity, c.over), (5, 5, 3));
        assert!(c.full());
        assert_eq!(Channel::split(3, 5, Unit::Messages).over, 0);
        // qlimit 0: everything queued is past the limit.
        assert_eq!(Channel::split(2, 0, Unit::Messages), Channel { depth: 0, capacity: 0, over: 2, ..c.clone() });
        // An old recording's depth past the capacity reads as within + past.
        let old = Channel { depth: 8, capacity: 5, unit: Unit::Messages, over: 0 };
        assert_eq!((old.within(), old.past()), (5, 3));
    }
}
