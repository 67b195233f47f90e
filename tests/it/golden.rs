//! Golden fixture of on-disk format version 1: a data directory written by
//! this format (a sealed segment, tiles, a manifest, and a WAL with unsealed
//! events) must stay readable, with the same records and the same tree
//! head, by every later build. Regenerate only for a deliberate format
//! change: `CAIRN_REGEN_GOLDEN=1 cargo test golden`.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_engine::{Options, Store};

use crate::common::{assert_consistent, fixtures_dir};

fn source_records() -> Vec<Vec<u8>> {
    let text = std::fs::read(fixtures_dir().join("cloudtrail/stratus-red-team.ndjson")).unwrap();
    text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(300).map(<[u8]>::to_vec).collect()
}

fn golden_options() -> Options {
    let t = Arc::new(AtomicU64::new(1_767_225_600_000));
    Options { clock: Some(Arc::new(move || t.fetch_add(1000, Ordering::SeqCst))), block_bytes: 4096, ..Options::default() }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "LOCK" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

fn regenerate(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), golden_options()).unwrap();
    let recs = source_records();
    for chunk in recs[..280].chunks(70) {
        let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
    store.seal_now().unwrap();
    let refs: Vec<&[u8]> = recs[280..].iter().map(|r| r.as_slice()).collect();
    store.append(&refs).unwrap();
    let root = hex::encode(store.stats().unwrap().root);
    store.close().unwrap();
    copy_dir(tmp.path(), &dir.join("data"));
    std::fs::write(dir.join("ROOT"), format!("{root}\n")).unwrap();
}

// Goal: format version 1 stays readable: same records, seqs and tree root.
#[test]
fn format_v1_golden_store_opens() {
    let golden = fixtures_dir().join("golden/v1");
    if std::env::var_os("CAIRN_REGEN_GOLDEN").is_some() {
        regenerate(&golden);
    }
    let expected_root = std::fs::read_to_string(golden.join("ROOT")).expect("golden fixture present").trim().to_string();
    let work = tempfile::tempdir().unwrap();
    copy_dir(&golden.join("data"), work.path());
    let store = Store::open(work.path(), Options::default()).unwrap();
    let events = assert_consistent(&store);
    let records: Vec<Vec<u8>> = events.iter().map(|e| e.record.clone()).collect();
    assert_eq!(records, source_records());
    let stats = store.stats().unwrap();
    assert_eq!(stats.sealed_events, 280);
    // The sealed part completed one 256-leaf subtree: a level-1 partial tile.
    assert!(golden.join("data/tiles/tile/1/000.p/1").exists());
    assert_eq!(hex::encode(stats.root), expected_root);
    // The clock is read once at open, then once per batch.
    assert_eq!(events[0].ingest_ms, 1_767_225_601_000);
}
