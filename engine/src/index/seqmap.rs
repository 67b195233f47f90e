//! The seq map: for each group of 256 seqs (one level-0 Merkle tile), the
//! blocks that hold its events, so a proof or `event_at` reads one block.

use crate::codec::{uvarint_u32_at, Reader};

/// Seqs per seq-map group: one level-0 Merkle tile.
pub const SEQ_GROUP: u64 = 256;

/// For each seq group the segment touches (from `first_group` on), the
/// ascending block numbers that hold its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqMap {
    pub first_group: u64,
    pub groups: Vec<Vec<u32>>,
}

pub(super) fn parse_seq_map(r: &mut Reader<'_>) -> Result<SeqMap, String> {
    let short = || "index section: short seq map".to_string();
    let first_group = r.u64().ok_or_else(short)?;
    let n = r.u32().ok_or_else(short)? as usize;
    if n.checked_add(1).and_then(|k| k.checked_mul(4)).is_none_or(|b| b > r.remaining()) {
        return Err("index section: seq map out of bounds".into());
    }
    let offsets: Vec<usize> = (0..=n).map(|_| r.u32().map(|v| v as usize)).collect::<Option<_>>().ok_or_else(short)?;
    let blob_len = *offsets.last().unwrap_or(&0);
    let blob = r.bytes(blob_len).ok_or("index section: seq map blocks out of bounds")?;
    let mut groups = Vec::with_capacity(n);
    for w in offsets.windows(2) {
        let part = blob.get(w[0]..w[1]).ok_or("index section: seq map offsets are not ascending")?;
        let mut blocks = Vec::new();
        let mut i = 0;
        while i < part.len() {
            let (v, used) = uvarint_u32_at(&part[i..]).ok_or("index section: malformed seq map")?;
            if blocks.last().is_some_and(|&p| p >= v) {
                return Err("index section: seq map blocks are not ascending".into());
            }
            blocks.push(v);
            i += used;
        }
        groups.push(blocks);
    }
    Ok(SeqMap { first_group, groups })
}
