//! CloudTrail's operations on the store (AWS JSON 1.1): the request's JSON
//! checked as CloudTrail checks it, the engine called, the answer in
//! CloudTrail's shapes. botocore's service model
//! (`botocore/data/cloudtrail/2013-11-01/service-2.json`) is the authority
//! on names and shapes; docs/HTTP-API.md says where Cairn differs.

use cairn_engine::{Attr, Query};
use serde_json::{json, Map, Value};
use sha2::Digest as _;

use crate::convert::lookup_event;
use crate::daemon::channels::{Channel, NewChannel};
use crate::protocol::Role;

use super::super::Shared;
use super::{lake, ApiError, Caller};

/// LookupEvents' attribute keys, in the model's order.
pub const LOOKUP_KEYS: [&str; 8] =
    ["EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"];
/// The keys an Insights lookup (`EventCategory: insight`) accepts.
const INSIGHT_LOOKUP_KEYS: [&str; 3] = ["EventId", "EventName", "EventSource"];
/// MaxResults' bounds and default.
const MAX_RESULTS_MAX: i64 = 50;
/// A lookup without `EventCategory` skips Insight events (CloudTrail
/// returns them only when asked); it reads at most this many events, in at
/// most this many engine calls, for one page before answering with what
/// it has and a NextToken.
const SCAN_EVENTS_MAX: usize = 10_000;
const SCAN_CALLS_MAX: usize = 20;

/// An operation: its input object to its output.
type Operation = fn(&Shared, &Map<String, Value>) -> Result<Value, ApiError>;

/// The operations, with the role each needs.
const OPERATIONS: [(&str, Role, Operation); 16] = [
    ("LookupEvents", Role::Read, lookup_events),
    ("DescribeTrails", Role::Read, describe_trails),
    ("GetTrailStatus", Role::Read, trail_status),
    ("GetEventSelectors", Role::Read, event_selectors),
    ("ListPublicKeys", Role::Read, list_public_keys),
    ("ListInsightsMetricData", Role::Read, insights_metric_data),
    ("CreateChannel", Role::Admin, create_channel),
    ("ListChannels", Role::Read, list_channels),
    ("GetChannel", Role::Read, get_channel),
    ("StartQuery", Role::Read, lake::start_query),
    ("DescribeQuery", Role::Read, lake::describe_query),
    ("GetQueryResults", Role::Read, lake::get_query_results),
    ("CancelQuery", Role::Read, lake::cancel_query),
    ("ListQueries", Role::Read, lake::list_queries),
    ("ListEventDataStores", Role::Read, lake::list_event_data_stores),
    ("GetEventDataStore", Role::Read, lake::get_event_data_store),
];

/// Runs operation `op` with the request body `body`; the response body.
pub(super) fn call(shared: &Shared, op: &str, caller: &Caller, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let Some(&(_, need, run)) = OPERATIONS.iter().find(|(name, _, _)| *name == op) else {
        let known: Vec<&str> = OPERATIONS.iter().map(|(n, _, _)| *n).collect();
        return Err(ApiError::new(
            "UnknownOperationException",
            format!("{op} is not an operation cairnd implements; it implements {}", known.join(", ")),
        ));
    };
    caller.require(need, &format!("cloudtrail:{op}"))?;
    let input: Value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::new("SerializationException", format!("the request body is not JSON: {e}")))?
    };
    let Value::Object(input) = input else {
        return Err(ApiError::new("SerializationException", "the request body must be a JSON object"));
    };
    let out = run(shared, &input)?;
    Ok(out.to_string().into_bytes())
}

pub(super) fn serialization(field: &str, want: &str) -> ApiError {
    ApiError::new("SerializationException", format!("{field} must be {want}"))
}

/// A timestamp member: epoch seconds, integer or fractional; unix ms.
pub(super) fn timestamp(input: &Map<String, Value>, field: &str) -> Result<Option<i64>, ApiError> {
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

pub(super) fn string<'a>(input: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
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
    let (mut scanned, mut calls) = (0, 0);
    loop {
        calls += 1;
        // Exactly what is missing: the engine's token continues after the
        // last event it returned, so no event may be left unsent.
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
        if token.is_none() || events.len() >= max as usize || scanned >= SCAN_EVENTS_MAX || calls >= SCAN_CALLS_MAX {
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

fn epoch_secs(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

fn destinations(c: &Channel) -> Value {
    json!([{"Type": "EVENT_DATA_STORE", "Location": c.destination()}])
}

/// CreateChannel: a channel for PutAuditEvents into this store. Who may
/// send and the external ID are set with `cairn channel create` (CloudTrail
/// sets them with a resource policy).
fn create_channel(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let name = string(input, "Name")?.ok_or_else(|| ApiError::new("InvalidParameterException", "Name is required"))?;
    let source = string(input, "Source")?
        .ok_or_else(|| ApiError::new("InvalidSourceException", "Source is required (Custom for your own events)"))?;
    match input.get("Destinations") {
        Some(Value::Array(d)) if !d.is_empty() && d.iter().all(|x| x.get("Type").and_then(Value::as_str) == Some("EVENT_DATA_STORE")) => {}
        Some(Value::Array(_)) => {
            return Err(ApiError::new(
                "InvalidParameterException",
                "a channel's destination is the store: Destinations must list EVENT_DATA_STORE, and only it",
            ))
        }
        _ => return Err(ApiError::new("InvalidParameterException", "Destinations (a list) is required")),
    }
    let new = NewChannel { name: name.into(), source: Some(source.into()), ..Default::default() };
    let c = shared.channels.create(new, shared.cfg.region(), super::super::now_ms()).map_err(|e| ApiError::new(e.code, e.message))?;
    Ok(json!({"ChannelArn": c.arn, "Name": c.name, "Source": c.source, "Destinations": destinations(&c)}))
}

fn list_channels(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    if string(input, "NextToken")?.is_some() {
        return Err(ApiError::new("InvalidNextTokenException", "ListChannels answers every channel in one page: there is no next page"));
    }
    let channels: Vec<Value> = shared.channels.list().iter().map(|c| json!({"ChannelArn": c.arn, "Name": c.name})).collect();
    Ok(json!({ "Channels": channels }))
}

fn get_channel(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let id =
        string(input, "Channel")?.ok_or_else(|| ApiError::new("ChannelARNInvalidException", "Channel (an ARN or name) is required"))?;
    let c = shared.channels.find(id).ok_or_else(|| ApiError::new("ChannelNotFoundException", format!("no channel {id}")))?;
    let s = shared.channels.status(&c.arn);
    let mut status = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            status.insert(k.into(), v);
        }
    };
    put("LatestIngestionSuccessTime", s.success_ms.map(epoch_secs));
    put("LatestIngestionSuccessEventID", s.success_event_id.map(Value::String));
    put("LatestIngestionErrorCode", s.error_code.map(Value::String));
    put("LatestIngestionAttemptTime", s.attempt_ms.map(epoch_secs));
    put("LatestIngestionAttemptEventID", s.attempt_event_id.map(Value::String));
    Ok(json!({
        "ChannelArn": c.arn, "Name": c.name, "Source": c.source, "Destinations": destinations(&c),
        "IngestionStatus": Value::Object(status),
    }))
}

/// ListInsightsMetricData's bounds: the periods (seconds), the most points.
const METRIC_PERIODS: [i64; 3] = [60, 300, 3600];
const METRIC_POINTS_MAX: i64 = 21_600;
/// Without StartTime, the data of the last 90 days.
const METRIC_DEFAULT_SPAN_MS: i64 = 90 * 86_400_000;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new("InvalidParameterException", message)
}

/// ListInsightsMetricData: per-period counts of one API's write calls
/// (ApiCallRateInsight) or of its calls that ended with an error code
/// (ApiErrorRateInsight), from the Insights counters, oldest first.
fn insights_metric_data(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let source = string(input, "EventSource")?.ok_or_else(|| invalid("EventSource is required"))?;
    let name = string(input, "EventName")?.ok_or_else(|| invalid("EventName is required"))?;
    let insight = string(input, "InsightType")?.ok_or_else(|| invalid("InsightType is required"))?;
    let error_code = string(input, "ErrorCode")?;
    let error = match (insight, error_code) {
        ("ApiCallRateInsight", None) => None,
        ("ApiCallRateInsight", Some(_)) => return Err(invalid("ErrorCode applies to ApiErrorRateInsight only")),
        ("ApiErrorRateInsight", Some(c)) => Some(c),
        ("ApiErrorRateInsight", None) => return Err(invalid("ApiErrorRateInsight needs an ErrorCode")),
        (other, _) => return Err(invalid(format!("InsightType {other:?} is not ApiCallRateInsight or ApiErrorRateInsight"))),
    };
    let int = |field: &str, default: i64| -> Result<i64, ApiError> {
        match input.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v.as_i64().ok_or_else(|| serialization(field, "an integer")),
        }
    };
    let period = int("Period", 3600)?;
    if !METRIC_PERIODS.contains(&period) {
        return Err(invalid(format!("Period must be 60, 300 or 3600 seconds, not {period}")));
    }
    let max = int("MaxResults", METRIC_POINTS_MAX)?;
    if !(1..=METRIC_POINTS_MAX).contains(&max) {
        return Err(invalid(format!("MaxResults must be 1 to {METRIC_POINTS_MAX}, not {max}")));
    }
    let fill = match string(input, "DataType")? {
        None | Some("NonZeroData") => false,
        Some("FillWithZeros") => true,
        Some(other) => return Err(invalid(format!("DataType {other:?} is not FillWithZeros or NonZeroData"))),
    };
    let now = super::super::now_ms();
    let as_parameter = |e: ApiError| if e.code == "InvalidTimeRangeException" { invalid(e.message) } else { e };
    let end_ms = timestamp(input, "EndTime").map_err(as_parameter)?.unwrap_or(now);
    let start_ms = timestamp(input, "StartTime").map_err(as_parameter)?.unwrap_or(end_ms - METRIC_DEFAULT_SPAN_MS);
    if start_ms >= end_ms {
        return Err(invalid("StartTime must be before EndTime"));
    }
    let period_ms = period * 1000;
    // Periods are aligned to the epoch; the one holding StartTime is the first.
    let mut first = start_ms.div_euclid(period_ms) * period_ms;
    // A token names the next period and is bound to the parameters.
    let bound = format!("{source}|{name}|{insight}|{error:?}|{period}|{fill}|{start_ms}|{end_ms}|{max}");
    let fp = hex::encode(&sha2::Sha256::digest(bound.as_bytes())[..8]);
    if let Some(t) = string(input, "NextToken")? {
        first = t
            .strip_prefix("cairn-metrics-")
            .and_then(|x| x.split_once('-'))
            .filter(|(_, f)| *f == fp)
            .and_then(|(x, _)| x.parse::<i64>().ok())
            .filter(|x| *x >= first && x % period_ms == 0 && *x < end_ms)
            .ok_or_else(|| invalid("NextToken is not one this operation returned for these parameters"))?;
    }
    let minute = 60_000;
    let minutes = cairn_engine::insights::scan::metric_minutes(
        &shared.store,
        source,
        name,
        error,
        first.div_euclid(minute),
        (end_ms + minute - 1).div_euclid(minute),
    )
    .map_err(|e| ApiError { status: 500, code: "InternalFailure", message: format!("reading the Insights counters: {e}") })?;
    let mut sums: std::collections::BTreeMap<i64, u64> = std::collections::BTreeMap::new();
    for (m, n) in minutes {
        *sums.entry((m * minute).div_euclid(period_ms) * period_ms).or_insert(0) += n;
    }
    let (mut stamps, mut values, mut next) = (Vec::new(), Vec::new(), None);
    let mut t = first;
    while t < end_ms {
        let n = sums.get(&t).copied().unwrap_or(0);
        if n > 0 || fill {
            if stamps.len() as i64 == max {
                next = Some(format!("cairn-metrics-{t}-{fp}"));
                break;
            }
            stamps.push(epoch_secs(t));
            values.push(json!(n as f64));
        }
        t += period_ms;
        if !fill {
            // Jump over empty periods rather than walking them.
            match sums.range(t..).next() {
                Some((k, _)) => t = *k,
                None => break,
            }
        }
    }
    let mut out = json!({"EventSource": source, "EventName": name, "InsightType": insight, "Timestamps": stamps, "Values": values});
    if let Some(c) = error {
        out["ErrorCode"] = json!(c);
    }
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn trail_arn(shared: &Shared) -> String {
    format!("arn:aws:cloudtrail:{}:{}:trail/{}", shared.cfg.region(), shared.cfg.account_id, shared.cfg.trail_name)
}

/// The trail a request names (its name or ARN), or TrailNotFoundException.
fn named_trail(shared: &Shared, input: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    let name = string(input, field)?.ok_or_else(|| ApiError::new("InvalidTrailNameException", format!("{field} is required")))?;
    let arn = trail_arn(shared);
    let trail = shared.cfg.trail_name.as_str();
    if name == trail || name == arn {
        return Ok(arn);
    }
    Err(ApiError::new("TrailNotFoundException", format!("Unknown trail: {name}; this store is the one trail {trail} ({arn})")))
}

/// DescribeTrails: the store as one multi-region trail with log file
/// validation (every event is in the store's Merkle tree, and delivered
/// digests are signed); with `--deliver`, its bucket and prefix.
fn describe_trails(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let arn = trail_arn(shared);
    let wanted = match input.get("trailNameList") {
        None | Some(Value::Null) => true,
        Some(Value::Array(names)) => {
            names.is_empty() || names.iter().any(|n| n.as_str() == Some(shared.cfg.trail_name.as_str()) || n.as_str() == Some(arn.as_str()))
        }
        Some(_) => return Err(serialization("trailNameList", "a list of strings")),
    };
    let region = shared.cfg.region();
    let trails = if wanted {
        let mut t = json!({
            "Name": shared.cfg.trail_name, "TrailARN": arn, "HomeRegion": region, "IsMultiRegionTrail": true,
            "IncludeGlobalServiceEvents": true, "IsOrganizationTrail": false, "LogFileValidationEnabled": true,
            "HasCustomEventSelectors": false, "HasInsightSelectors": shared.cfg.insights,
        });
        if let Some(target) = &shared.cfg.deliver {
            t["S3BucketName"] = json!(target.bucket);
            if !target.prefix.is_empty() {
                t["S3KeyPrefix"] = json!(target.prefix);
            }
        }
        vec![t]
    } else {
        vec![]
    };
    Ok(json!({ "trailList": trails }))
}

/// GetTrailStatus: logging since cairnd started; with `--deliver`, the
/// latest delivery, digest and error.
fn trail_status(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    named_trail(shared, input, "Name")?;
    let started = super::super::now_ms() - shared.started.elapsed().as_millis() as i64;
    let mut out = json!({"IsLogging": true, "StartLoggingTime": epoch_secs(started), "TimeLoggingStarted": cairn_engine::event::format_event_time(started)});
    if let Some(status) = &shared.delivery {
        let s = status.lock().clone();
        if let Some(t) = s.last_delivery_ms {
            out["LatestDeliveryTime"] = epoch_secs(t);
            out["LatestDeliveryAttemptSucceeded"] = json!(cairn_engine::event::format_event_time(t));
        }
        if let Some(t) = s.last_digest_ms {
            out["LatestDigestDeliveryTime"] = epoch_secs(t);
        }
        if let (Some(e), Some(t)) = (&s.last_error, s.last_error_ms) {
            out["LatestDeliveryError"] = json!(e);
            out["LatestDeliveryAttemptTime"] = json!(cairn_engine::event::format_event_time(t));
        }
    }
    Ok(out)
}

/// How far beyond a ListPublicKeys range keys are still listed: 8 days,
/// more than delivery ever signs a digest after its window (past 7 days
/// of silence it starts new chains).
const KEY_SLACK_MS: i64 = 8 * 86_400_000;

/// ListPublicKeys: the store's RSA digest keys valid at some time in
/// [StartTime, EndTime] (without times: the current key). `Value` is the
/// DER PKCS#1 RSAPublicKey (a blob: base64 in the JSON, bytes in boto3;
/// the AWS CLI keeps blobs as base64 text, which validate-logs decodes).
fn list_public_keys(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (start, end) = (timestamp(input, "StartTime")?, timestamp(input, "EndTime")?);
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(ApiError::new("InvalidTimeRangeException", "StartTime is after EndTime"));
        }
    }
    let now = super::super::now_ms();
    let keys = shared.store.digest_public_keys();
    // Delivery may sign a digest well after its window ended (catching up
    // after an outage, with a key rotated meanwhile), and validate-logs
    // asks for keys around the digests' times: keys valid within
    // KEY_SLACK_MS of the range are listed too (more keys are harmless:
    // digests name theirs by fingerprint).
    let (from, to) = match (start, end) {
        (None, None) => (now, now),
        (s, e) => (s.unwrap_or(i64::MIN).saturating_sub(KEY_SLACK_MS), e.unwrap_or(now).saturating_add(KEY_SLACK_MS)),
    };
    let list: Vec<Value> = keys
        .iter()
        .filter(|k| k.overlaps(from, to))
        .map(|k| {
            let mut v = json!({
                "Value": b64(&k.der),
                "ValidityStartTime": epoch_secs(k.valid_from_ms),
                "Fingerprint": k.fingerprint,
            });
            // The current key: valid until it is rotated; CloudTrail
            // always sends an end, so say "a year from now".
            v["ValidityEndTime"] = epoch_secs(k.valid_to_ms.unwrap_or(now + 365 * 86_400_000));
            v
        })
        .collect();
    Ok(json!({ "PublicKeyList": list }))
}

/// GetEventSelectors: every management event, read and write; data events
/// are stored too, as they are sent (Cairn keeps what it is given).
fn event_selectors(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    let arn = named_trail(shared, input, "TrailName")?;
    Ok(json!({
        "TrailARN": arn,
        "EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": true, "DataResources": [], "ExcludeManagementEventSources": []}],
    }))
}
