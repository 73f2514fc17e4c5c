//! The socket mechanism's detail: every socket our processes hold, as the
//! monitor matched them against the kernel's tables.

use serde::{Deserialize, Serialize};

use crate::model::figures::Role;

/// One of our sockets, as the monitor saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SocketEntry {
    /// The process holding it (`server`, `client-1`, …), its pid and fd.
    pub role: String,
    pub pid: i32,
    pub fd: i32,
    pub inode: u64,
    /// `unix` or `tcp`.
    pub family: Family,
    /// `LISTEN`, `ESTABLISHED`, `CLOSE_WAIT`, … (`UNCONNECTED` for a Unix
    /// socket that is neither).
    pub state: String,
    /// The local endpoint: the path, `127.0.0.1:PORT`, or empty (an unnamed
    /// Unix socket).
    pub local: String,
    pub local_ip: Option<String>,
    pub local_port: Option<u16>,
    /// The other end: its address, or for Unix the peer's name.
    pub peer: String,
    pub peer_port: Option<u16>,
    /// Which of our processes holds the other end, if any.
    pub peer_role: Option<String>,
    /// Connected: payload bytes waiting to be read (`SIOCINQ`, `rx_queue`).
    /// Listener: connections waiting for accept().
    pub recv_q: u64,
    /// Connected: Unix `SIOCOUTQ` (send memory charged, skb overhead
    /// included); TCP `tx_queue` (bytes not yet acknowledged). Listener: the
    /// backlog limit.
    pub send_q: u64,
    /// Kernel buffer figures (`SK_MEMINFO`): receive and send buffer sizes,
    /// and the memory that counts against the send buffer.
    pub rcvbuf: Option<u64>,
    pub sndbuf: Option<u64>,
    pub send_mem: Option<u64>,
}

/// A socket's address family. In JSON the lowercase word.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Unix,
    Tcp,
}

impl Family {
    /// `UNIX` / `TCP`, as the panel labels a row.
    pub fn label(self) -> &'static str {
        match self {
            Family::Unix => "UNIX",
            Family::Tcp => "TCP",
        }
    }
}

impl SocketEntry {
    pub fn listening(&self) -> bool {
        self.state == "LISTEN"
    }

    /// Connected, both ends open.
    pub fn established(&self) -> bool {
        self.state == "ESTABLISHED"
    }

    /// Held by our server (a listener or an accepted connection).
    pub fn server_side(&self) -> bool {
        Role::parse(&self.role) == Role::Server
    }

    /// Bound to a loopback address: reachable from this host only.
    pub fn loopback(&self) -> bool {
        self.local_ip.as_deref().and_then(|ip| ip.parse::<std::net::IpAddr>().ok()).is_some_and(|ip| ip.is_loopback())
    }
}

/// What the socket panel shows beyond the common figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SocketDetail {
    /// `unix`, `tcp` or `both`.
    pub family: String,
    /// The Unix socket's path, when the Unix family runs.
    pub path: Option<String>,
    /// The TCP listener's port, from its `/proc/net/tcp` row.
    pub port: Option<u16>,
    /// The port the server's `getsockname()` returned (it publishes it).
    pub port_getsockname: Option<u16>,
    pub nodelay: bool,
    /// `socket.buffer` as set (0 = kernel defaults).
    pub buffer: u64,
    /// Every socket our processes hold, listeners first.
    pub sockets: Vec<SocketEntry>,
    /// Payload bytes waiting in the server's receive queues, summed.
    pub recv_payload: u64,
    /// Payload bytes in the clients' TCP send queues (not acknowledged).
    pub send_payload: u64,
    /// Processes using each endpoint: holding a socket whose local or peer
    /// end is the path / the port.
    pub path_users: u64,
    pub port_users: u64,
    /// Our sockets the kernel's tables did not list (should stay empty).
    pub unmatched: Vec<u64>,
    /// `socket.remote=netns`: the client in another network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteDetail>,
}

/// `socket.remote=netns`: the client in a network namespace of its own,
/// the veth pair between the two namespaces, and what went across.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RemoteDetail {
    /// The remote client's role (`client-N`, the last client).
    pub role: String,
    /// The namespaces (inodes of `/proc/PID/ns/net`): the server's (the
    /// run's) and the remote client's.
    pub host_netns: Option<u64>,
    pub remote_netns: Option<u64>,
    /// The veth ends: names, and the addresses the connection's rows show
    /// on each side (`10.231.x.1`, `10.231.x.2`).
    pub host_if: String,
    pub remote_if: String,
    pub host_ip: Option<String>,
    pub remote_ip: Option<String>,
    /// The TCP port it connected to across the veth.
    pub port: Option<u16>,
    /// The connection's state as each namespace's `/proc/PID/net/tcp` lists it.
    pub host_state: Option<String>,
    pub remote_state: Option<String>,
    /// Payload bytes the server's end received (`TCP_INFO`
    /// `tcpi_bytes_received`), and messages the remote client sent.
    pub delivered_bytes: u64,
    pub sent_msgs: u64,
    /// Each veth end's counters from its own namespace's `/proc/PID/net/dev`.
    pub host_dev: Option<DevCounters>,
    pub remote_dev: Option<DevCounters>,
    /// What the remote client's connect() to each name returned:
    /// `connected` or an errno name (`ECONNREFUSED`); absent = not tried.
    pub reach_tcp: Option<String>,
    pub reach_abstract: Option<String>,
    pub reach_path: Option<String>,
    pub reach_loopback: Option<String>,
    /// The abstract Unix name the server listens on (`@…`).
    pub abstract_name: Option<String>,
    /// Setting the namespace up failed: the step and errno.
    pub failed: Option<String>,
}

/// A network interface's counters (`/proc/PID/net/dev`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct DevCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

impl RemoteDetail {
    /// Two different namespaces seen, and bytes delivered between them.
    pub fn across(&self) -> bool {
        matches!((self.host_netns, self.remote_netns), (Some(a), Some(b)) if a != b) && self.delivered_bytes > 0
    }
}
