//! Compaction: hash-neutral merges of small segments, with ingest and
//! queries running meanwhile, and kill -9 at random points.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn_engine::compact::CompactOptions;
use cairn_engine::verify::{verify_dir, VerifyOptions};
use cairn_engine::{Attr, Options, Order, Query, Store};
use cairn_tools::gen::GenOptions;

use crate::common::{all_events, assert_consistent, cairn_bin, fill, generated_with, test_options};

/// Tiny segments: a store built from many small commits.
fn tiny() -> Options {
    Options { segment_bytes: 24 * 1024, ..test_options() }
}

fn generated(n: usize, seed: u64) -> Vec<Vec<u8>> {
    generated_with(GenOptions { seed, ..GenOptions::default() }, n)
}

fn small_all() -> CompactOptions {
    CompactOptions { small_bytes: u64::MAX, target_bytes: 1 << 20, block_bytes: 64 * 1024, ..CompactOptions::default() }
}

fn answers(store: &Store) -> (Vec<(String, u64)>, Vec<u64>, usize) {
    let q = Query { start_ms: None, end_ms: None, filters: vec![(Attr::Username, vec!["alice".into()])] };
    let counts = store.count(&Query::default(), Attr::EventName).unwrap();
    let page: Vec<u64> = store.lookup(&q, Some(200), None).unwrap().events.iter().map(|e| e.seq).collect();
    let mut n = 0;
    store
        .export(&Query::default(), Order::OldestFirst, |_| {
            n += 1;
            true
        })
        .unwrap();
    (counts, page, n)
}

// Goal: compacting a store of many tiny segments keeps every event's bytes
// and seq, every query answer, point lookups, and every proof issued
// before (they still verify, and proving again gives the same path); it
// leaves fewer segments and fewer bytes; verify passes before and after
// reopening. Then once more with a dictionary at a higher level.
#[test]
fn compaction_is_hash_neutral_and_smaller() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    let recs = generated(3000, 21);
    fill(&store, &recs, 25);
    store.seal_now().unwrap();
    let before_events = all_events(&store);
    let before_answers = answers(&store);
    let cp = store.checkpoint().unwrap().unwrap();
    let key = store.verifiers().pop().unwrap();
    let proofs: Vec<_> = [0u64, 777, 1500, 2999].iter().map(|&s| store.prove(s, Some(&cp)).unwrap()).collect();
    let id = {
        let v: serde_json::Value = serde_json::from_slice(&recs[1234]).unwrap();
        v["eventID"].as_str().unwrap().to_string()
    };
    let stats0 = store.stats().unwrap();
    assert!(stats0.segments > 40, "{} segments", stats0.segments);

    let dry = store.compact(&CompactOptions { dry_run: true, ..small_all() }, &mut |_, _| {}).unwrap();
    assert!(dry.dry_run && !dry.runs.is_empty());
    assert_eq!(store.stats().unwrap().segments, stats0.segments, "a dry run changes nothing");

    let r = store.compact(&small_all(), &mut |_, _| {}).unwrap();
    let stats1 = store.stats().unwrap();
    assert_eq!(r.segments_after, stats1.segments);
    assert!(stats1.segments < stats0.segments / 4, "{} -> {} segments", stats0.segments, stats1.segments);
    assert!(stats1.segment_bytes < stats0.segment_bytes, "{} -> {} bytes", stats0.segment_bytes, stats1.segment_bytes);
    let check = |store: &Store| {
        assert_eq!(all_events(store), before_events);
        assert_eq!(answers(store), before_answers);
        assert_eq!(store.get(&id).unwrap()[0].record, recs[1234]);
        for p in &proofs {
            let again = store.prove(p.event.seq, Some(&cp)).unwrap();
            assert_eq!(again.path, p.path);
            let b = cairn_engine::checkpoint::bundle::ProofBundle::from_proof(p).unwrap();
            assert!(b.verify(std::slice::from_ref(&key)).is_ok());
        }
        assert_consistent(store);
    };
    check(&store);
    store.close().unwrap();
    let report =
        verify_dir(dir.path(), &VerifyOptions { checkpoints: vec![cp.clone()], public_keys: vec![key.clone()] }, &mut |_, _| {}).unwrap();
    assert!(report.ok(), "{:#?}", report.problems);
    let store = Store::open(dir.path(), tiny()).unwrap();
    check(&store);
    // Again, every segment, with a dictionary at level 6.
    // (One merged segment: each segment stores its own ~110 KB dictionary.)
    let r = store
        .compact(&CompactOptions { all: true, dictionary: true, zstd_level: 6, target_bytes: 1 << 30, ..small_all() }, &mut |_, _| {})
        .unwrap();
    assert!(r.dictionary_bytes > 0);
    let stats2 = store.stats().unwrap();
    assert!(stats2.segment_bytes < stats1.segment_bytes, "{} -> {} bytes", stats1.segment_bytes, stats2.segment_bytes);
    check(&store);
    // Ingest goes on after compaction: seqs continue and the chain holds.
    fill(&store, &generated(200, 22), 50);
    store.seal_now().unwrap();
    store.close().unwrap();
    let report = verify_dir(dir.path(), &VerifyOptions { checkpoints: vec![cp], public_keys: vec![key] }, &mut |_, _| {}).unwrap();
    assert!(report.ok(), "{:#?}", report.problems);
    assert_eq!(report.events, 3200);
}

// Goal: compaction while appenders and readers run: nothing lost, nothing
// duplicated, and no export ever sees a gap in the seqs it returns.
#[test]
fn compaction_concurrent_with_ingest_and_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), tiny()).unwrap());
    fill(&store, &generated(2000, 31), 20);
    store.seal_now().unwrap();
    let stop = AtomicBool::new(false);
    let extra = generated(2000, 32);
    std::thread::scope(|s| {
        let st = &store;
        let writer = s.spawn(|| fill(st, &extra, 10));
        let stop = &stop;
        let reader = s.spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) || runs == 0 {
                let mut seqs = Vec::new();
                st.export(&Query::default(), Order::OldestFirst, |e| {
                    seqs.push(e.seq);
                    true
                })
                .unwrap();
                seqs.sort_unstable();
                assert!(seqs.iter().enumerate().all(|(i, &s)| s == i as u64), "an export saw a gap or a duplicate");
                runs += 1;
            }
            runs
        });
        for _ in 0..3 {
            st.compact(&small_all(), &mut |_, _| {}).unwrap();
        }
        writer.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    let store = Arc::try_unwrap(store).ok().unwrap();
    let events = assert_consistent(&store);
    assert_eq!(events.len(), 4000);
    store.close().unwrap();
    assert!(verify_dir(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap().ok());
}

fn copy(from: &Path, to: &Path) {
    crate::golden::copy_dir(from, to);
}

// Goal: kill -9 of `cairn compact` at 24 random points: the store opens
// with the old or the new files, every event is there once with its bytes,
// leftovers are gone, and verify passes.
#[test]
fn kill_9_during_compaction() {
    let base = tempfile::tempdir().unwrap();
    {
        let store = Store::open(base.path(), tiny()).unwrap();
        fill(&store, &generated(2000, 41), 20);
        store.seal_now().unwrap();
    }
    let want: Vec<Vec<u8>> = {
        let s = Store::open(base.path(), tiny()).unwrap();
        all_events(&s).into_iter().map(|e| e.record).collect()
    };
    // How long an uninterrupted compaction takes, to spread the kills
    // (the binaries are built first: that is not part of it).
    let bin = cairn_bin();
    let compact = |dir: &Path| {
        let mut c = std::process::Command::new(&bin);
        c.args(["--quiet", "--data-dir"])
            .arg(dir)
            .args(["compact", "--small-mib", "1000", "--target-mib", "1", "--block-kib", "64"])
            .stdout(std::process::Stdio::null());
        c
    };
    let probe = tempfile::tempdir().unwrap();
    copy(base.path(), probe.path());
    let t = std::time::Instant::now();
    let st = compact(probe.path()).status().unwrap();
    assert!(st.success());
    let full = t.elapsed().as_millis().max(20) as u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..24 {
        let dir = tempfile::tempdir().unwrap();
        copy(base.path(), dir.path());
        let mut child = compact(dir.path()).spawn().unwrap();
        crate::common::kill_9_after_random_delay(&mut child, &mut seed, full + full / 4);
        let store = Store::open(dir.path(), tiny()).unwrap_or_else(|e| panic!("kill {i}: open failed: {e}"));
        let got: Vec<Vec<u8>> = assert_consistent(&store).into_iter().map(|e| e.record).collect();
        assert_eq!(got, want, "kill {i}: events differ");
        store.close().unwrap();
        let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "kill {i}: {leftovers:?}");
        let r = verify_dir(dir.path(), &VerifyOptions::default(), &mut |_, _| {}).unwrap();
        assert!(r.ok(), "kill {i}: {:#?}", r.problems);
    }
}

// Goal: a block size whose payloads readers would refuse is refused before
// anything is written, with the limit named; the store is unchanged.
#[test]
fn compaction_refuses_blocks_readers_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), tiny()).unwrap();
    fill(&store, &generated(300, 3), 100);
    store.seal_now().unwrap();
    let before = store.stats().unwrap();
    for block_bytes in [0, cairn_engine::compact::BLOCK_BYTES_MAX + 1, 64 << 20] {
        let opts = CompactOptions { block_bytes, ..small_all() };
        let e = store.compact(&opts, &mut |_, _| {}).unwrap_err().to_string();
        assert!(e.contains("between 1 byte and 32 MiB"), "{block_bytes}: {e}");
    }
    let after = store.stats().unwrap();
    assert_eq!((after.segments, after.root), (before.segments, before.root));
}
