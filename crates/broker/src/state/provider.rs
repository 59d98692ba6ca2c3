//! The end of a session as the OpenID Provider sees it: every grant issued in the session is
//! revoked and every client with a `backchannel_logout_uri` gets a signed logout token
//! (Back-Channel Logout 1.0), queued off the request path. `revoke_session` is the one way
//! any path ends a session: `/logout`, `/saml/slo`, `/oidc/end_session`, the idle timeout
//! (`/auth` and the proxy), a new login replacing the browser's session, and a switch of
//! representation.
//!
//! May import: the state, `features`, the leaf.

use crate::features::oidc_op::records;
use crate::leaf::clock::unix;
use crate::leaf::session::random_hex;
use crate::state::State;

/// Ends session `sid` for good: revoked in the store (so every replica refuses its cookie
/// for `remaining`, its longest possible life) and, for the OpenID Provider, its grants
/// revoked and its clients' logout tokens queued. The one way a session ends, so no path
/// (logout, SLO, idle timeout, a new login, a representation switch) forgets the clients.
pub(crate) async fn revoke_session(state: &State, sid: &str, remaining: std::time::Duration) {
    state.store.revoke_session(sid, remaining).await;
    session_ended(state, sid).await;
}

/// Revokes the grants of session `sid` and queues the logout tokens. Never fails the caller:
/// the session is already ended in the store; a store error here is logged and counted.
async fn session_ended(state: &State, sid: &str) {
    let Some(oidc) = state.config.oidc.as_ref() else {
        return;
    };
    let members = match state.store.members(records::SESSION, sid).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(event = "oidc_session_end_failed", code = %e.code(), sid = %sid);
            return;
        }
    };
    let now = unix((state.clock)());
    let mut notified: Vec<&str> = Vec::new();
    for m in &members {
        let Some((client_id, grant)) = m.split_once(' ') else {
            continue;
        };
        // The person, for the token's `sub`, from the grant being revoked.
        let principal = match state.store.take_record(records::GRANT, grant).await {
            Ok(b) => b
                .and_then(|b| records::decode::<records::Grant>(&b))
                .map(|g| g.principal),
            Err(e) => {
                tracing::warn!(event = "oidc_grant_revoke_failed", code = %e.code(), sid = %sid);
                None
            }
        };
        let Some(client) = oidc.client(client_id) else {
            continue;
        };
        // One logout token per client and session, however many grants it holds.
        if notified.contains(&client_id) {
            continue;
        }
        notified.push(client_id);
        let (Some(uri), Some(sender)) = (&client.backchannel_logout_uri, &state.backchannel) else {
            continue;
        };
        let Some(jti) = random_hex(&state.rng, 16) else {
            continue;
        };
        let claims =
            oidc::logout::logout_token(&oidc.issuer, client, principal.as_ref(), sid, &jti, now);
        match state
            .config
            .access
            .keys
            .sign_claims(oidc::logout::LOGOUT_TYP, &claims, &state.rng)
        {
            Ok(token) => sender.send(uri.clone(), token),
            Err(e) => tracing::warn!(event = "oidc_logout_token_failed", code = %e.code()),
        }
    }
    if !members.is_empty() {
        let _ = state.store.delete_record(records::SESSION, sid).await;
        tracing::info!(event = "oidc_session_ended", sid = %sid, clients = notified.len());
    }
}
