//! What every worker process shares: finding its run, its telemetry slot,
//! pacing itself to the rate knobs, step mode, and dying with the run.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::knobs::{KnobId, RATE_MAX};
use crate::message;
use crate::supervisor::{ENV_RUN_DIR, ENV_SUPERVISOR};
use crate::telemetry::{Op, Slot, Telemetry, WORKER_FD};

pub struct WorkerCtx {
    pub tel: Telemetry,
    pub slot: usize,
    pub supervisor: i32,
    pub run_dir: std::path::PathBuf,
    pub args: HashMap<String, String>,
    /// The mechanism's own knobs (`Info::knobs`): where it has its own
    /// copy of a common knob (`pipe.consumer.rate`), that one counts.
    pub own_knobs: &'static [KnobId],
}

/// Turn this process into a worker: name it, make sure it dies with the
/// run, map the telemetry page and announce its pid.
pub fn init(name: &str, slot: usize, args: Vec<(String, String)>) -> Result<WorkerCtx> {
    set_name(name);
    let supervisor: i32 = std::env::var(ENV_SUPERVISOR)
        .ok()
        .and_then(|s| s.parse().ok())
        .context("a worker is started by ipcscope itself, not by hand")?;
    let run_dir: std::path::PathBuf = std::env::var_os(ENV_RUN_DIR).map(Into::into).context("no run directory")?;
    // The death signal (SIGHUP, set before exec) now cleans up instead of
    // just killing us; armed before the check below so none is missed.
    death::arm(supervisor, &run_dir, &args);
    // PR_SET_PDEATHSIG was set before exec; if the supervisor died before
    // that, no signal will ever come, so check now.
    if nix::unistd::getppid().as_raw() != supervisor {
        bail!("supervisor {supervisor} is gone");
    }
    let tel = Telemetry::open(WORKER_FD)?;
    let ctx = WorkerCtx { tel, slot, supervisor, run_dir, args: args.into_iter().collect(), own_knobs: &[] };
    ctx.announce();
    Ok(ctx)
}

/// `comm` as `ps` shows it (cut to 15 bytes by the kernel).
pub fn set_name(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // Cut at the first NUL (a name never has one; the buffer always ends in one).
    if let Ok(c) = std::ffi::CStr::from_bytes_until_nul(&buf) {
        let _ = nix::sys::prctl::set_name(c);
    }
}

/// Restore the default SIGPIPE action (Rust ignores it before `main`), so
/// a write to a pipe nobody reads kills the writer as the textbook says.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler of ours, so no handler code has
    // to be async-signal-safe; nothing else in the process relies on
    // SIGPIPE being ignored (writes that must not die use MSG_NOSIGNAL).
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// A process forked from a worker has no parent-death signal pointing at
/// the supervisor; this thread ends it when the supervisor ends.
pub fn die_with(supervisor: i32) -> Result<()> {
    let Some(pidfd) = crate::monitor::procfs::pidfd_open(supervisor) else {
        // SAFETY: _exit ends the process at once without running
        // destructors or atexit handlers; the run is gone, nothing of ours
        // needs flushing.
        unsafe { libc::_exit(0) };
    };
    let watcher = std::thread::Builder::new().name("die-with".into()).spawn(move || {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        loop {
            // Blocks until the supervisor exits (the pidfd turns readable).
            match poll(&mut [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)], PollTimeout::NONE) {
                Ok(n) if n > 0 => break,
                Err(e) if e != nix::errno::Errno::EINTR => break,
                _ => {}
            }
        }
        // SAFETY: as above: the run is over, nothing to flush or unwind.
        unsafe { libc::_exit(0) };
    });
    // A thread refused (RLIMIT_NPROC counts threads too) is said, with the
    // limit, instead of a panic.
    watcher.map(drop).map_err(|e| {
        let limit = crate::supervisor::limit_text("RLIMIT_NPROC", nix::sys::resource::Resource::RLIMIT_NPROC, 1);
        anyhow::anyhow!(
            "cannot start the thread that ends this process with the run: {e}{}",
            limit.map(|l| format!(" ({l})")).unwrap_or_default()
        )
    })
}

impl WorkerCtx {
    pub fn me(&self) -> &Slot {
        self.tel.slot(self.slot)
    }

    /// Write our pid into our slot (a forked child calls this again after
    /// switching slots).
    pub fn announce(&self) {
        let s = self.me();
        s.pid.store(std::process::id() as u64, Relaxed);
        s.set_op(Op::Starting, self.tel.elapsed_us());
        crate::trace::hook::attach(&self.tel, self.slot, &self.run_dir);
    }

    /// A knob's current value for this mechanism (an atomic load or two
    /// from the control page).
    pub fn knob(&self, id: KnobId) -> u64 {
        self.tel.effective(self.own_knobs, id)
    }

    pub fn arg(&self, key: &str) -> Result<&str> {
        self.args.get(key).map(String::as_str).with_context(|| format!("missing --arg {key}=…"))
    }

    pub fn arg_usize(&self, key: &str) -> Result<usize> {
        self.arg(key)?.parse().with_context(|| format!("--arg {key} is not a number"))
    }

    /// A sender id unique within the run: the slot and its generation, so
    /// a restarted producer starting again at seq 0 is a new sender.
    pub fn sender_id(&self) -> u32 {
        (self.slot as u32) << 16 | (self.me().generation.load(Relaxed) as u32 & 0xffff)
    }

    pub fn op(&self, op: Op) {
        self.me().set_op(op, self.tel.elapsed_us());
        crate::trace::hook::op(op);
    }

    pub fn event(&self, call: u64, args: [u64; 3], ret: i64) {
        self.me().push_event(self.tel.elapsed_us(), call, args, ret);
    }

    pub fn msg_size(&self) -> usize {
        (self.knob(KnobId::MsgSize) as usize).clamp(message::MIN_LEN, 1 << 20)
    }

    /// Publish a verifier's counts.
    pub fn publish(&self, c: message::Counts) {
        let s = self.me();
        s.delivered.store(c.delivered, Relaxed);
        s.lost.store(c.lost, Relaxed);
        s.corrupt.store(c.corrupt, Relaxed);
        s.duplicated.store(c.duplicated, Relaxed);
        s.reordered.store(c.reordered, Relaxed);
        s.foreign.store(c.foreign, Relaxed);
    }

    pub fn count_sent(&self, bytes: usize) {
        crate::trace::hook::sent(bytes);
        let s = self.me();
        Slot::add(&s.sent_msgs, 1);
        Slot::add(&s.sent_bytes, bytes as u64);
    }

    pub fn count_received(&self, bytes: usize) {
        let s = self.me();
        Slot::add(&s.recv_msgs, 1);
        Slot::add(&s.recv_bytes, bytes as u64);
    }

    /// A consumer took message `m`: verify it, count it, publish the
    /// verifier's counts.
    pub fn receive(&self, verifier: &mut message::Verifier, m: &[u8]) {
        let _ = verifier.check(m);
        self.count_received(m.len());
        self.publish(verifier.counts());
    }

    pub fn count_error(&self, errno: i32) {
        crate::trace::hook::failed(errno as i64);
        let s = self.me();
        let c = match errno {
            libc::EPIPE => &s.err_epipe,
            libc::EAGAIN => &s.err_again,
            libc::ETIMEDOUT => &s.err_timedout,
            _ => &s.err_other,
        };
        Slot::add(c, 1);
        s.last_errno.store(errno as u64, Relaxed);
    }
}

/// Keeps a worker to its rate knob, re-reading the knob while it waits so
/// a change in the TUI takes effect at once. Sleeps in the kernel, never
/// spins.
pub struct Pacer {
    knob: KnobId,
    next: Instant,
    /// Producers hold here in step mode; consumers never do.
    stepped: bool,
}

/// Longest single sleep, so knob changes are seen within this time.
const NAP: Duration = Duration::from_millis(50);

impl Pacer {
    /// Paced by `producer.rate`, and held in step mode.
    pub fn producer() -> Pacer {
        Pacer { knob: KnobId::ProducerRate, next: Instant::now(), stepped: true }
    }

    /// Paced by `consumer.rate`.
    pub fn consumer() -> Pacer {
        Pacer { knob: KnobId::ConsumerRate, next: Instant::now(), stepped: false }
    }

    /// Wait until the next message is due. With the rate at 0 this waits
    /// (op `Stalled`) until someone raises it.
    pub fn wait(&mut self, ctx: &WorkerCtx) {
        loop {
            let rate = ctx.knob(self.knob);
            if rate == RATE_MAX {
                self.next = Instant::now();
                break;
            }
            if rate == 0 {
                ctx.op(Op::Stalled);
                std::thread::sleep(NAP);
                self.next = Instant::now();
                continue;
            }
            let now = Instant::now();
            if self.next <= now {
                let interval = Duration::from_nanos(1_000_000_000 / rate);
                // Far behind (after a stall or a pause): start afresh rather
                // than burst.
                self.next = if now - self.next > Duration::from_millis(100) { now } else { self.next } + interval;
                break;
            }
            ctx.op(Op::Paced);
            std::thread::sleep((self.next - now).min(NAP));
        }
        if self.stepped {
            step_gate(ctx);
        }
    }
}

/// Step mode: hold before each send until the TUI grants a token. Waits on
/// a futex on the token word, so a held worker costs nothing.
pub fn step_gate(ctx: &WorkerCtx) {
    let page = ctx.tel.page();
    let me = ctx.me();
    loop {
        if page.step_mode.load(Relaxed) == 0 {
            return;
        }
        let t = me.step_tokens.load(Relaxed);
        if t > 0 {
            if me.step_tokens.compare_exchange(t, t - 1, Relaxed, Relaxed).is_ok() {
                return;
            }
            continue;
        }
        ctx.op(Op::StepHold);
        futex_wait(&me.step_tokens, 0, Duration::from_millis(200));
    }
}

/// Sleep while `*word == expected` (or until the timeout).
pub fn futex_wait(word: &std::sync::atomic::AtomicU64, expected: u32, timeout: Duration) {
    let ts = libc::timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: timeout.subsec_nanos() as i64 };
    crate::trace::hook::syscall();
    let t0 = crate::trace::hook::start_time();
    // SAFETY: the low 32 bits of an aligned AtomicU64 (little-endian) are a
    // valid futex word in a shared mapping.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const _ as *const u32,
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
    crate::trace::hook::waited(crate::trace::format::CALL_FUTEX_WAIT, t0);
}

/// Wake workers waiting in `futex_wait` on `word`.
pub fn futex_wake(word: &std::sync::atomic::AtomicU64) {
    crate::trace::hook::syscall();
    // SAFETY: as in futex_wait: the low half of a live, aligned AtomicU64 is
    // a valid futex word; FUTEX_WAKE only reads its address.
    unsafe {
        libc::syscall(libc::SYS_futex, word as *const _ as *const u32, libc::FUTEX_WAKE, i32::MAX);
    }
}

/// The calling thread's `errno` after a failed libc call (0 if none).
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A read's result as the event log records it: the byte count, or minus
/// the errno.
pub fn io_ret(res: &io::Result<usize>) -> i64 {
    match res {
        Ok(n) => *n as i64,
        Err(e) => -(e.raw_os_error().unwrap_or(0) as i64),
    }
}

/// `write` the whole buffer, retrying short writes and EINTR.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        crate::trace::hook::syscall();
        // SAFETY: `buf` is readable for `buf.len()` bytes; write keeps no
        // pointer, and a bad `fd` is EBADF, not UB.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// One `read`, retrying EINTR. Ok(0) is end of file.
pub fn read_some(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        crate::trace::hook::syscall();
        // SAFETY: `buf` is writable for `buf.len()` bytes; read keeps no
        // pointer, and a bad `fd` is EBADF, not UB.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reads messages out of a byte stream (a pipe, a FIFO, a stream socket).
/// Bytes that are not one of our messages — someone else writing into a
/// FIFO — are skipped up to the next header and counted as foreign.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Read header and body together (`sized`): the last message's length
    /// is asked for in one read, so same-sized messages cost one system call.
    sized: bool,
    last_len: usize,
}

pub enum Frame<'a> {
    Message(&'a [u8]),
    Eof,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader { buf: vec![0; 64 * 1024], start: 0, end: 0, sized: false, last_len: 0 }
    }
}

impl FrameReader {
    /// A reader that asks for a whole message per `read` (the length of the
    /// one before), not the header and then the rest. The kernel still holds
    /// the backlog: a read takes one message, and only right after the
    /// message size shrinks does it take the start of the next one too.
    pub fn sized() -> Self {
        FrameReader { sized: true, ..FrameReader::default() }
    }

    /// Next message, reading from `fd` as needed. `verifier` is told about
    /// foreign bytes; `on_read` sees each read's result (for the event log).
    pub fn next(
        &mut self,
        fd: RawFd,
        verifier: &mut message::Verifier,
        mut on_read: impl FnMut(usize, &io::Result<usize>),
    ) -> io::Result<Frame<'_>> {
        loop {
            let avail = &self.buf[self.start..self.end];
            if avail.len() >= 4 {
                if let Some(skip) = find_magic(avail) {
                    if skip > 0 {
                        verifier.foreign(skip as u64);
                        self.start += skip;
                        continue;
                    }
                } else {
                    // Keep the last 3 bytes: they may begin a header.
                    let skip = avail.len() - 3;
                    verifier.foreign(skip as u64);
                    self.start += skip;
                }
            }
            let avail = &self.buf[self.start..self.end];
            if avail.len() >= message::HEADER_LEN {
                match message::peek_header(avail) {
                    Ok(h) if h.len as usize <= 1 << 21 => {
                        let len = h.len as usize;
                        if avail.len() >= len {
                            let s = self.start;
                            self.start += len;
                            self.last_len = len;
                            return Ok(Frame::Message(&self.buf[s..s + len]));
                        }
                        if len > self.buf.len() {
                            self.compact();
                            self.buf.resize(len, 0);
                        }
                    }
                    _ => {
                        // A magic that does not start a sane header: skip it.
                        verifier.corrupt();
                        self.start += 1;
                        continue;
                    }
                }
            }
            if self.end == self.buf.len() {
                self.compact();
            }
            // Read only what the next message still needs: a consumer takes
            // one message at a time out of the channel, so what is left in
            // the kernel's buffer is exactly the backlog.
            let have = self.end - self.start;
            let need = match message::peek_header(&self.buf[self.start..self.end]) {
                Ok(h) => (h.len as usize).saturating_sub(have),
                // Header and body in one read: the last message's length.
                Err(message::DecodeError::Truncated) if self.sized && self.last_len > have => self.last_len - have,
                Err(_) => message::HEADER_LEN.saturating_sub(have),
            }
            .max(1);
            if self.start + have + need > self.buf.len() {
                self.compact();
            }
            let want = need.min(self.buf.len() - self.end);
            let r = read_some(fd, &mut self.buf[self.end..self.end + want]);
            on_read(want, &r);
            match r? {
                0 => return Ok(Frame::Eof),
                n => self.end += n,
            }
        }
    }

    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

fn find_magic(b: &[u8]) -> Option<usize> {
    let m = message::MAGIC.to_le_bytes();
    b.windows(4).position(|w| w == m)
}

/// A worker's last duty when its supervisor dies without cleaning up (killed
/// outright, its janitor too): remove the run's named objects and its
/// directory, so a double fault still leaves nothing behind.
///
/// The parent-death signal is SIGHUP, caught here. A paused worker is
/// stopped and runs no handler, but the supervisor's death orphans the
/// workers' process group, and Linux then sends every member SIGHUP and
/// SIGCONT: the handler runs all the same. Everything the handler needs is
/// computed by `arm`; the handler itself only makes system calls.
pub mod death {
    use std::ffi::CString;
    use std::os::fd::{IntoRawFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::sync::OnceLock;

    use crate::supervisor::{rundir, ENV_JANITOR};

    /// The signal a worker gets when its supervisor dies (`PR_SET_PDEATHSIG`).
    pub const SIGNAL: libc::c_int = crate::supervisor::DEATH_SIGNAL;

    /// How long the handler waits for the supervisor to be fully gone (the
    /// death signal comes when its main thread ends), and for a live
    /// janitor to finish (it cleans up, and kills us, itself).
    const WAIT_MS: libc::c_int = 1000;

    struct Plan {
        supervisor: RawFd,
        /// -1 when there is no janitor to wait for.
        janitor: RawFd,
        dir: CString,
        manifest: CString,
        /// `/tmp/ipcscope-<uid>`, removed when empty (never `$XDG_RUNTIME_DIR`).
        parent: Option<CString>,
        /// `/ipcscope-<supervisor>-`: only names carrying it are removed.
        prefix: Vec<u8>,
        /// The object this worker was given (`--arg name=…`), removed even if
        /// the manifest is already gone.
        own: Option<Vec<u8>>,
    }

    static PLAN: OnceLock<Plan> = OnceLock::new();

    /// Prepare the handler and install it. Without a supervisor to watch the
    /// handler is not installed and the death signal simply kills.
    pub fn arm(supervisor: i32, run_dir: &Path, args: &[(String, String)]) {
        let Some(sup_fd) = crate::monitor::procfs::pidfd_open(supervisor) else { return };
        let janitor = std::env::var(ENV_JANITOR)
            .ok()
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|&p| is_janitor_of(p, supervisor))
            .and_then(crate::monitor::procfs::pidfd_open)
            .map_or(-1, |fd| fd.into_raw_fd());
        // Only a directory that is this run's, ours and private is emptied.
        let dir_ok = run_dir == rundir::dir_for(supervisor as u32)
            && std::fs::symlink_metadata(run_dir)
                .is_ok_and(|m| m.is_dir() && m.uid() == nix::unistd::getuid().as_raw() && m.mode() & 0o077 == 0);
        let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).ok();
        let (Some(dir), Some(manifest)) = (cstr(run_dir), cstr(&run_dir.join(rundir::MANIFEST))) else { return };
        let parent = run_dir
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n.as_bytes().starts_with(b"ipcscope-")))
            .and_then(cstr);
        let plan = Plan {
            supervisor: sup_fd.into_raw_fd(),
            janitor,
            dir: if dir_ok { dir } else { CString::default() },
            manifest,
            parent: parent.filter(|_| dir_ok),
            prefix: format!("/ipcscope-{supervisor}-").into_bytes(),
            own: args.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone().into_bytes()),
        };
        if PLAN.set(plan).is_err() {
            return;
        }
        // Every signal is blocked while the handler runs: the orphaned-group
        // SIGHUP and the death signal must not run it twice at once.
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_death),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::all(),
        );
        // SAFETY: the handler only makes async-signal-safe system calls on
        // data that is fixed before it is installed.
        let _ = unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGHUP, &action) };
        // A mask inherited from whoever started us must not hide it.
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGHUP);
        let _ = set.thread_unblock();
    }

    /// `pid` is the janitor `ipcscope janitor SUPERVISOR …` of our run.
    fn is_janitor_of(pid: i32, supervisor: i32) -> bool {
        let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
        let mut args = c.split(|&b| b == 0).skip(1);
        args.next() == Some(b"janitor") && args.next() == Some(supervisor.to_string().as_bytes())
    }

    /// Wait up to `ms` for a pidfd to become readable (its process ended).
    fn ended(fd: RawFd, ms: libc::c_int) -> bool {
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        loop {
            // Raw poll and errno: this runs in the death-signal handler.
            // SAFETY: `pfd` is one writable pollfd; poll is async-signal-safe.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r >= 0 {
                return r > 0;
            }
            // SAFETY: __errno_location returns this thread's errno slot,
            // always valid to read.
            if unsafe { *libc::__errno_location() } != libc::EINTR {
                return false;
            }
        }
    }

    extern "C" fn on_death(sig: libc::c_int) {
        let Some(p) = PLAN.get() else { return };
        if !ended(p.supervisor, WAIT_MS) {
            // The supervisor lives: an ordinary SIGHUP, which kills.
            // SAFETY: async-signal-safe calls; the signal is blocked until we
            // return, then it kills us with the default action.
            unsafe {
                libc::signal(sig, libc::SIG_DFL);
                libc::raise(sig);
            }
            return;
        }
        if p.janitor >= 0 {
            ended(p.janitor, WAIT_MS);
        }
        remove_objects(p);
        remove_dir(p);
        // SAFETY: the run is over; leave without running anything else.
        unsafe { libc::_exit(128 + sig) };
    }

    /// The objects the run's manifest lists, and our own.
    fn remove_objects(p: &Plan) {
        let mut buf = [0u8; 8192];
        let mut n = 0;
        // SAFETY: a valid C string; reads into our own buffer.
        unsafe {
            let fd = libc::open(p.manifest.as_ptr(), libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
            if fd >= 0 {
                while n < buf.len() {
                    let r = libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n);
                    if r <= 0 {
                        break;
                    }
                    n += r as usize;
                }
                libc::close(fd);
            }
        }
        for line in buf[..n].split(|&b| b == b'\n') {
            if let Some(name) = line.strip_prefix(b"shm ") {
                unlink_shm(p, name);
            } else if let Some(name) = line.strip_prefix(b"mq ") {
                unlink_mq(p, name);
            }
        }
        if let Some(own) = &p.own {
            unlink_shm(p, own);
            unlink_mq(p, own);
        }
    }

    /// `prefix` + `name` without its leading `/`, NUL-terminated, in `out`;
    /// None unless `name` is one of this run's names.
    fn c_name<'a>(p: &Plan, prefix: &[u8], name: &[u8], out: &'a mut [u8; 256]) -> Option<&'a [u8]> {
        let ok = name.starts_with(&p.prefix) && !name[1..].contains(&b'/') && !name.contains(&0);
        let len = prefix.len() + name.len();
        if !ok || len >= out.len() {
            return None;
        }
        out[..prefix.len()].copy_from_slice(prefix);
        out[prefix.len()..len - 1].copy_from_slice(&name[1..]);
        out[len - 1] = 0;
        Some(&out[..len])
    }

    fn unlink_shm(p: &Plan, name: &[u8]) {
        let mut buf = [0u8; 256];
        if let Some(path) = c_name(p, b"/dev/shm/", name, &mut buf) {
            // SAFETY: a NUL-terminated path (what shm_unlink does, minus libc).
            unsafe { libc::unlink(path.as_ptr().cast()) };
        }
    }

    fn unlink_mq(p: &Plan, name: &[u8]) {
        let mut buf = [0u8; 256];
        if let Some(n) = c_name(p, b"", name, &mut buf) {
            // SAFETY: a NUL-terminated name without the leading slash, as the
            // system call takes it (mq_unlink's libc wrapper strips it).
            unsafe { libc::syscall(libc::SYS_mq_unlink, n.as_ptr()) };
        }
    }

    /// Empty the run directory (FIFOs, sockets, logs, the manifest: all
    /// made by the run) and remove it, then its per-user parent if empty.
    fn remove_dir(p: &Plan) {
        if p.dir.is_empty() {
            return;
        }
        // SAFETY: system calls on a directory descriptor we open and close,
        // with a buffer of our own; entries are parsed within what the
        // kernel returned.
        unsafe {
            let dfd =
                libc::open(p.dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
            if dfd < 0 {
                return;
            }
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(dfd, &mut st) != 0 || st.st_uid != libc::getuid() {
                libc::close(dfd);
                return;
            }
            // Other workers empty it at the same time: a few passes, until
            // one finds nothing left to remove.
            for _ in 0..4 {
                libc::lseek(dfd, 0, libc::SEEK_SET);
                let mut removed = 0;
                let mut buf = [0u64; 1024];
                loop {
                    let n = libc::syscall(libc::SYS_getdents64, dfd, buf.as_mut_ptr(), std::mem::size_of_val(&buf));
                    if n <= 0 {
                        break;
                    }
                    let bytes = std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize);
                    let mut off = 0;
                    // struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name.
                    while off + 19 < bytes.len() {
                        let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
                        if reclen < 20 || off + reclen > bytes.len() {
                            break;
                        }
                        let kind = bytes[off + 18];
                        let name = &bytes[off + 19..off + reclen];
                        let is_dot = name.starts_with(b".\0") || name.starts_with(b"..\0");
                        let wanted = !is_dot && kind != libc::DT_DIR && name.contains(&0);
                        if wanted && libc::unlinkat(dfd, name.as_ptr().cast(), 0) == 0 {
                            removed += 1;
                        }
                        off += reclen;
                    }
                }
                if removed == 0 {
                    break;
                }
            }
            libc::close(dfd);
            libc::rmdir(p.dir.as_ptr());
            if let Some(parent) = &p.parent {
                libc::rmdir(parent.as_ptr());
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_this_runs_names_are_removed() {
            let p = Plan {
                supervisor: -1,
                janitor: -1,
                dir: CString::default(),
                manifest: CString::default(),
                parent: None,
                prefix: b"/ipcscope-42-".to_vec(),
                own: None,
            };
            let mut b = [0u8; 256];
            assert_eq!(
                c_name(&p, b"/dev/shm/", b"/ipcscope-42-ab-shm", &mut b),
                Some(&b"/dev/shm/ipcscope-42-ab-shm\0"[..])
            );
            assert_eq!(c_name(&p, b"", b"/ipcscope-42-ab-mq", &mut b), Some(&b"ipcscope-42-ab-mq\0"[..]));
            for bad in [&b"/ipcscope-421-ab-shm"[..], b"/other", b"/ipcscope-42-../x", b"/ipcscope-42-a\0b", b"", b"/"]
            {
                assert_eq!(c_name(&p, b"/dev/shm/", bad, &mut b), None, "{bad:?}");
            }
            let long = [b'a'; 300];
            let mut name = b"/ipcscope-42-".to_vec();
            name.extend_from_slice(&long);
            assert_eq!(c_name(&p, b"/dev/shm/", &name, &mut b), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sized reader takes a message per read once it knows the size, and
    /// leaves the rest in the pipe: the backlog the monitor sees.
    #[test]
    fn sized_frame_reader_reads_one_message_per_read_and_no_more() {
        use std::os::fd::AsRawFd;
        let (rd, wr) = nix::unistd::pipe().unwrap();
        let mut m = vec![0; 200];
        for seq in 0..4 {
            message::encode(&mut m, 1, seq);
            write_all(wr.as_raw_fd(), &m).unwrap();
        }
        let mut r = FrameReader::sized();
        let mut v = message::Verifier::new();
        let left = || {
            let mut n: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int into `n`; `rd` stays open.
            assert_eq!(unsafe { libc::ioctl(rd.as_raw_fd(), libc::FIONREAD, &mut n) }, 0);
            n as usize
        };
        let mut reads = Vec::new();
        for k in 0..3 {
            let mut calls = 0;
            match r.next(rd.as_raw_fd(), &mut v, |_, _| calls += 1).unwrap() {
                Frame::Message(b) => assert!(v.check(b).is_ok()),
                Frame::Eof => panic!("end of file"),
            }
            reads.push(calls);
            assert_eq!(left(), (3 - k) * 200, "read past message {k}");
        }
        // The first message: header, then the rest; then one read each.
        assert_eq!(reads, vec![2, 1, 1]);
    }

    #[test]
    fn frame_reader_skips_foreign_bytes() {
        use std::os::fd::AsRawFd;
        let (rd, wr) = nix::unistd::pipe().unwrap();
        let fds = [rd.as_raw_fd(), wr.as_raw_fd()];
        let mut m = vec![0; 64];
        message::encode(&mut m, 1, 0);
        write_all(fds[1], b"hi\n").unwrap();
        write_all(fds[1], &m).unwrap();
        message::encode(&mut m, 1, 1);
        write_all(fds[1], &m).unwrap();
        drop(wr);
        let mut r = FrameReader::default();
        let mut v = message::Verifier::new();
        let mut got = 0;
        while let Frame::Message(b) = r.next(fds[0], &mut v, |_, _| {}).unwrap() {
            let b = b.to_vec();
            v.check(&b).unwrap();
            got += 1;
        }
        drop(rd);
        assert_eq!(got, 2);
        let c = v.counts();
        assert_eq!((c.delivered, c.foreign, c.corrupt), (2, 3, 0));
    }
}
