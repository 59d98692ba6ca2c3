//! Age from `dateOfBirth` on the Italian civil date, and per-service age limits (SPID for
//! minors, AgID Determinazione 51/2022): birthdays, leap days, midnight in Rome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use identity::{AgeLimits, AgeRefusal, CalendarDate};

fn d(s: &str) -> CalendarDate {
    CalendarDate::parse(s).unwrap()
}

fn unix(rfc3339_utc: &str) -> u64 {
    // YYYY-MM-DDTHH:MM:SSZ, computed from the calendar itself plus the time of day.
    let date = &rfc3339_utc[..10];
    let (h, m, s): (u64, u64, u64) = (
        rfc3339_utc[11..13].parse().unwrap(),
        rfc3339_utc[14..16].parse().unwrap(),
        rfc3339_utc[17..19].parse().unwrap(),
    );
    // Days since the epoch by counting: independent of the crate's closed-form day count.
    let mut days = 0u64;
    let mut y = 1970;
    let target = d(date);
    while d(&format!("{:04}-01-01", y + 1)) <= target {
        days += if CalendarDate::new(y, 2, 29).is_some() {
            366
        } else {
            365
        };
        y += 1;
    }
    let mut cur = d(&format!("{y:04}-01-01"));
    while cur < target {
        days += 1;
        cur = next(cur);
    }
    days * 86_400 + h * 3600 + m * 60 + s
}

fn next(c: CalendarDate) -> CalendarDate {
    let s = c.to_string();
    let (y, m, dd): (i32, u8, u8) = (
        s[..4].parse().unwrap(),
        s[5..7].parse().unwrap(),
        s[8..10].parse().unwrap(),
    );
    CalendarDate::new(y, m, dd + 1)
        .or_else(|| CalendarDate::new(y, m + 1, 1))
        .or_else(|| CalendarDate::new(y + 1, 1, 1))
        .unwrap()
}

#[test]
fn dates_that_do_not_exist_are_refused() {
    assert!(CalendarDate::parse("2024-02-29").is_some());
    assert!(CalendarDate::parse("2000-02-29").is_some());
    for bad in [
        "2023-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-13-01",
        "2024-00-10",
        "2024-01-00",
        "2024-1-01",
        "2024/01/01",
        "+024-01-01",
        "0000-01-01",
        "",
    ] {
        assert!(CalendarDate::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn birthday_edge_day_before_and_day_of() {
    let born = d("2008-06-15");
    assert_eq!(born.age_on(d("2026-06-14")), Some(17));
    assert_eq!(born.age_on(d("2026-06-15")), Some(18));
    assert_eq!(born.age_on(d("2008-06-15")), Some(0));
    assert_eq!(born.age_on(d("2008-06-14")), None);
    // Month before, day after: the month decides.
    assert_eq!(born.age_on(d("2026-05-31")), Some(17));
    assert_eq!(born.age_on(d("2026-07-01")), Some(18));
}

#[test]
fn leap_day_birth_completes_the_year_on_march_first() {
    let born = d("2012-02-29");
    assert_eq!(born.age_on(d("2026-02-28")), Some(13));
    assert_eq!(born.age_on(d("2026-03-01")), Some(14));
    // In a leap year the day itself exists.
    assert_eq!(born.age_on(d("2028-02-28")), Some(15));
    assert_eq!(born.age_on(d("2028-02-29")), Some(16));
}

#[test]
fn italian_date_turns_at_midnight_in_rome_not_utc() {
    // Winter (CET, UTC+1): 23:00Z is already the next day in Rome.
    assert_eq!(
        CalendarDate::italy_at(unix("2026-01-09T22:59:59Z")),
        d("2026-01-09")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-01-09T23:00:00Z")),
        d("2026-01-10")
    );
    // Summer (CEST, UTC+2): 22:00Z.
    assert_eq!(
        CalendarDate::italy_at(unix("2026-07-09T21:59:59Z")),
        d("2026-07-09")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-07-09T22:00:00Z")),
        d("2026-07-10")
    );
    // New year in Rome, still the old year in UTC.
    assert_eq!(
        CalendarDate::italy_at(unix("2026-12-31T23:30:00Z")),
        d("2027-01-01")
    );
    // Leap day.
    assert_eq!(
        CalendarDate::italy_at(unix("2028-02-28T23:00:00Z")),
        d("2028-02-29")
    );
}

#[test]
fn italian_date_follows_summer_time_switches() {
    // 2026: summer time from Sunday 29 March 01:00Z to Sunday 25 October 01:00Z.
    assert_eq!(
        CalendarDate::italy_at(unix("2026-03-28T22:30:00Z")),
        d("2026-03-28")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-03-28T23:00:00Z")),
        d("2026-03-29")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-03-29T22:00:00Z")),
        d("2026-03-30")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-03-29T21:59:59Z")),
        d("2026-03-29")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-10-24T22:00:00Z")),
        d("2026-10-25")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-10-25T22:59:59Z")),
        d("2026-10-25")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2026-10-25T23:00:00Z")),
        d("2026-10-26")
    );
}

#[test]
fn minor_below_the_services_age_refused() {
    let adults = AgeLimits {
        min_age: Some(18),
        max_age: None,
    };
    let today = d("2026-06-14");
    assert_eq!(
        adults.check(Some("2008-06-15"), today),
        Err(AgeRefusal::BelowMinimum { min_age: 18 })
    );
    assert_eq!(adults.check(Some("2008-06-14"), today), Ok(()));
    assert_eq!(
        adults.check(Some("2008-06-15"), today).unwrap_err().code(),
        "identity.age_below_minimum"
    );
}

#[test]
fn minor_on_the_birthday_is_admitted_from_midnight_in_rome() {
    let fourteen = AgeLimits {
        min_age: Some(14),
        max_age: None,
    };
    let born = Some("2012-07-10");
    let before = CalendarDate::italy_at(unix("2026-07-09T21:59:59Z"));
    let after = CalendarDate::italy_at(unix("2026-07-09T22:00:00Z"));
    assert_eq!(
        fourteen.check(born, before),
        Err(AgeRefusal::BelowMinimum { min_age: 14 })
    );
    assert_eq!(fourteen.check(born, after), Ok(()));
}

#[test]
fn service_for_minors_refuses_adults() {
    let minors = AgeLimits {
        min_age: Some(14),
        max_age: Some(17),
    };
    let today = d("2026-06-15");
    assert_eq!(minors.check(Some("2009-06-16"), today), Ok(()));
    assert_eq!(
        minors.check(Some("2008-06-15"), today),
        Err(AgeRefusal::AboveMaximum { max_age: 17 })
    );
}

#[test]
fn age_limit_without_a_birthdate_fails_closed() {
    let limits = AgeLimits {
        min_age: Some(14),
        max_age: None,
    };
    let today = d("2026-06-15");
    assert_eq!(limits.check(None, today), Err(AgeRefusal::BirthdateUnknown));
    assert_eq!(
        limits.check(Some("2008-02-30"), today),
        Err(AgeRefusal::BirthdateUnknown)
    );
    // Born after today: no age either.
    assert_eq!(
        limits.check(Some("2027-01-01"), today),
        Err(AgeRefusal::BirthdateUnknown)
    );
    // No limits: nobody is asked for a birthdate.
    assert_eq!(AgeLimits::default().check(None, today), Ok(()));
}

#[test]
fn age_limits_config_is_strict() {
    let l: AgeLimits = serde_json::from_str(r#"{"min_age":14}"#).unwrap();
    assert_eq!(l.min_age, Some(14));
    assert!(serde_json::from_str::<AgeLimits>(r#"{"min_eta":14}"#).is_err());
    assert!(serde_json::from_str::<AgeLimits>(r#"{"min_age":-1}"#).is_err());
}

#[test]
fn epoch_and_far_dates_are_consistent() {
    assert_eq!(CalendarDate::italy_at(0), d("1970-01-01"));
    assert_eq!(
        CalendarDate::italy_at(unix("2000-02-29T12:00:00Z")),
        d("2000-02-29")
    );
    assert_eq!(
        CalendarDate::italy_at(unix("2100-03-01T12:00:00Z")),
        d("2100-03-01")
    );
    // A clock beyond any sensible date gives a date, not a panic.
    let _ = CalendarDate::italy_at(u64::MAX);
}
