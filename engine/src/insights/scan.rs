//! Running Insights over a store: the counts of the sealed segments (kept
//! between runs, so the daemon's once-a-minute pass reads only the
//! segments sealed since the last), the unsealed events' counters, the
//! detector, and the Insight events appended exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};

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

    /// Brings the cached counts up to date for minutes `[from, hi)`: reads
    /// the segments sealed since the last call (all of them when the range
    /// reaches further back, or segments were compacted or expired), and
    /// the unsealed events' counters.
    fn refresh(&mut self, store: &Store, from: i64, hi: i64) -> Result<View> {
        let (segments, unsealed) = store.counter_view(from, hi);
        let present: HashSet<u64> = segments.iter().map(|s| s.id).collect();
        if from < self.from || self.seen.iter().any(|id| !present.contains(id)) {
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
        Ok(View { segments, unsealed, overlay })
    }

    /// The insights that start in minutes `[lo, hi)` (with `ending`, also
    /// those that started up to 28 days before and end in it), described
    /// from the store's counters (the baseline reaches 28 days before `lo`).
    pub fn scan(&mut self, store: &Store, lo: i64, hi: i64, ending: bool, o: &DetectOptions) -> Result<Vec<Insight>> {
        let Some((first, _)) = store_minutes(store)? else { return Ok(Vec::new()) };
        let view = self.refresh(store, history_start(lo, o), hi)?;
        let found = find(&[&self.base, &view.overlay], first, lo, hi, ending, o);
        self.describe_all(&view, found, first, hi)
    }

    /// cairnd's pass at wall-clock minute `now`: the insights that started
    /// in the `lookback` minutes before the newest complete minute, or end
    /// there, with their Insight events appended where missing. The
    /// newest complete minute is the one before the newest minute with a
    /// counted event (not a RetentionCut or Insight record stamped now;
    /// never after `now`). A drop is reported only `settle` minutes after
    /// it was confirmed, so that events delivered late (CloudTrail's are up
    /// to 15 minutes) fill the quiet minutes first. `None`: nothing to
    /// analyse yet.
    pub fn pass(&mut self, store: &Store, now: i64, lookback: i64, settle: i64, o: &DetectOptions) -> Result<Option<Report>> {
        let Some((first, _)) = store_minutes(store)? else { return Ok(None) };
        let view = self.refresh(store, history_start(now - lookback, o), now + 1)?;
        let newest =
            [&self.base, &view.overlay].iter().flat_map(|c| c.values().filter_map(|m| m.range(..=now).next_back().map(|(t, _)| *t))).max();
        let Some(hi) = newest else { return Ok(None) };
        let lo = (hi - lookback).max(first);
        if lo >= hi {
            return Ok(None);
        }
        // Events stopped a while ago: the baseline reaches further back.
        let view = if history_start(lo, o) < self.from { self.refresh(store, history_start(lo, o), hi + 1)? } else { view };
        let mut found = find(&[&self.base, &view.overlay], first, lo, hi, true, o);
        found.retain(|f| f.direction != super::detect::Direction::Drop || f.start + (o.drop_minutes as i64) + settle <= hi);
        let insights = self.describe_all(&view, found, first, hi)?;
        let appended = append_missing(store, &insights)?;
        Ok(Some(Report { start_minute: lo, end_minute: hi, insights, appended: Some(appended) }))
    }

    /// Describes what `find` found: contributors are read only for the
    /// series and minutes the insights need.
    fn describe_all(&self, view: &View, found: Vec<super::record::Found>, first: i64, hi: i64) -> Result<Vec<Insight>> {
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let mut needs: HashMap<SeriesKey, Vec<(i64, i64)>> = HashMap::new();
        for f in &found {
            let (k, a, b) = cells_needed(f, first, hi);
            needs.entry(k).or_default().push((a, b));
        }
        let lo_need = needs.values().flatten().map(|r| r.0).min().unwrap_or(hi);
        let hi_need = needs.values().flatten().map(|r| r.1).max().unwrap_or(hi);
        let wanted = |k: &SeriesKey, m: i64| needs.get(k).is_some_and(|rs| rs.iter().any(|r| (r.0..r.1).contains(&m)));
        let mut cells = Counters::default();
        for seg in view.segments.iter().filter(|s| touches(s, lo_need, hi_need)) {
            seg.visit_counters(|k, m, _, cell| {
                if wanted(k, m) {
                    cells.add_cell(k, m, &cell());
                }
            })?;
        }
        for (k, minutes) in &view.unsealed.series {
            for (m, c) in minutes {
                if wanted(k, *m) {
                    cells.add_cell(k, *m, c);
                }
            }
        }
        let sources = [&self.base, &view.overlay];
        Ok(found.iter().map(|f| describe(f, &sources, &cells, first, hi)).collect())
    }
}

/// What one refresh saw: the segments, and the unsealed events' counters
/// (with contributors) and counts.
struct View {
    segments: std::sync::Arc<crate::segment::set::SegmentSet>,
    unsealed: Counters,
    overlay: Counts,
}

/// Counts per minute (unix minutes in `[lo, hi)`) of one API's calls,
/// summed over accounts and regions, from the Insights counters: write
/// management calls when `error_code` is `None` (what ApiCallRateInsight
/// watches), calls that ended with that error code otherwise
/// (ApiErrorRateInsight). Minutes without calls are absent. This is what
/// CloudTrail's ListInsightsMetricData reports.
pub fn metric_minutes(store: &Store, source: &str, name: &str, error_code: Option<&str>, lo: i64, hi: i64) -> Result<BTreeMap<i64, u64>> {
    let mut out = BTreeMap::new();
    if lo >= hi {
        return Ok(out);
    }
    let wanted = |k: &SeriesKey| k.source == source && k.name == name && k.error.as_deref() == error_code;
    let (segments, unsealed) = store.counter_view(lo, hi);
    for seg in segments.iter() {
        if touches(seg, lo, hi) {
            seg.visit_counters(|k, m, n, _| {
                if (lo..hi).contains(&m) && wanted(k) {
                    *out.entry(m).or_insert(0) += u64::from(n);
                }
            })?;
        }
    }
    for (k, minutes) in unsealed.counts() {
        if wanted(&k) {
            for (m, n) in minutes.range(lo..hi) {
                *out.entry(*m).or_insert(0) += u64::from(*n);
            }
        }
    }
    Ok(out)
}

fn add_count(counts: &mut Counts, k: &SeriesKey, minute: i64, n: u32) {
    let c = super::counters::minutes_of(counts, k).entry(minute).or_default();
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

/// An insight the store already records: its Start and End minutes.
#[derive(Default)]
struct Recorded {
    start: Option<i64>,
    end: Option<i64>,
}

/// The insights of `i`'s series recorded in the store whose span overlaps
/// `i`'s (by sharedEventID), found by lookup (EventCategory, EventSource,
/// EventName) over the 28 days before `i` starts through its end.
fn recorded_overlapping(store: &Store, i: &Insight) -> Result<Vec<(String, Recorded)>> {
    use crate::index::Attr;
    let to_ms = |m: i64| m.saturating_mul(MINUTE_MS);
    let q = crate::query::Query {
        start_ms: Some(to_ms(i.start_minute - 28 * 1440)),
        end_ms: i.end_minute.map(|m| to_ms(m + 1) - 1),
        filters: vec![
            (Attr::EventCategory, vec!["Insight".into()]),
            (Attr::EventSource, vec![i.key.source.clone()]),
            (Attr::EventName, vec![i.key.name.clone()]),
        ],
    };
    let mut by_id: HashMap<String, Recorded> = HashMap::new();
    store
        .export(&q, crate::query::Order::OldestFirst, |e| {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&e.record) else { return true };
            let d = &v["insightDetails"];
            let same = v["eventType"] == "AwsCloudTrailInsight"
                && v["recipientAccountId"].as_str() == Some(i.key.account.as_str())
                && v["awsRegion"].as_str() == Some(i.key.region.as_str())
                && d["eventSource"].as_str() == Some(i.key.source.as_str())
                && d["eventName"].as_str() == Some(i.key.name.as_str())
                && d["errorCode"].as_str() == i.key.error.as_deref();
            let (Some(shared), Some(t)) = (v["sharedEventID"].as_str(), v["eventTime"].as_str().and_then(crate::event::parse_event_time))
            else {
                return true;
            };
            if same {
                let r = by_id.entry(shared.to_string()).or_default();
                match d["state"].as_str() {
                    Some("Start") => r.start = Some(t.div_euclid(MINUTE_MS)),
                    Some("End") => r.end = Some(t.div_euclid(MINUTE_MS)),
                    _ => {}
                }
            }
            true
        })
        .map_err(|e| crate::error::Error::InvalidArgument(format!("looking up recorded insights: {e}")))?;
    let (s, e) = (i.start_minute, i.end_minute.unwrap_or(i64::MAX));
    let own = i.shared_event_id();
    let mut out: Vec<(String, Recorded)> =
        by_id.into_iter().filter(|(id, r)| *id == own || (r.start.unwrap_or(i64::MIN) < e && s < r.end.unwrap_or(i64::MAX))).collect();
    // Its own id first, then the earliest.
    out.sort_by_key(|(id, r)| (*id != own, r.start));
    Ok(out)
}

/// Appends the Insight events of `insights` the store does not hold yet:
/// each Start once, and each End once the insight has ended. The ids are
/// derived from the series and the start minute, so every run names the
/// same insight the same way; and an insight the store already records
/// under a slightly different start (events that arrived late moved it)
/// is recognised by its overlapping span and keeps the id it has.
pub fn append_missing(store: &Store, insights: &[Insight]) -> Result<Appended> {
    let mut out = Appended::default();
    let mut records: Vec<Vec<u8>> = Vec::new();
    for i in insights {
        let recorded = recorded_overlapping(store, i)?;
        let (shared, has_start, has_end) = match recorded.first() {
            Some((id, r)) => (id.clone(), r.start.is_some(), r.end.is_some()),
            None => (i.shared_event_id(), false, false),
        };
        let mut want = |is_end: bool, present: bool| {
            if present {
                out.present += 1;
            } else {
                records.push(i.record(is_end, &shared));
            }
        };
        want(false, has_start);
        if i.end_minute.is_some() {
            want(true, has_end);
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
    /// Also the insights that started up to 28 days before `start_ms` and
    /// end in the range (cairnd's passes over a recent window, which must
    /// record the ends of insights they found earlier).
    pub ending: bool,
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
    let insights = scanner.scan(store, lo, hi, o.ending, &o.detect)?;
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
