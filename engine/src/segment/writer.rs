//! Sealing: rewrites a memtable's events, sorted by (eventTime, seq), into
//! the bytes of an immutable segment. Pure: it builds bytes in memory and
//! never touches files (the store writes, fsyncs and renames them). The
//! sections after the blocks and the footer are `sections::write_tail`'s,
//! shared with compaction's streaming `builder`.
//!
//! Block payloads are `block`'s (version 3: records split into fields by
//! `fields`, or kept whole when ingest would otherwise wait on the seal).

use std::borrow::Cow;

use super::block::{BlockBuf, PAYLOAD_VERSION};
use super::sections::{write_tail, Summary};
use super::{encode_header, BlockMeta, Footer, SEGMENT_VERSION};
use crate::codec::crc32;
use crate::error::{Error, Result};

use crate::index::{partition_start, Attr, PartitionBuild, SeqMap, TermOrdinals, PARTITION_MS, SEQ_GROUP};
use crate::memtable::Memtable;
use crate::merkle::{Frontier, Hash};

/// Everything `seal` needs besides the events.
pub struct SealInput<'a> {
    pub mem: &'a Memtable,
    pub prev_segment_hash: Hash,
    /// The whole tree's frontier at the end of this memtable.
    pub frontier_at_end: &'a Frontier,
    pub zstd_level: i32,
    pub block_bytes: usize,
    /// Write the memtable's Insights counters (index version 3); without,
    /// index version 2, whose readers derive counters from the records.
    pub counters: bool,
    /// Asked before each block: store its records field by field (small,
    /// costly to write) or whole (false: ingest is waiting on this seal).
    pub split_blocks: &'a (dyn Fn() -> bool + Sync),
}

/// Builds a segment file's bytes. Returns them with the footer.
pub fn build_segment(input: &SealInput<'_>) -> Result<(Vec<u8>, Footer)> {
    let mem = input.mem;
    let n = mem.len();
    if n == 0 {
        return Err(Error::InvalidArgument("cannot seal an empty memtable".into()));
    }
    let entries = mem.entries();
    let mut order: Vec<u32> = (0..n as u32).collect();
    // Sort by (time, seq); seq order is index order, so a stable sort by
    // time alone gives it.
    order.sort_by_key(|&i| entries[i as usize].time_ms);

    let mut out = encode_header(mem.first_seq, n as u64, SEGMENT_VERSION);
    let block_bytes = input.block_bytes.max(1);
    let first_group = mem.first_seq / SEQ_GROUP;
    let mut seq_map = SeqMap { first_group, groups: vec![Vec::new(); ((mem.end_seq() - 1) / SEQ_GROUP - first_group + 1) as usize] };
    // Cut the sorted events into blocks (ordinal ranges).
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut start = 0usize;
    while start < n {
        let mut end = start;
        let mut bytes = 0usize;
        while end < n && (bytes < block_bytes || end == start) {
            bytes += mem.record(&entries[order[end] as usize]).len() + 28;
            end += 1;
        }
        let b = ranges.len() as u32;
        for &i in &order[start..end] {
            let g = &mut seq_map.groups[((mem.first_seq + u64::from(i)) / SEQ_GROUP - first_group) as usize];
            if g.last() != Some(&b) {
                g.push(b);
            }
        }
        ranges.push((start, end));
        start = end;
    }
    let encoded = encode_blocks(input, &order, &ranges)?;
    // The blocks, and room for the sections after them (about 40 bytes an
    // event), without regrowing a segment-sized vector.
    out.reserve(encoded.iter().map(|b| b.1.len()).sum::<usize>() + n * 48 + (1 << 16));
    let mut blocks: Vec<BlockMeta> = Vec::with_capacity(ranges.len());
    for (&(start, end), (raw_len, compressed)) in ranges.iter().zip(encoded) {
        let times = order[start..end].iter().map(|&i| entries[i as usize].time_ms);
        blocks.push(BlockMeta {
            offset: out.len() as u64,
            compressed_len: compressed.len() as u32,
            raw_len: raw_len as u32,
            events: (end - start) as u32,
            first_ordinal: start as u32,
            min_time_ms: times.clone().min().unwrap_or(0),
            max_time_ms: times.max().unwrap_or(0),
            crc: crc32(&[&compressed]),
        });
        out.extend_from_slice(&compressed);
    }
    let mut seg_frontier = Frontier::new();
    for e in entries {
        seg_frontier.push(e.leaf, |_, _, _| {});
    }
    let counters = mem.counters_in(i64::MIN, i64::MAX).count();
    let pos = out.len() as u64;
    let footer = write_tail(
        Summary {
            first_seq: mem.first_seq,
            count: n as u64,
            blocks: &blocks,
            ids: id_entries(mem, &order),
            frontier_at_end: input.frontier_at_end,
            partition_ms: PARTITION_MS,
            parts: &build_partitions(mem, &order),
            seq_map: &seq_map,
            counters: input.counters.then_some(&counters),
            dictionary: None,
            segment_root: seg_frontier.root(),
            min_time_ms: mem.min_time_ms,
            max_time_ms: mem.max_time_ms,
            min_ingest_ms: entries.iter().map(|e| e.ingest_ms).min().unwrap_or(0),
            max_ingest_ms: entries.iter().map(|e| e.ingest_ms).max().unwrap_or(0),
            raw_bytes: mem.raw_bytes,
            prev_segment_hash: input.prev_segment_hash,
            chain_hash: None,
        },
        pos,
        &mut out,
    );
    debug_assert_eq!(footer.tree_size, mem.end_seq());
    Ok((out, footer))
}

fn new_compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>> {
    zstd::bulk::Compressor::new(level).map_err(|e| Error::InvalidArgument(format!("zstd level {level}: {e}")))
}

/// (block number, payload length, compressed payload).
type EncodedBlock = (usize, usize, Vec<u8>);

/// The most threads one seal encodes blocks on.
const SEAL_THREADS_MAX: usize = 4;

/// Encodes and compresses each block (ordinal ranges of `order`): (payload
/// length, compressed bytes), in block order. Blocks are independent, so
/// they are shared out over up to one thread a core: a seal then uses the
/// CPU that ingest leaves idle (while it waits on fdatasync) instead of
/// being one thread that the writers wait for.
fn encode_blocks(input: &SealInput<'_>, order: &[u32], ranges: &[(usize, usize)]) -> Result<Vec<(usize, Vec<u8>)>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, SEAL_THREADS_MAX).min(ranges.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (mem, entries) = (input.mem, input.mem.entries());
    // Each event's userIdentity.arn, which blocks group records by.
    let mut arn_of: Vec<Option<&str>> = vec![None; entries.len()];
    for (arn, events) in mem.attr_values(Attr::UserIdentityArn) {
        for &i in events {
            if let Some(slot) = arn_of.get_mut(i as usize) {
                *slot = Some(arn);
            }
        }
    }
    let work = || -> Result<Vec<EncodedBlock>> {
        let mut compressor = new_compressor(input.zstd_level)?;
        let mut buf = BlockBuf::default();
        let mut payload = Vec::new();
        let mut done = Vec::new();
        loop {
            let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&(start, end)) = ranges.get(b) else { return Ok(done) };
            buf.clear();
            for &i in &order[start..end] {
                let e = &entries[i as usize];
                buf.push_in_group(mem.first_seq + u64::from(i), e.ingest_ms, e.time_ms, mem.record(e), arn_of[i as usize]);
            }
            buf.encode_with(PAYLOAD_VERSION, (input.split_blocks)(), &mut payload);
            let compressed = compressor.compress(&payload).map_err(|e| Error::InvalidArgument(format!("zstd compression failed: {e}")))?;
            done.push((b, payload.len(), compressed));
        }
    };
    let parts: Vec<Result<Vec<EncodedBlock>>> = if threads <= 1 {
        vec![work()]
    } else {
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mut parts = vec![work()];
            // A helper's panic is the seal's, as if it had one thread.
            parts.extend(helpers.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))));
            parts
        })
    };
    let mut all = Vec::with_capacity(ranges.len());
    for part in parts {
        all.extend(part?);
    }
    all.sort_unstable_by_key(|b| b.0);
    // Each block number was taken by exactly one thread.
    debug_assert!(all.iter().enumerate().all(|(i, b)| b.0 == i) && all.len() == ranges.len());
    Ok(all.into_iter().map(|(_, raw_len, compressed)| (raw_len, compressed)).collect())
}

/// The eventID table's entries: (top 32 bits of the fingerprint, ordinal),
/// one per event that has an id.
fn id_entries(mem: &Memtable, order: &[u32]) -> Vec<(u32, u32)> {
    let entries = mem.entries();
    order.iter().enumerate().filter_map(|(ord, &i)| entries[i as usize].id_fp.map(|fp| ((fp >> 32) as u32, ord as u32))).collect()
}

/// Splits the time-sorted events into partitions and gathers each
/// partition's postings from the memtable's term maps. EventId is left out:
/// the id table answers it.
fn build_partitions<'m>(mem: &'m Memtable, order: &[u32]) -> Vec<PartitionBuild<'m>> {
    let entries = mem.entries();
    let mut parts: Vec<PartitionBuild> = Vec::new();
    for (ord, &i) in order.iter().enumerate() {
        let start = partition_start(entries[i as usize].time_ms, PARTITION_MS);
        match parts.last_mut() {
            Some(p) if p.start_ms == start => p.count += 1,
            _ => parts.push(PartitionBuild { start_ms: start, first_ordinal: ord as u32, count: 1, terms: Vec::new() }),
        }
    }
    let mut inverse = vec![0u32; order.len()];
    for (ord, &i) in order.iter().enumerate() {
        inverse[i as usize] = ord as u32;
    }
    let part_of = |ord: u32| parts.partition_point(|p| p.first_ordinal <= ord) - 1;
    let mut per_part: Vec<Vec<TermOrdinals<'m>>> = (0..parts.len()).map(|_| Vec::new()).collect();
    for attr in Attr::ALL.into_iter().filter(|a| *a != Attr::EventId) {
        for (value, ixs) in mem.attr_values(attr) {
            let mut ords: Vec<u32> = ixs.iter().map(|&i| inverse[i as usize]).collect();
            ords.sort_unstable();
            let mut k = 0;
            while k < ords.len() {
                let p = part_of(ords[k]);
                let end_ord = parts[p].first_ordinal + parts[p].count;
                let j = k + ords[k..].partition_point(|&o| o < end_ord);
                per_part[p].push(((attr, Cow::Borrowed(value)), ords[k..j].to_vec()));
                k = j;
            }
        }
    }
    for (p, mut terms) in parts.iter_mut().zip(per_part) {
        terms.sort_unstable_by(|a, b| (a.0 .0, a.0 .1.as_bytes()).cmp(&(b.0 .0, b.0 .1.as_bytes())));
        p.terms = terms;
    }
    parts
}
