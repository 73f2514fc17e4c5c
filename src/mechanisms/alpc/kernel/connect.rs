//! Connection ports and connections: `NtAlpcCreatePort`,
//! `NtAlpcConnectPort` (queued on the connection port as an
//! `LPC_CONNECTION_REQUEST`) and `NtAlpcAcceptConnectPort`, which makes a
//! channel of two communication ports or refuses.

use std::collections::{BTreeSet, VecDeque};

use super::objects::{
    header_for, CallResult, Channel, ConnectRequest, ConnectionPort, Flow, HandleTarget, Message, QueueLoc, Side, Wait,
};
use super::{AlpcKernel, ConnId, MAX_CONNECTION_INFO};
use crate::mechanisms::alpc::proto::{PortAttributes, ResponseBody};
use crate::mechanisms::alpc::state::PathCounters;
use crate::mechanisms::alpc::types::{LpcMessageType, NtStatus, PORT_MESSAGE_SIZE};

impl AlpcKernel {
    pub(super) fn create_port(&mut self, conn: ConnId, name: String, attributes: PortAttributes) -> CallResult {
        if !valid_object_name(&name) {
            return Err(NtStatus::STATUS_OBJECT_NAME_INVALID);
        }
        if self.directory.contains_key(&name) {
            return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
        }
        if self.ports.len() >= self.config.limits.max_connection_ports {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let system_max = self.system_max_message();
        let max_message_length = match attributes.max_message_length {
            0 => system_max,
            n if n <= system_max => n,
            // NT rejects a MaxMessageLength above the system limit.
            _ => return Err(NtStatus::STATUS_INVALID_PARAMETER),
        };
        let max_pool_usage = match attributes.max_pool_usage {
            0 => self.config.max_pool_usage,
            n => n.min(self.config.limits.max_pool_usage_ceiling),
        };
        self.ensure_handle_room(conn, 1)?;
        let id = self.new_object_id();
        let handle = self.insert_handle(conn, HandleTarget::ConnectionPort(id))?;
        self.ports.insert(
            id,
            ConnectionPort {
                name: name.clone(),
                handle_open: true,
                server: conn,
                attributes,
                max_message_length,
                max_pool_usage,
                pool_usage: 0,
                queue: VecDeque::new(),
                receivers: VecDeque::new(),
                channels: BTreeSet::new(),
                refusals: 0,
                quota_failures: 0,
            },
        );
        self.directory.insert(name, id);
        Ok(Flow::ok(ResponseBody::Handle { handle }))
    }

    pub(super) fn connect_port(
        &mut self,
        conn: ConnId,
        name: &str,
        attributes: PortAttributes,
        client_section_size: u64,
        mut connection_data: Vec<u8>,
        timeout_ms: Option<u32>,
    ) -> CallResult {
        let port_id = *self.directory.get(name).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
        if client_section_size > self.config.limits.max_section_size {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let port = self.ports.get(&port_id).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
        let waiting = self.connects.values().filter(|c| c.port == port_id).count();
        if waiting >= self.config.limits.max_connection_requests_per_port {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        // The client will need a communication port handle and up to two
        // section handles; refuse now rather than after the server accepted.
        self.ensure_handle_room(conn, 3)?;
        connection_data.truncate(MAX_CONNECTION_INFO);
        let charge = u64::from(PORT_MESSAGE_SIZE) + connection_data.len() as u64;
        if port.pool_usage + charge > port.max_pool_usage {
            self.count_quota_failure(None, port_id);
            return Err(NtStatus::POOL_QUOTA_EXHAUSTED);
        }
        if self.live_messages >= self.config.limits.max_messages_total {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let message_id = self.new_message_id();
        let client_id = self.client_id(conn);
        let message = Message {
            header: header_for(LpcMessageType::ConnectionRequest, client_id, message_id, 0, connection_data.len(), 0),
            kind: LpcMessageType::ConnectionRequest,
            channel: None,
            port_context: 0,
            sender: conn,
            data: connection_data,
            view: None,
            data_info: Vec::new(),
            charge,
        };
        self.connects.insert(
            message_id,
            ConnectRequest { port: port_id, client: conn, attributes, client_section_size, received: false },
        );
        self.enqueue(QueueLoc::ConnectionPort(port_id), message);
        Ok(Flow::Blocked { wait: Wait::Connect { message_id }, deadline: self.deadline(timeout_ms) })
    }

    #[allow(clippy::too_many_arguments)] // mirrors NtAlpcAcceptConnectPort's parameter list
    pub(super) fn accept_connect_port(
        &mut self,
        conn: ConnId,
        connection_port: u32,
        message_id: u32,
        accept: bool,
        port_context: u64,
        server_section_size: u64,
        mut connection_data: Vec<u8>,
    ) -> CallResult {
        let HandleTarget::ConnectionPort(port_id) = self.lookup(conn, connection_port)? else {
            return Err(NtStatus::STATUS_INVALID_PORT_HANDLE);
        };
        let request = self.connects.get(&message_id).ok_or(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH)?;
        let client = request.client;
        let client_waits = self
            .processes
            .get(&client)
            .and_then(|p| p.blocked.as_ref())
            .is_some_and(|b| b.wait == Wait::Connect { message_id });
        if request.port != port_id || !request.received || !client_waits {
            return Err(NtStatus::STATUS_REPLY_MESSAGE_MISMATCH);
        }
        if !accept {
            self.connects.remove(&message_id);
            if let Some(p) = self.ports.get_mut(&port_id) {
                p.refusals += 1;
            }
            self.totals.connection_refusals += 1;
            self.complete(client, NtStatus::STATUS_PORT_CONNECTION_REFUSED, ResponseBody::None, Vec::new());
            return Ok(Flow::ok(ResponseBody::None));
        }
        let client_section_size = request.client_section_size;
        let client_max = request.attributes.max_message_length;
        if server_section_size > self.config.limits.max_section_size {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        if self.channels.len() >= self.config.limits.max_channels {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let new_section_bytes = client_section_size + server_section_size;
        if self.total_section_bytes + new_section_bytes > self.config.limits.max_total_section_bytes {
            return Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        }
        let sections_needed = usize::from(client_section_size > 0) + usize::from(server_section_size > 0);
        self.ensure_handle_room(conn, 1 + sections_needed)?;
        self.ensure_handle_room(client, 1 + sections_needed)?;
        let port = self.ports.get(&port_id).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let max_message_length = match client_max {
            0 => port.max_message_length,
            n => n.min(port.max_message_length),
        };
        let max_pool_usage = port.max_pool_usage;

        self.connects.remove(&message_id);
        let channel_id = self.new_object_id();
        let server_handle = self.insert_handle(conn, HandleTarget::ServerCommPort(channel_id))?;
        let client_handle = self.insert_handle(client, HandleTarget::ClientCommPort(channel_id))?;
        // LPC: a NULL PortContext means "use the server port's handle value".
        let port_context = if port_context == 0 { u64::from(server_handle) } else { port_context };
        self.channels.insert(
            channel_id,
            Channel {
                connection_port: port_id,
                port_context,
                max_message_length,
                max_pool_usage,
                server: conn,
                client,
                server_handle: Some(server_handle),
                client_handle: Some(client_handle),
                connected: true,
                client_queue: VecDeque::new(),
                client_receivers: VecDeque::new(),
                client_pool_usage: 0,
                client_section: None,
                server_section: None,
                counters: PathCounters::default(),
            },
        );
        if let Some(p) = self.ports.get_mut(&port_id) {
            p.channels.insert(channel_id);
        }
        let mut attach = Vec::new();
        for (size, writer) in [(client_section_size, Side::Client), (server_section_size, Side::Server)] {
            if size > 0 {
                attach.push(self.create_section(channel_id, writer, size)?);
            }
        }
        connection_data.truncate(MAX_CONNECTION_INFO);
        self.complete(
            client,
            NtStatus::STATUS_SUCCESS,
            ResponseBody::Connected { port: client_handle, max_message_length, connection_data },
            attach.clone(),
        );
        Ok(Flow::Done {
            status: NtStatus::STATUS_SUCCESS,
            body: ResponseBody::Handle { handle: server_handle },
            attach,
        })
    }
}

/// NT object names are absolute paths: `\RPC Control\name`.
fn valid_object_name(name: &str) -> bool {
    name.len() > 1
        && name.starts_with('\\')
        && !name.ends_with('\\')
        && !name.contains("\\\\")
        && !name.chars().any(|c| c.is_control())
}
