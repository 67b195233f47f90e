//! Re-sealing mutated files: after a mutation, recompute the checksums a
//! format carries (docs/FORMAT.md), so that half of the fuzz inputs get
//! past the CRCs to the decoders behind them. A file whose CRCs match is
//! not a trusted file: bit rot under a recomputed CRC, or a forger, must
//! get errors too, never a panic.

use cairn_engine::merkle::leaf_hash;

fn crc(b: &[u8]) -> [u8; 4] {
    crc32fast::hash(b).to_le_bytes()
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?)))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The byte range `[off, off + len)` if it lies inside `limit`.
fn range(off: Option<u64>, len: Option<u64>, limit: usize) -> Option<std::ops::Range<usize>> {
    let (off, len) = (usize::try_from(off?).ok()?, usize::try_from(len?).ok()?);
    let end = off.checked_add(len)?;
    (end <= limit).then_some(off..end)
}

/// The checksums of whatever format `label` names.
pub fn reseal(label: &str, b: &mut [u8]) {
    if label.ends_with(".seg") {
        segment(b);
    } else if label.ends_with(".wal") {
        wal(b);
    } else if label.ends_with("MANIFEST") {
        manifest(b);
    } else if label.ends_with("checkpoints") {
        history(b);
    }
}

/// Segment: block CRCs in the block index, each footer section's CRC, the
/// footer's and the header's.
pub fn segment(b: &mut [u8]) {
    const FOOTER: usize = 320;
    if b.len() < 64 + FOOTER {
        return;
    }
    let f = b.len() - FOOTER;
    if let Some(index) = range(u64_at(b, f + 72), u64_at(b, f + 80), f) {
        for e in index.clone().step_by(48).take_while(|e| e + 48 <= index.end) {
            if let Some(block) = range(u64_at(b, e), u32_at(b, e + 8), f) {
                let c = crc(&b[block]);
                b[e + 40..e + 44].copy_from_slice(&c);
            }
        }
    }
    for section in [72, 92, 112, 132, 288] {
        if let Some(r) = range(u64_at(b, f + section), u64_at(b, f + section + 8), f) {
            let c = crc(&b[r]);
            b[f + section + 16..f + section + 20].copy_from_slice(&c);
        }
    }
    let c = crc(&b[f..f + 316]);
    b[f + 316..f + 320].copy_from_slice(&c);
    let c = crc(&b[..60]);
    b[60..64].copy_from_slice(&c);
}

/// WAL: the header's CRC, then each frame's entries' leaf hashes, body CRC
/// and header CRC, as far as the frames' lengths allow.
pub fn wal(b: &mut [u8]) {
    if b.len() < 64 {
        return;
    }
    let c = crc(&b[..60]);
    b[60..64].copy_from_slice(&c);
    let mut at = 64;
    while at + 32 <= b.len() {
        let Some(body) = range(Some(at as u64 + 32), u32_at(b, at + 4), b.len()) else { break };
        let mut e = body.start;
        while e + 52 <= body.end {
            let (Some(ingest_ms), Some(len)) = (u64_at(b, e), u32_at(b, e + 16)) else { break };
            let Some(rec) = range(Some(e as u64 + 52), Some(len), body.end) else { break };
            let leaf = leaf_hash(ingest_ms, &b[rec.clone()]);
            b[e + 20..e + 52].copy_from_slice(&leaf);
            e = rec.end;
        }
        let c = crc(&b[body.clone()]);
        b[at + 24..at + 28].copy_from_slice(&c);
        let c = crc(&b[at..at + 28]);
        b[at + 28..at + 32].copy_from_slice(&c);
        at = body.end;
    }
}

/// Manifest: the CRC of everything before its last four bytes.
pub fn manifest(b: &mut [u8]) {
    if b.len() >= 4 {
        let n = b.len() - 4;
        let c = crc(&b[..n]);
        b[n..].copy_from_slice(&c);
    }
}

/// Checkpoint history: each entry's CRC over `issued_ms ‖ note`.
pub fn history(b: &mut [u8]) {
    let mut at = 16;
    while let Some(len) = u32_at(b, at) {
        let Some(body) = range(Some(at as u64 + 8), Some(8 + len), b.len()) else { break };
        let c = crc(&b[body.clone()]);
        b[at + 4..at + 8].copy_from_slice(&c);
        at = body.end;
    }
}
