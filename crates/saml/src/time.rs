//! `xs:dateTime` in UTC, both ways, without a date library.
//!
//! Writing: `YYYY-MM-DDTHH:MM:SSZ` (whole seconds, as SPID's examples and spid-sp-test expect).
//! Reading: `YYYY-MM-DDTHH:MM:SS[.fraction]Z` only. The `Z` is required (SPID instants are UTC);
//! offsets, missing zones, leap seconds, years before 1970 and more than nine fraction digits
//! are refused rather than guessed at.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SSZ`, dropping sub-second precision. `None` for instants
/// before 1970 or after 9999, which no caller with a working clock produces.
pub fn format_instant(t: SystemTime) -> Option<String> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    if y > 9999 {
        return None;
    }
    // Digits written straight into the 20 bytes: `format!` with padded integers cost ~2,800
    // instructions per call, and the audit record of every login formats three instants
    // (issue 20).
    let mut out = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, rem / 3600);
    put(14, 2, (rem / 60) % 60);
    put(17, 2, rem % 60);
    String::from_utf8(out.to_vec()).ok()
}

/// `t` truncated to whole seconds: the instant [`format_instant`] writes.
pub(crate) fn truncate_to_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// True when `a` is later than `b + slack`: an instant that may not lie beyond another
/// (`IssueInstant` after now, `NotBefore` after now, ...) allowing the clock skew.
pub(crate) fn exceeds(a: SystemTime, b: SystemTime, slack: Duration) -> bool {
    a.duration_since(b).is_ok_and(|d| d > slack)
}

/// True when a `NotOnOrAfter` of `limit` no longer holds at `now`, allowing `skew`:
/// `now >= limit + skew`.
pub(crate) fn expired(limit: SystemTime, now: SystemTime, skew: Duration) -> bool {
    now.duration_since(limit).is_ok_and(|d| d >= skew)
}

/// Parses a strict UTC `xs:dateTime` (see the module documentation).
pub fn parse_instant(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let (main, rest) = (b.get(..19)?, b.get(19..)?);
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let digits = main.get(r)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits
            .iter()
            .try_fold(0u64, |acc, &c| Some(acc * 10 + u64::from(c - b'0')))
    };
    let sep = |i: usize, c: u8| main.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let nanos = match rest {
        [b'Z'] => 0,
        [b'.', frac @ .., b'Z'] if (1..=9).contains(&frac.len()) => {
            if !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let value = frac
                .iter()
                .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
            value * 10u32.pow(9 - frac.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn is_leap(y: u64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: u64, m: u64) -> u64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, year >= 1970 (H. Hinnant's algorithm,
/// restricted to non-negative values).
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_instant(at(0)).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_instant(at(1_741_944_413)).unwrap(),
            "2025-03-14T09:26:53Z"
        );
        assert_eq!(
            format_instant(at(951_782_400)).unwrap(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_instant(at(1_741_944_413) + Duration::from_millis(999)).unwrap(),
            "2025-03-14T09:26:53Z"
        );
        assert_eq!(format_instant(UNIX_EPOCH - Duration::from_secs(1)), None);
    }

    #[test]
    fn round_trips_every_day_for_sixty_years() {
        for day in 0..(60 * 366) {
            let t = at(day * 86_400 + 45_296);
            assert_eq!(parse_instant(&format_instant(t).unwrap()), Some(t));
        }
    }

    #[test]
    fn parses_fractional_seconds() {
        let t = parse_instant("2025-03-14T09:26:53.123456Z").unwrap();
        assert_eq!(t, at(1_741_944_413) + Duration::from_micros(123_456));
        assert!(parse_instant("2025-03-14T09:26:53.1Z").is_some());
        assert!(parse_instant("2025-03-14T09:26:53.123456789Z").is_some());
    }

    #[test]
    fn refuses_malformed_instants() {
        for bad in [
            "",
            "2018-09-04",
            "2025-03-14T09:26:53",
            "2025-03-14T09:26:53+00:00",
            "2025-03-14 09:26:53Z",
            "2025-13-14T09:26:53Z",
            "2025-02-29T09:26:53Z",
            "2025-03-14T24:00:00Z",
            "2025-03-14T09:60:00Z",
            "2025-03-14T09:26:60Z",
            "1969-12-31T23:59:59Z",
            "2025-03-14T09:26:53.Z",
            "2025-03-14T09:26:53.1234567890Z",
            "2025-03-14T09:26:53ZZ",
            "+025-03-14T09:26:53Z",
            "2025-03-14T09:26:5aZ",
            "２025-03-14T09:26:53Z",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad:?}");
        }
        assert!(parse_instant("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn skew_arithmetic_is_inclusive_where_saml_says_so() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let s = Duration::from_secs(10);
        assert!(!exceeds(t + s, t, s));
        assert!(exceeds(t + s + Duration::from_nanos(1), t, s));
        assert!(!exceeds(t - s, t, s));
        // NotOnOrAfter: valid strictly before limit + skew.
        assert!(!expired(t, t + s - Duration::from_nanos(1), s));
        assert!(expired(t, t + s, s));
        assert!(expired(t, t, Duration::ZERO));
        assert!(!expired(t, t - s, Duration::ZERO));
    }
}
