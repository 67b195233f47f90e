//! Retention: removes the oldest whole segments once every event in them
//! is older than the cutoff, keeping what the proofs of the remaining
//! events need.
//!
//! - Segments go in log order, oldest first; the first segment that still
//!   holds a recent event stops the cut (seqs stay contiguous from the
//!   cut).
//! - An event's age is judged by its eventTime, but never later than its
//!   ingest time plus [`FUTURE_SKEW_MS`]: a record claiming a time in 2099
//!   cannot keep its segment forever (ingest time is the store's own
//!   clock). With `stored_at_least` (cairnd's policy) a segment must also
//!   have been written longer ago than the retention period, so importing
//!   old logs does not delete them at once.
//! - The Merkle tiles (levels >= 1) are kept, and the leaf hashes of the
//!   seq group the cut runs through are written as a level-0 tile, so every
//!   remaining event's inclusion proof can still be computed.
//! - The cut (lowest kept seq, cutoff time, policy) is written to the
//!   manifest, and appended to the log as a `RetentionCut` event, which the
//!   tree then covers like any other.

use std::time::Duration;

/// Event times later than the ingest time by more than this are not
/// believed when judging age.
pub const FUTURE_SKEW_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// Keep this much history (by eventTime).
    pub older_than: Duration,
    /// Only report what would be removed.
    pub dry_run: bool,
    /// Also require the segment to have been written more than
    /// `older_than` ago: an automatic policy then never deletes history
    /// that was just imported (cairnd sets it; `cairn retention` does not).
    pub stored_at_least: bool,
}

/// What a retention run removed (or would, with `dry_run`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    /// Events with an (effective) eventTime before this are expired.
    pub cutoff_ms: i64,
    pub segments_removed: usize,
    pub events_removed: u64,
    pub bytes_removed: u64,
    /// The lowest seq the store holds afterwards.
    pub min_retained_seq: u64,
    /// The seq of the `RetentionCut` event appended to the log.
    pub event_seq: Option<u64>,
    /// The retention hold that kept expired segments (its name and seq),
    /// when one did: a reader such as delivery has not read them yet.
    #[serde(default)]
    pub held_by: Option<(String, u64)>,
}

/// The newest time a segment can be said to hold, for retention.
pub fn effective_newest_ms(max_time_ms: i64, max_ingest_ms: u64) -> i64 {
    max_time_ms.min((max_ingest_ms as i64).saturating_add(FUTURE_SKEW_MS))
}

/// The `RetentionCut` record appended to the log (CloudTrail's shape, so
/// lookups find it: EventName=RetentionCut, EventSource=cairn.local).
pub fn cut_record(now_ms: i64, event_id: &str, r: &RetentionReport, older_than: Duration) -> Vec<u8> {
    let t = crate::event::format_event_time(now_ms);
    let cutoff = crate::event::format_event_time(r.cutoff_ms);
    format!(
        concat!(
            r#"{{"eventVersion":"1.11","userIdentity":{{"type":"AWSService","invokedBy":"cairn.local"}},"eventTime":"{t}","#,
            r#""eventSource":"cairn.local","eventName":"RetentionCut","awsRegion":"global","sourceIPAddress":"cairn.local","#,
            r#""userAgent":"cairn","requestParameters":{{"olderThanSeconds":{secs},"cutoffTime":"{cutoff}"}},"#,
            r#""responseElements":{{"minRetainedSeq":{min},"removedSegments":{segs},"removedEvents":{events},"removedBytes":{bytes}}},"#,
            r#""eventID":"{id}","readOnly":false,"eventType":"AwsServiceEvent","managementEvent":true,"#,
            r#""recipientAccountId":"000000000000","eventCategory":"Management"}}"#
        ),
        t = t,
        secs = older_than.as_secs(),
        cutoff = cutoff,
        min = r.min_retained_seq,
        segs = r.segments_removed,
        events = r.events_removed,
        bytes = r.bytes_removed,
        id = event_id,
    )
    .into_bytes()
}
