//! Unit tests of the pure kernel, one behaviour each, plus a hostile
//! pseudo-random sequence checked against the invariants.

use super::*;
use crate::mechanisms::alpc::proto::{
    decode_request, PortAttributes, ReceivedMessage, Request, ResponseBody, SendMessage,
};
use crate::mechanisms::alpc::state::AlpcState;
use crate::mechanisms::alpc::types::msg_flags::{ALPC_MSGFLG_REPLY_MESSAGE, ALPC_MSGFLG_SYNC_REQUEST};
use crate::mechanisms::alpc::types::{handle_text, view_flags, LpcMessageType, PortDataEntry, ViewAttribute};
use std::collections::{BTreeSet, HashMap};

const PORT_NAME: &str = r"\RPC Control\ipcscope-echo";
const SERVER: ConnId = 1;
const CLIENT: ConnId = 2;
const CLIENT2: ConnId = 3;

/// Drives the kernel like the server loop does, collecting responses per
/// connection so a test can look at what each process got.
struct Sim {
    kernel: AlpcKernel,
    now: Millis,
    next_call: u32,
    inbox: HashMap<ConnId, VecDeque<Response>>,
    copies: Vec<DirectCopy>,
    windows: Vec<(ConnId, u64)>,
    created: Vec<SectionId>,
    released: Vec<SectionId>,
}

impl Sim {
    fn new() -> Self {
        Self::with(KernelConfig { kernel_pid: 999, ..KernelConfig::default() })
    }

    fn with(config: KernelConfig) -> Self {
        let mut sim = Sim {
            kernel: AlpcKernel::new(config),
            now: 0,
            next_call: 1,
            inbox: HashMap::new(),
            copies: Vec::new(),
            windows: Vec::new(),
            created: Vec::new(),
            released: Vec::new(),
        };
        for (conn, pid) in [(SERVER, 100), (CLIENT, 200), (CLIENT2, 300)] {
            sim.kernel.attach(conn, pid).unwrap();
        }
        sim
    }

    fn absorb(&mut self, out: Vec<Outgoing>) {
        for o in out {
            match o {
                Outgoing::Respond { conn, response, attach } => {
                    assert_eq!(attach.len(), response.sections.len());
                    self.inbox.entry(conn).or_default().push_back(response);
                }
                Outgoing::CreateSection { section, .. } => self.created.push(section),
                Outgoing::ReleaseSection { section } => self.released.push(section),
                Outgoing::DirectCopy(copy) => self.copies.push(copy),
                Outgoing::CreateWindow { conn, size } => self.windows.push((conn, size)),
                Outgoing::WindowMapped { .. } => {}
            }
        }
        self.kernel.check_invariants().unwrap();
    }

    /// Makes a call; returns its response if it completed at once.
    fn call(&mut self, conn: ConnId, request: Request) -> Option<Response> {
        let call_id = self.next_call;
        self.next_call += 1;
        let out = self.kernel.handle(conn, call_id, request, self.now);
        self.absorb(out);
        let inbox = self.inbox.entry(conn).or_default();
        let at = inbox.iter().position(|r| r.call_id == call_id)?;
        inbox.remove(at)
    }

    fn ok(&mut self, conn: ConnId, request: Request) -> Response {
        let r = self.call(conn, request).expect("call should complete at once");
        assert_eq!(r.status, NtStatus::STATUS_SUCCESS, "{r:?}");
        r
    }

    fn status(&mut self, conn: ConnId, request: Request) -> NtStatus {
        self.call(conn, request).expect("call should complete at once").status
    }

    fn blocks(&mut self, conn: ConnId, request: Request) {
        assert!(self.call(conn, request).is_none(), "call should block");
    }

    /// The response of an earlier blocked call, now delivered.
    fn take(&mut self, conn: ConnId) -> Response {
        self.inbox.entry(conn).or_default().pop_front().expect("a response should be waiting")
    }

    fn nothing_for(&self, conn: ConnId) -> bool {
        self.inbox.get(&conn).is_none_or(|q| q.is_empty())
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        let out = self.kernel.tick(self.now);
        self.absorb(out);
    }

    fn exit(&mut self, conn: ConnId) {
        let out = self.kernel.disconnect(conn, self.now);
        self.absorb(out);
        self.inbox.remove(&conn);
    }

    // -------------------------------------------------------- NT calls

    fn create_port(&mut self, attributes: PortAttributes) -> u32 {
        match self.ok(SERVER, Request::NtAlpcCreatePort { name: PORT_NAME.into(), attributes }).body {
            ResponseBody::Handle { handle } => handle,
            other => panic!("{other:?}"),
        }
    }

    fn receive(&mut self, conn: ConnId, port: u32) -> Option<Response> {
        self.call(
            conn,
            Request::NtAlpcSendWaitReceivePort { port, flags: 0, send: None, receive: true, timeout_ms: None },
        )
    }

    /// Client connects, server receives the request and accepts it.
    /// Returns (server comm port, client comm port, client's response).
    fn connect(
        &mut self,
        client: ConnId,
        conn_port: u32,
        client_section: u64,
        server_section: u64,
    ) -> (u32, u32, Response) {
        self.blocks(
            client,
            Request::NtAlpcConnectPort {
                name: PORT_NAME.into(),
                attributes: PortAttributes::default(),
                client_section_size: client_section,
                connection_data: b"hello".to_vec(),
                timeout_ms: None,
            },
        );
        let request = message(&self.receive(SERVER, conn_port).expect("connection request queued"));
        assert_eq!(request.header.message_type(), Some(LpcMessageType::ConnectionRequest));
        assert_eq!(request.data, b"hello");
        let accepted = self.ok(
            SERVER,
            Request::NtAlpcAcceptConnectPort {
                connection_port: conn_port,
                message_id: request.header.message_id,
                accept: true,
                port_context: 0,
                server_section_size: server_section,
                connection_data: b"welcome".to_vec(),
            },
        );
        let ResponseBody::Handle { handle: server_port } = accepted.body else { panic!("{accepted:?}") };
        let connected = self.take(client);
        assert_eq!(connected.status, NtStatus::STATUS_SUCCESS);
        let ResponseBody::Connected { port: client_port, ref connection_data, .. } = connected.body else {
            panic!("{connected:?}")
        };
        assert_eq!(connection_data, b"welcome");
        (server_port, client_port, connected)
    }

    fn setup(&mut self) -> (u32, u32, u32) {
        let conn_port = self.create_port(PortAttributes::default());
        let (server_port, client_port, _) = self.connect(CLIENT, conn_port, 0, 0);
        (conn_port, server_port, client_port)
    }
}

fn message(r: &Response) -> ReceivedMessage {
    assert_eq!(r.status, NtStatus::STATUS_SUCCESS, "{r:?}");
    match &r.body {
        ResponseBody::Message(m) => m.clone(),
        other => panic!("expected a message, got {other:?}"),
    }
}

fn data(bytes: &[u8]) -> SendMessage {
    SendMessage { data: bytes.to_vec(), ..SendMessage::default() }
}

fn sync_request(port: u32, m: SendMessage) -> Request {
    Request::NtAlpcSendWaitReceivePort {
        port,
        flags: ALPC_MSGFLG_SYNC_REQUEST,
        send: Some(m),
        receive: true,
        timeout_ms: None,
    }
}

fn datagram(port: u32, m: SendMessage) -> Request {
    Request::NtAlpcSendWaitReceivePort { port, flags: 0, send: Some(m), receive: false, timeout_ms: None }
}

fn reply(port: u32, message_id: u32, m: SendMessage) -> Request {
    Request::NtAlpcSendWaitReceivePort {
        port,
        flags: ALPC_MSGFLG_REPLY_MESSAGE,
        send: Some(SendMessage { message_id, ..m }),
        receive: false,
        timeout_ms: None,
    }
}

#[test]
fn connect_accept_makes_a_channel_of_two_ports() {
    let mut sim = Sim::new();
    let (conn_port, server_port, client_port) = sim.setup();
    let state = sim.kernel.state();
    assert_eq!(state.directory.len(), 1);
    assert_eq!(state.directory[0].name, PORT_NAME);
    assert_eq!(state.channels.len(), 1);
    let channel = &state.channels[0];
    assert_eq!(channel.server_port.handle, Some(server_port));
    assert_eq!(channel.client_port.handle, Some(client_port));
    assert_eq!(channel.server_port.owner.unique_process, 100);
    assert_eq!(channel.client_port.owner.unique_process, 200);
    // A NULL PortContext at accept becomes the server port's handle value.
    assert_eq!(channel.port_context, u64::from(server_port));
    let server = state.processes.iter().find(|p| p.conn == SERVER).unwrap();
    let types: Vec<&str> = server.handles.iter().map(|h| h.object_type.as_str()).collect();
    assert_eq!(types, ["ALPC Connection Port", "ALPC Server Communication Port"]);
    assert_ne!(conn_port, server_port);
    assert!(state.recent_calls.iter().any(|l| l.contains("NtAlpcAcceptConnectPort") && l.contains("STATUS_SUCCESS")));
}

#[test]
fn refused_connection_and_unknown_names() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    assert_eq!(
        sim.status(SERVER, Request::NtAlpcCreatePort { name: PORT_NAME.into(), attributes: PortAttributes::default() }),
        NtStatus::STATUS_OBJECT_NAME_COLLISION
    );
    assert_eq!(
        sim.status(
            SERVER,
            Request::NtAlpcCreatePort { name: "no-backslash".into(), attributes: PortAttributes::default() }
        ),
        NtStatus::STATUS_OBJECT_NAME_INVALID
    );
    assert_eq!(
        sim.status(
            CLIENT,
            Request::NtAlpcConnectPort {
                name: r"\RPC Control\nobody".into(),
                attributes: PortAttributes::default(),
                client_section_size: 0,
                connection_data: vec![],
                timeout_ms: None,
            }
        ),
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND
    );
    sim.blocks(
        CLIENT,
        Request::NtAlpcConnectPort {
            name: PORT_NAME.into(),
            attributes: PortAttributes::default(),
            client_section_size: 0,
            connection_data: vec![],
            timeout_ms: None,
        },
    );
    let request = message(&sim.receive(SERVER, conn_port).unwrap());
    // Accepting before receiving or with a wrong id is a mismatch.
    let refuse = |message_id| Request::NtAlpcAcceptConnectPort {
        connection_port: conn_port,
        message_id,
        accept: false,
        port_context: 0,
        server_section_size: 0,
        connection_data: vec![],
    };
    assert_eq!(sim.status(SERVER, refuse(request.header.message_id + 50)), NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
    sim.ok(SERVER, refuse(request.header.message_id));
    assert_eq!(sim.take(CLIENT).status, NtStatus::STATUS_PORT_CONNECTION_REFUSED);
    let state = sim.kernel.state();
    assert_eq!(state.totals.connection_refusals, 1);
    assert_eq!(state.connection_ports[0].connection_refusals, 1);
    assert!(state.channels.is_empty());
}

#[test]
fn several_clients_get_several_channels_tagged_by_port_context() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    let (server_a, client_a, _) = sim.connect(CLIENT, conn_port, 0, 0);
    let (server_b, client_b, _) = sim.connect(CLIENT2, conn_port, 0, 0);
    assert_ne!(server_a, server_b);
    assert_eq!(sim.kernel.state().channels.len(), 2);
    sim.ok(CLIENT, datagram(client_a, data(b"from a")));
    sim.ok(CLIENT2, datagram(client_b, data(b"from b")));
    // Both sit on the one connection port's main queue, not on the channels.
    let state = sim.kernel.state();
    assert_eq!(state.connection_ports[0].main_queue.len(), 2);
    let a = message(&sim.receive(SERVER, conn_port).unwrap());
    let b = message(&sim.receive(SERVER, server_b).unwrap()); // a comm port drains the same queue
    assert_eq!((a.data.as_slice(), a.port_context), (&b"from a"[..], u64::from(server_a)));
    assert_eq!((b.data.as_slice(), b.port_context), (&b"from b"[..], u64::from(server_b)));
    assert_eq!(a.header.client_id.unique_process, 200);
    assert_eq!(b.header.client_id.unique_process, 300);
    assert_eq!(a.header.message_type(), Some(LpcMessageType::Datagram));
}

#[test]
fn small_message_is_copied_through_the_queue() {
    let mut sim = Sim::new();
    let (conn_port, _server_port, client_port) = sim.setup();
    let payload = vec![0xAB; 100];
    sim.blocks(CLIENT, sync_request(client_port, data(&payload)));
    let state = sim.kernel.state();
    let queued = &state.connection_ports[0].main_queue;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].data_length, 100);
    assert_eq!(queued[0].pool_charge, u64::from(PORT_MESSAGE_SIZE) + 100);
    assert_eq!(state.connection_ports[0].pool_usage, u64::from(PORT_MESSAGE_SIZE) + 100);
    let request = message(&sim.receive(SERVER, conn_port).unwrap());
    assert_eq!(request.data, payload);
    assert_eq!(request.header.data_length, 100);
    assert_eq!(request.header.total_length, 140);
    // Taken but unanswered: on the pending queue, still charged.
    let state = sim.kernel.state();
    assert!(state.connection_ports[0].main_queue.is_empty());
    assert_eq!(state.connection_ports[0].pending_queue.len(), 1);
    sim.ok(SERVER, reply(conn_port, request.header.message_id, data(b"pong")));
    let answer = message(&sim.take(CLIENT));
    assert_eq!(answer.header.message_type(), Some(LpcMessageType::Reply));
    assert_eq!(answer.header.message_id, request.header.message_id);
    assert_eq!(answer.data, b"pong");
    let state = sim.kernel.state();
    assert_eq!(state.connection_ports[0].pool_usage, 0);
    assert_eq!(state.totals.copied_messages, 2);
    assert_eq!(state.totals.copied_bytes, 104);
    assert_eq!(state.channels[0].counters.requests, 1);
    assert_eq!(state.channels[0].counters.replies, 1);
}

#[test]
fn large_message_goes_through_the_section_as_offset_and_size() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    let (server_port, client_port, connected) = sim.connect(CLIENT, conn_port, 64 << 10, 0);
    assert_eq!(connected.sections.len(), 1, "the client gets its section's memfd");
    let client_section = connected.sections[0].handle;
    assert_eq!(sim.created.len(), 1);

    // Too big for the queue.
    assert_eq!(sim.status(CLIENT, sync_request(client_port, data(&[0; 4096]))), NtStatus::STATUS_PORT_MESSAGE_TOO_LONG);

    let view = sim.ok(
        CLIENT,
        Request::NtAlpcCreateSectionView {
            port: client_port,
            section: client_section,
            size: 4096,
            mapping_base: 0x7f00_0000,
            flags: view_flags::ALPC_VIEWFLG_AUTO_RELEASE,
        },
    );
    let ResponseBody::View { offset, size, .. } = view.body else { panic!() };
    assert_eq!(size, 4096);
    sim.blocks(
        CLIENT,
        sync_request(
            client_port,
            SendMessage {
                view: Some(ViewAttribute { section_handle: client_section, offset, size: 4096 }),
                ..SendMessage::default()
            },
        ),
    );
    let state = sim.kernel.state();
    assert_eq!(state.connection_ports[0].main_queue[0].data_length, 0, "only offset and size travel");
    assert_eq!(state.sections[0].bytes_in_use, 4096);
    let received = sim.receive(SERVER, conn_port).unwrap();
    assert_eq!(received.sections.len(), 0, "the server got the memfd at accept");
    let request = message(&received);
    assert!(request.data.is_empty());
    let server_view = request.view.expect("view attribute");
    assert_eq!((server_view.offset, server_view.size), (offset, 4096));
    // The server's handle for the same section is its own.
    let server_has = sim
        .kernel
        .state()
        .processes
        .iter()
        .find(|p| p.conn == SERVER)
        .unwrap()
        .handles
        .iter()
        .any(|h| h.handle == server_view.section_handle && h.object_type == "Section");
    assert!(server_has);
    sim.ok(SERVER, reply(server_port, request.header.message_id, data(b"ok")));
    message(&sim.take(CLIENT));
    let state = sim.kernel.state();
    assert_eq!(state.sections[0].bytes_in_use, 0, "the view is released with the reply");
    assert_eq!(state.totals.section_messages, 1);
    assert_eq!(state.totals.section_bytes, 4096);
    assert_eq!(state.sections[0].mapped_by[0].base, 0x7f00_0000);
}

#[test]
fn a_view_without_auto_release_carries_message_after_message() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    let (server_port, client_port, connected) = sim.connect(CLIENT, conn_port, 64 << 10, 0);
    let section = connected.sections[0].handle;
    let create =
        |flags| Request::NtAlpcCreateSectionView { port: client_port, section, size: 8192, mapping_base: 0, flags };
    assert_eq!(sim.status(CLIENT, create(0x4_0000)), NtStatus::STATUS_INVALID_PARAMETER, "an unknown view flag");
    let ResponseBody::View { offset, .. } = sim.ok(CLIENT, create(0)).body else { panic!() };
    let carrying = |size| SendMessage {
        view: Some(ViewAttribute { section_handle: section, offset, size }),
        ..SendMessage::default()
    };
    for (round, size) in [(1u64, 8192), (2, 100)] {
        sim.blocks(CLIENT, sync_request(client_port, carrying(size)));
        let state = sim.kernel.state();
        let view = &state.sections[0].views[0];
        assert!(view.in_message.is_some() && !view.auto_release, "round {round}: {view:?}");
        let request = message(&sim.receive(SERVER, conn_port).unwrap());
        assert_eq!(request.view.map(|v| (v.offset, v.size)), Some((offset, size)));
        sim.ok(SERVER, reply(server_port, request.header.message_id, data(b"ok")));
        message(&sim.take(CLIENT));
        let state = sim.kernel.state();
        assert_eq!(state.sections[0].views.len(), 1, "round {round}: the view is kept");
        assert_eq!(state.sections[0].views[0].in_message, None, "round {round}: and free again");
        assert_eq!(state.totals.section_messages, round);
    }
    // A kept view still in a message cannot carry a second one.
    let datagram = || Request::NtAlpcSendWaitReceivePort {
        port: client_port,
        flags: 0,
        send: Some(carrying(64)),
        receive: false,
        timeout_ms: None,
    };
    sim.ok(CLIENT, datagram());
    assert_eq!(sim.status(CLIENT, datagram()), NtStatus::STATUS_INVALID_PARAMETER);
    assert_eq!(
        sim.status(CLIENT, Request::NtAlpcDeleteSectionView { port: client_port, section, offset }),
        NtStatus::STATUS_RESOURCE_IN_USE
    );
    // Once the datagram is received and the server calls again, it is free
    // again, and deleting it is what ends it.
    message(&sim.receive(SERVER, conn_port).unwrap());
    sim.ok(SERVER, Request::QueryState);
    sim.ok(CLIENT, Request::NtAlpcDeleteSectionView { port: client_port, section, offset });
    assert!(sim.kernel.state().sections[0].views.is_empty());
}

#[test]
fn server_reply_section_and_view_rules() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    let (server_port, client_port, connected) = sim.connect(CLIENT, conn_port, 0, 8192);
    assert_eq!(connected.sections.len(), 1);
    let client_handle = connected.sections[0].handle;
    // The client may not carve views out of the server's reply section.
    assert_eq!(
        sim.status(
            CLIENT,
            Request::NtAlpcCreateSectionView {
                port: client_port,
                section: client_handle,
                size: 100,
                mapping_base: 0,
                flags: view_flags::ALPC_VIEWFLG_AUTO_RELEASE
            }
        ),
        NtStatus::STATUS_INVALID_PARAMETER
    );
    sim.blocks(CLIENT, sync_request(client_port, data(b"give me 5000 bytes")));
    let request = message(&sim.receive(SERVER, conn_port).unwrap());
    let server_section = sim
        .kernel
        .state()
        .processes
        .iter()
        .find(|p| p.conn == SERVER)
        .unwrap()
        .handles
        .iter()
        .find(|h| h.object_type == "Section")
        .unwrap()
        .handle;
    // Larger than the section.
    assert_eq!(
        sim.status(
            SERVER,
            Request::NtAlpcCreateSectionView {
                port: server_port,
                section: server_section,
                size: 9000,
                mapping_base: 0,
                flags: view_flags::ALPC_VIEWFLG_AUTO_RELEASE,
            }
        ),
        NtStatus::STATUS_INVALID_PARAMETER
    );
    let ResponseBody::View { offset, .. } = sim
        .ok(
            SERVER,
            Request::NtAlpcCreateSectionView {
                port: server_port,
                section: server_section,
                size: 5000,
                mapping_base: 0,
                flags: view_flags::ALPC_VIEWFLG_AUTO_RELEASE,
            },
        )
        .body
    else {
        panic!()
    };
    // The section is full now.
    assert_eq!(
        sim.status(
            SERVER,
            Request::NtAlpcCreateSectionView {
                port: server_port,
                section: server_section,
                size: 5000,
                mapping_base: 0,
                flags: view_flags::ALPC_VIEWFLG_AUTO_RELEASE,
            }
        ),
        NtStatus::STATUS_NO_MEMORY
    );
    sim.ok(
        SERVER,
        reply(
            server_port,
            request.header.message_id,
            SendMessage {
                view: Some(ViewAttribute { section_handle: server_section, offset, size: 5000 }),
                ..SendMessage::default()
            },
        ),
    );
    let answer = message(&sim.take(CLIENT));
    assert_eq!(answer.view.unwrap().section_handle, client_handle);
    assert_eq!(sim.kernel.state().sections[0].bytes_in_use, 5000, "kept until the client is done");
    // The client's next call releases the view.
    sim.ok(CLIENT, Request::QueryState);
    assert_eq!(sim.kernel.state().sections[0].bytes_in_use, 0);
}

#[test]
fn a_direct_window_is_the_io_layers_to_make_within_the_limit() {
    let mut sim = Sim::new();
    let too_big = KernelConfig::default().limits.max_direct_window + 1;
    let request = |size, mapping_base| Request::MapDirectWindow { size, mapping_base };
    assert_eq!(sim.status(SERVER, request(too_big, 0)), NtStatus::STATUS_INVALID_PARAMETER);
    assert!(sim.windows.is_empty());
    assert_eq!(sim.ok(SERVER, request(1 << 20, 0)).body, ResponseBody::Window { size: 1 << 20 });
    assert_eq!(sim.windows, vec![(SERVER, 1 << 20)]);
    assert_eq!(sim.ok(SERVER, request(0, 0x7000_0000)).body, ResponseBody::None);
    let log = sim.kernel.state().recent_calls;
    assert!(log.iter().any(|l| l.contains("ipcscope only") && l.contains("direct window")), "{log:#?}");
}

/// Client declares a 1 MiB buffer, grants access, server reads it.
fn direct_setup(sim: &mut Sim, grant: bool) -> (u32, u32, ReceivedMessage) {
    let (conn_port, server_port, client_port) = sim.setup();
    if grant {
        sim.ok(CLIENT, Request::GrantDirectAccess { granted: true });
    }
    sim.blocks(
        CLIENT,
        sync_request(
            client_port,
            SendMessage {
                data: b"read my buffer".to_vec(),
                data_info: vec![PortDataEntry { base: 0x5000_0000, size: 1 << 20 }],
                ..SendMessage::default()
            },
        ),
    );
    let request = message(&sim.receive(SERVER, conn_port).unwrap());
    assert_eq!(request.data_info, vec![PortDataEntry { base: 0x5000_0000, size: 1 << 20 }]);
    assert_ne!(request.header.data_info_offset, 0);
    (conn_port, server_port, request)
}

fn read_data(port: u32, message_id: u32, index: u32, length: u64) -> Request {
    Request::NtReadRequestData { port, message_id, index, buffer: 0x6000_0000, length }
}

#[test]
fn huge_message_is_read_directly_from_the_client() {
    let mut sim = Sim::new();
    let (_, server_port, request) = direct_setup(&mut sim, true);
    let id = request.header.message_id;
    sim.blocks(SERVER, read_data(server_port, id, 0, 1 << 20));
    let copy = sim.copies.pop().expect("a direct copy to perform");
    assert_eq!(
        copy,
        DirectCopy {
            conn: SERVER,
            direction: CopyDirection::ReadFromClient,
            client_pid: 200,
            client_address: 0x5000_0000,
            server_pid: 100,
            server_address: 0x6000_0000,
            length: 1 << 20,
        }
    );
    // The I/O layer made this copy in one step, into the server's window.
    sim.kernel.count_window_copy(SERVER, 1 << 20);
    let out = sim.kernel.complete_direct_copy(SERVER, Ok(1 << 20), sim.now);
    sim.absorb(out);
    let done = sim.take(SERVER);
    assert_eq!((done.status, done.body), (NtStatus::STATUS_SUCCESS, ResponseBody::Transferred { bytes: 1 << 20 }));
    // Write the answer back the same way, then reply.
    sim.blocks(
        SERVER,
        Request::NtWriteRequestData { port: server_port, message_id: id, index: 0, buffer: 0x6000_0000, length: 10 },
    );
    let out = sim.kernel.complete_direct_copy(SERVER, Ok(10), sim.now);
    sim.absorb(out);
    assert_eq!(sim.take(SERVER).status, NtStatus::STATUS_SUCCESS);
    let state = sim.kernel.state();
    assert_eq!(state.direct_access.len(), 1);
    assert!(state.direct_access[0].granted && state.direct_access[0].open);
    assert_eq!(state.totals.direct_read_bytes, 1 << 20);
    assert_eq!(state.totals.direct_write_bytes, 10);
    assert_eq!(state.totals.direct_window_bytes, 1 << 20, "the write went through the bounce buffer");
    // Not blocked in a copy: nothing to count.
    sim.kernel.count_window_copy(SERVER, 99);
    assert_eq!(sim.kernel.state().totals.direct_window_bytes, 1 << 20);
    sim.ok(SERVER, reply(server_port, id, data(b"done")));
    message(&sim.take(CLIENT));
    // After the reply the region is closed.
    assert_eq!(sim.status(SERVER, read_data(server_port, id, 0, 16)), NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
    assert!(sim.kernel.state().direct_access.is_empty());
}

#[test]
fn direct_read_fails_cleanly() {
    // Without the client's grant.
    let mut sim = Sim::new();
    let (_, server_port, request) = direct_setup(&mut sim, false);
    let id = request.header.message_id;
    assert_eq!(sim.status(SERVER, read_data(server_port, id, 0, 16)), NtStatus::STATUS_ACCESS_VIOLATION);
    assert_eq!(sim.kernel.state().totals.access_violations, 1);
    assert!(sim.copies.is_empty());

    // Outside the declared region: too long, or a region that does not exist.
    let mut sim = Sim::new();
    let (_, server_port, request) = direct_setup(&mut sim, true);
    let id = request.header.message_id;
    assert_eq!(sim.status(SERVER, read_data(server_port, id, 0, (1 << 20) + 1)), NtStatus::STATUS_INVALID_PARAMETER);
    assert_eq!(sim.status(SERVER, read_data(server_port, id, 1, 16)), NtStatus::STATUS_INVALID_PARAMETER);
    // A message id the server is not serving.
    assert_eq!(sim.status(SERVER, read_data(server_port, id + 7, 0, 16)), NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
    // The client cannot read its own request.
    let client_port = 4;
    assert_eq!(sim.status(CLIENT, Request::QueryState), NtStatus::STATUS_INVALID_PARAMETER, "client is blocked");
    // The address turns out to be bad: the copy faults.
    sim.blocks(SERVER, read_data(server_port, id, 0, 16));
    let out = sim.kernel.complete_direct_copy(SERVER, Err(()), sim.now);
    sim.absorb(out);
    assert_eq!(sim.take(SERVER).status, NtStatus::STATUS_ACCESS_VIOLATION);
    let _ = client_port;

    // Datagrams cannot declare regions.
    let mut sim = Sim::new();
    let (_, _, client_port) = sim.setup();
    let bad = SendMessage { data_info: vec![PortDataEntry { base: 1, size: 1 }], ..SendMessage::default() };
    assert_eq!(sim.status(CLIENT, datagram(client_port, bad)), NtStatus::STATUS_INVALID_PARAMETER);
}

#[test]
fn callback_is_served_while_the_client_waits() {
    let mut sim = Sim::new();
    let (conn_port, server_port, client_port) = sim.setup();
    sim.blocks(CLIENT, sync_request(client_port, data(b"outer")));
    let request = message(&sim.receive(SERVER, conn_port).unwrap());
    let id = request.header.message_id;
    // The server sends a nested request into the waiting client.
    sim.blocks(
        SERVER,
        sync_request(
            server_port,
            SendMessage { msg_type: LpcMessageType::LPC_REQUEST, message_id: id, ..data(b"callback?") },
        ),
    );
    let callback = message(&sim.take(CLIENT));
    assert_eq!(callback.header.message_type(), Some(LpcMessageType::Request));
    assert_eq!(callback.header.message_id, id, "same MessageId");
    assert_ne!(callback.header.callback_id, 0, "new CallbackId");
    assert_eq!(callback.data, b"callback?");
    let state = sim.kernel.state();
    assert_eq!(state.callbacks.len(), 1);
    assert!(state.callbacks[0].server_waiting);
    let client = state.processes.iter().find(|p| p.conn == CLIENT).unwrap();
    assert_eq!(client.awaiting_replies, vec![(id, 0)], "the original request is still outstanding");
    assert_eq!(state.totals.callbacks, 1);
    // The client answers and goes on waiting (NtReplyWaitReplyPort).
    sim.blocks(
        CLIENT,
        Request::NtAlpcSendWaitReceivePort {
            port: client_port,
            flags: ALPC_MSGFLG_REPLY_MESSAGE | ALPC_MSGFLG_SYNC_REQUEST,
            send: Some(SendMessage { message_id: id, callback_id: callback.header.callback_id, ..data(b"answer") }),
            receive: true,
            timeout_ms: None,
        },
    );
    let answer = message(&sim.take(SERVER));
    assert_eq!(answer.header.message_type(), Some(LpcMessageType::Reply));
    assert_eq!(answer.header.callback_id, callback.header.callback_id);
    assert_eq!(answer.data, b"answer");
    assert!(sim.kernel.state().callbacks.is_empty());
    sim.ok(SERVER, reply(server_port, id, data(b"outer done")));
    let last = message(&sim.take(CLIENT));
    assert_eq!((last.header.message_id, last.header.callback_id), (id, 0));
    assert_eq!(last.data, b"outer done");
}

#[test]
fn callback_needs_a_waiting_client_and_the_right_id() {
    let mut sim = Sim::new();
    let (conn_port, server_port, client_port) = sim.setup();
    sim.ok(CLIENT, datagram(client_port, data(b"no reply wanted")));
    let dg = message(&sim.receive(SERVER, conn_port).unwrap());
    let cb = sync_request(
        server_port,
        SendMessage { msg_type: LpcMessageType::LPC_REQUEST, message_id: dg.header.message_id, ..data(b"x") },
    );
    assert_eq!(sim.status(SERVER, cb), NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
}

#[test]
fn handles_of_another_process_are_invalid() {
    let mut sim = Sim::new();
    let (conn_port, server_port, client_port) = sim.setup();
    let state = sim.kernel.state();
    let client_handles: Vec<u32> =
        state.processes.iter().find(|p| p.conn == CLIENT).unwrap().handles.iter().map(|h| h.handle).collect();
    let foreign = [conn_port, server_port].into_iter().find(|h| !client_handles.contains(h)).unwrap();
    assert_eq!(sim.status(CLIENT, datagram(foreign, data(b"x"))), NtStatus::STATUS_INVALID_HANDLE);
    assert_eq!(sim.status(CLIENT2, datagram(client_port, data(b"x"))), NtStatus::STATUS_INVALID_HANDLE);
    assert_eq!(sim.status(CLIENT2, Request::NtClose { handle: client_port }), NtStatus::STATUS_INVALID_HANDLE);
    // A server initiates messages on the client's communication port, not on
    // its connection port.
    assert_eq!(sim.status(SERVER, datagram(conn_port, data(b"x"))), NtStatus::STATUS_INVALID_PORT_HANDLE);
}

#[test]
fn pool_quota_exhaustion_returns_the_nt_status() {
    let mut sim = Sim::new();
    let quota = 3 * (u64::from(PORT_MESSAGE_SIZE) + 100);
    let conn_port = sim.create_port(PortAttributes { max_pool_usage: quota, ..PortAttributes::default() });
    let (_, client_port, _) = sim.connect(CLIENT, conn_port, 0, 0);
    for _ in 0..3 {
        sim.ok(CLIENT, datagram(client_port, data(&[1; 100])));
    }
    // No length limit on the queue — the fourth message has no pool left.
    assert_eq!(sim.status(CLIENT, datagram(client_port, data(&[1; 100]))), NtStatus::POOL_QUOTA_EXHAUSTED);
    assert_eq!(NtStatus::POOL_QUOTA_EXHAUSTED, NtStatus::STATUS_NO_MEMORY);
    let state = sim.kernel.state();
    assert_eq!(state.connection_ports[0].pool_usage, quota);
    assert_eq!(state.totals.quota_failures, 1);
    assert_eq!(state.channels[0].counters.quota_failures, 1);
    assert!(state.recent_calls.last().unwrap().contains("STATUS_NO_MEMORY"));
    // Receiving frees pool for the next one.
    message(&sim.receive(SERVER, conn_port).unwrap());
    sim.ok(CLIENT, datagram(client_port, data(&[1; 100])));
}

#[test]
fn client_exit_frees_its_messages_and_tells_the_server() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    let (server_port, client_port, _) = sim.connect(CLIENT, conn_port, 4096, 0);
    sim.ok(CLIENT, datagram(client_port, data(b"one")));
    sim.ok(CLIENT, datagram(client_port, data(b"two")));
    sim.exit(CLIENT);
    let state = sim.kernel.state();
    assert_eq!(state.totals.freed_messages, 2);
    assert_eq!(state.connection_ports[0].main_queue.len(), 1);
    let closed = message(&sim.receive(SERVER, conn_port).unwrap());
    assert_eq!(closed.header.message_type(), Some(LpcMessageType::PortClosed));
    assert_eq!(closed.port_context, u64::from(server_port), "the server learns which channel closed");
    // Sending to the gone client fails; closing the server end frees the channel.
    assert_eq!(sim.status(SERVER, datagram(server_port, data(b"x"))), NtStatus::STATUS_PORT_DISCONNECTED);
    sim.ok(SERVER, Request::NtClose { handle: server_port });
    let state = sim.kernel.state();
    assert!(state.channels.is_empty() && state.sections.is_empty());
    assert_eq!(sim.released, sim.created);
    assert_eq!(state.connection_ports[0].pool_usage, 0);
}

#[test]
fn server_exit_loses_replies_and_disconnects_clients() {
    let mut sim = Sim::new();
    let (conn_port, _server_port, client_port) = sim.setup();
    sim.blocks(CLIENT, sync_request(client_port, data(b"will never be answered")));
    message(&sim.receive(SERVER, conn_port).unwrap());
    sim.blocks(
        CLIENT2,
        Request::NtAlpcConnectPort {
            name: PORT_NAME.into(),
            attributes: PortAttributes::default(),
            client_section_size: 0,
            connection_data: vec![],
            timeout_ms: None,
        },
    );
    sim.exit(SERVER);
    assert_eq!(sim.take(CLIENT).status, NtStatus::STATUS_LPC_REPLY_LOST);
    assert_eq!(sim.take(CLIENT2).status, NtStatus::STATUS_PORT_CONNECTION_REFUSED);
    assert_eq!(sim.status(CLIENT, datagram(client_port, data(b"x"))), NtStatus::STATUS_PORT_DISCONNECTED);
    assert_eq!(
        sim.status(
            CLIENT,
            Request::NtAlpcSendWaitReceivePort {
                port: client_port,
                flags: 0,
                send: None,
                receive: true,
                timeout_ms: None
            }
        ),
        NtStatus::STATUS_PORT_DISCONNECTED
    );
    assert!(sim.kernel.state().directory.is_empty());
    sim.ok(CLIENT, Request::NtClose { handle: client_port });
    sim.exit(CLIENT);
    sim.exit(CLIENT2);
    assert!(sim.kernel.is_empty(), "{:?}", sim.kernel.state());
}

#[test]
fn timeouts_and_deadlines() {
    let mut sim = Sim::new();
    let (conn_port, _, client_port) = sim.setup();
    assert_eq!(sim.kernel.next_deadline(), None);
    sim.blocks(
        SERVER,
        Request::NtAlpcSendWaitReceivePort {
            port: conn_port,
            flags: 0,
            send: None,
            receive: true,
            timeout_ms: Some(50),
        },
    );
    // Asked during millisecond 0: over only once 50 whole ms have passed.
    assert_eq!(sim.kernel.next_deadline(), Some(51));
    sim.advance(50);
    assert!(sim.nothing_for(SERVER));
    sim.advance(1);
    assert_eq!(sim.take(SERVER).status, NtStatus::STATUS_TIMEOUT);
    // A zero timeout polls.
    assert_eq!(
        sim.status(
            SERVER,
            Request::NtAlpcSendWaitReceivePort {
                port: conn_port,
                flags: 0,
                send: None,
                receive: true,
                timeout_ms: Some(0)
            }
        ),
        NtStatus::STATUS_TIMEOUT
    );
    // A timed-out request is withdrawn from the queue, freeing its pool.
    sim.blocks(
        CLIENT,
        Request::NtAlpcSendWaitReceivePort {
            port: client_port,
            flags: ALPC_MSGFLG_SYNC_REQUEST,
            send: Some(data(b"late")),
            receive: true,
            timeout_ms: Some(10),
        },
    );
    sim.advance(11);
    assert_eq!(sim.take(CLIENT).status, NtStatus::STATUS_TIMEOUT);
    let state = sim.kernel.state();
    assert!(state.connection_ports[0].main_queue.is_empty());
    assert_eq!(state.connection_ports[0].pool_usage, 0);
}

#[test]
fn replies_must_match_a_served_request() {
    let mut sim = Sim::new();
    let (conn_port, server_port, client_port) = sim.setup();
    assert_eq!(sim.status(SERVER, reply(server_port, 12345, data(b"?"))), NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
    sim.blocks(CLIENT, sync_request(client_port, data(b"q")));
    let request = message(&sim.receive(SERVER, conn_port).unwrap());
    // The client cannot answer its own request.
    assert_eq!(
        sim.status(CLIENT2, reply(client_port, request.header.message_id, data(b"!"))),
        NtStatus::STATUS_INVALID_HANDLE
    );
    sim.ok(SERVER, reply(server_port, request.header.message_id, data(b"!")));
    // A second reply to the same request is a mismatch.
    assert_eq!(
        sim.status(SERVER, reply(server_port, request.header.message_id, data(b"!"))),
        NtStatus::STATUS_REPLY_MESSAGE_MISMATCH
    );
}

#[test]
fn log_lines_use_nt_names() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    let (_, client_port, connected) = sim.connect(CLIENT, conn_port, 65536, 0);
    let section = connected.sections[0].handle;
    let ResponseBody::View { offset, .. } = sim
        .ok(
            CLIENT,
            Request::NtAlpcCreateSectionView {
                port: client_port,
                section,
                size: 4096,
                mapping_base: 0,
                flags: view_flags::ALPC_VIEWFLG_AUTO_RELEASE,
            },
        )
        .body
    else {
        panic!()
    };
    sim.blocks(
        CLIENT,
        sync_request(
            client_port,
            SendMessage {
                view: Some(ViewAttribute { section_handle: section, offset, size: 4096 }),
                ..SendMessage::default()
            },
        ),
    );
    let log = sim.kernel.state().recent_calls;
    let line = log.iter().rev().find(|l| l.contains("NtAlpcSendWaitReceivePort")).unwrap();
    assert!(
        line.contains(&format!(
            "port={} client comm, LPC_REQUEST, 4096 bytes via section @0x{offset:x}",
            handle_text(client_port)
        )),
        "{line}"
    );
    assert!(log.iter().any(|l| l.contains("NtAlpcConnectPort") && l.contains("STATUS_SUCCESS")));
}

#[test]
fn hard_limits_hold() {
    let mut config = KernelConfig::default();
    config.limits.max_handles_per_process = 3;
    config.limits.max_processes = 3;
    let mut sim = Sim::with(config);
    assert_eq!(sim.kernel.attach(9, 9), Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES));
    for i in 0..3 {
        let name = format!(r"\RPC Control\p{i}");
        sim.ok(SERVER, Request::NtAlpcCreatePort { name, attributes: PortAttributes::default() });
    }
    assert_eq!(
        sim.status(
            SERVER,
            Request::NtAlpcCreatePort { name: r"\RPC Control\p9".into(), attributes: PortAttributes::default() }
        ),
        NtStatus::STATUS_INSUFFICIENT_RESOURCES
    );
}

#[test]
fn everything_is_freed_when_all_processes_leave() {
    let mut sim = Sim::new();
    let conn_port = sim.create_port(PortAttributes::default());
    let (_, client_port, _) = sim.connect(CLIENT, conn_port, 8192, 8192);
    sim.connect(CLIENT2, conn_port, 0, 0);
    sim.blocks(CLIENT, sync_request(client_port, data(b"pending")));
    sim.ok(CLIENT2, Request::QueryState);
    for conn in [CLIENT, SERVER, CLIENT2] {
        sim.exit(conn);
    }
    assert!(sim.kernel.is_empty(), "{:?}", sim.kernel.state());
    let mut created = sim.created.clone();
    let mut released = sim.released.clone();
    created.sort_unstable();
    released.sort_unstable();
    assert_eq!(created, released);
}

// ------------------------------------------------------------------ hostile

/// xorshift64*: deterministic, no dependency, good enough to shuffle calls.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Well-formed but hostile calls: random handles, ids that belong to
/// others, replies to nothing, sizes at and past every limit.
fn hostile_request(rng: &mut Rng, own: &[u32], handles: &[u32], ids: &[u32]) -> Request {
    let handle = match rng.below(10) {
        0 => rng.next() as u32,
        1..=3 => rng.pick(handles),
        _ => rng.pick(own),
    };
    let id = if rng.below(4) == 0 { rng.next() as u32 } else { rng.pick(ids) };
    let size = rng.pick(&[0u64, 1, 100, 256, 257, 4096, 65536, 1 << 20, u64::MAX]);
    let timeout = rng.pick(&[None, Some(0), Some(5), Some(50)]);
    let payload = vec![0x5A; rng.pick(&[0usize, 10, 256, 300])];
    let message = SendMessage {
        msg_type: rng.pick(&[0u16, 1, 2, 3, 10, 0x8001]),
        message_id: id,
        callback_id: rng.pick(&[0u32, 1, 2, id]),
        data: payload,
        view: (rng.below(4) == 0).then(|| ViewAttribute {
            section_handle: rng.pick(handles),
            offset: rng.pick(&[0, 64, 4096]),
            size,
        }),
        data_info: if rng.below(3) == 0 { vec![PortDataEntry { base: rng.next(), size }] } else { vec![] },
    };
    match rng.below(16) {
        0 => Request::NtAlpcCreatePort {
            name: rng.pick(&[PORT_NAME, r"\RPC Control\other", "bad", r"\x\\y"]).into(),
            attributes: PortAttributes {
                flags: 0,
                max_message_length: rng.pick(&[0, 100, 256, 1000]),
                max_pool_usage: rng.pick(&[0, 100, 1 << 40]),
            },
        },
        1 | 2 => Request::NtAlpcConnectPort {
            name: rng.pick(&[PORT_NAME, r"\RPC Control\other", r"\nope"]).into(),
            attributes: PortAttributes::default(),
            client_section_size: rng.pick(&[0, 4096, 1 << 30]),
            connection_data: vec![1; rng.pick(&[0usize, 300])],
            timeout_ms: timeout,
        },
        3 => Request::NtAlpcAcceptConnectPort {
            connection_port: handle,
            message_id: id,
            accept: rng.below(3) != 0,
            port_context: rng.below(3),
            server_section_size: rng.pick(&[0, 4096, 1 << 40]),
            connection_data: vec![],
        },
        4..=8 => Request::NtAlpcSendWaitReceivePort {
            port: handle,
            flags: rng.pick(&[
                0,
                ALPC_MSGFLG_SYNC_REQUEST,
                ALPC_MSGFLG_REPLY_MESSAGE,
                ALPC_MSGFLG_REPLY_MESSAGE | ALPC_MSGFLG_SYNC_REQUEST,
                0x10000,
                0x8000_0000,
            ]),
            send: (rng.below(4) != 0).then_some(message),
            receive: rng.below(2) == 0,
            timeout_ms: timeout,
        },
        9 => Request::NtAlpcCreatePortSection { port: handle, size },
        10 => Request::NtAlpcCreateSectionView {
            port: handle,
            section: rng.pick(handles),
            size,
            mapping_base: rng.next(),
            // Kept, auto-release, and a flag the kernel does not know.
            flags: rng.pick(&[0, view_flags::ALPC_VIEWFLG_AUTO_RELEASE, 0x4_0000]),
        },
        11 => Request::NtAlpcDeleteSectionView { port: handle, section: rng.pick(handles), offset: rng.pick(&[0, 64]) },
        12 => Request::NtReadRequestData {
            port: handle,
            message_id: id,
            index: rng.pick(&[0, 1, u32::MAX]),
            buffer: rng.next(),
            length: size,
        },
        13 => Request::NtWriteRequestData { port: handle, message_id: id, index: 0, buffer: rng.next(), length: size },
        14 => Request::NtAlpcDisconnectPort { port: handle, flags: 0 },
        _ => match rng.below(3) {
            0 => Request::NtClose { handle },
            1 => Request::GrantDirectAccess { granted: rng.below(2) == 0 },
            _ => Request::QueryState,
        },
    }
}

/// A call a well-behaved process would make in its situation, so the walk
/// reaches channels, sections, pending requests and callbacks; the hostile
/// calls in between then hit those states.
fn plausible_request(rng: &mut Rng, conn: ConnId, state: &AlpcState) -> Request {
    let me = state.processes.iter().find(|p| p.conn == conn);
    let of_type = |t: &str| -> Vec<u32> {
        me.map(|p| p.handles.iter().filter(|h| h.object_type == t).map(|h| h.handle).collect()).unwrap_or_default()
    };
    let conn_ports = of_type("ALPC Connection Port");
    let server_ports = of_type("ALPC Server Communication Port");
    let client_ports = of_type("ALPC Client Communication Port");
    let sections = of_type("Section");
    let timeout = rng.pick(&[None, Some(0), Some(20)]);
    if let Some(&port) = conn_ports.first() {
        let received: Vec<u32> = state
            .connection_ports
            .iter()
            .flat_map(|p| p.connection_requests.iter().filter(|c| c.received).map(|c| c.message_id))
            .collect();
        let pending: Vec<u32> =
            state.connection_ports.iter().flat_map(|p| p.pending_queue.iter().map(|m| m.message_id)).collect();
        match rng.below(6) {
            0 if !received.is_empty() => {
                return Request::NtAlpcAcceptConnectPort {
                    connection_port: port,
                    message_id: rng.pick(&received),
                    accept: rng.below(4) != 0,
                    port_context: 0,
                    server_section_size: rng.pick(&[0, 8192]),
                    connection_data: vec![],
                }
            }
            1 | 2 if !pending.is_empty() => {
                let id = rng.pick(&pending);
                return match rng.below(4) {
                    0 => sync_request(
                        port,
                        SendMessage { msg_type: LpcMessageType::LPC_REQUEST, message_id: id, ..data(b"cb") },
                    ),
                    1 => read_data(port, id, 0, 16),
                    _ => Request::NtAlpcSendWaitReceivePort {
                        port,
                        flags: ALPC_MSGFLG_REPLY_MESSAGE,
                        send: Some(SendMessage { message_id: id, ..data(b"re") }),
                        receive: rng.below(2) == 0,
                        timeout_ms: timeout,
                    },
                };
            }
            3 if !server_ports.is_empty() => return datagram(rng.pick(&server_ports), data(b"push")),
            _ => {
                return Request::NtAlpcSendWaitReceivePort {
                    port,
                    flags: 0,
                    send: None,
                    receive: true,
                    timeout_ms: timeout,
                }
            }
        }
    }
    if let Some(&port) = client_ports.first() {
        let serving = me.and_then(|p| p.serving_callbacks.last().copied());
        // Views this process carved out and has not sent yet.
        let free_views: Vec<(u32, u64)> = me
            .map(|p| {
                p.handles
                    .iter()
                    .filter(|h| h.object_type == "Section")
                    .flat_map(|h| {
                        state
                            .sections
                            .iter()
                            .filter(move |s| s.id == h.object)
                            .flat_map(|s| s.views.iter().filter(|v| v.in_message.is_none()).map(|v| v.offset))
                            .map(move |offset| (h.handle, offset))
                    })
                    .collect()
            })
            .unwrap_or_default();
        return match (rng.below(6), serving) {
            (0, Some((id, cb))) => Request::NtAlpcSendWaitReceivePort {
                port,
                flags: ALPC_MSGFLG_REPLY_MESSAGE | ALPC_MSGFLG_SYNC_REQUEST,
                send: Some(SendMessage { message_id: id, callback_id: cb, ..data(b"cb-answer") }),
                receive: true,
                timeout_ms: timeout,
            },
            (1, _) if !sections.is_empty() => Request::NtAlpcCreateSectionView {
                port,
                section: rng.pick(&sections),
                size: rng.pick(&[512, 4096]),
                mapping_base: 0x1000,
                flags: rng.pick(&[0, view_flags::ALPC_VIEWFLG_AUTO_RELEASE]),
            },
            (2, _) if !free_views.is_empty() => {
                let (section_handle, offset) = rng.pick(&free_views);
                sync_request(
                    port,
                    SendMessage {
                        view: Some(ViewAttribute { section_handle, offset, size: 512 }),
                        ..SendMessage::default()
                    },
                )
            }
            (3, _) => Request::GrantDirectAccess { granted: true },
            (4, _) => datagram(port, data(&[7; 64])),
            _ => Request::NtAlpcSendWaitReceivePort {
                port,
                flags: ALPC_MSGFLG_SYNC_REQUEST,
                send: Some(SendMessage {
                    data_info: if rng.below(2) == 0 { vec![PortDataEntry { base: 0x1000, size: 64 }] } else { vec![] },
                    ..data(&[1; 100])
                }),
                receive: true,
                timeout_ms: rng.pick(&[None, Some(40)]),
            },
        };
    }
    if rng.below(3) == 0 {
        Request::NtAlpcCreatePort { name: PORT_NAME.into(), attributes: PortAttributes::default() }
    } else {
        Request::NtAlpcConnectPort {
            name: PORT_NAME.into(),
            attributes: PortAttributes::default(),
            client_section_size: rng.pick(&[0, 8192]),
            connection_data: vec![],
            timeout_ms: rng.pick(&[None, Some(100)]),
        }
    }
}

#[test]
fn hostile_sequences_keep_invariants_and_leak_nothing() {
    #[derive(Debug, Default)]
    struct Reached {
        channels: usize,
        pending: usize,
        sections: usize,
        copied: u64,
        section_messages: u64,
        callbacks: u64,
        direct: u64,
        freed: u64,
        quota: u64,
    }
    let mut reached = Reached::default();
    let processes: [ConnId; 4] = [10, 11, 12, 13];
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut kernel = AlpcKernel::new(KernelConfig { max_pool_usage: 2048, ..KernelConfig::default() });
        let mut live: Vec<ConnId> = Vec::new();
        let mut created = BTreeSet::new();
        let mut released = BTreeSet::new();
        let mut now = 0;
        for step in 0..400 {
            let mut out = Vec::new();
            match rng.below(60) {
                0 | 3 => {
                    let conn = rng.pick(&processes);
                    if !live.contains(&conn) && kernel.attach(conn, conn as u32).is_ok() {
                        live.push(conn);
                    }
                }
                1 if !live.is_empty() => {
                    let conn = live.swap_remove(rng.below(live.len() as u64) as usize);
                    out = kernel.disconnect(conn, now);
                }
                2 => {
                    now += rng.below(30);
                    out = kernel.tick(now);
                }
                _ if !live.is_empty() => {
                    let conn = rng.pick(&live);
                    let state = kernel.state();
                    let handles: Vec<u32> = state
                        .processes
                        .iter()
                        .flat_map(|p| p.handles.iter().map(|h| h.handle))
                        .chain([0, 4, 8])
                        .collect();
                    let own: Vec<u32> = state
                        .processes
                        .iter()
                        .filter(|p| p.conn == conn)
                        .flat_map(|p| p.handles.iter().map(|h| h.handle))
                        .chain([4])
                        .collect();
                    let ids: Vec<u32> = state
                        .connection_ports
                        .iter()
                        .flat_map(|p| p.main_queue.iter().chain(p.pending_queue.iter()).map(|m| m.message_id))
                        .chain(
                            state
                                .connection_ports
                                .iter()
                                .flat_map(|p| p.connection_requests.iter().map(|c| c.message_id)),
                        )
                        .chain([0, 1, 2, 3])
                        .collect();
                    let request = if rng.below(3) == 0 {
                        hostile_request(&mut rng, &own, &handles, &ids)
                    } else {
                        plausible_request(&mut rng, conn, &state)
                    };
                    out = kernel.handle(conn, step, request, now);
                }
                _ => {}
            }
            for o in out {
                match o {
                    Outgoing::CreateSection { section, .. } => assert!(created.insert(section)),
                    Outgoing::ReleaseSection { section } => assert!(released.insert(section)),
                    Outgoing::DirectCopy(copy) => {
                        // Half the copies fault, as a bad address would.
                        let result = if rng.below(2) == 0 { Ok(copy.length) } else { Err(()) };
                        for o in kernel.complete_direct_copy(copy.conn, result, now) {
                            if let Outgoing::ReleaseSection { section } = o {
                                released.insert(section);
                            }
                        }
                    }
                    Outgoing::Respond { response, attach, .. } => assert_eq!(response.sections.len(), attach.len()),
                    Outgoing::CreateWindow { .. } | Outgoing::WindowMapped { .. } => {}
                }
            }
            if let Err(e) = kernel.check_invariants() {
                panic!("seed {seed} step {step}: {e}\n{:#?}", kernel.state());
            }
            let state = kernel.state();
            reached.channels = reached.channels.max(state.channels.len());
            reached.pending = reached.pending.max(state.connection_ports.iter().map(|p| p.pending_queue.len()).sum());
            reached.sections = reached.sections.max(state.sections.len());
        }
        let totals = kernel.state().totals;
        reached.copied += totals.copied_messages;
        reached.section_messages += totals.section_messages;
        reached.callbacks += totals.callbacks;
        reached.direct += totals.direct_reads + totals.direct_writes + totals.access_violations;
        reached.freed += totals.freed_messages;
        reached.quota += totals.quota_failures;
        for conn in live.drain(..) {
            for o in kernel.disconnect(conn, now) {
                if let Outgoing::ReleaseSection { section } = o {
                    released.insert(section);
                }
            }
            kernel.check_invariants().unwrap();
        }
        assert!(kernel.is_empty(), "seed {seed} leaked: {:#?}", kernel.state());
        assert_eq!(created, released, "seed {seed}: every section backing is released");
    }
    // The random walk must actually get deep into the state space.
    eprintln!("hostile walk reached {reached:?}");
    assert!(reached.channels >= 2 && reached.pending >= 1 && reached.sections >= 1, "{reached:?}");
    assert!(reached.copied > 0 && reached.freed > 0 && reached.section_messages > 0, "{reached:?}");
    assert!(reached.callbacks > 0 && reached.direct > 0, "{reached:?}");
}

mod decode_fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(&bytes);
        }

        #[test]
        fn arbitrary_bodies_after_a_valid_header_never_panic(op in 0u8..20, body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut packet = b"AL\x01".to_vec();
            packet.push(op);
            packet.extend_from_slice(&[1, 0, 0, 0]);
            packet.extend_from_slice(&body);
            if let Ok((_, request)) = decode_request(&packet) {
                // Whatever decodes, the kernel handles without breaking.
                let mut kernel = AlpcKernel::new(KernelConfig::default());
                kernel.attach(1, 1).unwrap();
                let _ = kernel.handle(1, 1, request, 0);
                prop_assert!(kernel.check_invariants().is_ok());
                let _ = kernel.disconnect(1, 0);
                prop_assert!(kernel.is_empty());
            }
        }
    }
}

/// `alpc.personality`: under LPC a connected port takes no section after
/// connect; switched to ALPC at run time, the connection port's default
/// limit grows to ALPC's, a new channel gets it, and a client without a
/// section may create one — one per direction (ours), never a made-up
/// name collision.
#[test]
fn personality_switches_limits_and_sections_at_run_time() {
    let mut sim = Sim::new();
    let (conn_port, _, client_port) = sim.setup();
    let create = |port| Request::NtAlpcCreatePortSection { port, size: 1 << 16 };
    assert_eq!(sim.status(CLIENT, create(client_port)), NtStatus::STATUS_NOT_SUPPORTED);
    assert_eq!(sim.kernel.state().channels[0].max_message_length, 256);

    sim.kernel.set_personality(Personality::Alpc);
    let state = sim.kernel.state();
    assert_eq!((state.personality.as_str(), state.system_max_message), ("alpc", SMALL_MAX_CEILING));
    assert_eq!(state.totals.personality_switches, 1);
    // The old channel keeps its limit; a new one gets ALPC's.
    assert_eq!(state.channels[0].max_message_length, 256);
    let (_, client2_port, _) = sim.connect(CLIENT2, conn_port, 0, 0);
    let ch = sim.kernel.state().channels.iter().map(|c| c.max_message_length).max().unwrap();
    assert_eq!(ch, SMALL_MAX_CEILING);
    assert_eq!(sim.status(CLIENT2, create(client2_port)), NtStatus::STATUS_SUCCESS);
    assert_eq!(sim.status(CLIENT2, create(client2_port)), NtStatus::STATUS_NOT_SUPPORTED);
    assert_eq!(sim.kernel.state().totals.sections_after_connect, 1);

    // Switching back: ports made from now on take the notes' 256 bytes.
    sim.kernel.set_personality(Personality::Lpc);
    assert_eq!(sim.kernel.state().system_max_message, 256);
    assert_eq!(sim.kernel.state().totals.personality_switches, 2);
}
