//! Out-of-line memory as pages that move, not bytes that are copied.
//!
//! A task's OOL memory comes from a pool it owns: one `memfd` (sealed
//! against shrinking and growing, so no mapping of it can ever fault past
//! its end), mapped once and reused. `vm_allocate` hands out whole chunks
//! of it. Sent with `deallocate`, a region travels as (pool fd, offset,
//! length): the kernel checks the range against the pool's size and passes
//! it on, and the receiver maps the pool once (cached by inode) and reads
//! the region in place — no byte is copied on the way. The pool's fd goes
//! to the kernel process with the first such message on a connection
//! only; later ones name the pool ([`Pool::id`]) and the kernel process
//! attaches the descriptor it kept.
//!
//! Giving the region back: chunk 0 of the pool is a header whose slot `c`
//! is non-zero while the region starting at chunk `c` is lent to a
//! receiver; the receiver clears it when it drops the region, and the owner
//! reuses lent chunks whose slot reads 0. A receiver that maps the pool can
//! see the owner's other regions too: this emulation trades Mach's
//! page-exact isolation for one mapping per pair of tasks (said in
//! docs/bench.md).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use memmap2::{MmapOptions, MmapRaw};

/// Chunk size: the unit a region is made of, and the header's size.
pub const CHUNK: usize = 64 * 1024;
/// Chunks per pool, the header included: a 64 MiB pool (only touched
/// pages cost memory).
pub const CHUNKS: usize = 1024;
pub const POOL_SIZE: usize = CHUNK * CHUNKS;
const MAGIC: u64 = u64::from_le_bytes(*b"ipcsvmpl");
/// Offset of the slot array in the header.
const SLOTS_AT: usize = 64;

/// A pool-shaped memfd as measured: one `fcntl` and one `fstat`.
pub struct PoolStat {
    /// Its usable length.
    pub len: u64,
    /// (device, inode): which pool it is, whatever descriptor brought it.
    pub key: (u64, u64),
}

/// `Some` if `fd` is a pool-shaped memfd: a regular file sealed against
/// shrinking and growing (so mappings never fault past its end) but not
/// against writing. Anything else → `None`.
pub fn pool_stat(fd: BorrowedFd<'_>) -> Option<PoolStat> {
    let seals = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GET_SEALS).ok()?;
    pool_stat_sealed(fd, seals)
}

/// [`pool_stat`] with the seals already read (the kernel reads them once
/// to tell a pool from a sealed memfd).
pub fn pool_stat_sealed(fd: BorrowedFd<'_>, seals: i32) -> Option<PoolStat> {
    let needed = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals & needed != needed || seals & libc::F_SEAL_WRITE != 0 {
        return None;
    }
    let st = nix::sys::stat::fstat(fd).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    Some(PoolStat { len: u64::try_from(st.st_size).ok()?, key: (st.st_dev, st.st_ino) })
}

/// A shared mapping of a whole pool (ours or a sender's).
#[derive(Debug)]
pub struct PoolMap {
    map: MmapRaw,
    len: usize,
}

impl PoolMap {
    fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<PoolMap> {
        let map = MmapOptions::new().len(len).map_raw(&fd)?;
        Ok(PoolMap { map, len })
    }

    /// The bytes `offset..offset + len`, or `None` past the end.
    fn range(&self, offset: usize, len: usize) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: offset ≤ len of the mapping, checked above.
        Some(unsafe { self.map.as_mut_ptr().add(offset) })
    }

    /// Header slot of the region starting at `offset`, if the pool has our
    /// header and `offset` starts a data chunk.
    fn slot(&self, offset: usize) -> Option<&AtomicU32> {
        if self.len < CHUNK || !offset.is_multiple_of(CHUNK) || offset == 0 {
            return None;
        }
        let chunk = offset / CHUNK;
        if chunk >= CHUNKS || chunk >= self.len / CHUNK {
            return None;
        }
        let base = self.map.as_mut_ptr();
        // SAFETY: the header (chunk 0) is at least CHUNK bytes; the magic is
        // 8 bytes at offset 0, aligned (mappings are page-aligned).
        let magic = unsafe { (base as *const u64).read_volatile() };
        if magic != MAGIC {
            return None;
        }
        // SAFETY: SLOTS_AT + 4 * CHUNKS ≤ CHUNK, and the slot is 4-aligned;
        // another process may change it at any time, hence an atomic.
        Some(unsafe { &*(base.add(SLOTS_AT + 4 * chunk) as *const AtomicU32) })
    }
}

#[derive(Debug, Default)]
struct Alloc {
    /// Per chunk: in use (allocated or lent). Chunk 0 is the header.
    used: Vec<bool>,
    /// Regions (start chunk, chunks) lent to a receiver, until it gives them back.
    lent: Vec<(usize, usize)>,
}

/// A task's own pool.
#[derive(Debug)]
pub struct Pool {
    /// Unique in this process: how messages name the pool to the kernel
    /// once it has the descriptor ([`Descriptor::OolRegion`]'s `pool`).
    ///
    /// [`Descriptor::OolRegion`]: super::proto::Descriptor::OolRegion
    id: u32,
    fd: OwnedFd,
    map: PoolMap,
    alloc: Mutex<Alloc>,
}

impl Pool {
    pub fn create() -> io::Result<Arc<Pool>> {
        use nix::fcntl::{fcntl, FcntlArg, SealFlag};
        use nix::sys::memfd::{memfd_create, MFdFlags};
        let fd = memfd_create(c"mach-vm-pool", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
        nix::unistd::ftruncate(&fd, POOL_SIZE as i64)?;
        fcntl(
            fd.as_fd(),
            FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL),
        )?;
        let map = PoolMap::map(fd.as_fd(), POOL_SIZE)?;
        // SAFETY: the header is ours to write; nobody has the fd yet.
        unsafe { (map.map.as_mut_ptr() as *mut u64).write_volatile(MAGIC) };
        let mut used = vec![false; CHUNKS];
        used[0] = true;
        static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Pool { id, fd, map, alloc: Mutex::new(Alloc { used, lent: Vec::new() }) }))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Alloc> {
        self.alloc.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// First fit of `len` bytes (whole chunks), after taking back the
    /// regions receivers have released. `None` when full.
    pub fn allocate(self: &Arc<Self>, len: usize) -> Option<PoolRegion> {
        let n = len.div_ceil(CHUNK).max(1);
        let mut a = self.lock();
        let map = &self.map;
        let mut back = Vec::new();
        a.lent.retain(|&(start, n)| {
            let free = map.slot(start * CHUNK).is_none_or(|s| s.load(Ordering::Acquire) == 0);
            if free {
                back.push((start, n));
            }
            !free
        });
        for (start, n) in back {
            a.used[start..start + n].iter_mut().for_each(|u| *u = false);
        }
        let mut run = 0;
        for c in 1..CHUNKS {
            run = if a.used[c] { 0 } else { run + 1 };
            if run == n {
                let start = c + 1 - n;
                a.used[start..=c].iter_mut().for_each(|u| *u = true);
                return Some(PoolRegion { pool: self.clone(), start, chunks: n, len, sent: false });
            }
        }
        None
    }

    /// Chunks in use now (allocated or lent): for tests.
    pub fn chunks_in_use(&self) -> usize {
        self.lock().used.iter().filter(|u| **u).count() - 1
    }
}

/// A region of our pool, writable in place until sent.
#[derive(Debug)]
pub struct PoolRegion {
    pool: Arc<Pool>,
    start: usize,
    chunks: usize,
    len: usize,
    sent: bool,
}

impl PoolRegion {
    pub fn offset(&self) -> u64 {
        (self.start * CHUNK) as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.pool.fd()
    }

    /// The pool's [`Pool::id`].
    pub fn pool_id(&self) -> u32 {
        self.pool.id
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let p = self.pool.map.range(self.start * CHUNK, self.len).expect("a region lies inside its pool");
        // SAFETY: the chunks are ours alone (allocated, not yet lent), inside
        // the mapping, which lives as long as `self.pool`.
        unsafe { std::slice::from_raw_parts_mut(p, self.len) }
    }

    /// About to be sent with `deallocate`: mark it lent (the receiver
    /// clears the mark).
    pub fn lend(&mut self) {
        if let Some(s) = self.pool.map.slot(self.start * CHUNK) {
            s.store(1, Ordering::Release);
        }
    }

    /// The send failed: the region is still ours.
    pub fn unlend(&mut self) {
        if let Some(s) = self.pool.map.slot(self.start * CHUNK) {
            s.store(0, Ordering::Release);
        }
    }

    /// The send succeeded with `deallocate`: the region is the receiver's
    /// until it releases it.
    pub fn moved(mut self) {
        self.sent = true;
        self.pool.lock().lent.push((self.start, self.chunks));
    }
}

impl Drop for PoolRegion {
    fn drop(&mut self) {
        if !self.sent {
            let mut a = self.pool.lock();
            let (s, n) = (self.start, self.chunks);
            a.used[s..s + n].iter_mut().for_each(|u| *u = false);
        }
    }
}

/// Mappings of pools we received regions from, by (device, inode).
#[derive(Debug, Default)]
pub struct Mappings {
    maps: Mutex<HashMap<(u64, u64), Arc<PoolMap>>>,
}

/// How many foreign pools a task keeps mapped; past it, mappings no
/// region uses are dropped.
const MAX_MAPPINGS: usize = 64;

impl Mappings {
    /// Maps (once) the pool `fd` and returns the region `offset..+len`.
    pub fn region(&self, fd: OwnedFd, offset: u64, len: u32, moved: bool) -> io::Result<Received> {
        let PoolStat { len: size, key } =
            pool_stat(fd.as_fd()).ok_or_else(|| io::Error::other("OOL pool not sealed against shrinking"))?;
        let end = offset.checked_add(u64::from(len)).filter(|e| *e <= size);
        if end.is_none() {
            return Err(io::Error::other("OOL region past the end of its pool"));
        }
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        let map = match maps.get(&key) {
            Some(m) if m.len as u64 == size => m.clone(),
            _ => {
                if maps.len() >= MAX_MAPPINGS {
                    maps.retain(|_, m| Arc::strong_count(m) > 1);
                }
                let m = Arc::new(PoolMap::map(fd.as_fd(), size as usize)?);
                maps.insert(key, m.clone());
                m
            }
        };
        Ok(Received { map, offset: offset as usize, len: len as usize, moved })
    }
}

/// A region received from another task's pool, read in place.
#[derive(Debug)]
pub struct Received {
    map: Arc<PoolMap>,
    offset: usize,
    len: usize,
    moved: bool,
}

impl Received {
    pub fn bytes(&self) -> &[u8] {
        match self.map.range(self.offset, self.len) {
            // SAFETY: inside the mapping (checked), which lives as long as
            // `self.map`; the sender gave the region up (moved) and does
            // not write it until we release it.
            Some(p) => unsafe { std::slice::from_raw_parts(p, self.len) },
            None => &[],
        }
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        // vm_deallocate: give a moved region back to its owner.
        if self.moved {
            if let Some(s) = self.map.slot(self.offset) {
                s.store(0, Ordering::Release);
            }
        }
    }
}
