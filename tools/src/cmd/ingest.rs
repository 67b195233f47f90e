//! `cairn ingest`: reads inputs on one thread and appends batches from
//! several workers, so parsing and hashing use every core while group
//! commit merges the workers' writes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Ack, Backend};
use anyhow::{Context, Result};
use parking_lot::Mutex;

use crate::input::{expand_paths, read_records, Location};
use crate::progress::Progress;

pub struct IngestArgs {
    pub paths: Vec<PathBuf>,
    pub batch: usize,
    pub workers: usize,
    /// Hidden, for crash tests: after each acknowledged batch, append
    /// "<input ordinal> <seq>" lines for its stored records to this file.
    pub ack_log: Option<PathBuf>,
    pub quiet: bool,
}

/// What an ingest run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct IngestSummary {
    pub files: u64,
    pub records: u64,
    pub accepted: u64,
    /// Already stored with identical bytes; acknowledged, not stored again.
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub input_bytes: u64,
    pub seconds: f64,
    pub events_per_sec: f64,
}

/// At most this many rejections are printed individually.
const REJECTIONS_SHOWN_MAX: u64 = 20;

struct Batch {
    records: Vec<Vec<u8>>,
    locations: Vec<Location>,
    first_ordinal: u64,
}

pub fn run(backend: &Backend, args: &IngestArgs) -> Result<IngestSummary> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("-")] } else { expand_paths(&args.paths)? };
    let total_bytes: u64 = paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let progress = Progress::bytes("ingesting", total_bytes, args.quiet);
    let start = Instant::now();
    let summary = Arc::new(Mutex::new(IngestSummary { files: paths.len() as u64, ..Default::default() }));
    let ack_log = match &args.ack_log {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new().create(true).append(true).open(p).with_context(|| format!("opening {}", p.display()))?,
        )),
        None => None,
    };
    let accepted = AtomicU64::new(0);
    let (tx, rx) = sync_channel::<Batch>(args.workers * 2);
    // Workers own the receiver: if they all fail, the channel disconnects
    // and the reader stops instead of blocking on a full queue.
    let rx = std::sync::Arc::new(Mutex::new(rx));
    let result: Result<()> = std::thread::scope(|s| {
        let mut workers = Vec::new();
        for _ in 0..args.workers.max(1) {
            let rx = rx.clone();
            let (summary, progress, ack_log, accepted) = (&summary, &progress, &ack_log, &accepted);
            workers.push(s.spawn(move || -> Result<()> {
                let mut appender = backend.appender()?;
                loop {
                    let Ok(batch) = rx.lock().recv() else { return Ok(()) };
                    let n = batch.records.len() as u64;
                    let outcomes = appender.append(batch.records).context("appending a batch")?;
                    let mut acks = String::new();
                    let mut sum = summary.lock();
                    for (i, o) in outcomes.iter().enumerate() {
                        match o {
                            Ack::Stored(seq) | Ack::Duplicate(seq) => {
                                if matches!(o, Ack::Duplicate(_)) {
                                    sum.duplicates += 1;
                                } else {
                                    sum.accepted += 1;
                                }
                                if ack_log.is_some() {
                                    acks.push_str(&format!("{} {seq}\n", batch.first_ordinal + i as u64));
                                }
                            }
                            Ack::Rejected { code, message } => {
                                sum.rejected += 1;
                                *sum.rejected_by_reason.entry(code.clone()).or_default() += 1;
                                if sum.rejected <= REJECTIONS_SHOWN_MAX && !args.quiet {
                                    progress.println(&format!("cairn: rejected {}: {message}", batch.locations[i]));
                                }
                            }
                        }
                    }
                    drop(sum);
                    accepted.fetch_add(n, Ordering::Relaxed);
                    if let Some(log) = &ack_log {
                        log.lock().write_all(acks.as_bytes()).context("writing the ack log")?;
                    }
                }
            }));
        }
        drop(rx);
        let read = (|| -> Result<()> {
            let mut ordinal = 0u64;
            let mut batch = Batch { records: Vec::new(), locations: Vec::new(), first_ordinal: 0 };
            let mut batch_bytes = 0usize;
            for p in &paths {
                let read_bytes = read_records(p, &mut |rec, loc| {
                    batch_bytes += rec.len();
                    batch.records.push(rec);
                    batch.locations.push(loc);
                    ordinal += 1;
                    if batch.records.len() >= args.batch || batch_bytes >= 8 << 20 {
                        let full =
                            std::mem::replace(&mut batch, Batch { records: Vec::new(), locations: Vec::new(), first_ordinal: ordinal });
                        batch_bytes = 0;
                        tx.send(full).map_err(|_| anyhow::anyhow!("ingest workers stopped"))?;
                    }
                    Ok(())
                });
                match read_bytes {
                    Ok(n) => {
                        summary.lock().input_bytes += n;
                        progress.inc(std::fs::metadata(p).map(|m| m.len()).unwrap_or(n));
                    }
                    Err(e) => return Err(e),
                }
            }
            if !batch.records.is_empty() {
                tx.send(batch).map_err(|_| anyhow::anyhow!("ingest workers stopped"))?;
            }
            Ok(())
        })();
        drop(tx);
        let mut first_err = read.err();
        for w in workers {
            if let Err(e) = w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("an ingest worker panicked"))) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    });
    progress.finish();
    let mut sum = summary.lock().clone();
    sum.records = sum.accepted + sum.duplicates + sum.rejected;
    sum.seconds = start.elapsed().as_secs_f64();
    sum.events_per_sec = sum.accepted as f64 / sum.seconds.max(1e-9);
    result.map(|()| sum)
}
