//! Golden fixture of wire protocol version 2: one frame of every message
//! type, as bytes. Every later build must decode each fixture frame to the
//! same message (old clients and servers keep working) and encode each
//! message to the same bytes (nothing changed the format by accident).
//! A message type added later gets lines of its own; existing lines never
//! change. Regenerate only for a deliberate change:
//! `CAIRN_REGEN_GOLDEN=1 cargo test protocol_golden`.
//!
//! Version 1's fixture (protocol-v1.txt) is frozen: its handshake frames
//! still decode (the handshake's layout is the same in every version), so a
//! version-1 client is told clearly that the server speaks version 2.

use cairn_server::protocol::{
    read_frame, write_frame, Hello, HelloReply, Record, Request, RequestBody, Response, ResponseBody, Role, WireAppended, WireAttributions,
    WireCompactReport, WireCompactRun, WireContributor, WireError, WireEvent, WireInsight, WireInsightsReport, WireOutcome, WireProcess,
    WireQuery, WireRetentionReport, WireRollupReport, WireSeriesKey, WireStats, WireVerifyReport, MAGIC,
};

use crate::common::fixtures_dir;

fn query() -> WireQuery {
    WireQuery {
        start_ms: Some(1_767_225_600_000),
        end_ms: None,
        filters: vec![("Username".into(), vec!["alice".into(), "bob".into()]), ("EventName".into(), vec!["ConsoleLogin".into()])],
    }
}

fn delivery() -> cairn_server::protocol::WireDelivery {
    cairn_server::protocol::WireDelivery {
        target: "s3://audit/cairn".into(),
        next_seq: 1000,
        backlog_events: 20,
        delivered_events: 1000,
        delivered_files: 12,
        digest_files: 3,
        last_delivery_ms: Some(1_767_225_600_000),
        last_digest_ms: None,
        last_error: Some("writing s3://audit/x: 403".into()),
        last_error_ms: Some(1_767_225_601_000),
    }
}

fn channel() -> cairn_server::protocol::WireChannel {
    cairn_server::protocol::WireChannel {
        arn: "arn:aws:cloudtrail:eu-west-1:000000000000:channel/c1".into(),
        name: "door-logs".into(),
        source: "Custom".into(),
        external_id: Some("ext".into()),
        allowed_keys: vec![],
        account_id: Some("111122223333".into()),
        region: "eu-west-1".into(),
        created_ms: 1_767_225_600_000,
    }
}

fn event() -> WireEvent {
    WireEvent { seq: 42, ingest_ms: 1_767_225_601_234, time_ms: 1_767_225_600_000, record: br#"{"eventID":"e1"}"#.to_vec() }
}

pub(crate) fn requests() -> Vec<(&'static str, Request)> {
    let r = |id, body| Request { id, body };
    vec![
        ("append", r(1, RequestBody::Append { records: vec![Record(br#"{"a":1}"#.to_vec()), Record(Vec::new())] })),
        ("lookup", r(2, RequestBody::Lookup { query: query(), max_results: Some(50), next_token: Some("tok".into()) })),
        ("count", r(3, RequestBody::Count { query: query(), by: "EventSource".into() })),
        ("get", r(4, RequestBody::Get { event_id: "e1".into() })),
        ("stats", r(5, RequestBody::Stats)),
        ("export", r(6, RequestBody::Export { query: WireQuery::default(), oldest_first: true })),
        ("create-token", r(7, RequestBody::CreateToken { role: Role::Ingest, name: "agent-1".into() })),
        ("tail", r(8, RequestBody::Tail { query: query(), from_seq: Some(9) })),
        ("process", r(9, RequestBody::Process)),
        ("checkpoint", r(10, RequestBody::Checkpoint)),
        ("public-keys", r(11, RequestBody::PublicKeys)),
        ("rotate-key", r(12, RequestBody::RotateKey)),
        ("prove", r(13, RequestBody::Prove { seq: Some(5), event_id: None, checkpoint: Some("note".into()) })),
        ("consistency", r(14, RequestBody::Consistency { old: "old".into(), new: None })),
        ("verify", r(15, RequestBody::Verify { checkpoints: vec!["c".into()], public_keys: vec!["k".into()] })),
        (
            "compact",
            r(
                17,
                RequestBody::Compact {
                    options: cairn_server::protocol::WireCompact { zstd_level: 3, dry_run: true, ..Default::default() },
                },
            ),
        ),
        ("retain", r(18, RequestBody::Retain { older_than_secs: 86_400, dry_run: false })),
        ("rollup", r(20, RequestBody::Rollup { start_ms: None, end_ms: Some(1_767_225_600_000), dry_run: false })),
        ("create-aws-key", r(21, RequestBody::CreateAwsKey { role: Role::Read, name: "analyst".into() })),
        (
            "create-channel",
            r(
                22,
                RequestBody::CreateChannel {
                    name: "door-logs".into(),
                    external_id: Some("ext".into()),
                    allowed_keys: vec!["CAIRNAAAAAAAAAAAAAAA".into()],
                    account_id: None,
                    region: Some("eu-west-1".into()),
                },
            ),
        ),
        ("list-channels", r(23, RequestBody::ListChannels)),
        ("delivery", r(24, RequestBody::Delivery)),
        ("query", r(25, RequestBody::Query { statement: "SELECT eventname, count(*) FROM events GROUP BY eventname".into() })),
        (
            "insights",
            r(19, RequestBody::Insights { start_ms: Some(1_767_225_600_000), end_ms: None, backfill: true, sensitivity_milli: Some(6000) }),
        ),
        (
            "sign-digest",
            r(
                16,
                RequestBody::SignDigest {
                    end_time: "2026-01-01T01:00:00Z".into(),
                    location: "b/o".into(),
                    sha256_hex: "00".repeat(32),
                    previous: None,
                },
            ),
        ),
    ]
}

pub(crate) fn responses() -> Vec<(&'static str, Response)> {
    let r = |id, body| Response { id, body };
    let outcomes =
        vec![WireOutcome::Stored(7), WireOutcome::Duplicate(3), WireOutcome::Rejected { code: "InvalidJson".into(), message: "m".into() }];
    let stats = WireStats {
        events: 10,
        sealed_events: 8,
        segments: 1,
        record_bytes: 12_000,
        disk_bytes: 3_000,
        min_time_ms: Some(1),
        max_time_ms: Some(2),
        tree_size: 10,
        root: [7; 32],
        connections: 2,
        appended_since_start: 5,
        uptime_ms: 60_000,
    };
    let process = WireProcess {
        rss_bytes: Some(200 << 20),
        peak_rss_bytes: Some(250 << 20),
        memtable_bytes: 1,
        block_cache_bytes: 2,
        id_filter_bytes: 3,
    };
    let report = WireVerifyReport {
        events: 3,
        segments: 1,
        record_bytes: 300,
        tree_size: 3,
        root: Some([1; 32]),
        history_checkpoints: 2,
        external_checkpoints: 1,
        trusted_keys: true,
        problems: vec![("altered".into(), "seqs 0..256".into())],
        pruned_below: 0,
        pruned_checkpoints: 0,
        problems_omitted: 0,
    };
    let contributor = |v: &str| WireContributor { value: v.into(), insight: 12.5, baseline: 0.25 };
    let attributions = WireAttributions {
        users: vec![contributor("arn:aws:iam::1:user/mallory")],
        agents: vec![contributor("aws-cli/2")],
        errors: vec![],
    };
    let insights = WireInsightsReport {
        start_minute: 29_450_000,
        end_minute: 29_460_080,
        insights: vec![WireInsight {
            shared_event_id: "0f0e0d0c-0b0a-4908-8706-050403020100".into(),
            insight_type: "ApiCallRateInsight".into(),
            start: "2026-01-01T10:00:00Z".into(),
            end: Some("2026-01-01T10:15:00Z".into()),
            key: WireSeriesKey {
                account: "111122223333".into(),
                region: "us-east-1".into(),
                source: "ec2.amazonaws.com".into(),
                name: "RunInstances".into(),
                error: None,
            },
            direction: "spike".into(),
            start_minute: 29_450_600,
            end_minute: Some(29_450_615),
            baseline_average: 0.5,
            baseline_minutes: 10_080,
            start_average: 20.0,
            insight_average: 18.25,
            insight_minutes: 15,
            start_attributions: attributions.clone(),
            attributions,
        }],
        appended: Some(WireAppended { appended: 2, present: 0 }),
    };
    let compacted = WireCompactReport {
        dry_run: false,
        segments_before: 3,
        segments_after: 1,
        bytes_before: 30_000,
        bytes_after: 20_000,
        record_bytes: 90_000,
        seconds: 0.5,
        runs: vec![WireCompactRun { first_seq: 0, events: 300, segments: 3, bytes_before: 30_000, bytes_after: 20_000 }],
        dictionary_bytes: 0,
    };
    let retained = WireRetentionReport {
        dry_run: false,
        cutoff_ms: 1_767_225_600_000,
        segments_removed: 2,
        events_removed: 200,
        bytes_removed: 9_000,
        min_retained_seq: 200,
        event_seq: Some(300),
    };
    let rolled = WireRollupReport { data_events: 3000, records: 24, appended: 24, present: 0, dry_run: false };
    vec![
        ("appended", r(1, ResponseBody::Appended { outcomes })),
        ("page", r(2, ResponseBody::Page { events: vec![event()], next_token: None })),
        ("counts", r(3, ResponseBody::Counts { counts: vec![("s3.amazonaws.com".into(), 5)] })),
        ("events", r(4, ResponseBody::Events { events: vec![event(), event()] })),
        ("stats-reply", r(5, ResponseBody::Stats(stats))),
        ("export-chunk", r(6, ResponseBody::ExportChunk { events: vec![event()] })),
        ("export-end", r(6, ResponseBody::ExportEnd { count: 1 })),
        ("token", r(7, ResponseBody::Token { token: "cairn_00".into() })),
        ("tail-events", r(8, ResponseBody::TailEvents { events: vec![event()] })),
        ("error", r(0, ResponseBody::Error(WireError { code: "MalformedFrame".into(), message: "bad".into() }))),
        ("process-reply", r(9, ResponseBody::Process(process))),
        ("checkpoint-reply", r(10, ResponseBody::Checkpoint { note: Some("origin\n1\nAAAA\n\n\u{2014} k sig\n".into()) })),
        ("public-keys-reply", r(11, ResponseBody::PublicKeys { keys: vec!["cairn/0+00000000+AQ==".into()] })),
        ("proofs", r(13, ResponseBody::Proofs { bundles: vec!["{}".into()] })),
        ("consistency-reply", r(14, ResponseBody::Consistency { bundle: "{}".into() })),
        ("verify-progress", r(15, ResponseBody::VerifyProgress { done_bytes: 10, total_bytes: 20 })),
        ("verify-report", r(15, ResponseBody::VerifyReport(report))),
        ("digest-signature", r(16, ResponseBody::DigestSignature { signature: vec![7; 64], key: "cairn/0+00000000+AQ==".into() })),
        ("compacted", r(17, ResponseBody::Compacted(compacted))),
        ("insights-reply", r(19, ResponseBody::Insights(insights))),
        ("retained", r(18, ResponseBody::Retained(retained))),
        ("rolled-up", r(20, ResponseBody::RolledUp(rolled))),
        ("aws-key", r(21, ResponseBody::AwsKey { access_key_id: "CAIRNAAAAAAAAAAAAAAA".into(), secret: "s3cr3t".into() })),
        ("channel", r(22, ResponseBody::Channel(channel()))),
        ("channels", r(23, ResponseBody::Channels { channels: vec![channel()] })),
        ("delivery-reply", r(24, ResponseBody::Delivery(Some(delivery())))),
        ("delivery-none", r(24, ResponseBody::Delivery(None))),
        // (Not a real Arrow IPC stream: the frame carries it as opaque bytes.)
        ("query-batch", r(25, ResponseBody::QueryBatch { ipc: vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0] })),
        (
            "query-end",
            r(
                25,
                ResponseBody::QueryEnd(cairn_server::protocol::WireQueryEnd {
                    rows: 2,
                    events_scanned: 10,
                    bytes_scanned: 12_000,
                    events_matched: 4,
                    query_id: "6f1c3c2e-0000-4000-8000-000000000001".into(),
                }),
            ),
        ),
    ]
}

fn frame<T: serde::Serialize>(msg: &T) -> String {
    let mut buf = Vec::new();
    write_frame(&mut buf, msg).unwrap();
    hex::encode(buf)
}

fn encoded() -> Vec<(String, String)> {
    let hello = Hello { magic: MAGIC, version: 2, token: "cairn_ab".into() };
    let reply = HelloReply::Ok { version: 2, server: "cairnd 0.1.0".into(), role: Role::Admin };
    let refused = HelloReply::Error(WireError { code: "AuthenticationFailed".into(), message: "unknown token".into() });
    let mut out = vec![("hello".to_string(), frame(&hello)), ("hello-ok".into(), frame(&reply)), ("hello-error".into(), frame(&refused))];
    out.extend(requests().iter().map(|(n, m)| (n.to_string(), frame(m))));
    out.extend(responses().iter().map(|(n, m)| (n.to_string(), frame(m))));
    out
}

fn decode<T: for<'de> serde::Deserialize<'de>>(hex_frame: &str) -> T {
    let bytes = hex::decode(hex_frame).unwrap();
    read_frame(&mut bytes.as_slice(), 1 << 20).unwrap_or_else(|e| panic!("fixture frame does not decode: {e}"))
}

// Goal: every message of protocol version 2 encodes to the fixture's bytes
// and every fixture frame decodes to the same message.
#[test]
fn protocol_v2_frames_are_stable() {
    let path = fixtures_dir().join("golden/protocol-v2.txt");
    let now = encoded();
    if std::env::var_os("CAIRN_REGEN_GOLDEN").is_some() {
        let text: String = now.iter().map(|(n, h)| format!("{n} {h}\n")).collect();
        std::fs::write(&path, text).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("protocol fixture present");
    let fixture: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(' ')).collect();
    let get = |n: &str| fixture.iter().find(|(k, _)| *k == n).unwrap_or_else(|| panic!("{n} is missing from the fixture")).1;
    for (name, now_hex) in &now {
        assert_eq!(get(name), now_hex, "{name}: the encoding of a version-2 message changed");
    }
    assert_eq!(decode::<Hello>(get("hello")), Hello { magic: MAGIC, version: 2, token: "cairn_ab".into() });
    for (name, msg) in requests() {
        assert_eq!(decode::<Request>(get(name)), msg, "{name}");
    }
    for (name, msg) in responses() {
        assert_eq!(decode::<Response>(get(name)), msg, "{name}");
    }
}

// Goal: the handshake's layout is the same in every version: version 1's
// frozen handshake frames decode with today's types, so an old client's
// Hello is read and answered with a clear UnsupportedProtocolVersion.
#[test]
fn protocol_v1_handshake_still_decodes() {
    let text = std::fs::read_to_string(fixtures_dir().join("golden/protocol-v1.txt")).expect("version 1 fixture present");
    let get = |n: &str| text.lines().find_map(|l| l.strip_prefix(&format!("{n} "))).unwrap_or_else(|| panic!("{n} missing"));
    assert_eq!(decode::<Hello>(get("hello")), Hello { magic: MAGIC, version: 1, token: "cairn_ab".into() });
    assert_eq!(decode::<HelloReply>(get("hello-ok")), HelloReply::Ok { version: 1, server: "cairnd 0.1.0".into(), role: Role::Admin });
    assert!(matches!(decode::<HelloReply>(get("hello-error")), HelloReply::Error(e) if e.code == "AuthenticationFailed"));
}
