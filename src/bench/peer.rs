//! Peer processes of the benchmark: `fork()`ed from the bench's only
//! thread (no thread exists yet when the cases run), dying with it
//! (`PR_SET_PDEATHSIG`), pinned from outside with `sched_setaffinity`, and
//! told what to do over a raw control socket: one fixed-size command, one
//! 8-byte answer.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// Commands a peer understands.
pub const OP_PINGPONG: u64 = 1;
pub const OP_STREAM: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmd {
    pub op: u64,
    pub size: u64,
    pub count: u64,
}

impl Cmd {
    fn bytes(self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.op.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..24].copy_from_slice(&self.count.to_le_bytes());
        b
    }
    fn parse(b: &[u8; 24]) -> Cmd {
        let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        Cmd { op: w(0), size: w(8), count: w(16) }
    }
}

/// A forked process of ours.
pub struct Peer {
    pub pid: i32,
    ctl: Option<OwnedFd>,
    /// Serves a socket forever (a kernel, a server): killed at once on drop.
    pub daemon: bool,
}

/// `write` all of `buf`, retrying EINTR and short writes.
pub fn write_all(fd: RawFd, buf: &[u8]) -> io::Result<()> {
    crate::mechanisms::worker::write_all(fd, buf)
}

/// `read` exactly `buf.len()` bytes; EOF is an error.
pub fn read_exact(fd: RawFd, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = crate::mechanisms::worker::read_some(fd, buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
    }
    Ok(())
}

/// A connected pair of Unix stream sockets.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType};
    Ok(nix::sys::socket::socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC)?)
}

/// Fork a peer that runs `body(ctl)` and exits. The child keeps only the
/// descriptors in `keep` (and its control socket and stdio), dies with this
/// process, and never returns into the caller's code.
pub fn spawn(name: &str, keep: &[RawFd], body: impl FnOnce(RawFd) -> Result<()>) -> Result<Peer> {
    let (mine, theirs) = socketpair()?;
    let parent = nix::unistd::getpid();
    // SAFETY: the benchmark forks only while it has a single thread (the
    // cases run before any thread starts), so the child is consistent.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!("fork: {}", io::Error::last_os_error());
    }
    if pid == 0 {
        drop(mine);
        crate::mechanisms::worker::set_name(name);
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
        if nix::unistd::getppid() != parent {
            // SAFETY: _exit ends this forked child at once, without running
            // the parent's destructors or atexit handlers a second time.
            unsafe { libc::_exit(0) };
        }
        let fd = theirs.as_raw_fd();
        close_others(fd, keep);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(fd)));
        let code = match r {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                eprintln!("ipcscope bench peer {name}: {e:#}");
                1
            }
            Err(_) => 2,
        };
        // SAFETY: leave without running the parent's destructors or atexit.
        unsafe { libc::_exit(code) };
    }
    drop(theirs);
    Ok(Peer { pid, ctl: Some(mine), daemon: false })
}

/// Close every descriptor above stderr except `ctl` and `keep`: another
/// peer's control socket held here would hide that peer's end of file.
fn close_others(ctl: RawFd, keep: &[RawFd]) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = dir.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if fd > 2 && fd != ctl && !keep.contains(&fd) {
            // SAFETY: closing a descriptor nothing in this child uses; the
            // read_dir's own descriptor is already closed.
            unsafe { libc::close(fd) };
        }
    }
}

impl Peer {
    fn ctl(&self) -> RawFd {
        self.ctl.as_ref().map_or(-1, |c| c.as_raw_fd())
    }

    pub fn command(&self, cmd: Cmd) -> io::Result<()> {
        write_all(self.ctl(), &cmd.bytes())
    }

    /// The peer's answer to the last command (0 = done).
    pub fn answer(&self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        read_exact(self.ctl(), &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // EOF on the control socket ends a peer that waits for commands;
        // one that serves a kernel socket is killed.
        self.ctl.take();
        if self.daemon {
            // Our own child.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_millis(300);
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid int for the kernel to write; the
            // pid is our own child, reaped here only.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r != 0 {
                return;
            }
            if Instant::now() >= deadline {
                // SAFETY: our own child; reaped right after.
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                    libc::waitpid(self.pid, &mut status, 0);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// In a peer: the next command, or None at EOF (the bench is done).
pub fn next_command(ctl: RawFd) -> Option<Cmd> {
    let mut b = [0u8; 24];
    read_exact(ctl, &mut b).ok()?;
    Some(Cmd::parse(&b))
}

/// In a peer: answer the current command.
pub fn reply(ctl: RawFd, v: u64) -> io::Result<()> {
    write_all(ctl, &v.to_le_bytes())
}

/// Pin `pid` (0 = the calling thread) to one CPU, or let it run anywhere.
pub fn pin(pid: i32, cpu: Option<usize>) {
    let n = online_cpus();
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c % n, &mut set),
            None => (0..n).for_each(|c| libc::CPU_SET(c, &mut set)),
        }
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub fn online_cpus() -> usize {
    let n = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN).ok().flatten().unwrap_or(1);
    (n.max(1) as usize).min(libc::CPU_SETSIZE as usize)
}

/// Where the processes of a case run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Every process on CPU 0: each hand-over is a context switch.
    Same,
    /// Neighbours on different CPUs: each hand-over is a cross-CPU wake-up.
    Cross,
    /// Left to the scheduler.
    Unpinned,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Same => "same",
            Placement::Cross => "cross",
            Placement::Unpinned => "unpinned",
        }
    }

    /// The CPU of the `i`th process of a chain (0 = the bench itself).
    pub fn cpu(self, i: usize) -> Option<usize> {
        match self {
            Placement::Same => Some(0),
            Placement::Cross => Some(i % 2),
            Placement::Unpinned => None,
        }
    }

    /// Pin the bench (process 0 of the chain) and each of `pids` in order.
    pub fn apply(self, pids: &[i32]) {
        pin(0, self.cpu(0));
        for (i, &p) in pids.iter().enumerate() {
            pin(p, self.cpu(i + 1));
        }
    }

    pub fn parse_list(s: &str) -> Result<Vec<Placement>, String> {
        match s {
            "same" => Ok(vec![Placement::Same]),
            "cross" => Ok(vec![Placement::Cross]),
            "unpinned" => Ok(vec![Placement::Unpinned]),
            "all" => Ok(vec![Placement::Same, Placement::Cross, Placement::Unpinned]),
            _ => Err(format!("unknown placement {s:?}; choose same, cross, unpinned or all")),
        }
    }
}
