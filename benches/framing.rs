//! Criterion benchmark of ingest framing (`cairn_engine::framing::Splitter`)
//! on 20,000 generated CloudTrail records: NDJSON, one-line log files
//! (`{"Records":[...]}`, 1,000 records each, as CloudTrail delivers), and
//! pretty-printed records; and, as the baseline, splitting the same NDJSON
//! at line breaks only (what the reader did before it checked syntax).
//! Run: `cargo bench --bench framing`.

use std::io::BufRead;

use cairn_engine::framing::Splitter;
use cairn_engine::limits::RECORD_BYTES_MAX;
use cairn_tools::gen::{GenOptions, Generator};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut g = Generator::new(GenOptions { seed: 11, ..GenOptions::default() });
    let records: Vec<Vec<u8>> = (0..20_000)
        .map(|_| {
            let mut r = Vec::new();
            g.next_record(&mut r);
            r
        })
        .collect();
    let ndjson: Vec<u8> = records.iter().flat_map(|r| [r.as_slice(), b"\n"].concat()).collect();
    let mut log_files = Vec::new();
    for chunk in records.chunks(1000) {
        log_files.extend_from_slice(b"{\"Records\":[");
        log_files.extend_from_slice(&chunk.join(&b","[..]));
        log_files.extend_from_slice(b"]}\n");
    }
    let pretty: Vec<u8> = records
        .iter()
        .flat_map(|r| {
            let v: serde_json::Value = serde_json::from_slice(r).unwrap();
            [serde_json::to_vec_pretty(&v).unwrap(), b"\n".to_vec()].concat()
        })
        .collect();
    vec![("ndjson", ndjson), ("log files", log_files), ("pretty", pretty)]
}

fn framing(c: &mut Criterion) {
    let inputs = inputs();
    let mut grp = c.benchmark_group("framing");
    grp.sample_size(20);
    for (name, input) in &inputs {
        grp.throughput(Throughput::Bytes(input.len() as u64));
        grp.bench_function(format!("splitter, {name}"), |b| {
            b.iter(|| {
                let n = Splitter::new(std::io::BufReader::with_capacity(1 << 20, input.as_slice()), RECORD_BYTES_MAX).count();
                assert_eq!(n, 20_000);
            })
        });
    }
    let ndjson = &inputs[0].1;
    grp.throughput(Throughput::Bytes(ndjson.len() as u64));
    grp.bench_function("line breaks only, ndjson (baseline)", |b| {
        b.iter(|| {
            let mut r = std::io::BufReader::with_capacity(1 << 20, ndjson.as_slice());
            let mut line = Vec::new();
            let mut n = 0;
            while r.read_until(b'\n', &mut line).unwrap() > 0 {
                let _owned = line.to_vec();
                line.clear();
                n += 1;
            }
            assert_eq!(n, 20_000);
        })
    });
    grp.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
