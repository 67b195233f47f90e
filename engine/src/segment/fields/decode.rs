//! Reading a field-split payload back into records, byte for byte: the
//! templates, each record's template id, and one cursor per column.

use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_UNPADDED};
use base64::Engine as _;

use crate::codec::{unzigzag, Reader};
use crate::limits::RECORD_BYTES_MAX;

use super::values::{format_time, format_uuid, HEX};
use super::{Kind, BLOCK_RECORD_BYTES_MAX, DICT, MARK, PLAIN};

/// A column while a block decodes.
pub(super) enum Source<'a> {
    Text(Reader<'a>),
    Dict { values: Vec<&'a [u8]>, idx: Reader<'a>, wide: bool },
    Uuid(Reader<'a>),
    Time { r: Reader<'a>, prev: i64 },
    Base64(Reader<'a>, bool),
    Hex(Reader<'a>),
}

pub(super) struct DecColumn<'a> {
    pub(super) left: u64,
    pub(super) src: Source<'a>,
}

impl DecColumn<'_> {
    pub(super) fn next(&mut self, out: &mut Vec<u8>) -> Option<()> {
        self.left = self.left.checked_sub(1)?;
        match &mut self.src {
            Source::Text(r) => {
                let rest = r.rest();
                let end = memchr::memchr(0, rest)?;
                out.extend_from_slice(&rest[..end]);
                r.skip(end + 1)
            }
            Source::Dict { values, idx, wide } => {
                let i = if *wide { usize::from(idx.u16()?) } else { usize::from(idx.u8()?) };
                out.extend_from_slice(values.get(i)?);
                Some(())
            }
            Source::Uuid(r) => {
                format_uuid(r.bytes(16)?, out);
                Some(())
            }
            Source::Time { r, prev } => {
                *prev = prev.checked_add(unzigzag(r.uvarint()?))?;
                format_time(*prev, out)
            }
            Source::Base64(r, padded) => {
                let n = usize::try_from(r.uvarint()?).ok()?;
                let bytes = r.bytes(n)?;
                let start = out.len();
                let (engine, len) = if *padded { (&B64, n.div_ceil(3) * 4) } else { (&B64_UNPADDED, (n * 4).div_ceil(3)) };
                out.resize(start + len, 0);
                let written = engine.encode_slice(bytes, &mut out[start..]).ok()?;
                (written == len).then_some(())
            }
            Source::Hex(r) => {
                let n = usize::try_from(r.uvarint()?).ok()?;
                for &b in r.bytes(n)? {
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 15)]);
                }
                Some(())
            }
        }
    }

    pub(super) fn finished(&self) -> bool {
        self.left == 0
            && match &self.src {
                Source::Text(r) | Source::Uuid(r) | Source::Base64(r, _) | Source::Hex(r) | Source::Time { r, .. } => r.remaining() == 0,
                Source::Dict { idx, .. } => idx.remaining() == 0,
            }
    }
}

pub(super) fn read_column<'a>(r: &mut Reader<'a>) -> Option<DecColumn<'a>> {
    let kind = Kind::from_u8(r.u8()?)?;
    let enc = r.u8()?;
    let left = r.uvarint()?;
    let len = usize::try_from(r.uvarint()?).ok()?;
    let body = r.bytes(len)?;
    let src = match (kind, enc) {
        (Kind::Text | Kind::Number, PLAIN) => Source::Text(Reader::new(body)),
        (Kind::Text | Kind::Number, DICT) => {
            let mut b = Reader::new(body);
            let distinct = b.uvarint()?;
            if distinct == 0 || distinct > 65_536 {
                return None;
            }
            let mut values = Vec::with_capacity(distinct.min(body.len() as u64) as usize);
            for _ in 0..distinct {
                let rest = b.rest();
                let end = memchr::memchr(0, rest)?;
                values.push(&rest[..end]);
                b.skip(end + 1)?;
            }
            Source::Dict { values, idx: b, wide: distinct > 256 }
        }
        (Kind::Uuid, PLAIN) => Source::Uuid(Reader::new(body)),
        (Kind::Time, PLAIN) => Source::Time { r: Reader::new(body), prev: 0 },
        (Kind::Base64, PLAIN) => Source::Base64(Reader::new(body), true),
        (Kind::Base64Unpadded, PLAIN) => Source::Base64(Reader::new(body), false),
        (Kind::Hex, PLAIN) => Source::Hex(Reader::new(body)),
        _ => return None,
    };
    Some(DecColumn { left, src })
}

/// Decodes the field sections of a payload holding `n` records, appending
/// the records (in the order stored) to `data` and their spans to `spans`;
/// `None` if anything is inconsistent.
pub(crate) fn decode(r: &mut Reader<'_>, n: usize, data: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>) -> Option<()> {
    decode_each(r, n, data, 8 << 20, |data, start| {
        spans.push((start, data.len()));
        Some(())
    })
}

/// Whether the field sections of a payload holding `records` rebuild
/// exactly those records. Each record is rebuilt in one small reused
/// buffer and compared there, so the check streams through the block
/// once instead of writing and comparing a second copy of it.
pub(crate) fn decodes_to(r: &mut Reader<'_>, records: &mut dyn Iterator<Item = &[u8]>) -> bool {
    let (n, _) = records.size_hint();
    let mut scratch = Vec::new();
    decode_each(r, n, &mut scratch, 64 << 10, |data, start| {
        let same = records.next() == Some(&data[start..]);
        data.clear();
        same.then_some(())
    })
    .is_some()
        && records.next().is_none()
}

/// Rebuilds the `n` records of a payload's field sections one by one,
/// appending each to `data` (reserving up to `reserve_max` bytes ahead)
/// and then calling `each(data, start)` with its start; `each` may take
/// the record out of `data`. `None` if anything is
/// inconsistent, or if `each` says so.
pub(super) fn decode_each(
    r: &mut Reader<'_>,
    n: usize,
    data: &mut Vec<u8>,
    reserve_max: u64,
    mut each: impl FnMut(&mut Vec<u8>, usize) -> Option<()>,
) -> Option<()> {
    let total = r.u64()?;
    if total > BLOCK_RECORD_BYTES_MAX {
        return None;
    }
    // Each template, whole record and column takes at least 1, 1 and 4
    // payload bytes, and there are at most as many templates and whole
    // records as records: what is allocated stays within a small multiple
    // of the payload, whatever the counts claim.
    let template_count = r.uvarint()?;
    if template_count > n as u64 {
        return None;
    }
    let mut templates = Vec::with_capacity(template_count.min(r.remaining() as u64) as usize);
    for _ in 0..template_count {
        let len = usize::try_from(r.uvarint()?).ok()?;
        templates.push(r.bytes(len)?);
    }
    let mut ids = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        ids.push(r.uvarint()?);
    }
    let whole_count = r.uvarint()?;
    if whole_count > n as u64 {
        return None;
    }
    let mut whole = Vec::with_capacity(whole_count.min(r.remaining() as u64) as usize);
    for _ in 0..whole_count {
        let len = usize::try_from(r.uvarint()?).ok()?;
        whole.push(r.bytes(len)?);
    }
    let column_count = r.uvarint()?;
    if column_count > r.remaining() as u64 / 4 {
        return None;
    }
    let mut columns = Vec::with_capacity(column_count as usize);
    for _ in 0..column_count {
        columns.push(read_column(r)?);
    }
    if r.remaining() != 0 {
        return None;
    }
    // Grown as records are rebuilt (each checked against `total`), not
    // reserved whole on the payload's word.
    data.reserve(total.min(reserve_max) as usize);
    let mut produced = 0u64;
    let mut wholes = whole.into_iter();
    for id in ids {
        let start = data.len();
        if id == 0 {
            data.extend_from_slice(wholes.next()?);
        } else {
            let mut t = Reader::new(templates.get(usize::try_from(id - 1).ok()?)?);
            while t.remaining() > 0 {
                let rest = t.rest();
                let lit = memchr::memchr(MARK, rest).unwrap_or(rest.len());
                data.extend_from_slice(&rest[..lit]);
                t.skip(lit)?;
                if t.remaining() > 0 {
                    t.skip(1)?;
                    let col = usize::try_from(t.uvarint()?).ok()?;
                    columns.get_mut(col)?.next(data)?;
                }
                if data.len() - start > RECORD_BYTES_MAX {
                    return None;
                }
            }
        }
        produced += (data.len() - start) as u64;
        if produced > total || data.len() - start > RECORD_BYTES_MAX {
            return None;
        }
        each(data, start)?;
    }
    (produced == total && wholes.next().is_none() && columns.iter().all(DecColumn::finished)).then_some(())
}
