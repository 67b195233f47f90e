//! Reads: LookupEvents-style pages, counts, exports, `get` by eventID,
//! `events_since` for tail, and the snapshot of sealed segments plus
//! unsealed memtables that every query runs on (`query` does the rest).

use std::sync::Arc;

use crate::error::Result;
use crate::event::{id_fingerprint, parse_event};
use crate::index::counters::Counters;
use crate::index::Attr;
use crate::limits::RECORD_BYTES_MAX;
use crate::memtable::Memtable;
use crate::query::{self, Order, Page, Query, QueryResult, Snapshot};
use crate::segment::set::SegmentSet;

use super::{Inner, Store, StoredEvent};
use crate::segment::Block;

impl Store {
    /// One page of events matching `q`, newest first (LookupEvents).
    /// `max_results` defaults to 50 and may be up to 10,000. Pass the
    /// returned `next_token` with the same query for the next page; pages
    /// come from the snapshot of the first page, so every matching event
    /// appears exactly once even while new events arrive.
    pub fn lookup(&self, q: &Query, max_results: Option<usize>, next_token: Option<&str>) -> QueryResult<Page> {
        let q = &*q.canonical();
        let now = self.inner.now_ms() as i64;
        query::lookup(
            |bound, cursor, limit| self.inner.snapshot(q, bound, Order::NewestFirst, cursor, limit),
            &self.inner.cache,
            q,
            max_results,
            next_token,
            now,
        )
    }

    /// Counts of events matching `q`, grouped by the value of `by`, largest
    /// first. Answered from the indexes: sealed partitions wholly inside
    /// the range cost one term-table read, no decompression.
    pub fn count(&self, q: &Query, by: Attr) -> QueryResult<Vec<(String, u64)>> {
        Ok(self.counts(q, &[by])?.pop().unwrap_or_default())
    }

    /// [`Store::count`] by each of `by`, all of one snapshot of the store
    /// (so they agree with each other while events arrive).
    pub fn counts(&self, q: &Query, by: &[Attr]) -> QueryResult<Vec<Vec<(String, u64)>>> {
        let q = &*q.canonical();
        q.validate()?;
        let snap = self.inner.snapshot(q, None, Order::NewestFirst, None, usize::MAX);
        by.iter().map(|a| query::count(&snap, &self.inner.cache, q, *a)).collect()
    }

    /// Events matching `q` with seq >= `from_seq`, in seq (arrival) order,
    /// at most `max`, and the seq to continue from: what `tail` polls.
    pub fn events_since(&self, from_seq: u64, q: &Query, max: usize) -> QueryResult<(Vec<StoredEvent>, u64)> {
        let q = &*q.canonical();
        q.validate()?;
        let (mut out, bound) = self.seq_range(q, from_seq, u64::MAX)?;
        let next = if out.len() > max {
            out.truncate(max);
            out.last().map_or(bound, |e| e.seq + 1)
        } else {
            bound
        };
        Ok((out, next))
    }

    /// Every event with `from <= seq < to` (all of them, whatever their
    /// kind), in seq order. Reads only the sealed segments that overlap
    /// the range (only the blocks the seq map names for it) and the
    /// memtables. What delivery reads. A sealed record is not copied when
    /// at least half of its block's records are in the range: it stays in
    /// the decoded block, which those events share (held until they are
    /// dropped). Memory stays within twice the range's records: a block
    /// only a few of whose records are in the range (late eventTimes put a
    /// seq range's events in many time-sorted blocks) gives copies.
    pub fn events_between(&self, from: u64, to: u64) -> QueryResult<Vec<SharedEvent>> {
        Ok(self.seq_range_shared(&Query::default(), from, to, true)?.0)
    }

    /// The events matching `q` with `from <= seq < to`, in seq order, and
    /// the bound of the snapshot read (the active memtable's end, at most
    /// `to`).
    fn seq_range(&self, q: &Query, from: u64, to: u64) -> QueryResult<(Vec<StoredEvent>, u64)> {
        let (events, bound) = self.seq_range_shared(q, from, to, false)?;
        Ok((events.into_iter().map(SharedEvent::into_stored).collect(), bound))
    }

    /// [`Store::seq_range`]; with `share`, records may stay in their
    /// blocks ([`Store::events_between`]), else each is copied as its
    /// block is read (no block outlives its reading).
    fn seq_range_shared(&self, q: &Query, from: u64, to: u64, share: bool) -> QueryResult<(Vec<SharedEvent>, u64)> {
        let (segments, mems, bound) = {
            let st = self.inner.state.read();
            let bound = st.active.end_seq().min(to);
            let mut mems = st.sealing.clone();
            // The active memtable is copied only from `from` on.
            let active = query::memtable_events(&st.active, q, bound, false, None, usize::MAX);
            let segs: Vec<_> = st.segments.iter().filter(|s| s.footer.tree_size > from && s.footer.first_seq < to).cloned().collect();
            mems.retain(|m| m.end_seq() > from);
            (segs, (mems, active), bound)
        };
        let in_range = |seq: u64| seq >= from && seq < to;
        let mut out: Vec<SharedEvent> = mems.1.into_iter().filter(|e| in_range(e.seq)).map(SharedEvent::from).collect();
        for m in &mems.0 {
            let events = query::memtable_events(m, q, bound, false, None, usize::MAX);
            out.extend(events.into_iter().filter(|e| in_range(e.seq)).map(SharedEvent::from));
        }
        if !segments.is_empty() && *q == Query::default() {
            // Every event of the range: only the blocks the seq map names
            // for it are read (a range of a big segment, as delivery reads
            // them round by round, costs its blocks, not the segment).
            for seg in &segments {
                for b in seg.blocks_for_seqs(from, to)? {
                    let block = self.inner.cache.get(seg, b)?;
                    let wanted = block.seqs.iter().filter(|&&seq| in_range(seq)).count();
                    let shared = share && wanted * 2 >= block.len();
                    for i in (0..block.len()).filter(|&i| in_range(block.seqs[i])) {
                        out.push(if shared { SharedEvent::in_block(&block, i) } else { SharedEvent::copied(&block, i) });
                    }
                }
            }
        } else if !segments.is_empty() {
            // Sealed since `from` (a reader behind a seal, or a range).
            let segments = SegmentSet::new(segments);
            let snap = Snapshot { segments: Arc::new(segments), memtables: Vec::new(), active: Vec::new(), bound, limit: usize::MAX };
            query::run(&snap, &self.inner.cache, q, Order::OldestFirst, None, |e| {
                if in_range(e.seq) {
                    out.push(SharedEvent::from(e));
                }
                true
            })?;
        }
        out.sort_by_key(|e| e.seq);
        out.dedup_by_key(|e| e.seq);
        Ok((out, bound))
    }

    /// Streams every event matching `q` in `order` to `f` until it returns
    /// `false`. Memory stays bounded: blocks are decoded one at a time.
    /// Returns the number of events passed to `f`.
    pub fn export(&self, q: &Query, order: Order, f: impl FnMut(StoredEvent) -> bool) -> QueryResult<u64> {
        self.export_below(q, order, None, f)
    }

    fn export_below(&self, q: &Query, order: Order, bound: Option<u64>, mut f: impl FnMut(StoredEvent) -> bool) -> QueryResult<u64> {
        let q = &*q.canonical();
        q.validate()?;
        let snap = self.inner.snapshot(q, bound, order, None, usize::MAX);
        let mut n = 0u64;
        query::run(&snap, &self.inner.cache, q, order, None, |e| {
            n += 1;
            f(e)
        })?;
        Ok(n)
    }

    /// [`Store::export`] of the events with seq below `bound` (a value of
    /// [`Store::export_bound`]): several exports with one bound read one
    /// state of the store, as the parts of a parallel scan must.
    pub fn export_until(&self, q: &Query, order: Order, bound: u64, f: impl FnMut(StoredEvent) -> bool) -> QueryResult<u64> {
        self.export_below(q, order, Some(bound), f)
    }

    /// The seq every event stored so far is below: the bound for
    /// [`Store::export_until`].
    pub fn export_bound(&self) -> u64 {
        self.inner.state.read().active.end_seq()
    }

    /// Up to `parts - 1` eventTime cut points, ascending, that split the
    /// events in `q`'s time range into parts of about equal count: part
    /// `i` is `[cut[i-1], cut[i] - 1]` (the first starts at the range's
    /// start, the last ends at its end). Estimated from the blocks' time
    /// spans and event counts (events spread evenly over a block's span)
    /// and the memtables' (each one span), without reading a record. Fewer cuts
    /// when the range holds too few events or too narrow a time span.
    pub fn time_cuts(&self, q: &Query, parts: usize) -> Vec<i64> {
        let (lo, hi) = (q.start_ms.unwrap_or(i64::MIN), q.end_ms.unwrap_or(i64::MAX));
        // (first ms, last ms, events) of each block or memtable in range.
        let mut spans: Vec<(i64, i64, f64)> = Vec::new();
        let mut clip = |min: i64, max: i64, events: u32| {
            if max < lo || min > hi || events == 0 {
                return;
            }
            let (a, b) = (min.max(lo), max.min(hi));
            let share = (b as f64 - a as f64 + 1.0) / (max as f64 - min as f64 + 1.0);
            spans.push((a, b, f64::from(events) * share));
        };
        {
            let st = self.inner.state.read();
            for seg in st.segments.iter() {
                if seg.footer.max_time_ms < lo || seg.footer.min_time_ms > hi {
                    continue;
                }
                for b in &seg.blocks {
                    clip(b.min_time_ms, b.max_time_ms, b.events);
                }
            }
            // A memtable counts as one span: its entries in range, spread
            // over their times (a span each would make every estimate
            // walk them all).
            for m in st.sealing.iter().map(|m| &**m).chain(std::iter::once(&st.active)) {
                let times = m.entries().iter().map(|e| e.time_ms).filter(|t| (lo..=hi).contains(t));
                let (n, min, max) = times.fold((0u32, i64::MAX, i64::MIN), |(n, a, b), t| (n.saturating_add(1), a.min(t), b.max(t)));
                clip(min, max, n);
            }
        }
        let total: f64 = spans.iter().map(|s| s.2).sum();
        if parts < 2 || total < 2.0 || spans.is_empty() {
            return Vec::new();
        }
        let first = spans.iter().map(|s| s.0).min().unwrap_or(lo);
        let last = spans.iter().map(|s| s.1).max().unwrap_or(hi);
        // Events (estimated) with eventTime < t.
        let below = |t: i64| -> f64 {
            spans
                .iter()
                .map(|&(a, b, w)| {
                    if t <= a {
                        0.0
                    } else if t > b {
                        w
                    } else {
                        w * (t as f64 - a as f64) / (b as f64 - a as f64 + 1.0)
                    }
                })
                .sum()
        };
        let mut cuts = Vec::with_capacity(parts - 1);
        for k in 1..parts {
            let want = total * k as f64 / parts as f64;
            // The least t in (first, last] with below(t) >= want.
            let (mut a, mut b) = (first, last);
            while a < b {
                let mid = (i128::from(a) + i128::from(b)).div_euclid(2) as i64;
                if below(mid) >= want {
                    b = mid;
                } else {
                    a = mid + 1;
                }
            }
            if a > first && cuts.last().is_none_or(|&c| a > c) {
                cuts.push(a);
            }
        }
        cuts
    }

    /// Every stored record whose eventID (or UID) is `event_id`, in seq order.
    pub fn get(&self, event_id: &str) -> Result<Vec<StoredEvent>> {
        let fp = id_fingerprint(event_id.as_bytes());
        let mut out = Vec::new();
        let (segments, sealing) = {
            let st = self.inner.state.read();
            collect_mem_matches(&st.active, fp, event_id, &mut out);
            (st.segments.clone(), st.sealing.clone())
        };
        for m in &sealing {
            collect_mem_matches(m, fp, event_id, &mut out);
        }
        for seg in segments.iter() {
            let ords = seg.find_id(fp)?;
            for ord in ords {
                let Some((b, pos)) = seg.locate(ord) else { continue };
                let block = self.inner.cache.get(seg, b)?;
                let rec = block.record(pos);
                if record_has_id(rec, event_id) {
                    out.push(StoredEvent {
                        seq: block.seqs[pos],
                        ingest_ms: block.ingest_ms[pos],
                        time_ms: block.time_ms[pos],
                        record: rec.to_vec(),
                    });
                }
            }
        }
        out.sort_by_key(|e| e.seq);
        out.dedup_by_key(|e| e.seq);
        Ok(out)
    }

    /// Calls `f` for every stored event: sealed segments in (time, seq)
    /// order per segment, then unsealed events in seq order. For tools and
    /// tests; queries come with the query engine.
    pub fn for_each(&self, mut f: impl FnMut(&StoredEvent)) -> Result<()> {
        let (segments, sealing, active) = {
            let st = self.inner.state.read();
            (st.segments.clone(), st.sealing.clone(), mem_events(&st.active))
        };
        for seg in segments.iter() {
            for b in 0..seg.blocks.len() {
                let block = seg.read_block(b)?;
                for i in 0..block.len() {
                    f(&StoredEvent {
                        seq: block.seqs[i],
                        ingest_ms: block.ingest_ms[i],
                        time_ms: block.time_ms[i],
                        record: block.record(i).to_vec(),
                    });
                }
            }
        }
        for m in &sealing {
            mem_events(m).iter().for_each(&mut f);
        }
        active.iter().for_each(f);
        Ok(())
    }

    /// For Insights, from one consistent view: the sealed segments, and the
    /// counters of the events not sealed yet with eventTime in `[lo_minute,
    /// hi_minute)` (the active memtable's taken under the read lock and
    /// counted after it).
    pub fn counter_view(&self, lo_minute: i64, hi_minute: i64) -> (Arc<SegmentSet>, Counters) {
        let (segments, sealing, active) = {
            let st = self.inner.state.read();
            (st.segments.clone(), st.sealing.clone(), st.active.counters_in(lo_minute, hi_minute))
        };
        let mut out = active.count();
        for m in &sealing {
            m.counters_in(lo_minute, hi_minute).count_into(&mut out);
        }
        (segments, out)
    }

    /// The event stored at `seq`.
    pub fn event_at(&self, seq: u64) -> Result<Option<StoredEvent>> {
        let (segments, sealing) = {
            let st = self.inner.state.read();
            if seq >= st.active.first_seq {
                let i = (seq - st.active.first_seq) as usize;
                return Ok((i < st.active.len()).then(|| {
                    let e = st.active.entry(i);
                    StoredEvent { seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: st.active.record(e).to_vec() }
                }));
            }
            (st.segments.clone(), st.sealing.clone())
        };
        if let Some(m) = sealing.iter().find(|m| m.first_seq <= seq && seq < m.end_seq()) {
            let e = m.entry((seq - m.first_seq) as usize);
            return Ok(Some(StoredEvent { seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: m.record(e).to_vec() }));
        }
        let i = segments.partition_point(|s| s.footer.tree_size <= seq);
        let Some(seg) = segments.get(i).filter(|s| s.footer.first_seq <= seq) else { return Ok(None) };
        for b in seg.blocks_for_seqs(seq, seq + 1)? {
            let block = self.inner.cache.get(seg, b)?;
            if let Some(pos) = block.seqs.iter().position(|&s| s == seq) {
                return Ok(Some(StoredEvent {
                    seq,
                    ingest_ms: block.ingest_ms[pos],
                    time_ms: block.time_ms[pos],
                    record: block.record(pos).to_vec(),
                }));
            }
        }
        Ok(None)
    }
}

pub(super) fn mem_events(m: &Memtable) -> Vec<StoredEvent> {
    m.entries()
        .iter()
        .enumerate()
        .map(|(i, e)| StoredEvent { seq: m.first_seq + i as u64, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: m.record(e).to_vec() })
        .collect()
}

pub(super) fn collect_mem_matches(m: &Memtable, fp: u64, id: &str, out: &mut Vec<StoredEvent>) {
    for ix in m.find_id(fp) {
        let e = m.entry(ix);
        let rec = m.record(e);
        if record_has_id(rec, id) {
            out.push(StoredEvent { seq: m.first_seq + ix as u64, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: rec.to_vec() });
        }
    }
}

/// Confirms a fingerprint match: the record's eventID (or UID) is `id`.
pub(super) fn record_has_id(rec: &[u8], id: &str) -> bool {
    parse_event(rec, RECORD_BYTES_MAX).ok().and_then(|e| e.event_id).as_deref() == Some(id)
}

impl Inner {
    /// A consistent view for a query: sealed segments, sealing memtables,
    /// and the active memtable's matches (copied under the lock, at most
    /// `limit`). `bound` pins the snapshot of an earlier page.
    pub(super) fn snapshot(&self, q: &Query, bound: Option<u64>, order: Order, cursor: Option<(i64, u64)>, limit: usize) -> Snapshot {
        let st = self.state.read();
        let bound = bound.unwrap_or_else(|| st.active.end_seq());
        let active = query::memtable_events(&st.active, q, bound, order == Order::NewestFirst, cursor, limit);
        Snapshot { segments: st.segments.clone(), memtables: st.sealing.clone(), active, bound, limit }
    }
}

/// An event whose record may stay where it was read: in its decoded block
/// (shared with the block cache, no copy) or, when it was not sealed, in
/// its own buffer. [`Store::events_between`] returns these.
#[derive(Clone)]
pub struct SharedEvent {
    pub seq: u64,
    pub ingest_ms: u64,
    pub time_ms: i64,
    record: SharedRecord,
}

#[derive(Clone)]
enum SharedRecord {
    Owned(Vec<u8>),
    /// Record `.1` of the block.
    InBlock(Arc<Block>, usize),
}

impl SharedEvent {
    fn in_block(block: &Arc<Block>, i: usize) -> SharedEvent {
        let record = SharedRecord::InBlock(block.clone(), i);
        SharedEvent { seq: block.seqs[i], ingest_ms: block.ingest_ms[i], time_ms: block.time_ms[i], record }
    }

    fn copied(block: &Block, i: usize) -> SharedEvent {
        let record = SharedRecord::Owned(block.record(i).to_vec());
        SharedEvent { seq: block.seqs[i], ingest_ms: block.ingest_ms[i], time_ms: block.time_ms[i], record }
    }

    /// The stored record, byte for byte.
    pub fn record(&self) -> &[u8] {
        match &self.record {
            SharedRecord::Owned(r) => r,
            SharedRecord::InBlock(b, i) => b.record(*i),
        }
    }

    /// The event with a record of its own (copied out of its block).
    pub fn into_stored(self) -> StoredEvent {
        let record = match self.record {
            SharedRecord::Owned(r) => r,
            SharedRecord::InBlock(b, i) => b.record(i).to_vec(),
        };
        StoredEvent { seq: self.seq, ingest_ms: self.ingest_ms, time_ms: self.time_ms, record }
    }
}

impl From<StoredEvent> for SharedEvent {
    fn from(e: StoredEvent) -> SharedEvent {
        SharedEvent { seq: e.seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: SharedRecord::Owned(e.record) }
    }
}

impl std::fmt::Debug for SharedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedEvent")
            .field("seq", &self.seq)
            .field("time_ms", &self.time_ms)
            .field("record_bytes", &self.record().len())
            .finish()
    }
}
