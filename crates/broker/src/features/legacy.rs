//! Legacy credentials in a transitional phase (issue 7): a portal's own fiscal code +
//! password, verified against a file of Argon2id hashes, for as long as the switch-off policy
//! ([`crate::features::switchoff`]) allows.
//!
//! - The credential file (`legacy.credentials_file`) holds one person per line:
//!   `FISCAL_CODE PROFILE CATEGORY PHC`, fields separated by white space; `CATEGORY` is `-`
//!   or a `[[switchoff.exception]]` category; `PHC` is an Argon2id PHC string
//!   (`varco legacy hash` writes the line). `#` starts a comment line. Every line is checked
//!   when the configuration loads (a malformed line is a configuration error, exit 64); no
//!   hash is ever printed in an error.
//! - `GET /legacy/login` shows the form with an anti-CSRF token sealed for
//!   `Purpose::LegacyForm` and bound to the `varco_legacy` cookie (random, `SameSite=Strict`);
//!   `POST /legacy/login` checks both before anything else.
//! - An unknown fiscal code costs the same Argon2 work as a known one (a dummy hash with the
//!   parameters of the file's first entry), so timing does not tell who has a credential.
//! - Failures are counted per fiscal code and per client address (IPv6 by /64) in bounded
//!   moka caches for `legacy.failure_window_seconds`; over either limit the form answers 429
//!   without verifying anything. An attempt is counted *before* its verification and given
//!   back if it succeeds, so concurrent guesses cannot all slip under the limit. Verifications run on the heavy-work pool, at most
//!   `legacy.max_concurrent_verifications` at a time.
//! - A verified login gets the switch-off verdict, then the same audit record and session a
//!   SAML login gets (record first, fail closed), with method `legacy` (LoA low).
//!
//! This module is the configuration, the credential file, the throttle and `varco legacy`;
//! the form and its submission are `routes::legacy`. May import: the leaf,
//! `features::switchoff` and `features::audit`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use identity::Profile;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

use crate::features::switchoff::SwitchOff;

/// The `idp` of legacy sessions and audit records.
/// Longest accepted password, bytes.
pub(crate) const MAX_PASSWORD: usize = 256;

/// The `idp` of legacy sessions and audit records.
pub const LEGACY_IDP: &str = "urn:varco:legacy";

// === Configuration ===

/// `[legacy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLegacy {
    credentials_file: PathBuf,
    #[serde(default = "default_per_user")]
    max_failures_per_user: u32,
    #[serde(default = "default_per_client")]
    max_failures_per_client: u32,
    #[serde(default = "default_window")]
    failure_window_seconds: u64,
    #[serde(default = "default_capacity")]
    throttle_capacity: u64,
    #[serde(default = "default_concurrency")]
    max_concurrent_verifications: usize,
    #[serde(default = "default_form_ttl")]
    form_ttl_seconds: u64,
}

fn default_per_user() -> u32 {
    5
}
fn default_per_client() -> u32 {
    30
}
fn default_window() -> u64 {
    900
}
fn default_capacity() -> u64 {
    100_000
}
fn default_concurrency() -> usize {
    4
}
fn default_form_ttl() -> u64 {
    1800
}

/// The validated `[legacy]` table.
pub struct LegacyConfig {
    /// The credential file, parsed.
    pub credentials: Credentials,
    /// Failures of one fiscal code within the window before the form refuses it.
    pub max_failures_per_user: u32,
    /// Failures from one client address within the window before the form refuses it.
    pub max_failures_per_client: u32,
    /// The failure counting window.
    pub failure_window: Duration,
    /// Entries kept in each failure cache.
    pub throttle_capacity: u64,
    /// Argon2 verifications running at once.
    pub max_concurrent_verifications: usize,
    /// How long a form (its anti-CSRF token) stays usable.
    pub form_ttl: Duration,
}

impl LegacyConfig {
    /// What the failure throttle is built from: a reload keeps the throttle (and its counts)
    /// while these stay the same.
    pub fn throttle_settings(&self) -> (u64, Duration, usize) {
        (
            self.throttle_capacity,
            self.failure_window,
            self.max_concurrent_verifications,
        )
    }
}

/// One person of the credential file.
#[derive(Clone)]
pub struct Entry {
    /// Profile for route policies and the switch-off dates.
    pub profile: Profile,
    /// Exception category, if any.
    pub category: Option<String>,
    /// The Argon2id PHC string.
    pub(crate) phc: String,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("profile", &self.profile)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

/// The parsed credential file.
pub struct Credentials {
    entries: HashMap<String, Entry>,
    /// Verified when the fiscal code is unknown, so the answer costs the same.
    pub(crate) dummy: String,
}

impl Credentials {
    /// The entry of a (normalized) fiscal code.
    pub fn get(&self, fiscal_code: &str) -> Option<&Entry> {
        self.entries.get(fiscal_code)
    }

    /// Number of people in the file.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists nobody.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Lowest accepted Argon2 memory cost, KiB (OWASP's smallest listed configuration).
const MIN_M_COST: u32 = 7 * 1024;
/// Lowest accepted memory × passes (OWASP: m = 19 MiB with t = 2, or the equivalents).
const MIN_M_T: u64 = 19 * 1024 * 2;
/// Highest accepted memory cost (1 GiB): one verification must stay affordable.
const MAX_M_COST: u32 = 1024 * 1024;
/// Highest accepted number of passes.
const MAX_T_COST: u32 = 20;

/// Checks one PHC string: Argon2id, version 19, salt and hash present, costs in bounds.
pub fn check_phc(phc: &str) -> Result<(), String> {
    let hash = PasswordHash::new(phc).map_err(|_| "not a PHC string".to_owned())?;
    if hash.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "algorithm {}: only argon2id is accepted",
            hash.algorithm.as_str()
        ));
    }
    if hash.version != Some(0x13) {
        return Err("version must be v=19".into());
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("salt or hash missing".into());
    }
    let params = argon2::Params::try_from(&hash).map_err(|_| "bad Argon2 parameters")?;
    let (m, t) = (params.m_cost(), params.t_cost());
    if m < MIN_M_COST || u64::from(m) * u64::from(t) < MIN_M_T {
        return Err(format!(
            "m={m}, t={t} is too weak (at least m=19456,t=2 or m*t >= 38912 with m >= 7168)"
        ));
    }
    if m > MAX_M_COST || t > MAX_T_COST {
        return Err(format!(
            "m={m}, t={t} is too costly (at most m=1048576, t=20)"
        ));
    }
    Ok(())
}

/// Parses the credential file. Problems name the line (never its hash); `switchoff` decides
/// which categories exist.
pub fn parse_credentials(text: &str, switchoff: &SwitchOff) -> Result<Credentials, Vec<String>> {
    let mut entries = HashMap::new();
    let mut problems = Vec::new();
    let mut first_phc = None;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_ascii_whitespace().collect();
        let [code, profile, category, phc] = fields.as_slice() else {
            problems.push(format!(
                "line {n}: expected 4 fields (FISCAL_CODE PROFILE CATEGORY PHC), found {}",
                fields.len()
            ));
            continue;
        };
        let code = match identity::normalize_fiscal_code(code) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("line {n}: fiscal code: {e}"));
                continue;
            }
        };
        let Some(profile) = Profile::parse(profile) else {
            problems.push(format!(
                "line {n}: profile {profile:?}: expected citizen, professional, business or intermediary"
            ));
            continue;
        };
        let category = match *category {
            "-" => None,
            c if switchoff.knows_category(c) => Some(c.to_owned()),
            c => {
                problems.push(format!(
                    "line {n}: category {c:?}: not a [[switchoff.exception]] category (use - for none)"
                ));
                continue;
            }
        };
        if let Err(e) = check_phc(phc) {
            problems.push(format!("line {n}: password hash: {e}"));
            continue;
        }
        if entries.contains_key(&code) {
            problems.push(format!("line {n}: fiscal code {code} listed twice"));
            continue;
        }
        first_phc.get_or_insert_with(|| (*phc).to_owned());
        entries.insert(
            code,
            Entry {
                profile,
                category,
                phc: (*phc).to_owned(),
            },
        );
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // The dummy has the first entry's parameters (the file's usual cost) and a random salt.
    let rng = SystemRandom::new();
    let params = first_phc
        .as_deref()
        .and_then(|p| PasswordHash::new(p).ok())
        .and_then(|h| argon2::Params::try_from(&h).ok())
        .unwrap_or_default();
    let mut password = [0u8; 16];
    let dummy = rng
        .fill(&mut password)
        .ok()
        .and_then(|()| hash_with(&password, params, &rng).ok())
        .ok_or_else(|| vec!["cannot compute the dummy hash (no randomness)".to_owned()])?;
    Ok(Credentials { entries, dummy })
}

fn hash_with(
    password: &[u8],
    params: argon2::Params,
    rng: &SystemRandom,
) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)
        .map_err(|_| "no randomness".to_owned())?;
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon
        .hash_password_with_salt(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Hashes a password into a PHC string with the default parameters (Argon2id v19,
/// m = 19456 KiB, t = 2, p = 1) and a random 16-byte salt.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    hash_with(password, argon2::Params::default(), &SystemRandom::new())
}

/// Whether `password` matches `phc` (Argon2's own constant-time comparison).
pub fn verify(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .ok()
        .is_some_and(|h| Argon2::default().verify_password(password, &h).is_ok())
}

/// Validates `[legacy]` (after `[switchoff]`, whose categories the file may use).
pub(crate) fn validate(
    raw: &RawLegacy,
    switchoff: &SwitchOff,
    resolve: &dyn Fn(&std::path::Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<LegacyConfig> {
    if raw.max_failures_per_user == 0 || raw.max_failures_per_user > 1000 {
        bad(
            "legacy.max_failures_per_user",
            "must be between 1 and 1000".into(),
        );
    }
    if raw.max_failures_per_client == 0 || raw.max_failures_per_client > 100_000 {
        bad(
            "legacy.max_failures_per_client",
            "must be between 1 and 100000".into(),
        );
    }
    if raw.failure_window_seconds < 60 || raw.failure_window_seconds > 86_400 {
        bad(
            "legacy.failure_window_seconds",
            "must be between 60 and 86400".into(),
        );
    }
    if raw.throttle_capacity < 1000 || raw.throttle_capacity > 10_000_000 {
        bad(
            "legacy.throttle_capacity",
            "must be between 1000 and 10000000".into(),
        );
    }
    if raw.max_concurrent_verifications == 0 || raw.max_concurrent_verifications > 256 {
        bad(
            "legacy.max_concurrent_verifications",
            "must be between 1 and 256".into(),
        );
    }
    if raw.form_ttl_seconds < 60 || raw.form_ttl_seconds > 86_400 {
        bad(
            "legacy.form_ttl_seconds",
            "must be between 60 and 86400".into(),
        );
    }
    let path = resolve(&raw.credentials_file);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            bad(
                "legacy.credentials_file",
                format!("{}: {e}", path.display()),
            );
            return None;
        }
    };
    let credentials = match parse_credentials(&text, switchoff) {
        Ok(c) => c,
        Err(problems) => {
            for p in problems {
                bad(
                    "legacy.credentials_file",
                    format!("{}: {p}", path.display()),
                );
            }
            return None;
        }
    };
    Some(LegacyConfig {
        credentials,
        max_failures_per_user: raw.max_failures_per_user,
        max_failures_per_client: raw.max_failures_per_client,
        failure_window: Duration::from_secs(raw.failure_window_seconds),
        throttle_capacity: raw.throttle_capacity,
        max_concurrent_verifications: raw.max_concurrent_verifications,
        form_ttl: Duration::from_secs(raw.form_ttl_seconds),
    })
}

// === Runtime ===

/// Failure counters and the verification permits of one process.
pub struct Throttle {
    users: moka::sync::Cache<String, Arc<AtomicU32>>,
    clients: moka::sync::Cache<String, Arc<AtomicU32>>,
    permits: tokio::sync::Semaphore,
}

impl Throttle {
    /// Caches bounded to `capacity` entries each; an entry lives `window` from its first
    /// failure.
    pub fn new(config: &LegacyConfig) -> Throttle {
        let cache = || {
            moka::sync::Cache::builder()
                .max_capacity(config.throttle_capacity)
                .time_to_live(config.failure_window)
                .build()
        };
        Throttle {
            users: cache(),
            clients: cache(),
            permits: tokio::sync::Semaphore::new(config.max_concurrent_verifications),
        }
    }

    /// Reserves one attempt under `limit`: the count is raised *before* the password is
    /// checked, so concurrent attempts cannot all pass a check made before any of them
    /// failed. `false` (count unchanged) when the limit is reached.
    fn reserve(cache: &moka::sync::Cache<String, Arc<AtomicU32>>, key: &str, limit: u32) -> bool {
        let counter = cache
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(AtomicU32::new(0)))
            .into_value();
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Reserves one attempt for this fiscal code and one for this client, or neither: `false`
    /// when either limit is reached.
    pub(crate) fn reserve_attempt(&self, user: &str, client: &str, config: &LegacyConfig) -> bool {
        let user_ok = Throttle::reserve(&self.users, user, config.max_failures_per_user);
        let client_ok =
            user_ok && Throttle::reserve(&self.clients, client, config.max_failures_per_client);
        if user_ok && !client_ok {
            Throttle::release(&self.users, user);
        }
        client_ok
    }

    /// Gives both reserved attempts back (the attempt was not judged).
    pub(crate) fn give_back(&self, user: &str, client: &str) {
        Throttle::release(&self.users, user);
        Throttle::release(&self.clients, client);
    }

    /// A verified password: the fiscal code's failures are forgotten, the client's attempt
    /// given back.
    pub(crate) fn succeeded(&self, user: &str, client: &str) {
        self.users.invalidate(user);
        Throttle::release(&self.clients, client);
    }

    /// The permits bounding concurrent verifications.
    pub(crate) fn permits(&self) -> &tokio::sync::Semaphore {
        &self.permits
    }

    /// Gives a reserved attempt back (it succeeded, or the other limit refused it).
    fn release(cache: &moka::sync::Cache<String, Arc<AtomicU32>>, key: &str) {
        if let Some(counter) = cache.get(key) {
            let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(1))
            });
        }
    }
}

pub(crate) use crate::features::access::client_key;

// === Command line ===

const EX_USAGE: u8 = 64;

/// `varco legacy hash [--fiscal-code CF --profile PROFILE [--category CATEGORY]]` (the flags
/// are read by `crate::cli`): hashes the first line of standard input.
pub fn hash_cli(
    code: Option<String>,
    profile: Option<String>,
    category: Option<String>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let usage = |e: &str| {
        eprintln!("varco legacy hash: {e}");
        ExitCode::from(EX_USAGE)
    };
    let prefix = match (code, profile) {
        (None, None) if category.is_none() => None,
        (Some(c), Some(p)) => {
            let Ok(c) = identity::normalize_fiscal_code(&c) else {
                return usage("--fiscal-code: not a valid fiscal code");
            };
            if Profile::parse(&p).is_none() {
                return usage(
                    "--profile: expected citizen, professional, business or intermediary",
                );
            }
            let cat = category.unwrap_or_else(|| "-".into());
            if cat != "-" && !crate::leaf::problem::valid_name(&cat) {
                return usage("--category: 1-64 of a-z, 0-9, _ and -");
            }
            Some(format!("{c} {p} {cat} "))
        }
        _ => return usage("--fiscal-code and --profile go together"),
    };
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return usage("cannot read the password from standard input");
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.chars().count() < 8 || password.len() > MAX_PASSWORD {
        return usage("the password must have 8 to 256 bytes (at least 8 characters)");
    }
    match hash_password(password.as_bytes()) {
        Ok(phc) => {
            crate::leaf::output::line(format_args!("{}{phc}", prefix.unwrap_or_default()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("varco legacy: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn switchoff() -> SwitchOff {
        crate::features::switchoff::tests::inps()
    }

    // One hash shared by the tests: Argon2 at the default cost takes a while in debug builds.
    fn phc() -> &'static str {
        static PHC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        PHC.get_or_init(|| hash_password(b"correct horse").unwrap())
    }

    #[test]
    fn hashes_verify_and_parameters_are_checked() {
        let h = phc();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(h, b"correct horse"));
        assert!(!verify(h, b"correct horsf"));
        assert!(!verify("not a hash", b"x"));
        assert_eq!(check_phc(h), Ok(()));
        // The other Argon2 variants, weak or costly parameters, missing parts.
        for bad in [
            h.replacen("argon2id", "argon2i", 1),
            h.replacen("argon2id", "argon2d", 1),
            h.replacen("m=19456", "m=4096", 1),
            h.replacen("t=2", "t=1", 1),
            h.replacen("m=19456", "m=2000000", 1),
            h.replacen("v=19", "v=16", 1),
            h.rsplit_once('$').unwrap().0.to_owned(),
            "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234".to_owned(),
        ] {
            assert!(check_phc(&bad).is_err(), "{bad}");
        }
        // Equivalent OWASP costs are accepted.
        let h3 = h.replacen("m=19456,t=2", "m=12288,t=4", 1);
        assert_eq!(check_phc(&h3), Ok(()));
    }

    #[test]
    fn credential_file_lines_are_parsed_and_malformed_ones_refused() {
        let h = phc();
        let good = format!(
            "# portal users\n\nRSSMRA85T10A562S citizen - {h}\n\
             \tbnchrt70a01h501x   business minor\t{h}\n"
        );
        // A lower-case fiscal code is normalized; the second one has a wrong check letter.
        let problems = parse_credentials(&good, &switchoff()).err().unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("line 4: fiscal code"),
            "{problems:?}"
        );
        let good = good.replace("bnchrt70a01h501x", "rssmra85t10a562s");
        let problems = parse_credentials(&good, &switchoff()).err().unwrap();
        assert_eq!(
            problems,
            ["line 4: fiscal code RSSMRA85T10A562S listed twice"]
        );
        let good = format!("RSSMRA85T10A562S citizen - {h}\nVRDGPP80A01H501U business minor {h}\n");
        let creds = parse_credentials(&good, &switchoff()).unwrap();
        assert_eq!(creds.len(), 2);
        let e = creds.get("VRDGPP80A01H501U").unwrap();
        assert_eq!(
            (e.profile, e.category.as_deref()),
            (Profile::Business, Some("minor"))
        );
        assert!(creds.dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!format!("{e:?}").contains("argon2"));

        let bad = format!(
            "RSSMRA85T10A562S citizen -\n\
             RSSMRA85T10A562S citizen - {h} extra\n\
             RSSMRA85T10A562S citizens - {h}\n\
             RSSMRA85T10A562S citizen adult {h}\n\
             RSSMRA85T10A562S citizen - {}\n\
             RSSMRA85T10A562S citizen - not-a-phc\n",
            h.replacen("argon2id", "argon2i", 1)
        );
        let problems = parse_credentials(&bad, &switchoff()).err().unwrap();
        let lines: Vec<&str> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        assert_eq!(
            lines,
            ["line 1", "line 2", "line 3", "line 4", "line 5", "line 6"]
        );
        // No problem repeats a hash.
        assert!(
            problems.iter().all(|p| !p.contains("$argon2")),
            "{problems:?}"
        );
    }

    #[test]
    fn concurrent_attempts_cannot_exceed_the_limit() {
        let cache: moka::sync::Cache<String, Arc<AtomicU32>> =
            moka::sync::Cache::builder().max_capacity(100).build();
        let granted = AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..32 {
                s.spawn(|| {
                    if Throttle::reserve(&cache, "RSSMRA85T10A562S", 5) {
                        granted.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(granted.load(Ordering::SeqCst), 5);
        assert!(!Throttle::reserve(&cache, "RSSMRA85T10A562S", 5));
        // A success gives its attempt back; another key has its own budget.
        Throttle::release(&cache, "RSSMRA85T10A562S");
        assert!(Throttle::reserve(&cache, "RSSMRA85T10A562S", 5));
        assert!(Throttle::reserve(&cache, "VRDGPP80A01H501U", 5));
        // Releasing an unknown or evicted key does nothing.
        Throttle::release(&cache, "unknown");
        assert!(cache.get("unknown").is_none());
    }

    #[test]
    fn client_keys_group_ipv6_by_64() {
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(client_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            client_key("2001:db8:1:2:bbbb::9".parse().unwrap())
        );
        assert_ne!(
            client_key("2001:db8:1:2::1".parse().unwrap()),
            client_key("2001:db8:1:3::1".parse().unwrap())
        );
    }
}
