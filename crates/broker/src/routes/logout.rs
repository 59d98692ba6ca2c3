//! `GET /logout` and its confirmation `POST /logout`: the session is revoked here first, then
//! Single Logout toward the IdP when it offers it (`state::logout`).
//!
//! May import: `state`, `config`, `features`, the leaf.

use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::leaf::clock::unix;
use crate::leaf::http::{Body, html, internal, set};
use crate::leaf::pages;
use crate::leaf::session::{Purpose, Sealer, Session};
use crate::state::State;
use crate::state::current::current_session;
use crate::state::login::clear_session_cookie;
use crate::state::logout::signed_out;

/// `GET /logout[?return_to=<url>]`: ends the session locally first (its ID is refused from
/// now on, the cookie is cleared), then, when the session's IdP publishes a
/// SingleLogoutService, sends it a signed LogoutRequest (see [`crate::state::logout`]); otherwise shows
/// a page, or returns to `return_to` when allowed.
///
/// A browser that says the navigation came from another site (`Sec-Fetch-Site:
/// cross-site`) gets a confirmation form instead (`POST /logout` with a token sealed for
/// this session): any site can link here, so logging out on a foreign link would let it
/// end citizens' sessions at will. Links from the portal itself (`same-origin`,
/// `same-site`), typed URLs (`none`) and clients that send no such header (older browsers,
/// scripts) log out at once.
pub async fn logout(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let return_to = crate::leaf::form::text_pairs(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned());
    let return_to = allowed_return_to(state, return_to.as_deref());
    let session = current_session(state, req).await;
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    match session {
        Some(s) if cross_site => {
            let now = unix((state.clock)());
            let token = LogoutToken {
                sid: s.sid.clone(),
                exp: now + LOGOUT_CONFIRM_TTL,
            };
            let Some(sealed) = state.sealer.seal(Purpose::LogoutForm, &token) else {
                return internal("broker_rng");
            };
            tracing::info!(event = "logout_confirmation_asked", sid = %s.sid);
            let mut r = html(
                StatusCode::OK,
                pages::logout_confirm(&sealed, return_to.as_deref()),
            );
            set(&mut r, header::CACHE_CONTROL, "no-store");
            r
        }
        session => end_session(state, session, return_to).await,
    }
}

/// How long a logout confirmation form stays valid, seconds.
const LOGOUT_CONFIRM_TTL: u64 = 600;

/// Largest `POST /logout` body (a token and a return address).
const MAX_LOGOUT_FORM: usize = 4096;

/// The token of a logout confirmation form: which session it may end, until when.
#[derive(serde::Serialize, serde::Deserialize)]
struct LogoutToken {
    sid: String,
    exp: u64,
}

/// `return_to` if the access rules allow it as a destination after logout.
fn allowed_return_to(state: &State, return_to: Option<&str>) -> Option<String> {
    return_to
        .and_then(|t| state.config.return_to(t))
        .map(str::to_owned)
}

/// `POST /logout` (`token`, `return_to`): the confirmation form of [`logout`]. The token must
/// have been sealed for the session this browser holds, and not be expired; otherwise 403
/// `logout_csrf` and the session lives on. Without a session there is nothing to end, and the
/// answer leaves cookies alone.
pub async fn logout_confirmed(state: &State, req: Request<Incoming>) -> Response<Body> {
    let session = current_session(state, &req).await;
    let collect = Limited::new(req.into_body(), MAX_LOGOUT_FORM).collect();
    let body = match tokio::time::timeout(Duration::from_secs(10), collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return logout_refused("logout_bad_form"),
    };
    let mut token = None;
    let mut return_to = None;
    for (k, v) in crate::leaf::form::text_pairs(&body) {
        match k.as_ref() {
            "token" => token = Some(v.into_owned()),
            "return_to" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let return_to = allowed_return_to(state, return_to.as_deref());
    // No session: nothing to end, and no cookie is cleared. A foreign page's auto-submitted
    // form arrives without the `SameSite=Lax` session cookie yet could still delete it with
    // a `Set-Cookie` in the answer.
    let Some(session) = session else {
        return signed_out(
            return_to.as_deref(),
            "Non c'è una sessione da chiudere.",
            "There is no session to end.",
        );
    };
    let now = unix((state.clock)());
    if !logout_token_valid(&state.sealer, token.as_deref(), &session.sid, now) {
        tracing::info!(event = "logout_refused", code = %"logout_csrf", sid = %session.sid);
        return logout_refused("logout_csrf");
    }
    end_session(state, Some(session), return_to).await
}

/// Whether `token` is a logout confirmation token sealed for session `sid`, unexpired at
/// `now`.
fn logout_token_valid(sealer: &Sealer, token: Option<&str>, sid: &str, now: u64) -> bool {
    token
        .and_then(|t| sealer.open::<LogoutToken>(Purpose::LogoutForm, t))
        .is_some_and(|t| t.sid == sid && now < t.exp)
}

fn logout_refused(code: &str) -> Response<Body> {
    let mut r = html(
        StatusCode::FORBIDDEN,
        pages::simple(
            "Uscita non confermata",
            "Sign-out not confirmed",
            &format!("La richiesta di uscita non è valida o è scaduta. Codice: {code}"),
            &format!("The sign-out request is invalid or expired. Code: {code}"),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// Ends `session` (when there is one): revoked first, then Single Logout when the IdP
/// offers it; the cookie is cleared in every case.
async fn end_session(
    state: &State,
    session: Option<Session>,
    return_to: Option<String>,
) -> Response<Body> {
    let now = unix((state.clock)());
    let mut single_logout = None;
    if let Some(s) = session {
        // Fail safe: the session is dead here before the IdP hears of it.
        let remaining = Duration::from_secs(s.exp.saturating_sub(now));
        crate::state::provider::revoke_session(state, &s.sid, remaining).await;
        tracing::info!(event = "logout", sid = %s.sid, idp = %s.idp);
        state.metrics.logouts.inc();
        single_logout = crate::state::logout::start(state, &s, return_to.clone()).await;
    }
    let mut r = single_logout.unwrap_or_else(|| {
        signed_out(
            return_to.as_deref(),
            "La sessione è terminata. Per uscire anche dal gestore di identità, chiudi il browser.",
            "The session has ended. To sign out of the identity provider too, close the browser.",
        )
    });
    clear_session_cookie(state, &mut r);
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

#[cfg(test)]
mod tests {
    use super::{LogoutToken, Purpose, Sealer, logout_token_valid};

    #[test]
    fn logout_tokens_open_only_for_their_session_before_they_expire() {
        let sealer = Sealer::new(&[7; 32]).unwrap();
        let token = |sid: &str, exp| {
            let t = LogoutToken {
                sid: sid.into(),
                exp,
            };
            sealer.seal(Purpose::LogoutForm, &t).unwrap()
        };
        let good = token("s1", 1_000);
        assert!(logout_token_valid(&sealer, Some(&good), "s1", 999));
        assert!(
            !logout_token_valid(&sealer, Some(&good), "s1", 1_000),
            "expired"
        );
        assert!(
            !logout_token_valid(&sealer, Some(&good), "s2", 999),
            "another session"
        );
        assert!(!logout_token_valid(&sealer, None, "s1", 999));
        assert!(!logout_token_valid(&sealer, Some("AAAA"), "s1", 999));
        // A sealed value of another purpose (here a session-cookie seal of the same shape)
        // does not open as a logout token.
        let other = sealer
            .seal(
                Purpose::Session,
                &LogoutToken {
                    sid: "s1".into(),
                    exp: 1_000,
                },
            )
            .unwrap();
        assert!(!logout_token_valid(&sealer, Some(&other), "s1", 999));
        // Another key.
        let foreign = Sealer::new(&[8; 32]).unwrap();
        assert!(!logout_token_valid(&foreign, Some(&good), "s1", 999));
    }
}
