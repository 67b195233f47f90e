//! `cairn ingest`: reads inputs on one thread and appends batches from
//! several workers, so parsing and hashing use every core while group
//! commit merges the workers' writes.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Ack, Backend};
use anyhow::{bail, Context, Result};
use parking_lot::Mutex;

use cairn_engine::framing::Piece;

use super::{Global, Output};
use crate::input::{expand_paths, read_pieces, source_name, Location};
use crate::progress::Progress;

/// Store records from files, directories (e.g. AWSLogs/) or stdin.
///
/// Reads NDJSON (one record per line), JSON arrays of records, CloudTrail
/// log files ({"Records":[...]}, one line or pretty-printed, one or many
/// per file), pretty-printed records, and any mixture, each plain or
/// gzip. Directories are walked recursively for .json, .json.gz,
/// .ndjson, .jsonl and .gz files. With no paths, or `-`, reads stdin.
/// Each record is stored byte-exact as found.
///
/// Bad bytes never cost a good record: text that is not JSON, a record
/// cut short, NUL bytes or a truncated gzip stream are skipped and
/// reported with their file and lines, and reading resumes at the next
/// record (docs/INGEST.md has the rules). A record is rejected (and the
/// rest stored) when it is not a JSON object, is larger than 256 KiB,
/// has no eventTime that is a UTC instant, or has no eventName. The
/// summary counts every record found (stored + duplicates + rejected)
/// and every stretch skipped. Exit status 1 if anything was rejected or
/// skipped.
#[derive(clap::Args)]
pub struct IngestArgs {
    /// Files, directories, or `-` for stdin.
    pub paths: Vec<PathBuf>,
    /// Records per append call.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Parallel append workers (parsing and hashing run on them).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Print the summary as JSON.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// For crash tests: log "<input ordinal> <seq>" per acknowledged record.
    #[arg(long, hide = true)]
    pub ack_log: Option<PathBuf>,
}

impl IngestArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let Self { paths, batch, workers, output, ack_log } = self;
        if *batch == 0 || *batch > cairn_engine::limits::BATCH_RECORDS_MAX {
            bail!("--batch {batch} must be between 1 and {}", cairn_engine::limits::BATCH_RECORDS_MAX);
        }
        let backend = g.open_backend()?;
        let options =
            IngestOptions { paths: paths.clone(), batch: *batch, workers: (*workers).max(1), ack_log: ack_log.clone(), quiet: g.quiet };
        let summary = run(&backend, &options)?;
        backend.close()?;
        match output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
            Output::Table => {
                eprintln!(
                    "cairn: {} records from {} input(s): {} stored, {} duplicates (already stored), {} rejected; {:.0} events/s, {:.1} MB/s",
                    summary.records,
                    summary.files,
                    summary.accepted,
                    summary.duplicates,
                    summary.rejected,
                    summary.events_per_sec,
                    summary.input_bytes as f64 / summary.seconds.max(1e-9) / 1e6
                );
                for (reason, n) in &summary.rejected_by_reason {
                    eprintln!("cairn:   rejected {n} x {reason}");
                }
                if summary.skipped > 0 {
                    eprintln!(
                        "cairn: {} stretch(es) of input held no record: {} line(s), {} bytes",
                        summary.skipped, summary.skipped_lines, summary.skipped_bytes
                    );
                    for (reason, n) in &summary.skipped_by_reason {
                        eprintln!("cairn:   skipped {n} x {reason}");
                    }
                }
            }
        }
        Ok(if summary.incomplete() { ExitCode::from(1) } else { ExitCode::SUCCESS })
    }
}

pub struct IngestOptions {
    pub paths: Vec<PathBuf>,
    pub batch: usize,
    pub workers: usize,
    /// Hidden, for crash tests: after each acknowledged batch, append
    /// "<input ordinal> <seq>" lines for its stored records to this file.
    pub ack_log: Option<PathBuf>,
    pub quiet: bool,
}

/// What an ingest run did. Every record found is counted once:
/// `records = accepted + duplicates + rejected`. Input that held no
/// record (text that is not JSON, a broken value and what was passed over
/// to find the next record, NUL bytes, an unreadable rest) is counted in
/// `skipped` stretches, with their lines and bytes.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct IngestSummary {
    pub files: u64,
    pub records: u64,
    /// Stored now.
    pub accepted: u64,
    /// Already stored with identical bytes; acknowledged, not stored again.
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub skipped: u64,
    pub skipped_lines: u64,
    pub skipped_bytes: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
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

/// Opens the crash tests' ack log for appending. A run killed mid-write
/// leaves a torn last line ("1234 5" of "1234 567"), which would read as a
/// different acknowledgement: it is cut back to the last whole line first.
fn open_ack_log(path: &Path) -> std::io::Result<std::fs::File> {
    let mut file = std::fs::OpenOptions::new().create(true).read(true).append(true).open(path)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text)?;
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if whole < text.len() {
        file.set_len(whole as u64)?;
    }
    Ok(file)
}

pub fn run(backend: &Backend, args: &IngestOptions) -> Result<IngestSummary> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("-")] } else { expand_paths(&args.paths)? };
    let total_bytes: u64 = paths.iter().filter_map(|p| std::fs::metadata(p).ok()).filter(|m| m.is_file()).map(|m| m.len()).sum();
    let progress = Progress::bytes("ingesting", total_bytes, args.quiet);
    let start = Instant::now();
    let summary = Arc::new(Mutex::new(IngestSummary { files: paths.len() as u64, ..Default::default() }));
    let ack_log = match &args.ack_log {
        Some(p) => Some(Mutex::new(open_ack_log(p).with_context(|| format!("opening {}", p.display()))?)),
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
                                sum.reject(code, &batch.locations[i], message, args.quiet, progress);
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
                let source = source_name(p);
                let read_bytes = read_pieces(p, &mut |n| progress.inc(n), &mut |piece| {
                    let rec = match piece {
                        Piece::Record { bytes, at } => (bytes, Location { source: source.clone(), at, last_line: None }),
                        Piece::Rejected { at, problem } => {
                            let loc = Location { source: source.clone(), at, last_line: None };
                            summary.lock().reject(problem.code(), &loc, &problem.to_string(), args.quiet, &progress);
                            return Ok(());
                        }
                        ref skipped @ Piece::Skipped { from, to, ref problem, problems } => {
                            let lines = skipped.lines().unwrap_or((from.line, from.line));
                            let loc = Location { source: source.clone(), at: from, last_line: Some(lines.1) };
                            let mut sum = summary.lock();
                            sum.skipped += 1;
                            sum.skipped_lines += lines.1 - lines.0 + 1;
                            sum.skipped_bytes += to.offset.saturating_sub(from.offset);
                            *sum.skipped_by_reason.entry(problem.code().to_string()).or_default() += 1;
                            if sum.rejected + sum.skipped <= REJECTIONS_SHOWN_MAX && !args.quiet {
                                let more = match problems {
                                    0 | 1 => String::new(),
                                    2 => " (and 1 more problem there)".to_string(),
                                    n => format!(" (and {} more problems there)", n - 1),
                                };
                                progress.println(&format!("cairn: skipped {loc}: {problem}{more}"));
                            }
                            return Ok(());
                        }
                    };
                    batch_bytes += rec.0.len();
                    batch.records.push(rec.0);
                    batch.locations.push(rec.1);
                    ordinal += 1;
                    if batch.records.len() >= args.batch || batch_bytes >= 8 << 20 {
                        let full =
                            std::mem::replace(&mut batch, Batch { records: Vec::new(), locations: Vec::new(), first_ordinal: ordinal });
                        batch_bytes = 0;
                        tx.send(full).map_err(|_| anyhow::anyhow!("ingest workers stopped"))?;
                    }
                    Ok(())
                })?;
                summary.lock().input_bytes += read_bytes;
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

impl IngestSummary {
    /// Counts one rejected record, and prints the first few.
    fn reject(&mut self, code: &str, at: &Location, message: &str, quiet: bool, progress: &Progress) {
        self.rejected += 1;
        *self.rejected_by_reason.entry(code.to_string()).or_default() += 1;
        if self.rejected + self.skipped <= REJECTIONS_SHOWN_MAX && !quiet {
            progress.println(&format!("cairn: rejected {at}: {message}"));
        }
    }

    /// Was anything in the input not stored (a negative result, exit 1)?
    pub fn incomplete(&self) -> bool {
        self.rejected > 0 || self.skipped > 0
    }
}
