//! An emulated kernel that dies is shown as such: its tasks lose their
//! connection and end, the panel says the kernel died, and `r` brings the
//! kernel and its tasks back.

mod common;

use std::time::Duration;

use common::*;
use ipcscope::mechanisms::Kind;
use ipcscope::session::Command;

fn kill_the_kernel_and_restart(kind: Kind) {
    let _g = serial();
    let mut sess = session(&[kind], &[]);
    let s = wait_for(&sess, "messages flowing", Duration::from_secs(10), |s| mech(s, kind).integrity.delivered > 20);
    let kernel = mech(&s, kind).processes[0].clone();
    assert_eq!(kernel.role, "kernel");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(kernel.pid), nix::sys::signal::Signal::SIGKILL);
    let dead = wait_for(&sess, "every task ends and the panel says why", Duration::from_secs(10), |s| {
        let m = mech(s, kind);
        m.processes.iter().all(|p| p.exit.is_some()) && m.notes.iter().any(|n| n.key == "kernel-died")
    });
    let m = mech(&dead, kind);
    assert_eq!(m.processes[0].exit.as_deref(), Some("killed by SIGKILL"));
    let old = pids(&dead);
    sess.apply(Command::Restart(kind)).unwrap();
    let back = wait_for(&sess, "a new kernel and tasks, flowing", Duration::from_secs(15), |s| {
        let m = mech(s, kind);
        m.processes.iter().all(|p| p.alive() && !old.contains(&p.pid)) && m.integrity.delivered > 20
    });
    assert!(!mech(&back, kind).notes.iter().any(|n| n.key == "kernel-died"), "old notes outlived the restart");
    let mut all = old;
    all.extend(pids(&back));
    sess.shutdown();
    assert_nothing_left(&all);
}

#[test]
fn mach_kernel_killed_then_restarted() {
    kill_the_kernel_and_restart(Kind::Mach);
}

#[test]
fn nt_kernel_killed_then_restarted() {
    kill_the_kernel_and_restart(Kind::Alpc);
}
