//! Integrity: signed checkpoints (on a schedule and on demand), inclusion
//! and consistency proofs, key rotation, and `verify` of the whole store.

use std::time::Instant;

use crate::checkpoint::bundle::{ConsistencyBundle, ProofBundle};
use crate::checkpoint::digest_keys::DigestPublicKey;
use crate::checkpoint::history::{History, HistoryEntry};
use crate::checkpoint::proof::{consistency_path, inclusion_path, range_hash};
use crate::checkpoint::{Checkpoint, SignedCheckpoint, Verifier};
use crate::error::{Error, Result};
use crate::merkle::{leaf_hash, Hash};
use crate::tree::TreeReader;
use crate::verify::{check_listing, read_history_or_report, verify_parts, Listed, Problem, ProblemKind, Progress, Report, VerifyOptions};

use super::{mem_events, ConsistencyProof, Durability, InclusionProof, Inner, Store};

impl Store {
    /// Proof bundles (JSON, see `checkpoint::bundle`) of the event at `seq`,
    /// or of every event with `event_id`, all against one checkpoint: the
    /// signed note `checkpoint`, or a fresh one. Cairnd and the embedded CLI
    /// both answer `prove` with this, so they answer alike.
    pub fn proof_bundles(&self, seq: Option<u64>, event_id: Option<&str>, checkpoint: Option<&str>) -> Result<Vec<String>> {
        let against = checkpoint.map(|c| SignedCheckpoint::parse_named(c, "--checkpoint")).transpose()?;
        let seqs: Vec<u64> = match (seq, event_id) {
            (Some(s), None) => vec![s],
            (None, Some(id)) => self.get(id)?.iter().map(|e| e.seq).collect(),
            _ => return Err(Error::InvalidArgument("give exactly one of an eventID and a seq".into())),
        };
        if seqs.is_empty() {
            return Err(Error::EventNotFound(event_id.unwrap_or_default().to_string()));
        }
        let against = match against {
            Some(c) => c,
            None => self.checkpoint()?.ok_or_else(|| Error::InvalidArgument("the store is empty".into()))?,
        };
        seqs.into_iter()
            .map(|s| {
                let b = ProofBundle::from_proof(&self.prove(s, Some(&against))?).map_err(Error::InvalidArgument)?;
                serde_json::to_string_pretty(&b).map_err(|e| Error::InvalidArgument(e.to_string()))
            })
            .collect()
    }

    /// A consistency bundle (JSON) from the signed note `old` to `new` (or
    /// a fresh checkpoint).
    pub fn consistency_bundle(&self, old: &str, new: Option<&str>) -> Result<String> {
        let old = SignedCheckpoint::parse_named(old, "the old checkpoint")?;
        let new = new.map(|n| SignedCheckpoint::parse_named(n, "the new checkpoint")).transpose()?;
        let p = self.prove_consistency(&old, new.as_ref())?;
        serde_json::to_string_pretty(&ConsistencyBundle::from_proof(&p)).map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Signs a checkpoint of everything acknowledged so far (if the tree
    /// grew since the newest one) and returns the newest checkpoint; `None`
    /// for an empty store.
    pub fn checkpoint(&self) -> Result<Option<SignedCheckpoint>> {
        self.inner.check_poison()?;
        self.inner.checkpoint_now()
    }

    /// The store's id: the 16 hex digits of its checkpoint origin
    /// (`cairn/<id>`), chosen at random when the store was created and the
    /// same for its whole life (a key rotation keeps the name). cairnd
    /// names the store's event data store by it, and SQL reaches the
    /// events table under it, as CloudTrail Lake names a store by its id.
    pub fn id(&self) -> String {
        let keys = self.inner.keys.lock();
        let origin = keys.origin();
        origin.strip_prefix("cairn/").unwrap_or(origin).to_string()
    }

    /// The newest signed checkpoint, without signing a new one.
    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.inner.history.lock().last().map(|e| e.checkpoint.clone())
    }

    /// Every public key the store has signed with, oldest first (the last
    /// is the current one).
    pub fn verifiers(&self) -> Vec<Verifier> {
        self.inner.keys.lock().verifiers().to_vec()
    }

    /// How many events are durable (acknowledged, and on disk whatever
    /// the durability mode): seqs below this never change or go away
    /// except by retention. Delivery reads no further.
    pub fn durable_size(&self) -> Result<u64> {
        Ok(self.inner.durable_head()?.0)
    }

    /// Every RSA digest key the store has used, oldest first (empty until
    /// delivery or a rotation first needed one).
    pub fn digest_public_keys(&self) -> Vec<DigestPublicKey> {
        self.inner.digest_keys.lock().public_keys().to_vec()
    }

    /// Calls `f` with the current RSA digest key (made now if the store
    /// has none) and a function that signs with it (SHA256withRSA), under
    /// the key lock, so that what `f` writes names the key that signs.
    pub fn with_digest_key<T>(&self, f: impl FnOnce(&DigestPublicKey, &dyn Fn(&[u8]) -> Vec<u8>) -> T) -> Result<T> {
        let mut keys = self.inner.digest_keys.lock();
        let now = self.inner.now_ms() as i64;
        keys.ensure(self.inner.fs.as_ref(), now)?;
        let public = keys.public_keys().last().cloned().ok_or_else(|| Error::InvalidArgument("no digest key".into()))?;
        let sign = |m: &[u8]| keys.sign(m).map(|(s, _)| s).unwrap_or_default();
        Ok(f(&public, &sign))
    }

    /// Switches to a new signing key (the old public key stays listed, so
    /// older checkpoints still verify) and signs the current head with it;
    /// switches the RSA digest key too (its old range closes now).
    pub fn rotate_key(&self) -> Result<Verifier> {
        self.inner.check_poison()?;
        {
            let now = self.inner.now_ms() as i64;
            self.inner.digest_keys.lock().rotate(self.inner.fs.as_ref(), now)?;
        }
        let (size, root) = self.inner.durable_head()?;
        let mut h = self.inner.history.lock();
        let v = {
            let mut k = self.inner.keys.lock();
            k.rotate(self.inner.fs.as_ref())?;
            k.signer().verifier()
        };
        if size > 0 {
            // Sign the head with the new key at once, even if unchanged.
            self.inner.sign_locked(&mut h, size, root, true)?;
        }
        Ok(v)
    }

    /// Verifies the open store (see `verify`): its sealed segments and
    /// tiles from a snapshot (immutable files), its unsealed events from
    /// memory (their WAL was checked when the store opened), its checkpoint
    /// history and the given checkpoints. Ingest continues meanwhile.
    pub fn verify(&self, opts: &VerifyOptions, progress: Progress<'_>) -> Result<Report> {
        let mut report = Report::default();
        // The history first: every checkpoint in it was signed before the
        // snapshot below, so none can cover more than the snapshot holds.
        let history = read_history_or_report(self.inner.fs.as_ref(), &self.inner.dir, &mut report);
        let (segments, sealing, active, active_leaves) = {
            let st = self.inner.state.read();
            let leaves: Vec<Hash> = st.active.entries().iter().map(|e| e.leaf).collect();
            (st.segments.clone(), st.sealing.clone(), mem_events(&st.active), leaves)
        };
        let min_retained = self.inner.manifest.lock().min_retained_seq;
        let sealed_size = segments.last().map_or(min_retained, |s| s.footer.tree_size);
        let listed: Vec<Listed> = segments
            .iter()
            .map(|seg| Listed {
                first_seq: seg.footer.first_seq,
                count: seg.footer.count,
                path: seg.path.clone(),
                segment: Ok(seg.clone()),
            })
            .collect();
        check_listing(&mut report, min_retained, sealed_size, &listed);
        let mut unsealed = Vec::new();
        let mut check = |seq: u64, ingest_ms: u64, record: &[u8], stored: Hash| {
            let leaf = leaf_hash(ingest_ms, record);
            if leaf != stored {
                report.problems.push(Problem {
                    kind: ProblemKind::Altered,
                    what: format!("unsealed seq {seq}: the record in memory does not hash to its leaf"),
                });
            }
            unsealed.push((seq, leaf, record.len() as u64));
        };
        for m in &sealing {
            for (i, e) in m.entries().iter().enumerate() {
                check(m.first_seq + i as u64, e.ingest_ms, m.record(e), e.leaf);
            }
        }
        for (e, leaf) in active.iter().zip(active_leaves) {
            check(e.seq, e.ingest_ms, &e.record, leaf);
        }
        verify_parts(
            self.inner.fs.as_ref(),
            &self.inner.dir,
            &history,
            min_retained,
            sealed_size,
            &listed,
            &unsealed,
            opts,
            progress,
            &mut report,
        );
        Ok(report)
    }

    /// Signs a CloudTrail-style digest with the store's current key (for
    /// `cairn export --format cloudtrail`); returns the signature and the
    /// signing key.
    pub fn sign_digest(&self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<(Vec<u8>, Verifier)> {
        let keys = self.inner.keys.lock();
        let sig = keys.signer().sign_digest(end_time, location, sha256_hex, previous).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok((sig, keys.signer().verifier()))
    }

    /// The root of the store's tree at `size`.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.inner.root_at(size)
    }

    /// An inclusion proof of the event at `seq` against `against` (a
    /// checkpoint this store signed), or against a fresh checkpoint.
    pub fn prove(&self, seq: u64, against: Option<&SignedCheckpoint>) -> Result<InclusionProof> {
        let checkpoint = match against {
            Some(c) => self.check_own(c)?,
            None => self.checkpoint()?.ok_or_else(|| Error::InvalidArgument("the store is empty: there is nothing to prove".into()))?,
        };
        let size = checkpoint.checkpoint.size;
        let min_retained = self.inner.manifest.lock().min_retained_seq;
        if seq < min_retained {
            return Err(Error::Pruned { seq, min_retained });
        }
        if seq >= size {
            return Err(Error::InvalidArgument(format!("seq {seq} is not covered by the checkpoint (tree size {size})")));
        }
        let event = self.event_at(seq)?.ok_or_else(|| Error::InvalidArgument(format!("no event has seq {seq}")))?;
        let mut t = self.inner.tree_reader();
        let path = inclusion_path(&mut t, seq, size)?;
        Ok(InclusionProof { event, path, checkpoint })
    }

    /// A consistency proof from `old` (a checkpoint this store signed) to
    /// `new` (another, or a fresh one).
    pub fn prove_consistency(&self, old: &SignedCheckpoint, new: Option<&SignedCheckpoint>) -> Result<ConsistencyProof> {
        let old = self.check_own(old)?;
        let new = match new {
            Some(c) => self.check_own(c)?,
            None => self.checkpoint()?.ok_or_else(|| Error::InvalidArgument("the store is empty".into()))?,
        };
        let (m, n) = (old.checkpoint.size, new.checkpoint.size);
        if m > n {
            return Err(Error::InvalidArgument(format!("the old checkpoint (size {m}) is newer than the new one (size {n})")));
        }
        let mut t = self.inner.tree_reader();
        let path = consistency_path(&mut t, m, n)?;
        Ok(ConsistencyProof { old, new, path })
    }

    /// Checks that `c` is a checkpoint of this store: its origin, a valid
    /// signature by one of its keys, a size it holds and the same root.
    fn check_own(&self, c: &SignedCheckpoint) -> Result<SignedCheckpoint> {
        let keys = self.inner.keys.lock();
        if c.checkpoint.origin != keys.origin() {
            return Err(Error::InvalidArgument(format!(
                "the checkpoint is of log {:?}, this store is {:?}",
                c.checkpoint.origin,
                keys.origin()
            )));
        }
        c.verify(keys.verifiers())
            .map_err(|e| Error::InvalidArgument(format!("the checkpoint does not verify with this store's keys: {e}")))?;
        drop(keys);
        let root = self.inner.root_at(c.checkpoint.size)?;
        if root != c.checkpoint.root {
            return Err(Error::InvalidArgument(format!(
                "the store's tree at size {} differs from this checkpoint: the store was rewritten since it was signed",
                c.checkpoint.size
            )));
        }
        Ok(c.clone())
    }
}

impl Inner {
    /// A snapshot of the tree for proofs: segments, memtables, and a copy
    /// of the active memtable's leaf hashes.
    pub(super) fn tree_reader(&self) -> TreeReader<'_> {
        // Manifest before state (the seal and compaction order).
        let min_retained = self.manifest.lock().min_retained_seq;
        let st = self.state.read();
        let active: Vec<Hash> = st.active.entries().iter().map(|e| e.leaf).collect();
        let (segments, sealing, first) = (st.segments.clone(), st.sealing.clone(), st.active.first_seq);
        drop(st);
        TreeReader::new(self.fs.as_ref(), &self.tile_dir, &self.cache, segments, sealing, first, active, min_retained)
    }

    /// The root of the tree at `size` (at most the current size). Sizes
    /// that end a segment or the log are answered from what is recorded
    /// there; others are computed from tiles and at most 255 records.
    pub(super) fn root_at(&self, size: u64) -> Result<Hash> {
        if size == 0 {
            return Ok(crate::merkle::empty_root());
        }
        {
            let w = self.writer.lock();
            if w.frontier.size() == size {
                return Ok(w.frontier.root());
            }
        }
        {
            let st = self.state.read();
            let i = st.segments.partition_point(|s| s.footer.tree_size < size);
            if let Some(seg) = st.segments.get(i).filter(|s| s.footer.tree_size == size) {
                return Ok(seg.footer.tree_root);
            }
        }
        let mut t = self.tree_reader();
        if size > t.size {
            return Err(Error::InvalidArgument(format!("tree size {size} is beyond the store's {}", t.size)));
        }
        range_hash(&mut t, 0, size)
    }

    /// On open: the newest signed checkpoint must be signed by one of the
    /// store's keys, and must be a prefix of the log as recovered. Anything
    /// else means events were lost or history was rewritten, and the store
    /// refuses to sign a checkpoint that disagrees with a published one.
    pub(super) fn check_last_checkpoint(&self) -> Result<()> {
        let h = self.history.lock();
        let Some(last) = h.last().cloned() else { return Ok(()) };
        let path = h.path().to_path_buf();
        drop(h);
        let keys = self.keys.lock();
        if let Err(e) = last.checkpoint.verify(keys.verifiers()) {
            return Err(Error::corruption(&path, 0, format!("the newest checkpoint does not verify with the store's keys: {e}")));
        }
        drop(keys);
        let c = &last.checkpoint.checkpoint;
        let size = self.writer.lock().frontier.size();
        if c.size > size {
            return Err(Error::corruption(
                &path,
                0,
                format!(
                    "a signed checkpoint covers {} events but the log holds {size}: acknowledged events were lost or the store was rolled back; run `cairn verify`",
                    c.size
                ),
            ));
        }
        if self.root_at(c.size)? != c.root {
            return Err(Error::corruption(
                &path,
                0,
                format!("the log's tree at size {} differs from the signed checkpoint: history was rewritten; run `cairn verify`", c.size),
            ));
        }
        Ok(())
    }

    /// Signs and records a checkpoint of (size, root) if it extends the
    /// newest one. The caller guarantees (size, root) is a durable head of
    /// this store's tree; the history lock orders all signers.
    pub(super) fn checkpoint_head(&self, size: u64, root: Hash) -> Result<Option<SignedCheckpoint>> {
        let mut h = self.history.lock();
        self.sign_locked(&mut h, size, root, false)
    }

    /// Signs (size, root) unless the newest checkpoint already covers it;
    /// `resign` signs an unchanged head again (after a key rotation).
    pub(super) fn sign_locked(&self, h: &mut History, size: u64, root: Hash, resign: bool) -> Result<Option<SignedCheckpoint>> {
        let newest = h.last().map(|l| l.checkpoint.checkpoint.size);
        if newest.is_some_and(|n| n > size || (n == size && !resign)) {
            return Ok(None);
        }
        let keys = self.keys.lock();
        let c = Checkpoint { origin: keys.origin().to_string(), size, root };
        let note = keys.signer().sign(&c.body()).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        drop(keys);
        let signed = SignedCheckpoint { checkpoint: c, note };
        let entry = HistoryEntry { issued_ms: self.now_ms(), checkpoint: signed.clone() };
        if let Err(e) = h.append(entry) {
            self.set_poison(&e);
            return Err(e);
        }
        *self.last_checkpoint_at.lock() = Instant::now();
        Ok(Some(signed))
    }

    /// Signs the current tree head (made durable first) if it grew, and
    /// returns the newest checkpoint.
    pub(super) fn checkpoint_now(&self) -> Result<Option<SignedCheckpoint>> {
        let (size, root) = self.durable_head()?;
        let mut h = self.history.lock();
        if size > 0 {
            self.sign_locked(&mut h, size, root, false)?;
        }
        Ok(h.last().map(|e| e.checkpoint.clone()))
    }

    /// The tree head as it is durable now. Takes `writer` alone: a roll
    /// waits for the sealer while holding `writer`, and the sealer takes
    /// `history`, so nothing may hold `history` while it waits for
    /// `writer`. (`sign_locked` refuses a head older than the newest
    /// checkpoint, so a head read before another signer's stays harmless.)
    /// Never called on the sealer thread (see `checkpoint_if_due`).
    pub(super) fn durable_head(&self) -> Result<(u64, Hash)> {
        let mut w = self.writer.lock();
        if self.opts.durability == Durability::Never && !w.closed && self.poison.lock().is_none() {
            // Sign only what a machine crash cannot take back.
            if let Err(e) = w.wal.sync() {
                self.set_poison(&e);
                return Err(e);
            }
        }
        Ok((w.frontier.size(), w.frontier.root()))
    }

    pub(super) fn checkpoint_if_due(&self) {
        if self.last_checkpoint_at.lock().elapsed() < self.opts.checkpoint_interval || self.poison.lock().is_some() {
            return;
        }
        // The sealer runs this: it must not wait for `writer`, whose holder
        // may be a roll waiting for the sealer. Busy writer: next tick.
        let head = {
            let Some(mut w) = self.writer.try_lock() else { return };
            if self.opts.durability == Durability::Never && !w.closed {
                if let Err(e) = w.wal.sync() {
                    self.set_poison(&e);
                    return;
                }
            }
            (w.frontier.size(), w.frontier.root())
        };
        if head.0 > 0 {
            // A failure poisoned the writer already (set in sign_locked).
            let _ = self.checkpoint_head(head.0, head.1);
        }
        *self.last_checkpoint_at.lock() = Instant::now();
    }
}
