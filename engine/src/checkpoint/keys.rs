//! The store's signing keys, in `keys/` of the data directory:
//!
//! - `signing.key` — the current Ed25519 signing key as a signed-note
//!   private key (`PRIVATE+KEY+<name>+<id>+<base64>`), mode 0600;
//! - `verifiers` — every public key the store has signed with, one
//!   `<name>+<id>+<base64>` per line, oldest first, so that checkpoints
//!   signed before a rotation stay verifiable.
//!
//! The key name is the checkpoint origin, `cairn/<16 hex digits>`, chosen
//! at random when the store first creates its key and kept across
//! rotations. Files are replaced atomically (temp file, fsync, rename,
//! fsync directory); `verifiers` always gains the new public key before
//! `signing.key` switches to it.

use std::path::{Path, PathBuf};

use super::note::{NoteSigner, Verifier};
use crate::error::{Error, Result};
use crate::fs::{replace_file, FileSystem};
use crate::layout::{KEY_DIR, SIGNING_KEY_FILE, VERIFIERS_FILE};

/// The current signer and every verifier the store has used.
pub struct KeyRing {
    dir: PathBuf,
    signer: NoteSigner,
    verifiers: Vec<Verifier>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("signer", &self.signer).field("verifiers", &self.verifiers.len()).finish()
    }
}

fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Error::InvalidArgument(format!("the OS random source failed: {e}")))?;
    Ok(seed)
}

fn read_optional(fs: &dyn FileSystem, path: &Path) -> Result<Option<String>> {
    match fs.read(path) {
        Ok(b) => String::from_utf8(b).map(Some).map_err(|_| Error::corruption(path, 0, "not UTF-8 text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Parses the verifiers file.
pub fn parse_verifiers(path: &Path, text: &str) -> Result<Vec<Verifier>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        out.push(Verifier::parse(line).map_err(|e| Error::corruption(path, i as u64, format!("line {}: {e}", i + 1)))?);
    }
    Ok(out)
}

impl KeyRing {
    /// Loads the keys of the store in `data_dir`, creating a signing key
    /// when there is none and `may_create` (the store has never signed).
    pub fn open(fs: &dyn FileSystem, data_dir: &Path, may_create: bool) -> Result<KeyRing> {
        let dir = data_dir.join(KEY_DIR);
        fs.create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        let vpath = dir.join(VERIFIERS_FILE);
        let mut verifiers = match read_optional(fs, &vpath)? {
            Some(t) => parse_verifiers(&vpath, &t)?,
            None => Vec::new(),
        };
        let kpath = dir.join(SIGNING_KEY_FILE);
        let signer = match read_optional(fs, &kpath)? {
            Some(t) => NoteSigner::parse(&t).map_err(|e| Error::corruption(&kpath, 0, e.to_string()))?,
            None if may_create => {
                let name = format!("cairn/{}", hex::encode(&random_seed()?[..8]));
                let s = NoteSigner::from_seed(&name, random_seed()?).map_err(|e| Error::InvalidArgument(e.to_string()))?;
                verifiers.push(s.verifier());
                replace_file(fs, &vpath, verifiers_text(&verifiers).as_bytes(), false)?;
                replace_file(fs, &kpath, format!("{}\n", s.encode()).as_bytes(), true)?;
                s
            }
            None => {
                return Err(Error::corruption(
                    &kpath,
                    0,
                    "the signing key is missing but the store has signed checkpoints; restore keys/signing.key from a backup",
                ))
            }
        };
        if !verifiers.iter().any(|v| v.id == signer.id && v.name == signer.name) {
            // A rotation was interrupted after `verifiers` was replaced but
            // the key file points to a key it lacks: never possible by our
            // write order, so the directory was edited.
            return Err(Error::corruption(&vpath, 0, format!("does not list the signing key {}+{:08x}", signer.name, signer.id)));
        }
        Ok(KeyRing { dir, signer, verifiers })
    }

    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    /// Every public key the store has signed with, oldest first.
    pub fn verifiers(&self) -> &[Verifier] {
        &self.verifiers
    }

    /// The checkpoint origin (the key name).
    pub fn origin(&self) -> &str {
        &self.signer.name
    }

    /// Switches to a new signing key under the same name. The old public
    /// key stays in `verifiers`.
    pub fn rotate(&mut self, fs: &dyn FileSystem) -> Result<()> {
        let s = NoteSigner::from_seed(&self.signer.name, random_seed()?).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let mut verifiers = self.verifiers.clone();
        verifiers.push(s.verifier());
        replace_file(fs, &self.dir.join(VERIFIERS_FILE), verifiers_text(&verifiers).as_bytes(), false)?;
        replace_file(fs, &self.dir.join(SIGNING_KEY_FILE), format!("{}\n", s.encode()).as_bytes(), true)?;
        self.signer = s;
        self.verifiers = verifiers;
        Ok(())
    }
}

fn verifiers_text(v: &[Verifier]) -> String {
    v.iter().map(|v| format!("{}\n", v.encode())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    // Goal: a key is created once (private file mode 0600), reloads the
    // same, and a rotation keeps the old public key listed.
    #[test]
    fn create_reload_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        assert!(KeyRing::open(&fs, dir.path(), false).is_err(), "no key and may not create");
        let k = KeyRing::open(&fs, dir.path(), true).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join("keys/signing.key")).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(k.origin().starts_with("cairn/") && k.origin().len() == 22);
        let mut again = KeyRing::open(&fs, dir.path(), false).unwrap();
        assert_eq!(again.signer().id, k.signer().id);
        again.rotate(&fs).unwrap();
        let r = KeyRing::open(&fs, dir.path(), false).unwrap();
        assert_ne!(r.signer().id, k.signer().id);
        assert_eq!(r.origin(), k.origin());
        assert_eq!(r.verifiers().len(), 2);
        assert_eq!(r.verifiers()[0].id, k.signer().id);
    }
}
