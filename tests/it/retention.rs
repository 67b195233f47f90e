//! Retention: whole old segments go, the cut is recorded, and everything
//! kept still verifies and proves, across checkpoints signed before the cut.

use std::path::Path;

use cairn_engine::checkpoint::bundle::ProofBundle;
use cairn_engine::retention::RetentionOptions;
use cairn_engine::verify::{verify_dir, VerifyOptions};
use cairn_engine::{Attr, Error, Options, Query, Store};

use crate::common::{all_events, assert_consistent, cairn_bin, record, test_options};

fn tiny() -> Options {
    Options { segment_bytes: 8 * 1024, ..test_options() }
}

/// `n` records with eventTime on `day` (YYYY-MM-DD), ids prefixed `tag`.
fn day(tag: &str, day: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| record(&format!("{tag}-{i:04}"), &format!("{day}T{:02}:{:02}:00Z", i / 60 % 24, i % 60), "GetObject")).collect()
}

fn fill(store: &Store, recs: &[Vec<u8>]) {
    for c in recs.chunks(7) {
        let refs: Vec<&[u8]> = c.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
}

fn days(n: u64) -> std::time::Duration {
    std::time::Duration::from_secs(n * 86_400)
}

// Goal: retention removes the old segments only (the first holding a
// recent event stops it), records the cut in the manifest and as a
// RetentionCut event; a proof of a removed event says it was pruned;
// proofs of kept events verify against a checkpoint signed before the cut
// and after it; verify reports the pruned range as pruned, not damage;
// reopening works; a second run removes nothing.
#[test]
fn retention_across_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    // The test clock says 2026-01-01: events of 2025-06 are old.
    let old = day("old", "2025-06-01", 333);
    let new = day("new", "2025-12-31", 300);
    fill(&store, &old);
    fill(&store, &new);
    store.seal_now().unwrap();
    let before = store.checkpoint().unwrap().unwrap();
    let key = store.verifiers().pop().unwrap();
    // Just written: a policy that also wants the data stored 30 days keeps it.
    let policy = store.retain(&RetentionOptions { older_than: days(30), dry_run: false, stored_at_least: true }).unwrap();
    assert_eq!(policy.segments_removed, 0);
    let dry = store.retain(&RetentionOptions { older_than: days(30), dry_run: true, stored_at_least: false }).unwrap();
    assert!(dry.segments_removed > 0 && dry.event_seq.is_none());
    assert_eq!(all_events(&store).len(), 633, "a dry run removes nothing");
    let r = store.retain(&RetentionOptions { older_than: days(30), dry_run: false, stored_at_least: false }).unwrap();
    assert_eq!(r.segments_removed, dry.segments_removed);
    let cut = r.min_retained_seq;
    assert!(cut > 0 && cut <= 333, "cut at {cut}");
    assert!(r.events_removed == cut);
    let kept = all_events(&store);
    assert_eq!(kept.first().unwrap().seq, cut);
    assert_eq!(kept.len() as u64, 633 - cut + 1, "kept events and the RetentionCut event");
    let seq_of_cut = r.event_seq.unwrap();
    let cut_event: serde_json::Value = serde_json::from_slice(&kept.last().unwrap().record).unwrap();
    assert_eq!(cut_event["eventName"], "RetentionCut");
    assert_eq!(cut_event["responseElements"]["minRetainedSeq"], cut);
    assert_eq!(kept.last().unwrap().seq, seq_of_cut);
    let q = Query { start_ms: None, end_ms: None, filters: vec![(Attr::EventName, vec!["RetentionCut".into()])] };
    assert_eq!(store.lookup(&q, None, None).unwrap().events.len(), 1);
    assert!(store.get("old-0000").unwrap().is_empty());
    match store.prove(0, Some(&before)) {
        Err(Error::Pruned { seq: 0, min_retained }) => assert_eq!(min_retained, cut),
        other => panic!("expected Pruned, got {other:?}"),
    }
    let after = store.checkpoint().unwrap().unwrap();
    for seq in [cut, cut + 1, cut + 50, 632] {
        for cp in [&before, &after] {
            let p = store.prove(seq, Some(cp)).unwrap();
            assert!(ProofBundle::from_proof(&p).unwrap().verify(std::slice::from_ref(&key)).is_ok(), "seq {seq}");
        }
    }
    assert!(store.prove_consistency(&before, Some(&after)).is_ok());
    store.close().unwrap();
    let v = verify_dir(dir.path(), &VerifyOptions { checkpoints: vec![before.clone()], public_keys: vec![key.clone()] }, &mut |_, _| {})
        .unwrap();
    assert!(v.ok(), "{:#?}", v.problems);
    assert_eq!(v.pruned_below, cut);
    let store = Store::open(dir.path(), tiny()).unwrap();
    let again = store.retain(&RetentionOptions { older_than: days(30), dry_run: false, stored_at_least: false }).unwrap();
    assert_eq!((again.segments_removed, again.event_seq), (0, None));
    assert_eq!(assert_consistent_from(&store, cut), 633 - cut as usize + 1);
}

/// Like `assert_consistent`, for a store whose seqs start at `cut`.
fn assert_consistent_from(store: &Store, cut: u64) -> usize {
    let events = all_events(store);
    assert!(events.iter().enumerate().all(|(i, e)| e.seq == cut + i as u64), "seqs contiguous from the cut");
    events.len()
}

// Goal: when every sealed segment expires the store still opens (its tree
// continues from the tiles), takes new events, and verifies; a segment
// whose records claim a time far in the future is judged by its ingest
// time and expires too.
#[test]
fn retention_of_everything_and_of_future_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    fill(&store, &day("past", "2025-01-01", 100));
    fill(&store, &day("future", "2099-01-01", 100));
    store.seal_now().unwrap();
    let before = store.checkpoint().unwrap().unwrap();
    // The clock says 2026-01-01: everything ingested is then 1 year old.
    store.close().unwrap();
    let later = Options {
        clock: Some(std::sync::Arc::new(|| 1_830_297_600_000u64)), // 2028-01-01
        ..tiny()
    };
    let store = Store::open(dir.path(), later.clone()).unwrap();
    let r = store.retain(&RetentionOptions { older_than: days(365), dry_run: false, stored_at_least: true }).unwrap();
    assert_eq!(r.min_retained_seq, 200, "the 2099 events expire by their ingest time");
    store.close().unwrap();
    let store = Store::open(dir.path(), later.clone()).unwrap();
    fill(&store, &day("after", "2027-12-31", 50));
    let p = store.prove(210, Some(&store.checkpoint().unwrap().unwrap())).unwrap();
    assert_eq!(p.event.seq, 210);
    store.close().unwrap();
    let v = verify_dir(dir.path(), &VerifyOptions { checkpoints: vec![before], public_keys: vec![] }, &mut |_, _| {}).unwrap();
    assert!(v.ok(), "{:#?}", v.problems);
    let store = Store::open(dir.path(), later).unwrap();
    assert_eq!(assert_consistent_from(&store, 200), 51);
}

// Goal: a retention hold (what delivery sets at its cursor) keeps every
// segment holding an event at or after its seq, however old; the report
// names it; moving the hold on lets retention remove them; a bad name is
// refused and the hold survives a reopen.
#[test]
fn retention_hold_keeps_undelivered_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    fill(&store, &day("old", "2025-01-01", 300));
    store.seal_now().unwrap();
    assert!(store.set_retention_hold("Deliver!", Some(1)).is_err());
    store.set_retention_hold("deliver", Some(120)).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    assert_eq!(store.retention_holds().unwrap(), vec![("deliver".to_string(), 120)]);
    let opts = RetentionOptions { older_than: days(30), dry_run: false, stored_at_least: false };
    let r = store.retain(&opts).unwrap();
    assert!(r.min_retained_seq <= 120 && r.segments_removed > 0, "{r:?}");
    assert_eq!(r.held_by, Some(("deliver".to_string(), 120)));
    assert!(store.event_at(120).unwrap().is_some(), "the held event is kept");
    store.set_retention_hold("deliver", None).unwrap();
    let r = store.retain(&opts).unwrap();
    assert_eq!((r.min_retained_seq, r.held_by), (300, None), "released: everything old goes");
}

// Goal: kill -9 of `cairn retention` at 20 random points: the store opens,
// holds either everything or exactly the events after the recorded cut (a
// segment boundary), each byte-exact, and verifies.
#[test]
fn kill_9_during_retention() {
    let base = tempfile::tempdir().unwrap();
    {
        let store = Store::open(base.path(), tiny()).unwrap();
        fill(&store, &day("old", "2025-03-01", 600));
        fill(&store, &day("new", "2025-12-31", 60));
        store.seal_now().unwrap();
    }
    let original = {
        let s = Store::open(base.path(), tiny()).unwrap();
        assert_consistent(&s)
    };
    let bin = cairn_bin();
    let run = |dir: &Path| {
        std::process::Command::new(&bin)
            .args(["--quiet", "--data-dir"])
            .arg(dir)
            .args(["retention", "--older-than", "30d"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let probe = tempfile::tempdir().unwrap();
    crate::golden::copy_dir(base.path(), probe.path());
    let t = std::time::Instant::now();
    assert!(run(probe.path()).wait().unwrap().success());
    let full = t.elapsed().as_millis().max(20) as u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        crate::golden::copy_dir(base.path(), dir.path());
        let mut child = run(dir.path());
        crate::common::kill_9_after_random_delay(&mut child, &mut seed, full + full / 4);
        let store = Store::open(dir.path(), tiny()).unwrap_or_else(|e| panic!("kill {i}: {e}"));
        let events = all_events(&store);
        // The CLI runs on the real clock: every test event may be expired.
        let first = cairn_engine::manifest::Manifest::load(&cairn_engine::fs::RealFs, dir.path()).unwrap().unwrap().min_retained_seq;
        let originals: Vec<_> = events.iter().filter(|e| e.seq < original.len() as u64).collect();
        assert!(originals.iter().all(|e| e.record == original[e.seq as usize].record), "kill {i}: bytes differ");
        assert_eq!(originals.len() as u64, original.len() as u64 - first, "kill {i}: events after the cut are all there");
        store.close().unwrap();
        let v = verify_dir(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
        assert!(v.ok(), "kill {i}: {:#?}", v.problems);
    }
}
