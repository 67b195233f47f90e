//! Parsing `eventTime` into a UTC instant (milliseconds since the Unix epoch).
//!
//! Accepted: CloudTrail's `YYYY-MM-DDTHH:MM:SSZ` and the common variants seen
//! in real records: a space or lower-case `t` instead of `T`, fractional
//! seconds (any number of digits; kept to the millisecond), `z`, numeric
//! offsets (`+HH:MM`, `+HHMM`, `+HH`), and no zone at all, which is read as
//! UTC (CloudTrail Lake integration events use `yyyy-MM-DDTHH:mm:ss`, UTC).
//! Anything else (placeholders such as `"timestamp"`) is not an instant.
//! Hand-written rather than a date crate: the grammar is fixed and small, and
//! this runs once per ingested record.

/// Parses an eventTime string. Returns milliseconds since 1970-01-01T00:00:00Z.
pub fn parse_event_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if i < b.len() && (b[i] == b'.' || b[i] == b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_secs = parse_zone(&b[i..])?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_secs;
    Some(secs * 1_000 + millis)
}

/// The zone suffix: empty (UTC), `Z`/`z`, ` UTC`, or `±HH[:MM]`/`±HHMM`.
fn parse_zone(b: &[u8]) -> Option<i64> {
    match b {
        [] | [b'Z'] | [b'z'] | b" UTC" | b"UTC" => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest.len() {
                2 => (digits(rest, 0, 2)?, 0),
                4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
                5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3_600 + m * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Formats milliseconds since the epoch as CloudTrail does
/// (`YYYY-MM-DDTHH:MM:SSZ`, sub-second part dropped).
/// As [`format_event_time`], with milliseconds when there are any
/// (`2026-01-01T00:00:00.005Z`): for messages about instants that may be
/// less than a second apart.
pub fn format_event_time_ms(ms: i64) -> String {
    let s = format_event_time(ms);
    match ms.rem_euclid(1_000) {
        0 => s,
        frac => format!("{}.{frac:03}Z", s.trim_end_matches('Z')),
    }
}

pub fn format_event_time(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3_600, rem % 3_600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every spelling seen in real records parses to the same instant,
    // and placeholders and impossible dates do not.
    #[test]
    fn variants_and_rejections() {
        let base = parse_event_time("2025-02-19T20:13:49Z").unwrap();
        assert_eq!(base, 1_739_996_029_000);
        for s in [
            "2025-02-19 20:13:49",
            "2025-02-19T20:13:49",
            "2025-02-19t20:13:49z",
            "2025-02-19T21:13:49+01:00",
            "2025-02-19T19:13:49-0100",
            "2025-02-19T22:13:49+02",
            "2025-02-19 20:13:49 UTC",
        ] {
            assert_eq!(parse_event_time(s), Some(base), "{s}");
        }
        assert_eq!(parse_event_time("2025-01-21 17:49:47.000000000"), parse_event_time("2025-01-21T17:49:47Z"));
        assert_eq!(parse_event_time("2025-02-19T20:13:49.123456Z"), Some(base + 123));
        assert_eq!(parse_event_time("2025-02-19T20:13:49.5Z"), Some(base + 500));
        for s in [
            "timestamp",
            "yyyy-mm-ddThh:mm:ssZ",
            "2025-02-30T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-02-19T24:00:00Z",
            "2025-02-19T20:13:49.Z",
            "2025-02-19T20:13:49+5",
            "2025-02-19T20:13:49Zjunk",
            "",
        ] {
            assert_eq!(parse_event_time(s), None, "{s}");
        }
    }

    // Goal: formatting inverts parsing across eras, including before 1970.
    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let ms = parse_event_time("1969-12-31T23:59:59Z").unwrap();
        assert_eq!(format_event_time(ms), "1969-12-31T23:59:59Z");
    }
}
