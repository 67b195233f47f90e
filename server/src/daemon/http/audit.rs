//! cloudtrail-data's PutAuditEvents (REST-JSON, `POST /PutAuditEvents?
//! channelArn=...&externalId=...`): events from outside AWS, checked as
//! CloudTrail Lake checks them and stored in its integration event shape.
//! botocore's `cloudtrail-data/2021-08-11/service-2.json` is the authority
//! on names and shapes; docs/HTTP-API.md holds the rules.
//!
//! Each accepted event is stored as
//! `{"eventVersion":"0.01","eventCategory":"ActivityAuditLog",
//! "eventType":"ActivityLog","eventID":<new UUID>,"eventTime":<eventData's,
//! as UTC>,"awsRegion":<the channel's>,"recipientAccountId":<eventData's>,
//! "metadata":{"ingestionTime":..,"channelARN":..},"eventData":<the caller's
//! eventData text, byte for byte>}`.

use base64::Engine as _;
use cairn_engine::event::{format_event_time, parse_event_time};
use cairn_engine::{Outcome, Rejection};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::protocol::Role;
use crate::sigv4::query_pairs;

use super::super::Shared;
use super::{uuid_v4, ApiError, Caller};

/// Most events in one call, and most bytes of request body (CloudTrail's
/// limits).
pub const EVENTS_MAX: usize = 100;
pub const CALL_BYTES_MAX: usize = 1 << 20;

/// Field limits of `eventData`, in characters (CloudTrail Lake's
/// integration event schema): (path, required, limit).
const STRING_FIELDS: [(&str, bool, usize); 9] = [
    ("version", true, 256),
    ("eventSource", true, 1024),
    ("eventName", true, 1024),
    ("eventTime", true, 64),
    ("UID", true, 1024),
    ("recipientAccountId", true, 12),
    ("userAgent", false, 1024),
    ("errorCode", false, 256),
    ("errorMessage", false, 256),
];
/// JSON members limited by their serialized size, in bytes.
const OBJECT_FIELDS: [(&str, usize); 3] =
    [("requestParameters", 100 << 10), ("responseElements", 100 << 10), ("additionalEventData", 28 << 10)];

/// One refused event: CloudTrail's per-event error code and a message.
struct Refusal {
    code: &'static str,
    message: String,
}

fn refusal(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// Checks one event's `eventData`; the stored record on success.
fn build(data: &str, checksum: Option<&str>, channel: &super::super::channels::Channel, now_ms: i64) -> Result<(Vec<u8>, String), Refusal> {
    if let Some(sum) = checksum {
        let want = Sha256::digest(data.as_bytes());
        let given = base64::engine::general_purpose::STANDARD.decode(sum.trim()).ok();
        if given.as_deref() != Some(want.as_slice()) {
            return Err(refusal("InvalidChecksum", "eventDataChecksum is not the base64 SHA-256 of eventData"));
        }
    }
    let parsed: Value = serde_json::from_str(data).map_err(|e| refusal("InvalidData", format!("eventData is not JSON: {e}")))?;
    let Value::Object(m) = parsed else { return Err(refusal("InvalidData", "eventData must be a JSON object")) };
    let text = |k: &str| m.get(k).and_then(Value::as_str);
    for (k, required, limit) in STRING_FIELDS {
        match m.get(k) {
            None | Some(Value::Null) if required => return Err(refusal("FieldNotFound", format!("eventData.{k} is required"))),
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.chars().count() > limit => {
                return Err(refusal("FieldTooLong", format!("eventData.{k} is {} characters; the limit is {limit}", s.chars().count())))
            }
            Some(Value::String(_)) => {}
            Some(_) => return Err(refusal("InvalidData", format!("eventData.{k} must be a string"))),
        }
    }
    match m.get("userIdentity") {
        Some(Value::Object(ui)) => {
            for (k, limit) in [("type", 128), ("principalId", 1024)] {
                match ui.get(k) {
                    None | Some(Value::Null) => return Err(refusal("FieldNotFound", format!("eventData.userIdentity.{k} is required"))),
                    Some(Value::String(s)) if s.chars().count() > limit => {
                        return Err(refusal("FieldTooLong", format!("eventData.userIdentity.{k} is longer than {limit} characters")))
                    }
                    Some(Value::String(_)) => {}
                    Some(_) => return Err(refusal("InvalidData", format!("eventData.userIdentity.{k} must be a string"))),
                }
            }
        }
        None | Some(Value::Null) => return Err(refusal("FieldNotFound", "eventData.userIdentity is required")),
        Some(_) => return Err(refusal("InvalidData", "eventData.userIdentity must be an object")),
    }
    for (k, limit) in OBJECT_FIELDS {
        if let Some(v) = m.get(k) {
            let n = v.to_string().len();
            if n > limit {
                return Err(refusal("FieldTooLong", format!("eventData.{k} is {n} bytes; the limit is {limit}")));
            }
        }
    }
    if let Some(ip) = text("sourceIPAddress") {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(refusal("InvalidData", format!("eventData.sourceIPAddress {ip:?} is not an IPv4 or IPv6 address")));
        }
    }
    let account = text("recipientAccountId").unwrap_or_default();
    if let Some(owner) = channel.account_id.as_deref().filter(|o| *o != account) {
        return Err(refusal("InvalidRecipient", format!("recipientAccountId {account} is not the channel owner's account, {owner}")));
    }
    let t = text("eventTime").unwrap_or_default();
    let time_ms = parse_event_time(t)
        .ok_or_else(|| refusal("InvalidData", format!("eventData.eventTime {t:?} is not a UTC time such as 2026-01-02T03:04:05Z")))?;
    let event_id = uuid_v4();
    let q = |s: &str| Value::String(s.to_string()).to_string();
    let record = format!(
        r#"{{"eventVersion":"0.01","eventCategory":"ActivityAuditLog","eventType":"ActivityLog","eventID":{},"eventTime":{},"awsRegion":{},"recipientAccountId":{},"metadata":{{"ingestionTime":{},"channelARN":{}}},"eventData":{data}}}"#,
        q(&event_id),
        q(&format_event_time(time_ms)),
        q(&channel.region),
        q(account),
        q(&format_event_time(now_ms)),
        q(&channel.arn),
    );
    Ok((record.into_bytes(), event_id))
}

/// PutAuditEvents: the response body, `{"successful":[..],"failed":[..]}`.
pub(super) fn put_audit_events(shared: &Shared, caller: &Caller, query: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    caller.require(Role::Ingest, "cloudtrail-data:PutAuditEvents")?;
    let params = query_pairs(query).map_err(|_| ApiError::new("InvalidChannelARN", "the query string is not UTF-8 once decoded"))?;
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let arn = param("channelArn").ok_or_else(|| ApiError::new("InvalidChannelARN", "channelArn is required"))?;
    if !arn.starts_with("arn:") {
        return Err(ApiError::new(
            "InvalidChannelARN",
            format!("{arn:?} is not a channel ARN (arn:aws:cloudtrail:REGION:ACCOUNT:channel/ID)"),
        ));
    }
    // Channel names have no ':', so only an ARN matches.
    let channel = shared
        .channels
        .find(arn)
        .ok_or_else(|| ApiError::new("ChannelNotFound", format!("no channel {arn}; `cairn channel list` shows them")))?;
    if !channel.allowed_keys.is_empty() && !channel.allowed_keys.iter().any(|k| k == caller.access_key_id) {
        return Err(ApiError::new(
            "ChannelInsufficientPermission",
            format!("access key {} may not send to channel {}", caller.access_key_id, channel.name),
        ));
    }
    if let Some(want) = &channel.external_id {
        if param("externalId") != Some(want.as_str()) {
            return Err(ApiError::new("ChannelInsufficientPermission", format!("channel {} requires its externalId", channel.name)));
        }
    }
    if body.len() > CALL_BYTES_MAX {
        return Err(ApiError::new(
            "ValidationException",
            format!("the request is {} bytes; PutAuditEvents takes at most {CALL_BYTES_MAX}", body.len()),
        ));
    }
    let input: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", format!("the request body is not JSON: {e}")))?;
    let events = match input.get("auditEvents") {
        Some(Value::Array(a)) => a,
        _ => return Err(ApiError::new("SerializationException", "auditEvents (a list) is required")),
    };
    if events.is_empty() || events.len() > EVENTS_MAX {
        return Err(ApiError::new("ValidationException", format!("auditEvents holds {} events; it takes 1 to {EVENTS_MAX}", events.len())));
    }
    let mut ids = std::collections::HashSet::new();
    // An event without a string id is refused on its own below (its
    // neighbours are stored); ids that are given must be unique.
    for id in events.iter().filter_map(|e| e.get("id").and_then(Value::as_str)) {
        if !ids.insert(id) {
            return Err(ApiError::new("DuplicatedAuditEventId", format!("the id {id:?} appears twice in this call")));
        }
    }
    let now = super::super::now_ms();
    let mut failed: Vec<Value> = Vec::new();
    let mut pending: Vec<(&str, Vec<u8>, String)> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
        let checked = if e.get("id").and_then(Value::as_str).is_none() {
            Err(refusal("FieldNotFound", format!("auditEvents[{i}] has no id (a string); it is reported with id \"\"")))
        } else if id.is_empty() || id.len() > 128 || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            Err(refusal("InvalidData", "id must be 1 to 128 of A-Z, a-z, 0-9, '-', '_'"))
        } else {
            match (e.get("eventData"), e.get("eventDataChecksum")) {
                (Some(Value::String(d)), None | Some(Value::Null)) => build(d, None, &channel, now),
                (Some(Value::String(d)), Some(Value::String(sum))) => build(d, Some(sum), &channel, now),
                (Some(Value::String(_)), Some(_)) => Err(refusal("InvalidChecksum", "eventDataChecksum must be a string")),
                (None | Some(Value::Null), _) => Err(refusal("FieldNotFound", "eventData is required")),
                (Some(_), _) => Err(refusal("InvalidData", "eventData must be a string holding a JSON object")),
            }
        };
        match checked {
            Ok((record, event_id)) => pending.push((id, record, event_id)),
            Err(r) => failed.push(json!({"id": id, "errorCode": r.code, "errorMessage": r.message})),
        }
    }
    let mut successful: Vec<Value> = Vec::new();
    let mut last_ok = None;
    if !pending.is_empty() {
        let records: Vec<&[u8]> = pending.iter().map(|(_, r, _)| r.as_slice()).collect();
        let outcomes = shared.store.append(&records).map_err(|e| ApiError {
            status: 500,
            code: "InternalFailure",
            message: format!("storing the events: {e}"),
        })?;
        for ((id, _, event_id), outcome) in pending.iter().zip(outcomes) {
            match outcome {
                Outcome::Stored(_) | Outcome::Duplicate(_) => {
                    successful.push(json!({"id": id, "eventID": event_id}));
                    last_ok = Some(event_id.as_str());
                }
                Outcome::Rejected(r) => {
                    let code = if matches!(r, Rejection::TooLarge { .. }) { "FieldTooLong" } else { "InvalidData" };
                    failed.push(json!({"id": id, "errorCode": code, "errorMessage": r.to_string()}));
                }
            }
        }
        shared.appended.fetch_add(successful.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    let last_err = failed.last().and_then(|f| f["errorCode"].as_str());
    shared.channels.record(&channel.arn, now, last_ok, last_err);
    Ok(json!({"successful": successful, "failed": failed}).to_string().into_bytes())
}
