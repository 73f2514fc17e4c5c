//! Removing what a run made: on a normal exit, from the panic hook, from
//! the janitor after the supervisor was killed, and when sweeping up after
//! runs that crashed.

use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::stat::{fstat, fstatat, Mode};
use nix::unistd::{unlinkat, Pid, UnlinkatFlags};

use super::rundir::{self, DirProblem, MANIFEST};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A POSIX shared-memory object (`shm_unlink`).
    Shm,
    /// A POSIX message queue (`mq_unlink`).
    Mq,
    /// A file system path outside the run dir. Nothing records one, and a
    /// manifest's `path` entries are never obeyed: a path can point anywhere.
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

/// Remove one of our own run's objects by name (the caller made it).
pub fn unlink_object(kind: ObjectKind, name: &str) {
    let Ok(c) = CString::new(name) else { return };
    // Errors (already gone) are fine.
    let _ = match kind {
        ObjectKind::Shm => nix::sys::mman::shm_unlink(c.as_c_str()),
        ObjectKind::Mq => nix::mqueue::mq_unlink(c.as_c_str()),
        ObjectKind::Path => nix::unistd::unlink(c.as_c_str()),
    };
}

/// What a sweep or a removal did, line by line, as it really happened.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// The base directory must not be used: nothing was read or removed.
    pub refused: Option<String>,
    /// Really removed: `run PID: DIR`, `shm NAME`, `mq NAME`.
    pub removed: Vec<String>,
    /// Left alone on purpose: another user's object, something that is not
    /// a run dir of ours.
    pub left: Vec<String>,
    /// Manifest entries not obeyed: they name something outside their run.
    pub ignored: Vec<String>,
    /// Ours, but removing it failed: what and why.
    pub failed: Vec<String>,
}

impl SweepReport {
    pub fn is_empty(&self) -> bool {
        self.refused.is_none()
            && self.removed.is_empty()
            && self.left.is_empty()
            && self.ignored.is_empty()
            && self.failed.is_empty()
    }
    fn merge(&mut self, o: SweepReport) {
        self.refused = self.refused.take().or(o.refused);
        self.removed.extend(o.removed);
        self.left.extend(o.left);
        self.ignored.extend(o.ignored);
        self.failed.extend(o.failed);
    }
}

/// A name read from disk, safe to print: control characters are escaped,
/// so a planted name cannot drive the terminal.
fn shown(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().flat_map(|c| c.escape_debug().collect::<Vec<_>>()).collect()
}

/// How removing one named object went.
enum Outcome {
    Removed,
    /// Not there (any more): someone, maybe its own run, removed it first.
    Gone,
    /// Another user's (its uid, when we could see it).
    NotOurs(Option<u32>),
    /// A symlink, directory or other non-object: never followed or removed.
    NotAnObject,
    Failed(Errno),
}

fn note(r: &mut SweepReport, kind: ObjectKind, name: &str, o: Outcome) {
    let what = format!("{} {name}", kind.word());
    match o {
        Outcome::Removed => r.removed.push(what),
        Outcome::Gone => {}
        Outcome::NotOurs(Some(uid)) => r.left.push(format!("{what}: owned by uid {uid}, not by us")),
        Outcome::NotOurs(None) => r.left.push(format!("{what}: not ours to open")),
        Outcome::NotAnObject => r.left.push(format!("{what}: not a regular object")),
        Outcome::Failed(e) => r.failed.push(format!("{what}: {}", e.desc())),
    }
}

/// Unlink `name` in `dir` if it is a plain object (lstat, never followed)
/// owned by us. In a sticky directory (`/dev/shm`, the mqueue root) nobody
/// else can swap an object of ours between the check and the unlink.
fn unlink_own_entry(dir: BorrowedFd, name: &[u8]) -> Outcome {
    let Ok(c) = CString::new(name) else { return Outcome::NotAnObject };
    match fstatat(dir, c.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => return Outcome::Gone,
        Err(e) => return Outcome::Failed(e),
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFREG => return Outcome::NotAnObject,
        Ok(st) if st.st_uid != rundir::euid() => return Outcome::NotOurs(Some(st.st_uid)),
        Ok(_) => {}
    }
    match unlinkat(dir, c.as_c_str(), UnlinkatFlags::NoRemoveDir) {
        Ok(()) => Outcome::Removed,
        Err(Errno::ENOENT) => Outcome::Gone,
        Err(e) => Outcome::Failed(e),
    }
}

const MQUEUE_MAGIC: i64 = 0x1980_0202;

/// The directory holding `kind`'s objects: `/dev/shm`, or the mqueue file
/// system if it is mounted on `/dev/mqueue`.
fn object_dir(kind: ObjectKind) -> Option<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match kind {
        ObjectKind::Shm => nix::fcntl::open("/dev/shm", flags, Mode::empty()).ok(),
        ObjectKind::Mq => {
            let fd = nix::fcntl::open("/dev/mqueue", flags, Mode::empty()).ok()?;
            let fs = nix::sys::statfs::fstatfs(&fd).ok()?;
            (fs.filesystem_type().0 as i64 == MQUEUE_MAGIC).then_some(fd)
        }
        ObjectKind::Path => None,
    }
}

/// Remove a queue with no mqueue mount to look in: open it to learn its
/// owner (opening has no side effect), then unlink it by name.
fn unlink_own_queue(name: &str) -> Outcome {
    let Ok(c) = CString::new(name) else { return Outcome::NotAnObject };
    let flags = nix::mqueue::MQ_OFlag::O_RDONLY | nix::mqueue::MQ_OFlag::O_NONBLOCK | nix::mqueue::MQ_OFlag::O_CLOEXEC;
    let q = match nix::mqueue::mq_open(c.as_c_str(), flags, Mode::empty(), None) {
        Ok(q) => q,
        Err(Errno::ENOENT) => return Outcome::Gone,
        // Ours are 0600 and open to us: this one is someone else's.
        Err(Errno::EACCES) => return Outcome::NotOurs(None),
        Err(e) => return Outcome::Failed(e),
    };
    let owner = fstat(q.as_fd()).map(|st| st.st_uid);
    let _ = nix::mqueue::mq_close(q);
    match owner {
        Ok(uid) if uid != rundir::euid() => return Outcome::NotOurs(Some(uid)),
        Ok(_) => {}
        Err(e) => return Outcome::Failed(e),
    }
    match nix::mqueue::mq_unlink(c.as_c_str()) {
        Ok(()) => Outcome::Removed,
        Err(Errno::ENOENT) => Outcome::Gone,
        Err(e) => Outcome::Failed(e),
    }
}

/// Remove a dead run's named object, if it is ours.
fn remove_object(kind: ObjectKind, name: &str) -> Outcome {
    let Some(bare) = name.strip_prefix('/') else { return Outcome::NotAnObject };
    match (kind, object_dir(kind)) {
        (ObjectKind::Path, _) => Outcome::NotAnObject,
        (_, Some(dir)) => unlink_own_entry(dir.as_fd(), bare.as_bytes()),
        (ObjectKind::Mq, None) => unlink_own_queue(name),
        (ObjectKind::Shm, None) => Outcome::Failed(Errno::ENOENT),
    }
}

/// Why a manifest line must not be obeyed, if it must not. Only the run's
/// own objects may be named: `/ipcscope-<pid>-<rest>`, one path component.
fn manifest_entry(line: &str, pid: Option<u32>) -> Result<(ObjectKind, &str), &'static str> {
    let (k, name) = line.split_once(' ').ok_or("not an entry")?;
    let kind = ObjectKind::parse(k).ok_or("unknown kind")?;
    if kind == ObjectKind::Path {
        return Err("paths are never removed from a manifest");
    }
    let pid = pid.ok_or("the run dir's name carries no pid")?;
    let rest = name.strip_prefix(&format!("/ipcscope-{pid}-")).ok_or("not named for this run")?;
    if rest.is_empty() || rest.len() > 200 || rest.contains(['/', '\0']) || rest.chars().any(char::is_control) {
        return Err("not a plain object name");
    }
    Ok((kind, name))
}

/// The most a manifest may hold; ours are a few lines.
const MANIFEST_MAX: u64 = 1 << 20;

/// Obey the run dir's manifest as far as it names the run's own objects.
fn obey_manifest(run: BorrowedFd, dir: &Path, pid: Option<u32>, r: &mut SweepReport) {
    // O_NONBLOCK: a FIFO planted as the manifest must not hang us.
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let not_plain =
        |r: &mut SweepReport| r.ignored.push(format!("{}/{MANIFEST}: not a plain file of ours", dir.display()));
    let fd = match openat(run, MANIFEST, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return,
        Err(_) => return not_plain(r),
    };
    match fstat(&fd) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_uid == rundir::euid() => {}
        _ => return not_plain(r),
    }
    let mut bytes = Vec::new();
    if fs::File::from(fd).take(MANIFEST_MAX).read_to_end(&mut bytes).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines().filter(|l| !l.is_empty()) {
        match manifest_entry(line, pid) {
            Ok((kind, name)) => note(r, kind, name, remove_object(kind, name)),
            Err(why) => {
                r.ignored.push(format!("\"{}\" in {}/{MANIFEST}: {why}", shown(line.as_bytes()), dir.display()))
            }
        }
    }
}

/// The names in a directory we hold open, without `.` and `..`. Read
/// through a fresh descriptor of the same directory, never by path.
fn list_dir(dir: BorrowedFd) -> nix::Result<Vec<CString>> {
    let fd = openat(dir, c".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is an open directory descriptor we own; on success the
    // stream owns it (closedir closes it), on failure we close it.
    let d = unsafe { libc::fdopendir(raw) };
    if d.is_null() {
        let e = Errno::last();
        // SAFETY: still ours, see above.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let mut names = Vec::new();
    let result = loop {
        Errno::clear();
        // SAFETY: `d` is a valid stream used by this thread only.
        let ent = unsafe { libc::readdir(d) };
        if ent.is_null() {
            break match Errno::last_raw() {
                0 => Ok(()),
                e => Err(Errno::from_raw(e)),
            };
        }
        // SAFETY: readdir returned a valid entry whose name is NUL-terminated;
        // it is copied before the next readdir.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    };
    // SAFETY: the stream is ours and not used again.
    unsafe { libc::closedir(d) };
    result.map(|()| names)
}

/// Deeper than any run dir of ours gets.
const MAX_DEPTH: usize = 16;

/// Empty the directory `dir` (a descriptor we checked) with unlinkat
/// relative to descriptors opened O_NOFOLLOW|O_DIRECTORY: a symlink inside
/// is removed, never followed, and another file system is never entered.
fn empty_tree(dir: BorrowedFd, dev: u64, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("nested too deep".into());
    }
    let names = list_dir(dir).map_err(|e| e.desc().to_string())?;
    let mut first_err = None;
    for n in &names {
        let r = remove_entry(dir, n, dev, depth);
        if let (Err(e), None) = (r, &first_err) {
            first_err = Some(format!("{}: {e}", shown(n.to_bytes())));
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn remove_entry(dir: BorrowedFd, n: &CStr, dev: u64, depth: usize) -> Result<(), String> {
    let st = match fstatat(dir, n, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e.desc().into()),
    };
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_dir {
        if st.st_dev != dev {
            return Err("a mount point".into());
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(dir, n, flags, Mode::empty()) {
            Ok(sub) => empty_tree(sub.as_fd(), dev, depth + 1)?,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(e.desc().into()),
        }
    }
    let how = if is_dir { UnlinkatFlags::RemoveDir } else { UnlinkatFlags::NoRemoveDir };
    match unlinkat(dir, n, how) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.desc().into()),
    }
}

/// Remove the run dir `name` under `parent` (an opened, checked base): the
/// objects its manifest names that are the run's own, then the directory,
/// never following a symlink. `pid` is the run's, from the dir's name.
pub(crate) fn remove_run_at(parent: BorrowedFd, parent_path: &Path, name: &OsStr, pid: Option<u32>) -> SweepReport {
    let mut r = SweepReport::default();
    let path = parent_path.join(name);
    let run = match rundir::open_own_dir(parent, name) {
        Ok(fd) => fd,
        Err(DirProblem::Missing) => return r,
        Err(DirProblem::Unfit(why)) => {
            r.left.push(format!("{}: {why}, not a run dir of ours", path.display()));
            return r;
        }
        Err(DirProblem::Io(e)) => {
            r.failed.push(format!("{}: {}", path.display(), e.desc()));
            return r;
        }
    };
    obey_manifest(run.as_fd(), &path, pid, &mut r);
    let dev = match fstat(&run) {
        Ok(st) => st.st_dev,
        Err(e) => {
            r.failed.push(format!("{}: {}", path.display(), e.desc()));
            return r;
        }
    };
    if let Err(e) = empty_tree(run.as_fd(), dev, 0) {
        r.failed.push(format!("{}/{e}", path.display()));
        return r;
    }
    match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) => r.removed.push(format!("run {}: {}", pid.map_or("?".into(), |p| p.to_string()), path.display())),
        Err(Errno::ENOENT) => {}
        Err(e) => r.failed.push(format!("{}: {}", path.display(), e.desc())),
    }
    r
}

/// Remove the objects a run's manifest lists, then its directory. Only
/// under a base that is ours: the /tmp base must pass the same checks as
/// for a sweep. The per-user base goes too once it is empty.
pub fn remove_run(dir: &Path) -> SweepReport {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return SweepReport::default();
    };
    let (base, xdg) = rundir::base();
    let xdg_here = xdg && parent == base;
    let parent_fd = if xdg_here {
        match nix::fcntl::open(parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(_) => return SweepReport::default(),
        }
    } else {
        match rundir::open_private_dir(parent) {
            Ok(Some(fd)) => fd,
            Ok(None) => return SweepReport::default(),
            Err(line) => return SweepReport { refused: Some(line), ..Default::default() },
        }
    };
    let pid = rundir::run_pid(name, xdg_here);
    let report = remove_run_at(parent_fd.as_fd(), parent, name, pid);
    if !xdg_here {
        remove_base_if_empty(parent);
    }
    report
}

/// The per-user base goes when our last run is gone, so /tmp stays tidy.
/// `rmdir` removes only an empty directory and never follows a symlink
/// (ENOTDIR); in sticky /tmp it cannot remove another user's. A base that
/// someone makes in between is checked like any other at the next run.
fn remove_base_if_empty(base: &Path) {
    let _ = unlinkat(nix::fcntl::AT_FDCWD, base, UnlinkatFlags::RemoveDir);
}

/// Is `pid` a live run's supervisor? Its run dir's owner record names it
/// by pid and start time, so a reused pid counts as dead and a session run
/// by a program not called ipcscope (a test binary) as alive. A run dir
/// without the record (an older version's) falls back to the program's
/// name.
fn run_alive(pid: u32) -> bool {
    if let Some(recorded) = rundir::recorded_start(pid) {
        return rundir::start_time(pid) == Some(recorded) && crate::monitor::procfs::alive(pid as i32);
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(c) => {
            let argv0 = c.split(|&b| b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(argv0).contains("ipcscope") && crate::monitor::procfs::alive(pid as i32)
        }
        Err(_) => false,
    }
}

fn dead_run(pid: u32) -> bool {
    pid != std::process::id() && !run_alive(pid)
}

/// Remove what runs whose supervisor is gone left behind: their run dirs
/// (and what their manifests name of their own), and objects in
/// `/dev/shm` and the mqueue file system named for a dead run. Never a live
/// run's, never another user's, and nothing at all under a base that is
/// not a private directory of ours.
pub fn sweep_stale() -> SweepReport {
    let mut r = SweepReport::default();
    let base = match rundir::open_base() {
        Ok(b) => b,
        Err(line) => {
            r.refused = Some(line);
            return r;
        }
    };
    if let Some(base) = base {
        let mut runs: Vec<(u32, PathBuf)> = Vec::new();
        for n in list_dir(base.fd.as_fd()).unwrap_or_default() {
            let name = OsStr::from_bytes(n.to_bytes());
            if let Some(pid) = rundir::run_pid(name, base.xdg) {
                runs.push((pid, PathBuf::from(name)));
            }
        }
        for (pid, name) in runs {
            if dead_run(pid) {
                r.merge(remove_run_at(base.fd.as_fd(), &base.path, name.as_os_str(), Some(pid)));
            }
        }
    }
    // Objects are named /ipcscope-<pid>-…; any whose run is dead goes,
    // even if the manifest was lost — if it is ours.
    for kind in [ObjectKind::Shm, ObjectKind::Mq] {
        let Some(dir) = object_dir(kind) else { continue };
        for name in list_dir(dir.as_fd()).unwrap_or_default() {
            let name = name.to_bytes();
            let Some(rest) = name.strip_prefix(b"ipcscope-") else { continue };
            let Some(dash) = rest.iter().position(|&b| b == b'-') else { continue };
            let Some(pid) = rundir::run_pid(OsStr::from_bytes(&rest[..dash]), false) else { continue };
            if dead_run(pid) {
                note(&mut r, kind, &format!("/{}", shown(name)), unlink_own_entry(dir.as_fd(), name));
            }
        }
    }
    r
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
    // Our own workers; one already gone is ESRCH, fine.
    for &grp in &e.groups {
        let _ = killpg(Pid::from_raw(grp), Signal::SIGKILL);
    }
    for &p in &e.pids {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
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
    let _ = nix::sys::prctl::set_name(c"ipcs-janitor");
    let Some(pidfd) = crate::monitor::procfs::pidfd_open(supervisor) else {
        remove_run(dir);
        return 0;
    };
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // Blocks until the supervisor exits (the pidfd turns readable).
        match poll(&mut [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)], PollTimeout::NONE) {
            Ok(n) if n > 0 => break,
            Err(e) if e != Errno::EINTR => break,
            _ => {}
        }
    }
    // The run dir still being there means the supervisor did not get to
    // clean up: it was killed. Give the terminal back first, before the
    // shell that regains it prints its prompt.
    if fs::symlink_metadata(dir).is_err() {
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
    // SAFETY: SIG_IGN installs no handler code; isatty/tcgetattr/tcsetattr
    // only read or write the termios struct we own (zeroed termios is a
    // valid value) and act on fd 1, whatever it is (errors are ignored).
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
    let _ = nix::unistd::write(std::io::stdout(), seq);
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
                // A process of the dead run.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_entry_must_name_its_own_runs_object() {
        let ok = |l: &str| manifest_entry(l, Some(42)).is_ok();
        assert!(ok("shm /ipcscope-42-0a1b2c3d-shm"));
        assert!(ok("mq /ipcscope-42-0a1b2c3d-mq"));
        for bad in [
            "path /home/you/file",
            "path /tmp/ipcscope-0/42/fifo",
            "shm /ipcscope-43-0a1b2c3d-shm",
            "shm /ipcscope-420-x",
            "shm /ipcscope-4-2-x",
            "shm /../../etc/passwd",
            "shm /ipcscope-42-../../etc/passwd",
            "shm /ipcscope-42-",
            "shm ipcscope-42-x",
            "shm /ipcscope-42-a\u{1b}[2J",
            "sem /ipcscope-42-x",
            "shm",
        ] {
            assert!(!ok(bad), "obeyed {bad:?}");
        }
        assert!(manifest_entry("shm /ipcscope-42-x", None).is_err(), "a dir with no pid names nothing");
    }

    #[test]
    fn planted_names_are_shown_escaped() {
        assert_eq!(shown(b"ipcscope-1-\x1b[2J"), "ipcscope-1-\\u{1b}[2J");
        assert_eq!(shown(b"plain-name"), "plain-name");
    }
}
