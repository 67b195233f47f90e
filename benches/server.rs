//! Criterion benchmark of a lookup's round trip through cairnd over
//! loopback, against the same lookup in the engine, on the same store of
//! 200,000 generated events (one week): the protocol's overhead per query.
//! Run: `cargo bench --bench server`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cairn_engine::{Attr, Options, Query, Store};
use cairn_server::client::Client;
use cairn_server::daemon::{start, Config};
use cairn_server::protocol::WireQuery;
use cairn_tools::gen::{GenOptions, Generator};
use criterion::{criterion_group, criterion_main, Criterion};

fn build(dir: &std::path::Path) {
    let store = Store::open(dir, Options::default()).unwrap();
    let mut g = Generator::new(GenOptions { seed: 4, rate_per_sec: 200_000.0 / (7.0 * 86_400.0), ..GenOptions::default() });
    for _ in 0..200 {
        let batch: Vec<Vec<u8>> = (0..1000)
            .map(|_| {
                let mut r = Vec::new();
                g.next_record(&mut r);
                r
            })
            .collect();
        let refs: Vec<&[u8]> = batch.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
    store.seal_now().unwrap();
    store.close().unwrap();
}

fn round_trip(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let q = Query { filters: vec![(Attr::Username, vec!["alice".into()])], ..Query::default() };
    let mut g = c.benchmark_group("lookup-round-trip");
    {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        g.bench_function("engine: Username, 50 events", |b| {
            b.iter(|| assert_eq!(store.lookup(&q, Some(50), None).unwrap().events.len(), 50))
        });
        store.close().unwrap();
    }
    let cfg = Config { data_dir: dir.path().to_path_buf(), listen: "127.0.0.1:0".into(), ..Config::default() };
    let running = start(cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    let mut client = Client::connect(&running.addr.to_string(), token.trim()).unwrap();
    let wq = WireQuery { filters: vec![("Username".into(), vec!["alice".into()])], ..WireQuery::default() };
    g.bench_function("cairnd over loopback: Username, 50 events", |b| {
        b.iter(|| assert_eq!(client.lookup(wq.clone(), Some(50), None).unwrap().0.len(), 50))
    });
    g.finish();
    drop(client);
    running.stop().unwrap();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
