//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, and the key
//! encodings of Go's `sumdb/note`, so that any implementation of the spec
//! can check what Cairn signs.
//!
//! - verifier key: `<name>+<key id, 8 hex>+<base64(0x01 ‖ public key)>`
//! - signer key:   `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>`
//! - key id:       the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)
//! - a note:       text (ending in "\n") ‖ "\n" ‖ one line per signature,
//!   `— <name> <base64(key id ‖ Ed25519 signature of the text)>\n`
//!
//! Everything here is pure: parsing never panics and names what is wrong.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature algorithm byte of Ed25519 in signed-note keys.
const ALG_ED25519: u8 = 0x01;
/// The em dash and space that open a signature line.
const SIG_PREFIX: &str = "\u{2014} ";
/// Most signature lines a note may carry (Go's limit).
const SIGNATURES_MAX: usize = 100;
/// Largest note accepted, in bytes.
pub const NOTE_BYTES_MAX: usize = 1 << 20;

/// Why a key, a note or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed key: {0}")]
    MalformedKey(String),
    #[error("malformed note: {0}")]
    MalformedNote(String),
    /// No signature line carries the verifier's name and key id.
    #[error("the note has no signature by key {name}+{id:08x}")]
    UnknownKey { name: String, id: u32 },
    /// A signature line claims the verifier's key but does not verify.
    #[error("the signature by key {name}+{id:08x} does not verify: the note was altered or signed by another key")]
    BadSignature { name: String, id: u32 },
}

/// A key name: non-empty, no spaces or '+' (the spec's rule).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The key id of an Ed25519 public key under `name`.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A public key that checks signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    pub name: String,
    pub id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parses `<name>+<id>+<base64(0x01 ‖ key)>`, checking the id.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |what: &str| NoteError::MalformedKey(format!("{what} (expected NAME+KEYID+BASE64, as `cairn key export` prints)"));
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not three '+'-separated fields"));
        };
        if !is_valid_key_name(name) {
            return Err(bad("invalid key name"));
        }
        let id = parse_key_id(id).ok_or_else(|| bad("the key id is not 8 hex digits"))?;
        let raw = B64.decode(key).map_err(|_| bad("the key is not base64"))?;
        let public: [u8; 32] = match raw.split_first() {
            Some((&ALG_ED25519, k)) => k.try_into().map_err(|_| bad("an Ed25519 key is 32 bytes"))?,
            _ => return Err(bad("not an Ed25519 key (algorithm byte 0x01)")),
        };
        if key_id(name, &public) != id {
            return Err(bad("the key id does not match the key"));
        }
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 point"))?;
        Ok(Verifier { name: name.to_string(), id, key })
    }

    /// The `<name>+<id>+<key>` text.
    pub fn encode(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    pub fn public_key(&self) -> [u8; 32] {
        *self.key.as_bytes()
    }

    /// Checks `sig` (64 bytes) over `text`.
    fn verifies(&self, text: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(sig) else { return false };
        self.key.verify_strict(text, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
    }
}

/// A private key that signs notes.
pub struct NoteSigner {
    pub name: String,
    pub id: u32,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private key.
        write!(f, "NoteSigner({}+{:08x})", self.name, self.id)
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::MalformedKey(format!("invalid key name {name:?} (no spaces or '+')")));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(NoteSigner { name: name.to_string(), id, key })
    }

    /// Parses `PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |what: &str| NoteError::MalformedKey(format!("signing key: {what}"));
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(|| bad("does not start with PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not NAME+KEYID+BASE64 after the prefix"));
        };
        let id = parse_key_id(id).ok_or_else(|| bad("the key id is not 8 hex digits"))?;
        let raw = B64.decode(key).map_err(|_| bad("not base64"))?;
        let seed: [u8; 32] = match raw.split_first() {
            Some((&ALG_ED25519, k)) => k.try_into().map_err(|_| bad("an Ed25519 seed is 32 bytes"))?,
            _ => return Err(bad("not an Ed25519 key")),
        };
        let signer = Self::from_seed(name, seed)?;
        if signer.id != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(signer)
    }

    /// The `PRIVATE+KEY+...` text. Keep it secret.
    pub fn encode(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    pub fn verifier(&self) -> Verifier {
        Verifier { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// Signs `text` (which must end in a newline and hold no blank line)
    /// and returns the whole note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&sig.to_bytes());
        Ok(format!("{text}\n{SIG_PREFIX}{} {}\n", self.name, B64.encode(blob)))
    }
}

/// The string CloudTrail signs for a digest file (section 4.4 of the
/// reference): `end time \n bucket/object \n sha256 hex \n previous
/// signature hex | "null"`. Checked field by field, so the signer signs
/// nothing else: such a string never ends in a newline, so it can never be
/// a note's text.
pub fn digest_string_to_sign(end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<String, NoteError> {
    let bad = |what: &str| NoteError::MalformedNote(format!("digest: {what}"));
    let t = end_time.as_bytes();
    let time_ok = t.len() == 20
        && t.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !time_ok {
        return Err(bad("the end time is not YYYY-MM-DDTHH:MM:SSZ"));
    }
    if location.is_empty() || location.chars().any(|c| c.is_control()) {
        return Err(bad("the location is empty or holds control characters"));
    }
    let hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex64(sha256_hex) {
        return Err(bad("the digest hash is not 64 hex digits"));
    }
    let prev = match previous {
        None => "null",
        // Ed25519 (128 hex digits) up to RSA-4096 (1,024).
        Some(p) if p.len() % 2 == 0 && (128..=1024).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit()) => p,
        Some(_) => return Err(bad("the previous signature is not 128 to 1,024 hex digits")),
    };
    Ok(format!("{end_time}\n{location}\n{sha256_hex}\n{prev}"))
}

impl NoteSigner {
    /// Signs a CloudTrail-style digest string (see
    /// [`digest_string_to_sign`]); the signature is 64 bytes.
    pub fn sign_digest(&self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>) -> Result<Vec<u8>, NoteError> {
        let s = digest_string_to_sign(end_time, location, sha256_hex, previous)?;
        Ok(self.key.sign(s.as_bytes()).to_bytes().to_vec())
    }
}

impl Verifier {
    /// Checks a digest signature made by [`NoteSigner::sign_digest`].
    pub fn verifies_digest(&self, end_time: &str, location: &str, sha256_hex: &str, previous: Option<&str>, sig: &[u8]) -> bool {
        digest_string_to_sign(end_time, location, sha256_hex, previous).is_ok_and(|s| self.verifies(s.as_bytes(), sig))
    }

    /// The digest files' `digestPublicKeyFingerprint`: the first 16 bytes
    /// of SHA-256 of the public key, as 32 hex digits.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.key.as_bytes())[..16])
    }
}

fn parse_key_id(s: &str) -> Option<u32> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| u32::from_str_radix(s, 16).ok()).flatten()
}

fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::MalformedNote("the text must end with a newline".into()));
    }
    if text.contains("\n\n") {
        return Err(NoteError::MalformedNote("the text must not contain a blank line".into()));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::MalformedNote("the text must not contain control characters".into()));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub id: u32,
    pub sig: Vec<u8>,
}

/// A parsed note: its text and signature lines, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Splits a note at its last blank line and parses the signature lines.
    pub fn parse(note: &str) -> Result<Note, NoteError> {
        let bad = |what: &str| NoteError::MalformedNote(what.to_string());
        if note.len() > NOTE_BYTES_MAX {
            return Err(bad("larger than 1 MiB"));
        }
        let split = note.rfind("\n\n").ok_or_else(|| bad("no blank line before the signatures"))?;
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        check_text(text)?;
        if !sigs.ends_with('\n') {
            return Err(bad("the last signature line does not end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            let body = line.strip_prefix(SIG_PREFIX).ok_or_else(|| bad("a signature line does not start with an em dash"))?;
            let (name, blob) = body.split_once(' ').ok_or_else(|| bad("a signature line is not NAME SIGNATURE"))?;
            let blob = B64.decode(blob).map_err(|_| bad("a signature is not base64"))?;
            if !is_valid_key_name(name) || blob.len() < 5 {
                return Err(bad("a signature line is malformed"));
            }
            let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            signatures.push(NoteSignature { name: name.to_string(), id, sig: blob[4..].to_vec() });
            if signatures.len() > SIGNATURES_MAX {
                return Err(bad("more than 100 signatures"));
            }
        }
        Ok(Note { text: text.to_string(), signatures })
    }

    /// Checks the note against each of `verifiers` in turn: the first whose
    /// (name, id) has a signature line decides. Returns that verifier.
    pub fn verify<'v>(&self, verifiers: &'v [Verifier]) -> Result<&'v Verifier, NoteError> {
        for v in verifiers {
            if let Some(s) = self.signatures.iter().find(|s| s.name == v.name && s.id == v.id) {
                if v.verifies(self.text.as_bytes(), &s.sig) {
                    return Ok(v);
                }
                return Err(NoteError::BadSignature { name: v.name.clone(), id: v.id });
            }
        }
        let (name, id) = verifiers.first().map_or((String::new(), 0), |v| (v.name.clone(), v.id));
        Err(NoteError::UnknownKey { name, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the example of Go's sumdb/note (and of the signed_note crate)
    // reproduces exactly: same key id, same note bytes, and it verifies.
    #[test]
    fn matches_the_reference_example() {
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
        let signer = NoteSigner::parse(skey).unwrap();
        assert_eq!(signer.encode(), skey);
        let note = signer.sign(text).unwrap();
        let want = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
        assert_eq!(note, want);
        let v = Verifier::parse(&signer.verifier().encode()).unwrap();
        assert_eq!(Note::parse(&note).unwrap().verify(&[v]).unwrap().name, "PeterNeumann");
    }

    // Goal: an altered text, another key, and malformed notes and keys are
    // each refused with their own error, never a panic.
    #[test]
    fn refusals() {
        let a = NoteSigner::from_seed("cairn/a", [1; 32]).unwrap();
        let b = NoteSigner::from_seed("cairn/a", [2; 32]).unwrap();
        let note = a.sign("cairn/a\n5\nAAAA\n").unwrap();
        let altered = note.replacen("\n5\n", "\n6\n", 1);
        let va = a.verifier();
        assert!(matches!(Note::parse(&altered).unwrap().verify(std::slice::from_ref(&va)), Err(NoteError::BadSignature { .. })));
        assert!(matches!(Note::parse(&note).unwrap().verify(&[b.verifier()]), Err(NoteError::UnknownKey { .. })));
        for bad in ["", "text\n", "text\n\n", "text\n\n\u{2014} x\n", "\n\n\u{2014} a AAAA\n"] {
            assert!(Note::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "a+b", "a+0000000g+AQ==", "a+00000000+!!", "a b+00000000+AQ=="] {
            assert!(Verifier::parse(bad).is_err(), "{bad:?}");
        }
        assert!(a.sign("no newline").is_err());
        assert!(a.sign("blank\n\nline\n").is_err());
    }
}
