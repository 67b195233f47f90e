//! Real CloudTrail records written by others: every one is accepted, or
//! rejected only for a documented reason, and comes back byte-exact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_engine::{Options, Outcome, Store};

use crate::common::{assert_consistent, cairn, fixtures_dir};

/// Rejections real data may legitimately earn (documentation placeholders
/// such as `"eventTime": "timestamp"`); never "not JSON" or "not an object".
const DOCUMENTED: &[&str] = &["InvalidEventTime", "MissingEventTime", "MissingEventName"];

fn ndjson_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs = vec![fixtures_dir().join("cloudtrail")];
    // The shared collection (including files whose licence keeps them out of
    // this repository) sits beside the checkout in CI and development.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cloudtrail");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        eprintln!("note: ../shared/data/cloudtrail not present; testing the bundled fixtures only");
    }
    for d in dirs {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".ndjson") && name != "provenance.ndjson" {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 5, "fixtures missing: {files:?}");
    files
}

// Goal: every real record is accepted or rejected for a documented reason;
// accepted ones are stored byte-exact (also after sealing) and found by id.
#[test]
fn real_records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options { segment_bytes: 256 * 1024, ..Options::default() }).unwrap();
    let mut accepted: Vec<Vec<u8>> = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut dups = 0usize;
    for f in ndjson_files() {
        let text = std::fs::read(&f).unwrap();
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        for (line, out) in lines.iter().zip(store.append(&lines).unwrap()) {
            match out {
                Outcome::Stored(seq) => {
                    assert_eq!(seq, accepted.len() as u64);
                    accepted.push(line.to_vec());
                }
                Outcome::Duplicate(seq) => {
                    // The shared collection repeats the bundled files: the
                    // second copy must be recognised, byte-exact.
                    assert_eq!(accepted[seq as usize], line.to_vec());
                    dups += 1;
                }
                Outcome::Rejected(r) => {
                    assert!(DOCUMENTED.contains(&r.code()), "{}: undocumented rejection {r}", f.display());
                    *reasons.entry(r.code().to_string()).or_default() += 1;
                }
            }
        }
    }
    eprintln!("fixtures: {} accepted, {dups} duplicates, rejected {reasons:?}", accepted.len());
    assert!(accepted.len() > 700, "only {} accepted", accepted.len());
    store.seal_now().unwrap();
    let events = assert_consistent(&store);
    let stored: Vec<Vec<u8>> = events.iter().map(|e| e.record.clone()).collect();
    assert_eq!(stored, accepted);
    // Every record with an eventID is found by it, byte-exact.
    for e in &events {
        let v: serde_json::Value = serde_json::from_slice(&e.record).unwrap();
        if let Some(id) = v.get("eventID").and_then(|x| x.as_str()).filter(|s| !s.is_empty()) {
            let got = store.get(id).unwrap();
            assert!(got.iter().any(|g| g.seq == e.seq && g.record == e.record), "get({id}) misses seq {}", e.seq);
        }
    }
}

// Goal: delivered CloudTrail log files (gzip and plain) ingest through the
// CLI to the same records, and `get` prints them byte-exact.
#[test]
fn delivered_log_files_via_cli() {
    let delivered = fixtures_dir().join("cloudtrail/delivered");
    let gz = delivered.join("111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json.gz");
    let plain = delivered.join("111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (code, _, err) = cairn(a.path(), &["ingest", gz.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cairn(b.path(), &["ingest", plain.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let ev = |d: &Path| {
        let s = Store::open(d, Options::default()).unwrap();
        assert_consistent(&s).into_iter().map(|e| e.record).collect::<Vec<_>>()
    };
    let (ra, rb) = (ev(a.path()), ev(b.path()));
    assert!(!ra.is_empty());
    assert_eq!(ra, rb);
    let first: serde_json::Value = serde_json::from_slice(&ra[0]).unwrap();
    let id = first["eventID"].as_str().unwrap();
    let (code, out, _) = cairn(a.path(), &["get", id]);
    assert_eq!(code, 0);
    assert_eq!(out, [ra[0].as_slice(), b"\n"].concat());
    // A whole directory tree ingests too (walks *.json and *.json.gz).
    let c = tempfile::tempdir().unwrap();
    let (code, _, err) = cairn(c.path(), &["ingest", delivered.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

fn bundled_lines() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in [
        "panther-analysis.ndjson",
        "stratus-red-team.ndjson",
        "cloud-custodian.ndjson",
        "aws-lambda-rust-runtime.ndjson",
        "trailscraper.ndjson",
    ] {
        let text = std::fs::read(fixtures_dir().join("cloudtrail").join(f)).unwrap();
        out.extend(text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
    }
    out
}

// Goal: incident queries on real records return exactly the records that
// a plain JSON scan finds: every ConsoleLogin, every event of one access
// key, every AccessDenied error, and their combination.
#[test]
fn incident_queries_on_real_records() {
    use cairn_engine::{Attr, Query};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options { segment_bytes: 128 * 1024, ..Options::default() }).unwrap();
    let lines = bundled_lines();
    let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
    store.append(&refs).unwrap();
    store.seal_now().unwrap();
    let stored = assert_consistent(&store);
    let field = |r: &[u8], path: &[&str]| -> Option<String> {
        let mut v: serde_json::Value = serde_json::from_slice(r).ok()?;
        for p in path {
            v = v.get(*p)?.clone();
        }
        v.as_str().map(str::to_string)
    };
    let key = stored
        .iter()
        .filter_map(|e| field(&e.record, &["userIdentity", "accessKeyId"]))
        .find(|k| k.starts_with("AKIA") || k.starts_with("ASIA"))
        .unwrap();
    type Case<'a> = (Vec<(Attr, Vec<String>)>, Box<dyn Fn(&[u8]) -> bool + 'a>);
    let cases: Vec<Case> = vec![
        (vec![(Attr::EventName, vec!["ConsoleLogin".into()])], Box::new(|r| field(r, &["eventName"]).as_deref() == Some("ConsoleLogin"))),
        (
            vec![(Attr::AccessKeyId, vec![key.clone()])],
            Box::new(|r| field(r, &["userIdentity", "accessKeyId"]).as_deref() == Some(key.as_str())),
        ),
        (vec![(Attr::ErrorCode, vec!["AccessDenied".into()])], Box::new(|r| field(r, &["errorCode"]).as_deref() == Some("AccessDenied"))),
        (
            vec![(Attr::EventName, vec!["ConsoleLogin".into()]), (Attr::EventSource, vec!["signin.amazonaws.com".into()])],
            Box::new(|r| {
                field(r, &["eventName"]).as_deref() == Some("ConsoleLogin")
                    && field(r, &["eventSource"]).as_deref() == Some("signin.amazonaws.com")
            }),
        ),
    ];
    for (filters, want) in cases {
        let q = Query { filters: filters.clone(), ..Query::default() };
        let mut expected: Vec<u64> = stored.iter().filter(|e| want(&e.record)).map(|e| e.seq).collect();
        let mut got = Vec::new();
        store
            .export(&q, cairn_engine::Order::NewestFirst, |e| {
                got.push(e.seq);
                true
            })
            .unwrap();
        expected.sort();
        got.sort();
        assert!(!expected.is_empty(), "{filters:?} matches nothing in the fixtures");
        assert_eq!(got, expected, "{filters:?}");
    }
}

// Goal: ingesting the same files twice stores each event once (the second
// run reports duplicates), through the CLI.
#[test]
fn ingesting_twice_stores_once() {
    let data = tempfile::tempdir().unwrap();
    let input = fixtures_dir().join("cloudtrail/stratus-red-team.ndjson");
    let (c1, out1, e1) = cairn(data.path(), &["ingest", input.to_str().unwrap(), "--output", "json"]);
    let (c2, out2, e2) = cairn(data.path(), &["ingest", input.to_str().unwrap(), "--output", "json"]);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    let s1: serde_json::Value = serde_json::from_slice(&out1).unwrap();
    let s2: serde_json::Value = serde_json::from_slice(&out2).unwrap();
    assert_eq!(s2["accepted"], 0);
    assert_eq!(s2["duplicates"], s1["accepted"]);
    let (_, stats, _) = cairn(data.path(), &["stats", "--output", "json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["events"], s1["accepted"]);
}
