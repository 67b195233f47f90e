//! Rollups (`cairn compact --rollup`): 5-minute summaries of data events
//! as CloudTrail-shaped aggregated events, written once, counted by
//! `cairn count --rollup` with the same answers as counting the events.

use cairn_engine::rollup::{rollup, RollupOptions};
use cairn_engine::{Attr, Options, Query, Store};

use crate::common::cairn;

const USERS: [&str; 4] = ["alice", "bob", "etl", "mallory"];

/// S3 data events over an hour (some AccessDenied), in two accounts, and
/// management events between them that rollups ignore.
fn records() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..3000u32 {
        let second = i as i64 * 1200 / 1000; // one hour, 0.83 events/s
        let t = cairn_engine::event::format_event_time(1_767_225_600_000 + second * 1000);
        let user = USERS[(i % 4) as usize];
        let account = if i % 7 == 0 { "444455556666" } else { "111122223333" };
        let name = ["GetObject", "PutObject", "HeadObject"][(i % 3) as usize];
        let err = if i % 11 == 0 { r#","errorCode":"AccessDenied""# } else { "" };
        v.push(format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::{account}:user/{user}","accountId":"{account}"}},"eventTime":"{t}","eventSource":"s3.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","eventID":"d-{i}","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"{account}","eventCategory":"Data"{err}}}"#
        ).into_bytes());
        if i % 100 == 0 {
            v.push(format!(r#"{{"eventVersion":"1.09","eventTime":"{t}","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","eventID":"m-{i}","readOnly":true,"eventCategory":"Management"}}"#).into_bytes());
        }
    }
    // Later traffic, so the last window of the hour is complete.
    v.push(br#"{"eventVersion":"1.09","eventTime":"2026-01-01T02:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","awsRegion":"us-east-1","eventID":"m-late"}"#.to_vec());
    v
}

fn counts(v: &serde_json::Value, by: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> =
        v.as_array().unwrap().iter().map(|c| (c[by].as_str().unwrap().to_string(), c["Count"].as_u64().unwrap())).collect();
    out.sort();
    out
}

// Goal: rollups summarise every data event once (one record per window,
// account, region and source), a rerun writes nothing, the events stay,
// and counting from the rollups answers what counting the events answers,
// offline and through cairnd.
#[test]
fn rollups_count_like_the_events_and_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let recs = records();
    for chunk in recs.chunks(500) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        store.append(&refs).unwrap();
    }
    let r = rollup(&store, &RollupOptions::default()).unwrap();
    assert_eq!(r.data_events, 3000);
    assert_eq!(r.records, 12 * 2, "12 windows of 5 minutes, 2 accounts");
    assert_eq!((r.appended, r.present), (24, 0));
    let again = rollup(&store, &RollupOptions::default()).unwrap();
    assert_eq!((again.appended, again.present), (0, 24));
    let data = Query { filters: vec![(Attr::EventCategory, vec!["Data".into()])], ..Default::default() };
    assert_eq!(store.count(&data, Attr::EventName).unwrap().iter().map(|c| c.1).sum::<u64>(), 3000, "the events are kept");
    let agg = Query { filters: vec![(Attr::EventCategory, vec!["aggregated".into()])], ..Default::default() };
    let page = store.lookup(&agg, Some(100), None).unwrap();
    assert_eq!(page.events.len(), 24);
    let rec: serde_json::Value = serde_json::from_slice(&page.events[0].record).unwrap();
    assert_eq!(rec["eventType"], "AwsAggregatedEvent");
    assert_eq!(rec["timeWindow"]["windowSize"], "PT5M");
    assert_eq!(rec["summary"]["primaryDimension"], "eventName");
    store.close().unwrap();

    // The CLI: the same counts from the rollups as from the events.
    for by in ["EventName", "ErrorCode", "UserIdentityArn", "AccountId"] {
        let (code, out, err) = cairn(dir.path(), &["count", "--by", by, "--attr", "EventCategory=Data", "--output", "json"]);
        assert_eq!(code, 0, "{err}");
        let mut events = counts(&serde_json::from_slice(&out).unwrap(), by);
        let (code, out, err) = cairn(dir.path(), &["count", "--rollup", "--by", by, "--output", "json"]);
        assert_eq!(code, 0, "{err}");
        let rolled = counts(&serde_json::from_slice(&out).unwrap(), by);
        if by == "ErrorCode" {
            // The events count only those with an error code.
            events.retain(|c| !c.0.is_empty());
        }
        assert_eq!(rolled, events, "by {by}");
    }
    let (code, out, _) = cairn(
        dir.path(),
        &["count", "--rollup", "--by", "EventName", "--attr", "EventName=PutObject", "--start", "2026-01-01T00:30:00Z", "--output", "json"],
    );
    assert_eq!(code, 0);
    let c = counts(&serde_json::from_slice(&out).unwrap(), "EventName");
    assert_eq!(c, vec![("PutObject".to_string(), 500)], "half an hour of every third event");
    let (code, _, err) = cairn(dir.path(), &["count", "--rollup", "--by", "Username"]);
    assert_ne!(code, 0);
    assert!(err.contains("--rollup counts by"), "{err}");

    // Through cairnd, with the admin token: nothing new to write.
    let d = crate::server::Daemon::start(dir.path());
    let (code, out, err) = d.cli(&["compact", "--rollup", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["rollup"]["present"], 24, "{v}");
    let (code, out, _) = d.cli(&["count", "--rollup", "--by", "EventName", "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(counts(&serde_json::from_slice(&out).unwrap(), "EventName").iter().map(|c| c.1).sum::<u64>(), 3000);
}

// Goal: `cairnd --rollups true` writes the rollups by itself at its
// maintenance runs, once.
#[test]
fn cairnd_writes_rollups_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let d =
        crate::server::Daemon::start_with(dir.path(), &["--rollups", "true", "--maintenance-interval-secs", "1", "--insights", "false"]);
    let mut c = cairn_server::client::Client::connect(&d.addr, &d.admin_token()).unwrap();
    for chunk in records().chunks(500) {
        c.append(chunk.to_vec()).unwrap();
    }
    let q = cairn_server::protocol::WireQuery { filters: vec![("EventCategory".into(), vec!["Aggregated".into()])], ..Default::default() };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while c.count(q.clone(), "EventSource").unwrap().iter().map(|x| x.1).sum::<u64>() < 24 {
        assert!(std::time::Instant::now() < until, "no rollups after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(c.count(q, "EventSource").unwrap().iter().map(|x| x.1).sum::<u64>(), 24, "each window once");
}
