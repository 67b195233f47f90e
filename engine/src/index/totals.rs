//! Per-segment tables beside the partitions: totals (each value's events
//! over the whole segment, so a count over whole segments reads one small
//! table) and rare-value tables (values on one event of a partition, kept
//! as a fingerprint and an ordinal instead of a term).

use crate::codec::{put_u32, put_uvarint, Reader};

use super::{Attr, PartitionBuild};

/// Attributes whose values on a single event of a partition are kept in a
/// rare-value table (a 32-bit fingerprint and the ordinal, about 4 bytes)
/// instead of a term (20 bytes, the value, its postings). Resource names
/// (ARNs of the objects a call touched) are mostly unique: on the diverse
/// profile they were 78 of 108 index bytes an event. A lookup confirms a
/// rare-table candidate by reading its record; a count by the attribute
/// reads the records of its rare entries.
pub const RARE_ATTRS: [Attr; 1] = [Attr::ResourceName];

/// The fingerprint a rare-value table keys a value by: the top 32 bits of
/// its FNV-1a-64.
pub fn rare_fingerprint(value: &[u8]) -> u32 {
    (crate::event::id_fingerprint(value) >> 32) as u32
}

/// Whether a term of `attr` carried by `events` events of its partition goes
/// to the rare-value table.
pub(super) fn is_rare(attr: Attr, events: usize) -> bool {
    events == 1 && RARE_ATTRS.contains(&attr)
}

/// An attribute gets a totals table when it has at most this many values
/// in the segment...
pub const TOTALS_VALUES_SMALL: usize = 64;

/// ... or when its table costs at most this many bytes per event of the
/// segment (event names, sources, regions: a fraction of a byte), and never
/// over [`TOTALS_VALUES_MAX`] values. Attributes with many long values
/// (user names, keys, ARNs, resources) would cost bytes on every event for
/// counts rarely asked for: counting by them walks the partitions.
pub const TOTALS_BYTES_PER_EVENT_MAX: f64 = 0.5;

pub const TOTALS_VALUES_MAX: usize = 4096;

/// Does a table of `values` values in `bytes` bytes, in a segment of
/// `events` events, pay for itself?
pub(super) fn totals_kept(values: usize, bytes: usize, events: usize) -> bool {
    values <= TOTALS_VALUES_MAX && (values <= TOTALS_VALUES_SMALL || bytes as f64 <= events as f64 * TOTALS_BYTES_PER_EVENT_MAX)
}

/// The rare-value tables (version 6): `count u8`, then per table `attr u8 |
/// len u32 | len bytes`: a packed table (`codec::packed::encode_packed`) of
/// (fingerprint, ordinal) sorted.
pub(super) fn encode_rare(parts: &[PartitionBuild<'_>], out: &mut Vec<u8>) {
    let events: u64 = parts.iter().map(|p| u64::from(p.count)).sum();
    out.push(RARE_ATTRS.len() as u8);
    for attr in RARE_ATTRS {
        let mut entries: Vec<(u32, u32)> = parts
            .iter()
            .flat_map(|p| p.terms.iter())
            .filter(|((a, _), o)| *a == attr && is_rare(*a, o.len()))
            .map(|((_, v), o)| (rare_fingerprint(&v.as_bytes()[..v.len().min(u16::MAX as usize)]), o[0]))
            .collect();
        entries.sort_unstable();
        let packed = crate::codec::packed::encode_packed(&entries, events);
        out.push(attr as u8);
        put_u32(out, packed.len() as u32);
        out.extend_from_slice(&packed);
    }
}

/// The segment's totals (version 5): per attribute, each value's events.
pub(super) fn encode_totals(parts: &[PartitionBuild<'_>], out: &mut Vec<u8>) {
    // Every partition's (attr, value, events), sorted and summed: cheaper
    // than a map of maps when most values are in one or two partitions.
    let mut all: Vec<(u8, &[u8], u64)> = Vec::with_capacity(parts.iter().map(|p| p.terms.len()).sum());
    for p in parts {
        for ((attr, value), ords) in &p.terms {
            all.push((*attr as u8, &value.as_bytes()[..value.len().min(u16::MAX as usize)], ords.len() as u64));
        }
    }
    all.sort_unstable();
    let events: usize = parts.iter().map(|p| p.count as usize).sum();
    let mut tables = Vec::new();
    for group in all.chunk_by(|a, b| a.0 == b.0) {
        let (mut entries, mut values) = (Vec::new(), 0usize);
        for same in group.chunk_by(|a, b| a.1 == b.1) {
            let v = same[0].1;
            put_uvarint(&mut entries, v.len() as u64);
            entries.extend_from_slice(v);
            put_uvarint(&mut entries, same.iter().map(|t| t.2).sum());
            values += 1;
        }
        if totals_kept(values, entries.len(), events) {
            tables.push((group[0].0, values, entries));
        }
    }
    out.push(tables.len() as u8);
    for (attr, values, entries) in tables {
        out.push(attr);
        put_u32(out, values as u32);
        put_u32(out, entries.len() as u32);
        out.extend_from_slice(&entries);
    }
}

/// One entry of a totals table: `value_len varint | value | count varint`.
pub(super) fn totals_entry<'a>(r: &mut Reader<'a>) -> Option<(&'a [u8], u64)> {
    let len = usize::try_from(r.uvarint()?).ok()?;
    let value = r.bytes(len)?;
    Some((value, r.uvarint()?))
}

/// One attribute's totals: (value, events) in value order.
#[derive(Debug, Clone)]
pub struct Totals<'a> {
    pub(super) entries: Reader<'a>,
}

impl<'a> Iterator for Totals<'a> {
    type Item = (&'a [u8], u64);

    fn next(&mut self) -> Option<(&'a [u8], u64)> {
        // Every entry was checked when the section was parsed.
        totals_entry(&mut self.entries)
    }
}

/// Parses the totals tables, checking every entry: (attr, entries range).
pub(super) fn parse_totals(r: &mut Reader<'_>, events: u64) -> Result<Vec<(u8, std::ops::Range<usize>)>, String> {
    let short = || "index section: short totals".to_string();
    let tables = r.u8().ok_or_else(short)?;
    let mut out = Vec::with_capacity(usize::from(tables));
    for _ in 0..tables {
        let attr = r.u8().ok_or_else(short)?;
        let values = r.u32().ok_or_else(short)? as usize;
        let len = r.u32().ok_or_else(short)? as usize;
        let at = r.pos();
        let mut entries = Reader::new(r.bytes(len).ok_or("index section: totals out of bounds")?);
        if Attr::from_code(attr).is_none() || out.iter().any(|(a, _)| *a == attr) || values > TOTALS_VALUES_MAX {
            return Err(format!("index section: bad totals table for attribute {attr}"));
        }
        let mut seen = 0usize;
        while entries.remaining() > 0 {
            let (_, n) = totals_entry(&mut entries).ok_or("index section: malformed totals")?;
            if n == 0 || n > events {
                return Err("index section: a total out of range".into());
            }
            seen += 1;
        }
        if seen != values {
            return Err(format!("index section: totals of attribute {attr} list {seen} values, not {values}"));
        }
        out.push((attr, at..at + len));
    }
    Ok(out)
}

pub(super) type RareTable = (u8, std::ops::Range<usize>, crate::codec::packed::PackedIds);

pub(super) fn parse_rare(r: &mut Reader<'_>, events: u64) -> Result<Vec<RareTable>, String> {
    let short = || "index section: short rare-value tables".to_string();
    let n = r.u8().ok_or_else(short)?;
    let mut out: Vec<RareTable> = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let attr = r.u8().ok_or_else(short)?;
        // Readers confirm candidates only for the attributes they know to
        // have tables: any other is refused, not half-answered.
        if !RARE_ATTRS.iter().any(|a| *a as u8 == attr) || out.iter().any(|t| t.0 == attr) {
            return Err(format!("index section: rare-value table of attribute {attr}, which may not have one, or twice"));
        }
        let len = r.u32().ok_or_else(short)? as usize;
        let at = r.pos();
        let b = r.bytes(len).ok_or_else(short)?;
        // Every entry takes at least its ordinal's bits: that bounds what
        // decoding may allocate by the table's size.
        let ordinal_bits = u64::from(b.get(5).copied().unwrap_or(0));
        let max_entries = (len as u64 * 8).checked_div(ordinal_bits).unwrap_or(events);
        let head =
            crate::codec::packed::PackedIds::parse(b, events, max_entries).map_err(|e| format!("index section: rare-value table: {e}"))?;
        out.push((attr, at..at + len, head));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use super::*;

    /// The totals as first written (a map of maps): the reference the
    /// sorted-vector encoder must match byte for byte.
    fn reference(parts: &[PartitionBuild<'_>]) -> Vec<u8> {
        let mut by_attr: BTreeMap<u8, BTreeMap<&[u8], u64>> = BTreeMap::new();
        for p in parts {
            for ((attr, value), ords) in &p.terms {
                let v = &value.as_bytes()[..value.len().min(u16::MAX as usize)];
                *by_attr.entry(*attr as u8).or_default().entry(v).or_default() += ords.len() as u64;
            }
        }
        let events: usize = parts.iter().map(|p| p.count as usize).sum();
        let mut tables = Vec::new();
        for (attr, values) in by_attr {
            let mut entries = Vec::new();
            for (v, n) in &values {
                put_uvarint(&mut entries, v.len() as u64);
                entries.extend_from_slice(v);
                put_uvarint(&mut entries, *n);
            }
            if totals_kept(values.len(), entries.len(), events) {
                tables.push((attr, values.len(), entries));
            }
        }
        let mut out = vec![tables.len() as u8];
        for (attr, values, entries) in tables {
            out.push(attr);
            put_u32(&mut out, values as u32);
            put_u32(&mut out, entries.len() as u32);
            out.extend_from_slice(&entries);
        }
        out
    }

    // Goal: the totals tables sum each value's events over every partition
    // (values shared by partitions, values longer than a table keeps, which
    // then merge), keep only the tables that pay for themselves, and are
    // the bytes the first encoder wrote.
    #[test]
    fn totals_sum_over_partitions_as_first_written() {
        let long_a = format!("{}a", "x".repeat(u16::MAX as usize));
        let long_b = format!("{}b", "x".repeat(u16::MAX as usize));
        let mut parts = Vec::new();
        let mut state = 7u64;
        for p in 0..5u32 {
            let mut terms: Vec<super::super::TermOrdinals<'_>> = Vec::new();
            for attr in [Attr::EventName, Attr::EventSource, Attr::Username, Attr::SourceIpAddress] {
                let distinct = match attr {
                    Attr::EventName => 40,
                    Attr::EventSource => 3,
                    Attr::Username => 3000,
                    _ => 90,
                };
                for v in 0..distinct {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if state >> 62 == 0 {
                        continue;
                    }
                    let n = 1 + (state >> 59) as u32 % 7;
                    terms.push(((attr, Cow::Owned(format!("{attr:?}-{v}"))), (0..n).collect()));
                }
            }
            if p % 2 == 0 {
                terms.push(((Attr::EventSource, Cow::Borrowed(long_a.as_str())), vec![0, 1]));
                terms.push(((Attr::EventSource, Cow::Borrowed(long_b.as_str())), vec![2]));
            }
            terms.sort_unstable_by(|a, b| (a.0 .0, a.0 .1.as_bytes()).cmp(&(b.0 .0, b.0 .1.as_bytes())));
            parts.push(PartitionBuild { start_ms: i64::from(p) * 3_600_000, first_ordinal: p * 1000, count: 1000, terms });
        }
        let mut got = Vec::new();
        encode_totals(&parts, &mut got);
        assert_eq!(got, reference(&parts));
        // Names, sources and addresses have tables; 3,000 long user names
        // do not pay for themselves.
        assert_eq!(got[0], 3, "tables kept");
        let mut empty = Vec::new();
        encode_totals(&[], &mut empty);
        assert_eq!(empty, vec![0]);
    }
}
