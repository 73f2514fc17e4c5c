//! What the Mach processes, the supervisor's side and the probe share: the
//! service's name and the kernel's socket. A leaf, so that
//! `mechanism`, `workload` and `probe` import it and never each other in a
//! circle.

/// The choices of `mach.send_mode`, in the order they are stored.
pub const SEND_MODES: &[&str] = crate::knobs::MACH_SEND_MODES;

/// The name the server checks in with the bootstrap server.
pub const SERVICE: &str = "edu.ipcscope.echo";
/// The socket of the emulated kernel, in the run's directory.
pub const SOCKET: &str = "mach.sock";
