//! Sealed segments: immutable files of zstd-compressed blocks sorted by
//! (eventTime, seq), a block index, an eventID table, the Merkle frontier at
//! the segment's end, and a fixed-size footer that chains to the previous
//! segment. Written once by [`writer`], read through memmap2 by [`reader`].
//! Nothing ever modifies a sealed segment in place.
//!
//! Layout (docs/FORMAT.md has the byte tables):
//! `header (64) | block* | block index | id table | frontier | index | footer (320)`

pub mod block;
pub mod builder;
pub mod cache;
pub(crate) mod fields;
pub mod ids;
pub mod reader;
mod sections;
pub mod set;
pub mod writer;

use std::path::Path;

use crate::codec::{crc32, put_i64, put_u16, put_u32, put_u64, Reader};
use crate::error::{Error, Result};
use crate::merkle::Hash;

pub const SEGMENT_MAGIC: &[u8; 8] = b"CAIRNSEG";
pub const FOOTER_MAGIC: &[u8; 8] = b"CAIRNFTR";
/// Version 1: the first. Version 2 adds the footer's chain hash and
/// optional zstd dictionary (compaction). Version 3 packs the blocks (block payload
/// version 2: varint columns, records grouped) and the id table (Rice-coded
/// fingerprints, bit-packed ordinals). Version 4 stores records field by
/// field (block payload version 3, `fields`). Version 5, what this build
/// writes, splits them grouped by principal (block payload version 4).
/// This build reads all five.
pub const SEGMENT_VERSION: u16 = 5;
pub const SEGMENT_VERSION_MAX: u16 = 5;
/// Footer flags (version 2).
pub const FLAG_CHAIN_HASH: u16 = 1;
pub const FLAG_DICTIONARY: u16 = 2;
pub const HEADER_BYTES: usize = 64;
pub const FOOTER_BYTES: usize = 320;
pub const BLOCK_META_BYTES: usize = 48;
/// Bytes per entry of a version-1/2 id table.
pub const ID_ENTRY_BYTES: usize = 8;

/// One block's entry in the block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    pub offset: u64,
    pub compressed_len: u32,
    pub raw_len: u32,
    pub events: u32,
    /// Position of the block's first event in the segment's time order.
    pub first_ordinal: u32,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub crc: u32,
}

impl BlockMeta {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.offset);
        put_u32(out, self.compressed_len);
        put_u32(out, self.raw_len);
        put_u32(out, self.events);
        put_u32(out, self.first_ordinal);
        put_i64(out, self.min_time_ms);
        put_i64(out, self.max_time_ms);
        put_u32(out, self.crc);
        put_u32(out, 0);
    }

    pub fn decode(r: &mut Reader<'_>) -> Option<Self> {
        let m = BlockMeta {
            offset: r.u64()?,
            compressed_len: r.u32()?,
            raw_len: r.u32()?,
            events: r.u32()?,
            first_ordinal: r.u32()?,
            min_time_ms: r.i64()?,
            max_time_ms: r.i64()?,
            crc: r.u32()?,
        };
        r.u32()?;
        Some(m)
    }
}

/// A byte range of the file and its checksum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Section {
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

/// The fixed-size footer: everything needed to open the segment without
/// reading its blocks, and its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// The segment format version (1 to [`SEGMENT_VERSION_MAX`]).
    pub version: u16,
    pub first_seq: u64,
    pub count: u64,
    pub block_count: u32,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    pub min_ingest_ms: u64,
    pub max_ingest_ms: u64,
    pub raw_bytes: u64,
    pub block_index: Section,
    pub id_table: Section,
    pub frontier: Section,
    /// The time-partitioned index (`index` module).
    pub index: Section,
    /// RFC 6962 root over this segment's leaves alone.
    pub segment_root: Hash,
    /// Size of the whole tree at this segment's end (= first_seq + count).
    pub tree_size: u64,
    /// Root of the whole tree at that size.
    pub tree_root: Hash,
    /// The link hash ([`Footer::link_hash`]) of the previous segment; zero
    /// for the first.
    pub prev_segment_hash: Hash,
    /// Version 2: the hash that the next segment links to, when it is not
    /// this footer's own hash: a segment written by compaction carries the
    /// link hash of the last segment it replaced, so the chain still holds
    /// from the segments sealed after it.
    pub chain_hash: Option<Hash>,
    /// Version 2: the zstd dictionary the blocks are compressed with.
    pub dictionary: Option<Section>,
}

impl Footer {
    /// The segment format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The block payload version its blocks use (`block`).
    pub fn payload_version(&self) -> u16 {
        match self.version {
            5.. => 4,
            4 => 3,
            3 => 2,
            _ => 1,
        }
    }

    fn flags(&self) -> u16 {
        (if self.chain_hash.is_some() { FLAG_CHAIN_HASH } else { 0 }) | (if self.dictionary.is_some() { FLAG_DICTIONARY } else { 0 })
    }

    /// What the next segment's `prev_segment_hash` must equal.
    pub fn link_hash(&self) -> Hash {
        self.chain_hash.unwrap_or_else(|| self.hash())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(FOOTER_BYTES);
        o.extend_from_slice(FOOTER_MAGIC);
        put_u16(&mut o, self.version());
        put_u16(&mut o, self.flags());
        put_u32(&mut o, self.block_count);
        put_u64(&mut o, self.first_seq);
        put_u64(&mut o, self.count);
        put_i64(&mut o, self.min_time_ms);
        put_i64(&mut o, self.max_time_ms);
        put_u64(&mut o, self.min_ingest_ms);
        put_u64(&mut o, self.max_ingest_ms);
        put_u64(&mut o, self.raw_bytes);
        for s in [&self.block_index, &self.id_table, &self.frontier, &self.index] {
            put_u64(&mut o, s.offset);
            put_u64(&mut o, s.len);
            put_u32(&mut o, s.crc);
        }
        put_u64(&mut o, self.tree_size);
        o.extend_from_slice(&self.segment_root);
        o.extend_from_slice(&self.tree_root);
        o.extend_from_slice(&self.prev_segment_hash);
        o.extend_from_slice(&self.chain_hash.unwrap_or([0; 32]));
        let d = self.dictionary.unwrap_or_default();
        put_u64(&mut o, d.offset);
        put_u64(&mut o, d.len);
        put_u32(&mut o, d.crc);
        o.resize(FOOTER_BYTES - 4, 0);
        let crc = crc32(&[&o]);
        put_u32(&mut o, crc);
        o
    }

    pub fn decode(path: &Path, file_offset: u64, b: &[u8]) -> Result<Self> {
        let bad = |what: &str| Error::corruption(path, file_offset, format!("segment footer: {what}"));
        if b.len() != FOOTER_BYTES || &b[..8] != FOOTER_MAGIC {
            return Err(bad("missing or bad magic (truncated or not a cairn segment)"));
        }
        let stored_crc = u32::from_le_bytes(b[FOOTER_BYTES - 4..].try_into().unwrap_or_default());
        if crc32(&[&b[..FOOTER_BYTES - 4]]) != stored_crc {
            return Err(bad("checksum mismatch"));
        }
        let mut r = Reader::new(&b[8..]);
        let version = r.u16().ok_or_else(|| bad("short"))?;
        if !(1..=SEGMENT_VERSION_MAX).contains(&version) {
            return Err(Error::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: SEGMENT_VERSION_MAX });
        }
        let f = Self::decode_fields(&mut r, version).ok_or_else(|| bad("short"))?;
        if version == 1 && (f.chain_hash.is_some() || f.dictionary.is_some()) {
            return Err(bad("its version does not match the fields it uses"));
        }
        Ok(f)
    }

    fn decode_fields(r: &mut Reader<'_>, version: u16) -> Option<Self> {
        let flags = r.u16()?;
        let block_count = r.u32()?;
        let first_seq = r.u64()?;
        let count = r.u64()?;
        let min_time_ms = r.i64()?;
        let max_time_ms = r.i64()?;
        let min_ingest_ms = r.u64()?;
        let max_ingest_ms = r.u64()?;
        let raw_bytes = r.u64()?;
        let mut sec = || -> Option<Section> { Some(Section { offset: r.u64()?, len: r.u64()?, crc: r.u32()? }) };
        let (block_index, id_table, frontier, index) = (sec()?, sec()?, sec()?, sec()?);
        Some(Footer {
            version,
            first_seq,
            count,
            block_count,
            min_time_ms,
            max_time_ms,
            min_ingest_ms,
            max_ingest_ms,
            raw_bytes,
            block_index,
            id_table,
            frontier,
            index,
            tree_size: r.u64()?,
            segment_root: r.array()?,
            tree_root: r.array()?,
            prev_segment_hash: r.array()?,
            chain_hash: {
                let h: Hash = r.array()?;
                (version >= 2 && flags & FLAG_CHAIN_HASH != 0).then_some(h)
            },
            dictionary: {
                let d = Section { offset: r.u64()?, len: r.u64()?, crc: r.u32()? };
                (version >= 2 && flags & FLAG_DICTIONARY != 0).then_some(d)
            },
        })
    }

    /// The segment's hash in the chain: SHA-256 of its encoded footer.
    pub fn hash(&self) -> Hash {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.encode()).into()
    }
}

pub fn encode_header(first_seq: u64, count: u64, version: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_BYTES);
    h.extend_from_slice(SEGMENT_MAGIC);
    put_u16(&mut h, version);
    put_u16(&mut h, 0);
    put_u32(&mut h, 0);
    put_u64(&mut h, first_seq);
    put_u64(&mut h, count);
    h.resize(HEADER_BYTES - 4, 0);
    let crc = crc32(&[&h]);
    put_u32(&mut h, crc);
    h
}

/// One decoded block: columns of its events, in (time, seq) order.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub seqs: Vec<u64>,
    pub ingest_ms: Vec<u64>,
    pub time_ms: Vec<i64>,
    /// Record `i` is `data[spans[i].0..spans[i].1]`.
    pub spans: Vec<(usize, usize)>,
    pub data: Vec<u8>,
}

impl Block {
    pub fn len(&self) -> usize {
        self.seqs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }
    pub fn record(&self, i: usize) -> &[u8] {
        &self.data[self.spans[i].0..self.spans[i].1]
    }
}
