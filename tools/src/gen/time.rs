//! Time formatting: the ways CloudTrail records spell a time, written
//! from unix milliseconds with integer arithmetic only. Both profiles use
//! these (the diverse one `put_iso`).

use super::write::{put, put2, put_i64, put_u64};

/// (year, month, day) of a count of days since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    (i64::from(yoe) + era * 400 + i64::from(m <= 2), m, d)
}

/// Calendar fields of unix milliseconds: (y, mo, d, h, mi, s, ms).
fn fields(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = ms.div_euclid(1_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    (y, mo, d, sod / 3_600, sod / 60 % 60, sod % 60, ms.rem_euclid(1_000) as u32)
}

fn put_year(out: &mut Vec<u8>, y: i64) {
    if (0..10_000).contains(&y) {
        put2(out, (y / 100) as u32);
        put2(out, (y % 100) as u32);
    } else {
        put_i64(out, y);
    }
}

/// `2026-01-01T00:00:00Z`: eventTime, creationDate.
pub(super) fn put_iso(out: &mut Vec<u8>, ms: i64) {
    put_date_time(out, ms);
    out.push(b'Z');
}

/// `2026-01-01T00:00:00`, the part the ISO spellings share.
fn put_date_time(out: &mut Vec<u8>, ms: i64) {
    let (y, mo, d, h, mi, s, _) = fields(ms);
    put_year(out, y);
    out.push(b'-');
    put2(out, mo);
    out.push(b'-');
    put2(out, d);
    out.push(b'T');
    put2(out, h);
    out.push(b':');
    put2(out, mi);
    out.push(b':');
    put2(out, s);
}

/// `Jan 1, 2026, 1:00:00 AM`: how STS and IAM responses spell dates.
pub(super) fn put_human(out: &mut Vec<u8>, ms: i64) {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s, _) = fields(ms);
    put(out, MONTHS[(mo - 1) as usize]);
    out.push(b' ');
    put_u64(out, u64::from(d));
    put(out, ", ");
    put_i64(out, y);
    put(out, ", ");
    put_u64(out, u64::from(if h % 12 == 0 { 12 } else { h % 12 }));
    out.push(b':');
    put2(out, mi);
    out.push(b':');
    put2(out, s);
    put(out, if h < 12 { " AM" } else { " PM" });
}

/// `2026-01-01T00:00:00.000+0000`: Lambda's lastModified.
pub(super) fn put_lambda_time(out: &mut Vec<u8>, ms: i64) {
    let frac = fields(ms).6;
    put_date_time(out, ms);
    out.push(b'.');
    out.push(b'0' + (frac / 100) as u8);
    put2(out, frac % 100);
    put(out, "+0000");
}

/// `2026/01/01`: S3 key prefixes and log stream names.
pub(super) fn put_date_path(out: &mut Vec<u8>, ms: i64) {
    let (y, mo, d, ..) = fields(ms);
    put_year(out, y);
    out.push(b'/');
    put2(out, mo);
    out.push(b'/');
    put2(out, d);
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the civil-date conversion agrees with a naive day-by-day count
    // (leap years, centuries, before 1970) and formats like CloudTrail.
    #[test]
    fn civil_dates() {
        let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mut ymd = (1900i64, 1u32, 1u32);
        for days in -25_567..80_000i64 {
            assert_eq!(civil_from_days(days), ymd, "day {days}");
            let len = [31, if leap(ymd.0) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][ymd.1 as usize - 1];
            ymd = if ymd.2 < len {
                (ymd.0, ymd.1, ymd.2 + 1)
            } else if ymd.1 < 12 {
                (ymd.0, ymd.1 + 1, 1)
            } else {
                (ymd.0 + 1, 1, 1)
            };
        }
        let text = |f: fn(&mut Vec<u8>, i64), ms| {
            let mut v = Vec::new();
            f(&mut v, ms);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(text(put_iso, 1_709_251_199_999), "2024-02-29T23:59:59Z");
        assert_eq!(text(put_iso, -1), "1969-12-31T23:59:59Z");
        assert_eq!(text(put_human, 1_767_229_200_000), "Jan 1, 2026, 1:00:00 AM");
        assert_eq!(text(put_human, 1_767_268_800_000), "Jan 1, 2026, 12:00:00 PM");
        assert_eq!(text(put_lambda_time, 1_767_225_600_042), "2026-01-01T00:00:00.042+0000");
        assert_eq!(text(put_date_path, 1_767_225_600_000), "2026/01/01");
    }
}
