//! The splitter: one pass over a record that fills its template (keys,
//! punctuation, whitespace, literals) and writes each string or number
//! value to the column of its key path and kind, or gives up on anything
//! that is not strict JSON (the record is then kept whole).

use std::hash::BuildHasher;

use crate::codec::put_uvarint;
use crate::framing::plain_run;
use crate::limits::RECORD_DEPTH_MAX;

use super::{Encoder, Kind, MARK};

/// One pass over one record: fills the encoder's template and staged
/// values, or gives up (`None`) on anything that is not strict JSON.
///
/// The template is the record with each value's bytes (a string's
/// between its quotes, a number's spelling) replaced by a marker and its
/// column: the bytes between values are copied in runs, from `copied`.
pub(super) struct Splitter<'a, 'e> {
    pub(super) rec: &'a [u8],
    pub(super) at: usize,
    pub(super) copied: usize,
    pub(super) enc: &'e mut Encoder,
}

pub(super) const ROOT: u64 = 0xcbf2_9ce4_8422_2325;

#[inline]
fn child(path: u64, key: &[u8]) -> u64 {
    // A hash of the parent's hash and the key; a collision only puts two
    // paths' values in one column.
    foldhash::fast::FixedState::with_seed(path).hash_one(key)
}

impl<'a> Splitter<'a, '_> {
    pub(super) fn record(mut self) -> Option<()> {
        self.value(ROOT, 0)?;
        self.ws();
        if self.at != self.rec.len() {
            return None;
        }
        self.enc.template.extend_from_slice(&self.rec[self.copied..]);
        Some(())
    }

    fn peek(&self) -> Option<u8> {
        self.rec.get(self.at).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// The bytes of a string between its quotes (the opening quote is at
    /// `at`), leaving `at` after the closing one. A raw control byte, or
    /// one escaped with a backslash, is not JSON; it also keeps zero bytes
    /// (which end a stored value) and marker bytes out of templates and
    /// columns.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.at + 1;
        let mut i = start;
        loop {
            i += plain_run(self.rec.get(i..)?);
            match *self.rec.get(i)? {
                b'"' => break,
                b'\\' if *self.rec.get(i + 1)? >= 0x20 => i += 2,
                _ => return None,
            }
        }
        self.at = i + 1;
        Some(&self.rec[start..i])
    }

    fn value(&mut self, path: u64, depth: usize) -> Option<()> {
        if depth > RECORD_DEPTH_MAX {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => {
                self.at += 1;
                self.ws();
                if self.peek()? == b'}' {
                    return self.expect(b'}');
                }
                loop {
                    self.ws();
                    if self.peek()? != b'"' {
                        return None;
                    }
                    let path = child(path, self.string()?);
                    self.ws();
                    self.expect(b':')?;
                    self.value(path, depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => return self.expect(b'}'),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.at += 1;
                self.ws();
                if self.peek()? == b']' {
                    return self.expect(b']');
                }
                let path = child(path, b"[]");
                loop {
                    self.value(path, depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => return self.expect(b']'),
                        _ => return None,
                    }
                }
            }
            b'"' => {
                let text = self.string()?;
                let col = self.enc.write_string(path, text);
                self.mark(self.at - 1 - text.len(), self.at - 1, col);
                Some(())
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
                    self.at += 1;
                }
                let col = self.enc.column(path, Kind::Number);
                self.enc.write(col, |data| {
                    data.extend_from_slice(&self.rec[start..self.at]);
                    data.push(0);
                });
                self.mark(start, self.at, col);
                Some(())
            }
            _ => None,
        }
    }

    /// Puts the value at `start..end` in the template: the record's bytes
    /// before it, then its marker (column `col`).
    fn mark(&mut self, start: usize, end: usize, col: u32) {
        let t = &mut self.enc.template;
        t.extend_from_slice(&self.rec[self.copied..start]);
        t.push(MARK);
        put_uvarint(t, u64::from(col));
        self.copied = end;
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.rec[self.at..].starts_with(word).then(|| self.at += word.len())
    }
}
