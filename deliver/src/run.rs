//! The delivery loop: exactly-once, crash-safe delivery of a store's
//! events as CloudTrail log files, and of signed digests chaining them.
//!
//! The cursor (`delivery/state.json` in the data directory, replaced
//! atomically) says which seqs are delivered. A round:
//!
//! 1. **Plan**: the events `[next_seq, to)`, all durable, are grouped into
//!    log files per stream (account, region); `(from, to, time)` is written
//!    to the cursor as `pending` *before* any upload.
//! 2. **Upload** every file; names and bytes follow from `(from, to, time)`
//!    alone, so a round redone after a crash writes the same objects
//!    under the same names (an overwrite with identical bytes).
//! 3. **Commit**: the cursor moves to `to` and lists the files for the
//!    current digest window, only after the object store acknowledged all.
//!
//! At the end of each digest window (hourly by default) every stream gets
//! a digest listing its files of the window (empty ones too), chained to
//! its previous digest and signed SHA256withRSA with the store's digest
//! key; the cursor records the new chain heads after all are uploaded.
//! A retention hold (`holds/deliver`) keeps every undelivered segment.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_engine::event::format_event_time;
use cairn_engine::Store;
use flate2::write::GzEncoder;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::format::{self, DigestFile, LogFileEntry, HASH_ALGORITHM};
use crate::target::{Put, Sink};

/// The retention hold delivery keeps at its cursor.
pub const HOLD_NAME: &str = "deliver";
const STATE_DIR: &str = "delivery";
const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;
/// More elapsed digest windows than this (a node down for a week at the
/// hourly default) start a new chain instead of that many empty digests:
/// validate-logs then reports the gap, which is the truth.
const CHAIN_GAP_WINDOWS: i64 = 168;
/// The nice value of delivery's threads: delivery yields to ingest and
/// catches up in the CPU time ingest leaves (alone on the machine it runs
/// as fast). At nice 10 (the engine's background work) its several
/// threads took enough of two busy cores to cost ingest 13-16% in
/// `cairn bench-deliver`; at 19, 5-8%, and the backlog is delivered as
/// soon after all.
const DELIVERY_NICE: i32 = 19;
/// How far the wall clock may be behind the open window's start before
/// delivery stops and says so.
const CLOCK_SLACK_MS: i64 = 60_000;

/// What delivery does, beyond where.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    /// The trail name in digest file names and the trail ARN.
    pub trail: String,
    /// The trail's home region (the last region in digest names).
    pub home_region: String,
    /// A round of log files at most this often (CloudTrail: about 5 min).
    pub file_interval: Duration,
    /// One digest per stream per window (CloudTrail: 1 hour).
    pub digest_interval: Duration,
    /// At most this many events, and raw bytes, per round (bounds memory:
    /// a round's objects are held until they are uploaded, and the next
    /// round may be built meanwhile: two rounds at most).
    pub round_events_max: u64,
    pub round_bytes_max: u64,
    /// A log file is cut at this many uncompressed bytes.
    pub file_bytes_max: u64,
    /// gzip level, 0-9.
    pub gzip_level: u32,
    /// Also write each round's events as Parquet (crate::parquet).
    pub parquet: bool,
    /// The cursor's file name in `delivery/`: cairnd's is `state.json`;
    /// each one-off `cairn deliver` has its own.
    pub cursor: String,
    /// The retention hold kept at the cursor (`None`: no hold).
    pub hold: Option<String>,
    /// Deliver only events whose eventTime is in `[start, end]` (unix
    /// ms); the others are passed over with their seqs.
    pub time_range: Option<(i64, i64)>,
    /// Merge small Parquet files of quiet partitions (crate::compact),
    /// once per digest window and when a one-off finishes.
    pub compact: Option<crate::compact::CompactSettings>,
}

impl Default for DeliverOptions {
    fn default() -> Self {
        DeliverOptions {
            trail: "cairn".into(),
            home_region: "us-east-1".into(),
            file_interval: Duration::from_secs(300),
            digest_interval: Duration::from_secs(3600),
            round_events_max: 200_000,
            round_bytes_max: 256 << 20,
            file_bytes_max: 128 << 20,
            gzip_level: 1,
            parquet: true,
            cursor: STATE_FILE.into(),
            hold: Some(HOLD_NAME.into()),
            time_range: None,
            compact: Some(crate::compact::CompactSettings::default()),
        }
    }
}

/// A round written to the cursor before its upload, with every setting
/// its objects depend on, so that a restart with other settings still
/// rebuilds the same objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    from: u64,
    to: u64,
    time_ms: i64,
    settings: RoundSettings,
}

/// What a round's objects depend on besides its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RoundSettings {
    parquet: bool,
    file_bytes_max: u64,
    round_bytes_max: u64,
    gzip_level: u32,
    time_range: Option<(i64, i64)>,
}

/// A stream's newest digest: what the next one chains to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ChainHead {
    key: String,
    hash: String,
    signature: String,
}

/// A log file delivered in the current digest window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct WindowFile {
    stream: String,
    entry: LogFileEntry,
}

/// The durable cursor (docs/FORMAT.md, "Delivery cursors").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    version: u32,
    target: String,
    /// Every seq below this is delivered.
    next_seq: u64,
    pending: Option<Pending>,
    window_start_ms: i64,
    window_files: Vec<WindowFile>,
    /// Every stream ("account/region") ever delivered, and its chain head
    /// (`None` until its first digest, and after a chain gap).
    streams: BTreeMap<String, Option<ChainHead>>,
    delivered_events: u64,
    delivered_files: u64,
    digest_files: u64,
    last_delivery_ms: Option<i64>,
    last_digest_ms: Option<i64>,
    last_digest_key: Option<String>,
    /// The eventTime range this cursor delivers (a one-off's, resolved
    /// once when it was created, so that a resumed run keeps it).
    #[serde(default)]
    time_range: Option<(i64, i64)>,
}

/// What delivery reports (GetTrailStatus, `cairn stats`, logs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryStatus {
    pub target: String,
    pub next_seq: u64,
    /// Durable events not delivered yet.
    pub backlog_events: u64,
    pub delivered_events: u64,
    pub delivered_files: u64,
    pub digest_files: u64,
    pub last_delivery_ms: Option<i64>,
    pub last_digest_ms: Option<i64>,
    pub last_digest_key: Option<String>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

/// The status of cairnd's delivery cursor of `store`
/// (`delivery/state.json`), read offline: `None` when there is none. The
/// last error is not known offline (it is in cairnd's GetTrailStatus).
pub fn read_status(store: &Store) -> Result<Option<DeliveryStatus>> {
    let path = store.dir().join(STATE_DIR).join(STATE_FILE);
    let b = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let s: State = serde_json::from_slice(&b).with_context(|| format!("{} is damaged", path.display()))?;
    Ok(Some(DeliveryStatus {
        target: s.target,
        next_seq: s.next_seq,
        backlog_events: store.durable_size()?.saturating_sub(s.next_seq),
        delivered_events: s.delivered_events,
        delivered_files: s.delivered_files,
        digest_files: s.digest_files,
        last_delivery_ms: s.last_delivery_ms,
        last_digest_ms: s.last_digest_ms,
        last_digest_key: s.last_digest_key,
        last_error: None,
        last_error_ms: None,
    }))
}

/// Delivers one store to one target.
pub struct Deliverer {
    /// Names this store (16 hex digits of its checkpoint origin) and, for
    /// a one-off, its cursor, in every object name it chooses, so that
    /// stores and cursors delivering into one bucket never write the
    /// same name.
    tag: String,
    /// Whether this trail's claim in the bucket was checked (`claim`).
    claimed: bool,
    sink: Sink,
    opts: DeliverOptions,
    path: PathBuf,
    state: State,
    status: Arc<Mutex<DeliveryStatus>>,
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Where the last round's time went.
    last_timings: RoundTimings,
    /// The next round, built while the one before it uploaded (only when
    /// a whole round waited beyond that one): used if it still starts at
    /// the cursor, with the same settings, dated in the open digest
    /// window; built again otherwise.
    ahead: Option<Ahead>,
}

/// A round built ahead of its turn (`Deliverer::ahead`). Only in memory:
/// a crash loses it, and the round is built again from the cursor.
struct Ahead {
    from: u64,
    time_ms: i64,
    settings: RoundSettings,
    round: Round,
}

fn system_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn stream_key(account: &str, region: &str) -> String {
    format!("{account}/{region}")
}

fn gzip(level: u32, parts: &[&[u8]]) -> Result<Vec<u8>> {
    // Sized for the output up front (records compress 5-10x even at level
    // 1): a growing buffer copies all it holds at each doubling, into
    // fresh pages. Capacity never written is, for a buffer this size,
    // mostly pages never touched.
    let raw: usize = parts.iter().map(|p| p.len()).sum();
    let mut enc = GzEncoder::new(Vec::with_capacity(raw / 3 + 1024), flate2::Compression::new(level.min(9)));
    for p in parts {
        enc.write_all(p)?;
    }
    Ok(enc.finish()?)
}

/// Where a round's time went (wall time; each phase runs on every core).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RoundTimings {
    pub events: u64,
    /// Reading the events from the store.
    pub read: Duration,
    /// Reading every record's members and grouping into files.
    pub parse: Duration,
    /// Log files (SHA-256, gzip), and the Parquet files' row groups
    /// (columns, encoding, compression).
    pub encode: Duration,
    /// Putting each Parquet file together from its row groups.
    pub parquet: Duration,
    /// Uploading (while the next round is built, when one is due at
    /// once: the phases of consecutive rounds then overlap).
    pub upload: Duration,
}

impl std::ops::AddAssign for RoundTimings {
    fn add_assign(&mut self, o: RoundTimings) {
        self.events += o.events;
        self.read += o.read;
        self.parse += o.parse;
        self.encode += o.encode;
        self.parquet += o.parquet;
        self.upload += o.upload;
    }
}

/// A round's objects, before upload.
struct Round {
    /// The round covers `[from, to)`.
    to: u64,
    puts: Vec<Put>,
    files: Vec<WindowFile>,
    events: u64,
    timings: RoundTimings,
}

/// Rows in a Parquet row group of a round's file: a round's big file is
/// several groups, so that its row groups spread over the cores (a row
/// group is one job; a file of fewer rows is encoded on one core, beside
/// the round's other files and log files).
const PARQUET_GROUP_ROWS: usize = 50_000;

/// A piece of a round's encoding: a log file (account, region, part
/// number, records), or a row group of the round's `n`th Parquet file.
enum Work<'a> {
    Log((String, String, u32, Building<'a>)),
    /// Row group `.1` of Parquet file `.0`.
    Rows(usize, usize, &'a [crate::parquet::Row<'a>]),
}

enum Encoded {
    Log(WindowFile, Put),
    Group(usize, crate::parquet::Group),
}

/// One stream's log file being built.
struct Building<'a> {
    parts: Vec<&'a [u8]>,
    raw: u64,
    oldest_ms: i64,
    newest_ms: i64,
}

/// `f` over `items` on up to one thread per core (each at background
/// priority), results in the items' order; the first error wins.
fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> Result<R> + Sync) -> Result<Vec<R>> {
    largest_first(items, |_| 0, f)
}

/// [`parallel_map`], taking the items by `cost`, largest first (stable
/// among equals): a large item taken last keeps one core busy alone
/// while the others wait at the end of the phase.
fn largest_first<T: Send, R: Send>(items: Vec<T>, cost: impl Fn(&T) -> u64, f: impl Fn(T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.into_iter().map(|item| caught(|| f(item))).collect();
    }
    let n = items.len();
    let mut order: Vec<(usize, T)> = items.into_iter().enumerate().collect();
    order.sort_by_cached_key(|(_, item)| std::cmp::Reverse(cost(item)));
    let queue = Mutex::new(order.into_iter());
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                cairn_engine::set_thread_nice(DELIVERY_NICE);
                loop {
                    let Some((i, item)) = queue.lock().next() else { return };
                    // A panic is this item's error, with its message (the
                    // scope would re-raise it as "a scoped thread panicked").
                    let r = caught(|| f(item));
                    results.lock()[i] = Some(r);
                }
            });
        }
    });
    results.into_inner().into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("an encoding thread stopped")))).collect()
}

impl Deliverer {
    /// Opens the cursor of `store` (a fresh one delivers from the first
    /// event) and sets the retention hold at it.
    pub fn open(store: &Store, sink: Sink, opts: DeliverOptions) -> Result<Deliverer> {
        if opts.file_interval < Duration::from_secs(1) || opts.digest_interval < Duration::from_secs(1) {
            bail!("delivery intervals must be at least 1 second");
        }
        let dir = store.dir().join(STATE_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if opts.cursor.contains('/') || !opts.cursor.ends_with(".json") {
            bail!("a delivery cursor is a .json file name in delivery/, not {:?}", opts.cursor);
        }
        let path = dir.join(&opts.cursor);
        let target = sink.target.to_string();
        let now = system_ms();
        let state = match std::fs::read(&path) {
            Ok(b) => {
                let s: State = serde_json::from_slice(&b).with_context(|| format!("{} is damaged", path.display()))?;
                if s.version != STATE_VERSION {
                    bail!("{} is version {}; this cairnd reads version {STATE_VERSION}", path.display(), s.version);
                }
                if s.target != target {
                    bail!(
                        "{} is the delivery cursor for {}, not {target}: a store delivers to one target; move {} away to deliver everything to {target}",
                        path.display(),
                        s.target,
                        dir.display()
                    );
                }
                s
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                version: STATE_VERSION,
                target,
                next_seq: 0,
                pending: None,
                window_start_ms: now - now.rem_euclid(1000),
                window_files: Vec::new(),
                streams: BTreeMap::new(),
                delivered_events: 0,
                delivered_files: 0,
                digest_files: 0,
                last_delivery_ms: None,
                last_digest_ms: None,
                last_digest_key: None,
                time_range: opts.time_range,
            },
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if let Some(hold) = &opts.hold {
            store.set_retention_hold(hold, Some(state.next_seq))?;
        }
        let origin = store.verifiers().first().map(|v| v.name.clone()).unwrap_or_default();
        let node: String = origin.strip_prefix("cairn/").unwrap_or(&origin).chars().filter(char::is_ascii_hexdigit).take(16).collect();
        let tag = match opts.cursor.strip_suffix(".json") {
            Some(stem) if opts.cursor != STATE_FILE => format!("{node}-{stem}"),
            _ => node,
        };
        // The digest key exists from the cursor's start on, so every digest
        // it signs falls inside the key's validity.
        store.with_digest_key(|_, _| ())?;
        let mut opts = opts;
        opts.time_range = state.time_range;
        let d = Deliverer {
            tag,
            claimed: false,
            sink,
            opts,
            path,
            state,
            status: Arc::default(),
            clock: Box::new(system_ms),
            last_timings: RoundTimings::default(),
            ahead: None,
        };
        if !d.path.exists() {
            d.save()?;
        }
        d.publish(store.durable_size()?, None);
        Ok(d)
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Deliverer {
        self.clock = Box::new(clock);
        self
    }

    /// The status, shared: it is updated after every round.
    /// Where the last round's time went (`cairn bench-deliver`).
    pub fn last_timings(&self) -> RoundTimings {
        self.last_timings
    }

    pub fn status(&self) -> Arc<Mutex<DeliveryStatus>> {
        self.status.clone()
    }

    fn save(&self) -> Result<()> {
        Ok(cairn_engine::fs::replace_file(&cairn_engine::fs::RealFs, &self.path, &serde_json::to_vec_pretty(&self.state)?, false)?)
    }

    /// Updates the shared status; `durable` is the store's durable size
    /// (read once by the caller: with `Durability::Never` it fsyncs).
    fn publish(&self, durable: u64, error: Option<String>) {
        let mut st = self.status.lock();
        let s = &self.state;
        // A success clears the error: GetTrailStatus shows the current one.
        let (last_error, last_error_ms) = match error {
            Some(e) => (Some(e), Some((self.clock)())),
            None => (None, None),
        };
        *st = DeliveryStatus {
            target: s.target.clone(),
            next_seq: s.next_seq,
            backlog_events: durable.saturating_sub(s.next_seq),
            delivered_events: s.delivered_events,
            delivered_files: s.delivered_files,
            digest_files: s.digest_files,
            last_delivery_ms: s.last_delivery_ms,
            last_digest_ms: s.last_digest_ms,
            last_digest_key: s.last_digest_key.clone(),
            last_error,
            last_error_ms,
        };
    }

    fn window_end(&self, start_ms: i64) -> i64 {
        let i = self.opts.digest_interval.as_millis() as i64;
        (start_ms.div_euclid(i) + 1) * i
    }

    /// One round of work at time `now`: finish a pending round, write the
    /// digests of every window that has ended, and deliver new events if
    /// it is time (`force`: whatever the interval). Returns whether
    /// anything was written.
    pub fn tick(&mut self, store: &Store, force: bool) -> Result<bool> {
        let mut wrote = false;
        if !self.claimed {
            self.claim()?;
        }
        if let Some(p) = self.state.pending {
            self.deliver_round(store, p)?;
            wrote = true;
        }
        let now = (self.clock)();
        if now < self.state.window_start_ms - CLOCK_SLACK_MS {
            bail!(
                "the wall clock ({}) is before the open digest window's start ({}): delivery waits until the clock passes it (digests are never dated backwards)",
                format_event_time(now),
                format_event_time(self.state.window_start_ms)
            );
        }
        let mut end = self.window_end(self.state.window_start_ms);
        if end <= now && (now - end) / self.opts.digest_interval.as_millis() as i64 > CHAIN_GAP_WINDOWS {
            // Long silence: close the open window, start new chains now.
            self.write_digests(store, end)?;
            let i = self.opts.digest_interval.as_millis() as i64;
            self.state.window_start_ms = now - now.rem_euclid(i);
            for head in self.state.streams.values_mut() {
                *head = None;
            }
            self.save()?;
            end = self.window_end(self.state.window_start_ms);
            wrote = true;
        }
        while end <= now {
            self.write_digests(store, end)?;
            end = self.window_end(self.state.window_start_ms);
            wrote = true;
        }
        let durable = store.durable_size()?;
        let due = force
            || self.state.last_delivery_ms.is_none_or(|t| now - t >= self.opts.file_interval.as_millis() as i64 || now < t)
            || self.full_round_after(self.state.next_seq, durable);
        if due && durable > self.state.next_seq {
            let from = self.state.next_seq;
            let settings = self.settings();
            // A round built while the one before uploaded, if it is this
            // one and dated in the open window (from its start up to now:
            // a wall clock stepped back could put it past the window's end).
            let window = self.state.window_start_ms..=now;
            let ahead = self.ahead.take().filter(|a| a.from == from && a.settings == settings && window.contains(&a.time_ms));
            let (time_ms, round) = match ahead {
                Some(a) => (a.time_ms, a.round),
                None => self.build_from(store, from, durable, now)?,
            };
            let p = Pending { from, to: round.to, time_ms, settings };
            self.state.pending = Some(p);
            self.save()?;
            let next_due = durable > p.to && (force || self.full_round_after(p.to, durable));
            self.upload_and_commit(store, p, round, next_due.then_some(durable))?;
            wrote = true;
        }
        self.publish(durable, None);
        Ok(wrote)
    }

    /// Whether at least a whole round's events (`round_events_max`) wait
    /// from `from` up to `durable`: such a round is due at once, whatever
    /// the interval.
    fn full_round_after(&self, from: u64, durable: u64) -> bool {
        durable.saturating_sub(from) >= self.opts.round_events_max
    }

    /// The round from `from` of the events below `durable`, dated
    /// `time_ms` or the open window's start if later; with its date.
    fn build_from(&self, store: &Store, from: u64, durable: u64, time_ms: i64) -> Result<(i64, Round)> {
        let to_max = durable.min(from.saturating_add(self.opts.round_events_max));
        let time_ms = time_ms.max(self.state.window_start_ms);
        Ok((time_ms, self.build_round(store, from, to_max, time_ms, &self.settings())?))
    }

    fn settings(&self) -> RoundSettings {
        RoundSettings {
            parquet: self.opts.parquet,
            file_bytes_max: self.opts.file_bytes_max,
            round_bytes_max: self.opts.round_bytes_max,
            gzip_level: self.opts.gzip_level,
            time_range: self.opts.time_range,
        }
    }

    /// The trail's claim object: `[PREFIX/]cairn/trails/<trail>.json`.
    fn claim_key(&self) -> String {
        match self.sink.target.prefix.as_str() {
            "" => format!("cairn/trails/{}.json", self.opts.trail),
            p => format!("{p}/cairn/trails/{}.json", self.opts.trail),
        }
    }

    /// The claim object's body: this trail, this writer, and how far it
    /// has delivered (the cursor's `next_seq`).
    fn claim_body(&self) -> Result<Vec<u8>> {
        let claim = serde_json::json!({"trail": self.opts.trail, "writer": self.tag, "delivered_to": self.state.next_seq});
        Ok(serde_json::to_vec(&claim)?)
    }

    /// Claims this trail's digest names in the bucket for this store and
    /// cursor (`[PREFIX/]cairn/trails/<trail>.json`), or refuses to deliver
    /// when another store or cursor holds them (two writers of one trail
    /// would overwrite each other's digests every window), or when the
    /// claim says this writer delivered further than its cursor says: the
    /// cursor, or the whole data directory, was restored from an older
    /// copy, and delivering from it would write delivered events again, or
    /// other events under the names of delivered ones.
    fn claim(&mut self) -> Result<()> {
        let key = self.claim_key();
        let bucket = &self.sink.target.bucket;
        match self.sink.get(&key)? {
            Some(b) => {
                let theirs: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
                if theirs.get("trail").and_then(|t| t.as_str()) != Some(self.opts.trail.as_str())
                    || theirs.get("writer").and_then(|w| w.as_str()) != Some(self.tag.as_str())
                {
                    bail!(
                        "s3://{bucket}/{key} says trail {:?} is delivered there by {}; this is {}: give this store its own trail name (cairnd --trail-name, cairn deliver --trail-name) or another prefix",
                        self.opts.trail,
                        theirs.get("writer").and_then(|w| w.as_str()).unwrap_or("another writer"),
                        self.tag
                    );
                }
                // Claims written before the position was kept have none.
                let delivered = theirs.get("delivered_to").and_then(|d| d.as_u64()).unwrap_or(0);
                if delivered > self.state.next_seq {
                    bail!(
                        "s3://{bucket}/{key} says this store delivered every event below seq {delivered}, but its delivery cursor {} is at seq {}: the data directory or the cursor was restored from an older copy. Delivering from there would write delivered events a second time (and, if the store itself was restored, other events under the names of delivered ones). Deliver to another prefix instead (the objects already delivered stay as they are), or restore the newer cursor",
                        self.path.display(),
                        self.state.next_seq
                    );
                }
            }
            None => self.sink.put_all(vec![Put { key, body: self.claim_body()?, metadata: Vec::new() }])?,
        }
        self.claimed = true;
        Ok(())
    }

    /// Builds, uploads and commits the round `p` (its plan is already in
    /// the cursor).
    fn deliver_round(&mut self, store: &Store, p: Pending) -> Result<()> {
        let round = self.build_round(store, p.from, p.to, p.time_ms, &p.settings)?;
        if round.to != p.to {
            bail!("the events of the pending round {}..{} changed (now ending at {}): the store was altered", p.from, p.to, round.to);
        }
        // A retry (after a failed upload or a crash) builds nothing ahead:
        // while the object store fails, that would be work thrown away.
        self.upload_and_commit(store, p, round, None)
    }

    /// Uploads the round `p` (already in the cursor) and commits it. With
    /// `next_below` (the durable size: the next round is due at once),
    /// the next round, of the events below it, is built while this one
    /// uploads (`ahead`); the commit then waits for that build, so a
    /// crash meanwhile uploads this round again, under the same names, as
    /// it would before its commit.
    fn upload_and_commit(&mut self, store: &Store, p: Pending, round: Round, next_below: Option<u64>) -> Result<()> {
        let Round { puts, files, events, timings, .. } = round;
        let n = puts.len();
        self.ahead = None;
        let (uploaded, ahead) = std::thread::scope(|s| {
            let upload = s.spawn(|| {
                let started = Instant::now();
                self.sink.put_all(puts).map(|()| started.elapsed())
            });
            let ahead = next_below.and_then(|durable| self.build_ahead(store, p.to, durable));
            (upload.join(), ahead)
        });
        let upload = uploaded.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        self.ahead = ahead;
        let s = &mut self.state;
        for f in &files {
            s.streams.entry(f.stream.clone()).or_insert(None);
        }
        s.window_files.extend(files);
        s.next_seq = p.to;
        s.pending = None;
        s.delivered_events += events;
        s.delivered_files += n as u64;
        s.last_delivery_ms = Some(p.time_ms);
        self.save()?;
        // The claim keeps how far this writer delivered, written after the
        // cursor so that it is never ahead of it: a cursor restored from
        // an older copy is then refused (see `claim`). A failure here
        // loses nothing (the round is committed): the next round writes it.
        let claim = Put { key: self.claim_key(), body: self.claim_body()?, metadata: Vec::new() };
        if let Err(e) = self.sink.put_all(vec![claim]) {
            tracing::warn!("updating the trail's claim in {}: {e:#}", self.sink.target);
        }
        if let Some(hold) = &self.opts.hold {
            store.set_retention_hold(hold, Some(p.to))?;
        }
        let t = RoundTimings { upload, ..timings };
        self.last_timings = t;
        let ms = |d: Duration| d.as_millis() as u64;
        tracing::info!(
            from = p.from,
            to = p.to,
            events,
            files = n,
            read_ms = ms(t.read),
            parse_ms = ms(t.parse),
            encode_ms = ms(t.encode),
            parquet_ms = ms(t.parquet),
            upload_ms = ms(t.upload),
            "delivered"
        );
        Ok(())
    }

    /// The round from `from`, built while the round before it uploads
    /// (see `ahead`). A failure here costs only the head start: the round
    /// is built again in its turn, and fails there if it must.
    fn build_ahead(&self, store: &Store, from: u64, durable: u64) -> Option<Ahead> {
        match caught(|| self.build_from(store, from, durable, (self.clock)())) {
            Ok((time_ms, round)) => Some(Ahead { from, time_ms, settings: self.settings(), round }),
            Err(e) => {
                tracing::warn!("building the round from seq {from} ahead of its turn: {e:#}");
                None
            }
        }
    }

    /// The log files of the events from `from` up to `to_max`, ending
    /// early (never before one event) when the round's raw bytes reach
    /// the limit. Deterministic in its arguments and the events, so a
    /// round rebuilt after a crash is the same objects.
    fn build_round(&self, store: &Store, from: u64, to_max: u64, time_ms: i64, set: &RoundSettings) -> Result<Round> {
        // Reading the events, and every record's members, is a third of a
        // round's work: on every core too (in seq ranges and chunks whose
        // results keep seq order).
        let mut timings = RoundTimings::default();
        let mut clock = Instant::now();
        let mut lap = || {
            let now = Instant::now();
            std::mem::replace(&mut clock, now).elapsed()
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let step = (to_max - from).div_ceil(cores).max(1);
        let ranges: Vec<(u64, u64)> = (from..to_max).step_by(step as usize).map(|a| (a, (a + step).min(to_max))).collect();
        let events: Vec<cairn_engine::SharedEvent> =
            parallel_map(ranges, |(a, b)| store.events_between(a, b).map_err(|e| anyhow::anyhow!("reading events {a}..{b}: {e}")))?
                .into_iter()
                .flatten()
                .collect();
        timings.read = lap();
        let mut open: BTreeMap<(String, String), Building> = BTreeMap::new();
        let mut done: Vec<((String, String), Building)> = Vec::new();
        let mut tables: BTreeMap<String, Vec<crate::parquet::Row>> = BTreeMap::new();
        let (mut bytes, mut to, mut count) = (0u64, to_max, 0u64);
        let max = set.file_bytes_max;
        let chunks: Vec<&[cairn_engine::SharedEvent]> = events.chunks(events.len().div_ceil(cores as usize).max(1)).collect();
        let parsed = parallel_map(chunks, |c| {
            Ok(c.iter()
                .map(|e| {
                    let row = crate::parquet::Row::new(e.record(), e.time_ms);
                    let k = row.stream();
                    let partition = set.parquet.then(|| crate::parquet::partition(&k.0, &k.1, e.time_ms));
                    (row, k, partition)
                })
                .collect::<Vec<_>>())
        })?;
        for (e, (row, k, partition)) in events.iter().zip(parsed.into_iter().flatten()) {
            if bytes >= set.round_bytes_max && count > 0 {
                to = e.seq;
                break;
            }
            if set.time_range.is_some_and(|(a, b)| e.time_ms < a || e.time_ms > b) {
                continue;
            }
            if let Some(p) = partition {
                tables.entry(p).or_default().push(row);
            }
            let fresh = || Building { parts: Vec::new(), raw: 0, oldest_ms: e.time_ms, newest_ms: e.time_ms };
            if !open.contains_key(&k) {
                open.insert(k.clone(), fresh());
            }
            let Some(b) = open.get_mut(&k) else { continue };
            if b.raw > 0 && b.raw + e.record().len() as u64 > max {
                done.push((k, std::mem::replace(b, fresh())));
            }
            b.raw += e.record().len() as u64 + 1;
            b.oldest_ms = b.oldest_ms.min(e.time_ms);
            b.newest_ms = b.newest_ms.max(e.time_ms);
            b.parts.push(e.record());
            bytes += e.record().len() as u64 + 1;
            count += 1;
        }
        done.extend(open);
        let mut part_no: BTreeMap<(String, String), u32> = BTreeMap::new();
        let logs: Vec<(String, String, u32, Building)> = done
            .into_iter()
            .map(|((account, region), b)| {
                let part = part_no.entry((account.clone(), region.clone())).or_insert(0);
                *part += 1;
                (account, region, *part, b)
            })
            .collect();
        timings.parse = lap();
        // Encoding (gzip, SHA-256, Parquet) is most of a round's work: on
        // every core, in an order that does not change what is written:
        // the log files and the Parquet files' row groups, largest first,
        // then each Parquet file from its row groups in order.
        let tables: Vec<(String, Vec<crate::parquet::Row>)> = tables.into_iter().collect();
        let mut work: Vec<Work> = logs.into_iter().map(Work::Log).collect();
        let mut files = Vec::new();
        let mut columns = Vec::new();
        for (file, (_, rows)) in tables.iter().enumerate() {
            let groups: Vec<&[crate::parquet::Row]> = rows.chunks(PARQUET_GROUP_ROWS).collect();
            let (f, c) = crate::parquet::ParquetFile::plan(&groups)?;
            files.push(f);
            columns.push(c);
            work.extend(groups.into_iter().enumerate().map(|(group, rows)| Work::Rows(file, group, rows)));
        }
        let cost = |w: &Work| match w {
            Work::Log((.., b)) => b.raw,
            Work::Rows(.., rows) => rows.iter().map(|r| r.raw.len() as u64).sum(),
        };
        let mut built = Vec::new();
        let mut groups: Vec<Vec<crate::parquet::Group>> = files.iter().map(|_| Vec::new()).collect();
        let encode = |w: Work| match w {
            Work::Rows(file, group, rows) => Ok(Encoded::Group(file, columns[file].encode(group, rows)?)),
            Work::Log(l) => self.encode_log(l, set, from, to, time_ms),
        };
        for done in largest_first(work, cost, encode)? {
            match done {
                Encoded::Log(file, put) => built.push((file, put)),
                Encoded::Group(file, group) => groups[file].push(group),
            }
        }
        timings.encode = lap();
        let tables_out = parallel_map(tables.iter().zip(files).zip(groups).collect(), |(((partition, _), f), g)| {
            let name = format!("parquet/{partition}/{}", crate::compact::file_name(&self.tag, from, to));
            let key = if self.sink.target.prefix.is_empty() { name } else { format!("{}/{name}", self.sink.target.prefix) };
            Ok(Put { key, body: f.finish(g)?, metadata: Vec::new() })
        })?;
        timings.parquet = lap();
        timings.events = count;
        let (files, mut puts): (Vec<WindowFile>, Vec<Put>) = built.into_iter().unzip();
        puts.extend(tables_out);
        Ok(Round { to, puts, files, events: count, timings })
    }

    /// One log file of a round (any thread).
    fn encode_log(&self, log: (String, String, u32, Building), set: &RoundSettings, from: u64, to: u64, time_ms: i64) -> Result<Encoded> {
        let (account, region, part, b) = log;
        let unique = format::unique(&format!("{}-{from}-{to}-{account}-{region}-{part}", self.tag));
        let key = format::log_file_key(&self.sink.target.prefix, &account, &region, time_ms, &unique);
        let mut body: Vec<&[u8]> = Vec::with_capacity(b.parts.len() * 2 + 2);
        body.push(br#"{"Records":["#);
        for (i, r) in b.parts.iter().enumerate() {
            if i > 0 {
                body.push(b",");
            }
            body.push(r);
        }
        body.push(b"]}");
        let mut sha = Sha256::new();
        body.iter().for_each(|x| sha.update(x));
        let gz = gzip(set.gzip_level, &body)?;
        let entry = LogFileEntry {
            s3_bucket: self.sink.target.bucket.clone(),
            s3_object: key.clone(),
            hash_value: hex::encode(sha.finalize()),
            hash_algorithm: HASH_ALGORITHM.into(),
            newest_event_time: format_event_time(b.newest_ms),
            oldest_event_time: format_event_time(b.oldest_ms),
        };
        Ok(Encoded::Log(WindowFile { stream: stream_key(&account, &region), entry }, Put { key, body: gz, metadata: Vec::new() }))
    }

    /// Writes every stream's digest for the window ending at `end_ms`,
    /// then moves the cursor to the next window.
    fn write_digests(&mut self, store: &Store, end_ms: i64) -> Result<()> {
        let s = &self.state;
        let target = &self.sink.target;
        let start = format_event_time(s.window_start_ms);
        let end = format_event_time(end_ms);
        let mut puts = Vec::new();
        let mut heads = Vec::new();
        for (stream, prev) in &s.streams {
            let (account, region) = stream.split_once('/').context("a stream is account/region")?;
            let listed: Vec<LogFileEntry> = s.window_files.iter().filter(|f| &f.stream == stream).map(|f| f.entry.clone()).collect();
            let key = format::digest_key(&target.prefix, account, region, &self.opts.trail, &self.opts.home_region, end_ms);
            let (json, signature) = store.with_digest_key(|public, sign| -> Result<(Vec<u8>, String)> {
                let d = DigestFile {
                    aws_account_id: account.to_string(),
                    digest_start_time: start.clone(),
                    digest_end_time: end.clone(),
                    digest_s3_bucket: target.bucket.clone(),
                    digest_s3_object: key.clone(),
                    digest_public_key_fingerprint: public.fingerprint.clone(),
                    digest_signature_algorithm: cairn_engine::checkpoint::digest_keys::SIGNATURE_ALGORITHM.into(),
                    newest_event_time: listed.iter().map(|f| f.newest_event_time.clone()).max(),
                    oldest_event_time: listed.iter().map(|f| f.oldest_event_time.clone()).min(),
                    previous_digest_s3_bucket: prev.as_ref().map(|_| target.bucket.clone()),
                    previous_digest_s3_object: prev.as_ref().map(|p| p.key.clone()),
                    previous_digest_hash_value: prev.as_ref().map(|p| p.hash.clone()),
                    previous_digest_hash_algorithm: prev.as_ref().map(|_| HASH_ALGORITHM.to_string()),
                    previous_digest_signature: prev.as_ref().map(|p| p.signature.clone()),
                    log_files: listed.clone(),
                };
                let json = serde_json::to_vec(&d)?;
                let hash = hex::encode(Sha256::digest(&json));
                let msg = format::string_to_sign(&end, &target.bucket, &key, &hash, prev.as_ref().map(|p| p.signature.as_str()));
                Ok((json, hex::encode(sign(msg.as_bytes()))))
            })??;
            let hash = hex::encode(Sha256::digest(&json));
            // Cairn's own Ed25519 signature of the same four lines (the
            // last one the digest's previousDigestSignature), beside
            // CloudTrail's: extra metadata that validate-logs ignores, and
            // that `cairn verify-export` checks with the store's key.
            let location = format!("{}/{key}", target.bucket);
            let (ed, by) = store.sign_digest(&end, &location, &hash, prev.as_ref().map(|p| p.signature.as_str()))?;
            let metadata = vec![
                ("signature", signature.clone()),
                ("signature-algorithm", cairn_engine::checkpoint::digest_keys::SIGNATURE_ALGORITHM.to_string()),
                ("cairn-signature", hex::encode(ed)),
                ("cairn-key", by.encode()),
            ];
            puts.push(Put { key: key.clone(), body: gzip(6, &[&json])?, metadata });
            heads.push((stream.clone(), ChainHead { key, hash, signature }));
        }
        let n = puts.len();
        self.sink.put_all(puts)?;
        let s = &mut self.state;
        for (stream, head) in heads {
            s.last_digest_key = Some(head.key.clone());
            s.streams.insert(stream, Some(head));
        }
        s.window_start_ms = end_ms;
        s.window_files.clear();
        s.digest_files += n as u64;
        s.last_digest_ms = Some(end_ms);
        self.save()?;
        if n > 0 {
            tracing::info!(digests = n, end = %end, "digests delivered");
        }
        Ok(())
    }

    /// One compaction pass over this writer's Parquet files
    /// (crate::compact); `quiet` overrides the settings' (a one-off that
    /// finishes compacts what it wrote at once). Nothing when Parquet or
    /// compaction is off.
    pub fn compact_parquet(&self, store: &Store, quiet: Option<Duration>) -> Result<crate::compact::CompactReport> {
        let Some(mut set) = self.opts.compact.clone().filter(|_| self.opts.parquet) else { return Ok(Default::default()) };
        if let Some(q) = quiet {
            set.quiet = q;
        }
        let root = match self.sink.target.prefix.as_str() {
            "" => "parquet".to_string(),
            p => format!("{p}/parquet"),
        };
        let tmp = store.dir().join(STATE_DIR).join("tmp");
        let report = crate::compact::compact(&self.sink, &root, &self.tag, &tmp, &set, (self.clock)())?;
        if report.inputs > 0 || report.leftovers_deleted > 0 {
            tracing::info!(?report, "Parquet compaction");
        }
        Ok(report)
    }

    /// Every seq below this is delivered.
    pub fn next_seq(&self) -> u64 {
        self.state.next_seq
    }

    /// Ends a one-off delivery: finishes a pending round and writes every
    /// stream's digest of the open window, ending now, so that everything
    /// delivered is listed by a signed digest. Delivery may resume later
    /// from there (the chains continue).
    pub fn finish(&mut self, store: &Store) -> Result<()> {
        if !self.claimed {
            self.claim()?;
        }
        if let Some(p) = self.state.pending {
            self.deliver_round(store, p)?;
        }
        let mut end = (self.clock)();
        let waited = Instant::now();
        while end - end.rem_euclid(1000) <= self.state.window_start_ms {
            // Digest times have whole seconds: the window must end after it began.
            if waited.elapsed() > Duration::from_secs(5) {
                bail!("the wall clock ({}) is before the open digest window's start: cannot close it", format_event_time(end));
            }
            std::thread::sleep(Duration::from_millis(200));
            end = (self.clock)();
        }
        self.write_digests(store, end - end.rem_euclid(1000))?;
        // Everything is delivered and digested: a compaction that fails
        // (a bucket that refuses deletes) leaves small files, not an error.
        if let Err(e) = self.compact_parquet(store, Some(Duration::ZERO)) {
            tracing::warn!("Parquet compaction in {}: {e:#}", self.sink.target);
        }
        self.publish(store.durable_size()?, None);
        Ok(())
    }

    /// Runs rounds until `stop`, backing off (1 s doubling to 60 s) while
    /// the object store fails or a round panics; the error is in the
    /// status and the log.
    pub fn run(mut self, store: &Store, stop: &AtomicBool) {
        cairn_engine::set_thread_nice(DELIVERY_NICE);
        let mut backoff = Duration::from_secs(1);
        let mut next = Instant::now();
        let mut compacted: Option<Instant> = None;
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(Duration::from_millis(100)));
                continue;
            }
            // A panic (a bug, or a dependency's on bytes it should refuse)
            // must not end this thread while cairnd runs on: it is an
            // error like a failed upload, in the status and the log, and
            // the round is retried from the cursor after the back-off.
            match caught(|| self.tick(store, false)) {
                Ok(wrote) => {
                    backoff = Duration::from_secs(1);
                    // Behind by a whole round or more (a backlog after an
                    // outage, or ingest faster than rounds): the next round
                    // starts at once. A pause here would cap the catch-up
                    // at a round per pause, whatever the machine's speed.
                    // (A round built ahead means a whole round waits.)
                    let behind = wrote && self.ahead.is_some();
                    next = Instant::now() + if behind { Duration::ZERO } else { Duration::from_millis(500) };
                    if wrote && !behind {
                        release_freed_memory();
                    }
                    // Parquet compaction once per digest window; its failure
                    // does not hold delivery up.
                    if compacted.is_none_or(|t| t.elapsed() >= self.opts.digest_interval) {
                        compacted = Some(Instant::now());
                        if let Err(e) = caught(|| self.compact_parquet(store, None)) {
                            tracing::warn!("Parquet compaction in {}: {e:#}", self.sink.target);
                        }
                    }
                }
                Err(e) => {
                    let durable = store.durable_size().unwrap_or(self.state.next_seq);
                    let backlog = durable.saturating_sub(self.state.next_seq);
                    tracing::warn!(backlog_events = backlog, retry_in_s = backoff.as_secs(), "delivery to {}: {e:#}", self.sink.target);
                    self.publish(durable, Some(format!("{e:#}")));
                    next = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }
}

/// Gives the memory freed since the last call back to the system. A
/// round takes several times its 256 MiB of records at its peak; glibc
/// keeps freed memory in its arenas for reuse, so without this a daemon
/// that caught up once would hold that peak until it exits. Called when
/// delivery has caught up, not between rounds of a catch-up (the next
/// round would fault the same pages in again). This crate's one `unsafe`.
#[allow(unsafe_code)]
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // takes no pointers and is thread-safe (it locks each arena).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `f`'s result, or its panic as an error (a bug, in Cairn or a
/// dependency).
fn caught<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    crate::caught("internal error (a bug; please report it)", f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;
    use cairn_engine::Options;

    fn record(i: usize, account: &str) -> Vec<u8> {
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"2026-01-01T00:00:{:02}Z","eventName":"GetObject","eventSource":"s3.amazonaws.com","eventID":"e-{i}","recipientAccountId":"{account}","awsRegion":"eu-west-1"}}"#,
            i % 60
        )
        .into_bytes()
    }

    fn files_under(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
        out
    }

    // Goal: a delivery cursor restored from an older copy (a backup of the
    // data directory, or of delivery/) is refused, naming both positions
    // and the way out, and writes nothing: delivering from it would write
    // delivered events a second time, cut into rounds that need not match
    // the delivered files. A claim written before positions were kept is
    // taken as it is.
    #[test]
    fn a_cursor_behind_the_bucket_is_refused() {
        let (_dir, bucket, store, _recs) = one_account_store(100);
        let target: Target = "s3://bkt/p".parse().unwrap();
        let opts = || DeliverOptions { file_interval: Duration::from_secs(1), round_events_max: 25, ..DeliverOptions::default() };
        let mut d = Deliverer::open(&store, Sink::local(target.clone(), &bucket).unwrap(), opts()).unwrap();
        while d.next_seq() < 50 {
            d.tick(&store, true).unwrap();
        }
        let cursor = store.dir().join("delivery/state.json");
        let older = std::fs::read(&cursor).unwrap();
        while d.next_seq() < 100 {
            d.tick(&store, true).unwrap();
        }
        drop(d);
        let claim_path = bucket.join("p/cairn/trails/cairn.json");
        let claim: serde_json::Value = serde_json::from_slice(&std::fs::read(&claim_path).unwrap()).unwrap();
        assert_eq!(claim["delivered_to"], 100, "the claim keeps the position: {claim}");
        let snapshot = |b: &std::path::Path| files_under(b).into_iter().map(|f| (std::fs::read(&f).unwrap(), f)).collect::<Vec<_>>();
        let before = snapshot(&bucket);
        std::fs::write(&cursor, &older).unwrap();
        let mut d = Deliverer::open(&store, Sink::local(target.clone(), &bucket).unwrap(), opts()).unwrap();
        let e = format!("{:#}", d.tick(&store, true).unwrap_err());
        assert!(e.contains("below seq 100") && e.contains("at seq 50") && e.contains("restored") && e.contains("another prefix"), "{e}");
        assert_eq!(snapshot(&bucket), before, "nothing written");
        drop(d);
        // An earlier version's claim (no position): delivery goes on.
        let old_claim = serde_json::json!({"trail": claim["trail"], "writer": claim["writer"]});
        std::fs::write(&claim_path, serde_json::to_vec(&old_claim).unwrap()).unwrap();
        let mut d = Deliverer::open(&store, Sink::local(target, &bucket).unwrap(), opts()).unwrap();
        d.tick(&store, true).unwrap();
        assert_eq!(d.next_seq(), 75);
        store.close().unwrap();
    }

    /// An hour boundary at least an hour after now: past the digest
    /// window a new cursor opens, for clocks injected into tests.
    fn two_hours_on() -> i64 {
        (system_ms() / HOUR_MS + 2) * HOUR_MS
    }

    const HOUR_MS: i64 = 3_600_000;

    /// A deliverer of rounds of at most `round_events_max` events into
    /// `bucket` (s3://bkt/p), reading `clock`.
    fn deliverer_with_clock(
        store: &Store,
        bucket: &std::path::Path,
        round_events_max: u64,
        clock: impl Fn() -> i64 + Send + Sync + 'static,
    ) -> Deliverer {
        let opts = DeliverOptions { round_events_max, ..DeliverOptions::default() };
        let sink = Sink::local("s3://bkt/p".parse().unwrap(), bucket).unwrap();
        Deliverer::open(store, sink, opts).unwrap().with_clock(clock)
    }

    /// The delivered log files' paths, sorted.
    fn log_files(bucket: &std::path::Path) -> Vec<String> {
        let mut k: Vec<String> =
            files_under(bucket).into_iter().filter(|f| f.contains("_CloudTrail_") && f.ends_with(".json.gz")).collect();
        k.sort();
        k
    }

    // Goal: a round built while the one before it uploaded (a whole round
    // waiting beyond that one) is delivered as it was built, dated when
    // it was built, while the digest window it is dated in is open; once
    // that window's digest is written, it is built again, dated in the new
    // window. So every log file is listed by the digest of the window its
    // name falls in, and every event is delivered once.
    #[test]
    fn a_round_built_ahead_keeps_to_its_digest_window() {
        let (_dir, bucket, store, recs) = one_account_store(30);
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let c = clock.clone();
        let mut d = deliverer_with_clock(&store, &bucket, 10, move || c.load(Ordering::SeqCst));
        const H: i64 = HOUR_MS;
        let e = two_hours_on();
        let stamp = |ms: i64| format::date_parts(ms).1;
        let log_keys = || log_files(&bucket);
        for (t, next_seq) in [(e + 1000, 10), (e + 600_000, 20)] {
            clock.store(t, Ordering::SeqCst);
            d.tick(&store, false).unwrap();
            assert_eq!(d.next_seq(), next_seq);
        }
        let keys = log_keys();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.iter().all(|k| k.contains(&stamp(e + 1000))), "the second round is the one built ahead, dated when built: {keys:?}");
        // The window ends before the third round's turn: its digest lists
        // the first two rounds, and the third is dated in the next window.
        clock.store(e + H + 60_000, Ordering::SeqCst);
        d.tick(&store, false).unwrap();
        assert_eq!(d.next_seq(), 30);
        let third: Vec<String> = log_keys().into_iter().filter(|k| !keys.contains(k)).collect();
        assert!(third.len() == 1 && third[0].contains(&stamp(e + H + 60_000)), "{third:?}");
        let digests: Vec<String> =
            files_under(&bucket).into_iter().filter(|f| f.contains("CloudTrail-Digest") && f.ends_with(".json.gz")).collect();
        let listed: Vec<Vec<String>> = digests
            .iter()
            .map(|f| {
                let body = std::io::read_to_string(flate2::read::GzDecoder::new(std::fs::File::open(f).unwrap())).unwrap();
                let digest: format::DigestFile = serde_json::from_str(&body).unwrap();
                digest.log_files.into_iter().map(|l| l.s3_object).collect()
            })
            .filter(|l: &Vec<String>| !l.is_empty())
            .collect();
        assert_eq!(listed.len(), 1, "one digest lists files so far: {listed:?}");
        let mut first_two: Vec<String> = keys.iter().map(|k| k[bucket.to_string_lossy().len() + 1..].to_string()).collect();
        first_two.sort();
        let mut in_digest = listed[0].clone();
        in_digest.sort();
        assert_eq!(in_digest, first_two);
        assert_eq!(records_in_log_files(&bucket, &recs), sorted(&recs), "every event once");
        store.close().unwrap();
    }

    // Goal: a round built ahead is dated by the clock's reading then; if
    // the wall clock was stepped back before its turn, so that the open
    // window has not ended but the round's date is past its end, the round
    // is built again, dated at its turn: its name never falls after the
    // window whose digest lists it.
    #[test]
    fn a_round_built_ahead_past_a_clock_stepped_back_is_built_again() {
        let (_dir, bucket, store, recs) = one_account_store(20);
        const H: i64 = HOUR_MS;
        let e = two_hours_on();
        // The clock's readings in order: the first round's tick, the
        // round built ahead (past the window's end), the second round's
        // tick (the clock stepped back, still in the window).
        let readings = Arc::new(Mutex::new(vec![e + H - 2_000, e + H + 5_000, e + 1_000]));
        let r = readings.clone();
        let clock = move || {
            let mut r = r.lock();
            if r.len() > 1 {
                r.pop().unwrap()
            } else {
                r[0]
            }
        };
        let mut d = deliverer_with_clock(&store, &bucket, 10, clock);
        d.tick(&store, false).unwrap();
        assert_eq!(d.next_seq(), 10);
        d.tick(&store, false).unwrap();
        assert_eq!(d.next_seq(), 20);
        assert_eq!(readings.lock().len(), 1, "every reading was taken");
        let stamp = |ms: i64| format::date_parts(ms).1;
        let keys = log_files(&bucket);
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.iter().any(|k| k.contains(&stamp(e + H - 2_000))), "the second round is dated at its turn: {keys:?}");
        assert!(!keys.iter().any(|k| k.contains(&stamp(e + H + 5_000))), "nothing dated past the open window: {keys:?}");
        assert_eq!(records_in_log_files(&bucket, &recs), sorted(&recs), "every event once");
        store.close().unwrap();
    }

    // Goal: an upload that fails while the next round is built ahead
    // loses nothing: the failed round stays pending and is retried under
    // the names it was planned with, the round built ahead is dropped, and
    // once the bucket takes uploads again every event is delivered once.
    #[test]
    fn a_failed_upload_beside_a_round_built_ahead_loses_nothing() {
        let (_dir, bucket, store, recs) = one_account_store(30);
        let e = two_hours_on();
        let clock = Arc::new(std::sync::atomic::AtomicI64::new(e + 1_000));
        let c = clock.clone();
        let mut d = deliverer_with_clock(&store, &bucket, 10, move || c.load(Ordering::SeqCst));
        d.tick(&store, false).unwrap();
        assert_eq!(d.next_seq(), 10);
        // A file where the log files' region directory is: every log
        // file's upload fails.
        let region = bucket.join("p/AWSLogs/111122223333/CloudTrail/eu-west-1");
        let aside = bucket.join("aside");
        std::fs::rename(&region, &aside).unwrap();
        std::fs::write(&region, b"in the way").unwrap();
        clock.store(e + 600_000, Ordering::SeqCst);
        assert!(d.tick(&store, false).is_err(), "the upload fails");
        assert_eq!(d.next_seq(), 10, "nothing committed");
        std::fs::remove_file(&region).unwrap();
        std::fs::rename(&aside, &region).unwrap();
        d.tick(&store, false).unwrap();
        assert_eq!(d.next_seq(), 30, "the pending round, then the next");
        let stamp = |ms: i64| format::date_parts(ms).1;
        let keys = log_files(&bucket);
        assert_eq!(keys.len(), 3, "{keys:?}");
        let planned = keys.iter().filter(|k| k.contains(&stamp(e + 1_000))).count();
        assert_eq!(planned, 2, "the failed round kept the name it was planned with (built ahead, at the first tick): {keys:?}");
        assert_eq!(records_in_log_files(&bucket, &recs), sorted(&recs), "every event once");
        store.close().unwrap();
    }

    // Goal: what delivery reads from outside the store — its cursor file
    // and the trail's claim object in the bucket — cannot cost a record
    // when it is garbage: a damaged cursor or a foreign/garbled claim is
    // refused with its name and delivers nothing; once set right, every
    // record is delivered, including ones ingested while it was refused.
    #[test]
    fn garbage_cursor_and_claim_are_refused_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        let store = Store::open(dir.path().join("store"), Options::default()).unwrap();
        let recs: Vec<Vec<u8>> = (0..30).map(|i| record(i, if i % 2 == 0 { "111122223333" } else { "444455556666" })).collect();
        let refs: Vec<&[u8]> = recs[..10].iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
        let target: Target = "s3://bkt/p".parse().unwrap();
        let opts = || DeliverOptions { file_interval: Duration::from_secs(1), ..DeliverOptions::default() };
        // A claim that is not JSON, where the trail's claim goes.
        std::fs::create_dir_all(bucket.join("p/cairn/trails")).unwrap();
        std::fs::write(bucket.join("p/cairn/trails/cairn.json"), b"\x00{not json").unwrap();
        let mut d = Deliverer::open(&store, Sink::local(target.clone(), &bucket).unwrap(), opts()).unwrap();
        let e = format!("{:#}", d.tick(&store, true).unwrap_err());
        assert!(e.contains("cairn/trails/cairn.json") && e.contains("own trail name"), "{e}");
        assert!(files_under(&bucket).iter().all(|f| !f.contains("AWSLogs")), "nothing delivered while refused");
        // More events arrive meanwhile; the claim is removed.
        let refs: Vec<&[u8]> = recs[10..20].iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
        std::fs::remove_file(bucket.join("p/cairn/trails/cairn.json")).unwrap();
        d.tick(&store, true).unwrap();
        assert_eq!(d.next_seq(), 20);
        drop(d);
        // A damaged cursor: refused, naming it; the store is untouched.
        let cursor = store.dir().join("delivery/state.json");
        let good = std::fs::read(&cursor).unwrap();
        std::fs::write(&cursor, [&good[..good.len() / 2], b"\xff garbage"].concat()).unwrap();
        let e = format!("{:#}", Deliverer::open(&store, Sink::local(target.clone(), &bucket).unwrap(), opts()).err().unwrap());
        assert!(e.contains("state.json") && e.contains("damaged"), "{e}");
        std::fs::write(&cursor, &good).unwrap();
        let refs: Vec<&[u8]> = recs[20..].iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
        let mut d = Deliverer::open(&store, Sink::local(target, &bucket).unwrap(), opts()).unwrap();
        d.tick(&store, true).unwrap();
        d.finish(&store).unwrap();
        assert_eq!(d.next_seq(), 30);
        let files = files_under(&bucket);
        let digests: Vec<&String> = files.iter().filter(|f| f.contains("/CloudTrail-Digest/") && f.ends_with(".json.gz")).collect();
        assert_eq!(digests.len(), 2, "one final digest per stream: {files:?}");
        assert!(digests.iter().all(|d| files.contains(&format!("{d}.metadata.json"))), "signatures beside the digests");
        // Every record is in exactly one delivered log file, byte-exact.
        assert_eq!(records_in_log_files(&bucket, &recs), sorted(&recs));
        store.close().unwrap();
    }

    /// Every eventjson of every Parquet file under `dir`, and the files.
    /// A store (in `dir/store`) holding `n` records of one account, and
    /// where its local bucket goes (`dir/bucket`).
    fn one_account_store(n: usize) -> (tempfile::TempDir, std::path::PathBuf, Store, Vec<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        let store = Store::open(dir.path().join("store"), Options::default()).unwrap();
        let recs: Vec<Vec<u8>> = (0..n).map(|i| record(i, "111122223333")).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
        (dir, bucket, store, recs)
    }

    /// Each of `recs` once for every delivered log file under `bucket`
    /// that holds it byte for byte, sorted.
    fn records_in_log_files(bucket: &std::path::Path, recs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut delivered = Vec::new();
        for f in files_under(bucket).iter().filter(|f| f.contains("/CloudTrail/")) {
            let gz = std::fs::read(f).unwrap();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut body).unwrap();
            delivered.extend(recs.iter().filter(|r| body.windows(r.len()).any(|w| w == r.as_slice())).cloned());
        }
        sorted(&delivered)
    }

    fn sorted(recs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut v = recs.to_vec();
        v.sort();
        v
    }

    fn parquet_rows(dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let files: Vec<String> = files_under(dir).into_iter().filter(|f| f.ends_with(".parquet")).collect();
        let mut rows = Vec::new();
        for f in &files {
            let r = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(std::fs::read(f).unwrap())).unwrap().build().unwrap();
            for batch in r {
                let batch = batch.unwrap();
                let col = batch.column(batch.schema().index_of("eventjson").unwrap()).clone();
                let s = arrow_array::cast::AsArray::as_string::<i32>(&col);
                rows.extend((0..batch.num_rows()).map(|i| s.value(i).to_string()));
            }
        }
        rows.sort();
        (rows, files)
    }

    // Goal: compaction merges a partition's small Parquet files (one per
    // round) into few, and every row stays exactly once: after a merge,
    // after a crash between a merged file's upload and its inputs'
    // deletion (an input put back is found inside the merged range and
    // deleted), and across later rounds; files of another writer in the
    // same partition are left alone.
    #[test]
    fn parquet_compaction_keeps_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        let store = Store::open(dir.path().join("store"), Options::default()).unwrap();
        let recs: Vec<Vec<u8>> = (0..600).map(|i| record(i, if i % 3 == 0 { "111122223333" } else { "444455556666" })).collect();
        let refs: Vec<&[u8]> = recs[..400].iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
        let target: Target = "s3://bkt/p".parse().unwrap();
        let settings = crate::compact::CompactSettings {
            small_bytes: 1 << 30,
            target_bytes: 80 << 10,
            quiet: Duration::from_secs(3600),
            ..Default::default()
        };
        let opts = DeliverOptions {
            file_interval: Duration::from_secs(1),
            round_events_max: 25,
            compact: Some(settings),
            ..DeliverOptions::default()
        };
        let mut d = Deliverer::open(&store, Sink::local(target, &bucket).unwrap(), opts).unwrap();
        while d.next_seq() < 400 {
            d.tick(&store, true).unwrap();
        }
        // Another writer's file in one of the partitions.
        let (_, before) = parquet_rows(&bucket);
        let theirs = std::path::Path::new(&before[0]).with_file_name(crate::compact::file_name("feedfacefeedface", 0, 1));
        std::fs::copy(&before[0], &theirs).unwrap();
        let (rows, before) = parquet_rows(&bucket);
        assert_eq!(before.len(), 2 * 16 + 1, "a file per partition per round");
        let mine_back = before.iter().find(|f| !f.contains("feedface")).unwrap().clone();
        let mine_bytes = std::fs::read(&mine_back).unwrap();
        // Not quiet yet: nothing happens.
        assert_eq!(d.compact_parquet(&store, None).unwrap(), Default::default());
        let report = d.compact_parquet(&store, Some(Duration::ZERO)).unwrap();
        let (rows_after, after) = parquet_rows(&bucket);
        assert_eq!(rows_after, rows, "every row once");
        assert!(after.len() < 10 && after.len() > 3, "merged into a few files of about the target: {after:?}");
        assert_eq!(report.inputs, 32);
        let codec = |f: &String| {
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(std::fs::read(f).unwrap()));
            r.unwrap().metadata().row_group(0).column(0).compression()
        };
        assert!(after.iter().any(|f| matches!(codec(f), parquet::basic::Compression::ZSTD(_))), "merged files are zstd");
        assert!(after.iter().any(|f| f.ends_with(&crate::compact::file_name("feedfacefeedface", 0, 1))), "theirs untouched");
        // A crash after the upload: an input is back.
        std::fs::write(&mine_back, &mine_bytes).unwrap();
        assert_ne!(parquet_rows(&bucket).0, rows, "a row twice while the input is back");
        let report = d.compact_parquet(&store, Some(Duration::ZERO)).unwrap();
        assert_eq!(report.leftovers_deleted, 1, "{report:?}");
        assert!(!std::path::Path::new(&mine_back).exists());
        assert_eq!(parquet_rows(&bucket).0, rows);
        // Later rounds: new small files, merged too, nothing lost.
        let refs: Vec<&[u8]> = recs[400..].iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
        while d.next_seq() < 600 {
            d.tick(&store, true).unwrap();
        }
        d.compact_parquet(&store, Some(Duration::ZERO)).unwrap();
        let (rows_final, _) = parquet_rows(&bucket);
        let theirs_rows = parquet_rows_of(&theirs);
        let mut want: Vec<String> = recs.iter().map(|r| String::from_utf8(r.clone()).unwrap()).chain(theirs_rows).collect();
        want.sort();
        assert_eq!(rows_final, want);
        store.close().unwrap();
    }

    // Goal: a panic in a delivery round (a bug, or a dependency's on
    // bytes it should have refused) does not end the delivery thread while
    // cairnd runs on: it is an error in the status (what GetTrailStatus
    // and `cairn stats` show), and the round is retried and delivers every
    // event.
    #[test]
    fn a_panicking_round_is_an_error_and_retried() {
        use std::sync::atomic::{AtomicBool, AtomicU32};
        let (_dir, bucket, store, recs) = one_account_store(50);
        let calls = AtomicU32::new(0);
        let opts = DeliverOptions { file_interval: Duration::from_secs(1), ..Default::default() };
        let sink = Sink::local("s3://bkt/p".parse().unwrap(), &bucket).unwrap();
        let d = Deliverer::open(&store, sink, opts).unwrap().with_clock(move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("injected into the first round");
            }
            system_ms()
        });
        let status = d.status();
        let stop = AtomicBool::new(false);
        let mut seen = None;
        std::thread::scope(|s| {
            s.spawn(|| d.run(&store, &stop));
            let started = Instant::now();
            while status.lock().next_seq < 50 && started.elapsed() < Duration::from_secs(20) {
                seen = seen.take().or_else(|| status.lock().last_error.clone());
                std::thread::sleep(Duration::from_millis(5));
            }
            stop.store(true, Ordering::SeqCst);
        });
        let seen = seen.expect("the panic was reported in the status");
        assert!(seen.contains("internal error") && seen.contains("injected into the first round"), "{seen}");
        let st = status.lock().clone();
        assert_eq!((st.next_seq, st.delivered_events, st.last_error), (50, 50, None), "retried, delivered, the error cleared");
        assert_eq!(records_in_log_files(&bucket, &recs), sorted(&recs), "every record once");
        store.close().unwrap();
    }

    // Goal: a damaged Parquet file of this writer (bad bytes in the
    // bucket: cut short, or bytes that make the Parquet reader panic)
    // costs no row of any other file: compaction leaves it as it is,
    // merges the files on each side of it, and no later pass takes it for
    // a merged input and deletes it.
    #[test]
    fn compaction_leaves_a_damaged_file_and_merges_around_it() {
        // A file the fuzzer found that panics arrow-rs's reader (kept in
        // the fuzz target's regression corpus).
        let panics_the_reader = include_bytes!("../../tests/fuzz-corpus/parquet/round--660b99497cc0806d");
        compaction_leaves_damage(|whole| whole[..whole.len() / 2].to_vec());
        compaction_leaves_damage(|_| panics_the_reader.to_vec());
    }

    fn compaction_leaves_damage(damage: impl Fn(&[u8]) -> Vec<u8>) {
        let (_dir, bucket, store, _recs) = one_account_store(200);
        let settings = crate::compact::CompactSettings { small_bytes: 1 << 30, target_bytes: 1 << 30, ..Default::default() };
        let opts =
            DeliverOptions { file_interval: Duration::from_secs(1), round_events_max: 25, compact: Some(settings), ..Default::default() };
        let mut d = Deliverer::open(&store, Sink::local("s3://bkt/p".parse().unwrap(), &bucket).unwrap(), opts).unwrap();
        while d.next_seq() < 200 {
            d.tick(&store, true).unwrap();
        }
        let (_, mut files) = parquet_rows(&bucket);
        files.sort();
        assert_eq!(files.len(), 8, "a file per round: {files:?}");
        // The fourth file is damaged.
        let damaged = files[3].clone();
        let bad = damage(&std::fs::read(&damaged).unwrap());
        std::fs::write(&damaged, &bad).unwrap();
        let others = |dir: &std::path::Path| {
            let d = tempfile::tempdir().unwrap();
            for f in files_under(dir).iter().filter(|f| f.ends_with(".parquet") && **f != damaged) {
                std::fs::copy(f, d.path().join(std::path::Path::new(f).file_name().unwrap())).unwrap();
            }
            parquet_rows(d.path())
        };
        let (rows, _) = others(&bucket);
        assert_eq!(rows.len(), 175);
        let report = d.compact_parquet(&store, Some(Duration::ZERO)).unwrap();
        assert_eq!((report.inputs, report.outputs), (7, 2), "merged on each side: {report:?}");
        for _ in 0..2 {
            let (rows_after, after) = others(&bucket);
            assert_eq!(rows_after, rows, "every other row once");
            assert_eq!(after.len(), 2);
            assert_eq!(std::fs::read(&damaged).unwrap(), bad, "the damaged file as it was");
            let report = d.compact_parquet(&store, Some(Duration::ZERO)).unwrap();
            assert_eq!((report.inputs, report.leftovers_deleted), (0, 0), "{report:?}");
        }
        store.close().unwrap();
    }

    fn parquet_rows_of(f: &std::path::Path) -> Vec<String> {
        let d = tempfile::tempdir().unwrap();
        std::fs::copy(f, d.path().join("x.parquet")).unwrap();
        parquet_rows(d.path()).0
    }
}
