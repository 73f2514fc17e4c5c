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
    // msg.size counts the whole message (RPC header + arguments); the
    // queue takes up to the channel's MaxMessageLength.
    assert_eq!((detail(m).path_now, detail(m).msg_size, detail(m).queue_max), (Some(0), 100, 256));
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
    // The view holds the arguments: msg.size less the RPC header.
    let args = 4096 - detail(m).rpc_header;
    assert!(headers.iter().any(|h| h.by == "server" && h.path == 1 && h.bytes == args), "{headers:?}");
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
    assert!(st.totals.direct_read_bytes >= st.totals.direct_reads * ((1 << 20) - detail(m).rpc_header));
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

/// The default msg.size (256) counts the RPC header too: every call goes
/// through the queue, none through a section.
#[test]
fn the_default_message_size_takes_the_queue() {
    let s = snapshot_json("alpc", "3", &[]);
    let m = alpc(&s);
    assert_intact(m);
    let st = state(m);
    assert!(st.totals.copied_messages > 100, "{:?}", st.totals);
    assert_eq!((st.totals.section_messages, st.totals.direct_reads), (0, 0), "{:?}", st.totals);
    let d = detail(m);
    assert_eq!((d.msg_size, d.queue_max, d.path_now), (256, 256, Some(0)));
    // The server received every request inline: header and arguments, 256 bytes.
    assert!(
        d.headers.iter().any(|h| h.by == "server" && h.path == 0 && h.header.data_length == 256),
        "{:?}",
        d.headers
    );
    assert_run_gone(&s);
}

/// `alpc.section_size=0`: the client decides it needs no section. The
/// kernel's tables show channels without one, and 4 KiB messages (which
/// would take a section) go the direct path.
#[test]
fn a_client_that_asks_for_no_section_gets_none() {
    let s = snapshot_json("alpc", "3", &["alpc.section_size=0", "msg.size=4096"]);
    let m = alpc(&s);
    assert_intact(m);
    let st = state(m);
    assert_eq!(st.channels.len(), 2);
    assert!(st.channels.iter().all(|c| c.client_section.is_none() && c.server_section.is_none()), "{:?}", st.channels);
    assert!(st.sections.is_empty(), "{:?}", st.sections);
    assert!(st.totals.direct_reads > 10, "{:?}", st.totals);
    assert_eq!(st.totals.section_messages, 0);
    let d = detail(m);
    assert_eq!((d.own_section, d.path_now), (None, Some(2)));
    assert_run_gone(&s);
}

/// `alpc.personality=alpc`: the kernel's limit is ALPC's (just under
/// 64 KiB), so 4 KiB requests travel inline — read from the kernel's
/// tables and the headers the server received.
#[test]
fn the_alpc_personality_carries_four_kib_inline() {
    let s = snapshot_json("alpc", "3", &["alpc.personality=alpc", "msg.size=4096"]);
    let m = alpc(&s);
    assert_intact(m);
    let st = state(m);
    assert_eq!(st.personality, "alpc");
    assert!(st.system_max_message > 60_000, "{}", st.system_max_message);
    assert!(st.channels.iter().all(|c| c.max_message_length > 60_000), "{:?}", st.channels);
    let d = detail(m);
    // The request came whole in the message: RPC header and arguments
    // (its data information names only the buffer for the result).
    let request = |h: &&ipcscope::model::detail::alpc::SeenMessage| h.by == "server" && h.header.msg_type & 0xff == 1;
    assert!(d.headers.iter().filter(request).all(|h| h.header.data_length == 4096), "{:?}", d.headers);
    assert!(d.headers.iter().any(|h| request(&h)), "{:?}", d.headers);
    assert_eq!((st.totals.direct_reads, st.totals.section_messages > 0, d.path_now), (0, true, Some(0)));
    assert_run_gone(&s);
}

/// Under LPC (the default) the same kernel keeps the notes' 256 bytes and
/// takes no section after connect; under ALPC a client without one makes
/// one on its port when a call needs it.
#[test]
fn sections_after_connect_only_under_alpc() {
    let s = snapshot_json("alpc", "3", &["alpc.personality=alpc", "alpc.section_size=0", "msg.size=1048576"]);
    let m = alpc(&s);
    assert_intact(m);
    let st = state(m);
    assert!(st.totals.sections_after_connect >= 2, "{:?}", st.totals);
    assert!(st.totals.section_messages > 5 && st.totals.direct_reads == 0, "{:?}", st.totals);
    assert!(st.channels.iter().all(|c| c.client_section.is_some()), "{:?}", st.channels);
    assert_run_gone(&s);
    let s = snapshot_json("alpc", "3", &["alpc.section_size=0", "msg.size=1048576"]);
    let st = state(alpc(&s));
    assert_eq!((st.personality.as_str(), st.system_max_message), ("lpc", 256));
    assert_eq!(st.totals.sections_after_connect, 0);
    assert!(st.totals.direct_reads > 5, "{:?}", st.totals);
    assert_run_gone(&s);
}

/// The kernel switches personality at run time: the same kernel process
/// (same pid) reports the new rules and counts the switch; the clients
/// connect anew and their new channels carry the new limit.
#[test]
fn the_personality_switches_on_the_same_kernel() {
    let _g = serial();
    let mut session = session(&[Kind::Alpc], &["msg.size=4096", "producer.rate=100"]);
    let before = wait_for(&session, "two channels under LPC", Duration::from_secs(10), |s| {
        let st = detail(alpc(s)).state.as_ref();
        alpc(s).integrity.delivered > 20 && st.is_some_and(|st| st.channels.len() == 2 && st.personality == "lpc")
    });
    let kernel = alpc(&before).processes[0].pid;
    session.apply(Command::SetKnob(KnobId::AlpcPersonality, 1)).unwrap();
    let after = wait_for(&session, "ALPC's limit on new channels", Duration::from_secs(15), |s| {
        detail(alpc(s)).state.as_ref().is_some_and(|st| {
            st.personality == "alpc"
                && st.channels.len() == 2
                && st.channels.iter().all(|c| c.connected && c.max_message_length > 60_000)
        })
    });
    let m = alpc(&after);
    assert_eq!(m.processes[0].pid, kernel, "the same kernel process");
    assert_eq!(state(m).totals.personality_switches, 1);
    assert_eq!(m.integrity.corrupt, 0);
    let pids = pids(&after);
    session.shutdown();
    assert_nothing_left(&pids);
}
