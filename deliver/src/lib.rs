//! cairn-deliver: delivery of a Cairn store to S3-compatible object
//! storage, as CloudTrail delivers a trail: gzip log files
//! (`{"Records":[...]}`) in CloudTrail's layout and names, and hourly
//! digest files chained and signed SHA256withRSA, which
//! `aws cloudtrail validate-logs` verifies.
//!
//! - [`compact`]: merging a quiet partition's small Parquet files;
//! - [`format`]: names, the digest JSON, the string a signature covers;
//! - [`parquet`]: the same events as Parquet in CloudTrail Lake's columns;
//! - [`profile`]: credentials and settings from `~/.aws/credentials` and `config`;
//! - [`target`]: `s3://BUCKET/PREFIX` and the object-store client;
//! - [`run`]: the exactly-once delivery loop and its durable cursor.

#![deny(unsafe_code)]

pub mod compact;
pub mod format;
pub mod parquet;
pub mod profile;
pub mod run;
pub mod target;

pub use run::{DeliverOptions, Deliverer, DeliveryStatus, RoundTimings};
pub use target::{Sink, SinkOptions, Target};

/// `f`'s result, or its panic as an error: `what`, then the panic's
/// message.
pub(crate) fn caught<T>(what: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|panic| Err(anyhow::anyhow!("{what}: {}", cairn_engine::panic_message(&*panic))))
}
