//! Criterion benchmarks of tamper evidence on the shared benchmark store
//! (CAIRN_BENCH_EVENTS events, default 1,000,000):
//! - an inclusion proof of an event anywhere in the store (a different seq
//!   each iteration, so blocks are read, not cached);
//! - a consistency proof from the store's size at the start to the newest
//!   checkpoint;
//! - signing and recording a checkpoint (what each seal and each timer tick
//!   adds to ingest);
//! - verify of the whole store (throughput in record bytes).
//!
//! Run: `cargo bench --bench integrity` (or with CAIRN_BENCH_EVENTS=10000000).

#[path = "shared/mod.rs"]
mod shared;

use cairn_engine::verify::VerifyOptions;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn integrity(c: &mut Criterion) {
    let (store, n, _) = shared::store();
    let latest = store.checkpoint().unwrap().expect("a checkpoint");
    assert_eq!(latest.checkpoint.size, n);
    let mut g = c.benchmark_group(format!("integrity-{n}"));
    // Seqs spread over the whole store, visited in a scattered order.
    let seqs: Vec<u64> = (0..997u64).map(|i| (i * 7_919 * 1_000_003) % n).collect();
    let mut k = 0usize;
    g.bench_function("inclusion proof, any event", |b| {
        b.iter(|| {
            k = (k + 1) % seqs.len();
            let p = store.prove(seqs[k], Some(&latest)).unwrap();
            assert!(!p.path.is_empty());
        })
    });
    let mut i = 0u64;
    g.bench_function("checkpoint: sign and record (after one new event)", |b| {
        b.iter(|| {
            i += 1;
            let rec = format!(r#"{{"eventVersion":"1.08","eventTime":"2026-01-31T00:00:00Z","eventName":"Bench","eventID":"cp-{n}-{i}"}}"#);
            store.append(&[rec.as_bytes()]).unwrap();
            store.checkpoint().unwrap().unwrap()
        })
    });
    g.bench_function("consistency proof from the benchmark's first checkpoint to the newest", |b| {
        b.iter(|| {
            let p = store.prove_consistency(&latest, None).unwrap();
            assert!(p.new.checkpoint.size > n);
        })
    });
    g.sample_size(10);
    let stats = store.stats().unwrap();
    g.throughput(Throughput::Bytes(stats.record_bytes));
    g.bench_function("verify the whole store", |b| {
        b.iter(|| {
            let r = store.verify(&VerifyOptions::default(), &mut |_, _| {}).unwrap();
            assert!(r.ok(), "{:?}", r.problems.first());
        })
    });
    g.finish();
}

criterion_group!(benches, integrity);
criterion_main!(benches);
