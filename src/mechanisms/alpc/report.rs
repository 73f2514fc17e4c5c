//! What the ALPC workers leave in the run's directory for the probe: the
//! kernel's socket and each worker's report. Both sides import this leaf;
//! neither imports the other. The report holds the model's own types, so
//! the probe hands it on as it reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{rpc, types};
use crate::model::detail::alpc::{ClientId, Direction, PortMessageHeader, RpcLayer, RpcStep, SeenMessage};

/// The emulated kernel's socket, in the run's directory.
pub const SOCKET: &str = "nt.sock";

pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SOCKET)
}

/// Where a worker leaves its report for the probe.
pub fn report_path(run_dir: &Path, slot: usize) -> PathBuf {
    run_dir.join(format!("alpc-{slot}.json"))
}

/// What a worker leaves in the run's directory for the probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerReport {
    pub headers: Vec<SeenMessage>,
    /// The latest RPC call's trip through the layers (clients only).
    pub rpc: Vec<RpcStep>,
}

/// A received header, as the model shows it.
pub fn header(h: &types::PortMessageHeader) -> PortMessageHeader {
    PortMessageHeader {
        data_length: h.data_length,
        total_length: h.total_length,
        msg_type: h.msg_type,
        data_info_offset: h.data_info_offset,
        client_id: ClientId { unique_process: h.client_id.unique_process, unique_thread: h.client_id.unique_thread },
        message_id: h.message_id,
        callback_id: h.callback_id,
    }
}

/// An RPC call's layers, as the model shows them.
pub fn rpc_trace(trace: &[rpc::RpcStep]) -> Vec<RpcStep> {
    trace
        .iter()
        .map(|s| RpcStep {
            layer: match s.layer {
                rpc::RpcLayer::Application => RpcLayer::Application,
                rpc::RpcLayer::Stub => RpcLayer::Stub,
                rpc::RpcLayer::Runtime => RpcLayer::Runtime,
                rpc::RpcLayer::Alpc => RpcLayer::Alpc,
            },
            direction: match s.direction {
                rpc::Direction::Down => Direction::Down,
                rpc::Direction::Up => Direction::Up,
            },
            detail: s.detail.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    /// The probe reads the kernel's observer answer into the model's own
    /// view types: both must read and write the same JSON, byte for byte.
    #[test]
    fn kernel_state_and_model_view_share_one_json_shape() {
        for name in ["callbacks", "direct", "stalled"] {
            let path = format!("{}/tests/fixtures/alpc-{name}.json", env!("CARGO_MANIFEST_DIR"));
            let snap: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let state = &snap["mechanisms"][0]["detail"]["alpc"]["state"];
            assert!(state.is_object(), "{name}: the fixture has a kernel state");
            let kernel: super::super::state::AlpcState = serde_json::from_value(state.clone()).unwrap();
            let kernel_json = serde_json::to_string(&kernel).unwrap();
            let model: crate::model::detail::alpc::AlpcState = serde_json::from_str(&kernel_json).unwrap();
            assert_eq!(serde_json::to_string(&model).unwrap(), kernel_json, "{name}");
        }
    }
}
