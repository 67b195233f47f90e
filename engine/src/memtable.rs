//! The in-memory copy of the active segment's events: what readers see of
//! events that are durable in the WAL but not yet sealed, and what the
//! sealer rewrites into a segment. Appended to only by the commit leader;
//! immutable once handed to the sealer.
//!
//! Records are not copied in: a memtable keeps the buffers they arrived in
//! (each commit request's prepared body, or a recovered WAL file) as shared
//! chunks, and its entries point into them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::event::id_fingerprint;
use crate::index::counters::{Counters, SeriesKey, Tally};
use crate::index::{Attr, ATTR_COUNT};
use crate::merkle::Hash;

/// A buffer that holds records, shared with whoever filled it.
pub type Chunk = Arc<Vec<u8>>;

/// Hash maps keyed by values from records use foldhash, seeded per
/// process: much faster than SipHash, and still not predictable by a
/// sender who would like to force collisions.
type Map<K, V> = HashMap<K, V, RandomState>;

/// What an event carries besides its record.
#[derive(Debug, Clone, Copy)]
pub struct EventMeta {
    pub ingest_ms: u64,
    pub time_ms: i64,
    pub leaf: Hash,
    pub id_fp: Option<u64>,
}

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
    chunks: Vec<Chunk>,
    heads: Map<u64, u32>,
    /// Per attribute: value -> indexes of the entries carrying it,
    /// ascending. EventId is not kept here: `heads` answers it.
    terms: Vec<Map<Box<str>, Vec<u32>>>,
    pub raw_bytes: u64,
    pub min_time_ms: i64,
    pub max_time_ms: i64,
    /// Tile-level Merkle nodes completed by this memtable's leaves:
    /// `(level, index, hash)`, written to tiles at seal.
    pub tile_nodes: Vec<(u32, u64, Hash)>,
    /// Per-minute counters for Insights, written with the segment: those
    /// counted here, and the committed events' tallies, counted when read
    /// (by the seal, or a query), not on the commit path.
    pub counters: Counters,
    tallies: Vec<(u32, Tally<Span>)>,
}

/// A string inside one of the memtable's chunks: (offset, length).
pub type Span = (u32, u32);

/// Where the string `v` sits in a chunk being built, `body`: inside the
/// record `rec` (copied to `body` at `at`) when it borrows from it, else appended to `body`
/// after the record (an unescaped string, a default like "null"; the
/// store's WAL frame takes only its entries' ranges).
pub fn span_in_chunk(v: &str, rec: &[u8], at: usize, body: &mut Vec<u8>) -> Span {
    let (p, r) = (v.as_ptr() as usize, rec.as_ptr() as usize);
    if p >= r && p + v.len() <= r + rec.len() {
        return ((at + p - r) as u32, v.len() as u32);
    }
    let off = body.len();
    body.extend_from_slice(v.as_bytes());
    (off as u32, v.len() as u32)
}

/// Counters still to be counted from tallies (see [`Memtable::counters_in`]).
pub struct UncountedCounters {
    counted: Counters,
    tallies: Vec<(Chunk, Tally<Span>)>,
}

impl UncountedCounters {
    pub fn count(self) -> Counters {
        let mut out = Counters::default();
        self.count_into(&mut out);
        out
    }

    /// Adds these counters to `out`.
    pub fn count_into(self, out: &mut Counters) {
        out.merge(&self.counted);
        let mut scratch = SeriesKey::default();
        for (chunk, t) in &self.tallies {
            let text = |(at, len): Span| chunk.get(at as usize..(at + len) as usize).and_then(|b| std::str::from_utf8(b).ok());
            if let Some(t) = t.try_map(text) {
                out.count_tally(&t, &mut scratch);
            }
        }
    }
}

impl Memtable {
    pub fn new(first_seq: u64) -> Self {
        Self {
            first_seq,
            entries: Vec::new(),
            chunks: Vec::new(),
            heads: Map::default(),
            terms: (0..ATTR_COUNT).map(|_| Map::default()).collect(),
            raw_bytes: 0,
            min_time_ms: i64::MAX,
            max_time_ms: i64::MIN,
            tile_nodes: Vec::new(),
            counters: Counters::default(),
            tallies: Vec::new(),
        }
    }

    /// Adds a committed event's tally, its strings held in `chunk`.
    pub fn add_tally(&mut self, chunk: u32, t: Tally<Span>) {
        self.tallies.push((chunk, t));
    }

    /// What the counters of the events in minutes `[lo, hi)` are made of,
    /// taken cheaply (the chunks are shared): a reader takes it under the
    /// store's lock and counts after; the seal takes every minute.
    pub fn counters_in(&self, lo: i64, hi: i64) -> UncountedCounters {
        let mut counted = Counters::default();
        for (k, minutes) in &self.counters.series {
            for (m, c) in minutes.range(lo..hi) {
                counted.add_cell(k, *m, c);
            }
        }
        let tallies = self
            .tallies
            .iter()
            .filter(|(_, t)| (lo..hi).contains(&t.minute))
            .filter_map(|(c, t)| Some((self.chunks.get(*c as usize)?.clone(), *t)))
            .collect();
        UncountedCounters { counted, tallies }
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

    /// Adds a buffer that later pushed records point into, and returns its
    /// number; adding the same buffer twice in a row adds it once.
    pub fn add_chunk(&mut self, chunk: &Chunk) -> u32 {
        if !self.chunks.last().is_some_and(|c| Arc::ptr_eq(c, chunk)) {
            self.chunks.push(chunk.clone());
        }
        (self.chunks.len() - 1) as u32
    }

    /// Appends one event whose record is `chunk[at..at + len]` (a chunk
    /// number from [`Memtable::add_chunk`]), indexed under `terms`.
    pub fn push<'t>(&mut self, meta: EventMeta, chunk: u32, at: usize, len: usize, terms: impl IntoIterator<Item = (Attr, &'t str)>) {
        let ix = self.entries.len() as u32;
        for (attr, value) in terms {
            if attr == Attr::EventId {
                continue;
            }
            let map = &mut self.terms[attr as usize];
            match map.get_mut(value) {
                Some(v) => v.push(ix),
                None => {
                    map.insert(value.into(), vec![ix]);
                }
            }
        }
        let next_same_id = match meta.id_fp {
            Some(fp) => self.heads.insert(fp, ix).unwrap_or(u32::MAX),
            None => u32::MAX,
        };
        debug_assert!(self.chunks.get(chunk as usize).is_some_and(|c| at + len <= c.len()));
        self.entries.push(MemEntry {
            ingest_ms: meta.ingest_ms,
            time_ms: meta.time_ms,
            leaf: meta.leaf,
            id_fp: meta.id_fp,
            chunk,
            offset: at as u32,
            len: len as u32,
            next_same_id,
        });
        self.raw_bytes += len as u64;
        self.min_time_ms = self.min_time_ms.min(meta.time_ms);
        self.max_time_ms = self.max_time_ms.max(meta.time_ms);
    }

    /// Appends one event, copying its record into a chunk of its own (for
    /// tools and benchmarks; the store shares its buffers instead).
    pub fn push_copy<'t>(&mut self, meta: EventMeta, record: &[u8], terms: impl IntoIterator<Item = (Attr, &'t str)>) {
        let c = self.add_chunk(&Arc::new(record.to_vec()));
        self.push(meta, c, 0, record.len(), terms);
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

    /// Entries carrying (attr, value), ascending. For EventId these are
    /// the entries whose id fingerprint matches: the caller confirms.
    pub fn postings(&self, attr: Attr, value: &str) -> Cow<'_, [u32]> {
        if attr == Attr::EventId {
            let mut v: Vec<u32> = self.find_id(id_fingerprint(value.as_bytes())).map(|i| i as u32).collect();
            v.reverse();
            return Cow::Owned(v);
        }
        self.terms[attr as usize].get(value).map_or(Cow::Borrowed(&[]), |v| Cow::Borrowed(v.as_slice()))
    }

    /// Every value of an attribute with its entries (none for EventId).
    pub fn attr_values(&self, attr: Attr) -> impl Iterator<Item = (&str, &[u32])> + '_ {
        self.terms[attr as usize].iter().map(|(k, v)| (k.as_ref(), v.as_slice()))
    }

    /// Approximate heap bytes held: record chunks, entries, and the id and
    /// term maps (keys, postings and table slots).
    pub fn memory_bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(|c| c.capacity()).sum();
        let terms: usize =
            self.terms.iter().map(|m| m.capacity() * 40 + m.iter().map(|(k, v)| k.len() + v.capacity() * 4).sum::<usize>()).sum();
        chunks
            + self.entries.capacity() * std::mem::size_of::<MemEntry>()
            + self.heads.capacity() * 16
            + terms
            + self.tallies.capacity() * std::mem::size_of::<(u32, Tally<Span>)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the counters of a memtable that holds its events' tallies (one
    // with an escaped string, which lives after the record in its chunk)
    // are those of counting the events themselves.
    #[test]
    fn tallies_count_as_the_events() {
        let mut all = Counters::default();
        let mut mem = Memtable::new(0);
        mem.counters.count(&crate::event::parse_event(&record(0, 0), 1 << 20).unwrap(), &mut SeriesKey::default());
        all.clone_from(&mem.counters);
        let mut scratch = SeriesKey::default();
        for i in 0..300u32 {
            let rec = record(i, i % 7);
            let ev = crate::event::parse_event(&rec, 1 << 20).unwrap();
            all.count(&ev, &mut scratch);
            let t = Tally::of(&ev).unwrap();
            let mut body = rec.clone();
            let tally = t.try_map(|v| Some(span_in_chunk(v, &rec, 0, &mut body))).unwrap();
            let chunk = mem.add_chunk(&Arc::new(body));
            mem.add_tally(chunk, tally);
        }
        assert_eq!(mem.counters_in(i64::MIN, i64::MAX).count(), all);
    }

    fn record(i: u32, user: u32) -> Vec<u8> {
        format!(
            r#"{{"eventTime":"2026-01-01T00:{:02}:00Z","eventSource":"iam.amazonaws.com","eventName":"Op{}","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{{"arn":"arn:aws:iam::111122223333:user/u\u00e9{user}"}},"readOnly":false{}}}"#,
            i % 60,
            i % 3,
            if i.is_multiple_of(4) { r#","errorCode":"AccessDenied""# } else { "" }
        )
        .into_bytes()
    }
}
