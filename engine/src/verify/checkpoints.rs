//! Checkpoint checks: which keys are trusted, each signature, and that the
//! history never shrinks or signs two roots for one size.

use std::path::Path;

use crate::checkpoint::history::{read_all as read_history, HistoryEntry};
use crate::checkpoint::keys::parse_verifiers;
use crate::checkpoint::{SignedCheckpoint, Verifier};
use crate::fs::FileSystem;
use crate::layout::{KEY_DIR, VERIFIERS_FILE};

use super::{ProblemKind, Report, VerifyOptions};

/// Every checkpoint in the history (a damaged history is a problem).
pub(crate) fn read_history_or_report(fs: &dyn FileSystem, dir: &Path, report: &mut Report) -> Vec<HistoryEntry> {
    match read_history(fs, dir) {
        Ok(h) => h.entries,
        Err(e) => {
            report.problem(ProblemKind::Unreadable, format!("checkpoint history: {e}"));
            Vec::new()
        }
    }
}

/// The keys signatures are checked with.
pub(super) fn trusted_keys(fs: &dyn FileSystem, dir: &Path, opts: &VerifyOptions, report: &mut Report) -> Vec<Verifier> {
    if !opts.public_keys.is_empty() {
        report.trusted_keys = true;
        return opts.public_keys.clone();
    }
    let path = dir.join(KEY_DIR).join(VERIFIERS_FILE);
    match fs.read(&path) {
        Ok(b) => match parse_verifiers(&path, &String::from_utf8_lossy(&b)) {
            Ok(v) => v,
            Err(e) => {
                report.problem(ProblemKind::Unreadable, e.to_string());
                Vec::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            report.problem(ProblemKind::Unreadable, format!("{}: {e}", path.display()));
            Vec::new()
        }
    }
}

pub(super) fn check_signature(report: &mut Report, c: &SignedCheckpoint, verifiers: &[Verifier], label: &str) {
    if verifiers.is_empty() {
        report.problem(ProblemKind::Signature, format!("{label}: no public key to check its signature with"));
        return;
    }
    if let Err(e) = c.verify(verifiers) {
        let by: Vec<String> = c.signer_ids().iter().map(|(n, id)| format!("{n}+{id:08x}")).collect();
        report.problem(ProblemKind::Signature, format!("{label}: {e} (it is signed by {})", by.join(", ")));
    }
}

/// The history never goes back in size, and never signs two roots for one.
pub(super) fn check_history_order(report: &mut Report, history: &[HistoryEntry]) {
    for (i, w) in history.windows(2).enumerate() {
        let (a, b) = (&w[0].checkpoint.checkpoint, &w[1].checkpoint.checkpoint);
        if b.size < a.size {
            report.problem(
                ProblemKind::Checkpoint,
                format!("history checkpoint #{} (size {}) is smaller than #{} (size {})", i + 2, b.size, i + 1, a.size),
            );
        } else if b.size == a.size && b.root != a.root {
            report.problem(
                ProblemKind::Checkpoint,
                format!("history checkpoints #{} and #{} sign two different roots for size {}", i + 1, i + 2, a.size),
            );
        }
    }
}
