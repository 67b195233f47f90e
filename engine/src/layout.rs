//! The data directory's layout: every directory and file name the engine
//! uses, in one place (docs/FORMAT.md describes what each file holds).
//!
//! ```text
//! <data-dir>/
//!   LOCK                          held while a process has the store open
//!   MANIFEST                      the sealed segments
//!   checkpoints                   every signed checkpoint, in order
//!   keys/signing.key, verifiers   the signing key; every public key
//!   keys/digest-rsa[.key]         the RSA digest keys (made when first needed)
//!   holds/<name>                  retention holds (the lowest seq a reader still needs)
//!   wal/<seq>.wal                 unsealed events
//!   segments/<seq>[.<gen>].seg    sealed events
//!   tiles/                        the Merkle tree (C2SP tlog-tiles)
//! ```

pub const LOCK_FILE: &str = "LOCK";
pub const MANIFEST_FILE: &str = "MANIFEST";
pub const HISTORY_FILE: &str = "checkpoints";
pub const KEY_DIR: &str = "keys";
pub const SIGNING_KEY_FILE: &str = "signing.key";
pub const VERIFIERS_FILE: &str = "verifiers";

pub const HOLD_DIR: &str = "holds";
pub const WAL_DIR: &str = "wal";
pub const SEGMENT_DIR: &str = "segments";
pub const TILE_DIR: &str = "tiles";

/// File name of the segment whose first event is `first_seq`, written by
/// generation `gen` (0: a seal; n: the n-th rewrite of that range, by
/// compaction), so a rewrite never reuses the name of a file it replaces.
pub fn segment_file_name(first_seq: u64, gen: u32) -> String {
    if gen == 0 {
        format!("{first_seq:020}.seg")
    } else {
        format!("{first_seq:020}.{gen}.seg")
    }
}

/// The (first seq, generation) a segment file name encodes.
pub fn parse_segment_file_name(name: &str) -> Option<(u64, u32)> {
    let stem = name.strip_suffix(".seg")?;
    let (seq, gen) = match stem.split_once('.') {
        Some((s, g)) if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) && !g.starts_with('0') => (s, g.parse().ok()?),
        Some(_) => return None,
        None => (stem, 0),
    };
    (seq.len() == 20 && seq.bytes().all(|b| b.is_ascii_digit())).then(|| seq.parse().ok().map(|s| (s, gen))).flatten()
}

/// File name of the WAL whose first event is `first_seq`.
pub fn wal_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Parses a WAL file name back into its first seq.
pub fn parse_wal_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_wal_file_name(&wal_file_name(42)), Some(42));
        assert_eq!(parse_wal_file_name("42.wal"), None);
        assert_eq!(parse_segment_file_name(&segment_file_name(42, 0)), Some((42, 0)));
        assert_eq!(parse_segment_file_name(&segment_file_name(42, 3)), Some((42, 3)));
        assert_eq!(parse_segment_file_name("00000000000000000042.03.seg"), None);
        assert_eq!(parse_segment_file_name("42.seg"), None);
    }
}
