//! The commitment: one RFC 6962 / RFC 9162 Merkle tree over every event,
//! leaf index = seq.
//!
//! `leaf = SHA-256(0x00 ‖ entry)`, `node = SHA-256(0x01 ‖ left ‖ right)`,
//! where `entry = ingest_unix_ms (u64 LE) ‖ record bytes` (docs/FORMAT.md).
//! The engine keeps the tree's right edge (a [`Frontier`]) to compute roots
//! incrementally, and writes the hashes at levels 8, 16, 24, ... as C2SP
//! tlog-tiles (tile levels 1, 2, 3, ...). Level-0 tiles (the leaf hashes,
//! 32 B/event) are not stored: they are recomputed from the stored records.
//! This module never touches files itself; see `tiles` for that.

use sha2::{Digest, Sha256};

/// A SHA-256 output.
pub type Hash = [u8; 32];

/// Width of a C2SP tile: 2^8 hashes.
pub const TILE_HEIGHT: u32 = 8;
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// The leaf hash of an entry (ingest time and record bytes).
pub fn leaf_hash(ingest_ms: u64, record: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(ingest_ms.to_le_bytes());
    h.update(record);
    h.finalize().into()
}

/// An interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The right edge of a tree of `size` leaves: the roots of its maximal
/// perfect subtrees, left to right (largest first). Enough to append leaves
/// and compute the root at any size, in O(log n) memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its parts; `nodes.len()` must equal the
    /// number of one bits of `size`.
    pub fn from_parts(size: u64, nodes: Vec<Hash>) -> Option<Self> {
        (nodes.len() == size.count_ones() as usize).then_some(Self { size, nodes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends a leaf. `on_node(level, index, hash)` is called for every
    /// completed subtree whose level is a non-zero multiple of 8: those are
    /// the entries of tile level `level / 8`.
    pub fn push(&mut self, leaf: Hash, mut on_node: impl FnMut(u32, u64, Hash)) {
        let index = self.size;
        let mut h = leaf;
        let mut level = 0u32;
        while (index >> level) & 1 == 1 {
            // The loop runs once per trailing one bit, so a node is there.
            let left = self.nodes.pop().expect("frontier holds one node per set bit");
            h = node_hash(&left, &h);
            level += 1;
            if level.is_multiple_of(TILE_HEIGHT) {
                on_node(level, index >> level, h);
            }
        }
        self.nodes.push(h);
        self.size += 1;
    }

    /// The RFC 6962 root of the tree (MTH over all leaves so far).
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// The RFC 6962 Merkle tree hash of a list of leaf hashes (reference
/// implementation for tests and verification; iterative, not recursive).
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::new();
    for l in leaves {
        f.push(*l, |_, _, _| {});
    }
    f.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straight from RFC 6962 section 2.1, recursively (test only).
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = n.next_power_of_two() / 2;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    // Goal: the incremental frontier root equals the RFC's definition at
    // every size, including non powers of two.
    #[test]
    fn frontier_matches_rfc_definition() {
        let leaves: Vec<Hash> = (0..300u64).map(|i| leaf_hash(i, b"x")).collect();
        let mut f = Frontier::new();
        assert_eq!(f.root(), mth(&[]));
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l, |_, _, _| {});
            assert_eq!(f.root(), mth(&leaves[..=i]), "size {}", i + 1);
        }
        let g = Frontier::from_parts(f.size(), f.nodes().to_vec()).unwrap();
        assert_eq!(g.root(), f.root());
        assert!(Frontier::from_parts(3, vec![[0; 32]]).is_none());
    }

    // Goal: tile-level nodes are reported with the right level, index and
    // hash (the root of each aligned 256-leaf range).
    #[test]
    fn emits_tile_nodes() {
        let leaves: Vec<Hash> = (0..1024u64).map(|i| leaf_hash(i, b"y")).collect();
        let mut f = Frontier::new();
        let mut got = Vec::new();
        for l in &leaves {
            f.push(*l, |lvl, idx, h| got.push((lvl, idx, h)));
        }
        assert_eq!(got.len(), 4);
        for (n, (lvl, idx, h)) in got.iter().enumerate() {
            assert_eq!((*lvl, *idx), (8, n as u64));
            assert_eq!(*h, mth(&leaves[n * 256..(n + 1) * 256]));
        }
    }

    // Goal: the RFC 6962 test vector for the empty tree and a known leaf.
    #[test]
    fn known_vectors() {
        assert_eq!(hex(&empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // SHA-256(0x00) is the RFC 6962 leaf hash of the empty entry.
        let mut h = Sha256::new();
        h.update([0u8]);
        let l: Hash = h.finalize().into();
        assert_eq!(hex(&l), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }
}
