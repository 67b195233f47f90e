//! Reading sealed segments through memory maps.
//!
//! This is the only module of the engine with `unsafe`: mapping a file.
//! Sealed segments are immutable once their manifest swap is durable, and
//! the engine never writes to a mapped file; every byte read from the map is
//! still treated as untrusted input (checksums, bounds checks).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use memmap2::Mmap;
use parking_lot::Mutex;

use super::block::decode_block;
use super::ids::{Bloom, IdBudget, PackedIds, ID_FENCE_STRIDE};
use super::{
    Block, BlockMeta, Footer, Section, BLOCK_META_BYTES, FOOTER_BYTES, HEADER_BYTES, ID_ENTRY_BYTES, SEGMENT_MAGIC, SEGMENT_VERSION_MAX,
};
use crate::codec::{crc32, Reader};
use crate::error::{Error, Result};
use crate::index::{IndexLayout, IndexView, SEQ_GROUP};
use crate::merkle::{Frontier, Hash};

/// Upper bound for one block's uncompressed payload, checked before the
/// decompression buffer is allocated.
const BLOCK_RAW_BYTES_MAX: u32 = 64 * 1024 * 1024;
/// Upper bound for a segment's zstd dictionary.
pub const DICTIONARY_BYTES_MAX: u64 = 1024 * 1024;

/// An open, verified sealed segment.
pub struct Segment {
    file: File,
    /// Unique per opened segment in this process (block cache key).
    pub id: u64,
    pub path: PathBuf,
    map: Mmap,
    pub footer: Footer,
    pub hash: Hash,
    pub blocks: Vec<BlockMeta>,
    fences: OnceLock<Result<IdFences, String>>,
    /// The Bloom filter over the id table, while the budget allows it.
    bloom: Mutex<Option<Arc<Bloom>>>,
    budget: Arc<IdBudget>,
    index: OnceLock<Result<IndexLayout, String>>,
    /// The zstd dictionary of a version-2 segment's blocks.
    dictionary: Option<zstd::dict::DecoderDictionary<'static>>,
}

/// A segment's fence index over its sorted id table (see `ids`).
#[derive(Debug)]
struct IdFences {
    fences: Vec<u32>,
    entries: usize,
    /// Version 3: the packed table's directory (the fences are its chunks'
    /// first fingerprints).
    packed: Option<PackedIds>,
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.drop_id_filter();
    }
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).field("footer", &self.footer).finish()
    }
}

impl Segment {
    /// Opens and checks a segment: header, footer checksum, block index and
    /// frontier checksums, and internal consistency. Blocks and the id table
    /// are checked when first read. Its id filter is not limited by a
    /// budget (for tools and tests; a store uses [`Segment::open_in`]).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_in(path, &Arc::new(IdBudget::new(usize::MAX)))
    }

    /// Opens a segment whose id filter counts against `budget`.
    pub fn open_in(path: &Path, budget: &Arc<IdBudget>) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        // SAFETY: sealed segment files are never modified after the manifest
        // that lists them is durable; the engine holds the directory lock, so
        // no other cairn process writes them either. A truncation by an
        // outside actor could still fault a read; that is outside the
        // engine's control, as with any mmap-based store.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("mmap", path, e))?;
        // The map serves point reads of the index and id table during
        // queries; hint that so the kernel does not read ahead.
        let _ = map.advise(memmap2::Advice::Random);
        let len = map.len();
        if len < HEADER_BYTES + FOOTER_BYTES {
            return Err(Error::corruption(path, 0, format!("segment is {len} bytes, shorter than a header and footer")));
        }
        // Open reads through pread, not the map: a fault on a freshly
        // written file maps its whole large folio (megabytes), so touching
        // the header and footer of every segment would pin most of the
        // store in the process's RSS.
        let head = pread(&file, path, 0, HEADER_BYTES)?;
        let head = head.as_slice();
        if &head[..8] != SEGMENT_MAGIC {
            return Err(Error::corruption(path, 0, "not a cairn segment (bad magic)"));
        }
        // The checksum first: a damaged version byte is damage, not a
        // newer build's file (whose header checksums as every version's).
        if crc32(&[&head[..HEADER_BYTES - 4]]) != u32::from_le_bytes(head[60..64].try_into().unwrap_or_default()) {
            return Err(Error::corruption(path, 0, "segment header checksum mismatch"));
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if !(1..=SEGMENT_VERSION_MAX).contains(&version) {
            return Err(Error::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: SEGMENT_VERSION_MAX });
        }
        let footer_at = len - FOOTER_BYTES;
        let footer = Footer::decode(path, footer_at as u64, &pread(&file, path, footer_at as u64, FOOTER_BYTES)?)?;
        if footer.version() != version {
            return Err(Error::corruption(path, 0, format!("header says version {version}, the footer {}", footer.version())));
        }
        let hash = footer.hash();
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let seg = Segment {
            file,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            path: path.to_path_buf(),
            blocks: Vec::new(),
            footer,
            hash,
            map,
            fences: OnceLock::new(),
            bloom: Mutex::new(None),
            budget: budget.clone(),
            index: OnceLock::new(),
            dictionary: None,
        };
        let mut seg = seg;
        seg.check_layout(footer_at as u64)?;
        seg.blocks = seg.decode_block_index()?;
        if let Some(d) = seg.footer.dictionary {
            if d.len > DICTIONARY_BYTES_MAX {
                return Err(Error::corruption(path, d.offset, format!("dictionary of {} bytes is over the limit", d.len)));
            }
            let bytes = seg.read_section(&d, "dictionary")?;
            // `DecoderDictionary::copy` panics on a dictionary zstd refuses
            // (a damaged one whose CRC was rewritten): ask zstd first.
            if zstd::zstd_safe::DDict::try_create(&bytes).is_none() {
                return Err(Error::corruption(path, d.offset, "the zstd dictionary is malformed"));
            }
            seg.dictionary = Some(zstd::dict::DecoderDictionary::copy(&bytes));
        }
        Ok(seg)
    }

    /// What the next segment's previous-segment hash must equal.
    pub fn link_hash(&self) -> Hash {
        self.footer.link_hash()
    }

    /// The bytes an id filter for this segment takes.
    pub fn id_filter_bytes(&self) -> usize {
        Bloom::bytes_for(self.id_entries_at_most() as usize)
    }

    /// Entries of the id table, or (packed, without reading it) at most.
    fn id_entries_at_most(&self) -> u64 {
        if self.footer.version >= 3 {
            self.footer.count
        } else {
            self.footer.id_table.len / ID_ENTRY_BYTES as u64
        }
    }

    fn section_bytes(&self, s: &Section, what: &str) -> Result<&[u8]> {
        let end = s.offset.checked_add(s.len).filter(|&e| e <= self.map.len() as u64);
        let Some(end) = end else {
            return Err(Error::corruption(&self.path, s.offset, format!("{what} lies outside the file")));
        };
        Ok(&self.map[s.offset as usize..end as usize])
    }

    fn checked_section(&self, s: &Section, what: &str) -> Result<&[u8]> {
        let b = self.section_bytes(s, what)?;
        if crc32(&[b]) != s.crc {
            return Err(Error::corruption(&self.path, s.offset, format!("{what} checksum mismatch")));
        }
        Ok(b)
    }

    fn check_layout(&self, footer_at: u64) -> Result<()> {
        let f = &self.footer;
        let bad = |what: String| Err(Error::corruption(&self.path, footer_at, what));
        if f.block_index.len != u64::from(f.block_count) * BLOCK_META_BYTES as u64 {
            return bad(format!("block index length {} does not match {} blocks", f.block_index.len, f.block_count));
        }
        if f.version < 3 && (!f.id_table.len.is_multiple_of(ID_ENTRY_BYTES as u64) || f.id_table.len / ID_ENTRY_BYTES as u64 > f.count) {
            return bad(format!("id table length {} is invalid for {} events", f.id_table.len, f.count));
        }
        if f.frontier.len != u64::from(f.tree_size.count_ones()) * 32 {
            return bad("frontier length does not match the tree size".into());
        }
        if f.first_seq.checked_add(f.count) != Some(f.tree_size) || f.count == 0 {
            return bad(format!("tree size {} is not first seq {} + count {}", f.tree_size, f.first_seq, f.count));
        }
        if f.count > u64::from(u32::MAX) {
            return bad(format!("event count {} exceeds the per-segment limit", f.count));
        }
        Ok(())
    }

    /// A section's bytes read with pread, bounds- and checksum-checked.
    fn read_section(&self, s: &Section, what: &str) -> Result<Vec<u8>> {
        self.section_bytes(s, what)?;
        let b = pread(&self.file, &self.path, s.offset, s.len as usize)?;
        if crc32(&[&b]) != s.crc {
            return Err(Error::corruption(&self.path, s.offset, format!("{what} checksum mismatch")));
        }
        Ok(b)
    }

    fn decode_block_index(&self) -> Result<Vec<BlockMeta>> {
        let b = self.read_section(&self.footer.block_index, "block index")?;
        let mut r = Reader::new(&b);
        let mut blocks = Vec::with_capacity(self.footer.block_count as usize);
        let mut next_ordinal = 0u64;
        let data_end = self.footer.block_index.offset;
        for i in 0..self.footer.block_count {
            let m = BlockMeta::decode(&mut r)
                .ok_or_else(|| Error::corruption(&self.path, self.footer.block_index.offset, "short block index"))?;
            let end = m.offset.checked_add(u64::from(m.compressed_len));
            if m.offset < HEADER_BYTES as u64
                || end.is_none_or(|e| e > data_end)
                || u64::from(m.first_ordinal) != next_ordinal
                || m.events == 0
            {
                return Err(Error::corruption(
                    &self.path,
                    self.footer.block_index.offset + u64::from(i) * BLOCK_META_BYTES as u64,
                    format!("block {i} index entry is inconsistent"),
                ));
            }
            next_ordinal += u64::from(m.events);
            blocks.push(m);
        }
        if next_ordinal != self.footer.count {
            return Err(Error::corruption(
                &self.path,
                self.footer.block_index.offset,
                format!("blocks hold {next_ordinal} events, footer says {}", self.footer.count),
            ));
        }
        Ok(blocks)
    }

    /// The whole tree's frontier at this segment's end.
    pub fn frontier(&self) -> Result<Frontier> {
        let b = self.read_section(&self.footer.frontier, "frontier")?;
        let nodes: Vec<Hash> = b.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
        Frontier::from_parts(self.footer.tree_size, nodes)
            .ok_or_else(|| Error::corruption(&self.path, self.footer.frontier.offset, "frontier does not match tree size"))
    }

    /// Decompresses and decodes block `i`, checking its checksum.
    pub fn read_block(&self, i: usize) -> Result<Block> {
        self.read_block_inner(i, true)
    }

    /// Reads block `i` even when its checksum fails (for `verify`, which
    /// reports the mismatch and then looks at what the block still holds).
    pub fn read_block_unchecked(&self, i: usize) -> Result<Block> {
        self.read_block_inner(i, false)
    }

    fn read_block_inner(&self, i: usize, check: bool) -> Result<Block> {
        let m = self.blocks.get(i).ok_or_else(|| Error::InvalidArgument(format!("block {i} out of range")))?;
        // Blocks are read with pread, not through the map: a query or an
        // export that streams many blocks would otherwise keep every page it
        // touched mapped (fault-around and large folios map far more than
        // the block), and the process's RSS would grow with the store. The
        // small, hot structures (footer, indexes, id table) stay mapped.
        let mut bytes = vec![0u8; m.compressed_len as usize];
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut bytes, m.offset)
            .map_err(|e| Error::io("read block of", &self.path, e))?;
        let bytes = bytes.as_slice();
        let bad = |what: String| Error::corruption(&self.path, m.offset, format!("block {i}: {what}"));
        if check && crc32(&[bytes]) != m.crc {
            return Err(bad("checksum mismatch".into()));
        }
        if m.raw_len > BLOCK_RAW_BYTES_MAX {
            return Err(bad(format!("claims {} uncompressed bytes, over the limit", m.raw_len)));
        }
        let raw = match &self.dictionary {
            None => zstd::bulk::decompress(bytes, m.raw_len as usize),
            Some(d) => zstd::bulk::Decompressor::with_prepared_dictionary(d).and_then(|mut z| z.decompress(bytes, m.raw_len as usize)),
        }
        .map_err(|e| bad(format!("zstd: {e}")))?;
        if raw.len() != m.raw_len as usize {
            return Err(bad(format!("decompresses to {} bytes, the block index says {}", raw.len(), m.raw_len)));
        }
        decode_block(raw, m.events, self.footer.payload_version()).ok_or_else(|| bad("payload does not decode".into()))
    }

    /// The fences, built on first use from the id table, which is read
    /// with pread (and checksummed) rather than through the map, so asking
    /// many segments about an id maps nothing. The Bloom filter is built in
    /// the same pass when the budget has room for it.
    fn fences(&self) -> Result<&IdFences> {
        let f = self.fences.get_or_init(|| {
            let b = self.read_section(&self.footer.id_table, "id table").map_err(|e| e.to_string())?;
            if self.footer.version >= 3 {
                let p = PackedIds::parse(&b, self.footer.count, self.footer.count)?;
                if self.budget_has_room(p.entries) {
                    let all = p.decode_all(&b)?;
                    self.admit_bloom(p.entries, all.iter().map(|e| e.0));
                }
                return Ok(IdFences { fences: p.first_fps.clone(), entries: p.entries, packed: Some(p) });
            }
            let entries = b.len() / ID_ENTRY_BYTES;
            let fps = b.chunks_exact(ID_ENTRY_BYTES).map(|e| fixed_id_entry(e).0);
            let fences = fps.clone().step_by(ID_FENCE_STRIDE).collect();
            self.admit_bloom(entries, fps);
            Ok(IdFences { fences, entries, packed: None })
        });
        f.as_ref().map_err(|e| Error::corruption(&self.path, self.footer.id_table.offset, e.clone()))
    }

    /// Whether a Bloom filter over `entries` ids would fit the budget now.
    fn budget_has_room(&self, entries: usize) -> bool {
        self.budget.used_bytes().saturating_add(Bloom::bytes_for(entries)) <= self.budget.limit_bytes()
    }

    /// Builds the Bloom filter if the budget has room for it.
    fn admit_bloom(&self, entries: usize, fps: impl Iterator<Item = u32>) {
        let mut bloom = Bloom::with_capacity(entries);
        if !self.budget.try_reserve(bloom.bytes()) {
            return;
        }
        fps.for_each(|fp| bloom.insert(fp));
        let old = self.bloom.lock().replace(Arc::new(bloom));
        if let Some(old) = old {
            self.budget.release(old.bytes());
        }
    }

    /// Whether this segment holds an id filter now.
    pub fn has_id_filter(&self) -> bool {
        self.bloom.lock().is_some()
    }

    /// Drops the id filter (the budget needs the room for newer segments);
    /// lookups then read the id table. Returns the bytes freed.
    pub fn drop_id_filter(&self) -> usize {
        let freed = self.bloom.lock().take().map_or(0, |b| b.bytes());
        self.budget.release(freed);
        freed
    }

    /// The id fingerprint's top 32 bits of every event that has an id, by
    /// ordinal (for compaction, which rebuilds the id table from it).
    pub fn id_fps_by_ordinal(&self) -> Result<Vec<Option<u32>>> {
        let b = self.read_section(&self.footer.id_table, "id table")?;
        let bad = |what: String| Error::corruption(&self.path, self.footer.id_table.offset, what);
        let entries: Vec<(u32, u32)> = if self.footer.version >= 3 {
            PackedIds::parse(&b, self.footer.count, self.footer.count).and_then(|p| p.decode_all(&b)).map_err(bad)?
        } else {
            b.chunks_exact(ID_ENTRY_BYTES).map(fixed_id_entry).collect()
        };
        let mut out = vec![None; self.footer.count as usize];
        for (fp, ord) in entries {
            *out.get_mut(ord as usize).ok_or_else(|| bad("id table ordinal out of range".into()))? = Some(fp);
        }
        Ok(out)
    }

    /// Ordinals (time-order positions) of events whose id fingerprint's top
    /// 32 bits equal those of `fp`. The caller confirms the id itself.
    pub fn find_id(&self, fp: u64) -> Result<Vec<u32>> {
        let filter = self.fences()?;
        let key = (fp >> 32) as u32;
        let bloom = self.bloom.lock().clone();
        if bloom.is_some_and(|b| !b.contains(key)) {
            return Ok(Vec::new());
        }
        // The first entry >= key lies in the chunk before the first fence
        // >= key; read chunks from there while entries can still match.
        let mut chunk = filter.fences.partition_point(|&f| f < key).saturating_sub(1);
        let mut out = Vec::new();
        let mut entries = Vec::with_capacity(ID_FENCE_STRIDE);
        loop {
            let first = chunk * ID_FENCE_STRIDE;
            if first >= filter.entries {
                return Ok(out);
            }
            entries.clear();
            let at = match &filter.packed {
                Some(p) => {
                    let r = p.chunk_range(chunk, self.footer.id_table.len as usize);
                    let at = self.footer.id_table.offset + r.start as u64;
                    let b = pread(&self.file, &self.path, at, r.len())?;
                    p.decode_chunk(chunk, &b, &mut entries).map_err(|e| Error::corruption(&self.path, at, e))?;
                    at
                }
                None => {
                    let n = ID_FENCE_STRIDE.min(filter.entries - first);
                    let at = self.footer.id_table.offset + (first * ID_ENTRY_BYTES) as u64;
                    let b = pread(&self.file, &self.path, at, n * ID_ENTRY_BYTES)?;
                    entries.extend(b.chunks_exact(ID_ENTRY_BYTES).map(fixed_id_entry));
                    at
                }
            };
            for &(efp, ord) in &entries {
                if efp > key {
                    return Ok(out);
                }
                if efp == key {
                    if u64::from(ord) >= self.footer.count {
                        return Err(Error::corruption(&self.path, at, "id table ordinal out of range"));
                    }
                    out.push(ord);
                }
            }
            chunk += 1;
        }
    }

    /// The segment's time-partitioned index, checked on first use.
    pub fn index(&self) -> Result<IndexView<'_>> {
        let layout = self.index.get_or_init(|| {
            let b = self.checked_section(&self.footer.index, "index").map_err(|e| e.to_string())?;
            IndexLayout::parse(b, self.footer.count)
        });
        match layout {
            Ok(l) => Ok(l.view(self.section_bytes(&self.footer.index, "index")?)),
            Err(e) => Err(Error::corruption(&self.path, self.footer.index.offset, e.clone())),
        }
    }

    /// The blocks holding events with seqs in `[lo, hi)`, ascending: from
    /// the seq map, or every block for a segment written before it existed.
    pub fn blocks_for_seqs(&self, lo: u64, hi: u64) -> Result<Vec<usize>> {
        let (lo, hi) = (lo.max(self.footer.first_seq), hi.min(self.footer.tree_size));
        if lo >= hi {
            return Ok(Vec::new());
        }
        let idx = self.index()?;
        if !idx.layout.has_seq_map() {
            return Ok((0..self.blocks.len()).collect());
        }
        let mut out: Vec<usize> = Vec::new();
        for g in lo / SEQ_GROUP..=(hi - 1) / SEQ_GROUP {
            let blocks = idx.layout.blocks_of_group(g).ok_or_else(|| {
                Error::corruption(&self.path, self.footer.index.offset, format!("seq map lacks group {g} of seqs this segment holds"))
            })?;
            out.extend(blocks.iter().map(|&b| b as usize));
        }
        out.sort_unstable();
        out.dedup();
        if out.last().is_some_and(|&b| b >= self.blocks.len()) {
            return Err(Error::corruption(&self.path, self.footer.index.offset, "seq map names a block that does not exist"));
        }
        Ok(out)
    }

    /// Checks that the seq map lists block `b` for each of `seqs` (the
    /// seqs block `b` holds); `Err` names the first it does not. A segment
    /// without a seq map passes.
    pub fn check_seq_map(&self, b: usize, seqs: &[u64]) -> Result<()> {
        let idx = self.index()?;
        if !idx.layout.has_seq_map() {
            return Ok(());
        }
        for &seq in seqs {
            let listed = idx.layout.blocks_of_group(seq / SEQ_GROUP).is_some_and(|bs| bs.binary_search(&(b as u32)).is_ok());
            if !listed {
                return Err(Error::corruption(
                    &self.path,
                    self.footer.index.offset,
                    format!("the seq map does not list block {b} for seq {seq}, which it holds (proofs of it would fail)"),
                ));
            }
        }
        Ok(())
    }

    /// The segment's Insights counters. A segment written before they
    /// existed (index version < 3) has them derived from its records.
    pub fn counters(&self) -> Result<crate::index::counters::Counters> {
        let mut out = crate::index::counters::Counters::default();
        self.visit_counters(|key, minute, _, cell| out.add_cell(key, minute, &cell()))?;
        Ok(out)
    }

    /// Visits the segment's Insights counters cell by cell (see
    /// [`crate::index::counters::visit`]); for a segment older than the
    /// counters, the cells are derived from its records first.
    pub fn visit_counters(
        &self,
        mut f: impl FnMut(&crate::index::counters::SeriesKey, i64, u32, &dyn Fn() -> crate::index::counters::Cell),
    ) -> Result<()> {
        let idx = self.index()?;
        if !idx.layout.has_counters() {
            let derived = self.derive_counters()?;
            for (k, minutes) in &derived.series {
                for (m, c) in minutes {
                    f(k, *m, c.count, &|| c.clone());
                }
            }
            return Ok(());
        }
        let b = self.section_bytes(&self.footer.index, "index")?;
        idx.layout.visit_counters(b, f).map_err(|e| Error::corruption(&self.path, self.footer.index.offset, e))
    }

    /// Counters computed from the records (for segments older than index
    /// version 3): one pass over the blocks.
    fn derive_counters(&self) -> Result<crate::index::counters::Counters> {
        let mut out = crate::index::counters::Counters::default();
        let mut scratch = crate::index::counters::SeriesKey::default();
        for i in 0..self.blocks.len() {
            let block = self.read_block(i)?;
            for j in 0..block.seqs.len() {
                if let Ok(ev) = crate::event::parse_event(block.record(j), crate::limits::RECORD_BYTES_MAX) {
                    out.count(&ev, &mut scratch);
                }
            }
        }
        out.trim();
        Ok(out)
    }

    /// The block holding ordinal `ord`, and the position within it.
    pub fn locate(&self, ord: u32) -> Option<(usize, usize)> {
        let b = self.blocks.partition_point(|m| m.first_ordinal <= ord).checked_sub(1)?;
        let m = &self.blocks[b];
        let pos = (ord - m.first_ordinal) as usize;
        (pos < m.events as usize).then_some((b, pos))
    }

    /// Bytes of the file on disk.
    pub fn file_bytes(&self) -> u64 {
        self.map.len() as u64
    }
}

/// An entry of a version-1/2 id table: (fingerprint, ordinal).
fn fixed_id_entry(e: &[u8]) -> (u32, u32) {
    (u32::from_le_bytes([e[0], e[1], e[2], e[3]]), u32::from_le_bytes([e[4], e[5], e[6], e[7]]))
}

/// Reads `len` bytes at `offset` with pread.
fn pread(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    std::os::unix::fs::FileExt::read_exact_at(file, &mut b, offset).map_err(|e| Error::io("read", path, e))?;
    Ok(b)
}
