//! Configuration: one TOML file, read into a raw form with serde, then validated as a whole
//! into [`Config`]. Every problem is collected with its dotted key path, so an operator fixes
//! a bad file in one round; nothing is bound or served before this succeeds.
//!
//! Every key and its default is documented in docs/OPERATIONS.md.
//!
//! The features own their tables (`Raw*`) and their `validate()`; this module gathers them
//! into `RawConfig` and assembles the result. May import: `features`, the leaf. Nothing below
//! imports it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use saml::{Federation, SpConfig};
use xmldsig::{SigningKey, TrustedKey};

use crate::features::registry::{DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT, Location, SourceConfig};
pub use crate::leaf::problem::Problem;
use crate::leaf::problem::{parse_session_key, sha256_hex};

// === Raw form (what the file says) ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    sp: RawSp,
    session: RawSession,
    #[serde(default)]
    saml: RawSaml,
    #[serde(default)]
    idp: Vec<RawIdp>,
    #[serde(default)]
    metrics: crate::features::access::RawMetrics,
    #[serde(default)]
    proxy: crate::features::access::RawProxy,
    #[serde(default)]
    token: crate::features::access::RawToken,
    #[serde(default)]
    route: Vec<crate::features::access::RawRoute>,
    #[serde(default)]
    forward_auth: crate::features::access::RawForwardAuth,
    #[serde(default)]
    mapping: crate::features::access::RawMappings,
    #[serde(default)]
    metadata: Vec<RawMetadataSource>,
    #[serde(default)]
    audit: RawAudit,
    state: Option<RawState>,
    cns: Option<crate::features::cns::RawCns>,
    legacy: Option<crate::features::legacy::RawLegacy>,
    wallet: Option<crate::features::wallet::RawWallet>,
    #[serde(default)]
    switchoff: crate::features::switchoff::RawSwitchOff,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    admission: crate::features::admission::RawAdmission,
    oidc_rp: Option<crate::features::federation::RawOidcRp>,
    #[serde(default)]
    represent: crate::features::represent::RawRepresent,
    oidc: Option<crate::features::oidc_op::RawOidc>,
}

/// `[log]`: line format and level (see docs/OPERATIONS.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    #[serde(default = "default_log_format")]
    format: String,
    #[serde(default = "default_log_level")]
    level: String,
    #[serde(default)]
    forward_auth_allowed: bool,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: default_log_format(),
            level: default_log_level(),
            forward_auth_allowed: false,
        }
    }
}

/// `[store]`: where pending logins, consumed assertions and session marks live (issue 9).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    #[serde(default = "default_store_backend")]
    backend: String,
    url: Option<String>,
    url_file: Option<PathBuf>,
    /// `rediss://` only: the CA certificates (PEM) the server's certificate must chain to
    /// (default: the system's roots).
    ca_file: Option<PathBuf>,
    /// `rediss://` only: a client certificate (PEM) and its key, for `tls-auth-clients`.
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    #[serde(default = "default_store_prefix")]
    key_prefix: String,
    #[serde(default = "default_store_connect_ms")]
    connect_timeout_ms: u64,
    #[serde(default = "default_store_command_ms")]
    command_timeout_ms: u64,
    #[serde(default = "default_store_pool")]
    pool_size: u64,
    #[serde(default = "default_replay_bytes")]
    max_replay_bytes: u64,
    #[serde(default = "default_activity_bytes")]
    max_activity_bytes: u64,
    #[serde(default = "default_logout_index_bytes")]
    max_logout_index_bytes: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            backend: default_store_backend(),
            url: None,
            url_file: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            key_prefix: default_store_prefix(),
            connect_timeout_ms: default_store_connect_ms(),
            command_timeout_ms: default_store_command_ms(),
            pool_size: default_store_pool(),
            max_replay_bytes: default_replay_bytes(),
            max_activity_bytes: default_activity_bytes(),
            max_logout_index_bytes: default_logout_index_bytes(),
        }
    }
}

fn default_log_format() -> String {
    "json".into()
}
fn default_log_level() -> String {
    "info".into()
}
fn default_store_backend() -> String {
    "memory".into()
}
fn default_store_prefix() -> String {
    "varco:".into()
}
fn default_store_connect_ms() -> u64 {
    1000
}
fn default_store_command_ms() -> u64 {
    500
}
fn default_store_pool() -> u64 {
    2
}

/// The validated `[store]`.
#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// In-process: one replica (or sticky sessions).
    Memory,
    /// Redis shared by the replicas.
    Redis(crate::features::store::redis::RedisOptions),
}

/// `[[metadata]]`: one IdP metadata source (see docs/OPERATIONS.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetadataSource {
    name: String,
    federation: String,
    url: Option<String>,
    file: Option<PathBuf>,
    signing_cert_file: Option<PathBuf>,
    #[serde(default)]
    unsigned: bool,
    #[serde(default = "default_true")]
    required: bool,
    min_refresh_seconds: Option<u64>,
    max_refresh_seconds: Option<u64>,
    timeout_seconds: Option<u64>,
    max_bytes: Option<u64>,
    display_name: Option<String>,
    max_age_seconds: Option<u64>,
}

/// `[state]`: where Varco keeps files across restarts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    dir: PathBuf,
}

/// `[audit]`: the login audit trail (issue 8).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_audit_dir")]
    dir: PathBuf,
    #[serde(default = "default_audit_file_bytes")]
    max_file_bytes: u64,
    #[serde(default = "default_audit_retention")]
    retention_days: u64,
    key_file: Option<PathBuf>,
    postgres_url: Option<String>,
    #[serde(default = "default_audit_tls")]
    postgres_tls: String,
    postgres_ca_file: Option<PathBuf>,
    postgres_url_file: Option<PathBuf>,
    #[serde(default = "default_audit_writer")]
    writer: String,
    #[serde(default = "default_audit_commit_interval")]
    commit_interval_us: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            enabled: true,
            dir: default_audit_dir(),
            max_file_bytes: default_audit_file_bytes(),
            retention_days: default_audit_retention(),
            key_file: None,
            postgres_url: None,
            postgres_tls: default_audit_tls(),
            postgres_ca_file: None,
            postgres_url_file: None,
            writer: default_audit_writer(),
            commit_interval_us: default_audit_commit_interval(),
        }
    }
}

fn default_audit_commit_interval() -> u64 {
    crate::features::audit::file::DEFAULT_COMMIT_INTERVAL.as_micros() as u64
}

fn default_audit_tls() -> String {
    "disable".into()
}

fn default_audit_writer() -> String {
    "varco".into()
}

fn default_audit_dir() -> PathBuf {
    "audit".into()
}
fn default_audit_file_bytes() -> u64 {
    64 * 1024 * 1024
}
/// 24 months, the longest two calendar years can be.
fn default_audit_retention() -> u64 {
    731
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    #[serde(default = "default_listen")]
    listen: String,
    public_base_url: String,
    #[serde(default = "default_shutdown_grace")]
    shutdown_grace_seconds: u64,
    /// After SIGTERM, keep accepting (with `/readyz` at 503) this long before draining.
    #[serde(default)]
    shutdown_delay_seconds: u64,
    #[serde(default = "default_config_poll")]
    config_poll_seconds: u64,
    /// Development only: accept an `http://` public URL on a host other than this machine.
    #[serde(default)]
    allow_plain_http: bool,
    /// The management listener (`/metrics`, and the probes unless `management_probes` is
    /// false). None: no management listener.
    management_listen: Option<String>,
    #[serde(default = "default_true")]
    management_probes: bool,
}

fn default_config_poll() -> u64 {
    5
}

fn default_shutdown_grace() -> u64 {
    20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSp {
    entity_id: Option<String>,
    key_file: PathBuf,
    cert_file: PathBuf,
    #[serde(default = "default_binding")]
    binding: String,
    #[serde(default)]
    attribute_consuming_service_index: u16,
    #[serde(default = "default_level")]
    default_level: u8,
    #[serde(default)]
    organization: RawOrganization,
    billing: Option<RawBilling>,
    #[serde(default)]
    attribute_consuming_service: Vec<RawAttributeService>,
}

/// Organization and contact data for the SP metadata (SPID Avviso 29 v3, CIE profile).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    #[serde(default)]
    name: String,
    name_en: Option<String>,
    #[serde(default)]
    display_name: String,
    display_name_en: Option<String>,
    #[serde(default)]
    url: String,
    #[serde(default = "default_sector")]
    sector: String,
    ipa_code: Option<String>,
    vat_number: Option<String>,
    fiscal_code: Option<String>,
    #[serde(default)]
    email: String,
    phone: Option<String>,
    /// CIE: municipality (ISTAT code); the CIE metadata is published only when set.
    municipality: Option<String>,
    province: Option<String>,
    country: Option<String>,
    nace2_code: Option<String>,
}

/// Invoicing data private SPID SPs publish (the `billing` contact).
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawBilling {
    name: String,
    email: String,
    phone: Option<String>,
    vat_country: Option<String>,
    vat_code: Option<String>,
    fiscal_code: Option<String>,
    street: String,
    number: Option<String>,
    postal_code: String,
    municipality: String,
    province: Option<String>,
    #[serde(default = "default_country")]
    country: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawAttributeService {
    index: u16,
    service_name: String,
    attributes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    key_file: PathBuf,
    cookie_name: Option<String>,
    #[serde(default = "default_true")]
    cookie_secure: bool,
    #[serde(default = "default_session_ttl")]
    ttl_seconds: u64,
    #[serde(default = "default_idle")]
    idle_timeout_seconds: u64,
    #[serde(default = "default_view_bytes")]
    view_cache_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSaml {
    #[serde(default = "default_skew")]
    clock_skew_seconds: u64,
    #[serde(default = "default_pending_ttl")]
    pending_request_ttl_seconds: u64,
    #[serde(default = "default_max_pending")]
    max_pending_requests: u64,
    #[serde(default = "default_pending_bytes")]
    max_pending_bytes: u64,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: u64,
}

impl Default for RawSaml {
    fn default() -> Self {
        RawSaml {
            clock_skew_seconds: default_skew(),
            pending_request_ttl_seconds: default_pending_ttl(),
            max_pending_requests: default_max_pending(),
            max_pending_bytes: default_pending_bytes(),
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

/// Default of `saml.max_response_bytes`: 40 KiB, two to four times a SPID Response with every
/// attribute and both certificates (10-20 KB), and a size at which the costliest Response an
/// attacker can shape stays within ten normal validations of CPU (issue 17,
/// docs/PERFORMANCE.md: 8.0× measured; 48 KiB measured 10.0-10.6× once aws-lc-rs made the
/// normal validation cheaper, 64 KiB 11.7-12× before).
fn default_max_response_bytes() -> u64 {
    40 * 1024
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdp {
    metadata_file: PathBuf,
    #[serde(default = "default_federation")]
    federation: String,
    /// Name shown on the login page (the entityID's host otherwise).
    display_name: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_binding() -> String {
    "redirect".into()
}
fn default_level() -> u8 {
    2
}
fn default_true() -> bool {
    true
}
fn default_session_ttl() -> u64 {
    8 * 3600
}
fn default_idle() -> u64 {
    1800
}
fn default_skew() -> u64 {
    60
}
fn default_pending_ttl() -> u64 {
    600
}
fn default_max_pending() -> u64 {
    100_000
}
fn default_pending_bytes() -> u64 {
    crate::features::store::memory::DEFAULT_PENDING_BYTES
}
fn default_replay_bytes() -> u64 {
    crate::features::store::memory::DEFAULT_REPLAY_BYTES
}
fn default_activity_bytes() -> u64 {
    crate::features::store::memory::DEFAULT_ACTIVITY_BYTES
}
fn default_logout_index_bytes() -> u64 {
    crate::features::store::memory::DEFAULT_LOGOUT_INDEX_BYTES
}
/// Default of `session.view_cache_bytes`: 32 MiB.
pub const DEFAULT_VIEW_BYTES: u64 = 32 << 20;
fn default_view_bytes() -> u64 {
    DEFAULT_VIEW_BYTES
}
fn default_federation() -> String {
    "spid".into()
}
fn default_sector() -> String {
    "public".into()
}
fn default_country() -> String {
    "IT".into()
}

// === Validated form ===

/// How AuthnRequests travel to the IdP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// HTTP-Redirect: a 302 with the deflated request and a query-string signature.
    Redirect,
    /// HTTP-POST: an auto-submitting form with the enveloped-signed request.
    Post,
}

/// The validated configuration.
pub struct Config {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The management listener's address (`server.management_listen`), if any.
    pub management_listen: Option<SocketAddr>,
    /// Whether the management listener also answers `/healthz` and `/readyz`.
    pub management_probes: bool,
    /// The public URL browsers use to reach Varco, without a trailing slash.
    pub public_base_url: String,
    /// This SP as the SAML layer sees it.
    pub sp: SpConfig,
    /// The SP's signing key (AuthnRequests, metadata).
    pub sp_key: SigningKey,
    /// Request binding.
    pub binding: Binding,
    /// Level requested when `/saml/login` names none.
    pub default_level: saml::Level,
    /// The signed SP metadata documents, by path (`/saml/metadata`, `/saml/metadata/cie`,
    /// `/saml/metadata/eidas`), rendered once at load so every problem is a config error.
    pub metadata: Vec<(&'static str, String)>,
    /// Key sealing session cookies (32 bytes).
    pub session_key: [u8; 32],
    /// Session cookie name.
    pub cookie_name: String,
    /// Whether cookies carry `Secure` (and the login cookie `SameSite=None`).
    pub cookie_secure: bool,
    /// How long SIGTERM waits for in-flight requests before exiting.
    pub shutdown_grace: Duration,
    /// How long after SIGTERM Varco keeps accepting, `/readyz` answering 503, so endpoints
    /// are withdrawn before the listener closes (for clusters without a preStop sleep).
    pub shutdown_delay: Duration,
    /// Session lifetime (absolute timeout).
    pub session_ttl: Duration,
    /// Longest silence a session survives (`None`: no idle timeout).
    pub idle_timeout: Option<Duration>,
    /// Tolerated clock difference with IdPs.
    pub clock_skew: Duration,
    /// How long a login may take between AuthnRequest and Response.
    pub pending_ttl: Duration,
    /// Largest decoded SAML Response the ACS accepts (`saml.max_response_bytes`).
    pub max_response_bytes: usize,
    /// Budgets of the in-memory store: pending logins and logouts (bytes and count), replay
    /// caches (bytes).
    pub budgets: crate::features::store::Budgets,
    /// Byte budget of the session-view cache (`session.view_cache_bytes`).
    pub view_cache_bytes: u64,
    /// IdP metadata sources (`[[metadata]]`, then `[[idp]]` and `--idp-metadata` as unsigned
    /// local files).
    pub metadata_sources: Vec<SourceConfig>,
    /// `state.dir`: backing files of URL sources live in its `metadata/` subdirectory.
    pub state_dir: Option<PathBuf>,
    /// Token keys, routes and policies, forward-auth trust, headers, attribute mapping.
    pub access: crate::features::access::Access,
    /// The audit sink (`None`: `audit.enabled = false`).
    pub audit: Option<crate::features::audit::Target>,
    /// CNS smart-card login (`[cns]`; `None`: not offered).
    pub cns: Option<crate::features::cns::Cns>,
    /// `[legacy]`: the legacy credential login (`None`: not offered).
    pub legacy: Option<crate::features::legacy::LegacyConfig>,
    /// `[wallet]`: the EUDI Wallet / IT-Wallet login (`None`: not offered).
    pub wallet: Option<crate::features::wallet::Wallet>,
    /// `[switchoff]`: the cut-off dates of legacy credentials (empty: none).
    pub switchoff: crate::features::switchoff::SwitchOff,
    /// `[log]`: line format and level.
    pub log: crate::leaf::logging::LogConfig,
    /// How often the configuration file is checked for changes (`None`: never; SIGHUP still
    /// reloads).
    pub config_poll: Option<Duration>,
    /// SHA-256 of the configuration file's bytes, lowercase hex (what `/metrics` reports
    /// and what a reload compares); empty for a configuration not read from a file.
    pub source_sha256: String,
    /// Where login and session state live (`[store]`).
    pub store: StoreBackend,
    /// Everything with an end date the operator has to renew (`varco_seconds_to_expiry`).
    pub expiries: Vec<Expiry>,
    /// Accepted, but to act on soon (something expires within [`EXPIRY_WARNING`]):
    /// `check-config` prints them, `serve` logs them.
    pub warnings: Vec<Problem>,
    /// `[admission]`: the heavy-work pool.
    pub admission: crate::features::admission::Admission,
    /// `[oidc_rp]`: SPID and CIE over OpenID Connect (`None`: not offered).
    pub oidc_rp: Option<std::sync::Arc<crate::features::federation::OidcRpConfig>>,
    /// `[represent]`: where representations come from, per service (issue 24).
    pub represent: crate::features::represent::Represent,
    /// `[oidc]`: Varco as an OpenID Provider (`None`: not offered).
    pub oidc: Option<crate::features::oidc_op::Oidc>,
}

impl Config {
    /// A login's or logout's return address, if acceptable
    /// ([`crate::features::access::Access::return_to`]): a
    /// plain-http URL only when the public URL is itself plain http (a development host).
    pub fn return_to<'a>(&self, s: &'a str) -> Option<&'a str> {
        self.access
            .return_to(s, self.public_base_url.starts_with("http://"))
    }

    /// Whether SAML logins are offered for `federation`: `[oidc_rp] spid_protocol` /
    /// `cie_protocol` may say OpenID Connect only (eIDAS is SAML only).
    pub fn saml_offered(&self, federation: Federation) -> bool {
        use crate::features::federation::OpFederation;
        let f = match federation {
            Federation::Spid => OpFederation::Spid,
            Federation::Cie => OpFederation::Cie,
            Federation::Eidas => return true,
        };
        self.oidc_rp.as_ref().is_none_or(|c| c.protocols(f).saml())
    }
}

/// How long before an expiry `check-config` starts warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// One thing that expires.
#[derive(Debug, Clone)]
pub struct Expiry {
    /// `sp_certificate`, `token_key`, `metadata_signing_certificate`, `wallet_certificate` or `cns_crl` (the
    /// metric's `kind` label).
    pub kind: &'static str,
    /// Which one: `sp`, the key's `kid`, the source's name, the CRL file (the `name` label).
    pub name: String,
    /// The configuration key that names it.
    pub key: String,
    /// When it stops being usable, Unix seconds (a CRL: its `nextUpdate`).
    pub not_after: i64,
}

/// Checks `expiries` at `now`: what has expired is a problem, except a CRL past its
/// `nextUpdate` (CNS logins are then refused by the revocation check, and refusing the whole
/// configuration for it would stop every other login too: a warning); what expires within
/// [`EXPIRY_WARNING`] (a CRL: within a day, as CRLs are reissued every few days) a warning.
fn check_expiries(
    expiries: &[Expiry],
    now: i64,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) {
    let day = |t: i64| {
        let (y, m, d) = crate::features::switchoff::civil_from_days(t.div_euclid(86_400));
        format!("{y:04}-{m:02}-{d:02}")
    };
    for e in expiries {
        let what = match e.kind {
            "sp_certificate" => "the SP certificate".to_owned(),
            "token_key" => format!("token key {:?} is to be rotated", e.name),
            "metadata_signing_certificate" => {
                format!("the signing certificate of metadata source {:?}", e.name)
            }
            "wallet_certificate" => "the wallet relying-party access certificate".to_owned(),
            _ => format!("CRL {} (nextUpdate)", e.name),
        };
        let crl = e.kind == "cns_crl";
        let warn_within = if crl {
            86_400
        } else {
            EXPIRY_WARNING.as_secs() as i64
        };
        let problem = |message: String| Problem {
            key: e.key.clone(),
            message,
        };
        if e.not_after <= now {
            let message = format!(
                "{what}: expired on {} (renew it{})",
                day(e.not_after),
                match e.kind {
                    "sp_certificate" => ": varco keys generate, then submit the new metadata",
                    "token_key" => ": add a new key as published, then make it active",
                    "metadata_signing_certificate" => ": get the federation's current one",
                    _ => ": fetch the issuer's current CRL",
                }
            );
            if crl {
                warnings.push(problem(message));
            } else {
                problems.push(problem(message));
            }
        } else if e.not_after - now < warn_within {
            warnings.push(problem(format!(
                "{what}: expires on {}, in {} days",
                day(e.not_after),
                (e.not_after - now) / 86_400
            )));
        }
    }
}

/// Overrides from the environment and the command line, applied before validation.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `VARCO_LISTEN`.
    pub listen: Option<String>,
    /// `VARCO_PUBLIC_BASE_URL`.
    pub public_base_url: Option<String>,
    /// `--idp-metadata FILE` (SPID federation), repeatable.
    pub idp_metadata: Vec<PathBuf>,
    /// `VARCO_AUDIT_WRITER`: `audit.writer`, so replicas sharing one file (a Kubernetes
    /// ConfigMap) each keep their own chain (set it from the pod name).
    pub audit_writer: Option<String>,
}

impl Overrides {
    /// Reads `VARCO_LISTEN`, `VARCO_PUBLIC_BASE_URL` and `VARCO_AUDIT_WRITER`.
    pub fn from_env() -> Self {
        Overrides {
            listen: std::env::var("VARCO_LISTEN").ok().filter(|v| !v.is_empty()),
            public_base_url: std::env::var("VARCO_PUBLIC_BASE_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            idp_metadata: Vec::new(),
            audit_writer: std::env::var("VARCO_AUDIT_WRITER")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

/// Loads and validates the configuration file. Relative paths in it are relative to the
/// file's directory.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, Vec<Problem>> {
    let problem = |key: &str, message: String| Problem {
        key: key.into(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        vec![problem(
            "(file)",
            format!("cannot read {}: {e}", path.display()),
        )]
    })?;
    let source_sha256 = sha256_hex(&bytes);
    let text =
        String::from_utf8(bytes).map_err(|_| vec![problem("(file)", "not UTF-8 text".into())])?;
    // A required key missing from a table would otherwise be reported by serde at whatever
    // line opened that table, e.g. a missing `[sp]` at `[sp.organization]`: name it here.
    // (A document the untyped reader refuses, such as an integer beyond i64 that a u64 key
    // still takes, is left to the typed reader below and its own message.)
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    let mut missing = Vec::new();
    for (name, keys) in [
        ("server", &["public_base_url"][..]),
        ("sp", &["key_file", "cert_file"]),
        ("session", &["key_file"]),
    ] {
        match table.get(name).and_then(|t| t.as_table()) {
            // Only sub-tables (`[sp.organization]`): the table itself was never written.
            Some(t) if t.values().all(toml::Value::is_table) => {
                missing.push(problem(
                    name,
                    format!(
                        "the [{name}] table is missing (only its sub-tables are there): add [{name}] with {}",
                        keys.join(" and ")
                    ),
                ));
            }
            Some(t) => {
                for k in keys.iter().filter(|k| !t.contains_key(**k)) {
                    missing.push(problem(&format!("{name}.{k}"), "required".into()));
                }
            }
            None => missing.push(problem(
                name,
                format!(
                    "the [{name}] table is missing: add it with {}",
                    keys.join(" and ")
                ),
            )),
        }
    }
    if !missing.is_empty() && !table.is_empty() {
        return Err(missing);
    }
    let mut raw: RawConfig =
        toml::from_str(&text).map_err(|e| vec![problem("(file)", e.to_string())])?;
    if let Some(l) = &overrides.listen {
        raw.server.listen = l.clone();
    }
    if let Some(u) = &overrides.public_base_url {
        raw.server.public_base_url = u.clone();
    }
    if let Some(w) = &overrides.audit_writer {
        raw.audit.writer = w.clone();
    }
    // Command-line paths are relative to the working directory, not to the file.
    let cwd = std::env::current_dir().unwrap_or_default();
    for file in &overrides.idp_metadata {
        raw.idp.push(RawIdp {
            metadata_file: cwd.join(file),
            federation: default_federation(),
            display_name: None,
        });
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut config = validate(raw, base)?;
    config.source_sha256 = source_sha256;
    Ok(config)
}

fn validate(mut raw: RawConfig, base: &Path) -> Result<Config, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut bad = |key: &str, message: String| {
        problems.push(Problem {
            key: key.into(),
            message,
        })
    };
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };

    let listen = raw.server.listen.parse::<SocketAddr>().map_err(|e| {
        bad(
            "server.listen",
            format!("{e} (expected host:port, e.g. 127.0.0.1:8080)"),
        )
    });

    let management_listen = match raw.server.management_listen.as_deref() {
        None => None,
        Some(m) => match m.parse::<SocketAddr>() {
            Ok(a) if listen.as_ref().is_ok_and(|l| *l == a && a.port() != 0) => {
                bad(
                    "server.management_listen",
                    "must differ from server.listen".into(),
                );
                None
            }
            Ok(a) => Some(a),
            Err(e) => {
                bad(
                    "server.management_listen",
                    format!("{e} (expected host:port, e.g. 0.0.0.0:9090)"),
                );
                None
            }
        },
    };

    let public_base_url = raw.server.public_base_url.trim_end_matches('/').to_owned();
    let secure_base = public_base_url.starts_with("https://");
    if !(secure_base || public_base_url.starts_with("http://")) || public_base_url.len() < 10 {
        bad(
            "server.public_base_url",
            "must be an absolute http(s) URL".into(),
        );
    }
    // Plain http exposes the session cookie and every assertion to the network: only for
    // this machine (development, tests) or with the explicit development switch.
    if !secure_base
        && public_base_url.starts_with("http://")
        && !loopback_http(&public_base_url)
        && !raw.server.allow_plain_http
    {
        bad(
            "server.public_base_url",
            "is http:// on a host other than this machine: citizens must reach Varco over \
             https (for a development host only, set server.allow_plain_http = true)"
                .into(),
        );
    }
    if raw.session.cookie_secure && !secure_base {
        bad(
            "session.cookie_secure",
            "is true but server.public_base_url is not https (set it to false for local development only)"
                .into(),
        );
    }

    let log = crate::leaf::logging::LogConfig::parse(&raw.log.format, &raw.log.level)
        .map(|l| crate::leaf::logging::LogConfig {
            forward_auth_allowed: raw.log.forward_auth_allowed,
            ..l
        })
        .map_err(|problems| {
            for (key, message) in problems {
                bad(key, message);
            }
        })
        .ok();
    if raw.server.shutdown_delay_seconds > 60 {
        bad(
            "server.shutdown_delay_seconds",
            "must be at most 60 (it only needs to outlast the endpoint update)".into(),
        );
    }
    if raw.server.config_poll_seconds > 3600 {
        bad(
            "server.config_poll_seconds",
            "must be at most 3600 (0 turns polling off)".into(),
        );
    }
    let config_poll = (raw.server.config_poll_seconds > 0)
        .then(|| Duration::from_secs(raw.server.config_poll_seconds));

    let binding = match raw.sp.binding.as_str() {
        "redirect" => Some(Binding::Redirect),
        "post" => Some(Binding::Post),
        other => {
            bad(
                "sp.binding",
                format!("{other:?}: expected \"redirect\" or \"post\""),
            );
            None
        }
    };
    let default_level = match raw.sp.default_level {
        1 => Some(saml::Level::L1),
        2 => Some(saml::Level::L2),
        3 => Some(saml::Level::L3),
        n => {
            bad("sp.default_level", format!("{n}: expected 1, 2 or 3"));
            None
        }
    };

    let key_pem = std::fs::read(resolve(&raw.sp.key_file))
        .map_err(|e| bad("sp.key_file", format!("{}: {e}", raw.sp.key_file.display())));
    let cert_pem = std::fs::read(resolve(&raw.sp.cert_file)).map_err(|e| {
        bad(
            "sp.cert_file",
            format!("{}: {e}", raw.sp.cert_file.display()),
        )
    });
    let sp_key = match (&key_pem, &cert_pem) {
        (Ok(k), Ok(c)) => SigningKey::from_pem(k, c)
            .map_err(|e| bad("sp.key_file", format!("with sp.cert_file: {e}")))
            .ok(),
        _ => None,
    };
    if let Some(k) = &sp_key {
        if k.kind() != xmldsig::KeyKind::Rsa {
            bad(
                "sp.key_file",
                "SPID requires an RSA key (2048 bits or more)".into(),
            );
        }
    }

    let session_key = std::fs::read(resolve(&raw.session.key_file))
        .map_err(|e| format!("{}: {e}", raw.session.key_file.display()))
        .and_then(|bytes| parse_session_key(&bytes))
        .map_err(|e| bad("session.key_file", e))
        .ok();
    // Over https the default name carries the `__Host-` prefix: browsers then accept the
    // cookie only from this host, with `Secure` and `Path=/`, so no sibling subdomain can
    // plant a session of its choosing (cookie tossing).
    let cookie_name = raw.session.cookie_name.clone().unwrap_or_else(|| {
        if raw.session.cookie_secure {
            "__Host-varco_session".into()
        } else {
            "varco_session".into()
        }
    });
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        bad(
            "session.cookie_name",
            "must be non-empty ASCII letters, digits, _ or -".into(),
        );
    }
    if cookie_name.starts_with("__Host-") && !raw.session.cookie_secure {
        bad(
            "session.cookie_name",
            "a __Host- cookie needs session.cookie_secure = true".into(),
        );
    }
    if raw.session.ttl_seconds == 0 {
        bad("session.ttl_seconds", "must be positive".into());
    }
    if raw.session.idle_timeout_seconds > 86_400 {
        bad(
            "session.idle_timeout_seconds",
            "at most 86400 (use 0 to disable the idle timeout)".into(),
        );
    }
    if raw.saml.clock_skew_seconds > 300 {
        bad(
            "saml.clock_skew_seconds",
            "more than 300 s would accept stale assertions".into(),
        );
    }
    if raw.saml.pending_request_ttl_seconds == 0 {
        bad(
            "saml.pending_request_ttl_seconds",
            "must be positive".into(),
        );
    }
    // Byte budgets: below 1 MiB a handful of logins fill them; above 4 GiB moka's weights
    // stop meaning anything on the pod sizes Varco ships.
    for (key, value) in [
        ("saml.max_pending_bytes", raw.saml.max_pending_bytes),
        ("store.max_replay_bytes", raw.store.max_replay_bytes),
        ("store.max_activity_bytes", raw.store.max_activity_bytes),
        (
            "store.max_logout_index_bytes",
            raw.store.max_logout_index_bytes,
        ),
        ("session.view_cache_bytes", raw.session.view_cache_bytes),
    ] {
        if !(1 << 20..=4 << 30).contains(&value) {
            bad(key, "from 1048576 (1 MiB) to 4294967296 (4 GiB)".into());
        }
    }
    // Up to the parser's message limit (`saml_xml::Limits::default`), which refuses beyond it
    // anyway.
    if !(16 * 1024..=256 * 1024).contains(&raw.saml.max_response_bytes) {
        bad(
            "saml.max_response_bytes",
            "from 16384 (16 KiB) to 262144 (256 KiB)".into(),
        );
    }
    if raw.saml.max_pending_requests == 0 {
        bad("saml.max_pending_requests", "must be positive".into());
    }

    let audit = validate_audit(&raw.audit, &resolve, &mut bad);
    let cns = raw
        .cns
        .as_ref()
        .map(|c| crate::features::cns::validate(c, &resolve, &mut bad));

    let mut services = crate::features::access::route_services(&raw.route);
    // An OpenID Provider client may name a service of its own (issue 24).
    if let Some(o) = &raw.oidc {
        services.extend(crate::features::oidc_op::client_services(o));
    }
    let represent = crate::features::represent::validate(
        &raw.represent,
        &services,
        &resolve,
        crate::leaf::clock::unix(crate::leaf::clock::system()),
        &mut bad,
    );
    let switchoff = crate::features::switchoff::validate(
        std::mem::take(&mut raw.switchoff),
        &services,
        &mut bad,
    );
    let legacy = raw
        .legacy
        .as_ref()
        .and_then(|l| crate::features::legacy::validate(l, &switchoff, &resolve, &mut bad));
    let store = validate_store(&raw.store, &resolve, &mut bad);
    let wallet = raw
        .wallet
        .as_ref()
        .map(|w| crate::features::wallet::validate(w, &public_base_url, &resolve, &mut bad));
    let admission = crate::features::admission::validate(&raw.admission, &mut bad);
    let oidc_rp = raw.oidc_rp.as_ref().map(|o| {
        let development = !secure_base || raw.server.allow_plain_http;
        crate::features::federation::validate(o, &public_base_url, development, &resolve, &mut bad)
    });

    // Wallet issuers and Wallet Providers trusted through OpenID Federation use `[oidc_rp]`'s
    // anchors and fetcher: each anchor they name must be one of its `[[trust_anchor]]`.
    let valid_wallet = wallet.as_ref().and_then(|w| w.as_ref());
    let federations = [
        (
            "wallet.federation",
            valid_wallet.and_then(|w| w.federation.as_ref()),
        ),
        (
            "wallet.wallet_providers.federation",
            valid_wallet
                .and_then(|w| w.providers.as_ref())
                .and_then(|p| p.federation.as_ref()),
        ),
    ];
    for (key, f) in federations {
        for (i, a) in f.iter().flat_map(|f| f.trust_anchors.iter().enumerate()) {
            let known = raw
                .oidc_rp
                .as_ref()
                .is_some_and(|o| o.trust_anchor_ids().any(|t| t == a));
            if !known {
                bad(
                    &format!("{key}.trust_anchors[{i}]"),
                    format!("{a:?} is not an [[oidc_rp.trust_anchor]] entity_id"),
                );
            }
        }
    }

    let (metadata_sources, state_dir) = metadata_sources(&raw, &resolve, &mut bad);

    // A route's wallet claims only mean something with `[wallet]`.
    if raw.wallet.is_none() {
        for i in crate::features::access::routes_with_wallet_claims(&raw.route) {
            problems.push(Problem {
                key: format!("route[{i}].wallet_claims"),
                message: "set, but [wallet] is not configured".into(),
            });
        }
    }

    let access = crate::features::access::validate(
        crate::features::access::RawAccess {
            metrics: raw.metrics,
            proxy: raw.proxy,
            token: raw.token,
            routes: raw.route,
            forward_auth: raw.forward_auth,
            mappings: raw.mapping,
        },
        &public_base_url,
        raw.sp.default_level,
        &resolve,
        &mut problems,
    );

    // After `access`: a client id must differ from every route's token audience.
    let oidc = raw.oidc.as_ref().map(|o| {
        let audiences: Vec<String> = access
            .as_ref()
            .map(|a| a.routes.iter().map(|r| r.audience.clone()).collect())
            .unwrap_or_default();
        let mut bad = |key: &str, message: String| {
            problems.push(Problem {
                key: key.into(),
                message,
            })
        };
        let oidc =
            crate::features::oidc_op::validate(o, &public_base_url, &audiences, &resolve, &mut bad);
        // A client's service must have a `[[represent.service]]`: else naming it would
        // silently give the person's own identity where a representation was meant.
        for (client, service) in oidc.iter().flat_map(|o| &o.services) {
            if represent.service(service).is_none() {
                bad(
                    "oidc.client.service",
                    format!("client {client:?}: {service:?} has no [[represent.service]]"),
                );
            }
        }
        oidc
    });

    let mut expiries = Vec::new();
    if let Ok(pem) = &cert_pem {
        if let Ok(k) = TrustedKey::from_certificate_pem(pem) {
            expiries.push(Expiry {
                kind: "sp_certificate",
                name: "sp".into(),
                key: "sp.cert_file".into(),
                not_after: k.not_after(),
            });
        }
    }
    for s in &metadata_sources {
        let index = raw.metadata.iter().position(|m| m.name == s.name);
        for k in &s.pinned {
            expiries.push(Expiry {
                kind: "metadata_signing_certificate",
                name: s.name.clone(),
                key: index.map_or_else(
                    || "metadata".into(),
                    |i| format!("metadata[{i}].signing_cert_file"),
                ),
                not_after: k.not_after(),
            });
        }
    }
    if let Some(a) = &access {
        for (key, kid, t) in &a.key_expiry {
            expiries.push(Expiry {
                kind: "token_key",
                name: kid.clone(),
                key: key.clone(),
                not_after: i64::try_from(*t).unwrap_or(i64::MAX),
            });
        }
    }
    if let Some(Some(c)) = &cns {
        for (key, file, t) in &c.crl_next_update {
            expiries.push(Expiry {
                kind: "cns_crl",
                name: file.clone(),
                key: key.clone(),
                not_after: *t,
            });
        }
    }
    if let Some(Some(w)) = &wallet {
        if let Some(t) = w.certificate_not_after {
            expiries.push(Expiry {
                kind: "wallet_certificate",
                name: "wallet".into(),
                key: "wallet.certificate_chain_file".into(),
                not_after: t,
            });
        }
    }
    let mut warnings = Vec::new();
    let now =
        i64::try_from(crate::leaf::clock::unix(crate::leaf::clock::system())).unwrap_or(i64::MAX);
    check_expiries(&expiries, now, &mut problems, &mut warnings);

    let entity_id = raw
        .sp
        .entity_id
        .clone()
        .unwrap_or_else(|| format!("{public_base_url}/saml/metadata"));
    let sp = SpConfig {
        entity_id,
        acs_url: format!("{public_base_url}/saml/acs"),
        acs_index: Some(0),
        attribute_consuming_service_index: Some(raw.sp.attribute_consuming_service_index),
    };

    match (
        listen,
        binding,
        default_level,
        sp_key,
        session_key,
        cert_pem,
        access,
        log,
    ) {
        (
            Ok(listen),
            Some(binding),
            Some(default_level),
            Some(sp_key),
            Some(session_key),
            Ok(_),
            Some(access),
            Some(log),
        ) if problems.is_empty()
            && !matches!(cns, Some(None))
            && !matches!(wallet, Some(None))
            && !matches!(oidc_rp, Some(None))
            && !matches!(oidc, Some(None)) =>
        {
            let metadata = render_metadata(&raw.sp, &sp, &public_base_url, &sp_key)?;
            Ok(Config {
                listen,
                management_listen,
                management_probes: raw.server.management_probes,
                public_base_url,
                sp,
                sp_key,
                binding,
                default_level,
                metadata,
                session_key,
                cookie_name,
                cookie_secure: raw.session.cookie_secure,
                session_ttl: Duration::from_secs(raw.session.ttl_seconds),
                shutdown_grace: Duration::from_secs(raw.server.shutdown_grace_seconds.min(300)),
                shutdown_delay: Duration::from_secs(raw.server.shutdown_delay_seconds),
                idle_timeout: (raw.session.idle_timeout_seconds > 0)
                    .then(|| Duration::from_secs(raw.session.idle_timeout_seconds)),
                clock_skew: Duration::from_secs(raw.saml.clock_skew_seconds),
                pending_ttl: Duration::from_secs(raw.saml.pending_request_ttl_seconds),
                max_response_bytes: usize::try_from(raw.saml.max_response_bytes)
                    .unwrap_or(usize::MAX),
                budgets: crate::features::store::Budgets {
                    pending_bytes: raw.saml.max_pending_bytes,
                    max_pending: raw.saml.max_pending_requests,
                    replay_bytes: raw.store.max_replay_bytes,
                    activity_bytes: raw.store.max_activity_bytes,
                    logout_index_bytes: raw.store.max_logout_index_bytes,
                },
                view_cache_bytes: raw.session.view_cache_bytes,
                metadata_sources,
                state_dir,
                access,
                audit,
                cns: cns.flatten(),
                legacy,
                wallet: wallet.flatten(),
                switchoff,
                log,
                config_poll,
                source_sha256: String::new(),
                store,
                expiries,
                warnings,
                admission,
                oidc_rp: oidc_rp.flatten().map(std::sync::Arc::new),
                represent,
                oidc: oidc.flatten(),
            })
        }
        _ => Err(problems),
    }
}

/// True for a plain-http URL to this machine (`127.0.0.1`, `[::1]` or `localhost`, any
/// port); a user part (`http://localhost@elsewhere`) is refused.
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || port.starts_with(':'),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost")
}

fn federation(name: &str) -> Option<Federation> {
    match name {
        "spid" => Some(Federation::Spid),
        "cie" => Some(Federation::Cie),
        "eidas" => Some(Federation::Eidas),
        _ => None,
    }
}

/// Validates `[[metadata]]`, `[[idp]]` and `[state]`. Local files are parsed (and verified
/// when pinned) here, so a bad one is a configuration error; URLs are fetched at run time.
fn metadata_sources(
    raw: &RawConfig,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> (Vec<SourceConfig>, Option<PathBuf>) {
    let mut out = Vec::new();
    // The key naming each entry of `out`'s local file, for problems found when parsing it.
    let mut file_keys = Vec::new();
    let mut names = HashSet::new();
    if raw.idp.is_empty() && raw.metadata.is_empty() {
        bad(
            "metadata",
            "no identity provider configured (add [[metadata]] or [[idp]] metadata_file = ...)"
                .into(),
        );
    }
    let defaults = metadata::RefreshBounds::default();
    // Longest accepted `max_refresh_seconds`.
    const MAX_REFRESH: Duration = Duration::from_secs(7 * 86_400);
    for (i, m) in raw.metadata.iter().enumerate() {
        let key = format!("metadata[{i}]");
        let name_ok = !m.name.is_empty()
            && m.name.len() <= 64
            && m.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            bad(
                &format!("{key}.name"),
                "must be 1-64 ASCII letters, digits, - or _".into(),
            );
        } else if m.name.starts_with("idp-") {
            bad(
                &format!("{key}.name"),
                "must not start with idp- (the names of [[idp]] sources)".into(),
            );
        } else if !names.insert(m.name.clone()) {
            bad(&format!("{key}.name"), format!("{:?} used twice", m.name));
        }
        let fed = federation(&m.federation);
        if fed.is_none() {
            bad(
                &format!("{key}.federation"),
                format!("{:?}: expected spid, cie or eidas", m.federation),
            );
        }
        let location = match (&m.url, &m.file) {
            (Some(url), None) => {
                if m.display_name.is_some() {
                    bad(
                        &format!("{key}.display_name"),
                        "only for a file source (a fetched document may list any number of IdPs)"
                            .into(),
                    );
                }
                if m.unsigned && !loopback_http(url) {
                    bad(
                        &format!("{key}.unsigned"),
                        "not with a url other than http://127.0.0.1, http://[::1] or http://localhost (development): pin signing_cert_file"
                            .into(),
                    );
                }
                if url.starts_with("https://") || url.starts_with("http://") {
                    Some(Location::Url(url.clone()))
                } else {
                    bad(&format!("{key}.url"), "must be an http(s) URL".into());
                    None
                }
            }
            (None, Some(file)) => Some(Location::File(resolve(file))),
            _ => {
                bad(&key, "set exactly one of url or file".into());
                None
            }
        };
        let mut pinned = Vec::new();
        match (&m.signing_cert_file, m.unsigned) {
            (Some(_), true) => bad(
                &format!("{key}.unsigned"),
                "is true but signing_cert_file is set: choose one".into(),
            ),
            (None, false) => bad(
                &format!("{key}.signing_cert_file"),
                "required: the certificate that signs this metadata (or unsigned = true, for development only)"
                    .into(),
            ),
            (Some(file), false) => {
                let path = resolve(file);
                match std::fs::read(&path) {
                    Ok(pem) => match TrustedKey::from_certificate_pem(&pem) {
                        Ok(k) => pinned.push(k),
                        Err(e) => bad(
                            &format!("{key}.signing_cert_file"),
                            format!("{}: {e}", path.display()),
                        ),
                    },
                    Err(e) => bad(
                        &format!("{key}.signing_cert_file"),
                        format!("{}: {e}", path.display()),
                    ),
                }
            }
            (None, true) => {}
        }
        let min = m
            .min_refresh_seconds
            .map_or(defaults.min, Duration::from_secs);
        let max = m
            .max_refresh_seconds
            .map_or(defaults.max, Duration::from_secs);
        if min.is_zero() {
            bad(
                &format!("{key}.min_refresh_seconds"),
                "must be positive".into(),
            );
        }
        if max < min {
            bad(
                &format!("{key}.max_refresh_seconds"),
                "must not be less than min_refresh_seconds".into(),
            );
        } else if max > MAX_REFRESH {
            bad(
                &format!("{key}.max_refresh_seconds"),
                format!("must be at most {} (7 days)", MAX_REFRESH.as_secs()),
            );
        }
        let timeout = m
            .timeout_seconds
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        if timeout.is_zero() || timeout > Duration::from_secs(600) {
            bad(
                &format!("{key}.timeout_seconds"),
                "must be between 1 and 600".into(),
            );
        }
        let max_bytes = m.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if max_bytes == 0 || max_bytes > 256 * 1024 * 1024 {
            bad(
                &format!("{key}.max_bytes"),
                "must be between 1 and 268435456".into(),
            );
        }
        let max_age = m.max_age_seconds.map_or(
            crate::features::registry::DEFAULT_MAX_AGE,
            Duration::from_secs,
        );
        if max_age.is_zero() || max_age > crate::features::registry::MAX_MAX_AGE {
            bad(
                &format!("{key}.max_age_seconds"),
                format!(
                    "must be between 1 and {}",
                    crate::features::registry::MAX_MAX_AGE.as_secs()
                ),
            );
        }
        if let (Some(fed), Some(location)) = (fed, location) {
            file_keys.push(format!("{key}.file"));
            out.push(SourceConfig {
                name: m.name.clone(),
                federation: fed,
                location,
                pinned,
                unsigned: m.unsigned,
                required: m.required,
                bounds: metadata::RefreshBounds { min, max },
                timeout,
                max_bytes,
                display_name: m.display_name.clone(),
                max_age,
            });
        }
    }
    // `[[idp]]` and `--idp-metadata`: unsigned local files, as before `[[metadata]]` existed.
    for (i, idp) in raw.idp.iter().enumerate() {
        let key = format!("idp[{i}]");
        let Some(fed) = federation(&idp.federation) else {
            bad(
                &format!("{key}.federation"),
                format!("{:?}: expected spid, cie or eidas", idp.federation),
            );
            continue;
        };
        let name = format!("idp-{i}");
        names.insert(name.clone());
        file_keys.push(format!("{key}.metadata_file"));
        out.push(SourceConfig {
            name,
            federation: fed,
            location: Location::File(resolve(&idp.metadata_file)),
            pinned: Vec::new(),
            unsigned: true,
            required: true,
            bounds: defaults,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            display_name: idp.display_name.clone(),
            max_age: crate::features::registry::DEFAULT_MAX_AGE,
        });
    }
    // Local files are checked now: a missing or broken file is a configuration error.
    let mut seen = HashSet::new();
    for (source, key) in out.iter().zip(&file_keys) {
        let Location::File(file) = &source.location else {
            continue;
        };
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                bad(key, format!("{}: {e}", file.display()));
                continue;
            }
        };
        match metadata::parse_idp_metadata(&bytes, source.federation, &source.pinned) {
            Ok(list) => {
                if let Some(name) = &source.display_name {
                    let at = key
                        .trim_end_matches(".metadata_file")
                        .trim_end_matches(".file");
                    if name.trim().is_empty() {
                        bad(&format!("{at}.display_name"), "is empty".into());
                    } else if list.len() != 1 {
                        bad(
                            &format!("{at}.display_name"),
                            format!(
                                "{} lists {} IdPs: a name fits one",
                                file.display(),
                                list.len()
                            ),
                        );
                    }
                }
                for d in list {
                    if !seen.insert(d.entity_id.clone()) {
                        bad(key, format!("{} listed twice", d.entity_id));
                    }
                }
            }
            Err(e) => bad(key, format!("{}: {e}", file.display())),
        }
    }
    let state_dir = raw.state.as_ref().map(|s| resolve(&s.dir));
    if state_dir.is_none() && out.iter().any(|s| matches!(s.location, Location::Url(_))) {
        bad(
            "state.dir",
            "required with URL metadata sources: the last good documents are kept there".into(),
        );
    }
    (out, state_dir)
}

/// Validates `[audit]` into the sink to open (`None`: auditing disabled).
fn validate_audit(
    raw: &RawAudit,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<crate::features::audit::Target> {
    if raw.max_file_bytes < 64 * 1024 {
        bad("audit.max_file_bytes", "must be at least 65536".into());
    }
    if raw.retention_days == 0 {
        bad("audit.retention_days", "must be positive".into());
    }
    if raw.commit_interval_us > 100_000 {
        bad(
            "audit.commit_interval_us",
            "must be at most 100000 (0.1 s): every login may wait that long".into(),
        );
    }
    let key = raw.key_file.as_ref().and_then(|f| {
        std::fs::read(resolve(f))
            .map_err(|e| format!("{}: {e}", f.display()))
            .and_then(|bytes| parse_session_key(&bytes))
            .map_err(|e| bad("audit.key_file", e))
            .ok()
    });
    if raw.writer.is_empty()
        || !raw
            .writer
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        bad(
            "audit.writer",
            "must be non-empty ASCII letters, digits, -, _ or .".into(),
        );
    }
    let postgres_url = match (&raw.postgres_url, &raw.postgres_url_file) {
        (Some(_), Some(_)) => {
            bad(
                "audit.postgres_url_file",
                "give postgres_url or postgres_url_file, not both".into(),
            );
            None
        }
        (Some(url), None) => Some(url.clone()),
        (None, Some(file)) => read_secret(&resolve(file))
            .map_err(|e| bad("audit.postgres_url_file", e))
            .ok(),
        (None, None) => None,
    };
    let ca = raw.postgres_ca_file.as_ref().map(|f| resolve(f));
    let tls = crate::features::audit::postgres::Tls::from_config(&raw.postgres_tls, ca.as_deref())
        .map_err(|e| bad("audit.postgres_tls", e))
        .ok();
    if let (Some(url), Some(tls)) = (&postgres_url, &tls) {
        if let Err(e) = crate::features::audit::postgres::check_url(url, tls) {
            bad("audit.postgres_url", e);
        }
    }
    if !raw.enabled {
        return None;
    }
    let retention = Duration::from_secs(raw.retention_days.saturating_mul(86_400));
    Some(match postgres_url {
        Some(url) => {
            crate::features::audit::Target::Postgres(crate::features::audit::postgres::PgOptions {
                url,
                tls: tls.unwrap_or(crate::features::audit::postgres::Tls::Disable),
                writer: raw.writer.clone(),
                key,
                retention,
            })
        }
        None => crate::features::audit::Target::File(crate::features::audit::file::Options {
            dir: resolve(&raw.dir),
            max_file_bytes: raw.max_file_bytes,
            retention,
            key,
            commit_interval: Duration::from_micros(raw.commit_interval_us),
        }),
    })
}

/// A one-line secret file (a URL with a password, mounted from a Kubernetes Secret): the
/// content without surrounding white space. The message names the file, never the content.
fn read_secret(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(value.to_owned())
}

/// Validates `[store]`. Nothing connects here: a Redis that is down at start is the
/// runtime's concern (logins answer 503 until it is back), not a configuration error.
fn validate_store(
    raw: &RawStore,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> StoreBackend {
    if !(1..=60_000).contains(&raw.connect_timeout_ms) {
        bad("store.connect_timeout_ms", "must be 1..=60000".into());
    }
    if !(1..=60_000).contains(&raw.command_timeout_ms) {
        bad("store.command_timeout_ms", "must be 1..=60000".into());
    }
    if !(1..=64).contains(&raw.pool_size) {
        bad("store.pool_size", "must be 1..=64".into());
    }
    if raw.key_prefix.is_empty()
        || raw.key_prefix.len() > 64
        || !raw.key_prefix.bytes().all(|b| b.is_ascii_graphic())
    {
        bad(
            "store.key_prefix",
            "must be 1 to 64 printable ASCII characters without spaces".into(),
        );
    }
    match raw.backend.as_str() {
        "memory" => {
            if raw.url.is_some() || raw.url_file.is_some() {
                bad(
                    "store.url",
                    "only for backend = \"redis\" (the memory backend has no URL)".into(),
                );
            }
            StoreBackend::Memory
        }
        "redis" => {
            let url = match (&raw.url, &raw.url_file) {
                (Some(u), None) => Some(u.clone()),
                (None, Some(f)) => read_secret(&resolve(f))
                    .map_err(|e| bad("store.url_file", e))
                    .ok(),
                (Some(_), Some(_)) => {
                    bad("store.url", "give url or url_file, not both".into());
                    None
                }
                (None, None) => {
                    bad("store.url", "required for backend = \"redis\"".into());
                    None
                }
            };
            let url = url.filter(|u| {
                crate::features::store::redis::check_url(u)
                    .map_err(|e| bad("store.url", e))
                    .is_ok()
            });
            let tls = url.as_deref().is_some_and(|u| u.starts_with("rediss://"));
            let mut read_pem = |key: &str, file: &Option<PathBuf>| -> Option<Vec<u8>> {
                let file = file.as_ref()?;
                if !tls {
                    bad(key, "only with a rediss:// store.url (TLS)".into());
                    return None;
                }
                std::fs::read(resolve(file))
                    .map_err(|e| bad(key, format!("{}: {e}", file.display())))
                    .ok()
            };
            let ca = read_pem("store.ca_file", &raw.ca_file);
            let cert = read_pem("store.client_cert_file", &raw.client_cert_file);
            let key = read_pem("store.client_key_file", &raw.client_key_file);
            if tls && raw.client_cert_file.is_some() != raw.client_key_file.is_some() {
                bad(
                    "store.client_cert_file",
                    "client_cert_file and client_key_file go together".into(),
                );
            }
            let client = cert.zip(key);
            let tls = tls.then_some(crate::features::store::redis::RedisTls { ca, client });
            if let Some(t) = &tls {
                if let Err((k, e)) = t.check() {
                    bad(k, e);
                }
            }
            StoreBackend::Redis(crate::features::store::redis::RedisOptions {
                tls,
                url: url.unwrap_or_default(),
                key_prefix: raw.key_prefix.clone(),
                connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
                command_timeout: Duration::from_millis(raw.command_timeout_ms),
                pool_size: usize::try_from(raw.pool_size).unwrap_or(1),
            })
        }
        other => {
            bad(
                "store.backend",
                format!("{other:?}: expected \"memory\" or \"redis\""),
            );
            StoreBackend::Memory
        }
    }
}

/// Builds the SP metadata description from the configuration and renders every document
/// this SP publishes.
fn render_metadata(
    raw: &RawSp,
    sp: &SpConfig,
    base: &str,
    key: &SigningKey,
) -> Result<Vec<(&'static str, String)>, Vec<Problem>> {
    use saml::{
        Address, AssertionConsumerService, AttributeConsumingService, BillingContact, CieContact,
        Contact, Localized, MetadataProfile, Organization, Sector, SingleLogoutService, SloBinding,
        SpMetadata, VatId,
    };
    let o = &raw.organization;
    let problem = |key: &str, message: String| {
        vec![Problem {
            key: key.into(),
            message,
        }]
    };
    let localized = |it: &str, en: &Option<String>| Localized {
        it: it.to_owned(),
        en: en.clone(),
    };
    let sector = match o.sector.as_str() {
        "public" => Sector::Public,
        "private" => Sector::Private,
        other => {
            return Err(problem(
                "sp.organization.sector",
                format!("{other:?}: expected \"public\" or \"private\""),
            ));
        }
    };
    let services = if raw.attribute_consuming_service.is_empty() {
        vec![AttributeConsumingService {
            index: raw.attribute_consuming_service_index,
            service_name: Localized::it("Servizi online"),
            attributes: ["spidCode", "name", "familyName", "fiscalNumber", "email"]
                .map(String::from)
                .to_vec(),
        }]
    } else {
        raw.attribute_consuming_service
            .iter()
            .map(|a| AttributeConsumingService {
                index: a.index,
                service_name: Localized::it(a.service_name.clone()),
                attributes: a.attributes.clone(),
            })
            .collect()
    };
    // CIE releases only its minimum data set: keep what CIE can give of each service.
    let cie_services: Vec<AttributeConsumingService> = services
        .iter()
        .map(|s| AttributeConsumingService {
            attributes: s
                .attributes
                .iter()
                .filter(|a| saml::CIE_ATTRIBUTES.contains(&a.as_str()))
                .cloned()
                .collect(),
            ..s.clone()
        })
        .collect();
    let billing = raw.billing.as_ref().map(|b| BillingContact {
        contact: Contact {
            email: b.email.clone(),
            phone: b.phone.clone(),
        },
        name: b.name.clone(),
        vat: b.vat_code.as_ref().map(|code| VatId {
            country: b.vat_country.clone().unwrap_or_else(|| "IT".into()),
            code: code.clone(),
        }),
        fiscal_code: b.fiscal_code.clone(),
        address: Address {
            street: b.street.clone(),
            number: b.number.clone(),
            postal_code: b.postal_code.clone(),
            municipality: b.municipality.clone(),
            province: b.province.clone(),
            country: b.country.clone(),
        },
    });
    let cie = o.municipality.as_ref().map(|m| CieContact {
        municipality: m.clone(),
        province: o.province.clone(),
        country: o.country.clone(),
        nace2_code: o.nace2_code.clone(),
    });
    let publish_cie = cie.is_some();
    let description = SpMetadata {
        entity_id: sp.entity_id.clone(),
        assertion_consumer_services: vec![AssertionConsumerService {
            index: 0,
            url: sp.acs_url.clone(),
        }],
        single_logout_services: vec![SingleLogoutService {
            binding: SloBinding::HttpRedirect,
            url: format!("{base}/saml/slo"),
        }],
        organization: Organization {
            name: localized(&o.name, &o.name_en),
            display_name: localized(&o.display_name, &o.display_name_en),
            url: localized(&o.url, &None),
        },
        sector,
        ipa_code: o.ipa_code.clone(),
        vat_number: o.vat_number.clone(),
        fiscal_code: o.fiscal_code.clone(),
        contact: Contact {
            email: o.email.clone(),
            phone: o.phone.clone(),
        },
        billing,
        cie,
        attribute_consuming_services: services,
        cie_attribute_consuming_services: Some(cie_services),
    };
    let spid = match sector {
        Sector::Public => MetadataProfile::SpidPublic,
        Sector::Private => MetadataProfile::SpidPrivate,
    };
    let mut documents = vec![
        ("/saml/metadata", spid),
        ("/saml/metadata/eidas", MetadataProfile::Eidas),
    ];
    if publish_cie {
        documents.push(("/saml/metadata/cie", MetadataProfile::Cie));
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (path, profile) in documents {
        // The document ID only needs to be unique within the document.
        match saml::sp_metadata(&description, profile, key, "_varco-metadata") {
            Ok(xml) => out.push((path, xml)),
            Err(e) => problems.push(Problem {
                key: "sp.organization".into(),
                message: format!("{profile} metadata: {e}"),
            }),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
