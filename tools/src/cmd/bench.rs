//! `cairn bench`: drives generated events through the real append path
//! (embedded, or through a cairnd with `--server`) and reports events/s,
//! MB/s, batch latency percentiles, bytes per event on disk, and with
//! `--duration` throughput and resident memory every 10 seconds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_engine::{Durability, Options, Store};
use cairn_server::client::Client;

use super::{parse_duration, Global, Output};
use crate::backend::{Ack, Backend};
use parking_lot::Mutex;

use crate::gen::{GenOptions, Generator, Profile};

/// Measure ingest throughput through the real append path.
///
/// Generates events in memory, then appends them from --clients threads
/// (connections, with --server) in batches, and reports events/s, MB/s,
/// batch latency p50/p99, and bytes/event on disk (after sealing when
/// embedded). Embedded, it uses a temporary directory unless --data-dir
/// names an empty one. Each --seed's events start 30 days after the
/// previous seed's, so repeated runs continue one timeline.
///
/// With --duration the run lasts that long, generating as it goes
/// (generation then counts in the time), and prints throughput and
/// resident memory (the server's with --server) every 10 s: a soak test.
///
/// With --compact (embedded) it then compacts the whole store with a
/// dictionary at compaction's defaults (`cairn compact --all
/// --dictionary`) and reports its MB/s of records and bytes/event after.
///
/// Examples:
///   cairn bench --server 127.0.0.1:7878 --clients 4
///   cairn bench --server 127.0.0.1:7878 --clients 4 --duration 10m
///   cairn bench --events 1000000 --no-insights   # what counting for Insights costs
///   cairn bench --events 1000000 --compact       # compaction speed and size after
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct BenchArgs {
    /// Events to generate and append.
    #[arg(long, default_value_t = 500_000)]
    pub events: usize,
    /// Run this long instead of a fixed count (e.g. 90s, 10m, 1h).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Pad generated records to about this many bytes.
    #[arg(long)]
    pub record_bytes: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Embedded: keep no Insights counters (as `cairnd --insights
    /// false`), to measure what they cost.
    #[arg(long)]
    pub no_insights: bool,
    /// Embedded: afterwards compact everything with a dictionary and
    /// report compaction's speed and the bytes/event after it.
    #[arg(long)]
    pub compact: bool,
    /// The generated data: standard, diverse (closer to a large
    /// organisation's trail; see `cairn gen --help`), or both, one after
    /// the other. Every figure names its profile.
    #[arg(long, value_enum, default_value_t = BenchProfile::Standard)]
    pub profile: BenchProfile,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

impl BenchArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { events, duration, batch, clients, record_bytes, seed, no_insights, compact, profile, output } = self;
        // Bench uses a temporary directory unless one is named, or a
        // server with --server.
        let data_dir = g.data_dir.clone();
        let server = match &g.server {
            Some(addr) => Some((addr.clone(), g.token()?, g.tls_ca.clone())),
            None => None,
        };
        let profiles: &[Profile] = match profile {
            BenchProfile::Standard => &[Profile::Standard],
            BenchProfile::Diverse => &[Profile::Diverse],
            BenchProfile::Both => &[Profile::Standard, Profile::Diverse],
        };
        if record_bytes.is_some() && profiles.contains(&Profile::Diverse) {
            bail!("--record-bytes pads the standard profile only; the diverse profile has natural sizes");
        }
        let mut reports = Vec::new();
        for &p in profiles {
            let report = run(&BenchOptions {
                server: server.clone(),
                // A fresh store per profile when both run in one directory.
                data_dir: data_dir.as_ref().map(|d| if profiles.len() > 1 { d.join(p.name()) } else { d.clone() }),
                events: *events,
                duration: *duration,
                batch: *batch,
                clients: *clients,
                record_bytes: *record_bytes,
                durability: g.durability.parse()?,
                seed: *seed,
                zstd_level: g.zstd_level,
                segment_bytes: g.segment_bytes,
                seal_fields: g.seal_fields,
                insights: !*no_insights,
                compact: *compact,
                profile: p,
            })?;
            if matches!(output, Output::Table) {
                if !reports.is_empty() {
                    println!();
                }
                print_table(&report);
            }
            reports.push(report);
        }
        if matches!(output, Output::Json) {
            let v = match reports.as_slice() {
                [one] => serde_json::to_value(one)?,
                many => serde_json::Value::Object(
                    many.iter().map(|r| Ok((r.profile.to_string(), serde_json::to_value(r)?))).collect::<Result<_>>()?,
                ),
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `cairn bench --profile`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchProfile {
    Standard,
    Diverse,
    /// Both, one after the other (a fresh store each).
    Both,
}

pub struct BenchOptions {
    /// Benchmark this server (address, token, TLS CA file) instead of an
    /// embedded store.
    pub server: Option<(String, String, Option<PathBuf>)>,
    pub data_dir: Option<PathBuf>,
    pub events: usize,
    /// Run for this long instead, generating events as it goes.
    pub duration: Option<Duration>,
    pub batch: usize,
    pub clients: usize,
    pub record_bytes: Option<usize>,
    pub durability: Durability,
    pub seed: u64,
    pub zstd_level: i32,
    /// Embedded: the WAL bytes at which the active segment rolls.
    pub segment_bytes: u64,
    /// Embedded: seals split records into fields (the default).
    pub seal_fields: bool,
    /// Embedded: keep the Insights counters (the default).
    pub insights: bool,
    /// Embedded: compact everything with a dictionary afterwards.
    pub compact: bool,
    /// Which generated data (every figure names it).
    pub profile: Profile,
}

/// Each seed's events start this much later than the previous seed's
/// (30 days), so runs with different seeds continue one timeline instead
/// of piling into the same hours.
const SEED_SPAN_MS: i64 = 30 * 86_400_000;
/// How often a timed run samples throughput and memory.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub mode: &'static str,
    /// The generator profile the figures were measured on.
    pub profile: &'static str,
    pub events: u64,
    pub clients: usize,
    pub batch: usize,
    pub durability: String,
    pub record_bytes_avg: f64,
    pub seconds: f64,
    pub events_per_sec: f64,
    pub mb_per_sec: f64,
    pub batch_latency_p50_ms: f64,
    pub batch_latency_p99_ms: f64,
    pub seal_seconds: f64,
    pub disk_bytes: u64,
    pub bytes_per_event: f64,
    pub compression_ratio: f64,
    /// Throughput and memory every 10 s (timed runs with --duration).
    pub intervals: Vec<Interval>,
    /// Highest resident set size seen: the server's with --server, else
    /// this process's (generator and store together).
    pub rss_max_bytes: Option<u64>,
    /// With --compact: the compaction that followed.
    pub compaction: Option<CompactionBench>,
}

/// `cairn compact --all --dictionary` after the ingest (defaults otherwise).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompactionBench {
    pub seconds: f64,
    /// Record bytes rewritten per second (dictionary training included).
    pub mb_per_sec: f64,
    pub segments_before: usize,
    pub segments_after: usize,
    pub disk_bytes: u64,
    pub bytes_per_event: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Interval {
    /// Seconds since the start, at the end of the interval.
    pub at_secs: f64,
    pub events_per_sec: f64,
    pub rss_bytes: Option<u64>,
}

/// Where batches come from: generated up front (--events), or on the fly
/// until a deadline (--duration; generation then counts in the time).
enum Source {
    Fixed { batches: Vec<Vec<Vec<u8>>>, next: AtomicUsize },
    Live { gen: Box<Mutex<Generator>>, until: Instant, batch: usize },
}

impl Source {
    fn next_batch(&self) -> Option<Vec<Vec<u8>>> {
        match self {
            Source::Fixed { batches, next } => batches.get(next.fetch_add(1, Ordering::Relaxed)).cloned(),
            Source::Live { gen, until, batch } => {
                if Instant::now() >= *until {
                    return None;
                }
                let mut g = gen.lock();
                Some(
                    (0..*batch)
                        .map(|_| {
                            let mut r = Vec::with_capacity(2048);
                            g.next_record(&mut r);
                            r
                        })
                        .collect(),
                )
            }
        }
    }
}

pub fn run(args: &BenchOptions) -> Result<BenchReport> {
    if args.events == 0 || args.batch == 0 || args.clients == 0 {
        bail!("--events, --batch and --clients must be at least 1");
    }
    if args.compact && args.server.is_some() {
        bail!("--compact measures an embedded store; against a server, run `cairn --server ... compact --all --dictionary` during or after the bench");
    }
    let (dir, _tmp) = match &args.data_dir {
        _ if args.server.is_some() => (PathBuf::new(), None),
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                bail!("bench needs an empty or new --data-dir, and {} is not empty", d.display());
            }
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("cairn-bench-").tempdir().context("creating a temporary data directory")?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let start_ms = GenOptions::default().start_ms + (args.seed.saturating_sub(1) % 1000) as i64 * SEED_SPAN_MS;
    let mut gen = Generator::new(GenOptions {
        seed: args.seed,
        record_bytes: args.record_bytes,
        start_ms,
        profile: args.profile,
        ..GenOptions::default()
    });
    let source = match args.duration {
        Some(d) => Source::Live { gen: Box::new(Mutex::new(gen)), until: Instant::now() + d, batch: args.batch },
        None => {
            // Generate first: generation is not what is measured.
            let mut batches = Vec::with_capacity(args.events.div_ceil(args.batch));
            let mut left = args.events;
            while left > 0 {
                let n = left.min(args.batch);
                batches.push(
                    (0..n)
                        .map(|_| {
                            let mut r = Vec::new();
                            gen.next_record(&mut r);
                            r
                        })
                        .collect(),
                );
                left -= n;
            }
            Source::Fixed { batches, next: AtomicUsize::new(0) }
        }
    };
    let backend = match &args.server {
        Some((addr, token, ca)) => Backend::Remote {
            client: Client::connect_with(addr, token, ca.as_deref())?,
            addr: addr.clone(),
            token: token.clone(),
            tls_ca: ca.clone(),
        },
        None => Backend::Local(Store::open(
            &dir,
            Options {
                durability: args.durability,
                zstd_level: args.zstd_level,
                segment_bytes: args.segment_bytes,
                insights_counters: args.insights,
                seal_fields: args.seal_fields,
                ..Options::default()
            },
        )?),
    };
    // A server may hold other data: bytes/event counts everything it stores.
    let mut monitor = match &args.server {
        Some((addr, token, ca)) => Some(Client::connect_with(addr, token, ca.as_deref())?),
        None => None,
    };
    let events_before = match &mut monitor {
        Some(c) => c.stats()?.events,
        None => 0,
    };
    let rss_now = |monitor: &mut Option<Client>| match monitor {
        // An older server cannot tell (and closes the connection).
        Some(c) => c.process().ok().and_then(|p| p.rss_bytes),
        None => own_rss_bytes(),
    };
    let mut rss_max = rss_now(&mut monitor);
    let latencies = Mutex::new(Vec::new());
    let (acked, raw_bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut intervals = Vec::new();
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..args.clients)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut appender = backend.appender()?;
                    while let Some(b) = source.next_batch() {
                        let (n, bytes) = (b.len() as u64, b.iter().map(|r| r.len() as u64).sum::<u64>());
                        let t = Instant::now();
                        let out = appender.append(b)?;
                        latencies.lock().push(t.elapsed());
                        if let Some(Ack::Rejected { message, .. }) = out.iter().find(|o| matches!(o, Ack::Rejected { .. })) {
                            bail!("a generated record was rejected: {message}");
                        }
                        acked.fetch_add(n, Ordering::Relaxed);
                        raw_bytes.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        if args.duration.is_some() {
            let (mut last_t, mut last_n) = (Instant::now(), 0u64);
            while !handles.iter().all(|h| h.is_finished()) {
                std::thread::park_timeout(Duration::from_millis(100));
                if last_t.elapsed() < SAMPLE_EVERY {
                    continue;
                }
                let n = acked.load(Ordering::Relaxed);
                let rss = rss_now(&mut monitor);
                rss_max = rss_max.max(rss);
                intervals.push(Interval {
                    at_secs: start.elapsed().as_secs_f64(),
                    events_per_sec: (n - last_n) as f64 / last_t.elapsed().as_secs_f64(),
                    rss_bytes: rss,
                });
                (last_t, last_n) = (Instant::now(), n);
            }
        }
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a bench client panicked"))??;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    rss_max = rss_max.max(rss_now(&mut monitor));
    let seal_start = Instant::now();
    let mut backend = backend;
    if let Backend::Local(store) = &backend {
        store.seal_now()?;
    }
    let seal_seconds = seal_start.elapsed().as_secs_f64();

    // The monitor connection stayed busy; the backend's own one may have
    // idled out during a long run.
    let stats = match &mut monitor {
        Some(c) => {
            let w = c.stats()?;
            cairn_engine::Stats { events: w.events, record_bytes: w.record_bytes, disk_bytes: w.disk_bytes, ..Default::default() }
        }
        None => backend.stats()?.0,
    };
    let compaction = match &backend {
        Backend::Local(store) if args.compact => {
            let opts = cairn_engine::compact::CompactOptions { all: true, dictionary: true, ..Default::default() };
            let r = store.compact(&opts, &mut |_, _| {})?;
            let after = store.stats()?;
            Some(CompactionBench {
                seconds: r.seconds,
                mb_per_sec: r.record_bytes as f64 / r.seconds.max(1e-9) / 1e6,
                segments_before: r.segments_before,
                segments_after: r.segments_after,
                disk_bytes: after.disk_bytes,
                bytes_per_event: after.disk_bytes as f64 / after.events.max(1) as f64,
            })
        }
        _ => None,
    };
    backend.close()?;
    let stored = stats.events.saturating_sub(events_before).max(1);
    let mut lat = latencies.into_inner();
    lat.sort();
    let pct = |p: f64| -> f64 {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).copied().unwrap_or(Duration::ZERO).as_secs_f64() * 1e3
    };
    let n = acked.load(Ordering::Relaxed) as f64;
    let raw_bytes = raw_bytes.load(Ordering::Relaxed) as f64;
    Ok(BenchReport {
        mode: if args.server.is_some() { "server" } else { "embedded" },
        profile: args.profile.name(),
        events: n as u64,
        clients: args.clients,
        batch: args.batch,
        durability: format!("{:?}", args.durability).to_lowercase(),
        record_bytes_avg: raw_bytes / n.max(1.0),
        seconds,
        events_per_sec: n / seconds,
        mb_per_sec: raw_bytes / seconds / 1e6,
        batch_latency_p50_ms: pct(0.5),
        batch_latency_p99_ms: pct(0.99),
        seal_seconds,
        disk_bytes: stats.disk_bytes,
        bytes_per_event: stats.disk_bytes as f64 / (events_before + stored) as f64,
        compression_ratio: stats.record_bytes as f64 / stats.disk_bytes.max(1) as f64,
        intervals,
        rss_max_bytes: rss_max,
        compaction,
    })
}

pub fn print_table(r: &BenchReport) {
    println!("mode              {}", r.mode);
    println!("data              the {} generator profile (cairn gen --profile {})", r.profile, r.profile);
    println!("events            {} ({} clients, batches of {}, durability {})", r.events, r.clients, r.batch, r.durability);
    println!("record size       {:.0} B average", r.record_bytes_avg);
    println!("ingest            {:.0} events/s, {:.1} MB/s ({:.2} s)", r.events_per_sec, r.mb_per_sec, r.seconds);
    println!("batch latency     p50 {:.2} ms, p99 {:.2} ms", r.batch_latency_p50_ms, r.batch_latency_p99_ms);
    if r.mode == "embedded" {
        println!("final seal        {:.2} s", r.seal_seconds);
    }
    println!(
        "on disk           {} bytes, {:.1} bytes/event ({:.1}x smaller than the records)",
        r.disk_bytes, r.bytes_per_event, r.compression_ratio
    );
    if !r.intervals.is_empty() {
        let mut rates: Vec<f64> = r.intervals.iter().map(|i| i.events_per_sec).collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "per 10 s         {:.0} / {:.0} / {:.0} events/s (min / median / max of {} intervals)",
            rates[0],
            rates[rates.len() / 2],
            rates[rates.len() - 1],
            rates.len()
        );
    }
    if let Some(c) = &r.compaction {
        println!(
            "compaction        {:.1} MB/s of records ({:.2} s, {} -> {} segments, with a dictionary)",
            c.mb_per_sec, c.seconds, c.segments_before, c.segments_after
        );
        println!("after compaction  {} bytes, {:.1} bytes/event", c.disk_bytes, c.bytes_per_event);
    }
    if let Some(rss) = r.rss_max_bytes {
        let whose = if r.mode == "server" { "the server" } else { "this process, generator included" };
        println!("memory            {:.0} MB resident at most ({whose})", rss as f64 / 1e6);
    }
}

/// This process's resident set size (VmRSS in /proc/self/status), where
/// Linux reports it.
fn own_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}
