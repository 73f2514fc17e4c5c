//! The emulated NT kernel over real sockets (no supervisor, no TUI): `server::run` in a thread, a
//! server and clients as threads and as a separate child process, the three
//! data paths with byte-for-byte checks, callbacks, garbage input.

use ipcscope::mechanisms::alpc::client::{AlpcError, AlpcProcess, ConnectOptions, Observer};
use ipcscope::mechanisms::alpc::proto::{encode_request, PortAttributes, Request, SendMessage};
use ipcscope::mechanisms::alpc::rpc::{DataPath, RpcClient, RpcServer, Served, UNKNOWN_PROCEDURE};
use ipcscope::mechanisms::alpc::server;
use ipcscope::mechanisms::alpc::types::{LpcMessageType, NtStatus};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const CHILD_SOCKET_ENV: &str = "IPCSCOPE_ALPC_CHILD_SOCKET";
const CHILD_ENDPOINT_ENV: &str = "IPCSCOPE_ALPC_CHILD_ENDPOINT";
const WAIT: Option<Duration> = Some(Duration::from_secs(10));

/// A kernel running in a thread on a socket in its own temporary directory.
struct Kernel {
    dir: PathBuf,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Kernel {
    fn start(tag: &str) -> Kernel {
        let dir = std::env::temp_dir().join(format!("ipcscope-alpc-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("nt.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (socket, stop) = (socket.clone(), stop.clone());
            std::thread::spawn(move || server::run(&socket, || stop.load(Ordering::Relaxed)))
        };
        let started = Instant::now();
        while !socket.exists() {
            assert!(started.elapsed() < Duration::from_secs(5), "kernel did not start");
            std::thread::sleep(Duration::from_millis(2));
        }
        Kernel { dir, socket, stop, thread: Some(thread) }
    }

    fn process(&self, name: &str) -> AlpcProcess {
        AlpcProcess::connect_named(&self.socket, name).unwrap()
    }

    /// Stops the kernel and checks it left no file behind.
    fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap().unwrap();
        }
        assert!(!self.socket.exists(), "the socket file is removed");
        std::fs::remove_dir(&self.dir).unwrap();
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Distinct, reproducible bytes, so a misplaced chunk cannot pass.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(u32::from(seed) % 32) as u8 ^ seed).collect()
}

fn transform(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().map(|b| b.wrapping_add(1)).collect()
}

/// The echo procedures both RPC tests use.
fn procedures(name: &str, args: &[u8], out: &mut Vec<u8>) -> Result<(), u32> {
    match name {
        "Transform" => {
            out.extend(transform(args));
            Ok(())
        }
        "Fail" => Err(42),
        _ => Err(UNKNOWN_PROCEDURE),
    }
}

#[test]
fn raw_calls_move_all_three_paths_between_threads() {
    let kernel = Kernel::start("raw");
    let name = r"\RPC Control\ipcscope-echo";
    let mut server = kernel.process("server");
    let port = server.nt_alpc_create_port(name, PortAttributes::default()).unwrap();

    let socket = kernel.socket.clone();
    let client = std::thread::spawn(move || {
        let mut p = AlpcProcess::connect_named(&socket, "client").unwrap();
        let options = ConnectOptions {
            client_section_size: 64 << 10,
            connection_data: b"hi".to_vec(),
            timeout: WAIT,
            ..Default::default()
        };
        let connected = p.nt_alpc_connect_port(name, &options).unwrap();
        assert_eq!(connected.connection_data, b"welcome");
        let section = connected.own_section.expect("a section for large messages");
        assert!(connected.peer_section.is_some(), "the server's reply section");
        p.grant_direct_access().unwrap();

        // Path 1: 100 bytes through the queue.
        let small = pattern(100, 1);
        let reply =
            p.send_request(connected.port, SendMessage { data: small.clone(), ..Default::default() }, WAIT).unwrap();
        assert_eq!(reply.data, transform(&small));

        // Path 2: 4 KiB through the section, both ways.
        let medium = pattern(4096, 2);
        let view = p.stage_in_section(connected.port, section, &medium).unwrap();
        let reply =
            p.send_request(connected.port, SendMessage { view: Some(view), ..Default::default() }, WAIT).unwrap();
        assert!(reply.data.is_empty(), "the reply carried only a view");
        assert_eq!(p.payload(&reply).unwrap(), transform(&medium));

        // Path 3: 1 MiB read and written directly in this address space.
        let large = pattern(1 << 20, 3);
        let mut answer = vec![0u8; 1 << 20];
        let message = SendMessage {
            data: b"direct".to_vec(),
            data_info: vec![AlpcProcess::data_entry(&large), AlpcProcess::data_entry_mut(&mut answer)],
            ..Default::default()
        };
        let reply = p.send_request(connected.port, message, WAIT).unwrap();
        assert_eq!(reply.data, b"written");
        assert!(answer == transform(&large), "1 MiB written back byte for byte");
        p.nt_close(connected.port).unwrap();
    });

    let mut served = 0;
    let mut closed = false;
    let mut server_port = 0;
    let mut reply_section = None;
    while !closed {
        let m = server.receive(port, WAIT).unwrap();
        match m.header.message_type().unwrap() {
            LpcMessageType::ConnectionRequest => {
                assert_eq!(m.data, b"hi");
                let accepted =
                    server.nt_alpc_accept_connect_port(port, &m, true, 0, 64 << 10, b"welcome").unwrap().unwrap();
                server_port = accepted.port;
                reply_section = accepted.own_section;
            }
            LpcMessageType::Request if m.data == b"direct" => {
                assert_eq!(m.data_info.len(), 2);
                let mut buffer = vec![0u8; m.data_info[0].size as usize];
                assert_eq!(server.nt_read_request_data(port, &m, 0, &mut buffer).unwrap(), 1 << 20);
                // Past the declared region: refused, nothing copied.
                let mut too_big = vec![0u8; (1 << 20) + 1];
                let err = server.nt_read_request_data(port, &m, 0, &mut too_big).unwrap_err();
                assert_eq!(err.status(), Some(NtStatus::STATUS_INVALID_PARAMETER));
                server.nt_write_request_data(server_port, &m, 1, &transform(&buffer)).unwrap();
                server.reply(port, &m, SendMessage { data: b"written".to_vec(), ..Default::default() }).unwrap();
                // After the reply the client's memory is closed again.
                let err = server.nt_read_request_data(port, &m, 0, &mut buffer[..16]).unwrap_err();
                assert_eq!(err.status(), Some(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH));
                served += 1;
            }
            LpcMessageType::Request => {
                let payload = server.payload(&m).unwrap();
                let answer = transform(&payload);
                let message = if m.view.is_some() {
                    let view = server.stage_in_section(server_port, reply_section.unwrap(), &answer).unwrap();
                    SendMessage { view: Some(view), ..Default::default() }
                } else {
                    SendMessage { data: answer, ..Default::default() }
                };
                server.reply(server_port, &m, message).unwrap();
                served += 1;
            }
            LpcMessageType::PortClosed => {
                assert_eq!(m.port_context, u64::from(server_port));
                server.nt_close(server_port).unwrap();
                closed = true;
            }
            other => panic!("unexpected {other}"),
        }
    }
    client.join().unwrap();
    assert_eq!(served, 3);

    let state = Observer::connect(&kernel.socket).unwrap().state().unwrap();
    assert_eq!(state.totals.section_messages, 2, "request and reply through sections");
    assert_eq!(state.totals.section_bytes, 2 * 4096);
    assert_eq!(state.totals.direct_read_bytes, 1 << 20);
    assert_eq!(state.totals.direct_write_bytes, 1 << 20);
    assert!(state.totals.copied_messages >= 3);
    assert!(state.channels.is_empty() && state.sections.is_empty(), "the channel is gone once both ends closed");
    assert!(state.recent_calls.iter().any(|l| l.contains("NtReadRequestData") && l.contains("1048576 bytes")));
    drop(server);
    kernel.finish();
}

#[test]
fn callback_is_served_while_the_client_waits() {
    let kernel = Kernel::start("callback");
    let name = r"\RPC Control\ipcscope-callback";
    let mut server = kernel.process("server");
    let port = server.nt_alpc_create_port(name, PortAttributes::default()).unwrap();
    let socket = kernel.socket.clone();
    let client = std::thread::spawn(move || {
        let mut p = AlpcProcess::connect_named(&socket, "client").unwrap();
        let c = p.nt_alpc_connect_port(name, &ConnectOptions { timeout: WAIT, ..Default::default() }).unwrap();
        let first =
            p.send_request(c.port, SendMessage { data: b"outer".to_vec(), ..Default::default() }, WAIT).unwrap();
        // Not the reply: the server's nested request, same MessageId.
        assert_eq!(first.header.message_type(), Some(LpcMessageType::Request));
        assert_ne!(first.header.callback_id, 0);
        assert_eq!(first.data, b"need a value");
        let last = p
            .nt_reply_wait_reply_port(
                c.port,
                &first,
                SendMessage { data: b"value 7".to_vec(), ..Default::default() },
                WAIT,
            )
            .unwrap();
        assert_eq!(last.header.message_type(), Some(LpcMessageType::Reply));
        assert_eq!(last.header.message_id, first.header.message_id);
        assert_eq!(last.data, b"outer done with value 7");
    });
    let request = server.receive(port, WAIT).unwrap();
    let accepted = server.nt_alpc_accept_connect_port(port, &request, true, 0, 0, b"").unwrap().unwrap();
    let outer = server.receive(port, WAIT).unwrap();
    assert_eq!(outer.data, b"outer");
    let answer = server
        .send_callback(
            accepted.port,
            &outer,
            SendMessage { data: b"need a value".to_vec(), ..Default::default() },
            WAIT,
        )
        .unwrap();
    assert_eq!(answer.data, b"value 7");
    let mut text = b"outer done with ".to_vec();
    text.extend_from_slice(&answer.data);
    server.reply(accepted.port, &outer, SendMessage { data: text, ..Default::default() }).unwrap();
    client.join().unwrap();
    let state = Observer::connect(&kernel.socket).unwrap().state().unwrap();
    assert_eq!(state.totals.callbacks, 1);
    drop(server);
    kernel.finish();
}

/// Runs only as the child process of `rpc_crosses_into_a_child_process`:
/// an RPC client in its own address space.
#[test]
fn rpc_child_role() {
    let (Ok(socket), Ok(endpoint)) = (std::env::var(CHILD_SOCKET_ENV), std::env::var(CHILD_ENDPOINT_ENV)) else {
        return; // a normal test run: nothing to do
    };
    let process = AlpcProcess::connect_named(Path::new(&socket), "rpc-child").unwrap();
    let mut client = RpcClient::bind(process, &endpoint, 64 << 10).unwrap();
    let paths = [
        (100, DataPath::Copied, DataPath::Copied),
        (4096, DataPath::Section, DataPath::Section),
        (1 << 20, DataPath::Direct, DataPath::Direct),
    ];
    // There and back: each result's buffer is given back and the next,
    // larger or smaller, lands in it — and must hold only its own bytes.
    for (round, &(len, args_path, result_path)) in paths.iter().chain(paths.iter().rev()).enumerate() {
        let args = pattern(len, (len + round) as u8);
        let outcome = client.call("Transform", &args, len).unwrap();
        assert!(outcome.result == transform(&args), "{len} bytes verified");
        assert_eq!((outcome.args_path, outcome.result_path), (args_path, result_path), "{len} bytes");
        assert_eq!(outcome.trace.len(), 8, "down four layers and back up");
        client.recycle(outcome.result);
    }
    // Untraced, the call is the same call.
    client.trace_calls = false;
    let args = pattern(4096, 9);
    let outcome = client.call("Transform", &args, 4096).unwrap();
    assert!(outcome.result == transform(&args) && outcome.trace.is_empty());
    client.trace_calls = true;
    assert!(matches!(client.call("Fail", b"x", 10), Err(ipcscope::mechanisms::alpc::rpc::RpcError::Fault(42))));
    assert!(matches!(
        client.call("Nope", b"x", 10),
        Err(ipcscope::mechanisms::alpc::rpc::RpcError::UnknownProcedure(_))
    ));
    println!("child: all calls verified");
}

#[test]
fn rpc_crosses_into_a_child_process() {
    rpc_with_a_child("rpc", false);
}

/// The NT server loop's form: each reply leaves with the next receive.
#[test]
fn rpc_replies_with_the_next_receive() {
    rpc_with_a_child("rpc-combined", true);
}

fn rpc_with_a_child(tag: &str, reply_with_next_receive: bool) {
    let kernel = Kernel::start(tag);
    let endpoint = format!("ipcscope-{tag}-{}", std::process::id());
    let mut rpc = RpcServer::listen(kernel.process("rpc-server"), &endpoint, 64 << 10).unwrap();
    rpc.reply_with_next_receive = reply_with_next_receive;
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rpc_child_role", "--nocapture", "--test-threads=1"])
        .env(CHILD_SOCKET_ENV, &kernel.socket)
        .env(CHILD_ENDPOINT_ENV, &endpoint)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let mut calls = Vec::new();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(60), "child did not finish");
        match rpc.serve_one(&mut procedures, Some(Duration::from_millis(200))).unwrap() {
            Served::Connected { client_pid } => assert_eq!(client_pid, child_pid),
            Served::Call { procedure, args_path, result_path } => calls.push((procedure, args_path, result_path)),
            Served::Closed => break,
            Served::Refused { .. } | Served::Other | Served::Idle => {}
        }
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("child: all calls verified"), "{stdout}");
    assert!(calls.contains(&("Transform".to_string(), DataPath::Direct, DataPath::Direct)), "{calls:?}");
    let state = Observer::connect(&kernel.socket).unwrap().state().unwrap();
    assert!(state.totals.direct_read_bytes >= 1 << 20, "read from the child's address space");
    // Straight into the server's direct window: one copy, not two.
    assert!(state.totals.direct_window_bytes >= 1 << 20, "{:?}", state.totals);
    assert!(state.totals.direct_write_bytes >= 1 << 20, "written into the child's address space");
    assert!(state.totals.section_bytes >= 2 * 4096);
    let combined = state.recent_calls.iter().any(|l| l.contains("LPC_REPLY to id=") && l.contains(", receive"));
    assert_eq!(combined, reply_with_next_receive, "{:#?}", state.recent_calls);
    drop(rpc);
    kernel.finish();
}

#[test]
fn a_direct_window_is_granted_within_the_kernels_limit() {
    let kernel = Kernel::start("window");
    let mut p = kernel.process("server");
    let refused = p.ensure_direct_window(32 << 20).unwrap_err();
    assert_eq!(refused.status(), Some(NtStatus::STATUS_INVALID_PARAMETER));
    p.ensure_direct_window(100_000).unwrap();
    // Rounded up to a power of two, and readable in place.
    assert_eq!(p.direct_window_bytes(128 << 10).unwrap().len(), 128 << 10);
    assert!(p.direct_window_bytes((128 << 10) + 1).is_err());
    // A size once refused is not asked for again.
    let mut observer = Observer::connect(&kernel.socket).unwrap();
    let calls = observer.state().unwrap().calls_total;
    assert!(p.ensure_direct_window(20 << 20).is_err());
    let state = observer.state().unwrap();
    assert_eq!(state.calls_total, calls + 1, "only the observer's own call");
    let log = state.recent_calls;
    assert!(log.iter().any(|l| l.contains("direct window mapped @0x")), "{log:#?}");
    drop(p);
    kernel.finish();
}

#[test]
fn garbage_gets_an_error_status_and_the_kernel_stays_up() {
    let kernel = Kernel::start("garbage");
    let mut p = kernel.process("fuzzer");
    let mut seed = 0x1234_5678_9abc_def1u64;
    for round in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = 1 + (seed % 300) as usize;
        let mut packet: Vec<u8> = (0..len).map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8).collect();
        if round % 2 == 0 {
            // A valid header and garbage after it reaches the body decoders.
            packet.splice(0..packet.len().min(8), encode_request(7, &Request::QueryState)[..8].iter().copied());
            packet[3] = (round % 16) as u8;
        }
        let status = p.send_raw_packet(&packet).unwrap();
        assert_ne!(status, NtStatus::STATUS_SUCCESS, "round {round}: {packet:?}");
    }
    // Well-formed nonsense gets NT statuses.
    let err = p.nt_alpc_connect_port(r"\RPC Control\nobody", &ConnectOptions::default()).unwrap_err();
    assert_eq!(err.status(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    let err = p.send_datagram(0x1234, SendMessage::default()).unwrap_err();
    assert_eq!(err.status(), Some(NtStatus::STATUS_INVALID_HANDLE));
    // A process that vanishes in the middle of a blocking call.
    let mut server = kernel.process("server");
    let port = server.nt_alpc_create_port(r"\RPC Control\vanish", PortAttributes::default()).unwrap();
    let socket = kernel.socket.clone();
    std::thread::spawn(move || {
        let mut q = AlpcProcess::connect_named(&socket, "quitter").unwrap();
        let options = ConnectOptions { timeout: Some(Duration::from_millis(1)), ..Default::default() };
        let _ = q.nt_alpc_connect_port(r"\RPC Control\vanish", &options);
    })
    .join()
    .unwrap();
    match server.receive(port, Some(Duration::from_millis(100))) {
        Ok(m) => assert_eq!(m.header.message_type(), Some(LpcMessageType::ConnectionRequest)),
        Err(AlpcError::Status(s)) => assert_eq!(s, NtStatus::STATUS_TIMEOUT),
        Err(e) => panic!("{e}"),
    }
    // Still answering, and it logged what happened.
    let state = p.query_state().unwrap();
    assert!(state.recent_calls.iter().any(|l| l.contains("malformed call")));
    assert_eq!(state.processes.len(), 2, "the quitter is gone");
    drop(p);
    drop(server);
    kernel.finish();
}
