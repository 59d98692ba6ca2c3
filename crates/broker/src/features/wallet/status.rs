//! The Token Status List of a credential: fetched over HTTPS from the `uri` the signed
//! credential names, bounded (deadline, body size), cached per URI, and checked by
//! `sdjwt::status::check` with the issuer's trusted keys. Fail closed: a list that cannot
//! be fetched, parsed or verified refuses the login (`wallet.status_unavailable`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// `[wallet.status]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatus {
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    #[serde(default = "default_max_bytes")]
    max_bytes: u64,
    #[serde(default = "default_cache")]
    cache_seconds: u64,
    /// Extra trust anchors for the HTTPS fetch (PEM); default: the Mozilla roots.
    ca_file: Option<PathBuf>,
}

impl Default for RawStatus {
    fn default() -> Self {
        RawStatus {
            timeout_seconds: default_timeout(),
            max_bytes: default_max_bytes(),
            cache_seconds: default_cache(),
            ca_file: None,
        }
    }
}

fn default_timeout() -> u64 {
    5
}
fn default_max_bytes() -> u64 {
    1024 * 1024
}
fn default_cache() -> u64 {
    300
}

/// `[wallet.status]`, validated.
#[derive(Debug, Clone)]
pub struct StatusConfig {
    /// Whole-request deadline.
    pub timeout: Duration,
    /// Largest body read.
    pub max_bytes: u64,
    /// How long a fetched list is reused.
    pub cache: Duration,
    /// Trust anchors for the fetch (`None`: the Mozilla roots).
    pub roots: Option<Arc<Vec<ureq::tls::Certificate<'static>>>>,
}

pub(crate) fn validate(
    raw: &RawStatus,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<StatusConfig> {
    let mut ok = true;
    if !(1..=30).contains(&raw.timeout_seconds) {
        bad("wallet.status.timeout_seconds", "from 1 to 30".into());
        ok = false;
    }
    if !(1024..=16 * 1024 * 1024).contains(&raw.max_bytes) {
        bad("wallet.status.max_bytes", "from 1024 to 16777216".into());
        ok = false;
    }
    if raw.cache_seconds > 86_400 {
        bad("wallet.status.cache_seconds", "at most 86400".into());
        ok = false;
    }
    let roots = match &raw.ca_file {
        None => None,
        Some(f) => match std::fs::read(resolve(f)) {
            Ok(b) => {
                let certs: Vec<_> = ureq::tls::parse_pem(&b)
                    .filter_map(|i| match i {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    bad("wallet.status.ca_file", "no certificate in the file".into());
                    ok = false;
                }
                Some(Arc::new(certs))
            }
            Err(e) => {
                bad("wallet.status.ca_file", format!("{}: {e}", f.display()));
                ok = false;
                None
            }
        },
    };
    ok.then(|| StatusConfig {
        timeout: Duration::from_secs(raw.timeout_seconds),
        max_bytes: raw.max_bytes,
        cache: Duration::from_secs(raw.cache_seconds),
        roots,
    })
}

/// Fetched status list tokens by URI, for `cache` each; bounded in count.
pub struct StatusCache {
    lists: moka::sync::Cache<String, Arc<str>>,
    ttl: Duration,
}

impl StatusCache {
    /// A cache keeping each list for `ttl` (zero: no caching).
    #[must_use]
    pub fn new(ttl: Duration) -> StatusCache {
        StatusCache {
            ttl,
            lists: moka::sync::Cache::builder()
                .max_capacity(1024)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
        }
    }

    /// The status list token at `uri`: from the cache, or fetched (blocking: call from
    /// `spawn_blocking`). `Err` carries a short reason for the log.
    pub fn get(&self, uri: &str, config: &StatusConfig) -> Result<Arc<str>, String> {
        if let Some(t) = self.lists.get(uri) {
            return Ok(t);
        }
        let token: Arc<str> = fetch(uri, config)?.into();
        if !config.cache.is_zero() {
            self.lists.insert(uri.to_owned(), token.clone());
        }
        Ok(token)
    }

    /// The lifetime this cache was built with.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Forgets `uri` (its list did not verify: do not keep serving it).
    pub fn forget(&self, uri: &str) {
        self.lists.invalidate(uri);
    }
}

fn fetch(uri: &str, config: &StatusConfig) -> Result<String, String> {
    if !uri.starts_with("https://") {
        return Err("status list uri is not https".into());
    }
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(roots) = &config.roots {
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(roots.clone()));
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            // The signed credential names the URL: no redirect elsewhere.
            .max_redirects(0)
            .https_only(true)
            .user_agent("varco-status")
            .tls_config(tls.build())
            .build(),
    );
    let mut response = agent
        .get(uri)
        .header("Accept", "application/statuslist+jwt")
        .call()
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("HTTP status {status}"));
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(config.max_bytes)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    String::from_utf8(body)
        .map(|s| s.trim().to_owned())
        .map_err(|_| "status list is not text".into())
}
