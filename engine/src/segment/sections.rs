//! A segment's bytes after its blocks: the block index, the id table, the
//! frontier, the index and the dictionary sections, then the footer
//! (docs/FORMAT.md). One writer for both paths that make segments: a seal
//! (`writer`, from a memtable) and compaction (`builder`, streaming). They
//! differ only in where the blocks and the postings come from.

use crate::codec::crc32;
use crate::index::counters::Counters;
use crate::index::{encode_index, PartitionBuild, SeqMap};
use crate::merkle::{Frontier, Hash};

use super::{ids, BlockMeta, Footer, Section, FOOTER_BYTES, SEGMENT_VERSION};

/// Everything the sections and the footer are made of.
pub(crate) struct Summary<'a, 'p> {
    pub first_seq: u64,
    pub count: u64,
    pub blocks: &'a [BlockMeta],
    /// (top 32 bits of the eventID fingerprint, ordinal) per event with an
    /// id, in any order.
    pub ids: Vec<(u32, u32)>,
    /// The whole tree's frontier at the segment's end.
    pub frontier_at_end: &'a Frontier,
    /// The partitions' width, and the partitions.
    pub partition_ms: i64,
    pub parts: &'a [PartitionBuild<'p>],
    pub seq_map: &'a SeqMap,
    /// Insights counters (index version 3 and later); `None` leaves them to
    /// be derived from the records.
    pub counters: Option<&'a Counters>,
    pub dictionary: Option<&'a [u8]>,
    /// The root of the segment's own leaves, in seq order.
    pub segment_root: Hash,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub min_ingest_ms: u64,
    pub max_ingest_ms: u64,
    pub raw_bytes: u64,
    pub prev_segment_hash: Hash,
    /// What the next segment links to: `None` for a seal (the segment's
    /// own hash), the hash of the chain it replaces for a rewrite.
    pub chain_hash: Option<Hash>,
}

/// Appends the sections and the footer to `out`, whose first byte will be
/// at file offset `pos`; returns the footer.
pub(crate) fn write_tail(mut s: Summary<'_, '_>, pos: u64, out: &mut Vec<u8>) -> Footer {
    let base = out.len();
    let section = |out: &mut Vec<u8>, write: &mut dyn FnMut(&mut Vec<u8>)| {
        let at = out.len();
        write(out);
        Section { offset: pos + (at - base) as u64, len: (out.len() - at) as u64, crc: crc32(&[&out[at..]]) }
    };
    let block_index = section(out, &mut |o| s.blocks.iter().for_each(|b| b.encode(o)));
    s.ids.sort_unstable();
    let id_table = section(out, &mut |o| o.extend_from_slice(&ids::encode_packed(&s.ids, s.count)));
    let frontier = section(out, &mut |o| s.frontier_at_end.nodes().iter().for_each(|h| o.extend_from_slice(h)));
    let index = section(out, &mut |o| encode_index(s.partition_ms, s.parts, s.seq_map, s.counters, o));
    let dictionary = s.dictionary.map(|d| section(out, &mut |o| o.extend_from_slice(d)));
    let footer = Footer {
        version: SEGMENT_VERSION,
        first_seq: s.first_seq,
        count: s.count,
        block_count: s.blocks.len() as u32,
        min_time_ms: s.min_time_ms,
        max_time_ms: s.max_time_ms,
        min_ingest_ms: s.min_ingest_ms,
        max_ingest_ms: s.max_ingest_ms,
        raw_bytes: s.raw_bytes,
        block_index,
        id_table,
        frontier,
        index,
        segment_root: s.segment_root,
        tree_size: s.frontier_at_end.size(),
        tree_root: s.frontier_at_end.root(),
        prev_segment_hash: s.prev_segment_hash,
        chain_hash: s.chain_hash,
        dictionary,
    };
    let f = footer.encode();
    debug_assert_eq!(f.len(), FOOTER_BYTES);
    out.extend_from_slice(&f);
    footer
}
