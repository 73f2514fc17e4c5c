//! The run's private directory: FIFOs, sockets, worker logs and the
//! manifest of named objects live here, mode 0700.
//!
//! `$XDG_RUNTIME_DIR/ipcscope-<pid>` when that is set, else
//! `/tmp/ipcscope-<uid>/<pid>`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::cleanup::ObjectKind;

pub const MANIFEST: &str = "objects";

pub struct RunDir {
    path: PathBuf,
    token: String,
    removed: bool,
}

/// Where run directories live for this user, and how a run's directory is
/// named from its pid.
pub fn base() -> (PathBuf, bool) {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if !x.is_empty() && Path::new(&x).is_dir() => (PathBuf::from(x), true),
        // SAFETY: getuid cannot fail.
        _ => (PathBuf::from(format!("/tmp/ipcscope-{}", unsafe { libc::getuid() })), false),
    }
}

pub fn dir_for(pid: u32) -> PathBuf {
    match base() {
        (b, true) => b.join(format!("ipcscope-{pid}")),
        (b, false) => b.join(pid.to_string()),
    }
}

/// Make sure a directory is ours and private: another user could have made
/// `/tmp/ipcscope-<uid>` first to watch or spoof our objects.
fn check_private(p: &Path) -> Result<()> {
    let m = fs::symlink_metadata(p).with_context(|| format!("cannot inspect {}", p.display()))?;
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if !m.is_dir() || m.uid() != uid {
        bail!("{} is not a directory owned by us (uid {uid}); refusing to use it", p.display());
    }
    if m.mode() & 0o077 != 0 {
        fs::set_permissions(p, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl RunDir {
    pub fn create() -> Result<RunDir> {
        let path = dir_for(std::process::id());
        let (base, xdg) = base();
        if !xdg {
            match fs::DirBuilder::new().mode(0o700).create(&base) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {} (is /tmp writable?)", base.display()))
                }
            }
            check_private(&base)?;
        }
        if path.exists() {
            // A leftover of an earlier process with our pid.
            let _ = fs::remove_dir_all(&path);
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create the run directory {}", path.display()))?;
        check_private(&path)?;
        let mut raw = [0u8; 4];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let token = raw.iter().map(|b| format!("{b:02x}")).collect();
        let d = RunDir { path, token, removed: false };
        fs::File::create(d.path.join(MANIFEST)).context("cannot write the run's manifest")?;
        Ok(d)
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
        let mut f = fs::OpenOptions::new().append(true).open(self.path.join(MANIFEST))?;
        writeln!(f, "{} {}", kind.word(), name)?;
        Ok(())
    }

    pub fn remove_all(&mut self) {
        if self.removed {
            return;
        }
        super::cleanup::remove_run(&self.path);
        self.removed = true;
    }
}
