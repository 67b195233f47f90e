//! `verify`: recomputes the whole commitment of a data directory from the
//! stored records and reports every place it disagrees with what the store
//! recorded or signed: each sealed segment's blocks (checksums), its seqs
//! (none missing, none extra), its position in the hash chain, its segment
//! and tree roots and frontier, every Merkle tile, the unsealed events in
//! the WAL, every checkpoint in the history (signature, size, root) and any
//! checkpoints the caller saved elsewhere.
//!
//! It reads files only (never the store's in-memory state) and writes
//! nothing. Damage is collected as [`Problem`]s; only a failure to read the
//! directory at all is an `Err`. Segments are read by worker threads;
//! leaves are folded into the tree in seq order on the calling thread.

mod checkpoints;
mod fold;
mod segments;

pub(crate) use checkpoints::read_history_or_report;
use checkpoints::{check_history_order, check_signature, trusted_keys};
use fold::{Fold, Target};
use segments::scan_segments;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::history::HistoryEntry;
use crate::checkpoint::{SignedCheckpoint, Verifier};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, RealFs};
use crate::layout::{parse_segment_file_name, parse_wal_file_name, segment_file_name, SEGMENT_DIR, TILE_DIR, WAL_DIR};
use crate::manifest::Manifest;
use crate::merkle::{leaf_hash, Hash};
use crate::segment::reader::Segment;
use crate::wal::read_wal;

/// What to check besides the directory itself.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Checkpoints saved outside the store (e.g. by an auditor): each must
    /// be a prefix of the log.
    pub checkpoints: Vec<SignedCheckpoint>,
    /// Public keys to check signatures with. Empty: the store's own list
    /// (`keys/verifiers`), which proves less: whoever rewrote the store
    /// could have rewritten that list too.
    pub public_keys: Vec<Verifier>,
}

impl VerifyOptions {
    /// Options from text: signed checkpoint notes and public keys (as
    /// `cairn key export` prints them); the error names the bad one.
    pub fn from_text(checkpoints: &[String], public_keys: &[String]) -> Result<Self> {
        Ok(VerifyOptions {
            checkpoints: checkpoints.iter().map(|c| SignedCheckpoint::parse_named(c, "--checkpoint")).collect::<Result<_>>()?,
            public_keys: public_keys
                .iter()
                .map(|k| Verifier::parse(k).map_err(|e| Error::InvalidArgument(format!("public key: {e}"))))
                .collect::<Result<_>>()?,
        })
    }
}

/// One thing found wrong, with a stable kind and a sentence naming where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub what: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProblemKind {
    /// Bytes of a block, tile or footer differ from their checksums or the
    /// hashes that cover them: records were altered.
    Altered,
    /// Seqs the log should hold are not there: events were removed.
    Missing,
    /// Seqs appear twice or out of their segment's range: events were
    /// inserted or moved.
    Extra,
    /// Segments are out of order or do not chain: segments were removed,
    /// replaced or swapped.
    Chain,
    /// A file cannot be read or parsed at all.
    Unreadable,
    /// A checkpoint disagrees with the log: history was rewritten, cut
    /// short or rolled back.
    Checkpoint,
    /// A signature fails or is by a key the caller did not trust.
    Signature,
}

impl ProblemKind {
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Altered => "altered",
            ProblemKind::Missing => "missing",
            ProblemKind::Extra => "extra",
            ProblemKind::Chain => "chain",
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::Checkpoint => "checkpoint",
            ProblemKind::Signature => "signature",
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Events whose leaves were recomputed.
    pub events: u64,
    pub segments: usize,
    /// Bytes of records hashed.
    pub record_bytes: u64,
    /// Tree size and root recomputed from the records (when complete).
    pub tree_size: u64,
    pub root: Option<Hash>,
    /// Checkpoints checked: from the history, and given by the caller.
    pub history_checkpoints: usize,
    pub external_checkpoints: usize,
    /// Whether signatures were checked against keys the caller gave.
    pub trusted_keys: bool,
    /// Seqs below this were removed by retention (not damage).
    pub pruned_below: u64,
    /// Checkpoints inside the pruned range that could not be recomputed.
    pub pruned_checkpoints: usize,
    /// The first [`REPORT_PROBLEMS_MAX`] problems found...
    pub problems: Vec<Problem>,
    /// ... and how many more there were.
    pub problems_omitted: u64,
}

/// A damaged store can produce the same finding many times (every tile
/// above a bad leaf): a report lists this many and counts the rest.
pub const REPORT_PROBLEMS_MAX: usize = 1000;

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, kind: ProblemKind, what: impl Into<String>) {
        if self.problems.len() < REPORT_PROBLEMS_MAX {
            self.problems.push(Problem { kind, what: what.into() });
        } else {
            self.problems_omitted += 1;
        }
    }
}

/// Progress callback: (record bytes done, record bytes in all).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// One manifest entry, opened (or why not).
pub(crate) struct Listed {
    pub first_seq: u64,
    pub count: u64,
    pub path: PathBuf,
    pub segment: std::result::Result<Arc<Segment>, String>,
}

/// An unsealed event: its seq, its leaf recomputed from the record, and
/// the record's length.
pub(crate) type Unsealed = (u64, Hash, u64);

/// [`verify_dir`] while holding the directory's lock, so that no writer
/// changes it meanwhile. `Error::Locked` names the process that has it
/// open (a running cairnd: verify through it instead).
pub fn verify_dir_locked(dir: &Path, opts: &VerifyOptions, progress: Progress<'_>) -> Result<Report> {
    let _lock = crate::lock::DirLock::acquire(dir)?;
    verify_dir(dir, opts, progress)
}

/// Verifies the data directory `dir`. The caller holds its lock (or the
/// store is closed): files must not change underneath.
pub fn verify_dir(dir: &Path, opts: &VerifyOptions, progress: Progress<'_>) -> Result<Report> {
    let fs = RealFs;
    let mut report = Report::default();
    let manifest = match Manifest::load(&fs, dir) {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            report.problem(ProblemKind::Unreadable, format!("manifest: {e}"));
            Manifest::default()
        }
    };
    let seg_dir = dir.join(SEGMENT_DIR);
    let listed: Vec<Listed> = manifest
        .segments
        .iter()
        .map(|e| {
            let path = seg_dir.join(segment_file_name(e.first_seq, e.file_gen));
            let segment = Segment::open(&path).map(Arc::new).map_err(|err| err.to_string());
            Listed { first_seq: e.first_seq, count: e.count, path, segment }
        })
        .collect();
    check_listing(&mut report, manifest.min_retained_seq, manifest.sealed_size, &listed);
    check_extra_files(&mut report, &listed, &seg_dir);
    let unsealed = read_unsealed(&fs, &dir.join(WAL_DIR), manifest.sealed_size, &mut report);
    let history = read_history_or_report(&fs, dir, &mut report);
    verify_parts(&fs, dir, &history, manifest.min_retained_seq, manifest.sealed_size, &listed, &unsealed, opts, progress, &mut report);
    Ok(report)
}

/// The checks shared by offline (`verify_dir`) and online
/// (`Store::verify`) verification, once segments and unsealed events are
/// gathered.
#[allow(clippy::too_many_arguments)]
pub(crate) fn verify_parts(
    fs: &dyn FileSystem,
    dir: &Path,
    history: &[HistoryEntry],
    min_retained: u64,
    sealed_size: u64,
    listed: &[Listed],
    unsealed: &[Unsealed],
    opts: &VerifyOptions,
    progress: Progress<'_>,
    report: &mut Report,
) {
    report.segments = listed.len();
    let total: u64 = listed.iter().filter_map(|l| l.segment.as_ref().ok()).map(|s| s.footer.raw_bytes).sum::<u64>()
        + unsealed.iter().map(|u| u.2).sum::<u64>();

    // Checkpoints to hold the recomputed tree against, by size.
    let verifiers = trusted_keys(fs, dir, opts, report);
    let mut targets: BTreeMap<u64, Vec<Target>> = BTreeMap::new();
    check_history_order(report, history);
    for (i, e) in history.iter().enumerate() {
        check_signature(
            report,
            &e.checkpoint,
            &verifiers,
            &format!("history checkpoint #{} (size {})", i + 1, e.checkpoint.checkpoint.size),
        );
        targets
            .entry(e.checkpoint.checkpoint.size)
            .or_default()
            .push(Target { label: format!("history checkpoint #{}", i + 1), root: e.checkpoint.checkpoint.root });
    }
    report.history_checkpoints = history.len();
    for (i, c) in opts.checkpoints.iter().enumerate() {
        check_signature(report, c, &verifiers, &format!("given checkpoint #{} (size {})", i + 1, c.checkpoint.size));
        targets
            .entry(c.checkpoint.size)
            .or_default()
            .push(Target { label: format!("given checkpoint #{}", i + 1), root: c.checkpoint.root });
    }
    report.external_checkpoints = opts.checkpoints.len();
    if let Some(origin) = history.last().map(|e| e.checkpoint.checkpoint.origin.clone()) {
        for (i, c) in opts.checkpoints.iter().enumerate() {
            if c.checkpoint.origin != origin {
                report.problem(
                    ProblemKind::Checkpoint,
                    format!("given checkpoint #{} is of log {:?}, this store is {origin:?}", i + 1, c.checkpoint.origin),
                );
            }
        }
    }

    let mut fold = Fold::new(fs, dir.join(TILE_DIR), sealed_size, targets);
    if min_retained > 0 {
        report.pruned_below = min_retained;
        fold.start_after_cut(report, min_retained);
    }
    scan_segments(listed, report, &mut fold, total, progress);
    for &(seq, leaf, len) in unsealed {
        fold.push(report, seq, leaf);
        report.record_bytes += len;
    }
    fold.finish(report);
}

/// Listing checks: the segment files exist and their seq ranges are
/// contiguous from the retained start to the sealed size.
pub(crate) fn check_listing(report: &mut Report, min_retained_seq: u64, sealed_size: u64, listed: &[Listed]) {
    let mut expect = min_retained_seq;
    for l in listed {
        if l.first_seq > expect {
            report.problem(ProblemKind::Missing, format!("seqs {expect}..{} are in no segment: a segment was removed", l.first_seq));
        } else if l.first_seq < expect {
            report.problem(
                ProblemKind::Chain,
                format!(
                    "{} starts at seq {} but the previous segment ends at {expect}: segments overlap or are out of order",
                    l.path.display(),
                    l.first_seq
                ),
            );
        }
        if let Err(e) = &l.segment {
            report.problem(ProblemKind::Unreadable, format!("seqs {}..{}: {e}", l.first_seq, l.first_seq + l.count));
        }
        expect = l.first_seq + l.count;
    }
    if expect != sealed_size {
        report
            .problem(ProblemKind::Missing, format!("the manifest says {sealed_size} events are sealed, its segments end at seq {expect}"));
    }
}

/// Segment files the manifest does not list.
fn check_extra_files(report: &mut Report, listed: &[Listed], seg_dir: &Path) {
    let named: std::collections::HashSet<String> =
        listed.iter().filter_map(|l| l.path.file_name().and_then(|n| n.to_str()).map(str::to_string)).collect();
    if let Ok(rd) = std::fs::read_dir(seg_dir) {
        let mut extra: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| parse_segment_file_name(n).is_some() && !named.contains(n))
            .collect();
        extra.sort();
        for n in extra {
            // An interrupted seal leaves one (cleaned on open); anything
            // else was put there.
            report.problem(ProblemKind::Extra, format!("segment file {n} is not listed in the manifest"));
        }
    }
}

/// The unsealed events from the WAL files at or above the sealed size,
/// each leaf checked against the one stored with it.
fn read_unsealed(fs: &dyn FileSystem, wal_dir: &Path, sealed: u64, report: &mut Report) -> Vec<Unsealed> {
    let mut files: Vec<(u64, PathBuf)> = fs
        .list_dir(wal_dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((p.file_name()?.to_str().and_then(parse_wal_file_name)?, p)))
        .filter(|(first, _)| *first >= sealed)
        .collect();
    files.sort();
    let mut out = Vec::new();
    let n = files.len();
    for (i, (_, path)) in files.into_iter().enumerate() {
        let bytes = match fs.read(&path) {
            Ok(b) => b,
            Err(e) => {
                report.problem(ProblemKind::Unreadable, format!("{}: {e}", path.display()));
                continue;
            }
        };
        match read_wal(&path, &bytes, i + 1 == n) {
            Ok(c) => {
                for e in c.entries {
                    let rec = &bytes[e.record.clone()];
                    let leaf = leaf_hash(e.ingest_ms, rec);
                    if leaf != e.leaf {
                        report.problem(
                            ProblemKind::Altered,
                            format!("seq {} in {}: the record does not hash to its leaf", e.seq, path.display()),
                        );
                    }
                    out.push((e.seq, leaf, rec.len() as u64));
                }
            }
            Err(e) => report.problem(ProblemKind::Unreadable, e.to_string()),
        }
    }
    out
}
