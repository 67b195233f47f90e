//! Interoperability: Cairn's checkpoints, keys, inclusion and consistency
//! proofs and tile paths, checked with independent implementations of the
//! C2SP specifications (Cloudflare's `signed_note` and `tlog_tiles`, ports
//! of Go's sumdb/note and sumdb/tlog).

use cairn_engine::merkle::leaf_hash;
use cairn_engine::{Options, Store};
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{check_record, check_tree, Checkpoint, Hash, Tile};

use crate::common::{record, test_options};

// Goal: a checkpoint signed by the store verifies with signed_note using
// the exported key and parses as a tlog_tiles checkpoint; inclusion proofs
// of sealed and unsealed events pass tlog_tiles::check_record, and a
// consistency proof passes check_tree; tile paths match tlog_tiles'.
#[test]
fn proofs_and_checkpoints_verify_with_independent_implementations() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options { segment_bytes: 32 * 1024, ..test_options() }).unwrap();
    let recs: Vec<Vec<u8>> = (0..1100).map(|i| record(&format!("id-{i}"), "2026-02-01T10:00:00Z", "AssumeRole")).collect();
    for chunk in recs.chunks(50).take(14) {
        let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
    let old = store.checkpoint().unwrap().unwrap();
    for chunk in recs.chunks(50).skip(14) {
        let refs: Vec<&[u8]> = chunk.iter().map(|r| r.as_slice()).collect();
        store.append(&refs).unwrap();
    }
    let new = store.checkpoint().unwrap().unwrap();
    let key = store.verifiers().pop().unwrap().encode();

    let verifiers = VerifierList::new(vec![Box::new(StandardVerifier::new(&key).expect("signed_note reads the key"))]);
    for cp in [&old, &new] {
        let note = Note::from_bytes(cp.note.as_bytes()).expect("signed_note parses the note");
        note.verify(&verifiers).expect("signed_note verifies the signature");
        let parsed = Checkpoint::from_bytes(note.text()).expect("tlog_tiles parses the checkpoint");
        assert_eq!(parsed.origin(), cp.checkpoint.origin);
        assert_eq!(parsed.size(), cp.checkpoint.size);
        assert_eq!(parsed.hash().0, cp.checkpoint.root);
    }
    let size = new.checkpoint.size;
    assert_eq!(size, 1100);
    for seq in [0u64, 1, 255, 256, 511, 700, 1023, 1024, 1099] {
        let p = store.prove(seq, Some(&new)).unwrap();
        let path: Vec<Hash> = p.path.iter().map(|h| Hash(*h)).collect();
        let leaf = Hash(leaf_hash(p.event.ingest_ms, &p.event.record));
        check_record(&path, size, Hash(new.checkpoint.root), seq, leaf).unwrap_or_else(|e| panic!("seq {seq}: {e:?}"));
        assert!(check_record(&path, size, Hash(new.checkpoint.root), seq, Hash([1; 32])).is_err());
    }
    let c = store.prove_consistency(&old, Some(&new)).unwrap();
    let path: Vec<Hash> = c.path.iter().map(|h| Hash(*h)).collect();
    check_tree(&path, size, Hash(new.checkpoint.root), old.checkpoint.size, Hash(old.checkpoint.root))
        .expect("tlog_tiles accepts the consistency proof");
    store.close().unwrap();

    // tlog_tiles formats Go sumdb paths, `tile/<H>/<L>/<N>`; C2SP
    // tlog-tiles fixes H at 8 and leaves it out of the path.
    for (level, n, w) in [(1u8, 0u64, 4u32), (1, 1234067, 256), (2, 5, 17)] {
        let ours = cairn_engine::tiles::tile_path(std::path::Path::new(""), u32::from(level), n, u64::from(w));
        let sumdb = Tile::new(8, level, n, w, false).path();
        assert_eq!(ours.to_str().unwrap(), sumdb.replacen("tile/8/", "tile/", 1));
    }
}
