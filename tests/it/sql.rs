//! SQL over the store (cairn-sql): CloudTrail Lake's example queries over
//! generated and real records, each compared with the same question
//! answered by brute force over the stored records in the test; pushdown
//! visible in EXPLAIN and never changing an answer; bad statements
//! refused by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use cairn_engine::{Options, Store, StoredEvent};
use cairn_sql::{Limits, Sql, SqlError};
use cairn_tools::gen::{GenOptions, Profile};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use serde_json::Value;

use crate::common::{all_events, generated_with};

/// A store of generated records of both profiles (some sealed into
/// segments, the newest in the memtable) and the bundled real records,
/// built once for every test here (queries never change it).
fn store() -> &'static (tempfile::TempDir, Arc<Store>) {
    static STORE: OnceLock<(tempfile::TempDir, Arc<Store>)> = OnceLock::new();
    STORE.get_or_init(build_store)
}

fn build_store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options { segment_bytes: 2 << 20, ..Options::default() }).unwrap();
    let mut recs = generated_with(GenOptions { seed: 3, profile: Profile::Diverse, ..Default::default() }, 12_000);
    recs.extend(generated_with(GenOptions { seed: 4, start_ms: 1_767_225_600_000 + 86_400_000, ..Default::default() }, 6_000));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail");
    for f in std::fs::read_dir(fixtures).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ndjson") {
            recs.extend(std::fs::read_to_string(&p).unwrap().lines().filter(|l| !l.trim().is_empty()).map(|l| l.as_bytes().to_vec()));
        }
    }
    // CloudTrail Lake's own StartQuery calls, as its fifth documented
    // example reads them (one with no response: a refused query).
    for (i, response) in [r#"{"queryId":"q-1111"}"#, r#"{"queryId":"q-2222"}"#, "null"].iter().enumerate() {
        recs.push(
            format!(
                r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::123456789012:user/bob","accountId":"123456789012","userName":"bob"}},"eventTime":"2026-01-01T0{i}:30:00Z","eventSource":"cloudtrail.amazonaws.com","eventName":"StartQuery","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.7","userAgent":"aws-cli/2.15.0","requestParameters":{{"queryStatement":"select * from eds limit {i};"}},"responseElements":{response},"requestID":"r-{i}","eventID":"6c5c0e2f-0000-4000-8000-00000000000{i}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#
            )
            .into_bytes(),
        );
    }
    // Records the engine rejects (documentation placeholders in the real
    // files) are not stored; the rest are.
    for chunk in recs.chunks(500) {
        let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
    (dir, Arc::new(store))
}

fn run(store: &Arc<Store>, sql: &str) -> Result<Vec<Vec<Option<String>>>, SqlError> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let engine = Sql::new(store.clone(), Limits::default())?;
    let (_, batches) = rt.block_on(engine.collect(sql))?;
    Ok(rows(&batches))
}

/// Every value as text (NULL as None), row by row.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            out.push(b.columns().iter().map(|c| if c.is_null(i) { None } else { Some(array_value_to_string(c, i).unwrap()) }).collect());
        }
    }
    out
}

/// The stored records, parsed.
fn parsed(store: &Store) -> Vec<(StoredEvent, Value)> {
    all_events(store).into_iter().map(|e| (e.clone(), serde_json::from_slice(&e.record).unwrap())).collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str().filter(|s| !s.is_empty())
}

fn iso(ms: i64) -> String {
    cairn_engine::event::format_event_time_ms(ms)
}

// Goal: Lake's first example (counts by service and API since a time)
// gives exactly the brute-force counts, with the time bound pushed down.
#[test]
fn lake_counts_by_source_and_name() {
    let (_, store) = store();
    let all = parsed(store);
    let since = all.iter().map(|(e, _)| e.time_ms).min().unwrap() + 3_600_000;
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (e, v) in &all {
        if e.time_ms >= since {
            let source = s(v, &["eventSource"]).unwrap_or_default().to_string();
            *want.entry((source, s(v, &["eventName"]).unwrap().to_string())).or_default() += 1;
        }
    }
    let since_text = iso(since).replace('T', " ").replace('Z', "");
    let got = run(
        store,
        &format!(
            "SELECT eventsource, eventname, count(*) AS n FROM events WHERE eventtime >= '{since_text}' \
             GROUP BY eventsource, eventname ORDER BY n DESC, eventsource, eventname"
        ),
    )
    .unwrap();
    let got: BTreeMap<(String, String), u64> = got
        .into_iter()
        .map(|r| ((r[0].clone().unwrap_or_default(), r[1].clone().unwrap()), r[2].as_ref().unwrap().parse().unwrap()))
        .collect();
    assert!(want.len() > 100, "a varied data set: {} groups", want.len());
    assert_eq!(got, want);
    let plan = run(store, &format!("EXPLAIN SELECT count(*) FROM events WHERE eventtime >= '{since_text}'")).unwrap();
    let text = format!("{plan:?}");
    assert!(text.contains(&format!("eventtime=[{}", iso(since))), "{text}");
}

// Goal: Lake's second example — a nested field, a JSON member read with
// element_at, and an indexed equality — gives the brute-force rows, and
// EXPLAIN shows the index used.
#[test]
fn lake_console_logins_without_mfa() {
    let (_, store) = store();
    let mut want: Vec<(Option<String>, Option<String>, i64)> = parsed(store)
        .iter()
        .filter(|(_, v)| s(v, &["eventName"]) == Some("ConsoleLogin") && s(v, &["additionalEventData", "MFAUsed"]) == Some("No"))
        .map(|(e, v)| (s(v, &["userIdentity", "arn"]).map(String::from), s(v, &["sourceIPAddress"]).map(String::from), e.time_ms))
        .collect();
    want.sort();
    assert!(want.len() >= 3, "the data has such logins: {}", want.len());
    let q = "SELECT useridentity.arn, sourceipaddress, eventtime FROM events \
             WHERE eventname = 'ConsoleLogin' AND element_at(additionaleventdata, 'MFAUsed') = 'No'";
    let mut got: Vec<(Option<String>, Option<String>, i64)> = run(store, &q.replace("eventtime FROM", "CAST(eventtime AS BIGINT) FROM"))
        .unwrap()
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].as_ref().unwrap().parse().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, want);
    let plan = format!("{:?}", run(store, &format!("EXPLAIN {q}")).unwrap());
    assert!(plan.contains("index=[EventName=ConsoleLogin]"), "{plan}");
}

// Goal: Lake's third example — errors of the last day before a time, with
// date_add — and the newest-first path (ORDER BY eventtime DESC LIMIT)
// give the brute-force answers.
#[test]
fn lake_errors_and_newest_first() {
    let (_, store) = store();
    let all = parsed(store);
    // A day before a time inside the generated data (the real records are
    // of other years).
    let mut times: Vec<i64> = all.iter().map(|(e, _)| e.time_ms).collect();
    times.sort();
    let end = times[times.len() / 2];
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (e, v) in &all {
        if let Some(code) = s(v, &["errorCode"]) {
            if e.time_ms > end - 86_400_000 {
                *want.entry(code.to_string()).or_default() += 1;
            }
        }
    }
    let q = format!(
        "SELECT errorcode, count(*) FROM events WHERE errorcode IS NOT NULL \
         AND eventtime > date_add('day', -1, from_iso8601_timestamp('{}')) GROUP BY errorcode",
        iso(end)
    );
    let got: BTreeMap<String, u64> =
        run(store, &q).unwrap().into_iter().map(|r| (r[0].clone().unwrap(), r[1].as_ref().unwrap().parse().unwrap())).collect();
    assert!(want.len() > 3);
    assert_eq!(got, want);

    // The newest 50 calls of one API, newest first.
    let name = "GetObject";
    let mut newest: Vec<(i64, Option<String>)> = all
        .iter()
        .filter(|(_, v)| s(v, &["eventName"]) == Some(name))
        .map(|(e, v)| (e.time_ms, s(v, &["eventID"]).map(String::from)))
        .collect();
    newest.sort_by(|a, b| b.cmp(a));
    newest.truncate(50);
    assert_eq!(newest.len(), 50);
    let q = format!("SELECT CAST(eventtime AS BIGINT) AS t, eventid FROM events WHERE eventname = '{name}' ORDER BY eventtime DESC, eventid DESC LIMIT 50");
    let got: Vec<(i64, Option<String>)> =
        run(store, &q).unwrap().into_iter().map(|r| (r[0].as_ref().unwrap().parse().unwrap(), r[1].clone())).collect();
    assert_eq!(got, newest);
}

// Goal: every row's eventjson is its stored record byte for byte, and
// the indexed and nested columns hold the record's values.
#[test]
fn columns_hold_the_records_values() {
    let (_, store) = store();
    let all = parsed(store);
    let got = run(store, "SELECT seq, eventjson, eventname, useridentity.type, readonly, cardinality(resources) FROM events").unwrap();
    assert_eq!(got.len(), all.len());
    let by_seq: BTreeMap<u64, &(StoredEvent, Value)> = all.iter().map(|x| (x.0.seq, x)).collect();
    for r in &got {
        let (e, v) = by_seq[&r[0].as_ref().unwrap().parse::<u64>().unwrap()];
        assert_eq!(r[1].as_deref().unwrap().as_bytes(), e.record.as_slice());
        assert_eq!(r[2].as_deref(), s(v, &["eventName"]).or_else(|| s(v, &["insightDetails", "eventName"])));
        assert_eq!(r[3].as_deref(), s(v, &["userIdentity", "type"]));
        let ro = match &v["readOnly"] {
            Value::Bool(b) => Some(b.to_string()),
            Value::String(t) if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") => Some(t.to_ascii_lowercase()),
            _ => None,
        };
        assert_eq!(r[4], ro);
        assert_eq!(r[5].as_ref().map(|n| n.parse::<usize>().unwrap()), v["resources"].as_array().map(|a| a.len()));
    }
}

// Goal: only single SELECTs run; everything else is refused with Lake's
// exception name and a message naming the problem, and the store is
// unchanged; a query that needs more memory than the pool fails cleanly.
#[test]
fn statements_that_are_refused() {
    let (_, store) = store();
    let before = store.stats().unwrap().events;
    for (q, needle) in [
        ("DROP TABLE events", "DDL"),
        ("CREATE TABLE t AS SELECT * FROM events", "DDL"),
        ("INSERT INTO events SELECT * FROM events", "DML"),
        ("DELETE FROM events", "DML"),
        ("SET datafusion.execution.batch_size = 1", "Statement"),
        ("SELEC * FROM events", "Expected"),
        ("SELECT nosuchcolumn FROM events", "nosuchcolumn"),
        ("SELECT * FROM nosuchtable", "nosuchtable"),
        ("SELECT json_extract_scalar(requestparameters, 'bucketName') FROM events", "JSON path"),
    ] {
        let e = run(store, q).unwrap_err().to_string();
        assert!(e.starts_with("InvalidQueryStatementException") || e.contains("JSON path"), "{q}: {e}");
        assert!(e.contains(needle), "{q}: {e}");
    }
    let long = format!("SELECT eventname FROM events WHERE eventname = '{}'", "x".repeat(10_000));
    assert!(run(store, &long).unwrap_err().to_string().contains("limit is 10000"));
    assert_eq!(store.stats().unwrap().events, before);
    // A sort of every record in 1 MiB.
    let engine = Sql::new(store.clone(), Limits { memory_bytes: 1 << 20, ..Limits::default() }).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let e = rt.block_on(engine.collect("SELECT eventjson FROM events ORDER BY eventjson")).unwrap_err();
    assert!(matches!(e, SqlError::ResourcesExceeded(_)), "{e}");
}

// Goal: the table is also reachable under the store's id, as Lake's
// queries name an event data store (bare, though an id is no SQL
// identifier, or quoted), while the same text inside a string literal is
// left alone; a query that projects no column of the table (`count(*)`
// over a join) still counts every row.
#[test]
fn the_store_id_names_the_table_and_empty_projections_count() {
    let (_, store) = store();
    let total = store.stats().unwrap().events.to_string();
    let id = store.id();
    assert_eq!(id.len(), 16, "{id}");
    for q in
        [format!("SELECT count(*) FROM {id}"), format!("SELECT count(*) FROM \"{id}\""), format!("SELECT count(*) FROM {id} e /* {id} */")]
    {
        assert_eq!(run(store, &q).unwrap(), vec![vec![Some(total.clone())]], "{q}");
    }
    let literal = run(store, &format!("SELECT count(*) FROM {id} WHERE eventname = '{id}'")).unwrap();
    assert_eq!(literal, vec![vec![Some("0".to_string())]]);
    assert_eq!(cairn_sql::name_the_table(&format!("SELECT '{id}', x FROM {id}"), &id), format!("SELECT '{id}', x FROM events"));
    let doubled = run(store, "SELECT count(*) FROM events CROSS JOIN (SELECT 1 UNION ALL SELECT 2) t").unwrap();
    let n: u64 = total.parse().unwrap();
    assert_eq!(doubled, vec![vec![Some((2 * n).to_string())]]);
}

/// Rows of `sql`, sorted.
fn sorted_rows(store: &Arc<Store>, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut r = run(store, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    r.sort();
    r
}

/// A member's column text: a string's value, any other value's JSON
/// text; None when absent or null (as the table's columns hold them).
fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    match path.iter().try_fold(v, |v, k| v.get(k))? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An eventtime as the table's column shows it.
fn shown(ms: i64) -> String {
    let a = datafusion::arrow::array::TimestampMillisecondArray::from(vec![ms]).with_timezone("UTC");
    array_value_to_string(&a, 0).unwrap()
}

/// A time as the user guide writes one: `YYYY-MM-DD HH:MM:SS`, no zone.
fn zoneless(ms: i64) -> String {
    iso(ms / 1000 * 1000).replace('T', " ").replace(".000", "").trim_end_matches('Z').to_string()
}

// Goal: the five example queries of CloudTrail's user guide ("CloudTrail
// Lake example queries": principals that called an API on a day, what one
// user called on a day, counts by source and name since a time, console
// sign-ins in a set of Regions, and Lake's own StartQuery calls through
// element_at) run as written, their mixed-case names and zone-less time
// literals included, with values from the data in place of the guide's,
// and give exactly the brute-force rows.
#[test]
fn the_user_guides_example_queries() {
    let (_, store) = store();
    let events = parsed(store);
    let day_of = |ms: i64| ms.div_euclid(86_400_000) * 86_400_000;
    let bounds = |day: i64| (zoneless(day), zoneless(day + 86_400_000));
    let text = |v: &Value, p: &[&str]| text_at(v, p);
    let checked = |sql: &str, mut want: Vec<Vec<Option<String>>>| {
        want.sort();
        assert!(!want.is_empty(), "the data answers {sql}");
        assert_eq!(sorted_rows(store, sql), want, "{sql}");
    };

    // 1. Principals that called an API on one day.
    let (e, v) = events.iter().find(|(_, v)| text(v, &["userIdentity", "principalId"]).is_some()).unwrap();
    let (name, day) = (text(v, &["eventName"]).unwrap(), day_of(e.time_ms));
    let (from, to) = bounds(day);
    let sql = format!(
        "SELECT \n userIdentity.principalid, \n eventName \nFROM \n events\nWHERE \n userIdentity.principalid IS NOT NULL \nAND \n \
         eventTime > '{from}' \nAND \n eventTime < '{to}' \nAND \n eventName='{name}'"
    );
    let in_day = |e: &StoredEvent| e.time_ms > day && e.time_ms < day + 86_400_000;
    checked(
        &sql,
        events
            .iter()
            .filter(|(e, v)| in_day(e) && text(v, &["eventName"]).as_deref() == Some(&name))
            .filter_map(|(_, v)| Some(vec![Some(text(v, &["userIdentity", "principalId"])?), Some(name.clone())]))
            .collect(),
    );

    // 2. What one user called on one day.
    let (e, v) = events.iter().find(|(_, v)| text(v, &["userIdentity", "userName"]).is_some()).unwrap();
    let (user, day) = (text(v, &["userIdentity", "userName"]).unwrap(), day_of(e.time_ms));
    let (from, to) = bounds(day);
    let sql = format!(
        "SELECT eventID, eventName, eventSource, eventTime FROM events \
         WHERE userIdentity.username = '{user}' AND eventTime > '{from}' AND eventTime < '{to}'"
    );
    let in_day = |e: &StoredEvent| e.time_ms > day && e.time_ms < day + 86_400_000;
    checked(
        &sql,
        events
            .iter()
            .filter(|(e, v)| in_day(e) && text(v, &["userIdentity", "userName"]).as_deref() == Some(&user))
            .map(|(e, v)| {
                let t = |k: &str| text(v, &[k]).filter(|s| !s.is_empty());
                vec![t("eventID"), t("eventName"), t("eventSource"), Some(shown(e.time_ms))]
            })
            .collect(),
    );

    // 3. Counts by source and name since a time, largest first.
    let mut times: Vec<i64> = events.iter().map(|(e, _)| e.time_ms).collect();
    times.sort_unstable();
    let since = times[times.len() / 3] / 1000 * 1000;
    assert_eq!(zoneless(since).len(), 19, "{}", zoneless(since));
    let sql = format!(
        "SELECT eventSource, eventName, COUNT(*) AS apiCount FROM events WHERE eventTime > '{}' \
         GROUP BY eventSource, eventName ORDER BY apiCount DESC",
        zoneless(since)
    );
    let mut counts: BTreeMap<(Option<String>, Option<String>), u64> = BTreeMap::new();
    for (_, v) in events.iter().filter(|(e, _)| e.time_ms > since) {
        *counts.entry((s(v, &["eventSource"]).map(String::from), s(v, &["eventName"]).map(String::from))).or_default() += 1;
    }
    let got = run(store, &sql).unwrap();
    let n: Vec<u64> = got.iter().map(|r| r[2].as_ref().unwrap().parse().unwrap()).collect();
    assert!(n.windows(2).all(|w| w[0] >= w[1]), "largest first: {n:?}");
    checked(&sql, counts.into_iter().map(|((a, b), n)| vec![a, b, Some(n.to_string())]).collect());

    // 4. Console sign-ins in a set of Regions.
    let logins: Vec<&(StoredEvent, Value)> = events.iter().filter(|(_, v)| s(v, &["eventName"]) == Some("ConsoleLogin")).collect();
    let regions: Vec<String> = logins.iter().filter_map(|(_, v)| text(v, &["awsRegion"])).take(2).collect();
    let sql = format!(
        "SELECT eventTime, useridentity.arn, awsRegion FROM events WHERE awsRegion in ('{}', '{}') AND eventName = 'ConsoleLogin'",
        regions[0],
        regions[regions.len() - 1]
    );
    checked(
        &sql,
        logins
            .iter()
            .filter(|(_, v)| text(v, &["awsRegion"]).is_some_and(|r| regions.contains(&r)))
            .map(|(e, v)| vec![Some(shown(e.time_ms)), s(v, &["userIdentity", "arn"]).map(String::from), text(v, &["awsRegion"])])
            .collect(),
    );

    // 5. Lake's own queries in a month, through element_at.
    let sql = "SELECT element_at(responseElements, 'queryId'), element_at(requestParameters, 'queryStatement') FROM events \
               WHERE eventName='StartQuery' AND eventSource = 'cloudtrail.amazonaws.com' AND responseElements IS NOT NULL \
               AND eventTime > '2026-01-01 00:00:00' AND eventTime < '2026-02-01 00:00:00'";
    checked(
        sql,
        vec![
            vec![Some("q-1111".into()), Some("select * from eds limit 0;".into())],
            vec![Some("q-2222".into()), Some("select * from eds limit 1;".into())],
        ],
    );
}

// Goal: a scan without a LIMIT reads its time range in as many parts as
// the query has threads, one state of the store for all, and every
// matching event (sealed or in the memtable, in or out of time order,
// at a part's edge) comes exactly once, with any number of parts; the
// cut points the store estimates are ascending and inside the range.
#[test]
fn a_scan_in_parallel_parts_reads_each_event_once() {
    let (_, store) = store();
    let events = parsed(store);
    let mut times: Vec<i64> = events.iter().map(|(e, _)| e.time_ms).collect();
    times.sort_unstable();
    let (lo, hi) = (times[times.len() / 5], times[times.len() * 4 / 5]);
    let name = s(&events[7].1, &["eventName"]).unwrap().to_string();
    type Wanted = Box<dyn Fn(&StoredEvent, &Value) -> bool>;
    let questions: Vec<(String, Wanted)> = vec![
        ("SELECT seq FROM events".into(), Box::new(|_, _| true)),
        (
            format!("SELECT seq FROM events WHERE eventtime BETWEEN '{}' AND '{}'", iso(lo), iso(hi)),
            Box::new(move |e, _| e.time_ms >= lo && e.time_ms <= hi),
        ),
        (
            format!("SELECT seq FROM events WHERE eventname = '{name}' OR useragent LIKE '%aws-cli%'"),
            Box::new(move |_, v| {
                s(v, &["eventName"]) == Some(name.as_str()) || s(v, &["userAgent"]).is_some_and(|a| a.contains("aws-cli"))
            }),
        ),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for threads in [1, 2, 3, 5, 8] {
        let engine = Sql::new(store.clone(), Limits { threads, ..Limits::default() }).unwrap();
        for (sql, wanted) in &questions {
            let mut want: Vec<String> = events.iter().filter(|(e, v)| wanted(e, v)).map(|(e, _)| e.seq.to_string()).collect();
            want.sort();
            let (_, batches) = rt.block_on(engine.collect(sql)).unwrap();
            let mut got: Vec<String> = rows(&batches).into_iter().map(|r| r[0].clone().unwrap()).collect();
            got.sort();
            assert_eq!(got.len(), want.len(), "{threads} threads: {sql}");
            assert_eq!(got, want, "{threads} threads: {sql}");
            let (_, plan) = rt.block_on(engine.collect(&format!("EXPLAIN {sql}"))).unwrap();
            let plan = rows(&plan).into_iter().flatten().flatten().collect::<Vec<_>>().join("\n");
            assert_eq!(plan.contains(&format!("parts={threads}")), threads > 1, "{threads} threads: {plan}");
        }
        // Rows that must come newest first (an ORDER BY eventtime DESC, a
        // LIMIT without an order) are read in one part, newest first, under
        // a filter the store does not answer too: the newest matches.
        let mut cli: Vec<i64> =
            events.iter().filter(|(_, v)| s(v, &["userAgent"]).is_some_and(|a| a.contains("aws-cli"))).map(|(e, _)| e.time_ms).collect();
        cli.sort_unstable_by(|a, b| b.cmp(a));
        for (sql, n) in [
            ("SELECT CAST(eventtime AS BIGINT) AS t FROM events WHERE useragent LIKE '%aws-cli%' ORDER BY eventtime DESC LIMIT 20", 20),
            ("SELECT CAST(eventtime AS BIGINT) AS t FROM events WHERE useragent LIKE '%aws-cli%' LIMIT 7", 7),
        ] {
            let (_, batches) = rt.block_on(engine.collect(sql)).unwrap();
            let mut got: Vec<i64> = rows(&batches).into_iter().map(|r| r[0].as_ref().unwrap().parse().unwrap()).collect();
            got.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(got, cli[..n], "{threads} threads: {sql}");
            let (_, plan) = rt.block_on(engine.collect(&format!("EXPLAIN {sql}"))).unwrap();
            let plan = rows(&plan).into_iter().flatten().flatten().collect::<Vec<_>>().join("\n");
            assert!(plan.contains("CairnEventsScan") && !plan.contains("parts="), "{threads} threads: {plan}");
        }
    }
    for parts in [2, 3, 7, 50] {
        let q = cairn_engine::Query { start_ms: Some(lo), end_ms: Some(hi), filters: Vec::new() };
        let cuts = store.time_cuts(&q, parts);
        assert!(!cuts.is_empty() && cuts.len() < parts, "{parts} parts: {cuts:?}");
        assert!(cuts.windows(2).all(|w| w[0] < w[1]) && cuts[0] > lo && cuts[cuts.len() - 1] <= hi, "{cuts:?}");
    }
}

// Goal: count(*) grouped by an indexed column, or alone, under time and
// index filters, is answered from the indexes (EXPLAIN shows
// CairnIndexCounts and no scan) and equals a brute-force count over the
// parsed records, the NULL group included; where the indexes cannot answer
// exactly (recipientaccountid's index also holds userIdentity.accountId; a
// filter on an unindexed column) the scan answers, the same.
#[test]
fn counts_from_the_indexes_match_brute_force() {
    let (_, store) = store();
    // Each event's time and its values of the columns below, as the
    // record's parse gives them.
    let cols = [
        "eventname",
        "eventsource",
        "errorcode",
        "awsregion",
        "sourceipaddress",
        "eventtype",
        "eventcategory",
        "readonly",
        "recipientaccountid",
        "useragent",
    ];
    let events: Vec<(i64, BTreeMap<&str, Option<String>>)> = all_events(store)
        .iter()
        .map(|stored| {
            let e = cairn_engine::parse_event(&stored.record, usize::MAX).unwrap();
            let o = |v: &Option<std::borrow::Cow<str>>| v.as_deref().map(str::to_string);
            let values = [
                Some(e.event_name.to_string()),
                o(&e.event_source),
                o(&e.error_code),
                o(&e.aws_region),
                o(&e.source_ip),
                o(&e.event_type),
                o(&e.event_category),
                e.read_only.map(|b| b.to_string()),
                o(&e.recipient_account_id),
                o(&e.user_agent),
            ];
            (stored.time_ms, cols.iter().copied().zip(values).collect())
        })
        .collect();
    let mut times: Vec<i64> = events.iter().map(|(t, _)| *t).collect();
    times.sort();
    let (t1, t2) = (times[times.len() / 3], times[2 * times.len() / 3]);
    type Values<'a> = BTreeMap<&'a str, Option<String>>;
    let source = |e: &Values, want: &[&str]| e["eventsource"].as_deref().is_some_and(|s| want.contains(&s));
    type Keep = Box<dyn Fn(i64, &Values) -> bool>;
    let filters: Vec<(String, Keep)> = vec![
        (String::new(), Box::new(|_, _| true)),
        (format!(" WHERE eventtime >= '{}'", iso(t1)), Box::new(move |t, _| t >= t1)),
        (format!(" WHERE eventtime > '{}' AND eventtime <= '{}'", iso(t1), iso(t2)), Box::new(move |t, _| t > t1 && t <= t2)),
        (" WHERE eventsource = 's3.amazonaws.com'".into(), Box::new(move |_, e| source(e, &["s3.amazonaws.com"]))),
        (
            format!(" WHERE eventsource IN ('s3.amazonaws.com', 'iam.amazonaws.com') AND eventtime < '{}' AND NOT readonly", iso(t2)),
            Box::new(move |t, e| {
                source(e, &["s3.amazonaws.com", "iam.amazonaws.com"]) && t < t2 && e["readonly"].as_deref() == Some("false")
            }),
        ),
    ];
    let indexed = ["eventname", "eventsource", "errorcode", "awsregion", "sourceipaddress", "eventtype", "eventcategory", "readonly"];
    for col in cols {
        for (filter, keep) in &filters {
            let q = format!("SELECT {col}, count(*) AS n FROM events{filter} GROUP BY {col}");
            let mut want: BTreeMap<Option<String>, u64> = BTreeMap::new();
            for (t, e) in &events {
                if keep(*t, e) {
                    *want.entry(e[col].clone()).or_default() += 1;
                }
            }
            let got: BTreeMap<Option<String>, u64> =
                run(store, &q).unwrap().into_iter().map(|r| (r[0].clone(), r[1].as_ref().unwrap().parse().unwrap())).collect();
            assert_eq!(got, want, "{q}");
            let plan = format!("{:?}", run(store, &format!("EXPLAIN {q}")).unwrap());
            assert_eq!(plan.contains("CairnIndexCounts"), indexed.contains(&col), "{q}: {plan}");
            assert_eq!(plan.contains("CairnEventsScan"), !indexed.contains(&col), "{q}: {plan}");
        }
    }
    // A total, and a filter the store cannot answer (the scan counts).
    for (filter, keep) in &filters {
        let want = events.iter().filter(|(t, e)| keep(*t, e)).count().to_string();
        assert_eq!(run(store, &format!("SELECT count(*) FROM events{filter}")).unwrap(), vec![vec![Some(want)]], "{filter}");
    }
    let agent = events.iter().filter(|(_, e)| e["useragent"].as_deref().is_some_and(|a| a.starts_with("aws-cli"))).count();
    let q = "SELECT count(*) FROM events WHERE useragent LIKE 'aws-cli%'";
    assert_eq!(run(store, q).unwrap(), vec![vec![Some(agent.to_string())]]);
    assert!(format!("{:?}", run(store, &format!("EXPLAIN {q}")).unwrap()).contains("CairnEventsScan"));
}
