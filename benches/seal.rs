//! Criterion benchmark of sealing: sorting a memtable of 20,000 generated
//! events by time and writing it as zstd blocks at the default level, for
//! each data profile, with records split into fields (what a seal does
//! while it keeps up with ingest) and kept whole (what it does when it
//! falls behind). Run: `cargo bench --bench seal`.

use cairn_engine::event::{id_fingerprint, parse_event};
use cairn_engine::index::terms;
use cairn_engine::memtable::{EventMeta, Memtable};
use cairn_engine::merkle::{leaf_hash, Frontier};
use cairn_engine::segment::writer::{build_segment, SealInput};
use cairn_engine::Options;
use cairn_tools::gen::{GenOptions, Generator, Profile};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn memtable(profile: Profile) -> (Memtable, Frontier) {
    let mut g = Generator::new(GenOptions { seed: 5, profile, ..GenOptions::default() });
    let mut mem = Memtable::new(0);
    let mut frontier = Frontier::new();
    for _ in 0..20_000 {
        let mut r = Vec::new();
        g.next_record(&mut r);
        let e = parse_event(&r, 256 * 1024).unwrap();
        let leaf = leaf_hash(1, &r);
        frontier.push(leaf, |_, _, _| {});
        let meta =
            EventMeta { ingest_ms: 1, time_ms: e.time_ms, leaf, id_fp: e.event_id.as_deref().map(|id| id_fingerprint(id.as_bytes())) };
        mem.push_copy(meta, &r, terms(&e).iter().map(|(a, v)| (*a, v.as_ref())));
    }
    (mem, frontier)
}

fn seal(c: &mut Criterion) {
    let opts = Options::default();
    for profile in [Profile::Standard, Profile::Diverse] {
        let (mem, frontier) = memtable(profile);
        let mut grp = c.benchmark_group(format!("seal/{}", profile.name()));
        grp.throughput(Throughput::Bytes(mem.raw_bytes));
        grp.sample_size(10);
        for split in [true, false] {
            let what = if split { "field by field" } else { "records whole" };
            grp.bench_function(format!("20000 events, zstd level {}, {what}", opts.zstd_level), |b| {
                b.iter(|| {
                    let input = SealInput {
                        mem: &mem,
                        prev_segment_hash: [0; 32],
                        frontier_at_end: &frontier,
                        zstd_level: opts.zstd_level,
                        block_bytes: opts.block_bytes,
                        counters: true,
                        split_blocks: &|| split,
                    };
                    let (bytes, _) = build_segment(&input).unwrap();
                    criterion::black_box(bytes.len())
                })
            });
        }
        grp.finish();
    }
}

criterion_group!(benches, seal);
criterion_main!(benches);
