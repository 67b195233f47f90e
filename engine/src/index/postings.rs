//! Postings: a term's ordinals within its partition, as varint gaps, a
//! bitmap or Rice-coded gaps, whichever is smallest (docs/FORMAT.md).

use crate::codec::uvarint_u32_at;

/// Decodes `count` gap-encoded ordinals starting from `base`; `None` when
/// the bytes are malformed.
pub(super) fn decode_postings(bytes: &[u8], base: u32, count: u32, out: &mut Vec<u32>) -> Option<()> {
    let mut cur = base;
    let mut i = 0usize;
    out.reserve(count as usize);
    for n in 0..count {
        let (v, used) = uvarint_u32_at(bytes.get(i..)?)?;
        i += used;
        cur = if n == 0 { cur.checked_add(v)? } else { cur.checked_add(v)?.checked_add(1)? };
        out.push(cur);
    }
    (i == bytes.len()).then_some(())
}

/// Version 4 term encodings.
pub const POSTINGS_VARINT: u8 = 0;

pub const POSTINGS_BITMAP: u8 = 1;

pub const POSTINGS_RICE: u8 = 2;

/// The Rice parameter that codes `gaps` in the fewest bits, and the bytes
/// the list then takes (with its `k` byte).
pub(super) fn best_rice(gaps: &[u32]) -> (u32, usize) {
    let sum: u64 = gaps.iter().map(|&g| u64::from(g)).sum();
    let mean = sum / (gaps.len() as u64).max(1);
    let guess = 63 - mean.max(1).leading_zeros();
    let bits = |k: u32| gaps.iter().map(|&g| u64::from(g >> k) + 1 + u64::from(k)).sum::<u64>();
    let k = [guess.saturating_sub(1), guess, (guess + 1).min(31)].into_iter().min_by_key(|&k| bits(k)).unwrap_or(0).min(31);
    (k, 1 + bits(k).div_ceil(8) as usize)
}

pub(super) fn encode_rice(gaps: &[u32], k: u32, out: &mut Vec<u8>) {
    let mut w = crate::codec::BitWriter::default();
    for &g in gaps {
        w.unary(u64::from(g >> k));
        w.put(u64::from(g) & ((1 << k) - 1), k);
    }
    w.align();
    out.push(k as u8);
    out.extend_from_slice(&w.bytes);
}

pub(super) fn decode_rice(bytes: &[u8], base: u32, count: u32, out: &mut Vec<u32>) -> Option<()> {
    let (&k, bits) = bytes.split_first()?;
    let k = u32::from(k);
    if k > 31 {
        return None;
    }
    let mut r = crate::codec::BitReader::new(bits);
    let mut cur = base;
    // Each gap takes at least one bit: never reserve more than the bits.
    out.reserve((count as usize).min(bits.len() * 8));
    for n in 0..count {
        let q = r.unary(u64::from(u32::MAX >> k))?;
        let g = u32::try_from((q << k) | r.get(k)?).ok()?;
        cur = if n == 0 { cur.checked_add(g)? } else { cur.checked_add(g)?.checked_add(1)? };
        out.push(cur);
    }
    (r.bits_read().div_ceil(8) == bits.len()).then_some(())
}
