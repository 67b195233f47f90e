//! Criterion benchmarks of each query kind on a store of generated events
//! spread over 30 days (CAIRN_BENCH_EVENTS, default 1,000,000; the store is
//! built once under target/ and reused):
//! - one-attribute lookup over 7 days returning 50 events (warm);
//! - eventID lookup;
//! - count grouped by EventName over 30 days;
//! - export of every event (throughput in record bytes).
//!
//! Run: `cargo bench --bench query` (or with CAIRN_BENCH_EVENTS=10000000).

use std::path::PathBuf;

use cairn_engine::{Attr, Options, Order, Query, Store};
use cairn_tools::gen::{GenOptions, Generator};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const DAY_MS: i64 = 86_400_000;
const START_MS: i64 = 1_767_225_600_000;

fn store() -> (Store, u64, String) {
    let n: u64 = std::env::var("CAIRN_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/bench-store-{n}"));
    let rate = n as f64 / (30.0 * 86_400.0);
    let mut gen = Generator::new(GenOptions { seed: 11, start_ms: START_MS, rate_per_sec: rate, record_bytes: None });
    let mut sample_id = String::new();
    let ready = dir.join("READY").exists();
    let store = Store::open(&dir, Options::default()).unwrap();
    if !ready {
        let mut done = 0u64;
        while done < n {
            let batch: Vec<Vec<u8>> = (0..(n - done).min(1000))
                .map(|_| {
                    let mut r = Vec::new();
                    gen.next_record(&mut r);
                    r
                })
                .collect();
            let refs: Vec<&[u8]> = batch.iter().map(|r| r.as_slice()).collect();
            store.append(&refs).unwrap();
            done += batch.len() as u64;
        }
        store.seal_now().unwrap();
        std::fs::write(dir.join("READY"), b"").unwrap();
    }
    // An eventID from the middle of the data.
    let q = Query { start_ms: Some(START_MS + 15 * DAY_MS), end_ms: Some(START_MS + 16 * DAY_MS), filters: vec![] };
    let page = store.lookup(&q, Some(1), None).unwrap();
    if let Some(e) = page.events.first() {
        let v: serde_json::Value = serde_json::from_slice(&e.record).unwrap();
        sample_id = v["eventID"].as_str().unwrap_or_default().to_string();
    }
    (store, n, sample_id)
}

fn queries(c: &mut Criterion) {
    let (store, n, id) = store();
    let stats = store.stats().unwrap();
    eprintln!("store: {n} events, {} bytes on disk, {:.1} bytes/event", stats.disk_bytes, stats.disk_bytes as f64 / n as f64);
    let end = START_MS + 30 * DAY_MS;
    let mut g = c.benchmark_group(format!("query-{n}"));
    let week = Query { start_ms: Some(end - 7 * DAY_MS), end_ms: Some(end), filters: vec![(Attr::Username, vec!["alice".into()])] };
    g.bench_function("lookup Username over 7 days, 50 events", |b| {
        b.iter(|| {
            let p = store.lookup(&week, Some(50), None).unwrap();
            assert_eq!(p.events.len(), 50);
        })
    });
    g.bench_function("eventID lookup", |b| {
        b.iter(|| {
            assert_eq!(store.get(&id).unwrap().len(), 1);
        })
    });
    let month = Query { start_ms: Some(START_MS), end_ms: Some(end), filters: vec![] };
    g.bench_function("count by EventName over 30 days", |b| {
        b.iter(|| {
            assert!(!store.count(&month, Attr::EventName).unwrap().is_empty());
        })
    });
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stats.record_bytes));
    g.bench_function("export all, newest first", |b| {
        b.iter(|| {
            let mut k = 0u64;
            store
                .export(&Query::default(), Order::NewestFirst, |_| {
                    k += 1;
                    true
                })
                .unwrap();
            assert_eq!(k, n);
        })
    });
    g.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
