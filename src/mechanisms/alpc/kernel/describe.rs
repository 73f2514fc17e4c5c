//! Calls and their results as the log shows them: NT names and the
//! arguments a student cares about.

use super::objects::{HandleTarget, ReceiveSource, Wait};
use super::{AlpcKernel, ConnId};
use crate::mechanisms::alpc::proto::{Request, ResponseBody};
use crate::mechanisms::alpc::types::{
    handle_text, msg_flags, view_flags, ClientId, LpcMessageType, PortDataEntry, ViewAttribute,
};

impl AlpcKernel {
    fn handle_name(&self, conn: ConnId, handle: u32) -> String {
        handle_text(handle)
            + match self.lookup(conn, handle) {
                Ok(HandleTarget::ConnectionPort(_)) => " conn",
                Ok(HandleTarget::ServerCommPort(_)) => " server comm",
                Ok(HandleTarget::ClientCommPort(_)) => " client comm",
                Ok(HandleTarget::Section(_)) => " section",
                Err(_) => "",
            }
    }

    /// The call as a log line: NT name and the arguments a student cares about.
    pub(super) fn describe(&self, conn: ConnId, request: &Request) -> String {
        match request {
            Request::Hello { tid, name } => format!("Hello(tid={tid}, name=\"{}\")", printable(name)),
            Request::NtAlpcCreatePort { name, attributes } => format!(
                "NtAlpcCreatePort(\"{}\", MaxMessageLength={}, MaxPoolUsage={})",
                printable(name),
                attributes.max_message_length,
                attributes.max_pool_usage
            ),
            Request::NtAlpcConnectPort { name, client_section_size, connection_data, .. } => format!(
                "NtAlpcConnectPort(\"{}\", {} bytes connection data{})",
                printable(name),
                connection_data.len(),
                if *client_section_size > 0 {
                    format!(" [ipcscope-only argument: a section of {client_section_size} bytes]")
                } else {
                    String::new()
                }
            ),
            Request::NtAlpcAcceptConnectPort {
                connection_port,
                message_id,
                accept,
                port_context,
                server_section_size,
                ..
            } => {
                format!(
                    "NtAlpcAcceptConnectPort(port={}, id={message_id}, {}, PortContext=0x{port_context:x}{})",
                    self.handle_name(conn, *connection_port),
                    if *accept { "Accept=TRUE" } else { "Accept=FALSE" },
                    if *server_section_size > 0 {
                        format!(" [ipcscope-only argument: a reply section of {server_section_size} bytes]")
                    } else {
                        String::new()
                    }
                )
            }
            Request::NtAlpcSendWaitReceivePort { port, flags, send, receive, timeout_ms } => {
                let mut parts = vec![format!("port={}", self.handle_name(conn, *port))];
                if let Some(m) = send {
                    let sync = flags & msg_flags::ALPC_MSGFLG_SYNC_REQUEST != 0;
                    let kind = if msg_flags::is_reply(*flags) {
                        if m.callback_id != 0 {
                            format!("LPC_REPLY to callback {}/{}", m.message_id, m.callback_id)
                        } else {
                            format!("LPC_REPLY to id={}", m.message_id)
                        }
                    } else if m.msg_type & LpcMessageType::TYPE_MASK == LpcMessageType::LPC_REQUEST && m.message_id != 0
                    {
                        format!("LPC_REQUEST callback into id={}", m.message_id)
                    } else if sync {
                        "LPC_REQUEST".to_string()
                    } else {
                        "LPC_DATAGRAM".to_string()
                    };
                    parts.push(kind);
                    parts.push(describe_payload(m.data.len(), m.view.as_ref(), &m.data_info));
                    if msg_flags::is_reply(*flags) && sync {
                        parts.push("then wait for own reply".into());
                    }
                }
                if *receive && flags & msg_flags::ALPC_MSGFLG_SYNC_REQUEST == 0 {
                    parts.push("receive".into());
                }
                if let Some(t) = timeout_ms {
                    parts.push(format!("timeout {t} ms"));
                }
                format!("NtAlpcSendWaitReceivePort({})", parts.join(", "))
            }
            Request::NtAlpcCreatePortSection { port, size } => {
                format!("NtAlpcCreatePortSection(port={}, {size} bytes)", self.handle_name(conn, *port))
            }
            Request::NtAlpcCreateSectionView { port, section, size, mapping_base, flags } => format!(
                "NtAlpcCreateSectionView(port={}, section={}, {size} bytes{}{})",
                self.handle_name(conn, *port),
                handle_text(*section),
                if *flags & view_flags::ALPC_VIEWFLG_AUTO_RELEASE != 0 { ", ALPC_VIEWFLG_AUTO_RELEASE" } else { "" },
                if *mapping_base != 0 { format!(", mapped @0x{mapping_base:x}") } else { String::new() }
            ),
            Request::NtAlpcDeleteSectionView { port, section, offset } => format!(
                "NtAlpcDeleteSectionView(port={}, section={}, @0x{offset:x})",
                self.handle_name(conn, *port),
                handle_text(*section)
            ),
            Request::NtReadRequestData { port, message_id, index, length, .. } => format!(
                "NtReadRequestData(port={}, id={message_id}, index={index}, {length} bytes)",
                self.handle_name(conn, *port)
            ),
            Request::NtWriteRequestData { port, message_id, index, length, .. } => format!(
                "NtWriteRequestData(port={}, id={message_id}, index={index}, {length} bytes)",
                self.handle_name(conn, *port)
            ),
            Request::NtAlpcDisconnectPort { port, .. } => {
                format!("NtAlpcDisconnectPort(port={})", self.handle_name(conn, *port))
            }
            Request::NtClose { handle } => format!("NtClose({})", self.handle_name(conn, *handle)),
            Request::GrantDirectAccess { granted } => {
                format!(
                    "[ipcscope only, no NT call] prctl(PR_SET_PTRACER, kernel) → direct access {}",
                    if *granted { "granted" } else { "revoked" }
                )
            }
            Request::QueryState => "QueryState()".into(),
            Request::MapDirectWindow { size: 0, mapping_base } => {
                format!("[ipcscope only, no NT call] direct window mapped @0x{mapping_base:x}")
            }
            Request::MapDirectWindow { size, .. } => format!(
                "[ipcscope only, no NT call] a direct window of {size} bytes: NtReadRequestData into it is one copy"
            ),
        }
    }
}

/// Object names as the screen shows them: backslashes as they are (NT
/// paths), control characters — which could upset a terminal — as `?`.
pub(super) fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

pub(super) fn client_text(id: ClientId) -> String {
    format!("{}:{}", id.unique_process, id.unique_thread)
}

fn describe_payload(data_length: usize, view: Option<&ViewAttribute>, data_info: &[PortDataEntry]) -> String {
    let mut parts = Vec::new();
    if let Some(v) = view {
        parts.push(format!("{} bytes via section @0x{:x}", v.size, v.offset));
    }
    if data_length > 0 || view.is_none() {
        parts.push(format!("{data_length} bytes copied"));
    }
    if !data_info.is_empty() {
        let total: u64 = data_info.iter().map(|e| e.size).sum();
        parts.push(format!("{total} bytes declared for direct access"));
    }
    parts.join(" + ")
}

pub(super) fn describe_body(body: &ResponseBody) -> String {
    match body {
        ResponseBody::Handle { handle } => format!(", handle {}", handle_text(*handle)),
        ResponseBody::Connected { port, .. } => format!(", client port {}", handle_text(*port)),
        ResponseBody::Section { section, size } => format!(", section {} ({size} bytes)", handle_text(*section)),
        ResponseBody::View { offset, size, .. } if *size > 0 => format!(", view @0x{offset:x} ({size} bytes)"),
        ResponseBody::Message(m) => {
            let kind = m.header.message_type().map_or("?", LpcMessageType::name);
            let callback = if m.header.callback_id != 0 { format!("/{}", m.header.callback_id) } else { String::new() };
            format!(
                " → {kind} id={}{callback} from {}: {}",
                m.header.message_id,
                client_text(m.header.client_id),
                describe_payload(m.data.len(), m.view.as_ref(), &m.data_info)
            )
        }
        ResponseBody::Transferred { bytes } => format!(", {bytes} bytes"),
        _ => String::new(),
    }
}

pub(super) fn describe_wait(wait: &Wait) -> String {
    match wait {
        Wait::Connect { message_id } => format!("waiting for the server to accept (id {message_id})"),
        Wait::Receive(ReceiveSource::ConnectionPort(_)) => "waiting to receive on the connection port".into(),
        Wait::Receive(ReceiveSource::ClientPort(_)) => "waiting to receive on the client port".into(),
        Wait::Reply => "waiting for the reply".into(),
        Wait::Copy { .. } => "copying between address spaces".into(),
    }
}
