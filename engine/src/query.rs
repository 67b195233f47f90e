//! Queries: LookupEvents semantics and beyond.
//!
//! A query is a time range (inclusive), any number of lookup attributes
//! combined with AND (several values of one attribute combine with OR),
//! newest first (or oldest first for export). It runs over a snapshot: the
//! sealed segments whose time span overlaps the range (their partitions and
//! postings narrow each to candidate ordinals), the sealing memtables, and
//! the active memtable's matches, merged by (eventTime, seq). Pages are
//! cut by an opaque token that records the query's fingerprint, the
//! snapshot's tree size, and the last (eventTime, seq) returned, so paging
//! never repeats or skips an event while new ones arrive.
//!
//! This module only reads; it never changes the store.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::event::StoredEvent;
use crate::event::{id_fingerprint, parse_event};
use crate::index::{Attr, IndexView};
use crate::limits::RECORD_BYTES_MAX;
use crate::memtable::Memtable;
use crate::segment::cache::BlockCache;
use crate::segment::reader::Segment;

/// Page size when none is given (CloudTrail's).
pub const MAX_RESULTS_DEFAULT: usize = 50;
/// The largest page a caller may ask for.
pub const MAX_RESULTS_MAX: usize = 10_000;
/// A page ends once its records reach this many bytes, even below
/// `max_results` (its NextToken continues): with one more record of at most
/// [`RECORD_BYTES_MAX`] and 10,000 events' framing, every page fits a
/// 16 MiB protocol frame.
pub const PAGE_RECORD_BYTES_MAX: usize = 14 << 20;
/// Longest attribute value accepted (CloudTrail's AttributeValue limit).
pub const ATTRIBUTE_VALUE_CHARS_MAX: usize = 2_000;
/// Most attribute values in one query, over all attributes.
pub const ATTRIBUTE_VALUES_MAX: usize = 256;

/// What to look up. Times are unix milliseconds, inclusive; `None` is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// AND across entries; OR across the values of one entry.
    pub filters: Vec<(Attr, Vec<String>)>,
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// One page of results.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub events: Vec<StoredEvent>,
    /// Present if and only if more results may follow.
    pub next_token: Option<String>,
}

/// Query errors, named after CloudTrail's exceptions.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    InvalidTimeRange(String),
    InvalidLookupAttributes(String),
    InvalidMaxResults(String),
    InvalidNextToken(String),
    Store(Error),
}

impl QueryError {
    /// What is wrong, without the code (for protocols that carry the code
    /// beside the message).
    pub fn message(&self) -> String {
        match self {
            QueryError::InvalidTimeRange(m)
            | QueryError::InvalidLookupAttributes(m)
            | QueryError::InvalidMaxResults(m)
            | QueryError::InvalidNextToken(m) => m.clone(),
            QueryError::Store(e) => e.to_string(),
        }
    }

    /// CloudTrail's exception name for the error.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidTimeRange(_) => "InvalidTimeRangeException",
            QueryError::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            QueryError::InvalidMaxResults(_) => "InvalidMaxResultsException",
            QueryError::InvalidNextToken(_) => "InvalidNextTokenException",
            QueryError::Store(_) => "InternalFailure",
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::InvalidTimeRange(m)
            | QueryError::InvalidLookupAttributes(m)
            | QueryError::InvalidMaxResults(m)
            | QueryError::InvalidNextToken(m) => write!(f, "{}: {m}", self.code()),
            QueryError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for QueryError {}

impl From<Error> for QueryError {
    fn from(e: Error) -> Self {
        QueryError::Store(e)
    }
}

pub type QueryResult<T> = std::result::Result<T, QueryError>;

/// EventCategory values as records spell them. LookupEvents documents
/// `EventCategory=insight` in lower case; values are matched without case.
const EVENT_CATEGORIES: [&str; 5] = ["Management", "Data", "Insight", "NetworkActivity", "Aggregated"];

impl Query {
    /// The query with EventCategory values spelled as records spell them
    /// (`insight` -> `Insight`); every other value is matched exactly.
    pub fn canonical(&self) -> std::borrow::Cow<'_, Query> {
        let fix = |a: &Attr, v: &String| -> Option<&'static str> {
            (*a == Attr::EventCategory).then(|| EVENT_CATEGORIES.into_iter().find(|c| c.eq_ignore_ascii_case(v) && c != v)).flatten()
        };
        if !self.filters.iter().any(|(a, vs)| vs.iter().any(|v| fix(a, v).is_some())) {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut q = self.clone();
        for (a, vs) in &mut q.filters {
            for v in vs.iter_mut() {
                if let Some(c) = fix(a, v) {
                    *v = c.to_string();
                }
            }
        }
        std::borrow::Cow::Owned(q)
    }

    /// Checks the query against CloudTrail's rules and our limits.
    pub fn validate(&self) -> QueryResult<()> {
        if let (Some(s), Some(e)) = (self.start_ms, self.end_ms) {
            if s > e {
                return Err(QueryError::InvalidTimeRange(format!(
                    "start time {} is after end time {}",
                    crate::event::format_event_time_ms(s),
                    crate::event::format_event_time_ms(e)
                )));
            }
        }
        let mut total = 0;
        for (attr, values) in &self.filters {
            if values.is_empty() {
                return Err(QueryError::InvalidLookupAttributes(format!("attribute {} has no value", attr.name())));
            }
            for v in values {
                let n = v.chars().count();
                if n == 0 || n > ATTRIBUTE_VALUE_CHARS_MAX {
                    return Err(QueryError::InvalidLookupAttributes(format!(
                        "the value of {} must be 1 to {ATTRIBUTE_VALUE_CHARS_MAX} characters, not {n}",
                        attr.name()
                    )));
                }
                total += 1;
            }
        }
        if total > ATTRIBUTE_VALUES_MAX {
            return Err(QueryError::InvalidLookupAttributes(format!(
                "{total} attribute values given; the limit is {ATTRIBUTE_VALUES_MAX}"
            )));
        }
        Ok(())
    }

    fn start(&self) -> i64 {
        self.start_ms.unwrap_or(i64::MIN)
    }

    fn end(&self) -> i64 {
        self.end_ms.unwrap_or(i64::MAX)
    }

    /// A fingerprint of the query's parameters, which binds page tokens.
    fn fingerprint(&self, order: Order) -> u64 {
        let mut filters: Vec<(u8, Vec<&str>)> = self
            .filters
            .iter()
            .map(|(a, vs)| {
                let mut v: Vec<&str> = vs.iter().map(String::as_str).collect();
                v.sort_unstable();
                v.dedup();
                (*a as u8, v)
            })
            .collect();
        filters.sort();
        let mut canon = format!("{:?}|{:?}|{}|", self.start_ms, self.end_ms, order == Order::NewestFirst);
        for (a, vs) in filters {
            canon.push_str(&format!("{a}={};", vs.join("\u{1f}")));
        }
        id_fingerprint(canon.as_bytes())
    }
}

/// The opaque page token's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    fingerprint: u64,
    /// Events with seq >= bound are not part of the snapshot.
    bound: u64,
    last_time: i64,
    last_seq: u64,
    /// When the first page was served (unix ms): lets clients resolve
    /// relative times ("7d") the same way on every page.
    pub created_ms: i64,
}

const TOKEN_VERSION: u8 = 1;

impl Token {
    fn encode(&self) -> String {
        let mut b = Vec::with_capacity(45);
        b.push(TOKEN_VERSION);
        b.extend_from_slice(&self.fingerprint.to_le_bytes());
        b.extend_from_slice(&self.bound.to_le_bytes());
        b.extend_from_slice(&self.last_time.to_le_bytes());
        b.extend_from_slice(&self.last_seq.to_le_bytes());
        b.extend_from_slice(&self.created_ms.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub(crate) fn decode(s: &str) -> QueryResult<Token> {
        let bad = |why: &str| QueryError::InvalidNextToken(format!("the page token is not valid ({why})"));
        if s.len() != 90 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("malformed"));
        }
        let b: Vec<u8> = (0..45).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0)).collect();
        let crc = u32::from_le_bytes(b[41..45].try_into().unwrap_or_default());
        if crc32fast::hash(&b[..41]) != crc {
            return Err(bad("checksum mismatch"));
        }
        if b[0] != TOKEN_VERSION {
            return Err(bad("unknown version"));
        }
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Ok(Token { fingerprint: u(1), bound: u(9), last_time: u(17) as i64, last_seq: u(25), created_ms: u(33) as i64 })
    }
}

/// When a page token was first issued (unix ms), for resolving relative
/// times consistently across pages; an error if the token is malformed.
pub fn token_created_ms(token: &str) -> QueryResult<i64> {
    Token::decode(token).map(|t| t.created_ms)
}

/// Everything a query reads, taken at one instant.
pub(crate) struct Snapshot {
    pub segments: Arc<crate::segment::set::SegmentSet>,
    pub memtables: Vec<Arc<Memtable>>,
    /// Matches of the active memtable, copied under its lock.
    pub active: Vec<StoredEvent>,
    /// Tree size at the snapshot: events with seq >= bound are excluded.
    pub bound: u64,
    /// Most events the caller will take (a page's size, or unbounded).
    pub limit: usize,
}

/// A position in result order: (eventTime, seq).
type Key = (i64, u64);

/// Merge heap entry: (min-heap key, max-heap key, source index); only one
/// of the two keys is set, by the order.
type HeapEntry = (Reverse<Key>, Key, usize);

/// The candidates of one source, yielding events in result order.
trait Source {
    fn peek(&mut self) -> Result<Option<Key>, Error>;
    fn take(&mut self) -> Result<Option<StoredEvent>, Error>;
}

struct VecSource {
    events: Vec<StoredEvent>,
    pos: usize,
}

impl Source for VecSource {
    fn peek(&mut self) -> Result<Option<Key>, Error> {
        Ok(self.events.get(self.pos).map(|e| (e.time_ms, e.seq)))
    }
    fn take(&mut self) -> Result<Option<StoredEvent>, Error> {
        let e = self.events.get(self.pos).cloned();
        self.pos += 1;
        Ok(e)
    }
}

/// Candidate ordinals of a segment, in result order.
enum Candidates {
    Range(std::ops::Range<u32>),
    List(Vec<u32>),
}

struct SegmentSource<'a> {
    seg: Arc<Segment>,
    cache: &'a BlockCache,
    cands: Candidates,
    /// Next position in `cands` (counting in result order).
    pos: usize,
    desc: bool,
    filter: &'a Filter,
    /// Candidates (ascending) from rare-value tables: their records are
    /// confirmed.
    unsure: Vec<u32>,
    head: Option<(Key, StoredEvent)>,
}

/// The per-event checks postings cannot do: exact time bounds, the
/// snapshot bound, the cursor, eventID confirmation, and the confirmation
/// of candidates from rare-value tables (`unsure`).
struct Filter {
    start: i64,
    end: i64,
    bound: u64,
    desc: bool,
    cursor: Option<Key>,
    ids: Option<Vec<String>>,
    rare: Vec<(Attr, Vec<String>)>,
}

impl Filter {
    fn admits(&self, key: Key, record: &[u8], unsure: bool) -> bool {
        if unsure && !has_terms(&self.rare, record) {
            return false;
        }
        if key.0 < self.start || key.0 > self.end || key.1 >= self.bound {
            return false;
        }
        if let Some(c) = self.cursor {
            if (self.desc && key >= c) || (!self.desc && key <= c) {
                return false;
            }
        }
        match &self.ids {
            None => true,
            Some(ids) => parse_event(record, RECORD_BYTES_MAX).ok().and_then(|e| e.event_id).is_some_and(|id| ids.iter().any(|x| *x == id)),
        }
    }
}

impl Candidates {
    fn len(&self) -> usize {
        match self {
            Candidates::Range(r) => r.len(),
            Candidates::List(v) => v.len(),
        }
    }
    fn get(&self, i: usize, desc: bool) -> u32 {
        let n = self.len();
        let j = if desc { n - 1 - i } else { i };
        match self {
            Candidates::Range(r) => r.start + j as u32,
            Candidates::List(v) => v[j],
        }
    }
}

impl SegmentSource<'_> {
    fn fill(&mut self) -> Result<(), Error> {
        while self.head.is_none() && self.pos < self.cands.len() {
            let ord = self.cands.get(self.pos, self.desc);
            self.pos += 1;
            let Some((b, i)) = self.seg.locate(ord) else {
                return Err(Error::corruption(&self.seg.path, 0, format!("ordinal {ord} is outside the segment")));
            };
            let block = self.cache.get(&self.seg, b)?;
            let key = (block.time_ms[i], block.seqs[i]);
            if self.filter.admits(key, block.record(i), self.unsure.binary_search(&ord).is_ok()) {
                let ev = StoredEvent {
                    seq: block.seqs[i],
                    ingest_ms: block.ingest_ms[i],
                    time_ms: block.time_ms[i],
                    record: block.record(i).to_vec(),
                };
                self.head = Some((key, ev));
            }
        }
        Ok(())
    }
}

impl Source for SegmentSource<'_> {
    fn peek(&mut self) -> Result<Option<Key>, Error> {
        self.fill()?;
        Ok(self.head.as_ref().map(|h| h.0))
    }
    fn take(&mut self) -> Result<Option<StoredEvent>, Error> {
        self.fill()?;
        Ok(self.head.take().map(|h| h.1))
    }
}

/// First ordinal whose time is >= `t` (`time_after`: > `t`).
fn ordinal_at(seg: &Segment, cache: &BlockCache, t: i64, time_after: bool) -> Result<u32, Error> {
    let before = |x: i64| if time_after { x <= t } else { x < t };
    // Blocks are in time order: find the first whose max does not precede t.
    let b = seg.blocks.partition_point(|m| before(m.max_time_ms));
    let Some(m) = seg.blocks.get(b) else { return Ok(seg.footer.count as u32) };
    if !before(m.min_time_ms) {
        return Ok(m.first_ordinal);
    }
    let block = cache.get(seg, b)?;
    Ok(m.first_ordinal + block.time_ms.partition_point(|&x| before(x)) as u32)
}

/// The segment's ordinals within [start, end] (exact).
fn ordinal_range(seg: &Segment, cache: &BlockCache, start: i64, end: i64) -> Result<std::ops::Range<u32>, Error> {
    let lo = if start <= seg.footer.min_time_ms { 0 } else { ordinal_at(seg, cache, start, false)? };
    let hi = if end >= seg.footer.max_time_ms { seg.footer.count as u32 } else { ordinal_at(seg, cache, end, true)? };
    Ok(lo..hi.max(lo))
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Ordinals of a segment that may match every filter, ascending, and those
/// of them that came from rare-value tables and need their record read.
#[derive(Default)]
struct Matches {
    ordinals: Vec<u32>,
    unsure: Vec<u32>,
}

/// Ordinals of a segment matching every filter within `range`, ascending.
fn segment_matches(
    seg: &Segment,
    idx: &IndexView<'_>,
    filters: &[(Attr, Vec<String>)],
    range: std::ops::Range<u32>,
) -> Result<Matches, Error> {
    let mut out = Vec::new();
    let bad = |what: &str| Error::corruption(&seg.path, seg.footer.index.offset, format!("index postings: {what}"));
    let mut rare = Vec::new();
    for (attr, values) in filters.iter().filter(|(a, _)| idx.has_rare(*a)) {
        for v in values {
            rare.extend(idx.rare_candidates(*attr, v).map_err(|e| bad(&e))?);
        }
    }
    rare.sort_unstable();
    rare.dedup();
    for p in &idx.layout.partitions {
        let (plo, phi) = (p.first_ordinal, p.first_ordinal + p.count);
        if phi <= range.start || plo >= range.end {
            continue;
        }
        let mut acc: Option<Vec<u32>> = None;
        for (attr, values) in filters {
            let mut union = Vec::new();
            for v in values {
                if *attr == Attr::EventId {
                    union.extend(seg.find_id(id_fingerprint(v.as_bytes()))?.into_iter().filter(|o| (plo..phi).contains(o)));
                } else if let Some(t) = idx.find(p, *attr, v) {
                    t.ordinals(p, &mut union).ok_or_else(|| bad("malformed"))?;
                }
            }
            if idx.has_rare(*attr) {
                union.extend(rare.iter().copied().filter(|o| (plo..phi).contains(o)));
            }
            union.sort_unstable();
            union.dedup();
            let next = match acc {
                None => union,
                Some(a) => intersect(&a, &union),
            };
            let empty = next.is_empty();
            acc = Some(next);
            if empty {
                break;
            }
        }
        if let Some(a) = acc {
            out.extend(a.into_iter().filter(|o| range.contains(o)));
        }
    }
    let unsure = intersect(&rare, &out);
    Ok(Matches { ordinals: out, unsure })
}

/// The filters on attributes with rare-value tables.
fn rare_filters(q: &Query) -> Vec<(Attr, Vec<String>)> {
    q.filters.iter().filter(|(a, _)| crate::index::RARE_ATTRS.contains(a)).cloned().collect()
}

/// Whether a record carries, for every filter, one of its values.
fn has_terms(filters: &[(Attr, Vec<String>)], record: &[u8]) -> bool {
    let Ok(ev) = parse_event(record, RECORD_BYTES_MAX) else { return false };
    let terms = crate::index::terms(&ev);
    filters.iter().all(|(attr, values)| terms.iter().any(|(a, v)| a == attr && values.iter().any(|x| x == v)))
}

/// Entries of a memtable matching the filters (ascending entry indexes),
/// or `None` for "all entries" (no filters).
pub(crate) fn memtable_matches(m: &Memtable, filters: &[(Attr, Vec<String>)]) -> Option<Vec<u32>> {
    let mut acc: Option<Vec<u32>> = None;
    for (attr, values) in filters {
        let mut union: Vec<u32> = Vec::new();
        for v in values {
            union.extend_from_slice(&m.postings(*attr, v));
        }
        union.sort_unstable();
        union.dedup();
        acc = Some(match acc {
            None => union,
            Some(a) => intersect(&a, &union),
        });
    }
    acc
}

/// A memtable's matching events in result order (cursor and bounds applied).
/// At most `limit` of them: no page can take more from one source.
pub(crate) fn memtable_events(
    m: &Memtable,
    q: &Query,
    filter_bound: u64,
    desc: bool,
    cursor: Option<Key>,
    limit: usize,
) -> Vec<StoredEvent> {
    let (start, end) = (q.start(), q.end());
    let ids: Vec<&String> = q.filters.iter().filter(|(a, _)| *a == Attr::EventId).flat_map(|(_, v)| v).collect();
    let mut keys: Vec<(Key, usize)> = Vec::new();
    let mut pick = |i: usize| {
        let e = m.entry(i);
        let key = (e.time_ms, m.first_seq + i as u64);
        let in_cursor = cursor.is_none_or(|c| if desc { key < c } else { key > c });
        if e.time_ms >= start && e.time_ms <= end && key.1 < filter_bound && in_cursor {
            keys.push((key, i));
        }
    };
    match memtable_matches(m, &q.filters) {
        Some(ix) => ix.into_iter().for_each(|i| pick(i as usize)),
        None => (0..m.len()).for_each(&mut pick),
    }
    keys.sort_unstable_by_key(|k| k.0);
    if desc {
        keys.reverse();
    }
    keys.truncate(limit);
    keys.into_iter()
        .map(|(key, i)| {
            let e = m.entry(i);
            StoredEvent { seq: key.1, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: m.record(e).to_vec() }
        })
        .filter(|e| ids.is_empty() || confirm_ids(&q.filters, &e.record))
        .collect()
}

/// Runs a query over a snapshot, calling `emit` for each event in order
/// until it returns `false` or the events run out. Returns the last key
/// emitted and whether more events remain.
pub(crate) fn run(
    snap: &Snapshot,
    cache: &BlockCache,
    q: &Query,
    order: Order,
    cursor: Option<Key>,
    mut emit: impl FnMut(StoredEvent) -> bool,
) -> Result<(Option<Key>, bool), Error> {
    let desc = order == Order::NewestFirst;
    let (start, end) = (q.start(), q.end());
    let ids: Vec<String> = q.filters.iter().filter(|(a, _)| *a == Attr::EventId).flat_map(|(_, v)| v.clone()).collect();
    let filter = Filter { start, end, bound: snap.bound, desc, cursor, ids: (!ids.is_empty()).then_some(ids), rare: rare_filters(q) };
    // Narrow by the cursor's time too: nothing beyond it can qualify.
    let (lo_t, hi_t) = match (cursor, desc) {
        (Some(c), true) => (start, end.min(c.0)),
        (Some(c), false) => (start.max(c.0), end),
        (None, _) => (start, end),
    };

    let mut sources: Vec<Box<dyn Source + '_>> = Vec::new();
    for m in &snap.memtables {
        sources.push(Box::new(VecSource { events: memtable_events(m, q, snap.bound, desc, cursor, snap.limit), pos: 0 }));
    }
    sources.push(Box::new(VecSource { events: snap.active.clone(), pos: 0 }));

    // Segments are activated lazily, in the order their time spans could
    // first contribute, so a query touching recent events reads few blocks.
    let mut pending: Vec<&Arc<Segment>> = snap
        .segments
        .iter()
        .filter(|s| s.footer.max_time_ms >= lo_t && s.footer.min_time_ms <= hi_t && s.footer.first_seq < snap.bound)
        .collect();
    if desc {
        pending.sort_by_key(|s| Reverse(s.footer.max_time_ms));
    } else {
        pending.sort_by_key(|s| s.footer.min_time_ms);
    }
    let mut pending = pending.into_iter().peekable();

    let mut heap: BinaryHeap<HeapEntry> = BinaryHeap::new();
    let push = |heap: &mut BinaryHeap<_>, i: usize, key: Key| {
        // Max-heap on the key for newest-first, min-heap for oldest-first.
        if desc {
            heap.push((Reverse((0, 0)), key, i));
        } else {
            heap.push((Reverse(key), (0, 0), i));
        }
    };
    for (i, src) in sources.iter_mut().enumerate() {
        if let Some(k) = src.peek()? {
            push(&mut heap, i, k);
        }
    }
    let mut last = None;
    loop {
        // Activate every segment that could hold the next event.
        while let Some(seg) = pending.peek() {
            let top = heap.peek().map(|(Reverse(a), b, _)| if desc { b.0 } else { a.0 });
            let could = match top {
                None => true,
                Some(t) => {
                    if desc {
                        seg.footer.max_time_ms >= t
                    } else {
                        seg.footer.min_time_ms <= t
                    }
                }
            };
            if !could {
                break;
            }
            let seg = (*seg).clone();
            pending.next();
            let range = ordinal_range(&seg, cache, lo_t, hi_t)?;
            if range.is_empty() {
                continue;
            }
            let (cands, unsure) = if q.filters.is_empty() {
                (Candidates::Range(range), Vec::new())
            } else {
                let idx = seg.index()?;
                let m = segment_matches(&seg, &idx, &q.filters, range)?;
                (Candidates::List(m.ordinals), m.unsure)
            };
            let mut src = SegmentSource { seg, cache, cands, pos: 0, desc, filter: &filter, unsure, head: None };
            if let Some(k) = src.peek()? {
                sources.push(Box::new(src));
                push(&mut heap, sources.len() - 1, k);
            }
        }
        let Some((_, _, i)) = heap.pop() else { return Ok((last, false)) };
        let Some(ev) = sources[i].take()? else { continue };
        let key = (ev.time_ms, ev.seq);
        if let Some(k) = sources[i].peek()? {
            push(&mut heap, i, k);
        }
        last = Some(key);
        if !emit(ev) {
            let more = !heap.is_empty() || pending.peek().is_some();
            return Ok((last, more));
        }
    }
}

/// Builds the page for a lookup: validates, resolves the token, runs.
pub(crate) fn lookup(
    snap_for: impl FnOnce(Option<u64>, Option<Key>, usize) -> Snapshot,
    cache: &BlockCache,
    q: &Query,
    max_results: Option<usize>,
    token: Option<&str>,
    now_ms: i64,
) -> QueryResult<Page> {
    q.validate()?;
    let max = max_results.unwrap_or(MAX_RESULTS_DEFAULT);
    if max == 0 || max > MAX_RESULTS_MAX {
        return Err(QueryError::InvalidMaxResults(format!("max results must be between 1 and {MAX_RESULTS_MAX}, not {max}")));
    }
    let fingerprint = q.fingerprint(Order::NewestFirst);
    let tok = token.map(Token::decode).transpose()?;
    if let Some(t) = &tok {
        if t.fingerprint != fingerprint {
            return Err(QueryError::InvalidNextToken("the page token belongs to a query with other parameters".into()));
        }
    }
    let cursor = tok.map(|t| (t.last_time, t.last_seq));
    let snap = snap_for(tok.map(|t| t.bound), cursor, max + 1);
    let mut events = Vec::with_capacity(max.min(1024));
    let mut bytes = 0usize;
    let (last, more) = run(&snap, cache, q, Order::NewestFirst, cursor, |e| {
        bytes += e.record.len();
        events.push(e);
        events.len() < max && bytes < PAGE_RECORD_BYTES_MAX
    })?;
    let next_token = match (more, last) {
        (true, Some((t, s))) => Some(
            Token { fingerprint, bound: snap.bound, last_time: t, last_seq: s, created_ms: tok.map_or(now_ms, |t| t.created_ms) }.encode(),
        ),
        _ => None,
    };
    Ok(Page { events, next_token })
}

/// Counts matching events grouped by `by`, largest first.
pub(crate) fn count(snap: &Snapshot, cache: &BlockCache, q: &Query, by: Attr) -> QueryResult<Vec<(String, u64)>> {
    q.validate()?;
    if by == Attr::EventId {
        return Err(QueryError::InvalidLookupAttributes("counting by EventId is not supported: every event has its own".into()));
    }
    let (start, end) = (q.start(), q.end());
    let mut counts: Counts = Counts::default();
    let has_ids = q.filters.iter().any(|(a, _)| *a == Attr::EventId);
    for seg in snap.segments.iter().filter(|s| s.footer.max_time_ms >= start && s.footer.min_time_ms <= end) {
        let idx = seg.index()?;
        // A whole segment without filters: its totals table (index v5).
        let whole = seg.footer.min_time_ms >= start && seg.footer.max_time_ms <= end;
        if whole && q.filters.is_empty() {
            if let Some(totals) = idx.totals(by) {
                totals.for_each(|(value, n)| add_count(&mut counts, value, n));
                continue;
            }
        }
        let range = ordinal_range(seg, cache, start, end)?;
        if range.is_empty() {
            continue;
        }
        // The events to count: the whole range (no filters), or the
        // matches, confirmed by their records where the index cannot be
        // sure (eventIDs, rare-value candidates).
        let matches: Option<Vec<u32>> = if q.filters.is_empty() {
            None
        } else {
            let m = segment_matches(seg, &idx, &q.filters, range.clone())?;
            let mut ords = m.ordinals;
            if has_ids || !m.unsure.is_empty() {
                let rare = rare_filters(q);
                let mut keep = Vec::with_capacity(ords.len());
                for o in ords {
                    let unsure = m.unsure.binary_search(&o).is_ok();
                    let ok = (!has_ids && !unsure)
                        || with_record(seg, cache, o, |r| (!has_ids || confirm_ids(&q.filters, r)) && (!unsure || has_terms(&rare, r)))?;
                    if ok {
                        keep.push(o);
                    }
                }
                ords = keep;
            }
            Some(ords)
        };
        for p in &idx.layout.partitions {
            let (plo, phi) = (p.first_ordinal, p.first_ordinal + p.count);
            if phi <= range.start || plo >= range.end {
                continue;
            }
            let whole = plo >= range.start && phi <= range.end;
            match &matches {
                None if whole => {
                    // Answered from the term table alone: no postings decoded.
                    for t in idx.attr_terms(p, by) {
                        let t = idx.term(t);
                        add_count(&mut counts, t.value, u64::from(t.count));
                    }
                }
                None => {
                    let m: Vec<u32> = (plo.max(range.start)..phi.min(range.end)).collect();
                    count_terms_in(seg, &idx, p, by, &m, &mut counts)?;
                }
                Some(m) => {
                    let (lo, hi) = (m.partition_point(|&o| o < plo), m.partition_point(|&o| o < phi));
                    count_terms_in(seg, &idx, p, by, &m[lo..hi], &mut counts)?;
                }
            }
        }
        if idx.has_rare(by) {
            // Values on one event of their partition are not terms: read
            // their records.
            let bad = |e: String| Error::corruption(&seg.path, seg.footer.index.offset, e);
            let mut ords = idx.rare_ordinals(by).map_err(bad)?;
            ords.dedup();
            ords.retain(|o| range.contains(o) && matches.as_ref().is_none_or(|m| m.binary_search(o).is_ok()));
            for o in ords {
                let pi = idx.layout.partitions.partition_point(|p| p.first_ordinal + p.count <= o);
                let Some(p) = idx.layout.partitions.get(pi) else { continue };
                let values = with_record(seg, cache, o, |r| match parse_event(r, RECORD_BYTES_MAX) {
                    Ok(ev) => crate::index::terms(&ev).into_iter().filter(|(a, _)| *a == by).map(|(_, v)| v.into_owned()).collect(),
                    Err(_) => Vec::new(),
                })?;
                for v in values {
                    if idx.find(p, by, &v).is_none() {
                        add_count(&mut counts, v.as_bytes(), 1);
                    }
                }
            }
        }
    }
    let mems = snap.memtables.iter().map(|m| m.as_ref());
    for m in mems {
        let entries = memtable_matches(m, &q.filters);
        let admitted = |i: u32| {
            let e = m.entry(i as usize);
            e.time_ms >= start
                && e.time_ms <= end
                && m.first_seq + u64::from(i) < snap.bound
                && (!has_ids || confirm_ids(&q.filters, m.record(e)))
        };
        let set: Vec<u32> = match entries {
            Some(v) => v.into_iter().filter(|&i| admitted(i)).collect(),
            None => (0..m.len() as u32).filter(|&i| admitted(i)).collect(),
        };
        for (value, post) in m.attr_values(by) {
            let n = intersect(post, &set).len() as u64;
            if n > 0 {
                *counts.entry(value.to_string()).or_default() += n;
            }
        }
    }
    for e in &snap.active {
        // The active memtable's matches were copied (filters applied).
        if let Ok(ev) = parse_event(&e.record, RECORD_BYTES_MAX) {
            for (a, v) in crate::index::terms(&ev) {
                if a == by {
                    *counts.entry(v.into_owned()).or_default() += 1;
                }
            }
        }
    }
    let mut out: Vec<(String, u64)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

fn confirm_ids(filters: &[(Attr, Vec<String>)], record: &[u8]) -> bool {
    let id = parse_event(record, RECORD_BYTES_MAX).ok().and_then(|e| e.event_id.map(|c| c.into_owned()));
    filters.iter().filter(|(a, _)| *a == Attr::EventId).all(|(_, vs)| id.as_ref().is_some_and(|id| vs.contains(id)))
}

/// Adds `n` to the count of `value`, allocating only for a value not seen
/// yet (a count adds up thousands of terms of a few hundred values).
fn add_count(counts: &mut Counts, value: &[u8], n: u64) {
    let text = String::from_utf8_lossy(value);
    match counts.get_mut(text.as_ref()) {
        Some(c) => *c += n,
        None => {
            counts.insert(text.into_owned(), n);
        }
    }
}

/// Counts by value (foldhash: the values are the store's own, hashed
/// thousands of times per count).
type Counts = HashMap<String, u64, foldhash::fast::RandomState>;

/// Calls `f` with the record at ordinal `o` of a segment.
fn with_record<T>(seg: &Segment, cache: &BlockCache, o: u32, f: impl FnOnce(&[u8]) -> T) -> Result<T, Error> {
    let (b, i) = seg.locate(o).ok_or_else(|| Error::corruption(&seg.path, 0, format!("ordinal {o} is outside the segment")))?;
    Ok(f(cache.get(seg, b)?.record(i)))
}

fn count_terms_in(
    seg: &Segment,
    idx: &IndexView<'_>,
    p: &crate::index::Partition,
    by: Attr,
    m: &[u32],
    counts: &mut Counts,
) -> Result<(), Error> {
    if m.is_empty() {
        return Ok(());
    }
    let mut post = Vec::new();
    for t in idx.attr_terms(p, by) {
        let t = idx.term(t);
        post.clear();
        t.ordinals(p, &mut post).ok_or_else(|| Error::corruption(&seg.path, seg.footer.index.offset, "index postings: malformed"))?;
        let n = intersect(&post, m).len() as u64;
        if n > 0 {
            add_count(counts, t.value, n);
        }
    }
    Ok(())
}
