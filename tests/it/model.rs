//! Property test: random batches (valid and invalid records, random sizes,
//! times and ids), reopens and seals, against a simple in-memory model (a
//! `Vec` of stored records).

use cairn_engine::{Options, Outcome, Store};
use proptest::prelude::*;

use crate::common::{assert_consistent, test_options};

#[derive(Debug, Clone)]
enum Op {
    /// A batch: (valid?, id number, second of the day, padding bytes)
    Append(Vec<(bool, u8, u32, u16)>),
    Reopen,
    Seal,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((prop::bool::weighted(0.9), 0u8..20, 0u32..86_400, 0u16..3000), 1..40).prop_map(Op::Append),
        1 => Just(Op::Reopen),
        1 => Just(Op::Seal),
    ]
}

fn make_record(valid: bool, id: u8, second: u32, pad: u16) -> Vec<u8> {
    if !valid {
        return format!("{{\"eventID\":\"id-{id}\",\"eventTime\":\"never\"}}").into_bytes();
    }
    format!(
        r#"{{"eventTime":"2026-03-01T{:02}:{:02}:{:02}Z","eventName":"Op{id}","eventID":"id-{id}","pad":"{}"}}"#,
        second / 3600,
        second / 60 % 60,
        second % 60,
        "x".repeat(pad as usize)
    )
    .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    // Goal: whatever the sequence of appends, reopens and seals (with tiny
    // segments so rolls happen often), the store holds exactly the model's
    // records at the model's seqs, point lookups agree, and the tree head
    // matches the stored entries. The id-filter budget varies from none
    // (every id lookup reads id tables) to room for some or all segments.
    #[test]
    fn store_matches_model(
        ops in prop::collection::vec(op(), 1..25),
        segment_kib in 2u64..64,
        block in 128usize..8192,
        id_filter_bytes in prop::sample::select(vec![0usize, 100, 32 << 20]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = || Options { segment_bytes: segment_kib * 1024, block_bytes: block, id_filter_bytes, ..test_options() };
        let mut store = Store::open(dir.path(), opts()).unwrap();
        let mut model: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            match op {
                Op::Append(batch) => {
                    let recs: Vec<Vec<u8>> = batch.iter().map(|&(v, id, s, p)| make_record(v, id, s, p)).collect();
                    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
                    let out = store.append(&refs).unwrap();
                    for ((valid, ..), (rec, o)) in batch.iter().zip(recs.iter().zip(out)) {
                        if !*valid {
                            prop_assert!(matches!(&o, Outcome::Rejected(r) if r.code() == "InvalidEventTime"));
                        } else if let Some(first) = model.iter().position(|m| m == rec) {
                            // Same eventID, same bytes: idempotent.
                            prop_assert_eq!(o, Outcome::Duplicate(first as u64));
                        } else {
                            prop_assert_eq!(o, Outcome::Stored(model.len() as u64));
                            model.push(rec.clone());
                        }
                    }
                }
                Op::Reopen => {
                    store.close().unwrap();
                    store = Store::open(dir.path(), opts()).unwrap();
                }
                Op::Seal => store.seal_now().unwrap(),
            }
        }
        let events = assert_consistent(&store);
        let stored: Vec<Vec<u8>> = events.iter().map(|e| e.record.clone()).collect();
        prop_assert_eq!(&stored, &model);
        for id in [0u8, 7, 19] {
            let key = format!("id-{id}");
            let want: Vec<u64> = model.iter().enumerate().filter(|(_, r)| String::from_utf8_lossy(r).contains(&format!("\"eventID\":\"{key}\""))).map(|(i, _)| i as u64).collect();
            let got: Vec<u64> = store.get(&key).unwrap().iter().map(|e| e.seq).collect();
            prop_assert_eq!(got, want);
        }
        store.close().unwrap();
        let reopened = Store::open(dir.path(), opts()).unwrap();
        let again: Vec<Vec<u8>> = assert_consistent(&reopened).into_iter().map(|e| e.record).collect();
        prop_assert_eq!(again, model);
    }
}
