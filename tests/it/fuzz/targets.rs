//! One fuzz target per decoder of bytes from disk or the network. Each
//! states what it feeds and what must hold: no panic, no allocation over
//! the cap, and where a decoder makes a promise (the splitter's records are
//! whole objects, whatever the chunking), that promise.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cairn_engine::checkpoint::bundle::{ConsistencyBundle, ProofBundle};
use cairn_engine::checkpoint::{history, keys, Note, SignedCheckpoint, Verifier};
use cairn_engine::framing::{Piece, Splitter};
use cairn_engine::limits::RECORD_BYTES_MAX;
use cairn_engine::manifest::Manifest;
use cairn_engine::segment::reader::Segment;
use cairn_engine::verify::{verify_dir, VerifyOptions};
use cairn_engine::{parse_event, Attr, Options, Query, Store};
use cairn_server::protocol::{
    read_frame, write_frame, Hello, HelloReply, Request, RequestBody, Response, ResponseBody, MAGIC, PROTOCOL_VERSION,
};

use super::{run, Seed, Target};
use crate::common::fixtures_dir;

const MIB: usize = 1 << 20;

/// The golden store fixtures, every version.
fn golden_dirs() -> Vec<(String, PathBuf)> {
    ["v1", "v2", "v3", "v4", "v5", "v8"].iter().map(|v| (v.to_string(), fixtures_dir().join("golden").join(v).join("data"))).collect()
}

/// Every file of the golden stores, labelled `vN/relative/path`.
fn golden_files(filter: impl Fn(&Path) -> bool) -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (v, dir) in golden_dirs() {
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if filter(&p) {
                    let rel = p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
                    seeds.push(Seed::new(format!("{v}/{rel}"), std::fs::read(&p).unwrap()));
                }
            }
        }
    }
    seeds.sort_by(|a, b| a.label.cmp(&b.label));
    seeds
}

/// Real CloudTrail records (tests/fixtures/cloudtrail), one per seed.
fn real_records() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for e in std::fs::read_dir(fixtures_dir().join("cloudtrail")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ndjson") {
            let text = std::fs::read(&p).unwrap();
            for (i, line) in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(40).enumerate() {
                seeds.push(Seed::new(format!("{}:{}", p.file_name().unwrap().to_string_lossy(), i + 1), line));
            }
        }
    }
    seeds
}

// Goal: a Parquet object read from the bucket (Parquet compaction reads
// every small file of a partition before merging it) is taken or refused
// as damaged, never panics the delivering process, whatever its bytes.
#[test]
fn fuzz_parquet_objects() {
    let records: Vec<Vec<u8>> = real_records().into_iter().map(|s| s.bytes).collect();
    fn rows(rs: &[Vec<u8>]) -> Vec<cairn_deliver::parquet::Row<'_>> {
        rs.iter().enumerate().map(|(i, r)| cairn_deliver::parquet::Row::new(r, i as i64 * 1000)).collect()
    }
    let mut seeds = vec![Seed::new("round", cairn_deliver::parquet::encode(&rows(&records)).unwrap())];
    seeds.push(Seed::new("one-row", cairn_deliver::parquet::encode(&rows(&records[..1])).unwrap()));
    // Several row groups, each encoded apart, as rounds write them.
    let all = rows(&records);
    let groups: Vec<_> = all.chunks(7).collect();
    let (file, columns) = cairn_deliver::parquet::ParquetFile::plan(&groups).unwrap();
    let encoded = groups.iter().enumerate().map(|(i, g)| columns.encode(i, g).unwrap()).collect();
    seeds.push(Seed::new("row-groups", file.finish(encoded).unwrap()));
    for s in &seeds {
        cairn_deliver::compact::check(&bytes::Bytes::copy_from_slice(&s.bytes)).unwrap();
    }
    // The reader's own panics are caught inside `check` (the property is
    // that none escapes it); they are counted for the record.
    let caught = std::sync::atomic::AtomicU64::new(0);
    let t = Target { name: "parquet", seeds, iterations: 1500, alloc_max: 64 * MIB, reseal: None };
    run(t, |_, input| {
        if let Err(e) = cairn_deliver::compact::check(&bytes::Bytes::copy_from_slice(input)) {
            if e.to_string().starts_with(cairn_deliver::compact::READER_PANICKED) {
                caught.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    eprintln!("fuzz target parquet: the Parquet reader panicked on {} inputs, each caught", caught.into_inner());
}

fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// Goal: the splitter never panics, holds at most a bounded buffer, returns
// records that are whole objects, and gives the same pieces however the
// input is chunked.
#[test]
fn fuzz_framing() {
    let mut seeds = real_records();
    let lines: Vec<u8> = seeds.iter().take(30).flat_map(|s| [s.bytes.clone(), b"\n".to_vec()].concat()).collect();
    let records: Vec<String> = seeds.iter().take(10).map(|s| text(&s.bytes)).collect();
    seeds.push(Seed::new("ndjson", lines));
    seeds.push(Seed::new("log-file", format!("{{\"Records\":[{}]}}", records.join(","))));
    seeds.push(Seed::new("array", format!("[\n{}\n]", records.join(",\n"))));
    let pretty: Vec<String> =
        records.iter().map(|r| serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(r).unwrap()).unwrap()).collect();
    seeds.push(Seed::new("pretty", pretty.join("\n")));
    let t = Target { name: "framing", seeds, iterations: 1500, alloc_max: 8 * MIB, reseal: None };
    run(t, |_, input| {
        let whole: Vec<Piece> = Splitter::new(input, RECORD_BYTES_MAX).collect();
        let chunked: Vec<Piece> = Splitter::new(BufReader::with_capacity(7, input), RECORD_BYTES_MAX).collect();
        assert_eq!(whole, chunked, "the chunking changed the pieces");
        let mut last = 0u64;
        for p in &whole {
            let at = match p {
                Piece::Record { bytes, at } => {
                    assert!(bytes.first() == Some(&b'{') && bytes.last() == Some(&b'}'), "a record is a whole object");
                    at.offset
                }
                Piece::Rejected { at, .. } => at.offset,
                Piece::Skipped { from, to, .. } => {
                    assert!(to.offset >= from.offset && to.offset <= input.len() as u64);
                    from.offset
                }
            };
            assert!(at >= last && at <= input.len() as u64, "pieces come in input order");
            last = at;
        }
    });
}

// Goal: the event parser rejects any bytes with a reason, never panics.
#[test]
fn fuzz_event_parser() {
    let t = Target { name: "event", seeds: real_records(), iterations: 4000, alloc_max: 4 * MIB, reseal: None };
    run(t, |_, input| {
        let _ = parse_event(input, RECORD_BYTES_MAX);
    });
}

// Goal: reading a WAL file (the newest, whose torn tail is truncated, or an
// older one, where damage is corruption) never panics.
#[test]
fn fuzz_wal() {
    let seeds = golden_files(|p| p.extension().is_some_and(|x| x == "wal"));
    let t = Target { name: "wal", reseal: Some(super::fixup::reseal), seeds, iterations: 1500, alloc_max: 32 * MIB };
    run(t, |_, input| {
        for newest in [true, false] {
            let _ = cairn_engine::wal::read_wal(Path::new("00000000000000000000.wal"), input, newest);
        }
    });
}

// Goal: a segment file of any bytes opens or is refused; every accessor a
// query uses (blocks, id table, index postings, seq map, counters) answers
// or errs, never panics.
#[test]
fn fuzz_segment() {
    let seeds = golden_files(|p| p.extension().is_some_and(|x| x == "seg"));
    let t = Target { name: "segment", reseal: Some(super::fixup::reseal), seeds, iterations: 600, alloc_max: 64 * MIB };
    run(t, |_, input| {
        let (_dir, path) = temp_file("00000000000000000000.seg", input);
        let Ok(seg) = Segment::open(&path) else { return };
        let _ = seg.frontier();
        for b in 0..seg.blocks_for_seqs(0, u64::MAX).map_or(0, |v| v.len()) {
            let _ = seg.read_block(b);
        }
        let mut i = 0;
        while let Ok(block) = seg.read_block(i) {
            let _ = seg.check_seq_map(i, &[]);
            drop(block);
            i += 1;
            if i > 10_000 {
                break;
            }
        }
        if let Ok(fps) = seg.id_fps_by_ordinal() {
            for fp in fps.iter().flatten().take(50) {
                let _ = seg.find_id(u64::from(*fp));
            }
        }
        let _ = seg.counters();
        if let Ok(view) = seg.index() {
            let mut out = Vec::new();
            for p in view.layout.partitions.iter().take(64) {
                for attr in (0..=u8::MAX).filter_map(Attr::from_code) {
                    for t in view.attr_terms(p, attr).take(256) {
                        out.clear();
                        let _ = view.term(t).ordinals(p, &mut out);
                    }
                }
            }
        }
        for ord in 0..64 {
            let _ = seg.locate(ord);
        }
    });
}

// Goal: a block payload of any bytes, read as each payload version (1 to 4,
// the field-by-field ones included), decodes or is refused; never panics,
// never allocates past the cap however large the counts it claims.
#[test]
fn fuzz_block_payload() {
    use cairn_engine::segment::block::{decode_block, BlockBuf};
    let records = real_records();
    let mut seeds = Vec::new();
    for (version, per) in [(1u16, 8usize), (2, 8), (3, 8), (3, 40), (4, 8), (4, 40)] {
        for (c, chunk) in records.chunks(per).enumerate().take(6) {
            let mut b = BlockBuf::default();
            for (i, s) in chunk.iter().enumerate() {
                let (seq, ingest, time) = (100 + i as u64, 5_000 + i as u64, 1_767_225_600_000 + i as i64 * 1000);
                if version == 4 {
                    let arn = format!("arn:aws:iam::1:user/u{}", i % 3);
                    b.push_in_group(seq, ingest, time, &s.bytes, (i % 4 != 0).then_some(arn.as_str()));
                } else {
                    b.push_grouped(seq, ingest, time, &s.bytes, [i as u32 % 3, 0, 0]);
                }
            }
            let mut raw = Vec::new();
            b.encode(version, &mut raw);
            seeds.push(Seed::new(format!("v{version}-{per}-{c}"), raw));
        }
    }
    let t = Target { name: "block-payload", reseal: None, seeds, iterations: 3000, alloc_max: 64 * MIB };
    run(t, |_, input| {
        // The block index says how many events; take what the payload says.
        let count = input.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()));
        for version in 1..=4 {
            if let Some(block) = decode_block(input.to_vec(), count, version) {
                assert_eq!(block.len(), count as usize);
                for i in 0..block.len() {
                    let _ = block.record(i);
                }
            }
        }
    });
}

/// Copies a golden store's data directory, with one file replaced.
fn store_with(label: &str, input: &[u8]) -> tempfile::TempDir {
    let (version, rel) = label.split_once('/').unwrap();
    let src = fixtures_dir().join("golden").join(version).join("data");
    let dir = tempfile::tempdir().unwrap();
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let to = dir.path().join(p.strip_prefix(&src).unwrap());
            if p.is_dir() {
                std::fs::create_dir_all(&to).unwrap();
                stack.push(p);
            } else {
                std::fs::copy(&p, &to).unwrap();
            }
        }
    }
    std::fs::write(dir.path().join(rel), input).unwrap();
    dir
}

// Goal: a store directory with any one file damaged (segments, WAL,
// manifest, checkpoints, keys, tiles) is verified offline, and opened or
// refused, and every query and proof answers or errs: no input from disk
// panics the process.
#[test]
fn fuzz_store() {
    let t =
        Target { name: "store", reseal: Some(super::fixup::reseal), seeds: golden_files(|_| true), iterations: 250, alloc_max: 64 * MIB };
    run(t, |label, input| {
        let dir = store_with(label, input);
        let _ = verify_dir(dir.path(), &VerifyOptions::default(), &mut |_, _| {});
        let Ok(store) = Store::open(dir.path(), Options::default()) else { return };
        let _ = store.stats();
        let q = Query::default();
        let _ = store.lookup(&q, Some(20), None);
        let _ = store.count(&q, Attr::EventName);
        let _ = store.count(&Query { filters: vec![(Attr::Username, vec!["alice".into()])], ..Query::default() }, Attr::EventSource);
        let _ = store.for_each(|_| {});
        let _ = store.get("e1");
        let _ = store.prove(0, None);
        let _ = store.verify(&VerifyOptions::default(), &mut |_, _| {});
        let _ = store.close();
    });
}

// Goal: the manifest decoder refuses bad bytes with an error.
#[test]
fn fuzz_manifest() {
    let t = Target {
        name: "manifest",
        reseal: Some(super::fixup::reseal),
        seeds: golden_files(|p| p.ends_with("MANIFEST")),
        iterations: 4000,
        alloc_max: 16 * MIB,
    };
    run(t, |_, input| {
        let _ = Manifest::decode(Path::new("MANIFEST"), input);
    });
}

// Goal: the checkpoint history decoder (whose torn tail is truncated)
// never panics.
#[test]
fn fuzz_checkpoint_history() {
    let t = Target {
        name: "checkpoint-history",
        reseal: Some(super::fixup::reseal),
        seeds: golden_files(|p| p.ends_with("checkpoints")),
        iterations: 4000,
        alloc_max: 16 * MIB,
    };
    run(t, |_, input| {
        let _ = history::decode(Path::new("checkpoints"), input);
    });
}

/// Signed checkpoints of the v4 fixture, its verifier keys, and bundles.
fn v4_notes_and_keys() -> (Vec<String>, Vec<Verifier>, String) {
    let dir = fixtures_dir().join("golden/v4/data");
    let keys_text = std::fs::read_to_string(dir.join("keys/verifiers")).unwrap();
    let verifiers = keys::parse_verifiers(Path::new("verifiers"), &keys_text).unwrap();
    let h = history::decode(Path::new("checkpoints"), &std::fs::read(dir.join("checkpoints")).unwrap()).unwrap();
    let notes = h.entries.iter().map(|e| e.checkpoint.note.clone()).collect();
    (notes, verifiers, keys_text)
}

// Goal: signed notes, checkpoints and verifier keys parse or are refused
// (an auditor feeds these from anywhere); verification never panics.
#[test]
fn fuzz_notes_and_keys() {
    let (notes, verifiers, keys_text) = v4_notes_and_keys();
    let mut seeds: Vec<Seed> = notes.iter().map(|n| Seed::new("note", n.as_bytes())).collect();
    seeds.push(Seed::new("keys", keys_text.as_bytes()));
    let t = Target { name: "notes", seeds, iterations: 3000, alloc_max: 4 * MIB, reseal: None };
    run(t, |label, input| {
        let s = text(input);
        if label == "keys" {
            let _ = keys::parse_verifiers(Path::new("verifiers"), &s);
            return;
        }
        if let Ok(n) = Note::parse(&s) {
            let _ = n.verify(&verifiers);
        }
        if let Ok(c) = SignedCheckpoint::parse(&s) {
            let _ = c.verify(&verifiers);
        }
        let _ = cairn_engine::Checkpoint::parse_body(&s);
    });
}

// Goal: inclusion and consistency proof bundles (JSON an auditor receives)
// parse and verify, or are refused, never panic.
#[test]
fn fuzz_proof_bundles() {
    let dir = store_with("v4/MANIFEST", &std::fs::read(fixtures_dir().join("golden/v4/data/MANIFEST")).unwrap());
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let (notes, verifiers, _) = v4_notes_and_keys();
    let mut seeds = Vec::new();
    for seq in [0u64, 1, 150, 299] {
        let p = store.prove(seq, None).unwrap();
        seeds.push(Seed::new("inclusion", serde_json::to_vec_pretty(&ProofBundle::from_proof(&p).unwrap()).unwrap()));
    }
    let old = SignedCheckpoint::parse(&notes[0]).unwrap();
    let c = store.prove_consistency(&old, None).unwrap();
    seeds.push(Seed::new("consistency", serde_json::to_vec_pretty(&ConsistencyBundle::from_proof(&c)).unwrap()));
    store.close().unwrap();
    let t = Target { name: "proof-bundles", seeds, iterations: 3000, alloc_max: 8 * MIB, reseal: None };
    run(t, |label, input| {
        if label == "inclusion" {
            if let Ok(b) = serde_json::from_slice::<ProofBundle>(input) {
                let _ = b.verify(&verifiers);
            }
        } else if let Ok(b) = serde_json::from_slice::<ConsistencyBundle>(input) {
            let _ = b.verify(&verifiers);
        }
    });
}

/// Every frame of the protocol's golden fixture, labelled by name.
fn golden_frames() -> Vec<Seed> {
    let text = std::fs::read_to_string(fixtures_dir().join("golden/protocol-v2.txt")).unwrap();
    text.lines().filter_map(|l| l.split_once(' ')).map(|(name, hex)| Seed::new(name, hex::decode(hex.trim()).unwrap())).collect()
}

// Goal: frame decoding of every message type refuses bad bytes and never
// allocates more than the bytes that arrived (a forged length costs
// nothing until its bytes come).
#[test]
fn fuzz_protocol_frames() {
    let t = Target { name: "protocol-frames", seeds: golden_frames(), iterations: 6000, alloc_max: 2 * MIB, reseal: None };
    run(t, |_, input| {
        let limit = 16 * MIB as u32;
        let _ = read_frame::<Request>(&mut &input[..], limit);
        let _ = read_frame::<Response>(&mut &input[..], limit);
        let _ = read_frame::<Hello>(&mut &input[..], limit);
        let _ = read_frame::<HelloReply>(&mut &input[..], limit);
    });
}

/// Sends `frames` after a good handshake, then a `Stats` request, then
/// closes its sending side, and reads answers until `Stats` is answered or
/// the server closes the connection (a frame cut short by the close, or a
/// `Tail`, ends it).
fn exchange(addr: &str, token: &str, frames: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    write_frame(&mut s, &Hello { magic: MAGIC, version: PROTOCOL_VERSION, token: token.into() }).unwrap();
    let Ok(HelloReply::Ok { .. }) = read_frame::<HelloReply>(&mut s, 1 << 20) else { panic!("handshake refused") };
    let _ = s.write_all(frames);
    let _ = write_frame(&mut s, &Request { id: u64::MAX, body: RequestBody::Stats });
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut r = BufReader::new(s);
    loop {
        match read_frame::<Response>(&mut r, u32::MAX) {
            Ok(Response { id: u64::MAX, body: ResponseBody::Stats(_) }) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

// Goal: whatever a client sends after the handshake, cairnd answers or
// closes that connection, and keeps serving everyone else.
#[test]
fn fuzz_server() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cairn_server::daemon::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        idle_timeout: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    let running = cairn_server::daemon::start(cfg, shutdown).unwrap();
    let addr = running.addr.to_string();
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap().trim().to_string();
    let seeds: Vec<Seed> = golden_frames().into_iter().filter(|s| !s.label.starts_with("hello")).collect();
    let t = Target { name: "server", seeds, iterations: 300, alloc_max: usize::MAX, reseal: None };
    run(t, |_, input| {
        exchange(&addr, &token, input);
        // The server is still there for a well-behaved client.
        let mut c = cairn_server::client::Client::connect(&addr, &token).unwrap();
        c.stats().unwrap();
    });
    running.stop().unwrap();
}

// Goal: cairnd's config file, whatever its bytes, is read or refused with
// an error naming the problem.
#[test]
fn fuzz_config() {
    let full = "data_dir = \"/var/lib/cairn\"\nlisten = \"127.0.0.1:7878\"\ndurability = \"batch\"\nconnections_max = 256\nidle_timeout_secs = 300\nframe_bytes_max = 16777216\ncheckpoint_interval_secs = 60\nretention_days = 90\ncompaction = true\ncompaction_max_mb_per_sec = 32\nseal_fields = true\nmaintenance_interval_secs = 600\nrollups = false\ninsights = true\ninsights_interval_secs = 60\ninsights_lookback_hours = 24\ninsights_sensitivity = 6.0\ninsecure = false\ntls_cert = \"/etc/cairn/cert.pem\"\ntls_key = \"/etc/cairn/key.pem\"\n";
    let seeds = vec![Seed::new("full", full), Seed::new("small", "listen = \"0.0.0.0:1\"\ninsights_sensitivity = 1e3\n")];
    let t = Target { name: "config", seeds, iterations: 3000, alloc_max: 4 * MIB, reseal: None };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cairnd.toml");
    run(t, |_, input| {
        let _ = cairn_server::daemon::config::parse_file(&text(input));
        std::fs::write(&path, input).unwrap();
        let args = <cairn_server::daemon::config::Args as clap::Parser>::parse_from(["cairnd", "--config", path.to_str().unwrap()]);
        let _ = cairn_server::daemon::config::resolve(&args);
    });
}

// Goal: cairnd's token file, whatever its bytes, loads or is refused.
#[test]
fn fuzz_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (tokens, _) = cairn_server::daemon::auth::Tokens::open(dir.path()).unwrap();
    tokens.create(cairn_server::protocol::Role::Read, "reader one").unwrap();
    let seed = std::fs::read(dir.path().join("tokens")).unwrap();
    let t = Target { name: "tokens", seeds: vec![Seed::new("tokens", seed)], iterations: 3000, alloc_max: 4 * MIB, reseal: None };
    run(t, |_, input| {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("tokens"), input).unwrap();
        if let Ok((t, _)) = cairn_server::daemon::auth::Tokens::open(d.path()) {
            let _ = t.check("cairn_0000");
        }
    });
}

/// A SigV4-signed request in the fuzz targets' text form: the method, the
/// path, the query and each `name: value` header on lines of their own.
fn sigv4_seed(method: &str, path: &str, query: &str, body: &[u8], service: &str) -> Seed {
    let host = ("host", "example.amazonaws.com");
    let signed =
        cairn_server::sigv4::sign_headers(method, path, query, &[host], body, "AKIDEXAMPLE", "secret", "us-east-1", service, 1_440_938_160);
    let mut text = format!("{method}\n{path}\n{query}\nhost: example.amazonaws.com\n");
    for (k, v) in signed {
        text.push_str(&format!("{k}: {v}\n"));
    }
    Seed::new(service, text)
}

// Goal: whatever a request's signature parts hold (headers, query-string
// form, dates, credentials, percent escapes), reading and checking them
// answers Ok or an AWS error, never a panic.
#[test]
fn fuzz_sigv4() {
    use cairn_server::sigv4::{presented, secret_key_material, verify, Expect, HttpRequest};
    let presigned =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("server/tests/fixtures/sigv4-presigned-query.txt")).unwrap();
    let seeds = vec![
        sigv4_seed("POST", "/", "", br#"{"MaxResults":5}"#, "cloudtrail"),
        sigv4_seed("POST", "/PutAuditEvents", "channelArn=arn%3Aaws%3Acloudtrail%3Aus-east-1%3A1%3Achannel%2Fx", b"{}", "cloudtrail-data"),
        Seed::new("query", format!("GET\n/a/./b/../%E1%88%B4/\n{}\nhost: example.amazonaws.com\n", presigned.trim())),
    ];
    let material = secret_key_material("secret");
    let t = Target { name: "sigv4", seeds, iterations: 6000, alloc_max: 4 * MIB, reseal: None };
    run(t, |_, input| {
        let text = String::from_utf8_lossy(input);
        let mut lines = text.split('\n');
        let (method, path, query) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        let headers: Vec<(&str, &[u8])> = lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k, v.as_bytes())).collect();
        let req = HttpRequest { method, path, query, headers, body_sha256: String::new() };
        if let Ok(Some(p)) = presented(&req) {
            for now in [1_440_938_160, i64::MAX / 2, i64::MIN / 2] {
                let _ = verify(&req, &p, &material, &Expect { service: "cloudtrail", region: None, now, must_sign: &["x-amz-target"] });
            }
        }
    });
}

// Goal: cairnd's AWS key and channel files, whatever their bytes, load or
// are refused with an error.
#[test]
fn fuzz_aws_keys_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    let keys = cairn_server::daemon::auth::AwsKeys::open(dir.path()).unwrap();
    keys.create(cairn_server::protocol::Role::Ingest, "sender one").unwrap();
    let chans = cairn_server::daemon::channels::Channels::open(dir.path()).unwrap();
    let new =
        cairn_server::daemon::channels::NewChannel { name: "door-logs".into(), external_id: Some("x-1".into()), ..Default::default() };
    chans.create(new, "us-east-1", 0).unwrap();
    let seeds = vec![
        Seed::new("aws-keys", std::fs::read(dir.path().join("aws-keys")).unwrap()),
        Seed::new("channels.json", std::fs::read(dir.path().join("channels.json")).unwrap()),
    ];
    let t = Target { name: "aws-keys-channels", seeds, iterations: 3000, alloc_max: 4 * MIB, reseal: None };
    run(t, |label, input| {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(label), input).unwrap();
        if let Ok(k) = cairn_server::daemon::auth::AwsKeys::open(d.path()) {
            let _ = k.get("CAIRNAAAAAAAAAAAAAAA");
        }
        if let Ok(c) = cairn_server::daemon::channels::Channels::open(d.path()) {
            let _ = c.find("door-logs");
        }
    });
}

/// Sends one SigV4-signed HTTP/1.1 request and reads the answer's status
/// and body (Content-Length framed, as cairnd answers).
fn http_call(s: &mut BufReader<TcpStream>, host: &str, key: (&str, &str), target: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    use std::io::{BufRead, Read};
    let (path, query, service) = match target.split_once('?') {
        Some((p, q)) => (p, q, "cloudtrail-data"),
        None => ("/", "", "cloudtrail"),
    };
    let mut headers: Vec<(&str, &str)> = vec![("host", host), ("content-type", "application/x-amz-json-1.1")];
    let full_target = format!("{}.{target}", cairn_server::daemon::HTTP_TARGET_PREFIX);
    if service == "cloudtrail" {
        headers.push(("x-amz-target", &full_target));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let auth = cairn_server::sigv4::sign_headers("POST", path, query, &headers, body, key.0, key.1, "us-east-1", service, now);
    let uri = if query.is_empty() { path.to_string() } else { format!("{path}?{query}") };
    let mut req = format!("POST {uri} HTTP/1.1\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).chain(auth) {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // One write: a second small one would wait on the peer's delayed ACK.
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.get_mut().write_all(&bytes).ok()?;
    let mut line = String::new();
    s.read_line(&mut line).ok()?;
    let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let mut len = 0;
    loop {
        let mut h = String::new();
        s.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut out = vec![0; len];
    s.read_exact(&mut out).ok()?;
    Some((status, out))
}

// Goal: whatever JSON (or not) a correctly signed client sends to each
// operation of the HTTP API, cairnd answers it with a status below 500 or
// an AWS error, and keeps serving.
#[test]
fn fuzz_http_api() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cairn_server::daemon::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        http_listen: Some("127.0.0.1:0".into()),
        insights: false,
        compaction: false,
        ..Default::default()
    };
    let running = cairn_server::daemon::start(cfg, Arc::new(AtomicBool::new(false))).unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap().trim().to_string();
    let mut c = cairn_server::client::Client::connect(&running.addr.to_string(), &token).unwrap();
    let (id, secret) = c.create_aws_key(cairn_server::protocol::Role::Admin, "fuzz").unwrap();
    let arn = c.create_channel("fuzz", None, vec![], None, None).unwrap().arn;
    let recs: Vec<Vec<u8>> = real_records().into_iter().take(200).map(|s| s.bytes).collect();
    c.append(recs).unwrap();
    let put = format!("PutAuditEvents?channelArn={}", cairn_server::sigv4::uri_encode(arn.as_bytes(), false));
    let event = r#"{"version":"1.0","userIdentity":{"type":"T","principalId":"p"},"eventSource":"s","eventName":"n","eventTime":"2026-01-01T00:00:00Z","UID":"u","recipientAccountId":"111122223333","sourceIPAddress":"10.0.0.1"}"#;
    let seeds = vec![
        Seed::new(
            "LookupEvents",
            r#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"ConsoleLogin"}],"StartTime":1.5e9,"EndTime":1800000000,"MaxResults":7,"NextToken":"x"}"#,
        ),
        Seed::new(
            "LookupEvents",
            r#"{"EventCategory":"insight","LookupAttributes":[{"AttributeKey":"EventSource","AttributeValue":"s3.amazonaws.com"}]}"#,
        ),
        Seed::new(
            "ListInsightsMetricData",
            r#"{"EventSource":"iam.amazonaws.com","EventName":"CreateUser","InsightType":"ApiErrorRateInsight","ErrorCode":"AccessDenied","Period":300,"DataType":"FillWithZeros","MaxResults":5,"StartTime":1.7e9,"EndTime":1700086400}"#,
        ),
        Seed::new("CreateChannel", r#"{"Name":"c-1","Source":"Custom","Destinations":[{"Type":"EVENT_DATA_STORE","Location":"x"}]}"#),
        Seed::new("GetChannel", r#"{"Channel":"fuzz"}"#),
        Seed::new("ListPublicKeys", r#"{"StartTime":1.5e9,"EndTime":1800000000,"NextToken":"x"}"#),
        Seed::new("GetTrailStatus", r#"{"Name":"cairn"}"#),
        Seed::new(
            put.clone(),
            serde_json::json!({"auditEvents":[{"id":"a","eventData":event},{"id":"b","eventData":event,"eventDataChecksum":"AAAA"}]})
                .to_string(),
        ),
        // Raw bytes on a connection of their own: HTTP framing itself.
        Seed::new(
            "raw",
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\nx-amz-target: a.b\r\n\r\n{}GET / HTTP/1.1\r\n\r\n",
        ),
    ];
    let addr = running.http_addr.unwrap().to_string();
    let conn = std::cell::RefCell::new(BufReader::new(TcpStream::connect(&addr).unwrap()));
    let t = Target { name: "http-api", seeds, iterations: 5000, alloc_max: usize::MAX, reseal: None };
    run(t, |label, input| {
        if label == "raw" {
            use std::io::Read;
            let mut s = TcpStream::connect(&addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            let _ = s.write_all(input);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let _ = s.read_to_end(&mut Vec::new());
        }
        // Whatever came before, a signed request is answered.
        let (label, input): (&str, &[u8]) = if label == "raw" { ("LookupEvents", b"{}") } else { (label, input) };
        let mut conn = conn.borrow_mut();
        let answer = http_call(&mut conn, &addr, (&id, &secret), label, input).or_else(|| {
            // The server may close a connection after a refusal: once more on a new one.
            *conn = BufReader::new(TcpStream::connect(&addr).unwrap());
            http_call(&mut conn, &addr, (&id, &secret), label, input)
        });
        let (status, body) = answer.expect("cairnd answers every request");
        assert!(status < 500, "{label}: {status} {}", String::from_utf8_lossy(&body));
    });
    let mut conn = BufReader::new(TcpStream::connect(&addr).unwrap());
    let (status, _) = http_call(&mut conn, &addr, (&id, &secret), "LookupEvents", b"{}").unwrap();
    assert_eq!(status, 200);
    drop(conn);
    drop(c);
    running.stop().unwrap();
}
