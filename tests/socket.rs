//! The socket mechanism on real processes: the built binary runs headless
//! (`snapshot --format json`) and we read what its monitor observed.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_ipcscope");

fn snapshot(duration: &str, sets: &[&str]) -> Value {
    let mut cmd = Command::new(EXE);
    cmd.args(["snapshot", "-m", "socket", "--duration", duration, "--format", "json"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("run ipcscope");
    assert!(out.status.success(), "ipcscope failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON snapshot");
    assert_left_nothing(&v);
    v
}

fn mech(v: &Value) -> &Value {
    v["mechanisms"].as_array().unwrap().iter().find(|m| m["kind"] == "socket").expect("a socket mechanism")
}

fn detail(v: &Value) -> &Value {
    &mech(v)["detail"]["socket"]
}

fn sockets(v: &Value) -> Vec<Value> {
    detail(v)["sockets"].as_array().unwrap().clone()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// After the run: no run dir, no socket file, no worker process.
fn assert_left_nothing(v: &Value) {
    let dir = v["run"]["runtime_dir"].as_str().unwrap();
    assert!(!Path::new(dir).exists(), "run dir {dir} left behind");
    assert!(!Path::new(dir).join("sock").exists());
    for m in v["mechanisms"].as_array().unwrap() {
        for p in m["processes"].as_array().unwrap() {
            let pid = u(&p["pid"]);
            if pid == 0 {
                continue;
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            assert!(!comm.starts_with("socket-"), "worker {pid} ({}) still running", comm.trim());
        }
    }
}

fn assert_flow(v: &Value, family: &str) {
    let m = mech(v);
    let i = &m["integrity"];
    assert!(u(&i["delivered"]) > 100, "{family}: too few delivered: {i}");
    for k in ["lost", "corrupt", "duplicated", "reordered", "foreign"] {
        assert_eq!(u(&i[k]), 0, "{family}: {k} in {i}");
    }
    let procs = m["processes"].as_array().unwrap();
    assert_eq!(procs[0]["role"], "server");
    assert_eq!(procs[1]["role"], "client-1");
    // Counters and verdicts are read a moment apart while messages flow.
    let received = u(&procs[0]["received"]) as i64;
    assert!((received - u(&i["delivered"]) as i64).abs() < 100, "{received} vs {i}");
    let socks = sockets(v);
    let listen = socks.iter().find(|s| s["state"] == "LISTEN").expect("a listening socket");
    assert_eq!(listen["family"], family);
    assert_eq!(listen["role"], "server");
    let est: Vec<_> = socks.iter().filter(|s| s["state"] == "ESTABLISHED").collect();
    assert_eq!(est.len(), 2, "{family}: both ends of the connection: {socks:?}");
    // Each end names the other's holder.
    for s in &est {
        let other = if s["role"] == "server" { "client-1" } else { "server" };
        assert_eq!(s["peer_role"], other, "{s}");
    }
}

#[test]
fn unix_flow_loses_nothing() {
    let v = snapshot("1.5", &["socket.family=unix"]);
    assert_flow(&v, "unix");
    let d = detail(&v);
    let path = d["path"].as_str().unwrap();
    assert!(path.starts_with(v["run"]["runtime_dir"].as_str().unwrap()));
    let listen = sockets(&v).into_iter().find(|s| s["state"] == "LISTEN").unwrap();
    assert_eq!(listen["local"], path);
    // The listener and the server's accepted socket carry the path; the
    // client's socket has it as its peer: two processes use it.
    assert_eq!(u(&d["path_users"]), 2);
}

#[test]
fn tcp_flow_loses_nothing() {
    let v = snapshot("1.5", &["socket.family=tcp", "socket.nodelay=true"]);
    assert_flow(&v, "tcp");
    assert_eq!(detail(&v)["nodelay"], true);
}

/// The port shown is the one `getsockname` returned (the server publishes
/// it and logs the call) and the one in `/proc/net/tcp`; every TCP socket
/// is on 127.0.0.1.
#[test]
fn tcp_port_is_what_getsockname_returned_and_loopback_only() {
    // A stalled server makes few calls, so its setup is still in the log.
    let v = snapshot("1", &["socket.family=tcp", "consumer.rate=0"]);
    let d = detail(&v);
    let port = u(&d["port"]);
    assert!((1024..=65535).contains(&port), "port {port}");
    assert_eq!(u(&d["port_getsockname"]), port);
    let server = &mech(&v)["processes"][0];
    let events: Vec<&str> = server["events"].as_array().unwrap().iter().map(|e| e["text"].as_str().unwrap()).collect();
    let want = format!("= 0 → 127.0.0.1:{port}");
    assert!(
        events.iter().any(|e| e.starts_with("getsockname(") && e.ends_with(&want)),
        "no getsockname event giving {port}: {events:?}"
    );
    assert!(events.iter().any(|e| e.starts_with("bind(") && e.contains("127.0.0.1:0")));
    for s in sockets(&v) {
        assert_eq!(s["family"], "tcp");
        assert_eq!(s["local_ip"], "127.0.0.1", "{s}");
        if s["state"] != "LISTEN" {
            assert!(s["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{s}");
        }
    }
    assert!(d["unmatched"].as_array().unwrap().is_empty());
    // The client connected to that very port.
    let listen = sockets(&v).into_iter().find(|s| s["state"] == "LISTEN").unwrap();
    assert_eq!(u(&listen["local_port"]), port);
    assert!(sockets(&v).iter().any(|s| s["role"] == "client-1" && s["peer_port"].as_u64() == Some(port)));
}

fn assert_stalled(family: &str, wchan: &str) {
    // The client at full speed: at 1000 messages a second a loaded machine
    // may not fill the receiver's autotuned TCP buffer and the send buffer
    // within the snapshot.
    let v = snapshot("3", &[&format!("socket.family={family}"), "consumer.rate=0", "producer.rate=max"]);
    let m = mech(&v);
    let ch = &m["channel"];
    let (depth, cap) = (u(&ch["depth"]), u(&ch["capacity"]));
    assert!(cap > 0 && depth >= cap, "{family}: send buffer not full: {ch}");
    // Never past capacity: the memory the last send() took past SO_SNDBUF
    // (the kernel checks before it allocates) is counted apart.
    assert_eq!(depth, cap, "{family}: gauge past capacity: {ch}");
    let mem: u64 = sockets(&v).iter().filter(|s| s["role"] == "client-1").filter_map(|s| s["send_mem"].as_u64()).sum();
    assert_eq!(depth + u(&ch["over"]), mem, "{family}: {ch}");
    let client = &m["processes"][1];
    assert_eq!(client["state"], "S", "{family}: {client}");
    assert_eq!(client["op"], "send()");
    assert!(
        client["wchan"].as_str().unwrap().contains(wchan),
        "{family}: client waits in {} not {wchan}",
        client["wchan"]
    );
    assert_eq!(u(&m["processes"][0]["received"]), 0);
    // The bytes sit in the server's receive queue.
    let d = detail(&v);
    assert!(u(&d["recv_payload"]) > 0);
    let server_conn = sockets(&v)
        .into_iter()
        .find(|s| s["role"] == "server" && s["state"] == "ESTABLISHED")
        .expect("the accepted socket");
    assert!(u(&server_conn["recv_q"]) > 0);
    assert!(m["notes"].as_array().unwrap().iter().any(|n| n["key"] == "blocked"));
}

#[test]
fn stalled_server_blocks_unix_client() {
    assert_stalled("unix", "sock_alloc_send_pskb");
}

#[test]
fn stalled_server_blocks_tcp_client() {
    assert_stalled("tcp", "wait_woken");
}

#[test]
fn several_clients_share_one_listener() {
    let v = snapshot("1.5", &["socket.family=tcp", "socket.clients=3"]);
    let m = mech(&v);
    let procs = m["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 4);
    let server_received = u(&procs[0]["received"]);
    let mut sent = 0;
    for (i, c) in procs[1..].iter().enumerate() {
        assert_eq!(c["role"], format!("client-{}", i + 1));
        assert!(u(&c["sent"]) > 50, "{c}");
        sent += u(&c["sent"]);
    }
    // Each process's counters are read at a slightly different moment, so
    // allow a sample's worth of skew between what was sent and received.
    assert!(server_received > 150, "server received {server_received}");
    assert!(server_received <= sent + 300, "server received {server_received} of {sent} sent");
    assert_eq!(u(&m["integrity"]["lost"]), 0);
    let socks = sockets(&v);
    assert_eq!(socks.iter().filter(|s| s["state"] == "LISTEN").count(), 1);
    let accepted: Vec<_> = socks.iter().filter(|s| s["role"] == "server" && s["state"] == "ESTABLISHED").collect();
    assert_eq!(accepted.len(), 3, "one connected socket per client");
    // All on the listener's port, each from a different client port.
    let port = detail(&v)["port"].as_u64();
    assert!(accepted.iter().all(|s| s["local_port"].as_u64() == port));
    let peers: HashSet<_> = accepted.iter().map(|s| s["peer_port"].as_u64()).collect();
    assert_eq!(peers.len(), 3);
    assert_eq!(u(&detail(&v)["port_users"]), 4);
}

/// Both families at once, checked from outside while it runs: every socket
/// of the run's workers in /proc/net/tcp is bound to 127.0.0.1, none is in
/// /proc/net/tcp6, and the Unix one is a path in the run dir.
#[test]
fn nothing_bound_outside_loopback() {
    let child = Command::new(EXE)
        .args(["snapshot", "-m", "socket", "--duration", "2", "--format", "json"])
        .args(["--set", "socket.family=both", "--set", "socket.clients=2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let sup = child.id().to_string();
    let mut inodes = HashSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if rest.split_whitespace().nth(1) != Some(sup.as_str()) {
            continue;
        }
        for fd in std::fs::read_dir(e.path().join("fd")).into_iter().flatten().flatten() {
            let t = std::fs::read_link(fd.path()).unwrap_or_default();
            if let Some(n) = t.to_str().and_then(|t| t.strip_prefix("socket:[")).and_then(|t| t.strip_suffix(']')) {
                inodes.insert(n.to_string());
            }
        }
    }
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let mut seen = 0;
    for line in tcp.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && inodes.contains(f[9]) {
            seen += 1;
            assert!(f[1].starts_with("0100007F:"), "bound outside loopback: {line}");
        }
    }
    // Listener + 1 accepted + 1 client (the TCP half of `both`).
    assert!(seen >= 3, "found {seen} of our TCP sockets in /proc/net/tcp");
    let tcp6 = std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    for line in tcp6.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(!(f.len() > 9 && inodes.contains(f[9])), "IPv6 socket: {line}");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_left_nothing(&v);
    let d = detail(&v);
    assert!(d["path"].is_string() && d["port"].is_u64());
    let fams: HashSet<_> = sockets(&v).iter().map(|s| s["family"].as_str().unwrap().to_string()).collect();
    assert_eq!(fams.len(), 2);
    assert_eq!(u(&mech(&v)["integrity"]["lost"]), 0);
}

/// `48.0K` → 49152, `5` → 5.
fn amount(s: &str) -> Option<f64> {
    let (n, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1024.0),
        'M' => (&s[..s.len() - 1], 1048576.0),
        _ => (s, 1.0),
    };
    n.parse::<f64>().ok().map(|n| n * mult)
}

/// The frame of a stalled Unix run, as a class sees it: the gauge is full,
/// names its unit, and no `a/b` on screen is over 1 (the kernel's count
/// past SO_SNDBUF shows as `+N`); the payload is told apart from memory.
#[test]
fn stalled_socket_gauge_stays_within_capacity() {
    for size in ["80x24", "120x36"] {
        let out = Command::new(EXE)
            .args(["snapshot", "-m", "socket", "--duration", "1.5", "--format", "text", "--size", size])
            .args(["--lang", "en", "--set", "socket.family=unix", "--set", "consumer.rate=0"])
            .output()
            .expect("run ipcscope");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let frame = String::from_utf8_lossy(&out.stdout);
        let mut fractions = 0;
        for word in frame.split(|c: char| c.is_whitespace() || "║│┃".contains(c)) {
            let Some((a, b)) = word.split_once('/') else { continue };
            let (Some(a), Some(b)) = (amount(a), amount(b)) else { continue };
            assert!(a <= b, "{size}: {word} is past its capacity:\n{frame}");
            fractions += 1;
        }
        assert!(fractions > 0, "{size}: no gauge:\n{frame}");
        assert!(frame.contains("64.0K/64.0K"), "{size}: gauge not full:\n{frame}");
        assert!(frame.contains("memory"), "{size}: the gauge's unit is not named:\n{frame}");
    }
}

// --- socket.remote=netns -------------------------------------------------

/// This process may make network namespaces and veth pairs (root in CI).
fn netns_allowed() -> bool {
    ipcscope::mechanisms::socket::netns::refusal().is_none()
}

/// The links of run `pid` in our namespace (`ipcs<PID>h` / `r`).
fn run_links(pid: u64) -> Vec<String> {
    ipcscope::mechanisms::socket::netns::links_of_run(pid as i32)
}

/// Also as `ip link` lists them, where the command is there.
fn ip_link_lists(pid: u64) -> bool {
    let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() else { return false };
    String::from_utf8_lossy(&out.stdout).contains(&format!("ipcs{pid}"))
}

/// Processes whose network namespace is `ino`.
fn holders_of_netns(ino: u64) -> Vec<String> {
    let want = format!("net:[{ino}]");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| std::fs::read_link(e.path().join("ns/net")).is_ok_and(|l| l.to_string_lossy() == want))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A namespace is destroyed (and the veth with it) by the kernel's
/// cleanup work after its last process: wait for it, bounded.
fn wait_gone(pid: u64) {
    for _ in 0..200 {
        if run_links(pid).is_empty() && !ip_link_lists(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("run {pid} left links behind: {:?}", run_links(pid));
}

#[test]
fn remote_netns_client_reaches_the_port_across_a_veth_and_leaves_nothing() {
    if !netns_allowed() {
        return remote_netns_is_refused_here();
    }
    let v = snapshot("2.5", &["socket.remote=netns", "socket.family=tcp"]);
    let m = mech(&v);
    let procs = m["processes"].as_array().unwrap();
    let roles: Vec<&str> = procs.iter().map(|p| p["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["server", "client-1", "client-2"]);
    let netns = |i: usize| u(&procs[i]["netns"]);
    // Two namespaces: the server and the local client share one.
    assert_eq!(netns(0), netns(1));
    assert_ne!(netns(0), netns(2), "the remote client is in a namespace of its own");
    let r = &detail(&v)["remote"];
    assert_eq!(r["role"], "client-2");
    assert_eq!((u(&r["host_netns"]), u(&r["remote_netns"])), (netns(0), netns(2)));
    // The connection, as each namespace's own table lists it.
    assert_eq!((r["host_state"].as_str(), r["remote_state"].as_str()), (Some("ESTABLISHED"), Some("ESTABLISHED")));
    let (hip, rip) = (r["host_ip"].as_str().unwrap(), r["remote_ip"].as_str().unwrap());
    assert!(hip.starts_with("10.231.") && rip.starts_with("10.231."), "{hip} {rip}");
    assert_ne!(hip, rip);
    assert_eq!(r["port"], detail(&v)["port"], "the same port number as on 127.0.0.1");
    // Traffic went across: the server's socket received it, the veth ends
    // counted it, the remote client's messages arrived whole.
    assert!(u(&r["delivered_bytes"]) > 10_000, "{r}");
    assert!(u(&r["sent_msgs"]) > 100, "{r}");
    assert!(u(&r["remote_dev"]["tx_bytes"]) >= u(&r["delivered_bytes"]), "{r}");
    assert!(u(&r["host_dev"]["rx_bytes"]) >= u(&r["delivered_bytes"]), "{r}");
    for k in ["lost", "corrupt", "duplicated", "reordered", "foreign"] {
        assert_eq!(u(&m["integrity"][k]), 0, "{k}");
    }
    // What is true of Unix sockets across network namespaces: a path is
    // found (a file, shared file system), an abstract name is not, and
    // 127.0.0.1 is the namespace's own.
    assert_eq!(r["reach_tcp"], "connected");
    assert_eq!(r["reach_path"], "connected");
    assert_eq!(r["reach_abstract"], "ECONNREFUSED");
    assert_eq!(r["reach_loopback"], "ECONNREFUSED");
    assert!(r["failed"].is_null());
    // Gone with the run: the namespace, the veth pair, the processes.
    let run = u(&v["run"]["pid"]);
    wait_gone(run);
    assert!(holders_of_netns(netns(2)).is_empty(), "{:?}", holders_of_netns(netns(2)));
}

/// Each way the run can end — SIGTERM, or kill -9 of the TUI's process
/// (its workers die with it by PR_SET_PDEATHSIG) — takes the namespace and
/// the veth with it.
#[test]
fn remote_netns_veth_goes_when_the_run_is_killed() {
    if !netns_allowed() {
        return;
    }
    for sig in [libc::SIGTERM, libc::SIGKILL] {
        let mut child = Command::new(EXE)
            .args(["snapshot", "-m", "socket", "--duration", "60", "--format", "json"])
            .args(["--set", "socket.remote=netns"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let run = child.id() as u64;
        let mut up = false;
        for _ in 0..200 {
            if run_links(run).len() == 1 {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(run as i32, sig) };
        child.wait().unwrap();
        assert!(up, "signal {sig}: the run's veth end never appeared");
        wait_gone(run);
        // The workers (children of the killed run) are gone too.
        for i in 0..200 {
            let left: Vec<_> = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| {
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    let ppid = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(1).map(String::from));
                    ppid.as_deref() == Some(run.to_string().as_str())
                })
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(i < 199, "signal {sig}: workers of run {run} still alive");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Where the run may not make namespaces (here: another user, without
/// capabilities), `socket.remote=netns` is refused in one line, exit 1.
fn remote_netns_is_refused_here() {
    let out = Command::new(EXE)
        .args(["snapshot", "-m", "socket", "--duration", "1", "--set", "socket.remote=netns"])
        .output()
        .unwrap();
    assert_refusal(&out);
}

fn assert_refusal(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("socket.remote=netns")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("needs root") && lines[0].contains("CAP_NET_ADMIN"), "{}", lines[0]);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn remote_netns_refused_for_another_user() {
    const UID: u32 = 61031;
    if !nix::unistd::geteuid().is_root() {
        return remote_netns_is_refused_here();
    }
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(format!("ipcscope-netns-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = root.join("ipcscope");
    std::fs::copy(EXE, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("/usr/bin/timeout")
        .arg("60")
        .args(["setpriv", &format!("--reuid={UID}"), &format!("--regid={UID}"), "--clear-groups"])
        .arg(&exe)
        .args(["snapshot", "-m", "socket", "--duration", "1", "--set", "socket.remote=netns"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &root)
        .current_dir(&root)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&root);
    // The user's base directory, made for this run (uid 61031 is this test's).
    let _ = std::fs::remove_dir_all(format!("/tmp/ipcscope-{UID}"));
    assert_refusal(&out);
}

#[test]
fn remote_knob_is_listed_and_checked() {
    let out = Command::new(EXE).arg("knobs").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.contains("socket.remote") && l.contains("netns")), "{text}");
    let out = Command::new(EXE)
        .args(["snapshot", "-m", "socket", "--duration", "1", "--set", "socket.remote=moon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
