//! The checkpoint history: every checkpoint the store signed, in order, in
//! one append-only file (`checkpoints` in the data directory).
//!
//! Layout (little-endian): `magic "CAIRNCKP" | version u16 | zero[6]`, then
//! entries `note_len u32 | crc32 u32 | issued_ms u64 | note[note_len]`, the
//! CRC covering `issued_ms ‖ note`. An entry is appended with one write and
//! an fdatasync before the checkpoint is handed to anyone. On open, an
//! invalid tail (a crash mid-append) is truncated; an invalid entry followed
//! by valid bytes is corruption.

use std::path::{Path, PathBuf};

use super::SignedCheckpoint;
use crate::codec::{crc32, Reader};
use crate::error::{Error, Result};
use crate::fs::{FileSystem, WritableFile};
use crate::layout::HISTORY_FILE;

const MAGIC: &[u8; 8] = b"CAIRNCKP";
pub const HISTORY_VERSION: u16 = 1;
const HEADER_BYTES: usize = 16;
const ENTRY_FIXED_BYTES: usize = 16;
/// A note in the history is at most this long (a checkpoint is ~200 bytes).
const NOTE_BYTES_MAX: u32 = 64 * 1024;

/// One signed checkpoint and when it was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub issued_ms: u64,
    pub checkpoint: SignedCheckpoint,
}

/// What the history file holds.
#[derive(Debug, Default)]
pub struct HistoryContents {
    pub entries: Vec<HistoryEntry>,
    /// Bytes of valid entries (plus header); anything after is a torn tail.
    pub valid_len: u64,
    pub torn_bytes: u64,
}

/// Decodes a history file's bytes. A damaged entry at the very end is a
/// torn tail; anywhere else it is corruption.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<HistoryContents> {
    if bytes.len() < HEADER_BYTES {
        // A crash while creating the file: nothing was ever appended.
        return Ok(HistoryContents { entries: Vec::new(), valid_len: 0, torn_bytes: bytes.len() as u64 });
    }
    if &bytes[..8] != MAGIC {
        return Err(Error::corruption(path, 0, "not a cairn checkpoint history (bad magic)"));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != HISTORY_VERSION {
        return Err(Error::UnsupportedVersion { path: path.to_path_buf(), found: version, supported: HISTORY_VERSION });
    }
    let mut entries = Vec::new();
    let mut at = HEADER_BYTES;
    while at < bytes.len() {
        match decode_entry(&bytes[at..]) {
            Some((entry, len)) => {
                entries.push(entry);
                at += len;
            }
            None => {
                // Only the last entry may be torn: nothing valid may follow.
                if later_entry_exists(&bytes[at..]) {
                    return Err(Error::corruption(path, at as u64, "a damaged checkpoint entry is followed by valid ones"));
                }
                return Ok(HistoryContents { entries, valid_len: at as u64, torn_bytes: (bytes.len() - at) as u64 });
            }
        }
    }
    Ok(HistoryContents { entries, valid_len: at as u64, torn_bytes: 0 })
}

fn decode_entry(b: &[u8]) -> Option<(HistoryEntry, usize)> {
    let mut r = Reader::new(b);
    let len = r.u32()?;
    if len > NOTE_BYTES_MAX {
        return None;
    }
    let crc = r.u32()?;
    let body = r.bytes(8 + len as usize)?;
    if crc32(&[body]) != crc {
        return None;
    }
    let issued_ms = u64::from_le_bytes(body[..8].try_into().ok()?);
    let note = std::str::from_utf8(&body[8..]).ok()?;
    let checkpoint = SignedCheckpoint::parse(note).ok()?;
    Some((HistoryEntry { issued_ms, checkpoint }, ENTRY_FIXED_BYTES + len as usize))
}

/// Whether a valid entry starts anywhere in `b` after its first byte.
fn later_entry_exists(b: &[u8]) -> bool {
    (1..b.len()).any(|i| decode_entry(&b[i..]).is_some())
}

fn encode_entry(e: &HistoryEntry) -> Vec<u8> {
    let note = e.checkpoint.note.as_bytes();
    let mut body = Vec::with_capacity(8 + note.len());
    body.extend_from_slice(&e.issued_ms.to_le_bytes());
    body.extend_from_slice(note);
    let mut out = Vec::with_capacity(ENTRY_FIXED_BYTES + note.len());
    out.extend_from_slice(&(note.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(&[&body]).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The open history: appends go to the end of the file.
pub struct History {
    path: PathBuf,
    file: Box<dyn WritableFile>,
    last: Option<HistoryEntry>,
    count: u64,
}

impl History {
    /// Opens (creating if needed) the history in `dir`, truncating a torn
    /// tail. Returns it with every entry read.
    pub fn open(fs: &dyn FileSystem, dir: &Path) -> Result<(History, Vec<HistoryEntry>)> {
        let path = dir.join(HISTORY_FILE);
        let bytes = match fs.read(&path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let contents = match &bytes {
            Some(b) => decode(&path, b)?,
            None => HistoryContents::default(),
        };
        let file = if contents.valid_len < HEADER_BYTES as u64 {
            let mut f = fs.create(&path).map_err(|e| Error::io("create", &path, e))?;
            let mut header = MAGIC.to_vec();
            header.extend_from_slice(&HISTORY_VERSION.to_le_bytes());
            header.resize(HEADER_BYTES, 0);
            f.write_all(&header).map_err(|e| Error::io("write", &path, e))?;
            f.sync_data().map_err(|e| Error::io("fdatasync", &path, e))?;
            fs.sync_dir(dir).map_err(|e| Error::io("fsync directory", dir, e))?;
            f
        } else {
            if contents.torn_bytes > 0 {
                fs.truncate(&path, contents.valid_len).map_err(|e| Error::io("truncate torn tail of", &path, e))?;
            }
            fs.open_append(&path).map_err(|e| Error::io("open", &path, e))?
        };
        let h = History { path, file, last: contents.entries.last().cloned(), count: contents.entries.len() as u64 };
        Ok((h, contents.entries))
    }

    /// Appends an entry and makes it durable.
    pub fn append(&mut self, e: HistoryEntry) -> Result<()> {
        self.file.write_all(&encode_entry(&e)).map_err(|err| Error::io("write", &self.path, err))?;
        self.file.sync_data().map_err(|err| Error::io("fdatasync", &self.path, err))?;
        self.last = Some(e);
        self.count += 1;
        Ok(())
    }

    pub fn last(&self) -> Option<&HistoryEntry> {
        self.last.as_ref()
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every entry of the history in `dir` without opening it for
/// writing (for `verify`). A missing file is an empty history.
pub fn read_all(fs: &dyn FileSystem, dir: &Path) -> Result<HistoryContents> {
    let path = dir.join(HISTORY_FILE);
    match fs.read(&path) {
        Ok(b) => decode(&path, &b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HistoryContents::default()),
        Err(e) => Err(Error::io("read", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, NoteSigner};
    use crate::fs::RealFs;

    fn entry(size: u64) -> HistoryEntry {
        let s = NoteSigner::from_seed("cairn/t", [1; 32]).unwrap();
        let c = Checkpoint { origin: "cairn/t".into(), size, root: [size as u8; 32] };
        HistoryEntry { issued_ms: size * 10, checkpoint: SignedCheckpoint::parse(&s.sign(&c.body()).unwrap()).unwrap() }
    }

    // Goal: entries survive reopening; a torn tail at any cut is dropped
    // and the file stays appendable; damage before valid entries is
    // corruption.
    #[test]
    fn append_reopen_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs;
        {
            let (mut h, old) = History::open(&fs, dir.path()).unwrap();
            assert!(old.is_empty());
            for n in 1..=3 {
                h.append(entry(n)).unwrap();
            }
        }
        let path = dir.path().join(HISTORY_FILE);
        let full = std::fs::read(&path).unwrap();
        let (_, got) = History::open(&fs, dir.path()).unwrap();
        assert_eq!(got, vec![entry(1), entry(2), entry(3)]);
        let two = decode(&path, &full).unwrap().entries.len();
        assert_eq!(two, 3);
        let third_start = full.len() - encode_entry(&entry(3)).len();
        for cut in third_start + 1..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (mut h, got) = History::open(&fs, dir.path()).unwrap();
            assert_eq!(got.len(), 2, "cut at {cut}");
            h.append(entry(9)).unwrap();
            drop(h);
            assert_eq!(History::open(&fs, dir.path()).unwrap().1.last(), Some(&entry(9)));
        }
        let mut bad = full.clone();
        bad[HEADER_BYTES + 20] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(matches!(History::open(&fs, dir.path()), Err(Error::Corruption { .. })));
    }
}
