//! Reading sealed segments on worker threads: every block's checksum and
//! records, the seqs each holds, its place in the hash chain, its roots.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::segment::reader::Segment;

use super::fold::Fold;
use super::{Listed, Problem, ProblemKind, Progress, Report};

/// One segment as read by a worker.
pub(super) struct Scan {
    /// (seq, leaf) of every event found, sorted by seq.
    pub(super) leaves: Vec<(u64, Hash)>,
    pub(super) bytes: u64,
    pub(super) problems: Vec<Problem>,
}

/// Reads every listed segment on worker threads and folds their leaves in
/// seq order, checking each segment against its footer as it completes.
pub(super) fn scan_segments(listed: &[Listed], report: &mut Report, fold: &mut Fold<'_>, total: u64, progress: Progress<'_>) {
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
pub(super) fn scan_segment(seg: &Segment) -> Scan {
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
pub(super) fn check_segment(report: &mut Report, fold: &mut Fold<'_>, l: &Listed, scan: Scan, prev_hash: &mut Option<Hash>) {
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
