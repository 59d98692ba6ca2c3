//! The state in force: the validated configuration and everything built from it or kept
//! across reloads (store, sealer, metadata registry and refresher, metrics, audit sink, the
//! legacy throttle, the session-view cache, the upstream client). Also what more than one
//! route needs: the session views (`views`), the ending of a login (`login`), the ending of a
//! session and Single Logout toward an IdP (`logout`), and the holder swapped on reload
//! (`live`).
//!
//! May import: `config`, `features`, the leaf. Never `routes`, `server` or `cli`.

use std::sync::Arc;

use ring::rand::SystemRandom;

use crate::config::Config;
use crate::features::admission::heavy::Heavy;
use crate::features::admission::rate::Limiter;
use crate::features::audit;
use crate::features::store::Store;
use crate::leaf::clock::Clock;
use crate::leaf::session::Sealer;

pub mod acting;
pub mod current;
pub mod live;
pub mod login;
pub mod logout;
pub mod provider;
pub mod views;

/// Everything a request handler needs; shared by all connections.
pub struct State {
    /// Validated configuration (shared: several states may serve one configuration).
    pub config: Arc<Config>,
    /// Pending requests and consumed assertions (kept across reloads).
    pub store: Arc<Store>,
    /// Session cookie sealer (kept across reloads: the session key is restart-only).
    pub sealer: Arc<Sealer>,
    /// Randomness for IDs and nonces.
    pub rng: SystemRandom,
    /// The clock.
    pub clock: Clock,
    /// Opened sessions with their identity headers and tokens (forward-auth path); built
    /// from the configuration, so a reload starts an empty one.
    pub views: views::SessionViews,
    /// The HTTP client toward upstreams (reverse-proxy routes).
    pub upstreams: crate::leaf::http::Upstreams,
    /// Trusted IdPs from metadata, swapped by the refresher; read without a lock.
    pub registry: Arc<metadata::Registry>,
    /// The metadata refresher (its per-source statistics feed `/metrics`).
    pub refresher: Arc<crate::features::registry::Refresher>,
    /// Counters and histograms (`/metrics`), kept across reloads.
    pub metrics: Arc<crate::features::metrics::Metrics>,
    /// The login audit trail: written before any session cookie is sent.
    pub audit: Arc<audit::Sink>,
    /// Failure counters and verification permits of the legacy login (`[legacy]`).
    pub legacy: Option<Arc<crate::features::legacy::Throttle>>,
    /// Set at SIGTERM: `/readyz` answers 503 while the listener still accepts
    /// (`server.shutdown_delay_seconds`). Shared across reloads.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
    /// The pool CPU-heavy work runs on (`[admission]`), kept across a reload that leaves
    /// its settings alone.
    pub heavy: Arc<Heavy>,
    /// The rate limits' buckets (`[admission]`), kept across a reload that leaves the limits
    /// alone.
    pub limiter: Arc<Limiter>,
    /// What this replica put in the store for wallet logins (`[wallet]`: count and bytes
    /// bound), kept across a reload that leaves the bounds alone. The logins themselves
    /// are in the store.
    pub wallet: Arc<crate::features::wallet::pending::Ledger>,
    /// Fetched Token Status Lists, kept across reloads.
    pub wallet_status: Arc<crate::features::wallet::status::StatusCache>,
    /// The OpenID Connect relying party (`[oidc_rp]`): trust chains of the OPs, cached.
    pub oidc: Option<Arc<crate::features::federation::resolve::OidcRp>>,
    /// Back-Channel Logout delivery (`[oidc]`), kept across a reload that leaves its
    /// settings alone.
    pub backchannel: Option<Arc<crate::features::oidc_op::backchannel::Sender>>,
}

/// The OIDC relying party for `config`, its background refresher started when a runtime
/// is there to run it (it stops when the relying party is dropped).
fn oidc_rp(
    config: &Config,
    metrics: &Arc<crate::features::metrics::Metrics>,
    clock: Clock,
) -> Option<Arc<crate::features::federation::resolve::OidcRp>> {
    use crate::features::federation::resolve::OidcRp;
    let rp = Arc::new(OidcRp::new(config.oidc_rp.clone()?, Some(metrics.clone())));
    if tokio::runtime::Handle::try_current().is_ok() {
        OidcRp::spawn(&rp, clock);
    }
    Some(rp)
}

impl State {
    /// The state for `config` with a given store, metadata refresher, audit sink and clock;
    /// `None`, with the reason logged, when the session key is refused or the system refuses
    /// the heavy-work threads.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        refresher: Arc<crate::features::registry::Refresher>,
        audit: audit::Sink,
        clock: Clock,
    ) -> Option<State> {
        let registry = refresher.registry().clone();
        let Some(sealer) = Sealer::new(&config.session_key) else {
            tracing::error!(
                event = "session_key_refused",
                error = "session key refused by the AEAD"
            );
            return None;
        };
        let views = views::SessionViews::new(config.view_cache_bytes, config.session_ttl);
        let upstreams = crate::leaf::http::Upstreams::new(
            config.access.connect_timeout,
            config.access.response_timeout,
        );
        let metrics = crate::features::metrics::Metrics::new();
        store.bind_metrics(&metrics);
        // Every failure code has its series at 0 from the start (when audit is on), so the
        // first failure is an increase the alert sees.
        if !matches!(audit, audit::Sink::Off) {
            for e in audit::AuditError::ALL {
                metrics.audit_failures.with_label_values(&[e.code()]);
            }
        }
        let heavy = match Heavy::new(&config.admission, &metrics) {
            Ok(h) => Arc::new(h),
            Err(e) => {
                tracing::error!(
                    event = "heavy_threads_refused",
                    error = %e,
                    workers = config.admission.heavy_workers,
                    "the system refused the heavy-work threads (admission.heavy_workers)"
                );
                return None;
            }
        };
        let limiter = Arc::new(Limiter::new(&config.admission.rate, &metrics));
        let metrics = Arc::new(metrics);
        let oidc = oidc_rp(&config, &metrics, clock);
        let (wallet, wallet_status) = wallet_state(&config);
        let backchannel = config.oidc.as_ref().map(|o| {
            Arc::new(crate::features::oidc_op::backchannel::Sender::start(
                o.backchannel,
                metrics.oidc_backchannel.clone(),
            ))
        });
        Some(State {
            oidc,
            wallet,
            wallet_status,
            backchannel,
            store: Arc::new(store),
            sealer: Arc::new(sealer),
            rng: SystemRandom::new(),
            clock,
            views,
            upstreams,
            registry,
            refresher,
            metrics,
            audit: Arc::new(audit),
            stopping: Arc::default(),
            legacy: config
                .legacy
                .as_ref()
                .map(|c| Arc::new(crate::features::legacy::Throttle::new(c))),
            heavy,
            limiter,
            config,
        })
    }

    /// The state for a reloaded `config`, sharing everything that must outlive a reload
    /// (store, sealer, metadata, metrics, audit) with `self`. What is derived from the
    /// configuration starts anew: the session-view cache (identity headers and tokens per
    /// audience) and the upstream client (its timeouts). See [`crate::state::live`].
    pub fn reconfigured(&self, config: Arc<Config>) -> State {
        State {
            views: views::SessionViews::new(config.view_cache_bytes, config.session_ttl),
            upstreams: crate::leaf::http::Upstreams::new(
                config.access.connect_timeout,
                config.access.response_timeout,
            ),
            // The wallet logins in flight are in the store and survive any reload; the
            // ledger of what this replica put there is kept while its bounds are unchanged
            // (a new one starts empty: until the old entries expire, the store may hold up
            // to twice the bound from this replica).
            wallet: match wallet_settings(&config) {
                (ledger, _) if self.wallet.settings() == ledger => self.wallet.clone(),
                _ => wallet_state(&config).0,
            },
            wallet_status: match wallet_settings(&config) {
                (_, cache) if self.wallet_status.ttl() == cache => self.wallet_status.clone(),
                _ => wallet_state(&config).1,
            },
            store: self.store.clone(),
            sealer: self.sealer.clone(),
            rng: SystemRandom::new(),
            clock: self.clock,
            registry: self.registry.clone(),
            refresher: self.refresher.clone(),
            metrics: self.metrics.clone(),
            audit: self.audit.clone(),
            stopping: self.stopping.clone(),
            // The legacy failure counts survive a reload (a reload must not hand a password
            // guesser fresh attempts); a new throttle only when its own settings changed.
            legacy: match (
                &self.legacy,
                self.config.legacy.as_ref(),
                config.legacy.as_ref(),
            ) {
                (Some(t), Some(old), Some(new))
                    if old.throttle_settings() == new.throttle_settings() =>
                {
                    Some(t.clone())
                }
                (_, _, new) => new.map(|c| Arc::new(crate::features::legacy::Throttle::new(c))),
            },
            // Jobs running on the old pool finish under its permits; new ones use the new.
            heavy: if self.heavy.settings() == &config.admission {
                self.heavy.clone()
            } else {
                match Heavy::new(&config.admission, &self.metrics) {
                    Ok(h) => Arc::new(h),
                    // The pool in service works; a smaller one would refuse logins.
                    Err(e) => {
                        tracing::error!(
                            event = "heavy_threads_refused",
                            error = %e,
                            workers = config.admission.heavy_workers,
                            "the system refused the new heavy-work threads: the [admission] \
                             pool in service is kept until a restart"
                        );
                        self.heavy.clone()
                    }
                }
            },
            backchannel: match (&self.backchannel, config.oidc.as_ref()) {
                (Some(b), Some(o)) if b.settings() == o.backchannel => Some(b.clone()),
                (_, o) => o.map(|o| {
                    Arc::new(crate::features::oidc_op::backchannel::Sender::start(
                        o.backchannel,
                        self.metrics.oidc_backchannel.clone(),
                    ))
                }),
            },
            limiter: if self.limiter.settings() == &config.admission.rate {
                self.limiter.clone()
            } else {
                Arc::new(Limiter::new(&config.admission.rate, &self.metrics))
            },
            oidc: match (&self.oidc, &config.oidc_rp) {
                // The same validated table (a reload that did not touch it): keep the cache.
                (Some(rp), Some(c)) if Arc::ptr_eq(&rp.config, c) => Some(rp.clone()),
                _ => oidc_rp(&config, &self.metrics, self.clock),
            },
            config,
        }
    }
}

/// The wallet settings the per-process parts are built from: the ledger's bounds and
/// request lifetime, the status cache lifetime (placeholders when `[wallet]` is absent).
type WalletSettings = ((u64, u64, std::time::Duration), std::time::Duration);

fn wallet_settings(config: &Config) -> WalletSettings {
    match &config.wallet {
        Some(w) => ((w.max_pending, w.max_pending_bytes, w.ttl), w.status.cache),
        None => (
            (1, 1, std::time::Duration::from_secs(1)),
            std::time::Duration::ZERO,
        ),
    }
}

/// The wallet's pending requests and status cache for `config`.
fn wallet_state(
    config: &Config,
) -> (
    Arc<crate::features::wallet::pending::Ledger>,
    Arc<crate::features::wallet::status::StatusCache>,
) {
    let ((max, max_bytes, ttl), cache) = wallet_settings(config);
    (
        Arc::new(crate::features::wallet::pending::Ledger::new(
            max, max_bytes, ttl,
        )),
        Arc::new(crate::features::wallet::status::StatusCache::new(cache)),
    )
}
