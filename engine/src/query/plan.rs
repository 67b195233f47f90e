//! Which events of a segment or memtable can match: the partitions in the
//! time range, the postings of each filter intersected, rare-value tables
//! confirmed by reading their records.

use crate::error::Error;
use crate::event::StoredEvent;
use crate::event::{id_fingerprint, parse_event};
use crate::index::{Attr, IndexView};
use crate::limits::RECORD_BYTES_MAX;
use crate::memtable::Memtable;
use crate::segment::cache::BlockCache;
use crate::segment::reader::Segment;

use super::{Key, Query};

/// Candidate ordinals of a segment, in result order.
pub(super) enum Candidates {
    Range(std::ops::Range<u32>),
    List(Vec<u32>),
}

/// The per-event checks postings cannot do: exact time bounds, the
/// snapshot bound, the cursor, eventID confirmation, and the confirmation
/// of candidates from rare-value tables (`unsure`).
pub(super) struct Filter {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) bound: u64,
    pub(super) desc: bool,
    pub(super) cursor: Option<Key>,
    pub(super) ids: Option<Vec<String>>,
    pub(super) rare: Vec<(Attr, Vec<String>)>,
}

impl Filter {
    pub(super) fn admits(&self, key: Key, record: &[u8], unsure: bool) -> bool {
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
    pub(super) fn len(&self) -> usize {
        match self {
            Candidates::Range(r) => r.len(),
            Candidates::List(v) => v.len(),
        }
    }
    pub(super) fn get(&self, i: usize, desc: bool) -> u32 {
        let n = self.len();
        let j = if desc { n - 1 - i } else { i };
        match self {
            Candidates::Range(r) => r.start + j as u32,
            Candidates::List(v) => v[j],
        }
    }
}

/// First ordinal whose time is >= `t` (`time_after`: > `t`).
pub(super) fn ordinal_at(seg: &Segment, cache: &BlockCache, t: i64, time_after: bool) -> Result<u32, Error> {
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
pub(super) fn ordinal_range(seg: &Segment, cache: &BlockCache, start: i64, end: i64) -> Result<std::ops::Range<u32>, Error> {
    let lo = if start <= seg.footer.min_time_ms { 0 } else { ordinal_at(seg, cache, start, false)? };
    let hi = if end >= seg.footer.max_time_ms { seg.footer.count as u32 } else { ordinal_at(seg, cache, end, true)? };
    Ok(lo..hi.max(lo))
}

pub(super) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    for_each_common(a, b, |o| out.push(o));
    out
}

/// Calls `f` with each value two ascending lists share, in order.
pub(super) fn for_each_common(a: &[u32], b: &[u32], mut f: impl FnMut(u32)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                f(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
}

/// Ordinals of a segment that may match every filter, ascending, and those
/// of them that came from rare-value tables and need their record read.
#[derive(Default)]
pub(super) struct Matches {
    pub(super) ordinals: Vec<u32>,
    pub(super) unsure: Vec<u32>,
}

/// Ordinals of a segment matching every filter within `range`, ascending.
pub(super) fn segment_matches(
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
pub(super) fn rare_filters(q: &Query) -> Vec<(Attr, Vec<String>)> {
    q.filters.iter().filter(|(a, _)| crate::index::RARE_ATTRS.contains(a)).cloned().collect()
}

/// Whether a record carries, for every filter, one of its values.
pub(super) fn has_terms(filters: &[(Attr, Vec<String>)], record: &[u8]) -> bool {
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

pub(super) fn confirm_ids(filters: &[(Attr, Vec<String>)], record: &[u8]) -> bool {
    let id = parse_event(record, RECORD_BYTES_MAX).ok().and_then(|e| e.event_id.map(|c| c.into_owned()));
    filters.iter().filter(|(a, _)| *a == Attr::EventId).all(|(_, vs)| id.as_ref().is_some_and(|id| vs.contains(id)))
}
