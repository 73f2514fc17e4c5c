//! Paths given on the command line that are not regular files — a FIFO, a
//! device, a directory, a symlink — and files too large: refused at once
//! with exit 2 and one line, never a hang or an unbounded read.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

/// Run the binary, but kill it if it has not ended after a generous while:
/// a hang fails the test instead of blocking it. Its address space is
/// capped, so an unbounded read fails fast instead of eating the machine.
fn bounded(args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let _g = serial();
    let mut cmd = Command::new(EXE);
    cmd.args(args).env_remove("IPCSCOPE_SUPERVISOR").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 2 << 30, rlim_max: 2 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("run ipcscope");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(out) => {
            waiter.join().unwrap().unwrap();
            out.expect("wait")
        }
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waiter.join();
            panic!("ipcscope {args:?} hung (killed after 30 s)");
        }
    }
}

fn refused(args: &[&str], expect: &str) {
    let out = bounded(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(expect), "{args:?}: expected {expect:?} in {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
}

#[test]
fn lesson_from_a_device_or_directory_is_refused_at_once() {
    refused(&["lesson", "/dev/zero"], "/dev/zero is a character device, not a regular file");
    refused(&["lesson", "/dev/zero.toml"], "cannot read /dev/zero.toml");
    let dir = Scratch::new("lesson-dir");
    refused(&["lesson", dir.0.to_str().unwrap()], "is a directory");
}

#[test]
fn a_lesson_file_over_a_mebibyte_is_refused() {
    let dir = Scratch::new("lesson-big");
    let f = dir.path("big.toml");
    std::fs::write(&f, vec![b'#'; (1 << 20) + 1]).unwrap();
    refused(&["lesson", f.to_str().unwrap()], "larger than");
}

#[test]
fn fifos_are_refused_without_hanging() {
    let dir = Scratch::new("fifos");
    let fifo = dir.fifo("fifo");
    let f = fifo.to_str().unwrap();
    refused(&["lesson", f], "is a FIFO (named pipe), not a regular file");
    refused(&["replay", f], "is a FIFO (named pipe), not a regular file");
    refused(&["snapshot", "--mechanisms", "pipe", "--duration", "1", "--record", f], "is a FIFO");
    // The TUI refuses before it looks for a terminal or starts anything.
    refused(&["--mechanisms", "pipe", "--record", f], "is a FIFO");
    refused(&["lesson", "pipe-blocking", "--record", f], "is a FIFO");
    // Still a FIFO: nothing replaced it.
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_recording_is_never_written_through_a_symlink_or_to_a_device() {
    let dir = Scratch::new("rec-targets");
    let target = dir.path("target");
    std::fs::write(&target, b"keep me").unwrap();
    let link = dir.path("link.rec");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let l = link.to_str().unwrap();
    refused(&["snapshot", "--mechanisms", "pipe", "--duration", "1", "--record", l], "is a symbolic link");
    refused(&["--record", l], "is a symbolic link");
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    refused(&["snapshot", "--mechanisms", "pipe", "--duration", "1", "--record", "/dev/null"], "character device");
    refused(&["replay", "/dev/null"], "character device");
    refused(&["replay", dir.0.to_str().unwrap()], "is a directory");
}
