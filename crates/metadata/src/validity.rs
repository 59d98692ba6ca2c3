//! `validUntil` and `cacheDuration`: reading them and deciding whether a document may be used.
//!
//! Pure: the caller passes `now`.

use std::time::{Duration, SystemTime};

/// How long a document says it may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    /// `validUntil` of the root element: the document must not be used at or after it.
    pub valid_until: Option<SystemTime>,
    /// `cacheDuration` of the root element: how long the publisher suggests caching it.
    pub cache_duration: Option<Duration>,
}

impl Validity {
    /// True when the document may be used at `now`: no `validUntil`, or `now` before it.
    pub fn usable_at(&self, now: SystemTime) -> bool {
        self.valid_until.is_none_or(|v| now < v)
    }

    /// Time left until `validUntil` at `now` (zero once passed); `None` without `validUntil`.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        self.valid_until
            .map(|v| v.duration_since(now).unwrap_or(Duration::ZERO))
    }
}

/// Parses an `xs:duration` as metadata uses it for `cacheDuration` (`PT6H`, `P1D`, `PT1H30M`,
/// `PT0.5S`). A year counts 365 days and a month 30: `cacheDuration` is a hint, and those
/// approximations only matter for values far beyond any refresh bound. Negative durations, an
/// empty `P`/`T`, unknown designators, repeated or out-of-order fields, and values too large
/// for a [`Duration`] are refused.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let s = text.trim();
    let rest = s.strip_prefix('P')?;
    if rest.is_empty() {
        return None;
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    let mut total = Duration::ZERO;
    let mut fields = 0;
    // (designator, seconds per unit), in the order they must appear.
    const DATE: [(u8, u64); 3] = [(b'Y', 365 * 86_400), (b'M', 30 * 86_400), (b'D', 86_400)];
    const TIME: [(u8, u64); 3] = [(b'H', 3600), (b'M', 60), (b'S', 1)];
    for (part, units, fraction_ok) in [
        (date, &DATE[..], false),
        (time.unwrap_or(""), &TIME[..], true),
    ] {
        let mut next_unit = 0;
        let mut number_start = 0;
        let bytes = part.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b.is_ascii_digit() || (fraction_ok && b == b'.') {
                continue;
            }
            let position = units.iter().position(|(d, _)| *d == b)?;
            if position < next_unit {
                return None;
            }
            next_unit = position + 1;
            let number = part.get(number_start..i)?;
            number_start = i + 1;
            let (_, unit) = units.get(position)?;
            total = total.checked_add(amount(number, *unit, b == b'S')?)?;
            fields += 1;
        }
        if number_start != bytes.len() {
            return None;
        }
    }
    (fields > 0).then_some(total)
}

/// `number` units of `unit` seconds; a fraction only where `fraction` (seconds).
fn amount(number: &str, unit: u64, fraction: bool) -> Option<Duration> {
    let (whole, frac) = match number.split_once('.') {
        Some((w, f)) if fraction && !f.is_empty() && !f.contains('.') => (w, f),
        Some(_) => return None,
        None => (number, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = 0u32;
    for (i, c) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    Duration::from_secs(whole.checked_mul(unit)?).checked_add(Duration::new(0, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(parse_duration("PT6H"), Some(h(6)));
        assert_eq!(parse_duration("P1D"), Some(h(24)));
        assert_eq!(parse_duration("P1DT12H"), Some(h(36)));
        assert_eq!(parse_duration("PT1H30M"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" PT90S "), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("PT0.5S"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("P1Y"), Some(h(365 * 24)));
        assert_eq!(parse_duration("P1M"), Some(h(30 * 24)));
        assert_eq!(parse_duration("PT1M"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("P0D"), Some(Duration::ZERO));
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in [
            "",
            "P",
            "PT",
            "-PT1H",
            "PT1H1H",
            "PT1M1H",
            "P1H",
            "PT1D",
            "PT1.5H",
            "P1.5D",
            "1H",
            "PTH",
            "PT1",
            "P1DT",
            "PT.S",
            "PT1..5S",
            "PT1.S",
            "P99999999999999999999Y",
            "P18446744073709551615Y",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn validity_against_now() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let v = Validity {
            valid_until: Some(t),
            cache_duration: None,
        };
        assert!(v.usable_at(t - Duration::from_secs(1)));
        assert!(!v.usable_at(t));
        assert_eq!(
            v.remaining(t - Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            v.remaining(t + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        assert!(Validity::default().usable_at(t));
        assert_eq!(Validity::default().remaining(t), None);
    }
}
