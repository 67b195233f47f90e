//! A streaming segment writer: events arrive one at a time in (eventTime,
//! seq) order and go out as compressed blocks as soon as a block fills, so
//! writing a segment of any size holds one block of records in memory, not
//! the segment. Compaction uses it; a seal, whose events are already in a
//! memtable, uses `writer::build_segment`. Both write the same layout.
//!
//! What stays in memory until the end is small per event: the id table
//! entry (8 bytes), the (seq, leaf) pair for the segment root (40 bytes),
//! and the postings of the time partitions (a few bytes per term).

use std::collections::HashMap;
use std::io::Write;

use super::{encode_header, BlockMeta, Footer, Section, FOOTER_BYTES, ID_ENTRY_BYTES};
use crate::codec::{crc32, put_i64, put_u32, put_u64};
use crate::error::{Error, Result};
use crate::index::{encode_index, partition_start, Attr, PartitionBuild, SeqMap, ATTR_COUNT, PARTITION_MS, SEQ_GROUP};
use crate::insights::counters::Counters;
use crate::merkle::{Frontier, Hash};

/// How the blocks are written.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub zstd_level: i32,
    /// Uncompressed bytes per block.
    pub block_bytes: usize,
    /// A zstd dictionary to compress with (stored in the segment).
    pub dictionary: Option<Vec<u8>>,
}

/// The records of one block, columnar as the block payload is:
/// `count u32 | seq u64[] | ingest_ms u64[] | time_ms i64[] | len u32[] |
/// records`.
#[derive(Default)]
pub(crate) struct BlockBuf {
    seqs: Vec<u64>,
    ingest: Vec<u64>,
    times: Vec<i64>,
    lens: Vec<u32>,
    data: Vec<u8>,
}

impl BlockBuf {
    fn push(&mut self, seq: u64, ingest_ms: u64, time_ms: i64, record: &[u8]) {
        self.seqs.push(seq);
        self.ingest.push(ingest_ms);
        self.times.push(time_ms);
        self.lens.push(record.len() as u32);
        self.data.extend_from_slice(record);
    }

    fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Bytes of the payload so far.
    fn bytes(&self) -> usize {
        4 + self.len() * 28 + self.data.len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.clear();
        put_u32(out, self.len() as u32);
        self.seqs.iter().for_each(|&s| put_u64(out, s));
        self.ingest.iter().for_each(|&t| put_u64(out, t));
        self.times.iter().for_each(|&t| put_i64(out, t));
        self.lens.iter().for_each(|&l| put_u32(out, l));
        out.extend_from_slice(&self.data);
    }

    fn clear(&mut self) {
        self.seqs.clear();
        self.ingest.clear();
        self.times.clear();
        self.lens.clear();
        self.data.clear();
    }
}

/// One partition's terms while it fills.
struct OpenPartition {
    start_ms: i64,
    first_ordinal: u32,
    count: u32,
    /// Per attribute code: value -> ordinals.
    terms: Vec<HashMap<Box<str>, Vec<u32>>>,
}

impl OpenPartition {
    fn close(self) -> PartitionBuild {
        let mut terms: Vec<((Attr, String), Vec<u32>)> = Vec::new();
        for (code, map) in self.terms.into_iter().enumerate() {
            let Some(attr) = Attr::from_code(code as u8) else { continue };
            terms.extend(map.into_iter().map(|(v, o)| ((attr, v.into_string()), o)));
        }
        terms.sort_unstable_by(|a, b| (a.0 .0, a.0 .1.as_bytes()).cmp(&(b.0 .0, b.0 .1.as_bytes())));
        PartitionBuild { start_ms: self.start_ms, first_ordinal: self.first_ordinal, count: self.count, terms }
    }
}

/// Writes a segment of `count` events starting at `first_seq`.
pub struct SegmentBuilder<W: Write> {
    out: W,
    pos: u64,
    first_seq: u64,
    count: u64,
    compressor: zstd::bulk::Compressor<'static>,
    block_bytes: usize,
    dictionary: Option<Vec<u8>>,
    buf: BlockBuf,
    payload: Vec<u8>,
    blocks: Vec<BlockMeta>,
    ordinal: u32,
    ids: Vec<(u32, u32)>,
    parts: Vec<PartitionBuild>,
    open: Option<OpenPartition>,
    seq_map: SeqMap,
    leaves: Vec<(u64, Hash)>,
    last_key: Option<(i64, u64)>,
    min_time_ms: i64,
    max_time_ms: i64,
    min_ingest_ms: u64,
    max_ingest_ms: u64,
    raw_bytes: u64,
    counters: Counters,
}

impl<W: Write> SegmentBuilder<W> {
    /// Adds Insights counters of the events pushed (the sources' merged).
    pub fn add_counters(&mut self, c: &Counters) {
        self.counters.merge(c);
    }

    pub fn new(mut out: W, first_seq: u64, count: u64, opts: &BuildOptions) -> Result<Self> {
        if count == 0 || count > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument(format!("a segment holds 1 to {} events, not {count}", u32::MAX)));
        }
        let compressor = match &opts.dictionary {
            Some(d) => zstd::bulk::Compressor::with_dictionary(opts.zstd_level, d),
            None => zstd::bulk::Compressor::new(opts.zstd_level),
        }
        .map_err(|e| Error::InvalidArgument(format!("zstd level {}: {e}", opts.zstd_level)))?;
        // Every segment this builder writes is version 2 (it carries a
        // chain hash).
        let header = encode_header(first_seq, count, 2);
        out.write_all(&header).map_err(|e| Error::io("write", "segment", e))?;
        let first_group = first_seq / SEQ_GROUP;
        let groups = ((first_seq + count - 1) / SEQ_GROUP - first_group + 1) as usize;
        Ok(SegmentBuilder {
            out,
            pos: header.len() as u64,
            first_seq,
            count,
            compressor,
            block_bytes: opts.block_bytes.max(1),
            dictionary: opts.dictionary.clone(),
            buf: BlockBuf::default(),
            payload: Vec::new(),
            blocks: Vec::new(),
            ordinal: 0,
            ids: Vec::new(),
            parts: Vec::new(),
            open: None,
            seq_map: SeqMap { first_group, groups: vec![Vec::new(); groups] },
            leaves: Vec::new(),
            last_key: None,
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
            min_ingest_ms: u64::MAX,
            max_ingest_ms: 0,
            raw_bytes: 0,
            counters: Counters::default(),
        })
    }

    /// Adds the next event (in (time, seq) order) with its leaf hash, id
    /// fingerprint and index terms.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        seq: u64,
        ingest_ms: u64,
        time_ms: i64,
        record: &[u8],
        leaf: Hash,
        id_fp: Option<u64>,
        terms: &[(Attr, &str)],
    ) -> Result<()> {
        if self.last_key.is_some_and(|k| k >= (time_ms, seq)) {
            return Err(Error::InvalidArgument(format!("event seq {seq} arrived out of (time, seq) order")));
        }
        if !(self.first_seq..self.first_seq + self.count).contains(&seq) || u64::from(self.ordinal) >= self.count {
            return Err(Error::InvalidArgument(format!(
                "seq {seq} is outside the segment's {}..{}",
                self.first_seq,
                self.first_seq + self.count
            )));
        }
        self.last_key = Some((time_ms, seq));
        let ord = self.ordinal;
        self.ordinal += 1;
        let start = partition_start(time_ms, PARTITION_MS);
        if self.open.as_ref().is_none_or(|p| p.start_ms != start) {
            if let Some(p) = self.open.take() {
                self.parts.push(p.close());
            }
            self.open = Some(OpenPartition {
                start_ms: start,
                first_ordinal: ord,
                count: 0,
                terms: (0..ATTR_COUNT).map(|_| HashMap::new()).collect(),
            });
        }
        let p = self.open.as_mut().expect("opened above");
        p.count += 1;
        for (attr, value) in terms.iter().filter(|(a, _)| *a != Attr::EventId) {
            let map = &mut p.terms[*attr as usize];
            match map.get_mut(*value) {
                // An event lists each (attr, value) once (`terms` dedups).
                Some(v) if v.last() != Some(&ord) => v.push(ord),
                Some(_) => {}
                None => {
                    map.insert((*value).into(), vec![ord]);
                }
            }
        }
        if let Some(fp) = id_fp {
            self.ids.push(((fp >> 32) as u32, ord));
        }
        let block = self.blocks.len() as u32;
        let g = &mut self.seq_map.groups[(seq / SEQ_GROUP - self.seq_map.first_group) as usize];
        if g.last() != Some(&block) {
            g.push(block);
        }
        self.leaves.push((seq, leaf));
        self.min_time_ms = self.min_time_ms.min(time_ms);
        self.max_time_ms = self.max_time_ms.max(time_ms);
        self.min_ingest_ms = self.min_ingest_ms.min(ingest_ms);
        self.max_ingest_ms = self.max_ingest_ms.max(ingest_ms);
        self.raw_bytes += record.len() as u64;
        self.buf.push(seq, ingest_ms, time_ms, record);
        if self.buf.bytes() >= self.block_bytes {
            self.flush_block()?;
        }
        Ok(())
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(|e| Error::io("write", "segment", e))?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn flush_block(&mut self) -> Result<()> {
        if self.buf.len() == 0 {
            return Ok(());
        }
        self.buf.encode(&mut self.payload);
        let compressed =
            self.compressor.compress(&self.payload).map_err(|e| Error::InvalidArgument(format!("zstd compression failed: {e}")))?;
        let n = self.buf.len() as u32;
        let meta = BlockMeta {
            offset: self.pos,
            compressed_len: compressed.len() as u32,
            raw_len: self.payload.len() as u32,
            events: n,
            first_ordinal: self.ordinal - n,
            min_time_ms: self.buf.times.iter().copied().min().unwrap_or(0),
            max_time_ms: self.buf.times.iter().copied().max().unwrap_or(0),
            crc: crc32(&[&compressed]),
        };
        self.write(&compressed)?;
        self.blocks.push(meta);
        self.buf.clear();
        Ok(())
    }

    fn section(&mut self, bytes: &[u8]) -> Result<Section> {
        let s = Section { offset: self.pos, len: bytes.len() as u64, crc: crc32(&[bytes]) };
        self.write(bytes)?;
        Ok(s)
    }

    /// Writes the sections and the footer. `prev_segment_hash` links to the
    /// segment before; `chain_hash` is what the segment after links to;
    /// `frontier_at_end` is the whole tree's frontier at this segment's end.
    pub fn finish(mut self, prev_segment_hash: Hash, chain_hash: Hash, frontier_at_end: &Frontier) -> Result<(W, Footer)> {
        if u64::from(self.ordinal) != self.count {
            return Err(Error::InvalidArgument(format!("the segment was declared with {} events but got {}", self.count, self.ordinal)));
        }
        if frontier_at_end.size() != self.first_seq + self.count {
            return Err(Error::InvalidArgument("the frontier does not end where the segment does".into()));
        }
        self.flush_block()?;
        if let Some(p) = self.open.take() {
            self.parts.push(p.close());
        }
        let mut b = Vec::with_capacity(self.blocks.len() * super::BLOCK_META_BYTES);
        self.blocks.iter().for_each(|m| m.encode(&mut b));
        let block_index = self.section(&b)?;
        self.ids.sort_unstable();
        let mut b = Vec::with_capacity(self.ids.len() * ID_ENTRY_BYTES);
        for &(fp, ord) in &self.ids {
            put_u32(&mut b, fp);
            put_u32(&mut b, ord);
        }
        let id_table = self.section(&b)?;
        let b: Vec<u8> = frontier_at_end.nodes().iter().flatten().copied().collect();
        let frontier = self.section(&b)?;
        let mut b = Vec::new();
        encode_index(PARTITION_MS, &self.parts, &self.seq_map, Some(&self.counters), &mut b);
        let index = self.section(&b)?;
        let dictionary = match self.dictionary.take() {
            Some(d) => Some(self.section(&d)?),
            None => None,
        };
        self.leaves.sort_unstable_by_key(|l| l.0);
        if let Some(w) = self.leaves.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidArgument(format!("seq {} was pushed twice", w[0].0)));
        }
        let mut seg = Frontier::new();
        for (_, leaf) in &self.leaves {
            seg.push(*leaf, |_, _, _| {});
        }
        let footer = Footer {
            first_seq: self.first_seq,
            count: self.count,
            block_count: self.blocks.len() as u32,
            min_time_ms: self.min_time_ms,
            max_time_ms: self.max_time_ms,
            min_ingest_ms: self.min_ingest_ms,
            max_ingest_ms: self.max_ingest_ms,
            raw_bytes: self.raw_bytes,
            block_index,
            id_table,
            frontier,
            index,
            segment_root: seg.root(),
            tree_size: frontier_at_end.size(),
            tree_root: frontier_at_end.root(),
            prev_segment_hash,
            chain_hash: Some(chain_hash),
            dictionary,
        };
        let f = footer.encode();
        debug_assert_eq!(f.len(), FOOTER_BYTES);
        self.write(&f)?;
        self.out.flush().map_err(|e| Error::io("flush", "segment", e))?;
        Ok((self.out, footer))
    }
}
