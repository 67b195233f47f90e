//! Tamper evidence: signed checkpoints, per-event proofs checked offline,
//! consistency proofs, and `verify` against the tamper matrix (each kind of
//! damage is detected and named).

use std::path::{Path, PathBuf};

use cairn_engine::checkpoint::bundle::{ConsistencyBundle, ProofBundle};
use cairn_engine::manifest::Manifest;
use cairn_engine::verify::{verify_dir, ProblemKind, Report, VerifyOptions};
use cairn_engine::{Options, SignedCheckpoint, Store, Verifier};

use crate::common::{cairn, record, test_options};

/// Small segments so a store of 600 events has several, plus unsealed ones.
fn opts() -> Options {
    Options { segment_bytes: 16 * 1024, block_bytes: 2048, ..test_options() }
}

fn records(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| record(&format!("ev-{i:05}"), &format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60), "PutObject")).collect()
}

/// Appends `recs` in batches of 10 (deterministic ingest times).
fn fill(store: &Store, recs: &[Vec<u8>]) {
    for chunk in recs.chunks(10) {
        let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
}

/// A store of `recs`, closed; returns its public key and final checkpoint.
fn build(dir: &Path, recs: &[Vec<u8>]) -> (Verifier, SignedCheckpoint) {
    let store = Store::open(dir, opts()).unwrap();
    fill(&store, recs);
    let cp = store.checkpoint().unwrap().unwrap();
    let key = store.verifiers().pop().unwrap();
    store.close().unwrap();
    (key, cp)
}

fn verify(dir: &Path, key: Option<&Verifier>, checkpoints: &[SignedCheckpoint]) -> Report {
    let opts = VerifyOptions { checkpoints: checkpoints.to_vec(), public_keys: key.into_iter().cloned().collect() };
    verify_dir(dir, &opts, &mut |_, _| {}).unwrap()
}

/// Asserts that some problem has `kind` and mentions `needle`.
fn assert_found(r: &Report, kind: ProblemKind, needle: &str) {
    assert!(
        r.problems.iter().any(|p| p.kind == kind && p.what.contains(needle)),
        "expected a {kind:?} problem mentioning {needle:?}; got {:#?}",
        r.problems
    );
}

/// Copies the signed history and keys of `from` over `to`: what an attacker
/// who rewrites the data but cannot re-sign leaves behind.
fn keep_signed_history(from: &Path, to: &Path) {
    std::fs::copy(from.join("checkpoints"), to.join("checkpoints")).unwrap();
    for f in ["signing.key", "verifiers"] {
        std::fs::copy(from.join("keys").join(f), to.join("keys").join(f)).unwrap();
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

// Goal: a clean store verifies (with its key, its history, a saved
// checkpoint) after reopening, and every event's proof checks offline.
#[test]
fn clean_store_verifies_and_proofs_check_offline() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(600);
    let (key, cp) = build(dir.path(), &recs);
    let r = verify(dir.path(), Some(&key), std::slice::from_ref(&cp));
    assert!(r.ok(), "{:#?}", r.problems);
    assert_eq!((r.events, r.tree_size), (600, 600));
    assert!(r.segments >= 3 && r.history_checkpoints >= 3, "{} segments, {} checkpoints", r.segments, r.history_checkpoints);

    let store = Store::open(dir.path(), opts()).unwrap();
    fill(&store, &records(650)[600..]); // 50 unsealed events too
    let later = store.checkpoint().unwrap().unwrap();
    assert_eq!(later.checkpoint.size, 650);
    for seq in [0u64, 1, 255, 256, 300, 599, 600, 649] {
        for against in [None, Some(&cp)] {
            if against.is_some() && seq >= 600 {
                continue;
            }
            let p = store.prove(seq, against).unwrap();
            assert_eq!(p.event.record, records(650)[seq as usize]);
            let b = ProofBundle::from_proof(&p).unwrap();
            let json = serde_json::to_string(&b).unwrap();
            let back: ProofBundle = serde_json::from_str(&json).unwrap();
            let ok = back.verify(std::slice::from_ref(&key)).unwrap();
            assert_eq!(ok.tree_size, against.map_or(650, |c| c.checkpoint.size));
            // An altered record, another seq, or another key: refused.
            let mut bad = back.clone();
            bad.record = bad.record.replace("PutObject", "GetObject");
            assert!(bad.verify(std::slice::from_ref(&key)).unwrap_err().contains("altered"));
            let mut moved = back.clone();
            moved.seq ^= 1;
            assert!(moved.verify(std::slice::from_ref(&key)).is_err());
            let other = cairn_engine::checkpoint::NoteSigner::from_seed(&key.name, [9; 32]).unwrap().verifier();
            assert!(back.verify(&[other]).is_err());
        }
    }
    // The older checkpoint is a prefix of the newer one; not the reverse.
    let c = store.prove_consistency(&cp, Some(&later)).unwrap();
    let b = ConsistencyBundle::from_proof(&c);
    assert!(b.verify(std::slice::from_ref(&key)).is_ok());
    assert!(store.prove_consistency(&later, Some(&cp)).is_err());
    let mut forged = b.clone();
    forged.consistency_path.swap(0, 1);
    assert!(forged.verify(std::slice::from_ref(&key)).is_err());
    // A checkpoint of another log is refused.
    let foreign = cairn_engine::checkpoint::NoteSigner::from_seed("cairn/other", [3; 32]).unwrap();
    let fc = SignedCheckpoint::parse(&foreign.sign(&cp.checkpoint.body().replace(&key.name, "cairn/other")).unwrap()).unwrap();
    assert!(store.prove(0, Some(&fc)).is_err());
    store.close().unwrap();
    let r = verify(dir.path(), Some(&key), &[cp, later]);
    assert!(r.ok(), "{:#?}", r.problems);
}

// Goal: the store signs checkpoints at seals and on a timer; sizes never go
// back, a rotation keeps old checkpoints verifiable, and a store never
// signs two roots for one size.
#[test]
fn checkpoint_history_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options { checkpoint_interval: std::time::Duration::from_millis(10), ..opts() }).unwrap();
    fill(&store, &records(400));
    store.seal_now().unwrap();
    let old_key = store.verifiers().pop().unwrap();
    let before = store.checkpoint().unwrap().unwrap();
    let new_key = store.rotate_key().unwrap();
    assert_ne!(old_key.id, new_key.id);
    let after = store.latest_checkpoint().unwrap();
    assert_eq!(after.checkpoint, before.checkpoint, "re-signed, same head");
    assert!(after.verify(std::slice::from_ref(&new_key)).is_ok());
    assert!(before.verify(std::slice::from_ref(&old_key)).is_ok());
    store.close().unwrap();
    let history = cairn_engine::checkpoint::history::read_all(&cairn_engine::fs::RealFs, dir.path()).unwrap().entries;
    assert!(history.len() >= 4, "{} checkpoints", history.len());
    assert!(history.windows(2).all(|w| w[0].checkpoint.checkpoint.size <= w[1].checkpoint.checkpoint.size));
    // Both keys together verify the whole history; the old one alone does not.
    assert!(verify(dir.path(), None, &[]).ok());
    let r = verify_dir(dir.path(), &VerifyOptions { checkpoints: vec![], public_keys: vec![old_key.clone(), new_key] }, &mut |_, _| {})
        .unwrap();
    assert!(r.ok(), "{:#?}", r.problems);
    assert_found(&verify(dir.path(), Some(&old_key), &[]), ProblemKind::Signature, "signed by");
}

// Goal (tamper 1): a flipped byte in a sealed record is named: the segment
// file and block, and the seqs whose hashes no longer match.
#[test]
fn tamper_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = build(dir.path(), &records(600));
    let seg = segments(dir.path())[1].clone();
    let mut b = std::fs::read(&seg).unwrap();
    b[100] ^= 0x01;
    std::fs::write(&seg, &b).unwrap();
    let r = verify(dir.path(), Some(&key), &[]);
    assert_found(&r, ProblemKind::Altered, &format!("{}", seg.display()));
    assert_found(&r, ProblemKind::Altered, "checksum mismatch");
}

// Goal (tamper 2, 3, 4, 7): events removed, inserted or swapped, or the
// last events cut off, with every hash recomputed consistently: the signed
// history no longer matches and verify names the checkpoint and sizes.
#[test]
fn tamper_rewritten_events() {
    let recs = records(600);
    let orig = tempfile::tempdir().unwrap();
    let (key, _) = build(orig.path(), &recs);
    let mut removed = recs.clone();
    removed.remove(123);
    let mut inserted = recs.clone();
    inserted.insert(200, record("forged", "2026-01-01T00:03:20Z", "DeleteBucket"));
    let mut swapped = recs.clone();
    swapped.swap(10, 11);
    let truncated = recs[..550].to_vec();
    for (name, forged) in [("removed", removed), ("inserted", inserted), ("swapped", swapped), ("truncated", truncated)] {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &forged);
        keep_signed_history(orig.path(), dir.path());
        let r = verify(dir.path(), Some(&key), &[]);
        assert!(!r.ok(), "{name}: not detected");
        if name == "truncated" {
            assert_found(&r, ProblemKind::Checkpoint, "covers 600 events but the log holds 550");
        } else {
            assert_found(&r, ProblemKind::Checkpoint, "differs from the tree recomputed from the records");
        }
        // And the store refuses to open rather than sign a fork.
        assert!(Store::open(dir.path(), opts()).is_err(), "{name}: opened");
    }
}

// Goal (tamper 5, 6): a removed segment and two swapped segments are named.
#[test]
fn tamper_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = build(dir.path(), &records(600));
    let base = tempfile::tempdir().unwrap();
    crate::golden::copy_dir(dir.path(), base.path());
    // Removed: the file, and then also its manifest entry.
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[1]).unwrap();
    assert_found(&verify(dir.path(), Some(&key), &[]), ProblemKind::Unreadable, "No such file");
    let fs = cairn_engine::fs::RealFs;
    let mut m = Manifest::load(&fs, dir.path()).unwrap().unwrap();
    let gone = m.segments.remove(1);
    m.store(&fs, dir.path()).unwrap();
    let r = verify(dir.path(), Some(&key), &[]);
    assert_found(&r, ProblemKind::Missing, &format!("seqs {}..{} are in no segment", gone.first_seq, gone.first_seq + gone.count));
    // Swapped: two segment files trade names.
    let dir = base;
    let segs = segments(dir.path());
    let tmp = dir.path().join("swap");
    std::fs::rename(&segs[0], &tmp).unwrap();
    std::fs::rename(&segs[1], &segs[0]).unwrap();
    std::fs::rename(&tmp, &segs[1]).unwrap();
    let r = verify(dir.path(), Some(&key), &[]);
    assert_found(&r, ProblemKind::Chain, "segments were swapped or replaced");
}

// Goal (tamper 8): a store rewritten consistently and signed with another
// key fails every signature check against the original public key.
#[test]
fn tamper_resigned_with_another_key() {
    let orig = tempfile::tempdir().unwrap();
    let (key, _) = build(orig.path(), &records(300));
    let dir = tempfile::tempdir().unwrap();
    let mut forged = records(300);
    forged[5] = record("ev-00005", "2026-01-01T00:00:05Z", "DeleteTrail");
    build(dir.path(), &forged);
    assert!(verify(dir.path(), None, &[]).ok(), "consistent by its own keys");
    let r = verify(dir.path(), Some(&key), &[]);
    assert_found(&r, ProblemKind::Signature, "history checkpoint #1");
}

// Goal (tamper 9): a store rolled back to an earlier copy is caught by a
// checkpoint saved after the copy was taken.
#[test]
fn tamper_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(500);
    build(dir.path(), &recs[..300]);
    let backup = tempfile::tempdir().unwrap();
    crate::golden::copy_dir(dir.path(), backup.path());
    let store = Store::open(dir.path(), opts()).unwrap();
    fill(&store, &recs[300..]);
    let saved = store.checkpoint().unwrap().unwrap();
    let key = store.verifiers().pop().unwrap();
    store.close().unwrap();
    let r = verify(backup.path(), Some(&key), std::slice::from_ref(&saved));
    assert_found(&r, ProblemKind::Checkpoint, "given checkpoint #1 covers 500 events but the log holds 300");
    assert!(verify(dir.path(), Some(&key), &[saved]).ok());
}

// Goal: the commands as users run them: key export, checkpoint, proof,
// verify-proof (0 valid, 1 invalid), consistency and verify (0 ok, 1 not).
#[test]
fn integrity_commands() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("in.ndjson");
    let text: Vec<u8> = records(300).iter().flat_map(|r| r.iter().copied().chain([b'\n'])).collect();
    std::fs::write(&input, text).unwrap();
    let (code, _, err) = cairn(&data, &["ingest", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, key, _) = cairn(&data, &["key", "export"]);
    assert_eq!(code, 0);
    let key = String::from_utf8(key).unwrap().trim().to_string();
    let cp = dir.path().join("cp.txt");
    let (code, _, err) = cairn(&data, &["checkpoint", "--output", cp.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let bundle = dir.path().join("proof.json");
    let (code, _, err) = cairn(&data, &["proof", "ev-00042", "--out", bundle.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = cairn(dir.path(), &["verify-proof", bundle.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
    assert!(String::from_utf8_lossy(&out).contains("valid: event ev-00042 (seq 42)"));
    let text = std::fs::read_to_string(&bundle).unwrap().replace("PutObject", "GetObject");
    std::fs::write(&bundle, text).unwrap();
    let (code, out, _) = cairn(dir.path(), &["verify-proof", bundle.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(code, 1);
    assert!(String::from_utf8_lossy(&out).starts_with("INVALID"));
    let (code, _, err) = cairn(&data, &["ingest", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cairn(&data, &["consistency", cp.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).starts_with("consistent"));
    let (code, out, err) = cairn(&data, &["verify", "--checkpoint", cp.to_str().unwrap(), "--public-key", &key]);
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).starts_with("ok: 300 events"), "{}", String::from_utf8_lossy(&out));
    let seg = std::fs::read_dir(data.join("wal")).unwrap().next().unwrap().unwrap().path();
    let mut b = std::fs::read(&seg).unwrap();
    let at = b.len() - 20;
    b[at] ^= 0x20;
    std::fs::write(&seg, b).unwrap();
    let (code, out, _) = cairn(&data, &["verify", "--public-key", &key]);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&out));
}

// Goal: checkpoints requested while appenders roll tiny segments (the
// sealer busy, rolls waiting for it) and timer checkpoints due every
// millisecond never deadlock, and every checkpoint stays consistent. A
// watchdog turns a hang into a failure.
#[test]
fn checkpoints_under_concurrent_rolls_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(
        Store::open(dir.path(), Options { segment_bytes: 8 * 1024, checkpoint_interval: std::time::Duration::from_millis(1), ..opts() })
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let s = store.clone();
    std::thread::spawn(move || {
        std::thread::scope(|sc| {
            for t in 0..3 {
                let s = &s;
                sc.spawn(move || {
                    for b in 0..200 {
                        let recs: Vec<Vec<u8>> = (0..5).map(|i| record(&format!("t{t}-{b}-{i}"), "2026-01-01T00:00:00Z", "X")).collect();
                        let refs: Vec<&[u8]> = recs.iter().map(|r| r.as_slice()).collect();
                        s.append(&refs).unwrap();
                    }
                });
            }
            let s = &s;
            sc.spawn(move || {
                for i in 0..200 {
                    s.checkpoint().unwrap();
                    if i % 50 == 0 {
                        s.rotate_key().unwrap();
                    }
                }
            });
        });
        drop(s);
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(120)).expect("appends and checkpoints finished (no deadlock)");
    let store = std::sync::Arc::try_unwrap(store).ok().unwrap();
    assert_eq!(store.checkpoint().unwrap().unwrap().checkpoint.size, 3000);
    store.close().unwrap();
    assert!(verify(dir.path(), None, &[]).ok());
}
