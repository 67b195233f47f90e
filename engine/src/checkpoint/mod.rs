//! Signed checkpoints: the store's tree heads in the C2SP tlog-checkpoint
//! format, signed with the store's Ed25519 key as C2SP signed notes, kept
//! in an append-only history; and the proofs that tie an event or an older
//! checkpoint to them.
//!
//! A checkpoint's text is three lines (c2sp.org/tlog-checkpoint):
//!
//! ```text
//! <origin>            the log's name, also the signing key's name
//! <tree size>         decimal, no leading zeros
//! <root hash>         base64 of the RFC 6962 root at that size
//! ```
//!
//! then a blank line and one signature line. This module owns the format,
//! the key files (`keys`), the history file (`history`) and the proof
//! algorithms (`proof`); the store decides when to sign. It never signs
//! two checkpoints that disagree: see `Store::checkpoint_now`.

pub mod bundle;
pub mod digest_keys;
pub mod history;
pub mod keys;
pub mod note;
pub mod proof;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::merkle::Hash;
pub use note::{Note, NoteError, NoteSigner, Verifier};

/// A tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's text, as signed.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Parses a checkpoint text; extension lines after the root are allowed
    /// and ignored, as the spec says.
    pub fn parse_body(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |what: &str| NoteError::MalformedNote(format!("checkpoint: {what}"));
        let mut lines = text.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("no origin line"))?;
        let size = lines.next().ok_or_else(|| bad("no tree size line"))?;
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad("the tree size is not a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| bad("the tree size does not fit 64 bits"))?;
        let root = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root: Hash =
            B64.decode(root).ok().and_then(|r| r.try_into().ok()).ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        Ok(Checkpoint { origin: origin.to_string(), size, root })
    }
}

/// A checkpoint with its signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The whole note: text, blank line, signature lines.
    pub note: String,
}

impl SignedCheckpoint {
    /// Parses a signed checkpoint given by a caller; the error is an
    /// invalid argument naming it as `what` (e.g. "--checkpoint").
    pub(crate) fn parse_named(note: &str, what: &str) -> crate::error::Result<SignedCheckpoint> {
        SignedCheckpoint::parse(note).map_err(|e| crate::error::Error::InvalidArgument(format!("{what}: {e}")))
    }

    /// Parses a signed checkpoint (signatures are not checked here).
    pub fn parse(note: &str) -> Result<SignedCheckpoint, NoteError> {
        let n = Note::parse(note)?;
        Ok(SignedCheckpoint { checkpoint: Checkpoint::parse_body(&n.text)?, note: note.to_string() })
    }

    /// Checks the signature with the first of `verifiers` that signed it.
    pub fn verify<'v>(&self, verifiers: &'v [Verifier]) -> Result<&'v Verifier, NoteError> {
        Note::parse(&self.note)?.verify(verifiers)
    }

    /// The key ids of the signature lines.
    pub fn signer_ids(&self) -> Vec<(String, u32)> {
        Note::parse(&self.note).map(|n| n.signatures.into_iter().map(|s| (s.name, s.id)).collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a checkpoint body round-trips and malformed ones are refused.
    #[test]
    fn body_round_trip() {
        let c = Checkpoint { origin: "cairn/0123".into(), size: 1234, root: [5; 32] };
        assert_eq!(Checkpoint::parse_body(&c.body()).unwrap(), c);
        assert_eq!(Checkpoint::parse_body(&format!("{}ext\n", c.body())).unwrap(), c);
        for bad in ["", "o\n", "o\n01\nAAAA\n", "o\nx\nAAAA\n", "o\n1\nAAAA\n", "\n1\nBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=\n"] {
            assert!(Checkpoint::parse_body(bad).is_err(), "{bad:?}");
        }
        let signer = NoteSigner::from_seed("cairn/0123", [3; 32]).unwrap();
        let note = signer.sign(&c.body()).unwrap();
        let sc = SignedCheckpoint::parse(&note).unwrap();
        assert_eq!(sc.checkpoint, c);
        assert!(sc.verify(&[signer.verifier()]).is_ok());
    }
}
