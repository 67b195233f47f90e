//! Criterion benchmarks of the append path: record validation alone, and
//! `Store::append` of 1,000-event batches under each durability policy.
//! Run: `cargo bench --bench append`.

use cairn_engine::{parse_event, Durability, Options, Store};
use cairn_tools::gen::{GenOptions, Generator};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn records(n: usize) -> Vec<Vec<u8>> {
    let mut g = Generator::new(GenOptions { seed: 3, ..GenOptions::default() });
    (0..n)
        .map(|_| {
            let mut r = Vec::new();
            g.next_record(&mut r);
            r
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let recs = records(1000);
    let bytes: usize = recs.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("1000 generated records", |b| {
        b.iter(|| {
            for r in &recs {
                criterion::black_box(parse_event(r, 256 * 1024).is_ok());
            }
        })
    });
    g.finish();
}

fn append(c: &mut Criterion) {
    let recs = records(1000);
    let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(refs.len() as u64));
    g.sample_size(30);
    for d in [Durability::Never, Durability::Batch] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options { durability: d, ..Options::default() }).unwrap();
        g.bench_function(format!("batch of 1000, durability {d:?}"), |b| {
            b.iter_batched(|| (), |()| store.append(&refs).unwrap(), BatchSize::PerIteration)
        });
        store.close().unwrap();
    }
    g.finish();
}

criterion_group!(benches, parse, append);
criterion_main!(benches);
