//! Running Insights over a store: the counts of the sealed segments (kept
//! between runs, so the daemon's once-a-minute pass reads only the
//! segments sealed since the last), the unsealed events' counters, the
//! detector, and the Insight events appended exactly once.

use std::collections::{HashMap, HashSet};

use super::counters::{Counters, Counts, SeriesKey, MINUTE_MS};
use super::detect::DetectOptions;
use super::record::{cells_needed, describe, find, history_start, Insight};
use crate::error::Result;
use crate::segment::reader::Segment;
use crate::store::Store;

/// Whether a segment's eventTime span touches minutes `[lo, hi)`.
fn touches(seg: &Segment, lo: i64, hi: i64) -> bool {
    seg.footer.max_time_ms.div_euclid(MINUTE_MS) >= lo && seg.footer.min_time_ms.div_euclid(MINUTE_MS) < hi
}

/// The time range a store holds, in unix minutes: the first minute with an
/// event, and one past the newest.
pub fn store_minutes(store: &Store) -> Result<Option<(i64, i64)>> {
    let s = store.stats()?;
    Ok(match (s.min_time_ms, s.max_time_ms) {
        (Some(lo), Some(hi)) => Some((lo.div_euclid(MINUTE_MS), hi.div_euclid(MINUTE_MS) + 1)),
        _ => None,
    })
}

/// Finds insights over a store, keeping the sealed segments' counts
/// between calls.
#[derive(Default)]
pub struct Scanner {
    /// Counts of the segments in `seen`, from minute `from` on.
    base: Counts,
    seen: HashSet<u64>,
    from: i64,
}

impl Scanner {
    pub fn new() -> Self {
        Scanner::default()
    }

    /// Cells (series, minute) the scanner holds: its memory is about 40
    /// bytes each.
    pub fn cells(&self) -> usize {
        self.base.values().map(|m| m.len()).sum()
    }

    /// The insights that start in minutes `[lo, hi)`, described from the
    /// store's counters (the baseline reaches 28 days before `lo`).
    pub fn scan(&mut self, store: &Store, lo: i64, hi: i64, o: &DetectOptions) -> Result<Vec<Insight>> {
        let Some((first, _)) = store_minutes(store)? else { return Ok(Vec::new()) };
        let from = history_start(lo, o);
        let (segments, unsealed) = store.counter_view(from, hi);
        let present: HashSet<u64> = segments.iter().map(|s| s.id).collect();
        if from < self.from || self.seen.iter().any(|id| !present.contains(id)) {
            // Reaching further back, or segments compacted or expired: start over.
            *self = Scanner { from, ..Scanner::default() };
        } else if from >= self.from + 1440 {
            // A day has passed: forget what no baseline needs any more.
            for m in self.base.values_mut() {
                *m = m.split_off(&from);
            }
            self.base.retain(|_, m| !m.is_empty());
            self.from = from;
        }
        if self.seen.is_empty() {
            self.from = from;
        }
        for seg in segments.iter() {
            if self.seen.contains(&seg.id) {
                continue;
            }
            if touches(seg, self.from, i64::MAX) {
                let base = &mut self.base;
                let keep = self.from;
                seg.visit_counters(|k, m, n, _| {
                    if m >= keep {
                        add_count(base, k, m, n);
                    }
                })?;
            }
            self.seen.insert(seg.id);
        }
        let overlay = unsealed.counts();
        let sources = [&self.base, &overlay];
        let found = find(&sources, first, lo, hi, o);
        if found.is_empty() {
            return Ok(Vec::new());
        }
        // Contributors, only for the series and minutes the insights need.
        let mut needs: HashMap<SeriesKey, Vec<(i64, i64)>> = HashMap::new();
        for f in &found {
            let (k, a, b) = cells_needed(f, first, hi);
            needs.entry(k).or_default().push((a, b));
        }
        let lo_need = needs.values().flatten().map(|r| r.0).min().unwrap_or(lo);
        let hi_need = needs.values().flatten().map(|r| r.1).max().unwrap_or(hi);
        let wanted = |k: &SeriesKey, m: i64| needs.get(k).is_some_and(|rs| rs.iter().any(|r| (r.0..r.1).contains(&m)));
        let mut cells = Counters::default();
        for seg in segments.iter().filter(|s| touches(s, lo_need, hi_need)) {
            seg.visit_counters(|k, m, _, cell| {
                if wanted(k, m) {
                    cells.add_cell(k, m, &cell());
                }
            })?;
        }
        for (k, minutes) in &unsealed.series {
            for (m, c) in minutes {
                if wanted(k, *m) {
                    cells.add_cell(k, *m, c);
                }
            }
        }
        Ok(found.iter().map(|f| describe(f, &sources, &cells, first, hi)).collect())
    }
}

fn add_count(counts: &mut Counts, k: &SeriesKey, minute: i64, n: u32) {
    let minutes = match counts.get_mut(k) {
        Some(m) => m,
        None => counts.entry(k.clone()).or_default(),
    };
    let c = minutes.entry(minute).or_default();
    *c = c.saturating_add(n);
}

/// What appending insights did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Appended {
    /// Insight events appended now.
    pub appended: u64,
    /// Insight events the store already held (same eventID).
    pub present: u64,
}

/// Appends the Insight events of `insights` the store does not hold yet
/// (by eventID, which is derived from the series and the start minute, so
/// every run names the same insight the same way): each Start once, and
/// each End once the insight has ended.
pub fn append_missing(store: &Store, insights: &[Insight]) -> Result<Appended> {
    let mut out = Appended::default();
    let mut records: Vec<Vec<u8>> = Vec::new();
    for i in insights {
        let (start, end) = i.records();
        for (rec, is_end) in std::iter::once((start, false)).chain(end.map(|e| (e, true))) {
            if store.get(&i.event_id(is_end))?.is_empty() {
                records.push(rec);
            } else {
                out.present += 1;
            }
        }
    }
    for chunk in records.chunks(1000) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        let outcomes = store.append(&refs)?;
        for o in outcomes {
            match o {
                crate::store::Outcome::Stored(_) => out.appended += 1,
                crate::store::Outcome::Duplicate(_) => out.present += 1,
                crate::store::Outcome::Rejected(r) => {
                    return Err(crate::error::Error::InvalidArgument(format!("an Insight event was rejected: {r}")))
                }
            }
        }
    }
    Ok(out)
}

/// What `cairn insights` analyses, and whether it appends.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// eventTime range of the insights' starts (unix ms, inclusive; `None`:
    /// from the store's first event / to its newest).
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Append the Insight events the store does not hold yet.
    pub backfill: bool,
    pub detect: DetectOptions,
}

/// What a run found (and appended).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The minutes analysed, `[start_minute, end_minute)` (unix minutes).
    pub start_minute: i64,
    pub end_minute: i64,
    #[serde(serialize_with = "insight_views")]
    pub insights: Vec<Insight>,
    /// With `backfill`: what was appended.
    pub appended: Option<Appended>,
}

/// Finds the insights that start in the range `o` names (by default the
/// whole store) and, with `backfill`, appends the missing Insight events.
pub fn run(store: &Store, scanner: &mut Scanner, o: &RunOptions) -> Result<Report> {
    let Some((first, end)) = store_minutes(store)? else {
        return Ok(Report { start_minute: 0, end_minute: 0, insights: Vec::new(), appended: o.backfill.then(Appended::default) });
    };
    let lo = o.start_ms.map_or(first, |t| t.div_euclid(MINUTE_MS)).max(first);
    let hi = o.end_ms.map_or(end, |t| t.div_euclid(MINUTE_MS) + 1).min(end);
    if lo >= hi {
        return Ok(Report { start_minute: lo, end_minute: lo, insights: Vec::new(), appended: o.backfill.then(Appended::default) });
    }
    let insights = scanner.scan(store, lo, hi, &o.detect)?;
    let appended = if o.backfill { Some(append_missing(store, &insights)?) } else { None };
    Ok(Report { start_minute: lo, end_minute: hi, insights, appended })
}

/// An insight as reports show it: its ids, type and times (RFC 3339)
/// beside the fields of [`Insight`].
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct InsightView<'a> {
    shared_event_id: String,
    insight_type: &'static str,
    start: String,
    end: Option<String>,
    #[serde(flatten)]
    insight: &'a Insight,
}

fn insight_views<S: serde::Serializer>(v: &[Insight], s: S) -> std::result::Result<S::Ok, S::Error> {
    use crate::event::format_event_time;
    s.collect_seq(v.iter().map(|i| InsightView {
        shared_event_id: i.shared_event_id(),
        insight_type: i.insight_type(),
        start: format_event_time(i.start_minute * MINUTE_MS),
        end: i.end_minute.map(|m| format_event_time(m * MINUTE_MS)),
        insight: i,
    }))
}
