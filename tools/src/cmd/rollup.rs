//! `cairn count --rollup`: counts of data events read from the rollups
//! (5-minute aggregated records written by `cairn compact --rollup`)
//! instead of from every event.

use std::collections::HashMap;

use anyhow::{bail, Result};
use cairn_engine::{Attr, Order, Query};

use crate::backend::Backend;

/// Counts data events by `by` from the rollups whose window starts in the
/// query's time range. Filters: EventSource, AwsRegion and AccountId (on
/// the rollup records) and EventName (on their details). Principals and
/// error codes beyond each window's top 10 count as `other`.
pub fn count(backend: &mut Backend, q: &Query, by: Attr) -> Result<Vec<(String, u64)>> {
    let mut names: Option<&Vec<String>> = None;
    let mut filters = vec![(Attr::EventCategory, vec!["Aggregated".to_string()])];
    for (a, vs) in &q.filters {
        match a {
            Attr::EventSource | Attr::AwsRegion | Attr::AccountId => filters.push((*a, vs.clone())),
            Attr::EventName => names = Some(vs),
            Attr::EventCategory => {}
            other => bail!(
                "InvalidLookupAttributesException: --rollup filters by EventSource, EventName, AwsRegion and AccountId, not {}",
                other.name()
            ),
        }
    }
    if !matches!(by, Attr::EventName | Attr::EventSource | Attr::AwsRegion | Attr::AccountId | Attr::UserIdentityArn | Attr::ErrorCode) {
        bail!("InvalidLookupAttributesException: --rollup counts by EventName, EventSource, AwsRegion, AccountId, UserIdentityArn or ErrorCode, not {}", by.name());
    }
    let rq = Query { start_ms: q.start_ms, end_ms: q.end_ms, filters };
    let mut counts: HashMap<String, u64> = HashMap::new();
    backend.export(&rq, Order::OldestFirst, &mut |e| {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&e.record) else { return Ok(()) };
        if v["eventType"] != cairn_engine::event::AGGREGATED_EVENT_TYPE {
            return Ok(());
        }
        let record_value = |k: &str| v[k].as_str().unwrap_or("").to_string();
        for d in v["summary"]["details"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let name = d["eventName"].as_str().unwrap_or("");
            if names.is_some_and(|ns| !ns.iter().any(|n| n == name)) {
                continue;
            }
            let n = d["count"].as_u64().unwrap_or(0);
            let mut add = |k: String, n: u64| *counts.entry(k).or_default() += n;
            match by {
                Attr::EventName => add(name.to_string(), n),
                Attr::EventSource => add(record_value("eventSource"), n),
                Attr::AwsRegion => add(record_value("awsRegion"), n),
                Attr::AccountId => add(record_value("accountId"), n),
                _ => {
                    let list = if by == Attr::ErrorCode { &d["errorCodes"] } else { &d["userIdentityArns"] };
                    for x in list.as_array().map(Vec::as_slice).unwrap_or_default() {
                        add(x["value"].as_str().unwrap_or("").to_string(), x["count"].as_u64().unwrap_or(0));
                    }
                }
            }
        }
        Ok(())
    })?;
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(v)
}
