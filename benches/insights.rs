//! Criterion benchmarks of Insights on the shared benchmark store
//! (CAIRN_BENCH_EVENTS events over 30 days, default 1,000,000):
//! - `cairn insights --backfill` over the whole store: every segment's
//!   counters read, every series' 30 days analysed, the Insight events
//!   appended (the first iteration) or found present (the rest);
//! - the daemon's once-a-minute pass: the last 24 hours, with the sealed
//!   segments' counts kept between passes.
//!
//! The cost at ingest is measured by `cairn bench` against `cairn bench
//! --no-insights` (see the closing notes; docs/INSIGHTS.md).
//!
//! Run: `cargo bench --bench insights` (or with CAIRN_BENCH_EVENTS=10000000).

#[path = "shared/mod.rs"]
mod shared;

use cairn_engine::insights::scan::{run, RunOptions, Scanner};
use criterion::{criterion_group, criterion_main, Criterion};

fn insights(c: &mut Criterion) {
    let (store, n, _) = shared::store();
    let mut g = c.benchmark_group(format!("insights-{n}"));
    g.sample_size(10);
    let backfill = RunOptions { backfill: true, ..Default::default() };
    let first = run(&store, &mut Scanner::new(), &backfill).unwrap();
    eprintln!(
        "{} insights over {} minutes; the first backfill appended {:?}",
        first.insights.len(),
        first.end_minute - first.start_minute,
        first.appended
    );
    g.bench_function("backfill over the whole store (a fresh scanner)", |b| {
        b.iter(|| {
            let r = run(&store, &mut Scanner::new(), &backfill).unwrap();
            assert_eq!(r.appended.unwrap().appended, 0, "a rerun appends nothing");
        })
    });
    // cairnd's pass at the minute after the newest event.
    let (_, end) = cairn_engine::insights::scan::store_minutes(&store).unwrap().unwrap();
    let detect = cairn_engine::insights::detect::DetectOptions::default();
    let mut scanner = Scanner::new();
    scanner.pass(&store, end, 1440, 15, &detect).unwrap();
    eprintln!("the daemon's scanner holds {} cells", scanner.cells());
    g.bench_function("daemon pass: the last 24 hours, scanner kept", |b| {
        b.iter(|| scanner.pass(&store, end, 1440, 15, &detect).unwrap().expect("a window to analyse"))
    });
    g.finish();
}

criterion_group!(benches, insights);
criterion_main!(benches);
