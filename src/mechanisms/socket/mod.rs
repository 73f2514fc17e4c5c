//! Sockets: the "network port" side of the notes' IPC-port vs network-port
//! table. A server process listens — on a Unix stream socket whose name is
//! a path in the run's directory, or on TCP `127.0.0.1` at a port the
//! kernel picks (`bind` to port 0, then `getsockname`) — and 1–4 client
//! processes connect to it and stream messages. One listening endpoint
//! serves several connections, each its own connected socket.
//!
//! Only loopback is ever bound: the TCP listener binds `127.0.0.1`, the
//! clients connect to `127.0.0.1`, nothing binds `0.0.0.0`.
//!
//! The server takes messages with `poll()` over the listening and accepted
//! sockets (non-blocking accepted sockets, one `FrameReader` each), so it
//! never spins and a slow client never holds up the others.
//!
//! What the monitor reads (never touching the workers' data):
//! - our sockets: `socket:[INODE]` in the workers' fd tables;
//! - Unix: a `sock_diag` netlink dump (`UNIX_DIAG_NAME`, `_PEER`, `_RQLEN`,
//!   `_MEMINFO`): name, peer inode, receive / send queue (the same numbers
//!   `SIOCINQ` / `SIOCOUTQ` give; on a listener: pending connections and
//!   backlog) and buffer memory;
//! - TCP: `/proc/net/tcp` rows matched by inode (addresses, state,
//!   `tx_queue:rx_queue`), plus `getsockopt(SO_MEMINFO)` on a `pidfd_getfd`
//!   copy (buffer sizes and queued memory) and `getsockopt(TCP_INFO)` on the
//!   listener's copy (its accept backlog limit). The copies are only asked
//!   and closed at once.
//!
//! The channel gauge. `depth` = memory the kernel has charged to the
//! clients' sockets for data the server has not taken yet, summed over the
//! clients (Unix: `sk_wmem_alloc`, which is `SIOCOUTQ`, the skbs sitting in
//! the server's receive queue; TCP: `sk_wmem_queued`, the data not yet
//! acknowledged). `capacity` = the clients' `SO_SNDBUF`, summed. This is
//! the quantity `send()` blocks on (`sk_wmem_alloc >= sk_sndbuf` for Unix,
//! `sk_wmem_queued >= sk_sndbuf` for TCP), so with a stalled server the
//! gauge reaches full exactly when the clients block. It is memory, skb
//! overhead included (a 256-byte message costs 1280 here), and the check
//! comes before the allocation, so the last buffer takes the count past
//! `SO_SNDBUF`: that excess is the channel's `over` (each client's memory
//! split at its own `SO_SNDBUF`), drawn apart from the full gauge. The payload bytes
//! waiting in the server's receive queues (`SIOCINQ` / `rx_queue`) and in
//! the clients' TCP send queues (`tx_queue`) are shown beside it; a Unix
//! stream socket's receive queue is charged to the *sender*, which is why
//! the receive buffer (`SO_RCVBUF`) is not the limit.
//!
//! Telemetry `aux` words, server slot: [0] TCP port as `getsockname`
//! returned it, [1] Unix listening fd + 1, [2] TCP listening fd + 1,
//! [7] 1 once listening (clients wait on it with a futex).
//!
//! - `consts`: the knobs and names every part shares;
//! - this file: the registration record and the supervisor's side (which
//!   processes to start, which one `k` kills);
//! - `worker`: the server and client roles, and the calls they record;
//! - `probe`: what the monitor samples ([`SocketDetail`]);
//! - [`diag`]: the kernel's socket tables.

use anyhow::{bail, Result};

use crate::knobs::KnobId;
use crate::mechanisms::worker::WorkerCtx;
use crate::mechanisms::{pair, Info, Kind, Mechanism, Probe};
use crate::supervisor::{Supervisor, WorkerSpec};

mod consts;
pub mod diag;
pub mod netns;
mod probe;
mod worker;

pub use crate::model::detail::socket::{Family, SocketDetail, SocketEntry};
pub use consts::SOCK_NAME;
use consts::{FAM_TCP, FAM_UNIX};
use probe::SocketProbe;

pub static INFO: Info =
    Info { kind: Kind::Socket, knobs: KnobId::SOCKET, new: || Box::new(Socket::default()), worker: run_worker };

/// Which families a `socket.family` value runs.
fn families(knob: u64) -> u64 {
    match knob {
        0 => FAM_UNIX,
        1 => FAM_TCP,
        _ => FAM_UNIX | FAM_TCP,
    }
}

#[derive(Default)]
pub struct Socket {
    server: usize,
    clients: Vec<usize>,
    /// Family of each client (FAM_UNIX / FAM_TCP).
    client_family: Vec<u64>,
    families: u64,
    /// `socket.remote=netns`: the slot of the client in a namespace of its
    /// own.
    remote: Option<usize>,
}

impl Mechanism for Socket {
    fn kind(&self) -> Kind {
        Kind::Socket
    }

    fn start(&mut self, sup: &mut Supervisor) -> Result<()> {
        let knobs = sup.knobs();
        self.families = families(knobs.get(KnobId::SocketFamily));
        let mut n = knobs.get(KnobId::SocketClients).clamp(1, 4) as usize;
        if self.families == FAM_UNIX | FAM_TCP {
            // One client per family at least, or a listener would sit idle.
            n = n.max(2);
        }
        let remote = knobs.get(KnobId::SocketRemote) == 1;
        if remote {
            // Asked for and impossible here: one line, nothing started.
            if let Some(why) = netns::refusal() {
                bail!("{why}");
            }
        }
        self.server = sup.alloc_slot()?;
        self.clients = pair::alloc_slots(sup, n)?;
        // Always allocated, so a restart can turn it on without a new probe.
        let r = sup.alloc_slot()?;
        self.remote = Some(r);
        self.client_family = (0..n)
            .map(|i| match self.families {
                FAM_UNIX => FAM_UNIX,
                FAM_TCP => FAM_TCP,
                _ if i % 2 == 0 => FAM_UNIX,
                _ => FAM_TCP,
            })
            .collect();
        self.spawn(sup)
    }

    fn victim(&self) -> Option<usize> {
        Some(self.server)
    }

    fn restart(&mut self, sup: &mut Supervisor) -> Result<()> {
        // Connections cannot be handed to a new server: everyone starts afresh
        // (a new port, the same path, unlinked and bound again).
        pair::kill(sup, self.clients.iter().copied().chain(self.remote).chain([self.server]));
        self.spawn(sup)
    }

    fn producers(&self) -> Vec<usize> {
        self.clients.iter().copied().chain(self.remote).collect()
    }

    fn probe(&self, sup: &Supervisor) -> Box<dyn Probe> {
        let plan = netns::Plan::for_run(std::process::id() as i32);
        Box::new(SocketProbe::new(self.server, &self.clients, self.remote, plan, self.families, sup.dir_path()))
    }
}

impl Socket {
    fn spawn(&mut self, sup: &mut Supervisor) -> Result<()> {
        let fam = |f: u64| if f == FAM_TCP { "tcp" } else { "unix" };
        let plan = netns::Plan::for_run(std::process::id() as i32);
        // Read again at each (re)start; turned on in the TUI where it
        // cannot be, the remote client still starts and says why it
        // failed (its panel note), the rest runs on.
        let remote = sup.knobs().get(KnobId::SocketRemote) == 1;
        // The remote client tries the path too: the server listens on both.
        let families = if remote { FAM_UNIX | FAM_TCP } else { self.families };
        let mut spec = WorkerSpec::new(Kind::Socket, "server", self.server).arg(
            "families",
            match families {
                FAM_UNIX => "unix",
                FAM_TCP => "tcp",
                _ => "both",
            },
        );
        if remote {
            spec = spec.arg("remote-ip", plan.host_ip);
        }
        sup.spawn(&spec)?;
        for (i, (&slot, &f)) in self.clients.iter().zip(&self.client_family).enumerate() {
            let spec = WorkerSpec::new(Kind::Socket, "client", slot)
                .arg("server-slot", self.server)
                .arg("family", fam(f))
                .arg("index", i + 1);
            sup.spawn(&spec)?;
        }
        if let (true, Some(slot)) = (remote, self.remote) {
            let spec = WorkerSpec::new(Kind::Socket, "remote", slot).arg("server-slot", self.server);
            sup.spawn(&spec)?;
        }
        Ok(())
    }
}

fn run_worker(ctx: &mut WorkerCtx, role: &str) -> Result<()> {
    match role {
        "server" => worker::server(ctx),
        "client" => worker::client(ctx),
        "remote" => worker::remote(ctx),
        _ => bail!("the socket mechanism has no role {role:?} (server, client, remote)"),
    }
}
