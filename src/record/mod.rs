//! Recording observed snapshots to a file and reading them back.
//!
//! Version 2 (written since the recordings of a whole lecture had to fit):
//!
//! ```text
//! {"format":"ipcscope-recording","version":2,…}\n      header line, plain JSON
//! block*                                                until the end of the file
//! block = "IPCB" clen:u32 raw_len:u32 count:u32 first_pt:u64 last_pt:u64 crc32:u32   (36 bytes, little-endian)
//!         then clen bytes: one zstd frame of raw_len bytes of JSON lines:
//!         a keyframe (the full snapshot), then count-1 patches (`delta`),
//!         each against the snapshot before it.
//! ```
//!
//! A block covers about `KEYFRAME_MS` of the run and decodes on its own, so
//! a replay keeps only the block index (36 bytes a block) and the block it
//! shows: memory does not grow with the file. `pt` is the replay timeline:
//! the snapshots' own `t_ms`, except that a run restarted within one
//! recording (a lesson picked in the TUI starts its clock at 0 again) is
//! placed after what came before.
//!
//! Version 1 (JSON lines, one full snapshot a line) is still read. Replay
//! needs no Linux IPC at all, so a prepared demo runs anywhere.

pub mod delta;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::snapshot::{Snapshot, SNAPSHOT_VERSION};

pub const FORMAT: &str = "ipcscope-recording";
/// The recording format this ipcscope writes (and the newest it reads).
pub const VERSION: u32 = 2;
/// A new block (starting with a full snapshot) about this often.
pub const KEYFRAME_MS: u64 = 10_000;
/// zstd level: a 90-minute lecture of all seven mechanisms stays well under
/// 100 MB, and compressing costs about a millisecond a sample.
const LEVEL: i32 = 12;

const MAGIC: &[u8; 4] = b"IPCB";
const BLOCK_HEADER: usize = 36;
/// The recorder closes a block at this many snapshots (10 s at 100 Hz) …
const WRITE_MAX_COUNT: u32 = 1000;
/// … or at this much JSON.
const WRITE_SOFT_RAW: u64 = 16 << 20;
/// The reader refuses blocks claiming more than these.
pub const MAX_BLOCK_COUNT: u32 = 4096;
pub const MAX_BLOCK_RAW: u32 = 64 << 20;
const MAX_BLOCK_COMPRESSED: u32 = 64 << 20;
/// The decoded snapshots of one block, in `delta::weight` units.
const MAX_BLOCK_DECODED: usize = 512 << 20;
const MAX_HEADER: u64 = 4096;
/// Version 1: the longest line read, and snapshots per replay block.
const V1_MAX_LINE: usize = 16 << 20;
const V1_BLOCK: u32 = 100;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub ipcscope: String,
    /// `SNAPSHOT_VERSION` of the snapshots inside (version 2 on).
    #[serde(default)]
    pub snapshot: u32,
    #[serde(default)]
    pub compression: String,
}

/// The replay timeline after `prev` (t_ms, pt) for a snapshot taken at `t`.
fn next_pt(prev: Option<(u64, u64)>, t: u64) -> u64 {
    match prev {
        None => t,
        Some((pt_t, pt)) if t >= pt_t => pt + (t - pt_t),
        // The clock went back (a new run): straight after what came before.
        Some((_, pt)) => pt + 1,
    }
}

/// Writes a version 2 recording: each snapshot as a patch against the one
/// before, compressed as it comes, a block written every few seconds.
pub struct Recorder {
    out: Option<File>,
    name: String,
    enc: zstd::stream::write::Encoder<'static, Vec<u8>>,
    prev: Option<Value>,
    /// (t_ms, pt) of the last snapshot written.
    last: Option<(u64, u64)>,
    count: u32,
    raw: u64,
    first_pt: u64,
}

impl Recorder {
    /// Create (or empty) a regular file at `path` and write the header. A
    /// FIFO, device, directory or symlink is refused, never opened for
    /// writing or blocked on.
    pub fn create(path: &Path) -> Result<Recorder> {
        let mut out = crate::userfile::create_regular(path)?;
        let name = path.display().to_string();
        let h = Header {
            format: FORMAT.into(),
            version: VERSION,
            ipcscope: env!("CARGO_PKG_VERSION").into(),
            snapshot: SNAPSHOT_VERSION,
            compression: "zstd".into(),
        };
        let mut line = serde_json::to_vec(&h)?;
        line.push(b'\n');
        out.write_all(&line).with_context(|| format!("cannot write recording {name}"))?;
        Ok(Recorder { out: Some(out), name, enc: encoder()?, prev: None, last: None, count: 0, raw: 0, first_pt: 0 })
    }

    pub fn write(&mut self, s: &Snapshot) -> Result<()> {
        let v = serde_json::to_value(s)?;
        let pt = next_pt(self.last, s.t_ms);
        if self.count > 0
            && (pt - self.first_pt >= KEYFRAME_MS || self.count >= WRITE_MAX_COUNT || self.raw >= WRITE_SOFT_RAW)
        {
            self.flush_block()?;
        }
        let mut line = match &self.prev {
            Some(prev) if self.count > 0 => serde_json::to_vec(&delta::diff(prev, &v))?,
            _ => serde_json::to_vec(&v)?,
        };
        line.push(b'\n');
        if self.raw + line.len() as u64 > MAX_BLOCK_RAW as u64 {
            self.flush_block()?;
            if self.raw + line.len() as u64 > MAX_BLOCK_RAW as u64 {
                bail!("a snapshot of {} MiB is too large to record", line.len() >> 20);
            }
            line = serde_json::to_vec(&v)?;
            line.push(b'\n');
        }
        if self.count == 0 {
            self.first_pt = pt;
        }
        self.enc.write_all(&line)?;
        self.raw += line.len() as u64;
        self.count += 1;
        self.last = Some((s.t_ms, pt));
        self.prev = Some(v);
        Ok(())
    }

    /// Compress and write the block being filled, if any.
    fn flush_block(&mut self) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let Some(out) = self.out.as_mut() else { return Ok(()) };
        let data = std::mem::replace(&mut self.enc, encoder()?).finish()?;
        let last_pt = self.last.map_or(0, |l| l.1);
        let mut buf = Vec::with_capacity(BLOCK_HEADER + data.len());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(self.raw as u32).to_le_bytes());
        buf.extend_from_slice(&self.count.to_le_bytes());
        buf.extend_from_slice(&self.first_pt.to_le_bytes());
        buf.extend_from_slice(&last_pt.to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&data).to_le_bytes());
        buf.extend_from_slice(&data);
        self.count = 0;
        self.raw = 0;
        out.write_all(&buf).with_context(|| format!("cannot write recording {}", self.name))
    }

    /// Write what is left. Dropping a recorder does too, but says nothing
    /// if it fails.
    pub fn finish(mut self) -> Result<()> {
        self.flush_block()?;
        self.out = None;
        Ok(())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.flush_block();
    }
}

fn encoder() -> Result<zstd::stream::write::Encoder<'static, Vec<u8>>> {
    Ok(zstd::stream::write::Encoder::new(Vec::new(), LEVEL)?)
}

/// Where one block of a recording is and what it covers.
#[derive(Debug, Clone)]
pub struct Block {
    /// Version 2: where the compressed bytes start (after the block
    /// header). Version 1: where its first line starts.
    offset: u64,
    /// Version 2: the block header's offset, for messages. Version 1: the
    /// first line's number.
    at: u64,
    clen: u32,
    raw_len: u32,
    pub count: u32,
    pub first_pt: u64,
    pub last_pt: u64,
    crc: u32,
    /// Snapshots in the blocks before this one.
    pub first_index: usize,
}

/// An open recording: its header and block index. Snapshots are read a
/// block at a time.
pub struct Recording {
    file: File,
    name: String,
    pub header: Header,
    blocks: Vec<Block>,
}

impl Recording {
    /// Open a recording and index its blocks. A foreign, truncated or newer
    /// file, or anything that is not a regular file, is refused with a
    /// line saying which, and where.
    pub fn open(path: &Path) -> Result<Recording> {
        let file = crate::userfile::open_regular(path)?;
        let name = path.display().to_string();
        let len = file.metadata()?.len();
        let mut r = BufReader::new(&file);
        let mut line = Vec::new();
        (&mut r).take(MAX_HEADER).read_until(b'\n', &mut line).with_context(|| format!("cannot read {name}"))?;
        if line.is_empty() {
            bail!("{name} is empty: not an ipcscope recording");
        }
        let not_ours = || anyhow!("{name}:1: not an ipcscope recording (no {FORMAT:?} header)");
        if line.last() != Some(&b'\n') {
            return Err(not_ours());
        }
        let h: Header = serde_json::from_slice(&line).map_err(|_| not_ours())?;
        if h.format != FORMAT {
            bail!("{name}:1: format {:?}, expected {FORMAT:?}", h.format);
        }
        if h.version > VERSION || h.version == 0 {
            bail!("{name}:1: recording version {} (this ipcscope reads versions 1 to {VERSION})", h.version);
        }
        let header_len = line.len() as u64;
        drop(r);
        let blocks = if h.version == 1 {
            index_v1(&file, &name, header_len)?
        } else {
            if h.snapshot > SNAPSHOT_VERSION {
                bail!("{name}:1: snapshot version {} (this ipcscope reads version {SNAPSHOT_VERSION})", h.snapshot);
            }
            if h.compression != "zstd" {
                bail!("{name}:1: compression {:?}, expected \"zstd\"", h.compression);
            }
            index_v2(&file, &name, header_len, len)?
        };
        if blocks.is_empty() {
            bail!("{name}: a header but no snapshots");
        }
        Ok(Recording { file, name, header: h, blocks })
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// How many snapshots, in all.
    pub fn len(&self) -> usize {
        self.blocks.last().map_or(0, |b| b.first_index + b.count as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The block that shows timeline position `pt`: the last one starting
    /// at or before it (the first if none does).
    pub fn block_at(&self, pt: u64) -> usize {
        self.blocks.partition_point(|b| b.first_pt <= pt).saturating_sub(1)
    }

    /// Decode block `n`: each snapshot with its timeline position.
    pub fn read_block(&mut self, n: usize) -> Result<Vec<(u64, Snapshot)>> {
        let b = self.blocks.get(n).ok_or_else(|| anyhow!("{}: no block {n}", self.name))?.clone();
        if self.header.version == 1 {
            return self.read_block_v1(&b);
        }
        let name = &self.name;
        let fail = |what: String| anyhow!("{name}: block {n} at byte {}: {what}", b.at);
        self.file.seek(SeekFrom::Start(b.offset))?;
        let mut data = vec![0u8; b.clen as usize];
        self.file.read_exact(&mut data).map_err(|e| fail(format!("cannot read: {e}")))?;
        if crc32fast::hash(&data) != b.crc {
            return Err(fail("damaged (checksum mismatch)".into()));
        }
        let raw =
            zstd::bulk::decompress(&data, b.raw_len as usize).map_err(|e| fail(format!("does not decompress: {e}")))?;
        drop(data);
        if raw.len() != b.raw_len as usize {
            return Err(fail(format!("{} bytes decompressed, the header says {}", raw.len(), b.raw_len)));
        }
        let Some(body) = raw.strip_suffix(b"\n") else { return Err(fail("does not end with a newline".into())) };
        let mut budget = delta::Budget(MAX_BLOCK_DECODED);
        let mut out = Vec::with_capacity(b.count as usize);
        let mut cur = Value::Null;
        let mut last: Option<(u64, u64)> = None;
        for (i, line) in body.split(|&c| c == b'\n').enumerate() {
            if i >= b.count as usize {
                return Err(fail(format!("more than the {} snapshots its header says", b.count)));
            }
            let p: Value =
                serde_json::from_slice(line).map_err(|e| fail(format!("snapshot {}: not JSON: {e}", i + 1)))?;
            if i == 0 {
                cur = p;
            } else {
                delta::apply(&mut cur, &p, &mut budget).map_err(|e| fail(format!("snapshot {}: {e}", i + 1)))?;
            }
            budget.charge(delta::weight(&cur)).map_err(|e| fail(format!("snapshot {}: {e}", i + 1)))?;
            let s: Snapshot = serde_json::from_value(cur.clone())
                .map_err(|e| fail(format!("snapshot {}: not a snapshot: {e}", i + 1)))?;
            let pt = if i == 0 { b.first_pt } else { next_pt(last, s.t_ms) };
            last = Some((s.t_ms, pt));
            out.push((pt, s));
        }
        if out.len() != b.count as usize {
            return Err(fail(format!("{} snapshots, the header says {}", out.len(), b.count)));
        }
        if last.map(|l| l.1) != Some(b.last_pt) {
            return Err(fail("its times do not match its header".into()));
        }
        Ok(out)
    }

    fn read_block_v1(&mut self, b: &Block) -> Result<Vec<(u64, Snapshot)>> {
        self.file.seek(SeekFrom::Start(b.offset))?;
        let mut r = BufReader::new(&self.file);
        let mut line = Vec::new();
        let mut out = Vec::with_capacity(b.count as usize);
        let mut last: Option<(u64, u64)> = None;
        for i in 0..b.count as u64 {
            let s = read_line_v1(&mut r, &mut line, &self.name, b.at + i)?
                .ok_or_else(|| anyhow!("{}:{}: the file changed while replaying", self.name, b.at + i))?;
            let pt = if i == 0 { b.first_pt } else { next_pt(last, s.t_ms) };
            last = Some((s.t_ms, pt));
            out.push((pt, s));
        }
        Ok(out)
    }

    /// Every snapshot, a block at a time.
    pub fn snapshots(&mut self) -> impl Iterator<Item = Result<Snapshot>> + '_ {
        let n = self.blocks.len();
        (0..n).flat_map(move |i| match self.read_block(i) {
            Ok(v) => v.into_iter().map(|(_, s)| Ok(s)).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        })
    }

    /// Decode every block (one at a time) and say what the recording holds.
    pub fn check(&mut self) -> Result<String> {
        for i in 0..self.blocks.len() {
            self.read_block(i)?;
        }
        let (first, last) = (self.blocks[0].first_pt, self.blocks.last().map_or(0, |b| b.last_pt));
        Ok(format!(
            "{}: recording version {}, {} snapshots in {} blocks, {:.1} s, all readable",
            self.name,
            self.header.version,
            self.len(),
            self.blocks.len(),
            (last - first) as f64 / 1000.0
        ))
    }
}

fn index_v2(file: &File, name: &str, mut pos: u64, len: u64) -> Result<Vec<Block>> {
    let mut r = BufReader::new(file);
    r.seek(SeekFrom::Start(pos))?;
    let mut blocks: Vec<Block> = Vec::new();
    let mut index = 0usize;
    while pos < len {
        let n = blocks.len();
        let fail = |what: String| anyhow!("{name}: block {n} at byte {pos}: {what}");
        if len - pos < BLOCK_HEADER as u64 {
            return Err(fail(format!("truncated ({} bytes of a {BLOCK_HEADER}-byte block header)", len - pos)));
        }
        let mut h = [0u8; BLOCK_HEADER];
        r.read_exact(&mut h).map_err(|e| fail(format!("cannot read: {e}")))?;
        if &h[0..4] != MAGIC {
            return Err(fail("not a recording block".into()));
        }
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap_or_default());
        let b = Block {
            offset: pos + BLOCK_HEADER as u64,
            at: pos,
            clen: u32_at(4),
            raw_len: u32_at(8),
            count: u32_at(12),
            first_pt: u64_at(16),
            last_pt: u64_at(24),
            crc: u32_at(32),
            first_index: index,
        };
        if b.count == 0 || b.count > MAX_BLOCK_COUNT {
            return Err(fail(format!("claims {} snapshots (at most {MAX_BLOCK_COUNT})", b.count)));
        }
        if b.raw_len > MAX_BLOCK_RAW || b.clen > MAX_BLOCK_COMPRESSED || b.clen == 0 {
            return Err(fail(format!(
                "claims {} MiB, {} MiB decompressed (at most {} MiB)",
                b.clen >> 20,
                b.raw_len >> 20,
                MAX_BLOCK_RAW >> 20
            )));
        }
        if b.last_pt < b.first_pt || blocks.last().is_some_and(|p| b.first_pt < p.last_pt) {
            return Err(fail("its times go backwards".into()));
        }
        if len - b.offset < b.clen as u64 {
            return Err(fail(format!("truncated ({} of {} bytes)", len - b.offset, b.clen)));
        }
        r.seek_relative(b.clen as i64)?;
        pos = b.offset + b.clen as u64;
        index += b.count as usize;
        blocks.push(b);
    }
    Ok(blocks)
}

/// One version 1 line: `Ok(None)` at the end of the file.
fn read_line_v1(r: &mut impl BufRead, line: &mut Vec<u8>, name: &str, n: u64) -> Result<Option<Snapshot>> {
    line.clear();
    r.take(V1_MAX_LINE as u64 + 1).read_until(b'\n', line).with_context(|| format!("{name}:{n}: cannot read"))?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.len() > V1_MAX_LINE {
        bail!("{name}:{n}: line longer than {} MiB", V1_MAX_LINE >> 20);
    }
    if line.last() != Some(&b'\n') {
        bail!("{name}:{n}: truncated (the last line is incomplete)");
    }
    let s = serde_json::from_slice(line).map_err(|e| anyhow!("{name}:{n}: not a snapshot: {e}"))?;
    Ok(Some(s))
}

/// Version 1 has no blocks: read every line once (to refuse a bad file
/// now, not halfway through a class) and cut it into blocks of lines.
fn index_v1(file: &File, name: &str, header_len: u64) -> Result<Vec<Block>> {
    let mut r = BufReader::new(file);
    r.seek(SeekFrom::Start(header_len))?;
    let mut line = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    let mut last: Option<(u64, u64)> = None;
    let (mut offset, mut n, mut index) = (header_len, 2u64, 0usize);
    while let Some(s) = read_line_v1(&mut r, &mut line, name, n)? {
        let pt = next_pt(last, s.t_ms);
        last = Some((s.t_ms, pt));
        match blocks.last_mut() {
            Some(b) if b.count < V1_BLOCK => {
                b.count += 1;
                b.last_pt = pt;
            }
            _ => blocks.push(Block {
                offset,
                at: n,
                clen: 0,
                raw_len: 0,
                count: 1,
                first_pt: pt,
                last_pt: pt,
                crc: 0,
                first_index: index,
            }),
        }
        offset += line.len() as u64;
        n += 1;
        index += 1;
    }
    Ok(blocks)
}
