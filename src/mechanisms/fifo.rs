//! The named pipe (FIFO): `mkfifo` puts a pipe into the file system, and
//! processes that are not parent and child — they share no descriptor —
//! meet by its path. `open()` blocks until the other side opens too.
//! Writes of up to `PIPE_BUF` bytes are atomic, so several writers never
//! interleave a message. Anyone with permission can join by path (a `cat`
//! in another terminal): the monitor finds every holder by scanning
//! `/proc/*/fd` for the FIFO's inode, without ever opening it.
//!
//! Telemetry `aux` words: reader and each writer — [0] the FIFO fd while
//! open (0 when closed).

use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{bail, Result};

use super::pipe::{errno_name, ret_str};
use super::worker::{self, Frame, FrameReader, Pacer, WorkerCtx};
use super::{pair, Info, Kind, Mechanism, Probe};
use crate::knobs::KnobId;
use crate::message::{self, Verifier};
pub use crate::model::detail::fifo::{mode_string, FifoDetail, FifoHolder};
use crate::monitor::{procfs, Calls, NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, MechanismSnapshot};
use crate::supervisor::{Supervisor, WorkerSpec};
use crate::telemetry::{ExitStatus, Op, Slot, Telemetry};

pub static INFO: Info =
    Info { kind: Kind::Fifo, knobs: KnobId::FIFO, new: || Box::new(Fifo::default()), worker: run_worker };

/// Writes up to this size are atomic on Linux.
pub const PIPE_BUF: u64 = libc::PIPE_BUF as u64;

const CALL_MKFIFO: u64 = 1;
const CALL_OPEN: u64 = 2;
const CALL_READ: u64 = 3;
const CALL_WRITE: u64 = 4;
const CALL_CLOSE: u64 = 5;

fn format_call(call: u64, a: [u64; 3], ret: i64) -> String {
    let r = ret_str(ret);
    match call {
        CALL_MKFIFO => format!("mkfifo(\"…/fifo\", 0600) = {r}"),
        CALL_OPEN => format!("open(\"…/fifo\", {}) = {r}", if a[0] == 0 { "O_RDONLY" } else { "O_WRONLY" }),
        CALL_READ => format!("read({}, {} bytes) = {r}", a[0], a[1]),
        CALL_WRITE => format!("write({}, {} bytes) = {r}", a[0], a[1]),
        CALL_CLOSE => format!("close({}) = {r}", a[0]),
        _ => format!("call {call}"),
    }
}

const CALLS: Calls = Calls { event: format_call, op: crate::monitor::default_op_name };

#[derive(Default)]
pub struct Fifo {
    reader: usize,
    writers: Vec<usize>,
    path: PathBuf,
}

impl Mechanism for Fifo {
    fn kind(&self) -> Kind {
        Kind::Fifo
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        self.reader = sup.alloc_slot()?;
        let n = sup.knobs().get(KnobId::FifoWriters).clamp(1, 8);
        self.writers = pair::alloc_slots(sup, n as usize)?;
        // Inside the run's private directory: removed with it.
        self.path = sup.dir_path().join("fifo");
        self.spawn(sup)
    }

    fn victim(&self) -> Option<usize> {
        Some(self.reader)
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        // The FIFO itself stays: the new processes meet at the same path.
        pair::kill(sup, self.writers.iter().copied().chain([self.reader]));
        self.spawn(sup)
    }

    fn producers(&self) -> Vec<usize> {
        self.writers.clone()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        let dir = sup.dir_path();
        Box::new(FifoProbe {
            reader: ProcTracker::new(self.reader, "reader", CALLS, dir),
            writers: self
                .writers
                .iter()
                .enumerate()
                .map(|(i, &s)| ProcTracker::new(s, &format!("writer-{}", i + 1), CALLS, dir))
                .collect(),
            reader_slot: self.reader,
            writer_slots: self.writers.clone(),
            path: self.path.clone(),
            history: VecDeque::new(),
            capacity: 0,
            users: HashMap::new(),
            notes: NoteLog::default(),
            holders: Vec::new(),
            holders_at: None,
            opens: None,
            mine: None,
        })
    }
}

impl Fifo {
    fn spawn(&mut self, sup: &mut Supervisor) -> Result<()> {
        let path = self.path.display().to_string();
        sup.spawn(&WorkerSpec::new(Kind::Fifo, "reader", self.reader).arg("path", &path))?;
        for (i, &s) in self.writers.iter().enumerate() {
            let role = format!("writer-{}", i + 1);
            sup.spawn(&WorkerSpec::new(Kind::Fifo, &role, s).arg("path", &path))?;
        }
        Ok(())
    }
}

fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "reader" => reader(ctx),
        r if r.starts_with("writer") => writer(ctx),
        _ => bail!("the FIFO has no role {role:?}"),
    }
}

/// `open(path, O_RDONLY or O_WRONLY)`: blocks until the other side opens.
fn open_fifo(ctx: &WorkerCtx, path: &CString, write: bool) -> Result<i32> {
    ctx.op(Op::Open);
    use nix::fcntl::OFlag;
    use std::os::fd::IntoRawFd;
    let flags = if write { OFlag::O_WRONLY } else { OFlag::O_RDONLY };
    loop {
        match nix::fcntl::open(path.as_c_str(), flags | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()) {
            Ok(fd) => {
                // Raw from here on: the worker closes it itself (close()).
                let fd = fd.into_raw_fd();
                ctx.event(CALL_OPEN, [write as u64, 0, 0], fd as i64);
                ctx.me().aux[0].store(fd as u64, Relaxed);
                return Ok(fd);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            // The reader has not made it yet.
            Err(nix::errno::Errno::ENOENT) if write => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                ctx.event(CALL_OPEN, [write as u64, 0, 0], -(e as i64));
                bail!("open: {}", errno_name(e as i32));
            }
        }
    }
}

fn close(ctx: &WorkerCtx, fd: i32) {
    ctx.me().aux[0].store(0, Relaxed);
    // SAFETY: `fd` came from open_fifo as a raw descriptor nothing else
    // owns, and is closed once; a stale number is only EBADF.
    let r = unsafe { libc::close(fd) };
    ctx.event(CALL_CLOSE, [fd as u64, 0, 0], r as i64);
}

fn reader(ctx: &mut WorkerCtx) -> Result<()> {
    let path = CString::new(ctx.arg("path")?)?;
    let r = nix::unistd::mkfifo(path.as_c_str(), nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR);
    ctx.event(CALL_MKFIFO, [0; 3], r.map_or_else(|e| -(e as i64), |()| 0));
    if let Err(e) = r {
        if e != nix::errno::Errno::EEXIST {
            bail!("mkfifo: {}", errno_name(e as i32));
        }
    }
    let mut pacer = Pacer::consumer();
    let mut verifier = Verifier::new();
    loop {
        let fd = open_fifo(ctx, &path, false)?;
        let mut frames = FrameReader::sized();
        loop {
            pacer.wait(ctx);
            ctx.op(Op::Read);
            let frame = frames.next(fd, &mut verifier, |want, res| {
                ctx.event(CALL_READ, [fd as u64, want as u64, 0], worker::io_ret(res));
            });
            match frame {
                Ok(Frame::Message(m)) => {
                    ctx.receive(&mut verifier, m);
                }
                Ok(Frame::Eof) => {
                    // Every writer has closed: open again and wait for the
                    // next one — the FIFO is still there.
                    Slot::add(&ctx.me().eof, 1);
                    ctx.publish(verifier.counts());
                    close(ctx, fd);
                    break;
                }
                Err(e) => {
                    ctx.count_error(e.raw_os_error().unwrap_or(0));
                    bail!("read: {e}");
                }
            }
        }
    }
}

fn writer(ctx: &mut WorkerCtx) -> Result<()> {
    let path = CString::new(ctx.arg("path")?)?;
    let sigpipe_default = ctx.knob(KnobId::FifoSigpipe) == 0;
    if sigpipe_default {
        worker::default_sigpipe();
    }
    let sender = ctx.sender_id();
    let count = ctx.knob(KnobId::ProducerCount);
    let mut pacer = Pacer::producer();
    let mut buf = vec![0u8; 1 << 20];
    let mut seq = 0u64;
    'reopen: loop {
        let fd = open_fifo(ctx, &path, true)?;
        loop {
            if count > 0 && seq >= count {
                close(ctx, fd);
                ctx.op(Op::Done);
                return Ok(());
            }
            pacer.wait(ctx);
            let size = ctx.msg_size();
            let msg = &mut buf[..size];
            message::encode(msg, sender, seq);
            ctx.op(Op::Write);
            match worker::write_all(fd, msg) {
                Ok(()) => {
                    ctx.event(CALL_WRITE, [fd as u64, size as u64, 0], size as i64);
                    ctx.count_sent(size);
                    seq += 1;
                }
                Err(e) => {
                    let code = e.raw_os_error().unwrap_or(0);
                    ctx.event(CALL_WRITE, [fd as u64, size as u64, 0], -(code as i64));
                    ctx.count_error(code);
                    if code != libc::EPIPE {
                        bail!("write: {}", errno_name(code));
                    }
                    // No reader left: wait in open() for the next one.
                    close(ctx, fd);
                    continue 'reopen;
                }
            }
        }
    }
}

struct FifoProbe {
    reader: ProcTracker,
    writers: Vec<ProcTracker>,
    reader_slot: usize,
    writer_slots: Vec<usize>,
    path: PathBuf,
    history: VecDeque<u64>,
    capacity: u64,
    users: HashMap<u32, String>,
    notes: NoteLog,
    /// (pid, fd) of every other process holding the FIFO, from the last
    /// scan of /proc.
    holders: Vec<(i32, i32)>,
    holders_at: Option<std::time::Instant>,
    /// Opens and closes of the FIFO (inotify on its inode), so /proc is
    /// walked again only when someone may have come or gone.
    opens: Option<OpenWatch>,
    /// (pid, fd, comm, mode) of our own workers' holdings, and the workers
    /// they were read from: read again when one of them changes or the
    /// FIFO was opened or closed.
    mine: Option<(Vec<i32>, Vec<Held>)>,
}

/// One holding of the FIFO: (pid, fd, comm, open mode).
type Held = (i32, i32, String, String);

/// How often /proc is walked at most for the FIFO's holders.
const HOLDER_SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// How often it is walked anyway: a process that inherited the FIFO from
/// its parent never opened it, so no event announces it.
const HOLDER_SCAN_QUIET: std::time::Duration = std::time::Duration::from_secs(10);

/// An inotify watch for opens and closes of one FIFO inode.
struct OpenWatch {
    ino: u64,
    fd: nix::sys::inotify::Inotify,
    /// An open or close was seen since the last walk of /proc.
    moved: bool,
    /// … since our workers' holdings were last read.
    moved_mine: bool,
}

impl OpenWatch {
    fn new(path: &std::path::Path, ino: u64) -> Option<OpenWatch> {
        use nix::sys::inotify::{AddWatchFlags as W, InitFlags, Inotify};
        let fd = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        // Never follow a symlink: the watch is on the node we made.
        let mask = W::IN_OPEN | W::IN_CLOSE_WRITE | W::IN_CLOSE_NOWRITE | W::IN_DONT_FOLLOW;
        fd.add_watch(path, mask).ok()?;
        Some(OpenWatch { ino, fd, moved: true, moved_mine: true })
    }

    /// Take the pending events (never blocks); true if any.
    fn drain(&mut self) {
        while let Ok(events) = self.fd.read_events() {
            if events.is_empty() {
                break;
            }
            self.moved = true;
            self.moved_mine = true;
        }
    }
}

/// Which of `pid`'s descriptors have (dev, ino) open. A `stat` of the fd
/// link reaches the inode without opening anything.
fn holding(pid: i32, dev: u64, ino: u64, out: &mut Vec<(i32, i32)>) {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return;
    };
    for f in fds.flatten() {
        let Some(fd) = f.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // Cheap filter first: a FIFO's link target is a path.
        let Ok(target) = std::fs::read_link(f.path()) else {
            continue;
        };
        let t = target.as_os_str().as_encoded_bytes();
        if !t.starts_with(b"/") || t.starts_with(b"/dev/") || t.starts_with(b"/memfd:") {
            continue;
        }
        if let Ok(m) = std::fs::metadata(f.path()) {
            if m.dev() == dev && m.ino() == ino {
                out.push((pid, fd));
            }
        }
    }
}

/// Every process other than `skip` (and us) with (dev, ino) open, from
/// /proc/*/fd.
fn scan_holders(dev: u64, ino: u64, skip: &[i32]) -> Vec<(i32, i32)> {
    let me = std::process::id() as i32;
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in proc_dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid != me && !skip.contains(&pid) {
            holding(pid, dev, ino, &mut out);
        }
    }
    out
}

impl FifoProbe {
    fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map_or_else(|| uid.to_string(), |u| u.name)
            })
            .clone()
    }
}

impl Probe for FifoProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let mut procs = vec![self.reader.sample(tel, t_ms)];
        for w in &mut self.writers {
            procs.push(w.sample(tel, t_ms));
        }
        let slots: Vec<usize> = [self.reader_slot].into_iter().chain(self.writer_slots.iter().copied()).collect();

        // Fill: ask the pipe through whichever end a live worker holds.
        let fill = procs
            .iter()
            .zip(&slots)
            .filter(|(p, _)| p.alive() && procfs::alive(p.pid))
            .map(|(p, &s)| (p.pid, tel.slot(s).aux[0].load(Relaxed)))
            .filter(|&(_, fd)| fd > 0)
            .find_map(|(pid, fd)| procfs::pipe_fill(pid, fd as i32));
        let depth = match fill {
            Some((d, c)) => {
                self.capacity = c;
                d
            }
            None => 0,
        };
        self.history.push_back(depth);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }

        let msg_size = tel.effective(KnobId::FIFO, KnobId::MsgSize);
        let mut d = FifoDetail {
            path: self.path.display().to_string(),
            writers: self.writer_slots.len() as u64,
            pipe_buf: PIPE_BUF,
            msg_size,
            atomic: msg_size <= PIPE_BUF,
            sigpipe: if tel.knob(KnobId::FifoSigpipe) == 0 { "default" } else { "ignore" }.into(),
            eofs: tel.slot(self.reader_slot).eof.load(Relaxed),
            ..FifoDetail::default()
        };
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            d.exists = m.file_type().is_fifo();
            d.inode = m.ino();
            d.mode = m.mode();
            let (user, group) = (self.user(m.uid()), self.user(m.gid()));
            d.ls_line = format!("{} {} {user} {group} {} {}", mode_string(m.mode()), m.nlink(), m.size(), d.path);
            if d.exists {
                // Our own workers are looked at on every sample; walking
                // every other process's descriptors is the costliest thing
                // the monitor does, and once a second is enough to spot a
                // `cat` from another terminal.
                let ours: Vec<i32> = procs.iter().filter(|p| p.alive()).map(|p| p.pid).collect();
                if self.opens.as_ref().is_none_or(|w| w.ino != m.ino()) {
                    self.opens = OpenWatch::new(&self.path, m.ino());
                }
                if let Some(w) = &mut self.opens {
                    w.drain();
                }
                // Without a watch, every second as before.
                let moved = self.opens.as_ref().is_none_or(|w| w.moved);
                let due = self.holders_at.is_none_or(|t| {
                    let e = t.elapsed();
                    (moved && e >= HOLDER_SCAN_EVERY) || e >= HOLDER_SCAN_QUIET
                });
                if due {
                    self.holders = scan_holders(m.dev(), m.ino(), &ours);
                    self.holders_at = Some(std::time::Instant::now());
                    if let Some(w) = &mut self.opens {
                        w.moved = false;
                    }
                }
                let describe = |pid: i32, fd: i32| {
                    let st = procfs::stat(pid).unwrap_or_default();
                    (pid, fd, st.comm, procfs::fd_mode(pid, fd).unwrap_or_default(), st.ppid)
                };
                // Our workers' holdings change only when one of them starts,
                // ends, opens or closes: read again then (every sample
                // without a watch).
                let stale = self.opens.as_ref().is_none_or(|w| w.moved_mine)
                    || self.mine.as_ref().is_none_or(|(pids, _)| *pids != ours);
                if stale {
                    let mut held = Vec::new();
                    for &pid in &ours {
                        holding(pid, m.dev(), m.ino(), &mut held);
                    }
                    let mine = held.into_iter().map(|(pid, fd)| describe(pid, fd)).map(|(p, f, c, m, _)| (p, f, c, m));
                    self.mine = Some((ours.clone(), mine.collect()));
                    if let Some(w) = &mut self.opens {
                        w.moved_mine = false;
                    }
                }
                let mut holders: Vec<(i32, i32, String, String, i32)> = Vec::new();
                if let Some((_, mine)) = &self.mine {
                    holders.extend(mine.iter().map(|(p, f, c, m)| (*p, *f, c.clone(), m.clone(), 0)));
                }
                // From the cached scan: outsiders only (a worker of ours that
                // started after the scan was taken is looked at above), and
                // only while they live.
                let workers: Vec<i32> = procs.iter().map(|p| p.pid).collect();
                holders.extend(
                    self.holders
                        .iter()
                        .copied()
                        .filter(|&(pid, _)| !workers.contains(&pid) && procfs::alive(pid))
                        .map(|(pid, fd)| describe(pid, fd)),
                );
                for (pid, fd, comm, mode, ppid) in holders {
                    // Our workers are our children; one that started after
                    // its tracker looked is still ours.
                    let role = procs
                        .iter()
                        .find(|p| p.pid == pid)
                        .map(|p| p.role.clone())
                        .or_else(|| (ppid == std::process::id() as i32).then(|| comm.clone()));
                    d.holders.push(FifoHolder { pid, fd, comm, mode, role });
                }
                d.holders.sort_by(|a, b| (a.role.is_none(), &a.role, a.pid).cmp(&(b.role.is_none(), &b.role, b.pid)));
            }
        }

        for h in d.external() {
            let key = format!("external-{}", h.pid);
            let msg = if h.mode == "r" { "note_fifo_external_r" } else { "note_fifo_external_w" };
            self.notes.say(t_ms, &key, msg, &[("comm", h.comm.clone()), ("pid", h.pid.to_string())]);
        }
        let reader = &procs[0];
        if reader.alive() && reader.sleeps_in() == crate::snapshot::Wait::FifoOpen && d.eofs > 0 {
            self.notes.say(t_ms, "reopen", "note_fifo_reopen", &[]);
        }
        if let Some(ExitStatus::Signal(s)) = ExitStatus::decode(tel.slot(self.reader_slot).exit.load(Relaxed)) {
            if s == libc::SIGKILL || s == libc::SIGTERM {
                self.notes.say(t_ms, "reader-killed", "note_fifo_reader_killed", &[]);
            }
        }
        if self
            .writer_slots
            .iter()
            .any(|&s| ExitStatus::decode(tel.slot(s).exit.load(Relaxed)) == Some(ExitStatus::Signal(libc::SIGPIPE)))
        {
            self.notes.say(t_ms, "sigpipe", "note_fifo_sigpipe", &[]);
        }
        if procs.iter().skip(1).any(|p| p.errors.epipe > 0) {
            self.notes.say(t_ms, "epipe", "note_fifo_epipe", &[]);
        }
        if !d.atomic && d.writers > 1 {
            self.notes.say(t_ms, "interleave", "note_fifo_interleave", &[]);
        }

        let cs = tel.slot(self.reader_slot);
        MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Fifo,
            channel: Channel { depth, capacity: self.capacity, unit: crate::model::figures::Unit::Bytes, over: 0 },
            integrity: crate::monitor::integrity_after(cs, self.writer_slots.iter().map(|&w| tel.slot(w))),
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, KnobId::FIFO),
            detail: Detail::Fifo(d),
            processes: procs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_style_mode() {
        assert_eq!(mode_string(libc::S_IFIFO | 0o600), "prw-------");
        assert_eq!(mode_string(libc::S_IFREG | 0o644), "-rw-r--r--");
    }

    #[test]
    fn calls_read_like_strace() {
        assert_eq!(format_call(CALL_OPEN, [1, 0, 0], 4), "open(\"…/fifo\", O_WRONLY) = 4");
        assert_eq!(format_call(CALL_WRITE, [4, 256, 0], -(libc::EPIPE as i64)), "write(4, 256 bytes) = -1 EPIPE");
    }
}
