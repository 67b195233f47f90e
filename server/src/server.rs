//! cairnd's serving loop: a listener, one thread per connection (bounded by
//! the connection limit), the handshake, and request dispatch to the
//! engine. Shutdown (SIGINT/SIGTERM) stops accepting, lets every connection
//! finish the request it is serving, then closes the store (which fsyncs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_engine::compact::CompactOptions;
use cairn_engine::verify::VerifyOptions;
use cairn_engine::{Attr, Durability, Options, Order, Outcome, Query, Store, StoredEvent};

use cairn_engine::insights::detect::DetectOptions;
use cairn_engine::insights::scan::{run as run_insights, RunOptions, Scanner};

use crate::auth::Tokens;
use crate::convert::wire_stats;
use crate::protocol::{
    codes, encode_frame, read_frame, write_frame, FrameError, Hello, HelloReply, Request, RequestBody, Response, ResponseBody, Role,
    WireError, WireEvent, WireOutcome, WireProcess, HELLO_FRAME_BYTES_MAX, MAGIC, PROTOCOL_VERSION, RESPONSE_FRAME_BYTES_MAX,
};

/// How cairnd runs. `Config::default()` is the no-configuration setup.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: String,
    pub durability: Durability,
    pub frame_bytes_max: u32,
    pub connections_max: usize,
    pub idle_timeout: Duration,
    /// How often the store signs a checkpoint while events arrive.
    pub checkpoint_interval: Duration,
    /// Remove segments older than this many days, hourly (0: keep all).
    pub retention_days: u64,
    /// Merge small segments in the background.
    pub compaction: bool,
    /// ... reading at most this many MB of records per second.
    pub compaction_max_mb_per_sec: u64,
    /// How often compaction and retention run.
    pub maintenance_interval: Duration,
    /// Write 5-minute rollups of data events at each maintenance run (off
    /// by default: they add records to the log, as CloudTrail's
    /// aggregation is opt-in).
    pub rollups: bool,
    /// Look for unusual call volumes and error rates in the background and
    /// record them as Insight events.
    pub insights: bool,
    /// ... every this often, over the minutes up to the newest complete one,
    pub insights_interval: Duration,
    /// ... looking back this far for insights that started or ended (the
    /// baseline reaches 28 days further back),
    pub insights_lookback: Duration,
    /// ... with this band width (the detector's sensitivity; lower finds more).
    pub insights_sensitivity: f64,
    /// Allow a non-loopback address without TLS.
    pub insecure: bool,
    /// TLS certificate chain and private key (PEM); plaintext when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./cairn-data"),
            listen: "127.0.0.1:7878".into(),
            durability: Durability::Batch,
            frame_bytes_max: crate::protocol::FRAME_BYTES_DEFAULT,
            connections_max: 256,
            idle_timeout: Duration::from_secs(300),
            checkpoint_interval: Options::default().checkpoint_interval,
            retention_days: 90,
            compaction: true,
            compaction_max_mb_per_sec: 32,
            maintenance_interval: Duration::from_secs(600),
            rollups: false,
            insights: true,
            insights_interval: Duration::from_secs(60),
            insights_lookback: Duration::from_secs(86_400),
            insights_sensitivity: DetectOptions::default().sensitivity,
            insecure: false,
            tls: None,
        }
    }
}

struct Shared {
    tls: Option<Arc<rustls::ServerConfig>>,
    store: Store,
    tokens: Tokens,
    cfg: Config,
    shutdown: Arc<AtomicBool>,
    connections: AtomicUsize,
    appended: AtomicU64,
    started: Instant,
    /// Held by every Insights run (the background pass and `Insights`
    /// requests): one at a time, so no Insight event is appended twice.
    insights_lock: parking_lot::Mutex<()>,
}

/// A running server: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: Arc<AtomicBool>,
    accept: std::thread::JoinHandle<Result<()>>,
}

impl Running {
    /// Asks the server to stop, waits for in-flight requests, closes the store.
    pub fn stop(self) -> Result<()> {
        self.shutdown.store(true, Ordering::SeqCst);
        // The accept loop closes the store once its connections are done.
        self.accept.join().map_err(|_| anyhow::anyhow!("the accept loop panicked"))?
    }
}

/// Opens the store and starts serving. `shutdown` is set by the caller's
/// signal handlers.
pub fn start(cfg: Config, shutdown: Arc<AtomicBool>) -> Result<Running> {
    let listener = TcpListener::bind(&cfg.listen).with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(crate::tls::server_config(cert, key)?),
        None => None,
    };
    if !addr.ip().is_loopback() && !cfg.insecure && tls.is_none() {
        bail!(
            "refusing to listen on non-loopback address {addr} without TLS: give --tls-cert and --tls-key, or --insecure to accept plaintext on a trusted network"
        );
    }
    let store = Store::open(
        &cfg.data_dir,
        Options {
            durability: cfg.durability,
            checkpoint_interval: cfg.checkpoint_interval,
            // Without Insights, no counters either; turned on later, the
            // segments written meanwhile have theirs derived when read.
            insights_counters: cfg.insights,
            ..Options::default()
        },
    )
    .with_context(|| format!("opening the store in {}", cfg.data_dir.display()))?;
    let (tokens, created) = Tokens::open(&cfg.data_dir)?;
    if let Some(p) = created {
        tracing::info!(path = %p.display(), "created the admin token (mode 0600); `cairn --server {addr}` finds it for a local server");
    }
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), durability = ?cfg.durability, tls = cfg.tls.is_some(), "listening");
    let shared = Arc::new(Shared {
        tls,
        store,
        tokens,
        cfg,
        shutdown,
        connections: AtomicUsize::new(0),
        appended: AtomicU64::new(0),
        started: Instant::now(),
        insights_lock: parking_lot::Mutex::new(()),
    });
    listener.set_nonblocking(true)?;
    let shutdown = shared.shutdown.clone();
    let accept = std::thread::Builder::new().name("cairnd-accept".into()).spawn(move || accept_loop(listener, shared))?;
    Ok(Running { addr, shutdown, accept })
}

/// Background compaction and retention, every `maintenance_interval`,
/// until shutdown.
fn maintenance_loop(shared: &Shared) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut last = Instant::now();
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() < shared.cfg.maintenance_interval {
            continue;
        }
        last = Instant::now();
        if shared.cfg.compaction {
            let opts = cairn_engine::compact::CompactOptions {
                target_bytes: 64 * 1024 * 1024,
                small_bytes: 16 * 1024 * 1024,
                max_bytes_per_sec: shared.cfg.compaction_max_mb_per_sec.saturating_mul(1_000_000),
                stop: Some(stop.clone()),
                ..Default::default()
            };
            stop.store(false, Ordering::SeqCst);
            let watch = {
                let (stop, flag) = (stop.clone(), shared.shutdown.clone());
                std::thread::spawn(move || {
                    while !flag.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    stop.store(true, Ordering::SeqCst);
                })
            };
            match shared.store.compact(&opts, &mut |_, _| {}) {
                Ok(r) if !r.runs.is_empty() => tracing::info!(
                    runs = r.runs.len(),
                    segments_before = r.segments_before,
                    segments_after = r.segments_after,
                    bytes_before = r.bytes_before,
                    bytes_after = r.bytes_after,
                    "compacted"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("compaction: {e}"),
            }
            stop.store(true, Ordering::SeqCst);
            let _ = watch.join();
        }
        if shared.cfg.rollups {
            match cairn_engine::rollup::rollup(&shared.store, &cairn_engine::rollup::RollupOptions::default()) {
                Ok(r) if r.appended > 0 => tracing::info!(records = r.appended, data_events = r.data_events, "rollups"),
                Ok(_) => {}
                Err(e) => tracing::warn!("rollups: {e}"),
            }
        }
        if shared.cfg.retention_days > 0 {
            let older_than = Duration::from_secs(shared.cfg.retention_days.saturating_mul(86_400));
            match shared.store.retain(&cairn_engine::retention::RetentionOptions { older_than, dry_run: false, stored_at_least: true }) {
                Ok(r) if r.segments_removed > 0 => tracing::info!(
                    removed = r.segments_removed,
                    events = r.events_removed,
                    min_retained_seq = r.min_retained_seq,
                    "retention"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("retention: {e}"),
            }
        }
    }
}

/// Minutes a drop must have lasted past its confirmation before cairnd
/// records it: CloudTrail delivers events up to 15 minutes late, and a
/// late delivery must not look like a silence.
const DROP_SETTLE_MINUTES: i64 = 15;

/// Background Insights, every `insights_interval` (first a few seconds
/// after start, to catch up after a restart), until shutdown. Each pass
/// appends the Insight events of what started or ended in the lookback
/// window that the store does not hold yet: a restart re-finds an open
/// insight under the same ids, so nothing is lost or recorded twice.
fn insights_loop(shared: &Shared) {
    let mut next = Instant::now() + Duration::from_secs(3);
    let mut last: Option<(i64, u64)> = None;
    let lookback = (shared.cfg.insights_lookback.as_secs() / 60).max(1) as i64;
    let detect = DetectOptions { sensitivity: shared.cfg.insights_sensitivity, ..DetectOptions::default() };
    // Kept between passes: the sealed segments' counts are read once.
    let mut scanner = Scanner::new();
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
        if Instant::now() < next {
            continue;
        }
        next = Instant::now() + shared.cfg.insights_interval;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64) / 60_000;
        let size = shared.store.stats().map(|s| s.tree_size).unwrap_or(0);
        if last == Some((now, size)) {
            continue; // nothing new to look at
        }
        let started = Instant::now();
        // One run at a time with `Insights` requests (exactly once).
        let result = {
            let _one = shared.insights_lock.lock();
            scanner.pass(&shared.store, now, lookback, DROP_SETTLE_MINUTES, &detect)
        };
        match result {
            Ok(Some(r)) => {
                let a = r.appended.unwrap_or_default();
                if a.appended > 0 {
                    tracing::info!(
                        insights = r.insights.len(),
                        appended = a.appended,
                        ms = started.elapsed().as_millis() as u64,
                        "insights"
                    );
                }
                // What the store holds now, unless events arrived meanwhile.
                last = Some((now, size + a.appended));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("insights: {e}"),
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) -> Result<()> {
    let mut workers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let maintenance = {
        let s = shared.clone();
        std::thread::Builder::new().name("cairnd-maintenance".into()).spawn(move || maintenance_loop(&s))?
    };
    let insights = if shared.cfg.insights {
        let s = shared.clone();
        Some(std::thread::Builder::new().name("cairnd-insights".into()).spawn(move || insights_loop(&s))?)
    } else {
        None
    };
    while !shared.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                workers.retain(|w| !w.is_finished());
                let s = shared.clone();
                let spawned = std::thread::Builder::new().name("cairnd-conn".into()).spawn(move || {
                    tracing::debug!(%peer, "connection opened");
                    if let Err(e) = serve(stream, &s) {
                        tracing::warn!(%peer, "connection ended: {e:#}");
                    }
                });
                match spawned {
                    Ok(h) => workers.push(h),
                    Err(e) => tracing::error!("cannot start a connection thread: {e}"),
                }
            }
            // Nothing pending: the listener is non-blocking so the loop can
            // notice shutdown; wait a little before polling again.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => tracing::warn!("accept: {e}"),
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    for w in workers {
        let _ = w.join();
    }
    let _ = maintenance.join();
    if let Some(t) = insights {
        let _ = t.join();
    }
    let shared = Arc::try_unwrap(shared).map_err(|_| anyhow::anyhow!("connections still hold the store"))?;
    shared.store.close().context("closing the store")?;
    tracing::info!("store closed");
    Ok(())
}

/// Decrements the connection count when a connection ends.
struct ConnGuard<'a>(&'a AtomicUsize);
impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn err(code: &str, message: impl Into<String>) -> WireError {
    WireError { code: code.into(), message: message.into() }
}

/// A connection's byte stream: plain TCP or TLS over it.
trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// Waits until a frame starts arriving (possibly already buffered), the
/// connection idles out, or the server shuts down. Returns false when the
/// connection should end.
fn wait_for_frame(reader: &mut BufReader<Box<dyn Io>>, raw: &TcpStream, shared: &Shared) -> std::io::Result<bool> {
    let idle_since = Instant::now();
    raw.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        if shared.shutdown.load(Ordering::SeqCst) || idle_since.elapsed() >= shared.cfg.idle_timeout {
            return Ok(false);
        }
        match reader.fill_buf() {
            Ok([]) => return Ok(false),
            Ok(_) => {
                raw.set_read_timeout(Some(Duration::from_secs(60)))?;
                return Ok(true);
            }
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> Result<()> {
    stream.set_nodelay(true)?;
    let raw = stream.try_clone()?;
    let io: Box<dyn Io> = match &shared.tls {
        Some(cfg) => Box::new(rustls::StreamOwned::new(rustls::ServerConnection::new(cfg.clone())?, stream)),
        None => Box::new(stream),
    };
    let mut reader = BufReader::with_capacity(1 << 16, io);
    let n = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = ConnGuard(&shared.connections);
    if n > shared.cfg.connections_max {
        tracing::warn!(limit = shared.cfg.connections_max, "connection refused: limit reached");
        let msg = format!("the server's connection limit of {} is reached", shared.cfg.connections_max);
        write_frame(reader.get_mut(), &HelloReply::Error(err(codes::TOO_MANY_CONNECTIONS, msg)))?;
        return Ok(());
    }
    if !wait_for_frame(&mut reader, &raw, shared)? {
        return Ok(());
    }
    // The handshake frame is small: a tight limit before authentication.
    let hello: Hello = match read_frame(&mut reader, HELLO_FRAME_BYTES_MAX) {
        Ok(h) => h,
        Err(FrameError::Closed) => return Ok(()),
        Err(e) => {
            let _ = write_frame(reader.get_mut(), &HelloReply::Error(err(codes::MALFORMED_FRAME, format!("bad handshake: {e}"))));
            return Ok(());
        }
    };
    if hello.magic != MAGIC || hello.version != PROTOCOL_VERSION {
        let msg = if hello.magic != MAGIC {
            "not a cairn client (the handshake's magic is not CAIRNP01)".to_string()
        } else {
            format!(
                "this server speaks cairn protocol version {PROTOCOL_VERSION}; the client sent version {}: use a client of the same release as the server",
                hello.version
            )
        };
        write_frame(reader.get_mut(), &HelloReply::Error(err(codes::UNSUPPORTED_VERSION, msg)))?;
        return Ok(());
    }
    let Some(role) = shared.tokens.check(&hello.token) else {
        tracing::warn!(peer = ?raw.peer_addr().ok(), "authentication failed");
        write_frame(reader.get_mut(), &HelloReply::Error(err(codes::AUTHENTICATION_FAILED, "missing or unknown token")))?;
        return Ok(());
    };
    write_frame(
        reader.get_mut(),
        &HelloReply::Ok { version: PROTOCOL_VERSION, server: format!("cairnd {}", env!("CARGO_PKG_VERSION")), role },
    )?;
    loop {
        if !wait_for_frame(&mut reader, &raw, shared)? {
            return Ok(());
        }
        let req: Request = match read_frame(&mut reader, shared.cfg.frame_bytes_max) {
            Ok(r) => r,
            Err(FrameError::Closed) => return Ok(()),
            Err(e @ FrameError::TooLarge { .. }) => {
                let _ = write_frame(
                    reader.get_mut(),
                    &Response { id: 0, body: ResponseBody::Error(err(codes::FRAME_TOO_LARGE, e.to_string())) },
                );
                return Ok(());
            }
            Err(e) => {
                // The stream's framing can no longer be trusted: answer, end.
                let _ = write_frame(
                    reader.get_mut(),
                    &Response { id: 0, body: ResponseBody::Error(err(codes::MALFORMED_FRAME, e.to_string())) },
                );
                return Ok(());
            }
        };
        handle(req, role, shared, reader.get_mut(), &raw)?;
    }
}

/// This process's resident set size and its peak, from /proc on Linux.
pub fn process_rss() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return (None, None) };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Waits up to `wait` for the client of a tailing connection: has it gone
/// (end of stream, or a broken connection)? A tailing connection serves
/// nothing else, so whatever the client sends is read from the raw socket
/// and dropped (under TLS too: only the sending side is used from now on).
fn client_gone(raw: &TcpStream, wait: Duration) -> bool {
    if raw.set_read_timeout(Some(wait)).is_err() {
        return true;
    }
    let mut discard = [0u8; 4096];
    match (&*raw).read(&mut discard) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted),
    }
}

fn allowed(role: Role, body: &RequestBody) -> bool {
    match body {
        RequestBody::Append { .. } => matches!(role, Role::Ingest | Role::Admin),
        RequestBody::CreateToken { .. }
        | RequestBody::RotateKey
        | RequestBody::SignDigest { .. }
        | RequestBody::Compact { .. }
        | RequestBody::Retain { .. }
        | RequestBody::Rollup { .. }
        | RequestBody::Insights { backfill: true, .. } => role == Role::Admin,
        _ => matches!(role, Role::Read | Role::Admin),
    }
}

/// Events are sent in chunks (export, tail) of at most this many, or about
/// this many record bytes: far below the response frame bound.
const CHUNK_EVENTS_MAX: usize = 1000;
const CHUNK_RECORD_BYTES_MAX: usize = 4 << 20;

/// Gathers events into chunks of at most [`CHUNK_EVENTS_MAX`] events or
/// about [`CHUNK_RECORD_BYTES_MAX`] bytes (export and tail frames).
#[derive(Default)]
struct Chunker {
    events: Vec<WireEvent>,
    bytes: usize,
}

impl Chunker {
    /// Adds an event; a full chunk comes back to be sent.
    fn add(&mut self, e: StoredEvent) -> Option<Vec<WireEvent>> {
        self.bytes += e.record.len() + 32;
        self.events.push(WireEvent::from(e));
        if self.events.len() < CHUNK_EVENTS_MAX && self.bytes < CHUNK_RECORD_BYTES_MAX {
            return None;
        }
        self.bytes = 0;
        Some(std::mem::take(&mut self.events))
    }

    /// What is left, if anything.
    fn rest(self) -> Option<Vec<WireEvent>> {
        (!self.events.is_empty()).then_some(self.events)
    }
}

/// Sends one response; one that would exceed the response frame bound is
/// replaced by a `ResponseTooLarge` error naming its size.
fn send(w: &mut Box<dyn Io>, id: u64, body: ResponseBody) -> std::io::Result<()> {
    let frame = encode_frame(&Response { id, body })?;
    let body_len = frame.len() - 4;
    if body_len <= RESPONSE_FRAME_BYTES_MAX as usize {
        w.write_all(&frame)?;
        return w.flush();
    }
    let msg = format!(
        "the answer is {body_len} bytes, more than the {RESPONSE_FRAME_BYTES_MAX} bytes a response frame may hold: narrow the request (a shorter time range, more filters)"
    );
    write_frame(w, &Response { id, body: ResponseBody::Error(err(codes::RESPONSE_TOO_LARGE, msg)) })
}

fn handle(req: Request, role: Role, shared: &Shared, w: &mut Box<dyn Io>, raw: &TcpStream) -> Result<()> {
    let id = req.id;
    let reply = |w: &mut Box<dyn Io>, body: ResponseBody| send(w, id, body);
    if id == 0 {
        let msg = "request id 0 is reserved (the server answers frames it cannot decode with id 0): use ids from 1";
        return Ok(reply(w, ResponseBody::Error(err(codes::INVALID_REQUEST_ID, msg)))?);
    }
    if !allowed(role, &req.body) {
        let article = if role == Role::Ingest || role == Role::Admin { "an" } else { "a" };
        let msg = format!("{article} {} token cannot do this", role.name());
        return Ok(reply(w, ResponseBody::Error(err(codes::ACCESS_DENIED, msg)))?);
    }
    let store = &shared.store;
    let body = match req.body {
        RequestBody::Append { records } => {
            let refs: Vec<&[u8]> = records.iter().map(|r| r.0.as_slice()).collect();
            match store.append(&refs) {
                Ok(outcomes) => {
                    let stored = outcomes.iter().filter(|o| matches!(o, Outcome::Stored(_))).count();
                    shared.appended.fetch_add(stored as u64, Ordering::Relaxed);
                    ResponseBody::Appended { outcomes: outcomes.into_iter().map(WireOutcome::from).collect() }
                }
                Err(cairn_engine::Error::BatchTooLarge { what, value, limit }) => {
                    ResponseBody::Error(err(codes::BATCH_TOO_LARGE, format!("{what} is {value}, the limit is {limit}")))
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Lookup { query, max_results, next_token } => match Query::try_from(&query) {
            Err(e) => ResponseBody::Error(e),
            Ok(q) => match store.lookup(&q, max_results.map(|m| m as usize), next_token.as_deref()) {
                Ok(p) => ResponseBody::Page { events: p.events.into_iter().map(WireEvent::from).collect(), next_token: p.next_token },
                Err(e) => ResponseBody::Error(WireError::from(e)),
            },
        },
        RequestBody::Count { query, by } => match (Query::try_from(&query), Attr::parse(&by)) {
            (Err(e), _) => ResponseBody::Error(e),
            (_, None) => ResponseBody::Error(err(codes::INVALID_LOOKUP_ATTRIBUTES, format!("unknown attribute {by:?}"))),
            (Ok(q), Some(by)) => match store.count(&q, by) {
                Ok(counts) => ResponseBody::Counts { counts },
                Err(e) => ResponseBody::Error(WireError::from(e)),
            },
        },
        RequestBody::Get { event_id } => match store.get(&event_id) {
            Ok(events) => ResponseBody::Events { events: events.into_iter().map(WireEvent::from).collect() },
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::Stats => match store.stats() {
            Ok(s) => ResponseBody::Stats(wire_stats(
                &s,
                shared.connections.load(Ordering::SeqCst) as u64,
                shared.appended.load(Ordering::Relaxed),
                shared.started.elapsed().as_millis() as u64,
            )),
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::Checkpoint => match store.checkpoint() {
            Ok(c) => ResponseBody::Checkpoint { note: c.map(|c| c.note) },
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::PublicKeys => ResponseBody::PublicKeys { keys: store.verifiers().iter().map(|v| v.encode()).collect() },
        RequestBody::RotateKey => match store.rotate_key() {
            Ok(_) => {
                tracing::info!("rotated the signing key");
                ResponseBody::PublicKeys { keys: store.verifiers().iter().map(|v| v.encode()).collect() }
            }
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
        },
        RequestBody::Prove { seq, event_id, checkpoint } => match store.proof_bundles(seq, event_id.as_deref(), checkpoint.as_deref()) {
            Ok(bundles) => ResponseBody::Proofs { bundles },
            Err(e) => ResponseBody::Error(e.into()),
        },
        RequestBody::Consistency { old, new } => match store.consistency_bundle(&old, new.as_deref()) {
            Ok(bundle) => ResponseBody::Consistency { bundle },
            Err(e) => ResponseBody::Error(e.into()),
        },
        RequestBody::Verify { checkpoints, public_keys } => {
            let mut io_err = None;
            let result = VerifyOptions::from_text(&checkpoints, &public_keys).and_then(|opts| {
                store.verify(&opts, &mut |done_bytes, total_bytes| {
                    if io_err.is_none() {
                        if let Err(e) = reply(w, ResponseBody::VerifyProgress { done_bytes, total_bytes }) {
                            io_err = Some(e);
                        }
                    }
                })
            });
            if let Some(e) = io_err {
                return Err(e.into());
            }
            match result {
                Ok(r) => ResponseBody::VerifyReport((&r).into()),
                Err(e) => ResponseBody::Error(e.into()),
            }
        }
        RequestBody::SignDigest { end_time, location, sha256_hex, previous } => {
            match store.sign_digest(&end_time, &location, &sha256_hex, previous.as_deref()) {
                Ok((signature, key)) => ResponseBody::DigestSignature { signature, key: key.encode() },
                Err(e) => ResponseBody::Error(err(codes::INVALID_PARAMETER, e.to_string())),
            }
        }
        RequestBody::Compact { options } => {
            let o = CompactOptions::from(&options);
            match store.compact(&o, &mut |_, _| {}) {
                Ok(r) => {
                    tracing::info!(
                        runs = r.runs.len(),
                        segments_before = r.segments_before,
                        segments_after = r.segments_after,
                        "compacted"
                    );
                    ResponseBody::Compacted((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Retain { older_than_secs, dry_run } => {
            let o = cairn_engine::retention::RetentionOptions {
                older_than: Duration::from_secs(older_than_secs),
                dry_run,
                stored_at_least: false,
            };
            match store.retain(&o) {
                Ok(r) => {
                    tracing::info!(removed = r.segments_removed, min_retained_seq = r.min_retained_seq, dry_run, "retention");
                    ResponseBody::Retained((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Insights { start_ms, end_ms, backfill, sensitivity_milli } => {
            let mut detect = DetectOptions::default();
            if let Some(s) = sensitivity_milli {
                detect.sensitivity = f64::from(s) / 1000.0;
            }
            let o = RunOptions { start_ms, end_ms, backfill, ending: false, detect };
            // A scanner of its own (a request may reach far back; the
            // daemon's stays small), one run at a time with the daemon's.
            let result = {
                let _one = shared.insights_lock.lock();
                run_insights(store, &mut Scanner::new(), &o)
            };
            match result {
                Ok(r) => {
                    if let Some(a) = &r.appended {
                        tracing::info!(insights = r.insights.len(), appended = a.appended, "insights backfill");
                    }
                    ResponseBody::Insights((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Rollup { start_ms, end_ms, dry_run } => {
            match cairn_engine::rollup::rollup(store, &cairn_engine::rollup::RollupOptions { start_ms, end_ms, dry_run }) {
                Ok(r) => {
                    tracing::info!(records = r.records, appended = r.appended, dry_run, "rollup");
                    ResponseBody::RolledUp((&r).into())
                }
                Err(e) => ResponseBody::Error(err(codes::INTERNAL, e.to_string())),
            }
        }
        RequestBody::Process => {
            let m = store.memory();
            let (rss_bytes, peak_rss_bytes) = process_rss();
            ResponseBody::Process(WireProcess {
                rss_bytes,
                peak_rss_bytes,
                memtable_bytes: m.memtable_bytes,
                block_cache_bytes: m.block_cache_bytes,
                id_filter_bytes: m.id_filter_bytes,
            })
        }
        RequestBody::Export { query, oldest_first } => {
            let q = match Query::try_from(&query) {
                Ok(q) => q,
                Err(e) => return Ok(reply(w, ResponseBody::Error(e))?),
            };
            let order = if oldest_first { Order::OldestFirst } else { Order::NewestFirst };
            let mut chunks = Chunker::default();
            let mut io_err = None;
            let result = store.export(&q, order, |e| {
                if let Some(events) = chunks.add(e) {
                    if let Err(e) = reply(w, ResponseBody::ExportChunk { events }) {
                        io_err = Some(e);
                        return false;
                    }
                }
                true
            });
            if let Some(e) = io_err {
                return Err(e.into());
            }
            match result {
                Ok(count) => {
                    if let Some(events) = chunks.rest() {
                        reply(w, ResponseBody::ExportChunk { events })?;
                    }
                    ResponseBody::ExportEnd { count }
                }
                Err(e) => ResponseBody::Error(WireError::from(e)),
            }
        }
        RequestBody::Tail { query, from_seq } => {
            let q = match Query::try_from(&query) {
                Ok(q) => q,
                Err(e) => return Ok(reply(w, ResponseBody::Error(e))?),
            };
            let mut next = match from_seq {
                Some(s) => s,
                None => store.stats().map(|s| s.tree_size).unwrap_or(0),
            };
            // Poll the store for new events until the client goes away or
            // the server shuts down; a write error ends the connection.
            while !shared.shutdown.load(Ordering::SeqCst) {
                match store.events_since(next, &q, CHUNK_EVENTS_MAX) {
                    Ok((events, n)) => {
                        next = n;
                        let any = !events.is_empty();
                        let mut chunks = Chunker::default();
                        for e in events {
                            if let Some(events) = chunks.add(e) {
                                reply(w, ResponseBody::TailEvents { events })?;
                            }
                        }
                        if let Some(events) = chunks.rest() {
                            reply(w, ResponseBody::TailEvents { events })?;
                        }
                        if !any && client_gone(raw, Duration::from_millis(100)) {
                            return Ok(());
                        }
                    }
                    Err(e) => return Ok(reply(w, ResponseBody::Error(WireError::from(e)))?),
                }
            }
            return Ok(());
        }
        RequestBody::CreateToken { role, name } => match shared.tokens.create(role, &name) {
            Ok(token) => ResponseBody::Token { token },
            Err(e) => ResponseBody::Error(err(codes::INTERNAL, format!("{e:#}"))),
        },
    };
    Ok(reply(w, body)?)
}
