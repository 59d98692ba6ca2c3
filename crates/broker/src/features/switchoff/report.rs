//! `varco switchoff report --audit DIR [--from DATE] [--to DATE] [--list] [--key-file FILE]`:
//! the adoption figures of a switch-off, read from the file audit log.
//!
//! The chain is verified first (as `varco audit verify` does): figures come only from a whole
//! chain. Then, over the completed logins between `--from` and `--to`:
//! - per ISO week (UTC) and profile: logins, legacy logins and the legacy share;
//! - the people still on legacy: those whose last login in the period used legacy
//!   credentials (count, and with `--list` one line each: subject, profile, category, day of
//!   that login).
//!
//! - per exception category: legacy logins and people (issue 24), beside the acting choices
//!   made at `/represent` per representation type and their distinct delegates, so the
//!   move from an exception to the representation that replaces it shows in one report.
//!
//! Records written before issue 7 carry no `profile`: they count as `unknown`.
//!
//! Exit status: 0 report printed; 1 the chain is broken; 64 usage.
//!
//! May import: the leaf, `features::switchoff` and `features::audit`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::features::audit::chain::{self, RecordKey};
use crate::features::audit::file;
use crate::leaf::output;

const EX_USAGE: u8 = 64;

/// The parsed arguments of `varco switchoff report` (read by `crate::cli`).
pub struct Args {
    /// `--audit DIR`.
    pub dir: PathBuf,
    /// `--from`, Unix seconds.
    pub from: u64,
    /// `--to`, Unix seconds (exclusive).
    pub to: u64,
    /// `--list`.
    pub list: bool,
    /// `--key-file`.
    pub key_file: Option<PathBuf>,
}

/// A command-line day `YYYY-MM-DD` (UTC) as Unix seconds: its midnight, or with `end` the
/// midnight after (so `--to` includes that whole day).
pub fn day(s: &str, end: bool) -> Option<u64> {
    if s.len() != 10 {
        return None;
    }
    let t = saml::parse_instant(&format!("{s}T00:00:00Z"))?;
    let t = if end {
        t + Duration::from_secs(86_400)
    } else {
        t
    };
    Some(crate::leaf::clock::unix(t))
}

/// `YYYY-Www` of a Unix time (ISO 8601 week, UTC).
pub fn iso_week(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let weekday = (days + 3).rem_euclid(7); // Monday = 0
    let thursday = days - weekday + 3;
    let (year, _, _) = super::civil_from_days(thursday);
    let week = (thursday - super::days_from_civil(year, 1, 1)) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

fn iso_day(unix: u64) -> String {
    let (y, m, d) = super::civil_from_days(i64::try_from(unix / 86_400).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// One completed login as the report needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Unix seconds.
    pub at: u64,
    /// `spid`, `cie`, `eidas`, `cns`, `legacy`.
    pub method: String,
    /// Profile, or `unknown` for records without one.
    pub profile: String,
    /// Exception category (legacy), if any.
    pub category: Option<String>,
    /// Subject.
    pub sub: String,
}

impl Login {
    /// The login of one record's JSON, if it is a completed login.
    pub fn from_record(record: &serde_json::Value, ts: u64) -> Option<Login> {
        let text = |k: &str| record.get(k).and_then(|v| v.as_str());
        if text("kind") != Some("login") || text("outcome") != Some("completed") {
            return None;
        }
        Some(Login {
            at: record
                .get("at_unix")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(ts),
            method: text("method").unwrap_or("unknown").to_owned(),
            profile: text("profile").unwrap_or("unknown").to_owned(),
            category: text("category").map(str::to_owned),
            sub: text("sub").unwrap_or("").to_owned(),
        })
    }
}

/// One choice made at `/represent` (a `represent` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Unix seconds.
    pub at: u64,
    /// The representation type, or `myself`.
    pub kind: String,
    /// The delegate (the person logged in).
    pub delegate: String,
}

impl Choice {
    /// The choice of one record's JSON, if it is one.
    pub fn from_record(record: &serde_json::Value, ts: u64) -> Option<Choice> {
        if record.get("kind").and_then(|v| v.as_str()) != Some("represent") {
            return None;
        }
        Some(Choice {
            at: record
                .get("at_unix")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(ts),
            kind: record
                .pointer("/representation/type")
                .and_then(|v| v.as_str())
                .unwrap_or("myself")
                .to_owned(),
            delegate: record
                .pointer("/act/sub")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
        })
    }
}

/// Exceptions and representations side by side.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replacement {
    /// Exception category → (legacy logins, distinct people).
    pub exceptions: BTreeMap<String, (u64, u64)>,
    /// Representation type (or `myself`) → (choices, distinct delegates).
    pub representations: BTreeMap<String, (u64, u64)>,
}

/// Counts legacy logins per exception category and acting choices per type.
pub fn replacement<'a>(
    logins: impl IntoIterator<Item = &'a Login>,
    choices: impl IntoIterator<Item = &'a Choice>,
) -> Replacement {
    let mut people: BTreeMap<String, std::collections::BTreeSet<&str>> = BTreeMap::new();
    let mut r = Replacement::default();
    for l in logins {
        if let (Some(c), "legacy") = (&l.category, l.method.as_str()) {
            r.exceptions.entry(c.clone()).or_default().0 += 1;
            people.entry(c.clone()).or_default().insert(&l.sub);
        }
    }
    for (c, p) in &people {
        if let Some(e) = r.exceptions.get_mut(c) {
            e.1 = p.len() as u64;
        }
    }
    let mut delegates: BTreeMap<String, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for c in choices {
        r.representations.entry(c.kind.clone()).or_default().0 += 1;
        delegates
            .entry(c.kind.clone())
            .or_default()
            .insert(&c.delegate);
    }
    for (k, d) in &delegates {
        if let Some(e) = r.representations.get_mut(k) {
            e.1 = d.len() as u64;
        }
    }
    r
}

/// The text of [`Replacement`].
pub fn render_replacement(r: &Replacement) -> String {
    let mut out = String::from(
        "exception category      legacy logins  people
",
    );
    for (c, (n, p)) in &r.exceptions {
        out.push_str(&format!("{c:<23} {n:>13}  {p:>6}\n"));
    }
    out.push_str("acting for someone       choices  delegates\n");
    for (k, (n, d)) in &r.representations {
        out.push_str(&format!("{k:<23} {n:>8}  {d:>9}\n"));
    }
    out
}

/// The figures, from logins in chain order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// (week, profile) → (logins, legacy logins).
    pub weeks: BTreeMap<(String, String), (u64, u64)>,
    /// People whose last login was legacy: subject → that login.
    pub still_legacy: BTreeMap<String, Login>,
    /// People with at least one legacy login in the period.
    pub legacy_users: u64,
}

/// Computes the figures over `logins` (chain order).
pub fn figures(logins: impl IntoIterator<Item = Login>) -> Figures {
    let mut f = Figures::default();
    let mut last: BTreeMap<String, Login> = BTreeMap::new();
    let mut legacy_users = std::collections::BTreeSet::new();
    for l in logins {
        let slot = f
            .weeks
            .entry((iso_week(l.at), l.profile.clone()))
            .or_insert((0, 0));
        slot.0 += 1;
        if l.method == "legacy" {
            slot.1 += 1;
            legacy_users.insert(l.sub.clone());
        }
        if !l.sub.is_empty() {
            last.insert(l.sub.clone(), l);
        }
    }
    f.still_legacy = last
        .into_iter()
        .filter(|(_, l)| l.method == "legacy")
        .collect();
    f.legacy_users = legacy_users.len() as u64;
    f
}

/// The text report.
pub fn render(f: &Figures, list: bool) -> String {
    let mut out = String::from("week      profile       logins  legacy   share\n");
    for ((week, profile), (n, legacy)) in &f.weeks {
        let share = if *n == 0 {
            0.0
        } else {
            *legacy as f64 * 100.0 / *n as f64
        };
        out.push_str(&format!(
            "{week:<9} {profile:<13} {n:>6}  {legacy:>6}  {share:>5.1}%\n"
        ));
    }
    out.push_str(&format!(
        "users still on legacy: {} (of {} who signed in with legacy credentials in the period)\n",
        f.still_legacy.len(),
        f.legacy_users
    ));
    if list {
        for (sub, l) in &f.still_legacy {
            out.push_str(&format!(
                "{sub} {} {} {}\n",
                l.profile,
                l.category.as_deref().unwrap_or("-"),
                iso_day(l.at)
            ));
        }
    }
    out
}

/// Runs `varco switchoff report`.
pub fn run(args: Args) -> ExitCode {
    let key = match &args.key_file {
        None => None,
        Some(path) => match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| crate::leaf::problem::parse_session_key(&b))
            .ok()
            .and_then(|k| RecordKey::new(&k))
        {
            Some(k) => Some(k),
            None => {
                eprintln!(
                    "varco switchoff: {}: not a usable key (64 hex digits)",
                    path.display()
                );
                return ExitCode::from(EX_USAGE);
            }
        },
    };
    let names = match file::list(&args.dir) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("varco switchoff: cannot read {}: {e}", args.dir.display());
            return ExitCode::from(EX_USAGE);
        }
    };
    let mut files = Vec::new();
    for name in &names {
        match std::fs::read(args.dir.join(name)) {
            Ok(b) => files.push((name.clone(), b)),
            Err(e) => {
                eprintln!("varco switchoff: cannot read {name}: {e}");
                return ExitCode::from(EX_USAGE);
            }
        }
    }
    // Figures only from a whole chain.
    let mut verifier = chain::Verifier::new(key.as_ref());
    for (name, bytes) in &files {
        if let Err(e) = verifier.file(name, bytes) {
            output::line(format_args!("FAILED {}: {e}", e.code()));
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = verifier.finish() {
        output::line(format_args!("FAILED {}: {e}", e.code()));
        return ExitCode::FAILURE;
    }
    let mut logins = Vec::new();
    let mut choices = Vec::new();
    for (_, bytes) in &files {
        let (lines, _) = chain::split_lines(bytes);
        for (_, raw) in lines {
            let Ok(line) = chain::parse_line(raw) else {
                continue;
            };
            let Some(json) = line.json(key.as_ref()) else {
                eprintln!(
                    "varco switchoff: record {} is encrypted: give --key-file",
                    line.seq
                );
                return ExitCode::from(EX_USAGE);
            };
            let Ok(record) = serde_json::from_slice::<serde_json::Value>(&json) else {
                continue;
            };
            if let Some(l) = Login::from_record(&record, line.ts) {
                if l.at >= args.from && l.at < args.to {
                    logins.push(l);
                }
            } else if let Some(c) = Choice::from_record(&record, line.ts) {
                if c.at >= args.from && c.at < args.to {
                    choices.push(c);
                }
            }
        }
    }
    let replaced = replacement(&logins, &choices);
    output::text(&render(&figures(logins), args.list));
    output::text(&render_replacement(&replaced));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> u64 {
        crate::leaf::clock::unix(saml::parse_instant(s).unwrap())
    }

    #[test]
    fn iso_weeks_follow_iso_8601() {
        assert_eq!(iso_week(at("2021-10-01T10:00:00Z")), "2021-W39");
        // 2021-01-03 (Sunday) belongs to 2020-W53; 2024-12-30 (Monday) to 2025-W01.
        assert_eq!(iso_week(at("2021-01-03T23:59:59Z")), "2020-W53");
        assert_eq!(iso_week(at("2021-01-04T00:00:00Z")), "2021-W01");
        assert_eq!(iso_week(at("2024-12-30T00:00:00Z")), "2025-W01");
    }

    #[test]
    fn shares_per_week_and_people_still_on_legacy() {
        let login = |t: &str, method: &str, profile: &str, sub: &str| Login {
            at: at(t),
            method: method.into(),
            profile: profile.into(),
            category: None,
            sub: sub.into(),
        };
        let f = figures([
            login("2021-09-27T08:00:00Z", "legacy", "citizen", "A"),
            login("2021-09-27T09:00:00Z", "legacy", "citizen", "B"),
            login("2021-09-28T09:00:00Z", "spid", "citizen", "C"),
            login("2021-09-29T09:00:00Z", "legacy", "business", "D"),
            // A moves to SPID; B stays on legacy.
            login("2021-10-04T09:00:00Z", "spid", "citizen", "A"),
            login("2021-10-05T09:00:00Z", "legacy", "citizen", "B"),
        ]);
        let w = |week: &str, p: &str| f.weeks[&(week.to_owned(), p.to_owned())];
        assert_eq!(w("2021-W39", "citizen"), (3, 2));
        assert_eq!(w("2021-W39", "business"), (1, 1));
        assert_eq!(w("2021-W40", "citizen"), (2, 1));
        assert_eq!(f.still_legacy.keys().collect::<Vec<_>>(), ["B", "D"]);
        assert_eq!(f.legacy_users, 3);
        let text = render(&f, true);
        assert!(
            text.contains("2021-W39  citizen            3       2   66.7%"),
            "{text}"
        );
        assert!(text.contains("users still on legacy: 2 (of 3 "), "{text}");
        assert!(text.contains("\nB citizen - 2021-10-05\n"), "{text}");
        assert!(!render(&f, false).contains("\nB citizen"));
    }

    #[test]
    fn exceptions_and_the_representations_replacing_them_are_counted_together() {
        let legacy = |sub: &str, category: Option<&str>| Login {
            at: 1,
            method: "legacy".into(),
            profile: "citizen".into(),
            category: category.map(str::to_owned),
            sub: sub.into(),
        };
        let logins = [
            legacy("W", Some("guardianship")),
            legacy("W", Some("guardianship")),
            legacy("M", Some("minor")),
            legacy("X", None),
        ];
        let choice = |kind: Option<&str>, delegate: &str| {
            let rep = kind.map(|k| serde_json::json!({"type": k}));
            let rec = serde_json::json!({"kind": "represent", "at_unix": 2,
                "act": {"sub": delegate}, "representation": rep});
            Choice::from_record(&rec, 0).unwrap()
        };
        let choices = [
            choice(Some("guardianship"), "G"),
            choice(Some("guardianship"), "G"),
            choice(Some("parental"), "P"),
            choice(None, "P"),
        ];
        let r = replacement(&logins, &choices);
        assert_eq!(r.exceptions["guardianship"], (2, 1));
        assert_eq!(r.exceptions["minor"], (1, 1));
        assert_eq!(r.exceptions.len(), 2);
        assert_eq!(r.representations["guardianship"], (2, 1));
        assert_eq!(r.representations["parental"], (1, 1));
        assert_eq!(r.representations["myself"], (1, 1));
        let text = render_replacement(&r);
        assert!(
            text.contains("guardianship                        2       1\n"),
            "{text}"
        );
        assert!(Choice::from_record(&serde_json::json!({"kind": "login"}), 0).is_none());
    }

    #[test]
    fn only_completed_logins_count() {
        let rec = |outcome: &str| {
            serde_json::json!({"kind": "login", "outcome": outcome, "method": "legacy",
                "profile": "citizen", "sub": "TINIT-X", "at_unix": 5})
        };
        assert!(Login::from_record(&rec("completed"), 1).is_some());
        assert!(Login::from_record(&rec("refused"), 1).is_none());
        let old = serde_json::json!({"kind": "login", "outcome": "completed", "method": "spid"});
        assert_eq!(Login::from_record(&old, 7).unwrap().profile, "unknown");
        assert_eq!(Login::from_record(&old, 7).unwrap().at, 7);
    }
}
