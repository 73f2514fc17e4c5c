//! The run's private directory: FIFOs, sockets, worker logs and the
//! manifest of named objects live here, mode 0700.
//!
//! `$XDG_RUNTIME_DIR/ipcscope-<pid>` when that is set, else
//! `/tmp/ipcscope-<uid>/<pid>`.
//!
//! Nothing found on disk is trusted: `/tmp/ipcscope-<uid>` may have been made
//! by another user (or be a symlink to one of our own directories), so it is
//! opened without following a symlink and checked through its descriptor
//! before anything in it is read, created or removed.

use std::ffi::OsStr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fchmod, fstat, fstatat, FileStat, Mode};

pub const MANIFEST: &str = "objects";

/// Where run directories live for this user, and how a run's directory is
/// named from its pid.
pub fn base() -> (PathBuf, bool) {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if !x.is_empty() && Path::new(&x).is_dir() => (PathBuf::from(x), true),
        _ => (PathBuf::from(format!("/tmp/ipcscope-{}", nix::unistd::getuid())), false),
    }
}

pub fn dir_for(pid: u32) -> PathBuf {
    match base() {
        (b, true) => b.join(format!("ipcscope-{pid}")),
        (b, false) => b.join(pid.to_string()),
    }
}

/// The run's pid from its directory's name (`<pid>` under the /tmp base,
/// `ipcscope-<pid>` under `$XDG_RUNTIME_DIR`). Only the canonical spelling
/// counts: `+5` or `007` is not a run dir.
pub fn run_pid(name: &OsStr, xdg: bool) -> Option<u32> {
    let b = name.as_bytes();
    let digits = if xdg { b.strip_prefix(b"ipcscope-")? } else { b };
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A file in each run dir: the supervisor's start time (clock ticks after
/// boot, field 22 of `/proc/PID/stat`). With the pid it names one process
/// for good: a pid reused later has another start time. It lets a sweep
/// tell a live run from a dead one whatever the supervisor's program is
/// called (a test binary runs sessions too).
pub const OWNER: &str = "owner";

/// When `pid` started (clock ticks after boot), if it is alive.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after `comm`, which may itself hold spaces and `)`.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The start time a run dir's `owner` file records, if it has a readable
/// one (read without following a symlink; at most a line).
pub fn recorded_start(pid: u32) -> Option<u64> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(dir_for(pid).join(OWNER)).ok()?;
    let mut text = String::new();
    f.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The uid that owns what we create.
pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

const O_DIR: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

fn file_type(st: &FileStat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// What makes `st` unfit to be trusted as a directory of ours, if anything.
fn unfit(st: &FileStat) -> Option<String> {
    match file_type(st) {
        libc::S_IFLNK => return Some("a symlink".into()),
        libc::S_IFDIR => {}
        _ => return Some("not a directory".into()),
    }
    if st.st_uid != euid() {
        return Some(format!("owned by uid {}", st.st_uid));
    }
    None
}

/// Why a directory could not be opened as one of ours.
#[derive(Debug)]
pub(crate) enum DirProblem {
    Missing,
    /// Exists but must not be trusted: a symlink, not a directory, another user's.
    Unfit(String),
    Io(Errno),
}

impl std::fmt::Display for DirProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            DirProblem::Missing => f.write_str("gone"),
            DirProblem::Unfit(why) => f.write_str(why),
            DirProblem::Io(e) => f.write_str(e.desc()),
        }
    }
}

/// Open `name` under `parent` as a directory without following a symlink,
/// and check through the descriptor that it is a real directory we own. The
/// lstat is only there to say what is wrong.
pub(crate) fn open_own_dir<P: ?Sized + nix::NixPath>(parent: BorrowedFd, name: &P) -> Result<OwnedFd, DirProblem> {
    let describe = |e: Errno| match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(Errno::ENOENT) => DirProblem::Missing,
        Ok(st) => unfit(&st).map(DirProblem::Unfit).unwrap_or(DirProblem::Io(e)),
        Err(_) => DirProblem::Io(e),
    };
    let fd = match openat(parent, name, O_DIR, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(DirProblem::Missing),
        Err(e) => return Err(describe(e)),
    };
    let st = fstat(&fd).map_err(DirProblem::Io)?;
    match unfit(&st) {
        Some(why) => Err(DirProblem::Unfit(why)),
        None => Ok(fd),
    }
}

/// The per-user base directory, opened and checked.
pub(crate) struct Base {
    pub fd: OwnedFd,
    pub path: PathBuf,
    pub xdg: bool,
}

/// The one line a user gets when the /tmp base is not theirs to use.
pub(crate) fn refusal(path: &Path, why: &str) -> String {
    format!("{} is not a private directory of yours ({why}); remove it or set XDG_RUNTIME_DIR to one", path.display())
}

/// Open the base for reading. `Ok(None)`: there is none yet. `Err`: the one
/// line saying why it must not be used; then nothing under it may be touched.
pub(crate) fn open_base() -> Result<Option<Base>, String> {
    let (path, xdg) = base();
    if xdg {
        // The user's own runtime dir, named by their environment: followed
        // like any path they give us. Each run dir in it is checked.
        return match nix::fcntl::open(&path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => Ok(Some(Base { fd, path, xdg })),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(format!("cannot open {}: {}", path.display(), e.desc())),
        };
    }
    Ok(open_private_dir(&path)?.map(|fd| Base { fd, path, xdg }))
}

/// Open the /tmp base: a real directory of ours (never a symlink) that
/// nobody else can write to, else the one line refusing it. One others may
/// read but not write (made under a loose umask) is made 0700 again through
/// its descriptor; one others could write to is refused, as anything could
/// have been planted in it.
pub(crate) fn open_private_dir(path: &Path) -> Result<Option<OwnedFd>, String> {
    let fd = match open_own_dir(AT_FDCWD, path) {
        Ok(fd) => fd,
        Err(DirProblem::Missing) => return Ok(None),
        Err(DirProblem::Unfit(why)) => return Err(refusal(path, &why)),
        Err(DirProblem::Io(e)) => return Err(refusal(path, e.desc())),
    };
    let mode = fstat(&fd).map_err(|e| refusal(path, e.desc()))?.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refusal(path, &format!("mode {mode:04o}")));
    }
    if mode != 0o700 {
        fchmod(&fd, Mode::S_IRWXU).map_err(|e| refusal(path, e.desc()))?;
    }
    Ok(Some(fd))
}

/// Open the base for a new run, making `/tmp/ipcscope-<uid>` if it is not there.
pub(super) fn open_or_make_base() -> Result<Base> {
    let (path, xdg) = base();
    if !xdg {
        match nix::unistd::mkdir(&path, Mode::S_IRWXU) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => bail!("cannot create {} (is /tmp writable?): {}", path.display(), e.desc()),
        }
    }
    match open_base() {
        Ok(Some(b)) => Ok(b),
        Ok(None) => bail!("{} vanished while it was being set up", path.display()),
        Err(line) => Err(anyhow!(line)),
    }
}

/// The per-user base, made if need be and checked, for other private
/// directories of ours (the bench's).
pub fn private_base() -> Result<PathBuf> {
    Ok(open_or_make_base()?.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_run_dir_names_carry_a_pid() {
        let pid = |s: &str, xdg| run_pid(OsStr::new(s), xdg);
        assert_eq!(pid("4120", false), Some(4120));
        assert_eq!(pid("ipcscope-4120", true), Some(4120));
        for bad in ["+4120", "04120", "0", "", "4120 ", "bench-4120", "99999999999", "ipcscope-4120"] {
            assert_eq!(pid(bad, false), None, "{bad:?}");
        }
        assert_eq!(pid("4120", true), None);
    }
}
