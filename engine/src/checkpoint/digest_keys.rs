//! The store's RSA-2048 digest-signing keys: the keys that sign the
//! CloudTrail digest files Cairn delivers (SHA256withRSA, RSASSA-PKCS1-v1_5,
//! as CloudTrail signs them), so that `aws cloudtrail validate-logs` and
//! any tool written for CloudTrail verify them.
//!
//! Files in `keys/` of the data directory (docs/FORMAT.md, "Digest keys"):
//!
//! - `digest-rsa.key` — the current private key, PKCS#8 PEM, mode 0600;
//! - `digest-rsa` — every digest key the store has used, oldest first, one
//!   line each: `<fingerprint> <valid-from-ms> <valid-to-ms or -> <base64 of
//!   the DER PKCS#1 RSAPublicKey>`; the fingerprint is the lower-case hex
//!   MD5 of that DER (32 characters, CloudTrail's
//!   `digestPublicKeyFingerprint` shape). The current key's range is open.
//!
//! The first key is made when something first needs one (delivery starts,
//! or `cairn key rotate`): a store that never delivers never pays for an
//! RSA key generation. A rotation writes the new private key to
//! `digest-rsa.key.next`, then the list (old key closed, new key opened),
//! then renames `.next` over `digest-rsa.key`; opening finishes or drops
//! an interrupted rotation, so the list always names the key that signs.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::layout::KEY_DIR;

const PRIVATE_FILE: &str = "digest-rsa.key";
const NEXT_FILE: &str = "digest-rsa.key.next";
const LIST_FILE: &str = "digest-rsa";
/// CloudTrail's digest keys are RSA-2048.
pub const RSA_BITS: usize = 2048;
/// The `digestSignatureAlgorithm` (and S3 `signature-algorithm`) value.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// One digest key's public half, as `ListPublicKeys` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPublicKey {
    /// 32 lower-case hex digits: MD5 of `der`.
    pub fingerprint: String,
    /// DER of the PKCS#1 RSAPublicKey.
    pub der: Vec<u8>,
    pub valid_from_ms: i64,
    /// `None` for the current key.
    pub valid_to_ms: Option<i64>,
}

impl DigestPublicKey {
    fn new(der: Vec<u8>, valid_from_ms: i64) -> DigestPublicKey {
        DigestPublicKey { fingerprint: fingerprint(&der), der, valid_from_ms, valid_to_ms: None }
    }

    /// Whether the key was valid at some time in `[from, to]`.
    pub fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.valid_from_ms <= to_ms && self.valid_to_ms.is_none_or(|t| t >= from_ms)
    }

    fn line(&self) -> String {
        let to = self.valid_to_ms.map_or("-".to_string(), |t| t.to_string());
        format!("{} {} {} {}\n", self.fingerprint, self.valid_from_ms, to, base64::engine::general_purpose::STANDARD.encode(&self.der))
    }
}

/// The hex MD5 of a public key's DER.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Md5::digest(der))
}

/// Verifies a SHA256withRSA signature by a DER PKCS#1 public key.
pub fn verify(der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::signature::Verifier;
    let Ok(key) = RsaPublicKey::from_pkcs1_der(der) else { return false };
    let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else { return false };
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(message, &sig).is_ok()
}

/// The digest keys of a store.
pub struct DigestKeys {
    dir: PathBuf,
    current: Option<rsa::pkcs1v15::SigningKey<sha2::Sha256>>,
    list: Vec<DigestPublicKey>,
}

impl std::fmt::Debug for DigestKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestKeys").field("keys", &self.list.len()).finish()
    }
}

fn parse_list(path: &Path, text: &str) -> Result<Vec<DigestPublicKey>> {
    let mut out: Vec<DigestPublicKey> = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |what: &str| Error::corruption(path, i as u64, format!("line {}: {what}", i + 1));
        let f: Vec<&str> = line.split(' ').collect();
        let [fp, from, to, der] = f[..] else { return Err(bad("expected 4 space-separated fields")) };
        let der = base64::engine::general_purpose::STANDARD.decode(der).map_err(|_| bad("the key is not base64"))?;
        let k = DigestPublicKey {
            fingerprint: fingerprint(&der),
            valid_from_ms: from.parse().map_err(|_| bad("valid-from is not an integer"))?,
            valid_to_ms: if to == "-" { None } else { Some(to.parse().map_err(|_| bad("valid-to is not an integer or -"))?) },
            der,
        };
        if k.fingerprint != fp {
            return Err(bad("the fingerprint is not the MD5 of the key"));
        }
        if out.last().is_some_and(|p| p.valid_to_ms.is_none()) {
            return Err(bad("a key follows one that is still open"));
        }
        out.push(k);
    }
    Ok(out)
}

fn public_der(key: &RsaPrivateKey) -> Result<Vec<u8>> {
    let doc = RsaPublicKey::from(key).to_pkcs1_der().map_err(|e| Error::InvalidArgument(format!("encoding an RSA public key: {e}")))?;
    Ok(doc.as_bytes().to_vec())
}

fn read_private(fs: &dyn FileSystem, path: &Path) -> Result<Option<RsaPrivateKey>> {
    match fs.read(path) {
        Ok(b) => {
            let text = std::str::from_utf8(&b).map_err(|_| Error::corruption(path, 0, "not UTF-8 text"))?;
            RsaPrivateKey::from_pkcs8_pem(text).map(Some).map_err(|e| Error::corruption(path, 0, format!("not a PKCS#8 PEM RSA key: {e}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

impl DigestKeys {
    /// Loads the digest keys of the store in `data_dir` (none yet is fine),
    /// finishing or dropping an interrupted rotation.
    pub fn open(fs: &dyn FileSystem, data_dir: &Path) -> Result<DigestKeys> {
        let dir = data_dir.join(KEY_DIR);
        let lpath = dir.join(LIST_FILE);
        let list = match fs.read(&lpath) {
            Ok(b) => parse_list(&lpath, std::str::from_utf8(&b).map_err(|_| Error::corruption(&lpath, 0, "not UTF-8 text"))?)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("read", &lpath, e)),
        };
        let (ppath, npath) = (dir.join(PRIVATE_FILE), dir.join(NEXT_FILE));
        let listed_last = |k: &RsaPrivateKey| -> Result<bool> {
            let der = public_der(k)?;
            Ok(list.last().is_some_and(|l| l.der == der))
        };
        if let Some(next) = read_private(fs, &npath)? {
            if listed_last(&next)? {
                fs.rename(&npath, &ppath).map_err(|e| Error::io("rename", &npath, e))?;
                fs.sync_dir(&dir).map_err(|e| Error::io("fsync directory", &dir, e))?;
            } else {
                fs.remove_file(&npath).map_err(|e| Error::io("remove", &npath, e))?;
            }
        }
        let current = match read_private(fs, &ppath)? {
            Some(k) if listed_last(&k)? => Some(rsa::pkcs1v15::SigningKey::new(k)),
            Some(_) => return Err(Error::corruption(&lpath, 0, format!("its newest key is not the one in {PRIVATE_FILE}"))),
            None if list.is_empty() => None,
            None => {
                return Err(Error::corruption(
                    &ppath,
                    0,
                    "the RSA digest key is missing but keys/digest-rsa lists keys; restore keys/digest-rsa.key from a backup",
                ))
            }
        };
        Ok(DigestKeys { dir, current, list })
    }

    /// Every digest key the store has used, oldest first.
    pub fn public_keys(&self) -> &[DigestPublicKey] {
        &self.list
    }

    /// The current key, making the first one at `now_ms` if there is none.
    pub fn ensure(&mut self, fs: &dyn FileSystem, now_ms: i64) -> Result<&DigestPublicKey> {
        if self.current.is_none() {
            self.rotate(fs, now_ms)?;
        }
        self.list.last().ok_or_else(|| Error::InvalidArgument("no digest key after making one".into()))
    }

    /// Switches to a new key valid from `now_ms`; the previous key's range
    /// closes at `now_ms` and it stays listed.
    pub fn rotate(&mut self, fs: &dyn FileSystem, now_ms: i64) -> Result<()> {
        let key =
            RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS).map_err(|e| Error::InvalidArgument(format!("making an RSA key: {e}")))?;
        let pem = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::InvalidArgument(format!("encoding an RSA key: {e}")))?;
        fs.create_dir_all(&self.dir).map_err(|e| Error::io("create directory", &self.dir, e))?;
        crate::fs::replace_file(fs, &self.dir.join(NEXT_FILE), pem.as_bytes(), true)?;
        let mut list = self.list.clone();
        if let Some(last) = list.last_mut() {
            last.valid_to_ms = Some(now_ms.max(last.valid_from_ms));
        }
        let from = list.last().and_then(|l| l.valid_to_ms).unwrap_or(now_ms);
        list.push(DigestPublicKey::new(public_der(&key)?, from));
        let text: String = list.iter().map(DigestPublicKey::line).collect();
        crate::fs::replace_file(fs, &self.dir.join(LIST_FILE), text.as_bytes(), false)?;
        let (next, path) = (self.dir.join(NEXT_FILE), self.dir.join(PRIVATE_FILE));
        fs.rename(&next, &path).map_err(|e| Error::io("rename", &next, e))?;
        fs.sync_dir(&self.dir).map_err(|e| Error::io("fsync directory", &self.dir, e))?;
        self.current = Some(rsa::pkcs1v15::SigningKey::new(key));
        self.list = list;
        Ok(())
    }

    /// Signs `message` with the current key (SHA256withRSA); returns the
    /// signature and the key's fingerprint. `None` before the first key.
    pub fn sign(&self, message: &[u8]) -> Option<(Vec<u8>, &DigestPublicKey)> {
        let key = self.current.as_ref()?;
        Some((key.sign(message).to_vec(), self.list.last()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    // Goal: no key until one is needed; the first key and a rotation are
    // listed with closed/open validity ranges, signatures verify with the
    // listed DER, and a reopen loads the same current key.
    #[test]
    fn lazy_create_rotate_sign_verify() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        let mut k = DigestKeys::open(&fs, dir.path()).unwrap();
        assert!(k.public_keys().is_empty() && k.sign(b"x").is_none());
        let first = k.ensure(&fs, 1_000).unwrap().clone();
        assert_eq!((first.valid_from_ms, first.valid_to_ms, first.fingerprint.len()), (1_000, None, 32));
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join("keys/digest-rsa.key")).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let (sig, by) = k.sign(b"message").unwrap();
        assert_eq!(by.fingerprint, first.fingerprint);
        assert!(verify(&first.der, b"message", &sig));
        assert!(!verify(&first.der, b"messagf", &sig));
        k.rotate(&fs, 5_000).unwrap();
        let again = DigestKeys::open(&fs, dir.path()).unwrap();
        let l = again.public_keys();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].valid_to_ms, l[1].valid_from_ms, l[1].valid_to_ms), (Some(5_000), 5_000, None));
        assert!(l[0].overlaps(0, 1_000) && !l[0].overlaps(5_001, 9_000) && l[1].overlaps(9_000, 9_000));
        let (sig, by) = again.sign(b"m2").unwrap();
        assert_eq!(by.fingerprint, l[1].fingerprint);
        assert!(verify(&l[1].der, b"m2", &sig) && !verify(&l[0].der, b"m2", &sig));
    }

    // Goal: a rotation interrupted after the new private key was written
    // but before the list named it is dropped; one interrupted after the
    // list is finished; a damaged list is refused with the line named.
    #[test]
    fn interrupted_rotation_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        let mut k = DigestKeys::open(&fs, dir.path()).unwrap();
        let first = k.ensure(&fs, 1).unwrap().clone();
        let keys = dir.path().join("keys");
        // Interrupted before the list: a .next key the list does not name.
        let other_dir = tempfile::tempdir().unwrap();
        DigestKeys::open(&fs, other_dir.path()).unwrap().ensure(&fs, 1).unwrap();
        std::fs::copy(other_dir.path().join("keys").join(PRIVATE_FILE), keys.join(NEXT_FILE)).unwrap();
        let mut k = DigestKeys::open(&fs, dir.path()).unwrap();
        assert_eq!(k.public_keys().len(), 1);
        assert_eq!(k.sign(b"m").unwrap().1.fingerprint, first.fingerprint);
        assert!(!keys.join(NEXT_FILE).exists());
        k.rotate(&fs, 2).unwrap();
        // Interrupted after the list: .next holds the listed newest key.
        std::fs::rename(keys.join(PRIVATE_FILE), keys.join(NEXT_FILE)).unwrap();
        std::fs::write(keys.join(PRIVATE_FILE), "garbage").unwrap();
        let r = DigestKeys::open(&fs, dir.path()).unwrap();
        assert_eq!(r.public_keys().len(), 2);
        assert_ne!(r.sign(b"m").unwrap().1.fingerprint, first.fingerprint);
        assert!(!keys.join(NEXT_FILE).exists());
        let list = std::fs::read_to_string(keys.join(LIST_FILE)).unwrap();
        std::fs::write(keys.join(LIST_FILE), list.replacen(&first.fingerprint, &"0".repeat(32), 1)).unwrap();
        let e = DigestKeys::open(&fs, dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("fingerprint"), "{e}");
    }
}
