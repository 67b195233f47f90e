//! Counts by one attribute: from segment totals for whole segments, from
//! partition postings at the edges of the range, from the memtables for
//! unsealed events, reading records only where an index cannot answer.

use std::collections::HashMap;

use crate::error::Error;
use crate::event::parse_event;
use crate::index::{Attr, IndexView};
use crate::limits::RECORD_BYTES_MAX;
use crate::segment::cache::BlockCache;
use crate::segment::reader::Segment;

use super::plan::{confirm_ids, for_each_common, has_terms, intersect, memtable_matches, ordinal_range, rare_filters, segment_matches};
use super::{Query, QueryError, QueryResult, Snapshot};

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

/// Adds `n` to the count of `value`, allocating only for a value not seen
/// yet (a count adds up thousands of terms of a few hundred values).
pub(super) fn add_count(counts: &mut Counts, value: &[u8], n: u64) {
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
pub(super) type Counts = HashMap<String, u64, foldhash::fast::RandomState>;

/// Calls `f` with the record at ordinal `o` of a segment.
pub(super) fn with_record<T>(seg: &Segment, cache: &BlockCache, o: u32, f: impl FnOnce(&[u8]) -> T) -> Result<T, Error> {
    let (b, i) = seg.locate(o).ok_or_else(|| Error::corruption(&seg.path, 0, format!("ordinal {o} is outside the segment")))?;
    Ok(f(cache.get(seg, b)?.record(i)))
}

pub(super) fn count_terms_in(
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
    // `m` is often a run of ordinals (a range that cuts the partition, no
    // filters): then a term's count is two binary searches of its postings,
    // not a merge with every ordinal of the run.
    let run = (m[m.len() - 1] - m[0]) as usize + 1 == m.len();
    let mut post = Vec::new();
    for t in idx.attr_terms(p, by) {
        let t = idx.term(t);
        post.clear();
        t.ordinals(p, &mut post).ok_or_else(|| Error::corruption(&seg.path, seg.footer.index.offset, "index postings: malformed"))?;
        let n = if run {
            (post.partition_point(|&o| o <= m[m.len() - 1]) - post.partition_point(|&o| o < m[0])) as u64
        } else {
            intersect_count(&post, m)
        };
        if n > 0 {
            add_count(counts, t.value, n);
        }
    }
    Ok(())
}

/// How many values two ascending lists share: each of the shorter looked
/// up in the longer when one is much longer, else one merge.
fn intersect_count(a: &[u32], b: &[u32]) -> u64 {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() * 16 < long.len() {
        short.iter().filter(|o| long.binary_search(o).is_ok()).count() as u64
    } else {
        let mut n = 0;
        for_each_common(a, b, |_| n += 1);
        n
    }
}
