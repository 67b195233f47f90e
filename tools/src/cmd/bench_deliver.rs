//! `cairn bench-deliver`: what delivery (`cairnd --deliver`) costs, in one
//! run on generated data: ingest alone, ingest while a deliverer runs
//! beside it, and how fast delivery catches up with a backlog.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use cairn_deliver::{DeliverOptions, Deliverer, Sink, Target};
use cairn_engine::{Options, Store};

use super::{Global, Output};
use crate::gen::{GenOptions, Generator, Profile};

/// Measure delivery: ingest with and without it, and its catch-up rate.
///
/// Generates --events records, then, --runs times: (1) appends them to a
/// fresh store in batches of --batch from one thread (ingest alone);
/// (2) closes and reopens that store (its sealing done), delivers its
/// backlog from the first event (log files gzip level 1 per account and
/// region, as cairnd does) into a bucket kept on local disk, and times
/// it (delivery rate); (3) appends them to
/// another fresh store while a deliverer runs beside it, rounds every
/// second, and times the appends and how long after the last one
/// everything is delivered. Figures are medians of the runs; the bucket
/// is a local directory (object_store's file system store), so network
/// time to a real object store is not in them.
///
/// Example: cairn bench-deliver --events 500000 --profile diverse
#[derive(clap::Args)]
pub struct BenchDeliverArgs {
    #[arg(long, default_value_t = 500_000)]
    pub events: usize,
    #[arg(long, value_enum, default_value_t = Profile::Diverse)]
    pub profile: Profile,
    /// Events per append.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write Parquet, as cairnd does by default: true or false.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub parquet: bool,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Run {
    ingest_alone_eps: f64,
    deliver_eps: f64,
    /// CPU time of the catch-up (every thread of the process) an event,
    /// microseconds: what delivery costs whatever the cores and the
    /// machine's other load.
    deliver_cpu_us: f64,
    /// The catch-up's minor page faults an event (memory it touched
    /// fresh: the kernel zeroes each page first); 0 where /proc is not.
    deliver_faults: f64,
    ingest_with_delivery_eps: f64,
    /// Seconds from the last append until everything was delivered.
    lag_after_ingest_s: f64,
    compressed_bytes_per_event: f64,
    /// Where the catch-up's time went, seconds: read, parse, log files and
    /// Parquet row groups, Parquet files put together, upload.
    phases_s: [f64; 5],
}

/// Minor page faults of this process so far (Linux's /proc/self/stat,
/// field 10), or 0 elsewhere.
fn minor_faults() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (in parentheses, which may hold
    // spaces): state is field 3, minflt field 10.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after.split_whitespace().nth(7).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// CPU time of every thread of this process so far, seconds.
fn process_cpu_s() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

impl BenchDeliverArgs {
    fn opts(&self) -> DeliverOptions {
        DeliverOptions {
            file_interval: Duration::from_secs(1),
            digest_interval: Duration::from_secs(3600),
            parquet: self.parquet,
            ..Default::default()
        }
    }

    fn append_all(store: &Store, records: &[Vec<u8>], batch: usize) -> Result<f64> {
        let t = Instant::now();
        for chunk in records.chunks(batch) {
            let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
            store.append(&refs)?;
        }
        store.durable_size()?;
        Ok(records.len() as f64 / t.elapsed().as_secs_f64())
    }

    fn one_run(&self, records: &[Vec<u8>], root: &std::path::Path, i: usize) -> Result<Run> {
        let target: Target = "s3://cairn-bench/trail".parse()?;
        let n = records.len() as u64;
        let mut run = Run::default();
        // 1 and 2: ingest alone, then deliver the backlog.
        let store = Store::open(root.join(format!("alone-{i}")), Options::default())?;
        run.ingest_alone_eps = Self::append_all(&store, records, self.batch)?;
        // Reopened, so that the store's own background work after ingest
        // (sealing, compaction) is not in the catch-up's time.
        store.close()?;
        let store = Store::open(root.join(format!("alone-{i}")), Options::default())?;
        let bucket = root.join(format!("bucket-alone-{i}"));
        let mut d = Deliverer::open(&store, Sink::local(target.clone(), &bucket)?, self.opts())?;
        let t = Instant::now();
        let (cpu, faults) = (process_cpu_s(), minor_faults());
        let mut phases = cairn_deliver::RoundTimings::default();
        while d.status().lock().next_seq < n {
            d.tick(&store, true)?;
            phases += d.last_timings();
        }
        run.phases_s = [phases.read, phases.parse, phases.encode, phases.parquet, phases.upload].map(|d| d.as_secs_f64());
        run.deliver_eps = n as f64 / t.elapsed().as_secs_f64();
        run.deliver_cpu_us = (process_cpu_s() - cpu) * 1e6 / n as f64;
        run.deliver_faults = (minor_faults() - faults) / n as f64;
        run.compressed_bytes_per_event = dir_bytes(&bucket) as f64 / n as f64;
        store.close()?;
        // 3: ingest with a deliverer running beside it.
        let store = Store::open(root.join(format!("with-{i}")), Options::default())?;
        let d = Deliverer::open(&store, Sink::local(target, &root.join(format!("bucket-with-{i}")))?, self.opts())?;
        let status = d.status();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| -> Result<()> {
            let h = s.spawn(|| d.run(&store, &stop));
            let result = Self::append_all(&store, records, self.batch);
            let done = Instant::now();
            if let Ok(eps) = result {
                run.ingest_with_delivery_eps = eps;
                while status.lock().next_seq < n {
                    if let Some(e) = status.lock().last_error.clone() {
                        stop.store(true, Ordering::SeqCst);
                        bail!("delivery failed: {e}");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                run.lag_after_ingest_s = done.elapsed().as_secs_f64();
            }
            stop.store(true, Ordering::SeqCst);
            let _ = h.join();
            result.map(|_| ())
        })?;
        store.close()?;
        Ok(run)
    }

    pub fn run(&self, _g: &Global) -> Result<ExitCode> {
        if self.events == 0 || self.batch == 0 || self.runs == 0 {
            bail!("--events, --batch and --runs must be at least 1");
        }
        eprintln!("cairn bench-deliver: generating {} events ({} profile)...", self.events, self.profile.name());
        let mut gen = Generator::new(GenOptions { seed: self.seed, profile: self.profile, ..Default::default() });
        let records: Vec<Vec<u8>> = (0..self.events)
            .map(|_| {
                let mut r = Vec::new();
                gen.next_record(&mut r);
                r
            })
            .collect();
        let raw = records.iter().map(|r| r.len() as f64).sum::<f64>() / records.len() as f64;
        let dir = tempfile::tempdir()?;
        let mut runs = Vec::new();
        for i in 0..self.runs {
            eprintln!("cairn bench-deliver: run {} of {}...", i + 1, self.runs);
            runs.push(self.one_run(&records, dir.path(), i)?);
        }
        let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let med = Run {
            ingest_alone_eps: m(|r| r.ingest_alone_eps),
            deliver_eps: m(|r| r.deliver_eps),
            deliver_cpu_us: m(|r| r.deliver_cpu_us),
            deliver_faults: m(|r| r.deliver_faults),
            ingest_with_delivery_eps: m(|r| r.ingest_with_delivery_eps),
            lag_after_ingest_s: m(|r| r.lag_after_ingest_s),
            compressed_bytes_per_event: m(|r| r.compressed_bytes_per_event),
            phases_s: std::array::from_fn(|i| median(runs.iter().map(|r| r.phases_s[i]).collect())),
        };
        let ratio = med.ingest_with_delivery_eps / med.ingest_alone_eps;
        match self.output {
            Output::Json => println!(
                "{}",
                serde_json::json!({
                    "events": self.events, "profile": self.profile.name(), "record_bytes_mean": raw, "parquet": self.parquet, "runs": runs,
                    "median": med, "ingest_with_delivery_ratio": ratio,
                })
            ),
            _ => {
                println!(
                    "{} events, {} profile, {:.0} bytes a record on average, Parquet {}; medians of {} runs",
                    self.events,
                    self.profile.name(),
                    raw,
                    if self.parquet { "on" } else { "off" },
                    self.runs
                );
                println!("ingest alone                 {:>10.0} events/s", med.ingest_alone_eps);
                println!("delivery (backlog catch-up)  {:>10.0} events/s", med.deliver_eps);
                println!("  its CPU time (all threads) {:>10.2} us an event", med.deliver_cpu_us);
                println!("  its minor page faults      {:>10.2} an event (4 KiB of fresh memory each)", med.deliver_faults);
                println!("ingest with delivery running {:>10.0} events/s  ({:.1}% of alone)", med.ingest_with_delivery_eps, ratio * 100.0);
                println!("delivered after last append  {:>10.2} s", med.lag_after_ingest_s);
                println!("delivered bytes an event     {:>10.1} (log files, digests and Parquet)", med.compressed_bytes_per_event);
                let per_event = |s: f64| s * 1e6 / self.events as f64;
                let names = ["read events", "read members, group", "log files, Parquet groups", "Parquet files", "upload"];
                println!("catch-up's wall time by phase (a round uploads while the next is built, so they overlap):");
                for (name, s) in names.iter().zip(med.phases_s) {
                    println!("  {name:<26} {s:>7.2} s  {:>6.2} us an event", per_event(s));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
