//! Reading a process from the outside, without disturbing it.
//!
//! Everything here only looks: /proc files, and short-lived descriptor
//! copies (`pidfd_getfd`) that are asked a question (`FIONREAD`,
//! `F_GETPIPE_SZ`) and closed at once. A copy held longer would keep a pipe
//! end open and hide EOF or SIGPIPE from the real processes.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::model::figures::FdEntry;
pub use crate::model::figures::{describe, is_blocked};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub comm: String,
    pub ppid: i32,
    pub pgrp: i32,
}

/// Parse /proc/PID/stat. The command name may hold spaces or ')', so the
/// fields are counted from the last ')'.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(Stat { state, comm, ppid, pgrp })
}

/// A process's stat, wchan and syscall files, opened once and read again
/// at offset 0 on every sample: procfs makes them afresh on each read, and
/// three path lookups per process at 10 Hz were most of the monitor's
/// system calls. A file outlives its process harmlessly (reads fail), and
/// it never follows a reused pid: it stays bound to the task it opened.
pub struct Watched {
    pub pid: i32,
    stat: Option<fs::File>,
    wchan: Option<fs::File>,
    syscall: Option<fs::File>,
    buf: Vec<u8>,
}

impl Watched {
    pub fn open(pid: i32) -> Watched {
        let f = |name: &str| fs::File::open(format!("/proc/{pid}/{name}")).ok();
        Watched { pid, stat: f("stat"), wchan: f("wchan"), syscall: f("syscall"), buf: vec![0; 1024] }
    }

    fn read(file: &Option<fs::File>, buf: &mut [u8]) -> Option<String> {
        use std::os::unix::fs::FileExt;
        let n = file.as_ref()?.read_at(buf, 0).ok()?;
        (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// State, wait channel and blocking system call, as `stat`, `wchan`
    /// and `syscall` below read them; None once the process is gone.
    pub fn sample(&mut self) -> Option<(Stat, String, Option<i64>)> {
        let st = parse_stat(&Self::read(&self.stat, &mut self.buf)?)?;
        let wchan = Self::read(&self.wchan, &mut self.buf).map(|s| s.trim().to_string()).unwrap_or_default();
        let sc = Self::read(&self.syscall, &mut self.buf).and_then(|t| t.split_whitespace().next()?.parse().ok());
        Some((st, wchan, sc))
    }
}

pub fn wchan(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/wchan")).map(|s| s.trim().to_string()).unwrap_or_default()
}

/// The number of the system call the process is blocked in, if any.
pub fn syscall(pid: i32) -> Option<i64> {
    let text = fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The process's descriptor table, with each descriptor's access mode.
pub fn fd_table(pid: i32) -> Vec<FdEntry> {
    fd_table_since(pid, &[])
}

/// The same, taking each descriptor's mode from `prev` (this process's
/// last table) when it still points at the same object: the fdinfo read
/// is then spared. A descriptor closed and opened again on the same
/// object with another mode in between would keep the old mode until
/// its target changes.
pub fn fd_table_since(pid: i32, prev: &[FdEntry]) -> Vec<FdEntry> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut out: Vec<FdEntry> = dir
        .flatten()
        .filter_map(|e| {
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let target = fs::read_link(e.path()).ok()?.to_string_lossy().into_owned();
            let known = prev.iter().find(|p| p.fd == fd && p.target == target && !p.mode.is_empty());
            let mode = match known {
                Some(p) => p.mode.clone(),
                None => fd_mode(pid, fd).unwrap_or_default(),
            };
            Some(FdEntry { fd, target, mode })
        })
        .collect();
    out.sort_by_key(|e| e.fd);
    out
}

/// `r`, `w` or `rw` from the `flags:` line of /proc/PID/fdinfo/FD.
pub fn fd_mode(pid: i32, fd: i32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = text.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
    let flags = u32::from_str_radix(flags, 8).ok()?;
    Some(
        match flags & 3 {
            0 => "r",
            1 => "w",
            _ => "rw",
        }
        .to_string(),
    )
}

/// A pidfd for `pid`, or None if it is gone.
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    // nix has no pidfd_open.
    // SAFETY: pidfd_open takes two integers and touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: pidfd_open succeeded, so `fd` is a new descriptor that
    // nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// A copy of descriptor `target` of process `pid`, for asking one question.
/// It shares the worker's open file description: never change its flags,
/// read or write it, and drop it at once.
pub fn borrow_fd(pid: i32, target: RawFd) -> Option<OwnedFd> {
    let pidfd = pidfd_open(pid)?;
    // nix has no pidfd_getfd.
    // SAFETY: pidfd_getfd takes three integers and touches no memory of
    // ours; `pidfd` stays open for the call.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, std::os::fd::AsRawFd::as_raw_fd(&pidfd), target, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: pidfd_getfd succeeded, so `fd` is a new descriptor (with
    // FD_CLOEXEC) that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Bytes buffered in a pipe or FIFO and its capacity, asked through a
/// borrowed copy of one of its ends held by `pid`.
pub fn pipe_fill(pid: i32, fd: RawFd) -> Option<(u64, u64)> {
    let dup = borrow_fd(pid, fd)?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&dup);
    let mut n: libc::c_int = 0;
    // nix has no FIONREAD wrapper.
    // SAFETY: FIONREAD writes one int, into `n`; `dup` stays open.
    if unsafe { libc::ioctl(raw, libc::FIONREAD, &mut n) } < 0 {
        return None;
    }
    // SAFETY: F_GETPIPE_SZ takes no argument and touches no memory of
    // ours; `dup` stays open for the call.
    let cap = unsafe { libc::fcntl(raw, libc::F_GETPIPE_SZ) };
    drop(dup);
    if cap < 0 {
        return None;
    }
    Some((n.max(0) as u64, cap as u64))
}

/// True if `pid` is alive (not a zombie, not gone).
pub fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some(s) if s.state != 'Z' && s.state != 'X')
}

/// `pid`'s network namespace: the inode in the `net:[INODE]` text of the
/// `/proc/PID/ns/net` link (readlink: the link itself, never followed).
pub fn netns(pid: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    parse_netns(link.to_str()?)
}

/// The inode of a `net:[INODE]` link text.
pub fn parse_netns(text: &str) -> Option<u64> {
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netns_is_the_link_inode() {
        assert_eq!(parse_netns("net:[4026531833]"), Some(4_026_531_833));
        assert_eq!(parse_netns("mnt:[4026531833]"), None);
        let me = std::process::id() as i32;
        let link = std::fs::read_link(format!("/proc/{me}/ns/net")).unwrap();
        assert_eq!(netns(me).map(|i| format!("net:[{i}]")), Some(link.to_string_lossy().into_owned()));
    }

    #[test]
    fn stat_with_odd_comm() {
        let s = parse_stat("123 (a b) c)) S 1 123 123 0 -1").unwrap();
        assert_eq!(s.comm, "a b) c)");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 123);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id() as i32;
        assert!(stat(me).is_some());
        assert!(alive(me));
        assert!(!fd_table(me).is_empty());
    }

    /// The kept-open files answer afresh on every read.
    #[test]
    fn watched_files_are_read_again() {
        let me = std::process::id() as i32;
        let mut w = Watched::open(me);
        let (a, _, _) = w.sample().unwrap();
        let (b, _, _) = w.sample().unwrap();
        assert_eq!(a, stat(me).unwrap());
        assert_eq!(a.ppid, b.ppid);
        let mut gone = Watched::open(-1);
        assert!(gone.sample().is_none());
    }

    #[test]
    fn pipe_fill_of_our_own_pipe() {
        use std::os::fd::AsRawFd;
        let (rd, wr) = nix::unistd::pipe().unwrap();
        let fds = [rd.as_raw_fd(), wr.as_raw_fd()];
        assert_eq!(nix::unistd::write(&wr, b"hello"), Ok(5));
        let me = std::process::id() as i32;
        assert_eq!(pipe_fill(me, fds[0]), Some((5, 65536)));
        assert_eq!(fd_mode(me, fds[0]).as_deref(), Some("r"));
        assert_eq!(fd_mode(me, fds[1]).as_deref(), Some("w"));
    }
}
