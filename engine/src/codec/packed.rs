//! Packed (fingerprint, ordinal) tables: sorted pairs in about half the
//! bytes of a fixed 8-byte table, readable one chunk at a time. Segments
//! store their eventID table this way, and the index its rare-value
//! tables.

use super::{put_u16, put_u32, BitReader, BitWriter, Reader};

/// Entries per chunk: each chunk's first fingerprint is kept whole, so a
/// reader finds the chunk of a fingerprint by binary search.
pub const CHUNK_ENTRIES: usize = 256;

/// The packed id table of segment version 3 (and the index's rare-value
/// tables): the same entries as the fixed 8-byte table, in the same order (sorted by fingerprint, then
/// ordinal), in about half the bytes.
///
/// `entries u32 | k u8 | ordinal_bits u8 | zero u16 | chunks × (first_fp
/// u32, bit_area_offset u32) | bit area`. Entries go in chunks of
/// `CHUNK_ENTRIES`; each chunk's bits start on a byte. In a chunk, the
/// first entry is its ordinal (`ordinal_bits` bits; its fingerprint is the
/// chunk's `first_fp`); each next one is the fingerprint's difference from
/// the previous entry's, Rice-coded with parameter `k` (the quotient
/// `d >> k` in unary as that many 1 bits and a 0, then the low `k` bits),
/// then its ordinal. Bits are filled least significant first.
pub fn encode_packed(entries: &[(u32, u32)], events: u64) -> Vec<u8> {
    let n = entries.len();
    let ordinal_bits = 64 - events.saturating_sub(1).leading_zeros();
    let span = match (entries.first(), entries.last()) {
        (Some(a), Some(b)) => u64::from(b.0 - a.0),
        _ => 0,
    };
    let mean_gap = span / (n as u64).max(1);
    let k = (63 - mean_gap.max(1).leading_zeros()).min(31);
    let mut bits = BitWriter::default();
    let mut dir = Vec::new();
    for chunk in entries.chunks(CHUNK_ENTRIES) {
        bits.align();
        dir.push((chunk[0].0, bits.bytes.len() as u32));
        let mut prev = chunk[0].0;
        for (i, &(fp, ord)) in chunk.iter().enumerate() {
            if i > 0 {
                let d = u64::from(fp - prev);
                bits.unary(d >> k);
                bits.put(d & ((1 << k) - 1), k);
                prev = fp;
            }
            bits.put(u64::from(ord), ordinal_bits);
        }
    }
    bits.align();
    let mut out = Vec::with_capacity(12 + dir.len() * 8 + bits.bytes.len());
    put_u32(&mut out, n as u32);
    out.push(k as u8);
    out.push(ordinal_bits as u8);
    put_u16(&mut out, 0);
    for (fp, at) in dir {
        put_u32(&mut out, fp);
        put_u32(&mut out, at);
    }
    out.extend_from_slice(&bits.bytes);
    out
}

/// The parsed head of a packed id table: the chunk directory.
#[derive(Debug, Clone)]
pub struct PackedIds {
    pub entries: usize,
    k: u32,
    ordinal_bits: u32,
    /// Per chunk: its first fingerprint (a fence) and where its bits start.
    pub first_fps: Vec<u32>,
    offsets: Vec<u32>,
    /// Where the bit area starts in the section.
    bits_at: usize,
}

impl PackedIds {
    /// Parses the head of a packed table of a segment of `events` events
    /// holding at most `max_entries` entries; `Err` names what is wrong.
    pub fn parse(b: &[u8], events: u64, max_entries: u64) -> Result<Self, String> {
        let mut r = Reader::new(b);
        let short = || "packed id table: short".to_string();
        let entries = r.u32().ok_or_else(short)? as usize;
        let k = u32::from(r.u8().ok_or_else(short)?);
        let ordinal_bits = u32::from(r.u8().ok_or_else(short)?);
        let zero = r.u16().ok_or_else(short)?;
        if entries as u64 > max_entries || k > 31 || ordinal_bits > 32 || zero != 0 {
            return Err(format!(
                "packed id table: header ({entries} entries, k {k}, {ordinal_bits} ordinal bits) is invalid for {events} events"
            ));
        }
        let chunks = entries.div_ceil(CHUNK_ENTRIES);
        if chunks.checked_mul(8).is_none_or(|n| n > r.remaining()) {
            return Err("packed id table: directory out of bounds".into());
        }
        let mut first_fps = Vec::with_capacity(chunks);
        let mut offsets = Vec::with_capacity(chunks);
        for _ in 0..chunks {
            first_fps.push(r.u32().ok_or_else(short)?);
            offsets.push(r.u32().ok_or_else(short)?);
        }
        let bits_len = r.remaining();
        if offsets.windows(2).any(|w| w[0] > w[1])
            || offsets.last().is_some_and(|&o| o as usize > bits_len)
            || first_fps.windows(2).any(|w| w[0] > w[1])
        {
            return Err("packed id table: directory is not ascending".into());
        }
        Ok(PackedIds { entries, k, ordinal_bits, first_fps, offsets, bits_at: r.pos() })
    }

    /// The section byte range of chunk `c`'s bits (`total`: section length).
    pub fn chunk_range(&self, c: usize, total: usize) -> std::ops::Range<usize> {
        let start = self.bits_at + self.offsets[c] as usize;
        let end = self.offsets.get(c + 1).map_or(total, |&o| self.bits_at + o as usize);
        start..end
    }

    /// Decodes chunk `c` from its bits into (fingerprint, ordinal) entries.
    pub fn decode_chunk(&self, c: usize, bits: &[u8], out: &mut Vec<(u32, u32)>) -> Result<(), String> {
        let n = CHUNK_ENTRIES.min(self.entries - c * CHUNK_ENTRIES);
        let mut r = BitReader::new(bits);
        let bad = || format!("packed id table: chunk {c} does not decode");
        let mut fp = self.first_fps[c];
        let max_q = u64::from(u32::MAX >> self.k);
        for i in 0..n {
            if i > 0 {
                let q = r.unary(max_q).ok_or_else(bad)?;
                let d = (q << self.k) | r.get(self.k).ok_or_else(bad)?;
                fp = u32::try_from(u64::from(fp) + d).map_err(|_| bad())?;
            }
            let ord = r.get(self.ordinal_bits).ok_or_else(bad)? as u32;
            out.push((fp, ord));
        }
        Ok(())
    }

    /// Every entry, in table order.
    pub fn decode_all(&self, b: &[u8]) -> Result<Vec<(u32, u32)>, String> {
        let mut out = Vec::with_capacity(self.entries);
        for c in 0..self.first_fps.len() {
            self.decode_chunk(c, &b[self.chunk_range(c, b.len())], &mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the packed table decodes to exactly the entries it was built
    // from, chunk by chunk and whole, for dense, sparse and tiny tables;
    // and it is at most 4.5 bytes per entry for a segment of 200,000
    // events with random fingerprints.
    #[test]
    fn packed_id_table_round_trips_and_is_small() {
        let mut rnd = super::super::xorshift(0x1234_5678_9abc_def0);
        for (n, events) in [(0usize, 1u64), (1, 1), (255, 300), (257, 257), (200_000, 200_000), (1000, 4_000_000_000)] {
            let mut e: Vec<(u32, u32)> = (0..n).map(|i| ((rnd() >> 32) as u32, (i as u64 * events / n.max(1) as u64) as u32)).collect();
            if n > 3 {
                e[1].0 = e[0].0; // a collision
            }
            e.sort_unstable();
            let b = encode_packed(&e, events);
            let p = PackedIds::parse(&b, events, events).unwrap();
            assert_eq!(p.decode_all(&b).unwrap(), e, "{n} entries");
            if n == 200_000 {
                assert!(b.len() as f64 / n as f64 <= 4.5, "{} bytes per entry", b.len() as f64 / n as f64);
            }
            for cut in [b.len().saturating_sub(1), 11] {
                if cut < b.len() && n > 0 {
                    let r = PackedIds::parse(&b[..cut], events, events).and_then(|p| p.decode_all(&b[..cut]));
                    assert!(r.is_err() || r.unwrap() != e, "a table cut at {cut} must not decode to the same entries");
                }
            }
        }
    }
}
