//! The integrity requests (proofs, consistency, verify) on an open store,
//! shared by cairnd and by `cairn` running embedded, so both give the same
//! answers and the same errors.

use cairn_engine::checkpoint::bundle::{ConsistencyBundle, ProofBundle};
use cairn_engine::verify::{Report, VerifyOptions};
use cairn_engine::{Error, SignedCheckpoint, Store, Verifier};

use crate::protocol::{codes, WireCompact, WireError, WireVerifyReport, VERIFY_PROBLEMS_MAX};

/// A request that names something invalid.
pub use crate::protocol::codes::INVALID_PARAMETER;

fn invalid(msg: impl Into<String>) -> WireError {
    WireError { code: INVALID_PARAMETER.into(), message: msg.into() }
}

fn engine(e: Error) -> WireError {
    match e {
        Error::InvalidArgument(m) => invalid(m),
        other => WireError { code: codes::INTERNAL.into(), message: other.to_string() },
    }
}

fn parse_checkpoint(note: &str, what: &str) -> Result<SignedCheckpoint, WireError> {
    SignedCheckpoint::parse(note).map_err(|e| invalid(format!("{what}: {e}")))
}

/// Proof bundles (JSON) of the event at `seq`, or of every event with
/// `event_id`, against `checkpoint` or a fresh one.
pub fn prove(store: &Store, seq: Option<u64>, event_id: Option<&str>, checkpoint: Option<&str>) -> Result<Vec<String>, WireError> {
    let against = checkpoint.map(|c| parse_checkpoint(c, "--checkpoint")).transpose()?;
    let seqs: Vec<u64> = match (seq, event_id) {
        (Some(s), None) => vec![s],
        (None, Some(id)) => store.get(id).map_err(engine)?.iter().map(|e| e.seq).collect(),
        _ => return Err(invalid("give exactly one of an eventID and a seq")),
    };
    if seqs.is_empty() {
        return Err(WireError {
            code: codes::EVENT_NOT_FOUND.into(),
            message: format!("no event has eventID {:?}", event_id.unwrap_or_default()),
        });
    }
    // One checkpoint for all: a fresh one is signed once.
    let against = match against {
        Some(c) => c,
        None => store.checkpoint().map_err(engine)?.ok_or_else(|| invalid("the store is empty"))?,
    };
    seqs.into_iter()
        .map(|s| {
            let p = store.prove(s, Some(&against)).map_err(engine)?;
            let b = ProofBundle::from_proof(&p).map_err(invalid)?;
            serde_json::to_string_pretty(&b).map_err(|e| invalid(e.to_string()))
        })
        .collect()
}

/// A consistency bundle (JSON) from `old` to `new` (or a fresh checkpoint).
pub fn consistency(store: &Store, old: &str, new: Option<&str>) -> Result<String, WireError> {
    let old = parse_checkpoint(old, "the old checkpoint")?;
    let new = new.map(|n| parse_checkpoint(n, "the new checkpoint")).transpose()?;
    let p = store.prove_consistency(&old, new.as_ref()).map_err(engine)?;
    serde_json::to_string_pretty(&ConsistencyBundle::from_proof(&p)).map_err(|e| invalid(e.to_string()))
}

/// Parses verifier keys given as text.
pub fn parse_keys(keys: &[String]) -> Result<Vec<Verifier>, WireError> {
    keys.iter().map(|k| Verifier::parse(k).map_err(|e| invalid(format!("public key: {e}")))).collect()
}

/// Verifies the open store.
pub fn verify(
    store: &Store,
    checkpoints: &[String],
    keys: &[String],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<WireVerifyReport, WireError> {
    let opts = VerifyOptions {
        checkpoints: checkpoints.iter().map(|c| parse_checkpoint(c, "--checkpoint")).collect::<Result<_, _>>()?,
        public_keys: parse_keys(keys)?,
    };
    let r = store.verify(&opts, progress).map_err(engine)?;
    Ok(wire_report(&r))
}

pub fn wire_report(r: &Report) -> WireVerifyReport {
    WireVerifyReport {
        events: r.events,
        segments: r.segments as u64,
        record_bytes: r.record_bytes,
        tree_size: r.tree_size,
        root: r.root,
        history_checkpoints: r.history_checkpoints as u64,
        external_checkpoints: r.external_checkpoints as u64,
        trusted_keys: r.trusted_keys,
        problems: r.problems.iter().take(VERIFY_PROBLEMS_MAX).map(|p| (p.kind.name().to_string(), p.what.clone())).collect(),
        pruned_below: r.pruned_below,
        pruned_checkpoints: r.pruned_checkpoints as u64,
        problems_omitted: r.problems_omitted + r.problems.len().saturating_sub(VERIFY_PROBLEMS_MAX) as u64,
    }
}

/// The inverse of [`wire_report`], for printing a server's answer.
pub fn report_from_wire(w: WireVerifyReport) -> Report {
    use cairn_engine::verify::{Problem, ProblemKind};
    let kind = |k: &str| match k {
        "altered" => ProblemKind::Altered,
        "missing" => ProblemKind::Missing,
        "extra" => ProblemKind::Extra,
        "chain" => ProblemKind::Chain,
        "checkpoint" => ProblemKind::Checkpoint,
        "signature" => ProblemKind::Signature,
        _ => ProblemKind::Unreadable,
    };
    Report {
        events: w.events,
        segments: w.segments as usize,
        record_bytes: w.record_bytes,
        tree_size: w.tree_size,
        root: w.root,
        history_checkpoints: w.history_checkpoints as usize,
        external_checkpoints: w.external_checkpoints as usize,
        trusted_keys: w.trusted_keys,
        problems: w.problems.into_iter().map(|(k, what)| Problem { kind: kind(&k), what }).collect(),
        pruned_below: w.pruned_below,
        pruned_checkpoints: w.pruned_checkpoints as usize,
        problems_omitted: w.problems_omitted,
    }
}

/// The engine's compaction options from the wire's (zero: the default).
pub fn compact_options(w: &WireCompact) -> cairn_engine::compact::CompactOptions {
    let d = cairn_engine::compact::CompactOptions::default();
    let or = |v: u64, d: u64| if v == 0 { d } else { v };
    cairn_engine::compact::CompactOptions {
        target_bytes: or(w.target_bytes, d.target_bytes),
        small_bytes: or(w.small_bytes, d.small_bytes),
        all: w.all,
        zstd_level: if w.zstd_level == 0 { d.zstd_level } else { w.zstd_level },
        block_bytes: or(w.block_bytes, d.block_bytes as u64) as usize,
        dictionary: w.dictionary,
        dry_run: w.dry_run,
        max_bytes_per_sec: w.max_bytes_per_sec,
        stop: None,
    }
}
