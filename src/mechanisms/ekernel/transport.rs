//! The road between an emulated kernel process and its tasks.
//!
//! Linux has neither Mach ports nor ALPC, so each emulated kernel is a
//! process of ours and every task reaches it over a Unix `SOCK_SEQPACKET`
//! socket. Seqpacket keeps message boundaries (one request = one packet),
//! is reliable and ordered, tells us when a peer goes away, and carries file
//! descriptors (`SCM_RIGHTS`) — which is how shared memory (`memfd`) travels
//! without being copied.
//!
//! Everything a peer sends is untrusted: a packet over [`MAX_PACKET`] bytes,
//! one whose control data was truncated, or more than [`MAX_FDS`] descriptors
//! is an error value, never a panic, and any descriptors that did arrive are
//! closed. The kernel side only talks to peers of its own uid
//! (`SO_PEERCRED`).

use std::ffi::OsStr;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, MsgFlags, SockFlag, UnixAddr};

/// The largest packet either side accepts. Larger ones are refused whole.
pub const MAX_PACKET: usize = 256 * 1024;
/// The most file descriptors one packet may carry.
pub const MAX_FDS: usize = 16;
/// Pending connections the listener keeps before refusing new ones.
const LISTEN_BACKLOG: i32 = 64;

/// What can go wrong moving one packet.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("packet larger than {MAX_PACKET} bytes")]
    TooLarge,
    #[error("more than {MAX_FDS} file descriptors, or truncated control data")]
    TooManyFds,
    #[error("the operation would block")]
    WouldBlock,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Who is at the other end of a connection, as the Linux kernel says
/// (`SO_PEERCRED`: the credentials at `connect`/`listen` time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// The kernel side: a listening socket bound to a path. Dropping it removes
/// the socket file.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

/// The outcome of one non-blocking [`Listener::accept`].
#[derive(Debug)]
pub enum Accept {
    /// A peer of our uid connected.
    Ready(Conn),
    /// A peer of another uid connected and was closed at once.
    Refused(PeerCred),
    /// No connection is pending.
    Empty,
}

impl Listener {
    /// Binds a non-blocking `SOCK_SEQPACKET` listener at `path`, readable and
    /// writable by the owner only. A stale socket left by a crashed kernel is
    /// removed first; any other kind of file at `path` is an error, so we
    /// never delete something that is not ours.
    ///
    /// The socket is bound under a temporary name in the same directory,
    /// restricted to 0600, set listening, and only then renamed to `path`:
    /// whoever sees `path` can connect at once, and never finds it open to
    /// others.
    pub fn bind(path: &Path) -> io::Result<Listener> {
        sockaddr_for(path)?;
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                use std::os::unix::fs::FileTypeExt;
                if !meta.file_type().is_socket() {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = path.with_file_name(format!(".{}-{serial}.sock", std::process::id()));
        let addr = sockaddr_for(&temp)?;
        let _ = std::fs::remove_file(&temp);
        let fd = new_socket(SockFlag::SOCK_NONBLOCK)?;
        socket::bind(fd.as_raw_fd(), &addr)?;
        let ready = || -> io::Result<()> {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))?;
            socket::listen(&fd, socket::Backlog::new(LISTEN_BACKLOG)?)?;
            std::fs::rename(&temp, path)
        };
        if let Err(e) = ready() {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok(Listener { fd, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one pending connection without blocking. A peer whose uid
    /// differs from ours is closed immediately and reported as
    /// [`Accept::Refused`]. The accepted connection blocks on I/O; the
    /// kernel uses [`Conn::try_send`] / [`Conn::try_recv`] after `poll`.
    pub fn accept(&self) -> io::Result<Accept> {
        loop {
            let raw = match socket::accept4(self.fd.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                Ok(raw) => raw,
                Err(Errno::EINTR) => continue,
                // ECONNABORTED: the peer gave up before we got to it.
                Err(Errno::EAGAIN | Errno::ECONNABORTED) => return Ok(Accept::Empty),
                Err(e) => return Err(e.into()),
            };
            // SAFETY: accept4 returned a new descriptor that nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let peer = peer_cred(fd.as_fd())?;
            if peer.uid != nix::unistd::geteuid().as_raw() {
                return Ok(Accept::Refused(peer));
            }
            enlarge_send_buffer(fd.as_fd());
            return Ok(Accept::Ready(Conn { fd, peer }));
        }
    }
}

/// How long a kernel leaves its listener alone after `accept` ran out of
/// descriptors or memory.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Keeps an emulated kernel alive when `accept` fails for want of
/// descriptors or memory (`EMFILE` under a low `RLIMIT_NOFILE`, `ENFILE`,
/// `ENOBUFS`, `ENOMEM`). Pending peers wait in the backlog, and for
/// [`ACCEPT_BACKOFF`] the listener is left out of `poll` — it stays
/// readable, so polling it would wake the loop at once, again and again.
#[derive(Debug, Default)]
pub struct AcceptGate {
    paused_until: Option<std::time::Instant>,
    said: bool,
}

impl AcceptGate {
    /// The listener's entry for `poll`: fd -1 (which `poll` skips) while
    /// backing off.
    pub fn pollfd(&mut self, listener: &Listener) -> libc::pollfd {
        if self.paused_until.is_some_and(|t| std::time::Instant::now() < t) {
            return libc::pollfd { fd: -1, events: 0, revents: 0 };
        }
        self.paused_until = None;
        libc::pollfd { fd: listener.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 }
    }

    /// `timeout`, cut so the loop wakes when the back-off ends.
    pub fn timeout(&self, timeout: Duration) -> Duration {
        match self.paused_until {
            Some(t) => timeout.min(t.saturating_duration_since(std::time::Instant::now())),
            None => timeout,
        }
    }

    /// Sorts an `accept` error: a shortage pauses the listener (said once
    /// on stderr, the kernel's log) and is `Ok`; anything else is returned.
    pub fn on_error(&mut self, e: io::Error) -> io::Result<()> {
        let errno = e.raw_os_error();
        if !matches!(errno, Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) {
            return Err(e);
        }
        self.paused_until = Some(std::time::Instant::now() + ACCEPT_BACKOFF);
        if !self.said {
            self.said = true;
            let limit = if errno == Some(libc::EMFILE) { nofile_limit() } else { String::new() };
            eprintln!("accept: {e}{limit}; new connections wait until the kernel has room");
        }
        Ok(())
    }
}

/// ` (RLIMIT_NOFILE is N)`, for a message about running out of descriptors.
fn nofile_limit() -> String {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != libc::RLIM_INFINITY => format!(" (RLIMIT_NOFILE is {soft})"),
        _ => String::new(),
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Leave nothing behind; a failure here (already removed) is harmless.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connected seqpacket socket, on either side.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
    peer: PeerCred,
}

impl Conn {
    /// Connects to a kernel listening at `path`.
    pub fn connect(path: &Path) -> io::Result<Conn> {
        let addr = sockaddr_for(path)?;
        let fd = new_socket(SockFlag::empty())?;
        loop {
            match socket::connect(fd.as_raw_fd(), &addr) {
                Ok(()) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        enlarge_send_buffer(fd.as_fd());
        let peer = peer_cred(fd.as_fd())?;
        Ok(Conn { fd, peer })
    }

    /// The credentials of the other end.
    pub fn peer(&self) -> PeerCred {
        self.peer
    }

    /// Sends one packet (and descriptors), blocking while the socket is full.
    pub fn send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), TransportError> {
        self.send_with(data, fds, 0)
    }

    /// Sends one packet or returns [`TransportError::WouldBlock`].
    pub fn try_send(&self, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), TransportError> {
        self.send_with(data, fds, libc::MSG_DONTWAIT)
    }

    /// Receives one packet into `buf` (replacing its contents) and returns
    /// the descriptors that came with it, blocking until one arrives.
    pub fn recv(&self, buf: &mut Vec<u8>) -> Result<Vec<OwnedFd>, TransportError> {
        self.recv_with(buf, 0)
    }

    /// Receives one packet or returns [`TransportError::WouldBlock`].
    pub fn try_recv(&self, buf: &mut Vec<u8>) -> Result<Vec<OwnedFd>, TransportError> {
        self.recv_with(buf, libc::MSG_DONTWAIT)
    }

    /// Client helper: sends a request and waits for the one reply packet.
    pub fn call(
        &self,
        request: &[u8],
        fds: &[BorrowedFd<'_>],
        reply: &mut Vec<u8>,
    ) -> Result<Vec<OwnedFd>, TransportError> {
        self.send(request, fds)?;
        self.recv(reply)
    }

    fn send_with(&self, data: &[u8], fds: &[BorrowedFd<'_>], flags: libc::c_int) -> Result<(), TransportError> {
        if data.len() > MAX_PACKET {
            return Err(TransportError::TooLarge);
        }
        if fds.len() > MAX_FDS {
            return Err(TransportError::TooManyFds);
        }
        let mut raw = [0 as RawFd; MAX_FDS];
        for (dst, fd) in raw.iter_mut().zip(fds) {
            *dst = fd.as_raw_fd();
        }
        let rights = [ControlMessage::ScmRights(&raw[..fds.len()])];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
        let iov = [io::IoSlice::new(data)];
        // MSG_NOSIGNAL: a vanished peer is an error value, not SIGPIPE.
        let flags = MsgFlags::from_bits_retain(flags) | MsgFlags::MSG_NOSIGNAL;
        // A packet to the kernel is a trap (in a task; the kernel's own
        // replies land in its slot, which no mechanism counts).
        crate::trace::hook::trap();
        loop {
            crate::trace::hook::syscall();
            return Err(match socket::sendmsg::<()>(self.fd.as_raw_fd(), &iov, cmsgs, flags, None) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => TransportError::WouldBlock,
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => TransportError::Closed,
                Err(Errno::EMSGSIZE) => TransportError::TooLarge,
                Err(e) => TransportError::Io(e.into()),
            });
        }
    }

    // Raw recvmsg, not nix's: nix wants an initialised buffer (zeroing
    // 256 KiB per packet would cost more than the packet), and its cmsgs()
    // will not walk a MSG_CTRUNC message, which would leak the descriptors
    // that did arrive.
    fn recv_with(&self, buf: &mut Vec<u8>, flags: libc::c_int) -> Result<Vec<OwnedFd>, TransportError> {
        buf.clear();
        buf.reserve(MAX_PACKET);
        let mut cmsg_buf = CmsgBuf::new();
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: MAX_PACKET };
        // SAFETY: msghdr is plain old data; zero is a valid "empty" value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg_buf.as_mut_ptr();
        msg.msg_controllen = CmsgBuf::LEN as _;
        let n = loop {
            crate::trace::hook::syscall();
            // SAFETY: the iovec covers buf's reserved capacity; the control
            // buffer is aligned and CmsgBuf::LEN long.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, flags | libc::MSG_CMSG_CLOEXEC) };
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return Err(TransportError::WouldBlock),
                Some(libc::ECONNRESET) => return Err(TransportError::Closed),
                _ => return Err(TransportError::Io(err)),
            }
        };
        // Take ownership of every descriptor that arrived before judging the
        // packet, so that a refused packet still has its descriptors closed.
        let fds = take_fds(&msg);
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(TransportError::TooLarge);
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(TransportError::TooManyFds);
        }
        if n == 0 && fds.is_empty() {
            // Seqpacket reports end of stream as a zero-length read; our
            // protocols never send empty packets, so this is the peer leaving.
            return Err(TransportError::Closed);
        }
        // SAFETY: recvmsg initialised the first n bytes (n <= MAX_PACKET).
        unsafe { buf.set_len(n.min(MAX_PACKET)) };
        Ok(fds)
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits in `poll(2)` until one of `fds` is ready or `timeout` passes
/// (`None` = no timeout). EINTR counts as "nothing ready".
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up so that a deadline 0.3 ms away does not spin at 0 ms.
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    };
    crate::trace::hook::syscall();
    // SAFETY: `fds` is a writable slice of `fds.len()` pollfds (the kernel
    // writes `revents` only); a bad descriptor in it is POLLNVAL, not UB.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(n as usize)
}

/// An aligned control-message buffer with room for [`MAX_FDS`] descriptors.
struct CmsgBuf([MaybeUninit<u64>; 32]);

impl CmsgBuf {
    const LEN: usize = 32 * size_of::<u64>();

    fn new() -> Self {
        const _: () = assert!(CmsgBuf::LEN >= 16 + MAX_FDS * size_of::<RawFd>());
        CmsgBuf([MaybeUninit::new(0); 32])
    }

    fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.0.as_mut_ptr().cast()
    }
}

fn take_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control / msg_controllen; CMSG_FIRSTHDR
    // and CMSG_NXTHDR stay within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let len = ((*cmsg).cmsg_len as usize).saturating_sub(header);
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..len / size_of::<RawFd>() {
                    let raw = data.add(i).read_unaligned();
                    if raw >= 0 {
                        // The kernel installed this descriptor for us.
                        fds.push(OwnedFd::from_raw_fd(raw));
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    fds
}

fn new_socket(extra_flags: SockFlag) -> io::Result<OwnedFd> {
    let flags = SockFlag::SOCK_CLOEXEC | extra_flags;
    Ok(socket::socket(socket::AddressFamily::Unix, socket::SockType::SeqPacket, flags, None)?)
}

fn sockaddr_for(path: &Path) -> io::Result<UnixAddr> {
    let bytes = OsStr::as_bytes(path.as_os_str());
    if bytes.is_empty() || bytes.len() >= 108 || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket path unusable (empty, NUL or over 107 bytes): {}", path.display()),
        ));
    }
    Ok(UnixAddr::new(path)?)
}

fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let cred = socket::getsockopt(&fd, socket::sockopt::PeerCredentials)?;
    Ok(PeerCred { pid: cred.pid(), uid: cred.uid(), gid: cred.gid() })
}

/// A datagram larger than the send buffer fails with EMSGSIZE; the default
/// (`wmem_default`, about 208 KiB) is below [`MAX_PACKET`], so ask for more.
/// Linux doubles the value and caps it at `wmem_max`; failure only means
/// the largest packets will be refused, so it is not fatal.
fn enlarge_send_buffer(fd: BorrowedFd<'_>) {
    let _ = socket::setsockopt(&fd, socket::sockopt::SndBuf, &(MAX_PACKET + 64 * 1024));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("kt-{}-{}-{tag}.sock", std::process::id(), line!()))
    }

    fn pair(path: &Path) -> (Listener, Conn, Conn) {
        let listener = Listener::bind(path).expect("bind");
        let client = Conn::connect(path).expect("connect");
        let server = loop {
            match listener.accept().expect("accept") {
                Accept::Ready(c) => break c,
                Accept::Refused(p) => panic!("refused {p:?}"),
                Accept::Empty => {
                    let mut p = [libc::pollfd { fd: listener.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 }];
                    poll(&mut p, Some(Duration::from_secs(5))).expect("poll");
                }
            }
        };
        (listener, client, server)
    }

    #[test]
    fn packets_fds_limits_and_cleanup() {
        let path = temp_path("basic");
        {
            let (_listener, client, server) = pair(&path);
            assert_eq!(server.peer().pid, std::process::id() as i32);
            let mut buf = Vec::new();
            assert!(matches!(server.try_recv(&mut buf), Err(TransportError::WouldBlock)));

            let file = std::fs::File::open("/dev/null").expect("open");
            client.send(b"hello", &[file.as_fd()]).expect("send");
            let fds = server.recv(&mut buf).expect("recv");
            assert_eq!(buf, b"hello");
            assert_eq!(fds.len(), 1);

            // The largest packet passes, one byte more is refused on send...
            let big = vec![7u8; MAX_PACKET];
            client.send(&big, &[]).expect("max packet");
            server.recv(&mut buf).expect("recv max");
            assert_eq!(buf.len(), MAX_PACKET);
            assert!(matches!(client.send(&[0; MAX_PACKET + 1], &[]), Err(TransportError::TooLarge)));

            // ... and on receive, when a peer bypasses our send check.
            let raw = vec![1u8; MAX_PACKET + 10];
            // SAFETY: `raw` is readable for `raw.len()` bytes and the socket
            // stays open for the call; send keeps no pointer.
            let n = unsafe { libc::send(client.as_fd().as_raw_fd(), raw.as_ptr().cast(), raw.len(), 0) };
            assert_eq!(n as usize, raw.len());
            assert!(matches!(server.recv(&mut buf), Err(TransportError::TooLarge)));

            drop(client);
            assert!(matches!(server.recv(&mut buf), Err(TransportError::Closed)));
            assert!(path.exists());
        }
        assert!(!path.exists(), "listener drop removes the socket file");
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let path = temp_path("file");
        std::fs::write(&path, b"x").expect("write");
        assert!(Listener::bind(&path).is_err());
        std::fs::remove_file(&path).expect("cleanup");
    }
}
