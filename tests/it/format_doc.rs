//! A reader of data directories written in Python from docs/FORMAT.md
//! alone, without the source (`tests/python/segment_reader.py`): the
//! document is enough to read every event of a store, with its seq,
//! ingest time and exact bytes, and to recompute the tree root the store
//! signs, and keeps being so as the formats change. It runs in the
//! pinned virtual environment (`target/pyenv`, for its zstandard package);
//! without it the test fails, it does not skip.

use std::path::Path;
use std::process::Command;

use crate::common::{cairn, cairn_bin, fixtures_dir};
use crate::golden::copy_dir;
use crate::http_api::{pyenv, repo};

/// What the independent reader says about a data directory: its summary
/// line as JSON, and every record, one per line in seq order.
fn read_independently(data: &Path) -> (serde_json::Value, Vec<Vec<u8>>) {
    let records = data.with_extension("records.ndjson");
    let out = Command::new(pyenv().join("bin/python"))
        .arg(repo().join("tests/python/segment_reader.py"))
        .arg(data)
        .arg("--records")
        .arg(&records)
        .output()
        .expect("running the document-only reader in target/pyenv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the document-only reader failed on {}:\n{stdout}\n{}",
        data.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("summary line ({e}): {stdout}"));
    let lines = std::fs::read(&records).unwrap().split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    (summary, lines)
}

/// Checks the reader against the store itself: the same tree size and
/// root as `cairn stats`, and the same records as `cairn export`.
fn assert_reads_like_cairn(data: &Path) -> (serde_json::Value, Vec<Vec<u8>>) {
    let (summary, mut records) = read_independently(data);
    let (code, out, err) = cairn(data, &["stats", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(summary["tree_size"], stats["tree_size"], "{}: {summary}", data.display());
    assert_eq!(summary["root"], stats["root"], "{}: {summary}", data.display());
    let (code, out, err) = cairn(data, &["export", "--oldest-first"]);
    assert_eq!(code, 0, "{err}");
    let mut exported: Vec<Vec<u8>> = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    let in_seq_order = records.clone();
    records.sort();
    exported.sort();
    assert!(records == exported, "{}: the reader's records differ from cairn export's", data.display());
    (summary, in_seq_order)
}

// Goal: every golden store (segment versions 1 to 5, block payloads 1 to
// 4, compacted and dictionary segments, events still in the WAL) reads
// with the document-only reader to the root the fixture records.
#[test]
fn the_golden_stores_read_from_the_document_alone() {
    let work = tempfile::tempdir().unwrap();
    for v in 1..=8 {
        let golden = fixtures_dir().join(format!("golden/v{v}"));
        let root = std::fs::read_to_string(golden.join("ROOT")).unwrap().trim().to_string();
        let data = work.path().join(format!("v{v}"));
        copy_dir(&golden.join("data"), &data);
        let (summary, _) = read_independently(&data);
        assert_eq!(summary["root"], root.as_str(), "golden v{v}: {summary}");
    }
}

/// Writes `cairn gen` records to a file in `dir`.
fn generate(dir: &Path, args: &[&str]) -> std::path::PathBuf {
    let out = Command::new(cairn_bin()).arg("gen").args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p = dir.join(format!("gen-{}.ndjson", args.join("-").replace([':', '/'], "_")));
    std::fs::write(&p, &out.stdout).unwrap();
    p
}

// Goal: a store written now (diverse and standard records and real
// CloudTrail files, several sealed segments, records split into fields,
// and a WAL tail) reads with the document-only reader exactly as cairn
// reads it, and so does it after a retention cut (part of the tree then
// only in the tiles) and after `compact --all --dictionary`; a flipped
// byte in a block is refused with the file named, as the document
// requires.
#[test]
fn a_new_store_reads_from_the_document_alone() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("store");
    // Old records first, then recent ones: a cut keeps the recent.
    let mut inputs = vec![
        generate(work.path(), &["--profile", "diverse", "--count", "6000", "--seed", "21"]),
        generate(work.path(), &["--profile", "standard", "--count", "3000", "--seed", "22", "--start", "now"]),
    ];
    for f in std::fs::read_dir(fixtures_dir().join("cloudtrail")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ndjson") {
            inputs.push(p);
        }
    }
    let seg_bytes = (2 << 20).to_string();
    for p in &inputs {
        let (code, _, err) = cairn(&data, &["--segment-bytes", &seg_bytes, "ingest", p.to_str().unwrap()]);
        assert!(code == 0 || code == 1, "{err}");
    }
    let (sealed, _) = assert_reads_like_cairn(&data);
    assert!(sealed["segments"].as_u64().unwrap() >= 3 && sealed["wal_events"].as_u64().unwrap() > 0, "{sealed}");
    assert!(sealed["split_records"].as_u64().unwrap() > 1000, "{sealed}");
    let (code, out, err) = cairn(&data, &["retention", "--older-than", "300d"]);
    assert_eq!(code, 0, "{err}");
    let (cut, _) = assert_reads_like_cairn(&data);
    let (code, stats, _) = cairn(&data, &["stats", "--output", "json"]);
    assert_eq!(code, 0);
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    // Below the cut: level-1 tiles and the cut's level-0 partial tile.
    let first = stats["tree_size"].as_u64().unwrap() - stats["events"].as_u64().unwrap();
    assert!(
        first > 256 && !first.is_multiple_of(256) && cut["segments"].as_u64().unwrap() >= 1,
        "cut at {first}: {cut} {}",
        String::from_utf8_lossy(&out)
    );
    let (code, _, err) = cairn(&data, &["compact", "--all", "--dictionary"]);
    assert_eq!(code, 0, "{err}");
    let (compacted, _) = assert_reads_like_cairn(&data);
    assert_eq!(compacted["tree_size"], cut["tree_size"]);
    // A flipped byte in the middle of the first segment's blocks.
    let seg = std::fs::read_dir(data.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let out = Command::new(pyenv().join("bin/python")).arg(repo().join("tests/python/segment_reader.py")).arg(&data).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{said}");
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(said.contains(name), "the refusal names {name}: {said}");
}

// Goal: with `--seal-fields false` every sealed record is stored whole
// (template number 0), read by the document-only reader, and `compact
// --all` splits every one of them into fields.
#[test]
fn records_sealed_whole_read_from_the_document_and_compaction_splits_them() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("store");
    let input = generate(work.path(), &["--profile", "standard", "--count", "4000", "--seed", "23"]);
    let (code, _, err) =
        cairn(&data, &["--segment-bytes", &(1 << 20).to_string(), "--seal-fields", "false", "ingest", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (whole, _) = assert_reads_like_cairn(&data);
    let sealed = whole["tree_size"].as_u64().unwrap() - whole["wal_events"].as_u64().unwrap();
    assert!(whole["segments"].as_u64().unwrap() >= 2 && sealed > 1000, "{whole}");
    assert_eq!((whole["whole_records"].as_u64(), whole["split_records"].as_u64()), (Some(sealed), Some(0)), "{whole}");
    let (code, _, err) = cairn(&data, &["compact", "--all"]);
    assert_eq!(code, 0, "{err}");
    let (split, _) = assert_reads_like_cairn(&data);
    assert_eq!((split["whole_records"].as_u64(), split["split_records"].as_u64()), (Some(0), Some(sealed)), "{split}");
}
