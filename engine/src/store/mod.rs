//! The store: the facade every caller uses. `Store::open` recovers a data
//! directory; `append` validates a batch and commits it with group commit;
//! the active segment rolls and is sealed in the background; queries,
//! proofs, compaction and retention run beside ingest.
//!
//! One file per job, all working on the shared `Inner`:
//! - `commit.rs`: prepare, leader/follower group commit, the WAL write;
//! - `seal.rs`: roll, the sealer thread, backpressure;
//! - `recover.rs`: what `open` rebuilds from the manifest and the WAL;
//! - `read.rs`: lookups, counts, exports, `get`, the query snapshot;
//! - `sign.rs`: checkpoints, proofs, `verify`;
//! - `maintain.rs`: compaction and retention runs.
//!
//! Threads and locks (always taken in this order, never the reverse):
//! `queue` (commit requests) → `writer` (WAL, next seq, frontier; held only
//! by the commit leader, the roller and close) → `state` (what readers see)
//! → `seals` (jobs for the sealer thread). The sealer takes `state` and
//! `manifest`, and `writer` only when idle, to roll an aged segment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::checkpoint::digest_keys::DigestKeys;
use crate::checkpoint::history::History;
use crate::checkpoint::keys::KeyRing;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, RealFs};
use crate::layout::{SEGMENT_DIR, TILE_DIR, WAL_DIR};
use crate::limits::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX, BLOCK_BYTES_TARGET, RECORD_BYTES_DEFAULT, RECORD_BYTES_MAX};
use crate::lock::DirLock;
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::merkle::Hash;
use crate::segment::cache::BlockCache;
use crate::segment::ids::IdBudget;
use crate::segment::set::SegmentSet;

pub use crate::checkpoint::proof::{ConsistencyProof, InclusionProof};
pub use crate::event::{Outcome, StoredEvent};

mod commit;
mod maintain;
mod read;
pub use read::SharedEvent;
mod recover;
mod seal;
mod sign;

use commit::{CommitQueue, WriterState};
use read::mem_events;
use recover::recover;
use seal::{SealJob, SealQueue};

/// When an append is acknowledged relative to fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every append call gets its own write and fdatasync before it returns.
    Always,
    /// Group commit (default): appends waiting at the same time share one
    /// write and one fdatasync; each returns after that fdatasync.
    #[default]
    Batch,
    /// Acknowledged after write(2); fdatasync only at roll and close. A
    /// process crash loses nothing; a machine crash may lose acknowledged
    /// events.
    Never,
}

impl std::str::FromStr for Durability {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "always" => Ok(Durability::Always),
            "batch" => Ok(Durability::Batch),
            "never" => Ok(Durability::Never),
            _ => Err(Error::InvalidArgument(format!("durability {s:?} is not one of always, batch, never"))),
        }
    }
}

/// A source of ingest timestamps (unix milliseconds).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How a store behaves. `Options::default()` is right for production.
#[derive(Clone)]
pub struct Options {
    pub durability: Durability,
    /// Records larger than this are rejected (default 256 KiB, at most 1 MiB).
    pub record_bytes_max: usize,
    /// The active segment rolls when its WAL reaches this many bytes.
    pub segment_bytes: u64,
    /// ... or when its first event is this old.
    pub segment_age: Duration,
    /// zstd level of sealed blocks. 1 by default: records split into
    /// fields leave zstd little to find that level 3 would (2-4% smaller
    /// blocks at a tenth more seal time); compaction recompresses at 9.
    pub zstd_level: i32,
    /// Uncompressed bytes per sealed block.
    pub block_bytes: usize,
    pub fs: Arc<dyn FileSystem>,
    /// Ingest time source; the system clock by default.
    pub clock: Option<Clock>,
    /// Memory for decoded blocks shared by queries.
    pub block_cache_bytes: usize,
    /// Memory for the segments' eventID Bloom filters (2 bytes per sealed
    /// event; the newest segments keep theirs). Beyond it, id lookups in
    /// older segments read their id tables.
    pub id_filter_bytes: usize,
    /// A signed checkpoint is issued at every seal, and this often while
    /// events arrive (if the tree grew).
    pub checkpoint_interval: Duration,
    /// Keep the Insights counters at ingest and write them with each
    /// segment (docs/INSIGHTS.md). Off only to measure what they cost:
    /// segments then carry none, and Insights derive them from the
    /// records when first read (slower analysis, same answers).
    pub insights_counters: bool,
    /// Seals store records field by field (smaller sealed segments; the
    /// split is about a fifth of ingest's CPU). Off, seals keep records
    /// whole (faster ingest, larger segments until a compaction rewrites
    /// them: `cairn compact --all`; background compaction merges only
    /// small segments). Either way a seal keeps records whole while its
    /// queue is full.
    pub seal_fields: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Batch,
            record_bytes_max: RECORD_BYTES_DEFAULT,
            segment_bytes: 32 * 1024 * 1024,
            segment_age: Duration::from_secs(600),
            zstd_level: 1,
            block_bytes: BLOCK_BYTES_TARGET,
            fs: Arc::new(RealFs),
            clock: None,
            block_cache_bytes: 64 * 1024 * 1024,
            id_filter_bytes: 32 * 1024 * 1024,
            checkpoint_interval: Duration::from_secs(60),
            insights_counters: true,
            seal_fields: true,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("record_bytes_max", &self.record_bytes_max)
            .field("segment_bytes", &self.segment_bytes)
            .field("segment_age", &self.segment_age)
            .field("zstd_level", &self.zstd_level)
            .field("seal_fields", &self.seal_fields)
            .finish()
    }
}

/// What `stats` reports.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub events: u64,
    pub sealed_events: u64,
    pub segments: usize,
    /// Sum of the stored records' lengths.
    pub record_bytes: u64,
    /// Everything under the data directory.
    pub disk_bytes: u64,
    pub segment_bytes: u64,
    pub wal_bytes: u64,
    pub tile_bytes: u64,
    /// How the sealed segments' bytes split (from their footers).
    pub segment_parts: SegmentParts,
    pub min_time_ms: Option<i64>,
    pub max_time_ms: Option<i64>,
    pub tree_size: u64,
    pub root: Hash,
}

/// The bytes of the sealed segments by section (docs/FORMAT.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentParts {
    /// The compressed blocks of records.
    pub blocks: u64,
    /// The time-partitioned index (postings, counters, totals, rare values).
    pub index: u64,
    /// The eventID table.
    pub id_table: u64,
    /// Headers, footers, block indexes, frontiers and dictionaries.
    pub other: u64,
}

/// Memory the engine holds, by purpose (what `memory` reports).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryUse {
    /// Unsealed events: the active memtable and those waiting to be sealed.
    pub memtable_bytes: u64,
    /// Decoded blocks cached for queries (at most `Options::block_cache_bytes`).
    pub block_cache_bytes: u64,
    /// Segments' eventID filters (at most `Options::id_filter_bytes`).
    pub id_filter_bytes: u64,
}

/// What readers see.
struct ReadState {
    segments: Arc<SegmentSet>,
    sealing: Vec<Arc<Memtable>>,
    active: Memtable,
}

struct Inner {
    dir: PathBuf,
    wal_dir: PathBuf,
    seg_dir: PathBuf,
    tile_dir: PathBuf,
    opts: Options,
    fs: Arc<dyn FileSystem>,
    queue: Mutex<CommitQueue>,
    queue_cv: Condvar,
    writer: Mutex<WriterState>,
    state: RwLock<ReadState>,
    seals: Mutex<SealQueue>,
    seals_cv: Condvar,
    manifest: Mutex<Manifest>,
    poison: Mutex<Option<String>>,
    cache: BlockCache,
    ids: Arc<IdBudget>,
    keys: Mutex<KeyRing>,
    /// The RSA keys that sign delivered CloudTrail digests.
    digest_keys: Mutex<DigestKeys>,
    /// Never held together with `writer` (see `durable_head`).
    history: Mutex<History>,
    last_checkpoint_at: Mutex<Instant>,
    /// One compaction or retention at a time.
    compact_lock: Mutex<()>,
    _lock: DirLock,
}

/// An open data directory. Cheap to share across threads (`&Store` is all
/// appends and reads need).
pub struct Store {
    inner: Arc<Inner>,
    sealer: Option<JoinHandle<()>>,
}

fn system_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`: takes the directory
    /// lock, reads the manifest and segment footers, replays the WAL
    /// (truncating only a torn tail of the newest file) and starts the
    /// sealer.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        if opts.record_bytes_max == 0 || opts.record_bytes_max > RECORD_BYTES_MAX {
            return Err(Error::InvalidArgument(format!(
                "record size limit {} must be between 1 and {RECORD_BYTES_MAX} bytes",
                opts.record_bytes_max
            )));
        }
        if !(-7..=22).contains(&opts.zstd_level) {
            return Err(Error::InvalidArgument(format!("zstd level {} is not between -7 and 22", opts.zstd_level)));
        }
        let fs = opts.fs.clone();
        let (wal_dir, seg_dir, tile_dir) = (dir.join(WAL_DIR), dir.join(SEGMENT_DIR), dir.join(TILE_DIR));
        for d in [&dir, &wal_dir, &seg_dir, &tile_dir] {
            fs.create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
        }
        let lock = DirLock::acquire(&dir)?;
        let ids = Arc::new(IdBudget::new(opts.id_filter_bytes));
        let recovered = recover(fs.as_ref(), &opts, &wal_dir, &seg_dir, &ids)?;
        let (history, _) = History::open(fs.as_ref(), &dir)?;
        let keys = KeyRing::open(fs.as_ref(), &dir, history.is_empty())?;
        let digest_keys = DigestKeys::open(fs.as_ref(), &dir)?;
        let inner = Arc::new(Inner {
            dir,
            wal_dir,
            seg_dir,
            tile_dir,
            fs,
            queue: Mutex::new(CommitQueue::default()),
            queue_cv: Condvar::new(),
            writer: Mutex::new(WriterState {
                wal: recovered.wal,
                next_seq: recovered.next_seq,
                frontier: recovered.frontier,
                buf: Vec::new(),
                closed: false,
            }),
            state: RwLock::new(ReadState {
                segments: Arc::new(SegmentSet::new(recovered.segments)),
                sealing: recovered.seal_jobs.iter().map(|j| j.mem.clone()).collect(),
                active: recovered.active,
            }),
            seals: Mutex::new(SealQueue { jobs: recovered.seal_jobs.into(), ..Default::default() }),
            seals_cv: Condvar::new(),
            manifest: Mutex::new(recovered.manifest),
            poison: Mutex::new(None),
            cache: BlockCache::new(opts.block_cache_bytes),
            ids,
            keys: Mutex::new(keys),
            digest_keys: Mutex::new(digest_keys),
            history: Mutex::new(history),
            last_checkpoint_at: Mutex::new(Instant::now()),
            compact_lock: Mutex::new(()),
            opts,
            _lock: lock,
        });
        inner.check_last_checkpoint()?;
        let for_sealer = inner.clone();
        let sealer = std::thread::Builder::new()
            .name("cairn-sealer".into())
            .spawn(move || for_sealer.sealer_loop())
            .map_err(|e| Error::io("spawn sealer thread", &inner.dir, e))?;
        Ok(Store { inner, sealer: Some(sealer) })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    /// Validates and appends a batch. Returns, per record in order, its seq
    /// or its rejection; rejected records cost nothing else, the rest of the
    /// batch is stored. Returns only once the stored records are durable
    /// under the store's durability policy. An `Err` means nothing of this
    /// batch was acknowledged.
    pub fn append(&self, records: &[&[u8]]) -> Result<Vec<Outcome>> {
        let total: usize = records.iter().map(|r| r.len()).sum();
        if records.len() > BATCH_RECORDS_MAX {
            return Err(Error::BatchTooLarge { what: "record count", value: records.len() as u64, limit: BATCH_RECORDS_MAX as u64 });
        }
        if total > BATCH_BYTES_MAX {
            return Err(Error::BatchTooLarge { what: "batch bytes", value: total as u64, limit: BATCH_BYTES_MAX as u64 });
        }
        self.inner.check_poison()?;
        let (req, mut outcomes) = self.inner.prepare(records);
        if req.events.is_empty() {
            return Ok(outcomes);
        }
        let seqs = self.inner.commit(req)?;
        let mut it = seqs.into_iter();
        for o in outcomes.iter_mut() {
            if matches!(o, Outcome::Stored(_)) {
                if let Some((seq, dup)) = it.next() {
                    *o = if dup { Outcome::Duplicate(seq) } else { Outcome::Stored(seq) };
                }
            }
        }
        Ok(outcomes)
    }

    /// Counts, sizes, time range and the tree head.
    pub fn stats(&self) -> Result<Stats> {
        let (tree_size, root) = {
            let w = self.inner.writer.lock();
            (w.frontier.size(), w.frontier.root())
        };
        let st = self.inner.state.read();
        let mut s = Stats { tree_size, root, segments: st.segments.len(), ..Default::default() };
        let mut span = |lo: i64, hi: i64| {
            s.min_time_ms = Some(s.min_time_ms.map_or(lo, |m| m.min(lo)));
            s.max_time_ms = Some(s.max_time_ms.map_or(hi, |m| m.max(hi)));
        };
        for seg in st.segments.iter() {
            span(seg.footer.min_time_ms, seg.footer.max_time_ms);
        }
        for m in st.sealing.iter().map(|m| m.as_ref()).chain(std::iter::once(&st.active)) {
            if !m.is_empty() {
                span(m.min_time_ms, m.max_time_ms);
            }
        }
        s.sealed_events = st.segments.iter().map(|x| x.footer.count).sum();
        for f in st.segments.iter().map(|x| &x.footer) {
            let p = &mut s.segment_parts;
            p.blocks += f.block_index.offset.saturating_sub(crate::segment::HEADER_BYTES as u64);
            p.index += f.index.len;
            p.id_table += f.id_table.len;
            p.other += (crate::segment::HEADER_BYTES + crate::segment::FOOTER_BYTES) as u64
                + f.block_index.len
                + f.frontier.len
                + f.dictionary.map_or(0, |d| d.len);
        }
        s.events = s.sealed_events + st.sealing.iter().map(|m| m.len() as u64).sum::<u64>() + st.active.len() as u64;
        s.record_bytes = st.segments.iter().map(|x| x.footer.raw_bytes).sum::<u64>()
            + st.sealing.iter().map(|m| m.raw_bytes).sum::<u64>()
            + st.active.raw_bytes;
        drop(st);
        s.segment_bytes = dir_bytes(&self.inner.seg_dir);
        s.wal_bytes = dir_bytes(&self.inner.wal_dir);
        s.tile_bytes = dir_bytes(&self.inner.tile_dir);
        s.disk_bytes = dir_bytes(&self.inner.dir);
        Ok(s)
    }

    /// What the engine holds in memory, by purpose.
    pub fn memory(&self) -> MemoryUse {
        let st = self.inner.state.read();
        let mem = st.active.memory_bytes() + st.sealing.iter().map(|m| m.memory_bytes()).sum::<usize>();
        MemoryUse {
            memtable_bytes: mem as u64,
            block_cache_bytes: self.inner.cache.bytes() as u64,
            id_filter_bytes: self.inner.ids.used_bytes() as u64,
        }
    }

    /// Flushes, waits for pending seals and releases the directory. Also
    /// done (errors ignored) on drop.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(sealer) = self.sealer.take() else { return Ok(()) };
        let inner = &self.inner;
        // Wait for any commit leader to finish, then refuse new commits.
        let mut result = {
            let mut q = inner.queue.lock();
            while q.leader_active {
                inner.queue_cv.wait(&mut q);
            }
            let mut w = inner.writer.lock();
            w.closed = true;
            let r = if inner.poison.lock().is_none() { w.wal.sync() } else { Ok(()) };
            drop(w);
            r
        };
        let sealed = inner.wait_sealed();
        if result.is_ok() && sealed.is_ok() {
            // A clean close leaves a checkpoint of everything stored.
            result = inner.checkpoint_now().map(|_| ());
        }
        {
            let mut s = inner.seals.lock();
            s.shutdown = true;
            inner.seals_cv.notify_all();
        }
        let _ = sealer.join();
        if result.is_ok() {
            result = sealed;
        }
        result
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.opts.clock.as_ref().map_or_else(system_now_ms, |c| c())
    }

    fn check_poison(&self) -> Result<()> {
        match self.poison.lock().as_ref() {
            Some(p) => Err(Error::Poisoned(p.clone())),
            None => Ok(()),
        }
    }

    fn set_poison(&self, e: &Error) {
        let mut p = self.poison.lock();
        if p.is_none() {
            *p = Some(e.to_string());
        }
    }
}
