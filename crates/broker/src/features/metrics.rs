//! Every metric Varco exposes, named in one place, and the `/metrics` rendering (Prometheus
//! text exposition format 0.0.4). docs/OPERATIONS.md lists each with its type, labels and
//! meaning; the Grafana dashboard and alert rules in deploy/ use only these names (tested).
//!
//! Why the `prometheus` crate rather than `prometheus-client`: it writes the classic text
//! format that `promtool check metrics` and every Prometheus version read, and its labelled
//! vectors are what the per-route and per-reason counters need; OpenMetrics-only output
//! would buy nothing here.
//!
//! Label sets are bounded: routes are a fixed list, status is a class (`2xx`…), codes are
//! the stable error codes of the crates, IdP labels are entity IDs from trusted metadata
//! (never a value a client chose: an unknown IdP is counted as `unknown`), sources are
//! configuration names.
//!
//! May import: the leaf, `features::registry`, `features::switchoff`.

use std::time::SystemTime;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::features::registry::Refresher;

/// Metric names (the contract with dashboards and alerts).
pub mod names {
    /// Counter: HTTP requests by route and status class.
    pub const HTTP_REQUESTS: &str = "varco_http_requests_total";
    /// Histogram: HTTP request duration by route, seconds (until the response head).
    pub const HTTP_DURATION: &str = "varco_http_request_duration_seconds";
    /// Counter: logins started (AuthnRequests sent) by federation, IdP and level.
    pub const LOGINS_STARTED: &str = "varco_logins_started_total";
    /// Counter: logins completed (session issued) by method, IdP and LoA.
    pub const LOGINS_COMPLETED: &str = "varco_logins_completed_total";
    /// Counter: logins refused by error code and SPID ErrorCode (`nr19`…`nr30`, or empty).
    pub const LOGINS_REFUSED: &str = "varco_logins_refused_total";
    /// Counter: replayed or mis-correlated Responses refused, by kind.
    pub const REPLAYS_REFUSED: &str = "varco_replays_refused_total";
    /// Counter: forward-auth and proxy decisions by outcome.
    pub const ACCESS_DECISIONS: &str = "varco_access_decisions_total";
    /// Counter: downstream tokens minted.
    pub const TOKENS_MINTED: &str = "varco_tokens_minted_total";
    /// Counter: representation decisions at `/auth`, the proxy and `/represent`, by outcome
    /// (`own`, `acting`, `chooser`, `chosen`, or a `represent.*`/`identity.age_*` code).
    pub const REPRESENT_DECISIONS: &str = "varco_represent_decisions_total";
    /// Counter: representation source lookups that failed (fail closed), by source and
    /// reason.
    pub const REPRESENT_SOURCE_ERRORS: &str = "varco_represent_source_errors_total";
    /// Counter: OpenID Provider answers by endpoint and outcome (`ok` or a stable
    /// `oidc.*` code).
    pub const OIDC_REQUESTS: &str = "varco_oidc_requests_total";
    /// Counter: Back-Channel Logout deliveries by outcome (`sent`, `failed`, `dropped`
    /// when the queue was full).
    pub const OIDC_BACKCHANNEL: &str = "varco_oidc_backchannel_logouts_total";
    /// Counter: reverse-proxy failures by code.
    pub const PROXY_FAILURES: &str = "varco_proxy_failures_total";
    /// Counter: logouts.
    pub const LOGOUTS: &str = "varco_logouts_total";
    /// Counter: SP-initiated Single Logouts started (LogoutRequests sent), by binding.
    pub const SLO_STARTED: &str = "varco_slo_started_total";
    /// Counter: Single Logouts completed, by initiator (`sp`: a valid LogoutResponse came
    /// back; `idp`: an IdP LogoutRequest was honoured and answered).
    pub const SLO_COMPLETED: &str = "varco_slo_completed_total";
    /// Counter: Single Logout messages refused at `/saml/slo`, by stable error code.
    pub const SLO_REFUSED: &str = "varco_slo_refused_total";
    /// Gauge: seconds until the `validUntil` of each metadata source's current document.
    pub const METADATA_SECONDS_TO_VALID_UNTIL: &str = "varco_metadata_seconds_to_valid_until";
    /// Gauge: 1 for the current state of each metadata source.
    pub const METADATA_STATE: &str = "varco_metadata_source_state";
    /// Gauge: earliest signing-certificate expiry per IdP, Unix seconds.
    pub const METADATA_CERT_EXPIRY: &str =
        "varco_metadata_idp_certificate_expiry_timestamp_seconds";
    /// Counter: refresh attempts per source.
    pub const METADATA_REFRESH_ATTEMPTS: &str = "varco_metadata_refresh_attempts_total";
    /// Counter: refresh failures per source and reason.
    pub const METADATA_REFRESH_FAILURES: &str = "varco_metadata_refresh_failures_total";
    /// Gauge: number of trusted IdPs in the registry.
    pub const METADATA_IDPS: &str = "varco_metadata_idps";
    /// Histogram: time to make one audit record durable, seconds.
    pub const AUDIT_DURATION: &str = "varco_audit_append_duration_seconds";
    /// Counter: audit appends that failed, by code (a completed login then failed closed).
    pub const AUDIT_FAILURES: &str = "varco_audit_failures_total";
    /// Histogram: per record, how many records its group commit made durable together.
    pub const AUDIT_BATCH: &str = "varco_audit_batch_records";
    /// Histogram: time for one shared-store (Redis) operation, seconds, by operation.
    pub const STORE_DURATION: &str = "varco_store_operation_duration_seconds";
    /// Counter: shared-store (Redis) operations that failed, by operation and code.
    pub const STORE_ERRORS: &str = "varco_store_errors_total";
    /// Gauge: 1 once every required metadata source has loaded (readiness), else 0.
    pub const READY: &str = "varco_ready";
    /// Gauge: seconds until something the operator renews expires (negative: expired), by
    /// `kind` (`sp_certificate`, `token_key`, `metadata_signing_certificate`, `cns_crl`,
    /// `wallet_certificate`) and
    /// `name`.
    pub const SECONDS_TO_EXPIRY: &str = "varco_seconds_to_expiry";
    /// Gauge: 1 while the audit sink can take records, 0 while it is down (PostgreSQL
    /// unreachable at start or its last batch failed): logins then answer 503.
    pub const AUDIT_UP: &str = "varco_audit_up";
    /// Gauge: 1, labelled with the version.
    pub const BUILD_INFO: &str = "varco_build_info";
    /// Counter: logins completed by method, profile and switch-off exception category (the
    /// adoption curve of a switch-off).
    pub const LOGINS_BY_PROFILE: &str = "varco_logins_by_profile_total";
    /// Counter: legacy login forms refused by the failure throttle.
    pub const LEGACY_THROTTLED: &str = "varco_legacy_throttled_total";

    /// Counter: configuration reloads by trigger (`sighup`, `file`) and outcome (`applied`,
    /// `unchanged`, `invalid`, `restart_required`).
    pub const CONFIG_RELOADS: &str = "varco_config_reloads_total";
    /// Gauge: 1, labelled with the SHA-256 of the configuration file in force.
    pub const CONFIG_INFO: &str = "varco_config_info";
    /// Gauge: when the configuration in force was loaded, Unix seconds.
    pub const CONFIG_LOADED: &str = "varco_config_loaded_timestamp_seconds";
    /// Gauge: 1 when the last reload attempt succeeded (or none was made), 0 after a refused
    /// one, until the next success.
    pub const CONFIG_LAST_RELOAD_OK: &str = "varco_config_last_reload_successful";

    /// Gauge: CPU-heavy jobs (validation, signing, Argon2) running on the blocking pool.
    pub const HEAVY_IN_FLIGHT: &str = "varco_heavy_in_flight";
    /// Counter: requests refused with 503 `broker_busy` because the heavy pool was saturated,
    /// by kind of work (`response`, `logout`, `sign`, `password`).
    pub const HEAVY_REJECTED: &str = "varco_heavy_rejected_total";
    /// Counter: pending logins and logouts, and session activity marks, dropped for lack of
    /// room before their TTL (the in-memory store's byte budgets), by kind (`login`, `logout`,
    /// `activity`).
    pub const PENDING_EVICTED: &str = "varco_pending_evicted_total";
    /// Counter: requests refused with 429 `broker_rate_limited`, by route (`saml_login`,
    /// `acs`, `slo`, `legacy_login`, `cns_login`) and scope (`client`, `global`).
    pub const RATE_LIMITED: &str = "varco_rate_limited_total";
    /// Counter: OpenID Federation trust chain resolutions, by result (`ok` or stable code).
    pub const OIDC_RESOLUTIONS: &str = "varco_oidc_chain_resolutions_total";
    /// Counter: federation documents fetched (GET), by result (`ok`, `failed`).
    pub const OIDC_FETCHES: &str = "varco_oidc_federation_fetches_total";
    /// Gauge: earliest expiry among the OPs' current trust chains, Unix seconds (0: none).
    pub const OIDC_CHAIN_EXPIRY: &str = "varco_oidc_chain_expiry_timestamp_seconds";

    /// Counter: wallet attestations checked at the wallet response endpoint, by result
    /// (`accepted`, `refused`, `missing`).
    pub const WALLET_ATTESTATIONS: &str = "varco_wallet_attestations_total";

    /// Gauge: client connections open, on the main and CNS listeners together.
    pub const CONNECTIONS_OPEN: &str = "varco_connections_open";
    /// Counter: connections closed at accept because `admission.max_connections` were open,
    /// by listener (`main`, `cns`).
    pub const CONNECTIONS_REFUSED: &str = "varco_connections_refused_total";

    /// Every family name, for the tests that check dashboards and alert rules. Not
    /// `REPRESENT_SOURCE_ERRORS`: its `source` label comes from configuration, so it has no
    /// series to export before a source first fails.
    pub const ALL: [&str; 47] = [
        REPRESENT_DECISIONS,
        WALLET_ATTESTATIONS,
        OIDC_REQUESTS,
        OIDC_BACKCHANNEL,
        OIDC_RESOLUTIONS,
        OIDC_FETCHES,
        OIDC_CHAIN_EXPIRY,
        AUDIT_UP,
        SECONDS_TO_EXPIRY,
        RATE_LIMITED,
        PENDING_EVICTED,
        HEAVY_IN_FLIGHT,
        HEAVY_REJECTED,
        LOGINS_BY_PROFILE,
        LEGACY_THROTTLED,
        AUDIT_DURATION,
        STORE_DURATION,
        STORE_ERRORS,
        AUDIT_FAILURES,
        AUDIT_BATCH,
        HTTP_REQUESTS,
        HTTP_DURATION,
        LOGINS_STARTED,
        LOGINS_COMPLETED,
        LOGINS_REFUSED,
        REPLAYS_REFUSED,
        ACCESS_DECISIONS,
        TOKENS_MINTED,
        PROXY_FAILURES,
        LOGOUTS,
        SLO_STARTED,
        SLO_COMPLETED,
        SLO_REFUSED,
        METADATA_SECONDS_TO_VALID_UNTIL,
        METADATA_STATE,
        METADATA_CERT_EXPIRY,
        METADATA_REFRESH_ATTEMPTS,
        METADATA_REFRESH_FAILURES,
        METADATA_IDPS,
        READY,
        BUILD_INFO,
        CONFIG_RELOADS,
        CONFIG_INFO,
        CONFIG_LOADED,
        CONFIG_LAST_RELOAD_OK,
        CONNECTIONS_OPEN,
        CONNECTIONS_REFUSED,
    ];
}

/// The metric families of one process.
pub struct Metrics {
    registry: Registry,
    /// See [`names::HTTP_REQUESTS`].
    pub http_requests: IntCounterVec,
    /// See [`names::HTTP_DURATION`].
    pub http_duration: HistogramVec,
    /// See [`names::LOGINS_STARTED`].
    pub logins_started: IntCounterVec,
    /// See [`names::LOGINS_COMPLETED`].
    pub logins_completed: IntCounterVec,
    /// See [`names::LOGINS_REFUSED`].
    pub logins_refused: IntCounterVec,
    /// See [`names::REPLAYS_REFUSED`].
    pub replays_refused: IntCounterVec,
    /// See [`names::ACCESS_DECISIONS`].
    pub access_decisions: IntCounterVec,
    /// See [`names::TOKENS_MINTED`].
    pub tokens_minted: IntCounter,
    /// See [`names::REPRESENT_DECISIONS`].
    pub represent_decisions: IntCounterVec,
    /// See [`names::REPRESENT_SOURCE_ERRORS`].
    pub represent_source_errors: IntCounterVec,
    /// OpenID Provider answers by endpoint and outcome.
    pub oidc_requests: IntCounterVec,
    /// Back-Channel Logout deliveries by outcome.
    pub oidc_backchannel: IntCounterVec,
    /// See [`names::PROXY_FAILURES`].
    pub proxy_failures: IntCounterVec,
    /// See [`names::LOGOUTS`].
    pub logouts: IntCounter,
    /// See [`names::SLO_STARTED`].
    pub slo_started: IntCounterVec,
    /// See [`names::SLO_COMPLETED`].
    pub slo_completed: IntCounterVec,
    /// See [`names::SLO_REFUSED`].
    pub slo_refused: IntCounterVec,
    /// See [`names::AUDIT_DURATION`].
    pub audit_duration: prometheus::Histogram,
    /// See [`names::AUDIT_FAILURES`].
    pub audit_failures: IntCounterVec,
    /// See [`names::AUDIT_BATCH`].
    pub audit_batch: prometheus::Histogram,
    /// See [`names::LOGINS_BY_PROFILE`].
    pub logins_by_profile: IntCounterVec,
    /// See [`names::LEGACY_THROTTLED`].
    pub legacy_throttled: IntCounter,
    /// See [`names::STORE_DURATION`].
    pub store_duration: HistogramVec,
    /// See [`names::STORE_ERRORS`].
    pub store_errors: IntCounterVec,
    metadata_valid_until: GaugeVec,
    metadata_state: IntGaugeVec,
    metadata_cert_expiry: GaugeVec,
    metadata_attempts: IntCounterVec,
    metadata_failures: IntCounterVec,
    /// One scrape at a time: the metadata families are rebuilt from the refresher's stats.
    scrape: std::sync::Mutex<()>,
    metadata_idps: IntGauge,
    ready: IntGauge,
    /// See [`names::CONFIG_RELOADS`].
    pub config_reloads: IntCounterVec,
    config_info: IntGaugeVec,
    config_loaded: IntGauge,
    /// See [`names::CONFIG_LAST_RELOAD_OK`].
    pub config_last_reload_ok: IntGauge,
    /// See [`names::AUDIT_UP`]; set at each scrape.
    pub audit_up: IntGauge,
    seconds_to_expiry: GaugeVec,
    /// See [`names::HEAVY_IN_FLIGHT`].
    pub heavy_in_flight: IntGauge,
    /// See [`names::HEAVY_REJECTED`].
    pub heavy_rejected: IntCounterVec,
    /// See [`names::PENDING_EVICTED`].
    pub pending_evicted: IntCounterVec,
    /// See [`names::RATE_LIMITED`].
    pub rate_limited: IntCounterVec,
    /// See [`names::OIDC_RESOLUTIONS`].
    pub oidc_resolutions: IntCounterVec,
    /// See [`names::OIDC_FETCHES`].
    pub oidc_fetches: IntCounterVec,
    /// See [`names::WALLET_ATTESTATIONS`].
    pub wallet_attestations: IntCounterVec,
    /// See [`names::OIDC_CHAIN_EXPIRY`].
    pub oidc_chain_expiry: prometheus::Gauge,
    /// See [`names::CONNECTIONS_OPEN`].
    pub connections_open: IntGauge,
    /// See [`names::CONNECTIONS_REFUSED`].
    pub connections_refused: IntCounterVec,
    /// The per-request series of each route label, resolved once (issue 20): a request
    /// counts through these handles instead of looking its labels up in the family.
    route_series: Vec<RouteSeries>,
    /// `access_decisions{outcome="allow"}`, the outcome of nearly every forward-auth check.
    allowed: IntCounter,
}

/// The `http_requests` (one per status class) and `http_duration` children of one route
/// label, each resolved on its first sample, so a series still appears only once it has one.
#[derive(Default)]
struct RouteSeries {
    requests: [std::sync::OnceLock<IntCounter>; 5],
    duration: std::sync::OnceLock<prometheus::Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable!());
    // Names are constants, unique and valid: registration cannot fail.
    let _ = r.register(Box::new(c.clone()));
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable!());
    let _ = r.register(Box::new(g.clone()));
    g
}

fn fgauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable!());
    let _ = r.register(Box::new(g.clone()));
    g
}

impl Metrics {
    /// Every family registered, counters at zero.
    pub fn new() -> Self {
        use names::*;
        let r = Registry::new();
        let oidc_chain_expiry = prometheus::Gauge::new(
            OIDC_CHAIN_EXPIRY,
            "Earliest expiry among the OpenID Providers' current trust chains, Unix seconds.",
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(oidc_chain_expiry.clone()));
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                HTTP_DURATION,
                "HTTP request duration until the response head, by route.",
            )
            .buckets(vec![
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(http_duration.clone()));
        let access_decisions = counter(
            &r,
            ACCESS_DECISIONS,
            "Forward-auth and proxy decisions.",
            &["outcome"],
        );
        let tokens_minted = IntCounter::new(TOKENS_MINTED, "Downstream tokens minted.")
            .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(tokens_minted.clone()));
        let logouts = IntCounter::new(LOGOUTS, "Sessions ended by logout.")
            .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(logouts.clone()));
        let legacy_throttled = IntCounter::new(
            LEGACY_THROTTLED,
            "Legacy login forms refused by the failure throttle.",
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(legacy_throttled.clone()));
        let metadata_idps =
            IntGauge::new(METADATA_IDPS, "Trusted identity providers in the registry.")
                .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(metadata_idps.clone()));
        let ready = IntGauge::new(
            READY,
            "1 once every required metadata source has loaded once, else 0.",
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(ready.clone()));
        let audit_duration = prometheus::Histogram::with_opts(
            HistogramOpts::new(AUDIT_DURATION, "Time to make one audit record durable.").buckets(
                vec![
                    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
            ),
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(audit_duration.clone()));
        let audit_batch = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                AUDIT_BATCH,
                "Records made durable by the same group commit, counted once per record.",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(audit_batch.clone()));
        let store_duration = HistogramVec::new(
            HistogramOpts::new(
                STORE_DURATION,
                "Time for one shared-store (Redis) operation, by operation.",
            )
            .buckets(vec![
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                1.0,
            ]),
            &["op"],
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(store_duration.clone()));
        let build = gauge(
            &r,
            BUILD_INFO,
            "Build information; the value is 1.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let config_loaded = IntGauge::new(
            CONFIG_LOADED,
            "When the configuration in force was loaded, Unix seconds.",
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(config_loaded.clone()));
        let config_last_reload_ok = IntGauge::new(
            CONFIG_LAST_RELOAD_OK,
            "1 when the last configuration reload succeeded or none was attempted, else 0.",
        )
        .unwrap_or_else(|_| unreachable!());
        config_last_reload_ok.set(1);
        let _ = r.register(Box::new(config_last_reload_ok.clone()));
        let heavy_in_flight = IntGauge::new(
            HEAVY_IN_FLIGHT,
            "CPU-heavy jobs running on the blocking pool.",
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(heavy_in_flight.clone()));
        let connections_open = IntGauge::new(
            CONNECTIONS_OPEN,
            "Client connections open, main and CNS listeners together.",
        )
        .unwrap_or_else(|_| unreachable!());
        let _ = r.register(Box::new(connections_open.clone()));
        Metrics {
            oidc_resolutions: counter(
                &r,
                OIDC_RESOLUTIONS,
                "OpenID Federation trust chain resolutions, by result.",
                &["result"],
            ),
            wallet_attestations: counter(
                &r,
                WALLET_ATTESTATIONS,
                "Wallet attestations checked at the wallet response endpoint, by result.",
                &["result"],
            ),
            oidc_fetches: counter(
                &r,
                OIDC_FETCHES,
                "OpenID Federation documents fetched, by result.",
                &["result"],
            ),
            oidc_chain_expiry,
            connections_open,
            route_series: ROUTE_LABELS.iter().map(|_| RouteSeries::default()).collect(),
            connections_refused: counter(
                &r,
                CONNECTIONS_REFUSED,
                "Connections closed at accept because admission.max_connections were open.",
                &["listener"],
            ),
            rate_limited: counter(
                &r,
                RATE_LIMITED,
                "Requests refused by a rate limit, by route and scope.",
                &["route", "scope"],
            ),
            pending_evicted: counter(
                &r,
                PENDING_EVICTED,
                "Pending logins and logouts dropped for lack of room before their TTL.",
                &["kind"],
            ),
            heavy_in_flight,
            heavy_rejected: counter(
                &r,
                HEAVY_REJECTED,
                "Requests refused because the heavy-work pool was saturated, by work.",
                &["work"],
            ),
            http_requests: counter(
                &r,
                HTTP_REQUESTS,
                "HTTP requests by route and status class.",
                &["route", "status"],
            ),
            http_duration,
            logins_started: counter(
                &r,
                LOGINS_STARTED,
                "Logins started: AuthnRequests sent.",
                &["federation", "idp", "level"],
            ),
            logins_completed: counter(
                &r,
                LOGINS_COMPLETED,
                "Logins completed: sessions issued.",
                &["method", "idp", "loa"],
            ),
            logins_refused: counter(
                &r,
                LOGINS_REFUSED,
                "Logins refused, by stable error code and SPID ErrorCode.",
                &["code", "spid_error"],
            ),
            replays_refused: counter(
                &r,
                REPLAYS_REFUSED,
                "Replayed or mis-correlated Responses refused.",
                &["kind"],
            ),
            allowed: access_decisions.with_label_values(&["allow"]),
            access_decisions,
            tokens_minted,
            represent_decisions: counter(
                &r,
                REPRESENT_DECISIONS,
                "Representation decisions (acting for someone else, age limits).",
                &["outcome"],
            ),
            represent_source_errors: counter(
                &r,
                REPRESENT_SOURCE_ERRORS,
                "Representation source lookups that failed; the request was refused.",
                &["source", "reason"],
            ),
            oidc_requests: counter(
                &r,
                OIDC_REQUESTS,
                "OpenID Provider answers, by endpoint and outcome (ok or a stable code).",
                &["endpoint", "outcome"],
            ),
            oidc_backchannel: counter(
                &r,
                OIDC_BACKCHANNEL,
                "Back-Channel Logout tokens to clients, by outcome (sent, failed, dropped).",
                &["outcome"],
            ),
            proxy_failures: counter(&r, PROXY_FAILURES, "Reverse-proxy failures.", &["code"]),
            logouts,
            slo_started: counter(
                &r,
                SLO_STARTED,
                "SP-initiated Single Logouts started: LogoutRequests sent.",
                &["binding"],
            ),
            slo_completed: counter(
                &r,
                SLO_COMPLETED,
                "Single Logouts completed, by initiator (sp or idp).",
                &["initiator"],
            ),
            slo_refused: counter(
                &r,
                SLO_REFUSED,
                "Single Logout messages refused, by stable error code.",
                &["code"],
            ),
            audit_duration,
            audit_batch,
            audit_failures: counter(
                &r,
                AUDIT_FAILURES,
                "Audit appends that failed; the login failed closed.",
                &["code"],
            ),
            logins_by_profile: counter(
                &r,
                LOGINS_BY_PROFILE,
                "Logins completed by method, profile and switch-off exception category.",
                &["method", "profile", "category"],
            ),
            legacy_throttled,
            store_duration,
            store_errors: counter(
                &r,
                STORE_ERRORS,
                "Shared-store (Redis) operations that failed, by operation and code.",
                &["op", "code"],
            ),
            metadata_valid_until: fgauge(
                &r,
                METADATA_SECONDS_TO_VALID_UNTIL,
                "Seconds until the validUntil of the source's current document (negative once passed).",
                &["source"],
            ),
            metadata_state: gauge(
                &r,
                METADATA_STATE,
                "1 for the current state of each metadata source.",
                &["source", "state"],
            ),
            metadata_cert_expiry: fgauge(
                &r,
                METADATA_CERT_EXPIRY,
                "Earliest signing-certificate expiry of each IdP, Unix seconds.",
                &["source", "idp"],
            ),
            metadata_attempts: counter(
                &r,
                METADATA_REFRESH_ATTEMPTS,
                "Metadata refresh attempts since start.",
                &["source"],
            ),
            metadata_failures: counter(
                &r,
                METADATA_REFRESH_FAILURES,
                "Metadata refresh failures since start, by reason.",
                &["source", "reason"],
            ),
            metadata_idps,
            ready,
            config_reloads: counter(
                &r,
                CONFIG_RELOADS,
                "Configuration reloads by trigger and outcome.",
                &["trigger", "outcome"],
            ),
            config_info: gauge(
                &r,
                CONFIG_INFO,
                "The configuration in force; the value is 1.",
                &["sha256"],
            ),
            config_loaded,
            config_last_reload_ok,
            seconds_to_expiry: fgauge(
                &r,
                SECONDS_TO_EXPIRY,
                "Seconds until a certificate, token key or CRL expires (negative: expired).",
                &["kind", "name"],
            ),
            audit_up: {
                let g = IntGauge::new(AUDIT_UP, "1 while the audit sink can take records.")
                    .unwrap_or_else(|_| unreachable!());
                let _ = r.register(Box::new(g.clone()));
                g.set(1);
                g
            },
            scrape: std::sync::Mutex::new(()),
            registry: r,
        }
        .preset()
    }

    /// Starts the fixed-outcome counters at zero, so `rate()` has a series from the first
    /// scrape.
    fn preset(self) -> Self {
        for method in ["spid", "cie", "eidas", "cns", "legacy"] {
            for profile in ["citizen", "professional", "business", "intermediary"] {
                self.logins_by_profile
                    .with_label_values(&[method, profile, "none"]);
            }
        }
        for outcome in [
            "allow",
            "no_session",
            "step_up",
            "identity.method_not_allowed",
            "identity.profile_not_allowed",
            "no_route",
            crate::features::switchoff::NOT_ALLOWED,
        ] {
            self.access_decisions.with_label_values(&[outcome]);
        }
        for kind in [
            "broker_replay",
            "broker_unknown_request",
            "broker_browser_mismatch",
            "broker_unsolicited",
        ] {
            self.replays_refused.with_label_values(&[kind]);
        }
        for binding in ["redirect", "post"] {
            self.slo_started.with_label_values(&[binding]);
        }
        for initiator in ["sp", "idp"] {
            self.slo_completed.with_label_values(&[initiator]);
        }
        for code in ["slo_unsigned", "slo_redirect_signature", "broker_replay"] {
            self.slo_refused.with_label_values(&[code]);
        }
        for work in ["response", "logout", "sign", "password", "presentation"] {
            self.heavy_rejected.with_label_values(&[work]);
        }
        for route in [
            "saml_login",
            "acs",
            "slo",
            "legacy_login",
            "cns_login",
            "wallet_login",
            "wallet_response",
        ] {
            for scope in ["client", "global"] {
                self.rate_limited.with_label_values(&[route, scope]);
            }
        }
        for outcome in ["own", "acting", "chooser", "chosen"] {
            self.represent_decisions.with_label_values(&[outcome]);
        }
        for endpoint in ["authorize", "token", "userinfo", "end_session"] {
            self.oidc_requests.with_label_values(&[endpoint, "ok"]);
        }
        for outcome in ["sent", "failed", "dropped"] {
            self.oidc_backchannel.with_label_values(&[outcome]);
        }
        for kind in ["login", "logout", "activity"] {
            self.pending_evicted.with_label_values(&[kind]);
        }
        self.oidc_resolutions.with_label_values(&["ok"]);
        for result in ["ok", "failed"] {
            self.oidc_fetches.with_label_values(&[result]);
        }
        for result in ["accepted", "refused", "missing"] {
            self.wallet_attestations.with_label_values(&[result]);
        }
        for listener in ["main", "cns"] {
            self.connections_refused.with_label_values(&[listener]);
        }
        // Until `config_in_force` names the file (at start), the family exists empty-handed.
        self.config_info.with_label_values(&[""]).set(0);
        for trigger in ["sighup", "file"] {
            for outcome in ["applied", "unchanged", "invalid", "restart_required"] {
                self.config_reloads.with_label_values(&[trigger, outcome]);
            }
        }
        self
    }

    /// Counts one completed login: by method, IdP and LoA, and by method, profile and
    /// exception category (`none` without one; categories come from configuration, so the
    /// label set stays bounded).
    pub fn login_completed(
        &self,
        method: identity::Method,
        idp: &str,
        loa: identity::Loa,
        profile: identity::Profile,
        category: Option<&str>,
    ) {
        self.logins_completed
            .with_label_values(&[method.as_str(), idp, loa.as_str()])
            .inc();
        self.logins_by_profile
            .with_label_values(&[
                method.as_str(),
                profile.as_str(),
                category.unwrap_or("none"),
            ])
            .inc();
    }

    /// Records the configuration in force: its file's SHA-256 and when it was loaded.
    pub fn config_in_force(&self, sha256: &str, loaded_at: SystemTime) {
        self.config_info.reset();
        self.config_info.with_label_values(&[sha256]).set(1);
        let at = i64::try_from(crate::leaf::clock::unix(loaded_at)).unwrap_or(i64::MAX);
        self.config_loaded.set(at);
    }

    /// Sets [`names::SECONDS_TO_EXPIRY`] from `(kind, name, not_after)` at `now` (Unix
    /// seconds), dropping series of things no longer configured.
    pub fn expiries<'a>(&self, items: impl Iterator<Item = (&'a str, &'a str, i64)>, now: i64) {
        // Under the scrape lock: a concurrent render never sees the family between reset and
        // refill.
        let _one = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.seconds_to_expiry.reset();
        for (kind, name, not_after) in items {
            self.seconds_to_expiry
                .with_label_values(&[kind, name])
                .set(not_after.saturating_sub(now) as f64);
        }
    }

    /// Counts one forward-auth or proxy decision.
    pub fn decided(&self, outcome: &str) {
        if outcome == "allow" {
            self.allowed.inc();
        } else {
            self.access_decisions.with_label_values(&[outcome]).inc();
        }
    }

    /// Counts one answered request of route label `route` (a [`ROUTE_LABELS`] entry) with
    /// its status and latency (`varco_http_requests_total`, `varco_http_request_duration_seconds`).
    pub fn http_request(&self, route: &'static str, status: u16, latency: std::time::Duration) {
        let class = status_class(status);
        let seconds = latency.as_secs_f64();
        let series = ROUTE_LABELS
            .iter()
            .position(|l| *l == route)
            .and_then(|i| self.route_series.get(i));
        match series {
            Some(s) => {
                s.requests[class]
                    .get_or_init(|| {
                        self.http_requests
                            .with_label_values(&[route, STATUS_LABELS[class]])
                    })
                    .inc();
                s.duration
                    .get_or_init(|| self.http_duration.with_label_values(&[route]))
                    .observe(seconds);
            }
            None => {
                self.http_requests
                    .with_label_values(&[route, STATUS_LABELS[class]])
                    .inc();
                self.http_duration
                    .with_label_values(&[route])
                    .observe(seconds);
            }
        }
    }

    /// The text exposition, with the metadata gauges read from `refresher` at `now`.
    pub fn render(&self, refresher: &Refresher, now: SystemTime) -> String {
        let _one = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.metadata_valid_until.reset();
        self.metadata_state.reset();
        self.metadata_cert_expiry.reset();
        self.metadata_attempts.reset();
        self.metadata_failures.reset();
        for s in refresher.stats(now) {
            let source = s.source.as_ref();
            if let Some(secs) = s.seconds_to_valid_until {
                self.metadata_valid_until
                    .with_label_values(&[source])
                    .set(secs as f64);
            }
            for state in ["pending", "fresh", "stale", "expired"] {
                self.metadata_state
                    .with_label_values(&[source, state])
                    .set(i64::from(s.state.as_str() == state));
            }
            for (idp, expiry) in &s.idp_cert_expiry {
                self.metadata_cert_expiry
                    .with_label_values(&[source, idp])
                    .set(*expiry as f64);
            }
            // The refresher counts; these counters mirror its (monotonic) totals.
            self.metadata_attempts
                .with_label_values(&[source])
                .inc_by(s.attempts);
            for (reason, n) in &s.failures {
                self.metadata_failures
                    .with_label_values(&[source, reason.code()])
                    .inc_by(*n);
            }
        }
        self.ready.set(i64::from(refresher.registry().is_ready()));
        self.metadata_idps
            .set(i64::try_from(refresher.registry().snapshot().idps().len()).unwrap_or(0));
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The `route` label of a request path (a fixed set).
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        "/" => "home",
        "/whoami" => "whoami",
        "/auth" => "auth",
        "/login" => "login_page",
        "/logout" => "logout",
        "/represent" => "represent",
        "/saml/login" => "saml_login",
        "/saml/acs" => "saml_acs",
        "/cns/login" => "cns_login",
        "/legacy/login" => "legacy_login",
        "/saml/slo" => "saml_slo",
        "/.well-known/jwks.json" => "jwks",
        "/.well-known/openid-federation" => "oidc_entity_configuration",
        "/oidc/login" => "oidc_login",
        "/oidc/callback" => "oidc_callback",
        "/.well-known/openid-configuration" => "oidc_discovery",
        "/oidc/jwks" => "oidc_jwks",
        "/oidc/authorize" => "oidc_authorize",
        "/oidc/token" => "oidc_token",
        "/oidc/userinfo" => "oidc_userinfo",
        "/oidc/end_session" => "oidc_end_session",
        p if p.starts_with("/saml/metadata") => "saml_metadata",
        p if p.starts_with("/assets/") => "assets",
        "/wallet/login" => "wallet_login",
        "/wallet/wait" => "wallet_wait",
        "/wallet/complete" => "wallet_complete",
        "/wallet/response" => "wallet_response",
        p if p.starts_with("/wallet/request/") => "wallet_request",
        _ => "other",
    }
}

/// The `status` label: the status class.
pub fn status_label(code: u16) -> &'static str {
    STATUS_LABELS[status_class(code)]
}

/// The status classes, in [`status_class`] order.
const STATUS_LABELS: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_class(code: u16) -> usize {
    match code {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// Every `route` label: what [`route_label`] answers, and `proxy` (proxied requests).
pub const ROUTE_LABELS: &[&str] = &[
    "auth",
    "proxy",
    "healthz",
    "readyz",
    "metrics",
    "home",
    "whoami",
    "login_page",
    "logout",
    "represent",
    "saml_login",
    "saml_acs",
    "cns_login",
    "legacy_login",
    "saml_slo",
    "jwks",
    "oidc_entity_configuration",
    "oidc_login",
    "oidc_callback",
    "oidc_discovery",
    "oidc_jwks",
    "oidc_authorize",
    "oidc_token",
    "oidc_userinfo",
    "oidc_end_session",
    "saml_metadata",
    "assets",
    "wallet_login",
    "wallet_wait",
    "wallet_complete",
    "wallet_response",
    "wallet_request",
    "other",
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_route_label_has_its_pre_resolved_series() {
        let paths = [
            "/healthz",
            "/readyz",
            "/metrics",
            "/",
            "/whoami",
            "/auth",
            "/login",
            "/logout",
            "/represent",
            "/saml/login",
            "/saml/acs",
            "/cns/login",
            "/legacy/login",
            "/saml/slo",
            "/.well-known/jwks.json",
            "/.well-known/openid-federation",
            "/oidc/login",
            "/oidc/callback",
            "/.well-known/openid-configuration",
            "/oidc/jwks",
            "/oidc/authorize",
            "/oidc/token",
            "/oidc/userinfo",
            "/oidc/end_session",
            "/saml/metadata/cie",
            "/assets/x.css",
            "/wallet/login",
            "/wallet/wait",
            "/wallet/complete",
            "/wallet/response",
            "/wallet/request/1",
            "/elsewhere",
        ];
        for p in paths {
            assert!(ROUTE_LABELS.contains(&route_label(p)), "{p}");
        }
        // Counted through the handles, read back from the families: the same series.
        let m = Metrics::new();
        m.http_request("auth", 200, std::time::Duration::from_micros(150));
        m.http_request("auth", 204, std::time::Duration::from_micros(150));
        m.http_request("auth", 401, std::time::Duration::from_micros(150));
        m.decided("allow");
        m.decided("no_session");
        assert_eq!(m.http_requests.with_label_values(&["auth", "2xx"]).get(), 2);
        assert_eq!(m.http_requests.with_label_values(&["auth", "4xx"]).get(), 1);
        assert_eq!(
            m.http_duration
                .with_label_values(&["auth"])
                .get_sample_count(),
            3
        );
        assert_eq!(m.access_decisions.with_label_values(&["allow"]).get(), 1);
        assert_eq!(
            m.access_decisions.with_label_values(&["no_session"]).get(),
            1
        );
    }
}
