//! How a worker ended, in words: for its process line and the supervisor's
//! notes.

use std::path::Path;

use crate::telemetry::ExitStatus;

/// "exit 0", "killed by SIGPIPE", "exit 1: write: EPIPE (…)".
pub fn describe_exit(e: ExitStatus, log: &Path) -> String {
    match e {
        ExitStatus::Signal(s) => format!("killed by {}", signal_name(s)),
        ExitStatus::Code(0) => "exit 0".into(),
        ExitStatus::Code(c) => {
            let last = std::fs::read_to_string(log)
                .ok()
                .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string));
            match last {
                Some(l) => format!("exit {c}: {}", l.trim_start_matches("error: ")),
                None => format!("exit {c}"),
            }
        }
    }
}

pub fn signal_name(s: i32) -> String {
    nix::sys::signal::Signal::try_from(s).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figures::ExitCause;

    /// The model reads back what this writes: panels decide by the
    /// `ExitCause`, so rewording here must keep it readable.
    #[test]
    fn the_model_reads_the_exit_text_back() {
        let none = Path::new("/nonexistent/ipcscope-log");
        assert!(ExitCause::parse(&describe_exit(ExitStatus::Signal(libc::SIGPIPE), none)).sigpipe());
        assert_eq!(ExitCause::parse(&describe_exit(ExitStatus::Code(0), none)), ExitCause::Code(0));
        assert_eq!(ExitCause::parse(&describe_exit(ExitStatus::Code(3), none)), ExitCause::Code(3));
        let kill = ExitCause::parse(&describe_exit(ExitStatus::Signal(libc::SIGKILL), none));
        assert_eq!(kill, ExitCause::Signal("SIGKILL".into()));
    }
}
