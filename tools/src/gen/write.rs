//! Small writers (no formatting machinery: they run a few hundred times per
//! record): numbers, hex, text from an alphabet, UUIDs.

use super::rng::{mix, GOLDEN};

pub(super) fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub(super) fn put_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    put_u64(out, v.unsigned_abs());
}

/// Two decimal digits.
pub(super) fn put2(out: &mut Vec<u8>, v: u32) {
    out.push(b'0' + (v / 10 % 10) as u8);
    out.push(b'0' + (v % 10) as u8);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Two hex digits for each byte value.
pub(super) const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 15]];
        i += 1;
    }
    t
};

/// Appends `N` bytes to fill in place. Writing into the vector directly
/// (one capacity check) rather than into a stack buffer that is then copied
/// avoids store-forwarding stalls, which made that copy the hot spot.
pub(super) fn grow<const N: usize>(out: &mut Vec<u8>) -> &mut [u8; N] {
    let len = out.len();
    out.extend_from_slice(&[0u8; N]);
    let tail: &mut [u8] = &mut out[len..];
    tail.try_into().unwrap_or_else(|_| unreachable!("just appended {N} bytes"))
}

/// The 16 hex digits of `v` (the hot path of ids and padding).
pub(super) fn put_hex16(out: &mut Vec<u8>, v: u64) {
    let buf = grow::<16>(out);
    for (pair, byte) in buf.chunks_exact_mut(2).zip(v.to_be_bytes()) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
}

/// The low `digits` (at most 16) hex digits of `v`, most significant first.
pub(super) fn put_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    let digits = digits.min(16);
    put_hex16(out, v << (4 * (16 - digits)));
    out.truncate(out.len() - (16 - digits));
}

/// `n` characters of `alphabet` derived from `seed`.
pub(super) fn put_chars(out: &mut Vec<u8>, seed: u64, n: usize, alphabet: &[u8]) {
    let len = alphabet.len() as u64;
    // 64 bits give 12 base-32 or base-36 characters, 10 base-62 or base-64 ones.
    let per = if len > 36 { 10 } else { 12 };
    let mut i = 0;
    while i < n {
        let mut h = mix(seed.wrapping_add(i as u64).wrapping_mul(GOLDEN));
        let k = per.min(n - i);
        let start = out.len();
        for b in &mut grow::<12>(out)[..k] {
            // Digits of h read as a fraction in base `len`: a multiply per
            // character instead of a division.
            let x = u128::from(h) * u128::from(len);
            *b = alphabet[(x >> 64) as usize];
            h = x as u64;
        }
        out.truncate(start + k);
        i += k;
    }
}

/// AWS key and principal ids use base32 (A-Z, 2-7).
pub(super) const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
pub(super) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub(super) const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Version-4 UUID text (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`) from 128
/// random bits.
pub(super) fn put_uuid(out: &mut Vec<u8>, a: u64, b: u64) {
    let buf = grow::<36>(out);
    let (a, b) = (a.to_be_bytes(), b.to_be_bytes());
    // (output offset, byte): 8-4-4-4-12 hex digits.
    let pairs = [(0, a[0]), (2, a[1]), (4, a[2]), (6, a[3]), (9, a[4]), (11, a[5]), (14, a[6]), (16, a[7])];
    for (at, byte) in pairs.into_iter().chain([(19, b[0]), (21, b[1]), (24, b[2]), (26, b[3])]) {
        buf[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    for (i, byte) in b[4..].iter().enumerate() {
        buf[28 + 2 * i..30 + 2 * i].copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    for at in [8, 13, 18, 23] {
        buf[at] = b'-';
    }
    buf[14] = b'4';
    buf[19] = HEX[usize::from(8 | b[0] >> 6)];
}
