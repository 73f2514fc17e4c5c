//! What the monitor samples of the socket mechanism: every socket our
//! processes hold, matched against the kernel's tables ([`super::diag`]),
//! the channel gauge and the notes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;

use super::consts::{abstract_name, FAMILIES, FAM_TCP, FAM_UNIX, SOCK_NAME};
use super::diag;
use super::netns::{self, Plan};
use super::worker::{self, CALLS};
use crate::knobs::KnobId;
use crate::mechanisms::{Kind, Probe};
use crate::model::detail::socket::{DevCounters, Family, RemoteDetail, SocketDetail, SocketEntry};
use crate::monitor::{NoteLog, ProcTracker};
use crate::snapshot::{Channel, Detail, MechanismSnapshot, ProcessSnapshot, Unit};
use crate::telemetry::Telemetry;

pub(super) struct SocketProbe {
    server: ProcTracker,
    clients: Vec<ProcTracker>,
    /// The client in a namespace of its own (`socket.remote=netns`), drawn
    /// only once it has been started.
    remote: Option<(usize, ProcTracker)>,
    plan: Plan,
    abstract_name: String,
    server_slot: usize,
    families: u64,
    path: String,
    history: VecDeque<u64>,
    capacity: u64,
    notes: NoteLog,
}

fn socket_inode(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// A connection to the path from another network namespace: both ends
/// live in the *connecting* socket's namespace (the kernel makes the
/// accepted socket there), whose table (`/proc/PID/net/unix`) names no
/// peers. One connected server end and one client end there, both
/// without a known peer, are the two ends of it.
fn pair_foreign_unix(sockets: &mut [SocketEntry], foreign: &HashSet<u64>) {
    let lone = |s: &SocketEntry| {
        s.family == Family::Unix && s.established() && s.peer_role.is_none() && foreign.contains(&s.inode)
    };
    let servers: Vec<usize> = (0..sockets.len()).filter(|&i| lone(&sockets[i]) && sockets[i].server_side()).collect();
    let clients: Vec<usize> = (0..sockets.len()).filter(|&i| lone(&sockets[i]) && !sockets[i].server_side()).collect();
    if let ([s], [c]) = (servers.as_slice(), clients.as_slice()) {
        let (s, c) = (*s, *c);
        sockets[c].peer = sockets[s].local.clone();
        sockets[c].peer_role = Some(sockets[s].role.clone());
        sockets[s].peer_role = Some(sockets[c].role.clone());
    }
}

impl Probe for SocketProbe {
    fn sample(&mut self, tel: &Telemetry, t_ms: u64) -> MechanismSnapshot {
        let mut procs = vec![self.server.sample(tel, t_ms)];
        procs.extend(self.clients.iter_mut().map(|c| c.sample(tel, t_ms)));
        let remote_on = self.remote.as_ref().is_some_and(|(slot, _)| {
            let s = tel.slot(*slot);
            // On, or its process still running (turned off, not restarted yet).
            tel.knob(KnobId::SocketRemote) == 1 || (s.pid.load(Relaxed) != 0 && s.exit.load(Relaxed) == 0)
        });
        if let (true, Some((_, r))) = (remote_on, self.remote.as_mut()) {
            procs.push(r.sample(tel, t_ms));
        }
        let families = if remote_on { FAM_UNIX | FAM_TCP } else { self.families };
        let ss = tel.slot(self.server_slot);
        let port_gsn = (families & FAM_TCP != 0).then(|| ss.aux[0].load(Relaxed) as u16).filter(|&p| p != 0);

        let mut unix = if families & FAM_UNIX != 0 { diag::unix_dump().unwrap_or_default() } else { HashMap::new() };
        let mut tcp = if families & FAM_TCP != 0 { diag::proc_net_tcp() } else { HashMap::new() };
        // A process in another network namespace: that namespace's tables
        // (socket inodes are unique across namespaces).
        let here = crate::monitor::procfs::netns(std::process::id() as i32);
        let mut foreign_unix = HashSet::new();
        for p in procs.iter().filter(|p| p.alive() && p.netns.is_some() && p.netns != here) {
            tcp.extend(diag::proc_net_tcp_of(p.pid));
            for (ino, u) in diag::proc_net_unix_of(p.pid) {
                foreign_unix.insert(ino);
                unix.entry(ino).or_insert(u);
            }
        }

        let mut sockets = Vec::new();
        let mut unmatched = Vec::new();
        for p in procs.iter().filter(|p| p.alive()) {
            for f in &p.fds {
                let Some(ino) = socket_inode(&f.target) else {
                    continue;
                };
                let mut e =
                    SocketEntry { role: p.role.clone(), pid: p.pid, fd: f.fd, inode: ino, ..SocketEntry::default() };
                if let Some(u) = unix.get(&ino) {
                    e.family = Family::Unix;
                    e.state = diag::state_name(u.state).into();
                    e.local = u.name.clone().unwrap_or_default();
                    e.recv_q = u.rq;
                    e.send_q = u.wq;
                    if let Some(m) = u.mem {
                        e.rcvbuf = Some(m[diag::MEM_RCVBUF] as u64);
                        e.sndbuf = Some(m[diag::MEM_SNDBUF] as u64);
                        e.send_mem = Some(m[diag::MEM_WMEM_ALLOC] as u64);
                    }
                    e.peer = u.peer.and_then(|pi| unix.get(&pi)).and_then(|pu| pu.name.clone()).unwrap_or_default();
                } else if let Some(t) = tcp.get(&ino) {
                    e.family = Family::Tcp;
                    e.state = diag::tcp_state_name(t.state).into();
                    e.local = format!("{}:{}", t.local.0, t.local.1);
                    e.local_ip = Some(t.local.0.to_string());
                    e.local_port = Some(t.local.1);
                    if !t.remote.0.is_unspecified() || t.remote.1 != 0 {
                        e.peer = format!("{}:{}", t.remote.0, t.remote.1);
                        e.peer_port = Some(t.remote.1);
                    }
                    e.recv_q = t.rx;
                    e.send_q = t.tx;
                    if e.listening() {
                        // The accept queue's limit (TCP_INFO on a listener:
                        // tcpi_unacked = pending, tcpi_sacked = backlog).
                        if let Some((pending, backlog)) = diag::listen_backlog(p.pid, f.fd) {
                            e.recv_q = pending;
                            e.send_q = backlog;
                        }
                    }
                    if let Some(m) = diag::meminfo(p.pid, f.fd) {
                        e.rcvbuf = Some(m[diag::MEM_RCVBUF] as u64);
                        e.sndbuf = Some(m[diag::MEM_SNDBUF] as u64);
                        e.send_mem = Some(m[diag::MEM_WMEM_QUEUED] as u64);
                    }
                } else {
                    unmatched.push(ino);
                    continue;
                }
                sockets.push(e);
            }
        }
        // Who holds the other end: Unix by the peer inode the kernel
        // reports, TCP by matching address pairs.
        let by_inode: HashMap<u64, String> = sockets.iter().map(|s| (s.inode, s.role.clone())).collect();
        let by_local: HashMap<String, String> = sockets
            .iter()
            .filter(|s| s.family == Family::Tcp && !s.listening())
            .map(|s| (s.local.clone(), s.role.clone()))
            .collect();
        for s in &mut sockets {
            s.peer_role = if s.family == Family::Unix {
                unix.get(&s.inode).and_then(|u| u.peer).and_then(|pi| by_inode.get(&pi).cloned())
            } else if s.peer.is_empty() {
                None
            } else {
                by_local.get(&s.peer).cloned()
            };
        }
        pair_foreign_unix(&mut sockets, &foreign_unix);
        sockets.sort_by_key(|s| (!s.listening(), s.role != "server", s.role.clone(), s.fd));

        // The gauge: what send() blocks on (see the module notes), each
        // client's memory split at its own SO_SNDBUF.
        let client_socks = || sockets.iter().filter(|s| s.role.starts_with("client") && !s.listening());
        let (mut depth, mut over, mut capacity) = (0, 0, 0);
        for s in client_socks() {
            if let (Some(mem), Some(buf)) = (s.send_mem, s.sndbuf) {
                let c = Channel::split(mem, buf, Unit::Bytes);
                (depth, over, capacity) = (depth + c.depth, over + c.over, capacity + buf);
            }
        }
        if capacity > 0 {
            self.capacity = capacity;
        }
        self.history.push_back(depth);
        if self.history.len() > crate::monitor::HISTORY {
            self.history.pop_front();
        }
        let recv_payload = sockets.iter().filter(|s| s.role == "server" && !s.listening()).map(|s| s.recv_q).sum();
        let send_payload = client_socks().filter(|s| s.family == Family::Tcp).map(|s| s.send_q).sum();

        let port = sockets.iter().find(|s| s.family == Family::Tcp && s.listening()).and_then(|s| s.local_port);
        let users = |hit: &dyn Fn(&SocketEntry) -> bool| {
            sockets.iter().filter(|s| hit(s)).map(|s| s.pid).collect::<HashSet<_>>().len() as u64
        };
        let path = (families & FAM_UNIX != 0).then(|| self.path.clone());
        let path_users = path
            .as_ref()
            .map_or(0, |p| users(&|s: &SocketEntry| s.family == Family::Unix && (&s.local == p || &s.peer == p)));
        let port_users = port.map_or(0, |port| {
            users(&|s: &SocketEntry| {
                s.family == Family::Tcp && (s.local_port == Some(port) || s.peer_port == Some(port))
            })
        });

        let remote = remote_on.then(|| self.remote_detail(tel, &procs, &sockets, port_gsn));
        if let Some(why) = remote.as_ref().and_then(|r| r.failed.clone()) {
            self.notes.say(t_ms, "netns-failed", "note_socket_netns_failed", &[("why", why)]);
        }
        self.notes_for(t_ms, &procs, &sockets, recv_payload);

        let integrity = crate::monitor::integrity(ss);
        MechanismSnapshot {
            latency_us: None,
            cost: None,
            kind: Kind::Socket,
            channel: Channel {
                depth,
                capacity: if capacity > 0 { capacity } else { self.capacity },
                unit: Unit::Bytes,
                over,
            },
            integrity,
            history: self.history.iter().copied().collect(),
            notes: self.notes.list(),
            knobs: crate::monitor::knob_values(tel, KnobId::SOCKET),
            detail: Detail::Socket(SocketDetail {
                family: FAMILIES[(tel.knob(KnobId::SocketFamily) as usize).min(2)].into(),
                path,
                port,
                port_getsockname: port_gsn,
                nodelay: tel.knob(KnobId::SocketNodelay) != 0,
                buffer: tel.knob(KnobId::SocketBuffer),
                sockets,
                recv_payload,
                send_payload,
                path_users,
                port_users,
                unmatched,
                remote,
            }),
            processes: procs,
        }
    }
}

impl SocketProbe {
    pub(super) fn new(
        server: usize,
        clients: &[usize],
        remote: Option<usize>,
        plan: Plan,
        families: u64,
        dir: &Path,
    ) -> SocketProbe {
        let dir = dir.to_path_buf();
        let remote_role = format!("client-{}", clients.len() + 1);
        SocketProbe {
            remote: remote.map(|s| (s, ProcTracker::new(s, &remote_role, CALLS, &dir))),
            plan,
            abstract_name: format!("@{}", abstract_name(&dir)),
            server: ProcTracker::new(server, "server", CALLS, &dir),
            clients: clients
                .iter()
                .enumerate()
                .map(|(i, &s)| ProcTracker::new(s, &format!("client-{}", i + 1), CALLS, &dir))
                .collect(),
            server_slot: server,
            families,
            path: dir.join(SOCK_NAME).display().to_string(),
            history: VecDeque::new(),
            capacity: 0,
            notes: NoteLog::default(),
        }
    }

    /// The two namespaces, the veth between them and the connection
    /// across it, as each namespace's own tables show them.
    fn remote_detail(
        &self,
        tel: &Telemetry,
        procs: &[ProcessSnapshot],
        sockets: &[SocketEntry],
        port: Option<u16>,
    ) -> RemoteDetail {
        let server = &procs[0];
        let Some(rp) = procs.last().filter(|_| procs.len() > 1 && self.remote.is_some()) else {
            return RemoteDetail::default();
        };
        let slot = tel.slot(self.remote.as_ref().map_or(0, |(s, _)| *s));
        let reach = |i: usize| match slot.aux[i].load(Relaxed) {
            0 => None,
            1 => Some("connected".to_string()),
            v => Some(crate::mechanisms::pipe::errno_name((v - 2) as i32).to_string()),
        };
        let failed = match slot.aux[worker::AUX_REMOTE_FAILED].load(Relaxed) {
            0 => None,
            v => {
                let step = netns::Step::from_u64(v >> 32).map_or("setup", |s| s.name());
                Some(format!("{step}: {}", crate::mechanisms::pipe::errno_name((v & 0xffff_ffff) as i32)))
            }
        };
        let mine = sockets.iter().find(|s| s.role == rp.role && s.family == Family::Tcp && !s.listening());
        let theirs = mine.and_then(|m| {
            sockets.iter().find(|s| s.server_side() && s.family == Family::Tcp && !s.listening() && s.peer == m.local)
        });
        let dev = |pid: i32, name: &str| {
            netns::dev_counters(pid, name).map(|(rx_bytes, rx_packets, tx_bytes, tx_packets)| DevCounters {
                rx_bytes,
                rx_packets,
                tx_bytes,
                tx_packets,
            })
        };
        let alive = |p: &ProcessSnapshot| p.alive().then_some(p.pid);
        RemoteDetail {
            role: rp.role.clone(),
            host_netns: server.netns,
            remote_netns: rp.netns,
            host_if: self.plan.host_if.clone(),
            remote_if: self.plan.remote_if.clone(),
            host_ip: theirs.and_then(|s| s.local_ip.clone()),
            remote_ip: mine.and_then(|s| s.local_ip.clone()),
            port: theirs.and_then(|s| s.local_port).or(port),
            host_state: theirs.map(|s| s.state.clone()),
            remote_state: mine.map(|s| s.state.clone()),
            delivered_bytes: theirs.and_then(|s| diag::tcp_bytes_received(s.pid, s.fd)).unwrap_or(0),
            sent_msgs: rp.sent,
            host_dev: alive(server).and_then(|pid| dev(pid, &self.plan.host_if)),
            remote_dev: alive(rp).and_then(|pid| dev(pid, &self.plan.remote_if)),
            reach_tcp: reach(worker::AUX_REMOTE_TCP),
            reach_abstract: reach(worker::AUX_REMOTE_ABSTRACT),
            reach_path: reach(worker::AUX_REMOTE_PATH),
            reach_loopback: reach(worker::AUX_REMOTE_LOOPBACK),
            abstract_name: Some(self.abstract_name.clone()),
            failed,
        }
    }

    fn notes_for(&mut self, t_ms: u64, procs: &[ProcessSnapshot], sockets: &[SocketEntry], recv_payload: u64) {
        let server = &procs[0];
        if server.alive() && server.op == "stalled" && recv_payload > 0 {
            self.notes.say(t_ms, "stalled", "note_socket_stalled", &[]);
        }
        for c in &procs[1..] {
            let blocked = c.alive()
                && c.state == "S"
                && c.op == "send()"
                && (c.wchan.contains("sock_alloc_send") || c.wchan.contains("wait_woken"));
            if blocked {
                let args = [("role", c.role.clone()), ("wchan", c.wchan.clone())];
                self.notes.say(t_ms, "blocked", "note_socket_blocked", &args);
            }
            if c.errors.epipe > 0 || c.errors.other > 0 {
                self.notes.say(t_ms, "peer-gone", "note_socket_peer_gone", &[("role", c.role.clone())]);
            }
        }
        if server.exit.is_some() {
            self.notes.say(t_ms, "server-gone", "note_socket_server_gone", &[]);
        }
        if let Some(l) = sockets.iter().find(|s| s.listening() && s.recv_q > 0) {
            let args = [("n", l.recv_q.to_string()), ("backlog", l.send_q.to_string())];
            self.notes.say(t_ms, "pending", "note_socket_pending", &args);
        }
    }
}
