//! The wire protocol, both ends (docs/PROTOCOL.md): length-prefixed frames
//! whose bodies are postcard-encoded messages, a version handshake carrying
//! the token, then pipelined requests answered in order.
//!
//! Frame: `body_len u32 LE | body`. The length is checked against the limit
//! before anything is allocated for the body.

mod frame;
mod reports;

pub use frame::{encode_frame, read_frame, write_frame, FrameError};
pub use reports::{
    WireAppended, WireAttributions, WireCompactReport, WireCompactRun, WireContributor, WireInsight, WireInsightsReport,
    WireRetentionReport, WireRollupReport, WireSeriesKey, WireVerifyReport,
};

use serde::{Deserialize, Serialize};

/// Protocol version spoken by this build (docs/PROTOCOL.md, "Versions").
pub const PROTOCOL_VERSION: u16 = 2;
/// The handshake's magic, so a stray client fails fast.
pub const MAGIC: [u8; 8] = *b"CAIRNP01";
/// Default limit on a request frame's body (`--frame-bytes-max`).
pub const FRAME_BYTES_DEFAULT: u32 = 16 * 1024 * 1024;
/// Every response frame's body is at most this large, whatever the
/// request limit: a page is cut short (its NextToken continues), tail and
/// export chunks are cut by size, and any other answer that would be larger
/// is replaced by a `ResponseTooLarge` error.
pub const RESPONSE_FRAME_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// The handshake frame (`Hello`) is at most this large.
pub const HELLO_FRAME_BYTES_MAX: u32 = 64 * 1024;
/// A verify report lists at most this many problems (it counts the rest).
pub const VERIFY_PROBLEMS_MAX: usize = cairn_engine::verify::REPORT_PROBLEMS_MAX;

/// The first frame a client sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hello {
    pub magic: [u8; 8],
    pub version: u16,
    pub token: String,
}

/// The server's answer to `Hello`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum HelloReply {
    Ok { version: u16, server: String, role: Role },
    Error(WireError),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Ingest,
    Read,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "ingest" => Some(Role::Ingest),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A query on the wire (times in unix ms, inclusive).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireQuery {
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// (attribute name, values): AND across entries, OR within.
    pub filters: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub body: RequestBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum RequestBody {
    /// A batch of raw records (ingest or admin role).
    Append { records: Vec<Record> },
    /// One page of a lookup (read or admin).
    Lookup { query: WireQuery, max_results: Option<u32>, next_token: Option<String> },
    /// Counts grouped by an attribute (read or admin).
    Count { query: WireQuery, by: String },
    /// Every stored record with an eventID (read or admin).
    Get { event_id: String },
    /// Store and server statistics (read or admin).
    Stats,
    /// Every matching event, streamed as `ExportChunk`s then `ExportEnd`.
    Export { query: WireQuery, oldest_first: bool },
    /// Issue a new token (admin).
    CreateToken { role: Role, name: String },
    /// Follow new events (read or admin): the server sends `TailEvents` as
    /// matching events are appended, until the client disconnects.
    /// `from_seq` None starts at the events appended after the request.
    Tail { query: WireQuery, from_seq: Option<u64> },
    /// The daemon's memory (read or admin). Added after version 1's first
    /// release; an older server answers it `MalformedFrame`.
    Process,
    /// Sign a checkpoint of everything stored (if the tree grew) and answer
    /// the newest one (read or admin).
    Checkpoint,
    /// Every public key the store has signed with, oldest first (read or
    /// admin).
    PublicKeys,
    /// Switch to a new signing key (admin); answers `PublicKeys`.
    RotateKey,
    /// Inclusion proofs (read or admin): of the event at `seq`, or of every
    /// event with `event_id`, against `checkpoint` (a signed note the store
    /// issued) or a fresh checkpoint. Answers `Proofs`.
    Prove { seq: Option<u64>, event_id: Option<String>, checkpoint: Option<String> },
    /// A consistency proof from `old` to `new` (signed notes; `None`: a
    /// fresh checkpoint) (read or admin). Answers `Consistency`.
    Consistency { old: String, new: Option<String> },
    /// Verify the whole store (read or admin): `VerifyProgress` frames, then
    /// `VerifyReport`. `public_keys` are signed-note verifier keys.
    Verify { checkpoints: Vec<String>, public_keys: Vec<String> },
    /// Sign a CloudTrail-style digest (admin): the store signs
    /// `end_time \n location \n sha256_hex \n previous | null` with its
    /// key. Answers `DigestSignature`.
    SignDigest { end_time: String, location: String, sha256_hex: String, previous: Option<String> },
    /// Merge small adjacent segments (admin); answers `Compacted`.
    Compact { options: WireCompact },
    /// Remove segments whose events are all older than `older_than_secs`
    /// (admin); answers `Retained`.
    Retain { older_than_secs: u64, dry_run: bool },
    /// Find the insights that start in `[start_ms, end_ms]` (unix ms, `None`:
    /// the store's first / newest event) with the detector's band width
    /// `sensitivity_milli` / 1000 (`None`: the default, 6); with `backfill`,
    /// also append the missing Insight events (admin; otherwise read or
    /// admin). Answers `Insights`.
    Insights { start_ms: Option<i64>, end_ms: Option<i64>, backfill: bool, sensitivity_milli: Option<u32> },
    /// Write the 5-minute rollups of data events whose windows start in
    /// `[start_ms, end_ms]` and are missing (admin); answers `RolledUp`.
    Rollup { start_ms: Option<i64>, end_ms: Option<i64>, dry_run: bool },
    /// Issue an AWS access key pair for the CloudTrail-compatible HTTP API
    /// (admin); answers `AwsKey`. Added after version 2's first release; an
    /// older server answers it `MalformedFrame`.
    CreateAwsKey { role: Role, name: String },
    /// Make a channel for PutAuditEvents (admin); answers `Channel`.
    /// Added after version 2's first release, as `CreateAwsKey`.
    CreateChannel {
        name: String,
        external_id: Option<String>,
        allowed_keys: Vec<String>,
        account_id: Option<String>,
        region: Option<String>,
    },
    /// Every channel (read or admin); answers `Channels`.
    ListChannels,
    /// Where delivery (`--deliver`) stands (read or admin); answers
    /// `Delivery`. Added after version 2's first release, as
    /// `CreateAwsKey`.
    Delivery,
    /// Run a SQL query (read or admin): `QueryBatch` frames (at least
    /// one), then `QueryEnd`. Added after version 2's first release, as
    /// `CreateAwsKey`.
    Query { statement: String },
}

/// How a query ended (docs/PROTOCOL.md, "Query").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireQueryEnd {
    /// Result rows sent.
    pub rows: u64,
    /// Events the query's scans read, and their record bytes.
    pub events_scanned: u64,
    pub bytes_scanned: u64,
    /// Events that passed the query's row filters.
    pub events_matched: u64,
    /// The query's id (DescribeQuery on the HTTP API names it so).
    pub query_id: String,
}

/// Where a daemon's delivery stands (docs/PROTOCOL.md, "Delivery").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireDelivery {
    pub target: String,
    pub next_seq: u64,
    pub backlog_events: u64,
    pub delivered_events: u64,
    pub delivered_files: u64,
    pub digest_files: u64,
    pub last_delivery_ms: Option<i64>,
    pub last_digest_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
}

/// A PutAuditEvents channel (docs/HTTP-API.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireChannel {
    pub arn: String,
    pub name: String,
    pub source: String,
    pub external_id: Option<String>,
    pub allowed_keys: Vec<String>,
    pub account_id: Option<String>,
    pub region: String,
    pub created_ms: i64,
}

/// `Compact`'s options (see `cairn compact --help`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireCompact {
    pub target_bytes: u64,
    pub small_bytes: u64,
    pub all: bool,
    pub zstd_level: i32,
    pub block_bytes: u64,
    pub dictionary: bool,
    pub dry_run: bool,
    pub max_bytes_per_sec: u64,
}

/// A record's bytes on the wire. postcard writes a byte vector as a
/// length and the bytes either way; marking it as bytes lets serde copy it
/// in one piece instead of visiting every byte.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Record(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// An event on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireEvent {
    pub seq: u64,
    pub ingest_ms: u64,
    pub time_ms: i64,
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum WireOutcome {
    Stored(u64),
    Duplicate(u64),
    /// Rejection code and message.
    Rejected {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireStats {
    pub events: u64,
    pub sealed_events: u64,
    pub segments: u64,
    pub record_bytes: u64,
    pub disk_bytes: u64,
    pub min_time_ms: Option<i64>,
    pub max_time_ms: Option<i64>,
    pub tree_size: u64,
    pub root: [u8; 32],
    pub connections: u64,
    pub appended_since_start: u64,
    pub uptime_ms: u64,
}

/// What the daemon process holds in memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireProcess {
    /// Resident set size now and at its peak, in bytes; `None` where the
    /// operating system does not tell.
    pub rss_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    /// Engine memory: unsealed events, the decoded-block cache, id filters.
    pub memtable_bytes: u64,
    pub block_cache_bytes: u64,
    pub id_filter_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WireError {
    /// A stable code (e.g. `AuthenticationFailed`, `InvalidTimeRangeException`).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Response {
    pub id: u64,
    pub body: ResponseBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum ResponseBody {
    Appended {
        outcomes: Vec<WireOutcome>,
    },
    Page {
        events: Vec<WireEvent>,
        next_token: Option<String>,
    },
    Counts {
        counts: Vec<(String, u64)>,
    },
    Events {
        events: Vec<WireEvent>,
    },
    Stats(WireStats),
    ExportChunk {
        events: Vec<WireEvent>,
    },
    ExportEnd {
        count: u64,
    },
    Token {
        token: String,
    },
    TailEvents {
        events: Vec<WireEvent>,
    },
    Error(WireError),
    Process(WireProcess),
    Checkpoint {
        note: Option<String>,
    },
    PublicKeys {
        keys: Vec<String>,
    },
    /// Proof bundles, as JSON documents (docs/FORMAT.md).
    Proofs {
        bundles: Vec<String>,
    },
    Consistency {
        bundle: String,
    },
    VerifyProgress {
        done_bytes: u64,
        total_bytes: u64,
    },
    VerifyReport(WireVerifyReport),
    /// A digest signature (64 bytes) and the key that made it.
    DigestSignature {
        signature: Vec<u8>,
        key: String,
    },
    /// What `Compact` did (or would do).
    Compacted(WireCompactReport),
    /// What `Insights` found (and appended).
    Insights(WireInsightsReport),
    /// What `Retain` removed (or would remove).
    Retained(WireRetentionReport),
    /// What `Rollup` wrote (or would write).
    RolledUp(WireRollupReport),
    /// A new AWS access key pair; the server keeps only key material
    /// derived from the secret.
    AwsKey {
        access_key_id: String,
        secret: String,
    },
    Channel(WireChannel),
    Channels {
        channels: Vec<WireChannel>,
    },
    /// `None` when the daemon does not deliver.
    Delivery(Option<WireDelivery>),
    /// Query results: one Arrow IPC stream (schema, record batches, end
    /// of stream), every frame's of the same schema.
    QueryBatch {
        #[serde(with = "serde_bytes")]
        ipc: Vec<u8>,
    },
    QueryEnd(WireQueryEnd),
}

/// Every error code the server sends (docs/PROTOCOL.md, "Errors").
pub mod codes {
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const UNSUPPORTED_VERSION: &str = "UnsupportedProtocolVersion";
    pub const MALFORMED_FRAME: &str = "MalformedFrame";
    pub const FRAME_TOO_LARGE: &str = "FrameTooLarge";
    pub const BATCH_TOO_LARGE: &str = "BatchTooLarge";
    pub const TOO_MANY_CONNECTIONS: &str = "TooManyConnections";
    pub const INTERNAL: &str = "InternalFailure";
    pub const RESPONSE_TOO_LARGE: &str = "ResponseTooLarge";
    pub const INVALID_PARAMETER: &str = "InvalidParameterException";
    pub const INVALID_REQUEST_ID: &str = "InvalidRequestId";
    pub const EVENT_NOT_FOUND: &str = "EventNotFound";
    pub const INVALID_TIME_RANGE: &str = "InvalidTimeRangeException";
    pub const INVALID_LOOKUP_ATTRIBUTES: &str = "InvalidLookupAttributesException";
    pub const INVALID_MAX_RESULTS: &str = "InvalidMaxResultsException";
    pub const INVALID_NEXT_TOKEN: &str = "InvalidNextTokenException";
    pub const INVALID_QUERY_STATEMENT: &str = "InvalidQueryStatementException";
    pub const MAX_CONCURRENT_QUERIES: &str = "MaxConcurrentQueriesException";
    pub const QUERY_RESOURCES_EXCEEDED: &str = "QueryResourcesExceededException";
    pub const QUERY_TIMED_OUT: &str = "QueryTimedOut";
    pub const QUERY_CANCELLED: &str = "QueryCancelled";
    pub const QUERY_FAILED: &str = "QueryFailed";

    /// All of them, in the document's order.
    pub const ALL: [&str; 22] = [
        AUTHENTICATION_FAILED,
        UNSUPPORTED_VERSION,
        TOO_MANY_CONNECTIONS,
        MALFORMED_FRAME,
        FRAME_TOO_LARGE,
        INVALID_REQUEST_ID,
        ACCESS_DENIED,
        BATCH_TOO_LARGE,
        INVALID_TIME_RANGE,
        INVALID_LOOKUP_ATTRIBUTES,
        INVALID_MAX_RESULTS,
        INVALID_NEXT_TOKEN,
        INVALID_PARAMETER,
        EVENT_NOT_FOUND,
        INVALID_QUERY_STATEMENT,
        MAX_CONCURRENT_QUERIES,
        QUERY_RESOURCES_EXCEEDED,
        QUERY_TIMED_OUT,
        QUERY_CANCELLED,
        QUERY_FAILED,
        RESPONSE_TOO_LARGE,
        INTERNAL,
    ];
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => f.write_str("connection closed"),
            FrameError::TooLarge { len, limit } => write!(f, "frame of {len} bytes exceeds the frame size limit of {limit} bytes"),
            FrameError::Malformed(m) => write!(f, "malformed message: {m}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: messages round-trip through frames; an oversized length is
    // refused before allocation; garbage never panics.
    #[test]
    fn frames() {
        let req = Request { id: 7, body: RequestBody::Append { records: vec![Record(b"{}".to_vec())] } };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let back: Request = read_frame(&mut buf.as_slice(), 1024).unwrap();
        assert_eq!(back, req);
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(read_frame::<Request>(&mut huge.as_slice(), 1024), Err(FrameError::TooLarge { .. })));
        assert!(matches!(read_frame::<Request>(&mut [].as_slice(), 1024), Err(FrameError::Closed)));
        // A body with bytes after the message is malformed, not read around.
        let mut padded = encode_frame(&req).unwrap();
        padded.push(0);
        padded[0] += 1;
        assert!(matches!(read_frame::<Request>(&mut padded.as_slice(), 1024), Err(FrameError::Malformed(m)) if m.contains("left over")));
        let mut s = 1u64;
        for n in 0..2000usize {
            let mut g: Vec<u8> = ((n % 60) as u32).to_le_bytes().to_vec();
            g.extend((0..n % 60).map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                (s >> 33) as u8
            }));
            let _ = read_frame::<Request>(&mut g.as_slice(), 1024);
        }
    }
}
