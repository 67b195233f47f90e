//! Little-endian fixed-width encoding helpers for on-disk formats. Every
//! read is bounds-checked and returns `None` past the end: bytes from disk
//! are input, never trusted.

pub mod packed;

pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// LEB128 varint of a u64.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The LEB128 varint at the start of `b`: its value and the bytes it took.
/// `None` if `b` ends inside it or it does not fit a u64 (at most 10
/// bytes). The one reader of varints; `put_uvarint` is the one writer.
#[inline]
pub fn uvarint_at(b: &[u8]) -> Option<(u64, usize)> {
    // Most varints are one byte (lengths, gaps, small counts).
    if let Some(&x) = b.first() {
        if x < 0x80 {
            return Some((u64::from(x), 1));
        }
    }
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The same for a varint that must fit a u32.
#[inline]
pub fn uvarint_u32_at(b: &[u8]) -> Option<(u32, usize)> {
    let (v, used) = uvarint_at(b)?;
    Some((u32::try_from(v).ok()?, used))
}

/// Zigzag: small signed numbers to small unsigned ones.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A bounds-checked cursor over bytes read from disk.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// The bytes not read yet (without reading them).
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.bytes(N)?.try_into().ok()
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
    pub fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }
    /// A LEB128 varint of at most 10 bytes that fits a u64.
    #[inline]
    pub fn uvarint(&mut self) -> Option<u64> {
        let (v, used) = uvarint_at(self.buf.get(self.pos..)?)?;
        self.pos += used;
        Some(v)
    }
    /// A LEB128 varint that fits a u32.
    #[inline]
    pub fn uvarint_u32(&mut self) -> Option<u32> {
        u32::try_from(self.uvarint()?).ok()
    }
}

/// Writes bit fields, least significant bit first.
#[derive(Debug, Default)]
pub struct BitWriter {
    pub bytes: Vec<u8>,
    bits: u64,
    used: u32,
}

impl BitWriter {
    /// Appends the low `n` (at most 32) bits of `v`.
    pub fn put(&mut self, v: u64, n: u32) {
        debug_assert!(n <= 32 && (n == 32 || v >> n == 0));
        self.bits |= v << self.used;
        self.used += n;
        while self.used >= 8 {
            self.bytes.push(self.bits as u8);
            self.bits >>= 8;
            self.used -= 8;
        }
    }

    /// `q` one bits then a zero (unary).
    pub fn unary(&mut self, mut q: u64) {
        while q >= 32 {
            self.put(u64::from(u32::MAX), 32);
            q -= 32;
        }
        self.put((1u64 << q) - 1, q as u32 + 1);
    }

    /// Pads to a whole byte.
    pub fn align(&mut self) {
        if self.used > 0 {
            self.bytes.push(self.bits as u8);
            self.bits = 0;
            self.used = 0;
        }
    }
}

/// Reads what [`BitWriter`] wrote; `None` past the end.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bits read so far.
    pub fn bits_read(&self) -> usize {
        self.pos
    }

    /// Bits left to read.
    fn remaining(&self) -> usize {
        self.buf.len() * 8 - self.pos
    }

    /// The next 57 or more bits (zeros past the end), without consuming.
    fn peek(&self) -> u64 {
        let i = self.pos / 8;
        let mut w = [0u8; 8];
        let n = self.buf.len().saturating_sub(i).min(8);
        w[..n].copy_from_slice(&self.buf[i..i + n]);
        u64::from_le_bytes(w) >> (self.pos % 8)
    }

    /// The next `n` (at most 32) bits.
    pub fn get(&mut self, n: u32) -> Option<u64> {
        if n as usize > self.remaining() {
            return None;
        }
        let v = self.peek() & ((1u64 << n) - 1);
        self.pos += n as usize;
        Some(v)
    }

    /// A unary count of at most `max` ones (and its closing zero).
    pub fn unary(&mut self, max: u64) -> Option<u64> {
        let mut q = 0u64;
        loop {
            let avail = self.remaining().min(57);
            if avail == 0 {
                return None;
            }
            let ones = (!self.peek()).trailing_zeros() as usize;
            if ones < avail {
                q += ones as u64;
                self.pos += ones + 1;
                return (q <= max).then_some(q);
            }
            q += avail as u64;
            self.pos += avail;
            if q > max {
                return None;
            }
        }
    }
}

/// crc32 (IEEE, as computed by crc32fast) of several slices in order.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// A xorshift64 generator for tests: fixed seed, fixed sequence.
#[cfg(test)]
pub(crate) fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: what BitWriter writes, BitReader reads back exactly, for
    // fields of every width (0 to 32 bits) and unary runs longer than a
    // 64-bit word; reading past the end or a run over its limit is `None`.
    #[test]
    fn bits_round_trip() {
        let mut rnd = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut fields = Vec::new();
        let mut w = BitWriter::default();
        for i in 0..5000u64 {
            let n = (rnd() % 33) as u32;
            let v = if n == 0 { 0 } else { rnd() & (u64::MAX >> (64 - n)) };
            let q = if i % 97 == 0 { 150 + rnd() % 100 } else { rnd() % 4 };
            w.put(v, n);
            w.unary(q);
            fields.push((v, n, q));
        }
        w.align();
        let mut r = BitReader::new(&w.bytes);
        for &(v, n, q) in &fields {
            assert_eq!(r.get(n), Some(v));
            assert_eq!(r.unary(u64::MAX), Some(q));
        }
        assert_eq!(r.bits_read().div_ceil(8), w.bytes.len());
        assert_eq!(r.get(32).is_none(), w.bytes.len() * 8 - r.bits_read() < 32);
        let mut r = BitReader::new(&w.bytes);
        assert_eq!(r.get(fields[0].1), Some(fields[0].0));
        assert!(fields[0].2 == 0 || r.unary(fields[0].2 - 1).is_none(), "a run over its limit");
        assert_eq!(BitReader::new(&[0xff, 0xff]).unary(100), None, "a run that never ends");
        assert_eq!(BitReader::new(&[0x01]).get(9), None);
    }
}
