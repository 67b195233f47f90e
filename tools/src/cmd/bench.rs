//! `cairn bench` (embedded): drives generated events through the real append
//! path and reports events/s, MB/s, batch latency percentiles and bytes per
//! event on disk after sealing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cairn_engine::{Durability, Options, Store};
use cairn_server::client::Client;

use crate::backend::{Ack, Backend};
use parking_lot::Mutex;

use crate::gen::{GenOptions, Generator};

pub struct BenchArgs {
    /// Benchmark this server (address, token, TLS CA file) instead of an
    /// embedded store.
    pub server: Option<(String, String, Option<PathBuf>)>,
    pub data_dir: Option<PathBuf>,
    pub events: usize,
    pub batch: usize,
    pub clients: usize,
    pub record_bytes: Option<usize>,
    pub durability: Durability,
    pub seed: u64,
    pub zstd_level: i32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub mode: &'static str,
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
}

pub fn run(args: &BenchArgs) -> Result<BenchReport> {
    if args.events == 0 || args.batch == 0 || args.clients == 0 {
        bail!("--events, --batch and --clients must be at least 1");
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
    // Generate first: generation is not what is measured.
    let mut gen = Generator::new(GenOptions { seed: args.seed, record_bytes: args.record_bytes, ..GenOptions::default() });
    let mut records = Vec::with_capacity(args.events);
    let mut raw_bytes = 0u64;
    for _ in 0..args.events {
        let mut r = Vec::new();
        gen.next_record(&mut r);
        raw_bytes += r.len() as u64;
        records.push(r);
    }
    let backend = match &args.server {
        Some((addr, token, ca)) => Backend::Remote {
            client: Client::connect_with(addr, token, ca.as_deref())?,
            addr: addr.clone(),
            token: token.clone(),
            tls_ca: ca.clone(),
        },
        None => {
            Backend::Local(Store::open(&dir, Options { durability: args.durability, zstd_level: args.zstd_level, ..Options::default() })?)
        }
    };
    // A server may hold other data: bytes/event counts everything it stores.
    let events_before = match &args.server {
        Some((addr, token, ca)) => Client::connect_with(addr, token, ca.as_deref())?.stats()?.events,
        None => 0,
    };
    let batches: Vec<&[Vec<u8>]> = records.chunks(args.batch).collect();
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(batches.len()));
    let start = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..args.clients)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut appender = backend.appender()?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(b) = batches.get(i) else { return Ok(()) };
                        let t = Instant::now();
                        let out = appender.append(b.to_vec())?;
                        latencies.lock().push(t.elapsed());
                        if let Some(Ack::Rejected { message, .. }) = out.iter().find(|o| matches!(o, Ack::Rejected { .. })) {
                            bail!("a generated record was rejected: {message}");
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a bench client panicked"))??;
        }
        Ok(())
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let seal_start = Instant::now();
    let mut backend = backend;
    if let Backend::Local(store) = &backend {
        store.seal_now()?;
    }
    let seal_seconds = seal_start.elapsed().as_secs_f64();
    let (stats, _) = backend.stats()?;
    backend.close()?;
    let stored = stats.events.saturating_sub(events_before).max(1);
    let mut lat = latencies.into_inner();
    lat.sort();
    let pct = |p: f64| -> f64 {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).copied().unwrap_or(Duration::ZERO).as_secs_f64() * 1e3
    };
    let n = args.events as f64;
    Ok(BenchReport {
        mode: if args.server.is_some() { "server" } else { "embedded" },
        events: args.events as u64,
        clients: args.clients,
        batch: args.batch,
        durability: format!("{:?}", args.durability).to_lowercase(),
        record_bytes_avg: raw_bytes as f64 / n,
        seconds,
        events_per_sec: n / seconds,
        mb_per_sec: raw_bytes as f64 / seconds / 1e6,
        batch_latency_p50_ms: pct(0.5),
        batch_latency_p99_ms: pct(0.99),
        seal_seconds,
        disk_bytes: stats.disk_bytes,
        bytes_per_event: stats.disk_bytes as f64 / (events_before + stored) as f64,
        compression_ratio: stats.record_bytes as f64 / stats.disk_bytes.max(1) as f64,
    })
}

pub fn print_table(r: &BenchReport) {
    println!("mode              {}", r.mode);
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
}
