//! Criterion benchmarks of each query kind on a store of generated events
//! spread over 30 days (CAIRN_BENCH_EVENTS, default 1,000,000; the store is
//! built once under target/ and reused), for each generator profile
//! (standard and diverse; CAIRN_BENCH_PROFILE picks one):
//! - one-attribute lookup (the busiest user name) over 7 days returning 50
//!   events (warm);
//! - eventID lookup;
//! - count grouped by EventName over 30 days;
//! - export of every event (throughput in record bytes).
//!
//! Run: `cargo bench --bench query` (or with CAIRN_BENCH_EVENTS=10000000).

use cairn_engine::{Attr, Order, Query};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "shared/mod.rs"]
mod shared;
use shared::{store_of, DAY_MS, START_MS};

fn queries(c: &mut Criterion) {
    let profiles = match std::env::var("CAIRN_BENCH_PROFILE") {
        Ok(_) => vec![shared::env_profile()],
        Err(_) => vec![cairn_tools::gen::Profile::Standard, cairn_tools::gen::Profile::Diverse],
    };
    for p in profiles {
        queries_of(c, p);
    }
}

fn queries_of(c: &mut Criterion, profile: cairn_tools::gen::Profile) {
    let (store, n, id) = store_of(profile);
    let stats = store.stats().unwrap();
    let name = profile.name();
    eprintln!("{name} store: {n} events, {} bytes on disk, {:.1} bytes/event", stats.disk_bytes, stats.disk_bytes as f64 / n as f64);
    let end = START_MS + 30 * DAY_MS;
    let mut g = c.benchmark_group(format!("query-{name}-{n}"));
    let all = Query { start_ms: Some(START_MS), end_ms: Some(end), filters: vec![] };
    let busiest = store.count(&all, Attr::Username).unwrap().first().map(|(v, _)| v.clone()).unwrap_or_default();
    let week = Query { start_ms: Some(end - 7 * DAY_MS), end_ms: Some(end), filters: vec![(Attr::Username, vec![busiest])] };
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
