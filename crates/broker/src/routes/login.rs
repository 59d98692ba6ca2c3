//! `GET /saml/login`: starts a SAML login toward an IdP the metadata lists, storing the
//! pending request and binding it to this browser with the login cookie.
//!
//! May import: `state`, `config`, `features`, the leaf.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::config::Binding;
use crate::features::registry::federation_method;
use crate::features::store::Pending;
use crate::leaf::http::{Body, cookie, html, internal};
use crate::leaf::pages;
use crate::leaf::session::random_hex;
use crate::state::State;
use crate::state::login::{login_cookie, login_cookie_value, store_unavailable};
use crate::state::logout::{Signed, send, send_failed};

/// `GET /saml/login?idp=<entityID>&level=<1|2|3>&return_to=<local path>`.
pub async fn login(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let query = req.uri().query().unwrap_or("");
    let mut idp = None;
    let mut level = None;
    let mut return_to = None;
    for (k, v) in crate::leaf::form::text_pairs(query.as_bytes()) {
        match k.as_ref() {
            "idp" => idp = Some(v.into_owned()),
            "level" => level = Some(v.into_owned()),
            "return_to" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let bad = |code: &'static str, it: &str, en: &str| {
        tracing::info!(event = "login_refused", code = %code);
        state
            .metrics
            .logins_refused
            .with_label_values(&[code, ""])
            .inc();
        html(
            StatusCode::BAD_REQUEST,
            pages::simple("Richiesta non valida", "Invalid request", it, en),
        )
    };
    // An entry past its validUntil is refused here, whether or not the refresher has run.
    // A federation configured for OpenID Connect only (`[oidc_rp]`) has no SAML logins.
    let Some(entry) = idp
        .and_then(|id| state.registry.get_valid(&id, (state.clock)()))
        .filter(|e| state.config.saml_offered(e.descriptor.federation))
    else {
        return bad(
            "broker_unknown_idp",
            "Il gestore di identità indicato non è tra quelli accettati.",
            "The identity provider named is not one of those accepted.",
        );
    };
    let idp = &entry.descriptor;
    let Some(level) =
        crate::state::login::requested_level(level.as_deref(), state.config.default_level)
    else {
        return bad(
            "broker_invalid_level",
            "Livello SPID non valido.",
            "Invalid SPID level.",
        );
    };
    let return_to = return_to.unwrap_or_else(|| "/".into());
    if state.config.return_to(&return_to).is_none() {
        return bad(
            "broker_invalid_return_to",
            "L'indirizzo di ritorno deve essere una pagina di questo sito.",
            "The return address must be a page of this site or of a protected portal.",
        );
    }
    // The configured binding, or the one the IdP offers when it has only the other.
    let (binding, destination) = match (
        state.config.binding,
        idp.sso_redirect_url.as_ref(),
        idp.sso_post_url.as_ref(),
    ) {
        (Binding::Redirect, Some(url), _) | (Binding::Post, Some(url), None) => {
            (Binding::Redirect, url)
        }
        (Binding::Post, _, Some(url)) | (Binding::Redirect, None, Some(url)) => {
            (Binding::Post, url)
        }
        (_, None, None) => return internal("broker_idp_no_endpoint"),
    };
    let Some(id) = random_hex(&state.rng, 20).map(|h| format!("_{h}")) else {
        return internal("broker_rng");
    };
    let browser = cookie(req, login_cookie(state))
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .or_else(|| random_hex(&state.rng, 16));
    let Some(browser) = browser else {
        return internal("broker_rng");
    };
    let now = (state.clock)();
    let request = match saml::AuthnRequest::new(&state.config.sp, destination, &id, level, now) {
        Ok(r) => r,
        Err(e) => return internal(e.code()),
    };
    // SPID for minors: the IdP checks the age limits of the service the login is for.
    let request = match age_limits_for(state, &return_to) {
        Some(age) if federation_method(idp.federation) == identity::Method::Spid => {
            request.with_age_limit(age.min_age.unwrap_or(0), age.max_age)
        }
        _ => request,
    };
    // A login whose record could not be written is refused at the ACS anyway: say so before
    // the citizen goes through the IdP for nothing.
    if !state.audit.is_up() {
        return crate::state::login::audit_unavailable(
            state,
            crate::features::audit::AuditError::Unavailable,
        );
    }
    let stored = state
        .store
        .put_pending(
            id.clone(),
            Pending {
                idp: idp.entity_id.clone(),
                level,
                return_to,
                issued_at: request.issue_instant(),
                browser: browser.clone(),
                request_xml: request.xml().to_owned(),
            },
        )
        .await;
    if let Err(e) = stored {
        return store_unavailable(state, e);
    }
    let level_label = level.to_string();
    tracing::info!(
        event = "login_started",
        authn_request_id = %id,
        idp = %idp.entity_id,
        requested_level = %level_label,
    );
    state
        .metrics
        .logins_started
        .with_label_values(&[
            federation_method(idp.federation).as_str(),
            &idp.entity_id,
            &level_label,
        ])
        .inc();
    // RelayState is opaque: the return path stays server side with the pending request.
    let relay_state = id;
    // Signed on the heavy pool (an RSA signature per request), by the one sender of SAML
    // messages toward an IdP.
    let binding = match binding {
        Binding::Redirect => saml::BINDING_REDIRECT,
        Binding::Post => saml::BINDING_POST,
    };
    let key = state.config.clone();
    let signed = send(state, binding, move |nonce| match nonce {
        Some(n) => request
            .post_form(&relay_state, &key.sp_key, Some(n))
            .map(Signed::Form),
        None => request
            .redirect_url(&relay_state, &key.sp_key)
            .map(Signed::Url),
    })
    .await;
    let mut response = match signed {
        Ok(r) => r,
        Err(code) => return send_failed(state, code),
    };
    // The IdP posts back cross-site: the cookie's attributes are chosen for that
    // (`state::login::login_cookie_value`, shared with the wallet login).
    let max_age = state.config.pending_ttl.as_secs();
    let value = login_cookie_value(state, &browser, max_age);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The age limits to ask the SPID IdP to enforce for a login coming back to `return_to`
/// (already checked): those of the route it lands on, unless its service takes
/// representations — then the person logging in may be a parent acting for a child, and the
/// limits are checked by Varco on the person represented instead (`state::acting`).
fn age_limits_for(state: &State, return_to: &str) -> Option<identity::AgeLimits> {
    let route = crate::state::login::route_of(state, return_to)?;
    let takes_representations = route
        .service
        .as_deref()
        .is_some_and(|s| state.config.represent.service(s).is_some());
    (route.age.is_set() && !takes_representations).then_some(route.age)
}
