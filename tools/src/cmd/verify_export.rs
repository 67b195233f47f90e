//! `cairn verify-export`: checks a CloudTrail-style tree of log files and
//! digests, written by `cairn export --format cloudtrail` (a directory)
//! or delivered by `cairnd --deliver` / `cairn deliver` (a bucket), and
//! finds what `aws cloudtrail validate-logs` does not: digests deleted at
//! the head or tail of a chain, several in a row, and log files no digest
//! lists.
//!
//! Signatures. A digest carries Cairn's Ed25519 signature (the `.sig`
//! file beside it in an export; the object's `cairn-signature` metadata
//! in a bucket) over CloudTrail's string to sign, checked with the store's
//! public key (`--public-key`); a delivered digest also carries
//! CloudTrail's SHA256withRSA `signature`, checked when the RSA public
//! key is given (`--digest-public-key`, the base64 DER value that
//! ListPublicKeys returns).
//!
//! Coverage. Digests are grouped by trail (the `<trail>_<home region>` in
//! their names) and stream (account, region). Within a trail every stream
//! gets a digest for every window from its first on, so: a digest that
//! names a previous one that is not there, two neighbours that do not
//! meet, a stream whose digests stop before the trail's newest, and a gap
//! in one stream where the trail's other streams have digests, are all
//! deleted digests. A log file no digest lists is an extra file, unless
//! it is newer than its stream's newest digest (delivered in the window
//! still open): those are counted as not yet covered.
//!
//! The tail. Digests deleted from the end of every stream at once leave a
//! shorter chain that is valid in itself: no tree of files can show it.
//! `--digests-through TIME|now` gives the anchor: every trail's newest
//! digest must then end at or after TIME minus one digest interval
//! (`--digest-interval-secs`, cairnd's default hour) minus a grace period
//! (`--digests-grace-secs`: a window's digest is written after the window
//! ends, later while the bucket fails), and a log file older than that
//! instant that no digest lists is an extra file, not one "not yet
//! covered". A first, partial window (delivery started inside one) ends on
//! a window boundary like the others, so it needs no special case.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use base64::Engine;
use cairn_deliver::format::DigestFile;
use cairn_deliver::target::Object;
use cairn_deliver::{Sink, SinkOptions, Target};
use cairn_engine::checkpoint::digest_keys;
use cairn_engine::event::{format_event_time, parse_event_time};
use cairn_engine::Verifier;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{integrity, Global, Output};
use crate::progress::Progress;

/// Largest uncompressed digest file read (they are a few KiB).
const DIGEST_RAW_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest uncompressed log file read.
const LOG_RAW_BYTES_MAX: u64 = 1 << 30;
/// Objects read at once from a bucket (bounds memory: log files are
/// hashed and dropped a batch at a time).
const BATCH: usize = 32;

/// Where the tree is.
pub enum Source {
    /// An export directory (the bucket's root).
    Dir(PathBuf),
    /// A bucket and prefix.
    Bucket(Sink),
}

impl Source {
    /// Every key of the tree under `AWSLogs/`, sorted (with the prefix).
    fn list(&self) -> Result<Vec<String>> {
        match self {
            Source::Dir(dir) => {
                if !dir.join("AWSLogs").is_dir() {
                    bail!("{} holds no AWSLogs/ tree", dir.display());
                }
                let mut out = Vec::new();
                let mut stack = vec![dir.join("AWSLogs")];
                while let Some(d) = stack.pop() {
                    let Ok(rd) = std::fs::read_dir(&d) else { continue };
                    for e in rd.flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            stack.push(p);
                        } else if let Ok(rel) = p.strip_prefix(dir) {
                            out.push(rel.to_string_lossy().replace('\\', "/"));
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
            Source::Bucket(sink) => {
                let p = &sink.target.prefix;
                let keys = sink.list(&if p.is_empty() { "AWSLogs".to_string() } else { format!("{p}/AWSLogs") })?;
                if keys.is_empty() {
                    bail!("{} holds no AWSLogs/ tree", sink.target);
                }
                Ok(keys)
            }
        }
    }

    /// A key without the prefix (`AWSLogs/...`).
    fn rel<'a>(&self, key: &'a str) -> &'a str {
        match self {
            Source::Dir(_) => key,
            Source::Bucket(sink) if sink.target.prefix.is_empty() => key,
            Source::Bucket(sink) => key.strip_prefix(&sink.target.prefix).and_then(|k| k.strip_prefix('/')).unwrap_or(key),
        }
    }

    /// The objects at `keys`, in order, with their signature metadata.
    /// In a directory a digest's metadata is its `.sig` file (an export's
    /// Ed25519 signature, which is also its chain's) or its
    /// `.metadata.json` (a bucket copied to disk).
    fn read(&self, keys: &[String]) -> Result<Vec<Option<Object>>> {
        match self {
            Source::Bucket(sink) => sink.get_all(keys),
            Source::Dir(dir) => keys
                .iter()
                .map(|k| {
                    let path = dir.join(k);
                    let body = match std::fs::read(&path) {
                        Ok(b) => b,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => bail!("reading {}: {e}", path.display()),
                    };
                    let mut metadata = BTreeMap::new();
                    if let Ok(sig) = std::fs::read_to_string(format!("{}.sig", path.display())) {
                        metadata.insert("signature".to_string(), sig.trim().to_string());
                        metadata.insert("cairn-signature".to_string(), sig.trim().to_string());
                    } else if let Ok(b) = std::fs::read(format!("{}.metadata.json", path.display())) {
                        metadata = serde_json::from_slice(&b).unwrap_or_default();
                    }
                    Ok(Some(Object { body, metadata }))
                })
                .collect(),
        }
    }
}

/// Streams a gzip object's uncompressed bytes to `sink`, at most `cap` of
/// them (a gzip bomb is refused, not unpacked), refusing data after the
/// first member (as validate-logs does since 2026).
fn gunzip_into(gz: &[u8], cap: u64, sink: &mut dyn Write) -> std::result::Result<(), String> {
    let mut d = flate2::read::GzDecoder::new(gz);
    let copied = std::io::copy(&mut (&mut d).take(cap + 1), sink).map_err(|e| format!("invalid format ({e})"))?;
    if copied > cap {
        return Err(format!("invalid format (more than {cap} bytes uncompressed)"));
    }
    if !d.into_inner().is_empty() {
        return Err("invalid format (data after the gzip member)".into());
    }
    Ok(())
}

/// SHA-256 of a log file's uncompressed bytes, streamed.
fn gunzip_sha256(gz: &[u8]) -> std::result::Result<String, String> {
    struct H(Sha256);
    impl Write for H {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.update(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = H(Sha256::new());
    gunzip_into(gz, LOG_RAW_BYTES_MAX, &mut h)?;
    Ok(hex::encode(h.0.finalize()))
}

/// A digest window's length as people write it (`1h`, `5m`, `90s`).
fn span_text(ms: i64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms => format!("{}s", ms as f64 / 1000.0),
    }
}

/// What `verify-export` found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ExportCheck {
    pub digests: u64,
    pub digests_valid: u64,
    pub log_files: u64,
    pub log_files_valid: u64,
    /// Log files newer than their stream's newest digest (delivered in
    /// the window still open), which no digest lists yet.
    pub log_files_not_yet_covered: Vec<String>,
    /// Delivered digests whose RSA signature was not checked (no
    /// --digest-public-key given).
    pub rsa_signatures_unchecked: u64,
    pub problems: Vec<String>,
}

/// A digest read back.
struct Found {
    key: String,
    d: DigestFile,
    /// SHA-256 hex of its uncompressed JSON.
    hash: String,
    metadata: BTreeMap<String, String>,
}

/// `(account, region, trail)` of a digest key (`trail` being
/// `<trail>_<home region>`), from its path and file name.
fn digest_stream(rel: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = rel.split('/').collect();
    let (account, region, name) = (parts.get(1)?, parts.get(3)?, parts.last()?);
    let rest = name.strip_prefix(&format!("{account}_CloudTrail-Digest_{region}_"))?.strip_suffix(".json.gz")?;
    let (trail, _time) = rest.rsplit_once('_')?;
    Some((account.to_string(), region.to_string(), trail.to_string()))
}

/// The `YYYY-MM-DDTHH:MM:00Z` of a log file's name
/// (`..._<YYYYMMDDTHHmmZ>_<unique>.json.gz`).
fn log_file_time(rel: &str) -> Option<String> {
    let name = rel.rsplit('/').next()?;
    let t = name.rsplit('_').nth(1)?;
    let b = t.as_bytes();
    (b.len() == 14 && b[8] == b'T' && b[13] == b'Z' && t[..8].bytes().chain(t[9..13].bytes()).all(|c| c.is_ascii_digit()))
        .then(|| format!("{}-{}-{}T{}:{}:00Z", &t[..4], &t[4..6], &t[6..8], &t[9..11], &t[11..13]))
}

/// Digests expected up to an instant (see the module docs, "The tail").
#[derive(Debug, Clone, Copy)]
pub struct DigestsThrough {
    pub at_ms: i64,
    /// The digest interval the writer uses.
    pub interval_ms: i64,
    /// How late after its window a digest may be written.
    pub grace_ms: i64,
}

impl DigestsThrough {
    /// Every trail's newest digest must end at or after this.
    fn due_ms(&self) -> i64 {
        self.at_ms.saturating_sub(self.interval_ms).saturating_sub(self.grace_ms)
    }
}

/// Checks the tree at `source`: every digest (location, signatures,
/// chain, coverage), every log file a digest lists (present, hash), and
/// log files no digest lists. `keys`: the store's Ed25519 public keys;
/// `rsa`: RSA public keys (DER), may be empty.
/// `through`: digests expected up to an instant (`--digests-through`).
pub fn verify_export(
    source: &Source,
    keys: &[Verifier],
    rsa: &[Vec<u8>],
    through: Option<DigestsThrough>,
    quiet: bool,
) -> Result<ExportCheck> {
    let files = source.list()?;
    let is_digest = |f: &str| f.contains("/CloudTrail-Digest/") && f.ends_with(".json.gz");
    let logs: BTreeSet<&String> = files.iter().filter(|f| f.contains("/CloudTrail/") && f.ends_with(".json.gz")).collect();
    let mut check = ExportCheck::default();
    // trail -> stream -> digests
    let mut trails: BTreeMap<String, BTreeMap<(String, String), Vec<Found>>> = BTreeMap::new();
    let digest_keys: Vec<String> = files.iter().filter(|f| is_digest(f)).cloned().collect();
    let bar = Progress::items("reading digests", digest_keys.len() as u64, quiet);
    for batch in digest_keys.chunks(BATCH) {
        bar.inc(batch.len() as u64);
        for (key, obj) in batch.iter().zip(source.read(batch)?) {
            check.digests += 1;
            let rel = source.rel(key);
            let Some((account, region, trail)) = digest_stream(rel) else {
                check.problems.push(format!("Digest file {key} INVALID: its name is not a CloudTrail digest file name"));
                continue;
            };
            let Some(obj) = obj else {
                check.problems.push(format!("Digest file {key} INVALID: not found (deleted while being read)"));
                continue;
            };
            let mut json = Vec::new();
            if let Err(e) = gunzip_into(&obj.body, DIGEST_RAW_BYTES_MAX, &mut json) {
                check.problems.push(format!("Digest file {key} INVALID: {e}"));
                continue;
            }
            let d: DigestFile = match serde_json::from_slice(&json) {
                Ok(d) => d,
                Err(e) => {
                    check.problems.push(format!("Digest file {key} INVALID: invalid format ({e})"));
                    continue;
                }
            };
            let hash = hex::encode(Sha256::digest(&json));
            trails.entry(trail).or_default().entry((account, region)).or_default().push(Found {
                key: key.clone(),
                d,
                hash,
                metadata: obj.metadata,
            });
        }
    }
    bar.finish();
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    // The newest digest end per stream over all trails, for log files not
    // listed yet (a file older than it should be listed).
    let mut newest: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut listed: Vec<(String, String)> = Vec::new();
    // A log file older than this should be listed by now.
    let open_from_ms = through.map(|t| t.due_ms());
    if through.is_some() && trails.is_empty() {
        check.problems.push("No digest files found, but --digests-through expects them: deleted, or never delivered".into());
    }
    for (trail, mut streams) in trails {
        let trail_end = streams.values().flatten().map(|f| f.d.digest_end_time.clone()).max().unwrap_or_default();
        if let Some(t) = through {
            if parse_event_time(&trail_end).is_none_or(|end| end < t.due_ms()) {
                check.problems.push(format!(
                    "Digest files of trail {trail} after {trail_end} are missing: digests every {} were expected through {} (--digests-through, {} of grace): deleted, or delivery stopped",
                    span_text(t.interval_ms),
                    format_event_time(t.at_ms),
                    span_text(t.grace_ms)
                ));
            }
        }
        let ends: BTreeSet<String> = streams.values().flatten().map(|f| f.d.digest_end_time.clone()).collect();
        for ((account, region), digests) in streams.iter_mut() {
            digests.sort_by(|a, b| a.d.digest_end_time.cmp(&b.d.digest_end_time));
            let last = digests.last().map(|f| f.d.digest_end_time.clone()).unwrap_or_default();
            let e = newest.entry((account.clone(), region.clone())).or_insert_with(|| last.clone());
            if last > *e {
                *e = last.clone();
            }
            if last < trail_end {
                check
                    .problems
                    .push(format!("Digest files of {account}/{region} after {last} are missing (the trail's digests end at {trail_end}): deleted, or the writer stopped while writing them (it writes them again when it restarts)"));
            }
            let mut prev: Option<&Found> = None;
            for f in digests.iter() {
                let d = &f.d;
                let mut ok = true;
                let mut bad = |why: String| {
                    ok = false;
                    check.problems.push(format!("Digest file {} INVALID: {why}", f.key));
                };
                if d.digest_s3_object != f.key || d.aws_account_id != *account {
                    bad(format!("has been moved from its original location ({})", d.digest_s3_object));
                }
                let location = format!("{}/{}", d.digest_s3_bucket, d.digest_s3_object);
                let previous = d.previous_digest_signature.as_deref();
                match f.metadata.get("cairn-signature").map(|s| hex::decode(s).unwrap_or_default()) {
                    None => bad("it has no Cairn signature (.sig file or cairn-signature metadata)".into()),
                    Some(sig) => {
                        // An export names its Ed25519 key by fingerprint; a
                        // delivered digest in its cairn-key metadata.
                        let key = match f.metadata.get("cairn-key") {
                            Some(k) => keys.iter().find(|v| v.encode() == *k),
                            None => keys.iter().find(|v| v.fingerprint() == d.digest_public_key_fingerprint),
                        };
                        match key {
                            None => bad(format!(
                                "public key not found for fingerprint {} (give the store's key with --public-key)",
                                f.metadata.get("cairn-key").unwrap_or(&d.digest_public_key_fingerprint)
                            )),
                            Some(k) if !k.verifies_digest(&d.digest_end_time, &location, &f.hash, previous, &sig) => {
                                bad("signature verification failed".into())
                            }
                            Some(_) => {}
                        }
                    }
                }
                if f.metadata.get("signature-algorithm").map(String::as_str) == Some(digest_keys::SIGNATURE_ALGORITHM) {
                    let msg = cairn_deliver::format::string_to_sign(
                        &d.digest_end_time,
                        &d.digest_s3_bucket,
                        &d.digest_s3_object,
                        &f.hash,
                        previous,
                    );
                    let sig = f.metadata.get("signature").map(|s| hex::decode(s).unwrap_or_default()).unwrap_or_default();
                    match rsa.iter().find(|der| digest_keys::fingerprint(der) == d.digest_public_key_fingerprint) {
                        None if rsa.is_empty() => check.rsa_signatures_unchecked += 1,
                        None => bad(format!("RSA public key not found for fingerprint {}", d.digest_public_key_fingerprint)),
                        Some(der) if !digest_keys::verify(der, msg.as_bytes(), &sig) => bad("RSA signature verification failed".into()),
                        Some(_) => {}
                    }
                }
                match prev {
                    None if d.previous_digest_s3_object.is_some() => bad(format!(
                        "the digest before it ({}) is missing: events of the hours before {} cannot be checked",
                        d.previous_digest_s3_object.clone().unwrap_or_default(),
                        d.digest_start_time
                    )),
                    Some(p) if p.d.digest_end_time != d.digest_start_time => {
                        // A chain restarted after a long silence has no
                        // previous digest; other streams then have none
                        // for the gap either.
                        let others =
                            ends.range(p.d.digest_end_time.clone()..=d.digest_start_time.clone()).any(|t| *t > p.d.digest_end_time);
                        if d.previous_digest_s3_object.is_some() || others {
                            bad(format!(
                                "no digest covers {} .. {} in {account}/{region}: digest files for those hours were deleted",
                                p.d.digest_end_time, d.digest_start_time
                            ));
                        }
                    }
                    Some(p)
                        if d.previous_digest_s3_object.as_deref() != Some(p.key.as_str())
                            || d.previous_digest_hash_value.as_deref() != Some(p.hash.as_str())
                            || previous != p.metadata.get("signature").map(String::as_str) =>
                    {
                        bad(format!("does not chain to {} (previous digest name, hash or signature differ)", p.key));
                    }
                    _ => {}
                }
                if ok {
                    check.digests_valid += 1;
                }
                for lf in &d.log_files {
                    check.log_files += 1;
                    referenced.insert(lf.s3_object.clone());
                    let stream_dir = format!("AWSLogs/{account}/CloudTrail/{region}/");
                    if !source.rel(&lf.s3_object).starts_with(&stream_dir) || lf.s3_object.contains("..") {
                        check.problems.push(format!("Log file {} INVALID: listed by {} outside its stream", lf.s3_object, f.key));
                        continue;
                    }
                    listed.push((lf.s3_object.clone(), lf.hash_value.clone()));
                }
                prev = Some(f);
            }
        }
    }
    // Every listed log file: present, and its hash.
    listed.sort();
    listed.dedup();
    let bar = Progress::items("checking log files", listed.len() as u64, quiet);
    for batch in listed.chunks(BATCH) {
        bar.inc(batch.len() as u64);
        let keys: Vec<String> = batch.iter().map(|l| l.0.clone()).collect();
        for (l, obj) in batch.iter().zip(source.read(&keys)?) {
            match obj.map(|o| gunzip_sha256(&o.body)) {
                None => check.problems.push(format!("Log file {} INVALID: not found", l.0)),
                Some(Err(e)) => check.problems.push(format!("Log file {} INVALID: {e}", l.0)),
                Some(Ok(h)) if h != l.1 => check.problems.push(format!("Log file {} INVALID: hash value doesn't match", l.0)),
                Some(Ok(_)) => check.log_files_valid += 1,
            }
        }
    }
    bar.finish();
    let newest_any = newest.values().max().cloned();
    for l in logs.into_iter().filter(|l| !referenced.contains(*l)) {
        let parts: Vec<&str> = source.rel(l).split('/').collect();
        let stream = (parts.get(1).unwrap_or(&"").to_string(), parts.get(3).unwrap_or(&"").to_string());
        // A stream without any digest is measured against the newest digest
        // of any stream: deleting all of one stream's digests does not
        // make its older files "not yet covered". Names carry whole
        // minutes: compared at that precision.
        let end = newest.get(&stream).or(newest_any.as_ref());
        let pending = match (end, log_file_time(l)) {
            (_, Some(t)) if open_from_ms.is_some_and(|open| parse_event_time(&t).is_some_and(|t| t < open.saturating_sub(60_000))) => false,
            (None, _) => through.is_none(),
            (Some(end), Some(t)) => t.get(..16).unwrap_or(&t) >= end.get(..16).unwrap_or(end),
            (Some(_), None) => false,
        };
        if pending {
            check.log_files_not_yet_covered.push(l.clone());
        } else {
            check.problems.push(format!("Log file {l} INVALID: no digest lists it (extra or unreferenced file)"));
        }
    }
    Ok(check)
}

/// Check a CloudTrail-style tree of log files and digests: an export
/// directory or a delivered bucket.
///
/// SOURCE is a directory (`cairn export --format cloudtrail --out DIR`)
/// or s3://BUCKET[/PREFIX] (`cairnd --deliver`, `cairn deliver`; endpoint,
/// region and credentials as for `cairn deliver`). Validates every digest
/// (location, Cairn's Ed25519 signature with --public-key, CloudTrail's
/// RSA signature with --digest-public-key, link to the previous digest),
/// that each stream's digests cover every window from its first to the
/// trail's newest without a gap (so deleting digests, at either end or
/// several in a row, is found), every log file a digest lists (present,
/// SHA-256 of its uncompressed bytes), and reports log files no digest
/// lists. Exit 0 valid, 1 otherwise.
///
/// Example: cairn verify-export s3://audit-archive/cairn --public-key "$(cairn key export)"
#[derive(clap::Args)]
pub struct VerifyExportArgs {
    /// An export directory, or s3://BUCKET[/PREFIX].
    #[arg(value_name = "DIR|s3://BUCKET[/PREFIX]")]
    pub source: String,
    /// The store's public key (NAME+KEYID+BASE64, `cairn key export`) or a
    /// file of keys; repeatable.
    #[arg(long = "public-key", required = true)]
    pub public_key: Vec<String>,
    /// CloudTrail's RSA public key of delivered digests: base64 DER, as
    /// ListPublicKeys returns it, or a file of them (one per line);
    /// repeatable. Without it RSA signatures are counted as unchecked
    /// (`aws cloudtrail validate-logs` checks them).
    #[arg(long = "digest-public-key")]
    pub digest_public_key: Vec<String>,
    /// An S3-compatible server's URL [default: AWS_ENDPOINT_URL_S3, else
    /// AWS_ENDPOINT_URL, else AWS S3].
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Virtual-hosted-style requests to --endpoint instead of path-style.
    #[arg(long)]
    pub virtual_hosted: bool,
    /// Expect digests up to this time (RFC 3339, or `now`): a trail whose
    /// newest digest ends before TIME minus --digest-interval-secs minus
    /// --digests-grace-secs has lost its newest digests (or its delivery
    /// stopped). Without it, digests deleted from the end of every stream
    /// at once leave a shorter chain that nothing in the files can tell
    /// from a whole one. Use `now` for a bucket cairnd is delivering to,
    /// or the time delivery ended; it applies to every trail in the tree.
    #[arg(long, value_name = "TIME|now")]
    pub digests_through: Option<String>,
    /// The writer's digest interval, for --digests-through (cairnd's
    /// --digest-interval-secs; exports use hours).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub digest_interval_secs: u32,
    /// How late after its window a digest may be written, for
    /// --digests-through (delivery writes it at its next round, later
    /// while the bucket fails).
    #[arg(long, default_value_t = 900)]
    pub digests_grace_secs: u32,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

fn read_rsa_keys(args: &[String]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for a in args {
        let text = if Path::new(a).is_file() { std::fs::read_to_string(a)? } else { a.clone() };
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match base64::engine::general_purpose::STANDARD.decode(line) {
                Ok(der) => out.push(der),
                Err(e) => bail!("--digest-public-key {line:?}: not base64 DER ({e})"),
            }
        }
    }
    Ok(out)
}

impl VerifyExportArgs {
    pub fn run(&self, g: &Global) -> Result<ExitCode> {
        let keys = integrity::read_public_keys(&self.public_key)?;
        let rsa = read_rsa_keys(&self.digest_public_key)?;
        let source = if self.source.starts_with("s3://") {
            let target: Target = self.source.parse()?;
            let opts = SinkOptions { endpoint: self.endpoint.clone(), region: None, virtual_hosted: self.virtual_hosted };
            Source::Bucket(Sink::connect(target, &opts)?)
        } else {
            Source::Dir(PathBuf::from(&self.source))
        };
        let at_ms = match self.digests_through.as_deref() {
            None => None,
            Some("now") => Some(super::now_ms()),
            Some(t) => Some(parse_event_time(t).ok_or_else(|| {
                anyhow::anyhow!("--digests-through {t:?}: not a time (use RFC 3339, such as 2026-01-31T00:00:00Z, or now)")
            })?),
        };
        let through = at_ms.map(|at_ms| DigestsThrough {
            at_ms,
            interval_ms: i64::from(self.digest_interval_secs) * 1000,
            grace_ms: i64::from(self.digests_grace_secs) * 1000,
        });
        let c = verify_export(&source, &keys, &rsa, through, g.quiet)?;
        let ok = c.problems.is_empty();
        match self.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&c)?),
            Output::Table => {
                for p in &c.problems {
                    println!("{p}");
                }
                println!("{}/{} digest files valid, {}/{} log files valid", c.digests_valid, c.digests, c.log_files_valid, c.log_files);
                if !c.log_files_not_yet_covered.is_empty() {
                    println!(
                        "{} log files are newer than their stream's newest digest (the next digest lists them)",
                        c.log_files_not_yet_covered.len()
                    );
                }
                if c.rsa_signatures_unchecked > 0 {
                    println!("{} RSA signatures not checked (no --digest-public-key)", c.rsa_signatures_unchecked);
                }
                println!("{}", if ok { "ok" } else { "FAILED" });
            }
        }
        Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: names parse back into what they were made of, and a name that
    // is not CloudTrail's gives nothing rather than a wrong stream.
    #[test]
    fn names() {
        assert_eq!(
            digest_stream("AWSLogs/111/CloudTrail-Digest/eu-west-1/2026/01/01/111_CloudTrail-Digest_eu-west-1_my_trail_us-east-1_20260101T010000Z.json.gz"),
            Some(("111".into(), "eu-west-1".into(), "my_trail_us-east-1".into()))
        );
        assert_eq!(digest_stream("AWSLogs/111/CloudTrail-Digest/eu-west-1/x.json.gz"), None);
        assert_eq!(
            log_file_time("AWSLogs/1/CloudTrail/r/2026/01/01/1_CloudTrail_r_20260101T0105Z_ABCDEFGHIJKLMNOP.json.gz").as_deref(),
            Some("2026-01-01T01:05:00Z")
        );
        assert_eq!(log_file_time("AWSLogs/1/CloudTrail/r/x_y.json.gz"), None);
    }
}
