//! A short soak in the normal suite (`ipcscope soak --minutes 60` is the
//! long one): every mechanism at full speed, frames rendered, and nothing
//! lost, leaked or left as a zombie.

mod common;

use common::*;

#[test]
fn short_soak_passes() {
    let out = ipcscope(&["soak", "--minutes", "0.2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.trim_end().ends_with("PASS"), "{text}");
    assert!(text.contains("lost 0, corrupt 0, duplicated 0"), "{text}");
    // Every mechanism's processes were watched.
    for kind in ["pipe", "fifo", "shm", "mq", "socket", "mach", "alpc"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(kind)), "{kind} missing:\n{text}");
    }
}
