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

// Goal: a store written now (diverse and standard records and real
// CloudTrail files, several sealed segments, records split into fields
// and kept whole, and a WAL tail) and the same
// store after `compact --all --dictionary` read with the document-only
// reader exactly as cairn reads them; a flipped byte in a block is
// refused with the file named, as the document requires.
#[test]
fn a_new_store_reads_from_the_document_alone() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("store");
    let mut inputs = Vec::new();
    for (profile, count, seed) in [("diverse", "6000", "21"), ("standard", "3000", "22")] {
        let out = Command::new(cairn_bin()).args(["gen", "--profile", profile, "--count", count, "--seed", seed]).output().unwrap();
        assert!(out.status.success());
        let p = work.path().join(format!("{profile}.ndjson"));
        std::fs::write(&p, &out.stdout).unwrap();
        inputs.push(p);
    }
    for f in std::fs::read_dir(fixtures_dir().join("cloudtrail")).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "ndjson") {
            inputs.push(p);
        }
    }
    let seg_bytes = (2 << 20).to_string();
    for (i, p) in inputs.iter().enumerate() {
        // The standard records are sealed whole (template number 0).
        let fields = if i == 1 { "false" } else { "true" };
        let (code, _, err) = cairn(&data, &["--segment-bytes", &seg_bytes, "--seal-fields", fields, "ingest", p.to_str().unwrap()]);
        assert!(code == 0 || code == 1, "{err}");
    }
    let (sealed, _) = assert_reads_like_cairn(&data);
    assert!(sealed["segments"].as_u64().unwrap() >= 3 && sealed["wal_events"].as_u64().unwrap() > 0, "{sealed}");
    assert!(sealed["whole_records"].as_u64().unwrap() > 1000 && sealed["split_records"].as_u64().unwrap() > 1000, "{sealed}");
    let (code, _, err) = cairn(&data, &["compact", "--all", "--dictionary"]);
    assert_eq!(code, 0, "{err}");
    let (compacted, _) = assert_reads_like_cairn(&data);
    assert_eq!(compacted["tree_size"], sealed["tree_size"]);
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
