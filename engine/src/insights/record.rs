//! Insights found in a range of history, and the Insight events that
//! record them: CloudTrail's record shape (eventType
//! `AwsCloudTrailInsight`, eventCategory `Insight`, a Start and an End
//! sharing `sharedEventID`, `insightDetails` with statistics and the top 5
//! attributions), so that they are stored, queried and proven like any
//! other event.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::counters::{Cell, Counters, Counts, SeriesKey, Top, MINUTE_MS};
use super::detect::{detect, DetectOptions, Direction};

/// A contributor to an insight: its per-minute average over the insight
/// and over the baseline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Contributor {
    pub value: String,
    pub insight: f64,
    pub baseline: f64,
}

/// The top 5 of each attribute.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Attributions {
    pub users: Vec<Contributor>,
    pub agents: Vec<Contributor>,
    /// Empty for an error-rate insight (its series is one error code).
    pub errors: Vec<Contributor>,
}

/// One insight: a series' spike or drop.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Insight {
    pub key: SeriesKey,
    pub direction: Direction,
    /// Unix minutes: the first minute outside the band, and the first of
    /// the minutes back inside that closed it (`None`: still open).
    pub start_minute: i64,
    pub end_minute: Option<i64>,
    /// Per-minute average over the baseline window (up to 7 days before the
    /// start), and that window's length.
    pub baseline_average: f64,
    pub baseline_minutes: u64,
    /// The count of the start minute, and the per-minute average over the
    /// insight (to its end, or to the end of the analysis).
    pub start_average: f64,
    pub insight_average: f64,
    pub insight_minutes: u64,
    /// Over the start minute (the Start record's), and over the whole
    /// insight (the End record's).
    pub start_attributions: Attributions,
    pub attributions: Attributions,
}

/// The baseline average is taken over this many minutes before the start
/// (CloudTrail reports about 7 days).
const BASELINE_REPORT_MINUTES: i64 = 7 * 1440;

/// An anomaly found, before it is described.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub key: SeriesKey,
    pub direction: Direction,
    pub start: i64,
    pub end: Option<i64>,
}

/// The per-minute counts of `key` over `[lo, hi)`, summed over `sources`.
fn dense(sources: &[&Counts], key: &SeriesKey, lo: i64, hi: i64) -> Vec<u32> {
    let mut counts = vec![0u32; (hi - lo).max(0) as usize];
    for src in sources {
        if let Some(ms) = src.get(key) {
            for (&m, &n) in ms.range(lo..hi) {
                let c = &mut counts[(m - lo) as usize];
                *c = c.saturating_add(n);
            }
        }
    }
    counts
}

/// The first minute of history the baseline of an analysis of `[lo, hi)`
/// needs: 28 days before the start of `lo`'s UTC day (the baseline of a
/// minute is the 28 days before its day, whatever range is analysed, so
/// every run finds the same insight at the same minute).
pub fn history_start(lo: i64, o: &DetectOptions) -> i64 {
    lo - lo.rem_euclid(1440) - o.baseline_max_minutes as i64
}

/// Starts are analysed in chunks of this many minutes (13 weeks), each with
/// its own baseline history, so memory stays bounded however long the
/// range (a store may hold eventTimes of any year).
const CHUNK_MINUTES: i64 = 91 * 1440;
/// ... and each chunk's analysis runs this far past its end to find the
/// ends of insights that start in it (a longer insight is reported open).
const CHUNK_EXTEND_MINUTES: i64 = 28 * 1440;

/// Finds the anomalies that start in `[lo, hi)` (unix minutes) and, with
/// `ending`, also those that started in the 28 days before and end in it
/// (for a pass over a recent window that must see ends of insights it
/// found earlier). The counts (summed over `sources`) must cover the
/// baseline history before `lo` too ([`history_start`]); `first_minute` is
/// the first minute the store holds anything for.
pub fn find(sources: &[&Counts], first_minute: i64, lo: i64, hi: i64, ending: bool, o: &DetectOptions) -> Vec<Found> {
    let mut keys: Vec<&SeriesKey> = sources.iter().flat_map(|s| s.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    let mut c_lo = lo;
    while c_lo < hi {
        // Nothing can start in a chunk without counts in it or in the 28
        // days before (a drop needs a steady rate first): skip to the next
        // minute with counts.
        let reach = history_start(c_lo, o);
        let next = keys
            .iter()
            .flat_map(|k| sources.iter().filter_map(|s| s.get(*k)).filter_map(|m| m.range(reach..).next().map(|(t, _)| *t)))
            .min();
        let Some(next) = next else { break };
        if next >= hi {
            break;
        }
        if next > c_lo + CHUNK_MINUTES {
            c_lo = next;
        }
        let c_hi = (c_lo - c_lo.rem_euclid(1440) + CHUNK_MINUTES).min(hi);
        let run_hi = c_hi.saturating_add(CHUNK_EXTEND_MINUTES).min(hi);
        let minute0 = history_start(c_lo, o);
        let len = (run_hi - minute0).max(0) as usize;
        let first = (first_minute - minute0).clamp(0, len as i64) as usize;
        let since = if ending && c_lo == lo { minute0 } else { c_lo };
        for key in &keys {
            if !could_be_anomalous(sources, key, minute0, since, run_hi, o) {
                continue;
            }
            let counts = dense(sources, key, minute0, run_hi);
            for a in detect(&counts, minute0, first, o) {
                let start = minute0 + a.start as i64;
                let end = a.end.map(|e| minute0 + e as i64);
                let ends_here = since < c_lo && start < c_lo && end.is_none_or(|e| e >= c_lo);
                if (c_lo..c_hi).contains(&start) || ends_here {
                    out.push(Found { key: (*key).clone(), direction: a.direction, start, end });
                }
            }
        }
        c_lo = c_hi;
    }
    out.sort_by(|a, b| (a.start, &a.key).cmp(&(b.start, &b.key)));
    out.dedup();
    out
}

/// Whether the detector could find anything in `key` starting in
/// `[lo, hi)`, from two sums and no per-minute pass: a spike needs a minute
/// above `spike_min_excess` (the band is at least that above the mean), a
/// drop a steady rate of `drop_min_rate`, over a day or more of baseline
/// (or, seasonally, over the same hour in `seasonal_weeks` weeks). Most
/// series are rare APIs that pass neither, so this skips almost all the
/// detector's work without changing its answer.
fn could_be_anomalous(sources: &[&Counts], key: &SeriesKey, minute0: i64, lo: i64, hi: i64, o: &DetectOptions) -> bool {
    // Per-source maxima: a minute's total is at most their sum.
    let peak: f64 = sources.iter().filter_map(|s| s.get(key)).map(|m| m.range(lo..hi).map(|(_, &n)| n).max().unwrap_or(0) as f64).sum();
    if peak > o.spike_min_excess {
        return true;
    }
    let total: f64 = sources.iter().filter_map(|s| s.get(key)).map(|m| m.range(minute0..hi).map(|(_, &n)| f64::from(n)).sum::<f64>()).sum();
    let steady_needs = (o.baseline_min_minutes as f64).min(60.0 * o.seasonal_weeks.max(1) as f64);
    total >= o.drop_min_rate * steady_needs
}

/// The minutes of a found anomaly's series whose contributors its
/// description needs: `(series, lo, hi)`, the baseline window and the
/// insight (up to `hi` when still open).
pub fn cells_needed(f: &Found, first_minute: i64, hi: i64) -> (SeriesKey, i64, i64) {
    (f.key.clone(), baseline_start(f.start, first_minute), f.end.unwrap_or(hi).max(f.start + 1))
}

fn baseline_start(start: i64, first_minute: i64) -> i64 {
    (start - BASELINE_REPORT_MINUTES).max(first_minute).min(start)
}

/// Describes a found anomaly: its statistics from `sources` (the counts)
/// and its attributions from `cells` (which must hold the series' cells
/// over [`cells_needed`]). `hi` is the end of the analysis.
pub fn describe(f: &Found, sources: &[&Counts], cells: &Counters, first_minute: i64, hi: i64) -> Insight {
    let start = f.start;
    let until = f.end.unwrap_or(hi).max(start + 1);
    let base_lo = baseline_start(start, first_minute);
    let sum = |lo: i64, hi: i64| dense(sources, &f.key, lo, hi).iter().map(|&c| f64::from(c)).sum::<f64>();
    let mean = |s: f64, n: u64| if n == 0 { 0.0 } else { s / n as f64 };
    let base_minutes = (start - base_lo) as u64;
    let ins_minutes = (until - start) as u64;
    let empty = std::collections::BTreeMap::new();
    let minutes = cells.series.get(&f.key).unwrap_or(&empty);
    let attributions = |lo: i64, hi: i64| {
        let n = (hi - lo) as u64;
        let ins = |g: fn(&Cell) -> &Top| minutes.range(lo..hi).map(move |(_, c)| g(c));
        let base = |g: fn(&Cell) -> &Top| minutes.range(base_lo..start).map(move |(_, c)| g(c));
        Attributions {
            users: attribution(ins(|c| &c.users), n, base(|c| &c.users), base_minutes),
            agents: attribution(ins(|c| &c.agents), n, base(|c| &c.agents), base_minutes),
            errors: if f.key.error.is_some() { Vec::new() } else { attribution(ins(|c| &c.errors), n, base(|c| &c.errors), base_minutes) },
        }
    };
    Insight {
        key: f.key.clone(),
        direction: f.direction,
        start_minute: start,
        end_minute: f.end,
        baseline_average: mean(sum(base_lo, start), base_minutes),
        baseline_minutes: base_minutes,
        start_average: sum(start, start + 1),
        insight_average: mean(sum(start, until), ins_minutes),
        insight_minutes: ins_minutes,
        start_attributions: attributions(start, start + 1),
        attributions: attributions(start, until),
    }
}

/// The top 5 values over the insight, with their per-minute averages there
/// and over the baseline.
fn attribution<'a>(
    ins: impl Iterator<Item = &'a Top>,
    ins_minutes: u64,
    base: impl Iterator<Item = &'a Top>,
    base_minutes: u64,
) -> Vec<Contributor> {
    fn total<'a>(tops: impl Iterator<Item = &'a Top>) -> std::collections::HashMap<&'a str, u64> {
        let mut t = std::collections::HashMap::new();
        for top in tops {
            for (v, n) in &top.entries {
                *t.entry(v.as_str()).or_default() += u64::from(*n);
            }
        }
        t
    }
    let i = total(ins);
    let b = total(base);
    let mut v: Vec<(&str, u64)> = i.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(5);
    let avg = |n: u64, m: u64| if m == 0 { 0.0 } else { round(n as f64 / m as f64) };
    v.into_iter()
        .map(|(k, n)| Contributor {
            value: k.to_string(),
            insight: avg(n, ins_minutes),
            baseline: avg(b.get(k).copied().unwrap_or(0), base_minutes),
        })
        .collect()
}

fn round(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// A UUID-shaped id derived from what it names (so the same insight gets
/// the same id on every run: backfill appends it once).
pub(crate) fn derived_id(parts: &[&str]) -> String {
    let h = hex::encode(&Sha256::digest(parts.join("\u{1f}").as_bytes())[..16]);
    format!("{}-{}-4{}-8{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// The eventID of the Start (`end` false) or End record of the insight
/// with this sharedEventID.
pub fn event_id_of(shared: &str, end: bool) -> String {
    derived_id(&[shared, if end { "End" } else { "Start" }])
}

impl Insight {
    fn id_parts(&self) -> [String; 6] {
        let k = &self.key;
        [
            k.account.clone(),
            k.region.clone(),
            k.source.clone(),
            k.name.clone(),
            k.error.clone().unwrap_or_default(),
            self.start_minute.to_string(),
        ]
    }

    pub fn shared_event_id(&self) -> String {
        let p = self.id_parts();
        derived_id(&["cairn-insight", &p[0], &p[1], &p[2], &p[3], &p[4], &p[5]])
    }

    /// The eventID of its Start (`end` false) or End record.
    pub fn event_id(&self, end: bool) -> String {
        event_id_of(&self.shared_event_id(), end)
    }

    pub fn insight_type(&self) -> &'static str {
        if self.key.error.is_some() {
            "ApiErrorRateInsight"
        } else {
            "ApiCallRateInsight"
        }
    }

    /// The Start record, and the End record when the insight has ended.
    pub fn records(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let shared = self.shared_event_id();
        (self.record(false, &shared), self.end_minute.map(|_| self.record(true, &shared)))
    }

    /// Its Start (`end` false) or End record, under `shared` as its
    /// sharedEventID (an insight recorded before under another start
    /// minute keeps the id it was recorded with).
    pub fn record(&self, end: bool, shared: &str) -> Vec<u8> {
        let minute = if end { self.end_minute.unwrap_or(self.start_minute) } else { self.start_minute };
        let attr = |name: &str, v: &[Contributor]| {
            json!({
                "attribute": name,
                "insight": v.iter().map(|c| json!({"value": c.value, "average": c.insight})).collect::<Vec<_>>(),
                "baseline": v.iter().map(|c| json!({"value": c.value, "average": c.baseline})).collect::<Vec<_>>(),
            })
        };
        let a = if end { &self.attributions } else { &self.start_attributions };
        let mut attributions = vec![attr("userIdentityArn", &a.users), attr("userAgent", &a.agents)];
        if self.key.error.is_none() {
            attributions.push(attr("errorCode", &a.errors));
        }
        let mut stats = json!({
            "baseline": {"average": round(self.baseline_average)},
            "insight": {"average": round(if end { self.insight_average } else { self.start_average })},
            "baselineDuration": self.baseline_minutes,
        });
        if end {
            stats["insightDuration"] = json!(self.insight_minutes);
        }
        let mut details = json!({
            "state": if end { "End" } else { "Start" },
            "eventSource": self.key.source,
            "eventName": self.key.name,
            "insightType": self.insight_type(),
            "insightContext": {"statistics": stats, "attributions": attributions},
        });
        if let Some(e) = &self.key.error {
            details["errorCode"] = json!(e);
        }
        let v = json!({
            "eventVersion": "1.08",
            "eventTime": crate::event::format_event_time(minute * MINUTE_MS),
            "awsRegion": self.key.region,
            "eventID": event_id_of(shared, end),
            "eventType": "AwsCloudTrailInsight",
            "recipientAccountId": self.key.account,
            "sharedEventID": shared,
            "insightDetails": details,
            "eventCategory": "Insight",
        });
        serde_json::to_vec(&v).unwrap_or_default()
    }
}
