//! Age from a date of birth, on an Italian calendar date, and the per-service age limits of
//! SPID for minors (AgID Determinazione n. 51/2022).
//!
//! The broker's clock is unix seconds; a birthday is an Italian calendar date. A person born
//! on 10 March turns a year older at midnight in Rome, which is 23:00 or 22:00 UTC the day
//! before: so "today" is the civil date in Europe/Rome, with EU summer time (last Sunday of
//! March, 01:00 UTC, to last Sunday of October, 01:00 UTC; Directive 2000/84/EC).

use std::fmt;

/// A proleptic Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate {
    year: i32,
    month: u8,
    day: u8,
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (era-based day count: 400-year eras of 146 097
/// days, years starting in March so the leap day is the last day of the year).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // month is 1..=12 and day 1..=31 by construction.
    (year, month as u8, day as u8)
}

/// Unix seconds of the last Sunday of `month` in `year`, at 01:00 UTC.
fn last_sunday_0100_utc(year: i32, month: u8) -> i64 {
    let last = days_from_civil(year, month, days_in_month(year, month));
    // 1970-01-01 was a Thursday: weekday 0 = Sunday is (days + 4) mod 7.
    let weekday = (last + 4).rem_euclid(7);
    (last - weekday) * 86_400 + 3_600
}

impl CalendarDate {
    /// A date, if it exists in the calendar (29 February only in leap years).
    #[must_use]
    pub fn new(year: i32, month: u8, day: u8) -> Option<CalendarDate> {
        ((1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month))
        .then_some(CalendarDate { year, month, day })
    }

    /// Parses `YYYY-MM-DD` (the `birthdate` claim), refusing dates that do not exist.
    #[must_use]
    pub fn parse(s: &str) -> Option<CalendarDate> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = s.get(r)?;
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let year = i32::try_from(num(0..4)?).ok()?;
        let month = u8::try_from(num(5..7)?).ok()?;
        let day = u8::try_from(num(8..10)?).ok()?;
        CalendarDate::new(year, month, day)
    }

    /// The civil date in Italy (Europe/Rome) at `unix` seconds.
    #[must_use]
    pub fn italy_at(unix: u64) -> CalendarDate {
        let secs = i64::try_from(unix).unwrap_or(i64::MAX / 2);
        let (utc_year, _, _) = civil_from_days(secs.div_euclid(86_400));
        let year = i32::try_from(utc_year).unwrap_or(9999);
        let summer =
            (last_sunday_0100_utc(year, 3)..last_sunday_0100_utc(year, 10)).contains(&secs);
        let local = secs + if summer { 7_200 } else { 3_600 };
        let (y, month, day) = civil_from_days(local.div_euclid(86_400));
        CalendarDate {
            year: i32::try_from(y).unwrap_or(9999),
            month,
            day,
        }
    }

    /// Completed years of a person born on `self`, on the date `on`; `None` before birth.
    ///
    /// A year is completed when the same (month, day) comes round. Someone born on
    /// 29 February therefore completes a year on 1 March in common years, not on 28 February:
    /// the later of the two readings, which is the strict one for a minimum age, the limit
    /// that keeps minors out.
    #[must_use]
    pub fn age_on(self, on: CalendarDate) -> Option<u32> {
        if on < self {
            return None;
        }
        let years = u32::try_from(on.year - self.year).ok()?;
        Some(if (on.month, on.day) < (self.month, self.day) {
            years - 1
        } else {
            years
        })
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The age limits of a service (SPID for minors: AgID Determinazione n. 51/2022; the SP
/// declares them, and the same numbers go into its metadata's `spid:AgeLimit`).
///
/// Kept next to the route's [`crate::Policy`], not inside it, so routes built before age
/// limits existed keep their shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgeLimits {
    /// Lowest accepted age in completed years (e.g. 14, or 18 for adults only).
    pub min_age: Option<u32>,
    /// Highest accepted age in completed years (e.g. 17 for a service for minors).
    pub max_age: Option<u32>,
}

/// Why [`AgeLimits::check`] refused a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeRefusal {
    /// Younger than the service's minimum age.
    BelowMinimum {
        /// The service's minimum.
        min_age: u32,
    },
    /// Older than the service's maximum age.
    AboveMaximum {
        /// The service's maximum.
        max_age: u32,
    },
    /// The service has an age limit and the login carried no usable date of birth: no age,
    /// no entry.
    BirthdateUnknown,
}

impl AgeRefusal {
    /// Stable code for logs, metrics and the error page.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            AgeRefusal::BelowMinimum { .. } => "identity.age_below_minimum",
            AgeRefusal::AboveMaximum { .. } => "identity.age_above_maximum",
            AgeRefusal::BirthdateUnknown => "identity.age_unknown",
        }
    }
}

impl AgeLimits {
    /// Whether any limit is set.
    #[must_use]
    pub fn is_set(self) -> bool {
        self.min_age.is_some() || self.max_age.is_some()
    }

    /// Checks the person born on `birthdate` (`YYYY-MM-DD`, as in the `birthdate` claim) on
    /// the Italian civil date `today`. Without limits everyone passes, birthdate or not.
    pub fn check(self, birthdate: Option<&str>, today: CalendarDate) -> Result<(), AgeRefusal> {
        if !self.is_set() {
            return Ok(());
        }
        let age = birthdate
            .and_then(CalendarDate::parse)
            .and_then(|b| b.age_on(today))
            .ok_or(AgeRefusal::BirthdateUnknown)?;
        if let Some(min_age) = self.min_age {
            if age < min_age {
                return Err(AgeRefusal::BelowMinimum { min_age });
            }
        }
        if let Some(max_age) = self.max_age {
            if age > max_age {
                return Err(AgeRefusal::AboveMaximum { max_age });
            }
        }
        Ok(())
    }
}
