//! Rollups: 5-minute summaries of data events, in the shape of
//! CloudTrail's aggregated events (eventCategory `Aggregated`, eventType
//! `AwsAggregatedEvent`), appended to the log like any event, so that
//! counts over months of high-volume data events (S3 object reads, Lambda
//! invokes) read one record per window and source instead of every event.
//! The originals are kept (retention removes them as it removes any event).
//!
//! One record per (5-minute window, account, region, eventSource) with data
//! events: `timeWindow {windowStart, windowEnd, windowSize}` and
//! `summary {primaryDimension: "eventName", details: [{eventName, count,
//! errorCount, userIdentityArns, errorCodes}]}` (docs/FORMAT.md). Its
//! `eventId` is derived from the window, account, region and source, so a
//! rollup is written once however often `cairn compact --rollup` runs.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use crate::error::{Error, Result};
use crate::event::format_event_time;
use crate::index::Attr;
use crate::query::{Order, Query};
use crate::store::{Outcome, Store};

/// The window length, in minutes.
pub const WINDOW_MINUTES: i64 = 5;
const WINDOW_MS: i64 = WINDOW_MINUTES * 60_000;
/// Principals and error codes listed per eventName and window; the rest
/// are summed under `"other"`.
pub const TOP_LISTED: usize = 10;
/// Distinct values tracked per eventName and window before the smallest
/// are folded into `"other"` (bounds memory under any cardinality).
const TRACKED: usize = 1000;

/// What to roll up.
#[derive(Debug, Clone, Default)]
pub struct RollupOptions {
    /// Windows starting in this eventTime range (unix ms, inclusive;
    /// `None`: open). Only complete windows are written: none that holds
    /// or follows the newest stored event.
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Report what would be written; write nothing.
    pub dry_run: bool,
}

/// What a rollup did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RollupReport {
    /// Data events summarised.
    pub data_events: u64,
    /// Rollup records (window, account, region, eventSource) computed.
    pub records: u64,
    /// ... appended now, and already stored (same eventId).
    pub appended: u64,
    pub present: u64,
    pub dry_run: bool,
}

#[derive(Default)]
struct Counted {
    values: HashMap<String, u64>,
    other: u64,
}

impl Counted {
    fn add(&mut self, v: &str) {
        if let Some(n) = self.values.get_mut(v) {
            *n += 1;
            return;
        }
        if self.values.len() >= TRACKED {
            // Fold the smallest half into "other".
            let mut all: Vec<(String, u64)> = self.values.drain().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            self.other += all[TRACKED / 2..].iter().map(|e| e.1).sum::<u64>();
            all.truncate(TRACKED / 2);
            self.values = all.into_iter().collect();
        }
        self.values.insert(v.to_string(), 1);
    }

    fn listed(&self) -> serde_json::Value {
        let mut v: Vec<(&String, &u64)> = self.values.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let rest: u64 = v.iter().skip(TOP_LISTED).map(|e| *e.1).sum::<u64>() + self.other;
        let mut out: Vec<serde_json::Value> = v.iter().take(TOP_LISTED).map(|(k, n)| json!({"value": k, "count": n})).collect();
        if rest > 0 {
            out.push(json!({"value": "other", "count": rest}));
        }
        serde_json::Value::Array(out)
    }
}

#[derive(Default)]
struct NameAgg {
    count: u64,
    errors: u64,
    users: Counted,
    codes: Counted,
}

/// (window start ms, account, region, eventSource).
type WindowKey = (i64, String, String, String);

fn derived_id(k: &WindowKey) -> String {
    crate::insights::record::derived_id(&["cairn-rollup", &k.0.to_string(), &k.1, &k.2, &k.3])
}

fn record(k: &WindowKey, names: &BTreeMap<String, NameAgg>) -> Vec<u8> {
    let details: Vec<serde_json::Value> = names
        .iter()
        .map(|(name, a)| {
            json!({
                "eventName": name,
                "count": a.count,
                "errorCount": a.errors,
                "userIdentityArns": a.users.listed(),
                "errorCodes": a.codes.listed(),
            })
        })
        .collect();
    let v = json!({
        "eventVersion": "1.0",
        "accountId": k.1,
        "eventId": derived_id(k),
        "eventCategory": "Aggregated",
        "eventType": crate::event::AGGREGATED_EVENT_TYPE,
        "awsRegion": k.2,
        "eventSource": k.3,
        "timeWindow": {
            "windowStart": format_event_time(k.0),
            "windowEnd": format_event_time(k.0 + WINDOW_MS),
            "windowSize": format!("PT{WINDOW_MINUTES}M"),
        },
        "summary": {"primaryDimension": "eventName", "details": details},
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Summarises the data events of complete 5-minute windows in the range
/// and appends the rollups the store does not hold yet. Streams the events
/// in time order, so memory holds one window's summaries at a time.
pub fn rollup(store: &Store, o: &RollupOptions) -> Result<RollupReport> {
    let mut report = RollupReport { dry_run: o.dry_run, ..Default::default() };
    let Some(newest) = store.stats()?.max_time_ms else { return Ok(report) };
    // The window holding the newest event may still fill.
    let complete_before = newest.div_euclid(WINDOW_MS) * WINDOW_MS;
    let q = Query {
        start_ms: o.start_ms.map(|t| t.div_euclid(WINDOW_MS) * WINDOW_MS),
        end_ms: Some(o.end_ms.map_or(complete_before, |e| (e.div_euclid(WINDOW_MS) + 1) * WINDOW_MS).min(complete_before) - 1),
        filters: vec![(Attr::EventCategory, vec!["Data".into()])],
    };
    if q.end_ms < q.start_ms {
        return Ok(report);
    }
    let mut open: BTreeMap<WindowKey, BTreeMap<String, NameAgg>> = BTreeMap::new();
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut failure: Option<Error> = None;
    let mut flush = |open: &mut BTreeMap<WindowKey, BTreeMap<String, NameAgg>>, before: i64, report: &mut RollupReport| -> Result<()> {
        while let Some(entry) = open.first_entry() {
            if entry.key().0 >= before {
                break;
            }
            let (k, names) = entry.remove_entry();
            report.records += 1;
            if !store.get(&derived_id(&k))?.is_empty() {
                report.present += 1;
            } else if !o.dry_run {
                pending.push(record(&k, &names));
            }
        }
        if pending.len() >= 1000 || (before == i64::MAX && !pending.is_empty()) {
            let refs: Vec<&[u8]> = pending.iter().map(Vec::as_slice).collect();
            for out in store.append(&refs)? {
                match out {
                    Outcome::Stored(_) => report.appended += 1,
                    Outcome::Duplicate(_) => report.present += 1,
                    Outcome::Rejected(r) => return Err(Error::InvalidArgument(format!("a rollup record was rejected: {r}"))),
                }
            }
            pending.clear();
        }
        Ok(())
    };
    let mut current = i64::MIN;
    store
        .export(&q, Order::OldestFirst, |e| {
            let Ok(ev) = crate::event::parse_event(&e.record, crate::limits::RECORD_BYTES_MAX) else { return true };
            let w = ev.time_ms.div_euclid(WINDOW_MS) * WINDOW_MS;
            if w > current {
                current = w;
                if let Err(err) = flush(&mut open, w, &mut report) {
                    failure = Some(err);
                    return false;
                }
            }
            report.data_events += 1;
            let account = ev.recipient_account_id.as_deref().or(ev.account_id.as_deref()).unwrap_or("").to_string();
            let key =
                (w, account, ev.aws_region.as_deref().unwrap_or("").to_string(), ev.event_source.as_deref().unwrap_or("").to_string());
            let a = open.entry(key).or_default().entry(ev.event_name.to_string()).or_default();
            a.count += 1;
            a.users.add(ev.user_identity_arn.as_deref().unwrap_or("null"));
            if let Some(code) = ev.error_code.as_deref() {
                a.errors += 1;
                a.codes.add(code);
            }
            true
        })
        .map_err(|e| Error::InvalidArgument(format!("reading data events: {e}")))?;
    if let Some(e) = failure {
        return Err(e);
    }
    flush(&mut open, i64::MAX, &mut report)?;
    Ok(report)
}
