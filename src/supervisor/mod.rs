//! The supervisor owns every child process and every named object of a run.
//!
//! It makes the run's private directory, spawns workers (this same binary
//! re-executed as `ipcscope worker …`), stops and continues them, kills and
//! restarts roles, reaps them, and on the way out removes everything it
//! made. What a crashed run left behind is swept by the next run (`sweep`)
//! or by `ipcscope clean`; a small janitor process also cleans up right after
//! a supervisor that was killed outright.

pub mod cleanup;
mod own_dir;
pub mod rundir;

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::knobs::{KnobId, Knobs};
use crate::model::Kind;
use crate::monitor::exit::describe_exit;
use crate::telemetry::{Telemetry, MAX_SLOTS, WORKER_FD};
pub use cleanup::{sweep_stale, ObjectKind};
pub use own_dir::RunDir;

/// Environment variables a worker finds its run by.
pub const ENV_SUPERVISOR: &str = "IPCSCOPE_SUPERVISOR";
/// Set for the janitor only: it was started by ipcscope, for this run.
pub const ENV_JANITOR_OF: &str = "IPCSCOPE_JANITOR_OF";
pub const ENV_RUN_DIR: &str = "IPCSCOPE_RUN_DIR";
/// The janitor's pid: a worker outliving a killed supervisor leaves the
/// cleanup to a live janitor (see `mechanisms::worker::death`).
pub const ENV_JANITOR: &str = "IPCSCOPE_JANITOR";
/// The signal a worker gets when its supervisor dies (`PR_SET_PDEATHSIG`).
pub const DEATH_SIGNAL: libc::c_int = libc::SIGHUP;

/// What to start.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub kind: Kind,
    pub role: String,
    pub slot: usize,
    /// Extra `--arg key=value` pairs for the worker.
    pub args: Vec<(String, String)>,
    /// Emulated kernels keep their own process group, so pausing the
    /// workers does not freeze the kernel the monitor asks.
    pub own_group: bool,
    /// `kernel` instead of `worker` on the command line (so `ps` shows
    /// `ipcscope kernel mach`).
    pub subcommand: &'static str,
}

impl WorkerSpec {
    pub fn new(kind: Kind, role: &str, slot: usize) -> Self {
        WorkerSpec { kind, role: role.into(), slot, args: Vec::new(), own_group: false, subcommand: "worker" }
    }
    /// An emulated kernel: `ipcscope kernel NAME`, in a process group of
    /// its own.
    pub fn kernel(kind: Kind, name: &str, slot: usize) -> Self {
        WorkerSpec { kind, role: name.into(), slot, args: Vec::new(), own_group: true, subcommand: "kernel" }
    }

    pub fn arg(mut self, k: &str, v: impl ToString) -> Self {
        self.args.push((k.into(), v.to_string()));
        self
    }
}

pub struct Supervisor {
    exe: PathBuf,
    pub dir: RunDir,
    tel: Telemetry,
    tel_fd: OwnedFd,
    /// The workers' process group (the first worker's pid), once there is one.
    pgid: Option<i32>,
    /// Every direct child's pid, in spawn order.
    children: Vec<i32>,
    janitor: Option<i32>,
    /// The workers forked, for the reaper (see `Spawned`).
    spawned: Arc<Spawned>,
    next_slot: usize,
    paused: Arc<AtomicBool>,
    knobs: Knobs,
}

impl Supervisor {
    /// Make the run's directory and telemetry page. Workers are `exe`
    /// re-executed; `knobs` are the starting values, written into the
    /// control page.
    pub fn with_exe(exe: PathBuf, knobs: Knobs) -> Result<Supervisor> {
        // What a sweep could not do is worth a line; the run goes on.
        let swept = sweep_stale();
        for l in swept.ignored.iter().chain(&swept.failed) {
            eprintln!("ipcscope: stale run: {l}");
        }
        let dir = RunDir::create()?;
        cleanup::emergency_register_dir(dir.path());
        let (tel, tel_fd) = Telemetry::create()?;
        for (id, v) in knobs.iter() {
            tel.set_knob(id, v);
        }
        crate::trace::run_started(dir.path(), tel.page().t0_us.load(Relaxed));
        // Orphans of our workers (a consumer whose producer died) become
        // our children, so we reap them and see how they ended.
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let mut sup = Supervisor {
            exe,
            dir,
            tel,
            tel_fd,
            pgid: None,
            children: Vec::new(),
            janitor: None,
            spawned: Arc::new(Spawned::default()),
            next_slot: 0,
            paused: Arc::new(AtomicBool::new(false)),
            knobs,
        };
        sup.spawn_janitor();
        Ok(sup)
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.tel
    }

    /// What the reaper needs to tell about workers that died at start.
    pub fn spawned(&self) -> Arc<Spawned> {
        self.spawned.clone()
    }

    /// For the monitor thread: reap the workers that ended and say the
    /// problems met so far (the monitor needs nothing else of ours).
    pub fn reaper(&self) -> impl FnMut(&Telemetry) -> Vec<String> + Send + 'static {
        let spawned = self.spawned.clone();
        move |tel| {
            reap(tel, &spawned);
            spawned.problems()
        }
    }

    pub fn paused_flag(&self) -> Arc<AtomicBool> {
        self.paused.clone()
    }

    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }

    /// Change a knob: the control page (workers see it on their next
    /// message) and our own copy.
    pub fn set_knob(&mut self, id: KnobId, v: u64) {
        self.knobs.set(id, v);
        self.tel.set_knob(id, v);
    }

    pub fn alloc_slot(&mut self) -> Result<usize> {
        if self.next_slot >= MAX_SLOTS {
            anyhow::bail!("too many worker processes (at most {MAX_SLOTS})");
        }
        self.next_slot += 1;
        Ok(self.next_slot - 1)
    }

    /// A name for a POSIX named object (`/dev/shm`, message queue): the
    /// run's pid and an unguessable token, so two runs never collide and
    /// another user cannot guess it.
    pub fn object_name(&self, what: &str) -> String {
        format!("/ipcscope-{}-{}-{what}", std::process::id(), self.dir.token())
    }

    /// Remember a named object so that every way out removes it. Call
    /// before it is created.
    pub fn register_object(&mut self, kind: ObjectKind, name: &str) -> Result<()> {
        self.dir.record(kind, name)?;
        cleanup::emergency_register_object(kind, name);
        Ok(())
    }

    /// Start a worker process. Must be called from the thread that lives
    /// as long as the run (PR_SET_PDEATHSIG follows the forking thread).
    pub fn spawn(&mut self, spec: &WorkerSpec) -> Result<i32> {
        self.tel.reset_slot(spec.slot);
        // The worker's log takes an inode; a run dir out of them would
        // lose every word of why the worker fails (a bare "exit 1").
        let log = self.dir.path().join(format!("{}.log", spec.slot));
        if let Err(e) = std::fs::File::create(&log) {
            let dir = self.dir.path().display();
            anyhow::bail!(
                "cannot create the log of {} in {dir}: {}",
                panel_name(spec),
                no_room_note(&e, self.dir.path())
            );
        }
        // Held across the fork: the monitor's reaper cannot see this child
        // end before it is listed.
        let spawned = self.spawned.clone();
        let mut listed = spawned.lock();
        let group = if spec.own_group { Some(0) } else { Some(self.pgid.unwrap_or(0)) };
        let pid = match self.spawn_in(spec, group) {
            Ok(pid) => pid,
            // The group's members have all died: start a new one.
            Err(_) if group != Some(0) => {
                self.pgid = None;
                self.spawn_in(spec, Some(0))?
            }
            Err(e) => return Err(e),
        };
        if !spec.own_group && self.pgid.is_none() {
            self.pgid = Some(pid);
            cleanup::emergency_register_group(pid);
        }
        cleanup::emergency_register_pid(pid);
        self.children.push(pid);
        listed.add(&self.tel, pid, spec, self.dir.path());
        drop(listed);
        // A paused run stays paused for a restarted worker too.
        if self.paused.load(Relaxed) && !spec.own_group {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGSTOP);
        }
        Ok(pid)
    }

    fn command(&self, spec: &WorkerSpec) -> Command {
        let mut cmd = Command::new(&self.exe);
        if spec.subcommand == "kernel" {
            // `ipcscope kernel mach`: the role is the kernel's name.
            cmd.arg("kernel").arg(&spec.role);
        } else {
            cmd.arg(spec.subcommand).arg(spec.kind.name()).arg(&spec.role);
        }
        cmd.arg("--slot").arg(spec.slot.to_string());
        for (k, v) in &spec.args {
            cmd.arg("--arg").arg(format!("{k}={v}"));
        }
        cmd.env(ENV_SUPERVISOR, std::process::id().to_string())
            .env(ENV_RUN_DIR, self.dir.path())
            .env(ENV_JANITOR, self.janitor.unwrap_or(0).to_string())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        crate::trace::worker_env(&mut cmd);
        // A worker's complaints go to a log in the run dir; the panel shows
        // the last line when the worker dies.
        match std::fs::File::create(self.dir.path().join(format!("{}.log", spec.slot))) {
            Ok(f) => cmd.stderr(f),
            Err(_) => cmd.stderr(Stdio::null()),
        };
        cmd
    }

    fn spawn_in(&self, spec: &WorkerSpec, group: Option<i32>) -> Result<i32> {
        let mut cmd = self.command(spec);
        if let Some(g) = group {
            cmd.process_group(g);
        }
        let tel_fd = self.tel_fd.as_raw_fd();
        // The death signal is catchable: a worker whose supervisor was killed
        // outright removes the run's objects before it goes (the janitor may
        // be dead too).
        let death = DEATH_SIGNAL;
        let no_mask = empty_sigset();
        // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl,
        // sigprocmask) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if tel_fd == WORKER_FD {
                    let flags = libc::fcntl(tel_fd, libc::F_GETFD);
                    libc::fcntl(tel_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                } else if libc::dup2(tel_fd, WORKER_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, death, 0, 0, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The TUI starts us from a thread that blocks its exit
                // signals; a worker must see its death signal.
                libc::sigprocmask(libc::SIG_SETMASK, &no_mask, std::ptr::null_mut());
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("cannot start {} {}", spec.kind.name(), spec.role))?;
        // Reaping is done by `reap` with waitpid(-1); dropping the Child
        // neither waits nor kills.
        Ok(child.id() as i32)
    }

    /// A process that outlives us for a moment: when we die — even by
    /// SIGKILL — it removes what this run made.
    fn spawn_janitor(&mut self) {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("janitor")
            .arg(std::process::id().to_string())
            .arg(self.dir.path())
            // Not ENV_SUPERVISOR: that marks the run's workers, which the
            // janitor is not (it is never paused, and it kills them).
            .env(ENV_JANITOR_OF, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let no_mask = empty_sigset();
        // SAFETY: sigprocmask is async-signal-safe. The TUI starts us with
        // its exit signals blocked; the janitor must not inherit that.
        unsafe {
            cmd.pre_exec(move || {
                libc::sigprocmask(libc::SIG_SETMASK, &no_mask, std::ptr::null_mut());
                Ok(())
            });
        }
        if crate::TUI_MODE.load(Relaxed) {
            // Keep our terminal as its stdout, to restore it after a SIGKILL.
            cmd.arg("--restore-tty").stdout(Stdio::inherit());
        }
        if let Ok(child) = cmd.spawn() {
            self.children.push(child.id() as i32);
            self.janitor = Some(child.id() as i32);
        }
    }

    /// SIGSTOP or SIGCONT every worker (not the emulated kernels): pausing
    /// really pauses the processes.
    pub fn set_paused(&mut self, paused: bool) {
        let sig = if paused { Signal::SIGSTOP } else { Signal::SIGCONT };
        if let Some(g) = self.pgid {
            // Our workers' own group, never ours.
            let _ = nix::sys::signal::killpg(Pid::from_raw(g), sig);
        }
        self.paused.store(paused, Relaxed);
    }

    pub fn paused(&self) -> bool {
        self.paused.load(Relaxed)
    }

    /// Send a signal to the worker in `slot`, if it is still running.
    pub fn signal_slot(&self, slot: usize, sig: i32) -> bool {
        let s = self.tel.slot(slot);
        let pid = s.pid.load(Relaxed) as i32;
        if pid <= 0 || s.exit.load(Relaxed) != 0 {
            return false;
        }
        match crate::monitor::procfs::pidfd_open(pid) {
            Some(pidfd) => {
                // nix has no pidfd_send_signal.
                // SAFETY: integer arguments and a null siginfo (allowed: the
                // kernel fills in a default); `pidfd` stays open.
                let r = unsafe {
                    libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, std::ptr::null::<u8>(), 0)
                };
                r == 0
            }
            None => false,
        }
    }

    pub fn slot_alive(&self, slot: usize) -> bool {
        let s = self.tel.slot(slot);
        s.pid.load(Relaxed) > 0 && s.exit.load(Relaxed) == 0
    }

    pub fn dir_path(&self) -> &Path {
        self.dir.path()
    }

    /// Kill every process of the run, reap them, remove every object.
    pub fn shutdown(&mut self) {
        if let Some(g) = self.pgid {
            // Our workers' group; SIGCONT so stopped ones die now.
            let _ = nix::sys::signal::killpg(Pid::from_raw(g), Signal::SIGKILL);
            let _ = nix::sys::signal::killpg(Pid::from_raw(g), Signal::SIGCONT);
        }
        for slot in 0..self.next_slot {
            self.signal_slot(slot, libc::SIGKILL);
        }
        for &pid in &self.children {
            // Our own children; an already reaped pid gives ESRCH (or,
            // after reuse, belongs to no one of ours: we only signal pids
            // we have not seen exit — reap() removes the rest).
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Wait for the children (bounded: SIGKILL cannot be ignored).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            let mut status = 0;
            // Raw waitpid: record_exit stores the status word itself.
            // SAFETY: `status` is a valid int for the kernel to write.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r > 0 {
                self.record_exit(r, status);
                continue;
            }
            if r < 0 {
                break; // ECHILD: nobody left
            }
            if !self.children.iter().any(|&p| crate::monitor::procfs::alive(p)) {
                // Only zombies or strangers left; one more pass reaps them.
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Every worker is gone: what they traced is final.
        crate::trace::run_ended(self.dir.path());
        self.dir.remove_all();
        cleanup::emergency_clear();
    }

    fn record_exit(&self, pid: i32, status: i32) {
        record_exit(&self.tel, &self.spawned, pid, status);
    }
}

/// `e`, and for ENOSPC whether the filesystem of `dir` ran out of inodes
/// or of space.
fn no_room_note(e: &std::io::Error, dir: &Path) -> String {
    let text = strip_os_error(&e.to_string());
    if e.raw_os_error() != Some(libc::ENOSPC) {
        return text;
    }
    match nix::sys::statvfs::statvfs(dir) {
        Ok(v) if v.files_available() == 0 => format!("{text} (no free inodes left)"),
        _ => text,
    }
}

/// A worker as its panel names it: `ipcscope kernel nt` is the alpc
/// kernel, `worker mach client --arg n=2` is client-2.
fn panel_name(spec: &WorkerSpec) -> String {
    let role = match (spec.subcommand, spec.args.iter().find(|(k, _)| k == "n" || k == "index")) {
        ("kernel", _) => "kernel".to_string(),
        (_, Some((_, n))) if spec.role == "client" => format!("client-{n}"),
        _ => spec.role.clone(),
    };
    format!("{} {role}", spec.kind.name())
}

/// The workers the supervisor forked, by pid. A worker writes its pid into
/// its slot once it runs; one that dies before that (too few descriptors,
/// no memory, a bad start) would otherwise end unseen.
#[derive(Default)]
pub struct Spawned {
    inner: std::sync::Mutex<SpawnedInner>,
}

#[derive(Default)]
struct SpawnedInner {
    /// pid → (slot, the slot's generation at spawn, "pipe producer", its log).
    children: std::collections::HashMap<i32, (usize, u64, String, PathBuf)>,
    problems: Vec<String>,
}

impl Spawned {
    fn lock(&self) -> std::sync::MutexGuard<'_, SpawnedInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `<kind> <role> ended at start: <why>` for each worker that ended
    /// before it announced itself.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }
}

impl SpawnedInner {
    fn add(&mut self, tel: &Telemetry, pid: i32, spec: &WorkerSpec, dir: &Path) {
        let what = panel_name(spec);
        let generation = tel.slot(spec.slot).generation.load(Relaxed);
        let log = dir.join(format!("{}.log", spec.slot));
        self.children.insert(pid, (spec.slot, generation, what, log));
    }
}

/// A signal set with nothing in it, made before fork.
fn empty_sigset() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// Reap every child that has ended and write how it ended into its slot.
/// Called by the monitor on every sample.
pub fn reap(tel: &Telemetry, spawned: &Spawned) {
    loop {
        let mut status = 0;
        // Raw waitpid: record_exit stores the status word itself.
        // SAFETY: `status` is a valid int for the kernel to write.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        record_exit(tel, spawned, pid, status);
    }
}

fn record_exit(tel: &Telemetry, spawned: &Spawned, pid: i32, status: i32) {
    let how = crate::telemetry::ExitStatus::from_wait(status);
    let exit = how.encode();
    let mut known = false;
    for i in 0..MAX_SLOTS {
        let s = tel.slot(i);
        if s.pid.load(Relaxed) as i32 == pid && s.exit.load(Relaxed) == 0 {
            s.exit.store(exit, Relaxed);
            known = true;
        }
    }
    let mut sp = spawned.lock();
    let Some((slot, generation, what, log)) = sp.children.remove(&pid) else { return };
    let s = tel.slot(slot);
    // Never announced, and the slot not restarted since: it died at start.
    if known || s.generation.load(Relaxed) != generation || s.pid.load(Relaxed) != 0 {
        return;
    }
    s.pid.store(pid as u64, Relaxed);
    s.exit.store(exit, Relaxed);
    let why = describe_exit(how, &log);
    sp.problems.push(format!("{what} ended at start: {}", why.split_once(": ").map_or(why.as_str(), |(_, l)| l)));
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Arguments as the worker gets them back.
pub fn worker_args(args: &[OsString]) -> Vec<(String, String)> {
    args.iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `text` without Rust's " (os error N)" (the words before it say it).
pub fn strip_os_error(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(i) = out.find(" (os error ") {
        match out[i..].find(')') {
            Some(j) if out[i + 11..i + j].bytes().all(|b| b.is_ascii_digit()) => out.replace_range(i..i + j + 1, ""),
            _ => break,
        }
    }
    out
}

/// `RLIMIT_NPROC is 20`, or None when the limit is not set. `unit` divides
/// the value (1024: shown in KiB, as `ulimit -v` takes it).
pub fn limit_text(name: &str, resource: nix::sys::resource::Resource, unit: u64) -> Option<String> {
    let (soft, _) = nix::sys::resource::getrlimit(resource).ok()?;
    if soft == libc::RLIM_INFINITY {
        return None;
    }
    Some(format!("{name} is {}", soft / unit))
}
