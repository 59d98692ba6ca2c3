//! What every login route (SAML ACS, CNS, legacy) shares: the login-binding cookie, the
//! session cookie (set and cleared), the audit append that must precede any
//! session cookie, and the "try again later" answers.
//!
//! May import: the state, `features`, the leaf.

use hyper::header;
use hyper::{Response, StatusCode};

use crate::features::audit;
use crate::leaf::http::{Body, html, session_cookie, set};
use crate::leaf::pages;
use crate::state::State;

/// The cookie binding a login to the browser that started it. Over https it carries the
/// `__Host-` prefix, so no sibling domain or plain-http page can plant one (login CSRF by
/// cookie tossing); plain-http development hosts cannot use the prefix.
pub fn login_cookie(state: &State) -> &'static str {
    if state.config.cookie_secure {
        "__Host-varco_login"
    } else {
        "varco_login"
    }
}

/// The SPID level a login's `level` parameter asks for (`1`, `2`, `3`; absent or empty: the
/// configured default); `None` for anything else, which the route refuses.
pub(crate) fn requested_level(s: Option<&str>, default: saml::Level) -> Option<saml::Level> {
    match s {
        None | Some("") => Some(default),
        Some("1") => Some(saml::Level::L1),
        Some("2") => Some(saml::Level::L2),
        Some("3") => Some(saml::Level::L3),
        Some(_) => None,
    }
}

/// Adds the session cookie carrying `sealed` (the whole session lifetime) to `r`.
pub(crate) fn set_session_cookie(state: &State, r: &mut Response<Body>, sealed: &str) {
    let c = &state.config;
    session_cookie(
        r,
        &c.cookie_name,
        c.cookie_secure,
        sealed,
        c.session_ttl.as_secs(),
    );
}

/// Clears the session cookie in `r` (logout).
pub(crate) fn clear_session_cookie(state: &State, r: &mut Response<Body>) {
    session_cookie(
        r,
        &state.config.cookie_name,
        state.config.cookie_secure,
        "",
        0,
    );
}

/// Appends one audit record, timing it and counting failures (`/metrics`).
pub(crate) async fn timed_append(
    state: &State,
    now: std::time::SystemTime,
    record: Vec<u8>,
) -> Result<(), audit::AuditError> {
    timed_append_as(state, now, record.into(), &audit::Expected::default()).await
}

/// [`timed_append`] for the login that took `expected` ([`audit::Sink::expect`]), of a
/// record that may keep bytes beside it ([`audit::Sink::record`]).
pub(crate) async fn timed_append_as(
    state: &State,
    now: std::time::SystemTime,
    record: audit::Record,
    expected: &audit::Expected,
) -> Result<(), audit::AuditError> {
    let started = std::time::Instant::now();
    let result = state.audit.append_record(now, record, expected).await;
    state
        .metrics
        .audit_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(durable) => {
            if let Some(d) = durable {
                state.metrics.audit_batch.observe(d.batch as f64);
            }
            Ok(())
        }
        Err(e) => {
            state
                .metrics
                .audit_failures
                .with_label_values(&[e.code()])
                .inc();
            Err(e)
        }
    }
}

/// The stable code of a login refused because the store could not answer.
pub const STORE_UNAVAILABLE: &str = "broker_store_unavailable";

/// 503 for `/saml/login` when the pending request could not be stored.
pub(crate) fn store_unavailable(
    state: &State,
    e: crate::features::store::StoreError,
) -> Response<Body> {
    state
        .metrics
        .logins_refused
        .with_label_values(&[STORE_UNAVAILABLE, ""])
        .inc();
    tracing::info!(event = "login_refused", code = %STORE_UNAVAILABLE, detail = %e.code());
    unavailable_page(STORE_UNAVAILABLE, None)
}

/// The route a login's `return_to` (already checked: a local path or an absolute URL on
/// an allowed host) lands on, if any: its policy, age limits and wallet claims apply to
/// the login.
pub(crate) fn route_of<'s>(
    state: &'s State,
    return_to: &str,
) -> Option<&'s crate::features::access::Route> {
    let https = state.config.public_base_url.starts_with("https://");
    let (host, path) = match return_to.split_once("://") {
        Some((_, rest)) => rest.split_at(rest.find('/').unwrap_or(rest.len())),
        None => (
            state
                .config
                .public_base_url
                .split_once("://")
                .map_or("", |(_, h)| h),
            return_to,
        ),
    };
    let host = crate::features::access::normalize_host(host, https)?;
    let path = path
        .split(['?', '#'])
        .next()
        .filter(|p| !p.is_empty())
        .unwrap_or("/");
    state.config.access.route(&host, path).ok()
}

/// The plain IT/EN "try again later" page with the stable code.
pub(crate) fn unavailable_page(code: &str, correlation: Option<&str>) -> Response<Body> {
    let reference = correlation
        .map(|c| format!(" (rif. {c})"))
        .unwrap_or_default();
    let reference_en = correlation
        .map(|c| format!(" (ref. {c})"))
        .unwrap_or_default();
    let mut r = html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::simple(
            "Servizio temporaneamente non disponibile",
            "Service temporarily unavailable",
            &format!(
                "L'accesso non è possibile in questo momento; riprova tra qualche minuto. Codice: {code}{reference}"
            ),
            &format!(
                "Sign-in is not possible right now; please try again in a few minutes. Code: {code}{reference_en}"
            ),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// 503 when the audit record of a completed login could not be made durable.
pub(crate) fn audit_unavailable(state: &State, e: audit::AuditError) -> Response<Body> {
    state
        .metrics
        .logins_refused
        .with_label_values(&[e.code(), ""])
        .inc();
    tracing::info!(event = "login_refused", code = %e.code());
    let mut r = html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::simple(
            "Servizio temporaneamente non disponibile",
            "Service temporarily unavailable",
            &format!(
                "Non è stato possibile registrare l'accesso; riprova più tardi. Codice: {}",
                e.code()
            ),
            &format!(
                "The sign-in could not be recorded; please try again later. Code: {}",
                e.code()
            ),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// The one ending of a login that succeeded (SAML ACS, wallet): seal the session, write its
/// SAML logout index (when it has a `SessionIndex`; 503 when it cannot), make the audit
/// record durable (no cookie without it: 503 otherwise), end the browser's `previous`
/// session, record the new one's activity, count it under `idp_label` (a bounded label),
/// and answer 303 to `location` with the session cookie.
pub(crate) async fn complete(
    state: &State,
    previous: Option<crate::leaf::session::Session>,
    evidence: &audit::Evidence,
    session: crate::leaf::session::Session,
    location: &str,
    idp_label: &str,
) -> Response<Body> {
    let Some(sealed) = state
        .sealer
        .seal(crate::leaf::session::Purpose::Session, &session)
    else {
        return crate::leaf::http::internal("broker_seal");
    };
    // For IdP-initiated logout: the session is found by what the IdP will name. Indexed
    // before the audit record and the cookie: a session the IdP's logout could not reach is
    // not issued (the index full of live sessions, or the store down: 503, counted).
    if let Some(index) = &session.session_index {
        if let Err(e) = state
            .store
            .index_session_for_logout(
                &session.idp,
                &session.name_id,
                index,
                &session.sid,
                state.config.session_ttl,
            )
            .await
        {
            tracing::warn!(event = "logout_index_failed", sid = %session.sid, code = %e.code());
            return store_unavailable(state, e);
        }
    }
    let now = (state.clock)();
    let record = state.audit.record(
        evidence,
        audit::Outcome::Completed { sid: &session.sid },
        now,
    );
    if let Err(e) = timed_append_as(state, now, record, &evidence.expected).await {
        return audit_unavailable(state, e);
    }
    if let Some(old) = previous {
        let remaining = std::time::Duration::from_secs(old.exp.saturating_sub(old.iat));
        crate::state::provider::revoke_session(state, &old.sid, remaining).await;
    }
    state.store.touch_session(&session.sid, session.iat).await;
    let auth = &session.principal.auth;
    tracing::info!(event = "login_completed", sid = %session.sid, idp = %session.idp, loa = %auth.loa.as_str(), method = %auth.method.as_str(), assertion_id = %session.assertion_id);
    state.metrics.login_completed(
        auth.method,
        idp_label,
        auth.loa,
        session.principal.profile,
        None,
    );
    let mut r = Response::new(http_body_util::Full::new(bytes::Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = header::HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    set_session_cookie(state, &mut r, &sealed);
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// The `Set-Cookie` value binding a login to this browser (`browser`, 32 hex digits), alive
/// `max_age` seconds. Over https `SameSite=None`: the SAML IdP posts back cross-site (and
/// one cookie serves a SAML and a wallet login in the same browser); on plain-http
/// development hosts browsers refuse `None` without `Secure`, and IdP and SP share a site,
/// so `Lax` works there. `__Host-` cookies must have `Path=/`.
pub(crate) fn login_cookie_value(state: &State, browser: &str, max_age: u64) -> String {
    let attrs = if state.config.cookie_secure {
        "; Secure; SameSite=None"
    } else {
        "; SameSite=Lax"
    };
    format!(
        "{}={browser}; Path=/; HttpOnly; Max-Age={max_age}{attrs}",
        login_cookie(state)
    )
}
