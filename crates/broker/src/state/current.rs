//! The current session of a request: opened from its cookie through the view cache
//! (`state::views`), checked against the store (revoked, idle), and the bearer tokens minted
//! for it per audience.
//!
//! May import: the state, `features`, the leaf.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::{HeaderMap, Request};
use identity::TokenParams;

use crate::leaf::clock::unix;
use crate::leaf::session::{Purpose, Session};
use crate::state::State;
use crate::state::views::{View, ViewKey};

/// The opened session of `req`'s cookie, if valid and not expired at `now`.
pub(crate) async fn view<B>(state: &State, req: &Request<B>, now: u64) -> Option<Arc<View>> {
    let cookie = crate::leaf::http::cookie(req, &state.config.cookie_name)?;
    let key = ViewKey::of(cookie)?;
    let view = match state.views.cache.get(&key) {
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
                store_key: state.store.session_key(&session.sid),
                session,
                headers,
                tokens: Mutex::new(Vec::new()),
                answers: Mutex::new(Vec::new()),
            });
            state.views.cache.insert(key, v.clone());
            v
        }
    };
    live(state, &view, now).await.then_some(view)
}

/// Whether `view`'s session may still be used at `now`: before its absolute expiry, not
/// logged out, and not idle for longer than the idle timeout. Marks the activity.
async fn live(state: &State, view: &View, now: u64) -> bool {
    let session = &view.session;
    if session.exp <= now {
        return false;
    }
    let previous = match state
        .store
        .check_session_keyed(&session.sid, view.store_key, now)
        .await
    {
        crate::features::store::Activity::Revoked => return false,
        // No mark (first use, or the mark was dropped for lack of room): idle since login.
        // The login is never later than the real last use, so a dropped mark can end a
        // session early (counted as an eviction), never revive an idle one.
        crate::features::store::Activity::Seen(previous) => previous.unwrap_or(session.iat),
    };
    match state.config.idle_timeout {
        Some(idle) if now.saturating_sub(previous) > idle.as_secs() => {
            // Idle too long: this session is over for good, whatever comes next.
            let remaining = Duration::from_secs(session.exp.saturating_sub(now));
            crate::state::provider::revoke_session(state, &session.sid, remaining).await;
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
/// The headers of an allowed `/auth` answer for `view`'s own session and `audience`: the
/// identity headers, the token (when `token.header` is set; [`token_for`], so reissued at
/// half its lifetime) and `Cache-Control: no-store`. Built when the token changes and cloned
/// for every answer: a clone copies two tables and counts references, where building hashed
/// every header name (issue 20). `None` when the token cannot be minted.
pub(crate) fn own_answer(
    state: &State,
    view: &View,
    audience: &str,
    now: u64,
) -> Option<HeaderMap> {
    let token = match &state.config.access.token_header {
        Some(_) => Some(token_for(state, view, audience, now)?),
        None => None,
    };
    let mut answers = view
        .answers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, headers)) = answers
        .iter()
        .find(|(a, t, _)| **a == *audience && same_token(t, &token))
    {
        return Some(headers.clone());
    }
    let mut headers = HeaderMap::with_capacity(view.headers.len() + 3);
    for (name, value) in &view.headers {
        headers.insert(name.clone(), value.clone());
    }
    if let (Some(name), Some(value)) = (&state.config.access.token_header, &token) {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    // The server sets every answer's `X-Request-Id`: the slot is kept here so setting it
    // replaces a value instead of growing the clone (a clone has no spare room). "-" is what
    // an answer without an id says (`leaf::logging::new_request_id`).
    headers.insert(
        crate::leaf::http::X_REQUEST_ID,
        HeaderValue::from_static("-"),
    );
    answers.retain(|(a, _, _)| **a != *audience);
    answers.push((audience.into(), token, headers.clone()));
    Some(headers)
}

/// Whether two token values are equal: by address first, since a cached answer holds the very
/// value [`token_for`] hands out until it reissues one, then by bytes (comparing a token's
/// ~600 bytes was a tenth of an allowed answer's own work, issue 20).
fn same_token(a: &Option<HeaderValue>, b: &Option<HeaderValue>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (a, b) = (a.as_bytes(), b.as_bytes());
            std::ptr::eq(a, b) || a == b
        }
        (None, None) => true,
        _ => false,
    }
}

pub(crate) async fn current_session<B>(state: &State, req: &Request<B>) -> Option<Session> {
    let now = unix((state.clock)());
    view(state, req, now).await.map(|v| v.session.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_the_same_by_address_or_by_bytes() {
        let t = HeaderValue::from_str("Bearer a.b.c").unwrap();
        let copy = HeaderValue::from_bytes(t.as_bytes()).unwrap();
        let other = HeaderValue::from_str("Bearer a.b.d").unwrap();
        assert!(same_token(&Some(t.clone()), &Some(t.clone())));
        assert!(same_token(&Some(t.clone()), &Some(copy)));
        assert!(!same_token(&Some(t.clone()), &Some(other)));
        assert!(!same_token(&Some(t.clone()), &None));
        assert!(!same_token(&None, &Some(t)));
        assert!(same_token(&None, &None));
    }
}
