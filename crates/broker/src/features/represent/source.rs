//! What every representation source shares: its raw configuration table, the trait, the
//! error, the defaults and the per-delegate cache. A child of `represent` that imports
//! nothing from it, so the kinds (`file`, `http`, `postgres`, `spid`) and the feature's
//! root all point here and never at each other.
//!
//! May import: the leaf.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use identity::Principal;
use identity::represent::{self, Representations, SourceKind};
use serde::Deserialize;

/// `[[represent.source]]`: one source; which keys apply depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    pub(crate) id: String,
    pub(crate) kind: String,
    // signed_file
    pub(crate) file: Option<PathBuf>,
    pub(crate) issuer: Option<String>,
    pub(crate) jwks_file: Option<PathBuf>,
    pub(crate) reload_seconds: Option<u64>,
    pub(crate) max_records: Option<usize>,
    // http
    pub(crate) url: Option<String>,
    pub(crate) bearer_token_file: Option<PathBuf>,
    pub(crate) client_cert_file: Option<PathBuf>,
    pub(crate) client_key_file: Option<PathBuf>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) timeout_ms: Option<u64>,
    // postgres (also `url`, `ca_file`)
    pub(crate) table: Option<String>,
    pub(crate) tls: Option<String>,
    pub(crate) pool_size: Option<usize>,
    // http, postgres
    pub(crate) cache_seconds: Option<u64>,
    pub(crate) max_bytes: Option<usize>,
    // spid_legal_person
    pub(crate) ttl_seconds: Option<u64>,
}

/// Why a source could not answer. Always fails closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The source could not be reached or answered wrongly (timeout, status, connection, no
    /// valid file): `reason` is a short stable word.
    Unavailable {
        /// `connect`, `timeout`, `status`, `too_large`, `io`, `no_file`, `query`.
        reason: &'static str,
        /// Detail for the log (never a fiscal code).
        detail: String,
    },
    /// The source answered, and its answer was refused as a whole.
    Refused(represent::Error),
}

impl SourceError {
    /// Stable code for the page, the log and metrics.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Unavailable { .. } => SOURCE_UNAVAILABLE,
            SourceError::Refused(_) => "represent.source_refused",
        }
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Unavailable { reason, detail } => {
                write!(f, "source unavailable ({reason}): {detail}")
            }
            SourceError::Refused(e) => write!(f, "{} ({})", e, e.code()),
        }
    }
}

/// The code of a lookup that could not be answered.
pub const SOURCE_UNAVAILABLE: &str = "represent.source_unavailable";

/// A boxed future, so sources of different kinds fit one trait object.
pub type Lookup<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<Representations>, SourceError>> + Send + 'a>>;

/// One configured source of representations.
pub trait RepresentationSource: Send + Sync {
    /// The configured id (`[[represent.source]] id`), copied into each record's `source`.
    fn id(&self) -> &str;
    /// What kind of source it is.
    fn kind(&self) -> SourceKind;
    /// The representations naming `delegate` (at least: a source may answer with more),
    /// verified at `now`; cached for a short while by the sources that do I/O per delegate.
    fn lookup<'a>(&'a self, delegate: &'a Principal, now: u64) -> Lookup<'a>;
}

/// Default seconds a per-delegate answer is reused (HTTP, PostgreSQL): short, because a
/// revocation takes effect only when the cached answer expires.
pub const DEFAULT_CACHE_SECONDS: u64 = 30;
/// Default seconds between checks of a signed file for a new version.
pub const DEFAULT_RELOAD_SECONDS: u64 = 10;
/// Default HTTP deadline, milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// Default lifetime of a SPID legal-person representation after the login (8 hours; the
/// session's own expiry ends it sooner).
pub const DEFAULT_SPID_TTL: u64 = 8 * 3600;
/// Most delegates whose answers one source keeps cached.
const CACHE_ENTRIES: u64 = 10_000;

/// A per-delegate answer cache: bounded in entries; each entry carries the (injected) time
/// it was fetched, which decides its use, and moka drops it after `ttl` in any case.
pub(crate) fn answer_cache_at(
    ttl: Duration,
) -> moka::sync::Cache<String, (u64, Arc<Representations>)> {
    moka::sync::Cache::builder()
        .max_capacity(CACHE_ENTRIES)
        .time_to_live(ttl)
        .build()
}
