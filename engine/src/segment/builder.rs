//! A streaming segment writer: events arrive one at a time in (eventTime,
//! seq) order and go out as compressed blocks as soon as a block fills, so
//! writing a segment of any size holds one block of records in memory, not
//! the segment. Compaction uses it; a seal, whose events are already in a
//! memtable, uses `writer::build_segment`. Both write the blocks their own
//! way and everything after them through `sections::write_tail`.
//!
//! What stays in memory until the end is small per event: the id table
//! entry (8 bytes before packing), the (seq, leaf) pair for the segment root (40 bytes),
//! and the postings of the time partitions (a few bytes per term).

use std::collections::HashMap;
use std::io::Write;

use super::block::BlockBuf;
use super::sections::{write_tail, Summary};
use super::{encode_header, BlockMeta, Footer, SEGMENT_VERSION};
use crate::codec::crc32;
use crate::error::{Error, Result};
use crate::index::counters::Counters;
use crate::index::{partition_start, Attr, PartitionBuild, SeqMap, TermOrdinals, ATTR_COUNT, SEQ_GROUP};
use crate::merkle::{Frontier, Hash};

/// How the blocks are written.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub zstd_level: i32,
    /// Uncompressed bytes per block.
    pub block_bytes: usize,
    /// A zstd dictionary to compress with (stored in the segment).
    pub dictionary: Option<Vec<u8>>,
    /// Width of the index's time partitions.
    pub partition_ms: i64,
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
    fn close(self) -> PartitionBuild<'static> {
        let mut terms: Vec<TermOrdinals<'static>> = Vec::new();
        for (code, map) in self.terms.into_iter().enumerate() {
            let Some(attr) = Attr::from_code(code as u8) else { continue };
            terms.extend(map.into_iter().map(|(v, o)| ((attr, v.into_string().into()), o)));
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
    compressor: Compressing,
    /// The block being compressed now: its index entry, offset and CRC to
    /// be filled in when it is written.
    in_flight: Option<BlockMeta>,
    block_bytes: usize,
    dictionary: Option<Vec<u8>>,
    partition_ms: i64,
    buf: BlockBuf,
    blocks: Vec<BlockMeta>,
    ordinal: u32,
    ids: Vec<(u32, u32)>,
    parts: Vec<PartitionBuild<'static>>,
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
        let header = encode_header(first_seq, count, SEGMENT_VERSION);
        out.write_all(&header).map_err(|e| Error::io("write", "segment", e))?;
        let first_group = first_seq / SEQ_GROUP;
        let groups = ((first_seq + count - 1) / SEQ_GROUP - first_group + 1) as usize;
        Ok(SegmentBuilder {
            out,
            pos: header.len() as u64,
            first_seq,
            count,
            compressor: Compressing::start(compressor)?,
            in_flight: None,
            block_bytes: opts.block_bytes.max(1),
            dictionary: opts.dictionary.clone(),
            partition_ms: opts.partition_ms,
            buf: BlockBuf::default(),
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
        let start = partition_start(time_ms, self.partition_ms);
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
        // The number of the block this event goes in: one may be in flight.
        let block = (self.blocks.len() + usize::from(self.in_flight.is_some())) as u32;
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
        let arn = terms.iter().find(|(a, _)| *a == Attr::UserIdentityArn).map(|(_, v)| *v);
        self.buf.push_in_group(seq, ingest_ms, time_ms, record, arn);
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

    /// Hands the filled block to the compressing thread, and writes the
    /// block before it (compressed meanwhile).
    fn flush_block(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut payload = self.compressor.spare.take().unwrap_or_default();
        self.buf.encode(super::block::PAYLOAD_VERSION, &mut payload);
        let n = self.buf.len() as u32;
        let meta = BlockMeta {
            offset: 0,
            compressed_len: 0,
            raw_len: payload.len() as u32,
            events: n,
            first_ordinal: self.ordinal - n,
            min_time_ms: self.buf.times.iter().copied().min().unwrap_or(0),
            max_time_ms: self.buf.times.iter().copied().max().unwrap_or(0),
            crc: 0,
        };
        self.write_in_flight()?;
        self.compressor.send(payload)?;
        self.in_flight = Some(meta);
        self.buf.clear();
        Ok(())
    }

    /// Waits for the block being compressed and writes it.
    fn write_in_flight(&mut self) -> Result<()> {
        let Some(meta) = self.in_flight.take() else { return Ok(()) };
        let compressed = self.compressor.receive()?;
        self.blocks.push(BlockMeta { offset: self.pos, compressed_len: compressed.len() as u32, crc: crc32(&[&compressed]), ..meta });
        self.write(&compressed)?;
        Ok(())
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
        self.write_in_flight()?;
        if let Some(p) = self.open.take() {
            self.parts.push(p.close());
        }
        self.leaves.sort_unstable_by_key(|l| l.0);
        if let Some(w) = self.leaves.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidArgument(format!("seq {} was pushed twice", w[0].0)));
        }
        let mut seg = Frontier::new();
        for (_, leaf) in &self.leaves {
            seg.push(*leaf, |_, _, _| {});
        }
        let mut tail = Vec::new();
        let footer = write_tail(
            Summary {
                first_seq: self.first_seq,
                count: self.count,
                blocks: &self.blocks,
                ids: std::mem::take(&mut self.ids),
                frontier_at_end,
                partition_ms: self.partition_ms,
                parts: &self.parts,
                seq_map: &self.seq_map,
                counters: Some(&self.counters),
                dictionary: self.dictionary.as_deref(),
                segment_root: seg.root(),
                min_time_ms: self.min_time_ms,
                max_time_ms: self.max_time_ms,
                min_ingest_ms: self.min_ingest_ms,
                max_ingest_ms: self.max_ingest_ms,
                raw_bytes: self.raw_bytes,
                prev_segment_hash,
                chain_hash: Some(chain_hash),
            },
            self.pos,
            &mut tail,
        );
        self.write(&tail)?;
        self.out.flush().map_err(|e| Error::io("flush", "segment", e))?;
        Ok((self.out, footer))
    }
}

/// A block compressed (with its payload buffer handed back), or why not.
type Compressed = std::result::Result<(Vec<u8>, Vec<u8>), String>;

/// A thread that compresses block payloads while the builder fills the
/// next block: compaction's merging, hashing and compressing then share two
/// cores. One block is in flight at a time, so the blocks come back in
/// order.
struct Compressing {
    to: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    from: std::sync::mpsc::Receiver<Compressed>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// A payload buffer handed back, for the next block.
    spare: Option<Vec<u8>>,
}

impl Compressing {
    fn start(mut z: zstd::bulk::Compressor<'static>) -> Result<Self> {
        let (to, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let (tx, from) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("cairn-compress".into())
            .spawn(move || {
                // Background work yields to ingest.
                crate::lower_thread_priority();
                for payload in rx {
                    let r = z.compress(&payload).map(|c| (c, payload)).map_err(|e| format!("zstd compression failed: {e}"));
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| Error::io("spawn", "the compressing thread", e))?;
        Ok(Compressing { to: Some(to), from, thread: Some(thread), spare: None })
    }

    fn send(&mut self, payload: Vec<u8>) -> Result<()> {
        let gone = || Error::InvalidArgument("the compressing thread stopped".into());
        self.to.as_ref().ok_or_else(gone)?.send(payload).map_err(|_| gone())
    }

    fn receive(&mut self) -> Result<Vec<u8>> {
        let (compressed, payload) = self
            .from
            .recv()
            .map_err(|_| Error::InvalidArgument("the compressing thread stopped".into()))?
            .map_err(Error::InvalidArgument)?;
        self.spare = Some(payload);
        Ok(compressed)
    }
}

impl Drop for Compressing {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.to.take();
        while self.from.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
