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
    /// the range (whole, as their blocks are ordered by time) and the
    /// memtables; memory is the range's events. What delivery reads.
    pub fn events_between(&self, from: u64, to: u64) -> QueryResult<Vec<StoredEvent>> {
        Ok(self.seq_range(&Query::default(), from, to)?.0)
    }

    /// The events matching `q` with `from <= seq < to`, in seq order, and
    /// the bound of the snapshot read (the active memtable's end, at most
    /// `to`).
    fn seq_range(&self, q: &Query, from: u64, to: u64) -> QueryResult<(Vec<StoredEvent>, u64)> {
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
        let in_range = |e: &StoredEvent| e.seq >= from && e.seq < to;
        let mut out: Vec<StoredEvent> = mems.1.into_iter().filter(in_range).collect();
        for m in &mems.0 {
            out.extend(query::memtable_events(m, q, bound, false, None, usize::MAX).into_iter().filter(in_range));
        }
        if !segments.is_empty() && *q == Query::default() {
            // Every event of the range: only the blocks the seq map names
            // for it are read (a range of a big segment, as delivery reads
            // them round by round, costs its blocks, not the segment).
            for seg in &segments {
                for b in seg.blocks_for_seqs(from, to)? {
                    let block = self.inner.cache.get(seg, b)?;
                    for i in 0..block.len() {
                        let seq = block.seqs[i];
                        if seq >= from && seq < to {
                            let record = block.record(i).to_vec();
                            out.push(StoredEvent { seq, ingest_ms: block.ingest_ms[i], time_ms: block.time_ms[i], record });
                        }
                    }
                }
            }
        } else if !segments.is_empty() {
            // Sealed since `from` (a reader behind a seal, or a range).
            let segments = SegmentSet::new(segments);
            let snap = Snapshot { segments: Arc::new(segments), memtables: Vec::new(), active: Vec::new(), bound, limit: usize::MAX };
            query::run(&snap, &self.inner.cache, q, Order::OldestFirst, None, |e| {
                if in_range(&e) {
                    out.push(e);
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
    pub fn export(&self, q: &Query, order: Order, mut f: impl FnMut(StoredEvent) -> bool) -> QueryResult<u64> {
        let q = &*q.canonical();
        q.validate()?;
        let snap = self.inner.snapshot(q, None, order, None, usize::MAX);
        let mut n = 0u64;
        query::run(&snap, &self.inner.cache, q, order, None, |e| {
            n += 1;
            f(e)
        })?;
        Ok(n)
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
