//! In-memory structures for finding an eventID in a sealed segment without
//! reading its id table: a split-block Bloom filter over the id
//! fingerprints and a fence index (every 256th fingerprint of the sorted
//! table). Both are built from the id table on first use.
//!
//! Fences are small (1/64 of the id table) and always kept. Filters cost 2
//! bytes per id, so across a large store they are held under a byte budget
//! shared by the store's segments ([`IdBudget`]): the store keeps the
//! filters of its newest segments and drops older ones beyond the budget;
//! a segment without a filter answers from its fences and one pread of the
//! table (slower, the same answer).

use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::codec::packed::{encode_packed, PackedIds};

/// Bits of filter per id: about 0.2% false positives with 8 probes.
const FILTER_BITS_PER_ID: usize = 16;
/// Every this many entries of the sorted id table, one fence: one per
/// chunk of the packed table.
pub const ID_FENCE_STRIDE: usize = crate::codec::packed::CHUNK_ENTRIES;

/// The bytes that all segments' id filters may hold together.
#[derive(Debug)]
pub struct IdBudget {
    limit_bytes: usize,
    used_bytes: AtomicUsize,
}

impl IdBudget {
    pub fn new(limit_bytes: usize) -> Self {
        Self { limit_bytes, used_bytes: AtomicUsize::new(0) }
    }

    /// Bytes the filters hold now.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes.load(Ordering::Relaxed)
    }

    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// Reserves `bytes` if they fit under the limit.
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        self.used_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| u.checked_add(bytes).filter(|&n| n <= self.limit_bytes))
            .is_ok()
    }

    pub(crate) fn release(&self, bytes: usize) {
        self.used_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// A split-block Bloom filter (as Parquet's): each key sets one bit in each
/// of the eight 32-bit words of one 256-bit block, so a probe touches one
/// cache line.
#[derive(Debug)]
pub struct Bloom {
    blocks: Vec<[u32; 8]>,
}

const SALT: [u32; 8] = [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];

impl Bloom {
    pub fn with_capacity(ids: usize) -> Self {
        Bloom { blocks: vec![[0; 8]; Self::blocks_for(ids)] }
    }

    fn blocks_for(ids: usize) -> usize {
        (ids.max(1).saturating_mul(FILTER_BITS_PER_ID)).div_ceil(256)
    }

    /// The bytes a filter over `ids` ids takes, without building it.
    pub fn bytes_for(ids: usize) -> usize {
        Self::blocks_for(ids) * 32
    }

    pub fn bytes(&self) -> usize {
        self.blocks.len() * 32
    }

    /// The id table keeps 32 bits of each fingerprint; spread them over 64.
    fn hash(fp32: u32) -> u64 {
        let mut x = u64::from(fp32).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
    }

    fn place(&self, fp32: u32) -> (usize, u32) {
        let h = Self::hash(fp32);
        let block = (((h >> 32) * self.blocks.len() as u64) >> 32) as usize;
        (block, h as u32)
    }

    pub fn insert(&mut self, fp32: u32) {
        let (b, key) = self.place(fp32);
        for (word, salt) in self.blocks[b].iter_mut().zip(SALT) {
            *word |= 1 << (key.wrapping_mul(salt) >> 27);
        }
    }

    pub fn contains(&self, fp32: u32) -> bool {
        let (b, key) = self.place(fp32);
        self.blocks[b].iter().zip(SALT).all(|(word, salt)| word & (1 << (key.wrapping_mul(salt) >> 27)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: no false negatives, and a false-positive rate near the design
    // figure (0.2% at 16 bits per id; fail above 0.5%).
    #[test]
    fn bloom_has_no_false_negatives_and_few_false_positives() {
        let n = 50_000u32;
        let mut b = Bloom::with_capacity(n as usize);
        let key = |i: u32| i.wrapping_mul(0x9E37_79B9) ^ 0x5555_5555;
        for i in 0..n {
            b.insert(key(i));
        }
        assert!((0..n).all(|i| b.contains(key(i))));
        let fp = (n..n + 200_000).filter(|&i| b.contains(key(i))).count();
        assert!(fp < 1_000, "{fp} false positives in 200,000");
    }

    // Goal: the budget never admits more than its limit, and releases return
    // room.
    #[test]
    fn budget_limits_reservations() {
        let b = IdBudget::new(100);
        assert!(b.try_reserve(60));
        assert!(!b.try_reserve(41));
        assert!(b.try_reserve(40));
        b.release(60);
        assert_eq!(b.used_bytes(), 40);
        assert!(b.try_reserve(60));
    }
}
