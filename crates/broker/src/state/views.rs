//! Opened sessions as the forward-auth path and the reverse proxy see them: the cache of
//! opened cookies with their identity headers and tokens, and the step-up address.
//!
//! May import: the state, `features`, the leaf.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Request;
use hyper::header::{HeaderName, HeaderValue};
use identity::{Loa, TokenParams};

use crate::leaf::session::{Purpose, Session};
use crate::state::State;

/// Opened sessions, so the forward-auth path neither decrypts nor parses a cookie it has
/// already seen, with the identity header values built once and the bearer tokens minted
/// for the session.
///
/// Keyed by the cookie's last 32 characters (they cover the AEAD tag); a hit counts only if
/// the whole cookie is equal to the one that was opened, so the cache never accepts a cookie
/// the sealer did not. Entries live at most `session.ttl_seconds`; the session's own expiry
/// is checked on every use.
pub struct SessionViews {
    cache: moka::sync::Cache<Box<str>, Arc<View>>,
}

/// One opened session, ready for forward-auth answers.
pub struct View {
    cookie: Box<str>,
    /// The session.
    pub session: Session,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// `(audience, "Bearer <jwt>", minted at)`, reissued once half the lifetime is gone.
    tokens: Mutex<Vec<(Box<str>, HeaderValue, u64)>>,
}

const VIEW_KEY: usize = 32;

impl View {
    /// The identity headers (all but the token), built once for this session.
    pub(crate) fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

impl SessionViews {
    /// A cache bounded to `capacity` sessions, none kept longer than `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        SessionViews {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }
}

/// The opened session of `req`'s cookie, if valid and not expired at `now`.
pub(crate) async fn view<B>(state: &State, req: &Request<B>, now: u64) -> Option<Arc<View>> {
    let cookie = crate::leaf::http::cookie(req, &state.config.cookie_name)?;
    let key = cookie.get(cookie.len().checked_sub(VIEW_KEY)?..)?;
    let view = match state.views.cache.get(key) {
        Some(v) if *v.cookie == *cookie => v,
        _ => {
            let session: Session = state.sealer.open(Purpose::Session, cookie)?;
            let headers = state
                .config
                .access
                .headers
                .iter()
                .filter_map(|(name, claim)| {
                    // UTF-8 names (García) travel as raw bytes; control characters never do.
                    let v = claim.value(&session.principal)?;
                    Some((name.clone(), HeaderValue::from_bytes(v.as_bytes()).ok()?))
                })
                .collect();
            let v = Arc::new(View {
                cookie: cookie.into(),
                session,
                headers,
                tokens: Mutex::new(Vec::new()),
            });
            state.views.cache.insert(key.into(), v.clone());
            v
        }
    };
    live(state, &view.session, now).await.then_some(view)
}

/// Whether `session` may still be used at `now`: before its absolute expiry, not logged out,
/// and not idle for longer than the idle timeout. Marks the activity.
pub(crate) async fn live(state: &State, session: &Session, now: u64) -> bool {
    if session.exp <= now {
        return false;
    }
    let previous = match state.store.check_session(&session.sid, now).await {
        crate::features::store::Activity::Revoked => return false,
        crate::features::store::Activity::Seen(previous) => previous,
    };
    match (state.config.idle_timeout, previous) {
        (Some(idle), Some(last)) if now.saturating_sub(last) > idle.as_secs() => {
            // Idle too long: this session is over for good, whatever comes next.
            let remaining = Duration::from_secs(session.exp.saturating_sub(now));
            state.store.revoke_session(&session.sid, remaining).await;
            false
        }
        _ => true,
    }
}

/// The `Bearer` header value for `view`'s session and `audience`: cached, or minted now.
pub(crate) fn token_for(
    state: &State,
    view: &View,
    audience: &str,
    now: u64,
) -> Option<HeaderValue> {
    let access = &state.config.access;
    let mut tokens = view
        .tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, value, minted)) = tokens.iter().find(|(a, _, _)| **a == *audience) {
        // Reissue once half the lifetime is gone, so a downstream never gets a token
        // about to expire.
        if now.saturating_sub(*minted) < access.token_ttl / 2 {
            return Some(value.clone());
        }
    }
    let session = &view.session;
    let params = TokenParams {
        issuer: &access.issuer,
        audience,
        // Never beyond the session itself.
        ttl: access.token_ttl.min(session.exp.saturating_sub(now)),
    };
    let token = match access
        .keys
        .sign(&session.principal, &params, now, &state.rng)
    {
        Ok(t) => {
            state.metrics.tokens_minted.inc();
            t
        }
        Err(e) => {
            tracing::warn!(event = "token_mint_failed", code = %e.code());
            return None;
        }
    };
    let value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    tokens.retain(|(a, _, _)| **a != *audience);
    tokens.push((audience.into(), value.clone(), now));
    Some(value)
}

/// Where a session whose level is too low logs in again: the same SAML IdP at the level the
/// route needs, or, for a legacy session (whose credential cannot go higher), the choice page.
pub(crate) fn step_up_url(base: &str, session: &Session, loa: Loa, return_to: &str) -> String {
    if session.principal.auth.method == identity::Method::Legacy {
        return format!(
            "{base}/login?level={}&return_to={return_to}",
            spid_level(loa)
        );
    }
    format!(
        "{base}/saml/login?idp={}&level={}&return_to={return_to}",
        query_encode(&session.idp),
        spid_level(loa),
    )
}

pub(crate) fn spid_level(loa: Loa) -> u8 {
    match loa {
        Loa::Low => 1,
        Loa::Substantial => 2,
        Loa::High => 3,
    }
}

pub(crate) fn query_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
