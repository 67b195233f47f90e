//! Insights: unusual API call volumes and error rates, found the way
//! CloudTrail Insights finds them (docs/INSIGHTS.md), from per-minute
//! counters kept at ingest and stored with every segment.
//!
//! `counters` owns what is counted and its encoding; `detect` the baseline
//! and the rule that opens and closes an insight; `record` the Insight
//! events (CloudTrail's shape) appended to the log.

/// The per-minute counters live beside the index section they are
/// written into; Insights reads them.
pub use crate::index::counters;
pub mod detect;
pub mod record;
pub mod scan;
