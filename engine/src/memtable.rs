//! The in-memory copy of the active segment's events: what readers see of
//! events that are durable in the WAL but not yet sealed, and what the
//! sealer rewrites into a segment. Appended to only by the commit leader;
//! immutable once handed to the sealer.

use std::collections::HashMap;

use crate::index::{Attr, ATTR_COUNT};
use crate::merkle::Hash;

const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// One unsealed event.
#[derive(Debug, Clone)]
pub struct MemEntry {
    pub ingest_ms: u64,
    pub time_ms: i64,
    pub leaf: Hash,
    pub id_fp: Option<u64>,
    chunk: u32,
    offset: u32,
    len: u32,
    /// Index of the previous entry with the same id fingerprint, or u32::MAX.
    next_same_id: u32,
}

/// Events `first_seq .. first_seq + len()`, in seq order.
#[derive(Debug)]
pub struct Memtable {
    pub first_seq: u64,
    entries: Vec<MemEntry>,
    chunks: Vec<Vec<u8>>,
    heads: HashMap<u64, u32>,
    /// Per attribute: value -> indexes of the entries carrying it, ascending.
    terms: Vec<HashMap<Box<str>, Vec<u32>>>,
    pub raw_bytes: u64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// Tile-level Merkle nodes completed by this memtable's leaves:
    /// `(level, index, hash)`, written to tiles at seal.
    pub tile_nodes: Vec<(u32, u64, Hash)>,
}

impl Memtable {
    pub fn new(first_seq: u64) -> Self {
        Self {
            first_seq,
            entries: Vec::new(),
            chunks: Vec::new(),
            heads: HashMap::new(),
            terms: (0..ATTR_COUNT).map(|_| HashMap::new()).collect(),
            raw_bytes: 0,
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
            tile_nodes: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The seq the next pushed event gets.
    pub fn end_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    pub fn push(&mut self, ingest_ms: u64, time_ms: i64, leaf: Hash, id_fp: Option<u64>, record: &[u8], terms: &[(Attr, String)]) {
        let ix = self.entries.len() as u32;
        for (attr, value) in terms {
            let map = &mut self.terms[*attr as usize];
            match map.get_mut(value.as_str()) {
                Some(v) => v.push(ix),
                None => {
                    map.insert(value.as_str().into(), vec![ix]);
                }
            }
        }
        let fits = self.chunks.last().is_some_and(|c| c.capacity() - c.len() >= record.len());
        if !fits {
            self.chunks.push(Vec::with_capacity(CHUNK_BYTES.max(record.len())));
        }
        let chunk_ix = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_ix];
        let offset = chunk.len() as u32;
        chunk.extend_from_slice(record);
        let next_same_id = match id_fp {
            Some(fp) => self.heads.insert(fp, ix).unwrap_or(u32::MAX),
            None => u32::MAX,
        };
        self.entries.push(MemEntry {
            ingest_ms,
            time_ms,
            leaf,
            id_fp,
            chunk: chunk_ix as u32,
            offset,
            len: record.len() as u32,
            next_same_id,
        });
        self.raw_bytes += record.len() as u64;
        self.min_time_ms = self.min_time_ms.min(time_ms);
        self.max_time_ms = self.max_time_ms.max(time_ms);
    }

    pub fn entry(&self, ix: usize) -> &MemEntry {
        &self.entries[ix]
    }

    pub fn entries(&self) -> &[MemEntry] {
        &self.entries
    }

    pub fn record(&self, e: &MemEntry) -> &[u8] {
        let c = &self.chunks[e.chunk as usize];
        &c[e.offset as usize..e.offset as usize + e.len as usize]
    }

    /// Indexes (into `entries`) of events whose id fingerprint is `fp`,
    /// newest first. The caller confirms the id itself.
    pub fn find_id(&self, fp: u64) -> impl Iterator<Item = usize> + '_ {
        let mut cur = self.heads.get(&fp).copied().unwrap_or(u32::MAX);
        std::iter::from_fn(move || {
            if cur == u32::MAX {
                return None;
            }
            let ix = cur as usize;
            cur = self.entries[ix].next_same_id;
            Some(ix)
        })
    }

    /// Entries carrying (attr, value), ascending.
    pub fn postings(&self, attr: Attr, value: &str) -> &[u32] {
        self.terms[attr as usize].get(value).map_or(&[], |v| v.as_slice())
    }

    /// Every value of an attribute with its entries.
    pub fn attr_values(&self, attr: Attr) -> impl Iterator<Item = (&str, &[u32])> + '_ {
        self.terms[attr as usize].iter().map(|(k, v)| (k.as_ref(), v.as_slice()))
    }

    /// Approximate heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>()
            + self.entries.capacity() * std::mem::size_of::<MemEntry>()
            + self.heads.capacity() * 16
    }
}
