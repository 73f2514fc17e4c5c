//! `socket.remote=netns`: a client in a network namespace of the run's
//! own, joined to the run's namespace by a veth pair, standing in for
//! "another machine".
//!
//! The client calls `unshare(CLONE_NEWNET)` itself and creates the pair
//! from inside its new namespace, the peer end placed at once in the run's
//! namespace (`IFLA_NET_NS_FD`): no moment exists when both ends sit in the
//! run's namespace. A namespace lives as long as a process (or an open
//! descriptor) holds it; when the client ends, its namespace is destroyed,
//! the veth end in it with it, and a veth pair never outlives one of its
//! ends. So neither a SIGTERM nor a kill -9 of the TUI (the client dies by
//! `PR_SET_PDEATHSIG`) leaves a link behind.
//!
//! Both ends are named from the supervisor's pid (`ipcs<PID>h`, run side;
//! `ipcs<PID>r`, the client's side), so a look at `ip link` finds a run's
//! link and no other's.
//!
//! The links are configured with rtnetlink requests written here (the
//! socket diagnostics in `diag` are hand-written the same way; a netlink
//! crate would bring an async runtime for four requests).

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const PREFIX: u8 = 30;

/// Effective capability bits (`/proc/self/status` `CapEff`).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The names and addresses a run's pair gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The end in the run's namespace (beside the server).
    pub host_if: String,
    /// The end in the client's namespace.
    pub remote_if: String,
    pub host_ip: Ipv4Addr,
    pub remote_ip: Ipv4Addr,
}

impl Plan {
    /// From the supervisor's pid: a /30 of 10.231.0.0/16 (private space)
    /// that two runs alive at once rarely share.
    pub fn for_run(supervisor: i32) -> Plan {
        let p = supervisor as u32;
        let base = u32::from(Ipv4Addr::new(10, 231, 0, 0)) | (p & 0x3fff) << 2;
        Plan {
            host_if: format!("ipcs{supervisor}h"),
            remote_if: format!("ipcs{supervisor}r"),
            host_ip: Ipv4Addr::from(base + 1),
            remote_ip: Ipv4Addr::from(base + 2),
        }
    }

    /// `10.231.x.y/30`.
    pub fn cidr(ip: Ipv4Addr) -> String {
        format!("{ip}/{PREFIX}")
    }
}

/// The one-line reason this process cannot make the client's namespace,
/// or None when it can. A user namespace would not help: the veth's other
/// end has to go into the run's own network namespace, which belongs to
/// the host's user namespace.
pub fn refusal() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    refusal_for(&status)
}

/// [`refusal`] for a given `/proc/PID/status` text.
pub fn refusal_for(status: &str) -> Option<String> {
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let missing: Vec<&str> = [(CAP_SYS_ADMIN, "CAP_SYS_ADMIN"), (CAP_NET_ADMIN, "CAP_NET_ADMIN")]
        .into_iter()
        .filter(|&(bit, _)| eff & (1 << bit) == 0)
        .map(|(_, name)| name)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "socket.remote=netns needs root ({} missing): unshare(CLONE_NEWNET) for the client, and one end of its veth pair in the run's own network namespace",
            missing.join(", ")
        )
    })
}

/// What failed while entering the namespace: the step and its errno.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetupError {
    pub step: Step,
    pub errno: Errno,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Step {
    Unshare = 1,
    Veth = 2,
    Addr = 3,
    Up = 4,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Unshare => "unshare(CLONE_NEWNET)",
            Step::Veth => "RTM_NEWLINK veth",
            Step::Addr => "RTM_NEWADDR",
            Step::Up => "RTM_NEWLINK IFF_UP",
        }
    }

    pub fn from_u64(v: u64) -> Option<Step> {
        [Step::Unshare, Step::Veth, Step::Addr, Step::Up].into_iter().find(|s| *s as u64 == v)
    }
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({})",
            self.step.name(),
            crate::mechanisms::pipe::errno_name(self.errno as i32),
            self.errno.desc()
        )
    }
}

fn err(step: Step) -> impl Fn(Errno) -> SetupError {
    move |errno| SetupError { step, errno }
}

fn route_socket() -> nix::Result<OwnedFd> {
    socket::socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)
}

/// Move the calling thread (a single-threaded client's only thread that
/// makes sockets) into a new network namespace and join it to the run's
/// namespace by a veth pair, both ends up and addressed. On return every
/// socket the thread makes lives in the new namespace.
pub fn enter(plan: &Plan) -> Result<(), SetupError> {
    // Made before unshare, so they stay in the run's namespace.
    let host_ns = nix::fcntl::open(
        "/proc/thread-self/ns/net",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(err(Step::Unshare))?;
    let host_rt = route_socket().map_err(err(Step::Unshare))?;
    let host_udp = socket::socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(err(Step::Unshare))?;

    // nix's `sched` feature is not built here; the call takes one flag.
    // SAFETY: unshare only changes the calling thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
        return Err(err(Step::Unshare)(Errno::last()));
    }
    let rt = route_socket().map_err(err(Step::Veth))?;

    // The pair, made here with its peer placed in the run's namespace.
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    m.put(&ifinfo(0, 0));
    m.attr(IFLA_IFNAME, &cstr(&plan.remote_if));
    m.begin(IFLA_LINKINFO);
    m.attr(IFLA_INFO_KIND, b"veth\0");
    m.begin(IFLA_INFO_DATA);
    m.begin(VETH_INFO_PEER);
    m.put(&ifinfo(0, 0));
    m.attr(IFLA_IFNAME, &cstr(&plan.host_if));
    m.attr(IFLA_NET_NS_FD, &(host_ns.as_raw_fd() as u32).to_ne_bytes());
    m.end();
    m.end();
    m.end();
    let m = m.bytes();
    // After a restart the previous client's pair may still exist for a
    // moment (a namespace is torn down by the kernel's cleanup work, not
    // at its last process's exit): wait for the name, bounded.
    let mut tries = 0;
    loop {
        match send_request(&rt, &m) {
            Err(Errno::EEXIST) if tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => break r.map_err(err(Step::Veth))?,
        }
    }
    drop(host_ns);

    let remote_idx = nix::net::if_::if_nametoindex(plan.remote_if.as_str()).map_err(err(Step::Addr))?;
    request(&rt, addr_msg(remote_idx, plan.remote_ip)).map_err(err(Step::Addr))?;
    request(&rt, up_msg("lo")).map_err(err(Step::Up))?;
    request(&rt, up_msg(&plan.remote_if)).map_err(err(Step::Up))?;

    let host_idx = index_in(&host_udp, &plan.host_if).map_err(err(Step::Addr))?;
    request(&host_rt, addr_msg(host_idx, plan.host_ip)).map_err(err(Step::Addr))?;
    request(&host_rt, up_msg(&plan.host_if)).map_err(err(Step::Up))?;
    Ok(())
}

/// The index of interface `name` in the namespace `sock` lives in
/// (`SIOCGIFINDEX` answers for the socket's namespace, not the caller's).
fn index_in(sock: &OwnedFd, name: &str) -> nix::Result<u32> {
    // SAFETY: all-zero is a valid ifreq.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: `req` is a writable ifreq with a NUL-terminated name; the
    // kernel writes the index into it.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFINDEX as _, &mut req) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: SIOCGIFINDEX filled the ifru_ifindex member.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex } as u32)
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A `struct ifinfomsg` (AF_UNSPEC, index, flags and the flags to change).
fn ifinfo(flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// Set IFF_UP on the link named `name` (index 0: the kernel finds it by
/// name).
fn up_msg(name: &str) -> Msg {
    let up = libc::IFF_UP as u32;
    let mut m = Msg::new(RTM_NEWLINK, 0);
    m.put(&ifinfo(up, up));
    m.attr(IFLA_IFNAME, &cstr(name));
    m
}

fn addr_msg(index: u32, ip: Ipv4Addr) -> Msg {
    let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    // struct ifaddrmsg: family, prefixlen, flags, scope, index.
    let mut h = [0u8; 8];
    h[0] = libc::AF_INET as u8;
    h[1] = PREFIX;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    m.put(&h);
    m.attr(IFA_LOCAL, &ip.octets());
    m.attr(IFA_ADDRESS, &ip.octets());
    m
}

/// One netlink request being built: the header, then aligned attributes.
struct Msg {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `bytes`
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
        buf.extend_from_slice(&1u32.to_ne_bytes()); // seq
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
        Msg { buf, open: Vec::new() }
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn put(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        self.pad();
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        self.buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.put(data);
    }

    fn begin(&mut self, ty: u16) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }

    fn end(&mut self) {
        if let Some(at) = self.open.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn bytes(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// Send one request and wait (blocking) for the kernel's acknowledgement.
fn request(sock: &OwnedFd, m: Msg) -> nix::Result<()> {
    send_request(sock, &m.bytes())
}

fn send_request(sock: &OwnedFd, b: &[u8]) -> nix::Result<()> {
    socket::sendto(sock.as_raw_fd(), b, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
    let mut buf = [0u8; 4096];
    loop {
        let n = match socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        if n < 20 {
            return Err(Errno::EPROTO);
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if ty != NLMSG_ERROR {
            continue;
        }
        let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        return if code == 0 { Ok(()) } else { Err(Errno::from_raw(-code)) };
    }
}

/// The run's links still present in the namespace this process is in:
/// interface names starting with `ipcs<supervisor>` (for tests and a
/// sweep; only ever our own run's names).
pub fn links_of_run(supervisor: i32) -> Vec<String> {
    let prefix = format!("ipcs{supervisor}");
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.strip_prefix(&prefix).is_some_and(|rest| rest == "h" || rest == "r"))
                .collect()
        })
        .unwrap_or_default()
}

/// One interface's row of `/proc/PID/net/dev` (that process's namespace):
/// (received bytes, received packets, sent bytes, sent packets).
pub fn dev_counters(pid: i32, ifname: &str) -> Option<(u64, u64, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    parse_dev(&text, ifname)
}

pub fn parse_dev(text: &str, ifname: &str) -> Option<(u64, u64, u64, u64)> {
    text.lines().skip(2).find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != ifname {
            return None;
        }
        let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        (f.len() >= 10).then(|| (f[0], f[1], f[8], f[9]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_names_fit_and_addresses_pair() {
        let p = Plan::for_run(4_194_303);
        assert!(p.host_if.len() <= 15 && p.remote_if.len() <= 15);
        let (h, r) = (u32::from(p.host_ip), u32::from(p.remote_ip));
        assert_eq!(h & !3, r & !3, "one /30");
        assert_eq!((h & 3, r & 3), (1, 2));
        assert_eq!(p.host_ip.octets()[..2], [10, 231]);
    }

    #[test]
    fn refusal_names_what_is_missing() {
        assert_eq!(refusal_for("CapEff:\t000001ffffffffff\n"), None);
        let r = refusal_for("CapEff:\t0000000000000000\n").unwrap();
        assert!(r.contains("CAP_SYS_ADMIN, CAP_NET_ADMIN") && !r.contains('\n'), "{r}");
        let r = refusal_for("CapEff:\t0000000000201000\n"); // both bits
        assert_eq!(r, None);
    }

    #[test]
    fn dev_rows() {
        let t = "Inter-|   Receive  |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\nipcs12h: 5000 40 0 0 0 0 0 0 700 9 0 0 0 0 0 0\n";
        assert_eq!(parse_dev(t, "ipcs12h"), Some((5000, 40, 700, 9)));
        assert_eq!(parse_dev(t, "eth0"), None);
    }
}
