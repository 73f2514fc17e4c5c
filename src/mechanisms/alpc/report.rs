//! What the ALPC workers leave in the run's directory for the probe: the
//! kernel's socket and each worker's report. Both sides import this leaf;
//! neither imports the other. The report holds the model's own types, so
//! the probe hands it on as it reads it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::detail::alpc::{RpcStep, SeenMessage};

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

#[cfg(test)]
mod tests {
    /// The kernel's observer answer is the model's `AlpcState`: recorded
    /// fixtures read and write back byte for byte.
    #[test]
    fn recorded_kernel_states_round_trip() {
        for name in ["callbacks", "direct", "stalled"] {
            let path = format!("{}/tests/fixtures/alpc-{name}.json", env!("CARGO_MANIFEST_DIR"));
            let snap: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let state = &snap["mechanisms"][0]["detail"]["alpc"]["state"];
            assert!(state.is_object(), "{name}: the fixture has a kernel state");
            let model: crate::model::detail::alpc::AlpcState = serde_json::from_value(state.clone()).unwrap();
            assert_eq!(serde_json::to_value(&model).unwrap(), *state, "{name}");
        }
    }
}
