//! Self-contained proof bundles: one event's stored record, its seq and
//! ingest time, its inclusion path, and the signed checkpoint the path
//! leads to, as one JSON document that `cairn verify-proof` (or anyone with
//! SHA-256 and Ed25519) checks with nothing but the store's public key.
//! The format is documented in docs/FORMAT.md ("Proof bundles").

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::proof::{verify_consistency, verify_inclusion};
use super::{SignedCheckpoint, Verifier};
use crate::checkpoint::proof::{ConsistencyProof, InclusionProof};
use crate::merkle::{leaf_hash, Hash};

pub const PROOF_FORMAT: &str = "cairn-inclusion-proof/1";
pub const CONSISTENCY_FORMAT: &str = "cairn-consistency-proof/1";

/// The JSON shape of an inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBundle {
    pub format: String,
    /// The log (checkpoint origin).
    pub origin: String,
    /// The event's seq: its leaf index.
    pub seq: u64,
    /// The ingest time the store committed to, unix milliseconds.
    pub ingest_ms: u64,
    /// The stored record, exactly (JSON text is UTF-8).
    pub record: String,
    /// SHA-256(0x00 ‖ ingest_ms as u64 LE ‖ record), hex (for reading; it
    /// is recomputed when checked).
    pub leaf_hash: String,
    pub tree_size: u64,
    /// RFC 9162 inclusion path, leaf upwards, base64.
    pub inclusion_path: Vec<String>,
    /// The signed checkpoint (C2SP signed note).
    pub checkpoint: String,
}

/// The JSON shape of a consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyBundle {
    pub format: String,
    pub origin: String,
    pub old_size: u64,
    pub new_size: u64,
    /// RFC 9162 consistency path, base64.
    pub consistency_path: Vec<String>,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
}

/// What a successful check established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub origin: String,
    pub key: String,
    pub tree_size: u64,
}

fn hashes_to_b64(h: &[Hash]) -> Vec<String> {
    h.iter().map(|h| B64.encode(h)).collect()
}

fn b64_to_hashes(v: &[String]) -> Result<Vec<Hash>, String> {
    v.iter()
        .enumerate()
        .map(|(i, s)| B64.decode(s).ok().and_then(|b| b.try_into().ok()).ok_or_else(|| format!("path entry {i} is not 32 bytes of base64")))
        .collect()
}

/// Checks a signed checkpoint's signature and returns it parsed.
fn checked(note: &str, verifiers: &[Verifier], what: &str) -> Result<(SignedCheckpoint, String), String> {
    let c = SignedCheckpoint::parse(note).map_err(|e| format!("{what}: {e}"))?;
    let v = c.verify(verifiers).map_err(|e| format!("{what}: {e}"))?;
    Ok((c, format!("{}+{:08x}", v.name, v.id)))
}

impl ProofBundle {
    pub fn from_proof(p: &InclusionProof) -> Result<Self, String> {
        let record = String::from_utf8(p.event.record.clone()).map_err(|_| "the stored record is not UTF-8".to_string())?;
        Ok(ProofBundle {
            format: PROOF_FORMAT.into(),
            origin: p.checkpoint.checkpoint.origin.clone(),
            seq: p.event.seq,
            ingest_ms: p.event.ingest_ms,
            leaf_hash: hex::encode(leaf_hash(p.event.ingest_ms, &p.event.record)),
            record,
            tree_size: p.checkpoint.checkpoint.size,
            inclusion_path: hashes_to_b64(&p.path),
            checkpoint: p.checkpoint.note.clone(),
        })
    }

    /// Checks everything: the checkpoint's signature by one of `verifiers`,
    /// that it is the bundle's log and size, and that the record's leaf
    /// hash and the path lead to its root. The error says which failed.
    pub fn verify(&self, verifiers: &[Verifier]) -> Result<Verified, String> {
        if self.format != PROOF_FORMAT {
            return Err(format!("unknown bundle format {:?} (this build reads {PROOF_FORMAT})", self.format));
        }
        let (c, key) = checked(&self.checkpoint, verifiers, "checkpoint")?;
        let cp = &c.checkpoint;
        if cp.origin != self.origin || cp.size != self.tree_size {
            return Err(format!(
                "the bundle claims log {:?} size {}, its checkpoint is {:?} size {}",
                self.origin, self.tree_size, cp.origin, cp.size
            ));
        }
        let leaf = leaf_hash(self.ingest_ms, self.record.as_bytes());
        if hex::encode(leaf) != self.leaf_hash {
            return Err("the record (or its ingest time) does not hash to the bundle's leaf hash: the record was altered".into());
        }
        let path = b64_to_hashes(&self.inclusion_path)?;
        if !verify_inclusion(self.seq, cp.size, &leaf, &path, &cp.root) {
            return Err(format!(
                "the inclusion path does not lead from seq {} to the checkpoint's root: the record, seq or path was altered",
                self.seq
            ));
        }
        Ok(Verified { origin: cp.origin.clone(), key, tree_size: cp.size })
    }
}

impl ConsistencyBundle {
    pub fn from_proof(p: &ConsistencyProof) -> Self {
        ConsistencyBundle {
            format: CONSISTENCY_FORMAT.into(),
            origin: p.new.checkpoint.origin.clone(),
            old_size: p.old.checkpoint.size,
            new_size: p.new.checkpoint.size,
            consistency_path: hashes_to_b64(&p.path),
            old_checkpoint: p.old.note.clone(),
            new_checkpoint: p.new.note.clone(),
        }
    }

    /// Checks both signatures and that the old tree is a prefix of the new.
    pub fn verify(&self, verifiers: &[Verifier]) -> Result<Verified, String> {
        if self.format != CONSISTENCY_FORMAT {
            return Err(format!("unknown bundle format {:?} (this build reads {CONSISTENCY_FORMAT})", self.format));
        }
        let (old, _) = checked(&self.old_checkpoint, verifiers, "old checkpoint")?;
        let (new, key) = checked(&self.new_checkpoint, verifiers, "new checkpoint")?;
        let (o, n) = (&old.checkpoint, &new.checkpoint);
        if o.origin != n.origin {
            return Err(format!("the checkpoints are of different logs ({:?} and {:?})", o.origin, n.origin));
        }
        if (o.size, n.size) != (self.old_size, self.new_size) {
            return Err("the bundle's sizes differ from its checkpoints'".into());
        }
        let path = b64_to_hashes(&self.consistency_path)?;
        if !verify_consistency(o.size, n.size, &o.root, &n.root, &path) {
            return Err(format!("the tree of size {} is not a prefix of the tree of size {}: the log was rewritten", o.size, n.size));
        }
        Ok(Verified { origin: n.origin.clone(), key, tree_size: n.size })
    }
}
