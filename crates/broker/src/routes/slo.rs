//! SAML Single Logout (SAML profiles §4.4, SPID): the SP-initiated LogoutRequest sent by
//! `/logout`, and `/saml/slo`, which receives the IdP's LogoutResponse to it, or an
//! IdP-initiated LogoutRequest (answered with our signed LogoutResponse).
//!
//! Invariants, stated as absences:
//! - no session outlives the click on "logout": it is revoked locally before any message is
//!   sent, so a lost, refused or never-answered LogoutRequest still leaves it dead here;
//! - no session is ended by an IdP LogoutRequest that did not verify with that IdP's metadata
//!   keys (forged logout is denial of service), nor by one already honoured (replay);
//! - no LogoutResponse is accepted twice or without our pending request (one-time, expiring
//!   like pending logins);
//! - no redirect leaves the site after logout except to a `return_to` allowed by
//!   configuration, checked when `/logout` was called.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use saml::{BINDING_POST, BINDING_REDIRECT, IncomingSlo, LogoutError, SloKind};

use crate::features::admission::heavy::{Refused, Work};
use crate::leaf::http::{Body, html, set};
use crate::leaf::pages;
use crate::leaf::session::random_hex;
use crate::state::State;
use crate::state::logout::{Signed, idp_endpoint, send, send_failed, signed_out, slo_url};

/// Largest accepted `/saml/slo` form body: a logout message of `saml::MAX_LOGOUT_XML` bytes
/// (32 KiB) in base64 (4/3) with its `+`, `/` and `=` percent-encoded, and a RelayState. A
/// SPID LogoutRequest's body is under 10 KB; the general 256 KiB let one hostile message cost
/// tens of normal logins (issue 17).
const MAX_BODY: usize = 64 * 1024;
/// How long a client may take to send it.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How old an IdP-initiated LogoutRequest may be (by its `IssueInstant`, plus the clock
/// skew) and still be honoured.
pub const IDP_REQUEST_MAX_AGE: Duration = Duration::from_secs(300);

/// `GET /saml/slo` (HTTP-Redirect) and `POST /saml/slo` (HTTP-POST).
pub async fn endpoint(state: &State, req: Request<Incoming>) -> Response<Body> {
    let raw = if req.method() == Method::GET {
        Raw::Query(req.uri().query().unwrap_or("").to_owned())
    } else {
        let collect = Limited::new(req.into_body(), MAX_BODY).collect();
        match tokio::time::timeout(BODY_TIMEOUT, collect).await {
            Ok(Ok(b)) => Raw::Form(b.to_bytes()),
            Ok(Err(_)) => {
                return refused(
                    state,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "broker_body_too_large",
                    "",
                );
            }
            Err(_) => {
                return refused(
                    state,
                    StatusCode::REQUEST_TIMEOUT,
                    "broker_body_timeout",
                    "",
                );
            }
        }
    };
    // The binding decoding (form or query, base64, inflate) and, for a LogoutRequest, the
    // Issuer lookup parse are one heavy job: none of it runs on the async workers.
    // The body (or query) waits with the job: counted against `admission.heavy_queue_bytes`.
    let held = match &raw {
        Raw::Query(q) => q.len(),
        Raw::Form(b) => b.len(),
    };
    let decoded = match state
        .heavy
        .run_holding(Work::Logout, held, move || decode(raw))
        .await
    {
        Ok(d) => d,
        Err(r) => return heavy_refused(state, r),
    };
    let (msg, issuer) = match decoded {
        Ok((m, issuer)) => (Arc::new(m), issuer),
        Err(e) => return refused(state, StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
    };
    match msg.kind() {
        SloKind::Response => logout_response(state, &msg).await,
        SloKind::Request => logout_request(state, &msg, issuer).await,
    }
}

/// A logout message as it arrived, before any decoding.
enum Raw {
    /// The HTTP-Redirect query string, exactly as received.
    Query(String),
    /// The HTTP-POST form body.
    Form(hyper::body::Bytes),
}

/// Decodes the binding and, for a LogoutRequest, reads its (untrusted) Issuer. Runs on the
/// heavy pool.
fn decode(raw: Raw) -> Result<(IncomingSlo, Option<String>), LogoutError> {
    let msg = match raw {
        Raw::Query(q) => IncomingSlo::from_redirect(&q)?,
        Raw::Form(b) => IncomingSlo::from_post(&b)?,
    };
    let issuer = match msg.kind() {
        SloKind::Request => msg.issuer_hint(),
        SloKind::Response => None,
    };
    Ok((msg, issuer))
}

/// The IdP's answer to our LogoutRequest.
async fn logout_response(state: &State, msg: &Arc<IncomingSlo>) -> Response<Body> {
    // RelayState (our request ID) first, else the untrusted InResponseTo: a lookup key only;
    // validation requires the signed InResponseTo to equal the pending request's ID.
    // The hint is a whole parse of attacker bytes: only when RelayState finds nothing, and on
    // the heavy pool.
    let mut found = None;
    let mut hint_tried = false;
    let mut key = msg.relay_state().map(str::to_owned);
    loop {
        if let Some(k) = key.take() {
            match state.store.get_pending_logout(&k).await {
                Ok(Some(p)) => {
                    found = Some((k, p));
                    break;
                }
                Ok(None) => {}
                Err(e) => return store_unavailable(state, e),
            }
        }
        if hint_tried {
            break;
        }
        hint_tried = true;
        let doc = msg.clone();
        key = match state
            .heavy
            .run(Work::Logout, move || doc.in_response_to_hint())
            .await
        {
            Ok(k) => k,
            Err(r) => return heavy_refused(state, r),
        };
    }
    let Some((id, pending)) = found else {
        return refused(
            state,
            StatusCode::BAD_REQUEST,
            "broker_unknown_logout",
            "no pending logout request matches (expired, or already answered)",
        );
    };
    let now = (state.clock)();
    let Some(entry) = state.registry.get_valid(&pending.idp, now) else {
        return refused(
            state,
            StatusCode::BAD_REQUEST,
            "broker_unknown_idp",
            "the IdP of the logout request is no longer trusted",
        );
    };
    // Verified on the heavy pool (see `features::admission::heavy`).
    let job = {
        let (msg, destination, skew) = (msg.clone(), slo_url(state), state.config.clock_skew);
        let (idp, issued_at) = (pending.idp.clone(), pending.issued_at);
        let id = id.clone();
        move || {
            let expected = saml::ExpectedLogoutResponse {
                request_id: &id,
                request_issue_instant: issued_at,
                destination: &destination,
                idp_entity_id: &idp,
            };
            saml::validate_logout_response(&msg, &expected, &entry.descriptor, now, skew)
        }
    };
    let outcome = match state.heavy.run(Work::Logout, job).await {
        Ok(outcome) => outcome,
        Err(r) => return heavy_refused(state, r),
    };
    if let Err(e) = &outcome {
        if !matches!(e, LogoutError::Status { .. }) {
            return refused(state, StatusCode::BAD_REQUEST, e.code(), &e.to_string());
        }
    }
    // One winner per pending logout, even under concurrent submits.
    let taken = match state.store.take_pending_logout(&id).await {
        Ok(t) => t,
        Err(e) => return store_unavailable(state, e),
    };
    if taken.is_none() {
        return refused(
            state,
            StatusCode::BAD_REQUEST,
            "broker_unknown_logout",
            "logout request already answered",
        );
    }
    match outcome {
        Ok(r) => {
            tracing::info!(event = "slo_completed", initiator = %"sp", logout_request_id = %id, response_id = %r.id);
            state.metrics.slo_completed.with_label_values(&["sp"]).inc();
            signed_out(
                pending.return_to.as_deref(),
                "La sessione è terminata, anche presso il gestore di identità.",
                "The session has ended, at the identity provider too.",
            )
        }
        Err(e) => {
            // The local session is already gone; the IdP's may not be.
            tracing::info!(event = "slo_partial", logout_request_id = %id, code = %e.code(), detail = %e.to_string());
            state
                .metrics
                .slo_refused
                .with_label_values(&[e.code()])
                .inc();
            signed_out(
                None,
                "La sessione su questo sito è terminata, ma il gestore di identità non ha \
                 confermato l'uscita: chiudi il browser per completarla.",
                "The session on this site has ended, but the identity provider did not confirm \
                 the sign-out: close the browser to complete it.",
            )
        }
    }
}

/// An IdP-initiated LogoutRequest: verify, end every matching session, answer signed.
/// `issuer` is the message's Issuer as read on the heavy pool by [`decode`]: it picks the
/// keys (an untrusted lookup key); validation checks it again.
async fn logout_request(
    state: &State,
    msg: &Arc<IncomingSlo>,
    issuer: Option<String>,
) -> Response<Body> {
    let now = (state.clock)();
    let Some(entry) = issuer.and_then(|issuer| state.registry.get_valid(&issuer, now)) else {
        return refused(
            state,
            StatusCode::BAD_REQUEST,
            "broker_unknown_idp",
            "the LogoutRequest's Issuer is not a trusted IdP",
        );
    };
    let job = {
        let (msg, entry, destination) = (msg.clone(), entry.clone(), slo_url(state));
        let skew = state.config.clock_skew;
        move || {
            saml::validate_logout_request(
                &msg,
                &destination,
                &entry.descriptor,
                now,
                skew,
                IDP_REQUEST_MAX_AGE,
            )
        }
    };
    let valid = match state.heavy.run(Work::Logout, job).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return refused(state, StatusCode::BAD_REQUEST, e.code(), &e.to_string()),
        Err(r) => return heavy_refused(state, r),
    };
    let idp = &entry.descriptor;
    let remember = valid
        .remember_until
        .duration_since(now)
        .unwrap_or(Duration::ZERO);
    let first = match state
        .store
        .consume_logout_request(&format!("{}\u{0}{}", valid.issuer, valid.id), remember)
        .await
    {
        Ok(first) => first,
        Err(e) => return store_unavailable(state, e),
    };
    if !first {
        return refused(
            state,
            StatusCode::BAD_REQUEST,
            "broker_replay",
            "LogoutRequest already honoured",
        );
    }
    let mut ended = 0u64;
    for index in &valid.session_indexes {
        let sid = match state
            .store
            .session_for_logout(&valid.issuer, &valid.name_id, index)
            .await
        {
            Ok(sid) => sid,
            Err(e) => return store_unavailable(state, e),
        };
        if let Some(sid) = sid {
            crate::state::provider::revoke_session(state, &sid, state.config.session_ttl).await;
            tracing::info!(event = "logout", sid = %sid, idp = %valid.issuer);
            ended += 1;
        }
    }
    state.metrics.logouts.inc_by(ended);
    state
        .metrics
        .slo_completed
        .with_label_values(&["idp"])
        .inc();
    let sessions = ended.to_string();
    tracing::info!(event = "slo_completed", initiator = %"idp", idp = %valid.issuer, logout_request_id = %valid.id, sessions = %sessions);

    // Answer by the binding the request came with, when the IdP publishes it.
    let first = if msg.is_redirect() {
        BINDING_REDIRECT
    } else {
        BINDING_POST
    };
    let Some(ep) = idp_endpoint(idp, first) else {
        return signed_out(None, "La sessione è terminata.", "The session has ended.");
    };
    let Some(id) = random_hex(&state.rng, 20).map(|h| format!("_{h}")) else {
        return crate::leaf::http::internal("broker_rng");
    };
    let response = match saml::LogoutResponse::new(
        &state.config.sp,
        ep.response_url(),
        &id,
        &valid.id,
        (saml::STATUS_SUCCESS, None),
        now,
    ) {
        Ok(r) => r,
        Err(e) => return crate::leaf::http::internal(e.code()),
    };
    let (key, relay) = (
        state.config.clone(),
        msg.relay_state().unwrap_or("").to_owned(),
    );
    match send(state, ep.binding, move |nonce| match nonce {
        Some(n) => response
            .post_form(&relay, &key.sp_key, Some(n))
            .map(Signed::Form),
        None => response.redirect_url(&relay, &key.sp_key).map(Signed::Url),
    })
    .await
    {
        Ok(r) => r,
        Err(code) => send_failed(state, code),
    }
}

/// A message the heavy pool did not verify: 503 `broker_busy` with `Retry-After` (counted
/// as a refusal with its code), or 500 for a failed job.
fn heavy_refused(state: &State, r: Refused) -> Response<Body> {
    state
        .metrics
        .slo_refused
        .with_label_values(&[r.code()])
        .inc();
    tracing::info!(event = "slo_refused", code = %r.code());
    match r {
        Refused::Busy => state.heavy.busy_page(),
        Refused::Failed => crate::leaf::http::internal(r.code()),
    }
}

/// A refused `/saml/slo` message: counted, logged, and a plain 4xx page with the code.
/// A logout message that could not be handled because the shared store did not answer: 503,
/// nothing consumed (the IdP or the browser may retry).
fn store_unavailable(state: &State, e: crate::features::store::StoreError) -> Response<Body> {
    refused(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        crate::state::login::STORE_UNAVAILABLE,
        e.code(),
    )
}

fn refused(state: &State, status: StatusCode, code: &'static str, detail: &str) -> Response<Body> {
    state.metrics.slo_refused.with_label_values(&[code]).inc();
    tracing::info!(event = "slo_refused", code = %code, detail = %detail);
    let mut r = html(
        status,
        pages::simple(
            "Richiesta di uscita non valida",
            "Invalid logout message",
            &format!("Il messaggio di uscita non è stato accettato. Codice: {code}"),
            &format!("The logout message was not accepted. Code: {code}"),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}
