//! Folding every leaf, in seq order, into the tree: each Merkle tile on
//! disk and each checkpoint's root is compared with what the leaves give.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::fs::FileSystem;
use crate::merkle::{Frontier, Hash, TILE_HEIGHT, TILE_WIDTH};
use crate::tiles;

use super::{ProblemKind, Report};

/// A checkpoint to compare the tree with when it reaches a size.
pub(super) struct Target {
    pub(super) label: String,
    pub(super) root: Hash,
}

/// The tree being recomputed, leaf by leaf in seq order.
pub(super) struct Fold<'a> {
    pub(super) fs: &'a dyn FileSystem,
    pub(super) tile_dir: PathBuf,
    pub(super) sealed: u64,
    pub(super) frontier: Frontier,
    /// False once a leaf is missing: later roots cannot be recomputed.
    pub(super) intact: bool,
    pub(super) targets: BTreeMap<u64, Vec<Target>>,
    pub(super) tiles: HashMap<(u32, u64), Option<Vec<Hash>>>,
}

impl<'a> Fold<'a> {
    pub(super) fn new(fs: &'a dyn FileSystem, tile_dir: PathBuf, sealed: u64, targets: BTreeMap<u64, Vec<Target>>) -> Self {
        Fold { fs, tile_dir, sealed, frontier: Frontier::new(), intact: true, targets, tiles: HashMap::new() }
    }

    /// Retention removed seqs below `cut`: the tree resumes from the tiles
    /// (and the boundary leaf tile), and checkpoints inside the pruned range
    /// are checked from the tiles where they can be, else noted.
    pub(super) fn start_after_cut(&mut self, report: &mut Report, cut: u64) {
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

    pub(super) fn broken(&mut self, report: &mut Report, at: u64, why: &str) {
        if self.intact {
            self.intact = false;
            report.problem(
                ProblemKind::Missing,
                format!("the tree cannot be recomputed past seq {at}: {why}; checks of later roots, tiles and checkpoints were skipped"),
            );
        }
    }

    pub(super) fn push(&mut self, report: &mut Report, seq: u64, leaf: Hash) {
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

    pub(super) fn check_tile_node(&mut self, report: &mut Report, level: u32, index: u64, h: Hash) {
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

    pub(super) fn finish(mut self, report: &mut Report) {
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
