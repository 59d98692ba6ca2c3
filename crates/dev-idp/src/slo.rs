//! Single Logout at the demo IdP, for development and the end-to-end tests:
//!
//! - `GET|POST /slo` with `SAMLRequest`: an SP-initiated `LogoutRequest`. The SP must be in
//!   `--sp-metadata`; its signature is verified with the SP metadata keys (HTTP-Redirect:
//!   over the query as received; HTTP-POST: enveloped), `Destination` must be this IdP's
//!   `/slo`, and a `SessionIndex` is required. The matching IdP session ends, and a signed
//!   `LogoutResponse` goes to the SP's `SingleLogoutService` (its first HTTP-Redirect or
//!   HTTP-POST endpoint in metadata).
//! - `GET|POST /slo` with `SAMLResponse`: the SP's answer to an IdP-initiated logout,
//!   verified the same way against the pending request; the outcome is recorded.
//! - `GET /logout/start?session_index=…[&forge=unsigned|key]`: starts an IdP-initiated
//!   logout of that session toward its SP (signed with the IdP key; `forge=unsigned` leaves the
//!   signature out, `forge=key` signs with a throw-away key that is in no metadata: both for
//!   testing that the SP refuses them).
//! - `GET /sessions`: plain text, one line per open session
//!   (`session <SessionIndex> <NameID> <user> <SP>`) and per logout event (`event …`).

use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use saml::{
    IdpDescriptor, IncomingSlo, LogoutError, STATUS_SUCCESS, SloEndpoint, SloKind, SpConfig,
};
use xmldsig::SigningKey;

use crate::app::{AppState, wall_clock};
use crate::http::{Body, bad_request, html, plain_owned};
use crate::keys;
use crate::pages;
use crate::response::random_id;
use crate::sessions::Pending;
use crate::sp::{self, SpInfo};

/// How old an SP `LogoutRequest` may be.
const MAX_AGE: Duration = Duration::from_secs(300);
/// Clock skew allowed.
const SKEW: Duration = Duration::from_secs(60);

/// The SP as the issuer of messages this IdP verifies (the SAML crate's validators take an
/// "IdP" descriptor: the other party).
fn sp_as_peer(sp: &SpInfo) -> IdpDescriptor {
    IdpDescriptor {
        entity_id: sp.entity_id.clone(),
        federation: saml::Federation::Spid,
        sso_redirect_url: None,
        sso_post_url: None,
        signing_keys: sp.signing_keys.clone(),
        single_logout: Vec::new(),
    }
}

/// This IdP as the issuer of the messages it builds.
fn idp_as_issuer(state: &AppState) -> SpConfig {
    SpConfig {
        entity_id: state.idp.entity_id.clone(),
        acs_url: String::new(),
        acs_index: None,
        attribute_consuming_service_index: None,
    }
}

fn sp_endpoint(sp: &SpInfo) -> Option<&SloEndpoint> {
    sp.single_logout.first()
}

/// `GET|POST /slo`.
pub(crate) async fn receive(
    state: &AppState,
    decoded: Result<IncomingSlo, LogoutError>,
) -> Response<Body> {
    let msg = match decoded {
        Ok(m) => m,
        Err(e) => return bad_request(&format!("logout message: {e}")),
    };
    let sps = match sp::load_all(&state.sp_sources).await {
        Ok(s) => s,
        Err(reason) => return bad_request(&reason),
    };
    let Some(sp) = msg
        .issuer_hint()
        .and_then(|i| sps.into_iter().find(|s| s.entity_id == i))
    else {
        return bad_request("the logout message's Issuer is in none of the --sp-metadata sources");
    };
    let now = wall_clock();
    let peer = sp_as_peer(&sp);
    match msg.kind() {
        SloKind::Request => {
            let valid = match saml::validate_logout_request(
                &msg,
                &state.idp.slo_url,
                &peer,
                now,
                SKEW,
                MAX_AGE,
            ) {
                Ok(v) => v,
                Err(e) => {
                    state
                        .logout
                        .event(format!("sp-logout-refused {} {}", sp.entity_id, e.code()));
                    return bad_request(&format!("LogoutRequest refused: {e}"));
                }
            };
            let ended =
                state
                    .logout
                    .end_sessions(&sp.entity_id, &valid.name_id, &valid.session_indexes);
            state.logout.event(format!(
                "sp-logout {} {} ended={ended}",
                valid.id,
                valid.session_indexes.join(",")
            ));
            let Some(ep) = sp_endpoint(&sp) else {
                return bad_request("the SP publishes no SingleLogoutService");
            };
            let Ok(id) = random_id(&state.idp.rng) else {
                return bad_request("no randomness");
            };
            let response = match saml::LogoutResponse::new(
                &idp_as_issuer(state),
                ep.response_url(),
                &id,
                &valid.id,
                (STATUS_SUCCESS, None),
                now,
            ) {
                Ok(r) => r,
                Err(e) => return bad_request(&e.to_string()),
            };
            let relay = msg.relay_state().unwrap_or("");
            send(
                state,
                ep.binding,
                response.redirect_url(relay, &state.idp.key),
                |nonce| response.post_form(relay, &state.idp.key, Some(nonce)),
            )
        }
        SloKind::Response => {
            let Some(pending) = msg
                .in_response_to_hint()
                .and_then(|irt| state.logout.take_pending(&irt))
            else {
                state
                    .logout
                    .event(format!("idp-logout-response-unknown {}", sp.entity_id));
                return bad_request("LogoutResponse to no pending logout request");
            };
            let expected = saml::ExpectedLogoutResponse {
                request_id: &pending.id,
                request_issue_instant: pending.issued_at,
                destination: &state.idp.slo_url,
                idp_entity_id: &pending.sp,
            };
            match saml::validate_logout_response(&msg, &expected, &peer, now, SKEW) {
                Ok(r) => {
                    state.logout.event(format!(
                        "idp-logout-response {} ok verified {}",
                        pending.id,
                        if msg.is_redirect() {
                            "redirect"
                        } else {
                            "post"
                        }
                    ));
                    html(
                        StatusCode::OK,
                        pages::message(
                            "Uscita completata",
                            "Logout complete",
                            &format!("LogoutResponse {} accepted", r.id),
                        ),
                    )
                }
                Err(e) => {
                    state
                        .logout
                        .event(format!("idp-logout-response {} {}", pending.id, e.code()));
                    bad_request(&format!("LogoutResponse refused: {e}"))
                }
            }
        }
    }
}

/// `GET /logout/start?session_index=…[&forge=unsigned|key]`.
pub(crate) async fn start(state: &AppState, query: &str) -> Response<Body> {
    let mut session_index = None;
    let mut forge = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "session_index" => session_index = Some(v.into_owned()),
            "forge" => forge = Some(v.into_owned()),
            _ => {}
        }
    }
    let Some(session_index) = session_index else {
        return bad_request("session_index is missing");
    };
    let Some(session) = state.logout.session(&session_index) else {
        return bad_request("no open session with that SessionIndex");
    };
    let sps = match sp::load_all(&state.sp_sources).await {
        Ok(s) => s,
        Err(reason) => return bad_request(&reason),
    };
    let Some(sp) = sps.iter().find(|s| s.entity_id == session.sp) else {
        return bad_request("the session's SP is in none of the --sp-metadata sources");
    };
    let Some(ep) = sp_endpoint(sp) else {
        return bad_request("the SP publishes no SingleLogoutService");
    };
    let Ok(id) = random_id(&state.idp.rng) else {
        return bad_request("no randomness");
    };
    let now = wall_clock();
    let request = match saml::LogoutRequest::new(
        &idp_as_issuer(state),
        &ep.location,
        &id,
        &saml::LogoutSubject {
            name_id: &session.name_id,
            name_qualifier: &state.idp.entity_id,
            session_index: Some(&session.session_index),
        },
        now,
    ) {
        Ok(r) => r,
        Err(e) => return bad_request(&e.to_string()),
    };
    let relay = format!("idp{id}");
    let throwaway;
    let key: &SigningKey = match forge.as_deref() {
        None | Some("") => &state.idp.key,
        Some("unsigned") => {
            // A forged request: the Redirect binding without SigAlg/Signature.
            let Ok(url) = request.redirect_url(&relay, &state.idp.key) else {
                return bad_request("encoding failed");
            };
            let cut = url.find("&SigAlg=").map_or(url.as_str(), |i| &url[..i]);
            state
                .logout
                .event(format!("idp-logout-forged-unsigned {id}"));
            return redirect(cut);
        }
        Some("key") => {
            let Ok((key_pem, cert_pem)) = keys::generate("forger") else {
                return bad_request("key generation failed");
            };
            let Ok(k) = SigningKey::from_pem(key_pem.as_bytes(), cert_pem.as_bytes()) else {
                return bad_request("key loading failed");
            };
            throwaway = k;
            state.logout.event(format!("idp-logout-forged-key {id}"));
            &throwaway
        }
        Some(other) => return bad_request(&format!("forge={other:?} is not unsigned or key")),
    };
    if forge.is_none() {
        state.logout.start_logout(
            &session.session_index,
            Pending {
                id: id.clone(),
                sp: sp.entity_id.clone(),
                issued_at: request.issue_instant(),
            },
        );
        state
            .logout
            .event(format!("idp-logout-started {id} {}", session.session_index));
    }
    send(
        state,
        ep.binding,
        request.redirect_url(&relay, key),
        |nonce| request.post_form(&relay, key, Some(nonce)),
    )
}

fn redirect(url: &str) -> Response<Body> {
    let mut r = plain_owned(StatusCode::FOUND, String::new());
    match HeaderValue::from_str(url) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
            r
        }
        Err(_) => bad_request("unusable Location"),
    }
}

fn send(
    state: &AppState,
    binding: &str,
    redirect_url: Result<String, saml::RequestError>,
    post: impl FnOnce(&str) -> Result<saml::PostForm, saml::RequestError>,
) -> Response<Body> {
    if binding == saml::BINDING_POST {
        let nonce = random_id(&state.idp.rng).unwrap_or_else(|_| "n".into());
        match post(&nonce) {
            Ok(form) => {
                let mut r = html(StatusCode::OK, form.html);
                if let Ok(csp) = HeaderValue::from_str(&format!(
                    "default-src 'none'; script-src 'nonce-{nonce}'"
                )) {
                    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
                }
                r
            }
            Err(e) => bad_request(&e.to_string()),
        }
    } else {
        match redirect_url {
            Ok(url) => redirect(&url),
            Err(e) => bad_request(&e.to_string()),
        }
    }
}
