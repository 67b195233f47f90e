//! The engine's reports (compaction, retention, rollups, Insights) as wire
//! messages, and back: one place, so cairnd and `cairn` running embedded
//! print the same thing from the same shapes.

use cairn_engine::compact::{CompactReport, RunReport};
use cairn_engine::event::format_event_time;
use cairn_engine::insights::detect::Direction;
use cairn_engine::insights::record::{Attributions, Contributor};
use cairn_engine::insights::scan::Report as InsightsReport;
use cairn_engine::retention::RetentionReport;
use cairn_engine::rollup::RollupReport;

use crate::protocol::{
    WireAppended, WireAttributions, WireCompactReport, WireCompactRun, WireContributor, WireInsight, WireInsightsReport,
    WireRetentionReport, WireRollupReport, WireSeriesKey,
};

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
