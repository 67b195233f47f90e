//! Lookup attributes and the time-partitioned index of a sealed segment.
//!
//! Every event is indexed under each lookup attribute it has (CloudTrail's
//! eight, and more). A sealed segment stores, for every partition (an hour
//! of event time, by default) it touches: the partition's ordinal range
//! (events are sorted by time, so a partition is a contiguous run of
//! ordinals) and, for each (attribute, value) in it, a posting list of the
//! ordinals that carry it. This module owns that section's format; it never
//! reads records.
//!
//! Section layout (little-endian):
//! `magic "CIDX" | version u16 | zero u16 | partition_ms u64 | partitions u32 | terms u32`
//! then `partitions` × `start_ms i64 | first_ordinal u32 | count u32 | first_term u32 | term_count u32`,
//! then `terms` × `attr u8 | zero u8 | value_len u16 | value_off u32 | postings_off u32 | postings_len u32 | count u32`
//! (sorted by partition, then attr, then value bytes), then the values
//! blob (terms with the same value bytes may share them: a writer stores
//! each distinct value once), then the postings blob: per term, the ordinals as LEB128 varints of
//! the gap from the previous one (the first relative to the partition's
//! first ordinal).
//!
//! Version 2 adds the seq map after the postings, for proofs and verify to
//! find the events of a range of seqs without reading every block:
//! `first_group u64 | groups u32 | offsets u32[groups + 1] | blocks`, where
//! group g covers seqs `[g * 256, (g + 1) * 256)` (a level-0 tile), and
//! `blocks[offsets[g - first_group]..offsets[g - first_group + 1]]` lists,
//! as LEB128 varints, the ascending block numbers holding its events.
//! Version 1 sections (no seq map) stay readable.
//!
//! Version 3 adds the Insights counters after the seq map. Version 4 makes
//! the `zero u16` after the version flags (1: the counters are present)
//! and the `zero u8` of each term its encoding: 0 the varints above, 1 a
//! bitmap of `ceil(partition count / 8)` bytes whose bit `i` (least
//! significant first) is ordinal `first_ordinal + i`, 2 the same gaps as
//! the varints but Rice-coded: a byte `k`, then per gap `g` (`g >> k`) one
//! bits, a zero bit and the low `k` bits of `g`, least significant bit
//! first, padded to a byte. A writer uses the smallest (a bitmap for a
//! value on more than about one event in eight, such as readOnly; Rice for
//! most others).
//!
//! Version 5 adds flag 2, the segment's totals, after the counters: for
//! each attribute with few values in the segment (at most 64, or a table
//! of at most half a byte per event, and never over [`TOTALS_VALUES_MAX`]),
//! every value and the number of the segment's events carrying it, so that
//! a count over whole segments reads one small table per segment instead
//! of every hourly partition: `tables u8`, then per table
//! `attr u8 | values u32 | bytes u32 | entries`, each entry
//! `value_len varint | value | count varint`, sorted by value bytes.
//!
//! Version 6 adds flag 4, the rare-value tables (see `encode_rare`).
//! Version 7 adds flag 8: the counters are one zstd frame
//! (`raw length u32 | frame length u32 | frame`). docs/FORMAT.md is the
//! full specification.
//!
//! Files: `attr.rs` (attributes and an event's terms), `postings.rs`,
//! `seqmap.rs`, `totals.rs` (totals and rare-value tables), `counters.rs`
//! (Insights' per-minute counters); this file writes and reads the section
//! and its partitions and terms.

mod attr;
pub mod counters;
mod postings;
mod seqmap;
mod totals;

pub use attr::{terms, Attr, ATTR_COUNT};
use postings::{best_rice, decode_postings, decode_rice, encode_rice};
pub use postings::{POSTINGS_BITMAP, POSTINGS_RICE, POSTINGS_VARINT};
use seqmap::parse_seq_map;
pub use seqmap::{SeqMap, SEQ_GROUP};
use totals::{encode_rare, encode_totals, is_rare, parse_rare, parse_totals};
pub use totals::{rare_fingerprint, Totals, RARE_ATTRS, TOTALS_BYTES_PER_EVENT_MAX, TOTALS_VALUES_MAX, TOTALS_VALUES_SMALL};

use std::borrow::Cow;

use crate::codec::{crc32, put_i64, put_u16, put_u32, put_u64, put_uvarint, Reader};

/// Default partition width: one hour of event time.
pub const PARTITION_MS: i64 = 3_600_000;

/// Partition width of the segments compaction writes: one day. Compacted
/// data is cold, and a value seen in many hours of a day is one term
/// instead of many: on 2,000,000 diverse-profile events the term table is
/// 2.6 bytes an event instead of 8.7. Readers take the width from the
/// section (`partition_ms`); queries work on ordinal ranges either way.
pub const COMPACTED_PARTITION_MS: i64 = 86_400_000;

pub fn partition_start(time_ms: i64, partition_ms: i64) -> i64 {
    time_ms.div_euclid(partition_ms) * partition_ms
}

/// A term and its ordinals (ascending).
pub type TermOrdinals<'a> = ((Attr, Cow<'a, str>), Vec<u32>);

/// One partition of a segment being built: its terms and their ordinals.
pub struct PartitionBuild<'a> {
    pub start_ms: i64,
    pub first_ordinal: u32,
    pub count: u32,
    /// (attr, value) -> ordinals (ascending), sorted by key.
    pub terms: Vec<TermOrdinals<'a>>,
}

/// The index section version this build writes.
pub const INDEX_VERSION: u16 = 7;
/// Version 4 section flag: the Insights counters are present.
const FLAG_COUNTERS: u16 = 1;
/// Version 5 section flag: the segment's totals are present.
const FLAG_TOTALS: u16 = 2;
/// Version 6 section flag: the rare-value tables are present.
const FLAG_RARE: u16 = 4;
/// Version 7 section flag (with [`FLAG_COUNTERS`]): the counters are one
/// zstd frame, `raw length u32 | frame length u32 | frame`. Only Insights
/// reads them, a segment at a time, so they need no random access; zstd
/// halves them (10 bytes an event on a busy organisation's trail).
const FLAG_COUNTERS_ZSTD: u16 = 8;
/// zstd level of compressed counters.
const COUNTERS_ZSTD_LEVEL: i32 = 3;

/// The most uncompressed bytes a compressed counters frame may claim:
/// 64 times its own length, and 64 KiB (zstd gets 2-3 times on counters;
/// a writer whose counters compress better stores them plain). Bounds
/// what a damaged or hostile section can make a reader allocate.
fn counters_raw_max(frame_len: usize) -> usize {
    frame_len.saturating_mul(64).saturating_add(64 * 1024)
}

/// Encodes the index section.
pub fn encode_index(
    partition_ms: i64,
    parts: &[PartitionBuild<'_>],
    seq_map: &SeqMap,
    counters: Option<&crate::index::counters::Counters>,
    out: &mut Vec<u8>,
) {
    let kept: Vec<Vec<&TermOrdinals<'_>>> =
        parts.iter().map(|p| p.terms.iter().filter(|((a, _), o)| !is_rare(*a, o.len())).collect()).collect();
    let term_total: usize = kept.iter().map(Vec::len).sum();
    out.extend_from_slice(b"CIDX");
    put_u16(out, INDEX_VERSION);
    let counters = counters.map(|c| {
        let mut raw = Vec::new();
        c.encode(&mut raw);
        // (the bytes to write, and the raw length when they are a frame)
        match zstd::bulk::compress(&raw, COUNTERS_ZSTD_LEVEL).ok().filter(|f| raw.len() <= counters_raw_max(f.len())) {
            Some(frame) => (frame, Some(raw.len())),
            None => (raw, None),
        }
    });
    let flags = match &counters {
        None => FLAG_TOTALS | FLAG_RARE,
        Some((_, None)) => FLAG_COUNTERS | FLAG_TOTALS | FLAG_RARE,
        Some((_, Some(_))) => FLAG_COUNTERS | FLAG_COUNTERS_ZSTD | FLAG_TOTALS | FLAG_RARE,
    };
    put_u16(out, flags);
    put_u64(out, partition_ms as u64);
    put_u32(out, parts.len() as u32);
    put_u32(out, term_total as u32);
    let mut first_term = 0u32;
    for (p, terms) in parts.iter().zip(&kept) {
        put_i64(out, p.start_ms);
        put_u32(out, p.first_ordinal);
        put_u32(out, p.count);
        put_u32(out, first_term);
        put_u32(out, terms.len() as u32);
        first_term += terms.len() as u32;
    }
    // Each distinct value is stored once: terms of the same value (in
    // other partitions, or under another attribute) share its bytes. An
    // hour's terms repeat most of the previous hour's values.
    let mut values = Vec::new();
    let mut value_at: std::collections::HashMap<&[u8], u32, foldhash::fast::RandomState> = Default::default();
    let mut postings = Vec::new();
    let mut varints = Vec::new();
    let mut gaps: Vec<u32> = Vec::new();
    let mut table = Vec::with_capacity(term_total * TERM_BYTES);
    for (p, terms) in parts.iter().zip(&kept) {
        for ((attr, value), ords) in terms.iter().copied() {
            let v = &value.as_bytes()[..value.len().min(u16::MAX as usize)];
            gaps.clear();
            gaps.extend(ords.iter().enumerate().map(|(i, &o)| if i == 0 { o - p.first_ordinal } else { o - ords[i - 1] - 1 }));
            varints.clear();
            gaps.iter().for_each(|&g| put_uvarint(&mut varints, u64::from(g)));
            let bitmap_len = p.count.div_ceil(8) as usize;
            let (k, rice_len) = best_rice(&gaps);
            let encoding = if bitmap_len < varints.len().min(rice_len) {
                POSTINGS_BITMAP
            } else if rice_len < varints.len() {
                POSTINGS_RICE
            } else {
                POSTINGS_VARINT
            };
            table.push(*attr as u8);
            table.push(encoding);
            put_u16(&mut table, v.len() as u16);
            let at = *value_at.entry(v).or_insert_with(|| {
                let at = values.len() as u32;
                values.extend_from_slice(v);
                at
            });
            put_u32(&mut table, at);
            let start = postings.len();
            match encoding {
                POSTINGS_BITMAP => {
                    postings.resize(start + bitmap_len, 0);
                    for &o in ords {
                        let i = (o - p.first_ordinal) as usize;
                        postings[start + i / 8] |= 1 << (i % 8);
                    }
                }
                POSTINGS_RICE => encode_rice(&gaps, k, &mut postings),
                _ => postings.extend_from_slice(&varints),
            }
            put_u32(&mut table, start as u32);
            put_u32(&mut table, (postings.len() - start) as u32);
            put_u32(&mut table, ords.len() as u32);
        }
    }
    out.extend_from_slice(&table);
    out.extend_from_slice(&values);
    out.extend_from_slice(&postings);
    put_u64(out, seq_map.first_group);
    put_u32(out, seq_map.groups.len() as u32);
    let mut blob = Vec::new();
    put_u32(out, 0);
    for g in &seq_map.groups {
        for &b in g {
            put_uvarint(&mut blob, u64::from(b));
        }
        put_u32(out, blob.len() as u32);
    }
    out.extend_from_slice(&blob);
    match counters {
        Some((frame, Some(raw_len))) => {
            put_u32(out, raw_len as u32);
            put_u32(out, frame.len() as u32);
            out.extend_from_slice(&frame);
        }
        Some((raw, None)) => out.extend_from_slice(&raw),
        None => {}
    }
    encode_totals(parts, out);
    encode_rare(parts, out);
}

const PARTITION_BYTES: usize = 24;
const TERM_BYTES: usize = 20;

/// A partition entry read from a segment's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub start_ms: i64,
    pub first_ordinal: u32,
    pub count: u32,
    pub first_term: u32,
    pub term_count: u32,
}

/// One term entry.
#[derive(Debug, Clone, Copy)]
pub struct Term<'a> {
    pub attr: u8,
    pub value: &'a [u8],
    /// Varints, a bitmap or Rice codes, as `encoding` says (module docs).
    pub postings: &'a [u8],
    pub encoding: u8,
    pub count: u32,
}

impl Term<'_> {
    /// Appends the term's ordinals (ascending) to `out`; `p` is its
    /// partition. `None` when the postings are malformed or name an ordinal
    /// outside the partition.
    pub fn ordinals(&self, p: &Partition, out: &mut Vec<u32>) -> Option<()> {
        let start = out.len();
        self.decode(p.first_ordinal, out)?;
        let end = u64::from(p.first_ordinal) + u64::from(p.count);
        out[start..].last().is_none_or(|&o| u64::from(o) < end).then_some(())
    }

    fn decode(&self, base: u32, out: &mut Vec<u32>) -> Option<()> {
        match self.encoding {
            POSTINGS_VARINT => return decode_postings(self.postings, base, self.count, out),
            POSTINGS_RICE => return decode_rice(self.postings, base, self.count, out),
            _ => {}
        }
        let start = out.len();
        out.reserve(self.count as usize);
        for (i, &byte) in self.postings.iter().enumerate() {
            let mut b = byte;
            while b != 0 {
                let bit = b.trailing_zeros();
                out.push(base.checked_add(u32::try_from(i * 8).ok()?)?.checked_add(bit)?);
                b &= b - 1;
            }
        }
        (out.len() - start == self.count as usize).then_some(())
    }
}

/// The parsed, owned shape of an index section: cached per segment so a
/// query builds an [`IndexView`] without re-validating.
#[derive(Debug, Clone)]
pub struct IndexLayout {
    pub partition_ms: i64,
    pub partitions: Vec<Partition>,
    terms: std::ops::Range<usize>,
    values: std::ops::Range<usize>,
    postings: std::ops::Range<usize>,
    /// Version 2: the seq map, decoded (a few bytes per 256 events).
    seq_map: Option<SeqMap>,
    /// Version 3: where the Insights counters are (decoded on demand).
    counters: Option<CountersAt>,
    /// Version 5: each attribute's totals table (attr code, entries).
    totals: Vec<(u8, std::ops::Range<usize>)>,
    /// Version 6: each rare-value table (attr code, bytes, parsed head).
    rare: Vec<(u8, std::ops::Range<usize>, crate::codec::packed::PackedIds)>,
}

/// Where a section's Insights counters are: their bytes, or (version 7)
/// a zstd frame of them and their uncompressed length.
#[derive(Debug, Clone)]
struct CountersAt {
    at: std::ops::Range<usize>,
    raw_len: Option<usize>,
}

/// A read-only view of a segment's index section (bytes from the map).
#[derive(Debug, Clone, Copy)]
pub struct IndexView<'a> {
    pub layout: &'a IndexLayout,
    terms: &'a [u8],
    values: &'a [u8],
    postings: &'a [u8],
    section: &'a [u8],
}

impl IndexLayout {
    /// Parses and bounds-checks the section; `Err` names what is wrong.
    pub fn parse(b: &[u8], events: u64) -> Result<Self, String> {
        let mut r = Reader::new(b);
        if r.bytes(4) != Some(b"CIDX".as_slice()) {
            return Err("index section: bad magic".into());
        }
        let version = r.u16().ok_or("index section: short")?;
        if !(1..=INDEX_VERSION).contains(&version) {
            return Err(format!("index section: unsupported version {version} (this build reads 1 to {INDEX_VERSION})"));
        }
        let flags = r.u16().ok_or("index section: short")?;
        let known = match version {
            ..=3 => 0,
            4 => FLAG_COUNTERS,
            5 => FLAG_COUNTERS | FLAG_TOTALS,
            6 => FLAG_COUNTERS | FLAG_TOTALS | FLAG_RARE,
            _ => FLAG_COUNTERS | FLAG_COUNTERS_ZSTD | FLAG_TOTALS | FLAG_RARE,
        };
        if flags & !known != 0 {
            return Err(format!("index section: unknown flags {flags:#x}"));
        }
        if flags & FLAG_COUNTERS_ZSTD != 0 && flags & FLAG_COUNTERS == 0 {
            return Err("index section: flag 8 (compressed counters) without flag 1 (counters)".into());
        }
        let has_counters = version == 3 || (version >= 4 && flags & FLAG_COUNTERS != 0);
        let partition_ms = r.u64().ok_or("index section: short")? as i64;
        let nparts = r.u32().ok_or("index section: short")? as usize;
        let nterms = r.u32().ok_or("index section: short")? as usize;
        if partition_ms <= 0 || nparts.checked_mul(PARTITION_BYTES).is_none_or(|n| n > r.remaining()) {
            return Err("index section: partition table out of bounds".into());
        }
        let mut partitions = Vec::with_capacity(nparts);
        let mut next_ord = 0u64;
        let mut next_term = 0u64;
        for _ in 0..nparts {
            let p = Partition {
                start_ms: r.i64().ok_or("short")?,
                first_ordinal: r.u32().ok_or("short")?,
                count: r.u32().ok_or("short")?,
                first_term: r.u32().ok_or("short")?,
                term_count: r.u32().ok_or("short")?,
            };
            if u64::from(p.first_ordinal) != next_ord || u64::from(p.first_term) != next_term {
                return Err("index section: partitions are not contiguous".into());
            }
            next_ord += u64::from(p.count);
            next_term += u64::from(p.term_count);
            partitions.push(p);
        }
        if next_ord != events || next_term != nterms as u64 {
            return Err(format!("index section: covers {next_ord} events and {next_term} terms, expected {events} and {nterms}"));
        }
        let terms_start = r.pos();
        let terms = r.bytes(nterms.checked_mul(TERM_BYTES).ok_or("overflow")?).ok_or("index section: term table out of bounds")?;
        let (mut values_len, mut postings_len) = (0usize, 0usize);
        let mut prev: Option<(u32, u8, &[u8])> = None;
        let values_start = r.pos();
        for (pi, p) in partitions.iter().enumerate() {
            for i in p.first_term..p.first_term + p.term_count {
                let t = &terms[i as usize * TERM_BYTES..(i as usize + 1) * TERM_BYTES];
                let vl = u16::from_le_bytes([t[2], t[3]]) as usize;
                let vo = u32::from_le_bytes(t[4..8].try_into().unwrap_or_default()) as usize;
                let po = u32::from_le_bytes(t[8..12].try_into().unwrap_or_default()) as usize;
                let pl = u32::from_le_bytes(t[12..16].try_into().unwrap_or_default()) as usize;
                let count = u32::from_le_bytes(t[16..20].try_into().unwrap_or_default());
                let well_sized = match t[1] {
                    POSTINGS_VARINT => pl >= count as usize,
                    POSTINGS_BITMAP if version >= 4 => pl == p.count.div_ceil(8) as usize,
                    // A k byte, then at least one bit per gap.
                    POSTINGS_RICE if version >= 4 => pl >= 1 && count as usize <= (pl - 1) * 8,
                    _ => return Err(format!("index section: term {i} has unknown encoding {}", t[1])),
                };
                if count == 0 || count > p.count || !well_sized {
                    return Err(format!("index section: term {i} has an invalid count"));
                }
                values_len = values_len.max(vo + vl);
                postings_len = postings_len.max(po + pl);
                // Sortedness is what binary search relies on: check it.
                let value = b.get(values_start + vo..values_start + vo + vl).unwrap_or_default();
                if let Some((pp, pa, pv)) = prev {
                    if pp == pi as u32 && (pa, pv) >= (t[0], value) {
                        return Err(format!("index section: terms of partition {pi} are not sorted"));
                    }
                }
                prev = Some((pi as u32, t[0], value));
            }
        }
        let _ = terms;
        let values = values_start..values_start + values_len;
        r.bytes(values_len).ok_or("index section: values out of bounds")?;
        let postings_start = r.pos();
        r.bytes(postings_len).ok_or("index section: postings out of bounds")?;
        let seq_map = if version >= 2 { Some(parse_seq_map(&mut r)?) } else { None };
        let counters = if flags & FLAG_COUNTERS_ZSTD != 0 {
            // Checked when read (decompressing them here would cost every
            // open of the index); the section's CRC covers the frame.
            let raw_len = r.u32().ok_or("index section: short counters")? as usize;
            let frame_len = r.u32().ok_or("index section: short counters")? as usize;
            if raw_len > counters_raw_max(frame_len) {
                return Err(format!(
                    "index section: compressed counters claim {raw_len} bytes from {frame_len}, over the limit of 64 times the frame and 64 KiB"
                ));
            }
            let at = r.pos();
            r.skip(frame_len).ok_or("index section: short counters")?;
            Some(CountersAt { at: at..at + frame_len, raw_len: Some(raw_len) })
        } else if has_counters {
            let at = r.pos();
            let mut probe = r.clone();
            crate::index::counters::visit(&mut probe, |_, _, _, _| {})?;
            r.skip(probe.pos() - at).ok_or("index section: short counters")?;
            Some(CountersAt { at: at..probe.pos(), raw_len: None })
        } else {
            None
        };
        let totals = if flags & FLAG_TOTALS != 0 { parse_totals(&mut r, events)? } else { Vec::new() };
        let rare = if flags & FLAG_RARE != 0 { parse_rare(&mut r, events)? } else { Vec::new() };
        if r.remaining() != 0 {
            return Err("index section: trailing bytes".into());
        }
        Ok(IndexLayout {
            partition_ms,
            partitions,
            terms: terms_start..values_start,
            values,
            postings: postings_start..postings_start + postings_len,
            seq_map,
            counters,
            totals,
            rare,
        })
    }

    /// The block numbers holding events of seq group `group`
    /// (`seq / 256`): `None` for a version-1 section (no seq map) or a
    /// group the segment does not touch.
    pub fn blocks_of_group(&self, group: u64) -> Option<&[u32]> {
        let m = self.seq_map.as_ref()?;
        let i = group.checked_sub(m.first_group)?;
        m.groups.get(usize::try_from(i).ok()?).map(Vec::as_slice)
    }

    /// The Insights counters (version 3; empty before), decoded from the
    /// section bytes this layout was parsed from.
    pub fn counters(&self, b: &[u8]) -> Result<crate::index::counters::Counters, String> {
        let mut out = crate::index::counters::Counters::default();
        self.visit_counters(b, |key, minute, _, cell| out.add_cell(key, minute, &cell()))?;
        Ok(out)
    }

    /// Visits the counters' cells (none before version 3); see
    /// [`crate::index::counters::visit`].
    pub fn visit_counters(
        &self,
        b: &[u8],
        f: impl FnMut(&crate::index::counters::SeriesKey, i64, u32, &dyn Fn() -> crate::index::counters::Cell),
    ) -> Result<(), String> {
        let Some(c) = &self.counters else { return Ok(()) };
        let bytes = b.get(c.at.clone()).ok_or("index section: counters out of bounds")?;
        let Some(raw_len) = c.raw_len else { return crate::index::counters::visit(&mut Reader::new(bytes), f) };
        let raw = zstd::bulk::decompress(bytes, raw_len).map_err(|e| format!("index section: compressed counters do not decode: {e}"))?;
        if raw.len() != raw_len {
            return Err(format!("index section: compressed counters decode to {} bytes, not {raw_len}", raw.len()));
        }
        let mut r = Reader::new(&raw);
        crate::index::counters::visit(&mut r, f)?;
        if r.remaining() != 0 {
            return Err("index section: trailing bytes after the compressed counters".into());
        }
        Ok(())
    }

    /// Whether the section has Insights counters (version 3 and later).
    pub fn has_counters(&self) -> bool {
        self.counters.is_some()
    }

    /// Whether the section has a seq map (version 2 and later).
    pub fn has_seq_map(&self) -> bool {
        self.seq_map.is_some()
    }

    /// A view over the section bytes this layout was parsed from.
    pub fn view<'a>(&'a self, b: &'a [u8]) -> IndexView<'a> {
        IndexView {
            layout: self,
            terms: &b[self.terms.clone()],
            values: &b[self.values.clone()],
            postings: &b[self.postings.clone()],
            section: b,
        }
    }
}

impl<'a> IndexView<'a> {
    /// The segment's totals for `attr` (version 5, for an attribute with
    /// few values in the segment): each value and its events.
    pub fn totals(&self, attr: Attr) -> Option<Totals<'a>> {
        let (_, r) = self.layout.totals.iter().find(|(a, _)| *a == attr as u8)?;
        Some(Totals { entries: Reader::new(self.section.get(r.clone())?) })
    }

    pub fn term(&self, i: u32) -> Term<'a> {
        let t = &self.terms[i as usize * TERM_BYTES..(i as usize + 1) * TERM_BYTES];
        let vl = u16::from_le_bytes([t[2], t[3]]) as usize;
        let vo = u32::from_le_bytes(t[4..8].try_into().unwrap_or_default()) as usize;
        let po = u32::from_le_bytes(t[8..12].try_into().unwrap_or_default()) as usize;
        let pl = u32::from_le_bytes(t[12..16].try_into().unwrap_or_default()) as usize;
        let count = u32::from_le_bytes(t[16..20].try_into().unwrap_or_default());
        Term { attr: t[0], value: &self.values[vo..vo + vl], postings: &self.postings[po..po + pl], encoding: t[1], count }
    }

    /// The terms of one partition with the given attribute (a contiguous run).
    pub fn attr_terms(&self, p: &Partition, attr: Attr) -> std::ops::Range<u32> {
        let (lo, hi) = (p.first_term, p.first_term + p.term_count);
        let a = attr as u8;
        let start = partition_point(lo, hi, |i| self.term(i).attr < a);
        let end = partition_point(start, hi, |i| self.term(i).attr <= a);
        start..end
    }

    /// Whether the section keeps single-event values of `attr` in a
    /// rare-value table (version 6).
    pub fn has_rare(&self, attr: Attr) -> bool {
        self.layout.rare.iter().any(|t| t.0 == attr as u8)
    }

    /// Candidate ordinals (ascending) of single-event values of `attr`
    /// whose fingerprint equals `value`'s: the caller confirms each by
    /// reading its record. Empty without a rare-value table.
    pub fn rare_candidates(&self, attr: Attr, value: &str) -> Result<Vec<u32>, String> {
        let Some((_, range, head)) = self.layout.rare.iter().find(|t| t.0 == attr as u8) else { return Ok(Vec::new()) };
        let b = self.section.get(range.clone()).ok_or("index section: rare-value table out of bounds")?;
        let key = rare_fingerprint(value.as_bytes());
        let mut chunk = head.first_fps.partition_point(|&f| f < key).saturating_sub(1);
        let (mut out, mut entries) = (Vec::new(), Vec::new());
        while chunk < head.first_fps.len() && head.first_fps[chunk] <= key {
            entries.clear();
            head.decode_chunk(chunk, &b[head.chunk_range(chunk, b.len())], &mut entries)?;
            out.extend(entries.iter().filter(|e| e.0 == key).map(|e| e.1));
            chunk += 1;
        }
        self.check_ordinals(&mut out)?;
        Ok(out)
    }

    /// Every ordinal (ascending, repeated for an event with several) of the
    /// rare-value table of `attr`; empty without one.
    pub fn rare_ordinals(&self, attr: Attr) -> Result<Vec<u32>, String> {
        let Some((_, range, head)) = self.layout.rare.iter().find(|t| t.0 == attr as u8) else { return Ok(Vec::new()) };
        let b = self.section.get(range.clone()).ok_or("index section: rare-value table out of bounds")?;
        let mut out: Vec<u32> = head.decode_all(b)?.into_iter().map(|e| e.1).collect();
        self.check_ordinals(&mut out)?;
        Ok(out)
    }

    fn check_ordinals(&self, ords: &mut [u32]) -> Result<(), String> {
        let events = self.layout.partitions.last().map_or(0, |p| u64::from(p.first_ordinal) + u64::from(p.count));
        if ords.iter().any(|&o| u64::from(o) >= events) {
            return Err("index section: rare-value table ordinal out of range".into());
        }
        ords.sort_unstable();
        Ok(())
    }

    /// The term (attr, value) in a partition, if present.
    pub fn find(&self, p: &Partition, attr: Attr, value: &str) -> Option<Term<'a>> {
        let r = self.attr_terms(p, attr);
        let v = value.as_bytes();
        let i = partition_point(r.start, r.end, |i| self.term(i).value < v);
        (i < r.end && self.term(i).value == v).then(|| self.term(i))
    }
}

fn partition_point(mut lo: u32, mut hi: u32, pred: impl Fn(u32) -> bool) -> u32 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// CRC of an index section (the segment footer records it).
pub fn index_crc(b: &[u8]) -> u32 {
    crc32(&[b])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the index section round-trips, terms are found by binary
    // search, postings decode to the original ordinals.
    #[test]
    fn round_trip() {
        let parts = vec![
            PartitionBuild {
                start_ms: 0,
                first_ordinal: 0,
                count: 5,
                terms: vec![
                    ((Attr::EventName, "A".into()), vec![0, 2, 4]),
                    ((Attr::EventName, "B".into()), vec![1, 3]),
                    ((Attr::Username, "u".into()), vec![0, 1, 2, 3, 4]),
                ],
            },
            PartitionBuild {
                start_ms: 3_600_000,
                first_ordinal: 5,
                count: 300,
                terms: vec![
                    ((Attr::EventName, "A".into()), (5..305).collect()),
                    ((Attr::Username, "v".into()), vec![7, 200]),
                    ((Attr::AwsRegion, "r".into()), (5..305).step_by(20).collect()),
                ],
            },
        ];
        let mut b = Vec::new();
        let seq_map = SeqMap { first_group: 3, groups: vec![vec![0], vec![0, 1, 300], vec![]] };
        encode_index(PARTITION_MS, &parts, &seq_map, Some(&Default::default()), &mut b);
        let layout = IndexLayout::parse(&b, 305).unwrap();
        assert_eq!(layout.blocks_of_group(4), Some([0, 1, 300].as_slice()));
        assert_eq!(layout.blocks_of_group(5), Some([].as_slice()));
        assert_eq!(layout.blocks_of_group(2), None);
        assert_eq!(layout.blocks_of_group(6), None);
        let v = layout.view(&b);
        let parts = &v.layout.partitions;
        assert_eq!(parts.len(), 2);
        let t = v.find(&parts[0], Attr::EventName, "B").unwrap();
        let mut out = Vec::new();
        t.ordinals(&parts[0], &mut out).unwrap();
        assert_eq!(out, vec![1, 3]);
        assert!(v.find(&parts[0], Attr::EventName, "C").is_none());
        assert!(v.find(&parts[0], Attr::AwsRegion, "A").is_none());
        let t = v.find(&parts[1], Attr::EventName, "A").unwrap();
        assert_eq!(t.encoding, POSTINGS_BITMAP, "a term on every event is a bitmap");
        // "A" is a term of both partitions; its bytes are stored once.
        assert_eq!(layout.values.len(), "ABuvr".len(), "each distinct value once in the values blob");
        assert_eq!(v.find(&parts[0], Attr::EventName, "A").unwrap().value, b"A");
        let sparse = v.find(&parts[1], Attr::Username, "v").unwrap();
        assert_eq!(sparse.encoding, POSTINGS_VARINT, "2 of 300 events: varints are smaller");
        out.clear();
        sparse.ordinals(&parts[1], &mut out).unwrap();
        assert_eq!(out, vec![7, 200]);
        // Postings naming ordinals outside their partition are refused.
        assert!(sparse.ordinals(&parts[0], &mut Vec::new()).is_none());
        let every_20th = v.find(&parts[1], Attr::AwsRegion, "r").unwrap();
        assert_eq!(every_20th.encoding, POSTINGS_RICE, "1 in 20 events: Rice codes are smallest");
        out.clear();
        every_20th.ordinals(&parts[1], &mut out).unwrap();
        assert_eq!(out, (5..305).step_by(20).collect::<Vec<_>>());
        out.clear();
        t.ordinals(&parts[1], &mut out).unwrap();
        assert_eq!(out, (5..305).collect::<Vec<_>>());
        assert_eq!(v.attr_terms(&parts[0], Attr::EventName), 0..2);
        // Garbage never panics.
        for cut in 0..b.len() {
            let _ = IndexLayout::parse(&b[..cut], 305);
        }
        for i in 0..b.len() {
            let mut g = b.clone();
            g[i] ^= 0x5a;
            if let Ok(l) = IndexLayout::parse(&g, 305) {
                let v = l.view(&g);
                for p in &v.layout.partitions {
                    for t in v.attr_terms(p, Attr::EventName) {
                        let t = v.term(t);
                        let _ = t.ordinals(p, &mut Vec::new());
                    }
                }
            }
        }
        assert!(IndexLayout::parse(&b, 306).is_err());
    }

    // Goal: attribute names parse as CloudTrail spells them.
    #[test]
    fn attr_names() {
        for a in Attr::ALL {
            assert_eq!(Attr::parse(a.name()), Some(a));
            assert_eq!(Attr::from_code(a as u8), Some(a));
        }
        assert_eq!(Attr::parse("username"), Some(Attr::Username));
        assert_eq!(Attr::parse("Bogus"), None);
    }

    // Goal: version 7 counters are compressed, read back equal, and a
    // damaged frame or length is refused with an error, never a panic or
    // an allocation the section does not justify.
    #[test]
    fn compressed_counters_round_trip_and_refuse_damage() {
        use crate::index::counters::{Cell, Counters, SeriesKey};
        let mut c = Counters::default();
        for m in 0..500i64 {
            let key = SeriesKey {
                account: "111122223333".into(),
                region: "eu-west-1".into(),
                source: "s3.amazonaws.com".into(),
                name: format!("Put{}", m % 7),
                error: None,
            };
            c.add_cell(&key, 29_000_000 + m, &Cell { count: 1 + (m % 5) as u32, ..Default::default() });
        }
        let parts = vec![PartitionBuild { start_ms: 0, first_ordinal: 0, count: 1, terms: vec![((Attr::EventName, "A".into()), vec![0])] }];
        let seq_map = SeqMap { first_group: 0, groups: vec![vec![0]] };
        let mut b = Vec::new();
        encode_index(PARTITION_MS, &parts, &seq_map, Some(&c), &mut b);
        assert_eq!(u16::from_le_bytes([b[6], b[7]]) & FLAG_COUNTERS_ZSTD, FLAG_COUNTERS_ZSTD);
        let mut plain = Vec::new();
        c.encode(&mut plain);
        assert!(b.len() < plain.len(), "the section ({} bytes) is smaller than its counters alone ({})", b.len(), plain.len());
        let layout = IndexLayout::parse(&b, 1).unwrap();
        assert_eq!(layout.counters(&b).unwrap().series, c.series);
        let at = layout.counters.clone().unwrap().at;
        // The raw length sits 8 bytes before the frame.
        let mut claims_more = b.clone();
        claims_more[at.start - 8..at.start - 4].copy_from_slice(&(u32::MAX).to_le_bytes());
        let e = IndexLayout::parse(&claims_more, 1).unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        let mut one_more = b.clone();
        let raw = u32::from_le_bytes(b[at.start - 8..at.start - 4].try_into().unwrap());
        one_more[at.start - 8..at.start - 4].copy_from_slice(&(raw + 1).to_le_bytes());
        let l = IndexLayout::parse(&one_more, 1).unwrap();
        assert!(l.counters(&one_more).unwrap_err().contains("not"), "a length that differs is refused");
        for i in at.clone() {
            let mut damaged = b.clone();
            damaged[i] ^= 0x5a;
            if let Ok(l) = IndexLayout::parse(&damaged, 1) {
                let _ = l.counters(&damaged);
            }
        }
    }
}
