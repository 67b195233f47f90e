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

pub mod counters;

use std::borrow::Cow;

use crate::codec::{crc32, put_i64, put_u16, put_u32, put_u64, put_uvarint, uvarint_u32_at, Reader};
use crate::event::Event;

/// A lookup attribute. Codes are on disk: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Attr {
    EventId = 0,
    EventName = 1,
    ReadOnly = 2,
    Username = 3,
    ResourceType = 4,
    ResourceName = 5,
    EventSource = 6,
    AccessKeyId = 7,
    ErrorCode = 8,
    AwsRegion = 9,
    AccountId = 10,
    SourceIpAddress = 11,
    UserIdentityArn = 12,
    EventCategory = 13,
    EventType = 14,
}

pub const ATTR_COUNT: usize = 15;

impl Attr {
    pub const ALL: [Attr; ATTR_COUNT] = [
        Attr::EventId,
        Attr::EventName,
        Attr::ReadOnly,
        Attr::Username,
        Attr::ResourceType,
        Attr::ResourceName,
        Attr::EventSource,
        Attr::AccessKeyId,
        Attr::ErrorCode,
        Attr::AwsRegion,
        Attr::AccountId,
        Attr::SourceIpAddress,
        Attr::UserIdentityArn,
        Attr::EventCategory,
        Attr::EventType,
    ];

    /// The name users type (CloudTrail's AttributeKey spelling).
    pub fn name(self) -> &'static str {
        match self {
            Attr::EventId => "EventId",
            Attr::EventName => "EventName",
            Attr::ReadOnly => "ReadOnly",
            Attr::Username => "Username",
            Attr::ResourceType => "ResourceType",
            Attr::ResourceName => "ResourceName",
            Attr::EventSource => "EventSource",
            Attr::AccessKeyId => "AccessKeyId",
            Attr::ErrorCode => "ErrorCode",
            Attr::AwsRegion => "AwsRegion",
            Attr::AccountId => "AccountId",
            Attr::SourceIpAddress => "SourceIPAddress",
            Attr::UserIdentityArn => "UserIdentityArn",
            Attr::EventCategory => "EventCategory",
            Attr::EventType => "EventType",
        }
    }

    /// Parses a name, case-sensitively as CloudTrail does, also accepting
    /// any ASCII case for convenience on the command line.
    pub fn parse(s: &str) -> Option<Attr> {
        Attr::ALL.iter().copied().find(|a| a.name() == s).or_else(|| Attr::ALL.iter().copied().find(|a| a.name().eq_ignore_ascii_case(s)))
    }

    pub fn from_code(c: u8) -> Option<Attr> {
        Attr::ALL.get(c as usize).copied()
    }
}

/// The (attribute, value) pairs an event is indexed under. EventId is
/// included (memtables index it here; segments use their id table).
/// AccountId covers `userIdentity.accountId` and `recipientAccountId`;
/// ResourceName covers each resource's ARN and, for an ARN, its final name
/// (after the last `/` or `:`), since LookupEvents accepts either.
pub fn terms<'a>(ev: &Event<'a>) -> Vec<(Attr, Cow<'a, str>)> {
    let mut t: Vec<(Attr, Cow<'a, str>)> = Vec::with_capacity(16);
    let mut put = |a: Attr, v: &Option<Cow<'a, str>>| {
        if let Some(v) = v {
            if !v.is_empty() {
                t.push((a, v.clone()));
            }
        }
    };
    put(Attr::EventId, &ev.event_id);
    put(Attr::EventName, &Some(ev.event_name.clone()));
    put(Attr::ReadOnly, &ev.read_only.map(|b| Cow::Borrowed(if b { "true" } else { "false" })));
    put(Attr::Username, &ev.username);
    put(Attr::EventSource, &ev.event_source);
    put(Attr::AccessKeyId, &ev.access_key_id);
    put(Attr::ErrorCode, &ev.error_code);
    put(Attr::AwsRegion, &ev.aws_region);
    put(Attr::AccountId, &ev.account_id);
    if ev.recipient_account_id != ev.account_id {
        put(Attr::AccountId, &ev.recipient_account_id);
    }
    put(Attr::SourceIpAddress, &ev.source_ip);
    put(Attr::UserIdentityArn, &ev.user_identity_arn);
    put(Attr::EventCategory, &ev.event_category);
    put(Attr::EventType, &ev.event_type);
    for (kind, arn) in &ev.resources {
        put(Attr::ResourceType, kind);
        put(Attr::ResourceName, arn);
        if let Some(a) = arn.as_deref().filter(|a| a.starts_with("arn:")) {
            let short = a.rsplit(['/', ':']).next().unwrap_or(a);
            if !short.is_empty() && short != a {
                put(Attr::ResourceName, &Some(Cow::Owned(short.to_string())));
            }
        }
    }
    t.sort();
    t.dedup();
    t
}

/// Default partition width: one hour of event time.
pub const PARTITION_MS: i64 = 3_600_000;

pub fn partition_start(time_ms: i64, partition_ms: i64) -> i64 {
    time_ms.div_euclid(partition_ms) * partition_ms
}

/// Decodes `count` gap-encoded ordinals starting from `base`; `None` when
/// the bytes are malformed.
fn decode_postings(bytes: &[u8], base: u32, count: u32, out: &mut Vec<u32>) -> Option<()> {
    let mut cur = base;
    let mut i = 0usize;
    out.reserve(count as usize);
    for n in 0..count {
        let (v, used) = uvarint_u32_at(bytes.get(i..)?)?;
        i += used;
        cur = if n == 0 { cur.checked_add(v)? } else { cur.checked_add(v)?.checked_add(1)? };
        out.push(cur);
    }
    (i == bytes.len()).then_some(())
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
fn is_rare(attr: Attr, events: usize) -> bool {
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
fn totals_kept(values: usize, bytes: usize, events: usize) -> bool {
    values <= TOTALS_VALUES_MAX && (values <= TOTALS_VALUES_SMALL || bytes as f64 <= events as f64 * TOTALS_BYTES_PER_EVENT_MAX)
}

/// Version 4 term encodings.
pub const POSTINGS_VARINT: u8 = 0;
pub const POSTINGS_BITMAP: u8 = 1;
pub const POSTINGS_RICE: u8 = 2;

/// The Rice parameter that codes `gaps` in the fewest bits, and the bytes
/// the list then takes (with its `k` byte).
fn best_rice(gaps: &[u32]) -> (u32, usize) {
    let sum: u64 = gaps.iter().map(|&g| u64::from(g)).sum();
    let mean = sum / (gaps.len() as u64).max(1);
    let guess = 63 - mean.max(1).leading_zeros();
    let bits = |k: u32| gaps.iter().map(|&g| u64::from(g >> k) + 1 + u64::from(k)).sum::<u64>();
    let k = [guess.saturating_sub(1), guess, (guess + 1).min(31)].into_iter().min_by_key(|&k| bits(k)).unwrap_or(0).min(31);
    (k, 1 + bits(k).div_ceil(8) as usize)
}

fn encode_rice(gaps: &[u32], k: u32, out: &mut Vec<u8>) {
    let mut w = crate::codec::BitWriter::default();
    for &g in gaps {
        w.unary(u64::from(g >> k));
        w.put(u64::from(g) & ((1 << k) - 1), k);
    }
    w.align();
    out.push(k as u8);
    out.extend_from_slice(&w.bytes);
}

fn decode_rice(bytes: &[u8], base: u32, count: u32, out: &mut Vec<u32>) -> Option<()> {
    let (&k, bits) = bytes.split_first()?;
    let k = u32::from(k);
    if k > 31 {
        return None;
    }
    let mut r = crate::codec::BitReader::new(bits);
    let mut cur = base;
    // Each gap takes at least one bit: never reserve more than the bits.
    out.reserve((count as usize).min(bits.len() * 8));
    for n in 0..count {
        let q = r.unary(u64::from(u32::MAX >> k))?;
        let g = u32::try_from((q << k) | r.get(k)?).ok()?;
        cur = if n == 0 { cur.checked_add(g)? } else { cur.checked_add(g)?.checked_add(1)? };
        out.push(cur);
    }
    (r.bits_read().div_ceil(8) == bits.len()).then_some(())
}
/// Seqs per seq-map group: one level-0 Merkle tile.
pub const SEQ_GROUP: u64 = 256;

/// For each seq group the segment touches (from `first_group` on), the
/// ascending block numbers that hold its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqMap {
    pub first_group: u64,
    pub groups: Vec<Vec<u32>>,
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

/// The rare-value tables (version 6): `count u8`, then per table `attr u8 |
/// len u32 | len bytes`: a packed table (`codec::packed::encode_packed`) of
/// (fingerprint, ordinal) sorted.
fn encode_rare(parts: &[PartitionBuild<'_>], out: &mut Vec<u8>) {
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
fn encode_totals(parts: &[PartitionBuild<'_>], out: &mut Vec<u8>) {
    let mut by_attr: std::collections::BTreeMap<u8, std::collections::BTreeMap<&[u8], u64>> = Default::default();
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
    out.push(tables.len() as u8);
    for (attr, values, entries) in tables {
        out.push(attr);
        put_u32(out, values as u32);
        put_u32(out, entries.len() as u32);
        out.extend_from_slice(&entries);
    }
}

/// One entry of a totals table: `value_len varint | value | count varint`.
fn totals_entry<'a>(r: &mut Reader<'a>) -> Option<(&'a [u8], u64)> {
    let len = usize::try_from(r.uvarint()?).ok()?;
    let value = r.bytes(len)?;
    Some((value, r.uvarint()?))
}

/// One attribute's totals: (value, events) in value order.
#[derive(Debug, Clone)]
pub struct Totals<'a> {
    entries: Reader<'a>,
}

impl<'a> Iterator for Totals<'a> {
    type Item = (&'a [u8], u64);

    fn next(&mut self) -> Option<(&'a [u8], u64)> {
        // Every entry was checked when the section was parsed.
        totals_entry(&mut self.entries)
    }
}

/// Parses the totals tables, checking every entry: (attr, entries range).
fn parse_totals(r: &mut Reader<'_>, events: u64) -> Result<Vec<(u8, std::ops::Range<usize>)>, String> {
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

type RareTable = (u8, std::ops::Range<usize>, crate::codec::packed::PackedIds);

fn parse_rare(r: &mut Reader<'_>, events: u64) -> Result<Vec<RareTable>, String> {
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

fn parse_seq_map(r: &mut Reader<'_>) -> Result<SeqMap, String> {
    let short = || "index section: short seq map".to_string();
    let first_group = r.u64().ok_or_else(short)?;
    let n = r.u32().ok_or_else(short)? as usize;
    if n.checked_add(1).and_then(|k| k.checked_mul(4)).is_none_or(|b| b > r.remaining()) {
        return Err("index section: seq map out of bounds".into());
    }
    let offsets: Vec<usize> = (0..=n).map(|_| r.u32().map(|v| v as usize)).collect::<Option<_>>().ok_or_else(short)?;
    let blob_len = *offsets.last().unwrap_or(&0);
    let blob = r.bytes(blob_len).ok_or("index section: seq map blocks out of bounds")?;
    let mut groups = Vec::with_capacity(n);
    for w in offsets.windows(2) {
        let part = blob.get(w[0]..w[1]).ok_or("index section: seq map offsets are not ascending")?;
        let mut blocks = Vec::new();
        let mut i = 0;
        while i < part.len() {
            let (v, used) = uvarint_u32_at(&part[i..]).ok_or("index section: malformed seq map")?;
            if blocks.last().is_some_and(|&p| p >= v) {
                return Err("index section: seq map blocks are not ascending".into());
            }
            blocks.push(v);
            i += used;
        }
        groups.push(blocks);
    }
    Ok(SeqMap { first_group, groups })
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
