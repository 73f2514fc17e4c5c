//! Recording observed snapshots to a file and reading them back.
//!
//! The format is JSON lines: a header line naming the format and its
//! version, then one `Snapshot` per line (each carries its own `t_ms`).
//! Replay needs no Linux IPC at all, so a prepared demo runs anywhere.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::snapshot::{Snapshot, SNAPSHOT_VERSION};

pub const FORMAT: &str = "ipcscope-recording";
/// A recording larger than this is refused rather than read into memory.
pub const MAX_BYTES: u64 = 256 << 20;
const MAX_LINE: usize = 16 << 20;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub ipcscope: String,
}

pub struct Recorder {
    out: BufWriter<File>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Recorder> {
        let f = File::create(path).with_context(|| format!("cannot write recording {}", path.display()))?;
        let mut out = BufWriter::new(f);
        let h = Header { format: FORMAT.into(), version: SNAPSHOT_VERSION, ipcscope: env!("CARGO_PKG_VERSION").into() };
        serde_json::to_writer(&mut out, &h)?;
        out.write_all(b"\n")?;
        Ok(Recorder { out })
    }

    pub fn write(&mut self, s: &Snapshot) -> Result<()> {
        serde_json::to_writer(&mut self.out, s)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// Read a whole recording. A foreign, truncated, newer or oversized file
/// is refused with a message that says which, and where.
pub fn load(path: &Path) -> Result<Vec<Snapshot>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata()?.len();
    if len > MAX_BYTES {
        bail!("{} is {} MiB; recordings over {} MiB are refused", path.display(), len >> 20, MAX_BYTES >> 20);
    }
    let name = path.display();
    let mut reader = BufReader::new(f.take(MAX_BYTES));
    let mut line = String::new();
    let mut read_line = |line: &mut String, n: usize| -> Result<bool> {
        line.clear();
        let got = reader.by_ref().take(MAX_LINE as u64 + 1).read_line(line);
        let got = got.with_context(|| format!("{name}:{n}: not text (a recording is JSON lines)"))?;
        if line.len() > MAX_LINE {
            bail!("{name}:{n}: line longer than {} MiB", MAX_LINE >> 20);
        }
        Ok(got > 0)
    };
    if !read_line(&mut line, 1)? {
        bail!("{name} is empty: not an ipcscope recording");
    }
    let h: Header = serde_json::from_str(line.trim_end())
        .map_err(|_| anyhow::anyhow!("{name}:1: not an ipcscope recording (no {FORMAT:?} header)"))?;
    if h.format != FORMAT {
        bail!("{name}:1: format {:?}, expected {FORMAT:?}", h.format);
    }
    if h.version != SNAPSHOT_VERSION {
        bail!("{name}:1: recording version {} (this ipcscope reads version {SNAPSHOT_VERSION})", h.version);
    }
    let mut out = Vec::new();
    let mut n = 1;
    loop {
        n += 1;
        if !read_line(&mut line, n)? {
            break;
        }
        if !line.ends_with('\n') {
            bail!("{name}:{n}: truncated (the last line is incomplete)");
        }
        let s: Snapshot =
            serde_json::from_str(line.trim_end()).map_err(|e| anyhow::anyhow!("{name}:{n}: not a snapshot: {e}"))?;
        out.push(s);
    }
    if out.is_empty() {
        bail!("{name}: a header but no snapshots");
    }
    Ok(out)
}
