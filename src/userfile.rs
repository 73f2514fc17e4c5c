//! Files named on the command line (a lesson, a recording to replay, a
//! recording to write). Only regular files are accepted: a FIFO would block
//! `open` forever and `/dev/zero` never ends. Every open is non-blocking and
//! checked with `fstat` on the descriptor itself, so a path swapped after
//! the check cannot slip a FIFO or a device in.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{anyhow, bail, Result};

fn what(ft: FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

fn refuse(path: &Path, ft: FileType) -> anyhow::Error {
    anyhow!("{} is {}, not a regular file", path.display(), what(ft))
}

fn io_error(path: &Path, doing: &str, e: io::Error) -> anyhow::Error {
    match e.raw_os_error() {
        // O_NOFOLLOW on a symlink.
        Some(libc::ELOOP) => anyhow!("{} is a symbolic link; give the file's real path", path.display()),
        // O_WRONLY|O_NONBLOCK on a FIFO nobody reads.
        Some(libc::ENXIO) => anyhow!("{} is a FIFO or device, not a regular file", path.display()),
        Some(code) => anyhow!("cannot {doing} {}: {}", path.display(), nix::errno::Errno::from_raw(code).desc()),
        None => anyhow!("cannot {doing} {}: {e}", path.display()),
    }
}

/// Open `path` for reading, following symlinks, refusing anything that is
/// not a regular file. Never blocks (`O_NONBLOCK`: a FIFO with no writer
/// opens at once, and is then refused).
pub fn open_regular(path: &Path) -> Result<File> {
    // Refuse by name first, so a device is not even opened.
    match std::fs::metadata(path) {
        Ok(m) if !m.file_type().is_file() => return Err(refuse(path, m.file_type())),
        Ok(_) => {}
        Err(e) => return Err(io_error(path, "read", e)),
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, "read", e))?;
    let ft = f.metadata().map_err(|e| io_error(path, "read", e))?.file_type();
    if !ft.is_file() {
        return Err(refuse(path, ft));
    }
    Ok(f)
}

/// Read a whole regular file of at most `cap` bytes as UTF-8 text.
pub fn read_text(path: &Path, cap: u64) -> Result<String> {
    let f = open_regular(path)?;
    let mut buf = Vec::new();
    // One byte over the cap tells "too large" from "exactly the cap".
    f.take(cap + 1).read_to_end(&mut buf).map_err(|e| io_error(path, "read", e))?;
    if buf.len() as u64 > cap {
        bail!("{} is larger than {} KiB; refused", path.display(), cap >> 10);
    }
    String::from_utf8(buf).map_err(|_| anyhow!("{} is not UTF-8 text", path.display()))
}

/// Refuse a path that exists and is not a regular file (a FIFO, a device, a
/// directory, a symlink), before anything is started. A missing path is fine.
pub fn check_writable(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            bail!("{} is a symbolic link; give the file's real path", path.display())
        }
        Ok(m) if !m.file_type().is_file() => Err(refuse(path, m.file_type())),
        _ => Ok(()),
    }
}

/// Create `path` (or empty an existing regular file) for writing. Never
/// follows a symlink, never blocks on a FIFO, never truncates anything but
/// a regular file.
pub fn create_regular(path: &Path) -> Result<File> {
    check_writable(path)?;
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, "write", e))?;
    let ft = f.metadata().map_err(|e| io_error(path, "write", e))?.file_type();
    if !ft.is_file() {
        return Err(refuse(path, ft));
    }
    // Truncate only now that it is known to be a regular file.
    f.set_len(0).map_err(|e| io_error(path, "write", e))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused() {
        let e = open_regular(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");
        let e = read_text(Path::new("/"), 10).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        let e = create_regular(Path::new("/dev/null")).unwrap_err().to_string();
        assert!(e.contains("character device"), "{e}");
    }

    #[test]
    fn text_over_the_cap_is_refused() {
        let p = std::env::temp_dir().join(format!("ipcscope-userfile-{}", std::process::id()));
        std::fs::write(&p, "0123456789").unwrap();
        assert_eq!(read_text(&p, 10).unwrap(), "0123456789");
        let e = read_text(&p, 9).unwrap_err().to_string();
        std::fs::remove_file(&p).unwrap();
        assert!(e.contains("larger than"), "{e}");
    }
}
