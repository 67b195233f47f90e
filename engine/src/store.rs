//! The store: opens and recovers a data directory, appends batches with
//! group commit, rolls the active segment and seals it in the background,
//! and answers point reads and statistics.
//!
//! Threads and locks (always taken in this order, never the reverse):
//! `queue` (commit requests) → `writer` (WAL, next seq, frontier; held only
//! by the commit leader, the roller and close) → `state` (what readers see)
//! → `seals` (jobs for the sealer thread). The sealer takes `state` and
//! `manifest`, and `writer` only when idle, to roll an aged segment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::checkpoint::history::{History, HistoryEntry};
use crate::checkpoint::keys::KeyRing;
use crate::checkpoint::proof::{consistency_path, inclusion_path, range_hash};
use crate::checkpoint::{Checkpoint, SignedCheckpoint, Verifier};
use crate::compact::{self, CompactOptions, CompactReport, RunReport};
use crate::error::{Error, Result};
use crate::event::{id_fingerprint, parse_event, Rejection};
use crate::fs::{FileSystem, RealFs};
use crate::index::SEQ_GROUP;
use crate::index::{terms, Attr};
use crate::insights::counters::{Counters, SeriesKey, Tally};
use crate::limits::{BATCH_BYTES_MAX, BATCH_RECORDS_MAX, BLOCK_BYTES_TARGET, RECORD_BYTES_DEFAULT, RECORD_BYTES_MAX};
use crate::lock::DirLock;
use crate::manifest::{Manifest, SegmentEntry};
use crate::memtable::{span_in_chunk, Chunk, EventMeta, Memtable, Span};
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::query::{self, BlockCache, Order, Page, Query, QueryResult, Snapshot};
use crate::retention::{self, RetentionOptions, RetentionReport};
use crate::segment::builder::BuildOptions;
use crate::segment::ids::IdBudget;
use crate::segment::reader::Segment;
use crate::segment::set::SegmentSet;
use crate::segment::writer::{build_segment, SealInput};
use crate::segment::{parse_segment_file_name, segment_file_name};
use crate::tiles;
use crate::tree::TreeReader;
use crate::verify::{check_listing, read_history_or_report, verify_parts, Listed, Problem, ProblemKind, Progress, Report, VerifyOptions};
use crate::wal::{self, parse_wal_file_name, read_wal, WalWriter, ENTRY_FIXED_BYTES, FRAME_HEADER_BYTES};

pub const WAL_DIR: &str = "wal";
pub const SEGMENT_DIR: &str = "segments";
pub const TILE_DIR: &str = "tiles";

/// At most this many rolled segments wait for the sealer; a roll beyond it
/// blocks the writer (backpressure: a slow disk slows ingest, memory stays
/// bounded).
const SEALS_PENDING_MAX: usize = 2;
/// A commit group stops taking requests at this many body bytes.
const GROUP_BYTES_MAX: usize = 64 * 1024 * 1024;

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
            .finish()
    }
}

/// The per-record result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, with this seq.
    Stored(u64),
    /// Already stored with identical bytes (same eventID): not stored
    /// again; this is the existing seq.
    Duplicate(u64),
    /// Not stored, for this reason.
    Rejected(Rejection),
}

impl Outcome {
    /// The event's seq, stored now or before.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Outcome::Stored(s) | Outcome::Duplicate(s) => Some(*s),
            Outcome::Rejected(_) => None,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub ingest_ms: u64,
    pub time_ms: i64,
    pub record: Vec<u8>,
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
    pub min_time_ms: Option<i64>,
    pub max_time_ms: Option<i64>,
    pub tree_size: u64,
    pub root: Hash,
}

/// An inclusion proof: the event, its audit path, and the signed
/// checkpoint the path leads to.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub event: StoredEvent,
    /// RFC 9162 inclusion path, from the leaf upwards.
    pub path: Vec<Hash>,
    pub checkpoint: SignedCheckpoint,
}

/// A consistency proof between two signed checkpoints of the store.
#[derive(Debug, Clone)]
pub struct ConsistencyProof {
    pub old: SignedCheckpoint,
    pub new: SignedCheckpoint,
    /// RFC 9162 consistency path.
    pub path: Vec<Hash>,
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

/// Per event of a request: (seq, was it a duplicate), or the error text.
type CommitResult = Result<Vec<(u64, bool)>, String>;

/// One append call waiting for a commit leader.
struct Request {
    /// The accepted records as WAL entries (`entry header | record`...):
    /// copied into the frame, then kept by the memtable as a chunk.
    body: Chunk,
    events: Vec<Prepared>,
    /// Every event's index terms: `(attr, start, len)` into `term_text`.
    term_text: String,
    term_items: Vec<(Attr, u32, u32)>,
    /// `prepare` looked for duplicates among sealed events below this seq;
    /// the leader checks only what was sealed since.
    sealed_checked: u64,
    /// Per event: its seq, stored or duplicate (`true` = duplicate), or the
    /// error, once committed.
    done: Mutex<Option<CommitResult>>,
}

impl Request {
    fn record(&self, p: &Prepared) -> &[u8] {
        &self.body[p.at..p.at + p.len]
    }

    fn terms(&self, p: &Prepared) -> impl Iterator<Item = (Attr, &str)> + '_ {
        self.term_items[p.terms.clone()].iter().map(|&(a, at, len)| (a, &self.term_text[at as usize..(at + len) as usize]))
    }
}

struct Prepared {
    meta: EventMeta,
    /// The record's range inside `Request::body`.
    at: usize,
    len: usize,
    /// This event's range of `Request::term_items`.
    terms: std::ops::Range<usize>,
    /// Already stored with identical bytes in a sealed segment, found by
    /// `prepare`.
    dup: Option<u64>,
    /// What the event adds to the Insights counters, its strings inside
    /// `Request::body`: counted when its memtable is sealed or read.
    tally: Option<Tally<Span>>,
}

#[derive(Default)]
struct CommitQueue {
    pending: Vec<Arc<Request>>,
    leader_active: bool,
}

struct WriterState {
    wal: WalWriter,
    next_seq: u64,
    frontier: Frontier,
    buf: Vec<u8>,
    closed: bool,
}

/// What readers see.
struct ReadState {
    segments: Arc<SegmentSet>,
    sealing: Vec<Arc<Memtable>>,
    active: Memtable,
}

struct SealJob {
    mem: Arc<Memtable>,
    frontier: Frontier,
    wal_path: PathBuf,
}

#[derive(Default)]
struct SealQueue {
    jobs: std::collections::VecDeque<SealJob>,
    busy: bool,
    shutdown: bool,
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

    /// One page of events matching `q`, newest first (LookupEvents).
    /// `max_results` defaults to 50 and may be up to 10,000. Pass the
    /// returned `next_token` with the same query for the next page; pages
    /// come from the snapshot of the first page, so every matching event
    /// appears exactly once even while new events arrive.
    pub fn lookup(&self, q: &Query, max_results: Option<usize>, next_token: Option<&str>) -> QueryResult<Page> {
        let q = &*q.canonical();
        let now = self.inner.now_ms() as i64;
        query::lookup(
            |bound, cursor, limit| self.inner.snapshot(q, bound, Order::NewestFirst, cursor, limit),
            &self.inner.cache,
            q,
            max_results,
            next_token,
            now,
        )
    }

    /// Counts of events matching `q`, grouped by the value of `by`, largest
    /// first. Answered from the indexes: sealed partitions wholly inside
    /// the range cost one term-table read, no decompression.
    pub fn count(&self, q: &Query, by: Attr) -> QueryResult<Vec<(String, u64)>> {
        let q = &*q.canonical();
        q.validate()?;
        let snap = self.inner.snapshot(q, None, Order::NewestFirst, None, usize::MAX);
        query::count(&snap, &self.inner.cache, q, by)
    }

    /// Events matching `q` with seq >= `from_seq`, in seq (arrival) order,
    /// at most `max`, and the seq to continue from: what `tail` polls.
    pub fn events_since(&self, from_seq: u64, q: &Query, max: usize) -> QueryResult<(Vec<StoredEvent>, u64)> {
        let q = &*q.canonical();
        q.validate()?;
        let (segments, mems, bound) = {
            let st = self.inner.state.read();
            let bound = st.active.end_seq();
            let mut mems = st.sealing.clone();
            // The active memtable is copied only from `from_seq` on.
            let active = query::memtable_events(&st.active, q, bound, false, None, usize::MAX);
            let segs = SegmentSet::new(st.segments.iter().filter(|s| s.footer.tree_size > from_seq).cloned().collect());
            mems.retain(|m| m.end_seq() > from_seq);
            (segs, (mems, active), bound)
        };
        let mut out: Vec<StoredEvent> = mems.1.into_iter().filter(|e| e.seq >= from_seq).collect();
        for m in &mems.0 {
            out.extend(query::memtable_events(m, q, bound, false, None, usize::MAX).into_iter().filter(|e| e.seq >= from_seq));
        }
        if !segments.is_empty() {
            // Fell behind a seal: read what was sealed since `from_seq`.
            let snap = Snapshot { segments: Arc::new(segments), memtables: Vec::new(), active: Vec::new(), bound, limit: usize::MAX };
            query::run(&snap, &self.inner.cache, q, Order::OldestFirst, None, |e| {
                if e.seq >= from_seq {
                    out.push(e);
                }
                true
            })?;
        }
        out.sort_by_key(|e| e.seq);
        out.dedup_by_key(|e| e.seq);
        let next = if out.len() > max {
            out.truncate(max);
            out.last().map_or(bound, |e| e.seq + 1)
        } else {
            bound
        };
        Ok((out, next))
    }

    /// Streams every event matching `q` in `order` to `f` until it returns
    /// `false`. Memory stays bounded: blocks are decoded one at a time.
    /// Returns the number of events passed to `f`.
    pub fn export(&self, q: &Query, order: Order, mut f: impl FnMut(StoredEvent) -> bool) -> QueryResult<u64> {
        let q = &*q.canonical();
        q.validate()?;
        let snap = self.inner.snapshot(q, None, order, None, usize::MAX);
        let mut n = 0u64;
        query::run(&snap, &self.inner.cache, q, order, None, |e| {
            n += 1;
            f(e)
        })?;
        Ok(n)
    }

    /// Every stored record whose eventID (or UID) is `event_id`, in seq order.
    pub fn get(&self, event_id: &str) -> Result<Vec<StoredEvent>> {
        let fp = id_fingerprint(event_id.as_bytes());
        let mut out = Vec::new();
        let (segments, sealing) = {
            let st = self.inner.state.read();
            collect_mem_matches(&st.active, fp, event_id, &mut out);
            (st.segments.clone(), st.sealing.clone())
        };
        for m in &sealing {
            collect_mem_matches(m, fp, event_id, &mut out);
        }
        for seg in segments.iter() {
            let ords = seg.find_id(fp)?;
            for ord in ords {
                let Some((b, pos)) = seg.locate(ord) else { continue };
                let block = self.inner.cache.get(seg, b)?;
                let rec = block.record(pos);
                if record_has_id(rec, event_id) {
                    out.push(StoredEvent {
                        seq: block.seqs[pos],
                        ingest_ms: block.ingest_ms[pos],
                        time_ms: block.time_ms[pos],
                        record: rec.to_vec(),
                    });
                }
            }
        }
        out.sort_by_key(|e| e.seq);
        out.dedup_by_key(|e| e.seq);
        Ok(out)
    }

    /// Calls `f` for every stored event: sealed segments in (time, seq)
    /// order per segment, then unsealed events in seq order. For tools and
    /// tests; queries come with the query engine.
    pub fn for_each(&self, mut f: impl FnMut(&StoredEvent)) -> Result<()> {
        let (segments, sealing, active) = {
            let st = self.inner.state.read();
            (st.segments.clone(), st.sealing.clone(), mem_events(&st.active))
        };
        for seg in segments.iter() {
            for b in 0..seg.blocks.len() {
                let block = seg.read_block(b)?;
                for i in 0..block.len() {
                    f(&StoredEvent {
                        seq: block.seqs[i],
                        ingest_ms: block.ingest_ms[i],
                        time_ms: block.time_ms[i],
                        record: block.record(i).to_vec(),
                    });
                }
            }
        }
        for m in &sealing {
            mem_events(m).iter().for_each(&mut f);
        }
        active.iter().for_each(f);
        Ok(())
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

    /// For Insights, from one consistent view: the sealed segments, and the
    /// counters of the events not sealed yet with eventTime in `[lo_minute,
    /// hi_minute)` (the active memtable's taken under the read lock and
    /// counted after it).
    pub fn counter_view(&self, lo_minute: i64, hi_minute: i64) -> (Arc<SegmentSet>, Counters) {
        let (segments, sealing, active) = {
            let st = self.inner.state.read();
            (st.segments.clone(), st.sealing.clone(), st.active.counters_in(lo_minute, hi_minute))
        };
        let mut out = active.count();
        for m in &sealing {
            m.counters_in(lo_minute, hi_minute).count_into(&mut out);
        }
        (segments, out)
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

    /// Signs a checkpoint of everything acknowledged so far (if the tree
    /// grew since the newest one) and returns the newest checkpoint; `None`
    /// for an empty store.
    pub fn checkpoint(&self) -> Result<Option<SignedCheckpoint>> {
        self.inner.check_poison()?;
        self.inner.checkpoint_now()
    }

    /// The newest signed checkpoint, without signing a new one.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.inner.history.lock().last().map(|e| e.checkpoint.clone())
    }

    /// Every public key the store has signed with, oldest first (the last
    /// is the current one).
    pub fn verifiers(&self) -> Vec<Verifier> {
        self.inner.keys.lock().verifiers().to_vec()
    }

    /// Switches to a new signing key (the old public key stays listed, so
    /// older checkpoints still verify) and signs the current head with it.
    pub fn rotate_key(&self) -> Result<Verifier> {
        self.inner.check_poison()?;
        let (size, root) = self.inner.durable_head()?;
        let mut h = self.inner.history.lock();
        let v = {
            let mut k = self.inner.keys.lock();
            k.rotate(self.inner.fs.as_ref())?;
            k.signer().verifier()
        };
        if size > 0 {
            // Sign the head with the new key at once, even if unchanged.
            self.inner.sign_locked(&mut h, size, root, true)?;
        }
        Ok(v)
    }

    /// Verifies the open store (see `verify`): its sealed segments and
    /// tiles from a snapshot (immutable files), its unsealed events from
    /// memory (their WAL was checked when the store opened), its checkpoint
    /// history and the given checkpoints. Ingest continues meanwhile.
    pub fn verify(&self, opts: &VerifyOptions, progress: Progress<'_>) -> Result<Report> {
        let mut report = Report::default();
        // The history first: every checkpoint in it was signed before the
        // snapshot below, so none can cover more than the snapshot holds.
        let history = read_history_or_report(self.inner.fs.as_ref(), &self.inner.dir, &mut report);
        let (segments, sealing, active, active_leaves) = {
            let st = self.inner.state.read();
            let leaves: Vec<Hash> = st.active.entries().iter().map(|e| e.leaf).collect();
            (st.segments.clone(), st.sealing.clone(), mem_events(&st.active), leaves)
        };
        let min_retained = self.inner.manifest.lock().min_retained_seq;
        let sealed_size = segments.last().map_or(min_retained, |s| s.footer.tree_size);
        let listed: Vec<Listed> = segments
            .iter()
            .map(|seg| Listed {
                first_seq: seg.footer.first_seq,
                count: seg.footer.count,
                path: seg.path.clone(),
                segment: Ok(seg.clone()),
            })
            .collect();
        check_listing(&mut report, min_retained, sealed_size, &listed);
        let mut unsealed = Vec::new();
        let mut check = |seq: u64, ingest_ms: u64, record: &[u8], stored: Hash| {
            let leaf = leaf_hash(ingest_ms, record);
            if leaf != stored {
                report.problems.push(Problem {
                    kind: ProblemKind::Altered,
                    what: format!("unsealed seq {seq}: the record in memory does not hash to its leaf"),
                });
            }
            unsealed.push((seq, leaf, record.len() as u64));
        };
        for m in &sealing {
            for (i, e) in m.entries().iter().enumerate() {
                check(m.first_seq + i as u64, e.ingest_ms, m.record(e), e.leaf);
            }
        }
        for (e, leaf) in active.iter().zip(active_leaves) {
            check(e.seq, e.ingest_ms, &e.record, leaf);
        }
        verify_parts(
            self.inner.fs.as_ref(),
            &self.inner.dir,
            &history,
            min_retained,
            sealed_size,
            &listed,
            &unsealed,
            opts,
            progress,
            &mut report,
        );
        Ok(report)
    }

    /// Signs a CloudTrail-style digest with the store's current key (for
    /// `cairn export --format cloudtrail`); returns the signature and the
    /// signing key.
    pub fn sign_digest(&self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<(Vec<u8>, Verifier)> {
        let keys = self.inner.keys.lock();
        let sig = keys.signer().sign_digest(end_time, location, sha256_hex, previous).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok((sig, keys.signer().verifier()))
    }

    /// Merges runs of small adjacent segments (see `compact`): hash-neutral,
    /// crash-safe, while ingest and queries go on. One compaction runs at a
    /// time; `progress(done, total)` counts record bytes.
    pub fn compact(&self, opts: &CompactOptions, progress: Progress<'_>) -> Result<CompactReport> {
        if opts.block_bytes == 0 || opts.block_bytes > compact::BLOCK_BYTES_MAX {
            // A block's payload must stay under what readers accept.
            return Err(Error::InvalidArgument(format!(
                "compaction block size must be between 1 byte and {} MiB, not {} bytes",
                compact::BLOCK_BYTES_MAX >> 20,
                opts.block_bytes
            )));
        }
        let _one = self.inner.compact_lock.lock();
        self.inner.check_poison()?;
        let started = Instant::now();
        let segments = self.inner.state.read().segments.clone();
        let runs = compact::plan(&segments, opts);
        let mut report = CompactReport {
            dry_run: opts.dry_run,
            segments_before: segments.len(),
            bytes_before: segments.iter().map(|s| s.file_bytes()).sum(),
            ..CompactReport::default()
        };
        let total: u64 = runs.iter().flat_map(|r| segments[r.clone()].iter()).map(|s| s.footer.raw_bytes).sum();
        let dictionary = if opts.dictionary && !runs.is_empty() && !opts.dry_run {
            let sample: Vec<Arc<Segment>> = runs.iter().flat_map(|r| segments[r.clone()].iter().cloned()).collect();
            Some(compact::train_dictionary(&sample)?)
        } else {
            None
        };
        report.dictionary_bytes = dictionary.as_ref().map_or(0, Vec::len);
        let build = BuildOptions { zstd_level: opts.zstd_level, block_bytes: opts.block_bytes, dictionary };
        let mut done = 0u64;
        for run in runs {
            if opts.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                break;
            }
            let sources: Vec<Arc<Segment>> = segments[run].to_vec();
            let mut r = RunReport {
                first_seq: sources[0].footer.first_seq,
                events: sources.iter().map(|s| s.footer.count).sum(),
                segments: sources.len(),
                bytes_before: sources.iter().map(|s| s.file_bytes()).sum(),
                bytes_after: 0,
            };
            if !opts.dry_run {
                r.bytes_after = self.inner.compact_run(&sources, &build, opts.max_bytes_per_sec)?;
            }
            done += sources.iter().map(|s| s.footer.raw_bytes).sum::<u64>();
            report.record_bytes = done;
            progress(done, total);
            report.runs.push(r);
        }
        let after = self.inner.state.read().segments.clone();
        report.segments_after =
            if opts.dry_run { report.segments_before - report.runs.iter().map(|r| r.segments - 1).sum::<usize>() } else { after.len() };
        report.bytes_after = if opts.dry_run { report.bytes_before } else { after.iter().map(|s| s.file_bytes()).sum() };
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Removes the oldest whole segments whose events are all older than
    /// `opts.older_than` (see `retention`), records the cut in the manifest
    /// and as a `RetentionCut` event in the log, and keeps what the proofs
    /// of the remaining events need. Crash-safe; ingest continues.
    pub fn retain(&self, opts: &RetentionOptions) -> Result<RetentionReport> {
        let _one = self.inner.compact_lock.lock();
        self.inner.check_poison()?;
        let now = self.inner.now_ms() as i64;
        let cutoff = now.saturating_sub(i64::try_from(opts.older_than.as_millis()).unwrap_or(i64::MAX));
        let segments = self.inner.state.read().segments.clone();
        let expired = |s: &Segment| {
            retention::effective_newest_ms(s.footer.max_time_ms, s.footer.max_ingest_ms) < cutoff
                && (!opts.stored_at_least || (s.footer.max_ingest_ms as i64) < cutoff)
        };
        let n = segments.iter().take_while(|s| expired(s)).count();
        let removed: Vec<Arc<Segment>> = segments[..n].to_vec();
        let current_min = self.inner.manifest.lock().min_retained_seq;
        let mut report = RetentionReport {
            dry_run: opts.dry_run,
            cutoff_ms: cutoff,
            segments_removed: n,
            events_removed: removed.iter().map(|s| s.footer.count).sum(),
            bytes_removed: removed.iter().map(|s| s.file_bytes()).sum(),
            min_retained_seq: removed.last().map_or(current_min, |s| s.footer.tree_size),
            event_seq: None,
        };
        if opts.dry_run || n == 0 {
            return Ok(report);
        }
        self.inner.cut(&removed, cutoff, opts.older_than)?;
        let id = {
            let mut b = [0u8; 16];
            getrandom::getrandom(&mut b).map_err(|e| Error::InvalidArgument(format!("the OS random source failed: {e}")))?;
            let h = hex::encode(b);
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        };
        let rec = retention::cut_record(now, &id, &report, opts.older_than);
        report.event_seq = self.append(&[&rec])?.first().and_then(Outcome::seq);
        Ok(report)
    }

    /// The root of the store's tree at `size`.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.inner.root_at(size)
    }

    /// The event stored at `seq`.
    pub fn event_at(&self, seq: u64) -> Result<Option<StoredEvent>> {
        let (segments, sealing) = {
            let st = self.inner.state.read();
            if seq >= st.active.first_seq {
                let i = (seq - st.active.first_seq) as usize;
                return Ok((i < st.active.len()).then(|| {
                    let e = st.active.entry(i);
                    StoredEvent { seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: st.active.record(e).to_vec() }
                }));
            }
            (st.segments.clone(), st.sealing.clone())
        };
        if let Some(m) = sealing.iter().find(|m| m.first_seq <= seq && seq < m.end_seq()) {
            let e = m.entry((seq - m.first_seq) as usize);
            return Ok(Some(StoredEvent { seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: m.record(e).to_vec() }));
        }
        let i = segments.partition_point(|s| s.footer.tree_size <= seq);
        let Some(seg) = segments.get(i).filter(|s| s.footer.first_seq <= seq) else { return Ok(None) };
        for b in seg.blocks_for_seqs(seq, seq + 1)? {
            let block = self.inner.cache.get(seg, b)?;
            if let Some(pos) = block.seqs.iter().position(|&s| s == seq) {
                return Ok(Some(StoredEvent {
                    seq,
                    ingest_ms: block.ingest_ms[pos],
                    time_ms: block.time_ms[pos],
                    record: block.record(pos).to_vec(),
                }));
            }
        }
        Ok(None)
    }

    /// An inclusion proof of the event at `seq` against `against` (a
    /// checkpoint this store signed), or against a fresh checkpoint.
    pub fn prove(&self, seq: u64, against: Option<&SignedCheckpoint>) -> Result<InclusionProof> {
        let checkpoint = match against {
            Some(c) => self.check_own(c)?,
            None => self.checkpoint()?.ok_or_else(|| Error::InvalidArgument("the store is empty: there is nothing to prove".into()))?,
        };
        let size = checkpoint.checkpoint.size;
        let min_retained = self.inner.manifest.lock().min_retained_seq;
        if seq < min_retained {
            return Err(Error::Pruned { seq, min_retained });
        }
        if seq >= size {
            return Err(Error::InvalidArgument(format!("seq {seq} is not covered by the checkpoint (tree size {size})")));
        }
        let event = self.event_at(seq)?.ok_or_else(|| Error::InvalidArgument(format!("no event has seq {seq}")))?;
        let mut t = self.inner.tree_reader();
        let path = inclusion_path(&mut t, seq, size)?;
        Ok(InclusionProof { event, path, checkpoint })
    }

    /// A consistency proof from `old` (a checkpoint this store signed) to
    /// `new` (another, or a fresh one).
    pub fn prove_consistency(&self, old: &SignedCheckpoint, new: Option<&SignedCheckpoint>) -> Result<ConsistencyProof> {
        let old = self.check_own(old)?;
        let new = match new {
            Some(c) => self.check_own(c)?,
            None => self.checkpoint()?.ok_or_else(|| Error::InvalidArgument("the store is empty".into()))?,
        };
        let (m, n) = (old.checkpoint.size, new.checkpoint.size);
        if m > n {
            return Err(Error::InvalidArgument(format!("the old checkpoint (size {m}) is newer than the new one (size {n})")));
        }
        let mut t = self.inner.tree_reader();
        let path = consistency_path(&mut t, m, n)?;
        Ok(ConsistencyProof { old, new, path })
    }

    /// Checks that `c` is a checkpoint of this store: its origin, a valid
    /// signature by one of its keys, a size it holds and the same root.
    fn check_own(&self, c: &SignedCheckpoint) -> Result<SignedCheckpoint> {
        let keys = self.inner.keys.lock();
        if c.checkpoint.origin != keys.origin() {
            return Err(Error::InvalidArgument(format!(
                "the checkpoint is of log {:?}, this store is {:?}",
                c.checkpoint.origin,
                keys.origin()
            )));
        }
        c.verify(keys.verifiers())
            .map_err(|e| Error::InvalidArgument(format!("the checkpoint does not verify with this store's keys: {e}")))?;
        drop(keys);
        let root = self.inner.root_at(c.checkpoint.size)?;
        if root != c.checkpoint.root {
            return Err(Error::InvalidArgument(format!(
                "the store's tree at size {} differs from this checkpoint: the store was rewritten since it was signed",
                c.checkpoint.size
            )));
        }
        Ok(c.clone())
    }

    /// Rolls the active segment now (if it holds events) and waits until
    /// every rolled segment is sealed. For tools, benchmarks and tests; the
    /// store rolls by itself on size and age.
    pub fn seal_now(&self) -> Result<()> {
        {
            let mut w = self.inner.writer.lock();
            self.inner.roll(&mut w)?;
        }
        self.inner.wait_sealed()
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

fn mem_events(m: &Memtable) -> Vec<StoredEvent> {
    m.entries()
        .iter()
        .enumerate()
        .map(|(i, e)| StoredEvent { seq: m.first_seq + i as u64, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: m.record(e).to_vec() })
        .collect()
}

fn collect_mem_matches(m: &Memtable, fp: u64, id: &str, out: &mut Vec<StoredEvent>) {
    for ix in m.find_id(fp) {
        let e = m.entry(ix);
        let rec = m.record(e);
        if record_has_id(rec, id) {
            out.push(StoredEvent { seq: m.first_seq + ix as u64, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: rec.to_vec() });
        }
    }
}

/// Confirms a fingerprint match: the record's eventID (or UID) is `id`.
fn record_has_id(rec: &[u8], id: &str) -> bool {
    parse_event(rec, RECORD_BYTES_MAX).ok().and_then(|e| e.event_id).as_deref() == Some(id)
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

    /// A snapshot of the tree for proofs: segments, memtables, and a copy
    /// of the active memtable's leaf hashes.
    fn tree_reader(&self) -> TreeReader<'_> {
        // Manifest before state (the seal and compaction order).
        let min_retained = self.manifest.lock().min_retained_seq;
        let st = self.state.read();
        let active: Vec<Hash> = st.active.entries().iter().map(|e| e.leaf).collect();
        let (segments, sealing, first) = (st.segments.clone(), st.sealing.clone(), st.active.first_seq);
        drop(st);
        TreeReader::new(self.fs.as_ref(), &self.tile_dir, &self.cache, segments, sealing, first, active, min_retained)
    }

    /// The root of the tree at `size` (at most the current size). Sizes
    /// that end a segment or the log are answered from what is recorded
    /// there; others are computed from tiles and at most 255 records.
    fn root_at(&self, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(crate::merkle::empty_root());
        }
        {
            let w = self.writer.lock();
            if w.frontier.size() == size {
                return Ok(w.frontier.root());
            }
        }
        {
            let st = self.state.read();
            let i = st.segments.partition_point(|s| s.footer.tree_size < size);
            if let Some(seg) = st.segments.get(i).filter(|s| s.footer.tree_size == size) {
                return Ok(seg.footer.tree_root);
            }
        }
        let mut t = self.tree_reader();
        if size > t.size {
            return Err(Error::InvalidArgument(format!("tree size {size} is beyond the store's {}", t.size)));
        }
        range_hash(&mut t, 0, size)
    }

    /// On open: the newest signed checkpoint must be signed by one of the
    /// store's keys, and must be a prefix of the log as recovered. Anything
    /// else means events were lost or history was rewritten, and the store
    /// refuses to sign a checkpoint that disagrees with a published one.
    fn check_last_checkpoint(&self) -> Result<()> {
        let h = self.history.lock();
        let Some(last) = h.last().cloned() else { return Ok(()) };
        let path = h.path().to_path_buf();
        drop(h);
        let keys = self.keys.lock();
        if let Err(e) = last.checkpoint.verify(keys.verifiers()) {
            return Err(Error::corruption(&path, 0, format!("the newest checkpoint does not verify with the store's keys: {e}")));
        }
        drop(keys);
        let c = &last.checkpoint.checkpoint;
        let size = self.writer.lock().frontier.size();
        if c.size > size {
            return Err(Error::corruption(
                &path,
                0,
                format!(
                    "a signed checkpoint covers {} events but the log holds {size}: acknowledged events were lost or the store was rolled back; run `cairn verify`",
                    c.size
                ),
            ));
        }
        if self.root_at(c.size)? != c.root {
            return Err(Error::corruption(
                &path,
                0,
                format!("the log's tree at size {} differs from the signed checkpoint: history was rewritten; run `cairn verify`", c.size),
            ));
        }
        Ok(())
    }

    /// Signs and records a checkpoint of (size, root) if it extends the
    /// newest one. The caller guarantees (size, root) is a durable head of
    /// this store's tree; the history lock orders all signers.
    fn checkpoint_head(&self, size: u64, root: Hash) -> Result<Option<SignedCheckpoint>> {
        let mut h = self.history.lock();
        self.sign_locked(&mut h, size, root, false)
    }

    /// Signs (size, root) unless the newest checkpoint already covers it;
    /// `resign` signs an unchanged head again (after a key rotation).
    fn sign_locked(&self, h: &mut History, size: u64, root: Hash, resign: bool) -> Result<Option<SignedCheckpoint>> {
        let newest = h.last().map(|l| l.checkpoint.checkpoint.size);
        if newest.is_some_and(|n| n > size || (n == size && !resign)) {
            return Ok(None);
        }
        let keys = self.keys.lock();
        let c = Checkpoint { origin: keys.origin().to_string(), size, root };
        let note = keys.signer().sign(&c.body()).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        drop(keys);
        let signed = SignedCheckpoint { checkpoint: c, note };
        let entry = HistoryEntry { issued_ms: self.now_ms(), checkpoint: signed.clone() };
        if let Err(e) = h.append(entry) {
            self.set_poison(&e);
            return Err(e);
        }
        *self.last_checkpoint_at.lock() = Instant::now();
        Ok(Some(signed))
    }

    /// Signs the current tree head (made durable first) if it grew, and
    /// returns the newest checkpoint.
    fn checkpoint_now(&self) -> Result<Option<SignedCheckpoint>> {
        let (size, root) = self.durable_head()?;
        let mut h = self.history.lock();
        if size > 0 {
            self.sign_locked(&mut h, size, root, false)?;
        }
        Ok(h.last().map(|e| e.checkpoint.clone()))
    }

    /// The tree head as it is durable now. Takes `writer` alone: a roll
    /// waits for the sealer while holding `writer`, and the sealer takes
    /// `history`, so nothing may hold `history` while it waits for
    /// `writer`. (`sign_locked` refuses a head older than the newest
    /// checkpoint, so a head read before another signer's stays harmless.)
    /// Never called on the sealer thread (see `checkpoint_if_due`).
    fn durable_head(&self) -> Result<(u64, Hash)> {
        let mut w = self.writer.lock();
        if self.opts.durability == Durability::Never && !w.closed && self.poison.lock().is_none() {
            // Sign only what a machine crash cannot take back.
            if let Err(e) = w.wal.sync() {
                self.set_poison(&e);
                return Err(e);
            }
        }
        Ok((w.frontier.size(), w.frontier.root()))
    }

    fn checkpoint_if_due(&self) {
        if self.last_checkpoint_at.lock().elapsed() < self.opts.checkpoint_interval || self.poison.lock().is_some() {
            return;
        }
        // The sealer runs this: it must not wait for `writer`, whose holder
        // may be a roll waiting for the sealer. Busy writer: next tick.
        let head = {
            let Some(mut w) = self.writer.try_lock() else { return };
            if self.opts.durability == Durability::Never && !w.closed {
                if let Err(e) = w.wal.sync() {
                    self.set_poison(&e);
                    return;
                }
            }
            (w.frontier.size(), w.frontier.root())
        };
        if head.0 > 0 {
            // A failure poisoned the writer already (set in sign_locked).
            let _ = self.checkpoint_head(head.0, head.1);
        }
        *self.last_checkpoint_at.lock() = Instant::now();
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

    /// Validates records and encodes the accepted ones as a WAL frame body,
    /// and looks for exact re-sends among sealed events, on the caller's
    /// thread (so concurrent appenders parse, hash and probe in parallel;
    /// the leader only checks what is newer, copies and writes).
    fn prepare(&self, records: &[&[u8]]) -> (Request, Vec<Outcome>) {
        let ingest_ms = self.now_ms();
        let segments = self.state.read().segments.clone();
        let sealed_checked = segments.last().map_or(0, |s| s.footer.tree_size);
        let mut outcomes = Vec::with_capacity(records.len());
        let mut events = Vec::with_capacity(records.len());
        let cap: usize = records.iter().map(|r| r.len() + ENTRY_FIXED_BYTES).sum();
        // Room for the tallies' strings that are not in the records (most
        // are): a grown body would keep twice its size in the memtable.
        let mut body = Vec::with_capacity(cap + records.len() * 16);
        let mut term_text = String::new();
        let mut term_items = Vec::new();
        for rec in records {
            match parse_event(rec, self.opts.record_bytes_max) {
                Ok(ev) => {
                    let leaf = leaf_hash(ingest_ms, rec);
                    body.extend_from_slice(&ingest_ms.to_le_bytes());
                    body.extend_from_slice(&ev.time_ms.to_le_bytes());
                    body.extend_from_slice(&(rec.len() as u32).to_le_bytes());
                    body.extend_from_slice(&leaf);
                    let at = body.len();
                    body.extend_from_slice(rec);
                    let first_term = term_items.len();
                    for (a, v) in terms(&ev) {
                        term_items.push((a, term_text.len() as u32, v.len() as u32));
                        term_text.push_str(&v);
                    }
                    let id_fp = ev.event_id.as_deref().map(|id| id_fingerprint(id.as_bytes()));
                    let dup = id_fp.and_then(|fp| self.find_sealed(&segments, fp, ev.time_ms, rec, 0));
                    // A duplicate found here is never stored, nor counted.
                    let tally = match (self.opts.insights_counters && dup.is_none(), Tally::of(&ev)) {
                        (true, Some(t)) => t.try_map(|v| Some(span_in_chunk(v, rec, at, &mut body))),
                        _ => None,
                    };
                    events.push(Prepared {
                        meta: EventMeta { ingest_ms, time_ms: ev.time_ms, leaf, id_fp },
                        at,
                        len: rec.len(),
                        terms: first_term..term_items.len(),
                        dup,
                        tally,
                    });
                    outcomes.push(Outcome::Stored(0));
                }
                Err(r) => outcomes.push(Outcome::Rejected(r)),
            }
        }
        if body.capacity() - body.len() > body.len() / 8 {
            body.shrink_to_fit();
        }
        let req = Request { body: Arc::new(body), events, term_text, term_items, sealed_checked, done: Mutex::new(None) };
        (req, outcomes)
    }

    /// Queues a prepared request and returns its first seq once durable.
    /// Leader/follower group commit: whoever finds no leader becomes one,
    /// takes every queued request, writes them as one frame with one
    /// fdatasync, and wakes the others.
    fn commit(&self, req: Request) -> Result<Vec<(u64, bool)>> {
        let req = Arc::new(req);
        let mut q = self.queue.lock();
        q.pending.push(req.clone());
        loop {
            if let Some(done) = req.done.lock().take() {
                return done.map_err(Error::Poisoned);
            }
            if q.leader_active {
                self.queue_cv.wait(&mut q);
                continue;
            }
            q.leader_active = true;
            let group = take_group(&mut q.pending, self.opts.durability);
            drop(q);
            let result = self.write_group(&group);
            match result {
                Ok(per_request) => {
                    for (r, seqs) in group.iter().zip(per_request) {
                        *r.done.lock() = Some(Ok(seqs));
                    }
                }
                Err(e) => {
                    for r in &group {
                        *r.done.lock() = Some(Err(e.to_string()));
                    }
                }
            }
            q = self.queue.lock();
            q.leader_active = false;
            self.queue_cv.notify_all();
        }
    }

    /// Writes one commit group: one frame, one write, one fdatasync (per
    /// policy). Events already stored with identical bytes (same eventID)
    /// are dropped from the frame and reported as duplicates. Any write or
    /// fsync failure poisons the writer.
    fn write_group(&self, group: &[Arc<Request>]) -> Result<Vec<Vec<(u64, bool)>>> {
        let mut w = self.writer.lock();
        if w.closed {
            return Err(Error::Closed);
        }
        self.check_poison()?;
        let first_seq = w.next_seq;
        // Decide each event's fate: a new seq, or an existing one.
        let mut fates: Vec<Vec<(u64, bool)>> = Vec::with_capacity(group.len());
        let mut keep: Vec<(usize, usize)> = Vec::new();
        {
            let st = self.state.read();
            let mut in_group: HashMap<u64, Vec<(usize, usize, u64)>, foldhash::fast::RandomState> = HashMap::default();
            let mut next = first_seq;
            for (ri, r) in group.iter().enumerate() {
                let mut f = Vec::with_capacity(r.events.len());
                for (ei, p) in r.events.iter().enumerate() {
                    let rec = r.record(p);
                    let dup = p.dup.or_else(|| {
                        let fp = p.meta.id_fp?;
                        in_group
                            .get(&fp)
                            .and_then(|v| v.iter().find(|(gr, ge, _)| group[*gr].record(&group[*gr].events[*ge]) == rec))
                            .map(|x| x.2)
                            .or_else(|| self.find_unsealed(&st, fp, rec))
                            .or_else(|| self.find_sealed(&st.segments, fp, p.meta.time_ms, rec, r.sealed_checked))
                    });
                    match dup {
                        Some(seq) => f.push((seq, true)),
                        None => {
                            if let Some(fp) = p.meta.id_fp {
                                in_group.entry(fp).or_default().push((ri, ei, next));
                            }
                            f.push((next, false));
                            keep.push((ri, ei));
                            next += 1;
                        }
                    }
                }
                fates.push(f);
            }
        }
        if keep.is_empty() {
            return Ok(fates);
        }
        let count = keep.len();
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        buf.resize(FRAME_HEADER_BYTES, 0);
        for &(ri, ei) in &keep {
            let p = &group[ri].events[ei];
            buf.extend_from_slice(&group[ri].body[p.at - ENTRY_FIXED_BYTES..p.at + p.len]);
        }
        let body_len = buf.len() - FRAME_HEADER_BYTES;
        let crc = crc32fast::hash(&buf[FRAME_HEADER_BYTES..]);
        let header = wal::encode_frame_header(body_len as u32, first_seq, count as u32, crc);
        buf[..FRAME_HEADER_BYTES].copy_from_slice(&header);
        let written = w.wal.write(&buf).and_then(|()| match self.opts.durability {
            Durability::Never => Ok(()),
            _ => w.wal.sync(),
        });
        w.buf = buf;
        if let Err(e) = written {
            self.set_poison(&e);
            return Err(e);
        }
        // Durable: make the events visible and extend the tree.
        {
            let mut st = self.state.write();
            let WriterState { frontier, .. } = &mut *w;
            let active = &mut st.active;
            for &(ri, ei) in &keep {
                let r = &group[ri];
                let p = &r.events[ei];
                frontier.push(p.meta.leaf, |level, index, h| active.tile_nodes.push((level, index, h)));
                let chunk = active.add_chunk(&r.body);
                active.push(p.meta, chunk, p.at, p.len, r.terms(p));
                if let Some(t) = p.tally {
                    active.add_tally(chunk, t);
                }
            }
        }
        w.next_seq += count as u64;
        let age_ms = self.now_ms().saturating_sub(w.wal.created_ms);
        if w.wal.len >= self.opts.segment_bytes || age_ms >= self.opts.segment_age.as_millis() as u64 {
            self.roll(&mut w)?;
        }
        Ok(fates)
    }

    /// The seq of an unsealed event with this id fingerprint and exactly
    /// these bytes, if any.
    fn find_unsealed(&self, st: &ReadState, fp: u64, rec: &[u8]) -> Option<u64> {
        for m in std::iter::once(&st.active).chain(st.sealing.iter().map(|m| m.as_ref())) {
            for ix in m.find_id(fp) {
                if m.record(m.entry(ix)) == rec {
                    return Some(m.first_seq + ix as u64);
                }
            }
        }
        None
    }

    /// The seq of a sealed event at or above `from_seq` with this id
    /// fingerprint and exactly these bytes, if any. Segments are pruned by
    /// time: a re-sent record has the same eventTime, so only segments whose
    /// span holds it can match.
    fn find_sealed(&self, segments: &SegmentSet, fp: u64, time_ms: i64, rec: &[u8], from_seq: u64) -> Option<u64> {
        for seg in segments.at_time(time_ms).filter(|s| s.footer.tree_size > from_seq) {
            // An unreadable segment cannot prove a duplicate: store the event.
            let Ok(ords) = seg.find_id(fp) else { continue };
            for ord in ords {
                let Some((b, i)) = seg.locate(ord) else { continue };
                let Ok(block) = self.cache.get(seg, b) else { continue };
                if block.record(i) == rec {
                    return Some(block.seqs[i]);
                }
            }
        }
        None
    }

    /// A consistent view for a query: sealed segments, sealing memtables,
    /// and the active memtable's matches (copied under the lock, at most
    /// `limit`). `bound` pins the snapshot of an earlier page.
    fn snapshot(&self, q: &Query, bound: Option<u64>, order: Order, cursor: Option<(i64, u64)>, limit: usize) -> Snapshot {
        let st = self.state.read();
        let bound = bound.unwrap_or_else(|| st.active.end_seq());
        let active = query::memtable_events(&st.active, q, bound, order == Order::NewestFirst, cursor, limit);
        Snapshot { segments: st.segments.clone(), memtables: st.sealing.clone(), active, bound, limit }
    }

    /// Rolls the active segment: fsyncs its WAL, starts a new WAL at the
    /// next seq, and hands the memtable to the sealer. Blocks while too many
    /// seals are pending (backpressure).
    fn roll(&self, w: &mut WriterState) -> Result<()> {
        if w.closed {
            return Err(Error::Closed);
        }
        self.check_poison()?;
        if self.state.read().active.is_empty() {
            return Ok(());
        }
        {
            let mut s = self.seals.lock();
            while s.jobs.len() >= SEALS_PENDING_MAX && self.poison.lock().is_none() {
                self.seals_cv.wait(&mut s);
            }
        }
        self.check_poison()?;
        let step = w.wal.sync().and_then(|()| WalWriter::create(self.fs.as_ref(), &self.wal_dir, w.next_seq, self.now_ms()));
        let new_wal = match step {
            Ok(n) => n,
            Err(e) => {
                self.set_poison(&e);
                return Err(e);
            }
        };
        let old_wal = std::mem::replace(&mut w.wal, new_wal);
        let mem = {
            let mut st = self.state.write();
            let mem = Arc::new(std::mem::replace(&mut st.active, Memtable::new(w.next_seq)));
            st.sealing.push(mem.clone());
            mem
        };
        let mut s = self.seals.lock();
        s.jobs.push_back(SealJob { mem, frontier: w.frontier.clone(), wal_path: old_wal.path.clone() });
        self.seals_cv.notify_all();
        Ok(())
    }

    /// Whether the sealer may split the next block into fields. A seal
    /// splits every block (it encodes blocks on every core, and splitting
    /// costs about a fifth more CPU than keeping records whole) unless the
    /// seal queue is full, that is, unless the writer's next roll would
    /// wait for it: then it keeps records whole, faster, until it has
    /// caught up. Compaction splits what was kept whole.
    fn seal_may_split(&self) -> bool {
        self.seals.lock().jobs.len() < SEALS_PENDING_MAX
    }

    /// Waits until the seal queue is empty and idle.
    fn wait_sealed(&self) -> Result<()> {
        let mut s = self.seals.lock();
        while (!s.jobs.is_empty() || s.busy) && self.poison.lock().is_none() {
            self.seals_cv.wait(&mut s);
        }
        drop(s);
        self.check_poison()
    }

    fn sealer_loop(&self) {
        loop {
            let job = {
                let mut s = self.seals.lock();
                loop {
                    if let Some(j) = s.jobs.pop_front() {
                        s.busy = true;
                        break Some(j);
                    }
                    if s.shutdown {
                        break None;
                    }
                    let timeout = self.opts.segment_age.min(self.opts.checkpoint_interval).min(Duration::from_secs(1));
                    if self.seals_cv.wait_for(&mut s, timeout).timed_out() {
                        drop(s);
                        self.roll_if_aged();
                        self.checkpoint_if_due();
                        s = self.seals.lock();
                    }
                }
            };
            let Some(job) = job else { return };
            if self.poison.lock().is_none() {
                // A panic here would be a bug; it poisons the writer with
                // its message rather than leave writers waiting for a
                // sealer that is gone.
                let sealed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.seal(&job).and_then(|()| {
                        self.checkpoint_head(job.frontier.size(), job.frontier.root())?;
                        self.checkpoint_if_due();
                        Ok(())
                    })
                }));
                match sealed {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => self.set_poison(&e),
                    Err(p) => {
                        let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
                        self.poison.lock().get_or_insert(format!("the sealer panicked: {}", what.unwrap_or_else(|| "no message".into())));
                    }
                }
            }
            let mut s = self.seals.lock();
            s.busy = false;
            self.seals_cv.notify_all();
        }
    }

    /// Rewrites one run of adjacent segments as one (steps in `compact`).
    /// Returns the new file's size.
    fn compact_run(&self, sources: &[Arc<Segment>], build: &BuildOptions, max_bytes_per_sec: u64) -> Result<u64> {
        let fs = self.fs.as_ref();
        let first = sources[0].footer.first_seq;
        let gen = {
            let m = self.manifest.lock();
            m.segments.iter().filter(|e| e.first_seq == first).map(|e| e.file_gen).max().unwrap_or(0) + 1
        };
        let name = segment_file_name(first, gen);
        let path = self.seg_dir.join(&name);
        let tmp = self.seg_dir.join(format!("{name}.tmp"));
        let merged = match compact::merge_run(fs, tmp.clone(), sources, build, max_bytes_per_sec) {
            Ok(m) => m,
            Err(e) => {
                let _ = fs.remove_file(&tmp);
                return Err(e);
            }
        };
        fs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        fs.sync_dir(&self.seg_dir).map_err(|e| Error::io("fsync directory", &self.seg_dir, e))?;
        let fail = |e: Error| {
            let _ = fs.remove_file(&path);
            e
        };
        let seg = Arc::new(Segment::open_in(&path, &self.ids).map_err(fail)?);
        compact::check_written(&seg, &merged.expected_root).map_err(fail)?;
        {
            let mut current = self.manifest.lock();
            let at = current.segments.iter().position(|e| e.first_seq == first && e.footer_hash == sources[0].hash);
            let still = at.is_some_and(|i| {
                current.segments.len() >= i + sources.len()
                    && current.segments[i..i + sources.len()].iter().zip(sources).all(|(e, s)| e.footer_hash == s.hash)
            });
            let Some(i) = at.filter(|_| still) else {
                // Retention removed some of the run meanwhile: drop the work.
                drop(current);
                return Err(fail(Error::InvalidArgument("the segments being compacted changed meanwhile; nothing was replaced".into())));
            };
            let old_files: Vec<PathBuf> = current.segments[i..i + sources.len()]
                .iter()
                .map(|e| self.seg_dir.join(segment_file_name(e.first_seq, e.file_gen)))
                .collect();
            let mut manifest = current.clone();
            manifest.generation += 1;
            manifest.segments.splice(
                i..i + sources.len(),
                [SegmentEntry {
                    first_seq: first,
                    count: seg.footer.count,
                    file_bytes: merged.file_bytes,
                    footer_hash: seg.hash,
                    file_gen: gen,
                }],
            );
            manifest.store(fs, &self.dir).inspect_err(|e| self.set_poison(e))?;
            *current = manifest;
            let mut st = self.state.write();
            let list: Vec<Arc<Segment>> = st.segments.iter().filter(|s| !sources.iter().any(|x| Arc::ptr_eq(x, s))).cloned().collect();
            let pos = list.partition_point(|s| s.footer.first_seq < first);
            let mut list = list;
            list.insert(pos, seg);
            st.segments = Arc::new(SegmentSet::new(list));
            drop(st);
            drop(current);
            for p in old_files {
                // Unlisted now; readers holding them keep their open files.
                let _ = fs.remove_file(&p);
            }
            let _ = fs.sync_dir(&self.seg_dir);
        }
        Ok(merged.file_bytes)
    }

    /// Removes `removed` (the oldest segments, in order): writes the
    /// boundary leaves, then the manifest without them, then deletes them.
    fn cut(&self, removed: &[Arc<Segment>], cutoff_ms: i64, policy: Duration) -> Result<()> {
        let fs = self.fs.as_ref();
        let cut = removed.last().map_or(0, |s| s.footer.tree_size);
        let group = cut / SEQ_GROUP;
        if !cut.is_multiple_of(SEQ_GROUP) {
            // The seq group the cut runs through keeps its leaves, so the
            // inclusion proofs of the events after the cut still compute.
            let mut t = self.tree_reader();
            let leaves: Vec<Hash> = (group * SEQ_GROUP..cut).map(|s| t.leaf(s)).collect::<Result<_>>()?;
            drop(t);
            tiles::write_leaf_tile(fs, &self.tile_dir, group, &leaves)?;
        }
        let mut current = self.manifest.lock();
        let listed = current.segments.len() >= removed.len()
            && current.segments.iter().zip(removed).all(|(e, s)| e.first_seq == s.footer.first_seq && e.footer_hash == s.hash);
        if !listed {
            return Err(Error::InvalidArgument("the oldest segments changed meanwhile; nothing was removed".into()));
        }
        let files: Vec<PathBuf> =
            current.segments[..removed.len()].iter().map(|e| self.seg_dir.join(segment_file_name(e.first_seq, e.file_gen))).collect();
        let mut manifest = current.clone();
        manifest.generation += 1;
        manifest.segments.drain(..removed.len());
        manifest.min_retained_seq = cut;
        manifest.cut_time_ms = cutoff_ms;
        manifest.cut_policy_ms = u64::try_from(policy.as_millis()).unwrap_or(u64::MAX);
        manifest.store(fs, &self.dir).inspect_err(|e| self.set_poison(e))?;
        *current = manifest;
        {
            let mut st = self.state.write();
            let list: Vec<Arc<Segment>> = st.segments.iter().filter(|s| !removed.iter().any(|r| Arc::ptr_eq(r, s))).cloned().collect();
            st.segments = Arc::new(SegmentSet::new(list));
        }
        drop(current);
        for p in files {
            let _ = fs.remove_file(&p);
        }
        let _ = fs.sync_dir(&self.seg_dir);
        Ok(())
    }

    fn roll_if_aged(&self) {
        let Some(mut w) = self.writer.try_lock() else { return };
        // Called by the sealer: a roll that had to wait for a free seal slot
        // would wait for the sealer itself. Only rolls push jobs, and they
        // need `writer`, which is held here, so this check stays true.
        if w.closed || self.seals.lock().jobs.len() >= SEALS_PENDING_MAX {
            return;
        }
        let age_ms = self.now_ms().saturating_sub(w.wal.created_ms);
        if age_ms >= self.opts.segment_age.as_millis() as u64 {
            let _ = self.roll(&mut w);
        }
    }

    /// Seals one rolled memtable: writes the segment (temp, fsync, rename,
    /// fsync dir), its tiles, then the manifest that lists it; only then is
    /// its WAL deleted. A crash at any point leaves either the old state
    /// (WAL replayed, leftovers deleted on open) or the new one.
    fn seal(&self, job: &SealJob) -> Result<()> {
        // A compacted last segment links on with the hash of what it replaced.
        let prev_hash = self.state.read().segments.last().map(|s| s.footer.link_hash()).unwrap_or([0; 32]);
        let (bytes, footer) = build_segment(&SealInput {
            mem: &job.mem,
            prev_segment_hash: prev_hash,
            frontier_at_end: &job.frontier,
            zstd_level: self.opts.zstd_level,
            block_bytes: self.opts.block_bytes,
            counters: self.opts.insights_counters,
            split_blocks: &|| self.seal_may_split(),
        })?;
        let name = segment_file_name(footer.first_seq, 0);
        let path = self.seg_dir.join(&name);
        let tmp = self.seg_dir.join(format!("{name}.tmp"));
        let fs = self.fs.as_ref();
        let mut f = fs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&bytes).map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
        drop(f);
        fs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        fs.sync_dir(&self.seg_dir).map_err(|e| Error::io("fsync directory", &self.seg_dir, e))?;
        let superseded = tiles::write_nodes(fs, &self.tile_dir, &job.mem.tile_nodes)?;
        let segment = Arc::new(Segment::open_in(&path, &self.ids)?);
        {
            // Held from read to replace: compaction and retention swap the
            // manifest too (lock order: manifest, then state).
            let mut current = self.manifest.lock();
            let mut manifest = current.clone();
            manifest.generation += 1;
            manifest.sealed_size = footer.tree_size;
            manifest.segments.push(SegmentEntry {
                first_seq: footer.first_seq,
                count: footer.count,
                file_bytes: bytes.len() as u64,
                footer_hash: segment.hash,
                file_gen: 0,
            });
            manifest.store(fs, &self.dir)?;
            *current = manifest;
            let mut st = self.state.write();
            make_id_filter_room(&self.ids, &st.segments, segment.id_filter_bytes());
            Arc::make_mut(&mut st.segments).push(segment);
            st.sealing.retain(|m| !Arc::ptr_eq(m, &job.mem));
        }
        fs.remove_file(&job.wal_path).map_err(|e| Error::io("remove", &job.wal_path, e))?;
        fs.sync_dir(&self.wal_dir).map_err(|e| Error::io("fsync directory", &self.wal_dir, e))?;
        for p in superseded {
            // Unreferenced once the manifest moved on; a failure only leaves
            // a small stale file behind.
            let _ = fs.remove_file(&p);
        }
        Ok(())
    }
}

/// Drops the id filters of the oldest segments until `need` more bytes fit
/// the budget: duplicate checks of new events and lookups of recent ids
/// hit the newest segments.
fn make_id_filter_room(budget: &IdBudget, segments: &[Arc<Segment>], need: usize) {
    for seg in segments {
        if budget.used_bytes().saturating_add(need) <= budget.limit_bytes() {
            return;
        }
        seg.drop_id_filter();
    }
}

/// Takes the requests for one commit group: all of them under `Batch` and
/// `Never` (up to `GROUP_BYTES_MAX`), one under `Always`.
fn take_group(pending: &mut Vec<Arc<Request>>, durability: Durability) -> Vec<Arc<Request>> {
    if durability == Durability::Always {
        return vec![pending.remove(0)];
    }
    let mut bytes = 0;
    let mut n = 0;
    while n < pending.len() && (n == 0 || bytes + pending[n].body.len() <= GROUP_BYTES_MAX) {
        bytes += pending[n].body.len();
        n += 1;
    }
    pending.drain(..n).collect()
}

/// What recovery hands to `open`.
struct Recovered {
    manifest: Manifest,
    segments: Vec<Arc<Segment>>,
    frontier: Frontier,
    seal_jobs: Vec<SealJob>,
    active: Memtable,
    wal: WalWriter,
    next_seq: u64,
}

fn recover(fs: &dyn FileSystem, opts: &Options, wal_dir: &Path, seg_dir: &Path, ids: &Arc<IdBudget>) -> Result<Recovered> {
    let dir = wal_dir.parent().unwrap_or(wal_dir);
    let manifest = Manifest::load(fs, dir)?.unwrap_or_default();
    let (segments, mut frontier) = open_segments(fs, seg_dir, &manifest, ids)?;
    remove_leftovers(fs, seg_dir, &manifest)?;

    let mut wals: Vec<(u64, PathBuf)> = Vec::new();
    for p in fs.list_dir(wal_dir).map_err(|e| Error::io("list", wal_dir, e))? {
        let Some(first) = p.file_name().and_then(|n| n.to_str()).and_then(parse_wal_file_name) else { continue };
        if first < manifest.sealed_size {
            // Already sealed and listed; its deletion was interrupted.
            fs.remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
        } else {
            wals.push((first, p));
        }
    }
    wals.sort();

    let mut next_seq = manifest.sealed_size;
    let mut seal_jobs = Vec::new();
    let mut last: Option<(Memtable, WalWriter)> = None;
    let n = wals.len();
    for (i, (first, path)) in wals.into_iter().enumerate() {
        if first != next_seq {
            return Err(Error::corruption(
                &path,
                0,
                format!("WAL starts at seq {first}, but the log continues at seq {next_seq}: a WAL file is missing"),
            ));
        }
        let bytes = fs.read(&path).map_err(|e| Error::io("read", &path, e))?;
        let is_newest = i + 1 == n;
        if is_newest && bytes.len() < wal::WAL_HEADER_BYTES {
            // A crash while creating the WAL at a roll: the header was never
            // made durable, so no frame can follow it. Start it again.
            fs.remove_file(&path).map_err(|e| Error::io("remove torn", &path, e))?;
            continue;
        }
        let contents = read_wal(&path, &bytes, is_newest)?;
        if contents.first_seq != first {
            return Err(Error::corruption(
                &path,
                16,
                format!("header says first seq {} but the file name says {first}", contents.first_seq),
            ));
        }
        if contents.torn_bytes > 0 {
            fs.truncate(&path, contents.valid_len).map_err(|e| Error::io("truncate torn tail of", &path, e))?;
        }
        let mut mem = Memtable::new(first);
        let mut scratch = SeriesKey::default();
        let chunk: Chunk = Arc::new(bytes);
        let c = mem.add_chunk(&chunk);
        for e in &contents.entries {
            let rec = &chunk[e.record.clone()];
            // Stored records were valid when accepted; re-derive their index
            // terms (a record this build no longer accepts keeps no terms).
            let parsed = parse_event(rec, RECORD_BYTES_MAX).ok();
            let id_fp = parsed.as_ref().and_then(|ev| ev.event_id.as_deref().map(|id| id_fingerprint(id.as_bytes())));
            let ts = parsed.as_ref().map(terms).unwrap_or_default();
            if let (Some(ev), true) = (&parsed, opts.insights_counters) {
                mem.counters.count(ev, &mut scratch);
            }
            frontier.push(e.leaf, |level, index, h| mem.tile_nodes.push((level, index, h)));
            let meta = EventMeta { ingest_ms: e.ingest_ms, time_ms: e.time_ms, leaf: e.leaf, id_fp };
            mem.push(meta, c, e.record.start, e.record.len(), ts.iter().map(|(a, v)| (*a, v.as_ref())));
        }
        next_seq = mem.end_seq();
        let created_ms = u64::from_le_bytes(chunk.get(24..32).and_then(|b| b.try_into().ok()).unwrap_or_default());
        if is_newest {
            let wal = WalWriter::reopen(fs, &path, first, contents.valid_len, created_ms)?;
            last = Some((mem, wal));
        } else if mem.is_empty() {
            fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        } else {
            seal_jobs.push(SealJob { mem: Arc::new(mem), frontier: frontier.clone(), wal_path: path });
        }
    }
    let (active, wal) = match last {
        Some(x) => x,
        None => {
            (Memtable::new(next_seq), WalWriter::create(fs, wal_dir, next_seq, opts.clock.as_ref().map_or_else(system_now_ms, |c| c()))?)
        }
    };
    Ok(Recovered { manifest, segments, frontier, seal_jobs, active, wal, next_seq })
}

/// Opens every listed segment and checks the chain: contiguous seqs, file
/// sizes, footer hashes, each footer's link to the previous one, and the
/// last frontier against its recorded root.
fn open_segments(fs: &dyn FileSystem, seg_dir: &Path, manifest: &Manifest, ids: &Arc<IdBudget>) -> Result<(Vec<Arc<Segment>>, Frontier)> {
    let mut segments = Vec::with_capacity(manifest.segments.len());
    let mut expect_seq = manifest.min_retained_seq;
    let mut prev_hash: Option<Hash> = (expect_seq == 0).then_some([0; 32]);
    for entry in &manifest.segments {
        let path = seg_dir.join(segment_file_name(entry.first_seq, entry.file_gen));
        let seg = Segment::open_in(&path, ids)?;
        let f = &seg.footer;
        let what = if seg.file_bytes() != entry.file_bytes {
            Some(format!("file is {} bytes, the manifest says {}", seg.file_bytes(), entry.file_bytes))
        } else if seg.hash != entry.footer_hash {
            Some("footer hash differs from the manifest's (the segment was replaced or rewritten)".to_string())
        } else if f.first_seq != expect_seq || f.first_seq != entry.first_seq || f.count != entry.count {
            Some(format!("holds seqs {}..{}, expected to start at {expect_seq}", f.first_seq, f.tree_size))
        } else if prev_hash.is_some_and(|h| h != f.prev_segment_hash) {
            Some("previous-segment hash does not match the preceding segment (broken hash chain)".to_string())
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::corruption(&path, seg.file_bytes().saturating_sub(crate::segment::FOOTER_BYTES as u64), what));
        }
        expect_seq = f.tree_size;
        prev_hash = Some(seg.footer.link_hash());
        segments.push(Arc::new(seg));
    }
    if expect_seq != manifest.sealed_size && !manifest.segments.is_empty() {
        return Err(Error::corruption(seg_dir, 0, format!("segments end at seq {expect_seq}, the manifest says {}", manifest.sealed_size)));
    }
    let frontier = match segments.last() {
        Some(seg) => {
            let f = seg.frontier()?;
            if f.root() != seg.footer.tree_root {
                return Err(Error::corruption(&seg.path, seg.footer.frontier.offset, "frontier does not hash to the recorded tree root"));
            }
            f
        }
        None if manifest.sealed_size == 0 => Frontier::new(),
        None if manifest.min_retained_seq == manifest.sealed_size => {
            // Retention removed every sealed segment: the tree's right edge
            // is in the tiles (and the boundary leaf tile).
            let cache = BlockCache::new(0);
            let dir = seg_dir.parent().unwrap_or(seg_dir).join(TILE_DIR);
            let mut t = TreeReader::new(
                fs,
                &dir,
                &cache,
                Arc::new(SegmentSet::default()),
                Vec::new(),
                manifest.sealed_size,
                Vec::new(),
                manifest.sealed_size,
            );
            t.frontier_at(manifest.sealed_size)?
        }
        None => return Err(Error::corruption(seg_dir, 0, "the manifest records sealed events but lists no segments")),
    };
    Ok((segments, frontier))
}

/// Deletes what an interrupted seal left: temp files and segments the
/// manifest does not list.
fn remove_leftovers(fs: &dyn FileSystem, seg_dir: &Path, manifest: &Manifest) -> Result<()> {
    let listed: std::collections::HashSet<(u64, u32)> = manifest.segments.iter().map(|s| (s.first_seq, s.file_gen)).collect();
    for p in fs.list_dir(seg_dir).map_err(|e| Error::io("list", seg_dir, e))? {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let stale = name.ends_with(".tmp") || parse_segment_file_name(&name).is_some_and(|s| !listed.contains(&s));
        if stale {
            fs.remove_file(&p).map_err(|e| Error::io("remove leftover", &p, e))?;
        }
    }
    let _ = fs.remove_file(&seg_dir.parent().unwrap_or(seg_dir).join(crate::manifest::MANIFEST_TMP_FILE));
    Ok(())
}
