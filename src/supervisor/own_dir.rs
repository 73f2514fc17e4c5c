//! This run's own directory: made (private, with an empty manifest),
//! recorded into, removed. It stands on `rundir` (where directories are
//! and how they are opened safely) and `cleanup` (how a run is removed).

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};

use super::cleanup::{self, ObjectKind};
use super::rundir::{dir_for, open_or_make_base, open_own_dir, start_time, MANIFEST, OWNER};

pub struct RunDir {
    path: PathBuf,
    /// The run dir itself, checked when it was made; the manifest is
    /// written through it.
    fd: OwnedFd,
    token: String,
    removed: bool,
}

impl RunDir {
    pub fn create() -> Result<RunDir> {
        let pid = std::process::id();
        let path = dir_for(pid);
        let name = path.file_name().expect("a run dir has a name").to_owned();
        // Another run of ours may remove the empty base between our making
        // it and our mkdirat in it (ENOENT): make it again, a few times.
        let mut tries = 0;
        let base = loop {
            let base = open_or_make_base()?;
            // A leftover of an earlier process with our pid: removed through
            // descriptors, never following a symlink.
            let _ = cleanup::remove_run_at(base.fd.as_fd(), &base.path, &name, Some(pid));
            match mkdirat(&base.fd, name.as_os_str(), Mode::S_IRWXU) {
                Ok(()) => break base,
                Err(Errno::ENOENT) if tries < 5 => tries += 1,
                Err(e) => bail!("cannot create the run directory {}: {}", path.display(), e.desc()),
            }
        };
        let fd = match open_own_dir(base.fd.as_fd(), name.as_os_str()) {
            Ok(fd) => fd,
            Err(e) => bail!("cannot use the run directory {}: {e}", path.display()),
        };
        // We just made it: a umask may have left it other than 0700.
        fchmod(&fd, Mode::S_IRWXU).with_context(|| format!("cannot make {} private", path.display()))?;
        let mut raw = [0u8; 4];
        getrandom::fill(&mut raw).map_err(|e| anyhow!("no randomness: {e}"))?;
        let token = raw.iter().map(|b| format!("{b:02x}")).collect();
        let manifest = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        openat(&fd, MANIFEST, manifest, Mode::S_IRUSR | Mode::S_IWUSR).context("cannot write the run's manifest")?;
        // Who owns the run, for good: a sweep keeps the dir while this
        // process (this pid with this start time) lives.
        if let Some(started) = start_time(pid) {
            let owner = openat(&fd, OWNER, manifest, Mode::S_IRUSR | Mode::S_IWUSR)
                .context("cannot write the run's owner record")?;
            writeln!(fs::File::from(owner), "{started}").context("cannot write the run's owner record")?;
        }
        Ok(RunDir { path, fd, token, removed: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Note a named object in the manifest, so a later sweep can remove it
    /// even if we die without cleaning up.
    pub fn record(&self, kind: ObjectKind, name: &str) -> Result<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut f = fs::File::from(openat(&self.fd, MANIFEST, flags, Mode::empty())?);
        writeln!(f, "{} {}", kind.word(), name)?;
        Ok(())
    }

    pub fn remove_all(&mut self) {
        if self.removed {
            return;
        }
        cleanup::remove_run(&self.path);
        self.removed = true;
    }
}
