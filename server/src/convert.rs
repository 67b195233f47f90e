//! Every conversion between the engine's types and the wire's, both ways:
//! events, queries, append outcomes, errors, statistics, compaction
//! options, the reports (compaction, retention, rollups, Insights,
//! verify) and delivery's status. One place, so cairnd, the client and `cairn` running embedded
//! agree on every shape.

use cairn_engine::compact::{CompactOptions, CompactReport, RunReport};
use cairn_engine::event::format_event_time;
use cairn_engine::insights::detect::Direction;
use cairn_engine::insights::record::{Attributions, Contributor};
use cairn_engine::insights::scan::Report as InsightsReport;
use cairn_engine::retention::RetentionReport;
use cairn_engine::rollup::RollupReport;
use cairn_engine::verify::{Problem, ProblemKind, Report as VerifyReport};
use cairn_engine::{Attr, Error, Outcome, Query, QueryError, Stats, StoredEvent};

use crate::protocol::{
    codes, WireAppended, WireAttributions, WireCompact, WireCompactReport, WireCompactRun, WireContributor, WireError, WireEvent,
    WireInsight, WireInsightsReport, WireOutcome, WireQuery, WireRetentionReport, WireRollupReport, WireSeriesKey, WireStats,
    WireVerifyReport, VERIFY_PROBLEMS_MAX,
};

impl From<StoredEvent> for WireEvent {
    fn from(e: StoredEvent) -> Self {
        WireEvent { seq: e.seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: e.record }
    }
}

impl From<WireEvent> for StoredEvent {
    fn from(e: WireEvent) -> Self {
        StoredEvent { seq: e.seq, ingest_ms: e.ingest_ms, time_ms: e.time_ms, record: e.record }
    }
}

impl From<&Query> for WireQuery {
    fn from(q: &Query) -> Self {
        WireQuery {
            start_ms: q.start_ms,
            end_ms: q.end_ms,
            filters: q.filters.iter().map(|(a, v)| (a.name().to_string(), v.clone())).collect(),
        }
    }
}

impl TryFrom<&WireQuery> for Query {
    type Error = WireError;

    /// Names an unknown attribute.
    fn try_from(q: &WireQuery) -> Result<Self, WireError> {
        let mut filters: Vec<(Attr, Vec<String>)> = Vec::new();
        for (name, values) in &q.filters {
            let attr = Attr::parse(name).ok_or_else(|| WireError {
                code: codes::INVALID_LOOKUP_ATTRIBUTES.into(),
                message: format!("unknown attribute {name:?}"),
            })?;
            filters.push((attr, values.clone()));
        }
        Ok(Query { start_ms: q.start_ms, end_ms: q.end_ms, filters })
    }
}

impl From<Outcome> for WireOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Stored(s) => WireOutcome::Stored(s),
            Outcome::Duplicate(s) => WireOutcome::Duplicate(s),
            Outcome::Rejected(r) => WireOutcome::Rejected { code: r.code().into(), message: r.to_string() },
        }
    }
}

impl From<QueryError> for WireError {
    fn from(e: QueryError) -> Self {
        WireError { code: e.code().into(), message: e.message() }
    }
}

/// The integrity requests' errors (proofs, consistency, verify): a bad
/// parameter or an unknown event by name, anything else as internal.
impl From<Error> for WireError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(m) => WireError { code: codes::INVALID_PARAMETER.into(), message: m },
            e @ Error::EventNotFound(_) => WireError { code: codes::EVENT_NOT_FOUND.into(), message: e.to_string() },
            other => WireError { code: codes::INTERNAL.into(), message: other.to_string() },
        }
    }
}

/// A store's statistics with what only the daemon knows.
pub fn wire_stats(s: &Stats, connections: u64, appended_since_start: u64, uptime_ms: u64) -> WireStats {
    WireStats {
        events: s.events,
        sealed_events: s.sealed_events,
        segments: s.segments as u64,
        record_bytes: s.record_bytes,
        disk_bytes: s.disk_bytes,
        min_time_ms: s.min_time_ms,
        max_time_ms: s.max_time_ms,
        tree_size: s.tree_size,
        root: s.root,
        connections,
        appended_since_start,
        uptime_ms,
    }
}

/// The store's side of a server's statistics. The wire does not carry the
/// split of disk bytes (segments, WAL, tiles): those stay zero, and
/// `cairn stats` does not show them for a server.
impl From<&WireStats> for Stats {
    fn from(w: &WireStats) -> Self {
        Stats {
            events: w.events,
            sealed_events: w.sealed_events,
            segments: w.segments as usize,
            record_bytes: w.record_bytes,
            disk_bytes: w.disk_bytes,
            min_time_ms: w.min_time_ms,
            max_time_ms: w.max_time_ms,
            tree_size: w.tree_size,
            root: w.root,
            ..Stats::default()
        }
    }
}

/// The engine's compaction options from the wire's (zero: the default).
impl From<&WireCompact> for CompactOptions {
    fn from(w: &WireCompact) -> Self {
        let d = CompactOptions::default();
        let or = |v: u64, d: u64| if v == 0 { d } else { v };
        CompactOptions {
            target_bytes: or(w.target_bytes, d.target_bytes),
            small_bytes: or(w.small_bytes, d.small_bytes),
            all: w.all,
            zstd_level: if w.zstd_level == 0 { d.zstd_level } else { w.zstd_level },
            block_bytes: or(w.block_bytes, d.block_bytes as u64) as usize,
            dictionary: w.dictionary,
            dry_run: w.dry_run,
            max_bytes_per_sec: w.max_bytes_per_sec,
            stop: None,
        }
    }
}

impl From<&CompactOptions> for WireCompact {
    fn from(o: &CompactOptions) -> Self {
        WireCompact {
            target_bytes: o.target_bytes,
            small_bytes: o.small_bytes,
            all: o.all,
            zstd_level: o.zstd_level,
            block_bytes: o.block_bytes as u64,
            dictionary: o.dictionary,
            dry_run: o.dry_run,
            max_bytes_per_sec: o.max_bytes_per_sec,
        }
    }
}

impl From<&VerifyReport> for WireVerifyReport {
    fn from(r: &VerifyReport) -> Self {
        WireVerifyReport {
            events: r.events,
            segments: r.segments as u64,
            record_bytes: r.record_bytes,
            tree_size: r.tree_size,
            root: r.root,
            history_checkpoints: r.history_checkpoints as u64,
            external_checkpoints: r.external_checkpoints as u64,
            trusted_keys: r.trusted_keys,
            problems: r.problems.iter().take(VERIFY_PROBLEMS_MAX).map(|p| (p.kind.name().to_string(), p.what.clone())).collect(),
            pruned_below: r.pruned_below,
            pruned_checkpoints: r.pruned_checkpoints as u64,
            problems_omitted: r.problems_omitted + r.problems.len().saturating_sub(VERIFY_PROBLEMS_MAX) as u64,
        }
    }
}

impl From<WireVerifyReport> for VerifyReport {
    fn from(w: WireVerifyReport) -> Self {
        let kind = |k: &str| match k {
            "altered" => ProblemKind::Altered,
            "missing" => ProblemKind::Missing,
            "extra" => ProblemKind::Extra,
            "chain" => ProblemKind::Chain,
            "checkpoint" => ProblemKind::Checkpoint,
            "signature" => ProblemKind::Signature,
            _ => ProblemKind::Unreadable,
        };
        VerifyReport {
            events: w.events,
            segments: w.segments as usize,
            record_bytes: w.record_bytes,
            tree_size: w.tree_size,
            root: w.root,
            history_checkpoints: w.history_checkpoints as usize,
            external_checkpoints: w.external_checkpoints as usize,
            trusted_keys: w.trusted_keys,
            problems: w.problems.into_iter().map(|(k, what)| Problem { kind: kind(&k), what }).collect(),
            pruned_below: w.pruned_below,
            pruned_checkpoints: w.pruned_checkpoints as usize,
            problems_omitted: w.problems_omitted,
        }
    }
}

const MINUTE_MS: i64 = 60_000;

impl From<&CompactReport> for WireCompactReport {
    fn from(r: &CompactReport) -> Self {
        WireCompactReport {
            dry_run: r.dry_run,
            segments_before: r.segments_before as u64,
            segments_after: r.segments_after as u64,
            bytes_before: r.bytes_before,
            bytes_after: r.bytes_after,
            record_bytes: r.record_bytes,
            seconds: r.seconds,
            runs: r
                .runs
                .iter()
                .map(|u| WireCompactRun {
                    first_seq: u.first_seq,
                    events: u.events,
                    segments: u.segments as u64,
                    bytes_before: u.bytes_before,
                    bytes_after: u.bytes_after,
                })
                .collect(),
            dictionary_bytes: r.dictionary_bytes as u64,
        }
    }
}

impl From<WireCompactReport> for CompactReport {
    fn from(w: WireCompactReport) -> Self {
        CompactReport {
            dry_run: w.dry_run,
            segments_before: w.segments_before as usize,
            segments_after: w.segments_after as usize,
            bytes_before: w.bytes_before,
            bytes_after: w.bytes_after,
            record_bytes: w.record_bytes,
            seconds: w.seconds,
            runs: w
                .runs
                .into_iter()
                .map(|u| RunReport {
                    first_seq: u.first_seq,
                    events: u.events,
                    segments: u.segments as usize,
                    bytes_before: u.bytes_before,
                    bytes_after: u.bytes_after,
                })
                .collect(),
            dictionary_bytes: w.dictionary_bytes as usize,
        }
    }
}

impl From<&RetentionReport> for WireRetentionReport {
    fn from(r: &RetentionReport) -> Self {
        WireRetentionReport {
            dry_run: r.dry_run,
            cutoff_ms: r.cutoff_ms,
            segments_removed: r.segments_removed as u64,
            events_removed: r.events_removed,
            bytes_removed: r.bytes_removed,
            min_retained_seq: r.min_retained_seq,
            event_seq: r.event_seq,
        }
    }
}

impl From<WireRetentionReport> for RetentionReport {
    fn from(w: WireRetentionReport) -> Self {
        RetentionReport {
            dry_run: w.dry_run,
            cutoff_ms: w.cutoff_ms,
            segments_removed: w.segments_removed as usize,
            events_removed: w.events_removed,
            bytes_removed: w.bytes_removed,
            min_retained_seq: w.min_retained_seq,
            event_seq: w.event_seq,
            // Not on the wire (protocol v1): cairnd logs the hold.
            held_by: None,
        }
    }
}

impl From<&RollupReport> for WireRollupReport {
    fn from(r: &RollupReport) -> Self {
        WireRollupReport { data_events: r.data_events, records: r.records, appended: r.appended, present: r.present, dry_run: r.dry_run }
    }
}

impl From<WireRollupReport> for RollupReport {
    fn from(w: WireRollupReport) -> Self {
        RollupReport { data_events: w.data_events, records: w.records, appended: w.appended, present: w.present, dry_run: w.dry_run }
    }
}

fn contributors(c: &[Contributor]) -> Vec<WireContributor> {
    c.iter().map(|c| WireContributor { value: c.value.clone(), insight: c.insight, baseline: c.baseline }).collect()
}

fn attributions(a: &Attributions) -> WireAttributions {
    WireAttributions { users: contributors(&a.users), agents: contributors(&a.agents), errors: contributors(&a.errors) }
}

impl From<&InsightsReport> for WireInsightsReport {
    fn from(r: &InsightsReport) -> Self {
        WireInsightsReport {
            start_minute: r.start_minute,
            end_minute: r.end_minute,
            insights: r
                .insights
                .iter()
                .map(|i| WireInsight {
                    shared_event_id: i.shared_event_id(),
                    insight_type: i.insight_type().to_string(),
                    start: format_event_time(i.start_minute * MINUTE_MS),
                    end: i.end_minute.map(|m| format_event_time(m * MINUTE_MS)),
                    key: WireSeriesKey {
                        account: i.key.account.clone(),
                        region: i.key.region.clone(),
                        source: i.key.source.clone(),
                        name: i.key.name.clone(),
                        error: i.key.error.clone(),
                    },
                    direction: match i.direction {
                        Direction::Spike => "spike",
                        Direction::Drop => "drop",
                    }
                    .to_string(),
                    start_minute: i.start_minute,
                    end_minute: i.end_minute,
                    baseline_average: i.baseline_average,
                    baseline_minutes: i.baseline_minutes,
                    start_average: i.start_average,
                    insight_average: i.insight_average,
                    insight_minutes: i.insight_minutes,
                    start_attributions: attributions(&i.start_attributions),
                    attributions: attributions(&i.attributions),
                })
                .collect(),
            appended: r.appended.as_ref().map(|a| WireAppended { appended: a.appended, present: a.present }),
        }
    }
}

/// One event as CloudTrail's LookupEvents returns it, and whether it is an
/// Insight event. `CloudTrailEvent` is the stored record as a string;
/// members the record lacks are left out, as CloudTrail leaves them out.
pub fn lookup_event(e: &StoredEvent) -> (serde_json::Value, bool) {
    let mut m = serde_json::Map::new();
    let mut insight = false;
    if let Ok(v) = cairn_engine::parse_event(&e.record, cairn_engine::limits::RECORD_BYTES_MAX) {
        let mut put = |k: &str, x: &Option<std::borrow::Cow<'_, str>>| {
            if let Some(x) = x {
                m.insert(k.into(), serde_json::Value::String(x.to_string()));
            }
        };
        put("EventId", &v.event_id);
        put("EventName", &Some(v.event_name.clone()));
        put("ReadOnly", &v.read_only.map(|b| b.to_string().into()));
        put("AccessKeyId", &v.access_key_id);
        put("EventSource", &v.event_source);
        put("Username", &v.username);
        let resources: Vec<serde_json::Value> = v
            .resources
            .iter()
            .filter_map(|(t, n)| {
                let mut r = serde_json::Map::new();
                if let Some(t) = t {
                    r.insert("ResourceType".into(), serde_json::Value::String(t.to_string()));
                }
                r.insert("ResourceName".into(), serde_json::Value::String(n.as_ref()?.to_string()));
                Some(serde_json::Value::Object(r))
            })
            .collect();
        m.insert("Resources".into(), serde_json::Value::Array(resources));
        insight = v.event_category.as_deref() == Some("Insight");
    }
    m.insert("EventTime".into(), serde_json::json!(e.time_ms as f64 / 1000.0));
    m.insert("CloudTrailEvent".into(), serde_json::Value::String(String::from_utf8_lossy(&e.record).into_owned()));
    (serde_json::Value::Object(m), insight)
}

impl From<&cairn_deliver::DeliveryStatus> for crate::protocol::WireDelivery {
    fn from(s: &cairn_deliver::DeliveryStatus) -> Self {
        crate::protocol::WireDelivery {
            target: s.target.clone(),
            next_seq: s.next_seq,
            backlog_events: s.backlog_events,
            delivered_events: s.delivered_events,
            delivered_files: s.delivered_files,
            digest_files: s.digest_files,
            last_delivery_ms: s.last_delivery_ms,
            last_digest_ms: s.last_digest_ms,
            last_error: s.last_error.clone(),
            last_error_ms: s.last_error_ms,
        }
    }
}

/// The wire does not carry the newest digest's key.
impl From<crate::protocol::WireDelivery> for cairn_deliver::DeliveryStatus {
    fn from(d: crate::protocol::WireDelivery) -> Self {
        cairn_deliver::DeliveryStatus {
            target: d.target,
            next_seq: d.next_seq,
            backlog_events: d.backlog_events,
            delivered_events: d.delivered_events,
            delivered_files: d.delivered_files,
            digest_files: d.digest_files,
            last_delivery_ms: d.last_delivery_ms,
            last_digest_ms: d.last_digest_ms,
            last_digest_key: None,
            last_error: d.last_error,
            last_error_ms: d.last_error_ms,
        }
    }
}
