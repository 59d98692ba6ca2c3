//! Trust chains of the configured OpenID Providers at run time: the pure
//! `oidfed::Resolver` driven with real HTTP GETs (the metadata fetcher's client: timeout,
//! body cap, no redirects), the result cached per OP until shortly before its `exp`, and the
//! last good chain kept while it is still valid when a refresh fails.
//!
//! Resolution never runs twice at once for one OP (single flight: the callers that arrive
//! while it runs wait for its result), and normally runs off the request path: [`OidcRp::spawn`]
//! resolves every OP at start and again `refresh_before` seconds before each chain expires.
//! A login that finds no usable chain resolves on demand, under the same single flight.
//!
//! Invariants, stated as absences:
//! - no chain used past its `exp` (the minimum along the chain, plus the resolver's skew);
//! - no OP whose chain ends at an anchor that is not configured, whose metadata violates a
//!   policy, or that lacks a required trust mark verified against its anchor;
//! - no key for an OP but the `jwks` of its resolved `openid_provider` metadata.
//!
//! [`OidcRp::entity_chain`] resolves any other entity (the wallet's credential issuers)
//! with the same resolver, fetcher and single flight; the caller judges the chain
//! (`features::wallet::trust::Federation`). Its cache is bounded and keeps no chain past
//! its `exp` and, unlike the OPs', no last-known-good: a failed resolution is a refusal.
//!
//! May import: the leaf, `features::registry` (fetch), `features::metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use oidfed::oidc::{OidcError, Provider};
use oidfed::{FetchFailed, Resolver, ResolverConfig, Step, TrustChain};

use super::{OidcRpConfig, OpConfig};
use crate::features::metrics::Metrics;
use crate::leaf::clock::{Clock, unix};

/// An OP as its current chain establishes it.
#[derive(Debug)]
pub struct Resolved {
    /// The configured OP.
    pub op: OpConfig,
    /// The verified chain.
    pub chain: TrustChain,
    /// Endpoints, keys and algorithms from the chain's `openid_provider` metadata.
    pub provider: Provider,
}

/// Why an OP cannot be used now. Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FedError {
    /// The OP is not in `[[oidc_rp.op]]`.
    UnknownOp,
    /// Chain resolution failed (`oidfed` code).
    Chain(oidfed::Error),
    /// The chain resolved but the OP metadata is unusable.
    Provider(OidcError),
    /// A required trust mark is missing or does not verify.
    TrustMark {
        /// The type.
        trust_mark_type: String,
    },
}

impl FedError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            FedError::UnknownOp => "broker_oidc_unknown_op",
            FedError::Chain(e) => e.code(),
            FedError::Provider(e) => e.code(),
            FedError::TrustMark { .. } => "broker_oidc_trust_mark",
        }
    }
}

impl std::fmt::Display for FedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FedError::UnknownOp => f.write_str("OpenID Provider not configured"),
            FedError::Chain(e) => write!(f, "trust chain: {e}"),
            FedError::Provider(e) => write!(f, "provider metadata: {e}"),
            FedError::TrustMark { trust_mark_type } => {
                write!(
                    f,
                    "required trust mark {trust_mark_type} missing or invalid"
                )
            }
        }
    }
}

/// The OIDC relying party's run-time state: configuration, resolver settings, the chain
/// cache and the single-flight locks.
pub struct OidcRp {
    /// `[oidc_rp]`.
    pub config: Arc<OidcRpConfig>,
    resolver: ResolverConfig,
    cache: Mutex<HashMap<String, Arc<Resolved>>>,
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fetches: AtomicU64,
    resolutions: AtomicU64,
    metrics: Option<Arc<Metrics>>,
    /// Our signed Entity Configuration and when it was signed: re-signed at most hourly, so
    /// the public endpoint costs no RSA signature per request.
    signed: Mutex<Option<(u64, Arc<str>)>>,
    /// OPs listed by the anchors' list endpoints (`list_ops`), beyond the configured ones.
    discovered: Mutex<Vec<OpConfig>>,
    /// Chains of other entities (wallet credential issuers), by Entity Identifier: at most
    /// [`MAX_ENTITY_CHAINS`], since the identifiers come from presentations.
    entities: Mutex<HashMap<String, Arc<TrustChain>>>,
}

/// Most chains of non-OP entities kept at once (the identifiers come from presentations:
/// the cache must not grow with them).
pub const MAX_ENTITY_CHAINS: usize = 256;

/// Most OPs taken from one anchor's list.
pub const MAX_LISTED_OPS: usize = 100;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl OidcRp {
    /// The runtime for `config`, reporting to `metrics`.
    pub fn new(config: Arc<OidcRpConfig>, metrics: Option<Arc<Metrics>>) -> OidcRp {
        let mut resolver =
            ResolverConfig::new(config.anchors.iter().map(|a| a.anchor.clone()).collect());
        resolver.allow_http = config.allow_http;
        OidcRp {
            config,
            resolver,
            cache: Mutex::default(),
            flights: Mutex::default(),
            fetches: AtomicU64::new(0),
            resolutions: AtomicU64::new(0),
            metrics,
            signed: Mutex::default(),
            discovered: Mutex::default(),
            entities: Mutex::default(),
        }
    }

    /// Our Entity Configuration, signed at most once an hour (`iat` at signing time, so its
    /// `exp` is always at least the configured lifetime minus an hour away).
    pub fn entity_configuration(&self, now: u64) -> Result<Arc<str>, oidfed::Error> {
        let mut cached = lock(&self.signed);
        if let Some((at, jwt)) = cached.as_ref() {
            if now >= *at && now - *at < 3_600 {
                return Ok(jwt.clone());
            }
        }
        let jwt: Arc<str> = self.config.entity_configuration(now)?.into();
        *cached = Some((now, jwt.clone()));
        Ok(jwt)
    }

    /// HTTP GETs made so far for federation documents (tests bound the work by it).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Resolutions started so far.
    pub fn resolution_count(&self) -> u64 {
        self.resolutions.load(Ordering::Relaxed)
    }

    /// The cached entry for `op` if still usable at `now`.
    fn cached(&self, entity_id: &str, now: u64) -> Option<Arc<Resolved>> {
        lock(&self.cache)
            .get(entity_id)
            .filter(|r| r.chain.is_valid_at(now, self.resolver.skew))
            .cloned()
    }

    fn fresh(&self, entity_id: &str, now: u64) -> Option<Arc<Resolved>> {
        lock(&self.cache)
            .get(entity_id)
            .filter(|r| now.saturating_add(self.config.refresh_before) < r.chain.exp())
            .cloned()
    }

    /// The OP named `key`: a configured one (short name or Entity Identifier), else one an
    /// anchor lists (Entity Identifier).
    pub fn op(&self, key: &str) -> Option<OpConfig> {
        self.config.op(key).cloned().or_else(|| {
            lock(&self.discovered)
                .iter()
                .find(|o| o.entity_id == key)
                .cloned()
        })
    }

    /// Every OP offered: the configured ones, then those the anchors list.
    pub fn ops(&self) -> Vec<OpConfig> {
        let mut all = self.config.ops.clone();
        for o in lock(&self.discovered).iter() {
            if !all.iter().any(|c| c.entity_id == o.entity_id) {
                all.push(o.clone());
            }
        }
        all
    }

    /// Reads each listing anchor's `federation_list_endpoint` (`entity_type=openid_provider`):
    /// the anchor's Entity Configuration verified with its configured keys, the list strict
    /// JSON, at most [`MAX_LISTED_OPS`] Entity Identifiers. A failure keeps the previous
    /// list. Every listed OP is still trusted only through its own chain.
    pub async fn discover(&self, now: u64) {
        for a in &self.config.anchors {
            let Some(federation) = a.list_ops else {
                continue;
            };
            match self.list(&a.anchor, now).await {
                Some(ids) => {
                    let mut d = lock(&self.discovered);
                    d.retain(|o| o.federation != federation);
                    for id in ids {
                        let host = id
                            .split("://")
                            .nth(1)
                            .unwrap_or(&id)
                            .split('/')
                            .next()
                            .unwrap_or(&id)
                            .to_owned();
                        d.push(OpConfig {
                            name: id.clone(),
                            entity_id: id,
                            federation,
                            display_name: host,
                        });
                    }
                }
                None => {
                    tracing::warn!(event = "oidc_op_list_failed", anchor = %a.anchor.entity_id);
                }
            }
        }
    }

    async fn list(&self, anchor: &oidfed::TrustAnchor, now: u64) -> Option<Vec<String>> {
        let ec = self
            .get(&oidfed::configuration_url(&anchor.entity_id))
            .await
            .ok()?;
        let st =
            oidfed::Statement::decode(&ec, &self.resolver.limits, self.config.allow_http).ok()?;
        st.verify(&anchor.jwks, "entity configuration").ok()?;
        st.check_time(now, self.resolver.skew).ok()?;
        if st.iss() != anchor.entity_id || st.sub() != anchor.entity_id {
            return None;
        }
        let endpoint = st
            .metadata()?
            .get("federation_entity")?
            .get("federation_list_endpoint")?
            .as_str()?
            .to_owned();
        if !oidfed::is_entity_id(
            endpoint.split('?').next().unwrap_or(""),
            self.config.allow_http,
        ) {
            return None;
        }
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        let body = self
            .get(&format!("{endpoint}{sep}entity_type=openid_provider"))
            .await
            .ok()?;
        let list = jose::json::parse(body.as_bytes(), 2).ok()?;
        let items = list.as_array()?;
        if items.len() > MAX_LISTED_OPS {
            return None;
        }
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .filter(|s| oidfed::is_entity_id(s, self.config.allow_http))
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The OP named `key` (short name or Entity Identifier) with a usable chain at `now`:
    /// from the cache, else resolved now (one resolution per OP at a time).
    pub async fn provider(&self, key: &str, now: u64) -> Result<Arc<Resolved>, FedError> {
        let op = self.op(key).ok_or(FedError::UnknownOp)?;
        if let Some(r) = self.cached(&op.entity_id, now) {
            return Ok(r);
        }
        self.refresh(&op, now, false).await
    }

    /// Resolves `op` unless another caller just did (single flight); with `early`, a chain
    /// that is still valid but due for refresh is refreshed too. On failure the last good
    /// chain is returned while it is valid.
    async fn refresh(
        &self,
        op: &OpConfig,
        now: u64,
        early: bool,
    ) -> Result<Arc<Resolved>, FedError> {
        let flight = lock(&self.flights)
            .entry(op.entity_id.clone())
            .or_default()
            .clone();
        let _one = flight.lock().await;
        // Someone else may have resolved while we waited.
        let again = if early {
            self.fresh(&op.entity_id, now)
        } else {
            self.cached(&op.entity_id, now)
        };
        if let Some(r) = again {
            return Ok(r);
        }
        self.resolutions.fetch_add(1, Ordering::Relaxed);
        let result = self.resolve(op, now).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        if let Some(m) = &self.metrics {
            m.oidc_resolutions.with_label_values(&[label]).inc();
        }
        match result {
            Ok(r) => {
                let r = Arc::new(r);
                let earliest = {
                    let mut cache = lock(&self.cache);
                    cache.insert(op.entity_id.clone(), r.clone());
                    cache.values().map(|c| c.chain.exp()).min()
                };
                if let (Some(m), Some(e)) = (&self.metrics, earliest) {
                    m.oidc_chain_expiry.set(e as f64);
                }
                tracing::info!(event = "oidc_chain_resolved", op = %op.name, anchor = %r.chain.anchor(), exp = r.chain.exp());
                Ok(r)
            }
            Err(e) => {
                tracing::warn!(event = "oidc_chain_failed", op = %op.name, code = %e.code(), detail = %e);
                // Last known good, within its own validity.
                match self.cached(&op.entity_id, now) {
                    Some(r) => Ok(r),
                    None => Err(e),
                }
            }
        }
    }

    async fn get(&self, url: &str) -> Result<String, FetchFailed> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let (u, timeout, max) = (
            url.to_owned(),
            self.config.fetch_timeout,
            self.config.max_document_bytes,
        );
        let r =
            tokio::task::spawn_blocking(move || crate::features::registry::fetch(&u, timeout, max))
                .await
                .ok()
                .and_then(Result::ok)
                .and_then(|b| String::from_utf8(b).ok());
        if let Some(m) = &self.metrics {
            let label = if r.is_some() { "ok" } else { "failed" };
            m.oidc_fetches.with_label_values(&[label]).inc();
        }
        r.ok_or(FetchFailed)
    }

    async fn resolve(&self, op: &OpConfig, now: u64) -> Result<Resolved, FedError> {
        let chain = self.chain_of(&op.entity_id, now).await?;
        let provider =
            Provider::from_chain(&chain, self.config.allow_http).map_err(FedError::Provider)?;
        self.check_trust_marks(&chain, now)?;
        Ok(Resolved {
            op: op.clone(),
            chain,
            provider,
        })
    }

    /// Each trust mark type the chain's anchor requires must be shown by the OP and verify
    /// against that anchor (issuer accredited in `trust_mark_issuers`, signature by a key the
    /// chain vouches for, `sub` the OP, not expired).
    fn check_trust_marks(&self, chain: &TrustChain, now: u64) -> Result<(), FedError> {
        let Some(anchor) = self
            .config
            .anchors
            .iter()
            .find(|a| a.anchor.entity_id == chain.anchor())
        else {
            return Err(FedError::Chain(oidfed::Error::State));
        };
        let opts = oidfed::trust_mark::Options {
            accept_without_exp: anchor.accept_trust_marks_without_exp,
            ..oidfed::trust_mark::Options::default()
        };
        for required in &anchor.required_trust_marks {
            let ok = chain
                .trust_marks()
                .iter()
                .filter(|t| &t.trust_mark_type == required)
                .any(|t| {
                    oidfed::trust_mark::verify(&t.trust_mark, chain, None, now, &opts)
                        .is_ok_and(|m| &m.trust_mark_type == required)
                });
            if !ok {
                return Err(FedError::TrustMark {
                    trust_mark_type: required.clone(),
                });
            }
        }
        Ok(())
    }

    /// The verified chain of any entity (a wallet credential issuer) at `now`: the same
    /// fetcher, anchors, limits and single flight as the OPs' chains, cached until the
    /// chain's `exp`. What the entity may do is the caller's decision (its entity type's
    /// metadata, its anchor, its trust marks); this only says the chain holds.
    pub async fn entity_chain(
        &self,
        entity_id: &str,
        now: u64,
    ) -> Result<Arc<TrustChain>, FedError> {
        let cached = |this: &Self| {
            lock(&this.entities)
                .get(entity_id)
                .filter(|c| c.is_valid_at(now, this.resolver.skew))
                .cloned()
        };
        if let Some(c) = cached(self) {
            return Ok(c);
        }
        // The identifier is attacker-chosen: a malformed one is refused before any fetch,
        // by `Resolver::start`, and before a flight entry is made for it.
        if !oidfed::is_entity_id(entity_id, self.config.allow_http) {
            return Err(FedError::Chain(oidfed::Error::EntityId { what: "subject" }));
        }
        let key = format!("entity {entity_id}");
        let flight = {
            let mut flights = lock(&self.flights);
            // Flights of entities that finished are dropped, so the map stays bounded.
            flights.retain(|k, f| !k.starts_with("entity ") || Arc::strong_count(f) > 1);
            flights.entry(key).or_default().clone()
        };
        let _one = flight.lock().await;
        if let Some(c) = cached(self) {
            return Ok(c);
        }
        self.resolutions.fetch_add(1, Ordering::Relaxed);
        let result = self.chain_of(entity_id, now).await;
        if let Some(m) = &self.metrics {
            let label = match &result {
                Ok(_) => "ok",
                Err(e) => e.code(),
            };
            m.oidc_resolutions.with_label_values(&[label]).inc();
        }
        match result {
            Ok(chain) => {
                let chain = Arc::new(chain);
                let mut entities = lock(&self.entities);
                entities.retain(|_, c| c.is_valid_at(now, self.resolver.skew));
                if entities.len() < MAX_ENTITY_CHAINS {
                    entities.insert(entity_id.to_owned(), chain.clone());
                }
                tracing::info!(event = "federation_entity_resolved", entity = %entity_id, anchor = %chain.anchor(), exp = chain.exp());
                Ok(chain)
            }
            Err(e) => {
                tracing::warn!(event = "federation_entity_failed", entity = %entity_id, code = %e.code(), detail = %e);
                Err(e)
            }
        }
    }

    /// Walks the resolver to a verified chain for `entity_id`.
    async fn chain_of(&self, entity_id: &str, now: u64) -> Result<TrustChain, FedError> {
        let (mut resolver, mut fetch) =
            Resolver::start(&self.resolver, entity_id, now).map_err(FedError::Chain)?;
        loop {
            let body = self.get(fetch.url()).await;
            match resolver
                .feed(body.as_deref().map_err(|e| *e))
                .map_err(FedError::Chain)?
            {
                Step::Fetch(next) => fetch = next,
                Step::Done(chain) => return Ok(*chain),
            }
        }
    }

    /// One pass of the background refresher: every OP without a fresh chain is resolved.
    /// Returns the earliest time a chain becomes due again.
    pub async fn refresh_due(&self, now: u64) -> Option<u64> {
        self.discover(now).await;
        let ops = self.ops();
        let mut next: Option<u64> = None;
        for op in &ops {
            let due = match self.refresh(op, now, true).await {
                Ok(r) => r.chain.exp().saturating_sub(self.config.refresh_before),
                // Failed: try again in a minute.
                Err(_) => now + 60,
            };
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    /// Runs the refresher in the background for as long as `this` lives.
    pub fn spawn(this: &Arc<OidcRp>, clock: Clock) {
        let weak: Weak<OidcRp> = Arc::downgrade(this);
        tokio::spawn(async move {
            loop {
                let Some(rp) = weak.upgrade() else { return };
                let now = unix(clock());
                let next = rp.refresh_due(now).await;
                drop(rp);
                let wait = next.map_or(300, |n| n.saturating_sub(now)).clamp(5, 3_600);
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
        });
    }
}
