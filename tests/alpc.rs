//! Windows ALPC on real processes: an emulated NT kernel, a server and
//! clients, each its own process; what the notes say, observed in the
//! kernel's own tables.

mod common;

use std::time::Duration;

use common::*;
use ipcscope::knobs::KnobId;
use ipcscope::mechanisms::Kind;
use ipcscope::model::detail::alpc::{AlpcDetail, AlpcState, EmuWait};
use ipcscope::session::Command;
use ipcscope::snapshot::{Detail, MechanismSnapshot, Snapshot};

fn detail(m: &MechanismSnapshot) -> &AlpcDetail {
    match &m.detail {
        Detail::Alpc(d) => d,
        other => panic!("not ALPC: {other:?}"),
    }
}

fn state(m: &MechanismSnapshot) -> &AlpcState {
    detail(m).state.as_ref().expect("the kernel answered the observer")
}

fn alpc(s: &Snapshot) -> &MechanismSnapshot {
    mech(s, Kind::Alpc)
}

fn assert_intact(m: &MechanismSnapshot) {
    let i = m.integrity;
    assert!(i.delivered > 0, "nothing delivered");
    assert_eq!((i.lost, i.corrupt, i.duplicated, i.reordered), (0, 0, 0, 0), "{i:?}");
}

/// 100 bytes (plus the RPC header) fit `alpc.small_max` = 256: every
/// message is copied through the queue; each client has its channel of
/// two communication ports.
#[test]
fn small_messages_take_the_queue_and_each_client_gets_two_ports() {
    let s = snapshot_json("alpc", "3", &["msg.size=100"]);
    let m = alpc(&s);
    assert_intact(m);
    let roles: Vec<&str> = m.processes.iter().map(|p| p.role.as_str()).collect();
    assert_eq!(roles, ["kernel", "server", "client-1", "client-2"]);
    let st = state(m);
    assert!(st.totals.copied_messages > 100, "{:?}", st.totals);
    assert_eq!((st.totals.section_messages, st.totals.direct_reads), (0, 0));
    // The object directory holds the server's connection port.
    assert_eq!(st.directory.len(), 1);
    assert_eq!(st.directory[0].name, r"\RPC Control\ipcscope-echo");
    // A channel per client, each a pair of private ports held by the two sides.
    assert_eq!(st.channels.len(), 2);
    let server_pid = m.processes[1].pid as u32;
    for (ch, client) in st.channels.iter().zip(&m.processes[2..]) {
        assert!(ch.connected);
        assert_eq!(ch.server_port.owner.unique_process, server_pid);
        assert!(m.processes[2..].iter().any(|p| p.pid as u32 == ch.client_port.owner.unique_process));
        assert!(ch.server_port.handle.is_some() && ch.client_port.handle.is_some());
        assert!(client.sent > 0 && client.received + 1 >= client.sent);
    }
    // The workers' event logs name the NT calls.
    let events: Vec<&str> = m.processes.iter().flat_map(|p| p.events.iter().map(|e| e.text.as_str())).collect();
    assert!(events.iter().any(|e| e.starts_with("NtAlpcSendWaitReceivePort(port=") && e.contains("LPC_REQUEST")));
    // The path a call of msg.size takes now, by the runtime's own rule.
    assert_eq!((detail(m).path_now, detail(m).msg_size, detail(m).queue_max), (Some(0), 100, 236));
    assert_eq!(m.channel.unit, "messages");
    assert!(m.channel.capacity > 0);
    assert_run_gone(&s);
}

/// 4 KiB is over `small_max` and within the 64 KiB section: the message
/// through the port carries only offset and size.
#[test]
fn four_kib_messages_go_through_the_section() {
    let s = snapshot_json("alpc", "3", &["msg.size=4096"]);
    let m = alpc(&s);
    assert_intact(m);
    let st = state(m);
    assert!(st.totals.section_messages > 100, "{:?}", st.totals);
    assert_eq!((st.totals.copied_messages, st.totals.direct_reads), (0, 0), "{:?}", st.totals);
    // Only the RPC header travels inline: far fewer bytes than the section moved.
    assert!(st.totals.copied_bytes * 10 < st.totals.section_bytes);
    // Each channel has a section per direction, mapped by both processes.
    assert_eq!(st.sections.len(), 4);
    assert!(st.sections.iter().all(|sec| sec.size == 65536 && sec.mapped_by.len() == 2));
    let headers = &detail(m).headers;
    assert!(headers.iter().any(|h| h.by == "server" && h.path == 1 && h.bytes == 4096), "{headers:?}");
    assert_eq!(detail(m).path_now, Some(1));
    assert_run_gone(&s);
}

/// 1 MiB does not fit the section: the server reads it out of the
/// client's address space, which the client allowed with PR_SET_PTRACER.
#[test]
fn one_mib_messages_are_read_directly_from_the_client() {
    let s = snapshot_json("alpc", "3", &["msg.size=1048576"]);
    let m = alpc(&s);
    assert_intact(m);
    let st = state(m);
    assert!(st.totals.direct_reads > 5, "{:?}", st.totals);
    assert!(st.totals.direct_read_bytes >= st.totals.direct_reads * (1 << 20));
    assert_eq!(st.totals.section_messages, 0);
    assert_eq!(st.totals.access_violations, 0);
    let d = detail(m);
    assert!(d.clients.iter().all(|c| c.ptracer_granted && c.direct > 0), "{:?}", d.clients);
    assert!(st.processes.iter().filter(|p| p.direct_access_granted).count() >= 2);
    assert_eq!(d.path_now, Some(2));
    assert_run_gone(&s);
}

#[test]
fn a_refused_client_sees_the_refusal() {
    let s = snapshot_json("alpc", "2", &["alpc.accept=false", "alpc.clients=1"]);
    let m = alpc(&s);
    let d = detail(m);
    assert!(d.server.refused > 0 && d.clients[0].refusals > 0, "{:?} {:?}", d.server, d.clients);
    assert!(state(m).channels.is_empty(), "no channel without acceptance");
    let client = &m.processes[2];
    assert!(
        client
            .events
            .iter()
            .any(|e| e.text.contains("NtAlpcConnectPort") && e.text.contains("STATUS_PORT_CONNECTION_REFUSED")),
        "{:?}",
        client.events
    );
    assert_run_gone(&s);
}

#[test]
fn callbacks_are_served_while_the_client_waits() {
    let s = snapshot_json("alpc", "3", &["alpc.callbacks=on", "msg.size=100", "producer.rate=200"]);
    let m = alpc(&s);
    assert_intact(m);
    let d = detail(m);
    assert!(d.server.callbacks_ok > 5 && d.server.callbacks_bad == 0, "{:?}", d.server);
    assert!(d.clients.iter().all(|c| c.callbacks_served > 0), "{:?}", d.clients);
    assert!(state(m).totals.callbacks >= d.server.callbacks_ok);
    assert_run_gone(&s);
}

/// A server that stops receiving: the requests wait on the connection
/// port (not on per-channel queues), the clients sleep in their
/// NtAlpcSendWaitReceivePort; and nothing is left once the run ends.
#[test]
fn a_stalled_server_leaves_requests_on_the_connection_port() {
    let _g = serial();
    let mut session = session(&[Kind::Alpc], &["alpc.clients=3", "msg.size=100", "producer.rate=100"]);
    wait_for(&session, "three channels carrying traffic", Duration::from_secs(10), |s| {
        alpc(s).integrity.delivered > 30 && detail(alpc(s)).state.as_ref().is_some_and(|st| st.channels.len() == 3)
    });
    session.apply(Command::SetKnob(KnobId::ConsumerRate, 0)).unwrap();
    let s = wait_for(&session, "one request per client waiting", Duration::from_secs(10), |s| {
        let m = alpc(s);
        m.channel.depth == 3 && m.processes[2..].iter().all(|p| p.op.contains("waiting for the reply"))
    });
    let m = alpc(&s);
    let st = state(m);
    assert_eq!(st.connection_ports[0].main_queue.len(), 3);
    assert!(st.channels.iter().all(|c| c.main_queue_depth == 1 && c.client_queue.is_empty()));
    assert!(m.processes[2..].iter().all(|p| p.state == "S"), "clients sleep");
    // What each waits in, from the kernel's own tables: its NT call and
    // why, not the socket of our transport.
    for p in &m.processes[2..] {
        let call = detail(m).call_of(&p.role).unwrap_or_else(|| panic!("{}: in no call: {:?}", p.role, st.processes));
        assert_eq!((call.call.as_str(), call.wait), ("NtAlpcSendWaitReceivePort", EmuWait::Reply), "{}", p.role);
    }
    let pids = pids(&s);
    session.shutdown();
    assert_nothing_left(&pids);
}

#[test]
fn the_alpc_lesson_checks_out() {
    let out = ipcscope(&["lesson", "alpc-paths", "--check"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
