//! The switch-off policy for legacy credentials (issue 7): per profile, the day from which a
//! legacy login is refused; a notice shown to legacy users in the days before it; and the
//! exception categories (minors, people under guardianship, residents abroad without an
//! Italian document, …) that keep legacy access after it, to listed services only and
//! optionally until a date of their own.
//!
//! Pure: dates are configuration, `now` is an argument (the broker's injected clock), so the
//! tests walk the calendar across each cut-off. Dates are Italian calendar days: a cut-off
//! `2021-10-01` takes effect at 00:00 Europe/Rome that day (CET/CEST per the EU summer-time
//! rule, computed here without a time-zone database).
//!
//! `[switchoff]` keys and defaults: docs/OPERATIONS.md; the worked example: docs/SWITCH-OFF.md.
//!
//! May import: the leaf and `features::access`.

pub mod report;

use std::collections::BTreeMap;

use identity::Profile;
use serde::Deserialize;

use crate::leaf::problem::valid_name;

/// Every profile, in a fixed order (index of the per-profile tables).
pub const PROFILES: [Profile; 4] = [
    Profile::Citizen,
    Profile::Professional,
    Profile::Business,
    Profile::Intermediary,
];

fn profile_index(p: Profile) -> usize {
    match p {
        Profile::Citizen => 0,
        Profile::Professional => 1,
        Profile::Business => 2,
        Profile::Intermediary => 3,
    }
}

// === Raw form ===

/// `[switchoff]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSwitchOff {
    notice_days: Option<u64>,
    #[serde(default)]
    profile: BTreeMap<String, RawProfileCutoff>,
    #[serde(default)]
    exception: Vec<RawException>,
}

/// `[switchoff.profile.<profile>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfileCutoff {
    legacy_until: String,
}

/// `[[switchoff.exception]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawException {
    category: String,
    #[serde(default)]
    services: Vec<String>,
    until: Option<String>,
    /// The representation type that replaces this exception (issue 24), e.g. `parental`
    /// for minors, `guardianship` for people under guardianship.
    replaced_by: Option<String>,
}

/// Default of `switchoff.notice_days`.
pub const DEFAULT_NOTICE_DAYS: u64 = 60;

// === Validated form ===

/// A calendar day and the instant it starts in Italy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// 00:00 Europe/Rome of that day, Unix seconds.
    pub starts_at: i64,
}

impl Day {
    /// Parses `YYYY-MM-DD` (a real calendar day, year 1970-9999).
    pub fn parse(s: &str) -> Option<Day> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let month = u32::try_from(month).ok()?;
        let day = u32::try_from(day).ok()?;
        if year < 1970 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month)
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let offset = if rome_summer_time(year, days) {
            7200
        } else {
            3600
        };
        Some(Day {
            year,
            month,
            day,
            starts_at: days * 86_400 - offset,
        })
    }

    /// `YYYY-MM-DD`.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// "1 ottobre 2021".
    pub fn italian(&self) -> String {
        const MESI: [&str; 12] = [
            "gennaio",
            "febbraio",
            "marzo",
            "aprile",
            "maggio",
            "giugno",
            "luglio",
            "agosto",
            "settembre",
            "ottobre",
            "novembre",
            "dicembre",
        ];
        let m = MESI.get(self.month as usize - 1).copied().unwrap_or("");
        format!("{} {m} {}", self.day, self.year)
    }

    /// "1 October 2021".
    pub fn english(&self) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let m = MONTHS.get(self.month as usize - 1).copied().unwrap_or("");
        format!("{} {m} {}", self.day, self.year)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day count of the last Sunday of `month` in `year`.
fn last_sunday(year: i64, month: u32) -> i64 {
    let last = days_from_civil(year, month, days_in_month(year, month));
    // 1970-01-01 was a Thursday: weekday 0 = Monday.
    let weekday = (last + 3).rem_euclid(7);
    last - (weekday + 1) % 7
}

/// Whether 00:00 local time of day `days` falls in Italian summer time (CEST, UTC+2): EU
/// rule (Directive 2000/84/EC), from the last Sunday of March 01:00 UTC to the last Sunday of
/// October 01:00 UTC. Local midnight of the March change day is still CET; of the October
/// change day still CEST.
fn rome_summer_time(year: i64, days: i64) -> bool {
    days > last_sunday(year, 3) && days <= last_sunday(year, 10)
}

/// One exception category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    /// The category name, as in the credential file.
    pub category: String,
    /// Route services (`[[route]] service`) a legacy session of this category may open.
    pub services: Vec<String>,
    /// From this day the category loses legacy access too; `None`: no date set yet.
    pub until: Option<Day>,
    /// The representation type that replaces the exception, if one does: the legacy login
    /// page points the person to it, and the report counts both.
    pub replaced_by: Option<identity::represent::Kind>,
}

/// The validated `[switchoff]` policy. Empty (the default) means no cut-off: legacy logins
/// go on, with no notice.
#[derive(Debug, Clone, Default)]
pub struct SwitchOff {
    /// Days before a cut-off during which the notice page is shown.
    pub notice_days: u64,
    cutoffs: [Option<Day>; 4],
    /// Exception categories, in configuration order.
    pub exceptions: Vec<Exception>,
}

/// What the policy says of one legacy login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed, nothing to tell (no cut-off, or not within the notice window).
    Allowed,
    /// Allowed; show the notice: from `from`, SPID, CIE or CNS will be needed.
    Notice {
        /// The cut-off day.
        from: Day,
    },
    /// The profile's cut-off has passed but the person's exception category keeps legacy
    /// access, to its listed services only.
    Restricted {
        /// The category.
        category: String,
        /// The services it keeps.
        services: Vec<String>,
        /// When the exception itself ends, if within the notice window.
        notice: Option<Day>,
    },
    /// Refused: legacy credentials are no longer accepted for this person since `since`.
    Refused {
        /// The cut-off day that applies.
        since: Day,
    },
}

impl Verdict {
    /// A stable label for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Notice { .. } => "notice",
            Verdict::Restricted { .. } => "restricted",
            Verdict::Refused { .. } => "refused",
        }
    }
}

impl SwitchOff {
    /// The cut-off of `profile`, if one is configured.
    pub fn cutoff(&self, profile: Profile) -> Option<Day> {
        self.cutoffs[profile_index(profile)]
    }

    /// The exception named `category`.
    pub fn exception(&self, category: &str) -> Option<&Exception> {
        self.exceptions.iter().find(|e| e.category == category)
    }

    /// Whether `category` is a configured exception category.
    pub fn knows_category(&self, category: &str) -> bool {
        self.exception(category).is_some()
    }

    fn within_notice(&self, day: Day, now: i64) -> bool {
        let window = i64::try_from(self.notice_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
        now < day.starts_at && day.starts_at.saturating_sub(now) <= window
    }

    /// The verdict for a legacy login of a person of `profile` and exception `category` at
    /// `now` (Unix seconds).
    pub fn login(&self, profile: Profile, category: Option<&str>, now: i64) -> Verdict {
        let Some(cutoff) = self.cutoff(profile) else {
            return Verdict::Allowed;
        };
        if now < cutoff.starts_at {
            return if self.within_notice(cutoff, now) {
                Verdict::Notice { from: cutoff }
            } else {
                Verdict::Allowed
            };
        }
        let Some(exception) = category.and_then(|c| self.exception(c)) else {
            return Verdict::Refused { since: cutoff };
        };
        match exception.until {
            Some(until) if now >= until.starts_at => Verdict::Refused {
                since: if until.starts_at > cutoff.starts_at {
                    until
                } else {
                    cutoff
                },
            },
            until => Verdict::Restricted {
                category: exception.category.clone(),
                services: exception.services.clone(),
                notice: until.filter(|u| self.within_notice(*u, now)),
            },
        }
    }

    /// Whether a legacy session of `profile`/`category` may open a route of `service` at
    /// `now`: checked on every request, so a session opened the day before a cut-off ends
    /// with it, and an exception's session reaches only its listed services.
    pub fn session_allows(
        &self,
        profile: Profile,
        category: Option<&str>,
        service: Option<&str>,
        now: i64,
    ) -> bool {
        match self.login(profile, category, now) {
            Verdict::Allowed | Verdict::Notice { .. } => true,
            Verdict::Restricted { services, .. } => {
                service.is_some_and(|s| services.iter().any(|x| x == s))
            }
            Verdict::Refused { .. } => false,
        }
    }
}

/// Whether `session` may open `route` at `now` (Unix seconds) under the switch-off policy:
/// always for non-legacy sessions; for legacy ones, see [`SwitchOff::session_allows`].
pub fn session_may_open(
    policy: &SwitchOff,
    session: &crate::leaf::session::Session,
    route: &crate::features::access::Route,
    now: u64,
) -> bool {
    session.principal.auth.method != identity::Method::Legacy
        || policy.session_allows(
            session.principal.profile,
            session.legacy_category.as_deref(),
            route.service.as_deref(),
            i64::try_from(now).unwrap_or(i64::MAX),
        )
}

/// The stable code of a legacy session refused by [`session_may_open`].
pub const NOT_ALLOWED: &str = "switchoff_legacy_not_allowed";

/// Validates `[switchoff]`; `services` are the `service` names the routes declare.
pub(crate) fn validate(
    raw: RawSwitchOff,
    services: &[String],
    bad: &mut dyn FnMut(&str, String),
) -> SwitchOff {
    let notice_days = raw.notice_days.unwrap_or(DEFAULT_NOTICE_DAYS);
    if notice_days > 3660 {
        bad(
            "switchoff.notice_days",
            "must be at most 3660 (ten years)".into(),
        );
    }
    let mut cutoffs = [None; 4];
    for (name, p) in &raw.profile {
        let key = format!("switchoff.profile.{name}");
        let Some(profile) = Profile::parse(name) else {
            bad(
                &key,
                format!("{name:?}: expected citizen, professional, business or intermediary"),
            );
            continue;
        };
        match Day::parse(&p.legacy_until) {
            Some(d) => cutoffs[profile_index(profile)] = Some(d),
            None => bad(
                &format!("{key}.legacy_until"),
                format!("{:?}: expected a date YYYY-MM-DD", p.legacy_until),
            ),
        }
    }
    let mut exceptions: Vec<Exception> = Vec::new();
    for (i, e) in raw.exception.into_iter().enumerate() {
        let key = format!("switchoff.exception[{i}]");
        if !valid_name(&e.category) {
            bad(
                &format!("{key}.category"),
                format!("{:?}: 1-64 of a-z, 0-9, _ and -", e.category),
            );
        }
        if exceptions.iter().any(|x| x.category == e.category) {
            bad(
                &format!("{key}.category"),
                format!("{:?} listed twice", e.category),
            );
        }
        if e.services.is_empty() {
            bad(
                &format!("{key}.services"),
                "list at least one route service the category keeps".into(),
            );
        }
        for s in &e.services {
            if !services.contains(s) {
                bad(
                    &format!("{key}.services"),
                    format!("{s:?}: no [[route]] has service = {s:?}"),
                );
            }
        }
        let until = match e.until.as_deref().map(|u| (u, Day::parse(u))) {
            None => None,
            Some((_, Some(d))) => Some(d),
            Some((u, None)) => {
                bad(
                    &format!("{key}.until"),
                    format!("{u:?}: expected a date YYYY-MM-DD"),
                );
                None
            }
        };
        let replaced_by = match e.replaced_by.as_deref() {
            None => None,
            Some(k) => {
                let kind = identity::represent::Kind::parse(k);
                if kind.is_none() {
                    bad(
                        &format!("{key}.replaced_by"),
                        format!(
                            "{k:?}: expected delegation, parental, guardianship, \
                             support_administration, legal_representative or intermediary"
                        ),
                    );
                }
                kind
            }
        };
        exceptions.push(Exception {
            category: e.category,
            services: e.services,
            until,
            replaced_by,
        });
    }
    SwitchOff {
        notice_days,
        cutoffs,
        exceptions,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        i64::try_from(crate::leaf::clock::unix(saml::parse_instant(s).unwrap())).unwrap()
    }

    /// The INPS timeline as configuration: citizens and professionals refused from
    /// 2021-10-01, businesses and intermediaries kept until 2024-09-01, minors, people under
    /// guardianship and residents abroad without an Italian document kept on their services.
    pub(crate) fn inps() -> SwitchOff {
        let raw: RawSwitchOff = toml::from_str(
            r#"
            notice_days = 30
            [profile.citizen]
            legacy_until = "2021-10-01"
            [profile.professional]
            legacy_until = "2021-10-01"
            [profile.business]
            legacy_until = "2024-09-01"
            [profile.intermediary]
            legacy_until = "2024-09-01"
            [[exception]]
            category = "minor"
            services = ["minori"]
            [[exception]]
            category = "guardianship"
            services = ["tutela"]
            [[exception]]
            category = "resident_abroad_without_italian_document"
            services = ["estero"]
            until = "2026-12-31"
            "#,
        )
        .unwrap();
        let services = ["minori", "tutela", "estero"].map(String::from);
        let mut problems = Vec::new();
        let s = validate(raw, &services, &mut |k, m| {
            problems.push(format!("{k}: {m}"))
        });
        assert!(problems.is_empty(), "{problems:?}");
        s
    }

    #[test]
    fn days_start_at_italian_midnight_across_summer_time() {
        // Summer time (CEST, UTC+2).
        assert_eq!(
            Day::parse("2021-10-01").unwrap().starts_at,
            at("2021-09-30T22:00:00Z")
        );
        // Winter (CET, UTC+1).
        assert_eq!(
            Day::parse("2020-12-31").unwrap().starts_at,
            at("2020-12-30T23:00:00Z")
        );
        // The change days: midnight of the last Sunday of March 2021 (28th) is still CET,
        // of the last Sunday of October 2021 (31st) still CEST.
        assert_eq!(
            Day::parse("2021-03-28").unwrap().starts_at,
            at("2021-03-27T23:00:00Z")
        );
        assert_eq!(
            Day::parse("2021-03-29").unwrap().starts_at,
            at("2021-03-28T22:00:00Z")
        );
        assert_eq!(
            Day::parse("2021-10-31").unwrap().starts_at,
            at("2021-10-30T22:00:00Z")
        );
        assert_eq!(
            Day::parse("2021-11-01").unwrap().starts_at,
            at("2021-10-31T23:00:00Z")
        );
        assert_eq!(
            Day::parse("2024-09-01").unwrap().starts_at,
            at("2024-08-31T22:00:00Z")
        );
        for bad in [
            "2021-02-29",
            "2024-13-01",
            "2021-1-01",
            "21-10-01x",
            "1969-12-31",
            "2021-10-00",
            "２０２１-10-01",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
        assert!(Day::parse("2024-02-29").is_some());
        let d = Day::parse("2021-10-01").unwrap();
        assert_eq!(
            (d.iso(), d.italian(), d.english()),
            (
                "2021-10-01".to_owned(),
                "1 ottobre 2021".to_owned(),
                "1 October 2021".to_owned()
            )
        );
        for n in [-1, 0, 59, 365, 18_900, 19_967, 2_932_896] {
            let (y, m, d) = civil_from_days(n);
            assert_eq!(days_from_civil(y, m, d), n);
        }
    }

    #[test]
    fn calendar_walk_across_the_inps_cutoffs() {
        let s = inps();
        let citizen = |t: &str| s.login(Profile::Citizen, None, at(t));
        let business = |t: &str| s.login(Profile::Business, None, at(t));
        let cutoff_2021 = Day::parse("2021-10-01").unwrap();
        let cutoff_2024 = Day::parse("2024-09-01").unwrap();
        // 2020-10-01: no new PINs are issued (outside Varco); existing ones still work.
        assert_eq!(citizen("2020-10-01T08:00:00Z"), Verdict::Allowed);
        // Thirty days before the citizens' cut-off, the notice starts.
        assert_eq!(citizen("2021-08-31T21:59:59Z"), Verdict::Allowed);
        assert_eq!(
            citizen("2021-09-01T00:00:00Z"),
            Verdict::Notice { from: cutoff_2021 }
        );
        // The last second of 30 September, Italian time, and the first of 1 October.
        assert_eq!(
            citizen("2021-09-30T21:59:59Z"),
            Verdict::Notice { from: cutoff_2021 }
        );
        assert_eq!(
            citizen("2021-09-30T22:00:00Z"),
            Verdict::Refused { since: cutoff_2021 }
        );
        assert_eq!(
            s.login(Profile::Professional, None, at("2022-01-10T10:00:00Z")),
            Verdict::Refused { since: cutoff_2021 }
        );
        // Businesses and intermediaries keep their PIN for three more years.
        assert_eq!(business("2021-10-01T10:00:00Z"), Verdict::Allowed);
        assert_eq!(
            business("2024-08-31T21:59:59Z"),
            Verdict::Notice { from: cutoff_2024 }
        );
        assert_eq!(
            s.login(Profile::Intermediary, None, at("2024-08-31T22:00:00Z")),
            Verdict::Refused { since: cutoff_2024 }
        );
        assert_eq!(
            business("2025-01-01T00:00:00Z"),
            Verdict::Refused { since: cutoff_2024 }
        );
    }

    #[test]
    fn exceptions_keep_their_services_only_and_until_their_date() {
        let s = inps();
        let after = at("2022-03-01T09:00:00Z");
        let before = at("2021-06-01T09:00:00Z");
        assert_eq!(
            s.login(Profile::Citizen, Some("minor"), after),
            Verdict::Restricted {
                category: "minor".into(),
                services: vec!["minori".into()],
                notice: None
            }
        );
        // Before the cut-off an exception user is an ordinary legacy user.
        assert_eq!(
            s.login(Profile::Citizen, Some("minor"), before),
            Verdict::Allowed
        );
        assert!(s.session_allows(Profile::Citizen, Some("minor"), Some("other"), before));
        assert!(s.session_allows(Profile::Citizen, Some("minor"), None, before));
        // After it, only the listed services.
        assert!(s.session_allows(Profile::Citizen, Some("minor"), Some("minori"), after));
        assert!(!s.session_allows(Profile::Citizen, Some("minor"), Some("tutela"), after));
        assert!(!s.session_allows(Profile::Citizen, Some("minor"), None, after));
        assert!(!s.session_allows(Profile::Citizen, None, Some("minori"), after));
        // An unknown category is no exception.
        assert_eq!(
            s.login(Profile::Citizen, Some("nobody"), after),
            Verdict::Refused {
                since: Day::parse("2021-10-01").unwrap()
            }
        );
        // An exception with an end date: notice in its window, refusal after it.
        let abroad = Some("resident_abroad_without_italian_document");
        let end = Day::parse("2026-12-31").unwrap();
        assert!(matches!(
            s.login(Profile::Citizen, abroad, at("2026-06-01T00:00:00Z")),
            Verdict::Restricted { notice: None, .. }
        ));
        assert!(matches!(
            s.login(Profile::Citizen, abroad, at("2026-12-15T00:00:00Z")),
            Verdict::Restricted { notice: Some(d), .. } if d == end
        ));
        assert_eq!(
            s.login(Profile::Citizen, abroad, at("2026-12-30T23:00:00Z")),
            Verdict::Refused { since: end }
        );
        assert!(!s.session_allows(
            Profile::Citizen,
            abroad,
            Some("estero"),
            at("2027-01-02T00:00:00Z")
        ));
        // A session opened before the cut-off ends with it.
        assert!(s.session_allows(Profile::Citizen, None, None, at("2021-09-30T21:00:00Z")));
        assert!(!s.session_allows(Profile::Citizen, None, None, at("2021-09-30T22:00:01Z")));
    }

    #[test]
    fn no_policy_means_no_cutoff() {
        let s = SwitchOff::default();
        for p in PROFILES {
            assert_eq!(
                s.login(p, None, at("2030-01-01T00:00:00Z")),
                Verdict::Allowed
            );
        }
    }

    #[test]
    fn bad_switchoff_tables_are_refused_with_their_keys() {
        let raw: RawSwitchOff = toml::from_str(
            r#"
            notice_days = 99999
            [profile.citizens]
            legacy_until = "2021-10-01"
            [profile.business]
            legacy_until = "2024-09-31"
            [[exception]]
            category = "Minor"
            services = []
            [[exception]]
            category = "abroad"
            services = ["nowhere"]
            until = "soon"
            "#,
        )
        .unwrap();
        let mut keys = Vec::new();
        validate(raw, &[], &mut |k, _| keys.push(k.to_owned()));
        assert_eq!(
            keys,
            [
                "switchoff.notice_days",
                "switchoff.profile.business.legacy_until",
                "switchoff.profile.citizens",
                "switchoff.exception[0].category",
                "switchoff.exception[0].services",
                "switchoff.exception[1].services",
                "switchoff.exception[1].until",
            ]
        );
    }
}
