//! Running a query: one source per segment and memtable, each yielding
//! its matches in result order, merged by (eventTime, seq) into a page.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::error::Error;
use crate::event::StoredEvent;
use crate::index::Attr;
use crate::segment::cache::BlockCache;
use crate::segment::reader::Segment;

use super::plan::{memtable_events, ordinal_range, rare_filters, segment_matches, Candidates, Filter};
use super::{Key, Order, Query, Snapshot};

/// Merge heap entry: (min-heap key, max-heap key, source index); only one
/// of the two keys is set, by the order.
pub(super) type HeapEntry = (Reverse<Key>, Key, usize);

/// The candidates of one source, yielding events in result order.
pub(super) trait Source {
    fn peek(&mut self) -> Result<Option<Key>, Error>;
    fn take(&mut self) -> Result<Option<StoredEvent>, Error>;
}

pub(super) struct VecSource {
    pub(super) events: Vec<StoredEvent>,
    pub(super) pos: usize,
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

pub(super) struct SegmentSource<'a> {
    pub(super) seg: Arc<Segment>,
    pub(super) cache: &'a BlockCache,
    pub(super) cands: Candidates,
    /// Next position in `cands` (counting in result order).
    pub(super) pos: usize,
    pub(super) desc: bool,
    pub(super) filter: &'a Filter,
    /// Candidates (ascending) from rare-value tables: their records are
    /// confirmed.
    pub(super) unsure: Vec<u32>,
    pub(super) head: Option<(Key, StoredEvent)>,
}

impl SegmentSource<'_> {
    pub(super) fn fill(&mut self) -> Result<(), Error> {
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
