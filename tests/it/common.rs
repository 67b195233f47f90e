//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_engine::merkle::{leaf_hash, root_of_leaves, Hash};
use cairn_engine::{Options, Store, StoredEvent};

/// A small valid CloudTrail-shaped record with the given id and time.
pub fn record(id: &str, time: &str, name: &str) -> Vec<u8> {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","userName":"alice","accessKeyId":"AKIAEXAMPLE"}},"eventTime":"{time}","eventSource":"s3.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","eventID":"{id}","readOnly":true}}"#
    )
    .into_bytes()
}

/// The i-th of a family of distinct records of equal length (distinct
/// eventIDs, so none is a duplicate of another).
pub fn nth(i: usize) -> Vec<u8> {
    record(&format!("n{i:06}"), "2026-01-01T00:00:00Z", "X")
}

/// `n` records of the generator with these options.
pub fn generated_with(opts: cairn_tools::gen::GenOptions, n: usize) -> Vec<Vec<u8>> {
    let mut g = cairn_tools::gen::Generator::new(opts);
    (0..n)
        .map(|_| {
            let mut r = Vec::new();
            g.next_record(&mut r);
            r
        })
        .collect()
}

/// Appends `recs` in batches of `batch`.
pub fn fill(store: &Store, recs: &[Vec<u8>], batch: usize) {
    for c in recs.chunks(batch) {
        let refs: Vec<&[u8]> = c.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
}

/// Options with a deterministic ingest clock (ticks by 1 ms per batch).
pub fn test_options() -> Options {
    let t = Arc::new(AtomicU64::new(1_767_225_600_000));
    Options { clock: Some(Arc::new(move || t.fetch_add(1, Ordering::SeqCst))), ..Options::default() }
}

/// Every stored event, in seq order.
pub fn all_events(store: &Store) -> Vec<StoredEvent> {
    let mut v = Vec::new();
    store.for_each(|e| v.push(e.clone())).unwrap();
    v.sort_by_key(|e| e.seq);
    v
}

/// The RFC 6962 root recomputed from the stored events themselves.
pub fn recomputed_root(events: &[StoredEvent]) -> Hash {
    let leaves: Vec<Hash> = events.iter().map(|e| leaf_hash(e.ingest_ms, &e.record)).collect();
    root_of_leaves(&leaves)
}

/// Asserts the store's invariants: seqs 0..n contiguous, and the tree head
/// matches the stored entries.
pub fn assert_consistent(store: &Store) -> Vec<StoredEvent> {
    let events = all_events(store);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64, "seqs must be contiguous from 0");
    }
    let stats = store.stats().unwrap();
    assert_eq!(stats.events, events.len() as u64);
    assert_eq!(stats.tree_size, events.len() as u64);
    assert_eq!(stats.root, recomputed_root(&events), "tree root must match the stored entries");
    events
}

/// The `cairn` binary, which cargo builds for this test run (it is the
/// root package's, like the tests).
pub fn cairn_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cairn"))
}

/// The `cairnd` binary, as [`cairn_bin`].
pub fn cairnd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cairnd"))
}

/// Runs `cairn` with a data directory; returns (exit code, stdout, stderr).
pub fn cairn(data_dir: &Path, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new(cairn_bin()).arg("--data-dir").arg(data_dir).arg("--quiet").args(args).output().expect("running cairn");
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The repository's fixture directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Kills `child` with SIGKILL after a pseudo-random delay below `max_ms`
/// (xorshift64 on `seed`, so a run's kill points are reproducible), and
/// reaps it.
pub fn kill_9_after_random_delay(child: &mut std::process::Child, seed: &mut u64, max_ms: u64) {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    std::thread::sleep(std::time::Duration::from_millis(*seed % max_ms.max(1)));
    let _ = child.kill();
    let _ = child.wait();
}
