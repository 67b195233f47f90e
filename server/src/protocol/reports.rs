//! The reports long requests answer with (compaction, retention, rollups,
//! Insights, verify), as typed wire messages (version 2).

use serde::{Deserialize, Serialize};

/// A compaction's report. Serialized to JSON (`cairn compact --output
/// json`) under these names.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireCompactReport {
    pub dry_run: bool,
    pub segments_before: u64,
    pub segments_after: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Record bytes read.
    pub record_bytes: u64,
    pub seconds: f64,
    pub runs: Vec<WireCompactRun>,
    /// Bytes of the trained dictionary (0: none).
    pub dictionary_bytes: u64,
}

/// One run of adjacent segments merged into one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireCompactRun {
    pub first_seq: u64,
    pub events: u64,
    pub segments: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A retention run's report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireRetentionReport {
    pub dry_run: bool,
    /// Events with an (effective) eventTime before this are expired.
    pub cutoff_ms: i64,
    pub segments_removed: u64,
    pub events_removed: u64,
    pub bytes_removed: u64,
    /// The lowest seq the store holds afterwards.
    pub min_retained_seq: u64,
    /// The seq of the `RetentionCut` event appended to the log.
    pub event_seq: Option<u64>,
}

/// A rollup run's report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireRollupReport {
    /// Data events summarised.
    pub data_events: u64,
    /// Rollup records computed, appended now, and already stored.
    pub records: u64,
    pub appended: u64,
    pub present: u64,
    pub dry_run: bool,
}

/// What an Insights run found. Serialized to JSON (`cairn insights
/// --output json`) under these names.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireInsightsReport {
    /// The minutes analysed, `[start_minute, end_minute)` (unix minutes).
    pub start_minute: i64,
    pub end_minute: i64,
    pub insights: Vec<WireInsight>,
    /// With `backfill`: Insight events appended now and already stored.
    pub appended: Option<WireAppended>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireAppended {
    pub appended: u64,
    pub present: u64,
}

/// One insight: a series' spike or drop (docs/INSIGHTS.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireInsight {
    /// The sharedEventID of its Start and End events.
    #[serde(rename = "sharedEventId")]
    pub shared_event_id: String,
    /// `ApiCallRateInsight` or `ApiErrorRateInsight`.
    #[serde(rename = "insightType")]
    pub insight_type: String,
    /// The start and end minutes as RFC 3339 times (`end` None: open).
    pub start: String,
    pub end: Option<String>,
    pub key: WireSeriesKey,
    /// `spike` or `drop`.
    pub direction: String,
    /// Unix minutes.
    pub start_minute: i64,
    pub end_minute: Option<i64>,
    /// Per-minute average over the baseline window, and its length.
    pub baseline_average: f64,
    pub baseline_minutes: u64,
    /// The start minute's count, and the per-minute average over the insight.
    pub start_average: f64,
    pub insight_average: f64,
    pub insight_minutes: u64,
    /// Top contributors over the start minute and over the whole insight.
    pub start_attributions: WireAttributions,
    pub attributions: WireAttributions,
}

/// An insight's series: account, region, API, and error code for an
/// error-rate insight.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireSeriesKey {
    pub account: String,
    pub region: String,
    pub source: String,
    pub name: String,
    pub error: Option<String>,
}

/// The top 5 users (userIdentity.arn), user agents and error codes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireAttributions {
    pub users: Vec<WireContributor>,
    pub agents: Vec<WireContributor>,
    pub errors: Vec<WireContributor>,
}

/// A contributor's per-minute average over the insight and the baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireContributor {
    pub value: String,
    pub insight: f64,
    pub baseline: f64,
}

/// What `Verify` found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireVerifyReport {
    pub events: u64,
    pub segments: u64,
    pub record_bytes: u64,
    pub tree_size: u64,
    pub root: Option<[u8; 32]>,
    pub history_checkpoints: u64,
    pub external_checkpoints: u64,
    pub trusted_keys: bool,
    /// (kind, description) of every problem found.
    pub problems: Vec<(String, String)>,
    /// Seqs below this were removed by retention (not damage).
    pub pruned_below: u64,
    pub pruned_checkpoints: u64,
    /// Problems found beyond the first [`VERIFY_PROBLEMS_MAX`] listed.
    pub problems_omitted: u64,
}
