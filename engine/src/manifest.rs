//! The manifest: the set of live sealed segments, replaced atomically
//! (write `MANIFEST.tmp`, fsync, rename over `MANIFEST`, fsync the
//! directory). A segment file not listed here does not exist for the store.
//!
//! Layout: `magic "CAIRNMAN" | version u16 | flags u16 | reserved u32 |
//! generation u64 | sealed_size u64 | segment_count u64 | min_retained_seq u64 |
//! cut_time_ms i64 | cut_policy_ms u64 | segment entry[segment_count] | crc32 u32`,
//! where a segment entry is `first_seq u64 | count u64 | file_bytes u64 |
//! footer_hash [32] | file_gen u32 | zero u32`. Version 1 (still read) had
//! zeros for the cut and entries without the generation (56 bytes).

use std::path::Path;

use crate::codec::{crc32, put_u16, put_u32, put_u64, Reader};
use crate::error::{Error, Result};
use crate::fs::FileSystem;
use crate::layout::MANIFEST_FILE;
use crate::limits::MANIFEST_SEGMENTS_MAX;
use crate::merkle::Hash;

pub const MANIFEST_TMP_FILE: &str = "MANIFEST.tmp";
pub const MANIFEST_MAGIC: &[u8; 8] = b"CAIRNMAN";
pub const MANIFEST_VERSION: u16 = 2;
const HEADER_BYTES: usize = 64;
const ENTRY_BYTES_V1: usize = 56;
const ENTRY_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    pub first_seq: u64,
    pub count: u64,
    pub file_bytes: u64,
    pub footer_hash: Hash,
    /// Which rewrite of this seq range the file is (`segment_file_name`).
    pub file_gen: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Incremented by every replacement.
    pub generation: u64,
    /// Events `0..sealed_size` are in sealed segments (or were retained away).
    pub sealed_size: u64,
    /// Lowest seq still stored (retention moves it; 0 until then).
    pub min_retained_seq: u64,
    /// The last retention cut: events older than this eventTime were
    /// eligible for removal (0: never cut).
    pub cut_time_ms: i64,
    /// ... under a policy keeping this much history (0: never cut).
    pub cut_policy_ms: u64,
    pub segments: Vec<SegmentEntry>,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(HEADER_BYTES + ENTRY_BYTES * self.segments.len() + 4);
        o.extend_from_slice(MANIFEST_MAGIC);
        put_u16(&mut o, MANIFEST_VERSION);
        put_u16(&mut o, 0);
        put_u32(&mut o, 0);
        put_u64(&mut o, self.generation);
        put_u64(&mut o, self.sealed_size);
        put_u64(&mut o, self.segments.len() as u64);
        put_u64(&mut o, self.min_retained_seq);
        o.extend_from_slice(&self.cut_time_ms.to_le_bytes());
        put_u64(&mut o, self.cut_policy_ms);
        debug_assert_eq!(o.len(), HEADER_BYTES);
        for s in &self.segments {
            put_u64(&mut o, s.first_seq);
            put_u64(&mut o, s.count);
            put_u64(&mut o, s.file_bytes);
            o.extend_from_slice(&s.footer_hash);
            put_u32(&mut o, s.file_gen);
            put_u32(&mut o, 0);
        }
        let crc = crc32(&[&o]);
        put_u32(&mut o, crc);
        o
    }

    pub fn decode(path: &Path, b: &[u8]) -> Result<Self> {
        let bad = |off: usize, what: &str| Error::corruption(path, off as u64, format!("manifest: {what}"));
        if b.len() < HEADER_BYTES + 4 || &b[..8] != MANIFEST_MAGIC {
            return Err(bad(0, "missing or bad magic"));
        }
        // The checksum first: a damaged version is damage, not a newer
        // build's manifest.
        let body = &b[..b.len() - 4];
        if crc32(&[body]) != u32::from_le_bytes(b[b.len() - 4..].try_into().unwrap_or_default()) {
            return Err(bad(b.len() - 4, "checksum mismatch"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if !(1..=MANIFEST_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: MANIFEST_VERSION });
        }
        let mut r = Reader::new(&body[16..]);
        let short = || bad(0, "short");
        let generation = r.u64().ok_or_else(short)?;
        let sealed_size = r.u64().ok_or_else(short)?;
        let count = r.u64().ok_or_else(short)?;
        let min_retained_seq = r.u64().ok_or_else(short)?;
        let (cut_time_ms, cut_policy_ms) = if version >= 2 { (r.i64().ok_or_else(short)?, r.u64().ok_or_else(short)?) } else { (0, 0) };
        let entry_bytes = if version >= 2 { ENTRY_BYTES } else { ENTRY_BYTES_V1 };
        if count > MANIFEST_SEGMENTS_MAX || (body.len() - HEADER_BYTES) as u64 != count * entry_bytes as u64 {
            return Err(bad(32, &format!("segment count {count} does not match the file length")));
        }
        let mut r = Reader::new(&body[HEADER_BYTES..]);
        let mut segments = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let mut e = SegmentEntry {
                first_seq: r.u64().ok_or_else(short)?,
                count: r.u64().ok_or_else(short)?,
                file_bytes: r.u64().ok_or_else(short)?,
                footer_hash: r.array().ok_or_else(short)?,
                file_gen: 0,
            };
            if version >= 2 {
                e.file_gen = r.u32().ok_or_else(short)?;
                r.u32().ok_or_else(short)?;
            }
            segments.push(e);
        }
        Ok(Manifest { generation, sealed_size, min_retained_seq, cut_time_ms, cut_policy_ms, segments })
    }

    /// Reads the manifest; `Ok(None)` when the store has none yet.
    pub fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(MANIFEST_FILE);
        match fs.read(&path) {
            Ok(b) => Self::decode(&path, &b).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Atomically replaces the manifest: temp file, fsync, rename, fsync dir.
    pub fn store(&self, fs: &dyn FileSystem, dir: &Path) -> Result<()> {
        let tmp = dir.join(MANIFEST_TMP_FILE);
        let path = dir.join(MANIFEST_FILE);
        let mut f = fs.create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&self.encode()).map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
        drop(f);
        fs.rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        fs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the manifest round-trips and any flipped byte or truncation is
    // detected (never a panic, never a silently different manifest).
    #[test]
    fn round_trip_and_damage() {
        let m = Manifest {
            generation: 3,
            sealed_size: 100,
            min_retained_seq: 0,
            cut_time_ms: -5,
            cut_policy_ms: 7,
            segments: vec![SegmentEntry { first_seq: 0, count: 100, file_bytes: 999, footer_hash: [9; 32], file_gen: 2 }],
        };
        let b = m.encode();
        assert_eq!(Manifest::decode(Path::new("M"), &b).unwrap(), m);
        for i in 0..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x40;
            assert!(Manifest::decode(Path::new("M"), &d).is_err(), "flip at {i}");
            assert!(Manifest::decode(Path::new("M"), &b[..i]).is_err());
        }
    }
}
