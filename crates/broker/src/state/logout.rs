//! Ending a session toward the IdP: the signed LogoutRequest of SP-initiated Single Logout
//! (used by `/logout`), the SLO endpoint address and sender (used by `/saml/slo` too), and the
//! "signed out" ending both routes share.
//!
//! May import: the state, `config`, `features`, the leaf.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use saml::{BINDING_POST, BINDING_REDIRECT, SloEndpoint};

use crate::config::Binding;
use crate::features::admission::heavy::{BUSY, Work};
use crate::features::store::PendingLogout;
use crate::leaf::http::{Body, html, set};
use crate::leaf::pages;
use crate::leaf::session::{Session, random_hex};
use crate::state::State;

/// The end of a logout: a 303 to `return_to` (already checked), or the "signed out" page.
pub(crate) fn signed_out(return_to: Option<&str>, it: &str, en: &str) -> Response<Body> {
    let mut r = match return_to.and_then(|t| HeaderValue::from_str(t).ok()) {
        Some(location) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut().insert(header::LOCATION, location);
            r
        }
        None => html(
            StatusCode::OK,
            pages::simple("Sei uscito", "Signed out", it, en),
        ),
    };
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}
/// Our SingleLogoutService URL (as published in the SP metadata).
pub(crate) fn slo_url(state: &State) -> String {
    format!("{}/saml/slo", state.config.public_base_url)
}

/// The IdP endpoint to use: the configured binding first, then the other.
pub(crate) fn idp_endpoint<'a>(
    idp: &'a saml::IdpDescriptor,
    first: &str,
) -> Option<&'a SloEndpoint> {
    let other = if first == BINDING_POST {
        BINDING_REDIRECT
    } else {
        BINDING_POST
    };
    idp.slo_endpoint(first).or_else(|| idp.slo_endpoint(other))
}

fn configured_binding(state: &State) -> &'static str {
    match state.config.binding {
        Binding::Redirect => BINDING_REDIRECT,
        Binding::Post => BINDING_POST,
    }
}

/// Sends the signed LogoutRequest for `session` (already revoked locally) when its IdP
/// publishes a SingleLogoutService. `None` means "local logout only": the IdP is no longer
/// trusted, publishes no endpoint, or the message could not be built (logged).
pub(crate) async fn start(
    state: &State,
    session: &Session,
    return_to: Option<String>,
) -> Option<Response<Body>> {
    let now = (state.clock)();
    let entry = state.registry.get_valid(&session.idp, now)?;
    let idp = &entry.descriptor;
    let ep = idp_endpoint(idp, configured_binding(state))?;
    let Some(id) = random_hex(&state.rng, 20).map(|h| format!("_{h}")) else {
        tracing::info!(event = "slo_not_sent", code = %"broker_rng");
        return None;
    };
    let subject = saml::LogoutSubject {
        name_id: &session.name_id,
        name_qualifier: &session.name_qualifier,
        session_index: session.session_index.as_deref(),
    };
    let request = match saml::LogoutRequest::new(&state.config.sp, &ep.location, &id, &subject, now)
    {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(event = "slo_not_sent", code = %e.code());
            return None;
        }
    };
    // RelayState is opaque: the request ID, as for logins.
    let issued_at = request.issue_instant();
    let (key, relay) = (state.config.clone(), id.clone());
    let response = send(state, ep.binding, move |nonce| match nonce {
        Some(n) => request
            .post_form(&relay, &key.sp_key, Some(n))
            .map(Signed::Form),
        None => request.redirect_url(&relay, &key.sp_key).map(Signed::Url),
    })
    .await;
    match response {
        Ok(r) => {
            let pending = PendingLogout {
                idp: idp.entity_id.clone(),
                issued_at,
                return_to,
            };
            // Without its pending state the IdP's answer could not be checked: logout stays
            // local (the session is already revoked).
            if let Err(e) = state.store.put_pending_logout(id.clone(), pending).await {
                tracing::warn!(event = "slo_not_sent", code = %e.code());
                return None;
            }
            tracing::info!(event = "slo_started", logout_request_id = %id, idp = %idp.entity_id, sid = %session.sid);
            state
                .metrics
                .slo_started
                .with_label_values(&[binding_label(ep.binding)])
                .inc();
            Some(r)
        }
        Err(code) => {
            tracing::info!(event = "slo_not_sent", code = %code);
            None
        }
    }
}

fn binding_label(binding: &str) -> &'static str {
    if binding == BINDING_POST {
        "post"
    } else {
        "redirect"
    }
}

/// A message signed for one binding: the HTTP-Redirect URL or the HTTP-POST form.
pub(crate) enum Signed {
    /// The URL with `SigAlg` and `Signature` in its query.
    Url(String),
    /// The auto-submitting form with the enveloped-signed message.
    Form(saml::PostForm),
}

/// A SAML message toward the IdP: a 302 (HTTP-Redirect) or an auto-submitting form
/// (HTTP-POST) whose one script is allowed by nonce. `sign` gets the script nonce for
/// HTTP-POST and `None` for HTTP-Redirect, and runs on the heavy pool (an RSA signature);
/// a saturated pool is the error [`BUSY`].
pub(crate) async fn send<F>(
    state: &State,
    binding: &str,
    sign: F,
) -> Result<Response<Body>, &'static str>
where
    F: FnOnce(Option<&str>) -> Result<Signed, saml::RequestError> + Send + 'static,
{
    let nonce = if binding == BINDING_POST {
        Some(random_hex(&state.rng, 16).ok_or("broker_rng")?)
    } else {
        None
    };
    let for_job = nonce.clone();
    let signed = state
        .heavy
        .run(Work::Sign, move || sign(for_job.as_deref()))
        .await
        .map_err(|r| r.code())?
        .map_err(|e| e.code())?;
    let mut r = match (signed, nonce) {
        (Signed::Form(form), Some(nonce)) => {
            let mut r = html(StatusCode::OK, form.html);
            let csp = format!(
                "default-src 'none'; script-src 'nonce-{nonce}'; base-uri 'none'; \
                 frame-ancestors 'none'"
            );
            if let Ok(v) = HeaderValue::from_str(&csp) {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
        (Signed::Url(url), None) => {
            let location = HeaderValue::from_str(&url).map_err(|_| "broker_location")?;
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::FOUND;
            r.headers_mut().insert(header::LOCATION, location);
            r
        }
        // A closure that ignored the binding it was asked for.
        _ => return Err("broker_binding"),
    };
    set(&mut r, header::CACHE_CONTROL, "no-store");
    Ok(r)
}

/// The answer to a failed [`send`]: the "busy" page for [`BUSY`], else a 500 with the code.
pub(crate) fn send_failed(state: &State, code: &'static str) -> Response<Body> {
    if code == BUSY {
        state.heavy.busy_page()
    } else {
        crate::leaf::http::internal(code)
    }
}
