//! Payload version 3: records stored field by field, losslessly.
//!
//! Each record is split into a *template* (its keys, punctuation,
//! whitespace and literals, byte for byte, with a marker where each string
//! or number value was) and its *values*, which go into one column per
//! (key path, kind). Templates are kept once per block; a column holds like
//! values next to each other (every eventName, every sourceIPAddress, ...),
//! which is what zstd compresses best. Values whose spelling is canonical
//! are stored typed: lowercase UUIDs as 16 bytes, `YYYY-MM-DDTHH:MM:SSZ`
//! times as second deltas, lowercase hex ids and standard base64 (session
//! tokens) decoded. Columns with few distinct values are
//! dictionary-encoded. A record the splitter cannot take apart (anything
//! outside JSON's grammar, or a raw 0x00 or 0x01 byte in a string) is kept
//! whole. docs/FORMAT.md specifies the bytes; this file follows it.
//!
//! The encoder checks its own work: a block is decoded again and compared
//! with the records before it is written; if that ever differs, the whole
//! block is stored with every record whole.

mod decode;
mod split;
mod values;

pub(crate) use decode::{decode, decodes_to};
use split::Splitter;
use values::{classify, hex_digit, Class};

use std::collections::HashMap;
use std::hash::BuildHasher;

use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_UNPADDED};
use base64::Engine as _;

use crate::codec::{put_u64, put_uvarint, zigzag};

/// The marker in a template where a value goes; a LEB128 column index
/// follows. JSON text outside strings never holds this byte, and the
/// splitter keeps whole any record with it inside a key.
const MARK: u8 = 0x01;

/// The most record bytes one block may decode to.
pub const BLOCK_RECORD_BYTES_MAX: u64 = 128 * 1024 * 1024;

/// A column's kind: how each of its values is stored.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Kind {
    /// A string's bytes between the quotes, as written (escapes kept).
    Text = 1,
    /// A number's spelling.
    Number = 2,
    /// A canonical lowercase UUID string: 16 bytes.
    Uuid = 3,
    /// A `YYYY-MM-DDTHH:MM:SSZ` string: seconds since the epoch.
    Time = 4,
    /// A canonical padded standard base64 string of at least 24
    /// characters: its decoded bytes.
    Base64 = 5,
    /// The same without padding (a length of 2 or 3 modulo 4).
    Base64Unpadded = 6,
    /// Lowercase hex digits, an even number of at least 16: the bytes.
    Hex = 7,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Text,
            2 => Kind::Number,
            3 => Kind::Uuid,
            4 => Kind::Time,
            5 => Kind::Base64,
            6 => Kind::Base64Unpadded,
            7 => Kind::Hex,
            _ => return None,
        })
    }
}

/// A column's encoding in the payload.
const PLAIN: u8 = 0;
const DICT: u8 = 1;

/// One column while a block fills.
struct Column {
    kind: Kind,
    count: u64,
    /// Text/Number: values, each ended by a zero byte. Uuid: 16 bytes
    /// each. Base64: LEB128 length then bytes. Time: unused.
    data: Vec<u8>,
    times: Vec<i64>,
}

/// Splits a block's records into templates and columns.
#[derive(Default)]
pub(crate) struct Encoder {
    /// Template id by a 64-bit hash of the template. Two templates with
    /// one hash would decode wrongly, which the check of each block
    /// against its records catches (it then keeps the block's records
    /// whole).
    templates: ByHash<u32>,
    record_bytes: u64,
    template_bytes: Vec<u8>,
    template_count: u64,
    ids: Vec<u8>,
    columns: Vec<Column>,
    /// (path hash ^ kind) -> column: keys are hashes already.
    column_of: ByHash<u32>,
    whole: Vec<u8>,
    whole_count: u64,
    // One record's work: its template, and each value written to a column
    // (column, its length before) to take back if the record does not
    // split after all.
    template: Vec<u8>,
    written: Vec<(u32, usize)>,
    /// A direct-mapped cache in front of `column_of`: (key, kind, column)
    /// by the key's low bits.
    recent: Vec<(u64, Option<Kind>, u32)>,
    /// Buffers of the last block's columns, emptied, for the next one's:
    /// a block's columns grow to megabytes, and regrowing them each block
    /// costs more than filling them.
    spare: Vec<Vec<u8>>,
}

/// Hashes templates and dictionary values (fixed, so a block's encoding
/// does not depend on the process).
const CONTENT_HASH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x243f_6a88_85a3_08d3);

/// Entries of `Encoder::recent` (a power of two).
const RECENT_SLOTS: usize = 1024;

impl Encoder {
    /// Adds one record (in the order the block stores them).
    pub fn push(&mut self, record: &[u8]) {
        self.record_bytes += record.len() as u64;
        self.template.clear();
        self.written.clear();
        let split = Splitter { rec: record, at: 0, copied: 0, enc: self }.record();
        if split.is_none() {
            for &(col, len) in self.written.iter().rev() {
                let c = &mut self.columns[col as usize];
                c.count -= 1;
                match c.kind {
                    Kind::Time => drop(c.times.pop()),
                    _ => c.data.truncate(len),
                }
            }
            self.record_bytes -= record.len() as u64;
            return self.push_whole(record);
        }
        let key = CONTENT_HASH.hash_one(self.template.as_slice());
        let next = self.templates.len() as u32 + 1;
        let id = *self.templates.entry(key).or_insert_with(|| {
            put_uvarint(&mut self.template_bytes, self.template.len() as u64);
            self.template_bytes.extend_from_slice(&self.template);
            next
        });
        self.template_count = self.templates.len() as u64;
        put_uvarint(&mut self.ids, u64::from(id));
    }

    /// Adds one record kept whole (in the order the block stores them).
    pub fn push_whole(&mut self, record: &[u8]) {
        self.record_bytes += record.len() as u64;
        put_uvarint(&mut self.ids, 0);
        put_uvarint(&mut self.whole, record.len() as u64);
        self.whole.extend_from_slice(record);
        self.whole_count += 1;
    }

    /// Writes the payload's field sections (after the count and the time
    /// columns) and resets the encoder.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        put_u64(out, self.record_bytes);
        put_uvarint(out, self.template_count);
        out.extend_from_slice(&self.template_bytes);
        out.extend_from_slice(&self.ids);
        put_uvarint(out, self.whole_count);
        out.extend_from_slice(&self.whole);
        put_uvarint(out, self.columns.len() as u64);
        let mut body = Vec::new();
        for c in &self.columns {
            out.push(c.kind as u8);
            body.clear();
            let enc = match c.kind {
                Kind::Text | Kind::Number => encode_text(&c.data, c.count, &mut body),
                Kind::Time => {
                    let mut prev = 0i64;
                    for &t in &c.times {
                        put_uvarint(&mut body, zigzag(t.wrapping_sub(prev)));
                        prev = t;
                    }
                    PLAIN
                }
                Kind::Uuid | Kind::Base64 | Kind::Base64Unpadded | Kind::Hex => {
                    body.extend_from_slice(&c.data);
                    PLAIN
                }
            };
            out.push(enc);
            put_uvarint(out, c.count);
            put_uvarint(out, body.len() as u64);
            out.extend_from_slice(&body);
        }
        self.clear();
    }

    pub fn clear(&mut self) {
        self.templates.clear();
        self.record_bytes = 0;
        self.template_bytes.clear();
        self.template_count = 0;
        self.ids.clear();
        self.spare.extend(self.columns.drain(..).map(|mut c| {
            c.data.clear();
            c.data
        }));
        self.column_of.clear();
        self.recent.clear();
        self.whole.clear();
        self.whole_count = 0;
    }

    /// Appends one value to column `col` through `f`, noting how to take
    /// it back.
    fn write(&mut self, col: u32, f: impl FnOnce(&mut Vec<u8>)) {
        let c = &mut self.columns[col as usize];
        self.written.push((col, c.data.len()));
        c.count += 1;
        f(&mut c.data);
    }

    /// Appends a string value (the bytes between its quotes) to the column
    /// of its path and kind; returns the column.
    #[inline]
    fn write_string(&mut self, path: u64, s: &[u8]) -> u32 {
        match classify(s) {
            Class::Uuid(u) => {
                let col = self.column(path, Kind::Uuid);
                self.write(col, |d| d.extend_from_slice(&u));
                col
            }
            Class::Time(t) => {
                let col = self.column(path, Kind::Time);
                let c = &mut self.columns[col as usize];
                self.written.push((col, 0));
                c.count += 1;
                c.times.push(t);
                col
            }
            Class::Hex => {
                let col = self.column(path, Kind::Hex);
                self.write(col, |d| {
                    put_uvarint(d, s.len() as u64 / 2);
                    d.extend(s.chunks_exact(2).map(|p| (hex_digit(p[0]) << 4) | hex_digit(p[1])));
                });
                col
            }
            Class::Base64(kind) => {
                // Both engines refuse non-canonical input (stray trailing
                // bits, wrong padding), so what decodes re-encodes to `s`.
                let engine = if kind == Kind::Base64 { &B64 } else { &B64_UNPADDED };
                let pad = s.iter().rev().take_while(|&&c| c == b'=').count();
                let n = (s.len() - pad) * 3 / 4;
                let col = self.column(path, kind);
                let d = &mut self.columns[col as usize].data;
                let at = d.len();
                put_uvarint(d, n as u64);
                let body = d.len();
                d.resize(body + n, 0);
                if engine.decode_slice(s, &mut d[body..]) == Ok(n) {
                    self.written.push((col, at));
                    self.columns[col as usize].count += 1;
                    return col;
                }
                d.truncate(at);
                self.write_text(path, s)
            }
            Class::Text => self.write_text(path, s),
        }
    }

    #[inline]
    fn write_text(&mut self, path: u64, s: &[u8]) -> u32 {
        let col = self.column(path, Kind::Text);
        self.write(col, |d| {
            d.extend_from_slice(s);
            d.push(0);
        });
        col
    }

    #[inline]
    fn column(&mut self, path: u64, kind: Kind) -> u32 {
        let key = path ^ (kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if self.recent.is_empty() {
            self.recent.resize(RECENT_SLOTS, (0, None, 0));
        }
        let slot = key as usize & (RECENT_SLOTS - 1);
        match self.recent[slot] {
            (k, Some(kd), col) if k == key && kd == kind => col,
            _ => {
                let col = self.find_column(key, kind);
                self.recent[slot] = (key, Some(kind), col);
                col
            }
        }
    }

    fn find_column(&mut self, key: u64, kind: Kind) -> u32 {
        let next = self.columns.len() as u32;
        let col = *self.column_of.entry(key).or_insert_with(|| {
            self.columns.push(Column { kind, count: 0, data: self.spare.pop().unwrap_or_default(), times: Vec::new() });
            next
        });
        if self.columns[col as usize].kind == kind {
            return col;
        }
        // Two (path, kind) pairs with one key (the paths hashed to it): the
        // second gets a column of its own kind, found by a scan.
        match self.columns.iter().rposition(|c| c.kind == kind) {
            Some(i) => i as u32,
            None => {
                self.columns.push(Column { kind, count: 0, data: self.spare.pop().unwrap_or_default(), times: Vec::new() });
                next
            }
        }
    }
}

/// A map keyed by hashes.
type ByHash<V> = HashMap<u64, V, std::hash::BuildHasherDefault<KeyIsHash>>;

/// A hasher for keys that are hashes already.
#[derive(Default)]
struct KeyIsHash(u64);

impl std::hash::Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// How many of a column's first values `encode_text` looks at before it
/// gives up on a dictionary for a column of nearly all distinct values.
const DICT_SAMPLE: usize = 128;

/// Text and number columns: plain (each value then a zero byte), or, when
/// at most half the values are distinct, a dictionary: LEB128 D, the D
/// distinct values each ended by a zero byte in order of first use, then
/// each value's index as one byte (D <= 256) or two little-endian bytes.
fn encode_text(data: &[u8], count: u64, out: &mut Vec<u8>) -> u8 {
    // Each value is ended by a zero byte (found with memchr, many times
    // faster than a byte-at-a-time split).
    let mut at = 0;
    let values = memchr::memchr_iter(0, data).take(count as usize).map(|end| {
        let v = &data[at..end];
        at = end + 1;
        v
    });
    // Values by a 64-bit hash, not compared byte for byte: two distinct
    // values with one hash would decode wrongly, which the check of the
    // block against its records catches (the block is then kept whole).
    let mut seen: ByHash<u32> = HashMap::default();
    let mut dict: Vec<&[u8]> = Vec::new();
    let mut order: Vec<u32> = Vec::with_capacity(count as usize);
    let mut gave_up = false;
    for (i, v) in values.enumerate() {
        let next = dict.len() as u32;
        let ix = *seen.entry(CONTENT_HASH.hash_one(v)).or_insert(next);
        if ix == next {
            dict.push(v);
        }
        order.push(ix);
        // A column whose first values are nearly all distinct (ids,
        // tokens, free text) is not worth hashing to the end.
        if i + 1 == DICT_SAMPLE && count > 2 * DICT_SAMPLE as u64 && dict.len() * 8 > DICT_SAMPLE * 7 {
            gave_up = true;
            break;
        }
        // Past half the count distinct, no dictionary can follow: stop
        // hashing (columns of ids and tokens are all distinct).
        if dict.len() as u64 * 2 > count {
            break;
        }
    }
    let distinct = dict.len() as u64;
    if gave_up || distinct == 0 || distinct * 2 > count || distinct > 65_536 {
        out.extend_from_slice(data);
        return PLAIN;
    }
    put_uvarint(out, distinct);
    for v in dict {
        out.extend_from_slice(v);
        out.push(0);
    }
    for i in order {
        if distinct <= 256 {
            out.push(i as u8);
        } else {
            out.extend_from_slice(&(i as u16).to_le_bytes());
        }
    }
    DICT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Reader;
    use crate::event::time::civil_from_days;

    fn encode(records: &[&[u8]]) -> Vec<u8> {
        let mut e = Encoder::default();
        records.iter().for_each(|r| e.push(r));
        let mut out = Vec::new();
        e.finish(&mut out);
        out
    }

    fn decode_all(payload: &[u8], n: usize) -> Option<Vec<Vec<u8>>> {
        let (mut data, mut spans) = (Vec::new(), Vec::new());
        let mut r = Reader::new(payload);
        decode(&mut r, n, &mut data, &mut spans)?;
        Some(spans.iter().map(|&(s, e)| data[s..e].to_vec()).collect())
    }

    fn assert_round_trip(records: &[&[u8]]) -> Vec<u8> {
        let payload = encode(records);
        let back = decode_all(&payload, records.len()).expect("decodes");
        for (a, b) in records.iter().zip(&back) {
            assert_eq!(String::from_utf8_lossy(a), String::from_utf8_lossy(b));
        }
        assert_eq!(back.len(), records.len());
        payload
    }

    const TRICKY: &[&[u8]] = &[
        br#"{"eventTime":"2026-01-01T00:00:00Z","eventID":"3f1a8fd0-f48e-4c6c-9986-c753586938ea","n":1}"#,
        br#"{"eventTime":"2026-01-01T00:00:07Z","eventID":"3F1A8FD0-F48E-4C6C-9986-C753586938EA","n":-1.5e+10}"#,
        br#"{ "eventTime" : "2026-02-30T00:00:00Z" , "a" : [ 1 , "x" , [ ] , { } , null , true , false ] }"#,
        "{\"a\":\"esc \\\" \\\\ \\u0001 \\/ é\",\"a\":\"dup\",\"\":\"\",\"k\\\"ey\":\"v\"}".as_bytes(),
        br#"{"t":"IQoJb3JpZ2luX2Vjvi8rWwnWrEKoQXJxyKhfYVw33o5lZMbD9Cu4MG6kO141aRJDRSbZ","u":"IQoJb3JpZ2luX2Vjvi8rWwnWrEKoQXJxyKhfYVw33o5lZMbD9Cu4MG6kO141aRJDRSba"}"#,
        br#"{"t":"QUJD","u":"QUJDRA==QUJDRA==QUJDRA==","w":"QUI=QUI=QUI=QUI=QUI=QUI="}"#,
        br#"{"h":"b236ed0e14722844","i":"00000000000000000000","j":"Wc/miytY7nmfS8OMMR22Mi5XqsM7oVOHjRM","k":"Wc/miytY7nmfS8OMMR22Mi5XqsM7oVOHjRN","l":"Wc/miytY7nmfS8OMMR22Mi5XqsM7oVOHjROy"}"#,
        b"{\n  \"pretty\": {\n\t\"x\": 00012,\r\n \"y\": \"1969-12-31T23:59:59Z\"\n  }\n}",
        br#"[1,2,{"a":"b"}]"#,
        br#""just a string""#,
        b"not json at all",
        br#"{"unterminated":"#,
        b"{\"raw control\":\"a\x01b\"}",
        b"{\"a\":1} trailing",
        b"",
        br#"{"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        br#"{"eventTime":"0000-01-01T00:00:00Z","b":"9999-12-31T23:59:59Z","c":"2024-02-29T12:00:00Z"}"#,
    ];

    // Goal: every record comes back byte for byte, whatever its spelling:
    // whitespace, escapes, duplicate and empty keys, number spellings,
    // non-canonical UUIDs, times and base64, nesting, and records that are
    // not JSON objects or not JSON at all.
    #[test]
    fn records_round_trip_byte_exact() {
        assert_round_trip(TRICKY);
        for r in TRICKY {
            assert_round_trip(&[r]);
        }
        assert_round_trip(&[]);
    }

    // Goal: the real CloudTrail records of the fixtures round-trip, and
    // none of them has to be kept whole.
    #[test]
    fn real_records_split_and_round_trip() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cloudtrail");
        let mut records = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "ndjson") {
                let text = std::fs::read(&path).unwrap();
                records.extend(text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
            }
        }
        assert!(records.len() > 100, "{} records", records.len());
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let mut e = Encoder::default();
        refs.iter().for_each(|r| e.push(r));
        assert_eq!(e.whole_count, 0, "every real record splits");
        assert_round_trip(&refs);
    }

    // Goal: the writer's check of a block (rebuild each record, compare)
    // says yes only for exactly the records encoded: one byte changed, a
    // record missing or one too many is caught.
    #[test]
    fn check_catches_any_difference() {
        let payload = encode(TRICKY);
        let check = |recs: &[&[u8]]| decodes_to(&mut Reader::new(&payload), &mut recs.iter().copied());
        assert!(check(TRICKY));
        let mut changed: Vec<Vec<u8>> = TRICKY.iter().map(|r| r.to_vec()).collect();
        changed[1][20] ^= 1;
        assert!(!check(&changed.iter().map(Vec::as_slice).collect::<Vec<_>>()));
        assert!(!check(&TRICKY[..TRICKY.len() - 1]));
        assert!(!check(&[TRICKY, &[b"{}".as_slice()]].concat()));
    }

    // Goal: an encoder reused block after block (as seals reuse it, with
    // the last block's column buffers) writes each block as a fresh one
    // would.
    #[test]
    fn reused_encoder_writes_what_a_fresh_one_does() {
        let mut e = Encoder::default();
        let mut first = Vec::new();
        TRICKY.iter().for_each(|r| e.push(r));
        e.finish(&mut first);
        let second: Vec<&[u8]> = TRICKY.iter().rev().copied().collect();
        let mut out = Vec::new();
        second.iter().for_each(|r| e.push(r));
        e.finish(&mut out);
        assert_eq!(out, encode(&second));
        assert_eq!(decode_all(&out, second.len()).unwrap(), second.iter().map(|r| r.to_vec()).collect::<Vec<_>>());
    }

    /// The kind of the column a lone string value is stored in.
    fn stored_kind(s: &[u8]) -> Kind {
        let mut e = Encoder::default();
        e.push(&[br#"{"v":""#.as_slice(), s, b"\"}"].concat());
        assert_eq!(e.whole_count, 0);
        e.columns.iter().find(|c| c.count == 1).expect("one value").kind
    }

    // Goal: typed values are stored in their small form: a UUID in 16
    // bytes, not 36.
    #[test]
    fn canonical_values_are_stored_typed() {
        let recs: Vec<String> = (0..50).map(|i| format!(r#"{{"eventID":"3f1a8fd0-f48e-4c6c-9986-{i:012x}"}}"#)).collect();
        let refs: Vec<&[u8]> = recs.iter().map(|s| s.as_bytes()).collect();
        let payload = assert_round_trip(&refs);
        assert!(payload.len() < 50 * 20, "{} bytes for 50 UUIDs", payload.len());
        assert_eq!(stored_kind(b"2026-02-30T00:00:00Z"), Kind::Text);
        assert_eq!(stored_kind(b"2026-02-28T00:00:00Z"), Kind::Time);
        assert_eq!(stored_kind(b"3F1A8FD0-F48E-4C6C-9986-C753586938EA"), Kind::Text);
        assert_eq!(stored_kind(b"QUJDRA==QUJDRA==QUJDRA=="), Kind::Text);
        assert_eq!(stored_kind(b"b236ed0e14722844"), Kind::Hex);
        assert_eq!(stored_kind(b"b236ed0e1472284"), Kind::Text);
        assert_eq!(stored_kind(b"B236ED0E14722844"), Kind::Text);
        assert_eq!(stored_kind(b"Wc/miytY7nmfS8OMMR22Mi5XqsM7oVOHjRM"), Kind::Base64Unpadded);
        assert_eq!(stored_kind(b"Wc/miytY7nmfS8OMMR22Mi5XqsM7oVOHjRN"), Kind::Text);
        assert_eq!(stored_kind(b"GetBucketPublicAccessBlockPolicy"), Kind::Text);
    }

    // Goal: a damaged payload is refused or decodes to something, never
    // panics: every truncation and every single-byte change.
    #[test]
    fn damaged_payloads_never_panic() {
        let payload = encode(TRICKY);
        for cut in 0..payload.len() {
            assert!(decode_all(&payload[..cut], TRICKY.len()).is_none(), "cut at {cut}");
        }
        for i in 0..payload.len() {
            for x in [0x01, 0x80, 0xff] {
                let mut p = payload.clone();
                p[i] ^= x;
                let _ = decode_all(&p, TRICKY.len());
            }
        }
        assert!(decode_all(&payload, TRICKY.len() + 1).is_none());
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;

        /// Strings a record may hold: typed-looking ones (canonical or just
        /// off), escapes, non-ASCII, empty.
        fn string() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("3f1a8fd0-f48e-4c6c-9986-c753586938ea".to_string()),
                Just("3f1a8fd0-f48e-4c6c-9986-c753586938eA".to_string()),
                Just("2026-01-01T00:00:00Z".to_string()),
                Just("2026-13-01T00:00:00Z".to_string()),
                Just("b236ed0e14722844".to_string()),
                Just("QUJDRA==QUJDRA==QUJDRA==".to_string()),
                Just("Wc/miytY7nmfS8OMMR22Mi5XqsM7oVOHjRM".to_string()),
                Just("Wc/miytY7nmfS8OMMR22Mi5XqsM7oVOHjRN".to_string()),
                Just("IQoJb3JpZ2luX2Vjvi8rWwnWrEKoQXJxyKhf".to_string()),
                Just(String::new()),
                Just(r#"esc \" \\ \u0041 \n"#.to_string()),
                "[a-zA-Z0-9 +/=:._-]{0,40}",
                "\\PC{0,8}".prop_map(|s| s.replace(['"', '\\'], "")),
                (0u64..10_000_000_000).prop_map(|t| {
                    let (d, r) = (t / 86_400, t % 86_400);
                    let (y, m, dd) = civil_from_days(d as i64);
                    format!("{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}Z", r / 3600, r / 60 % 60, r % 60)
                }),
            ]
        }

        fn number() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("0".into()),
                Just("-0".into()),
                Just("1.50".into()),
                Just("1e+10".into()),
                Just("-2E-3".into()),
                any::<i64>().prop_map(|n| n.to_string())
            ]
        }

        fn ws() -> impl Strategy<Value = &'static str> {
            prop_oneof![Just(""), Just(""), Just(" "), Just("\n  "), Just("\t"), Just("\r\n")]
        }

        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                string().prop_map(|s| format!("\"{s}\"")),
                number(),
                Just("true".to_string()),
                Just("false".to_string()),
                Just("null".to_string()),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec((ws(), inner.clone(), ws()), 0..5)
                        .prop_map(|v| format!("[{}]", v.iter().map(|(a, x, b)| format!("{a}{x}{b}")).collect::<Vec<_>>().join(","))),
                    prop::collection::vec(
                        (prop_oneof![Just("a"), Just("eventID"), Just(""), Just("k\\\"q"), Just("é")], ws(), inner),
                        0..5
                    )
                    .prop_map(|v| format!(
                        "{{{}}}",
                        v.iter().map(|(k, w, x)| format!("{w}\"{k}\"{w}:{w}{x}")).collect::<Vec<_>>().join(",")
                    )),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)))]

            // Goal: any block of records, JSON or damaged (bytes cut or
            // flipped), reads back byte for byte.
            #[test]
            fn any_block_round_trips(
                records in prop::collection::vec((value(), prop::option::of((any::<prop::sample::Index>(), any::<u8>()))), 1..12)
            ) {
                let recs: Vec<Vec<u8>> = records
                    .into_iter()
                    .map(|(v, damage)| {
                        let mut b = v.into_bytes();
                        if let Some((at, x)) = damage {
                            if !b.is_empty() {
                                let i = at.index(b.len());
                                if x % 2 == 0 { b.truncate(i) } else { b[i] ^= x }
                            }
                        }
                        b
                    })
                    .collect();
                let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
                assert_round_trip(&refs);
            }
        }
    }
}
