//! Queries against a brute-force scan of a model: random events (late and
//! out of order, across many hours), random time ranges, attribute
//! combinations and page sizes, paging to the end, with ingest continuing
//! between pages.

use std::collections::BTreeMap;

use cairn_engine::index::terms;
use cairn_engine::{parse_event, Attr, Options, Order, Query, QueryError, Store};
use proptest::prelude::*;

use crate::common::test_options;

const USERS: &[&str] = &["alice", "bob", "carol", "dave"];
const NAMES: &[&str] = &["GetObject", "PutObject", "ConsoleLogin", "AssumeRole", "DeleteBucket"];
const REGIONS: &[&str] = &["us-east-1", "eu-west-1"];

/// (minute offset, user, name, region, error?)
type Spec = (u32, usize, usize, usize, bool);

fn make(i: usize, s: &Spec) -> Vec<u8> {
    let (minute, u, n, r, err) = *s;
    let t = 1_767_225_600 + i64::from(minute) * 60 + (i as i64 % 60);
    let time = cairn_engine::event::format_event_time(t * 1000);
    let error = if err { r#","errorCode":"AccessDenied""# } else { "" };
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","userName":"{}","accessKeyId":"AKIA{}"}},"eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"{}","awsRegion":"{}"{error},"eventID":"ev-{i}","readOnly":{}}}"#,
        USERS[u],
        USERS[u].to_uppercase(),
        NAMES[n],
        REGIONS[r],
        n == 0
    )
    .into_bytes()
}

fn matches(rec: &[u8], q: &Query) -> bool {
    let ev = parse_event(rec, 1 << 20).unwrap();
    if q.start_ms.is_some_and(|s| ev.time_ms < s) || q.end_ms.is_some_and(|e| ev.time_ms > e) {
        return false;
    }
    let ts = terms(&ev);
    q.filters.iter().all(|(a, vs)| vs.iter().any(|v| ts.iter().any(|(ta, tv)| ta == a && tv == v)))
}

fn filter_strategy() -> impl Strategy<Value = Vec<(Attr, Vec<String>)>> {
    let one = prop_oneof![
        prop::collection::vec(0..USERS.len(), 1..3).prop_map(|v| (Attr::Username, v.into_iter().map(|i| USERS[i].to_string()).collect())),
        prop::collection::vec(0..NAMES.len(), 1..3).prop_map(|v| (Attr::EventName, v.into_iter().map(|i| NAMES[i].to_string()).collect())),
        (0..REGIONS.len()).prop_map(|i| (Attr::AwsRegion, vec![REGIONS[i].to_string()])),
        Just((Attr::ErrorCode, vec!["AccessDenied".to_string()])),
        prop::bool::ANY.prop_map(|b| (Attr::ReadOnly, vec![b.to_string()])),
        (0..USERS.len()).prop_map(|i| (Attr::AccessKeyId, vec![format!("AKIA{}", USERS[i].to_uppercase())])),
        (0..300usize).prop_map(|i| (Attr::EventId, vec![format!("ev-{i}")])),
    ];
    prop::collection::vec(one, 0..3)
}

fn spec() -> impl Strategy<Value = Spec> {
    (0u32..600, 0..USERS.len(), 0..NAMES.len(), 0..REGIONS.len(), prop::bool::weighted(0.2))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    // Goal: every page sequence returns exactly the brute-force answer, in
    // (eventTime, seq) descending order, each event once, even with new
    // events appended between pages; counts agree with brute force.
    #[test]
    fn lookup_and_count_match_brute_force(
        specs in prop::collection::vec(spec(), 1..300),
        extra in prop::collection::vec(spec(), 0..40),
        range in (0u32..600, 0u32..600),
        open_start in prop::bool::weighted(0.2),
        filters in filter_strategy(),
        page in 1usize..40,
        segment_kib in 4u64..64,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options { segment_bytes: segment_kib * 1024, block_bytes: 2048, ..test_options() }).unwrap();
        let mut model: Vec<Vec<u8>> = Vec::new();
        for chunk in specs.chunks(37) {
            let recs: Vec<Vec<u8>> = chunk.iter().enumerate().map(|(j, s)| make(model.len() + j, s)).collect();
            let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
            store.append(&refs).unwrap();
            model.extend(recs);
        }
        let (a, b) = (range.0.min(range.1), range.0.max(range.1));
        let q = Query {
            start_ms: (!open_start).then_some((1_767_225_600 + i64::from(a) * 60) * 1000),
            end_ms: Some((1_767_225_600 + i64::from(b) * 60 + 59) * 1000),
            filters,
        };
        let snapshot = model.len();
        let mut want: Vec<(i64, u64)> = model.iter().enumerate().filter(|(_, r)| matches(r, &q)).map(|(i, r)| (parse_event(r, 1 << 20).unwrap().time_ms, i as u64)).collect();
        want.sort();
        want.reverse();

        let mut got = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let p = store.lookup(&q, Some(page), token.as_deref()).unwrap();
            prop_assert!(p.events.len() <= page);
            got.extend(p.events.iter().map(|e| (e.time_ms, e.seq)));
            // New events arrive between pages; the snapshot hides them.
            if pages == 0 && !extra.is_empty() {
                let recs: Vec<Vec<u8>> = extra.iter().enumerate().map(|(j, s)| make(model.len() + j, s)).collect();
                let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
                store.append(&refs).unwrap();
                model.extend(recs);
            }
            pages += 1;
            match p.next_token {
                Some(t) => {
                    prop_assert_ne!(Some(&t), token.as_ref(), "tokens must advance");
                    token = Some(t);
                }
                None => break,
            }
            prop_assert!(pages < 1000);
        }
        prop_assert_eq!(&got, &want);
        prop_assert!(got.iter().all(|(_, s)| (*s as usize) < snapshot));

        // Counts by EventName over the same query, after a seal too.
        store.seal_now().unwrap();
        let mut want_counts: BTreeMap<String, u64> = BTreeMap::new();
        for r in model.iter().filter(|r| matches(r, &q)) {
            let ev = parse_event(r, 1 << 20).unwrap();
            *want_counts.entry(ev.event_name.to_string()).or_default() += 1;
        }
        let got_counts: BTreeMap<String, u64> = store.count(&q, Attr::EventName).unwrap().into_iter().collect();
        prop_assert_eq!(got_counts, want_counts);

        // Export oldest-first is the reverse of the full answer.
        let mut all: Vec<(i64, u64)> = model.iter().enumerate().filter(|(_, r)| matches(r, &q)).map(|(i, r)| (parse_event(r, 1 << 20).unwrap().time_ms, i as u64)).collect();
        all.sort();
        let mut exported = Vec::new();
        store.export(&q, Order::OldestFirst, |e| { exported.push((e.time_ms, e.seq)); true }).unwrap();
        prop_assert_eq!(exported, all);
    }
}

// Goal: every invalid input of LookupEvents gets its CloudTrail error.
#[test]
fn invalid_inputs_get_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), test_options()).unwrap();
    let recs: Vec<Vec<u8>> = (0..5).map(|i| make(i, &(i as u32, 0, 0, 0, false))).collect();
    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
    store.append(&refs).unwrap();
    let code = |r: Result<cairn_engine::Page, QueryError>| r.err().map(|e| e.code());
    let bad_range = Query { start_ms: Some(10), end_ms: Some(5), ..Query::default() };
    assert_eq!(code(store.lookup(&bad_range, None, None)), Some("InvalidTimeRangeException"));
    let empty_value = Query { filters: vec![(Attr::Username, vec![String::new()])], ..Query::default() };
    assert_eq!(code(store.lookup(&empty_value, None, None)), Some("InvalidLookupAttributesException"));
    let long_value = Query { filters: vec![(Attr::Username, vec!["x".repeat(2001)])], ..Query::default() };
    assert_eq!(code(store.lookup(&long_value, None, None)), Some("InvalidLookupAttributesException"));
    let q = Query::default();
    assert_eq!(code(store.lookup(&q, Some(0), None)), Some("InvalidMaxResultsException"));
    assert_eq!(code(store.lookup(&q, Some(10_001), None)), Some("InvalidMaxResultsException"));
    assert_eq!(code(store.lookup(&q, None, Some("garbage"))), Some("InvalidNextTokenException"));
    let page = store.lookup(&q, Some(2), None).unwrap();
    let token = page.next_token.unwrap();
    let other = Query { filters: vec![(Attr::Username, vec!["alice".into()])], ..Query::default() };
    assert_eq!(code(store.lookup(&other, Some(2), Some(&token))), Some("InvalidNextTokenException"));
    let mut flipped = token.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    assert_eq!(code(store.lookup(&q, Some(2), Some(std::str::from_utf8(&flipped).unwrap()))), Some("InvalidNextTokenException"));
    assert_eq!(store.count(&q, Attr::EventId).err().map(|e| e.code()), Some("InvalidLookupAttributesException"));
}

// Goal: counts over whole segments come from each segment's totals table
// (index v5) and equal a brute-force count, for every attribute; an
// attribute with more values than a table holds (every event its own
// resource) falls back to the partitions and is still right; so is a range
// that cuts segments. The same counts and lookups hold after compaction,
// whose partitions are a day wide.
#[test]
fn counts_from_segment_totals_match_brute_force() {
    use cairn_tools::gen::{GenOptions, Profile};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options { segment_bytes: 12 << 20, ..test_options() }).unwrap();
    let opts = GenOptions { seed: 5, profile: Profile::Diverse, rate_per_sec: 2.0, ..GenOptions::default() };
    let model = crate::common::generated_with(opts, 24_000);
    crate::common::fill(&store, &model, 1000);
    store.seal_now().unwrap();
    assert!(store.stats().unwrap().segments >= 3, "several segments");
    // EventSource (40 values) has a table in every segment; ResourceName
    // (near one value per event) has too many values for one, so counting
    // by it walks the partitions.
    let tables = |attr: Attr| {
        std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .filter(|e| {
                let seg = cairn_engine::segment::reader::Segment::open(&e.as_ref().unwrap().path()).unwrap();
                let has = seg.index().unwrap().totals(attr).is_some();
                has
            })
            .count()
    };
    let segments = store.stats().unwrap().segments;
    assert_eq!(tables(Attr::EventSource), segments, "EventSource tables");
    assert_eq!(tables(Attr::ResourceName), 0, "no ResourceName table");
    let times: Vec<i64> = model.iter().map(|r| parse_event(r, 1 << 20).unwrap().time_ms).collect();
    let (lo, hi) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    let check = |stage: &str| {
        for q in [Query::default(), Query { start_ms: Some(lo + (hi - lo) / 3), end_ms: Some(hi - (hi - lo) / 3), filters: vec![] }] {
            for by in Attr::ALL.iter().copied().filter(|a| *a != Attr::EventId) {
                let mut want: BTreeMap<String, u64> = BTreeMap::new();
                for r in model.iter().filter(|r| matches(r, &q)) {
                    let ev = parse_event(r, 1 << 20).unwrap();
                    let mut seen = std::collections::BTreeSet::new();
                    for (a, v) in terms(&ev) {
                        if a == by && seen.insert(v.to_string()) {
                            *want.entry(v.to_string()).or_default() += 1;
                        }
                    }
                }
                let got: BTreeMap<String, u64> = store.count(&q, by).unwrap().into_iter().collect();
                assert_eq!(got, want, "{stage}: count by {} over {:?}..{:?}", by.name(), q.start_ms, q.end_ms);
            }
        }
        // Lookups by a frequent and a rare value of each attribute, over
        // a range that cuts the partitions.
        let first = parse_event(&model[model.len() / 2], 1 << 20).unwrap();
        for (attr, value) in terms(&first).into_iter().filter(|(a, _)| *a != Attr::EventId) {
            let q = Query {
                start_ms: Some(lo + (hi - lo) / 4),
                end_ms: Some(hi - (hi - lo) / 5),
                filters: vec![(attr, vec![value.to_string()])],
            };
            let mut want: Vec<u64> = model.iter().enumerate().filter(|(_, r)| matches(r, &q)).map(|(i, _)| i as u64).collect();
            want.sort_unstable();
            let mut got: Vec<u64> = Vec::new();
            store
                .export(&q, Order::OldestFirst, |e| {
                    got.push(e.seq);
                    true
                })
                .unwrap();
            got.sort_unstable();
            assert_eq!(got, want, "{stage}: lookup {}={value}", attr.name());
        }
    };
    check("sealed");
    // Compaction writes day-wide partitions: the same answers, the range
    // edges now inside one partition.
    let opts = cairn_engine::compact::CompactOptions { all: true, small_bytes: u64::MAX, ..Default::default() };
    store.compact(&opts, &mut |_, _| {}).unwrap();
    for e in std::fs::read_dir(dir.path().join("segments")).unwrap() {
        let seg = cairn_engine::segment::reader::Segment::open(&e.unwrap().path()).unwrap();
        assert_eq!(seg.index().unwrap().layout.partition_ms, 86_400_000, "compacted partitions are a day wide");
    }
    check("compacted");
}

// Goal: resource names on one event of their hour (index v6 keeps them in
// a rare-value table, by 32-bit fingerprint, not as terms) are still found
// exactly: a lookup returns the event with the name and only it, even when
// another name in the same hour has the same fingerprint; names on many
// events are found through their postings; a count filtered by a resource
// name and a count by resource name agree with the records. All of it
// holds again after compaction merges the segments, where a name on one
// event of each of two segments becomes a name on two events.
#[test]
fn rare_resource_names_are_found_exactly() {
    use cairn_engine::index::rare_fingerprint;
    // Two names with one fingerprint (a birthday search over 32 bits).
    let mut seen = std::collections::HashMap::new();
    let (a, b) = (0u64..)
        .find_map(|i| {
            let name = format!("arn:aws:s3:::bucket/key-{i}");
            seen.insert(rare_fingerprint(name.as_bytes()), name.clone()).map(|other| (other, name))
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), test_options()).unwrap();
    let record = |i: usize, resource: &str| {
        let time = cairn_engine::event::format_event_time((1_767_225_600 + i as i64) * 1000);
        format!(
            r#"{{"eventVersion":"1.08","eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"{}","eventID":"ev-{i}","resources":[{{"ARN":"{resource}","type":"AWS::S3::Object"}}]}}"#,
            if i.is_multiple_of(2) { "GetObject" } else { "PutObject" }
        )
        .into_bytes()
    };
    let mut model = Vec::new();
    for i in 0..400usize {
        let resource = match i {
            7 => a.clone(),
            301 => b.clone(),
            // Once in each of the two segments, in the same hour.
            33 | 333 => "arn:aws:s3:::bucket/twice".to_string(),
            _ if i.is_multiple_of(10) => "arn:aws:s3:::bucket/shared".to_string(),
            _ => format!("arn:aws:s3:::bucket/unique-{i}"),
        };
        model.push(record(i, &resource));
    }
    for half in model.chunks(200) {
        let refs: Vec<&[u8]> = half.iter().map(Vec::as_slice).collect();
        store.append(&refs).unwrap();
        store.seal_now().unwrap();
    }
    let rare_entries = || -> usize {
        std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .map(|e| {
                let seg = cairn_engine::segment::reader::Segment::open(&e.unwrap().path()).unwrap();
                let n = seg.index().unwrap().rare_ordinals(Attr::ResourceName).unwrap().len();
                n
            })
            .sum()
    };
    assert!(rare_entries() >= 2 * 300, "single-event names are in the rare tables ({} entries)", rare_entries());
    let a_last = a.rsplit('/').next().unwrap().to_string();
    let check = |when: &str| {
        for value in [
            a.as_str(),
            b.as_str(),
            "arn:aws:s3:::bucket/shared",
            "arn:aws:s3:::bucket/twice",
            &a_last,
            "unique-5",
            "arn:aws:s3:::bucket/none",
        ] {
            let q = Query { start_ms: None, end_ms: None, filters: vec![(Attr::ResourceName, vec![value.to_string()])] };
            let mut got: Vec<Vec<u8>> = store.lookup(&q, Some(50), None).unwrap().events.into_iter().map(|e| e.record).collect();
            got.sort();
            let mut want: Vec<Vec<u8>> = model.iter().filter(|r| matches(r, &q)).cloned().collect();
            want.sort();
            assert_eq!(got, want, "{when}: lookup by {value}");
            let counted: BTreeMap<String, u64> = store.count(&q, Attr::EventName).unwrap().into_iter().collect();
            let mut expected: BTreeMap<String, u64> = BTreeMap::new();
            for r in &want {
                *expected.entry(parse_event(r, 1 << 20).unwrap().event_name.to_string()).or_default() += 1;
            }
            assert_eq!(counted, expected, "{when}: count filtered by {value}");
        }
        let by: BTreeMap<String, u64> = store.count(&Query::default(), Attr::ResourceName).unwrap().into_iter().collect();
        assert_eq!(by.get(a.as_str()), Some(&1), "{when}");
        assert_eq!(by.get("arn:aws:s3:::bucket/twice"), Some(&2), "{when}");
        assert_eq!(by.get("arn:aws:s3:::bucket/shared"), Some(&40), "{when}");
        assert_eq!(by.get("shared"), Some(&40), "{when}");
        assert_eq!(by.len(), 2 * 360, "{when}: each ARN (356 unique-, 2 key-, twice, shared) and its last element");
    };
    check("sealed");
    let opts = cairn_engine::compact::CompactOptions { all: true, ..Default::default() };
    store.compact(&opts, &mut |_, _| {}).unwrap();
    assert_eq!(store.stats().unwrap().segments, 1, "compacted into one segment");
    assert!(rare_entries() >= 2 * 300, "the merged segment keeps single-event names in its rare table");
    check("compacted");
}
