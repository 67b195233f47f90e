//! The write-ahead log: the active segment. One file per active segment,
//! `wal/<first_seq, 20 digits>.wal`; one framed, checksummed frame per group
//! commit. There is no other log to replay: at seal the file's events are
//! rewritten, sorted by time, into an immutable segment and the file is
//! deleted.
//!
//! Recovery tells a torn tail from corruption: an invalid frame with no
//! valid frame after it, in the newest file, is a torn write and is
//! truncated; anything else is a `Corruption` error naming file and offset.
//! This module never decides *when* to roll or seal; `store` does.
//!
//! File header (64 bytes):
//! `magic "CAIRNWAL" | version u16 | flags u16 | reserved u32 | first_seq u64 | created_ms u64 | zero[28] | crc32 u32`
//!
//! Frame: header (32 bytes) then body.
//! `magic u32 | body_len u32 | first_seq u64 | count u32 | flags u32 | body_crc u32 | header_crc u32`
//! Body: `count` entries of `ingest_ms u64 | time_ms i64 | len u32 | leaf [32] | record [len]`.

use std::path::{Path, PathBuf};

use crate::codec::{crc32, put_i64, put_u16, put_u32, put_u64, Reader};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, WritableFile};
use crate::layout::wal_file_name;
use crate::limits::{FRAME_BODY_BYTES_MAX, RECORD_BYTES_MAX};
use crate::merkle::Hash;

pub const WAL_MAGIC: &[u8; 8] = b"CAIRNWAL";
pub const WAL_VERSION: u16 = 1;
pub const WAL_HEADER_BYTES: usize = 64;
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"CFRM");
pub const FRAME_HEADER_BYTES: usize = 32;
/// Per-entry fixed bytes in a frame body before the record.
pub const ENTRY_FIXED_BYTES: usize = 8 + 8 + 4 + 32;

/// One event as it goes into a frame.
pub struct EntryRef<'a> {
    pub ingest_ms: u64,
    pub time_ms: i64,
    pub leaf: &'a Hash,
    pub record: &'a [u8],
}

pub fn encode_header(first_seq: u64, created_ms: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(WAL_HEADER_BYTES);
    h.extend_from_slice(WAL_MAGIC);
    put_u16(&mut h, WAL_VERSION);
    put_u16(&mut h, 0);
    put_u32(&mut h, 0);
    put_u64(&mut h, first_seq);
    put_u64(&mut h, created_ms);
    h.resize(WAL_HEADER_BYTES - 4, 0);
    let crc = crc32(&[&h]);
    put_u32(&mut h, crc);
    h
}

/// Appends one frame holding `entries` (seqs `first_seq..`) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, first_seq: u64, entries: &[EntryRef<'_>]) {
    let start = begin_frame(out);
    for e in entries {
        push_entry(out, e.ingest_ms, e.time_ms, e.leaf, e.record);
    }
    finish_frame(out, start, first_seq, entries.len() as u32);
}

/// Appends one entry (`ingest_ms | time_ms | length | leaf | record`) to
/// `out`; returns where its record starts. A frame's body is its entries
/// back to back, so entries built ahead of time can be copied in whole.
pub fn push_entry(out: &mut Vec<u8>, ingest_ms: u64, time_ms: i64, leaf: &Hash, record: &[u8]) -> usize {
    put_u64(out, ingest_ms);
    put_i64(out, time_ms);
    put_u32(out, record.len() as u32);
    out.extend_from_slice(leaf);
    let at = out.len();
    out.extend_from_slice(record);
    at
}

/// Starts a frame at the end of `out` (room for its header); returns where
/// it starts, for `finish_frame`.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.resize(start + FRAME_HEADER_BYTES, 0);
    start
}

/// Writes the header of the frame begun at `start`, whose body (`count`
/// entries, seqs `first_seq..`) is everything after it in `out`.
pub fn finish_frame(out: &mut [u8], start: usize, first_seq: u64, count: u32) {
    let body = start + FRAME_HEADER_BYTES;
    let body_crc = crc32(&[&out[body..]]);
    let h = encode_frame_header((out.len() - body) as u32, first_seq, count, body_crc);
    out[start..body].copy_from_slice(&h);
}

/// A frame header for a body of `body_len` bytes with checksum `body_crc`.
pub fn encode_frame_header(body_len: u32, first_seq: u64, count: u32, body_crc: u32) -> [u8; FRAME_HEADER_BYTES] {
    let mut h = Vec::with_capacity(FRAME_HEADER_BYTES);
    put_u32(&mut h, FRAME_MAGIC);
    put_u32(&mut h, body_len);
    put_u64(&mut h, first_seq);
    put_u32(&mut h, count);
    put_u32(&mut h, 0);
    put_u32(&mut h, body_crc);
    let header_crc = crc32(&[&h]);
    put_u32(&mut h, header_crc);
    let mut out = [0u8; FRAME_HEADER_BYTES];
    out.copy_from_slice(&h);
    out
}

/// One event read back from a WAL file; `record` is a range into the file.
#[derive(Debug, Clone)]
pub struct WalEntry {
    pub seq: u64,
    pub ingest_ms: u64,
    pub time_ms: i64,
    pub leaf: Hash,
    pub record: std::ops::Range<usize>,
}

/// The result of reading one WAL file.
#[derive(Debug)]
pub struct WalContents {
    pub first_seq: u64,
    pub entries: Vec<WalEntry>,
    /// Length of the valid prefix (header and whole valid frames).
    pub valid_len: u64,
    /// Bytes after the valid prefix that were a torn tail (0 if none).
    pub torn_bytes: u64,
}

struct FrameHeader {
    body_len: u64,
    first_seq: u64,
    count: u32,
    body_crc: u32,
}

fn decode_frame_header(b: &[u8]) -> Option<FrameHeader> {
    let mut r = Reader::new(b.get(..FRAME_HEADER_BYTES)?);
    if r.u32()? != FRAME_MAGIC {
        return None;
    }
    let body_len = u64::from(r.u32()?);
    let first_seq = r.u64()?;
    let count = r.u32()?;
    let _flags = r.u32()?;
    let body_crc = r.u32()?;
    let header_crc = r.u32()?;
    (crc32(&[&b[..FRAME_HEADER_BYTES - 4]]) == header_crc).then_some(FrameHeader { body_len, first_seq, count, body_crc })
}

/// Decodes a frame body into entries; `base` is the body's file offset.
fn decode_body(body: &[u8], base: usize, h: &FrameHeader, out: &mut Vec<WalEntry>) -> Option<()> {
    let mut r = Reader::new(body);
    for i in 0..u64::from(h.count) {
        let ingest_ms = r.u64()?;
        let time_ms = r.i64()?;
        let len = r.u32()? as usize;
        if len > RECORD_BYTES_MAX {
            return None;
        }
        let leaf = r.array::<32>()?;
        let at = base + r.pos();
        r.skip(len)?;
        out.push(WalEntry { seq: h.first_seq + i, ingest_ms, time_ms, leaf, record: at..at + len });
    }
    (r.remaining() == 0).then_some(())
}

/// Tries to decode the frame at `off`; `None` when it is not a valid frame
/// with the expected first seq.
fn frame_at(bytes: &[u8], off: usize, expected_seq: u64, out: &mut Vec<WalEntry>) -> Option<usize> {
    let h = decode_frame_header(bytes.get(off..)?)?;
    if h.first_seq != expected_seq || h.body_len > FRAME_BODY_BYTES_MAX || h.count == 0 {
        return None;
    }
    let body_start = off + FRAME_HEADER_BYTES;
    let body = bytes.get(body_start..body_start.checked_add(h.body_len as usize)?)?;
    if crc32(&[body]) != h.body_crc {
        return None;
    }
    let mark = out.len();
    if decode_body(body, body_start, &h, out).is_none() {
        out.truncate(mark);
        return None;
    }
    Some(body_start + body.len())
}

/// Is there any frame with a valid header checksum at or after `from`?
/// Used to tell a torn tail (nothing valid follows) from damage in the
/// middle of the log (valid frames follow the bad one).
fn valid_frame_after(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = FRAME_MAGIC.to_le_bytes();
    let mut i = from;
    while i + FRAME_HEADER_BYTES <= bytes.len() {
        if bytes[i..i + 4] == magic && decode_frame_header(&bytes[i..]).is_some() {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Reads a whole WAL file. `is_newest`: only the newest file may end in a
/// torn tail; in an older file any invalid byte is corruption.
pub fn read_wal(path: &Path, bytes: &[u8], is_newest: bool) -> Result<WalContents> {
    let mut r = Reader::new(bytes);
    let bad_header = || Error::corruption(path, 0, "WAL file header is missing or fails its checksum");
    let head = r.bytes(WAL_HEADER_BYTES).ok_or_else(bad_header)?;
    if &head[..8] != WAL_MAGIC {
        return Err(Error::corruption(path, 0, "not a cairn WAL file (bad magic)"));
    }
    if crc32(&[&head[..WAL_HEADER_BYTES - 4]]) != u32::from_le_bytes(head[60..64].try_into().unwrap_or_default()) {
        return Err(bad_header());
    }
    let version = u16::from_le_bytes([head[8], head[9]]);
    if version != WAL_VERSION {
        return Err(Error::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: WAL_VERSION });
    }
    let first_seq = u64::from_le_bytes(head[16..24].try_into().unwrap_or_default());
    let mut entries = Vec::new();
    let mut off = WAL_HEADER_BYTES;
    let mut next_seq = first_seq;
    while off < bytes.len() {
        match frame_at(bytes, off, next_seq, &mut entries) {
            Some(end) => {
                next_seq = first_seq + entries.len() as u64;
                off = end;
            }
            None => {
                if !is_newest {
                    return Err(Error::corruption(
                        path,
                        off as u64,
                        format!("invalid frame in a sealed-off WAL file (expected seq {next_seq})"),
                    ));
                }
                if let Some(at) = valid_frame_after(bytes, off + 1) {
                    return Err(Error::corruption(
                        path,
                        off as u64,
                        format!("invalid frame (expected seq {next_seq}) followed by a valid frame at offset {at}: damage in the middle of the log, not a torn tail"),
                    ));
                }
                return Ok(WalContents { first_seq, entries, valid_len: off as u64, torn_bytes: (bytes.len() - off) as u64 });
            }
        }
    }
    Ok(WalContents { first_seq, entries, valid_len: off as u64, torn_bytes: 0 })
}

/// The open, appendable WAL file.
pub struct WalWriter {
    pub path: PathBuf,
    file: Box<dyn WritableFile>,
    pub first_seq: u64,
    pub len: u64,
    pub created_ms: u64,
}

impl WalWriter {
    /// Creates a new WAL file starting at `first_seq`, durable (file and
    /// directory entry) before it returns.
    pub fn create(fs: &dyn FileSystem, dir: &Path, first_seq: u64, created_ms: u64) -> Result<Self> {
        let path = dir.join(wal_file_name(first_seq));
        let mut file = fs.create(&path).map_err(|e| Error::io("create", &path, e))?;
        let header = encode_header(first_seq, created_ms);
        file.write_all(&header).map_err(|e| Error::io("write", &path, e))?;
        file.sync_data().map_err(|e| Error::io("fdatasync", &path, e))?;
        fs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
        Ok(Self { path, file, first_seq, len: header.len() as u64, created_ms })
    }

    /// Reopens an existing WAL whose valid prefix is `len` bytes.
    pub fn reopen(fs: &dyn FileSystem, path: &Path, first_seq: u64, len: u64, created_ms: u64) -> Result<Self> {
        let file = fs.open_append(path).map_err(|e| Error::io("open", path, e))?;
        Ok(Self { path: path.to_path_buf(), file, first_seq, len, created_ms })
    }

    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.file.write_all(buf).map_err(|e| Error::io("write", &self.path, e))?;
        self.len += buf.len() as u64;
        Ok(())
    }

    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("fdatasync", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n_frames: u64) -> Vec<u8> {
        let mut buf = encode_header(10, 1);
        let leaf = [7u8; 32];
        for f in 0..n_frames {
            let recs = [b"{\"a\":1}".as_slice(), b"{\"b\":2}".as_slice()];
            let entries: Vec<EntryRef> = recs.iter().map(|r| EntryRef { ingest_ms: 5, time_ms: -3, leaf: &leaf, record: r }).collect();
            encode_frame(&mut buf, 10 + 2 * f, &entries);
        }
        buf
    }

    // Goal: frames round-trip, with seqs and record ranges intact.
    #[test]
    fn round_trip() {
        let buf = build(3);
        let c = read_wal(Path::new("t.wal"), &buf, true).unwrap();
        assert_eq!(c.entries.len(), 6);
        assert_eq!(c.entries[5].seq, 15);
        assert_eq!(&buf[c.entries[1].record.clone()], b"{\"b\":2}");
        assert_eq!(c.valid_len as usize, buf.len());
        assert_eq!(c.torn_bytes, 0);
    }

    // Goal: a torn tail (any truncation point, or trailing garbage) is cut
    // back to the last whole frame, never an error, in the newest file.
    #[test]
    fn torn_tail_is_truncated() {
        let full = build(3);
        let two = build(2).len();
        for cut in two + 1..full.len() {
            let c = read_wal(Path::new("t.wal"), &full[..cut], true).unwrap();
            assert_eq!(c.entries.len(), 4, "cut at {cut}");
            assert_eq!(c.valid_len as usize, two);
        }
        let mut zeros = full.clone();
        zeros.extend_from_slice(&[0u8; 4096]);
        assert_eq!(read_wal(Path::new("t.wal"), &zeros, true).unwrap().torn_bytes, 4096);
        assert!(read_wal(Path::new("t.wal"), &full[..two + 5], false).is_err());
    }

    // Goal: a damaged frame followed by a valid one is corruption, named
    // with its offset; so is a stale frame with the wrong seq.
    #[test]
    fn mid_log_damage_is_corruption() {
        let mut buf = build(3);
        let at = WAL_HEADER_BYTES + FRAME_HEADER_BYTES + 3;
        buf[at] ^= 0xff;
        let err = read_wal(Path::new("t.wal"), &buf, true).unwrap_err().to_string();
        assert!(err.contains("offset 64"), "{err}");
        assert!(err.contains("not a torn tail"), "{err}");
    }

    // Goal: garbage never panics the reader.
    #[test]
    fn garbage_never_panics() {
        let good = build(2);
        let mut s = 99u64;
        for i in 0..3000 {
            let mut b = good.clone();
            for _ in 0..(i % 7 + 1) {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let p = (s >> 33) as usize % b.len();
                b[p] = (s >> 20) as u8;
            }
            let _ = read_wal(Path::new("g.wal"), &b, i % 2 == 0);
            let _ = read_wal(Path::new("g.wal"), &b[..(s as usize) % b.len()], true);
        }
    }
}
