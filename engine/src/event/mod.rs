//! The event model: what a record is, how it is validated, and which fields
//! the engine extracts for its indexes.
//!
//! A *record* is the bytes a client sent: one CloudTrail record (any
//! eventVersion) or one CloudTrail Lake integration event. The engine stores
//! those bytes unchanged; this module only reads them. It must never
//! re-serialize a record.

mod parse;
pub mod time;

use std::borrow::Cow;
use std::fmt;

pub use parse::{parse_raw, RawFields, ShapeError};
pub use time::{format_event_time, format_event_time_ms, parse_event_time};

/// The per-record result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, with this seq.
    Stored(u64),
    /// Already stored with identical bytes (same eventID): not stored
    /// again; this is the existing seq.
    Duplicate(u64),
    /// Not stored, for this reason.
    Rejected(Rejection),
}

impl Outcome {
    /// The event's seq, stored now or before.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Outcome::Stored(s) | Outcome::Duplicate(s) => Some(*s),
            Outcome::Rejected(_) => None,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub ingest_ms: u64,
    pub time_ms: i64,
    pub record: Vec<u8>,
}

/// Why a record was rejected. Its `Display` names the field or the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// The record is larger than the configured record size limit.
    TooLarge { bytes: usize, limit: usize },
    /// The bytes are not valid JSON.
    InvalidJson(String),
    /// Valid JSON that is not an object.
    NotAnObject,
    /// No `eventTime`, or one that is not a string.
    MissingEventTime,
    /// An `eventTime` that does not parse as a UTC instant.
    InvalidEventTime(String),
    /// No `eventName` (nor `insightDetails.eventName` for Insights records).
    MissingEventName,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::TooLarge { bytes, limit } => {
                write!(f, "record is {bytes} bytes, larger than the record size limit of {limit} bytes")
            }
            Rejection::InvalidJson(e) => write!(f, "record is not valid JSON: {e}"),
            Rejection::NotAnObject => f.write_str("record is not a JSON object"),
            Rejection::MissingEventTime => f.write_str("record has no eventTime string"),
            Rejection::InvalidEventTime(t) => {
                let shown: String = t.chars().take(64).collect();
                write!(
                    f,
                    "eventTime {shown:?} is not a UTC instant (expected YYYY-MM-DDTHH:MM:SSZ or a variant with fractional seconds, an offset, or a space for T)"
                )
            }
            Rejection::MissingEventName => f.write_str("record has no eventName (nor insightDetails.eventName)"),
        }
    }
}

impl Rejection {
    /// A short stable code, for summaries that count rejections by kind.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "RecordTooLarge",
            Rejection::InvalidJson(_) => "InvalidJson",
            Rejection::NotAnObject => "NotAnObject",
            Rejection::MissingEventTime => "MissingEventTime",
            Rejection::InvalidEventTime(_) => "InvalidEventTime",
            Rejection::MissingEventName => "MissingEventName",
        }
    }
}

/// `(type, ARN)` of one element of `resources[]`.
pub type ResourceRef<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

/// A validated record's extracted fields, borrowing from the record's bytes
/// wherever the JSON had no escapes.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    /// eventTime as milliseconds since the Unix epoch, UTC.
    pub time_ms: i64,
    /// `eventID`, or `UID` for integration events.
    pub event_id: Option<Cow<'a, str>>,
    pub event_name: Cow<'a, str>,
    pub event_source: Option<Cow<'a, str>>,
    /// The user name as LookupEvents shows it (see [`derive_username`]).
    pub username: Option<Cow<'a, str>>,
    pub access_key_id: Option<Cow<'a, str>>,
    pub read_only: Option<bool>,
    /// `(type, ARN)` of each element of `resources[]`.
    pub resources: Vec<ResourceRef<'a>>,
    pub error_code: Option<Cow<'a, str>>,
    pub aws_region: Option<Cow<'a, str>>,
    /// `userIdentity.accountId`.
    pub account_id: Option<Cow<'a, str>>,
    pub recipient_account_id: Option<Cow<'a, str>>,
    pub source_ip: Option<Cow<'a, str>>,
    pub user_identity_arn: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub event_category: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
}

/// The eventType of CloudTrail's aggregated events (5-minute summaries of
/// data events), which have neither eventTime nor eventName: their window's
/// start stands in for the one, this for the other.
pub const AGGREGATED_EVENT_TYPE: &str = "AwsAggregatedEvent";

/// Validates one record and extracts its indexed fields.
///
/// Rejected when: larger than `record_bytes_max`; not JSON; not an object;
/// no `eventTime` that parses as a UTC instant; no `eventName` (Insights
/// records carry theirs in `insightDetails`). Everything else is accepted.
pub fn parse_event(bytes: &[u8], record_bytes_max: usize) -> Result<Event<'_>, Rejection> {
    if bytes.len() > record_bytes_max {
        return Err(Rejection::TooLarge { bytes: bytes.len(), limit: record_bytes_max });
    }
    let raw = parse_raw(bytes).map_err(|e| match e {
        ShapeError::Json(m) => Rejection::InvalidJson(m),
        ShapeError::NotObject => Rejection::NotAnObject,
    })?;
    from_raw(raw)
}

fn from_raw(mut raw: RawFields<'_>) -> Result<Event<'_>, Rejection> {
    // A stored integration event keeps the caller's event in `eventData`:
    // fields the envelope lacks come from there.
    if let Some(inner) = raw.event_data.take() {
        merge_missing(&mut raw, *inner);
    }
    // Aggregated events (5-minute summaries) have no eventTime: their
    // window's start is theirs.
    let window_start = raw.time_window.take().map(|w| w.window_start);
    let time_text = match (&raw.event_time, &window_start) {
        (parse::Scalar::Str(s), _) | (_, Some(parse::Scalar::Str(s))) => s.clone(),
        _ => return Err(Rejection::MissingEventTime),
    };
    let time_ms = parse_event_time(time_text.trim()).ok_or_else(|| Rejection::InvalidEventTime(time_text.into_owned()))?;
    let insight = raw.insight_details.take().unwrap_or_default();
    let event_type = raw.event_type.into_str();
    let aggregated = event_type.as_deref() == Some(AGGREGATED_EVENT_TYPE);
    let event_name = raw
        .event_name
        .into_str()
        .or_else(|| insight.event_name.clone().into_str())
        .or_else(|| aggregated.then_some(Cow::Borrowed(AGGREGATED_EVENT_TYPE)))
        .ok_or(Rejection::MissingEventName)?;
    let event_source = raw.event_source.into_str().or_else(|| insight.event_source.clone().into_str());
    let error_code = raw.error_code.into_str().or_else(|| insight.error_code.into_str());
    let ui = raw.user_identity;
    let username = derive_username(&ui);
    Ok(Event {
        time_ms,
        event_id: raw.event_id.into_str().or_else(|| raw.uid.into_str()).or_else(|| raw.event_id_lower.into_str()),
        event_name,
        event_source,
        username,
        access_key_id: ui.access_key_id.into_str(),
        read_only: raw.read_only.as_bool(),
        resources: raw.resources.0.into_iter().map(|r| (r.kind.into_str(), r.arn.into_str())).collect(),
        error_code,
        aws_region: raw.aws_region.into_str(),
        account_id: ui.account_id.into_str().or_else(|| raw.account_id.into_str()),
        recipient_account_id: raw.recipient_account_id.into_str(),
        source_ip: raw.source_ip.into_str(),
        user_identity_arn: ui.arn.into_str(),
        user_agent: raw.user_agent.into_str(),
        event_category: raw.event_category.into_str(),
        event_type,
    })
}

fn merge_missing<'a>(outer: &mut RawFields<'a>, inner: RawFields<'a>) {
    fn fill<'a>(dst: &mut parse::Scalar<'a>, src: parse::Scalar<'a>) {
        if dst.as_str().is_none() && !matches!(dst, parse::Scalar::Bool(_)) {
            *dst = src;
        }
    }
    fill(&mut outer.event_time, inner.event_time);
    fill(&mut outer.uid, inner.uid);
    fill(&mut outer.event_name, inner.event_name);
    fill(&mut outer.event_source, inner.event_source);
    fill(&mut outer.source_ip, inner.source_ip);
    fill(&mut outer.user_agent, inner.user_agent);
    fill(&mut outer.error_code, inner.error_code);
    fill(&mut outer.recipient_account_id, inner.recipient_account_id);
    if outer.user_identity.kind.as_str().is_none() {
        outer.user_identity = inner.user_identity;
    }
}

/// The user name LookupEvents reports for a record's `userIdentity`:
/// `userName` when present (IAM users; the account alias for Root), else by
/// identity type: `root` for Root; the session or user name (the last `/`
/// element of the ARN, or what follows `:` in principalId) for assumed roles
/// and federated users; the invoking service for AWS services; otherwise the
/// last element of the ARN, then principalId.
pub fn derive_username<'a>(ui: &parse::UserIdentity<'a>) -> Option<Cow<'a, str>> {
    if let Some(n) = ui.user_name.as_str() {
        return Some(n.clone());
    }
    let arn_tail = || {
        ui.arn.as_str().and_then(|arn| match arn {
            Cow::Borrowed(s) => s.rsplit_once('/').map(|(_, t)| Cow::Borrowed(t)),
            Cow::Owned(s) => s.rsplit_once('/').map(|(_, t)| Cow::Owned(t.to_owned())),
        })
    };
    let principal_tail = || {
        ui.principal_id.as_str().map(|p| match p {
            Cow::Borrowed(s) => Cow::Borrowed(s.rsplit_once(':').map_or(*s, |(_, t)| t)),
            Cow::Owned(s) => Cow::Owned(s.rsplit_once(':').map_or(s.as_str(), |(_, t)| t).to_owned()),
        })
    };
    match ui.kind.as_str().map(|k| k.as_ref()) {
        Some("Root") => Some(Cow::Borrowed("root")),
        Some("AWSService") => ui.invoked_by.as_str().cloned().or_else(principal_tail),
        _ => arn_tail().filter(|t| !t.is_empty()).or_else(principal_tail),
    }
}

/// FNV-1a, 64-bit: the stable fingerprint of an eventID used in on-disk
/// tables. Hand-written because std's hasher is not stable across Rust
/// versions, and an on-disk value must be.
pub fn id_fingerprint(id: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = crate::limits::RECORD_BYTES_DEFAULT;

    // Goal: a typical record yields every indexed field, borrowed.
    #[test]
    fn extracts_fields() {
        let rec = br#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAX:deploy","arn":"arn:aws:sts::111122223333:assumed-role/Deploy/deploy","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","userName":"Deploy"}}},"eventTime":"2026-01-02T03:05:00Z","eventSource":"s3.amazonaws.com","eventName":"CreateBucket","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.7","userAgent":"aws-cli/2","errorCode":"AccessDenied","requestParameters":{"bucketName":"demo"},"responseElements":null,"eventID":"6f1c","readOnly":false,"resources":[{"ARN":"arn:aws:s3:::demo","accountId":"111122223333","type":"AWS::S3::Bucket"}],"eventType":"AwsApiCall","recipientAccountId":"444455556666","eventCategory":"Management"}"#;
        let e = parse_event(rec, MAX).unwrap();
        assert_eq!(e.time_ms, parse_event_time("2026-01-02T03:05:00Z").unwrap());
        assert_eq!(e.event_id.as_deref(), Some("6f1c"));
        assert_eq!(e.event_name, "CreateBucket");
        assert_eq!(e.event_source.as_deref(), Some("s3.amazonaws.com"));
        assert_eq!(e.username.as_deref(), Some("deploy"));
        assert_eq!(e.access_key_id.as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(e.read_only, Some(false));
        assert_eq!(e.resources.len(), 1);
        assert_eq!(e.resources[0].0.as_deref(), Some("AWS::S3::Bucket"));
        assert_eq!(e.resources[0].1.as_deref(), Some("arn:aws:s3:::demo"));
        assert_eq!(e.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!(e.account_id.as_deref(), Some("111122223333"));
        assert_eq!(e.recipient_account_id.as_deref(), Some("444455556666"));
        assert_eq!(e.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(e.event_category.as_deref(), Some("Management"));
        assert_eq!(e.event_type.as_deref(), Some("AwsApiCall"));
        assert!(matches!(e.event_name, Cow::Borrowed(_)));
    }

    // Goal: real-world quirks are accepted: nulls, string booleans, unknown
    // fields, duplicate keys (last wins), escapes, wrong types.
    #[test]
    fn tolerates_quirks() {
        let rec = br#"{"eventTime":"2025-02-19 20:13:49","eventName":"A","eventName":"B","readOnly":"True","userIdentity":null,"resources":{"x":1},"awsRegion":7,"eventSource":"s\u0033.amazonaws.com","p_any":[1,{"a":[]}],"errorCode":""}"#;
        let e = parse_event(rec, MAX).unwrap();
        assert_eq!(e.event_name, "B");
        assert_eq!(e.read_only, Some(true));
        assert_eq!(e.event_source.as_deref(), Some("s3.amazonaws.com"));
        assert!(e.resources.is_empty());
        assert_eq!(e.aws_region, None);
        assert_eq!(e.error_code, None);
        assert_eq!(e.username, None);
    }

    // Goal: each rejection names its reason.
    #[test]
    fn rejections() {
        let ok_time = r#""eventTime":"2026-01-01T00:00:00Z""#;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"[1,2]".to_vec(), "NotAnObject"),
            (b"\"x\"".to_vec(), "NotAnObject"),
            (b"{\"eventName\":".to_vec(), "InvalidJson"),
            (b"{} {}".to_vec(), "InvalidJson"),
            (b"{\"eventName\":\"X\"}".to_vec(), "MissingEventTime"),
            (b"{\"eventName\":\"X\",\"eventTime\":5}".to_vec(), "MissingEventTime"),
            (b"{\"eventName\":\"X\",\"eventTime\":\"timestamp\"}".to_vec(), "InvalidEventTime"),
            (format!("{{{ok_time}}}").into_bytes(), "MissingEventName"),
            (format!("{{{ok_time},\"eventName\":null}}").into_bytes(), "MissingEventName"),
            (vec![b' '; MAX + 1], "RecordTooLarge"),
        ];
        for (rec, code) in cases {
            let err = parse_event(&rec, MAX).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
            assert!(!err.to_string().is_empty());
        }
        let msg = parse_event(&vec![b' '; MAX + 1], MAX).unwrap_err().to_string();
        assert!(msg.contains("262144"), "{msg}");
    }

    // Goal: Insights records carry their subject in insightDetails and are
    // accepted; integration events use UID and may nest eventData.
    #[test]
    fn insights_and_integration_events() {
        let insight = br#"{"eventVersion":"1.07","eventTime":"2020-05-07T04:15:00Z","awsRegion":"us-east-1","eventID":"ab","eventType":"AwsCloudTrailInsight","insightDetails":{"state":"Start","eventSource":"ssm.amazonaws.com","eventName":"UpdateInstanceInformation","insightType":"ApiCallRateInsight"},"eventCategory":"Insight"}"#;
        let e = parse_event(insight, MAX).unwrap();
        assert_eq!(e.event_name, "UpdateInstanceInformation");
        assert_eq!(e.event_source.as_deref(), Some("ssm.amazonaws.com"));

        // CloudTrail's aggregated events have neither eventTime nor
        // eventName, and spell eventId so.
        let agg = br#"{"eventVersion":"1.0","accountId":"111122223333","eventId":"agg-1","eventCategory":"Aggregated","eventType":"AwsAggregatedEvent","awsRegion":"us-east-1","eventSource":"s3.amazonaws.com","timeWindow":{"windowStart":"2026-01-01T00:05:00Z","windowEnd":"2026-01-01T00:10:00Z","windowSize":"PT5M"},"summary":{"primaryDimension":"eventName","details":[]}}"#;
        let e = parse_event(agg, MAX).unwrap();
        assert_eq!(e.time_ms, 1_767_225_900_000);
        assert_eq!(e.event_name, "AwsAggregatedEvent");
        assert_eq!(e.event_id.as_deref(), Some("agg-1"));
        assert_eq!(e.account_id.as_deref(), Some("111122223333"));
        assert!(parse_event(br#"{"eventType":"AwsAggregatedEvent","eventId":"x"}"#, MAX).is_err(), "no time at all");

        let flat = br#"{"version":"1.0","userIdentity":{"type":"CustomUser","principalId":"alice"},"eventSource":"hr.example.com","eventName":"UpdateSalary","eventTime":"2026-01-02T03:04:05","UID":"u-1","recipientAccountId":"111122223333"}"#;
        let e = parse_event(flat, MAX).unwrap();
        assert_eq!(e.event_id.as_deref(), Some("u-1"));
        assert_eq!(e.username.as_deref(), Some("alice"));

        let stored = br#"{"eventVersion":"0.01","eventCategory":"ActivityAuditLog","eventType":"ActivityLog","eventID":"e-9","eventTime":"2026-01-02T03:04:06Z","eventData":{"version":"1.0","userIdentity":{"type":"CustomUser","principalId":"bob"},"eventSource":"door.example.com","eventName":"Open","eventTime":"2026-01-02T03:04:05Z","UID":"u-2","eventData":{"eventName":"ignored"}}}"#;
        let e = parse_event(stored, MAX).unwrap();
        assert_eq!(e.event_id.as_deref(), Some("e-9"));
        assert_eq!(e.event_name, "Open");
        assert_eq!(e.username.as_deref(), Some("bob"));
        assert_eq!(e.event_source.as_deref(), Some("door.example.com"));
    }

    // Goal: usernames follow LookupEvents' derivation per identity type.
    #[test]
    fn usernames() {
        let cases = [
            (r#"{"type":"IAMUser","userName":"alice","arn":"arn:aws:iam::1:user/alice"}"#, Some("alice")),
            (r#"{"type":"Root","arn":"arn:aws:iam::1:root"}"#, Some("root")),
            (r#"{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}"#, Some("ec2.amazonaws.com")),
            (r#"{"type":"FederatedUser","arn":"arn:aws:sts::1:federated-user/Bob"}"#, Some("Bob")),
            (r#"{"type":"AssumedRole","principalId":"AROA:sess"}"#, Some("sess")),
            (r#"{}"#, None),
        ];
        for (ui, want) in cases {
            let rec = format!(r#"{{"eventTime":"2026-01-01T00:00:00Z","eventName":"X","userIdentity":{ui}}}"#);
            let e = parse_event(rec.as_bytes(), MAX).unwrap();
            assert_eq!(e.username.as_deref(), want, "{ui}");
        }
    }

    // Goal: the parser never panics on arbitrary bytes.
    #[test]
    fn garbage_never_panics() {
        let mut state = 0x1234_5678_u64;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 300)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    b"{}[]\":,0123456789eE.-+tfnul \\abc"[(state % 32) as usize]
                })
                .collect();
            let _ = parse_event(&bytes, MAX);
        }
        let deep = "[".repeat(10_000);
        assert!(parse_event(deep.as_bytes(), MAX).is_err());
    }
}
