//! Reading the kernel's socket tables: a `sock_diag` dump for Unix
//! sockets, `/proc/net/tcp` for TCP, and single questions asked of a
//! borrowed descriptor.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::monitor::procfs;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UDIAG_SHOW_MEMINFO: u32 = 0x20;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
const SO_MEMINFO: i32 = 55;

/// Indices into `SK_MEMINFO` (`SO_MEMINFO`, `UNIX_DIAG_MEMINFO`).
pub const MEM_RCVBUF: usize = 1;
pub const MEM_WMEM_ALLOC: usize = 2;
pub const MEM_SNDBUF: usize = 3;
pub const MEM_WMEM_QUEUED: usize = 5;
const MEM_VARS: usize = 9;

#[derive(Debug, Clone, Default)]
pub struct UnixSock {
    pub state: u8,
    pub name: Option<String>,
    pub peer: Option<u64>,
    /// UNIX_DIAG_RQLEN: connected = SIOCINQ / SIOCOUTQ; listener =
    /// pending connections / backlog.
    pub rq: u64,
    pub wq: u64,
    pub mem: Option<[u32; MEM_VARS]>,
}

pub fn state_name(st: u8) -> &'static str {
    match st {
        1 => "ESTABLISHED",
        7 => "UNCONNECTED",
        8 => "CLOSE_WAIT",
        10 => "LISTEN",
        _ => "?",
    }
}

pub fn tcp_state_name(st: u8) -> &'static str {
    match st {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "?",
    }
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Every Unix stream socket on the machine, by inode.
pub fn unix_dump() -> std::io::Result<HashMap<u64, UnixSock>> {
    use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};
    let sock: OwnedFd = socket::socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    let mut req = Vec::with_capacity(40);
    req.extend_from_slice(&40u32.to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid
    req.push(libc::AF_UNIX as u8);
    req.push(0); // protocol
    req.extend_from_slice(&0u16.to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&0u32.to_ne_bytes()); // ino
    let show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_MEMINFO;
    req.extend_from_slice(&show.to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]); // cookie: none
                                       // Port 0, no groups: the kernel.
    socket::sendto(sock.as_raw_fd(), &req, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
    let mut out = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Blocks until the kernel answers.
        let n = match socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let b = &buf[..n as usize];
        if b.is_empty() {
            return Ok(out);
        }
        let mut off = 0;
        while off + 16 <= b.len() {
            let len = u32_at(b, off) as usize;
            let ty = u16_at(b, off + 4);
            if len < 16 || off + len > b.len() {
                return Ok(out);
            }
            match ty {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let err = u32_at(b, off + 16) as i32;
                    return Err(std::io::Error::from_raw_os_error(-err));
                }
                _ => {
                    if let Some((ino, s)) = parse_unix_msg(&b[off + 16..off + len]) {
                        out.insert(ino, s);
                    }
                }
            }
            off += (len + 3) & !3;
        }
    }
}

/// One `unix_diag_msg` and its attributes.
fn parse_unix_msg(m: &[u8]) -> Option<(u64, UnixSock)> {
    if m.len() < 16 || m[1] != libc::SOCK_STREAM as u8 {
        return None;
    }
    let ino = u32_at(m, 4) as u64;
    let mut s = UnixSock { state: m[2], ..UnixSock::default() };
    let mut off = 16;
    while off + 4 <= m.len() {
        let len = u16_at(m, off) as usize;
        let ty = u16_at(m, off + 2);
        if len < 4 || off + len > m.len() {
            break;
        }
        let p = &m[off + 4..off + len];
        match ty {
            UNIX_DIAG_NAME if !p.is_empty() => {
                let name = if p[0] == 0 {
                    // Abstract: '@' as ss prints it.
                    format!("@{}", String::from_utf8_lossy(&p[1..]))
                } else {
                    let end = p.iter().position(|&c| c == 0).unwrap_or(p.len());
                    String::from_utf8_lossy(&p[..end]).into_owned()
                };
                s.name = Some(name);
            }
            UNIX_DIAG_PEER if p.len() >= 4 => s.peer = Some(u32_at(p, 0) as u64),
            UNIX_DIAG_RQLEN if p.len() >= 8 => {
                s.rq = u32_at(p, 0) as u64;
                s.wq = u32_at(p, 4) as u64;
            }
            UNIX_DIAG_MEMINFO if p.len() >= 4 * MEM_VARS => {
                let mut mem = [0u32; MEM_VARS];
                for (i, v) in mem.iter_mut().enumerate() {
                    *v = u32_at(p, i * 4);
                }
                s.mem = Some(mem);
            }
            _ => {}
        }
        off += (len + 3) & !3;
    }
    Some((ino, s))
}

#[derive(Debug, Clone)]
pub struct TcpRow {
    pub local: (Ipv4Addr, u16),
    pub remote: (Ipv4Addr, u16),
    pub state: u8,
    pub tx: u64,
    pub rx: u64,
}

/// `/proc/net/tcp`, by inode.
pub fn proc_net_tcp() -> HashMap<u64, TcpRow> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    parse_proc_net_tcp(&text)
}

fn addr(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (ip, port) = s.split_once(':')?;
    // The kernel prints the address word as it lies in memory.
    let ip = u32::from_str_radix(ip, 16).ok()?;
    Some((Ipv4Addr::from(ip.to_ne_bytes()), u16::from_str_radix(port, 16).ok()?))
}

pub fn parse_proc_net_tcp(text: &str) -> HashMap<u64, TcpRow> {
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Some(local), Some(remote)) = (addr(f[1]), addr(f[2])) else {
            continue;
        };
        let Some((tx, rx)) = f[4].split_once(':') else {
            continue;
        };
        let (Ok(state), Ok(tx), Ok(rx), Ok(ino)) = (
            u8::from_str_radix(f[3], 16),
            u64::from_str_radix(tx, 16),
            u64::from_str_radix(rx, 16),
            f[9].parse::<u64>(),
        ) else {
            continue;
        };
        if ino != 0 {
            out.insert(ino, TcpRow { local, remote, state, tx, rx });
        }
    }
    out
}

/// `/proc/PID/net/tcp`: the TCP table of `pid`'s network namespace.
pub fn proc_net_tcp_of(pid: i32) -> HashMap<u64, TcpRow> {
    parse_proc_net_tcp(&std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default())
}

/// `/proc/PID/net/unix`: the Unix stream sockets of `pid`'s network
/// namespace (a `sock_diag` dump answers for the monitor's namespace
/// only). State and name; no peer or queues in this table.
pub fn proc_net_unix_of(pid: i32) -> HashMap<u64, UnixSock> {
    parse_proc_net_unix(&std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default())
}

pub fn parse_proc_net_unix(text: &str) -> HashMap<u64, UnixSock> {
    const SO_ACCEPTCON: u32 = 0x10000;
    const SS_CONNECTED: u8 = 3;
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        // Num RefCount Protocol Flags Type St Inode [Path]
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 || u16::from_str_radix(f[4], 16).ok() != Some(libc::SOCK_STREAM as u16) {
            continue;
        }
        let (Ok(flags), Ok(st), Ok(ino)) =
            (u32::from_str_radix(f[3], 16), u8::from_str_radix(f[5], 16), f[6].parse::<u64>())
        else {
            continue;
        };
        let state = if flags & SO_ACCEPTCON != 0 {
            10
        } else if st == SS_CONNECTED {
            1
        } else {
            7
        };
        let name = f.get(7).map(|n| n.to_string());
        out.insert(ino, UnixSock { state, name, ..UnixSock::default() });
    }
    out
}

/// Payload bytes a TCP socket has received (`tcpi_bytes_received`, RFC
/// 4898), from `TCP_INFO` on a borrowed copy. Read from the kernel's
/// struct by offset: libc's `tcp_info` stops before it.
pub fn tcp_bytes_received(pid: i32, fd: i32) -> Option<u64> {
    const OFF: usize = 128;
    let dup = procfs::borrow_fd(pid, fd)?;
    let mut buf = [0u8; 232];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is writable for `len` bytes and `dup` stays open for
    // the call; getsockopt writes at most `len` bytes and says how many.
    let r = unsafe {
        libc::getsockopt(dup.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, buf.as_mut_ptr().cast(), &mut len)
    };
    drop(dup);
    (r == 0 && len as usize >= OFF + 8).then(|| u64::from_ne_bytes(buf[OFF..OFF + 8].try_into().unwrap_or([0; 8])))
}

/// `getsockopt(SO_MEMINFO)` on a borrowed copy of `pid`'s `fd`.
pub fn meminfo(pid: i32, fd: i32) -> Option<[u32; MEM_VARS]> {
    let dup = procfs::borrow_fd(pid, fd)?;
    let mut mem = [0u32; MEM_VARS];
    let mut len = std::mem::size_of_val(&mem) as libc::socklen_t;
    // nix has no SO_MEMINFO option.
    // SAFETY: `mem` is a writable buffer of `len` bytes and `dup` stays
    // open for the call; getsockopt writes at most `len` bytes.
    let r =
        unsafe { libc::getsockopt(dup.as_raw_fd(), libc::SOL_SOCKET, SO_MEMINFO, mem.as_mut_ptr().cast(), &mut len) };
    drop(dup);
    (r == 0).then_some(mem)
}

/// A TCP listener's (pending connections, backlog limit), from
/// `TCP_INFO` on a borrowed copy.
pub fn listen_backlog(pid: i32, fd: i32) -> Option<(u64, u64)> {
    let dup = procfs::borrow_fd(pid, fd)?;
    // SAFETY: all-zero is a valid tcp_info.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a writable tcp_info of `len` bytes and `dup` stays
    // open for the call; getsockopt writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            dup.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    drop(dup);
    (r == 0).then_some((info.tcpi_unacked as u64, info.tcpi_sacked as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_rows() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:9C4B 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:9C4B 0100007F:D2F0 01 00000010:00001388 00:00000000 00000000     0        0 12346 1\n";
        let m = parse_proc_net_tcp(t);
        let l = &m[&12345];
        assert_eq!(l.local, (Ipv4Addr::LOCALHOST, 0x9C4B));
        assert_eq!((l.state, l.rx), (10, 1));
        let c = &m[&12346];
        assert_eq!(c.remote.1, 0xD2F0);
        assert_eq!((c.tx, c.rx), (16, 5000));
    }

    #[test]
    fn proc_net_unix_rows() {
        let t = "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 5001 /run/x/sock\n0000000000000000: 00000003 00000000 00000000 0001 03 5002\n0000000000000000: 00000002 00000000 00000000 0002 01 5003 @dgram\n";
        let m = parse_proc_net_unix(t);
        assert_eq!((m[&5001].state, m[&5001].name.as_deref()), (10, Some("/run/x/sock")));
        assert_eq!((m[&5002].state, m[&5002].name.as_deref()), (1, None));
        assert!(!m.contains_key(&5003), "datagram sockets are not ours");
    }

    #[test]
    fn tcp_bytes_received_counts_payload() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut a, _) = l.accept().unwrap();
        c.write_all(&[7u8; 1000]).unwrap();
        let mut buf = [0u8; 1000];
        a.read_exact(&mut buf).unwrap();
        let me = std::process::id() as i32;
        assert_eq!(tcp_bytes_received(me, a.as_raw_fd()), Some(1000));
    }

    #[test]
    fn unix_dump_sees_our_socketpair() {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        let (a, b) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::empty()).unwrap();
        let fds = [a.as_raw_fd(), b.as_raw_fd()];
        assert_eq!(nix::unistd::write(&a, b"hello"), Ok(5));
        let ino = |fd: &OwnedFd| -> u64 { nix::sys::stat::fstat(fd).unwrap().st_ino };
        let dump = unix_dump().unwrap();
        let b = &dump[&ino(&b)];
        assert_eq!(b.rq, 5);
        assert_eq!(b.peer, Some(ino(&a)));
        let me = std::process::id() as i32;
        let m = meminfo(me, fds[0]).unwrap();
        assert!(m[MEM_SNDBUF] > 0 && m[MEM_WMEM_ALLOC] > 0);
    }
}
