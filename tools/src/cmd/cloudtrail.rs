//! CloudTrail-style delivery: `cairn export --format cloudtrail --out DIR`
//! writes gzip `{"Records":[...]}` log files in CloudTrail's S3 layout and
//! hourly digest files that chain and are signed with the store's key, and
//! `cairn verify-export DIR` checks the whole tree of them offline.
//!
//! Layout (docs/FORMAT.md, "CloudTrail export"):
//! `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 chars>.json.gz`
//! and `AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<region>_<YYYYMMDDTHHMMSSZ>.json.gz`,
//! each digest's signature (CloudTrail keeps it in S3 object metadata) in
//! a `.sig` file beside it, hex.
//!
//! Events go to the file of their account (recipientAccountId), region
//! (awsRegion) and 5 minutes of eventTime; a file's timestamp (its
//! "delivery" time) is the end of those 5 minutes. Every stream (account,
//! region) gets a digest for every hour of the export, empty ones too, so
//! a missing digest is a missing hour, however many are deleted in a row.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cairn_engine::event::format_event_time;
use cairn_engine::{Order, Query, StoredEvent, Verifier};
use flate2::write::GzEncoder;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::backend::Backend;

/// eventTime per log file.
const FILE_MS: i64 = 5 * 60_000;
const HOUR_MS: i64 = 3_600_000;
/// A log file is cut at this many uncompressed bytes (CloudTrail's files
/// stay under 50 MB compressed).
const FILE_RAW_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// Hourly digests per stream at most: about 11 years.
const HOURS_MAX: i64 = 100_000;

use cairn_deliver::format::{component, date_parts, unique};
pub use cairn_deliver::format::{DigestFile, LogFileEntry};

/// A writer that counts what passes through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A log file being written.
struct OpenFile {
    rel: String,
    path: PathBuf,
    enc: GzEncoder<Counting<std::io::BufWriter<std::fs::File>>>,
    sha: Sha256,
    raw: u64,
    records: u64,
    oldest_ms: i64,
    newest_ms: i64,
    delivery_ms: i64,
}

impl OpenFile {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.enc.write_all(b).with_context(|| format!("writing {}", self.path.display()))?;
        self.sha.update(b);
        self.raw += b.len() as u64;
        Ok(())
    }
}

/// What `export_cloudtrail` wrote.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ExportSummary {
    pub events: u64,
    pub log_files: u64,
    pub digest_files: u64,
    pub streams: u64,
    pub hours: u64,
}

pub struct ExportOptions<'a> {
    pub out: &'a Path,
    /// The bucket name written in digests (the export's own name).
    pub bucket: String,
    pub trail: String,
}

/// Writes the events matching `q` as CloudTrail log files and digests.
pub fn export_cloudtrail(backend: &mut Backend, q: &Query, args: &ExportOptions<'_>) -> Result<ExportSummary> {
    if args.out.join("AWSLogs").exists() {
        bail!("{} already holds an AWSLogs/ tree: export into an empty directory", args.out.display());
    }
    let key = backend.public_keys()?.pop().context("the store has no signing key")?;
    let key = Verifier::parse(&key)?;
    let mut w = LogWriter {
        args,
        open: HashMap::new(),
        streams: BTreeMap::new(),
        parts: HashMap::new(),
        bucket: None,
        summary: ExportSummary::default(),
    };
    backend.export(q, Order::OldestFirst, &mut |e| w.event(&e))?;
    w.close_all()?;
    let LogWriter { streams, mut summary, .. } = w;
    write_digests(backend, args, &key, &streams, &mut summary)?;
    Ok(summary)
}

/// A stream's log files with their delivery times.
type Streams = BTreeMap<(String, String), Vec<(LogFileEntry, i64)>>;

/// Routes events to log files, one open file per stream in the current
/// 5 minutes of eventTime (events arrive oldest first).
struct LogWriter<'a> {
    args: &'a ExportOptions<'a>,
    open: HashMap<(String, String), OpenFile>,
    streams: Streams,
    parts: HashMap<(String, String), u32>,
    bucket: Option<i64>,
    summary: ExportSummary,
}

impl LogWriter<'_> {
    fn event(&mut self, e: &StoredEvent) -> Result<()> {
        let bucket = e.time_ms.div_euclid(FILE_MS);
        if self.bucket != Some(bucket) {
            self.close_all()?;
            self.bucket = Some(bucket);
        }
        let ev = cairn_engine::parse_event(&e.record, cairn_engine::limits::RECORD_BYTES_MAX).ok();
        let account = component(ev.as_ref().and_then(|v| v.recipient_account_id.as_deref().or(v.account_id.as_deref())), "000000000000");
        let region = component(ev.as_ref().and_then(|v| v.aws_region.as_deref()), "global");
        let k = (account, region);
        if self.open.get(&k).is_some_and(|f| f.raw >= FILE_RAW_BYTES_MAX) {
            self.close(&k)?;
        }
        if !self.open.contains_key(&k) {
            let f = self.create(&k, bucket, e.time_ms)?;
            self.open.insert(k.clone(), f);
        }
        let f = self.open.get_mut(&k).context("log file just opened")?;
        if f.records > 0 {
            f.write(b",")?;
        }
        f.write(&e.record)?;
        f.records += 1;
        f.oldest_ms = f.oldest_ms.min(e.time_ms);
        f.newest_ms = f.newest_ms.max(e.time_ms);
        self.summary.events += 1;
        Ok(())
    }

    fn create(&mut self, k: &(String, String), bucket: i64, time_ms: i64) -> Result<OpenFile> {
        let part = self.parts.entry(k.clone()).or_insert(0);
        *part += 1;
        let delivery_ms = (bucket + 1) * FILE_MS;
        let (day, stamp) = date_parts(delivery_ms);
        let (account, region) = (&k.0, &k.1);
        let name = format!("{account}_CloudTrail_{region}_{stamp}Z_{}.json.gz", unique(&format!("{account}/{region}/{stamp}/{part}")));
        let rel = format!("AWSLogs/{account}/CloudTrail/{region}/{day}/{name}");
        let path = self.args.out.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let enc = GzEncoder::new(Counting { inner: std::io::BufWriter::new(file), bytes: 0 }, flate2::Compression::default());
        let mut f =
            OpenFile { rel, path, enc, sha: Sha256::new(), raw: 0, records: 0, oldest_ms: time_ms, newest_ms: time_ms, delivery_ms };
        f.write(br#"{"Records":["#)?;
        Ok(f)
    }

    fn close(&mut self, k: &(String, String)) -> Result<()> {
        let Some(mut f) = self.open.remove(k) else { return Ok(()) };
        f.write(b"]}")?;
        let mut w = f.enc.finish().with_context(|| format!("finishing {}", f.path.display()))?;
        w.flush()?;
        w.inner.into_inner().map_err(|e| e.into_error())?.sync_all().with_context(|| format!("fsync {}", f.path.display()))?;
        let entry = LogFileEntry {
            s3_bucket: self.args.bucket.clone(),
            s3_object: f.rel.clone(),
            hash_value: hex::encode(f.sha.finalize()),
            hash_algorithm: "SHA-256".into(),
            newest_event_time: format_event_time(f.newest_ms),
            oldest_event_time: format_event_time(f.oldest_ms),
        };
        self.streams.entry(k.clone()).or_default().push((entry, f.delivery_ms));
        self.summary.log_files += 1;
        Ok(())
    }

    fn close_all(&mut self) -> Result<()> {
        let keys: Vec<(String, String)> = self.open.keys().cloned().collect();
        for k in keys {
            self.close(&k)?;
        }
        Ok(())
    }
}

/// Writes every stream's hourly digests, chained, over the export's hours.
fn write_digests(
    backend: &mut Backend,
    args: &ExportOptions<'_>,
    key: &Verifier,
    streams: &Streams,
    summary: &mut ExportSummary,
) -> Result<()> {
    let all: Vec<i64> = streams.values().flatten().map(|(_, t)| *t).collect();
    let (Some(&lo), Some(&hi)) = (all.iter().min(), all.iter().max()) else { return Ok(()) };
    // A file delivered exactly on the hour belongs to the hour it ends.
    let hour_of = |ms: i64| (ms - 1).div_euclid(HOUR_MS);
    let (first, last) = (hour_of(lo), hour_of(hi));
    // Event times come from records: bound what they can make us write.
    let (min_ms, max_ms) = (-62_135_596_800_000i64, 253_402_300_799_000i64); // years 0001 and 9999
    if lo - FILE_MS < min_ms || hi > max_ms {
        bail!("some events have an eventTime outside the years 0001-9999: export with --start and --end to leave them out");
    }
    if last - first >= HOURS_MAX {
        bail!(
            "the events span {} hours ({} .. {}), more than {HOURS_MAX} hourly digests per stream: export a narrower --start/--end",
            last - first + 1,
            format_event_time(lo),
            format_event_time(hi)
        );
    }
    summary.hours = (last - first + 1) as u64;
    summary.streams = streams.len() as u64;
    for ((account, region), files) in streams {
        let mut prev: Option<(String, String, String)> = None;
        for h in first..=last {
            let listed: Vec<LogFileEntry> = files.iter().filter(|(_, t)| hour_of(*t) == h).map(|(f, _)| f.clone()).collect();
            let end_ms = (h + 1) * HOUR_MS;
            let (day, _) = date_parts(end_ms);
            let end = format_event_time(end_ms);
            let stamp: String = end.chars().filter(|c| c.is_ascii_digit() || *c == 'T' || *c == 'Z').collect();
            let rel = format!(
                "AWSLogs/{account}/CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_{region}_{}_{region}_{stamp}.json.gz",
                args.trail
            );
            let d = DigestFile {
                aws_account_id: account.clone(),
                digest_start_time: format_event_time(h * HOUR_MS),
                digest_end_time: end.clone(),
                digest_s3_bucket: args.bucket.clone(),
                digest_s3_object: rel.clone(),
                digest_public_key_fingerprint: key.fingerprint(),
                digest_signature_algorithm: "Ed25519".into(),
                newest_event_time: listed.iter().map(|f| f.newest_event_time.clone()).max(),
                oldest_event_time: listed.iter().map(|f| f.oldest_event_time.clone()).min(),
                previous_digest_s3_bucket: prev.as_ref().map(|_| args.bucket.clone()),
                previous_digest_s3_object: prev.as_ref().map(|p| p.0.clone()),
                previous_digest_hash_value: prev.as_ref().map(|p| p.1.clone()),
                previous_digest_hash_algorithm: prev.as_ref().map(|_| "SHA-256".to_string()),
                previous_digest_signature: prev.as_ref().map(|p| p.2.clone()),
                log_files: listed,
            };
            let json = serde_json::to_vec(&d)?;
            let hash = hex::encode(Sha256::digest(&json));
            let location = format!("{}/{rel}", args.bucket);
            let sig = hex::encode(backend.sign_digest(&end, &location, &hash, prev.as_ref().map(|p| p.2.as_str()))?);
            let path = args.out.join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&json)?;
            std::fs::write(&path, enc.finish()?).with_context(|| format!("writing {}", path.display()))?;
            std::fs::write(sig_path(&path), format!("{sig}\n")).with_context(|| format!("writing the signature of {}", path.display()))?;
            summary.digest_files += 1;
            prev = Some((rel, hash, sig));
        }
    }
    Ok(())
}

fn sig_path(digest: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", digest.display()))
}
