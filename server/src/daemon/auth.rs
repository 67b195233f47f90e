//! Access tokens. No anonymous access: on first start the daemon creates an
//! admin token, written to `<data-dir>/admin.token` (mode 0600) for local
//! clients; more are issued with `cairn token create --role ...`. The
//! daemon stores only SHA-256 hashes, one per line in `<data-dir>/tokens`:
//! `<role> <sha256 hex> <name>`.
//!
//! AWS access keys (for the CloudTrail-compatible HTTP API, signed with
//! SigV4) are issued by `cairn token create --aws` and kept in
//! `<data-dir>/aws-keys`, mode 0600, one per line:
//! `<role> <access key id> <key material hex> <name>`. The key material is
//! SHA-256("AWS4" + secret) (see `crate::sigv4`): not the secret, but
//! enough to check (and so to make) signatures, so the file must stay
//! private, as the tokens' admin file does.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use crate::protocol::Role;

pub const TOKENS_FILE: &str = "tokens";
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Tokens are `cairn_` followed by 64 hex digits of randomness.
const TOKEN_PREFIX: &str = "cairn_";

pub struct Tokens {
    path: PathBuf,
    entries: RwLock<Vec<(Role, [u8; 32], String)>>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Bytes from the OS's random source.
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("reading the OS's random source: {e}"))?;
    Ok(b)
}

/// 32 bytes from the OS's random source.
fn random_token() -> Result<String> {
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(random_bytes::<32>()?)))
}

/// `n` characters drawn uniformly from `alphabet` (at most 256 long).
fn random_chars(n: usize, alphabet: &[u8]) -> Result<String> {
    // Bytes at or above the largest multiple of the alphabet's size are
    // dropped, so every character is equally likely.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<64>()? {
            if (b as usize) < limit && out.len() < n {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

pub(super) fn write_private(path: &Path, content: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {}", tmp.display()))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Tokens {
    /// Loads the token hashes; on first start creates the admin token and
    /// returns its file's path as the second value.
    pub fn open(data_dir: &Path) -> Result<(Tokens, Option<PathBuf>)> {
        let path = data_dir.join(TOKENS_FILE);
        let mut entries = Vec::new();
        let mut created = None;
        match fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let mut it = line.splitn(3, ' ');
                    let (Some(role), Some(h), name) = (it.next(), it.next(), it.next()) else {
                        bail!("{} line {}: expected `<role> <sha256> <name>`", path.display(), n + 1);
                    };
                    let role = Role::parse(role).with_context(|| format!("{} line {}: unknown role {role:?}", path.display(), n + 1))?;
                    let mut digest = [0u8; 32];
                    hex::decode_to_slice(h, &mut digest).with_context(|| format!("{} line {}: bad hash", path.display(), n + 1))?;
                    entries.push((role, digest, name.unwrap_or("").to_string()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = random_token()?;
                let admin_path = data_dir.join(ADMIN_TOKEN_FILE);
                write_private(&admin_path, &format!("{token}\n"))?;
                entries.push((Role::Admin, hash(&token), "admin (created on first start)".into()));
                created = Some(admin_path);
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let t = Tokens { path, entries: RwLock::new(entries) };
        if created.is_some() {
            t.save()?;
        }
        Ok((t, created))
    }

    fn save(&self) -> Result<()> {
        let text: String = self.entries.read().iter().map(|(r, h, n)| format!("{} {} {}\n", r.name(), hex::encode(h), n)).collect();
        write_private(&self.path, &text)
    }

    /// The role of a presented token, if it is known.
    pub fn check(&self, token: &str) -> Option<Role> {
        let h = hash(token.trim());
        // Compare every entry without early exit on the hash bytes.
        let mut found = None;
        for (role, digest, _) in self.entries.read().iter() {
            if digest.iter().zip(h.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0 {
                found = Some(*role);
            }
        }
        found
    }

    /// Issues a new token; only its hash is kept.
    pub fn create(&self, role: Role, name: &str) -> Result<String> {
        let token = random_token()?;
        self.entries.write().push((role, hash(&token), clean_name(name)));
        self.save()?;
        Ok(token)
    }
}

/// A label as stored: no control characters, at most 200 characters.
fn clean_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(200).collect()
}

pub const AWS_KEYS_FILE: &str = "aws-keys";
/// Access key ids: this prefix and 15 base32 characters (20 in all, as
/// AWS's own).
const AWS_KEY_ID_PREFIX: &str = "CAIRN";
/// Secrets: 64 characters of A-Za-z0-9 (381 bits), long enough that
/// "AWS4" + secret exceeds the HMAC block and its hash can be stored.
const AWS_SECRET_CHARS: usize = 64;

/// One AWS access key: its role, id, SigV4 key material, label.
struct AwsKey {
    role: Role,
    id: String,
    material: [u8; 32],
    name: String,
}

/// The AWS access keys cairnd accepts on its HTTP API.
pub struct AwsKeys {
    path: PathBuf,
    entries: RwLock<Vec<AwsKey>>,
    /// Held while a key is added and the file rewritten, so that readers
    /// (every HTTP request) never wait on the file's fsyncs.
    writing: parking_lot::Mutex<()>,
}

impl AwsKeys {
    /// Loads `<data-dir>/aws-keys` (none yet: no keys).
    pub fn open(data_dir: &Path) -> Result<AwsKeys> {
        let path = data_dir.join(AWS_KEYS_FILE);
        let mut entries = Vec::new();
        match fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let at = || format!("{} line {}", path.display(), n + 1);
                    let mut it = line.splitn(4, ' ');
                    let (Some(role), Some(id), Some(h), name) = (it.next(), it.next(), it.next(), it.next()) else {
                        bail!("{}: expected `<role> <access key id> <key material hex> <name>`", at());
                    };
                    let role = Role::parse(role).with_context(|| format!("{}: unknown role {role:?}", at()))?;
                    let mut material = [0u8; 32];
                    hex::decode_to_slice(h, &mut material).with_context(|| format!("{}: bad key material", at()))?;
                    entries.push(AwsKey { role, id: id.to_string(), material, name: name.unwrap_or("").to_string() });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        Ok(AwsKeys { path, entries: RwLock::new(entries), writing: parking_lot::Mutex::new(()) })
    }

    /// The role and SigV4 key material of an access key id.
    pub fn get(&self, access_key_id: &str) -> Option<(Role, [u8; 32])> {
        self.entries.read().iter().find(|k| k.id == access_key_id).map(|k| (k.role, k.material))
    }

    /// Issues a key pair: (access key id, secret). Only the key material
    /// derived from the secret is kept.
    pub fn create(&self, role: Role, name: &str) -> Result<(String, String)> {
        let id = format!("{AWS_KEY_ID_PREFIX}{}", random_chars(15, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")?);
        let secret = random_chars(AWS_SECRET_CHARS, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")?;
        let material: [u8; 32] = crate::sigv4::secret_key_material(&secret).try_into().expect("a 68-byte key is hashed to 32");
        let _writing = self.writing.lock();
        let key = AwsKey { role, id: id.clone(), material, name: clean_name(name) };
        let line = |k: &AwsKey| format!("{} {} {} {}\n", k.role.name(), k.id, hex::encode(k.material), k.name);
        let mut text: String = self.entries.read().iter().map(line).collect();
        text.push_str(&line(&key));
        write_private(&self.path, &text)?;
        self.entries.write().push(key);
        Ok((id, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: first start creates a 0600 admin token that authenticates;
    // unknown tokens do not; created tokens keep their role across reloads.
    #[test]
    fn tokens_lifecycle() {
        let dir = std::env::temp_dir().join(format!("cairn-auth-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (t, created) = Tokens::open(&dir).unwrap();
        let admin_path = created.unwrap();
        let admin = fs::read_to_string(&admin_path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&admin_path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(t.check(&admin), Some(Role::Admin));
        assert_eq!(t.check("cairn_nope"), None);
        let ing = t.create(Role::Ingest, "agent").unwrap();
        let (t2, created2) = Tokens::open(&dir).unwrap();
        assert!(created2.is_none());
        assert_eq!(t2.check(&ing), Some(Role::Ingest));
        assert!(!fs::read_to_string(dir.join(TOKENS_FILE)).unwrap().contains(&ing));
        let _ = fs::remove_dir_all(&dir);
    }

    // Goal: an AWS key pair is issued with AWS's shapes, survives a reload
    // with its role, and its secret is not written anywhere; the stored
    // material signs as the secret does.
    #[test]
    fn aws_keys_lifecycle() {
        let dir = std::env::temp_dir().join(format!("cairn-awskeys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let keys = AwsKeys::open(&dir).unwrap();
        assert!(keys.get("CAIRNAAAAAAAAAAAAAAA").is_none());
        let (id, secret) = keys.create(Role::Read, "analyst laptop").unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("CAIRN") && id.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()), "{id}");
        assert_eq!(secret.len(), 64);
        let (id2, _) = keys.create(Role::Ingest, "").unwrap();
        assert_ne!(id, id2);
        let reloaded = AwsKeys::open(&dir).unwrap();
        let (role, material) = reloaded.get(&id).unwrap();
        assert_eq!(role, Role::Read);
        assert_eq!(reloaded.get(&id2).unwrap().0, Role::Ingest);
        assert_eq!(material.to_vec(), crate::sigv4::secret_key_material(&secret));
        let text = fs::read_to_string(dir.join(AWS_KEYS_FILE)).unwrap();
        assert!(!text.contains(&secret) && text.contains("analyst laptop"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(dir.join(AWS_KEYS_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
