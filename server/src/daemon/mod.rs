//! cairnd's serving loop: a listener, one thread per connection (bounded by
//! the connection limit), the handshake, and request dispatch to the
//! engine. Shutdown (SIGINT/SIGTERM) stops accepting, lets every connection
//! finish the request it is serving, then closes the store (which fsyncs).
//!
//! Files: `listener.rs` (accept loop, background threads started),
//! `connection.rs` (handshake, request loop), `dispatch.rs` (one request
//! to the engine and back), `background.rs` (maintenance and Insights
//! threads), `auth.rs` (tokens and roles), `config.rs` (settings),
//! `http/` (the CloudTrail-compatible HTTP API, `--http-listen`),
//! `queries.rs` (SQL queries running in the background for its Lake API).

pub mod auth;
mod background;
pub mod channels;
pub mod config;
mod connection;
mod dispatch;
mod http;
mod listener;
pub mod queries;

pub use dispatch::process_rss;
pub use http::TARGET_PREFIX as HTTP_TARGET_PREFIX;
use listener::accept_loop;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_engine::{Durability, Options, Store};

use cairn_engine::insights::detect::DetectOptions;

use crate::daemon::auth::{AwsKeys, Tokens};
use crate::protocol::WireError;

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
    /// Seals split records into fields (`Options::seal_fields`).
    pub seal_fields: bool,
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
    /// Where the CloudTrail-compatible HTTP API listens (off when absent).
    pub http_listen: Option<String>,
    /// The only region SigV4 scopes may name (any when absent).
    pub http_region: Option<String>,
    /// The account id in the trail's ARN.
    pub account_id: String,
    /// The one trail the store is: its name in DescribeTrails, its ARN
    /// and digest file names (one per node when several deliver into one
    /// bucket).
    pub trail_name: String,
    /// Also deliver Parquet of the events.
    pub deliver_parquet: bool,
    /// Merge a partition's small Parquet files once it is this quiet.
    pub deliver_parquet_compact_after: Duration,
    /// Where to deliver log files and digests (off when absent).
    pub deliver: Option<cairn_deliver::Target>,
    /// An S3-compatible server's URL (else the AWS environment's).
    pub deliver_endpoint: Option<String>,
    pub deliver_virtual_hosted: bool,
    /// Log files at most this often.
    pub deliver_interval: Duration,
    /// One digest per stream per this interval.
    pub digest_interval: Duration,
    /// SQL queries (StartQuery) running at once.
    pub query_concurrency: usize,
    /// Memory of the queries' sorts, joins and aggregations, together.
    pub query_memory_bytes: usize,
    /// A query still running after this long ends TIMED_OUT.
    pub query_timeout: Duration,
    /// A query's results kept for GetQueryResults, at most.
    pub query_results_bytes: usize,
}

impl Config {
    /// The region the HTTP API names: `--http-region`, or us-east-1
    /// (channel ARNs, stored integration events' `awsRegion`, the trail).
    pub fn region(&self) -> &str {
        self.http_region.as_deref().unwrap_or(DEFAULT_REGION)
    }
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
            seal_fields: true,
            insights: true,
            insights_interval: Duration::from_secs(60),
            insights_lookback: Duration::from_secs(86_400),
            insights_sensitivity: DetectOptions::default().sensitivity,
            insecure: false,
            tls: None,
            http_listen: None,
            http_region: None,
            account_id: "000000000000".into(),
            trail_name: "cairn".into(),
            deliver_parquet: true,
            deliver_parquet_compact_after: Duration::from_secs(3600),
            deliver: None,
            deliver_endpoint: None,
            deliver_virtual_hosted: false,
            deliver_interval: Duration::from_secs(300),
            digest_interval: Duration::from_secs(3600),
            query_concurrency: 4,
            query_memory_bytes: 512 << 20,
            query_timeout: Duration::from_secs(3600),
            query_results_bytes: 64 << 20,
        }
    }
}

struct Shared {
    tls: Option<Arc<rustls::ServerConfig>>,
    /// Shared with running SQL queries' scans; closed when the last holder
    /// is done (`listener::accept_loop`).
    store: Arc<Store>,
    /// SQL queries (the HTTP API's StartQuery), started on first use.
    queries: std::sync::OnceLock<queries::Queries>,
    tokens: Tokens,
    aws_keys: AwsKeys,
    channels: channels::Channels,
    cfg: Config,
    shutdown: Arc<AtomicBool>,
    connections: AtomicUsize,
    appended: AtomicU64,
    started: Instant,
    /// Held by every Insights run (the background pass and `Insights`
    /// requests): one at a time, so no Insight event is appended twice.
    insights_lock: parking_lot::Mutex<()>,
    /// Delivery (`--deliver`): its status, and the deliverer until the
    /// accept loop moves it onto its thread.
    delivery: Option<Arc<parking_lot::Mutex<cairn_deliver::DeliveryStatus>>>,
    deliverer: parking_lot::Mutex<Option<cairn_deliver::Deliverer>>,
}

impl Shared {
    /// The daemon's query engine, started on the first query.
    fn queries(&self) -> Result<&queries::Queries> {
        if let Some(q) = self.queries.get() {
            return Ok(q);
        }
        let c = &self.cfg;
        let q =
            queries::Queries::new(self.store.clone(), c.query_concurrency, c.query_memory_bytes, c.query_timeout, c.query_results_bytes)
                .context("starting the query engine")?;
        Ok(self.queries.get_or_init(|| q))
    }
}

/// A running server: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    /// The HTTP API's address, when it listens.
    pub http_addr: Option<SocketAddr>,
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
    let http = match &cfg.http_listen {
        Some(a) => {
            let l = TcpListener::bind(a).with_context(|| format!("listening for the HTTP API on {a}"))?;
            let http_addr = l.local_addr()?;
            if !http_addr.ip().is_loopback() && !cfg.insecure && tls.is_none() {
                bail!(
                    "refusing to serve the HTTP API on non-loopback address {http_addr} without TLS: give --tls-cert and --tls-key, or --insecure to accept plaintext on a trusted network"
                );
            }
            Some(l)
        }
        None => None,
    };
    let http_addr = http.as_ref().map(|l| l.local_addr()).transpose()?;
    let store = Store::open(
        &cfg.data_dir,
        Options {
            durability: cfg.durability,
            checkpoint_interval: cfg.checkpoint_interval,
            // Without Insights, no counters either; turned on later, the
            // segments written meanwhile have theirs derived when read.
            insights_counters: cfg.insights,
            seal_fields: cfg.seal_fields,
            ..Options::default()
        },
    )
    .with_context(|| format!("opening the store in {}", cfg.data_dir.display()))?;
    let (tokens, created) = Tokens::open(&cfg.data_dir)?;
    if let Some(p) = created {
        tracing::info!(path = %p.display(), "created the admin token (mode 0600); `cairn --server {addr}` finds it for a local server");
    }
    let deliverer = match &cfg.deliver {
        Some(target) => {
            let sink = cairn_deliver::Sink::connect(
                target.clone(),
                &cairn_deliver::SinkOptions {
                    endpoint: cfg.deliver_endpoint.clone(),
                    region: None,
                    virtual_hosted: cfg.deliver_virtual_hosted,
                },
            )?;
            let opts = cairn_deliver::DeliverOptions {
                trail: cfg.trail_name.clone(),
                home_region: cfg.region().to_string(),
                file_interval: cfg.deliver_interval,
                digest_interval: cfg.digest_interval,
                parquet: cfg.deliver_parquet,
                compact: Some(cairn_deliver::compact::CompactSettings { quiet: cfg.deliver_parquet_compact_after, ..Default::default() }),
                ..Default::default()
            };
            let d = cairn_deliver::Deliverer::open(&store, sink, opts)?;
            tracing::info!(%target, "delivering log files and digests");
            Some(d)
        }
        None => {
            if let Some((_, seq)) = store.retention_holds()?.into_iter().find(|(n, _)| n == cairn_deliver::run::HOLD_NAME) {
                tracing::warn!(
                    seq,
                    hold = %cfg.data_dir.join("holds").join(cairn_deliver::run::HOLD_NAME).display(),
                    "delivery is off but its retention hold remains: retention keeps every event from seq {seq} until delivery resumes; delete the hold file to release it"
                );
            }
            None
        }
    };
    let aws_keys = AwsKeys::open(&cfg.data_dir)?;
    let channels = channels::Channels::open(&cfg.data_dir)?;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), durability = ?cfg.durability, tls = cfg.tls.is_some(), "listening");
    if let Some(a) = http_addr {
        tracing::info!(addr = %a, keys = %cfg.data_dir.join(auth::AWS_KEYS_FILE).display(), "CloudTrail-compatible HTTP API listening (SigV4; `cairn token create --aws` issues keys)");
    }
    let shared = Arc::new(Shared {
        tls,
        store: Arc::new(store),
        queries: std::sync::OnceLock::new(),
        tokens,
        aws_keys,
        channels,
        cfg,
        shutdown,
        connections: AtomicUsize::new(0),
        appended: AtomicU64::new(0),
        started: Instant::now(),
        insights_lock: parking_lot::Mutex::new(()),
        delivery: deliverer.as_ref().map(|d| d.status()),
        deliverer: parking_lot::Mutex::new(deliverer),
    });
    listener.set_nonblocking(true)?;
    let shutdown = shared.shutdown.clone();
    let accept = std::thread::Builder::new().name("cairnd-accept".into()).spawn(move || accept_loop(listener, http, shared))?;
    Ok(Running { addr, http_addr, shutdown, accept })
}

/// The region named where none is configured (`--http-region`).
const DEFAULT_REGION: &str = "us-east-1";

/// The wall clock in unix milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn err(code: &str, message: impl Into<String>) -> WireError {
    WireError { code: code.into(), message: message.into() }
}
