//! Inclusion and consistency proofs of RFC 9162 (section 2.1.3 and 2.1.4),
//! computed from any source of perfect-subtree hashes and checked with
//! nothing but hashes. Iterative throughout: no recursion on sizes that
//! come from outside.

use crate::checkpoint::SignedCheckpoint;
use crate::event::StoredEvent;
use crate::merkle::{node_hash, Hash};

/// An inclusion proof: the event, its audit path, and the signed
/// checkpoint the path leads to.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub event: StoredEvent,
    /// RFC 9162 inclusion path, from the leaf upwards.
    pub path: Vec<Hash>,
    pub checkpoint: SignedCheckpoint,
}

/// A consistency proof between two signed checkpoints of the store.
#[derive(Debug, Clone)]
pub struct ConsistencyProof {
    pub old: SignedCheckpoint,
    pub new: SignedCheckpoint,
    /// RFC 9162 consistency path.
    pub path: Vec<Hash>,
}

/// The hash of the perfect subtree at `level` whose leaves are
/// `[index << level, (index + 1) << level)`.
pub trait SubtreeHashes {
    type Error;
    fn subtree(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH of the leaves `[lo, hi)`, where `lo` is a multiple of a power of two
/// at least `hi - lo` (true of every range the proofs below ask for): the
/// binary decomposition of the range, folded from the right.
pub fn range_hash<S: SubtreeHashes>(src: &mut S, lo: u64, hi: u64) -> Result<Hash, S::Error> {
    debug_assert!(lo < hi);
    let mut parts = Vec::new();
    let mut a = lo;
    while a < hi {
        let len = hi - a;
        let mut level = 63 - len.leading_zeros();
        while a & ((1u64 << level) - 1) != 0 {
            level -= 1;
        }
        parts.push(src.subtree(level, a >> level)?);
        a += 1 << level;
    }
    let mut acc = parts.pop().expect("a non-empty range has a part");
    while let Some(left) = parts.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The inclusion path of leaf `index` in the tree of `size` leaves, from
/// the leaf upwards (RFC 9162 PATH).
pub fn inclusion_path<S: SubtreeHashes>(src: &mut S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    assert!(index < size, "inclusion path of leaf {index} in a tree of {size}");
    let mut path = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            path.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(range_hash(src, lo, lo + k)?);
            lo += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof from the tree of `old` leaves to the tree of
/// `new` leaves (RFC 9162 PROOF). Empty when `old` is 0 or equals `new`.
pub fn consistency_path<S: SubtreeHashes>(src: &mut S, old: u64, new: u64) -> Result<Vec<Hash>, S::Error> {
    assert!(old <= new, "consistency from {old} to {new}");
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let (mut lo, mut hi, mut m, mut complete) = (0u64, new, old, true);
    loop {
        if m == hi - lo {
            if !complete {
                out.push(range_hash(src, lo, hi)?);
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            out.push(range_hash(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            out.push(range_hash(src, lo, lo + k)?);
            lo += k;
            m -= k;
            complete = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Checks an inclusion path (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn, mut r) = (index, size - 1, *leaf);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// Checks a consistency proof (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(old: u64, new: u64, old_root: &Hash, new_root: &Hash, path: &[Hash]) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return path.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return path.is_empty();
    }
    let mut p: Vec<Hash> = Vec::with_capacity(path.len() + 1);
    if old.is_power_of_two() {
        p.push(*old_root);
    }
    p.extend_from_slice(path);
    let Some((first, rest)) = p.split_first() else { return false };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old_root && sr == *new_root && sn == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root_of_leaves};

    /// Subtree hashes straight from a list of leaves.
    struct Leaves(Vec<Hash>);

    impl SubtreeHashes for Leaves {
        type Error = ();
        fn subtree(&mut self, level: u32, index: u64) -> Result<Hash, ()> {
            let lo = (index << level) as usize;
            let hi = lo + (1usize << level);
            Ok(root_of_leaves(self.0.get(lo..hi).ok_or(())?))
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(i, format!("record {i}").as_bytes())).collect()
    }

    // Goal: every inclusion path of every leaf of trees of 1..70 leaves
    // verifies against the root, and fails for a wrong leaf, index or root.
    #[test]
    fn inclusion_proofs_verify() {
        for n in 1..70u64 {
            let l = leaves(n);
            let root = root_of_leaves(&l);
            let mut src = Leaves(l.clone());
            for i in 0..n {
                let path = inclusion_path(&mut src, i, n).unwrap();
                assert!(verify_inclusion(i, n, &l[i as usize], &path, &root), "leaf {i} of {n}");
                assert!(!verify_inclusion(i, n, &[9; 32], &path, &root));
                assert!(!verify_inclusion(i, n, &l[i as usize], &path, &[9; 32]));
                if n > 1 {
                    assert!(!verify_inclusion((i + 1) % n, n, &l[i as usize], &path, &root));
                }
            }
        }
    }

    // Goal: consistency proofs between every pair of sizes up to 40 verify,
    // and fail when either root is wrong.
    #[test]
    fn consistency_proofs_verify() {
        let l = leaves(40);
        let mut src = Leaves(l.clone());
        for new in 1..=40u64 {
            let new_root = root_of_leaves(&l[..new as usize]);
            for old in 1..=new {
                let old_root = root_of_leaves(&l[..old as usize]);
                let p = consistency_path(&mut src, old, new).unwrap();
                assert!(verify_consistency(old, new, &old_root, &new_root, &p), "{old} -> {new}");
                if old < new {
                    assert!(!verify_consistency(old, new, &[7; 32], &new_root, &p));
                    assert!(!verify_consistency(old, new, &old_root, &[7; 32], &p));
                }
            }
        }
    }

    // Goal: the RFC 6962 test vectors (from Certificate Transparency's
    // reference tests) for a tree of 8 leaves match.
    #[test]
    fn rfc6962_reference_vectors() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let l: Vec<Hash> = inputs
            .iter()
            .map(|d| {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                h.update([0u8]);
                h.update(d);
                h.finalize().into()
            })
            .collect();
        let root = root_of_leaves(&l);
        assert_eq!(hex::encode(root), "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
        let mut src = Leaves(l.clone());
        let path = inclusion_path(&mut src, 0, 8).unwrap();
        let want = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(path.iter().map(hex::encode).collect::<Vec<_>>(), want);
    }
}
