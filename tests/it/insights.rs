//! Insights on generated traffic with known ground truth: a week of steady
//! traffic (the generator's 135 APIs at their natural, noisy rates, plus
//! three steady APIs of an on-premises service), then a day with three
//! injected anomalies: a 20x call spike of one API driven by one user, an
//! AccessDenied burst on another, and a steady API going silent. Exactly
//! those three insights must be found, described right, and recorded once.

use cairn_engine::insights::detect::{DetectOptions, Direction};
use cairn_engine::insights::scan::{run, RunOptions, Scanner};
use cairn_engine::{Attr, Options, Query, Store};
use cairn_tools::gen::{GenOptions, Generator};

/// 2026-01-01T00:00:00Z in unix minutes.
const T0: i64 = 1_767_225_600_000 / 60_000;
const DAY: i64 = 1440;
/// The anomalies, on the eighth day (unix minutes).
const SPIKE: i64 = T0 + 7 * DAY + 600; // 10:00, 15 minutes
const BURST: i64 = T0 + 7 * DAY + 840; // 14:00, 10 minutes
const SILENCE: i64 = T0 + 7 * DAY + 1080; // 18:00, 30 minutes
const END: i64 = T0 + 8 * DAY;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// About `rate` (±25%).
    fn around(&mut self, rate: u64) -> u64 {
        rate - rate / 4 + self.next() % (rate / 2 + 1)
    }
}

fn ops_record(minute: i64, i: u64, name: &str, user: &str, read_only: bool, error: Option<&str>) -> Vec<u8> {
    let time = cairn_engine::event::format_event_time(minute * 60_000 + (i as i64 * 997) % 60_000);
    let err = error.map_or(String::new(), |e| format!(r#","errorCode":"{e}","errorMessage":"denied""#));
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}","userName":"{user}"}},"eventTime":"{time}","eventSource":"ops.example.com","eventName":"{name}","awsRegion":"eu-west-1","sourceIPAddress":"10.0.0.7","userAgent":"opsctl/2.1 ({user})","eventID":"ops-{minute}-{name}-{i}","readOnly":{read_only},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"{err}}}"#
    )
    .into_bytes()
}

/// The on-premises service's events of one minute.
fn ops_minute(minute: i64, rng: &mut Lcg, out: &mut Vec<Vec<u8>>) {
    const USERS: [&str; 3] = ["alice", "bob", "carol"];
    // RunDeploy, a write API: about 6 a minute; 20x for 15 minutes, mostly mallory's.
    let spiking = (SPIKE..SPIKE + 15).contains(&minute);
    let n = rng.around(6) * if spiking { 20 } else { 1 };
    for i in 0..n {
        let user = if spiking && i % 10 != 0 { "mallory" } else { USERS[(i % 3) as usize] };
        out.push(ops_record(minute, i, "RunDeploy", user, false, None));
    }
    // GetSecret, read-only: a few a minute, AccessDenied about once an
    // hour; 100 AccessDenied a minute for 10 minutes.
    for i in 0..rng.around(4) {
        let denied = rng.next().is_multiple_of(240);
        out.push(ops_record(minute, i, "GetSecret", USERS[(i % 3) as usize], true, denied.then_some("AccessDenied")));
    }
    if (BURST..BURST + 10).contains(&minute) {
        for i in 100..200 {
            out.push(ops_record(minute, i, "GetSecret", "eve", true, Some("AccessDenied")));
        }
    }
    // SendHeartbeat, a steady write API: about 8 a minute, silent for 30.
    if !(SILENCE..SILENCE + 30).contains(&minute) {
        for i in 0..rng.around(8) {
            out.push(ops_record(minute, i, "SendHeartbeat", "agent", false, None));
        }
    }
}

fn append_all(store: &Store, records: &mut Vec<Vec<u8>>) {
    for chunk in records.chunks(1000) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        for o in store.append(&refs).unwrap() {
            assert!(matches!(o, cairn_engine::Outcome::Stored(_)), "{o:?}");
        }
    }
    records.clear();
}

/// Eight days: the generator at 0.1 events/s and the ops service, minute
/// by minute, sealed as it goes (so counters come from many segments and
/// the memtable).
fn build(store: &Store) {
    let mut generator = Generator::new(GenOptions { seed: 7, start_ms: T0 * 60_000, rate_per_sec: 0.1, ..GenOptions::default() });
    let mut rng = Lcg(42);
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut next_gen = Vec::new();
    generator.next_record(&mut next_gen);
    for minute in T0..END {
        ops_minute(minute, &mut rng, &mut pending);
        // Generated events up to the end of this minute.
        loop {
            let t = cairn_engine::event::parse_event(&next_gen, 1 << 20).unwrap().time_ms;
            if t >= (minute + 1) * 60_000 {
                break;
            }
            pending.push(std::mem::take(&mut next_gen));
            generator.next_record(&mut next_gen);
        }
        if pending.len() >= 1000 {
            append_all(store, &mut pending);
        }
        if (minute - T0) % DAY == DAY - 1 {
            append_all(store, &mut pending);
            store.seal_now().unwrap();
        }
    }
    append_all(store, &mut pending);
}

fn in_minutes(v: &serde_json::Value) -> i64 {
    let t = v["eventTime"].as_str().unwrap();
    cairn_engine::event::parse_event_time(t).unwrap().div_euclid(60_000)
}

// Goal: on a steady week and a day with three injected anomalies, exactly
// the three insights are found (the spike within 5 minutes of its start,
// with mallory its top user; the AccessDenied burst as an error-rate
// insight; the silence as a drop), early data already shows the open
// spike, backfill records each Start and End exactly once (a second run
// appends nothing), the records are found by EventCategory (any case) and
// covered by verify, and `cairn insights` reports the same from the CLI.
#[test]
fn injected_anomalies_are_the_only_insights() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    build(&store);
    let o = DetectOptions::default();
    let mut scanner = Scanner::new();

    // Analysing the steady week alone finds nothing.
    let week = RunOptions { end_ms: Some((T0 + 7 * DAY) * 60_000 - 1), detect: o.clone(), ..Default::default() };
    let r = run(&store, &mut scanner, &week).unwrap();
    assert!(r.insights.is_empty(), "a steady week has no insight: {:#?}", r.insights);

    // Two minutes into the spike it is already open.
    let early = RunOptions {
        start_ms: Some((SPIKE - 60) * 60_000),
        end_ms: Some((SPIKE + 2) * 60_000 - 1),
        detect: o.clone(),
        ..Default::default()
    };
    let r = run(&store, &mut scanner, &early).unwrap();
    assert_eq!(r.insights.len(), 1, "{:#?}", r.insights);
    assert_eq!(r.insights[0].end_minute, None, "still open");

    let all = run(&store, &mut scanner, &RunOptions { detect: o.clone(), ..Default::default() }).unwrap();
    let found: Vec<_> =
        all.insights.iter().map(|i| (i.key.name.as_str(), i.key.error.as_deref(), i.direction, i.start_minute, i.end_minute)).collect();
    assert_eq!(found.len(), 3, "exactly the injected anomalies: {found:#?}");

    let spike = &all.insights[0];
    assert_eq!(
        (spike.key.source.as_str(), spike.key.name.as_str(), spike.key.error.as_deref(), spike.direction),
        ("ops.example.com", "RunDeploy", None, Direction::Spike)
    );
    assert!((SPIKE..SPIKE + 5).contains(&spike.start_minute), "detected within 5 minutes: {found:?}");
    let end = spike.end_minute.expect("the spike ended");
    assert!((SPIKE + 15..SPIKE + 17).contains(&end), "ends with the spike: {found:?}");
    assert_eq!(spike.attributions.users[0].value, "arn:aws:iam::111122223333:user/mallory");
    assert!(spike.baseline_average > 4.0 && spike.baseline_average < 8.0, "{}", spike.baseline_average);
    assert!(spike.insight_average > 60.0, "{}", spike.insight_average);
    assert_eq!(spike.insight_type(), "ApiCallRateInsight");

    let burst = &all.insights[1];
    assert_eq!(
        (burst.key.name.as_str(), burst.key.error.as_deref(), burst.direction),
        ("GetSecret", Some("AccessDenied"), Direction::Spike)
    );
    assert_eq!(burst.insight_type(), "ApiErrorRateInsight");
    assert!((BURST..BURST + 5).contains(&burst.start_minute) && burst.end_minute.is_some(), "{found:?}");
    assert_eq!(burst.attributions.users[0].value, "arn:aws:iam::111122223333:user/eve");

    let silence = &all.insights[2];
    assert_eq!((silence.key.name.as_str(), silence.key.error.as_deref(), silence.direction), ("SendHeartbeat", None, Direction::Drop));
    assert_eq!(silence.start_minute, SILENCE);
    assert_eq!(silence.end_minute, Some(SILENCE + 30));

    // Backfill: every Start and End once; again: nothing new.
    let backfill = RunOptions { backfill: true, detect: o.clone(), ..Default::default() };
    let first = run(&store, &mut scanner, &backfill).unwrap().appended.unwrap();
    assert_eq!((first.appended, first.present), (6, 0));
    let again = run(&store, &mut scanner, &backfill).unwrap();
    assert_eq!(again.insights.len(), 3, "Insight events do not count as calls");
    assert_eq!(again.appended.unwrap(), cairn_engine::insights::scan::Appended { appended: 0, present: 6 });
    // The same spike found a minute earlier (say, late events moved its
    // start) is recognised by its span: nothing new.
    let mut shifted = all.insights[0].clone();
    shifted.start_minute -= 1;
    assert_ne!(shifted.shared_event_id(), all.insights[0].shared_event_id());
    let a = cairn_engine::insights::scan::append_missing(&store, &[shifted]).unwrap();
    assert_eq!((a.appended, a.present), (0, 2));

    // Queryable like any event, by EventCategory in CloudTrail's spelling.
    let q = Query { filters: vec![(Attr::EventCategory, vec!["insight".into()])], ..Default::default() };
    let page = store.lookup(&q, Some(100), None).unwrap();
    assert_eq!(page.events.len(), 6);
    let recs: Vec<serde_json::Value> = page.events.iter().map(|e| serde_json::from_slice(&e.record).unwrap()).collect();
    for r in &recs {
        assert_eq!(r["eventType"], "AwsCloudTrailInsight");
        assert_eq!(r["eventCategory"], "Insight");
    }
    let spike_recs: Vec<&serde_json::Value> = recs.iter().filter(|r| r["insightDetails"]["eventName"] == "RunDeploy").collect();
    assert_eq!(spike_recs.len(), 2);
    assert_eq!(spike_recs[0]["sharedEventID"], spike_recs[1]["sharedEventID"]);
    let states: Vec<&str> = spike_recs.iter().map(|r| r["insightDetails"]["state"].as_str().unwrap()).collect();
    assert!(states.contains(&"Start") && states.contains(&"End"));
    let start = spike_recs.iter().find(|r| r["insightDetails"]["state"] == "Start").unwrap();
    assert_eq!(in_minutes(start), spike.start_minute);
    assert_eq!(start["insightDetails"]["insightType"], "ApiCallRateInsight");
    let stats = &start["insightDetails"]["insightContext"]["statistics"];
    assert!(stats["insight"]["average"].as_f64().unwrap() > stats["baseline"]["average"].as_f64().unwrap() * 5.0, "{stats}");
    let counts = store
        .count(&Query { filters: vec![(Attr::EventCategory, vec!["INSIGHT".into()])], ..Default::default() }, Attr::EventName)
        .unwrap();
    assert_eq!(counts.iter().map(|c| c.1).sum::<u64>(), 6);
    let report = store.verify(&Default::default(), &mut |_, _| {}).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    // Covered by the proofs like any event.
    let cp = store.checkpoint().unwrap().expect("a checkpoint");
    let key = store.verifiers().pop().unwrap();
    for e in &page.events {
        let p = store.prove(e.seq, Some(&cp)).unwrap();
        let bundle = cairn_engine::checkpoint::bundle::ProofBundle::from_proof(&p).unwrap();
        assert!(bundle.verify(std::slice::from_ref(&key)).is_ok());
    }
    store.close().unwrap();

    // The CLI: the same insights, and a backfill that adds nothing.
    let (code, out, err) = crate::common::cairn(dir.path(), &["insights", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let names: Vec<&str> = v["insights"].as_array().unwrap().iter().map(|i| i["key"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["RunDeploy", "GetSecret", "SendHeartbeat"]);
    let (code, out, err) = crate::common::cairn(dir.path(), &["insights", "--backfill"]);
    assert_eq!(code, 0, "{err}");
    let table = String::from_utf8_lossy(&out);
    assert!(table.contains("RunDeploy") && table.contains("spike") && table.contains("drop"), "{table}");
    assert!(table.contains("appended 0"), "{table}");
    let (code, out, _) = crate::common::cairn(dir.path(), &["lookup", "--category", "insight", "--max", "100", "--output", "ndjson"]);
    assert_eq!(code, 0);
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 6);
}

/// The Insight records a daemon holds: (state, sharedEventID, eventName).
fn daemon_insights(c: &mut cairn_server::client::Client) -> Vec<(String, String, String)> {
    let q = cairn_server::protocol::WireQuery { filters: vec![("EventCategory".into(), vec!["insight".into()])], ..Default::default() };
    let (events, _) = c.lookup(q, Some(100), None).unwrap();
    let mut v: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            let r: serde_json::Value = serde_json::from_slice(&e.record).unwrap();
            let d = &r["insightDetails"];
            (d["state"].as_str().unwrap().into(), r["sharedEventID"].as_str().unwrap().into(), d["eventName"].as_str().unwrap().into())
        })
        .collect();
    v.sort();
    v
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !f() {
        assert!(std::time::Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

// Goal: cairnd finds a spike by itself as the events arrive, and a kill -9
// in the middle of the spike neither loses nor duplicates the insight:
// after the restart the same insight gets its End, one Start and one End
// sharing a sharedEventID.
#[test]
fn cairnd_records_an_insight_once_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 / 60_000;
    let spike = now - 40;
    // A full UTC day of history before the spike's day: the baseline.
    let first = spike - spike.rem_euclid(DAY) - DAY;
    let mut rng = Lcg(9);
    let minutes = |lo: i64, hi: i64, rng: &mut Lcg| {
        let mut v = Vec::new();
        for m in lo..hi {
            let spiking = (spike..spike + 15).contains(&m);
            for i in 0..rng.around(6) * if spiking { 20 } else { 1 } {
                let user = if spiking && i % 10 != 0 { "mallory" } else { "alice" };
                v.push(ops_record(m, i, "RunDeploy", user, false, None));
            }
        }
        v
    };
    let send = |d: &crate::server::Daemon, records: Vec<Vec<u8>>| {
        let mut c = cairn_server::client::Client::connect(&d.addr, &d.admin_token()).unwrap();
        for chunk in records.chunks(1000) {
            for o in c.append(chunk.to_vec()).unwrap() {
                assert!(matches!(o, cairn_server::protocol::WireOutcome::Stored(_)), "{o:?}");
            }
        }
    };
    let flags = ["--insights-interval-secs", "1"];
    let mut d = crate::server::Daemon::start_with(dir.path(), &flags);
    // Up to 5 minutes into the spike: the daemon sees it open.
    send(&d, minutes(first, spike + 5, &mut rng));
    let mut c = cairn_server::client::Client::connect(&d.addr, &d.admin_token()).unwrap();
    wait_for("the Start", || !daemon_insights(&mut c).is_empty());
    let found = daemon_insights(&mut c);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0.as_str(), found[0].2.as_str()), ("Start", "RunDeploy"));
    let _ = d.child.kill(); // SIGKILL, mid-anomaly
    let _ = d.child.wait();
    drop(d);

    let d = crate::server::Daemon::start_with(dir.path(), &flags);
    let mut c = cairn_server::client::Client::connect(&d.addr, &d.admin_token()).unwrap();
    // The restarted daemon re-finds the open insight: still one Start.
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert_eq!(daemon_insights(&mut c), found, "nothing duplicated after the restart");
    // The rest of the spike and what follows: the End.
    send(&d, minutes(spike + 5, now, &mut rng));
    wait_for("the End", || daemon_insights(&mut c).len() >= 2);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let all = daemon_insights(&mut c);
    assert_eq!(all.len(), 2, "one Start and one End: {all:?}");
    assert_eq!(all[0].0, "End");
    assert_eq!(all[1], found[0]);
    assert_eq!(all[0].1, all[1].1, "they share the sharedEventID");
    assert_eq!(all[0].2, "RunDeploy");
    // And cairnd's report agrees: one insight, closed.
    let (code, out, err) = d.cli(&["insights", "--start", "2h", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["insights"].as_array().unwrap().len(), 1, "{v}");
    assert!(v["insights"][0]["end"].is_string(), "{v}");
}

// Goal: a store that keeps no counters at ingest (Insights off) still
// answers the same: its segments' counters are derived from the records,
// equal to those kept at ingest. Kept at ingest, the counters of events
// not sealed yet read the same before the seal as after, and records sent
// again (duplicates, in their own commits) are not counted twice.
#[test]
fn counters_off_at_ingest_are_derived_the_same() {
    let mut by_mode = Vec::new();
    for keep in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options { insights_counters: keep, ..Options::default() }).unwrap();
        let mut rng = Lcg(5);
        let mut recs = Vec::new();
        for m in SPIKE - 120..SPIKE + 30 {
            ops_minute(m, &mut rng, &mut recs);
        }
        let again: Vec<Vec<u8>> = recs.iter().step_by(3).cloned().collect();
        append_all(&store, &mut recs);
        let refs: Vec<&[u8]> = again.iter().map(Vec::as_slice).collect();
        for o in store.append(&refs).unwrap() {
            assert!(matches!(o, cairn_engine::Outcome::Duplicate(_)), "{o:?}");
        }
        let (sealed, mut before_seal) = store.counter_view(i64::MIN, i64::MAX);
        assert!(sealed.is_empty(), "nothing was sealed yet");
        // As the segment's encoding keeps them: contributors sorted, the top kept.
        before_seal.trim();
        store.seal_now().unwrap();
        let (segments, unsealed) = store.counter_view(i64::MIN, i64::MAX);
        assert!(unsealed.is_empty());
        let mut all = cairn_engine::insights::counters::Counters::default();
        for s in segments.iter() {
            all.merge(&s.counters().unwrap());
        }
        assert!(all.cells() > 300, "{}", all.cells());
        if keep {
            assert_eq!(before_seal, all, "the unsealed events' counters, read before the seal");
        }
        by_mode.push(all);
    }
    assert_eq!(by_mode[0], by_mode[1]);
}

// Goal: cairnd's pass analyses up to the newest *counted* minute: a record
// stamped now that Insights does not count (a RetentionCut, an Insight
// event) does not make the quiet minutes before it look like a drop of
// every steady API; and a real silence is reported once it has lasted
// past the settle delay.
#[test]
fn daemon_pass_horizon_ignores_uncounted_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let mut rng = Lcg(3);
    let mut recs = Vec::new();
    let (from, to) = (T0, T0 + 2 * DAY + 600);
    for m in from..to {
        for i in 0..rng.around(8) {
            recs.push(ops_record(m, i, "SendHeartbeat", "agent", false, None));
        }
    }
    append_all(&store, &mut recs);
    // An hour later, only Cairn's own record.
    let cut = format!(
        r#"{{"eventVersion":"1.11","userIdentity":{{"type":"AWSService","invokedBy":"cairn.local"}},"eventTime":"{}","eventSource":"cairn.local","eventName":"RetentionCut","awsRegion":"global","eventID":"cut-1","readOnly":false,"eventType":"AwsServiceEvent","managementEvent":true,"recipientAccountId":"cairn","eventCategory":"Management"}}"#,
        cairn_engine::event::format_event_time((to + 60) * 60_000)
    );
    append_all(&store, &mut vec![cut.into_bytes()]);
    let o = DetectOptions::default();
    let mut scanner = Scanner::new();
    let r = scanner.pass(&store, to + 60, 1440, 15, &o).unwrap().unwrap();
    assert_eq!(r.end_minute, to - 1, "the horizon is the newest counted minute");
    assert!(r.insights.is_empty(), "{:#?}", r.insights);
    // The heartbeat really stops (silence after `to`) and other traffic
    // goes on: a drop, once settled, recorded once.
    let mut more = Vec::new();
    for m in to..to + 40 {
        more.push(ops_record(m, 0, "RunDeploy", "alice", false, None));
    }
    append_all(&store, &mut more);
    let r = scanner.pass(&store, to + 40, 1440, 15, &o).unwrap().unwrap();
    let drops: Vec<_> = r.insights.iter().filter(|i| i.direction == Direction::Drop).collect();
    assert_eq!(drops.len(), 1, "{:#?}", r.insights);
    assert_eq!((drops[0].key.name.as_str(), drops[0].start_minute), ("SendHeartbeat", to));
    assert_eq!(r.appended.unwrap().appended, 1, "the Start");
    let r = scanner.pass(&store, to + 41, 1440, 15, &o).unwrap().unwrap();
    assert_eq!(r.appended.unwrap().appended, 0, "recorded once");
}

// Goal: eventTimes of absurd years (0001, 9999) among normal traffic
// neither exhaust memory nor stall the analysis: the range is analysed in
// bounded chunks where there are counts, and nothing is reported for them.
#[test]
fn absurd_event_times_are_analysed_in_bounded_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let mut rng = Lcg(8);
    let mut recs = Vec::new();
    for m in T0..T0 + DAY + 120 {
        for i in 0..rng.around(6) {
            recs.push(ops_record(m, i, "RunDeploy", "alice", false, None));
        }
    }
    for (n, t) in ["0001-01-01T00:00:00Z", "9999-12-31T23:59:00Z"].iter().enumerate() {
        let mut r = String::from_utf8(ops_record(T0, 0, "RunDeploy", "alice", false, None)).unwrap();
        r = r.replace(&cairn_engine::event::format_event_time(T0 * 60_000), t).replace("ops-", &format!("absurd-{n}-"));
        recs.push(r.into_bytes());
    }
    append_all(&store, &mut recs);
    let r = run(&store, &mut Scanner::new(), &RunOptions::default()).unwrap();
    assert!(r.end_minute - r.start_minute > 5_000_000_000, "the store spans ten thousand years");
    assert!(r.insights.is_empty(), "{:#?}", r.insights);
}
