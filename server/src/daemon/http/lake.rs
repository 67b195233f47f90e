//! CloudTrail Lake's query API on the store: StartQuery, DescribeQuery,
//! GetQueryResults, CancelQuery, ListQueries, and the one event data
//! store (ListEventDataStores, GetEventDataStore) that the store is. The
//! queries themselves run in `daemon::queries`; SQL is cairn-sql's
//! (docs/HTTP-API.md says where it differs from Lake's).

use serde_json::{json, Map, Value};

use crate::daemon::queries::{Queries, Query, StartError, Status};

use super::super::Shared;
use super::cloudtrail::{serialization, string, timestamp};
use super::{uuid_v4, ApiError};

/// Rows a GetQueryResults page holds at most (Lake's MaxQueryResults).
const PAGE_MAX: i64 = 1000;

fn queries(shared: &Shared) -> Result<&Queries, ApiError> {
    shared.queries().map_err(|e| ApiError { status: 500, code: "InternalFailure", message: format!("{e:#}") })
}

/// The event data store's ARN: the store's id under the trail's account
/// and region.
pub(super) fn store_arn(shared: &Shared) -> String {
    format!("arn:aws:cloudtrail:{}:{}:eventdatastore/{}", shared.cfg.region(), shared.cfg.account_id, shared.store.id())
}

/// Checks an `EventDataStore` member (the store's id or ARN; optional
/// unless `required`).
fn check_store(shared: &Shared, input: &Map<String, Value>, required: bool) -> Result<(), ApiError> {
    let Some(named) = string(input, "EventDataStore")? else {
        return if required { Err(ApiError::new("InvalidParameterException", "EventDataStore is required")) } else { Ok(()) };
    };
    let id = shared.store.id();
    if named == id || named == store_arn(shared) {
        return Ok(());
    }
    Err(ApiError::new(
        "EventDataStoreNotFoundException",
        format!("the event data store {named:?} does not exist: this server's one store is {id} ({})", store_arn(shared)),
    ))
}

fn query_id_not_found(id: &str) -> ApiError {
    ApiError::new(
        "QueryIdNotFoundException",
        format!("the query ID {id} does not exist or has expired (queries are kept 7 days, and not across a restart)"),
    )
}

/// The query a request names by `QueryId`.
fn named_query(shared: &Shared, input: &Map<String, Value>) -> Result<std::sync::Arc<Query>, ApiError> {
    let id = string(input, "QueryId")?.ok_or_else(|| ApiError::new("InvalidParameterException", "QueryId is required"))?;
    queries(shared)?.get(id).ok_or_else(|| query_id_not_found(id))
}

/// An optional integer member within `1..=max`.
fn page_size(input: &Map<String, Value>, field: &str, max: i64) -> Result<usize, ApiError> {
    let n = match input.get(field) {
        None | Some(Value::Null) => max,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| serialization(field, "an integer"))?,
        Some(_) => return Err(serialization(field, "an integer")),
    };
    if !(1..=max).contains(&n) {
        return Err(ApiError::new("InvalidMaxResultsException", format!("{field} must be 1 to {max}, not {n}")));
    }
    Ok(n as usize)
}

/// A page token: the offset of the page's first item, tied to what it
/// pages (a query's id, or the list).
fn next_token(offset: usize, of: &str) -> String {
    format!("{offset:08}.{of}")
}

fn read_token(input: &Map<String, Value>, of: &str, len: usize) -> Result<usize, ApiError> {
    let Some(t) = string(input, "NextToken")? else { return Ok(0) };
    let invalid = || ApiError::new("InvalidNextTokenException", format!("NextToken {t:?} is not one this server gave for this request"));
    let (offset, rest) = t.split_once('.').ok_or_else(invalid)?;
    let offset: usize = offset.parse().map_err(|_| invalid())?;
    if rest != of || offset > len {
        return Err(invalid());
    }
    Ok(offset)
}

/// StartQuery: plans the statement (a bad one is refused now) and runs it
/// in the background.
pub(super) fn start_query(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    for unsupported in ["QueryAlias", "QueryParameters", "DeliveryS3Uri"] {
        if input.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::new(
                "UnsupportedOperationException",
                format!("{unsupported} is not supported by cairnd: give the whole QueryStatement; results are read with GetQueryResults"),
            ));
        }
    }
    let statement = string(input, "QueryStatement")?
        .ok_or_else(|| ApiError::new("InvalidParameterException", "QueryStatement is required (1 to 10,000 characters)"))?;
    if statement.trim().is_empty() {
        return Err(ApiError::new("InvalidQueryStatementException", "the query statement is empty"));
    }
    let q = queries(shared)?;
    match q.start(statement, uuid_v4(), super::super::now_ms()) {
        Ok(query) => {
            tracing::info!(query_id = %query.id, "query started");
            Ok(json!({ "QueryId": query.id, "EventDataStoreOwnerAccountId": shared.cfg.account_id }))
        }
        Err(e) => {
            let status = if matches!(e, StartError::Failed(_)) { 500 } else { 400 };
            let (code, message) = e.named();
            Err(ApiError { status, code, message })
        }
    }
}

/// DescribeQuery: a query's status and statistics.
pub(super) fn describe_query(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    check_store(shared, input, false)?;
    if string(input, "QueryAlias")?.is_some() || string(input, "RefreshId")?.is_some() {
        return Err(ApiError::new("UnsupportedOperationException", "cairnd describes queries by QueryId only"));
    }
    let q = named_query(shared, input)?;
    let elapsed = q.elapsed_ms();
    Ok(q.with(|s| {
        let status = s.status.unwrap_or(Status::Running);
        let mut out = json!({
            "QueryId": q.id,
            "QueryString": q.statement,
            "QueryStatus": status.name(),
            "QueryStatistics": {
                "EventsMatched": s.events_matched,
                "EventsScanned": s.events_scanned,
                "BytesScanned": s.bytes_scanned,
                "ExecutionTimeInMillis": elapsed,
                "CreationTime": q.created_ms as f64 / 1000.0,
            },
            "EventDataStoreOwnerAccountId": shared.cfg.account_id,
        });
        if let Some(e) = &s.error {
            out["ErrorMessage"] = json!(e);
        }
        out
    }))
}

/// GetQueryResults: a page of a query's rows, each a list of one-member
/// objects `{"column": "value"}` (NULL is JSON null). A running query has
/// no rows yet: its status says to wait.
pub(super) fn get_query_results(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    check_store(shared, input, false)?;
    let q = named_query(shared, input)?;
    let max = page_size(input, "MaxQueryResults", PAGE_MAX)?;
    q.with(|s| {
        let status = s.status.unwrap_or(Status::Running);
        let mut out = json!({ "QueryStatus": status.name() });
        if let Some(e) = &s.error {
            out["ErrorMessage"] = json!(e);
        }
        if status == Status::Running {
            out["QueryStatistics"] = json!({ "ResultsCount": 0, "TotalResultsCount": 0, "BytesScanned": s.bytes_scanned });
            return Ok(out);
        }
        if s.streamed {
            out["ErrorMessage"] = json!("the rows of this query went to a Cairn-protocol client (cairn query --server) and were not kept");
        }
        let from = read_token(input, &q.id, s.rows.len())?;
        let to = (from + max).min(s.rows.len());
        let rows: Vec<Value> = s.rows[from..to]
            .iter()
            .map(|row| Value::Array(s.columns.iter().zip(row).map(|(c, v)| json!({ c.as_str(): v })).collect()))
            .collect();
        out["QueryStatistics"] = json!({ "ResultsCount": rows.len(), "TotalResultsCount": s.rows.len(), "BytesScanned": s.bytes_scanned });
        out["QueryResultRows"] = Value::Array(rows);
        if to < s.rows.len() {
            out["NextToken"] = json!(next_token(to, &q.id));
        }
        Ok(out)
    })
}

/// CancelQuery: stops a running query (its rows so far stay readable).
pub(super) fn cancel_query(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    check_store(shared, input, false)?;
    let q = named_query(shared, input)?;
    if !queries(shared)?.cancel(&q) {
        return Err(ApiError::new(
            "InactiveQueryException",
            format!("the query {} is {}: only a running query can be cancelled", q.id, q.status().name()),
        ));
    }
    tracing::info!(query_id = %q.id, "query cancelled");
    Ok(json!({ "QueryId": q.id, "QueryStatus": Status::Cancelled.name(), "EventDataStoreOwnerAccountId": shared.cfg.account_id }))
}

/// ListQueries: the remembered queries, newest first.
pub(super) fn list_queries(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    check_store(shared, input, true)?;
    let max = page_size(input, "MaxResults", PAGE_MAX)?;
    let (start, end) = (timestamp(input, "StartTime")?, timestamp(input, "EndTime")?);
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(ApiError::new("InvalidDateRangeException", "StartTime is after EndTime"));
        }
    }
    let status = match string(input, "QueryStatus")? {
        Some(s) if !Status::NAMES.contains(&s) => {
            return Err(ApiError::new(
                "InvalidQueryStatusException",
                format!("QueryStatus {s:?} is not one of {}", Status::NAMES.join(", ")),
            ))
        }
        s => s,
    };
    let all: Vec<_> = queries(shared)?
        .list()
        .into_iter()
        .filter(|q| start.is_none_or(|s| q.created_ms >= s) && end.is_none_or(|e| q.created_ms <= e))
        .filter(|q| status.is_none_or(|s| q.status().name() == s))
        .collect();
    // The token names the last query listed: the next page starts after
    // it, wherever newer queries put it in the list.
    let from = match string(input, "NextToken")? {
        None => 0,
        Some(t) => {
            let after = t.strip_prefix("after.").and_then(|id| all.iter().position(|q| q.id == id));
            after.map(|i| i + 1).ok_or_else(|| {
                ApiError::new("InvalidNextTokenException", format!("NextToken {t:?} is not one this server gave, or its query has expired"))
            })?
        }
    };
    let to = (from + max).min(all.len());
    let page: Vec<Value> = all[from..to]
        .iter()
        .map(|q| json!({ "QueryId": q.id, "QueryStatus": q.status().name(), "CreationTime": q.created_ms as f64 / 1000.0 }))
        .collect();
    let mut out = json!({ "Queries": page });
    if to < all.len() {
        out["NextToken"] = json!(format!("after.{}", all[to - 1].id));
    }
    Ok(out)
}

/// The store as an event data store.
fn event_data_store(shared: &Shared) -> Value {
    let mut eds = json!({
        "EventDataStoreArn": store_arn(shared),
        "Name": shared.cfg.trail_name,
        "Status": "ENABLED",
        "MultiRegionEnabled": true,
        "OrganizationEnabled": false,
        "TerminationProtectionEnabled": true,
    });
    if (7..=3653).contains(&shared.cfg.retention_days) {
        eds["RetentionPeriod"] = json!(shared.cfg.retention_days);
    }
    eds
}

/// ListEventDataStores: the one store.
pub(super) fn list_event_data_stores(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    page_size(input, "MaxResults", PAGE_MAX)?;
    if string(input, "NextToken")?.is_some() {
        return Err(ApiError::new("InvalidNextTokenException", "ListEventDataStores answers in one page: there is no next page"));
    }
    Ok(json!({ "EventDataStores": [event_data_store(shared)] }))
}

/// GetEventDataStore: the store, by its id or ARN.
pub(super) fn get_event_data_store(shared: &Shared, input: &Map<String, Value>) -> Result<Value, ApiError> {
    check_store(shared, input, true)?;
    Ok(event_data_store(shared))
}
