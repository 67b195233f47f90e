//! CloudTrail's operations on the store (AWS JSON 1.1): the request's JSON
//! checked as CloudTrail checks it, the engine called, the answer in
//! CloudTrail's shapes. botocore's service model
//! (`botocore/data/cloudtrail/2013-11-01/service-2.json`) is the authority
//! on names and shapes; docs/HTTP-API.md says where Cairn differs.

use cairn_engine::{Attr, Query};
use serde_json::{json, Map, Value};

use crate::convert::lookup_event;
use crate::protocol::Role;

use super::super::Shared;
use super::{permits, ApiError};

/// LookupEvents' attribute keys, in the model's order.
pub const LOOKUP_KEYS: [&str; 8] =
    ["EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"];
/// The keys an Insights lookup (`EventCategory: insight`) accepts.
const INSIGHT_LOOKUP_KEYS: [&str; 3] = ["EventId", "EventName", "EventSource"];
/// MaxResults' bounds and default.
const MAX_RESULTS_MAX: i64 = 50;
/// A lookup without `EventCategory` skips Insight events (CloudTrail
/// returns them only when asked); it reads at most this many events for
/// one page before answering with what it has and a NextToken.
const SCAN_EVENTS_MAX: usize = 10_000;

/// The operations, with the role each needs.
const OPERATIONS: [(&str, Role); 1] = [("LookupEvents", Role::Read)];

/// Who is calling: the access key's id and role.
pub(super) struct Caller<'a> {
    pub access_key_id: &'a str,
    pub role: Role,
}

/// Runs operation `op` with the request body `body`; the response body.
pub(super) fn call(shared: &Shared, op: &str, caller: &Caller, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let Some(&(_, need)) = OPERATIONS.iter().find(|(name, _)| *name == op) else {
        let known: Vec<&str> = OPERATIONS.iter().map(|(n, _)| *n).collect();
        return Err(ApiError::new(
            "UnknownOperationException",
            format!("{op} is not an operation cairnd implements; it implements {}", known.join(", ")),
        ));
    };
    if !permits(caller.role, need) {
        return Err(ApiError::new(
            "AccessDeniedException",
            format!(
                "User: {} (role {}) is not authorized to perform: cloudtrail:{op}; it needs a {} or admin key",
                caller.access_key_id,
                caller.role.name(),
                need.name()
            ),
        ));
    }
    let input: Value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", format!("the request body is not JSON: {e}")))?
    };
    let Value::Object(input) = input else {
        return Err(ApiError::new("SerializationException", "the request body must be a JSON object"));
    };
    let out = match op {
        "LookupEvents" => lookup_events(shared, &input)?,
        _ => unreachable!("every operation in OPERATIONS is dispatched"),
    };
    Ok(out.to_string().into_bytes())
}

fn serialization(field: &str, want: &str) -> ApiError {
    ApiError::new("SerializationException", format!("{field} must be {want}"))
}

/// A timestamp member: epoch seconds, integer or fractional; unix ms.
fn timestamp(input: &Map<String, Value>, field: &str) -> Result<Option<i64>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().ok_or_else(|| serialization(field, "a number of seconds since 1970"))?;
            let ms = (secs * 1000.0).floor();
            if !ms.is_finite() || ms.abs() > 1e17 {
                return Err(ApiError::new("InvalidTimeRangeException", format!("{field} {secs} is outside the range of possible values")));
            }
            Ok(Some(ms as i64))
        }
        Some(_) => Err(serialization(field, "a number of seconds since 1970 (integer or fractional)")),
    }
}

fn string<'a>(input: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(serialization(field, "a string")),
    }
}

/// LookupEvents: one page, newest first.
fn lookup_events(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let insight = match string(input, "EventCategory")? {
        None => false,
        Some("insight") => true,
        Some(other) => {
            return Err(ApiError::new(
                "InvalidEventCategoryException",
                format!("EventCategory {other:?} is not valid: the only value is \"insight\""),
            ))
        }
    };
    let max = match input.get("MaxResults") {
        None | Some(Value::Null) => MAX_RESULTS_MAX,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| serialization("MaxResults", "an integer"))?,
        Some(_) => return Err(serialization("MaxResults", "an integer")),
    };
    if !(1..=MAX_RESULTS_MAX).contains(&max) {
        return Err(ApiError::new("InvalidMaxResultsException", format!("MaxResults must be 1 to {MAX_RESULTS_MAX}, not {max}")));
    }
    let mut filters: Vec<(Attr, Vec<String>)> = Vec::new();
    match input.get("LookupAttributes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(attrs)) => {
            if attrs.len() > 1 {
                return Err(ApiError::new(
                    "InvalidLookupAttributesException",
                    format!("LookupAttributes may hold one attribute, as CloudTrail's does; {} were given", attrs.len()),
                ));
            }
            for a in attrs {
                let Value::Object(a) = a else { return Err(serialization("each LookupAttributes element", "an object")) };
                let key = string(a, "AttributeKey")?
                    .ok_or_else(|| ApiError::new("InvalidLookupAttributesException", "AttributeKey is required"))?;
                let value = string(a, "AttributeValue")?
                    .ok_or_else(|| ApiError::new("InvalidLookupAttributesException", "AttributeValue is required"))?;
                let allowed: &[&str] = if insight { &INSIGHT_LOOKUP_KEYS } else { &LOOKUP_KEYS };
                if !allowed.contains(&key) {
                    return Err(ApiError::new(
                        "InvalidLookupAttributesException",
                        format!(
                            "AttributeKey {key:?} is not valid{}: use one of {}",
                            if insight { " for an Insights lookup" } else { "" },
                            allowed.join(", ")
                        ),
                    ));
                }
                let attr = Attr::parse(key).expect("every lookup key is an attribute");
                filters.push((attr, vec![value.to_string()]));
            }
        }
        Some(_) => return Err(serialization("LookupAttributes", "a list")),
    }
    if insight {
        filters.push((Attr::EventCategory, vec!["Insight".into()]));
    }
    let query = Query { start_ms: timestamp(input, "StartTime")?, end_ms: timestamp(input, "EndTime")?, filters };
    let mut token = string(input, "NextToken")?.map(str::to_string);
    let mut events = Vec::new();
    let mut scanned = 0;
    loop {
        let want = max as usize - events.len();
        let page = shared.store.lookup(&query, Some(want), token.as_deref()).map_err(|e| ApiError {
            status: if e.code() == "InternalFailure" { 500 } else { 400 },
            code: e.code(),
            message: e.message(),
        })?;
        scanned += page.events.len();
        for e in &page.events {
            let (value, is_insight) = lookup_event(e);
            if insight || !is_insight {
                events.push(value);
            }
        }
        token = page.next_token;
        if token.is_none() || events.len() >= max as usize || scanned >= SCAN_EVENTS_MAX {
            break;
        }
    }
    let mut out = Map::new();
    out.insert("Events".into(), Value::Array(events));
    if let Some(t) = token {
        out.insert("NextToken".into(), json!(t));
    }
    Ok(Value::Object(out))
}
