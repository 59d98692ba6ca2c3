//! RFC 3339 `tdate` (CBOR tag 0) in UTC, as the MSO's `validityInfo` uses it.

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` to seconds since the epoch (the fraction is dropped:
/// validity is checked to the second). Offsets other than `Z` are refused.
pub(crate) fn parse(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 40 || *b.last()? != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let d = b.get(r)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(d.iter().fold(0u64, |a, c| a * 10 + u64::from(c - b'0')))
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    match &b[19..b.len() - 1] {
        [] => {}
        [b'.', rest @ ..] if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), era-based.
    let (y, m) = if mo <= 2 { (y - 1, mo + 12) } else { (y, mo) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m - 3) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_instants() {
        assert_eq!(super::parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(super::parse("2030-01-01T23:59:59Z"), Some(1_893_542_399));
        assert_eq!(
            super::parse("2024-02-29T12:00:00.250Z"),
            Some(1_709_208_000)
        );
        for bad in [
            "2024-02-29T12:00:00+01:00",
            "2024-13-01T00:00:00Z",
            "24-01-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00.Z",
        ] {
            assert_eq!(super::parse(bad), None, "{bad}");
        }
    }
}
