//! Removing what a run made: on a normal exit, from the panic hook, from
//! the janitor after the supervisor was killed, and when sweeping up after
//! runs that crashed.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::rundir::{self, MANIFEST};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A POSIX shared-memory object (`shm_unlink`).
    Shm,
    /// A POSIX message queue (`mq_unlink`).
    Mq,
    /// A file system path outside the run dir (FIFOs and sockets normally
    /// live inside it and go with it).
    Path,
}

impl ObjectKind {
    pub fn word(self) -> &'static str {
        match self {
            ObjectKind::Shm => "shm",
            ObjectKind::Mq => "mq",
            ObjectKind::Path => "path",
        }
    }
    fn parse(w: &str) -> Option<ObjectKind> {
        match w {
            "shm" => Some(ObjectKind::Shm),
            "mq" => Some(ObjectKind::Mq),
            "path" => Some(ObjectKind::Path),
            _ => None,
        }
    }
}

pub fn unlink_object(kind: ObjectKind, name: &str) {
    let Ok(c) = CString::new(name) else { return };
    // SAFETY: valid C strings; errors (already gone) are fine.
    unsafe {
        match kind {
            ObjectKind::Shm => {
                libc::shm_unlink(c.as_ptr());
            }
            ObjectKind::Mq => {
                libc::mq_unlink(c.as_ptr());
            }
            ObjectKind::Path => {
                libc::unlink(c.as_ptr());
            }
        }
    }
}

/// Remove the objects a run's manifest lists, then its directory.
pub fn remove_run(dir: &Path) {
    if let Ok(text) = fs::read_to_string(dir.join(MANIFEST)) {
        for line in text.lines() {
            if let Some((k, name)) = line.split_once(' ') {
                if let Some(kind) = ObjectKind::parse(k) {
                    unlink_object(kind, name);
                }
            }
        }
    }
    let _ = fs::remove_dir_all(dir);
    // The per-user parent goes too when it is empty, so /tmp stays tidy.
    if let Some(parent) = dir.parent() {
        if parent.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ipcscope-")) {
            let _ = fs::remove_dir(parent);
        }
    }
}

/// Is `pid` a live ipcscope process? A pid reused by something else counts
/// as dead.
fn run_alive(pid: u32) -> bool {
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(c) => {
            let argv0 = c.split(|&b| b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(argv0).contains("ipcscope") && crate::monitor::procfs::alive(pid as i32)
        }
        Err(_) => false,
    }
}

/// Remove what runs whose supervisor is gone left behind. Never touches a
/// live run's objects. Returns a line per thing removed.
pub fn sweep_stale() -> Vec<String> {
    let mut removed = Vec::new();
    let (base, xdg) = rundir::base();
    let mut runs: Vec<(u32, PathBuf)> = Vec::new();
    if let Ok(rd) = fs::read_dir(&base) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = if xdg { name.strip_prefix("ipcscope-").and_then(|p| p.parse().ok()) } else { name.parse().ok() };
            if let Some(pid) = pid {
                runs.push((pid, e.path()));
            }
        }
    }
    for (pid, dir) in runs {
        if pid != std::process::id() && !run_alive(pid) {
            remove_run(&dir);
            removed.push(format!("run {pid}: {}", dir.display()));
        }
    }
    // Shared-memory objects are named /ipcscope-<pid>-…; any whose run is
    // dead goes, even if the manifest was lost.
    if let Ok(rd) = fs::read_dir("/dev/shm") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("ipcscope-") else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !run_alive(pid) {
                unlink_object(ObjectKind::Shm, &format!("/{name}"));
                removed.push(format!("shm /{name}"));
            }
        }
    }
    removed
}

/// What the panic hook must clean up if the program dies mid-run.
#[derive(Default)]
struct Emergency {
    groups: Vec<i32>,
    pids: Vec<i32>,
    objects: Vec<(ObjectKind, String)>,
    dirs: Vec<PathBuf>,
}

static EMERGENCY: Mutex<Option<Emergency>> = Mutex::new(None);

fn with_emergency(f: impl FnOnce(&mut Emergency)) {
    if let Ok(mut g) = EMERGENCY.lock() {
        f(g.get_or_insert_with(Emergency::default));
    }
}

pub fn emergency_register_group(g: i32) {
    with_emergency(|e| e.groups.push(g));
}
pub fn emergency_register_pid(p: i32) {
    with_emergency(|e| e.pids.push(p));
}
pub fn emergency_register_object(kind: ObjectKind, name: &str) {
    with_emergency(|e| e.objects.push((kind, name.to_string())));
}
pub fn emergency_register_dir(d: &Path) {
    with_emergency(|e| e.dirs.push(d.to_path_buf()));
}
pub fn emergency_clear() {
    if let Ok(mut g) = EMERGENCY.lock() {
        *g = None;
    }
}

/// Kill every process and remove every object of the run, from a panic
/// hook or a fatal signal path. Uses try_lock: a panic while the lock is
/// held must not deadlock.
pub fn emergency_cleanup() {
    let Ok(mut g) = EMERGENCY.try_lock() else {
        return;
    };
    let Some(e) = g.take() else { return };
    // SAFETY: signalling our own workers.
    unsafe {
        for &grp in &e.groups {
            libc::killpg(grp, libc::SIGKILL);
        }
        for &p in &e.pids {
            libc::kill(p, libc::SIGKILL);
        }
    }
    for (k, n) in &e.objects {
        unlink_object(*k, n);
    }
    for d in &e.dirs {
        remove_run(d);
    }
}

/// `ipcscope janitor PID DIR`: wait for the supervisor to end, however it
/// ends, then remove what its run left. Its own process group, no
/// parent-death signal: it must outlive the supervisor.
pub fn janitor(supervisor: i32, dir: &Path, restore_tty: bool) -> i32 {
    // SAFETY: plain prctl.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"ipcs-janitor".as_ptr() as libc::c_ulong, 0, 0, 0) };
    let Some(pidfd) = crate::monitor::procfs::pidfd_open(supervisor) else {
        remove_run(dir);
        return 0;
    };
    let mut pfd = libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&pidfd), events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd. Blocks until the supervisor exits.
        let r = unsafe { libc::poll(&mut pfd, 1, -1) };
        if r > 0 || (r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)) {
            break;
        }
    }
    // The run dir still being there means the supervisor did not get to
    // clean up: it was killed. Give the terminal back first, before the
    // shell that regains it prints its prompt.
    if !dir.exists() {
        return 0;
    }
    if restore_tty {
        give_back_terminal();
    }
    // The workers die with the supervisor (PR_SET_PDEATHSIG); give them a
    // moment to release their objects, then remove what is left.
    std::thread::sleep(std::time::Duration::from_millis(50));
    kill_run_processes(supervisor);
    remove_run(dir);
    0
}

/// Undo what the TUI did to the terminal on stdout: raw mode, alternate
/// screen, mouse reports, hidden cursor — as `stty sane` and `tput rmcup`
/// would.
fn give_back_terminal() {
    // We are in a background process group now: tcsetattr would stop us
    // with SIGTTOU.
    // SAFETY: signal disposition, then termios calls on fd 1 with a valid struct.
    unsafe {
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        if libc::isatty(1) != 1 {
            return;
        }
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(1, &mut t) == 0 {
            t.c_iflag |= libc::ICRNL | libc::IXON | libc::BRKINT;
            t.c_oflag |= libc::OPOST | libc::ONLCR;
            t.c_lflag |= libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ICANON | libc::ISIG | libc::IEXTEN;
            libc::tcsetattr(1, libc::TCSANOW, &t);
        }
    }
    let seq = b"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l\x1b[?1049l\x1b[?25h";
    // SAFETY: writing a byte buffer to fd 1.
    unsafe { libc::write(1, seq.as_ptr().cast(), seq.len()) };
}

/// Kill any process still carrying this run's marker (a forked consumer
/// whose parent-death signal pointed at a producer that is still alive).
fn kill_run_processes(supervisor: i32) {
    let marker = format!("{}={supervisor}", super::ENV_SUPERVISOR);
    let Ok(rd) = fs::read_dir("/proc") else {
        return;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == std::process::id() as i32 {
            continue;
        }
        if let Ok(env) = fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|&b| b == 0).any(|kv| kv == marker.as_bytes()) {
                // SAFETY: a process of the dead run.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
