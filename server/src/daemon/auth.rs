//! Access tokens. No anonymous access: on first start the daemon creates an
//! admin token, written to `<data-dir>/admin.token` (mode 0600) for local
//! clients; more are issued with `cairn token create --role ...`. The
//! daemon stores only SHA-256 hashes, one per line in `<data-dir>/tokens`:
//! `<role> <sha256 hex> <name>`.

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

/// 32 bytes from the OS's random source.
fn random_token() -> Result<String> {
    let mut b = [0u8; 32];
    let mut f = fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut b).context("reading /dev/urandom")?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(b)))
}

fn write_private(path: &Path, content: &str) -> Result<()> {
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
        let clean: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
        self.entries.write().push((role, hash(&token), clean));
        self.save()?;
        Ok(token)
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
}
