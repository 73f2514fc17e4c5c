//! What the supervisor's side, the workers and the probe share: the
//! address families and the Unix socket's name. A leaf, so that the
//! parts of the socket mechanism import it and never each other in a
//! circle.

pub(super) const FAMILIES: &[&str] = crate::knobs::SOCKET_FAMILIES;

/// The Unix socket's file name inside the run directory.
pub const SOCK_NAME: &str = "sock";

pub(super) const FAM_UNIX: u64 = 1;
pub(super) const FAM_TCP: u64 = 2;

/// The abstract Unix name the server also listens on with
/// `socket.remote=netns` (no file: a name in the network namespace's own
/// table), from the run directory's unguessable name.
pub(super) fn abstract_name(run_dir: &std::path::Path) -> String {
    let run = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!("ipcscope-{run}-{SOCK_NAME}")
}
