//! Driving the real TUI in a real terminal: tmux, send-keys, capture-pane.

use std::process::Command;
use std::time::{Duration, Instant};

/// One tmux server of its own per session (`-L`), so tests never share a
/// server with each other or with anyone else on the machine.
pub struct Tmux {
    pub name: String,
}

impl Tmux {
    pub fn start(cmd: &str, w: u16, h: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            // CI installs tmux (.ci/run); there a missing tmux is a failure.
            assert!(std::env::var_os("CI").is_none(), "tmux is missing on CI");
            eprintln!("tmux is not installed: skipping (apt-get install tmux)");
            return None;
        }
        // Not named ipcscope*: the server's socket lives in /tmp/tmux-UID/.
        let name = format!("scope-test-{}-{}", std::process::id(), rand_suffix());
        let ok = Command::new("tmux")
            .args(["-L", &name, "new-session", "-d", "-s", &name, "-x", &w.to_string(), "-y", &h.to_string()])
            .arg(format!("{cmd}; echo EXITED $?; sleep 30"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "tmux new-session failed");
        Some(Tmux { name })
    }

    pub fn screen(&self) -> String {
        let out =
            Command::new("tmux").args(["-L", &self.name, "capture-pane", "-p", "-t", &self.name]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, k: &str) {
        Command::new("tmux").args(["-L", &self.name, "send-keys", "-t", &self.name, k]).status().unwrap();
    }

    pub fn alternate_on(&self) -> bool {
        let out = Command::new("tmux")
            .args(["-L", &self.name, "display", "-p", "-t", &self.name, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    pub fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("screen never showed {what}:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.name, "kill-server"]).status();
        // tmux leaves its socket file behind.
        let base = std::env::var("TMUX_TMPDIR").unwrap_or_else(|_| "/tmp".into());
        let uid = nix::unistd::getuid();
        let _ = std::fs::remove_file(format!("{base}/tmux-{uid}/{}", self.name));
    }
}

pub fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}

impl Tmux {
    /// The pid of the program the pane runs (the shell's child).
    pub fn program_pid(&self) -> Option<i32> {
        let out = Command::new("tmux")
            .args(["-L", &self.name, "display", "-p", "-t", &self.name, "#{pane_pid}"])
            .output()
            .ok()?;
        let shell: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }
}
