//! Reading the Merkle tree back: the hash of any perfect subtree of a
//! snapshot of the store, from the tiles on disk (tree levels 8, 16, ...
//! of the sealed part) and from leaf hashes, which are recomputed from the
//! stored records (sealed events) or kept in memory (unsealed ones). What
//! proofs and checkpoint checks are computed from.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::proof::SubtreeHashes;
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::index::SEQ_GROUP;
use crate::memtable::Memtable;
use crate::merkle::{leaf_hash, node_hash, Frontier, Hash, TILE_HEIGHT, TILE_WIDTH};
use crate::segment::cache::BlockCache;
use crate::segment::reader::Segment;
use crate::segment::set::SegmentSet;
use crate::tiles;

/// Subtree hashes of a fixed snapshot (`size` leaves).
pub struct TreeReader<'a> {
    pub fs: &'a dyn FileSystem,
    pub tile_dir: &'a Path,
    pub cache: &'a BlockCache,
    /// Sealed segments in seq order; they hold seqs below `sealed_size`.
    pub segments: Arc<SegmentSet>,
    pub sealed_size: u64,
    /// Rolled memtables waiting to be sealed, in seq order.
    pub sealing: Vec<Arc<Memtable>>,
    /// Leaf hashes of the active memtable from `active_first` on.
    pub active_first: u64,
    pub active_leaves: Vec<Hash>,
    /// Leaves in the snapshot.
    pub size: u64,
    /// Seqs below this were removed by retention; the leaves of their last
    /// partial seq group are kept in a level-0 tile.
    pub min_retained: u64,
    boundary: Option<Vec<Hash>>,
    tiles: HashMap<(u32, u64), Vec<Hash>>,
    groups: HashMap<u64, Vec<Option<Hash>>>,
}

enum Work {
    Visit(u32, u64),
    Combine,
}

impl<'a> TreeReader<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        fs: &'a dyn FileSystem,
        tile_dir: &'a Path,
        cache: &'a BlockCache,
        segments: Arc<SegmentSet>,
        sealing: Vec<Arc<Memtable>>,
        active_first: u64,
        active_leaves: Vec<Hash>,
        min_retained: u64,
    ) -> Self {
        let sealed_size = segments.last().map_or(0, |s| s.footer.tree_size).max(min_retained);
        let size = active_first + active_leaves.len() as u64;
        TreeReader {
            fs,
            tile_dir,
            cache,
            segments,
            sealed_size,
            sealing,
            active_first,
            active_leaves,
            size,
            min_retained,
            boundary: None,
            tiles: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    /// The leaf hash at `seq`.
    pub fn leaf(&mut self, seq: u64) -> Result<Hash> {
        if seq >= self.size {
            return Err(Error::InvalidArgument(format!("seq {seq} is beyond the tree size {}", self.size)));
        }
        if seq < self.min_retained {
            return self.pruned_leaf(seq);
        }
        if seq >= self.active_first {
            return Ok(self.active_leaves[(seq - self.active_first) as usize]);
        }
        if seq >= self.sealed_size {
            let m = self.sealing.iter().find(|m| m.first_seq <= seq && seq < m.end_seq());
            return m
                .map(|m| m.entry((seq - m.first_seq) as usize).leaf)
                .ok_or_else(|| Error::InvalidArgument(format!("seq {seq} is in no segment or memtable of the snapshot")));
        }
        let g = seq / SEQ_GROUP;
        if !self.groups.contains_key(&g) {
            let leaves = self.load_group(g)?;
            self.groups.insert(g, leaves);
        }
        self.groups[&g][(seq % SEQ_GROUP) as usize].ok_or_else(|| {
            let seg = self.segment_of(seq).map(|s| s.path.display().to_string()).unwrap_or_default();
            Error::corruption(seg, 0, format!("no stored event has seq {seq}"))
        })
    }

    /// A leaf below the retention cut: only those of the cut's own seq
    /// group remain, in the level-0 tile retention wrote.
    fn pruned_leaf(&mut self, seq: u64) -> Result<Hash> {
        let pruned = Error::Pruned { seq, min_retained: self.min_retained };
        let (g, w) = (self.min_retained / SEQ_GROUP, self.min_retained % SEQ_GROUP);
        if seq / SEQ_GROUP != g || w == 0 {
            return Err(pruned);
        }
        if self.boundary.is_none() {
            self.boundary = Some(tiles::read_tile(self.fs, self.tile_dir, 0, g, w)?);
        }
        self.boundary.as_ref().and_then(|b| b.get((seq % SEQ_GROUP) as usize).copied()).ok_or(pruned)
    }

    /// The tree's frontier at `size` (its perfect subtrees, left to right).
    pub fn frontier_at(&mut self, size: u64) -> Result<Frontier> {
        let mut nodes = Vec::new();
        let mut at = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                nodes.push(self.subtree(level, at >> level)?);
                at += 1 << level;
            }
        }
        Frontier::from_parts(size, nodes).ok_or_else(|| Error::InvalidArgument("frontier decomposition".into()))
    }

    fn segment_of(&self, seq: u64) -> Option<&Arc<Segment>> {
        let i = self.segments.partition_point(|s| s.footer.tree_size <= seq);
        self.segments.get(i).filter(|s| s.footer.first_seq <= seq)
    }

    /// Recomputes the leaf hashes of one seq group from the records.
    fn load_group(&self, g: u64) -> Result<Vec<Option<Hash>>> {
        let (lo, hi) = (g * SEQ_GROUP, ((g + 1) * SEQ_GROUP).min(self.sealed_size));
        let mut out = vec![None; SEQ_GROUP as usize];
        let first = self.segments.partition_point(|s| s.footer.tree_size <= lo);
        for seg in self.segments[first..].iter().take_while(|s| s.footer.first_seq < hi) {
            for b in seg.blocks_for_seqs(lo, hi)? {
                let block = self.cache.get(seg, b)?;
                for i in 0..block.len() {
                    let seq = block.seqs[i];
                    if (lo..hi).contains(&seq) {
                        out[(seq - lo) as usize] = Some(leaf_hash(block.ingest_ms[i], block.record(i)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// A node of tree level `level` (a multiple of 8) from the tiles, when
    /// its whole subtree is sealed and the tile reads.
    fn tile_node(&mut self, level: u32, index: u64) -> Option<Hash> {
        let tile_level = level / TILE_HEIGHT;
        let t = index / TILE_WIDTH;
        let complete = self.sealed_size >> level;
        let width = complete.saturating_sub(t * TILE_WIDTH).min(TILE_WIDTH);
        if index >= complete || width == 0 {
            return None;
        }
        if !self.tiles.contains_key(&(tile_level, t)) {
            // A tile superseded by a newer seal may vanish under a reader: a
            // wider one holds the same hashes; else the node is recomputed
            // from below.
            let hashes = tiles::read_tile_at_least(self.fs, self.tile_dir, tile_level, t, width)?;
            self.tiles.insert((tile_level, t), hashes);
        }
        self.tiles[&(tile_level, t)].get((index % TILE_WIDTH) as usize).copied()
    }
}

impl SubtreeHashes for TreeReader<'_> {
    type Error = Error;

    fn subtree(&mut self, level: u32, index: u64) -> Result<Hash> {
        // (index + 1) << level <= size, without overflow.
        if level >= 64 || index >= self.size >> level {
            return Err(Error::InvalidArgument(format!("subtree {level}/{index} is beyond the tree size {}", self.size)));
        }
        // Depth-first with an explicit stack: a node comes from a tile or a
        // leaf when it can, else from its two children.
        let mut work = vec![Work::Visit(level, index)];
        let mut done: Vec<Hash> = Vec::new();
        while let Some(w) = work.pop() {
            match w {
                Work::Visit(0, j) => done.push(self.leaf(j)?),
                Work::Visit(l, j) => match (l % TILE_HEIGHT == 0).then(|| self.tile_node(l, j)).flatten() {
                    Some(h) => done.push(h),
                    None => {
                        work.push(Work::Combine);
                        work.push(Work::Visit(l - 1, 2 * j + 1));
                        work.push(Work::Visit(l - 1, 2 * j));
                    }
                },
                Work::Combine => {
                    let (Some(right), Some(left)) = (done.pop(), done.pop()) else {
                        return Err(Error::InvalidArgument("subtree walk out of balance".into()));
                    };
                    done.push(node_hash(&left, &right));
                }
            }
        }
        done.pop().ok_or_else(|| Error::InvalidArgument("empty subtree walk".into()))
    }
}
