//! Golden fixtures of the on-disk formats: data directories written by
//! earlier builds must stay readable, with the same records and the same
//! tree head, by every later build.
//!
//! - `golden/v1`: format version 1 (a sealed segment with a version-1
//!   index, tiles, a version-1 manifest, and a WAL with unsealed events),
//!   written before checkpoints existed. Frozen: it can no longer be
//!   regenerated (this build writes newer formats).
//! - `golden/v2`: segment and manifest version 2 (a compacted segment with
//!   a dictionary and chain hash, a sealed segment with a version-2 index,
//!   a retention cut with its level-0 tile), keys and signed checkpoints.
//!   Frozen (this build writes segment version 3).
//! - `golden/v3`: index version 3 (the Insights counters in a sealed
//!   segment) and a WAL. Frozen (this build writes index version 4).
//! - `golden/v4`: segment version 3 (packed blocks and id table) with index
//!   version 4 (bitmap postings): a sealed segment, a compacted one with a
//!   dictionary, and a WAL. Frozen (this build writes index version 5).
//! - `golden/v5`: the same records with index version 5 (each segment's
//!   totals). Frozen (this build writes segment version 4 and index
//!   version 6).
//! - `golden/v6`: the same records in segment version 4 (records stored
//!   field by field) with index version 6 (rare-value tables). Frozen
//!   (this build writes index version 7).
//! - `golden/v7`: the same records with index version 7 (compressed
//!   Insights counters; each distinct index value stored once). Frozen
//!   (this build writes segment version 5).
//! - `golden/v8`: the same records in segment version 5 (records split
//!   grouped by principal, block payload version 4).
//!   Regenerate only for a deliberate format change:
//!   `CAIRN_REGEN_GOLDEN_V8=1 cargo test golden`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_engine::{Options, Store};

use cairn_engine::verify::{verify_dir, VerifyOptions};

use crate::common::{assert_consistent, fixtures_dir};

fn source_records() -> Vec<Vec<u8>> {
    let text = std::fs::read(fixtures_dir().join("cloudtrail/stratus-red-team.ndjson")).unwrap();
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(300).map(<[u8]>::to_vec).collect()
}

fn golden_options() -> Options {
    let t = Arc::new(AtomicU64::new(1_767_225_600_000));
    Options { clock: Some(Arc::new(move || t.fetch_add(1000, Ordering::SeqCst))), block_bytes: 4096, ..Options::default() }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "LOCK" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

// Goal: format version 1 stays readable: same records, seqs and tree root.
#[test]
fn format_v1_golden_store_opens() {
    let golden = fixtures_dir().join("golden/v1");
    let expected_root = std::fs::read_to_string(golden.join("ROOT")).expect("golden fixture present").trim().to_string();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&golden.join("data"), work.path());
    let store = Store::open(work.path(), Options::default()).unwrap();
    let events = assert_consistent(&store);
    let records: Vec<Vec<u8>> = events.iter().map(|e| e.record.clone()).collect();
    assert_eq!(records, source_records());
    let stats = store.stats().unwrap();
    assert_eq!(stats.sealed_events, 280);
    // The sealed part completed one 256-leaf subtree: a level-1 partial tile.
    assert!(golden.join("data/tiles/tile/1/000.p/1").exists());
    assert_eq!(hex::encode(stats.root), expected_root);
    // The clock is read once at open, then once per batch.
    assert_eq!(events[0].ingest_ms, 1_767_225_601_000);
}

// Goal: the version-1 store also verifies (no seq map: every block is read
// for proofs), proves its events, and compacts into version-2 segments
// that verify again with the same root.
#[test]
fn format_v1_golden_store_verifies_proves_and_compacts() {
    let golden = fixtures_dir().join("golden/v1");
    let work = tempfile::tempdir().unwrap();
    copy_dir(&golden.join("data"), work.path());
    let store = Store::open(work.path(), Options::default()).unwrap();
    let cp = store.checkpoint().unwrap().unwrap();
    let key = store.verifiers().pop().unwrap();
    for seq in [0u64, 100, 279, 299] {
        let p = store.prove(seq, Some(&cp)).unwrap();
        assert!(cairn_engine::checkpoint::bundle::ProofBundle::from_proof(&p).unwrap().verify(std::slice::from_ref(&key)).is_ok());
    }
    let root = store.stats().unwrap().root;
    store.seal_now().unwrap();
    let opts = cairn_engine::compact::CompactOptions { all: true, small_bytes: u64::MAX, ..Default::default() };
    store.compact(&opts, &mut |_, _| {}).unwrap();
    assert_eq!(store.stats().unwrap().root, root);
    store.close().unwrap();
    let v = verify_dir(work.path(), &VerifyOptions { checkpoints: vec![cp], public_keys: vec![key] }, &mut |_, _| {}).unwrap();
    assert!(v.ok(), "{:#?}", v.problems);
}

/// The records of the v2 fixture: 100 of 2020 (retention removes them),
/// then 300 real ones of 2024.
fn v2_records() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..100).map(|i| crate::common::record(&format!("old-{i}"), "2020-06-01T00:00:00Z", "ListBuckets")).collect();
    v.extend(source_records());
    v
}

// Goal: segment and manifest version 2, keys and checkpoints stay
// readable: same records and root, the checkpoint history verifies, and
// proofs compute.
#[test]
fn format_v2_golden_store_opens_and_verifies() {
    let golden = fixtures_dir().join("golden/v2");
    let expected_root = std::fs::read_to_string(golden.join("ROOT")).expect("golden v2 fixture present").trim().to_string();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&golden.join("data"), work.path());
    let v = verify_dir(work.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(v.ok(), "{:#?}", v.problems);
    assert!(v.history_checkpoints >= 3);
    assert_eq!(v.pruned_below, 100);
    let store = Store::open(work.path(), Options::default()).unwrap();
    let mut events = Vec::new();
    store.for_each(|e| events.push(e.clone())).unwrap();
    events.sort_by_key(|e| e.seq);
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == 100 + i as u64), "seqs contiguous from the cut");
    let (cuts, kept): (Vec<_>, Vec<_>) = events.iter().partition(|e| String::from_utf8_lossy(&e.record).contains("\"RetentionCut\""));
    assert_eq!(cuts.len(), 1);
    assert_eq!(kept.iter().map(|e| e.record.clone()).collect::<Vec<_>>(), v2_records()[100..].to_vec());
    assert_eq!(hex::encode(store.stats().unwrap().root), expected_root);
    let cp = store.latest_checkpoint().unwrap();
    let key = store.verifiers().pop().unwrap();
    assert!(matches!(store.prove(5, Some(&cp)), Err(cairn_engine::Error::Pruned { .. })));
    for seq in [100u64, 101, 230, 400] {
        let p = store.prove(seq, Some(&cp)).unwrap();
        assert!(cairn_engine::checkpoint::bundle::ProofBundle::from_proof(&p).unwrap().verify(std::slice::from_ref(&key)).is_ok());
    }
}

/// What the Insights counters must hold for `records`, computed here from
/// the JSON: (eventSource, eventName, errorCode, minute) -> count, for
/// write management calls (errorCode `None`) and management calls that
/// ended in an error.
fn expected_counts(records: &[Vec<u8>]) -> std::collections::BTreeMap<(String, String, Option<String>, i64), u32> {
    let mut out = std::collections::BTreeMap::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_slice(r).unwrap();
        let category = v["eventCategory"].as_str().unwrap_or("Management");
        let (Some(source), Some(name)) = (v["eventSource"].as_str(), v["eventName"].as_str()) else { continue };
        if category != "Management" || v["eventType"] == "AwsCloudTrailInsight" || source == "cairn.local" {
            continue;
        }
        let minute = cairn_engine::event::parse_event_time(v["eventTime"].as_str().unwrap()).unwrap().div_euclid(60_000);
        if v["readOnly"] == false {
            *out.entry((source.to_string(), name.to_string(), None, minute)).or_default() += 1;
        }
        if let Some(code) = v["errorCode"].as_str() {
            *out.entry((source.to_string(), name.to_string(), Some(code.to_string()), minute)).or_default() += 1;
        }
    }
    out
}

/// The counters a store's sealed segments hold, in the same shape.
fn stored_counts(store: &Store) -> std::collections::BTreeMap<(String, String, Option<String>, i64), u32> {
    let mut out = std::collections::BTreeMap::new();
    let (segments, _) = store.counter_view(i64::MIN, i64::MAX);
    for seg in segments.iter() {
        seg.visit_counters(|k, m, n, _| *out.entry((k.source.clone(), k.name.clone(), k.error.clone(), m)).or_default() += n).unwrap();
    }
    out
}

// Goal: segments written before the Insights counters (index version 2)
// still count: their counters are derived from their records, and agree
// with the records.
#[test]
fn format_v2_segments_derive_insights_counters() {
    let work = tempfile::tempdir().unwrap();
    copy_dir(&fixtures_dir().join("golden/v2/data"), work.path());
    let store = Store::open(work.path(), Options::default()).unwrap();
    let sealed: Vec<Vec<u8>> = v2_records()[100..330].to_vec();
    let expected = expected_counts(&sealed);
    assert!(expected.len() > 10, "the fixture has write calls and errors to count");
    assert_eq!(stored_counts(&store), expected);
}

/// The v3 fixture's records: real ones, and an on-premises service's
/// writes and AccessDenied errors over a few minutes.
fn v3_records() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = source_records().into_iter().take(100).collect();
    for i in 0..120u32 {
        let (minute, user) = (i % 4, ["alice", "bob", "mallory"][(i % 3) as usize]);
        let err = if i % 5 == 0 { r#","errorCode":"AccessDenied""# } else { "" };
        v.push(
            format!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/{user}"}},"eventTime":"2026-01-01T00:0{minute}:{:02}Z","eventSource":"ops.example.com","eventName":"RunDeploy","awsRegion":"eu-west-1","userAgent":"opsctl/2.1","eventID":"v3-{i}","readOnly":false,"recipientAccountId":"111122223333"{err}}}"#,
                i % 60
            )
            .into_bytes(),
        );
    }
    v
}

/// Copies fixture `golden/<name>` to a temporary directory, checks that
/// it verifies, opens it, and checks that it holds exactly `records` (in
/// seq order) under the root the fixture recorded.
fn open_golden(name: &str, records: &[Vec<u8>]) -> (tempfile::TempDir, Store) {
    let golden = fixtures_dir().join("golden").join(name);
    let expected_root = std::fs::read_to_string(golden.join("ROOT")).expect("golden fixture present").trim().to_string();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&golden.join("data"), work.path());
    let v = verify_dir(work.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
    assert!(v.ok(), "{name}: {:#?}", v.problems);
    let store = Store::open(work.path(), Options::default()).unwrap();
    let events = assert_consistent(&store);
    assert_eq!(events.iter().map(|e| e.record.clone()).collect::<Vec<_>>(), records, "{name}: records");
    assert_eq!(hex::encode(store.stats().unwrap().root), expected_root, "{name}: root");
    (work, store)
}

// Goal: index version 3 (with the Insights counters) stays readable: same
// records and root, and the counters it stored agree with its records,
// down to a cell's top contributors.
#[test]
fn format_v3_golden_store_keeps_insights_counters() {
    let (_work, store) = open_golden("v3", &v3_records());
    assert_eq!(stored_counts(&store), expected_counts(&v3_records()[..200]));
    // One cell in full: minute 00:01 of RunDeploy's call rate.
    let (segments, unsealed) = store.counter_view(i64::MIN, i64::MAX);
    let seg = &segments.iter().next().unwrap();
    let counters = seg.counters().unwrap();
    let key = counters.series.keys().find(|k| k.name == "RunDeploy" && k.error.is_none()).unwrap().clone();
    assert_eq!((key.account.as_str(), key.region.as_str(), key.source.as_str()), ("111122223333", "eu-west-1", "ops.example.com"));
    let cell = &counters.series[&key][&(1_767_225_600_000 / 60_000 + 1)];
    assert_eq!(cell.count, 25, "the 100 fixture events before it leave 25 of the ops events in each minute");
    let users: Vec<(&str, u32)> = cell.users.entries.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    assert_eq!(users.iter().map(|u| u.1).sum::<u32>(), 25);
    assert!(users.iter().any(|u| u.0 == "arn:aws:iam::111122223333:user/mallory"));
    // Error codes of the calls, "null" for none (as CloudTrail attributes them).
    assert_eq!(cell.errors.entries, vec![("null".to_string(), 20), ("AccessDenied".to_string(), 5)]);
    // The unsealed events (from the WAL) count too.
    let wal: u32 = unsealed.series.values().flat_map(|m| m.values()).map(|c| c.count).sum();
    assert_eq!(wal as usize, expected_counts(&v3_records()[200..]).values().map(|&n| n as usize).sum::<usize>());
}

/// The v4 fixture's records: the v3 ones (real records, and an on-premises
/// service's calls dense enough for bitmap postings), then 100 more real
/// ones.
fn v4_records() -> Vec<Vec<u8>> {
    let mut v = v3_records();
    v.extend(source_records().into_iter().skip(100).take(100));
    v
}

/// Writes the fixture of the formats this build writes (`golden/v8`).
fn regenerate(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), golden_options()).unwrap();
    let recs = v4_records();
    let put = |part: &[Vec<u8>]| {
        for chunk in part.chunks(25) {
            let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
            store.append(&refs).unwrap();
        }
    };
    put(&recs[..100]);
    store.seal_now().unwrap();
    put(&recs[100..200]);
    store.seal_now().unwrap();
    let opts = cairn_engine::compact::CompactOptions { small_bytes: u64::MAX, dictionary: true, block_bytes: 16384, ..Default::default() };
    store.compact(&opts, &mut |_, _| {}).unwrap();
    put(&recs[200..280]);
    store.seal_now().unwrap();
    assert_eq!(store.stats().unwrap().segments, 2, "a compacted segment and a sealed one");
    put(&recs[280..]);
    let root = hex::encode(store.stats().unwrap().root);
    store.close().unwrap();
    copy_dir(tmp.path(), &dir.join("data"));
    std::fs::write(dir.join("ROOT"), format!("{root}\n")).unwrap();
}

/// Counts of a JSON string field over records.
fn field_counts(records: &[Vec<u8>], field: &str) -> Vec<(String, u64)> {
    let mut m = std::collections::BTreeMap::<String, u64>::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_slice(r).unwrap();
        if let Some(s) = v[field].as_str() {
            *m.entry(s.to_string()).or_default() += 1;
        }
    }
    m.into_iter().collect()
}

// Goal: segment version 3 and index version 4 stay readable: same records
// and root, verify passes, every eventID is found through the packed id
// table, counts and lookups through bitmap and varint postings agree with
// the records, and proofs compute.
#[test]
fn format_v4_golden_store_reads_packed_segments() {
    check_packed_fixture("v4");
}

// Goal: index version 5 stays readable, with everything version 4 had, and
// its totals: every segment has them for low-cardinality attributes, and
// counts from them equal the records' (the v4 test checks the same counts
// through the partitions).
#[test]
fn format_v5_golden_store_counts_from_totals() {
    let golden = fixtures_dir().join("golden/v5");
    check_packed_fixture("v5");
    for e in std::fs::read_dir(golden.join("data/segments")).unwrap() {
        let seg = cairn_engine::segment::reader::Segment::open(&e.unwrap().path()).unwrap();
        let idx = seg.index().unwrap();
        for attr in [cairn_engine::index::Attr::EventName, cairn_engine::index::Attr::EventSource] {
            let total: u64 = idx.totals(attr).expect("a totals table").map(|(_, n)| n).sum();
            assert!(total > 0 && total <= seg.footer.count, "{} totals add up to {total}", attr.name());
        }
    }
}

// Goal: segment version 4 (field-by-field blocks) and index version 6
// (rare-value tables) stay readable: everything the v4 and v5 fixtures
// check, every segment is version 4 and reads back every record
// byte-exact, and a lookup by each resource name (most of them on one
// event, so in a rare-value table) returns exactly the records that carry
// it.
#[test]
fn format_v6_golden_store_reads_field_blocks_and_rare_values() {
    let golden = fixtures_dir().join("golden/v6");
    check_packed_fixture("v6");
    let mut rare = 0;
    for e in std::fs::read_dir(golden.join("data/segments")).unwrap() {
        let seg = cairn_engine::segment::reader::Segment::open(&e.unwrap().path()).unwrap();
        assert_eq!(seg.footer.version(), 4);
        rare += seg.index().unwrap().rare_ordinals(cairn_engine::index::Attr::ResourceName).unwrap().len();
    }
    assert!(rare > 0, "the fixture has single-event resource names");
    let recs = v4_records();
    let (_work, store) = open_golden("v6", &recs);
    let mut names = std::collections::BTreeSet::new();
    for r in &recs {
        let ev = cairn_engine::parse_event(r, 1 << 20).unwrap();
        for (a, v) in cairn_engine::index::terms(&ev) {
            if a == cairn_engine::index::Attr::ResourceName {
                names.insert(v.into_owned());
            }
        }
    }
    assert!(names.len() >= 5, "{} resource names", names.len());
    for name in names {
        let q = cairn_engine::query::Query {
            start_ms: None,
            end_ms: None,
            filters: vec![(cairn_engine::index::Attr::ResourceName, vec![name.clone()])],
        };
        let mut got: Vec<u64> = store.lookup(&q, Some(1000), None).unwrap().events.iter().map(|e| e.seq).collect();
        got.sort_unstable();
        let want: Vec<u64> = (0..recs.len() as u64)
            .filter(|&i| {
                let ev = cairn_engine::parse_event(&recs[i as usize], 1 << 20).unwrap();
                cairn_engine::index::terms(&ev).iter().any(|(a, v)| *a == cairn_engine::index::Attr::ResourceName && *v == name)
            })
            .collect();
        assert_eq!(got, want, "ResourceName {name}");
    }
}

// Goal: index version 7 stays readable: everything the v4 fixture checks,
// its Insights counters (compressed in both segments, the compacted one
// and the sealed one) agree with the records, and its index values are
// each stored once (the same reads as v6 passing is the point).
#[test]
fn format_v7_golden_store_reads_compressed_counters() {
    let golden = fixtures_dir().join("golden/v7");
    check_packed_fixture("v7");
    for e in std::fs::read_dir(golden.join("data/segments")).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let seg = cairn_engine::segment::reader::Segment::open(&path).unwrap();
        let at = seg.footer.index.offset as usize;
        assert_eq!(&bytes[at..at + 8], b"CIDX\x07\x00\x0f\x00", "{}: index version 7, counters compressed", path.display());
    }
    let recs = v4_records();
    let (_work, store) = open_golden("v7", &recs);
    let sealed = store.stats().unwrap().sealed_events as usize;
    assert!(sealed > 200 && sealed < recs.len(), "{sealed} sealed events");
    assert_eq!(stored_counts(&store), expected_counts(&recs[..sealed]));
}

// Goal: segment version 5 (records split grouped by principal) stays
// readable: everything the v4 fixture checks (every record byte-exact, in
// time order, with its seq), and both segments are version 5 (block
// payload version 4; the unit tests of `block` check the grouping).
#[test]
fn format_v8_golden_store_reads_grouped_blocks() {
    let golden = fixtures_dir().join("golden/v8");
    if std::env::var_os("CAIRN_REGEN_GOLDEN_V8").is_some() {
        regenerate(&golden);
    }
    check_packed_fixture("v8");
    for e in std::fs::read_dir(golden.join("data/segments")).unwrap() {
        let path = e.unwrap().path();
        let seg = cairn_engine::segment::reader::Segment::open(&path).unwrap();
        assert_eq!(seg.footer.version(), 5, "{}", path.display());
        assert_eq!(seg.footer.payload_version(), 4);
    }
    let recs = v4_records();
    let (_work, store) = open_golden("v8", &recs);
    let sealed = store.stats().unwrap().sealed_events as usize;
    assert_eq!(stored_counts(&store), expected_counts(&recs[..sealed]));
}

/// The checks of a fixture with packed segments (v4 and later): records,
/// root, verify, every eventID, counts and lookups against the records,
/// proofs.
fn check_packed_fixture(name: &str) {
    let recs = v4_records();
    let (_work, store) = open_golden(name, &recs);
    let stats = store.stats().unwrap();
    assert_eq!(stats.segments, 2);
    use cairn_engine::index::Attr;
    use cairn_engine::query::Query;
    let sorted = |mut v: Vec<(String, u64)>| {
        v.sort();
        v
    };
    for (attr, field) in [(Attr::EventName, "eventName"), (Attr::EventSource, "eventSource")] {
        assert_eq!(sorted(store.count(&Query::default(), attr).unwrap()), field_counts(&recs, field), "{field}");
    }
    // RunDeploy is on most events of its minutes (bitmaps); AccessDenied on
    // a few (varints).
    for (attr, value) in [(Attr::EventName, "RunDeploy"), (Attr::ErrorCode, "AccessDenied")] {
        let q = Query { start_ms: None, end_ms: None, filters: vec![(attr, vec![value.to_string()])] };
        let mut got: Vec<u64> = store.lookup(&q, Some(1000), None).unwrap().events.iter().map(|e| e.seq).collect();
        got.sort_unstable();
        let want: Vec<u64> = (0..recs.len() as u64)
            .filter(|&i| {
                let v: serde_json::Value = serde_json::from_slice(&recs[i as usize]).unwrap();
                v[if attr == Attr::EventName { "eventName" } else { "errorCode" }] == value
            })
            .collect();
        assert!(want.len() >= 20, "{value}: the fixture has {} of them", want.len());
        assert_eq!(got, want, "{value}");
    }
    for (seq, r) in recs.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_slice(r).unwrap();
        let id = v["eventID"].as_str().unwrap().to_string();
        let q = Query { start_ms: None, end_ms: None, filters: vec![(Attr::EventId, vec![id.clone()])] };
        let got: Vec<u64> = store.lookup(&q, Some(10), None).unwrap().events.iter().map(|e| e.seq).collect();
        assert_eq!(got, vec![seq as u64], "eventID {id}");
    }
    let cp = store.latest_checkpoint().unwrap();
    let key = store.verifiers().pop().unwrap();
    for seq in [0u64, 150, 250, 300] {
        let p = store.prove(seq, Some(&cp)).unwrap();
        assert!(cairn_engine::checkpoint::bundle::ProofBundle::from_proof(&p).unwrap().verify(std::slice::from_ref(&key)).is_ok());
    }
}

// Goal: a segment or WAL of a version this build does not read (a newer
// build's) is refused at open with the file, its version and the
// versions this build reads, and the store's files are left as they were.
#[test]
fn newer_format_versions_are_refused_by_name() {
    let golden = fixtures_dir().join("golden/v8");
    use cairn_engine::{segment::SEGMENT_VERSION_MAX, wal::WAL_VERSION};
    let segments_read = format!("versions 1 to {SEGMENT_VERSION_MAX}");
    let wals_read = if WAL_VERSION == 1 { "version 1".to_string() } else { format!("versions 1 to {WAL_VERSION}") };
    for (dir, ext, version, reads) in
        [("segments", "seg", SEGMENT_VERSION_MAX + 1, segments_read), ("wal", "wal", WAL_VERSION + 1, wals_read)]
    {
        let work = tempfile::tempdir().unwrap();
        copy_dir(&golden.join("data"), work.path());
        let file = std::fs::read_dir(work.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .min()
            .unwrap();
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[8..10].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&file, &bytes).unwrap();
        let err = Store::open(work.path(), Options::default()).err().expect("a newer version is refused").to_string();
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(name) && err.contains(&format!("unsupported format version {version} (this build reads {reads})")), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes, "the refused file is left as it was");
    }
}

// Goal: a version field damaged on disk (its checksum no longer matches)
// is reported as corruption at that file, never as a newer build's file
// that an upgrade would read; a manifest of a newer version (checksum
// intact) is refused with the versions this build reads.
#[test]
fn damaged_version_bytes_are_corruption_not_a_newer_format() {
    let golden = fixtures_dir().join("golden/v8");
    let segment = |dir: &Path| {
        std::fs::read_dir(dir.join("segments"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .min()
            .unwrap()
    };
    for target in ["segment", "manifest"] {
        let work = tempfile::tempdir().unwrap();
        copy_dir(&golden.join("data"), work.path());
        let file = if target == "segment" { segment(work.path()) } else { work.path().join("MANIFEST") };
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[8] ^= 0x10;
        std::fs::write(&file, &bytes).unwrap();
        let err = Store::open(work.path(), Options::default()).err().expect("damage is refused").to_string();
        assert!(err.contains("corruption in") && err.contains("checksum mismatch") && !err.contains("unsupported"), "{target}: {err}");
    }
    let work = tempfile::tempdir().unwrap();
    copy_dir(&golden.join("data"), work.path());
    let manifest = work.path().join("MANIFEST");
    let mut bytes = std::fs::read(&manifest).unwrap();
    let newer = cairn_engine::manifest::MANIFEST_VERSION + 1;
    bytes[8..10].copy_from_slice(&newer.to_le_bytes());
    let n = bytes.len();
    let crc = crc32fast::hash(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&manifest, &bytes).unwrap();
    let err = Store::open(work.path(), Options::default()).err().expect("a newer manifest is refused").to_string();
    let reads = format!("unsupported format version {newer} (this build reads versions 1 to {})", newer - 1);
    assert!(err.contains("MANIFEST") && err.contains(&reads), "{err}");
}
