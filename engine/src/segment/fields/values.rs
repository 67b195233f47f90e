//! Typed values: which strings have a canonical spelling that can be stored
//! smaller (lowercase UUIDs, `YYYY-MM-DDTHH:MM:SSZ` times, lowercase hex,
//! standard base64), and writing them back exactly as they were.

use crate::event::time::{civil_from_days, days_from_civil};

use super::Kind;

/// How a string value is stored.
pub(super) enum Class {
    Text,
    Uuid([u8; 16]),
    Time(i64),
    Hex,
    /// Base64 or unpadded base64, if it proves canonical.
    Base64(Kind),
}

/// Classifies a string value (its bytes between the quotes).
#[inline]
pub(super) fn classify(s: &[u8]) -> Class {
    if s.len() < 16 {
        return Class::Text;
    }
    if let Some(u) = parse_uuid(s) {
        return Class::Uuid(u);
    }
    if let Some(t) = parse_time(s) {
        return Class::Time(t);
    }
    let body = s.strip_suffix(b"==").or_else(|| s.strip_suffix(b"=")).unwrap_or(s);
    let (mut all, mut any) = (HEX_LOWER | B64_CHAR, 0u8);
    for &c in body {
        let k = CHAR_CLASS[usize::from(c)];
        all &= k;
        any |= k;
        if all == 0 {
            return Class::Text;
        }
    }
    if all & HEX_LOWER != 0 && body.len() == s.len() && s.len().is_multiple_of(2) {
        return Class::Hex;
    }
    // Tokens, not words: a digit, an upper- and a lowercase letter.
    let token = all & B64_CHAR != 0 && any & (DIGIT | UPPER | LOWER) == DIGIT | UPPER | LOWER && s.len() >= 24;
    match (s.len() % 4, body.len() == s.len()) {
        (0, _) if token => Class::Base64(Kind::Base64),
        (2 | 3, true) if token => Class::Base64(Kind::Base64Unpadded),
        _ => Class::Text,
    }
}

pub(super) const HEX_LOWER: u8 = 1;

pub(super) const B64_CHAR: u8 = 2;

pub(super) const DIGIT: u8 = 4;

pub(super) const UPPER: u8 = 8;

pub(super) const LOWER: u8 = 16;

/// Each byte's classes, for one pass over a string.
pub(super) static CHAR_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'0'..=b'9' => HEX_LOWER | B64_CHAR | DIGIT,
            b'a'..=b'f' => HEX_LOWER | B64_CHAR | LOWER,
            b'g'..=b'z' => B64_CHAR | LOWER,
            b'A'..=b'Z' => B64_CHAR | UPPER,
            b'+' | b'/' => B64_CHAR,
            _ => 0,
        };
        i += 1;
    }
    t
};

#[inline]
pub(super) fn hex_digit(c: u8) -> u8 {
    if c.is_ascii_digit() {
        c - b'0'
    } else {
        c - b'a' + 10
    }
}

#[inline]
pub(super) fn parse_uuid(s: &[u8]) -> Option<[u8; 16]> {
    if s.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    for (i, &c) in s.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        out[n / 2] |= v << (4 * (1 - n % 2));
        n += 1;
    }
    Some(out)
}

pub(super) const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
pub(super) fn format_uuid(u: &[u8], out: &mut Vec<u8>) {
    for (i, &b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` with a real date: seconds since the epoch.
#[inline]
pub(super) fn parse_time(s: &[u8]) -> Option<i64> {
    if s.len() != 20 || s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' || s[16] != b':' || s[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        s[r].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if civil_from_days(days) != (y, mo, d) {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

#[inline]
pub(super) fn format_time(t: i64, out: &mut Vec<u8>) -> Option<()> {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let two = |out: &mut Vec<u8>, v: i64, sep: u8| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
        out.push(sep);
    };
    out.extend_from_slice(&[b'0' + (y / 1000) as u8, b'0' + (y / 100 % 10) as u8, b'0' + (y / 10 % 10) as u8, b'0' + (y % 10) as u8, b'-']);
    two(out, mo, b'-');
    two(out, d, b'T');
    two(out, secs / 3600, b':');
    two(out, secs / 60 % 60, b':');
    two(out, secs % 60, b'Z');
    Some(())
}
