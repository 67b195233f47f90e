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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use crate::checkpoint::history::{read_all as read_history, HistoryEntry};
use crate::checkpoint::keys::parse_verifiers;
use crate::checkpoint::{SignedCheckpoint, Verifier};
use crate::error::Result;
use crate::fs::{FileSystem, RealFs};
use crate::layout::{
    parse_segment_file_name, parse_wal_file_name, segment_file_name, KEY_DIR, SEGMENT_DIR, TILE_DIR, VERIFIERS_FILE, WAL_DIR,
};
use crate::manifest::Manifest;
use crate::merkle::{leaf_hash, Frontier, Hash, TILE_HEIGHT, TILE_WIDTH};
use crate::segment::reader::Segment;
use crate::tiles;
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

/// One segment as read by a worker.
struct Scan {
    /// (seq, leaf) of every event found, sorted by seq.
    leaves: Vec<(u64, Hash)>,
    bytes: u64,
    problems: Vec<Problem>,
}

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

/// Every checkpoint in the history (a damaged history is a problem).
pub(crate) fn read_history_or_report(fs: &dyn FileSystem, dir: &Path, report: &mut Report) -> Vec<HistoryEntry> {
    match read_history(fs, dir) {
        Ok(h) => h.entries,
        Err(e) => {
            report.problem(ProblemKind::Unreadable, format!("checkpoint history: {e}"));
            Vec::new()
        }
    }
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

/// The keys signatures are checked with.
fn trusted_keys(fs: &dyn FileSystem, dir: &Path, opts: &VerifyOptions, report: &mut Report) -> Vec<Verifier> {
    if !opts.public_keys.is_empty() {
        report.trusted_keys = true;
        return opts.public_keys.clone();
    }
    let path = dir.join(KEY_DIR).join(VERIFIERS_FILE);
    match fs.read(&path) {
        Ok(b) => match parse_verifiers(&path, &String::from_utf8_lossy(&b)) {
            Ok(v) => v,
            Err(e) => {
                report.problem(ProblemKind::Unreadable, e.to_string());
                Vec::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            report.problem(ProblemKind::Unreadable, format!("{}: {e}", path.display()));
            Vec::new()
        }
    }
}

fn check_signature(report: &mut Report, c: &SignedCheckpoint, verifiers: &[Verifier], label: &str) {
    if verifiers.is_empty() {
        report.problem(ProblemKind::Signature, format!("{label}: no public key to check its signature with"));
        return;
    }
    if let Err(e) = c.verify(verifiers) {
        let by: Vec<String> = c.signer_ids().iter().map(|(n, id)| format!("{n}+{id:08x}")).collect();
        report.problem(ProblemKind::Signature, format!("{label}: {e} (it is signed by {})", by.join(", ")));
    }
}

/// The history never goes back in size, and never signs two roots for one.
fn check_history_order(report: &mut Report, history: &[HistoryEntry]) {
    for (i, w) in history.windows(2).enumerate() {
        let (a, b) = (&w[0].checkpoint.checkpoint, &w[1].checkpoint.checkpoint);
        if b.size < a.size {
            report.problem(
                ProblemKind::Checkpoint,
                format!("history checkpoint #{} (size {}) is smaller than #{} (size {})", i + 2, b.size, i + 1, a.size),
            );
        } else if b.size == a.size && b.root != a.root {
            report.problem(
                ProblemKind::Checkpoint,
                format!("history checkpoints #{} and #{} sign two different roots for size {}", i + 1, i + 2, a.size),
            );
        }
    }
}

/// Reads every listed segment on worker threads and folds their leaves in
/// seq order, checking each segment against its footer as it completes.
fn scan_segments(listed: &[Listed], report: &mut Report, fold: &mut Fold<'_>, total: u64, progress: Progress<'_>) {
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
    let (tx, rx) = mpsc::sync_channel::<(usize, Scan)>(workers * 2);
    std::thread::scope(|s| {
        for _ in 0..workers {
            let tx = tx.clone();
            let next = &next;
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(l) = listed.get(i) else { return };
                let scan = match &l.segment {
                    Ok(seg) => scan_segment(seg),
                    Err(_) => Scan { leaves: Vec::new(), bytes: 0, problems: Vec::new() },
                };
                if tx.send((i, scan)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Scan> = BTreeMap::new();
        let (mut want, mut done_bytes) = (0usize, 0u64);
        let mut prev_hash: Option<Hash> = None;
        for (i, scan) in rx {
            pending.insert(i, scan);
            while let Some(scan) = pending.remove(&want) {
                done_bytes += scan.bytes;
                report.record_bytes += scan.bytes;
                check_segment(report, fold, &listed[want], scan, &mut prev_hash);
                progress(done_bytes, total);
                want += 1;
            }
        }
    });
}

/// Reads every block of a segment: checksums, then the (seq, leaf) pairs.
fn scan_segment(seg: &Segment) -> Scan {
    // The count comes from disk: let the vector grow with what is read.
    let mut scan = Scan { leaves: Vec::new(), bytes: 0, problems: Vec::new() };
    let name = seg.path.display().to_string();
    // A damaged index is reported once, not once per block.
    let index_ok = match seg.index() {
        Ok(_) => true,
        Err(e) => {
            scan.problems.push(Problem { kind: ProblemKind::Altered, what: e.to_string() });
            false
        }
    };
    for b in 0..seg.blocks.len() {
        let block = match seg.read_block(b) {
            Ok(block) => block,
            Err(e) => {
                scan.problems.push(Problem { kind: ProblemKind::Altered, what: e.to_string() });
                // Look inside anyway: which seqs it holds names the damage.
                match seg.read_block_unchecked(b) {
                    Ok(block) => block,
                    Err(_) => continue,
                }
            }
        };
        if let Some(Err(e)) = index_ok.then(|| seg.check_seq_map(b, &block.seqs)) {
            scan.problems.push(Problem { kind: ProblemKind::Altered, what: e.to_string() });
        }
        for i in 0..block.len() {
            let rec = block.record(i);
            scan.bytes += rec.len() as u64;
            scan.leaves.push((block.seqs[i], leaf_hash(block.ingest_ms[i], rec)));
        }
    }
    scan.leaves.sort_unstable_by_key(|l| l.0);
    let (lo, hi) = (seg.footer.first_seq, seg.footer.tree_size);
    let mut expect = lo;
    let mut extra = Vec::new();
    for w in scan.leaves.iter().map(|l| l.0).collect::<Vec<_>>().windows(2).filter(|w| w[0] == w[1]) {
        extra.push(w[0]);
    }
    for &(seq, _) in &scan.leaves {
        if !(lo..hi).contains(&seq) {
            extra.push(seq);
        }
    }
    for seq in scan.leaves.iter().map(|l| l.0).filter(|s| (lo..hi).contains(s)) {
        if seq > expect {
            scan.problems.push(Problem {
                kind: ProblemKind::Missing,
                what: format!("{name}: seqs {expect}..{seq} are missing (events were removed)"),
            });
        }
        expect = expect.max(seq + 1);
    }
    if expect < hi {
        scan.problems
            .push(Problem { kind: ProblemKind::Missing, what: format!("{name}: seqs {expect}..{hi} are missing (events were removed)") });
    }
    extra.sort_unstable();
    extra.dedup();
    for seq in extra {
        scan.problems.push(Problem {
            kind: ProblemKind::Extra,
            what: format!("{name}: seq {seq} appears twice or outside the segment's range {lo}..{hi} (an event was inserted or moved)"),
        });
    }
    scan.leaves.dedup_by_key(|l| l.0);
    scan.leaves.retain(|l| (lo..hi).contains(&l.0));
    scan
}

/// Checks a scanned segment against its footer and its place in the chain,
/// and folds its leaves into the tree.
fn check_segment(report: &mut Report, fold: &mut Fold<'_>, l: &Listed, scan: Scan, prev_hash: &mut Option<Hash>) {
    for p in scan.problems {
        report.problem(p.kind, p.what);
    }
    let Ok(seg) = &l.segment else {
        fold.broken(report, l.first_seq, "a segment could not be read");
        *prev_hash = None;
        return;
    };
    let f = &seg.footer;
    let name = seg.path.display();
    if f.first_seq != l.first_seq || f.count != l.count {
        report.problem(
            ProblemKind::Chain,
            format!(
                "{name} holds seqs {}..{} but the manifest lists it for {}..{}: segments were swapped or replaced",
                f.first_seq,
                f.tree_size,
                l.first_seq,
                l.first_seq + l.count
            ),
        );
    }
    match prev_hash {
        Some(h) if *h != f.prev_segment_hash => {
            report.problem(ProblemKind::Chain, format!("{name}: its previous-segment hash does not match the segment before it: the chain is broken (a segment was removed, replaced or reordered)"));
        }
        None if f.first_seq == 0 && f.prev_segment_hash != [0; 32] => {
            report.problem(ProblemKind::Chain, format!("{name}: the first segment names a predecessor"));
        }
        _ => {}
    }
    *prev_hash = Some(seg.footer.link_hash());
    let mut own = Frontier::new();
    for &(_, leaf) in &scan.leaves {
        own.push(leaf, |_, _, _| {});
    }
    if scan.leaves.len() as u64 == f.count && own.root() != f.segment_root {
        report.problem(
            ProblemKind::Altered,
            format!(
                "{name}: its events do not hash to the segment root in its footer (events {}..{} were altered, swapped or replaced)",
                f.first_seq, f.tree_size
            ),
        );
    }
    for &(seq, leaf) in &scan.leaves {
        fold.push(report, seq, leaf);
    }
    if fold.intact && fold.frontier.size() == f.tree_size {
        if fold.frontier.root() != f.tree_root {
            report.problem(
                ProblemKind::Altered,
                format!("{name}: the tree recomputed up to seq {} differs from the root its footer records", f.tree_size),
            );
        }
        match seg.frontier() {
            Ok(fr) if fr.nodes() != fold.frontier.nodes() => {
                report.problem(ProblemKind::Altered, format!("{name}: the frontier in its footer differs from the recomputed tree"));
            }
            Err(e) => report.problem(ProblemKind::Altered, e.to_string()),
            _ => {}
        }
    }
}

/// A checkpoint to compare the tree with when it reaches a size.
struct Target {
    label: String,
    root: Hash,
}

/// The tree being recomputed, leaf by leaf in seq order.
struct Fold<'a> {
    fs: &'a dyn FileSystem,
    tile_dir: PathBuf,
    sealed: u64,
    frontier: Frontier,
    /// False once a leaf is missing: later roots cannot be recomputed.
    intact: bool,
    targets: BTreeMap<u64, Vec<Target>>,
    tiles: HashMap<(u32, u64), Option<Vec<Hash>>>,
}

impl<'a> Fold<'a> {
    fn new(fs: &'a dyn FileSystem, tile_dir: PathBuf, sealed: u64, targets: BTreeMap<u64, Vec<Target>>) -> Self {
        Fold { fs, tile_dir, sealed, frontier: Frontier::new(), intact: true, targets, tiles: HashMap::new() }
    }

    /// Retention removed seqs below `cut`: the tree resumes from the tiles
    /// (and the boundary leaf tile), and checkpoints inside the pruned range
    /// are checked from the tiles where they can be, else noted.
    fn start_after_cut(&mut self, report: &mut Report, cut: u64) {
        let cache = crate::segment::cache::BlockCache::new(0);
        let mut t = crate::tree::TreeReader::new(
            self.fs,
            &self.tile_dir,
            &cache,
            Arc::new(crate::segment::set::SegmentSet::default()),
            Vec::new(),
            cut,
            Vec::new(),
            cut,
        );
        match t.frontier_at(cut) {
            Ok(f) => self.frontier = f,
            Err(e) => {
                report.problem(
                    ProblemKind::Unreadable,
                    format!("the tiles of the pruned range (seqs 0..{cut}) cannot rebuild the tree: {e}"),
                );
                self.intact = false;
                return;
            }
        }
        let below: Vec<u64> = self.targets.range(..=cut).map(|(s, _)| *s).collect();
        for size in below {
            let ts = self.targets.remove(&size).unwrap_or_default();
            let root = if size == 0 { Ok(crate::merkle::empty_root()) } else { crate::checkpoint::proof::range_hash(&mut t, 0, size) };
            match root {
                Ok(root) => {
                    for t in ts.iter().filter(|t| t.root != root) {
                        report.problem(
                            ProblemKind::Checkpoint,
                            format!("{} (size {size}) differs from the tree kept in the tiles of the pruned range", t.label),
                        );
                    }
                }
                Err(_) => report.pruned_checkpoints += ts.len(),
            }
        }
    }

    fn broken(&mut self, report: &mut Report, at: u64, why: &str) {
        if self.intact {
            self.intact = false;
            report.problem(
                ProblemKind::Missing,
                format!("the tree cannot be recomputed past seq {at}: {why}; checks of later roots, tiles and checkpoints were skipped"),
            );
        }
    }

    fn push(&mut self, report: &mut Report, seq: u64, leaf: Hash) {
        if !self.intact {
            return;
        }
        if seq != self.frontier.size() {
            self.broken(report, self.frontier.size(), &format!("the next event found is seq {seq}"));
            return;
        }
        let mut nodes = Vec::new();
        self.frontier.push(leaf, |level, index, h| nodes.push((level, index, h)));
        for (level, index, h) in nodes {
            // Tiles hold only the sealed part of the tree.
            if (index + 1) << level <= self.sealed {
                self.check_tile_node(report, level, index, h);
            }
        }
        let size = self.frontier.size();
        if let Some(ts) = self.targets.remove(&size) {
            let root = self.frontier.root();
            for t in ts.iter().filter(|t| t.root != root) {
                report.problem(
                    ProblemKind::Checkpoint,
                    format!(
                        "{} (size {size}) differs from the tree recomputed from the records: the log was rewritten at or before seq {}",
                        t.label,
                        size - 1
                    ),
                );
            }
        }
    }

    fn check_tile_node(&mut self, report: &mut Report, level: u32, index: u64, h: Hash) {
        let tile_level = level / TILE_HEIGHT;
        let t = index / TILE_WIDTH;
        let width = ((self.sealed >> level) - t * TILE_WIDTH).min(TILE_WIDTH);
        let (fs, dir) = (self.fs, &self.tile_dir);
        let tile = self.tiles.entry((tile_level, t)).or_insert_with(|| tiles::read_tile_at_least(fs, dir, tile_level, t, width));
        let (lo, hi) = (index << level, (index + 1) << level);
        match tile.as_ref().and_then(|v| v.get((index % TILE_WIDTH) as usize)) {
            None => report.problem(ProblemKind::Unreadable, format!("tile {tile_level}/{t} (width {width}) is missing or unreadable")),
            Some(stored) if *stored != h => report.problem(
                ProblemKind::Altered,
                format!("seqs {lo}..{hi}: their recomputed hash differs from tile {tile_level}/{t} entry {}: an event in this range was altered, swapped or replaced (or the tile was)", index % TILE_WIDTH),
            ),
            Some(_) => {}
        }
    }

    fn finish(mut self, report: &mut Report) {
        report.events = self.frontier.size();
        if self.intact {
            report.tree_size = self.frontier.size();
            report.root = Some(self.frontier.root());
            let size = self.frontier.size();
            for (s, ts) in std::mem::take(&mut self.targets) {
                for t in ts {
                    if s == 0 {
                        if t.root != crate::merkle::empty_root() {
                            report.problem(ProblemKind::Checkpoint, format!("{} (size 0) does not have the empty tree's root", t.label));
                        }
                        continue;
                    }
                    report.problem(
                        ProblemKind::Checkpoint,
                        format!(
                            "{} covers {s} events but the log holds {size}: the last {} events were removed, or the store was rolled back",
                            t.label,
                            s.saturating_sub(size)
                        ),
                    );
                }
            }
        }
    }
}
