//! Rate limits on the endpoints anyone may call without a session (`/saml/login`,
//! `/saml/acs`, `/saml/slo`, `/legacy/login`, `/cns/login`, `/wallet/login`,
//! `/wallet/response`): one bucket per client address
//! and route, one global bucket per route, both GCRA (the "generic cell rate algorithm": a
//! bucket is one number, the theoretical arrival time of the next request, so a check is
//! one compare-and-swap here or one short Lua script in Redis).
//!
//! The client address is `Access::client_ip` (the trusted-proxy rule the legacy throttle
//! uses), keyed by `client_key` (IPv6 by /64). With `[store] backend = "redis"` the buckets
//! live in Redis and are shared by the replicas, on Redis's clock; when Redis cannot answer,
//! each replica falls back to its own buckets (limits per replica instead of shared: still
//! limited, never opened, never closed), and returns to the shared ones when Redis answers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use prometheus::IntCounterVec;

use crate::features::access::client_key;
use crate::features::metrics::Metrics;
use crate::features::store::Store;
use crate::leaf::http::{Body, html, set};
use crate::leaf::pages;

/// The stable code of a rate-limited request (429).
pub const RATE_LIMITED: &str = "broker_rate_limited";

/// The limited routes (a fixed list: metric labels and bucket names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /saml/login`.
    SamlLogin,
    /// `POST /saml/acs`.
    Acs,
    /// `GET|POST /saml/slo`.
    Slo,
    /// `POST /legacy/login`.
    LegacyLogin,
    /// `GET /cns/login`.
    CnsLogin,
    /// `GET /wallet/login` (each makes a request, a key and a pending entry).
    WalletLogin,
    /// `POST /wallet/response` (decryption and verification on the heavy pool).
    WalletResponse,
}

impl Route {
    const ALL: [Route; 7] = [
        Route::SamlLogin,
        Route::Acs,
        Route::Slo,
        Route::LegacyLogin,
        Route::CnsLogin,
        Route::WalletLogin,
        Route::WalletResponse,
    ];

    /// The route's label (metrics, bucket keys).
    pub fn label(self) -> &'static str {
        match self {
            Route::SamlLogin => "saml_login",
            Route::Acs => "acs",
            Route::Slo => "slo",
            Route::LegacyLogin => "legacy_login",
            Route::CnsLogin => "cns_login",
            Route::WalletLogin => "wallet_login",
            Route::WalletResponse => "wallet_response",
        }
    }

    /// The limited route a request is for, if any.
    pub fn of(method: &hyper::Method, path: &str) -> Option<Route> {
        use hyper::Method;
        match (method, path) {
            // A login start and a login answer cost the same whatever the protocol: the OIDC
            // routes share the SAML ones' buckets (and their settings).
            (&Method::GET, "/saml/login" | "/oidc/login") => Some(Route::SamlLogin),
            (&Method::POST, "/saml/acs") | (&Method::GET, "/oidc/callback") => Some(Route::Acs),
            (&Method::GET | &Method::POST, "/saml/slo") => Some(Route::Slo),
            (&Method::POST, "/legacy/login") => Some(Route::LegacyLogin),
            (&Method::GET, "/cns/login") => Some(Route::CnsLogin),
            (&Method::GET, "/wallet/login") => Some(Route::WalletLogin),
            (&Method::POST, "/wallet/response") => Some(Route::WalletResponse),
            _ => None,
        }
    }

    fn index(self) -> usize {
        Route::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// One GCRA bucket's parameters, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Time between two requests at the sustained rate.
    pub interval_us: u64,
    /// How far ahead of the sustained rate a burst may run: `(burst - 1) × interval`.
    pub tolerance_us: u64,
}

impl Gcra {
    /// `count` requests per `period`, bursts of `burst`; `None` when `count` is 0 (no limit).
    pub fn new(count: u64, period: Duration, burst: u64) -> Option<Gcra> {
        if count == 0 {
            return None;
        }
        let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        let interval_us = (period_us / count).max(1);
        Some(Gcra {
            interval_us,
            tolerance_us: interval_us.saturating_mul(burst.max(1) - 1),
        })
    }

    /// One request at `now_us` against the bucket `tat`: admitted (and recorded), or the
    /// microseconds to wait.
    fn step(&self, tat: &AtomicU64, now_us: u64) -> Result<(), u64> {
        let mut current = tat.load(Ordering::Acquire);
        loop {
            let t = current.max(now_us);
            let ahead = t - now_us;
            if ahead > self.tolerance_us {
                return Err(ahead - self.tolerance_us);
            }
            match tat.compare_exchange_weak(
                current,
                t.saturating_add(self.interval_us),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }
}

/// The validated limits (`[admission]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Per client address and route.
    pub client: Option<Gcra>,
    /// Per route, all clients together.
    pub global: Option<Gcra>,
    /// Client buckets kept in memory at most (least recently used dropped first).
    pub clients: u64,
}

/// The limiter of one state.
pub struct Limiter {
    settings: RateLimits,
    clients: moka::sync::Cache<String, Arc<AtomicU64>>,
    globals: [AtomicU64; 7],
    limited: IntCounterVec,
}

impl Limiter {
    /// Buckets for `settings`, counting refusals in `metrics`.
    pub fn new(rate: &RateLimits, metrics: &Metrics) -> Limiter {
        let rate = rate.clone();
        // A bucket untouched for longer than its tolerance plus one interval is back to
        // "full": forgetting it then changes nothing.
        let idle = rate
            .client
            .map_or(Duration::from_secs(1), |g| {
                Duration::from_micros(g.tolerance_us.saturating_add(g.interval_us))
            })
            .max(Duration::from_secs(1));
        Limiter {
            clients: moka::sync::Cache::builder()
                .max_capacity(rate.clients)
                .time_to_idle(idle)
                .build(),
            settings: rate,
            globals: Default::default(),
            limited: metrics.rate_limited.clone(),
        }
    }

    /// The limits this limiter was built with.
    pub fn settings(&self) -> &RateLimits {
        &self.settings
    }

    /// Admits one request for `route` from `client` (when known), or says how long to wait.
    /// The client's bucket is checked first, so a flooding client is turned away without
    /// spending the route's global allowance.
    pub async fn check(
        &self,
        store: &Store,
        route: Route,
        client: Option<IpAddr>,
        now: SystemTime,
    ) -> Result<(), Duration> {
        let now_us = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        if let (Some(gcra), Some(ip)) = (self.settings.client, client) {
            let key = format!("{}:{}", route.label(), client_key(ip));
            let local = || {
                let tat = self.clients.get_with_by_ref(&key, Default::default);
                gcra.step(&tat, now_us)
            };
            if let Err(wait) = self.one(store, &key, gcra, local).await {
                return Err(self.refuse(route, "client", wait));
            }
        }
        if let Some(gcra) = self.settings.global {
            let key = format!("{}:*", route.label());
            let local = || {
                let tat = self.globals.get(route.index()).unwrap_or(&self.globals[0]);
                gcra.step(tat, now_us)
            };
            if let Err(wait) = self.one(store, &key, gcra, local).await {
                return Err(self.refuse(route, "global", wait));
            }
        }
        Ok(())
    }

    /// One bucket: shared in Redis when configured and answering, else this replica's own.
    async fn one(
        &self,
        store: &Store,
        key: &str,
        gcra: Gcra,
        local: impl FnOnce() -> Result<(), u64>,
    ) -> Result<(), u64> {
        match store
            .shared_rate(key, gcra.interval_us, gcra.tolerance_us)
            .await
        {
            Some(Ok(0)) => Ok(()),
            Some(Ok(wait)) => Err(wait),
            // Redis is down or slow (counted by the store): this replica's own bucket.
            Some(Err(_)) | None => local(),
        }
    }

    fn refuse(&self, route: Route, scope: &'static str, wait_us: u64) -> Duration {
        self.limited
            .with_label_values(&[route.label(), scope])
            .inc();
        Duration::from_micros(wait_us)
    }
}

/// 429 with `Retry-After` (whole seconds, at least 1) and the plain page with
/// [`RATE_LIMITED`].
pub fn limited_page(wait: Duration) -> Response<Body> {
    let mut r = html(
        StatusCode::TOO_MANY_REQUESTS,
        pages::simple(
            "Troppe richieste",
            "Too many requests",
            &format!(
                "Sono arrivate troppe richieste da questo indirizzo o verso questo servizio: \
                 riprova tra qualche secondo. Codice: {RATE_LIMITED}"
            ),
            &format!(
                "Too many requests from this address or to this service: please try again \
                 in a few seconds. Code: {RATE_LIMITED}"
            ),
        ),
    );
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let g = Gcra::new(60, Duration::from_secs(60), 3).unwrap();
        assert_eq!(g.interval_us, 1_000_000);
        let tat = AtomicU64::new(0);
        let t0 = 1_000_000_000;
        for _ in 0..3 {
            assert_eq!(g.step(&tat, t0), Ok(()));
        }
        assert_eq!(
            g.step(&tat, t0),
            Err(1_000_000),
            "the fourth waits one interval"
        );
        assert_eq!(g.step(&tat, t0 + 999_999), Err(1));
        assert_eq!(
            g.step(&tat, t0 + 1_000_000),
            Ok(()),
            "one interval later, one more"
        );
        assert!(g.step(&tat, t0 + 1_000_000).is_err());
        // Idle long enough, the whole burst is back.
        let later = t0 + 60_000_000;
        for _ in 0..3 {
            assert_eq!(g.step(&tat, later), Ok(()));
        }
        assert!(g.step(&tat, later).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        assert_eq!(Gcra::new(0, Duration::from_secs(1), 5), None);
    }
}
